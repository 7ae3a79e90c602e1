/* DPDK telemetry commands /shortpath/stats, /shortpath/ports, /shortpath/lcores and
 * /shortpath/services, /shortpath/flows, /shortpath/locators, /shortpath/auth, /shortpath/cache. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_ethdev.h>
#include <rte_telemetry.h>

#include "sp_auth_ctl.h"
#include "sp_cache_ctl.h"
#include "sp_ctl.h"
#include "sp_locator.h"
#include "sp_redis.h"
#include "sp_services.h"
#include "sp_stats.h"
#include "sp_tcp_ep.h"

/*
 * Telemetry callbacks take no user pointer and run on DPDK's telemetry thread: the context
 * lives here, and a mutex (never taken by the fast path) keeps shutdown from freeing it
 * under a running callback.
 */
static struct sp_ctl *tel_ctl;
static pthread_mutex_t tel_lock = PTHREAD_MUTEX_INITIALIZER;

static void
add_worker_stats(struct rte_tel_data *d, const struct sp_worker_stats *s)
{
	char key[RTE_TEL_MAX_STRING_LEN];
	unsigned int i, j;

	for (i = 0; i < sp_stats_n_worker_scalars; i++)
		rte_tel_data_add_dict_u64(d, sp_stats_worker_scalars[i].name,
					  sp_stats_u64(s, sp_stats_worker_scalars[i].off));
	for (i = 0; i < sp_stats_n_worker_groups; i++) {
		const struct sp_stat_group *g = &sp_stats_worker_groups[i];

		for (j = g->first; j < g->n; j++) {
			snprintf(key, sizeof(key), "%s_%s", g->group, g->name(j));
			rte_tel_data_add_dict_u64(d, key, sp_stats_group_u64(s, g, j));
		}
	}
}

static int
tel_stats_locked(const char *cmd, const char *params, struct rte_tel_data *d)
{
	const struct sp_dp *dp = tel_ctl->dp;
	struct sp_worker_stats total;
	struct sp_redis_info ri;
	char key[RTE_TEL_MAX_STRING_LEN];
	unsigned int i;

	RTE_SET_USED(cmd);
	RTE_SET_USED(params);
	rte_tel_data_start_dict(d);
	sp_stats_total(dp, &total);
	add_worker_stats(d, &total);
	rte_tel_data_add_dict_u64(d, "workers", dp->n_workers);
	rte_tel_data_add_dict_u64(d, "ports", dp->n_ports);
	rte_tel_data_add_dict_u64(d, "mempool_size", dp->pool->size);
	rte_tel_data_add_dict_u64(d, "mempool_in_use", sp_dp_pool_in_use(dp));
	rte_tel_data_add_dict_u64(d, "mac_entries", sp_mac_count(dp));
	for (i = 0; i < SP_MAC_EV_MAX; i++) {
		snprintf(key, sizeof(key), "mac_%s", sp_mac_event_name(i));
		rte_tel_data_add_dict_u64(d, key, SP_CNT_GET(dp->mac_events[i]));
	}
	sp_redis_info(tel_ctl->redis, &ri);
	rte_tel_data_add_dict_string(d, "redis", sp_redis_state_name(ri.state));
	rte_tel_data_add_dict_u64(d, "redis_connects", ri.connects);
	rte_tel_data_add_dict_u64(d, "redis_failures", ri.failures);
	rte_tel_data_add_dict_u64(d, "uptime_ms", sp_ctl_now_ms() - tel_ctl->start_ms);
	return 0;
}

static void
add_port(struct rte_tel_data *d, const struct sp_port *p)
{
	struct rte_eth_stats es;
	char mac[RTE_ETHER_ADDR_FMT_SIZE];
	unsigned int i;

	sp_stats_port_read(p->port_id, &es);
	rte_tel_data_add_dict_string(d, "role", sp_port_role_name(p->role));
	rte_tel_data_add_dict_u64(d, "port_id", p->port_id);
	rte_tel_data_add_dict_string(d, "device", p->conf->device);
	rte_ether_format_addr(mac, sizeof(mac), &p->hw_addr);
	rte_tel_data_add_dict_string(d, "hw_mac", mac);
	if (p->conf->has_mac) {
		rte_ether_format_addr(mac, sizeof(mac),
				      (const struct rte_ether_addr *)p->conf->mac);
		rte_tel_data_add_dict_string(d, "vm_mac", mac);
	}
	rte_tel_data_add_dict_u64(d, "rx_queues", p->nb_rxq);
	rte_tel_data_add_dict_u64(d, "tx_queues", p->nb_txq);
	for (i = 0; i < sp_stats_n_port_scalars; i++)
		rte_tel_data_add_dict_u64(d, sp_stats_port_scalars[i].name,
					  sp_stats_u64(&es, sp_stats_port_scalars[i].off));
}

/* /shortpath/ports: every port as a dict; /shortpath/ports,NAME: that port's fields. */
static int
tel_ports_locked(const char *cmd, const char *params, struct rte_tel_data *d)
{
	const struct sp_dp *dp = tel_ctl->dp;
	uint16_t i;

	RTE_SET_USED(cmd);
	rte_tel_data_start_dict(d);
	if (params != NULL && *params != '\0') {
		for (i = 0; i < dp->n_ports; i++) {
			if (strcmp(dp->ports[i].name, params) == 0) {
				add_port(d, &dp->ports[i]);
				return 0;
			}
		}
		return -EINVAL;
	}
	for (i = 0; i < dp->n_ports; i++) {
		struct rte_tel_data *pd = rte_tel_data_alloc();

		if (pd == NULL)
			return -ENOMEM;
		rte_tel_data_start_dict(pd);
		add_port(pd, &dp->ports[i]);
		rte_tel_data_add_dict_container(d, dp->ports[i].name, pd, 0);
	}
	return 0;
}

/* /shortpath/lcores: per worker lcore, its counters and busy/idle cycles. */
static int
tel_lcores_locked(const char *cmd, const char *params, struct rte_tel_data *d)
{
	const struct sp_dp *dp = tel_ctl->dp;
	struct sp_worker_stats s;
	char key[16];
	unsigned int i;

	RTE_SET_USED(cmd);
	rte_tel_data_start_dict(d);
	if (params != NULL && *params != '\0') { /* one lcore: its counters, flat */
		for (i = 0; i < dp->n_workers; i++) {
			snprintf(key, sizeof(key), "%u", dp->workers[i]->lcore);
			if (strcmp(key, params) == 0) {
				rte_tel_data_add_dict_u64(d, "worker", i);
				sp_stats_worker_read(dp->workers[i], &s);
				add_worker_stats(d, &s);
				return 0;
			}
		}
		return -EINVAL;
	}
	for (i = 0; i < dp->n_workers; i++) {
		struct rte_tel_data *wd = rte_tel_data_alloc();

		if (wd == NULL)
			return -ENOMEM;
		rte_tel_data_start_dict(wd);
		rte_tel_data_add_dict_u64(wd, "worker", i);
		sp_stats_worker_read(dp->workers[i], &s);
		add_worker_stats(wd, &s);
		snprintf(key, sizeof(key), "%u", dp->workers[i]->lcore);
		rte_tel_data_add_dict_container(d, key, wd, 0);
	}
	return 0;
}

static int
tel_services_locked(const char *cmd, const char *params, struct rte_tel_data *d)
{
	RTE_SET_USED(cmd);
	RTE_SET_USED(params);
	return sp_services_telemetry(tel_ctl->services, d);
}

/* Live flows of the TCP endpoint, every worker's, up to a count (parameter, default 32): one
 * dict, "live" and "shown" beside the flows by id ("w<worker>_<flow>"; telemetry in DPDK 22.11
 * nests containers one level deep only). */
static int
tel_flows_locked(const char *cmd, const char *params, struct rte_tel_data *d)
{
	const struct sp_dp *dp = tel_ctl->dp;
	unsigned int max = 32, i, shown = 0;
	uint64_t live = 0;
	int n;

	RTE_SET_USED(cmd);
	if (params != NULL && *params != '\0') {
		char *end;
		unsigned long v = strtoul(params, &end, 10);

		if (*end != '\0' || v == 0 || v > 200)
			return -EINVAL;
		max = (unsigned int)v;
	}
	rte_tel_data_start_dict(d);
	for (i = 0; i < dp->n_workers; i++)
		live += __atomic_load_n(&dp->workers[i]->stats.flows, __ATOMIC_RELAXED);
	rte_tel_data_add_dict_u64(d, "live", live);
	for (i = 0; i < dp->n_workers && shown < max; i++) {
		n = sp_tcp_flows_dump(dp->workers[i], d, max - shown);
		if (n > 0)
			shown += (unsigned int)n;
	}
	rte_tel_data_add_dict_u64(d, "shown", shown);
	return 0;
}

/* The locator resolver's counters (sp_locator_api.c). */
static int
tel_locators_locked(const char *cmd, const char *params, struct rte_tel_data *d)
{
	RTE_SET_USED(cmd);
	RTE_SET_USED(params);
	return sp_locator_telemetry(tel_ctl->locator, d);
}

/* Local authentication: the control thread's verifications and the workers' auth events. */
static int
tel_auth_locked(const char *cmd, const char *params, struct rte_tel_data *d)
{
	RTE_SET_USED(cmd);
	RTE_SET_USED(params);
	return sp_auth_telemetry(tel_ctl->auth, d);
}

/* The object cache: entries, bytes, fills, evictions, revalidations, the workers' cache events. */
static int
tel_cache_locked(const char *cmd, const char *params, struct rte_tel_data *d)
{
	RTE_SET_USED(cmd);
	RTE_SET_USED(params);
	if (tel_ctl->cache == NULL)
		return -ENODEV;
	return sp_cache_telemetry(tel_ctl->cache, d);
}

/* Run one command under the lock, refusing once shortpathd is shutting down. */
#define SP_TEL_WRAP(fn)                                                                            \
	static int fn(const char *cmd, const char *params, struct rte_tel_data *d)                 \
	{                                                                                          \
		int rc = -ENODEV;                                                                  \
		pthread_mutex_lock(&tel_lock);                                                     \
		if (tel_ctl != NULL)                                                               \
			rc = fn##_locked(cmd, params, d);                                          \
		pthread_mutex_unlock(&tel_lock);                                                   \
		return rc;                                                                         \
	}
SP_TEL_WRAP(tel_stats)
SP_TEL_WRAP(tel_ports)
SP_TEL_WRAP(tel_lcores)
SP_TEL_WRAP(tel_services)
SP_TEL_WRAP(tel_locators)
SP_TEL_WRAP(tel_flows)
SP_TEL_WRAP(tel_auth)
SP_TEL_WRAP(tel_cache)

int
sp_telemetry_register(struct sp_ctl *ctl)
{
	int rc = 0;

	pthread_mutex_lock(&tel_lock);
	tel_ctl = ctl;
	pthread_mutex_unlock(&tel_lock);
	rc |= rte_telemetry_register_cmd(
		"/shortpath/stats", tel_stats,
		"shortpath totals: rx/tx, drops and parse anomalies by "
		"reason, classes, mempool, MAC table, Redis. No parameters");
	rc |= rte_telemetry_register_cmd("/shortpath/ports", tel_ports,
					 "shortpath ports: role, device, MACs, queues, counters. "
					 "Parameter: port name (optional)");
	rc |= rte_telemetry_register_cmd(
		"/shortpath/lcores", tel_lcores,
		"shortpath worker lcores: rx/tx, drops by reason, loop "
		"iterations, busy and idle cycles. Parameter: lcore id (optional)");
	rc |= rte_telemetry_register_cmd("/shortpath/services", tel_services,
					 "shortpath enhanced services: VIP, port, path, packets "
					 "VMs sent to them. No parameters");
	rc |= rte_telemetry_register_cmd("/shortpath/flows", tel_flows,
					 "shortpath TCP endpoint: live flows (state, VM, VIP, "
					 "target, bytes, age). Parameter: how many (default 32)");
	rc |= rte_telemetry_register_cmd("/shortpath/locators", tel_locators,
					 "shortpath locator resolver: requests, outcomes, Redis, "
					 "prefetch, storage manager latency. No parameters");
	rc |= rte_telemetry_register_cmd(
		"/shortpath/auth", tel_auth,
		"shortpath local auth: credentials, verifications by outcome and reason, time, "
		"workers' verdict hits. No parameters");
	rc |= rte_telemetry_register_cmd(
		"/shortpath/cache", tel_cache,
		"shortpath object cache: entries, bytes, fills, evictions, revalidations, "
		"workers' hits and misses. No parameters");
	return rc == 0 ? 0 : -EINVAL;
}

void
sp_telemetry_unregister(void)
{
	pthread_mutex_lock(&tel_lock);
	tel_ctl = NULL;
	pthread_mutex_unlock(&tel_lock);
}
