/* Management HTTP API on a kernel socket: /v1/health, /v1/stats (JSON), /metrics (Prometheus),
 * /v1/services (and their credentials), /v1/locators, /v1/auth, /v1/cache. */
#include "sp_api.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <rte_ethdev.h>

#include "sp_auth_ctl.h"
#include "sp_cache_ctl.h"
#include "sp_ctl.h"
#include "sp_locator.h"
#include "sp_log.h"
#include "sp_redis.h"
#include "sp_services.h"
#include "sp_stats.h"

struct sp_api {
	struct sp_ctl *ctl;
	struct evhttp *http;
};

static const char *
reason_phrase(int code)
{
	switch (code) {
	case 200:
		return "OK";
	case 201:
		return "Created";
	case 204:
		return "No Content";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 409:
		return "Conflict";
	case 503:
		return "Service Unavailable";
	default:
		return code < 400 ? "OK" : code < 500 ? "Bad Request" : "Internal Server Error";
	}
}

void
sp_api_send_json(struct evhttp_request *req, int code, json_t *body)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(req);
	char *text = json_dumps(body, JSON_INDENT(2) | JSON_SORT_KEYS);

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "application/json");
	evbuffer_add_printf(out, "%s\n", text ? text : "{}");
	free(text);
	json_decref(body);
	evhttp_send_reply(req, code, reason_phrase(code), NULL);
}

int
sp_api_bad(struct sp_api_verr *e, const char *field, const char *fmt, ...)
{
	va_list ap;

	snprintf(e->field, sizeof(e->field), "%s", field);
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

void
sp_api_send_error(struct evhttp_request *req, int code, const char *ecode, const char *field,
		  const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	json_t *o;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	o = json_pack("{s:s,s:s}", "error", ecode, "message", msg);
	if (field != NULL)
		json_object_set_new(o, "field", json_string(field));
	sp_api_send_json(req, code, o);
}

static json_t *
worker_json(const struct sp_worker_stats *s)
{
	json_t *o = json_object();
	unsigned int i, j;

	for (i = 0; i < sp_stats_n_worker_scalars; i++)
		json_object_set_new(
			o, sp_stats_worker_scalars[i].name,
			json_integer((json_int_t)sp_stats_u64(s, sp_stats_worker_scalars[i].off)));
	for (i = 0; i < sp_stats_n_worker_groups; i++) {
		const struct sp_stat_group *g = &sp_stats_worker_groups[i];
		json_t *grp = json_object();

		for (j = g->first; j < g->n; j++)
			json_object_set_new(grp, g->name(j),
					    json_integer((json_int_t)sp_stats_group_u64(s, g, j)));
		json_object_set_new(o, g->family, grp);
	}
	return o;
}

static json_t *
redis_json(const struct sp_ctl *ctl)
{
	struct sp_redis_info ri;

	sp_redis_info(ctl->redis, &ri);
	sp_redis_last_error(ctl->redis, ri.last_error, sizeof(ri.last_error));
	return json_pack("{s:s,s:s,s:I,s:I,s:I,s:s}", "state", sp_redis_state_name(ri.state),
			 "address", ctl->cfg->redis_address, "connects", (json_int_t)ri.connects,
			 "failures", (json_int_t)ri.failures, "timeouts", (json_int_t)ri.timeouts,
			 "last_error", ri.last_error);
}

static void
handle_health(struct sp_api *api, struct evhttp_request *req)
{
	struct sp_ctl *ctl = api->ctl;
	bool up = sp_redis_up(ctl->redis);

	/* Degraded still answers 200: the fast path keeps forwarding without Redis. */
	sp_api_send_json(req, HTTP_OK,
			 json_pack("{s:s,s:o,s:b,s:I,s:I}", "status", up ? "ok" : "degraded",
				   "redis", redis_json(ctl), "forwarding", ctl->dp->running,
				   "workers", (json_int_t)ctl->dp->n_workers, "uptime_ms",
				   (json_int_t)(sp_ctl_now_ms() - ctl->start_ms)));
}

static void
handle_stats(struct sp_api *api, struct evhttp_request *req)
{
	const struct sp_dp *dp = api->ctl->dp;
	json_t *root = json_object(), *ports = json_object(), *workers = json_array();
	json_t *mac = json_object(), *ev = json_object();
	struct sp_worker_stats s;
	struct rte_eth_stats es;
	char buf[RTE_ETHER_ADDR_FMT_SIZE];
	unsigned int i, j;

	for (i = 0; i < dp->n_ports; i++) {
		const struct sp_port *p = &dp->ports[i];
		json_t *po = json_object();

		sp_stats_port_read(p->port_id, &es);
		json_object_set_new(po, "role", json_string(sp_port_role_name(p->role)));
		json_object_set_new(po, "port_id", json_integer(p->port_id));
		json_object_set_new(po, "device", json_string(p->conf->device));
		rte_ether_format_addr(buf, sizeof(buf), &p->hw_addr);
		json_object_set_new(po, "hw_mac", json_string(buf));
		if (p->conf->has_mac) {
			rte_ether_format_addr(buf, sizeof(buf),
					      (const struct rte_ether_addr *)p->conf->mac);
			json_object_set_new(po, "vm_mac", json_string(buf));
		}
		for (j = 0; j < sp_stats_n_port_scalars; j++)
			json_object_set_new(po, sp_stats_port_scalars[j].name,
					    json_integer((json_int_t)sp_stats_u64(
						    &es, sp_stats_port_scalars[j].off)));
		json_object_set_new(ports, p->name, po);
	}
	for (i = 0; i < dp->n_workers; i++) {
		json_t *wo;

		sp_stats_worker_read(dp->workers[i], &s);
		wo = worker_json(&s);
		json_object_set_new(wo, "worker", json_integer(i));
		json_object_set_new(wo, "lcore", json_integer(dp->workers[i]->lcore));
		json_array_append_new(workers, wo);
	}
	sp_stats_total(dp, &s);
	for (i = 0; i < SP_MAC_EV_MAX; i++)
		json_object_set_new(ev, sp_mac_event_name(i),
				    json_integer((json_int_t)SP_CNT_GET(dp->mac_events[i])));
	json_object_set_new(mac, "entries", json_integer(sp_mac_count(dp)));
	json_object_set_new(mac, "events", ev);
	json_object_set_new(root, "ports", ports);
	json_object_set_new(root, "workers", workers);
	json_object_set_new(root, "total", worker_json(&s));
	json_object_set_new(root, "mac_table", mac);
	json_object_set_new(root, "mempool",
			    json_pack("{s:I,s:I}", "size", (json_int_t)dp->pool->size, "in_use",
				      (json_int_t)sp_dp_pool_in_use(dp)));
	json_object_set_new(root, "redis", redis_json(api->ctl));
	json_object_set_new(root, "locators", sp_locator_stats_json(api->ctl->locator));
	if (api->ctl->cache != NULL)
		json_object_set_new(root, "cache", sp_cache_stats_json(api->ctl->cache));
	sp_api_send_json(req, HTTP_OK, root);
}

void
sp_api_prom_family(struct evbuffer *b, const char *name, const char *type, const char *help)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
handle_metrics(struct sp_api *api, struct evhttp_request *req)
{
	const struct sp_dp *dp = api->ctl->dp;
	struct evbuffer *b = evhttp_request_get_output_buffer(req);
	struct sp_worker_stats ws[SP_CONF_MAX_WORKERS];
	struct rte_eth_stats es[SP_CONF_MAX_PORTS];
	struct sp_redis_info ri;
	char name[128];
	unsigned int i, j, w;

	for (w = 0; w < dp->n_workers; w++)
		sp_stats_worker_read(dp->workers[w], &ws[w]);
	for (i = 0; i < dp->n_ports; i++)
		sp_stats_port_read(dp->ports[i].port_id, &es[i]);
	for (i = 0; i < sp_stats_n_port_scalars; i++) {
		const struct sp_stat_scalar *sc = &sp_stats_port_scalars[i];

		snprintf(name, sizeof(name), "sp_port_%s_total", sc->name);
		sp_api_prom_family(b, name, "counter", sc->help);
		for (j = 0; j < dp->n_ports; j++)
			evbuffer_add_printf(b, "%s{port=\"%s\",role=\"%s\"} %" PRIu64 "\n", name,
					    dp->ports[j].name, sp_port_role_name(dp->ports[j].role),
					    sp_stats_u64(&es[j], sc->off));
	}
	for (i = 0; i < sp_stats_n_worker_scalars; i++) {
		const struct sp_stat_scalar *sc = &sp_stats_worker_scalars[i];

		snprintf(name, sizeof(name), "sp_worker_%s_total", sc->name);
		sp_api_prom_family(b, name, "counter", sc->help);
		for (w = 0; w < dp->n_workers; w++)
			evbuffer_add_printf(b, "%s{worker=\"%u\",lcore=\"%u\"} %" PRIu64 "\n", name,
					    w, dp->workers[w]->lcore,
					    sp_stats_u64(&ws[w], sc->off));
	}
	for (i = 0; i < sp_stats_n_worker_groups; i++) {
		const struct sp_stat_group *g = &sp_stats_worker_groups[i];

		snprintf(name, sizeof(name), "sp_worker_%s_total", g->family);
		sp_api_prom_family(b, name, "counter", g->help);
		for (w = 0; w < dp->n_workers; w++)
			for (j = g->first; j < g->n; j++)
				evbuffer_add_printf(
					b, "%s{worker=\"%u\",lcore=\"%u\",%s=\"%s\"} %" PRIu64 "\n",
					name, w, dp->workers[w]->lcore, g->label, g->name(j),
					sp_stats_group_u64(&ws[w], g, j));
	}
	sp_api_prom_family(b, "sp_mac_events_total", "counter", "MAC table changes, by event");
	for (i = 0; i < SP_MAC_EV_MAX; i++)
		evbuffer_add_printf(b, "sp_mac_events_total{event=\"%s\"} %" PRIu64 "\n",
				    sp_mac_event_name(i), SP_CNT_GET(dp->mac_events[i]));
	sp_api_prom_family(b, "sp_mac_entries", "gauge", "entries in the MAC table");
	evbuffer_add_printf(b, "sp_mac_entries %u\n", sp_mac_count(dp));
	sp_api_prom_family(b, "sp_mempool_in_use", "gauge", "mbufs allocated from the packet pool");
	evbuffer_add_printf(b, "sp_mempool_in_use %u\n", sp_dp_pool_in_use(dp));
	sp_api_prom_family(b, "sp_mempool_size", "gauge", "mbufs in the packet pool");
	evbuffer_add_printf(b, "sp_mempool_size %u\n", dp->pool->size);
	sp_redis_info(api->ctl->redis, &ri);
	sp_api_prom_family(b, "sp_redis_up", "gauge", "1 while the Redis connection is up");
	evbuffer_add_printf(b, "sp_redis_up %d\n", ri.state == SP_REDIS_UP);
	sp_api_prom_family(b, "sp_redis_connects_total", "counter", "successful Redis handshakes");
	evbuffer_add_printf(b, "sp_redis_connects_total %" PRIu64 "\n", ri.connects);
	sp_api_prom_family(b, "sp_redis_failures_total", "counter",
			   "failed Redis connection attempts and lost connections");
	evbuffer_add_printf(b, "sp_redis_failures_total %" PRIu64 "\n", ri.failures);
	sp_api_prom_family(b, "sp_uptime_seconds", "gauge", "seconds since shortpathd started");
	evbuffer_add_printf(b, "sp_uptime_seconds %.3f\n",
			    (double)(sp_ctl_now_ms() - api->ctl->start_ms) / 1000.0);
	sp_services_metrics(api->ctl->services, b);
	sp_locator_metrics(api->ctl->locator, b);
	sp_auth_metrics(api->ctl->auth, b);
	if (api->ctl->cache != NULL)
		sp_cache_metrics(api->ctl->cache, b);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "text/plain; version=0.0.4; charset=utf-8");
	evhttp_send_reply(req, HTTP_OK, "OK", NULL);
}

static void
handle_auth(struct sp_api *api, struct evhttp_request *req)
{
	sp_api_send_json(req, HTTP_OK, sp_auth_stats_json(api->ctl->auth));
}

static void
dispatch(struct evhttp_request *req, void *arg)
{
	static const struct {
		const char *path;
		void (*fn)(struct sp_api *, struct evhttp_request *);
	} routes[] = {
		{"/v1/health", handle_health},
		{"/v1/stats", handle_stats},
		{"/metrics", handle_metrics},
		{"/v1/auth", handle_auth},
	};
	struct sp_api *api = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	enum evhttp_cmd_type method = evhttp_request_get_command(req);
	char msg[160];
	size_t i;

	if (path == NULL || *path == '\0')
		path = "/";
	if (sp_auth_is_credentials_path(path)) {
		sp_auth_http(api->ctl->auth, req, path);
		return;
	}
	if (strcmp(path, "/v1/services") == 0 || strncmp(path, "/v1/services/", 13) == 0) {
		sp_services_http(api->ctl->services, req, path);
		return;
	}
	if ((strcmp(path, "/v1/cache") == 0 || strncmp(path, "/v1/cache/", 10) == 0) &&
	    api->ctl->cache != NULL) {
		sp_cache_http(api->ctl->cache, req, path);
		return;
	}
	if (strcmp(path, "/v1/locators") == 0 || strncmp(path, "/v1/locators/", 13) == 0) {
		sp_locator_http(api->ctl->locator, req, path);
		return;
	}
	for (i = 0; i < RTE_DIM(routes); i++) {
		if (strcmp(path, routes[i].path) != 0)
			continue;
		if (method != EVHTTP_REQ_GET && method != EVHTTP_REQ_HEAD) {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
					  "GET, HEAD");
			snprintf(msg, sizeof(msg), "%s takes GET", routes[i].path);
			sp_api_send_error(req, 405, "method_not_allowed", NULL, "%s", msg);
			return;
		}
		routes[i].fn(api, req);
		return;
	}
	snprintf(msg, sizeof(msg), "no such endpoint: %.120s", path);
	sp_api_send_error(req, HTTP_NOTFOUND, "not_found", NULL, "%s", msg);
}

int
sp_api_create(struct sp_ctl *ctl, const char *listen, struct sp_api **out, char *err, size_t errlen)
{
	struct sp_api *api;
	char host[SP_CONF_STR_LEN];
	const char *colon = strrchr(listen, ':');
	size_t hl;

	*out = NULL;
	if (strncmp(listen, "unix:", 5) == 0 || colon == NULL) {
		snprintf(err, errlen, "config: [api] listen: '%s': expected address:port", listen);
		return -EINVAL;
	}
	hl = (size_t)(colon - listen);
	if (listen[0] == '[') /* [v6]:port */
		snprintf(host, sizeof(host), "%.*s", (int)(hl - 2), listen + 1);
	else
		snprintf(host, sizeof(host), "%.*s", (int)hl, listen);
	api = calloc(1, sizeof(*api));
	if (api == NULL)
		return -ENOMEM;
	api->ctl = ctl;
	api->http = evhttp_new(ctl->base);
	if (api->http == NULL) {
		free(api);
		return -ENOMEM;
	}
	evhttp_set_max_headers_size(api->http, 16384);
	evhttp_set_max_body_size(api->http, 1 << 20);
	evhttp_set_timeout(api->http, 30);
	evhttp_set_allowed_methods(api->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
						      EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
						      EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS |
						      EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT);
	evhttp_set_gencb(api->http, dispatch, api);
	if (evhttp_bind_socket(api->http, host, (uint16_t)atoi(colon + 1)) != 0) {
		snprintf(err, errlen, "api: cannot listen on %s ([api] listen): %s", listen,
			 strerror(errno));
		evhttp_free(api->http);
		free(api);
		return -EADDRINUSE;
	}
	SP_LOG(INFO, "api: listening on http://%s", listen);
	*out = api;
	return 0;
}

void
sp_api_destroy(struct sp_api *api)
{
	if (api == NULL)
		return;
	evhttp_free(api->http);
	free(api);
}
