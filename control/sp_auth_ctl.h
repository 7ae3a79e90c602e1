/* Local authentication in the control thread: client credentials (Redis, an in-memory copy), the
 * credentials API, the verification of the requests the workers punt, its counters
 * (docs/auth.md). */
#ifndef SP_AUTH_CTL_H
#define SP_AUTH_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sp_auth.h"
#include "sp_policy.h"

struct sp_ctl;
struct sp_auth;
struct evhttp_request;
struct evbuffer;
struct rte_tel_data;
typedef struct json_t json_t;

/*
 * Control thread: set up after the services (registers with the Redis client: loads every
 * credential on each connect, reloads when sp:cred:epoch changes) and become the dataplane's
 * SP_PUNT_AUTH handler. 0 or -errno.
 */
int sp_auth_create(struct sp_ctl *ctl, struct sp_auth **out);
/* Stop answering the workers (before the dataplane is freed): clears the handler. Idempotent. */
void sp_auth_stop(struct sp_auth *a);
/* Answers what is still queued with 503 and frees everything, secrets wiped (after the Redis
 * client was freed, before the API). */
void sp_auth_destroy(struct sp_auth *a);

/*
 * Without shortpathd (benchmarks, tests): an authenticator of one service, in slot 0 at services
 * epoch 0, whose credentials are the ones sp_auth_cred_set_local() puts in memory. No Redis, no
 * API, no dataplane (the credential generations are its own); counters as usual.
 */
int sp_auth_create_standalone(const char *service, const char *region, enum sp_auth_mode mode,
			      uint32_t verdict_ttl_s, struct sp_auth **out);

/*
 * Put a credential in memory only (standalone use; shortpathd's credentials come from Redis
 * through the API): secret secret_len bytes (1..SP_SIGV4_SECRET_MAX printable ASCII), policy
 * NULL for every action on every bucket. Its generation moves on as for a change. 0, -EINVAL
 * (bad access key, secret or service name), -ENOMEM.
 */
int sp_auth_cred_set_local(struct sp_auth *a, const char *service, const char *access_key,
			   const char *secret, size_t secret_len, const struct sp_policy *policy);

/*
 * Verify one punted request synchronously (no Redis: the in-memory copy) and fill the answer
 * part of m (docs/auth.md "Verification"). Returns m->status (enum sp_auth_status). Does not
 * enqueue m anywhere.
 */
int sp_auth_verify_msg(struct sp_auth *a, struct sp_auth_msg *m);

/* Control thread: a request for /v1/services/NAME/credentials[/AK] (path as received). */
void sp_auth_http(struct sp_auth *a, struct evhttp_request *req, const char *path);
/* Whether path is one sp_auth_http() serves (/v1/services/X/credentials or .../credentials/Y). */
bool sp_auth_is_credentials_path(const char *path);

/* Control thread: GET /v1/auth's document (a new reference). */
json_t *sp_auth_stats_json(struct sp_auth *a);

/* Any thread (telemetry): /shortpath/auth as a telemetry dict. */
int sp_auth_telemetry(struct sp_auth *a, struct rte_tel_data *d);

/* Control thread: Prometheus lines for /metrics (sp_auth_*). */
void sp_auth_metrics(struct sp_auth *a, struct evbuffer *b);

#endif /* SP_AUTH_CTL_H */
