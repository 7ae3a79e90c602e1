/* Dataplane lifecycle: pool, ports, MAC table, punt ring, RCU, workers; orderly teardown. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_errno.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring_elem.h>

#include "sp_dp.h"

#include "sp_auth.h"
#include "sp_cache.h"
#include "sp_loc.h"
#include "sp_log.h"
#include "sp_tcp_ep.h"

static int
create_workers(struct sp_dp *dp, char *err, size_t errlen)
{
	char name[RTE_RING_NAMESIZE];
	unsigned int i;
	uint16_t p, q;
	int rc;

	for (i = 0; i < dp->n_workers; i++) {
		unsigned int lcore = dp->cfg->worker_lcores[i];
		struct sp_worker *w;

		w = rte_zmalloc_socket("sp_worker", sizeof(*w), RTE_CACHE_LINE_SIZE,
				       (int)rte_lcore_to_socket_id(lcore));
		if (w == NULL) {
			snprintf(err, errlen, "cannot allocate worker %u", i);
			return -ENOMEM;
		}
		w->lcore = lcore;
		w->index = i;
		w->dp = dp;
		dp->workers[i] = w;
		snprintf(name, sizeof(name), "sp_loc_w%u", i);
		w->loc_ring = rte_ring_create(name, 1024, (int)rte_lcore_to_socket_id(lcore),
					      RING_F_SP_ENQ | RING_F_SC_DEQ);
		if (w->loc_ring == NULL) {
			snprintf(err, errlen, "cannot create the locator ring of worker %u: %s", i,
				 rte_strerror(rte_errno));
			return -ENOMEM;
		}
		snprintf(name, sizeof(name), "sp_auth_w%u", i);
		w->auth_ring = rte_ring_create(name, 1024, (int)rte_lcore_to_socket_id(lcore),
					       RING_F_SP_ENQ | RING_F_SC_DEQ);
		if (w->auth_ring == NULL) {
			snprintf(err, errlen, "cannot create the auth ring of worker %u: %s", i,
				 rte_strerror(rte_errno));
			return -ENOMEM;
		}
		rc = sp_tcp_worker_create(dp, w, err, errlen);
		if (rc != 0)
			return rc;
	}
	/* rx queue q of every port goes to worker q mod n_workers; tx queue = worker index. */
	for (p = 0; p < dp->n_ports; p++) {
		for (q = 0; q < dp->ports[p].nb_rxq; q++) {
			struct sp_worker *w = dp->workers[q % dp->n_workers];
			struct sp_rxq *rq;

			if (w->n_rxq == SP_MAX_RXQ) {
				snprintf(err, errlen, "worker %u: more than %d rx queues", w->index,
					 SP_MAX_RXQ);
				return -ENOSPC;
			}
			rq = &w->rxq[w->n_rxq++];
			rq->port_idx = p;
			rq->port_id = dp->ports[p].port_id;
			rq->queue = q;
			rq->role = dp->ports[p].role;
		}
	}
	return 0;
}

/* NIC PMDs fill their rx rings at start: a pool smaller than the rings starves them. */
static void
warn_pool_size(const struct sp_dp *dp)
{
	uint64_t need = (uint64_t)(dp->n_workers + 1) * (uint64_t)dp->cfg->mbuf_cache * 3 / 2 +
			(uint64_t)dp->n_workers * dp->n_ports * dp->burst;
	uint16_t p;

	for (p = 0; p < dp->n_ports; p++)
		need += (uint64_t)dp->ports[p].nb_rxq * (uint64_t)dp->ports[p].conf->rx_desc +
			(uint64_t)dp->ports[p].nb_txq * (uint64_t)dp->ports[p].conf->tx_desc;
	if (need > dp->pool->size)
		SP_LOG(WARNING,
		       "[dataplane] mbufs = %u is less than the %" PRIu64 " the rings and caches "
		       "can hold: hardware ports may fail to start or count rx_nombuf",
		       dp->pool->size, need);
}

int
sp_dp_create(const struct sp_conf *cfg, struct sp_dp **out, char *err, size_t errlen)
{
	struct sp_dp *dp;
	size_t sz;
	uint16_t i;
	int rc;

	*out = NULL;
	dp = rte_zmalloc("sp_dp", sizeof(*dp), RTE_CACHE_LINE_SIZE);
	if (dp == NULL) {
		snprintf(err, errlen, "cannot allocate the dataplane context");
		return -ENOMEM;
	}
	*out = dp;
	dp->cfg = cfg;
	dp->burst = (uint16_t)cfg->burst;
	dp->n_workers = cfg->n_workers;
	dp->learn_refresh_tsc = rte_get_tsc_hz() * (uint64_t)cfg->mac_age_s / 3;
	dp->learn_grace_tsc = rte_get_tsc_hz() / 10; /* 100 ms >> the punt poll period */
	/* a VM cycling source MACs must not starve the others' learning: 1000 punts/s, burst 64 */
	dp->learn_interval_tsc = rte_get_tsc_hz() / 1000;
	dp->learn_burst_tsc = 64 * dp->learn_interval_tsc;

	dp->pool = rte_pktmbuf_pool_create("sp_pkt", (unsigned int)cfg->mbufs,
					   (unsigned int)cfg->mbuf_cache, 0,
					   (uint16_t)cfg->mbuf_size, (int)rte_socket_id());
	if (dp->pool == NULL) {
		snprintf(err, errlen,
			 "config: [dataplane] mbufs: cannot create a pool of %" PRId64
			 " mbufs of %" PRId64 " bytes: %s (raise [eal] memory_mb)",
			 cfg->mbufs, cfg->mbuf_size, rte_strerror(rte_errno));
		return -ENOMEM;
	}
	sz = rte_rcu_qsbr_get_memsize(dp->n_workers);
	dp->qsbr = rte_zmalloc("sp_qsbr", sz, RTE_CACHE_LINE_SIZE);
	if (dp->qsbr == NULL || rte_rcu_qsbr_init(dp->qsbr, dp->n_workers) != 0) {
		snprintf(err, errlen, "cannot set up RCU for %u workers", dp->n_workers);
		return -ENOMEM;
	}
	dp->punt = rte_ring_create_elem("sp_punt", sizeof(struct sp_punt_msg),
					(unsigned int)cfg->punt_ring_size, (int)rte_socket_id(),
					RING_F_SC_DEQ);
	if (dp->punt == NULL) {
		snprintf(err, errlen, "cannot create the punt ring: %s", rte_strerror(rte_errno));
		return -ENOMEM;
	}
	/* worker ↔ control locator messages: enough for every worker's ring and the punt ring */
	dp->loc_pool = rte_mempool_create("sp_loc_msg", 2047, sizeof(struct sp_loc_msg), 32, 0,
					  NULL, NULL, NULL, NULL, (int)rte_socket_id(), 0);
	if (dp->loc_pool == NULL) {
		snprintf(err, errlen,
			 "cannot create the locator message pool: %s (raise [eal] "
			 "memory_mb)",
			 rte_strerror(rte_errno));
		return -ENOMEM;
	}
	/* worker ↔ control verifications: a request head (and a small body) each */
	dp->auth_pool =
		rte_mempool_create("sp_auth_msg", (unsigned int)cfg->auth_max_pending,
				   sizeof(struct sp_auth_msg) + (unsigned int)cfg->flow_buffer, 0,
				   0, NULL, NULL, NULL, NULL, (int)rte_socket_id(), 0);
	dp->auth_gen = rte_zmalloc("sp_auth_gen", sizeof(uint32_t) * SP_AUTH_GEN_SLOTS,
				   RTE_CACHE_LINE_SIZE);
	if (dp->auth_pool == NULL || dp->auth_gen == NULL) {
		snprintf(err, errlen,
			 "cannot create the auth message pool ([auth] max_pending x "
			 "[dataplane] flow_buffer): %s (raise [eal] memory_mb)",
			 rte_strerror(rte_errno));
		return -ENOMEM;
	}
	rc = sp_mac_create(dp, err, errlen);
	if (rc == 0)
		rc = sp_cache_create(dp, err, errlen);
	if (rc != 0)
		return rc;
	for (i = 0; i < cfg->n_ports; i++) {
		rc = sp_port_init(dp, i, &cfg->ports[i], err, errlen);
		if (rc != 0)
			return rc;
		dp->n_ports++;
		if (cfg->ports[i].role == SP_PORT_ROLE_UPLINK) {
			dp->uplink_idx = i;
		} else {
			dp->vm_idx[dp->n_vm++] = i;
			if (cfg->ports[i].has_mac &&
			    sp_mac_add_static(dp, (const struct rte_ether_addr *)cfg->ports[i].mac,
					      i) != 0) {
				snprintf(err, errlen,
					 "config: [port.%s] mac: cannot add to the "
					 "MAC table",
					 cfg->ports[i].name);
				return -ENOSPC;
			}
		}
	}
	rc = create_workers(dp, err, errlen);
	if (rc == 0)
		warn_pool_size(dp);
	return rc;
}

int
sp_dp_start(struct sp_dp *dp, char *err, size_t errlen)
{
	unsigned int i;
	uint16_t p;
	int rc;

	for (p = 0; p < dp->n_ports; p++) {
		rc = sp_port_start(&dp->ports[p], err, errlen);
		if (rc != 0)
			return rc;
	}
	dp->running = true; /* even if a later launch fails, destroy must stop the launched */
	for (i = 0; i < dp->n_workers; i++) {
		rc = rte_eal_remote_launch(sp_worker_main, dp->workers[i], dp->workers[i]->lcore);
		if (rc != 0) {
			snprintf(err, errlen, "cannot launch worker %u on lcore %u: %s", i,
				 dp->workers[i]->lcore, strerror(-rc));
			return rc;
		}
	}
	return 0;
}

unsigned int
sp_dp_pool_in_use(const struct sp_dp *dp)
{
	return dp->pool ? rte_mempool_in_use_count(dp->pool) : 0;
}

unsigned int
sp_dp_punt_drain(struct sp_dp *dp, unsigned int max, uint64_t now_ms)
{
	struct sp_punt_msg msgs[64];
	unsigned int done = 0, n, i;

	while (done < max) {
		n = rte_ring_sc_dequeue_burst_elem(dp->punt, msgs, sizeof(msgs[0]),
						   RTE_MIN(64u, max - done), NULL);
		if (n == 0)
			break;
		for (i = 0; i < n; i++) {
			if (msgs[i].type == SP_PUNT_LEARN)
				sp_mac_learn(dp, (const struct rte_ether_addr *)msgs[i].mac,
					     msgs[i].port_idx, now_ms);
			else if (msgs[i].type == SP_PUNT_LOC && dp->loc_handler != NULL)
				dp->loc_handler(dp->loc_handler_arg, msgs[i].loc);
			else if (msgs[i].type == SP_PUNT_LOC)
				rte_mempool_put(dp->loc_pool, msgs[i].loc);
			else if (msgs[i].type == SP_PUNT_AUTH && dp->auth_handler != NULL)
				dp->auth_handler(dp->auth_handler_arg, msgs[i].auth);
			else if (msgs[i].type == SP_PUNT_AUTH)
				rte_mempool_put(dp->auth_pool, msgs[i].auth);
			else if (msgs[i].type >= SP_PUNT_CACHE_FILL && dp->cache_handler != NULL)
				dp->cache_handler(dp->cache_handler_arg, &msgs[i]);
			else if (msgs[i].type == SP_PUNT_CACHE_FILL)
				sp_cache_fill_drop(dp, msgs[i].fill);
		}
		done += n;
	}
	return done;
}

void
sp_dp_destroy(struct sp_dp *dp)
{
	unsigned int i;
	uint16_t p;

	if (dp == NULL)
		return;
	if (dp->running) {
		__atomic_store_n(&dp->stop, 1, __ATOMIC_RELEASE);
		rte_eal_mp_wait_lcore();
		dp->running = false;
	}
	for (p = 0; p < dp->n_ports; p++)
		sp_port_close(&dp->ports[p]);
	if (dp->punt != NULL) {
		sp_dp_punt_drain(dp, UINT32_MAX, 0);
		rte_ring_free(dp->punt);
	}
	if (dp->pool != NULL) {
		SP_LOG(INFO, "packet pool: %u of %u mbufs in use after close",
		       sp_dp_pool_in_use(dp), dp->pool->size);
		rte_mempool_free(dp->pool);
	}
	sp_mac_destroy(dp);
	free(dp->svc_table); /* the workers are gone: no grace period needed */
	dp->svc_table = NULL;
	rte_free(dp->qsbr);
	for (i = 0; i < dp->n_workers; i++) {
		struct sp_worker *w = dp->workers[i];
		void *m;

		if (w == NULL)
			continue;
		while (w->loc_ring != NULL && rte_ring_dequeue(w->loc_ring, &m) == 0)
			rte_mempool_put(dp->loc_pool, m);
		rte_ring_free(w->loc_ring);
		while (w->auth_ring != NULL && rte_ring_dequeue(w->auth_ring, &m) == 0)
			rte_mempool_put(dp->auth_pool, m);
		rte_ring_free(w->auth_ring);
		sp_tcp_worker_destroy(w);
		rte_free(w);
	}
	rte_mempool_free(dp->loc_pool);
	rte_mempool_free(dp->auth_pool);
	sp_cache_destroy(dp);
	rte_free(dp->auth_gen);
	rte_free(dp);
}
