/* Redis client of the control thread: hiredis async on libevent, timeouts, capped backoff. */
#ifndef SP_REDIS_H
#define SP_REDIS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sp_conf.h"

struct event_base;
struct sp_redis;

enum sp_redis_state {
	SP_REDIS_DISCONNECTED = 0, /* waiting to reconnect */
	SP_REDIS_CONNECTING,	   /* TCP/unix connect in progress */
	SP_REDIS_HANDSHAKE,	   /* AUTH / SELECT / registration in flight */
	SP_REDIS_UP,
};

struct sp_redis_info {
	enum sp_redis_state state;
	uint64_t connects; /* successful handshakes */
	uint64_t failures; /* failed attempts and lost connections */
	uint64_t timeouts; /* connect or command timeouts among them */
	uint64_t commands; /* commands sent */
	char last_error[128];
};

int sp_redis_create(struct event_base *base, const struct sp_conf *cfg, const char *instance,
		    struct sp_redis **out);
void sp_redis_destroy(struct sp_redis *r);
bool sp_redis_up(const struct sp_redis *r);
/* Counters and state; any thread (last_error is left empty: see sp_redis_last_error). */
void sp_redis_info(const struct sp_redis *r, struct sp_redis_info *out);
/* The last error text; control thread only (it is written there). */
void sp_redis_last_error(const struct sp_redis *r, char *buf, size_t len);
const char *sp_redis_state_name(enum sp_redis_state s);

struct redisReply;
/* A command's answer: reply is NULL when none came (connection lost, timed out, shutting
 * down); an error reply is passed as it is (type REDIS_REPLY_ERROR). */
typedef void (*sp_redis_reply_fn)(void *arg, const struct redisReply *reply);
typedef void (*sp_redis_event_fn)(void *arg);

/*
 * Send a command (hiredis format) while the connection is up; fn is called exactly once with
 * the reply, also when the connection goes away. -ENOTCONN when not up (fn is not called).
 */
int sp_redis_command(struct sp_redis *r, sp_redis_reply_fn fn, void *arg, const char *fmt, ...);

#define SP_REDIS_LISTENERS_MAX 4

/* Callbacks on the control thread, in the order added: on_up after every completed handshake,
 * on_beat with every heartbeat sent while up (either may be NULL). 0, or -ENOSPC beyond
 * SP_REDIS_LISTENERS_MAX. */
int sp_redis_add_listener(struct sp_redis *r, sp_redis_event_fn on_up, sp_redis_event_fn on_beat,
			  void *arg);
/* No more callbacks (shutting down, before the listeners are freed). */
void sp_redis_clear_listeners(struct sp_redis *r);

#endif /* SP_REDIS_H */
