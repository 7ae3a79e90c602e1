/* Unit tests of lib/sp_nodeauth.c: credential vectors, node keys file formats and refusals. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "sp_nodeauth.h"

/*
 * Expected values made independently with Python's hmac module (as the lab's storage nodes check
 * them, tools/lab/service/svccommon.py node_auth):
 *
 *   def cred(kid, sec, m, p, e):
 *       return "%s:%d:%s" % (kid, e, hmac.new(bytes.fromhex(sec), ("%s\n%s\n%d" % (m, p, e))
 *                                            .encode(), hashlib.sha256).hexdigest())
 */
struct vector {
	const char *key_id, *secret_hex, *method, *path;
	int64_t expires;
	const char *want;
};

static const struct vector vectors[] = {
	{"nodemgr", "0123456789abcdeffedcba98765432100011223344556677", "GET",
	 "/objects/b/dir%252Fa%2520b", 1712346518,
	 "nodemgr:1712346518:9ac693d9e37cd955f7e185eeb97f149e9b971ba52825cd98ada9804e3a3d0f4a"},
	{"frontend", "00ff10ee20dd30cc", "HEAD", "/objects/b/part-00012", 1700000000,
	 "frontend:1700000000:a6034295da2482301290ba73783dc8edf5a0e761091d6a4a44c648308d8b3fac"},
	{"k.1-x_Y", "a5", "PUT", "/", 0,
	 "k.1-x_Y:0:3d2570be1131134c831ffab6befccd6abc1a4e50512da50e7e3c500de6d6e3ae"},
};

static char dir[] = "/tmp/sp-nodeauth-XXXXXX";
static char path[64];

static int
setup(void **state)
{
	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/node.keys", dir);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	unlink(path);
	return rmdir(dir);
}

/* path := text with mode (exactly, whatever the umask). */
static const char *
keys_file(const char *text, mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
	return path;
}

static size_t
unhex(const char *s, uint8_t *out)
{
	size_t n = strlen(s) / 2;

	for (size_t i = 0; i < n; i++) {
		unsigned int b;

		assert_int_equal(sscanf(s + 2 * i, "%2x", &b), 1);
		out[i] = (uint8_t)b;
	}
	return n;
}

/* sp_nodeauth_format gives exactly the Python vectors; the length returned is strlen. */
static void
test_format_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
		const struct vector *v = &vectors[i];
		uint8_t secret[SP_NODEAUTH_SECRET_MAX];
		size_t len = unhex(v->secret_hex, secret);
		char out[160];
		int n = sp_nodeauth_format(secret, len, v->key_id, v->method, v->path,
					   strlen(v->path), v->expires, out, sizeof(out));

		assert_int_equal(n, (int)strlen(v->want));
		assert_string_equal(out, v->want);
	}
}

/* Only path_len bytes of the path are signed (the locator's path is not NUL-terminated there). */
static void
test_format_path_len(void **state)
{
	const struct vector *v = &vectors[1];
	uint8_t secret[SP_NODEAUTH_SECRET_MAX];
	size_t len = unhex(v->secret_hex, secret);
	char p[64], out[160];

	(void)state;
	snprintf(p, sizeof(p), "%s?x-id=GetObject", v->path);
	assert_int_equal(sp_nodeauth_format(secret, len, v->key_id, v->method, p, strlen(v->path),
					    v->expires, out, sizeof(out)),
			 (int)strlen(v->want));
	assert_string_equal(out, v->want);
}

static void
test_format_refusals(void **state)
{
	static char long_path[SP_NODEAUTH_PATH_MAX + 2];
	const struct vector *v = &vectors[0];
	uint8_t secret[SP_NODEAUTH_SECRET_MAX];
	size_t len = unhex(v->secret_hex, secret), want = strlen(v->want);
	char out[160];

	(void)state;
	assert_int_equal(
		sp_nodeauth_format(secret, 0, v->key_id, "GET", "/p", 2, 1, out, sizeof(out)),
		-EINVAL);
	assert_int_equal(sp_nodeauth_format(secret, len, "", "GET", "/p", 2, 1, out, sizeof(out)),
			 -EINVAL);
	assert_int_equal(
		sp_nodeauth_format(secret, len, v->key_id, "GET", "/p", 0, 1, out, sizeof(out)),
		-EINVAL);
	memset(long_path, 'a', sizeof(long_path) - 1);
	long_path[0] = '/';
	assert_int_equal(sp_nodeauth_format(secret, len, v->key_id, "GET", long_path,
					    SP_NODEAUTH_PATH_MAX + 1, 1, out, sizeof(out)),
			 -ENOSPC);
	assert_true(sp_nodeauth_format(secret, len, v->key_id, "GET", long_path,
				       SP_NODEAUTH_PATH_MAX, 1, out, sizeof(out)) > 0);
	/* room for the value and its NUL, not one byte less */
	assert_int_equal(sp_nodeauth_format(secret, len, v->key_id, v->method, v->path,
					    strlen(v->path), v->expires, out, want + 1),
			 (int)want);
	assert_string_equal(out, v->want);
	assert_int_equal(sp_nodeauth_format(secret, len, v->key_id, v->method, v->path,
					    strlen(v->path), v->expires, out, want),
			 -ENOSPC);
	assert_int_equal(sp_nodeauth_cred(NULL, v->key_id, "GET", "/p", 2, 1, out, sizeof(out)),
			 -EINVAL);
}

/* `key_id secret_hex` lines: comments, blank lines, tabs, CRLF, a trailing comment. */
static void
test_load_lines(void **state)
{
	struct sp_nodeauth_keys *keys = NULL;
	const struct sp_nodeauth_key *k;
	char err[512] = "", out[160];

	(void)state;
	keys_file("# node keys\n"
		  "\n"
		  "nodemgr 0123456789ABCDEFfedcba98765432100011223344556677\n"
		  "   # indented comment\n"
		  "\tfrontend\t00ff10ee20dd30cc   # the front ends' key\r\n"
		  "\n",
		  0600);
	assert_int_equal(sp_nodeauth_load(path, &keys, err, sizeof(err)), 0);
	assert_non_null(keys);
	assert_int_equal(sp_nodeauth_count(keys), 2);
	assert_int_equal(sp_nodeauth_check(path, err, sizeof(err)), 0);

	k = sp_nodeauth_find(keys, "nodemgr");
	assert_non_null(k);
	assert_int_equal(sp_nodeauth_cred(k, "nodemgr", vectors[0].method, vectors[0].path,
					  strlen(vectors[0].path), vectors[0].expires, out,
					  sizeof(out)),
			 (int)strlen(vectors[0].want));
	assert_string_equal(out, vectors[0].want);
	k = sp_nodeauth_find(keys, "frontend");
	assert_non_null(k);
	assert_int_equal(sp_nodeauth_cred(k, "frontend", vectors[1].method, vectors[1].path,
					  strlen(vectors[1].path), vectors[1].expires, out,
					  sizeof(out)),
			 (int)strlen(vectors[1].want));
	assert_string_equal(out, vectors[1].want);

	/* an unknown key id has no key: nothing can be signed for it */
	assert_null(sp_nodeauth_find(keys, "other"));
	assert_null(sp_nodeauth_find(keys, "nodemgr2"));
	assert_null(sp_nodeauth_find(keys, ""));
	sp_nodeauth_free(keys);

	/* the mode may be stricter than 0600 */
	keys_file("nodemgr a5\n", 0400);
	assert_int_equal(sp_nodeauth_load(path, &keys, err, sizeof(err)), 0);
	assert_int_equal(sp_nodeauth_count(keys), 1);
	sp_nodeauth_free(keys);
}

/* One bare secret (comments around it allowed): used for any key id. */
static void
test_load_bare(void **state)
{
	struct sp_nodeauth_keys *keys = NULL;
	const struct sp_nodeauth_key *k;
	char err[512] = "", out[160];

	(void)state;
	keys_file("# the node-manager secret\na5\n", 0600);
	assert_int_equal(sp_nodeauth_load(path, &keys, err, sizeof(err)), 0);
	assert_int_equal(sp_nodeauth_count(keys), 1);
	k = sp_nodeauth_find(keys, "k.1-x_Y");
	assert_non_null(k);
	assert_ptr_equal(sp_nodeauth_find(keys, "anything"), k);
	assert_int_equal(sp_nodeauth_cred(k, vectors[2].key_id, vectors[2].method, vectors[2].path,
					  strlen(vectors[2].path), vectors[2].expires, out,
					  sizeof(out)),
			 (int)strlen(vectors[2].want));
	assert_string_equal(out, vectors[2].want);
	sp_nodeauth_free(keys);

	/* no file configured: nothing to check; no keys: no key for any id */
	assert_int_equal(sp_nodeauth_check("", err, sizeof(err)), 0);
	assert_int_equal(sp_nodeauth_check(NULL, err, sizeof(err)), 0);
	assert_int_equal(sp_nodeauth_count(NULL), 0);
	assert_null(sp_nodeauth_find(NULL, "nodemgr"));
	sp_nodeauth_free(NULL);
}

/* load and check refuse the file alike, with "config: [keys] node_keys: PATH: reason". */
static void
refused(const char *file, int want_rc, const char *reason)
{
	static int sentinel;
	struct sp_nodeauth_keys *keys = (void *)&sentinel; /* load sets it NULL */
	char err[512] = "", check_err[512] = "", want[600];

	snprintf(want, sizeof(want), "config: [keys] node_keys: %s: %s", file, reason);
	assert_int_equal(sp_nodeauth_load(file, &keys, err, sizeof(err)), want_rc);
	assert_null(keys);
	assert_string_equal(err, want);
	assert_int_equal(sp_nodeauth_check(file, check_err, sizeof(check_err)), want_rc);
	assert_string_equal(check_err, want);
}

static void
test_refusals(void **state)
{
	static const struct {
		const char *text;
		mode_t mode;
		int rc;
		const char *reason;
	} cases[] = {
		{"nodemgr a5\n", 0640, -EINVAL,
		 "mode 0640 gives group/others access to the secrets (chmod 600)"},
		{"nodemgr a5\n", 0604, -EINVAL,
		 "mode 0604 gives group/others access to the secrets (chmod 600)"},
		{"nodemgr a5\n", 0610, -EINVAL,
		 "mode 0610 gives group/others access to the secrets (chmod 600)"},
		{"nodemgr abc\n", 0600, -EINVAL,
		 "line 1: the secret of key id nodemgr is not an even number of hex digits (at "
		 "most "
		 "128 bytes)"},
		{"# c\nnodemgr 00zz\n", 0600, -EINVAL,
		 "line 2: the secret of key id nodemgr is not an even number of hex digits (at "
		 "most "
		 "128 bytes)"},
		{"abc\n", 0600, -EINVAL,
		 "line 1: the secret is not an even number of hex digits (at most 128 bytes)"},
		{"secret\n", 0600, -EINVAL,
		 "line 1: the secret is not an even number of hex digits (at most 128 bytes)"},
		{"", 0600, -EINVAL, "no key in it"},
		{"# only a comment\n\n   \n", 0600, -EINVAL, "no key in it"},
		{"bad/id a5\n", 0600, -EINVAL, "line 1: a key id is 1 to 64 of A-Z a-z 0-9 _ . -"},
		{"nodemgr a5\nnode:mgr a5\n", 0600, -EINVAL,
		 "line 2: a key id is 1 to 64 of A-Z a-z 0-9 _ . -"},
		{"nodemgr a5 extra\n", 0600, -EINVAL,
		 "line 1: expected `key_id secret_hex` or one bare secret"},
		{"a5\nnodemgr a5\n", 0600, -EINVAL, "a bare secret must be the file's only line"},
		{"nodemgr a5\nb6\n", 0600, -EINVAL, "a bare secret must be the file's only line"},
		{"a5\nb6\n", 0600, -EINVAL, "a bare secret must be the file's only line"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		refused(keys_file(cases[i].text, cases[i].mode), cases[i].rc, cases[i].reason);
}

/* Limits: a 65-character key id, a 129-byte secret, 65 keys; and files that are not there. */
static void
test_refusals_limits(void **state)
{
	char text[8192], err[512], id[SP_NODEAUTH_KEY_ID_MAX + 2],
		hex[2 * SP_NODEAUTH_SECRET_MAX + 3];
	size_t o = 0;

	(void)state;
	memset(id, 'k', sizeof(id) - 1);
	id[sizeof(id) - 1] = '\0';
	snprintf(text, sizeof(text), "%s a5\n", id);
	refused(keys_file(text, 0600), -EINVAL, "line 1: a key id is 1 to 64 of A-Z a-z 0-9 _ . -");
	id[sizeof(id) - 2] = '\0'; /* 64: fine */
	snprintf(text, sizeof(text), "%s a5\n", id);
	assert_int_equal(sp_nodeauth_check(keys_file(text, 0600), err, sizeof(err)), 0);

	memset(hex, 'e', sizeof(hex) - 1);
	hex[sizeof(hex) - 1] = '\0'; /* 129 bytes */
	snprintf(text, sizeof(text), "nodemgr %s\n", hex);
	refused(keys_file(text, 0600), -EINVAL,
		"line 1: the secret of key id nodemgr is not an even number of hex digits (at most "
		"128 bytes)");
	hex[sizeof(hex) - 3] = '\0'; /* 128: fine */
	snprintf(text, sizeof(text), "nodemgr %s\n", hex);
	assert_int_equal(sp_nodeauth_check(keys_file(text, 0600), err, sizeof(err)), 0);

	for (int i = 0; i <= SP_NODEAUTH_KEYS_MAX; i++)
		o += (size_t)snprintf(text + o, sizeof(text) - o, "key%d a5\n", i);
	refused(keys_file(text, 0600), -ENOSPC, "more than 64 keys");

	unlink(path);
	refused(path, -ENOENT, "cannot open: No such file or directory");
	refused(dir, -EINVAL, "not a regular file");
}

/* The messages never quote the file's contents. */
static void
test_refusals_keep_secrets(void **state)
{
	struct sp_nodeauth_keys *keys = NULL;
	char err[512] = "";

	(void)state;
	keys_file("nodemgr 0123456789abcdef0\n", 0600);
	assert_int_equal(sp_nodeauth_load(path, &keys, err, sizeof(err)), -EINVAL);
	assert_null(strstr(err, "0123456789abcdef"));
	keys_file("0123456789abcdef 0123456789abcdef extra\n", 0600);
	assert_int_equal(sp_nodeauth_load(path, &keys, err, sizeof(err)), -EINVAL);
	assert_null(strstr(err, "0123456789abcdef"));
	assert_null(keys);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_vectors),
		cmocka_unit_test(test_format_path_len),
		cmocka_unit_test(test_format_refusals),
		cmocka_unit_test(test_load_lines),
		cmocka_unit_test(test_load_bare),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_refusals_limits),
		cmocka_unit_test(test_refusals_keep_secrets),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
