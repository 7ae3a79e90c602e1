/* Enhanced services: definitions kept in Redis, managed through /v1/services, published to the
 * workers (docs/api-services.md). */
#ifndef SP_SERVICES_H
#define SP_SERVICES_H

#include <stdbool.h>
#include <stdint.h>

#include "sp_sigv4.h"
#include "sp_svc.h"

#define SP_SERVICES_NAME_MAX 32 /* bytes of a service name */

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

/* What the locator resolver and the authenticator need of one service. */
struct sp_services_backend {
	char name[64];
	char storage_manager[64]; /* "a.b.c.d:port" or "[v6]:port" (validated by the API) */
	char node_key_id[65];
	char region[SP_SIGV4_REGION_MAX + 1]; /* the SigV4 scope's region */
	uint8_t auth;			      /* enum sp_auth_mode (sp_auth.h) */
	bool direct;			      /* auth other than service, and something enhanced */
	uint64_t epoch; /* the services epoch this definition was stored or loaded under */
};

/* Control thread: the service in slot, or -ENOENT (no service there now). */
int sp_services_backend(struct sp_services *s, uint16_t slot, struct sp_services_backend *out);

/* Control thread: the slot of the service named, or -ENOENT. */
int sp_services_slot(struct sp_services *s, const char *name);

/* Control thread: whether the services were read from Redis at least once. */
bool sp_services_loaded(const struct sp_services *s);

/* A valid service name: 1 to SP_SERVICES_NAME_MAX of a-z 0-9 - _, starting with a-z or 0-9. */
bool sp_services_name_ok(const char *name);

/* Any thread (telemetry): the services and their worker counters as a telemetry dict. */
int sp_services_telemetry(struct sp_services *s, struct rte_tel_data *d);

/* Control thread: Prometheus lines for /metrics (sp_service_vm_*_total{service=...}). */
void sp_services_metrics(struct sp_services *s, struct evbuffer *b);

#endif /* SP_SERVICES_H */
