/* Strict, bounded, zero-copy HTTP/1.1 request head parser and chunked body decoder (no DPDK). */
#ifndef SP_HTTP_H
#define SP_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Why not a library: Debian 12 packages only nodejs http-parser 2.9 (archived upstream,
 * callback-based); llhttp and picohttpparser are not packaged. This parser never allocates,
 * never copies (every result is an offset/length span into the caller's buffer), bounds every
 * loop by the limits below, never reads past the end of the head, and rejects what RFC 9112
 * allows a server to reject rather than guessing (request smuggling lives in the guesses).
 *
 * Strictness (each refusal has its own error name, counted per worker):
 *  - lines end in CRLF only: a LF without CR is bare_lf, a CR not followed by LF is bare_cr;
 *  - NUL anywhere in a line is nul_byte; obs-fold (a line starting with SP/HTAB) is refused;
 *  - exactly one SP between method, target and version; the version is "HTTP/1.0" or
 *    "HTTP/1.1" (case-sensitive);
 *  - the target is origin-form ("/path?query", RFC 3986 characters, %XX with two hex digits)
 *    or "*" for OPTIONS; absolute-form and authority-form are bad_target (S3 clients never
 *    send them to an origin: the worker hands such a request to the service unchanged);
 *  - a header name is a token immediately followed by ':' (no whitespace before the colon);
 *  - Content-Length is 1*DIGIT fitting in uint64 (no lists, even "42, 42"); a second one is
 *    dup_content_length; Transfer-Encoding must be exactly "chunked" (case-insensitive), once,
 *    and only in HTTP/1.1; both together are cl_and_te;
 *  - Host: exactly one, non-empty, in HTTP/1.1 (at most one in HTTP/1.0);
 *  - every other header of the known table below (SP_HTTP_HEADERS) may appear once
 *    (dup_header): a second If-Match or Range would make the cache and the service disagree;
 *  - empty lines before the request line are skipped (RFC 9112 section 2.2).
 */

/* Errors: returned negated (-SP_HTTP_ERR_x), one table of names, counted per worker. */
#define SP_HTTP_ERRORS(X)                                                                          \
	X(NONE, "none")                                                                            \
	X(BAD_METHOD, "bad_method")		/* not a token, or not followed by one SP */       \
	X(BAD_TARGET, "bad_target")		/* empty, not origin-form, bad character/%XX */    \
	X(TARGET_TOO_LONG, "target_too_long")	/* longer than lim->max_target (-> 414) */         \
	X(BAD_VERSION, "bad_version")		/* missing, or not HTTP/1.0 or HTTP/1.1 */         \
	X(BAD_HEADER_NAME, "bad_header_name")	/* empty, not a token, space before ':' */         \
	X(BAD_HEADER_VALUE, "bad_header_value") /* control character; bad Connection list */       \
	X(HEADER_TOO_LONG, "header_too_long")	/* head longer than lim->max_head (-> 431) */      \
	X(TOO_MANY_HEADERS, "too_many_headers") /* more than lim->max_headers lines (-> 431) */    \
	X(DUP_HEADER, "dup_header")		/* a known header (SP_HTTP_HEADERS) twice */       \
	X(DUP_CONTENT_LENGTH, "dup_content_length")                                                \
	X(BAD_CONTENT_LENGTH, "bad_content_length") /* not 1*DIGIT, or beyond UINT64_MAX */        \
	X(CL_AND_TE, "cl_and_te")		    /* Content-Length and Transfer-Encoding */     \
	X(BAD_TRANSFER_ENCODING, "bad_transfer_encoding") /* not "chunked", twice, or HTTP/1.0 */  \
	X(OBS_FOLD, "obs_fold") /* header line starting with SP or HTAB */                         \
	X(BARE_LF, "bare_lf")	/* LF not preceded by CR */                                        \
	X(BARE_CR, "bare_cr")	/* CR not followed by LF */                                        \
	X(NUL_BYTE, "nul_byte")                                                                    \
	X(BAD_HOST, "bad_host")		    /* missing (1.1), duplicate, empty, bad chars */       \
	X(BAD_CHUNK_SIZE, "bad_chunk_size") /* no hex digit, or a bad byte after it */             \
	X(CHUNK_SIZE_OVERFLOW, "chunk_size_overflow") /* chunk size beyond UINT64_MAX */           \
	X(BAD_CHUNK_EXT, "bad_chunk_ext")	      /* chunk extension not per RFC 9112 7.1.1 */ \
	X(CHUNK_LINE_TOO_LONG, "chunk_line_too_long") /* size line > SP_HTTP_CHUNK_LINE_MAX */     \
	X(BAD_CHUNK_END, "bad_chunk_end")	      /* chunk data not followed by CRLF */        \
	X(BAD_TRAILER, "bad_trailer")		      /* malformed trailer field line */           \
	X(TRAILER_TOO_LONG, "trailer_too_long")	      /* trailers > SP_HTTP_TRAILER_MAX bytes */

enum sp_http_error {
#define SP_HTTP_ERR_ENUM(e, s) SP_HTTP_ERR_##e,
	SP_HTTP_ERRORS(SP_HTTP_ERR_ENUM)
#undef SP_HTTP_ERR_ENUM
		SP_HTTP_ERR_MAX
};

/* sp_http_parse_request(): the head is not complete yet (a value > 0 is its length). */
#define SP_HTTP_INCOMPLETE 0

#define SP_HTTP_METHODS(X)                                                                         \
	X(OTHER, "") /* any other token: see req->method_tok */                                    \
	X(GET, "GET")                                                                              \
	X(HEAD, "HEAD")                                                                            \
	X(PUT, "PUT")                                                                              \
	X(POST, "POST")                                                                            \
	X(DELETE, "DELETE")                                                                        \
	X(OPTIONS, "OPTIONS")

enum sp_http_method {
#define SP_HTTP_METHOD_ENUM(e, s) SP_HTTP_METHOD_##e,
	SP_HTTP_METHODS(SP_HTTP_METHOD_ENUM)
#undef SP_HTTP_METHOD_ENUM
		SP_HTTP_METHOD_MAX
};

/* The headers the worker acts on (DESIGN 3.2), by lower-case name; each may appear once. */
#define SP_HTTP_HEADERS(X)                                                                         \
	X(HOST, "host")                                                                            \
	X(AUTHORIZATION, "authorization")                                                          \
	X(X_AMZ_DATE, "x-amz-date")                                                                \
	X(X_AMZ_CONTENT_SHA256, "x-amz-content-sha256")                                            \
	X(RANGE, "range")                                                                          \
	X(IF_NONE_MATCH, "if-none-match")                                                          \
	X(IF_MATCH, "if-match")                                                                    \
	X(IF_MODIFIED_SINCE, "if-modified-since")                                                  \
	X(IF_UNMODIFIED_SINCE, "if-unmodified-since")                                              \
	X(CONTENT_LENGTH, "content-length")                                                        \
	X(TRANSFER_ENCODING, "transfer-encoding")                                                  \
	X(CONNECTION, "connection")                                                                \
	X(EXPECT, "expect")                                                                        \
	X(CONTENT_TYPE, "content-type")                                                            \
	X(CONTENT_MD5, "content-md5")

enum sp_http_hdr {
#define SP_HTTP_HDR_ENUM(e, s) SP_HTTP_HDR_##e,
	SP_HTTP_HEADERS(SP_HTTP_HDR_ENUM)
#undef SP_HTTP_HDR_ENUM
		SP_HTTP_HDR_MAX
};

/* Size of the header array in struct sp_http_req (lim->max_headers is clamped to it). */
#define SP_HTTP_MAX_HEADERS 64

struct sp_http_limits {
	uint32_t max_head;    /* request line + header lines + final CRLF, in bytes */
	uint32_t max_target;  /* request target, in bytes */
	uint32_t max_headers; /* header lines (at most SP_HTTP_MAX_HEADERS) */
};

#define SP_HTTP_LIMITS_DEFAULT                                                                     \
	{                                                                                          \
		.max_head = 8192, .max_target = 4096, .max_headers = 64                            \
	}

/* Bytes [off, off + len) of the buffer given to the parser (offsets survive moving it). */
struct sp_http_span {
	uint32_t off;
	uint32_t len;
};

struct sp_http_header {
	struct sp_http_span name;  /* as sent (compare case-insensitively) */
	struct sp_http_span value; /* surrounding SP/HTAB trimmed; may be empty */
};

struct sp_http_req {
	/* Results: valid once sp_http_parse_request() returned a head length. */
	struct sp_http_span method_tok; /* the method as sent */
	struct sp_http_span target;	/* request target as sent (not decoded) */
	struct sp_http_span path;	/* target up to the first '?' (or "*") */
	struct sp_http_span query;	/* after the first '?' (len 0 without one) */
	uint8_t method;			/* enum sp_http_method */
	uint8_t version;		/* 10 (HTTP/1.0) or 11 (HTTP/1.1) */
	bool has_query;			/* the target has a '?' */
	bool has_content_length;
	bool chunked;	      /* Transfer-Encoding: chunked */
	bool conn_close;      /* "close" in Connection */
	bool conn_keep_alive; /* "keep-alive" in Connection */
	bool keep_alive;      /* persistent: 1.1 without close, or 1.0 with keep-alive */
	bool expect_continue; /* Expect: 100-continue (HTTP/1.1 only) */
	bool expect_other;    /* any other Expect value (HTTP/1.1 only): answer 417 */
	uint16_t n_headers;
	uint32_t hdr_present; /* bit (1u << enum sp_http_hdr) per known header seen */
	uint64_t content_length;
	struct sp_http_span hdr[SP_HTTP_HDR_MAX]; /* value of each known header ({0,0} if absent) */

	/* Parse state, private: lets a call resume where the previous one stopped. */
	uint32_t line_start; /* offset of the first line not parsed yet */
	uint32_t scan;	     /* the search for the next LF resumes here */
	int32_t result;	     /* head length or -error once known, then returned again */
	bool in_headers;     /* the request line has been parsed */

	/* Every header line in order (SigV4 signs any of them); must stay last (see init). */
	struct sp_http_header headers[SP_HTTP_MAX_HEADERS];
};

/* Prepare req for a new request (clears everything but the header array). */
void sp_http_req_init(struct sp_http_req *req);

/*
 * Parse the request head at buf[0, len) with limits lim (NULL: SP_HTTP_LIMITS_DEFAULT).
 * Returns the head's length (> 0: the body, or the next pipelined request, starts at
 * buf + that), SP_HTTP_INCOMPLETE (0: call again once more bytes have arrived), or
 * -SP_HTTP_ERR_x.
 *
 * Incremental use: call sp_http_req_init() once per request, then call this with the same req
 * each time more bytes arrive, buf holding all the bytes so far (it may move between calls,
 * the bytes already given must not change). Each call resumes at the first incomplete line
 * and at the point where the search for its LF stopped, so a head arriving one byte at a time
 * costs O(head) in total, not O(head^2). Complete lines are checked as soon as they arrive, so
 * garbage is refused without waiting for max_head bytes; the result is the same for every way
 * the bytes are split. Once the result is known it is returned again by further calls.
 * Never reads beyond min(len, lim->max_head) nor beyond the end of the head.
 */
int sp_http_parse_request(const char *buf, size_t len, struct sp_http_req *req,
			  const struct sp_http_limits *lim);

/* Whether known header h was present. */
static inline bool
sp_http_req_has(const struct sp_http_req *req, enum sp_http_hdr h)
{
	return (req->hdr_present & (1u << h)) != 0;
}

/* Name of an error ("bad_method", ...): err is either -SP_HTTP_ERR_x or SP_HTTP_ERR_x. */
const char *sp_http_error_name(int err);

/* Lower-case name of known header h ("host", ...); "unknown" when out of range. */
const char *sp_http_hdr_name(unsigned int h);

/*
 * Chunked body decoder (RFC 9112 section 7.1): a byte-at-a-time state machine over the bytes
 * after the head, reporting the data in place, one span at a time. Chunk extensions are
 * checked against the grammar and skipped; trailer field lines are checked and skipped.
 */
#define SP_HTTP_CHUNK_LINE_MAX 4096 /* one chunk-size line incl. extensions and CRLF */
#define SP_HTTP_TRAILER_MAX 8192    /* the trailer section incl. its final CRLF */

enum sp_http_chunk_rc {
	SP_HTTP_CHUNK_MORE = 0, /* all of in consumed, the body goes on */
	SP_HTTP_CHUNK_DATA = 1, /* in[*data_off, + *data_len) is body data; call again after it */
	SP_HTTP_CHUNK_DONE = 2, /* last chunk, trailers and final CRLF consumed */
};

struct sp_http_chunked {
	uint64_t remaining; /* data bytes left in the current chunk */
	uint64_t total;	    /* data bytes decoded so far */
	uint32_t line_len;  /* bytes of the current size line, or of the trailer section */
	uint8_t state;	    /* private */
	uint8_t err;	    /* enum sp_http_error, once failed */
};

/* Prepare st for a new body. */
void sp_http_chunked_init(struct sp_http_chunked *st);

/*
 * Decode from in[0, len). Sets *consumed (bytes of in used), and *data_off / *data_len to the
 * data span when SP_HTTP_CHUNK_DATA is returned (0 / 0 otherwise). Returns an enum
 * sp_http_chunk_rc or -SP_HTTP_ERR_x. After DONE, the next request starts at in + *consumed;
 * DONE and errors are sticky (returned again, consuming nothing). Input may be split anywhere.
 */
int sp_http_chunked_feed(struct sp_http_chunked *st, const char *in, size_t len, size_t *consumed,
			 size_t *data_off, size_t *data_len);

/* Outcome of sp_http_parse_range(). */
enum sp_http_range_rc {
	SP_HTTP_RANGE_OK = 0,		 /* 206 with bytes [*first, *last] (inclusive) */
	SP_HTTP_RANGE_UNSATISFIABLE = 1, /* 416, Content-Range: bytes (star)/size */
	SP_HTTP_RANGE_IGNORE = 2, /* malformed or several ranges: 200 with the whole object */
};

/*
 * Resolve a Range header value (v, len: as trimmed by the parser) against an object of size
 * bytes, as S3 does: one "bytes=a-b", "bytes=a-" or "bytes=-n" range (unit case-insensitive,
 * no whitespace). a >= size, or n == 0, is unsatisfiable (so is any "a-" range of an empty
 * object); b beyond the end is clamped; b < a, anything malformed and multiple ranges are
 * ignored (S3 serves the whole object), and so is "-n" on an empty object (nothing to send but
 * the empty whole). Numbers too large for uint64 saturate.
 */
int sp_http_parse_range(const char *v, size_t len, uint64_t size, uint64_t *first, uint64_t *last);

#endif /* SP_HTTP_H */
