/* Verifications per second of the control thread's authenticator (sp_auth_verify_msg), one
 * thread, each case next to a reference measured in the same run (no EAL, no Redis). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#include "sp_auth.h"
#include "sp_auth_ctl.h"
#include "sp_http.h"
#include "sp_s3err.h"
#include "sp_sigv4.h"

#define SERVICE "bench"
#define REGION "us-east-1"
#define AK "AKIDBENCHEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define BODY_LEN 4096
#define DATA_MAX (16384 + BODY_LEN)
#define PLACEHOLDER "0000000000000000000000000000000000000000000000000000000000000000"
#define BATCH 64 /* verifications between two clock reads */

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* defeats dead-code elimination of what is measured */
static volatile uint64_t sink;

/* One request as a worker punts it. */
struct req_case {
	const char *name;
	struct sp_auth_msg *m;
	uint8_t want;	       /* enum sp_auth_status */
	const char *want_code; /* REFUSED: the S3 code */
};

static struct sp_auth_msg *
msg_new(void)
{
	struct sp_auth_msg *m = calloc(1, sizeof(*m) + DATA_MAX);

	if (m != NULL) {
		m->svc_slot = 0;
		m->mode = SP_AUTH_MODE_EVERY;
		m->vm_ip = 0x0100000a;
	}
	return m;
}

static void
amz_date(time_t t, char date[17])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(date, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/*
 * Sign the head in m (head_len bytes, a 64-zero placeholder after "Signature=") with SECRET, as a
 * client would: the signature is not part of what it signs, so the placeholder is replaced.
 */
static int
sign(struct sp_auth_msg *m, time_t now)
{
	static char creq[65536];
	struct sp_sigv4_auth auth;
	struct sp_http_req req;
	char sts[512], *at;
	uint8_t key[32], mac[32];
	unsigned int maclen = 0, i;
	int n;

	sp_http_req_init(&req);
	if (sp_http_parse_request(m->data, m->head_len, &req, NULL) != (int)m->head_len ||
	    sp_sigv4_parse_auth(m->data, m->head_len, &req, REGION, (int64_t)now, &auth) != 0)
		return -EINVAL;
	n = sp_sigv4_canonical_request(m->data, m->head_len, &req, &auth, creq, sizeof(creq));
	if (n < 0)
		return -EINVAL;
	n = sp_sigv4_string_to_sign(&auth, creq, (size_t)n, sts, sizeof(sts));
	if (n < 0 ||
	    sp_sigv4_signing_key(SECRET, strlen(SECRET), auth.scope_date, auth.region, auth.service,
				 key) != 0 ||
	    HMAC(EVP_sha256(), key, sizeof(key), (const uint8_t *)sts, (size_t)n, mac, &maclen) ==
		    NULL)
		return -EIO;
	at = strstr(m->data, "Signature=" PLACEHOLDER);
	if (at == NULL || at > m->data + m->head_len)
		return -EINVAL;
	at += strlen("Signature=");
	for (i = 0; i < 32; i++) {
		at[2 * i] = "0123456789abcdef"[mac[i] >> 4];
		at[2 * i + 1] = "0123456789abcdef"[mac[i] & 15];
	}
	return 0;
}

static const char user_agent[] = "aws-cli/2.9.19 Python/3.11.2 Linux/6.1.0-13-amd64 "
				 "source/x86_64.debian.12 prompt/off command/s3api.get-object";

/* A header-signed GET, UNSIGNED-PAYLOAD. */
static int
make_get(struct sp_auth_msg *m, time_t now)
{
	char d[17];
	int n;

	amz_date(now, d);
	n = snprintf(m->data, DATA_MAX,
		     "GET /bench/object-0001 HTTP/1.1\r\n"
		     "Host: 10.0.0.10\r\n"
		     "Accept-Encoding: identity\r\n"
		     "User-Agent: %s\r\n"
		     "X-Amz-Date: %s\r\n"
		     "X-Amz-Content-SHA256: UNSIGNED-PAYLOAD\r\n"
		     "Authorization: AWS4-HMAC-SHA256 Credential=" AK "/%.8s/" REGION
		     "/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
		     "Signature=" PLACEHOLDER "\r\n"
		     "\r\n",
		     user_agent, d, d);
	m->head_len = (uint32_t)n;
	m->body_len = 0;
	return sign(m, now);
}

/* A header-signed PUT of BODY_LEN bytes with its SHA-256 signed (the whole body held). */
static int
make_put(struct sp_auth_msg *m, time_t now)
{
	uint8_t body[BODY_LEN], sha[32];
	char d[17], hex[65];
	unsigned int i;
	int n;

	for (i = 0; i < BODY_LEN; i++)
		body[i] = (uint8_t)(i * 131 + 7);
	EVP_Digest(body, sizeof(body), sha, NULL, EVP_sha256(), NULL);
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", sha[i]);
	amz_date(now, d);
	n = snprintf(m->data, DATA_MAX,
		     "PUT /bench/object-0002 HTTP/1.1\r\n"
		     "Host: 10.0.0.10\r\n"
		     "Accept-Encoding: identity\r\n"
		     "User-Agent: %s\r\n"
		     "Content-Length: %d\r\n"
		     "X-Amz-Date: %s\r\n"
		     "X-Amz-Content-SHA256: %s\r\n"
		     "Authorization: AWS4-HMAC-SHA256 Credential=" AK "/%.8s/" REGION
		     "/s3/aws4_request, SignedHeaders=content-length;host;x-amz-content-sha256;"
		     "x-amz-date, Signature=" PLACEHOLDER "\r\n"
		     "\r\n",
		     user_agent, BODY_LEN, d, hex, d);
	m->head_len = (uint32_t)n;
	memcpy(m->data + n, body, BODY_LEN);
	m->body_len = BODY_LEN;
	return sign(m, now);
}

/* A presigned GET made at t (valid for a week), verified at now. */
static int
make_presigned(struct sp_auth_msg *m, time_t t, time_t now)
{
	char d[17];
	int n;

	amz_date(t, d);
	n = snprintf(m->data, DATA_MAX,
		     "GET /bench/object-0003?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" AK
		     "%%2F%.8s%%2F" REGION
		     "%%2Fs3%%2Faws4_request&X-Amz-Date=%s&X-Amz-Expires=604800"
		     "&X-Amz-SignedHeaders=host&X-Amz-Signature=" PLACEHOLDER " HTTP/1.1\r\n"
		     "Host: 10.0.0.10\r\n"
		     "User-Agent: %s\r\n"
		     "\r\n",
		     d, d, user_agent);
	m->head_len = (uint32_t)n;
	m->body_len = 0;
	return sign(m, now);
}

/* Run fn until seconds have passed; ns per call. */
struct bench_ctx {
	struct sp_auth *a;
	struct sp_auth_msg *m[2]; /* alternated */
	uint64_t bad;
	uint8_t want;
	/* references */
	struct sp_http_req req;
	struct sp_sigv4_auth auth;
	uint8_t key[32];
	char sts[512];
	size_t sts_len;
	uint8_t body[BODY_LEN];
	EVP_MAC *mac;
	EVP_MAC_CTX *mac_ctx;
};

typedef void (*bench_fn)(struct bench_ctx *c, uint64_t i);

/* The references each figure is given against (ns per operation, 0: not measured yet). */
static double ref_hmac_ns, ref_sigv4_ns;

static double
run(struct bench_ctx *c, const char *what, bench_fn fn, double seconds)
{
	double t0 = now_s(), t = t0, ns;
	uint64_t ops = 0, i;

	while (t - t0 < seconds) {
		for (i = 0; i < BATCH; i++)
			fn(c, ops + i);
		ops += BATCH;
		t = now_s();
	}
	ns = (t - t0) * 1e9 / (double)ops;
	printf("  %-48s %9.0f /s %7.2f us", what, ops / (t - t0), ns / 1e3);
	if (ref_hmac_ns > 0)
		printf(" %6.1f HMACs", ns / ref_hmac_ns);
	if (ref_sigv4_ns > 0)
		printf(" %6.2fx sp_sigv4", ns / ref_sigv4_ns);
	printf("\n");
	return ns;
}

static void
fn_verify(struct bench_ctx *c, uint64_t i)
{
	struct sp_auth_msg *m = c->m[i & 1];

	if (sp_auth_verify_msg(c->a, m) != c->want)
		c->bad++;
	sink += m->verify_ns;
}

/* references */
static void
fn_hmac(struct bench_ctx *c, uint64_t i)
{
	uint8_t mac[32];
	size_t len;

	(void)i;
	if (EVP_MAC_init(c->mac_ctx, c->key, sizeof(c->key), NULL) != 1 ||
	    EVP_MAC_update(c->mac_ctx, (const uint8_t *)c->sts, c->sts_len) != 1 ||
	    EVP_MAC_final(c->mac_ctx, mac, &len, sizeof(mac)) != 1)
		c->bad++;
	sink += mac[0];
}

static void
fn_sigv4(struct bench_ctx *c, uint64_t i)
{
	struct sp_auth_msg *m = c->m[0];

	(void)i;
	sp_http_req_init(&c->req);
	if (sp_http_parse_request(m->data, m->head_len, &c->req, NULL) != (int)m->head_len ||
	    sp_sigv4_parse_auth(m->data, m->head_len, &c->req, REGION, (int64_t)time(NULL),
				&c->auth) != 0 ||
	    sp_sigv4_verify(m->data, m->head_len, &c->req, &c->auth, c->key) != 0)
		c->bad++;
}

static void
fn_key(struct bench_ctx *c, uint64_t i)
{
	(void)i;
	if (sp_sigv4_signing_key(SECRET, strlen(SECRET), c->auth.scope_date, REGION, "s3",
				 c->key) != 0)
		c->bad++;
	sink += c->key[0];
}

static void
fn_sha(struct bench_ctx *c, uint64_t i)
{
	uint8_t out[32];

	(void)i;
	EVP_Digest(c->body, sizeof(c->body), out, NULL, EVP_sha256(), NULL);
	sink += out[0];
}

/* One verification of each case, checked: the figures below are of the right outcome. */
static int
check(struct sp_auth *a, struct sp_auth_msg *m, uint8_t want, const char *code, const char *what)
{
	char head[64];
	int st = sp_auth_verify_msg(a, m);

	if (st != want) {
		fprintf(stderr, "auth_bench: %s: status %d, want %d (error %s)\n", what, st, want,
			sp_sigv4_error_name(m->error));
		return -EINVAL;
	}
	if (code != NULL) {
		snprintf(head, sizeof(head), "<Code>%s</Code>", code);
		if (m->reply_len == 0 || strstr(m->reply, head) == NULL) {
			fprintf(stderr, "auth_bench: %s: no %s in the reply\n", what, code);
			return -EINVAL;
		}
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static struct bench_ctx c;
	struct sp_auth_msg *get, *put, *pre, *pre_old, *wrong;
	OSSL_PARAM hp[2] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end()};
	double seconds = 1.0;
	time_t now = time(NULL);
	struct sp_auth *a;
	char *sig;
	int rc;

	if (argc > 2 || (argc == 2 && (seconds = strtod(argv[1], NULL)) <= 0)) {
		fprintf(stderr, "usage: %s [SECONDS per measurement, default 1]\n", argv[0]);
		return 2;
	}
	rc = sp_auth_create_standalone(SERVICE, REGION, SP_AUTH_MODE_EVERY, 300, &a);
	if (rc == 0)
		rc = sp_auth_cred_set_local(a, SERVICE, AK, SECRET, strlen(SECRET), NULL);
	get = msg_new();
	put = msg_new();
	pre = msg_new();
	pre_old = msg_new();
	wrong = msg_new();
	if (rc != 0 || get == NULL || put == NULL || pre == NULL || pre_old == NULL ||
	    wrong == NULL) {
		fprintf(stderr, "auth_bench: cannot set up: %s\n", strerror(rc ? -rc : ENOMEM));
		return 1;
	}
	rc = make_get(get, now);
	if (rc == 0)
		rc = make_put(put, now);
	if (rc == 0)
		rc = make_presigned(pre, now - 60, now);
	if (rc == 0) /* yesterday's scope: another signing key */
		rc = make_presigned(pre_old, now - 86400 - 60, now);
	if (rc == 0)
		rc = make_get(wrong, now);
	if (rc != 0) {
		fprintf(stderr, "auth_bench: cannot sign the requests: %s\n", strerror(-rc));
		return 1;
	}
	sig = strstr(wrong->data, "Signature=") + strlen("Signature=");
	sig[10] = sig[10] == 'a' ? 'b' : 'a'; /* one digit off */
	if (check(a, get, SP_AUTH_OK, NULL, "GET") != 0 ||
	    check(a, put, SP_AUTH_OK, NULL, "PUT") != 0 ||
	    check(a, pre, SP_AUTH_OK, NULL, "presigned GET") != 0 ||
	    check(a, pre_old, SP_AUTH_OK, NULL, "presigned GET of yesterday") != 0 ||
	    check(a, wrong, SP_AUTH_REFUSED, "SignatureDoesNotMatch", "wrong signature") != 0)
		return 1;
	put->data[put->head_len] ^= 1; /* a tampered body: refused, then restored */
	if (check(a, put, SP_AUTH_REFUSED, "XAmzContentSHA256Mismatch", "tampered body") != 0)
		return 1;
	put->data[put->head_len] ^= 1;
	if (check(a, put, SP_AUTH_OK, NULL, "PUT again") != 0)
		return 1;

	/* the references: one HMAC-SHA256 of the string to sign, lib/sp_sigv4 alone */
	sp_http_req_init(&c.req);
	sp_http_parse_request(get->data, get->head_len, &c.req, NULL);
	sp_sigv4_parse_auth(get->data, get->head_len, &c.req, REGION, (int64_t)now, &c.auth);
	sp_sigv4_signing_key(SECRET, strlen(SECRET), c.auth.scope_date, REGION, "s3", c.key);
	{
		static char creq[16384];
		int n = sp_sigv4_canonical_request(get->data, get->head_len, &c.req, &c.auth, creq,
						   sizeof(creq));

		n = n < 0 ? n
			  : sp_sigv4_string_to_sign(&c.auth, creq, (size_t)n, c.sts, sizeof(c.sts));
		c.sts_len = n < 0 ? 0 : (size_t)n;
	}
	memcpy(c.body, put->data + put->head_len, BODY_LEN);
	c.mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	c.mac_ctx = c.mac != NULL ? EVP_MAC_CTX_new(c.mac) : NULL;
	if (c.mac_ctx == NULL || EVP_MAC_CTX_set_params(c.mac_ctx, hp) != 1) {
		fprintf(stderr, "auth_bench: OpenSSL has no HMAC\n");
		return 1;
	}
	c.a = a;
	c.m[0] = c.m[1] = get;
	printf("sp_auth_verify_msg, one thread, %.2f s each (header GET: %u bytes; PUT: %u + %d "
	       "bytes; presigned GET: %u bytes):\n",
	       seconds, get->head_len, put->head_len, BODY_LEN, pre->head_len);
	/*
	 * the references: the one HMAC-SHA256 of the string to sign any verifier computes
	 * (OpenSSL's fastest interface, context reused), and lib/sp_sigv4 alone on the GET (HTTP
	 * parse, parse_auth, verify with the key given), which sp_auth_verify_msg wraps
	 */
	printf(" references:\n");
	ref_hmac_ns = run(&c, "one HMAC-SHA256 of the string to sign", fn_hmac, seconds);
	ref_sigv4_ns = run(&c, "lib/sp_sigv4 alone on the GET (key given)", fn_sigv4, seconds);
	run(&c, "signing key derivation (sp_sigv4_signing_key)", fn_key, seconds);
	run(&c, "SHA-256 of 4 KiB (EVP_Digest)", fn_sha, seconds);
	printf(" verifications:\n");
	c.want = SP_AUTH_OK;
	c.m[0] = c.m[1] = get;
	run(&c, "GET, header, UNSIGNED-PAYLOAD (cached key)", fn_verify, seconds);
	c.m[0] = c.m[1] = put;
	run(&c, "PUT, header, signed 4 KiB payload (cached key)", fn_verify, seconds);
	c.m[0] = c.m[1] = pre;
	run(&c, "GET, presigned (cached key)", fn_verify, seconds);
	c.m[0] = pre;
	c.m[1] = pre_old;
	run(&c, "GET, presigned, today/yesterday (new key each)", fn_verify, seconds);
	c.want = SP_AUTH_REFUSED;
	c.m[0] = c.m[1] = wrong;
	run(&c, "refused: SignatureDoesNotMatch (+ S3 error doc)", fn_verify, seconds);
	if (c.bad != 0) {
		fprintf(stderr, "auth_bench: %" PRIu64 " verifications had the wrong outcome\n",
			c.bad);
		return 1;
	}
	EVP_MAC_CTX_free(c.mac_ctx);
	EVP_MAC_free(c.mac);
	sp_auth_destroy(a);
	free(get);
	free(put);
	free(pre);
	free(pre_old);
	free(wrong);
	return 0;
}
