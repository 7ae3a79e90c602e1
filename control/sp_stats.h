/* Counter tables shared by telemetry, the JSON API and /metrics, so no formatter lists fields. */
#ifndef SP_STATS_H
#define SP_STATS_H

#include <stddef.h>
#include <stdint.h>

#include <rte_ethdev.h>

#include "sp_dp.h"

/* A scalar counter of a struct (worker stats or rte_eth_stats). */
struct sp_stat_scalar {
	const char *name; /* JSON / telemetry key, and the Prometheus name after the prefix */
	size_t off;
	const char *help;
};

/* An array counter of struct sp_worker_stats, named by a table (drops by reason, ...). */
struct sp_stat_group {
	const char *group;  /* JSON object / telemetry key prefix: "drop" */
	const char *family; /* Prometheus family after "sp_worker_": "drops" */
	const char *label;  /* Prometheus label: "reason" */
	size_t off;
	unsigned int first, n;
	const char *(*name)(unsigned int i);
	const char *help;
};

extern const struct sp_stat_scalar sp_stats_worker_scalars[];
extern const unsigned int sp_stats_n_worker_scalars;
extern const struct sp_stat_group sp_stats_worker_groups[];
extern const unsigned int sp_stats_n_worker_groups;
extern const struct sp_stat_scalar sp_stats_port_scalars[];
extern const unsigned int sp_stats_n_port_scalars;

/* Consistent-enough copy of one worker's counters (relaxed atomic loads). */
void sp_stats_worker_read(const struct sp_worker *w, struct sp_worker_stats *out);
/* Sum of all workers. */
void sp_stats_total(const struct sp_dp *dp, struct sp_worker_stats *out);

static inline uint64_t
sp_stats_u64(const void *base, size_t off)
{
	return *(const uint64_t *)((const char *)base + off);
}

static inline uint64_t
sp_stats_group_u64(const void *base, const struct sp_stat_group *g, unsigned int i)
{
	return ((const uint64_t *)((const char *)base + g->off))[i];
}

const char *sp_port_role_name(uint8_t role);

/*
 * rte_eth_stats_get, serialised: the API (control thread) and telemetry (its own thread)
 * both read port stats, and some PMDs accumulate clear-on-read registers into shared fields.
 */
void sp_stats_port_read(uint16_t port_id, struct rte_eth_stats *es);

#endif /* SP_STATS_H */
