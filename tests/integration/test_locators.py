"""The locator resolver (control/sp_locator.c, docs/locators.md) against the lab object service.

One lab object service on loopback (tools/lab/service/svcctl.py), one private redis-server and one
shortpathd (net_pcap ports, --no-huge) whose [keys] node_keys is a copy of the service's
nodemgr.key are shared by the module. The locators are resolved through GET /v1/locators/SERVICE,
which takes exactly the path a worker's RESOLVE takes (coalescing, Redis, the storage manager);
what only the workers can exercise (their rings, PREFETCH messages arriving) is checked through the
counters each message must move.
"""
import concurrent.futures
import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import boto3
import pytest
import redis as redislib
from botocore.config import Config

import pcaps
from sphelpers import (ROOT, Daemon, Redis, base_config, free_port_block, free_tcp_port, run_check,
                       telemetry, wait_for)
from test_telemetry_api import parse_prometheus

SERVICE_DIR = os.path.join(ROOT, "tools", "lab", "service")
SVCCTL = os.path.join(SERVICE_DIR, "svcctl.py")
SPCTL = os.path.join(ROOT, "tools", "spctl")
sys.path.insert(0, SERVICE_DIR)
import svccommon  # noqa: E402 - the lab's own node credential code

TTL_S = 30
TIMEOUT_MS = 2500
MAX_INFLIGHT = 8
PREFETCH_NEXT = 2
PREFETCH_LISTING = 50
BUCKET = "locbucket"
SVC = "objs"
CRED_RE = re.compile(r"[A-Za-z0-9_.-]+:\d{9,12}:[0-9a-f]{64}")
EVENTS = ("requests_resolve", "requests_refresh", "requests_listing", "requests_api", "resolved",
          "not_found", "failed_timeout", "failed_connect", "failed_http_status",
          "failed_bad_answer", "failed_no_node", "failed_no_key", "failed_no_service",
          "failed_inflight_full", "failed_stopping", "bad_name", "bad_message", "manager_calls",
          "redis_hits", "redis_misses", "redis_errors", "redis_stored", "coalesced",
          "prefetch_requested", "prefetched", "prefetch_skipped", "listing_prefetches",
          "ring_full", "pool_empty")


# --- the lab object service ----------------------------------------------------------------------

def svcctl(*args):
    return subprocess.run([SVCCTL, *args], capture_output=True, text=True, timeout=90)


def service_up(base):
    r = None
    for _ in range(3):  # a port may be taken between choosing and binding it: another block
        r = svcctl("up", "--base", base, "--port-base", str(free_port_block(9)))
        if r.returncode == 0:
            with open(os.path.join(base, "env.json")) as f:
                return json.load(f)
    raise AssertionError(f"svcctl up failed:\n{r.stdout}{r.stderr}")


def http(method, url, body=None, headers=None, timeout=10):
    """(status, headers, body bytes) of one plain HTTP request."""
    data = None if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


class Lab:
    def __init__(self, base, env):
        self.base, self.env = base, env
        self.manager = env["SVC_MANAGER"]  # http://127.0.0.1:P
        self.manager_addr = self.manager.split("//", 1)[1]
        with open(env["SVC_NODEMGR_KEY_FILE"]) as f:
            self.secret = f.read().strip()
        cfg = Config(signature_version="s3v4", s3={"addressing_style": "path"},
                     retries={"max_attempts": 1})
        self.s3 = boto3.client("s3", endpoint_url=env["SVC_ENDPOINT"], region_name="us-east-1",
                               aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                               aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], config=cfg)

    def locate(self, bucket, key, what="locate"):
        q = urllib.parse.urlencode({"bucket": bucket, "key": key})
        st, _h, body = http("GET", f"{self.manager}/{what}?{q}")
        return st, json.loads(body)

    def manager_lines(self, op, key=None):
        """The manager's access log lines of op (locate, place, list), for key if given."""
        with open(os.path.join(self.env["SVC_LOGS"], "manager.log")) as f:
            lines = [ln for ln in f if f" op={op} " in ln]
        if key is not None:
            lines = [ln for ln in lines if urllib.parse.parse_qs(urllib.parse.urlsplit(
                ln.split(" path=", 1)[1].split(" ", 1)[0]).query).get("key") == [key]]
        return lines

    def pid(self, name):
        with open(os.path.join(self.base, "run", name + ".pid")) as f:
            return int(f.read().split()[0])


# --- shortpathd -----------------------------------------------------------------------------------

def write_keys(dirpath, text, mode=0o600):
    path = os.path.join(dirpath, "node.keys")
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


def sp_config(prefix, api_port, redis_address, pcap_dir, node_keys, **locators):
    vm_in, up_in = os.path.join(pcap_dir, "vm.in.pcap"), os.path.join(pcap_dir, "up.in.pcap")
    pcaps.write_pcap(vm_in, [])
    pcaps.write_pcap(up_in, [])
    loc = dict(ttl_s=TTL_S, timeout_ms=TIMEOUT_MS, max_inflight=MAX_INFLIGHT,
               prefetch_next=PREFETCH_NEXT, prefetch_listing=PREFETCH_LISTING)
    loc.update(locators)
    return base_config(prefix, api_port, redis_address) + f"""
[port.vm]
device = net_pcap0,rx_pcap={vm_in}
role = vm
mac = {pcaps.VM0_MAC}

[port.uplink]
device = net_pcap1,rx_pcap={up_in}
role = uplink

[locators]
""" + "".join(f"{k} = {v}\n" for k, v in loc.items()) + f"""
[keys]
node_keys = {node_keys}
"""


class Node:
    """shortpathd with its own Redis and a node keys file; close() always cleans up."""

    def __init__(self, name, keys_text, keys_mode=0o600, **locators):
        self.dir = tempfile.mkdtemp(prefix=f"sptest-loc-{name}-")
        self.redis = Redis()
        self.prefix = f"spt-loc-{name}-{os.getpid()}"[:31]
        self.api_port = free_tcp_port()
        self.keys = write_keys(self.dir, keys_text, keys_mode)
        self.config = sp_config(self.prefix, self.api_port, self.redis.address, self.dir,
                                self.keys, **locators)
        self.daemon = Daemon(self.config, f"loc-{name}")

    def start(self):
        self.redis.start()
        self.daemon.start(ready_prefix=self.prefix, api_port=self.api_port)
        wait_for(lambda: self.api("GET", "/v1/health")[1]["redis"]["state"] == "up", 10,
                 what="Redis up")
        return self

    def close(self):
        self.daemon.close()
        self.redis.stop()
        if not os.environ.get("SP_KEEP_TMP"):
            for d in (self.dir, self.daemon.dir, self.redis.dir):
                shutil.rmtree(d, ignore_errors=True)

    def alive(self):
        return self.daemon.proc is not None and self.daemon.proc.poll() is None

    def api(self, method, path, body=None, timeout=10):
        st, headers, data = http(method, f"http://127.0.0.1:{self.api_port}{path}", body,
                                 timeout=timeout)
        doc = json.loads(data) if data.strip() else None
        return st, doc, headers

    def locate(self, key, service=SVC, op=None, verify=False, status=200):
        q = {"key": key}
        if op:
            q["op"] = op
        if verify:
            q["verify"] = "1"
        st, doc, _h = self.api("GET", f"/v1/locators/{service}?" + urllib.parse.urlencode(q))
        assert st == status, f"locate {key}: want {status}, got {st}: {doc}"
        return doc

    def counters(self):
        st, doc, _h = self.api("GET", "/v1/locators")
        assert st == 200, doc
        return doc["events"]

    def put_service(self, name, manager_addr, key_id="nodemgr", vip="10.99.0.1"):
        st, doc, _h = self.api("PUT", f"/v1/services/{name}", {
            "vip": vip, "storage_manager": manager_addr, "node_key_id": key_id, "auth": "none"})
        assert st in (200, 201), doc
        return doc

    def rcli(self):
        return redislib.Redis(unix_socket_path=self.redis.sock, decode_responses=False)


def drop_locators(node):
    """Delete every locator in the node's Redis (not the services: they live there too)."""
    r = node.rcli()
    for k in list(r.scan_iter(match="sp:loc:*", count=1000)):
        r.delete(k)


def delta(before, after):
    return {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}


def client_path(bucket, key):
    """The request path a client (boto3) sends for bucket/key."""
    return f"/{bucket}/" + urllib.parse.quote(key, safe="/~")


# --- fixtures -------------------------------------------------------------------------------------

OBJECTS = {"plain.txt": b"hello", "dir/a b+c\u00fc.bin": b"x" * 1000, "big": b"y" * 70000,
           "seq/part-00001": b"1", "seq/part-00002": b"2", "seq/part-00003": b"3",
           "seq/part-00004": b"4", "list/ka": b"ka", "list/kb": b"kb", "list/kc": b"kc",
           "list/sub/kd": b"kd"}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    base = str(tmp_path_factory.mktemp("loclab") / "lab")
    try:
        lab = Lab(base, service_up(base))
        lab.s3.create_bucket(Bucket=BUCKET)
        for k, v in OBJECTS.items():
            lab.s3.put_object(Bucket=BUCKET, Key=k, Body=v)
        yield lab
    finally:
        svcctl("down", "--base", base)
        for data in glob.glob(os.path.join(base, "node*", "data")):
            shutil.rmtree(data, ignore_errors=True)


@pytest.fixture(scope="module")
def shared(lab):
    node = Node("main", lab.secret + "\n")  # the bare secret, as svcctl writes nodemgr.key
    try:
        node.start()
        node.put_service(SVC, lab.manager_addr)
        yield node
    finally:
        node.close()


def settle(node):
    """Until nothing is in progress (lookups, manager calls, prefetches): counters are still."""
    def idle():
        doc = node.api("GET", "/v1/locators")[1]
        return doc["lookups"] == 0 and doc["inflight"] == 0 and doc["prefetch_jobs"] == 0
    wait_for(idle, 10, what="the resolver idle")


@pytest.fixture
def sp(shared):
    assert shared.alive(), "shortpathd is gone:\n" + shared.daemon.read_log()
    settle(shared)
    yield shared
    assert shared.alive(), "shortpathd exited during the test:\n" + shared.daemon.read_log()


@pytest.fixture
def extra_nodes():
    made = []

    def make(name, keys_text, **kw):
        n = Node(name, keys_text, **kw)
        made.append(n)
        return n
    yield make
    for n in made:
        n.close()


class BlackHole:
    """A TCP listener that accepts connections (in the kernel's backlog) and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.addr = f"127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self):
        self.sock.close()


@pytest.fixture
def blackhole():
    b = BlackHole()
    yield b
    b.close()


# --- found, not found, bad names ------------------------------------------------------------------

def check_found(doc, lab, bucket, key, what="locate"):
    st, want = lab.locate(bucket, key, what)
    assert st == 200, want
    assert doc["status"] == "found", doc
    nodes = [u.split("//", 1)[1] for u in want["nodes"]]
    assert doc["nodes"] == nodes[:3], (doc, want)
    assert doc["node_names"] == want["node_names"][:3]
    assert doc["path"] == want["path"]
    assert doc["bucket"] == bucket and doc["key"] == key
    assert doc["size"] == (want["size"] if what == "locate" else 0)
    assert 0 < doc["ttl_s"] <= TTL_S
    now = time.time()
    assert now + 840 - 5 <= doc["cred_expires"] <= now + 840 + 5
    assert not CRED_RE.search(json.dumps(doc)), "a credential in the API's answer"
    return want


def test_found_matches_manager(sp, lab):
    drop_locators(sp)
    before = sp.counters()
    doc = sp.locate(client_path(BUCKET, "plain.txt"))
    check_found(doc, lab, BUCKET, "plain.txt")
    assert doc["service"] == SVC and doc["op"] == "read" and doc["source"] == "manager"
    assert doc["key_id"] == "nodemgr"
    assert doc["name"] == f"/{BUCKET}/plain.txt"
    d = delta(before, sp.counters())
    assert d["requests_api"] == 1 and d["resolved"] == 1 and d["manager_calls"] == 1, d
    assert d["redis_misses"] == 1 and d["redis_stored"] == 1, d


@pytest.mark.parametrize("key", ["dir/a b+c\u00fc.bin", "big"])
def test_found_encoded_and_large(sp, lab, key):
    doc = sp.locate(client_path(BUCKET, key))
    check_found(doc, lab, BUCKET, key)
    assert doc["size"] == len(OBJECTS[key])


def test_encodings_of_one_name_are_one_locator(sp, lab):
    """%41 and A, %2F-free variants: the same decoded name, the same Redis entry."""
    drop_locators(sp)
    a = sp.locate(f"/{BUCKET}/plain.txt")
    b = sp.locate(f"/{BUCKET}/pl%61in%2Etxt")
    assert a["source"] == "manager" and b["source"] == "redis", (a, b)
    assert a["path"] == b["path"] and a["nodes"] == b["nodes"]


def test_not_found(sp, lab):
    before = sp.counters()
    doc = sp.locate(client_path(BUCKET, "no/such/key"))
    assert doc["status"] == "not_found" and "nodes" not in doc and "path" not in doc, doc
    doc = sp.locate("/nosuchbucket-xyz/key")
    assert doc["status"] == "not_found", doc
    d = delta(before, sp.counters())
    assert d["not_found"] == 2 and d["manager_calls"] == 2 and "resolved" not in d, d
    # not cached: a not-found answer is never kept (the next PUT must be seen at once)
    assert sp.rcli().exists(f"sp:loc:{{{SVC}}}:r:/{BUCKET}/no/such/key") == 0
    doc = sp.locate(client_path(BUCKET, "no/such/key"))
    assert doc["status"] == "not_found" and delta(before, sp.counters())["manager_calls"] == 3


def test_not_found_then_put(sp, lab):
    key = f"later-{os.getpid()}-x"
    assert sp.locate(client_path(BUCKET, key))["status"] == "not_found"
    lab.s3.put_object(Bucket=BUCKET, Key=key, Body=b"now")
    check_found(sp.locate(client_path(BUCKET, key)), lab, BUCKET, key)


BAD_NAMES = ["/", "//", "/bucketonly", "/bucketonly/", "noslash", "bucket/key", "//key",
             "/b/%zz", "/b/%4", "/b/a%00b", "/b%2Fc/key", "/b/a b", "/b/a?x=1", "/b/a#frag",
             "/b/" + "k" * 1100]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_name(sp, name):
    before = sp.counters()
    doc = sp.locate(name)
    assert doc["status"] == "bad_name", doc
    assert doc["name"] == name and doc["service"] == SVC
    d = delta(before, sp.counters())
    assert d == {"requests_api": 1, "bad_name": 1}, d


@pytest.mark.parametrize("query, field", [
    ("", "key"), ("key=", "key"), ("key=/b/k&op=delete", "op"), ("key=/b/k&verify=2", "verify"),
    ("key=/b/k&bogus=1", "bogus"), ("verify", "query")])
def test_api_parameter_errors(sp, query, field):
    st, doc, _h = sp.api("GET", f"/v1/locators/{SVC}?{query}")
    assert st == 400 and doc["error"] == "invalid" and doc["field"] == field, doc
    assert isinstance(doc["message"], str) and doc["message"]


def test_api_unknown_service_and_methods(sp):
    st, doc, _h = sp.api("GET", "/v1/locators/nosuch?key=/b/k")
    assert st == 404 and doc["error"] == "not_found" and "nosuch" in doc["message"], doc
    st, doc, _h = sp.api("DELETE", "/v1/locators/nosuch")
    assert st == 404 and doc["error"] == "not_found", doc
    st, doc, _h = sp.api("GET", "/v1/locators/BAD?key=/b/k")
    assert st == 400 and doc["field"] == "name", doc
    st, doc, h = sp.api("PUT", f"/v1/locators/{SVC}", {})
    assert st == 405 and doc["error"] == "method_not_allowed" and "GET" in h["Allow"], doc
    st, doc, h = sp.api("POST", "/v1/locators")
    assert st == 405 and doc["error"] == "method_not_allowed", doc
    st, doc, _h = sp.api("GET", f"/v1/locators/{SVC}/other")
    assert st == 404 and doc["error"] == "not_found", doc


def test_write_op_uses_place(sp, lab):
    key = f"new/object-{os.getpid()}.dat"
    doc = sp.locate(client_path(BUCKET, key), op="write")
    want = check_found(doc, lab, BUCKET, key, what="place")
    assert doc["op"] == "write" and doc["size"] == 0
    assert lab.manager_lines("place", key), "no /place call in the manager's log"
    assert sp.rcli().exists(f"sp:loc:{{{SVC}}}:w:/{BUCKET}/{key}") == 1
    # read and write locators are separate entries
    assert sp.locate(client_path(BUCKET, key))["status"] == "not_found"
    assert want["path"] == svccommon.object_path(BUCKET, key)


def test_write_to_missing_bucket_is_not_found(sp):
    assert sp.locate("/nosuchbucket-xyz/k", op="write")["status"] == "not_found"


# --- Redis ----------------------------------------------------------------------------------------

def test_redis_cache(sp, lab):
    key = "plain.txt"
    rk = f"sp:loc:{{{SVC}}}:r:/{BUCKET}/{key}".encode()
    r = sp.rcli()
    r.delete(rk)
    calls = len(lab.manager_lines("locate", key))
    first = sp.locate(client_path(BUCKET, key))
    assert first["source"] == "manager"
    ttl = r.ttl(rk)
    assert 0 < ttl <= TTL_S, ttl
    stored = json.loads(r.get(rk))
    assert set(stored) == {"nodes", "node_names", "path", "size", "resolved_at"}, stored
    assert [f"{ip}:{port}" for ip, port in stored["nodes"]] == first["nodes"]
    assert stored["path"] == first["path"] and stored["size"] == first["size"]
    assert abs(stored["resolved_at"] - time.time()) < 5
    before = sp.counters()
    second = sp.locate(client_path(BUCKET, key))
    assert second["source"] == "redis", second
    assert {k: second[k] for k in ("nodes", "path", "size", "status")} == \
        {k: first[k] for k in ("nodes", "path", "size", "status")}
    assert second["ttl_s"] <= first["ttl_s"]
    d = delta(before, sp.counters())
    assert d["redis_hits"] == 1 and "manager_calls" not in d, d
    assert len(lab.manager_lines("locate", key)) == calls + 1


def test_redis_copy_of_another_instance_is_used(sp, lab):
    """A locator another shortpathd stored (same schema) answers without the manager."""
    r = sp.rcli()
    rk = f"sp:loc:{{{SVC}}}:r:/{BUCKET}/elsewhere"
    r.set(rk, json.dumps({"nodes": [["10.9.9.9", 8080]], "node_names": ["n9"],
                          "path": "/objects/x/elsewhere", "size": 7,
                          "resolved_at": time.time() - 2}), ex=TTL_S)
    doc = sp.locate(f"/{BUCKET}/elsewhere")
    assert doc["source"] == "redis" and doc["nodes"] == ["10.9.9.9:8080"], doc
    assert doc["path"] == "/objects/x/elsewhere" and doc["size"] == 7
    assert TTL_S - 4 <= doc["ttl_s"] <= TTL_S - 1
    # garbage in Redis is a miss, not an answer
    r.set(rk, "not json", ex=TTL_S)
    doc = sp.locate(f"/{BUCKET}/elsewhere")
    assert doc["status"] == "not_found" and "source" not in doc, doc


def test_no_secret_in_redis(sp, lab):
    for key in ("plain.txt", "big", "list/kb"):
        sp.locate(client_path(BUCKET, key))
    sp.locate(client_path(BUCKET, f"w-{os.getpid()}-x"), op="write")
    r = sp.rcli()
    keys = list(r.scan_iter(count=1000))
    assert any(k.startswith(b"sp:loc:") for k in keys), keys
    secret = lab.secret.encode()
    for k in keys:
        t = r.type(k)
        if t == b"string":
            vals = [r.get(k)]
        elif t == b"hash":
            vals = [x for kv in r.hgetall(k).items() for x in kv]
        elif t in (b"set", b"zset", b"list"):
            vals = list(r.smembers(k)) if t == b"set" else \
                list(r.zrange(k, 0, -1)) if t == b"zset" else list(r.lrange(k, 0, -1))
        else:
            vals = []
        for v in [k] + vals:
            assert secret not in v.lower(), f"the node secret is in Redis under {k!r}"
            assert not CRED_RE.search(v.decode(errors="replace")), f"a credential in {k!r}"


def test_redis_down_asks_the_manager(lab, extra_nodes):
    n = extra_nodes("noredis", lab.secret + "\n").start()
    n.put_service(SVC, lab.manager_addr)
    n.redis.stop()
    wait_for(lambda: n.api("GET", "/v1/health")[1]["status"] == "degraded", 10,
             what="Redis seen down")
    before = n.counters()
    for _ in range(2):
        doc = n.locate(client_path(BUCKET, "plain.txt"))
        assert doc["status"] == "found" and doc["source"] == "manager", doc
    d = delta(before, n.counters())
    # each resolve: its GET and the SET of the answer fail
    assert d["redis_errors"] == 4 and d["manager_calls"] == 2 and d["resolved"] == 2, d
    st, doc, _h = n.api("DELETE", f"/v1/locators/{SVC}")
    assert st == 503 and doc["error"] == "redis_unavailable", doc
    assert n.alive()


def test_drop_service_locators(sp, lab):
    for key in ("plain.txt", "big", "list/ka"):
        sp.locate(client_path(BUCKET, key))
    r = sp.rcli()
    r.set(b"sp:loc:{other}:r:/b/k", b"{}")  # another service's entry stays
    n = len(list(r.scan_iter(match=f"sp:loc:{{{SVC}}}:*")))
    assert n >= 3
    st, doc, _h = sp.api("DELETE", f"/v1/locators/{SVC}")
    assert st == 200 and doc == {"service": SVC, "deleted": n}, doc
    assert list(r.scan_iter(match=f"sp:loc:{{{SVC}}}:*")) == []
    assert r.exists(b"sp:loc:{other}:r:/b/k") == 1
    r.delete(b"sp:loc:{other}:r:/b/k")
    assert sp.locate(client_path(BUCKET, "plain.txt"))["source"] == "manager"


# --- the credential -------------------------------------------------------------------------------

def test_credential_accepted_by_storage_node(sp, lab):
    """verify=1: shortpathd sends HEAD path with its credential to the first node itself."""
    for key in ("plain.txt", "dir/a b+c\u00fc.bin"):
        doc = sp.locate(client_path(BUCKET, key), verify=True)
        v = doc["verify"]
        assert v == {"node": doc["nodes"][0], "method": "HEAD", "status": 200,
                     "accepted": True}, doc
        doc = sp.locate(client_path(BUCKET, key), verify=True)  # from Redis: credential anew
        assert doc["source"] == "redis" and doc["verify"]["status"] == 200, doc
    # the node's access log names the key id shortpathd signed with and the request passed
    logs = "".join(open(p).read() for p in glob.glob(os.path.join(lab.env["SVC_LOGS"],
                                                                  "node*.access.log")))
    assert re.search(r'key_id=nodemgr auth=ok .*"HEAD /objects/' + BUCKET, logs), logs[-2000:]


def test_python_credential_matches_format(sp, lab):
    """The same node, the same path, a credential made by svccommon.node_auth: accepted too
    (the storage node's check is the reference both are held against)."""
    doc = sp.locate(client_path(BUCKET, "plain.txt"))
    auth = svccommon.node_auth("nodemgr", lab.secret, "HEAD", doc["path"], ttl=840)
    st, _h, _b = http("HEAD", f"http://{doc['nodes'][0]}{doc['path']}",
                      headers={"X-SP-Node-Auth": auth})
    assert st == 200
    bad = auth[:-1] + ("0" if auth[-1] != "0" else "1")
    st, _h, _b = http("HEAD", f"http://{doc['nodes'][0]}{doc['path']}",
                      headers={"X-SP-Node-Auth": bad})
    assert st == 403


def test_wrong_secret_is_refused_by_node(lab, extra_nodes):
    n = extra_nodes("wrong", "nodemgr " + "ab" * 32 + "\n").start()
    n.put_service(SVC, lab.manager_addr)
    doc = n.locate(client_path(BUCKET, "plain.txt"), verify=True)
    assert doc["status"] == "found"
    assert doc["verify"]["status"] == 403 and doc["verify"]["accepted"] is False, doc


def test_no_key_for_key_id(lab, extra_nodes):
    n = extra_nodes("nokey", "# keys\nfrontend " + "cd" * 32 + "\n\nother " + "ef" * 16 +
                    "  # comment\n").start()
    n.put_service(SVC, lab.manager_addr)  # node_key_id nodemgr: not in the file
    before = n.counters()
    doc = n.locate(client_path(BUCKET, "plain.txt"))
    assert doc["status"] == "failed" and doc["reason"] == "no_key", doc
    d = delta(before, n.counters())
    assert d == {"requests_api": 1, "failed_no_key": 1}, d
    assert n.api("GET", "/v1/locators")[1]["node_keys"] == 2
    # with that key id it resolves
    n.put_service("fe", lab.manager_addr, key_id="frontend", vip="10.99.0.2")
    assert n.locate(client_path(BUCKET, "plain.txt"), service="fe")["status"] == "found"


# --- node keys file: start-up refused -------------------------------------------------------------

def start_refused(lab, keys_text, mode=0o600, path=None):
    d = tempfile.mkdtemp(prefix="sptest-lockeys-")
    try:
        keys = path if path is not None else write_keys(d, keys_text, mode)
        prefix = f"spt-lockeys-{os.getpid()}"[:31]
        cfg = sp_config(prefix, free_tcp_port(), "unix:/nonexistent/redis.sock", d, keys)
        daemon = Daemon(cfg, "lockeys")
        try:
            daemon.start()
            rc = daemon.proc.wait(30)
            daemon.close()
            return rc, daemon.read_log()
        finally:
            daemon.close()
            shutil.rmtree(daemon.dir, ignore_errors=True)
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("case, text, mode, why, leak", [
    ("mode-0644", None, 0o644, r"mode 0644 .*chmod 600", None),
    ("mode-0640", None, 0o640, r"mode 0640 .*chmod 600", None),
    ("mode-0604", None, 0o604, r"mode 0604 .*chmod 600", None),
    ("odd-hex", "nodemgr abc\n", 0o600, r"line 1: .*hex", "abc"),
    ("not-hex", "a 00\nnodemgr zz99\n", 0o600, r"line 2: .*hex", "zz99"),
    ("three-fields", "nodemgr 0a 1b\n", 0o600, r"line 1: expected", "0a"),
    ("bare-and-more", "0011\nnodemgr 00\n", 0o600, r"bare secret", "0011"),
    ("empty", "# nothing\n\n", 0o600, r"no key", None),
    ("bad-key-id", "node:mgr 00\n", 0o600, r"line 1: a key id", None),
])
def test_bad_node_keys_refuse_start(lab, case, text, mode, why, leak):
    rc, log = start_refused(lab, text if text is not None else lab.secret + "\n", mode)
    assert rc == 1, log
    lines = [ln for ln in log.splitlines() if "[keys] node_keys" in ln]
    assert lines and lines[0].startswith("config: [keys] node_keys: "), log
    assert re.search(why, lines[0]), lines[0]
    assert lab.secret not in log
    if leak is not None:
        assert leak not in lines[0].split("node.keys: ", 1)[1], lines[0]


def test_missing_node_keys_refuse_start(lab):
    rc, log = start_refused(lab, None, path="/nonexistent/node.keys")
    assert rc == 1 and "config: [keys] node_keys: /nonexistent/node.keys: cannot open" in log, log


CHECK_SECRET = "5ec7e75ec7e75ec7e75ec7e75ec7e75e"


def check_keys(keys_text, mode=0o600, path=None):
    """shortpathd --check on a locators config whose node_keys file is keys_text with mode (or
    path as given): (exit code, stdout + stderr, the keys file's path)."""
    d = tempfile.mkdtemp(prefix="sptest-lockeys-check-")
    try:
        keys = path if path is not None else write_keys(d, keys_text, mode)
        cfg = sp_config(f"spt-lockeys-check-{os.getpid()}"[:31], free_tcp_port(),
                        "unix:/nonexistent/redis.sock", d, keys)
        rc, out = run_check(cfg)
        return rc, out, keys
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("text", [f"# nodes\nnodemgr {CHECK_SECRET}\nfrontend 00ff\n",
                                  f"{CHECK_SECRET}\n"])
def test_check_accepts_node_keys(text):
    rc, out, _ = check_keys(text)
    assert rc == 0 and ": OK (" in out, out
    assert CHECK_SECRET not in out


@pytest.mark.parametrize("case, text, mode, why", [
    ("mode-0644", f"nodemgr {CHECK_SECRET}\n", 0o644,
     r"mode 0644 gives group/others access to the secrets \(chmod 600\)$"),
    ("mode-0640", f"nodemgr {CHECK_SECRET}\n", 0o640, r"mode 0640 .*chmod 600"),
    ("mode-0604", f"{CHECK_SECRET}\n", 0o604, r"mode 0604 .*chmod 600"),
    ("odd-hex", "nodemgr abc\n", 0o600, r"line 1: the secret of key id nodemgr is not an even"),
    ("not-hex", f"a {CHECK_SECRET}\nnodemgr zz99\n", 0o600, r"line 2: .*hex"),
    ("bare-not-hex", "zz99\n", 0o600, r"line 1: the secret is not an even number of hex"),
    ("three-fields", f"nodemgr {CHECK_SECRET} 1b\n", 0o600, r"line 1: expected"),
    ("bare-and-more", f"{CHECK_SECRET}\nnodemgr 00\n", 0o600, r"bare secret must be the file's"),
    ("empty", "# nothing\n\n", 0o600, r"no key in it$"),
    ("bad-key-id", f"node:mgr {CHECK_SECRET}\n", 0o600, r"line 1: a key id"),
])
def test_check_refuses_bad_node_keys(case, text, mode, why):
    """--check reads the node keys file as start-up does: exit 1, one line naming [keys] node_keys,
    nothing of the file's contents."""
    rc, out, keys = check_keys(text, mode)
    assert rc == 1, out
    line = out.strip()
    assert "\n" not in line and line.startswith(f"config: [keys] node_keys: {keys}: "), out
    assert re.search(why, line), line
    assert CHECK_SECRET not in out and "zz99" not in out


def test_check_refuses_missing_node_keys():
    rc, out, _ = check_keys(None, path="/nonexistent/node.keys")
    assert rc == 1, out
    assert out.strip() == ("config: [keys] node_keys: /nonexistent/node.keys: cannot open: "
                           "No such file or directory"), out


# --- failures of the storage manager --------------------------------------------------------------

def test_manager_refuses_connections(sp):
    port = free_tcp_port()  # nothing listens there
    sp.put_service("down", f"127.0.0.1:{port}", vip="10.99.0.3")
    try:
        before = sp.counters()
        t0 = time.monotonic()
        doc = sp.locate(f"/{BUCKET}/plain.txt", service="down")
        assert time.monotonic() - t0 < TIMEOUT_MS / 1000
        assert doc["status"] == "failed" and doc["reason"] == "connect", doc
        d = delta(before, sp.counters())
        assert d["failed_connect"] == 1 and d["manager_calls"] == 1, d
        st, health, _h = sp.api("GET", "/v1/health")
        assert st == 200 and health["status"] == "ok"
    finally:
        sp.api("DELETE", "/v1/services/down")


def test_manager_timeout_does_not_block(sp, lab, blackhole):
    sp.put_service("hole", blackhole.addr, vip="10.99.0.4")
    try:
        before = sp.counters()
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            t0 = time.monotonic()
            slow = ex.submit(sp.locate, f"/{BUCKET}/plain.txt", "hole")
            time.sleep(0.2)
            # meanwhile the control thread answers everything else at once
            t1 = time.monotonic()
            fast = sp.locate(client_path(BUCKET, "big"))
            assert fast["status"] == "found" and time.monotonic() - t1 < 0.5
            assert sp.api("GET", "/v1/health")[0] == 200
            doc = slow.result(10)
            took = time.monotonic() - t0
        assert doc["status"] == "failed" and doc["reason"] == "timeout", doc
        assert TIMEOUT_MS / 1000 - 0.1 <= took < TIMEOUT_MS / 1000 + 1.5, took
        d = delta(before, sp.counters())
        assert d["failed_timeout"] == 1, d
        st, text = telemetry_json(sp)
        assert text["inflight"] == 0
    finally:
        sp.api("DELETE", "/v1/services/hole")


def test_inflight_limit(sp, blackhole):
    sp.put_service("hole2", blackhole.addr, vip="10.99.0.5")
    try:
        before = sp.counters()
        n = MAX_INFLIGHT + 3
        with concurrent.futures.ThreadPoolExecutor(n) as ex:
            futs = [ex.submit(sp.locate, f"/{BUCKET}/key-{i}-x", "hole2") for i in range(n)]
            docs = [f.result(15) for f in futs]
        reasons = sorted(d["reason"] for d in docs)
        assert reasons.count("inflight_full") == 3 and reasons.count("timeout") == MAX_INFLIGHT, \
            reasons
        d = delta(before, sp.counters())
        assert d["failed_inflight_full"] == 3 and d["manager_calls"] == MAX_INFLIGHT, d
    finally:
        sp.api("DELETE", "/v1/services/hole2")


def test_manager_bad_answers(sp):
    """A fake manager: 500, non-JSON, no IPv4 node, a bad path."""
    import http.server
    import threading

    answers = {
        "/locate?bucket=b&key=e500": (500, b'{"error": "x"}'),
        "/locate?bucket=b&key=notjson": (200, b"<html>"),
        "/locate?bucket=b&key=v6": (200, json.dumps({"nodes": ["http://[fd00::1]:80"],
                                                     "path": "/o/b/v6"}).encode()),
        "/locate?bucket=b&key=badpath": (200, json.dumps({"nodes": ["http://10.0.0.1"],
                                                          "path": "no slash"}).encode()),
        "/locate?bucket=b&key=ok": (200, json.dumps({
            "nodes": ["http://10.0.0.1", "http://10.0.0.2:8080/", "http://10.0.0.3:81",
                      "http://10.0.0.4:82"], "node_names": ["a", "b", "c", "d"],
            "path": "/o/b/ok", "size": 3}).encode()),
    }

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802
            st, body = answers.get(self.path, (404, b"{}"))
            self.send_response(st)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    sp.put_service("fake", f"127.0.0.1:{srv.server_address[1]}", vip="10.99.0.6")
    try:
        want = {"e500": "http_status", "notjson": "bad_answer", "v6": "no_node",
                "badpath": "bad_answer"}
        for key, reason in want.items():
            doc = sp.locate(f"/b/{key}", service="fake")
            assert doc["status"] == "failed" and doc["reason"] == reason, (key, doc)
        doc = sp.locate("/b/ok", service="fake")
        assert doc["nodes"] == ["10.0.0.1:80", "10.0.0.2:8080", "10.0.0.3:81"], doc
        assert doc["node_names"] == ["a", "b", "c"] and doc["size"] == 3
        assert sp.locate("/b/missing", service="fake")["status"] == "not_found"
    finally:
        sp.api("DELETE", "/v1/services/fake")
        srv.shutdown()


# --- coalescing -----------------------------------------------------------------------------------

def test_coalescing(sp, lab):
    """N concurrent requests for one name while the manager is held: one manager call."""
    key = "dir/a b+c\u00fc.bin"
    drop_locators(sp)
    mgr = lab.pid("manager")
    calls = len(lab.manager_lines("locate", key))
    before = sp.counters()
    n = 12
    os.kill(mgr, signal.SIGSTOP)
    try:
        with concurrent.futures.ThreadPoolExecutor(n) as ex:
            futs = [ex.submit(sp.locate, client_path(BUCKET, key)) for _ in range(n)]
            wait_for(lambda: sp.counters()["requests_api"] - before["requests_api"] == n, 5,
                     what="all requests in shortpathd")
            os.kill(mgr, signal.SIGCONT)
            docs = [f.result(10) for f in futs]
    finally:
        os.kill(mgr, signal.SIGCONT)
    assert all(d["status"] == "found" and d["source"] == "manager" for d in docs), docs
    assert len({json.dumps([d["nodes"], d["path"]]) for d in docs}) == 1
    d = delta(before, sp.counters())
    assert d["manager_calls"] == 1 and d["coalesced"] == n - 1 and d["resolved"] == n, d
    wait_for(lambda: len(lab.manager_lines("locate", key)) == calls + 1, 5, what="manager log")
    time.sleep(0.2)
    assert len(lab.manager_lines("locate", key)) == calls + 1


def test_read_and_write_are_not_coalesced(sp, lab):
    drop_locators(sp)
    before = sp.counters()
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        r = ex.submit(sp.locate, client_path(BUCKET, "plain.txt"))
        w = ex.submit(sp.locate, client_path(BUCKET, "plain.txt"), SVC, "write")
        assert r.result()["status"] == w.result()["status"] == "found"
    assert delta(before, sp.counters())["manager_calls"] == 2


# --- prefetch -------------------------------------------------------------------------------------

def worker_prefetched(node):
    """PREFETCH messages the workers took from their rings (their TCP endpoint's counter)."""
    return node.api("GET", "/v1/stats")[1]["total"]["tcp_events"]["loc_prefetched"]


def sent_or_lost(d):
    return d.get("prefetched", 0) + d.get("pool_empty", 0) + d.get("ring_full", 0)


def test_prefetch_next_numbers(sp, lab):
    r = sp.rcli()
    drop_locators(sp)
    workers = len(sp.api("GET", "/v1/stats")[1]["workers"])
    w_before = worker_prefetched(sp)
    before = sp.counters()
    batches = len(lab.manager_lines("locate"))
    doc = sp.locate(client_path(BUCKET, "seq/part-00001"))
    assert doc["status"] == "found"
    rk = f"sp:loc:{{{SVC}}}:r:/{BUCKET}/seq/part-0000"
    wait_for(lambda: r.exists(rk + "2") and r.exists(rk + "3"), 5, what="prefetched locators")
    assert not r.exists(rk + "4"), "more than prefetch_next were prefetched"
    d = wait_for(lambda: (x := delta(before, sp.counters())).get("redis_stored") == 3 and x, 5,
                 what="counters")
    assert d["prefetch_requested"] == PREFETCH_NEXT and d["manager_calls"] == 2, d
    # each prefetched locator went to every worker: sent, or counted as why not
    assert sent_or_lost(d) == PREFETCH_NEXT * workers, d
    assert d.get("prefetched") == PREFETCH_NEXT * workers, d  # the pool and rings had room
    # ... and the workers took them from their rings (their TCP endpoint counts them)
    wait_for(lambda: worker_prefetched(sp) - w_before == PREFETCH_NEXT * workers, 5,
             what="the workers' loc_prefetched")
    assert any("/locate/batch" in ln for ln in lab.manager_lines("locate")[batches:])
    doc = sp.locate(client_path(BUCKET, "seq/part-00002"))
    assert doc["source"] == "redis"
    check_found(doc, lab, BUCKET, "seq/part-00002")


def test_prefetch_uses_redis_first(sp, lab):
    """A second resolve of part-00001: its next numbers come from Redis, no batch call."""
    r = sp.rcli()
    drop_locators(sp)
    sp.locate(client_path(BUCKET, "seq/part-00001"))
    wait_for(lambda: r.exists(f"sp:loc:{{{SVC}}}:r:/{BUCKET}/seq/part-00003"), 5, what="prefetch")
    r.delete(f"sp:loc:{{{SVC}}}:r:/{BUCKET}/seq/part-00001")
    before = sp.counters()
    sp.locate(client_path(BUCKET, "seq/part-00001"))
    d = wait_for(lambda: (x := delta(before, sp.counters())).get("redis_hits", 0) >= 2 and x, 5,
                 what="prefetch from Redis")
    assert d["manager_calls"] == 1 and d["prefetch_requested"] == 2, d


def test_no_prefetch_without_number_or_for_writes(sp, lab):
    drop_locators(sp)
    before = sp.counters()
    sp.locate(client_path(BUCKET, "plain.txt"))
    sp.locate(client_path(BUCKET, "seq/part-00004"), op="write")
    time.sleep(0.3)
    d = delta(before, sp.counters())
    assert "prefetch_requested" not in d, d


def test_listing_prefetch(sp, lab):
    r = sp.rcli()
    drop_locators(sp)
    before = sp.counters()
    st, doc, _h = sp.api("POST", f"/v1/locators/{SVC}/prefetch",
                         {"bucket": BUCKET, "prefix": "list/"})
    assert st == 200, doc
    assert doc["listed"] == 4 and doc["found"] == 4 and doc["asked"] == 4, doc
    assert doc["redis_hits"] == 0 and doc["bucket"] == BUCKET
    for k in ("list/ka", "list/kb", "list/kc", "list/sub/kd"):
        assert r.exists(f"sp:loc:{{{SVC}}}:r:/{BUCKET}/{k}")
        assert sp.locate(client_path(BUCKET, k))["source"] == "redis"
    d = delta(before, sp.counters())
    assert d["listing_prefetches"] == 1 and d["prefetch_requested"] == 4, d
    assert lab.manager_lines("list"), "no /list call"
    # a second time: everything from Redis, no batch
    st, doc, _h = sp.api("POST", f"/v1/locators/{SVC}/prefetch", {"bucket": BUCKET,
                                                                  "prefix": "list/"})
    assert doc["redis_hits"] == 4 and doc["asked"] == 0, doc
    st, doc, _h = sp.api("POST", f"/v1/locators/{SVC}/prefetch", {"bucket": "nosuch-bkt"})
    assert st == 404, doc
    st, doc, _h = sp.api("POST", f"/v1/locators/{SVC}/prefetch", {"bucket": BUCKET, "x": 1})
    assert st == 400 and doc["field"] == "x", doc


# --- observability --------------------------------------------------------------------------------

def telemetry_json(sp):
    return 200, telemetry(sp.prefix, "/shortpath/locators")


def test_telemetry_metrics_stats(sp, lab):
    sp.locate(client_path(BUCKET, "plain.txt"))
    api = sp.api("GET", "/v1/locators")[1]
    tel = telemetry(sp.prefix, "/shortpath/locators")
    for e in EVENTS:
        assert tel[e] >= api["events"][e], e
    assert set(api["events"]) == set(EVENTS)
    assert tel["node_keys"] == 1 and tel["manager_latency_us_count"] >= 1
    assert 0 < tel["manager_latency_us_max"] <= tel["manager_latency_us_sum"]
    st, _h, body = http("GET", f"http://127.0.0.1:{sp.api_port}/metrics")
    fam = parse_prometheus(body.decode())
    ev = fam["sp_locator_events_total"]
    assert ev["type"] == "counter"
    got = {dict(k)["event"]: v for k, v in ev["samples"].items()}
    assert set(got) == set(EVENTS)
    assert got["resolved"] >= api["events"]["resolved"] >= 1
    assert fam["sp_locator_manager_seconds_total"]["type"] == "counter"
    assert fam["sp_locator_manager_seconds_max"]["type"] == "gauge"
    assert list(fam["sp_locator_manager_answers_total"]["samples"].values())[0] >= 1
    assert list(fam["sp_locator_node_keys"]["samples"].values()) == [1.0]
    stats = sp.api("GET", "/v1/stats")[1]
    assert set(stats["locators"]["events"]) == set(EVENTS)


def test_dpdk_telemetry_script(sp):
    script = "/usr/bin/dpdk-telemetry.py"
    if not os.path.exists(script):
        pytest.skip("no dpdk-telemetry.py")
    r = subprocess.run([script, "-f", sp.prefix], input="/shortpath/locators\n",
                       capture_output=True, text=True, timeout=20)
    line = [ln for ln in r.stdout.splitlines() if "/shortpath/locators" in ln and "{" in ln]
    assert line, r.stdout + r.stderr
    assert "manager_calls" in json.loads(line[-1])["/shortpath/locators"]


# --- spctl ----------------------------------------------------------------------------------------

def spctl(sp, *args):
    return subprocess.run([SPCTL, "--api", f"127.0.0.1:{sp.api_port}", *args],
                          capture_output=True, text=True, timeout=30)


def test_spctl_locate(sp, lab):
    name = client_path(BUCKET, "dir/a b+c\u00fc.bin")
    r = spctl(sp, "locate", SVC, name)
    assert r.returncode == 0, r.stderr
    doc = sp.locate(name)
    assert re.search(r"^status:\s+found$", r.stdout, re.M), r.stdout
    assert doc["nodes"][0] in r.stdout and doc["path"] in r.stdout
    r = spctl(sp, "locate", SVC, name, "--op", "write", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["op"] == "write", r.stdout + r.stderr
    r = spctl(sp, "locate", "nosuch", name)
    assert r.returncode == 1 and "404 not_found" in r.stderr, r.stderr
    r = spctl(sp, "locate", SVC, "/b/%zz")
    assert r.returncode == 0 and re.search(r"^status:\s+bad_name$", r.stdout, re.M), r.stdout
    r = spctl(sp, "locate", SVC, name, "--verify")
    assert r.returncode == 0 and re.search(r"^verify:.*200.*accepted", r.stdout, re.M), r.stdout


# --- shutdown -------------------------------------------------------------------------------------

def test_stop_with_calls_in_flight(lab, extra_nodes, blackhole):
    n = extra_nodes("stop", lab.secret + "\n", timeout_ms=20000).start()
    n.put_service("hole", blackhole.addr)
    with concurrent.futures.ThreadPoolExecutor(3) as ex:
        futs = [ex.submit(n.api, "GET", f"/v1/locators/hole?key=/b/k{i}", None, 30)
                for i in range(3)]
        wait_for(lambda: n.counters()["manager_calls"] == 3, 5, what="calls in flight")
        t0 = time.monotonic()
        rc, log = n.daemon.stop()
        assert time.monotonic() - t0 < 10
        for f in futs:
            try:
                st, doc, _h = f.result(10)
                assert st == 503 and doc["error"] == "shutting_down", doc
            except (urllib.error.URLError, ConnectionError, OSError):
                pass  # the API closed the connection before the answer went out
    assert rc == 0, log
