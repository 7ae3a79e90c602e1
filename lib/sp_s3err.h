/* S3 error responses as the service sends them (status, XML document), built by shortpath when
 * it answers a request itself (no DPDK). */
#ifndef SP_S3ERR_H
#define SP_S3ERR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sp_sigv4.h"

/* An error code's HTTP status and S3's default message (the lab service's table); for an unknown
 * code 500 and "We encountered an internal error. Please try again.". Returns the status. */
int sp_s3err_status(const char *code, const char **reason, const char **message);

/*
 * Append <name>value</name> with value (len bytes) XML-escaped as the lab's service escapes
 * (xml.sax.saxutils.escape: & < >) to out at *off (cap bytes). -ENOSPC if it does not fit
 * (*off unchanged).
 */
int sp_s3err_element(char *out, size_t cap, size_t *off, const char *name, const char *value,
		     size_t len);

/*
 * A whole HTTP/1.1 error response in out (cap bytes): status line, Date (date: unix seconds),
 * Content-Type, Content-Length, x-amz-request-id, Connection: close, then the document
 * <?xml ...?>\n<Error><Code/><Message/><Resource/><RequestId/>extra</Error> (no body for a HEAD
 * request, Content-Length as for GET, as S3 answers a HEAD). message: NULL for the default;
 * extra: already-escaped elements (sp_s3err_element) or NULL. Returns the length, or -ENOSPC.
 */
int sp_s3err_response(char *out, size_t cap, const char *code, const char *message,
		      const char *resource, size_t resource_len, const char *request_id,
		      const char *extra, bool head, int64_t date);

/* One element a document adds after <RequestId> (value NULL: left out). */
struct sp_s3err_extra {
	const char *name;
	const char *value;
	size_t len;
};

/*
 * sp_s3err_response() with the elements x[0, nx) escaped, as many of them (in order) as fit
 * cap: the last ones are dropped first. -ENOSPC if not even the document without them fits.
 */
int sp_s3err_response_fit(char *out, size_t cap, const char *code, const char *message,
			  const char *resource, size_t resource_len, const char *request_id,
			  const struct sp_s3err_extra *x, unsigned int nx, bool head, int64_t date);

/* What only the verifier knows of a refused request, for the document (each may be NULL). */
struct sp_s3err_sigv4_info {
	const char *string_to_sign; /* SignatureDoesNotMatch */
	const char *creq;	    /* ... the canonical request, creq_len bytes */
	size_t creq_len;
	const char *body_sha256; /* XAmzContentSHA256Mismatch: the body's SHA-256, 64 hex */
};

/*
 * The response to a request SigV4 refused (err: -SP_SIGV4_ERR_x or SP_SIGV4_ERR_x), as the lab's
 * service answers it: sp_sigv4_s3_code() and sp_sigv4_s3_message(), and the elements it adds in
 * its order: AWSAccessKeyId (InvalidAccessKeyId; SignatureDoesNotMatch, then StringToSign,
 * SignatureProvided, CanonicalRequest), Expires and ServerTime (an expired presigned URL),
 * RequestTime, ServerTime and MaxAllowedSkewMilliseconds (RequestTimeTooSkewed),
 * ClientComputedContentSHA256 and S3ComputedContentSHA256 (XAmzContentSHA256Mismatch); those
 * that do not fit cap are dropped from the end. auth: what sp_sigv4_parse_auth() filled (NULL:
 * no elements); info: NULL or the verifier's strings. now: unix seconds. Returns the length,
 * or -ENOSPC.
 */
int sp_s3err_sigv4_response(char *out, size_t cap, int err, const struct sp_sigv4_auth *auth,
			    const struct sp_s3err_sigv4_info *info, const char *resource,
			    size_t resource_len, const char *request_id, bool head, int64_t now);

/*
 * The request's path as the lab's service names it in <Resource>: http.server folds a leading
 * "//..." to "/", then urllib.parse.unquote() decodes %XX (a bad escape stays as it is) and reads
 * the bytes as UTF-8, each maximal ill-formed subsequence becoming U+FFFD. Written to out (cap
 * bytes, not NUL-terminated; up to 3 bytes per path byte), cut at a character boundary when it
 * does not fit. Returns the length.
 */
size_t sp_s3err_resource(char *out, size_t cap, const char *path, size_t len);

/* A request id as the lab's service makes them: 16 upper-case hex digits of v, NUL-ended. */
void sp_s3err_request_id(char out[17], uint64_t v);

#endif /* SP_S3ERR_H */
