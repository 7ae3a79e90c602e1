/* What control/sp_cache_ctl.c (the cache's writer) and control/sp_cache_api.c (its API and
 * counters) share. */
#ifndef SP_CACHE_INT_H
#define SP_CACHE_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "sp_cache.h"
#include "sp_cache_ctl.h"
#include "sp_counters.h"

struct event;
struct sp_dp;

/* Counters: one table each, the JSON, telemetry and /metrics come from them. */
#define CC_EVENTS(X)                                                                               \
	X(FILLS, "fills", "fills the workers handed over (GET and write-through PUT)")             \
	X(FILLS_STALE, "fills_stale",                                                              \
	  "fills refused because the object or its service changed since the fill began")          \
	X(FILLS_REJECTED, "fills_rejected", "fills refused (see fills_rejected_by)")               \
	X(ADMISSION_REJECTED, "admission_rejected",                                                \
	  "fills refused by second-hit admission (first sight of the object, cache full)")         \
	X(INSERTED, "inserted", "entries put in the index (new objects and replacements)")         \
	X(REPLACED, "replaced", "of which replaced an entry of the same object")                   \
	X(EVICTED, "evicted", "entries evicted by CLOCK to make room")                             \
	X(INVALIDATED, "invalidated", "entries removed because their object or service changed")   \
	X(PURGED, "purged", "entries removed through the API")                                     \
	X(FREED, "freed", "removed entries freed after their grace period")                        \
	X(WAITED, "waited", "entries that waited for the graveyard to free room")                  \
	X(DOORKEEPER_RESETS, "doorkeeper_resets", "times the admission filter was cleared")        \
	X(BAD_MESSAGES, "bad_messages", "punt messages naming no entry, slot or fill")

enum cc_event {
#define CC_ENUM(e, s, h) CC_##e,
	CC_EVENTS(CC_ENUM)
#undef CC_ENUM
		CC_MAX
};

/* Why a fill was refused (fills_rejected_by). */
#define CC_REJECTS(X)                                                                              \
	X(NOT_200, "not_200")	      /* a GET's status is not 200, a PUT's not 2xx */             \
	X(BAD_HEAD, "bad_head")	      /* the head does not parse, or the fill is not whole */      \
	X(LENGTH, "length")	      /* no Content-Length, not the body's, Transfer-Encoding */   \
	X(NO_STORE, "no_store")	      /* Cache-Control: no-store or private */                     \
	X(TOO_BIG, "too_big")	      /* over max_object_kb or the budget */                       \
	X(POLICY_NONE, "policy_none") /* the service does not cache (any more) */                  \
	X(TEMPLATE, "template")	      /* the stored head could not be made */                      \
	X(NO_ETAG, "no_etag")	      /* a write-through without an ETag to confirm */             \
	X(NO_MEMORY, "no_memory")     /* rte_malloc failed */                                      \
	X(INDEX_FULL, "index_full")   /* the index refused the key */                              \
	X(WAIT_FULL, "wait_full")     /* too many entries waiting for room already */              \
	X(BAD_FILL, "bad_fill")	      /* kind, slot, name or hash not as expected */               \
	X(STOPPING, "stopping")	      /* shortpathd is stopping */

enum cc_reject {
#define CC_ENUM(e, s) CCR_##e,
	CC_REJECTS(CC_ENUM)
#undef CC_ENUM
		CCR_MAX
};

/* Revalidations (policy verify) and write-through confirmations. */
#define CC_REVALS(X)                                                                               \
	X(ASKED, "asked")		    /* started */                                          \
	X(NOT_MODIFIED, "not_modified")	    /* 304: fresh again */                                 \
	X(CHANGED, "changed")		    /* 200: invalidated, the new body cached if it fits */ \
	X(CHANGED_CACHED, "changed_cached") /* ... and it was */                                   \
	X(GONE, "gone")			    /* 404 or another answer: invalidated, dropped */      \
	X(FAILED, "failed")		    /* no answer, timeout, 5xx, locator failure */         \
	X(KEPT_STALE, "kept_stale")	    /* ... and the entry kept (stale-if-error window) */   \
	X(NO_ENTRY, "no_entry")		    /* asked for an entry no longer cached */

enum cc_reval {
#define CC_ENUM(e, s) CCV_##e,
	CC_REVALS(CC_ENUM)
#undef CC_ENUM
		CCV_MAX
};

#define CC_WTS(X)                                                                                  \
	X(ASKED, "asked")	/* write-through fills held back for confirmation */               \
	X(INSERTED, "inserted") /* confirmed (304) and inserted */                                 \
	X(CHANGED, "changed")	/* the node had another version: dropped */                        \
	X(FAILED, "failed")	/* no confirmation (error, timeout, 404): dropped */               \
	X(STALE, "stale")	/* confirmed, but the object changed meanwhile: dropped */         \
	X(REJECTED, "rejected") /* confirmed, but not inserted (room, admission, ...) */

enum cc_wt {
#define CC_ENUM(e, s) CCW_##e,
	CC_WTS(CC_ENUM)
#undef CC_ENUM
		CCW_MAX
};

extern const char *const sp_cache_event_names[CC_MAX];
extern const char *const sp_cache_event_help[CC_MAX];
extern const char *const sp_cache_reject_names[CCR_MAX];
extern const char *const sp_cache_reval_names[CCV_MAX];
extern const char *const sp_cache_wt_names[CCW_MAX];

/* A removed entry waiting for its grace period (and its last reader). */
struct cc_grave {
	TAILQ_ENTRY(cc_grave) next;
	struct sp_cache_entry *e;
	int32_t pos; /* its key's position to free (-1: replaced in place, no position) */
	uint64_t token;
};

/* A built entry waiting for the graveyard to free room. */
struct cc_wait {
	TAILQ_ENTRY(cc_wait) next;
	struct sp_cache_entry *e;
};

struct cc_job;

TAILQ_HEAD(cc_grave_list, cc_grave);
TAILQ_HEAD(cc_wait_list, cc_wait);
LIST_HEAD(cc_job_list, cc_job);

struct sp_cache_ctl {
	struct sp_ctl *ctl;
	struct sp_dp *dp;   /* NULL once stopped */
	struct sp_cache *c; /* dp->cache (NULL: no cache); NULL once stopped */
	bool stopping;
	bool enabled;	     /* [cache] size_kb > 0 (copies: the dataplane may be gone) */
	uint8_t admission;   /* 0 all, 1 second-hit */
	uint32_t entries;    /* the index's capacity */
	uint64_t budget;     /* bytes */
	uint64_t max_object; /* bytes */
	uint64_t hz;
	uint32_t cap;		     /* positions in at[] */
	struct sp_cache_entry **at;  /* live entries by index position */
	uint32_t hand;		     /* CLOCK */
	uint64_t *bloom;	     /* second-hit doorkeeper */
	uint32_t bloom_bits;	     /* power of two */
	uint32_t bloom_n, bloom_max; /* keys added since the last reset, reset beyond */
	struct cc_grave_list graves;
	struct cc_wait_list waits;
	struct cc_job_list jobs;    /* revalidations in flight */
	struct cc_job_list zombies; /* ended, their connection freed by the next tick */
	struct event *timer;	    /* reclaim tick, armed while there is something to do */
	bool timer_armed;
	/* gauges and counters: written by the control thread, read by telemetry */
	uint64_t n_live, live_bytes;
	uint64_t n_grave, grave_bytes;
	uint64_t n_grave_pos; /* graveyard entries still holding an index position */
	uint64_t n_wait, wait_bytes;
	uint64_t n_jobs;
	uint64_t ev[CC_MAX];
	uint64_t rej[CCR_MAX];
	uint64_t rv[CCV_MAX];
	uint64_t wt[CCW_MAX];
};

static inline void
cc_count(uint64_t *field, uint64_t n)
{
	SP_CNT_ADD(*field, n);
}

/* The workers' cache_* TCP events summed by name (sp_tcp_ep.h): names[i], values[i]; returns
 * how many (at most max). */
unsigned int sp_cache_worker_sums(const struct sp_cache_ctl *cc, const char **names,
				  uint64_t *values, unsigned int max);

#endif /* SP_CACHE_INT_H */
