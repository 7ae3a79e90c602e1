/* The control thread: one libevent loop on the main lcore owning Redis, the API and timers. */
#ifndef SP_CTL_H
#define SP_CTL_H

#include <stdint.h>

#include "sp_conf.h"
#include "sp_dp.h"

struct event_base;
struct event;
struct sp_redis;
struct sp_api;
struct sp_services;
struct sp_locator;
struct sp_auth;
struct sp_cache_ctl;

struct sp_ctl {
	const struct sp_conf *cfg;
	struct sp_dp *dp;
	struct event_base *base;
	struct event *sig_int;
	struct event *sig_term;
	struct event *punt_timer;
	struct event *housekeeping;
	struct sp_redis *redis;
	struct sp_api *api;
	struct sp_services *services;
	struct sp_locator *locator;
	struct sp_auth *auth;	    /* local authentication (sp_auth_ctl.h) */
	struct sp_cache_ctl *cache; /* the object cache's writer (sp_cache_ctl.h) */
	uint64_t start_ms;
	char instance[64]; /* host name: the instance's id in Redis */
};

/* Monotonic milliseconds. */
uint64_t sp_ctl_now_ms(void);

/* Set up the loop, Redis client, API and telemetry. 0 or -errno with a message in err. */
int sp_ctl_create(struct sp_ctl *ctl, const struct sp_conf *cfg, struct sp_dp *dp, char *err,
		  size_t errlen);
/* Run until SIGINT/SIGTERM; then sp_ctl_stop. */
int sp_ctl_run(struct sp_ctl *ctl);
/* Let go of the dataplane (before sp_dp_destroy): the locator resolver answers or puts back the
 * messages it holds and clears its handler, the authenticator clears its own, the cache ends its
 * revalidations and takes its entries out of the index. Idempotent;
 * sp_ctl_run calls it when the loop ends. */
void sp_ctl_stop(struct sp_ctl *ctl);
void sp_ctl_destroy(struct sp_ctl *ctl);

/* Telemetry commands /shortpath/... (sp_telemetry.c). */
int sp_telemetry_register(struct sp_ctl *ctl);
/* Make the commands answer -ENODEV from now on (before the context is freed). */
void sp_telemetry_unregister(void);

#endif /* SP_CTL_H */
