/* The worker's TCP endpoint for enhanced services: SYN cookies, request buffering and parsing,
 * the per-request decision, locator cache, backend connect and the seq/ack splice. */
#ifndef SP_TCP_EP_H
#define SP_TCP_EP_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_ether.h>
#include <rte_mbuf.h>

#include "sp_pkt.h"

struct sp_worker;
struct sp_dp;
struct rte_tel_data;

/* What the endpoint counts, per worker (one table of names, VPP style; in sp_worker_stats.tcp). */
#define SP_TCP_EVENTS(X)                                                                           \
	X(SYN_RX, "syn_rx")			/* SYNs to a direct service */                     \
	X(SYNACK_TX, "synack_tx")		/* cookies sent */                                 \
	X(BAD_SEGMENT, "bad_segment")		/* bad flags/offsets/options: dropped */           \
	X(BAD_CHECKSUM, "bad_checksum")		/* a segment shortpath would take: dropped */      \
	X(COOKIE_OK, "cookie_ok")		/* a valid cookie: flow created */                 \
	X(COOKIE_STALE, "cookie_stale")		/* too old: forwarded unchanged */                 \
	X(COOKIE_FORGED, "cookie_forged")	/* not ours: forwarded unchanged */                \
	X(NO_FLOW_PASSED, "no_flow_passed")	/* other segments without a flow: forwarded */     \
	X(FLOWS_FULL, "flows_full")		/* no flow slot: forwarded unchanged */            \
	X(BUFFERS_EMPTY, "buffers_empty")	/* no request buffer: forwarded unchanged */       \
	X(FLOW_FREED, "flow_freed")		/* flows ended (any reason) */                     \
	X(REQUESTS, "requests")			/* request heads parsed */                         \
	X(HTTP_ERROR, "http_error")		/* head refused by the parser: ordinary path */    \
	X(HEAD_TOO_LARGE, "head_too_large")	/* head beyond flow_buffer: ordinary path */       \
	X(DATA_OOO, "data_ooo")			/* out-of-order data before the bind: dropped */   \
	X(DATA_DUP, "data_dup")			/* data already held: re-acknowledged */           \
	X(DATA_OVER_WINDOW, "data_over_window") /* beyond the window offered: trimmed */           \
	X(OVERLAP_DROPPED, "overlap_dropped")	/* straddles held and new data: dropped */         \
	X(BIND_NODE, "bind_node")		/* requests sent direct to a storage node */       \
	X(BIND_VIP, "bind_vip")			/* connections bound to the VIP */                 \
	X(VIP_NOT_ENHANCED, "vip_not_enhanced") /* ... because: method not enhanced */             \
	X(VIP_NOT_OBJECT, "vip_not_object")	/* ... target not /bucket/key or has a query */    \
	X(VIP_LISTING, "vip_listing")		/* ... a listing (prefetch asked) */               \
	X(VIP_BODY_FORM, "vip_body_form")	/* ... chunked, unknown Expect, HTTP/1.0 */        \
	X(VIP_PIPELINED, "vip_pipelined")	/* ... more than one request held */               \
	X(VIP_NO_LOCATOR, "vip_no_locator")	/* ... locator not found / failed / timed out */   \
	X(VIP_EARLY_CLOSE, "vip_early_close")	/* ... FIN before a whole head */                  \
	X(LOC_HIT, "loc_hit")			/* locator cache hits */                           \
	X(LOC_MISS, "loc_miss")			/* ... misses: punted to resolve */                \
	X(LOC_RESOLVED, "loc_resolved")		/* answers that resumed a held flow */             \
	X(LOC_NOT_FOUND, "loc_not_found")                                                          \
	X(LOC_FAILED, "loc_failed")                                                                \
	X(LOC_TIMEOUT, "loc_timeout")		/* no answer in time: ordinary path */             \
	X(LOC_STALE_ANSWER, "loc_stale_answer") /* answer for a flow that is gone */               \
	X(LOC_PREFETCHED, "loc_prefetched")	/* locators received without asking */             \
	X(LOC_REFRESH, "loc_refresh")		/* refreshes asked */                              \
	X(LOC_LISTING, "loc_listing")		/* listing prefetches asked */                     \
	X(PUNT_FULL, "punt_full")		/* punt ring or message pool full */               \
	X(AUTH_HIT, "auth_hit")			/* requests trusted on a verdict (no crypto) */    \
	X(AUTH_PUNT, "auth_punt")	    /* requests sent to the control thread to verify */    \
	X(AUTH_OK, "auth_ok")		    /* ... answered authentic and allowed */               \
	X(AUTH_REFUSED, "auth_refused")	    /* ... answered with an S3 error (sent to the VM) */   \
	X(AUTH_UNDECIDED, "auth_undecided") /* ... undecided, or not sent: ordinary path */        \
	X(AUTH_TIMEOUT, "auth_timeout")	    /* ... unanswered in time: ordinary path */            \
	X(AUTH_STALE_ANSWER, "auth_stale_answer") /* ... answer for a flow that is gone */         \
	X(AUTH_LOCAL_ERROR, "auth_local_error") /* refused by the worker's own checks (malformed,  \
						 * skew, expired): S3 error to the VM */           \
	X(AUTH_DENIED, "auth_denied")		/* refused by the policy under a verdict */        \
	X(AUTH_VIP_BODY, "auth_vip_body")	/* signed body not all held: verified, ordinary */ \
	X(AUTH_VERDICTS, "auth_verdicts")	/* verdicts installed */                           \
	X(CACHE_HIT, "cache_hit")		/* requests answered from the cache */             \
	X(CACHE_MISS, "cache_miss")		/* cacheable requests not in the cache */          \
	X(CACHE_EXPIRED, "cache_expired")	/* ... in it past its TTL (policy ttl) */          \
	X(CACHE_STALE_VERIFY, "cache_stale_verify") /* served past its TTL, revalidation asked */  \
	X(CACHE_STALE_IF_ERROR, "cache_stale_if_error") /* served because the storage failed */    \
	X(CACHE_200, "cache_200")			/* hits answered 200 (GET and HEAD) */     \
	X(CACHE_206, "cache_206")			/* ... 206 (a single range) */             \
	X(CACHE_304, "cache_304")		/* ... 304 (If-None-Match / If-Modified-Since) */  \
	X(CACHE_412, "cache_412")		/* ... 412 (If-Match / If-Unmodified-Since) */     \
	X(CACHE_416, "cache_416")		/* ... 416 (range not satisfiable) */              \
	X(CACHE_HEAD, "cache_head")		/* ... of them HEAD requests */                    \
	X(CACHE_KEEPALIVE, "cache_keepalive")	/* requests after the first on a connection */     \
	X(CACHE_BYTES, "cache_bytes")		/* body bytes answered from the cache */           \
	X(CACHE_FILL_START, "cache_fill_start") /* responses being copied for the cache */         \
	X(CACHE_FILL_DONE, "cache_fill_done")	/* ... handed to the control thread */             \
	X(CACHE_FILL_ABORT, "cache_fill_abort") /* ... given up (not cacheable, gap, closed) */    \
	X(CACHE_FILL_COALESCED, "cache_fill_coalesced") /* a fill of the object already runs */    \
	X(CACHE_WAIT, "cache_wait")			/* ... and the miss waited for it */       \
	X(CACHE_WAIT_HIT, "cache_wait_hit")		/* ... then was answered from the cache */ \
	X(CACHE_WAIT_MISS, "cache_wait_miss")	/* ... it did not land in time: fetched itself */  \
	X(CACHE_FILL_NOBUF, "cache_fill_nobuf") /* no fill buffer free */                          \
	X(CACHE_WRITE_THROUGH, "cache_write_through") /* PUT bodies copied for the cache */        \
	X(CACHE_INVALIDATE,                                                                        \
	  "cache_invalidate")		    /* writes that invalidated an object (or bucket) */    \
	X(BE_SYN_TX, "be_syn_tx")	    /* backend SYNs (first tries) */                       \
	X(BE_SYN_RETX, "be_syn_retx")	    /* backend SYN retransmissions */                      \
	X(BE_REFUSED, "be_refused")	    /* backend answered the SYN with RST */                \
	X(BE_TIMEOUT, "be_timeout")	    /* backend never answered the SYN */                   \
	X(REPLICA_RETRY, "replica_retry")   /* next replica tried */                               \
	X(FALLBACK_VIP, "fallback_vip")	    /* storage nodes failed: the VIP tried */              \
	X(REPLY_503, "reply_503")	    /* every target failed: 503 to the VM */               \
	X(TUPLE_BUSY, "tuple_busy")	    /* backend 4-tuple in use by another flow */           \
	X(RETRANSMIT, "retransmit")	    /* data segments sent again (timeout) */               \
	X(SPLICED_VM, "spliced_vm")	    /* VM segments translated to the backend */            \
	X(SPLICED_BE, "spliced_be")	    /* backend segments translated to the VM */            \
	X(VM_RST, "vm_rst")		    /* RSTs from VMs */                                    \
	X(BE_RST, "be_rst")		    /* RSTs from backends after the splice */              \
	X(RST_SENT, "rst_sent")		    /* RSTs shortpath sent */                              \
	X(HEADER_TIMEOUT, "header_timeout") /* no whole request head in time: RST */               \
	X(IDLE_TIMEOUT, "idle_timeout")	    /* idle flow: reset both ways */                       \
	X(HALF_CLOSE_TIMEOUT, "half_close_timeout")                                                \
	X(CLOSED, "closed")		/* both FINs seen: orderly close */                        \
	X(ALLOC_FAILED, "alloc_failed") /* no mbuf for a segment shortpath makes */                \
	X(ICMP_UNREACH, "icmp_unreach") /* a backend unreachable while connecting: next target */  \
	X(ICMP_RELAYED,                                                                            \
	  "icmp_relayed") /* ICMP errors about a spliced flow, translated to the VM */             \
	X(ICMP_DROPPED, "icmp_dropped") /* ICMP errors about a flow in no state to use them */     \
	X(MSS_MISMATCH, "mss_mismatch") /* backend MSS below what the VM was offered */

enum sp_tcp_event {
#define SP_TCP_EV_ENUM(e, s) SP_TCP_EV_##e,
	SP_TCP_EVENTS(SP_TCP_EV_ENUM)
#undef SP_TCP_EV_ENUM
		SP_TCP_EV_MAX
};

/* Flow states (also the telemetry's names). */
#define SP_FLOW_STATES(X)                                                                          \
	X(FREE, "free")                                                                            \
	X(HEAD, "head")			    /* handshake done, reading the request head */         \
	X(BODY, "body")			    /* head held, reading a signed body to verify it */    \
	X(AUTHENTICATING, "authenticating") /* waiting for the control thread's verification */    \
	X(RESOLVING, "resolving")   /* head held, waiting for the control thread's locator */      \
	X(CACHE_WAIT, "cache_wait") /* a miss waiting for another request's fill of its object */  \
	X(CONNECTING, "connecting") /* SYN sent to the chosen target */                            \
	X(SPLICE, "splice")	    /* bound: segments translated both ways */                     \
	X(REPLY, "reply")	    /* shortpath answers the VM itself (an S3 error) and closes */ \
	X(TIME_WAIT, "time_wait")   /* both FINs seen: late ACKs still translated */

enum sp_flow_state {
#define SP_FLOW_STATE_ENUM(e, s) SP_FLOW_##e,
	SP_FLOW_STATES(SP_FLOW_STATE_ENUM)
#undef SP_FLOW_STATE_ENUM
		SP_FLOW_STATE_MAX
};

/* One TCP/IPv4 segment's addresses and header fields (addresses and ports in network byte
 * order, the rest in host order). */
struct sp_tcp_seg {
	const struct rte_ether_addr *src_mac, *dst_mac;
	uint32_t src_ip, dst_ip;
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t win;
	uint16_t ip_id;
	const uint8_t *opt;
	uint8_t optlen;
};

/*
 * Append an Ethernet/IPv4/TCP frame for s with payload p1 then p2 to the empty mbuf m (TTL 64,
 * DF, both checksums). -ENOSPC if it does not fit the mbuf.
 */
int sp_tcp_seg_write(struct rte_mbuf *m, const struct sp_tcp_seg *s, const void *p1, uint32_t l1,
		     const void *p2, uint32_t l2);
/* The same, with p2's ones' complement sum (rte_raw_cksum) known: p2_sum (-1: unknown). */
int sp_tcp_seg_write_sum(struct rte_mbuf *m, const struct sp_tcp_seg *s, const void *p1,
			 uint32_t l1, const void *p2, uint32_t l2, int32_t p2_sum);

/* Set up / tear down a worker's endpoint (flow table, buffers, locator cache). */
int sp_tcp_worker_create(struct sp_dp *dp, struct sp_worker *w, char *err, size_t errlen);
void sp_tcp_worker_destroy(struct sp_worker *w);

/*
 * A TCP/IPv4 segment from a VM port. slot: the direct service it is addressed to, or -1 (then
 * only an existing flow takes it). Returns true if the endpoint took the mbuf (sent or freed
 * it), false to forward it unchanged.
 */
bool sp_tcp_from_vm(struct sp_worker *w, struct rte_mbuf *m, const struct sp_pkt_info *pi, int slot,
		    uint16_t port_idx, uint64_t now);

/* A TCP/IPv4 segment from the uplink: true if it belonged to a flow (taken), false if not. */
bool sp_tcp_from_uplink(struct sp_worker *w, struct rte_mbuf *m, const struct sp_pkt_info *pi,
			uint64_t now);

/* An ICMPv4 error from the uplink: true if it was about a flow (taken), false if not. */
bool sp_tcp_icmp_from_uplink(struct sp_worker *w, struct rte_mbuf *m, const struct sp_pkt_info *pi,
			     uint64_t now);

/* Once per loop: answers from the control thread, timers of a slice of the flows. */
void sp_tcp_poll(struct sp_worker *w, uint64_t now);

/* Whether the worker has live flows (uplink TCP is looked up only then). */
bool sp_tcp_active(const struct sp_worker *w);

const char *sp_tcp_event_name(unsigned int i);
const char *sp_flow_state_name(unsigned int i);

/* Telemetry: up to max live flows of worker w as dicts in d (a dict, keys "w<worker>_<flow>").
 * A racy snapshot. */
int sp_tcp_flows_dump(const struct sp_worker *w, struct rte_tel_data *d, unsigned int max);

#endif /* SP_TCP_EP_H */
