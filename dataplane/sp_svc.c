/* Publishing the workers' service table: build, swap with release ordering, RCU grace period, free.
 */
#include "sp_svc.h"

#include <errno.h>
#include <stdlib.h>

#include <rte_rcu_qsbr.h>

#include "sp_dp.h"

struct sp_svc_table *
sp_svc_table_new(uint64_t epoch)
{
	struct sp_svc_table *t = calloc(1, sizeof(*t));

	if (t != NULL)
		t->epoch = epoch;
	return t;
}

int
sp_svc_table_add(struct sp_svc_table *t, bool ipv6, const uint8_t *addr, uint16_t port_be,
		 uint16_t slot, const struct sp_svc_profile *profile)
{
	uint32_t i = sp_svc_hash(ipv6, addr, port_be);

	if (t->n >= SP_SVC_MAX || slot >= SP_SVC_MAX)
		return -ENOSPC;
	while (t->bucket[i].used)
		i = (i + 1) & (SP_SVC_HASH - 1);
	t->bucket[i].used = 1;
	t->bucket[i].ipv6 = ipv6;
	t->bucket[i].port_be = port_be;
	t->bucket[i].slot = slot;
	memset(t->bucket[i].addr, 0, sizeof(t->bucket[i].addr));
	memcpy(t->bucket[i].addr, addr, ipv6 ? 16 : 4);
	t->profile[slot] = *profile;
	t->n++;
	return 0;
}

void
sp_svc_publish(struct sp_dp *dp, struct sp_svc_table *t)
{
	struct sp_svc_table *old = __atomic_exchange_n(&dp->svc_table, t, __ATOMIC_ACQ_REL);

	if (old == NULL)
		return;
	/* every worker reports a quiescent state once per loop: this takes microseconds */
	rte_rcu_qsbr_synchronize(dp->qsbr, RTE_QSBR_THRID_INVALID);
	free(old);
}

void
sp_svc_counters_sum(const struct sp_dp *dp, uint16_t slot, struct sp_svc_counters *out)
{
	unsigned int i;

	memset(out, 0, sizeof(*out));
	if (slot >= SP_SVC_MAX)
		return;
	for (i = 0; i < dp->n_workers; i++) {
		const struct sp_svc_counters *c = &dp->workers[i]->svc[slot];

		out->vm_packets += __atomic_load_n(&c->vm_packets, __ATOMIC_RELAXED);
		out->vm_bytes += __atomic_load_n(&c->vm_bytes, __ATOMIC_RELAXED);
		out->vm_syns += __atomic_load_n(&c->vm_syns, __ATOMIC_RELAXED);
	}
}
