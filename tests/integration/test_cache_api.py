"""The object cache's management API (/v1/cache, docs/cache.md), its counters (GET /v1/cache,
/shortpath/cache telemetry, shortpath_cache_* in /metrics), the services API's cache object and
`spctl cache`, end to end with shortpathd and a private redis-server.

One shortpathd and one Redis are shared by the module (every test leaves them with no services).
The cache starts empty and is filled by traffic only (no Redis state): what entries look like and
how fills, hits, eviction and revalidation behave is tested with traffic (the lab, and the tests
that drive the workers).
"""
import pytest

from sphelpers import http_get
from test_services import check_error, shared_node, spctl, svc

CACHE = {"policy": "ttl", "ttl_s": 60}
EVENTS = {"fills", "fills_stale", "fills_rejected", "admission_rejected", "inserted", "replaced",
          "evicted", "invalidated", "purged", "freed", "waited", "doorkeeper_resets",
          "bad_messages"}
GAUGES = {"entries", "bytes", "budget", "capacity", "max_object", "graveyard", "graveyard_bytes",
          "waiting", "waiting_bytes", "revalidating"}
REJECTS = {"not_200", "bad_head", "length", "no_store", "too_big", "policy_none", "template",
           "no_etag", "no_memory", "index_full", "wait_full", "bad_fill", "stopping"}
REVALS = {"asked", "not_modified", "changed", "changed_cached", "gone", "failed", "kept_stale",
          "no_entry"}
WRITE_THROUGH = {"asked", "inserted", "changed", "failed", "stale", "rejected"}
# the workers' cache events the stats must carry at least (sp_tcp_ep.h names them)
WORKER_EVENTS = {"cache_hit", "cache_miss", "cache_bytes"}


@pytest.fixture(scope="module")
def shared():
    yield from shared_node("cache")


@pytest.fixture
def sp(shared):
    """The shared shortpathd with service "web" caching (ttl 60 s); cleaned up after."""
    assert shared.alive(), "the shared shortpathd is gone:\n" + shared.daemon.read_log()
    shared.put("web", svc(auth="none", cache=CACHE))
    yield shared
    assert shared.alive(), "shortpathd exited during the test:\n" + shared.daemon.read_log()
    for name in shared.names():
        shared.delete(name)


# --- GET /v1/cache ------------------------------------------------------------------------------

def test_stats_shape(sp):
    doc = sp.ok("GET", "/v1/cache")
    assert doc["enabled"] is True and doc["admission"] == "second-hit"
    for k in GAUGES | EVENTS:
        assert isinstance(doc[k], int) and doc[k] >= 0, k
    assert doc["budget"] == 65536 * 1024 and doc["max_object"] == 1024 * 1024
    assert doc["capacity"] == 65536
    assert doc["entries"] == 0 and doc["bytes"] == 0
    assert set(doc["fills_rejected_by"]) == REJECTS
    assert doc["fills_rejected"] == sum(doc["fills_rejected_by"].values())
    assert set(doc["revalidations"]) == REVALS
    assert set(doc["write_through"]) == WRITE_THROUGH
    workers = doc["workers"]
    assert WORKER_EVENTS <= set(workers), sorted(workers)
    assert all(k.startswith("cache_") and isinstance(v, int) for k, v in workers.items())
    # /v1/stats carries the same document
    assert set(sp.ok("GET", "/v1/stats")["cache"]) == set(doc)


@pytest.mark.parametrize("method", ["PUT", "POST", "DELETE", "PATCH"])
def test_stats_method_not_allowed(sp, method):
    check_error(sp.call(method, "/v1/cache"), 405, "method_not_allowed")


# --- list, show, purge ---------------------------------------------------------------------------

def test_empty_cache(sp):
    doc = sp.ok("GET", "/v1/cache/web")
    assert doc == {"service": "web", "slot": doc["slot"], "prefix": "", "count": 0,
                   "limit": 1000, "truncated": False, "entries": []}
    doc = sp.ok("GET", "/v1/cache/web?prefix=/photos/&limit=5")
    assert (doc["prefix"], doc["limit"], doc["entries"]) == ("/photos/", 5, [])
    check_error(sp.call("GET", "/v1/cache/web/objects/photos/cat.jpg"), 404, "not_found")
    assert sp.ok("DELETE", "/v1/cache/web/objects/photos/cat.jpg") == \
        {"service": "web", "name": "/photos/cat.jpg", "purged": 0}
    assert sp.ok("DELETE", "/v1/cache/web") == {"service": "web", "purged": 0}
    # a purge invalidates even what is not cached: counted only when an entry goes
    assert sp.ok("GET", "/v1/cache")["purged"] == 0


def test_percent_encoded_name(sp):
    # the name is percent-decoded, as the workers key objects ("/b/a%20b" and "/b/a b" are one)
    assert sp.ok("DELETE", "/v1/cache/web/objects/b/a%20b%2Fc")["name"] == "/b/a b/c"


@pytest.mark.parametrize("method,path", [
    ("GET", "/v1/cache/nope"),
    ("DELETE", "/v1/cache/nope"),
    ("GET", "/v1/cache/nope/objects/b/k"),
    ("DELETE", "/v1/cache/nope/objects/b/k"),
])
def test_unknown_service(sp, method, path):
    check_error(sp.call(method, path), 404, "not_found")


@pytest.mark.parametrize("path,field", [
    ("/v1/cache/Web", "service"),
    ("/v1/cache/-web", "service"),
    ("/v1/cache/" + "a" * 33, "service"),
    ("/v1/cache/web?limit=0", "limit"),
    ("/v1/cache/web?limit=100001", "limit"),
    ("/v1/cache/web?limit=ten", "limit"),
    ("/v1/cache/web?limit=", "limit"),
    ("/v1/cache/web?prefix=/" + "p" * 1100, "prefix"),
    ("/v1/cache/web?order=size", "order"),
    ("/v1/cache/web/objects/", "name"),
])
def test_invalid(sp, path, field):
    check_error(sp.call("GET", path), 400, "invalid", field)


def test_other_paths_and_methods(sp):
    check_error(sp.call("GET", "/v1/cache/web/things"), 404, "not_found")
    check_error(sp.call("GET", "/v1/cache/web/objectsX/b/k"), 404, "not_found")
    for path in ("/v1/cache/web", "/v1/cache/web/objects/b/k"):
        for method in ("PUT", "POST", "PATCH"):
            check_error(sp.call(method, path), 405, "method_not_allowed")


def test_service_changes_keep_the_api_consistent(sp):
    # a change of cache settings, a deletion and a slot reused invalidate the service's
    # entries (nothing cached here: the counters and answers stay consistent)
    sp.patch("web", {"cache": {"stale_if_error_s": 30}})
    sp.patch("web", {"cache": {"policy": "verify"}})
    assert sp.ok("GET", "/v1/cache/web")["count"] == 0
    sp.delete("web")
    check_error(sp.call("GET", "/v1/cache/web"), 404, "not_found")
    sp.put("other", svc(cache=CACHE))
    assert sp.ok("GET", "/v1/cache/other")["service"] == "other"
    doc = sp.ok("GET", "/v1/cache")
    assert doc["entries"] == 0 and doc["invalidated"] == 0


# --- the services API's cache object -------------------------------------------------------------

def test_stale_if_error_in_services(sp):
    doc = sp.put("s1", svc(vip="10.1.0.9", cache={"policy": "verify", "ttl_s": 0,
                                                    "stale_if_error_s": 300}))
    assert doc["cache"] == {"policy": "verify", "ttl_s": 0, "stale_if_error_s": 300}
    doc = sp.patch("s1", {"cache": {"stale_if_error_s": 86400}})
    assert doc["cache"] == {"policy": "verify", "ttl_s": 0, "stale_if_error_s": 86400}
    assert sp.get("s1")["cache"]["stale_if_error_s"] == 86400
    # absent: 0 (definitions without it keep their shape)
    assert "stale_if_error_s" not in sp.get("web")["cache"]


@pytest.mark.parametrize("value", [-1, 86401, "5", 1.5, None, True])
def test_stale_if_error_invalid(sp, value):
    check_error(sp.call("PUT", "/v1/services/s2",
                        svc(vip="10.1.0.10", cache=dict(CACHE, stale_if_error_s=value))),
                400, "invalid", ("cache.stale_if_error_s", "cache"))
    check_error(sp.call("PATCH", "/v1/services/web",
                        {"cache": {"stale_if_error_s": value}}),
                400, "invalid", ("cache.stale_if_error_s", "cache"))


# --- telemetry and /metrics ----------------------------------------------------------------------

def test_telemetry(sp):
    t = sp.telemetry("/shortpath/cache")
    assert t["enabled"] == 1 and t["admission"] == "second-hit"
    for k in GAUGES | EVENTS:
        assert isinstance(t[k], int), k
    assert set(t["fills_rejected_by"]) == REJECTS
    assert set(t["revalidations"]) == REVALS
    assert set(t["write_through"]) == WRITE_THROUGH
    assert WORKER_EVENTS <= set(t["workers"])
    # DPDK 22.11 takes dict keys of [A-Za-z0-9_/] only, and one level of nesting
    for k, v in t.items():
        assert all(c.isalnum() or c in "_/" for c in k), k
        if isinstance(v, dict):
            assert all(not isinstance(x, dict) for x in v.values()), k


def test_metrics(sp):
    st, _headers, text = http_get(sp.api_port, "/metrics")
    assert st == 200
    lines = text.splitlines()
    assert "shortpath_cache_entries 0" in lines
    assert f"shortpath_cache_budget {65536 * 1024}" in lines
    for family in ("shortpath_cache_fills_total", "shortpath_cache_evicted_total",
                   "shortpath_cache_inserted_total", "shortpath_cache_fills_rejected_by_total",
                   "shortpath_cache_revalidations_total",
                   "shortpath_cache_write_through_total",
                   "shortpath_cache_worker_events_total"):
        assert f"# TYPE {family} counter" in text, family
    assert 'shortpath_cache_fills_rejected_by_total{reason="too_big"} 0' in lines
    assert 'shortpath_cache_revalidations_total{outcome="not_modified"} 0' in lines
    assert 'shortpath_cache_worker_events_total{event="cache_hit"} 0' in lines


# --- spctl ---------------------------------------------------------------------------------------

def test_spctl_cache(sp):
    api = f"127.0.0.1:{sp.api_port}"
    for argv in (["cache"], ["cache", "stats"]):
        r = spctl(*argv, api=api)
        assert r.returncode == 0, r.stderr
        assert "entries:" in r.stdout and "budget:" in r.stdout, r.stdout
    r = spctl("--json", "cache", api=api)
    assert r.returncode == 0 and '"enabled": true' in r.stdout, r.stdout
    r = spctl("cache", "list", "web", "--prefix", "/b/", "--limit", "3", api=api)
    assert r.returncode == 0 and "(0 cached objects of service web)" in r.stdout, r.stdout
    r = spctl("cache", "show", "web", "/b/k", api=api)
    assert r.returncode == 1 and "404 not_found" in r.stderr, r.stderr
    r = spctl("cache", "purge", "web", "/b/k", api=api)
    assert r.returncode == 0 and "purged /b/k of service web: 0 entries removed" in r.stdout
    r = spctl("cache", "purge", "web", api=api)
    assert r.returncode == 0 and "purged service web: 0 entries removed" in r.stdout
    r = spctl("cache", "list", "nope", api=api)
    assert r.returncode == 1 and "404" in r.stderr
    r = spctl("cache", "list", "web", "--limit", "0", api=api)
    assert r.returncode == 1 and "(field: limit)" in r.stderr, r.stderr
    r = spctl("cache", "show", "web", "nokey", api=api)
    assert r.returncode == 1 and "/BUCKET/KEY" in r.stderr, r.stderr
