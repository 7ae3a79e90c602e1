/* The control thread: one libevent loop on the main lcore owning Redis, the API and timers. */
#include "sp_ctl.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "sp_api.h"
#include "sp_auth_ctl.h"
#include "sp_cache_ctl.h"
#include "sp_locator.h"
#include "sp_log.h"
#include "sp_services.h"
#include "sp_redis.h"

uint64_t
sp_ctl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct sp_ctl *ctl = arg;

	RTE_SET_USED(what);
	SP_LOG(NOTICE, "signal %d: stopping", (int)sig);
	event_base_loopbreak(ctl->base);
}

static void
on_punt_timer(evutil_socket_t fd, short what, void *arg)
{
	struct sp_ctl *ctl = arg;

	RTE_SET_USED(fd);
	RTE_SET_USED(what);
	sp_dp_punt_drain(ctl->dp, 4096, sp_ctl_now_ms());
}

static void
on_housekeeping(evutil_socket_t fd, short what, void *arg)
{
	struct sp_ctl *ctl = arg;

	RTE_SET_USED(fd);
	RTE_SET_USED(what);
	sp_mac_age(ctl->dp, sp_ctl_now_ms());
}

static struct event *
periodic(struct event_base *base, event_callback_fn fn, void *arg, int64_t us)
{
	struct timeval tv = {.tv_sec = us / 1000000, .tv_usec = us % 1000000};
	struct event *ev = event_new(base, -1, EV_PERSIST, fn, arg);

	if (ev != NULL && event_add(ev, &tv) != 0) {
		event_free(ev);
		return NULL;
	}
	return ev;
}

int
sp_ctl_create(struct sp_ctl *ctl, const struct sp_conf *cfg, struct sp_dp *dp, char *err,
	      size_t errlen)
{
	int rc;

	ctl->cfg = cfg;
	ctl->dp = dp;
	ctl->start_ms = sp_ctl_now_ms();
	if (gethostname(ctl->instance, sizeof(ctl->instance) - 1) != 0)
		snprintf(ctl->instance, sizeof(ctl->instance), "unknown");
	/* precise timers: the punt ring is drained every [dataplane] punt_poll_us, which epoll's
	 * millisecond timeouts would round up to 1 ms (a verification waits for it) */
	{
		struct event_config *ec = event_config_new();

		if (ec != NULL)
			event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
		ctl->base = ec != NULL ? event_base_new_with_config(ec) : NULL;
		if (ec != NULL)
			event_config_free(ec);
	}
	if (ctl->base == NULL) {
		snprintf(err, errlen, "cannot create the event loop");
		return -ENOMEM;
	}
	ctl->sig_int = evsignal_new(ctl->base, SIGINT, on_signal, ctl);
	ctl->sig_term = evsignal_new(ctl->base, SIGTERM, on_signal, ctl);
	ctl->punt_timer = periodic(ctl->base, on_punt_timer, ctl, cfg->punt_poll_us);
	ctl->housekeeping = periodic(ctl->base, on_housekeeping, ctl, 1000000);
	if (!ctl->sig_int || !ctl->sig_term || !ctl->punt_timer || !ctl->housekeeping ||
	    evsignal_add(ctl->sig_int, NULL) != 0 || evsignal_add(ctl->sig_term, NULL) != 0) {
		snprintf(err, errlen, "cannot set up signals and timers");
		return -ENOMEM;
	}
	signal(SIGPIPE, SIG_IGN);
	rc = sp_redis_create(ctl->base, cfg, ctl->instance, &ctl->redis);
	if (rc != 0) {
		snprintf(err, errlen, "cannot create the Redis client: %s", strerror(-rc));
		return rc;
	}
	rc = sp_services_create(ctl, &ctl->services);
	if (rc != 0) {
		snprintf(err, errlen, "cannot set up the services: %s", strerror(-rc));
		return rc;
	}
	rc = sp_auth_create(ctl, &ctl->auth);
	if (rc != 0) {
		snprintf(err, errlen, "cannot set up local authentication: %s", strerror(-rc));
		return rc;
	}
	rc = sp_locator_create(ctl, err, errlen, &ctl->locator);
	if (rc != 0)
		return rc;
	rc = sp_cache_ctl_create(ctl, &ctl->cache);
	if (rc != 0) {
		snprintf(err, errlen, "cannot set up the cache: %s", strerror(-rc));
		return rc;
	}
	rc = sp_api_create(ctl, cfg->api_listen, &ctl->api, err, errlen);
	if (rc != 0)
		return rc;
	if (cfg->telemetry && sp_telemetry_register(ctl) != 0) {
		snprintf(err, errlen, "cannot register the /shortpath telemetry commands");
		return -EINVAL;
	}
	return 0;
}

int
sp_ctl_run(struct sp_ctl *ctl)
{
	int rc = event_base_dispatch(ctl->base) < 0 ? -EIO : 0;

	sp_ctl_stop(ctl);
	return rc;
}

void
sp_ctl_stop(struct sp_ctl *ctl)
{
	sp_locator_stop(ctl->locator); /* first: the cache's lookups in progress end with it */
	sp_cache_ctl_stop(ctl->cache);
	sp_auth_stop(ctl->auth);
}

void
sp_ctl_destroy(struct sp_ctl *ctl)
{
	sp_telemetry_unregister();
	/* Redis first: commands in flight get their callbacks and answer their API requests
	 * (503), then what is still queued for the services, then the API itself */
	if (ctl->redis != NULL)
		sp_redis_clear_listeners(ctl->redis);
	sp_redis_destroy(ctl->redis);
	ctl->redis = NULL;
	sp_locator_destroy(ctl->locator); /* its API requests were answered by sp_ctl_stop */
	ctl->locator = NULL;
	sp_cache_ctl_destroy(ctl->cache); /* after the locator: no callback left to come */
	ctl->cache = NULL;
	sp_auth_destroy(ctl->auth);
	ctl->auth = NULL;
	sp_services_destroy(ctl->services);
	ctl->services = NULL;
	sp_api_destroy(ctl->api);
	ctl->api = NULL;
	if (ctl->sig_int)
		event_free(ctl->sig_int);
	if (ctl->sig_term)
		event_free(ctl->sig_term);
	if (ctl->punt_timer)
		event_free(ctl->punt_timer);
	if (ctl->housekeeping)
		event_free(ctl->housekeeping);
	if (ctl->base)
		event_base_free(ctl->base);
	memset(ctl, 0, sizeof(*ctl));
}
