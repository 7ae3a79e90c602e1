#!/usr/bin/python3
"""GET latency through shortpathd in the lab: the ordinary path (LB, front end) vs direct to the storage node vs answered from shortpathd's cache, same run.

    tools/lab/lab.sh up                               # the lab, service s3 on the direct path
    tools/bench/direct_latency.py [--requests 300] [--size 1024] [--vm sp-vm1] [--json]

For each path the service `s3` is switched at run time through shortpathd's API (auth service =
ordinary, auth none = direct), then a client in the VM namespace signs (SigV4, botocore) and sends
GETs of one object, new TCP connection per request and on a kept-alive connection (the direct path
answers Connection: close, so a kept-alive client reconnects: that is what a real client pays).
The third path, cached (auth none, cache ttl), is answered by shortpathd's worker from its cache
(the object is read once before each round, so it is there): no packet to the service. The rounds
alternate ordinary/direct/cached so drift hits all three. Every body is checked (SHA-256). Prints
p50/p90/p99/mean per path and mode, the ratios to the ordinary path, and shortpathd's counters
(how many requests went direct, how many were cache hits). Exit 1 if a request failed or went the
wrong way.
"""
import argparse
import hashlib
import json
import subprocess
import sys
import time

from labbench import (ENV_JSON, api, get_signer, load_env, restore, set_auth, summary, tcp_events,
                      test_object)


def measure(a):
    """Inside the VM namespace: GET the object a.requests times per mode; print JSON."""
    import http.client

    host, path, signed_headers = get_signer(load_env(a.env), a.bucket, a.key)
    out = {}
    for mode in ("new", "keepalive"):
        lat, conn, reconnects = [], None, 0
        for _ in range(a.requests):
            h = signed_headers()
            t0 = time.perf_counter()
            if conn is None or mode == "new":
                conn = http.client.HTTPConnection(host, timeout=10)
                reconnects += 1
            conn.request("GET", path, headers=h)
            r = conn.getresponse()
            body = r.read()
            dt = time.perf_counter() - t0
            if r.status != 200 or hashlib.sha256(body).hexdigest() != a.sha256:
                print(json.dumps({"error": f"status {r.status}, {len(body)} bytes"}))
                sys.exit(1)
            if mode == "new" or r.will_close:
                conn.close()
                conn = None
            lat.append(dt * 1e6)
        if conn is not None:
            conn.close()
        out[mode] = {"lat_us": lat, "connections": reconnects}
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=300, help="GETs per path, mode and round")
    p.add_argument("--rounds", type=int, default=2, help="ordinary/direct alternations")
    p.add_argument("--size", type=int, default=1024, help="object size in bytes")
    p.add_argument("--vm", default="sp-vm1", help="VM namespace of the client")
    p.add_argument("--json", action="store_true", help="only the JSON summary")
    p.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--env", default=ENV_JSON, help=argparse.SUPPRESS)
    p.add_argument("--bucket", help=argparse.SUPPRESS)
    p.add_argument("--key", help=argparse.SUPPRESS)
    p.add_argument("--sha256", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.measure:
        return measure(a)

    env = load_env(a.env)
    svc = api("GET", "/v1/services/s3")
    paths = (("ordinary", "service", "none"), ("direct", "none", "none"),
             ("cached", "none", "ttl"))
    res = {path: {"new": [], "keepalive": []} for path, _, _ in paths}
    went = {path: 0 for path, _, _ in paths}
    hits = {path: 0 for path, _, _ in paths}

    def client(bucket, key, sha, n):
        r = subprocess.run(["ip", "netns", "exec", a.vm, sys.executable, __file__, "--measure",
                            "--env", a.env, "--bucket", bucket, "--key", key, "--sha256", sha,
                            "--requests", str(n)], capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            sys.exit(f"{path}: the client failed: {r.stdout}{r.stderr}")
        return json.loads(r.stdout)

    with test_object(env, "lat", a.size) as (bucket, key, sha):
        try:
            for _ in range(a.rounds):
                for path, auth, cache in paths:
                    set_auth(auth, cache)
                    if cache != "none":
                        client(bucket, key, sha, 1)  # the first read fills the cache
                        time.sleep(0.2)
                    before = tcp_events()
                    m = client(bucket, key, sha, a.requests)
                    after = tcp_events()
                    went[path] += after.get("bind_node", 0) - before.get("bind_node", 0)
                    hits[path] += after.get("cache_hit", 0) - before.get("cache_hit", 0)
                    for mode in m:
                        res[path][mode] += m[mode]["lat_us"]
        finally:
            restore(svc)
    result = {"size": a.size, "requests_per_path_and_mode": a.requests * a.rounds,
               "went_direct": went, "cache_hits": hits}
    for path in res:
        for mode, v in res[path].items():
            result[f"{path}_{mode}"] = summary(v)
    for mode in ("new", "keepalive"):
        for path in ("direct", "cached"):
            result[f"ratio_p50_{path}_{mode}"] = round(result[f"{path}_{mode}"]["p50_us"] /
                                                       result[f"ordinary_{mode}"]["p50_us"], 3)
        result[f"ratio_p50_{mode}"] = result[f"ratio_p50_direct_{mode}"]
    if not a.json:
        print(f"GET of a {a.size} B object from {a.vm}, {a.requests * a.rounds} requests per path "
              "and mode, alternating rounds")
        print(f"{'path':10} {'connection':11} {'p50 us':>8} {'p90 us':>8} {'p99 us':>8} {'mean us':>8}")
        for path in ("ordinary", "direct", "cached"):
            for mode in ("new", "keepalive"):
                s = result[f"{path}_{mode}"]
                print(f"{path:10} {mode:11} {s['p50_us']:8} {s['p90_us']:8} {s['p99_us']:8} "
                      f"{s['mean_us']:8}")
        print(f"direct/ordinary p50: new connection {result['ratio_p50_new']}, kept-alive "
              f"{result['ratio_p50_keepalive']} (goal <= 0.5)")
        print(f"cached/ordinary p50: new connection {result['ratio_p50_cached_new']}, "
              f"kept-alive {result['ratio_p50_cached_keepalive']}")
        print(f"shortpathd bound to a storage node: {went['direct']} during the direct rounds, "
              f"{went['ordinary']} during the ordinary ones, {went['cached']} during the cached "
              f"ones; cache hits: {hits['cached']} during the cached rounds")
    print(json.dumps(result))
    n = 2 * a.requests * a.rounds
    ok = (went["ordinary"] == 0 and went["direct"] >= n * 0.99 and hits["cached"] >= n * 0.99
          and hits["direct"] == 0)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
