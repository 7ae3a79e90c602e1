/* Local authentication in the control thread: the credential store (Redis sp:cred:{SERVICE}:{AK},
 * an in-memory copy), /v1/services/NAME/credentials, the verification of punted requests, and
 * its counters. */
#include "sp_auth_ctl.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <rte_common.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_telemetry.h>

#include "sp_api.h"
#include "sp_conf.h"
#include "sp_counters.h"
#include "sp_ctl.h"
#include "sp_dp.h"
#include "sp_http.h"
#include "sp_log.h"
#include "sp_redis.h"
#include "sp_s3err.h"
#include "sp_services.h"
#include "sp_sigv4.h"
#include "sp_store.h"
#include "sp_tcp_ep.h"

#define KEY_PREFIX "sp:cred:{"	    /* sp:cred:{SERVICE}:{AK} */
#define REDIS_EPOCH "sp:cred:epoch" /* one more with every change (any instance) */
#define SCAN_COUNT 1000
#define TABLE_MIN 64	  /* hash buckets at least (power of two) */
#define HIST_N 16	  /* verification time buckets: < 1 us, < 2 us, ... < 16384 us, more */
#define CREQ_MAX 65536	  /* bytes of a canonical request kept for SignatureDoesNotMatch */
#define LOG_PER_WINDOW 20 /* refusal / undecided log lines per second */
#define API_PREFIX "/v1/services/"

/* ---- credentials -------------------------------------------------------------------------- */

/* One credential of one service. */
struct cred {
	struct cred *next; /* hash chain */
	uint64_t hash;
	char service[SP_SERVICES_NAME_MAX + 1];
	char ak[SP_SIGV4_ACCESS_KEY_MAX + 1];
	uint8_t ak_len;
	uint16_t secret_len;
	char secret[SP_SIGV4_SECRET_MAX + 1];
	struct sp_policy policy;
	int64_t created; /* unix seconds */
	int64_t updated;
	/* the signing key of the last scope (day, region) this credential was used with */
	bool key_valid;
	char key_date[9];
	char key_region[SP_SIGV4_REGION_MAX + 1];
	uint8_t key[32];
};

struct cred_table {
	struct cred **bucket;
	uint32_t mask; /* buckets - 1 */
	uint32_t n;
};

/* ---- counters ----------------------------------------------------------------------------- */

/* Why a request was left to the service (UNDECIDED). */
#define UNDECIDED_REASONS(X)                                                                       \
	X(NO_SERVICE, "no_service")	      /* no service in the slot any more */                \
	X(SERVICE_CHANGED, "service_changed") /* redefined since the worker saw it */              \
	X(NOT_LOADED, "not_loaded")	      /* credentials not read from Redis yet */            \
	X(BAD_MESSAGE, "bad_message")	      /* not a head the worker should have sent */         \
	X(UNSUPPORTED, "unsupported")	      /* beyond this verifier's bounds (too_big) */        \
	X(INTERNAL, "internal")		      /* OpenSSL failed, or the reply does not fit */

enum undecided_reason {
#define UND_ENUM(e, s) UND_##e,
	UNDECIDED_REASONS(UND_ENUM)
#undef UND_ENUM
		UND_MAX
};

static const char *const undecided_names[] = {
#define UND_NAME(e, s) s,
	UNDECIDED_REASONS(UND_NAME)
#undef UND_NAME
};

/* Written by the control thread only (SP_CNT_ADD), read by any (SP_CNT_GET). */
struct counters {
	uint64_t punts;		    /* messages verified */
	uint64_t ok;		    /* authentic and allowed */
	uint64_t ok_signature_only; /* ... of which the body was not held (ordinary path) */
	uint64_t refused;
	uint64_t refused_by[SP_SIGV4_ERR_MAX]; /* by enum sp_sigv4_error (NONE: unused) */
	uint64_t access_denied;		       /* refused by the policy */
	uint64_t undecided;
	uint64_t undecided_by[UND_MAX];
	uint64_t verdicts;   /* answers that let the worker install a verdict */
	uint64_t ring_full;  /* answers the worker's ring would not take */
	uint64_t bad_worker; /* messages naming no worker */
	uint64_t keys_derived;
	uint64_t keys_cached;
	uint64_t verify_count;
	uint64_t verify_sum_ns;
	uint64_t verify_max_ns;
	uint64_t verify_hist[HIST_N];
};

/* The workers' own auth events (dataplane/sp_tcp_ep.h), summed in GET /v1/auth. */
static const unsigned int worker_events[] = {
	SP_TCP_EV_AUTH_HIT,	     SP_TCP_EV_AUTH_PUNT,	 SP_TCP_EV_AUTH_OK,
	SP_TCP_EV_AUTH_REFUSED,	     SP_TCP_EV_AUTH_UNDECIDED,	 SP_TCP_EV_AUTH_TIMEOUT,
	SP_TCP_EV_AUTH_STALE_ANSWER, SP_TCP_EV_AUTH_LOCAL_ERROR, SP_TCP_EV_AUTH_DENIED,
	SP_TCP_EV_AUTH_VIP_BODY,     SP_TCP_EV_AUTH_VERDICTS,
};

/* ---- the module --------------------------------------------------------------------------- */

enum op_kind {
	OP_PUT = 1, /* a reload's is 0 (h.reload says what it is) */
	OP_DELETE,
};

/* A credential as the API gives it: only the fields present are applied. */
struct cred_input {
	bool has_secret;
	bool has_buckets;
	bool has_actions;
	uint16_t secret_len;
	char secret[SP_SIGV4_SECRET_MAX + 1];
	struct sp_policy buckets; /* n_buckets, all_buckets, bucket[] */
	uint16_t actions;
};

/* A queued change or reload (sp_store: one at a time, in arrival order). */
struct op {
	struct sp_store_op h; /* first */
	enum op_kind kind;
	char service[SP_SERVICES_NAME_MAX + 1];
	char ak[SP_SIGV4_ACCESS_KEY_MAX + 1];
	uint8_t ak_len;
	struct cred_input in; /* PUT */
	struct cred *c;	      /* PUT: the credential being written */
	bool created;
	/* reload */
	struct cred_table nt;
	unsigned int pending; /* Redis commands in flight */
	bool failed;
	uint64_t epoch;
	unsigned int skipped;
};

/* One HGETALL of a reload: which key it reads. */
struct hget {
	struct op *o;
	char service[SP_SERVICES_NAME_MAX + 1];
	char ak[SP_SIGV4_ACCESS_KEY_MAX + 1];
	uint8_t ak_len;
};

struct sp_auth {
	struct sp_ctl *ctl; /* NULL: standalone */
	struct sp_dp *dp;   /* the handler's dataplane; NULL once stopped (or standalone) */
	uint32_t *gen;	    /* the credential generations: dp->auth_gen, or own_gen */
	uint32_t *own_gen;
	uint32_t verdict_ttl_s;
	uint32_t data_max;		  /* bytes of data a message can hold (0: unchecked) */
	struct sp_services_backend alone; /* standalone: the service in slot 0 */
	/* sp:cred:*: its queue, st.epoch of what is loaded, st.loaded (atomic: read at least
	 * once), st.stopping */
	struct sp_store st;
	uint32_t n_creds; /* atomic: read by telemetry */
	struct cred_table t;
	EVP_MD_CTX *md_ctx; /* body hashes */
	EVP_MD *md;
	struct counters c;
	uint64_t log_window_ms;
	uint32_t log_lines;
	uint32_t log_suppressed;
	uint64_t req_id_seq; /* request ids when RAND_bytes fails */
	char creq[CREQ_MAX]; /* SignatureDoesNotMatch's CanonicalRequest */
};

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- validation --------------------------------------------------------------------------- */

/* An access key id: 1..128 printable ASCII, no space, no '/' (len bytes). */
static bool
ak_ok(const char *ak, size_t len)
{
	size_t i;

	if (len == 0 || len > SP_SIGV4_ACCESS_KEY_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (ak[i] < 0x21 || ak[i] > 0x7e || ak[i] == '/')
			return false;
	return true;
}

/* A secret access key: 1..256 printable ASCII (space included). */
static bool
secret_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > SP_SIGV4_SECRET_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return true;
}

/* "buckets": ["*"] or up to SP_POLICY_BUCKETS_MAX names or prefixes ("logs-*"). */
static int
parse_buckets(const json_t *v, struct sp_policy *p, struct sp_api_verr *e)
{
	const char *why = "";
	size_t i, j;
	json_t *x;

	memset(p, 0, sizeof(*p));
	if (!json_is_array(v))
		return sp_api_bad(e, "buckets",
				  "must be a list of bucket names or prefixes (\"logs-*\"), "
				  "or [\"*\"]");
	json_array_foreach(v, i, x)
	{
		const char *b = json_string_value(x);

		if (b == NULL)
			return sp_api_bad(e, "buckets", "item %zu: must be a string", i);
		if (strcmp(b, "*") == 0) {
			p->all_buckets = 1;
			continue;
		}
		for (j = 0; j < p->n_buckets && strcmp(p->bucket[j], b) != 0; j++)
			;
		if (j < p->n_buckets)
			continue; /* listed twice: once is enough */
		if (sp_policy_add_bucket(p, b, &why) != 0)
			return sp_api_bad(e, "buckets", "item %zu: %s", i, why);
	}
	if (p->all_buckets) { /* "*" covers the others */
		p->n_buckets = 0;
		memset(p->len, 0, sizeof(p->len));
		memset(p->bucket, 0, sizeof(p->bucket));
	}
	return 0;
}

/* "actions": ["*"] or IAM action names ("GetObject", ...). */
static int
parse_actions(const json_t *v, uint16_t *bits, struct sp_api_verr *e)
{
	size_t i;
	json_t *x;

	*bits = 0;
	if (!json_is_array(v))
		return sp_api_bad(e, "actions",
				  "must be a list of S3 actions (GetObject, PutObject, ...), "
				  "or [\"*\"]");
	json_array_foreach(v, i, x)
	{
		const char *n = json_string_value(x);
		int act;

		if (n != NULL && strcmp(n, "*") == 0) {
			*bits = SP_POLICY_ALL_ACTIONS;
			continue;
		}
		act = n != NULL ? sp_policy_action_parse(n) : -1;
		if (act < 0) {
			char list[200];
			size_t off = 0;
			unsigned int k;

			for (k = 0; k < SP_POLICY_ACT_OTHER && off < sizeof(list); k++)
				off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s",
							k ? ", " : "", sp_policy_action_name(k));
			return sp_api_bad(e, "actions", "item %zu: must be \"*\" or one of %s", i,
					  list);
		}
		*bits |= (uint16_t)(1u << act);
	}
	return 0;
}

/* The body of a PUT: secret, buckets, actions (output-only fields are ignored). */
static int
parse_input(const json_t *body, struct cred_input *in, struct sp_api_verr *e)
{
	const char *k;
	json_t *v;
	int rc;

	memset(in, 0, sizeof(*in));
	if (!json_is_object(body))
		return sp_api_bad(e, "body", "must be a JSON object");
	json_object_foreach((json_t *)body, k, v)
	{
		if (strcmp(k, "secret") == 0) {
			const char *s = json_string_value(v);
			size_t len = s != NULL ? json_string_length(v) : 0;

			if (s == NULL || !secret_ok(s, len))
				return sp_api_bad(e, "secret",
						  "must be 1 to %d printable ASCII characters",
						  SP_SIGV4_SECRET_MAX);
			memcpy(in->secret, s, len);
			in->secret[len] = '\0';
			in->secret_len = (uint16_t)len;
			in->has_secret = true;
		} else if (strcmp(k, "buckets") == 0) {
			rc = parse_buckets(v, &in->buckets, e);
			if (rc != 0)
				return rc;
			in->has_buckets = true;
		} else if (strcmp(k, "actions") == 0) {
			rc = parse_actions(v, &in->actions, e);
			if (rc != 0)
				return rc;
			in->has_actions = true;
		} else if (strcmp(k, "service") == 0 || strcmp(k, "access_key") == 0 ||
			   strcmp(k, "created") == 0 || strcmp(k, "updated") == 0 ||
			   strcmp(k, "generation") == 0) {
			continue; /* output-only: a GET's answer can be sent back as it is */
		} else {
			return sp_api_bad(
				e, k, "unknown field (a credential has secret, buckets, actions)");
		}
	}
	return 0;
}

/* ---- the table ---------------------------------------------------------------------------- */

static uint64_t
cred_hash(const char *service, const char *ak, size_t ak_len)
{
	uint64_t h = 14695981039346656037ull;
	size_t i;

	for (i = 0; service[i] != '\0'; i++)
		h = (h ^ (uint8_t)service[i]) * 1099511628211ull;
	h = (h ^ 0xff) * 1099511628211ull; /* a byte no name has: the separator */
	for (i = 0; i < ak_len; i++)
		h = (h ^ (uint8_t)ak[i]) * 1099511628211ull;
	return h;
}

static void
cred_free(struct cred *c)
{
	if (c == NULL)
		return;
	OPENSSL_cleanse(c, sizeof(*c));
	free(c);
}

static struct cred *
table_find(const struct cred_table *t, const char *service, const char *ak, size_t ak_len)
{
	uint64_t h;
	struct cred *c;

	if (t->bucket == NULL)
		return NULL;
	h = cred_hash(service, ak, ak_len);
	for (c = t->bucket[h & t->mask]; c != NULL; c = c->next)
		if (c->hash == h && c->ak_len == ak_len && memcmp(c->ak, ak, ak_len) == 0 &&
		    strcmp(c->service, service) == 0)
			return c;
	return NULL;
}

static int
table_grow(struct cred_table *t)
{
	uint32_t n = t->bucket == NULL ? TABLE_MIN : (t->mask + 1) * 2, i;
	struct cred **b = calloc(n, sizeof(*b)), *c, *next;

	if (b == NULL)
		return -ENOMEM;
	for (i = 0; t->bucket != NULL && i <= t->mask; i++)
		for (c = t->bucket[i]; c != NULL; c = next) {
			next = c->next;
			c->next = b[c->hash & (n - 1)];
			b[c->hash & (n - 1)] = c;
		}
	free(t->bucket);
	t->bucket = b;
	t->mask = n - 1;
	return 0;
}

/* Add c (no credential of its name may be there). */
static int
table_add(struct cred_table *t, struct cred *c)
{
	if ((t->bucket == NULL || t->n >= t->mask + 1) && table_grow(t) != 0 && t->bucket == NULL)
		return -ENOMEM;
	c->hash = cred_hash(c->service, c->ak, c->ak_len);
	c->next = t->bucket[c->hash & t->mask];
	t->bucket[c->hash & t->mask] = c;
	t->n++;
	return 0;
}

/* Take c out (not freed). */
static void
table_remove(struct cred_table *t, struct cred *c)
{
	struct cred **p;

	for (p = &t->bucket[c->hash & t->mask]; *p != NULL; p = &(*p)->next)
		if (*p == c) {
			*p = c->next;
			c->next = NULL;
			t->n--;
			return;
		}
}

static void
table_free(struct cred_table *t)
{
	struct cred *c, *next;
	uint32_t i;

	for (i = 0; t->bucket != NULL && i <= t->mask; i++)
		for (c = t->bucket[i]; c != NULL; c = next) {
			next = c->next;
			cred_free(c);
		}
	free(t->bucket);
	memset(t, 0, sizeof(*t));
}

/* Every credential of t, in no order: *i is the iteration state (start at 0, c NULL). */
static struct cred *
table_next(const struct cred_table *t, uint32_t *i, struct cred *c)
{
	if (c != NULL && c->next != NULL)
		return c->next;
	if (c != NULL)
		(*i)++;
	for (; t->bucket != NULL && *i <= t->mask; (*i)++)
		if (t->bucket[*i] != NULL)
			return t->bucket[*i];
	return NULL;
}

static bool
same_secret_and_policy(const struct cred *x, const struct cred *y)
{
	return x->secret_len == y->secret_len &&
	       CRYPTO_memcmp(x->secret, y->secret, x->secret_len) == 0 &&
	       memcmp(&x->policy, &y->policy, sizeof(x->policy)) == 0;
}

/* ---- generations -------------------------------------------------------------------------- */

/* The slot of the service named, or -1 (none now). */
static int
service_slot(struct sp_auth *a, const char *service)
{
	if (a->ctl == NULL)
		return strcmp(service, a->alone.name) == 0 ? 0 : -1;
	return sp_services_slot(a->ctl->services, service);
}

/* A credential of service changed or went: verdicts earned with it are dead from now on. */
static void
bump(struct sp_auth *a, const char *service, const char *ak, size_t ak_len)
{
	int slot = service_slot(a, service);

	if (slot >= 0)
		__atomic_fetch_add(&a->gen[sp_auth_gen_slot((uint16_t)slot, ak, (uint32_t)ak_len)],
				   1, __ATOMIC_RELEASE);
}

/* The generation counter's value for a credential, or -1 when its service has no slot. */
static int64_t
generation(struct sp_auth *a, const struct cred *c)
{
	int slot = service_slot(a, c->service);

	if (slot < 0)
		return -1;
	return __atomic_load_n(&a->gen[sp_auth_gen_slot((uint16_t)slot, c->ak, c->ak_len)],
			       __ATOMIC_ACQUIRE);
}

/* ---- JSON --------------------------------------------------------------------------------- */

static json_t *
buckets_json(const struct sp_policy *p)
{
	json_t *a = json_array();
	unsigned int i;

	if (p->all_buckets)
		json_array_append_new(a, json_string("*"));
	else
		for (i = 0; i < p->n_buckets; i++)
			json_array_append_new(a, json_string(p->bucket[i]));
	return a;
}

static json_t *
actions_json(uint16_t bits)
{
	json_t *a = json_array();
	unsigned int i;

	if (bits & (1u << SP_POLICY_ACT_OTHER)) /* only "*" grants the others */
		json_array_append_new(a, json_string("*"));
	else
		for (i = 0; i < SP_POLICY_ACT_OTHER; i++)
			if (bits & (1u << i))
				json_array_append_new(a, json_string(sp_policy_action_name(i)));
	return a;
}

/* The API's view of a credential: never its secret. */
static json_t *
cred_json(struct sp_auth *a, const struct cred *c)
{
	int64_t g = generation(a, c);
	json_t *o = json_object();

	json_object_set_new(o, "service", json_string(c->service));
	json_object_set_new(o, "access_key", json_stringn(c->ak, c->ak_len));
	json_object_set_new(o, "buckets", buckets_json(&c->policy));
	json_object_set_new(o, "actions", actions_json(c->policy.actions));
	json_object_set_new(o, "created", json_integer((json_int_t)c->created));
	json_object_set_new(o, "updated", json_integer((json_int_t)c->updated));
	json_object_set_new(o, "generation", g < 0 ? json_null() : json_integer((json_int_t)g));
	return o;
}

/* ---- the store's ops ----------------------------------------------------------------------- */

static struct op *
op_of(struct sp_store_op *h)
{
	return container_of(h, struct op, h);
}

static struct sp_auth *
auth_of(struct op *o)
{
	return container_of(o->h.st, struct sp_auth, st);
}

static void
op_free(struct sp_store_op *h)
{
	struct op *o = op_of(h);

	table_free(&o->nt);
	cred_free(o->c);
	OPENSSL_cleanse(o, sizeof(*o));
	free(o);
}

/* ---- reload from Redis -------------------------------------------------------------------- */

/* "sp:cred:{SERVICE}:{AK}" → service and access key; false for any other key. */
static bool
split_key(const char *key, size_t len, struct hget *h)
{
	const char *p = key + strlen(KEY_PREFIX), *end = key + len, *close;
	size_t sl, al;

	if (len < strlen(KEY_PREFIX) || memcmp(key, KEY_PREFIX, strlen(KEY_PREFIX)) != 0)
		return false;
	close = memchr(p, '}', (size_t)(end - p));
	if (close == NULL || end - close < 4 || close[1] != ':' || close[2] != '{' ||
	    end[-1] != '}')
		return false;
	sl = (size_t)(close - p);
	al = (size_t)(end - 1 - (close + 3));
	if (sl > SP_SERVICES_NAME_MAX || !ak_ok(close + 3, al))
		return false;
	memcpy(h->service, p, sl);
	h->service[sl] = '\0';
	memcpy(h->ak, close + 3, al);
	h->ak[al] = '\0';
	h->ak_len = (uint8_t)al;
	return sp_services_name_ok(h->service);
}

/* A hash as stored (secret, buckets, actions, created, updated) → a credential. */
static int
cred_from_hash(const redisReply *r, const struct hget *h, struct cred **out, struct sp_api_verr *e)
{
	const char *secret = NULL, *buckets = NULL, *actions = NULL;
	size_t secret_len = 0, i;
	int64_t created = 0, updated = 0;
	json_t *jb = NULL, *ja = NULL;
	struct cred *c;
	int rc;

	if (r->type != REDIS_REPLY_ARRAY
#ifdef REDIS_REPLY_MAP
	    && r->type != REDIS_REPLY_MAP
#endif
	)
		return sp_api_bad(e, "key", "not a hash");
	for (i = 0; i + 1 < r->elements; i += 2) {
		const redisReply *k = r->element[i], *v = r->element[i + 1];

		if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
			continue;
		if (strcmp(k->str, "secret") == 0) {
			secret = v->str;
			secret_len = v->len;
		} else if (strcmp(k->str, "buckets") == 0) {
			buckets = v->str;
		} else if (strcmp(k->str, "actions") == 0) {
			actions = v->str;
		} else if (strcmp(k->str, "created") == 0) {
			created = strtoll(v->str, NULL, 10);
		} else if (strcmp(k->str, "updated") == 0) {
			updated = strtoll(v->str, NULL, 10);
		}
	}
	if (secret == NULL || !secret_ok(secret, secret_len))
		return sp_api_bad(e, "secret", "missing, or not 1 to %d printable ASCII characters",
				  SP_SIGV4_SECRET_MAX);
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return sp_api_bad(e, "key", "out of memory");
	memcpy(c->service, h->service, sizeof(c->service));
	memcpy(c->ak, h->ak, sizeof(c->ak));
	c->ak_len = h->ak_len;
	memcpy(c->secret, secret, secret_len);
	c->secret_len = (uint16_t)secret_len;
	c->created = created;
	c->updated = updated;
	rc = 0;
	if (buckets != NULL) {
		jb = json_loads(buckets, 0, NULL);
		rc = parse_buckets(jb, &c->policy, e);
	} else {
		c->policy.all_buckets = 1;
	}
	if (rc == 0 && actions != NULL) {
		ja = json_loads(actions, 0, NULL);
		rc = parse_actions(ja, &c->policy.actions, e);
	} else if (rc == 0) {
		c->policy.actions = SP_POLICY_ALL_ACTIONS;
	}
	json_decref(jb);
	json_decref(ja);
	if (rc != 0) {
		cred_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

/* The new table replaces the old: every credential that changed, came or went moves its
 * generation on; signing keys of unchanged ones are kept. */
static void
reload_apply(struct sp_auth *a, struct op *o)
{
	struct cred *c, *n;
	uint32_t i = 0;
	unsigned int changed = 0;
	struct cred_table old = a->t;

	a->t = o->nt;
	memset(&o->nt, 0, sizeof(o->nt));
	__atomic_store_n(&a->n_creds, a->t.n, __ATOMIC_RELAXED);
	for (c = table_next(&old, &i, NULL); c != NULL; c = table_next(&old, &i, c)) {
		n = table_find(&a->t, c->service, c->ak, c->ak_len);
		if (n != NULL && same_secret_and_policy(c, n)) {
			n->key_valid = c->key_valid;
			memcpy(n->key_date, c->key_date, sizeof(n->key_date));
			memcpy(n->key_region, c->key_region, sizeof(n->key_region));
			memcpy(n->key, c->key, sizeof(n->key));
			continue;
		}
		bump(a, c->service, c->ak, c->ak_len);
		changed++;
	}
	i = 0;
	for (n = table_next(&a->t, &i, NULL); n != NULL; n = table_next(&a->t, &i, n))
		if (table_find(&old, n->service, n->ak, n->ak_len) == NULL) {
			bump(a, n->service, n->ak, n->ak_len);
			changed++;
		}
	table_free(&old);
	if (!a->st.loaded || o->epoch != a->st.epoch || changed > 0)
		SP_LOG(NOTICE,
		       "auth: %u credential(s) loaded from Redis (epoch %" PRIu64 ", %u changed)%s",
		       a->t.n, o->epoch, changed, o->skipped ? ", some skipped (see above)" : "");
	a->st.epoch = o->epoch;
	__atomic_store_n(&a->st.loaded, true, __ATOMIC_RELEASE);
}

/* A reload's command came back: once none is pending, apply it or give up. */
static void
reload_step(struct op *o)
{
	struct sp_auth *a = auth_of(o);

	if (--o->pending > 0)
		return;
	if (o->failed)
		SP_LOG(WARNING, "auth: reading the credentials from Redis failed: %s",
		       a->st.loaded ? "kept the ones in memory"
				    : "none loaded yet (the service "
				      "authenticates until they are)");
	else
		reload_apply(a, o);
	sp_store_op_done(&o->h);
}

static void
on_reload_hash(void *arg, const redisReply *reply)
{
	struct hget *h = arg;
	struct op *o = h->o;
	struct cred *c = NULL;
	struct sp_api_verr e = {"", ""};

	if (reply == NULL) {
		o->failed = true;
	} else if (!o->failed) {
		if (reply->type == REDIS_REPLY_ERROR) {
			sp_api_bad(&e, "key", "%.120s", reply->str);
		} else if (reply->elements == 0) {
			/* deleted between the SCAN and now */
		} else if (cred_from_hash(reply, h, &c, &e) == 0) {
			struct cred *dup = table_find(&o->nt, c->service, c->ak, c->ak_len);

			if (dup == NULL && table_add(&o->nt, c) == 0)
				c = NULL;
			else if (dup == NULL)
				o->failed = true; /* out of memory: keep what is there */
			cred_free(c);		  /* SCAN may return a key twice */
		}
		if (e.msg[0] != '\0') {
			SP_LOG(WARNING,
			       "auth: credential %s of service %s in Redis is invalid (%s: %s): "
			       "skipped",
			       h->ak, h->service, e.field, e.msg);
			o->skipped++;
		}
	}
	OPENSSL_cleanse(h, sizeof(*h));
	free(h);
	reload_step(o);
}

static int reload_scan(struct op *o, const char *cursor);

static void
on_reload_scan(void *arg, const redisReply *reply)
{
	struct op *o = arg;
	const redisReply *keys;
	size_t i;

	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
	    reply->element[0]->type != REDIS_REPLY_STRING ||
	    reply->element[1]->type != REDIS_REPLY_ARRAY) {
		if (reply != NULL)
			SP_LOG(ERR, "auth: unexpected answer to SCAN from Redis");
		o->failed = true;
		reload_step(o);
		return;
	}
	keys = reply->element[1];
	for (i = 0; i < keys->elements && !o->failed; i++) {
		const redisReply *k = keys->element[i];
		struct hget *h;

		if (k->type != REDIS_REPLY_STRING)
			continue;
		h = calloc(1, sizeof(*h));
		if (h == NULL) {
			o->failed = true;
			break;
		}
		if (!split_key(k->str, k->len, h)) {
			SP_LOG(WARNING,
			       "auth: Redis key \"%.80s\" is not sp:cred:{SERVICE}:{AK}: "
			       "skipped",
			       k->str);
			o->skipped++;
			free(h);
			continue;
		}
		h->o = o;
		if (sp_redis_command(o->h.st->redis, on_reload_hash, h, "HGETALL %b", k->str,
				     k->len) != 0) {
			free(h);
			o->failed = true;
			break;
		}
		o->pending++;
	}
	if (!o->failed && strcmp(reply->element[0]->str, "0") != 0 &&
	    reload_scan(o, reply->element[0]->str) != 0)
		o->failed = true;
	reload_step(o);
}

static int
reload_scan(struct op *o, const char *cursor)
{
	int rc = sp_redis_command(o->h.st->redis, on_reload_scan, o, "SCAN %s MATCH %s COUNT %d",
				  cursor, KEY_PREFIX "*", SCAN_COUNT);

	if (rc == 0)
		o->pending++;
	return rc;
}

static void
on_reload_epoch(void *arg, const redisReply *reply)
{
	struct op *o = arg;

	if (reply == NULL || (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_NIL &&
			      reply->type != REDIS_REPLY_INTEGER))
		o->failed = true;
	else
		o->epoch = sp_store_reply_u64(reply);
	reload_step(o);
}

/* GET epoch and SCAN (then HGETALL of every key): 0 once anything is in flight (reload_step
 * ends the op when the last answer came). */
static int
reload(struct sp_store_op *h)
{
	struct op *o = op_of(h);
	int rc;

	table_free(&o->nt);
	o->pending = 0;
	o->failed = false;
	o->skipped = 0;
	rc = sp_redis_command(h->st->redis, on_reload_epoch, o, "GET " REDIS_EPOCH);
	if (rc == 0) {
		o->pending++;
		rc = reload_scan(o, "0");
	}
	if (rc != 0) {
		o->failed = true;
		if (o->pending == 0)
			return rc;
	}
	return 0;
}

/* ---- writes ------------------------------------------------------------------------------- */

/* Redis stored the change under epoch: apply it here and answer. */
static int
written(struct sp_store_op *h, uint64_t epoch)
{
	struct op *o = op_of(h);
	struct sp_auth *a = auth_of(o);
	struct cred *cur;

	a->st.epoch = epoch;
	cur = table_find(&a->t, o->service, o->ak, o->ak_len);
	if (o->kind == OP_DELETE) {
		if (cur != NULL) {
			table_remove(&a->t, cur);
			cred_free(cur);
		}
		bump(a, o->service, o->ak, o->ak_len);
		SP_LOG(NOTICE, "auth: credential %s of service %s deleted (epoch %" PRIu64 ")",
		       o->ak, o->service, epoch);
		if (h->req != NULL)
			sp_api_send_json(h->req, 200,
					 json_pack("{s:s%}", "deleted", o->ak, (size_t)o->ak_len));
	} else {
		if (cur != NULL) {
			table_remove(&a->t, cur);
			cred_free(cur);
		}
		if (table_add(&a->t, o->c) != 0) {
			/* stored in Redis; the next reload brings it here */
			sp_store_reply_error(h, 503, "no_memory", NULL,
					     "stored in Redis, but out of memory here");
			bump(a, o->service, o->ak, o->ak_len);
			a->st.epoch = 0; /* forces a reload on the next heartbeat */
			__atomic_store_n(&a->n_creds, a->t.n, __ATOMIC_RELAXED);
			return -ENOMEM;
		}
		cur = o->c;
		o->c = NULL;
		bump(a, o->service, o->ak, o->ak_len);
		SP_LOG(NOTICE, "auth: credential %s of service %s %s (epoch %" PRIu64 ")", o->ak,
		       o->service, o->created ? "created" : "replaced", epoch);
		if (h->req != NULL)
			sp_api_send_json(h->req, o->created ? 201 : 200, cred_json(a, cur));
	}
	h->req = NULL;
	__atomic_store_n(&a->n_creds, a->t.n, __ATOMIC_RELAXED);
	return 0;
}

/* Check a PUT or DELETE against the current state; 0 when it may be written. */
static int
prepare(struct sp_store_op *h)
{
	struct op *o = op_of(h);
	struct sp_auth *a = auth_of(o);
	struct cred *cur;
	struct timespec ts;

	if (!a->st.loaded) {
		sp_store_reply_error(
			h, 503, "not_loaded", NULL,
			"the credentials have not been read from Redis yet: try again");
		return -EAGAIN;
	}
	cur = table_find(&a->t, o->service, o->ak, o->ak_len);
	if (o->kind == OP_DELETE) {
		if (cur == NULL) {
			char msg[240];

			snprintf(msg, sizeof(msg), "service %s has no credential %s", o->service,
				 o->ak);
			sp_store_reply_error(h, 404, "not_found", NULL, msg);
			return -ENOENT;
		}
		return 0;
	}
	if (a->ctl != NULL && !sp_services_loaded(a->ctl->services)) {
		sp_store_reply_error(h, 503, "not_loaded", NULL,
				     "the services have not been read from Redis yet: try again");
		return -EAGAIN;
	}
	if (service_slot(a, o->service) < 0) {
		char msg[120];

		snprintf(msg, sizeof(msg), "no service named %s", o->service);
		sp_store_reply_error(h, 404, "not_found", NULL, msg);
		return -ENOENT;
	}
	if (cur == NULL && !o->in.has_secret) {
		sp_store_reply_error(h, 400, "invalid", "secret",
				     "secret is required for a new credential");
		return -EINVAL;
	}
	o->c = calloc(1, sizeof(*o->c));
	if (o->c == NULL) {
		sp_store_reply_error(h, 503, "no_memory", NULL, "out of memory");
		return -ENOMEM;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	if (cur != NULL) {
		memcpy(o->c, cur, sizeof(*o->c));
		o->c->next = NULL;
	} else {
		memcpy(o->c->service, o->service, sizeof(o->c->service));
		memcpy(o->c->ak, o->ak, sizeof(o->c->ak));
		o->c->ak_len = o->ak_len;
		o->c->policy.all_buckets = 1;
		o->c->policy.actions = SP_POLICY_ALL_ACTIONS;
		o->c->created = ts.tv_sec;
	}
	o->c->updated = ts.tv_sec;
	if (o->in.has_secret) {
		memcpy(o->c->secret, o->in.secret, sizeof(o->c->secret));
		o->c->secret_len = o->in.secret_len;
		o->c->key_valid = false;
	}
	if (o->in.has_buckets) {
		o->c->policy.all_buckets = o->in.buckets.all_buckets;
		o->c->policy.n_buckets = o->in.buckets.n_buckets;
		memcpy(o->c->policy.len, o->in.buckets.len, sizeof(o->c->policy.len));
		memcpy(o->c->policy.bucket, o->in.buckets.bucket, sizeof(o->c->policy.bucket));
	}
	if (o->in.has_actions)
		o->c->policy.actions = o->in.actions;
	o->created = cur == NULL;
	return 0;
}

/* The MULTI / DEL / [HSET] / INCR / EXEC of o; 0 once EXEC was sent (written answers). */
static int
send_write(struct sp_store_op *h)
{
	struct op *o = op_of(h);
	struct sp_redis *r = h->st->redis;
	char key[sizeof(KEY_PREFIX) + SP_SERVICES_NAME_MAX + SP_SIGV4_ACCESS_KEY_MAX + 4];
	char *jb = NULL, *ja = NULL;
	int klen, rc = 0;

	klen = snprintf(key, sizeof(key), KEY_PREFIX "%s}:{%.*s}", o->service, (int)o->ak_len,
			o->ak);
	if (o->kind == OP_PUT) { /* everything that can fail here, before MULTI */
		json_t *b = buckets_json(&o->c->policy), *ac = actions_json(o->c->policy.actions);

		jb = json_dumps(b, JSON_COMPACT);
		ja = json_dumps(ac, JSON_COMPACT);
		json_decref(b);
		json_decref(ac);
		if (jb == NULL || ja == NULL)
			rc = -ENOMEM;
	}
	if (rc == 0)
		rc = sp_store_multi(h->st);
	if (rc == 0)
		rc = sp_redis_command(r, sp_store_ignore_reply, NULL, "DEL %b", key, (size_t)klen);
	if (rc == 0 && o->kind == OP_PUT)
		rc = sp_redis_command(r, sp_store_ignore_reply, NULL,
				      "HSET %b secret %b buckets %s actions %s created %lld "
				      "updated %lld",
				      key, (size_t)klen, o->c->secret, (size_t)o->c->secret_len, jb,
				      ja, (long long)o->c->created, (long long)o->c->updated);
	if (rc == 0)
		rc = sp_store_exec(h, o->kind == OP_PUT ? 2 : 1);
	free(jb);
	free(ja);
	return rc;
}

static const struct sp_store_ops store_ops = {
	.epoch_key = REDIS_EPOCH,
	.op_size = sizeof(struct op),
	.reload = reload,
	.prepare = prepare,
	.send = send_write,
	.written = written,
	.op_free = op_free,
};

/* ---- HTTP --------------------------------------------------------------------------------- */

bool
sp_auth_is_credentials_path(const char *path)
{
	const char *rest;

	if (strncmp(path, API_PREFIX, strlen(API_PREFIX)) != 0)
		return false;
	rest = strchr(path + strlen(API_PREFIX), '/');
	return rest != NULL &&
	       (strcmp(rest, "/credentials") == 0 || strncmp(rest, "/credentials/", 13) == 0);
}

static int
cmp_ak(const void *x, const void *y)
{
	const struct cred *a = *(const struct cred *const *)x, *b = *(const struct cred *const *)y;
	int d = memcmp(a->ak, b->ak, RTE_MIN(a->ak_len, b->ak_len));

	return d != 0 ? d : (int)a->ak_len - (int)b->ak_len;
}

static void
handle_list(struct sp_auth *a, struct evhttp_request *req, const char *service)
{
	json_t *list = json_array();
	struct cred **v = NULL, *c;
	uint32_t i = 0, n = 0, k;

	if (a->t.n > 0)
		v = calloc(a->t.n, sizeof(*v));
	if (a->t.n > 0 && v == NULL) {
		json_decref(list);
		sp_api_send_error(req, 503, "no_memory", NULL, "out of memory");
		return;
	}
	for (c = table_next(&a->t, &i, NULL); c != NULL; c = table_next(&a->t, &i, c))
		if (strcmp(c->service, service) == 0)
			v[n++] = c;
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_ak);
	for (k = 0; k < n; k++)
		json_array_append_new(list, cred_json(a, v[k]));
	free(v);
	sp_api_send_json(req, 200, json_pack("{s:s,s:o}", "service", service, "credentials", list));
}

/* The request's JSON body; the bytes it came in are wiped (it may hold a secret). */
static json_t *
read_body(struct evhttp_request *req, json_error_t *jerr)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	unsigned char *p = evbuffer_pullup(in, -1);
	json_t *body = json_loadb((const char *)p, len, 0, jerr);

	if (p != NULL)
		OPENSSL_cleanse(p, len);
	return body;
}

/* Wipe a JSON body's "secret" before it is freed (jansson does not). */
static void
wipe_secret(json_t *body)
{
	json_t *s = json_object_get(body, "secret");

	if (json_is_string(s))
		OPENSSL_cleanse((char *)json_string_value(s), json_string_length(s));
}

void
sp_auth_http(struct sp_auth *a, struct evhttp_request *req, const char *path)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	char name[SP_SERVICES_NAME_MAX + 1];
	const char *p = path + strlen(API_PREFIX), *slash = strchr(p, '/'), *akp;
	struct sp_api_verr e = {"", ""};
	json_error_t jerr;
	json_t *body;
	struct op *o;
	size_t nl = slash != NULL ? (size_t)(slash - p) : 0, dlen = 0;
	char *dec;

	if (slash == NULL || nl == 0 || nl > SP_SERVICES_NAME_MAX ||
	    (memcpy(name, p, nl), name[nl] = '\0', !sp_services_name_ok(name))) {
		sp_api_send_error(req, 400, "invalid", "name",
				  "name \"%.*s\" must be 1 to %d of a-z 0-9 - _, starting with a "
				  "letter or digit",
				  (int)RTE_MIN(nl, 40u), p, SP_SERVICES_NAME_MAX);
		return;
	}
	akp = slash + strlen("/credentials");
	if (*akp == '\0') {
		if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
					  "GET, HEAD");
			sp_api_send_error(req, 405, "method_not_allowed", NULL,
					  "/v1/services/NAME/credentials takes GET (PUT and DELETE "
					  "go to /v1/services/NAME/credentials/ACCESS_KEY)");
			return;
		}
		handle_list(a, req, name);
		return;
	}
	if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD && m != EVHTTP_REQ_PUT &&
	    m != EVHTTP_REQ_DELETE) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
				  "GET, HEAD, PUT, DELETE");
		sp_api_send_error(req, 405, "method_not_allowed", NULL,
				  "/v1/services/NAME/credentials/ACCESS_KEY takes GET, PUT or "
				  "DELETE");
		return;
	}
	dec = evhttp_uridecode(akp + 1, 0, &dlen);
	if (dec == NULL) {
		sp_api_send_error(req, 503, "no_memory", NULL, "out of memory");
		return;
	}
	if (dlen != strlen(dec) || !ak_ok(dec, dlen)) {
		free(dec);
		sp_api_send_error(req, 400, "invalid", "access_key",
				  "an access key is 1 to %d printable ASCII characters, no space "
				  "and no '/' (percent-encoded in the path where needed)",
				  SP_SIGV4_ACCESS_KEY_MAX);
		return;
	}
	if (m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD) {
		const struct cred *c = table_find(&a->t, name, dec, dlen);

		if (c == NULL)
			sp_api_send_error(req, 404, "not_found", NULL,
					  "service %s has no credential %.128s", name, dec);
		else
			sp_api_send_json(req, 200, cred_json(a, c));
		free(dec);
		return;
	}
	o = calloc(1, sizeof(*o));
	if (o == NULL) {
		free(dec);
		sp_api_send_error(req, 503, "no_memory", NULL, "out of memory");
		return;
	}
	o->kind = m == EVHTTP_REQ_PUT ? OP_PUT : OP_DELETE;
	memcpy(o->service, name, nl + 1);
	memcpy(o->ak, dec, dlen + 1);
	o->ak_len = (uint8_t)dlen;
	free(dec);
	if (o->kind == OP_PUT) {
		body = read_body(req, &jerr);
		if (body == NULL || !json_is_object(body)) {
			sp_api_send_error(req, 400, "invalid", "body",
					  "body must be a JSON object%s%s", body ? "" : ": ",
					  body ? "" : jerr.text);
			json_decref(body);
			op_free(&o->h);
			return;
		}
		if (parse_input(body, &o->in, &e) != 0) {
			wipe_secret(body);
			json_decref(body);
			sp_api_send_error(req, 400, "invalid", e.field, "%s %s", e.field, e.msg);
			op_free(&o->h);
			return;
		}
		wipe_secret(body);
		json_decref(body);
	}
	sp_store_submit(&a->st, &o->h, req);
}

/* ---- verification ------------------------------------------------------------------------- */

/* The service in slot as the verifier needs it. */
static int
service_of(struct sp_auth *a, uint16_t slot, struct sp_services_backend *be)
{
	if (a->ctl == NULL) {
		if (slot != 0)
			return -ENOENT;
		*be = a->alone;
		return 0;
	}
	return sp_services_backend(a->ctl->services, slot, be);
}

static void
hex_of(const uint8_t *in, size_t n, char *out)
{
	const char *digits = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

/* An x-amz-request-id as the lab's service makes them (16 upper-case hex digits), random. */
static void
request_id(struct sp_auth *a, char out[17])
{
	uint64_t v;

	if (RAND_bytes((unsigned char *)&v, sizeof(v)) != 1)
		v = ++a->req_id_seq * 0x9e3779b97f4a7c15ull ^ now_ms();
	sp_s3err_request_id(out, v);
}

/*
 * m->reply: the S3 error response (sigv4 error err, or code with message when code is not NULL),
 * with as many of its extra elements (in order) as fit SP_AUTH_REPLY_MAX. -ENOSPC if not even
 * the document without them fits.
 */
static int
make_reply(struct sp_auth *a, struct sp_auth_msg *m, const struct sp_http_req *req,
	   const char *code, int err, const struct sp_sigv4_auth *auth,
	   const struct sp_s3err_sigv4_info *info, int64_t now)
{
	char resource[3 * 4096 + 3], id[17];
	bool head = req->method == SP_HTTP_METHOD_HEAD;
	size_t rlen;
	int n;

	if (req->path.len > 4096)
		return -ENOSPC;
	rlen = sp_s3err_resource(resource, sizeof(resource), m->data + req->path.off,
				 req->path.len);
	request_id(a, id);
	if (code != NULL)
		n = sp_s3err_response(m->reply, sizeof(m->reply), code, NULL, resource, rlen, id,
				      NULL, head, now);
	else
		n = sp_s3err_sigv4_response(m->reply, sizeof(m->reply), err, auth, info, resource,
					    rlen, id, head, now);
	if (n <= 0)
		return -ENOSPC;
	m->reply_len = (uint16_t)n;
	return 0;
}

/* One line per refusal or undecided request, at most LOG_PER_WINDOW a second. */
static void
log_outcome(struct sp_auth *a, const struct sp_auth_msg *m, const char *service, const char *what,
	    const char *why)
{
	uint64_t t = now_ms();
	char ip[INET_ADDRSTRLEN];

	if (a->ctl == NULL) /* standalone (benchmarks): quiet */
		return;
	if (t - a->log_window_ms >= 1000) {
		if (a->log_suppressed > 0)
			SP_LOG(INFO, "auth: %u more refused or undecided requests not logged",
			       a->log_suppressed);
		a->log_window_ms = t;
		a->log_lines = 0;
		a->log_suppressed = 0;
	}
	if (a->log_lines >= LOG_PER_WINDOW) {
		a->log_suppressed++;
		return;
	}
	a->log_lines++;
	inet_ntop(AF_INET, &m->vm_ip, ip, sizeof(ip));
	SP_LOG(INFO, "auth: %s %s (service %s, VM %s, port %u, access key %.*s)", what, why,
	       service, ip, m->port_idx, (int)m->ak_len, m->access_key);
}

static void
clear_answer(struct sp_auth_msg *m)
{
	m->status = SP_AUTH_UNDECIDED;
	m->verdict = 0;
	m->error = SP_SIGV4_ERR_NONE;
	m->ak_len = 0;
	m->ttl_ms = 0;
	m->cred_gen = 0;
	m->verify_ns = 0;
	m->reply_len = 0;
	memset(&m->policy, 0, sizeof(m->policy));
	m->access_key[0] = '\0';
}

static uint64_t
elapsed_ns(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (uint64_t)(t1.tv_sec - t0->tv_sec) * 1000000000ull + (uint64_t)t1.tv_nsec -
	       (uint64_t)t0->tv_nsec;
}

/* The verification's time (steps 2 to 8) into m and the counters. */
static void
timed(struct sp_auth *a, struct sp_auth_msg *m, const struct timespec *t0)
{
	uint64_t ns = elapsed_ns(t0), us = ns / 1000;
	unsigned int b = 0;

	while (b < HIST_N - 1 && us >= (1ull << b))
		b++;
	m->verify_ns = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
	SP_CNT_ADD(a->c.verify_count, 1);
	SP_CNT_ADD(a->c.verify_sum_ns, ns);
	if (ns > a->c.verify_max_ns)
		__atomic_store_n(&a->c.verify_max_ns, ns, __ATOMIC_RELAXED);
	SP_CNT_ADD(a->c.verify_hist[b], 1);
}

static int
undecided(struct sp_auth *a, struct sp_auth_msg *m, enum undecided_reason why, const char *service,
	  const struct timespec *t0)
{
	if (t0 != NULL)
		timed(a, m, t0);
	m->status = SP_AUTH_UNDECIDED;
	m->verdict = 0;
	m->reply_len = 0;
	SP_CNT_ADD(a->c.undecided, 1);
	SP_CNT_ADD(a->c.undecided_by[why], 1);
	log_outcome(a, m, service, "undecided (the service authenticates):", undecided_names[why]);
	return m->status;
}

/*
 * Refuse with the sigv4 error err (positive): the S3 code, the lab's message and extra elements.
 * Errors that are this verifier's own failing are UNDECIDED instead (the service decides).
 */
static int
refuse(struct sp_auth *a, struct sp_auth_msg *m, const struct sp_services_backend *be,
       const struct sp_http_req *req, const struct sp_sigv4_auth *auth, int err, int64_t now,
       const uint8_t *body_sha, const struct timespec *t0)
{
	struct sp_s3err_sigv4_info info = {0};
	char sts[512], sha[65];
	const char *code;
	int n;

	if (err == SP_SIGV4_ERR_CRYPTO || err == SP_SIGV4_ERR_BAD_REQUEST ||
	    err == SP_SIGV4_ERR_NO_SPACE)
		return undecided(a, m, UND_INTERNAL, be->name, t0);
	if (err == SP_SIGV4_ERR_TOO_BIG)
		return undecided(a, m, UND_UNSUPPORTED, be->name, t0);
	if (err == SP_SIGV4_ERR_SIGNATURE_MISMATCH || err == SP_SIGV4_ERR_BAD_SIGNATURE) {
		/* what the lab's document shows: the string to sign and canonical request */
		n = sp_sigv4_canonical_request(m->data, m->head_len, req, auth, a->creq,
					       sizeof(a->creq));
		if (n >= 0) {
			info.creq = a->creq;
			info.creq_len = (size_t)n;
			if (sp_sigv4_string_to_sign(auth, a->creq, (size_t)n, sts, sizeof(sts)) >=
			    0)
				info.string_to_sign = sts;
		}
	} else if (err == SP_SIGV4_ERR_CONTENT_SHA256_MISMATCH && body_sha != NULL) {
		hex_of(body_sha, 32, sha);
		info.body_sha256 = sha;
	}
	code = sp_sigv4_s3_code(err);
	if (make_reply(a, m, req, NULL, err, auth, &info, now) != 0)
		return undecided(a, m, UND_INTERNAL, be->name, t0);
	timed(a, m, t0);
	m->status = SP_AUTH_REFUSED;
	m->verdict = 0;
	m->error = (uint8_t)err;
	SP_CNT_ADD(a->c.refused, 1);
	SP_CNT_ADD(a->c.refused_by[err], 1);
	log_outcome(a, m, be->name, code, sp_sigv4_error_name(err));
	return m->status;
}

/* SHA-256 of the body. 0, or -1 if OpenSSL failed. */
static int
body_sha256(struct sp_auth *a, const char *p, size_t n, uint8_t out[32])
{
	return a->md_ctx != NULL && a->md != NULL &&
			       EVP_DigestInit_ex2(a->md_ctx, a->md, NULL) == 1 &&
			       EVP_DigestUpdate(a->md_ctx, p, n) == 1 &&
			       EVP_DigestFinal_ex(a->md_ctx, out, NULL) == 1
		       ? 0
		       : -1;
}

int
sp_auth_verify_msg(struct sp_auth *a, struct sp_auth_msg *m)
{
	struct sp_http_limits lim = SP_HTTP_LIMITS_DEFAULT;
	struct sp_services_backend be;
	struct sp_sigv4_auth auth;
	struct sp_http_req req;
	enum sp_policy_action act;
	const char *bucket;
	uint32_t bucket_len, gen;
	uint8_t sha[32];
	struct timespec t0;
	struct cred *c;
	int64_t now;
	int rc;

	clear_answer(m);
	SP_CNT_ADD(a->c.punts, 1);
	/* 1. the service, as the worker saw it, and the credentials */
	if (service_of(a, m->svc_slot, &be) != 0)
		return undecided(a, m, UND_NO_SERVICE, "?", NULL);
	if (m->mode != SP_AUTH_MODE_FIRST && m->mode != SP_AUTH_MODE_EVERY)
		return undecided(a, m, UND_BAD_MESSAGE, be.name, NULL);
	if (be.epoch > m->svc_epoch || be.auth != m->mode)
		return undecided(a, m, UND_SERVICE_CHANGED, be.name, NULL);
	if (!__atomic_load_n(&a->st.loaded, __ATOMIC_ACQUIRE))
		return undecided(a, m, UND_NOT_LOADED, be.name, NULL);
	if (m->head_len == 0 ||
	    (a->data_max > 0 && (uint64_t)m->head_len + m->body_len > a->data_max))
		return undecided(a, m, UND_BAD_MESSAGE, be.name, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t0);

	/* 2. the head, parsed again (the worker parsed it already) */
	sp_http_req_init(&req);
	lim.max_head = m->head_len;
	if (sp_http_parse_request(m->data, m->head_len, &req, &lim) != (int)m->head_len)
		return undecided(a, m, UND_BAD_MESSAGE, be.name, &t0);

	/* 3. the credentials the request carries */
	now = (int64_t)time(NULL);
	rc = sp_sigv4_parse_auth(m->data, m->head_len, &req, be.region, now, &auth);
	m->ak_len = auth.access_key_len;
	memcpy(m->access_key, auth.access_key, auth.access_key_len);
	m->access_key[m->ak_len] = '\0';
	if (rc != 0)
		return refuse(a, m, &be, &req, &auth, -rc, now, NULL, &t0);

	/* 4. the credential */
	c = table_find(&a->t, be.name, auth.access_key, auth.access_key_len);
	if (c == NULL)
		return refuse(a, m, &be, &req, &auth, SP_SIGV4_ERR_UNKNOWN_ACCESS_KEY, now, NULL,
			      &t0);
	gen = __atomic_load_n(&a->gen[sp_auth_gen_slot(m->svc_slot, c->ak, c->ak_len)],
			      __ATOMIC_ACQUIRE);

	/* 5. its signing key for the request's day and region */
	if (!c->key_valid || strcmp(c->key_date, auth.scope_date) != 0 ||
	    strcmp(c->key_region, auth.region) != 0) {
		c->key_valid = false;
		if (sp_sigv4_signing_key(c->secret, c->secret_len, auth.scope_date, auth.region,
					 auth.service, c->key) != 0)
			return undecided(a, m, UND_INTERNAL, be.name, &t0);
		memcpy(c->key_date, auth.scope_date, sizeof(c->key_date));
		memcpy(c->key_region, auth.region, sizeof(c->key_region));
		c->key_valid = true;
		SP_CNT_ADD(a->c.keys_derived, 1);
	} else {
		SP_CNT_ADD(a->c.keys_cached, 1);
	}

	/* 6. the signature */
	rc = sp_sigv4_verify(m->data, m->head_len, &req, &auth, c->key);
	if (rc != 0)
		return refuse(a, m, &be, &req, &auth, -rc, now, NULL, &t0);

	/* authentic: what a verdict carries */
	m->verdict = m->mode == SP_AUTH_MODE_FIRST;
	m->ttl_ms = a->verdict_ttl_s * 1000;
	m->policy = c->policy;
	m->cred_gen = gen;

	/* 7. the policy (before the body, as the service: its bucket check comes first) */
	act = sp_policy_action_of(m->data + req.method_tok.off, req.method_tok.len,
				  m->data + req.path.off, req.path.len, &bucket, &bucket_len);
	if (!sp_policy_allows(&c->policy, act, bucket, bucket_len)) {
		if (make_reply(a, m, &req, "AccessDenied", 0, NULL, NULL, now) != 0)
			return undecided(a, m, UND_INTERNAL, be.name, &t0);
		timed(a, m, &t0);
		m->status = SP_AUTH_REFUSED;
		m->error = SP_SIGV4_ERR_NONE;
		SP_CNT_ADD(a->c.refused, 1);
		SP_CNT_ADD(a->c.access_denied, 1);
		if (m->verdict)
			SP_CNT_ADD(a->c.verdicts, 1);
		log_outcome(a, m, be.name, "AccessDenied", sp_policy_action_name(act));
		return m->status;
	}

	/* 8. a signed body, when the worker holds all of it */
	if (!auth.payload_unsigned && !m->body_unverified) {
		if (req.chunked ||
		    (uint64_t)m->body_len != (req.has_content_length ? req.content_length : 0))
			return undecided(a, m, UND_BAD_MESSAGE, be.name, &t0);
		if (body_sha256(a, m->data + m->head_len, m->body_len, sha) != 0)
			return undecided(a, m, UND_INTERNAL, be.name, &t0);
		rc = sp_sigv4_payload_check(&auth, sha);
		if (rc != 0)
			return refuse(a, m, &be, &req, &auth, -rc, now, sha, &t0);
	}

	/* 9. on */
	timed(a, m, &t0);
	m->status = SP_AUTH_OK;
	SP_CNT_ADD(a->c.ok, 1);
	if (m->body_unverified && !auth.payload_unsigned)
		SP_CNT_ADD(a->c.ok_signature_only, 1);
	if (m->verdict)
		SP_CNT_ADD(a->c.verdicts, 1);
	return m->status;
}

/* The dataplane's SP_PUNT_AUTH handler: verify, then hand the answer to its worker. */
static void
on_msg(void *arg, struct sp_auth_msg *m)
{
	struct sp_auth *a = arg;
	struct sp_dp *dp = a->dp;
	struct rte_ring *r;

	if (dp == NULL) /* cannot happen: sp_auth_stop cleared the handler */
		return;
	if (!dp->running || m->worker >= dp->n_workers) {
		/* the dataplane's last drain (it is stopping), or not a message of ours */
		if (dp->running)
			SP_CNT_ADD(a->c.bad_worker, 1);
		rte_mempool_put(dp->auth_pool, m);
		return;
	}
	sp_auth_verify_msg(a, m);
	r = dp->workers[m->worker]->auth_ring;
	if (r == NULL || rte_ring_enqueue(r, m) != 0) {
		SP_CNT_ADD(a->c.ring_full, 1);
		rte_mempool_put(dp->auth_pool, m);
	}
}

/* ---- observability ------------------------------------------------------------------------ */

/* Upper bound of verification time bucket b in microseconds (0: the last, unbounded). */
static uint64_t
hist_bound_us(unsigned int b)
{
	return b < HIST_N - 1 ? 1ull << b : 0;
}

static void
hist_key(unsigned int b, char *out, size_t len)
{
	if (b < HIST_N - 1)
		snprintf(out, len, "lt_%" PRIu64 "us", hist_bound_us(b));
	else
		snprintf(out, len, "ge_%" PRIu64 "us", hist_bound_us(b - 1));
}

/* The workers' auth events summed (dataplane/sp_tcp_ep.h). */
static void
worker_sums(const struct sp_auth *a, uint64_t out[RTE_DIM(worker_events)])
{
	const struct sp_dp *dp = a->ctl != NULL ? a->ctl->dp : NULL;
	unsigned int i, w;

	memset(out, 0, sizeof(uint64_t) * RTE_DIM(worker_events));
	for (w = 0; dp != NULL && w < dp->n_workers; w++)
		for (i = 0; i < RTE_DIM(worker_events); i++)
			out[i] += SP_CNT_GET(dp->workers[w]->stats.tcp[worker_events[i]]);
}

json_t *
sp_auth_stats_json(struct sp_auth *a)
{
	const struct counters *c = &a->c;
	json_t *o = json_object(), *rby = json_object(), *uby = json_object();
	json_t *hist = json_object(), *w = json_object();
	uint64_t ws[RTE_DIM(worker_events)], count = SP_CNT_GET(c->verify_count);
	char key[32];
	unsigned int i;

	for (i = 1; i < SP_SIGV4_ERR_MAX; i++)
		json_object_set_new(rby, sp_sigv4_error_name((int)i),
				    json_integer((json_int_t)SP_CNT_GET(c->refused_by[i])));
	json_object_set_new(rby, "access_denied",
			    json_integer((json_int_t)SP_CNT_GET(c->access_denied)));
	for (i = 0; i < UND_MAX; i++)
		json_object_set_new(uby, undecided_names[i],
				    json_integer((json_int_t)SP_CNT_GET(c->undecided_by[i])));
	for (i = 0; i < HIST_N; i++) {
		hist_key(i, key, sizeof(key));
		json_object_set_new(hist, key,
				    json_integer((json_int_t)SP_CNT_GET(c->verify_hist[i])));
	}
	worker_sums(a, ws);
	for (i = 0; i < RTE_DIM(worker_events); i++)
		json_object_set_new(w, sp_tcp_event_name(worker_events[i]),
				    json_integer((json_int_t)ws[i]));
	json_object_set_new(o, "loaded",
			    json_boolean(__atomic_load_n(&a->st.loaded, __ATOMIC_RELAXED)));
	json_object_set_new(o, "epoch", json_integer((json_int_t)a->st.epoch));
	json_object_set_new(o, "credentials",
			    json_integer(__atomic_load_n(&a->n_creds, __ATOMIC_RELAXED)));
	json_object_set_new(o, "punts", json_integer((json_int_t)SP_CNT_GET(c->punts)));
	json_object_set_new(o, "ok", json_integer((json_int_t)SP_CNT_GET(c->ok)));
	json_object_set_new(o, "ok_signature_only",
			    json_integer((json_int_t)SP_CNT_GET(c->ok_signature_only)));
	json_object_set_new(o, "refused", json_integer((json_int_t)SP_CNT_GET(c->refused)));
	json_object_set_new(o, "undecided", json_integer((json_int_t)SP_CNT_GET(c->undecided)));
	json_object_set_new(o, "verdicts", json_integer((json_int_t)SP_CNT_GET(c->verdicts)));
	json_object_set_new(o, "ring_full", json_integer((json_int_t)SP_CNT_GET(c->ring_full)));
	json_object_set_new(o, "bad_worker", json_integer((json_int_t)SP_CNT_GET(c->bad_worker)));
	json_object_set_new(o, "refused_by", rby);
	json_object_set_new(o, "undecided_by", uby);
	json_object_set_new(
		o, "verify",
		json_pack("{s:I,s:I,s:I,s:I,s:o}", "count", (json_int_t)count, "sum_ns",
			  (json_int_t)SP_CNT_GET(c->verify_sum_ns), "max_ns",
			  (json_int_t)SP_CNT_GET(c->verify_max_ns), "mean_ns",
			  (json_int_t)(count ? SP_CNT_GET(c->verify_sum_ns) / count : 0),
			  "histogram", hist));
	json_object_set_new(o, "signing_keys",
			    json_pack("{s:I,s:I}", "derived",
				      (json_int_t)SP_CNT_GET(c->keys_derived), "cached",
				      (json_int_t)SP_CNT_GET(c->keys_cached)));
	json_object_set_new(o, "workers", w);
	return o;
}

int
sp_auth_telemetry(struct sp_auth *a, struct rte_tel_data *d)
{
	const struct counters *c = &a->c;
	struct rte_tel_data *rby = rte_tel_data_alloc(), *uby = rte_tel_data_alloc();
	struct rte_tel_data *hist = rte_tel_data_alloc(), *w = rte_tel_data_alloc();
	uint64_t ws[RTE_DIM(worker_events)], count = SP_CNT_GET(c->verify_count);
	char key[32];
	unsigned int i;

	if (rby == NULL || uby == NULL || hist == NULL || w == NULL) {
		rte_tel_data_free(rby);
		rte_tel_data_free(uby);
		rte_tel_data_free(hist);
		rte_tel_data_free(w);
		return -ENOMEM;
	}
	rte_tel_data_start_dict(d);
	rte_tel_data_start_dict(rby);
	rte_tel_data_start_dict(uby);
	rte_tel_data_start_dict(hist);
	rte_tel_data_start_dict(w);
	rte_tel_data_add_dict_u64(d, "loaded", __atomic_load_n(&a->st.loaded, __ATOMIC_RELAXED));
	rte_tel_data_add_dict_u64(d, "credentials", __atomic_load_n(&a->n_creds, __ATOMIC_RELAXED));
	rte_tel_data_add_dict_u64(d, "punts", SP_CNT_GET(c->punts));
	rte_tel_data_add_dict_u64(d, "ok", SP_CNT_GET(c->ok));
	rte_tel_data_add_dict_u64(d, "ok_signature_only", SP_CNT_GET(c->ok_signature_only));
	rte_tel_data_add_dict_u64(d, "refused", SP_CNT_GET(c->refused));
	rte_tel_data_add_dict_u64(d, "undecided", SP_CNT_GET(c->undecided));
	rte_tel_data_add_dict_u64(d, "verdicts", SP_CNT_GET(c->verdicts));
	rte_tel_data_add_dict_u64(d, "ring_full", SP_CNT_GET(c->ring_full));
	rte_tel_data_add_dict_u64(d, "verify_count", count);
	rte_tel_data_add_dict_u64(d, "verify_sum_ns", SP_CNT_GET(c->verify_sum_ns));
	rte_tel_data_add_dict_u64(d, "verify_max_ns", SP_CNT_GET(c->verify_max_ns));
	rte_tel_data_add_dict_u64(d, "verify_mean_ns",
				  count ? SP_CNT_GET(c->verify_sum_ns) / count : 0);
	rte_tel_data_add_dict_u64(d, "keys_derived", SP_CNT_GET(c->keys_derived));
	rte_tel_data_add_dict_u64(d, "keys_cached", SP_CNT_GET(c->keys_cached));
	for (i = 1; i < SP_SIGV4_ERR_MAX; i++)
		rte_tel_data_add_dict_u64(rby, sp_sigv4_error_name((int)i),
					  SP_CNT_GET(c->refused_by[i]));
	rte_tel_data_add_dict_u64(rby, "access_denied", SP_CNT_GET(c->access_denied));
	for (i = 0; i < UND_MAX; i++)
		rte_tel_data_add_dict_u64(uby, undecided_names[i], SP_CNT_GET(c->undecided_by[i]));
	for (i = 0; i < HIST_N; i++) {
		hist_key(i, key, sizeof(key));
		rte_tel_data_add_dict_u64(hist, key, SP_CNT_GET(c->verify_hist[i]));
	}
	worker_sums(a, ws);
	for (i = 0; i < RTE_DIM(worker_events); i++)
		rte_tel_data_add_dict_u64(w, sp_tcp_event_name(worker_events[i]), ws[i]);
	rte_tel_data_add_dict_container(d, "refused_by", rby, 0);
	rte_tel_data_add_dict_container(d, "undecided_by", uby, 0);
	rte_tel_data_add_dict_container(d, "verify_hist", hist, 0);
	rte_tel_data_add_dict_container(d, "workers", w, 0);
	return 0;
}

void
sp_auth_metrics(struct sp_auth *a, struct evbuffer *b)
{
	const struct counters *c = &a->c;
	unsigned int i;

	sp_api_prom_family(b, "sp_auth_credentials", "gauge", "client credentials held in memory");
	evbuffer_add_printf(b, "sp_auth_credentials %u\n",
			    __atomic_load_n(&a->n_creds, __ATOMIC_RELAXED));
	sp_api_prom_family(b, "sp_auth_punts_total", "counter",
			   "requests the workers sent to the control thread to verify");
	evbuffer_add_printf(b, "sp_auth_punts_total %" PRIu64 "\n", SP_CNT_GET(c->punts));
	sp_api_prom_family(
		b, "sp_auth_verified_total", "counter",
		"verifications by result (ok: authentic and allowed; refused: an S3 error "
		"sent to the VM; undecided: the service authenticates)");
	evbuffer_add_printf(b, "sp_auth_verified_total{result=\"ok\"} %" PRIu64 "\n",
			    SP_CNT_GET(c->ok));
	evbuffer_add_printf(b, "sp_auth_verified_total{result=\"refused\"} %" PRIu64 "\n",
			    SP_CNT_GET(c->refused));
	evbuffer_add_printf(b, "sp_auth_verified_total{result=\"undecided\"} %" PRIu64 "\n",
			    SP_CNT_GET(c->undecided));
	sp_api_prom_family(b, "sp_auth_refused_total", "counter", "refusals by reason");
	for (i = 1; i < SP_SIGV4_ERR_MAX; i++)
		evbuffer_add_printf(b, "sp_auth_refused_total{reason=\"%s\"} %" PRIu64 "\n",
				    sp_sigv4_error_name((int)i), SP_CNT_GET(c->refused_by[i]));
	evbuffer_add_printf(b, "sp_auth_refused_total{reason=\"access_denied\"} %" PRIu64 "\n",
			    SP_CNT_GET(c->access_denied));
	sp_api_prom_family(b, "sp_auth_undecided_total", "counter",
			   "undecided verifications by reason");
	for (i = 0; i < UND_MAX; i++)
		evbuffer_add_printf(b, "sp_auth_undecided_total{reason=\"%s\"} %" PRIu64 "\n",
				    undecided_names[i], SP_CNT_GET(c->undecided_by[i]));
	sp_api_prom_family(b, "sp_auth_verdicts_total", "counter",
			   "answers that let a worker install a verdict (auth = first)");
	evbuffer_add_printf(b, "sp_auth_verdicts_total %" PRIu64 "\n", SP_CNT_GET(c->verdicts));
	/* the time as the locator resolver's: sum, count and max, and the buckets as a counter
	 * family by upper bound (not cumulative) */
	sp_api_prom_family(b, "sp_auth_verify_seconds_total", "counter",
			   "time spent verifying in the control thread");
	evbuffer_add_printf(b, "sp_auth_verify_seconds_total %.9f\n",
			    (double)SP_CNT_GET(c->verify_sum_ns) / 1e9);
	sp_api_prom_family(b, "sp_auth_verifications_total", "counter", "verifications timed");
	evbuffer_add_printf(b, "sp_auth_verifications_total %" PRIu64 "\n",
			    SP_CNT_GET(c->verify_count));
	sp_api_prom_family(b, "sp_auth_verify_seconds_max", "gauge", "slowest verification");
	evbuffer_add_printf(b, "sp_auth_verify_seconds_max %.9f\n",
			    (double)SP_CNT_GET(c->verify_max_ns) / 1e9);
	sp_api_prom_family(
		b, "sp_auth_verify_time_total", "counter",
		"verifications by time: below_us is the bucket's upper bound in microseconds "
		"(each verification counted in one bucket)");
	for (i = 0; i < HIST_N; i++) {
		if (i < HIST_N - 1)
			evbuffer_add_printf(b,
					    "sp_auth_verify_time_total{below_us=\"%" PRIu64
					    "\"} %" PRIu64 "\n",
					    hist_bound_us(i), SP_CNT_GET(c->verify_hist[i]));
		else
			evbuffer_add_printf(
				b, "sp_auth_verify_time_total{below_us=\"+Inf\"} %" PRIu64 "\n",
				SP_CNT_GET(c->verify_hist[i]));
	}
}

/* ---- life cycle --------------------------------------------------------------------------- */

static struct sp_auth *
auth_new(void)
{
	struct sp_auth *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return NULL;
	RTE_BUILD_BUG_ON(offsetof(struct op, h) != 0); /* a reload's op is the store's calloc */
	sp_store_init(&a->st, &store_ops);
	a->md_ctx = EVP_MD_CTX_new();
	a->md = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (a->md_ctx == NULL || a->md == NULL) {
		EVP_MD_CTX_free(a->md_ctx);
		EVP_MD_free(a->md);
		free(a);
		return NULL;
	}
	return a;
}

static void
auth_free(struct sp_auth *a)
{
	table_free(&a->t);
	free(a->own_gen);
	EVP_MD_CTX_free(a->md_ctx);
	EVP_MD_free(a->md);
	OPENSSL_cleanse(a->creq, sizeof(a->creq));
	free(a);
}

int
sp_auth_create(struct sp_ctl *ctl, struct sp_auth **out)
{
	struct sp_auth *a = auth_new();
	int rc;

	*out = NULL;
	if (a == NULL)
		return -ENOMEM;
	a->ctl = ctl;
	a->dp = ctl->dp;
	a->verdict_ttl_s = (uint32_t)ctl->cfg->auth_verdict_ttl_s;
	a->data_max = (uint32_t)ctl->cfg->flow_buffer;
	if (a->dp != NULL && a->dp->auth_gen != NULL) {
		a->gen = a->dp->auth_gen;
	} else {
		a->own_gen = calloc(SP_AUTH_GEN_SLOTS, sizeof(*a->own_gen));
		a->gen = a->own_gen;
	}
	rc = a->gen != NULL ? sp_store_attach(&a->st, ctl->redis) : -ENOMEM;
	if (rc != 0) {
		auth_free(a);
		return rc;
	}
	if (a->dp != NULL) {
		a->dp->auth_handler_arg = a;
		a->dp->auth_handler = on_msg;
	}
	*out = a;
	return 0;
}

int
sp_auth_create_standalone(const char *service, const char *region, enum sp_auth_mode mode,
			  uint32_t verdict_ttl_s, struct sp_auth **out)
{
	struct sp_auth *a;

	*out = NULL;
	if (service == NULL || region == NULL || !sp_services_name_ok(service) ||
	    strlen(region) == 0 || strlen(region) > SP_SIGV4_REGION_MAX)
		return -EINVAL;
	a = auth_new();
	if (a == NULL)
		return -ENOMEM;
	a->own_gen = calloc(SP_AUTH_GEN_SLOTS, sizeof(*a->own_gen));
	if (a->own_gen == NULL) {
		auth_free(a);
		return -ENOMEM;
	}
	a->gen = a->own_gen;
	a->verdict_ttl_s = verdict_ttl_s;
	snprintf(a->alone.name, sizeof(a->alone.name), "%s", service);
	snprintf(a->alone.region, sizeof(a->alone.region), "%s", region);
	a->alone.auth = (uint8_t)mode;
	a->alone.direct = mode != SP_AUTH_MODE_SERVICE;
	a->st.loaded = true;
	*out = a;
	return 0;
}

int
sp_auth_cred_set_local(struct sp_auth *a, const char *service, const char *access_key,
		       const char *secret, size_t secret_len, const struct sp_policy *policy)
{
	size_t ak_len = access_key != NULL ? strlen(access_key) : 0;
	struct cred *c, *cur;
	struct timespec ts;

	if (service == NULL || !sp_services_name_ok(service) || !ak_ok(access_key, ak_len) ||
	    secret == NULL || !secret_ok(secret, secret_len))
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(c->service, sizeof(c->service), "%s", service);
	memcpy(c->ak, access_key, ak_len);
	c->ak_len = (uint8_t)ak_len;
	memcpy(c->secret, secret, secret_len);
	c->secret_len = (uint16_t)secret_len;
	if (policy != NULL) {
		c->policy = *policy;
	} else {
		c->policy.all_buckets = 1;
		c->policy.actions = SP_POLICY_ALL_ACTIONS;
	}
	c->created = c->updated = ts.tv_sec;
	cur = table_find(&a->t, service, access_key, ak_len);
	if (cur != NULL) {
		c->created = cur->created;
		table_remove(&a->t, cur);
		cred_free(cur);
	}
	if (table_add(&a->t, c) != 0) {
		cred_free(c);
		return -ENOMEM;
	}
	__atomic_store_n(&a->n_creds, a->t.n, __ATOMIC_RELAXED);
	bump(a, service, access_key, ak_len);
	return 0;
}

void
sp_auth_stop(struct sp_auth *a)
{
	if (a == NULL || a->st.stopping)
		return;
	sp_store_stop(&a->st);
	if (a->dp != NULL && a->dp->auth_handler == on_msg) {
		a->dp->auth_handler = NULL;
		a->dp->auth_handler_arg = NULL;
	}
	a->dp = NULL;
}

void
sp_auth_destroy(struct sp_auth *a)
{
	if (a == NULL)
		return;
	/* without sp_auth_stop (start-up failed) nothing was punted yet: the dataplane is left
	 * alone, it may be gone already */
	a->dp = NULL;
	/* the Redis client is gone (sp_ctl_destroy frees it first): nothing is in flight */
	sp_store_fini(&a->st);
	auth_free(a);
}
