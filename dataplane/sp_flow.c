/* The TCP endpoint's per-worker tables: flows (rte_hash + array + free list), request buffers,
 * the locator cache, the segment builder and the telemetry dump. */
#include <errno.h>
#include <stdio.h>
#include <time.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_hash.h>
#include <rte_ip.h>
#include <rte_jhash.h>
#include <rte_malloc.h>
#include <rte_mempool.h>
#include <rte_random.h>
#include <rte_ring_elem.h>
#include <rte_tcp.h>
#include <rte_telemetry.h>

#include "sp_dp.h"
#include "sp_flow.h"
#include "sp_log.h"

static const char *const event_names[] = {
#define SP_TCP_EV_NAME(e, s) s,
	SP_TCP_EVENTS(SP_TCP_EV_NAME)
#undef SP_TCP_EV_NAME
};

static const char *const state_names[] = {
#define SP_FLOW_STATE_NAME(e, s) s,
	SP_FLOW_STATES(SP_FLOW_STATE_NAME)
#undef SP_FLOW_STATE_NAME
};

const char *
sp_tcp_event_name(unsigned int i)
{
	return i < SP_TCP_EV_MAX ? event_names[i] : "unknown";
}

const char *
sp_flow_state_name(unsigned int i)
{
	return i < SP_FLOW_STATE_MAX ? state_names[i] : "unknown";
}

bool
sp_tcp_active(const struct sp_worker *w)
{
	return w->tcp != NULL && w->tcp->live != 0;
}

int
sp_tcp_worker_create(struct sp_dp *dp, struct sp_worker *w, char *err, size_t errlen)
{
	const struct sp_conf *cfg = dp->cfg;
	int socket = (int)rte_lcore_to_socket_id(w->lcore);
	struct rte_hash_parameters hp = {0};
	struct sp_tcp_worker *tw;
	char name[RTE_MEMZONE_NAMESIZE];
	uint32_t i, up_mtu;

	tw = rte_zmalloc_socket("sp_tcp", sizeof(*tw), RTE_CACHE_LINE_SIZE, socket);
	if (tw == NULL)
		goto nomem;
	w->tcp = tw;
	tw->ws = &w->stats;
	tw->cache = dp->cache;
	tw->reqid = (rte_rdtsc() ^ ((uint64_t)w->index << 48)) | 1;
	tw->n_flows = (uint32_t)cfg->max_flows;
	tw->flows = rte_zmalloc_socket("sp_flows", sizeof(*tw->flows) * tw->n_flows,
				       RTE_CACHE_LINE_SIZE, socket);
	tw->free_idx = rte_malloc_socket("sp_flow_free", sizeof(uint32_t) * tw->n_flows, 0, socket);
	if (tw->flows == NULL || tw->free_idx == NULL)
		goto nomem;
	for (i = 0; i < tw->n_flows; i++)
		tw->free_idx[i] = tw->n_flows - 1 - i;
	tw->free_top = tw->n_flows;
	snprintf(name, sizeof(name), "sp_flows_%u", w->index);
	hp.name = name;
	hp.entries = tw->n_flows * 2;
	hp.key_len = sizeof(struct sp_flow_key);
	hp.hash_func = rte_jhash;
	hp.socket_id = socket;
	/* one worker reads and writes it (no concurrency flags); the extendable table makes
	 * every one of the 2 keys per flow fit, however the buckets fill */
	hp.extra_flag = RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
	tw->hash = rte_hash_create(&hp);
	tw->be_ref = rte_zmalloc_socket("sp_be_ref", sizeof(uint16_t) * SP_FLOW_BE_REF, 0, socket);
	tw->vip_ref =
		rte_zmalloc_socket("sp_vip_ref", sizeof(uint16_t) * SP_FLOW_BE_REF, 0, socket);
	if (tw->hash == NULL || tw->be_ref == NULL || tw->vip_ref == NULL)
		goto nomem;
	tw->lim = (struct sp_http_limits)SP_HTTP_LIMITS_DEFAULT;
	tw->buf_size = (uint32_t)cfg->flow_buffer;
	tw->lim.max_head = RTE_MIN(tw->buf_size, 16384u);
	tw->hdr_cap = tw->lim.max_head + SP_FLOW_INSERT_MAX;
	snprintf(name, sizeof(name), "sp_fbuf_%u", w->index);
	tw->bufs = rte_mempool_create(name, (unsigned int)cfg->flow_buffers,
				      sizeof(struct sp_fbuf) + tw->hdr_cap + tw->buf_size, 0, 0,
				      NULL, NULL, NULL, NULL, socket,
				      RTE_MEMPOOL_F_SP_PUT | RTE_MEMPOOL_F_SC_GET);
	if (tw->bufs == NULL) {
		snprintf(err, errlen,
			 "config: [dataplane] flow_buffers: cannot allocate %" PRId64
			 " buffers of %" PRId64 " bytes for worker %u (raise [eal] memory_mb)",
			 cfg->flow_buffers, cfg->flow_buffer, w->index);
		return -ENOMEM;
	}
	tw->loc_mask = (uint32_t)cfg->loc_cache - 1;
	tw->loc = rte_zmalloc_socket("sp_loc_cache", sizeof(*tw->loc) * (tw->loc_mask + 1),
				     RTE_CACHE_LINE_SIZE, socket);
	if (tw->loc == NULL)
		goto nomem;
	tw->verdict_mask = (uint32_t)cfg->auth_verdicts - 1;
	tw->verdicts =
		rte_zmalloc_socket("sp_verdicts", sizeof(*tw->verdicts) * (tw->verdict_mask + 1),
				   RTE_CACHE_LINE_SIZE, socket);
	if (tw->verdicts == NULL) {
		snprintf(err, errlen,
			 "config: [auth] verdicts: cannot allocate the verdicts of worker %u "
			 "(raise [eal] memory_mb)",
			 w->index);
		return -ENOMEM;
	}
	/* the cookie keys: random per process (a restart invalidates cookies in flight) */
	tw->keys.h1.k0 = rte_rand();
	tw->keys.h1.k1 = rte_rand();
	tw->keys.h2.k0 = rte_rand();
	tw->keys.h2.k1 = rte_rand();
	if (w->index > 0) /* every worker must accept every worker's cookies */
		tw->keys = dp->workers[0]->tcp->keys;
	up_mtu = (uint32_t)dp->ports[dp->uplink_idx].conf->mtu;
	tw->mss_clamp = (uint16_t)RTE_MIN(up_mtu - 40, 65495u);
	tw->hz = rte_get_tsc_hz();
	tw->syn_timeout_tsc = tw->hz * (uint64_t)cfg->syn_timeout_ms / 1000;
	tw->rto_tsc = tw->hz * (uint64_t)cfg->rto_ms / 1000;
	tw->idle_tsc = tw->hz * (uint64_t)cfg->idle_timeout_s;
	tw->half_close_tsc = tw->hz * (uint64_t)cfg->half_close_timeout_s;
	tw->resolve_tsc = tw->hz * ((uint64_t)cfg->loc_timeout_ms + 500) / 1000;
	tw->head_tsc = RTE_MIN(tw->idle_tsc, tw->hz * 30); /* a whole head within 30 s */
	tw->tw_tsc = tw->hz; /* late ACKs and FIN retransmissions of a closed splice: 1 s */
	tw->syn_retries = (uint32_t)cfg->syn_retries;
	tw->auth_tsc = tw->hz * (uint64_t)cfg->auth_timeout_ms / 1000;
	tw->verdict_tsc = tw->hz * (uint64_t)cfg->auth_verdict_ttl_s;
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		tw->wall_base_tsc = rte_rdtsc();
		tw->wall_base_s = (int64_t)ts.tv_sec;
	}
	tw->boot_s_tsc = rte_rdtsc();
	tw->cookie_tsc = RTE_MAX(tw->hz * (uint64_t)cfg->syncookie_period_s / 64, (uint64_t)1);
	return 0;
nomem:
	snprintf(err, errlen,
		 "config: [dataplane] max_flows: cannot allocate the flow tables of worker %u "
		 "(raise [eal] memory_mb)",
		 w->index);
	return -ENOMEM;
}

void
sp_tcp_worker_destroy(struct sp_worker *w)
{
	struct sp_tcp_worker *tw = w->tcp;
	uint32_t i;

	if (tw == NULL)
		return;
	for (i = 0; tw->flows != NULL && i < tw->n_flows; i++)
		if (tw->flows[i].buf != NULL)
			rte_mempool_put(tw->bufs, tw->flows[i].buf);
	rte_mempool_free(tw->bufs);
	rte_hash_free(tw->hash);
	rte_free(tw->be_ref);
	rte_free(tw->vip_ref);
	rte_free(tw->loc);
	rte_free(tw->verdicts);
	rte_free(tw->free_idx);
	rte_free(tw->flows);
	rte_free(tw);
	w->tcp = NULL;
}

/* ---- verdicts ------------------------------------------------------------------------------ */

uint32_t
sp_auth_verdict_hash(uint16_t port_idx, uint16_t slot, const char *ak, uint32_t len)
{
	return rte_jhash(ak, len, (uint32_t)port_idx << 16 | slot);
}

struct sp_auth_verdict *
sp_auth_verdict_find(struct sp_tcp_worker *tw, uint16_t port_idx, uint16_t slot, const char *ak,
		     uint32_t len, uint64_t now)
{
	uint32_t h = sp_auth_verdict_hash(port_idx, slot, ak, len);
	struct sp_auth_verdict *v = &tw->verdicts[h & tw->verdict_mask];

	if (v->expires_tsc <= now || v->hash != h || v->port_idx != port_idx || v->slot != slot ||
	    v->ak_len != len || memcmp(v->ak, ak, len) != 0)
		return NULL;
	return v;
}

/* ---- flows --------------------------------------------------------------------------------- */

struct sp_flow *
sp_flow_alloc(struct sp_tcp_worker *tw)
{
	struct sp_flow *f;
	uint32_t gen;

	if (tw->free_top == 0)
		return NULL;
	f = &tw->flows[tw->free_idx[--tw->free_top]];
	gen = f->gen + 1;
	memset(f, 0, sizeof(*f));
	f->gen = gen;
	f->method = 0xff;
	tw->live++;
	SP_CNT_ADD(tw->ws->flows, 1);
	return f;
}

void
sp_flow_cache_release(struct sp_tcp_worker *tw, struct sp_flow *f)
{
	if (f->centry != NULL) {
		__atomic_fetch_sub(&f->centry->refcnt, 1, __ATOMIC_RELEASE);
		f->centry = NULL;
	}
	if (f->fill != NULL) {
		__atomic_store_n(&tw->cache->ver[f->fill->ver_slot].fill_until, 0,
				 __ATOMIC_RELEASE);
		rte_mempool_put(tw->cache->fill_pool, f->fill);
		f->fill = NULL;
		SP_TCP_CNT(tw, CACHE_FILL_ABORT);
	}
}

void
sp_flow_release(struct sp_tcp_worker *tw, struct sp_flow *f)
{
	struct sp_flow_key k;

	if (f->state == SP_FLOW_FREE)
		return;
	sp_flow_vm_key(f, &k);
	sp_flow_key_del(tw, &k);
	sp_flow_ref(tw->vip_ref, f->vip, f->vport, -1);
	sp_flow_be_del(tw, f);
	sp_flow_cache_release(tw, f);
	if (f->buf != NULL) {
		rte_mempool_put(tw->bufs, f->buf);
		f->buf = NULL;
		SP_CNT_ADD(tw->ws->flow_buffers, (uint64_t)-1);
	}
	f->state = SP_FLOW_FREE;
	f->gen++;
	tw->free_idx[tw->free_top++] = sp_flow_index(tw, f);
	tw->live--;
	SP_CNT_ADD(tw->ws->flows, (uint64_t)-1);
	SP_TCP_CNT(tw, FLOW_FREED);
}

struct sp_flow *
sp_flow_lookup(struct sp_tcp_worker *tw, const struct sp_flow_key *k)
{
	void *data;

	if (rte_hash_lookup_data(tw->hash, k, &data) < 0)
		return NULL;
	return &tw->flows[(uint32_t)(uintptr_t)data];
}

int
sp_flow_key_add(struct sp_tcp_worker *tw, const struct sp_flow_key *k, struct sp_flow *f)
{
	if (rte_hash_lookup(tw->hash, k) >= 0)
		return -EEXIST;
	return rte_hash_add_key_data(tw->hash, k, (void *)(uintptr_t)sp_flow_index(tw, f));
}

void
sp_flow_key_del(struct sp_tcp_worker *tw, const struct sp_flow_key *k)
{
	rte_hash_del_key(tw->hash, k);
}

int
sp_flow_be_add(struct sp_tcp_worker *tw, struct sp_flow *f)
{
	struct sp_flow_key k;
	int rc;

	sp_flow_be_key(f, &k);
	rc = sp_flow_key_add(tw, &k, f);
	if (rc != 0)
		return rc;
	f->be_key = 1;
	sp_flow_ref(tw->be_ref, f->be_ip, f->be_port, 1);
	return 0;
}

void
sp_flow_be_del(struct sp_tcp_worker *tw, struct sp_flow *f)
{
	struct sp_flow_key k;

	if (!f->be_key)
		return;
	sp_flow_be_key(f, &k);
	sp_flow_key_del(tw, &k);
	f->be_key = 0;
	sp_flow_ref(tw->be_ref, f->be_ip, f->be_port, -1);
}

void
sp_flow_vm_key(const struct sp_flow *f, struct sp_flow_key *k)
{
	k->src_ip = f->vm_ip;
	k->dst_ip = f->vip;
	k->sport = f->vm_port;
	k->dport = f->vport;
}

void
sp_flow_be_key(const struct sp_flow *f, struct sp_flow_key *k)
{
	k->src_ip = f->be_ip;
	k->dst_ip = f->vm_ip;
	k->sport = f->be_port;
	k->dport = f->vm_port;
}

/* ---- locator cache (direct-mapped by hash; the control thread's messages fill it) ---------- */

uint32_t
sp_loc_hash(uint16_t slot, uint8_t op, const char *name, uint32_t len)
{
	return rte_jhash(name, len, (uint32_t)slot << 8 | op);
}

struct sp_loc_entry *
sp_loc_find(struct sp_tcp_worker *tw, uint16_t slot, uint8_t op, const char *name, uint32_t len,
	    uint64_t now)
{
	uint32_t h = sp_loc_hash(slot, op, name, len);
	struct sp_loc_entry *e = &tw->loc[h & tw->loc_mask];

	if (e->expires_tsc == 0 || e->hash != h || e->slot != slot || e->op != op ||
	    e->name_len != len || memcmp(e->name, name, len) != 0)
		return NULL;
	if (now >= e->expires_tsc) {
		e->expires_tsc = 0;
		SP_CNT_ADD(tw->ws->locators, (uint64_t)-1);
		return NULL;
	}
	return e;
}

void
sp_loc_store(struct sp_tcp_worker *tw, const struct sp_loc_msg *m, uint64_t now)
{
	uint32_t h = sp_loc_hash(m->svc_slot, m->op, m->name, m->name_len);
	struct sp_loc_entry *e = &tw->loc[h & tw->loc_mask];
	uint64_t life = tw->hz * m->ttl_ms / 1000;
	unsigned int i;

	if (m->status != SP_LOC_FOUND || m->n_nodes == 0 || life == 0 ||
	    m->name_len > SP_LOC_NAME_MAX || m->path_len > SP_LOC_PATH_MAX)
		return;
	if (e->expires_tsc == 0)
		SP_CNT_ADD(tw->ws->locators, 1);
	e->expires_tsc = now + life;
	e->refresh_tsc = now + life * 3 / 4;
	e->hash = h;
	e->slot = m->svc_slot;
	e->op = m->op;
	e->status = m->status;
	e->n_nodes = (uint8_t)RTE_MIN(m->n_nodes, SP_LOC_NODES);
	e->refresh_sent = 0;
	e->name_len = m->name_len;
	e->path_len = m->path_len;
	e->size = m->size;
	memcpy(e->node_ip, m->node_ip, sizeof(e->node_ip));
	memcpy(e->node_port, m->node_port, sizeof(e->node_port));
	memcpy(e->name, m->name, m->name_len);
	memcpy(e->path, m->path, m->path_len);
	for (i = 0; i < SP_LOC_METHODS; i++) {
		e->cred_len[i] = (uint8_t)RTE_MIN(m->cred_len[i], SP_LOC_CRED_MAX);
		memcpy(e->cred[i], m->cred[i], e->cred_len[i]);
	}
}

/* ---- segments shortpath makes -------------------------------------------------------------- */

int
sp_tcp_seg_write(struct rte_mbuf *m, const struct sp_tcp_seg *s, const void *p1, uint32_t l1,
		 const void *p2, uint32_t l2)
{
	return sp_tcp_seg_write_sum(m, s, p1, l1, p2, l2, -1);
}

int
sp_tcp_seg_write_sum(struct rte_mbuf *m, const struct sp_tcp_seg *s, const void *p1, uint32_t l1,
		     const void *p2, uint32_t l2, int32_t p2_sum)
{
	uint16_t hlen = (uint16_t)(sizeof(struct rte_tcp_hdr) + s->optlen);
	struct rte_ether_hdr *eth;
	struct rte_ipv4_hdr *ip;
	struct rte_tcp_hdr *tcp;

	eth = (struct rte_ether_hdr *)rte_pktmbuf_append(
		m, (uint16_t)(sizeof(*eth) + sizeof(*ip) + hlen + l1 + l2));
	if (eth == NULL)
		return -ENOSPC;
	ip = (struct rte_ipv4_hdr *)(eth + 1);
	tcp = (struct rte_tcp_hdr *)(ip + 1);
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	rte_ether_addr_copy(s->src_mac, &eth->src_addr);
	rte_ether_addr_copy(s->dst_mac, &eth->dst_addr);
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->type_of_service = 0;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(sizeof(*ip) + hlen + l1 + l2));
	ip->packet_id = rte_cpu_to_be_16(s->ip_id);
	ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_TCP;
	ip->hdr_checksum = 0;
	ip->src_addr = s->src_ip;
	ip->dst_addr = s->dst_ip;
	tcp->src_port = s->sport;
	tcp->dst_port = s->dport;
	tcp->sent_seq = rte_cpu_to_be_32(s->seq);
	tcp->recv_ack = rte_cpu_to_be_32(s->ack);
	tcp->data_off = (uint8_t)((hlen / 4) << 4);
	tcp->tcp_flags = s->flags;
	tcp->rx_win = rte_cpu_to_be_16(s->win);
	tcp->cksum = 0;
	tcp->tcp_urp = 0;
	if (s->optlen)
		memcpy(tcp + 1, s->opt, s->optlen);
	if (l1)
		memcpy((uint8_t *)(tcp + 1) + s->optlen, p1, l1);
	if (l2)
		memcpy((uint8_t *)(tcp + 1) + s->optlen + l1, p2, l2);
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	if (p2_sum < 0) {
		tcp->cksum = rte_ipv4_udptcp_cksum(ip, tcp);
	} else {
		/* p2's sum is known: sum the rest only (odd offset: its bytes swap places) */
		uint32_t off2 = hlen + l1, sum, b = (uint32_t)p2_sum;

		if (off2 & 1)
			b = ((b & 0xff) << 8) | (b >> 8);
		sum = (uint32_t)rte_raw_cksum(tcp, off2) + b + rte_ipv4_phdr_cksum(ip, 0);
		sum = (sum & 0xffff) + (sum >> 16);
		sum = (sum & 0xffff) + (sum >> 16);
		tcp->cksum = (uint16_t)(~sum & 0xffff);
		if (tcp->cksum == 0)
			tcp->cksum = 0xffff;
	}
	return 0;
}

int
sp_flow_send(struct sp_worker *w, const struct sp_flow *f, bool to_vm, uint32_t seq, uint32_t ack,
	     uint8_t flags, uint16_t win, const uint8_t *opt, uint8_t optlen, const void *p1,
	     uint32_t l1, const void *p2, uint32_t l2)
{
	return sp_flow_send_sum(w, f, to_vm, seq, ack, flags, win, opt, optlen, p1, l1, p2, l2, -1);
}

int
sp_flow_send_sum(struct sp_worker *w, const struct sp_flow *f, bool to_vm, uint32_t seq,
		 uint32_t ack, uint8_t flags, uint16_t win, const uint8_t *opt, uint8_t optlen,
		 const void *p1, uint32_t l1, const void *p2, uint32_t l2, int32_t p2_sum)
{
	struct sp_tcp_worker *tw = w->tcp;
	struct sp_tcp_seg s = {
		.src_mac = to_vm ? &f->gw_mac : &f->vm_mac,
		.dst_mac = to_vm ? &f->vm_mac : &f->gw_mac,
		.src_ip = to_vm ? f->vip : f->vm_ip,
		.dst_ip = to_vm ? f->vm_ip : f->be_ip,
		.sport = to_vm ? f->vport : f->vm_port,
		.dport = to_vm ? f->vm_port : f->be_port,
		.seq = seq,
		.ack = ack,
		.flags = flags,
		.win = win,
		.ip_id = tw->ip_id++,
		.opt = opt,
		.optlen = optlen,
	};
	struct rte_mbuf *m;

	m = rte_pktmbuf_alloc(w->dp->pool);
	if (m == NULL || sp_tcp_seg_write_sum(m, &s, p1, l1, p2, l2, p2_sum) != 0) {
		rte_pktmbuf_free(m);
		SP_TCP_CNT(tw, ALLOC_FAILED);
		return -ENOBUFS;
	}
	sp_worker_tx(w, to_vm ? f->port_idx : w->dp->uplink_idx, m);
	return 0;
}

/* ---- telemetry ----------------------------------------------------------------------------- */

static void
ip_str(uint32_t ip_be, uint16_t port_be, char *buf, size_t len)
{
	const uint8_t *a = (const uint8_t *)&ip_be;

	snprintf(buf, len, "%u.%u.%u.%u:%u", a[0], a[1], a[2], a[3], rte_be_to_cpu_16(port_be));
}

int
sp_tcp_flows_dump(const struct sp_worker *w, struct rte_tel_data *d, unsigned int max)
{
	const struct sp_tcp_worker *tw = w->tcp;
	uint64_t now = rte_rdtsc();
	unsigned int n = 0;
	uint32_t i;
	char a[32];

	if (tw == NULL)
		return 0;
	for (i = 0; i < tw->n_flows && n < max; i++) {
		const struct sp_flow *f = &tw->flows[i];
		uint8_t st = __atomic_load_n(&f->state, __ATOMIC_RELAXED);
		struct rte_tel_data *o;

		if (st == SP_FLOW_FREE)
			continue;
		o = rte_tel_data_alloc();
		if (o == NULL)
			return -ENOMEM;
		rte_tel_data_start_dict(o);
		rte_tel_data_add_dict_int(o, "worker", (int)w->index);
		rte_tel_data_add_dict_string(o, "state", sp_flow_state_name(st));
		ip_str(f->vm_ip, f->vm_port, a, sizeof(a));
		rte_tel_data_add_dict_string(o, "vm", a);
		ip_str(f->vip, f->vport, a, sizeof(a));
		rte_tel_data_add_dict_string(o, "vip", a);
		if (st >= SP_FLOW_CONNECTING && st != SP_FLOW_REPLY) {
			ip_str(f->be_ip, f->be_port, a, sizeof(a));
			rte_tel_data_add_dict_string(o, "target", a);
			rte_tel_data_add_dict_string(o, "target_kind", f->target ? "vip" : "node");
		}
		rte_tel_data_add_dict_int(o, "service_slot", f->slot);
		rte_tel_data_add_dict_u64(o, "bytes_from_vm", f->bytes_vm);
		rte_tel_data_add_dict_u64(o, "bytes_from_backend", f->bytes_be);
		rte_tel_data_add_dict_u64(o, "age_ms", (now - f->created_tsc) * 1000 / tw->hz);
		rte_tel_data_add_dict_u64(o, "idle_ms", (now - f->last_tsc) * 1000 / tw->hz);
		snprintf(a, sizeof(a), "w%u_%u", w->index, i); /* 22.11: [A-Za-z0-9_/] */
		if (rte_tel_data_add_dict_container(d, a, o, 0) != 0) {
			rte_tel_data_free(o);
			break;
		}
		n++;
	}
	return (int)n;
}
