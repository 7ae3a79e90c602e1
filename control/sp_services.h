/* Enhanced services: definitions kept in Redis, managed through /v1/services, published to the
 * workers (docs/api-services.md). */
#ifndef SP_SERVICES_H
#define SP_SERVICES_H

#include <stdbool.h>
#include <stdint.h>

#include "sp_svc.h"

struct sp_ctl;
struct sp_services;
struct evhttp_request;
struct rte_tel_data;
struct evbuffer;

/* Control thread: set up (registers with the Redis client: loads on every connect, reloads
 * when the epoch in Redis changes). 0 or -errno. */
int sp_services_create(struct sp_ctl *ctl, struct sp_services **out);
/* Answers what is still queued with 503 and frees everything (before the API is freed). */
void sp_services_destroy(struct sp_services *s);

/* Control thread: a request for /v1/services or /v1/services/... (path as received). */
void sp_services_http(struct sp_services *s, struct evhttp_request *req, const char *path);

/* What the locator resolver needs of one service. */
struct sp_services_backend {
	char name[64];
	char storage_manager[64]; /* "a.b.c.d:port" or "[v6]:port" (validated by the API) */
	char node_key_id[65];
	bool direct; /* auth none and something enhanced */
	uint64_t epoch;
};

/* Control thread: the service in slot, or -ENOENT (no service there now). */
int sp_services_backend(struct sp_services *s, uint16_t slot, struct sp_services_backend *out);

/* Any thread (telemetry): the services and their worker counters as a telemetry dict. */
int sp_services_telemetry(struct sp_services *s, struct rte_tel_data *d);

/* Control thread: Prometheus lines for /metrics (sp_service_vm_*_total{service=...}). */
void sp_services_metrics(struct sp_services *s, struct evbuffer *b);

#endif /* SP_SERVICES_H */
