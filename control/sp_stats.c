/* Counter tables shared by telemetry, the JSON API and /metrics, and the snapshot helpers. */
#include "sp_stats.h"

#include <pthread.h>
#include <string.h>

#define WS(f) offsetof(struct sp_worker_stats, f)
#define ES(f) offsetof(struct rte_eth_stats, f)

const struct sp_stat_scalar sp_stats_worker_scalars[] = {
	{"rx_packets", WS(rx_packets), "packets received by the worker"},
	{"rx_bytes", WS(rx_bytes), "bytes received by the worker"},
	{"tx_packets", WS(tx_packets), "packets the worker's tx bursts took"},
	{"tx_bytes", WS(tx_bytes), "bytes the worker's tx bursts took"},
	{"iterations", WS(iterations), "poll loop iterations"},
	{"busy_cycles", WS(busy_cycles), "TSC cycles of iterations that received packets"},
	{"idle_cycles", WS(idle_cycles), "TSC cycles of iterations that received nothing"},
	{"flows", WS(flows), "live TCP flows of direct services (gauge)"},
	{"flow_buffers", WS(flow_buffers), "request buffers held by flows not bound yet (gauge)"},
	{"locators", WS(locators), "locators in the workers' caches (gauge)"},
};
const unsigned int sp_stats_n_worker_scalars = RTE_DIM(sp_stats_worker_scalars);

const struct sp_stat_group sp_stats_worker_groups[] = {
	{"drop", "drops", "reason", WS(drops), 0, SP_DROP_MAX, sp_drop_name,
	 "frames dropped, by reason"},
	{"parse", "parse_anomalies", "reason", WS(parse), 1, SP_PKT_ERR_MAX, sp_pkt_err_name,
	 "malformed frames seen (forwarded unless a drop reason applies)"},
	{"class", "classified", "class", WS(classes), 0, SP_CLASS_MAX, sp_class_name,
	 "frames by what the parser found"},
	{"event", "events", "event", WS(events), 0, SP_EVENT_MAX, sp_event_name,
	 "fast-path events (punts)"},
	{"tcp", "tcp_events", "event", WS(tcp), 0, SP_TCP_EV_MAX, sp_tcp_event_name,
	 "TCP endpoint of direct services: handshakes, decisions, locators, splice, timeouts"},
};
const unsigned int sp_stats_n_worker_groups = RTE_DIM(sp_stats_worker_groups);

const struct sp_stat_scalar sp_stats_port_scalars[] = {
	{"rx_packets", ES(ipackets), "packets received on the port"},
	{"rx_bytes", ES(ibytes), "bytes received on the port"},
	{"tx_packets", ES(opackets), "packets sent on the port"},
	{"tx_bytes", ES(obytes), "bytes sent on the port"},
	{"rx_missed", ES(imissed), "packets the device dropped for lack of rx descriptors"},
	{"rx_errors", ES(ierrors), "erroneous packets received"},
	{"tx_errors", ES(oerrors), "failed transmissions"},
	{"rx_nombuf", ES(rx_nombuf), "rx mbuf allocation failures"},
};
const unsigned int sp_stats_n_port_scalars = RTE_DIM(sp_stats_port_scalars);

void
sp_stats_worker_read(const struct sp_worker *w, struct sp_worker_stats *out)
{
	const uint64_t *src = (const uint64_t *)&w->stats;
	uint64_t *dst = (uint64_t *)out;
	size_t i, n = sizeof(*out) / sizeof(uint64_t);

	memset(out, 0, sizeof(*out));
	for (i = 0; i < n; i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	memset(out->classes, 0, sizeof(out->classes));
	for (i = 0; i < SP_CLASS_HIST; i++)
		sp_class_from_bucket((unsigned int)i, out->class_hist[i], out->classes);
}

void
sp_stats_total(const struct sp_dp *dp, struct sp_worker_stats *out)
{
	struct sp_worker_stats s;
	uint64_t *dst = (uint64_t *)out, *src = (uint64_t *)&s;
	size_t i, n = sizeof(*out) / sizeof(uint64_t);
	unsigned int w;

	memset(out, 0, sizeof(*out));
	for (w = 0; w < dp->n_workers; w++) {
		sp_stats_worker_read(dp->workers[w], &s);
		for (i = 0; i < n; i++)
			dst[i] += src[i];
	}
}

static pthread_mutex_t port_stats_lock = PTHREAD_MUTEX_INITIALIZER;

void
sp_stats_port_read(uint16_t port_id, struct rte_eth_stats *es)
{
	memset(es, 0, sizeof(*es));
	pthread_mutex_lock(&port_stats_lock);
	rte_eth_stats_get(port_id, es);
	pthread_mutex_unlock(&port_stats_lock);
}

const char *
sp_port_role_name(uint8_t role)
{
	return role == SP_PORT_ROLE_UPLINK ? "uplink" : "vm";
}
