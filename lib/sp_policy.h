/* Client policies: which S3 actions on which buckets an access key may use (no DPDK). */
#ifndef SP_POLICY_H
#define SP_POLICY_H

#include <stdbool.h>
#include <stdint.h>

/*
 * The S3 action a request is, by method and target (IAM's names, without "s3:"). A request of
 * no listed action (POST, OPTIONS, ...) is SP_POLICY_ACT_OTHER, which only "*" grants.
 */
#define SP_POLICY_ACTIONS(X)                                                                       \
	X(GET_OBJECT, "GetObject")		   /* GET, HEAD /bucket/key */                     \
	X(PUT_OBJECT, "PutObject")		   /* PUT /bucket/key */                           \
	X(DELETE_OBJECT, "DeleteObject")	   /* DELETE /bucket/key */                        \
	X(LIST_BUCKET, "ListBucket")		   /* GET, HEAD /bucket */                         \
	X(CREATE_BUCKET, "CreateBucket")	   /* PUT /bucket */                               \
	X(DELETE_BUCKET, "DeleteBucket")	   /* DELETE /bucket */                            \
	X(LIST_ALL_MY_BUCKETS, "ListAllMyBuckets") /* GET, HEAD / */                               \
	X(OTHER, "*")				   /* anything else: only "*" grants it */

enum sp_policy_action {
#define SP_POLICY_ACT_ENUM(e, s) SP_POLICY_ACT_##e,
	SP_POLICY_ACTIONS(SP_POLICY_ACT_ENUM)
#undef SP_POLICY_ACT_ENUM
		SP_POLICY_ACT_MAX
};

#define SP_POLICY_ALL_ACTIONS ((uint16_t)((1u << SP_POLICY_ACT_MAX) - 1))
#define SP_POLICY_BUCKETS_MAX 16 /* bucket names or patterns per policy */
#define SP_POLICY_BUCKET_MAX 63	 /* bytes of a bucket name (S3's limit) */

/*
 * A policy, small and flat so that a worker can keep a copy with each verdict. A bucket entry is
 * a name, or a prefix followed by '*' ("logs-*"); "*" alone is every bucket.
 */
struct sp_policy {
	uint16_t actions; /* bit (1 << enum sp_policy_action) */
	uint8_t n_buckets;
	uint8_t all_buckets; /* "*" was given */
	uint8_t len[SP_POLICY_BUCKETS_MAX];
	char bucket[SP_POLICY_BUCKETS_MAX][SP_POLICY_BUCKET_MAX + 1]; /* NUL-terminated */
};

/* The action name's enum value, or -1 ("*" is not an action name: it is every action). */
int sp_policy_action_parse(const char *name);
const char *sp_policy_action_name(unsigned int a);

/*
 * The action of a request: method as sent (e.g. "GET", len bytes), path the target's path
 * (percent-encoded, as sent). *bucket / *bucket_len: the target's first path segment (empty for
 * "/"). A path that does not start with '/' is OTHER.
 */
enum sp_policy_action sp_policy_action_of(const char *method, uint32_t method_len, const char *path,
					  uint32_t path_len, const char **bucket,
					  uint32_t *bucket_len);

/*
 * Whether a bucket entry is acceptable: "*", or 1..63 characters of a-z 0-9 . - (a name, or a
 * prefix) with at most one '*', at the end. -EINVAL otherwise, with *why set.
 */
int sp_policy_bucket_check(const char *pattern, const char **why);

/* Add one entry (checked as above) / whether the policy grants action on bucket (len bytes,
 * as the request's first path segment; ListAllMyBuckets has no bucket). */
int sp_policy_add_bucket(struct sp_policy *p, const char *pattern, const char **why);
bool sp_policy_allows(const struct sp_policy *p, enum sp_policy_action a, const char *bucket,
		      uint32_t bucket_len);

#endif /* SP_POLICY_H */
