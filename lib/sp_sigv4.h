/* AWS Signature Version 4 verification of S3 requests, as the service checks them (no DPDK). */
#ifndef SP_SIGV4_H
#define SP_SIGV4_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sp_http.h"

/*
 * The reference is the lab's S3 service (tools/lab/service/s3front.py authenticate() and
 * sigv4.py): for the same request this module reaches the same verdict, and for a bad request
 * the same S3 error code, checked in the same order. Use:
 *
 *   sp_sigv4_parse_auth()    the Authorization header or the presigned query parameters, the
 *                            credential scope, the date, skew/expiry, the payload hash's presence;
 *   (the caller)             the access key's secret, or its cached signing key: an unknown key is
 *                            SP_SIGV4_ERR_UNKNOWN_ACCESS_KEY (InvalidAccessKeyId);
 *   sp_sigv4_signing_key()   the derived key (per secret, day and region: cacheable);
 *   sp_sigv4_verify()        payload hash form, canonical request, string to sign, signature
 *                            (constant-time comparison);
 *   sp_sigv4_payload_check() once the body has been hashed (signed payloads only).
 *
 * The canonical request is built as sigv4.py builds it (and botocore signs it):
 *  - URI: the path percent-decoded once, then encoded once (unreserved characters and '/' kept,
 *    no dot-segment or slash normalisation, no double encoding); decoded bytes that are not UTF-8
 *    become U+FFFD as Python decodes them; a target starting with "//" counts from its last
 *    leading '/' (Python's http.server does that before the service sees the path);
 *  - query: split on '&' then at the first '=', each name and value decoded then encoded
 *    (unreserved kept), sorted by encoded name then value, X-Amz-Signature left out (presigned);
 *  - headers: in SignedHeaders order, every line of that name (any case) joined by ',', each value
 *    trimmed with runs of whitespace collapsed to one SP; header bytes >= 0x80 are ISO-8859-1
 *    characters (as http.server decodes them), so they are hashed UTF-8 encoded.
 * X-Amz-Date is read as the lab's time.strptime() reads it (so "20240601T1200Z" passes too).
 *
 * Stricter than the lab, each with its own error:
 *  - a bad %XX, or a control or non-ASCII byte in the target, or a control byte in a signed header
 *    value (bad_encoding): sp_http_parse_request() refuses these already;
 *  - refused only once the signature was found right, so that a tampered request gets the lab's
 *    error (SignatureDoesNotMatch, mostly) and only an authentic but odd one is refused where the
 *    lab would take it: SignedHeaders not strictly ascending lower-case names
 *    (bad_signed_headers), without host (host_not_signed), a presigned X-Amz-* parameter given
 *    twice (dup_query_param: the lab takes the last, and so does this until then);
 *  - a signature that is not 64 lower-case hex digits is bad_signature (SignatureDoesNotMatch, as
 *    the lab answers it; a non-ASCII one makes the lab fail with InternalError).
 *
 * Every input is a span of buf checked against its length; nothing is allocated (beyond what
 * OpenSSL's digest contexts need); the canonical query is sorted in a bounded buffer on the stack
 * (SP_SIGV4_QUERY_ENC_MAX, SP_SIGV4_QUERY_PAIRS_MAX).
 */

/*
 * Errors: returned negated (-SP_SIGV4_ERR_x); a name for counters and the S3 error code.
 * (*): returned by sp_sigv4_verify() only for a request whose signature is right.
 */
#define SP_SIGV4_ERRORS(X)                                                                         \
	X(NONE, "none", "")                                                                        \
	X(MISSING, "missing", "AccessDenied") /* no Authorization, no presigned parameters */      \
	X(SIGV2, "sigv2", "InvalidRequest")   /* "AWS AK:sig", or AWSAccessKeyId + Signature */    \
	X(QUERY_PARAMS, "query_params",                                                            \
	  "AuthorizationQueryParametersError") /* presigned: one missing, or algorithm not v4 */   \
	X(DUP_QUERY_PARAM, "dup_query_param",                                                      \
	  "AuthorizationQueryParametersError") /* presigned: an X-Amz-* parameter twice (*) */     \
	X(BAD_ALGORITHM, "bad_algorithm", "AuthorizationHeaderMalformed")                          \
	X(AUTH_FIELD_MISSING, "auth_field_missing",                                                \
	  "AuthorizationHeaderMalformed") /* no Credential= */                                     \
	X(AUTH_NO_SIGNED_HEADERS, "auth_no_signed_headers",                                        \
	  "AuthorizationHeaderMalformed") /* Credential=, but no SignedHeaders= */                 \
	X(AUTH_NO_SIGNATURE, "auth_no_signature",                                                  \
	  "AuthorizationHeaderMalformed") /* Credential= and SignedHeaders=, no Signature= */      \
	X(FIELD_TOO_LONG, "field_too_long",                                                        \
	  "AuthorizationHeaderMalformed")	/* beyond SP_SIGV4_*_MAX (no client sends that) */ \
	X(BAD_DATE, "bad_date", "AccessDenied") /* X-Amz-Date missing or not YYYYMMDDTHHMMSSZ */   \
	X(BAD_CREDENTIAL, "bad_credential",                                                        \
	  "AuthorizationHeaderMalformed") /* not AK/date/region/service/aws4_request */            \
	X(CREDENTIAL_DATE, "credential_date", "AuthorizationHeaderMalformed") /* != X-Amz-Date */  \
	X(WRONG_REGION, "wrong_region", "AuthorizationHeaderMalformed")                            \
	X(WRONG_SERVICE, "wrong_service", "AuthorizationHeaderMalformed") /* not "s3" */           \
	X(BAD_EXPIRES, "bad_expires",                                                              \
	  "AuthorizationQueryParametersError")		  /* X-Amz-Expires not 1..604800 */        \
	X(EXPIRED, "expired", "AccessDenied")		  /* presigned: now > date + expires */    \
	X(NOT_YET_VALID, "not_yet_valid", "AccessDenied") /* presigned: date > now + 15 min */     \
	X(SKEWED, "skewed", "RequestTimeTooSkewed")	  /* header: |now - date| > 15 min */      \
	X(NO_CONTENT_SHA256, "no_content_sha256",                                                  \
	  "InvalidRequest") /* header auth without x-amz-content-sha256 */                         \
	X(BAD_ACCESS_KEY, "bad_access_key",                                                        \
	  "InvalidAccessKeyId") /* empty, too long or not printable ASCII: no key has it */        \
	X(UNKNOWN_ACCESS_KEY, "unknown_access_key", "InvalidAccessKeyId") /* the caller's */       \
	X(STREAMING_PAYLOAD, "streaming_payload",                                                  \
	  "NotImplemented") /* STREAMING-* (aws-chunked) */                                        \
	X(BAD_CONTENT_SHA256, "bad_content_sha256",                                                \
	  "InvalidArgument") /* not UNSIGNED-PAYLOAD nor 64 lower-case hex digits */               \
	X(BAD_ENCODING, "bad_encoding",                                                            \
	  "InvalidRequest") /* bad %XX, control or non-ASCII byte in the target or a value */      \
	X(TOO_BIG, "too_big", "InvalidRequest")	 /* query beyond SP_SIGV4_QUERY_* bounds */        \
	X(NO_SPACE, "no_space", "InternalError") /* the caller's output buffer is too small */     \
	X(BAD_SIGNED_HEADERS, "bad_signed_headers",                                                \
	  "AuthorizationHeaderMalformed") /* not strictly ascending lower-case names (*) */        \
	X(SIGNED_HEADER_MISSING, "signed_header_missing", "AccessDenied")                          \
	X(HOST_NOT_SIGNED, "host_not_signed", "AccessDenied")	   /* (*) */                       \
	X(BAD_SIGNATURE, "bad_signature", "SignatureDoesNotMatch") /* not 64 lower-case hex */     \
	X(SIGNATURE_MISMATCH, "signature_mismatch", "SignatureDoesNotMatch")                       \
	X(CONTENT_SHA256_MISMATCH, "content_sha256_mismatch", "XAmzContentSHA256Mismatch")         \
	X(BAD_REQUEST, "bad_request", "InternalError") /* a span outside buf: the caller's bug */  \
	X(CRYPTO, "crypto", "InternalError")	       /* OpenSSL failed */

enum sp_sigv4_error {
#define SP_SIGV4_ERR_ENUM(e, s, c) SP_SIGV4_ERR_##e,
	SP_SIGV4_ERRORS(SP_SIGV4_ERR_ENUM)
#undef SP_SIGV4_ERR_ENUM
		SP_SIGV4_ERR_MAX
};

#define SP_SIGV4_MAX_SKEW 900		     /* seconds, header auth and presigned "not yet" */
#define SP_SIGV4_MAX_EXPIRES 604800	     /* seconds, X-Amz-Expires */
#define SP_SIGV4_ACCESS_KEY_MAX 128	     /* bytes of an access key id */
#define SP_SIGV4_REGION_MAX 64		     /* bytes of the scope's region */
#define SP_SIGV4_SIGNED_HEADERS_MAX 2048     /* bytes of SignedHeaders */
#define SP_SIGV4_PAYLOAD_MAX 72		     /* bytes of the payload hash kept (longer is bad) */
#define SP_SIGV4_PARAM_MAX 1024		     /* bytes of one decoded presigned parameter */
#define SP_SIGV4_SECRET_MAX 256		     /* bytes of a secret access key */
#define SP_SIGV4_QUERY_PAIRS_MAX 256	     /* query parameters of a signed request */
#define SP_SIGV4_QUERY_ENC_MAX 16384	     /* bytes of the encoded query (3x a 4 KiB target) */
#define SP_SIGV4_UNSIGNED "UNSIGNED-PAYLOAD" /* payload hash of a request with unsigned body */

/* What sp_sigv4_parse_auth() found: NUL-terminated copies (decoded for presigned). */
struct sp_sigv4_auth {
	bool presigned;		/* query parameters, not the Authorization header */
	bool payload_unsigned;	/* payload is UNSIGNED-PAYLOAD */
	uint8_t policy;		/* enum sp_sigv4_error to answer should it be authentic, or 0 */
	uint8_t access_key_len; /* set as soon as the credential was read (for logs) */
	uint8_t region_len;	/* set with scope_date and service */
	uint16_t signed_len;	/* bytes of signed_headers */
	uint32_t payload_len;	/* as given (only the first SP_SIGV4_PAYLOAD_MAX are kept) */
	uint32_t signature_len; /* as given (only the first 64 are kept) */
	uint32_t expires;	/* presigned: X-Amz-Expires, seconds */
	int64_t date;		/* X-Amz-Date, unix seconds */
	char amz_date[17];	/* X-Amz-Date as given (YYYYMMDDTHHMMSSZ, or shorter) */
	char scope_date[9];	/* credential scope: YYYYMMDD (amz_date's first 8) */
	char service[3];	/* credential scope: "s3" */
	char region[SP_SIGV4_REGION_MAX + 1];
	char access_key[SP_SIGV4_ACCESS_KEY_MAX + 1];
	char signature[65];
	char payload[SP_SIGV4_PAYLOAD_MAX + 1]; /* x-amz-content-sha256, or UNSIGNED-PAYLOAD */
	char signed_headers[SP_SIGV4_SIGNED_HEADERS_MAX + 1]; /* "host;range;x-amz-date" */
};

/*
 * Parse and check the request's SigV4 credentials, in the lab's order: presigned parameters (if
 * X-Amz-Credential or X-Amz-Signature is in the query) or the Authorization header; X-Amz-Date; the
 * credential scope (date as X-Amz-Date's, region as region unless region is NULL, service s3,
 * aws4_request); for presigned X-Amz-Expires and the validity window against now, for the header
 * the skew against now (unix seconds) and x-amz-content-sha256's presence; the access key's form.
 * req was parsed by sp_http_parse_request() from buf[0, len). Returns 0 or -SP_SIGV4_ERR_x
 * (access_key is filled once the credential could be split, also on a later error).
 */
int sp_sigv4_parse_auth(const char *buf, size_t len, const struct sp_http_req *req,
			const char *region, int64_t now, struct sp_sigv4_auth *auth);

/*
 * The signing key HMAC(HMAC(HMAC(HMAC("AWS4" secret, date), region), service), "aws4_request")
 * into key (date, region, service NUL-terminated). Returns 0, or -EINVAL (secret longer than
 * SP_SIGV4_SECRET_MAX, NULL argument) / -EIO (OpenSSL failed).
 */
int sp_sigv4_signing_key(const char *secret, size_t secret_len, const char *date,
			 const char *region, const char *service, uint8_t key[32]);

/*
 * The canonical request of req as auth describes it into out[0, outlen) (NUL-terminated), e.g.
 * for a SignatureDoesNotMatch document. Returns its length, or -SP_SIGV4_ERR_x (NO_SPACE when it
 * does not fit out; the request's own errors as sp_sigv4_verify() reports them, but none of (*)).
 */
int sp_sigv4_canonical_request(const char *buf, size_t len, const struct sp_http_req *req,
			       const struct sp_sigv4_auth *auth, char *out, size_t outlen);

/*
 * "AWS4-HMAC-SHA256\n" amz_date "\n" scope "\n" hex(SHA-256(creq)) into out (NUL-terminated).
 * Returns its length, or -SP_SIGV4_ERR_NO_SPACE / -SP_SIGV4_ERR_CRYPTO.
 */
int sp_sigv4_string_to_sign(const struct sp_sigv4_auth *auth, const char *creq, size_t creq_len,
			    char *out, size_t outlen);

/*
 * Verify req's signature with the signing key of auth's scope: the payload hash's form, the
 * canonical request (hashed as it is built, no buffer from the caller), the string to sign, the
 * HMAC, compared in constant time. Returns 0 (authentic) or -SP_SIGV4_ERR_x; one of (*) means
 * the signature is right but the request is refused all the same.
 */
int sp_sigv4_verify(const char *buf, size_t len, const struct sp_http_req *req,
		    const struct sp_sigv4_auth *auth, const uint8_t key[32]);

/*
 * After the body was received: its SHA-256 against the signed payload hash. 0 when they match or
 * the payload is unsigned, -SP_SIGV4_ERR_CONTENT_SHA256_MISMATCH otherwise.
 */
int sp_sigv4_payload_check(const struct sp_sigv4_auth *auth, const uint8_t sha256[32]);

/* Name of an error ("skewed", ...): err is either -SP_SIGV4_ERR_x or SP_SIGV4_ERR_x. */
const char *sp_sigv4_error_name(int err);

/* The S3 error code the service answers for err ("SignatureDoesNotMatch", ...). */
const char *sp_sigv4_s3_code(int err);

/* The lab service's message for err, or NULL where it uses the code's default message. */
const char *sp_sigv4_s3_message(int err);

#endif /* SP_SIGV4_H */
