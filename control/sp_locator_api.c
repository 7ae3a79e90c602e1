/* Locators' /v1/locators API, /shortpath/locators telemetry, /metrics and /v1/stats parts. */
#include "sp_locator.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <rte_common.h>
#include <rte_telemetry.h>

#include "sp_api.h"
#include "sp_ctl.h"
#include "sp_loc.h"
#include "sp_locator_int.h"
#include "sp_nodeauth.h"
#include "sp_redis.h"
#include "sp_services.h"

/* ---- counters ------------------------------------------------------------------------------ */

static const char *const event_names[] = {
#define LOC_EVENT_NAME(e, s) s,
	LOC_EVENTS(LOC_EVENT_NAME)
#undef LOC_EVENT_NAME
};

/* DELETE /v1/locators/SERVICE: SCAN + UNLINK. */
struct dropjob {
	LIST_ENTRY(dropjob) next;
	struct sp_locator *loc;
	struct evhttp_request *req;
	char service[64];
	long long deleted;
	int pending;  /* Redis callbacks that hold it */
	bool scanned; /* the last SCAN answered: the rest are UNLINKs */
	bool finished;
};

/* GET ...?verify=1: a HEAD with the credential on the first node. */
struct vjob {
	struct sp_locator *loc;
	struct evhttp_request *req;
	json_t *doc;
	char node[32];
};

/* ---- answers ------------------------------------------------------------------------------- */

static const char *
status_name(uint8_t s)
{
	static const char *const names[] = {"found", "not_found", "failed", "bad_name"};

	return s < RTE_DIM(names) ? names[s] : "failed";
}

static const char *
reason_name(uint8_t why)
{
	return why < EV_MAX && strncmp(event_names[why], "failed_", 7) == 0 ? event_names[why] + 7
									    : "unknown";
}

/* The API's view of w added to doc (never a credential). */
static void
where_json(const struct sp_locator *loc, const struct where *w, const struct lookup *lk,
	   json_t *doc)
{
	json_t *nodes = json_array(), *names = json_array();
	char ip[INET_ADDRSTRLEN], buf[40];
	unsigned int i;

	json_object_set_new(doc, "status", json_string(status_name(w->status)));
	if (w->status == SP_LOC_FAILED)
		json_object_set_new(doc, "reason", json_string(reason_name(w->why)));
	if (lk != NULL) {
		json_object_set_new(doc, "bucket", json_stringn(ON_BUCKET(&lk->on), lk->on.blen));
		json_object_set_new(doc, "key", json_stringn(ON_KEY(&lk->on), lk->on.klen));
		json_object_set_new(doc, "key_id", json_string(lk->be.node_key_id));
	}
	if (w->status != SP_LOC_FOUND) {
		json_decref(nodes);
		json_decref(names);
		return;
	}
	for (i = 0; i < w->n_nodes; i++) {
		inet_ntop(AF_INET, &w->node_ip[i], ip, sizeof(ip));
		snprintf(buf, sizeof(buf), "%s:%u", ip, ntohs(w->node_port[i]));
		json_array_append_new(nodes, json_string(buf));
		json_array_append_new(names, json_string(w->node_name[i]));
	}
	json_object_set_new(doc, "nodes", nodes);
	json_object_set_new(doc, "node_names", names);
	json_object_set_new(doc, "path", json_stringn(w->path, w->path_len));
	json_object_set_new(doc, "size", json_integer((json_int_t)w->size));
	json_object_set_new(doc, "ttl_s",
			    json_real((double)sp_locator_remaining_ms(loc, w) / 1000.0));
	json_object_set_new(doc, "source", json_string(w->from_redis ? "redis" : "manager"));
	json_object_set_new(doc, "resolved_at", json_real((double)w->resolved_ms / 1000.0));
	json_object_set_new(doc, "cred_expires",
			    json_integer(wall_ms() / 1000 + SP_LOCATOR_CRED_AHEAD_S));
}

static void
on_verify(void *arg, int code, enum loc_event why, struct evbuffer *body)
{
	struct vjob *v = arg;

	RTE_SET_USED(body);
	if (code == 0 && why == EV_FAILED_STOPPING) {
		sp_api_send_error(v->req, 503, "shutting_down", NULL, "shortpathd is stopping");
		json_decref(v->doc);
	} else {
		json_t *o = json_pack("{s:s,s:s,s:i}", "node", v->node, "method", "HEAD", "status",
				      code);

		json_object_set_new(o, "accepted", json_boolean(code != 0 && code != 403));
		if (code == 0)
			json_object_set_new(o, "error", json_string(reason_name(why)));
		json_object_set_new(v->doc, "verify", o);
		sp_api_send_json(v->req, 200, v->doc);
	}
	free(v);
}

/* ?verify=1: HEAD the path on the first node with the credential; answer when it is done. */
static bool
verify_start(struct sp_locator *loc, struct waiter *wt, const struct lookup *lk)
{
	struct sp_loc_msg *t = &loc->tmpl;
	char ip[INET_ADDRSTRLEN];
	struct vjob *v = calloc(1, sizeof(*v));

	if (v == NULL)
		return false;
	sp_locator_fill_msg(loc, &lk->w, lk->be.node_key_id, lk->nk, t);
	if (t->status != SP_LOC_FOUND) {
		free(v);
		return false;
	}
	inet_ntop(AF_INET, &lk->w.node_ip[0], ip, sizeof(ip));
	snprintf(v->node, sizeof(v->node), "%s:%u", ip, ntohs(lk->w.node_port[0]));
	v->loc = loc;
	v->req = wt->req;
	v->doc = wt->doc;
	if (sp_locator_call_start(loc, v->node, EVHTTP_REQ_HEAD, lk->w.path, NULL,
				  t->cred[SP_LOC_HEAD], false, on_verify, v, NULL) != 0) {
		free(v);
		return false;
	}
	return true;
}

void
sp_locator_api_answer(struct sp_locator *loc, struct waiter *wt, const struct lookup *lk,
		      const struct where *w)
{
	if (w->status == SP_LOC_FAILED && w->why == EV_FAILED_STOPPING) {
		sp_api_send_error(wt->req, 503, "shutting_down", NULL, "shortpathd is stopping");
		json_decref(wt->doc);
		return;
	}
	where_json(loc, w, lk, wt->doc);
	if (wt->verify && lk != NULL && w->status == SP_LOC_FOUND && verify_start(loc, wt, lk))
		return; /* answered by on_verify */
	sp_api_send_json(wt->req, 200, wt->doc);
}
/* ---- API ----------------------------------------------------------------------------------- */

static int
slot_of(struct sp_locator *loc, const char *service, struct sp_services_backend *be)
{
	unsigned int i;

	for (i = 0; i < SP_SVC_MAX; i++)
		if (sp_services_backend(loc->ctl->services, (uint16_t)i, be) == 0 &&
		    strcmp(be->name, service) == 0)
			return (int)i;
	return -ENOENT;
}

static bool
service_name_ok(const char *n)
{
	size_t i, len = strlen(n);

	if (len == 0 || len > 32)
		return false;
	for (i = 0; i < len; i++)
		if (!((n[i] >= 'a' && n[i] <= 'z') || (n[i] >= '0' && n[i] <= '9') ||
		      (i > 0 && (n[i] == '-' || n[i] == '_'))))
			return false;
	return true;
}

/* GET /v1/locators/SERVICE?key=/bucket/key[&op=read|write][&verify=1] */
static void
api_resolve(struct sp_locator *loc, struct evhttp_request *req, const char *service, int slot)
{
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *qs = uri ? evhttp_uri_get_query(uri) : NULL;
	const char *name = NULL, *op_s = "read";
	struct evkeyvalq q;
	struct evkeyval *kv;
	struct waiter *wt;
	bool verify = false;
	uint8_t op;

	TAILQ_INIT(&q);
	if (qs != NULL && evhttp_parse_query_str(qs, &q) != 0) {
		sp_api_send_error(req, 400, "invalid", "query",
				  "the query string cannot be parsed");
		return;
	}
	TAILQ_FOREACH (kv, &q, next) {
		if (strcmp(kv->key, "key") == 0) {
			name = kv->value;
		} else if (strcmp(kv->key, "op") == 0) {
			op_s = kv->value;
		} else if (strcmp(kv->key, "verify") == 0) {
			if (strcmp(kv->value, "1") != 0 && strcmp(kv->value, "true") != 0 &&
			    strcmp(kv->value, "0") != 0 && strcmp(kv->value, "false") != 0) {
				sp_api_send_error(req, 400, "invalid", "verify",
						  "verify must be 1, true, 0 or false");
				goto out;
			}
			verify = kv->value[0] == '1' || kv->value[0] == 't';
		} else {
			sp_api_send_error(req, 400, "invalid", kv->key,
					  "unknown parameter %.40s (key, op, verify)", kv->key);
			goto out;
		}
	}
	if (name == NULL || name[0] == '\0') {
		sp_api_send_error(req, 400, "invalid", "key",
				  "key=/bucket/key is required (the object's path as a client "
				  "sends it, URL-encoded once more in this query)");
		goto out;
	}
	if (strcmp(op_s, "read") != 0 && strcmp(op_s, "write") != 0) {
		sp_api_send_error(req, 400, "invalid", "op", "op must be read or write");
		goto out;
	}
	op = op_s[0] == 'w' ? SP_LOC_OP_WRITE : SP_LOC_OP_READ;
	wt = calloc(1, sizeof(*wt));
	if (wt == NULL) {
		sp_api_send_error(req, 503, "no_memory", NULL, "out of memory");
		goto out;
	}
	wt->kind = W_API;
	wt->req = req;
	wt->verify = verify;
	wt->doc = json_pack("{s:s,s:s,s:s}", "service", service, "name", name, "op", op_s);
	count(loc, EV_REQ_API);
	sp_locator_resolve(loc, (uint16_t)slot, op, name, strlen(name), false, wt);
out:
	evhttp_clear_headers(&q);
}

static void
drop_free(struct dropjob *d)
{
	LIST_REMOVE(d, next);
	free(d);
}

/* Answered: freed when no callback holds it any more. */
static void
drop_done(struct dropjob *d)
{
	d->finished = true;
	if (d->pending == 0)
		drop_free(d);
}

static int drop_scan(struct dropjob *d, const char *cursor);

static void
drop_answer(struct dropjob *d)
{
	sp_api_send_json(
		d->req, 200,
		json_pack("{s:s,s:I}", "service", d->service, "deleted", (json_int_t)d->deleted));
	drop_done(d);
}

static void
on_unlinked(void *arg, const redisReply *reply)
{
	struct dropjob *d = arg;

	d->pending--;
	if (reply != NULL && reply->type == REDIS_REPLY_INTEGER)
		d->deleted += reply->integer;
	if (d->pending > 0)
		return;
	if (d->finished)
		drop_free(d);
	else if (d->scanned)
		drop_answer(d); /* the last SCAN's UNLINKs are all answered */
}

static void
on_scan(void *arg, const redisReply *reply)
{
	struct dropjob *d = arg;
	const redisReply *keys;
	size_t i;

	d->pending--;
	if (d->finished) {
		drop_done(d);
		return;
	}
	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
	    reply->element[0]->type != REDIS_REPLY_STRING ||
	    reply->element[1]->type != REDIS_REPLY_ARRAY) {
		sp_api_send_error(d->req, 503, "redis_unavailable", NULL,
				  "Redis did not answer: %lld locators were dropped", d->deleted);
		drop_done(d);
		return;
	}
	keys = reply->element[1];
	for (i = 0; i < keys->elements; i++)
		if (keys->element[i]->type == REDIS_REPLY_STRING &&
		    sp_redis_command(d->loc->ctl->redis, on_unlinked, d, "UNLINK %b",
				     keys->element[i]->str, keys->element[i]->len) == 0)
			d->pending++;
	if (strcmp(reply->element[0]->str, "0") == 0) {
		d->scanned = true;
		if (d->pending == 0)
			drop_answer(d);
		return;
	}
	if (drop_scan(d, reply->element[0]->str) != 0) {
		sp_api_send_error(d->req, 503, "redis_unavailable", NULL,
				  "Redis went away: %lld locators were dropped", d->deleted);
		drop_done(d);
	}
}

static int
drop_scan(struct dropjob *d, const char *cursor)
{
	char pattern[96];

	int rc;

	snprintf(pattern, sizeof(pattern), "sp:loc:{%s}:*", d->service);
	rc = sp_redis_command(d->loc->ctl->redis, on_scan, d, "SCAN %s MATCH %s COUNT 1000", cursor,
			      pattern);
	if (rc == 0)
		d->pending++;
	return rc;
}

/* DELETE /v1/locators/SERVICE: drop its locators from Redis (not from the workers). */
static void
api_drop(struct sp_locator *loc, struct evhttp_request *req, const char *service)
{
	struct dropjob *d = calloc(1, sizeof(*d));

	if (d == NULL) {
		sp_api_send_error(req, 503, "no_memory", NULL, "out of memory");
		return;
	}
	d->loc = loc;
	d->req = req;
	snprintf(d->service, sizeof(d->service), "%s", service);
	LIST_INSERT_HEAD(&loc->drops, d, next);
	if (drop_scan(d, "0") != 0) {
		sp_api_send_error(req, 503, "redis_unavailable", NULL,
				  "Redis is unavailable: nothing was dropped");
		drop_done(d);
	}
}

/* POST /v1/locators/SERVICE/prefetch {"bucket": B, "prefix": P}: prefetch a listing's keys. */
static void
api_prefetch(struct sp_locator *loc, struct evhttp_request *req, int slot,
	     const struct sp_services_backend *be)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	json_t *body =
		json_loadb((const char *)evbuffer_pullup(in, -1), evbuffer_get_length(in), 0, NULL);
	const char *bucket = json_string_value(json_object_get(body, "bucket"));
	const json_t *prefix = json_object_get(body, "prefix"), *v;
	const struct sp_nodeauth_key *nk = sp_nodeauth_find(loc->keys, be->node_key_id);
	struct oname on;
	char *q = NULL, *enc;
	const char *k;

	json_object_foreach(body, k, v)
	{
		if (strcmp(k, "bucket") != 0 && strcmp(k, "prefix") != 0) {
			sp_api_send_error(req, 400, "invalid", k, "unknown field (bucket, prefix)");
			goto out;
		}
	}
	if (!json_is_object(body) || bucket == NULL ||
	    sp_locator_make_oname(bucket, strlen(bucket), "-", 1, &on) != 0 ||
	    strchr(bucket, '/') != NULL) {
		sp_api_send_error(req, 400, "invalid", "bucket",
				  "body must be {\"bucket\": NAME, \"prefix\": TEXT (optional)}");
		goto out;
	}
	if (prefix != NULL && !json_is_string(prefix)) {
		sp_api_send_error(req, 400, "invalid", "prefix", "prefix must be a string");
		goto out;
	}
	if (nk == NULL) {
		sp_api_send_error(req, 409, "no_key", NULL,
				  "no node key for key id %s ([keys] node_keys)", be->node_key_id);
		goto out;
	}
	if (loc->cfg->loc_prefetch_listing == 0) {
		sp_api_send_error(req, 409, "disabled", NULL,
				  "[locators] prefetch_listing = 0: listings are not prefetched");
		goto out;
	}
	enc = prefix ? evhttp_uriencode(json_string_value(prefix), json_string_length(prefix), 0)
		     : NULL;
	if (asprintf(&q, "prefix=%s", enc ? enc : "") < 0)
		q = NULL;
	free(enc);
	sp_locator_listing_start(loc, (uint16_t)slot, be, nk, &on, q ? q : "", q ? strlen(q) : 0,
				 loc->cfg->loc_prefetch_listing, req);
	free(q);
out:
	json_decref(body);
}

static void
api_counters(struct sp_locator *loc, struct evhttp_request *req)
{
	sp_api_send_json(req, 200, sp_locator_stats_json(loc));
}

void
sp_locator_http(struct sp_locator *loc, struct evhttp_request *req, const char *path)
{
	enum evhttp_cmd_type m = evhttp_request_get_command(req);
	struct sp_services_backend be;
	char service[40];
	const char *rest, *slash;
	bool prefetch;
	int slot;

	if (strcmp(path, "/v1/locators") == 0) {
		if (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD) {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
					  "GET, HEAD");
			sp_api_send_error(req, 405, "method_not_allowed", NULL,
					  "/v1/locators takes GET (the counters)");
			return;
		}
		api_counters(loc, req);
		return;
	}
	rest = path + strlen("/v1/locators/");
	slash = strchr(rest, '/');
	prefetch = slash != NULL && strcmp(slash, "/prefetch") == 0;
	if ((slash != NULL && !prefetch) ||
	    (size_t)((slash ? slash : rest + strlen(rest)) - rest) >= sizeof(service)) {
		sp_api_send_error(req, 404, "not_found", NULL, "no such endpoint: %.120s", path);
		return;
	}
	snprintf(service, sizeof(service), "%.*s",
		 (int)((slash ? slash : rest + strlen(rest)) - rest), rest);
	if (!service_name_ok(service)) {
		sp_api_send_error(req, 400, "invalid", "name",
				  "service name \"%.40s\" must be 1 to 32 of a-z 0-9 - _, starting "
				  "with a letter or digit",
				  service);
		return;
	}
	if (prefetch ? m != EVHTTP_REQ_POST
		     : (m != EVHTTP_REQ_GET && m != EVHTTP_REQ_HEAD && m != EVHTTP_REQ_DELETE)) {
		evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
				  prefetch ? "POST" : "GET, HEAD, DELETE");
		sp_api_send_error(req, 405, "method_not_allowed", NULL,
				  prefetch ? "/v1/locators/SERVICE/prefetch takes POST"
					   : "/v1/locators/SERVICE takes GET or DELETE");
		return;
	}
	slot = slot_of(loc, service, &be);
	if (slot < 0) {
		sp_api_send_error(req, 404, "not_found", NULL, "no service named %s", service);
		return;
	}
	if (loc->stopping) {
		sp_api_send_error(req, 503, "shutting_down", NULL, "shortpathd is stopping");
		return;
	}
	if (prefetch)
		api_prefetch(loc, req, slot, &be);
	else if (m == EVHTTP_REQ_DELETE)
		api_drop(loc, req, service);
	else
		api_resolve(loc, req, service, slot);
}

/* ---- observability ------------------------------------------------------------------------- */

json_t *
sp_locator_stats_json(struct sp_locator *loc)
{
	json_t *o = json_object(), *ev = json_object();
	unsigned int i;

	for (i = 0; i < EV_MAX; i++)
		json_object_set_new(
			ev, event_names[i],
			json_integer((json_int_t)__atomic_load_n(&loc->ev[i], __ATOMIC_RELAXED)));
	json_object_set_new(o, "events", ev);
	json_object_set_new(
		o, "manager_latency_us",
		json_pack("{s:I,s:I,s:I}", "sum",
			  (json_int_t)__atomic_load_n(&loc->lat_sum_us, __ATOMIC_RELAXED), "count",
			  (json_int_t)__atomic_load_n(&loc->lat_count, __ATOMIC_RELAXED), "max",
			  (json_int_t)__atomic_load_n(&loc->lat_max_us, __ATOMIC_RELAXED)));
	json_object_set_new(o, "inflight", json_integer(loc->inflight));
	json_object_set_new(o, "lookups", json_integer(loc->lookups));
	json_object_set_new(o, "prefetch_jobs", json_integer(loc->pjobs_n));
	json_object_set_new(o, "node_keys", json_integer(sp_nodeauth_count(loc->keys)));
	return o;
}

int
sp_locator_telemetry(struct sp_locator *loc, struct rte_tel_data *d)
{
	unsigned int i;

	rte_tel_data_start_dict(d);
	for (i = 0; i < EV_MAX; i++)
		rte_tel_data_add_dict_u64(d, event_names[i],
					  __atomic_load_n(&loc->ev[i], __ATOMIC_RELAXED));
	rte_tel_data_add_dict_u64(d, "manager_latency_us_sum",
				  __atomic_load_n(&loc->lat_sum_us, __ATOMIC_RELAXED));
	rte_tel_data_add_dict_u64(d, "manager_latency_us_count",
				  __atomic_load_n(&loc->lat_count, __ATOMIC_RELAXED));
	rte_tel_data_add_dict_u64(d, "manager_latency_us_max",
				  __atomic_load_n(&loc->lat_max_us, __ATOMIC_RELAXED));
	rte_tel_data_add_dict_u64(d, "inflight", __atomic_load_n(&loc->inflight, __ATOMIC_RELAXED));
	rte_tel_data_add_dict_u64(d, "lookups", __atomic_load_n(&loc->lookups, __ATOMIC_RELAXED));
	rte_tel_data_add_dict_u64(d, "prefetch_jobs",
				  __atomic_load_n(&loc->pjobs_n, __ATOMIC_RELAXED));
	rte_tel_data_add_dict_u64(d, "node_keys", sp_nodeauth_count(loc->keys));
	return 0;
}

void
sp_locator_metrics(struct sp_locator *loc, struct evbuffer *b)
{
	unsigned int i;

	evbuffer_add_printf(b, "# HELP sp_locator_events_total Locator resolver events, by event\n"
			       "# TYPE sp_locator_events_total counter\n");
	for (i = 0; i < EV_MAX; i++)
		evbuffer_add_printf(b, "sp_locator_events_total{event=\"%s\"} %" PRIu64 "\n",
				    event_names[i], loc->ev[i]);
	evbuffer_add_printf(
		b,
		"# HELP sp_locator_manager_seconds_total Time spent waiting for storage "
		"manager answers\n"
		"# TYPE sp_locator_manager_seconds_total counter\n"
		"sp_locator_manager_seconds_total %.6f\n"
		"# HELP sp_locator_manager_answers_total Storage manager answers timed\n"
		"# TYPE sp_locator_manager_answers_total counter\n"
		"sp_locator_manager_answers_total %" PRIu64 "\n"
		"# HELP sp_locator_manager_seconds_max Slowest storage manager answer\n"
		"# TYPE sp_locator_manager_seconds_max gauge\n"
		"sp_locator_manager_seconds_max %.6f\n"
		"# HELP sp_locator_inflight Storage manager calls in flight\n"
		"# TYPE sp_locator_inflight gauge\n"
		"sp_locator_inflight %u\n"
		"# HELP sp_locator_node_keys Node keys loaded\n"
		"# TYPE sp_locator_node_keys gauge\n"
		"sp_locator_node_keys %u\n",
		(double)loc->lat_sum_us / 1e6, loc->lat_count, (double)loc->lat_max_us / 1e6,
		loc->inflight, sp_nodeauth_count(loc->keys));
}

/* ---- life cycle ---------------------------------------------------------------------------- */

void
sp_locator_api_stop(struct sp_locator *loc)
{
	struct dropjob *d;

	LIST_FOREACH(d, &loc->drops, next)
	{
		if (!d->finished)
			sp_api_send_error(d->req, 503, "shutting_down", NULL,
					  "shortpathd is stopping");
		d->finished = true; /* the Redis callbacks free it */
	}
}

void
sp_locator_api_destroy(struct sp_locator *loc)
{
	struct dropjob *d;

	while ((d = LIST_FIRST(&loc->drops)) != NULL)
		drop_free(d);
}
