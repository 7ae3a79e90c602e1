/* The TCP endpoint's per-worker state: flows, request buffers, locator cache, segment builder
 * (internal to sp_flow.c and sp_tcp_ep.c). */
#ifndef SP_FLOW_H
#define SP_FLOW_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ether.h>
#include <rte_mbuf.h>

#include "sp_cache.h"
#include "sp_cache_http.h"
#include "sp_counters.h"
#include "sp_http.h"
#include "sp_loc.h"
#include "sp_policy.h"
#include "sp_sigv4.h"
#include "sp_syncookie.h"
#include "sp_tcp_ep.h"

#define SP_FLOW_NONE UINT32_MAX
#define SP_FLOW_INSERT_MAX 512 /* bytes a rewritten head may grow by (path, credential, close) */
#define SP_FLOW_OUR_WSCALE 7   /* the window scale shortpath offers a VM that offers one */
#define SP_CACHE_WAITERS 64    /* misses per worker waiting for a fill at once */

/* A flow's key as the packet carries it (network byte order): source, then destination. */
struct sp_flow_key {
	uint32_t src_ip;
	uint32_t dst_ip;
	uint16_t sport;
	uint16_t dport;
};

/* A request buffer (from the worker's buffer pool): what the VM sent before the bind. */
struct sp_fbuf {
	struct sp_http_req req;
	uint32_t len;	   /* bytes held in data */
	uint32_t head_len; /* request head bytes replaced by hdr (0: data goes as it is) */
	uint32_t hdr_len;  /* the rewritten head's length */
	char hdr[];	   /* rewritten head (max_head + SP_FLOW_INSERT_MAX), then data */
};

/* One flow: the VM's connection to a direct service, and its backend connection once bound. */
struct sp_flow {
	uint32_t gen;
	uint8_t state;	 /* enum sp_flow_state */
	uint8_t target;	 /* 0: storage node, 1: VIP */
	uint8_t node;	 /* replica index being tried */
	uint8_t tries;	 /* SYNs sent to the current target */
	uint8_t retx;	 /* retransmissions of the current data */
	uint8_t dupacks; /* REPLY: duplicate ACKs in a row */
	uint8_t fin_vm : 1, fin_be : 1, be_key : 1, ws : 1, refresh_sent : 1, vm_fin_acked : 1;
	uint8_t be_noscale : 1;	 /* the VM scales its windows, the backend did not agree to */
	uint8_t presigned : 1;	 /* the request was authenticated by presigned query parameters */
	uint8_t reply_close : 1; /* REPLY: FIN after the reply, then the flow ends; else the
				  * connection is kept alive for the next request */
	uint8_t ack_due : 1;	 /* the VM's data is held but not acknowledged yet */
	uint8_t cached : 1;
	uint8_t cache_waited : 1;
	/* this request waited for a fill already */ /* the request's object has a cache key
							(ckey) */
	uint8_t vm_ws;				     /* the VM's window scale (if ws) */
	uint8_t be_ws;	/* the backend's (if ws and it answered with one) */
	uint8_t method; /* enum sp_loc_method, or 0xff */
	uint16_t mss;	/* the cookie's MSS: what the VM takes */
	uint16_t be_mss;
	uint16_t port_idx;	    /* the VM's port */
	uint16_t slot;		    /* the service */
	uint32_t vm_ip, vip, be_ip; /* network byte order */
	uint16_t vm_port, vport, be_port;
	struct rte_ether_addr vm_mac, gw_mac;
	/* sequence space, host byte order */
	uint32_t vm_isn;    /* the VM's ISN */
	uint32_t our_isn;   /* the cookie: shortpath's ISN toward the VM */
	uint32_t rcv_nxt;   /* next VM byte (VM space); at the bind: the end of what is held */
	uint32_t snd_nxt;   /* next byte of shortpath's own reply to the VM */
	uint32_t snd_una;   /* ... acknowledged by the VM */
	uint32_t be_isn;    /* the backend's ISN */
	uint32_t delta_c;   /* VM seq + delta_c = backend seq, after the held bytes */
	uint32_t delta_s;   /* backend seq + delta_s = VM-side seq */
	uint32_t be_end;    /* backend seq after the held bytes (+ FIN) */
	uint32_t be_una;    /* backend seq: held bytes acknowledged up to here */
	uint32_t be_sent;   /* backend seq after the last held byte sent */
	uint32_t be_wnd;    /* the backend's window (bytes) */
	uint32_t vm_ack_be; /* the VM's latest ACK, in backend space (for our retransmissions) */
	uint32_t vm_nxt;    /* after the VM's highest byte seen in the splice (VM space) */
	uint32_t be_nxt;    /* after the backend's highest byte seen (VM-side space) */
	uint16_t vm_win;    /* the VM's latest window field */
	uint16_t reply_len; /* bytes of shortpath's own reply head in buf->hdr (REPLY) */
	uint32_t reply_seq; /* REPLY: the VM-side seq of the reply's first byte */
	uint32_t snd_max;   /* REPLY: after the reply's last byte (and FIN) */
	uint32_t body_len;  /* REPLY: body bytes from centry after the head */
	uint64_t body_off;  /* ... starting at this offset of centry->body */
	struct sp_cache_entry *centry; /* REPLY: the entry the body comes from (refcnt held) */
	struct sp_cache_fill *fill;    /* a response being copied for the cache (claim held) */
	uint32_t fill_base;	       /* where the backend's byte 0 goes in fill->data */
	uint32_t requests;	       /* requests answered on this connection (keep-alive) */
	uint64_t ckey;		       /* the object's cache key hash (if cached) */
	uint64_t bytes_vm;	       /* payload bytes from the VM */
	uint64_t bytes_be;	       /* payload bytes from the backend */
	uint64_t created_tsc;
	uint64_t last_tsc;   /* last packet either way */
	uint64_t timer_tsc;  /* next retransmission / deadline (0: none) */
	struct sp_fbuf *buf; /* until everything held reached the backend */
};

/* A locator as a worker keeps it (copied from a struct sp_loc_msg). */
struct sp_loc_entry {
	uint64_t expires_tsc; /* 0: empty */
	uint64_t refresh_tsc; /* after this, a use asks for a refresh (once) */
	uint32_t hash;
	uint16_t slot;
	uint8_t op;
	uint8_t status;
	uint8_t n_nodes;
	uint8_t refresh_sent;
	uint16_t name_len;
	uint16_t path_len;
	uint8_t cred_len[SP_LOC_METHODS];
	uint32_t node_ip[SP_LOC_NODES];
	uint16_t node_port[SP_LOC_NODES];
	uint64_t size;
	char name[SP_LOC_NAME_MAX];
	char path[SP_LOC_PATH_MAX];
	char cred[SP_LOC_METHODS][SP_LOC_CRED_MAX];
};

/*
 * A verdict: requests from VM port port_idx to service slot signed with access key ak were found
 * authentic (mode first); trusted until expires_tsc while the services epoch and the credential's
 * generation (dp->auth_gen) are the ones it was earned with. The policy is checked every time.
 */
struct sp_auth_verdict {
	uint64_t expires_tsc; /* 0: empty */
	uint64_t svc_epoch;
	uint32_t cred_gen;
	uint32_t hash;
	uint16_t port_idx;
	uint16_t slot;
	uint8_t ak_len;
	char ak[SP_SIGV4_ACCESS_KEY_MAX + 1];
	struct sp_policy policy;
};

/* One worker's endpoint. */
struct sp_tcp_worker {
	struct rte_hash *hash; /* sp_flow_key → flow index (VM side and backend side) */
	struct sp_flow *flows;
	uint32_t n_flows;  /* capacity */
	uint32_t live;	   /* flows in use */
	uint32_t free_top; /* free list (stack of indexes) */
	uint32_t *free_idx;
	uint32_t sweep;	   /* timer sweep cursor */
	uint16_t *be_ref;  /* flows per hash of a backend's address and port (uplink prefilter) */
	uint16_t *vip_ref; /* flows per hash of a VIP and port (VM-side prefilter) */
	struct rte_mempool *bufs;
	uint32_t buf_size; /* data bytes per buffer */
	uint32_t hdr_cap;  /* rewritten head bytes per buffer */
	struct sp_loc_entry *loc;
	uint32_t loc_mask;
	struct sp_auth_verdict *verdicts; /* direct-mapped by sp_auth_verdict_hash */
	uint32_t verdict_mask;
	uint64_t auth_tsc;    /* a verification's deadline */
	uint64_t verdict_tsc; /* a verdict's lifetime cap ([auth] verdict_ttl_s) */
	int64_t wall_base_s;  /* unix time at wall_base_tsc (the SigV4 clock checks) */
	uint64_t wall_base_tsc;
	struct sp_syncookie_keys keys;
	struct sp_http_limits lim;
	uint16_t mss_clamp; /* the uplink's MTU - 40 */
	uint16_t ip_id;
	uint64_t hz;
	uint64_t syn_timeout_tsc, rto_tsc, idle_tsc, half_close_tsc, resolve_tsc, head_tsc;
	uint64_t tw_tsc;
	uint32_t syn_retries;
	uint64_t boot_s_tsc;	    /* tsc at which the cookie clock started */
	uint64_t cookie_tsc;	    /* TSC cycles per cookie clock second (64 of them per period) */
	struct sp_worker_stats *ws; /* the worker's counters */
	struct sp_cache *cache;	    /* dp->cache (NULL: no cache) */
	uint16_t n_wait;	    /* misses waiting for a fill (CACHE_WAIT), checked each poll */
	uint32_t wait_idx[SP_CACHE_WAITERS];
	uint32_t wait_gen[SP_CACHE_WAITERS];
	uint64_t reqid; /* request ids of shortpath's own answers */
	int64_t date_s; /* the second date[] is for */
	char date[SP_HTTP_DATE_LEN];
};

#define SP_TCP_CNT(tw, e) SP_CNT_ADD((tw)->ws->tcp[SP_TCP_EV_##e], 1)

/* sp_flow.c: the table. */
struct sp_flow *sp_flow_alloc(struct sp_tcp_worker *tw);
void sp_flow_release(struct sp_tcp_worker *tw, struct sp_flow *f);
/* Drop what the flow holds of the cache: the entry it answers from, a fill it copies. */
void sp_flow_cache_release(struct sp_tcp_worker *tw, struct sp_flow *f);
struct sp_flow *sp_flow_lookup(struct sp_tcp_worker *tw, const struct sp_flow_key *k);
int sp_flow_key_add(struct sp_tcp_worker *tw, const struct sp_flow_key *k, struct sp_flow *f);
void sp_flow_key_del(struct sp_tcp_worker *tw, const struct sp_flow_key *k);
/* The backend side's key: added once a target is chosen, removed when it changes. */
int sp_flow_be_add(struct sp_tcp_worker *tw, struct sp_flow *f);
void sp_flow_be_del(struct sp_tcp_worker *tw, struct sp_flow *f);

#define SP_FLOW_BE_REF 65536 /* prefilter slots (uint16_t counts) */

static inline uint32_t
sp_flow_ref_slot(uint32_t ip, uint16_t port)
{
	return ((ip ^ ((uint32_t)port << 16 | port)) * 0x9e3779b1u) >> 16;
}

/* Whether any flow may have a backend at ip:port (network byte order). */
static inline bool
sp_flow_be_maybe(const struct sp_tcp_worker *tw, uint32_t ip, uint16_t port)
{
	return tw->be_ref[sp_flow_ref_slot(ip, port)] != 0;
}

/* Whether any flow may be a VM's connection to ip:port (a service's VIP). */
static inline bool
sp_flow_vip_maybe(const struct sp_tcp_worker *tw, uint32_t ip, uint16_t port)
{
	return tw->vip_ref[sp_flow_ref_slot(ip, port)] != 0;
}

/* Count up / down a prefilter slot (a saturated slot stays: the lookup then decides). */
static inline void
sp_flow_ref(uint16_t *ref, uint32_t ip, uint16_t port, int d)
{
	uint16_t *r = &ref[sp_flow_ref_slot(ip, port)];

	if (*r != UINT16_MAX && (d > 0 || *r != 0))
		*r = (uint16_t)(*r + d);
}
void sp_flow_vm_key(const struct sp_flow *f, struct sp_flow_key *k);
void sp_flow_be_key(const struct sp_flow *f, struct sp_flow_key *k);
static inline uint32_t
sp_flow_index(const struct sp_tcp_worker *tw, const struct sp_flow *f)
{
	return (uint32_t)(f - tw->flows);
}

/* sp_flow.c: the locator cache. */
uint32_t sp_loc_hash(uint16_t slot, uint8_t op, const char *name, uint32_t len);
struct sp_loc_entry *sp_loc_find(struct sp_tcp_worker *tw, uint16_t slot, uint8_t op,
				 const char *name, uint32_t len, uint64_t now);
void sp_loc_store(struct sp_tcp_worker *tw, const struct sp_loc_msg *m, uint64_t now);

/* sp_flow.c: the verdicts. */
uint32_t sp_auth_verdict_hash(uint16_t port_idx, uint16_t slot, const char *ak, uint32_t len);
struct sp_auth_verdict *sp_auth_verdict_find(struct sp_tcp_worker *tw, uint16_t port_idx,
					     uint16_t slot, const char *ak, uint32_t len,
					     uint64_t now);

/*
 * sp_flow.c: a segment of flow f, made by shortpath, to the VM (to_vm) or to the backend;
 * payload from up to two pieces. Queued on the right port. -ENOBUFS when no mbuf.
 */
int sp_flow_send(struct sp_worker *w, const struct sp_flow *f, bool to_vm, uint32_t seq,
		 uint32_t ack, uint8_t flags, uint16_t win, const uint8_t *opt, uint8_t optlen,
		 const void *p1, uint32_t l1, const void *p2, uint32_t l2);
/* The same, p2's ones' complement sum (rte_raw_cksum) given in p2_sum (-1: sum it here). */
int sp_flow_send_sum(struct sp_worker *w, const struct sp_flow *f, bool to_vm, uint32_t seq,
		     uint32_t ack, uint8_t flags, uint16_t win, const uint8_t *opt, uint8_t optlen,
		     const void *p1, uint32_t l1, const void *p2, uint32_t l2, int32_t p2_sum);

#endif /* SP_FLOW_H */
