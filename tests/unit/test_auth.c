/* Unit tests of control/sp_auth.c's verification (sp_auth_verify_msg, standalone: no EAL, no
 * Redis): outcomes, the S3 error documents, verdicts, policies, generations, counters. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sp_auth.h"
#include "sp_auth_ctl.h"
#include "sp_http.h"
#include "sp_policy.h"
#include "sp_sigv4.h"

#define SERVICE "web"
#define REGION "us-east-1"
#define AK "AKIDTEST"
#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define DATA_MAX 16384
#define PLACEHOLDER "0000000000000000000000000000000000000000000000000000000000000000"
#define TTL_S 300

struct fixture {
	struct sp_auth *a;
	struct sp_auth_msg *m;
};

static struct sp_auth_msg *
msg_new(void)
{
	struct sp_auth_msg *m = calloc(1, sizeof(*m) + DATA_MAX);

	assert_non_null(m);
	m->mode = SP_AUTH_MODE_EVERY;
	m->port_idx = 1;
	m->vm_ip = 0x0100000a;
	return m;
}

static int
setup(void **state, enum sp_auth_mode mode)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(sp_auth_create_standalone(SERVICE, REGION, mode, TTL_S, &f->a), 0);
	assert_int_equal(sp_auth_cred_set_local(f->a, SERVICE, AK, SECRET, strlen(SECRET), NULL),
			 0);
	f->m = msg_new();
	f->m->mode = (uint8_t)mode;
	*state = f;
	return 0;
}

static int
setup_every(void **state)
{
	return setup(state, SP_AUTH_MODE_EVERY);
}

static int
setup_first(void **state)
{
	return setup(state, SP_AUTH_MODE_FIRST);
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	sp_auth_destroy(f->a);
	free(f->m);
	free(f);
	return 0;
}

static void
amz_date(time_t t, char date[17])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(date, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* Sign m's head (a 64-zero placeholder after "Signature=") with secret, for region. */
static void
sign(struct sp_auth_msg *m, const char *secret, const char *region, time_t now)
{
	static char creq[32768];
	struct sp_sigv4_auth auth;
	struct sp_http_req req;
	char sts[512], *at;
	uint8_t key[32], mac[32];
	unsigned int maclen = 0, i;
	int n;

	sp_http_req_init(&req);
	assert_int_equal(sp_http_parse_request(m->data, m->head_len, &req, NULL), m->head_len);
	assert_int_equal(
		sp_sigv4_parse_auth(m->data, m->head_len, &req, region, (int64_t)now, &auth), 0);
	n = sp_sigv4_canonical_request(m->data, m->head_len, &req, &auth, creq, sizeof(creq));
	assert_true(n > 0);
	n = sp_sigv4_string_to_sign(&auth, creq, (size_t)n, sts, sizeof(sts));
	assert_true(n > 0);
	assert_int_equal(sp_sigv4_signing_key(secret, strlen(secret), auth.scope_date, auth.region,
					      auth.service, key),
			 0);
	assert_non_null(HMAC(EVP_sha256(), key, sizeof(key), (const uint8_t *)sts, (size_t)n, mac,
			     &maclen));
	at = strstr(m->data, "Signature=" PLACEHOLDER);
	assert_non_null(at);
	at += strlen("Signature=");
	for (i = 0; i < 32; i++) {
		at[2 * i] = "0123456789abcdef"[mac[i] >> 4];
		at[2 * i + 1] = "0123456789abcdef"[mac[i] & 15];
	}
}

/* A header-signed request: method, path, extra header lines ("" or "Name: v\r\n"), payload hash
 * and SignedHeaders as given; the body after the head. Signed at t (not signed if secret NULL). */
static void
make(struct sp_auth_msg *m, const char *method, const char *path, const char *extra,
     const char *payload, const char *signed_headers, const char *body, size_t body_len,
     const char *ak, const char *secret, const char *region, time_t t, time_t now)
{
	char d[17];
	int n;

	amz_date(t, d);
	n = snprintf(m->data, DATA_MAX,
		     "%s %s HTTP/1.1\r\n"
		     "Host: 10.0.0.10\r\n"
		     "%s"
		     "X-Amz-Date: %s\r\n"
		     "X-Amz-Content-SHA256: %s\r\n"
		     "Authorization: AWS4-HMAC-SHA256 Credential=%s/%.8s/%s/s3/aws4_request, "
		     "SignedHeaders=%s, Signature=" PLACEHOLDER "\r\n"
		     "\r\n",
		     method, path, extra, d, payload, ak, d, region, signed_headers);
	assert_true(n > 0 && n + body_len < DATA_MAX);
	m->head_len = (uint32_t)n;
	memcpy(m->data + n, body, body_len);
	m->body_len = (uint32_t)body_len;
	if (secret != NULL)
		sign(m, secret, region, now);
}

static void
make_get(struct sp_auth_msg *m, const char *path, const char *secret, time_t t)
{
	make(m, "GET", path, "", SP_SIGV4_UNSIGNED, "host;x-amz-content-sha256;x-amz-date", "", 0,
	     AK, secret, REGION, t, t); /* signed as a client with that clock would */
}

static void
sha_hex(const char *p, size_t n, char out[65])
{
	uint8_t sha[32];
	unsigned int i;

	EVP_Digest(p, n, sha, NULL, EVP_sha256(), NULL);
	for (i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", sha[i]);
}

static void
make_put(struct sp_auth_msg *m, const char *path, const char *body)
{
	char hex[65], cl[64];

	sha_hex(body, strlen(body), hex);
	snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", strlen(body));
	make(m, "PUT", path, cl, hex, "content-length;host;x-amz-content-sha256;x-amz-date", body,
	     strlen(body), AK, SECRET, REGION, time(NULL), time(NULL));
}

/* The body of m's reply (after the head), NUL-terminated in place. */
static const char *
reply_body(struct sp_auth_msg *m)
{
	const char *b;

	assert_true(m->reply_len > 0 && m->reply_len < sizeof(m->reply));
	m->reply[m->reply_len] = '\0';
	b = strstr(m->reply, "\r\n\r\n");
	assert_non_null(b);
	return b + 4;
}

static void
assert_refused(struct sp_auth_msg *m, int st, const char *status_line, const char *code)
{
	char want[128];

	assert_int_equal(st, SP_AUTH_REFUSED);
	assert_int_equal(m->status, SP_AUTH_REFUSED);
	reply_body(m);
	if (strncmp(m->reply, status_line, strlen(status_line)) != 0)
		fail_msg("reply starts %.40s, want %s", m->reply, status_line);
	snprintf(want, sizeof(want), "<Error><Code>%s</Code>", code);
	if (strstr(m->reply, want) == NULL)
		fail_msg("no %s in %s", want, m->reply);
}

static uint64_t
stat_of(struct sp_auth *a, const char *k1, const char *k2)
{
	json_t *o = sp_auth_stats_json(a), *v = json_object_get(o, k1);
	uint64_t r;

	if (k2 != NULL)
		v = json_object_get(v, k2);
	assert_true(json_is_integer(v));
	r = (uint64_t)json_integer_value(v);
	json_decref(o);
	return r;
}

/* ---- outcomes ----------------------------------------------------------------------------- */

static void
test_ok_every(void **state)
{
	struct fixture *f = *state;
	struct sp_auth_msg *m = f->m;

	make_get(m, "/data/key", SECRET, time(NULL));
	assert_int_equal(sp_auth_verify_msg(f->a, m), SP_AUTH_OK);
	assert_int_equal(m->status, SP_AUTH_OK);
	assert_int_equal(m->verdict, 0); /* every-request: no verdict */
	assert_int_equal(m->error, SP_SIGV4_ERR_NONE);
	assert_int_equal(m->ak_len, strlen(AK));
	assert_string_equal(m->access_key, AK);
	assert_int_equal(m->reply_len, 0);
	assert_true(m->verify_ns > 0);
	assert_int_equal(m->policy.all_buckets, 1);
	assert_int_equal(m->policy.actions, SP_POLICY_ALL_ACTIONS);
	assert_int_equal(stat_of(f->a, "punts", NULL), 1);
	assert_int_equal(stat_of(f->a, "ok", NULL), 1);
	assert_int_equal(stat_of(f->a, "verify", "count"), 1);
	assert_int_equal(stat_of(f->a, "signing_keys", "derived"), 1);
	/* the second one uses the cached signing key */
	assert_int_equal(sp_auth_verify_msg(f->a, m), SP_AUTH_OK);
	assert_int_equal(stat_of(f->a, "signing_keys", "cached"), 1);
	assert_int_equal(stat_of(f->a, "verdicts", NULL), 0);
}

static void
test_ok_first(void **state)
{
	struct fixture *f = *state;
	struct sp_auth_msg *m = f->m;

	make_get(m, "/data/key", SECRET, time(NULL));
	assert_int_equal(sp_auth_verify_msg(f->a, m), SP_AUTH_OK);
	assert_int_equal(m->verdict, 1);
	assert_int_equal(m->ttl_ms, TTL_S * 1000);
	assert_int_equal(stat_of(f->a, "verdicts", NULL), 1);
	/* a presigned GET too (a week's validity, made yesterday: another signing key) */
	{
		time_t now = time(NULL), t = now - 86400;
		char d[17];
		int n;

		amz_date(t, d);
		n = snprintf(m->data, DATA_MAX,
			     "GET /data/key?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" AK
			     "%%2F%.8s%%2F" REGION "%%2Fs3%%2Faws4_request&X-Amz-Date=%s&"
			     "X-Amz-Expires=604800&X-Amz-SignedHeaders=host&X-Amz-Signature="
			     "" PLACEHOLDER " HTTP/1.1\r\nHost: 10.0.0.10\r\n\r\n",
			     d, d);
		m->head_len = (uint32_t)n;
		m->body_len = 0;
		sign(m, SECRET, REGION, now);
		assert_int_equal(sp_auth_verify_msg(f->a, m), SP_AUTH_OK);
		assert_int_equal(m->verdict, 1);
		assert_int_equal(stat_of(f->a, "signing_keys", "derived"), 2);
	}
}

static void
test_unknown_key(void **state)
{
	struct fixture *f = *state;
	struct sp_auth_msg *m = f->m;
	const char *body;

	make(m, "GET", "/data/key", "", SP_SIGV4_UNSIGNED, "host;x-amz-content-sha256;x-amz-date",
	     "", 0, "AKIDNOBODY", SECRET, REGION, time(NULL), time(NULL));
	assert_refused(m, sp_auth_verify_msg(f->a, m), "HTTP/1.1 403 Forbidden\r\n",
		       "InvalidAccessKeyId");
	assert_int_equal(m->error, SP_SIGV4_ERR_UNKNOWN_ACCESS_KEY);
	assert_string_equal(m->access_key, "AKIDNOBODY");
	assert_int_equal(m->verdict, 0);
	body = reply_body(m);
	assert_non_null(strstr(body,
			       "<Message>The AWS Access Key Id you provided does not exist in "
			       "our records.</Message><Resource>/data/key</Resource>"));
	assert_non_null(strstr(body, "<AWSAccessKeyId>AKIDNOBODY</AWSAccessKeyId></Error>"));
	assert_int_equal(stat_of(f->a, "refused_by", "unknown_access_key"), 1);
	/* a credential of another service is no credential of this one */
	assert_int_equal(
		sp_auth_cred_set_local(f->a, "other", "AKIDNOBODY", SECRET, strlen(SECRET), NULL),
		0);
	assert_int_equal(sp_auth_verify_msg(f->a, m), SP_AUTH_REFUSED);
	assert_int_equal(m->error, SP_SIGV4_ERR_UNKNOWN_ACCESS_KEY);
}

static void
test_wrong_secret(void **state)
{
	struct fixture *f = *state;
	struct sp_auth_msg *m = f->m;
	const char *body;

	make_get(m, "/data/key", "not the secret", time(NULL));
	assert_refused(m, sp_auth_verify_msg(f->a, m), "HTTP/1.1 403 Forbidden\r\n",
		       "SignatureDoesNotMatch");
	assert_int_equal(m->error, SP_SIGV4_ERR_SIGNATURE_MISMATCH);
	body = reply_body(m);
	/* the lab's extra elements, in its order */
	assert_non_null(strstr(body, "</RequestId><AWSAccessKeyId>" AK "</AWSAccessKeyId>"
				     "<StringToSign>AWS4-HMAC-SHA256\n"));
	assert_non_null(strstr(body, "</StringToSign><SignatureProvided>"));
	assert_non_null(strstr(body, "</SignatureProvided><CanonicalRequest>GET\n/data/key\n\n"
				     "host:10.0.0.10\n"));
	assert_non_null(strstr(body, "UNSIGNED-PAYLOAD</CanonicalRequest></Error>"));
	assert_int_equal(stat_of(f->a, "refused_by", "signature_mismatch"), 1);
	assert_int_equal(stat_of(f->a, "refused", NULL), 1);
}

/* A request too big for every extra element: the reply keeps what fits, in order. */
static void
test_wrong_secret_big(void **state)
{
	struct fixture *f = *state;
	struct sp_auth_msg *m = f->m;
	char extra[1700];
	const char *body;

	memset(extra, 'v', sizeof(extra));
	memcpy(extra, "X-Pad: ", 7);
	memcpy(extra + sizeof(extra) - 3, "\r\n", 3);
	make(m, "GET", "/data/key", extra, SP_SIGV4_UNSIGNED,
	     "host;x-amz-content-sha256;x-amz-date;x-pad", "", 0, AK, "wrong", REGION, time(NULL),
	     time(NULL));
	assert_refused(m, sp_auth_verify_msg(f->a, m), "HTTP/1.1 403 Forbidden\r\n",
		       "SignatureDoesNotMatch");
	assert_true(m->reply_len <= SP_AUTH_REPLY_MAX);
	body = reply_body(m);
	assert_non_null(strstr(body, "<AWSAccessKeyId>" AK "</AWSAccessKeyId><StringToSign>"));
	assert_null(strstr(body, "<CanonicalRequest>"));
}

static void
test_skewed(void **state)
{
	struct fixture *f = *state;
	struct sp_auth_msg *m = f->m;
	const char *body;
	char d[17], want[128];
	time_t t = time(NULL) - 3600;

	make_get(m, "/data/key", SECRET, t);
	amz_date(t, d);
	assert_refused(m, sp_auth_verify_msg(f->a, m), "HTTP/1.1 403 Forbidden\r\n",
		       "RequestTimeTooSkewed");
	assert_int_equal(m->error, SP_SIGV4_ERR_SKEWED);
	body = reply_body(m);
	snprintf(want, sizeof(want), "</RequestId><RequestTime>%s</RequestTime><ServerTime>", d);
	assert_non_null(strstr(body, want));
	assert_non_null(strstr(body, "</ServerTime><MaxAllowedSkewMilliseconds>900000"
				     "</MaxAllowedSkewMilliseconds></Error>"));
	assert_int_equal(stat_of(f->a, "refused_by", "skewed"), 1);
}

static void
test_expired(void **state)
{
	struct fixture *f = *state;
	struct sp_auth_msg *m = f->m;
	time_t t = time(NULL) - 7200;
	const char *body;
	char d[17];
	int n;

	amz_date(t, d);
	n = snprintf(m->data, DATA_MAX,
		     "HEAD /data/key?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" AK
		     "%%2F%.8s%%2F" REGION "%%2Fs3%%2Faws4_request&X-Amz-Date=%s&X-Amz-Expires=60&"
		     "X-Amz-SignedHeaders=host&X-Amz-Signature=" PLACEHOLDER " HTTP/1.1\r\n"
		     "Host: 10.0.0.10\r\n\r\n",
		     d, d);
	m->head_len = (uint32_t)n;
	assert_int_equal(sp_auth_verify_msg(f->a, m), SP_AUTH_REFUSED);
	assert_int_equal(m->error, SP_SIGV4_ERR_EXPIRED);
	/* HEAD: the head only, its Content-Length as for GET */
	body = reply_body(m);
	assert_true(strncmp(m->reply, "HTTP/1.1 403 Forbidden\r\n", 24) == 0);
	assert_non_null(strstr(m->reply, "\r\nContent-Length: "));
	assert_null(strstr(m->reply, "\r\nContent-Length: 0\r\n"));
	assert_string_equal(body, "");
	assert_int_equal(stat_of(f->a, "refused_by", "expired"), 1);
	/* the same as GET: the lab's message and elements */
	memcpy(m->data, "GET ", 4);
	memmove(m->data + 4, m->data + 5, m->head_len - 5);
	m->head_len--;
	assert_refused(m, sp_auth_verify_msg(f->a, m), "HTTP/1.1 403 Forbidden\r\n",
		       "AccessDenied");
	body = reply_body(m);
	assert_non_null(strstr(body, "<Message>Request has expired</Message>"));
	assert_non_null(strstr(body, "</RequestId><Expires>"));
	assert_non_null(strstr(body, "</Expires><ServerTime>"));
}

static void
test_wrong_region(void **state)
{
	struct fixture *f = *state;
	struct sp_auth_msg *m = f->m;

	make(m, "GET", "/data/key", "", SP_SIGV4_UNSIGNED, "host;x-amz-content-sha256;x-amz-date",
	     "", 0, AK, NULL, "eu-west-1", time(NULL), time(NULL));
	assert_refused(m, sp_auth_verify_msg(f->a, m), "HTTP/1.1 400 Bad Request\r\n",
		       "AuthorizationHeaderMalformed");
	assert_int_equal(m->error, SP_SIGV4_ERR_WRONG_REGION);
	assert_string_equal(m->access_key, AK); /* known as soon as the credential was split */
}

static void
test_signed_body(void **state)
{
	struct fixture *f = *state;
	struct sp_auth_msg *m = f->m;
	const char *body, *data = "hello, storage";
	char hex[65], want[200];

	make_put(m, "/data/new", data);
	assert_int_equal(sp_auth_verify_msg(f->a, m), SP_AUTH_OK);
	/* the body changed on the way: refused with both hashes */
	m->data[m->head_len] = 'H';
	assert_refused(m, sp_auth_verify_msg(f->a, m), "HTTP/1.1 400 Bad Request\r\n",
		       "XAmzContentSHA256Mismatch");
	assert_int_equal(m->error, SP_SIGV4_ERR_CONTENT_SHA256_MISMATCH);
	body = reply_body(m);
	sha_hex(data, strlen(data), hex);
	snprintf(want, sizeof(want),
		 "<ClientComputedContentSHA256>%s</ClientComputedContentSHA256>", hex);
	assert_non_null(strstr(body, want));
	sha_hex("Hello, storage", strlen(data), hex);
	snprintf(want, sizeof(want),
		 "<S3ComputedContentSHA256>%s</S3ComputedContentSHA256></Error>", hex);
	assert_non_null(strstr(body, want));
	/* a body the worker could not hold: the signature only (the service checks the body) */
	m->body_unverified = 1;
	m->body_len = 0;
	assert_int_equal(sp_auth_verify_msg(f->a, m), SP_AUTH_OK);
	assert_int_equal(stat_of(f->a, "ok_signature_only", NULL), 1);
	m->body_unverified = 0;
	/* a body that is not all of it: not a message the worker should send */
	m->body_len = 3;
	assert_int_equal(sp_auth_verify_msg(f->a, m), SP_AUTH_UNDECIDED);
	assert_int_equal(stat_of(f->a, "undecided_by", "bad_message"), 1);
}

static void
test_policy(void **state)
{
	struct fixture *f = *state;
	struct sp_auth_msg *m = f->m;
	struct sp_policy p;
	const char *why, *body;
	uint32_t gen;

	memset(&p, 0, sizeof(p));
	p.actions = (uint16_t)(1u << SP_POLICY_ACT_GET_OBJECT);
	assert_int_equal(sp_policy_add_bucket(&p, "data", &why), 0);
	assert_int_equal(sp_auth_cred_set_local(f->a, SERVICE, AK, SECRET, strlen(SECRET), &p), 0);
	make_get(m, "/data/key", SECRET, time(NULL));
	assert_int_equal(sp_auth_verify_msg(f->a, m), SP_AUTH_OK);
	assert_memory_equal(&m->policy, &p, sizeof(p)); /* the worker checks it under a verdict */
	gen = m->cred_gen;
	/* another bucket: authentic, but forbidden, and a verdict all the same (mode first) */
	make_get(m, "/other/key", SECRET, time(NULL));
	assert_refused(m, sp_auth_verify_msg(f->a, m), "HTTP/1.1 403 Forbidden\r\n",
		       "AccessDenied");
	assert_int_equal(m->error, SP_SIGV4_ERR_NONE);
	assert_int_equal(m->verdict, 1);
	assert_int_equal(m->cred_gen, gen);
	body = reply_body(m);
	assert_non_null(strstr(body, "<Code>AccessDenied</Code><Message>Access Denied</Message>"
				     "<Resource>/other/key</Resource>"));
	/* another action */
	make(m, "DELETE", "/data/key", "", SP_SIGV4_UNSIGNED,
	     "host;x-amz-content-sha256;x-amz-date", "", 0, AK, SECRET, REGION, time(NULL),
	     time(NULL));
	assert_refused(m, sp_auth_verify_msg(f->a, m), "HTTP/1.1 403 Forbidden\r\n",
		       "AccessDenied");
	assert_int_equal(stat_of(f->a, "refused_by", "access_denied"), 2);
	/* a change of the credential moves its generation on */
	assert_int_equal(sp_auth_cred_set_local(f->a, SERVICE, AK, SECRET, strlen(SECRET), NULL),
			 0);
	make_get(m, "/other/key", SECRET, time(NULL));
	assert_int_equal(sp_auth_verify_msg(f->a, m), SP_AUTH_OK);
	assert_int_equal(m->cred_gen, gen + 1);
}

static void
test_resource(void **state)
{
	struct fixture *f = *state;
	struct sp_auth_msg *m = f->m;
	const char *body;

	/* %XX decoded, bytes that are not UTF-8 as U+FFFD, XML-escaped; "//" folded (http.server)
	 */
	make(m, "GET", "//data/a%20b%3C%C3%A9%C3%28%FF", "", SP_SIGV4_UNSIGNED,
	     "host;x-amz-content-sha256;x-amz-date", "", 0, "AKIDNOBODY", SECRET, REGION,
	     time(NULL), time(NULL));
	assert_int_equal(sp_auth_verify_msg(f->a, m), SP_AUTH_REFUSED);
	body = reply_body(m);
	assert_non_null(strstr(body, "<Resource>/data/a b&lt;\xc3\xa9\xef\xbf\xbd(\xef\xbf\xbd"
				     "</Resource>"));
}

static void
test_undecided(void **state)
{
	struct fixture *f = *state;
	struct sp_auth_msg *m = f->m;

	make_get(m, "/data/key", SECRET, time(NULL));
	m->svc_slot = 7; /* no service there */
	assert_int_equal(sp_auth_verify_msg(f->a, m), SP_AUTH_UNDECIDED);
	assert_int_equal(m->reply_len, 0);
	assert_int_equal(stat_of(f->a, "undecided_by", "no_service"), 1);
	m->svc_slot = 0;
	m->mode = SP_AUTH_MODE_FIRST; /* the service is every-request now */
	assert_int_equal(sp_auth_verify_msg(f->a, m), SP_AUTH_UNDECIDED);
	assert_int_equal(stat_of(f->a, "undecided_by", "service_changed"), 1);
	m->mode = SP_AUTH_MODE_NONE; /* nothing to verify */
	assert_int_equal(sp_auth_verify_msg(f->a, m), SP_AUTH_UNDECIDED);
	m->mode = SP_AUTH_MODE_EVERY;
	m->head_len = 0;
	assert_int_equal(sp_auth_verify_msg(f->a, m), SP_AUTH_UNDECIDED);
	m->head_len = 10; /* not a whole head */
	assert_int_equal(sp_auth_verify_msg(f->a, m), SP_AUTH_UNDECIDED);
	assert_int_equal(stat_of(f->a, "undecided_by", "bad_message"), 3);
	assert_int_equal(stat_of(f->a, "undecided", NULL), 5);
	assert_int_equal(stat_of(f->a, "ok", NULL) + stat_of(f->a, "refused", NULL), 0);
}

static void
test_local_credentials(void **state)
{
	struct fixture *f = *state;
	char big[300];

	memset(big, 'k', sizeof(big));
	assert_int_equal(sp_auth_cred_set_local(f->a, SERVICE, "a b", "s", 1, NULL), -EINVAL);
	assert_int_equal(sp_auth_cred_set_local(f->a, SERVICE, "a/b", "s", 1, NULL), -EINVAL);
	assert_int_equal(sp_auth_cred_set_local(f->a, SERVICE, "", "s", 1, NULL), -EINVAL);
	assert_int_equal(sp_auth_cred_set_local(f->a, SERVICE, AK, "", 0, NULL), -EINVAL);
	assert_int_equal(sp_auth_cred_set_local(f->a, SERVICE, AK, big, 257, NULL), -EINVAL);
	assert_int_equal(sp_auth_cred_set_local(f->a, SERVICE, AK, "a\nb", 3, NULL), -EINVAL);
	assert_int_equal(sp_auth_cred_set_local(f->a, "Bad", AK, "s", 1, NULL), -EINVAL);
	assert_int_equal(sp_auth_cred_set_local(f->a, SERVICE, AK, big, 256, NULL), 0);
	assert_int_equal(stat_of(f->a, "credentials", NULL), 1);
	assert_int_equal(sp_auth_cred_set_local(f->a, SERVICE, "AK2", "s", 1, NULL), 0);
	assert_int_equal(stat_of(f->a, "credentials", NULL), 2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ok_every, setup_every, teardown),
		cmocka_unit_test_setup_teardown(test_ok_first, setup_first, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_key, setup_every, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_secret, setup_every, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_secret_big, setup_every, teardown),
		cmocka_unit_test_setup_teardown(test_skewed, setup_every, teardown),
		cmocka_unit_test_setup_teardown(test_expired, setup_every, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_region, setup_every, teardown),
		cmocka_unit_test_setup_teardown(test_signed_body, setup_every, teardown),
		cmocka_unit_test_setup_teardown(test_policy, setup_first, teardown),
		cmocka_unit_test_setup_teardown(test_resource, setup_every, teardown),
		cmocka_unit_test_setup_teardown(test_undecided, setup_every, teardown),
		cmocka_unit_test_setup_teardown(test_local_credentials, setup_every, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
