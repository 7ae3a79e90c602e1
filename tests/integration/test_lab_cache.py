"""The object cache in the lab (service s3, auth first, cache ttl): a repeated GET from either VM is answered by shortpathd's worker, byte-exact, with nothing leaving the uplink and no storage node or front end seeing it; ranges, conditions and HEAD on cached objects answer exactly as the service does (compared header by header with the service's own answer); writes through shortpathd invalidate at once, writes it cannot see are stale at most for the TTL; policy verify with TTL 0 never serves a stale body after its revalidation; the budget holds and a Zipf workload keeps its hot set cached; spctl cache lists, shows and purges."""
import hashlib
import json
import os
import random
import subprocess
import time

import pytest

import sphelpers as sp
from test_lab_direct import api
from test_lab_service import ENV_JSON, SVC, lab

SPCTL = os.path.join(sp.ROOT, "tools", "spctl")
BUDGET_KB = 4096  # the lab runs with --cache-kb 4096 here: the Zipf test overflows it
GW = ("10.77.0.1", "02:77:00:00:00:01")
PER_REQUEST = {"date", "x-amz-request-id", "x-amz-id-2"}
pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root: network namespaces and af_packet")


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    """The lab with a 4 MiB cache; a bucket with objects put from the host straight to the
    service (shortpathd sees none of it); the VMs' gateway neighbour entries made permanent, so
    no ARP crosses the uplink while a test counts its packets."""
    lab("down")
    r = lab("up", "--cache-kb", str(BUDGET_KB))
    try:
        assert r.returncode == 0, f"lab.sh up failed:\n{r.stdout}{r.stderr}"
        assert "service s3 (10.79.0.10:80): direct path (auth first)" in r.stdout, r.stdout
        with open(ENV_JSON) as f:
            env = json.load(f)
        env["work"] = str(tmp_path_factory.mktemp("cache"))
        env["bucket"] = f"cache-{int(time.time())}"
        for vm in ("sp-vm1", "sp-vm2"):
            subprocess.run(["ip", "-n", vm, "neigh", "replace", GW[0], "lladdr", GW[1], "dev",
                            "eth0", "nud", "permanent"], check=True)
        out = probe(env, None, [{"method": "PUT", "path": f"/{env['bucket']}"}])
        assert out[0]["status"] == 200, out
        yield env
    finally:
        r = lab("down")
        assert "exit 0; packet pool: 0 of" in r.stdout, r.stdout + r.stderr


def events():
    return api("/v1/stats")["total"]["tcp_events"]


def delta(before, after, *names):
    return {n: after.get(n, 0) - before.get(n, 0) for n in names}


def uplink_tx():
    """Packets shortpathd sent on the uplink port so far."""
    for p in api("/v1/stats")["ports"].values():
        if p["role"] == "uplink":
            return p["tx_packets"]
    raise AssertionError("no uplink port in /v1/stats")


def service_logs():
    """Bytes of every access log of the service (load balancer, front ends, nodes, agents)."""
    d = os.path.join(SVC, "logs")
    return {f: os.path.getsize(os.path.join(d, f)) for f in sorted(os.listdir(d))
            if f.endswith(".log") and "redis" not in f and "manager" not in f}


PROBE = r"""
import hashlib, http.client, json, sys
import botocore.auth, botocore.awsrequest, botocore.credentials
spec = json.load(sys.stdin)
host = spec["endpoint"].split("://", 1)[1]
cred = botocore.credentials.Credentials(spec["ak"], spec["sk"])
out = []
conn = None
for q in spec["requests"]:
    body = bytes.fromhex(q.get("body", ""))
    req = botocore.awsrequest.AWSRequest(method=q["method"], url=f"http://{host}{q['path']}",
                                         data=body, headers=dict(q.get("headers", {})))
    botocore.auth.S3SigV4Auth(cred, "s3", spec["region"]).add_auth(req)
    if conn is None:
        conn = http.client.HTTPConnection(host, timeout=30)
    conn.request(q["method"], q["path"], body=body or None, headers=dict(req.headers.items()))
    r = conn.getresponse()
    data = r.read()
    if not spec.get("keepalive") or r.getheader("Connection", "").lower() == "close":
        conn.close()
        conn = None
    out.append({"status": r.status, "headers": r.getheaders(), "len": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "body": data.hex() if len(data) <= 4096 else None, "t": __import__("time").time()})
if conn is not None:
    conn.close()
print(json.dumps(out))
"""


def probe(env, vm, requests, keepalive=False):
    """Signed requests from VM namespace vm (through shortpathd), or from the host (vm None:
    straight to the service over the management link). keepalive: one connection for all.
    Answers: status, headers (in order), len, sha256, body (hex, small ones), t."""
    spec = {"endpoint": env["SVC_ENDPOINT"], "region": env["SVC_REGION"], "requests": requests,
            "ak": env["AWS_ACCESS_KEY_ID"], "sk": env["AWS_SECRET_ACCESS_KEY"],
            "keepalive": keepalive}
    argv = ["/usr/bin/python3", "-c", PROBE]
    if vm:
        argv = ["ip", "netns", "exec", vm] + argv
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300, input=json.dumps(spec))
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def put(env, key, data, vm=None, ctype="text/plain", meta=None):
    headers = {"Content-Type": ctype, **{f"x-amz-meta-{k}": v for k, v in (meta or {}).items()}}
    out = probe(env, vm, [{"method": "PUT", "path": f"/{env['bucket']}/{key}", "body": data.hex(),
                           "headers": headers}])
    assert out[0]["status"] == 200, out
    return dict(out[0]["headers"])["ETag"]


def get(env, vm, key, n=1, headers=None, keepalive=False, method="GET"):
    return probe(env, vm, [{"method": method, "path": f"/{env['bucket']}/{key}",
                            "headers": headers or {}} for _ in range(n)], keepalive=keepalive)


def cached(env, key):
    doc = api(f"/v1/cache/s3?prefix=/{env['bucket']}/{key}")
    return [e for e in doc["entries"] if e["name"] == f"/{env['bucket']}/{key}"]


def fill(env, key, vm="sp-vm1"):
    """GET key from vm until it is in the cache: the first GET fills it, unless a segment of the
    response was lost on the way (a fill is only ever an exact copy: it is given up on a gap,
    and the next miss fills again)."""
    for _ in range(5):
        get(env, vm, key)
        try:
            return sp.wait_for(lambda: cached(env, key), 2, what=f"{key} in the cache")
        except TimeoutError:
            continue
    raise AssertionError(f"{key} never got into the cache: {api('/v1/cache')}")


def client_get(env, name, vm, key, path):
    """A real client's GET (awscli or boto3) from a VM namespace into path."""
    base = ["ip", "netns", "exec", vm, "env", "-i", "PATH=/usr/bin:/bin", f"HOME={env['work']}",
            "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
            f"AWS_CONFIG_FILE={env['AWS_CONFIG_FILE']}",
            f"AWS_ACCESS_KEY_ID={env['AWS_ACCESS_KEY_ID']}",
            f"AWS_SECRET_ACCESS_KEY={env['AWS_SECRET_ACCESS_KEY']}",
            "AWS_DEFAULT_REGION=us-east-1", "AWS_MAX_ATTEMPTS=1"]
    if name == "awscli":
        cmd = base + ["/usr/bin/aws", "--endpoint-url", env["SVC_ENDPOINT"], "s3api",
                      "get-object", "--bucket", env["bucket"], "--key", key, path]
    else:
        cmd = base + ["/usr/bin/python3", "-c",
                      "import sys, boto3, botocore.config as c\n"
                      "s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1',"
                      " config=c.Config(s3={'addressing_style': 'path'}))\n"
                      "for i in range(3):\n"
                      "    open(sys.argv[4], 'wb').write("
                      "s3.get_object(Bucket=sys.argv[2], Key=sys.argv[3])['Body'].read())\n",
                      env["SVC_ENDPOINT"], env["bucket"], key, path]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{name}: {r.stdout}{r.stderr}"
    with open(path, "rb") as f:
        return f.read()


def comparable(o):
    """An answer without what differs per request: the Date and request id headers, the
    <RequestId> of an error document."""
    heads = [(k, v) for k, v in o["headers"] if k.lower() not in PER_REQUEST]
    body = bytes.fromhex(o["body"]) if o["body"] is not None else o["sha256"]
    if isinstance(body, bytes) and b"<RequestId>" in body:
        a, b = body.index(b"<RequestId>"), body.index(b"</RequestId>")
        body = body[:a] + body[b:]
    return o["status"], heads, body


# --- tests -----------------------------------------------------------------------------------

def test_repeated_gets_answered_locally_from_both_vms(up):
    env = up
    data = os.urandom(1000)
    put(env, "k1", data, meta={"a": "b"})
    big = os.urandom(1 << 20)
    put(env, "big", big, ctype="binary/octet-stream")
    fill(env, "k1", "sp-vm1")
    fill(env, "big", "sp-vm2")
    for vm in ("sp-vm1", "sp-vm2"):  # each VM's first request is verified (no packet either)
        get(env, vm, "k1")
    ev, tx, logs0 = events(), uplink_tx(), service_logs()
    n = 0
    for vm in ("sp-vm1", "sp-vm2"):
        out = get(env, vm, "k1", n=3, keepalive=True) + get(env, vm, "big", n=2)
        n += 5
        assert [o["status"] for o in out] == [200] * 5, out
        assert {o["sha256"] for o in out[:3]} == {hashlib.sha256(data).hexdigest()}
        assert {o["sha256"] for o in out[3:]} == {hashlib.sha256(big).hexdigest()}
        for name in ("awscli", "boto3"):
            got = client_get(env, name, vm, "big", os.path.join(env["work"], f"{name}-{vm}"))
            assert got == big, f"{name} from {vm}: not byte-exact"
            n += 1 if name == "awscli" else 3
    d = delta(ev, events(), "cache_hit", "cache_miss", "bind_node", "bind_vip")
    assert d == {"cache_hit": n, "cache_miss": 0, "bind_node": 0, "bind_vip": 0}, d
    assert uplink_tx() == tx, "packets left the uplink for cache hits"
    assert service_logs() == logs0, "the service's logs grew: it saw requests"


def test_answers_match_the_service_header_by_header(up):
    env = up
    put(env, "cmp", os.urandom(1000), meta={"colour": "blue"})
    fill(env, "cmp")
    e = cached(env, "cmp")[0]
    etag, lm = e["etag"], e["last_modified"]
    cases = [
        ("GET", {}), ("HEAD", {}),
        ("GET", {"Range": "bytes=0-9"}), ("GET", {"Range": "bytes=-5"}),
        ("GET", {"Range": "bytes=990-"}), ("GET", {"Range": "bytes=0-0"}),
        ("GET", {"Range": "bytes=5000-"}), ("GET", {"Range": "bytes=9-2"}),
        ("GET", {"Range": "bytes=0-1,5-6"}), ("HEAD", {"Range": "bytes=1-2"}),
        ("GET", {"If-None-Match": etag}), ("GET", {"If-None-Match": '"other"'}),
        ("GET", {"If-None-Match": "*"}), ("GET", {"If-Match": etag}),
        ("GET", {"If-Match": '"other"'}), ("HEAD", {"If-Match": '"other"'}),
        ("GET", {"If-Modified-Since": lm}),
        ("GET", {"If-Modified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"}),
        ("GET", {"If-Unmodified-Since": "Sat, 01 Jan 2000 00:00:00 GMT"}),
        ("GET", {"If-Unmodified-Since": lm}),
        ("GET", {"If-None-Match": '"other"', "If-Modified-Since": lm}),
        ("GET", {"If-Match": etag, "Range": "bytes=3-4"}),
    ]
    reqs = [{"method": m, "path": f"/{env['bucket']}/cmp", "headers": h} for m, h in cases]
    get(env, "sp-vm1", "cmp")  # the VM's verdict
    ev = events()
    mine = probe(env, "sp-vm1", reqs)
    d = delta(ev, events(), "cache_hit", "cache_miss")
    assert d == {"cache_hit": len(cases), "cache_miss": 0}, d
    theirs = probe(env, None, reqs)
    statuses = sorted({o["status"] for o in theirs})
    assert statuses == [200, 206, 304, 412, 416], statuses  # every kind of answer is covered
    for (m, h), a, b in zip(cases, mine, theirs):
        assert comparable(a) == comparable(b), f"{m} {h}:\n shortpath {a}\n service  {b}"
        got = dict((k.lower(), v) for k, v in a["headers"])
        assert got["x-amz-id-2"] != dict((k.lower(), v) for k, v in b["headers"])["x-amz-id-2"]


def test_writes_through_shortpathd_invalidate_at_once(up):
    env = up
    put(env, "w", b"old" * 100)
    fill(env, "w", "sp-vm1")
    get(env, "sp-vm2", "w")
    assert get(env, "sp-vm1", "w")[0]["body"] == (b"old" * 100).hex()
    ev = events()
    put(env, "w", b"new" * 100, vm="sp-vm2")  # direct, through shortpathd
    out = get(env, "sp-vm1", "w")
    assert out[0]["status"] == 200 and out[0]["body"] == (b"new" * 100).hex(), out
    assert delta(ev, events(), "cache_invalidate")["cache_invalidate"] >= 1
    r = probe(env, "sp-vm2", [{"method": "DELETE", "path": f"/{env['bucket']}/w"}])
    assert r[0]["status"] == 204, r
    out = get(env, "sp-vm1", "w")
    assert out[0]["status"] == 404, out


def test_small_put_is_written_through(up):
    """A PUT whose whole body shortpathd holds (no Expect: 100-continue) goes direct and is
    written through: once the storage node confirmed it (a conditional GET gives its
    Last-Modified), the other VM's GET is a hit that answers exactly as the service does."""
    env = up
    data = os.urandom(3000)
    get(env, "sp-vm1", "k1")  # sp-vm1's verdict: its PUT goes direct
    wt = api("/v1/cache")["write_through"]
    put(env, "wt", data, vm="sp-vm1", ctype="image/png", meta={"Owner": "lab"})
    sp.wait_for(lambda: api("/v1/cache")["write_through"]["inserted"] > wt["inserted"], 5,
                what="the write-through entry")
    get(env, "sp-vm2", "k1")  # sp-vm2's verdict
    ev = events()
    mine = get(env, "sp-vm2", "wt")[0]
    assert delta(ev, events(), "cache_hit")["cache_hit"] == 1
    theirs = get(env, None, "wt")[0]
    assert bytes.fromhex(mine["body"]) == data
    assert comparable(mine) == comparable(theirs), (mine, theirs)


def test_writes_it_cannot_see_are_stale_at_most_the_ttl(up):
    env = up
    s = api("/v1/services/s3", "PATCH", {"cache": {"policy": "ttl", "ttl_s": 2}})
    assert s["cache"]["ttl_s"] == 2, s
    try:
        put(env, "o", b"v1" * 50)
        fill(env, "o")
        t_put = time.time()
        put(env, "o", b"v2" * 50)  # from the host: the ordinary path, shortpathd does not see it
        stale_late = []
        while time.time() < t_put + 4:
            o = get(env, "sp-vm1", "o")[0]
            if o["body"] == (b"v1" * 50).hex() and o["t"] > t_put + 2 + 0.5:
                stale_late.append(o["t"] - t_put)
            time.sleep(0.2)
        assert not stale_late, f"stale beyond the TTL (2 s) at {stale_late}"
        assert get(env, "sp-vm1", "o")[0]["body"] == (b"v2" * 50).hex()
    finally:
        api("/v1/services/s3", "PATCH", {"cache": {"policy": "ttl", "ttl_s": 60}})


def test_verify_ttl0_never_stale_after_revalidation(up):
    env = up
    api("/v1/services/s3", "PATCH", {"cache": {"policy": "verify", "ttl_s": 0}})
    try:
        put(env, "v", b"one" * 10)
        fill(env, "v")
        before = api("/v1/cache")["revalidations"]
        ev = events()
        assert get(env, "sp-vm1", "v")[0]["body"] == (b"one" * 10).hex()
        assert delta(ev, events(), "cache_stale_verify")["cache_stale_verify"] == 1
        sp.wait_for(lambda: api("/v1/cache")["revalidations"].get("not_modified", 0) >
                    before.get("not_modified", 0), 5, what="a 304 revalidation")
        put(env, "v", b"two" * 10)  # the ordinary path
        changed = api("/v1/cache")["revalidations"].get("changed", 0)
        get(env, "sp-vm1", "v")  # may still be the old body: it asks the revalidation
        sp.wait_for(lambda: api("/v1/cache")["revalidations"].get("changed", 0) > changed, 5,
                    what="the revalidation that finds the change")
        for o in get(env, "sp-vm1", "v", n=5):
            assert o["status"] == 200 and o["body"] == (b"two" * 10).hex(), o
    finally:
        api("/v1/services/s3", "PATCH", {"cache": {"policy": "ttl", "ttl_s": 60}})


def test_budget_holds_and_zipf_keeps_the_hot_set(up):
    env = up
    n, size = 40, 256 << 10  # 10 MiB of objects for a 4 MiB cache
    for i in range(n):
        put(env, f"z{i:02d}", os.urandom(size))
    rng = random.Random(6)
    weights = [1 / (i + 1) ** 1.2 for i in range(n)]
    seq = rng.choices(range(n), weights, k=400)
    reqs = [{"method": "GET", "path": f"/{env['bucket']}/z{i:02d}"} for i in seq]
    ev = events()
    peak = 0
    for chunk in range(0, len(reqs), 50):
        out = probe(env, "sp-vm1", reqs[chunk:chunk + 50], keepalive=True)
        assert all(o["status"] == 200 and o["len"] == size for o in out)
        st = api("/v1/cache")
        peak = max(peak, st["bytes"])
        assert st["bytes"] <= st["budget"] == BUDGET_KB * 1024, st
    d = delta(ev, events(), "cache_hit", "cache_miss")
    hot = {e["name"] for e in api(f"/v1/cache/s3?prefix=/{env['bucket']}/z")["entries"]}
    top = [f"/{env['bucket']}/z{i:02d}" for i in range(5)]
    assert all(t in hot for t in top), (top, hot)
    st = api("/v1/cache")
    assert st["evicted"] > 0 and peak <= st["budget"], st
    assert d["cache_hit"] > len(reqs) // 3, d  # the hot set answers most of the requests


def test_spctl_cache_list_show_purge(up):
    env = up
    put(env, "p", b"purge me")
    fill(env, "p")
    r = subprocess.run([SPCTL, "cache"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "entries" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([SPCTL, "cache", "list", "s3"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and f"/{env['bucket']}/p" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([SPCTL, "cache", "show", "s3", f"/{env['bucket']}/p"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "etag" in r.stdout.lower(), r.stdout + r.stderr
    r = subprocess.run([SPCTL, "cache", "purge", "s3", f"/{env['bucket']}/p"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    assert not cached(env, "p")
    ev = events()
    get(env, "sp-vm1", "p")
    assert delta(ev, events(), "cache_miss")["cache_miss"] == 1


def test_flows_drain(up):
    sp.wait_for(lambda: api("/v1/stats")["total"].get("flows", 0) == 0, 30,
                what="every flow ended")
