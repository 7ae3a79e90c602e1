"""Helpers for the TCP endpoint tests (test_tcp_endpoint.py): TCP/IPv4 frames built and checked
with struct (an oracle independent of shortpath's code), a private network namespace whose veth
pairs shortpathd attaches with net_pcap while the test drives the other ends through AF_PACKET
sockets, and a fake storage manager.

Every name this module creates starts with "tep" (never the lab's "sp-*")."""
import ctypes
import http.server
import json
import os
import socket
import struct
import subprocess
import threading
import time
import urllib.parse

# ---- checksums and frames ----------------------------------------------------------------------

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
_FLAG_CHARS = {"F": FIN, "S": SYN, "R": RST, "P": PSH, "A": ACK}


def flags_of(s):
    """"SA" -> SYN|ACK (an int passes through)."""
    if isinstance(s, int):
        return s
    v = 0
    for c in s:
        v |= _FLAG_CHARS[c]
    return v


def flag_str(v):
    return "".join(c for c, b in _FLAG_CHARS.items() if v & b) or "."


def ones_sum(data, start=0):
    """The 16-bit one's complement sum of data (big-endian words), folded."""
    if len(data) % 2:
        data = bytes(data) + b"\0"
    s = start + sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return s


def csum(data, start=0):
    return ~ones_sum(data, start) & 0xffff


def ip4(a):
    return socket.inet_aton(a)


def mac(a):
    return bytes.fromhex(a.replace(":", ""))


def mac_str(b):
    return ":".join(f"{x:02x}" for x in b)


def opts(mss=None, ws=None, sack=False, ts=None, raw=b""):
    """TCP options in Linux's SYN order (MSS, SACK-permitted + timestamps, NOP + WS), padded to
    a multiple of 4 with NOPs... or the raw bytes given."""
    o = b""
    if mss is not None:
        o += struct.pack("!BBH", 2, 4, mss)
    if sack and ts is not None:
        o += struct.pack("!BBBBII", 4, 2, 8, 10, ts, 0)
    else:
        if sack:
            o += b"\x01\x01\x04\x02"
        if ts is not None:
            o += struct.pack("!BBBBII", 1, 1, 8, 10, ts, 0)
    if ws is not None:
        o += struct.pack("!BBBB", 1, 3, 3, ws)
    o += raw
    while len(o) % 4:
        o += b"\x01"
    return o


def tcp_frame(src_mac, dst_mac, src, dst, sport, dport, seq=0, ack=0, flags="S", win=65535,
              options=b"", payload=b"", ttl=64, ident=1, df=True, doff=None, tcp_csum=None,
              ip_len=None):
    """An Ethernet/IPv4/TCP frame with correct checksums (doff, tcp_csum, ip_len override)."""
    if isinstance(payload, str):
        payload = payload.encode()
    hl = 20 + len(options)
    off = (hl // 4 if doff is None else doff) << 4
    tcp = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xffffffff, ack & 0xffffffff, off,
                      flags_of(flags), win, 0, 0) + options + payload
    pseudo = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, 6, len(tcp))
    c = csum(pseudo + tcp) if tcp_csum is None else tcp_csum
    tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
    tot = 20 + len(tcp) if ip_len is None else ip_len
    iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, tot, ident, 0x4000 if df else 0, ttl, 6, 0,
                      ip4(src), ip4(dst))
    iph = iph[:10] + struct.pack("!H", csum(iph)) + iph[12:]
    return mac(dst_mac) + mac(src_mac) + b"\x08\x00" + iph + tcp


def udp_frame(src_mac, dst_mac, src, dst, sport, dport, payload=b"", ident=1):
    if isinstance(payload, str):
        payload = payload.encode()
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    pseudo = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, 17, len(udp))
    c = csum(pseudo + udp) or 0xffff
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    iph = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), ident, 0, 64, 17, 0, ip4(src),
                      ip4(dst))
    iph = iph[:10] + struct.pack("!H", csum(iph)) + iph[12:]
    return mac(dst_mac) + mac(src_mac) + b"\x08\x00" + iph + udp


class Seg:
    """A received Ethernet/IPv4/TCP frame, parsed field by field (checksums verified)."""

    def __init__(self, raw):
        self.raw = bytes(raw)
        self.dst_mac, self.src_mac = mac_str(raw[0:6]), mac_str(raw[6:12])
        self.ethertype = struct.unpack("!H", raw[12:14])[0]
        self.is_tcp = False
        if self.ethertype != 0x0800 or len(raw) < 34:
            return
        (self.ver_ihl, self.tos, self.ip_len, self.ip_id, self.frag, self.ttl, self.proto,
         self.ip_csum) = struct.unpack("!BBHHHBBH", raw[14:26])
        self.src, self.dst = socket.inet_ntoa(raw[26:30]), socket.inet_ntoa(raw[30:34])
        ihl = (self.ver_ihl & 15) * 4
        self.ip_csum_ok = csum(raw[14:14 + ihl]) == 0
        l4 = 14 + ihl
        if self.proto != 6 or len(raw) < l4 + 20:
            return
        self.is_tcp = True
        (self.sport, self.dport, self.seq, self.ack, off, self.flags, self.win, self.tcp_csum,
         self.urp) = struct.unpack("!HHIIBBHHH", raw[l4:l4 + 20])
        self.doff = off >> 4
        self.reserved = off & 15
        end = 14 + self.ip_len
        self.options = raw[l4 + 20:l4 + self.doff * 4]
        self.payload = raw[l4 + self.doff * 4:end]
        self.trailer = raw[end:]
        seg = raw[l4:end]
        pseudo = raw[26:34] + struct.pack("!BBH", 0, 6, len(seg))
        self.tcp_csum_ok = csum(pseudo + seg) == 0

    def has(self, f):
        return self.flags & flags_of(f) == flags_of(f)

    def __repr__(self):
        if not self.is_tcp:
            return f"<frame {self.src_mac}>{self.dst_mac} type {self.ethertype:#06x} " \
                   f"len {len(self.raw)}>"
        return (f"<{self.src}:{self.sport} > {self.dst}:{self.dport} [{flag_str(self.flags)}] "
                f"seq {self.seq} ack {self.ack} win {self.win} opts {self.options.hex()} "
                f"len {len(self.payload)}>")


def parse_opts(o):
    """TCP options -> list of (kind, value bytes); NOP as (1, b"")."""
    out, i = [], 0
    while i < len(o):
        k = o[i]
        if k == 0:
            out.append((0, b""))
            break
        if k == 1:
            out.append((1, b""))
            i += 1
            continue
        n = o[i + 1]
        out.append((k, o[i + 2:i + n]))
        i += n
    return out


# ---- the network: a namespace with veth pairs --------------------------------------------------

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def sh(*args, check=True):
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=30)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.returncode}: {r.stderr.strip()}")
    return r


def in_netns(ns, fn):
    """fn() run on a thread inside network namespace ns (a socket it opens stays there)."""
    box = {}

    def run():
        fd = os.open(f"/var/run/netns/{ns}", os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                box["err"] = OSError(ctypes.get_errno(), "setns")
                return
        finally:
            os.close(fd)
        try:
            box["v"] = fn()
        except Exception as e:  # noqa: BLE001 - re-raised on the caller's thread
            box["err"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "err" in box:
        raise box["err"]
    return box["v"]


class Net:
    """Network namespace tep-ID with veth pairs: the root-namespace end of each (shortpathd's,
    via net_pcap) is named by dev(role), the other end (the test's) lives in the namespace."""

    def __init__(self, roles=("vm", "up")):
        self.id = f"{os.getpid() % 10000:04d}{int(time.time() * 1000) % 1000:03d}"
        self.ns = f"tep-{self.id}"
        self.roles = roles
        self.created = []
        self.wires = []

    def dev(self, role):
        return f"tep{role[0]}{self.id}"       # shortpathd's end (root namespace)

    def peer(self, role):
        return f"tep{role[0]}p{self.id}"      # the test's end (in the namespace)

    def setup(self):
        sh("ip", "netns", "add", self.ns)
        self.created.append(("netns", self.ns))
        nsx = ("ip", "netns", "exec", self.ns)
        sh(*nsx, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
           "net.ipv6.conf.default.disable_ipv6=1")
        for role in self.roles:
            d, p = self.dev(role), self.peer(role)
            sh("ip", "link", "add", d, "type", "veth", "peer", "name", p, "netns", self.ns)
            self.created.append(("link", d))
            sh("sysctl", "-qw", f"net.ipv6.conf.{d}.disable_ipv6=1")
            sh("ethtool", "-K", d, "rx", "off", "tx", "off", "tso", "off", "gso", "off", "gro",
               "off", check=False)
            sh(*nsx, "ethtool", "-K", p, "tx", "off", "tso", "off", "gso", "off", "gro", "off",
               check=False)
            sh("ip", "link", "set", d, "up")
            sh(*nsx, "ip", "link", "set", p, "up")
        return self

    def wire(self, role):
        w = Wire(self, self.peer(role))
        self.wires.append(w)
        return w

    def close(self):
        for w in self.wires:
            w.close()
        for kind, name in reversed(self.created):
            if kind == "link":
                sh("ip", "link", "del", name, check=False)
            else:
                sh("ip", "netns", "del", name, check=False)
        self.created = []


ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


class Wire:
    """An AF_PACKET socket on the test's end of a veth: send frames, receive what shortpathd
    sent (frames not taken by an expect() stay queued: check_quiet() fails on them)."""

    def __init__(self, net, iface):
        self.iface = iface
        self.sock = in_netns(net.ns, self._open)
        self.backlog = []
        self.sent = 0       # frames sent
        self.received = 0   # frames received (all of them, taken or not)

    def _open(self):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        s.bind((self.iface, 0))
        return s

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def send(self, *frames):
        for f in frames:
            self.sock.send(f)
            self.sent += 1

    def _recv(self, timeout):
        self.sock.settimeout(max(timeout, 0.0001))
        while True:
            try:
                data, addr = self.sock.recvfrom(65536)
            except (socket.timeout, BlockingIOError):
                return None
            if addr[2] == PACKET_OUTGOING:
                continue
            self.received += 1
            return data

    def pull(self, timeout=0.0):
        """Move what arrives within timeout into the backlog."""
        deadline = time.monotonic() + timeout
        while True:
            data = self._recv(max(deadline - time.monotonic(), 0.0001))
            if data is None:
                return
            self.backlog.append(data)

    def expect(self, pred=None, timeout=3.0, what="a frame"):
        """The first frame (queued or arriving within timeout) for which pred(Seg) is true."""
        deadline = time.monotonic() + timeout
        while True:
            for i, raw in enumerate(self.backlog):
                s = Seg(raw)
                if pred is None or pred(s):
                    del self.backlog[i]
                    return s
            left = deadline - time.monotonic()
            if left <= 0:
                got = "\n  ".join(repr(Seg(r)) for r in self.backlog) or "nothing"
                raise AssertionError(f"{self.iface}: no {what} within {timeout} s; got:\n  {got}")
            data = self._recv(left)
            if data is not None:
                self.backlog.append(data)

    def expect_raw(self, raw, timeout=3.0, what="the frame"):
        return self.expect(lambda s: s.raw == raw, timeout, what)

    def check_quiet(self, wait=0.3):
        """Nothing unexpected arrived (waits `wait` seconds for stragglers)."""
        self.pull(wait)
        left, self.backlog = self.backlog, []
        assert not left, f"{self.iface}: unexpected frames:\n  " + "\n  ".join(
            repr(Seg(r)) for r in left)

    def flush(self):
        self.pull(0.0)
        self.backlog = []


# ---- a fake storage manager --------------------------------------------------------------------

class FakeManager:
    """The storage manager's /locate and /place (and /list): answers from `answers`, a dict
    (path, bucket, key) -> (status, JSON document); anything else is a 404. Every request is
    recorded in `calls` as (path, query dict)."""

    def __init__(self):
        self.answers = {}
        self.calls = []
        self.delay = 0.0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 - http.server's naming
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                u = urllib.parse.urlsplit(self.path)
                q = dict(urllib.parse.parse_qsl(u.query, keep_blank_values=True))
                outer.calls.append((u.path, q))
                if outer.delay:
                    time.sleep(outer.delay)
                st, doc = outer.answers.get((u.path, q.get("bucket"), q.get("key")),
                                            (404, {"error": "NoSuchKey"}))
                body = json.dumps(doc).encode()
                self.send_response(st)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET  # noqa: N815 - /locate/batch (prefetch): 404 like anything else

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def locate(self, bucket, key, nodes, path, size=0, op="/locate"):
        self.answers[(op, bucket, key)] = (200, {"nodes": nodes, "path": path, "size": size})

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


# ---- pcap files ----------------------------------------------------------------------------------

PCAP_HDR = struct.pack("<IHHiIII", 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1)


def read_pcap(path):
    """The frames of a pcap file (micro- or nanosecond, little-endian)."""
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    assert magic in (0xa1b2c3d4, 0xa1b23c4d), f"{path}: magic {magic:#x}"
    out, off, n = [], 24, len(data)
    unpack = struct.Struct("<IIII").unpack_from
    while off + 16 <= n:
        _, _, caplen, _ = unpack(data, off)
        off += 16
        out.append(data[off:off + caplen])
        off += caplen
    return out
