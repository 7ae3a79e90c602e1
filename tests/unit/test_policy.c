/* Unit tests of lib/sp_policy.c: action names, the action of a request, bucket patterns, checks. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sp_policy.h"

static void
test_action_names(void **state)
{
	static const char *const names[] = {"GetObject",       "PutObject",    "DeleteObject",
					    "ListBucket",      "CreateBucket", "DeleteBucket",
					    "ListAllMyBuckets"};
	unsigned int i;

	(void)state;
	assert_int_equal(SP_POLICY_ACT_OTHER, sizeof(names) / sizeof(names[0]));
	for (i = 0; i < SP_POLICY_ACT_OTHER; i++) {
		assert_string_equal(sp_policy_action_name(i), names[i]);
		assert_int_equal(sp_policy_action_parse(names[i]), (int)i);
	}
	assert_string_equal(sp_policy_action_name(SP_POLICY_ACT_OTHER), "*");
	assert_string_equal(sp_policy_action_name(SP_POLICY_ACT_MAX), "?");
	assert_string_equal(sp_policy_action_name(1000), "?");
	/* "*" is every action, not one; names are IAM's, exactly */
	assert_int_equal(sp_policy_action_parse("*"), -1);
	assert_int_equal(sp_policy_action_parse(""), -1);
	assert_int_equal(sp_policy_action_parse("getobject"), -1);
	assert_int_equal(sp_policy_action_parse("GetObject "), -1);
	assert_int_equal(sp_policy_action_parse("s3:GetObject"), -1);
	assert_int_equal(sp_policy_action_parse("GetObjects"), -1);
	assert_int_equal(SP_POLICY_ALL_ACTIONS, (1u << SP_POLICY_ACT_MAX) - 1);
}

struct action_case {
	const char *method, *path;
	enum sp_policy_action want;
	const char *bucket; /* the first path segment reported */
};

static const struct action_case action_cases[] = {
	{"GET", "/", SP_POLICY_ACT_LIST_ALL_MY_BUCKETS, ""},
	{"HEAD", "/", SP_POLICY_ACT_LIST_ALL_MY_BUCKETS, ""},
	{"PUT", "/", SP_POLICY_ACT_OTHER, ""},
	{"DELETE", "/", SP_POLICY_ACT_OTHER, ""},
	{"POST", "/", SP_POLICY_ACT_OTHER, ""},
	{"GET", "/bucket", SP_POLICY_ACT_LIST_BUCKET, "bucket"},
	{"GET", "/bucket/", SP_POLICY_ACT_LIST_BUCKET, "bucket"},
	{"HEAD", "/bucket", SP_POLICY_ACT_LIST_BUCKET, "bucket"},
	{"PUT", "/bucket", SP_POLICY_ACT_CREATE_BUCKET, "bucket"},
	{"PUT", "/bucket/", SP_POLICY_ACT_CREATE_BUCKET, "bucket"},
	{"DELETE", "/bucket", SP_POLICY_ACT_DELETE_BUCKET, "bucket"},
	{"POST", "/bucket", SP_POLICY_ACT_OTHER, "bucket"},
	{"OPTIONS", "/bucket", SP_POLICY_ACT_OTHER, "bucket"},
	{"GET", "/bucket/key", SP_POLICY_ACT_GET_OBJECT, "bucket"},
	{"HEAD", "/bucket/key", SP_POLICY_ACT_GET_OBJECT, "bucket"},
	{"PUT", "/bucket/key", SP_POLICY_ACT_PUT_OBJECT, "bucket"},
	{"DELETE", "/bucket/key", SP_POLICY_ACT_DELETE_OBJECT, "bucket"},
	{"POST", "/bucket/key", SP_POLICY_ACT_OTHER, "bucket"},
	{"PATCH", "/bucket/key", SP_POLICY_ACT_OTHER, "bucket"},
	{"GET", "/bucket/dir/sub/key", SP_POLICY_ACT_GET_OBJECT, "bucket"},
	{"GET", "/bucket/key/", SP_POLICY_ACT_GET_OBJECT, "bucket"},
	{"GET", "/bucket//", SP_POLICY_ACT_GET_OBJECT, "bucket"}, /* key "/" */
	{"GET", "/b/k%20x", SP_POLICY_ACT_GET_OBJECT, "b"},
	/* methods are case-sensitive (RFC 9110): "get" is no GET */
	{"get", "/bucket/key", SP_POLICY_ACT_OTHER, "bucket"},
	{"get", "/", SP_POLICY_ACT_OTHER, ""},
	/* an encoded bucket name is no bucket a policy names */
	{"GET", "/%62ucket/key", SP_POLICY_ACT_OTHER, "%62ucket"},
	{"GET", "/buck%65t", SP_POLICY_ACT_OTHER, "buck%65t"},
	/* an empty first segment is no bucket: only "*" grants it */
	{"GET", "//bucket/key", SP_POLICY_ACT_OTHER, ""},
	{"GET", "//", SP_POLICY_ACT_OTHER, ""},
	/* not origin-form */
	{"OPTIONS", "*", SP_POLICY_ACT_OTHER, ""},
	{"GET", "", SP_POLICY_ACT_OTHER, ""},
	{"GET", "bucket/key", SP_POLICY_ACT_OTHER, ""},
};

static void
test_action_of(void **state)
{
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(action_cases) / sizeof(action_cases[0]); i++) {
		const struct action_case *c = &action_cases[i];
		const char *bucket = NULL;
		uint32_t blen = 12345;
		enum sp_policy_action a;

		a = sp_policy_action_of(c->method, (uint32_t)strlen(c->method), c->path,
					(uint32_t)strlen(c->path), &bucket, &blen);
		if (a != c->want || blen != strlen(c->bucket) ||
		    (blen > 0 && memcmp(bucket, c->bucket, blen) != 0))
			fail_msg("%s %s: action %d bucket \"%.*s\", want %d \"%s\"", c->method,
				 c->path, a, (int)blen, bucket ? bucket : "", c->want, c->bucket);
		/* the bucket span is inside the path given */
		if (blen > 0)
			assert_true(bucket >= c->path &&
				    bucket + blen <= c->path + strlen(c->path));
	}
}

/* The method and path are spans: nothing past their lengths is read. */
static void
test_action_of_spans(void **state)
{
	static const char line[] = "GETX /bucket/keyZZZ";
	const char *bucket;
	uint32_t blen;

	(void)state;
	assert_int_equal(sp_policy_action_of(line, 3, line + 5, 11, &bucket, &blen),
			 SP_POLICY_ACT_GET_OBJECT);
	assert_int_equal(blen, 6);
	assert_memory_equal(bucket, "bucket", 6);
	assert_int_equal(sp_policy_action_of(line, 3, line + 5, 7, &bucket, &blen),
			 SP_POLICY_ACT_LIST_BUCKET);
	assert_int_equal(sp_policy_action_of(line, 4, line + 5, 11, &bucket, &blen),
			 SP_POLICY_ACT_OTHER);
	assert_int_equal(sp_policy_action_of(line, 2, line + 5, 1, &bucket, &blen),
			 SP_POLICY_ACT_OTHER);
}

static void
test_bucket_check(void **state)
{
	static const char *const good[] = {
		"*",
		"a",
		"logs-*",
		"a.b-c",
		"0",
		"a*",
		"2024.logs-*",
		"x-",
		"abcdefghijklmnopqrstuvwxyz0123456789.-abcdefghijklmnopqrstuvwxy", /* 63 */
		"abcdefghijklmnopqrstuvwxyz0123456789.-abcdefghijklmnopqrstuvwx*", /* 63 */
	};
	static const char *const bad_[] = {
		"",
		"A",
		"Logs",
		"a*b",
		"**",
		"*a",
		"a_b",
		"a b",
		"a/b",
		"a%62",
		"é",
		"a\n",
		"logs-**",
		"*.*",
		"a?",
		"a\t",
		"a,b",
		"a:b",
		" a",
		"a*-",
		"abcdefghijklmnopqrstuvwxyz0123456789.-abcdefghijklmnopqrstuvwxyz", /* 64 */
		"abcdefghijklmnopqrstuvwxyz0123456789.-abcdefghijklmnopqrstuvwxy*", /* 64 */
	};
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		const char *why = NULL;

		if (sp_policy_bucket_check(good[i], &why) != 0)
			fail_msg("\"%s\" refused: %s", good[i], why ? why : "?");
	}
	for (i = 0; i < sizeof(bad_) / sizeof(bad_[0]); i++) {
		const char *why = NULL;

		if (sp_policy_bucket_check(bad_[i], &why) != -EINVAL)
			fail_msg("\"%s\" accepted", bad_[i]);
		assert_non_null(why);
		assert_true(strlen(why) > 0);
	}
}

static void
test_add_bucket(void **state)
{
	struct sp_policy p;
	const char *why = NULL;
	char name[8];
	unsigned int i;

	(void)state;
	memset(&p, 0, sizeof(p));
	assert_int_equal(sp_policy_add_bucket(&p, "*", &why), 0);
	assert_int_equal(p.all_buckets, 1);
	assert_int_equal(p.n_buckets, 0); /* "*" takes no entry */
	for (i = 0; i < SP_POLICY_BUCKETS_MAX; i++) {
		snprintf(name, sizeof(name), "b%u", i);
		assert_int_equal(sp_policy_add_bucket(&p, name, &why), 0);
		assert_int_equal(p.n_buckets, i + 1);
		assert_string_equal(p.bucket[i], name);
		assert_int_equal(p.len[i], strlen(name));
	}
	why = NULL;
	assert_int_equal(sp_policy_add_bucket(&p, "one-more", &why), -ENOSPC);
	assert_non_null(why);
	assert_int_equal(p.n_buckets, SP_POLICY_BUCKETS_MAX);
	/* a full policy still takes "*" */
	assert_int_equal(sp_policy_add_bucket(&p, "*", &why), 0);

	memset(&p, 0, sizeof(p));
	why = NULL;
	assert_int_equal(sp_policy_add_bucket(&p, "Bad", &why), -EINVAL);
	assert_non_null(why);
	assert_int_equal(p.n_buckets, 0);
	assert_int_equal(p.all_buckets, 0);
	assert_int_equal(sp_policy_add_bucket(&p, "", &why), -EINVAL);
	assert_int_equal(p.n_buckets, 0);
}

static struct sp_policy
policy(uint16_t actions, const char *const *buckets)
{
	struct sp_policy p;
	const char *why;

	memset(&p, 0, sizeof(p));
	p.actions = actions;
	for (; buckets != NULL && *buckets != NULL; buckets++)
		assert_int_equal(sp_policy_add_bucket(&p, *buckets, &why), 0);
	return p;
}

#define ACT(a) ((uint16_t)(1u << SP_POLICY_ACT_##a))

static bool
allows(const struct sp_policy *p, enum sp_policy_action a, const char *bucket)
{
	return sp_policy_allows(p, a, bucket, (uint32_t)strlen(bucket));
}

static void
test_allows_buckets(void **state)
{
	static const char *const list[] = {"data", "logs-*", "a*", NULL};
	struct sp_policy p = policy(SP_POLICY_ALL_ACTIONS, list);

	(void)state;
	/* names match exactly */
	assert_true(allows(&p, SP_POLICY_ACT_GET_OBJECT, "data"));
	assert_false(allows(&p, SP_POLICY_ACT_GET_OBJECT, "data2"));
	assert_false(allows(&p, SP_POLICY_ACT_GET_OBJECT, "dat"));
	assert_false(allows(&p, SP_POLICY_ACT_GET_OBJECT, "DATA"));
	assert_false(allows(&p, SP_POLICY_ACT_GET_OBJECT, "xdata"));
	/* prefixes match what starts with them, the prefix itself included */
	assert_true(allows(&p, SP_POLICY_ACT_GET_OBJECT, "logs-"));
	assert_true(allows(&p, SP_POLICY_ACT_GET_OBJECT, "logs-2024"));
	assert_false(allows(&p, SP_POLICY_ACT_GET_OBJECT, "logs"));
	assert_false(allows(&p, SP_POLICY_ACT_GET_OBJECT, "xlogs-1"));
	assert_true(allows(&p, SP_POLICY_ACT_GET_OBJECT, "a"));
	assert_true(allows(&p, SP_POLICY_ACT_GET_OBJECT, "abc"));
	assert_false(allows(&p, SP_POLICY_ACT_GET_OBJECT, "b"));
	/* the bucket is a span: bytes past its length do not count */
	assert_true(sp_policy_allows(&p, SP_POLICY_ACT_GET_OBJECT, "data/key", 4));
	assert_false(sp_policy_allows(&p, SP_POLICY_ACT_GET_OBJECT, "data/key", 3));
	/* every action of the policy, each on a bucket */
	assert_true(allows(&p, SP_POLICY_ACT_PUT_OBJECT, "logs-x"));
	assert_true(allows(&p, SP_POLICY_ACT_DELETE_BUCKET, "data"));
	assert_true(allows(&p, SP_POLICY_ACT_OTHER, "data")); /* POST /data, with "*" actions */
	assert_false(allows(&p, SP_POLICY_ACT_OTHER, ""));    /* POST /, no bucket */
	/* listing every bucket needs no bucket */
	assert_true(allows(&p, SP_POLICY_ACT_LIST_ALL_MY_BUCKETS, ""));
}

static void
test_allows_actions(void **state)
{
	static const char *const all[] = {"*", NULL};
	struct sp_policy ro = policy(ACT(GET_OBJECT) | ACT(LIST_BUCKET), all);
	struct sp_policy none = policy(0, all);
	struct sp_policy named = policy((uint16_t)(SP_POLICY_ALL_ACTIONS & ~ACT(OTHER)), all);
	unsigned int a;

	(void)state;
	assert_true(allows(&ro, SP_POLICY_ACT_GET_OBJECT, "any"));
	assert_true(allows(&ro, SP_POLICY_ACT_LIST_BUCKET, "any"));
	assert_false(allows(&ro, SP_POLICY_ACT_PUT_OBJECT, "any"));
	assert_false(allows(&ro, SP_POLICY_ACT_DELETE_OBJECT, "any"));
	assert_false(allows(&ro, SP_POLICY_ACT_LIST_ALL_MY_BUCKETS, ""));
	assert_false(allows(&ro, SP_POLICY_ACT_OTHER, "any"));
	for (a = 0; a < SP_POLICY_ACT_MAX; a++)
		assert_false(allows(&none, (enum sp_policy_action)a, "any"));
	/* every named action is not "*": the rest (POST, ...) stays refused */
	for (a = 0; a < SP_POLICY_ACT_OTHER; a++)
		assert_true(allows(&named, (enum sp_policy_action)a, "any"));
	assert_false(allows(&named, SP_POLICY_ACT_OTHER, "any"));
	/* not an action */
	assert_false(sp_policy_allows(&named, SP_POLICY_ACT_MAX, "any", 3));
	assert_false(sp_policy_allows(&named, (enum sp_policy_action)99, "any", 3));
}

static void
test_allows_no_buckets(void **state)
{
	struct sp_policy p = policy(SP_POLICY_ALL_ACTIONS, NULL);
	unsigned int a;

	(void)state;
	for (a = 0; a < SP_POLICY_ACT_MAX; a++)
		if (a != SP_POLICY_ACT_LIST_ALL_MY_BUCKETS)
			assert_false(allows(&p, (enum sp_policy_action)a, "data"));
	assert_true(allows(&p, SP_POLICY_ACT_LIST_ALL_MY_BUCKETS, ""));
}

/* From a request to a decision, as the worker and the control thread both use them. */
static void
test_requests(void **state)
{
	static const char *const list[] = {"photos", "logs-*", NULL};
	struct sp_policy p = policy(ACT(GET_OBJECT) | ACT(PUT_OBJECT) | ACT(LIST_BUCKET), list);
	static const struct {
		const char *method, *path;
		bool want;
	} cases[] = {
		{"GET", "/photos/cat.jpg", true},   {"HEAD", "/photos/cat.jpg", true},
		{"PUT", "/logs-1/x", true},	    {"GET", "/photos", true},
		{"GET", "/photos/", true},	    {"DELETE", "/photos/cat.jpg", false},
		{"PUT", "/photos", false},	    {"GET", "/", false},
		{"GET", "/other/cat.jpg", false},   {"GET", "/%70hotos/cat.jpg", false},
		{"POST", "/photos/cat.jpg", false}, {"GET", "//photos/cat.jpg", false},
	};
	unsigned int i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *bucket;
		uint32_t blen;
		enum sp_policy_action a = sp_policy_action_of(
			cases[i].method, (uint32_t)strlen(cases[i].method), cases[i].path,
			(uint32_t)strlen(cases[i].path), &bucket, &blen);

		if (sp_policy_allows(&p, a, bucket, blen) != cases[i].want)
			fail_msg("%s %s: %s", cases[i].method, cases[i].path,
				 cases[i].want ? "refused" : "allowed");
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_action_names),	cmocka_unit_test(test_action_of),
		cmocka_unit_test(test_action_of_spans), cmocka_unit_test(test_bucket_check),
		cmocka_unit_test(test_add_bucket),	cmocka_unit_test(test_allows_buckets),
		cmocka_unit_test(test_allows_actions),	cmocka_unit_test(test_allows_no_buckets),
		cmocka_unit_test(test_requests),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
