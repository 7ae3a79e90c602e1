"""The credentials API (/v1/services/NAME/credentials, docs/auth.md), GET /v1/auth and the
/shortpath/auth telemetry, end to end with shortpathd and a private redis-server.

One shortpathd and one Redis are shared by the module (every test leaves them with no services
and no credentials); the tests that stop Redis or restart shortpathd get their own. The
verification itself is tested in tests/unit/test_auth.c and, through the workers, by the lab
(tests/integration/test_lab_auth.py).
"""
import json
import re
import urllib.parse

import pytest

from sphelpers import http_get, wait_for
from test_services import SYNC_S, check_error, new_node, new_redis, shared_node, svc

CRED_EPOCH = "sp:cred:epoch"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
OUTPUT_KEYS = {"service", "access_key", "buckets", "actions", "created", "updated", "generation"}
SIGV4_ERRORS = {"missing", "sigv2", "query_params", "dup_query_param", "bad_algorithm",
                "auth_field_missing", "auth_no_signed_headers", "auth_no_signature",
                "field_too_long", "bad_date", "bad_credential",
                "credential_date", "wrong_region", "wrong_service", "bad_expires", "expired",
                "not_yet_valid", "skewed", "no_content_sha256", "bad_access_key",
                "unknown_access_key", "streaming_payload", "bad_content_sha256", "bad_encoding",
                "too_big", "no_space", "bad_signed_headers", "signed_header_missing",
                "host_not_signed", "bad_signature", "signature_mismatch",
                "content_sha256_mismatch", "bad_request", "crypto"}
UNDECIDED = {"no_service", "service_changed", "not_loaded", "bad_message", "unsupported",
             "internal"}
WORKER_EVENTS = {"auth_hit", "auth_punt", "auth_ok", "auth_refused", "auth_undecided",
                 "auth_timeout", "auth_stale_answer", "auth_local_error", "auth_denied",
                 "auth_vip_body", "auth_verdicts"}


def cred_path(service, ak=None):
    path = f"/v1/services/{service}/credentials"
    return path if ak is None else path + "/" + urllib.parse.quote(ak, safe="")


def redis_key(service, ak):
    return f"sp:cred:{{{service}}}:{{{ak}}}"


class Creds:
    """The credentials part of the API on a Node."""

    def __init__(self, node):
        self.node = node

    def put(self, service, ak, body, status=201):
        return self.node.ok("PUT", cred_path(service, ak), body, status)

    def get(self, service, ak):
        return self.node.ok("GET", cred_path(service, ak))

    def listing(self, service):
        return self.node.ok("GET", cred_path(service))

    def delete(self, service, ak):
        doc = self.node.ok("DELETE", cred_path(service, ak))
        assert doc == {"deleted": ak}, doc
        return doc

    def call(self, method, service, ak=None, body=None, raw=None):
        return self.node.call(method, cred_path(service, ak), body, raw)

    def stored(self, service, ak):
        """The Redis hash, as a dict."""
        out = self.node.redis.cli("HGETALL", redis_key(service, ak)).splitlines()
        return dict(zip(out[0::2], out[1::2]))

    def epoch(self):
        return int(self.node.redis.cli("GET", CRED_EPOCH) or 0)

    def stats(self):
        return self.node.ok("GET", "/v1/auth")


@pytest.fixture(scope="module")
def shared():
    yield from shared_node("auth", lambda node: wait_for(
        lambda: node.ok("GET", "/v1/auth")["loaded"], SYNC_S, what="credentials loaded"))


@pytest.fixture
def sp(shared):
    """The shared shortpathd with service "web" and no credentials; cleaned up after."""
    assert shared.alive(), "the shared shortpathd is gone:\n" + shared.daemon.read_log()
    shared.put("web", svc(auth="first"))
    yield shared
    assert shared.alive(), "shortpathd exited during the test:\n" + shared.daemon.read_log()
    for key in shared.redis.cli("--scan", "--pattern", "sp:cred:{*").splitlines():
        shared.redis.cli("DEL", key)
    shared.redis.cli("INCR", CRED_EPOCH)
    for name in shared.names():
        shared.delete(name)
    wait_for(lambda: Creds(shared).stats()["credentials"] == 0, SYNC_S,
             what="no credentials left")


@pytest.fixture
def creds(sp):
    return Creds(sp)


def no_secret(text, secret=SECRET):
    assert secret not in text, "a secret in an answer: " + text
    assert '"secret":' not in text, text  # no such key in any answer


# --- create, read, replace, delete --------------------------------------------------------------

def test_crud_round(sp, creds):
    e0 = creds.epoch()
    st, doc, text = creds.call("PUT", "web", "AKIDEXAMPLE", {"secret": SECRET})
    assert st == 201, text
    no_secret(text)
    assert set(doc) == OUTPUT_KEYS, doc
    assert doc["service"] == "web" and doc["access_key"] == "AKIDEXAMPLE"
    assert doc["buckets"] == ["*"] and doc["actions"] == ["*"]  # the defaults
    assert isinstance(doc["created"], int) and doc["created"] == doc["updated"] > 1.6e9
    assert isinstance(doc["generation"], int) and doc["generation"] >= 1
    assert creds.epoch() == e0 + 1
    assert creds.get("web", "AKIDEXAMPLE") == doc

    # what Redis holds: the hash the contract names
    stored = creds.stored("web", "AKIDEXAMPLE")
    assert stored["secret"] == SECRET
    assert json.loads(stored["buckets"]) == ["*"] and json.loads(stored["actions"]) == ["*"]
    assert int(stored["created"]) == doc["created"] and int(stored["updated"]) == doc["updated"]

    # replace: fields left out keep their value (the secret too); the generation moves on
    st, doc2, text = creds.call("PUT", "web", "AKIDEXAMPLE",
                                {"buckets": ["logs-*", "data"], "actions": ["GetObject"]})
    assert st == 200, text
    no_secret(text)
    assert doc2["buckets"] == ["logs-*", "data"] and doc2["actions"] == ["GetObject"]
    assert doc2["created"] == doc["created"] and doc2["updated"] >= doc["updated"]
    assert doc2["generation"] > doc["generation"]
    assert creds.stored("web", "AKIDEXAMPLE")["secret"] == SECRET
    doc3 = creds.put("web", "AKIDEXAMPLE", {"secret": "another one"}, status=200)
    assert doc3["buckets"] == ["logs-*", "data"] and doc3["actions"] == ["GetObject"]
    assert doc3["generation"] > doc2["generation"]
    assert creds.stored("web", "AKIDEXAMPLE")["secret"] == "another one"
    # a GET's answer can be sent back as it is (output-only fields are ignored)
    assert creds.put("web", "AKIDEXAMPLE", doc3, status=200)["buckets"] == doc3["buckets"]

    # a second credential; the list is sorted by access key
    creds.put("web", "AKIDAAA", {"secret": "s"})
    listing = creds.listing("web")
    assert set(listing) == {"service", "credentials"} and listing["service"] == "web"
    assert [c["access_key"] for c in listing["credentials"]] == ["AKIDAAA", "AKIDEXAMPLE"]
    no_secret(json.dumps(listing), "another one")
    assert creds.stats()["credentials"] == 2

    # delete
    e1 = creds.epoch()
    creds.delete("web", "AKIDEXAMPLE")
    check_error(creds.call("GET", "web", "AKIDEXAMPLE"), 404, "not_found")
    check_error(creds.call("DELETE", "web", "AKIDEXAMPLE"), 404, "not_found")
    assert sp.redis.cli("EXISTS", redis_key("web", "AKIDEXAMPLE")) == "0"
    assert creds.epoch() == e1 + 1
    assert [c["access_key"] for c in creds.listing("web")["credentials"]] == ["AKIDAAA"]
    creds.delete("web", "AKIDAAA")
    assert creds.listing("web") == {"service": "web", "credentials": []}


def test_policy_normalised(sp, creds):
    doc = creds.put("web", "AK1", {"secret": "s", "buckets": ["b", "a", "b", "logs-*"],
                                   "actions": ["PutObject", "GetObject", "PutObject"]})
    assert doc["buckets"] == ["b", "a", "logs-*"]  # as given, once each
    assert doc["actions"] == ["GetObject", "PutObject"]  # in the table's order
    doc = creds.put("web", "AK1", {"buckets": ["a", "*"], "actions": ["GetObject", "*"]},
                    status=200)
    assert doc["buckets"] == ["*"] and doc["actions"] == ["*"]  # "*" covers the others
    every = ["GetObject", "PutObject", "DeleteObject", "ListBucket", "CreateBucket",
             "DeleteBucket", "ListAllMyBuckets"]
    doc = creds.put("web", "AK1", {"actions": every}, status=200)
    assert doc["actions"] == every  # every named action is still not "*" (POST, ...)
    doc = creds.put("web", "AK1", {"buckets": [], "actions": []}, status=200)
    assert doc["buckets"] == [] and doc["actions"] == []  # allowed nothing: a suspension
    sixteen = [f"b{i}" for i in range(16)]
    assert creds.put("web", "AK1", {"buckets": sixteen}, status=200)["buckets"] == sixteen


def test_access_keys_in_the_path(sp, creds):
    """Any printable ASCII but space and '/', percent-encoded in the path."""
    for ak in ("AK+x=y:z~!", "a%b?c#d", "{}[]*&^$@", "k" * 128, "'\"<>`|\\"):
        doc = creds.put("web", ak, {"secret": "s"})
        assert doc["access_key"] == ak
        assert creds.get("web", ak)["access_key"] == ak
        assert sp.redis.cli("EXISTS", redis_key("web", ak)) == "1"
    got = sorted(c["access_key"] for c in creds.listing("web")["credentials"])
    assert len(got) == 5
    for ak in got:
        creds.delete("web", ak)


# --- validation ---------------------------------------------------------------------------------

# (id, body, the field the error names)
INVALID_BODIES = [
    ("secret-missing", {"buckets": ["*"]}, "secret"),
    ("secret-empty", {"secret": ""}, "secret"),
    ("secret-257", {"secret": "s" * 257}, "secret"),
    ("secret-newline", {"secret": "a\nb"}, "secret"),
    ("secret-non-ascii", {"secret": "caf\u00e9"}, "secret"),
    ("secret-number", {"secret": 12345}, "secret"),
    ("secret-null", {"secret": None}, "secret"),
    ("buckets-string", {"secret": "s", "buckets": "data"}, "buckets"),
    ("buckets-upper", {"secret": "s", "buckets": ["Data"]}, "buckets"),
    ("buckets-star-inside", {"secret": "s", "buckets": ["a*b"]}, "buckets"),
    ("buckets-64", {"secret": "s", "buckets": ["b" * 64]}, "buckets"),
    ("buckets-empty-name", {"secret": "s", "buckets": [""]}, "buckets"),
    ("buckets-17", {"secret": "s", "buckets": [f"b{i}" for i in range(17)]}, "buckets"),
    ("buckets-number", {"secret": "s", "buckets": [1]}, "buckets"),
    ("actions-string", {"secret": "s", "actions": "GetObject"}, "actions"),
    ("actions-unknown", {"secret": "s", "actions": ["GetObjects"]}, "actions"),
    ("actions-prefixed", {"secret": "s", "actions": ["s3:GetObject"]}, "actions"),
    ("actions-lower", {"secret": "s", "actions": ["getobject"]}, "actions"),
    ("actions-number", {"secret": "s", "actions": [1]}, "actions"),
    ("unknown-field", {"secret": "s", "owner": "x"}, "owner"),
]
BAD_RAW = [("not-json", b'{"secret": '), ("array", b'[{"secret": "s"}]'), ("empty", b""),
           ("string", b'"s"')]


@pytest.mark.parametrize("body, field", [c[1:] for c in INVALID_BODIES],
                         ids=[c[0] for c in INVALID_BODIES])
def test_put_invalid(sp, creds, body, field):
    e0 = creds.epoch()
    err = check_error(creds.call("PUT", "web", "AK1", body), 400, "invalid", field)
    no_secret(json.dumps(err), "s" * 257)
    check_error(creds.call("GET", "web", "AK1"), 404, "not_found")
    assert creds.epoch() == e0 and sp.redis.cli("EXISTS", redis_key("web", "AK1")) == "0"
    # and for a replace: the credential is unchanged
    before = creds.put("web", "AK1", {"secret": "s"})
    if "secret" in body or field != "secret":  # a replace may leave the secret out
        check_error(creds.call("PUT", "web", "AK1", body), 400, "invalid", field)
    assert creds.get("web", "AK1") == before
    creds.delete("web", "AK1")


@pytest.mark.parametrize("raw", [c[1] for c in BAD_RAW], ids=[c[0] for c in BAD_RAW])
def test_put_bad_body(sp, creds, raw):
    check_error(creds.call("PUT", "web", "AK1", raw=raw), 400, "invalid", "body")
    check_error(creds.call("GET", "web", "AK1"), 404, "not_found")


BAD_AKS = ["a b", "a/b", "k" * 129, "caf\u00e9", "tab\there", "nul\x00x", ""]


@pytest.mark.parametrize("ak", BAD_AKS, ids=["space", "slash", "129", "non-ascii", "tab", "nul",
                                             "empty"])
@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_invalid_access_key(sp, creds, method, ak):
    body = {"secret": "s"} if method == "PUT" else None
    check_error(creds.call(method, "web", ak, body), 400, "invalid", "access_key")
    assert creds.listing("web")["credentials"] == []


@pytest.mark.parametrize("name", ["UPPER", "-x", "a" * 33, "a.b"])
def test_invalid_service_name(sp, creds, name):
    check_error(creds.call("GET", name), 400, "invalid", "name")
    check_error(creds.call("PUT", name, "AK1", {"secret": "s"}), 400, "invalid", "name")


@pytest.mark.parametrize("method, ak", [("POST", None), ("PUT", None), ("DELETE", None),
                                         ("PATCH", None), ("POST", "AK1"), ("PATCH", "AK1")])
def test_method_not_allowed(sp, creds, method, ak):
    check_error(creds.call(method, "web", ak, {"secret": "s"}), 405, "method_not_allowed")
    assert creds.listing("web")["credentials"] == []


# --- services and credentials -------------------------------------------------------------------

def test_service_must_exist(sp, creds):
    check_error(creds.call("PUT", "nosuch", "AK1", {"secret": "s"}), 404, "not_found")
    assert sp.redis.cli("EXISTS", redis_key("nosuch", "AK1")) == "0"
    assert creds.listing("nosuch") == {"service": "nosuch", "credentials": []}
    check_error(creds.call("GET", "nosuch", "AK1"), 404, "not_found")


def test_service_deletion_keeps_credentials(sp, creds):
    doc = creds.put("web", "AK1", {"secret": "s", "buckets": ["data"]})
    assert isinstance(doc["generation"], int)
    sp.delete("web")
    kept = creds.get("web", "AK1")
    assert kept["generation"] is None  # no slot: no counter
    assert {k: kept[k] for k in ("buckets", "actions", "created")} == \
        {k: doc[k] for k in ("buckets", "actions", "created")}
    assert sp.redis.cli("EXISTS", redis_key("web", "AK1")) == "1"
    check_error(creds.call("PUT", "web", "AK1", {"secret": "t"}), 404, "not_found")
    # the service back: its credentials are there, with a generation again
    sp.put("web", svc(auth="every-request"))
    assert isinstance(creds.get("web", "AK1")["generation"], int)
    creds.delete("web", "AK1")


# --- the secret ---------------------------------------------------------------------------------

def test_secret_never_returned_nor_logged(sp, creds):
    secret = "Zq7/secret+never-SHOWN=" + "x" * 20
    texts = [creds.call("PUT", "web", "AKSECRET", {"secret": secret})[2],
             creds.call("PUT", "web", "AKSECRET", {"secret": secret, "buckets": ["a"]})[2],
             creds.call("GET", "web", "AKSECRET")[2], creds.call("GET", "web")[2],
             creds.call("PUT", "web", "AKSECRET", {"secret": secret, "bogus": 1})[2],
             creds.call("PUT", "web", "AKSECRET", {"secret": secret, "buckets": "x"})[2],
             sp.call("GET", "/v1/auth")[2], sp.call("GET", "/v1/stats")[2],
             http_get(sp.api_port, "/metrics")[2], json.dumps(sp.telemetry("/shortpath/auth"))]
    for text in texts:
        no_secret(text, secret)
    creds.delete("web", "AKSECRET")
    assert secret not in sp.daemon.read_log()


# --- Redis: persistence, other writers, outage --------------------------------------------------

def test_credentials_survive_restart(cleanup):
    r = new_redis(cleanup)
    a = new_node(cleanup, "cred-a", r).start()
    a.put("web", svc(auth="first"))
    ca = Creds(a)
    ca.put("web", "AK1", {"secret": "one", "buckets": ["data", "logs-*"],
                          "actions": ["GetObject", "ListBucket"]})
    ca.put("web", "AK2", {"secret": "two"})
    ca.put("web", "AK3", {"secret": "three"})
    ca.delete("web", "AK3")
    before = ca.listing("web")
    rc, log = a.stop()
    assert rc == 0, log

    b = new_node(cleanup, "cred-b", r).start()
    cb = Creds(b)
    wait_for(lambda: cb.stats()["loaded"] and cb.stats()["credentials"] == 2, SYNC_S,
             what="the credentials loaded from Redis")
    after = cb.listing("web")
    strip = lambda d: [{k: v for k, v in c.items() if k != "generation"}  # noqa: E731
                       for c in d["credentials"]]
    assert strip(after) == strip(before)
    assert cb.stats()["epoch"] == ca.epoch()
    check_error(cb.call("GET", "web", "AK3"), 404, "not_found")
    assert any(re.search(r"auth: 2 credential\(s\) loaded from Redis", ln)
               for ln in b.log_lines()), b.daemon.read_log()


def test_change_by_another_writer(sp, creds):
    """A credential written to Redis by another shortpathd (HSET + INCR) shows in the API."""
    key = redis_key("web", "AKEXT")
    sp.redis.cli("HSET", key, "secret", "ext", "buckets", '["ext"]', "actions", '["GetObject"]',
                 "created", "1700000000", "updated", "1700000001")
    sp.redis.cli("INCR", CRED_EPOCH)
    got = wait_for(lambda: creds.call("GET", "web", "AKEXT")[0] == 200 and
                   creds.get("web", "AKEXT"), SYNC_S, what="AKEXT in the API")
    assert got["buckets"] == ["ext"] and got["actions"] == ["GetObject"]
    assert (got["created"], got["updated"]) == (1700000000, 1700000001)
    g0 = got["generation"]

    # changed behind its back: the generation moves on
    sp.redis.cli("HSET", key, "buckets", '["ext", "more"]')
    sp.redis.cli("INCR", CRED_EPOCH)
    got = wait_for(lambda: (d := creds.get("web", "AKEXT"))["buckets"] == ["ext", "more"] and d,
                   SYNC_S, what="AKEXT changed")
    assert got["generation"] > g0

    # this instance's own write comes after it, and keeps it
    creds.put("web", "AKMINE", {"secret": "m"})
    assert sp.redis.cli("EXISTS", key) == "1" and creds.get("web", "AKEXT")

    # deleted behind its back
    sp.redis.cli("DEL", key)
    sp.redis.cli("INCR", CRED_EPOCH)
    wait_for(lambda: creds.call("GET", "web", "AKEXT")[0] == 404, SYNC_S,
             what="AKEXT gone from the API")
    assert [c["access_key"] for c in creds.listing("web")["credentials"]] == ["AKMINE"]


def test_invalid_entries_in_redis_skipped(sp, creds):
    sp.redis.cli("HSET", redis_key("web", "AKNOSECRET"), "buckets", '["*"]')
    sp.redis.cli("HSET", redis_key("web", "AKBADJSON"), "secret", "s", "buckets", "[")
    sp.redis.cli("HSET", redis_key("web", "AKBADACT"), "secret", "s", "actions", '["Fly"]')
    sp.redis.cli("SET", redis_key("web", "AKSTRING"), "not a hash")
    sp.redis.cli("HSET", "sp:cred:{web}:nobraces", "secret", "s")
    sp.redis.cli("HSET", redis_key("web", "AKFINE"), "secret", "s")  # buckets, actions: all
    sp.redis.cli("INCR", CRED_EPOCH)
    wait_for(lambda: creds.call("GET", "web", "AKFINE")[0] == 200, SYNC_S, what="AKFINE loaded")
    assert sp.alive(), sp.daemon.read_log()
    fine = creds.get("web", "AKFINE")
    assert fine["buckets"] == ["*"] and fine["actions"] == ["*"]
    assert [c["access_key"] for c in creds.listing("web")["credentials"]] == ["AKFINE"]
    for ak in ("AKNOSECRET", "AKBADJSON", "AKBADACT", "AKSTRING"):
        wait_for(lambda: any(ak in ln and "skipped" in ln for ln in sp.log_lines()), 2,
                 what=f"a log line about {ak}")
    assert sp.health()["status"] == "ok"


def test_redis_down_reads_from_memory_writes_503(cleanup):
    r = new_redis(cleanup)
    node = new_node(cleanup, "cred-down", r).start()
    node.put("web", svc(auth="every-request"))
    c = Creds(node)
    c.put("web", "AK1", {"secret": "s"})
    assert r.cli("SAVE") == "OK"  # the restarted redis-server reloads this snapshot
    r.stop()
    wait_for(lambda: node.health()["status"] == "degraded", 5, what="degraded")
    check_error(c.call("PUT", "web", "AK2", {"secret": "s"}), 503, "redis_unavailable")
    check_error(c.call("PUT", "web", "AK1", {"secret": "t"}), 503, "redis_unavailable")
    check_error(c.call("DELETE", "web", "AK1"), 503, "redis_unavailable")
    assert c.get("web", "AK1")["access_key"] == "AK1"  # read from memory
    assert c.stats()["loaded"] is True
    # validation still comes first
    check_error(c.call("PUT", "web", "AK2", {"secret": ""}), 400, "invalid", "secret")
    r.start()
    wait_for(lambda: node.health()["status"] == "ok", 10, what="ok again")
    c.put("web", "AK2", {"secret": "s"})
    assert [x["access_key"] for x in c.listing("web")["credentials"]] == ["AK1", "AK2"]


# --- counters -----------------------------------------------------------------------------------

def test_auth_stats_shape(sp, creds):
    creds.put("web", "AK1", {"secret": "s"})
    doc = creds.stats()
    assert doc["loaded"] is True and doc["credentials"] == 1
    assert isinstance(doc["epoch"], int) and doc["epoch"] == creds.epoch()
    for k in ("punts", "ok", "ok_signature_only", "refused", "undecided", "verdicts",
              "ring_full", "bad_worker"):
        assert isinstance(doc[k], int) and doc[k] >= 0, k
    assert set(doc["refused_by"]) == SIGV4_ERRORS | {"access_denied"}
    assert set(doc["undecided_by"]) == UNDECIDED
    assert doc["refused"] == sum(doc["refused_by"].values())
    assert doc["undecided"] == sum(doc["undecided_by"].values())
    v = doc["verify"]
    assert set(v) == {"count", "sum_ns", "max_ns", "mean_ns", "histogram"}
    assert len(v["histogram"]) == 16 and "lt_1us" in v["histogram"] and \
        "ge_16384us" in v["histogram"]
    assert v["count"] == sum(v["histogram"].values())
    assert set(doc["signing_keys"]) == {"derived", "cached"}
    assert set(doc["workers"]) == WORKER_EVENTS
    assert all(isinstance(x, int) for x in doc["workers"].values())
    check_error(sp.call("PUT", "/v1/auth", {}), 405, "method_not_allowed")


def test_auth_telemetry(sp, creds):
    creds.put("web", "AK1", {"secret": "s"})
    t = sp.telemetry("/shortpath/auth")
    assert t["loaded"] == 1 and t["credentials"] == 1
    for k in ("punts", "ok", "refused", "undecided", "verdicts", "verify_count",
              "verify_sum_ns", "verify_max_ns", "verify_mean_ns", "keys_derived",
              "keys_cached"):
        assert isinstance(t[k], int), k
    assert set(t["refused_by"]) == SIGV4_ERRORS | {"access_denied"}
    assert set(t["undecided_by"]) == UNDECIDED
    assert len(t["verify_hist"]) == 16
    assert set(t["workers"]) == WORKER_EVENTS
    # the workers' own events are also in the per-worker TCP counters
    stats = sp.telemetry("/shortpath/stats")
    assert all(f"tcp_{e}" in stats for e in WORKER_EVENTS), sorted(stats)


def test_metrics(sp, creds):
    creds.put("web", "AK1", {"secret": "s"})
    st, _headers, text = http_get(sp.api_port, "/metrics")
    assert st == 200
    lines = text.splitlines()
    assert "sp_auth_credentials 1" in lines
    for family in ("sp_auth_punts_total", "sp_auth_verified_total", "sp_auth_refused_total",
                   "sp_auth_undecided_total", "sp_auth_verdicts_total",
                   "sp_auth_verify_seconds_total", "sp_auth_verifications_total",
                   "sp_auth_verify_seconds_max", "sp_auth_verify_time_total"):
        assert f"# TYPE {family} " in text, family
    assert 'sp_auth_refused_total{reason="signature_mismatch"} 0' in lines
    assert 'sp_auth_refused_total{reason="access_denied"} 0' in lines
    assert 'sp_auth_verify_time_total{below_us="1"} 0' in lines
    assert 'sp_auth_verify_time_total{below_us="+Inf"} 0' in lines
    assert "sp_auth_verifications_total 0" in lines
