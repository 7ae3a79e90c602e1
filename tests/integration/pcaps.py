"""Traffic sets for shortpathd's pcap tests: input frames, exact expected outputs and counters."""
import collections
import dataclasses
import json
import os
import shutil
import signal
import struct
import tempfile

from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, IPv6
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.packet import Raw
from scapy.utils import RawPcapReader

import sphelpers

VM0_MAC = "02:00:00:00:00:01"
VM1_MAC = "02:00:00:00:00:02"
GW_MAC = "02:00:00:00:00:fe"        # the fabric's router, behind the uplink
UNKNOWN_MAC = "02:00:00:00:00:99"   # no VM port has it
BCAST = "ff:ff:ff:ff:ff:ff"
V6_ALL_NODES_MAC = "33:33:00:00:00:01"
MCAST_SRC = "01:00:5e:00:00:01"

VM0_IP, VM1_IP, GW_IP = "10.0.0.1", "10.0.0.2", "10.0.0.254"
VM0_IP6, VM1_IP6, GW_IP6 = "fd00::1", "fd00::2", "fd00::fe"

JUMBO_MTU = 9000
JUMBO_PAYLOAD = 8000

DROPS = ("runt", "bad_src_mac", "unknown_dst", "no_vm_port", "tx_full", "clone_failed")
ANOMALIES = ("vlan_truncated", "vlan_too_deep", "arp_truncated", "ipv4_truncated",
             "ipv4_bad_header", "ipv6_truncated", "ipv6_bad_header", "l4_truncated",
             "tcp_bad_offset", "runt")
CLASSES = ("arp", "ipv4", "ipv6", "other_l3", "vlan", "tcp", "udp", "icmp", "multicast",
           "scattered")


@dataclasses.dataclass
class Frame:
    """One input frame and what shortpathd must do with it (an independent, hand-written oracle)."""
    name: str
    data: bytes
    to: tuple = ()          # destination port names, empty when dropped
    classes: tuple = ()     # class_<c> counters it bumps
    anomaly: str = None     # parse_<anomaly> counter it bumps
    drop: str = None        # drop_<reason> counter it bumps


def _payload(tag, n):
    """n bytes of recognisable payload (distinct per frame, so outputs can be told apart)."""
    unit = (tag + "|").encode()
    return (unit * (n // len(unit) + 1))[:n]


def typed_frames(tag, src, dst, ip, peer_ip, ip6, peer_ip6, to):
    """Every frame type, well-formed and malformed, from src to unicast dst (all forwarded)."""
    e = Ether(src=src, dst=dst)
    return [
        Frame(f"{tag}_arp_reply", bytes(e / ARP(op=2, hwsrc=src, psrc=ip, hwdst=dst,
                                                 pdst=peer_ip)), to, ("arp",)),
        Frame(f"{tag}_ipv4_tcp", bytes(e / IP(src=ip, dst=peer_ip) / TCP(
            sport=40000, dport=80, flags="PA", seq=1000, ack=2000)
            / Raw(_payload(f"{tag}-GET / HTTP/1.1", 300))), to, ("ipv4", "tcp")),
        Frame(f"{tag}_icmp_echo", bytes(e / IP(src=ip, dst=peer_ip) / ICMP(
            type=8, id=7, seq=1) / Raw(_payload(f"{tag}-ping", 56))), to, ("ipv4", "icmp")),
        Frame(f"{tag}_ipv6_tcp", bytes(e / IPv6(src=ip6, dst=peer_ip6) / TCP(
            sport=40001, dport=443, flags="S")), to, ("ipv6", "tcp")),
        Frame(f"{tag}_icmpv6_echo", bytes(e / IPv6(src=ip6, dst=peer_ip6) / ICMPv6EchoRequest(
            id=9, seq=1, data=_payload(f"{tag}-ping6", 32))), to, ("ipv6", "icmp")),
        Frame(f"{tag}_icmpv6_reply", bytes(e / IPv6(src=ip6, dst=peer_ip6) / ICMPv6EchoReply(
            id=9, seq=2)), to, ("ipv6", "icmp")),
        Frame(f"{tag}_dot1q_ipv4", bytes(e / Dot1Q(vlan=100, prio=3) / IP(
            src=ip, dst=peer_ip) / UDP(sport=5001, dport=5001) / Raw(_payload(f"{tag}-vlan", 40))),
            to, ("vlan", "ipv4", "udp")),
        Frame(f"{tag}_qinq", bytes(Ether(src=src, dst=dst, type=0x88a8) / Dot1AD(vlan=10)
                                   / Dot1Q(vlan=20) / IP(src=ip, dst=peer_ip)
                                   / UDP(sport=5002, dport=5002)
                                   / Raw(_payload(f"{tag}-qinq", 40))),
              to, ("vlan", "ipv4", "udp")),
        Frame(f"{tag}_jumbo", bytes(e / IP(src=ip, dst=peer_ip) / UDP(sport=5003, dport=5003)
                                    / Raw(_payload(f"{tag}-jumbo", JUMBO_PAYLOAD))),
              to, ("ipv4", "udp", "scattered")),
        # IPv4 total length 1000 in a 70-byte frame
        Frame(f"{tag}_ipv4_truncated", bytes(e / IP(src=ip, dst=peer_ip, len=1000) / UDP(
            sport=5004, dport=5004) / Raw(_payload(f"{tag}-trunc", 28))),
            to, ("ipv4",), anomaly="ipv4_truncated"),
        Frame(f"{tag}_ipv4_ihl3", bytes(e / IP(src=ip, dst=peer_ip, ihl=3) / UDP(
            sport=5005, dport=5005) / Raw(_payload(f"{tag}-ihl", 20))),
            to, ("ipv4",), anomaly="ipv4_bad_header"),
        Frame(f"{tag}_tcp_bad_offset", bytes(e / IP(src=ip, dst=peer_ip) / TCP(
            sport=40002, dport=80, dataofs=2, flags="A") / Raw(_payload(f"{tag}-doff", 20))),
            to, ("ipv4", "tcp"), anomaly="tcp_bad_offset"),
        Frame(f"{tag}_garbage_ethertype", bytes(Ether(src=src, dst=dst, type=0x88b5)
                                                / Raw(_payload(f"{tag}-\x07\xfe", 31))),
              to, ("other_l3",)),
        Frame(f"{tag}_vlan_truncated", bytes(Ether(src=src, dst=dst, type=0x8100))
              + b"\x00\x64", to, (), anomaly="vlan_truncated"),
        Frame(f"{tag}_vlan_too_deep", bytes(e / Dot1Q(vlan=1) / Dot1Q(vlan=2) / Dot1Q(vlan=3)
                                            / IP(src=ip, dst=peer_ip) / UDP()),
              to, ("vlan",), anomaly="vlan_too_deep"),
        Frame(f"{tag}_arp_truncated", bytes(e / ARP(op=1, hwsrc=src, psrc=ip,
                                                    pdst=peer_ip))[:14 + 20],
              to, ("arp",), anomaly="arp_truncated"),
        Frame(f"{tag}_ipv6_truncated", bytes(e / IPv6(src=ip6, dst=peer_ip6, plen=1000)
                                             / UDP(sport=1, dport=2) / Raw(b"v6")),
              to, ("ipv6",), anomaly="ipv6_truncated"),
        Frame(f"{tag}_ipv6_version4", bytes(Ether(src=src, dst=dst, type=0x86dd)
                                            / IP(src=ip, dst=peer_ip) / UDP() / Raw(b"v" * 20)),
              to, ("ipv6",), anomaly="ipv6_bad_header"),
        # IPv4 total length 24: a 4-byte UDP "header"
        Frame(f"{tag}_udp_truncated", bytes(e / IP(src=ip, dst=peer_ip, proto=17)
                                            / Raw(b"\x13\x88\x00\x35")),
              to, ("ipv4", "udp"), anomaly="l4_truncated"),
    ]


def vm_frames(port, mac, ip, ip6, full=True):
    """Frames a VM sends on its port (all go to the uplink unless dropped)."""
    up = ("uplink",)
    e = Ether(src=mac, dst=GW_MAC)
    f = [
        # "multicast" is documented as "broadcast or multicast destination" (sp_counters.h)
        Frame(f"{port}_arp_request", bytes(Ether(src=mac, dst=BCAST) / ARP(
            op=1, hwsrc=mac, psrc=ip, hwdst="00:00:00:00:00:00", pdst=GW_IP)), up,
            ("arp", "multicast")),
        Frame(f"{port}_ipv4_udp", bytes(e / IP(src=ip, dst=GW_IP) / UDP(
            sport=5000, dport=53) / Raw(_payload(f"{port}-udp", 64))), up, ("ipv4", "udp")),
    ]
    if not full:
        return f
    f += typed_frames(port, mac, GW_MAC, ip, GW_IP, ip6, GW_IP6, up)
    f += [
        Frame(f"{port}_runt10", bytes(e)[:10], (), (), anomaly="runt", drop="runt"),
        Frame(f"{port}_mcast_src", bytes(Ether(src=MCAST_SRC, dst=GW_MAC) / IP(
            src=ip, dst=GW_IP) / UDP(sport=5006, dport=5006) / Raw(b"x" * 18)),
            (), ("ipv4", "udp"), drop="bad_src_mac"),
        Frame(f"{port}_bcast_src", bytes(Ether(src=BCAST, dst=GW_MAC) / ARP(op=2)),
              (), ("arp",), drop="bad_src_mac"),
        Frame(f"{port}_zero_src", bytes(Ether(src="00:00:00:00:00:00", dst=GW_MAC, type=0x88b5)
                                        / Raw(b"zero source mac")),
              (), ("other_l3",), drop="bad_src_mac"),
        Frame(f"{port}_ipv4_udp_last", bytes(e / IP(src=ip, dst=GW_IP) / UDP(
            sport=5007, dport=53) / Raw(_payload(f"{port}-last", 30))), up, ("ipv4", "udp")),
    ]
    return f


def uplink_frames(full=True):
    """Frames arriving from the fabric: unicast to each VM, flooded, unknown, malformed."""
    both = ("vm0", "vm1")
    g = dict(src=GW_MAC)
    f = [
        Frame("up_to_vm0_tcp", bytes(Ether(dst=VM0_MAC, **g) / IP(src=GW_IP, dst=VM0_IP) / TCP(
            sport=80, dport=40000, flags="PA") / Raw(_payload("HTTP/1.1 200 OK", 200))),
            ("vm0",), ("ipv4", "tcp")),
        Frame("up_to_vm1_udp", bytes(Ether(dst=VM1_MAC, **g) / IP(src=GW_IP, dst=VM1_IP) / UDP(
            sport=53, dport=5000) / Raw(_payload("dns-answer", 80))), ("vm1",), ("ipv4", "udp")),
        Frame("up_bcast_arp", bytes(Ether(dst=BCAST, **g) / ARP(
            op=1, hwsrc=GW_MAC, psrc=GW_IP, pdst=VM1_IP)), both, ("arp", "multicast")),
    ]
    if not full:
        return f
    f += [
        Frame("up_ipv6_mcast", bytes(Ether(dst=V6_ALL_NODES_MAC, **g) / IPv6(
            src="fe80::fe", dst="ff02::1") / ICMPv6EchoRequest(id=1, seq=1)),
            both, ("ipv6", "icmp", "multicast")),
        Frame("up_unknown_dst", bytes(Ether(dst=UNKNOWN_MAC, **g) / IP(
            src=GW_IP, dst="10.0.0.99") / UDP(sport=1, dport=2)), (), ("ipv4", "udp"),
            drop="unknown_dst"),
        Frame("up_to_vm0_dot1q", bytes(Ether(dst=VM0_MAC, **g) / Dot1Q(vlan=100) / IP(
            src=GW_IP, dst=VM0_IP) / ICMP(type=0)), ("vm0",), ("vlan", "ipv4", "icmp")),
        Frame("up_runt12", bytes(Ether(dst=VM0_MAC, **g))[:12], (), (), anomaly="runt",
              drop="runt"),
    ]
    # every frame type the VMs send, toward vm1, interleaved with more traffic for vm0
    f += typed_frames("up", GW_MAC, VM1_MAC, GW_IP, VM1_IP, GW_IP6, VM1_IP6, ("vm1",))
    # a run longer than a burst and than rte_hash's bulk lookup (64), floods in between
    for i in range(70):
        if i % 16 == 15:
            f.append(Frame(f"up_seq{i}_bcast", bytes(Ether(dst=BCAST, **g, type=0x88b5)
                                                     / Raw(b"seq %d" % i)),
                           both, ("other_l3", "multicast")))
            continue
        vm = ("vm0", "vm1")[i % 2]
        f.append(Frame(f"up_seq{i}_{vm}", bytes(
            Ether(dst=(VM0_MAC, VM1_MAC)[i % 2], **g) / IP(src=GW_IP, dst=(VM0_IP, VM1_IP)[i % 2])
            / UDP(sport=7000, dport=7000 + i) / Raw(b"seq %d" % i)), (vm,), ("ipv4", "udp")))
    f += [
        Frame("up_mcast_224", bytes(Ether(dst="01:00:5e:00:00:fb", **g) / IP(
            src=GW_IP, dst="224.0.0.251") / UDP(sport=5353, dport=5353) / Raw(b"mdns")),
            both, ("ipv4", "udp", "multicast")),
        Frame("up_to_vm0_last", bytes(Ether(dst=VM0_MAC, **g) / IP(src=GW_IP, dst=VM0_IP) / UDP(
            sport=53, dport=5000) / Raw(b"end")), ("vm0",), ("ipv4", "udp")),
    ]
    return f


class TrafficSet:
    """Inputs per port (vm0, vm1, uplink) and the expected outputs and counters."""

    PORTS = ("vm0", "vm1", "uplink")

    def __init__(self, full=True):
        self.inputs = {
            "vm0": vm_frames("vm0", VM0_MAC, VM0_IP, VM0_IP6, full),
            "vm1": vm_frames("vm1", VM1_MAC, VM1_IP, VM1_IP6, full=False),
            "uplink": uplink_frames(full),
        }
        for port, frames in self.inputs.items():
            for fr in frames:
                if fr.to:
                    assert port not in fr.to, fr.name

    def all_frames(self):
        return [f for p in self.PORTS for f in self.inputs[p]]

    def expected_from(self, src, dst):
        """Frames from port src that port dst must send, in order (as bytes)."""
        return [f.data for f in self.inputs[src] if dst in f.to]

    def expected_out(self, dst):
        """{source port: [bytes]} for one output port; each source's order must be kept."""
        return {src: self.expected_from(src, dst) for src in self.PORTS
                if src != dst and self.expected_from(src, dst)}

    def port_counters(self):
        """{port: {rx_packets, rx_bytes, tx_packets, tx_bytes}} as the ethdev counts them."""
        out = {p: dict(rx_packets=0, rx_bytes=0, tx_packets=0, tx_bytes=0) for p in self.PORTS}
        for p in self.PORTS:
            for f in self.inputs[p]:
                out[p]["rx_packets"] += 1
                out[p]["rx_bytes"] += len(f.data)
                for d in f.to:
                    out[d]["tx_packets"] += 1
                    out[d]["tx_bytes"] += len(f.data)
        return out

    def counters(self):
        """The expected /shortpath/stats packet counters (keys as telemetry names them)."""
        c = collections.Counter()
        for key in ([f"drop_{d}" for d in DROPS] + [f"parse_{a}" for a in ANOMALIES]
                    + [f"class_{k}" for k in CLASSES]):
            c[key] = 0
        learn_macs = set()
        for p in self.PORTS:
            for f in self.inputs[p]:
                c["rx_packets"] += 1
                c["rx_bytes"] += len(f.data)
                c["tx_packets"] += len(f.to)
                c["tx_bytes"] += len(f.to) * len(f.data)
                for k in f.classes:
                    c[f"class_{k}"] += 1
                if f.anomaly:
                    c[f"parse_{f.anomaly}"] += 1
                if f.drop:
                    c[f"drop_{f.drop}"] += 1
                if p != "uplink" and f.drop is None:
                    learn_macs.add((p, f.data[6:12]))
        # one punt per (port, source MAC): the worker's sighting cache suppresses repeats
        # (the MACs used here land in different cache slots, see learn_slot())
        slots = {learn_slot(m) for _, m in learn_macs}
        assert len(slots) == len(learn_macs), "test MACs collide in the learn cache"
        c["event_learn_punted"] = len(learn_macs)
        c["event_punt_ring_full"] = 0
        c["event_learn_throttled"] = 0
        return dict(c)

    def write_inputs(self, directory):
        """Write one <port>.in.pcap per port; returns {port: (in path, out path)}."""
        paths = {}
        for p in self.PORTS:
            inp = os.path.join(directory, f"{p}.in.pcap")
            write_pcap(inp, [f.data for f in self.inputs[p]])
            paths[p] = (inp, os.path.join(directory, f"{p}.out.pcap"))
        return paths


def learn_slot(mac_bytes):
    """The worker's learn-cache slot of a MAC (mirrors sp_worker.c mac_key and key_slot)."""
    k = int.from_bytes(mac_bytes, "little") | 1 << 48
    return ((k * 0x9E3779B97F4A7C15) & (2**64 - 1)) >> 40 & 255


def port_sections(paths, macs=True, mtu=JUMBO_MTU):
    """[port.*] config sections for vm0, vm1 and uplink on net_pcap with the given files."""
    conf = {"vm0": VM0_MAC, "vm1": VM1_MAC}
    text = ""
    for i, p in enumerate(TrafficSet.PORTS):
        inp, out = paths[p]
        text += f"\n[port.{p}]\ndevice = net_pcap{i},rx_pcap={inp},tx_pcap={out}\n"
        text += f"role = {'uplink' if p == 'uplink' else 'vm'}\nmtu = {mtu}\n"
        if macs and p in conf:
            text += f"mac = {conf[p]}\n"
    return text


def write_pcap(path, frames):
    """Raw Ethernet frames into a classic pcap file (linktype 1), byte for byte."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, data in enumerate(frames):
            f.write(struct.pack("<IIII", 1700000000 + i, 0, len(data), len(data)))
            f.write(data)


def read_pcap(path):
    """The frames of a pcap file as bytes, in file order."""
    r = RawPcapReader(path)
    try:
        return [data for data, _meta in r]
    finally:
        r.close()


def check_merge(actual, expected_by_src):
    """actual must be an interleaving of the expected lists that keeps each list's order.

    Returns a list of problems (empty when it matches)."""
    problems = []
    owner = {}
    for src, frames in expected_by_src.items():
        for i, data in enumerate(frames):
            assert data not in owner, f"ambiguous expected frame from {src}"
            owner[data] = (src, i)
    seen = {src: [] for src in expected_by_src}
    for n, data in enumerate(actual):
        if data not in owner:
            problems.append(f"output frame #{n} ({len(data)} B) is not expected: "
                            f"{data[:40].hex()}")
            continue
        src, i = owner[data]
        seen[src].append(i)
    for src, frames in expected_by_src.items():
        idx = seen[src]
        if idx != list(range(len(frames))):
            problems.append(f"frames from {src}: got indexes {idx}, "
                            f"want 0..{len(frames) - 1} in order")
    return problems


def compare_frames(actual, expected):
    """Packet-by-packet, byte-by-byte comparison; returns a list of problems."""
    problems = []
    if len(actual) != len(expected):
        problems.append(f"{len(actual)} frames, expected {len(expected)}")
    for i, (a, e) in enumerate(zip(actual, expected)):
        if a != e:
            diff = next((j for j in range(min(len(a), len(e))) if a[j] != e[j]),
                        min(len(a), len(e)))
            problems.append(f"frame #{i}: {len(a)} B vs expected {len(e)} B, first difference "
                            f"at byte {diff}")
    return problems


class PcapRun:
    """shortpathd on net_pcap ports fed by a TrafficSet; close() always cleans up."""

    def __init__(self, name, traffic, redis_address, macs=True, extra="", edit=None):
        self.traffic = traffic
        self.prefix = f"spt-{name}-{os.getpid()}"[:31]
        self.api_port = sphelpers.free_tcp_port()
        self.dir = tempfile.mkdtemp(prefix=f"sptest-{name}-pcap-")
        self.paths = traffic.write_inputs(self.dir)
        self.config = (sphelpers.base_config(self.prefix, self.api_port, redis_address)
                       + port_sections(self.paths, macs) + extra)
        if edit is not None:
            self.config = edit(self.config)
        self.daemon = sphelpers.Daemon(self.config, name)

    def start(self):
        self.daemon.start(ready_prefix=self.prefix, api_port=self.api_port)
        return self

    @property
    def pid(self):
        return self.daemon.proc.pid

    def telemetry(self, cmd):
        return sphelpers.telemetry(self.prefix, cmd)

    def stats(self):
        return self.telemetry("/shortpath/stats")

    def api(self, path, method="GET"):
        return sphelpers.http_get(self.api_port, path, method)

    def api_json(self, path):
        status, _headers, body = self.api(path)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def wait_all_received(self, timeout=10):
        """Poll telemetry until the worker has received every input frame."""
        n = len(self.traffic.all_frames())
        last = {}

        def done():
            last["s"] = self.stats()
            if last["s"]["rx_packets"] > n:
                raise AssertionError(f"received {last['s']['rx_packets']} > {n} frames")
            return last["s"]["rx_packets"] == n

        try:
            sphelpers.wait_for(done, timeout, what=f"rx_packets == {n}")
        except TimeoutError:
            raise AssertionError(f"shortpathd did not receive all {n} input frames; stats: "
                                 f"{last.get('s')}\nlog:\n{self.daemon.read_log()}") from None
        return last["s"]

    def stop(self, sig=signal.SIGTERM, timeout=20):
        return self.daemon.stop(sig, timeout)

    def outputs(self):
        """{port: [bytes]} of the tx pcaps (complete only once the daemon has stopped)."""
        return {p: read_pcap(out) for p, (_inp, out) in self.paths.items()}

    def close(self):
        """Stop the daemon if it still runs (kill if it must), drop its runtime directory."""
        self.daemon.close()
        if not os.environ.get("SP_KEEP_TMP"):  # SP_KEEP_TMP=1 keeps pcaps, config and log
            shutil.rmtree(self.dir, ignore_errors=True)
            shutil.rmtree(self.daemon.dir, ignore_errors=True)
