/* The object cache's control side: the only writer of the index and the entries (fills,
 * write-through, revalidation, eviction, removal through a graveyard), its API and counters
 * (docs/cache.md). */
#ifndef SP_CACHE_CTL_H
#define SP_CACHE_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sp_ctl;
struct sp_cache_ctl;
struct sp_cache_entry;
struct evhttp_request;
struct evbuffer;
struct rte_tel_data;
typedef struct json_t json_t;

/*
 * Control thread, after the services and the locator resolver: become the dataplane's cache
 * handler (SP_PUNT_CACHE_*). Without a cache ([cache] size_kb 0) the module exists, answers the
 * API with an empty cache and handles nothing. 0 or -errno.
 */
int sp_cache_ctl_create(struct sp_ctl *ctl, struct sp_cache_ctl **out);
/*
 * Let go of the dataplane (sp_ctl_stop, before sp_dp_destroy, after the locator's stop): clear
 * the handler, end the revalidations in flight, take every entry out of the index (they are
 * freed by sp_cache_ctl_destroy, when no worker runs any more). Idempotent.
 */
void sp_cache_ctl_stop(struct sp_cache_ctl *cc);
/* Free what is left (after sp_dp_destroy: touches neither the dataplane nor the index). */
void sp_cache_ctl_destroy(struct sp_cache_ctl *cc);

/*
 * Control thread: a service's cache settings changed, it was deleted or its slot was given to
 * another service: invalidate the slot (svc_gen) and remove its entries. Returns how many were
 * removed. NULL cc (not created yet) is fine.
 */
unsigned int sp_cache_ctl_svc_changed(struct sp_cache_ctl *cc, uint16_t slot);

/* Control thread: purge one object (version bumped even when it is not cached: a fill in flight
 * is refused) or a whole service. Returns how many entries were removed. */
unsigned int sp_cache_ctl_purge(struct sp_cache_ctl *cc, uint16_t slot, const char *name,
				size_t len);
unsigned int sp_cache_ctl_purge_svc(struct sp_cache_ctl *cc, uint16_t slot);

/* Control thread: the live entry of (slot, name) or NULL (read-only for the caller). */
const struct sp_cache_entry *sp_cache_ctl_find(struct sp_cache_ctl *cc, uint16_t slot,
					       const char *name, size_t len);

/* Control thread: free what the graveyard may free now and insert what waits for room. Also run
 * by a timer while there is something to do; tests call it to settle. */
void sp_cache_ctl_reclaim(struct sp_cache_ctl *cc);

/* Control thread: /v1/cache and /v1/cache/... (path as received). */
void sp_cache_http(struct sp_cache_ctl *cc, struct evhttp_request *req, const char *path);

/* Control thread: GET /v1/cache's document (a new reference). */
json_t *sp_cache_stats_json(struct sp_cache_ctl *cc);
/* Control thread: one entry as the API shows it (a new reference). */
json_t *sp_cache_entry_json(struct sp_cache_ctl *cc, const struct sp_cache_entry *e);

/* Any thread (telemetry): /shortpath/cache as a telemetry dict. */
int sp_cache_telemetry(struct sp_cache_ctl *cc, struct rte_tel_data *d);

/* Control thread: Prometheus lines for /metrics (shortpath_cache_*). */
void sp_cache_metrics(struct sp_cache_ctl *cc, struct evbuffer *b);

#endif /* SP_CACHE_CTL_H */
