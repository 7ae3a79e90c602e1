/* Locator resolver of the control thread: its life cycle, API and counters (docs/locators.md). */
#ifndef SP_LOCATOR_H
#define SP_LOCATOR_H

#include <stddef.h>
#include <stdint.h>

#include "sp_loc.h"

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

/* Where an object is, as sp_locator_node_get() found it. */
struct sp_locator_node {
	int status;	   /* 0: found; -ENOENT: no such object (the manager said 404); -EIO,
			    * -ETIMEDOUT, -ESHUTDOWN...: not resolved */
	uint32_t ip;	   /* the first replica's IPv4 address, network byte order */
	uint16_t port;	   /* ... and port, host byte order */
	uint16_t path_len; /* path: the object's request path on the node, as sent */
	char path[SP_LOC_PATH_MAX + 1];
	char cred[SP_LOC_CRED_MAX + 1]; /* X-SP-Node-Auth for a GET of path (NUL-ended) */
};

typedef void (*sp_locator_node_fn)(void *arg, const struct sp_locator_node *n);

/*
 * Control thread: resolve the object name ("/bucket/key" as a client sent it) of the service in
 * slot as a worker's RESOLVE would be (coalesced lookups, Redis, the storage manager) and call fn
 * exactly once with the first node, the path and a GET credential made now, or a failure. fn may
 * be called before this returns (bad name, no service, no key, stopping).
 */
void sp_locator_node_get(struct sp_locator *loc, uint16_t slot, const char *name, size_t len,
			 sp_locator_node_fn fn, void *arg);

#endif /* SP_LOCATOR_H */
