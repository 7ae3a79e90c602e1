/* The object cache as the workers and the control thread share it (seed 000, DESIGN 3.3): the
 * entries, the lock-free index, the version counters, fill and punt messages. */
#ifndef SP_CACHE_H
#define SP_CACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <rte_hash.h>
#include <rte_ip.h>

#include "sp_cache_http.h"
#include "sp_loc.h"
#include "sp_svc.h"

/*
 * Ownership. The control thread is the only writer of the index and of the entries (it inserts,
 * replaces, evicts and frees them). Workers read both lock-free: an entry found in the index
 * stays readable until the worker's next RCU quiescent state (once per loop); a worker sending
 * a body over several loops holds a reference (refcnt) and the control thread frees a removed
 * entry only once a grace period has passed AND refcnt is 0.
 *
 * Versions. dp->cache->ver[] holds SP_CACHE_VER_SLOTS counters; an object's counter is
 * ver[sp_cache_ver_slot(hash)]. Anything that changes an object (a PUT, DELETE or POST on it seen
 * by a worker, a revalidation that found it changed, a purge) adds one to its counter (release)
 * BEFORE the change can happen. A fill carries the counter's value read when its request was
 * decided; the control thread inserts it only if the counter still has that value, and an entry
 * is served only while entry->version equals the counter: a slow fill can never overwrite a newer
 * write or an invalidation, and an invalidated entry is dead at once in every worker, before the
 * control thread has even removed it. Two objects may share a counter: a change then costs the
 * other one a miss. svc_gen[slot] is the same for a whole service (purge, a POST or DELETE on a
 * bucket, a change of the service's cache settings or a service slot reused).
 */

#define SP_CACHE_VER_SLOTS 65536 /* version counters (power of two) */
#define SP_CACHE_HEAD_MAX 8192	 /* bytes of a response head a fill may carry */

/* The policy of a service (sp_svc_profile.cache; the services API's cache.policy). */
enum sp_cache_policy {
	SP_CACHE_POLICY_NONE = 0, /* nothing is cached */
	SP_CACHE_POLICY_TTL,	  /* an entry is served until stored + ttl_s, then fetched again */
	SP_CACHE_POLICY_VERIFY,	  /* served whatever its age; past stored + ttl_s each hit asks
				   * the control thread to revalidate it (If-None-Match to the
				   * storage node): replaced or dropped if it changed */
};

/* The index's key: a 64-bit hash of (slot, name) and the slot (the name is compared too). */
struct sp_cache_key {
	uint64_t hash;
	uint32_t slot;
	uint32_t zero;
};

/*
 * One cached object: a 200 response of a storage node (or a written-through PUT), one
 * allocation from DPDK memory: this struct, then name, etag, last_modified, server, tmpl, body.
 *
 * tmpl: the response's header lines after the status line, in the order the node sent them,
 * each "Name: value\r\n", without Connection, Keep-Alive, Transfer-Encoding; the values of Date,
 * x-amz-request-id, x-amz-id-2 and Content-Length are cut out and marks[i] says where
 * (tmpl offset) which value goes. The final blank line is not in tmpl. A worker's 200 is
 * "HTTP/1.1 200 OK\r\n" + tmpl with the marks filled + "\r\n"; a 206 adds
 * "Content-Range: bytes a-b/size\r\n" before the blank line.
 */
struct sp_cache_entry {
	/* set by the control thread before the entry is published, then read-only */
	uint64_t key_hash;
	uint64_t version;  /* the fill's ver[] value: the entry is valid while they are equal */
	uint32_t svc_gen;  /* svc_gen[slot] at the fill: ... and while this one is */
	uint32_t ver_slot; /* sp_cache_ver_slot(key_hash) */
	uint16_t slot;
	uint16_t name_len;
	uint16_t etag_len;   /* the ETag value as sent, quotes included (0: none) */
	uint16_t lm_len;     /* the Last-Modified value as sent (0: none) */
	uint16_t server_len; /* the Server value (0: none) */
	uint16_t tmpl_len;
	uint8_t n_marks;
	uint8_t write_through; /* made from a PUT's body, not from a GET's response */
	uint8_t body_sum_ok;   /* body_sum is set (sp_cache_entry_seal) */
	uint8_t pad;
	uint16_t body_sum; /* ones' complement sum of the whole body (rte_raw_cksum): a reply
			    * carrying the body in one segment adds it instead of summing it */
	uint16_t pad1;
	struct sp_cache_tmpl_mark marks[SP_CACHE_TMPL_MARKS]; /* sp_cache_http.h */
	int64_t last_modified_s; /* Last-Modified in unix seconds (INT64_MIN: none or bad) */
	int64_t stored_s;	 /* unix seconds when inserted (or last revalidated) */
	uint64_t size;		 /* body bytes */
	uint64_t alloc_bytes;	 /* what it counts against the budget */
	const char *name;	 /* "/bucket/key" as the client sent it */
	const char *etag;
	const char *last_modified;
	const char *server;
	const char *tmpl;
	const uint8_t *body;
	/* shared, changed at run time */
	uint64_t fresh_until_tsc; /* control: stored + ttl (a revalidation moves it) */
	uint64_t stale_until_tsc; /* control: how long it may be served when the storage side
				   * fails (fresh_until + stale_if_error_s) */
	uint32_t refcnt;	  /* workers: responses in flight from body (atomic) */
	uint8_t ref;		  /* CLOCK: workers set it on a hit, the control thread clears it */
	uint8_t reval;		  /* 1 while a revalidation is asked or in flight: the worker
				   * that sets it (CAS 0 -> 1) punts SP_PUNT_CACHE_REVAL; the
				   * control thread clears it when done */
	uint16_t pad2;
	uint64_t hits;	      /* approximate (relaxed adds by workers) */
	uint64_t clock_seen;  /* control: hits when the CLOCK hand last passed */
	uint8_t clock_credit; /* control: passes it survives without a hit (GCLOCK, <= 3) */
	char data[];
} __rte_cache_aligned;

/* A version counter and a fill claim (one per ver slot, written by workers and control). */
struct sp_cache_ver {
	uint64_t ver;	     /* see above */
	uint64_t fill_until; /* a worker copies a fill of an object of this slot until this TSC
			      * (0: none); claimed with a CAS, cleared by the control thread when
			      * the fill arrives or by the worker when it gives up */
};

/* What the dataplane creates from [cache] and both sides share (dp->cache; NULL: no cache). */
struct sp_cache {
	struct rte_hash *index;	  /* struct sp_cache_key -> struct sp_cache_entry * (LF reads) */
	struct sp_cache_ver *ver; /* SP_CACHE_VER_SLOTS */
	uint32_t svc_gen[SP_SVC_MAX];
	struct rte_mempool *fill_pool; /* struct sp_cache_fill + fill_cap bytes */
	uint32_t fill_cap;	       /* data bytes of a fill: SP_CACHE_HEAD_MAX + max_object */
	uint64_t max_object;	       /* bytes */
	uint64_t budget;	       /* bytes */
	uint32_t entries;	       /* index capacity */
	uint64_t fill_timeout_tsc;
	uint64_t wait_tsc; /* [cache] coalesce_wait_ms (0: a miss never waits for a fill) */
	uint8_t admission; /* [cache] admission: 0 all, 1 second-hit */
};

/* 64-bit hash of (slot, name): FNV-1a then a final mix. */
static inline uint64_t
sp_cache_hash(uint16_t slot, const char *name, uint32_t len)
{
	uint64_t h = 1469598103934665603ULL ^ slot;
	uint32_t i;

	for (i = 0; i < len; i++)
		h = (h ^ (uint8_t)name[i]) * 1099511628211ULL;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static inline uint32_t
sp_cache_ver_slot(uint64_t hash)
{
	return (uint32_t)(hash >> 40) & (SP_CACHE_VER_SLOTS - 1);
}

/* The entry of (slot, name), or NULL (worker: lock-free; valid until its next quiescent state).
 * The caller checks sp_cache_entry_valid() too. */
static inline struct sp_cache_entry *
sp_cache_lookup(const struct sp_cache *c, uint16_t slot, const char *name, uint32_t len,
		uint64_t hash)
{
	struct sp_cache_key k = {.hash = hash, .slot = slot, .zero = 0};
	void *data;

	if (rte_hash_lookup_data(c->index, &k, &data) < 0)
		return NULL;
	{
		struct sp_cache_entry *e = data;

		if (e->slot != slot || e->name_len != len || memcmp(e->name, name, len) != 0)
			return NULL;
		return e;
	}
}

/* The writer, once body and size are set, before publishing e: the body's checksum sum. */
static inline void
sp_cache_entry_seal(struct sp_cache_entry *e)
{
	e->body_sum = rte_raw_cksum(e->body, e->size);
	e->body_sum_ok = 1;
}

/* Whether no write or purge happened since e was filled. */
static inline bool
sp_cache_entry_valid(const struct sp_cache *c, const struct sp_cache_entry *e)
{
	return __atomic_load_n(&c->ver[e->ver_slot].ver, __ATOMIC_ACQUIRE) == e->version &&
	       __atomic_load_n(&c->svc_gen[e->slot], __ATOMIC_ACQUIRE) == e->svc_gen;
}

/* Invalidate an object now (worker or control): every worker stops serving it. */
static inline void
sp_cache_invalidate(struct sp_cache *c, uint64_t hash)
{
	__atomic_fetch_add(&c->ver[sp_cache_ver_slot(hash)].ver, 1, __ATOMIC_RELEASE);
}

/* ... and a whole service. */
static inline void
sp_cache_invalidate_svc(struct sp_cache *c, uint16_t slot)
{
	__atomic_fetch_add(&c->svc_gen[slot], 1, __ATOMIC_RELEASE);
}

/* What a fill carries (SP_PUNT_CACHE_FILL). */
enum sp_cache_fill_kind {
	SP_CACHE_FILL_GET = 1, /* data: the node's 200 response head (head_len), then the body */
	SP_CACHE_FILL_PUT,     /* data: the PUT's request head (head_len), its body (body_len),
				* then the node's 2xx response head (resp_len) */
};

/*
 * A fill: a worker copies a cacheable response (or a small PUT's body) as it splices it and
 * punts it whole; the control thread builds the entry, inserts it if ver[ver_slot].ver still is
 * version and svc_gen[slot] still is svc_gen (else it is counted stale and dropped), clears
 * ver[ver_slot].fill_until, and puts the fill back in the pool.
 */
struct sp_cache_fill {
	uint16_t worker;
	uint16_t slot;
	uint8_t kind; /* enum sp_cache_fill_kind */
	uint8_t pad;
	uint16_t name_len;
	uint32_t ver_slot;
	uint32_t svc_gen;
	uint64_t key_hash;
	uint64_t version;
	uint32_t head_len;
	uint32_t body_len;
	uint32_t resp_len; /* PUT only */
	uint32_t len;	   /* bytes of data in use (head_len + body_len + resp_len when whole) */
	char name[SP_LOC_NAME_MAX];
	char data[]; /* dp->cache->fill_cap bytes */
};

struct sp_dp;

/* dp->cache from [cache] (NULL when size_kb is 0); 0 or -errno with a message in err. */
int sp_cache_create(struct sp_dp *dp, char *err, size_t errlen);
/* Free the index and the fill pool (the entries are the control side's: freed before). */
void sp_cache_destroy(struct sp_dp *dp);
/*
 * A new entry (rte_malloc, one block) of object (slot, name) from a storage node's 200 response:
 * head (r: as sp_http_parse_response() parsed it) and body (body_len bytes): the stored head
 * (sp_cache_tmpl_build), ETag, Last-Modified (and its time), Server, the body and its checksum
 * sum, key_hash, ver_slot, stored_s, alloc_bytes. version, svc_gen, write_through and the
 * freshness are the caller's to set. NULL with *err: -ENOSPC (the head does not make a
 * template), -EINVAL (a value over 64 KiB), -ENOMEM.
 */
struct sp_cache_entry *sp_cache_entry_new(uint16_t slot, const char *name, size_t name_len,
					  uint64_t key_hash, const char *head,
					  const struct sp_http_resp *r, const void *body,
					  size_t body_len, int *err);

/* Put a fill back unused, releasing its claim (no handler, or the handler refusing it). */
void sp_cache_fill_drop(struct sp_dp *dp, struct sp_cache_fill *fill);

#endif /* SP_CACHE_H */
