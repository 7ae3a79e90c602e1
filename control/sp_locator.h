/* Locator resolver of the control thread: its life cycle, API and counters (docs/locators.md). */
#ifndef SP_LOCATOR_H
#define SP_LOCATOR_H

#include <stddef.h>
#include <stdint.h>

struct sp_ctl;
struct sp_locator;
struct evhttp_request;
struct evbuffer;
struct rte_tel_data;
typedef struct json_t json_t;

/* The storage nodes refuse credentials expiring more than 900 s ahead: ours expire this far. */
#define SP_LOCATOR_CRED_AHEAD_S 840

/*
 * Control thread, after the services: read the node keys ([keys] node_keys), set the dataplane's
 * locator handler. 0, or -errno with "config: [keys] node_keys: ..." (or another reason) in err.
 */
int sp_locator_create(struct sp_ctl *ctl, char *err, size_t errlen, struct sp_locator **out);

/*
 * Control thread, while the dataplane still exists (sp_ctl_stop, before sp_dp_destroy): clear the
 * handler, cancel the storage manager calls, answer every held RESOLVE as FAILED to its worker (or
 * put it back), answer held API requests 503. Later punted messages are put back by the dataplane.
 * Idempotent.
 */
void sp_locator_stop(struct sp_locator *loc);

/* Control thread, after the Redis client is gone and before the API: free everything. Does not
 * touch the dataplane (sp_locator_stop did). NULL is fine. */
void sp_locator_destroy(struct sp_locator *loc);

/* Control thread: a request for /v1/locators or /v1/locators/... (path as received). */
void sp_locator_http(struct sp_locator *loc, struct evhttp_request *req, const char *path);

/* Any thread (telemetry): the counters as a telemetry dict (/shortpath/locators). */
int sp_locator_telemetry(struct sp_locator *loc, struct rte_tel_data *d);

/* Control thread: Prometheus lines (sp_locator_*) for /metrics. */
void sp_locator_metrics(struct sp_locator *loc, struct evbuffer *b);

/* Control thread: the counters as a JSON object (new reference), for /v1/stats. */
json_t *sp_locator_stats_json(struct sp_locator *loc);

#endif /* SP_LOCATOR_H */
