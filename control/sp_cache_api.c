/* The object cache's management API (/v1/cache...), its counters as JSON, the /shortpath/cache
 * telemetry dict and the shortpath_cache_* lines of /metrics (docs/cache.md). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <rte_cycles.h>
#include <rte_telemetry.h>

#include "sp_api.h"
#include "sp_cache_int.h"
#include "sp_ctl.h"
#include "sp_services.h"

#define API_PREFIX "/v1/cache"
#define LIST_DEFAULT 1000
#define LIST_MAX 100000
#define WORKER_EVENTS_MAX 64

/* ---- counters ------------------------------------------------------------------------------- */

static const char *
admission_name(const struct sp_cache_ctl *cc)
{
	return !cc->enabled ? "none" : cc->admission == 1 ? "second-hit" : "all";
}

/* The gauges: name, value (one table for JSON, telemetry and /metrics). */
struct gauge {
	const char *name;
	uint64_t v;
	const char *help;
};

static unsigned int
gauges(const struct sp_cache_ctl *cc, struct gauge *g)
{
	unsigned int n = 0;

#define G(nm, val, h) g[n++] = (struct gauge){nm, (val), h}
	G("entries", SP_CNT_GET(cc->n_live), "entries in the index");
	G("bytes", SP_CNT_GET(cc->live_bytes), "bytes of the entries in the index");
	G("budget", cc->budget, "the byte budget ([cache] size_kb)");
	G("capacity", cc->entries, "entries the index holds at most");
	G("max_object", cc->max_object, "largest object cached, bytes");
	G("graveyard", SP_CNT_GET(cc->n_grave), "removed entries not freed yet");
	G("graveyard_bytes", SP_CNT_GET(cc->grave_bytes), "their bytes (count in the budget)");
	G("waiting", SP_CNT_GET(cc->n_wait), "entries waiting for the graveyard to free room");
	G("waiting_bytes", SP_CNT_GET(cc->wait_bytes), "their bytes");
	G("revalidating", SP_CNT_GET(cc->n_jobs),
	  "revalidations and write-through confirmations in flight");
#undef G
	return n;
}

json_t *
sp_cache_stats_json(struct sp_cache_ctl *cc)
{
	json_t *o = json_object(), *rby = json_object(), *rv = json_object(), *wt = json_object();
	json_t *w = json_object();
	struct gauge g[16];
	const char *names[WORKER_EVENTS_MAX];
	uint64_t vals[WORKER_EVENTS_MAX];
	unsigned int i, n;

	json_object_set_new(o, "enabled", json_boolean(cc->enabled));
	json_object_set_new(o, "admission", json_string(admission_name(cc)));
	n = gauges(cc, g);
	for (i = 0; i < n; i++)
		json_object_set_new(o, g[i].name, json_integer((json_int_t)g[i].v));
	for (i = 0; i < CC_MAX; i++)
		json_object_set_new(o, sp_cache_event_names[i],
				    json_integer((json_int_t)SP_CNT_GET(cc->ev[i])));
	for (i = 0; i < CCR_MAX; i++)
		json_object_set_new(rby, sp_cache_reject_names[i],
				    json_integer((json_int_t)SP_CNT_GET(cc->rej[i])));
	for (i = 0; i < CCV_MAX; i++)
		json_object_set_new(rv, sp_cache_reval_names[i],
				    json_integer((json_int_t)SP_CNT_GET(cc->rv[i])));
	for (i = 0; i < CCW_MAX; i++)
		json_object_set_new(wt, sp_cache_wt_names[i],
				    json_integer((json_int_t)SP_CNT_GET(cc->wt[i])));
	n = sp_cache_worker_sums(cc, names, vals, WORKER_EVENTS_MAX);
	for (i = 0; i < n; i++)
		json_object_set_new(w, names[i], json_integer((json_int_t)vals[i]));
	json_object_set_new(o, "fills_rejected_by", rby);
	json_object_set_new(o, "revalidations", rv);
	json_object_set_new(o, "write_through", wt);
	json_object_set_new(o, "workers", w);
	return o;
}

int
sp_cache_telemetry(struct sp_cache_ctl *cc, struct rte_tel_data *d)
{
	struct rte_tel_data *rby = rte_tel_data_alloc(), *rv = rte_tel_data_alloc();
	struct rte_tel_data *wt = rte_tel_data_alloc(), *w = rte_tel_data_alloc();
	struct gauge g[16];
	const char *names[WORKER_EVENTS_MAX];
	uint64_t vals[WORKER_EVENTS_MAX];
	unsigned int i, n;

	if (rby == NULL || rv == NULL || wt == NULL || w == NULL) {
		rte_tel_data_free(rby);
		rte_tel_data_free(rv);
		rte_tel_data_free(wt);
		rte_tel_data_free(w);
		return -ENOMEM;
	}
	rte_tel_data_start_dict(d);
	rte_tel_data_start_dict(rby);
	rte_tel_data_start_dict(rv);
	rte_tel_data_start_dict(wt);
	rte_tel_data_start_dict(w);
	rte_tel_data_add_dict_u64(d, "enabled", cc->enabled);
	rte_tel_data_add_dict_string(d, "admission", admission_name(cc));
	n = gauges(cc, g);
	for (i = 0; i < n; i++)
		rte_tel_data_add_dict_u64(d, g[i].name, g[i].v);
	for (i = 0; i < CC_MAX; i++)
		rte_tel_data_add_dict_u64(d, sp_cache_event_names[i], SP_CNT_GET(cc->ev[i]));
	for (i = 0; i < CCR_MAX; i++)
		rte_tel_data_add_dict_u64(rby, sp_cache_reject_names[i], SP_CNT_GET(cc->rej[i]));
	for (i = 0; i < CCV_MAX; i++)
		rte_tel_data_add_dict_u64(rv, sp_cache_reval_names[i], SP_CNT_GET(cc->rv[i]));
	for (i = 0; i < CCW_MAX; i++)
		rte_tel_data_add_dict_u64(wt, sp_cache_wt_names[i], SP_CNT_GET(cc->wt[i]));
	n = sp_cache_worker_sums(cc, names, vals, WORKER_EVENTS_MAX);
	for (i = 0; i < n; i++)
		rte_tel_data_add_dict_u64(w, names[i], vals[i]);
	rte_tel_data_add_dict_container(d, "fills_rejected_by", rby, 0);
	rte_tel_data_add_dict_container(d, "revalidations", rv, 0);
	rte_tel_data_add_dict_container(d, "write_through", wt, 0);
	rte_tel_data_add_dict_container(d, "workers", w, 0);
	return 0;
}

/* One counter family shortpath_cache_<family>_total{label="names[i]"} vals[i], i < n. */
static void
labelled(struct evbuffer *b, const char *family, const char *help, const char *label,
	 const char *const *names, const uint64_t *vals, unsigned int n)
{
	char name[96];
	unsigned int i;

	snprintf(name, sizeof(name), "shortpath_cache_%s_total", family);
	sp_api_prom_family(b, name, "counter", help);
	for (i = 0; i < n; i++)
		evbuffer_add_printf(b, "%s{%s=\"%s\"} %" PRIu64 "\n", name, label, names[i],
				    SP_CNT_GET(vals[i]));
}

void
sp_cache_metrics(struct sp_cache_ctl *cc, struct evbuffer *b)
{
	struct gauge g[16];
	const char *names[WORKER_EVENTS_MAX];
	uint64_t vals[WORKER_EVENTS_MAX];
	char name[128];
	unsigned int i, n;

	n = gauges(cc, g);
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "shortpath_cache_%s", g[i].name);
		sp_api_prom_family(b, name, "gauge", g[i].help);
		evbuffer_add_printf(b, "%s %" PRIu64 "\n", name, g[i].v);
	}
	for (i = 0; i < CC_MAX; i++) {
		snprintf(name, sizeof(name), "shortpath_cache_%s_total", sp_cache_event_names[i]);
		sp_api_prom_family(b, name, "counter", sp_cache_event_help[i]);
		evbuffer_add_printf(b, "%s %" PRIu64 "\n", name, SP_CNT_GET(cc->ev[i]));
	}
	labelled(b, "fills_rejected_by", "fills refused, by reason", "reason",
		 sp_cache_reject_names, cc->rej, CCR_MAX);
	labelled(b, "revalidations", "revalidations of entries (policy verify), by outcome",
		 "outcome", sp_cache_reval_names, cc->rv, CCV_MAX);
	labelled(b, "write_through", "write-through fills, by outcome", "outcome",
		 sp_cache_wt_names, cc->wt, CCW_MAX);
	n = sp_cache_worker_sums(cc, names, vals, WORKER_EVENTS_MAX);
	if (n > 0)
		labelled(
			b, "worker_events",
			"the workers' cache events summed (hits, misses, fills, bytes served, ...)",
			"event", names, vals, n);
}

/* ---- entries -------------------------------------------------------------------------------- */

/* Milliseconds from now_tsc until tsc (negative: past). */
static json_int_t
ms_until(const struct sp_cache_ctl *cc, uint64_t tsc, uint64_t now_tsc)
{
	if (tsc >= now_tsc)
		return (json_int_t)((tsc - now_tsc) * 1000 / cc->hz);
	return -(json_int_t)((now_tsc - tsc) * 1000 / cc->hz);
}

json_t *
sp_cache_entry_json(struct sp_cache_ctl *cc, const struct sp_cache_entry *e)
{
	const struct sp_cache *c = cc->c;
	uint64_t now = rte_rdtsc();
	uint64_t fresh = __atomic_load_n(&e->fresh_until_tsc, __ATOMIC_RELAXED);
	uint64_t stale = __atomic_load_n(&e->stale_until_tsc, __ATOMIC_RELAXED);
	int64_t stored = __atomic_load_n(&e->stored_s, __ATOMIC_RELAXED);
	json_t *o = json_object();

	json_object_set_new(o, "name", json_stringn(e->name, e->name_len));
	json_object_set_new(o, "size", json_integer((json_int_t)e->size));
	json_object_set_new(o, "bytes", json_integer((json_int_t)e->alloc_bytes));
	json_object_set_new(o, "etag", json_stringn(e->etag, e->etag_len));
	json_object_set_new(o, "last_modified", json_stringn(e->last_modified, e->lm_len));
	json_object_set_new(o, "server", json_stringn(e->server, e->server_len));
	json_object_set_new(o, "stored", json_integer((json_int_t)stored));
	json_object_set_new(o, "age_s", json_integer((json_int_t)(time(NULL) - stored)));
	json_object_set_new(o, "fresh", json_boolean(now < fresh));
	json_object_set_new(o, "fresh_ms", json_integer(ms_until(cc, fresh, now)));
	json_object_set_new(o, "stale_if_error_ms", json_integer(ms_until(cc, stale, now)));
	json_object_set_new(o, "valid", json_boolean(c != NULL && sp_cache_entry_valid(c, e)));
	json_object_set_new(o, "version", json_integer((json_int_t)e->version));
	json_object_set_new(o, "hits",
			    json_integer((json_int_t)__atomic_load_n(&e->hits, __ATOMIC_RELAXED)));
	json_object_set_new(o, "referenced",
			    json_boolean(__atomic_load_n(&e->ref, __ATOMIC_RELAXED) != 0));
	json_object_set_new(
		o, "sending",
		json_integer((json_int_t)__atomic_load_n(&e->refcnt, __ATOMIC_RELAXED)));
	json_object_set_new(o, "revalidating",
			    json_boolean(__atomic_load_n(&e->reval, __ATOMIC_RELAXED) != 0));
	json_object_set_new(o, "write_through", json_boolean(e->write_through != 0));
	json_object_set_new(o, "head", json_stringn(e->tmpl, e->tmpl_len));
	return o;
}

/* ---- the API -------------------------------------------------------------------------------- */

static int
cmp_entries(const void *a, const void *b)
{
	const struct sp_cache_entry *x = *(const struct sp_cache_entry *const *)a;
	const struct sp_cache_entry *y = *(const struct sp_cache_entry *const *)b;
	size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
	int c = memcmp(x->name, y->name, n);

	return c != 0 ? c : (int)x->name_len - (int)y->name_len;
}

/* GET /v1/cache/SERVICE[?prefix=P&limit=N] */
static void
handle_list(struct sp_cache_ctl *cc, struct evhttp_request *req, const char *service, int slot)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *q = uri != NULL ? evhttp_uri_get_query(uri) : NULL;
	struct evkeyvalq params;
	struct evkeyval *kv;
	const char *prefix = "";
	long limit = LIST_DEFAULT;
	const struct sp_cache_entry **all = NULL;
	size_t plen, n = 0, i;
	json_t *list;
	uint32_t pos;

	TAILQ_INIT(&params);
	if (q != NULL && evhttp_parse_query_str(q, &params) != 0) {
		sp_api_send_error(req, 400, "invalid", "query", "the query string does not parse");
		return;
	}
	TAILQ_FOREACH (kv, &params, next) {
		if (strcmp(kv->key, "prefix") == 0) {
			if (strlen(kv->value) > SP_LOC_NAME_MAX) {
				sp_api_send_error(req, 400, "invalid", "prefix",
						  "prefix must be at most %d bytes",
						  SP_LOC_NAME_MAX);
				goto out;
			}
			prefix = kv->value;
		} else if (strcmp(kv->key, "limit") == 0) {
			char *end = NULL;

			errno = 0;
			limit = strtol(kv->value, &end, 10);
			if (kv->value[0] == '\0' || end == NULL || *end != '\0' || errno != 0 ||
			    limit < 1 || limit > LIST_MAX) {
				sp_api_send_error(req, 400, "invalid", "limit",
						  "limit must be an integer from 1 to %d",
						  LIST_MAX);
				goto out;
			}
		} else {
			sp_api_send_error(req, 400, "invalid", kv->key,
					  "unknown parameter %.60s (prefix and limit are known)",
					  kv->key);
			goto out;
		}
	}
	plen = strlen(prefix);
	if (cc->c != NULL && cc->n_live > 0) {
		all = malloc(sizeof(*all) * cc->n_live);
		if (all == NULL) {
			sp_api_send_error(req, 503, "no_memory", NULL, "out of memory");
			goto out;
		}
		for (pos = 0; pos < cc->cap && n < cc->n_live; pos++) {
			const struct sp_cache_entry *e = cc->at[pos];

			if (e != NULL && e->slot == slot && e->name_len >= plen &&
			    memcmp(e->name, prefix, plen) == 0)
				all[n++] = e;
		}
		qsort(all, n, sizeof(*all), cmp_entries);
	}
	list = json_array();
	for (i = 0; i < n && i < (size_t)limit; i++)
		json_array_append_new(list, sp_cache_entry_json(cc, all[i]));
	free(all);
	sp_api_send_json(req, 200,
			 json_pack("{s:s,s:i,s:s,s:I,s:I,s:b,s:o}", "service", service, "slot",
				   slot, "prefix", prefix, "count", (json_int_t)n, "limit",
				   (json_int_t)limit, "truncated", n > (size_t)limit, "entries",
				   list));
out:
	evhttp_clear_headers(&params);
}

static void
not_allowed(struct evhttp_request *req, const char *what)
{
	evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD, DELETE");
	sp_api_send_error(req, 405, "method_not_allowed", NULL, "%s takes GET or DELETE", what);
}

void
sp_cache_http(struct sp_cache_ctl *cc, struct evhttp_request *req, const char *path)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	bool get = m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD, del = m == EVHTTP_REQ_DELETE;
	char service[SP_SERVICES_NAME_MAX + 2];
	const char *rest, *slash;
	size_t sl;
	int slot;

	if (strcmp(path, API_PREFIX) == 0 || strcmp(path, API_PREFIX "/") == 0) {
		if (!get) {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
					  "GET, HEAD");
			sp_api_send_error(req, 405, "method_not_allowed", NULL,
					  "/v1/cache takes GET (purges go to /v1/cache/SERVICE)");
			return;
		}
		sp_api_send_json(req, 200, sp_cache_stats_json(cc));
		return;
	}
	rest = path + strlen(API_PREFIX "/");
	slash = strchr(rest, '/');
	sl = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
	if (sl == 0 || sl > SP_SERVICES_NAME_MAX) {
		sp_api_send_error(req, 400, "invalid", "service",
				  "service name must be 1 to %d of a-z 0-9 - _",
				  SP_SERVICES_NAME_MAX);
		return;
	}
	memcpy(service, rest, sl);
	service[sl] = '\0';
	if (!sp_services_name_ok(service)) {
		sp_api_send_error(req, 400, "invalid", "service",
				  "service name \"%.40s\" must be 1 to %d of a-z 0-9 - _, starting "
				  "with a letter or digit",
				  service, SP_SERVICES_NAME_MAX);
		return;
	}
	rest += sl;
	if (*rest != '\0' && strcmp(rest, "/") != 0 && strncmp(rest, "/objects/", 9) != 0) {
		sp_api_send_error(req, 404, "not_found", NULL,
				  "no such endpoint: %.120s (/v1/cache/SERVICE or "
				  "/v1/cache/SERVICE/objects/BUCKET/KEY)",
				  path);
		return;
	}
	if (!get && !del) {
		not_allowed(req,
			    *rest == '\0' ? "/v1/cache/SERVICE" : "/v1/cache/SERVICE/objects/NAME");
		return;
	}
	slot = sp_services_slot(cc->ctl->services, service);
	if (slot < 0) {
		sp_api_send_error(req, 404, "not_found", NULL, "no service named %s", service);
		return;
	}
	if (*rest == '\0' || strcmp(rest, "/") == 0) {
		if (get) {
			handle_list(cc, req, service, slot);
		} else {
			unsigned int n = sp_cache_ctl_purge_svc(cc, (uint16_t)slot);

			sp_api_send_json(
				req, 200,
				json_pack("{s:s,s:i}", "service", service, "purged", (int)n));
		}
		return;
	}
	{
		/* NAME: "/bucket/key" percent-decoded, as the workers key objects */
		const char *raw = rest + 8; /* keeps the '/' before the bucket */
		size_t rlen = strlen(raw);
		char name[SP_LOC_NAME_MAX + 1]; /* NUL-ended: the messages print it */
		size_t len = rlen <= UINT32_MAX
				     ? sp_cache_name(raw, (uint32_t)rlen, name, SP_LOC_NAME_MAX)
				     : 0;
		const struct sp_cache_entry *e;

		name[len] = '\0';
		if (len < 2 || raw[0] != '/') {
			sp_api_send_error(req, 400, "invalid", "name",
					  "the object's name must be /BUCKET/KEY, at most %d bytes",
					  SP_LOC_NAME_MAX);
			return;
		}
		if (del) {
			unsigned int n = sp_cache_ctl_purge(cc, (uint16_t)slot, name, len);

			sp_api_send_json(req, 200,
					 json_pack("{s:s,s:s%,s:i}", "service", service, "name",
						   name, len, "purged", (int)n));
			return;
		}
		e = sp_cache_ctl_find(cc, (uint16_t)slot, name, len);
		if (e == NULL) {
			sp_api_send_error(req, 404, "not_found", NULL,
					  "%.600s of service %s is not cached", name, service);
			return;
		}
		{
			json_t *o = sp_cache_entry_json(cc, e);

			json_object_set_new(o, "service", json_string(service));
			sp_api_send_json(req, 200, o);
		}
	}
}
