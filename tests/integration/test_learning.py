"""MAC learning under abuse: a VM cycling thousands of source MACs is throttled and capped."""
import os
import tempfile

from scapy.all import IP, UDP, Ether, wrpcap

import sphelpers as sp

VM0 = "02:00:00:00:00:01"
VM1 = "02:00:00:00:00:02"


def test_vm_cycling_source_macs_is_throttled():
    d = tempfile.mkdtemp(prefix="sptest-learn-")
    n = 3000
    # vm0 sends from 3000 different MACs, vm1 from its own MAC only
    frames = [Ether(src="02:aa:%02x:%02x:%02x:01" % (i >> 16 & 255, i >> 8 & 255, i & 255),
                    dst="02:00:00:00:00:fe") / IP(dst="192.0.2.1") / UDP() for i in range(n)]
    wrpcap(os.path.join(d, "vm0.pcap"), frames)
    wrpcap(os.path.join(d, "vm1.pcap"),
           [Ether(src=VM1, dst="02:00:00:00:00:fe") / IP(dst="192.0.2.1") / UDP()])
    wrpcap(os.path.join(d, "up.pcap"), [])
    prefix = f"spt-learn-{os.getpid()}"
    api = sp.free_tcp_port()
    conf = sp.base_config(prefix, api, "unix:/nonexistent/redis.sock") + f"""
[port.vm0]
device = net_pcap0,rx_pcap={d}/vm0.pcap,tx_pcap={d}/vm0-out.pcap
role = vm
[port.vm1]
device = net_pcap1,rx_pcap={d}/vm1.pcap,tx_pcap={d}/vm1-out.pcap
role = vm
[port.up]
device = net_pcap2,rx_pcap={d}/up.pcap,tx_pcap={d}/up-out.pcap
role = uplink
"""
    daemon = sp.Daemon(conf, "learn").start(ready_prefix=prefix)
    try:
        s = sp.wait_for(lambda: (x := sp.telemetry(prefix, "/shortpath/stats"))["rx_packets"]
                        == n + 1 and x, 10, what="all frames received")
        # everything was forwarded regardless of learning
        assert s["tx_packets"] == n + 1 and s["drop_runt"] == 0
        # the per-port GCRA allowed a burst of punts, throttled the rest; the ring never filled
        assert s["event_learn_throttled"] > 0
        assert s["event_learn_punted"] + s["event_learn_throttled"] == n + 1
        assert s["event_punt_ring_full"] == 0
        # the control thread learned vm0's first 8 MACs (mac_learn_limit) and vm1's one
        s = sp.wait_for(lambda: (x := sp.telemetry(prefix, "/shortpath/stats"))["mac_entries"]
                        == 9 and x, 5, what="learned MACs")
        assert s["mac_learned"] == 9 and s["mac_limit"] > 0
    finally:
        rc, log = daemon.stop()
    assert rc == 0, log
    assert sp.pool_in_use_after_close(log) == 0
    # log lines about MAC events are rate-limited
    assert log.count("learned MAC") <= 10
