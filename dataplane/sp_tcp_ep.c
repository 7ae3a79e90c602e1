/* The worker's TCP endpoint for direct services: handshake with SYN cookies, request held and
 * parsed, decision (storage node or VIP), backend connect with retries, seq/ack splice, timers. */
#include <errno.h>
#include <string.h>

#include <rte_branch_prediction.h>
#include <rte_cycles.h>
#include <rte_ip.h>
#include <rte_mempool.h>
#include <rte_ring.h>
#include <rte_tcp.h>

#include "sp_auth.h"
#include "sp_cache.h"
#include "sp_cache_http.h"
#include "sp_dp.h"
#include "sp_flow.h"
#include "sp_policy.h"
#include "sp_s3err.h"
#include "sp_tcp.h"

#define F_FIN RTE_TCP_FIN_FLAG
#define F_SYN RTE_TCP_SYN_FLAG
#define F_RST RTE_TCP_RST_FLAG
#define F_PSH RTE_TCP_PSH_FLAG
#define F_ACK RTE_TCP_ACK_FLAG

#define TARGET_NODE 0
#define TARGET_VIP 1
#define MAX_RETX 6
#define SWEEP_PER_POLL 64
#define LOC_BURST 32
#define AUTH_BURST 16

/* One received segment, parsed (the frame's headers are in its first mbuf segment). */
struct seg {
	struct rte_ether_hdr *eth;
	struct rte_ipv4_hdr *ip;
	struct rte_tcp_hdr *tcp;
	uint32_t off;  /* payload offset in the frame */
	uint32_t plen; /* payload bytes */
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t win;
};

static inline bool
seq_lt(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) < 0;
}

static inline bool
seq_le(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) <= 0;
}

static inline uint64_t
now_s(const struct sp_tcp_worker *tw, uint64_t now)
{
	/* cookie clock seconds (64 per [dataplane] syncookie_period_s), starting at one count */
	return (now - tw->boot_s_tsc) / tw->cookie_tsc + 64;
}

/* Unix seconds now (the SigV4 date checks). */
static inline int64_t
wall_s(const struct sp_tcp_worker *tw, uint64_t now)
{
	return tw->wall_base_s + (int64_t)((now - tw->wall_base_tsc) / tw->hz);
}

static bool
seg_parse(struct rte_mbuf *m, const struct sp_pkt_info *pi, struct seg *s)
{
	uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);

	if (pi->n_vlan != 0 || pi->l4_off == 0 || pi->payload_off == 0 ||
	    pi->payload_off > rte_pktmbuf_data_len(m))
		return false;
	s->eth = (struct rte_ether_hdr *)p;
	s->ip = (struct rte_ipv4_hdr *)(p + pi->l3_off);
	s->tcp = (struct rte_tcp_hdr *)(p + pi->l4_off);
	s->off = pi->payload_off;
	s->plen = pi->l3_end - pi->payload_off;
	s->seq = rte_be_to_cpu_32(s->tcp->sent_seq);
	s->ack = rte_be_to_cpu_32(s->tcp->recv_ack);
	s->flags = s->tcp->tcp_flags;
	s->win = rte_be_to_cpu_16(s->tcp->rx_win);
	return true;
}

/* Copy len payload bytes at off of the segment into dst (the payload may be chained). */
static inline void
seg_copy(struct rte_mbuf *m, const struct seg *s, uint32_t off, uint32_t len, char *dst)
{
	const void *src = rte_pktmbuf_read(m, s->off + off, len, dst);

	if (src != dst)
		memcpy(dst, src, len);
}

/* The TCP checksum of a segment shortpath terminates (the NIC's verdict, else computed). */
static inline bool
seg_csum_ok(const struct rte_mbuf *m, const struct seg *s)
{
	uint64_t fl = m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;

	if (fl == RTE_MBUF_F_RX_L4_CKSUM_GOOD)
		return true;
	if (fl == RTE_MBUF_F_RX_L4_CKSUM_BAD)
		return false;
	return rte_ipv4_udptcp_cksum_mbuf_verify(
		       m, s->ip, (uint16_t)((uint8_t *)s->tcp - (uint8_t *)s->eth)) == 0;
}

static inline struct sp_tcp_worker *
tcpw(struct sp_worker *w)
{
	return w->tcp;
}

static inline char *
fbuf_data(const struct sp_tcp_worker *tw, struct sp_fbuf *b)
{
	return b->hdr + tw->hdr_cap;
}

/* The window shortpath offers the VM while it holds the request: the buffer's free space. */
static inline uint16_t
hold_window(const struct sp_tcp_worker *tw, const struct sp_flow *f)
{
	uint32_t free_b = f->buf ? tw->buf_size - f->buf->len : 0;

	return (uint16_t)RTE_MIN(free_b >> (f->ws ? SP_FLOW_OUR_WSCALE : 0), 65535u);
}

static inline void
ack_vm(struct sp_worker *w, struct sp_flow *f)
{
	sp_flow_send(w, f, true, f->snd_nxt, f->rcv_nxt, F_ACK, hold_window(tcpw(w), f), NULL, 0,
		     NULL, 0, NULL, 0);
}

static void
rst_vm(struct sp_worker *w, const struct sp_flow *f)
{
	bool spliced = f->state == SP_FLOW_SPLICE || f->state == SP_FLOW_TIME_WAIT;

	sp_flow_send(w, f, true, spliced ? f->be_nxt : f->snd_nxt,
		     spliced && seq_lt(f->rcv_nxt, f->vm_nxt) ? f->vm_nxt : f->rcv_nxt,
		     F_RST | F_ACK, 0, NULL, 0, NULL, 0, NULL, 0);
	SP_TCP_CNT(tcpw(w), RST_SENT);
}

static void
rst_be(struct sp_worker *w, const struct sp_flow *f)
{
	uint32_t nxt = seq_lt(f->rcv_nxt, f->vm_nxt) ? f->vm_nxt : f->rcv_nxt;

	uint32_t seq = nxt + f->delta_c;

	if (f->state == SP_FLOW_CONNECTING)
		seq = f->vm_isn + 1;
	else if (f->buf != NULL) /* held bytes outstanding: what the backend acknowledged */
		seq = f->be_una;
	sp_flow_send(w, f, false, seq, f->vm_ack_be, F_RST | F_ACK, 0, NULL, 0, NULL, 0, NULL, 0);
	SP_TCP_CNT(tcpw(w), RST_SENT);
}

/* ---- the handshake (no state) -------------------------------------------------------------- */

static void
tuple_of(const struct seg *s, struct sp_syncookie_tuple *t)
{
	memset(t, 0, sizeof(*t));
	memcpy(t->src, &s->ip->src_addr, 4);
	memcpy(t->dst, &s->ip->dst_addr, 4);
	t->sport = s->tcp->src_port;
	t->dport = s->tcp->dst_port;
}

/* A template flow with a segment's addresses (the VM's side), for stateless replies. */
static void
flow_from_seg(struct sp_flow *f, const struct seg *s, uint16_t port_idx)
{
	memset(f, 0, sizeof(*f));
	f->vm_ip = s->ip->src_addr;
	f->vip = s->ip->dst_addr;
	f->vm_port = s->tcp->src_port;
	f->vport = s->tcp->dst_port;
	rte_ether_addr_copy(&s->eth->src_addr, &f->vm_mac);
	rte_ether_addr_copy(&s->eth->dst_addr, &f->gw_mac);
	f->port_idx = port_idx;
}

static void
syn_in(struct sp_worker *w, const struct seg *s, struct rte_mbuf *m, uint16_t port_idx,
       uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);
	uint8_t optlen = (uint8_t)(((s->tcp->data_off >> 4) * 4) - sizeof(struct rte_tcp_hdr));
	struct sp_syncookie_opts syn = {0}, chosen;
	struct sp_syncookie_tuple t;
	struct sp_tcp_opts o;
	uint8_t opt[12];
	struct sp_flow tmpl;
	uint32_t cookie;
	size_t n;

	SP_TCP_CNT(tw, SYN_RX);
	if (sp_tcp_parse_opts((const uint8_t *)(s->tcp + 1), optlen, &o) != SP_TCP_OPT_OK) {
		SP_TCP_CNT(tw, BAD_SEGMENT);
		return;
	}
	syn.mss = o.has_mss ? o.mss : 0;
	syn.wscale = o.has_wscale ? RTE_MIN(o.wscale, 14) : SP_SYNCOOKIE_NO_WSCALE; /* RFC 7323 */
	syn.sack_ok = false; /* not offered back: the splice does not translate SACK blocks */
	tuple_of(s, &t);
	cookie = sp_syncookie_make(&tw->keys, &t, s->seq, sp_syncookie_count(now_s(tw, now)), &syn,
				   tw->mss_clamp, &chosen);
	n = sp_tcp_write_synack_opts(opt, tw->mss_clamp, o.has_wscale, SP_FLOW_OUR_WSCALE, false);
	flow_from_seg(&tmpl, s, port_idx);
	if (sp_flow_send(w, &tmpl, true, cookie, s->seq + 1, F_SYN | F_ACK,
			 (uint16_t)RTE_MIN(tw->buf_size, 65535u), opt, (uint8_t)n, NULL, 0, NULL,
			 0) == 0)
		SP_TCP_CNT(tw, SYNACK_TX);
	RTE_SET_USED(m);
}

/* ---- request buffering and the decision ---------------------------------------------------- */

static void decide(struct sp_worker *w, struct sp_flow *f, uint64_t now);
static void connect_target(struct sp_worker *w, struct sp_flow *f, uint64_t now);
static void bind_vip(struct sp_worker *w, struct sp_flow *f, enum sp_tcp_event why, uint64_t now);
static void cache_write_through(struct sp_worker *w, struct sp_flow *f, uint64_t now);

/* An ACK completing a handshake: a flow if the cookie is ours. false: forward it unchanged. */
static bool
ack_in(struct sp_worker *w, const struct seg *s, uint16_t port_idx, int slot, uint64_t now,
       struct sp_flow **out)
{
	struct sp_tcp_worker *tw = tcpw(w);
	struct sp_syncookie_tuple t;
	struct sp_syncookie_opts o;
	struct sp_flow_key k;
	struct sp_flow *f;
	void *b;
	int v;

	tuple_of(s, &t);
	v = sp_syncookie_check(&tw->keys, &t, s->seq - 1, s->ack - 1,
			       sp_syncookie_count(now_s(tw, now)), &o);
	if (v == SP_SYNCOOKIE_STALE) {
		SP_TCP_CNT(tw, COOKIE_STALE);
		return false;
	}
	if (v != SP_SYNCOOKIE_OK) {
		SP_TCP_CNT(tw, COOKIE_FORGED);
		return false;
	}
	if (tw->free_top == 0) {
		SP_TCP_CNT(tw, FLOWS_FULL);
		return false;
	}
	if (rte_mempool_get(tw->bufs, &b) != 0) {
		SP_TCP_CNT(tw, BUFFERS_EMPTY);
		return false;
	}
	f = sp_flow_alloc(tw);
	SP_TCP_CNT(tw, COOKIE_OK);
	SP_CNT_ADD(tw->ws->flow_buffers, 1);
	{
		uint32_t gen = f->gen;

		flow_from_seg(f, s, port_idx);
		f->gen = gen;
	}
	f->method = 0xff;
	f->buf = b;
	f->buf->len = f->buf->head_len = f->buf->hdr_len = 0;
	sp_http_req_init(&f->buf->req);
	f->slot = (uint16_t)slot;
	f->vm_isn = s->seq - 1;
	f->our_isn = s->ack - 1;
	f->rcv_nxt = s->seq;
	f->snd_nxt = f->snd_una = s->ack;
	f->mss = o.mss;
	f->ws = o.wscale != SP_SYNCOOKIE_NO_WSCALE;
	f->vm_ws = f->ws ? o.wscale : 0;
	f->vm_win = s->win;
	f->created_tsc = f->last_tsc = now;
	f->timer_tsc = now + tw->head_tsc;
	f->state = SP_FLOW_HEAD;
	sp_flow_vm_key(f, &k);
	sp_flow_ref(tw->vip_ref, f->vip, f->vport, 1);
	if (sp_flow_key_add(tw, &k, f) != 0) {
		SP_TCP_CNT(tw, FLOWS_FULL);
		sp_flow_release(tw, f);
		return false;
	}
	*out = f;
	return true;
}

/* Take the segment's in-window new bytes into the buffer; ACK. Returns bytes taken. */
static uint32_t
hold_data(struct sp_worker *w, struct sp_flow *f, struct rte_mbuf *m, const struct seg *s)
{
	struct sp_tcp_worker *tw = tcpw(w);
	uint32_t skip, take, room;

	if (s->plen == 0 && !(s->flags & F_FIN))
		return 0;
	if (seq_lt(f->rcv_nxt, s->seq)) { /* a hole: the VM will send it again */
		SP_TCP_CNT(tw, DATA_OOO);
		ack_vm(w, f);
		return 0;
	}
	skip = f->rcv_nxt - s->seq;
	if (skip >= s->plen && !(s->flags & F_FIN)) {
		if (s->plen > 0) {
			SP_TCP_CNT(tw, DATA_DUP);
			ack_vm(w, f);
		}
		return 0;
	}
	take = skip < s->plen ? s->plen - skip : 0;
	room = f->buf ? tw->buf_size - f->buf->len : 0;
	if (take > room) {
		SP_TCP_CNT(tw, DATA_OVER_WINDOW);
		take = room;
	}
	if (take > 0) {
		seg_copy(m, s, skip, take, fbuf_data(tw, f->buf) + f->buf->len);
		f->buf->len += take;
		f->rcv_nxt += take;
		f->bytes_vm += take;
	}
	if ((s->flags & F_FIN) && skip + take == s->plen && !f->fin_vm) {
		f->fin_vm = 1;
		f->rcv_nxt++;
	}
	f->ack_due = 1; /* after the segment is handled: an answer made meanwhile carries it */
	return take;
}

/* The methods that can go direct, by parser method. */
static uint8_t
loc_method(uint8_t http_method)
{
	switch (http_method) {
	case SP_HTTP_METHOD_GET:
		return SP_LOC_GET;
	case SP_HTTP_METHOD_HEAD:
		return SP_LOC_HEAD;
	case SP_HTTP_METHOD_PUT:
		return SP_LOC_PUT;
	case SP_HTTP_METHOD_DELETE:
		return SP_LOC_DELETE;
	default:
		return 0xff;
	}
}

/* Segments of the path: 1 for "/bucket" or "/bucket/", 2+ for "/bucket/key...". */
static unsigned int
path_segments(const char *p, uint32_t len)
{
	uint32_t i;

	if (len < 2 || p[0] != '/' || p[1] == '/')
		return 0;
	for (i = 1; i < len; i++)
		if (p[i] == '/')
			return i + 1 < len ? 2 : 1;
	return 1;
}

static void
punt_loc(struct sp_worker *w, struct sp_flow *f, uint8_t kind, uint8_t op, const char *name,
	 uint32_t name_len, const char *query, uint32_t query_len)
{
	struct sp_tcp_worker *tw = tcpw(w);
	struct sp_punt_msg pm = {0};
	struct sp_loc_msg *m;
	void *obj;

	if (name_len > SP_LOC_NAME_MAX || query_len > SP_LOC_NAME_MAX ||
	    rte_mempool_get(w->dp->loc_pool, &obj) != 0) {
		SP_TCP_CNT(tw, PUNT_FULL);
		return;
	}
	m = obj;
	memset(m, 0, offsetof(struct sp_loc_msg, name));
	m->kind = kind;
	m->op = op;
	m->worker = (uint16_t)w->index;
	m->svc_slot = f->slot;
	m->flow = sp_flow_index(tw, f);
	m->flow_gen = f->gen;
	m->name_len = (uint16_t)name_len;
	memcpy(m->name, name, name_len);
	m->query_len = (uint16_t)query_len;
	if (query_len)
		memcpy(m->query, query, query_len);
	pm.type = SP_PUNT_LOC;
	pm.worker = (uint16_t)w->index;
	pm.loc = m;
	if (rte_ring_mp_enqueue_elem(w->dp->punt, &pm, sizeof(pm)) != 0) {
		rte_mempool_put(w->dp->loc_pool, m);
		SP_TCP_CNT(tw, PUNT_FULL);
		return;
	}
	f->state = kind == SP_LOC_RESOLVE ? SP_FLOW_RESOLVING : f->state;
}

/*
 * The rewritten head for a storage node: the node's path as target, the client's headers
 * without Connection / Keep-Alive / a client's X-SP-Node-Auth, then the credential and
 * Connection: close. -ENOSPC if it does not fit.
 */
static int
rewrite_head(struct sp_tcp_worker *tw, struct sp_flow *f, const struct sp_loc_entry *e)
{
	struct sp_fbuf *b = f->buf;
	const struct sp_http_req *r = &b->req;
	const char *d = fbuf_data(tw, b);
	char *o = b->hdr, *end = b->hdr + tw->hdr_cap;
	unsigned int i;

#define PUT(src, n)                                                                                \
	do {                                                                                       \
		if ((size_t)(end - o) < (size_t)(n))                                               \
			return -ENOSPC;                                                            \
		memcpy(o, (src), (n));                                                             \
		o += (n);                                                                          \
	} while (0)
	PUT(d + r->method_tok.off, r->method_tok.len);
	PUT(" ", 1);
	PUT(e->path, e->path_len);
	PUT(" HTTP/1.1\r\n", 11);
	for (i = 0; i < r->n_headers; i++) {
		const struct sp_http_header *h = &r->headers[i];
		const char *n = d + h->name.off;

		if ((h->name.len == 10 && strncasecmp(n, "connection", 10) == 0) ||
		    (h->name.len == 10 && strncasecmp(n, "keep-alive", 10) == 0) ||
		    (h->name.len == 14 && strncasecmp(n, "x-sp-node-auth", 14) == 0))
			continue;
		PUT(n, h->name.len);
		PUT(": ", 2);
		PUT(d + h->value.off, h->value.len);
		PUT("\r\n", 2);
	}
	PUT("X-SP-Node-Auth: ", 16);
	PUT(e->cred[f->method], e->cred_len[f->method]);
	PUT("\r\nConnection: close\r\n\r\n", 23);
#undef PUT
	b->hdr_len = (uint32_t)(o - b->hdr);
	return 0;
}

/* Connect to replica f->node of locator e. */
static void
bind_node(struct sp_worker *w, struct sp_flow *f, struct sp_loc_entry *e, uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);
	int32_t head = (int32_t)f->buf->head_len;

	if (f->node >= e->n_nodes || e->cred_len[f->method] == 0) {
		bind_vip(w, f, SP_TCP_EV_VIP_NO_LOCATOR, now);
		return;
	}
	if (f->buf->hdr_len == 0 && rewrite_head(tw, f, e) != 0) {
		bind_vip(w, f, SP_TCP_EV_HEAD_TOO_LARGE, now);
		return;
	}
	f->target = TARGET_NODE;
	f->be_ip = e->node_ip[f->node];
	f->be_port = e->node_port[f->node];
	f->delta_c = f->buf->hdr_len - (uint32_t)head;
	if (f->node == 0)
		SP_TCP_CNT(tw, BIND_NODE);
	connect_target(w, f, now);
}

/* Bind the connection to the service's VIP: what is held goes there unchanged. */
static void
bind_vip(struct sp_worker *w, struct sp_flow *f, enum sp_tcp_event why, uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);

	SP_CNT_ADD(tw->ws->tcp[why], 1);
	SP_TCP_CNT(tw, BIND_VIP);
	f->target = TARGET_VIP;
	f->be_ip = f->vip;
	f->be_port = f->vport;
	f->buf->head_len = f->buf->hdr_len = 0;
	f->delta_c = 0;
	connect_target(w, f, now);
}

/* Locator e (or none) for the held request: go. */
static void
resume(struct sp_worker *w, struct sp_flow *f, struct sp_loc_entry *e, uint64_t now)
{
	if (e == NULL) {
		bind_vip(w, f, SP_TCP_EV_VIP_NO_LOCATOR, now);
		return;
	}
	f->node = 0;
	if (f->method == SP_LOC_PUT && f->cached)
		cache_write_through(w, f, now);
	bind_node(w, f, e, now);
}

/* Whether a query has only X-Amz-* parameters (a presigned URL's, which the node does not need). */
static bool
query_only_amz(const char *q, uint32_t len)
{
	uint32_t i = 0;

	while (i < len) {
		if (len - i < 6 || memcmp(q + i, "X-Amz-", 6) != 0)
			return false;
		while (i < len && q[i] != '&')
			i++;
		i++;
	}
	return true;
}

/* ---- the object cache (seed 000) ---------------------------------------------------------- */

static void reply_start(struct sp_worker *w, struct sp_flow *f, bool close, uint64_t now);
static void close_idle(struct sp_worker *w, struct sp_flow *f, uint64_t now);

/* The profile of the flow's service (NULL if it has none any more). */
static inline const struct sp_svc_profile *
profile_of(const struct sp_worker *w, const struct sp_flow *f)
{
	const struct sp_svc_table *svc = __atomic_load_n(&w->dp->svc_table, __ATOMIC_ACQUIRE);

	return svc != NULL && f->slot < SP_SVC_MAX ? &svc->profile[f->slot] : NULL;
}

/* A message by value to the control thread (best effort: a full ring is counted). */
static void
cache_punt(struct sp_worker *w, uint16_t type, uint16_t slot, uint64_t key_hash)
{
	struct sp_punt_msg pm = {0};

	pm.type = type;
	pm.worker = (uint16_t)w->index;
	pm.slot = slot;
	pm.key_hash = key_hash;
	if (rte_ring_mp_enqueue_elem(w->dp->punt, &pm, sizeof(pm)) != 0)
		SP_TCP_CNT(tcpw(w), PUNT_FULL);
}

/* Today's date as HTTP sends it, formatted once a second. */
static inline const char *
date_now(struct sp_tcp_worker *tw, uint64_t now)
{
	int64_t t = wall_s(tw, now);

	if (unlikely(t != tw->date_s)) {
		sp_http_date_format(t, tw->date);
		tw->date_s = t;
	}
	return tw->date;
}

/* A new request id (16 upper-case hex digits, as the service's) and its x-amz-id-2. */
static inline void
request_ids(struct sp_tcp_worker *tw, char id[17], char id2[24])
{
	/* xorshift64*: distinct, unpredictable enough for ids */
	tw->reqid ^= tw->reqid >> 12;
	tw->reqid ^= tw->reqid << 25;
	tw->reqid ^= tw->reqid >> 27;
	sp_s3err_request_id(id, tw->reqid * 0x2545F4914F6CDD1DULL);
	sp_cache_id2(id, id2);
}

/* Decimal digits of v at o (no NUL); returns the count. */
static inline uint32_t
put_u64(char *o, uint64_t v)
{
	char t[20];
	uint32_t n = 0, i;

	do {
		t[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	for (i = 0; i < n; i++)
		o[i] = t[n - 1 - i];
	return n;
}

#define PUTS(o, end, str)                                                                          \
	do {                                                                                       \
		size_t l_ = sizeof(str) - 1;                                                       \
		if ((size_t)((end) - (o)) < l_)                                                    \
			return -ENOSPC;                                                            \
		memcpy((o), (str), l_);                                                            \
		(o) += l_;                                                                         \
	} while (0)
#define PUTN(o, end, p, n)                                                                         \
	do {                                                                                       \
		size_t l_ = (n);                                                                   \
		if ((size_t)((end) - (o)) < l_)                                                    \
			return -ENOSPC;                                                            \
		memcpy((o), (p), l_);                                                              \
		(o) += l_;                                                                         \
	} while (0)

/* The head of a 200 or 206 answer from entry e (206: bytes first..last) in out. */
static int
hit_head(char *out, size_t cap, const struct sp_cache_entry *e, int status, uint64_t first,
	 uint64_t last, const struct sp_cache_tmpl_vals *v, bool close)
{
	char *o = out, *end = out + cap;
	int n;

	if (status == 200)
		PUTS(o, end, "HTTP/1.1 200 OK\r\n");
	else
		PUTS(o, end, "HTTP/1.1 206 Partial Content\r\n");
	n = sp_cache_tmpl_render(o, (size_t)(end - o), e->tmpl, e->tmpl_len, e->marks, e->n_marks,
				 v);
	if (n < 0)
		return n;
	o += n;
	if (status == 206) {
		if (end - o < 80)
			return -ENOSPC;
		PUTS(o, end, "Content-Range: bytes ");
		o += put_u64(o, first);
		*o++ = '-';
		o += put_u64(o, last);
		*o++ = '/';
		o += put_u64(o, e->size);
		PUTS(o, end, "\r\n");
	}
	if (close)
		PUTS(o, end, "Connection: close\r\n");
	PUTS(o, end, "\r\n");
	return (int)(o - out);
}

/* The Server (the node's, if it sent one) and Date lines at *op. */
static int
put_server_date(char **op, char *end, const struct sp_cache_entry *e,
		const struct sp_cache_tmpl_vals *v)
{
	char *o = *op;

	if (e->server_len > 0) {
		PUTS(o, end, "Server: ");
		PUTN(o, end, e->server, e->server_len);
		PUTS(o, end, "\r\n");
	}
	PUTS(o, end, "Date: ");
	PUTN(o, end, v->date, SP_HTTP_DATE_LEN);
	PUTS(o, end, "\r\n");
	*op = o;
	return 0;
}

/* The request id lines at *op. */
static int
put_ids(char **op, char *end, const struct sp_cache_tmpl_vals *v)
{
	char *o = *op;

	PUTS(o, end, "x-amz-request-id: ");
	PUTN(o, end, v->reqid, 16);
	PUTS(o, end, "\r\nx-amz-id-2: ");
	PUTN(o, end, v->id2, 24);
	PUTS(o, end, "\r\n");
	*op = o;
	return 0;
}

/* A 304 as the service answers one: Server, Date, the ids, ETag, Last-Modified. */
static int
hit_304(char *out, size_t cap, const struct sp_cache_entry *e, const struct sp_cache_tmpl_vals *v,
	bool close)
{
	char *o = out, *end = out + cap;

	PUTS(o, end, "HTTP/1.1 304 Not Modified\r\n");
	if (put_server_date(&o, end, e, v) != 0 || put_ids(&o, end, v) != 0)
		return -ENOSPC;
	if (e->etag_len > 0) {
		PUTS(o, end, "ETag: ");
		PUTN(o, end, e->etag, e->etag_len);
		PUTS(o, end, "\r\n");
	}
	if (e->lm_len > 0) {
		PUTS(o, end, "Last-Modified: ");
		PUTN(o, end, e->last_modified, e->lm_len);
		PUTS(o, end, "\r\n");
	}
	if (close)
		PUTS(o, end, "Connection: close\r\n");
	PUTS(o, end, "\r\n");
	return (int)(o - out);
}

/*
 * A 412 or 416 as the service answers one: Server, Date, Content-Type, Content-Length, the ids
 * (416: Content-Range), then the S3 error document (not for HEAD).
 */
static int
hit_error(char *out, size_t cap, const struct sp_cache_entry *e, const char *code,
	  const struct sp_s3err_extra *x, unsigned int nx, const char *path, uint32_t path_len,
	  const struct sp_cache_tmpl_vals *v, bool head, bool close)
{
	char doc[2048], res[1024], *o = out, *end = out + cap;
	const char *reason, *msg, *body;
	size_t rlen = sp_s3err_resource(res, sizeof(res), path, path_len);
	int status = sp_s3err_status(code, &reason, &msg), n;
	uint32_t blen;

	n = sp_s3err_response_fit(doc, sizeof(doc), code, NULL, res, rlen, v->reqid, x, nx, false,
				  0);
	body = n > 0 ? strstr(doc, "\r\n\r\n") : NULL;
	if (body == NULL)
		return -ENOSPC;
	body += 4;
	blen = (uint32_t)(doc + n - body);
	if (end - o < 64)
		return -ENOSPC;
	PUTS(o, end, "HTTP/1.1 ");
	o += put_u64(o, (uint64_t)status);
	*o++ = ' ';
	PUTN(o, end, reason, strlen(reason));
	PUTS(o, end, "\r\n");
	if (put_server_date(&o, end, e, v) != 0)
		return -ENOSPC;
	PUTS(o, end, "Content-Type: application/xml\r\nContent-Length: ");
	if (end - o < 24)
		return -ENOSPC;
	o += put_u64(o, blen);
	PUTS(o, end, "\r\n");
	if (put_ids(&o, end, v) != 0)
		return -ENOSPC;
	if (strcmp(code, "InvalidRange") == 0) {
		if (end - o < 64)
			return -ENOSPC;
		PUTS(o, end, "Content-Range: bytes */");
		o += put_u64(o, e->size);
		PUTS(o, end, "\r\n");
	}
	if (close)
		PUTS(o, end, "Connection: close\r\n");
	PUTS(o, end, "\r\n");
	if (!head)
		PUTN(o, end, body, blen);
	return (int)(o - out);
}

/* A known header's value span of the held request (ptr NULL if absent). */
static inline const char *
req_hdr(const struct sp_http_req *r, const char *d, enum sp_http_hdr h, size_t *len)
{
	if (!sp_http_req_has(r, h)) {
		*len = 0;
		return NULL;
	}
	*len = r->hdr[h].len;
	return d + r->hdr[h].off;
}

/* Answer the held GET or HEAD from entry e (valid: the caller checked). */
static void
cache_serve(struct sp_worker *w, struct sp_flow *f, struct sp_cache_entry *e, uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);
	struct sp_fbuf *b = f->buf;
	const struct sp_http_req *r = &b->req;
	const char *d = fbuf_data(tw, b);
	bool head = r->method == SP_HTTP_METHOD_HEAD, close = !r->keep_alive || f->fin_vm;
	struct sp_cache_tmpl_vals v;
	struct sp_http_conds c;
	uint64_t first = 0, last = e->size ? e->size - 1 : 0, len = e->size;
	char id[17], id2[24], num[24];
	const char *range;
	size_t range_len;
	int n, rc;

	request_ids(tw, id, id2);
	v.date = date_now(tw, now);
	v.reqid = id;
	v.id2 = id2;
	c.if_match = req_hdr(r, d, SP_HTTP_HDR_IF_MATCH, &c.if_match_len);
	c.if_none_match = req_hdr(r, d, SP_HTTP_HDR_IF_NONE_MATCH, &c.if_none_match_len);
	c.if_modified_since =
		req_hdr(r, d, SP_HTTP_HDR_IF_MODIFIED_SINCE, &c.if_modified_since_len);
	c.if_unmodified_since =
		req_hdr(r, d, SP_HTTP_HDR_IF_UNMODIFIED_SINCE, &c.if_unmodified_since_len);
	range = req_hdr(r, d, SP_HTTP_HDR_RANGE, &range_len);
	if (e->ref == 0)
		e->ref = 1;
	__atomic_fetch_add(&e->hits, 1, __ATOMIC_RELAXED);
	SP_TCP_CNT(tw, CACHE_HIT);
	if (head)
		SP_TCP_CNT(tw, CACHE_HEAD);
	if (f->requests > 0)
		SP_TCP_CNT(tw, CACHE_KEEPALIVE);
	rc = (r->hdr_present &
	      (1u << SP_HTTP_HDR_IF_MATCH | 1u << SP_HTTP_HDR_IF_NONE_MATCH |
	       1u << SP_HTTP_HDR_IF_MODIFIED_SINCE | 1u << SP_HTTP_HDR_IF_UNMODIFIED_SINCE))
		     ? (int)sp_http_conditions(&c, e->etag, e->etag_len, e->last_modified_s)
		     : SP_HTTP_COND_GO;
	f->body_len = 0;
	f->body_off = 0;
	if (rc == SP_HTTP_COND_NOT_MODIFIED) {
		SP_TCP_CNT(tw, CACHE_304);
		n = hit_304(b->hdr, tw->hdr_cap, e, &v, close);
	} else if (rc != SP_HTTP_COND_GO) {
		struct sp_s3err_extra x = {
			"Condition",
			rc == SP_HTTP_COND_FAILED_IF_MATCH ? "If-Match" : "If-Unmodified-Since", 0};

		x.len = strlen(x.value);
		SP_TCP_CNT(tw, CACHE_412);
		n = hit_error(b->hdr, tw->hdr_cap, e, "PreconditionFailed", &x, 1, d + r->path.off,
			      r->path.len, &v, head, close);
	} else {
		int rr = range != NULL
				 ? sp_http_parse_range(range, range_len, e->size, &first, &last)
				 : SP_HTTP_RANGE_IGNORE;

		if (rr == SP_HTTP_RANGE_UNSATISFIABLE) {
			struct sp_s3err_extra x[2] = {{"RangeRequested", range, range_len},
						      {"ActualObjectSize", num, 0}};

			x[1].len = put_u64(num, e->size);
			SP_TCP_CNT(tw, CACHE_416);
			n = hit_error(b->hdr, tw->hdr_cap, e, "InvalidRange", x, 2, d + r->path.off,
				      r->path.len, &v, head, close);
		} else {
			int status = rr == SP_HTTP_RANGE_OK ? 206 : 200;

			if (status == 206) {
				len = last - first + 1;
				SP_TCP_CNT(tw, CACHE_206);
			} else {
				first = 0;
				SP_TCP_CNT(tw, CACHE_200);
			}
			v.length = len;
			n = hit_head(b->hdr, tw->hdr_cap, e, status, first, last, &v, close);
			if (n > 0 && !head && len > 0) {
				f->body_off = first;
				f->body_len = (uint32_t)len;
				f->centry = e;
				__atomic_fetch_add(&e->refcnt, 1, __ATOMIC_ACQUIRE);
				SP_CNT_ADD(tw->ws->tcp[SP_TCP_EV_CACHE_BYTES], len);
			}
		}
	}
	if (n <= 0) { /* cannot happen with hdr_cap >= 8 KiB and heads the index accepted */
		rst_vm(w, f);
		sp_flow_release(tw, f);
		return;
	}
	f->reply_len = (uint16_t)n;
	reply_start(w, f, close, now);
}

/*
 * Start copying the response to a plain GET of the flow's object (or a PUT's body) for the
 * cache. 1: started; 0: a fill of the object is in flight already; -ENOBUFS: no fill buffer.
 */
static int
cache_fill_start(struct sp_worker *w, struct sp_flow *f, const char *name, uint32_t nlen,
		 uint8_t kind, uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);
	struct sp_cache *c = tw->cache;
	uint32_t vs = sp_cache_ver_slot(f->ckey);
	uint64_t until = __atomic_load_n(&c->ver[vs].fill_until, __ATOMIC_ACQUIRE);
	struct sp_cache_fill *fl;
	void *obj;

	if ((until != 0 && now < until) ||
	    !__atomic_compare_exchange_n(&c->ver[vs].fill_until, &until, now + c->fill_timeout_tsc,
					 false, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
		SP_TCP_CNT(tw, CACHE_FILL_COALESCED);
		return 0;
	}
	if (rte_mempool_get(c->fill_pool, &obj) != 0) {
		__atomic_store_n(&c->ver[vs].fill_until, 0, __ATOMIC_RELEASE);
		SP_TCP_CNT(tw, CACHE_FILL_NOBUF);
		return -ENOBUFS;
	}
	fl = obj;
	fl->worker = (uint16_t)w->index;
	fl->slot = f->slot;
	fl->kind = kind;
	fl->name_len = (uint16_t)nlen;
	memcpy(fl->name, name, nlen);
	fl->ver_slot = vs;
	fl->key_hash = f->ckey;
	/* read before the request goes anywhere: a write after this moves it */
	fl->version = __atomic_load_n(&c->ver[vs].ver, __ATOMIC_ACQUIRE);
	fl->svc_gen = __atomic_load_n(&c->svc_gen[f->slot], __ATOMIC_ACQUIRE);
	fl->head_len = fl->body_len = fl->resp_len = fl->len = 0;
	f->fill = fl;
	f->fill_base = 0;
	SP_TCP_CNT(tw, CACHE_FILL_START);
	return 1;
}

/* A miss of an object another request is filling: the flow waits for that fill (true), or
 * not (false: no room among the waiters, waiting is off, or this request waited already). */
static bool
cache_wait(struct sp_worker *w, struct sp_flow *f, uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);
	uint32_t idx = sp_flow_index(tw, f), i;

	if (tw->cache->wait_tsc == 0 || f->cache_waited)
		return false;
	for (i = 0; i < tw->n_wait && tw->wait_idx[i] != idx; i++)
		;
	if (i == SP_CACHE_WAITERS)
		return false;
	if (i == tw->n_wait)
		tw->n_wait++;
	tw->wait_idx[i] = idx;
	tw->wait_gen[i] = f->gen;
	f->cache_waited = 1;
	f->state = SP_FLOW_CACHE_WAIT;
	f->timer_tsc = now + tw->cache->wait_tsc;
	SP_TCP_CNT(tw, CACHE_WAIT);
	return true;
}

/* The fill is whole: to the control thread. */
static void
cache_fill_punt(struct sp_worker *w, struct sp_flow *f)
{
	struct sp_tcp_worker *tw = tcpw(w);
	struct sp_cache_fill *fl = f->fill;
	struct sp_punt_msg pm = {0};

	f->fill = NULL;
	pm.type = SP_PUNT_CACHE_FILL;
	pm.worker = (uint16_t)w->index;
	pm.slot = fl->slot;
	pm.fill = fl;
	if (rte_ring_mp_enqueue_elem(w->dp->punt, &pm, sizeof(pm)) != 0) {
		sp_cache_fill_drop(w->dp, fl);
		SP_TCP_CNT(tw, PUNT_FULL);
		SP_TCP_CNT(tw, CACHE_FILL_ABORT);
		return;
	}
	SP_TCP_CNT(tw, CACHE_FILL_DONE);
}

/* Give the flow's fill up. */
static void
cache_fill_abort(struct sp_worker *w, struct sp_flow *f)
{
	sp_cache_fill_drop(w->dp, f->fill);
	f->fill = NULL;
	SP_TCP_CNT(tcpw(w), CACHE_FILL_ABORT);
}

/* A backend segment of a flow with a fill: copy what is new, in order; punt when whole. */
static void
cache_fill_copy(struct sp_worker *w, struct sp_flow *f, struct rte_mbuf *m, const struct seg *s)
{
	struct sp_tcp_worker *tw = tcpw(w);
	struct sp_cache_fill *fl = f->fill;
	uint32_t off = s->seq - (f->be_isn + 1), have = fl->len - f->fill_base, skip, take;
	struct sp_http_resp resp;
	int rc;

	if (seq_lt(s->seq + s->plen, f->be_isn + 1 + have) ||
	    s->seq + s->plen == f->be_isn + 1 + have)
		return;				    /* nothing new */
	if (seq_lt(f->be_isn + 1 + have, s->seq)) { /* a hole: the copy would not be exact */
		cache_fill_abort(w, f);
		return;
	}
	skip = have - off;
	take = s->plen - skip;
	if (fl->len + take > tw->cache->fill_cap) {
		cache_fill_abort(w, f);
		return;
	}
	seg_copy(m, s, skip, take, fl->data + fl->len);
	fl->len += take;
	have += take;
	if ((fl->kind == SP_CACHE_FILL_GET && fl->head_len == 0) ||
	    (fl->kind == SP_CACHE_FILL_PUT && fl->resp_len == 0)) {
		rc = sp_http_parse_response(fl->data + f->fill_base, have, SP_CACHE_HEAD_MAX,
					    &resp);
		if (rc == 0)
			return;
		if (rc < 0) {
			cache_fill_abort(w, f);
			return;
		}
		if (fl->kind == SP_CACHE_FILL_PUT) {
			if (resp.status / 100 != 2) {
				cache_fill_abort(w, f);
				return;
			}
			fl->resp_len = (uint32_t)rc;
			fl->len = f->fill_base + (uint32_t)rc;
			cache_fill_punt(w, f);
			return;
		}
		if (resp.status != 200 || !resp.has_content_length || resp.chunked ||
		    resp.content_length > tw->cache->max_object ||
		    (uint64_t)rc + resp.content_length > tw->cache->fill_cap) {
			cache_fill_abort(w, f);
			return;
		}
		fl->head_len = (uint32_t)rc;
		fl->body_len = (uint32_t)resp.content_length;
	}
	if (fl->kind == SP_CACHE_FILL_GET && have >= fl->head_len + fl->body_len) {
		fl->len = fl->head_len + fl->body_len;
		cache_fill_punt(w, f);
	}
}

/* A PUT going direct with its whole body held: copy it, to be written through once the node
 * answers 2xx. */
static void
cache_write_through(struct sp_worker *w, struct sp_flow *f, uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);
	struct sp_fbuf *b = f->buf;
	const struct sp_http_req *r = &b->req;
	const char *d = fbuf_data(tw, b);
	char name[SP_LOC_NAME_MAX];
	uint32_t nlen, body;

	if (tw->cache == NULL || f->fill != NULL || !f->cached || r->chunked ||
	    !r->has_content_length || r->content_length > tw->cache->max_object ||
	    b->len - b->head_len != r->content_length ||
	    (uint64_t)b->len + SP_CACHE_HEAD_MAX > tw->cache->fill_cap)
		return;
	nlen = sp_cache_name(d + r->path.off, r->path.len, name, sizeof(name));
	if (nlen == 0)
		return;
	cache_fill_start(w, f, name, nlen, SP_CACHE_FILL_PUT, now);
	if (f->fill == NULL)
		return;
	body = b->len - b->head_len;
	memcpy(f->fill->data, d, b->len);
	f->fill->head_len = b->head_len;
	f->fill->body_len = body;
	f->fill->len = b->len;
	f->fill_base = b->len;
	SP_TCP_CNT(tw, CACHE_WRITE_THROUGH);
}

/* A write the worker parsed: the object (or the bucket) stops being served at once. */
static void
cache_invalidate_req(struct sp_worker *w, struct sp_flow *f)
{
	struct sp_tcp_worker *tw = tcpw(w);
	const struct sp_http_req *r = &f->buf->req;
	const char *d = fbuf_data(tw, f->buf);
	unsigned int segs = path_segments(d + r->path.off, r->path.len);
	char name[SP_LOC_NAME_MAX];
	uint32_t nlen;

	if (segs == 2) {
		nlen = sp_cache_name(d + r->path.off, r->path.len, name, sizeof(name));
		if (nlen == 0)
			return;
		f->cached = 1;
		f->ckey = sp_cache_hash(f->slot, name, nlen);
		sp_cache_invalidate(tw->cache, f->ckey);
		cache_punt(w, SP_PUNT_CACHE_INVAL, f->slot, f->ckey);
	} else if (segs == 1 && r->method != SP_HTTP_METHOD_PUT) {
		sp_cache_invalidate_svc(tw->cache, f->slot);
		cache_punt(w, SP_PUNT_CACHE_SVC, f->slot, 0);
	} else {
		return;
	}
	SP_TCP_CNT(tw, CACHE_INVALIDATE);
}

/*
 * A GET or HEAD of an object of a service that caches: answered from the cache (true), or a
 * miss (false: the request goes on; a plain GET starts a fill).
 */
static bool
cache_lookup(struct sp_worker *w, struct sp_flow *f, const struct sp_svc_profile *pr, uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);
	const struct sp_http_req *r = &f->buf->req;
	const char *d = fbuf_data(tw, f->buf);
	char name[SP_LOC_NAME_MAX];
	struct sp_cache_entry *e;
	uint32_t nlen;

	if (r->chunked || (r->has_content_length && r->content_length > 0) || r->version != 11)
		return false;
	nlen = sp_cache_name(d + r->path.off, r->path.len, name, sizeof(name));
	if (nlen == 0)
		return false;
	f->cached = 1;
	f->ckey = sp_cache_hash(f->slot, name, nlen);
	e = sp_cache_lookup(tw->cache, f->slot, name, nlen, f->ckey);
	if (e != NULL && sp_cache_entry_valid(tw->cache, e)) {
		if (now < e->fresh_until_tsc) {
			cache_serve(w, f, e, now);
			return true;
		}
		if (pr->cache == SP_CACHE_POLICY_VERIFY) {
			uint8_t zero = 0;

			SP_TCP_CNT(tw, CACHE_STALE_VERIFY);
			if (__atomic_compare_exchange_n(&e->reval, &zero, 1, false,
							__ATOMIC_ACQ_REL, __ATOMIC_RELAXED))
				cache_punt(w, SP_PUNT_CACHE_REVAL, f->slot, f->ckey);
			cache_serve(w, f, e, now);
			return true;
		}
		if (!f->cache_waited)
			SP_TCP_CNT(tw, CACHE_EXPIRED);
	}
	if (!f->cache_waited) /* a request that waited for a fill was counted before */
		SP_TCP_CNT(tw, CACHE_MISS);
	if (r->method == SP_HTTP_METHOD_GET &&
	    !(r->hdr_present &
	      (1u << SP_HTTP_HDR_RANGE | 1u << SP_HTTP_HDR_IF_MATCH |
	       1u << SP_HTTP_HDR_IF_NONE_MATCH | 1u << SP_HTTP_HDR_IF_MODIFIED_SINCE |
	       1u << SP_HTTP_HDR_IF_UNMODIFIED_SINCE)) &&
	    cache_fill_start(w, f, name, nlen, SP_CACHE_FILL_GET, now) == 0 &&
	    cache_wait(w, f, now))
		return true;
	return false;
}

static void route(struct sp_worker *w, struct sp_flow *f, uint64_t now);

/* The misses waiting for a fill (once per poll): answered once the entry is there; sent on
 * their way once the fill is given up or their wait is over. */
static void
cache_waiters(struct sp_worker *w, uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);
	struct sp_cache *c = tw->cache;
	char name[SP_LOC_NAME_MAX];
	struct sp_cache_entry *e;
	uint32_t i = 0, nlen;
	uint64_t until;

	while (i < tw->n_wait) {
		struct sp_flow *f = &tw->flows[tw->wait_idx[i]];
		const struct sp_http_req *r;

		if (f->gen != tw->wait_gen[i] || f->state != SP_FLOW_CACHE_WAIT) {
			tw->n_wait--; /* gone, or on its way: the last one takes its place */
			tw->wait_idx[i] = tw->wait_idx[tw->n_wait];
			tw->wait_gen[i] = tw->wait_gen[tw->n_wait];
			continue;
		}
		i++;
		r = &f->buf->req;
		nlen = sp_cache_name(fbuf_data(tw, f->buf) + r->path.off, r->path.len, name,
				     sizeof(name));
		e = sp_cache_lookup(c, f->slot, name, nlen, f->ckey);
		if (e != NULL && sp_cache_entry_valid(c, e) && now < e->fresh_until_tsc) {
			SP_TCP_CNT(tw, CACHE_WAIT_HIT);
			f->timer_tsc = 0;
			cache_serve(w, f, e, now);
			continue;
		}
		until = __atomic_load_n(&c->ver[sp_cache_ver_slot(f->ckey)].fill_until,
					__ATOMIC_ACQUIRE);
		if (until != 0 && now < until && now < f->timer_tsc)
			continue; /* the fill is still on its way */
		SP_TCP_CNT(tw, CACHE_WAIT_MISS);
		f->timer_tsc = 0;
		route(w, f, now);
	}
}

/* The storage side failed for a GET or HEAD: its entry, past its TTL but within
 * stale_if_error_s, answers instead (true). */
static bool
cache_stale_if_error(struct sp_worker *w, struct sp_flow *f, uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);
	const struct sp_http_req *r = &f->buf->req;
	const char *d = fbuf_data(tw, f->buf);
	char name[SP_LOC_NAME_MAX];
	struct sp_cache_entry *e;
	uint32_t nlen;

	if (!f->cached || (f->method != SP_LOC_GET && f->method != SP_LOC_HEAD))
		return false;
	nlen = sp_cache_name(d + r->path.off, r->path.len, name, sizeof(name));
	e = nlen ? sp_cache_lookup(tw->cache, f->slot, name, nlen, f->ckey) : NULL;
	if (e == NULL || !sp_cache_entry_valid(tw->cache, e) || now >= e->stale_until_tsc)
		return false;
	if (f->fill != NULL)
		cache_fill_abort(w, f);
	SP_TCP_CNT(tw, CACHE_STALE_IF_ERROR);
	cache_serve(w, f, e, now);
	return true;
}

/* The request is authenticated (or needs no authentication): where does the connection go? */
static void
route(struct sp_worker *w, struct sp_flow *f, uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);
	const struct sp_svc_table *svc = __atomic_load_n(&w->dp->svc_table, __ATOMIC_ACQUIRE);
	struct sp_fbuf *b = f->buf;
	const struct sp_http_req *r = &b->req;
	const char *d = fbuf_data(tw, b);
	uint32_t head = b->head_len, body_have;
	struct sp_loc_entry *e;
	unsigned int segs;
	uint8_t op;

	segs = path_segments(d + r->path.off, r->path.len);
	if (r->method == SP_HTTP_METHOD_GET && segs == 1) {
		if (w->dp->cfg->loc_prefetch_listing > 0) {
			punt_loc(w, f, SP_LOC_LISTING, SP_LOC_OP_READ, d + r->path.off, r->path.len,
				 d + r->query.off, r->query.len);
			SP_TCP_CNT(tw, LOC_LISTING);
		}
		bind_vip(w, f, SP_TCP_EV_VIP_LISTING, now);
		return;
	}
	if (f->method == 0xff || svc == NULL || f->slot >= SP_SVC_MAX ||
	    !(svc->profile[f->slot].flags & SP_SVC_F_DIRECT) ||
	    !(svc->profile[f->slot].methods & (1u << f->method))) {
		bind_vip(w, f, SP_TCP_EV_VIP_NOT_ENHANCED, now);
		return;
	}
	if (segs != 2 || r->path.len > SP_LOC_NAME_MAX ||
	    (r->has_query && !(f->presigned && query_only_amz(d + r->query.off, r->query.len)))) {
		bind_vip(w, f, SP_TCP_EV_VIP_NOT_OBJECT, now);
		return;
	}
	if (r->version != 11 || r->chunked || r->expect_other) {
		bind_vip(w, f, SP_TCP_EV_VIP_BODY_FORM, now);
		return;
	}
	if (tw->cache != NULL && svc->profile[f->slot].cache != SP_CACHE_POLICY_NONE &&
	    (f->method == SP_LOC_GET || f->method == SP_LOC_HEAD) &&
	    cache_lookup(w, f, &svc->profile[f->slot], now))
		return;
	body_have = b->len - head;
	if ((uint64_t)body_have > (r->has_content_length ? r->content_length : 0)) {
		bind_vip(w, f, SP_TCP_EV_VIP_PIPELINED, now);
		return;
	}
	op = f->method == SP_LOC_PUT ? SP_LOC_OP_WRITE : SP_LOC_OP_READ;
	e = sp_loc_find(tw, f->slot, op, d + r->path.off, r->path.len, now);
	if (e != NULL) {
		SP_TCP_CNT(tw, LOC_HIT);
		if (now >= e->refresh_tsc && !e->refresh_sent) {
			e->refresh_sent = 1;
			punt_loc(w, f, SP_LOC_REFRESH, op, e->name, e->name_len, NULL, 0);
			SP_TCP_CNT(tw, LOC_REFRESH);
		}
		resume(w, f, e, now);
		return;
	}
	SP_TCP_CNT(tw, LOC_MISS);
	punt_loc(w, f, SP_LOC_RESOLVE, op, d + r->path.off, r->path.len, NULL, 0);
	if (f->state != SP_FLOW_RESOLVING) {
		bind_vip(w, f, SP_TCP_EV_VIP_NO_LOCATOR, now);
		return;
	}
	f->timer_tsc = now + tw->resolve_tsc;
}

/* ---- local authentication (seed 001) ------------------------------------------------------- */

static void start_reply(struct sp_worker *w, struct sp_flow *f, uint64_t now);

/*
 * Answer the held request with an S3 error made here, then close; nothing is sent on. code: an
 * S3 error code (message NULL for its default), or NULL for the SigV4 error err (a as parsed).
 */
static void
reply_error(struct sp_worker *w, struct sp_flow *f, const char *code, const char *message, int err,
	    const struct sp_sigv4_auth *a, uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);
	struct sp_fbuf *b = f->buf;
	const struct sp_http_req *r = &b->req;
	char res[2048], id[17]; /* a longer <Resource> would not fit an error document anyway */
	size_t rlen =
		sp_s3err_resource(res, sizeof(res), fbuf_data(tw, b) + r->path.off, r->path.len);
	bool head = r->method == SP_HTTP_METHOD_HEAD;
	int n;

	sp_s3err_request_id(id, rte_rdtsc() ^ ((uint64_t)w->index << 56) ^
					(uint64_t)sp_flow_index(tw, f) << 32);
	if (code != NULL)
		n = sp_s3err_response(b->hdr, tw->hdr_cap, code, message, res, rlen, id, NULL, head,
				      wall_s(tw, now));
	else
		n = sp_s3err_sigv4_response(b->hdr, tw->hdr_cap, err, a, NULL, res, rlen, id, head,
					    wall_s(tw, now));
	if (n <= 0) { /* no room: cannot happen with hdr_cap >= 2.5 KiB */
		rst_vm(w, f);
		sp_flow_release(tw, f);
		return;
	}
	f->reply_len = (uint16_t)n;
	start_reply(w, f, now);
}

/* A verdict from the control thread's answer (the flow that asked may be gone). */
static void
verdict_store(struct sp_tcp_worker *tw, const struct sp_auth_msg *m, uint64_t now)
{
	uint32_t h = sp_auth_verdict_hash(m->port_idx, m->svc_slot, m->access_key, m->ak_len);
	struct sp_auth_verdict *v = &tw->verdicts[h & tw->verdict_mask];
	uint64_t ttl = RTE_MIN(tw->hz * (uint64_t)m->ttl_ms / 1000, tw->verdict_tsc);

	if (m->ak_len == 0 || m->ak_len > SP_SIGV4_ACCESS_KEY_MAX || ttl == 0)
		return;
	v->expires_tsc = now + ttl;
	v->svc_epoch = m->svc_epoch;
	v->cred_gen = m->cred_gen;
	v->hash = h;
	v->port_idx = m->port_idx;
	v->slot = m->svc_slot;
	v->ak_len = m->ak_len;
	memcpy(v->ak, m->access_key, m->ak_len);
	v->ak[m->ak_len] = '\0';
	v->policy = m->policy;
	SP_TCP_CNT(tw, AUTH_VERDICTS);
}

/*
 * Send the held request (head, then body bytes of body) to the control thread to verify; the
 * flow waits. body_unverified: the payload hash is signed but the body is not all here.
 */
static void
auth_punt(struct sp_worker *w, struct sp_flow *f, uint32_t body, bool body_unverified, uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);
	const struct sp_svc_table *svc = __atomic_load_n(&w->dp->svc_table, __ATOMIC_ACQUIRE);
	struct sp_fbuf *b = f->buf;
	struct sp_punt_msg pm = {0};
	struct sp_auth_msg *m;
	void *obj;

	if (svc == NULL || rte_mempool_get(w->dp->auth_pool, &obj) != 0) {
		SP_TCP_CNT(tw, PUNT_FULL);
		bind_vip(w, f, SP_TCP_EV_AUTH_UNDECIDED, now);
		return;
	}
	m = obj;
	memset(m, 0, offsetof(struct sp_auth_msg, policy));
	m->worker = (uint16_t)w->index;
	m->svc_slot = f->slot;
	m->port_idx = f->port_idx;
	m->mode = svc->profile[f->slot].auth;
	m->body_unverified = body_unverified;
	m->flow = sp_flow_index(tw, f);
	m->flow_gen = f->gen;
	m->svc_epoch = svc->epoch;
	m->vm_ip = f->vm_ip;
	m->head_len = b->head_len;
	m->body_len = body;
	memcpy(m->data, fbuf_data(tw, b), b->head_len + body);
	pm.type = SP_PUNT_AUTH;
	pm.worker = (uint16_t)w->index;
	pm.port_idx = f->port_idx;
	pm.auth = m;
	if (rte_ring_mp_enqueue_elem(w->dp->punt, &pm, sizeof(pm)) != 0) {
		rte_mempool_put(w->dp->auth_pool, m);
		SP_TCP_CNT(tw, PUNT_FULL);
		bind_vip(w, f, SP_TCP_EV_AUTH_UNDECIDED, now);
		return;
	}
	SP_TCP_CNT(tw, AUTH_PUNT);
	f->state = SP_FLOW_AUTHENTICATING;
	f->timer_tsc = now + tw->auth_tsc;
}

/* BODY: more of a signed body arrived (or the VM stopped sending): verify once it is all here. */
static void
body_held(struct sp_worker *w, struct sp_flow *f, uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);
	struct sp_fbuf *b = f->buf;
	uint64_t body = b->req.content_length;

	if (b->len - b->head_len >= body)
		auth_punt(w, f, (uint32_t)body, false, now);
	else if (f->fin_vm || hold_window(tw, f) == 0)
		auth_punt(w, f, 0, true, now);
}

/*
 * A request to a service whose auth mode is first or every-request: the worker's own checks
 * (form, dates, skew: no crypto), then a verdict (mode first) and the policy, else a
 * verification by the control thread. true: go on now; false: answered, bound or waiting.
 */
static bool
auth_gate(struct sp_worker *w, struct sp_flow *f, const struct sp_svc_table *svc, uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);
	const struct sp_svc_profile *pr = &svc->profile[f->slot];
	struct sp_fbuf *b = f->buf;
	const struct sp_http_req *r = &b->req;
	const char *d = fbuf_data(tw, b);
	const struct sp_auth_verdict *v;
	enum sp_policy_action act;
	struct sp_sigv4_auth a;
	const char *bucket;
	uint32_t bucket_len;
	uint64_t body;
	int rc;

	rc = sp_sigv4_parse_auth(d, b->head_len, r, pr->region, wall_s(tw, now), &a);
	if (rc < 0) {
		SP_TCP_CNT(tw, AUTH_LOCAL_ERROR);
		reply_error(w, f, NULL, NULL, rc, &a, now);
		return false;
	}
	f->presigned = a.presigned;
	if (pr->auth == SP_AUTH_MODE_FIRST) {
		v = sp_auth_verdict_find(tw, f->port_idx, f->slot, a.access_key, a.access_key_len,
					 now);
		if (v != NULL && v->svc_epoch == svc->epoch &&
		    v->cred_gen ==
			    __atomic_load_n(&w->dp->auth_gen[sp_auth_gen_slot(f->slot, a.access_key,
									      a.access_key_len)],
					    __ATOMIC_ACQUIRE)) {
			SP_TCP_CNT(tw, AUTH_HIT);
			act = sp_policy_action_of(d + r->method_tok.off, r->method_tok.len,
						  d + r->path.off, r->path.len, &bucket,
						  &bucket_len);
			if (sp_policy_allows(&v->policy, act, bucket, bucket_len))
				return true;
			SP_TCP_CNT(tw, AUTH_DENIED);
			reply_error(w, f, "AccessDenied", NULL, 0, &a, now);
			return false;
		}
	}
	/*
	 * The control thread verifies, with the whole body if its hash is signed and it fits. A
	 * body that does not fit, is chunked or waits for a 100 Continue is not checked here: its
	 * signature is, then the request takes the ordinary path, where the service checks it.
	 */
	body = r->has_content_length ? r->content_length : 0;
	if (a.payload_unsigned || (body == 0 && !r->chunked))
		auth_punt(w, f, 0, false, now);
	else if (r->chunked || r->expect_continue || (uint64_t)b->head_len + body > tw->buf_size)
		auth_punt(w, f, 0, true, now);
	else {
		f->state = SP_FLOW_BODY; /* the head's deadline still runs */
		body_held(w, f, now);
	}
	return false;
}

/* The head is complete: authentication (if the service wants it), then the route. */
static void
decide(struct sp_worker *w, struct sp_flow *f, uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);
	const struct sp_svc_table *svc = __atomic_load_n(&w->dp->svc_table, __ATOMIC_ACQUIRE);

	SP_TCP_CNT(tw, REQUESTS);
	f->method = loc_method(f->buf->req.method);
	if (tw->cache != NULL && svc != NULL && f->slot < SP_SVC_MAX &&
	    svc->profile[f->slot].cache != SP_CACHE_POLICY_NONE &&
	    (f->buf->req.method == SP_HTTP_METHOD_PUT ||
	     f->buf->req.method == SP_HTTP_METHOD_POST ||
	     f->buf->req.method == SP_HTTP_METHOD_DELETE))
		cache_invalidate_req(w, f); /* before anything can reach the service */
	if (svc != NULL && f->slot < SP_SVC_MAX &&
	    (svc->profile[f->slot].flags & SP_SVC_F_DIRECT) &&
	    svc->profile[f->slot].auth >= SP_AUTH_MODE_FIRST && !auth_gate(w, f, svc, now))
		return;
	route(w, f, now);
}

/* New bytes are held: is the head complete? */
static void
parse_held(struct sp_worker *w, struct sp_flow *f, uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);
	struct sp_fbuf *b = f->buf;
	int rc;

	if (b->len == 0 && f->fin_vm && f->requests > 0) { /* closed between requests */
		close_idle(w, f, now);
		return;
	}
	rc = sp_http_parse_request(fbuf_data(tw, b), b->len, &b->req, &tw->lim);
	if (rc > 0) {
		b->head_len = (uint32_t)rc;
		decide(w, f, now);
	} else if (rc < 0) {
		bind_vip(w, f, SP_TCP_EV_HTTP_ERROR, now);
	} else if (hold_window(tw, f) == 0 || b->len >= tw->lim.max_head) {
		/* no whole head in what fits (a zero window would wait for the header timeout) */
		bind_vip(w, f, SP_TCP_EV_HEAD_TOO_LARGE, now);
	} else if (f->fin_vm) {
		bind_vip(w, f, SP_TCP_EV_VIP_EARLY_CLOSE, now);
	}
}

/* ---- the backend connection ---------------------------------------------------------------- */

static void
send_syn(struct sp_worker *w, struct sp_flow *f)
{
	uint8_t opt[8];
	uint8_t n = 0;

	opt[n++] = SP_TCP_OPT_MSS;
	opt[n++] = 4;
	opt[n++] = (uint8_t)(f->mss >> 8);
	opt[n++] = (uint8_t)f->mss;
	if (f->ws) {
		opt[n++] = SP_TCP_OPT_NOP;
		opt[n++] = SP_TCP_OPT_WSCALE;
		opt[n++] = 3;
		opt[n++] = f->vm_ws;
	}
	/* a SYN's window is never scaled */
	sp_flow_send(w, f, false, f->vm_isn, 0, F_SYN,
		     (uint16_t)RTE_MIN((uint32_t)f->vm_win << f->vm_ws, 65535u), opt, n, NULL, 0,
		     NULL, 0);
}

/* The window field of what shortpath sends the backend for the VM. */
static inline uint16_t
win_to_be(const struct sp_flow *f)
{
	return f->be_noscale ? (uint16_t)RTE_MIN((uint32_t)f->vm_win << f->vm_ws, 65535u)
			     : f->vm_win;
}

static void
connect_target(struct sp_worker *w, struct sp_flow *f, uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);

	if (sp_flow_be_add(tw, f) != 0) {
		SP_TCP_CNT(tw, TUPLE_BUSY);
		rst_vm(w, f);
		sp_flow_release(tw, f);
		return;
	}
	f->state = SP_FLOW_CONNECTING;
	f->tries = 1;
	f->timer_tsc = now + tw->syn_timeout_tsc;
	SP_TCP_CNT(tw, BE_SYN_TX);
	send_syn(w, f);
}

/* Bytes [off, off + len) of what goes to the backend: the rewritten head, then held data. */
static void
stream_piece(struct sp_tcp_worker *tw, struct sp_fbuf *b, uint32_t off, uint32_t len,
	     const char **p1, uint32_t *l1, const char **p2, uint32_t *l2)
{
	const char *data = fbuf_data(tw, b) + b->head_len;

	if (off >= b->hdr_len) {
		*p1 = data + (off - b->hdr_len);
		*l1 = len;
		*p2 = NULL;
		*l2 = 0;
		return;
	}
	*p1 = b->hdr + off;
	*l1 = RTE_MIN(len, b->hdr_len - off);
	*p2 = data;
	*l2 = len - *l1;
}

/*
 * Send held bytes from backend seq from, within the backend's window (probe: at least one
 * segment, for a retransmission or a zero window); FIN after the last if the VM sent one.
 */
static void
send_held(struct sp_worker *w, struct sp_flow *f, uint32_t from, bool probe)
{
	struct sp_tcp_worker *tw = tcpw(w);
	struct sp_fbuf *b = f->buf;
	uint32_t base = f->vm_isn + 1, total, off, lim, seg, mss;
	const char *p1, *p2;
	uint32_t l1, l2;
	uint8_t flags;

	if (b == NULL)
		return;
	total = b->hdr_len + (b->len - b->head_len);
	mss = RTE_MIN(f->be_mss ? f->be_mss : 536u, (uint32_t)tw->mss_clamp);
	off = from - base;
	lim = RTE_MIN(total, (f->be_una - base) + f->be_wnd);
	if (probe && lim <= off)
		lim = RTE_MIN(total, off + mss);
	if (total == 0 && f->fin_vm) {
		sp_flow_send(w, f, false, base, f->vm_ack_be, F_ACK | F_FIN, win_to_be(f), NULL, 0,
			     NULL, 0, NULL, 0);
		return;
	}
	while (off < lim) {
		seg = RTE_MIN(mss, lim - off);
		stream_piece(tw, b, off, seg, &p1, &l1, &p2, &l2);
		flags = F_ACK | (off + seg == total ? F_PSH : 0);
		if (off + seg == total && f->fin_vm)
			flags |= F_FIN;
		if (sp_flow_send(w, f, false, base + off, f->vm_ack_be, flags, win_to_be(f), NULL,
				 0, p1, l1, p2, l2) != 0)
			break;
		off += seg;
	}
	if (seq_lt(f->be_sent, base + off))
		f->be_sent = base + off;
}

/*
 * Shortpath's own reply to the VM: the head in f->buf->hdr[0, reply_len), then body_len bytes of
 * the cache entry's body from body_off. Sent from VM-side seq from, in segments of the VM's MSS,
 * as far as its window allows (probe: one segment, a retransmission or a zero-window probe);
 * FIN after the last byte when the reply closes the connection.
 */
static void
send_reply(struct sp_worker *w, struct sp_flow *f, uint32_t from, bool probe)
{
	struct sp_tcp_worker *tw = tcpw(w);
	uint32_t total = f->reply_len + f->body_len, off = from - f->reply_seq, lim, seg, l1;
	uint32_t mss = RTE_MIN((uint32_t)f->mss, (uint32_t)tw->mss_clamp);
	uint32_t wnd = (uint32_t)f->vm_win << (f->ws ? f->vm_ws : 0);
	const uint8_t *body = f->centry != NULL ? f->centry->body + f->body_off : NULL;
	int32_t bsum;
	uint8_t flags;

	if (seq_lt(from, f->snd_una))
		off = f->snd_una - f->reply_seq;
	lim = RTE_MIN(total, (f->snd_una - f->reply_seq) + wnd);
	if (probe) /* a retransmission or a zero-window probe: one segment (the ACKs clock more) */
		lim = RTE_MIN(total, off + mss);
	if (off >= total) { /* nothing but the FIN (an empty reply, or the FIN was lost) */
		if (f->reply_close && (probe || f->snd_nxt != f->snd_max) &&
		    sp_flow_send(w, f, true, f->reply_seq + total, f->rcv_nxt, F_ACK | F_FIN,
				 hold_window(tw, f), NULL, 0, NULL, 0, NULL, 0) == 0) {
			f->snd_nxt = f->snd_max;
			f->ack_due = 0;
		}
		return;
	}
	while (off < lim) {
		seg = RTE_MIN(mss, lim - off);
		flags = F_ACK;
		if (off + seg == total)
			flags |= F_PSH | (f->reply_close ? F_FIN : 0);
		l1 = off < f->reply_len ? RTE_MIN(seg, f->reply_len - off) : 0;
		/* a segment with the whole body (a small object): its sum is the entry's */
		bsum = body != NULL && f->body_off == 0 && seg - l1 == f->centry->size &&
				       f->centry->body_sum_ok
			       ? f->centry->body_sum
			       : -1;
		if (sp_flow_send_sum(w, f, true, f->reply_seq + off, f->rcv_nxt, flags,
				     hold_window(tw, f), NULL, 0, f->buf->hdr + off, l1,
				     body + (off + l1 - f->reply_len), seg - l1, bsum) != 0)
			break;
		f->ack_due = 0;
		off += seg;
		if (seq_lt(f->snd_nxt, f->reply_seq + off + ((flags & F_FIN) ? 1 : 0)))
			f->snd_nxt = f->reply_seq + off + ((flags & F_FIN) ? 1 : 0);
	}
}

/*
 * Answer the VM with the reply set up in f (head in f->buf->hdr, reply_len bytes; body_len
 * bytes of f->centry's body). close: FIN after it, the flow ends; else the connection stays
 * for the next request (what is held after the request's head_len bytes is kept).
 */
static void
reply_start(struct sp_worker *w, struct sp_flow *f, bool close, uint64_t now)
{
	struct sp_fbuf *b = f->buf;

	if (close) {
		/* what was held is not needed any more: the whole buffer is the window, so a VM
		 * still sending a body (no Expect: 100-continue) can finish it (it is dropped) and
		 * read this */
		b->len = 0;
	} else {
		char *d = fbuf_data(tcpw(w), b);
		uint32_t used = RTE_MIN(b->len, b->head_len);

		memmove(d, d + used, b->len - used); /* a pipelined next request */
		b->len -= used;
	}
	b->head_len = b->hdr_len = 0;
	f->reply_close = close;
	f->state = SP_FLOW_REPLY;
	f->reply_seq = f->snd_una = f->snd_nxt;
	f->dupacks = 0;
	f->snd_max = f->reply_seq + f->reply_len + f->body_len + (close ? 1 : 0);
	f->retx = 0;
	f->timer_tsc = now + tcpw(w)->rto_tsc;
	send_reply(w, f, f->reply_seq, false);
}

/* An S3 error in f->buf->hdr (reply_len bytes): send it and close. */
static void
start_reply(struct sp_worker *w, struct sp_flow *f, uint64_t now)
{
	f->body_len = 0;
	reply_start(w, f, true, now);
}

/* A kept-alive reply was all acknowledged: the connection waits for the next request. */
static void
reply_done(struct sp_worker *w, struct sp_flow *f, uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);
	struct sp_fbuf *b = f->buf;

	if (f->centry != NULL) {
		__atomic_fetch_sub(&f->centry->refcnt, 1, __ATOMIC_RELEASE);
		f->centry = NULL;
	}
	f->requests++;
	f->state = SP_FLOW_HEAD;
	f->reply_len = 0;
	f->body_len = 0;
	f->method = 0xff;
	f->cached = 0;
	f->cache_waited = 0;
	f->presigned = 0;
	/* a later bind starts the backend's sequence spaces here: what is held is byte 1 of the
	 * backend connection, the backend's byte 1 the VM's next */
	f->our_isn = f->snd_nxt - 1;
	f->vm_isn = f->rcv_nxt - (f->fin_vm ? 1 : 0) - b->len - 1;
	sp_http_req_init(&b->req);
	f->timer_tsc = now + tw->head_tsc;
	if (b->len > 0 || f->fin_vm)
		parse_held(w, f, now);
}

/* The VM closed a kept-alive connection between requests (or it idled out): FIN back. */
static void
close_idle(struct sp_worker *w, struct sp_flow *f, uint64_t now)
{
	f->reply_len = 0;
	f->body_len = 0;
	f->vm_fin_acked = f->fin_vm;
	reply_start(w, f, true, now);
}

/* REPLY: the VM's ACK (and window) for the reply; more of it goes out as the window opens. */
static void
reply_ack(struct sp_worker *w, struct sp_flow *f, const struct seg *s, uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);

	if (!(s->flags & F_ACK))
		return;
	if (seq_le(s->ack, f->snd_max) && seq_lt(f->snd_una, s->ack)) {
		f->snd_una = s->ack;
		if (seq_lt(f->snd_nxt, s->ack)) /* sent before a timeout went back */
			f->snd_nxt = s->ack;
		f->retx = 0;
		f->dupacks = 0;
		f->timer_tsc = now + tw->rto_tsc;
	} else if (s->ack == f->snd_una && s->plen == 0 && f->snd_una != f->snd_nxt &&
		   !(s->flags & F_FIN) && ++f->dupacks == 3) {
		/* the third duplicate ACK: the first unacknowledged segment again */
		SP_TCP_CNT(tw, RETRANSMIT);
		send_reply(w, f, f->snd_una, true);
	}
	if (f->snd_una == f->snd_max) {
		if (!f->reply_close)
			reply_done(w, f, now);
		return;
	}
	if (seq_lt(f->snd_nxt, f->snd_max))
		send_reply(w, f, f->snd_nxt, false); /* what the window now lets out */
}

/* The current target failed (refused or silent): the next replica, the VIP, then a 503. */
static void
target_failed(struct sp_worker *w, struct sp_flow *f, uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);
	const struct sp_http_req *r = &f->buf->req;
	struct sp_loc_entry *e = NULL;

	sp_flow_be_del(tw, f);
	if (f->target == TARGET_NODE)
		e = sp_loc_find(tw, f->slot,
				f->method == SP_LOC_PUT ? SP_LOC_OP_WRITE : SP_LOC_OP_READ,
				fbuf_data(tw, f->buf) + r->path.off, r->path.len, now);
	if (e != NULL && f->node + 1 < e->n_nodes) {
		f->node++;
		SP_TCP_CNT(tw, REPLICA_RETRY);
		bind_node(w, f, e, now);
		return;
	}
	if (f->target == TARGET_NODE && tw->cache != NULL && cache_stale_if_error(w, f, now))
		return;
	if (f->target == TARGET_NODE) {
		SP_TCP_CNT(tw, FALLBACK_VIP);
		bind_vip(w, f, SP_TCP_EV_VIP_NO_LOCATOR, now);
		return;
	}
	SP_TCP_CNT(tw, REPLY_503);
	reply_error(w, f, "ServiceUnavailable",
		    "The storage nodes and the service could not be reached.", 0, NULL, now);
}

/* The backend's SYN-ACK: the splice starts; held bytes go out. */
static void
established(struct sp_worker *w, struct sp_flow *f, const struct seg *s, uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);
	uint8_t optlen = (uint8_t)(((s->tcp->data_off >> 4) * 4) - sizeof(struct rte_tcp_hdr));
	struct sp_tcp_opts o;

	if (sp_tcp_parse_opts((const uint8_t *)(s->tcp + 1), optlen, &o) != SP_TCP_OPT_OK)
		memset(&o, 0, sizeof(o));
	f->be_isn = s->seq;
	f->be_mss = o.has_mss ? o.mss : 536;
	if (f->be_mss < tw->mss_clamp)
		SP_TCP_CNT(tw, MSS_MISMATCH);
	f->be_ws = f->ws && o.has_wscale ? RTE_MIN(o.wscale, 14) : 0;
	f->be_noscale = f->ws && !o.has_wscale;
	f->be_wnd = (uint32_t)s->win; /* a SYN-ACK's window is never scaled */
	f->delta_s = f->our_isn - f->be_isn;
	f->vm_ack_be = f->be_isn + 1;
	f->be_una = f->be_sent = f->vm_isn + 1;
	f->be_end = f->vm_isn + 1 + f->buf->hdr_len + (f->buf->len - f->buf->head_len) +
		    (f->fin_vm ? 1 : 0);
	f->state = SP_FLOW_SPLICE;
	f->vm_nxt = f->rcv_nxt;
	f->be_nxt = f->our_isn + 1;
	f->retx = 0;
	/* the ACK of the handshake, then the held bytes */
	sp_flow_send(w, f, false, f->vm_isn + 1, f->vm_ack_be, F_ACK, win_to_be(f), NULL, 0, NULL,
		     0, NULL, 0);
	send_held(w, f, f->vm_isn + 1, false);
	f->timer_tsc = f->be_una != f->be_end ? now + tw->rto_tsc : 0;
	if (f->be_una == f->be_end) {
		rte_mempool_put(tw->bufs, f->buf);
		f->buf = NULL;
		SP_CNT_ADD(tw->ws->flow_buffers, (uint64_t)-1);
	}
}

/* ---- splice -------------------------------------------------------------------------------- */

/* Set a 32-bit field of a TCP segment (or the pseudo-header's address) and fix the checksum. */
#define CSUM32(t, field, v)                                                                        \
	do {                                                                                       \
		uint32_t v_ = (v);                                                                 \
		(t)->cksum = sp_csum_update32((t)->cksum, (field), v_);                            \
		(field) = v_;                                                                      \
	} while (0)

/* VM → backend, translated in place and sent on the uplink. */
static void
splice_from_vm(struct sp_worker *w, struct sp_flow *f, struct rte_mbuf *m, struct seg *s)
{
	struct sp_tcp_worker *tw = tcpw(w);
	struct rte_tcp_hdr *t = s->tcp;
	uint32_t v;

	if (s->plen > 0) {
		uint32_t end = s->seq + s->plen;

		if (seq_le(end, f->rcv_nxt)) {
			/* bytes shortpath holds and resends itself: keep only the ACK */
			SP_TCP_CNT(tw, DATA_DUP);
			rte_pktmbuf_free(m);
			return;
		}
		if (seq_lt(s->seq, f->rcv_nxt)) {
			SP_TCP_CNT(tw, OVERLAP_DROPPED);
			rte_pktmbuf_free(m);
			return;
		}
	}
	f->bytes_vm += s->plen;
	if (seq_lt(f->vm_nxt, s->seq + s->plen + ((s->flags & F_FIN) ? 1 : 0)))
		f->vm_nxt = s->seq + s->plen + ((s->flags & F_FIN) ? 1 : 0);
	if (s->flags & F_ACK)
		f->vm_ack_be = s->ack - f->delta_s;
	f->vm_win = s->win;
	if (s->flags & F_FIN)
		f->fin_vm = 1;
	v = s->ip->dst_addr;
	s->ip->hdr_checksum = sp_csum_update32(s->ip->hdr_checksum, v, f->be_ip);
	CSUM32(t, s->ip->dst_addr, f->be_ip);
	t->cksum = sp_csum_update16(t->cksum, t->dst_port, f->be_port);
	t->dst_port = f->be_port;
	CSUM32(t, t->sent_seq, rte_cpu_to_be_32(s->seq + f->delta_c));
	if (s->flags & F_ACK)
		CSUM32(t, t->recv_ack, rte_cpu_to_be_32(s->ack - f->delta_s));
	if (unlikely(f->be_noscale && !(s->flags & F_RST))) {
		uint16_t wv = rte_cpu_to_be_16(win_to_be(f));

		t->cksum = sp_csum_update16(t->cksum, t->rx_win, wv);
		t->rx_win = wv;
	}
	SP_TCP_CNT(tw, SPLICED_VM);
	if (s->flags & F_RST) {
		SP_TCP_CNT(tw, VM_RST);
		sp_worker_tx(w, w->dp->uplink_idx, m);
		sp_flow_release(tw, f);
		return;
	}
	sp_worker_tx(w, w->dp->uplink_idx, m);
}

/* Backend → VM, translated in place and sent on the VM's port. */
static void
splice_from_be(struct sp_worker *w, struct sp_flow *f, struct rte_mbuf *m, struct seg *s,
	       uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);
	struct rte_tcp_hdr *t = s->tcp;
	uint32_t ack_vm, win, v;

	f->be_wnd = (uint32_t)s->win << f->be_ws;
	if ((s->flags & F_ACK) && f->buf != NULL && seq_lt(f->be_una, s->ack)) {
		f->be_una = seq_lt(f->be_end, s->ack) ? f->be_end : s->ack;
		f->retx = 0;
		if (f->be_una == f->be_end) {
			rte_mempool_put(tw->bufs, f->buf);
			f->buf = NULL;
			SP_CNT_ADD(tw->ws->flow_buffers, (uint64_t)-1);
			f->timer_tsc = 0;
		} else {
			f->timer_tsc = now + tw->rto_tsc;
			send_held(w, f, f->be_sent, false); /* what the window now lets out */
		}
	}
	if (s->flags & F_SYN) { /* the SYN-ACK again: our ACK was lost */
		sp_flow_send(w, f, false, f->vm_isn + 1, f->vm_ack_be, F_ACK, win_to_be(f), NULL, 0,
			     NULL, 0, NULL, 0);
		rte_pktmbuf_free(m);
		return;
	}
	f->bytes_be += s->plen;
	if (unlikely(f->fill != NULL)) {
		if (s->plen > 0)
			cache_fill_copy(w, f, m, s);
		if (f->fill != NULL && (s->flags & (F_FIN | F_RST)))
			cache_fill_abort(w, f); /* ended before the response was whole */
	}
	if (s->flags & F_FIN)
		f->fin_be = 1;
	/* acks of bytes shortpath held map to what it already acknowledged to the VM */
	ack_vm = seq_le(f->be_end, s->ack) ? s->ack - f->delta_c : f->rcv_nxt;
	v = s->seq + f->delta_s + s->plen + ((s->flags & (F_FIN | F_SYN)) ? 1 : 0);
	if (seq_lt(f->be_nxt, v))
		f->be_nxt = v;
	win = f->ws ? ((uint32_t)s->win << f->be_ws) >> SP_FLOW_OUR_WSCALE : s->win;
	win = RTE_MIN(win, 65535u);
	v = s->ip->src_addr;
	s->ip->hdr_checksum = sp_csum_update32(s->ip->hdr_checksum, v, f->vip);
	CSUM32(t, s->ip->src_addr, f->vip);
	t->cksum = sp_csum_update16(t->cksum, t->src_port, f->vport);
	t->src_port = f->vport;
	CSUM32(t, t->sent_seq, rte_cpu_to_be_32(s->seq + f->delta_s));
	if (s->flags & F_ACK)
		CSUM32(t, t->recv_ack, rte_cpu_to_be_32(ack_vm));
	t->cksum = sp_csum_update16(t->cksum, t->rx_win, rte_cpu_to_be_16((uint16_t)win));
	t->rx_win = rte_cpu_to_be_16((uint16_t)win);
	SP_TCP_CNT(tw, SPLICED_BE);
	sp_worker_tx(w, f->port_idx, m);
	if (s->flags & F_RST) {
		SP_TCP_CNT(tw, BE_RST);
		sp_flow_release(tw, f);
	}
}

/* ---- entry points -------------------------------------------------------------------------- */

bool
sp_tcp_from_vm(struct sp_worker *w, struct rte_mbuf *m, const struct sp_pkt_info *pi, int slot,
	       uint16_t port_idx, uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);
	struct sp_flow_key k;
	struct sp_flow *f;
	struct seg s;

	if (unlikely(!seg_parse(m, pi, &s)))
		return false;
	k.src_ip = s.ip->src_addr;
	k.dst_ip = s.ip->dst_addr;
	k.sport = s.tcp->src_port;
	k.dport = s.tcp->dst_port;
	/* slot < 0: a flow of a service changed or removed at run time goes on to its end */
	f = tw->live && (slot >= 0 || sp_flow_vip_maybe(tw, k.dst_ip, k.dport))
		    ? sp_flow_lookup(tw, &k)
		    : NULL;
	if (f == NULL && slot < 0)
		return false;
	if ((f == NULL || f->state < SP_FLOW_SPLICE || f->state == SP_FLOW_REPLY) &&
	    unlikely(!seg_csum_ok(m, &s))) {
		/* what shortpath takes and acknowledges must be what the VM sent */
		SP_TCP_CNT(tw, BAD_CHECKSUM);
		rte_pktmbuf_free(m);
		return true;
	}
	if (f == NULL) {
		if ((s.flags & (F_SYN | F_ACK | F_RST | F_FIN)) == F_SYN) {
			/* no room for the flow the ACK would make: the service takes it as it is */
			if (unlikely(tw->free_top == 0)) {
				SP_TCP_CNT(tw, FLOWS_FULL);
				return false;
			}
			if (unlikely(rte_mempool_avail_count(tw->bufs) == 0)) {
				SP_TCP_CNT(tw, BUFFERS_EMPTY);
				return false;
			}
			syn_in(w, &s, m, port_idx, now);
			rte_pktmbuf_free(m);
			return true;
		}
		if ((s.flags & (F_SYN | F_ACK | F_RST)) == F_ACK) {
			if (!ack_in(w, &s, port_idx, slot, now, &f))
				return false;
		} else {
			if (s.flags & F_SYN) {
				SP_TCP_CNT(tw, BAD_SEGMENT);
				rte_pktmbuf_free(m);
				return true;
			}
			SP_TCP_CNT(tw, NO_FLOW_PASSED);
			return false;
		}
	}
	if (unlikely(f->state == SP_FLOW_TIME_WAIT && (s.flags & F_SYN) && !(s.flags & F_ACK))) {
		/* the VM reuses the port of a closed connection: a new one */
		sp_flow_release(tw, f);
		if (slot < 0)
			return false;
		syn_in(w, &s, m, port_idx, now);
		rte_pktmbuf_free(m);
		return true;
	}
	f->last_tsc = now;
	switch (f->state) {
	case SP_FLOW_HEAD:
	case SP_FLOW_BODY:
	case SP_FLOW_AUTHENTICATING:
	case SP_FLOW_RESOLVING:
	case SP_FLOW_CACHE_WAIT:
	case SP_FLOW_CONNECTING:
		if (s.flags & F_RST) {
			SP_TCP_CNT(tw, VM_RST);
			if (f->be_key && f->state == SP_FLOW_CONNECTING)
				rst_be(w, f);
			sp_flow_release(tw, f);
			break;
		}
		if (s.flags & F_SYN) { /* our SYN-ACK was lost: it is stateless, resend it */
			if (s.seq == f->vm_isn)
				syn_in(w, &s, m, port_idx, now);
			break;
		}
		f->vm_win = s.win;
		if (hold_data(w, f, m, &s) > 0 || f->fin_vm) {
			if (f->state == SP_FLOW_HEAD)
				parse_held(w, f, now);
			else if (f->state == SP_FLOW_BODY)
				body_held(w, f, now);
		}
		break;
	case SP_FLOW_SPLICE:
	case SP_FLOW_TIME_WAIT:
		splice_from_vm(w, f, m, &s);
		if (f->state != SP_FLOW_FREE && f->fin_vm && f->fin_be &&
		    f->state == SP_FLOW_SPLICE) {
			f->state = SP_FLOW_TIME_WAIT;
			f->timer_tsc = now + tw->tw_tsc;
			SP_TCP_CNT(tw, CLOSED);
		}
		return true;
	case SP_FLOW_REPLY:
		if (s.flags & F_RST) {
			sp_flow_release(tw, f);
			break;
		}
		f->vm_win = s.win;
		if (!f->reply_close) {
			/* kept alive: the next request may come before the reply is done; it is
			 * parsed once the reply is all acknowledged */
			hold_data(w, f, m, &s);
			reply_ack(w, f, &s, now);
			break;
		}
		reply_ack(w, f, &s, now);
		if (s.plen > 0 && !(s.flags & F_FIN) && seq_le(s.seq, f->rcv_nxt) &&
		    seq_lt(f->rcv_nxt, s.seq + s.plen)) {
			/* the rest of a request already answered (a body): taken and dropped, as
			 * the service does, so the VM is not stuck sending it */
			f->rcv_nxt = s.seq + s.plen;
			sp_flow_send(w, f, true, f->snd_nxt, f->rcv_nxt, F_ACK, hold_window(tw, f),
				     NULL, 0, NULL, 0, NULL, 0);
		}
		if (s.flags & F_FIN) {
			f->rcv_nxt = s.seq + s.plen + 1;
			f->vm_fin_acked = 1;
			sp_flow_send(w, f, true, f->snd_nxt, f->rcv_nxt, F_ACK, 0, NULL, 0, NULL, 0,
				     NULL, 0);
		}
		if (f->snd_una == f->snd_max && f->vm_fin_acked)
			sp_flow_release(tw, f);
		break;
	default:
		break;
	}
	if (f->ack_due && f->state != SP_FLOW_FREE) { /* what was held, not answered yet */
		f->ack_due = 0;
		ack_vm(w, f);
	}
	rte_pktmbuf_free(m);
	return true;
}

bool
sp_tcp_from_uplink(struct sp_worker *w, struct rte_mbuf *m, const struct sp_pkt_info *pi,
		   uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);
	struct sp_flow_key k;
	struct sp_flow *f;
	struct seg s;

	if (unlikely(!seg_parse(m, pi, &s)))
		return false;
	if (!sp_flow_be_maybe(tw, s.ip->src_addr, s.tcp->src_port))
		return false;
	k.src_ip = s.ip->src_addr;
	k.dst_ip = s.ip->dst_addr;
	k.sport = s.tcp->src_port;
	k.dport = s.tcp->dst_port;
	f = sp_flow_lookup(tw, &k);
	if (f == NULL || !f->be_key)
		return false;
	f->last_tsc = now;
	switch (f->state) {
	case SP_FLOW_CONNECTING:
		if (unlikely(!seg_csum_ok(m, &s))) {
			SP_TCP_CNT(tw, BAD_CHECKSUM);
		} else if ((s.flags & (F_SYN | F_ACK)) == (F_SYN | F_ACK) &&
			   s.ack == f->vm_isn + 1) {
			established(w, f, &s, now);
		} else if ((s.flags & F_RST) && (s.flags & F_ACK) && s.ack == f->vm_isn + 1) {
			SP_TCP_CNT(tw, BE_REFUSED);
			target_failed(w, f, now);
		}
		rte_pktmbuf_free(m);
		return true;
	case SP_FLOW_SPLICE:
	case SP_FLOW_TIME_WAIT:
		splice_from_be(w, f, m, &s, now);
		if (f->state == SP_FLOW_SPLICE && f->fin_vm && f->fin_be) {
			f->state = SP_FLOW_TIME_WAIT;
			f->timer_tsc = now + tw->tw_tsc;
			SP_TCP_CNT(tw, CLOSED);
		}
		return true;
	default:
		rte_pktmbuf_free(m);
		return true;
	}
}

/*
 * ICMP errors (destination unreachable, time exceeded, parameter problem) quote the IP header
 * and 8 bytes of the segment they are about: one of ours toward a backend (the VM's address
 * and port as source). While connecting it means the target cannot be reached (next target);
 * once spliced the quote is translated as the VM sent it (VIP, its sequence space) and the
 * error goes to the VM, so its stack sees path MTU and unreachability as if shortpath were not
 * there.
 */
bool
sp_tcp_icmp_from_uplink(struct sp_worker *w, struct rte_mbuf *m, const struct sp_pkt_info *pi,
			uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);
	uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);
	uint8_t *icmp = p + pi->l4_off, type = icmp[0];
	struct rte_ipv4_hdr *in;
	struct sp_flow_key k;
	struct sp_flow *f;
	uint32_t ihl, seq;
	uint16_t *ports, len;

	if ((type != 3 && type != 11 && type != 12) || pi->n_vlan != 0)
		return false;
	/* the quote: an IPv4 header and at least 8 bytes of TCP, all in the first segment */
	if (pi->l4_off + 8u + sizeof(*in) > rte_pktmbuf_data_len(m) ||
	    pi->l4_off + 8u + sizeof(*in) > pi->l3_end)
		return false;
	in = (struct rte_ipv4_hdr *)(icmp + 8);
	ihl = (uint32_t)(in->version_ihl & 0xf) * 4;
	if ((in->version_ihl >> 4) != 4 || ihl < 20 || in->next_proto_id != IPPROTO_TCP ||
	    pi->l4_off + 8u + ihl + 8u > RTE_MIN(pi->l3_end, (uint32_t)rte_pktmbuf_data_len(m)))
		return false;
	ports = (uint16_t *)((uint8_t *)in + ihl);
	if (!sp_flow_be_maybe(tw, in->dst_addr, ports[1]))
		return false;
	k.src_ip = in->dst_addr;
	k.dst_ip = in->src_addr;
	k.sport = ports[1];
	k.dport = ports[0];
	f = sp_flow_lookup(tw, &k);
	if (f == NULL || !f->be_key)
		return false;
	if (f->state == SP_FLOW_CONNECTING && type == 3) {
		SP_TCP_CNT(tw, ICMP_UNREACH);
		target_failed(w, f, now);
		rte_pktmbuf_free(m);
		return true;
	}
	if (f->state != SP_FLOW_SPLICE && f->state != SP_FLOW_TIME_WAIT) {
		SP_TCP_CNT(tw, ICMP_DROPPED);
		rte_pktmbuf_free(m);
		return true;
	}
	memcpy(&seq, ports + 2, 4);
	seq = rte_cpu_to_be_32(rte_be_to_cpu_32(seq) - f->delta_c);
	memcpy(ports + 2, &seq, 4);
	in->hdr_checksum = sp_csum_update32(in->hdr_checksum, in->dst_addr, f->vip);
	in->dst_addr = f->vip;
	ports[1] = f->vport;
	/* the quote's TCP checksum may be cut off: the ICMP checksum is made again over it all */
	len = (uint16_t)(pi->l3_end - pi->l4_off);
	icmp[2] = icmp[3] = 0;
	{
		uint16_t c = (uint16_t)~rte_raw_cksum(icmp, len);

		memcpy(icmp + 2, &c, 2);
	}
	SP_TCP_CNT(tw, ICMP_RELAYED);
	sp_worker_tx(w, f->port_idx, m);
	return true;
}

/* An answer from the control thread. */
static void
loc_answer(struct sp_worker *w, struct sp_loc_msg *m, uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);
	struct sp_flow *f;

	if (m->status == SP_LOC_FOUND)
		sp_loc_store(tw, m, now);
	if (m->kind == SP_LOC_PREFETCH) {
		SP_TCP_CNT(tw, LOC_PREFETCHED);
		return;
	}
	if (m->kind != SP_LOC_RESOLVE)
		return;
	if (m->flow >= tw->n_flows || tw->flows[m->flow].gen != m->flow_gen ||
	    tw->flows[m->flow].state != SP_FLOW_RESOLVING) {
		SP_TCP_CNT(tw, LOC_STALE_ANSWER);
		return;
	}
	f = &tw->flows[m->flow];
	if (m->status == SP_LOC_FOUND) {
		SP_TCP_CNT(tw, LOC_RESOLVED);
		resume(w, f, sp_loc_find(tw, m->svc_slot, m->op, m->name, m->name_len, now), now);
	} else {
		if (m->status == SP_LOC_NOT_FOUND)
			SP_TCP_CNT(tw, LOC_NOT_FOUND);
		else
			SP_TCP_CNT(tw, LOC_FAILED);
		resume(w, f, NULL, now);
	}
}

/* A verification answered by the control thread. */
static void
auth_answer(struct sp_worker *w, struct sp_auth_msg *m, uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);
	struct sp_flow *f;

	if (m->verdict)
		verdict_store(tw, m, now);
	if (m->flow >= tw->n_flows || tw->flows[m->flow].gen != m->flow_gen ||
	    tw->flows[m->flow].state != SP_FLOW_AUTHENTICATING) {
		SP_TCP_CNT(tw, AUTH_STALE_ANSWER);
		return;
	}
	f = &tw->flows[m->flow];
	f->timer_tsc = 0;
	switch (m->status) {
	case SP_AUTH_OK:
		SP_TCP_CNT(tw, AUTH_OK);
		if (m->body_unverified)
			bind_vip(w, f, SP_TCP_EV_AUTH_VIP_BODY, now);
		else
			route(w, f, now);
		return;
	case SP_AUTH_REFUSED:
		SP_TCP_CNT(tw, AUTH_REFUSED);
		if (m->reply_len == 0 ||
		    m->reply_len > RTE_MIN(tw->hdr_cap, SP_AUTH_REPLY_MAX + 0u)) {
			bind_vip(w, f, SP_TCP_EV_AUTH_UNDECIDED, now); /* no reply to send */
			return;
		}
		memcpy(f->buf->hdr, m->reply, m->reply_len);
		f->reply_len = m->reply_len;
		start_reply(w, f, now);
		return;
	default:
		bind_vip(w, f, SP_TCP_EV_AUTH_UNDECIDED, now);
	}
}

/* One flow's timer expired. */
static void
flow_timer(struct sp_worker *w, struct sp_flow *f, uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);

	switch (f->state) {
	case SP_FLOW_HEAD:
		if (f->requests > 0 && f->buf->len == 0) { /* a kept-alive connection idled out */
			close_idle(w, f, now);
			return;
		}
		SP_TCP_CNT(tw, HEADER_TIMEOUT);
		rst_vm(w, f);
		sp_flow_release(tw, f);
		return;
	case SP_FLOW_RESOLVING:
		SP_TCP_CNT(tw, LOC_TIMEOUT);
		resume(w, f, NULL, now);
		return;
	case SP_FLOW_CACHE_WAIT: /* cache_waiters() missed it (it runs each poll): on its way */
		SP_TCP_CNT(tw, CACHE_WAIT_MISS);
		f->timer_tsc = 0;
		route(w, f, now);
		return;
	case SP_FLOW_BODY: /* the signed body is late: its signature is checked, not the body */
		auth_punt(w, f, 0, true, now);
		return;
	case SP_FLOW_AUTHENTICATING:
		bind_vip(w, f, SP_TCP_EV_AUTH_TIMEOUT, now);
		return;
	case SP_FLOW_CONNECTING:
		if (f->tries < tw->syn_retries) {
			f->tries++;
			SP_TCP_CNT(tw, BE_SYN_RETX);
			send_syn(w, f);
			f->timer_tsc = now + (tw->syn_timeout_tsc << (f->tries - 1));
			return;
		}
		SP_TCP_CNT(tw, BE_TIMEOUT);
		target_failed(w, f, now);
		return;
	case SP_FLOW_SPLICE:
		if (f->buf != NULL && f->retx < MAX_RETX) {
			f->retx++;
			SP_TCP_CNT(tw, RETRANSMIT);
			send_held(w, f, f->be_una, true);
			f->timer_tsc = now + (tw->rto_tsc << f->retx);
			return;
		}
		if (f->buf != NULL) {
			SP_TCP_CNT(tw, BE_TIMEOUT);
			rst_be(w, f);
			rst_vm(w, f);
			sp_flow_release(tw, f);
			return;
		}
		f->timer_tsc = 0;
		return;
	case SP_FLOW_REPLY:
		if (f->retx < MAX_RETX && f->snd_una != f->snd_max) {
			f->retx++;
			SP_TCP_CNT(tw, RETRANSMIT);
			/* go back: the first unacknowledged segment now, the rest as ACKs come */
			f->snd_nxt = f->snd_una;
			send_reply(w, f, f->snd_una, true);
			f->timer_tsc = now + (tw->rto_tsc << f->retx);
			return;
		}
		if (f->snd_una != f->snd_max || f->reply_close) {
			sp_flow_release(tw, f);
			return;
		}
		f->timer_tsc = 0;
		return;
	case SP_FLOW_TIME_WAIT:
		sp_flow_release(tw, f);
		return;
	default:
		return;
	}
}

void
sp_tcp_poll(struct sp_worker *w, uint64_t now)
{
	struct sp_tcp_worker *tw = tcpw(w);
	void *msgs[LOC_BURST];
	unsigned int n, i;
	uint32_t k;

	n = rte_ring_sc_dequeue_burst(w->loc_ring, msgs, LOC_BURST, NULL);
	for (i = 0; i < n; i++) {
		loc_answer(w, msgs[i], now);
		rte_mempool_put(w->dp->loc_pool, msgs[i]);
	}
	n = rte_ring_sc_dequeue_burst(w->auth_ring, msgs, AUTH_BURST, NULL);
	for (i = 0; i < n; i++) {
		auth_answer(w, msgs[i], now);
		rte_mempool_put(w->dp->auth_pool, msgs[i]);
	}
	if (tw->n_wait > 0)
		cache_waiters(w, now);
	if (tw->live == 0)
		return;
	for (k = 0; k < SWEEP_PER_POLL; k++) {
		struct sp_flow *f = &tw->flows[tw->sweep];

		tw->sweep = tw->sweep + 1 == tw->n_flows ? 0 : tw->sweep + 1;
		if (f->state == SP_FLOW_FREE)
			continue;
		if (f->timer_tsc != 0 && now >= f->timer_tsc) {
			flow_timer(w, f, now);
			continue;
		}
		if (f->state == SP_FLOW_SPLICE &&
		    now - f->last_tsc >
			    ((f->fin_vm || f->fin_be) ? tw->half_close_tsc : tw->idle_tsc)) {
			if (f->fin_vm || f->fin_be)
				SP_TCP_CNT(tw, HALF_CLOSE_TIMEOUT);
			else
				SP_TCP_CNT(tw, IDLE_TIMEOUT);
			rst_be(w, f);
			rst_vm(w, f);
			sp_flow_release(tw, f);
		}
	}
}
