#!/usr/bin/python3
"""Forwarding benchmark: packets per second per worker of shortpathd vs dpdk-testpmd io/macswap.

All three programs run one after the other in the same invocation, on the same two virtual ports
(net_pcap, rx_pcap=FILE,infinite_rx=1, so each port replays its file forever; no tx argument, so
net_pcap counts and frees what is transmitted) and the same generated traffic, with the same EAL
options (--no-huge -m 1024 --no-pci -l 0-1: main lcore 0, one forwarding lcore 1) and burst size.
Counters are read over the DPDK telemetry socket at the start and end of the measuring window,
after a warm-up. Run as root:

    tools/bench/fwd_bench.py [--seconds 10] [--burst 32] [--mix imix] [--rounds 1] [--json]

The headline figure is forwarded (= transmitted) packets per second per worker over wall-clock
time. Other programs on the same cores steal time from the forwarding lcore; the benchmark
measures that (CPU time of the forwarding thread / window) and also reports the rate per
CPU-second of that thread, which is less sensitive to such noise.

Exit status: 0 on success, 1 if a run failed to start or forwarded nothing, 2 on bad usage,
128 + signal number when interrupted (130 for Ctrl-C). Every process and temporary file is
removed on the way out, Ctrl-C included.
"""

import argparse
import ctypes
import json
import os
import random
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHORTPATHD = os.path.join(os.environ.get("SP_BUILD_DIR", os.path.join(ROOT, "build")),
                          "control", "shortpathd")
TESTPMD = "/usr/bin/dpdk-testpmd"
RUNTIME = "/var/run/dpdk"  # EAL runtime directories: RUNTIME/PREFIX/dpdk_telemetry.v2

EAL_COMMON = ["--no-huge", "-m", "1024", "--no-pci", "-l", "0-1"]
MBUFS = 16384  # testpmd --total-num-mbufs (its default fails under --no-huge); shortpathd: 2^14-1
DESC = 1024

# The VM behind the "vm" port and the fabric router behind the "uplink" port. Addresses are
# documentation ranges: the frames only ever exist in pcap files and in the programs' memory.
VM_MAC = "02:00:5e:10:00:01"
GW_MAC = "02:00:5e:10:00:fe"
VM_IP, VM_IP6 = "192.0.2.10", "2001:db8:10::10"
REMOTES = [f"198.51.100.{i}" for i in range(1, 17)]
REMOTES6 = [f"2001:db8:20::{i:x}" for i in range(1, 9)]

PROGRAMS = ("shortpathd", "testpmd-io", "testpmd-macswap")


def log(msg):
    print(f"fwd_bench: {msg}", file=sys.stderr, flush=True)


class Interrupted(BaseException):
    """SIGINT/SIGTERM arrived: unwind through every finally, then exit 130.

    A BaseException, so that no `except Exception` (wait_for's polling) swallows it."""


def _on_signal(signum, _frame):
    raise Interrupted(signum)


def telemetry(prefix, cmd):
    """One command on a DPDK process's telemetry v2 socket (as dpdk-telemetry.py does it)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5)
    try:
        s.connect(os.path.join(RUNTIME, prefix, "dpdk_telemetry.v2"))
        info = json.loads(s.recv(16384).decode())
        s.send(cmd.encode())
        reply = json.loads(s.recv(info.get("max_output_len", 16384)).decode())
    finally:
        s.close()
    return reply[cmd.split(",", 1)[0]]


def free_tcp_port():
    """A TCP port on 127.0.0.1 that is free right now (for shortpathd's management API)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ProcessDied(RuntimeError):
    """The program under test exited while it should be running."""


def wait_for(fn, timeout, what):
    """Poll fn() until it returns something true; raise TimeoutError with the last error."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            if fn():
                return
        except ProcessDied:
            raise
        except Exception as e:  # noqa: BLE001 - not up yet; keep polling, report the last
            last = e
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}; last: {last!r}")


# ---------------------------------------------------------------------------------------------
# Traffic


def _pick(rng, weighted):
    """One value out of [(weight, value), ...]."""
    return rng.choices([v for _w, v in weighted], [w for w, _v in weighted])[0]


# Ethernet frame sizes without FCS (60 = a 64-byte frame on the wire, 1514 = 1518)
DATA_SIZES = {
    "imix": [(45, 1514), (5, 1280), (5, 1024), (10, 576), (5, 512), (10, 256), (10, 128),
             (10, "tiny")],
    "small": [(40, "tiny"), (30, 128), (15, 100), (15, 80)],
    "large": [(95, 1514), (5, 1280)],
}
UDP_SIZES = {
    "imix": [(40, 82), (20, 214), (30, 1292), (10, 512)],
    "small": [(60, 82), (40, 128)],
    "large": [(100, 1292)],
}
# kind weights per mix: data = TCP data, ack = pure ACK, arp/nd = broadcast/multicast + replies
KINDS = {
    "imix": [(50, "tcp"), (5, "tcp6"), (25, "ack"), (3, "ack6"), (12, "udp"), (3, "arp"),
             (2, "nd")],
    "small": [(25, "tcp"), (45, "ack"), (5, "ack6"), (18, "udp"), (5, "arp"), (2, "nd")],
    "large": [(80, "tcp"), (5, "tcp6"), (10, "ack"), (3, "udp"), (1, "arp"), (1, "nd")],
}


def make_frames(mix, side, count, seed):
    """count raw Ethernet frames (bytes) for one side ("vm" or "uplink") of a mix.

    vm side: frames from the VM's MAC to the router (ARP requests and ND to broadcast and
    multicast). uplink side: frames to the VM's MAC, plus ARP requests to ff:ff:ff:ff:ff:ff and
    IPv6 neighbour solicitations to the VM's solicited-node multicast group (shortpathd floods
    those to every VM port: with one VM port that is one frame out for one frame in)."""
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6, ICMPv6ND_NS, ICMPv6ND_NA
    from scapy.layers.l2 import ARP, Ether
    from scapy.packet import Raw

    rng = random.Random(f"{seed}-{mix}-{side}")
    out = []
    vm = side == "vm"
    src_mac, dst_mac = (VM_MAC, GW_MAC) if vm else (GW_MAC, VM_MAC)
    flows = [(rng.choice(REMOTES), rng.randint(32768, 60999), rng.choice([443, 443, 80, 8443]))
             for _ in range(64)]
    flows6 = [(rng.choice(REMOTES6), rng.randint(32768, 60999), 443) for _ in range(16)]

    def pad(pkt, size):
        n = size - len(pkt)
        return pkt / Raw(rng.randbytes(n)) if n > 0 else pkt

    def l3(v6, flow):
        remote = flow[0]
        if v6:
            return IPv6(src=VM_IP6, dst=remote) if vm else IPv6(src=remote, dst=VM_IP6)
        return IP(src=VM_IP, dst=remote, id=rng.randrange(65536)) if vm else \
            IP(src=remote, dst=VM_IP, id=rng.randrange(65536))

    def l4(flow, flags, proto=TCP):
        _r, eph, svc = flow
        sport, dport = (eph, svc) if vm else (svc, eph)
        if proto is UDP:
            return UDP(sport=sport, dport=dport)
        return TCP(sport=sport, dport=dport, flags=flags, seq=rng.randrange(2**32),
                   ack=rng.randrange(2**32), window=rng.choice([502, 1024, 65535]))

    for _ in range(count):
        kind = _pick(rng, KINDS[mix])
        eth = Ether(src=src_mac, dst=dst_mac)
        if kind in ("tcp", "tcp6"):
            v6 = kind == "tcp6"
            size = _pick(rng, DATA_SIZES[mix])
            size = rng.randint(60, 100) if size == "tiny" else size
            flow = rng.choice(flows6 if v6 else flows)
            pkt = eth / l3(v6, flow) / l4(flow, "PA")
            pkt = pad(pkt, max(size, len(pkt) + 1))
        elif kind in ("ack", "ack6"):
            v6 = kind == "ack6"
            flow = rng.choice(flows6 if v6 else flows)
            pkt = pad(eth / l3(v6, flow) / l4(flow, "A"), 60)
        elif kind == "udp":
            flow = rng.choice(flows)
            flow = (flow[0], flow[1], rng.choice([53, 443, 5004]))
            pkt = pad(eth / l3(False, flow) / l4(flow, None, UDP), _pick(rng, UDP_SIZES[mix]))
        elif kind == "arp":
            remote = rng.choice(REMOTES)
            if vm:  # who-has the router (broadcast), or a reply to the router (unicast)
                if rng.random() < 0.7:
                    pkt = Ether(src=VM_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(
                        op=1, hwsrc=VM_MAC, psrc=VM_IP, pdst=remote)
                else:
                    pkt = eth / ARP(op=2, hwsrc=VM_MAC, psrc=VM_IP, hwdst=GW_MAC, pdst=remote)
            else:  # who-has the VM (broadcast, flooded), or a reply to the VM (unicast)
                if rng.random() < 0.7:
                    pkt = Ether(src=GW_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(
                        op=1, hwsrc=GW_MAC, psrc=remote, pdst=VM_IP)
                else:
                    pkt = eth / ARP(op=2, hwsrc=GW_MAC, psrc=remote, hwdst=VM_MAC, pdst=VM_IP)
            pkt = pad(pkt, 60)
        else:  # nd: neighbour solicitation to a solicited-node group, or an advertisement
            remote = rng.choice(REMOTES6)
            if vm:
                pkt = Ether(src=VM_MAC, dst=GW_MAC) / IPv6(src=VM_IP6, dst=remote) / \
                    ICMPv6ND_NA(tgt=VM_IP6, R=0, S=1, O=1)
            else:
                pkt = Ether(src=GW_MAC, dst="33:33:ff:00:00:10") / IPv6(
                    src=remote, dst="ff02::1:ff00:10", hlim=255) / ICMPv6ND_NS(tgt=VM_IP6)
            pkt = pad(pkt, 60)
        out.append(bytes(pkt))
    return out


def write_pcap(path, frames):
    """Classic pcap file (linktype Ethernet), frames byte for byte."""
    import struct
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, data in enumerate(frames):
            f.write(struct.pack("<IIII", 1700000000 + i // 1000, (i % 1000) * 1000,
                                len(data), len(data)))
            f.write(data)


def describe(frames):
    n = len(frames)
    multi = sum(1 for d in frames if d[0] & 1)
    return {"frames": n, "avg_bytes": round(sum(map(len, frames)) / n, 1),
            "min_bytes": min(map(len, frames)), "max_bytes": max(map(len, frames)),
            "bcast_mcast_share": round(multi / n, 4)}


# ---------------------------------------------------------------------------------------------
# Processes

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _child_setup():
    """In the child before exec: default signal dispositions, die with the benchmark."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


def other_dpdk_processes(own_pids):
    """[(pid, comm)] of shortpathd/testpmd processes that are not ours (a source of noise)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) in own_pids:
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm in ("shortpathd", "dpdk-testpmd"):
            found.append((int(pid), comm))
    return found


def thread_cpu_times(pid):
    """{tid: (comm, seconds on a CPU, seconds waiting for one)} of a process's threads.

    From /proc/PID/task/TID/schedstat (nanoseconds); without it, utime+stime of .../stat."""
    res = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return res
    clk = os.sysconf("SC_CLK_TCK")
    for tid in tids:
        base = f"/proc/{pid}/task/{tid}"
        try:
            with open(f"{base}/comm") as f:
                comm = f.read().strip()
            try:
                with open(f"{base}/schedstat") as f:
                    run_ns, wait_ns = (int(x) for x in f.read().split()[:2])
                res[int(tid)] = (comm, run_ns / 1e9, wait_ns / 1e9)
            except (OSError, ValueError):
                with open(f"{base}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                res[int(tid)] = (comm, (int(fields[11]) + int(fields[12])) / clk, None)
        except OSError:
            continue
    return res


def cpu_stat():
    """{cpuN: (busy, steal, total)} jiffies from /proc/stat (busy excludes idle, iowait, steal)."""
    res = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *vals = line.split()
            if not name.startswith("cpu") or name == "cpu":
                continue
            v = [int(x) for x in vals[:8]] + [0] * (8 - len(vals[:8]))
            user, nice, system, idle, iowait, irq, softirq, steal = v
            res[name] = (user + nice + system + irq + softirq, steal, sum(v))
    return res


def cpu_stat_shares(a, b):
    """{cpuN: {"busy": share, "steal": share}} between two cpu_stat() readings."""
    res = {}
    for cpu in b:
        if cpu in a:
            total = b[cpu][2] - a[cpu][2]
            if total > 0:
                res[cpu] = {"busy": round((b[cpu][0] - a[cpu][0]) / total, 3),
                            "steal": round((b[cpu][1] - a[cpu][1]) / total, 3)}
    return res


class Run:
    """One program under test: start, wait for traffic, snapshot counters, stop, clean up."""

    workers = 1

    def __init__(self, name, tmpdir, prefix, args):
        self.name = name
        self.tmpdir = tmpdir
        self.prefix = prefix
        self.args = args
        self.proc = None
        self.logpath = os.path.join(tmpdir, f"{name}.log")
        self.cmd = []
        self.stdin = None

    # subclasses: build(), ready(), snapshot(), stop_gently(), figures()

    def start(self):
        self.build()
        shutil.rmtree(os.path.join(RUNTIME, self.prefix), ignore_errors=True)
        self._log = open(self.logpath, "w")
        self.proc = subprocess.Popen(self.cmd, stdin=self.stdin, stdout=self._log,
                                     stderr=subprocess.STDOUT, cwd=self.tmpdir,
                                     preexec_fn=_child_setup, start_new_session=True)
        wait_for(lambda: self.alive() and self.ready(), 60, f"{self.name} forwarding")

    def alive(self):
        if self.proc.poll() is not None:
            raise ProcessDied(f"{self.name} exited with status {self.proc.returncode}; "
                              f"log tail:\n{self.log_tail()}")
        return True

    def log_tail(self, n=25):
        try:
            with open(self.logpath, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def tel(self, cmd):
        return telemetry(self.prefix, cmd)

    def timed(self, cmd):
        t0 = time.monotonic()
        v = self.tel(cmd)
        return (t0 + time.monotonic()) / 2, v

    @staticmethod
    def worker_thread(t0, t1):
        """tid of the forwarding lcore's thread (EAL names it rte-worker-1 in 22.11), else the
        thread that used the most CPU over the window."""
        common = [t for t in t1 if t in t0]
        named = [t for t in common if t1[t][0] in ("rte-worker-1", "lcore-worker-1")]
        if named:
            return named[0]
        return max(common, key=lambda t: t1[t][1] - t0[t][1]) if common else None

    def cpu_snapshot(self):
        return time.monotonic(), thread_cpu_times(self.proc.pid)

    def stop(self):
        """Stop the program (gently, then by force); returns its exit code."""
        if self.proc is None:
            return None
        rc = self.proc.poll()
        if rc is None:
            try:
                self.stop_gently()
                if self.proc.stdin is not None and not self.proc.stdin.closed:
                    self.proc.stdin.close()
                rc = self.proc.wait(20)
            except (subprocess.TimeoutExpired, OSError):
                self.proc.send_signal(signal.SIGTERM)
                try:
                    rc = self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    rc = self.proc.wait()
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
        self._log.close()
        shutil.rmtree(os.path.join(RUNTIME, self.prefix), ignore_errors=True)
        return rc

    def measure(self, seconds, warmup):
        """Warm up, then counters at the start and end of a window of `seconds`."""
        time.sleep(warmup)
        self.alive()
        c0 = self.cpu_snapshot()
        st0 = cpu_stat()
        s0 = self.snapshot()
        others = other_dpdk_processes({os.getpid(), self.proc.pid})
        time.sleep(seconds)
        self.alive()
        s1 = self.snapshot()
        st1 = cpu_stat()
        c1 = self.cpu_snapshot()
        others += other_dpdk_processes({os.getpid(), self.proc.pid})
        res = self.figures(s0, s1)
        res["other_dpdk_processes"] = sorted(set(others))
        # the whole machine over the window: cpu1 should be ~100% busy (the forwarding lcore),
        # cpu0 nearly idle; steal = time the hypervisor gave the vCPU to someone else
        res["cpus"] = cpu_stat_shares(st0, st1)
        res["disturbed"] = disturbance(res)
        tid = self.worker_thread(c0[1], c1[1])
        if tid is not None:
            window = c1[0] - c0[0]
            share = (c1[1][tid][1] - c0[1][tid][1]) / window
            res["worker_thread"] = c1[1][tid][0]
            res["worker_cpu_share"] = round(share, 4)
            if c1[1][tid][2] is not None:
                res["worker_runqueue_wait_share"] = round((c1[1][tid][2] - c0[1][tid][2])
                                                          / window, 4)
            if share > 0:
                res["tx_pps_per_worker_cpu_s"] = res["tx_pps"] / self.workers / share
        return res


def disturbance(res):
    """Reasons to distrust a run's wall-clock figures (empty when the machine was quiet)."""
    why = []
    share = res.get("worker_cpu_share")
    if share is not None and share < 0.97:
        why.append(f"forwarding thread on CPU only {share:.0%} of the window")
    for cpu, v in sorted(res.get("cpus", {}).items()):
        if v["steal"] > 0.02:
            why.append(f"{cpu} steal {v['steal']:.0%}")
        if cpu != "cpu1" and v["busy"] > 0.15:
            why.append(f"{cpu} busy {v['busy']:.0%} (another vCPU: may share the core)")
    if res.get("other_dpdk_processes"):
        why.append("other DPDK processes: " + ", ".join(
            f"{c}[{p}]" for p, c in res["other_dpdk_processes"]))
    return why


def rate(a, b, key):
    """(delta, per second) of a counter between two (time, dict) snapshots."""
    d = b[1][key] - a[1][key]
    return d, d / (b[0] - a[0])


class ShortpathdRun(Run):
    def build(self):
        self.api_port = free_tcp_port()
        self.conf = os.path.join(self.tmpdir, "shortpathd.conf")
        vm_pcap, up_pcap = self.args.pcaps
        self.config_text = f"""# fwd_bench.py: one worker, two net_pcap ports replaying their files
[eal]
file_prefix = {self.prefix}
memory_mb = 1024
no_huge = true
no_pci = true

[lcores]
main = 0
workers = 1

[redis]
# nothing listens here: shortpathd forwards while Redis is away (its control loop retries)
address = unix:{self.tmpdir}/no-redis.sock

[api]
listen = 127.0.0.1:{self.api_port}

[dataplane]
burst = {self.args.burst}
mbufs = {MBUFS - 1}

[port.vm0]
device = net_pcap0,rx_pcap={vm_pcap},infinite_rx=1
role = vm
mac = {VM_MAC}
rx_desc = {DESC}
tx_desc = {DESC}

[port.uplink]
device = net_pcap1,rx_pcap={up_pcap},infinite_rx=1
role = uplink
rx_desc = {DESC}
tx_desc = {DESC}
"""
        with open(self.conf, "w") as f:
            f.write(self.config_text)
        self.cmd = [self.args.shortpathd, "-c", self.conf]
        self.stdin = subprocess.DEVNULL

    def ready(self):
        s = self.tel("/shortpath/stats")
        return s["tx_packets"] > 0

    def snapshot(self):
        return {"stats": self.timed("/shortpath/stats"),
                "lcores": self.timed("/shortpath/lcores"),
                "ports": self.timed("/shortpath/ports"),
                "ethdev": [self.timed(f"/ethdev/stats,{p}") for p in (0, 1)]}

    def stop_gently(self):
        self.proc.send_signal(signal.SIGTERM)

    def figures(self, s0, s1):
        a, b = s0["stats"], s1["stats"]
        rx, rx_pps = rate(a, b, "rx_packets")
        tx, tx_pps = rate(a, b, "tx_packets")
        txb, txb_ps = rate(a, b, "tx_bytes")
        drops = {k: b[1][k] - a[1][k] for k in b[1] if k.startswith("drop_")}
        self.workers = b[1].get("workers", 1)
        res = {"seconds": round(b[0] - a[0], 3), "rx_packets": rx, "tx_packets": tx,
               "rx_pps": rx_pps, "tx_pps": tx_pps, "tx_bits_per_s": txb_ps * 8,
               "drops": sum(drops.values()),
               "drops_by_reason": {k: v for k, v in drops.items() if v}}
        # per worker lcore: busy/idle TSC cycles over the window
        la, lb = s0["lcores"], s1["lcores"]
        busy = sum(lb[1][c]["busy_cycles"] - la[1][c]["busy_cycles"] for c in lb[1])
        idle = sum(lb[1][c]["idle_cycles"] - la[1][c]["idle_cycles"] for c in lb[1])
        lrx = sum(lb[1][c]["rx_packets"] - la[1][c]["rx_packets"] for c in lb[1])
        res["busy_cycles_per_packet"] = busy / lrx if lrx else None
        res["busy_share"] = busy / (busy + idle) if busy + idle else None
        res["tsc_hz_measured"] = (busy + idle) / len(lb[1]) / (lb[0] - la[0])
        res["ports"] = {}
        for name in s1["ports"][1]:
            pa, pb = s0["ports"][1][name], s1["ports"][1][name]
            secs = s1["ports"][0] - s0["ports"][0]
            res["ports"][name] = {k: (pb[k] - pa[k]) / secs for k in ("rx_packets", "tx_packets")}
        res["ethdev"] = {str(p): {k: rate(s0["ethdev"][p], s1["ethdev"][p], k)[1]
                                  for k in ("ipackets", "opackets")} for p in (0, 1)}
        return res

    def after_stop(self, res):
        """Pool report of the orderly stop (every mbuf must be back)."""
        with open(self.logpath, errors="replace") as f:
            m = re.search(r"packet pool: (\d+) of (\d+) mbufs in use after close", f.read())
        res["mbufs_in_use_after_close"] = int(m.group(1)) if m else None

    def describe_cmd(self):
        return {"argv": self.cmd, "config": self.config_text}


class TestpmdRun(Run):
    def __init__(self, name, tmpdir, prefix, args, mode):
        super().__init__(name, tmpdir, prefix, args)
        self.mode = mode

    def build(self):
        vm_pcap, up_pcap = self.args.pcaps
        self.cmd = [self.args.testpmd, *EAL_COMMON, f"--file-prefix={self.prefix}",
                    "--log-level=lib.eal:debug",  # for "TSC frequency is ~N KHz"
                    "--vdev", f"net_pcap0,rx_pcap={vm_pcap},infinite_rx=1",
                    "--vdev", f"net_pcap1,rx_pcap={up_pcap},infinite_rx=1",
                    "--", f"--total-num-mbufs={MBUFS}", f"--forward-mode={self.mode}",
                    f"--burst={self.args.burst}", "--nb-cores=1", "--rxq=1", "--txq=1",
                    f"--rxd={DESC}", f"--txd={DESC}"]
        # not interactive: testpmd forwards until a line arrives on its stdin
        self.stdin = subprocess.PIPE

    def ready(self):
        return all(self.tel(f"/ethdev/stats,{p}")["opackets"] > 0 for p in (0, 1))

    def snapshot(self):
        return {"ethdev": [self.timed(f"/ethdev/stats,{p}") for p in (0, 1)]}

    def stop_gently(self):
        try:
            self.proc.stdin.write(b"\n")
            self.proc.stdin.close()
        except OSError:
            self.proc.send_signal(signal.SIGTERM)

    def figures(self, s0, s1):
        e0, e1 = s0["ethdev"], s1["ethdev"]
        res = {"seconds": round(((e1[0][0] - e0[0][0]) + (e1[1][0] - e0[1][0])) / 2, 3)}
        for key, out in (("ipackets", "rx"), ("opackets", "tx"), ("obytes", "txb")):
            d = [rate(e0[p], e1[p], key) for p in (0, 1)]
            res[f"{out}_packets"] = sum(x[0] for x in d)
            res[f"{out}_pps"] = sum(x[1] for x in d)
        res["tx_bits_per_s"] = res.pop("txb_pps") * 8
        res.pop("txb_packets")
        res["drops"] = sum(e1[p][1][k] - e0[p][1][k] for p in (0, 1)
                           for k in ("imissed", "ierrors", "oerrors", "rx_nombuf"))
        res["ports"] = {str(p): {"rx_packets": rate(e0[p], e1[p], "ipackets")[1],
                                 "tx_packets": rate(e0[p], e1[p], "opackets")[1]}
                        for p in (0, 1)}
        return res

    def after_stop(self, res):
        with open(self.logpath, errors="replace") as f:
            m = re.search(r"TSC frequency is ~(\d+) KHz", f.read())
        res["tsc_hz_dpdk"] = int(m.group(1)) * 1000 if m else None

    def describe_cmd(self):
        return {"argv": self.cmd}


# ---------------------------------------------------------------------------------------------
# Main


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="Packets per second per worker: shortpathd vs dpdk-testpmd io and macswap "
                    "on the same net_pcap ports and traffic, measured one after the other.")
    ap.add_argument("--seconds", type=float, default=10.0,
                    help="measuring window per program (default 10)")
    ap.add_argument("--warmup", type=float, default=1.0,
                    help="seconds of traffic before the window opens (default 1)")
    ap.add_argument("--burst", type=int, default=32,
                    help="rx burst size for every program, 1..512 (default 32)")
    ap.add_argument("--mix", choices=("small", "imix", "large"), default="imix",
                    help="traffic mix (default imix)")
    ap.add_argument("--frames", type=int, default=1024,
                    help="distinct frames replayed per port (default 1024)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="run the three programs this many times, rotating the order; the "
                         "summary is the median (default 1)")
    ap.add_argument("--seed", default="1", help="traffic generator seed (default 1)")
    ap.add_argument("--json", action="store_true",
                    help="print one JSON document on stdout (progress still goes to stderr)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary directory (pcaps, config, logs) for inspection")
    ap.add_argument("--shortpathd", default=SHORTPATHD, help=f"default {SHORTPATHD}")
    ap.add_argument("--testpmd", default=TESTPMD, help=f"default {TESTPMD}")
    args = ap.parse_args(argv)
    if not 1 <= args.burst <= 512:
        ap.error("--burst must be 1..512")
    if args.seconds <= 0 or args.warmup < 0 or args.rounds < 1 or args.frames < 16:
        ap.error("--seconds > 0, --warmup >= 0, --rounds >= 1, --frames >= 16")
    for path in (args.shortpathd, args.testpmd):
        if not os.access(path, os.X_OK):
            ap.error(f"{path}: not an executable (build with: ninja -C build)")
    return args


def one_run(name, tmpdir, prefix, args):
    if name == "shortpathd":
        run = ShortpathdRun(name, tmpdir, prefix, args)
    else:
        run = TestpmdRun(name, tmpdir, prefix, args, name.split("-", 1)[1])
    res = {"program": name, "ok": False, "file_prefix": prefix}
    try:
        log(f"{name}: starting")
        run.start()
        res["command"] = run.describe_cmd()
        if name == "shortpathd":
            res["eal_args"] = run.tel("/eal/params")
        res.update(run.measure(args.seconds, args.warmup))
        res["workers"] = run.workers
        res["rx_pps_per_worker"] = res["rx_pps"] / run.workers
        res["tx_pps_per_worker"] = res["tx_pps"] / run.workers
        res["ok"] = res["tx_packets"] > 0 and res["rx_packets"] > 0
        if not res["ok"]:
            res["error"] = "forwarded nothing in the window"
        log(f"{name}: rx {res['rx_pps'] / 1e6:.3f} Mpps, tx {res['tx_pps'] / 1e6:.3f} Mpps"
            + (f", forwarding thread on CPU {res['worker_cpu_share']:.1%} of the window"
               if "worker_cpu_share" in res else "")
            + (f", waiting for a CPU {res['worker_runqueue_wait_share']:.1%}"
               if "worker_runqueue_wait_share" in res else "")
            + "".join(f"; {c} busy {v['busy']:.0%} steal {v['steal']:.0%}"
                      for c, v in sorted(res.get("cpus", {}).items())))
    except Interrupted:
        raise
    except Exception as e:  # noqa: BLE001 - a failed run is reported, the others still run
        res["error"] = f"{type(e).__name__}: {e}"
        res.setdefault("command", run.describe_cmd() if run.cmd else None)
        log(f"{name}: FAILED: {res['error']}")
    finally:
        # a second Ctrl-C must not leave the program running: hold signals until it is stopped
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            res["exit_code"] = run.stop()
            if run.proc is not None:
                try:
                    run.after_stop(res)
                except OSError:
                    pass
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
    return res


def summarize(runs):
    """Medians per program over the rounds, ratios, TSC."""
    summary = {}
    for name in PROGRAMS:
        ok = [r for r in runs if r["program"] == name and r["ok"]]
        if not ok:
            continue
        med = {k: statistics.median(r[k] for r in ok)
               for k in ("rx_pps", "tx_pps", "rx_pps_per_worker", "tx_pps_per_worker",
                         "tx_bits_per_s", "drops")}
        med["workers"] = ok[0]["workers"]
        med["rounds"] = len(ok)
        med["tx_pps_per_worker_min"] = min(r["tx_pps_per_worker"] for r in ok)
        med["tx_pps_per_worker_max"] = max(r["tx_pps_per_worker"] for r in ok)
        shares = [r["worker_cpu_share"] for r in ok if "worker_cpu_share" in r]
        med["worker_cpu_share_min"] = min(shares) if shares else None
        med["worker_cpu_share"] = statistics.median(shares) if shares else None
        per_cpu = [r["tx_pps_per_worker_cpu_s"] for r in ok if "tx_pps_per_worker_cpu_s" in r]
        med["tx_pps_per_worker_cpu_s"] = statistics.median(per_cpu) if per_cpu else None
        if name == "shortpathd":
            for k in ("busy_cycles_per_packet", "busy_share", "tsc_hz_measured"):
                vals = [r[k] for r in ok if r.get(k) is not None]
                med[k] = statistics.median(vals) if vals else None
        summary[name] = med
    tsc_dpdk = next((r.get("tsc_hz_dpdk") for r in runs if r.get("tsc_hz_dpdk")), None)
    tsc_meas = summary.get("shortpathd", {}).get("tsc_hz_measured")
    tsc = tsc_meas or tsc_dpdk
    for name, med in summary.items():
        # TSC cycles the forwarding thread spent on a CPU per received packet
        cyc = [tsc * r.get("worker_cpu_share", 1.0) / r["rx_pps_per_worker"]
               for r in runs if r["program"] == name and r["ok"]] if tsc else []
        med["cycles_per_packet"] = statistics.median(cyc) if cyc else None
    ratios, ratios_cpu = {}, {}
    sp = summary.get("shortpathd")
    for other in ("testpmd-io", "testpmd-macswap"):
        if sp and other in summary:
            o = summary[other]
            ratios[f"shortpathd/{other}"] = sp["tx_pps_per_worker"] / o["tx_pps_per_worker"]
            if sp["tx_pps_per_worker_cpu_s"] and o["tx_pps_per_worker_cpu_s"]:
                ratios_cpu[f"shortpathd/{other}"] = (sp["tx_pps_per_worker_cpu_s"]
                                                     / o["tx_pps_per_worker_cpu_s"])
    return {"per_program": summary, "ratios": ratios, "ratios_per_cpu_s": ratios_cpu,
            "tsc_hz": {"measured": tsc_meas, "dpdk_estimate": tsc_dpdk, "used": tsc}}


def print_report(doc):
    cfg, summ = doc["config"], doc["summary"]
    t = doc["traffic"]
    print(f"fwd_bench: mix {cfg['mix']} — vm port {t['vm']['frames']} frames avg "
          f"{t['vm']['avg_bytes']:.0f} B, uplink port {t['uplink']['frames']} frames avg "
          f"{t['uplink']['avg_bytes']:.0f} B ({t['uplink']['bcast_mcast_share']:.1%} "
          f"broadcast/multicast); burst {cfg['burst']}; window {cfg['seconds']:g} s after "
          f"{cfg['warmup']:g} s warm-up; {cfg['rounds']} round(s), median shown")
    print()
    hdr = (f"{'program':<17}{'workers':>8}{'rx Mpps':>9}{'tx Mpps':>9}{'tx Mpps/wkr':>12}"
           f"{'tx Gbit/s':>10}{'drops':>7}{'cyc/pkt':>8}{'wkr CPU':>8}{'tx Mpps/CPU-s':>14}"
           f"{'spread':>8}")
    print(hdr)
    print("-" * len(hdr))
    for name in PROGRAMS:
        m = summ["per_program"].get(name)
        if m is None:
            print(f"{name:<17}{'FAILED':>8}")
            continue
        spread = (m["tx_pps_per_worker_max"] - m["tx_pps_per_worker_min"]) / m[
            "tx_pps_per_worker"]
        cpu = f"{m['worker_cpu_share_min']:.0%}" if m["worker_cpu_share_min"] is not None \
            else "?"
        cyc = f"{m['cycles_per_packet']:.0f}" if m["cycles_per_packet"] else "?"
        per_cpu = f"{m['tx_pps_per_worker_cpu_s'] / 1e6:.3f}" if m["tx_pps_per_worker_cpu_s"] \
            else "?"
        print(f"{name:<17}{m['workers']:>8}{m['rx_pps'] / 1e6:>9.3f}{m['tx_pps'] / 1e6:>9.3f}"
              f"{m['tx_pps_per_worker'] / 1e6:>12.3f}{m['tx_bits_per_s'] / 1e9:>10.2f}"
              f"{m['drops']:>7.0f}{cyc:>8}{cpu:>8}{per_cpu:>14}{spread:>8.1%}")
    print()
    for k, v in summ["ratios"].items():
        v2 = summ["ratios_per_cpu_s"].get(k)
        print(f"forwarded (tx) pps per worker, {k.replace('/', ' / ')}: {v:.3f}"
              + (f"   (per CPU-second of the worker thread: {v2:.3f})" if v2 else ""))
    per = summ["per_program"]
    io = per.get("testpmd-io", {}).get("cycles_per_packet")
    if io:
        extra = [f"{n} {per[n]['cycles_per_packet'] - io:+.0f}" for n in PROGRAMS
                 if n != "testpmd-io" and per.get(n, {}).get("cycles_per_packet")]
        print(f"cycles per packet above testpmd-io ({io:.0f}, which is mostly the ports' own "
              f"cost: net_pcap copies every frame into a new mbuf): " + ", ".join(extra))
    sp = per.get("shortpathd")
    if sp and sp.get("busy_cycles_per_packet"):
        print(f"shortpathd busy cycles per packet: {sp['busy_cycles_per_packet']:.1f} "
              f"(/shortpath/lcores busy_cycles / rx_packets over the window; busy "
              f"{sp['busy_share']:.1%} of the worker's cycles; TSC cycles of wall time, so "
              "they include any time the thread was not on a CPU)")
    tsc = summ["tsc_hz"]
    parts = []
    if tsc["measured"]:
        parts.append(f"{tsc['measured'] / 1e6:.1f} MHz measured (shortpathd busy+idle cycles "
                     "over the window)")
    if tsc["dpdk_estimate"]:
        parts.append(f"{tsc['dpdk_estimate'] / 1e6:.1f} MHz DPDK's estimate (EAL log)")
    print("TSC: " + ("; ".join(parts) if parts else "unknown"))
    print("cyc/pkt = TSC Hz x wkr CPU / rx pps per worker; wkr CPU = CPU time of the "
          "forwarding lcore's thread / window,\n  lowest round (< 100%: something else ran on "
          "that core, and the wall-clock figures are low); tx Mpps/CPU-s = tx pps per worker / "
          "wkr CPU;\n  spread = (max - min) / median of tx pps per worker over the rounds; "
          "Gbit/s counts Ethernet frames without FCS")
    for r in doc["runs"]:
        if r.get("disturbed"):
            print(f"WARNING: {r['program']} (round {r['round']}) may be disturbed: "
                  + "; ".join(r["disturbed"]))
    for r in doc["runs"]:
        if not r["ok"]:
            print(f"FAILED: {r['program']} (round {r['round']}): {r.get('error')}")
    print()
    print("command lines (pcaps, config and logs live in a temporary directory that is removed "
          "afterwards; --keep keeps it):")
    shown = set()
    for r in doc["runs"]:
        if r["program"] in shown or not r.get("command"):
            continue
        shown.add(r["program"])
        print(f"  {r['program']}: {shlex.join(r['command']['argv'])}")
        if r.get("eal_args"):
            print(f"    (EAL arguments it generated: {shlex.join(r['eal_args'])})")
        if r["command"].get("config"):
            print("    config:")
            for line in r["command"]["config"].splitlines():
                print(f"      {line}")


def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    if os.geteuid() != 0:
        log("warning: not root; DPDK may fail to start")
    tmpdir = tempfile.mkdtemp(prefix="fwd-bench-")
    runs = []
    prefixes = []
    others = set()
    try:
        log(f"generating {args.mix} traffic ({args.frames} frames per port) in {tmpdir}")
        traffic = {}
        args.pcaps = []
        for side in ("vm", "uplink"):
            frames = make_frames(args.mix, side, args.frames, args.seed)
            path = os.path.join(tmpdir, f"{side}.pcap")
            write_pcap(path, frames)
            args.pcaps.append(path)
            traffic[side] = describe(frames)
        for rnd in range(args.rounds):
            order = PROGRAMS[rnd % 3:] + PROGRAMS[:rnd % 3]
            for name in order:
                tag = {"shortpathd": "sp", "testpmd-io": "io", "testpmd-macswap": "mac"}[name]
                prefix = f"fwdb-{os.getpid()}-{rnd}-{tag}"
                prefixes.append(prefix)
                res = one_run(name, tmpdir, prefix, args)
                others.update(tuple(x) for x in res.get("other_dpdk_processes", []))
                res["round"] = rnd + 1
                runs.append(res)
        args_d = {k: v for k, v in vars(args).items() if k not in ("pcaps", "json", "keep")}
        doc = {"config": args_d, "eal": EAL_COMMON, "traffic": traffic, "runs": runs,
               "summary": summarize(runs), "tmpdir": tmpdir,
               "file_prefixes": prefixes,
               "other_dpdk_processes": sorted(others)}
        ok = all(r["ok"] for r in runs) and len(doc["summary"]["per_program"]) == 3
        doc["ok"] = ok
        if args.json:
            print(json.dumps(doc, indent=2))
        else:
            print_report(doc)
        return 0 if ok else 1
    except Interrupted as e:
        signum = e.args[0]
        log(f"interrupted ({signal.Signals(signum).name}): cleaning up")
        return 128 + signum
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # no second interrupt in the middle of it
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for p in prefixes:
            shutil.rmtree(os.path.join(RUNTIME, p), ignore_errors=True)
        if args.keep:
            log(f"kept {tmpdir}")
        else:
            shutil.rmtree(tmpdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
