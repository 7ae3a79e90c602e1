/* Per-worker fast-path counters: drop reasons and packet classes as name tables (VPP style). */
#ifndef SP_COUNTERS_H
#define SP_COUNTERS_H

#include <stdbool.h>
#include <stdint.h>

#include <rte_common.h>

#include "sp_pkt.h"
#include "sp_tcp_ep.h"

/* Why a worker dropped a frame. Every drop has exactly one of these. */
#define SP_DROPS(X)                                                                                \
	X(RUNT, "runt")		      /* shorter than an Ethernet header */                        \
	X(BAD_SRC_MAC, "bad_src_mac") /* from a VM with a multicast or zero source MAC */          \
	X(UNKNOWN_DST, "unknown_dst") /* uplink unicast to a MAC no VM port has */                 \
	X(NO_VM_PORT, "no_vm_port")   /* uplink flood with no VM port up (unused when >= 1 VM) */  \
	X(TX_FULL, "tx_full")	      /* the port's tx queue did not take it */                    \
	X(CLONE_FAILED, "clone_failed") /* refcount overflow while flooding */

enum sp_drop {
#define SP_DROP_ENUM(e, s) SP_DROP_##e,
	SP_DROPS(SP_DROP_ENUM)
#undef SP_DROP_ENUM
		SP_DROP_MAX
};

/* What the parser saw (counted, not dropped). */
#define SP_CLASSES(X)                                                                              \
	X(ARP, "arp")                                                                              \
	X(IPV4, "ipv4")                                                                            \
	X(IPV6, "ipv6")                                                                            \
	X(OTHER_L3, "other_l3")                                                                    \
	X(VLAN, "vlan")                                                                            \
	X(TCP, "tcp")                                                                              \
	X(UDP, "udp")                                                                              \
	X(ICMP, "icmp")                                                                            \
	X(MULTICAST, "multicast") /* broadcast or multicast destination */                         \
	X(SCATTERED, "scattered") /* chained mbufs (jumbo frames) */

enum sp_class {
#define SP_CLASS_ENUM(e, s) SP_CLASS_##e,
	SP_CLASSES(SP_CLASS_ENUM)
#undef SP_CLASS_ENUM
		SP_CLASS_MAX
};

/* Events that are not per-packet fates: learning, punts. */
#define SP_EVENTS(X)                                                                               \
	X(LEARN_PUNTED, "learn_punted")	      /* a MAC sighting sent to the control thread */      \
	X(PUNT_RING_FULL, "punt_ring_full")   /* ... or not: the ring was full */                  \
	X(LEARN_THROTTLED, "learn_throttled") /* ... or not: its VM port was over its rate */

enum sp_event {
#define SP_EVENT_ENUM(e, s) SP_EVENT_##e,
	SP_EVENTS(SP_EVENT_ENUM)
#undef SP_EVENT_ENUM
		SP_EVENT_MAX
};

/*
 * Per packet the worker makes one increment: the histogram bucket of its parse result
 * (l3 | l4 << 3 | vlan << 6 | multicast << 7 | chained << 8). Readers derive classes[].
 */
#define SP_CLASS_HIST 512

static inline unsigned int
sp_class_bucket(unsigned int l3, unsigned int l4, bool vlan, bool mcast, bool chained)
{
	return (l3 & 7) | (l4 & 7) << 3 | (unsigned int)vlan << 6 | (unsigned int)mcast << 7 |
	       (unsigned int)chained << 8;
}

/* Add one histogram bucket's count to the class counters it stands for. */
void sp_class_from_bucket(unsigned int bucket, uint64_t count, uint64_t *classes);

/*
 * One worker's counters. Written only by its worker (relaxed atomic stores), read by the
 * control and telemetry threads (relaxed atomic loads). One cache line apart per worker.
 */
struct sp_worker_stats {
	uint64_t rx_packets;
	uint64_t rx_bytes;
	uint64_t tx_packets;
	uint64_t tx_bytes;
	uint64_t iterations;
	uint64_t busy_cycles;
	uint64_t idle_cycles;
	uint64_t drops[SP_DROP_MAX];
	uint64_t parse[SP_PKT_ERR_MAX]; /* [0] ("none") unused */
	uint64_t
		classes[SP_CLASS_MAX]; /* derived from class_hist by readers, never by the worker */
	uint64_t events[SP_EVENT_MAX];
	uint64_t flows;		     /* TCP endpoint: live flows (gauge) */
	uint64_t flow_buffers;	     /* ... request buffers in use (gauge) */
	uint64_t locators;	     /* ... locator cache entries (gauge) */
	uint64_t tcp[SP_TCP_EV_MAX]; /* ... events */
	uint64_t class_hist[SP_CLASS_HIST];
} __rte_cache_aligned;

#define SP_CNT_ADD(field, n) __atomic_store_n(&(field), (field) + (n), __ATOMIC_RELAXED)
#define SP_CNT_GET(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

const char *sp_drop_name(unsigned int i);
const char *sp_class_name(unsigned int i);
const char *sp_event_name(unsigned int i);

#endif /* SP_COUNTERS_H */
