/* The worker lcore loop: rx burst, classify, forward byte-identical, tx; counts every drop. */
#include <rte_branch_prediction.h>
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_hash.h>
#include <rte_prefetch.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring_elem.h>

#include "sp_dp.h"
#include "sp_log.h"

static inline void
drop(struct sp_worker *w, struct rte_mbuf *m, enum sp_drop why)
{
	SP_CNT_ADD(w->stats.drops[why], 1);
	rte_pktmbuf_free(m);
}

static void
tx_flush(struct sp_worker *w, uint16_t port_idx)
{
	struct sp_txbuf *tb = &w->tx[port_idx];
	uint16_t sent, i;
	uint64_t bytes = 0;

	if (tb->n == 0)
		return;
	sent = rte_eth_tx_burst(w->dp->ports[port_idx].port_id, (uint16_t)w->index, tb->pkts,
				tb->n);
	for (i = 0; i < sent; i++)
		bytes += tb->pkts[i]->pkt_len;
	SP_CNT_ADD(w->stats.tx_packets, sent);
	SP_CNT_ADD(w->stats.tx_bytes, bytes);
	if (unlikely(sent < tb->n)) {
		SP_CNT_ADD(w->stats.drops[SP_DROP_TX_FULL], tb->n - sent);
		rte_pktmbuf_free_bulk(&tb->pkts[sent], tb->n - sent);
	}
	tb->n = 0;
}

static inline void
tx_enqueue(struct sp_worker *w, uint16_t port_idx, struct rte_mbuf *m)
{
	struct sp_txbuf *tb = &w->tx[port_idx];

	tb->pkts[tb->n++] = m;
	if (unlikely(tb->n == SP_TXBUF_MAX))
		tx_flush(w, port_idx);
}

/* Parse for classification and counting; the frame is never modified. -1 for a runt. */
static inline int
classify(struct sp_worker *w, struct rte_mbuf *m)
{
	struct sp_pkt_info pi;
	uint64_t *cls = w->stats.classes;

	sp_pkt_parse_partial(rte_pktmbuf_mtod(m, const uint8_t *), rte_pktmbuf_data_len(m),
			     rte_pktmbuf_pkt_len(m), &pi);
	if (unlikely(pi.err != SP_PKT_ERR_NONE)) {
		SP_CNT_ADD(w->stats.parse[pi.err], 1);
		if (pi.err == SP_PKT_ERR_RUNT)
			return -1;
	}
	if (pi.n_vlan)
		SP_CNT_ADD(cls[SP_CLASS_VLAN], 1);
	switch (pi.l3) {
	case SP_L3_ARP:
		SP_CNT_ADD(cls[SP_CLASS_ARP], 1);
		break;
	case SP_L3_IPV4:
		SP_CNT_ADD(cls[SP_CLASS_IPV4], 1);
		break;
	case SP_L3_IPV6:
		SP_CNT_ADD(cls[SP_CLASS_IPV6], 1);
		break;
	case SP_L3_OTHER:
		SP_CNT_ADD(cls[SP_CLASS_OTHER_L3], 1);
		break;
	default:
		break;
	}
	switch (pi.l4) {
	case SP_L4_TCP:
		SP_CNT_ADD(cls[SP_CLASS_TCP], 1);
		break;
	case SP_L4_UDP:
		SP_CNT_ADD(cls[SP_CLASS_UDP], 1);
		break;
	case SP_L4_ICMP:
	case SP_L4_ICMPV6:
		SP_CNT_ADD(cls[SP_CLASS_ICMP], 1);
		break;
	default:
		break;
	}
	if (m->nb_segs > 1)
		SP_CNT_ADD(cls[SP_CLASS_SCATTERED], 1);
	if (rte_is_multicast_ether_addr(&rte_pktmbuf_mtod(m, struct rte_ether_hdr *)->dst_addr))
		SP_CNT_ADD(cls[SP_CLASS_MULTICAST], 1);
	return 0;
}

static inline uint64_t
mac_u64(const struct rte_ether_addr *a)
{
	const uint8_t *b = a->addr_bytes;

	return ((uint64_t)b[0] << 40 | (uint64_t)b[1] << 32 | (uint64_t)b[2] << 24 |
		(uint64_t)b[3] << 16 | (uint64_t)b[4] << 8 | b[5]) +
	       1;
}

static inline struct sp_learn_slot *
learn_slot(struct sp_worker *w, uint64_t key)
{
	return &w->learn[(key * 0x9e3779b97f4a7c15ULL) >> 56 & (SP_LEARN_SLOTS - 1)];
}

/* Tell the control thread which VM port a source MAC lives on, at most once per refresh. */
static inline void
learn(struct sp_worker *w, uint16_t port_idx, const struct rte_ether_addr *src, uint64_t now)
{
	uint64_t key = mac_u64(src);
	struct sp_learn_slot *s = learn_slot(w, key);
	struct sp_punt_msg msg;

	if (likely(s->mac == key && s->port_idx == port_idx &&
		   now - s->tsc < w->dp->learn_refresh_tsc))
		return;
	msg.type = SP_PUNT_LEARN;
	msg.port_idx = port_idx;
	rte_ether_addr_copy(src, (struct rte_ether_addr *)msg.mac);
	msg.worker = (uint16_t)w->index;
	msg.reserved[0] = msg.reserved[1] = 0;
	if (unlikely(rte_ring_mp_enqueue_elem(w->dp->punt, &msg, sizeof(msg)) != 0)) {
		SP_CNT_ADD(w->stats.events[SP_EVENT_PUNT_RING_FULL], 1);
		return;
	}
	SP_CNT_ADD(w->stats.events[SP_EVENT_LEARN_PUNTED], 1);
	if (s->mac != key || s->port_idx != port_idx)
		s->first_tsc = now;
	s->mac = key;
	s->port_idx = port_idx;
	s->tsc = now;
}

/* VM → uplink: everything with an Ethernet header and a unicast source goes up unchanged. */
static void
from_vm(struct sp_worker *w, const struct sp_rxq *q, struct rte_mbuf **pkts, uint16_t n)
{
	struct sp_dp *dp = w->dp;
	uint64_t now = rte_rdtsc();
	uint16_t i;

	for (i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		struct rte_ether_hdr *eth;

		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void *));
		if (unlikely(classify(w, m) < 0)) {
			drop(w, m, SP_DROP_RUNT);
			continue;
		}
		eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
		if (unlikely(!rte_is_valid_assigned_ether_addr(&eth->src_addr))) {
			drop(w, m, SP_DROP_BAD_SRC_MAC);
			continue;
		}
		if (dp->cfg->mac_learn_limit > 0)
			learn(w, q->port_idx, &eth->src_addr, now);
		tx_enqueue(w, dp->uplink_idx, m);
	}
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
static inline int
local_learned_port(struct sp_worker *w, const struct rte_ether_addr *dst, uint64_t now)
{
	uint64_t key = mac_u64(dst);
	struct sp_learn_slot *s = learn_slot(w, key);

	if (s->mac == key && now - s->first_tsc < w->dp->learn_grace_tsc)
		return s->port_idx;
	return -1;
}

/* Send a batch of uplink unicast frames to the VM ports their destination MACs belong to. */
static void
uplink_unicast(struct sp_worker *w, const void **keys, struct rte_mbuf **uc, uint16_t k)
{
	void *data[RTE_HASH_LOOKUP_BULK_MAX];
	uint64_t hits = 0, now = rte_rdtsc();
	uint16_t j;
	int local;

	rte_hash_lookup_bulk_data(w->dp->mac_table, keys, k, &hits, data);
	for (j = 0; j < k; j++) {
		if (hits & (1ULL << j)) {
			tx_enqueue(w, (uint16_t)(uintptr_t)data[j], uc[j]);
			continue;
		}
		local = local_learned_port(w, keys[j], now);
		if (local >= 0)
			tx_enqueue(w, (uint16_t)local, uc[j]);
		else
			drop(w, uc[j], SP_DROP_UNKNOWN_DST);
	}
}

/* Uplink → VM: unicast by the MAC table (bulk lookup), multicast flooded to every VM port. */
static void
from_uplink(struct sp_worker *w, struct rte_mbuf **pkts, uint16_t n)
{
	const void *keys[RTE_HASH_LOOKUP_BULK_MAX];
	struct rte_mbuf *uc[RTE_HASH_LOOKUP_BULK_MAX];
	uint16_t i, k = 0;

	for (i = 0; i < n; i++) {
		struct rte_mbuf *m = pkts[i];
		struct rte_ether_hdr *eth;

		if (i + 1 < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 1], void *));
		if (unlikely(classify(w, m) < 0)) {
			drop(w, m, SP_DROP_RUNT);
			continue;
		}
		eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
		if (rte_is_multicast_ether_addr(&eth->dst_addr)) {
			if (k > 0) { /* keep per-port order: earlier unicast goes first */
				uplink_unicast(w, keys, uc, k);
				k = 0;
			}
			flood(w, m);
			continue;
		}
		keys[k] = &eth->dst_addr;
		uc[k++] = m;
		if (k == RTE_HASH_LOOKUP_BULK_MAX) {
			uplink_unicast(w, keys, uc, k);
			k = 0;
		}
	}
	if (k > 0)
		uplink_unicast(w, keys, uc, k);
}

int
sp_worker_main(void *arg)
{
	struct sp_worker *w = arg;
	struct sp_dp *dp = w->dp;
	struct rte_mbuf *pkts[SP_TXBUF_MAX];
	uint64_t t0, t1, rx, bytes;
	uint16_t qi, n, i, p;

	rte_rcu_qsbr_thread_register(dp->qsbr, w->index);
	rte_rcu_qsbr_thread_online(dp->qsbr, w->index);
	SP_LOG(INFO, "worker %u on lcore %u polls %u queues", w->index, w->lcore, w->n_rxq);
	t0 = rte_rdtsc();
	while (!__atomic_load_n(&dp->stop, __ATOMIC_ACQUIRE)) {
		rx = 0;
		bytes = 0;
		for (qi = 0; qi < w->n_rxq; qi++) {
			const struct sp_rxq *q = &w->rxq[qi];

			n = rte_eth_rx_burst(q->port_id, q->queue, pkts, dp->burst);
			if (n == 0)
				continue;
			rx += n;
			for (i = 0; i < n; i++)
				bytes += pkts[i]->pkt_len;
			if (q->role == SP_PORT_ROLE_VM)
				from_vm(w, q, pkts, n);
			else
				from_uplink(w, pkts, n);
		}
		for (p = 0; p < dp->n_ports; p++)
			tx_flush(w, p);
		rte_rcu_qsbr_quiescent(dp->qsbr, w->index);
		t1 = rte_rdtsc();
		if (rx) {
			SP_CNT_ADD(w->stats.rx_packets, rx);
			SP_CNT_ADD(w->stats.rx_bytes, bytes);
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
