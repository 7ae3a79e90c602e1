"""The worker's TCP endpoint for direct services (dataplane/sp_tcp_ep.c, sp_flow.c), frame by frame.

shortpathd attaches two veth pairs with net_pcap (one VM port, the uplink) in a private network
namespace of the test's (tcpkit.Net, names "tep*"); the test plays the VM's TCP stack on one and
the backends (the service's VIP, the storage nodes) on the other, through AF_PACKET sockets, with
frames built and checked field by field with struct (tcpkit.py, independent of shortpath's code):
headers, options, payload, checksums. A fake storage manager (HTTP on 127.0.0.1) answers the
locator resolver's /locate and /place.

Every test ends with lab.finish(): nothing unexpected on either wire, every frame either side sent
or received accounted for by the port counters, no flow left, the TCP event counters exactly as
the scenario implies (any other one non-zero fails), then SIGTERM: exit 0 and every mbuf back in
the pool.
"""
import hashlib
import hmac
import json
import os
import re
import shutil
import struct
import tempfile
import threading
import time
import urllib.request

import pytest

import tcpkit as tk
from sphelpers import (Daemon, base_config, free_tcp_port, pool_in_use_after_close, telemetry,
                       wait_for)
from sphelpers import new_redis as sp_new_redis

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (netns, veth, DPDK)")

VM_MAC, GW_MAC = "02:00:00:00:00:01", "02:00:00:00:00:fe"
VM2_MAC, VM2_IP = "02:00:00:00:00:02", "10.98.0.12"   # a second VM port (Lab(vm2=True))
VM_IP, VIP, NODE1, NODE2 = "10.98.0.11", "10.98.1.10", "10.98.2.51", "10.98.2.52"
KEY_ID = "nodemgr"
SECRET = bytes.fromhex("5e" * 16 + "a7" * 16)
CLAMP = 1500 - 40          # the uplink's MTU - 40: the MSS of every SYN-ACK
FLOW_BUFFER = 16384        # [dataplane] flow_buffer default
OUR_WS = 7                 # SP_FLOW_OUR_WSCALE
LOCATOR_DEFAULTS = ("ttl_s = 60\ntimeout_ms = 1000\nmax_inflight = 256\nprefetch_next = 2\n"
                    "prefetch_listing = 100\n")


def u32(x):
    return x & 0xffffffff


def flow_list(doc):
    """The flows of a /shortpath/flows answer: "live", "shown" and the flows by id."""
    return [v for v in doc.values() if isinstance(v, dict)]


# ---- shortpathd on the veths, with a service and a fake storage manager -----------------------

class Lab:
    """One shortpathd (VM port + uplink on net_pcap live interfaces), its Redis, the fake storage
    manager and one direct service "tep" at VIP:80; vm and up are the test's wires."""

    def __init__(self, cleanup, name, dataplane="", locators=None,
                 enhanced=("GET", "HEAD", "PUT", "DELETE"), auth="none", extra_config="",
                 vm2=False):
        self.net = tk.Net(roles=("vm", "up", "w") if vm2 else ("vm", "up"))
        cleanup(self.net.close)
        self.net.setup()
        self.redis = sp_new_redis(cleanup).start()
        self.mgr = tk.FakeManager()
        cleanup(self.mgr.close)
        self.dir = tempfile.mkdtemp(prefix="sptest-tep-")
        cleanup(lambda: shutil.rmtree(self.dir, ignore_errors=True))
        self.keys = os.path.join(self.dir, "node.keys")
        with open(os.open(self.keys, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write(f"# node-manager keys\n{KEY_ID} {SECRET.hex()}\n")
        self.prefix = f"tep-{name}-{os.getpid()}"[:31]
        self.api_port = free_tcp_port()
        if locators is None:  # the documented defaults, explicitly (see test_locator_defaults)
            locators = LOCATOR_DEFAULTS
        config = base_config(self.prefix, self.api_port, self.redis.address) + dataplane + \
            extra_config + f"""
[locators]
{locators}

[keys]
node_keys = {self.keys}

[port.vm]
device = net_pcap0,iface={self.net.dev("vm")}
role = vm
mac = {VM_MAC}

[port.uplink]
device = net_pcap1,iface={self.net.dev("up")}
role = uplink
""" + (f"""
[port.vm2]
device = net_pcap2,iface={self.net.dev("w")}
role = vm
mac = {VM2_MAC}
""" if vm2 else "")
        self.daemon = Daemon(config, f"tep-{name}")
        cleanup(lambda: shutil.rmtree(self.daemon.dir, ignore_errors=True))  # after close
        cleanup(self.daemon.close)
        self.daemon.start(ready_prefix=self.prefix, api_port=self.api_port)
        self.vm = self.net.wire("vm")
        self.up = self.net.wire("up")
        self.vm2 = self.net.wire("w") if vm2 else None
        self.want = {}  # the TCP events the scenario implies so far
        if enhanced is not None:
            self.service(enhanced, auth=auth)

    def api(self, method, path, doc=None):
        """The management API's JSON answer (raises urllib's HTTPError on 4xx/5xx)."""
        body = json.dumps(doc).encode() if doc is not None else None
        req = urllib.request.Request(f"http://127.0.0.1:{self.api_port}{path}", data=body,
                                     method=method)
        with urllib.request.urlopen(req, timeout=5) as r:
            return json.loads(r.read() or b"null")

    def service(self, enhanced, name="tep", auth="none"):
        doc = self.api("PUT", f"/v1/services/{name}",
                       {"vip": VIP, "port": 80, "enhanced": list(enhanced),
                        "storage_manager": self.mgr.address, "node_key_id": KEY_ID,
                        "auth": auth})
        assert doc["path"] == "direct", doc

    # telemetry
    def stats(self):
        return telemetry(self.prefix, "/shortpath/stats")

    def tcp(self):
        return {k[4:]: v for k, v in self.stats().items() if k.startswith("tcp_")}

    def flows(self):
        return telemetry(self.prefix, "/shortpath/flows")

    def port(self, name):
        return telemetry(self.prefix, f"/shortpath/ports,{name}")

    def event(self, **n):
        """The scenario implies these TCP events (added up)."""
        for k, v in n.items():
            self.want[k] = self.want.get(k, 0) + v

    def check_tcp(self, timeout=3.0):
        """The TCP event counters are exactly self.want (absent = 0)."""
        def same():
            got = {k: v for k, v in self.tcp().items() if v}
            want = {k: v for k, v in self.want.items() if v}
            return got == want or (False, got, want)
        try:
            wait_for(lambda: same() is True, timeout, what="TCP counters")
        except TimeoutError:
            got = {k: v for k, v in self.tcp().items() if v}
            want = {k: v for k, v in self.want.items() if v}
            diff = {k: (got.get(k, 0), want.get(k, 0)) for k in set(got) | set(want)
                    if got.get(k, 0) != want.get(k, 0)}
            raise AssertionError(f"TCP counters (got, want): {diff}") from None

    def check_flow(self, **want):
        """The one live flow, as /shortpath/flows shows it, has these fields. (If the listing
        is missing although a flow is live, test_flows_telemetry fails; here only the live
        count is checked then.)"""
        fl = self.flows()
        assert fl["live"] == 1, fl
        if flow_list(fl):
            f = flow_list(fl)[0]
            assert {k: f.get(k) for k in want} == want, f
            return f
        return None

    def wait_no_flows(self, timeout=5.0):
        wait_for(lambda: self.stats()["flows"] == 0 and self.flows()["live"] == 0, timeout,
                 what="no live flow")

    def finish(self, quiet=0.3, counters=True):
        """End of a test: nothing stray on the wires, every frame accounted for, no flow or
        buffer left, counters as implied, then an orderly stop with every mbuf back."""
        self.vm.check_quiet(quiet)
        self.up.check_quiet(0.05)
        if self.vm2:
            self.vm2.check_quiet(0.05)
        self.wait_no_flows()
        s = self.stats()
        assert s["flow_buffers"] == 0, s
        wires = [("vm", self.vm), ("uplink", self.up)] + ([("vm2", self.vm2)] if self.vm2 else [])
        for name, wire in wires:
            p = self.port(name)
            assert p["rx_packets"] == wire.sent, (name, p, wire.sent)
            assert p["tx_packets"] == wire.received, (name, p, wire.received)
            assert p["rx_missed"] == 0 and p["tx_errors"] == 0, (name, p)
        assert all(v == 0 for k, v in s.items() if k.startswith("drop_")), s
        if counters:
            self.check_tcp()
        rc, log = self.daemon.stop()
        assert rc == 0, log
        assert pool_in_use_after_close(log) == 0, log


# ---- the test's TCP peers ------------------------------------------------------------------------

def check_built(seg, *, src_mac, dst_mac, src, dst, sport, dport, seq, ack, flags, win,
                options=b"", payload=b""):
    """seg is a frame shortpath made itself (sp_flow_send), exactly: every header field."""
    assert seg.is_tcp, seg
    got = dict(src_mac=seg.src_mac, dst_mac=seg.dst_mac, ver_ihl=seg.ver_ihl, tos=seg.tos,
               ip_len=seg.ip_len, frag=seg.frag, ttl=seg.ttl, proto=seg.proto, src=seg.src,
               dst=seg.dst, sport=seg.sport, dport=seg.dport, seq=seg.seq, ack=seg.ack,
               doff=seg.doff, reserved=seg.reserved, flags=tk.flag_str(seg.flags),
               urp=seg.urp, options=seg.options.hex(), payload=seg.payload, trailer=seg.trailer,
               ip_csum_ok=seg.ip_csum_ok, tcp_csum_ok=seg.tcp_csum_ok)
    want = dict(src_mac=src_mac, dst_mac=dst_mac, ver_ihl=0x45, tos=0,
                ip_len=40 + len(options) + len(payload), frag=0x4000, ttl=64, proto=6, src=src,
                dst=dst, sport=sport, dport=dport, seq=u32(seq), ack=u32(ack),
                doff=(20 + len(options)) // 4, reserved=0,
                flags=tk.flag_str(tk.flags_of(flags)), urp=0, options=options.hex(),
                payload=payload, trailer=b"", ip_csum_ok=True, tcp_csum_ok=True)
    if win is not None:
        got["win"], want["win"] = seg.win, win
    diff = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
    assert not diff, f"{seg}: (got, want) {diff}"
    return seg


def same_frame(got, want):
    """A translated frame is exactly want (checksums may differ only as the two representations
    of the same one's complement sum, and must verify)."""
    if got.raw == want:
        return got
    w = tk.Seg(want)
    assert got.is_tcp and w.is_tcp, (got, w)
    assert got.ip_csum_ok and got.tcp_csum_ok, f"bad checksum: {got}"

    def blank(s):
        b = bytearray(s.raw)
        b[24:26] = b"\0\0"
        ihl = (s.ver_ihl & 15) * 4
        b[14 + ihl + 16:14 + ihl + 18] = b"\0\0"
        return bytes(b)
    if blank(got) == blank(w):
        return got
    fields = ("src_mac", "dst_mac", "ip_len", "ip_id", "frag", "ttl", "src", "dst", "sport",
              "dport", "seq", "ack", "doff", "flags", "win", "urp", "options", "payload")
    diff = {f: (getattr(got, f), getattr(w, f)) for f in fields
            if getattr(got, f) != getattr(w, f)}
    raise AssertionError(f"translated frame differs (got, want): {diff}\n got {got}\nwant {w}")


class Client:
    """One connection of the VM to VIP:80, played by the test (seq numbers in the VM's space)."""

    def __init__(self, lab, sport, isn, mss=1460, ws=7, sack=True, ts=True, win=64240,
                 wire=None, mac=VM_MAC, ip=VM_IP):
        self.lab, self.sport, self.isn = lab, sport, u32(isn)
        self.wire = lab.vm if wire is None else wire   # the VM's port (its veth)
        self.mac, self.ip = mac, ip
        self.mss, self.ws = mss, ws
        self.syn_opts = tk.opts(mss=mss, ws=ws, sack=sack, ts=1000 if ts else None)
        self.syn_win = win
        self.wfield = win >> ws if ws is not None else win  # its window field after the SYN
        self.nxt = u32(isn + 1)   # its next byte
        self.cookie = None
        self.cookie_mss = cookie_mss(mss)  # the MSS the cookie keeps (the backend SYN's)
        self.rcv = 0              # bytes it received from "the service"
        self.held = 0             # bytes shortpath holds (acknowledged before the bind)

    def frame(self, flags, payload=b"", seq=None, ack=None, win=None, **kw):
        return tk.tcp_frame(self.mac, GW_MAC, self.ip, VIP, self.sport, 80,
                            seq=self.nxt if seq is None else seq,
                            ack=self.rcv_nxt if ack is None else ack, flags=flags,
                            win=self.wfield if win is None else win, payload=payload, **kw)

    @property
    def rcv_nxt(self):
        return u32(self.cookie + 1 + self.rcv)

    def ours(self, s):
        return s.is_tcp and s.dport == self.sport and s.sport == 80 and s.src == VIP

    def syn(self):
        """SYN; the SYN-ACK is checked exactly (cookie kept)."""
        self.wire.send(tk.tcp_frame(self.mac, GW_MAC, self.ip, VIP, self.sport, 80, seq=self.isn,
                                      flags="S", win=self.syn_win, options=self.syn_opts))
        sa = self.wire.expect(lambda s: self.ours(s) and s.has("S"), what="SYN-ACK")
        opts = struct.pack("!BBH", 2, 4, CLAMP) + (
            struct.pack("!BBBB", 1, 3, 3, OUR_WS) if self.ws is not None else b"")
        check_built(sa, src_mac=GW_MAC, dst_mac=self.mac, src=VIP, dst=self.ip, sport=80,
                    dport=self.sport, seq=sa.seq, ack=self.isn + 1, flags="SA",
                    win=min(self.lab.flow_buffer, 65535), options=opts)
        self.cookie = sa.seq
        return sa

    def ack(self):
        self.wire.send(self.frame("A", seq=u32(self.isn + 1), ack=u32(self.cookie + 1)))

    def connect(self):
        self.syn()
        self.ack()
        return self

    def open(self, data):
        """Handshake, then data held by shortpath (its ACK checked)."""
        self.connect()
        return self.send_held(data)

    def send(self, data, flags="PA", **kw):
        f = self.frame(flags, data, **kw)
        self.wire.send(f)
        self.nxt = u32(self.nxt + len(data) + (1 if "F" in flags else 0))
        return f

    def expect(self, pred=None, timeout=3.0, what="a segment"):
        return self.wire.expect(lambda s: self.ours(s) and (pred is None or pred(s)), timeout,
                                  what)

    def hold_win(self):
        free = self.lab.flow_buffer - self.held
        return min(free >> OUR_WS if self.ws is not None else free, 65535)

    def send_answered(self, data, flags="PA"):
        """Data shortpath may answer at once (a refusal by the worker, a cache hit): then the
        answer carries the ACK and is left for the caller to read; else (a punted request) a
        plain ACK comes first, checked exactly as send_held checks it."""
        self.send(data, flags)
        self.held += len(data)
        a = self.expect(lambda s: s.ack == self.nxt, what=f"ACK of {self.nxt}")
        if a.payload or a.has("F"):
            self.wire.backlog.insert(0, a.raw)
            return a
        return check_built(a, src_mac=GW_MAC, dst_mac=self.mac, src=VIP, dst=self.ip, sport=80,
                           dport=self.sport, seq=self.cookie + 1, ack=self.nxt, flags="A",
                           win=self.hold_win())

    def send_held(self, data, flags="PA"):
        """Data shortpath takes into its buffer: its ACK is checked exactly."""
        self.send(data, flags)
        self.held += len(data)
        a = self.expect(lambda s: s.ack == self.nxt, what=f"ACK of {self.nxt}")
        return check_built(a, src_mac=GW_MAC, dst_mac=self.mac, src=VIP, dst=self.ip, sport=80,
                           dport=self.sport, seq=self.cookie + 1, ack=self.nxt, flags="A",
                           win=self.hold_win())


class Backend:
    """The other end of a bound connection (the VIP or a storage node), on the uplink wire."""

    def __init__(self, lab, client, ip, port, isn, mss=1460, ws=9, win=29200):
        self.lab, self.c, self.ip, self.port = lab, client, ip, port
        self.isn, self.mss, self.ws, self.win = u32(isn), mss, ws, win
        self.nxt = u32(isn + 1)
        self.got = b""            # bytes received (in order)
        self.rcv_nxt = None       # its next expected byte (backend space)
        self.ident = 4000

    def ours(self, s):
        return (s.is_tcp and s.dst == self.ip and s.dport == self.port and s.src == self.c.ip and
                s.sport == self.c.sport)

    def expect(self, pred=None, timeout=3.0, what="a segment"):
        return self.lab.up.expect(lambda s: self.ours(s) and (pred is None or pred(s)), timeout,
                                  what)

    def expect_syn(self, timeout=3.0):
        """shortpath's SYN on the VM's behalf: the VM's addresses, ISN and the cookie's options."""
        s = self.expect(lambda s: s.has("S"), timeout, "backend SYN")
        opts = struct.pack("!BBH", 2, 4, self.c.cookie_mss) + (
            struct.pack("!BBBB", 1, 3, 3, min(self.c.ws, 14)) if self.c.ws is not None else b"")
        check_built(s, src_mac=self.c.mac, dst_mac=GW_MAC, src=self.c.ip, dst=self.ip,
                    sport=self.c.sport, dport=self.port, seq=self.c.isn, ack=0, flags="S",
                    win=None, options=opts)
        self.rcv_nxt = u32(self.c.isn + 1)
        return s

    def frame(self, flags, payload=b"", seq=None, ack=None, win=None, options=b"", ttl=61):
        self.ident += 1
        return tk.tcp_frame(GW_MAC, self.c.mac, self.ip, self.c.ip, self.port, self.c.sport,
                            seq=self.nxt if seq is None else seq,
                            ack=self.rcv_nxt if ack is None else ack, flags=flags,
                            win=self.win if win is None else win, options=options,
                            payload=payload, ttl=ttl, ident=self.ident)

    def synack(self, options=None):
        o = tk.opts(mss=self.mss, ws=self.ws) if options is None else options
        self.lab.up.send(self.frame("SA", seq=self.isn, ack=u32(self.c.isn + 1), options=o))

    def vm_window(self):
        """The window field shortpath sends the backend for the VM: the VM's own field, or its
        bytes (capped) when the VM scales and this backend did not agree to (RFC 7323)."""
        if self.c.ws is not None and self.ws is None:
            return min(self.c.wfield << min(self.c.ws, 14), 65535)
        return self.c.wfield

    def expect_handshake_ack(self):
        a = self.expect(lambda s: not s.payload and s.ack == u32(self.isn + 1), what="ACK")
        return check_built(a, src_mac=self.c.mac, dst_mac=GW_MAC, src=self.c.ip, dst=self.ip,
                           sport=self.c.sport, dport=self.port, seq=self.c.isn + 1,
                           ack=self.isn + 1, flags="A", win=self.vm_window())

    def expect_data(self, n, max_seg=None, timeout=3.0):
        """n more bytes shortpath sends itself (held bytes): in order, each segment exact."""
        want_end = len(self.got) + n
        while len(self.got) < want_end:
            s = self.expect(lambda s: s.payload and s.seq == self.rcv_nxt, timeout,
                            f"data at {self.rcv_nxt}")
            last = len(self.got) + len(s.payload) == want_end
            check_built(s, src_mac=self.c.mac, dst_mac=GW_MAC, src=self.c.ip, dst=self.ip,
                        sport=self.c.sport, dport=self.port, seq=self.rcv_nxt,
                        ack=self.isn + 1 + self.c.rcv, flags="PA" if last else "A",
                        win=self.vm_window(), payload=s.payload)
            if max_seg is not None:
                assert len(s.payload) <= max_seg, s
            self.got += s.payload
            self.rcv_nxt = u32(self.rcv_nxt + len(s.payload))
        assert len(self.got) == want_end
        return self.got[-n:]

    def send(self, payload=b"", flags="PA", **kw):
        f = self.frame(flags, payload, **kw)
        self.lab.up.send(f)
        self.nxt = u32(self.nxt + len(payload) + (1 if "F" in flags else 0))
        return f


class Splice:
    """A bound connection: checks the exact translation of every segment both ways.
    delta_c: backend seq - VM seq (the bytes a rewritten head added); delta_s: VM-side seq -
    backend seq (cookie - backend ISN); the window toward the VM rescaled to OUR_WS."""

    def __init__(self, c, be, delta_c=0):
        self.c, self.be, self.delta_c = c, be, delta_c
        self.delta_s = u32(c.cookie - be.isn)
        self.vm_ack_be = None

    def vm_win(self, be_field):
        if self.c.ws is None:
            return be_field
        be_ws = min(self.be.ws, 14) if self.be.ws is not None else 0
        return min((be_field << be_ws) >> OUR_WS, 65535)

    def from_be(self, payload=b"", flags="PA", win=None, ack=None, vm_ack=None):
        """The backend sends; the VM gets it translated. vm_ack: the ack the VM must see
        (default: the backend's ack - delta_c)."""
        seq = self.be.nxt
        f = self.be.send(payload, flags, win=win, ack=ack)
        w = tk.Seg(f)
        want_ack = u32(w.ack - self.delta_c) if vm_ack is None else vm_ack
        want = tk.tcp_frame(GW_MAC, self.c.mac, VIP, self.c.ip, 80, self.c.sport,
                            seq=u32(seq + self.delta_s), ack=want_ack, flags=flags,
                            win=self.vm_win(w.win), payload=payload, ttl=w.ttl, ident=w.ip_id)
        got = self.c.expect(lambda s: s.seq == u32(seq + self.delta_s) and
                            s.flags == tk.flags_of(flags), what=f"translated {flags}")
        same_frame(got, want)
        self.c.rcv += len(payload) + (1 if "F" in flags else 0)
        self.c.lab.event(spliced_be=1)
        return got

    def translate_vm(self, frame):
        """The frame the backend must get for a VM frame."""
        w = tk.Seg(frame)
        return tk.tcp_frame(self.c.mac, GW_MAC, self.c.ip, self.be.ip, self.c.sport, self.be.port,
                            seq=u32(w.seq + self.delta_c),
                            ack=u32(w.ack - self.delta_s) if w.has("A") else w.ack,
                            flags=w.flags, win=w.win, payload=w.payload, ttl=w.ttl,
                            ident=w.ip_id)

    def from_vm(self, payload=b"", flags="PA", win=None, ack=None):
        """The VM sends; the backend gets it translated."""
        seq = self.c.nxt
        f = self.c.send(payload, flags, win=win, ack=ack)
        w = tk.Seg(f)
        want = tk.tcp_frame(self.c.mac, GW_MAC, self.c.ip, self.be.ip, self.c.sport, self.be.port,
                            seq=u32(seq + self.delta_c),
                            ack=u32(w.ack - self.delta_s) if w.has("A") else w.ack,
                            flags=flags, win=w.win, payload=payload, ttl=w.ttl, ident=w.ip_id)
        got = self.be.expect(lambda s: s.seq == u32(seq + self.delta_c) and
                             s.flags == tk.flags_of(flags), what=f"translated {flags}")
        same_frame(got, want)
        self.be.got += payload
        self.be.rcv_nxt = u32(got.seq + len(payload) + (1 if "F" in flags else 0))
        self.c.lab.event(spliced_vm=1)
        return got


def cookie_mss(mss):
    """The MSS a cookie carries: the VM's (536 if absent), capped at CLAMP, rounded down to the
    table (lib/sp_syncookie.c)."""
    table = (536, 1220, 1300, 1360, 1400, 1440, 1460, 8960)
    m = min(536 if mss is None else mss, CLAMP)
    return max([t for t in table if t <= m] or [536])


def bind(lab, c, be, request, *, chunks=None):
    """Handshake, request held (in chunks), the backend's SYN and SYN-ACK, shortpath's ACK and
    the held bytes: returns the bytes the backend got."""
    c.cookie_mss = cookie_mss(c.mss)
    c.connect()
    for part in chunks or [request]:
        c.send_held(part)
    be.expect_syn()
    be.synack()
    be.expect_handshake_ack()
    return be.expect_data(c.held + getattr(c, "extra", 0))


def node_cred(method, path, text):
    """Checks an X-SP-Node-Auth value made for (method, path) with the key file's secret."""
    m = re.fullmatch(rb"nodemgr:(\d+):([0-9a-f]{64})", text)
    assert m, text
    expires = int(m.group(1))
    now = time.time()
    assert now < expires <= now + 900, (expires, now)
    mac = hmac.new(SECRET, f"{method}\n{path}\n{expires}".encode(), hashlib.sha256).hexdigest()
    assert m.group(2).decode() == mac, (text, mac)
    return text


def rewritten(method, path, head, drop=(b"connection", b"keep-alive", b"x-sp-node-auth")):
    """The head a storage node must get, with the credential as a regex group."""
    lines = head.split(b"\r\n")[1:-2]
    kept = [ln for ln in lines if ln.split(b":", 1)[0].strip().lower() not in drop]
    return (method + b" " + path + b" HTTP/1.1\r\n" + b"".join(ln + b"\r\n" for ln in kept)
            + b"X-SP-Node-Auth: ", b"\r\nConnection: close\r\n\r\n")


def check_node_head(got, method, path, head):
    pre, post = rewritten(method, path, head)
    assert got.startswith(pre) and got.endswith(post), (got, pre, post)
    node_cred(method.decode(), path.decode(), got[len(pre):-len(post)])


@pytest.fixture
def lab_of(cleanup):
    """lab_of(name, **kw) -> a Lab; everything it made is removed after the test."""
    def make(name, flow_buffer=FLOW_BUFFER, **kw):
        lab = Lab(cleanup, name, **kw)
        lab.flow_buffer = flow_buffer
        return lab
    return make


def listing(bucket=b"bkt", extra=b""):
    return (b"GET /" + bucket + b"?list-type=2&prefix=a HTTP/1.1\r\nHost: s3.test\r\n"
            b"User-Agent: tep\r\n" + extra + b"\r\n")


# ---- the handshake -----------------------------------------------------------------------------

def test_handshake_syn_cookies(lab_of):
    """SYN → SYN-ACK from the VIP built by shortpath (MSS = uplink MTU - 40, NOP + WS 7 only
    if the SYN had WS, no SACK-permitted, no timestamps; TTL 64, DF); a retransmitted SYN gets
    the same cookie; no flow before the ACK; nothing reaches the uplink."""
    lab = lab_of("hs")
    a = Client(lab, 41001, isn=0x12345678, mss=1460, ws=7, sack=True, ts=True)
    sa1 = a.syn()
    sa2 = a.syn()  # the VM's SYN again (same ISN): stateless, the same cookie
    assert sa2.seq == sa1.seq
    assert sa2.raw[:18] == sa1.raw[:18] and sa2.raw[20:24] == sa1.raw[20:24] and \
        sa2.raw[26:] == sa1.raw[26:]  # all but the IP id (and so the IP checksum)
    b = Client(lab, 41002, isn=0x9abcdef0, mss=1400, ws=None, sack=True, ts=True)
    b.syn()
    c = Client(lab, 41003, isn=1, mss=None, ws=None, sack=False, ts=False, win=1024)
    c.syn()
    d = Client(lab, 41004, isn=0xffffffff, mss=9000, ws=14, win=65535)
    d.syn()
    assert len({a.cookie, b.cookie, c.cookie, d.cookie}) == 4
    fl = lab.flows()  # (telemetry leaves an empty array out)
    assert lab.stats()["flows"] == 0 and (fl["live"], fl["shown"], flow_list(fl)) == \
        (0, 0, []), fl
    lab.event(syn_rx=5, synack_tx=5)
    lab.finish()


def test_cookie_valid_forged_stale(lab_of):
    """The ACK with the right cookie makes a flow; a forged one and a stale one (older than two
    periods of 1 s) are forwarded to the uplink unchanged, counted; data before the bind is
    held and ACKed with the window = free buffer >> 7; the VM's RST frees the flow."""
    lab = lab_of("ck", flow_buffer=65536,
                 dataplane="flow_buffer = 65536\nsyncookie_period_s = 1\n")
    a = Client(lab, 42001, isn=0x01020304)
    a.syn()  # window = min(flow_buffer, 65535) = 65535
    forged = a.frame("A", seq=a.isn + 1, ack=u32(a.cookie + 1 + 0x100000))
    lab.vm.send(forged)
    lab.up.expect_raw(forged, what="the forged ACK, unchanged")
    lab.event(syn_rx=1, synack_tx=1, cookie_forged=1)
    lab.check_tcp()
    assert lab.stats()["flows"] == 0
    a.ack()
    lab.event(cookie_ok=1)
    lab.check_tcp()
    lab.check_flow(state="head", vm=f"{VM_IP}:42001", vip=f"{VIP}:80", bytes_from_vm=0,
                   target=None)
    assert lab.stats()["flow_buffers"] == 1
    a.send_held(b"GET /b")    # window (65536 - 6) >> 7 = 511
    a.send_held(b"/k HTTP/1.1\r\nHo")
    lab.check_flow(bytes_from_vm=21)
    # a hole: dropped, the ACK repeated; bytes already held: the ACK repeated
    for seq, ev in ((u32(a.nxt + 10), "data_ooo"), (u32(a.nxt - 4), "data_dup")):
        lab.vm.send(a.frame("PA", b"st: x", seq=seq) if ev == "data_ooo" else
                    a.frame("PA", b"\r\nHo", seq=seq))
        r = a.expect(lambda s: s.ack == a.nxt, what=f"the ACK after {ev}")
        check_built(r, src_mac=GW_MAC, dst_mac=VM_MAC, src=VIP, dst=VM_IP, sport=80,
                    dport=a.sport, seq=a.cookie + 1, ack=a.nxt, flags="A", win=a.hold_win())
        lab.event(**{ev: 1})
    lab.check_flow(bytes_from_vm=21)
    lab.vm.send(a.frame("RA"))  # the VM gives up: the flow goes, nothing goes up
    lab.event(vm_rst=1, flow_freed=1)
    lab.wait_no_flows()
    assert lab.stats()["flow_buffers"] == 0

    # the handshake's ACK lost: the first data segment (with the ACK) makes the flow
    d = Client(lab, 42003, isn=0x77)
    d.syn()
    d.send_held(b"GET /b/k HTTP/1.1\r\n")
    lab.check_flow(state="head", bytes_from_vm=19)
    lab.vm.send(d.frame("RA"))
    lab.wait_no_flows()
    lab.event(syn_rx=1, synack_tx=1, cookie_ok=1, vm_rst=1, flow_freed=1)

    b = Client(lab, 42002, isn=0xfffffff0)
    b.syn()
    time.sleep(2.3)  # made 2+ periods ago
    late = b.frame("A", seq=b.isn + 1, ack=u32(b.cookie + 1))
    lab.vm.send(late)
    lab.up.expect_raw(late, what="the stale ACK, unchanged")
    lab.event(syn_rx=1, synack_tx=1, cookie_stale=1)
    lab.finish()


def test_flows_telemetry(lab_of):
    """/shortpath/flows lists every live flow (up to its parameter): worker, state, the VM's and
    the VIP's address, bytes, age."""
    lab = lab_of("fl")
    a = Client(lab, 42101, isn=7).connect()
    b = Client(lab, 42102, isn=8).connect()
    lab.event(syn_rx=2, synack_tx=2, cookie_ok=2)
    lab.check_tcp()
    fl = lab.flows()
    assert fl["live"] == 2 and fl["shown"] == 2, fl
    got = sorted((f["worker"], f["state"], f["vm"], f["vip"], f["bytes_from_vm"])
                 for f in flow_list(fl))
    assert got == [(0, "head", f"{VM_IP}:42101", f"{VIP}:80", 0),
                   (0, "head", f"{VM_IP}:42102", f"{VIP}:80", 0)], fl
    one = telemetry(lab.prefix, "/shortpath/flows,1")
    assert one["live"] == 2 and one["shown"] == 1 and len(flow_list(one)) == 1, one
    for c in (a, b):
        lab.vm.send(c.frame("RA"))
    lab.wait_no_flows()
    lab.event(vm_rst=2, flow_freed=2)
    lab.finish()


# ---- binding to the VIP ------------------------------------------------------------------------

MSS_CASES = [  # the VM's MSS and window scale → what the backend SYN carries
    (None, None), (536, 0), (1219, 7), (1220, 1), (1299, 7), (1300, 2), (1359, 7), (1360, 7),
    (1400, 14), (1439, 7), (1440, 3), (1460, 7), (1461, 7), (8960, 7), (65535, None)]


def test_backend_syn_mss_and_wscale(lab_of):
    """The SYN toward the backend carries the cookie's MSS (the VM's rounded down to the table,
    at most MTU - 40) and the VM's window scale; a RST from the VM while connecting resets the
    backend side (seq = the VM's ISN + 1) and frees the flow."""
    lab = lab_of("mss", enhanced=("GET",))
    for i, (mss, ws) in enumerate(MSS_CASES):
        c = Client(lab, 43100 + i, isn=0x10000000 * i + 77, mss=mss, ws=ws)
        c.cookie_mss = cookie_mss(mss)
        c.connect()
        c.send_held(listing())
        be = Backend(lab, c, VIP, 80, isn=5)
        be.expect_syn()
        lab.vm.send(c.frame("RA"))  # the VM resets while shortpath connects
        r = be.expect(lambda s: s.has("R"), what="RST to the backend")
        check_built(r, src_mac=VM_MAC, dst_mac=GW_MAC, src=VM_IP, dst=VIP, sport=c.sport,
                    dport=80, seq=c.isn + 1, ack=r.ack, flags="RA", win=0)
        lab.wait_no_flows()
    n = len(MSS_CASES)
    lab.event(syn_rx=n, synack_tx=n, cookie_ok=n, requests=n, bind_vip=n, vip_listing=n,
              loc_listing=n, be_syn_tx=n, vm_rst=n, rst_sent=n, flow_freed=n)
    lab.finish()


def test_wscale_above_14_is_taken_as_14(lab_of):
    """RFC 7323 2.3: a shift count above 14 is used as 14. shortpath answers such a SYN with
    its own window scale, so the connection is scaled: the ACKs of held data must carry the
    scaled window and the backend SYN the VM's scale (14)."""
    lab = lab_of("ws15", enhanced=("GET",))
    c = Client(lab, 43201, isn=1000, mss=1460, ws=15, win=65535)
    c.wfield = 1
    c.connect()
    c.send_held(listing())   # the ACK's window: (16384 - held) >> 7
    be = Backend(lab, c, VIP, 80, isn=5)
    be.expect_syn()          # options MSS 1460, NOP, WS 14
    lab.vm.send(c.frame("RA"))
    be.expect(lambda s: s.has("R"), what="RST to the backend")
    lab.event(syn_rx=1, synack_tx=1, cookie_ok=1, requests=1, bind_vip=1, vip_listing=1,
              loc_listing=1, be_syn_tx=1, vm_rst=1, rst_sent=1, flow_freed=1)
    lab.finish()


def test_vip_bind_splice_and_close(lab_of):
    """A listing is not an object operation: shortpath connects to the VIP on the VM's behalf,
    sends the held bytes unchanged, then translates every segment both ways (addresses, ports,
    seq + delta, ack, window rescaled from the backend's scale to 7, checksums); FIN both ways
    closes and the flow is freed ~2 s later. Sequence numbers wrap on both sides."""
    lab = lab_of("vip")
    c = Client(lab, 44001, isn=0xffffff00, win=64240)
    be = Backend(lab, c, VIP, 80, isn=0xfffffff0, mss=1400, ws=9, win=29200)
    req = listing(extra=b"X-Pad: " + b"p" * 300 + b"\r\n")
    got = bind(lab, c, be, req, chunks=[req[:15], req[15:200], req[200:]])
    assert got == req  # delta 0: the held bytes, unchanged
    lab.vm.check_quiet(0.1)
    lab.check_flow(state="splice", target=f"{VIP}:80", target_kind="vip",
                   bytes_from_vm=len(req))
    assert lab.stats()["flow_buffers"] == 1  # until the backend ACKs the held bytes
    sp = Splice(c, be)
    resp = b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: 20\r\n\r\n"
    sp.from_be(resp + b"<ListBucketResult/>\n", win=300)   # (300 << 9) >> 7 = 1200
    assert lab.stats()["flow_buffers"] == 0
    sp.from_vm(b"", "A")                                   # the VM's ACK
    sp.from_be(b"", "A", win=65535)                        # window capped at 65535
    req2 = b"GET /bkt/other HTTP/1.1\r\nHost: s3.test\r\n\r\n"
    sp.from_vm(req2)                                       # keep-alive: spliced as it is
    sp.from_be(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "FPA", win=100)
    lab.check_flow(bytes_from_backend=len(resp) + 20 + 45)
    sp.from_vm(b"", "FA")                                  # both FINs: time_wait
    lab.check_flow(state="time_wait")
    sp.from_be(b"", "A")                                   # the last ACK still translated
    assert lab.stats()["flows"] == 1      # kept a while for late segments
    lab.wait_no_flows(6)
    assert [(p, q.get("bucket")) for p, q in lab.mgr.calls] == [("/list", "bkt")], lab.mgr.calls
    lab.event(syn_rx=1, synack_tx=1, cookie_ok=1, requests=1, bind_vip=1, vip_listing=1,
              loc_listing=1, be_syn_tx=1, mss_mismatch=1, closed=1, flow_freed=1)
    lab.finish()


def test_early_fin_goes_to_vip(lab_of):
    """A FIN before the head is complete: the held bytes and the FIN go to the VIP (the FIN on
    the last segment), and the sequence space counts the FIN on both sides."""
    lab = lab_of("efin")
    c = Client(lab, 44101, isn=0x0fffffff)
    c.connect()
    part = b"GET /b/k HTTP/1.1\r\nHost: s3"
    c.send(part, "FPA")
    c.held += len(part)
    a = c.expect(lambda s: s.ack == c.nxt, what="the ACK of the data and the FIN")
    check_built(a, src_mac=GW_MAC, dst_mac=VM_MAC, src=VIP, dst=VM_IP, sport=80, dport=c.sport,
                seq=c.cookie + 1, ack=c.nxt, flags="A", win=c.hold_win())
    be = Backend(lab, c, VIP, 80, isn=0xffffffff, ws=7)
    be.expect_syn()
    be.synack()
    be.expect_handshake_ack()
    d = be.expect(lambda s: s.payload, what="the held bytes")
    check_built(d, src_mac=VM_MAC, dst_mac=GW_MAC, src=VM_IP, dst=VIP, sport=c.sport, dport=80,
                seq=c.isn + 1, ack=be.isn + 1, flags="FPA", win=c.wfield, payload=part)
    be.rcv_nxt = c.nxt
    sp = Splice(c, be)
    sp.from_be(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", "FPA")
    sp.from_vm(b"", "A")
    lab.wait_no_flows(5)
    lab.event(syn_rx=1, synack_tx=1, cookie_ok=1, bind_vip=1, vip_early_close=1, be_syn_tx=1,
              closed=1, flow_freed=1)
    lab.finish()


def test_port_reuse_after_close(lab_of):
    """The VM closed its side last (the service sent FIN first), so its port is free at once:
    a new SYN from it during shortpath's 2 s time_wait is a new connection (a SYN-ACK with a
    cookie), not a segment of the old one for the old backend."""
    lab = lab_of("reuse")
    c = Client(lab, 44201, isn=1000)
    be = Backend(lab, c, VIP, 80, isn=2000)
    bind(lab, c, be, listing())
    sp = Splice(c, be)
    sp.from_be(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", "FPA")
    sp.from_vm(b"", "FA")
    sp.from_be(b"", "A")
    lab.check_flow(state="time_wait")
    c2 = Client(lab, 44201, isn=900000)   # the same port, a new ISN
    lab.vm.send(tk.tcp_frame(VM_MAC, GW_MAC, VM_IP, VIP, c2.sport, 80, seq=c2.isn, flags="S",
                             win=c2.syn_win, options=c2.syn_opts))
    lab.up.pull(0.3)
    leaked = [tk.Seg(r) for r in lab.up.backlog]
    lab.up.backlog.clear()
    assert not leaked, f"the new SYN went to the old backend: {leaked}"
    sa = c2.expect(lambda s: s.has("S"), what="a SYN-ACK for the new connection")
    c2.cookie = sa.seq
    c2.ack()
    c2.send_held(listing())
    be2 = Backend(lab, c2, VIP, 80, isn=3000)
    be2.expect_syn()
    lab.vm.send(c2.frame("RA"))
    be2.expect(lambda s: s.has("R"))
    lab.wait_no_flows()
    lab.event(syn_rx=2, synack_tx=2, cookie_ok=2, requests=2, bind_vip=2, vip_listing=2,
              loc_listing=2, be_syn_tx=2, closed=1, vm_rst=1, rst_sent=1, flow_freed=2)
    lab.finish()


def test_corrupt_segments_are_not_taken(lab_of):
    """An endpoint verifies the checksums of what it terminates: a SYN with a bad TCP checksum
    gets no SYN-ACK, a data segment with a bad one is neither acknowledged nor held (else the
    corrupted bytes reach the backend later with a fresh, valid checksum)."""
    lab = lab_of("csum")
    problems = []
    c = Client(lab, 55001, isn=5000)
    bad = bytearray(tk.tcp_frame(VM_MAC, GW_MAC, VM_IP, VIP, c.sport, 80, seq=c.isn, flags="S",
                                 win=c.syn_win, options=c.syn_opts))
    bad[50] ^= 0x55                              # the TCP checksum
    lab.vm.send(bytes(bad))
    lab.vm.pull(0.3)
    if lab.vm.backlog:
        problems.append(f"a SYN with a bad checksum was answered: {tk.Seg(lab.vm.backlog[0])}")
        lab.vm.backlog.clear()
    c.connect()
    good = listing()
    corrupt = bytearray(c.frame("PA", good))
    i = bytes(corrupt).index(b"s3.test")
    corrupt[i + 3] ^= 0x20                       # "s3.Test", the checksum of "s3.test"
    lab.vm.send(bytes(corrupt))
    lab.vm.pull(0.3)
    if lab.vm.backlog:
        problems.append(f"a segment with a bad checksum was acknowledged: "
                        f"{tk.Seg(lab.vm.backlog[0])}")
        lab.vm.backlog.clear()
    c.send(good)                                 # the VM sends it again (intact)
    c.held += len(good)
    c.expect(lambda s: s.ack == c.nxt, what="the ACK of the request")
    be = Backend(lab, c, VIP, 80, isn=9)
    be.expect_syn()
    lab.up.pull(0.05)  # (a bind made earlier, on the corrupted copy, may have sent it again)
    lab.up.backlog = [r for r in lab.up.backlog if not tk.Seg(r).has("S")]
    be.synack()
    be.expect_handshake_ack()
    s = be.expect(lambda s: s.payload, what="the request")
    if s.payload != good:
        problems.append(f"the backend got {s.payload!r} (checksum valid: {s.tcp_csum_ok}), "
                        f"the VM sent {good!r}")
    lab.vm.send(c.frame("RA"))
    be.expect(lambda s: s.has("R"))
    lab.wait_no_flows()
    lab.finish(counters=False)
    assert not problems, problems


def test_held_bytes_retransmitted(lab_of):
    """Held bytes the backend does not acknowledge are sent again from its last ACK after
    rto_ms, then after 2 x rto_ms; its ACK stops that. A backend RST is translated and frees
    the flow."""
    lab = lab_of("rto", dataplane="rto_ms = 200\n")
    c = Client(lab, 45001, isn=77777)
    be = Backend(lab, c, VIP, 80, isn=0x80000000, mss=1000, ws=7, win=65535)
    req = listing(extra=b"X-Pad: " + b"r" * 1500 + b"\r\n")  # two segments of at most 1000
    bind(lab, c, be, req, chunks=[req[:1200], req[1200:]])
    t0 = time.monotonic()
    stamps = []
    for k in (1, 2):
        be.rcv_nxt, be.got = u32(c.isn + 1), b""
        assert be.expect_data(len(req), max_seg=1000) == req
        stamps.append(time.monotonic() - t0)
        lab.event(retransmit=1)
    assert 0.15 < stamps[0] < 0.7 and 0.5 < stamps[1] < 1.8, stamps
    # the backend acknowledges half: the rest again from there
    be.lab.up.send(be.frame("A", ack=u32(c.isn + 1 + 1000)))
    c.expect(lambda s: s.ack == c.nxt, what="the partial ACK, as what shortpath acked")
    lab.event(spliced_be=1)
    be.rcv_nxt, be.got = u32(c.isn + 1 + 1000), b""
    assert be.expect_data(len(req) - 1000, timeout=2.5) == req[1000:]
    lab.event(retransmit=1)
    sp = Splice(c, be)
    sp.from_be(b"", "A")          # everything acknowledged: no more
    lab.up.check_quiet(1.0)
    sp.from_be(b"", "RA")         # reset: translated, flow freed
    lab.wait_no_flows()
    lab.event(syn_rx=1, synack_tx=1, cookie_ok=1, requests=1, bind_vip=1, vip_listing=1,
              loc_listing=1, be_syn_tx=1, mss_mismatch=1, be_rst=1, flow_freed=1)
    lab.finish()


def test_backend_never_acks_held_bytes(lab_of):
    """rto_ms = 10: after 6 retransmissions (10 ms doubling) the backend is given up: both sides
    are reset. The backend's RST must carry the sequence number it expects (what it
    acknowledged, RFC 5961 3.2: else a challenge ACK and no reset)."""
    lab = lab_of("gone", dataplane="rto_ms = 10\n")
    c = Client(lab, 45101, isn=0x7ffffff0)
    be = Backend(lab, c, VIP, 80, isn=0x11)
    req = listing()
    bind(lab, c, be, req)
    for _ in range(6):
        be.rcv_nxt, be.got = u32(c.isn + 1), b""
        assert be.expect_data(len(req), timeout=2) == req
    rv = c.expect(lambda s: s.has("R"), timeout=3, what="RST to the VM")
    check_built(rv, src_mac=GW_MAC, dst_mac=VM_MAC, src=VIP, dst=VM_IP, sport=80, dport=c.sport,
                seq=c.cookie + 1, ack=c.nxt, flags="RA", win=0)
    rb = be.expect(lambda s: s.has("R"), what="RST to the backend")
    lab.wait_no_flows()
    lab.event(syn_rx=1, synack_tx=1, cookie_ok=1, requests=1, bind_vip=1, vip_listing=1,
              loc_listing=1, be_syn_tx=1, retransmit=6, be_timeout=1, rst_sent=2, flow_freed=1)
    lab.finish()
    check_built(rb, src_mac=VM_MAC, dst_mac=GW_MAC, src=VM_IP, dst=VIP, sport=c.sport,
                dport=80, seq=c.isn + 1, ack=be.isn + 1, flags="RA", win=0)


# ---- direct to a storage node ------------------------------------------------------------------

def test_direct_get_rewritten_head(lab_of):
    """GET /b/k: the locator from the storage manager, then shortpath connects to the first
    node with the head rewritten (the node's path, the client's headers minus Connection /
    Keep-Alive / X-SP-Node-Auth, a valid credential, Connection: close); the response and every
    later segment translated with delta_c = the bytes the rewrite added. A second request finds
    the locator in the worker's cache."""
    lab = lab_of("get")
    path = b"/data/7f/b/k"
    lab.mgr.locate("b", "k", [f"http://{NODE1}:80", f"http://{NODE2}:8080"], path.decode(),
                   size=11)
    c = Client(lab, 46001, isn=0xfffffff0)
    be = Backend(lab, c, NODE1, 80, isn=0x7ffffff0, mss=1460, ws=7, win=65535)
    head = (b"GET /b/k HTTP/1.1\r\nHost: s3.test\r\nUser-Agent: tep/1\r\n"
            b"Connection: keep-alive\r\nX-SP-Node-Auth: client:1:forged\r\nRange: bytes=0-4\r\n"
            b"keep-alive: timeout=5\r\nX-Amz-Date: 20250101T000000Z\r\n\r\n")
    c.open(head)
    be.expect_syn(timeout=5)
    assert lab.mgr.calls == [("/locate", {"bucket": "b", "key": "k"})], lab.mgr.calls
    be.synack()
    be.expect_handshake_ack()
    pre, post = rewritten(b"GET", path, head)
    new = be.expect_data(len(pre) + len("nodemgr:1234567890:") + 64 + len(post))
    check_node_head(new, b"GET", path, head)
    lab.check_flow(state="splice", target=f"{NODE1}:80", target_kind="node")
    sp = Splice(c, be, delta_c=len(new) - len(head))
    # the node acknowledges part of the head: the VM sees what shortpath acknowledged
    sp.from_be(b"", "A", ack=u32(c.isn + 1 + 10), vm_ack=c.nxt)
    assert lab.stats()["flow_buffers"] == 1
    resp = (b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-4/11\r\n"
            b"Content-Length: 5\r\nConnection: close\r\n\r\nhello")
    sp.from_be(resp)              # acks the whole rewritten head: ack - delta_c for the VM
    assert lab.stats()["flow_buffers"] == 0
    sp.from_vm(b"", "A")
    sp.from_be(b"", "FA")
    sp.from_vm(b"", "FA")
    sp.from_be(b"", "A")
    lab.wait_no_flows(6)

    # the same object again: the locator is cached, the manager is not asked
    c2 = Client(lab, 46002, isn=123)
    be2 = Backend(lab, c2, NODE1, 80, isn=999)
    c2.open(b"GET /b/k HTTP/1.1\r\nHost: s3.test\r\n\r\n")
    be2.expect_syn()
    lab.vm.send(c2.frame("RA"))
    be2.expect(lambda s: s.has("R"), what="RST to the node")
    lab.wait_no_flows()
    assert len(lab.mgr.calls) == 1, lab.mgr.calls
    lab.event(syn_rx=2, synack_tx=2, cookie_ok=2, requests=2, loc_miss=1, loc_resolved=1,
              loc_hit=1, bind_node=2, be_syn_tx=2, closed=1, vm_rst=1, rst_sent=1,
              flow_freed=2)
    lab.finish()


def test_direct_put_body_in_segments(lab_of):
    """PUT with a body: head split over two segments, body bytes held before, during and after
    the resolve (/place), then sent after the bind (spliced with delta_c). The node gets
    exactly the rewritten head + the body; its ACKs and answer map back to the VM's space."""
    lab = lab_of("put")
    path = b"/data/3c/b/obj"
    lab.mgr.locate("b", "obj", [f"http://{NODE2}:8080"], path.decode(), op="/place")
    body = bytes(range(256)) * 12
    body = body[:3000]
    head = (b"PUT /b/obj HTTP/1.1\r\nHost: s3.test\r\nContent-Length: 3000\r\n"
            b"Content-Type: application/octet-stream\r\nConnection: close\r\n\r\n")
    c = Client(lab, 47001, isn=0x40000000, ws=5, win=65535)
    be = Backend(lab, c, NODE2, 8080, isn=0xdeadbeef, mss=1000, ws=7, win=65535)
    c.open(head[:-10])
    c.send_held(head[-10:] + body[:1000])
    c.send_held(body[1000:2000])       # while resolving or connecting: held too
    be.expect_syn(timeout=5)
    assert lab.mgr.calls == [("/place", {"bucket": "b", "key": "obj"})], lab.mgr.calls
    be.synack()
    be.expect_handshake_ack()
    pre, post = rewritten(b"PUT", path, head)
    n_head = len(pre) + len("nodemgr:1234567890:") + 64 + len(post)
    got = be.expect_data(n_head + 2000, max_seg=1000)
    check_node_head(got[:n_head], b"PUT", path, head)
    assert got[n_head:] == body[:2000]
    sp = Splice(c, be, delta_c=n_head - len(head))
    sp.from_vm(body[2000:2500])          # after the bind: translated, not held
    sp.from_vm(body[2500:])
    assert be.got == got + body[2000:]
    sp.from_be(b"", "A")                 # all of it acknowledged
    sp.from_be(b"HTTP/1.1 200 OK\r\nETag: \"x\"\r\nContent-Length: 0\r\n\r\n", "FPA")
    sp.from_vm(b"", "FA")
    sp.from_be(b"", "A")
    lab.wait_no_flows(6)
    lab.event(syn_rx=1, synack_tx=1, cookie_ok=1, requests=1, loc_miss=1, loc_resolved=1,
              bind_node=1, be_syn_tx=1, mss_mismatch=1, closed=1, flow_freed=1)
    lab.finish()


def test_locator_defaults(lab_of):
    """With no [locators] keys in the file, their documented defaults apply (shortpathd
    --reference: ttl_s 60, timeout_ms 1000, max_inflight 256, prefetch_next 2, prefetch_listing
    100): a listing asks the manager for its keys, a GET with a locator goes to the node."""
    lab = lab_of("locdef", locators="")
    lab.mgr.locate("b", "k", [f"http://{NODE1}:80"], "/data/0/b/k")
    c = Client(lab, 46101, isn=1)
    c.connect()
    c.send_held(listing())
    be = Backend(lab, c, VIP, 80, isn=2)
    be.expect_syn()
    lab.vm.send(c.frame("RA"))
    be.expect(lambda s: s.has("R"), what="RST to the VIP")
    problems = []
    try:
        wait_for(lambda: [p for p, _ in lab.mgr.calls] == ["/list"], 2, what="/list")
    except TimeoutError:
        problems.append(f"no listing prefetch: manager calls {lab.mgr.calls}")
    c = Client(lab, 46102, isn=3)
    c.connect()
    c.send_held(b"GET /b/k HTTP/1.1\r\nHost: s3.test\r\n\r\n")
    got = lab.up.expect(lambda s: s.is_tcp and s.has("S") and s.sport == c.sport, timeout=5,
                        what="the backend SYN")
    if (got.dst, got.dport) != (NODE1, 80):
        problems.append(f"the GET's SYN went to {got.dst}:{got.dport} (manager calls "
                        f"{lab.mgr.calls}, TCP events "
                        f"{ {k: v for k, v in lab.tcp().items() if v and k.startswith('loc')} })")
    lab.vm.send(c.frame("RA"))
    lab.up.expect(lambda s: s.is_tcp and s.has("R") and s.sport == c.sport, what="RST")
    lab.wait_no_flows()
    assert not problems, problems
    lab.event(syn_rx=2, synack_tx=2, cookie_ok=2, requests=2, bind_vip=1, vip_listing=1,
              loc_listing=1, loc_miss=1, loc_resolved=1, bind_node=1, be_syn_tx=2, vm_rst=2,
              rst_sent=2, flow_freed=2)
    lab.finish()


def test_refused_silent_nodes_then_vip_then_503(lab_of):
    """First node refuses (RST to the SYN), the second is silent (syn_retries SYNs, the timeout
    doubling): the VIP gets the original head unchanged. When the VIP refuses too, shortpath
    answers the VM itself with a 503 S3 error and closes."""
    lab = lab_of("fail", dataplane="syn_retries = 2\nsyn_timeout_ms = 150\n")
    path = "/data/9/b/k"
    lab.mgr.locate("b", "k", [f"http://{NODE1}:80", f"http://{NODE2}:8080"], path)
    head = b"GET /b/k HTTP/1.1\r\nHost: s3.test\r\nConnection: keep-alive\r\n\r\n"

    c = Client(lab, 48001, isn=31337)
    c.open(head)
    n1 = Backend(lab, c, NODE1, 80, isn=1)
    n1.expect_syn(timeout=5)
    lab.up.send(n1.frame("RA", seq=0, ack=u32(c.isn + 1), win=0))   # refused
    n2 = Backend(lab, c, NODE2, 8080, isn=1)
    n2.expect_syn()
    t0 = time.monotonic()
    n2.expect_syn(timeout=1)                                        # again after 150 ms
    t1 = time.monotonic() - t0
    vip = Backend(lab, c, VIP, 80, isn=0x1234, mss=1460, ws=9)
    vip.expect_syn(timeout=2)                                       # 300 ms later: the VIP
    t2 = time.monotonic() - t0
    assert 0.1 < t1 < 0.6 and 0.35 < t2 < 1.5, (t1, t2)
    vip.synack()
    vip.expect_handshake_ack()
    assert vip.expect_data(len(head)) == head                       # unchanged: delta 0
    sp = Splice(c, vip)
    sp.from_be(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "PA")
    sp.from_be(b"", "RA")
    lab.wait_no_flows()
    lab.event(syn_rx=1, synack_tx=1, cookie_ok=1, requests=1, loc_miss=1, loc_resolved=1,
              bind_node=1, be_syn_tx=3, be_refused=1, be_syn_retx=1, be_timeout=1,
              replica_retry=1, fallback_vip=1, bind_vip=1, vip_no_locator=1, be_rst=1,
              flow_freed=1)
    lab.check_tcp()

    # everything refuses: 503 from shortpath
    c = Client(lab, 48002, isn=0xfffffffe, ws=None)
    c.open(head)
    for ip, port in ((NODE1, 80), (NODE2, 8080), (VIP, 80)):
        t = Backend(lab, c, ip, port, isn=1)
        t.expect_syn()
        lab.up.send(t.frame("RA", seq=0, ack=u32(c.isn + 1), win=0))
    r = c.expect(lambda s: s.payload, what="the 503")
    c.held = 0  # what was held is dropped: the whole buffer is the window while it answers
    check_built(r, src_mac=GW_MAC, dst_mac=VM_MAC, src=VIP, dst=VM_IP, sport=80, dport=c.sport,
                seq=c.cookie + 1, ack=c.nxt, flags="FPA", win=c.hold_win(), payload=r.payload)
    hdr, _, body = r.payload.partition(b"\r\n\r\n")
    lines = hdr.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 503 Service Unavailable", r.payload
    fields = dict(ln.split(b": ", 1) for ln in lines[1:])
    assert fields[b"Content-Type"] == b"application/xml" and \
        fields[b"Connection"] == b"close", r.payload
    rid = fields[b"x-amz-request-id"]
    assert re.fullmatch(rb"[0-9A-F]{16}", rid), rid
    assert body == (b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ServiceUnavailable'
                    b'</Code><Message>The storage nodes and the service could not be reached.'
                    b'</Message><Resource>/b/k</Resource><RequestId>' + rid +
                    b'</RequestId></Error>'), body
    length = int(fields[b"Content-Length"])  # checked at the end
    c.rcv = len(r.payload) + 1
    lab.vm.send(c.frame("A"))
    c.send(b"", "FA")
    a = c.expect(lambda s: s.ack == c.nxt, what="the ACK of the VM's FIN")
    check_built(a, src_mac=GW_MAC, dst_mac=VM_MAC, src=VIP, dst=VM_IP, sport=80, dport=c.sport,
                seq=c.rcv_nxt, ack=c.nxt, flags="A", win=0)
    lab.wait_no_flows()
    lab.event(syn_rx=1, synack_tx=1, cookie_ok=1, requests=1, loc_hit=1, bind_node=1,
              be_syn_tx=3, be_refused=3, replica_retry=1, fallback_vip=1, bind_vip=1,
              vip_no_locator=1, reply_503=1, flow_freed=1)
    lab.finish()
    assert length == len(body), f"the 503's Content-Length is {length}, its body {len(body)}"


def test_locator_not_found_or_slow_goes_to_vip(lab_of):
    """The manager says 404 (no such key), or does not answer within [locators] timeout_ms:
    the request takes the ordinary path, unchanged."""
    lab = lab_of("nf", locators=LOCATOR_DEFAULTS.replace("timeout_ms = 1000", "timeout_ms = 200"))
    c = Client(lab, 49001, isn=5)
    be = Backend(lab, c, VIP, 80, isn=6)
    head = b"DELETE /b/nokey HTTP/1.1\r\nHost: s3.test\r\n\r\n"
    c.open(head)
    be.expect_syn(timeout=5)
    assert lab.mgr.calls == [("/locate", {"bucket": "b", "key": "nokey"})], lab.mgr.calls
    be.synack()
    be.expect_handshake_ack()
    assert be.expect_data(len(head)) == head
    sp = Splice(c, be)
    sp.from_vm(b"", "RA")
    lab.wait_no_flows()
    lab.wait_no_flows()
    lab.event(syn_rx=1, synack_tx=1, cookie_ok=1, requests=1, loc_miss=1, loc_not_found=1,
              bind_vip=1, vip_no_locator=1, be_syn_tx=1, vm_rst=1, flow_freed=1)
    lab.check_tcp()

    # the manager is slower than [locators] timeout_ms: the ordinary path too
    lab.mgr.locate("b", "slow", [f"http://{NODE1}:80"], "/data/s/b/slow")
    lab.mgr.delay = 1.0
    c = Client(lab, 49002, isn=50)
    be = Backend(lab, c, VIP, 80, isn=60)
    head = b"GET /b/slow HTTP/1.1\r\nHost: s3.test\r\n\r\n"
    c.connect()
    c.send_held(head)
    t0 = time.monotonic()
    be.expect_syn(timeout=3)
    assert 0.15 < time.monotonic() - t0 < 1.2, time.monotonic() - t0
    be.synack()
    be.expect_handshake_ack()
    assert be.expect_data(len(head)) == head
    Splice(c, be).from_vm(b"", "RA")
    lab.wait_no_flows()
    lab.event(syn_rx=1, synack_tx=1, cookie_ok=1, requests=1, loc_miss=1, loc_failed=1,
              bind_vip=1, vip_no_locator=1, be_syn_tx=1, vm_rst=1, flow_freed=1)
    lab.finish()


def test_rst_both_ways(lab_of):
    """After the bind, a RST from the VM (direct: seq + delta_c) or from the backend is
    translated, forwarded and frees the flow."""
    lab = lab_of("rst")
    path = "/data/1/b/r"
    lab.mgr.locate("b", "r", [f"http://{NODE1}:80"], path)
    head = b"HEAD /b/r HTTP/1.1\r\nHost: s3.test\r\n\r\n"
    c = Client(lab, 50001, isn=0xfff00000)
    n = Backend(lab, c, NODE1, 80, isn=0x00000010)
    pre, post = rewritten(b"HEAD", path.encode(), head)
    c.extra = len(pre) + len(post) + len("nodemgr:1234567890:") + 64 - len(head)
    new = bind(lab, c, n, head)
    check_node_head(new, b"HEAD", path.encode(), head)
    sp = Splice(c, n, delta_c=len(new) - len(head))
    sp.from_be(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n")
    sp.from_vm(b"", "RA")
    lab.wait_no_flows()

    c = Client(lab, 50002, isn=42)
    v = Backend(lab, c, VIP, 80, isn=43)
    bind(lab, c, v, listing())
    sp = Splice(c, v)
    sp.from_be(b"", "RA")
    lab.wait_no_flows()
    lab.event(syn_rx=2, synack_tx=2, cookie_ok=2, requests=2, loc_miss=1, loc_resolved=1,
              bind_node=1, bind_vip=1, vip_listing=1, loc_listing=1, be_syn_tx=2, vm_rst=1,
              be_rst=1, flow_freed=2)
    lab.finish()


DECISIONS = [  # (request, the reason it goes to the VIP)
    (b"GET /b/k?acl HTTP/1.1\r\nHost: s3.test\r\n\r\n", "vip_not_object"),
    (b"GET / HTTP/1.1\r\nHost: s3.test\r\n\r\n", "vip_not_object"),
    (b"POST /b/k?uploads HTTP/1.1\r\nHost: s3.test\r\nContent-Length: 0\r\n\r\n",
     "vip_not_enhanced"),
    (b"OPTIONS /b/k HTTP/1.1\r\nHost: s3.test\r\n\r\n", "vip_not_enhanced"),
    (b"GET /b/k HTTP/1.0\r\nHost: s3.test\r\n\r\n", "vip_body_form"),
    (b"PUT /b/k HTTP/1.1\r\nHost: s3.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
     "vip_body_form"),
    (b"PUT /b/k HTTP/1.1\r\nHost: s3.test\r\nContent-Length: 2\r\nExpect: magic\r\n\r\n",
     "vip_body_form"),
    (b"GET /b/k HTTP/1.1\r\nHost: s3.test\r\n\r\nGET /b/j HTTP/1.1\r\nHost: s3.test\r\n\r\n",
     "vip_pipelined"),
    (b"DELETE /b/k HTTP/1.1\r\nHost: s3.test\r\nContent-Length: 1\r\n\r\nxy", "vip_pipelined"),
]


def test_decisions_to_vip(lab_of):
    """Requests that cannot go direct are bound to the VIP with their bytes unchanged, each
    counted under its reason; the storage manager is never asked."""
    lab = lab_of("dec")
    for i, (req, why) in enumerate(DECISIONS):
        c = Client(lab, 56001 + i, isn=0x3000 * i)
        be = Backend(lab, c, VIP, 80, isn=7)
        assert bind(lab, c, be, req) == req, why
        lab.vm.send(c.frame("RA"))
        lab.up.expect_raw(Splice(c, be).translate_vm(c.frame("RA")), what="the RST")
        lab.wait_no_flows()
        lab.event(**{why: 1})
    n = len(DECISIONS)
    assert lab.mgr.calls == [], lab.mgr.calls
    lab.event(syn_rx=n, synack_tx=n, cookie_ok=n, requests=n, bind_vip=n, be_syn_tx=n,
              spliced_vm=n, vm_rst=n, flow_freed=n)
    lab.finish()


def test_http_error_goes_to_vip_counted_once(lab_of):
    """A head the parser refuses (Content-Length with Transfer-Encoding) goes to the VIP as it
    is; http_error counts it once."""
    lab = lab_of("herr")
    req = (b"PUT /b/k HTTP/1.1\r\nHost: s3.test\r\nContent-Length: 5\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n")
    c = Client(lab, 56101, isn=1)
    be = Backend(lab, c, VIP, 80, isn=2)
    assert bind(lab, c, be, req) == req
    lab.vm.send(c.frame("RA"))
    be.expect(lambda s: s.has("R"))
    lab.wait_no_flows()
    lab.event(syn_rx=1, synack_tx=1, cookie_ok=1, http_error=1, bind_vip=1, be_syn_tx=1,
              spliced_vm=1, vm_rst=1, flow_freed=1)
    lab.finish()


def test_head_larger_than_buffer_goes_to_vip(lab_of):
    """A head that does not fit the request buffer goes to the VIP. The VM (window scale 7)
    sends what the advertised windows allow; once the window rounds down to 0 with less than
    128 bytes free it can send nothing more (a zero-window probe carries no new data), so the
    decision must not wait for the last bytes of the buffer."""
    lab = lab_of("big", flow_buffer=2048, dataplane="flow_buffer = 2048\n")
    head = b"GET /b/k HTTP/1.1\r\nHost: s3.test\r\nX-Big: " + b"z" * 3000 + b"\r\n\r\n"
    c = Client(lab, 56201, isn=0xabcdef)
    be = Backend(lab, c, VIP, 80, isn=0x1000, mss=1460, ws=7, win=65535)
    c.connect()
    sent = 0
    win = 2048                                   # the SYN-ACK's (unscaled) window
    while win > 0 and sent < len(head):
        n = min(win, 1400, len(head) - sent)
        a = c.send_held(head[sent:sent + n])
        sent += n
        win = a.win << OUR_WS
    be.expect_syn(timeout=2)
    be.synack()
    be.expect_handshake_ack()
    assert be.expect_data(c.held, max_seg=1460) == head[:sent]
    sp = Splice(c, be)
    while sent < len(head):                      # the rest goes spliced
        n = min(1400, len(head) - sent)
        sp.from_vm(head[sent:sent + n])
        sent += n
    assert be.got == head
    sp.from_be(b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n\r\n")
    sp.from_vm(b"", "RA")
    lab.wait_no_flows()
    lab.event(syn_rx=1, synack_tx=1, cookie_ok=1, head_too_large=1, bind_vip=1, be_syn_tx=1,
              vm_rst=1, flow_freed=1)
    lab.finish()


def test_no_buffer_left_forwards_unchanged(lab_of):
    """flow_buffers = 16: with every buffer held by a flow, a 17th SYN is left to the service
    (forwarded unchanged, counted: no cookie whose ACK could find no buffer); a buffer freed
    by a flow's end serves the next connection."""
    lab = lab_of("nobuf", dataplane="flow_buffers = 16\nmax_flows = 64\n")
    cs = [Client(lab, 57001 + i, isn=i).connect() for i in range(16)]
    lab.event(syn_rx=16, synack_tx=16, cookie_ok=16)
    lab.check_tcp()
    assert lab.stats()["flows"] == 16 and lab.stats()["flow_buffers"] == 16
    x = Client(lab, 57100, isn=100)
    syn = tk.tcp_frame(VM_MAC, GW_MAC, VM_IP, VIP, x.sport, 80, seq=x.isn, flags="S",
                       win=x.syn_win, options=x.syn_opts)
    lab.vm.send(syn)
    lab.up.expect_raw(syn, what="the SYN without a buffer, unchanged")
    lab.event(buffers_empty=1)
    lab.check_tcp()
    lab.vm.send(cs[0].frame("RA"))
    wait_for(lambda: lab.stats()["flows"] == 15, 3, what="15 flows")
    x.connect()                                   # the VM's SYN again: now there is room
    wait_for(lambda: lab.stats()["flows"] == 16, 3, what="16 flows")
    for c in cs[1:] + [x]:
        lab.vm.send(c.frame("RA"))
    lab.wait_no_flows()
    lab.event(syn_rx=1, synack_tx=1, cookie_ok=1, vm_rst=17, flow_freed=17)
    lab.finish()


# ---- malformed segments, timeouts ----------------------------------------------------------------

def test_malformed_segments_accounted(lab_of):
    """Malformed segments to the VIP neither crash nor leak: bad options in a SYN are dropped
    (bad_segment); what the parser refuses (bad data offset, truncated header) and segments
    without a flow are forwarded unchanged, each counted; the endpoint still works after."""
    lab = lab_of("bad")
    mk = lambda **kw: tk.tcp_frame(VM_MAC, GW_MAC, VM_IP, VIP, kw.pop("sport", 51001), 80,
                                   **kw)
    dropped = [
        mk(seq=1, flags="S", options=b"\x01\x01\x01\x02"),           # kind without length
        mk(seq=1, flags="S", options=b"\x02\x03\x05\xb4"),           # MSS of length 3
        mk(seq=1, flags="S", options=b"\x01\x03\x03\x07\x04\x00"
           b"\x01\x01"),                                             # SACK-perm length 0
        mk(seq=1, flags="S", options=b"\x01\x01\x03\x03"),           # WS past the end
        mk(seq=1, flags="SF"),                                        # SYN+FIN
        mk(seq=1, flags="SR"),                                        # SYN+RST: no flow
        mk(seq=1, ack=1, flags="SA", sport=51005),                   # SYN-ACK from a VM
    ]
    passed = [
        mk(seq=1, flags="S", doff=4),                                # data offset < 5
        mk(seq=1, flags="S", doff=15, payload=b"x" * 8),             # beyond the segment
        mk(seq=1, flags="R", sport=51002),                           # RST, no flow
        mk(seq=1, ack=2, flags="FA", sport=51003),                   # FIN, no flow (forged)
        mk(seq=1, ack=2, flags="PA", payload=b"GET / HTTP/1.1\r\n\r\n", sport=51004),
        mk(seq=1, flags="S", ip_len=30)[:44],                        # TCP header truncated
    ]
    for f in dropped + passed:
        lab.vm.send(f)
    for f in passed:
        lab.up.expect_raw(f)
    lab.up.check_quiet(0.2)
    s = lab.stats()
    assert s["parse_tcp_bad_offset"] == 2 and s["parse_l4_truncated"] == 1, s
    lab.event(syn_rx=4, bad_segment=7, no_flow_passed=1, cookie_forged=2)
    lab.check_tcp()

    # a flow: its malformed segments pass up as they are, the flow is unharmed
    c = Client(lab, 51010, isn=900)
    be = Backend(lab, c, VIP, 80, isn=0x55555555, mss=1460)
    c.open(b"GET /bkt?list-type=2 HTTP/1.1\r\n")
    odd = c.frame("PA", b"Host: x\r\n", doff=3)
    lab.vm.send(odd)
    lab.up.expect_raw(odd)
    c.send_held(b"Host: s3.test\r\n\r\n")
    be.expect_syn()
    # a SYN-ACK with malformed options: taken as no options (MSS 536, no window scale)
    be.ws = None
    be.synack(options=b"\x01\x01\x03\x03")
    be.expect_handshake_ack()
    be.expect_data(c.held)
    sp = Splice(c, be)
    sp.from_be(b"", "A", win=1000)       # no backend scale: 1000 >> 7
    sp.from_vm(b"", "RA")
    lab.wait_no_flows()
    lab.event(syn_rx=1, synack_tx=1, cookie_ok=1, requests=1, bind_vip=1, vip_listing=1,
              loc_listing=1, be_syn_tx=1, mss_mismatch=1, vm_rst=1, flow_freed=1)
    lab.finish()


def test_timeouts(lab_of):
    """idle_timeout_s / half_close_timeout_s = 1: a flow without a whole head is reset toward
    the VM (header timeout, within min(idle, 30 s)); an idle spliced flow and a half-closed one
    are reset both ways, each RST exact."""
    lab = lab_of("to", dataplane="idle_timeout_s = 1\nhalf_close_timeout_s = 1\n")
    a = Client(lab, 52001, isn=100)
    a.connect()
    a.send_held(b"GET /b/k HTTP/1.1\r\n")
    r = a.expect(lambda s: s.has("R"), timeout=3, what="RST (header timeout)")
    check_built(r, src_mac=GW_MAC, dst_mac=VM_MAC, src=VIP, dst=VM_IP, sport=80, dport=a.sport,
                seq=a.cookie + 1, ack=a.nxt, flags="RA", win=0)
    lab.wait_no_flows()
    lab.event(syn_rx=1, synack_tx=1, cookie_ok=1, header_timeout=1, rst_sent=1, flow_freed=1)

    for i, half in enumerate((False, True)):
        c = Client(lab, 52010 + i, isn=0xffff0000 + i)
        be = Backend(lab, c, VIP, 80, isn=0x70000000 + i)
        req = listing()
        bind(lab, c, be, req)
        sp = Splice(c, be)
        sp.from_be(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        sp.from_vm(b"", "A")
        acked = be.nxt  # what the VM acknowledged last, in the backend's space
        if half:
            sp.from_be(b"", "FA")
        rb = be.expect(lambda s: s.has("R"), timeout=3, what="RST to the backend")
        check_built(rb, src_mac=VM_MAC, dst_mac=GW_MAC, src=VM_IP, dst=VIP, sport=c.sport,
                    dport=80, seq=c.nxt, ack=acked, flags="RA", win=0)
        rv = c.expect(lambda s: s.has("R"), what="RST to the VM")
        check_built(rv, src_mac=GW_MAC, dst_mac=VM_MAC, src=VIP, dst=VM_IP, sport=80,
                    dport=c.sport, seq=c.rcv_nxt, ack=c.nxt, flags="RA", win=0)
        lab.wait_no_flows()
        lab.event(syn_rx=1, synack_tx=1, cookie_ok=1, requests=1, bind_vip=1, vip_listing=1,
                  loc_listing=1, be_syn_tx=1, rst_sent=2, flow_freed=1,
                  **{"half_close_timeout" if half else "idle_timeout": 1})
    lab.finish()


# ---- windows toward the backend ------------------------------------------------------------------

def test_held_bytes_follow_the_backend_window(lab_of):
    """Held bytes beyond the backend's first window are sent as soon as its ACK opens the
    window again, not only when the retransmission timer fires (rto_ms = 1000 here)."""
    lab = lab_of("wnd", dataplane="rto_ms = 1000\n")
    c = Client(lab, 53001, isn=3000)
    be = Backend(lab, c, VIP, 80, isn=4000, mss=1000, ws=None, win=2000)
    body = b"b" * 2000
    head = b"POST /bkt/k?uploads HTTP/1.1\r\nHost: s3.test\r\nContent-Length: 2000\r\n\r\n"
    c.open(head + body[:1000])
    c.send_held(body[1000:])                      # while connecting: held
    be.expect_syn()
    be.synack()
    be.expect_handshake_ack()
    # window 2000: two segments of 1000, then the backend acknowledges them
    first = b""
    while len(first) < 2000:
        s = be.expect(lambda s: s.payload and s.seq == u32(c.isn + 1 + len(first)))
        first += s.payload
    assert first == (head + body)[:2000]
    be.rcv_nxt = u32(c.isn + 1 + 2000)
    be.got = first
    t0 = time.monotonic()
    lab.up.send(be.frame("A", win=2000))
    c.expect(lambda s: s.ack == c.nxt, what="the partial ACK")
    rest = be.expect_data(len(head) + len(body) - 2000, timeout=3)
    assert rest == (head + body)[2000:]
    took = time.monotonic() - t0
    assert took < 0.5, f"the rest of the held bytes came {took:.2f} s after the ACK (rto 1 s)"
    sp = Splice(c, be)
    sp.from_be(b"", "RA")
    lab.wait_no_flows()
    lab.event(syn_rx=1, synack_tx=1, cookie_ok=1, requests=1, bind_vip=1, vip_not_enhanced=1,
              be_syn_tx=1, mss_mismatch=1, spliced_be=1, be_rst=1, flow_freed=1)
    lab.finish()


def test_windows_toward_backend_are_unscaled_where_they_must_be(lab_of):
    """RFC 7323: a SYN's window is never scaled, and without a window scale in the backend's
    SYN-ACK no window is scaled. The VM's window field (scaled by its shift) must then reach the
    backend as bytes: min(field << vm_ws, 65535)."""
    lab = lab_of("unscaled")
    c = Client(lab, 54001, isn=10, ws=7, win=64240)          # field 501 = 64128 bytes
    be = Backend(lab, c, VIP, 80, isn=20, mss=1460, ws=None, win=8192)
    c.open(listing())
    syn = be.expect_syn()
    problems = []
    if syn.win != min(c.wfield << 7, 65535):
        problems.append(f"backend SYN window {syn.win}, want {min(c.wfield << 7, 65535)}")
    be.synack()
    a = be.expect(lambda s: not s.payload, what="ACK")
    d = be.expect(lambda s: s.payload, what="held data")
    for what, s in (("handshake ACK", a), ("held data", d)):
        if s.win != min(c.wfield << 7, 65535):
            problems.append(f"{what} window {s.win}, want {min(c.wfield << 7, 65535)}")
    lab.up.send(be.frame("A", ack=u32(c.isn + 1 + c.held)))
    c.expect(lambda s: s.ack == c.nxt)
    lab.vm.send(c.frame("A", win=300))
    s = be.expect(lambda s: not s.payload, what="the VM's ACK")
    if s.win != min(300 << 7, 65535):
        problems.append(f"spliced VM window {s.win}, want {min(300 << 7, 65535)}")
    lab.vm.send(c.frame("RA"))
    be.expect(lambda s: s.has("R"))
    lab.wait_no_flows()
    lab.event(syn_rx=1, synack_tx=1, cookie_ok=1, requests=1, bind_vip=1, vip_listing=1,
              loc_listing=1, be_syn_tx=1, spliced_be=1, spliced_vm=2, vm_rst=1, flow_freed=1)
    lab.finish()
    assert not problems, problems


# ---- a million SYNs ------------------------------------------------------------------------------

N_SYNS = 1_000_000
ORDINARY_EVERY = 4096


def syn_flood_pcap(w):
    """Writes (to file object w) a pcap of N_SYNS SYNs to VIP:80 from ever other (address,
    port), with an ordinary frame after every ORDINARY_EVERY of them; returns (tuples of the
    SYNs in order, the ordinary frames in order). The pcap header is the caller's."""
    opts = tk.opts(mss=1460, ws=7)
    tmpl = bytearray(tk.tcp_frame(VM_MAC, GW_MAC, "10.0.0.0", VIP, 0, 80, seq=0, flags="S",
                                  win=64240, options=opts))
    flen = len(tmpl)
    tmpl[24:26] = b"\0\0"
    tmpl[50:52] = b"\0\0"
    ip_base = tk.ones_sum(bytes(tmpl[14:34]))               # src address 10.0.0.0
    tcp_base = tk.ones_sum(bytes(tmpl[26:34]) + struct.pack("!BBH", 0, 6, flen - 34)
                           + bytes(tmpl[34:]))              # sport 0, seq 0
    rec = struct.Struct("<IIII")
    ordinary, tuples = [], []
    chunk = bytearray()
    kinds = (
        lambda k: tk.udp_frame(VM_MAC, GW_MAC, VM_IP, VIP, 5000 + k, 80, f"udp {k}", ident=k),
        lambda k: tk.tcp_frame(VM_MAC, GW_MAC, VM_IP, VIP, 6000 + k, 81, seq=k, flags="S",
                               ident=k),
        lambda k: tk.tcp_frame(VM_MAC, GW_MAC, VM_IP, "10.98.1.11", 7000 + k, 80, seq=k,
                               flags="S", ident=k),
        lambda k: tk.tcp_frame(VM_MAC, GW_MAC, VM_IP, VIP, 8000 + k, 80, seq=k, ack=k,
                               flags="PA", payload=f"not a flow {k}", ident=k),
    )
    buf = bytearray(tmpl)
    for i in range(N_SYNS):
        a, b = 96 + (i >> 16), i & 0xffff          # source 10.a.(b >> 8).(b & 255)
        sport = 1024 + i % 60000
        seq = (i * 2654435761) & 0xffffffff
        s = ip_base + (a & 0xff) + b
        s = (s & 0xffff) + (s >> 16)
        s = (s & 0xffff) + (s >> 16)
        t = tcp_base + a + b + sport + (seq >> 16) + (seq & 0xffff)
        t = (t & 0xffff) + (t >> 16)
        t = (t & 0xffff) + (t >> 16)
        struct.pack_into("!H", buf, 24, ~s & 0xffff)
        buf[27] = a
        buf[28] = b >> 8
        buf[29] = b & 255
        struct.pack_into("!HHI", buf, 34, sport, 80, seq)
        struct.pack_into("!H", buf, 50, ~t & 0xffff)
        chunk += rec.pack(1, i, flen, flen)
        chunk += buf
        tuples.append((a, b, sport, seq))
        if i % ORDINARY_EVERY == ORDINARY_EVERY - 1:
            k = len(ordinary)
            f = kinds[k % len(kinds)](k)
            ordinary.append(f)
            chunk += rec.pack(1, i, len(f), len(f)) + f
        if len(chunk) > (1 << 20):
            yield bytes(chunk)
            chunk = bytearray()
    yield bytes(chunk)
    syn_flood_pcap.result = (tuples, ordinary)


def test_million_syns(cleanup):
    """1M SYNs from the VM (a pcap fed through a FIFO once the service is loaded), interleaved
    with ordinary frames: a SYN-ACK for every SYN (exact for a sample, addresses, ack and
    options for all), no flow, the ordinary frames forwarded byte-identical and in order, every
    mbuf back after SIGTERM."""
    redis = sp_new_redis(cleanup).start()
    d = tempfile.mkdtemp(prefix="sptest-tep-syn-")
    cleanup(lambda: shutil.rmtree(d, ignore_errors=True))
    fifo, up_in = os.path.join(d, "vm.in.pcap"), os.path.join(d, "up.in.pcap")
    vm_out, up_out = os.path.join(d, "vm.out.pcap"), os.path.join(d, "up.out.pcap")
    os.mkfifo(fifo)
    with open(up_in, "wb") as f:
        f.write(tk.PCAP_HDR)
    import json
    redis.cli("HSET", "sp:services", "tep", json.dumps({
        "vip": VIP, "port": 80, "enhanced": ["GET"], "storage_manager": "127.0.0.1:9",
        "node_key_id": KEY_ID, "auth": "none"}))
    redis.cli("SET", "sp:services:epoch", "1")
    prefix = f"tep-syn-{os.getpid()}"
    api = free_tcp_port()
    config = base_config(prefix, api, redis.address, mbufs=8191) + f"""
[port.vm]
device = net_pcap0,rx_pcap={fifo},tx_pcap={vm_out}
role = vm
mac = {VM_MAC}

[port.uplink]
device = net_pcap1,rx_pcap={up_in},tx_pcap={up_out}
role = uplink
"""
    daemon = Daemon(config, "tep-syn")
    cleanup(lambda: shutil.rmtree(daemon.dir, ignore_errors=True))
    cleanup(daemon.close)
    loaded = threading.Event()
    state = {}

    def feed():  # the FIFO: the pcap header at once, the frames once the service is loaded
        try:
            with open(fifo, "wb") as w:
                gen = syn_flood_pcap(w)
                w.write(tk.PCAP_HDR)
                w.flush()
                loaded.wait(30)
                for chunk in gen:
                    w.write(chunk)
            state["done"] = True
        except Exception as e:  # noqa: BLE001 - reported by the test
            state["error"] = e

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    # if shortpathd never opens the FIFO, unblock the writer's open on the way out
    cleanup(lambda: writer.is_alive() and os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)))
    t0 = time.monotonic()
    try:
        daemon.start(ready_prefix=prefix, api_port=api, timeout=30)
        wait_for(lambda: "tep" in telemetry(prefix, "/shortpath/services")["services"], 10,
                 what="the service loaded from Redis")
    finally:
        loaded.set()
    writer.join(60)
    assert state.get("done"), state
    tuples, ordinary = syn_flood_pcap.result
    total = N_SYNS + len(ordinary)
    wait_for(lambda: telemetry(prefix, "/shortpath/stats")["rx_packets"] == total, 60,
             interval=0.2, what="every frame read")
    s = wait_for(lambda: (s := telemetry(prefix, "/shortpath/stats"))["tcp_synack_tx"] +
                 s["drop_tx_full"] >= N_SYNS and s, 10, what="SYN-ACKs")
    took = time.monotonic() - t0
    assert s["tcp_syn_rx"] == N_SYNS and s["tcp_synack_tx"] == N_SYNS, s
    assert s["flows"] == 0 and s["flow_buffers"] == 0 and s["tcp_cookie_ok"] == 0, s
    assert s["tcp_cookie_forged"] == len(ordinary) // 4, s    # the PA ones to VIP:80
    assert all(v == 0 for k, v in s.items() if k.startswith("drop_")), s
    rc, log = daemon.stop()
    assert rc == 0, log
    assert pool_in_use_after_close(log) == 0, log

    assert tk.read_pcap(up_out) == ordinary
    out = tk.read_pcap(vm_out)
    assert len(out) == N_SYNS
    head = tk.mac(VM_MAC) + tk.mac(GW_MAC) + b"\x08\x00\x45\x00\x00\x30"
    ip_mid = b"\x40\x00\x40\x06"
    vip = tk.ip4(VIP)
    tail = bytes.fromhex("0050")
    opts = bytes.fromhex("020405b401030307")
    unpack = struct.Struct("!4xII").unpack_from
    for i, (fr, (a, b, sport, seq)) in enumerate(zip(out, tuples)):
        if (len(fr) != 62 or fr[:18] != head or fr[20:24] != ip_mid or fr[26:30] != vip or
                fr[30] != 10 or fr[31] != a or fr[32] != b >> 8 or fr[33] != b & 255 or
                fr[34:36] != tail or struct.unpack_from("!H", fr, 36)[0] != sport or
                unpack(fr, 34)[1] != (seq + 1) & 0xffffffff or
                fr[46:50] != b"\x70\x12\x40\x00" or fr[52:54] != b"\0\0" or fr[54:] != opts):
            raise AssertionError(f"SYN-ACK {i}: {tk.Seg(fr)}")
        if i % 997 == 0:
            sa = tk.Seg(fr)
            assert sa.ip_csum_ok and sa.tcp_csum_ok, sa
    assert took < 60, took


def icmp_frame(src, dst, icmp_type, code, quote, rest=b"\x00\x00\x00\x00"):
    """An ICMPv4 error from a router (src) to dst quoting `quote` (IP header + 8+ bytes)."""
    body = struct.pack("!BBH", icmp_type, code, 0) + rest + quote
    body = body[:2] + struct.pack("!H", tk.csum(body)) + body[4:]
    iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 7, 0, 63, 1, 0, tk.ip4(src),
                      tk.ip4(dst))
    iph = iph[:10] + struct.pack("!H", tk.csum(iph)) + iph[12:]
    return tk.mac(VM_MAC) + tk.mac(GW_MAC) + b"\x08\x00" + iph + body


def quote_of(frame, n=8):
    """The IP header and first n bytes of TCP of an Ethernet/IPv4 frame, as ICMP quotes it."""
    return frame[14:14 + 20 + n]


def test_icmp_errors(lab_of):
    """ICMP about shortpath's segments toward a backend: port unreachable while connecting to a
    node is a failed target (next replica); once spliced, a 'fragmentation needed' is relayed
    to the VM with its quote translated to what the VM sent (the VIP, the VM's sequence
    space), the ICMP checksum made again; the outer header is left as the router sent it."""
    lab = lab_of("icmp")
    path = "/data/1/b/k"
    lab.mgr.locate("b", "k", [f"http://{NODE1}:80", f"http://{NODE2}:8080"], path)
    head = b"GET /b/k HTTP/1.1\r\nHost: s3.test\r\n\r\n"
    c = Client(lab, 49001, isn=5000)
    c.open(head)
    n1 = Backend(lab, c, NODE1, 80, isn=1)
    syn = n1.expect_syn(timeout=5)
    router = "10.98.2.1"
    lab.up.send(icmp_frame(router, VM_IP, 3, 3, quote_of(syn.raw)))      # port unreachable
    n2 = Backend(lab, c, NODE2, 8080, isn=0x40000000, mss=1460, ws=7)
    n2.expect_syn(timeout=2)
    n2.synack()
    n2.expect_handshake_ack()
    pre, post = rewritten(b"GET", path.encode(), head)
    new = n2.expect_data(len(pre) + len("nodemgr:1234567890:") + 64 + len(post))
    sp = Splice(c, n2, delta_c=len(new) - len(head))
    sp.from_be(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    # a VM segment after the bind, as the node got it, then "fragmentation needed" about it
    seq_vm = c.nxt
    sent = sp.from_vm(b"x" * 10)
    quote = quote_of(sent.raw)
    lab.up.send(icmp_frame(router, VM_IP, 3, 4, quote, rest=struct.pack("!HH", 0, 1400)))
    got = lab.vm.expect(lambda f: getattr(f, "proto", None) == 1, what="the relayed ICMP").raw
    want_quote = bytearray(quote)
    want_quote[16:20] = tk.ip4(VIP)                                        # inner destination
    want_quote[10:12] = b"\x00\x00"
    want_quote[10:12] = struct.pack("!H", tk.csum(bytes(want_quote[:20])))
    want_quote[22:24] = struct.pack("!H", 80)                              # inner dport
    want_quote[24:28] = struct.pack("!I", seq_vm)                           # the VM's seq
    want = icmp_frame(router, VM_IP, 3, 4, bytes(want_quote), rest=struct.pack("!HH", 0, 1400))
    assert got == want, (got.hex(), want.hex())
    sp.from_be(b"", "FA")
    sp.from_vm(b"", "FA")
    sp.from_be(b"", "A")
    lab.wait_no_flows(6)
    ev = lab.stats()
    assert ev["tcp_icmp_unreach"] == 1 and ev["tcp_icmp_relayed"] == 1, ev
    assert ev["tcp_replica_retry"] == 1 and ev["tcp_bind_node"] == 1, ev
    lab.finish(counters=False)
