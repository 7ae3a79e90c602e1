/* The object cache's HTTP pieces (no DPDK): response heads, HTTP dates, ETag lists, the
 * conditions of a GET as S3 judges them, and the stored head a hit is answered with. */
#ifndef SP_CACHE_HTTP_H
#define SP_CACHE_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sp_http.h"

/* A response head as sp_http_parse_response() found it (spans into the caller's buffer). */
struct sp_http_resp {
	uint16_t status;
	uint8_t version; /* 10 or 11 */
	bool has_content_length;
	bool chunked;	 /* Transfer-Encoding present (any value: not cacheable) */
	bool conn_close; /* "close" in Connection */
	uint64_t content_length;
	struct sp_http_span reason;
	uint16_t n_headers;
	struct sp_http_header headers[SP_HTTP_MAX_HEADERS];
};

/*
 * Parse the response head at buf[0, len), at most max bytes of head. Returns the head's length
 * (> 0, the body starts there), 0 (incomplete: call again with more), or -EINVAL (malformed:
 * bad status line, a line without ':', bare LF or CR, NUL, a bad or second Content-Length,
 * more than SP_HTTP_MAX_HEADERS lines, or no end within max bytes).
 */
int sp_http_parse_response(const char *buf, size_t len, size_t max, struct sp_http_resp *r);

/*
 * An HTTP date as the lab's service reads one (Python's email.utils.parsedate_to_datetime:
 * IMF-fixdate, RFC 850, asctime, and what email._parseaddr._parsedate_tz also takes: optional
 * day name, numeric or named zones, two-digit years). 0 and unix seconds in *out, or -EINVAL.
 */
int sp_http_date_parse(const char *s, size_t len, int64_t *out);

/* IMF-fixdate ("Thu, 26 Nov 2026 06:55:47 GMT") of unix seconds t: 29 bytes, not NUL-ended. */
#define SP_HTTP_DATE_LEN 29
void sp_http_date_format(int64_t t, char out[SP_HTTP_DATE_LEN]);

/*
 * Whether an If-Match / If-None-Match value (hdr, hlen) matches etag (elen bytes, as stored:
 * quotes included), as the lab's service decides: the value split at ',', each item trimmed,
 * a leading "W/" removed, quotes stripped from both ends; "*" matches anything.
 */
bool sp_http_etag_matches(const char *hdr, size_t hlen, const char *etag, size_t elen);

/* The conditional headers of a request (value spans, ptr NULL when absent). */
struct sp_http_conds {
	const char *if_match, *if_none_match, *if_modified_since, *if_unmodified_since;
	size_t if_match_len, if_none_match_len, if_modified_since_len, if_unmodified_since_len;
};

enum sp_http_cond_rc {
	SP_HTTP_COND_GO = 0,			 /* answer the request */
	SP_HTTP_COND_NOT_MODIFIED,		 /* 304 */
	SP_HTTP_COND_FAILED_IF_MATCH,		 /* 412, Condition If-Match */
	SP_HTTP_COND_FAILED_IF_UNMODIFIED_SINCE, /* 412, Condition If-Unmodified-Since */
};

/*
 * The conditions of a GET or HEAD on an object with etag and Last-Modified mtime (unix
 * seconds; INT64_MIN: unknown, then date conditions do not apply), in the lab service's order
 * (RFC 7232 section 6, as S3): If-Match (else If-Unmodified-Since), then If-None-Match (else
 * If-Modified-Since). An unparsable date is ignored.
 */
enum sp_http_cond_rc sp_http_conditions(const struct sp_http_conds *c, const char *etag,
					size_t elen, int64_t mtime);

/* The dynamic values of a stored head. */
enum sp_cache_mark {
	SP_CACHE_MARK_DATE = 0, /* the Date value: now (SP_HTTP_DATE_LEN bytes) */
	SP_CACHE_MARK_REQID,	/* the x-amz-request-id value: 16 upper-case hex digits */
	SP_CACHE_MARK_ID2,	/* the x-amz-id-2 value: base64 of the request id (24 bytes) */
	SP_CACHE_MARK_LENGTH,	/* the Content-Length value: this response's body bytes */
};

struct sp_cache_tmpl_mark {
	uint16_t off; /* in the template: the value goes here */
	uint8_t kind; /* enum sp_cache_mark */
};

#define SP_CACHE_TMPL_MARKS 8

/*
 * The stored head of a cacheable 200 response r (parsed from buf): its header lines after the
 * status line, in order, each "Name: value\r\n" as sent, without Connection, Keep-Alive,
 * Transfer-Encoding and Proxy-Connection; the values of Date, x-amz-request-id, x-amz-id-2 and
 * Content-Length (names compared case-insensitively) cut out, a mark recording where each goes.
 * No final blank line. Written to out (cap bytes). Returns its length, or -ENOSPC (out or the
 * marks too small), -EINVAL (no Content-Length).
 */
int sp_cache_tmpl_build(const char *buf, const struct sp_http_resp *r, char *out, size_t cap,
			struct sp_cache_tmpl_mark *marks, unsigned int *n_marks);

/* The values a stored head is filled with. */
struct sp_cache_tmpl_vals {
	const char *date;  /* SP_HTTP_DATE_LEN bytes */
	const char *reqid; /* 16 bytes */
	const char *id2;   /* 24 bytes */
	uint64_t length;   /* Content-Length */
};

/*
 * The template tmpl (len bytes, marks m[0, n)) with the values filled in, written to out
 * (cap bytes). Returns the length, or -ENOSPC.
 */
int sp_cache_tmpl_render(char *out, size_t cap, const char *tmpl, size_t len,
			 const struct sp_cache_tmpl_mark *m, unsigned int n,
			 const struct sp_cache_tmpl_vals *v);

/* x-amz-id-2 as the lab's service makes it: base64 of the 16-character request id (24 bytes). */
void sp_cache_id2(const char reqid[16], char out[24]);

/*
 * An object's cache key: its request path percent-decoded (%XX with two hex digits; anything else
 * as it is), as the service names objects, so "/b/%41" and "/b/A" are one object. Written to out
 * (cap bytes). Returns its length, or 0 if it does not fit.
 */
uint32_t sp_cache_name(const char *path, uint32_t len, char *out, uint32_t cap);

/* The value of header name (case-insensitive) in r (from buf), or NULL (*len set). */
const char *sp_http_resp_header(const char *buf, const struct sp_http_resp *r, const char *name,
				size_t *len);

#endif /* SP_CACHE_HTTP_H */
