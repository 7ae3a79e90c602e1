/* What control/sp_locator.c (the resolver) and control/sp_locator_api.c (its API) share. */
#ifndef SP_LOCATOR_INT_H
#define SP_LOCATOR_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/http.h>
#include <jansson.h>

#include "sp_loc.h"
#include "sp_locator.h"
#include "sp_nodeauth.h"
#include "sp_services.h"

struct evbuffer;
struct call;	/* sp_locator.c: one HTTP call in flight */
struct peer;	/* sp_locator.c: a storage manager or node */
struct pjob;	/* sp_locator.c: a prefetch */
struct dropjob; /* sp_locator_api.c: a DELETE /v1/locators/SERVICE */

#define HASH_SIZE 1024	 /* buckets of the lookups in progress (power of two) */
#define NODE_NAME_MAX 32 /* a node's name as the manager gives it (shown by the API) */

/* ---- counters (one table: telemetry, /metrics and /v1/stats come from it) ------------------ */

#define LOC_EVENTS(X)                                                                              \
	X(REQ_RESOLVE, "requests_resolve")  /* RESOLVE messages from workers */                    \
	X(REQ_REFRESH, "requests_refresh")  /* REFRESH messages from workers */                    \
	X(REQ_LISTING, "requests_listing")  /* LISTING messages from workers */                    \
	X(REQ_API, "requests_api")	    /* GET /v1/locators/SERVICE */                         \
	X(RESOLVED, "resolved")		    /* answered found */                                   \
	X(NOT_FOUND, "not_found")	    /* answered not found (the manager said 404) */        \
	X(FAILED_TIMEOUT, "failed_timeout") /* the manager did not answer in timeout_ms */         \
	X(FAILED_CONNECT, "failed_connect") /* no connection, or it broke */                       \
	X(FAILED_HTTP_STATUS, "failed_http_status") /* neither 200 nor 404 */                      \
	X(FAILED_BAD_ANSWER, "failed_bad_answer")   /* not the JSON expected */                    \
	X(FAILED_NO_NODE, "failed_no_node")	    /* no IPv4 node in the answer */               \
	X(FAILED_NO_KEY, "failed_no_key")	    /* no secret for the service's node_key_id */  \
	X(FAILED_NO_SERVICE, "failed_no_service")   /* the slot has no service (any more) */       \
	X(FAILED_INFLIGHT_FULL, "failed_inflight_full") /* [locators] max_inflight reached */      \
	X(FAILED_STOPPING, "failed_stopping")		/* shortpathd stopped meanwhile */         \
	X(BAD_NAME, "bad_name")				/* not /bucket/key */                      \
	X(BAD_MESSAGE, "bad_message")	  /* unknown kind or worker: put back unanswered */        \
	X(MANAGER_CALLS, "manager_calls") /* storage manager calls started */                      \
	X(REDIS_HITS, "redis_hits")	  /* usable locator found in Redis */                      \
	X(REDIS_MISSES, "redis_misses")	  /* none (or too old for a refresh) */                    \
	X(REDIS_ERRORS, "redis_errors")	  /* Redis down or an error reply */                       \
	X(REDIS_STORED, "redis_stored")	  /* locators written to Redis */                          \
	X(COALESCED, "coalesced")	  /* requests that joined a lookup in progress */          \
	X(PREFETCH_REQUESTED, "prefetch_requested") /* keys whose locators prefetch looked up */   \
	X(PREFETCHED, "prefetched")		    /* PREFETCH messages enqueued to workers */    \
	X(PREFETCH_SKIPPED, "prefetch_skipped")	    /* prefetches not started (limit, Redis) */    \
	X(LISTING_PREFETCHES, "listing_prefetches") /* listings whose keys were prefetched */      \
	X(RING_FULL, "ring_full")		    /* a worker's locator ring was full */         \
	X(POOL_EMPTY, "pool_empty")		    /* no message left for a prefetch */

enum loc_event {
#define LOC_EVENT_ENUM(e, s) EV_##e,
	LOC_EVENTS(LOC_EVENT_ENUM)
#undef LOC_EVENT_ENUM
		EV_MAX
};

/* ---- state --------------------------------------------------------------------------------- */

/* The end of an HTTP call: code is the HTTP status, or 0 with why = EV_FAILED_TIMEOUT, CONNECT or
 * STOPPING. */
typedef void (*call_fn)(void *arg, int code, enum loc_event why, struct evbuffer *body);

/* A resolved locator (or why not). */
struct where {
	uint8_t status; /* enum sp_loc_status */
	uint8_t why;	/* enum loc_event: the outcome counted */
	uint8_t n_nodes;
	bool from_redis;
	uint32_t node_ip[SP_LOC_NODES];	  /* network byte order */
	uint16_t node_port[SP_LOC_NODES]; /* network byte order */
	char node_name[SP_LOC_NODES][NODE_NAME_MAX];
	uint16_t path_len;
	char path[SP_LOC_PATH_MAX + 1];
	uint64_t size;
	int64_t resolved_ms; /* unix milliseconds */
};

/* An object's name, decoded: "/bucket/key" (no NUL inside). */
struct oname {
	uint16_t blen, klen;
	char buf[SP_LOC_NAME_MAX + 2];
};

#define ON_BUCKET(o) ((o)->buf + 1)
#define ON_KEY(o) ((o)->buf + 2 + (o)->blen)
#define ON_LEN(o) ((size_t)(o)->blen + (o)->klen + 2)

enum waiter_kind {
	W_WORKER,  /* a RESOLVE message: answered on its worker's ring */
	W_API,	   /* GET /v1/locators/SERVICE */
	W_REFRESH, /* a REFRESH: the answer goes to every worker as PREFETCH */
	W_NODE,	   /* sp_locator_node_get: the first node and a GET credential to a callback */
};

struct waiter {
	TAILQ_ENTRY(waiter) next;
	enum waiter_kind kind;
	struct sp_loc_msg *msg;	    /* W_WORKER */
	struct evhttp_request *req; /* W_API */
	json_t *doc;		    /* W_API: the answer's fields known at the start */
	bool verify;		    /* W_API: try the credential on the first node */
	sp_locator_node_fn node_fn; /* W_NODE */
	void *node_arg;		    /* W_NODE */
};

TAILQ_HEAD(waiter_list, waiter);

/* One distinct (service, op, name) being resolved: concurrent requests share it. */
struct lookup {
	LIST_ENTRY(lookup) hnext;
	struct sp_locator *loc;
	uint32_t hash;
	uint16_t slot;
	uint8_t op;
	bool fresh_only;   /* a refresh: Redis's copy only if younger than half the TTL */
	bool in_hash;	   /* findable (not answered yet) */
	int redis_pending; /* Redis callbacks that still hold it */
	struct call *call;
	struct sp_services_backend be;
	const struct sp_nodeauth_key *nk;
	struct oname on;
	struct waiter_list waiters;
	struct where w;
};

struct sp_locator {
	struct sp_ctl *ctl;
	const struct sp_conf *cfg;
	struct sp_dp *dp; /* NULL once stopped */
	bool stopping;
	struct sp_nodeauth_keys *keys; /* [keys] node_keys (NULL: none) */
	uint64_t ev[EV_MAX]; /* written by the control thread, read by telemetry (atomics) */
	uint64_t lat_sum_us, lat_count, lat_max_us;
	uint32_t inflight; /* storage manager calls */
	uint32_t lookups;  /* lookups in the hash */
	uint32_t pjobs_n;  /* prefetch jobs not freed yet */
	uint64_t seq;	   /* X-SP-Request-Id */
	LIST_HEAD(, lookup) hash[HASH_SIZE];
	LIST_HEAD(, peer) peers;
	TAILQ_HEAD(, call) calls;
	LIST_HEAD(, pjob) pjobs;    /* sp_locator.c */
	LIST_HEAD(, dropjob) drops; /* sp_locator_api.c */
	struct sp_loc_msg tmpl;	    /* a prefetch message being built */
};

static inline void
count(struct sp_locator *loc, enum loc_event e)
{
	__atomic_fetch_add(&loc->ev[e], 1, __ATOMIC_RELAXED);
}

static inline void
count_n(struct sp_locator *loc, enum loc_event e, uint64_t n)
{
	__atomic_fetch_add(&loc->ev[e], n, __ATOMIC_RELAXED);
}

/* Gauges read by telemetry. */
static inline void
loc_inc(uint32_t *g)
{
	__atomic_fetch_add(g, 1, __ATOMIC_RELAXED);
}

static inline void
loc_dec(uint32_t *g)
{
	__atomic_fetch_sub(g, 1, __ATOMIC_RELAXED);
}

static inline int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- sp_locator.c -------------------------------------------------------------------------- */

/* Resolve name for wt through the lookups (coalesced), Redis, the storage manager; wt is answered
 * (at once, or when the lookup ends). */
void sp_locator_resolve(struct sp_locator *loc, uint16_t slot, uint8_t op, const char *name,
			size_t name_len, bool fresh_only, struct waiter *wt);

/* Prefetch the keys of a listing (q: its S3 query string) of on's bucket; req (may be NULL) is
 * answered when it is done. */
void sp_locator_listing_start(struct sp_locator *loc, uint16_t slot,
			      const struct sp_services_backend *be,
			      const struct sp_nodeauth_key *nk, const struct oname *on,
			      const char *q, size_t qlen, int64_t max, struct evhttp_request *req);

/*
 * Start an HTTP call to addr; fn gets its end exactly once (not before this returns 0). manager:
 * counted against max_inflight, timed. 0 or -errno (fn not called).
 */
int sp_locator_call_start(struct sp_locator *loc, const char *addr, enum evhttp_cmd_type method,
			  const char *uri, const char *body, const char *auth, bool manager,
			  call_fn fn, void *arg, struct call **out);

/* Fill m's answer fields from w (credentials made now, for key nk under key_id). */
void sp_locator_fill_msg(struct sp_locator *loc, const struct where *w, const char *key_id,
			 const struct sp_nodeauth_key *nk, struct sp_loc_msg *m);

/* "/bucket/key" from its decoded parts; -ENOSPC if empty or too long. */
int sp_locator_make_oname(const char *bucket, size_t blen, const char *key, size_t klen,
			  struct oname *on);

/* Milliseconds w may still be used (0: expired). */
uint32_t sp_locator_remaining_ms(const struct sp_locator *loc, const struct where *w);

/* ---- sp_locator_api.c ---------------------------------------------------------------------- */

/* Answer an API waiter (GET /v1/locators/SERVICE) with w (of lookup lk, or NULL: early). */
void sp_locator_api_answer(struct sp_locator *loc, struct waiter *wt, const struct lookup *lk,
			   const struct where *w);

/* sp_locator_stop's part: answer the DELETEs in progress 503 (their Redis callbacks free them). */
void sp_locator_api_stop(struct sp_locator *loc);

/* sp_locator_destroy's part, after the Redis client is gone: free what is left. */
void sp_locator_api_destroy(struct sp_locator *loc);

#endif /* SP_LOCATOR_INT_H */
