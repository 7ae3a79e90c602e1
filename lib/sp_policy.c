/* Client policies: S3 action of a request, bucket patterns, the per-request check. */
#include "sp_policy.h"

#include <errno.h>
#include <string.h>

static const char *const action_names[] = {
#define SP_POLICY_ACT_NAME(e, s) s,
	SP_POLICY_ACTIONS(SP_POLICY_ACT_NAME)
#undef SP_POLICY_ACT_NAME
};

int
sp_policy_action_parse(const char *name)
{
	unsigned int i;

	for (i = 0; i < SP_POLICY_ACT_OTHER; i++)
		if (strcmp(name, action_names[i]) == 0)
			return (int)i;
	return -1;
}

const char *
sp_policy_action_name(unsigned int a)
{
	return a < SP_POLICY_ACT_MAX ? action_names[a] : "?";
}

static bool
method_is(const char *m, uint32_t len, const char *name)
{
	return len == strlen(name) && memcmp(m, name, len) == 0;
}

enum sp_policy_action
sp_policy_action_of(const char *method, uint32_t method_len, const char *path, uint32_t path_len,
		    const char **bucket, uint32_t *bucket_len)
{
	uint32_t i, end;
	bool has_key;

	*bucket = path;
	*bucket_len = 0;
	if (path_len == 0 || path[0] != '/')
		return SP_POLICY_ACT_OTHER;
	for (end = 1; end < path_len && path[end] != '/'; end++)
		;
	*bucket = path + 1;
	*bucket_len = end - 1;
	/* "/bucket/" is the bucket; "/bucket/k" an object */
	has_key = end + 1 < path_len;
	for (i = 0; i < *bucket_len; i++)
		if (path[1 + i] == '%') /* an encoded bucket name is no bucket a policy names */
			return SP_POLICY_ACT_OTHER;
	if (*bucket_len == 0) {
		if (path_len == 1 &&
		    (method_is(method, method_len, "GET") || method_is(method, method_len, "HEAD")))
			return SP_POLICY_ACT_LIST_ALL_MY_BUCKETS;
		return SP_POLICY_ACT_OTHER;
	}
	if (has_key) {
		if (method_is(method, method_len, "GET") || method_is(method, method_len, "HEAD"))
			return SP_POLICY_ACT_GET_OBJECT;
		if (method_is(method, method_len, "PUT"))
			return SP_POLICY_ACT_PUT_OBJECT;
		if (method_is(method, method_len, "DELETE"))
			return SP_POLICY_ACT_DELETE_OBJECT;
		return SP_POLICY_ACT_OTHER;
	}
	if (method_is(method, method_len, "GET") || method_is(method, method_len, "HEAD"))
		return SP_POLICY_ACT_LIST_BUCKET;
	if (method_is(method, method_len, "PUT"))
		return SP_POLICY_ACT_CREATE_BUCKET;
	if (method_is(method, method_len, "DELETE"))
		return SP_POLICY_ACT_DELETE_BUCKET;
	return SP_POLICY_ACT_OTHER;
}

int
sp_policy_bucket_check(const char *pattern, const char **why)
{
	size_t i, len = strlen(pattern);

	if (strcmp(pattern, "*") == 0)
		return 0;
	if (len == 0 || len > SP_POLICY_BUCKET_MAX) {
		*why = "a bucket name or prefix is 1 to 63 characters";
		return -EINVAL;
	}
	for (i = 0; i < len; i++) {
		char c = pattern[i];

		if (c == '*' && i == len - 1)
			continue;
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-')) {
			*why = "a bucket name or prefix is a-z 0-9 . - (and one '*' at the end)";
			return -EINVAL;
		}
	}
	return 0;
}

int
sp_policy_add_bucket(struct sp_policy *p, const char *pattern, const char **why)
{
	size_t len;

	if (sp_policy_bucket_check(pattern, why) != 0)
		return -EINVAL;
	if (strcmp(pattern, "*") == 0) {
		p->all_buckets = 1;
		return 0;
	}
	if (p->n_buckets >= SP_POLICY_BUCKETS_MAX) {
		*why = "at most 16 bucket names or prefixes";
		return -ENOSPC;
	}
	len = strlen(pattern);
	memcpy(p->bucket[p->n_buckets], pattern, len + 1);
	p->len[p->n_buckets] = (uint8_t)len;
	p->n_buckets++;
	return 0;
}

bool
sp_policy_allows(const struct sp_policy *p, enum sp_policy_action a, const char *bucket,
		 uint32_t bucket_len)
{
	unsigned int i;

	if ((unsigned int)a >= SP_POLICY_ACT_MAX || !(p->actions & (1u << a)))
		return false;
	if (a == SP_POLICY_ACT_LIST_ALL_MY_BUCKETS || p->all_buckets)
		return true;
	if (a == SP_POLICY_ACT_OTHER && bucket_len == 0)
		return false;
	for (i = 0; i < p->n_buckets; i++) {
		uint32_t n = p->len[i];

		if (n > 0 && p->bucket[i][n - 1] == '*') {
			if (bucket_len >= n - 1 && memcmp(bucket, p->bucket[i], n - 1) == 0)
				return true;
		} else if (bucket_len == n && memcmp(bucket, p->bucket[i], n) == 0) {
			return true;
		}
	}
	return false;
}
