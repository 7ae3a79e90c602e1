/* The object cache's shared parts, made from [cache]: the lock-free index, the version
 * counters and the fill buffers (the entries themselves are the control thread's). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_malloc.h>
#include <rte_mempool.h>

#include "sp_cache.h"
#include "sp_dp.h"

int
sp_cache_create(struct sp_dp *dp, char *err, size_t errlen)
{
	const struct sp_conf *cfg = dp->cfg;
	struct rte_hash_parameters hp = {0};
	struct sp_cache *c;
	unsigned int n_fills;

	if (cfg->cache_size_kb == 0)
		return 0;
	c = rte_zmalloc("sp_cache", sizeof(*c), RTE_CACHE_LINE_SIZE);
	if (c == NULL) {
		snprintf(err, errlen, "cannot allocate the cache (raise [eal] memory_mb)");
		return -ENOMEM;
	}
	dp->cache = c;
	c->budget = (uint64_t)cfg->cache_size_kb * 1024;
	c->max_object = (uint64_t)cfg->cache_max_object_kb * 1024;
	if (c->max_object > c->budget)
		c->max_object = c->budget;
	c->entries = (uint32_t)cfg->cache_entries;
	c->admission = (uint8_t)cfg->cache_admission;
	c->fill_timeout_tsc = rte_get_tsc_hz() * (uint64_t)cfg->cache_fill_timeout_ms / 1000;
	c->wait_tsc = rte_get_tsc_hz() * (uint64_t)cfg->cache_coalesce_wait_ms / 1000;
	c->fill_cap = (uint32_t)(SP_CACHE_HEAD_MAX + c->max_object);
	c->ver = rte_zmalloc("sp_cache_ver", sizeof(*c->ver) * SP_CACHE_VER_SLOTS,
			     RTE_CACHE_LINE_SIZE);
	hp.name = "sp_cache_index";
	hp.entries = c->entries;
	hp.key_len = sizeof(struct sp_cache_key);
	hp.socket_id = (int)rte_socket_id();
	/* one writer (the control thread), lock-free readers; key slots are freed by the control
	 * thread after a grace period (rte_hash_free_key_with_position) */
	hp.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF;
	c->index = rte_hash_create(&hp);
	n_fills = (unsigned int)cfg->cache_fills * dp->n_workers;
	c->fill_pool = rte_mempool_create("sp_cache_fill", n_fills,
					  sizeof(struct sp_cache_fill) + c->fill_cap, 0, 0, NULL,
					  NULL, NULL, NULL, (int)rte_socket_id(), 0);
	if (c->ver == NULL || c->index == NULL || c->fill_pool == NULL) {
		snprintf(
			err, errlen,
			"cannot create the cache's index or fill buffers ([cache] entries, fills x "
			"max_object_kb per worker): %s (raise [eal] memory_mb)",
			rte_strerror(rte_errno));
		return -ENOMEM;
	}
	return 0;
}

void
sp_cache_destroy(struct sp_dp *dp)
{
	struct sp_cache *c = dp->cache;

	if (c == NULL)
		return;
	rte_hash_free(c->index);
	rte_mempool_free(c->fill_pool);
	rte_free(c->ver);
	rte_free(c);
	dp->cache = NULL;
}

void
sp_cache_fill_drop(struct sp_dp *dp, struct sp_cache_fill *fill)
{
	struct sp_cache *c = dp->cache;

	__atomic_store_n(&c->ver[fill->ver_slot].fill_until, 0, __ATOMIC_RELEASE);
	rte_mempool_put(c->fill_pool, fill);
}

struct sp_cache_entry *
sp_cache_entry_new(uint16_t slot, const char *name, size_t name_len, uint64_t key_hash,
		   const char *head, const struct sp_http_resp *r, const void *body,
		   size_t body_len, int *err)
{
	struct sp_cache_tmpl_mark marks[SP_CACHE_TMPL_MARKS];
	char tmpl[SP_CACHE_HEAD_MAX];
	const char *etag, *lm, *server;
	size_t etag_len = 0, lm_len = 0, server_len = 0, total;
	unsigned int n_marks = 0;
	struct sp_cache_entry *e;
	char *p;
	int tl;

	tl = sp_cache_tmpl_build(head, r, tmpl, sizeof(tmpl), marks, &n_marks);
	if (tl < 0) {
		*err = -ENOSPC;
		return NULL;
	}
	etag = sp_http_resp_header(head, r, "etag", &etag_len);
	lm = sp_http_resp_header(head, r, "last-modified", &lm_len);
	server = sp_http_resp_header(head, r, "server", &server_len);
	if (etag_len > UINT16_MAX || lm_len > UINT16_MAX || server_len > UINT16_MAX ||
	    name_len > UINT16_MAX) {
		*err = -EINVAL;
		return NULL;
	}
	total = sizeof(*e) + name_len + 1 + etag_len + 1 + lm_len + 1 + server_len + 1 +
		(size_t)tl + 1 + body_len;
	e = rte_malloc("sp_cache_entry", total, RTE_CACHE_LINE_SIZE);
	if (e == NULL) {
		*err = -ENOMEM;
		return NULL;
	}
	memset(e, 0, sizeof(*e));
	e->key_hash = key_hash;
	e->ver_slot = sp_cache_ver_slot(key_hash);
	e->slot = slot;
	e->name_len = (uint16_t)name_len;
	e->etag_len = (uint16_t)etag_len;
	e->lm_len = (uint16_t)lm_len;
	e->server_len = (uint16_t)server_len;
	e->tmpl_len = (uint16_t)tl;
	e->n_marks = (uint8_t)n_marks;
	memcpy(e->marks, marks, sizeof(marks[0]) * n_marks);
	if (lm_len == 0 || sp_http_date_parse(lm, lm_len, &e->last_modified_s) != 0)
		e->last_modified_s = INT64_MIN;
	e->stored_s = (int64_t)time(NULL);
	e->size = body_len;
	/* what it costs: the block rounded to cache lines, plus the allocator's own header */
	e->alloc_bytes = RTE_ALIGN_CEIL(total, RTE_CACHE_LINE_SIZE) + RTE_CACHE_LINE_SIZE;
	p = e->data;
#define PUT_STR(field, src, n)                                                                     \
	do {                                                                                       \
		e->field = p;                                                                      \
		if ((n) > 0)                                                                       \
			memcpy(p, (src), (n));                                                     \
		p[(n)] = '\0';                                                                     \
		p += (n) + 1;                                                                      \
	} while (0)
	PUT_STR(name, name, name_len);
	PUT_STR(etag, etag, etag_len);
	PUT_STR(last_modified, lm, lm_len);
	PUT_STR(server, server, server_len);
	PUT_STR(tmpl, tmpl, (size_t)tl);
#undef PUT_STR
	if (body_len > 0)
		memcpy(p, body, body_len);
	e->body = (const uint8_t *)p;
	sp_cache_entry_seal(e);
	return e;
}
