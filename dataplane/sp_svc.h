/* The enhanced services as the workers see them: an immutable (VIP, port) → service slot table
 * published with RCU, and per-worker counters by slot. */
#ifndef SP_SVC_H
#define SP_SVC_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "sp_sigv4.h"

#define SP_SVC_MAX 256	 /* services at once; a slot number is < SP_SVC_MAX */
#define SP_SVC_HASH 1024 /* open-addressing buckets, power of two, >= 2 x SP_SVC_MAX */

struct sp_dp;

/* One bucket: a service's VIP and port as on the wire. */
struct sp_svc_entry {
	uint8_t used;
	uint8_t ipv6;
	uint16_t port_be; /* network byte order */
	uint16_t slot;
	uint8_t addr[16]; /* IPv4: the first 4 bytes */
};

/* What a worker does with a service's connections (sp_svc_table.profile[slot]). */
#define SP_SVC_F_DIRECT 0x01 /* terminate its TCP connections: requests may go direct */

struct sp_svc_profile {
	uint8_t flags;			      /* SP_SVC_F_* */
	uint8_t methods;		      /* enhanced methods: bit (1 << enum sp_loc_method) */
	uint8_t auth;			      /* enum sp_auth_mode (sp_auth.h) */
	uint8_t cache;			      /* enum sp_cache_policy (sp_cache.h) */
	uint32_t cache_ttl_s;		      /* cache.ttl_s */
	uint32_t stale_if_error_s;	      /* cache.stale_if_error_s */
	char region[SP_SIGV4_REGION_MAX + 1]; /* the service's region (SigV4 scope), NUL-ended */
};

/* Built by the control thread, never changed once published; freed after an RCU grace period. */
struct sp_svc_table {
	uint64_t epoch;
	uint32_t n;
	struct sp_svc_entry bucket[SP_SVC_HASH];
	struct sp_svc_profile profile[SP_SVC_MAX]; /* by slot */
};

/* Per worker, by slot: what VMs sent to the service's VIP and port (written by that worker). */
struct sp_svc_counters {
	uint64_t vm_packets;
	uint64_t vm_bytes;
	uint64_t vm_syns;
};

static inline uint32_t
sp_svc_hash(bool ipv6, const uint8_t *addr, uint16_t port_be)
{
	uint32_t h = port_be * 0x9e3779b1u, w;
	unsigned int i, n = ipv6 ? 16 : 4;

	for (i = 0; i < n; i += 4) {
		memcpy(&w, addr + i, 4);
		h = (h ^ w) * 0x85ebca6bu;
		h ^= h >> 13;
	}
	return h & (SP_SVC_HASH - 1);
}

/* The slot of the service at (addr, port), or -1. Lock-free: t is an RCU-protected snapshot. */
static inline int
sp_svc_lookup(const struct sp_svc_table *t, bool ipv6, const uint8_t *addr, uint16_t port_be)
{
	uint32_t i = sp_svc_hash(ipv6, addr, port_be);
	unsigned int probes;

	for (probes = 0; probes < SP_SVC_HASH; probes++, i = (i + 1) & (SP_SVC_HASH - 1)) {
		const struct sp_svc_entry *e = &t->bucket[i];

		if (!e->used)
			return -1;
		if (e->port_be == port_be && e->ipv6 == ipv6 &&
		    memcmp(e->addr, addr, ipv6 ? 16 : 4) == 0)
			return e->slot;
	}
	return -1;
}

/* Control thread: a new empty table (NULL on ENOMEM) and adding one service to it (-ENOSPC). */
struct sp_svc_table *sp_svc_table_new(uint64_t epoch);
int sp_svc_table_add(struct sp_svc_table *t, bool ipv6, const uint8_t *addr, uint16_t port_be,
		     uint16_t slot, const struct sp_svc_profile *profile);

/* Control thread: make t the workers' table, wait until no worker can see the old one, free it.
 * t may be NULL (no services). */
void sp_svc_publish(struct sp_dp *dp, struct sp_svc_table *t);

/* Control thread (or any reader): one slot's counters summed over the workers. */
void sp_svc_counters_sum(const struct sp_dp *dp, uint16_t slot, struct sp_svc_counters *out);

#endif /* SP_SVC_H */
