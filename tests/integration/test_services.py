"""The services management API (/v1/services, docs/api-services.md) and tools/spctl, end to end.

One shortpathd and one private redis-server are shared by the module (every test leaves them with
no services); the tests that stop Redis, restart shortpathd or replay traffic get their own.
"""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

import pcaps
from sphelpers import (ROOT, Daemon, Redis, base_config, free_tcp_port, pool_in_use_after_close,
                       telemetry, wait_for)
from sphelpers import new_redis as sp_new_redis

SPCTL = os.path.join(ROOT, "tools", "spctl")
HASH, EPOCH = "sp:services", "sp:services:epoch"
HEARTBEAT_S = 0.2           # sphelpers.base_config: heartbeat_ms = 200
SYNC_S = 12 * HEARTBEAT_S   # "within a few heartbeats", with room for a loaded machine
VM_MAC, GW_MAC = pcaps.VM0_MAC, pcaps.GW_MAC
OUTPUT_KEYS = {"name", "vip", "port", "kind", "enhanced", "storage_manager", "node_key_id",
               "cache", "auth", "region", "path", "note", "epoch"}
DROP = object()  # svc(field=DROP) leaves the field out


def svc(**changes):
    """A valid definition with only the required fields, changed by keyword (DROP removes)."""
    body = {"vip": "10.1.0.1", "storage_manager": "10.2.0.1:9000", "node_key_id": "node-1"}
    for k, v in changes.items():
        if v is DROP:
            body.pop(k, None)
        else:
            body[k] = v
    return body


def full(**changes):
    """A definition with every input field given (as another shortpathd would store it)."""
    body = {"vip": "10.1.0.1", "port": 80, "kind": "http-object", "enhanced": ["GET", "HEAD"],
            "storage_manager": "10.2.0.1:9000", "node_key_id": "node-1",
            "cache": {"policy": "none", "ttl_s": 0}, "auth": "service", "region": "us-east-1"}
    body.update(changes)
    return body


def without_epoch(doc):
    """A service without its epoch, or a listing's services without theirs.

    The epoch a definition was stored under is checked exactly in the answers to writes; a
    reload from Redis may or may not keep it (Redis holds the definitions and one counter), so
    elsewhere definitions are compared without it."""
    if "services" in doc:
        return [without_epoch(s) for s in doc["services"]]
    return {k: v for k, v in doc.items() if k != "epoch"}


def check_error(answer, status, code, field=None):
    """answer is an error `status` {"error": code, "message": ..., "field": one of field}."""
    st, doc, text = answer
    assert st == status, f"want {status} {code}, got {st}: {text}"
    assert isinstance(doc, dict) and doc.get("error") == code, text
    assert isinstance(doc.get("message"), str) and doc["message"], text
    if field is not None:
        fields = (field,) if isinstance(field, str) else field
        assert doc.get("field") in fields, f"field {doc.get('field')!r}, want {fields}: {text}"
    return doc


# --- one shortpathd with a private Redis ---------------------------------------------------------

class Node:
    """shortpathd (VM port + uplink on net_pcap) using a given Redis; close() always cleans up.

    vm_frames, when given, are replayed forever on the VM port (infinite_rx); the uplink
    receives nothing. Neither port writes a tx pcap: net_pcap counts and frees what it sends."""

    def __init__(self, name, redis, vm_frames=()):
        self.redis = redis
        self.prefix = f"spt-svc-{name}-{os.getpid()}"[:31]
        self.api_port = free_tcp_port()
        self.dir = tempfile.mkdtemp(prefix=f"sptest-svc-{name}-pcap-")
        vm_in, up_in = os.path.join(self.dir, "vm.in.pcap"), os.path.join(self.dir, "up.in.pcap")
        pcaps.write_pcap(vm_in, list(vm_frames))
        pcaps.write_pcap(up_in, [])
        replay = ",infinite_rx=1" if vm_frames else ""
        config = base_config(self.prefix, self.api_port, redis.address) + f"""
[port.vm]
device = net_pcap0,rx_pcap={vm_in}{replay}
role = vm
mac = {VM_MAC}

[port.uplink]
device = net_pcap1,rx_pcap={up_in}
role = uplink
"""
        self.daemon = Daemon(config, f"svc-{name}")

    def start(self):
        self.daemon.start(ready_prefix=self.prefix, api_port=self.api_port)
        wait_for(lambda: self.health()["redis"]["state"] == "up", 10, what="Redis up")
        return self

    def stop(self):
        return self.daemon.stop()

    def close(self):
        self.daemon.close()
        if not os.environ.get("SP_KEEP_TMP"):
            shutil.rmtree(self.dir, ignore_errors=True)
            shutil.rmtree(self.daemon.dir, ignore_errors=True)

    def alive(self):
        return self.daemon.proc is not None and self.daemon.proc.poll() is None

    # the API
    def call(self, method, path, body=None, raw=None):
        """(status, JSON document or None, text) of one request; body goes as JSON, raw as is."""
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.api_port}{path}", data=data,
                                     method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        doc = None
        if text.strip():
            try:
                doc = json.loads(text)
            except ValueError:
                raise AssertionError(f"{method} {path}: {status} answer is not JSON: "
                                     f"{text!r}") from None
        return status, doc, text

    def ok(self, method, path, body=None, status=200):
        st, doc, text = self.call(method, path, body)
        assert st == status, f"{method} {path} {body}: want {status}, got {st}: {text}"
        return doc

    def put(self, name, body, status=201):
        return self.ok("PUT", f"/v1/services/{name}", body, status)

    def patch(self, name, body):
        return self.ok("PATCH", f"/v1/services/{name}", body)

    def delete(self, name):
        st, doc, text = self.call("DELETE", f"/v1/services/{name}")
        assert st == 204 and text == "", f"DELETE {name}: {st} {text!r}"

    def get(self, name):
        return self.ok("GET", f"/v1/services/{name}")

    def status_of(self, name):
        return self.call("GET", f"/v1/services/{name}")[0]

    def listing(self):
        return self.ok("GET", "/v1/services")

    def names(self):
        return [s["name"] for s in self.listing()["services"]]

    def health(self):
        return self.ok("GET", "/v1/health")

    def telemetry(self, cmd):
        return telemetry(self.prefix, cmd)

    def log_lines(self):
        return self.daemon.read_log().splitlines()

    # Redis, as another shortpathd would write it
    def redis_epoch(self):
        return int(self.redis.cli("GET", EPOCH) or 0)

    def write_behind(self, name, value):
        """HSET the raw value (a definition as JSON text) + INCR; returns the new epoch."""
        self.redis.cli("HSET", HASH, name, value)
        return int(self.redis.cli("INCR", EPOCH))

    def delete_behind(self, name):
        assert self.redis.cli("HDEL", HASH, name) == "1"
        return int(self.redis.cli("INCR", EPOCH))

    def wait_synced(self):
        """Until the API's epoch is Redis's (the last change made behind its back was seen)."""
        want = self.redis_epoch()
        return wait_for(lambda: (doc := self.listing())["epoch"] == want and doc, SYNC_S,
                        what=f"the API at epoch {want}")


def new_redis(cleanup):
    return sp_new_redis(cleanup).start()


def new_node(cleanup, name, redis, **kw):
    node = Node(name, redis, **kw)
    cleanup(node.close)
    return node


def shared_node(name, ready=None):
    """A shortpathd with its own Redis for a whole module (a generator for a fixture): started,
    then ready(node) if given, yielded, then stopped with its Redis."""
    redis = Redis()
    node = None
    try:
        redis.start()
        node = Node(name, redis)
        node.start()
        if ready is not None:
            ready(node)
        yield node
    finally:
        if node is not None:
            node.close()
        redis.stop()
        shutil.rmtree(redis.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def shared():
    yield from shared_node("shared")


@pytest.fixture
def sp(shared):
    """The shared shortpathd with no services; whatever the test defined is removed after it."""
    assert shared.alive(), "the shared shortpathd is gone:\n" + shared.daemon.read_log()
    shared.wait_synced()
    assert shared.listing()["services"] == [], "a previous test left services behind"
    yield shared
    assert shared.alive(), "shortpathd exited during the test:\n" + shared.daemon.read_log()
    for name in shared.names():
        shared.delete(name)
    if shared.redis.cli("HLEN", HASH) != "0":  # entries the API does not list (malformed)
        shared.redis.cli("DEL", HASH)
        shared.redis.cli("INCR", EPOCH)
    shared.wait_synced()


# --- create, read, replace, change, delete ------------------------------------------------------

def test_crud_round(sp):
    e0 = sp.listing()["epoch"]
    assert e0 == sp.redis_epoch()

    web = sp.put("web", svc())  # 201: created, defaults filled in
    assert set(web) == OUTPUT_KEYS, web
    assert web["name"] == "web" and web["vip"] == "10.1.0.1"
    assert web["port"] == 80 and web["kind"] == "http-object"
    assert web["enhanced"] == ["GET", "HEAD"]
    assert web["storage_manager"] == "10.2.0.1:9000" and web["node_key_id"] == "node-1"
    assert web["cache"] == {"policy": "none", "ttl_s": 0}
    assert web["auth"] == "service" and web["path"] == "ordinary"
    assert web["region"] == "us-east-1"
    assert isinstance(web["note"], str) and re.search(r"authenticat", web["note"], re.I), web
    assert web["epoch"] == e0 + 1 == sp.redis_epoch()
    assert without_epoch(sp.get("web")) == without_epoch(web)

    # a second and a third service: the list is sorted by name, not by creation
    api = sp.put("api", svc(vip="10.1.0.2"))
    m0 = sp.put("m0", svc(vip="10.1.0.3"))
    assert (api["epoch"], m0["epoch"]) == (e0 + 2, e0 + 3)
    doc = sp.listing()
    assert set(doc) == {"epoch", "services"}
    assert doc["epoch"] == e0 + 3
    assert [s["name"] for s in doc["services"]] == ["api", "m0", "web"]
    assert without_epoch(doc) == [without_epoch(s) for s in (api, m0, web)]
    assert all(s["epoch"] <= doc["epoch"] for s in doc["services"]), doc

    # PUT on an existing name replaces the whole definition: 200
    custom = {"vip": "10.1.0.1", "port": 8080, "kind": "http-object",
              "enhanced": ["GET", "HEAD", "PUT", "DELETE"], "storage_manager": "10.2.0.9:9001",
              "node_key_id": "node.key_2-B", "cache": {"policy": "ttl", "ttl_s": 60},
              "auth": "none", "region": "eu-west-3"}
    web2 = sp.put("web", custom, status=200)
    assert {k: web2[k] for k in custom} == custom
    assert web2["name"] == "web" and web2["path"] == "direct" and web2["epoch"] == e0 + 4
    assert without_epoch(sp.get("web")) == without_epoch(web2)

    # PATCH changes the given field only
    web3 = sp.patch("web", {"port": 8081})
    assert web3["port"] == 8081 and web3["epoch"] == e0 + 5
    assert {k: v for k, v in web3.items() if k not in ("port", "epoch")} == \
        {k: v for k, v in web2.items() if k not in ("port", "epoch")}
    web4 = sp.patch("web", {"cache": {"policy": "verify", "ttl_s": 30}})
    assert web4["cache"] == {"policy": "verify", "ttl_s": 30} and web4["epoch"] == e0 + 6
    assert without_epoch(web4) == dict(without_epoch(web3), cache=web4["cache"])

    # a replace with the required fields only brings every default back
    web5 = sp.put("web", svc(), status=200)
    assert without_epoch(web5) == without_epoch(web) and web5["epoch"] == e0 + 7

    # what Redis holds
    assert sp.redis_epoch() == e0 + 7
    assert sorted(sp.redis.cli("HKEYS", HASH).splitlines()) == ["api", "m0", "web"]
    stored = json.loads(sp.redis.cli("HGET", HASH, "web"))
    assert stored["vip"] == "10.1.0.1" and stored["node_key_id"] == "node-1", stored
    assert stored.get("port", 80) == 80, stored

    sp.delete("web")
    check_error(sp.call("GET", "/v1/services/web"), 404, "not_found")
    doc = sp.listing()
    assert doc["epoch"] == e0 + 8 and without_epoch(doc) == [without_epoch(api),
                                                              without_epoch(m0)]
    assert sp.redis.cli("HEXISTS", HASH, "web") == "0"
    sp.delete("api")
    sp.delete("m0")
    assert sp.listing() == {"epoch": e0 + 10, "services": []}


def test_boundary_values_accepted(sp):
    """The edges of every range and pattern are valid, and come back as given."""
    cases = {
        "a": svc(vip="10.1.1.1", port=1, cache={"policy": "ttl", "ttl_s": 86400}),
        "0": svc(vip="10.1.1.1", port=65535, cache={"policy": "verify", "ttl_s": 0}),
        "a" * 32: svc(vip="fd00::10", storage_manager="[fd00::2]:65535",
                      node_key_id="Az09_.-" + "k" * 57),
        "a_b-9": svc(vip="10.1.1.2", enhanced=[], storage_manager="[::1]:1"),
        "x-all": svc(vip="10.1.1.3", enhanced=["DELETE", "PUT", "HEAD", "GET"], auth="none"),
        "r64": svc(vip="10.1.1.4", auth="first", region="a" * 64),
        "r1": svc(vip="10.1.1.5", auth="every-request", region="0"),
        "r-dash": svc(vip="10.1.1.6", region="-"),
    }
    for name, body in cases.items():
        doc = sp.put(name, body)
        assert {k: doc[k] for k in body} == body, (name, doc)
    assert sp.names() == sorted(cases)


@pytest.mark.parametrize("auth, enhanced, path", [
    ("none", None, "direct"),  # the default operations, GET and HEAD
    ("none", ["PUT", "DELETE"], "direct"),
    ("none", [], "ordinary"),
    ("service", [], "ordinary"),
    ("service", ["GET", "HEAD", "PUT", "DELETE"], "ordinary"),
    (None, None, "ordinary"),  # auth defaults to service
    ("first", None, "direct"),  # authenticated here, then direct
    ("first", ["PUT"], "direct"),
    ("first", [], "ordinary"),
    ("every-request", ["GET", "HEAD", "PUT", "DELETE"], "direct"),
    ("every-request", [], "ordinary"),
])
def test_path(sp, auth, enhanced, path):
    body = svc()
    if auth is not None:
        body["auth"] = auth
    if enhanced is not None:
        body["enhanced"] = enhanced
    doc = sp.put("svc", body)
    assert doc["path"] == path
    assert isinstance(doc["note"], str) and doc["note"].strip()
    assert sp.get("svc")["path"] == path


def test_path_follows_changes(sp):
    ordinary_auth = sp.put("svc", svc())
    assert ordinary_auth["path"] == "ordinary"
    direct = sp.patch("svc", {"auth": "none"})
    assert direct["path"] == "direct"
    ordinary_empty = sp.patch("svc", {"enhanced": []})
    assert ordinary_empty["path"] == "ordinary"
    assert sp.patch("svc", {"enhanced": ["HEAD"]})["path"] == "direct"
    assert sp.patch("svc", {"auth": "service"})["path"] == "ordinary"
    first = sp.patch("svc", {"auth": "first"})
    assert first["path"] == "direct"
    every = sp.patch("svc", {"auth": "every-request"})
    assert every["path"] == "direct"
    assert sp.patch("svc", {"enhanced": []})["path"] == "ordinary"
    # the note says why: a different reason, a different note
    assert re.search(r"authenticat", ordinary_auth["note"], re.I), ordinary_auth
    notes = [direct["note"], ordinary_auth["note"], ordinary_empty["note"], first["note"],
             every["note"]]
    assert len(set(notes)) == len(notes), notes
    # local authentication names its credentials and says when it verifies
    assert re.search(r"credentials", first["note"]) and re.search(r"once", first["note"])
    assert re.search(r"credentials", every["note"]) and re.search(r"every", every["note"])


def test_region_follows_changes(sp):
    doc = sp.put("svc", svc(auth="first"))
    assert doc["region"] == "us-east-1"
    doc = sp.patch("svc", {"region": "eu-central-1"})
    assert doc["region"] == "eu-central-1" and doc["auth"] == "first"
    assert sp.get("svc")["region"] == "eu-central-1"
    stored = json.loads(sp.redis.cli("HGET", HASH, "svc"))
    assert stored["region"] == "eu-central-1", stored
    # a replace without it brings the default back
    assert sp.put("svc", svc(), status=200)["region"] == "us-east-1"


def test_definition_without_region_in_redis(sp):
    """A definition stored before regions existed gets the default one."""
    definition = full(vip="10.4.2.1")
    del definition["region"]
    epoch = sp.write_behind("old", json.dumps(definition))
    got = wait_for(lambda: sp.status_of("old") == 200 and sp.get("old"), SYNC_S,
                   what="old in the API")
    assert got["region"] == "us-east-1" and sp.listing()["epoch"] == epoch


# --- validation ---------------------------------------------------------------------------------

CACHE = {"policy": "ttl", "ttl_s": 60}
# (id, changes to a valid definition, the field(s) the error may name)
INVALID_FIELDS = [
    ("vip-missing", {"vip": DROP}, "vip"),
    ("vip-octet-256", {"vip": "10.0.0.256"}, "vip"),
    ("vip-hostname", {"vip": "host.example"}, "vip"),
    ("vip-empty", {"vip": ""}, "vip"),
    ("vip-number", {"vip": 167772161}, "vip"),
    ("vip-with-port", {"vip": "10.0.0.1:80"}, "vip"),
    ("port-0", {"port": 0}, "port"),
    ("port-65536", {"port": 65536}, "port"),
    ("port-negative", {"port": -80}, "port"),
    ("port-string", {"port": "80"}, "port"),
    ("port-real", {"port": 1.5}, "port"),
    ("port-bool", {"port": True}, "port"),
    ("kind-kv-udp", {"kind": "kv-udp"}, "kind"),
    ("kind-empty", {"kind": ""}, "kind"),
    ("enhanced-string", {"enhanced": "GET"}, "enhanced"),
    ("enhanced-duplicate", {"enhanced": ["GET", "GET"]}, "enhanced"),
    ("enhanced-post", {"enhanced": ["POST"]}, "enhanced"),
    ("enhanced-number", {"enhanced": [1]}, "enhanced"),
    ("storage-manager-missing", {"storage_manager": DROP}, "storage_manager"),
    ("storage-manager-no-port", {"storage_manager": "10.0.0.1"}, "storage_manager"),
    ("storage-manager-name", {"storage_manager": "name:80"}, "storage_manager"),
    ("storage-manager-port-0", {"storage_manager": "[::1]:0"}, "storage_manager"),
    ("storage-manager-port-65536", {"storage_manager": "10.0.0.1:65536"}, "storage_manager"),
    ("storage-manager-number", {"storage_manager": 9000}, "storage_manager"),
    ("node-key-id-missing", {"node_key_id": DROP}, "node_key_id"),
    ("node-key-id-empty", {"node_key_id": ""}, "node_key_id"),
    ("node-key-id-space", {"node_key_id": "a b"}, "node_key_id"),
    ("node-key-id-slash", {"node_key_id": "a/b"}, "node_key_id"),
    ("node-key-id-65", {"node_key_id": "k" * 65}, "node_key_id"),
    # cache: the error names the cache field or the key inside it
    ("cache-policy-lru", {"cache": {"policy": "lru", "ttl_s": 0}}, ("cache", "cache.policy")),
    ("cache-ttl-negative", {"cache": {"policy": "ttl", "ttl_s": -1}}, ("cache", "cache.ttl_s")),
    ("cache-ttl-86401", {"cache": {"policy": "ttl", "ttl_s": 86401}}, ("cache", "cache.ttl_s")),
    ("cache-ttl-string", {"cache": {"policy": "ttl", "ttl_s": "60"}}, ("cache", "cache.ttl_s")),
    ("cache-not-object", {"cache": "none"}, "cache"),
    # an unknown key must be named: as the field (cache.size, size), or in the message of an
    # error on field cache (see test_put_invalid_field)
    ("cache-unknown-key", {"cache": dict(CACHE, size=1)}, ("cache.size", "size", "cache")),
    ("auth-bogus", {"auth": "bogus"}, "auth"),
    ("auth-upper", {"auth": "First"}, "auth"),
    ("auth-every", {"auth": "every"}, "auth"),
    ("auth-empty", {"auth": ""}, "auth"),
    ("auth-null", {"auth": None}, "auth"),
    ("region-empty", {"region": ""}, "region"),
    ("region-upper", {"region": "US-EAST-1"}, "region"),
    ("region-underscore", {"region": "us_east_1"}, "region"),
    ("region-space", {"region": "us east"}, "region"),
    ("region-65", {"region": "a" * 65}, "region"),
    ("region-number", {"region": 1}, "region"),
    ("region-null", {"region": None}, "region"),
    ("unknown-key", {"vips": "10.0.0.1"}, "vips"),
]
# (id, raw request body): not JSON, or not a JSON object
INVALID_BODIES = [
    ("not-json", b'{"vip": "10.1.0.1",'),
    ("trailing-garbage", json.dumps(svc()).encode() + b" x"),
    ("empty", b""),
    ("array", json.dumps([svc()]).encode()),
    ("string", b'"web"'),
    ("null", b"null"),
]


@pytest.mark.parametrize("changes, field", [c[1:] for c in INVALID_FIELDS],
                         ids=[c[0] for c in INVALID_FIELDS])
def test_put_invalid_field(sp, changes, field):
    epoch = sp.listing()["epoch"]
    err = check_error(sp.call("PUT", "/v1/services/bad", svc(**changes)), 400, "invalid", field)
    check_unknown_key_named(changes, err)
    assert sp.status_of("bad") == 404
    assert sp.listing()["epoch"] == epoch == sp.redis_epoch()  # nothing was written


def check_unknown_key_named(changes, err):
    """An unknown key inside cache is named by the error, in its field or in its message."""
    cache = changes.get("cache")
    if isinstance(cache, dict) and "size" in cache:
        assert "size" in err["field"] or re.search(r"\bsize\b", err["message"]), err


PATCHABLE = [c for c in INVALID_FIELDS if DROP not in c[1].values()]


@pytest.mark.parametrize("changes, field", [c[1:] for c in PATCHABLE],
                         ids=[c[0] for c in PATCHABLE])
def test_patch_invalid_field(sp, changes, field):
    before = sp.put("target", svc(cache=CACHE))
    err = check_error(sp.call("PATCH", "/v1/services/target", changes), 400, "invalid", field)
    check_unknown_key_named(changes, err)
    assert without_epoch(sp.get("target")) == without_epoch(before)
    assert sp.listing()["epoch"] == before["epoch"]


@pytest.mark.parametrize("raw", [c[1] for c in INVALID_BODIES], ids=[c[0] for c in INVALID_BODIES])
def test_invalid_body(sp, raw):
    check_error(sp.call("PUT", "/v1/services/bad", raw=raw), 400, "invalid", "body")
    assert sp.status_of("bad") == 404
    before = sp.put("target", svc())
    check_error(sp.call("PATCH", "/v1/services/target", raw=raw), 400, "invalid", "body")
    assert without_epoch(sp.get("target")) == without_epoch(before)


BAD_NAMES = ["UPPER", "Web", "-x", "_x", "a" * 33, "a.b", "a%20b", "a~b"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_invalid_name(sp, name):
    check_error(sp.call("PUT", f"/v1/services/{name}", svc()), 400, "invalid", "name")
    assert sp.listing()["services"] == []


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_invalid_name_other_methods(sp, method):
    """The name rule holds for every method (400 field name), not only for PUT."""
    body = {"port": 81} if method == "PATCH" else None
    check_error(sp.call(method, "/v1/services/UPPER", body), 400, "invalid", "name")


def test_name_with_slash(sp):
    """'a/b' is not a valid NAME, and /v1/services/a/b is not a service's path either.

    The contract allows both readings: 400 invalid (field name) by the NAME rule, or 404 for
    a path the API does not have. Either is accepted; nothing may be created."""
    st, doc, text = sp.call("PUT", "/v1/services/a/b", svc())
    assert st in (400, 404), text
    if st == 400:
        check_error((st, doc, text), 400, "invalid", "name")
    assert sp.listing()["services"] == []


# --- conflicts, methods, unknown names ----------------------------------------------------------

def test_conflict_same_vip_and_port(sp):
    a = sp.put("a", svc(vip="10.3.0.1", port=80))
    epoch = a["epoch"]
    check_error(sp.call("PUT", "/v1/services/b", svc(vip="10.3.0.1", port=80)), 409, "conflict",
                "vip")
    check_error(sp.call("PUT", "/v1/services/b", svc(vip="10.3.0.1")), 409, "conflict", "vip")
    assert sp.status_of("b") == 404 and sp.listing()["epoch"] == epoch
    b = sp.put("b", svc(vip="10.3.0.1", port=81))  # same VIP, another port: fine
    c = sp.put("c", svc(vip="10.3.0.2", port=80))  # same port, another VIP: fine
    # a change that would collide: PATCH port, PATCH vip, replace
    check_error(sp.call("PATCH", "/v1/services/b", {"port": 80}), 409, "conflict", "vip")
    check_error(sp.call("PATCH", "/v1/services/c", {"vip": "10.3.0.1"}), 409, "conflict", "vip")
    check_error(sp.call("PUT", "/v1/services/c", svc(vip="10.3.0.1", port=81)), 409, "conflict",
                "vip")
    assert [without_epoch(sp.get(n)) for n in "abc"] == [without_epoch(d) for d in (a, b, c)]
    # a service does not conflict with itself
    a2 = sp.put("a", svc(vip="10.3.0.1", port=80, auth="none"), status=200)
    assert a2["path"] == "direct"
    assert sp.patch("a", {"port": 80})["port"] == 80
    # once a is gone, its VIP and port are free
    sp.delete("a")
    assert sp.patch("b", {"port": 80})["port"] == 80


@pytest.mark.parametrize("method, path", [
    ("POST", "/v1/services/web"),
    ("POST", "/v1/services"),
    ("DELETE", "/v1/services"),
    ("PUT", "/v1/services"),
    ("PATCH", "/v1/services"),
])
def test_method_not_allowed(sp, method, path):
    sp.put("web", svc())
    body = svc(vip="10.1.9.9") if method in ("POST", "PUT", "PATCH") else None
    check_error(sp.call(method, path, body), 405, "method_not_allowed")
    assert sp.names() == ["web"] and sp.get("web")["vip"] == "10.1.0.1"


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_unknown_name(sp, method):
    sp.put("web", svc())
    body = {"port": 81} if method == "PATCH" else None
    check_error(sp.call(method, "/v1/services/nosuch", body), 404, "not_found")
    assert sp.names() == ["web"]


# --- Redis: outage, persistence, other writers --------------------------------------------------

def test_redis_down_reads_from_memory_writes_503(cleanup):
    r = new_redis(cleanup)
    node = new_node(cleanup, "rdown", r).start()
    node.put("web", svc(vip="10.6.0.1"))
    node.put("keep", svc(vip="10.6.0.2", auth="none"))
    before = node.listing()
    assert r.cli("SAVE") == "OK"  # the restarted redis-server reloads this snapshot
    r.stop()
    wait_for(lambda: node.health()["status"] == "degraded", 5, what="degraded")

    check_error(node.call("PUT", "/v1/services/new", svc(vip="10.6.0.3")), 503,
                "redis_unavailable")
    check_error(node.call("PUT", "/v1/services/web", svc(vip="10.6.0.9")), 503,
                "redis_unavailable")
    check_error(node.call("PATCH", "/v1/services/web", {"port": 81}), 503, "redis_unavailable")
    check_error(node.call("DELETE", "/v1/services/keep"), 503, "redis_unavailable")
    check_error(node.call("GET", "/v1/services/new"), 404, "not_found")
    assert node.listing() == before  # no reload while Redis is away: the very same
    assert node.get("web") == before["services"][1]

    r.start()
    wait_for(lambda: node.health()["status"] == "ok", 10, what="ok again")
    now = node.listing()
    assert now["epoch"] == before["epoch"] and without_epoch(now) == without_epoch(before)
    new = node.put("new", svc(vip="10.6.0.3"))
    assert new["epoch"] == before["epoch"] + 1
    assert node.patch("web", {"port": 81})["port"] == 81
    node.delete("keep")
    assert node.names() == ["new", "web"]
    assert sorted(r.cli("HKEYS", HASH).splitlines()) == ["new", "web"]
    assert node.redis_epoch() == before["epoch"] + 3


def test_services_survive_restart(cleanup):
    r = new_redis(cleanup)
    a = new_node(cleanup, "keep-a", r).start()
    a.put("alpha", svc(vip="10.7.0.1"))
    a.put("beta", svc(vip="fd00::10", port=8443, enhanced=["PUT"], auth="none",
                      storage_manager="[fd00::2]:9000", node_key_id="Key_1.x-2",
                      cache={"policy": "ttl", "ttl_s": 300}))
    a.put("gamma", svc(vip="10.7.0.3"))
    a.patch("gamma", {"port": 81, "cache": {"policy": "verify", "ttl_s": 5}})
    a.put("delta", svc(vip="10.7.0.4"))
    a.delete("delta")
    before = a.listing()
    assert [s["name"] for s in before["services"]] == ["alpha", "beta", "gamma"]
    rc, log = a.stop()
    assert rc == 0, log

    b = new_node(cleanup, "keep-b", r).start()
    after = wait_for(lambda: len((doc := b.listing())["services"]) == 3 and doc, SYNC_S,
                     what="the services loaded from Redis")
    assert after["epoch"] == before["epoch"]
    assert without_epoch(after) == without_epoch(before)
    assert all(s["epoch"] <= after["epoch"] for s in after["services"])
    assert b.status_of("delta") == 404
    # and the new instance writes on from where the counter is
    assert b.put("delta", svc(vip="10.7.0.4"))["epoch"] == before["epoch"] + 1


def test_change_by_another_writer(sp):
    """A definition written to Redis by another shortpathd (HSET + INCR) shows in the API."""
    definition = full(vip="10.4.0.1", port=8080, enhanced=["GET"], auth="none",
                      storage_manager="10.2.0.4:9000", node_key_id="other-node",
                      cache={"policy": "verify", "ttl_s": 10})
    epoch = sp.write_behind("ext", json.dumps(definition))
    got = wait_for(lambda: sp.status_of("ext") == 200 and sp.get("ext"), SYNC_S,
                   what="ext in the API")
    assert {k: got[k] for k in definition} == definition
    assert got["name"] == "ext" and got["path"] == "direct"
    assert got["epoch"] <= epoch
    assert sp.listing()["epoch"] == epoch and sp.names() == ["ext"]

    # a change to it
    epoch = sp.write_behind("ext", json.dumps(dict(definition, port=8081, auth="service")))
    got = wait_for(lambda: (d := sp.get("ext"))["port"] == 8081 and d, SYNC_S,
                   what="ext on port 8081")
    assert got["path"] == "ordinary" and sp.listing()["epoch"] == epoch

    # this instance's own write comes after it, and keeps it
    mine = sp.put("mine", svc(vip="10.4.0.9"))
    assert mine["epoch"] == epoch + 1 == sp.redis_epoch()
    assert sp.redis.cli("HEXISTS", HASH, "ext") == "1"

    # deleted behind its back
    epoch = sp.delete_behind("ext")
    wait_for(lambda: sp.status_of("ext") == 404, SYNC_S, what="ext gone from the API")
    assert sp.listing()["epoch"] == epoch and sp.names() == ["mine"]


def test_malformed_definition_in_redis_is_skipped(sp):
    sp.redis.cli("HSET", HASH, "broken-json", '{"vip": "10.4.1.1", "port": ')
    sp.redis.cli("HSET", HASH, "wrongvip", json.dumps(full(vip="10.4.1.256")))
    epoch = sp.write_behind("fine", json.dumps(full(vip="10.4.1.3")))
    wait_for(lambda: sp.listing()["epoch"] == epoch, SYNC_S, what=f"the API at epoch {epoch}")
    assert sp.alive(), sp.daemon.read_log()
    assert sp.names() == ["fine"]
    assert sp.status_of("broken-json") == 404 and sp.status_of("wrongvip") == 404
    assert sp.health()["status"] == "ok"

    words = re.compile(r"invalid|malformed|bad|skip|ignor|error|pars|cannot|refus", re.I)

    def logged(name):
        return [ln for ln in sp.log_lines() if name in ln and words.search(ln.replace(name, ""))]

    for name in ("broken-json", "wrongvip"):
        wait_for(lambda: logged(name), 2, what=f"a log line about {name}")
    assert not logged("fine"), logged("fine")

    # the API still writes (and the bad entries stay skipped on the reload that follows)
    assert sp.put("after", svc(vip="10.4.1.4"))["epoch"] == epoch + 1
    assert sp.names() == ["after", "fine"]


# --- the workers: counters per service in telemetry ---------------------------------------------

VIP, OTHER_VIP, VM_IP = "10.99.0.10", "10.99.0.11", "10.0.0.1"


def vm_traffic():
    """What the VM replays: per round, a SYN and a data segment to VIP:80 (the only frames of
    service web), a SYN to VIP:81 and a SYN to OTHER_VIP:80."""
    e = Ether(src=VM_MAC, dst=GW_MAC)
    syn80 = e / IP(src=VM_IP, dst=VIP) / TCP(sport=40000, dport=80, flags="S", seq=100)
    data80 = e / IP(src=VM_IP, dst=VIP) / TCP(sport=40000, dport=80, flags="PA", seq=101,
                                              ack=5000) \
        / Raw(b"GET /bucket/key HTTP/1.1\r\nHost: objects\r\n\r\n")
    syn81 = e / IP(src=VM_IP, dst=VIP) / TCP(sport=40001, dport=81, flags="S", seq=200)
    other = e / IP(src=VM_IP, dst=OTHER_VIP) / TCP(sport=40002, dport=80, flags="S", seq=300)
    return [bytes(f) for f in (syn80, data80, syn81, other)]


def near(a, b, rel):
    return abs(a - b) <= rel * max(abs(a), abs(b), 1)


def test_workers_count_service_traffic(cleanup):
    frames = vm_traffic()
    syn_len, data_len = len(frames[0]), len(frames[1])
    r = new_redis(cleanup)
    node = new_node(cleanup, "workers", r, vm_frames=frames).start()

    def port(name):
        return node.telemetry(f"/shortpath/ports,{name}")

    def services():
        return node.telemetry("/shortpath/services")

    wait_for(lambda: port("vm")["rx_packets"] > 10000, 10, what="the VM's frames")
    t = services()
    assert t["services"] == {} and t["epoch"] == node.listing()["epoch"], t

    # auth service: the ordinary path, so the worker counts and forwards (a direct service's
    # connections are terminated by the TCP endpoint: tests/integration/test_tcp_endpoint.py)
    web = node.put("web", svc(vip=VIP, port=80))
    node.put("idle82", svc(vip=VIP, port=82))          # same VIP, a port nobody sends to
    node.put("other81", svc(vip="10.99.0.12", port=81))  # a port with traffic, another VIP
    wait_for(lambda: len(s := services()["services"]) == 3 and s["web"]["vm_packets"] > 0,
             SYNC_S, what="the three services in telemetry, web counting")
    t = services()
    assert set(t["services"]) == {"web", "idle82", "other81"}
    assert t["epoch"] == node.listing()["epoch"]
    w = t["services"]["web"]
    assert set(w) >= {"vip", "port", "path", "vm_packets", "vm_bytes", "vm_syns"}, w
    assert (w["vip"], w["port"], w["path"]) == (VIP, 80, web["path"]) == (VIP, 80, "ordinary")
    assert t["services"]["idle82"]["path"] == "ordinary"

    def window(seconds=0.5):
        """Service counters and port counters over a window: (service deltas, port deltas)."""
        s0, v0, u0 = services()["services"], port("vm"), port("uplink")
        time.sleep(seconds)
        s1, v1, u1 = services()["services"], port("vm"), port("uplink")
        ds = {n: {k: s1[n][k] - s0[n][k] for k in ("vm_packets", "vm_bytes", "vm_syns")}
              for n in s1 if n in s0}
        dp = {"vm_rx": v1["rx_packets"] - v0["rx_packets"],
              "vm_rx_bytes": v1["rx_bytes"] - v0["rx_bytes"],
              "up_tx": u1["tx_packets"] - u0["tx_packets"],
              "up_tx_bytes": u1["tx_bytes"] - u0["tx_bytes"]}
        return ds, dp, s1

    def check_bytes(d, syns_len, other_len):
        """vm_bytes counts frames (or their IP packets: 14 bytes less each)."""
        l2 = d["vm_syns"] * syns_len + (d["vm_packets"] - d["vm_syns"]) * other_len
        assert near(d["vm_bytes"], l2, 0.02) or \
            near(d["vm_bytes"], l2 - 14 * d["vm_packets"], 0.02), d

    ds, dp, now = window()
    d = ds["web"]
    assert d["vm_packets"] > 1000, (d, dp)
    # half of what the VM sends is web's (a SYN and a data segment of every 4 frames):
    # the SYNs to port 81 and to the other VIP are not counted
    assert near(d["vm_packets"], 2 * d["vm_syns"], 0.02), d
    assert near(d["vm_packets"], dp["vm_rx"] / 2, 0.1), (d, dp)
    check_bytes(d, syn_len, data_len)
    for name in ("idle82", "other81"):
        assert {k: now[name][k] for k in ("vm_packets", "vm_bytes", "vm_syns")} == \
            {"vm_packets": 0, "vm_bytes": 0, "vm_syns": 0}, (name, now[name])
    # and every frame is still forwarded to the uplink, unchanged in size
    assert near(dp["up_tx"], dp["vm_rx"], 0.05) and near(dp["up_tx_bytes"], dp["vm_rx_bytes"],
                                                         0.05), dp

    # moved at run time to port 81: now it counts the SYNs to port 81, all SYNs
    node.patch("web", {"port": 81})
    wait_for(lambda: services()["services"]["web"]["port"] == 81, SYNC_S, what="web on 81")
    ds, dp, _now = window()
    d = ds["web"]
    assert d["vm_packets"] > 1000 and near(d["vm_packets"], d["vm_syns"], 0.02), d
    assert near(d["vm_packets"], dp["vm_rx"] / 4, 0.1), (d, dp)
    check_bytes(d, syn_len, syn_len)

    for name in ("web", "idle82", "other81"):
        node.delete(name)
    wait_for(lambda: services()["services"] == {}, SYNC_S, what="no services in telemetry")
    assert services()["epoch"] == node.listing()["epoch"]
    _ds, dp, _now = window(0.2)
    assert dp["up_tx"] > 1000 and near(dp["up_tx"], dp["vm_rx"], 0.05), dp

    stats = node.telemetry("/shortpath/stats")
    drops = {k: v for k, v in stats.items() if k.startswith("drop_") and v}
    assert drops == {}, drops
    rc, log = node.stop()
    assert rc == 0, log
    assert pool_in_use_after_close(log) == 0


# --- spctl --------------------------------------------------------------------------------------

def spctl(*args, api=None, env=None):
    """Run tools/spctl from / (it must not depend on the working directory)."""
    argv = [SPCTL] + (["--api", api] if api else []) + list(args)
    e = {k: v for k, v in os.environ.items() if k != "SPCTL_API"}
    e.update(env or {})
    r = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd="/", env=e)
    assert "Traceback" not in r.stderr, r.stderr
    return r


SM = ["--storage-manager", "10.2.0.1:9000", "--node-key-id", "node-1"]


def test_spctl_round(sp):
    api = f"127.0.0.1:{sp.api_port}"
    r = spctl("service", "create", "web-cli", "--vip", "10.5.0.1", *SM, "--enhanced",
              "GET,HEAD,PUT", "--cache-policy", "ttl", "--cache-ttl", "60", "--auth", "none",
              api=api)
    assert r.returncode == 0, r.stderr
    doc = sp.get("web-cli")
    assert (doc["vip"], doc["port"], doc["enhanced"], doc["cache"], doc["auth"]) == \
        ("10.5.0.1", 80, ["GET", "HEAD", "PUT"], {"policy": "ttl", "ttl_s": 60}, "none")
    assert (doc["storage_manager"], doc["node_key_id"]) == ("10.2.0.1:9000", "node-1")
    # no optional option: the API's defaults, as for a PUT of the required fields only
    r = spctl("service", "create", "plain", "--vip", "10.5.0.2", *SM, api=api)
    assert r.returncode == 0, r.stderr
    same = sp.put("same", svc(vip="10.5.0.3"))
    assert without_epoch(sp.get("plain")) == dict(without_epoch(same), name="plain",
                                                  vip="10.5.0.2")
    sp.delete("same")

    r = spctl("service", "list", api=api)
    assert r.returncode == 0, r.stderr
    rows = r.stdout.splitlines()
    web_row = [ln for ln in rows if ln.split()[:1] == ["web-cli"]]
    plain_row = [ln for ln in rows if ln.split()[:1] == ["plain"]]
    assert len(web_row) == 1 and len(plain_row) == 1, r.stdout
    assert rows.index(plain_row[0]) < rows.index(web_row[0])  # sorted by name
    assert "10.5.0.1:80" in web_row[0].split() and "direct" in web_row[0].split(), web_row
    assert "ordinary" in plain_row[0].split() and "service" in plain_row[0].split(), plain_row

    r = spctl("service", "show", "web-cli", api=api)
    assert r.returncode == 0, r.stderr
    assert doc["note"] in r.stdout, r.stdout
    lines = {ln.split(":", 1)[0].strip(): ln.split(":", 1)[1].strip()
             for ln in r.stdout.splitlines() if ":" in ln}
    assert lines["vip"] == "10.5.0.1" and lines["port"] == "80" and lines["path"] == "direct"
    assert lines["node_key_id"] == "node-1" and lines["auth"] == "none"

    r = spctl("--json", "service", "show", "web-cli", api=api)
    assert r.returncode == 0 and without_epoch(json.loads(r.stdout)) == without_epoch(doc), \
        r.stdout + r.stderr
    r = spctl("service", "show", "web-cli", "--json", api=api)  # after the command too
    assert r.returncode == 0, r.stderr
    assert without_epoch(json.loads(r.stdout)) == without_epoch(doc), r.stdout
    r = spctl("--json", "service", "list", api=api)
    assert r.returncode == 0, r.stderr
    assert without_epoch(json.loads(r.stdout)) == without_epoch(sp.listing()), r.stdout

    r = spctl("service", "update", "web-cli", "--port", "8080", api=api)
    assert r.returncode == 0, r.stderr
    doc2 = sp.get("web-cli")
    assert doc2["port"] == 8080
    assert without_epoch(doc2) == dict(without_epoch(doc), port=8080)
    # one cache option: merged with the current cache object
    r = spctl("service", "update", "web-cli", "--cache-ttl", "120", api=api)
    assert r.returncode == 0, r.stderr
    assert sp.get("web-cli")["cache"] == {"policy": "ttl", "ttl_s": 120}
    r = spctl("service", "update", "web-cli", "--cache-policy", "verify", "--enhanced", "",
              api=api)
    assert r.returncode == 0, r.stderr
    doc3 = sp.get("web-cli")
    assert doc3["cache"] == {"policy": "verify", "ttl_s": 120} and doc3["enhanced"] == []
    assert doc3["path"] == "ordinary" and doc3["port"] == 8080

    # create refuses an existing name; replace redefines it
    r = spctl("service", "create", "web-cli", "--vip", "10.5.0.9", *SM, api=api)
    assert r.returncode == 1 and "already exists" in r.stderr and "update" in r.stderr, r.stderr
    assert without_epoch(sp.get("web-cli")) == without_epoch(doc3)
    r = spctl("service", "replace", "web-cli", "--vip", "10.5.0.9", *SM, api=api)
    assert r.returncode == 0, r.stderr
    doc4 = sp.get("web-cli")
    assert (doc4["vip"], doc4["port"], doc4["cache"], doc4["enhanced"]) == \
        ("10.5.0.9", 80, {"policy": "none", "ttl_s": 0}, ["GET", "HEAD"])

    r = spctl("service", "delete", "web-cli", api=api)
    assert r.returncode == 0, r.stderr
    assert sp.status_of("web-cli") == 404
    r = spctl("service", "delete", "web-cli", api=api)
    assert r.returncode == 1 and r.stderr.startswith("spctl: 404 not_found: "), r.stderr
    r = spctl("service", "show", "web-cli", api=api)
    assert r.returncode == 1 and r.stderr.startswith("spctl: 404 not_found: "), r.stderr

    # the address from the environment
    r = spctl("service", "list", env={"SPCTL_API": api})
    assert r.returncode == 0 and "plain" in r.stdout, r.stdout + r.stderr


def test_spctl_auth_and_region(sp):
    api = f"127.0.0.1:{sp.api_port}"
    r = spctl("service", "create", "signed", "--vip", "10.5.2.1", *SM, "--auth", "first",
              "--region", "eu-west-3", api=api)
    assert r.returncode == 0, r.stderr
    doc = sp.get("signed")
    assert (doc["auth"], doc["region"], doc["path"]) == ("first", "eu-west-3", "direct")
    r = spctl("service", "update", "signed", "--auth", "every-request", api=api)
    assert r.returncode == 0, r.stderr
    assert (sp.get("signed")["auth"], sp.get("signed")["region"]) == ("every-request",
                                                                      "eu-west-3")
    r = spctl("service", "update", "signed", "--region", "EU", api=api)
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.fullmatch(r"spctl: 400 invalid: .+ \(field: region\)\n", r.stderr), r.stderr


def test_spctl_errors_from_the_api(sp):
    api = f"127.0.0.1:{sp.api_port}"
    r = spctl("service", "create", "bad", "--vip", "10.5.1.1", "--port", "0", *SM, api=api)
    assert r.returncode == 1, r.stdout + r.stderr
    assert re.fullmatch(r"spctl: 400 invalid: .+ \(field: port\)\n", r.stderr), r.stderr
    r = spctl("service", "create", "bad", "--vip", "10.5.1.1", "--auth", "none",
              "--storage-manager", "10.2.0.1", "--node-key-id", "n", api=api)
    assert r.returncode == 1
    assert re.fullmatch(r"spctl: 400 invalid: .+ \(field: storage_manager\)\n", r.stderr), \
        r.stderr
    sp.put("one", svc(vip="10.5.1.2"))
    r = spctl("service", "create", "two", "--vip", "10.5.1.2", *SM, api=api)
    assert r.returncode == 1
    assert re.fullmatch(r"spctl: 409 conflict: .+ \(field: vip\)\n", r.stderr), r.stderr
    r = spctl("service", "update", "nosuch", "--port", "81", api=api)
    assert r.returncode == 1 and r.stderr.startswith("spctl: 404 not_found: "), r.stderr
    assert sp.names() == ["one"]

    for cmd, key in (("health", "status"), ("stats", "workers")):
        r = spctl(cmd, api=api)
        assert r.returncode == 0, r.stderr
        assert key in json.loads(r.stdout), r.stdout


def test_spctl_unreachable_and_usage():
    """No daemon needed: a closed port, and usage errors (exit 2, argparse's message)."""
    closed = f"127.0.0.1:{free_tcp_port()}"
    for args in (("service", "list"), ("health",), ("service", "delete", "x"),
                 ("--json", "service", "show", "x")):
        r = spctl(*args, api=closed)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert r.stderr == f"spctl: cannot reach the API at {closed} " \
            "(is shortpathd running? --api)\n", r.stderr
        assert r.stdout == ""
    r = spctl("service", "list", env={"SPCTL_API": closed})
    assert r.returncode == 1 and f"cannot reach the API at {closed} " in r.stderr, r.stderr

    for args in ((), ("service",), ("service", "bogus"), ("nosuch",),
                 ("service", "create", "x", "--vip", "10.0.0.1"),  # required options missing
                 ("service", "update", "x"),                         # nothing to change
                 ("service", "create", "x", "--vip", "10.0.0.1", *SM, "--port", "eighty"),
                 ("service", "update", "x", "--auth", "bogus"),
                 ("service", "show",)):
        r = spctl(*args, api=closed)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert "usage: spctl" in r.stderr, (args, r.stderr)
    r = spctl("--api", "nonsense", "health")
    assert r.returncode == 2 and "usage: spctl" in r.stderr, r.stderr

    r = spctl("--help")
    assert r.returncode == 0 and "service" in r.stdout
    r = spctl("service", "create", "--help")
    assert r.returncode == 0
    for opt in ("--vip", "--port", "--kind", "--enhanced", "--storage-manager", "--node-key-id",
                "--cache-policy", "--cache-ttl", "--auth", "--region"):
        assert opt in r.stdout, opt
