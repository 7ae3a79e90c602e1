/* MAC → VM port table: lock-free reads by workers, writes (static, learn, move, age) by control. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_hash.h>
#include <rte_errno.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include "sp_dp.h"
#include "sp_log.h"

#define SP_MAC_NAME_ENTRY(e, s) s,
static const char *const mac_event_names[] = {SP_MAC_EVENTS(SP_MAC_NAME_ENTRY)};

const char *
sp_mac_event_name(unsigned int i)
{
	return i < SP_MAC_EV_MAX ? mac_event_names[i] : "unknown";
}

int
sp_mac_create(struct sp_dp *dp, char *err, size_t errlen)
{
	struct rte_hash_parameters hp = {
		.name = "sp_mac",
		.entries = (uint32_t)dp->cfg->mac_table_size,
		.key_len = RTE_ETHER_ADDR_LEN,
		.hash_func = rte_hash_crc,
		.socket_id = (int)rte_socket_id(),
		.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF,
	};
	struct rte_hash_rcu_config rcu = {
		.v = dp->qsbr,
		.mode = RTE_HASH_QSBR_MODE_DQ,
	};

	dp->mac_table = rte_hash_create(&hp);
	if (dp->mac_table == NULL) {
		snprintf(err, errlen, "cannot create the MAC table (%d entries): %s",
			 (int)hp.entries, rte_strerror(rte_errno));
		return -ENOMEM;
	}
	if (rte_hash_rcu_qsbr_add(dp->mac_table, &rcu) != 0) {
		snprintf(err, errlen, "cannot attach RCU to the MAC table: %s",
			 rte_strerror(rte_errno));
		return -ENOMEM;
	}
	dp->mac_meta_len = hp.entries + 1;
	dp->mac_meta = rte_zmalloc("sp_mac_meta", sizeof(*dp->mac_meta) * dp->mac_meta_len, 0);
	if (dp->mac_meta == NULL) {
		snprintf(err, errlen, "cannot allocate MAC table metadata");
		return -ENOMEM;
	}
	return 0;
}

void
sp_mac_destroy(struct sp_dp *dp)
{
	rte_hash_free(dp->mac_table);
	dp->mac_table = NULL;
	rte_free(dp->mac_meta);
	dp->mac_meta = NULL;
}

uint32_t
sp_mac_count(const struct sp_dp *dp)
{
	return dp->mac_table ? (uint32_t)rte_hash_count(dp->mac_table) : 0;
}

static struct sp_mac_meta *
meta_of(struct sp_dp *dp, const struct rte_ether_addr *mac)
{
	int32_t pos = rte_hash_lookup(dp->mac_table, mac);

	if (pos < 0 || (uint32_t)pos >= dp->mac_meta_len)
		return NULL;
	return &dp->mac_meta[pos];
}

static const char *
fmt_mac(const struct rte_ether_addr *mac, char *buf)
{
	rte_ether_format_addr(buf, RTE_ETHER_ADDR_FMT_SIZE, mac);
	return buf;
}

/* MAC events are driven by VM traffic: at most SP_MAC_LOG_PER_S lines a second. */
#define SP_MAC_LOG_PER_S 10

static bool
mac_log_allowed(struct sp_dp *dp, uint64_t now_ms)
{
	if (now_ms - dp->mac_log_window_ms >= 1000) {
		if (dp->mac_log_suppressed > 0)
			SP_LOG(NOTICE, "%u MAC table messages suppressed in the last second",
			       dp->mac_log_suppressed);
		dp->mac_log_window_ms = now_ms;
		dp->mac_log_lines = 0;
		dp->mac_log_suppressed = 0;
	}
	if (dp->mac_log_lines < SP_MAC_LOG_PER_S) {
		dp->mac_log_lines++;
		return true;
	}
	dp->mac_log_suppressed++;
	return false;
}

/* Workers drop their cached copies of the table when this changes. */
static void
mac_changed(struct sp_dp *dp)
{
	__atomic_add_fetch(&dp->mac_gen, 1, __ATOMIC_RELEASE);
}

static int
mac_insert(struct sp_dp *dp, const struct rte_ether_addr *mac, uint16_t port_idx, bool is_static,
	   uint64_t now_ms)
{
	struct sp_mac_meta *m;
	int rc;

	rc = rte_hash_add_key_data(dp->mac_table, mac, (void *)(uintptr_t)port_idx);
	if (rc != 0)
		return rc;
	m = meta_of(dp, mac);
	if (m == NULL)
		return -ENOENT;
	m->used = true;
	m->is_static = is_static;
	m->port_idx = port_idx;
	m->last_seen_ms = now_ms;
	mac_changed(dp);
	return 0;
}

int
sp_mac_add_static(struct sp_dp *dp, const struct rte_ether_addr *mac, uint16_t port_idx)
{
	return mac_insert(dp, mac, port_idx, true, 0);
}

void
sp_mac_learn(struct sp_dp *dp, const struct rte_ether_addr *mac, uint16_t port_idx, uint64_t now_ms)
{
	struct sp_mac_meta *m = meta_of(dp, mac);
	char buf[RTE_ETHER_ADDR_FMT_SIZE];
	uint16_t old;

	if (port_idx >= dp->n_ports || dp->ports[port_idx].role != SP_PORT_ROLE_VM)
		return;
	if (m != NULL && m->port_idx == port_idx) {
		m->last_seen_ms = now_ms;
		return;
	}
	if (m != NULL && m->is_static) {
		SP_CNT_ADD(dp->mac_events[SP_MAC_EV_CONFLICT], 1);
		if (mac_log_allowed(dp, now_ms))
			SP_LOG(WARNING, "port %s sent from %s, configured on port %s: not learned",
			       dp->ports[port_idx].name, fmt_mac(mac, buf),
			       dp->ports[m->port_idx].name);
		return;
	}
	if (dp->mac_learned_per_port[port_idx] >= (uint32_t)dp->cfg->mac_learn_limit) {
		SP_CNT_ADD(dp->mac_events[SP_MAC_EV_LIMIT], 1);
		return;
	}
	if (m != NULL) {
		old = m->port_idx;
		/* Lock-free update of the data of an existing key: readers see old or new. */
		if (rte_hash_add_key_data(dp->mac_table, mac, (void *)(uintptr_t)port_idx) != 0)
			return;
		m->port_idx = port_idx;
		m->last_seen_ms = now_ms;
		mac_changed(dp);
		dp->mac_learned_per_port[old]--;
		dp->mac_learned_per_port[port_idx]++;
		SP_CNT_ADD(dp->mac_events[SP_MAC_EV_MOVED], 1);
		if (mac_log_allowed(dp, now_ms))
			SP_LOG(NOTICE, "MAC %s moved from port %s to %s", fmt_mac(mac, buf),
			       dp->ports[old].name, dp->ports[port_idx].name);
		return;
	}
	if (mac_insert(dp, mac, port_idx, false, now_ms) != 0) {
		SP_CNT_ADD(dp->mac_events[SP_MAC_EV_TABLE_FULL], 1);
		return;
	}
	dp->mac_learned_per_port[port_idx]++;
	SP_CNT_ADD(dp->mac_events[SP_MAC_EV_LEARNED], 1);
	if (mac_log_allowed(dp, now_ms))
		SP_LOG(INFO, "learned MAC %s on port %s", fmt_mac(mac, buf),
		       dp->ports[port_idx].name);
}

void
sp_mac_age(struct sp_dp *dp, uint64_t now_ms)
{
	uint64_t age_ms = (uint64_t)dp->cfg->mac_age_s * 1000;
	const void *key;
	void *data;
	uint32_t iter = 0;
	int32_t pos;

	while ((pos = rte_hash_iterate(dp->mac_table, &key, &data, &iter)) >= 0) {
		struct sp_mac_meta *m = &dp->mac_meta[pos];
		struct rte_ether_addr mac;

		if (!m->used || m->is_static || now_ms - m->last_seen_ms < age_ms)
			continue;
		memcpy(&mac, key, sizeof(mac));
		if (rte_hash_del_key(dp->mac_table, &mac) < 0)
			continue;
		dp->mac_learned_per_port[m->port_idx]--;
		m->used = false;
		mac_changed(dp);
		SP_CNT_ADD(dp->mac_events[SP_MAC_EV_AGED], 1);
	}
}
