/* The dataplane context: ports, packet pool, MAC table, punt ring, RCU and the workers. */
#ifndef SP_DP_H
#define SP_DP_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <rte_branch_prediction.h>
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_mbuf.h>

#include "sp_conf.h"
#include "sp_counters.h"
#include "sp_svc.h"

#define SP_TXBUF_MAX 512
#define SP_MAX_RXQ (SP_CONF_MAX_PORTS * 4)
#define SP_LEARN_SLOTS 256 /* per-worker MAC sighting cache, power of two */
#define SP_MAC_CACHE 256   /* per-worker exact-match cache of the MAC table, power of two */

/* One entry of a worker's MAC cache: valid while the table's generation is unchanged. */
struct sp_mac_cache_slot {
	uint64_t mac; /* key as made by the worker (0 = empty) */
	uint16_t port_idx;
};

/* A MAC as a non-zero 64-bit key (8-byte load: the frame has >= 14 bytes, so it stays inside). */
static inline uint64_t
sp_mac_key(const struct rte_ether_addr *a)
{
	uint64_t v;

	memcpy(&v, a, sizeof(v));
	return (rte_le_to_cpu_64(v) & 0xffffffffffffULL) | 1ULL << 48;
}

/* The slot of a key in a per-worker cache of slots entries (a power of two). */
static inline unsigned int
sp_mac_key_slot(uint64_t key, unsigned int slots)
{
	return (unsigned int)((key * 0x9e3779b97f4a7c15ULL) >> 40) & (slots - 1);
}

struct rte_hash;
struct rte_ring;
struct rte_rcu_qsbr;
struct sp_tcp_worker;
struct sp_cache;

struct sp_port {
	char name[SP_CONF_NAME_LEN];
	uint16_t port_id;
	uint8_t role; /* enum sp_port_role */
	bool started;
	uint16_t nb_rxq;
	uint16_t nb_txq;
	struct rte_ether_addr hw_addr;
	const struct sp_conf_port *conf;
};

/* worker → control message (16 bytes, carried by value in an rte_ring_elem ring). */
enum sp_punt_type {
	SP_PUNT_LEARN = 1,   /* a VM port sent from mac */
	SP_PUNT_LOC,	     /* loc: a struct sp_loc_msg (sp_loc.h) for the locator resolver */
	SP_PUNT_AUTH,	     /* auth: a struct sp_auth_msg (sp_auth.h) to verify */
	SP_PUNT_CACHE_FILL,  /* fill: a struct sp_cache_fill (sp_cache.h) to insert */
	SP_PUNT_CACHE_INVAL, /* slot, key_hash: an object was invalidated (ver[] already moved):
			      * remove its entry */
	SP_PUNT_CACHE_SVC,   /* slot: a whole service was invalidated (svc_gen[] moved) */
	SP_PUNT_CACHE_REVAL, /* slot, key_hash: policy verify, a stale entry was served (its
			      * reval flag set): revalidate it */
};

struct sp_loc_msg;
struct sp_auth_msg;

struct sp_punt_msg {
	uint16_t type;
	uint16_t worker;
	uint16_t port_idx;
	uint8_t mac[RTE_ETHER_ADDR_LEN];
	uint16_t slot; /* SP_PUNT_CACHE_*: the service */
	union {
		struct sp_loc_msg *loc;	    /* SP_PUNT_LOC; the handler owns it */
		struct sp_auth_msg *auth;   /* SP_PUNT_AUTH; the handler owns it */
		struct sp_cache_fill *fill; /* SP_PUNT_CACHE_FILL; the handler owns it */
		uint64_t key_hash;	    /* SP_PUNT_CACHE_INVAL, _REVAL */
	};
};

/* The control thread's handler of SP_PUNT_LOC messages (set by the locator resolver). */
typedef void (*sp_loc_handler_fn)(void *arg, struct sp_loc_msg *m);
/* ... and of SP_PUNT_AUTH messages (set by the authenticator). */
typedef void (*sp_auth_handler_fn)(void *arg, struct sp_auth_msg *m);
/* ... and of SP_PUNT_CACHE_* messages (set by the cache's control side; it owns m->fill). */
typedef void (*sp_cache_handler_fn)(void *arg, const struct sp_punt_msg *m);

struct sp_rxq {
	uint16_t port_idx;
	uint16_t port_id;
	uint16_t queue;
	uint8_t role;
};

struct sp_txbuf {
	uint16_t n;
	uint64_t bytes; /* of the n frames waiting */
	struct rte_mbuf *pkts[SP_TXBUF_MAX];
};

struct sp_learn_slot {
	uint64_t mac;	    /* 48-bit MAC + 1 (0 = empty slot) */
	uint64_t tsc;	    /* when last punted */
	uint64_t first_tsc; /* when first punted for this (mac, port) */
	uint16_t port_idx;  /* the VM port it was seen on */
};

struct sp_dp;

/* One worker lcore's state, filled before its loop starts (l3fwd style). */
struct sp_worker {
	unsigned int lcore;
	unsigned int index;
	struct sp_dp *dp;
	uint16_t n_rxq;
	struct sp_rxq rxq[SP_MAX_RXQ];
	struct sp_learn_slot learn[SP_LEARN_SLOTS];
	struct sp_mac_cache_slot mac_cache[SP_MAC_CACHE];
	uint64_t
		learn_tat[SP_CONF_MAX_PORTS]; /* GCRA theoretical arrival time of punts, per port */
	uint64_t mac_cache_gen;
	struct sp_worker_stats stats;
	struct sp_svc_counters svc[SP_SVC_MAX]; /* by service slot */
	struct rte_ring *loc_ring; /* control → this worker: struct sp_loc_msg pointers (SP/SC) */
	struct rte_ring *auth_ring; /* control → this worker: answered struct sp_auth_msg (SP/SC) */
	struct sp_tcp_worker *tcp; /* the TCP endpoint's flows, buffers and locator cache */
	struct sp_txbuf tx[SP_CONF_MAX_PORTS];
} __rte_cache_aligned;

/* Control-side bookkeeping of one MAC table entry (indexed by the hash's key position). */
struct sp_mac_meta {
	uint64_t last_seen_ms;
	uint16_t port_idx;
	bool used;
	bool is_static;
};

/* MAC table events counted by the control thread. */
#define SP_MAC_EVENTS(X)                                                                           \
	X(LEARNED, "learned")	/* new entry */                                                    \
	X(MOVED, "moved")	/* a learned MAC showed up on another VM port */                   \
	X(AGED, "aged")		/* not seen for mac_age_s */                                       \
	X(CONFLICT, "conflict") /* a VM sent from a MAC configured on another port */              \
	X(LIMIT, "limit")	/* port at mac_learn_limit */                                      \
	X(TABLE_FULL, "table_full")

enum sp_mac_event {
#define SP_MAC_EVENT_ENUM(e, s) SP_MAC_EV_##e,
	SP_MAC_EVENTS(SP_MAC_EVENT_ENUM)
#undef SP_MAC_EVENT_ENUM
		SP_MAC_EV_MAX
};

struct sp_dp {
	const struct sp_conf *cfg;
	struct rte_mempool *pool;
	uint16_t n_ports;
	struct sp_port ports[SP_CONF_MAX_PORTS];
	uint16_t uplink_idx;
	uint16_t n_vm;
	uint16_t vm_idx[SP_CONF_MAX_PORTS];
	struct rte_hash *mac_table; /* rte_ether_addr → port index; written by control only */
	uint64_t mac_gen;	    /* bumped (release) after every change of mac_table */
	struct sp_mac_meta *mac_meta;
	uint32_t mac_meta_len;
	uint32_t mac_learned_per_port[SP_CONF_MAX_PORTS];
	uint64_t mac_events[SP_MAC_EV_MAX];
	uint64_t mac_log_window_ms; /* rate limit of MAC table log lines (control thread) */
	uint32_t mac_log_lines;
	uint32_t mac_log_suppressed;
	struct rte_ring *punt;	       /* MP/SC, struct sp_punt_msg elements */
	struct rte_mempool *loc_pool;  /* struct sp_loc_msg objects (worker ↔ control) */
	sp_loc_handler_fn loc_handler; /* control thread; NULL: messages are put back unanswered */
	void *loc_handler_arg;
	struct rte_mempool *auth_pool;	 /* struct sp_auth_msg + flow_buffer bytes (sp_auth.h) */
	sp_auth_handler_fn auth_handler; /* control thread; NULL: put back unanswered */
	void *auth_handler_arg;
	uint32_t *auth_gen;	/* SP_AUTH_GEN_SLOTS credential generations (sp_auth.h) */
	struct sp_cache *cache; /* the object cache (sp_cache.h); NULL: [cache] size_kb 0 */
	sp_cache_handler_fn cache_handler; /* control thread; NULL: fills are put back */
	void *cache_handler_arg;
	struct rte_rcu_qsbr *qsbr;
	struct sp_svc_table *svc_table; /* RCU-published by control (sp_svc_publish); may be NULL */
	uint16_t burst;
	uint64_t learn_refresh_tsc;  /* re-punt a known MAC this often (keeps it from aging) */
	uint64_t learn_grace_tsc;    /* a just-punted MAC is served locally this long */
	uint64_t learn_interval_tsc; /* per worker and VM port: one learn punt per interval ... */
	uint64_t learn_burst_tsc;    /* ... with bursts of this many intervals */
	unsigned int n_workers;
	struct sp_worker *workers[SP_CONF_MAX_WORKERS];
	bool running;  /* workers launched */
	uint32_t stop; /* set by control, read by workers (atomic) */
};

/* Create everything after rte_eal_init. 0 or -errno with a message in err. */
int sp_dp_create(const struct sp_conf *cfg, struct sp_dp **out, char *err, size_t errlen);
/* Start ports and launch the workers. */
int sp_dp_start(struct sp_dp *dp, char *err, size_t errlen);
/* Stop workers (they flush), stop and close ports, free everything; logs the pool's in-use count.
 */
void sp_dp_destroy(struct sp_dp *dp);
/* Mbufs currently allocated from the packet pool (0 when idle and fully drained). */
unsigned int sp_dp_pool_in_use(const struct sp_dp *dp);

/* Send m on port_idx from worker w (batched; flushed once per loop or when the batch fills). */
void sp_worker_tx_flush(struct sp_worker *w, uint16_t port_idx);

static inline void
sp_worker_tx_enqueue(struct sp_worker *w, uint16_t port_idx, struct rte_mbuf *m)
{
	struct sp_txbuf *tb = &w->tx[port_idx];

	tb->pkts[tb->n++] = m;
	tb->bytes += m->pkt_len;
	if (unlikely(tb->n == SP_TXBUF_MAX))
		sp_worker_tx_flush(w, port_idx);
}

/* The same, not inlined (for the TCP endpoint). */
void sp_worker_tx(struct sp_worker *w, uint16_t port_idx, struct rte_mbuf *m);

/* Worker entry point for rte_eal_remote_launch (arg: struct sp_worker *). */
int sp_worker_main(void *arg);

/* Port setup helpers (sp_port.c). */
int sp_port_init(struct sp_dp *dp, uint16_t idx, const struct sp_conf_port *pc, char *err,
		 size_t errlen);
int sp_port_start(struct sp_port *p, char *err, size_t errlen);
void sp_port_close(struct sp_port *p);

/* MAC table (sp_mac.c): control thread only, except the workers' lock-free lookups. */
int sp_mac_create(struct sp_dp *dp, char *err, size_t errlen);
void sp_mac_destroy(struct sp_dp *dp);
int sp_mac_add_static(struct sp_dp *dp, const struct rte_ether_addr *mac, uint16_t port_idx);
void sp_mac_learn(struct sp_dp *dp, const struct rte_ether_addr *mac, uint16_t port_idx,
		  uint64_t now_ms);
void sp_mac_age(struct sp_dp *dp, uint64_t now_ms);
uint32_t sp_mac_count(const struct sp_dp *dp);
const char *sp_mac_event_name(unsigned int i);

/* Drain up to max punt messages (control thread). Returns how many were handled. */
unsigned int sp_dp_punt_drain(struct sp_dp *dp, unsigned int max, uint64_t now_ms);

#endif /* SP_DP_H */
