/* Unit tests of lib/sp_s3err.c: the code table (the lab service's), XML escaping, whole responses.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sp_s3err.h"

/* tools/lab/service/s3front.py ERRORS (status, default message), and http.server's reasons */
static const struct {
	const char *code;
	int status;
	const char *reason;
	const char *message;
} lab[] = {
	{"AccessDenied", 403, "Forbidden", "Access Denied"},
	{"AuthorizationHeaderMalformed", 400, "Bad Request",
	 "The authorization header is malformed."},
	{"AuthorizationQueryParametersError", 400, "Bad Request",
	 "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
	 "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."},
	{"InternalError", 500, "Internal Server Error",
	 "We encountered an internal error. Please try again."},
	{"InvalidAccessKeyId", 403, "Forbidden",
	 "The AWS Access Key Id you provided does not exist in our records."},
	{"InvalidArgument", 400, "Bad Request", "Invalid Argument"},
	{"InvalidRequest", 400, "Bad Request", "Invalid Request"},
	{"NotImplemented", 501, "Not Implemented",
	 "A header you provided implies functionality that is not implemented"},
	{"RequestTimeTooSkewed", 403, "Forbidden",
	 "The difference between the request time and the current time is too large."},
	{"SignatureDoesNotMatch", 403, "Forbidden",
	 "The request signature we calculated does not match the signature you provided. Check "
	 "your key and signing method."},
	{"XAmzContentSHA256Mismatch", 400, "Bad Request",
	 "The provided 'x-amz-content-sha256' header does not match what was computed."},
};

static void
test_status_table(void **state)
{
	const char *reason, *message;
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(lab) / sizeof(lab[0]); i++) {
		reason = message = NULL;
		assert_int_equal(sp_s3err_status(lab[i].code, &reason, &message), lab[i].status);
		assert_string_equal(reason, lab[i].reason);
		assert_string_equal(message, lab[i].message);
	}
	assert_int_equal(sp_s3err_status("ServiceUnavailable", &reason, &message), 503);
	assert_string_equal(message, "Service is unable to handle request.");
	/* unknown (and case-different) codes: InternalError's status and message */
	assert_int_equal(sp_s3err_status("NoSuchCode", &reason, &message), 500);
	assert_string_equal(reason, "Internal Server Error");
	assert_string_equal(message, "We encountered an internal error. Please try again.");
	assert_int_equal(sp_s3err_status("accessdenied", &reason, &message), 500);
	assert_int_equal(sp_s3err_status("", &reason, &message), 500);
}

static void
test_element(void **state)
{
	char out[64];
	size_t off = 0;

	(void)state;
	assert_int_equal(sp_s3err_element(out, sizeof(out), &off, "K", "a<b>&\"c'", 8), 0);
	out[off] = '\0';
	assert_string_equal(out, "<K>a&lt;b&gt;&amp;\"c'</K>"); /* saxutils.escape: & < > only */
	/* appends, and takes len bytes of value (NULs included) */
	assert_int_equal(sp_s3err_element(out, sizeof(out), &off, "V", "xy\0z", 3), 0);
	assert_int_equal(off, strlen("<K>a&lt;b&gt;&amp;\"c'</K>") + 10);
	assert_memory_equal(out + off - 10, "<V>xy\0</V>", 10);
	/* an empty value */
	off = 0;
	assert_int_equal(sp_s3err_element(out, sizeof(out), &off, "E", "", 0), 0);
	assert_int_equal(off, 7);
	assert_memory_equal(out, "<E></E>", 7);
}

static void
test_element_no_space(void **state)
{
	char out[16];
	size_t off, need = strlen("<K>a&amp;b</K>"); /* 14 */

	(void)state;
	off = 0;
	assert_int_equal(sp_s3err_element(out, need, &off, "K", "a&b", 3), 0);
	assert_int_equal(off, need);
	off = 0;
	assert_int_equal(sp_s3err_element(out, need - 1, &off, "K", "a&b", 3), -ENOSPC);
	assert_int_equal(off, 0); /* unchanged */
	off = 5;
	assert_int_equal(sp_s3err_element(out, sizeof(out), &off, "K", "a&b", 3), -ENOSPC);
	assert_int_equal(off, 5);
	off = sizeof(out);
	assert_int_equal(sp_s3err_element(out, sizeof(out), &off, "K", "", 0), -ENOSPC);
	assert_int_equal(off, sizeof(out));
}

#define XML_HEAD "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"

/* Split a response: status line, a header's value, the body; checks the framing. */
static const char *
header(const char *resp, const char *name, char *val, size_t len)
{
	char key[64];
	const char *p, *e;

	snprintf(key, sizeof(key), "\r\n%s: ", name);
	p = strstr(resp, key);
	if (p == NULL || p > strstr(resp, "\r\n\r\n"))
		return NULL;
	p += strlen(key);
	e = strstr(p, "\r\n");
	snprintf(val, len, "%.*s", (int)(e - p), p);
	return val;
}

static void
test_response(void **state)
{
	char out[2048], val[128];
	const char *body;
	const char *want = XML_HEAD "<Error><Code>SignatureDoesNotMatch</Code><Message>The request "
				    "signature we calculated does not match the signature you "
				    "provided. Check your key and signing method.</Message>"
				    "<Resource>/bucket/a&lt;b</Resource><RequestId>0123456789ABC"
				    "DEF</RequestId><AWSAccessKeyId>AKID</AWSAccessKeyId></Error>";
	int n;

	(void)state;
	n = sp_s3err_response(out, sizeof(out), "SignatureDoesNotMatch", NULL, "/bucket/a<b", 11,
			      "0123456789ABCDEF", "<AWSAccessKeyId>AKID</AWSAccessKeyId>", false,
			      1700000000);
	assert_true(n > 0 && n < (int)sizeof(out));
	out[n] = '\0'; /* the response is not NUL-terminated */
	assert_int_equal(strlen(out), n);
	assert_true(strncmp(out, "HTTP/1.1 403 Forbidden\r\n", 24) == 0);
	assert_string_equal(header(out, "Date", val, sizeof(val)), "Tue, 14 Nov 2023 22:13:20 GMT");
	assert_string_equal(header(out, "Content-Type", val, sizeof(val)), "application/xml");
	assert_string_equal(header(out, "x-amz-request-id", val, sizeof(val)), "0123456789ABCDEF");
	assert_string_equal(header(out, "Connection", val, sizeof(val)), "close");
	body = strstr(out, "\r\n\r\n") + 4;
	assert_string_equal(body, want);
	assert_int_equal(atoi(header(out, "Content-Length", val, sizeof(val))), strlen(want));
}

static void
test_response_message_and_head(void **state)
{
	char get[2048], head[2048], val[128];
	const char *msg = "Request has expired";
	int ng, nh;

	(void)state;
	ng = sp_s3err_response(get, sizeof(get), "AccessDenied", msg, "/b/k", 4, "00000000000000AA",
			       NULL, false, 0);
	nh = sp_s3err_response(head, sizeof(head), "AccessDenied", msg, "/b/k", 4,
			       "00000000000000AA", NULL, true, 0);
	assert_true(ng > 0 && nh > 0 && ng < (int)sizeof(get) && nh < (int)sizeof(head));
	get[ng] = '\0';
	head[nh] = '\0';
	assert_true(strncmp(get, "HTTP/1.1 403 Forbidden\r\n", 24) == 0);
	assert_non_null(strstr(get, "<Code>AccessDenied</Code><Message>Request has expired"
				    "</Message><Resource>/b/k</Resource>"));
	assert_string_equal(header(get, "Date", val, sizeof(val)), "Thu, 01 Jan 1970 00:00:00 GMT");
	/* HEAD: the same head (Content-Length as for GET), no body */
	assert_int_equal(nh, (int)(strstr(get, "\r\n\r\n") + 4 - get));
	assert_memory_equal(head, get, nh);
	assert_int_equal(strlen(head), nh);
	assert_int_equal(atoi(header(head, "Content-Length", val, sizeof(val))),
			 ng - nh); /* the body GET has */
}

static void
test_response_codes(void **state)
{
	char out[2048], line[64];
	unsigned int i;
	int n;

	(void)state;
	for (i = 0; i < sizeof(lab) / sizeof(lab[0]); i++) {
		char want[256];

		n = sp_s3err_response(out, sizeof(out) - 1, lab[i].code, NULL, "/", 1,
				      "AAAAAAAAAAAAAAAA", NULL, false, 1700000000);
		assert_true(n > 0);
		out[n] = '\0';
		snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", lab[i].status, lab[i].reason);
		assert_true(strncmp(out, line, strlen(line)) == 0);
		snprintf(want, sizeof(want), "<Code>%s</Code>", lab[i].code);
		assert_non_null(strstr(out, want));
	}
	/* an unknown code: 500, with the code as given */
	n = sp_s3err_response(out, sizeof(out) - 1, "Weird", NULL, "/", 1, "AAAAAAAAAAAAAAAA", NULL,
			      false, 1700000000);
	assert_true(n > 0);
	out[n] = '\0';
	assert_true(strncmp(out, "HTTP/1.1 500 Internal Server Error\r\n", 36) == 0);
	assert_non_null(strstr(out, "<Code>Weird</Code><Message>We encountered an internal "
				    "error. Please try again.</Message>"));
}

static void
test_response_no_space(void **state)
{
	char out[2048], *big;
	int n, m;

	(void)state;
	n = sp_s3err_response(out, sizeof(out), "AccessDenied", NULL, "/b", 2, "AAAAAAAAAAAAAAAA",
			      NULL, false, 1700000000);
	assert_true(n > 0);
	/* exactly n bytes are enough for a response with a body (no NUL written after it) */
	m = sp_s3err_response(out, (size_t)n, "AccessDenied", NULL, "/b", 2, "AAAAAAAAAAAAAAAA",
			      NULL, false, 1700000000);
	assert_int_equal(m, n);
	assert_int_equal(sp_s3err_response(out, (size_t)n - 1, "AccessDenied", NULL, "/b", 2,
					   "AAAAAAAAAAAAAAAA", NULL, false, 1700000000),
			 -ENOSPC);
	assert_int_equal(sp_s3err_response(out, 20, "AccessDenied", NULL, "/b", 2,
					   "AAAAAAAAAAAAAAAA", NULL, true, 1700000000),
			 -ENOSPC);
	/* a document beyond the internal limit */
	big = malloc(5000);
	assert_non_null(big);
	memset(big, 'x', 4999);
	big[4999] = '\0';
	assert_int_equal(sp_s3err_response(out, sizeof(out), "AccessDenied", NULL, big, 4999,
					   "AAAAAAAAAAAAAAAA", NULL, false, 1700000000),
			 -ENOSPC);
	assert_int_equal(sp_s3err_response(out, sizeof(out), "AccessDenied", NULL, "/", 1,
					   "AAAAAAAAAAAAAAAA", big, false, 1700000000),
			 -ENOSPC);
	free(big);
}

static void
test_request_id(void **state)
{
	char id[17];

	(void)state;
	sp_s3err_request_id(id, 0x0123456789abcdefull);
	assert_string_equal(id, "0123456789ABCDEF");
	sp_s3err_request_id(id, 0);
	assert_string_equal(id, "0000000000000000");
	sp_s3err_request_id(id, UINT64_MAX);
	assert_string_equal(id, "FFFFFFFFFFFFFFFF");
	sp_s3err_request_id(id, 0xa);
	assert_string_equal(id, "000000000000000A");
}

static size_t
resource(char *out, size_t cap, const char *path)
{
	return sp_s3err_resource(out, cap, path, strlen(path));
}

static void
test_resource(void **state)
{
	char out[64];
	size_t n;

	(void)state;
	n = resource(out, sizeof(out), "/bucket/a%20b%2Fc");
	assert_int_equal(n, 13);
	assert_memory_equal(out, "/bucket/a b/c", 13);
	n = resource(out, sizeof(out), "/b/%41%42%6a%6A");
	assert_memory_equal(out, "/b/ABjj", n);
	/* a bad escape stays as it is */
	n = resource(out, sizeof(out), "/b/%zz%4");
	assert_int_equal(n, 8);
	assert_memory_equal(out, "/b/%zz%4", 8);
	n = resource(out, sizeof(out), "/b/%");
	assert_memory_equal(out, "/b/%", n);
	/* decoded bytes as they are (%00 included) */
	n = resource(out, sizeof(out), "/%00%C3%A9");
	assert_int_equal(n, 4);
	assert_memory_equal(out, "/\0\xc3\xa9", 4);
	/* truncated to cap */
	n = resource(out, 4, "/bucket/key");
	assert_int_equal(n, 4);
	assert_memory_equal(out, "/buc", 4);
	assert_int_equal(resource(out, sizeof(out), ""), 0);
	/* as http.server and unquote(): a leading "//" folded, bad UTF-8 as U+FFFD */
	n = resource(out, sizeof(out), "///b/k");
	assert_int_equal(n, 4);
	assert_memory_equal(out, "/b/k", 4);
	n = resource(out, sizeof(out), "/b/%FFx%E2%82");
	assert_int_equal(n, 10);
	assert_memory_equal(out, "/b/\xef\xbf\xbdx\xef\xbf\xbd", 10);
	/* cut at a character boundary */
	n = resource(out, 5, "/b/%C3%A9");
	assert_int_equal(n, 5);
	n = resource(out, 4, "/b/%C3%A9");
	assert_int_equal(n, 3);
}

/* The document of a SigV4 refusal: code, message and the lab's extra elements. */
static void
test_sigv4_response(void **state)
{
	const struct sp_s3err_sigv4_info sts_info = {.string_to_sign = "x"};
	struct sp_sigv4_auth auth;
	char out[2048];
	int n;

	(void)state;
	memset(&auth, 0, sizeof(auth));
	strcpy(auth.access_key, "AKID<x>");
	auth.access_key_len = 7;
	strcpy(auth.amz_date, "20231114T221320Z");
	auth.date = 1700000000;
	auth.expires = 60;

	n = sp_s3err_sigv4_response(out, sizeof(out) - 1, -SP_SIGV4_ERR_EXPIRED, &auth, NULL,
				    "/b/k", 4, "AAAAAAAAAAAAAAAA", false, 1700000100);
	assert_true(n > 0);
	out[n] = '\0';
	assert_true(strncmp(out, "HTTP/1.1 403 Forbidden\r\n", 24) == 0);
	assert_non_null(strstr(out,
			       "<Code>AccessDenied</Code><Message>Request has expired</Message>"
			       "<Resource>/b/k</Resource><RequestId>AAAAAAAAAAAAAAAA</RequestId>"
			       "<Expires>2023-11-14T22:14:20Z</Expires>"
			       "<ServerTime>2023-11-14T22:15:00Z</ServerTime></Error>"));

	n = sp_s3err_sigv4_response(out, sizeof(out) - 1, SP_SIGV4_ERR_SKEWED, &auth, NULL, "/b/k",
				    4, "AAAAAAAAAAAAAAAA", false, 1700001000);
	assert_true(n > 0);
	out[n] = '\0';
	assert_non_null(strstr(out, "HTTP/1.1 403 Forbidden\r\n"));
	assert_non_null(strstr(out, "<Code>RequestTimeTooSkewed</Code>"));
	assert_non_null(strstr(out,
			       "</RequestId><RequestTime>20231114T221320Z</RequestTime>"
			       "<ServerTime>2023-11-14T22:30:00Z</ServerTime>"
			       "<MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>"
			       "</Error>"));

	n = sp_s3err_sigv4_response(out, sizeof(out) - 1, -SP_SIGV4_ERR_UNKNOWN_ACCESS_KEY, &auth,
				    NULL, "/", 1, "AAAAAAAAAAAAAAAA", false, 1700000000);
	assert_true(n > 0);
	out[n] = '\0';
	assert_non_null(strstr(out, "<Code>InvalidAccessKeyId</Code><Message>The AWS Access Key Id "
				    "you provided does not exist in our records.</Message>"));
	assert_non_null(strstr(out, "<AWSAccessKeyId>AKID&lt;x&gt;</AWSAccessKeyId></Error>"));

	/* SignatureDoesNotMatch: AWSAccessKeyId, StringToSign, SignatureProvided (the canonical
	 * request is not given: left out) */
	strcpy(auth.signature, "abc");
	auth.signature_len = 3;
	n = sp_s3err_sigv4_response(out, sizeof(out) - 1, -SP_SIGV4_ERR_SIGNATURE_MISMATCH, &auth,
				    &sts_info, "/", 1, "AAAAAAAAAAAAAAAA", false, 1700000000);
	assert_true(n > 0);
	out[n] = '\0';
	assert_non_null(strstr(out, "<Code>SignatureDoesNotMatch</Code>"));
	assert_non_null(strstr(out, "<AWSAccessKeyId>AKID&lt;x&gt;</AWSAccessKeyId>"
				    "<StringToSign>x</StringToSign>"
				    "<SignatureProvided>abc</SignatureProvided></Error>"));

	/* no auth: no extra elements; codes and messages as sp_sigv4 names them */
	n = sp_s3err_sigv4_response(out, sizeof(out) - 1, -SP_SIGV4_ERR_SKEWED, NULL, NULL, "/", 1,
				    "AAAAAAAAAAAAAAAA", false, 1700000000);
	assert_true(n > 0);
	out[n] = '\0';
	assert_non_null(strstr(out, "</RequestId></Error>"));
	n = sp_s3err_sigv4_response(out, sizeof(out) - 1, -SP_SIGV4_ERR_MISSING, &auth, NULL, "/",
				    1, "AAAAAAAAAAAAAAAA", false, 1700000000);
	assert_true(n > 0);
	out[n] = '\0';
	assert_non_null(strstr(out, "<Code>AccessDenied</Code><Message>Access Denied</Message>"));
	assert_non_null(strstr(out, "</RequestId></Error>"));
	n = sp_s3err_sigv4_response(out, sizeof(out) - 1, -SP_SIGV4_ERR_STREAMING_PAYLOAD, &auth,
				    NULL, "/", 1, "AAAAAAAAAAAAAAAA", true, 1700000000);
	assert_true(n > 0);
	out[n] = '\0';
	assert_true(strncmp(out, "HTTP/1.1 501 Not Implemented\r\n", 30) == 0);
	assert_null(strstr(out, "<Error>")); /* HEAD: no body */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_table),
		cmocka_unit_test(test_element),
		cmocka_unit_test(test_element_no_space),
		cmocka_unit_test(test_response),
		cmocka_unit_test(test_response_message_and_head),
		cmocka_unit_test(test_response_codes),
		cmocka_unit_test(test_response_no_space),
		cmocka_unit_test(test_request_id),
		cmocka_unit_test(test_resource),
		cmocka_unit_test(test_sigv4_response),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
