/* cmocka unit tests for sp_sigv4: AWS and botocore vectors, tampering, time windows, hostile input.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sp_http.h"
#include "sp_sigv4.h"

#define TEST_RNG_SEED 0x452821e638d01377ULL
#include "test_rng.h"

#define LIT(s) s, sizeof(s) - 1

#define AWS_AK "AKIAIOSFODNN7EXAMPLE"
#define AWS_SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define T_20130524 1369353600 /* 20130524T000000Z */
#define T_20240601 1717243200 /* 20240601T120000Z */
#define SHA_EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SIG0 "0000000000000000000000000000000000000000000000000000000000000000"
#define CRED "AKIAIOSFODNN7EXAMPLE/20240601/us-east-1/s3/aws4_request"

/*
 * AWS's published examples (Amazon S3 API Reference, "Examples: Signature Calculations in AWS
 * Signature Version 4": GET Object with Range, PUT Object, GET Bucket Lifecycle, Get Bucket (List
 * Objects), and "Example: presigned URL"), credentials AKIAIOSFODNN7EXAMPLE /
 * wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, us-east-1, 20130524T000000Z. Each signature was
 * recomputed with the lab service's own code before being pasted here:
 *
 *   sig = sigv4.signature(SK, "20130524", "us-east-1", "s3", sigv4.string_to_sign(
 *       "20130524T000000Z", "20130524/us-east-1/s3/aws4_request", sigv4.canonical_request(
 *           method, path, sigv4.query_pairs(query), headers, signed, payload_hash,
 *           skip_query=("X-Amz-Signature",) if presigned else ())))
 *
 * (tools/lab/service/sigv4.py): all five equal the published ones.
 */
static const char aws_get_range[] =
	"GET /test.txt HTTP/1.1\r\n"
	"Host: examplebucket.s3.amazonaws.com\r\n"
	"Authorization: AWS4-HMAC-SHA256 Credential=" AWS_AK "/20130524/us-east-1/s3/aws4_request,"
	"SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
	"Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41\r\n"
	"Range: bytes=0-9\r\n"
	"x-amz-content-sha256: " SHA_EMPTY "\r\n"
	"x-amz-date: 20130524T000000Z\r\n"
	"\r\n";

static const char aws_get_range_creq[] = "GET\n"
					 "/test.txt\n"
					 "\n"
					 "host:examplebucket.s3.amazonaws.com\n"
					 "range:bytes=0-9\n"
					 "x-amz-content-sha256:" SHA_EMPTY "\n"
					 "x-amz-date:20130524T000000Z\n"
					 "\n"
					 "host;range;x-amz-content-sha256;x-amz-date\n" SHA_EMPTY;

static const char aws_get_range_sts[] =
	"AWS4-HMAC-SHA256\n"
	"20130524T000000Z\n"
	"20130524/us-east-1/s3/aws4_request\n"
	"7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972";

/* Body "Welcome to Amazon S3." (21 bytes); the path is sent as the example writes it. */
static const char aws_put_object[] =
	"PUT /test$file.text HTTP/1.1\r\n"
	"Host: examplebucket.s3.amazonaws.com\r\n"
	"Date: Fri, 24 May 2013 00:00:00 GMT\r\n"
	"Authorization: AWS4-HMAC-SHA256 Credential=" AWS_AK "/20130524/us-east-1/s3/aws4_request,"
	"SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"
	"Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd\r\n"
	"x-amz-date: 20130524T000000Z\r\n"
	"x-amz-storage-class: REDUCED_REDUNDANCY\r\n"
	"x-amz-content-sha256: 44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\r\n"
	"Content-Length: 21\r\n"
	"\r\n";

static const char aws_get_lifecycle[] =
	"GET /?lifecycle HTTP/1.1\r\n"
	"Host: examplebucket.s3.amazonaws.com\r\n"
	"Authorization: AWS4-HMAC-SHA256 Credential=" AWS_AK "/20130524/us-east-1/s3/aws4_request,"
	"SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
	"Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543\r\n"
	"x-amz-date: 20130524T000000Z\r\n"
	"x-amz-content-sha256: " SHA_EMPTY "\r\n"
	"\r\n";

static const char aws_list_objects[] =
	"GET /?max-keys=2&prefix=J HTTP/1.1\r\n"
	"Host: examplebucket.s3.amazonaws.com\r\n"
	"Authorization: AWS4-HMAC-SHA256 Credential=" AWS_AK "/20130524/us-east-1/s3/aws4_request,"
	"SignedHeaders=host;x-amz-content-sha256;x-amz-date,"
	"Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7\r\n"
	"x-amz-date: 20130524T000000Z\r\n"
	"x-amz-content-sha256: " SHA_EMPTY "\r\n"
	"\r\n";

static const char aws_presigned[] =
	"GET /test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256"
	"&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
	"&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
	"&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404 "
	"HTTP/1.1\r\n"
	"Host: examplebucket.s3.amazonaws.com\r\n"
	"\r\n";

static const char aws_presigned_creq[] =
	"GET\n"
	"/test.txt\n"
	"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2F"
	"us-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&"
	"X-Amz-SignedHeaders=host\n"
	"host:examplebucket.s3.amazonaws.com\n"
	"\n"
	"host\n"
	"UNSIGNED-PAYLOAD";

/*
 * Requests signed by botocore 1.43.11 (the SDK of boto3 and awscli), time frozen at
 * 20240601T120000Z, credentials AKIAIOSFODNN7EXAMPLE / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY,
 * us-east-1, written out as the SDK sends them:
 *
 *   botocore.auth.get_current_datetime = lambda: datetime.datetime(2024, 6, 1, 12, 0, 0)
 *   req = AWSRequest(method=m, url=url, headers=h, data=body)
 *   S3SigV4Auth(creds, "s3", "us-east-1").add_auth(req)         # header, signed payload
 *   (auth._should_sha256_sign_payload = lambda r: False)        # UNSIGNED-PAYLOAD
 *   S3SigV4QueryAuth(creds, "s3", "us-east-1", expires=e).add_auth(req)   # presigned
 *
 * with keys quoted as botocore's S3 serializer does (quote(key, safe="/~")). Each was also given
 * to the lab service's authenticate() (http.server parsing the same bytes): it accepts all seven,
 * and its canonical request equals sp_sigv4_canonical_request()'s byte for byte.
 */
static const char v_path_unicode[] =
	"GET /bucket/dir%20with%20space/%C3%BCn%C3%AFc%C3%B8d%C3%A9%20%E2%82%AC~file%2B1%3D2.txt "
	"HTTP/1.1\r\n"
	"Host: s3.lab.example\r\n"
	"Range: bytes=0-1023\r\n"
	"X-Amz-Date: 20240601T120000Z\r\n"
	"X-Amz-Content-SHA256: " SHA_EMPTY "\r\n"
	"Authorization: AWS4-HMAC-SHA256 Credential=" CRED ", "
	"SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
	"Signature=6cd89fb0fea97ecdcba46a477d2ae0a7d0f17f8fb567e4153c36f07b00293064\r\n"
	"User-Agent: Boto3/1.34.0 md/Botocore#1.43.11 ua/2.0 os/linux#6.1.0 lang/python#3.11.7\r\n"
	"\r\n";

static const char v_query_repeated[] =
	"GET /bucket?list-type=2&prefix=&delimiter=%2F&tag=b&tag=a&empty&start-after=a%20b "
	"HTTP/1.1\r\n"
	"Host: s3.lab.example\r\n"
	"X-Amz-Date: 20240601T120000Z\r\n"
	"X-Amz-Content-SHA256: " SHA_EMPTY "\r\n"
	"Authorization: AWS4-HMAC-SHA256 Credential=" CRED ", "
	"SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
	"Signature=c2d85805dfc7e8c90c8611e154b0a35dfcdfbc996285d177d1e16201dda43126\r\n"
	"User-Agent: Boto3/1.34.0 md/Botocore#1.43.11 ua/2.0 os/linux#6.1.0 lang/python#3.11.7\r\n"
	"\r\n";

/* x-amz-meta-note is "café  au   lait" sent in ISO-8859-1, as http.client sends it. */
static const char v_put_unsigned[] =
	"PUT /bucket/data/report.csv HTTP/1.1\r\n"
	"Host: s3.lab.example\r\n"
	"Content-Type: text/csv\r\n"
	"x-amz-meta-note: caf\xe9"
	"  au   lait\r\n"
	"Expect: 100-continue\r\n"
	"X-Amz-Date: 20240601T120000Z\r\n"
	"X-Amz-Content-SHA256: UNSIGNED-PAYLOAD\r\n"
	"Authorization: AWS4-HMAC-SHA256 Credential=" CRED ", "
	"SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-meta-note, "
	"Signature=9d8810b3530306740904c5b8367e7acf42ffb1078c316a76c79afad7d3c80f5a\r\n"
	"Content-Length: 8\r\n"
	"User-Agent: Boto3/1.34.0 md/Botocore#1.43.11 ua/2.0 os/linux#6.1.0 lang/python#3.11.7\r\n"
	"\r\n";

/* Body "hello world\n". */
static const char v_put_signed[] =
	"PUT /bucket/k%C3%A9y HTTP/1.1\r\n"
	"Host: s3.lab.example\r\n"
	"Content-Type: application/octet-stream\r\n"
	"x-amz-meta-a: 1\r\n"
	"x-amz-storage-class: STANDARD\r\n"
	"X-Amz-Date: 20240601T120000Z\r\n"
	"X-Amz-Content-SHA256: a948904f2f0f479b8f8197694b30184b0d2ed1c1cd2a1ec0fb85d299a192a447\r\n"
	"Authorization: AWS4-HMAC-SHA256 Credential=" CRED ", "
	"SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-meta-a;"
	"x-amz-storage-class, "
	"Signature=864548ce5c43754e1c9335f7a40893ee5039f867f0d490a90a6903d5c2635731\r\n"
	"Content-Length: 12\r\n"
	"User-Agent: Boto3/1.34.0 md/Botocore#1.43.11 ua/2.0 os/linux#6.1.0 lang/python#3.11.7\r\n"
	"\r\n";

static const char v_vhost_location[] =
	"GET /?location HTTP/1.1\r\n"
	"Host: bucket.s3.lab.example\r\n"
	"X-Amz-Date: 20240601T120000Z\r\n"
	"X-Amz-Content-SHA256: " SHA_EMPTY "\r\n"
	"Authorization: AWS4-HMAC-SHA256 Credential=" CRED ", "
	"SignedHeaders=host;x-amz-content-sha256;x-amz-date, "
	"Signature=bd8503360c15b1912df309be4fd420a4c28162511f0eaf0795ab7e6213e36a8f\r\n"
	"User-Agent: Boto3/1.34.0 md/Botocore#1.43.11 ua/2.0 os/linux#6.1.0 lang/python#3.11.7\r\n"
	"\r\n";

/* Expires 604800 (the longest allowed). */
static const char v_presigned_get[] =
	"GET /bucket/a%2Bb%3Dc/~x%20y.txt?response-content-type=text%2Fplain&versionId="
	"&X-Amz-Algorithm=AWS4-HMAC-SHA256"
	"&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20240601%2Fus-east-1%2Fs3%2Faws4_request"
	"&X-Amz-Date=20240601T120000Z&X-Amz-Expires=604800&X-Amz-SignedHeaders=host"
	"&X-Amz-Signature=5d9799a1638b6f43015ea856e51997da58e1089b65eece93ecf2d9a50ca88b16 "
	"HTTP/1.1\r\n"
	"Host: s3.lab.example\r\n"
	"User-Agent: Boto3/1.34.0 md/Botocore#1.43.11 ua/2.0 os/linux#6.1.0 lang/python#3.11.7\r\n"
	"\r\n";

static const char v_presigned_put[] =
	"PUT /bucket/up.bin?X-Amz-Algorithm=AWS4-HMAC-SHA256"
	"&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20240601%2Fus-east-1%2Fs3%2Faws4_request"
	"&X-Amz-Date=20240601T120000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=content-type%3Bhost"
	"&X-Amz-Signature=612f15fd8cad65835431b40dc1b84afc60d9f25e14dff736a18b97dc94e217d7 "
	"HTTP/1.1\r\n"
	"Host: s3.lab.example\r\n"
	"Content-Type: application/octet-stream\r\n"
	"Content-Length: 0\r\n"
	"User-Agent: Boto3/1.34.0 md/Botocore#1.43.11 ua/2.0 os/linux#6.1.0 lang/python#3.11.7\r\n"
	"\r\n";

struct vec {
	const char *name;
	const char *head;
	size_t len;
	int64_t now;
	const char *sig; /* the expected signature */
};

#define VEC(h, t, s)                                                                               \
	{                                                                                          \
#h, h, sizeof(h) - 1, t, s                                                         \
	}

static const struct vec vectors[] = {
	VEC(aws_get_range, T_20130524,
	    "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"),
	VEC(aws_put_object, T_20130524,
	    "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"),
	VEC(aws_get_lifecycle, T_20130524,
	    "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"),
	VEC(aws_list_objects, T_20130524,
	    "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"),
	VEC(aws_presigned, T_20130524,
	    "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"),
	VEC(v_path_unicode, T_20240601,
	    "6cd89fb0fea97ecdcba46a477d2ae0a7d0f17f8fb567e4153c36f07b00293064"),
	VEC(v_query_repeated, T_20240601,
	    "c2d85805dfc7e8c90c8611e154b0a35dfcdfbc996285d177d1e16201dda43126"),
	VEC(v_put_unsigned, T_20240601,
	    "9d8810b3530306740904c5b8367e7acf42ffb1078c316a76c79afad7d3c80f5a"),
	VEC(v_put_signed, T_20240601,
	    "864548ce5c43754e1c9335f7a40893ee5039f867f0d490a90a6903d5c2635731"),
	VEC(v_vhost_location, T_20240601,
	    "bd8503360c15b1912df309be4fd420a4c28162511f0eaf0795ab7e6213e36a8f"),
	VEC(v_presigned_get, T_20240601,
	    "5d9799a1638b6f43015ea856e51997da58e1089b65eece93ecf2d9a50ca88b16"),
	VEC(v_presigned_put, T_20240601,
	    "612f15fd8cad65835431b40dc1b84afc60d9f25e14dff736a18b97dc94e217d7"),
};

#define N_VECTORS (sizeof(vectors) / sizeof(vectors[0]))

/* Large: one of each, shared by the helpers below. */
static struct sp_http_req req;
static struct sp_sigv4_auth auth;
static char work[70000]; /* a request being changed */

static const struct sp_http_limits wide = {
	.max_head = 65536, .max_target = 16384, .max_headers = SP_HTTP_MAX_HEADERS};

static int
http(const char *buf, size_t len)
{
	sp_http_req_init(&req);
	return sp_http_parse_request(buf, len, &req, &wide);
}

/*
 * What the control thread will do with a request: parse it, parse its credentials, look the
 * access key up (one key here), derive the signing key, verify. 0 or -SP_SIGV4_ERR_x.
 */
static int
check_key(const char *buf, size_t len, int64_t now, const char *secret)
{
	uint8_t key[32];
	int rc;

	assert_int_equal(http(buf, len), (int)len);
	rc = sp_sigv4_parse_auth(buf, len, &req, "us-east-1", now, &auth);
	if (rc != 0)
		return rc;
	if (strcmp(auth.access_key, AWS_AK) != 0)
		return -SP_SIGV4_ERR_UNKNOWN_ACCESS_KEY;
	assert_int_equal(sp_sigv4_signing_key(secret, strlen(secret), auth.scope_date, auth.region,
					      auth.service, key),
			 0);
	return sp_sigv4_verify(buf, len, &req, &auth, key);
}

static int
check(const char *buf, size_t len, int64_t now)
{
	return check_key(buf, len, now, AWS_SK);
}

/* s into work, NUL-terminated; its length. */
static size_t
load(const char *s, size_t n)
{
	assert_true(n < sizeof(work));
	memcpy(work, s, n);
	work[n] = '\0';
	return n;
}

/* Replace the first from in work[0, *len) by to (any length). */
static void
replace(size_t *len, const char *from, const char *to)
{
	char *p = memmem(work, *len, from, strlen(from));
	size_t fl = strlen(from), tl = strlen(to);

	assert_non_null(p);
	assert_true(*len - fl + tl < sizeof(work));
	memmove(p + tl, p + fl, *len - (size_t)(p - work) - fl);
	memcpy(p, to, tl);
	*len = *len - fl + tl;
	work[*len] = '\0';
}

/*
 * Sign work[0, len) as a client would, in place: every SIG0 becomes the signature of what
 * sp_sigv4_canonical_request() makes of it (for requests the lab would take but this refuses).
 */
static void
resign(size_t len)
{
	char creq[32768], sts[512], hex[65];
	uint8_t key[32], mac[32];
	unsigned int maclen = 0, i;
	char *p;
	int n, m;

	assert_int_equal(http(work, len), (int)len);
	assert_int_equal(sp_sigv4_parse_auth(work, len, &req, "us-east-1", T_20240601, &auth), 0);
	n = sp_sigv4_canonical_request(work, len, &req, &auth, creq, sizeof(creq));
	assert_true(n > 0);
	m = sp_sigv4_string_to_sign(&auth, creq, (size_t)n, sts, sizeof(sts));
	assert_true(m > 0);
	assert_int_equal(sp_sigv4_signing_key(AWS_SK, strlen(AWS_SK), auth.scope_date, auth.region,
					      auth.service, key),
			 0);
	assert_non_null(
		HMAC(EVP_sha256(), key, 32, (const unsigned char *)sts, (size_t)m, mac, &maclen));
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", mac[i]);
	while ((p = memmem(work, len, SIG0, 64)) != NULL)
		memcpy(p, hex, 64);
}

/* ---- published vectors ------------------------------------------------------------------------
 */

static void
test_signing_key_aws_doc(void **state)
{
	/* AWS General Reference, "Examples of how to derive a signing key for Signature Version 4"
	 */
	static const uint8_t want[32] = {0xf4, 0x78, 0x0e, 0x2d, 0x9f, 0x65, 0xfa, 0x89,
					 0x5f, 0x9c, 0x67, 0xb3, 0x2c, 0xe1, 0xba, 0xf0,
					 0xb0, 0xd8, 0xa4, 0x35, 0x05, 0xa0, 0x00, 0xa1,
					 0xa9, 0xe0, 0x90, 0xd4, 0x14, 0xdb, 0x40, 0x4d};
	static const char secret[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
	static const uint8_t want100[32] = {0xaa, 0xba, 0x30, 0x2b, 0x55, 0xe2, 0x8a, 0xce,
					    0xa8, 0x5e, 0x28, 0xe3, 0x57, 0x76, 0x93, 0xcd,
					    0x8d, 0x02, 0xe9, 0x4f, 0xa2, 0xf9, 0x3c, 0x73,
					    0x98, 0x90, 0x4e, 0x03, 0x29, 0x2c, 0xf8, 0x6c};
	static const uint8_t want256[32] = {0x26, 0x6b, 0x18, 0x6e, 0xeb, 0xe9, 0xf8, 0x6f,
					    0x4c, 0x12, 0xfe, 0x84, 0x5e, 0x28, 0x7e, 0xfd,
					    0x3e, 0x54, 0x96, 0x01, 0xea, 0xa7, 0x88, 0xa5,
					    0xcd, 0xd6, 0x7b, 0x44, 0x43, 0x42, 0xdc, 0x54};
	char big[SP_SIGV4_SECRET_MAX + 1];
	uint8_t key[32];

	(void)state;
	assert_int_equal(
		sp_sigv4_signing_key(secret, strlen(secret), "20120215", "us-east-1", "iam", key),
		0);
	assert_memory_equal(key, want, 32);
	/*
	 * "AWS4" + secret longer than SHA-256's block: the HMAC key is hashed first (RFC 2104).
	 * sigv4.signing_key("k" * n, "20240601", "us-east-1", "s3").hex() for n = 100, 256.
	 */
	memset(big, 'k', sizeof(big));
	assert_int_equal(sp_sigv4_signing_key(big, 100, "20240601", "us-east-1", "s3", key), 0);
	assert_memory_equal(key, want100, 32);
	assert_int_equal(
		sp_sigv4_signing_key(big, SP_SIGV4_SECRET_MAX, "20240601", "us-east-1", "s3", key),
		0);
	assert_memory_equal(key, want256, 32);
	assert_int_equal(
		sp_sigv4_signing_key(big, sizeof(big), "20120215", "us-east-1", "iam", key),
		-EINVAL);
	assert_int_equal(sp_sigv4_signing_key(NULL, 0, "20120215", "us-east-1", "iam", key),
			 -EINVAL);
	assert_int_equal(sp_sigv4_signing_key(secret, 3, NULL, "us-east-1", "iam", key), -EINVAL);
}

static void
test_vectors_verify(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < N_VECTORS; i++) {
		const struct vec *v = &vectors[i];

		print_message("%s\n", v->name);
		assert_int_equal(check(v->head, v->len, v->now), 0);
		assert_string_equal(auth.signature, v->sig);
		assert_string_equal(auth.access_key, AWS_AK);
		assert_string_equal(auth.region, "us-east-1");
		assert_string_equal(auth.service, "s3");
		assert_int_equal(auth.presigned, strstr(v->name, "presigned") != NULL);
		/* with another secret, or as another access key: refused */
		assert_int_equal(check_key(v->head, v->len, v->now,
					   "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEZ"),
				 -SP_SIGV4_ERR_SIGNATURE_MISMATCH);
		assert_string_equal(sp_sigv4_s3_code(-SP_SIGV4_ERR_SIGNATURE_MISMATCH),
				    "SignatureDoesNotMatch");
	}
}

static void
test_aws_get_range_steps(void **state)
{
	char creq[1024], sts[256];
	int n;

	(void)state;
	assert_int_equal(check(aws_get_range, sizeof(aws_get_range) - 1, T_20130524), 0);
	assert_false(auth.presigned);
	assert_string_equal(auth.amz_date, "20130524T000000Z");
	assert_int_equal(auth.date, T_20130524);
	assert_string_equal(auth.scope_date, "20130524");
	assert_string_equal(auth.signed_headers, "host;range;x-amz-content-sha256;x-amz-date");
	assert_string_equal(auth.payload, SHA_EMPTY);
	assert_false(auth.payload_unsigned);
	n = sp_sigv4_canonical_request(aws_get_range, sizeof(aws_get_range) - 1, &req, &auth, creq,
				       sizeof(creq));
	assert_int_equal(n, (int)sizeof(aws_get_range_creq) - 1);
	assert_string_equal(creq, aws_get_range_creq);
	assert_int_equal(sp_sigv4_string_to_sign(&auth, creq, (size_t)n, sts, sizeof(sts)),
			 (int)sizeof(aws_get_range_sts) - 1);
	assert_string_equal(sts, aws_get_range_sts);

	/* bounded output: exactly enough, one byte short, nothing */
	assert_int_equal(sp_sigv4_canonical_request(aws_get_range, sizeof(aws_get_range) - 1, &req,
						    &auth, creq, (size_t)n + 1),
			 n);
	assert_int_equal(sp_sigv4_canonical_request(aws_get_range, sizeof(aws_get_range) - 1, &req,
						    &auth, creq, (size_t)n),
			 -SP_SIGV4_ERR_NO_SPACE);
	assert_string_equal(creq, "");
	assert_int_equal(sp_sigv4_canonical_request(aws_get_range, sizeof(aws_get_range) - 1, &req,
						    &auth, creq, 0),
			 -SP_SIGV4_ERR_NO_SPACE);
	assert_int_equal(
		sp_sigv4_string_to_sign(&auth, creq, 0, sts, sizeof(aws_get_range_sts) - 1),
		-SP_SIGV4_ERR_NO_SPACE);
}

static void
test_aws_presigned_steps(void **state)
{
	char creq[1024];

	(void)state;
	assert_int_equal(check(aws_presigned, sizeof(aws_presigned) - 1, T_20130524), 0);
	assert_true(auth.presigned);
	assert_true(auth.payload_unsigned);
	assert_string_equal(auth.payload, "UNSIGNED-PAYLOAD");
	assert_int_equal(auth.expires, 86400);
	assert_string_equal(auth.signed_headers, "host");
	assert_int_equal(sp_sigv4_canonical_request(aws_presigned, sizeof(aws_presigned) - 1, &req,
						    &auth, creq, sizeof(creq)),
			 (int)sizeof(aws_presigned_creq) - 1);
	assert_string_equal(creq, aws_presigned_creq);
}

static void
test_payload_check(void **state)
{
	uint8_t h[32];

	(void)state;
	assert_int_equal(check(aws_put_object, sizeof(aws_put_object) - 1, T_20130524), 0);
	assert_int_equal(EVP_Digest("Welcome to Amazon S3.", 21, h, NULL, EVP_sha256(), NULL), 1);
	assert_int_equal(sp_sigv4_payload_check(&auth, h), 0);
	h[31] ^= 1;
	assert_int_equal(sp_sigv4_payload_check(&auth, h), -SP_SIGV4_ERR_CONTENT_SHA256_MISMATCH);
	assert_string_equal(sp_sigv4_s3_code(-SP_SIGV4_ERR_CONTENT_SHA256_MISMATCH),
			    "XAmzContentSHA256Mismatch");
	/* UNSIGNED-PAYLOAD: any body */
	assert_int_equal(check(v_put_unsigned, sizeof(v_put_unsigned) - 1, T_20240601), 0);
	assert_true(auth.payload_unsigned);
	assert_int_equal(sp_sigv4_payload_check(&auth, h), 0);
}

/* ---- the canonical request's parts, as the lab builds them
 * --------------------------------------- */

/*
 * Expected values from the lab's sigv4.py (canonical_uri of the path as http.server hands it over,
 * canonical_query(query_pairs(q))), and checked against the lab's authenticate() end to end.
 */
static const struct {
	const char *target, *uri;
} uri_cases[] = {
	{"/", "/"},
	{"//a//b/../c/./d", "/a//b/../c/./d"},
	{"///", "/"},
	{"/%2F%2f", "///"},
	{"/a+b%20c%7E~", "/a%2Bb%20c~~"},
	{"/%C3", "/%EF%BF%BD"},
	{"/%C3%A9%C3", "/%C3%A9%EF%BF%BD"},
	{"/%ED%A0%80", "/%EF%BF%BD%EF%BF%BD%EF%BF%BD"},
	{"/%F4%90%80%80", "/%EF%BF%BD%EF%BF%BD%EF%BF%BD%EF%BF%BD"},
	{"/%E2%82%AC%F0%9F%98%80", "/%E2%82%AC%F0%9F%98%80"},
	{"/%e2%82%ac", "/%E2%82%AC"},
	{"/%00a", "/%00a"},
	{"/!$&'()*,;=:@", "/%21%24%26%27%28%29%2A%2C%3B%3D%3A%40"},
	{"/%E0%80%AF", "/%EF%BF%BD%EF%BF%BD%EF%BF%BD"},
	{"/%C0%AF", "/%EF%BF%BD%EF%BF%BD"},
	{"/%F0%9F%98", "/%EF%BF%BD"},
	{"/%F0%9F%98a", "/%EF%BF%BDa"},
	{"/%FE%FF", "/%EF%BF%BD%EF%BF%BD"},
};

static const struct {
	const char *query, *canonical;
} query_cases[] = {
	{"b=2&a=1&a=0&c", "a=0&a=1&b=2&c="},
	{"a=b=c", "a=b%3Dc"},
	{"&&", "=&=&="},
	{"=x", "=x"},
	{"%41=1", "A=1"},
	{"a%2Bb=c+d", "a%2Bb=c%2Bd"},
	{"Z=1&a=1&_=1&~=1&-=1", "-=1&Z=1&_=1&a=1&~=1"},
	{"x=%FF", "x=%EF%BF%BD"},
	{"k=%7E&k=~", "k=~&k=~"},
	{"k=%20&k=+", "k=%20&k=%2B"},
	{"X-Amz-Signaturf=abc&a=1", "X-Amz-Signaturf=abc&a=1"},
	{"a=%C3&a=%C3%A9", "a=%C3%A9&a=%EF%BF%BD"},
	{"", ""},
	{"list-type=2&prefix=photos%2F2024%2F&max-keys=1000",
	 "list-type=2&max-keys=1000&prefix=photos%2F2024%2F"},
	{"a=1&a=", "a=&a=1"},
	{"a&a=&a=0", "a=&a=&a=0"},
};

static const struct {
	const char *lines, *canonical; /* header lines of x-amz-meta-a; its canonical line */
} header_cases[] = {
	{"X-Amz-Meta-A:  a   b \t c \r\n", "x-amz-meta-a:a b c\n"},
	{"x-amz-meta-a: 1\r\nX-AMZ-META-A: 2\r\nx-amz-meta-a:\r\n", "x-amz-meta-a:1,2,\n"},
	{"x-amz-meta-a: caf\xe9\r\n", "x-amz-meta-a:caf\xc3\xa9\n"},
	{"x-amz-meta-a: a\xa0"
	 "b\x85"
	 "c\r\n",
	 "x-amz-meta-a:a b c\n"},
	{"x-amz-meta-a:\r\n", "x-amz-meta-a:\n"},
	{"x-amz-meta-a: \xa0 x \xa0\r\n", "x-amz-meta-a:x\n"},
	{"x-amz-meta-a: \"quoted,  list\" , b\r\n", "x-amz-meta-a:\"quoted, list\" , b\n"},
};

#define HDRS_REST                                                                                  \
	"X-Amz-Date: 20240601T120000Z\r\n"                                                         \
	"X-Amz-Content-SHA256: UNSIGNED-PAYLOAD\r\n"                                               \
	"Authorization: AWS4-HMAC-SHA256 Credential=" CRED ", SignedHeaders=host, "                \
	"Signature=" SIG0 "\r\n\r\n"

static void
canonical_of(size_t len, char *creq, size_t cap)
{
	assert_int_equal(http(work, len), (int)len);
	assert_int_equal(sp_sigv4_parse_auth(work, len, &req, "us-east-1", T_20240601, &auth), 0);
	assert_true(sp_sigv4_canonical_request(work, len, &req, &auth, creq, cap) > 0);
	assert_int_equal(sp_sigv4_verify(work, len, &req, &auth, (const uint8_t *)SIG0),
			 -SP_SIGV4_ERR_SIGNATURE_MISMATCH);
}

static void
test_canonical_uri(void **state)
{
	char creq[4096], want[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(uri_cases) / sizeof(uri_cases[0]); i++) {
		int n = snprintf(work, sizeof(work), "GET %s HTTP/1.1\r\nHost: h\r\n" HDRS_REST,
				 uri_cases[i].target);

		canonical_of((size_t)n, creq, sizeof(creq));
		snprintf(want, sizeof(want), "GET\n%s\n\nhost:h\n", uri_cases[i].uri);
		print_message("%s\n", uri_cases[i].target);
		assert_memory_equal(creq, want, strlen(want));
	}
}

static void
test_canonical_query(void **state)
{
	char creq[4096], want[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(query_cases) / sizeof(query_cases[0]); i++) {
		int n = snprintf(work, sizeof(work), "GET /k?%s HTTP/1.1\r\nHost: h\r\n" HDRS_REST,
				 query_cases[i].query);

		canonical_of((size_t)n, creq, sizeof(creq));
		snprintf(want, sizeof(want), "GET\n/k\n%s\nhost:h\n", query_cases[i].canonical);
		print_message("%s\n", query_cases[i].query);
		assert_memory_equal(creq, want, strlen(want));
	}
}

static void
test_canonical_headers(void **state)
{
	char creq[4096];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(header_cases) / sizeof(header_cases[0]); i++) {
		size_t len = (size_t)snprintf(work, sizeof(work),
					      "GET / HTTP/1.1\r\nHost: h\r\n%s" HDRS_REST,
					      header_cases[i].lines);

		replace(&len, "SignedHeaders=host", "SignedHeaders=host;x-amz-meta-a");
		canonical_of(len, creq, sizeof(creq));
		assert_non_null(strstr(creq, header_cases[i].canonical));
	}
}

/* ---- tampering: every byte that is signed ------------------------------------------------------
 */

static char
tamper_byte(char c)
{
	if (c >= '0' && c <= '8')
		return (char)(c + 1);
	if (c == '9')
		return '0';
	if ((c >= 'a' && c < 'z') || (c >= 'A' && c < 'Z'))
		return (char)(c + 1);
	if (c == 'z')
		return 'a';
	if (c == 'Z')
		return 'A';
	return 'x';
}

/* Change work[pos] (a copy of v); 1 if refused as want says (any refusal if want is 0). */
static void
tamper_at(const struct vec *v, size_t pos, int want, unsigned int *tried)
{
	int rc;

	load(v->head, v->len);
	work[pos] = tamper_byte(work[pos]);
	if (http(work, v->len) != (int)v->len)
		return; /* sp_http refuses it: the worker hands it over unchanged */
	(*tried)++;
	rc = check(work, v->len, v->now);
	if (want == -SP_SIGV4_ERR_SIGNATURE_MISMATCH &&
	    strcmp(sp_sigv4_s3_code(rc), "SignatureDoesNotMatch") != 0)
		fail_msg("%s: byte %zu ('%c') changed: %s, not SignatureDoesNotMatch", v->name, pos,
			 v->head[pos], sp_sigv4_error_name(rc));
	if (rc == 0)
		fail_msg("%s: byte %zu ('%c') changed, still verified", v->name, pos, v->head[pos]);
}

static bool
signed_name(const char *s, const char *name, size_t n)
{
	while (*s != '\0') {
		size_t l = strcspn(s, ";");

		if (l == n && strncasecmp(s, name, n) == 0)
			return true;
		s += l + (s[l] == ';');
	}
	return false;
}

static void
test_tamper_every_signed_byte(void **state)
{
	size_t i, p;

	(void)state;
	for (i = 0; i < N_VECTORS; i++) {
		const struct vec *v = &vectors[i];
		struct sp_http_req r;
		struct sp_sigv4_auth a;
		unsigned int tried = 0, h;
		const char *alg, *sig;
		size_t auth_from, auth_to;

		assert_int_equal(check(v->head, v->len, v->now), 0);
		r = req;
		a = auth;
		/* the target; in a presigned one, its auth parameters may fail otherwise */
		alg = memmem(v->head, v->len, "&X-Amz-Algorithm=", 17);
		if (alg == NULL)
			alg = memmem(v->head, v->len, "?X-Amz-Algorithm=", 17);
		sig = memmem(v->head, v->len, "X-Amz-Signature=", 16);
		auth_from = alg != NULL ? (size_t)(alg - v->head) : SIZE_MAX;
		auth_to = sig != NULL ? (size_t)(sig - v->head) + 16 : 0;
		for (p = r.target.off; p < r.target.off + r.target.len; p++) {
			bool any = (p >= auth_from && p < auth_to) || v->head[p] == '?';

			tamper_at(v, p, any ? 0 : -SP_SIGV4_ERR_SIGNATURE_MISMATCH, &tried);
		}
		/* the values of the signed headers (the date's and payload's may fail otherwise) */
		for (h = 0; h < r.n_headers; h++) {
			struct sp_http_span nm = r.headers[h].name, val = r.headers[h].value;
			bool any = (nm.len == 10 &&
				    strncasecmp(v->head + nm.off, "x-amz-date", 10) == 0) ||
				   (nm.len == 20 &&
				    strncasecmp(v->head + nm.off, "x-amz-content-sha256", 20) == 0);

			if (!signed_name(a.signed_headers, v->head + nm.off, nm.len))
				continue;
			for (p = val.off; p < val.off + val.len; p++)
				tamper_at(v, p, any ? 0 : -SP_SIGV4_ERR_SIGNATURE_MISMATCH, &tried);
		}
		/* the signature in the Authorization header */
		sig = memmem(v->head, v->len, "Signature=", 10);
		if (sig != NULL && !a.presigned)
			for (p = (size_t)(sig - v->head) + 10; p < (size_t)(sig - v->head) + 74;
			     p++)
				tamper_at(v, p, -SP_SIGV4_ERR_SIGNATURE_MISMATCH, &tried);
		print_message("%s: %u changed bytes refused\n", v->name, tried);
		assert_true(tried > 100);
	}
}

static void
test_tamper_date_and_names(void **state)
{
	size_t len;

	(void)state;
	/* one second later, same day, within the skew: the signature no longer matches */
	len = load(LIT(v_path_unicode));
	replace(&len, "20240601T120000Z\r\n", "20240601T120001Z\r\n");
	assert_int_equal(check(work, len, T_20240601), -SP_SIGV4_ERR_SIGNATURE_MISMATCH);
	len = load(LIT(v_presigned_get));
	replace(&len, "X-Amz-Date=20240601T120000Z", "X-Amz-Date=20240601T120001Z");
	assert_int_equal(check(work, len, T_20240601 + 1), -SP_SIGV4_ERR_SIGNATURE_MISMATCH);
	len = load(LIT(v_presigned_get));
	replace(&len, "X-Amz-Expires=604800", "X-Amz-Expires=604799");
	assert_int_equal(check(work, len, T_20240601), -SP_SIGV4_ERR_SIGNATURE_MISMATCH);
	/* another day: the scope no longer matches X-Amz-Date */
	len = load(LIT(v_path_unicode));
	replace(&len, "20240601T120000Z\r\n", "20240602T120000Z\r\n");
	assert_int_equal(check(work, len, T_20240601 + 86400), -SP_SIGV4_ERR_CREDENTIAL_DATE);
	/* header names are not case-sensitive, their order does not matter */
	len = load(LIT(v_path_unicode));
	replace(&len, "Range:", "rANGE:");
	replace(&len, "Host:", "HOST:");
	replace(&len, "X-Amz-Date:", "x-amz-date:");
	assert_int_equal(check(work, len, T_20240601), 0);
	/* unsigned headers may change, be added or go */
	len = load(LIT(v_put_unsigned));
	replace(&len, "Expect: 100-continue\r\n", "");
	replace(&len, "User-Agent: Boto3", "User-Agent: Boto4");
	replace(&len, "Content-Length: 8\r\n", "Content-Length: 9\r\nX-Other: 1\r\n");
	assert_int_equal(check(work, len, T_20240601), 0);
	/* a signed header line repeated changes its canonical value */
	len = load(LIT(v_put_unsigned));
	replace(&len, "Expect:", "x-amz-meta-note: more\r\nExpect:");
	assert_int_equal(check(work, len, T_20240601), -SP_SIGV4_ERR_SIGNATURE_MISMATCH);
	/* an unsigned x-amz-meta header added */
	len = load(LIT(v_put_signed));
	replace(&len, "x-amz-meta-a: 1\r\n", "x-amz-meta-a: 1\r\nx-amz-meta-b: 2\r\n");
	assert_int_equal(check(work, len, T_20240601), 0);
}

/* ---- time windows ------------------------------------------------------------------------------
 */

static void
test_skew(void **state)
{
	const char *h = aws_get_range;
	size_t n = sizeof(aws_get_range) - 1;

	(void)state;
	assert_int_equal(check(h, n, T_20130524 + 900), 0);
	assert_int_equal(check(h, n, T_20130524 - 900), 0);
	assert_int_equal(check(h, n, T_20130524 + 901), -SP_SIGV4_ERR_SKEWED);
	assert_int_equal(check(h, n, T_20130524 - 901), -SP_SIGV4_ERR_SKEWED);
	assert_int_equal(check(h, n, T_20130524 + 86400 * 365), -SP_SIGV4_ERR_SKEWED);
	assert_int_equal(check(h, n, 0), -SP_SIGV4_ERR_SKEWED);
	assert_string_equal(sp_sigv4_s3_code(-SP_SIGV4_ERR_SKEWED), "RequestTimeTooSkewed");
	assert_string_equal(auth.access_key, AWS_AK); /* known for the log, even so */
}

static void
test_presigned_window(void **state)
{
	(void)state;
	/* X-Amz-Expires 86400 */
	assert_int_equal(check(LIT(aws_presigned), T_20130524 + 86400), 0);
	assert_int_equal(check(LIT(aws_presigned), T_20130524 + 86401), -SP_SIGV4_ERR_EXPIRED);
	assert_int_equal(check(LIT(aws_presigned), T_20130524 - 900), 0);
	assert_int_equal(check(LIT(aws_presigned), T_20130524 - 901), -SP_SIGV4_ERR_NOT_YET_VALID);
	assert_string_equal(sp_sigv4_s3_code(-SP_SIGV4_ERR_EXPIRED), "AccessDenied");
	assert_string_equal(sp_sigv4_s3_message(-SP_SIGV4_ERR_EXPIRED), "Request has expired");
	assert_string_equal(sp_sigv4_s3_code(-SP_SIGV4_ERR_NOT_YET_VALID), "AccessDenied");
	/* 604800, the longest */
	assert_int_equal(check(LIT(v_presigned_get), T_20240601 + 604800), 0);
	assert_int_equal(check(LIT(v_presigned_get), T_20240601 + 604801), -SP_SIGV4_ERR_EXPIRED);
	/* 3600 */
	assert_int_equal(check(LIT(v_presigned_put), T_20240601 + 3600), 0);
	assert_int_equal(check(LIT(v_presigned_put), T_20240601 + 3601), -SP_SIGV4_ERR_EXPIRED);
}

static void
test_presigned_expires_values(void **state)
{
	static const struct {
		const char *v;
		int rc; /* of sp_sigv4_parse_auth at X-Amz-Date */
	} cases[] = {
		{"1", 0},
		{"604800", 0},
		{"000000000000000000000000001", 0},
		{"%31", 0}, /* decoded first, as the lab does */
		{"0", -SP_SIGV4_ERR_BAD_EXPIRES},
		{"604801", -SP_SIGV4_ERR_BAD_EXPIRES},
		{"", -SP_SIGV4_ERR_BAD_EXPIRES},
		{"-1", -SP_SIGV4_ERR_BAD_EXPIRES},
		{"+1", -SP_SIGV4_ERR_BAD_EXPIRES},
		{"1e3", -SP_SIGV4_ERR_BAD_EXPIRES},
		{"99999999999999999999999999999999", -SP_SIGV4_ERR_BAD_EXPIRES},
		{"18446744073709551617", -SP_SIGV4_ERR_BAD_EXPIRES},
		{"3600%20", -SP_SIGV4_ERR_BAD_EXPIRES},
	};
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char e[64];

		len = load(LIT(v_presigned_put));
		snprintf(e, sizeof(e), "X-Amz-Expires=%s&", cases[i].v);
		replace(&len, "X-Amz-Expires=3600&", e);
		assert_int_equal(http(work, len), (int)len);
		print_message("X-Amz-Expires=%s\n", cases[i].v);
		assert_int_equal(
			sp_sigv4_parse_auth(work, len, &req, "us-east-1", T_20240601, &auth),
			cases[i].rc);
	}
	assert_string_equal(sp_sigv4_s3_code(-SP_SIGV4_ERR_BAD_EXPIRES),
			    "AuthorizationQueryParametersError");
}

/* X-Amz-Date as Python's time.strptime(d, "%Y%m%dT%H%M%SZ") takes it (calendar.timegm of it). */
static void
test_dates(void **state)
{
	static const struct {
		const char *d;
		int64_t t; /* -1: refused */
	} cases[] = {
		{"20130524T000000Z", 1369353600},
		{"20130524t000000z", 1369353600},
		{"20130524T0000Z", 1369353600},
		{"2013524T000000Z", 1369353600},
		{"201305 4T000000Z", 1367625600},
		{"20130524T000061Z", 1369353661},
		{"20120229T000000Z", 1330473600},
		{"20130524T000062Z", -1},
		{"20130230T000000Z", -1},
		{"20130229T000000Z", -1},
		{"00000101T000000Z", -1},
		{"20130524T240000Z", -1},
		{"20130524T000000", -1},
		{"20130524T000000ZZ", -1},
		{"2013-05-24T00:00:00Z", -1},
		{"20130524 000000Z", -1},
		{"2013052 4T000000Z", -1},
		{"20131324T000000Z", -1},
		{"20130524T0Z", -1},
		{"", -1},
		{"99991231T235959Z", 253402300799},
		{"20130524T000000Z20130524T000000Z", -1},
	};
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char cred[96], line[96];
		int64_t now = cases[i].t >= 0 ? cases[i].t : T_20130524;
		int rc;

		len = load(LIT(aws_get_range));
		snprintf(cred, sizeof(cred), AWS_AK "/%.8s/", cases[i].d);
		replace(&len, AWS_AK "/20130524/", cred);
		snprintf(line, sizeof(line), "x-amz-date: %s\r\n", cases[i].d);
		replace(&len, "x-amz-date: 20130524T000000Z\r\n", line);
		if (cases[i].d[0] == '\0')
			replace(&len, "x-amz-date: \r\n", "");
		assert_int_equal(http(work, len), (int)len);
		rc = sp_sigv4_parse_auth(work, len, &req, "us-east-1", now, &auth);
		print_message("%s\n", cases[i].d);
		if (cases[i].t >= 0) {
			assert_int_equal(rc, 0);
			assert_int_equal(auth.date, cases[i].t);
			assert_string_equal(auth.amz_date, cases[i].d);
		} else {
			assert_int_equal(rc, -SP_SIGV4_ERR_BAD_DATE);
		}
	}
	assert_string_equal(sp_sigv4_s3_code(-SP_SIGV4_ERR_BAD_DATE), "AccessDenied");
}

/* ---- hostile or broken credentials -------------------------------------------------------------
 */

#define HEAD                                                                                       \
	"GET /b/k HTTP/1.1\r\n"                                                                    \
	"Host: s3.lab.example\r\n"
#define DATE "X-Amz-Date: 20240601T120000Z\r\n"
#define PAYLOAD "X-Amz-Content-SHA256: UNSIGNED-PAYLOAD\r\n"
#define AUTHZ(cred, sh, sig)                                                                       \
	"Authorization: AWS4-HMAC-SHA256 Credential=" cred ", SignedHeaders=" sh                   \
	", Signature=" sig "\r\n"
#define GOOD_AUTHZ AUTHZ(CRED, "host;x-amz-content-sha256;x-amz-date", SIG0)
#define END "\r\n"
#define A129 "AKIA" AAAAA AAAAA AAAAA AAAAA AAAAA
#define AAAAA "AAAAAAAAAAAAAAAAAAAAAAAAA" /* 25 */

static const struct {
	const char *head;
	int rc; /* of sp_sigv4_parse_auth */
	const char *code;
} parse_cases[] = {
	{HEAD DATE PAYLOAD GOOD_AUTHZ END, 0, ""},
	{HEAD DATE PAYLOAD END, -SP_SIGV4_ERR_MISSING, "AccessDenied"},
	{HEAD DATE PAYLOAD "Authorization:\r\n" END, -SP_SIGV4_ERR_MISSING, "AccessDenied"},
	{HEAD DATE PAYLOAD "Authorization: AWS " AWS_AK ":frJIUN8DYpKDtOLCwo//yllqDzg=\r\n" END,
	 -SP_SIGV4_ERR_SIGV2, "InvalidRequest"},
	{"GET /b/k?AWSAccessKeyId=" AWS_AK "&Expires=1&Signature=x HTTP/1.1\r\n"
	 "Host: h\r\n" END,
	 -SP_SIGV4_ERR_SIGV2, "InvalidRequest"},
	{HEAD DATE PAYLOAD "Authorization: AWS4-HMAC-SHA512 Credential=" CRED
			   ", SignedHeaders=host, Signature=" SIG0 "\r\n" END,
	 -SP_SIGV4_ERR_BAD_ALGORITHM, "AuthorizationHeaderMalformed"},
	{HEAD DATE PAYLOAD "Authorization: AWS4-HMAC-SHA256Credential=" CRED "\r\n" END,
	 -SP_SIGV4_ERR_BAD_ALGORITHM, "AuthorizationHeaderMalformed"},
	{HEAD DATE PAYLOAD "Authorization: AWS4-HMAC-SHA256\r\n" END,
	 -SP_SIGV4_ERR_AUTH_FIELD_MISSING, "AuthorizationHeaderMalformed"},
	{HEAD DATE PAYLOAD "Authorization: AWS4-HMAC-SHA256 Credential=" CRED ", Signature=" SIG0
			   "\r\n" END,
	 -SP_SIGV4_ERR_AUTH_NO_SIGNED_HEADERS, "AuthorizationHeaderMalformed"},
	{HEAD DATE PAYLOAD "Authorization: AWS4-HMAC-SHA256 SignedHeaders=host, Signature=" SIG0
			   "\r\n" END,
	 -SP_SIGV4_ERR_AUTH_FIELD_MISSING, "AuthorizationHeaderMalformed"},
	{HEAD DATE PAYLOAD "Authorization: AWS4-HMAC-SHA256 credential=" CRED
			   ", SignedHeaders=host, Signature=" SIG0 "\r\n" END,
	 -SP_SIGV4_ERR_AUTH_FIELD_MISSING, "AuthorizationHeaderMalformed"},
	{HEAD DATE PAYLOAD "Authorization: AWS4-HMAC-SHA256 Credential=" CRED
			   " SignedHeaders=host Signature=" SIG0 "\r\n" END,
	 -SP_SIGV4_ERR_AUTH_NO_SIGNED_HEADERS, "AuthorizationHeaderMalformed"},
	{HEAD DATE PAYLOAD "Authorization: AWS4-HMAC-SHA256 Credential=" CRED
			   ", SignedHeaders=host\r\n" END,
	 -SP_SIGV4_ERR_AUTH_NO_SIGNATURE, "AuthorizationHeaderMalformed"},
	/* the last of a field given twice counts, as in the lab */
	{HEAD DATE PAYLOAD "Authorization: AWS4-HMAC-SHA256 Credential=x, Credential=" CRED
			   ",SignedHeaders=host,,,Signature=" SIG0 ",Other=1\r\n" END,
	 0, ""},
	{HEAD DATE PAYLOAD AUTHZ(AWS_AK "/20240601/us-east-1/s3", "host", SIG0) END,
	 -SP_SIGV4_ERR_BAD_CREDENTIAL, "AuthorizationHeaderMalformed"},
	{HEAD DATE PAYLOAD AUTHZ(CRED "/", "host", SIG0) END, -SP_SIGV4_ERR_BAD_CREDENTIAL,
	 "AuthorizationHeaderMalformed"},
	{HEAD DATE PAYLOAD AUTHZ(AWS_AK "/20240601/us-east-1/s3/aws4_requesT", "host", SIG0) END,
	 -SP_SIGV4_ERR_BAD_CREDENTIAL, "AuthorizationHeaderMalformed"},
	{HEAD DATE PAYLOAD AUTHZ("", "host", SIG0) END, -SP_SIGV4_ERR_BAD_CREDENTIAL,
	 "AuthorizationHeaderMalformed"},
	{HEAD DATE PAYLOAD AUTHZ(AWS_AK "/20240602/us-east-1/s3/aws4_request", "host", SIG0) END,
	 -SP_SIGV4_ERR_CREDENTIAL_DATE, "AuthorizationHeaderMalformed"},
	{HEAD DATE PAYLOAD AUTHZ(AWS_AK "/2024060/us-east-1/s3/aws4_request", "host", SIG0) END,
	 -SP_SIGV4_ERR_CREDENTIAL_DATE, "AuthorizationHeaderMalformed"},
	{HEAD DATE PAYLOAD AUTHZ(AWS_AK "/20240601/eu-west-1/s3/aws4_request", "host", SIG0) END,
	 -SP_SIGV4_ERR_WRONG_REGION, "AuthorizationHeaderMalformed"},
	{HEAD DATE PAYLOAD AUTHZ(AWS_AK "/20240601//s3/aws4_request", "host", SIG0) END,
	 -SP_SIGV4_ERR_WRONG_REGION, "AuthorizationHeaderMalformed"},
	{HEAD DATE PAYLOAD AUTHZ(AWS_AK "/20240601/us-east-1/iam/aws4_request", "host", SIG0) END,
	 -SP_SIGV4_ERR_WRONG_SERVICE, "AuthorizationHeaderMalformed"},
	/* the lab's order: region before service, date before the credential's form */
	{HEAD DATE PAYLOAD AUTHZ(AWS_AK "/20240601/eu-west-1/iam/aws4_request", "host", SIG0) END,
	 -SP_SIGV4_ERR_WRONG_REGION, "AuthorizationHeaderMalformed"},
	{HEAD PAYLOAD AUTHZ("x", "host", SIG0) END, -SP_SIGV4_ERR_BAD_DATE, "AccessDenied"},
	{HEAD "X-Amz-Date: 2024-06-01T12:00:00Z\r\n" PAYLOAD GOOD_AUTHZ END, -SP_SIGV4_ERR_BAD_DATE,
	 "AccessDenied"},
	{HEAD "Date: Sat, 01 Jun 2024 12:00:00 GMT\r\n" PAYLOAD GOOD_AUTHZ END,
	 -SP_SIGV4_ERR_BAD_DATE, "AccessDenied"},
	{HEAD "X-Amz-Date: 20240601T130000Z\r\n" PAYLOAD GOOD_AUTHZ END, -SP_SIGV4_ERR_SKEWED,
	 "RequestTimeTooSkewed"},
	{HEAD "X-Amz-Date: 20240601T130000Z\r\n" PAYLOAD AUTHZ(
		 AWS_AK "/20240601/eu-west-1/s3/aws4_request", "host", SIG0) END,
	 -SP_SIGV4_ERR_WRONG_REGION, "AuthorizationHeaderMalformed"},
	{HEAD DATE GOOD_AUTHZ END, -SP_SIGV4_ERR_NO_CONTENT_SHA256, "InvalidRequest"},
	{HEAD "X-Amz-Date: 20240601T130000Z\r\n" GOOD_AUTHZ END, -SP_SIGV4_ERR_SKEWED,
	 "RequestTimeTooSkewed"},
	/* access keys no client has: where the lab looks the key up, InvalidAccessKeyId */
	{HEAD DATE PAYLOAD AUTHZ("/20240601/us-east-1/s3/aws4_request", "host", SIG0) END,
	 -SP_SIGV4_ERR_BAD_ACCESS_KEY, "InvalidAccessKeyId"},
	{HEAD DATE PAYLOAD AUTHZ(A129 "/20240601/us-east-1/s3/aws4_request", "host", SIG0) END,
	 -SP_SIGV4_ERR_BAD_ACCESS_KEY, "InvalidAccessKeyId"},
	{HEAD DATE PAYLOAD AUTHZ("AKIA\xe9/20240601/us-east-1/s3/aws4_request", "host", SIG0) END,
	 -SP_SIGV4_ERR_BAD_ACCESS_KEY, "InvalidAccessKeyId"},
	{HEAD DATE AUTHZ(A129 "/20240601/us-east-1/s3/aws4_request", "host", SIG0) END,
	 -SP_SIGV4_ERR_NO_CONTENT_SHA256, "InvalidRequest"},
};

static void
test_parse_errors(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		size_t len = strlen(parse_cases[i].head);

		print_message("case %zu\n", i);
		assert_int_equal(http(parse_cases[i].head, len), (int)len);
		assert_int_equal(sp_sigv4_parse_auth(parse_cases[i].head, len, &req, "us-east-1",
						     T_20240601, &auth),
				 parse_cases[i].rc);
		assert_string_equal(sp_sigv4_s3_code(parse_cases[i].rc), parse_cases[i].code);
	}
}

static void
test_oversized_fields(void **state)
{
	char big[4096];
	size_t len;

	(void)state;
	/* a Credential of 2000 bytes */
	memset(big, 'A', 2000);
	memcpy(big + 2000, "/20240601/us-east-1/s3/aws4_request", 36);
	len = load(LIT(HEAD DATE PAYLOAD GOOD_AUTHZ END));
	replace(&len, CRED, big);
	assert_int_equal(http(work, len), (int)len);
	assert_int_equal(sp_sigv4_parse_auth(work, len, &req, "us-east-1", T_20240601, &auth),
			 -SP_SIGV4_ERR_FIELD_TOO_LONG);
	assert_string_equal(sp_sigv4_s3_code(-SP_SIGV4_ERR_FIELD_TOO_LONG),
			    "AuthorizationHeaderMalformed");
	/* a region of 100 bytes: wrong, or too long to keep when any region is taken */
	memset(big, 'r', 100);
	big[100] = '\0';
	len = load(LIT(HEAD DATE PAYLOAD GOOD_AUTHZ END));
	replace(&len, "us-east-1", big);
	assert_int_equal(http(work, len), (int)len);
	assert_int_equal(sp_sigv4_parse_auth(work, len, &req, "us-east-1", T_20240601, &auth),
			 -SP_SIGV4_ERR_WRONG_REGION);
	assert_int_equal(sp_sigv4_parse_auth(work, len, &req, NULL, T_20240601, &auth),
			 -SP_SIGV4_ERR_FIELD_TOO_LONG);
	/* any region when region is NULL */
	len = load(LIT(HEAD DATE PAYLOAD GOOD_AUTHZ END));
	replace(&len, "us-east-1", "eu-central-2");
	assert_int_equal(http(work, len), (int)len);
	assert_int_equal(sp_sigv4_parse_auth(work, len, &req, NULL, T_20240601, &auth), 0);
	assert_string_equal(auth.region, "eu-central-2");
	/* SignedHeaders of 3000 bytes */
	memset(big, 'a', 3000);
	big[3000] = '\0';
	len = load(LIT(HEAD DATE PAYLOAD GOOD_AUTHZ END));
	replace(&len, "host;x-amz-content-sha256;x-amz-date", big);
	assert_int_equal(http(work, len), (int)len);
	assert_int_equal(sp_sigv4_parse_auth(work, len, &req, "us-east-1", T_20240601, &auth),
			 -SP_SIGV4_ERR_FIELD_TOO_LONG);
	/* a signature of 3000 bytes: SignatureDoesNotMatch, where the lab says it */
	len = load(LIT(HEAD DATE PAYLOAD GOOD_AUTHZ END));
	replace(&len, SIG0, big);
	assert_int_equal(check(work, len, T_20240601), -SP_SIGV4_ERR_BAD_SIGNATURE);
	/* a payload hash of 3000 bytes */
	len = load(LIT(HEAD DATE PAYLOAD GOOD_AUTHZ END));
	replace(&len, "UNSIGNED-PAYLOAD", big);
	assert_int_equal(check(work, len, T_20240601), -SP_SIGV4_ERR_BAD_CONTENT_SHA256);
}

static void
test_verify_errors(void **state)
{
	static const struct {
		const char *from, *to;
		int rc;
		const char *code;
	} cases[] = {
		{SIG0, "0000", -SP_SIGV4_ERR_BAD_SIGNATURE, "SignatureDoesNotMatch"},
		{SIG0, SIG0 "0", -SP_SIGV4_ERR_BAD_SIGNATURE, "SignatureDoesNotMatch"},
		{SIG0, "", -SP_SIGV4_ERR_BAD_SIGNATURE, "SignatureDoesNotMatch"},
		{"Signature=00", "Signature=0A", -SP_SIGV4_ERR_BAD_SIGNATURE,
		 "SignatureDoesNotMatch"},
		{"Signature=00", "Signature=0g", -SP_SIGV4_ERR_BAD_SIGNATURE,
		 "SignatureDoesNotMatch"},
		{"Signature=00", "Signature=\xe9\xe9", -SP_SIGV4_ERR_BAD_SIGNATURE,
		 "SignatureDoesNotMatch"},
		{SIG0, SIG0, -SP_SIGV4_ERR_SIGNATURE_MISMATCH, "SignatureDoesNotMatch"},
		{"SignedHeaders=host;", "SignedHeaders=host;x-amz-meta-absent;",
		 -SP_SIGV4_ERR_SIGNED_HEADER_MISSING, "AccessDenied"},
		{"SignedHeaders=host;", "SignedHeaders=host;;", -SP_SIGV4_ERR_SIGNED_HEADER_MISSING,
		 "AccessDenied"},
		{"SignedHeaders=host;x-amz-content-sha256;x-amz-date",
		 "SignedHeaders=", -SP_SIGV4_ERR_SIGNED_HEADER_MISSING, "AccessDenied"},
		{"SignedHeaders=host;", "SignedHeaders=ho\tst;",
		 -SP_SIGV4_ERR_SIGNED_HEADER_MISSING, "AccessDenied"},
		{"SignedHeaders=host;", "SignedHeaders=host;x-amz-date:;",
		 -SP_SIGV4_ERR_SIGNED_HEADER_MISSING, "AccessDenied"},
		/* forged: the signature decides first, as in the lab */
		{"SignedHeaders=host;x-amz-content-sha256;x-amz-date",
		 "SignedHeaders=x-amz-date;host;x-amz-content-sha256",
		 -SP_SIGV4_ERR_SIGNATURE_MISMATCH, "SignatureDoesNotMatch"},
		{"SignedHeaders=host;", "SignedHeaders=", -SP_SIGV4_ERR_SIGNATURE_MISMATCH,
		 "SignatureDoesNotMatch"},
		{"SignedHeaders=host;", "SignedHeaders=HOST;", -SP_SIGV4_ERR_SIGNATURE_MISMATCH,
		 "SignatureDoesNotMatch"},
		/* the payload hash's form, before the canonical request (the lab's order) */
		{"UNSIGNED-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
		 -SP_SIGV4_ERR_STREAMING_PAYLOAD, "NotImplemented"},
		{"UNSIGNED-PAYLOAD", "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
		 -SP_SIGV4_ERR_STREAMING_PAYLOAD, "NotImplemented"},
		{"UNSIGNED-PAYLOAD", "unsigned-payload", -SP_SIGV4_ERR_BAD_CONTENT_SHA256,
		 "InvalidArgument"},
		{"UNSIGNED-PAYLOAD",
		 "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
		 -SP_SIGV4_ERR_BAD_CONTENT_SHA256, "InvalidArgument"},
		{"UNSIGNED-PAYLOAD",
		 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
		 -SP_SIGV4_ERR_BAD_CONTENT_SHA256, "InvalidArgument"},
		{"X-Amz-Content-SHA256: UNSIGNED-PAYLOAD",
		 "X-Amz-Content-SHA256:", -SP_SIGV4_ERR_BAD_CONTENT_SHA256, "InvalidArgument"},
		{"X-Amz-Content-SHA256: UNSIGNED-PAYLOAD\r\n",
		 "X-Amz-Content-SHA256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD\r\nx-amz-meta-a: 1\r\n",
		 -SP_SIGV4_ERR_STREAMING_PAYLOAD, "NotImplemented"},
		{"UNSIGNED-PAYLOAD", SHA_EMPTY, -SP_SIGV4_ERR_SIGNATURE_MISMATCH,
		 "SignatureDoesNotMatch"},
	};
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = load(LIT(HEAD DATE PAYLOAD GOOD_AUTHZ END));
		replace(&len, cases[i].from, cases[i].to);
		print_message("%s -> %s\n", cases[i].from, cases[i].to);
		assert_int_equal(check(work, len, T_20240601), cases[i].rc);
		assert_string_equal(sp_sigv4_s3_code(cases[i].rc), cases[i].code);
	}
}

/* Signed right, refused all the same (the lab would take them). */
static void
test_authentic_but_refused(void **state)
{
	static const struct {
		const char *head;
		const char *from, *to;
		int rc;
	} cases[] = {
		{HEAD DATE PAYLOAD GOOD_AUTHZ END, "", "", 0},
		{HEAD DATE PAYLOAD GOOD_AUTHZ END,
		 "SignedHeaders=host;x-amz-content-sha256;x-amz-date",
		 "SignedHeaders=x-amz-content-sha256;x-amz-date", -SP_SIGV4_ERR_HOST_NOT_SIGNED},
		{HEAD DATE PAYLOAD GOOD_AUTHZ END,
		 "SignedHeaders=host;x-amz-content-sha256;x-amz-date",
		 "SignedHeaders=x-amz-date;host", -SP_SIGV4_ERR_BAD_SIGNED_HEADERS},
		{HEAD DATE PAYLOAD GOOD_AUTHZ END,
		 "SignedHeaders=host;x-amz-content-sha256;x-amz-date",
		 "SignedHeaders=Host;x-amz-date", -SP_SIGV4_ERR_BAD_SIGNED_HEADERS},
		{HEAD DATE PAYLOAD GOOD_AUTHZ END,
		 "SignedHeaders=host;x-amz-content-sha256;x-amz-date",
		 "SignedHeaders=host;host;x-amz-date", -SP_SIGV4_ERR_BAD_SIGNED_HEADERS},
		{HEAD DATE PAYLOAD GOOD_AUTHZ END,
		 "SignedHeaders=host;x-amz-content-sha256;x-amz-date", "SignedHeaders=x-amz-date",
		 -SP_SIGV4_ERR_HOST_NOT_SIGNED},
		{"GET /b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" AWS_AK
		 "%2F20240601%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240601T120000Z"
		 "&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=" SIG0 " HTTP/1.1\r\n"
		 "Host: h\r\n" END,
		 "", "", 0},
		{"GET /b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" AWS_AK
		 "%2F20240601%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240601T120000Z"
		 "&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=" SIG0 " HTTP/1.1\r\n"
		 "Host: h\r\n" END,
		 "X-Amz-Expires=60", "X-Amz-Expires=60&X-Amz-Expires=600",
		 -SP_SIGV4_ERR_DUP_QUERY_PARAM},
		{"GET /b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" AWS_AK
		 "%2F20240601%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240601T120000Z"
		 "&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=" SIG0 " HTTP/1.1\r\n"
		 "Host: h\r\n" END,
		 "&X-Amz-Signature=", "&X-Amz-Signature=" SIG0 "&X-Amz-Signature=",
		 -SP_SIGV4_ERR_DUP_QUERY_PARAM},
		{"GET /b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" AWS_AK
		 "%2F20240601%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240601T120000Z"
		 "&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=" SIG0 " HTTP/1.1\r\n"
		 "Host: h\r\n" END,
		 "X-Amz-SignedHeaders=host",
		 "X-Amz-SignedHeaders=", -SP_SIGV4_ERR_SIGNED_HEADER_MISSING},
	};
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		print_message("case %zu\n", i);
		len = load(cases[i].head, strlen(cases[i].head));
		if (cases[i].from[0] != '\0')
			replace(&len, cases[i].from, cases[i].to);
		if (cases[i].rc == -SP_SIGV4_ERR_SIGNED_HEADER_MISSING) {
			assert_int_equal(check(work, len, T_20240601), cases[i].rc);
			continue;
		}
		resign(len);
		assert_int_equal(check(work, len, T_20240601), cases[i].rc);
		if (cases[i].rc != 0) {
			/* the same, forged: SignatureDoesNotMatch as in the lab */
			char *s = NULL, *t = work;

			while ((t = strstr(t, "Signature=")) != NULL)
				s = t++ + 10; /* the last one counts */
			*s = *s == '0' ? '1' : '0';
			assert_int_equal(check(work, len, T_20240601),
					 -SP_SIGV4_ERR_SIGNATURE_MISMATCH);
		}
	}
	assert_string_equal(sp_sigv4_s3_code(-SP_SIGV4_ERR_HOST_NOT_SIGNED), "AccessDenied");
	assert_string_equal(sp_sigv4_s3_code(-SP_SIGV4_ERR_DUP_QUERY_PARAM),
			    "AuthorizationQueryParametersError");
	assert_string_equal(sp_sigv4_s3_code(-SP_SIGV4_ERR_BAD_SIGNED_HEADERS),
			    "AuthorizationHeaderMalformed");
}

#define PRESIGNED                                                                                  \
	"GET /b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=" AWS_AK                       \
	"%2F20240601%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20240601T120000Z"                  \
	"&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=" SIG0 " HTTP/1.1\r\n"         \
	"Host: h\r\n" END

static void
test_presigned_errors(void **state)
{
	static const struct {
		const char *from, *to;
		int rc; /* of sp_sigv4_parse_auth */
	} cases[] = {
		{"", "", 0},
		{"X-Amz-Algorithm=AWS4-HMAC-SHA256&", "", -SP_SIGV4_ERR_QUERY_PARAMS},
		{"&X-Amz-Date=20240601T120000Z", "", -SP_SIGV4_ERR_QUERY_PARAMS},
		{"&X-Amz-Expires=60", "", -SP_SIGV4_ERR_QUERY_PARAMS},
		{"&X-Amz-SignedHeaders=host", "", -SP_SIGV4_ERR_QUERY_PARAMS},
		{"&X-Amz-Signature=" SIG0, "", -SP_SIGV4_ERR_QUERY_PARAMS},
		{"&X-Amz-Credential=", "&X-Amz-Credentials=", -SP_SIGV4_ERR_QUERY_PARAMS},
		{"X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-HMAC-SHA1",
		 -SP_SIGV4_ERR_QUERY_PARAMS},
		{"X-Amz-Algorithm=AWS4-HMAC-SHA256",
		 "X-Amz-Algorithm=", -SP_SIGV4_ERR_QUERY_PARAMS},
		{"X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-Algorithm=AWS4-HMAC-SHA256%00",
		 -SP_SIGV4_ERR_QUERY_PARAMS},
		/* names and values are decoded first, as the lab does */
		{"X-Amz-Algorithm=AWS4-HMAC-SHA256", "X-Amz-%41lgorithm=AWS4%2DHMAC-SHA256", 0},
		{"?X-Amz-Algorithm", "?AWSAccessKeyId=a&Signature=b&X-Amz-Algorithm",
		 -SP_SIGV4_ERR_SIGV2},
		{"&X-Amz-Expires=60", "&X-Amz-Expires=0", -SP_SIGV4_ERR_BAD_EXPIRES},
		{"X-Amz-Date=20240601T120000Z", "X-Amz-Date=20240601T12000",
		 -SP_SIGV4_ERR_BAD_DATE},
		{"X-Amz-Date=20240601T120000Z", "X-Amz-Date=20240601T120000Z%20%20%20%20%20",
		 -SP_SIGV4_ERR_BAD_DATE},
		{"%2F20240601%2F", "%2F20240602%2F", -SP_SIGV4_ERR_CREDENTIAL_DATE},
		{"%2Fus-east-1%2F", "%2Fus-west-2%2F", -SP_SIGV4_ERR_WRONG_REGION},
		{"%2Fs3%2F", "%2Fs4%2F", -SP_SIGV4_ERR_WRONG_SERVICE},
		{"%2Faws4_request", "%2Faws4_request%2F", -SP_SIGV4_ERR_BAD_CREDENTIAL},
		{"%2Faws4_request", "/aws4_request", 0},
		/* the Authorization header does not count once the query is presigned */
		{"Host: h\r\n", "Host: h\r\nAuthorization: AWS4-HMAC-SHA512\r\n", 0},
		{"X-Amz-Date=20240601T120000Z", "X-Amz-Date=20240601T121501Z",
		 -SP_SIGV4_ERR_NOT_YET_VALID},
		{"X-Amz-Date=20240601T120000Z", "X-Amz-Date=20240601T115859Z",
		 -SP_SIGV4_ERR_EXPIRED},
		/* a payload hash in the query counts */
		{"&X-Amz-Expires", "&X-Amz-Content-Sha256=" SHA_EMPTY "&X-Amz-Expires", 0},
	};
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		len = load(LIT(PRESIGNED));
		if (cases[i].from[0] != '\0')
			replace(&len, cases[i].from, cases[i].to);
		print_message("%s -> %s\n", cases[i].from, cases[i].to);
		assert_int_equal(http(work, len), (int)len);
		assert_int_equal(
			sp_sigv4_parse_auth(work, len, &req, "us-east-1", T_20240601, &auth),
			cases[i].rc);
	}
	assert_string_equal(auth.payload, SHA_EMPTY);
	assert_false(auth.payload_unsigned);
	/* presigned with any payload hash in the query is signed with it */
	resign(len);
	assert_int_equal(check(work, len, T_20240601), 0);
}

/* Bytes sp_http never lets through, put in after parsing (spans unchanged). */
static void
test_bad_encodings(void **state)
{
	static const struct {
		const char *head, *from, *to;
		int rc;
	} cases[] = {
		{HEAD DATE PAYLOAD GOOD_AUTHZ END, "/b/k", "/%zz", -SP_SIGV4_ERR_BAD_ENCODING},
		{HEAD DATE PAYLOAD GOOD_AUTHZ END, "/b/k", "/b%4", -SP_SIGV4_ERR_BAD_ENCODING},
		{HEAD DATE PAYLOAD GOOD_AUTHZ END, "/b/k", "/b/%", -SP_SIGV4_ERR_BAD_ENCODING},
		{HEAD DATE PAYLOAD GOOD_AUTHZ END, "/b/k", "/b\0k", -SP_SIGV4_ERR_BAD_ENCODING},
		{HEAD DATE PAYLOAD GOOD_AUTHZ END, "/b/k", "/b\xe9k", -SP_SIGV4_ERR_BAD_ENCODING},
		{HEAD DATE PAYLOAD GOOD_AUTHZ END, "/b/k", "/b k", -SP_SIGV4_ERR_BAD_ENCODING},
		{HEAD DATE PAYLOAD GOOD_AUTHZ END, "/b/k", "/b\x7fk", -SP_SIGV4_ERR_BAD_ENCODING},
		{"GET /b?a=%41 HTTP/1.1\r\nHost: h\r\n" DATE PAYLOAD GOOD_AUTHZ END, "a=%41",
		 "a=%g1", -SP_SIGV4_ERR_BAD_ENCODING},
		{"GET /b?a=%41 HTTP/1.1\r\nHost: h\r\n" DATE PAYLOAD GOOD_AUTHZ END, "a=%41",
		 "%4=1", -SP_SIGV4_ERR_BAD_ENCODING},
		{HEAD DATE PAYLOAD GOOD_AUTHZ END, "s3.lab.example", "s3.lab\nexample",
		 -SP_SIGV4_ERR_BAD_ENCODING},
		{HEAD DATE PAYLOAD GOOD_AUTHZ END, "s3.lab.example", "s3.lab\0example",
		 -SP_SIGV4_ERR_BAD_ENCODING},
		{HEAD DATE PAYLOAD GOOD_AUTHZ END, "GET", "G T", -SP_SIGV4_ERR_BAD_ENCODING},
		/* sent bytes of an unsigned header do not matter */
		{HEAD DATE PAYLOAD GOOD_AUTHZ "X-Other: abc\r\n" END, "abc", "a\0c",
		 -SP_SIGV4_ERR_SIGNATURE_MISMATCH},
	};
	size_t i, len;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t key[32] = {0};
		char *p;

		len = load(cases[i].head, strlen(cases[i].head));
		assert_int_equal(http(work, len), (int)len);
		assert_int_equal(
			sp_sigv4_parse_auth(work, len, &req, "us-east-1", T_20240601, &auth), 0);
		p = memmem(work, len, cases[i].from, strlen(cases[i].from));
		assert_non_null(p);
		memcpy(p, cases[i].to, strlen(cases[i].from));
		print_message("case %zu\n", i);
		assert_int_equal(sp_sigv4_verify(work, len, &req, &auth, key), cases[i].rc);
	}
	/* in a presigned parameter: refused while parsing */
	len = load(LIT(PRESIGNED));
	assert_int_equal(http(work, len), (int)len);
	memcpy(strstr(work, "%2F20240601"), "%zz", 3);
	assert_int_equal(sp_sigv4_parse_auth(work, len, &req, "us-east-1", T_20240601, &auth),
			 -SP_SIGV4_ERR_BAD_ENCODING);
	len = load(LIT(PRESIGNED));
	assert_int_equal(http(work, len), (int)len);
	strstr(work, "Signature=00")[10 + 63] = '%'; /* "%" then the end of the query */
	assert_int_equal(sp_sigv4_parse_auth(work, len, &req, "us-east-1", T_20240601, &auth),
			 -SP_SIGV4_ERR_BAD_ENCODING);
	assert_string_equal(sp_sigv4_s3_code(-SP_SIGV4_ERR_BAD_ENCODING), "InvalidRequest");
}

/* The request as sp_http left it, then changed by a buggy caller: spans are checked. */
static void
test_bad_spans(void **state)
{
	uint8_t key[32] = {0};
	struct sp_http_req good;
	size_t len = load(LIT(HEAD DATE PAYLOAD GOOD_AUTHZ END));

	(void)state;
	assert_int_equal(http(work, len), (int)len);
	good = req;
	assert_int_equal(sp_sigv4_parse_auth(work, len, &req, "us-east-1", T_20240601, &auth), 0);
	req.path.off = (uint32_t)len + 5;
	assert_int_equal(sp_sigv4_verify(work, len, &req, &auth, key), -SP_SIGV4_ERR_BAD_REQUEST);
	req = good;
	req.method_tok.len = UINT32_MAX;
	assert_int_equal(sp_sigv4_verify(work, len, &req, &auth, key), -SP_SIGV4_ERR_BAD_REQUEST);
	req = good;
	req.headers[0].value.len = UINT32_MAX - 3;
	assert_int_equal(sp_sigv4_verify(work, len, &req, &auth, key), -SP_SIGV4_ERR_BAD_REQUEST);
	req = good;
	memset(&req.headers[req.n_headers], 0,
	       sizeof(req.headers[0]) * (SP_HTTP_MAX_HEADERS - req.n_headers));
	req.n_headers = UINT16_MAX; /* clamped to the array */
	assert_int_equal(sp_sigv4_verify(work, len, &req, &auth, key),
			 -SP_SIGV4_ERR_SIGNATURE_MISMATCH);
	req = good;
	req.has_query = true;
	req.query.off = (uint32_t)len;
	req.query.len = 1;
	assert_int_equal(sp_sigv4_parse_auth(work, len, &req, "us-east-1", T_20240601, &auth),
			 -SP_SIGV4_ERR_BAD_REQUEST);
	req = good;
	req.hdr[SP_HTTP_HDR_AUTHORIZATION].off = UINT32_MAX;
	assert_int_equal(sp_sigv4_parse_auth(work, len, &req, "us-east-1", T_20240601, &auth),
			 -SP_SIGV4_ERR_BAD_REQUEST);
	req = good;
	req.hdr[SP_HTTP_HDR_X_AMZ_CONTENT_SHA256].len = 100000;
	assert_int_equal(sp_sigv4_parse_auth(work, len, &req, "us-east-1", T_20240601, &auth),
			 -SP_SIGV4_ERR_BAD_REQUEST);
	assert_int_equal(sp_sigv4_parse_auth(NULL, 0, &req, "us-east-1", 0, &auth),
			 -SP_SIGV4_ERR_BAD_REQUEST);
	assert_int_equal(sp_sigv4_verify(work, len, &good, &auth, NULL), -SP_SIGV4_ERR_BAD_REQUEST);
	/* an auth not made by sp_sigv4_parse_auth */
	memset(&auth, 0xa5, sizeof(auth));
	assert_int_equal(sp_sigv4_verify(work, len, &good, &auth, key), -SP_SIGV4_ERR_BAD_REQUEST);
	assert_int_equal(sp_sigv4_string_to_sign(&auth, "x", 1, work, 100),
			 -SP_SIGV4_ERR_BAD_REQUEST);
}

/* ---- counts and sizes ---------------------------------------------------------------------------
 */

static void
test_many_headers(void **state)
{
	char names[2048] = "host;x-amz-content-sha256;x-amz-date", line[64];
	size_t len;
	int i;

	(void)state;
	/* the most header lines sp_http takes (64), 60 of them signed x-amz-meta-* */
	len = (size_t)snprintf(work, sizeof(work), HEAD);
	for (i = 0; i < 60; i++) {
		len += (size_t)snprintf(work + len, sizeof(work) - len, "x-amz-meta-%02d: v %d\r\n",
					i, i);
		snprintf(line, sizeof(line), ";x-amz-meta-%02d", i);
		strcat(names, line);
	}
	len += (size_t)snprintf(work + len, sizeof(work) - len,
				DATE PAYLOAD "Authorization: AWS4-HMAC-SHA256 Credential=" CRED
					     ", SignedHeaders=%s, Signature=" SIG0 "\r\n" END,
				names);
	assert_int_equal(http(work, len), (int)len);
	assert_int_equal(req.n_headers, SP_HTTP_MAX_HEADERS);
	resign(len);
	assert_int_equal(check(work, len, T_20240601), 0);
	/* one signed header more than there are */
	replace(&len, ";x-amz-meta-59,", ";x-amz-meta-59;x-amz-meta-60,");
	assert_int_equal(check(work, len, T_20240601), -SP_SIGV4_ERR_SIGNED_HEADER_MISSING);
}

static void
test_query_bounds(void **state)
{
	char q[16384];
	size_t len, i;
	int n;

	(void)state;
	/* SP_SIGV4_QUERY_PAIRS_MAX parameters: fine; one more: too big */
	for (i = 0; i < SP_SIGV4_QUERY_PAIRS_MAX; i++)
		memcpy(q + 2 * i, i + 1 < SP_SIGV4_QUERY_PAIRS_MAX ? "a&" : "a\0", 2);
	n = snprintf(work, sizeof(work), "GET /?%s HTTP/1.1\r\nHost: h\r\n" HDRS_REST, q);
	len = (size_t)n;
	resign(len);
	assert_int_equal(check(work, len, T_20240601), 0);
	replace(&len, "/?a&", "/?a&b&");
	assert_int_equal(check(work, len, T_20240601), -SP_SIGV4_ERR_TOO_BIG);
	/* 6000 bytes that each encode to 3 */
	memset(q, '!', 6000);
	q[6000] = '\0';
	n = snprintf(work, sizeof(work), "GET /?%s HTTP/1.1\r\nHost: h\r\n" HDRS_REST, q);
	assert_int_equal(check(work, (size_t)n, T_20240601), -SP_SIGV4_ERR_TOO_BIG);
	/* a 6000-byte path is streamed: no bound but the caller's buffer */
	n = snprintf(work, sizeof(work), "GET /%s HTTP/1.1\r\nHost: h\r\n" HDRS_REST, q);
	resign((size_t)n);
	assert_int_equal(check(work, (size_t)n, T_20240601), 0);
	assert_string_equal(sp_sigv4_s3_code(-SP_SIGV4_ERR_TOO_BIG), "InvalidRequest");
}

/* ---- random damage: never a crash, never an out-of-bounds read (see the sanitized build) -------
 */

static void
test_random_damage(void **state)
{
	static const char interesting[] = "%&=;,/ \t:0aZ\xe9\xff\x85\xa0";
	char creq[8192];
	unsigned int it, k;
	size_t i;

	(void)state;
	for (i = 0; i < N_VECTORS; i++) {
		const struct vec *v = &vectors[i];

		for (it = 0; it < 3000; it++) {
			size_t len = load(v->head, v->len);
			unsigned int edits = 1 + (unsigned int)(rnd() % 4);
			uint8_t key[32] = {1};
			int rc;

			for (k = 0; k < edits && len > 4; k++) {
				size_t p = (size_t)(rnd() % (len - 4));

				switch (rnd() % 4) {
				case 0:
					work[p] = (char)rnd();
					break;
				case 1:
					work[p] = interesting[rnd() % (sizeof(interesting) - 1)];
					break;
				case 2:
					memmove(work + p, work + p + 1, len - p - 1);
					len--;
					break;
				default:
					memmove(work + p + 1, work + p, len - p);
					work[p] = interesting[rnd() % (sizeof(interesting) - 1)];
					len++;
					break;
				}
			}
			/* exactly len bytes, nothing after them to read by mistake */
			memmove(work + sizeof(work) - len, work, len);
			{
				const char *b = work + sizeof(work) - len;

				if (http(b, len) <= 0)
					continue;
				rc = sp_sigv4_parse_auth(
					b, len, &req, rnd() % 2 ? "us-east-1" : NULL,
					v->now + (int64_t)(rnd() % 2000) - 1000, &auth);
				assert_true(rc <= 0 && rc > -SP_SIGV4_ERR_MAX);
				rc = sp_sigv4_verify(b, len, &req, &auth, key);
				assert_true(rc < 0 && rc > -SP_SIGV4_ERR_MAX);
				rc = sp_sigv4_canonical_request(b, len, &req, &auth, creq,
								1 + rnd() % sizeof(creq));
				assert_true(rc > -SP_SIGV4_ERR_MAX);
			}
		}
	}
}

static void
test_error_table(void **state)
{
	static const char *const lab_codes[] = {
		"AccessDenied",
		"AuthorizationHeaderMalformed",
		"AuthorizationQueryParametersError",
		"InternalError",
		"InvalidAccessKeyId",
		"InvalidArgument",
		"InvalidRequest",
		"NotImplemented",
		"RequestTimeTooSkewed",
		"SignatureDoesNotMatch",
		"XAmzContentSHA256Mismatch",
	};
	int e, f;

	(void)state;
	assert_string_equal(sp_sigv4_error_name(0), "none");
	for (e = 1; e < SP_SIGV4_ERR_MAX; e++) {
		const char *code = sp_sigv4_s3_code(-e);
		size_t k;

		assert_non_null(sp_sigv4_error_name(e));
		assert_string_equal(sp_sigv4_error_name(e), sp_sigv4_error_name(-e));
		assert_true(strlen(sp_sigv4_error_name(e)) > 0);
		for (f = 1; f < e; f++)
			assert_string_not_equal(sp_sigv4_error_name(e), sp_sigv4_error_name(f));
		/* every code is one the lab's S3 error table (s3front.py ERRORS) has */
		for (k = 0; k < sizeof(lab_codes) / sizeof(lab_codes[0]); k++)
			if (strcmp(code, lab_codes[k]) == 0)
				break;
		assert_true(k < sizeof(lab_codes) / sizeof(lab_codes[0]));
	}
	assert_string_equal(sp_sigv4_error_name(SP_SIGV4_ERR_MAX), "unknown");
	assert_string_equal(sp_sigv4_error_name(-1000), "unknown");
	assert_string_equal(sp_sigv4_error_name(INT32_MIN), "unknown");
	assert_string_equal(sp_sigv4_s3_code(SP_SIGV4_ERR_MAX), "InternalError");
	assert_null(sp_sigv4_s3_message(-SP_SIGV4_ERR_SIGNATURE_MISMATCH));
	assert_null(sp_sigv4_s3_message(12345));
	assert_string_equal(sp_sigv4_s3_message(-SP_SIGV4_ERR_NO_CONTENT_SHA256),
			    "Missing required header for this request: x-amz-content-sha256");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signing_key_aws_doc),
		cmocka_unit_test(test_vectors_verify),
		cmocka_unit_test(test_aws_get_range_steps),
		cmocka_unit_test(test_aws_presigned_steps),
		cmocka_unit_test(test_payload_check),
		cmocka_unit_test(test_canonical_uri),
		cmocka_unit_test(test_canonical_query),
		cmocka_unit_test(test_canonical_headers),
		cmocka_unit_test(test_tamper_every_signed_byte),
		cmocka_unit_test(test_tamper_date_and_names),
		cmocka_unit_test(test_skew),
		cmocka_unit_test(test_presigned_window),
		cmocka_unit_test(test_presigned_expires_values),
		cmocka_unit_test(test_dates),
		cmocka_unit_test(test_parse_errors),
		cmocka_unit_test(test_oversized_fields),
		cmocka_unit_test(test_verify_errors),
		cmocka_unit_test(test_authentic_but_refused),
		cmocka_unit_test(test_presigned_errors),
		cmocka_unit_test(test_bad_encodings),
		cmocka_unit_test(test_bad_spans),
		cmocka_unit_test(test_many_headers),
		cmocka_unit_test(test_query_bounds),
		cmocka_unit_test(test_random_damage),
		cmocka_unit_test(test_error_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
