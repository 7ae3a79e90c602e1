/* Node-manager credentials (X-SP-Node-Auth) and the node keys file ([keys] node_keys). */
#ifndef SP_NODEAUTH_H
#define SP_NODEAUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SP_NODEAUTH_KEYS_MAX 64	   /* entries of the node keys file */
#define SP_NODEAUTH_KEY_ID_MAX 64  /* as the services API allows node_key_id */
#define SP_NODEAUTH_SECRET_MAX 128 /* bytes of one secret */
#define SP_NODEAUTH_PATH_MAX 1024  /* longest request path a credential is made for */

/* The secrets of a node keys file (opaque; wiped when freed). */
struct sp_nodeauth_keys;
/* One key of it: a key id and its secret, or a bare secret (any key id). */
struct sp_nodeauth_key;

/*
 * Read the node keys file path: mode 0600 or stricter (no group or other bit), a regular file of
 * lines `key_id secret_hex` ('#' comments and blank lines allowed), or one line with one bare hex
 * secret (used for any key id). 0 with *out set (free with sp_nodeauth_free), or -errno with the
 * reason in err: "config: [keys] node_keys: PATH: ..." (never quoting the file's contents). The
 * text read is wiped.
 */
int sp_nodeauth_load(const char *path, struct sp_nodeauth_keys **out, char *err, size_t errlen);

/* As sp_nodeauth_load, keeping nothing (--check). An empty or NULL path is fine (no keys). */
int sp_nodeauth_check(const char *path, char *err, size_t errlen);

/* Wipe the secrets (explicit_bzero) and free. NULL is fine. */
void sp_nodeauth_free(struct sp_nodeauth_keys *keys);

/* The number of keys loaded (0 for NULL). */
unsigned int sp_nodeauth_count(const struct sp_nodeauth_keys *keys);

/* The key for key_id (a bare secret matches any), or NULL (none, or keys NULL). */
const struct sp_nodeauth_key *sp_nodeauth_find(const struct sp_nodeauth_keys *keys,
					       const char *key_id);

/*
 * The X-SP-Node-Auth value for method on path (the request path exactly as sent, no query):
 * "key_id:expires:hex(HMAC-SHA256(secret, METHOD \n PATH \n expires))" into out, NUL-terminated.
 * Returns its length, or -EINVAL (empty secret, key id or path) / -ENOSPC (path longer than
 * SP_NODEAUTH_PATH_MAX, out too small).
 */
int sp_nodeauth_format(const uint8_t *secret, size_t secret_len, const char *key_id,
		       const char *method, const char *path, size_t path_len, int64_t expires,
		       char *out, size_t outlen);

/* sp_nodeauth_format with key's secret, under key_id (the service's node_key_id). */
int sp_nodeauth_cred(const struct sp_nodeauth_key *key, const char *key_id, const char *method,
		     const char *path, size_t path_len, int64_t expires, char *out, size_t outlen);

/* A key id as keys files and the services API (node_key_id) take it: 1..64 of [A-Za-z0-9_.-]. */
bool sp_nodeauth_key_id_ok(const char *v);

#endif /* SP_NODEAUTH_H */
