"""The object cache: the worker answers hits itself (sp_tcp_ep.c), the control side fills it.

The same rig as test_tcp_endpoint.py (shortpathd on net_pcap veths in a private namespace; the
test plays the VM's TCP stack, the storage nodes and the VIP; a fake storage manager), with the
service "tep" caching (its `cache` object through the services API). A GET that misses goes
direct to the node (the test answers as the node, with the lab service's headers); the worker
copies the response for the control thread, which inserts it; the next GET is answered by the
worker itself: the status, the node's headers (fresh Date and request ids, no Connection), the
body byte-exact, and not one frame on the uplink. Ranges, conditions and HEAD; bodies larger
than the MSS paced by the VM's window and retransmitted; invalidation by writes; TTL, verify and
stale-if-error; what is not cacheable; coalesced fills; a refused request never served.

Every test ends with lab.finish(): nothing stray on either wire, every frame accounted for, no
flow left, the TCP event counters exactly as the scenario implies, every mbuf back.
"""
import base64
import email.utils
import json
import os
import re
import time
import urllib.error

import pytest

import tcpkit as tk
from sphelpers import wait_for
from test_auth_endpoint import AK, AK2, SK, SK2, put_cred, refused, signed
from test_tcp_endpoint import (FLOW_BUFFER, GW_MAC, NODE1, NODE2, OUR_WS, VIP, Backend, Client,
                               Lab, Splice, check_built, check_node_head, rewritten, u32)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (netns, veth, DPDK)")

NODE_PATH = "/data/7f/b/k"
CACHE_CONF = """
[cache]
size_kb = 8192
max_object_kb = 64
entries = 1024
fills = 8
admission = all
fill_timeout_ms = 5000
revalidate_timeout_ms = 300
"""
LM = "Wed, 21 Oct 2015 07:28:00 GMT"
ETAG = '"9b2cf535f27731c974343645a3985328"'
NODE_RID = "4442587FB7D0A2F9"
BODY = bytes((i * 7 + 3) & 0xff for i in range(1000))
CRED_LEN = len("nodemgr:1234567890:") + 64


def node_headers(body_len, etag=ETAG, extra=()):
    """The headers of the lab service's 200 for a GET, in its order."""
    return [("Server", "nginx"), ("Date", "Thu, 01 Jan 2026 00:00:00 GMT"),
            ("Content-Type", "application/octet-stream"), ("Content-Length", str(body_len)),
            ("Last-Modified", LM), ("Connection", "close"), ("x-amz-request-id", NODE_RID),
            ("x-amz-id-2", base64.b64encode(NODE_RID.encode()).decode()), ("ETag", etag),
            ("Accept-Ranges", "bytes"), ("x-amz-meta-a", "b")] + list(extra)


def response(status_line, headers, body=b""):
    return (status_line + "\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers) +
            "\r\n").encode() + body


def node_200(body=BODY, **kw):
    return response("HTTP/1.1 200 OK", node_headers(len(body), **kw), body)


def get(path=b"/b/k", extra=b"", method=b"GET"):
    return method + b" " + path + b" HTTP/1.1\r\nHost: s3.test\r\nUser-Agent: cache-test\r\n" + \
        extra + b"\r\n"


# ---- the lab: a caching service ------------------------------------------------------------------

class CacheLab(Lab):
    """A Lab whose service caches; GET/PUT/DELETE/HEAD direct; /b/k located on NODE1 (and
    NODE2 when two replicas)."""

    def cache_service(self, cache, auth="none"):
        doc = self.api("PUT", "/v1/services/tep",
                       {"vip": VIP, "port": 80, "enhanced": ["GET", "HEAD", "PUT", "DELETE"],
                        "storage_manager": self.mgr.address, "node_key_id": "nodemgr",
                        "auth": auth, "cache": cache})
        assert doc["path"] == "direct", doc

    def cache(self):
        return self.api("GET", "/v1/cache")

    def entry(self, name="/b/k"):
        """The entry of name as GET /v1/cache/tep/objects/NAME shows it, or None (404)."""
        try:
            return self.api("GET", f"/v1/cache/tep/objects{name}")
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def wait_entry(self, name="/b/k", timeout=3.0, **want):
        def ok():
            e = self.entry(name)
            return e is not None and all(e.get(k) == v for k, v in want.items()) and e
        try:
            return wait_for(ok, timeout, what=f"the cache entry of {name}")
        except TimeoutError:
            raise AssertionError(f"no cache entry {name} ({want}): {self.entry(name)}; "
                                 f"/v1/cache {self.cache()}") from None

    def wait_fills(self, n, timeout=3.0):
        """The control thread has taken n fills (so the claims are released)."""
        wait_for(lambda: self.cache()["fills"] >= n, timeout, what=f"{n} fills taken")


@pytest.fixture
def cache_lab(cleanup):
    """cache_lab(name, cache={...}, auth=..., nodes=[...], dataplane=..., **Lab kw)."""
    def make(name, cache=None, auth="none", nodes=(NODE1,), flow_buffer=FLOW_BUFFER,
             extra_config="", **kw):
        lab = CacheLab(cleanup, name, enhanced=None, extra_config=CACHE_CONF + extra_config,
                       **kw)
        lab.flow_buffer = flow_buffer
        lab.cache_service(cache or {"policy": "ttl", "ttl_s": 60}, auth=auth)
        lab.mgr.locate("b", "k", [f"http://{n}:80" for n in nodes], NODE_PATH, size=len(BODY))
        lab.idle_pool = lab.stats()["mempool_in_use"]
        return lab
    return make


# ---- the test's side: a miss through the node, a hit read from shortpath ------------------------

def to_node_and_back(lab, c, head, resp, *, method=b"GET", path=NODE_PATH, node=NODE1, port=80,
                     isn=0x10000000, seg=1400, body=b"", end="fin"):
    """The held request goes direct to the node (checked: the rewritten head), the node answers
    resp (in segments of seg bytes), translated to the VM; then the orderly close (end "fin",
    the node's FIN on its last segment) or end "rst" (the node resets after its last segment).
    Counts the generic TCP events (the caller adds the loc_* and cache_* ones)."""
    be = Backend(lab, c, node, port, isn=isn)
    c.open(head + body)
    be.expect_syn(timeout=5)
    be.synack()
    be.expect_handshake_ack()
    pre, post = rewritten(method, path.encode(), head)
    new = be.expect_data(len(pre) + CRED_LEN + len(post) + len(body))
    check_node_head(new[:len(new) - len(body)], method, path.encode(), head)
    assert new[len(new) - len(body):] == body
    sp = Splice(c, be, delta_c=len(new) - len(head) - len(body))
    chunks = [resp[i:i + seg] for i in range(0, len(resp), seg)] or [b""]
    for i, ch in enumerate(chunks):
        last = i == len(chunks) - 1
        sp.from_be(ch, "FPA" if last and end == "fin" else "PA")
    lab.event(syn_rx=1, synack_tx=1, cookie_ok=1, requests=1, bind_node=1, be_syn_tx=1,
              flow_freed=1)
    if end == "fin":
        sp.from_vm(b"", "FA")
        sp.from_be(b"", "A")
        lab.event(closed=1)
    else:
        sp.from_be(b"", "RA")
        lab.event(be_rst=1)
    return sp


def reply_win(lab, c, held=0):
    """The window shortpath offers while it answers: its free buffer (>> 7 when scaled)."""
    free = lab.flow_buffer - held
    return min(free >> OUR_WS if c.ws is not None else free, 65535)


def read_reply(lab, c, *, head_req=False, close=False, win=None, mss=None):
    """shortpath's answer from the cache, segment by segment (each checked exactly, in order,
    nothing past its end); the VM acknowledges it. Returns (status, [(name, value)], body)."""
    data, total = b"", None
    win = reply_win(lab, c) if win is None else win
    while total is None or len(data) < total:
        s = c.expect(lambda s: s.payload or s.has("F"), what="the reply")
        assert s.seq == u32(c.rcv_nxt + len(data)), (s, len(data))
        data += s.payload
        if total is None and b"\r\n\r\n" in data:
            hdr = data.split(b"\r\n\r\n", 1)[0]
            status = int(hdr.split(b" ", 2)[1])
            cl = re.search(rb"\r\nContent-Length: (\d+)\r", hdr + b"\r")
            blen = 0 if head_req or status == 304 or cl is None else int(cl.group(1))
            total = len(hdr) + 4 + blen
        last = total is not None and len(data) >= total
        check_built(s, src_mac=GW_MAC, dst_mac=c.mac, src=VIP, dst=c.ip, sport=80,
                    dport=c.sport, seq=s.seq, ack=c.nxt,
                    flags=("FPA" if close else "PA") if last else "A", win=win,
                    payload=s.payload)
        if mss is not None:
            assert len(s.payload) <= mss, (len(s.payload), mss)
        if s.has("F"):
            assert last, ("FIN before the end", data)
    assert len(data) == total, (len(data), total, data[:400])
    c.rcv += len(data) + (1 if close else 0)
    c.wire.send(c.frame("A"))
    hdr, _, body = data.partition(b"\r\n\r\n")
    lines = hdr.decode().split("\r\n")
    fields = [tuple(ln.split(": ", 1)) for ln in lines[1:]]
    return lines[0], fields, body


def check_ids(fields):
    """Date now, a fresh request id (16 hex), x-amz-id-2 = base64(request id)."""
    f = dict(fields)
    d = email.utils.parsedate_to_datetime(f["Date"]).timestamp()
    assert abs(d - time.time()) < 5, f["Date"]
    assert re.fullmatch(r"[0-9A-F]{16}", f["x-amz-request-id"]), f
    assert f["x-amz-request-id"] != NODE_RID, f
    assert f["x-amz-id-2"] == base64.b64encode(f["x-amz-request-id"].encode()).decode(), f
    return f["x-amz-request-id"]


def hit_headers(node, length=None, close=False):
    """What a hit's 200 must carry: the node's headers minus Connection (Date and the ids are
    checked apart: blanked here), Content-Length this answer's."""
    out = []
    for n, v in node:
        if n == "Connection":
            continue
        if n in ("Date", "x-amz-request-id", "x-amz-id-2"):
            v = "*"
        if n == "Content-Length" and length is not None:
            v = str(length)
        out.append((n, v))
    if close:
        out.append(("Connection", "close"))
    return out


def blank(fields):
    return [(n, "*" if n in ("Date", "x-amz-request-id", "x-amz-id-2") else v)
            for n, v in fields]


def fill(lab, c, head=None, *, first_loc=False, resp=None, isn=0x10000000):
    """A plain GET of /b/k that misses: to the node, a 200 copied for the cache (fill started
    and handed over), the entry inserted."""
    to_node_and_back(lab, c, head or get(), resp or node_200(), isn=isn)
    lab.event(cache_miss=1, cache_fill_start=1, cache_fill_done=1,
              **({"loc_miss": 1, "loc_resolved": 1} if first_loc else {"loc_hit": 1}))


def send_req(c, data):
    """A request on a connection (maybe kept alive) that shortpath answers at once: no ACK of
    its own, the answer carries it (read_reply checks its ack)."""
    c.send(data)
    c.held = 0   # the answer starts: what was held is taken (a pipelined rest aside)


def hit(lab, c, head=None, *, connect=True, head_req=False, close=False, mss=None):
    """A request answered by shortpath: the ACK of the request, then the answer."""
    if connect:
        c.connect()
    send_req(c, head or get())
    return read_reply(lab, c, head_req=head_req, close=close, mss=mss)


def vm_close(lab, c):
    """The VM closes a kept-alive connection between requests: shortpath's FIN (carrying the
    ACK of the VM's); the VM acknowledges it and the flow ends."""
    c.send(b"", "FA")
    f = c.expect(lambda s: s.has("F"), what="shortpath's FIN")
    check_built(f, src_mac=GW_MAC, dst_mac=c.mac, src=VIP, dst=c.ip, sport=80, dport=c.sport,
                seq=c.rcv_nxt, ack=c.nxt, flags="FA", win=None)
    c.rcv += 1
    c.wire.send(c.frame("A"))
    lab.wait_no_flows()
    lab.event(flow_freed=1)


def hit_events(lab, n=1, status=200, nbytes=len(BODY), keepalive=0, conns=1, head=0):
    lab.event(cache_hit=n, requests=n, cache_keepalive=keepalive, cache_head=head,
              cache_bytes=nbytes, syn_rx=conns, synack_tx=conns, cookie_ok=conns,
              **{f"cache_{status}": n})


def finish(lab):
    """lab.finish(), and the packet pool back at its idle value before the stop."""
    try:
        wait_for(lambda: lab.stats()["mempool_in_use"] <= lab.idle_pool, 3,
                 what="the pool back at its idle value")
    except TimeoutError:
        raise AssertionError(f"mbufs in use {lab.stats()['mempool_in_use']}, idle "
                             f"{lab.idle_pool}") from None
    lab.finish()


# ---- 1. miss, then hit -------------------------------------------------------------------------

def test_miss_then_hit(cache_lab):
    """GET /b/k goes to the node (the fill copied and handed over, the entry inserted); the
    same GET on a new connection is answered by shortpath: the node's status and headers (a new
    Date and ids, no Connection), the body byte-exact, nothing on the uplink."""
    lab = cache_lab("hit")
    fill(lab, Client(lab, 40001, isn=0x1000), first_loc=True)
    e = lab.wait_entry(size=len(BODY), etag=ETAG, last_modified=LM, server="nginx")
    lab.check_tcp()
    assert lab.cache()["inserted"] == 1, lab.cache()
    up_before = lab.up.received
    c = Client(lab, 40002, isn=0x2000)
    line, fields, body = hit(lab, c)
    assert line == "HTTP/1.1 200 OK", line
    assert blank(fields) == hit_headers(node_headers(len(BODY))), fields
    check_ids(fields)
    assert body == BODY
    lab.up.check_quiet(0.3)
    assert lab.up.received == up_before, "a hit sent something up"
    vm_close(lab, c)
    hit_events(lab)
    lab.check_tcp()
    e2 = lab.entry()
    assert e2["hits"] == e.get("hits", 0) + 1, e2
    w = lab.cache()["workers"]
    assert w["cache_hit"] == 1, w
    finish(lab)


# ---- 2. keep-alive -----------------------------------------------------------------------------

def test_keep_alive_and_pipelining(cache_lab):
    """Three GETs on one connection, each answered; the third pipelined in the segment of the
    second (answered once the second is acknowledged); the VM's FIN gets a FIN back."""
    lab = cache_lab("ka")
    fill(lab, Client(lab, 40101, isn=1), first_loc=True)
    lab.wait_entry()
    c = Client(lab, 40102, isn=0xfffffff0)
    _, f1, b1 = hit(lab, c)
    assert b1 == BODY
    r2, r3 = get(), get(extra=b"X-Third: 1\r\n")
    send_req(c, r2 + r3)
    # the second answer: the third request still held (the window says so)
    _, f2, b2 = read_reply(lab, c, win=reply_win(lab, c, held=len(r3)))
    assert b2 == BODY, "second"
    _, f3, b3 = read_reply(lab, c)          # after the VM's ACK of the second
    assert b3 == BODY, "third"
    ids = {check_ids(f) for f in (f1, f2, f3)}
    assert len(ids) == 3, ids
    assert blank(f2) == blank(f3) == hit_headers(node_headers(len(BODY)))
    lab.up.check_quiet(0.1)
    vm_close(lab, c)
    hit_events(lab, n=3, nbytes=3 * len(BODY), keepalive=2)
    finish(lab)


# ---- 3. ranges, conditions, HEAD ---------------------------------------------------------------

def error_fields(body):
    return dict(re.findall(rb"<(\w+)>([^<]*)</\1>", body))


def test_range_conditional_head(cache_lab):
    """On a cached object, on one kept-alive connection: 206 for bytes=1-10, -5 and 990-
    (Content-Range after the node's headers); 304 for If-None-Match with the ETag and for
    If-Modified-Since = Last-Modified (Server, Date, ids, ETag, Last-Modified); HEAD 200 with
    Content-Length 1000 and no body. Nothing on the uplink."""
    lab = cache_lab("rch")
    fill(lab, Client(lab, 40201, isn=1), first_loc=True)
    lab.wait_entry()
    c = Client(lab, 40202, isn=2)
    c.connect()
    problems = []
    node = node_headers(len(BODY))
    for rng, first, last in (("bytes=1-10", 1, 10), ("bytes=-5", 995, 999),
                             ("bytes=990-", 990, 999)):
        line, fields, body = hit(lab, c, get(extra=f"Range: {rng}\r\n".encode()),
                                 connect=False)
        check_ids(fields)
        want = hit_headers(node, length=last - first + 1) + \
            [("Content-Range", f"bytes {first}-{last}/1000")]
        if (line, blank(fields), body) != ("HTTP/1.1 206 Partial Content", want,
                                           BODY[first:last + 1]):
            problems.append((rng, line, fields, body))
    for extra in (f"If-None-Match: {ETAG}\r\n", f"If-Modified-Since: {LM}\r\n"):
        line, fields, body = hit(lab, c, get(extra=extra.encode()), connect=False)
        check_ids(fields)
        want = [("Server", "nginx"), ("Date", "*"), ("x-amz-request-id", "*"),
                ("x-amz-id-2", "*"), ("ETag", ETAG), ("Last-Modified", LM)]
        if (line, blank(fields), body) != ("HTTP/1.1 304 Not Modified", want, b""):
            problems.append((extra, line, fields, body))
    line, fields, body = hit(lab, c, get(method=b"HEAD"), connect=False, head_req=True)
    check_ids(fields)
    if (line, blank(fields), body) != ("HTTP/1.1 200 OK", hit_headers(node), b""):
        problems.append(("HEAD", line, fields, body))
    lab.up.check_quiet(0.1)
    vm_close(lab, c)
    lab.event(cache_hit=6, requests=6, cache_206=3, cache_304=2, cache_200=1, cache_head=1,
              cache_keepalive=5, cache_bytes=25, syn_rx=1, synack_tx=1, cookie_ok=1)
    finish(lab)
    assert not problems, "\n".join(repr(p) for p in problems)


def test_416_and_412_errors(cache_lab):
    """On a cached object, kept alive: bytes=5000- is 416 with the S3 InvalidRange document
    (RangeRequested, ActualObjectSize) and Content-Range: bytes */1000; If-Match: "other" is
    412 PreconditionFailed (Condition If-Match); the lab service's status and message; the
    connection stays (no Connection: close). Nothing on the uplink."""
    lab = cache_lab("err")
    fill(lab, Client(lab, 40251, isn=1), first_loc=True)
    lab.wait_entry()
    c = Client(lab, 40252, isn=2)
    c.connect()
    problems = []
    line, fields, body = hit(lab, c, get(extra=b"Range: bytes=5000-\r\n"), connect=False)
    rid = check_ids(fields)
    ef = error_fields(body)
    f = dict(fields)
    want = {"status": "HTTP/1.1 416 Requested Range Not Satisfiable",
            "Content-Range": "bytes */1000", "Content-Type": "application/xml",
            "Content-Length": str(len(body)), "Connection": None,
            b"Code": b"InvalidRange", b"Message": b"The requested range is not satisfiable",
            b"Resource": b"/b/k", b"RequestId": rid.encode(), b"RangeRequested": b"bytes=5000-",
            b"ActualObjectSize": b"1000"}
    got = {k: (line if k == "status" else f.get(k) if isinstance(k, str) else ef.get(k))
           for k in want}
    if got != want:
        problems.append(("416", {k: (got[k], want[k]) for k in want if got[k] != want[k]},
                         line, fields, body))
    line, fields, body = hit(lab, c, get(extra=b'If-Match: "other"\r\n'), connect=False)
    rid = check_ids(fields)
    ef = error_fields(body)
    f = dict(fields)
    want = {"status": "HTTP/1.1 412 Precondition Failed", "Content-Type": "application/xml",
            "Content-Length": str(len(body)), "Connection": None,
            b"Code": b"PreconditionFailed",
            b"Message": b"At least one of the pre-conditions you specified did not hold",
            b"Resource": b"/b/k", b"RequestId": rid.encode(), b"Condition": b"If-Match"}
    got = {k: (line if k == "status" else f.get(k) if isinstance(k, str) else ef.get(k))
           for k in want}
    if got != want:
        problems.append(("412", {k: (got[k], want[k]) for k in want if got[k] != want[k]},
                         line, fields, body))
    lab.up.check_quiet(0.1)
    vm_close(lab, c)
    lab.event(cache_hit=2, requests=2, cache_416=1, cache_412=1, cache_keepalive=1, syn_rx=1,
              synack_tx=1, cookie_ok=1)
    finish(lab)
    assert not problems, "\n".join(repr(p) for p in problems)


# ---- 4. a body larger than the MSS, paced by the window, retransmitted -------------------------

def test_large_body_window_and_retransmission(cache_lab):
    """A 20000-byte object to a VM with MSS 536 and a 2000-byte window (unscaled): segments of at
    most 536 bytes, never a byte beyond its ACK + window; a window the VM does not acknowledge
    is sent again after rto_ms (from the first unacknowledged byte); three duplicate ACKs send
    it again at once; the body reassembles byte-exact."""
    obj = bytes((i * 31 + i // 256) & 0xff for i in range(20000))
    lab = cache_lab("big", dataplane="rto_ms = 1000\n")
    fill(lab, Client(lab, 40301, isn=1), first_loc=True, resp=node_200(obj))
    lab.wait_entry(size=len(obj))
    WIN, MSS = 2000, 536
    c = Client(lab, 40302, isn=0x7fffff00, mss=MSS, ws=None, win=WIN)
    c.connect()
    c.send_answered(get())
    c.held = 0
    base = c.rcv_nxt           # the reply's first byte
    got = {}                   # offset -> payload (retransmissions must be the same bytes)

    def take(timeout=0.25, first_timeout=2.0):
        """The segments that arrive now, each exact and within the window; returns them."""
        segs = []
        while True:
            try:
                s = c.expect(lambda s: s.payload or s.has("F"),
                             timeout=first_timeout if not segs else timeout, what="reply data")
            except AssertionError:
                return segs
            off = u32(s.seq - base)
            acked = c.rcv
            assert off >= acked and off + len(s.payload) <= acked + WIN, \
                f"segment [{off}, {off + len(s.payload)}) beyond ACK {acked} + window {WIN}"
            assert 0 < len(s.payload) <= MSS, s
            check_built(s, src_mac=GW_MAC, dst_mac=c.mac, src=VIP, dst=c.ip, sport=80,
                        dport=c.sport, seq=s.seq, ack=c.nxt, flags=tk.flag_str(s.flags),
                        win=lab.flow_buffer, payload=s.payload)
            assert not s.has("F") and s.has("A"), s
            if off in got:
                assert got[off] == s.payload, f"retransmission at {off} differs"
            got[off] = s.payload
            segs.append((off, s.payload, time.monotonic()))

    def have():
        out = b""
        while len(out) in got:
            out += got[len(out)]
        return out

    def ack(n):
        c.rcv = n
        c.wire.send(c.frame("A"))

    first = take()
    assert [o for o, _, _ in first] == [0, 536, 1072, 1608] and len(have()) == WIN, first
    ack(WIN)                                    # the next window
    second = take()
    assert len(have()) == 2 * WIN, second
    # the VM "loses" that window: nothing acknowledged; after rto_ms it comes again
    t_sent = second[-1][2]
    again = take(first_timeout=3.0)
    assert again and again[0][0] == WIN, again
    waited = again[0][2] - t_sent
    assert 0.6 < waited < 2.0, f"retransmitted {waited:.2f} s after (rto 1 s)"
    lab.event(retransmit=1)
    ack(2 * WIN)
    third = take()
    assert third and third[0][0] == 2 * WIN, third
    # three duplicate ACKs of 2 * WIN: the first unacknowledged segment again, at once
    for _ in range(2):
        c.wire.send(c.frame("A"))
    lab.vm.check_quiet(0.05)
    t0 = time.monotonic()
    c.wire.send(c.frame("A"))
    fast = take(first_timeout=0.2)
    assert fast and fast[0][0] == 2 * WIN and fast[0][2] - t0 < 0.15, fast
    lab.event(retransmit=1)
    # the rest, a window at a time
    total = None
    while True:
        data = have()
        if total is None and b"\r\n\r\n" in data:
            total = data.index(b"\r\n\r\n") + 4 + len(obj)
        if total is not None and len(data) >= total:
            break
        ack(len(data))
        assert take(timeout=0.1), f"stalled at {len(data)}"
    data = have()
    assert len(data) == total, (len(data), total)
    ack(total)
    hdr, _, body = data.partition(b"\r\n\r\n")
    assert hdr.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\nContent-Length: 20000\r\n" in hdr
    assert body == obj
    lab.up.check_quiet(0.1)
    vm_close(lab, c)
    hit_events(lab, nbytes=len(obj))
    finish(lab)


# ---- 5. invalidation ---------------------------------------------------------------------------

def node_ok(lab, c, head, body=b"", method=b"PUT", status="200 OK", isn=0x30000000):
    """A write that goes direct: the node answers with an ETag and closes."""
    resp = response(f"HTTP/1.1 {status}",
                    [("Server", "nginx"), ("Date", "Thu, 01 Jan 2026 00:00:01 GMT"),
                     ("ETag", '"new"'), ("Content-Length", "0"), ("Connection", "close")])
    to_node_and_back(lab, c, head, resp, method=method, body=body, isn=isn)


def test_writes_invalidate(cache_lab):
    """After hits: a PUT /b/k (the node answers 200 with an ETag) makes the next GET a miss (to
    the node; refilled); a DELETE likewise; a POST /b?delete (to the VIP) invalidates the whole
    service: the next GET misses again."""
    lab = cache_lab("inval")
    lab.mgr.locate("b", "k", [f"http://{NODE1}:80"], NODE_PATH, op="/place")
    fill(lab, Client(lab, 40401, isn=1), first_loc=True)
    lab.wait_entry()
    c = Client(lab, 40402, isn=2)
    assert hit(lab, c)[2] == BODY
    vm_close(lab, c)
    hit_events(lab)
    lab.check_tcp()
    fills = lab.cache()["fills"]

    # PUT: invalidated before it goes anywhere; its small body is written through
    body = b"new body"
    put = (b"PUT /b/k HTTP/1.1\r\nHost: s3.test\r\nContent-Length: %d\r\n"
           b"Content-Type: text/plain\r\n\r\n" % len(body))
    node_ok(lab, Client(lab, 40403, isn=3), put, body)
    lab.event(cache_invalidate=1, loc_miss=1, loc_resolved=1, cache_write_through=1,
              cache_fill_start=1, cache_fill_done=1)
    lab.check_tcp()
    lab.wait_fills(fills + 1)
    wait_for(lambda: lab.entry() is None or not lab.entry()["valid"], 3,
             what="the entry gone after the PUT")
    fill(lab, Client(lab, 40404, isn=4), isn=0x31000000)     # a miss: to the node, refilled
    lab.check_tcp()
    lab.wait_entry(valid=True)
    c = Client(lab, 40405, isn=5)
    assert hit(lab, c)[2] == BODY
    vm_close(lab, c)
    hit_events(lab)

    # DELETE
    node_ok(lab, Client(lab, 40406, isn=6), b"DELETE /b/k HTTP/1.1\r\nHost: s3.test\r\n\r\n",
            method=b"DELETE", status="204 No Content", isn=0x32000000)
    lab.event(cache_invalidate=1, loc_hit=1)
    lab.check_tcp()
    wait_for(lambda: lab.entry() is None or not lab.entry()["valid"], 3,
             what="the entry gone after the DELETE")
    fills = lab.cache()["fills"]
    fill(lab, Client(lab, 40407, isn=7), isn=0x33000000)
    lab.check_tcp()
    lab.wait_fills(fills + 1)
    lab.wait_entry(valid=True)

    # POST /b?delete: to the VIP; every object of the service stops being served
    doc = b"<Delete><Object><Key>other</Key></Object></Delete>"
    post = (b"POST /b?delete HTTP/1.1\r\nHost: s3.test\r\nContent-Length: %d\r\n\r\n"
            % len(doc)) + doc
    c = Client(lab, 40408, isn=8)
    vip = Backend(lab, c, VIP, 80, isn=0x34000000)
    c.open(post)
    vip.expect_syn(timeout=3)
    vip.synack()
    vip.expect_handshake_ack()
    assert vip.expect_data(len(post)) == post
    sp = Splice(c, vip)
    sp.from_be(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", "PA")
    sp.from_vm(b"", "RA")
    lab.wait_no_flows()
    lab.event(syn_rx=1, synack_tx=1, cookie_ok=1, requests=1, cache_invalidate=1,
              vip_not_enhanced=1, bind_vip=1, be_syn_tx=1, vm_rst=1, flow_freed=1)
    lab.check_tcp()
    wait_for(lambda: lab.entry() is None, 3, what="the service's entries removed")
    fill(lab, Client(lab, 40409, isn=9), isn=0x35000000)
    lab.wait_entry()
    finish(lab)


# ---- 6. TTL ------------------------------------------------------------------------------------

def test_ttl_expiry_refills(cache_lab):
    """ttl_s 1: a hit at once; 1.5 s later the entry is expired: a miss (cache_expired), to the
    node, refilled (the entry replaced)."""
    lab = cache_lab("ttl", cache={"policy": "ttl", "ttl_s": 1})
    fill(lab, Client(lab, 40501, isn=1), first_loc=True)
    lab.wait_entry()
    c = Client(lab, 40502, isn=2)
    assert hit(lab, c)[2] == BODY
    vm_close(lab, c)
    hit_events(lab)
    lab.check_tcp()
    time.sleep(1.5)
    fill(lab, Client(lab, 40503, isn=3), isn=0x20000000)
    lab.event(cache_expired=1)
    # (at once: the TTL is 1 s, and the closed flow's counters come 1 s later)
    wait_for(lambda: lab.cache()["inserted"] == 2, 1, what="the second insert")
    e = lab.entry()
    if not (e["fresh"] is True and e["valid"] is True):
        raise AssertionError(f"after the refill: {json.dumps(e)}\n{json.dumps(lab.cache())}")
    assert lab.cache()["replaced"] == 1, lab.cache()
    lab.check_tcp()
    finish(lab)


# ---- 7. verify ---------------------------------------------------------------------------------

def test_verify_serves_and_asks(cache_lab):
    """Policy verify with ttl_s 0: the entry is past its TTL at once; a GET is still answered
    from it (cache_stale_verify) and the control thread is asked to revalidate (its request to
    the node goes through the kernel: in this rig it may fail; only the worker side is pinned)."""
    lab = cache_lab("verify", cache={"policy": "verify", "ttl_s": 0})
    fill(lab, Client(lab, 40601, isn=1), first_loc=True)
    lab.wait_entry()
    c = Client(lab, 40602, isn=2)
    line, fields, body = hit(lab, c)
    assert line == "HTTP/1.1 200 OK" and body == BODY
    assert blank(fields) == hit_headers(node_headers(len(BODY)))
    lab.up.check_quiet(0.1)
    vm_close(lab, c)
    hit_events(lab)
    lab.event(cache_stale_verify=1)
    lab.check_tcp()
    wait_for(lambda: lab.cache()["revalidations"]["asked"] >= 1, 3, what="a revalidation")
    finish(lab)


# ---- 8. stale-if-error -------------------------------------------------------------------------

def test_stale_if_error(cache_lab):
    """ttl_s 1, stale_if_error_s 60: past the TTL the GET goes to the nodes; both refuse (RST to
    the SYN): the VM gets the cached object (cache_stale_if_error), the fill is dropped."""
    lab = cache_lab("sie", cache={"policy": "ttl", "ttl_s": 1, "stale_if_error_s": 60},
                    nodes=(NODE1, NODE2))
    fill(lab, Client(lab, 40701, isn=1), first_loc=True)
    lab.wait_entry()
    lab.check_tcp()
    time.sleep(1.3)
    c = Client(lab, 40702, isn=2)
    c.open(get())
    for node in (NODE1, NODE2):
        t = Backend(lab, c, node, 80, isn=1)
        t.expect_syn(timeout=3)
        lab.up.send(t.frame("RA", seq=0, ack=u32(c.isn + 1), win=0))
    c.held = 0
    line, fields, body = read_reply(lab, c)
    assert line == "HTTP/1.1 200 OK" and body == BODY, (line, body[:100])
    assert blank(fields) == hit_headers(node_headers(len(BODY)))
    check_ids(fields)
    lab.up.check_quiet(0.1)
    vm_close(lab, c)
    lab.event(cache_expired=1, cache_miss=1, cache_fill_start=1, cache_fill_abort=1, loc_hit=1,
              bind_node=1, be_syn_tx=2, be_refused=2, replica_retry=1, cache_stale_if_error=1)
    lab.event(cache_hit=1, cache_200=1, cache_bytes=len(BODY), syn_rx=1, synack_tx=1,
              cookie_ok=1, requests=1)
    finish(lab)


# ---- 9. not cacheable --------------------------------------------------------------------------

def test_not_cacheable(cache_lab):
    """A node's 200 with Transfer-Encoding: chunked, a 404, a 200 cut by the node's RST: the
    fill is started and given up (cache_fill_abort), nothing inserted; a Range GET and a
    conditional GET that miss start no fill."""
    lab = cache_lab("nc")
    chunked = [(n, v) for n, v in node_headers(5) if n != "Content-Length"] + \
        [("Transfer-Encoding", "chunked")]
    to_node_and_back(lab, Client(lab, 40801, isn=1), get(),
                     response("HTTP/1.1 200 OK", chunked, b"5\r\nhello\r\n0\r\n\r\n"))
    lab.event(cache_miss=1, cache_fill_start=1, cache_fill_abort=1, loc_miss=1, loc_resolved=1)
    lab.check_tcp()
    nf = b"<Error><Code>NoSuchKey</Code></Error>"
    to_node_and_back(lab, Client(lab, 40802, isn=2), get(),
                     response("HTTP/1.1 404 Not Found",
                              [("Server", "nginx"), ("Content-Type", "application/xml"),
                               ("Content-Length", str(len(nf))), ("Connection", "close")], nf),
                     isn=0x20000000)
    lab.event(cache_miss=1, cache_fill_start=1, cache_fill_abort=1, loc_hit=1)
    lab.check_tcp()
    cut = node_200()[:-500]
    to_node_and_back(lab, Client(lab, 40803, isn=3), get(), cut, isn=0x30000000, end="rst")
    lab.event(cache_miss=1, cache_fill_start=1, cache_fill_abort=1, loc_hit=1)
    lab.check_tcp()
    # Range and conditional misses: no fill
    for i, extra in enumerate((b"Range: bytes=0-9\r\n", b'If-None-Match: "x"\r\n',
                               b"If-Modified-Since: " + LM.encode() + b"\r\n")):
        c = Client(lab, 40810 + i, isn=10 + i)
        be = Backend(lab, c, NODE1, 80, isn=77)
        c.open(get(extra=extra))
        be.expect_syn(timeout=3)
        c.wire.send(c.frame("RA"))
        be.expect(lambda s: s.has("R"), what="RST to the node")
        lab.wait_no_flows()
        lab.event(syn_rx=1, synack_tx=1, cookie_ok=1, requests=1, cache_miss=1, loc_hit=1,
                  bind_node=1, be_syn_tx=1, vm_rst=1, rst_sent=1, flow_freed=1)
    lab.check_tcp()
    time.sleep(0.2)
    doc = lab.cache()
    assert doc["entries"] == 0 and doc["inserted"] == 0, doc
    assert lab.entry() is None
    finish(lab)


# ---- 10. coalescing ----------------------------------------------------------------------------

def test_concurrent_misses_coalesce(cache_lab):
    """Two GETs of the same uncached object on two connections at once: one fill, one request
    to the node (cache_fill_start 1, cache_fill_coalesced 1); the second GET waits for that fill
    (cache_wait) and is answered from the cache once it landed (cache_wait_hit), nothing of it
    on the uplink; one entry."""
    lab = cache_lab("coal", extra_config="coalesce_wait_ms = 5000\n")
    c1, c2 = Client(lab, 40901, isn=1), Client(lab, 40902, isn=2)
    n1 = Backend(lab, c1, NODE1, 80, isn=0x10000000)
    head = get()
    c1.open(head)
    n1.expect_syn(timeout=5)
    c2.open(head)  # held: it waits for c1's fill
    lab.event(syn_rx=2, synack_tx=2, cookie_ok=2, requests=2, loc_miss=1, loc_resolved=1,
              bind_node=1, be_syn_tx=1, cache_miss=2, cache_fill_start=1,
              cache_fill_coalesced=1, cache_wait=1)
    lab.check_tcp()
    n1.synack()
    n1.expect_handshake_ack()
    pre, post = rewritten(b"GET", NODE_PATH.encode(), head)
    new = n1.expect_data(len(pre) + CRED_LEN + len(post))
    check_node_head(new, b"GET", NODE_PATH.encode(), head)
    sp = Splice(c1, n1, delta_c=len(new) - len(head))
    sp.from_be(node_200(), "FPA")
    sp.from_vm(b"", "FA")
    sp.from_be(b"", "A")
    lab.event(closed=1, flow_freed=1, cache_fill_done=1)
    status, fields, body = read_reply(lab, c2)
    assert status == "HTTP/1.1 200 OK" and body == BODY, (status, fields)
    assert ("Content-Length", str(len(BODY))) in fields, fields
    vm_close(lab, c2)
    lab.event(cache_wait_hit=1, cache_hit=1, cache_200=1, cache_bytes=len(BODY))
    lab.wait_entry()
    lab.check_tcp()
    assert lab.cache()["fills"] == 1 and lab.cache()["inserted"] == 1, lab.cache()
    finish(lab)


def test_waiting_miss_fetches_itself_when_the_fill_fails(cache_lab):
    """The first GET's response is not cacheable (a 404): its fill is given up, and the GET
    that waited for it goes to the node itself (cache_wait_miss)."""
    lab = cache_lab("coalfail", extra_config="coalesce_wait_ms = 5000\n")
    c1, c2 = Client(lab, 40911, isn=1), Client(lab, 40912, isn=2)
    n1 = Backend(lab, c1, NODE1, 80, isn=0x10000000)
    n2 = Backend(lab, c2, NODE1, 80, isn=0x20000000)
    head = get()
    c1.open(head)
    n1.expect_syn(timeout=5)
    c2.open(head)
    lab.event(cache_wait=1)
    n1.synack()
    n1.expect_handshake_ack()
    pre, post = rewritten(b"GET", NODE_PATH.encode(), head)
    new = n1.expect_data(len(pre) + CRED_LEN + len(post))
    sp1 = Splice(c1, n1, delta_c=len(new) - len(head))
    sp1.from_be(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "FPA")
    n2.expect_syn(timeout=3)  # the fill was given up: the waiting GET goes itself
    n2.synack()
    n2.expect_handshake_ack()
    new2 = n2.expect_data(len(pre) + CRED_LEN + len(post))
    sp2 = Splice(c2, n2, delta_c=len(new2) - len(head))
    sp2.from_be(node_200(), "FPA")
    for s in (sp1, sp2):
        s.from_vm(b"", "FA")
        s.from_be(b"", "A")
    lab.event(syn_rx=2, synack_tx=2, cookie_ok=2, requests=2, loc_miss=1, loc_resolved=1,
              loc_hit=1, bind_node=2, be_syn_tx=2, closed=2, flow_freed=2, cache_miss=2,
              cache_fill_start=2, cache_fill_coalesced=1, cache_fill_abort=1, cache_fill_done=1,
              cache_wait_miss=1)
    lab.wait_entry()
    lab.check_tcp()
    finish(lab)


# ---- the gate: a refused request is never a hit --------------------------------------------------

def test_refused_request_never_hits(cache_lab):
    """Auth mode first: an authorized GET fills the cache; then a wrong signature, no
    credentials at all, and an authentic client without the right to bucket b are refused (the
    S3 errors, nothing up) though the object is cached; the authorized client's next GET is a
    hit."""
    lab = cache_lab("auth", auth="first")
    wait_for(lambda: lab.api("GET", "/v1/auth")["loaded"], 5, what="credentials loaded")
    put_cred(lab, AK, SK, ["*"], ["*"])
    put_cred(lab, AK2, SK2, ["other"], ["*"])
    head, _ = signed("GET", "/b/k")
    fill(lab, Client(lab, 41001, isn=1), head, first_loc=True)
    lab.event(auth_punt=1, auth_ok=1, auth_verdicts=1)
    lab.wait_entry()
    lab.check_tcp()
    up = lab.up.received
    # (a verdict is per access key: AK's requests are trusted from now on, in mode first)
    refused(lab, Client(lab, 41002, isn=2), signed("GET", "/b/k", AK2, "not-the-secret")[0],
            "SignatureDoesNotMatch", b"HTTP/1.1 403 Forbidden")
    lab.event(auth_punt=1, auth_refused=1)
    refused(lab, Client(lab, 41003, isn=3), get(), "AccessDenied", b"HTTP/1.1 403 Forbidden")
    lab.event(auth_local_error=1)
    refused(lab, Client(lab, 41004, isn=4), signed("GET", "/b/k", AK2, SK2)[0], "AccessDenied",
            b"HTTP/1.1 403 Forbidden")
    lab.event(auth_punt=1, auth_refused=1, auth_verdicts=1)
    refused(lab, Client(lab, 41006, isn=6), signed("GET", "/b/k", AK2, SK2)[0], "AccessDenied",
            b"HTTP/1.1 403 Forbidden")          # under AK2's verdict, by the worker
    lab.event(auth_hit=1, auth_denied=1)
    lab.event(syn_rx=4, synack_tx=4, cookie_ok=4, requests=4, flow_freed=4)
    lab.check_tcp()          # no cache_hit
    c = Client(lab, 41005, isn=5)
    line, _, body = hit(lab, c, signed("GET", "/b/k")[0])
    assert line == "HTTP/1.1 200 OK" and body == BODY
    vm_close(lab, c)
    hit_events(lab)
    lab.event(auth_hit=1)
    assert lab.up.received == up, "a refused request or the hit sent something up"
    finish(lab)
