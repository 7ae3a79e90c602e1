/* The worker lcore loop: rx burst, classify, forward byte-identical, tx; counts every drop. */
#include <string.h>

#include <rte_branch_prediction.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_hash.h>
#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring_elem.h>
#include <rte_tcp.h>

#include "sp_dp.h"
#include "sp_log.h"
#include "sp_tcp_ep.h"

/* Fate of one uplink frame, decided before any is sent so per-port order is kept. */
#define SP_DST_FLOOD 0xfff0
#define SP_DST_LOOKUP 0xfff1
#define SP_DST_TAKEN 0xfff2 /* the TCP endpoint took it */
#define SP_DST_DROP 0xff00  /* + enum sp_drop */

static inline void
drop(struct sp_worker *w, struct rte_mbuf *m, enum sp_drop why)
{
	SP_CNT_ADD(w->stats.drops[why], 1);
	rte_pktmbuf_free(m);
}

void
sp_worker_tx_flush(struct sp_worker *w, uint16_t port_idx)
{
	struct sp_txbuf *tb = &w->tx[port_idx];
	uint64_t bytes = tb->bytes;
	uint16_t sent, i;

	if (tb->n == 0)
		return;
	sent = rte_eth_tx_burst(w->dp->ports[port_idx].port_id, (uint16_t)w->index, tb->pkts,
				tb->n);
	if (unlikely(sent < tb->n)) {
		/* the unsent ones are still ours: read their lengths, then free them */
		for (i = sent; i < tb->n; i++)
			bytes -= tb->pkts[i]->pkt_len;
		SP_CNT_ADD(w->stats.drops[SP_DROP_TX_FULL], tb->n - sent);
		rte_pktmbuf_free_bulk(&tb->pkts[sent], tb->n - sent);
	}
	SP_CNT_ADD(w->stats.tx_packets, sent);
	SP_CNT_ADD(w->stats.tx_bytes, bytes);
	tb->n = 0;
	tb->bytes = 0;
}

void
sp_worker_tx(struct sp_worker *w, uint16_t port_idx, struct rte_mbuf *m)
{
	sp_worker_tx_enqueue(w, port_idx, m);
}

#define tx_enqueue sp_worker_tx_enqueue
#define tx_flush sp_worker_tx_flush

/*
 * Parse for classification and counting (one histogram increment per frame); the frame is
 * never modified. Returns -1 for a runt, 1 for a broadcast/multicast destination, else 0.
 */
static inline int
classify(struct sp_worker *w, struct rte_mbuf *m, const struct rte_ether_hdr *eth,
	 struct sp_pkt_info *pi)
{
	bool mcast;

	sp_pkt_parse_partial((const uint8_t *)eth, rte_pktmbuf_data_len(m), rte_pktmbuf_pkt_len(m),
			     pi);
	if (unlikely(pi->err != SP_PKT_ERR_NONE)) {
		SP_CNT_ADD(w->stats.parse[pi->err], 1);
		if (pi->err == SP_PKT_ERR_RUNT)
			return -1;
	}
	mcast = rte_is_multicast_ether_addr(&eth->dst_addr);
	SP_CNT_ADD(w->stats.class_hist[sp_class_bucket(pi->l3, pi->l4, pi->n_vlan != 0, mcast,
						       m->nb_segs > 1)],
		   1);
	return mcast;
}

/*
 * A TCP segment from a VM to an enhanced service's VIP and port: counted by service. Returns
 * the slot of a service whose connections the endpoint terminates (direct path), else -1.
 */
static inline int
service_match(struct sp_worker *w, const struct sp_svc_table *svc, const struct rte_mbuf *m,
	      const struct rte_ether_hdr *eth, const struct sp_pkt_info *pi)
{
	const uint8_t *l3 = (const uint8_t *)eth + pi->l3_off;
	bool v6 = pi->l3 == SP_L3_IPV6;
	struct sp_svc_counters *c;
	int slot;

	slot = sp_svc_lookup(svc, v6, v6 ? l3 + 24 : l3 + 16, rte_cpu_to_be_16(pi->dport));
	if (slot < 0)
		return -1;
	c = &w->svc[slot];
	SP_CNT_ADD(c->vm_packets, 1);
	SP_CNT_ADD(c->vm_bytes, m->pkt_len);
	if ((pi->tcp_flags & (RTE_TCP_SYN_FLAG | RTE_TCP_ACK_FLAG)) == RTE_TCP_SYN_FLAG)
		SP_CNT_ADD(c->vm_syns, 1);
	return !v6 && (svc->profile[slot].flags & SP_SVC_F_DIRECT) ? slot : -1;
}

/* Tell the control thread which VM port a source MAC lives on, at most once per refresh. */
static inline void
learn(struct sp_worker *w, uint16_t port_idx, const struct rte_ether_addr *src, uint64_t key,
      uint64_t now)
{
	struct sp_learn_slot *s = &w->learn[sp_mac_key_slot(key, SP_LEARN_SLOTS)];
	uint64_t *tat = &w->learn_tat[port_idx];
	struct sp_punt_msg msg;

	if (likely(s->mac == key && s->port_idx == port_idx &&
		   now - s->tsc < w->dp->learn_refresh_tsc))
		return;
	/* GCRA per VM port: a port sending from ever new MACs gets its fair share, no more */
	if (unlikely(*tat > now + w->dp->learn_burst_tsc)) {
		SP_CNT_ADD(w->stats.events[SP_EVENT_LEARN_THROTTLED], 1);
		return;
	}
	msg.type = SP_PUNT_LEARN;
	msg.port_idx = port_idx;
	rte_ether_addr_copy(src, (struct rte_ether_addr *)msg.mac);
	msg.worker = (uint16_t)w->index;
	msg.loc = NULL;
	if (unlikely(rte_ring_mp_enqueue_elem(w->dp->punt, &msg, sizeof(msg)) != 0)) {
		SP_CNT_ADD(w->stats.events[SP_EVENT_PUNT_RING_FULL], 1);
		return;
	}
	SP_CNT_ADD(w->stats.events[SP_EVENT_LEARN_PUNTED], 1);
	*tat = RTE_MAX(*tat, now) + w->dp->learn_interval_tsc;
	if (s->mac != key || s->port_idx != port_idx)
		s->first_tsc = now;
	s->mac = key;
	s->port_idx = port_idx;
	s->tsc = now;
}

/* VM → uplink: everything with an Ethernet header and a unicast source goes up unchanged. */
static void
from_vm(struct sp_worker *w, const struct sp_rxq *q, struct rte_mbuf **pkts, uint16_t n,
	uint64_t now)
{
	struct sp_dp *dp = w->dp;
	const struct sp_svc_table *svc = __atomic_load_n(&dp->svc_table, __ATOMIC_ACQUIRE);
	uint64_t key, last_src = 0, bytes = 0;
	struct sp_pkt_info pi;
	uint16_t i;

	if (svc != NULL && svc->n == 0)
		svc = NULL;
	for (i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);

		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void *));
		bytes += m->pkt_len;
		if (unlikely(classify(w, m, eth, &pi) < 0)) {
			drop(w, m, SP_DROP_RUNT);
			continue;
		}
		if (unlikely(!rte_is_valid_assigned_ether_addr(&eth->src_addr))) {
			drop(w, m, SP_DROP_BAD_SRC_MAC);
			continue;
		}
		key = sp_mac_key(&eth->src_addr);
		if (key != last_src && dp->cfg->mac_learn_limit > 0) {
			learn(w, q->port_idx, &eth->src_addr, key, now);
			last_src = key;
		}
		if (pi.l4 == SP_L4_TCP && !pi.is_fragment && pi.err == SP_PKT_ERR_NONE) {
			int slot = svc != NULL ? service_match(w, svc, m, eth, &pi) : -1;

			if ((slot >= 0 || sp_tcp_active(w)) && pi.l3 == SP_L3_IPV4 &&
			    sp_tcp_from_vm(w, m, &pi, slot, q->port_idx, now))
				continue;
		}
		tx_enqueue(w, dp->uplink_idx, m);
	}
	SP_CNT_ADD(w->stats.rx_bytes, bytes);
}

/* Broadcast/multicast from the uplink: the same mbuf to every VM port (refcount per segment). */
static inline void
flood(struct sp_worker *w, struct rte_mbuf *m)
{
	struct sp_dp *dp = w->dp;
	struct rte_mbuf *s;
	uint16_t i;

	if (unlikely(dp->n_vm == 0)) {
		drop(w, m, SP_DROP_NO_VM_PORT);
		return;
	}
	if (dp->n_vm > 1) {
		if (unlikely(rte_mbuf_refcnt_read(m) + dp->n_vm - 1 > UINT16_MAX)) {
			drop(w, m, SP_DROP_CLONE_FAILED);
			return;
		}
		for (s = m; s != NULL; s = s->next)
			rte_mbuf_refcnt_update(s, (int16_t)(dp->n_vm - 1));
	}
	for (i = 0; i < dp->n_vm; i++)
		tx_enqueue(w, dp->vm_idx[i], m);
}

/*
 * Unicast the table does not know: if this worker punted that MAC moments ago (the learn is
 * in flight), deliver to that port. Only within the grace period, so a MAC the control thread
 * refused (learn limit, conflict) or aged out is not served from here.
 */
static inline uint16_t
local_learned_port(struct sp_worker *w, uint64_t key, uint64_t now)
{
	struct sp_learn_slot *s = &w->learn[sp_mac_key_slot(key, SP_LEARN_SLOTS)];

	if (s->mac == key && now - s->first_tsc < w->dp->learn_grace_tsc)
		return s->port_idx;
	return SP_DST_DROP + SP_DROP_UNKNOWN_DST;
}

/* Resolve a batch of cache misses with one bulk lookup in the shared table; fill the cache. */
static void
resolve_batch(struct sp_worker *w, struct rte_mbuf **pkts, const uint16_t *idx, uint16_t k,
	      uint16_t *dst, uint64_t now)
{
	const void *keys[RTE_HASH_LOOKUP_BULK_MAX];
	void *data[RTE_HASH_LOOKUP_BULK_MAX];
	uint64_t hits = 0, key;
	uint16_t j;

	for (j = 0; j < k; j++)
		keys[j] = &rte_pktmbuf_mtod(pkts[idx[j]], struct rte_ether_hdr *)->dst_addr;
	rte_hash_lookup_bulk_data(w->dp->mac_table, keys, k, &hits, data);
	for (j = 0; j < k; j++) {
		key = sp_mac_key(keys[j]);
		if (hits & (1ULL << j)) {
			struct sp_mac_cache_slot *c =
				&w->mac_cache[sp_mac_key_slot(key, SP_MAC_CACHE)];

			c->mac = key;
			c->port_idx = (uint16_t)(uintptr_t)data[j];
			dst[idx[j]] = c->port_idx;
		} else {
			dst[idx[j]] = local_learned_port(w, key, now);
		}
	}
}

/* The control thread changed the MAC table: forget everything cached from it. */
static inline void
mac_cache_sync(struct sp_worker *w)
{
	uint64_t gen = __atomic_load_n(&w->dp->mac_gen, __ATOMIC_ACQUIRE);

	if (unlikely(gen != w->mac_cache_gen)) {
		memset(w->mac_cache, 0, sizeof(w->mac_cache));
		w->mac_cache_gen = gen;
	}
}

/*
 * Uplink → VM: unicast by MAC (the worker's exact-match cache, then a bulk lookup in the
 * shared table for the misses), multicast flooded to every VM port; then sent in arrival order.
 */
static void
from_uplink(struct sp_worker *w, struct rte_mbuf **pkts, uint16_t n, uint64_t now)
{
	uint16_t dst[SP_TXBUF_MAX], miss[RTE_HASH_LOOKUP_BULK_MAX];
	uint16_t i, k = 0;
	uint64_t key, bytes = 0;
	struct sp_pkt_info pi;
	int cls;

	mac_cache_sync(w);
	for (i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
		const struct sp_mac_cache_slot *c;

		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void *));
		bytes += m->pkt_len;
		cls = classify(w, m, eth, &pi);
		if (unlikely(cls < 0)) {
			dst[i] = SP_DST_DROP + SP_DROP_RUNT;
			continue;
		}
		if (cls > 0) {
			dst[i] = SP_DST_FLOOD;
			continue;
		}
		if (pi.l3 == SP_L3_IPV4 && !pi.is_fragment && pi.err == SP_PKT_ERR_NONE &&
		    sp_tcp_active(w) &&
		    ((pi.l4 == SP_L4_TCP && sp_tcp_from_uplink(w, m, &pi, now)) ||
		     (pi.l4 == SP_L4_ICMP && sp_tcp_icmp_from_uplink(w, m, &pi, now)))) {
			dst[i] = SP_DST_TAKEN;
			continue;
		}
		key = sp_mac_key(&eth->dst_addr);
		c = &w->mac_cache[sp_mac_key_slot(key, SP_MAC_CACHE)];
		if (likely(c->mac == key)) {
			dst[i] = c->port_idx;
			continue;
		}
		dst[i] = SP_DST_LOOKUP;
		miss[k++] = i;
		if (k == RTE_HASH_LOOKUP_BULK_MAX) {
			resolve_batch(w, pkts, miss, k, dst, now);
			k = 0;
		}
	}
	if (k > 0)
		resolve_batch(w, pkts, miss, k, dst, now);
	SP_CNT_ADD(w->stats.rx_bytes, bytes);
	for (i = 0; i < n; i++) {
		if (likely(dst[i] < SP_CONF_MAX_PORTS))
			tx_enqueue(w, dst[i], pkts[i]);
		else if (dst[i] == SP_DST_FLOOD)
			flood(w, pkts[i]);
		else if (dst[i] == SP_DST_TAKEN)
			continue;
		else
			drop(w, pkts[i], (enum sp_drop)(dst[i] - SP_DST_DROP));
	}
}

int
sp_worker_main(void *arg)
{
	struct sp_worker *w = arg;
	struct sp_dp *dp = w->dp;
	struct rte_mbuf *pkts[SP_TXBUF_MAX];
	uint64_t t0, t1, rx;
	uint16_t qi, n, p;

	rte_rcu_qsbr_thread_register(dp->qsbr, w->index);
	rte_rcu_qsbr_thread_online(dp->qsbr, w->index);
	SP_LOG(INFO, "worker %u on lcore %u polls %u queues", w->index, w->lcore, w->n_rxq);
	t0 = rte_rdtsc();
	while (!__atomic_load_n(&dp->stop, __ATOMIC_ACQUIRE)) {
		rx = 0;
		for (qi = 0; qi < w->n_rxq; qi++) {
			const struct sp_rxq *q = &w->rxq[qi];

			n = rte_eth_rx_burst(q->port_id, q->queue, pkts, dp->burst);
			if (n == 0)
				continue;
			rx += n;
			if (q->role == SP_PORT_ROLE_VM)
				from_vm(w, q, pkts, n, t0);
			else
				from_uplink(w, pkts, n, t0);
		}
		sp_tcp_poll(w, t0);
		for (p = 0; p < dp->n_ports; p++)
			tx_flush(w, p);
		rte_rcu_qsbr_quiescent(dp->qsbr, w->index);
		t1 = rte_rdtsc();
		if (rx) {
			SP_CNT_ADD(w->stats.rx_packets, rx);
			SP_CNT_ADD(w->stats.busy_cycles, t1 - t0);
		} else {
			SP_CNT_ADD(w->stats.idle_cycles, t1 - t0);
		}
		SP_CNT_ADD(w->stats.iterations, 1);
		t0 = t1;
	}
	for (p = 0; p < dp->n_ports; p++)
		tx_flush(w, p);
	rte_rcu_qsbr_thread_offline(dp->qsbr, w->index);
	rte_rcu_qsbr_thread_unregister(dp->qsbr, w->index);
	SP_LOG(INFO, "worker %u stopped", w->index);
	return 0;
}
