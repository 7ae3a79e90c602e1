/* Port bring-up by role: device lookup, queue counts, MTU/scatter, queue setup, start, close. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <rte_ethdev.h>

#include "sp_dp.h"
#include "sp_log.h"

static int
port_err(char *err, size_t errlen, const struct sp_conf_port *pc, const char *key, const char *msg,
	 int rc)
{
	snprintf(err, errlen, "config: [port.%s] %s: %s", pc->name, key, msg);
	return rc < 0 ? rc : -EINVAL;
}

int
sp_port_init(struct sp_dp *dp, uint16_t idx, const struct sp_conf_port *pc, char *err,
	     size_t errlen)
{
	struct sp_port *p = &dp->ports[idx];
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	struct rte_eth_rxconf rxconf;
	struct rte_eth_txconf txconf;
	char name[RTE_ETH_NAME_MAX_LEN], msg[SP_CONF_ERR_LEN];
	uint16_t nb_rxd = (uint16_t)pc->rx_desc, nb_txd = (uint16_t)pc->tx_desc, q;
	uint32_t frame, room;
	bool is_pci;
	uint16_t i;
	int rc;

	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", pc->name);
	p->role = (uint8_t)pc->role;
	p->conf = pc;
	sp_conf_device_name(pc->device, name, sizeof(name), &is_pci);
	if (rte_eth_dev_get_port_by_name(name, &p->port_id) != 0) {
		snprintf(msg, sizeof(msg),
			 "no DPDK port '%s' (the device failed to probe: see the EAL lines above)",
			 name);
		return port_err(err, errlen, pc, "device", msg, -ENODEV);
	}
	for (i = 0; i < idx; i++) {
		if (dp->ports[i].port_id == p->port_id) {
			snprintf(msg, sizeof(msg), "'%s' is the device of [port.%s] too", name,
				 dp->ports[i].name);
			return port_err(err, errlen, pc, "device", msg, -EEXIST);
		}
	}
	rc = rte_eth_dev_info_get(p->port_id, &info);
	if (rc != 0)
		return port_err(err, errlen, pc, "device", "cannot read device info", rc);

	p->nb_rxq = (uint16_t)(pc->queues ? pc->queues : dp->n_workers);
	if (p->nb_rxq > info.max_rx_queues)
		p->nb_rxq = info.max_rx_queues; /* fewer rx queues: some workers poll none */
	p->nb_txq = (uint16_t)(pc->queues ? pc->queues : dp->n_workers);
	if (p->nb_txq > info.max_tx_queues) {
		snprintf(msg, sizeof(msg),
			 "device offers %u tx queues; %u workers need one each (use fewer workers "
			 "or give the device more queues, e.g. af_packet qpairs=N)",
			 info.max_tx_queues, dp->n_workers);
		return port_err(err, errlen, pc, "queues", msg, -EINVAL);
	}
	if (p->nb_rxq == 0)
		return port_err(err, errlen, pc, "device", "device has no rx queue", -EINVAL);

	memset(&conf, 0, sizeof(conf));
	frame = (uint32_t)pc->mtu + RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN + 2 * RTE_VLAN_HLEN;
	room = rte_pktmbuf_data_room_size(dp->pool) - RTE_PKTMBUF_HEADROOM;
	if (info.max_mtu != 0 && (uint32_t)pc->mtu > info.max_mtu) {
		snprintf(msg, sizeof(msg), "%" PRId64 " is above the device's maximum %u", pc->mtu,
			 info.max_mtu);
		return port_err(err, errlen, pc, "mtu", msg, -EINVAL);
	}
	conf.rxmode.mtu = (uint32_t)pc->mtu;
	if (frame > room) {
		/* Some PMDs (net_pcap, af_packet) chain mbufs without advertising the flag. */
		if (info.rx_offload_capa & RTE_ETH_RX_OFFLOAD_SCATTER)
			conf.rxmode.offloads |= RTE_ETH_RX_OFFLOAD_SCATTER;
		else
			SP_LOG(WARNING,
			       "port %s: frames up to %u bytes exceed one mbuf (%u) and the device "
			       "does not advertise scattered rx; it may drop them (raise "
			       "[dataplane] mbuf_size)",
			       pc->name, frame, room);
	}
	/* several rx queues: let the NIC spread flows over them (each queue has its worker) */
	if (p->nb_rxq > 1 && (info.flow_type_rss_offloads & RTE_ETH_RSS_IP)) {
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_hf =
			(RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) &
			info.flow_type_rss_offloads;
	}
	if (info.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS)
		conf.txmode.offloads |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;

	rc = rte_eth_dev_configure(p->port_id, p->nb_rxq, p->nb_txq, &conf);
	if (rc != 0) {
		snprintf(msg, sizeof(msg), "rte_eth_dev_configure failed: %s", strerror(-rc));
		return port_err(err, errlen, pc, "device", msg, rc);
	}
	rc = rte_eth_dev_adjust_nb_rx_tx_desc(p->port_id, &nb_rxd, &nb_txd);
	if (rc != 0)
		return port_err(err, errlen, pc, "rx_desc", "descriptor counts not accepted", rc);
	rxconf = info.default_rxconf;
	rxconf.offloads = conf.rxmode.offloads;
	for (q = 0; q < p->nb_rxq; q++) {
		rc = rte_eth_rx_queue_setup(p->port_id, q, nb_rxd,
					    rte_eth_dev_socket_id(p->port_id), &rxconf, dp->pool);
		if (rc != 0) {
			snprintf(msg, sizeof(msg), "rx queue %u setup failed: %s", q,
				 strerror(-rc));
			return port_err(err, errlen, pc, "device", msg, rc);
		}
	}
	txconf = info.default_txconf;
	txconf.offloads = conf.txmode.offloads;
	for (q = 0; q < p->nb_txq; q++) {
		rc = rte_eth_tx_queue_setup(p->port_id, q, nb_txd,
					    rte_eth_dev_socket_id(p->port_id), &txconf);
		if (rc != 0) {
			snprintf(msg, sizeof(msg), "tx queue %u setup failed: %s", q,
				 strerror(-rc));
			return port_err(err, errlen, pc, "device", msg, rc);
		}
	}
	rte_eth_macaddr_get(p->port_id, &p->hw_addr);
	SP_LOG(INFO, "port %s: %s (port %u, %s) rxq %u txq %u desc %u/%u mtu %" PRId64 "%s",
	       p->name, name, p->port_id, p->role == SP_PORT_ROLE_VM ? "vm" : "uplink", p->nb_rxq,
	       p->nb_txq, nb_rxd, nb_txd, pc->mtu,
	       (conf.rxmode.offloads & RTE_ETH_RX_OFFLOAD_SCATTER) ? " scatter" : "");
	return 0;
}

int
sp_port_start(struct sp_port *p, char *err, size_t errlen)
{
	int rc = rte_eth_dev_start(p->port_id);

	if (rc != 0)
		return port_err(err, errlen, p->conf, "device", "rte_eth_dev_start failed", rc);
	p->started = true;
	if (p->conf->promiscuous) {
		rc = rte_eth_promiscuous_enable(p->port_id);
		if (rc != 0 && rc != -ENOTSUP)
			SP_LOG(WARNING, "port %s: promiscuous mode: %s", p->name, strerror(-rc));
	}
	return 0;
}

void
sp_port_close(struct sp_port *p)
{
	if (p->started) {
		(void)rte_eth_dev_stop(p->port_id);
		p->started = false;
	}
	(void)rte_eth_dev_close(p->port_id);
}
