/* Node-manager credentials (HMAC-SHA256) and the node keys file's loader (docs/locators.md). */
#include "sp_nodeauth.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "sp_conf.h"

struct sp_nodeauth_key {
	char id[SP_NODEAUTH_KEY_ID_MAX + 1]; /* "" for a bare secret: used for any key id */
	uint8_t secret[SP_NODEAUTH_SECRET_MAX];
	size_t len;
};

struct sp_nodeauth_keys {
	unsigned int n;
	struct sp_nodeauth_key key[SP_NODEAUTH_KEYS_MAX];
};

/* ---- the node keys file -------------------------------------------------------------------- */

/* Hex text to bytes; -EINVAL on a bad digit, an odd length or more than SECRET_MAX bytes. */
static int
unhex(const char *s, size_t n, uint8_t *out, size_t *len)
{
	size_t i;

	if (n == 0 || n % 2 != 0 || n / 2 > SP_NODEAUTH_SECRET_MAX)
		return -EINVAL;
	for (i = 0; i < n; i += 2) {
		int hi = sp_conf_hexval((unsigned char)s[i]),
		    lo = sp_conf_hexval((unsigned char)s[i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	*len = n / 2;
	return 0;
}

bool
sp_nodeauth_key_id_ok(const char *v)
{
	size_t i, len = strlen(v);

	if (len == 0 || len > SP_NODEAUTH_KEY_ID_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= 'A' && v[i] <= 'Z') ||
		      (v[i] >= '0' && v[i] <= '9') || v[i] == '_' || v[i] == '.' || v[i] == '-'))
			return false;
	return true;
}

#define KEYS_ERR(...)                                                                              \
	do {                                                                                       \
		int n_ = snprintf(err, errlen, "config: [keys] node_keys: %s: ", path);            \
		if (n_ >= 0 && (size_t)n_ < errlen)                                                \
			snprintf(err + n_, errlen - (size_t)n_, __VA_ARGS__);                      \
	} while (0)

/*
 * Read the node keys file into keys (may be NULL: check only). Lines `key_id secret_hex`, or one
 * line with one bare secret (any key id); '#' comments and blank lines. The text read is wiped.
 */
static int
keys_read(const char *path, struct sp_nodeauth_keys *keys, char *err, size_t errlen)
{
	struct sp_nodeauth_key tmp;
	struct stat st;
	char buf[16384], *line, *next;
	unsigned int n = 0, lineno = 0, bare = 0;
	ssize_t got;
	size_t used = 0;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		KEYS_ERR("cannot open: %s", strerror(-rc));
		return rc;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		KEYS_ERR("not a regular file");
		return -EINVAL;
	}
	if ((st.st_mode & 077) != 0) {
		close(fd);
		KEYS_ERR("mode 0%03o gives group/others access to the secrets (chmod 600)",
			 (unsigned int)(st.st_mode & 0777));
		return -EINVAL;
	}
	while ((got = read(fd, buf + used, sizeof(buf) - 1 - used)) > 0)
		used += (size_t)got;
	close(fd);
	if (got < 0 || used == sizeof(buf) - 1) {
		explicit_bzero(buf, sizeof(buf));
		KEYS_ERR(got < 0 ? "cannot read it" : "larger than %zu bytes", sizeof(buf) - 2);
		return got < 0 ? -EIO : -EFBIG;
	}
	buf[used] = '\0';
	for (line = buf; line != NULL && rc == 0; line = next) {
		char *f1, *f2, *f3, *s2 = NULL;

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		lineno++;
		f1 = strtok_r(line, " \t\r", &s2);
		if (f1 == NULL || f1[0] == '#')
			continue;
		f2 = strtok_r(NULL, " \t\r", &s2);
		f3 = strtok_r(NULL, " \t\r", &s2);
		memset(&tmp, 0, sizeof(tmp));
		if (f3 != NULL && f3[0] != '#') {
			KEYS_ERR("line %u: expected `key_id secret_hex` or one bare secret",
				 lineno);
			rc = -EINVAL;
		} else if (f2 == NULL || f2[0] == '#') { /* a bare secret */
			bare++;
			if (unhex(f1, strlen(f1), tmp.secret, &tmp.len) != 0) {
				KEYS_ERR("line %u: the secret is not an even number of hex digits "
					 "(at most %d bytes)",
					 lineno, SP_NODEAUTH_SECRET_MAX);
				rc = -EINVAL;
			}
		} else if (!sp_nodeauth_key_id_ok(f1)) {
			KEYS_ERR("line %u: a key id is 1 to %d of A-Z a-z 0-9 _ . -", lineno,
				 SP_NODEAUTH_KEY_ID_MAX);
			rc = -EINVAL;
		} else if (unhex(f2, strlen(f2), tmp.secret, &tmp.len) != 0) {
			KEYS_ERR("line %u: the secret of key id %s is not an even number of hex "
				 "digits "
				 "(at most %d bytes)",
				 lineno, f1, SP_NODEAUTH_SECRET_MAX);
			rc = -EINVAL;
		} else {
			snprintf(tmp.id, sizeof(tmp.id), "%s", f1);
		}
		if (rc == 0 && n == SP_NODEAUTH_KEYS_MAX) {
			KEYS_ERR("more than %d keys", SP_NODEAUTH_KEYS_MAX);
			rc = -ENOSPC;
		}
		if (rc == 0 && keys != NULL)
			keys->key[n] = tmp;
		if (rc == 0)
			n++;
	}
	explicit_bzero(&tmp, sizeof(tmp));
	explicit_bzero(buf, sizeof(buf));
	if (rc == 0 && bare > 0 && n > 1) {
		KEYS_ERR("a bare secret must be the file's only line");
		rc = -EINVAL;
	}
	if (rc == 0 && n == 0) {
		KEYS_ERR("no key in it");
		rc = -EINVAL;
	}
	if (rc != 0)
		return rc;
	if (keys != NULL)
		keys->n = n;
	return 0;
}

int
sp_nodeauth_load(const char *path, struct sp_nodeauth_keys **out, char *err, size_t errlen)
{
	struct sp_nodeauth_keys *keys;
	int rc;

	*out = NULL;
	keys = calloc(1, sizeof(*keys));
	if (keys == NULL) {
		KEYS_ERR("out of memory");
		return -ENOMEM;
	}
	rc = keys_read(path, keys, err, errlen);
	if (rc != 0) {
		sp_nodeauth_free(keys);
		return rc;
	}
	*out = keys;
	return 0;
}

int
sp_nodeauth_check(const char *path, char *err, size_t errlen)
{
	if (path == NULL || path[0] == '\0')
		return 0;
	return keys_read(path, NULL, err, errlen);
}

void
sp_nodeauth_free(struct sp_nodeauth_keys *keys)
{
	if (keys == NULL)
		return;
	explicit_bzero(keys, sizeof(*keys));
	free(keys);
}

unsigned int
sp_nodeauth_count(const struct sp_nodeauth_keys *keys)
{
	return keys != NULL ? keys->n : 0;
}

const struct sp_nodeauth_key *
sp_nodeauth_find(const struct sp_nodeauth_keys *keys, const char *key_id)
{
	unsigned int i;

	for (i = 0; keys != NULL && i < keys->n; i++)
		if (keys->key[i].id[0] == '\0' || strcmp(keys->key[i].id, key_id) == 0)
			return &keys->key[i];
	return NULL;
}

/* ---- credentials --------------------------------------------------------------------------- */

int
sp_nodeauth_format(const uint8_t *secret, size_t secret_len, const char *key_id, const char *method,
		   const char *path, size_t path_len, int64_t expires, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	char msg[16 + SP_NODEAUTH_PATH_MAX + 32];
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0, i;
	int n, m;

	if (secret_len == 0 || secret_len > INT32_MAX || key_id[0] == '\0' || path_len == 0)
		return -EINVAL;
	if (path_len > SP_NODEAUTH_PATH_MAX)
		return -ENOSPC;
	n = snprintf(msg, sizeof(msg), "%s\n%.*s\n%" PRId64, method, (int)path_len, path, expires);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return -ENOSPC;
	if (HMAC(EVP_sha256(), secret, (int)secret_len, (const unsigned char *)msg, (size_t)n, md,
		 &mdlen) == NULL)
		return -EINVAL;
	m = snprintf(out, outlen, "%s:%" PRId64 ":", key_id, expires);
	if (m < 0 || (size_t)m + mdlen * 2 + 1 > outlen)
		return -ENOSPC;
	for (i = 0; i < mdlen; i++) {
		out[m + 2 * i] = hex[md[i] >> 4];
		out[m + 2 * i + 1] = hex[md[i] & 15];
	}
	out[m + 2 * mdlen] = '\0';
	explicit_bzero(md, sizeof(md));
	return m + (int)mdlen * 2;
}

int
sp_nodeauth_cred(const struct sp_nodeauth_key *key, const char *key_id, const char *method,
		 const char *path, size_t path_len, int64_t expires, char *out, size_t outlen)
{
	if (key == NULL)
		return -EINVAL;
	return sp_nodeauth_format(key->secret, key->len, key_id, method, path, path_len, expires,
				  out, outlen);
}
