/* cmocka unit tests for sp_cache_http: response heads, HTTP dates, ETags, conditions, templates. */
#include <errno.h>
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

#include "sp_cache_http.h"

/* A string literal and its length (literals may hold NUL bytes). */
#define LIT(s) s, sizeof(s) - 1

/* A storage node's answer to a GET (nginx, as the lab runs it), and the same without Connection. */
#define NODE_STATUS "HTTP/1.1 200 OK\r\n"
#define NODE_BEFORE_CONN                                                                           \
	"Server: nginx\r\n"                                                                        \
	"Date: Thu, 26 Nov 2026 06:55:50 GMT\r\n"                                                  \
	"Content-Type: text/plain\r\n"                                                             \
	"Content-Length: 1000\r\n"                                                                 \
	"Last-Modified: Thu, 26 Nov 2026 06:55:47 GMT\r\n"
#define NODE_CONN "Connection: close\r\n"
#define NODE_AFTER_CONN                                                                            \
	"x-amz-request-id: 8F21C8E4C566C5AE\r\n"                                                   \
	"x-amz-id-2: OEYyMUM4RTRDNTY2QzVBRQ==\r\n"                                                 \
	"ETag: \"9fe64a705c41b534368993b5e08497dd\"\r\n"                                           \
	"Accept-Ranges: bytes\r\n"                                                                 \
	"x-amz-meta-a: b\r\n"

static const char node_get[] = NODE_STATUS NODE_BEFORE_CONN NODE_CONN NODE_AFTER_CONN "\r\n";
static const char node_tmpl[] = NODE_BEFORE_CONN NODE_AFTER_CONN;

/* The lab's Python service (http.server): keep-alive, its own header order and case. */
static const char py_get[] = "HTTP/1.1 200 OK\r\n"
			     "Server: shortpath-lab-s3/1.0\r\n"
			     "Date: Thu, 26 Nov 2026 06:55:50 GMT\r\n"
			     "Content-Type: binary/octet-stream\r\n"
			     "content-length: 0\r\n"
			     "ETag: \"d41d8cd98f00b204e9800998ecf8427e\"\r\n"
			     "Last-Modified: Thu, 26 Nov 2026 06:55:47 GMT\r\n"
			     "X-Amz-Request-Id: 30E190CC4BBCF600\r\n"
			     "X-Amz-Id-2: MzBFMTkwQ0M0QkJDRjYwMA==\r\n"
			     "Keep-Alive: timeout=120\r\n"
			     "Connection: keep-alive\r\n"
			     "\r\n";

static void
test_parse_node_response(void **state)
{
	struct sp_http_resp r;
	const char *v;
	size_t n;
	int rc;

	(void)state;
	rc = sp_http_parse_response(LIT(node_get), 8192, &r);
	assert_int_equal(rc, sizeof(node_get) - 1);
	assert_int_equal(r.status, 200);
	assert_int_equal(r.version, 11);
	assert_int_equal(r.reason.len, 2);
	assert_memory_equal(node_get + r.reason.off, "OK", 2);
	assert_true(r.has_content_length);
	assert_int_equal(r.content_length, 1000);
	assert_false(r.chunked);
	assert_true(r.conn_close);
	assert_int_equal(r.n_headers, 11);
	assert_int_equal(r.headers[0].name.len, 6);
	assert_memory_equal(node_get + r.headers[0].name.off, "Server", 6);
	assert_memory_equal(node_get + r.headers[0].value.off, "nginx", 5);

	v = sp_http_resp_header(node_get, &r, "etag", &n);
	assert_non_null(v);
	assert_int_equal(n, 34);
	assert_memory_equal(v, "\"9fe64a705c41b534368993b5e08497dd\"", 34);
	v = sp_http_resp_header(node_get, &r, "LAST-MODIFIED", &n);
	assert_non_null(v);
	assert_int_equal(n, 29);
	v = sp_http_resp_header(node_get, &r, "x-amz-meta-a", &n);
	assert_non_null(v);
	assert_int_equal(n, 1);
	assert_int_equal(v[0], 'b');
	n = 77;
	assert_null(sp_http_resp_header(node_get, &r, "cache-control", &n));
	assert_int_equal(n, 0);
	assert_null(sp_http_resp_header(node_get, &r, "etag2", &n));
	assert_null(sp_http_resp_header(node_get, &r, "eta", &n));

	/* the body follows the head: it is not part of it */
	{
		char buf[sizeof(node_get) + 10];

		memcpy(buf, node_get, sizeof(node_get) - 1);
		memcpy(buf + sizeof(node_get) - 1, "0123456789", 10);
		assert_int_equal(sp_http_parse_response(buf, sizeof(buf), 8192, &r),
				 sizeof(node_get) - 1);
	}
}

static void
test_parse_python_response(void **state)
{
	struct sp_http_resp r;

	(void)state;
	assert_int_equal(sp_http_parse_response(LIT(py_get), 8192, &r), sizeof(py_get) - 1);
	assert_int_equal(r.status, 200);
	assert_true(r.has_content_length);
	assert_int_equal(r.content_length, 0);
	assert_false(r.conn_close);
	assert_false(r.chunked);
	assert_int_equal(r.n_headers, 10);
}

/* Heads that parse, and what they say. */
static void
test_parse_variants(void **state)
{
	static const struct {
		const char *s;
		uint16_t status;
		uint8_t version;
		const char *reason;
		bool has_cl, chunked, close;
		uint64_t cl;
	} t[] = {
		{"HTTP/1.0 200 OK\r\n\r\n", 200, 10, "OK", false, false, false, 0},
		{"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n", 304, 11, "Not Modified", false,
		 false, false, 0},
		{"HTTP/1.1 200 \r\n\r\n", 200, 11, "", false, false, false, 0},
		{"HTTP/1.1 200\r\n\r\n", 200, 11, "", false, false, false, 0},
		{"HTTP/1.1 503 Service Temporarily Unavailable\r\n\r\n", 503, 11,
		 "Service Temporarily Unavailable", false, false, false, 0},
		{"HTTP/1.1 999 Odd\tTab\r\n\r\n", 999, 11, "Odd\tTab", false, false, false, 0},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 200, 11, "OK", false,
		 true, false, 0},
		{"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip, chunked\r\n\r\n", 200, 11, "OK",
		 false, true, false, 0},
		{"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: x\r\n\r\n", 200, 11,
		 "OK", true, true, false, 5},
		{"HTTP/1.1 200 OK\r\nConnection: keep-alive, CLOSE\r\n\r\n", 200, 11, "OK", false,
		 false, true, 0},
		{"HTTP/1.1 200 OK\r\nConnection: ,, close ,\r\n\r\n", 200, 11, "OK", false, false,
		 true, 0},
		{"HTTP/1.1 200 OK\r\nConnection: closed\r\n\r\n", 200, 11, "OK", false, false,
		 false, 0},
		{"HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n", 200, 11,
		 "OK", false, false, true, 0},
		{"HTTP/1.1 200 OK\r\nContent-Length:   42  \r\n\r\n", 200, 11, "OK", true, false,
		 false, 42},
		{"HTTP/1.1 200 OK\r\nContent-Length: 0000\r\n\r\n", 200, 11, "OK", true, false,
		 false, 0},
		{"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\n", 200, 11, "OK",
		 true, false, false, UINT64_MAX},
		{"HTTP/1.1 200 OK\r\nX-Empty:\r\nX-Obs: \xe9t\xe9\r\n\r\n", 200, 11, "OK", false,
		 false, false, 0},
	};
	struct sp_http_resp r;
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		size_t n = strlen(t[i].s);

		assert_int_equal(sp_http_parse_response(t[i].s, n, 8192, &r), (int)n);
		assert_int_equal(r.status, t[i].status);
		assert_int_equal(r.version, t[i].version);
		assert_int_equal(r.reason.len, strlen(t[i].reason));
		assert_memory_equal(t[i].s + r.reason.off, t[i].reason, r.reason.len);
		assert_int_equal(r.has_content_length, t[i].has_cl);
		assert_int_equal(r.chunked, t[i].chunked);
		assert_int_equal(r.conn_close, t[i].close);
		if (t[i].has_cl)
			assert_true(r.content_length == t[i].cl);
	}
}

/* Every kind of malformed head: -EINVAL, whole and at every split point (0 or -EINVAL). */
static void
test_parse_malformed(void **state)
{
	static const struct {
		const char *s;
		size_t n;
	} t[] = {
		{LIT("HTTP/1.2 200 OK\r\n\r\n")},
		{LIT("HTTP/2 200 OK\r\n\r\n")},
		{LIT("http/1.1 200 OK\r\n\r\n")},
		{LIT("HTTP/1.1  200 OK\r\n\r\n")},
		{LIT("HTTP/1.1 20 OK\r\n\r\n")},
		{LIT("HTTP/1.1 2000 OK\r\n\r\n")},
		{LIT("HTTP/1.1 099 OK\r\n\r\n")},
		{LIT("HTTP/1.1 2x0 OK\r\n\r\n")},
		{LIT("HTTP/1.1 200\tOK\r\n\r\n")},
		{LIT("HTTP/1.1 200 O\x01K\r\n\r\n")},
		{LIT("HTTP/1.1 200 O\x7fK\r\n\r\n")},
		{LIT("\r\nHTTP/1.1 200 OK\r\n\r\n")}, /* no empty lines before the status line */
		{LIT("GET / HTTP/1.1\r\n\r\n")},
		{LIT("HTTP/1.1 200 OK\n\r\n")},			  /* bare LF */
		{LIT("HTTP/1.1 200 OK\r\nServer: x\n\r\n")},	  /* bare LF */
		{LIT("HTTP/1.1 200 OK\r\nServer: x\r\n\n")},	  /* bare LF */
		{LIT("HTTP/1.1 200 OK\r\nServer: x\ry\r\n\r\n")}, /* bare CR */
		{LIT("HTTP/1.1 200 OK\r\nServer: x\r\r\n\r\n")},  /* bare CR */
		{LIT("HTTP/1.1 200 OK\r\n\r\r\n")},		  /* bare CR */
		{LIT("HTTP/1.1 200 OK\r\nServer: x\0y\r\n\r\n")}, /* NUL */
		{LIT("HTTP/1.1 200 \0OK\r\n\r\n")},		  /* NUL */
		{LIT("HTTP/1.1 200 OK\r\nServer x\r\n\r\n")},	  /* no ':' */
		{LIT("HTTP/1.1 200 OK\r\nServer : x\r\n\r\n")},	  /* space before ':' */
		{LIT("HTTP/1.1 200 OK\r\n: x\r\n\r\n")},	  /* empty name */
		{LIT("HTTP/1.1 200 OK\r\nSer(ver: x\r\n\r\n")},	  /* not a token */
		{LIT("HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n")},	  /* obs-fold */
		{LIT("HTTP/1.1 200 OK\r\nA: b\r\n\tc\r\n\r\n")},  /* obs-fold */
		{LIT("HTTP/1.1 200 OK\r\nA: b\x01\r\n\r\n")},	  /* control character */
		{LIT("HTTP/1.1 200 OK\r\nA: \x7f\r\n\r\n")},	  /* DEL */
		{LIT("HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n")},
		{LIT("HTTP/1.1 200 OK\r\nContent-Length: +1\r\n\r\n")},
		{LIT("HTTP/1.1 200 OK\r\nContent-Length: 1 2\r\n\r\n")},
		{LIT("HTTP/1.1 200 OK\r\nContent-Length: 42, 42\r\n\r\n")},
		{LIT("HTTP/1.1 200 OK\r\nContent-Length: 0x10\r\n\r\n")},
		{LIT("HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\n")},
		{LIT("HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551616\r\n\r\n")},
		{LIT("HTTP/1.1 200 OK\r\nContent-Length: 1\r\ncontent-length: 1\r\n\r\n")},
	};
	struct sp_http_resp r;
	unsigned int i;
	size_t k;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		assert_int_equal(sp_http_parse_response(t[i].s, t[i].n, 8192, &r), -EINVAL);
		for (k = 0; k < t[i].n; k++) {
			int rc = sp_http_parse_response(t[i].s, k, 8192, &r);

			assert_true(rc == 0 || rc == -EINVAL);
		}
	}
}

static void
test_parse_too_many_headers(void **state)
{
	char buf[4096];
	struct sp_http_resp r;
	size_t n;
	unsigned int i;

	(void)state;
	n = (size_t)sprintf(buf, "HTTP/1.1 200 OK\r\n");
	for (i = 0; i < SP_HTTP_MAX_HEADERS; i++)
		n += (size_t)sprintf(buf + n, "X-H%u: %u\r\n", i, i);
	memcpy(buf + n, "\r\n", 2);
	assert_int_equal(sp_http_parse_response(buf, n + 2, sizeof(buf), &r), (int)(n + 2));
	assert_int_equal(r.n_headers, SP_HTTP_MAX_HEADERS);
	n += (size_t)sprintf(buf + n, "X-Last: x\r\n\r\n");
	assert_int_equal(sp_http_parse_response(buf, n, sizeof(buf), &r), -EINVAL);
}

/* A head arriving in pieces: 0 until it is all there; max bounds it. */
static void
test_parse_incomplete(void **state)
{
	struct sp_http_resp r;
	size_t k, n = sizeof(node_get) - 1;

	(void)state;
	for (k = 0; k < n; k++)
		assert_int_equal(sp_http_parse_response(node_get, k, 8192, &r), 0);
	assert_int_equal(sp_http_parse_response(node_get, n, 8192, &r), (int)n);
	for (k = 0; k < sizeof(py_get) - 1; k++)
		assert_int_equal(sp_http_parse_response(py_get, k, 8192, &r), 0);

	/* max: exactly the head fits; one byte less and it is too long once max bytes are in */
	assert_int_equal(sp_http_parse_response(node_get, n, n, &r), (int)n);
	assert_int_equal(sp_http_parse_response(node_get, n, n - 1, &r), -EINVAL);
	assert_int_equal(sp_http_parse_response(node_get, n - 1, n - 1, &r), -EINVAL);
	assert_int_equal(sp_http_parse_response(node_get, n - 2, n - 1, &r), 0);
	assert_int_equal(sp_http_parse_response(node_get, 0, 0, &r), -EINVAL);
	/* a malformed line is refused as soon as it is complete */
	assert_int_equal(
		sp_http_parse_response(LIT("HTTP/1.1 200 OK\r\nbad line\r\nA: "), 8192, &r),
		-EINVAL);
	assert_int_equal(sp_http_parse_response(LIT("HTTP/9.9 200 OK\r\n"), 8192, &r), -EINVAL);
}

/* Dates: the expected values computed by Python 3.11's
 * email.utils.parsedate_to_datetime(s).timestamp() (tools/lab/service/s3front.py
 * parse_http_date; a naive date is local time, the lab's hosts are UTC). Non-ASCII bytes as
 * http.server decodes them (ISO-8859-1). */
#define D(s, rc, v)                                                                                \
	{                                                                                          \
		s, sizeof(s) - 1, rc, v                                                            \
	}
static const struct {
	const char *s;
	size_t n;
	int rc;
	int64_t v;
} date_table[] = {
	D("Thu, 26 Nov 2026 06:55:47 GMT", 0, 1795676147LL),
	D("Sun, 06 Nov 1994 08:49:37 GMT", 0, 784111777LL),
	D("Sunday, 06-Nov-94 08:49:37 GMT", 0, 784111777LL),
	D("Sun Nov  6 08:49:37 1994", 0, 784111777LL),
	D("Thu, 01 Jan 1970 00:00:00 GMT", 0, 0LL),
	D("Wed, 31 Dec 1969 23:59:59 GMT", 0, -1LL),
	D("Thu, 26 Nov 2026 06:55:47 +0100", 0, 1795672547LL),
	D("Thu, 26 Nov 2026 06:55:47 -0530", 0, 1795695947LL),
	D("Thu, 26 Nov 2026 06:55:47 +0000", 0, 1795676147LL),
	D("Thu, 26 Nov 2026 06:55:47 -0000", 0, 1795676147LL),
	D("Thu, 26 Nov 2026 06:55:47 UT", 0, 1795676147LL),
	D("Thu, 26 Nov 2026 06:55:47 UTC", 0, 1795676147LL),
	D("Thu, 26 Nov 2026 06:55:47 Z", 0, 1795676147LL),
	D("Thu, 26 Nov 2026 06:55:47 EST", 0, 1795694147LL),
	D("Thu, 26 Nov 2026 06:55:47 edt", 0, 1795690547LL),
	D("Thu, 26 Nov 2026 06:55:47 CST", 0, 1795697747LL),
	D("Thu, 26 Nov 2026 06:55:47 CDT", 0, 1795694147LL),
	D("Thu, 26 Nov 2026 06:55:47 MST", 0, 1795701347LL),
	D("Thu, 26 Nov 2026 06:55:47 MDT", 0, 1795697747LL),
	D("Thu, 26 Nov 2026 06:55:47 PST", 0, 1795704947LL),
	D("Thu, 26 Nov 2026 06:55:47 PDT", 0, 1795701347LL),
	D("Thu, 26 Nov 2026 06:55:47 AST", 0, 1795690547LL),
	D("Thu, 26 Nov 2026 06:55:47 ADT", 0, 1795686947LL),
	D("Thu, 26 Nov 2026 06:55:47 CET", 0, 1795676147LL),
	D("Thu, 26 Nov 2026 06:55:47", 0, 1795676147LL),
	D("26 Nov 2026 06:55:47 GMT", 0, 1795676147LL),
	D("26 Nov 2026 06:55 GMT", 0, 1795676100LL),
	D("26 Nov 2026 06.55.47 GMT", 0, 1795676147LL),
	D("26 Nov 2026 06.55 GMT", 0, 1795676100LL),
	D("26 Nov 2026 6:5:7 GMT", 0, 1795673107LL),
	D("Thu,26 Nov 2026 06:55:47 GMT", 0, 1795676147LL),
	D("Nov 26 2026 06:55:47 GMT", 0, 1795676147LL),
	D("26 November 2026 06:55:47 GMT", 0, 1795676147LL),
	D("26 nov 2026 06:55:47 gmt", 0, 1795676147LL),
	D("26 Nov 69 06:55:47 GMT", 0, -3085453LL),
	D("26 Nov 68 06:55:47 GMT", 0, 3121138547LL),
	D("26 Nov 00 06:55:47 GMT", 0, 975221747LL),
	D("26 Nov 99 06:55:47 GMT", 0, 943599347LL),
	D("26 Nov 0001 06:55:47 GMT", 0, 1006757747LL),
	D("26 Nov 100 06:55:47 GMT", 0, -58983008653LL),
	D("26 Nov 2026, 06:55:47 GMT", 0, 1795676147LL),
	D("26, Nov 2026 06:55:47 GMT", -EINVAL, 0), /* ValueError */
	D("26 Nov 06:55:47 2026 GMT", 0, 1795676147LL),
	D("26 Nov 2026 06:55:47 +0100 extra words", 0, 1795672547LL),
	D("26 Nov 2026 06:55:47+0100", 0, 1795672547LL),
	D("26 Nov 2026 06:55:47-0100", 0, 1795679747LL),
	D("Sunday, 06-Nov-94 08:49:37", -EINVAL, 0), /* ValueError */
	D("Thu, 26 Nov 2026 06:55:47 +2359", 0, 1795589807LL),
	D("Thu, 26 Nov 2026 06:55:47 +2400", -EINVAL, 0), /* ValueError */
	D("Thu, 26 Nov 2026 06:55:47 -2400", -EINVAL, 0), /* ValueError */
	D("Thu, 26 Nov 2026 06:55:47 +0199", 0, 1795666607LL),
	D("Thu, 26 Nov 2026 06:55:47 +1", 0, 1795676087LL),
	D("Thu, 26 Nov 2026 06:55:47 +1_00", 0, 1795672547LL),
	D("Thu, 26 Nov 2_026 06:55:47 GMT", 0, 1795676147LL),
	D("Thu, 29 Feb 2024 00:00:00 GMT", 0, 1709164800LL),
	D("Thu, 29 Feb 2023 00:00:00 GMT", -EINVAL, 0), /* ValueError */
	D("Thu, 29 Feb 2000 00:00:00 GMT", 0, 951782400LL),
	D("Thu, 29 Feb 1900 00:00:00 GMT", -EINVAL, 0), /* ValueError */
	D("Thu, 31 Apr 2026 00:00:00 GMT", -EINVAL, 0), /* ValueError */
	D("Thu, 00 Nov 2026 06:55:47 GMT", -EINVAL, 0), /* ValueError */
	D("Thu, 26 Nov 2026 24:00:00 GMT", -EINVAL, 0), /* ValueError */
	D("Thu, 26 Nov 2026 23:60:00 GMT", -EINVAL, 0), /* ValueError */
	D("Thu, 26 Nov 2026 23:59:60 GMT", -EINVAL, 0), /* ValueError */
	D("Fri, 31 Dec 9999 23:59:59 GMT", 0, 253402300799LL),
	D("Fri, 31 Dec 10000 23:59:59 GMT", -EINVAL, 0),   /* ValueError */
	D("", -EINVAL, 0),				   /* ValueError */
	D("   ", -EINVAL, 0),				   /* ValueError */
	D("garbage", -EINVAL, 0),			   /* ValueError */
	D("Thu, 26 Xyz 2026 06:55:47 GMT", -EINVAL, 0),	   /* ValueError */
	D("Thu, 26 Nov 2026 06-55-47 GMT", -EINVAL, 0),	   /* ValueError */
	D("Thu, 26 Nov 2026 06:55:47:01 GMT", -EINVAL, 0), /* ValueError */
	D("Thu, 26 Nov 2026", -EINVAL, 0),		   /* ValueError */
	D("Thu, 26 Nov 2026 GMT", -EINVAL, 0),		   /* ValueError */
	D("Thu, -26 Nov 2026 06:55:47 GMT", -EINVAL, 0),   /* ValueError */
	D("Thu, +26 Nov 2026 06:55:47 GMT", 0, 1795676147LL),
	D("Thu, 26 Nov 2026 +06:55:47 GMT", 0, 1795676147LL),
	D("Thu, 26 Nov 2026 06:55:47 +01:00", 0, 1795676147LL),
	D("Thu, 26 Nov 2026 06:x:47 GMT", -EINVAL, 0),	   /* ValueError */
	D("Thu, 26 Nov 20x6 06:55:47 GMT", -EINVAL, 0),	   /* ValueError */
	D("Thu, 26 Nov , 06:55:47 GMT", -EINVAL, 0),	   /* ValueError */
	D("Sunday, 06-Nov 08:49:37 GMT", -EINVAL, 0),	   /* ValueError */
	D("Sunday, 06-Nov-94-1 08:49:37 GMT", -EINVAL, 0), /* ValueError */
	D("Sunday, -Nov-94 08:49:37 GMT", -EINVAL, 0),	   /* ValueError */
	D("Thu, 26 Nov 2026 06:55:47 GMT\t", 0, 1795676147LL),
	D("\tThu,\t26 Nov 2026 06:55:47 GMT", 0, 1795676147LL),
	D("Thu, 26 Nov 2026 06:55:47 +0100 (CET)", 0, 1795672547LL),
	D("Thu 26 Nov 2026 06:55:47 GMT", 0, 1795676147LL),
	D("thu, 26 NOV 2026 06:55:47 GMT", 0, 1795676147LL),
	D("2026 Nov 26 06:55:47 GMT", -EINVAL, 0), /* ValueError */
	D("Nov 2026 26 06:55:47 GMT", -EINVAL, 0), /* ValueError */
	D("Thu, 26 Nov 2026 06:55:47 -5", 0, 1795676447LL),
	D("26 Nov 06:55:47 -5", -EINVAL, 0), /* ValueError */
	D("26 Nov 26, 06:55:47", 0, 1795676147LL),
	D("26 Nov 26 06:55:47,", 0, 1795676147LL),
	D("26 Nov ,", -EINVAL, 0), /* ValueError */
	D("Mon, 01 Jan 0001 00:00:00 +0100", 0, 978303600LL),
	D("Thu, 26 Nov 2026 06:55:47 --0100", 0, 1795676147LL),
	D("Thu, 26 Nov 2026 06:55:47 +", 0, 1795676147LL),
	D("Thu, 26 Nov 2026 06:55:47 _1", 0, 1795676147LL),
	D("Thu, 26 Nov 2026 06:55:47 1__0", 0, 1795676147LL),
	D("Thu, 26 Nov 2026 06:55:47 10_", 0, 1795676147LL),
	D("Thu, 26 Nov 2026 06:55:47 0000000000000000000000100", 0, 1795672547LL),
	D("Thu, 26 Nov 99999999999999999999 06:55:47 GMT", -EINVAL,
	  0), /* OverflowError, not caught by s3front */
	D("Thu, 26 Nov 2026 06:55:47 +99999999999999999999", -EINVAL,
	  0), /* OverflowError, not caught by s3front */
	D("Thu, 26 Nov 2026 06:55:47 ZZZ", 0, 1795676147LL),
	D("Thu, 26 Nov 2026 6:55 +0100", 0, 1795672500LL),
	D("a,b,26 Nov 2026 06:55:47 GMT", 0, 1795676147LL),
	D("Mon 26 Nov 2026 06:55:47 GMT", 0, 1795676147LL),
	D("26-Nov-2026 06:55:47 GMT", 0, 1795676147LL),
	D("Thursday, 26-Nov-26 06:55:47 GMT", 0, 1795676147LL),
	D("Thu Nov 26 06:55:47 2026", 0, 1795676147LL),
	D("Thu Nov 26 06:55:47 26", 0, 1795676147LL),
	D("Nov 26 06:55:47 2026", 0, 1795676147LL),
	D("26 Nov 2026 06:55:47 GMT+0100", 0, 1795676147LL),
	D("26 Nov 2026 06:55:47 0100", 0, 1795672547LL),
	D("26 Nov 2026 06:55:47 -0100", 0, 1795679747LL),
	D("26 Nov 2026 06:55:47 gMt", 0, 1795676147LL),
	D("26 Nov 2026 :06:55 GMT", -EINVAL, 0), /* ValueError */
	D("26 Nov 2026 06::55 GMT", -EINVAL, 0), /* ValueError */
	D("26 Nov 2026 .06 GMT", -EINVAL, 0),	 /* ValueError */
	D("26 may 2026 06:55 GMT", 0, 1779778500LL),
	D("26 MAY 2026 06:55 GMT", 0, 1779778500LL),
	D("26 sept 2026 06:55 GMT", -EINVAL, 0), /* ValueError */
	D("26 September 2026 06:55 GMT", 0, 1790405700LL),
	D("1 Jan 1970 00:00:00 GMT", 0, 0LL),
	D("Thu, 26 Nov 2026 06:55:47 GMT GMT GMT", 0, 1795676147LL),
	D("Thu,\xa0"
	  "26 Nov 2026 06:55:47 GMT",
	  0, 1795676147LL),
	D("Thu, 26 Nov 2026\x85"
	  "06:55:47 GMT",
	  0, 1795676147LL),
	D("26 Nov \xb2"
	  "x 06:55:47 2026",
	  -EINVAL, 0), /* ValueError */
	D("26 Nov \xb2"
	  "026 06:55:47 GMT",
	  -EINVAL, 0), /* ValueError */
	D("Thu, 26 Nov 2026 06:55:47\x1f"
	  "GMT",
	  0, 1795676147LL),
	D("Thu, 26 Nov 2026 06:55:47 G\x00"
	  "MT",
	  0, 1795676147LL),
	D("Thu, 26 Nov 2026 06:55:47 \xe9"
	  "",
	  0, 1795676147LL),
};
#undef D

static void
test_date_parse(void **state)
{
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(date_table) / sizeof(date_table[0]); i++) {
		int64_t v = 12345;
		int rc = sp_http_date_parse(date_table[i].s, date_table[i].n, &v);

		if (rc != date_table[i].rc || (rc == 0 && v != date_table[i].v))
			fail_msg("\"%s\": rc %d v %lld, want rc %d v %lld", date_table[i].s, rc,
				 (long long)v, date_table[i].rc, (long long)date_table[i].v);
	}
	/* only len bytes are read */
	{
		int64_t v;

		assert_int_equal(sp_http_date_parse("Thu, 26 Nov 2026 06:55:47 GMTXYZ", 29, &v), 0);
		assert_int_equal(v, 1795676147);
		assert_int_equal(sp_http_date_parse("Thu, 26 Nov 2026 06:55:47 GMT", 16, &v),
				 -EINVAL);
		assert_int_equal(sp_http_date_parse(NULL, 0, &v), -EINVAL);
	}
}

static void
test_date_format(void **state)
{
	static const struct {
		int64_t t;
		const char *s;
	} t[] = {
		{0, "Thu, 01 Jan 1970 00:00:00 GMT"},
		{784111777, "Sun, 06 Nov 1994 08:49:37 GMT"},
		{1795676147, "Thu, 26 Nov 2026 06:55:47 GMT"},
		{951782400, "Tue, 29 Feb 2000 00:00:00 GMT"},
		{253402300799LL, "Fri, 31 Dec 9999 23:59:59 GMT"},
		{-1, "Thu, 01 Jan 1970 00:00:00 GMT"},	      /* clamped */
		{INT64_MAX, "Fri, 31 Dec 9999 23:59:59 GMT"}, /* clamped */
	};
	char out[SP_HTTP_DATE_LEN + 1];
	int64_t v, x;
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		out[SP_HTTP_DATE_LEN] = '#';
		sp_http_date_format(t[i].t, out);
		assert_memory_equal(out, t[i].s, SP_HTTP_DATE_LEN);
		assert_int_equal(out[SP_HTTP_DATE_LEN], '#');
	}
	/* format then parse gives the same second back */
	for (x = 0; x < 253402300799LL; x = x * 3 + 7919) {
		sp_http_date_format(x, out);
		assert_int_equal(sp_http_date_parse(out, SP_HTTP_DATE_LEN, &v), 0);
		assert_true(v == x);
	}
}

/* s3front.etag_matches (expected values from Python). */
static void
test_etag_matches(void **state)
{
	static const struct {
		const char *hdr, *etag;
		bool match;
	} t[] = {
		{"\"abc\"", "\"abc\"", true},
		{"abc", "\"abc\"", true},
		{"\"abc\"", "abc", true},
		{"\"abd\"", "\"abc\"", false},
		{"W/\"abc\"", "\"abc\"", true},
		{" W/\"abc\" ", "\"abc\"", true},
		{"w/\"abc\"", "\"abc\"", false},
		{"W/ \"abc\"", "\"abc\"", false},
		{"W/W/\"abc\"", "\"abc\"", false},
		{"*", "\"abc\"", true},
		{" * ", "\"abc\"", true},
		{"\"*\"", "\"abc\"", true},
		{"W/*", "\"abc\"", true},
		{"**", "\"abc\"", false},
		{"\"x\", \"abc\"", "\"abc\"", true},
		{"\"x\",\"y\" , W/\"abc\"", "\"abc\"", true},
		{"\"x\", \"y\"", "\"abc\"", false},
		{"\"x\", *", "\"abc\"", true},
		{"\"\"abc\"\"", "\"abc\"", true},
		{"\"abc", "\"abc\"", true},
		{"abc\"", "\"\"abc", true},
		{"\" abc\"", "\"abc\"", false},
		{"", "\"abc\"", false},
		{",", "\"abc\"", false},
		{"", "\"\"", true},
		{",x", "", true},
		{"\"abc\" \"def\"", "\"abc\"", false},
		{"\t\"abc\"\t", "\"abc\"", true},
		{"\"ABC\"", "\"abc\"", false},
		{"\"9fe64a705c41b534368993b5e08497dd\"", "\"9fe64a705c41b534368993b5e08497dd\"",
		 true},
		{"\"9fe64a705c41b534368993b5e08497dd-2\"", "\"9fe64a705c41b534368993b5e08497dd\"",
		 false},
	};
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (sp_http_etag_matches(t[i].hdr, strlen(t[i].hdr), t[i].etag,
					 strlen(t[i].etag)) != t[i].match)
			fail_msg("etag_matches(%s, %s) != %d", t[i].hdr, t[i].etag, t[i].match);
}

/* s3front.conditions on an object with ETag "abc", Last-Modified 06:55:47 (1795676147). */
#define MT 1795676147LL
#define BEFORE "Thu, 26 Nov 2026 06:55:46 GMT"
#define AT "Thu, 26 Nov 2026 06:55:47 GMT"
#define AFTER "Thu, 26 Nov 2026 06:55:48 GMT"

static void
test_conditions(void **state)
{
	static const struct {
		const char *im, *inm, *ims, *ius;
		int64_t mtime;
		enum sp_http_cond_rc rc;
	} t[] = {
		{NULL, NULL, NULL, NULL, MT, SP_HTTP_COND_GO},
		/* If-Match */
		{"\"abc\"", NULL, NULL, NULL, MT, SP_HTTP_COND_GO},
		{"\"x\"", NULL, NULL, NULL, MT, SP_HTTP_COND_FAILED_IF_MATCH},
		{"*", NULL, NULL, NULL, MT, SP_HTTP_COND_GO},
		{"", NULL, NULL, NULL, MT, SP_HTTP_COND_FAILED_IF_MATCH},
		/* If-Unmodified-Since */
		{NULL, NULL, NULL, BEFORE, MT, SP_HTTP_COND_FAILED_IF_UNMODIFIED_SINCE},
		{NULL, NULL, NULL, AT, MT, SP_HTTP_COND_GO},
		{NULL, NULL, NULL, AFTER, MT, SP_HTTP_COND_GO},
		{NULL, NULL, NULL, "garbage", MT, SP_HTTP_COND_GO},
		{NULL, NULL, NULL, "", MT, SP_HTTP_COND_GO},
		{NULL, NULL, NULL, BEFORE, INT64_MIN, SP_HTTP_COND_GO},
		/* If-Match wins over If-Unmodified-Since (not consulted when If-Match present) */
		{"\"abc\"", NULL, NULL, BEFORE, MT, SP_HTTP_COND_GO},
		{"\"x\"", NULL, NULL, AFTER, MT, SP_HTTP_COND_FAILED_IF_MATCH},
		/* If-None-Match */
		{NULL, "\"abc\"", NULL, NULL, MT, SP_HTTP_COND_NOT_MODIFIED},
		{NULL, "W/\"abc\"", NULL, NULL, MT, SP_HTTP_COND_NOT_MODIFIED},
		{NULL, "*", NULL, NULL, MT, SP_HTTP_COND_NOT_MODIFIED},
		{NULL, "\"x\"", NULL, NULL, MT, SP_HTTP_COND_GO},
		{NULL, "", NULL, NULL, MT, SP_HTTP_COND_GO},
		/* If-Modified-Since */
		{NULL, NULL, AT, NULL, MT, SP_HTTP_COND_NOT_MODIFIED},
		{NULL, NULL, AFTER, NULL, MT, SP_HTTP_COND_NOT_MODIFIED},
		{NULL, NULL, BEFORE, NULL, MT, SP_HTTP_COND_GO},
		{NULL, NULL, "garbage", NULL, MT, SP_HTTP_COND_GO},
		{NULL, NULL, AT, NULL, INT64_MIN, SP_HTTP_COND_GO},
		{NULL, NULL, "Thu, 26 Nov 2026 07:55:47 +0100", NULL, MT,
		 SP_HTTP_COND_NOT_MODIFIED},
		{NULL, NULL, "Thu, 26 Nov 2026 07:55:46 +0100", NULL, MT, SP_HTTP_COND_GO},
		/* If-None-Match present: If-Modified-Since not consulted */
		{NULL, "\"x\"", AFTER, NULL, MT, SP_HTTP_COND_GO},
		{NULL, "\"abc\"", BEFORE, NULL, MT, SP_HTTP_COND_NOT_MODIFIED},
		{NULL, "", AFTER, NULL, MT, SP_HTTP_COND_GO},
		/* 412 before 304 */
		{"\"x\"", "\"abc\"", NULL, NULL, MT, SP_HTTP_COND_FAILED_IF_MATCH},
		{NULL, "\"abc\"", NULL, BEFORE, MT, SP_HTTP_COND_FAILED_IF_UNMODIFIED_SINCE},
		{NULL, NULL, AFTER, BEFORE, MT, SP_HTTP_COND_FAILED_IF_UNMODIFIED_SINCE},
		/* both pass, then the second pair decides */
		{"\"abc\"", "\"abc\"", NULL, NULL, MT, SP_HTTP_COND_NOT_MODIFIED},
		{"\"abc\"", NULL, AT, NULL, MT, SP_HTTP_COND_NOT_MODIFIED},
		{NULL, NULL, AT, AT, MT, SP_HTTP_COND_NOT_MODIFIED},
		{NULL, NULL, BEFORE, AFTER, MT, SP_HTTP_COND_GO},
		{"*", "\"y\"", BEFORE, BEFORE, MT, SP_HTTP_COND_GO},
	};
	struct sp_http_conds c;
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		c.if_match = t[i].im;
		c.if_match_len = t[i].im ? strlen(t[i].im) : 0;
		c.if_none_match = t[i].inm;
		c.if_none_match_len = t[i].inm ? strlen(t[i].inm) : 0;
		c.if_modified_since = t[i].ims;
		c.if_modified_since_len = t[i].ims ? strlen(t[i].ims) : 0;
		c.if_unmodified_since = t[i].ius;
		c.if_unmodified_since_len = t[i].ius ? strlen(t[i].ius) : 0;
		if (sp_http_conditions(&c, LIT("\"abc\""), t[i].mtime) != t[i].rc)
			fail_msg("conditions row %u: %d, want %d", i,
				 sp_http_conditions(&c, LIT("\"abc\""), t[i].mtime), t[i].rc);
	}
}

static void
test_id2(void **state)
{
	static const struct {
		const char *reqid, *id2;
	} t[] = {
		{"30E190CC4BBCF600", "MzBFMTkwQ0M0QkJDRjYwMA=="},
		{"8F21C8E4C566C5AE", "OEYyMUM4RTRDNTY2QzVBRQ=="},
		{"0000000000000000", "MDAwMDAwMDAwMDAwMDAwMA=="},
		{"FFFFFFFFFFFFFFFF", "RkZGRkZGRkZGRkZGRkZGRg=="},
		{"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5\xf4\xf3\xf2\xf1\xf0",
		 "//79/Pv6+fj39vX08/Lx8A=="},
	};
	char out[25];
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		out[24] = '#';
		sp_cache_id2(t[i].reqid, out);
		assert_memory_equal(out, t[i].id2, 24);
		assert_int_equal(out[24], '#');
	}
}

/* Build the node's head, render it with its own values: the head without Connection. */
static void
test_tmpl_round_trip(void **state)
{
	struct sp_http_resp r;
	struct sp_cache_tmpl_mark m[SP_CACHE_TMPL_MARKS];
	struct sp_cache_tmpl_vals v;
	char tmpl[1024], out[1024], id2[24];
	unsigned int nm, i;
	int len, n;

	(void)state;
	assert_int_equal(sp_http_parse_response(LIT(node_get), 8192, &r), sizeof(node_get) - 1);
	len = sp_cache_tmpl_build(node_get, &r, tmpl, sizeof(tmpl), m, &nm);
	assert_int_equal(len, sizeof(node_tmpl) - 1 - 29 - 4 - 16 - 24);
	assert_int_equal(nm, 4);
	assert_int_equal(m[0].kind, SP_CACHE_MARK_DATE);
	assert_int_equal(m[1].kind, SP_CACHE_MARK_LENGTH);
	assert_int_equal(m[2].kind, SP_CACHE_MARK_REQID);
	assert_int_equal(m[3].kind, SP_CACHE_MARK_ID2);
	assert_memory_equal(tmpl + m[0].off - 6, "Date: \r\n", 8);
	assert_memory_equal(tmpl + m[1].off - 16, "Content-Length: \r\n", 18);

	sp_cache_id2("8F21C8E4C566C5AE", id2);
	v.date = "Thu, 26 Nov 2026 06:55:50 GMT";
	v.reqid = "8F21C8E4C566C5AE";
	v.id2 = id2;
	v.length = 1000;
	n = sp_cache_tmpl_render(out, sizeof(out), tmpl, (size_t)len, m, nm, &v);
	assert_int_equal(n, sizeof(node_tmpl) - 1);
	assert_memory_equal(out, node_tmpl, sizeof(node_tmpl) - 1);

	/* exactly enough room, then one byte short anywhere */
	assert_int_equal(sp_cache_tmpl_render(out, (size_t)n, tmpl, (size_t)len, m, nm, &v), n);
	for (i = 0; i < (unsigned int)n; i++)
		assert_int_equal(sp_cache_tmpl_render(out, i, tmpl, (size_t)len, m, nm, &v),
				 -ENOSPC);
	assert_int_equal(sp_cache_tmpl_build(node_get, &r, tmpl, (size_t)len, m, &nm), len);
	for (i = 0; i < (unsigned int)len; i++)
		assert_int_equal(sp_cache_tmpl_build(node_get, &r, tmpl, i, m, &nm), -ENOSPC);

	/* other values: a 206's length, 0, the largest */
	assert_int_equal(sp_cache_tmpl_build(node_get, &r, tmpl, sizeof(tmpl), m, &nm), len);
	v.length = 0;
	n = sp_cache_tmpl_render(out, sizeof(out), tmpl, (size_t)len, m, nm, &v);
	assert_int_equal(n, sizeof(node_tmpl) - 1 - 3);
	assert_non_null(memmem(out, (size_t)n, LIT("\r\nContent-Length: 0\r\n")));
	v.length = UINT64_MAX;
	n = sp_cache_tmpl_render(out, sizeof(out), tmpl, (size_t)len, m, nm, &v);
	assert_int_equal(n, sizeof(node_tmpl) - 1 - 4 + 20);
	assert_non_null(
		memmem(out, (size_t)n, LIT("\r\nContent-Length: 18446744073709551615\r\n")));
	v.length = 10;
	v.date = "Fri, 27 Nov 2026 00:00:00 GMT";
	v.reqid = "30E190CC4BBCF600";
	v.id2 = "MzBFMTkwQ0M0QkJDRjYwMA==";
	n = sp_cache_tmpl_render(out, sizeof(out), tmpl, (size_t)len, m, nm, &v);
	assert_int_equal(n, sizeof(node_tmpl) - 1 - 2);
	assert_memory_equal(out, "Server: nginx\r\nDate: Fri, 27 Nov 2026 00:00:00 GMT\r\n", 52);
	assert_non_null(memmem(out, (size_t)n, LIT("\r\nx-amz-request-id: 30E190CC4BBCF600\r\n")));
	assert_non_null(
		memmem(out, (size_t)n, LIT("\r\nx-amz-id-2: MzBFMTkwQ0M0QkJDRjYwMA==\r\n")));

	/* no marks: the template as is */
	assert_int_equal(sp_cache_tmpl_render(out, sizeof(out), LIT("A: b\r\n"), m, 0, &v), 6);
	assert_memory_equal(out, "A: b\r\n", 6);
	/* a mark beyond the template */
	m[0].off = 7;
	m[0].kind = SP_CACHE_MARK_DATE;
	assert_int_equal(sp_cache_tmpl_render(out, sizeof(out), LIT("A: b\r\n"), m, 1, &v),
			 -EINVAL);
}

/* The Python service's head: hop-by-hop lines left out, names as sent, any case matched. */
static void
test_tmpl_python(void **state)
{
	static const char want[] = "Server: shortpath-lab-s3/1.0\r\n"
				   "Date: Thu, 26 Nov 2026 06:55:50 GMT\r\n"
				   "Content-Type: binary/octet-stream\r\n"
				   "content-length: 0\r\n"
				   "ETag: \"d41d8cd98f00b204e9800998ecf8427e\"\r\n"
				   "Last-Modified: Thu, 26 Nov 2026 06:55:47 GMT\r\n"
				   "X-Amz-Request-Id: 30E190CC4BBCF600\r\n"
				   "X-Amz-Id-2: MzBFMTkwQ0M0QkJDRjYwMA==\r\n";
	struct sp_http_resp r;
	struct sp_cache_tmpl_mark m[SP_CACHE_TMPL_MARKS];
	struct sp_cache_tmpl_vals v;
	char tmpl[1024], out[1024], id2[24];
	unsigned int nm;
	int len, n;

	(void)state;
	assert_int_equal(sp_http_parse_response(LIT(py_get), 8192, &r), sizeof(py_get) - 1);
	len = sp_cache_tmpl_build(py_get, &r, tmpl, sizeof(tmpl), m, &nm);
	assert_true(len > 0);
	assert_int_equal(nm, 4);
	sp_cache_id2("30E190CC4BBCF600", id2);
	v.date = "Thu, 26 Nov 2026 06:55:50 GMT";
	v.reqid = "30E190CC4BBCF600";
	v.id2 = id2;
	v.length = 0;
	n = sp_cache_tmpl_render(out, sizeof(out), tmpl, (size_t)len, m, nm, &v);
	assert_int_equal(n, sizeof(want) - 1);
	assert_memory_equal(out, want, sizeof(want) - 1);
}

static void
test_tmpl_cases(void **state)
{
	struct sp_http_resp r;
	struct sp_cache_tmpl_mark m[SP_CACHE_TMPL_MARKS];
	struct sp_cache_tmpl_vals v = {.date = "Thu, 26 Nov 2026 06:55:50 GMT",
				       .reqid = "30E190CC4BBCF600",
				       .id2 = "MzBFMTkwQ0M0QkJDRjYwMA==",
				       .length = 7};
	char tmpl[2048], out[2048], buf[2048];
	unsigned int nm = 99, i;
	size_t n;
	int len;

	(void)state;
	/* no Content-Length: not a stored head */
	static const char nocl[] = "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n";
	assert_int_equal(sp_http_parse_response(LIT(nocl), 8192, &r), sizeof(nocl) - 1);
	assert_int_equal(sp_cache_tmpl_build(nocl, &r, tmpl, sizeof(tmpl), m, &nm), -EINVAL);
	assert_int_equal(nm, 0);

	/* hop-by-hop lines in any case left out; values trimmed; empty values kept */
	static const char hop[] = "HTTP/1.1 200 OK\r\n"
				  "KEEP-ALIVE: timeout=5\r\n"
				  "content-length:7\r\n"
				  "proxy-connection: close\r\n"
				  "X-Empty:\r\n"
				  "transfer-encoding: identity\r\n"
				  "X-Pad: \t padded \t\r\n"
				  "CONNECTION: close\r\n"
				  "\r\n";
	static const char hop_want[] = "content-length: 7\r\nX-Empty: \r\nX-Pad: padded\r\n";
	assert_int_equal(sp_http_parse_response(LIT(hop), 8192, &r), sizeof(hop) - 1);
	len = sp_cache_tmpl_build(hop, &r, tmpl, sizeof(tmpl), m, &nm);
	assert_int_equal(nm, 1);
	assert_int_equal(sp_cache_tmpl_render(out, sizeof(out), tmpl, (size_t)len, m, nm, &v),
			 sizeof(hop_want) - 1);
	assert_memory_equal(out, hop_want, sizeof(hop_want) - 1);

	/* marks: 8 fit, a 9th does not */
	n = (size_t)sprintf(buf, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n");
	for (i = 0; i < SP_CACHE_TMPL_MARKS - 1; i++)
		n += (size_t)sprintf(buf + n, "Date: x\r\n");
	n += (size_t)sprintf(buf + n, "\r\n");
	assert_int_equal(sp_http_parse_response(buf, n, 8192, &r), (int)n);
	len = sp_cache_tmpl_build(buf, &r, tmpl, sizeof(tmpl), m, &nm);
	assert_true(len > 0);
	assert_int_equal(nm, SP_CACHE_TMPL_MARKS);
	n -= 2;
	n += (size_t)sprintf(buf + n, "x-amz-id-2: y\r\n\r\n");
	assert_int_equal(sp_http_parse_response(buf, n, 8192, &r), (int)n);
	assert_int_equal(sp_cache_tmpl_build(buf, &r, tmpl, sizeof(tmpl), m, &nm), -ENOSPC);
}

/* Random heads and dates: no crash, no read beyond len (the sanitized build checks). */
static void
test_fuzz(void **state)
{
	static const char alpha[] = "HTTP/1.0 2\r\n:, -+\t\"W/*GMTNovThu0123456789\x85\xa0";
	struct sp_http_resp r;
	unsigned int seed = 1, i, k;

	(void)state;
	for (i = 0; i < 100000; i++) {
		size_t n = (size_t)(rand_r(&seed) % 64);
		char *b = malloc(n ? n : 1);
		int64_t v;
		int rc;

		for (k = 0; k < n; k++)
			b[k] = (rand_r(&seed) & 3) == 0
				       ? (char)rand_r(&seed)
				       : alpha[rand_r(&seed) % (sizeof(alpha) - 1)];
		rc = sp_http_parse_response(b, n, 48, &r);
		assert_true(rc >= -EINVAL && rc <= (int)n);
		rc = sp_http_date_parse(b, n, &v);
		assert_true(rc == 0 || rc == -EINVAL);
		(void)sp_http_etag_matches(b, n, b, n / 2);
		free(b);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_node_response),
		cmocka_unit_test(test_parse_python_response),
		cmocka_unit_test(test_parse_variants),
		cmocka_unit_test(test_parse_malformed),
		cmocka_unit_test(test_parse_too_many_headers),
		cmocka_unit_test(test_parse_incomplete),
		cmocka_unit_test(test_date_parse),
		cmocka_unit_test(test_date_format),
		cmocka_unit_test(test_etag_matches),
		cmocka_unit_test(test_conditions),
		cmocka_unit_test(test_id2),
		cmocka_unit_test(test_tmpl_round_trip),
		cmocka_unit_test(test_tmpl_python),
		cmocka_unit_test(test_tmpl_cases),
		cmocka_unit_test(test_fuzz),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
