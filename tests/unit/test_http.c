/* cmocka unit tests for sp_http: client requests, every error, split points, limits, fuzzing. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sp_http.h"

/* A string literal and its length (literals may hold NUL bytes). */
#define LIT(s) s, sizeof(s) - 1

#define SIG64 "fe5f80f77d5fa3beca038a248ff027d0445342fe2855ddc963176630326f1024"
#define SHA_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define AMZ_DATE "20240601T120000Z"
#define CRED "AKIAIOSFODNN7EXAMPLE/20240601/us-east-1/s3/aws4_request"

/* Request heads as the lab's clients send them (header order and case as on the wire). */

static const char req_awscli_get_range[] =
	"GET /bucket/logs/2024/app.log HTTP/1.1\r\n"
	"Host: s3.lab.example:8080\r\n"
	"Accept-Encoding: identity\r\n"
	"Range: bytes=0-1048575\r\n"
	"User-Agent: aws-cli/2.13.0 Python/3.11.4 Linux/6.1.0-13-amd64 exe/x86_64.debian.12 "
	"prompt/off command/s3api.get-object\r\n"
	"X-Amz-Date: " AMZ_DATE "\r\n"
	"X-Amz-Content-SHA256: " SHA_EMPTY "\r\n"
	"Authorization: AWS4-HMAC-SHA256 Credential=" CRED ", "
	"SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=" SIG64 "\r\n"
	"\r\n";

static const char req_boto3_get_inm[] =
	"GET /bucket/photos/cat%20pic.jpg HTTP/1.1\r\n"
	"Host: s3.lab.example\r\n"
	"Accept-Encoding: identity\r\n"
	"If-None-Match: \"9b2cf535f27731c974343645a3985328\"\r\n"
	"User-Agent: Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux#6.1.0-13-amd64 "
	"md/arch#x86_64 lang/python#3.11.2 md/pyimpl#CPython cfg/retry-mode#legacy "
	"Botocore/1.34.0\r\n"
	"X-Amz-Date: " AMZ_DATE "\r\n"
	"X-Amz-Content-SHA256: " SHA_EMPTY "\r\n"
	"Authorization: AWS4-HMAC-SHA256 Credential=" CRED ", "
	"SignedHeaders=host;if-none-match;x-amz-content-sha256;x-amz-date, Signature=" SIG64 "\r\n"
	"amz-sdk-invocation-id: 3f1c2a4e-9d1b-4c55-8e0a-2b7f6d9e1a42\r\n"
	"amz-sdk-request: attempt=1\r\n"
	"\r\n";

static const char req_boto3_put_expect[] =
	"PUT /bucket/data/report.csv HTTP/1.1\r\n"
	"Host: s3.lab.example\r\n"
	"Accept-Encoding: identity\r\n"
	"Content-Type: text/csv\r\n"
	"Content-MD5: 7Qdih1MuhjZehB6Sv8UNjA==\r\n"
	"User-Agent: Boto3/1.34.0 md/Botocore#1.34.0 ua/2.0 os/linux#6.1.0-13-amd64 "
	"md/arch#x86_64 lang/python#3.11.2 md/pyimpl#CPython cfg/retry-mode#legacy "
	"Botocore/1.34.0\r\n"
	"X-Amz-Date: " AMZ_DATE "\r\n"
	"X-Amz-Content-SHA256: UNSIGNED-PAYLOAD\r\n"
	"Authorization: AWS4-HMAC-SHA256 Credential=" CRED ", "
	"SignedHeaders=content-md5;content-type;host;x-amz-content-sha256;x-amz-date, "
	"Signature=" SIG64 "\r\n"
	"amz-sdk-invocation-id: 0b3a7c1d-2e4f-4a6b-8c9d-0e1f2a3b4c5d\r\n"
	"amz-sdk-request: attempt=1\r\n"
	"Content-Length: 11\r\n"
	"Expect: 100-continue\r\n"
	"\r\n";

/* s3cmd (Python http.client): lower-case names, virtual-host style. */
static const char req_s3cmd_get[] =
	"GET /music/song.mp3 HTTP/1.1\r\n"
	"Host: bucket.s3.lab.example\r\n"
	"Accept-Encoding: identity\r\n"
	"content-length: 0\r\n"
	"x-amz-content-sha256: " SHA_EMPTY "\r\n"
	"x-amz-date: " AMZ_DATE "\r\n"
	"Authorization: AWS4-HMAC-SHA256 Credential=" CRED ",SignedHeaders=content-length;host;"
	"x-amz-content-sha256;x-amz-date,Signature=" SIG64 "\r\n"
	"\r\n";

#define PRESIGNED_QUERY                                                                            \
	"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20240601%2F"     \
	"us-east-1%2Fs3%2Faws4_request&X-Amz-Date=" AMZ_DATE "&X-Amz-Expires=3600&"                \
	"X-Amz-SignedHeaders=host&X-Amz-Signature=" SIG64

static const char req_curl_presigned[] =
	"GET /bucket/reports/q2.pdf?" PRESIGNED_QUERY " HTTP/1.1\r\n"
	"Host: s3.lab.example:8080\r\n"
	"User-Agent: curl/7.88.1\r\n"
	"Accept: */*\r\n"
	"\r\n";

/* curl -T - (unknown length): chunked, with Expect. */
static const char req_curl_chunked_put[] = "PUT /bucket/stream.log HTTP/1.1\r\n"
					   "Host: s3.lab.example\r\n"
					   "User-Agent: curl/7.88.1\r\n"
					   "Accept: */*\r\n"
					   "Transfer-Encoding: chunked\r\n"
					   "Expect: 100-continue\r\n"
					   "\r\n";

static const char body_curl_chunked[] = "5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n";

/* boto3 >= 1.36 flexible checksums: aws-chunked body framed by Content-Length, CRC32 trailer. */
static const char req_boto3_aws_chunked[] =
	"PUT /bucket/notes.txt HTTP/1.1\r\n"
	"Host: s3.lab.example\r\n"
	"Accept-Encoding: identity\r\n"
	"x-amz-sdk-checksum-algorithm: CRC32\r\n"
	"Content-Encoding: aws-chunked\r\n"
	"X-Amz-Trailer: x-amz-checksum-crc32\r\n"
	"X-Amz-Decoded-Content-Length: 11\r\n"
	"X-Amz-Date: " AMZ_DATE "\r\n"
	"X-Amz-Content-SHA256: STREAMING-UNSIGNED-PAYLOAD-TRAILER\r\n"
	"Authorization: AWS4-HMAC-SHA256 Credential=" CRED ", SignedHeaders=content-encoding;host;"
	"x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-sdk-checksum-algorithm;"
	"x-amz-trailer, Signature=" SIG64 "\r\n"
	"Content-Length: 52\r\n"
	"\r\n";

static const char body_aws_chunked[] =
	"b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n";

/* Helpers */

/* Parse s[0, len) in one call, from an exactly-sized heap copy (ASan flags any over-read). */
static int
parse_once(const char *s, size_t len, struct sp_http_req *req, const struct sp_http_limits *lim)
{
	char *copy = malloc(len ? len : 1);
	int rc;

	assert_non_null(copy);
	memcpy(copy, s, len);
	sp_http_req_init(req);
	rc = sp_http_parse_request(copy, len, req, lim);
	free(copy);
	return rc;
}

/* One more call on req with s[0, len), from a fresh copy (the buffer moves between calls). */
static int
parse_more(const char *s, size_t len, struct sp_http_req *req, const struct sp_http_limits *lim)
{
	char *copy = malloc(len ? len : 1);
	int rc;

	assert_non_null(copy);
	memcpy(copy, s, len);
	rc = sp_http_parse_request(copy, len, req, lim);
	free(copy);
	return rc;
}

static void
span_expect(const char *buf, struct sp_http_span sp, const char *want, size_t want_len, int line)
{
	if (sp.len != want_len || memcmp(buf + sp.off, want, want_len) != 0) {
		print_error("line %d: span {%u, %u} is \"%.*s\", want \"%.*s\"\n", line, sp.off,
			    sp.len, (int)sp.len, buf + sp.off, (int)want_len, want);
		fail();
	}
}

#define SPAN_EQ(buf, sp, lit) span_expect(buf, sp, lit, sizeof(lit) - 1, __LINE__)
#define HDR_EQ(buf, req, h, lit) SPAN_EQ(buf, (req)->hdr[SP_HTTP_HDR_##h], lit)

static bool
span_same(struct sp_http_span a, struct sp_http_span b)
{
	return a.off == b.off && a.len == b.len;
}

/* Every result field of two parses of the same bytes. */
static bool
req_same(const struct sp_http_req *a, const struct sp_http_req *b)
{
	unsigned int i;

	if (!span_same(a->method_tok, b->method_tok) || !span_same(a->target, b->target) ||
	    !span_same(a->path, b->path) || !span_same(a->query, b->query) ||
	    a->method != b->method || a->version != b->version || a->has_query != b->has_query ||
	    a->has_content_length != b->has_content_length || a->chunked != b->chunked ||
	    a->conn_close != b->conn_close || a->conn_keep_alive != b->conn_keep_alive ||
	    a->keep_alive != b->keep_alive || a->expect_continue != b->expect_continue ||
	    a->expect_other != b->expect_other || a->n_headers != b->n_headers ||
	    a->hdr_present != b->hdr_present || a->content_length != b->content_length)
		return false;
	for (i = 0; i < SP_HTTP_HDR_MAX; i++)
		if (!span_same(a->hdr[i], b->hdr[i]))
			return false;
	for (i = 0; i < a->n_headers; i++)
		if (!span_same(a->headers[i].name, b->headers[i].name) ||
		    !span_same(a->headers[i].value, b->headers[i].value))
			return false;
	return true;
}

/*
 * Deliver s[0, n) every way: a fresh parse of every prefix, a resumed parse split at every
 * point (prefix k, then all n), and one byte at a time. Valid heads must give INCOMPLETE until
 * the head is complete; bad ones INCOMPLETE until the error shows, then only that error. The
 * final result and every field must equal the one-shot parse. Returns the one-shot result.
 */
static int
check_splits_lim(const char *s, size_t n, const struct sp_http_limits *lim, int line)
{
	struct sp_http_req *whole = malloc(sizeof(*whole)), *part = malloc(sizeof(*part));
	int want, rc, rc1;
	bool seen_err = false;
	size_t k;

	assert_non_null(whole);
	assert_non_null(part);
	want = parse_once(s, n, whole, lim);
	for (k = 0; k <= n; k++) {
		rc = parse_once(s, k, part, lim);
		if (want > 0) {
			if (rc != ((int)k < want ? SP_HTTP_INCOMPLETE : want)) {
				print_error("line %d: prefix %zu: rc %d (%s), want %d\n", line, k,
					    rc, sp_http_error_name(rc), want);
				fail();
			}
		} else if ((rc != SP_HTTP_INCOMPLETE && rc != want) ||
			   (seen_err && rc == SP_HTTP_INCOMPLETE)) {
			print_error("line %d: prefix %zu: rc %d (%s), want 0 or %s\n", line, k, rc,
				    sp_http_error_name(rc), sp_http_error_name(want));
			fail();
		}
		seen_err = seen_err || rc < 0;

		sp_http_req_init(part);
		rc1 = parse_more(s, k, part, lim);
		rc = parse_more(s, n, part, lim);
		if ((rc1 != SP_HTTP_INCOMPLETE && rc1 != want) || rc != want ||
		    (want > 0 && !req_same(part, whole))) {
			print_error("line %d: split at %zu: rc %d then %d (%s), want %d (%s)\n",
				    line, k, rc1, rc, sp_http_error_name(rc), want,
				    sp_http_error_name(want));
			fail();
		}
		/* once known, the result is sticky */
		assert_int_equal(parse_more(s, n, part, lim), want);
	}
	sp_http_req_init(part);
	rc = SP_HTTP_INCOMPLETE;
	for (k = 1; k <= n && rc == SP_HTTP_INCOMPLETE; k++)
		rc = parse_more(s, k, part, lim);
	if (rc != want || (want > 0 && !req_same(part, whole))) {
		print_error("line %d: byte at a time: rc %d, want %d\n", line, rc, want);
		fail();
	}
	free(whole);
	free(part);
	return want;
}

/* CHECK_SPLITS(s, n, lim) */
#define CHECK_SPLITS(...) check_splits_lim(__VA_ARGS__, __LINE__)

/* Parse a literal (after checking every split point) into *req; returns the result. */
static int
parse_lit_checked(const char *s, size_t n, struct sp_http_req *req, int line)
{
	int rc = check_splits_lim(s, n, NULL, line);

	assert_int_equal(parse_once(s, n, req, NULL), rc);
	return rc;
}

#define PARSE_CLIENT(arr, req) parse_lit_checked(arr, sizeof(arr) - 1, req, __LINE__)

/* Chunked decoding of a body delivered in pieces ending at bounds[0..nb) (the last: its end). */
struct chunk_result {
	int rc;
	size_t used; /* bytes of body consumed when the decoder stopped */
	size_t data_len;
	uint64_t total;
	char data[16384];
};

static void
chunk_run(const char *body, const size_t *bounds, size_t nb, struct chunk_result *r)
{
	struct sp_http_chunked st;
	size_t b, start = 0;

	sp_http_chunked_init(&st);
	r->rc = SP_HTTP_CHUNK_MORE;
	r->used = 0;
	r->data_len = 0;
	for (b = 0; b < nb; b++) {
		size_t plen = bounds[b] - start, off = 0;
		char *piece;

		if (plen == 0) /* nothing arrived: the caller does not call */
			continue;
		piece = malloc(plen);
		assert_non_null(piece);
		memcpy(piece, body + start, plen);
		for (;;) {
			size_t used, doff, dlen;

			r->rc = sp_http_chunked_feed(&st, piece + off, plen - off, &used, &doff,
						     &dlen);
			assert_true(used <= plen - off);
			if (r->rc == SP_HTTP_CHUNK_DATA) {
				assert_true(dlen > 0);
				assert_true(doff + dlen == used);
				assert_true(r->data_len + dlen <= sizeof(r->data));
				memcpy(r->data + r->data_len, piece + off + doff, dlen);
				r->data_len += dlen;
			} else {
				assert_int_equal(dlen, 0);
			}
			off += used;
			if (r->rc != SP_HTTP_CHUNK_DATA || off == plen)
				break;
		}
		free(piece);
		r->used = start + off;
		if (r->rc != SP_HTTP_CHUNK_MORE && r->rc != SP_HTTP_CHUNK_DATA)
			break;
		start = bounds[b];
	}
	r->total = st.total;
}

/*
 * Decode body[0, n) in one piece, split in two at every point, and one byte at a time: the
 * result, the bytes consumed and the data must always be the same. Returns the one-piece run.
 */
static void
check_chunked(const char *body, size_t n, int want_rc, const char *want_data, size_t want_len,
	      size_t want_used, const char *name, int line)
{
	struct chunk_result *one = malloc(sizeof(*one)), *r = malloc(sizeof(*r));
	size_t *bounds = malloc((n + 1) * sizeof(*bounds));
	size_t k;

	assert_non_null(one);
	assert_non_null(r);
	assert_non_null(bounds);
	bounds[0] = n;
	chunk_run(body, bounds, 1, one);
	if (one->rc != want_rc || one->used != want_used ||
	    (want_data != NULL &&
	     (one->data_len != want_len || memcmp(one->data, want_data, want_len) != 0))) {
		print_error("line %d %s: rc %d (%s) used %zu data %zu, want rc %d (%s) used %zu "
			    "data %zu\n",
			    line, name, one->rc, sp_http_error_name(one->rc), one->used,
			    one->data_len, want_rc, sp_http_error_name(want_rc), want_used,
			    want_len);
		fail();
	}
	if (want_rc == SP_HTTP_CHUNK_DONE)
		assert_int_equal(one->total, one->data_len);
	for (k = 0; k <= n + 1; k++) {
		size_t nb;

		if (k <= n) { /* two pieces: [0, k), [k, n) */
			bounds[0] = k;
			bounds[1] = n;
			nb = 2;
		} else { /* one byte at a time */
			for (nb = 0; nb < n; nb++)
				bounds[nb] = nb + 1;
		}
		chunk_run(body, bounds, nb, r);
		if (r->rc != one->rc || r->used != one->used || r->data_len != one->data_len ||
		    memcmp(r->data, one->data, one->data_len) != 0) {
			print_error(
				"line %d: split %zu: rc %d used %zu data %zu, want %d %zu %zu\n",
				line, k, r->rc, r->used, r->data_len, one->rc, one->used,
				one->data_len);
			fail();
		}
	}
	free(bounds);
	free(one);
	free(r);
}

#define CHECK_CHUNKED(body, rc, data, used)                                                        \
	check_chunked(body, sizeof(body) - 1, rc, data, sizeof(data) - 1, used, "", __LINE__)
/* A complete body consumed to its last byte. */
#define CHECK_CHUNKED_ALL(body, data)                                                              \
	CHECK_CHUNKED(body, SP_HTTP_CHUNK_DONE, data, sizeof(body) - 1)

/* Client requests */

static void
test_awscli_get_range(void **state)
{
	const char *b = req_awscli_get_range;
	struct sp_http_req req;
	uint64_t first = 1, last = 1;

	(void)state;
	assert_int_equal(PARSE_CLIENT(req_awscli_get_range, &req),
			 (int)sizeof(req_awscli_get_range) - 1);
	assert_int_equal(req.method, SP_HTTP_METHOD_GET);
	SPAN_EQ(b, req.method_tok, "GET");
	assert_int_equal(req.version, 11);
	SPAN_EQ(b, req.target, "/bucket/logs/2024/app.log");
	SPAN_EQ(b, req.path, "/bucket/logs/2024/app.log");
	assert_false(req.has_query);
	assert_int_equal(req.query.len, 0);
	HDR_EQ(b, &req, HOST, "s3.lab.example:8080");
	HDR_EQ(b, &req, RANGE, "bytes=0-1048575");
	HDR_EQ(b, &req, X_AMZ_DATE, AMZ_DATE);
	HDR_EQ(b, &req, X_AMZ_CONTENT_SHA256, SHA_EMPTY);
	HDR_EQ(b, &req, AUTHORIZATION,
	       "AWS4-HMAC-SHA256 Credential=" CRED
	       ", SignedHeaders=host;range;x-amz-content-sha256;"
	       "x-amz-date, Signature=" SIG64);
	assert_int_equal(req.n_headers, 7);
	SPAN_EQ(b, req.headers[0].name, "Host");
	SPAN_EQ(b, req.headers[1].name, "Accept-Encoding");
	SPAN_EQ(b, req.headers[1].value, "identity");
	SPAN_EQ(b, req.headers[3].name, "User-Agent");
	SPAN_EQ(b, req.headers[5].name, "X-Amz-Content-SHA256");
	SPAN_EQ(b, req.headers[6].name, "Authorization");
	assert_false(req.has_content_length);
	assert_false(req.chunked);
	assert_true(req.keep_alive);
	assert_false(req.expect_continue || req.expect_other);
	assert_false(sp_http_req_has(&req, SP_HTTP_HDR_IF_NONE_MATCH));
	assert_true(sp_http_req_has(&req, SP_HTTP_HDR_RANGE));
	assert_int_equal(sp_http_parse_range(b + req.hdr[SP_HTTP_HDR_RANGE].off,
					     req.hdr[SP_HTTP_HDR_RANGE].len, 10u << 20, &first,
					     &last),
			 SP_HTTP_RANGE_OK);
	assert_int_equal(first, 0);
	assert_int_equal(last, 1048575);
}

static void
test_boto3_get_if_none_match(void **state)
{
	const char *b = req_boto3_get_inm;
	struct sp_http_req req;

	(void)state;
	assert_int_equal(PARSE_CLIENT(req_boto3_get_inm, &req), (int)sizeof(req_boto3_get_inm) - 1);
	assert_int_equal(req.method, SP_HTTP_METHOD_GET);
	SPAN_EQ(b, req.path, "/bucket/photos/cat%20pic.jpg"); /* not decoded */
	HDR_EQ(b, &req, IF_NONE_MATCH, "\"9b2cf535f27731c974343645a3985328\"");
	HDR_EQ(b, &req, HOST, "s3.lab.example");
	assert_int_equal(req.n_headers, 9);
	SPAN_EQ(b, req.headers[8].name, "amz-sdk-request");
	SPAN_EQ(b, req.headers[8].value, "attempt=1");
	assert_false(sp_http_req_has(&req, SP_HTTP_HDR_RANGE));
	assert_int_equal(req.hdr[SP_HTTP_HDR_RANGE].len, 0);
	assert_true(req.keep_alive);
}

static void
test_boto3_put_expect(void **state)
{
	const char *b = req_boto3_put_expect;
	struct sp_http_req req;

	(void)state;
	assert_int_equal(PARSE_CLIENT(req_boto3_put_expect, &req),
			 (int)sizeof(req_boto3_put_expect) - 1);
	assert_int_equal(req.method, SP_HTTP_METHOD_PUT);
	SPAN_EQ(b, req.path, "/bucket/data/report.csv");
	assert_true(req.has_content_length);
	assert_int_equal(req.content_length, 11);
	HDR_EQ(b, &req, CONTENT_LENGTH, "11");
	assert_true(req.expect_continue);
	assert_false(req.expect_other);
	HDR_EQ(b, &req, EXPECT, "100-continue");
	HDR_EQ(b, &req, CONTENT_TYPE, "text/csv");
	HDR_EQ(b, &req, CONTENT_MD5, "7Qdih1MuhjZehB6Sv8UNjA==");
	HDR_EQ(b, &req, X_AMZ_CONTENT_SHA256, "UNSIGNED-PAYLOAD");
	assert_false(req.chunked);
	assert_int_equal(req.n_headers, 12);
}

static void
test_s3cmd_lower_case(void **state)
{
	const char *b = req_s3cmd_get;
	struct sp_http_req req;

	(void)state;
	assert_int_equal(PARSE_CLIENT(req_s3cmd_get, &req), (int)sizeof(req_s3cmd_get) - 1);
	HDR_EQ(b, &req, HOST, "bucket.s3.lab.example");
	HDR_EQ(b, &req, X_AMZ_DATE, AMZ_DATE);
	HDR_EQ(b, &req, X_AMZ_CONTENT_SHA256, SHA_EMPTY);
	SPAN_EQ(b, req.headers[3].name, "x-amz-content-sha256"); /* as sent */
	assert_true(req.has_content_length);
	assert_int_equal(req.content_length, 0);
	assert_int_equal(req.n_headers, 6);
}

static void
test_curl_presigned(void **state)
{
	const char *b = req_curl_presigned;
	struct sp_http_req req;

	(void)state;
	assert_int_equal(PARSE_CLIENT(req_curl_presigned, &req),
			 (int)sizeof(req_curl_presigned) - 1);
	SPAN_EQ(b, req.target, "/bucket/reports/q2.pdf?" PRESIGNED_QUERY);
	SPAN_EQ(b, req.path, "/bucket/reports/q2.pdf");
	assert_true(req.has_query);
	SPAN_EQ(b, req.query, PRESIGNED_QUERY);
	assert_false(sp_http_req_has(&req, SP_HTTP_HDR_AUTHORIZATION));
	HDR_EQ(b, &req, HOST, "s3.lab.example:8080");
	assert_int_equal(req.n_headers, 3);
}

static void
test_curl_chunked_put(void **state)
{
	const char *b = req_curl_chunked_put;
	struct sp_http_req req;

	(void)state;
	assert_int_equal(PARSE_CLIENT(req_curl_chunked_put, &req),
			 (int)sizeof(req_curl_chunked_put) - 1);
	assert_int_equal(req.method, SP_HTTP_METHOD_PUT);
	assert_true(req.chunked);
	assert_false(req.has_content_length);
	assert_true(req.expect_continue);
	HDR_EQ(b, &req, TRANSFER_ENCODING, "chunked");
	CHECK_CHUNKED(body_curl_chunked, SP_HTTP_CHUNK_DONE, "hello, world",
		      sizeof(body_curl_chunked) - 1);
}

static void
test_boto3_aws_chunked(void **state)
{
	struct sp_http_req req;

	(void)state;
	assert_int_equal(PARSE_CLIENT(req_boto3_aws_chunked, &req),
			 (int)sizeof(req_boto3_aws_chunked) - 1);
	assert_false(req.chunked);
	assert_int_equal(req.content_length, sizeof(body_aws_chunked) - 1);
	assert_int_equal(req.n_headers, 10);
	/* the aws-chunked framing inside the body has the chunked syntax, trailer included */
	CHECK_CHUNKED(body_aws_chunked, SP_HTTP_CHUNK_DONE, "hello world",
		      sizeof(body_aws_chunked) - 1);
}

/* Request line, versions, keep-alive, Expect */

static void
test_methods_and_targets(void **state)
{
	static const struct {
		const char *line;
		int method;
		const char *tok, *path, *query;
		bool has_query;
	} cases[] = {
		{"GET / HTTP/1.1", SP_HTTP_METHOD_GET, "GET", "/", "", false},
		{"HEAD /b/k HTTP/1.1", SP_HTTP_METHOD_HEAD, "HEAD", "/b/k", "", false},
		{"PUT /b/k HTTP/1.1", SP_HTTP_METHOD_PUT, "PUT", "/b/k", "", false},
		{"POST /b?uploads HTTP/1.1", SP_HTTP_METHOD_POST, "POST", "/b", "uploads", true},
		{"DELETE /b/k HTTP/1.1", SP_HTTP_METHOD_DELETE, "DELETE", "/b/k", "", false},
		{"OPTIONS * HTTP/1.1", SP_HTTP_METHOD_OPTIONS, "OPTIONS", "*", "", false},
		{"OPTIONS /b HTTP/1.1", SP_HTTP_METHOD_OPTIONS, "OPTIONS", "/b", "", false},
		{"PATCH /x HTTP/1.1", SP_HTTP_METHOD_OTHER, "PATCH", "/x", "", false},
		{"get / HTTP/1.1", SP_HTTP_METHOD_OTHER, "get", "/", "", false},
		{"GETS / HTTP/1.1", SP_HTTP_METHOD_OTHER, "GETS", "/", "", false},
		{"M-SEARCH / HTTP/1.1", SP_HTTP_METHOD_OTHER, "M-SEARCH", "/", "", false},
		{"GET /? HTTP/1.1", SP_HTTP_METHOD_GET, "GET", "/", "", true},
		{"GET /a?b?c/d HTTP/1.1", SP_HTTP_METHOD_GET, "GET", "/a", "b?c/d", true},
		{"GET /b?list-type=2&prefix=a%2Fb&max-keys=10 HTTP/1.1", SP_HTTP_METHOD_GET, "GET",
		 "/b", "list-type=2&prefix=a%2Fb&max-keys=10", true},
		{"GET /%41%7e%7E HTTP/1.1", SP_HTTP_METHOD_GET, "GET", "/%41%7e%7E", "", false},
		{"GET //a/./../b;p=1:@!$&'()*+,=-._~ HTTP/1.1", SP_HTTP_METHOD_GET, "GET",
		 "//a/./../b;p=1:@!$&'()*+,=-._~", "", false},
	};
	char buf[256];
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sp_http_req req;
		int n = snprintf(buf, sizeof(buf), "%s\r\nHost: h\r\n\r\n", cases[i].line);

		assert_int_equal(CHECK_SPLITS(buf, (size_t)n, NULL), n);
		assert_int_equal(parse_once(buf, (size_t)n, &req, NULL), n);
		assert_int_equal(req.method, cases[i].method);
		span_expect(buf, req.method_tok, cases[i].tok, strlen(cases[i].tok), __LINE__);
		span_expect(buf, req.path, cases[i].path, strlen(cases[i].path), __LINE__);
		span_expect(buf, req.query, cases[i].query, strlen(cases[i].query), __LINE__);
		assert_int_equal(req.has_query, cases[i].has_query);
		assert_int_equal(req.target.off, req.path.off);
	}
}

static void
test_versions_keep_alive(void **state)
{
	static const struct {
		const char *head;
		int version;
		bool keep_alive, conn_close, conn_keep_alive;
	} cases[] = {
		{"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 11, true, false, false},
		{"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", 11, false, true, false},
		{"GET / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive\r\n\r\n", 11, true, false,
		 true},
		{"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, CLOSE\r\n\r\n", 11, false,
		 true, true},
		{"GET / HTTP/1.1\r\nHost: h\r\nConnection: TE, Upgrade\r\n\r\n", 11, true, false,
		 false},
		{"GET / HTTP/1.1\r\nHost: h\r\nConnection: , ,\tclose ,\r\n\r\n", 11, false, true,
		 false},
		{"GET / HTTP/1.1\r\nHost: h\r\nConnection:\r\n\r\n", 11, true, false, false},
		{"GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n", 11, true, false, false},
		{"GET / HTTP/1.0\r\n\r\n", 10, false, false, false},
		{"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 10, true, false, true},
		{"GET / HTTP/1.0\r\nConnection: KEEP-ALIVE\r\nHost: h\r\n\r\n", 10, true, false,
		 true},
		{"GET / HTTP/1.0\r\nConnection: keep-alive,close\r\n\r\n", 10, false, true, true},
	};
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sp_http_req req;
		size_t n = strlen(cases[i].head);

		assert_int_equal(CHECK_SPLITS(cases[i].head, n, NULL), (int)n);
		assert_int_equal(parse_once(cases[i].head, n, &req, NULL), (int)n);
		assert_int_equal(req.version, cases[i].version);
		assert_int_equal(req.keep_alive, cases[i].keep_alive);
		assert_int_equal(req.conn_close, cases[i].conn_close);
		assert_int_equal(req.conn_keep_alive, cases[i].conn_keep_alive);
	}
}

static void
test_expect(void **state)
{
	static const struct {
		const char *head;
		bool cont, other;
	} cases[] = {
		{"PUT /k HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n", true, false},
		{"PUT /k HTTP/1.1\r\nHost: h\r\nexpect:100-Continue \r\n\r\n", true, false},
		{"PUT /k HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n", false, true},
		{"PUT /k HTTP/1.1\r\nHost: h\r\nExpect: 100-continue, x\r\n\r\n", false, true},
		{"PUT /k HTTP/1.1\r\nHost: h\r\nExpect:\r\n\r\n", false, true},
		/* HTTP/1.0: Expect is ignored */
		{"PUT /k HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", false, false},
		{"PUT /k HTTP/1.0\r\nExpect: whatever\r\n\r\n", false, false},
	};
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sp_http_req req;
		size_t n = strlen(cases[i].head);

		assert_int_equal(CHECK_SPLITS(cases[i].head, n, NULL), (int)n);
		assert_int_equal(parse_once(cases[i].head, n, &req, NULL), (int)n);
		assert_int_equal(req.expect_continue, cases[i].cont);
		assert_int_equal(req.expect_other, cases[i].other);
		assert_true(sp_http_req_has(&req, SP_HTTP_HDR_EXPECT));
	}
}

static void
test_case_and_ows(void **state)
{
	static const char head[] = "GET /k HTTP/1.1\r\n"
				   "hOsT:h.example\r\n"
				   "RANGE: \t BYTES=2-3 \t \r\n"
				   "x-amz-DATE:" AMZ_DATE "\t\r\n"
				   "If-Match:   \"a b\"   \r\n"
				   "X-Empty:   \t \r\n"
				   "X-Inner: a  b\tc\r\n"
				   "CONTENT-LENGTH: 0\r\n"
				   "if-modified-since: Sat, 01 Jun 2024 12:00:00 GMT\r\n"
				   "If-Unmodified-Since: Sat, 01 Jun 2024 12:00:00 GMT\r\n"
				   "X-Obs-Text: caf\xc3\xa9\r\n"
				   "\r\n";
	static const char te[] = "PUT /k HTTP/1.1\r\nHOST: h\r\ntransfer-ENCODING: ChUnKeD\r\n\r\n";
	const char *b = head;
	struct sp_http_req req;
	uint64_t first, last;

	(void)state;
	assert_int_equal(CHECK_SPLITS(LIT(head), NULL), (int)sizeof(head) - 1);
	assert_int_equal(parse_once(LIT(head), &req, NULL), (int)sizeof(head) - 1);
	HDR_EQ(b, &req, HOST, "h.example");
	HDR_EQ(b, &req, RANGE, "BYTES=2-3");
	HDR_EQ(b, &req, X_AMZ_DATE, AMZ_DATE);
	HDR_EQ(b, &req, IF_MATCH, "\"a b\"");
	HDR_EQ(b, &req, IF_MODIFIED_SINCE, "Sat, 01 Jun 2024 12:00:00 GMT");
	HDR_EQ(b, &req, IF_UNMODIFIED_SINCE, "Sat, 01 Jun 2024 12:00:00 GMT");
	SPAN_EQ(b, req.headers[4].name, "X-Empty");
	assert_int_equal(req.headers[4].value.len, 0);
	SPAN_EQ(b, req.headers[5].value, "a  b\tc");
	SPAN_EQ(b, req.headers[9].value, "caf\xc3\xa9");
	assert_true(req.has_content_length);
	assert_int_equal(req.content_length, 0);
	assert_int_equal(sp_http_parse_range(b + req.hdr[SP_HTTP_HDR_RANGE].off,
					     req.hdr[SP_HTTP_HDR_RANGE].len, 100, &first, &last),
			 SP_HTTP_RANGE_OK);
	assert_int_equal(first, 2);
	assert_int_equal(last, 3);

	/* Transfer-Encoding value and name in any case */
	assert_int_equal(parse_once(LIT(te), &req, NULL), (int)sizeof(te) - 1);
	assert_true(req.chunked);
}

static void
test_content_length_values(void **state)
{
	static const struct {
		const char *v;
		int rc;
		uint64_t want;
	} cases[] = {
		{"0", 0, 0},
		{"00042", 0, 42},
		{"18446744073709551615", 0, UINT64_MAX}, /* 20 digits, the largest */
		{"18446744073709551616", -SP_HTTP_ERR_BAD_CONTENT_LENGTH, 0},
		{"99999999999999999999", -SP_HTTP_ERR_BAD_CONTENT_LENGTH, 0},
		{"184467440737095516150", -SP_HTTP_ERR_BAD_CONTENT_LENGTH, 0},
		{"000000000000000000000000000001", 0, 1},
		{"", -SP_HTTP_ERR_BAD_CONTENT_LENGTH, 0},
		{"-1", -SP_HTTP_ERR_BAD_CONTENT_LENGTH, 0},
		{"+1", -SP_HTTP_ERR_BAD_CONTENT_LENGTH, 0},
		{"1 2", -SP_HTTP_ERR_BAD_CONTENT_LENGTH, 0},
		{"42, 42", -SP_HTTP_ERR_BAD_CONTENT_LENGTH, 0},
		{"0x10", -SP_HTTP_ERR_BAD_CONTENT_LENGTH, 0},
		{"1e3", -SP_HTTP_ERR_BAD_CONTENT_LENGTH, 0},
	};
	char buf[256];
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sp_http_req req;
		int n = snprintf(buf, sizeof(buf),
				 "PUT /k HTTP/1.1\r\nHost: h\r\nContent-Length: %s\r\n\r\n",
				 cases[i].v);
		int rc = parse_once(buf, (size_t)n, &req, NULL);

		assert_int_equal(rc, cases[i].rc == 0 ? n : cases[i].rc);
		if (rc > 0) {
			assert_true(req.has_content_length);
			assert_true(req.content_length == cases[i].want);
		}
	}
}

/* Errors: one case per row, each asserting the exact error */

struct err_case {
	const char *name;
	const char *s;
	size_t len;
	int err; /* enum sp_http_error */
};

#define ERR_CASE(name, lit, e)                                                                     \
	{                                                                                          \
		name, lit, sizeof(lit) - 1, SP_HTTP_ERR_##e                                        \
	}
#define HOST_H "Host: h\r\n"

static const struct err_case req_errors[] = {
	ERR_CASE("method empty", " / HTTP/1.1\r\n" HOST_H "\r\n", BAD_METHOD),
	ERR_CASE("method not a token", "G(T / HTTP/1.1\r\n" HOST_H "\r\n", BAD_METHOD),
	ERR_CASE("method then HTAB", "GET\t/ HTTP/1.1\r\n" HOST_H "\r\n", BAD_METHOD),
	ERR_CASE("method alone", "GET\r\n" HOST_H "\r\n", BAD_METHOD),
	ERR_CASE("target empty", "GET  / HTTP/1.1\r\n" HOST_H "\r\n", BAD_TARGET),
	ERR_CASE("absolute-form", "GET http://h/k HTTP/1.1\r\n" HOST_H "\r\n", BAD_TARGET),
	ERR_CASE("authority-form", "CONNECT h:443 HTTP/1.1\r\n" HOST_H "\r\n", BAD_TARGET),
	ERR_CASE("asterisk not OPTIONS", "GET * HTTP/1.1\r\n" HOST_H "\r\n", BAD_TARGET),
	ERR_CASE("asterisk plus", "OPTIONS *a HTTP/1.1\r\n" HOST_H "\r\n", BAD_TARGET),
	ERR_CASE("fragment", "GET /k#f HTTP/1.1\r\n" HOST_H "\r\n", BAD_TARGET),
	ERR_CASE("pct one digit", "GET /k%4 HTTP/1.1\r\n" HOST_H "\r\n", BAD_TARGET),
	ERR_CASE("pct not hex", "GET /k%4g HTTP/1.1\r\n" HOST_H "\r\n", BAD_TARGET),
	ERR_CASE("pct at end", "GET /k% HTTP/1.1\r\n" HOST_H "\r\n", BAD_TARGET),
	ERR_CASE("raw utf-8", "GET /caf\xc3\xa9 HTTP/1.1\r\n" HOST_H "\r\n", BAD_TARGET),
	ERR_CASE("brace", "GET /{k} HTTP/1.1\r\n" HOST_H "\r\n", BAD_TARGET),
	ERR_CASE("backslash", "GET /a\\b HTTP/1.1\r\n" HOST_H "\r\n", BAD_TARGET),
	ERR_CASE("DEL in target", "GET /a\x7f HTTP/1.1\r\n" HOST_H "\r\n", BAD_TARGET),
	ERR_CASE("version missing", "GET /\r\n" HOST_H "\r\n", BAD_VERSION),
	ERR_CASE("version 1.2", "GET / HTTP/1.2\r\n" HOST_H "\r\n", BAD_VERSION),
	ERR_CASE("version 2.0", "GET / HTTP/2.0\r\n" HOST_H "\r\n", BAD_VERSION),
	ERR_CASE("version lower", "GET / http/1.1\r\n" HOST_H "\r\n", BAD_VERSION),
	ERR_CASE("version trailing SP", "GET / HTTP/1.1 \r\n" HOST_H "\r\n", BAD_VERSION),
	ERR_CASE("version 1.10", "GET / HTTP/1.10\r\n" HOST_H "\r\n", BAD_VERSION),
	ERR_CASE("space in target", "GET /a b HTTP/1.1\r\n" HOST_H "\r\n", BAD_VERSION),
	ERR_CASE("space before colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", BAD_HEADER_NAME),
	ERR_CASE("empty name", "GET / HTTP/1.1\r\n" HOST_H ": v\r\n\r\n", BAD_HEADER_NAME),
	ERR_CASE("no colon", "GET / HTTP/1.1\r\n" HOST_H "X-A v\r\n\r\n", BAD_HEADER_NAME),
	ERR_CASE("name not a token", "GET / HTTP/1.1\r\n" HOST_H "X(A): v\r\n\r\n",
		 BAD_HEADER_NAME),
	ERR_CASE("name with CTL", "GET / HTTP/1.1\r\n" HOST_H "X\x01: v\r\n\r\n", BAD_HEADER_NAME),
	ERR_CASE("value CTL", "GET / HTTP/1.1\r\n" HOST_H "X-A: a\x01z\r\n\r\n", BAD_HEADER_VALUE),
	ERR_CASE("value DEL", "GET / HTTP/1.1\r\n" HOST_H "X-A: \x7f\r\n\r\n", BAD_HEADER_VALUE),
	ERR_CASE("value ESC", "GET / HTTP/1.1\r\n" HOST_H "X-A: \x1b[0m\r\n\r\n", BAD_HEADER_VALUE),
	ERR_CASE("connection not tokens", "GET / HTTP/1.1\r\n" HOST_H "Connection: clo se\r\n\r\n",
		 BAD_HEADER_VALUE),
	ERR_CASE("connection parameter",
		 "GET / HTTP/1.1\r\n" HOST_H "Connection: close;x=1\r\n\r\n", BAD_HEADER_VALUE),
	ERR_CASE("dup range",
		 "GET / HTTP/1.1\r\n" HOST_H "Range: bytes=0-1\r\nrange: bytes=2-3\r\n\r\n",
		 DUP_HEADER),
	ERR_CASE("dup authorization",
		 "GET / HTTP/1.1\r\n" HOST_H "Authorization: a\r\nAuthorization: a\r\n\r\n",
		 DUP_HEADER),
	ERR_CASE("dup if-none-match",
		 "GET / HTTP/1.1\r\n" HOST_H "If-None-Match: \"a\"\r\nIf-None-Match: \"b\"\r\n\r\n",
		 DUP_HEADER),
	ERR_CASE("dup connection",
		 "GET / HTTP/1.1\r\n" HOST_H "Connection: close\r\nConnection: close\r\n\r\n",
		 DUP_HEADER),
	ERR_CASE("dup expect",
		 "PUT / HTTP/1.1\r\n" HOST_H "Expect: 100-continue\r\nExpect: 100-continue\r\n\r\n",
		 DUP_HEADER),
	ERR_CASE("dup content-length same value",
		 "PUT / HTTP/1.1\r\n" HOST_H "Content-Length: 5\r\nContent-Length: 5\r\n\r\n",
		 DUP_CONTENT_LENGTH),
	ERR_CASE("dup content-length other value",
		 "PUT / HTTP/1.1\r\n" HOST_H "Content-Length: 5\r\ncontent-length: 6\r\n\r\n",
		 DUP_CONTENT_LENGTH),
	ERR_CASE("content-length 20 digits",
		 "PUT / HTTP/1.1\r\n" HOST_H "Content-Length: 99999999999999999999\r\n\r\n",
		 BAD_CONTENT_LENGTH),
	ERR_CASE("content-length list", "PUT / HTTP/1.1\r\n" HOST_H "Content-Length: 5, 5\r\n\r\n",
		 BAD_CONTENT_LENGTH),
	ERR_CASE("content-length empty", "PUT / HTTP/1.1\r\n" HOST_H "Content-Length:\r\n\r\n",
		 BAD_CONTENT_LENGTH),
	ERR_CASE("cl then te",
		 "PUT / HTTP/1.1\r\n" HOST_H
		 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
		 CL_AND_TE),
	ERR_CASE("te then cl",
		 "PUT / HTTP/1.1\r\n" HOST_H
		 "Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n",
		 CL_AND_TE),
	ERR_CASE("te gzip", "PUT / HTTP/1.1\r\n" HOST_H "Transfer-Encoding: gzip, chunked\r\n\r\n",
		 BAD_TRANSFER_ENCODING),
	ERR_CASE("te identity", "PUT / HTTP/1.1\r\n" HOST_H "Transfer-Encoding: identity\r\n\r\n",
		 BAD_TRANSFER_ENCODING),
	ERR_CASE("te chunked twice in one",
		 "PUT / HTTP/1.1\r\n" HOST_H "Transfer-Encoding: chunked, chunked\r\n\r\n",
		 BAD_TRANSFER_ENCODING),
	ERR_CASE("te two lines",
		 "PUT / HTTP/1.1\r\n" HOST_H
		 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
		 BAD_TRANSFER_ENCODING),
	ERR_CASE("te xchunked", "PUT / HTTP/1.1\r\n" HOST_H "Transfer-Encoding: xchunked\r\n\r\n",
		 BAD_TRANSFER_ENCODING),
	ERR_CASE("te in http/1.0", "PUT / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
		 BAD_TRANSFER_ENCODING),
	ERR_CASE("obs-fold", "GET / HTTP/1.1\r\n" HOST_H "X-A: a\r\n  b\r\n\r\n", OBS_FOLD),
	ERR_CASE("obs-fold tab", "GET / HTTP/1.1\r\n" HOST_H "X-A: a\r\n\tb\r\n\r\n", OBS_FOLD),
	ERR_CASE("space before first header", "GET / HTTP/1.1\r\n Host: h\r\n\r\n", OBS_FOLD),
	ERR_CASE("bare LF request line", "GET / HTTP/1.1\n" HOST_H "\r\n", BARE_LF),
	ERR_CASE("bare LF header", "GET / HTTP/1.1\r\nHost: h\n\r\n", BARE_LF),
	ERR_CASE("bare LF end", "GET / HTTP/1.1\r\n" HOST_H "\n", BARE_LF),
	ERR_CASE("bare LF first byte", "\nGET / HTTP/1.1\r\n" HOST_H "\r\n", BARE_LF),
	ERR_CASE("bare CR in value", "GET / HTTP/1.1\r\n" HOST_H "X-A: a\rb\r\n\r\n", BARE_CR),
	ERR_CASE("CR CR LF", "GET / HTTP/1.1\r\r\n" HOST_H "\r\n", BARE_CR),
	ERR_CASE("bare CR as separator", "GET / HTTP/1.1\r\n" HOST_H "X-A: a\rX-B: b\r\n\r\n",
		 BARE_CR),
	ERR_CASE("NUL in value", "GET / HTTP/1.1\r\n" HOST_H "X-A: a\0b\r\n\r\n", NUL_BYTE),
	ERR_CASE("NUL in target", "GET /a\0 HTTP/1.1\r\n" HOST_H "\r\n", NUL_BYTE),
	ERR_CASE("NUL line", "GET / HTTP/1.1\r\n" HOST_H "\0\r\n\r\n", NUL_BYTE),
	ERR_CASE("host missing", "GET / HTTP/1.1\r\nX-A: b\r\n\r\n", BAD_HOST),
	ERR_CASE("host twice", "GET / HTTP/1.1\r\nHost: h\r\nhost: h\r\n\r\n", BAD_HOST),
	ERR_CASE("host twice 1.0", "GET / HTTP/1.0\r\nHost: h\r\nHost: i\r\n\r\n", BAD_HOST),
	ERR_CASE("host empty", "GET / HTTP/1.1\r\nHost:  \r\n\r\n", BAD_HOST),
	ERR_CASE("host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", BAD_HOST),
	ERR_CASE("host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", BAD_HOST),
	ERR_CASE("host with at", "GET / HTTP/1.1\r\nHost: u@h\r\n\r\n", BAD_HOST),
};

static void
test_request_errors(void **state)
{
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(req_errors) / sizeof(req_errors[0]); i++) {
		const struct err_case *c = &req_errors[i];
		struct sp_http_req req;
		int rc = parse_once(c->s, c->len, &req, NULL);

		if (rc != -c->err) {
			print_error("%s: rc %d (%s), want %s\n", c->name, rc,
				    sp_http_error_name(rc), sp_http_error_name(c->err));
			fail();
		}
		assert_int_equal(CHECK_SPLITS(c->s, c->len, NULL), -c->err);
	}
}

/* Garbage is refused as soon as its first line is complete, not after max_head bytes. */
static void
test_early_refusal(void **state)
{
	static const char tls[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n";
	static const char lead[] = "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
	struct sp_http_req req;

	(void)state;
	assert_int_equal(parse_once(LIT("SSH-2.0-OpenSSH_9.2\r\n"), &req, NULL),
			 -SP_HTTP_ERR_BAD_METHOD);
	/* a TLS ClientHello: its NUL bytes are found first */
	assert_int_equal(parse_once(LIT(tls), &req, NULL), -SP_HTTP_ERR_NUL_BYTE);
	assert_int_equal(parse_once(tls, 4, &req, NULL), SP_HTTP_INCOMPLETE);
	/* but a partial line is waited for */
	assert_int_equal(parse_once(LIT("SSH-2.0-OpenSSH_9.2"), &req, NULL), SP_HTTP_INCOMPLETE);
	/* empty lines before the request line are skipped (and belong to the head) */
	assert_int_equal(CHECK_SPLITS(LIT(lead), NULL), (int)sizeof(lead) - 1);
	assert_int_equal(parse_once(LIT(lead), &req, NULL), (int)sizeof(lead) - 1);
	assert_int_equal(req.method_tok.off, 4);
	SPAN_EQ(lead, req.path, "/");
}

/* Limits */

/* A valid request of exactly n bytes (n >= 40), padded with an X-Pad header. */
static size_t
build_sized(char *b, size_t n)
{
	static const char pre[] = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: ";
	size_t pad = n - (sizeof(pre) - 1) - 4;

	memcpy(b, pre, sizeof(pre) - 1);
	memset(b + sizeof(pre) - 1, 'p', pad);
	memcpy(b + sizeof(pre) - 1 + pad, "\r\n\r\n", 4);
	return n;
}

static void
test_limit_head(void **state)
{
	struct sp_http_limits lim = SP_HTTP_LIMITS_DEFAULT;
	struct sp_http_req req;
	static char b[8200];
	size_t n;

	(void)state;
	n = build_sized(b, 200);
	lim.max_head = 200;
	assert_int_equal(CHECK_SPLITS(b, n, &lim), 200);
	lim.max_head = 199;
	assert_int_equal(CHECK_SPLITS(b, n, &lim), -SP_HTTP_ERR_HEADER_TOO_LONG);
	/* the error needs max_head bytes: one fewer is still incomplete */
	assert_int_equal(parse_once(b, 198, &req, &lim), SP_HTTP_INCOMPLETE);
	assert_int_equal(parse_once(b, 199, &req, &lim), -SP_HTTP_ERR_HEADER_TOO_LONG);
	/* bytes after a head that fits do not count */
	lim.max_head = 200;
	memcpy(b + 200, "GET", 3);
	assert_int_equal(parse_once(b, 203, &req, &lim), 200);

	/* default limit (lim NULL): 8192 fits, 8193 does not */
	n = build_sized(b, 8192);
	assert_int_equal(parse_once(b, n, &req, NULL), 8192);
	n = build_sized(b, 8193);
	assert_int_equal(parse_once(b, n, &req, NULL), -SP_HTTP_ERR_HEADER_TOO_LONG);
	assert_int_equal(parse_once(b, 8191, &req, NULL), SP_HTTP_INCOMPLETE);
	assert_int_equal(parse_once(b, 8192, &req, NULL), -SP_HTTP_ERR_HEADER_TOO_LONG);

	/* an error in a line inside the window wins over the length */
	n = build_sized(b, 300);
	b[20] = '\0'; /* in the Host line */
	lim.max_head = 250;
	assert_int_equal(CHECK_SPLITS(b, n, &lim), -SP_HTTP_ERR_NUL_BYTE);
	/* max_head 0: nothing fits */
	lim.max_head = 0;
	assert_int_equal(parse_once(b, 0, &req, &lim), -SP_HTTP_ERR_HEADER_TOO_LONG);
}

static void
test_limit_target(void **state)
{
	static const char at_limit[] = "GET /12345678 HTTP/1.1\r\nHost: h\r\n\r\n";
	static const char past_limit[] = "GET /123456789 HTTP/1.1\r\nHost: h\r\n\r\n";
	static const char query_at_limit[] = "GET /1234?678 HTTP/1.1\r\nHost: h\r\n\r\n";
	static const char query_past_limit[] = "GET /1234?6789 HTTP/1.1\r\nHost: h\r\n\r\n";
	struct sp_http_limits lim = SP_HTTP_LIMITS_DEFAULT;
	struct sp_http_req req;
	static char b[8192];
	size_t tlen, n;

	(void)state;
	for (tlen = 4095; tlen <= 4097; tlen++) {
		memcpy(b, "GET /", 5);
		memset(b + 5, 'a', tlen - 1);
		n = 4 + tlen;
		memcpy(b + n, " HTTP/1.1\r\nHost: h\r\n\r\n", 22);
		n += 22;
		assert_int_equal(parse_once(b, n, &req, NULL),
				 tlen <= 4096 ? (int)n : -SP_HTTP_ERR_TARGET_TOO_LONG);
	}
	lim.max_target = 9;
	assert_int_equal(CHECK_SPLITS(LIT(at_limit), &lim), (int)sizeof(at_limit) - 1);
	assert_int_equal(CHECK_SPLITS(LIT(past_limit), &lim), -SP_HTTP_ERR_TARGET_TOO_LONG);
	/* the query counts */
	assert_int_equal(CHECK_SPLITS(LIT(query_at_limit), &lim), (int)sizeof(query_at_limit) - 1);
	assert_int_equal(CHECK_SPLITS(LIT(query_past_limit), &lim), -SP_HTTP_ERR_TARGET_TOO_LONG);
}

/* A request with Host plus (count - 1) X-N headers; returns its length. */
static size_t
build_headers(char *b, unsigned int count)
{
	size_t n = (size_t)sprintf(b, "GET / HTTP/1.1\r\nHost: h\r\n");
	unsigned int i;

	for (i = 1; i < count; i++)
		n += (size_t)sprintf(b + n, "X-%u: %u\r\n", i, i);
	n += (size_t)sprintf(b + n, "\r\n");
	return n;
}

static void
test_limit_headers(void **state)
{
	struct sp_http_limits lim = SP_HTTP_LIMITS_DEFAULT;
	struct sp_http_req req;
	static char b[4096];
	size_t n;

	(void)state;
	n = build_headers(b, 64);
	assert_int_equal(CHECK_SPLITS(b, n, NULL), (int)n);
	assert_int_equal(parse_once(b, n, &req, NULL), (int)n);
	assert_int_equal(req.n_headers, 64);
	SPAN_EQ(b, req.headers[63].name, "X-63");
	SPAN_EQ(b, req.headers[63].value, "63");
	n = build_headers(b, 65);
	assert_int_equal(CHECK_SPLITS(b, n, NULL), -SP_HTTP_ERR_TOO_MANY_HEADERS);

	lim.max_headers = 3;
	n = build_headers(b, 3);
	assert_int_equal(CHECK_SPLITS(b, n, &lim), (int)n);
	n = build_headers(b, 4);
	assert_int_equal(CHECK_SPLITS(b, n, &lim), -SP_HTTP_ERR_TOO_MANY_HEADERS);

	/* more than the array holds is clamped to SP_HTTP_MAX_HEADERS */
	lim.max_headers = 1000;
	n = build_headers(b, 64);
	assert_int_equal(parse_once(b, n, &req, &lim), (int)n);
	n = build_headers(b, 65);
	assert_int_equal(parse_once(b, n, &req, &lim), -SP_HTTP_ERR_TOO_MANY_HEADERS);

	/* none allowed: HTTP/1.0 without headers still parses */
	lim.max_headers = 0;
	assert_int_equal(parse_once(LIT("GET / HTTP/1.0\r\n\r\n"), &req, &lim), 18);
	assert_int_equal(parse_once(LIT("GET / HTTP/1.0\r\nA: b\r\n\r\n"), &req, &lim),
			 -SP_HTTP_ERR_TOO_MANY_HEADERS);
}

/* Byte classes: every byte in every position, against the RFC definitions written out here. */

static bool
in_set(int c, const char *set)
{
	return c != 0 && strchr(set, c) != NULL;
}

#define ALNUM "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

static void
test_byte_classes(void **state)
{
	struct sp_http_req req;
	char b[128];
	int c, rc;

	(void)state;
	for (c = 0; c < 256; c++) {
		bool tchar = in_set(c, ALNUM "!#$%&'*+-.^_`|~");
		bool pchar = in_set(c, ALNUM "-._~!$&'()*+,;=:@/?");
		bool vchar = (c >= 0x21 && c <= 0x7e) || c >= 0x80 || c == ' ' || c == '\t';
		bool hostc = in_set(c, ALNUM "-._~!$&'()*+,;=:[]%");
		int line_err = c == '\0'   ? -SP_HTTP_ERR_NUL_BYTE
			       : c == '\r' ? -SP_HTTP_ERR_BARE_CR
			       : c == '\n' ? -SP_HTTP_ERR_BARE_LF
					   : 0;

		/* header name (':' would end it: "X" with the value "Y: v") */
		memcpy(b, "GET / HTTP/1.1\r\nHost: h\r\nX", 26);
		b[26] = (char)c;
		memcpy(b + 27, "Y: v\r\n\r\n", 8);
		rc = parse_once(b, 35, &req, NULL);
		if (c != ':')
			assert_int_equal(rc, line_err != 0 ? line_err
					     : tchar	   ? 35
							   : -SP_HTTP_ERR_BAD_HEADER_NAME);

		/* header value (inside, so OWS is not trimmed) */
		memcpy(b, "GET / HTTP/1.1\r\nHost: h\r\nX-A: a", 31);
		b[31] = (char)c;
		memcpy(b + 32, "b\r\n\r\n", 5);
		rc = parse_once(b, 37, &req, NULL);
		assert_int_equal(rc, line_err != 0 ? line_err
				     : vchar	   ? 37
						   : -SP_HTTP_ERR_BAD_HEADER_VALUE);

		/* Host value */
		memcpy(b, "GET / HTTP/1.1\r\nHost: a", 23);
		b[23] = (char)c;
		memcpy(b + 24, "b\r\n\r\n", 5);
		rc = parse_once(b, 29, &req, NULL);
		assert_int_equal(rc, line_err != 0 ? line_err
				     : !vchar	   ? -SP_HTTP_ERR_BAD_HEADER_VALUE
				     : hostc	   ? 29
						   : -SP_HTTP_ERR_BAD_HOST);

		/* target */
		memcpy(b, "GET /a", 6);
		b[6] = (char)c;
		memcpy(b + 7, "b HTTP/1.1\r\nHost: h\r\n\r\n", 23);
		rc = parse_once(b, 30, &req, NULL);
		assert_int_equal(rc, line_err != 0 ? line_err
				     : c == ' '	   ? -SP_HTTP_ERR_BAD_VERSION
				     : pchar	   ? 30
						   : -SP_HTTP_ERR_BAD_TARGET);

		/* method ("G T / ..." is method "G" with target "T") */
		b[0] = 'G';
		b[1] = (char)c;
		memcpy(b + 2, "T / HTTP/1.1\r\nHost: h\r\n\r\n", 25);
		rc = parse_once(b, 27, &req, NULL);
		assert_int_equal(rc, line_err != 0 ? line_err
				     : c == ' '	   ? -SP_HTTP_ERR_BAD_TARGET
				     : tchar	   ? 27
						   : -SP_HTTP_ERR_BAD_METHOD);
	}
}

/* Pipelining */

static void
test_pipelined(void **state)
{
	static const char r1[] = "GET /b/one HTTP/1.1\r\nHost: h\r\n\r\n";
	static const char r2[] = "PUT /b/two HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
	static const char r4[] = "HEAD /b/four HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
	static const int methods[] = {SP_HTTP_METHOD_GET, SP_HTTP_METHOD_PUT, SP_HTTP_METHOD_PUT,
				      SP_HTTP_METHOD_HEAD};
	char all[1024];
	size_t n = 0, off = 0;
	unsigned int count = 0;

	(void)state;
	memcpy(all + n, r1, sizeof(r1) - 1), n += sizeof(r1) - 1;
	memcpy(all + n, r2, sizeof(r2) - 1), n += sizeof(r2) - 1;
	memcpy(all + n, req_curl_chunked_put, sizeof(req_curl_chunked_put) - 1);
	n += sizeof(req_curl_chunked_put) - 1;
	memcpy(all + n, body_curl_chunked, sizeof(body_curl_chunked) - 1);
	n += sizeof(body_curl_chunked) - 1;
	memcpy(all + n, r4, sizeof(r4) - 1), n += sizeof(r4) - 1;

	while (off < n) {
		struct sp_http_req req;
		int rc = parse_once(all + off, n - off, &req, NULL);

		assert_true(rc > 0);
		assert_true(count < 4);
		assert_int_equal(req.method, methods[count]);
		off += (size_t)rc;
		if (req.has_content_length) {
			assert_memory_equal(all + off, "hello", 5);
			off += req.content_length;
		} else if (req.chunked) {
			struct chunk_result *r = malloc(sizeof(*r));
			size_t bound = n - off;

			assert_non_null(r);
			chunk_run(all + off, &bound, 1, r);
			assert_int_equal(r->rc, SP_HTTP_CHUNK_DONE);
			assert_int_equal(r->used, sizeof(body_curl_chunked) - 1);
			assert_memory_equal(r->data, "hello, world", 12);
			off += r->used;
			free(r);
		}
		assert_int_equal(req.keep_alive, count != 3);
		count++;
	}
	assert_int_equal(count, 4);
	assert_int_equal(off, n);

	/* the parser stops at the end of the head: what follows, even garbage, is not read */
	memcpy(all, r1, sizeof(r1) - 1);
	memcpy(all + sizeof(r1) - 1, "\0\n\r\x01 junk", 10);
	assert_int_equal(CHECK_SPLITS(all, sizeof(r1) - 1 + 10, NULL), (int)sizeof(r1) - 1);
}

/* Chunked body */

static void
test_chunked_valid(void **state)
{
	(void)state;
	CHECK_CHUNKED_ALL("0\r\n\r\n", "");
	CHECK_CHUNKED_ALL("1\r\na\r\n0\r\n\r\n", "a");
	CHECK_CHUNKED_ALL("A\r\n0123456789\r\n00\r\n\r\n", "0123456789");
	CHECK_CHUNKED_ALL("a\r\n0123456789\r\nF\r\nabcdefghijklmno\r\n0\r\n\r\n",
			  "0123456789abcdefghijklmno");
	/* leading zeros do not overflow */
	CHECK_CHUNKED_ALL("00000000000000000000000000000001\r\nz\r\n0\r\n\r\n", "z");
	/* extensions: names, token and quoted values, BWS, escapes, aws-chunked signatures */
	CHECK_CHUNKED_ALL("3;a\r\nxyz\r\n0;b=c\r\n\r\n", "xyz");
	CHECK_CHUNKED_ALL("3 ; a = b ;c\t;d=\"q \\\" ; \\\\\"\r\nxyz\r\n0\r\n\r\n", "xyz");
	CHECK_CHUNKED_ALL(
		"3;chunk-signature=" SIG64 "\r\nxyz\r\n0;chunk-signature=" SIG64 "\r\n\r\n", "xyz");
	CHECK_CHUNKED_ALL("3;a=\"caf\xc3\xa9\"\r\nxyz\r\n0\r\n\r\n", "xyz");
	/* trailers */
	CHECK_CHUNKED_ALL("3\r\nxyz\r\n0\r\nX-Sum: abc\r\nx-amz-checksum-crc32:DUoRhQ==\r\n\r\n",
			  "xyz");
	CHECK_CHUNKED_ALL("0\r\nA:\r\nB: \t\r\n\r\n", "");
	/* what follows the body (the next request) is not consumed */
	CHECK_CHUNKED("2\r\nhi\r\n0\r\n\r\nGET / HTTP/1.1\r\n", SP_HTTP_CHUNK_DONE, "hi", 12);
	/* a body not finished yet: everything given is consumed */
	CHECK_CHUNKED("5\r\nhel", SP_HTTP_CHUNK_DATA, "hel", 6);
	CHECK_CHUNKED("5\r\nhello\r\n0\r\nX: y\r\n", SP_HTTP_CHUNK_MORE, "hello", 19);
	CHECK_CHUNKED("5;a=\"b", SP_HTTP_CHUNK_MORE, "", 6);
	CHECK_CHUNKED("ffffffffffffffff\r\n", SP_HTTP_CHUNK_MORE, "", 18); /* the largest size */
}

static void
test_chunked_done_sticky(void **state)
{
	struct sp_http_chunked st;
	size_t used, doff, dlen;

	(void)state;
	sp_http_chunked_init(&st);
	assert_int_equal(sp_http_chunked_feed(&st, LIT("0\r\n\r\nxx"), &used, &doff, &dlen),
			 SP_HTTP_CHUNK_DONE);
	assert_int_equal(used, 5);
	assert_int_equal(sp_http_chunked_feed(&st, LIT("1\r\n"), &used, &doff, &dlen),
			 SP_HTTP_CHUNK_DONE);
	assert_int_equal(used, 0);
	sp_http_chunked_init(&st);
	assert_int_equal(sp_http_chunked_feed(&st, LIT("g"), &used, &doff, &dlen),
			 -SP_HTTP_ERR_BAD_CHUNK_SIZE);
	assert_int_equal(sp_http_chunked_feed(&st, LIT("0\r\n\r\n"), &used, &doff, &dlen),
			 -SP_HTTP_ERR_BAD_CHUNK_SIZE);
	assert_int_equal(used, 0);
	/* empty input */
	sp_http_chunked_init(&st);
	assert_int_equal(sp_http_chunked_feed(&st, "", 0, &used, &doff, &dlen), SP_HTTP_CHUNK_MORE);
	assert_int_equal(used, 0);
	assert_int_equal(st.total, 0);
}

struct chunk_err_case {
	const char *name;
	const char *s;
	size_t len;
	int err;
	size_t at; /* offset of the offending byte */
};

#define CHUNK_ERR(name, lit, e, at)                                                                \
	{                                                                                          \
		name, lit, sizeof(lit) - 1, SP_HTTP_ERR_##e, at                                    \
	}

static const struct chunk_err_case chunk_errors[] = {
	CHUNK_ERR("no size", "\r\n", BAD_CHUNK_SIZE, 0),
	CHUNK_ERR("not hex", "g\r\n", BAD_CHUNK_SIZE, 0),
	CHUNK_ERR("negative", "-1\r\n", BAD_CHUNK_SIZE, 0),
	CHUNK_ERR("0x prefix", "0x5\r\n", BAD_CHUNK_SIZE, 1),
	CHUNK_ERR("space before size", " 5\r\n", BAD_CHUNK_SIZE, 0),
	CHUNK_ERR("garbage after size", "5g\r\n", BAD_CHUNK_SIZE, 1),
	CHUNK_ERR("17 hex digits", "10000000000000000\r\n", CHUNK_SIZE_OVERFLOW, 16),
	CHUNK_ERR("2^64 + more", "fffffffffffffffff\r\n", CHUNK_SIZE_OVERFLOW, 16),
	CHUNK_ERR("empty ext", "5;\r\n", BAD_CHUNK_EXT, 2),
	CHUNK_ERR("ext no name", "5;=x\r\n", BAD_CHUNK_EXT, 2),
	CHUNK_ERR("ext no value", "5;a=\r\n", BAD_CHUNK_EXT, 4),
	CHUNK_ERR("ext trailing BWS", "5;a=b \r\n", BAD_CHUNK_EXT, 6),
	CHUNK_ERR("size trailing BWS", "5 \r\n", BAD_CHUNK_EXT, 2),
	CHUNK_ERR("ext name trailing BWS", "5;a \r\n", BAD_CHUNK_EXT, 4),
	CHUNK_ERR("ext unterminated quote", "5;a=\"b\r\n", BAD_CHUNK_EXT, 6),
	CHUNK_ERR("ext after quote", "5;a=\"b\"c\r\n", BAD_CHUNK_EXT, 7),
	CHUNK_ERR("ext bad token", "5;a=b@c\r\n", BAD_CHUNK_EXT, 5),
	CHUNK_ERR("ext CTL in quote", "5;a=\"\x01\"\r\n", BAD_CHUNK_EXT, 5),
	CHUNK_ERR("ext escaped CTL", "5;a=\"\\\x01\"\r\n", BAD_CHUNK_EXT, 6),
	CHUNK_ERR("data too long", "3\r\nabcd\r\n0\r\n\r\n", BAD_CHUNK_END, 6),
	CHUNK_ERR("data not ended", "3\r\nabc0\r\n\r\n", BAD_CHUNK_END, 6),
	CHUNK_ERR("bare LF after size", "3\nabc\r\n0\r\n\r\n", BARE_LF, 1),
	CHUNK_ERR("bare LF after data", "3\r\nabc\n0\r\n\r\n", BARE_LF, 6),
	CHUNK_ERR("bare LF in ext", "3;a=b\nabc\r\n", BARE_LF, 5),
	CHUNK_ERR("bare LF in trailer", "0\r\nX: y\n\r\n", BARE_LF, 7),
	CHUNK_ERR("bare LF end", "0\r\n\n", BARE_LF, 3),
	CHUNK_ERR("bare CR after size", "3\rabc\r\n", BARE_CR, 2),
	CHUNK_ERR("bare CR after data", "3\r\nabc\rX", BARE_CR, 7),
	CHUNK_ERR("bare CR in trailer", "0\r\nX: y\rZ\r\n\r\n", BARE_CR, 8),
	CHUNK_ERR("bare CR end", "0\r\n\rX", BARE_CR, 4),
	CHUNK_ERR("NUL in size", "3\0\r\n", NUL_BYTE, 1),
	CHUNK_ERR("NUL in ext", "3;a=\0\r\n", NUL_BYTE, 4),
	CHUNK_ERR("NUL in trailer", "0\r\nX: \0\r\n\r\n", NUL_BYTE, 6),
	CHUNK_ERR("trailer no name", "0\r\n: y\r\n\r\n", BAD_TRAILER, 3),
	CHUNK_ERR("trailer no colon", "0\r\nX y\r\n\r\n", BAD_TRAILER, 4),
	CHUNK_ERR("trailer space before colon", "0\r\nX : y\r\n\r\n", BAD_TRAILER, 4),
	CHUNK_ERR("trailer CTL", "0\r\nX: \x01\r\n\r\n", BAD_TRAILER, 6),
	CHUNK_ERR("trailer folded", "0\r\nX: y\r\n z\r\n\r\n", OBS_FOLD, 9),
};

static void
test_chunked_errors(void **state)
{
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(chunk_errors) / sizeof(chunk_errors[0]); i++) {
		const struct chunk_err_case *c = &chunk_errors[i];

		check_chunked(c->s, c->len, -c->err, NULL, 0, c->at, c->name, __LINE__);
	}
}

/* A chunk of one byte whose size line ("1;eee...\r\n") is line bytes long, then the last chunk. */
static size_t
build_long_ext(char *b, size_t line)
{
	b[0] = '1';
	b[1] = ';';
	memset(b + 2, 'e', line - 4);
	memcpy(b + line - 2, "\r\nx\r\n0\r\n\r\n", 10);
	return line + 8;
}

/* A body with an empty last chunk and a trailer section of trailer bytes ("X: vvv...\r\n\r\n"). */
static size_t
build_long_trailer(char *b, size_t trailer)
{
	memcpy(b, "0\r\nX: ", 6);
	memset(b + 6, 'v', trailer - 7);
	memcpy(b + 3 + trailer - 4, "\r\n\r\n", 4);
	return 3 + trailer;
}

static void
test_chunked_limits(void **state)
{
	static char b[20000];
	size_t n;
	int i;

	(void)state;
	/* a size line of exactly SP_HTTP_CHUNK_LINE_MAX bytes (CRLF included), then one more */
	n = build_long_ext(b, SP_HTTP_CHUNK_LINE_MAX);
	check_chunked(b, n, SP_HTTP_CHUNK_DONE, "x", 1, n, "", __LINE__);
	n = build_long_ext(b, SP_HTTP_CHUNK_LINE_MAX + 1);
	/* refused at its last byte (the LF), the first one past the limit */
	check_chunked(b, n, -SP_HTTP_ERR_CHUNK_LINE_TOO_LONG, NULL, 0, SP_HTTP_CHUNK_LINE_MAX, "",
		      __LINE__);
	/* the limit is per line: several long lines are fine */
	n = 0;
	for (i = 0; i < 4; i++)
		n += build_long_ext(b + n, SP_HTTP_CHUNK_LINE_MAX) - 5; /* drop each "0\r\n\r\n" */
	memcpy(b + n, "0\r\n\r\n", 5);
	n += 5;
	check_chunked(b, n, SP_HTTP_CHUNK_DONE, "xxxx", 4, n, "", __LINE__);

	/* trailer section: SP_HTTP_TRAILER_MAX bytes fit, one more does not */
	n = build_long_trailer(b, SP_HTTP_TRAILER_MAX);
	check_chunked(b, n, SP_HTTP_CHUNK_DONE, "", 0, n, "", __LINE__);
	n = build_long_trailer(b, SP_HTTP_TRAILER_MAX + 1);
	check_chunked(b, n, -SP_HTTP_ERR_TRAILER_TOO_LONG, NULL, 0, 3 + SP_HTTP_TRAILER_MAX, "",
		      __LINE__);
}

/* Range */

static void
test_range(void **state)
{
	static const struct {
		const char *v;
		uint64_t size;
		int rc;
		uint64_t first, last;
	} cases[] = {
		{"bytes=0-0", 10, SP_HTTP_RANGE_OK, 0, 0},
		{"bytes=0-0", 1, SP_HTTP_RANGE_OK, 0, 0},
		{"bytes=0-9", 10, SP_HTTP_RANGE_OK, 0, 9},
		{"bytes=3-3", 10, SP_HTTP_RANGE_OK, 3, 3},
		{"bytes=5-100", 10, SP_HTTP_RANGE_OK, 5, 9},
		{"bytes=5-", 10, SP_HTTP_RANGE_OK, 5, 9},
		{"bytes=9-", 10, SP_HTTP_RANGE_OK, 9, 9},
		{"bytes=-5", 10, SP_HTTP_RANGE_OK, 5, 9},
		{"bytes=-10", 10, SP_HTTP_RANGE_OK, 0, 9},
		{"bytes=-11", 10, SP_HTTP_RANGE_OK, 0, 9},
		{"bytes=-1", 1, SP_HTTP_RANGE_OK, 0, 0},
		{"BYTES=0-1", 10, SP_HTTP_RANGE_OK, 0, 1},
		{"Bytes=0-1", 10, SP_HTTP_RANGE_OK, 0, 1},
		{"bytes=0-99999999999999999999999", 10, SP_HTTP_RANGE_OK, 0, 9},
		{"bytes=-99999999999999999999999", 10, SP_HTTP_RANGE_OK, 0, 9},
		{"bytes=0-18446744073709551615", UINT64_MAX, SP_HTTP_RANGE_OK, 0, UINT64_MAX - 1},
		{"bytes=18446744073709551614-", UINT64_MAX, SP_HTTP_RANGE_OK, UINT64_MAX - 1,
		 UINT64_MAX - 1},
		/* unsatisfiable: 416 */
		{"bytes=10-", 10, SP_HTTP_RANGE_UNSATISFIABLE, 0, 0},
		{"bytes=10-20", 10, SP_HTTP_RANGE_UNSATISFIABLE, 0, 0},
		{"bytes=-0", 10, SP_HTTP_RANGE_UNSATISFIABLE, 0, 0},
		{"bytes=-0", 0, SP_HTTP_RANGE_UNSATISFIABLE, 0, 0},
		{"bytes=0-0", 0, SP_HTTP_RANGE_UNSATISFIABLE, 0, 0},
		{"bytes=0-", 0, SP_HTTP_RANGE_UNSATISFIABLE, 0, 0},
		{"bytes=99999999999999999999999-", 10, SP_HTTP_RANGE_UNSATISFIABLE, 0, 0},
		{"bytes=18446744073709551615-", UINT64_MAX, SP_HTTP_RANGE_UNSATISFIABLE, 0, 0},
		/* ignored: 200 with the whole object */
		{"bytes=-1", 0, SP_HTTP_RANGE_IGNORE, 0, 0},
		{"bytes=5-2", 10, SP_HTTP_RANGE_IGNORE, 0, 0},
		{"bytes=1-0", 10, SP_HTTP_RANGE_IGNORE, 0, 0},
		{"bytes=0-1,3-4", 10, SP_HTTP_RANGE_IGNORE, 0, 0},
		{"bytes=0-1, 3-4", 10, SP_HTTP_RANGE_IGNORE, 0, 0},
		{"bytes=0-1,", 10, SP_HTTP_RANGE_IGNORE, 0, 0},
		{"bytes= 0-1", 10, SP_HTTP_RANGE_IGNORE, 0, 0},
		{"bytes=0 -1", 10, SP_HTTP_RANGE_IGNORE, 0, 0},
		{"bytes =0-1", 10, SP_HTTP_RANGE_IGNORE, 0, 0},
		{"bytes=-", 10, SP_HTTP_RANGE_IGNORE, 0, 0},
		{"bytes=", 10, SP_HTTP_RANGE_IGNORE, 0, 0},
		{"bytes", 10, SP_HTTP_RANGE_IGNORE, 0, 0},
		{"", 10, SP_HTTP_RANGE_IGNORE, 0, 0},
		{"items=0-1", 10, SP_HTTP_RANGE_IGNORE, 0, 0},
		{"bytes=a-b", 10, SP_HTTP_RANGE_IGNORE, 0, 0},
		{"bytes=0-1x", 10, SP_HTTP_RANGE_IGNORE, 0, 0},
		{"bytes=--1", 10, SP_HTTP_RANGE_IGNORE, 0, 0},
		{"bytes=+1-2", 10, SP_HTTP_RANGE_IGNORE, 0, 0},
		{"bytes=0x1-2", 10, SP_HTTP_RANGE_IGNORE, 0, 0},
	};
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = strlen(cases[i].v);
		char *copy = malloc(n ? n : 1);
		uint64_t first = 777, last = 777;
		int rc;

		assert_non_null(copy);
		memcpy(copy, cases[i].v, n);
		rc = sp_http_parse_range(copy, n, cases[i].size, &first, &last);
		free(copy);
		if (rc != cases[i].rc) {
			print_error("\"%s\" size %llu: rc %d, want %d\n", cases[i].v,
				    (unsigned long long)cases[i].size, rc, cases[i].rc);
			fail();
		}
		if (rc == SP_HTTP_RANGE_OK) {
			assert_true(first == cases[i].first);
			assert_true(last == cases[i].last);
		} else { /* untouched */
			assert_int_equal(first, 777);
			assert_int_equal(last, 777);
		}
	}
}

/* Names */

static void
test_names(void **state)
{
	static const char *const want[] = {
		"none",
		"bad_method",
		"bad_target",
		"target_too_long",
		"bad_version",
		"bad_header_name",
		"bad_header_value",
		"header_too_long",
		"too_many_headers",
		"dup_header",
		"dup_content_length",
		"bad_content_length",
		"cl_and_te",
		"bad_transfer_encoding",
		"obs_fold",
		"bare_lf",
		"bare_cr",
		"nul_byte",
		"bad_host",
		"bad_chunk_size",
		"chunk_size_overflow",
		"bad_chunk_ext",
		"chunk_line_too_long",
		"bad_chunk_end",
		"bad_trailer",
		"trailer_too_long",
	};
	unsigned int i;

	(void)state;
	/* a new error added to the X-macro must be added here and get a test case */
	assert_int_equal(sizeof(want) / sizeof(want[0]), SP_HTTP_ERR_MAX);
	for (i = 0; i < SP_HTTP_ERR_MAX; i++) {
		assert_string_equal(sp_http_error_name((int)i), want[i]);
		assert_string_equal(sp_http_error_name(-(int)i), want[i]);
	}
	assert_string_equal(sp_http_error_name(SP_HTTP_ERR_MAX), "unknown");
	assert_string_equal(sp_http_error_name(-SP_HTTP_ERR_MAX), "unknown");
	assert_string_equal(sp_http_error_name(INT_MIN), "unknown");
	assert_string_equal(sp_http_error_name(INT_MAX), "unknown");
	assert_string_equal(sp_http_hdr_name(SP_HTTP_HDR_HOST), "host");
	assert_string_equal(sp_http_hdr_name(SP_HTTP_HDR_X_AMZ_CONTENT_SHA256),
			    "x-amz-content-sha256");
	assert_string_equal(sp_http_hdr_name(SP_HTTP_HDR_MAX), "unknown");
	/* every known header fits in hdr_present */
	assert_true(SP_HTTP_HDR_MAX <= 32);
}

/* Every error of the table is produced by at least one case above. */
static void
test_every_error_covered(void **state)
{
	bool seen[SP_HTTP_ERR_MAX] = {false};
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(req_errors) / sizeof(req_errors[0]); i++)
		seen[req_errors[i].err] = true;
	for (i = 0; i < sizeof(chunk_errors) / sizeof(chunk_errors[0]); i++)
		seen[chunk_errors[i].err] = true;
	/* covered by the limit tests */
	seen[SP_HTTP_ERR_NONE] = true;
	seen[SP_HTTP_ERR_TARGET_TOO_LONG] = true;
	seen[SP_HTTP_ERR_HEADER_TOO_LONG] = true;
	seen[SP_HTTP_ERR_TOO_MANY_HEADERS] = true;
	seen[SP_HTTP_ERR_CHUNK_LINE_TOO_LONG] = true;
	seen[SP_HTTP_ERR_TRAILER_TOO_LONG] = true;
	for (i = 0; i < SP_HTTP_ERR_MAX; i++) {
		if (!seen[i])
			print_error("no test case for %s\n", sp_http_error_name((int)i));
		assert_true(seen[i]);
	}
}

/* Fuzzing */

static uint64_t
xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

#define FUZZ_MAX 2048

static const char *const fuzz_lines[] = {
	"Content-Length: 5\r\n",
	"Transfer-Encoding: chunked\r\n",
	"Host: h\r\n",
	" folded\r\n",
	"Range: bytes=1-2\r\n",
	"Expect: 100-continue\r\n",
	"Connection: close\r\n",
	"X-A: b\r\n",
	"\r\n",
	"GET / HTTP/1.0\r\n",
	"Content-Length: 1x\r\n",
	"A b: c\r\n",
	"Transfer-Encoding: x\r\n",
	"Host: \r\n",
	"Expect: x\r\n",
	"Connection: a b\r\n",
};

/* Mutate b[0, *n) (capacity FUZZ_MAX) with one random edit. */
static void
fuzz_mutate(char *b, size_t *n, uint64_t *s)
{
	static const char interesting[] = "\r\n\0 \t:,;%?/\"\\\x7f\x80\xff"
					  "A0*=-";
	size_t pos = *n ? (size_t)(xorshift64(s) % *n) : 0;
	char c = (char)(xorshift64(s) % 4 ? interesting[xorshift64(s) % (sizeof(interesting) - 1)]
					  : (char)xorshift64(s));

	switch (xorshift64(s) % 7) {
	case 0: /* replace */
		if (*n)
			b[pos] = c;
		break;
	case 1: /* insert */
		if (*n < FUZZ_MAX) {
			memmove(b + pos + 1, b + pos, *n - pos);
			b[pos] = c;
			(*n)++;
		}
		break;
	case 2: /* delete */
		if (*n) {
			memmove(b + pos, b + pos + 1, *n - pos - 1);
			(*n)--;
		}
		break;
	case 3: /* truncate */
		*n = pos;
		break;
	case 4: /* flip case */
		if (*n)
			b[pos] ^= 0x20;
		break;
	default: { /* insert a header line after a line end */
		const char *l =
			fuzz_lines[xorshift64(s) % (sizeof(fuzz_lines) / sizeof(fuzz_lines[0]))];
		size_t ln = strlen(l);
		char *lf = *n ? memchr(b + pos, '\n', *n - pos) : NULL;
		size_t at = lf != NULL ? (size_t)(lf - b) + 1 : *n;

		if (*n + ln <= FUZZ_MAX) {
			memmove(b + at + ln, b + at, *n - at);
			memcpy(b + at, l, ln);
			*n += ln;
		}
		break;
	}
	}
}

static void
fuzz_check_req(const char *b, size_t n, int rc, const struct sp_http_req *req,
	       const struct sp_http_limits *lim)
{
	unsigned int i, max_h = lim->max_headers < SP_HTTP_MAX_HEADERS ? lim->max_headers
								       : SP_HTTP_MAX_HEADERS;

	if (rc < 0) {
		/* errors of the request parser only */
		assert_true(-rc > SP_HTTP_ERR_NONE && -rc < SP_HTTP_ERR_BAD_CHUNK_SIZE);
		return;
	}
	if (rc == 0) {
		assert_true(n < lim->max_head);
		return;
	}
	assert_true((size_t)rc <= n && (uint32_t)rc <= lim->max_head);
	assert_true(rc >= 4 && b[rc - 1] == '\n' && b[rc - 2] == '\r' && b[rc - 3] == '\n');
	assert_true(req->n_headers <= max_h);
	assert_true(req->version == 10 || req->version == 11);
	assert_true(req->method < SP_HTTP_METHOD_MAX);
	assert_true(req->target.len > 0 && req->target.len <= lim->max_target);
	assert_true(req->target.off + req->target.len <= (uint32_t)rc);
	assert_true(req->path.off == req->target.off && req->path.len <= req->target.len);
	if (req->has_query)
		assert_true(req->query.off + req->query.len == req->target.off + req->target.len);
	for (i = 0; i < req->n_headers; i++) {
		assert_true(req->headers[i].name.len > 0);
		assert_true(req->headers[i].value.off + req->headers[i].value.len <= (uint32_t)rc);
	}
	for (i = 0; i < SP_HTTP_HDR_MAX; i++)
		assert_true(req->hdr[i].off + req->hdr[i].len <= (uint32_t)rc);
	assert_false(req->chunked && req->has_content_length);
	if (req->version == 11)
		assert_true(sp_http_req_has(req, SP_HTTP_HDR_HOST));
}

static const char *const fuzz_corpus[] = {
	req_awscli_get_range,
	req_boto3_get_inm,
	req_boto3_put_expect,
	req_s3cmd_get,
	req_curl_presigned,
	req_curl_chunked_put,
	req_boto3_aws_chunked,
	"GET / HTTP/1.0\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n",
};

static void
test_fuzz_requests(void **state)
{
	unsigned int seen[SP_HTTP_ERR_MAX] = {0}, ok = 0, incomplete = 0;
	uint64_t s = 0x9e3779b97f4a7c15ULL;
	struct sp_http_req *a = malloc(sizeof(*a)), *p = malloc(sizeof(*p));
	static char b[FUZZ_MAX];
	unsigned int iter, i;

	(void)state;
	assert_non_null(a);
	assert_non_null(p);
	for (iter = 0; iter < 100000; iter++) {
		struct sp_http_limits lim = SP_HTTP_LIMITS_DEFAULT;
		size_t n, k;
		int rc, rc1, rc2;

		if (xorshift64(&s) % 16 == 0) { /* raw random bytes from a small alphabet */
			static const char alpha[] = "GET /HTP1.0\r\n:ahkst ,;-";

			n = (size_t)(xorshift64(&s) % 200);
			for (k = 0; k < n; k++)
				b[k] = alpha[xorshift64(&s) % (sizeof(alpha) - 1)];
		} else {
			const char *src = fuzz_corpus[xorshift64(&s) % (sizeof(fuzz_corpus) /
									sizeof(fuzz_corpus[0]))];
			unsigned int m = 1 + (unsigned int)(xorshift64(&s) % 4);

			n = strlen(src);
			memcpy(b, src, n);
			for (i = 0; i < m; i++)
				fuzz_mutate(b, &n, &s);
		}
		if (xorshift64(&s) % 4 == 0) {
			lim.max_head = (uint32_t)(xorshift64(&s) % 1024);
			lim.max_headers = (uint32_t)(xorshift64(&s) % 70);
			lim.max_target = (uint32_t)(xorshift64(&s) % 300);
		}
		rc = parse_once(b, n, a, &lim);
		fuzz_check_req(b, n, rc, a, &lim);
		/* the same from a split at a random point */
		k = n ? (size_t)(xorshift64(&s) % (n + 1)) : 0;
		sp_http_req_init(p);
		rc1 = parse_more(b, k, p, &lim);
		rc2 = parse_more(b, n, p, &lim);
		assert_true(rc1 == SP_HTTP_INCOMPLETE || rc1 == rc);
		assert_int_equal(rc2, rc);
		if (rc > 0) {
			assert_true(req_same(a, p));
			ok++;
		} else if (rc == 0) {
			incomplete++;
		} else {
			seen[-rc]++;
		}
	}
	/* the mutations must reach every outcome of the request parser */
	assert_true(ok > 1000 && incomplete > 1000);
	for (i = SP_HTTP_ERR_NONE + 1; i < SP_HTTP_ERR_BAD_CHUNK_SIZE; i++) {
		if (seen[i] == 0)
			print_error("fuzzing never produced %s\n", sp_http_error_name((int)i));
		assert_true(seen[i] > 0);
	}
	free(a);
	free(p);
}

/* A random valid chunked body in b (capacity FUZZ_MAX); returns its length. */
static size_t
fuzz_chunked_body(char *b, uint64_t *s)
{
	static const char *const exts[] = {
		"", ";a", ";a=b", " ; x = \"y z\"", ";q=\"\\\"\"", ";chunk-signature=" SIG64};
	static const char *const trailers[] = {"", "X-Sum: abc\r\n", "a:\r\nb: c d\r\n"};
	unsigned int chunks = (unsigned int)(xorshift64(s) % 5), i;
	size_t n = 0;

	for (i = 0; i <= chunks; i++) {
		unsigned int size = i == chunks ? 0 : 1 + (unsigned int)(xorshift64(s) % 40);
		const char *e = exts[xorshift64(s) % (sizeof(exts) / sizeof(exts[0]))];

		n += (size_t)sprintf(b + n, "%x%s\r\n", size, e);
		if (size) {
			unsigned int j;

			for (j = 0; j < size; j++)
				b[n++] = (char)('a' + xorshift64(s) % 26);
			b[n++] = '\r';
			b[n++] = '\n';
		}
	}
	n += (size_t)sprintf(b + n, "%s\r\n", trailers[xorshift64(s) % 3]);
	return n;
}

static void
test_fuzz_chunked(void **state)
{
	struct chunk_result *one = malloc(sizeof(*one)), *r = malloc(sizeof(*r));
	unsigned int seen[SP_HTTP_ERR_MAX] = {0}, done = 0, iter, i;
	uint64_t s = 0x0123456789abcdefULL;
	static char b[FUZZ_MAX];

	(void)state;
	assert_non_null(one);
	assert_non_null(r);
	for (iter = 0; iter < 50000; iter++) {
		size_t n = fuzz_chunked_body(b, &s), bounds[3];
		unsigned int m = (unsigned int)(xorshift64(&s) % 3);

		for (i = 0; i < m; i++)
			fuzz_mutate(b, &n, &s);
		bounds[0] = n;
		chunk_run(b, bounds, 1, one);
		assert_true(one->used <= n);
		assert_true(one->total == one->data_len);
		/* three pieces at random points: same outcome */
		bounds[0] = n ? (size_t)(xorshift64(&s) % (n + 1)) : 0;
		bounds[1] = bounds[0] + (size_t)(xorshift64(&s) % (n - bounds[0] + 1));
		bounds[2] = n;
		chunk_run(b, bounds, 3, r);
		assert_int_equal(r->rc, one->rc);
		assert_int_equal(r->used, one->used);
		assert_int_equal(r->data_len, one->data_len);
		assert_memory_equal(r->data, one->data, one->data_len);
		if (one->rc == SP_HTTP_CHUNK_DONE) {
			done++;
			assert_true(one->used >= 5);
			assert_memory_equal(b + one->used - 2, "\r\n", 2);
		} else if (one->rc < 0) {
			assert_true(-one->rc >= SP_HTTP_ERR_OBS_FOLD && -one->rc < SP_HTTP_ERR_MAX);
			seen[-one->rc]++;
		}
	}
	assert_true(done > 10000);
	for (i = SP_HTTP_ERR_BAD_CHUNK_SIZE; i < SP_HTTP_ERR_MAX; i++)
		if (i != SP_HTTP_ERR_CHUNK_LINE_TOO_LONG && i != SP_HTTP_ERR_TRAILER_TOO_LONG &&
		    i != SP_HTTP_ERR_CHUNK_SIZE_OVERFLOW && seen[i] == 0) {
			print_error("chunked fuzzing never produced %s\n",
				    sp_http_error_name((int)i));
			fail();
		}
	free(one);
	free(r);
}

static void
test_fuzz_range(void **state)
{
	static const char alpha[] = "bytes=-0123456789, B";
	uint64_t s = 0xfeedfacecafebeefULL;
	unsigned int iter, counts[3] = {0};
	char v[40];

	(void)state;
	for (iter = 0; iter < 50000; iter++) {
		size_t n = (size_t)(xorshift64(&s) % sizeof(v)), k;
		uint64_t size = xorshift64(&s) % 4 == 0 ? xorshift64(&s) : xorshift64(&s) % 100;
		uint64_t first = 0, last = 0;
		char *copy;
		int rc;

		if (xorshift64(&s) % 2 && n >= 6)
			memcpy(v, "bytes=", 6), k = 6;
		else
			k = 0;
		for (; k < n; k++)
			v[k] = xorshift64(&s) % 3 ? (char)('0' + xorshift64(&s) % 10)
						  : alpha[xorshift64(&s) % (sizeof(alpha) - 1)];
		copy = malloc(n ? n : 1);
		assert_non_null(copy);
		memcpy(copy, v, n);
		rc = sp_http_parse_range(copy, n, size, &first, &last);
		free(copy);
		assert_true(rc >= SP_HTTP_RANGE_OK && rc <= SP_HTTP_RANGE_IGNORE);
		if (rc == SP_HTTP_RANGE_OK)
			assert_true(first <= last && last < size);
		counts[rc]++;
	}
	assert_true(counts[0] > 0 && counts[1] > 0 && counts[2] > 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_awscli_get_range),
		cmocka_unit_test(test_boto3_get_if_none_match),
		cmocka_unit_test(test_boto3_put_expect),
		cmocka_unit_test(test_s3cmd_lower_case),
		cmocka_unit_test(test_curl_presigned),
		cmocka_unit_test(test_curl_chunked_put),
		cmocka_unit_test(test_boto3_aws_chunked),
		cmocka_unit_test(test_methods_and_targets),
		cmocka_unit_test(test_versions_keep_alive),
		cmocka_unit_test(test_expect),
		cmocka_unit_test(test_case_and_ows),
		cmocka_unit_test(test_content_length_values),
		cmocka_unit_test(test_request_errors),
		cmocka_unit_test(test_early_refusal),
		cmocka_unit_test(test_limit_head),
		cmocka_unit_test(test_limit_target),
		cmocka_unit_test(test_limit_headers),
		cmocka_unit_test(test_byte_classes),
		cmocka_unit_test(test_pipelined),
		cmocka_unit_test(test_chunked_valid),
		cmocka_unit_test(test_chunked_done_sticky),
		cmocka_unit_test(test_chunked_errors),
		cmocka_unit_test(test_chunked_limits),
		cmocka_unit_test(test_range),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_every_error_covered),
		cmocka_unit_test(test_fuzz_requests),
		cmocka_unit_test(test_fuzz_chunked),
		cmocka_unit_test(test_fuzz_range),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
