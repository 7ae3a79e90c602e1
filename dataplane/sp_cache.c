/* The object cache's shared parts, made from [cache]: the lock-free index, the version
 * counters and the fill buffers (the entries themselves are the control thread's). */
#include <errno.h>
#include <stdio.h>

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
