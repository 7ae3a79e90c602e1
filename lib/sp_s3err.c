/* S3 error responses: code table, XML escaping, the whole HTTP response. */
#include "sp_s3err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "sp_conf.h"
#include "sp_utf8.h"

struct code {
	const char *code;
	int status;
	const char *reason;
	const char *message;
};

/* The errors shortpath answers itself (status and message as tools/lab/service/s3front.py). */
static const struct code codes[] = {
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
	{"InvalidRange", 416, "Requested Range Not Satisfiable",
	 "The requested range is not satisfiable"},
	{"InvalidRequest", 400, "Bad Request", "Invalid Request"},
	{"NotImplemented", 501, "Not Implemented",
	 "A header you provided implies functionality that is not implemented"},
	{"PreconditionFailed", 412, "Precondition Failed",
	 "At least one of the pre-conditions you specified did not hold"},
	{"RequestTimeTooSkewed", 403, "Forbidden",
	 "The difference between the request time and the current time is too large."},
	{"ServiceUnavailable", 503, "Service Unavailable", "Service is unable to handle request."},
	{"SignatureDoesNotMatch", 403, "Forbidden",
	 "The request signature we calculated does not match the signature you provided. Check "
	 "your key and signing method."},
	{"XAmzContentSHA256Mismatch", 400, "Bad Request",
	 "The provided 'x-amz-content-sha256' header does not match what was computed."},
};

int
sp_s3err_status(const char *code, const char **reason, const char **message)
{
	size_t i;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (strcmp(code, codes[i].code) == 0) {
			*reason = codes[i].reason;
			*message = codes[i].message;
			return codes[i].status;
		}
	*reason = "Internal Server Error";
	*message = "We encountered an internal error. Please try again.";
	return 500;
}

static int
put(char *out, size_t cap, size_t *off, const char *s, size_t len)
{
	if (cap - *off < len)
		return -ENOSPC;
	memcpy(out + *off, s, len);
	*off += len;
	return 0;
}

int
sp_s3err_element(char *out, size_t cap, size_t *off, const char *name, const char *value,
		 size_t len)
{
	size_t o = *off, nlen = strlen(name), i;
	int rc = 0;

	rc |= put(out, cap, &o, "<", 1);
	rc |= put(out, cap, &o, name, nlen);
	rc |= put(out, cap, &o, ">", 1);
	for (i = 0; i < len && rc == 0; i++) {
		switch (value[i]) {
		case '&':
			rc = put(out, cap, &o, "&amp;", 5);
			break;
		case '<':
			rc = put(out, cap, &o, "&lt;", 4);
			break;
		case '>':
			rc = put(out, cap, &o, "&gt;", 4);
			break;
		default:
			rc = put(out, cap, &o, &value[i], 1);
		}
	}
	rc |= put(out, cap, &o, "</", 2);
	rc |= put(out, cap, &o, name, nlen);
	rc |= put(out, cap, &o, ">", 1);
	if (rc != 0)
		return -ENOSPC;
	*off = o;
	return 0;
}

#define XML_HEAD "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>"
#define BODY_MAX 4096
#define MAX_SKEW_MS "900000" /* SP_SIGV4_MAX_SKEW in ms, as the document writes it */
_Static_assert(SP_SIGV4_MAX_SKEW == 900, "MaxAllowedSkewMilliseconds");

int
sp_s3err_response(char *out, size_t cap, const char *code, const char *message,
		  const char *resource, size_t resource_len, const char *request_id,
		  const char *extra, bool head, int64_t date)
{
	char body[BODY_MAX], when[40];
	const char *reason, *dflt;
	size_t blen = 0;
	struct tm tm;
	time_t t = (time_t)date;
	int status, n, rc = 0;

	status = sp_s3err_status(code, &reason, &dflt);
	if (message == NULL)
		message = dflt;
	rc |= put(body, sizeof(body), &blen, XML_HEAD, sizeof(XML_HEAD) - 1);
	rc |= sp_s3err_element(body, sizeof(body), &blen, "Code", code, strlen(code));
	rc |= sp_s3err_element(body, sizeof(body), &blen, "Message", message, strlen(message));
	rc |= sp_s3err_element(body, sizeof(body), &blen, "Resource", resource, resource_len);
	rc |= sp_s3err_element(body, sizeof(body), &blen, "RequestId", request_id,
			       strlen(request_id));
	if (extra != NULL)
		rc |= put(body, sizeof(body), &blen, extra, strlen(extra));
	rc |= put(body, sizeof(body), &blen, "</Error>", 8);
	if (rc != 0)
		return -ENOSPC;
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(when, sizeof(when), "%a, %d %b %Y %H:%M:%S GMT", &tm) == 0)
		snprintf(when, sizeof(when), "Thu, 01 Jan 1970 00:00:00 GMT");
	n = snprintf(out, cap,
		     "HTTP/1.1 %d %s\r\n"
		     "Date: %s\r\n"
		     "Content-Type: application/xml\r\n"
		     "Content-Length: %zu\r\n"
		     "x-amz-request-id: %s\r\n"
		     "Connection: close\r\n"
		     "\r\n",
		     status, reason, when, blen, request_id);
	if (n < 0 || (size_t)n >= cap)
		return -ENOSPC;
	if (!head) {
		size_t o = (size_t)n;

		if (put(out, cap, &o, body, blen) != 0)
			return -ENOSPC;
		n = (int)o;
	}
	return n;
}

static void
iso_time(char out[24], int64_t when)
{
	time_t t = (time_t)when;
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(out, 24, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(out, 24, "1970-01-01T00:00:00Z");
}

int
sp_s3err_response_fit(char *out, size_t cap, const char *code, const char *message,
		      const char *resource, size_t resource_len, const char *request_id,
		      const struct sp_s3err_extra *x, unsigned int nx, bool head, int64_t date)
{
	char extra[BODY_MAX];
	unsigned int k, i;
	size_t off;
	int n;

	for (k = nx + 1; k-- > 0;) {
		off = 0;
		for (i = 0; i < k; i++)
			if (x[i].value != NULL &&
			    sp_s3err_element(extra, sizeof(extra) - 1, &off, x[i].name, x[i].value,
					     x[i].len) != 0)
				break;
		if (i < k)
			continue;
		extra[off] = '\0';
		n = sp_s3err_response(out, cap, code, message, resource, resource_len, request_id,
				      off > 0 ? extra : NULL, head, date);
		if (n > 0)
			return n;
	}
	return -ENOSPC;
}

int
sp_s3err_sigv4_response(char *out, size_t cap, int err, const struct sp_sigv4_auth *auth,
			const struct sp_s3err_sigv4_info *info, const char *resource,
			size_t resource_len, const char *request_id, bool head, int64_t now)
{
	static const struct sp_s3err_sigv4_info none;
	struct sp_s3err_extra x[4];
	char t1[24], t2[24];
	unsigned int nx = 0;
	int e = err < 0 ? -err : err;

	if (info == NULL)
		info = &none;
	switch (auth != NULL ? e : SP_SIGV4_ERR_NONE) {
	case SP_SIGV4_ERR_UNKNOWN_ACCESS_KEY:
	case SP_SIGV4_ERR_BAD_ACCESS_KEY:
		/* as the lab: the key as read (a too long one was not kept whole: left out) */
		if (auth->access_key_len > 0 && (e == SP_SIGV4_ERR_UNKNOWN_ACCESS_KEY ||
						 auth->access_key_len < SP_SIGV4_ACCESS_KEY_MAX))
			x[nx++] = (struct sp_s3err_extra){"AWSAccessKeyId", auth->access_key,
							  auth->access_key_len};
		break;
	case SP_SIGV4_ERR_SKEWED:
		iso_time(t1, now);
		x[nx++] = (struct sp_s3err_extra){"RequestTime", auth->amz_date,
						  strlen(auth->amz_date)};
		x[nx++] = (struct sp_s3err_extra){"ServerTime", t1, strlen(t1)};
		x[nx++] = (struct sp_s3err_extra){"MaxAllowedSkewMilliseconds", MAX_SKEW_MS, 6};
		break;
	case SP_SIGV4_ERR_EXPIRED:
		iso_time(t1, auth->date + auth->expires);
		iso_time(t2, now);
		x[nx++] = (struct sp_s3err_extra){"Expires", t1, strlen(t1)};
		x[nx++] = (struct sp_s3err_extra){"ServerTime", t2, strlen(t2)};
		break;
	case SP_SIGV4_ERR_SIGNATURE_MISMATCH:
	case SP_SIGV4_ERR_BAD_SIGNATURE:
		x[nx++] = (struct sp_s3err_extra){"AWSAccessKeyId", auth->access_key,
						  auth->access_key_len};
		x[nx++] = (struct sp_s3err_extra){
			"StringToSign", info->string_to_sign,
			info->string_to_sign ? strlen(info->string_to_sign) : 0};
		x[nx++] = (struct sp_s3err_extra){
			"SignatureProvided", auth->signature_len <= 64 ? auth->signature : NULL,
			auth->signature_len};
		x[nx++] = (struct sp_s3err_extra){"CanonicalRequest", info->creq, info->creq_len};
		break;
	case SP_SIGV4_ERR_CONTENT_SHA256_MISMATCH:
		x[nx++] = (struct sp_s3err_extra){"ClientComputedContentSHA256", auth->payload,
						  strlen(auth->payload)};
		x[nx++] = (struct sp_s3err_extra){"S3ComputedContentSHA256", info->body_sha256,
						  info->body_sha256 ? 64 : 0};
		break;
	default:
		break;
	}
	return sp_s3err_response_fit(out, cap, sp_sigv4_s3_code(e), sp_sigv4_s3_message(e),
				     resource, resource_len, request_id, x, nx, head, now);
}

size_t
sp_s3err_resource(char *out, size_t cap, const char *p, size_t n)
{
	uint8_t ch[SP_UTF8_OUT_MAX];
	struct sp_utf8 u;
	size_t i = 0, o = 0;
	unsigned int k;

	while (n > 1 && p[0] == '/' && p[1] == '/') {
		p++;
		n--;
	}
	sp_utf8_init(&u);
	while (i < n) {
		uint8_t c = (uint8_t)p[i++];
		int h1, h2;

		if (c == '%' && i + 2 <= n && (h1 = sp_conf_hexval(p[i])) >= 0 &&
		    (h2 = sp_conf_hexval(p[i + 1])) >= 0) {
			c = (uint8_t)(h1 << 4 | h2);
			i += 2;
		}
		k = sp_utf8_push(&u, c, ch);
		if (cap - o < k) /* cut where a character ends */
			return o;
		memcpy(out + o, ch, k);
		o += k;
	}
	k = sp_utf8_finish(&u, ch);
	if (cap - o >= k) {
		memcpy(out + o, ch, k);
		o += k;
	}
	return o;
}

void
sp_s3err_request_id(char out[17], uint64_t v)
{
	static const char hex[] = "0123456789ABCDEF";
	int i;

	for (i = 15; i >= 0; i--) {
		out[i] = hex[v & 15];
		v >>= 4;
	}
	out[16] = '\0';
}
