"""Local authentication in the worker (dataplane/sp_tcp_ep.c) and the control thread, frame by frame.

The same rig as test_tcp_endpoint.py (shortpathd on net_pcap veths in a private namespace, the
test plays the VM and the backends; a fake storage manager), with the service in auth mode
"first" or "every-request" and client credentials put through the management API. Requests are
signed here with an independent SigV4 implementation (hashlib/hmac, the AWS documentation's
algorithm), so the test can sign with any date, key or payload hash.

What is pinned: which requests the worker answers itself (malformed, skewed, policy under a
verdict), which go to the control thread (first request, after a credential change, every
request in every-request mode), the S3 error documents the VM gets (status line, headers,
Content-Length, segmentation to the VM's MSS, FIN), that nothing reaches the uplink for a
refused request, and the exact TCP event counters of each scenario.
"""
import datetime
import hashlib
import hmac
import re
import time

from sphelpers import wait_for
from test_tcp_endpoint import (GW_MAC, NODE1, VIP, VM2_IP, VM2_MAC, Backend, Client,
                               check_built, lab_of, u32)  # noqa: F401 - lab_of is a fixture

AK, SK = "AKIASPTESTKEY0000001", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AK2, SK2 = "AKIASPTESTKEY0000002", "secret-of-the-second-client-0123456789ab"
REGION = "us-east-1"
EMPTY_SHA = hashlib.sha256(b"").hexdigest()
NODE_PATH = "/data/7f/b/k"


def amz_now(skew_s=0):
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=skew_s)
    return t.strftime("%Y%m%dT%H%M%SZ")


def _hm(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def signed(method, path, ak=AK, sk=SK, body=b"", payload=None, skew_s=0, extra=(),
           region=REGION, host="s3.test"):
    """A whole request head (and body) signed with SigV4 in the Authorization header."""
    amz = amz_now(skew_s)
    if payload is None:
        payload = hashlib.sha256(body).hexdigest()
    headers = [("host", host), ("x-amz-content-sha256", payload), ("x-amz-date", amz)]
    headers += [(n.lower(), v) for n, v in extra]
    if body:
        headers.append(("content-length", str(len(body))))
    headers.sort()
    names = ";".join(n for n, _ in headers)
    creq = "\n".join([method, path, "", "".join(f"{n}:{v}\n" for n, v in headers), names,
                      payload])
    scope = f"{amz[:8]}/{region}/s3/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz, scope,
                     hashlib.sha256(creq.encode()).hexdigest()])
    k = _hm(_hm(_hm(_hm(("AWS4" + sk).encode(), amz[:8]), region), "s3"), "aws4_request")
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    auth = f"AWS4-HMAC-SHA256 Credential={ak}/{scope}, SignedHeaders={names}, Signature={sig}"
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers)
    return (head + f"Authorization: {auth}\r\n\r\n").encode(), body


def auth_lab(lab_of, name, mode="first", creds=((AK, SK, ["*"], ["*"]),), **kw):
    lab = lab_of(name, auth=mode, **kw)
    # the credentials are read from Redis after start: until then writes answer 503 not_loaded
    wait_for(lambda: lab.api("GET", "/v1/auth")["loaded"], 5, what="credentials loaded")
    for ak, sk, buckets, actions in creds:
        put_cred(lab, ak, sk, buckets, actions)
    lab.mgr.locate("b", "k", [f"http://{NODE1}:80"], NODE_PATH, size=5)
    return lab


def put_cred(lab, ak, sk=None, buckets=None, actions=None):
    doc = {}
    if sk is not None:
        doc["secret"] = sk
    if buckets is not None:
        doc["buckets"] = buckets
    if actions is not None:
        doc["actions"] = actions
    got = lab.api("PUT", f"/v1/services/tep/credentials/{ak}", doc)
    assert "secret" not in got, got
    return got


def to_node(lab, c, head, body=b""):
    """The request goes to NODE1 (first SYN seen), then the VM gives up (RST both ways)."""
    be = Backend(lab, c, NODE1, 80, isn=77)
    c.open(head + body)
    be.expect_syn(timeout=5)
    c.wire.send(c.frame("RA"))
    be.expect(lambda s: s.has("R"), what="RST to the node")
    lab.wait_no_flows()


def read_reply(lab, c, mss=None):
    """Shortpath's own answer, segment by segment (each checked exactly) up to its FIN; the VM
    acknowledges it and closes. Returns (status line, headers dict, body)."""
    data = b""
    while True:
        s = c.expect(lambda s: s.payload or s.has("F"), what="the reply")
        assert s.seq == u32(c.cookie + 1 + len(data)), (s, len(data))
        check_built(s, src_mac=GW_MAC, dst_mac=c.mac, src=VIP, dst=c.ip, sport=80,
                    dport=c.sport, seq=s.seq, ack=c.nxt, flags=tk_flags(s), win=None,
                    payload=s.payload)
        if mss is not None:
            assert len(s.payload) <= mss, (len(s.payload), mss)
        data += s.payload
        if s.has("F"):
            break
    c.rcv = len(data) + 1
    c.wire.send(c.frame("A"))
    c.send(b"", "FA")
    c.expect(lambda s: s.ack == c.nxt, what="the ACK of the VM's FIN")
    lab.wait_no_flows()
    hdr, _, body = data.partition(b"\r\n\r\n")
    lines = hdr.split(b"\r\n")
    fields = dict(ln.split(b": ", 1) for ln in lines[1:])
    assert int(fields[b"Content-Length"]) == len(body), data
    assert fields[b"Content-Type"] == b"application/xml" and fields[b"Connection"] == b"close"
    assert re.fullmatch(rb"[0-9A-F]{16}", fields[b"x-amz-request-id"]), fields
    return lines[0], fields, body


def tk_flags(s):
    return "FPA" if s.has("F") else "A"


def refused(lab, c, head, code, status, mss=None):
    c.connect()
    c.send_answered(head)
    line, _, body = read_reply(lab, c, mss)
    assert line == status, (line, body)
    assert f"<Code>{code}</Code>".encode() in body, body
    return body


def test_first_request_verified_then_verdict(lab_of):
    """Mode first: the first request from the VM port is verified by the control thread (a
    verdict installed), the next ones are trusted on the verdict: no punt, straight to the
    locator and the node. The policy is still checked on each (all buckets here)."""
    lab = auth_lab(lab_of, "first")
    head, _ = signed("GET", "/b/k")
    to_node(lab, Client(lab, 41001, isn=1000), head)
    lab.event(auth_punt=1, auth_ok=1, auth_verdicts=1, loc_miss=1, loc_resolved=1)
    for i in range(3):
        head, _ = signed("GET", "/b/k")
        to_node(lab, Client(lab, 41002 + i, isn=2000 + i), head)
    lab.event(auth_hit=3, loc_hit=3)
    n = 4
    lab.event(syn_rx=n, synack_tx=n, cookie_ok=n, requests=n, bind_node=n, be_syn_tx=n,
              vm_rst=n, rst_sent=n, flow_freed=n)
    doc = lab.api("GET", "/v1/auth")
    assert doc["workers"]["auth_hit"] == 3 and doc["workers"]["auth_punt"] == 1, doc
    lab.finish()


def test_refusals_answered_locally(lab_of):
    """Wrong secret, unknown key (control thread), skewed clock, malformed header, no
    credentials (the worker itself): the VM gets the service's S3 error and nothing reaches the
    uplink (lab.finish: the uplink saw no frame)."""
    lab = auth_lab(lab_of, "refuse")
    cases = [
        (signed("GET", "/b/k", sk="not-the-secret")[0], "SignatureDoesNotMatch",
         b"HTTP/1.1 403 Forbidden", "control"),
        (signed("GET", "/b/k", ak="AKIANOSUCHKEY0000000")[0], "InvalidAccessKeyId",
         b"HTTP/1.1 403 Forbidden", "control"),
        (signed("GET", "/b/k", skew_s=-20 * 60)[0], "RequestTimeTooSkewed",
         b"HTTP/1.1 403 Forbidden", "worker"),
        (b"GET /b/k HTTP/1.1\r\nHost: s3.test\r\nx-amz-date: " + amz_now().encode() +
         b"\r\nx-amz-content-sha256: " + EMPTY_SHA.encode() +
         b"\r\nAuthorization: AWS4-HMAC-SHA256 Credential=" + AK.encode() +
         b"/20250101/us-east-1/s3/aws4_request\r\n\r\n", "AuthorizationHeaderMalformed",
         b"HTTP/1.1 400 Bad Request", "worker"),
        (b"GET /b/k HTTP/1.1\r\nHost: s3.test\r\n\r\n", "AccessDenied",
         b"HTTP/1.1 403 Forbidden", "worker"),
    ]
    for i, (head, code, status, where) in enumerate(cases):
        body = refused(lab, Client(lab, 42001 + i, isn=10 * i), head, code, status)
        assert b"<Resource>/b/k</Resource>" in body, body
        if where == "control":
            lab.event(auth_punt=1, auth_refused=1)
        else:
            lab.event(auth_local_error=1)
    n = len(cases)
    lab.event(syn_rx=n, synack_tx=n, cookie_ok=n, requests=n, flow_freed=n)
    assert lab.mgr.calls == [], lab.mgr.calls
    assert lab.up.received == 0, "a refused request reached the uplink"
    lab.finish()


def test_policy_checked_in_the_worker(lab_of):
    """A client allowed GetObject on bucket b only: its first request (to b) earns a verdict;
    then a request to another bucket, or a PUT to b, is refused AccessDenied by the worker under
    the verdict (no punt). A second client whose first request is forbidden is verified by the
    control thread (AccessDenied, but a verdict: authentic), its next forbidden one by the
    worker."""
    lab = auth_lab(lab_of, "policy", creds=((AK, SK, ["b"], ["GetObject"]),
                                            (AK2, SK2, ["x-*"], ["*"])))
    head, _ = signed("GET", "/b/k")
    to_node(lab, Client(lab, 43001, isn=1), head)
    lab.event(auth_punt=1, auth_ok=1, auth_verdicts=1, loc_miss=1, loc_resolved=1,
              bind_node=1, be_syn_tx=1, vm_rst=1, rst_sent=1)
    refused(lab, Client(lab, 43002, isn=2), signed("GET", "/other/k")[0], "AccessDenied",
            b"HTTP/1.1 403 Forbidden")
    body = b"hello"
    refused(lab, Client(lab, 43003, isn=3), b"".join(signed("PUT", "/b/k2", body=body)),
            "AccessDenied", b"HTTP/1.1 403 Forbidden")
    lab.event(auth_hit=2, auth_denied=2)
    refused(lab, Client(lab, 43004, isn=4), signed("GET", "/b/k", AK2, SK2)[0], "AccessDenied",
            b"HTTP/1.1 403 Forbidden")
    lab.event(auth_punt=1, auth_refused=1, auth_verdicts=1)
    refused(lab, Client(lab, 43005, isn=5), signed("GET", "/b/k", AK2, SK2)[0], "AccessDenied",
            b"HTTP/1.1 403 Forbidden")
    lab.event(auth_hit=1, auth_denied=1)
    n = 5
    lab.event(syn_rx=n, synack_tx=n, cookie_ok=n, requests=n, flow_freed=n)
    lab.finish()


def test_credential_change_ends_the_verdict(lab_of):
    """After a verdict, the client's secret changes through the API: the next request is
    verified again (punt), and the old secret no longer works; a policy change does the same."""
    lab = auth_lab(lab_of, "change")
    to_node(lab, Client(lab, 44001, isn=1), signed("GET", "/b/k")[0])
    to_node(lab, Client(lab, 44002, isn=2), signed("GET", "/b/k")[0])
    lab.event(auth_punt=1, auth_ok=1, auth_verdicts=1, auth_hit=1, loc_miss=1, loc_resolved=1,
              loc_hit=1)
    put_cred(lab, AK, "the-new-secret-0123456789")
    refused(lab, Client(lab, 44003, isn=3), signed("GET", "/b/k")[0], "SignatureDoesNotMatch",
            b"HTTP/1.1 403 Forbidden")
    lab.event(auth_punt=1, auth_refused=1)
    to_node(lab, Client(lab, 44004, isn=4),
            signed("GET", "/b/k", sk="the-new-secret-0123456789")[0])
    lab.event(auth_punt=1, auth_ok=1, auth_verdicts=1, loc_hit=1)
    put_cred(lab, AK, buckets=["other"])  # the policy changes: verified again, and refused
    refused(lab, Client(lab, 44005, isn=5),
            signed("GET", "/b/k", sk="the-new-secret-0123456789")[0], "AccessDenied",
            b"HTTP/1.1 403 Forbidden")
    lab.event(auth_punt=1, auth_refused=1, auth_verdicts=1)
    lab.event(syn_rx=5, synack_tx=5, cookie_ok=5, requests=5, bind_node=3, be_syn_tx=3,
              vm_rst=3, rst_sent=3, flow_freed=5)
    lab.finish()


def test_verdict_is_per_vm_port(lab_of):
    """A verdict earned on one VM's port is never used for another's: the same client's first
    request from the second VM port is verified again (and a wrong signature from there is
    refused), while the first port keeps its verdict."""
    lab = auth_lab(lab_of, "ports", vm2=True)
    to_node(lab, Client(lab, 50001, isn=1), signed("GET", "/b/k")[0])
    lab.event(auth_punt=1, auth_ok=1, auth_verdicts=1, loc_miss=1, loc_resolved=1)
    other = dict(wire=lab.vm2, mac=VM2_MAC, ip=VM2_IP)
    refused(lab, Client(lab, 50002, isn=2, **other), signed("GET", "/b/k", sk="forged")[0],
            "SignatureDoesNotMatch", b"HTTP/1.1 403 Forbidden")
    lab.event(auth_punt=1, auth_refused=1)
    to_node(lab, Client(lab, 50003, isn=3, **other), signed("GET", "/b/k")[0])
    lab.event(auth_punt=1, auth_ok=1, auth_verdicts=1, loc_hit=1)
    to_node(lab, Client(lab, 50004, isn=4), signed("GET", "/b/k")[0])
    to_node(lab, Client(lab, 50005, isn=5, **other), signed("GET", "/b/k")[0])
    lab.event(auth_hit=2, loc_hit=2)
    lab.event(syn_rx=5, synack_tx=5, cookie_ok=5, requests=5, bind_node=4, be_syn_tx=4,
              vm_rst=4, rst_sent=4, flow_freed=5)
    lab.finish()


def test_every_request_mode(lab_of):
    """Mode every-request: each request is verified by the control thread; no verdict."""
    lab = auth_lab(lab_of, "every", mode="every-request")
    for i in range(3):
        to_node(lab, Client(lab, 45001 + i, isn=i), signed("GET", "/b/k")[0])
    lab.event(auth_punt=3, auth_ok=3, loc_miss=1, loc_resolved=1, loc_hit=2)
    lab.event(syn_rx=3, synack_tx=3, cookie_ok=3, requests=3, bind_node=3, be_syn_tx=3,
              vm_rst=3, rst_sent=3, flow_freed=3)
    lab.finish()


def test_signed_body_is_verified(lab_of):
    """A PUT whose payload hash is signed: the worker waits for the whole body (sent after the
    head), the control thread checks its SHA-256; a body that does not match the hash gets
    XAmzContentSHA256Mismatch and goes nowhere, a matching one goes to the node."""
    lab = auth_lab(lab_of, "body", mode="every-request")
    lab.mgr.locate("b", "obj", [f"http://{NODE1}:80"], "/data/1/b/obj", op="/place")
    body = bytes(range(256)) * 8
    head, _ = signed("PUT", "/b/obj", body=body)
    c = Client(lab, 46001, isn=1)
    c.connect()
    c.send_held(head)
    c.send_held(body[:1000])
    c.send_held(body[1000:1500] + b"X" * 548)      # the same length, other bytes
    line, _, doc = read_reply(lab, c)
    assert line == b"HTTP/1.1 400 Bad Request", doc
    assert b"<Code>XAmzContentSHA256Mismatch</Code>" in doc, doc
    assert lab.up.received == 0
    c = Client(lab, 46002, isn=2)
    be = Backend(lab, c, NODE1, 80, isn=5)
    c.open(head)
    c.send_held(body[:1024])
    c.send_held(body[1024:])
    be.expect_syn(timeout=5)
    lab.vm.send(c.frame("RA"))
    be.expect(lambda s: s.has("R"), what="RST to the node")
    lab.wait_no_flows()
    lab.event(auth_punt=2, auth_refused=1, auth_ok=1, loc_miss=1, loc_resolved=1)
    lab.event(syn_rx=2, synack_tx=2, cookie_ok=2, requests=2, bind_node=1, be_syn_tx=1,
              vm_rst=1, rst_sent=1, flow_freed=2)
    lab.finish()


def test_body_after_a_refusal_is_taken_and_dropped(lab_of):
    """A PUT refused before its body arrived (no Expect: 100-continue): the VM may go on sending
    the body before it reads the answer; shortpath acknowledges it, with the whole buffer as the
    window, and drops it, so the VM is never stuck; then the orderly close."""
    lab = auth_lab(lab_of, "drop", mode="every-request")
    head, _ = signed("PUT", "/b/big", sk="wrong", payload="UNSIGNED-PAYLOAD",
                     extra=[("content-length", "4000")])
    c = Client(lab, 47501, isn=11)
    c.connect()
    c.send_held(head)
    first = c.expect(lambda s: s.payload, what="the answer")
    assert first.payload.startswith(b"HTTP/1.1 403 Forbidden") and first.has("F"), first
    full = min(lab.flow_buffer >> 7, 65535)
    for part in (b"x" * 1400, b"y" * 1400, b"z" * 1200):
        c.send(part, "A")
        a = c.expect(lambda s: s.ack == c.nxt, what=f"the ACK of {c.nxt}")
        assert a.win == full, (a.win, full)
    c.rcv = 0
    reply = read_reply_after(lab, c, first.payload)
    assert b"<Code>SignatureDoesNotMatch</Code>" in reply, reply
    lab.event(auth_punt=1, auth_refused=1, syn_rx=1, synack_tx=1, cookie_ok=1, requests=1,
              flow_freed=1)
    lab.finish()


def read_reply_after(lab, c, first):
    """The VM acknowledges shortpath's whole answer (its length from Content-Length) and its FIN,
    then closes; returns the answer's body as far as the first segment had it."""
    head, _, body = first.partition(b"\r\n\r\n")
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))
    c.rcv = len(head) + 4 + length + 1
    c.wire.send(c.frame("A"))
    c.send(b"", "FA")
    c.expect(lambda s: s.ack == c.nxt and s.has("A") and not s.payload,
             what="the ACK of the VM's FIN")
    lab.wait_no_flows()
    return body


def test_long_error_is_segmented(lab_of):
    """A SignatureDoesNotMatch document (with the string to sign and canonical request) sent to
    a VM whose MSS is 536 goes out in segments of at most 536 bytes, FIN on the last."""
    lab = auth_lab(lab_of, "seg")
    c = Client(lab, 47001, isn=9, mss=536)
    head, _ = signed("GET", "/b/k", sk="wrong", extra=[("x-amz-meta-pad", "p" * 600)])
    body = refused(lab, c, head, "SignatureDoesNotMatch", b"HTTP/1.1 403 Forbidden", mss=536)
    assert len(body) > 536, len(body)
    lab.event(auth_punt=1, auth_refused=1, syn_rx=1, synack_tx=1, cookie_ok=1, requests=1,
              flow_freed=1)
    lab.finish()


def test_unverifiable_body_takes_the_ordinary_path(lab_of):
    """A signed body bigger than the request buffer cannot be checked here: the signature is
    (a wrong one is refused locally); a right one sends the request to the VIP unchanged."""
    lab = auth_lab(lab_of, "big", mode="every-request")
    body = b"z" * 20000
    head, _ = signed("PUT", "/b/big", body=body, extra=[("expect", "100-continue")])
    c = Client(lab, 48001, isn=1)
    be = Backend(lab, c, VIP, 80, isn=3)
    c.open(head)
    be.expect_syn(timeout=5)
    lab.vm.send(c.frame("RA"))
    be.expect(lambda s: s.has("R"), what="RST to the VIP")
    lab.wait_no_flows()
    bad, _ = signed("PUT", "/b/big", sk="wrong", body=body, extra=[("expect", "100-continue")])
    refused(lab, Client(lab, 48002, isn=2), bad, "SignatureDoesNotMatch",
            b"HTTP/1.1 403 Forbidden")
    lab.event(auth_punt=2, auth_ok=1, auth_refused=1, auth_vip_body=1, bind_vip=1, be_syn_tx=1,
              vm_rst=1, rst_sent=1, syn_rx=2, synack_tx=2, cookie_ok=2, requests=2,
              flow_freed=2)
    lab.finish()


def test_control_counters(lab_of):
    """GET /v1/auth: the control thread's counts agree with the workers' (verified, refused by
    reason, verification time)."""
    lab = auth_lab(lab_of, "ctl")
    to_node(lab, Client(lab, 49001, isn=1), signed("GET", "/b/k")[0])
    refused(lab, Client(lab, 49002, isn=2), signed("GET", "/b/k", ak=AK2)[0],
            "InvalidAccessKeyId", b"HTTP/1.1 403 Forbidden")
    time.sleep(0.1)
    doc = lab.api("GET", "/v1/auth")
    assert doc["punts"] == 2 and doc["ok"] == 1 and doc["refused"] == 1, doc
    assert doc["refused_by"]["unknown_access_key"] == 1, doc
    assert doc["verify"]["count"] == 2 and doc["verify"]["sum_ns"] > 0, doc
    assert doc["workers"]["auth_punt"] == 2 and doc["workers"]["auth_ok"] == 1, doc
    lab.event(auth_punt=2, auth_ok=1, auth_refused=1, auth_verdicts=1, loc_miss=1,
              loc_resolved=1, bind_node=1, be_syn_tx=1, vm_rst=1, rst_sent=1, syn_rx=2,
              synack_tx=2, cookie_ok=2, requests=2, flow_freed=2)
    lab.finish()
