/* Enhanced services: validation, the Redis copy (sp:services, sp:services:epoch), the /v1/services
 * API, and the table the workers read. */
#include "sp_services.h"
#include "sp_auth.h"
#include "sp_cache.h"
#include "sp_loc.h"
#include "sp_nodeauth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <rte_byteorder.h>
#include <rte_common.h>
#include <rte_telemetry.h>

#include "sp_api.h"
#include "sp_cache_ctl.h"
#include "sp_ctl.h"
#include "sp_log.h"
#include "sp_redis.h"
#include "sp_store.h"

#define NAME_MAX_LEN SP_SERVICES_NAME_MAX
#define TTL_MAX_S 86400
#define DEFAULT_REGION "us-east-1"
#define REDIS_HASH "sp:services"
#define REDIS_EPOCH "sp:services:epoch"

/* One service held by the control thread; its index in the array is its slot. */
struct svc {
	bool used;
	char name[NAME_MAX_LEN + 1];
	json_t *def; /* the normalised definition (no name/path/note/epoch) */
	bool ipv6;
	uint8_t addr[16];
	uint16_t port;
	uint64_t epoch;		     /* the epoch it was stored or loaded under */
	struct sp_svc_counters base; /* the slot's counters when this service took it */
};

enum op_kind {
	OP_PUT = 1, /* a reload's is 0 (h.reload says what it is) */
	OP_PATCH,
	OP_DELETE,
};

/* A queued change or reload (sp_store: one at a time, in arrival order). */
struct op {
	struct sp_store_op h; /* first */
	enum op_kind kind;
	char name[NAME_MAX_LEN + 1];
	json_t *body; /* the request's JSON (PUT, PATCH) */
	json_t *def;  /* the validated definition being stored */
	bool created; /* PUT of a new name */
	bool ipv6;    /* the new definition's key */
	uint8_t addr[16];
	uint16_t port;
};

struct sp_services {
	struct sp_ctl *ctl;
	pthread_mutex_t lock; /* the svc array and st.epoch against readers on other threads */
	struct sp_store st;   /* sp:services: its queue, st.epoch and st.loaded of what is loaded */
	struct svc svc[SP_SVC_MAX];
	/* what the last publish gave each slot: a change of the service or of its cache settings
	 * invalidates the slot's cache entries */
	struct {
		bool used;
		char name[NAME_MAX_LEN + 1];
		uint8_t cache;
		uint32_t ttl_s, stale_if_error_s;
	} pub[SP_SVC_MAX];
};

/* ---- validation ---------------------------------------------------------------------------- */

bool
sp_services_name_ok(const char *n)
{
	size_t i, len = strlen(n);

	if (len == 0 || len > NAME_MAX_LEN ||
	    !((n[0] >= 'a' && n[0] <= 'z') || (n[0] >= '0' && n[0] <= '9')))
		return false;
	for (i = 1; i < len; i++)
		if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') || n[i] == '-' ||
		      n[i] == '_'))
			return false;
	return true;
}

/* A numeric IPv4 or IPv6 address. */
static bool
parse_ip(const char *v, bool *ipv6, uint8_t addr[16])
{
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, v, addr) == 1) {
		*ipv6 = false;
		return true;
	}
	if (inet_pton(AF_INET6, v, addr) == 1) {
		*ipv6 = true;
		return true;
	}
	return false;
}

/* The auth modes by name ("auth"), in enum sp_auth_mode order. */
static const char *const auth_modes[] = {"service", "none", "first", "every-request"};

static int
auth_mode(const char *name)
{
	unsigned int i;

	for (i = 0; name != NULL && i < RTE_DIM(auth_modes); i++)
		if (strcmp(name, auth_modes[i]) == 0)
			return (int)i;
	return -1;
}

/* A SigV4 scope region: 1 to SP_SIGV4_REGION_MAX of a-z 0-9 - ("us-east-1"). */
static bool
region_ok(const char *r)
{
	size_t i, len = r != NULL ? strlen(r) : 0;

	if (len == 0 || len > SP_SIGV4_REGION_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '-'))
			return false;
	return true;
}

static json_t *
defaults(void)
{
	return json_pack("{s:i,s:s,s:[ss],s:{s:s,s:i},s:s,s:s}", "port", 80, "kind", "http-object",
			 "enhanced", "GET", "HEAD", "cache", "policy", "none", "ttl_s", 0, "auth",
			 "service", "region", DEFAULT_REGION);
}

static int
check_cache(json_t *v, json_t *cur, struct sp_api_verr *e)
{
	const char *k;
	json_t *x;

	if (!json_is_object(v))
		return sp_api_bad(e, "cache",
				  "must be an object {\"policy\": ..., \"ttl_s\": ..., "
				  "\"stale_if_error_s\": ...}");
	json_object_foreach(v, k, x)
	{
		if (strcmp(k, "policy") == 0) {
			const char *p = json_string_value(x);

			if (p == NULL || (strcmp(p, "none") != 0 && strcmp(p, "ttl") != 0 &&
					  strcmp(p, "verify") != 0))
				return sp_api_bad(e, "cache.policy",
						  "must be \"none\", \"ttl\" or \"verify\"");
		} else if (strcmp(k, "ttl_s") == 0) {
			if (!json_is_integer(x) || json_integer_value(x) < 0 ||
			    json_integer_value(x) > TTL_MAX_S)
				return sp_api_bad(e, "cache.ttl_s",
						  "must be an integer from 0 to %d", TTL_MAX_S);
		} else if (strcmp(k, "stale_if_error_s") == 0) {
			if (!json_is_integer(x) || json_integer_value(x) < 0 ||
			    json_integer_value(x) > TTL_MAX_S)
				return sp_api_bad(e, "cache.stale_if_error_s",
						  "must be an integer from 0 to %d", TTL_MAX_S);
		} else {
			char f[48];

			snprintf(f, sizeof(f), "cache.%.40s", k);
			return sp_api_bad(
				e, f,
				"unknown field (cache has policy, ttl_s and stale_if_error_s)");
		}
		json_object_set(cur, k, x);
	}
	return 0;
}

/*
 * The definition that results from applying body to base (PATCH) or to the defaults (PUT,
 * base NULL), checked field by field. On success *out is a new reference and the VIP and port
 * are in ipv6/addr/port.
 */
static int
validate(const json_t *body, const json_t *base, json_t **out, bool *ipv6, uint8_t addr[16],
	 uint16_t *port, struct sp_api_verr *e)
{
	json_t *d, *v;
	const char *k;
	int rc = 0;

	if (!json_is_object(body))
		return sp_api_bad(e, "body", "must be a JSON object");
	d = base != NULL ? json_deep_copy(base) : defaults();
	if (d == NULL)
		return sp_api_bad(e, "body", "out of memory");
	json_object_foreach((json_t *)body, k, v)
	{
		if (strcmp(k, "vip") == 0) {
			if (!json_is_string(v) || !parse_ip(json_string_value(v), ipv6, addr))
				rc = sp_api_bad(e, "vip", "must be a numeric IPv4 or IPv6 address");
		} else if (strcmp(k, "port") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) < 1 ||
			    json_integer_value(v) > 65535)
				rc = sp_api_bad(e, "port", "must be an integer from 1 to 65535");
		} else if (strcmp(k, "kind") == 0) {
			if (!json_is_string(v) || strcmp(json_string_value(v), "http-object") != 0)
				rc = sp_api_bad(e, "kind", "must be \"http-object\"");
		} else if (strcmp(k, "enhanced") == 0) {
			static const char *const ops[] = {"GET", "HEAD", "PUT", "DELETE"};
			unsigned int seen = 0, j;
			size_t i;
			json_t *x;

			if (!json_is_array(v)) {
				rc = sp_api_bad(e, "enhanced",
						"must be a list of GET, HEAD, PUT, DELETE");
				break;
			}
			json_array_foreach(v, i, x)
			{
				for (j = 0; j < RTE_DIM(ops); j++)
					if (json_is_string(x) &&
					    strcmp(json_string_value(x), ops[j]) == 0)
						break;
				if (j == RTE_DIM(ops)) {
					rc = sp_api_bad(
						e, "enhanced",
						"item %zu: must be GET, HEAD, PUT or DELETE", i);
					break;
				}
				if (seen & (1u << j)) {
					rc = sp_api_bad(e, "enhanced", "%s is listed twice",
							ops[j]);
					break;
				}
				seen |= 1u << j;
			}
		} else if (strcmp(k, "storage_manager") == 0) {
			const char *why = "must be a string";

			if (!json_is_string(v) ||
			    sp_conf_check_addrport(json_string_value(v), &why) != 0)
				rc = sp_api_bad(e, "storage_manager", "%s", why);
		} else if (strcmp(k, "node_key_id") == 0) {
			if (!json_is_string(v) || !sp_nodeauth_key_id_ok(json_string_value(v)))
				rc = sp_api_bad(e, "node_key_id",
						"must be 1 to %d characters of A-Z a-z 0-9 _ . -",
						SP_NODEAUTH_KEY_ID_MAX);
		} else if (strcmp(k, "cache") == 0) {
			rc = check_cache(v, json_object_get(d, "cache"), e);
			continue; /* merged field by field */
		} else if (strcmp(k, "auth") == 0) {
			if (auth_mode(json_string_value(v)) < 0)
				rc = sp_api_bad(e, "auth",
						"must be \"service\", \"none\", \"first\" or "
						"\"every-request\"");
		} else if (strcmp(k, "region") == 0) {
			if (!region_ok(json_string_value(v)))
				rc = sp_api_bad(e, "region",
						"must be 1 to %d characters of a-z 0-9 -",
						SP_SIGV4_REGION_MAX);
		} else if (strcmp(k, "name") == 0 || strcmp(k, "path") == 0 ||
			   strcmp(k, "note") == 0 || strcmp(k, "epoch") == 0) {
			continue; /* output-only: a GET's answer can be sent back as it is */
		} else {
			rc = sp_api_bad(e, k, "unknown field");
		}
		if (rc != 0)
			break;
		json_object_set(d, k, v);
	}
	if (rc == 0) {
		static const char *const required[] = {"vip", "storage_manager", "node_key_id"};
		unsigned int j;

		for (j = 0; j < RTE_DIM(required) && rc == 0; j++)
			if (json_object_get(d, required[j]) == NULL)
				rc = sp_api_bad(e, required[j], "is required");
	}
	if (rc == 0) {
		parse_ip(json_string_value(json_object_get(d, "vip")), ipv6, addr);
		*port = (uint16_t)json_integer_value(json_object_get(d, "port"));
		*out = d;
		return 0;
	}
	json_decref(d);
	return rc;
}

/* ---- state --------------------------------------------------------------------------------- */

static enum sp_auth_mode
def_auth(const json_t *def)
{
	int m = auth_mode(json_string_value(json_object_get(def, "auth")));

	return m < 0 ? SP_AUTH_MODE_SERVICE : (enum sp_auth_mode)m;
}

/* On the direct path: something is enhanced, and the service is not the one authenticating. */
static bool
direct(const json_t *def)
{
	return def_auth(def) != SP_AUTH_MODE_SERVICE &&
	       json_array_size(json_object_get(def, "enhanced")) > 0;
}

/* Control thread: what the locator resolver needs of the service in slot (sp_services.h). */
int
sp_services_backend(struct sp_services *s, uint16_t slot, struct sp_services_backend *out)
{
	const struct svc *v;

	if (slot >= SP_SVC_MAX || !s->svc[slot].used)
		return -ENOENT;
	v = &s->svc[slot];
	memset(out, 0, sizeof(*out));
	snprintf(out->name, sizeof(out->name), "%s", v->name);
	snprintf(out->storage_manager, sizeof(out->storage_manager), "%s",
		 json_string_value(json_object_get(v->def, "storage_manager")));
	snprintf(out->node_key_id, sizeof(out->node_key_id), "%s",
		 json_string_value(json_object_get(v->def, "node_key_id")));
	snprintf(out->region, sizeof(out->region), "%s",
		 json_string_value(json_object_get(v->def, "region")));
	out->auth = (uint8_t)def_auth(v->def);
	out->direct = direct(v->def);
	out->epoch = v->epoch;
	return 0;
}

int
sp_services_slot(struct sp_services *s, const char *name)
{
	unsigned int i;

	for (i = 0; i < SP_SVC_MAX; i++)
		if (s->svc[i].used && strcmp(s->svc[i].name, name) == 0)
			return (int)i;
	return -ENOENT;
}

bool
sp_services_loaded(const struct sp_services *s)
{
	return s->st.loaded;
}

/* The API's view of a service: the definition plus name, path, note and epoch. */
static json_t *
service_json(const struct svc *v)
{
	json_t *o = json_deep_copy(v->def);
	const char *note;

	if (json_array_size(json_object_get(v->def, "enhanced")) == 0)
		note = "no operation is enhanced: every request takes the ordinary path";
	else
		switch (def_auth(v->def)) {
		case SP_AUTH_MODE_NONE:
			note = "auth = none: enhanced requests may go directly to the storage "
			       "nodes, and nobody authenticates them";
			break;
		case SP_AUTH_MODE_FIRST:
			note = "auth = first: shortpath verifies a client's signature with its "
			       "credentials here (/v1/services/NAME/credentials) once per VM "
			       "port and access key, then trusts that verdict for [auth] "
			       "verdict_ttl_s or until the credential changes; the policy is "
			       "checked on every request; enhanced requests may go directly to "
			       "the storage nodes";
			break;
		case SP_AUTH_MODE_EVERY:
			note = "auth = every-request: shortpath verifies every request's "
			       "signature and policy with its credentials here "
			       "(/v1/services/NAME/credentials); enhanced requests may go "
			       "directly to the storage nodes";
			break;
		default:
			note = "auth = service: the service authenticates requests, so every "
			       "request takes the ordinary path (auth first or every-request "
			       "authenticates them here and lets enhanced requests go direct)";
			break;
		}
	json_object_set_new(o, "name", json_string(v->name));
	json_object_set_new(o, "path", json_string(direct(v->def) ? "direct" : "ordinary"));
	json_object_set_new(o, "note", json_string(note));
	json_object_set_new(o, "epoch", json_integer((json_int_t)v->epoch));
	return o;
}

static struct svc *
find(struct sp_services *s, const char *name)
{
	unsigned int i;

	for (i = 0; i < SP_SVC_MAX; i++)
		if (s->svc[i].used && strcmp(s->svc[i].name, name) == 0)
			return &s->svc[i];
	return NULL;
}

/* Another service (not the one named) with this VIP and port. */
static struct svc *
clash(struct sp_services *s, const char *name, bool ipv6, const uint8_t *addr, uint16_t port)
{
	unsigned int i;

	for (i = 0; i < SP_SVC_MAX; i++) {
		struct svc *v = &s->svc[i];

		if (v->used && strcmp(v->name, name) != 0 && v->ipv6 == ipv6 && v->port == port &&
		    memcmp(v->addr, addr, 16) == 0)
			return v;
	}
	return NULL;
}

/* What the workers do with the service's connections: the direct path and its methods. */
static void
profile(const struct svc *v, struct sp_svc_profile *pr)
{
	static const char *const names[SP_LOC_METHODS] = {"GET", "HEAD", "PUT", "DELETE"};
	const json_t *en = json_object_get(v->def, "enhanced");
	size_t i, m;

	pr->flags = direct(v->def) && !v->ipv6 ? SP_SVC_F_DIRECT : 0;
	pr->auth = (uint8_t)def_auth(v->def);
	snprintf(pr->region, sizeof(pr->region), "%s",
		 json_string_value(json_object_get(v->def, "region")));
	{
		const json_t *c = json_object_get(v->def, "cache");
		const char *pol = json_string_value(json_object_get(c, "policy"));

		pr->cache = pol == NULL			 ? SP_CACHE_POLICY_NONE
			    : strcmp(pol, "ttl") == 0	 ? SP_CACHE_POLICY_TTL
			    : strcmp(pol, "verify") == 0 ? SP_CACHE_POLICY_VERIFY
							 : SP_CACHE_POLICY_NONE;
		/* absent (definitions stored before it existed): 0 */
		pr->cache_ttl_s = (uint32_t)json_integer_value(json_object_get(c, "ttl_s"));
		pr->stale_if_error_s =
			(uint32_t)json_integer_value(json_object_get(c, "stale_if_error_s"));
	}
	pr->methods = 0;
	for (i = 0; i < json_array_size(en); i++)
		for (m = 0; m < SP_LOC_METHODS; m++)
			if (strcmp(json_string_value(json_array_get(en, i)), names[m]) == 0)
				pr->methods |= (uint8_t)(1u << m);
}

/* Rebuild and publish the workers' table from the array (control thread). */
static void
publish(struct sp_services *s)
{
	struct sp_svc_table *t = sp_svc_table_new(s->st.epoch);
	unsigned int i;

	if (t == NULL) {
		SP_LOG(ERR, "services: out of memory for the workers' table (kept the old one)");
		return;
	}
	for (i = 0; i < SP_SVC_MAX; i++) {
		const struct svc *v = &s->svc[i];

		if (v->used) {
			struct sp_svc_profile pr = {0};

			profile(v, &pr);
			sp_svc_table_add(t, v->ipv6, v->addr, rte_cpu_to_be_16(v->port),
					 (uint16_t)i, &pr);
		}
	}
	for (i = 0; i < SP_SVC_MAX && s->ctl->dp->n_workers > 1; i++)
		if (t->profile[i].flags & SP_SVC_F_DIRECT) {
			SP_LOG(WARNING,
			       "services: a direct service with %u workers: a flow's uplink "
			       "segments must reach the worker that owns it (one uplink queue, or "
			       "RSS "
			       "that keeps a connection on one queue); there is no software "
			       "redirect "
			       "yet",
			       s->ctl->dp->n_workers);
			break;
		}
	sp_svc_publish(s->ctl->dp, t);
	/* a service gone, another one in its slot, or its cache settings changed: its entries
	 * are invalid from now on */
	for (i = 0; i < SP_SVC_MAX; i++) {
		const struct svc *v = &s->svc[i];
		const struct sp_svc_profile *pr = &t->profile[i];
		bool changed;

		if (v->used)
			changed = !s->pub[i].used || strcmp(s->pub[i].name, v->name) != 0 ||
				  s->pub[i].cache != pr->cache ||
				  s->pub[i].ttl_s != pr->cache_ttl_s ||
				  s->pub[i].stale_if_error_s != pr->stale_if_error_s;
		else
			changed = s->pub[i].used;
		if (!changed)
			continue;
		sp_cache_ctl_svc_changed(s->ctl->cache, (uint16_t)i);
		s->pub[i].used = v->used;
		snprintf(s->pub[i].name, sizeof(s->pub[i].name), "%s", v->name);
		s->pub[i].cache = v->used ? pr->cache : 0;
		s->pub[i].ttl_s = v->used ? pr->cache_ttl_s : 0;
		s->pub[i].stale_if_error_s = v->used ? pr->stale_if_error_s : 0;
	}
}

/* Put (or replace) a service in the array; called with the lock held. */
static int
install(struct sp_services *s, const char *name, json_t *def, bool ipv6, const uint8_t *addr,
	uint16_t port, uint64_t epoch)
{
	struct svc *v = find(s, name);
	unsigned int i;

	if (v == NULL) {
		for (i = 0; i < SP_SVC_MAX && s->svc[i].used; i++)
			;
		if (i == SP_SVC_MAX)
			return -ENOSPC;
		v = &s->svc[i];
		memset(v, 0, sizeof(*v));
		snprintf(v->name, sizeof(v->name), "%s", name);
		sp_svc_counters_sum(s->ctl->dp, (uint16_t)i, &v->base);
		v->used = true;
	} else {
		json_decref(v->def);
	}
	v->def = json_incref(def);
	v->ipv6 = ipv6;
	memcpy(v->addr, addr, 16);
	v->port = port;
	v->epoch = epoch;
	return 0;
}

static void
uninstall(struct svc *v)
{
	json_decref(v->def);
	memset(v, 0, sizeof(*v));
}

/* ---- the store's ops ----------------------------------------------------------------------- */

static struct op *
op_of(struct sp_store_op *h)
{
	return container_of(h, struct op, h);
}

static struct sp_services *
services_of(struct sp_store_op *h)
{
	return container_of(h->st, struct sp_services, st);
}

static void
op_free(struct sp_store_op *h)
{
	struct op *o = op_of(h);

	json_decref(o->body);
	json_decref(o->def);
	free(o);
}

/* ---- reload from Redis --------------------------------------------------------------------- */

/* EXEC of MULTI / GET epoch / HGETALL: replace the whole array with what Redis holds. */
static void
on_reload(void *arg, const redisReply *reply)
{
	struct sp_store_op *h = arg;
	struct sp_services *s = services_of(h);
	const redisReply *all;
	bool keep[SP_SVC_MAX] = {false};
	unsigned int i, n = 0, skipped = 0;
	uint64_t epoch;

	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
	    reply->element[1]->type != REDIS_REPLY_ARRAY) {
		if (reply != NULL)
			SP_LOG(ERR, "services: unexpected answer to the reload from Redis");
		/* not loaded: the next connect or epoch probe tries again */
		sp_store_op_done(h);
		return;
	}
	epoch = sp_store_reply_u64(reply->element[0]);
	all = reply->element[1];
	pthread_mutex_lock(&s->lock);
	for (i = 0; i + 1 < all->elements; i += 2) {
		const char *name = all->element[i]->str;
		json_error_t jerr;
		json_t *body, *def = NULL;
		struct sp_api_verr e = {"", ""};
		uint8_t addr[16];
		bool ipv6 = false;
		uint16_t port = 0;
		struct svc *v;
		int rc = -EINVAL;

		if (!sp_services_name_ok(name)) {
			SP_LOG(WARNING,
			       "services: %s: bad service name \"%.64s\" in Redis: skipped",
			       REDIS_HASH, name);
			skipped++;
			continue;
		}
		body = json_loads(all->element[i + 1]->str, 0, &jerr);
		if (body == NULL)
			snprintf(e.msg, sizeof(e.msg), "not JSON (%.120s)", jerr.text);
		else
			rc = validate(body, NULL, &def, &ipv6, addr, &port, &e);
		json_decref(body);
		v = rc == 0 ? clash(s, name, ipv6, addr, port) : NULL;
		if (v != NULL && keep[v - s->svc]) {
			snprintf(e.field, sizeof(e.field), "vip");
			snprintf(e.msg, sizeof(e.msg), "same VIP and port as service %s", v->name);
			rc = -EEXIST;
		} else if (v != NULL) {
			uninstall(v); /* held by a service of the old state that is going away */
		}
		if (rc == 0)
			rc = install(s, name, def, ipv6, addr, port, epoch);
		json_decref(def);
		if (rc != 0) {
			SP_LOG(WARNING,
			       "services: service %s in Redis is invalid (%s%s%s): skipped", name,
			       e.field, e.field[0] ? ": " : "", e.msg[0] ? e.msg : "no room");
			skipped++;
			continue;
		}
		keep[find(s, name) - s->svc] = true;
		n++;
	}
	for (i = 0; i < SP_SVC_MAX; i++)
		if (s->svc[i].used && !keep[i])
			uninstall(&s->svc[i]);
	if (!s->st.loaded || epoch != s->st.epoch)
		SP_LOG(NOTICE, "services: %u loaded from Redis (epoch %" PRIu64 ")%s", n, epoch,
		       skipped ? ", some skipped (see above)" : "");
	s->st.epoch = epoch;
	s->st.loaded = true;
	publish(s);
	pthread_mutex_unlock(&s->lock);
	sp_store_op_done(h);
}

/* The MULTI / GET epoch / HGETALL / EXEC of a reload. */
static int
reload(struct sp_store_op *h)
{
	struct sp_redis *r = h->st->redis;
	int rc;

	rc = sp_store_multi(h->st);
	if (rc == 0)
		rc = sp_redis_command(r, sp_store_ignore_reply, NULL, "GET " REDIS_EPOCH);
	if (rc == 0)
		rc = sp_redis_command(r, sp_store_ignore_reply, NULL, "HGETALL " REDIS_HASH);
	if (rc == 0)
		rc = sp_redis_command(r, on_reload, h, "EXEC");
	return rc;
}

/* ---- writes -------------------------------------------------------------------------------- */

/* Validate a PUT/PATCH/DELETE against the current state; 0 when it may be written. */
static int
prepare(struct sp_store_op *h)
{
	struct sp_services *s = services_of(h);
	struct op *o = op_of(h);
	struct svc *cur = find(s, o->name), *other;
	struct sp_api_verr e = {"", ""};
	char msg[200];

	if (o->kind != OP_PUT && cur == NULL) {
		snprintf(msg, sizeof(msg), "no service named %s", o->name);
		sp_store_reply_error(h, 404, "not_found", NULL, msg);
		return -ENOENT;
	}
	if (o->kind == OP_DELETE)
		return 0;
	if (validate(o->body, o->kind == OP_PATCH ? cur->def : NULL, &o->def, &o->ipv6, o->addr,
		     &o->port, &e) != 0) {
		snprintf(msg, sizeof(msg), "%s %s", e.field, e.msg);
		sp_store_reply_error(h, 400, "invalid", e.field, msg);
		return -EINVAL;
	}
	other = clash(s, o->name, o->ipv6, o->addr, o->port);
	if (other != NULL) {
		snprintf(msg, sizeof(msg), "service %s already has this VIP and port", other->name);
		sp_store_reply_error(h, 409, "conflict", "vip", msg);
		return -EEXIST;
	}
	o->created = cur == NULL;
	return 0;
}

/* MULTI / HSET or HDEL / INCR epoch / EXEC. */
static int
send_write(struct sp_store_op *h)
{
	struct sp_redis *r = h->st->redis;
	struct op *o = op_of(h);
	char *text;
	int rc;

	text = o->def ? json_dumps(o->def, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	rc = o->def != NULL && text == NULL ? -ENOMEM : 0;
	if (rc == 0)
		rc = sp_store_multi(h->st);
	if (rc == 0 && o->kind == OP_DELETE)
		rc = sp_redis_command(r, sp_store_ignore_reply, NULL, "HDEL " REDIS_HASH " %s",
				      o->name);
	else if (rc == 0)
		rc = sp_redis_command(r, sp_store_ignore_reply, NULL, "HSET " REDIS_HASH " %s %s",
				      o->name, text);
	if (rc == 0)
		rc = sp_store_exec(h, 1);
	free(text);
	return rc;
}

/* Redis stored the change under epoch: apply it here and answer. */
static int
written(struct sp_store_op *h, uint64_t epoch)
{
	struct sp_services *s = services_of(h);
	struct op *o = op_of(h);
	struct svc *v;

	pthread_mutex_lock(&s->lock);
	s->st.epoch = epoch;
	if (o->kind == OP_DELETE) {
		v = find(s, o->name);
		if (v != NULL)
			uninstall(v);
	} else if (install(s, o->name, o->def, o->ipv6, o->addr, o->port, epoch) != 0) {
		pthread_mutex_unlock(&s->lock);
		sp_store_reply_error(h, 503, "no_room", NULL,
				     "stored in Redis, but no slot is free here");
		return -ENOSPC;
	}
	publish(s);
	v = find(s, o->name);
	pthread_mutex_unlock(&s->lock);
	SP_LOG(NOTICE, "services: %s %s (epoch %" PRIu64 ")", o->name,
	       o->kind == OP_DELETE ? "deleted"
	       : o->created	    ? "created"
				    : "updated",
	       epoch);
	if (h->req != NULL) {
		if (o->kind == OP_DELETE)
			evhttp_send_reply(h->req, 204, "No Content", NULL);
		else
			sp_api_send_json(h->req, o->created ? 201 : 200, service_json(v));
		h->req = NULL;
	}
	return 0;
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

/* ---- HTTP ---------------------------------------------------------------------------------- */

static void
handle_list(struct sp_services *s, struct evhttp_request *req)
{
	json_t *list = json_array();
	const char *order[SP_SVC_MAX];
	unsigned int i, j, n = 0;

	for (i = 0; i < SP_SVC_MAX; i++) {
		if (!s->svc[i].used)
			continue;
		for (j = n; j > 0 && strcmp(order[j - 1], s->svc[i].name) > 0; j--)
			order[j] = order[j - 1];
		order[j] = s->svc[i].name;
		n++;
	}
	for (i = 0; i < n; i++)
		json_array_append_new(list, service_json(find(s, order[i])));
	sp_api_send_json(
		req, 200,
		json_pack("{s:I,s:o}", "epoch", (json_int_t)s->st.epoch, "services", list));
}

void
sp_services_http(struct sp_services *s, struct evhttp_request *req, const char *path)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	const char *name;
	struct op *o;
	struct evbuffer *in;
	json_error_t jerr;
	char msg[200];

	if (strcmp(path, "/v1/services") == 0) {
		if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
					  "GET, HEAD");
			sp_api_send_error(req, 405, "method_not_allowed", NULL,
					  "/v1/services takes GET (PUT, PATCH and DELETE go to "
					  "/v1/services/NAME)");
			return;
		}
		handle_list(s, req);
		return;
	}
	name = path + strlen("/v1/services/");
	if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD && m != EVHTTP_REQ_PUT &&
	    m != EVHTTP_REQ_PATCH && m != EVHTTP_REQ_DELETE) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
				  "GET, HEAD, PUT, PATCH, DELETE");
		sp_api_send_error(req, 405, "method_not_allowed", NULL,
				  "/v1/services/NAME takes GET, PUT, PATCH or DELETE");
		return;
	}
	if (!sp_services_name_ok(name)) {
		snprintf(msg, sizeof(msg),
			 "name \"%.40s\" must be 1 to %d of a-z 0-9 - _, starting with a letter or "
			 "digit",
			 name, NAME_MAX_LEN);
		sp_api_send_error(req, 400, "invalid", "name", "%s", msg);
		return;
	}
	if (m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD) {
		const struct svc *v = find(s, name);

		if (v == NULL)
			sp_api_send_error(req, 404, "not_found", NULL, "no service named %s", name);
		else
			sp_api_send_json(req, 200, service_json(v));
		return;
	}
	o = calloc(1, sizeof(*o));
	if (o == NULL) {
		sp_api_send_error(req, 503, "no_memory", NULL, "out of memory");
		return;
	}
	o->kind = m == EVHTTP_REQ_PUT ? OP_PUT : m == EVHTTP_REQ_PATCH ? OP_PATCH : OP_DELETE;
	snprintf(o->name, sizeof(o->name), "%s", name);
	if (o->kind != OP_DELETE) {
		in = evhttp_request_get_input_buffer(req);
		o->body = json_loadb((const char *)evbuffer_pullup(in, -1), evbuffer_get_length(in),
				     0, &jerr);
		if (o->body == NULL || !json_is_object(o->body)) {
			snprintf(msg, sizeof(msg), "body must be a JSON object%s%s",
				 o->body ? "" : ": ", o->body ? "" : jerr.text);
			sp_api_send_error(req, 400, "invalid", "body", "%s", msg);
			op_free(&o->h);
			return;
		}
	}
	sp_store_submit(&s->st, &o->h, req);
}

/* ---- observability ------------------------------------------------------------------------- */

static void
counters(struct sp_services *s, unsigned int slot, struct sp_svc_counters *c)
{
	const struct svc *v = &s->svc[slot];

	sp_svc_counters_sum(s->ctl->dp, (uint16_t)slot, c);
	c->vm_packets -= v->base.vm_packets;
	c->vm_bytes -= v->base.vm_bytes;
	c->vm_syns -= v->base.vm_syns;
}

int
sp_services_telemetry(struct sp_services *s, struct rte_tel_data *d)
{
	struct rte_tel_data *all = rte_tel_data_alloc();
	unsigned int i;

	if (all == NULL)
		return -ENOMEM;
	rte_tel_data_start_dict(d);
	rte_tel_data_start_dict(all);
	pthread_mutex_lock(&s->lock);
	rte_tel_data_add_dict_u64(d, "epoch", s->st.epoch);
	for (i = 0; i < SP_SVC_MAX; i++) {
		const struct svc *v = &s->svc[i];
		struct rte_tel_data *one;
		struct sp_svc_counters c;
		char vip[INET6_ADDRSTRLEN];

		if (!v->used || (one = rte_tel_data_alloc()) == NULL)
			continue;
		counters(s, i, &c);
		inet_ntop(v->ipv6 ? AF_INET6 : AF_INET, v->addr, vip, sizeof(vip));
		rte_tel_data_start_dict(one);
		rte_tel_data_add_dict_string(one, "vip", vip);
		rte_tel_data_add_dict_u64(one, "port", v->port);
		rte_tel_data_add_dict_string(one, "path", direct(v->def) ? "direct" : "ordinary");
		rte_tel_data_add_dict_string(one, "auth", auth_modes[def_auth(v->def)]);
		rte_tel_data_add_dict_string(one, "region",
					     json_string_value(json_object_get(v->def, "region")));
		rte_tel_data_add_dict_u64(one, "slot", i);
		rte_tel_data_add_dict_u64(one, "vm_packets", c.vm_packets);
		rte_tel_data_add_dict_u64(one, "vm_bytes", c.vm_bytes);
		rte_tel_data_add_dict_u64(one, "vm_syns", c.vm_syns);
		rte_tel_data_add_dict_container(all, v->name, one, 0);
	}
	pthread_mutex_unlock(&s->lock);
	rte_tel_data_add_dict_container(d, "services", all, 0);
	return 0;
}

void
sp_services_metrics(struct sp_services *s, struct evbuffer *b)
{
	static const char *const names[] = {"vm_packets", "vm_bytes", "vm_syns"};
	static const char *const help[] = {
		"TCP segments VMs sent to the service's VIP and port",
		"bytes of those segments (frames)",
		"connection attempts (SYN without ACK) among them",
	};
	unsigned int i, k;

	evbuffer_add_printf(b, "# HELP sp_services Enhanced services defined\n"
			       "# TYPE sp_services gauge\n");
	for (i = 0, k = 0; i < SP_SVC_MAX; i++)
		k += s->svc[i].used;
	evbuffer_add_printf(b, "sp_services %u\n", k);
	if (k == 0)
		return; /* no family without samples */
	for (k = 0; k < RTE_DIM(names); k++) {
		evbuffer_add_printf(
			b, "# HELP sp_service_%s_total %s\n# TYPE sp_service_%s_total counter\n",
			names[k], help[k], names[k]);
		for (i = 0; i < SP_SVC_MAX; i++) {
			struct sp_svc_counters c;
			uint64_t v;

			if (!s->svc[i].used)
				continue;
			counters(s, i, &c);
			v = k == 0 ? c.vm_packets : k == 1 ? c.vm_bytes : c.vm_syns;
			evbuffer_add_printf(b, "sp_service_%s_total{service=\"%s\"} %" PRIu64 "\n",
					    names[k], s->svc[i].name, v);
		}
	}
}

/* ---- life cycle ---------------------------------------------------------------------------- */

int
sp_services_create(struct sp_ctl *ctl, struct sp_services **out)
{
	struct sp_services *s = calloc(1, sizeof(*s));
	int rc;

	if (s == NULL)
		return -ENOMEM;
	RTE_BUILD_BUG_ON(offsetof(struct op, h) != 0); /* a reload's op is the store's calloc */
	s->ctl = ctl;
	pthread_mutex_init(&s->lock, NULL);
	sp_store_init(&s->st, &store_ops);
	rc = sp_store_attach(&s->st, ctl->redis);
	if (rc != 0) {
		pthread_mutex_destroy(&s->lock);
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

void
sp_services_destroy(struct sp_services *s)
{
	unsigned int i;

	if (s == NULL)
		return;
	/* the Redis client is gone (sp_ctl_destroy frees it first): nothing is in flight */
	sp_store_fini(&s->st);
	pthread_mutex_lock(&s->lock);
	for (i = 0; i < SP_SVC_MAX; i++)
		if (s->svc[i].used)
			uninstall(&s->svc[i]);
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
