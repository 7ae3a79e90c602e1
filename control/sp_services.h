/* Enhanced services: definitions kept in Redis, managed through /v1/services, published to the
 * workers (docs/api-services.md). */
#ifndef SP_SERVICES_H
#define SP_SERVICES_H

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

/* Any thread (telemetry): the services and their worker counters as a telemetry dict. */
int sp_services_telemetry(struct sp_services *s, struct rte_tel_data *d);

/* Control thread: Prometheus lines for /metrics (sp_service_vm_*_total{service=...}). */
void sp_services_metrics(struct sp_services *s, struct evbuffer *b);

#endif /* SP_SERVICES_H */
