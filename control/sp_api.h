/* Management HTTP API on a kernel socket: /v1/health, /v1/stats (JSON), /metrics (Prometheus),
 * /v1/services (and their credentials), /v1/locators, /v1/auth, /v1/cache. */
#ifndef SP_API_H
#define SP_API_H

#include <stddef.h>

struct sp_ctl;
struct sp_api;
struct evhttp_request;
struct evbuffer;
typedef struct json_t json_t;

/* Reply with body (a new reference, consumed) as JSON. */
void sp_api_send_json(struct evhttp_request *req, int code, json_t *body);
/* The # HELP and # TYPE lines of a Prometheus metric family (/metrics). */
void sp_api_prom_family(struct evbuffer *b, const char *name, const char *type, const char *help);
/* Reply with {"error": CODE, "message": ..., "field": FIELD (if not NULL)}. */
void sp_api_send_error(struct evhttp_request *req, int code, const char *ecode, const char *field,
		       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* A refused field of an API request: what sp_api_send_error() answers with (400). */
struct sp_api_verr {
	char field[48];
	char msg[200];
};

/* Fill e with field and the formatted message. Returns -EINVAL. */
int sp_api_bad(struct sp_api_verr *e, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

int sp_api_create(struct sp_ctl *ctl, const char *listen, struct sp_api **out, char *err,
		  size_t errlen);
void sp_api_destroy(struct sp_api *api);

#endif /* SP_API_H */
