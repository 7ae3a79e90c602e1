/* The object cache's writer in the control thread: entries from the workers' fills and
 * write-through PUTs, versions, CLOCK eviction to the byte budget, second-hit admission, removal
 * through an RCU graveyard, revalidation (policy verify) and write-through confirmation with a
 * conditional GET to the storage node, stale-if-error (docs/cache.md). */
#include "sp_cache_ctl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <rte_cycles.h>
#include <rte_hash.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include "sp_cache_int.h"
#include "sp_ctl.h"
#include "sp_dp.h"
#include "sp_locator.h"
#include "sp_log.h"

#define TICK_US 2000	     /* the graveyard's and the waiting entries' timer */
#define WAIT_MAX 64	     /* entries waiting for room at most */
#define ETAG_MAX 256	     /* longest ETag a revalidation sends back */
#define BLOOM_MIN_BITS 65536 /* the doorkeeper's size at least */
#define BLOOM_K 3

const char *const sp_cache_event_names[CC_MAX] = {
#define CC_NAME(e, s, h) s,
	CC_EVENTS(CC_NAME)
#undef CC_NAME
};
const char *const sp_cache_event_help[CC_MAX] = {
#define CC_HELP(e, s, h) h,
	CC_EVENTS(CC_HELP)
#undef CC_HELP
};
const char *const sp_cache_reject_names[CCR_MAX] = {
#define CC_NAME(e, s) s,
	CC_REJECTS(CC_NAME)
#undef CC_NAME
};
const char *const sp_cache_reval_names[CCV_MAX] = {
#define CC_NAME(e, s) s,
	CC_REVALS(CC_NAME)
#undef CC_NAME
};
const char *const sp_cache_wt_names[CCW_MAX] = {
#define CC_NAME(e, s) s,
	CC_WTS(CC_NAME)
#undef CC_NAME
};

/* A write-through waiting for its confirmation: the 200 head it will have (Last-Modified goes
 * at lm_at), the body, the version read after the PUT's own invalidation. */
struct cc_wtr {
	uint16_t slot;
	uint16_t name_len;
	uint32_t svc_gen;
	uint64_t key_hash;
	uint64_t version;
	char name[SP_LOC_NAME_MAX];
	char *head; /* malloc: "HTTP/1.1 200 OK\r\n..." up to the final blank line, without it */
	size_t head_len, lm_at;
	uint8_t *body; /* malloc */
	size_t body_len;
};

enum job_phase {
	J_LOCATE = 1, /* waiting for the locator resolver */
	J_HTTP,	      /* the conditional GET is in flight */
	J_ENDED,      /* the outcome was applied; only the locator's callback still to come */
};

/* A revalidation of a live entry (e, refcnt held) or a write-through confirmation (wt). */
struct cc_job {
	LIST_ENTRY(cc_job) next;
	struct sp_cache_ctl *cc;
	struct sp_cache_entry *e;
	struct cc_wtr *wt;
	uint16_t slot;
	uint16_t name_len;
	uint8_t phase;
	bool starting, failed_early;
	uint64_t key_hash;
	char name[SP_LOC_NAME_MAX];
	char etag[ETAG_MAX + 1];
	struct evhttp_connection *conn;
	struct evhttp_request *req;
	struct event *timer;
};

/* ---- small helpers -------------------------------------------------------------------------- */

static inline uint64_t
gauge_get(const uint64_t *g)
{
	return __atomic_load_n(g, __ATOMIC_RELAXED);
}

static inline void
gauge_add(uint64_t *g, int64_t n)
{
	__atomic_store_n(g, *g + (uint64_t)n, __ATOMIC_RELAXED);
}

static inline void
ev(struct sp_cache_ctl *cc, enum cc_event e)
{
	cc_count(&cc->ev[e], 1);
}

static struct sp_cache_key
key_of(uint64_t hash, uint16_t slot)
{
	struct sp_cache_key k = {.hash = hash, .slot = slot, .zero = 0};

	return k;
}

/* The service's profile if it caches, else NULL. */
static const struct sp_svc_profile *
caching_profile(const struct sp_cache_ctl *cc, uint16_t slot)
{
	const struct sp_svc_table *t =
		cc->dp != NULL ? __atomic_load_n(&cc->dp->svc_table, __ATOMIC_ACQUIRE) : NULL;

	if (t == NULL || slot >= SP_SVC_MAX || t->profile[slot].cache == SP_CACHE_POLICY_NONE)
		return NULL;
	return &t->profile[slot];
}

static bool
version_holds(const struct sp_cache *c, uint64_t key_hash, uint16_t slot, uint64_t version,
	      uint32_t svc_gen)
{
	return __atomic_load_n(&c->ver[sp_cache_ver_slot(key_hash)].ver, __ATOMIC_ACQUIRE) ==
		       version &&
	       __atomic_load_n(&c->svc_gen[slot], __ATOMIC_ACQUIRE) == svc_gen;
}

static void
arm_timer(struct sp_cache_ctl *cc)
{
	struct timeval tv = {.tv_sec = 0, .tv_usec = TICK_US};

	if (!cc->timer_armed && cc->timer != NULL && event_add(cc->timer, &tv) == 0)
		cc->timer_armed = true;
}

/* ---- the doorkeeper (second-hit admission) ------------------------------------------------- */

static uint32_t
bloom_bit(const struct sp_cache_ctl *cc, uint64_t h, unsigned int i)
{
	uint64_t x = h + (uint64_t)i * (h >> 32 | 1) * 0x9e3779b97f4a7c15ULL;

	x ^= x >> 29;
	return (uint32_t)x & (cc->bloom_bits - 1);
}

static uint64_t
bloom_key(uint64_t key_hash, uint16_t slot)
{
	return key_hash ^ ((uint64_t)slot * 0xc2b2ae3d27d4eb4fULL);
}

static bool
bloom_has(const struct sp_cache_ctl *cc, uint64_t h)
{
	unsigned int i;

	for (i = 0; i < BLOOM_K; i++) {
		uint32_t b = bloom_bit(cc, h, i);

		if (!(cc->bloom[b / 64] & (1ULL << (b % 64))))
			return false;
	}
	return true;
}

static void
bloom_add(struct sp_cache_ctl *cc, uint64_t h)
{
	unsigned int i;

	if (cc->bloom_n >= cc->bloom_max) {
		memset(cc->bloom, 0, cc->bloom_bits / 8);
		cc->bloom_n = 0;
		ev(cc, CC_DOORKEEPER_RESETS);
	}
	for (i = 0; i < BLOOM_K; i++) {
		uint32_t b = bloom_bit(cc, h, i);

		cc->bloom[b / 64] |= 1ULL << (b % 64);
	}
	cc->bloom_n++;
}

/* ---- removal: the graveyard ----------------------------------------------------------------- */

/* Free e now (no worker can see it: a grace period passed and refcnt is 0, or none run). */
static void
entry_free(struct sp_cache_entry *e)
{
	rte_free(e);
}

/* Put e (taken out of the index, or replaced in it) in the graveyard. */
static void
bury(struct sp_cache_ctl *cc, struct sp_cache_entry *e, int32_t pos)
{
	struct cc_grave *g = calloc(1, sizeof(*g));

	if (g == NULL) {
		/* cannot wait without memory: leak it rather than free it under a reader */
		SP_LOG(ERR, "cache: out of memory for the graveyard: an entry is leaked");
		return;
	}
	g->e = e;
	g->pos = pos;
	g->token = cc->dp != NULL && cc->dp->qsbr != NULL ? rte_rcu_qsbr_start(cc->dp->qsbr) : 0;
	TAILQ_INSERT_TAIL(&cc->graves, g, next);
	gauge_add(&cc->n_grave, 1);
	gauge_add(&cc->grave_bytes, (int64_t)e->alloc_bytes);
	if (pos >= 0)
		gauge_add(&cc->n_grave_pos, 1);
	arm_timer(cc);
}

/* Take the live entry at pos out of the index (why: the counter to add). */
static void
remove_at(struct sp_cache_ctl *cc, uint32_t pos, enum cc_event why)
{
	struct sp_cache_entry *e = cc->at[pos];
	struct sp_cache_key k;
	int32_t rc;

	if (e == NULL)
		return;
	k = key_of(e->key_hash, e->slot);
	rc = rte_hash_del_key(cc->c->index, &k);
	if (rc < 0 || (uint32_t)rc != pos)
		SP_LOG(ERR, "cache: index and entries disagree (position %u, del %d)", pos, rc);
	cc->at[pos] = NULL;
	gauge_add(&cc->n_live, -1);
	gauge_add(&cc->live_bytes, -(int64_t)e->alloc_bytes);
	ev(cc, why);
	bury(cc, e, rc >= 0 ? rc : -1);
}

/* Free what the graveyard may free: grace period over (tokens in order) and no reader left. */
static void
graves_reclaim(struct sp_cache_ctl *cc)
{
	struct cc_grave *g, *n;

	for (g = TAILQ_FIRST(&cc->graves); g != NULL; g = n) {
		n = TAILQ_NEXT(g, next);
		if (cc->dp != NULL && cc->dp->qsbr != NULL &&
		    rte_rcu_qsbr_check(cc->dp->qsbr, g->token, false) != 1)
			break; /* later tokens are not done either */
		if (__atomic_load_n(&g->e->refcnt, __ATOMIC_ACQUIRE) != 0)
			continue; /* a worker still sends its body, or a revalidation holds it */
		TAILQ_REMOVE(&cc->graves, g, next);
		if (g->pos >= 0) {
			if (cc->c != NULL)
				rte_hash_free_key_with_position(cc->c->index, g->pos);
			gauge_add(&cc->n_grave_pos, -1);
		}
		gauge_add(&cc->n_grave, -1);
		gauge_add(&cc->grave_bytes, -(int64_t)g->e->alloc_bytes);
		entry_free(g->e);
		free(g);
		ev(cc, CC_FREED);
	}
}

/* ---- lookups -------------------------------------------------------------------------------- */

/* The position of the live entry of (slot, key_hash), or -1. */
static int32_t
pos_of(const struct sp_cache_ctl *cc, uint16_t slot, uint64_t key_hash)
{
	struct sp_cache_key k = key_of(key_hash, slot);
	int32_t pos;

	if (cc->c == NULL)
		return -1;
	pos = rte_hash_lookup(cc->c->index, &k);
	if (pos < 0 || (uint32_t)pos >= cc->cap || cc->at[pos] == NULL)
		return -1;
	return pos;
}

const struct sp_cache_entry *
sp_cache_ctl_find(struct sp_cache_ctl *cc, uint16_t slot, const char *name, size_t len)
{
	int32_t pos;
	const struct sp_cache_entry *e;

	if (cc == NULL || cc->c == NULL || slot >= SP_SVC_MAX || len > SP_LOC_NAME_MAX)
		return NULL;
	pos = pos_of(cc, slot, sp_cache_hash(slot, name, (uint32_t)len));
	if (pos < 0)
		return NULL;
	e = cc->at[pos];
	if (e->name_len != len || memcmp(e->name, name, len) != 0)
		return NULL;
	return e;
}

/* ---- eviction and insertion ----------------------------------------------------------------- */

#define CLOCK_CREDIT_MAX 3

/*
 * One turn of the CLOCK, counting (GCLOCK): an entry the hand meets earns a credit per hit
 * since its last pass (at most CLOCK_CREDIT_MAX) and spends one per pass; the first entry met
 * without credit is removed (dead ones as they come: counted invalidated). So an object hit
 * often survives several passes without a hit, one hit once survives one. Returns 0, or
 * -ENOENT (nothing live but keep).
 */
static int
clock_evict(struct sp_cache_ctl *cc, const struct sp_cache_entry *keep)
{
	uint64_t steps, hits, credit;

	for (steps = 0; steps < (CLOCK_CREDIT_MAX + 2ULL) * cc->cap + 1; steps++) {
		uint32_t pos = cc->hand;
		struct sp_cache_entry *e = cc->at[pos];

		cc->hand = (cc->hand + 1) % cc->cap;
		if (e == NULL || e == keep)
			continue;
		if (!sp_cache_entry_valid(cc->c, e)) {
			remove_at(cc, pos, CC_INVALIDATED);
			return 0;
		}
		hits = __atomic_load_n(&e->hits, __ATOMIC_RELAXED);
		credit = RTE_MIN(e->clock_credit + (hits - e->clock_seen), CLOCK_CREDIT_MAX + 0ULL);
		e->clock_seen = hits;
		__atomic_store_n(&e->ref, 0, __ATOMIC_RELAXED);
		if (credit > 0) {
			e->clock_credit = (uint8_t)(credit - 1);
			continue;
		}
		remove_at(cc, pos, CC_EVICTED);
		return 0;
	}
	return -ENOENT;
}

static void
reject(struct sp_cache_ctl *cc, enum cc_reject why)
{
	ev(cc, CC_FILLS_REJECTED);
	cc_count(&cc->rej[why], 1);
}

enum ins_rc {
	INS_DONE = 0, /* in the index */
	INS_WAIT,     /* waiting for the graveyard to free room (cc owns it) */
	INS_DROPPED,  /* refused and freed (counted) */
};

/*
 * Put e in the index: version checked, room made by CLOCK (live + graveyard bytes never over
 * the budget, positions never over the index's), admission applied when admit (a fill seen the
 * first time). e is the callee's in every case.
 */
static enum ins_rc
insert(struct sp_cache_ctl *cc, struct sp_cache_entry *e, bool admit)
{
	struct sp_cache *c = cc->c;
	struct sp_cache_key k = key_of(e->key_hash, e->slot);
	uint64_t need = e->alloc_bytes;
	int32_t old = pos_of(cc, e->slot, e->key_hash);
	uint64_t positions = old >= 0 ? 0 : 1; /* a replacement keeps its position */
	struct sp_cache_entry *prev;
	int32_t pos;

	if (c == NULL || cc->stopping) {
		reject(cc, CCR_STOPPING);
		entry_free(e);
		return INS_DROPPED;
	}
	if (!sp_cache_entry_valid(c, e)) {
		ev(cc, CC_FILLS_STALE);
		entry_free(e);
		return INS_DROPPED;
	}
	if (caching_profile(cc, e->slot) == NULL) {
		reject(cc, CCR_POLICY_NONE);
		entry_free(e);
		return INS_DROPPED;
	}
	if (need > c->budget) {
		reject(cc, CCR_TOO_BIG);
		entry_free(e);
		return INS_DROPPED;
	}
	/* room once the graveyard is empty: live bytes and positions only */
	if (admit && c->admission == 1 &&
	    (cc->live_bytes + need > c->budget ||
	     cc->n_live + cc->n_grave_pos + positions > c->entries)) {
		uint64_t bk = bloom_key(e->key_hash, e->slot);

		if (!bloom_has(cc, bk)) {
			bloom_add(cc, bk);
			ev(cc, CC_ADMISSION_REJECTED);
			entry_free(e);
			return INS_DROPPED;
		}
	}
	while (cc->live_bytes + need > c->budget ||
	       cc->n_live + cc->n_grave_pos + positions > c->entries)
		if (clock_evict(cc, old >= 0 ? cc->at[old] : NULL) != 0)
			break;
	old = pos_of(cc, e->slot, e->key_hash); /* the CLOCK may have taken it */
	positions = old >= 0 ? 0 : 1;
	if (cc->live_bytes + need > c->budget ||
	    cc->n_live + cc->n_grave_pos + positions > c->entries) {
		/* only a replaced entry of the same object is left (its bytes go to the graveyard
		 * anyway): take it out and wait */
		if (old >= 0)
			remove_at(cc, (uint32_t)old, CC_INVALIDATED);
		old = -1;
		positions = 1;
	}
	if (cc->live_bytes + cc->grave_bytes + need > c->budget ||
	    cc->n_live + cc->n_grave_pos + positions > c->entries) {
		struct cc_wait *w;

		if (cc->live_bytes + need > c->budget || cc->n_live + positions > c->entries) {
			reject(cc, CCR_TOO_BIG);
			entry_free(e);
			return INS_DROPPED;
		}
		if (cc->n_wait >= WAIT_MAX || (w = calloc(1, sizeof(*w))) == NULL) {
			reject(cc, CCR_WAIT_FULL);
			entry_free(e);
			return INS_DROPPED;
		}
		w->e = e;
		TAILQ_INSERT_TAIL(&cc->waits, w, next);
		gauge_add(&cc->n_wait, 1);
		gauge_add(&cc->wait_bytes, (int64_t)need);
		ev(cc, CC_WAITED);
		arm_timer(cc);
		return INS_WAIT;
	}
	prev = old >= 0 ? cc->at[old] : NULL;
	if (rte_hash_add_key_data(c->index, &k, e) != 0 ||
	    (pos = rte_hash_lookup(c->index, &k)) < 0 || (uint32_t)pos >= cc->cap) {
		reject(cc, CCR_INDEX_FULL);
		entry_free(e);
		return INS_DROPPED;
	}
	if (prev != NULL) {
		/* replaced in place: the old entry has no position of its own any more */
		gauge_add(&cc->n_live, -1);
		gauge_add(&cc->live_bytes, -(int64_t)prev->alloc_bytes);
		ev(cc, CC_REPLACED);
		bury(cc, prev, -1);
	}
	cc->at[pos] = e;
	gauge_add(&cc->n_live, 1);
	gauge_add(&cc->live_bytes, (int64_t)need);
	ev(cc, CC_INSERTED);
	return INS_DONE;
}

/* Insert what waits, in order, as far as there is room. */
static void
waits_retry(struct sp_cache_ctl *cc)
{
	struct cc_wait *w;
	unsigned int n = (unsigned int)cc->n_wait;

	while (n-- > 0 && (w = TAILQ_FIRST(&cc->waits)) != NULL) {
		struct sp_cache_entry *e = w->e;

		if (cc->live_bytes + cc->grave_bytes + e->alloc_bytes > cc->c->budget &&
		    sp_cache_entry_valid(cc->c, e))
			break; /* still no room: keep the order */
		TAILQ_REMOVE(&cc->waits, w, next);
		gauge_add(&cc->n_wait, -1);
		gauge_add(&cc->wait_bytes, -(int64_t)e->alloc_bytes);
		free(w);
		insert(cc, e, false); /* may queue it again (counted waited twice) */
	}
}

void
sp_cache_ctl_reclaim(struct sp_cache_ctl *cc)
{
	struct cc_job *j;

	if (cc == NULL || cc->c == NULL)
		return;
	graves_reclaim(cc);
	if (!cc->stopping)
		waits_retry(cc);
	while ((j = LIST_FIRST(&cc->zombies)) != NULL) {
		LIST_REMOVE(j, next);
		if (j->conn != NULL)
			evhttp_connection_free(j->conn);
		free(j);
	}
}

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct sp_cache_ctl *cc = arg;

	RTE_SET_USED(fd);
	RTE_SET_USED(what);
	cc->timer_armed = false;
	sp_cache_ctl_reclaim(cc);
	if (!TAILQ_EMPTY(&cc->graves) || !TAILQ_EMPTY(&cc->waits) || !LIST_EMPTY(&cc->zombies))
		arm_timer(cc);
}

/* ---- building entries ----------------------------------------------------------------------- */

/* Whether a Cache-Control value forbids a shared cache to store the response. */
static bool
no_store(const char *v, size_t len)
{
	static const char *const bad[] = {"no-store", "private"};
	unsigned int b;
	size_t i, n;

	for (b = 0; b < RTE_DIM(bad); b++) {
		n = strlen(bad[b]);
		for (i = 0; i + n <= len; i++)
			if (strncasecmp(v + i, bad[b], n) == 0)
				return true;
	}
	return false;
}

/*
 * An entry from a 200 response head (head_len bytes, complete) and its body, for (slot, name),
 * under (version, svc_gen). NULL with *why set when it cannot be cached.
 */
static struct sp_cache_entry *
build(struct sp_cache_ctl *cc, const char *head, size_t head_len, const uint8_t *body,
      size_t body_len, uint16_t slot, const char *name, size_t name_len, uint64_t key_hash,
      uint64_t version, uint32_t svc_gen, bool write_through, enum cc_reject *why)
{
	const struct sp_svc_profile *pr = caching_profile(cc, slot);
	struct sp_http_resp r;
	struct sp_cache_entry *e;
	const char *ccv;
	size_t ccv_len = 0;
	uint64_t now_tsc;
	int hl, rc;

	if (pr == NULL) {
		*why = CCR_POLICY_NONE;
		return NULL;
	}
	if (body_len > cc->c->max_object) {
		*why = CCR_TOO_BIG;
		return NULL;
	}
	hl = sp_http_parse_response(head, head_len, head_len, &r);
	if (hl <= 0 || (size_t)hl != head_len) {
		*why = CCR_BAD_HEAD;
		return NULL;
	}
	if (r.status != 200) {
		*why = CCR_NOT_200;
		return NULL;
	}
	if (!r.has_content_length || r.chunked || r.content_length != body_len) {
		*why = CCR_LENGTH;
		return NULL;
	}
	ccv = sp_http_resp_header(head, &r, "cache-control", &ccv_len);
	if (ccv != NULL && no_store(ccv, ccv_len)) {
		*why = CCR_NO_STORE;
		return NULL;
	}
	e = sp_cache_entry_new(slot, name, name_len, key_hash, head, &r, body, body_len, &rc);
	if (e == NULL) {
		*why = rc == -ENOMEM ? CCR_NO_MEMORY : rc == -ENOSPC ? CCR_TEMPLATE : CCR_BAD_HEAD;
		return NULL;
	}
	e->version = version;
	e->svc_gen = svc_gen;
	e->write_through = write_through;
	now_tsc = rte_rdtsc();
	e->fresh_until_tsc = now_tsc + (uint64_t)pr->cache_ttl_s * cc->hz;
	e->stale_until_tsc = e->fresh_until_tsc + (uint64_t)pr->stale_if_error_s * cc->hz;
	return e;
}

/* ---- fills ---------------------------------------------------------------------------------- */

/* Whether the fill's own fields hang together. */
static bool
fill_ok(const struct sp_cache_ctl *cc, const struct sp_cache_fill *f)
{
	if (f->slot >= SP_SVC_MAX || f->name_len == 0 || f->name_len > SP_LOC_NAME_MAX ||
	    f->ver_slot >= SP_CACHE_VER_SLOTS || f->len > cc->c->fill_cap)
		return false;
	if (f->key_hash != sp_cache_hash(f->slot, f->name, f->name_len) ||
	    f->ver_slot != sp_cache_ver_slot(f->key_hash))
		return false;
	if (f->kind == SP_CACHE_FILL_GET)
		return (uint64_t)f->head_len + f->body_len == f->len;
	if (f->kind == SP_CACHE_FILL_PUT)
		return (uint64_t)f->head_len + f->body_len + f->resp_len == f->len;
	return false;
}

static void
fill_get(struct sp_cache_ctl *cc, const struct sp_cache_fill *f)
{
	enum cc_reject why;
	struct sp_cache_entry *e;

	e = build(cc, f->data, f->head_len, (const uint8_t *)f->data + f->head_len, f->body_len,
		  f->slot, f->name, f->name_len, f->key_hash, f->version, f->svc_gen, false, &why);
	if (e == NULL) {
		reject(cc, why);
		return;
	}
	insert(cc, e, true);
}

static void job_start(struct sp_cache_ctl *cc, struct sp_cache_entry *e, struct cc_wtr *wt);

static void
wtr_free(struct cc_wtr *wt)
{
	if (wt == NULL)
		return;
	free(wt->head);
	free(wt->body);
	free(wt);
}

/* Append "Name: value\r\n" to the evbuffer. */
static void
add_line(struct evbuffer *b, const char *name, const char *v, size_t len)
{
	evbuffer_add_printf(b, "%s: %.*s\r\n", name, (int)len, v);
}

/*
 * A write-through: the node's 200 head as it will be (a node's order: Server, Date,
 * Content-Type, Content-Length, Last-Modified, x-amz-request-id, x-amz-id-2, ETag,
 * Accept-Ranges, x-amz-meta-*), held until a conditional GET gives the real Last-Modified.
 */
static void
fill_put(struct sp_cache_ctl *cc, const struct sp_cache_fill *f)
{
	static const char zero_id[16] = "0000000000000000";
	const char *req = f->data, *resp = f->data + f->head_len + f->body_len;
	struct sp_http_req *rq = NULL;
	struct sp_http_resp r;
	struct evbuffer *b = NULL;
	struct cc_wtr *wt = NULL;
	const char *etag, *server;
	size_t etag_len = 0, server_len = 0, lm_at;
	char date[SP_HTTP_DATE_LEN], id2[24];
	unsigned int i;
	int hl;

	cc_count(&cc->wt[CCW_ASKED], 1);
	if (caching_profile(cc, f->slot) == NULL) {
		reject(cc, CCR_POLICY_NONE);
		return;
	}
	if (f->body_len > cc->c->max_object) {
		reject(cc, CCR_TOO_BIG);
		return;
	}
	hl = sp_http_parse_response(resp, f->resp_len, f->resp_len, &r);
	if (hl <= 0 || (uint32_t)hl != f->resp_len) {
		reject(cc, CCR_BAD_HEAD);
		return;
	}
	if (r.status < 200 || r.status > 299) {
		reject(cc, CCR_NOT_200);
		return;
	}
	etag = sp_http_resp_header(resp, &r, "etag", &etag_len);
	server = sp_http_resp_header(resp, &r, "server", &server_len);
	if (etag == NULL || etag_len == 0 || etag_len > ETAG_MAX) {
		reject(cc, CCR_NO_ETAG);
		return;
	}
	rq = malloc(sizeof(*rq));
	if (rq == NULL) {
		reject(cc, CCR_NO_MEMORY);
		return;
	}
	sp_http_req_init(rq);
	hl = sp_http_parse_request(req, f->head_len, rq, NULL);
	if (hl <= 0 || (uint32_t)hl != f->head_len || rq->method != SP_HTTP_METHOD_PUT ||
	    (rq->has_content_length && rq->content_length != f->body_len)) {
		free(rq);
		reject(cc, CCR_BAD_HEAD);
		return;
	}
	wt = calloc(1, sizeof(*wt));
	b = evbuffer_new();
	if (wt == NULL || b == NULL)
		goto nomem;
	sp_http_date_format((int64_t)time(NULL), date);
	sp_cache_id2(zero_id, id2);
	evbuffer_add_printf(b, "HTTP/1.1 200 OK\r\n");
	if (server != NULL && server_len > 0)
		add_line(b, "Server", server, server_len);
	add_line(b, "Date", date, sizeof(date));
	if (sp_http_req_has(rq, SP_HTTP_HDR_CONTENT_TYPE) &&
	    rq->hdr[SP_HTTP_HDR_CONTENT_TYPE].len > 0)
		add_line(b, "Content-Type", req + rq->hdr[SP_HTTP_HDR_CONTENT_TYPE].off,
			 rq->hdr[SP_HTTP_HDR_CONTENT_TYPE].len);
	else
		add_line(b, "Content-Type", "binary/octet-stream", 19);
	evbuffer_add_printf(b, "Content-Length: %" PRIu32 "\r\n", f->body_len);
	lm_at = evbuffer_get_length(b);
	add_line(b, "x-amz-request-id", zero_id, sizeof(zero_id));
	add_line(b, "x-amz-id-2", id2, sizeof(id2));
	add_line(b, "ETag", etag, etag_len);
	add_line(b, "Accept-Ranges", "bytes", 5);
	for (i = 0; i < rq->n_headers; i++) {
		const struct sp_http_header *h = &rq->headers[i];
		char lname[128];
		size_t k;

		if (h->name.len <= 11 || h->name.len >= sizeof(lname) ||
		    strncasecmp(req + h->name.off, "x-amz-meta-", 11) != 0)
			continue;
		for (k = 0; k < h->name.len; k++) {
			char ch = req[h->name.off + k];

			lname[k] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
		}
		lname[k] = '\0';
		add_line(b, lname, req + h->value.off, h->value.len);
	}
	wt->head_len = evbuffer_get_length(b);
	wt->head = malloc(wt->head_len + 1);
	wt->body = malloc(f->body_len > 0 ? f->body_len : 1);
	if (wt->head == NULL || wt->body == NULL)
		goto nomem;
	evbuffer_remove(b, wt->head, wt->head_len);
	wt->head[wt->head_len] = '\0';
	wt->lm_at = lm_at;
	memcpy(wt->body, f->data + f->head_len, f->body_len);
	wt->body_len = f->body_len;
	wt->slot = f->slot;
	wt->name_len = f->name_len;
	memcpy(wt->name, f->name, f->name_len);
	wt->key_hash = f->key_hash;
	wt->version = f->version;
	wt->svc_gen = f->svc_gen;
	evbuffer_free(b);
	free(rq);
	job_start(cc, NULL, wt); /* owns wt from here */
	return;
nomem:
	if (b != NULL)
		evbuffer_free(b);
	free(rq);
	wtr_free(wt);
	reject(cc, CCR_NO_MEMORY);
}

static void
on_fill(struct sp_cache_ctl *cc, struct sp_cache_fill *f)
{
	ev(cc, CC_FILLS);
	if (cc->stopping || cc->c == NULL)
		reject(cc, CCR_STOPPING);
	else if (!fill_ok(cc, f))
		reject(cc, CCR_BAD_FILL);
	else if (!version_holds(cc->c, f->key_hash, f->slot, f->version, f->svc_gen))
		ev(cc, CC_FILLS_STALE);
	else if (f->kind == SP_CACHE_FILL_GET)
		fill_get(cc, f);
	else
		fill_put(cc, f);
	/* every path: the claim cleared, the buffer back in the pool */
	sp_cache_fill_drop(cc->dp, f);
}

/* ---- revalidation and write-through confirmation -------------------------------------------- */

/* The entry of a job as it is now: still the live one of its key, else NULL. */
static int32_t
job_live_pos(const struct cc_job *j)
{
	int32_t pos = pos_of(j->cc, j->slot, j->key_hash);

	return pos >= 0 && j->cc->at[pos] == j->e ? pos : -1;
}

/* The 200 of a revalidation as a response head (evhttp parsed it: the lines put back in
 * order). malloc'd, NUL-ended, or NULL. */
static char *
head_of(struct evhttp_request *req, size_t *len)
{
	struct evkeyvalq *h = evhttp_request_get_input_headers(req);
	struct evbuffer *b = evbuffer_new();
	struct evkeyval *kv;
	char *out = NULL;

	if (b == NULL)
		return NULL;
	evbuffer_add_printf(b, "HTTP/1.1 %d OK\r\n", evhttp_request_get_response_code(req));
	TAILQ_FOREACH (kv, h, next)
		evbuffer_add_printf(b, "%s: %s\r\n", kv->key, kv->value);
	evbuffer_add(b, "\r\n", 2);
	*len = evbuffer_get_length(b);
	out = malloc(*len + 1);
	if (out != NULL) {
		evbuffer_remove(b, out, *len);
		out[*len] = '\0';
	}
	evbuffer_free(b);
	return out;
}

/* A revalidation's answer applied to a live entry (code: HTTP status or -errno). */
static void
reval_apply(struct cc_job *j, int code, struct evhttp_request *req)
{
	struct sp_cache_ctl *cc = j->cc;
	struct sp_cache_entry *e = j->e;
	int32_t pos = cc->c != NULL && !cc->stopping ? job_live_pos(j) : -1;
	const struct sp_svc_profile *pr;
	uint64_t now = rte_rdtsc();

	if (pos < 0) {
		cc_count(&cc->rv[CCV_NO_ENTRY], 1);
		return;
	}
	if (code == 304) {
		pr = caching_profile(cc, e->slot);
		cc_count(&cc->rv[CCV_NOT_MODIFIED], 1);
		if (pr == NULL)
			return; /* the service stopped caching: svc_changed removes it */
		__atomic_store_n(&e->fresh_until_tsc, now + (uint64_t)pr->cache_ttl_s * cc->hz,
				 __ATOMIC_RELAXED);
		__atomic_store_n(&e->stale_until_tsc,
				 now + (uint64_t)(pr->cache_ttl_s + pr->stale_if_error_s) * cc->hz,
				 __ATOMIC_RELAXED);
		__atomic_store_n(&e->stored_s, (int64_t)time(NULL), __ATOMIC_RELAXED);
		return;
	}
	if (code == 200 && req != NULL) {
		struct evbuffer *in = evhttp_request_get_input_buffer(req);
		size_t hl = 0, bl = evbuffer_get_length(in);
		char *head = head_of(req, &hl);
		struct sp_cache_entry *ne = NULL;
		enum cc_reject why = CCR_NO_MEMORY;
		uint64_t version;

		cc_count(&cc->rv[CCV_CHANGED], 1);
		sp_cache_invalidate(cc->c, e->key_hash);
		version = __atomic_load_n(&cc->c->ver[e->ver_slot].ver, __ATOMIC_ACQUIRE);
		remove_at(cc, (uint32_t)pos, CC_INVALIDATED);
		if (head != NULL)
			ne = build(cc, head, hl, evbuffer_pullup(in, -1), bl, j->slot, j->name,
				   j->name_len, j->key_hash, version, e->svc_gen, false, &why);
		free(head);
		if (ne != NULL && insert(cc, ne, false) != INS_DROPPED)
			cc_count(&cc->rv[CCV_CHANGED_CACHED], 1);
		return;
	}
	if (code == 404 || (code > 0 && code < 500)) {
		cc_count(&cc->rv[CCV_GONE], 1);
		sp_cache_invalidate(cc->c, e->key_hash);
		remove_at(cc, (uint32_t)pos, CC_INVALIDATED);
		return;
	}
	if (code == -ESHUTDOWN)
		return;
	/* no answer, a timeout, a 5xx: stale-if-error */
	cc_count(&cc->rv[CCV_FAILED], 1);
	if (now < __atomic_load_n(&e->stale_until_tsc, __ATOMIC_RELAXED)) {
		cc_count(&cc->rv[CCV_KEPT_STALE], 1);
		return;
	}
	sp_cache_invalidate(cc->c, e->key_hash);
	remove_at(cc, (uint32_t)pos, CC_INVALIDATED);
}

/* A write-through's confirmation: 304 with the node's Last-Modified makes the entry. */
static void
wt_apply(struct cc_job *j, int code, struct evhttp_request *req)
{
	struct sp_cache_ctl *cc = j->cc;
	struct cc_wtr *wt = j->wt;
	const char *lm = NULL;
	struct evbuffer *b;
	struct sp_cache_entry *e;
	enum cc_reject why;
	size_t hl;
	char *head;

	if (code == -ESHUTDOWN || cc->c == NULL || cc->stopping)
		return;
	if (code == 200) {
		cc_count(&cc->wt[CCW_CHANGED], 1);
		return;
	}
	if (code == 304 && req != NULL)
		lm = evhttp_find_header(evhttp_request_get_input_headers(req), "Last-Modified");
	if (code != 304 || lm == NULL) {
		cc_count(&cc->wt[CCW_FAILED], 1);
		return;
	}
	if (!version_holds(cc->c, wt->key_hash, wt->slot, wt->version, wt->svc_gen)) {
		cc_count(&cc->wt[CCW_STALE], 1);
		ev(cc, CC_FILLS_STALE);
		return;
	}
	b = evbuffer_new();
	if (b == NULL) {
		cc_count(&cc->wt[CCW_REJECTED], 1);
		return;
	}
	evbuffer_add(b, wt->head, wt->lm_at);
	evbuffer_add_printf(b, "Last-Modified: %s\r\n", lm);
	evbuffer_add(b, wt->head + wt->lm_at, wt->head_len - wt->lm_at);
	evbuffer_add(b, "\r\n", 2);
	hl = evbuffer_get_length(b);
	head = (char *)evbuffer_pullup(b, -1);
	e = build(cc, head, hl, wt->body, wt->body_len, wt->slot, wt->name, wt->name_len,
		  wt->key_hash, wt->version, wt->svc_gen, true, &why);
	evbuffer_free(b);
	if (e == NULL) {
		reject(cc, why);
		cc_count(&cc->wt[CCW_REJECTED], 1);
		return;
	}
	if (insert(cc, e, false) == INS_DROPPED)
		cc_count(&cc->wt[CCW_REJECTED], 1);
	else
		cc_count(&cc->wt[CCW_INSERTED], 1);
}

/* Apply the outcome once: the entry's reval flag cleared, its reference dropped. */
static void
job_outcome(struct cc_job *j, int code, struct evhttp_request *req)
{
	struct sp_cache_ctl *cc = j->cc;

	if (j->phase == J_ENDED)
		return;
	j->phase = J_ENDED;
	if (j->timer != NULL) {
		event_free(j->timer);
		j->timer = NULL;
	}
	LIST_REMOVE(j, next);
	gauge_add(&cc->n_jobs, -1);
	if (j->e != NULL) {
		reval_apply(j, code, req);
		__atomic_store_n(&j->e->reval, 0, __ATOMIC_RELEASE);
		__atomic_fetch_sub(&j->e->refcnt, 1, __ATOMIC_RELEASE);
		j->e = NULL;
	} else {
		wt_apply(j, code, req);
		wtr_free(j->wt);
		j->wt = NULL;
	}
}

static void
on_http_done(struct evhttp_request *req, void *arg)
{
	struct cc_job *j = arg;
	int code = req != NULL ? evhttp_request_get_response_code(req) : 0;

	j->req = NULL; /* evhttp frees it after this callback */
	if (j->starting) {
		j->failed_early = true;
		return;
	}
	job_outcome(j, code > 0 ? code : -ECONNREFUSED, req);
	/* the connection cannot be freed inside its own callback: the next tick does it */
	LIST_INSERT_HEAD(&j->cc->zombies, j, next);
	arm_timer(j->cc);
}

/* The conditional GET to node n. 0 or -errno. */
static int
http_start(struct cc_job *j, const struct sp_locator_node *n)
{
	struct sp_cache_ctl *cc = j->cc;
	int64_t ms = cc->ctl->cfg->cache_revalidate_timeout_ms;
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	struct evkeyvalq *h;
	char ip[INET_ADDRSTRLEN], host[INET_ADDRSTRLEN + 8];
	int rc;

	inet_ntop(AF_INET, &n->ip, ip, sizeof(ip));
	snprintf(host, sizeof(host), "%s:%u", ip, n->port);
	j->conn = evhttp_connection_base_new(cc->ctl->base, NULL, ip, n->port);
	if (j->conn == NULL)
		return -ENOMEM;
	evhttp_connection_set_timeout_tv(j->conn, &tv);
	evhttp_connection_set_max_body_size(j->conn, (ev_ssize_t)cc->c->max_object);
	j->req = evhttp_request_new(on_http_done, j);
	if (j->req == NULL)
		return -ENOMEM;
	h = evhttp_request_get_output_headers(j->req);
	evhttp_add_header(h, "Host", host);
	evhttp_add_header(h, "If-None-Match", j->etag);
	evhttp_add_header(h, "X-SP-Node-Auth", n->cred);
	evhttp_add_header(h, "Connection", "close");
	j->phase = J_HTTP;
	j->starting = true;
	rc = evhttp_make_request(j->conn, j->req, EVHTTP_REQ_GET, n->path);
	j->starting = false;
	if (rc != 0 || j->failed_early) {
		j->req = NULL; /* freed by evhttp */
		return -ECONNREFUSED;
	}
	return 0;
}

static void
job_free_now(struct cc_job *j)
{
	if (j->conn != NULL)
		evhttp_connection_free(j->conn); /* frees its request, no callback */
	free(j);
}

static void
on_node(void *arg, const struct sp_locator_node *n)
{
	struct cc_job *j = arg;
	int rc;

	if (j->phase == J_ENDED) { /* timed out or stopped while the locator worked */
		free(j);
		return;
	}
	if (n->status != 0) {
		job_outcome(j, n->status == -ENOENT ? 404 : n->status, NULL);
		free(j);
		return;
	}
	rc = http_start(j, n);
	if (rc != 0) {
		job_outcome(j, rc, NULL);
		job_free_now(j);
	}
}

static void
on_job_timer(evutil_socket_t fd, short what, void *arg)
{
	struct cc_job *j = arg;
	bool http = j->phase == J_HTTP;

	RTE_SET_USED(fd);
	RTE_SET_USED(what);
	job_outcome(j, -ETIMEDOUT, NULL);
	if (http)
		job_free_now(j); /* else the locator's callback frees it */
}

/* Revalidate e (refcnt taken here) or confirm wt (owned from here). */
static void
job_start(struct sp_cache_ctl *cc, struct sp_cache_entry *e, struct cc_wtr *wt)
{
	int64_t ms = cc->ctl->cfg->cache_revalidate_timeout_ms;
	struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
	struct cc_job *j = calloc(1, sizeof(*j));
	const char *etag = e != NULL ? e->etag : NULL;
	size_t etag_len = e != NULL ? e->etag_len : 0;

	if (wt != NULL) {
		const char *h = strstr(wt->head, "\r\nETag: ");

		etag = h != NULL ? h + 8 : NULL;
		etag_len = etag != NULL ? strcspn(etag, "\r") : 0;
	}
	if (j == NULL || etag_len == 0 || etag_len > ETAG_MAX || cc->stopping ||
	    cc->ctl->locator == NULL ||
	    (j->timer = evtimer_new(cc->ctl->base, on_job_timer, j)) == NULL) {
		free(j);
		if (e != NULL) {
			/* nothing to ask with: as a failed revalidation */
			struct cc_job tmp = {
				.cc = cc, .e = e, .slot = e->slot, .key_hash = e->key_hash};

			cc_count(&cc->rv[CCV_ASKED], 1);
			reval_apply(&tmp, etag_len == 0 ? 404 : -ENOMEM, NULL);
			__atomic_store_n(&e->reval, 0, __ATOMIC_RELEASE);
		} else {
			cc_count(&cc->wt[CCW_FAILED], 1);
			wtr_free(wt);
		}
		return;
	}
	j->cc = cc;
	j->e = e;
	j->wt = wt;
	j->phase = J_LOCATE;
	if (e != NULL) {
		__atomic_fetch_add(&e->refcnt, 1, __ATOMIC_ACQUIRE);
		j->slot = e->slot;
		j->key_hash = e->key_hash;
		j->name_len = e->name_len;
		memcpy(j->name, e->name, e->name_len);
		cc_count(&cc->rv[CCV_ASKED], 1);
	} else {
		j->slot = wt->slot;
		j->key_hash = wt->key_hash;
		j->name_len = wt->name_len;
		memcpy(j->name, wt->name, wt->name_len);
	}
	memcpy(j->etag, etag, etag_len);
	j->etag[etag_len] = '\0';
	LIST_INSERT_HEAD(&cc->jobs, j, next);
	gauge_add(&cc->n_jobs, 1);
	evtimer_add(j->timer, &tv);
	sp_locator_node_get(cc->ctl->locator, j->slot, j->name, j->name_len, on_node, j);
}

static void
on_reval(struct sp_cache_ctl *cc, uint16_t slot, uint64_t key_hash)
{
	int32_t pos = slot < SP_SVC_MAX ? pos_of(cc, slot, key_hash) : -1;

	if (pos < 0) {
		cc_count(&cc->rv[CCV_NO_ENTRY], 1);
		return;
	}
	job_start(cc, cc->at[pos], NULL);
}

/* ---- removal by object and by service ------------------------------------------------------- */

static unsigned int
remove_svc(struct sp_cache_ctl *cc, uint16_t slot, enum cc_event why)
{
	unsigned int n = 0;
	uint32_t pos;

	for (pos = 0; pos < cc->cap; pos++)
		if (cc->at[pos] != NULL && cc->at[pos]->slot == slot) {
			remove_at(cc, pos, why);
			n++;
		}
	return n;
}

unsigned int
sp_cache_ctl_svc_changed(struct sp_cache_ctl *cc, uint16_t slot)
{
	if (cc == NULL || cc->c == NULL || cc->stopping || slot >= SP_SVC_MAX)
		return 0;
	sp_cache_invalidate_svc(cc->c, slot);
	return remove_svc(cc, slot, CC_INVALIDATED);
}

unsigned int
sp_cache_ctl_purge_svc(struct sp_cache_ctl *cc, uint16_t slot)
{
	if (cc == NULL || cc->c == NULL || cc->stopping || slot >= SP_SVC_MAX)
		return 0;
	sp_cache_invalidate_svc(cc->c, slot);
	return remove_svc(cc, slot, CC_PURGED);
}

unsigned int
sp_cache_ctl_purge(struct sp_cache_ctl *cc, uint16_t slot, const char *name, size_t len)
{
	uint64_t h;
	int32_t pos;

	if (cc == NULL || cc->c == NULL || cc->stopping || slot >= SP_SVC_MAX ||
	    len > SP_LOC_NAME_MAX)
		return 0;
	h = sp_cache_hash(slot, name, (uint32_t)len);
	sp_cache_invalidate(cc->c, h);
	pos = pos_of(cc, slot, h);
	if (pos < 0)
		return 0;
	remove_at(cc, (uint32_t)pos, CC_PURGED);
	return 1;
}

/* ---- the punt handler ----------------------------------------------------------------------- */

static void
on_msg(void *arg, const struct sp_punt_msg *m)
{
	struct sp_cache_ctl *cc = arg;
	int32_t pos;

	if (cc->dp == NULL || cc->c == NULL) { /* cannot happen: stop cleared the handler */
		return;
	}
	switch (m->type) {
	case SP_PUNT_CACHE_FILL:
		if (m->fill != NULL)
			on_fill(cc, m->fill);
		else
			ev(cc, CC_BAD_MESSAGES);
		return;
	case SP_PUNT_CACHE_INVAL:
		if (m->slot >= SP_SVC_MAX) {
			ev(cc, CC_BAD_MESSAGES);
			return;
		}
		pos = pos_of(cc, m->slot, m->key_hash);
		if (pos >= 0 && !sp_cache_entry_valid(cc->c, cc->at[pos]))
			remove_at(cc, (uint32_t)pos, CC_INVALIDATED);
		return;
	case SP_PUNT_CACHE_SVC:
		if (m->slot >= SP_SVC_MAX)
			ev(cc, CC_BAD_MESSAGES);
		else
			remove_svc(cc, m->slot, CC_INVALIDATED);
		return;
	case SP_PUNT_CACHE_REVAL:
		if (!cc->dp->running) /* the dataplane's last drain */
			return;
		on_reval(cc, m->slot, m->key_hash);
		return;
	default:
		ev(cc, CC_BAD_MESSAGES);
		return;
	}
}

/* ---- the workers' cache_* events ------------------------------------------------------------ */

unsigned int
sp_cache_worker_sums(const struct sp_cache_ctl *cc, const char **names, uint64_t *values,
		     unsigned int max)
{
	const struct sp_dp *dp = cc != NULL ? cc->ctl->dp : NULL;
	unsigned int i, w, n = 0;

	for (i = 0; i < SP_TCP_EV_MAX && n < max; i++) {
		const char *name = sp_tcp_event_name(i);

		if (name == NULL || strncmp(name, "cache_", 6) != 0)
			continue;
		names[n] = name;
		values[n] = 0;
		for (w = 0; dp != NULL && w < dp->n_workers; w++)
			values[n] += SP_CNT_GET(dp->workers[w]->stats.tcp[i]);
		n++;
	}
	return n;
}

/* ---- life cycle ----------------------------------------------------------------------------- */

int
sp_cache_ctl_create(struct sp_ctl *ctl, struct sp_cache_ctl **out)
{
	struct sp_cache_ctl *cc = calloc(1, sizeof(*cc));
	struct sp_cache *c = ctl->dp != NULL ? ctl->dp->cache : NULL;

	*out = NULL;
	if (cc == NULL)
		return -ENOMEM;
	cc->ctl = ctl;
	cc->dp = ctl->dp;
	cc->c = c;
	cc->hz = rte_get_tsc_hz();
	TAILQ_INIT(&cc->graves);
	TAILQ_INIT(&cc->waits);
	LIST_INIT(&cc->jobs);
	LIST_INIT(&cc->zombies);
	if (c != NULL) {
		cc->enabled = true;
		cc->admission = c->admission;
		cc->entries = c->entries;
		cc->budget = c->budget;
		cc->max_object = c->max_object;
		cc->cap = c->entries + 64; /* rte_hash positions are below entries (+ slack) */
		cc->at = calloc(cc->cap, sizeof(*cc->at));
		cc->bloom_bits = BLOOM_MIN_BITS;
		while (cc->bloom_bits < 8ULL * c->entries && cc->bloom_bits < (1u << 30))
			cc->bloom_bits <<= 1;
		cc->bloom_max = c->entries > 1024 ? c->entries : 1024;
		cc->bloom = calloc(cc->bloom_bits / 64, sizeof(uint64_t));
		cc->timer = event_new(ctl->base, -1, 0, on_tick, cc);
		if (cc->at == NULL || cc->bloom == NULL || cc->timer == NULL) {
			sp_cache_ctl_destroy(cc);
			return -ENOMEM;
		}
		cc->dp->cache_handler_arg = cc;
		cc->dp->cache_handler = on_msg;
		SP_LOG(INFO,
		       "cache: %" PRIu64 " KiB, objects up to %" PRIu64 " KiB, %u entries, "
		       "admission %s",
		       c->budget / 1024, c->max_object / 1024, c->entries,
		       c->admission ? "second-hit" : "all");
	}
	*out = cc;
	return 0;
}

void
sp_cache_ctl_stop(struct sp_cache_ctl *cc)
{
	struct cc_job *j;
	uint32_t pos;

	if (cc == NULL || cc->stopping)
		return;
	cc->stopping = true;
	if (cc->dp != NULL && cc->dp->cache_handler == on_msg) {
		cc->dp->cache_handler = NULL;
		cc->dp->cache_handler_arg = NULL;
	}
	while ((j = LIST_FIRST(&cc->jobs)) != NULL) {
		bool http = j->phase == J_HTTP;

		job_outcome(j, -ESHUTDOWN, NULL);
		if (http)
			job_free_now(j);
		/* a job still with the locator is freed by its callback (the locator's stop) */
	}
	/* every entry out of the index: the workers still run until sp_dp_destroy */
	for (pos = 0; cc->c != NULL && pos < cc->cap; pos++)
		if (cc->at[pos] != NULL)
			remove_at(cc, pos, CC_PURGED);
	if (cc->c != NULL)
		graves_reclaim(cc);
	cc->dp = NULL;
	cc->c = NULL; /* sp_dp_destroy frees the index: positions are not freed any more */
}

void
sp_cache_ctl_destroy(struct sp_cache_ctl *cc)
{
	struct cc_grave *g;
	struct cc_wait *w;
	struct cc_job *j;

	if (cc == NULL)
		return;
	if (!cc->stopping) { /* start-up failed: nothing was punted, the dataplane left alone */
		cc->stopping = true;
		cc->dp = NULL;
		cc->c = NULL;
	}
	while ((j = LIST_FIRST(&cc->jobs)) != NULL) { /* cannot happen after stop */
		LIST_REMOVE(j, next);
		wtr_free(j->wt);
		job_free_now(j);
	}
	while ((j = LIST_FIRST(&cc->zombies)) != NULL) {
		LIST_REMOVE(j, next);
		job_free_now(j);
	}
	/* no worker runs any more: the graveyard and the waiting entries go at once */
	while ((g = TAILQ_FIRST(&cc->graves)) != NULL) {
		TAILQ_REMOVE(&cc->graves, g, next);
		entry_free(g->e);
		free(g);
	}
	while ((w = TAILQ_FIRST(&cc->waits)) != NULL) {
		TAILQ_REMOVE(&cc->waits, w, next);
		entry_free(w->e);
		free(w);
	}
	if (cc->timer != NULL)
		event_free(cc->timer);
	free(cc->at);
	free(cc->bloom);
	free(cc);
}
