/* Locator resolver of the control thread: where objects of enhanced services live (Redis, then the
 * storage manager), node-manager credentials, prefetch, and /v1/locators (docs/locators.md). */
#include "sp_locator.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <rte_common.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_telemetry.h>

#include "sp_api.h"
#include "sp_ctl.h"
#include "sp_loc.h"
#include "sp_log.h"
#include "sp_redis.h"
#include "sp_services.h"

#define KEYS_MAX 64	    /* entries of the node keys file */
#define KEY_ID_MAX 64	    /* as the services API allows */
#define SECRET_MAX 128	    /* bytes of one secret */
#define PEER_CONNS 4	    /* HTTP connections per storage manager or node, reused */
#define HASH_SIZE 1024	    /* buckets of the lookups in progress (power of two) */
#define BODY_MAX (8u << 20) /* largest storage manager answer read */
#define NODE_NAME_MAX 32    /* a node's name as the manager gives it (shown by the API) */
#define LOOKUPS_PER_CALL 4  /* lookups in progress (Redis stage too) per allowed manager call */
#define RKEY_MAX (96 + SP_LOC_NAME_MAX) /* sp:loc:{service}:r:/bucket/key */

/* ---- counters (one table: telemetry, /metrics and /v1/stats come from it) ------------------ */

#define LOC_EVENTS(X)                                                                              \
	X(REQ_RESOLVE, "requests_resolve")  /* RESOLVE messages from workers */                    \
	X(REQ_REFRESH, "requests_refresh")  /* REFRESH messages from workers */                    \
	X(REQ_LISTING, "requests_listing")  /* LISTING messages from workers */                    \
	X(REQ_API, "requests_api")	    /* GET /v1/locators/SERVICE */                         \
	X(RESOLVED, "resolved")		    /* answered found */                                   \
	X(NOT_FOUND, "not_found")	    /* answered not found (the manager said 404) */        \
	X(FAILED_TIMEOUT, "failed_timeout") /* the manager did not answer in timeout_ms */         \
	X(FAILED_CONNECT, "failed_connect") /* no connection, or it broke */                       \
	X(FAILED_HTTP_STATUS, "failed_http_status") /* neither 200 nor 404 */                      \
	X(FAILED_BAD_ANSWER, "failed_bad_answer")   /* not the JSON expected */                    \
	X(FAILED_NO_NODE, "failed_no_node")	    /* no IPv4 node in the answer */               \
	X(FAILED_NO_KEY, "failed_no_key")	    /* no secret for the service's node_key_id */  \
	X(FAILED_NO_SERVICE, "failed_no_service")   /* the slot has no service (any more) */       \
	X(FAILED_INFLIGHT_FULL, "failed_inflight_full") /* [locators] max_inflight reached */      \
	X(FAILED_STOPPING, "failed_stopping")		/* shortpathd stopped meanwhile */         \
	X(BAD_NAME, "bad_name")				/* not /bucket/key */                      \
	X(BAD_MESSAGE, "bad_message")	  /* unknown kind or worker: put back unanswered */        \
	X(MANAGER_CALLS, "manager_calls") /* storage manager calls started */                      \
	X(REDIS_HITS, "redis_hits")	  /* usable locator found in Redis */                      \
	X(REDIS_MISSES, "redis_misses")	  /* none (or too old for a refresh) */                    \
	X(REDIS_ERRORS, "redis_errors")	  /* Redis down or an error reply */                       \
	X(REDIS_STORED, "redis_stored")	  /* locators written to Redis */                          \
	X(COALESCED, "coalesced")	  /* requests that joined a lookup in progress */          \
	X(PREFETCH_REQUESTED, "prefetch_requested") /* keys whose locators prefetch looked up */   \
	X(PREFETCHED, "prefetched")		    /* PREFETCH messages enqueued to workers */    \
	X(PREFETCH_SKIPPED, "prefetch_skipped")	    /* prefetches not started (limit, Redis) */    \
	X(LISTING_PREFETCHES, "listing_prefetches") /* listings whose keys were prefetched */      \
	X(RING_FULL, "ring_full")		    /* a worker's locator ring was full */         \
	X(POOL_EMPTY, "pool_empty")		    /* no message left for a prefetch */

enum loc_event {
#define LOC_EVENT_ENUM(e, s) EV_##e,
	LOC_EVENTS(LOC_EVENT_ENUM)
#undef LOC_EVENT_ENUM
		EV_MAX
};

static const char *const event_names[] = {
#define LOC_EVENT_NAME(e, s) s,
	LOC_EVENTS(LOC_EVENT_NAME)
#undef LOC_EVENT_NAME
};

/* ---- state --------------------------------------------------------------------------------- */

struct node_key {
	char id[KEY_ID_MAX + 1]; /* "" for a bare secret: used for any key id */
	uint8_t secret[SECRET_MAX];
	size_t len;
};

/* A storage manager or node and the connections to it (evhttp queues on each). */
struct peer {
	LIST_ENTRY(peer) next;
	char addr[64]; /* as configured: "a.b.c.d:port" or "[v6]:port" */
	struct evhttp_connection *conn[PEER_CONNS];
	unsigned int busy[PEER_CONNS];
};

/* The end of a call: code is the HTTP status, or 0 with why = EV_FAILED_TIMEOUT/CONNECT/STOPPING.
 */
typedef void (*call_fn)(void *arg, int code, enum loc_event why, struct evbuffer *body);

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

/* A resolved locator (or why not). */
struct where {
	uint8_t status; /* enum sp_loc_status */
	uint8_t why;	/* enum loc_event: the outcome counted */
	uint8_t n_nodes;
	bool from_redis;
	uint32_t node_ip[SP_LOC_NODES];	  /* network byte order */
	uint16_t node_port[SP_LOC_NODES]; /* network byte order */
	char node_name[SP_LOC_NODES][NODE_NAME_MAX];
	uint16_t path_len;
	char path[SP_LOC_PATH_MAX + 1];
	uint64_t size;
	int64_t resolved_ms; /* unix milliseconds */
};

/* An object's name, decoded: "/bucket/key" (no NUL inside). */
struct oname {
	uint16_t blen, klen;
	char buf[SP_LOC_NAME_MAX + 2];
};

#define ON_BUCKET(o) ((o)->buf + 1)
#define ON_KEY(o) ((o)->buf + 2 + (o)->blen)
#define ON_LEN(o) ((size_t)(o)->blen + (o)->klen + 2)

enum waiter_kind {
	W_WORKER,  /* a RESOLVE message: answered on its worker's ring */
	W_API,	   /* GET /v1/locators/SERVICE */
	W_REFRESH, /* a REFRESH: the answer goes to every worker as PREFETCH */
};

struct waiter {
	TAILQ_ENTRY(waiter) next;
	enum waiter_kind kind;
	struct sp_loc_msg *msg;	    /* W_WORKER */
	struct evhttp_request *req; /* W_API */
	json_t *doc;		    /* W_API: the answer's fields known at the start */
	bool verify;		    /* W_API: try the credential on the first node */
};

TAILQ_HEAD(waiter_list, waiter);

/* One distinct (service, op, name) being resolved: concurrent requests share it. */
struct lookup {
	LIST_ENTRY(lookup) hnext;
	struct sp_locator *loc;
	uint32_t hash;
	uint16_t slot;
	uint8_t op;
	bool fresh_only;   /* a refresh: Redis's copy only if younger than half the TTL */
	bool in_hash;	   /* findable (not answered yet) */
	int redis_pending; /* Redis callbacks that still hold it */
	struct call *call;
	struct sp_services_backend be;
	const struct node_key *nk;
	struct oname on;
	struct waiter_list waiters;
	struct where w;
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
	const struct node_key *nk;
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

struct sp_locator {
	struct sp_ctl *ctl;
	const struct sp_conf *cfg;
	struct sp_dp *dp; /* NULL once stopped */
	bool stopping;
	unsigned int n_keys;
	struct node_key keys[KEYS_MAX];
	uint64_t ev[EV_MAX]; /* written by the control thread, read by telemetry (atomics) */
	uint64_t lat_sum_us, lat_count, lat_max_us;
	uint32_t inflight; /* storage manager calls */
	uint32_t lookups;  /* lookups in the hash */
	uint32_t pjobs_n;  /* prefetch jobs not freed yet */
	uint64_t seq;	   /* X-SP-Request-Id */
	LIST_HEAD(, lookup) hash[HASH_SIZE];
	LIST_HEAD(, peer) peers;
	TAILQ_HEAD(, call) calls;
	LIST_HEAD(, pjob) pjobs;
	LIST_HEAD(, dropjob) drops;
	struct sp_loc_msg tmpl; /* a prefetch message being built */
};

static void lookup_finish(struct lookup *lk);
static void pjob_finish(struct pjob *j, int code, const char *ecode, const char *msg);

static inline void
count(struct sp_locator *loc, enum loc_event e)
{
	__atomic_fetch_add(&loc->ev[e], 1, __ATOMIC_RELAXED);
}

static inline void
count_n(struct sp_locator *loc, enum loc_event e, uint64_t n)
{
	__atomic_fetch_add(&loc->ev[e], n, __ATOMIC_RELAXED);
}

/* Gauges read by telemetry. */
static inline void
loc_inc(uint32_t *g)
{
	__atomic_fetch_add(g, 1, __ATOMIC_RELAXED);
}

static inline void
loc_dec(uint32_t *g)
{
	__atomic_fetch_sub(g, 1, __ATOMIC_RELAXED);
}

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* ---- node keys ----------------------------------------------------------------------------- */

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Hex text to bytes; -EINVAL on a bad digit, an odd length or more than SECRET_MAX bytes. */
static int
unhex(const char *s, size_t n, uint8_t *out, size_t *len)
{
	size_t i;

	if (n == 0 || n % 2 != 0 || n / 2 > SECRET_MAX)
		return -EINVAL;
	for (i = 0; i < n; i += 2) {
		int hi = hexval((unsigned char)s[i]), lo = hexval((unsigned char)s[i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	*len = n / 2;
	return 0;
}

/* As the services API takes node_key_id. */
static bool
key_id_ok(const char *v)
{
	size_t i, len = strlen(v);

	if (len == 0 || len > KEY_ID_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
		      (v[i] >= '0' && v[i] <= '9') || v[i] == '_' || v[i] == '.' || v[i] == '-'))
			return false;
	return true;
}

#define KEYS_ERR(...)                                                                              \
	do {                                                                                       \
		int n_ = snprintf(err, errlen, "config: [keys] node_keys: %s: ", path);            \
		if (n_ >= 0 && (size_t)n_ < errlen)                                                \
			snprintf(err + n_, errlen - (size_t)n_, __VA_ARGS__);                      \
	} while (0)

/*
 * Read the node keys file into keys (may be NULL: check only). Lines `key_id secret_hex`, or one
 * line with one bare secret (any key id); '#' comments and blank lines. The text read is wiped.
 */
static int
keys_read(const char *path, struct node_key *keys, unsigned int *n_keys, char *err, size_t errlen)
{
	struct node_key tmp;
	struct stat st;
	char buf[16384], *line, *next;
	unsigned int n = 0, lineno = 0, bare = 0;
	ssize_t got;
	size_t used = 0;
	int fd, rc = 0;

	*n_keys = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		KEYS_ERR("cannot open: %s", strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		KEYS_ERR("not a regular file");
		return -EINVAL;
	}
	if ((st.st_mode & 077) != 0) {
		close(fd);
		KEYS_ERR("mode 0%03o gives group/others access to the secrets (chmod 600)",
			 (unsigned int)(st.st_mode & 0777));
		return -EINVAL;
	}
	while ((got = read(fd, buf + used, sizeof(buf) - 1 - used)) > 0)
		used += (size_t)got;
	close(fd);
	if (got < 0 || used == sizeof(buf) - 1) {
		explicit_bzero(buf, sizeof(buf));
		KEYS_ERR(got < 0 ? "cannot read it" : "larger than %zu bytes", sizeof(buf) - 2);
		return got < 0 ? -EIO : -EFBIG;
	}
	buf[used] = '\0';
	for (line = buf; line != NULL && rc == 0; line = next) {
		char *f1, *f2, *f3, *s2 = NULL;

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		lineno++;
		f1 = strtok_r(line, " \t\r", &s2);
		if (f1 == NULL || f1[0] == '#')
			continue;
		f2 = strtok_r(NULL, " \t\r", &s2);
		f3 = strtok_r(NULL, " \t\r", &s2);
		memset(&tmp, 0, sizeof(tmp));
		if (f3 != NULL && f3[0] != '#') {
			KEYS_ERR("line %u: expected `key_id secret_hex` or one bare secret",
				 lineno);
			rc = -EINVAL;
		} else if (f2 == NULL || f2[0] == '#') { /* a bare secret */
			bare++;
			if (unhex(f1, strlen(f1), tmp.secret, &tmp.len) != 0) {
				KEYS_ERR("line %u: the secret is not an even number of hex digits "
					 "(at most %d bytes)",
					 lineno, SECRET_MAX);
				rc = -EINVAL;
			}
		} else if (!key_id_ok(f1)) {
			KEYS_ERR("line %u: a key id is 1 to %d of A-Z a-z 0-9 _ . -", lineno,
				 KEY_ID_MAX);
			rc = -EINVAL;
		} else if (unhex(f2, strlen(f2), tmp.secret, &tmp.len) != 0) {
			KEYS_ERR("line %u: the secret of key id %s is not an even number of hex "
				 "digits "
				 "(at most %d bytes)",
				 lineno, f1, SECRET_MAX);
			rc = -EINVAL;
		} else {
			snprintf(tmp.id, sizeof(tmp.id), "%s", f1);
		}
		if (rc == 0 && n == KEYS_MAX) {
			KEYS_ERR("more than %d keys", KEYS_MAX);
			rc = -ENOSPC;
		}
		if (rc == 0 && keys != NULL)
			keys[n] = tmp;
		if (rc == 0)
			n++;
	}
	explicit_bzero(&tmp, sizeof(tmp));
	explicit_bzero(buf, sizeof(buf));
	if (rc == 0 && bare > 0 && n > 1) {
		KEYS_ERR("a bare secret must be the file's only line");
		rc = -EINVAL;
	}
	if (rc == 0 && n == 0) {
		KEYS_ERR("no key in it");
		rc = -EINVAL;
	}
	if (rc != 0) {
		if (keys != NULL)
			explicit_bzero(keys, sizeof(*keys) * KEYS_MAX);
		return rc;
	}
	*n_keys = n;
	return 0;
}

int
sp_locator_keys_check(const char *path, char *err, size_t errlen)
{
	unsigned int n;

	if (path == NULL || path[0] == '\0')
		return 0;
	return keys_read(path, NULL, &n, err, errlen);
}

static const struct node_key *
key_for(const struct sp_locator *loc, const char *id)
{
	unsigned int i;

	for (i = 0; i < loc->n_keys; i++)
		if (loc->keys[i].id[0] == '\0' || strcmp(loc->keys[i].id, id) == 0)
			return &loc->keys[i];
	return NULL;
}

/* ---- credentials --------------------------------------------------------------------------- */

int
sp_locator_node_auth(const uint8_t *secret, size_t secret_len, const char *key_id,
		     const char *method, const char *path, size_t path_len, int64_t expires,
		     char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	char msg[16 + SP_LOC_PATH_MAX + 32];
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	int n, m;

	if (secret_len == 0 || secret_len > INT32_MAX || key_id[0] == '\0' || path_len == 0)
		return -EINVAL;
	if (path_len > SP_LOC_PATH_MAX)
		return -ENOSPC;
	n = snprintf(msg, sizeof(msg), "%s\n%.*s\n%" PRId64, method, (int)path_len, path, expires);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return -ENOSPC;
	if (HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)msg, (size_t)n, md,
		 &mdlen) == NULL)
		return -EINVAL;
	m = snprintf(out, outlen, "%s:%" PRId64 ":", key_id, expires);
	if (m < 0 || (size_t)m + mdlen * 2 + 1 > outlen)
		return -ENOSPC;
	for (i = 0; i < mdlen; i++) {
		out[m + 2 * i] = hex[md[i] >> 4];
		out[m + 2 * i + 1] = hex[md[i] & 15];
	}
	out[m + 2 * mdlen] = '\0';
	explicit_bzero(md, sizeof(md));
	return m + (int)mdlen * 2;
}

static const char *const method_names[SP_LOC_METHODS] = {"GET", "HEAD", "PUT", "DELETE"};

/* ---- names --------------------------------------------------------------------------------- */

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
			hi = hexval((unsigned char)s[i + 1]);
			lo = hexval((unsigned char)s[i + 2]);
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

static int
make_oname(const char *bucket, size_t blen, const char *key, size_t klen, struct oname *on)
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
static uint32_t
remaining_ms(const struct sp_locator *loc, const struct where *w)
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
static int
call_start(struct sp_locator *loc, const char *addr, enum evhttp_cmd_type method, const char *uri,
	   const char *body, const char *auth, bool manager, call_fn fn, void *arg,
	   struct call **out)
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

static void
count_outcome(struct sp_locator *loc, const struct where *w)
{
	count(loc, w->status == SP_LOC_FOUND	   ? EV_RESOLVED
		   : w->status == SP_LOC_NOT_FOUND ? EV_NOT_FOUND
		   : w->status == SP_LOC_BAD_NAME  ? EV_BAD_NAME
						   : (enum loc_event)w->why);
}

/* Fill m's answer fields from w (credentials made now, for key nk under key_id). */
static void
fill_msg(struct sp_locator *loc, const struct where *w, const char *key_id,
	 const struct node_key *nk, struct sp_loc_msg *m)
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
	m->ttl_ms = remaining_ms(loc, w);
	m->cred_expires = wall_ms() / 1000 + SP_LOCATOR_CRED_AHEAD_S;
	for (i = 0; i < SP_LOC_METHODS; i++) {
		int n = sp_locator_node_auth(nk->secret, nk->len, key_id, method_names[i], w->path,
					     w->path_len, m->cred_expires, m->cred[i],
					     sizeof(m->cred[i]));

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
	  const struct node_key *nk, const struct oname *on, const struct where *w)
{
	struct sp_loc_msg *t = &loc->tmpl;
	struct sp_dp *dp = loc->dp;
	unsigned int i, sent = 0;
	size_t len;

	if (dp == NULL || w->status != SP_LOC_FOUND || remaining_ms(loc, w) == 0)
		return 0;
	if (canonical_name(on, t->name, &len) != 0)
		return 0;
	memset(t, 0, offsetof(struct sp_loc_msg, name));
	t->name_len = (uint16_t)len;
	t->kind = SP_LOC_PREFETCH;
	t->op = SP_LOC_OP_READ;
	t->svc_slot = slot;
	t->svc_epoch = be->epoch;
	fill_msg(loc, w, be->node_key_id, nk, t);
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
	json_object_set_new(doc, "ttl_s", json_real((double)remaining_ms(loc, w) / 1000.0));
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
	fill_msg(loc, &lk->w, lk->be.node_key_id, lk->nk, t);
	if (t->status != SP_LOC_FOUND) {
		free(v);
		return false;
	}
	inet_ntop(AF_INET, &lk->w.node_ip[0], ip, sizeof(ip));
	snprintf(v->node, sizeof(v->node), "%s:%u", ip, ntohs(lk->w.node_port[0]));
	v->loc = loc;
	v->req = wt->req;
	v->doc = wt->doc;
	if (call_start(loc, v->node, EVHTTP_REQ_HEAD, lk->w.path, NULL, t->cred[SP_LOC_HEAD], false,
		       on_verify, v, NULL) != 0) {
		free(v);
		return false;
	}
	return true;
}

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
			fill_msg(loc, w, lk->be.node_key_id, lk->nk, wt->msg);
		else
			fill_msg(loc, w, "", NULL, wt->msg);
		to_worker(loc, wt->msg);
		break;
	case W_API:
		if (w->status == SP_LOC_FAILED && w->why == EV_FAILED_STOPPING) {
			sp_api_send_error(wt->req, 503, "shutting_down", NULL,
					  "shortpathd is stopping");
			json_decref(wt->doc);
			break;
		}
		where_json(loc, w, lk, wt->doc);
		if (wt->verify && lk != NULL && w->status == SP_LOC_FOUND &&
		    verify_start(loc, wt, lk))
			break; /* answered by on_verify */
		sp_api_send_json(wt->req, 200, wt->doc);
		break;
	case W_REFRESH: /* lookup_finish broadcasts once for all of them */
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

	if (make_oname(j->bucket, j->blen, key, klen, &on) != 0)
		return;
	w->status = SP_LOC_FOUND;
	if (!w->from_redis)
		store(j->loc, j->be.name, SP_LOC_OP_READ, &on, w);
	j->found++;
	j->sent += broadcast(j->loc, j->slot, &j->be, j->nk, &on, w);
}

static void
on_batch(void *arg, int code, enum loc_event why, struct evbuffer *body)
{
	struct pjob *j = arg;
	json_t *o = NULL, *x;
	size_t i;

	j->call = NULL;
	if (j->finished) {
		pjob_finish(j, 0, NULL, NULL);
		return;
	}
	if (code == 200)
		o = json_loadb((const char *)evbuffer_pullup(body, -1), evbuffer_get_length(body),
			       0, NULL);
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
	    call_start(j->loc, j->be.storage_manager, EVHTTP_REQ_POST, "/locate/batch", text, NULL,
		       true, on_batch, j, &j->call) != 0) {
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
		 parse_cached(reply->str, reply->len, &w) == 0 && remaining_ms(j->loc, &w) > 0) {
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
		if (make_oname(j->bucket, j->blen, pk->key, pk->klen, &on) != 0) {
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
	json_t *o = NULL, *x;
	size_t i;

	j->call = NULL;
	if (j->finished) {
		pjob_finish(j, 0, NULL, NULL);
		return;
	}
	if (code == 200)
		o = json_loadb((const char *)evbuffer_pullup(body, -1), evbuffer_get_length(body),
			       0, NULL);
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
	 const struct node_key *nk, const char *bucket, size_t blen)
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

static void
listing_start(struct sp_locator *loc, uint16_t slot, const struct sp_services_backend *be,
	      const struct node_key *nk, const struct oname *on, const char *q, size_t qlen,
	      int64_t max, struct evhttp_request *req)
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
	    call_start(loc, be->storage_manager, EVHTTP_REQ_GET, j->list_query, NULL, NULL, true,
		       on_list, j, &j->call) != 0) {
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
	if (uri == NULL || call_start(loc, lk->be.storage_manager, EVHTTP_REQ_GET, uri, NULL, NULL,
				      true, on_locate, lk, &lk->call) != 0)
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
		   (left = remaining_ms(loc, &lk->w)) > 0 &&
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
		prefetch |= wt->kind != W_REFRESH;
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
static void
resolve(struct sp_locator *loc, uint16_t slot, uint8_t op, const char *name, size_t name_len,
	bool fresh_only, struct waiter *wt)
{
	struct sp_services_backend be;
	const struct node_key *nk;
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
	nk = key_for(loc, be.node_key_id);
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
	const struct node_key *nk;
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

				fill_msg(loc, &w, "", NULL, m);
				to_worker(loc, m);
			} else {
				rte_mempool_put(dp->loc_pool, m);
			}
			return;
		}
		wt->kind = m->kind == SP_LOC_RESOLVE ? W_WORKER : W_REFRESH;
		wt->msg = m->kind == SP_LOC_RESOLVE ? m : NULL;
		refresh = m->kind == SP_LOC_REFRESH; /* a RESOLVE may be the worker's again below */
		resolve(loc, m->svc_slot, m->op, m->name, RTE_MIN(m->name_len, SP_LOC_NAME_MAX),
			refresh, wt);
		if (refresh)
			rte_mempool_put(dp->loc_pool, m); /* resolve copied the name */
		return;
	case SP_LOC_LISTING:
		count(loc, EV_REQ_LISTING);
		if (loc->cfg->loc_prefetch_listing > 0 &&
		    parse_name(m->name, RTE_MIN(m->name_len, SP_LOC_NAME_MAX), false, &on) == 0 &&
		    sp_services_backend(loc->ctl->services, m->svc_slot, &be) == 0 &&
		    (nk = key_for(loc, be.node_key_id)) != NULL)
			listing_start(loc, m->svc_slot, &be, nk, &on, m->query,
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
	resolve(loc, (uint16_t)slot, op, name, strlen(name), false, wt);
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
	const struct node_key *nk = key_for(loc, be->node_key_id);
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
	    make_oname(bucket, strlen(bucket), "-", 1, &on) != 0 || strchr(bucket, '/') != NULL) {
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
	listing_start(loc, (uint16_t)slot, be, nk, &on, q ? q : "", q ? strlen(q) : 0,
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
	json_object_set_new(o, "node_keys", json_integer(loc->n_keys));
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
	rte_tel_data_add_dict_u64(d, "node_keys", loc->n_keys);
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
		loc->inflight, loc->n_keys);
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
		rc = keys_read(ctl->cfg->node_keys, loc->keys, &loc->n_keys, err, errlen);
		if (rc != 0) {
			free(loc);
			return rc;
		}
		SP_LOG(INFO, "locators: %u node key(s) from %s", loc->n_keys, ctl->cfg->node_keys);
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
	struct dropjob *d;
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
	LIST_FOREACH(d, &loc->drops, next)
	{
		if (!d->finished)
			sp_api_send_error(d->req, 503, "shutting_down", NULL,
					  "shortpathd is stopping");
		d->finished = true; /* the Redis callbacks free it */
	}
	loc->dp = NULL;
}

void
sp_locator_destroy(struct sp_locator *loc)
{
	struct peer *p;
	struct pjob *j;
	struct dropjob *d;
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
	while ((d = LIST_FIRST(&loc->drops)) != NULL)
		drop_free(d);
	while ((p = LIST_FIRST(&loc->peers)) != NULL) {
		LIST_REMOVE(p, next);
		for (i = 0; i < PEER_CONNS; i++)
			if (p->conn[i] != NULL)
				evhttp_connection_free(p->conn[i]);
		free(p);
	}
	explicit_bzero(loc->keys, sizeof(loc->keys));
	explicit_bzero(&loc->tmpl, sizeof(loc->tmpl));
	free(loc);
}
