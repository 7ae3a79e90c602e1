/* Redis client of the control thread: hiredis async on libevent, timeouts, capped backoff. */
#include "sp_redis.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <rte_random.h>

#include "sp_ctl.h"
#include "sp_log.h"

#ifndef SP_VERSION
#define SP_VERSION "dev"
#endif

struct sp_redis {
	struct event_base *base;
	const struct sp_conf *cfg;
	char instance[64];
	redisAsyncContext *ac;
	struct event *reconnect_timer;
	struct event *connect_timer;
	struct event *command_timer;
	struct event *heartbeat_timer;
	unsigned int attempt;  /* consecutive failures, for the backoff */
	unsigned int inflight; /* commands awaiting a reply */
	long started;	       /* wall-clock start of the daemon (for the instance hash) */
	int hs_step;	       /* enum handshake_step in progress */
	bool stopping;
	struct sp_redis_info info; /* state is read by other threads: atomics */
	struct {
		sp_redis_event_fn on_up;   /* the handshake completed */
		sp_redis_event_fn on_beat; /* a heartbeat was sent while up */
		void *arg;
	} listeners[SP_REDIS_LISTENERS_MAX];
	unsigned int n_listeners;
};

/* One command sent for a user of this module (sp_redis_command). */
struct user_cmd {
	struct sp_redis *r;
	sp_redis_reply_fn fn;
	void *arg;
};

static void schedule_reconnect(struct sp_redis *r, const char *why, bool timeout);

const char *
sp_redis_state_name(enum sp_redis_state s)
{
	static const char *const names[] = {"disconnected", "connecting", "handshake", "up"};

	return (unsigned int)s < RTE_DIM(names) ? names[s] : "unknown";
}

static void
set_state(struct sp_redis *r, enum sp_redis_state s)
{
	__atomic_store_n(&r->info.state, s, __ATOMIC_RELEASE);
}

static void
arm_ms(struct event *ev, int64_t ms)
{
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

	evtimer_add(ev, &tv);
}

/* Drop the connection now (from outside a hiredis callback, or deferred by hiredis inside). */
static void
drop_connection(struct sp_redis *r, const char *why, bool timeout)
{
	redisAsyncContext *ac = r->ac;

	if (ac != NULL) {
		ac->data = NULL; /* the disconnect callback must not reschedule */
		r->ac = NULL;
		redisAsyncFree(ac);
	}
	schedule_reconnect(r, why, timeout);
}

/* Every command goes through here: one watchdog covers whatever is in flight. */
static int
send_command(struct sp_redis *r, redisCallbackFn *cb, const char *fmt, ...)
{
	va_list ap;
	int rc;

	if (r->ac == NULL)
		return -ENOTCONN;
	va_start(ap, fmt);
	rc = redisvAsyncCommand(r->ac, cb, r, fmt, ap);
	va_end(ap);
	if (rc != REDIS_OK)
		return -EIO;
	r->inflight++;
	__atomic_fetch_add(&r->info.commands, 1, __ATOMIC_RELAXED);
	if (!evtimer_pending(r->command_timer, NULL))
		arm_ms(r->command_timer, r->cfg->redis_command_timeout_ms);
	return 0;
}

/* Reply bookkeeping shared by every callback. NULL reply: the connection is going away. */
static bool
reply_ok(struct sp_redis *r, redisReply *reply, const char *what)
{
	if (r->inflight > 0)
		r->inflight--;
	if (r->inflight == 0)
		evtimer_del(r->command_timer);
	else
		arm_ms(r->command_timer, r->cfg->redis_command_timeout_ms);
	if (reply == NULL)
		return false;
	if (reply->type == REDIS_REPLY_ERROR) {
		snprintf(r->info.last_error, sizeof(r->info.last_error), "%s: %s", what,
			 reply->str);
		SP_LOG(ERR, "redis: %s failed: %s", what, reply->str);
		return false;
	}
	return true;
}

static void
on_heartbeat_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct sp_redis *r = priv;

	RTE_SET_USED(ac);
	/* an error reply (read-only replica, OOM, ...) means the node is not registered: retry */
	if (!reply_ok(r, reply, "heartbeat") && reply != NULL)
		drop_connection(r, "heartbeat refused", false);
}

static void
heartbeat(struct sp_redis *r)
{
	struct timespec ts;
	char alive[32];
	unsigned int i;

	if (__atomic_load_n(&r->info.state, __ATOMIC_ACQUIRE) != SP_REDIS_UP || r->inflight > 0)
		return;
	clock_gettime(CLOCK_REALTIME, &ts); /* wall-clock ms: readable by other hosts */
	snprintf(alive, sizeof(alive), "%lld", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	(void)send_command(r, on_heartbeat_reply, "SET sp:node:{%s}:alive %s PX %" PRId64,
			   r->instance, alive, r->cfg->redis_heartbeat_ms * 3);
	for (i = 0; i < r->n_listeners && r->ac != NULL; i++)
		if (r->listeners[i].on_beat != NULL)
			r->listeners[i].on_beat(r->listeners[i].arg);
}

static void
on_heartbeat_timer(evutil_socket_t fd, short what, void *arg)
{
	RTE_SET_USED(fd);
	RTE_SET_USED(what);
	heartbeat(arg);
}

/*
 * The handshake is sequential: AUTH, then SELECT, then the instance registration, each sent
 * only after the previous one succeeded, so nothing lands in the wrong database.
 */
enum handshake_step {
	HS_AUTH,
	HS_SELECT,
	HS_REGISTER,
	HS_DONE,
};

static void handshake_step(struct sp_redis *r, enum handshake_step step);

static void
on_handshake_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	static const char *const what[] = {"AUTH", "SELECT", "instance registration"};
	struct sp_redis *r = priv;
	enum handshake_step step = r->hs_step;

	RTE_SET_USED(ac);
	if (!reply_ok(r, reply, what[step])) {
		if (reply != NULL)
			drop_connection(r, r->info.last_error, false);
		return;
	}
	handshake_step(r, step + 1);
}

static void
handshake_step(struct sp_redis *r, enum handshake_step step)
{
	char host[64] = "", pid[16], started[32];
	unsigned int i;

	r->hs_step = step;
	switch (step) {
	case HS_AUTH:
		if (r->cfg->redis_password[0] != '\0') {
			(void)send_command(r, on_handshake_reply, "AUTH %s",
					   r->cfg->redis_password);
			return;
		}
		/* fall through */
		__attribute__((fallthrough));
	case HS_SELECT:
		r->hs_step = HS_SELECT;
		if (r->cfg->redis_db != 0) {
			(void)send_command(r, on_handshake_reply, "SELECT %" PRId64,
					   r->cfg->redis_db);
			return;
		}
		/* fall through */
		__attribute__((fallthrough));
	case HS_REGISTER:
		r->hs_step = HS_REGISTER;
		gethostname(host, sizeof(host) - 1);
		snprintf(pid, sizeof(pid), "%d", (int)getpid());
		snprintf(started, sizeof(started), "%ld", r->started);
		(void)send_command(r, on_handshake_reply,
				   "HSET sp:node:{%s} host %s pid %s version %s started %s",
				   r->instance, host, pid, SP_VERSION, started);
		return;
	case HS_DONE:
		r->attempt = 0;
		__atomic_fetch_add(&r->info.connects, 1, __ATOMIC_RELAXED);
		set_state(r, SP_REDIS_UP);
		SP_LOG(NOTICE, "redis: up at %s (db %" PRId64 ")", r->cfg->redis_address,
		       r->cfg->redis_db);
		heartbeat(r);
		for (i = 0; i < r->n_listeners && r->ac != NULL; i++)
			if (r->listeners[i].on_up != NULL)
				r->listeners[i].on_up(r->listeners[i].arg);
		return;
	}
}

static void
handshake(struct sp_redis *r)
{
	set_state(r, SP_REDIS_HANDSHAKE);
	handshake_step(r, HS_AUTH);
}

static void
on_connect(const redisAsyncContext *ac, int status)
{
	struct sp_redis *r = ac->data;

	if (r == NULL)
		return;
	evtimer_del(r->connect_timer);
	if (status != REDIS_OK) {
		r->ac = NULL; /* hiredis frees the context after this callback */
		schedule_reconnect(r, ac->errstr, false);
		return;
	}
	handshake(r);
}

static void
on_disconnect(const redisAsyncContext *ac, int status)
{
	struct sp_redis *r = ac->data;

	if (r == NULL)
		return;
	r->ac = NULL;
	if (!r->stopping)
		schedule_reconnect(r, status == REDIS_OK ? "closed" : ac->errstr, false);
}

static void
connect_now(struct sp_redis *r)
{
	const char *addr = r->cfg->redis_address;
	char host[SP_CONF_STR_LEN];
	const char *colon;
	redisAsyncContext *ac;

	set_state(r, SP_REDIS_CONNECTING);
	if (strncmp(addr, "unix:", 5) == 0) {
		ac = redisAsyncConnectUnix(addr + 5);
	} else {
		colon = strrchr(addr, ':');
		snprintf(host, sizeof(host), "%.*s", (int)(colon - addr), addr);
		if (host[0] == '[') { /* [v6]:port */
			memmove(host, host + 1, strlen(host));
			host[strlen(host) - 1] = '\0';
		}
		ac = redisAsyncConnect(host, atoi(colon + 1));
	}
	if (ac == NULL) {
		schedule_reconnect(r, "out of memory", false);
		return;
	}
	if (ac->err) {
		char why[128];

		snprintf(why, sizeof(why), "%s", ac->errstr);
		redisAsyncFree(ac);
		schedule_reconnect(r, why, false);
		return;
	}
	ac->data = r;
	r->ac = ac;
	r->inflight = 0;
	redisLibeventAttach(ac, r->base);
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	arm_ms(r->connect_timer, r->cfg->redis_connect_timeout_ms);
}

static void
schedule_reconnect(struct sp_redis *r, const char *why, bool timeout)
{
	int64_t delay = r->cfg->redis_reconnect_min_ms;
	unsigned int i;

	evtimer_del(r->connect_timer);
	evtimer_del(r->command_timer);
	r->inflight = 0;
	if (r->stopping || evtimer_pending(r->reconnect_timer, NULL))
		return;
	set_state(r, SP_REDIS_DISCONNECTED);
	__atomic_fetch_add(&r->info.failures, 1, __ATOMIC_RELAXED);
	if (timeout)
		__atomic_fetch_add(&r->info.timeouts, 1, __ATOMIC_RELAXED);
	if (why != r->info.last_error) /* callers may pass last_error itself */
		snprintf(r->info.last_error, sizeof(r->info.last_error), "%s", why ? why : "?");
	for (i = 0; i < r->attempt && delay < r->cfg->redis_reconnect_max_ms; i++)
		delay *= 2;
	if (delay > r->cfg->redis_reconnect_max_ms)
		delay = r->cfg->redis_reconnect_max_ms;
	delay = delay / 2 + (int64_t)(rte_rand() % (uint64_t)(delay / 2 + 1)); /* jitter */
	if (delay < r->cfg->redis_reconnect_min_ms)
		delay = r->cfg->redis_reconnect_min_ms;
	if (r->attempt == 0 || r->attempt % 20 == 0)
		SP_LOG(WARNING, "redis: %s unavailable (%s); retrying in %" PRId64 " ms",
		       r->cfg->redis_address, r->info.last_error, delay);
	r->attempt++;
	arm_ms(r->reconnect_timer, delay);
}

static void
on_reconnect_timer(evutil_socket_t fd, short what, void *arg)
{
	RTE_SET_USED(fd);
	RTE_SET_USED(what);
	connect_now(arg);
}

static void
on_connect_timeout(evutil_socket_t fd, short what, void *arg)
{
	RTE_SET_USED(fd);
	RTE_SET_USED(what);
	drop_connection(arg, "connect timed out", true);
}

static void
on_command_timeout(evutil_socket_t fd, short what, void *arg)
{
	RTE_SET_USED(fd);
	RTE_SET_USED(what);
	drop_connection(arg, "command timed out", true);
}

int
sp_redis_create(struct event_base *base, const struct sp_conf *cfg, const char *instance,
		struct sp_redis **out)
{
	struct sp_redis *r = calloc(1, sizeof(*r));
	struct timeval hb;

	if (r == NULL)
		return -ENOMEM;
	r->base = base;
	r->cfg = cfg;
	r->started = (long)time(NULL);
	snprintf(r->instance, sizeof(r->instance), "%s", instance);
	r->reconnect_timer = evtimer_new(base, on_reconnect_timer, r);
	r->connect_timer = evtimer_new(base, on_connect_timeout, r);
	r->command_timer = evtimer_new(base, on_command_timeout, r);
	r->heartbeat_timer = event_new(base, -1, EV_PERSIST, on_heartbeat_timer, r);
	if (!r->reconnect_timer || !r->connect_timer || !r->command_timer || !r->heartbeat_timer) {
		sp_redis_destroy(r);
		return -ENOMEM;
	}
	hb.tv_sec = cfg->redis_heartbeat_ms / 1000;
	hb.tv_usec = (cfg->redis_heartbeat_ms % 1000) * 1000;
	event_add(r->heartbeat_timer, &hb);
	connect_now(r);
	*out = r;
	return 0;
}

void
sp_redis_destroy(struct sp_redis *r)
{
	if (r == NULL)
		return;
	r->stopping = true;
	if (r->ac != NULL) {
		redisAsyncContext *ac = r->ac;

		/* pending commands get their callbacks (NULL replies) inside redisAsyncFree: by
		 * then nothing new may be sent */
		r->ac = NULL;
		set_state(r, SP_REDIS_DISCONNECTED);
		ac->data = NULL;
		redisAsyncFree(ac);
	}
	if (r->reconnect_timer)
		event_free(r->reconnect_timer);
	if (r->connect_timer)
		event_free(r->connect_timer);
	if (r->command_timer)
		event_free(r->command_timer);
	if (r->heartbeat_timer)
		event_free(r->heartbeat_timer);
	free(r);
}

bool
sp_redis_up(const struct sp_redis *r)
{
	return __atomic_load_n(&r->info.state, __ATOMIC_ACQUIRE) == SP_REDIS_UP;
}

void
sp_redis_info(const struct sp_redis *r, struct sp_redis_info *out)
{
	out->state = __atomic_load_n(&r->info.state, __ATOMIC_ACQUIRE);
	out->connects = __atomic_load_n(&r->info.connects, __ATOMIC_RELAXED);
	out->failures = __atomic_load_n(&r->info.failures, __ATOMIC_RELAXED);
	out->timeouts = __atomic_load_n(&r->info.timeouts, __ATOMIC_RELAXED);
	out->commands = __atomic_load_n(&r->info.commands, __ATOMIC_RELAXED);
	out->last_error[0] = '\0';
}

void
sp_redis_last_error(const struct sp_redis *r, char *buf, size_t len)
{
	snprintf(buf, len, "%s", r->info.last_error);
}

int
sp_redis_add_listener(struct sp_redis *r, sp_redis_event_fn on_up, sp_redis_event_fn on_beat,
		      void *arg)
{
	if (r->n_listeners == SP_REDIS_LISTENERS_MAX)
		return -ENOSPC;
	r->listeners[r->n_listeners].on_up = on_up;
	r->listeners[r->n_listeners].on_beat = on_beat;
	r->listeners[r->n_listeners].arg = arg;
	r->n_listeners++;
	return 0;
}

void
sp_redis_clear_listeners(struct sp_redis *r)
{
	memset(r->listeners, 0, sizeof(r->listeners));
	r->n_listeners = 0;
}

static void
on_user_reply(redisAsyncContext *ac, void *reply, void *priv)
{
	struct user_cmd *c = priv;
	redisReply *rep = reply;

	RTE_SET_USED(ac);
	/* the watchdog bookkeeping of every command; an error reply is the user's to judge */
	if (c->r->inflight > 0)
		c->r->inflight--;
	if (c->r->inflight == 0)
		evtimer_del(c->r->command_timer);
	else
		arm_ms(c->r->command_timer, c->r->cfg->redis_command_timeout_ms);
	if (rep != NULL && rep->type == REDIS_REPLY_ERROR)
		snprintf(c->r->info.last_error, sizeof(c->r->info.last_error), "%s", rep->str);
	c->fn(c->arg, rep);
	free(c);
}

int
sp_redis_command(struct sp_redis *r, sp_redis_reply_fn fn, void *arg, const char *fmt, ...)
{
	struct user_cmd *c;
	va_list ap;
	int rc;

	if (!sp_redis_up(r) || r->ac == NULL)
		return -ENOTCONN;
	c = malloc(sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->r = r;
	c->fn = fn;
	c->arg = arg;
	va_start(ap, fmt);
	rc = redisvAsyncCommand(r->ac, on_user_reply, c, fmt, ap);
	va_end(ap);
	if (rc != REDIS_OK) {
		free(c);
		return -EIO;
	}
	r->inflight++;
	__atomic_fetch_add(&r->info.commands, 1, __ATOMIC_RELAXED);
	if (!evtimer_pending(r->command_timer, NULL))
		arm_ms(r->command_timer, r->cfg->redis_command_timeout_ms);
	return 0;
}
