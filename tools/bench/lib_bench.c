/* Microbenchmark of the fast path's lib/ building blocks (SYN cookies, TCP options, checksums,
 * HTTP heads, SigV4 verification), each next to a reference measured in the same run. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <http_parser.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#include "sp_http.h"
#include "sp_sigv4.h"
#include "sp_siphash.h"
#include "sp_syncookie.h"
#include "sp_tcp.h"

#define N_TUPLES 4096 /* distinct inputs, cycled: the working set stays in L1/L2 like a burst's */

static uint64_t rng_state = 0x853c49e6748fea9bULL;

static uint64_t
rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dULL;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* defeats dead-code elimination of what is measured */
static volatile uint64_t sink;

static void
report(const char *what, uint64_t ops, double secs, double ref_ns)
{
	double ns = secs * 1e9 / (double)ops;

	if (ref_ns > 0)
		printf("  %-44s %8.2f Mops/s %8.1f ns/op   %5.2fx the reference\n", what,
		       ops / secs / 1e6, ns, ref_ns / ns);
	else
		printf("  %-44s %8.2f Mops/s %8.1f ns/op   (reference)\n", what, ops / secs / 1e6,
		       ns);
}

/* The same cookie arithmetic with OpenSSL's SipHash (EVP_MAC "SIPHASH", 8-byte output). */
struct ossl_sip {
	EVP_MAC_CTX *ctx;
	uint8_t key[16];
	OSSL_PARAM params[2];
	size_t size;
};

static uint64_t
ossl_siphash(struct ossl_sip *s, const void *data, size_t len)
{
	uint8_t out[8];
	size_t outl;
	uint64_t v = 0;

	EVP_MAC_init(s->ctx, s->key, 16, s->params);
	EVP_MAC_update(s->ctx, data, len);
	EVP_MAC_final(s->ctx, out, &outl, sizeof(out));
	for (int i = 7; i >= 0; i--)
		v = v << 8 | out[i];
	return v;
}

static uint32_t
ossl_cookie(struct ossl_sip *h1, struct ossl_sip *h2, const struct sp_syncookie_tuple *t,
	    uint32_t isn, uint32_t count)
{
	uint8_t in[16];
	uint32_t a, b;

	memcpy(in, t->src, 4);
	memcpy(in + 4, t->dst, 4);
	memcpy(in + 8, &t->sport, 2);
	memcpy(in + 10, &t->dport, 2);
	a = (uint32_t)ossl_siphash(h1, in, 12);
	memcpy(in + 12, &count, 4);
	b = (uint32_t)ossl_siphash(h2, in, 16);
	return a + isn + (count << 24) + ((b + 0x57) & 0xffffff);
}

static int
bench_cookies(double seconds)
{
	static struct sp_syncookie_tuple tuples[N_TUPLES];
	static uint32_t isns[N_TUPLES], cookies[N_TUPLES];
	struct sp_syncookie_keys keys;
	struct sp_syncookie_opts syn = {.mss = 1460, .wscale = 7, .sack_ok = true};
	struct ossl_sip h1 = {0}, h2 = {0};
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "SIPHASH", NULL);
	uint64_t ops, bad = 0;
	double t0, t, ref_ns;

	if (mac == NULL) {
		fprintf(stderr, "lib_bench: OpenSSL has no SIPHASH\n");
		return -ENOTSUP;
	}
	keys.h1 = (struct sp_siphash_key){rnd(), rnd()};
	keys.h2 = (struct sp_siphash_key){rnd(), rnd()};
	for (struct ossl_sip *s = &h1; s != NULL; s = s == &h1 ? &h2 : NULL) {
		s->ctx = EVP_MAC_CTX_new(mac);
		s->size = 8;
		s->params[0] = OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &s->size);
		s->params[1] = OSSL_PARAM_construct_end();
		for (int i = 0; i < 16; i++)
			s->key[i] = (uint8_t)rnd();
	}
	for (int i = 0; i < N_TUPLES; i++) {
		memset(&tuples[i], 0, sizeof(tuples[i]));
		for (int k = 0; k < 4; k++) {
			tuples[i].src[k] = (uint8_t)rnd();
			tuples[i].dst[k] = (uint8_t)rnd();
		}
		tuples[i].sport = (uint16_t)rnd();
		tuples[i].dport = (uint16_t)rnd();
		isns[i] = (uint32_t)rnd();
	}

	printf("SYN cookies (IPv4 tuples, %d distinct, %.1f s each):\n", N_TUPLES, seconds);
	/* reference: the same cookie with OpenSSL's SipHash through EVP_MAC */
	t0 = now_s();
	ops = 0;
	do {
		for (int i = 0; i < N_TUPLES; i++)
			sink += ossl_cookie(&h1, &h2, &tuples[i], isns[i], 1000);
		ops += N_TUPLES;
	} while ((t = now_s()) - t0 < seconds);
	ref_ns = (t - t0) * 1e9 / (double)ops;
	report("make, OpenSSL EVP_MAC SipHash", ops, t - t0, 0);

	t0 = now_s();
	ops = 0;
	do {
		for (int i = 0; i < N_TUPLES; i++)
			cookies[i] =
				sp_syncookie_make(&keys, &tuples[i], isns[i], 1000, &syn, 0, NULL);
		ops += N_TUPLES;
	} while ((t = now_s()) - t0 < seconds);
	report("make, sp_syncookie_make (SYN -> SYN-ACK ISN)", ops, t - t0, ref_ns);

	t0 = now_s();
	ops = 0;
	do {
		for (int i = 0; i < N_TUPLES; i++)
			bad += sp_syncookie_check(&keys, &tuples[i], isns[i], cookies[i], 1001,
						  NULL) != SP_SYNCOOKIE_OK;
		ops += N_TUPLES;
	} while ((t = now_s()) - t0 < seconds);
	report("check, valid ACK (sp_syncookie_check)", ops, t - t0, ref_ns);

	t0 = now_s();
	ops = 0;
	do {
		for (int i = 0; i < N_TUPLES; i++)
			sink += sp_syncookie_check(&keys, &tuples[i], isns[i], (uint32_t)rnd(),
						   1001, NULL);
		ops += N_TUPLES;
	} while ((t = now_s()) - t0 < seconds);
	report("check, forged ACK (random ack number)", ops, t - t0, ref_ns);

	EVP_MAC_CTX_free(h1.ctx);
	EVP_MAC_CTX_free(h2.ctx);
	EVP_MAC_free(mac);
	if (bad != 0) {
		fprintf(stderr, "lib_bench: %" PRIu64 " valid cookies were refused\n", bad);
		return -EINVAL;
	}
	return 0;
}

static int
bench_tcp(double seconds)
{
	static const uint8_t syn[] = {0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x12, 0x34,
				      0x56, 0x78, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07};
	uint8_t seg[1480];
	struct sp_tcp_opts o;
	uint64_t ops;
	uint16_t c = 0;
	double t0, t, ref_ns;

	for (size_t i = 0; i < sizeof(seg); i++)
		seg[i] = (uint8_t)rnd();
	printf("TCP helpers (%.1f s each):\n", seconds);
	/* reference: checksumming the 1460-byte payload a splice avoids by updating incrementally
	 */
	t0 = now_s();
	ops = 0;
	do {
		for (int i = 0; i < 1024; i++) {
			seg[0] = (uint8_t)i;
			sink += sp_csum(seg, sizeof(seg));
		}
		ops += 1024;
	} while ((t = now_s()) - t0 < seconds);
	ref_ns = (t - t0) * 1e9 / (double)ops;
	report("full checksum of a 1480-byte segment", ops, t - t0, 0);

	t0 = now_s();
	ops = 0;
	do {
		for (uint32_t i = 0; i < 1024; i++) {
			c = sp_csum_update32(c, i, i + 12345);
			c = sp_csum_update32(c, ~i, i * 7);
		}
		ops += 1024;
	} while ((t = now_s()) - t0 < seconds);
	sink += c;
	report("seq+ack rewrite, incremental (2 x update32)", ops, t - t0, ref_ns);

	t0 = now_s();
	ops = 0;
	do {
		for (int i = 0; i < 1024; i++)
			sink += sp_tcp_parse_opts(syn, sizeof(syn), &o) + o.mss;
		ops += 1024;
	} while ((t = now_s()) - t0 < seconds);
	report("parse a Linux SYN's options", ops, t - t0, ref_ns);
	return 0;
}

/* An awscli GetObject head as it arrives (SigV4 header auth, a range). */
static const char http_head[] =
	"GET /bucket/logs/2024/app.log HTTP/1.1\r\n"
	"Host: 10.79.0.10\r\n"
	"Accept-Encoding: identity\r\n"
	"Range: bytes=0-1048575\r\n"
	"User-Agent: aws-cli/2.9.19 Python/3.11.2 Linux/6.1.0-13-amd64 source/x86_64.debian.12 "
	"prompt/off command/s3api.get-object\r\n"
	"X-Amz-Date: 20261126T010203Z\r\n"
	"X-Amz-Content-SHA256: "
	"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\r\n"
	"Authorization: AWS4-HMAC-SHA256 "
	"Credential=AKIAIOSFODNN7EXAMPLE/20261126/us-east-1/s3/aws4_request, "
	"SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
	"Signature=fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024\r\n"
	"\r\n";

/* The reference's callbacks keep what ours keeps: the spans of every header name and value. */
struct hp_spans {
	unsigned int n;
	const char *at[2 * SP_HTTP_MAX_HEADERS];
	size_t len[2 * SP_HTTP_MAX_HEADERS];
};

static int
hp_span(http_parser *p, const char *at, size_t len)
{
	struct hp_spans *s = p->data;

	if (s->n < 2 * SP_HTTP_MAX_HEADERS) {
		s->at[s->n] = at;
		s->len[s->n++] = len;
	}
	return 0;
}

static int
bench_http(double seconds)
{
	const size_t len = sizeof(http_head) - 1;
	http_parser_settings settings = {
		.on_url = hp_span, .on_header_field = hp_span, .on_header_value = hp_span};
	struct sp_http_req req;
	struct hp_spans spans;
	http_parser hp;
	uint64_t ops, bad = 0;
	double t0, t, ref_ns;

	printf("HTTP request heads (an awscli GetObject, %zu bytes, %.1f s each):\n", len, seconds);
	t0 = now_s();
	ops = 0;
	do {
		for (int i = 0; i < 1024; i++) {
			http_parser_init(&hp, HTTP_REQUEST);
			spans.n = 0;
			hp.data = &spans;
			bad += http_parser_execute(&hp, &settings, http_head, len) != len;
			sink += spans.n;
		}
		ops += 1024;
	} while ((t = now_s()) - t0 < seconds);
	ref_ns = (t - t0) * 1e9 / (double)ops;
	report("nodejs http-parser 2.9 (Debian)", ops, t - t0, 0);
	printf("  %-44s %8.2f GB/s\n", "", (double)len * ops / (t - t0) / 1e9);

	t0 = now_s();
	ops = 0;
	do {
		for (int i = 0; i < 1024; i++) {
			sp_http_req_init(&req);
			bad += sp_http_parse_request(http_head, len, &req, NULL) != (int)len;
			sink += req.n_headers;
		}
		ops += 1024;
	} while ((t = now_s()) - t0 < seconds);
	report("sp_http_parse_request", ops, t - t0, ref_ns);
	printf("  %-44s %8.2f GB/s\n", "", (double)len * ops / (t - t0) / 1e9);
	if (bad != 0) {
		fprintf(stderr, "lib_bench: %" PRIu64 " heads were not parsed whole\n", bad);
		return -EINVAL;
	}
	return 0;
}

/* AWS's GET Object example (S3 API reference, SigV4 examples), valid at 20130524T000000Z. */
static const char sigv4_head[] =
	"GET /test.txt HTTP/1.1\r\n"
	"Host: examplebucket.s3.amazonaws.com\r\n"
	"Authorization: AWS4-HMAC-SHA256 "
	"Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
	"SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
	"Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41\r\n"
	"Range: bytes=0-9\r\n"
	"x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\r\n"
	"x-amz-date: 20130524T000000Z\r\n"
	"\r\n";
static const char sigv4_secret[] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
#define SIGV4_NOW 1369353600 /* 20130524T000000Z */

/* The fastest way OpenSSL offers HMAC-SHA256: an EVP_MAC context set up once, re-keyed per use. */
struct ossl_hmac {
	EVP_MAC *mac;
	EVP_MAC_CTX *ctx;
};

static int
ossl_hmac_init(struct ossl_hmac *h)
{
	OSSL_PARAM p[2] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end()};

	h->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	h->ctx = h->mac != NULL ? EVP_MAC_CTX_new(h->mac) : NULL;
	return h->ctx != NULL && EVP_MAC_CTX_set_params(h->ctx, p) == 1 ? 0 : -ENOTSUP;
}

static void
ossl_hmac_free(struct ossl_hmac *h)
{
	EVP_MAC_CTX_free(h->ctx);
	EVP_MAC_free(h->mac);
}

/* What one SigV4 measurement works on; each case below is one operation on it. */
struct sv_case {
	size_t len;
	struct sp_http_req req;
	struct sp_sigv4_auth auth;
	struct ossl_hmac oh;
	char sts[256];
	size_t sts_len;
	uint8_t key[32], mac[32];
};

/* floors: the one HMAC-SHA256 of the string to sign that any verifier computes */
static uint64_t
sv_hmac_oneshot(struct sv_case *c, int i)
{
	unsigned int maclen;

	c->sts[0] = (char)('A' + (i & 1)); /* not hoisted out of the loop */
	sink += c->mac[0];
	return HMAC(EVP_sha256(), c->key, 32, (const unsigned char *)c->sts, c->sts_len, c->mac,
		    &maclen) == NULL;
}

static uint64_t
sv_hmac_ctx(struct sv_case *c, int i)
{
	size_t ml;

	c->sts[0] = (char)('A' + (i & 1));
	sink += c->mac[0];
	return EVP_MAC_init(c->oh.ctx, c->key, 32, NULL) != 1 ||
	       EVP_MAC_update(c->oh.ctx, (const unsigned char *)c->sts, c->sts_len) != 1 ||
	       EVP_MAC_final(c->oh.ctx, c->mac, &ml, sizeof(c->mac)) != 1;
}

static uint64_t
sv_verify(struct sv_case *c, int i)
{
	(void)i;
	return (sp_sigv4_parse_auth(sigv4_head, c->len, &c->req, "us-east-1", SIGV4_NOW,
				    &c->auth) != 0) +
	       (sp_sigv4_verify(sigv4_head, c->len, &c->req, &c->auth, c->key) != 0);
}

static uint64_t
sv_derive_verify(struct sv_case *c, int i)
{
	(void)i;
	return (sp_sigv4_parse_auth(sigv4_head, c->len, &c->req, "us-east-1", SIGV4_NOW,
				    &c->auth) != 0) +
	       (sp_sigv4_signing_key(sigv4_secret, sizeof(sigv4_secret) - 1, c->auth.scope_date,
				     c->auth.region, c->auth.service, c->key) != 0) +
	       (sp_sigv4_verify(sigv4_head, c->len, &c->req, &c->auth, c->key) != 0);
}

static uint64_t
sv_http_verify(struct sv_case *c, int i)
{
	sp_http_req_init(&c->req);
	return (sp_http_parse_request(sigv4_head, c->len, &c->req, NULL) != (int)c->len) +
	       sv_verify(c, i);
}

/* Run op for seconds in rounds of 256, report it against ref_ns; its ns per op. */
static double
sv_run(struct sv_case *c, const char *what, uint64_t (*op)(struct sv_case *, int), double seconds,
       double ref_ns, uint64_t *bad)
{
	uint64_t ops = 0;
	double t0 = now_s(), t;

	do {
		for (int i = 0; i < 256; i++)
			*bad += op(c, i);
		ops += 256;
	} while ((t = now_s()) - t0 < seconds);
	report(what, ops, t - t0, ref_ns);
	return (t - t0) * 1e9 / (double)ops;
}

static int
bench_sigv4(double seconds)
{
	static struct sv_case c;
	char creq[1024];
	uint64_t bad = 0;
	double ref_ns;
	int n;

	c.len = sizeof(sigv4_head) - 1;
	sp_http_req_init(&c.req);
	if (sp_http_parse_request(sigv4_head, c.len, &c.req, NULL) != (int)c.len ||
	    sp_sigv4_parse_auth(sigv4_head, c.len, &c.req, "us-east-1", SIGV4_NOW, &c.auth) != 0 ||
	    sp_sigv4_signing_key(sigv4_secret, sizeof(sigv4_secret) - 1, c.auth.scope_date,
				 c.auth.region, c.auth.service, c.key) != 0 ||
	    (n = sp_sigv4_canonical_request(sigv4_head, c.len, &c.req, &c.auth, creq,
					    sizeof(creq))) < 0 ||
	    (n = sp_sigv4_string_to_sign(&c.auth, creq, (size_t)n, c.sts, sizeof(c.sts))) < 0) {
		fprintf(stderr, "lib_bench: the SigV4 example does not parse\n");
		return -EINVAL;
	}
	c.sts_len = (size_t)n;
	if (ossl_hmac_init(&c.oh) != 0) {
		fprintf(stderr, "lib_bench: OpenSSL has no HMAC\n");
		ossl_hmac_free(&c.oh);
		return -ENOTSUP;
	}
	printf("SigV4 verification (AWS's GET Object example, %zu bytes, %.1f s each):\n", c.len,
	       seconds);
	/*
	 * references, the floor: the one HMAC-SHA256 of the string to sign (cached key) that any
	 * verifier computes, with OpenSSL's one-shot HMAC() and with its fastest HMAC interface;
	 * the ratios are to the latter
	 */
	sv_run(&c, "OpenSSL HMAC() of the string to sign", sv_hmac_oneshot, seconds, 0, &bad);
	ref_ns = sv_run(&c, "same, EVP_MAC HMAC context reused", sv_hmac_ctx, seconds, 0, &bad);
	ossl_hmac_free(&c.oh);
	sv_run(&c, "parse_auth + verify, cached signing key", sv_verify, seconds, ref_ns, &bad);
	sv_run(&c, "parse_auth + key derivation + verify", sv_derive_verify, seconds, ref_ns, &bad);
	sv_run(&c, "HTTP parse + parse_auth + verify (cached)", sv_http_verify, seconds, ref_ns,
	       &bad);
	if (bad != 0) {
		fprintf(stderr, "lib_bench: %" PRIu64 " SigV4 verifications failed\n", bad);
		return -EINVAL;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	double seconds = 1.0;
	int rc;

	if (argc > 2 || (argc == 2 && (seconds = strtod(argv[1], NULL)) <= 0)) {
		fprintf(stderr, "usage: %s [SECONDS per measurement, default 1]\n", argv[0]);
		return 2;
	}
	rc = bench_cookies(seconds);
	if (rc == 0)
		rc = bench_tcp(seconds);
	if (rc == 0)
		rc = bench_http(seconds);
	if (rc == 0)
		rc = bench_sigv4(seconds);
	return rc == 0 ? 0 : 1;
}
