/* The control thread's locator resolver: workers' messages, Redis, storage manager, prefetch. */
#include "sp_locator.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <rte_common.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "sp_api.h"
#include "sp_conf.h"
#include "sp_ctl.h"
#include "sp_loc.h"
#include "sp_locator_int.h"
#include "sp_log.h"
#include "sp_nodeauth.h"
#include "sp_redis.h"
#include "sp_services.h"

#define PEER_CONNS 4	    /* HTTP connections per storage manager or node, reused */
#define BODY_MAX (8u << 20) /* largest storage manager answer read */
#define LOOKUPS_PER_CALL 4  /* lookups in progress (Redis stage too) per allowed manager call */
#define RKEY_MAX (96 + SP_LOC_NAME_MAX) /* sp:loc:{service}:r:/bucket/key */

static_assert(SP_LOC_PATH_MAX <= SP_NODEAUTH_PATH_MAX, "credentials for every locator path");

/* ---- state --------------------------------------------------------------------------------- */

/* A storage manager or node and the connections to it (evhttp queues on each). */
struct peer {
	LIST_ENTRY(peer) next;
	char addr[64]; /* as configured: "a.b.c.d:port" or "[v6]:port" */
	struct evhttp_connection *conn[PEER_CONNS];
	unsigned int busy[PEER_CONNS];
};

/* One HTTP call in flight. */
struct call {
	TAILQ_ENTRY(call) next;
	struct sp_locator *loc;
	struct peer *peer;
	unsigned int ci;
	struct evhttp_request *req;
	struct event *timer;
	uint64_t start_us;
	bool manager;	   /* a storage manager call: limited, timed */
	bool conn_timeout; /* evhttp reported a timeout */
	bool starting;	   /* inside evhttp_make_request */
	bool failed_early; /* ... which failed it at once */
	call_fn fn;
	void *arg;
};

/* Prefetch of several keys of one bucket (the next numbers, a listing's keys). */
struct pkey {
	struct pjob *job;
	const char *key; /* borrowed from job->keys */
	size_t klen;
	bool hit; /* Redis had it */
};

struct pjob {
	LIST_ENTRY(pjob) next;
	struct sp_locator *loc;
	uint16_t slot;
	struct sp_services_backend be;
	const struct sp_nodeauth_key *nk;
	char bucket[SP_LOC_NAME_MAX + 1];
	size_t blen;
	char *list_query;  /* listing: the /list query string; NULL: keys given */
	json_t *keys;	   /* array of key strings */
	struct pkey *pk;   /* one per key */
	int redis_pending; /* GETs outstanding */
	bool finished;	   /* answered (stop): callbacks only free */
	struct call *call;
	struct evhttp_request *req; /* POST /v1/locators/SERVICE/prefetch */
	unsigned int hits, asked, found, sent;
};

static void lookup_finish(struct lookup *lk);
static void pjob_finish(struct pjob *j, int code, const char *ecode, const char *msg);

static uint64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* ---- names --------------------------------------------------------------------------------- */

/* Hex text to bytes; -EINVAL on a bad digit, an odd length or more than SECRET_MAX bytes. */
/* Percent-decode s (n bytes) into out; -EINVAL on a bad escape or a NUL byte. */
static int
pct_decode(const char *s, size_t n, bool plus_space, char *out, size_t cap, size_t *len)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int hi, lo;

			if (i + 2 >= n)
				return -EINVAL;
			hi = sp_conf_hexval((unsigned char)s[i + 1]);
			lo = sp_conf_hexval((unsigned char)s[i + 2]);
			if (hi < 0 || lo < 0)
				return -EINVAL;
			c = hi << 4 | lo;
			i += 2;
		} else if (c == '+' && plus_space) {
			c = ' ';
		}
		if (c == 0 || o + 1 >= cap)
			return -EINVAL;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	*len = o;
	return 0;
}

/* The canonical request-target form of s: RFC 3986 unreserved and '/' kept, %XX upper case. */
static int
pct_encode(const char *s, size_t n, char *out, size_t cap, size_t *len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
			if (o + 1 >= cap)
				return -ENOSPC;
			out[o++] = (char)c;
		} else {
			if (o + 3 >= cap)
				return -ENOSPC;
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	*len = o;
	return 0;
}

/* A request path as sent: printable ASCII, no blanks, '?' or '#'. */
static bool
target_chars_ok(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '?' ||
		    s[i] == '#')
			return false;
	return true;
}

/* "/bucket/key" as the client sent it → decoded; want_key false: "/bucket" or "/bucket/". */
static int
parse_name(const char *name, size_t len, bool want_key, struct oname *on)
{
	const char *slash;
	size_t blen, klen = 0;

	if (len < 2 || len > SP_LOC_NAME_MAX || name[0] != '/' || !target_chars_ok(name, len))
		return -EINVAL;
	slash = memchr(name + 1, '/', len - 1);
	if (want_key != (slash != NULL && slash + 1 < name + len))
		return -EINVAL;
	blen = (size_t)((slash ? slash : name + len) - (name + 1));
	on->buf[0] = '/';
	if (blen == 0 ||
	    pct_decode(name + 1, blen, false, on->buf + 1, SP_LOC_NAME_MAX, &blen) != 0 ||
	    memchr(on->buf + 1, '/', blen) != NULL)
		return -EINVAL;
	on->buf[1 + blen] = '/';
	if (want_key && pct_decode(slash + 1, (size_t)(name + len - slash - 1), false,
				   on->buf + 2 + blen, sizeof(on->buf) - 2 - blen, &klen) != 0)
		return -EINVAL;
	if (want_key && klen == 0)
		return -EINVAL;
	on->buf[2 + blen + klen] = '\0';
	on->blen = (uint16_t)blen;
	on->klen = (uint16_t)klen;
	return 0;
}

int
sp_locator_make_oname(const char *bucket, size_t blen, const char *key, size_t klen,
		      struct oname *on)
{
	if (blen == 0 || klen == 0 || blen + klen + 2 > SP_LOC_NAME_MAX)
		return -ENOSPC;
	on->buf[0] = '/';
	memcpy(on->buf + 1, bucket, blen);
	on->buf[1 + blen] = '/';
	memcpy(on->buf + 2 + blen, key, klen);
	on->buf[2 + blen + klen] = '\0';
	on->blen = (uint16_t)blen;
	on->klen = (uint16_t)klen;
	return 0;
}

/* The Redis key of a locator: sp:loc:{service}:r|w:/bucket/key (decoded). */
static size_t
redis_key(char *out, const char *service, uint8_t op, const struct oname *on)
{
	int n = snprintf(out, RKEY_MAX, "sp:loc:{%s}:%c:", service,
			 op == SP_LOC_OP_WRITE ? 'w' : 'r');

	memcpy(out + n, on->buf, ON_LEN(on));
	return (size_t)n + ON_LEN(on);
}

/* ---- parsing answers ----------------------------------------------------------------------- */

/* "http://a.b.c.d[:port][/]" → address and port (network byte order). */
static bool
parse_node_url(const char *u, uint32_t *ip, uint16_t *port)
{
	char host[INET_ADDRSTRLEN];
	const char *h, *end;
	unsigned long p = 80;
	char *pe;

	if (strncmp(u, "http://", 7) != 0)
		return false;
	h = u + 7;
	end = h + strcspn(h, ":/");
	if (end == h || (size_t)(end - h) >= sizeof(host))
		return false;
	memcpy(host, h, (size_t)(end - h));
	host[end - h] = '\0';
	if (inet_pton(AF_INET, host, ip) != 1)
		return false;
	if (*end == ':') {
		p = strtoul(end + 1, &pe, 10);
		if (pe == end + 1 || p == 0 || p > 65535)
			return false;
		end = pe;
	}
	if (*end == '/')
		end++;
	if (*end != '\0')
		return false;
	*port = htons((uint16_t)p);
	return true;
}

static bool
path_ok(const char *p, size_t n)
{
	return n > 0 && n <= SP_LOC_PATH_MAX && p[0] == '/' && target_chars_ok(p, n);
}

static int
take_path(struct where *w, const json_t *o)
{
	const char *p = json_string_value(json_object_get(o, "path"));
	size_t n = p ? json_string_length(json_object_get(o, "path")) : 0;

	if (p == NULL || !path_ok(p, n))
		return -EINVAL;
	memcpy(w->path, p, n);
	w->path[n] = '\0';
	w->path_len = (uint16_t)n;
	return 0;
}

/* The manager's locate/place answer into w: 0, -EINVAL (bad answer) or -ENOENT (no IPv4 node). */
static int
parse_where(const json_t *o, struct where *w)
{
	const json_t *nodes = json_object_get(o, "nodes"),
		     *names = json_object_get(o, "node_names");
	const json_t *size = json_object_get(o, "size"), *x;
	size_t i;

	if (!json_is_object(o) || !json_is_array(nodes) || take_path(w, o) != 0 ||
	    (size != NULL && (!json_is_integer(size) || json_integer_value(size) < 0)))
		return -EINVAL;
	w->size = size ? (uint64_t)json_integer_value(size) : 0;
	w->n_nodes = 0;
	json_array_foreach(nodes, i, x)
	{
		const char *nm = json_string_value(json_array_get(names, i));

		if (w->n_nodes == SP_LOC_NODES)
			break;
		if (!json_is_string(x))
			return -EINVAL;
		if (!parse_node_url(json_string_value(x), &w->node_ip[w->n_nodes],
				    &w->node_port[w->n_nodes]))
			continue; /* not IPv4 over http: cannot go direct */
		snprintf(w->node_name[w->n_nodes], NODE_NAME_MAX, "%s", nm ? nm : "");
		w->n_nodes++;
	}
	return w->n_nodes > 0 ? 0 : -ENOENT;
}

/* Redis's copy: {"nodes": [[ip, port], ...], "node_names", "path", "size", "resolved_at"}. */
static int
parse_cached(const char *text, size_t len, struct where *w)
{
	json_t *o = json_loadb(text, len, 0, NULL), *nodes, *names, *x;
	const json_t *at;
	size_t i;
	int rc = -EINVAL;

	if (o == NULL)
		return -EINVAL;
	nodes = json_object_get(o, "nodes");
	names = json_object_get(o, "node_names");
	at = json_object_get(o, "resolved_at");
	if (!json_is_array(nodes) || json_array_size(nodes) == 0 || !json_is_number(at) ||
	    take_path(w, o) != 0)
		goto out;
	w->size = (uint64_t)json_integer_value(json_object_get(o, "size"));
	w->resolved_ms = (int64_t)(json_number_value(at) * 1000.0 + 0.5);
	w->n_nodes = 0;
	json_array_foreach(nodes, i, x)
	{
		const char *ip = json_string_value(json_array_get(x, 0));
		json_int_t port = json_integer_value(json_array_get(x, 1));
		const char *nm = json_string_value(json_array_get(names, i));

		if (w->n_nodes == SP_LOC_NODES)
			break;
		if (ip == NULL || port < 1 || port > 65535 ||
		    inet_pton(AF_INET, ip, &w->node_ip[w->n_nodes]) != 1)
			goto out;
		w->node_port[w->n_nodes] = htons((uint16_t)port);
		snprintf(w->node_name[w->n_nodes], NODE_NAME_MAX, "%s", nm ? nm : "");
		w->n_nodes++;
	}
	rc = 0;
out:
	json_decref(o);
	return rc;
}

static char *
cached_text(const struct where *w)
{
	json_t *o = json_object(), *nodes = json_array(), *names = json_array();
	char ip[INET_ADDRSTRLEN];
	char *text;
	unsigned int i;

	for (i = 0; i < w->n_nodes; i++) {
		inet_ntop(AF_INET, &w->node_ip[i], ip, sizeof(ip));
		json_array_append_new(nodes, json_pack("[s,i]", ip, (int)ntohs(w->node_port[i])));
		json_array_append_new(names, json_string(w->node_name[i]));
	}
	json_object_set_new(o, "nodes", nodes);
	json_object_set_new(o, "node_names", names);
	json_object_set_new(o, "path", json_stringn(w->path, w->path_len));
	json_object_set_new(o, "size", json_integer((json_int_t)w->size));
	json_object_set_new(o, "resolved_at", json_real((double)w->resolved_ms / 1000.0));
	text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return text;
}

/* Milliseconds w may still be used (0: expired). */
uint32_t
sp_locator_remaining_ms(const struct sp_locator *loc, const struct where *w)
{
	int64_t ttl = loc->cfg->loc_ttl_s * 1000, age = wall_ms() - w->resolved_ms;

	if (age < 0)
		age = 0;
	return age >= ttl ? 0 : (uint32_t)(ttl - age);
}

/* ---- Redis copies -------------------------------------------------------------------------- */

static void
on_stored(void *arg, const redisReply *reply)
{
	struct sp_locator *loc = arg;

	if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
		count(loc, EV_REDIS_ERRORS);
	else
		count(loc, EV_REDIS_STORED);
}

/* SET the locator with the TTL (no credentials: they are made when answering). */
static void
store(struct sp_locator *loc, const char *service, uint8_t op, const struct oname *on,
      const struct where *w)
{
	char key[RKEY_MAX];
	size_t klen = redis_key(key, service, op, on);
	char *text = cached_text(w);

	if (text == NULL)
		return;
	if (sp_redis_command(loc->ctl->redis, on_stored, loc, "SET %b %s EX %" PRId64, key, klen,
			     text, loc->cfg->loc_ttl_s) != 0)
		count(loc, EV_REDIS_ERRORS);
	free(text);
}

/* ---- HTTP client --------------------------------------------------------------------------- */

static struct peer *
peer_get(struct sp_locator *loc, const char *addr)
{
	struct peer *p;

	LIST_FOREACH(p, &loc->peers, next)
	if (strcmp(p->addr, addr) == 0)
		return p;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	snprintf(p->addr, sizeof(p->addr), "%s", addr);
	LIST_INSERT_HEAD(&loc->peers, p, next);
	return p;
}

/* The least busy connection to p (made on first use). */
static int
peer_conn(struct sp_locator *loc, struct peer *p, unsigned int *ci)
{
	struct timeval tv = {.tv_sec = loc->cfg->loc_timeout_ms / 1000,
			     .tv_usec = (loc->cfg->loc_timeout_ms % 1000) * 1000};
	char host[64];
	const char *colon = strrchr(p->addr, ':');
	unsigned int i, best;

	/* an idle connection, else a new one, else the least busy */
	best = PEER_CONNS;
	for (i = 0; i < PEER_CONNS && best == PEER_CONNS; i++)
		if (p->conn[i] != NULL && p->busy[i] == 0)
			best = i;
	for (i = 0; i < PEER_CONNS && best == PEER_CONNS; i++)
		if (p->conn[i] == NULL)
			best = i;
	if (best == PEER_CONNS)
		for (best = 0, i = 1; i < PEER_CONNS; i++)
			if (p->busy[i] < p->busy[best])
				best = i;
	if (p->conn[best] == NULL) {
		size_t hl;

		if (colon == NULL)
			return -EINVAL;
		hl = (size_t)(colon - p->addr);
		if (p->addr[0] == '[' && hl >= 2)
			snprintf(host, sizeof(host), "%.*s", (int)(hl - 2), p->addr + 1);
		else
			snprintf(host, sizeof(host), "%.*s", (int)hl, p->addr);
		p->conn[best] = evhttp_connection_base_new(loc->ctl->base, NULL, host,
							   (uint16_t)atoi(colon + 1));
		if (p->conn[best] == NULL)
			return -ENOMEM;
		evhttp_connection_set_timeout_tv(p->conn[best], &tv);
		evhttp_connection_set_max_body_size(p->conn[best], BODY_MAX);
	}
	*ci = best;
	return 0;
}

static void
call_end(struct call *c, int code, enum loc_event why, struct evbuffer *body)
{
	struct sp_locator *loc = c->loc;

	TAILQ_REMOVE(&loc->calls, c, next);
	if (c->timer != NULL)
		event_free(c->timer);
	c->peer->busy[c->ci]--;
	if (c->manager) {
		uint64_t us = mono_us() - c->start_us;

		loc_dec(&loc->inflight);
		if (code != 0) {
			__atomic_fetch_add(&loc->lat_sum_us, us, __ATOMIC_RELAXED);
			__atomic_fetch_add(&loc->lat_count, 1, __ATOMIC_RELAXED);
			if (us > loc->lat_max_us)
				__atomic_store_n(&loc->lat_max_us, us, __ATOMIC_RELAXED);
		}
	}
	c->fn(c->arg, code, why, body);
	free(c);
}

static void
on_call_error(enum evhttp_request_error e, void *arg)
{
	struct call *c = arg;

	if (e == EVREQ_HTTP_TIMEOUT)
		c->conn_timeout = true;
}

static void
on_call_done(struct evhttp_request *req, void *arg)
{
	struct call *c = arg;
	int code = req != NULL ? evhttp_request_get_response_code(req) : 0;

	c->req = NULL;	   /* evhttp frees it after this callback */
	if (c->starting) { /* failed inside evhttp_make_request: call_start undoes it */
		c->failed_early = true;
		return;
	}
	if (code == 0)
		call_end(c, 0, c->conn_timeout ? EV_FAILED_TIMEOUT : EV_FAILED_CONNECT, NULL);
	else
		call_end(c, code, EV_MAX, evhttp_request_get_input_buffer(req));
}

/* Cancel c's request (not from inside its own callbacks) and end it with why. */
static void
call_cancel(struct call *c, enum loc_event why)
{
	struct evhttp_request *req = c->req;

	c->req = NULL;
	if (req != NULL)
		evhttp_cancel_request(req); /* the error callback sees CANCEL; the done one never */
	call_end(c, 0, why, NULL);
}

static void
on_call_timer(evutil_socket_t fd, short what, void *arg)
{
	RTE_SET_USED(fd);
	RTE_SET_USED(what);
	call_cancel(arg, EV_FAILED_TIMEOUT);
}

/*
 * Start an HTTP call to addr; fn gets its end exactly once (not before this returns 0). manager:
 * counted against max_inflight, timed. 0 or -errno (fn not called).
 */
int
sp_locator_call_start(struct sp_locator *loc, const char *addr, enum evhttp_cmd_type method,
		      const char *uri, const char *body, const char *auth, bool manager, call_fn fn,
		      void *arg, struct call **out)
{
	struct timeval tv = {.tv_sec = loc->cfg->loc_timeout_ms / 1000,
			     .tv_usec = (loc->cfg->loc_timeout_ms % 1000) * 1000};
	struct evkeyvalq *h;
	struct call *c;
	struct peer *p;
	char rid[96];
	int rc;

	if (loc->stopping)
		return -ESHUTDOWN;
	p = peer_get(loc, addr);
	c = calloc(1, sizeof(*c));
	if (p == NULL || c == NULL) {
		free(c);
		return -ENOMEM;
	}
	rc = peer_conn(loc, p, &c->ci);
	c->timer = rc == 0 ? evtimer_new(loc->ctl->base, on_call_timer, c) : NULL;
	c->req = c->timer != NULL ? evhttp_request_new(on_call_done, c) : NULL;
	if (c->req == NULL) {
		if (c->timer != NULL)
			event_free(c->timer);
		free(c);
		return rc != 0 ? rc : -ENOMEM;
	}
	c->loc = loc;
	c->peer = p;
	c->manager = manager;
	c->fn = fn;
	c->arg = arg;
	c->start_us = mono_us();
	evhttp_request_set_error_cb(c->req, on_call_error);
	h = evhttp_request_get_output_headers(c->req);
	evhttp_add_header(h, "Host", addr);
	snprintf(rid, sizeof(rid), "sp-%s-%" PRIu64, loc->ctl->instance, ++loc->seq);
	evhttp_add_header(h, "X-SP-Request-Id", rid);
	if (auth != NULL)
		evhttp_add_header(h, "X-SP-Node-Auth", auth);
	if (body != NULL) {
		evhttp_add_header(h, "Content-Type", "application/json");
		evbuffer_add(evhttp_request_get_output_buffer(c->req), body, strlen(body));
	}
	c->starting = true;
	rc = evhttp_make_request(p->conn[c->ci], c->req, method, uri);
	c->starting = false;
	if (rc != 0 || c->failed_early) {
		event_free(c->timer);
		free(c);
		return rc != 0 ? -EIO : -ECONNREFUSED;
	}
	p->busy[c->ci]++;
	if (manager) {
		loc_inc(&loc->inflight);
		count(loc, EV_MANAGER_CALLS);
	}
	TAILQ_INSERT_TAIL(&loc->calls, c, next);
	evtimer_add(c->timer, &tv);
	if (out != NULL)
		*out = c;
	return 0;
}

static bool
inflight_full(const struct sp_locator *loc)
{
	return loc->inflight >= (uint32_t)loc->cfg->loc_max_inflight;
}

/* Prefetches use at most half of max_inflight: resolves that a flow waits for come first. */
static bool
prefetch_full(const struct sp_locator *loc)
{
	return loc->inflight > 0 && loc->inflight * 2 >= (uint32_t)loc->cfg->loc_max_inflight;
}

/* "bucket=B&key=K" percent-encoded. */
static char *
bk_query(const char *path, const struct oname *on)
{
	char *b = evhttp_uriencode(ON_BUCKET(on), on->blen, 0);
	char *k = evhttp_uriencode(ON_KEY(on), on->klen, 0);
	char *uri = NULL;

	if (b != NULL && k != NULL && asprintf(&uri, "%s?bucket=%s&key=%s", path, b, k) < 0)
		uri = NULL;
	free(b);
	free(k);
	return uri;
}

/* ---- answering ----------------------------------------------------------------------------- */

static const char *const method_names[SP_LOC_METHODS] = {"GET", "HEAD", "PUT", "DELETE"};

static void
count_outcome(struct sp_locator *loc, const struct where *w)
{
	count(loc, w->status == SP_LOC_FOUND	   ? EV_RESOLVED
		   : w->status == SP_LOC_NOT_FOUND ? EV_NOT_FOUND
		   : w->status == SP_LOC_BAD_NAME  ? EV_BAD_NAME
						   : (enum loc_event)w->why);
}

/* Fill m's answer fields from w (credentials made now, for key nk under key_id). */
void
sp_locator_fill_msg(struct sp_locator *loc, const struct where *w, const char *key_id,
		    const struct sp_nodeauth_key *nk, struct sp_loc_msg *m)
{
	unsigned int i;

	m->status = w->status;
	m->n_nodes = 0;
	m->path_len = 0;
	m->ttl_ms = 0;
	m->size = 0;
	m->cred_expires = 0;
	memset(m->cred_len, 0, sizeof(m->cred_len));
	if (w->status != SP_LOC_FOUND)
		return;
	m->n_nodes = w->n_nodes;
	memcpy(m->node_ip, w->node_ip, sizeof(m->node_ip));
	memcpy(m->node_port, w->node_port, sizeof(m->node_port));
	memcpy(m->path, w->path, w->path_len);
	m->path_len = w->path_len;
	m->size = w->size;
	m->ttl_ms = sp_locator_remaining_ms(loc, w);
	m->cred_expires = wall_ms() / 1000 + SP_LOCATOR_CRED_AHEAD_S;
	for (i = 0; i < SP_LOC_METHODS; i++) {
		int n = sp_nodeauth_cred(nk, key_id, method_names[i], w->path, w->path_len,
					 m->cred_expires, m->cred[i], sizeof(m->cred[i]));

		if (n < 0) { /* cannot happen with the sizes checked above; never go half-signed */
			m->status = SP_LOC_FAILED;
			m->n_nodes = 0;
			return;
		}
		m->cred_len[i] = (uint8_t)n;
	}
}

/* Hand m to its worker; a full ring puts it back (the worker's flow times out to the VIP). */
static void
to_worker(struct sp_locator *loc, struct sp_loc_msg *m)
{
	struct rte_ring *r = loc->dp->workers[m->worker]->loc_ring;

	if (r == NULL || rte_ring_sp_enqueue(r, m) != 0) {
		count(loc, EV_RING_FULL);
		rte_mempool_put(loc->dp->loc_pool, m);
	}
}

/* "/bucket/key" as a client would send it (pct_encode of each part) into out (not terminated). */
static int
canonical_name(const struct oname *on, char out[SP_LOC_NAME_MAX], size_t *len)
{
	char enc[3 * SP_LOC_NAME_MAX + 1];
	size_t bl, kl;

	if (pct_encode(ON_BUCKET(on), on->blen, enc, sizeof(enc), &bl) != 0 ||
	    pct_encode(ON_KEY(on), on->klen, enc + bl + 1, sizeof(enc) - bl - 1, &kl) != 0 ||
	    bl + kl + 2 > SP_LOC_NAME_MAX)
		return -ENOSPC;
	out[0] = '/';
	memcpy(out + 1, enc, bl);
	out[1 + bl] = '/';
	memcpy(out + 2 + bl, enc + bl + 1, kl);
	*len = bl + kl + 2;
	return 0;
}

/* A found locator to every worker as PREFETCH (fresh messages from the pool). */
static unsigned int
broadcast(struct sp_locator *loc, uint16_t slot, const struct sp_services_backend *be,
	  const struct sp_nodeauth_key *nk, const struct oname *on, const struct where *w)
{
	struct sp_loc_msg *t = &loc->tmpl;
	struct sp_dp *dp = loc->dp;
	unsigned int i, sent = 0;
	size_t len;

	if (dp == NULL || w->status != SP_LOC_FOUND || sp_locator_remaining_ms(loc, w) == 0)
		return 0;
	if (canonical_name(on, t->name, &len) != 0)
		return 0;
	memset(t, 0, offsetof(struct sp_loc_msg, name));
	t->name_len = (uint16_t)len;
	t->kind = SP_LOC_PREFETCH;
	t->op = SP_LOC_OP_READ;
	t->svc_slot = slot;
	t->svc_epoch = be->epoch;
	sp_locator_fill_msg(loc, w, be->node_key_id, nk, t);
	if (t->status != SP_LOC_FOUND)
		return 0;
	for (i = 0; i < dp->n_workers; i++) {
		void *obj;

		if (dp->loc_pool == NULL || rte_mempool_get(dp->loc_pool, &obj) != 0) {
			count(loc, EV_POOL_EMPTY);
			continue;
		}
		memcpy(obj, t, sizeof(*t));
		((struct sp_loc_msg *)obj)->worker = (uint16_t)i;
		if (dp->workers[i]->loc_ring == NULL ||
		    rte_ring_sp_enqueue(dp->workers[i]->loc_ring, obj) != 0) {
			count(loc, EV_RING_FULL);
			rte_mempool_put(dp->loc_pool, obj);
			continue;
		}
		count(loc, EV_PREFETCHED);
		sent++;
	}
	return sent;
}

static void node_answer(const struct waiter *wt, const struct lookup *lk, const struct where *w);

/* Answer one waiter of lk (or of no lookup: lk NULL, w the early outcome). */
static void
answer(struct sp_locator *loc, struct waiter *wt, struct lookup *lk, const struct where *w)
{
	count_outcome(loc, w);
	switch (wt->kind) {
	case W_WORKER:
		if (loc->dp == NULL) { /* cannot happen: stop answers before it lets go */
			break;
		}
		if (lk != NULL)
			sp_locator_fill_msg(loc, w, lk->be.node_key_id, lk->nk, wt->msg);
		else
			sp_locator_fill_msg(loc, w, "", NULL, wt->msg);
		to_worker(loc, wt->msg);
		break;
	case W_API:
		sp_locator_api_answer(loc, wt, lk, w);
		break;
	case W_REFRESH: /* lookup_finish broadcasts once for all of them */
		break;
	case W_NODE:
		node_answer(wt, lk, w);
		break;
	}
	free(wt);
}

static void
answer_early(struct sp_locator *loc, struct waiter *wt, uint8_t status, enum loc_event why)
{
	struct where w = {.status = status, .why = (uint8_t)why};

	answer(loc, wt, NULL, &w);
}

/* ---- prefetch ------------------------------------------------------------------------------ */

static void pjob_redis(struct pjob *j);

static void
pjob_free(struct pjob *j)
{
	LIST_REMOVE(j, next);
	loc_dec(&j->loc->pjobs_n);
	json_decref(j->keys);
	free(j->pk);
	free(j->list_query);
	free(j);
}

static void
pjob_finish(struct pjob *j, int code, const char *ecode, const char *msg)
{
	if (j->req != NULL) {
		if (code == 200)
			sp_api_send_json(j->req, 200,
					 json_pack("{s:s,s:s%,s:I,s:I,s:I,s:I,s:I}", "service",
						   j->be.name, "bucket", j->bucket, j->blen,
						   "listed", (json_int_t)json_array_size(j->keys),
						   "redis_hits", (json_int_t)j->hits, "asked",
						   (json_int_t)j->asked, "found",
						   (json_int_t)j->found, "sent",
						   (json_int_t)j->sent));
		else
			sp_api_send_error(j->req, code ? code : 503,
					  ecode ? ecode : "shutting_down", NULL, "%s",
					  msg ? msg : "shortpathd is stopping");
		j->req = NULL;
	}
	j->finished = true;
	if (j->redis_pending == 0 && j->call == NULL)
		pjob_free(j);
}

static bool
key_ok(const char *k, size_t n)
{
	return n > 0 && n + 2 < SP_LOC_NAME_MAX && memchr(k, '\0', n) == NULL;
}

/* A found locator of a prefetch: into Redis (unless it came from there) and to the workers. */
static void
pjob_found(struct pjob *j, const char *key, size_t klen, struct where *w)
{
	struct oname on;

	if (sp_locator_make_oname(j->bucket, j->blen, key, klen, &on) != 0)
		return;
	w->status = SP_LOC_FOUND;
	if (!w->from_redis)
		store(j->loc, j->be.name, SP_LOC_OP_READ, &on, w);
	j->found++;
	j->sent += broadcast(j->loc, j->slot, &j->be, j->nk, &on, w);
}

/* A prefetch job's manager call ended: false if the job was finished meanwhile (it is gone
 * now), else true with the parsed answer in *o (NULL unless a 200 with JSON). */
static bool
pjob_answer(struct pjob *j, int code, struct evbuffer *body, json_t **o)
{
	j->call = NULL;
	*o = NULL;
	if (j->finished) {
		pjob_finish(j, 0, NULL, NULL);
		return false;
	}
	if (code == 200)
		*o = json_loadb((const char *)evbuffer_pullup(body, -1), evbuffer_get_length(body),
				0, NULL);
	return true;
}

static void
on_batch(void *arg, int code, enum loc_event why, struct evbuffer *body)
{
	struct pjob *j = arg;
	json_t *o, *x;
	size_t i;

	if (!pjob_answer(j, code, body, &o))
		return;
	json_array_foreach(json_object_get(o, "results"), i, x)
	{
		struct where w = {0};
		const char *k = json_string_value(json_object_get(x, "key"));

		if (k == NULL || json_object_get(x, "error") != NULL)
			continue;
		w.resolved_ms = wall_ms();
		if (parse_where(x, &w) == 0)
			pjob_found(j, k, json_string_length(json_object_get(x, "key")), &w);
	}
	json_decref(o);
	if (why == EV_FAILED_STOPPING)
		pjob_finish(j, 503, "shutting_down", "shortpathd is stopping");
	else if (code != 200)
		pjob_finish(j, 502, "manager_failed",
			    "the storage manager did not answer the batch");
	else
		pjob_finish(j, 200, NULL, NULL);
}

/* The keys Redis did not have: POST /locate/batch. */
static void
pjob_batch(struct pjob *j)
{
	json_t *objs = json_array(), *b = json_stringn(j->bucket, j->blen), *req;
	char *text;
	size_t i;

	for (i = 0; i < json_array_size(j->keys); i++)
		if (!j->pk[i].hit)
			json_array_append_new(objs, json_pack("{s:O,s:O}", "bucket", b, "key",
							      json_array_get(j->keys, i)));
	json_decref(b);
	j->asked = (unsigned int)json_array_size(objs);
	if (j->asked == 0) {
		json_decref(objs);
		pjob_finish(j, 200, NULL, NULL);
		return;
	}
	req = json_pack("{s:o}", "objects", objs);
	text = req != NULL ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (text == NULL || prefetch_full(j->loc) ||
	    sp_locator_call_start(j->loc, j->be.storage_manager, EVHTTP_REQ_POST, "/locate/batch",
				  text, NULL, true, on_batch, j, &j->call) != 0) {
		count(j->loc, EV_PREFETCH_SKIPPED);
		free(text);
		pjob_finish(j, 503, "inflight_full", "too many storage manager calls in flight");
		return;
	}
	free(text);
}

static void
on_pkey(void *arg, const redisReply *reply)
{
	struct pkey *pk = arg;
	struct pjob *j = pk->job;
	struct where w = {0};

	j->redis_pending--;
	if (j->finished) {
		if (j->redis_pending == 0)
			pjob_finish(j, 0, NULL, NULL);
		return;
	}
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
		count(j->loc, EV_REDIS_ERRORS);
	else if (reply->type == REDIS_REPLY_STRING &&
		 parse_cached(reply->str, reply->len, &w) == 0 &&
		 sp_locator_remaining_ms(j->loc, &w) > 0) {
		count(j->loc, EV_REDIS_HITS);
		w.from_redis = true;
		pk->hit = true;
		j->hits++;
		pjob_found(j, pk->key, pk->klen, &w);
	} else {
		count(j->loc, EV_REDIS_MISSES);
	}
	if (j->redis_pending == 0)
		pjob_batch(j);
}

/* GET each key's copy from Redis (pipelined); then the batch for the rest. */
static void
pjob_redis(struct pjob *j)
{
	size_t i, n = json_array_size(j->keys);

	count_n(j->loc, EV_PREFETCH_REQUESTED, n);
	j->pk = calloc(n ? n : 1, sizeof(*j->pk));
	if (j->pk == NULL) {
		pjob_finish(j, 503, "no_memory", "out of memory");
		return;
	}
	for (i = 0; i < n; i++) {
		struct pkey *pk = &j->pk[i];
		char key[RKEY_MAX];
		struct oname on;
		size_t klen;

		pk->job = j;
		pk->key = json_string_value(json_array_get(j->keys, i));
		pk->klen = json_string_length(json_array_get(j->keys, i));
		if (sp_locator_make_oname(j->bucket, j->blen, pk->key, pk->klen, &on) != 0) {
			pk->hit = true; /* too long: not asked */
			continue;
		}
		klen = redis_key(key, j->be.name, SP_LOC_OP_READ, &on);
		if (sp_redis_command(j->loc->ctl->redis, on_pkey, pk, "GET %b", key, klen) == 0)
			j->redis_pending++;
		else
			count(j->loc, EV_REDIS_ERRORS);
	}
	if (j->redis_pending == 0)
		pjob_batch(j);
}

static void
on_list(void *arg, int code, enum loc_event why, struct evbuffer *body)
{
	struct pjob *j = arg;
	json_t *o, *x;
	size_t i;

	if (!pjob_answer(j, code, body, &o))
		return;
	if (!json_is_array(json_object_get(o, "contents"))) {
		json_decref(o);
		if (why == EV_FAILED_STOPPING)
			pjob_finish(j, 503, "shutting_down", "shortpathd is stopping");
		else if (code == 404)
			pjob_finish(j, 404, "not_found", "no such bucket");
		else
			pjob_finish(j, 502, "manager_failed",
				    "the storage manager did not answer the listing");
		return;
	}
	json_array_foreach(json_object_get(o, "contents"), i, x)
	{
		json_t *k = json_object_get(x, "key");

		if ((int64_t)json_array_size(j->keys) == j->loc->cfg->loc_prefetch_listing)
			break;
		if (json_is_string(k) && key_ok(json_string_value(k), json_string_length(k)))
			json_array_append(j->keys, k);
	}
	json_decref(o);
	count(j->loc, EV_LISTING_PREFETCHES);
	pjob_redis(j);
}

/* A new prefetch job for the service in slot (be, nk checked by the caller). */
static struct pjob *
pjob_new(struct sp_locator *loc, uint16_t slot, const struct sp_services_backend *be,
	 const struct sp_nodeauth_key *nk, const char *bucket, size_t blen)
{
	struct pjob *j;

	if (blen == 0 || blen > SP_LOC_NAME_MAX || prefetch_full(loc) || loc->stopping) {
		count(loc, EV_PREFETCH_SKIPPED);
		return NULL;
	}
	j = calloc(1, sizeof(*j));
	if (j == NULL || (j->keys = json_array()) == NULL) {
		free(j);
		return NULL;
	}
	j->loc = loc;
	j->slot = slot;
	j->be = *be;
	j->nk = nk;
	memcpy(j->bucket, bucket, blen);
	j->bucket[blen] = '\0';
	j->blen = blen;
	LIST_INSERT_HEAD(&loc->pjobs, j, next);
	loc_inc(&loc->pjobs_n);
	return j;
}

/* After a read resolve of a key ending in a number: the next prefetch_next numbers. */
static void
prefetch_next(struct sp_locator *loc, const struct lookup *lk)
{
	const char *k = ON_KEY(&lk->on);
	size_t n = lk->on.klen, d = n;
	unsigned long long v = 0;
	int64_t i;
	struct pjob *j;

	while (d > 0 && k[d - 1] >= '0' && k[d - 1] <= '9')
		d--;
	if (loc->cfg->loc_prefetch_next == 0 || d == n || n - d > 18)
		return;
	for (i = (int64_t)d; i < (int64_t)n; i++)
		v = v * 10 + (unsigned long long)(k[i] - '0');
	j = pjob_new(loc, lk->slot, &lk->be, lk->nk, ON_BUCKET(&lk->on), lk->on.blen);
	if (j == NULL)
		return;
	for (i = 1; i <= loc->cfg->loc_prefetch_next; i++) {
		char next[SP_LOC_NAME_MAX + 24];
		int m = snprintf(next, sizeof(next), "%.*s%0*llu", (int)d, k, (int)(n - d),
				 v + (unsigned long long)i);

		if (m > 0 && key_ok(next, (size_t)m))
			json_array_append_new(j->keys, json_stringn(next, (size_t)m));
	}
	pjob_redis(j);
}

/* The value of param in an S3 query string (decoded, '+' = space); false if absent or bad. */
static bool
query_param(const char *q, size_t qlen, const char *param, char *out, size_t cap)
{
	size_t plen = strlen(param), i = 0, len;

	while (i < qlen) {
		size_t end = i;

		while (end < qlen && q[end] != '&')
			end++;
		if (end - i > plen && memcmp(q + i, param, plen) == 0 && q[i + plen] == '=')
			return pct_decode(q + i + plen + 1, end - i - plen - 1, true, out, cap,
					  &len) == 0;
		if (end - i == plen && memcmp(q + i, param, plen) == 0) {
			out[0] = '\0';
			return true;
		}
		i = end + 1;
	}
	return false;
}

/* The /list query for a listing's S3 query string (prefix, delimiter, start-after/marker,
 * continuation-token) and at most max keys. */
static char *
list_query(const char *bucket, size_t blen, const char *q, size_t qlen, int64_t max)
{
	static const char *const s3[] = {"prefix", "delimiter", "start-after",
					 "continuation-token"};
	static const char *const mgr[] = {"prefix", "delimiter", "start_after", "continuation"};
	struct evbuffer *b = evbuffer_new();
	char val[SP_LOC_NAME_MAX + 1], *enc, *out = NULL;
	unsigned int i;
	size_t len;

	if (b == NULL)
		return NULL;
	if (qlen > 0 && q[0] == '?') {
		q++;
		qlen--;
	}
	enc = evhttp_uriencode(bucket, blen, 0);
	evbuffer_add_printf(b, "/list?bucket=%s&max_keys=%" PRId64, enc ? enc : "", max);
	free(enc);
	for (i = 0; i < RTE_DIM(s3); i++) {
		if (!query_param(q, qlen, s3[i], val, sizeof(val)) &&
		    !(i == 2 && query_param(q, qlen, "marker", val, sizeof(val))))
			continue;
		enc = evhttp_uriencode(val, strlen(val), 0);
		if (enc != NULL)
			evbuffer_add_printf(b, "&%s=%s", mgr[i], enc);
		free(enc);
	}
	len = evbuffer_get_length(b);
	out = malloc(len + 1);
	if (out != NULL) {
		evbuffer_remove(b, out, len);
		out[len] = '\0';
	}
	evbuffer_free(b);
	return out;
}

void
sp_locator_listing_start(struct sp_locator *loc, uint16_t slot,
			 const struct sp_services_backend *be, const struct sp_nodeauth_key *nk,
			 const struct oname *on, const char *q, size_t qlen, int64_t max,
			 struct evhttp_request *req)
{
	struct pjob *j = pjob_new(loc, slot, be, nk, ON_BUCKET(on), on->blen);

	if (j == NULL) {
		if (req != NULL)
			sp_api_send_error(req, 503, "unavailable", NULL,
					  "cannot prefetch now: too many storage manager calls in "
					  "flight");
		return;
	}
	j->req = req;
	j->list_query = list_query(ON_BUCKET(on), on->blen, q, qlen, max);
	if (j->list_query == NULL ||
	    sp_locator_call_start(loc, be->storage_manager, EVHTTP_REQ_GET, j->list_query, NULL,
				  NULL, true, on_list, j, &j->call) != 0) {
		count(loc, EV_PREFETCH_SKIPPED);
		pjob_finish(j, 503, "unavailable", "cannot reach the storage manager");
	}
}

/* ---- lookups ------------------------------------------------------------------------------- */

static uint32_t
lookup_hash(uint16_t slot, uint8_t op, const struct oname *on)
{
	uint32_t h = 2166136261u ^ slot ^ ((uint32_t)op << 16);
	size_t i, n = ON_LEN(on);

	for (i = 0; i < n; i++)
		h = (h ^ (uint8_t)on->buf[i]) * 16777619u;
	return h;
}

static struct lookup *
lookup_find(struct sp_locator *loc, uint32_t h, uint16_t slot, uint8_t op, const struct oname *on)
{
	struct lookup *lk;

	LIST_FOREACH(lk, &loc->hash[h & (HASH_SIZE - 1)], hnext)
	if (lk->hash == h && lk->slot == slot && lk->op == op && ON_LEN(&lk->on) == ON_LEN(on) &&
	    memcmp(lk->on.buf, on->buf, ON_LEN(on)) == 0)
		return lk;
	return NULL;
}

static void
lookup_fail(struct lookup *lk, enum loc_event why)
{
	lk->w.status = SP_LOC_FAILED;
	lk->w.why = (uint8_t)why;
	lookup_finish(lk);
}

static void
on_locate(void *arg, int code, enum loc_event why, struct evbuffer *body)
{
	struct lookup *lk = arg;
	json_t *o;
	int rc;

	lk->call = NULL;
	if (code == 0) {
		lookup_fail(lk, why);
		return;
	}
	if (code == 404) {
		lk->w.status = SP_LOC_NOT_FOUND;
		lookup_finish(lk);
		return;
	}
	if (code != 200) {
		lookup_fail(lk, EV_FAILED_HTTP_STATUS);
		return;
	}
	o = json_loadb((const char *)evbuffer_pullup(body, -1), evbuffer_get_length(body), 0, NULL);
	lk->w.resolved_ms = wall_ms();
	rc = o != NULL ? parse_where(o, &lk->w) : -EINVAL;
	json_decref(o);
	if (rc != 0) {
		lookup_fail(lk, rc == -ENOENT ? EV_FAILED_NO_NODE : EV_FAILED_BAD_ANSWER);
		return;
	}
	if (lk->op == SP_LOC_OP_WRITE)
		lk->w.size = 0;
	lk->w.status = SP_LOC_FOUND;
	store(lk->loc, lk->be.name, lk->op, &lk->on, &lk->w);
	lookup_finish(lk);
}

static void
manager_start(struct lookup *lk)
{
	struct sp_locator *loc = lk->loc;
	char *uri;

	if (inflight_full(loc)) {
		lookup_fail(lk, EV_FAILED_INFLIGHT_FULL);
		return;
	}
	uri = bk_query(lk->op == SP_LOC_OP_WRITE ? "/place" : "/locate", &lk->on);
	if (uri == NULL || sp_locator_call_start(loc, lk->be.storage_manager, EVHTTP_REQ_GET, uri,
						 NULL, NULL, true, on_locate, lk, &lk->call) != 0)
		lookup_fail(lk, loc->stopping ? EV_FAILED_STOPPING : EV_FAILED_CONNECT);
	free(uri);
}

static void
lookup_free(struct lookup *lk)
{
	struct waiter *wt;

	while ((wt = TAILQ_FIRST(&lk->waiters)) != NULL) { /* none left after finish */
		TAILQ_REMOVE(&lk->waiters, wt, next);
		json_decref(wt->doc);
		free(wt);
	}
	free(lk);
}

static void
on_cached(void *arg, const redisReply *reply)
{
	struct lookup *lk = arg;
	struct sp_locator *loc = lk->loc;
	uint32_t left;

	lk->redis_pending--;
	if (!lk->in_hash) { /* answered meanwhile (stopping) */
		if (lk->redis_pending == 0 && lk->call == NULL)
			lookup_free(lk);
		return;
	}
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
		count(loc, EV_REDIS_ERRORS);
	} else if (reply->type == REDIS_REPLY_STRING &&
		   parse_cached(reply->str, reply->len, &lk->w) == 0 &&
		   (left = sp_locator_remaining_ms(loc, &lk->w)) > 0 &&
		   (!lk->fresh_only || left * 2 > (uint64_t)loc->cfg->loc_ttl_s * 1000)) {
		count(loc, EV_REDIS_HITS);
		lk->w.status = SP_LOC_FOUND;
		lk->w.from_redis = true;
		lookup_finish(lk);
		return;
	} else {
		count(loc, EV_REDIS_MISSES);
	}
	manager_start(lk);
}

/* Answer every waiter of lk, then prefetch after a read. */
static void
lookup_finish(struct lookup *lk)
{
	struct sp_locator *loc = lk->loc;
	struct waiter *wt;
	bool prefetch = false, refresh = false;

	if (lk->in_hash) {
		LIST_REMOVE(lk, hnext);
		lk->in_hash = false;
		loc_dec(&loc->lookups);
	}
	while ((wt = TAILQ_FIRST(&lk->waiters)) != NULL) {
		TAILQ_REMOVE(&lk->waiters, wt, next);
		prefetch |= wt->kind == W_WORKER || wt->kind == W_API;
		refresh |= wt->kind == W_REFRESH;
		answer(loc, wt, lk, &lk->w);
	}
	if (refresh && !loc->stopping)
		broadcast(loc, lk->slot, &lk->be, lk->nk, &lk->on, &lk->w);
	if (prefetch && lk->op == SP_LOC_OP_READ && lk->w.status == SP_LOC_FOUND && !loc->stopping)
		prefetch_next(loc, lk);
	if (lk->redis_pending == 0 && lk->call == NULL)
		lookup_free(lk);
}

/* Control thread: resolve name for wt through the lookups (coalesced), Redis, the manager. */
void
sp_locator_resolve(struct sp_locator *loc, uint16_t slot, uint8_t op, const char *name,
		   size_t name_len, bool fresh_only, struct waiter *wt)
{
	struct sp_services_backend be;
	const struct sp_nodeauth_key *nk;
	struct lookup *lk;
	struct oname on;
	char key[RKEY_MAX];
	size_t klen;
	uint32_t h;

	if (op > SP_LOC_OP_WRITE || parse_name(name, name_len, true, &on) != 0) {
		answer_early(loc, wt, SP_LOC_BAD_NAME, EV_BAD_NAME);
		return;
	}
	if (sp_services_backend(loc->ctl->services, slot, &be) != 0) {
		answer_early(loc, wt, SP_LOC_FAILED, EV_FAILED_NO_SERVICE);
		return;
	}
	nk = sp_nodeauth_find(loc->keys, be.node_key_id);
	if (nk == NULL) {
		answer_early(loc, wt, SP_LOC_FAILED, EV_FAILED_NO_KEY);
		return;
	}
	h = lookup_hash(slot, op, &on);
	lk = lookup_find(loc, h, slot, op, &on);
	if (lk != NULL && strcmp(lk->be.storage_manager, be.storage_manager) == 0 &&
	    strcmp(lk->be.node_key_id, be.node_key_id) == 0) {
		count(loc, EV_COALESCED);
		TAILQ_INSERT_TAIL(&lk->waiters, wt, next);
		return;
	}
	if (loc->lookups >= (uint64_t)loc->cfg->loc_max_inflight * LOOKUPS_PER_CALL ||
	    (lk = calloc(1, sizeof(*lk))) == NULL) {
		answer_early(loc, wt, SP_LOC_FAILED, EV_FAILED_INFLIGHT_FULL);
		return;
	}
	lk->loc = loc;
	lk->hash = h;
	lk->slot = slot;
	lk->op = op;
	lk->fresh_only = fresh_only;
	lk->be = be;
	lk->nk = nk;
	lk->on = on;
	TAILQ_INIT(&lk->waiters);
	TAILQ_INSERT_TAIL(&lk->waiters, wt, next);
	LIST_INSERT_HEAD(&loc->hash[h & (HASH_SIZE - 1)], lk, hnext);
	lk->in_hash = true;
	loc_inc(&loc->lookups);
	klen = redis_key(key, be.name, op, &on);
	if (sp_redis_command(loc->ctl->redis, on_cached, lk, "GET %b", key, klen) == 0) {
		lk->redis_pending++;
		return;
	}
	count(loc, EV_REDIS_ERRORS);
	manager_start(lk);
}

/* ---- messages from the workers ------------------------------------------------------------- */

static void
on_msg(void *arg, struct sp_loc_msg *m)
{
	struct sp_locator *loc = arg;
	struct sp_dp *dp = loc->dp;
	struct sp_services_backend be;
	const struct sp_nodeauth_key *nk;
	struct waiter *wt;
	struct oname on;
	bool refresh;

	if (dp == NULL) /* cannot happen: sp_locator_stop cleared the handler */
		return;
	if (!dp->running || m->worker >= dp->n_workers) {
		/* the dataplane's last drain (it is stopping), or not a message of ours */
		if (dp->running)
			count(loc, EV_BAD_MESSAGE);
		rte_mempool_put(dp->loc_pool, m);
		return;
	}
	switch (m->kind) {
	case SP_LOC_RESOLVE:
	case SP_LOC_REFRESH:
		count(loc, m->kind == SP_LOC_RESOLVE ? EV_REQ_RESOLVE : EV_REQ_REFRESH);
		wt = calloc(1, sizeof(*wt));
		if (wt == NULL) {
			if (m->kind == SP_LOC_RESOLVE) {
				struct where w = {.status = SP_LOC_FAILED};

				sp_locator_fill_msg(loc, &w, "", NULL, m);
				to_worker(loc, m);
			} else {
				rte_mempool_put(dp->loc_pool, m);
			}
			return;
		}
		wt->kind = m->kind == SP_LOC_RESOLVE ? W_WORKER : W_REFRESH;
		wt->msg = m->kind == SP_LOC_RESOLVE ? m : NULL;
		refresh = m->kind == SP_LOC_REFRESH; /* a RESOLVE may be the worker's again below */
		sp_locator_resolve(loc, m->svc_slot, m->op, m->name,
				   RTE_MIN(m->name_len, SP_LOC_NAME_MAX), refresh, wt);
		if (refresh)
			rte_mempool_put(dp->loc_pool, m); /* resolve copied the name */
		return;
	case SP_LOC_LISTING:
		count(loc, EV_REQ_LISTING);
		if (loc->cfg->loc_prefetch_listing > 0 &&
		    parse_name(m->name, RTE_MIN(m->name_len, SP_LOC_NAME_MAX), false, &on) == 0 &&
		    sp_services_backend(loc->ctl->services, m->svc_slot, &be) == 0 &&
		    (nk = sp_nodeauth_find(loc->keys, be.node_key_id)) != NULL)
			sp_locator_listing_start(loc, m->svc_slot, &be, nk, &on, m->query,
						 RTE_MIN(m->query_len, SP_LOC_NAME_MAX),
						 loc->cfg->loc_prefetch_listing, NULL);
		else
			count(loc, EV_PREFETCH_SKIPPED);
		rte_mempool_put(dp->loc_pool, m);
		return;
	default:
		count(loc, EV_BAD_MESSAGE);
		rte_mempool_put(dp->loc_pool, m);
		return;
	}
}

/* ---- life cycle ---------------------------------------------------------------------------- */

int
sp_locator_create(struct sp_ctl *ctl, char *err, size_t errlen, struct sp_locator **out)
{
	struct sp_locator *loc;
	unsigned int i;
	int rc;

	*out = NULL;
	loc = calloc(1, sizeof(*loc));
	if (loc == NULL) {
		snprintf(err, errlen, "locators: out of memory");
		return -ENOMEM;
	}
	loc->ctl = ctl;
	loc->cfg = ctl->cfg;
	loc->dp = ctl->dp;
	for (i = 0; i < HASH_SIZE; i++)
		LIST_INIT(&loc->hash[i]);
	LIST_INIT(&loc->peers);
	TAILQ_INIT(&loc->calls);
	LIST_INIT(&loc->pjobs);
	LIST_INIT(&loc->drops);
	if (ctl->cfg->node_keys[0] != '\0') {
		rc = sp_nodeauth_load(ctl->cfg->node_keys, &loc->keys, err, errlen);
		if (rc != 0) {
			free(loc);
			return rc;
		}
		SP_LOG(INFO, "locators: %u node key(s) from %s", sp_nodeauth_count(loc->keys),
		       ctl->cfg->node_keys);
	} else {
		SP_LOG(INFO,
		       "locators: no [keys] node_keys: nothing can go direct to storage nodes");
	}
	if (loc->dp != NULL) {
		loc->dp->loc_handler_arg = loc;
		loc->dp->loc_handler = on_msg;
	}
	*out = loc;
	return 0;
}

void
sp_locator_stop(struct sp_locator *loc)
{
	struct lookup *lk;
	struct pjob *j;
	struct call *c;
	unsigned int i;

	if (loc == NULL || loc->stopping)
		return;
	loc->stopping = true;
	if (loc->dp != NULL) {
		loc->dp->loc_handler = NULL;
		loc->dp->loc_handler_arg = NULL;
	}
	/* every call ends now (its lookup or job sees why = stopping and answers) */
	while ((c = TAILQ_FIRST(&loc->calls)) != NULL)
		call_cancel(c, EV_FAILED_STOPPING);
	for (i = 0; i < HASH_SIZE; i++)
		while ((lk = LIST_FIRST(&loc->hash[i])) != NULL)
			lookup_fail(lk, EV_FAILED_STOPPING); /* Redis callbacks free it later */
	LIST_FOREACH(j, &loc->pjobs, next)
	{
		if (j->req != NULL)
			sp_api_send_error(j->req, 503, "shutting_down", NULL,
					  "shortpathd is stopping");
		j->req = NULL;
		j->finished = true; /* the Redis callbacks free it */
	}
	sp_locator_api_stop(loc);
	loc->dp = NULL;
}

void
sp_locator_destroy(struct sp_locator *loc)
{
	struct peer *p;
	struct pjob *j;
	unsigned int i;

	if (loc == NULL)
		return;
	/* without sp_locator_stop (start-up failed) nothing was punted yet: the dataplane is
	 * left alone, it may be gone already */
	loc->dp = NULL;
	if (!loc->stopping)
		sp_locator_stop(loc);
	/* the Redis client is gone: every callback has run, what is left was never sent */
	while ((j = LIST_FIRST(&loc->pjobs)) != NULL)
		pjob_free(j);
	sp_locator_api_destroy(loc);
	while ((p = LIST_FIRST(&loc->peers)) != NULL) {
		LIST_REMOVE(p, next);
		for (i = 0; i < PEER_CONNS; i++)
			if (p->conn[i] != NULL)
				evhttp_connection_free(p->conn[i]);
		free(p);
	}
	sp_nodeauth_free(loc->keys); /* wipes the secrets */
	explicit_bzero(&loc->tmpl, sizeof(loc->tmpl));
	free(loc);
}

/* ---- the object cache's revalidations (control/sp_cache_ctl.c) ------------------------------ */

/* A W_NODE waiter's answer: the first node of w, a GET credential for its path. */
static void
node_answer(const struct waiter *wt, const struct lookup *lk, const struct where *w)
{
	struct sp_locator_node n;
	int len;

	memset(&n, 0, sizeof(n));
	if (w->status == SP_LOC_NOT_FOUND)
		n.status = -ENOENT;
	else if (w->status != SP_LOC_FOUND || lk == NULL || w->n_nodes == 0)
		n.status = w->why == EV_FAILED_TIMEOUT	  ? -ETIMEDOUT
			   : w->why == EV_FAILED_STOPPING ? -ESHUTDOWN
							  : -EIO;
	if (n.status == 0) {
		n.ip = w->node_ip[0];
		n.port = ntohs(w->node_port[0]);
		n.path_len = w->path_len;
		memcpy(n.path, w->path, w->path_len);
		len = sp_nodeauth_cred(lk->nk, lk->be.node_key_id, "GET", w->path, w->path_len,
				       wall_ms() / 1000 + SP_LOCATOR_CRED_AHEAD_S, n.cred,
				       sizeof(n.cred));
		if (len < 0)
			n.status = -EIO;
	}
	wt->node_fn(wt->node_arg, &n);
	explicit_bzero(n.cred, sizeof(n.cred));
}

void
sp_locator_node_get(struct sp_locator *loc, uint16_t slot, const char *name, size_t len,
		    sp_locator_node_fn fn, void *arg)
{
	struct waiter *wt = calloc(1, sizeof(*wt));

	if (wt == NULL || loc->stopping) {
		struct sp_locator_node n = {.status = wt == NULL ? -ENOMEM : -ESHUTDOWN};

		free(wt);
		fn(arg, &n);
		return;
	}
	wt->kind = W_NODE;
	wt->node_fn = fn;
	wt->node_arg = arg;
	sp_locator_resolve(loc, slot, SP_LOC_OP_READ, name, RTE_MIN(len, (size_t)SP_LOC_NAME_MAX),
			   false, wt);
}
