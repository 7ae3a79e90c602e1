/* Strict, bounded, zero-copy HTTP/1.1 request parser, chunked decoder, Range resolver (no DPDK). */
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "sp_http.h"

/* Character classes (RFC 9110, 9112, 3986): one bit each in sp_http_cc[]. */
#define SP_HTTP_CC_TCHAR 0x01  /* token: ALPHA DIGIT !#$%&'*+-.^_`|~ */
#define SP_HTTP_CC_TARGET 0x02 /* origin-form target: unreserved, sub-delims, :@/?% */
#define SP_HTTP_CC_VALUE 0x04  /* field value: VCHAR, obs-text (0x80-0xff), SP, HTAB */
#define SP_HTTP_CC_HEX 0x08    /* HEXDIG */
#define SP_HTTP_CC_HOST 0x10   /* Host: unreserved, sub-delims, :[]% */

/* Generated from the definitions above; tests/unit/test_http.c checks every byte of each class. */
static const uint8_t sp_http_cc[256] = {
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 0x00 */
	0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 0x08 */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 0x10 */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 0x18 */
	0x04, 0x17, 0x04, 0x05, 0x17, 0x17, 0x17, 0x17, /* 0x20 .!"#$%&' */
	0x16, 0x16, 0x17, 0x17, 0x16, 0x17, 0x17, 0x06, /* 0x28 ()*+,-./ */
	0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, /* 0x30 01234567 */
	0x1f, 0x1f, 0x16, 0x16, 0x04, 0x16, 0x04, 0x06, /* 0x38 89:;<=>? */
	0x06, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x17, /* 0x40 @ABCDEFG */
	0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, /* 0x48 HIJKLMNO */
	0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, /* 0x50 PQRSTUVW */
	0x17, 0x17, 0x17, 0x14, 0x04, 0x14, 0x05, 0x17, /* 0x58 XYZ[\]^_ */
	0x05, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x1f, 0x17, /* 0x60 `abcdefg */
	0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, /* 0x68 hijklmno */
	0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, 0x17, /* 0x70 pqrstuvw */
	0x17, 0x17, 0x17, 0x04, 0x05, 0x04, 0x17, 0x00, /* 0x78 xyz{|}~. */
	0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* 0x80 */
	0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* 0x88 */
	0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* 0x90 */
	0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* 0x98 */
	0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* 0xa0 */
	0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* 0xa8 */
	0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* 0xb0 */
	0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* 0xb8 */
	0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* 0xc0 */
	0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* 0xc8 */
	0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* 0xd0 */
	0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* 0xd8 */
	0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* 0xe0 */
	0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* 0xe8 */
	0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* 0xf0 */
	0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, /* 0xf8 */
};

static const char *const sp_http_err_names[SP_HTTP_ERR_MAX] = {
#define SP_HTTP_ERR_NAME(e, s) [SP_HTTP_ERR_##e] = s,
	SP_HTTP_ERRORS(SP_HTTP_ERR_NAME)
#undef SP_HTTP_ERR_NAME
};

struct sp_http_name {
	const char *s;
	uint32_t len;
};

static const struct sp_http_name sp_http_method_names[SP_HTTP_METHOD_MAX] = {
#define SP_HTTP_METHOD_NAME(e, s) [SP_HTTP_METHOD_##e] = {s, sizeof(s) - 1},
	SP_HTTP_METHODS(SP_HTTP_METHOD_NAME)
#undef SP_HTTP_METHOD_NAME
};

static const struct sp_http_name sp_http_hdr_names[SP_HTTP_HDR_MAX] = {
#define SP_HTTP_HDR_NAME(e, s) [SP_HTTP_HDR_##e] = {s, sizeof(s) - 1},
	SP_HTTP_HEADERS(SP_HTTP_HDR_NAME)
#undef SP_HTTP_HDR_NAME
};

_Static_assert(SP_HTTP_HDR_MAX <= 32, "hdr_present has one bit per known header");

/* Chunked decoder states, in line order: the size line, data, trailer section. */
enum sp_http_chunk_state {
	SP_HTTP_CH_SIZE_START = 0, /* first hex digit of a chunk size */
	SP_HTTP_CH_SIZE,	   /* hex digits; then ';', BWS or CR */
	SP_HTTP_CH_EXT_WS,	   /* BWS before ';' */
	SP_HTTP_CH_EXT_NAME_START, /* after ';': BWS, then the extension name */
	SP_HTTP_CH_EXT_NAME,	   /* name; then BWS, '=', ';' or CR */
	SP_HTTP_CH_EXT_NAME_WS,	   /* BWS after a name: then '=' or ';' */
	SP_HTTP_CH_EXT_VAL_START,  /* after '=': BWS, then a token or a quoted-string */
	SP_HTTP_CH_EXT_TOKEN,	   /* token value; then BWS, ';' or CR */
	SP_HTTP_CH_EXT_QUOTED,	   /* inside a quoted-string */
	SP_HTTP_CH_EXT_QUOTED_ESC, /* after '\' inside a quoted-string */
	SP_HTTP_CH_EXT_VAL_END,	   /* after the closing quote: BWS, ';' or CR */
	SP_HTTP_CH_SIZE_LF,	   /* CR seen: LF ends the size line */
	SP_HTTP_CH_DATA,	   /* remaining bytes of chunk data */
	SP_HTTP_CH_DATA_CR,	   /* CRLF after the data */
	SP_HTTP_CH_DATA_LF,
	SP_HTTP_CH_TRAILER_START, /* a trailer field name, or the CR of the final CRLF */
	SP_HTTP_CH_TRAILER_NAME,
	SP_HTTP_CH_TRAILER_VALUE,
	SP_HTTP_CH_TRAILER_LF,
	SP_HTTP_CH_END_LF, /* LF of the final CRLF */
	SP_HTTP_CH_DONE,
	SP_HTTP_CH_FAILED,
};

static inline bool
sp_http_is(char c, uint8_t cls)
{
	return (sp_http_cc[(unsigned char)c] & cls) != 0;
}

static inline bool
sp_http_is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static inline unsigned char
sp_http_lower(char c)
{
	unsigned char u = (unsigned char)c;

	return u >= 'A' && u <= 'Z' ? (unsigned char)(u + ('a' - 'A')) : u;
}

/* ASCII case-insensitive comparison of s[0, n) with the lower-case string lc of length lcn. */
static bool
sp_http_ieq(const char *s, size_t n, const char *lc, size_t lcn)
{
	size_t i;

	if (n != lcn)
		return false;
	for (i = 0; i < n; i++)
		if (sp_http_lower(s[i]) != (unsigned char)lc[i])
			return false;
	return true;
}

#define SP_HTTP_IEQ(s, n, lit) sp_http_ieq(s, n, lit, sizeof(lit) - 1)

static inline struct sp_http_span
sp_http_span(uint32_t off, uint32_t len)
{
	return (struct sp_http_span){.off = off, .len = len};
}

static inline unsigned int
sp_http_hex_val(char c)
{
	unsigned char u = (unsigned char)c;

	return u <= '9' ? (unsigned int)(u - '0') : (unsigned int)(sp_http_lower(c) - 'a') + 10u;
}

/* 1*DIGIT into *out; false if empty, not all digits, or beyond UINT64_MAX. */
static bool
sp_http_parse_u64(const char *s, uint32_t n, uint64_t *out)
{
	uint64_t v = 0;
	uint32_t i;

	if (n == 0)
		return false;
	for (i = 0; i < n; i++) {
		unsigned int d = (unsigned char)s[i] - (unsigned int)'0';

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

/* Origin-form target (or "*" for OPTIONS) in buf[t, e), e > t; sets target, path, query. */
static int
sp_http_parse_target(const char *buf, uint32_t t, uint32_t e, struct sp_http_req *req)
{
	uint32_t i, q = e;

	req->target = sp_http_span(t, e - t);
	if (buf[t] == '*') {
		if (e - t != 1 || req->method != SP_HTTP_METHOD_OPTIONS)
			return -SP_HTTP_ERR_BAD_TARGET;
		req->path = req->target;
		return 0;
	}
	if (buf[t] != '/')
		return -SP_HTTP_ERR_BAD_TARGET;
	for (i = t; i < e; i++) {
		if (!sp_http_is(buf[i], SP_HTTP_CC_TARGET))
			return -SP_HTTP_ERR_BAD_TARGET;
		if (buf[i] == '%') {
			if (e - i < 3 || !sp_http_is(buf[i + 1], SP_HTTP_CC_HEX) ||
			    !sp_http_is(buf[i + 2], SP_HTTP_CC_HEX))
				return -SP_HTTP_ERR_BAD_TARGET;
			i += 2;
		} else if (buf[i] == '?' && q == e) {
			q = i;
		}
	}
	req->path = sp_http_span(t, q - t);
	if (q < e) {
		req->has_query = true;
		req->query = sp_http_span(q + 1, e - q - 1);
	}
	return 0;
}

/* "METHOD SP target SP HTTP/1.x" in buf[s, e) (CRLF excluded, e > s). */
static int
sp_http_parse_request_line(const char *buf, uint32_t s, uint32_t e, struct sp_http_req *req,
			   const struct sp_http_limits *lim)
{
	uint32_t i = s, t, m;
	int rc;

	while (i < e && sp_http_is(buf[i], SP_HTTP_CC_TCHAR))
		i++;
	if (i == s || i == e || buf[i] != ' ')
		return -SP_HTTP_ERR_BAD_METHOD;
	req->method_tok = sp_http_span(s, i - s);
	req->method = SP_HTTP_METHOD_OTHER;
	for (m = SP_HTTP_METHOD_OTHER + 1; m < SP_HTTP_METHOD_MAX; m++) {
		/* methods are case-sensitive: "get" is some other method */
		if (sp_http_method_names[m].len == i - s &&
		    memcmp(buf + s, sp_http_method_names[m].s, i - s) == 0) {
			req->method = (uint8_t)m;
			break;
		}
	}

	t = ++i;
	while (i < e && buf[i] != ' ')
		i++;
	if (i == t)
		return -SP_HTTP_ERR_BAD_TARGET;
	if (i - t > lim->max_target)
		return -SP_HTTP_ERR_TARGET_TOO_LONG;
	rc = sp_http_parse_target(buf, t, i, req);
	if (rc != 0)
		return rc;

	if (i == e)
		return -SP_HTTP_ERR_BAD_VERSION;
	i++;
	if (e - i != 8 || memcmp(buf + i, "HTTP/1.", 7) != 0 ||
	    (buf[i + 7] != '0' && buf[i + 7] != '1'))
		return -SP_HTTP_ERR_BAD_VERSION;
	req->version = buf[i + 7] == '1' ? 11 : 10;
	return 0;
}

/* Connection: a list of tokens (empty elements allowed), "close" and "keep-alive" noted. */
static int
sp_http_parse_connection(const char *v, uint32_t n, struct sp_http_req *req)
{
	uint32_t i = 0, j, a, b, k;

	while (i <= n) {
		for (j = i; j < n && v[j] != ','; j++)
			;
		for (a = i; a < j && sp_http_is_ows(v[a]); a++)
			;
		for (b = j; b > a && sp_http_is_ows(v[b - 1]); b--)
			;
		for (k = a; k < b; k++)
			if (!sp_http_is(v[k], SP_HTTP_CC_TCHAR))
				return -SP_HTTP_ERR_BAD_HEADER_VALUE;
		if (SP_HTTP_IEQ(v + a, b - a, "close"))
			req->conn_close = true;
		else if (SP_HTTP_IEQ(v + a, b - a, "keep-alive"))
			req->conn_keep_alive = true;
		i = j + 1;
	}
	return 0;
}

/* A header of the known table, value in buf[v, ve) (trimmed). */
static int
sp_http_known_header(const char *buf, unsigned int id, uint32_t v, uint32_t ve,
		     struct sp_http_req *req)
{
	const char *val = buf + v;
	uint32_t n = ve - v, i;
	bool dup = sp_http_req_has(req, (enum sp_http_hdr)id);

	switch (id) {
	case SP_HTTP_HDR_HOST:
		if (dup || n == 0)
			return -SP_HTTP_ERR_BAD_HOST;
		for (i = 0; i < n; i++)
			if (!sp_http_is(val[i], SP_HTTP_CC_HOST))
				return -SP_HTTP_ERR_BAD_HOST;
		break;
	case SP_HTTP_HDR_CONTENT_LENGTH:
		if (dup)
			return -SP_HTTP_ERR_DUP_CONTENT_LENGTH;
		if (!sp_http_parse_u64(val, n, &req->content_length))
			return -SP_HTTP_ERR_BAD_CONTENT_LENGTH;
		req->has_content_length = true;
		break;
	case SP_HTTP_HDR_TRANSFER_ENCODING:
		/* HTTP/1.0 has no chunked framing (RFC 9112 6.1): refuse rather than guess */
		if (dup || req->version != 11 || !SP_HTTP_IEQ(val, n, "chunked"))
			return -SP_HTTP_ERR_BAD_TRANSFER_ENCODING;
		req->chunked = true;
		break;
	case SP_HTTP_HDR_CONNECTION:
		if (dup)
			return -SP_HTTP_ERR_DUP_HEADER;
		if (sp_http_parse_connection(val, n, req) != 0)
			return -SP_HTTP_ERR_BAD_HEADER_VALUE;
		break;
	case SP_HTTP_HDR_EXPECT:
		if (dup)
			return -SP_HTTP_ERR_DUP_HEADER;
		/* an HTTP/1.0 server ignores Expect (RFC 9110 10.1.1) */
		if (req->version == 11) {
			if (SP_HTTP_IEQ(val, n, "100-continue"))
				req->expect_continue = true;
			else
				req->expect_other = true;
		}
		break;
	default:
		if (dup)
			return -SP_HTTP_ERR_DUP_HEADER;
		break;
	}
	req->hdr_present |= 1u << id;
	req->hdr[id] = sp_http_span(v, n);
	return 0;
}

/* Index of the known header named name[0, n), or SP_HTTP_HDR_MAX. */
static unsigned int
sp_http_hdr_lookup(const char *name, uint32_t n)
{
	unsigned int h;

	for (h = 0; h < SP_HTTP_HDR_MAX; h++)
		if (sp_http_ieq(name, n, sp_http_hdr_names[h].s, sp_http_hdr_names[h].len))
			return h;
	return SP_HTTP_HDR_MAX;
}

/* "name: value" in buf[s, e) (CRLF excluded, e > s). */
static int
sp_http_parse_header_line(const char *buf, uint32_t s, uint32_t e, struct sp_http_req *req,
			  uint32_t max_headers)
{
	struct sp_http_header *h;
	uint32_t i = s, v, ve, k;
	unsigned int id;

	if (sp_http_is_ows(buf[s]))
		return -SP_HTTP_ERR_OBS_FOLD;
	while (i < e && sp_http_is(buf[i], SP_HTTP_CC_TCHAR))
		i++;
	if (i == s || i == e || buf[i] != ':')
		return -SP_HTTP_ERR_BAD_HEADER_NAME;
	for (v = i + 1; v < e && sp_http_is_ows(buf[v]); v++)
		;
	for (ve = e; ve > v && sp_http_is_ows(buf[ve - 1]); ve--)
		;
	for (k = v; k < ve; k++)
		if (!sp_http_is(buf[k], SP_HTTP_CC_VALUE))
			return -SP_HTTP_ERR_BAD_HEADER_VALUE;
	if (req->n_headers >= max_headers)
		return -SP_HTTP_ERR_TOO_MANY_HEADERS;
	h = &req->headers[req->n_headers++];
	h->name = sp_http_span(s, i - s);
	h->value = sp_http_span(v, ve - v);
	id = sp_http_hdr_lookup(buf + s, i - s);
	return id < SP_HTTP_HDR_MAX ? sp_http_known_header(buf, id, v, ve, req) : 0;
}

/* The empty line ending the head at end: checks that need every header. */
static int
sp_http_end_of_head(struct sp_http_req *req, uint32_t end)
{
	if (req->version == 11 && !sp_http_req_has(req, SP_HTTP_HDR_HOST))
		return -SP_HTTP_ERR_BAD_HOST;
	/* RFC 9112 6.3: a sender of both may be smuggling one request inside another */
	if (req->has_content_length && req->chunked)
		return -SP_HTTP_ERR_CL_AND_TE;
	if (req->version == 11)
		req->keep_alive = !req->conn_close;
	else
		req->keep_alive = req->conn_keep_alive && !req->conn_close;
	return (int)end;
}

/* One line buf[s, lf] (lf: offset of its LF). Returns 0 to go on, the head length, or -error. */
static int
sp_http_parse_line(const char *buf, uint32_t s, uint32_t lf, struct sp_http_req *req,
		   const struct sp_http_limits *lim, uint32_t max_headers)
{
	uint32_t e;
	int rc;

	if (lf == s || buf[lf - 1] != '\r')
		return -SP_HTTP_ERR_BARE_LF;
	e = lf - 1;
	if (memchr(buf + s, '\0', e - s) != NULL)
		return -SP_HTTP_ERR_NUL_BYTE;
	if (memchr(buf + s, '\r', e - s) != NULL)
		return -SP_HTTP_ERR_BARE_CR;
	if (!req->in_headers) {
		if (e == s) /* empty line before the request line: skipped (RFC 9112 2.2) */
			return 0;
		rc = sp_http_parse_request_line(buf, s, e, req, lim);
		req->in_headers = rc == 0;
		return rc;
	}
	if (e == s)
		return sp_http_end_of_head(req, lf + 1);
	return sp_http_parse_header_line(buf, s, e, req, max_headers);
}

void
sp_http_req_init(struct sp_http_req *req)
{
	/* the header array is written before it is read (n_headers): no need to clear 1 KB */
	memset(req, 0, offsetof(struct sp_http_req, headers));
}

int
sp_http_parse_request(const char *buf, size_t len, struct sp_http_req *req,
		      const struct sp_http_limits *lim)
{
	static const struct sp_http_limits lim_default = SP_HTTP_LIMITS_DEFAULT;
	uint32_t max_head, max_headers, window;
	int rc;

	if (req->result != SP_HTTP_INCOMPLETE)
		return req->result;
	if (lim == NULL)
		lim = &lim_default;
	/* the head length is returned as an int */
	max_head = lim->max_head < INT_MAX ? lim->max_head : INT_MAX;
	max_headers =
		lim->max_headers < SP_HTTP_MAX_HEADERS ? lim->max_headers : SP_HTTP_MAX_HEADERS;
	window = len < max_head ? (uint32_t)len : max_head;

	while (req->scan < window) {
		const char *lf = memchr(buf + req->scan, '\n', window - req->scan);
		uint32_t s = req->line_start, eol;

		if (lf == NULL) {
			req->scan = window;
			break;
		}
		eol = (uint32_t)(lf - buf);
		req->line_start = req->scan = eol + 1;
		rc = sp_http_parse_line(buf, s, eol, req, lim, max_headers);
		if (rc != 0) {
			req->result = rc;
			return rc;
		}
	}
	/* max_head bytes seen without the end of the head: it is longer than allowed */
	if (len >= max_head) {
		req->result = -SP_HTTP_ERR_HEADER_TOO_LONG;
		return req->result;
	}
	return SP_HTTP_INCOMPLETE;
}

const char *
sp_http_error_name(int err)
{
	unsigned int e = err < 0 ? 0u - (unsigned int)err : (unsigned int)err;

	if (e >= SP_HTTP_ERR_MAX)
		return "unknown";
	return sp_http_err_names[e];
}

const char *
sp_http_hdr_name(unsigned int h)
{
	return h < SP_HTTP_HDR_MAX ? sp_http_hdr_names[h].s : "unknown";
}

/* Chunked body */

void
sp_http_chunked_init(struct sp_http_chunked *st)
{
	memset(st, 0, sizeof(*st));
	st->state = SP_HTTP_CH_SIZE_START;
}

/* qdtext and the second character of a quoted-pair (RFC 9110 5.6.4), without '"' and '\'. */
static inline bool
sp_http_is_qdtext(char c)
{
	return c != '"' && c != '\\' && sp_http_is(c, SP_HTTP_CC_VALUE);
}

/* Byte c of a size line (after the size digits): chunk extensions, RFC 9112 7.1.1. */
static int
sp_http_chunk_ext_step(struct sp_http_chunked *st, char c)
{
	bool ws = sp_http_is_ows(c), tchar = sp_http_is(c, SP_HTTP_CC_TCHAR);

	switch (st->state) {
	case SP_HTTP_CH_EXT_WS:
		if (c == ';')
			st->state = SP_HTTP_CH_EXT_NAME_START;
		else if (!ws)
			return -SP_HTTP_ERR_BAD_CHUNK_EXT;
		return 0;
	case SP_HTTP_CH_EXT_NAME_START:
		if (tchar)
			st->state = SP_HTTP_CH_EXT_NAME;
		else if (!ws)
			return -SP_HTTP_ERR_BAD_CHUNK_EXT;
		return 0;
	case SP_HTTP_CH_EXT_NAME:
		if (c == '=')
			st->state = SP_HTTP_CH_EXT_VAL_START;
		else if (c == ';')
			st->state = SP_HTTP_CH_EXT_NAME_START;
		else if (c == '\r')
			st->state = SP_HTTP_CH_SIZE_LF;
		else if (ws)
			st->state = SP_HTTP_CH_EXT_NAME_WS;
		else if (!tchar)
			return -SP_HTTP_ERR_BAD_CHUNK_EXT;
		return 0;
	case SP_HTTP_CH_EXT_NAME_WS:
		if (c == '=')
			st->state = SP_HTTP_CH_EXT_VAL_START;
		else if (c == ';')
			st->state = SP_HTTP_CH_EXT_NAME_START;
		else if (!ws)
			return -SP_HTTP_ERR_BAD_CHUNK_EXT;
		return 0;
	case SP_HTTP_CH_EXT_VAL_START:
		if (c == '"')
			st->state = SP_HTTP_CH_EXT_QUOTED;
		else if (tchar)
			st->state = SP_HTTP_CH_EXT_TOKEN;
		else if (!ws)
			return -SP_HTTP_ERR_BAD_CHUNK_EXT;
		return 0;
	case SP_HTTP_CH_EXT_TOKEN:
	case SP_HTTP_CH_EXT_VAL_END:
		if (c == ';')
			st->state = SP_HTTP_CH_EXT_NAME_START;
		else if (c == '\r')
			st->state = SP_HTTP_CH_SIZE_LF;
		else if (ws)
			st->state = SP_HTTP_CH_EXT_WS;
		else if (!tchar || st->state == SP_HTTP_CH_EXT_VAL_END)
			return -SP_HTTP_ERR_BAD_CHUNK_EXT;
		return 0;
	case SP_HTTP_CH_EXT_QUOTED:
		if (c == '"')
			st->state = SP_HTTP_CH_EXT_VAL_END;
		else if (c == '\\')
			st->state = SP_HTTP_CH_EXT_QUOTED_ESC;
		else if (!sp_http_is_qdtext(c))
			return -SP_HTTP_ERR_BAD_CHUNK_EXT;
		return 0;
	case SP_HTTP_CH_EXT_QUOTED_ESC:
		if (!sp_http_is(c, SP_HTTP_CC_VALUE))
			return -SP_HTTP_ERR_BAD_CHUNK_EXT;
		st->state = SP_HTTP_CH_EXT_QUOTED;
		return 0;
	default:
		return -SP_HTTP_ERR_BAD_CHUNK_EXT;
	}
}

/* One byte of a size line, of the CRLF after data, or of the trailer section. */
static int
sp_http_chunk_step(struct sp_http_chunked *st, char c)
{
	uint8_t s = st->state;

	if (s <= SP_HTTP_CH_SIZE_LF && ++st->line_len > SP_HTTP_CHUNK_LINE_MAX)
		return -SP_HTTP_ERR_CHUNK_LINE_TOO_LONG;
	if (s >= SP_HTTP_CH_TRAILER_START && ++st->line_len > SP_HTTP_TRAILER_MAX)
		return -SP_HTTP_ERR_TRAILER_TOO_LONG;

	switch (s) {
	case SP_HTTP_CH_SIZE_LF:
	case SP_HTTP_CH_DATA_LF:
	case SP_HTTP_CH_TRAILER_LF:
	case SP_HTTP_CH_END_LF:
		if (c != '\n')
			return -SP_HTTP_ERR_BARE_CR;
		if (s == SP_HTTP_CH_SIZE_LF) {
			/* size 0 is the last chunk: trailers follow */
			st->state = st->remaining != 0 ? SP_HTTP_CH_DATA : SP_HTTP_CH_TRAILER_START;
			st->line_len = 0;
		} else if (s == SP_HTTP_CH_DATA_LF) {
			st->state = SP_HTTP_CH_SIZE_START;
		} else {
			st->state =
				s == SP_HTTP_CH_END_LF ? SP_HTTP_CH_DONE : SP_HTTP_CH_TRAILER_START;
		}
		return 0;
	case SP_HTTP_CH_DATA_CR:
		/* the chunk holds more data than its size said, or the CRLF is missing */
		if (c == '\r')
			st->state = SP_HTTP_CH_DATA_LF;
		else
			return c == '\n' ? -SP_HTTP_ERR_BARE_LF : -SP_HTTP_ERR_BAD_CHUNK_END;
		return 0;
	default:
		break;
	}
	if (c == '\0')
		return -SP_HTTP_ERR_NUL_BYTE;
	if (c == '\n')
		return -SP_HTTP_ERR_BARE_LF;

	switch (s) {
	case SP_HTTP_CH_SIZE_START:
	case SP_HTTP_CH_SIZE:
		if (sp_http_is(c, SP_HTTP_CC_HEX)) {
			if (st->remaining > (UINT64_MAX >> 4))
				return -SP_HTTP_ERR_CHUNK_SIZE_OVERFLOW;
			st->remaining = (st->remaining << 4) | sp_http_hex_val(c);
			st->state = SP_HTTP_CH_SIZE;
		} else if (s == SP_HTTP_CH_SIZE_START) {
			return -SP_HTTP_ERR_BAD_CHUNK_SIZE;
		} else if (c == '\r') {
			st->state = SP_HTTP_CH_SIZE_LF;
		} else if (c == ';') {
			st->state = SP_HTTP_CH_EXT_NAME_START;
		} else if (sp_http_is_ows(c)) {
			st->state = SP_HTTP_CH_EXT_WS;
		} else {
			return -SP_HTTP_ERR_BAD_CHUNK_SIZE;
		}
		return 0;
	case SP_HTTP_CH_TRAILER_START:
		if (c == '\r')
			st->state = SP_HTTP_CH_END_LF;
		else if (sp_http_is_ows(c))
			return -SP_HTTP_ERR_OBS_FOLD;
		else if (sp_http_is(c, SP_HTTP_CC_TCHAR))
			st->state = SP_HTTP_CH_TRAILER_NAME;
		else
			return -SP_HTTP_ERR_BAD_TRAILER;
		return 0;
	case SP_HTTP_CH_TRAILER_NAME:
		if (c == ':')
			st->state = SP_HTTP_CH_TRAILER_VALUE;
		else if (!sp_http_is(c, SP_HTTP_CC_TCHAR))
			return -SP_HTTP_ERR_BAD_TRAILER;
		return 0;
	case SP_HTTP_CH_TRAILER_VALUE:
		if (c == '\r')
			st->state = SP_HTTP_CH_TRAILER_LF;
		else if (!sp_http_is(c, SP_HTTP_CC_VALUE))
			return -SP_HTTP_ERR_BAD_TRAILER;
		return 0;
	default:
		return sp_http_chunk_ext_step(st, c);
	}
}

int
sp_http_chunked_feed(struct sp_http_chunked *st, const char *in, size_t len, size_t *consumed,
		     size_t *data_off, size_t *data_len)
{
	size_t i = 0;
	int rc;

	*consumed = 0;
	*data_off = 0;
	*data_len = 0;
	if (st->state == SP_HTTP_CH_DONE)
		return SP_HTTP_CHUNK_DONE;
	if (st->state == SP_HTTP_CH_FAILED)
		return -(int)st->err;
	while (i < len) {
		if (st->state == SP_HTTP_CH_DATA) {
			size_t n = len - i;

			if (n > st->remaining)
				n = (size_t)st->remaining;
			st->remaining -= n;
			st->total += n;
			if (st->remaining == 0)
				st->state = SP_HTTP_CH_DATA_CR;
			*data_off = i;
			*data_len = n;
			*consumed = i + n;
			return SP_HTTP_CHUNK_DATA;
		}
		rc = sp_http_chunk_step(st, in[i]);
		if (rc < 0) {
			st->state = SP_HTTP_CH_FAILED;
			st->err = (uint8_t)-rc;
			*consumed = i;
			return rc;
		}
		i++;
		if (st->state == SP_HTTP_CH_DONE) {
			*consumed = i;
			return SP_HTTP_CHUNK_DONE;
		}
	}
	*consumed = i;
	return SP_HTTP_CHUNK_MORE;
}

/* Range */

/* Decimal digits at s[*i, n) into *v, saturating at UINT64_MAX; false if there are none. */
static bool
sp_http_range_num(const char *s, size_t n, size_t *i, uint64_t *v)
{
	size_t start = *i;

	*v = 0;
	for (; *i < n && s[*i] >= '0' && s[*i] <= '9'; (*i)++) {
		unsigned int d = (unsigned int)(s[*i] - '0');

		*v = *v > (UINT64_MAX - d) / 10 ? UINT64_MAX : *v * 10 + d;
	}
	return *i > start;
}

int
sp_http_parse_range(const char *v, size_t len, uint64_t size, uint64_t *first, uint64_t *last)
{
	uint64_t a, b;
	bool has_a, has_b;
	size_t i = sizeof("bytes=") - 1;

	if (len < i || !SP_HTTP_IEQ(v, i, "bytes="))
		return SP_HTTP_RANGE_IGNORE;
	has_a = sp_http_range_num(v, len, &i, &a);
	if (i == len || v[i] != '-')
		return SP_HTTP_RANGE_IGNORE;
	i++;
	has_b = sp_http_range_num(v, len, &i, &b);
	if (i != len) /* a second range, whitespace, anything else */
		return SP_HTTP_RANGE_IGNORE;

	if (!has_a) { /* suffix: the last b bytes */
		if (!has_b)
			return SP_HTTP_RANGE_IGNORE;
		if (b == 0)
			return SP_HTTP_RANGE_UNSATISFIABLE;
		if (size == 0) /* satisfiable but empty (RFC 9110 14.1.1): S3 answers 200 */
			return SP_HTTP_RANGE_IGNORE;
		*first = b >= size ? 0 : size - b;
		*last = size - 1;
		return SP_HTTP_RANGE_OK;
	}
	if (has_b && b < a) /* invalid (RFC 9110 14.1.1): the header is ignored */
		return SP_HTTP_RANGE_IGNORE;
	if (a >= size)
		return SP_HTTP_RANGE_UNSATISFIABLE;
	*first = a;
	*last = !has_b || b >= size ? size - 1 : b;
	return SP_HTTP_RANGE_OK;
}
