#!/usr/bin/python3
"""GET latency through shortpathd in the lab: the ordinary path (LB, front end) vs direct to the storage node, same run.

    tools/lab/lab.sh up                               # the lab, service s3 on the direct path
    tools/bench/direct_latency.py [--requests 300] [--size 1024] [--vm sp-vm1] [--json]

For each path the service `s3` is switched at run time through shortpathd's API (auth service =
ordinary, auth none = direct), then a client in the VM namespace signs (SigV4, botocore) and sends
GETs of one object, new TCP connection per request and on a kept-alive connection (the direct path
answers Connection: close, so a kept-alive client reconnects: that is what a real client pays).
The rounds alternate ordinary/direct so drift hits both. Every body is checked (SHA-256). Prints
p50/p90/p99/mean per path and mode, the ratio direct/ordinary, and shortpathd's counters (how
many requests went direct). Exit 1 if a request failed or went the wrong way.
"""
import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = "/run/shortpath-lab"
ENV_JSON = os.path.join(RUN, "svc", "env.json")


def measure(a):
    """Inside the VM namespace: GET the object a.requests times per mode; print JSON."""
    import http.client

    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials

    env = json.load(open(a.env))
    creds = botocore.credentials.Credentials(env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])
    host = env["SVC_ENDPOINT"].split("://", 1)[1]
    path = f"/{a.bucket}/{a.key}"

    def signed_headers():
        req = botocore.awsrequest.AWSRequest(method="GET", url=f"http://{host}{path}")
        req.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
        botocore.auth.S3SigV4Auth(creds, "s3", env.get("SVC_REGION", "us-east-1")).add_auth(req)
        return dict(req.headers.items())

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


def api(method, path, body=None):
    req = urllib.request.Request(f"http://127.0.0.1:9180{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read() or b"{}")


def stats():
    """shortpathd's TCP endpoint counters, summed over the workers."""
    return api("GET", "/v1/stats")["total"]["tcp_events"]


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


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

    env = json.load(open(a.env))
    svc = api("GET", "/v1/services/s3")
    bucket, key = f"lat-{int(time.time())}", "obj-1k"
    data = os.urandom(a.size)
    sha = hashlib.sha256(data).hexdigest()
    import boto3  # the object is put through the ordinary path, before the rounds

    # from the host: the management link reaches the VIP without shortpathd
    s3 = boto3.client("s3", endpoint_url=env["SVC_ENDPOINT"],
                      aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1",
                      config=__import__("botocore.config").config.Config(
                          s3={"addressing_style": "path"}))
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    res = {"ordinary": {"new": [], "keepalive": []}, "direct": {"new": [], "keepalive": []}}
    went = {"ordinary": 0, "direct": 0}
    try:
        for _ in range(a.rounds):
            for path, auth in (("ordinary", "service"), ("direct", "none")):
                api("PATCH", "/v1/services/s3", {"auth": auth})
                time.sleep(0.3)  # the workers' table is published within the API call
                before = stats()
                r = subprocess.run(["ip", "netns", "exec", a.vm, sys.executable, __file__,
                                    "--measure", "--env", a.env, "--bucket", bucket, "--key", key,
                                    "--sha256", sha, "--requests", str(a.requests)],
                                   capture_output=True, text=True, timeout=600)
                if r.returncode != 0:
                    sys.exit(f"{path}: the client failed: {r.stdout}{r.stderr}")
                after = stats()
                went[path] += after.get("bind_node", 0) - before.get("bind_node", 0)
                m = json.loads(r.stdout)
                for mode in m:
                    res[path][mode] += m[mode]["lat_us"]
    finally:
        api("PATCH", "/v1/services/s3", {"auth": svc["auth"]})
        s3.delete_object(Bucket=bucket, Key=key)
        s3.delete_bucket(Bucket=bucket)
    summary = {"size": a.size, "requests_per_path_and_mode": a.requests * a.rounds,
               "went_direct": went}
    for path in res:
        for mode, v in res[path].items():
            summary[f"{path}_{mode}"] = {"p50_us": round(pct(v, 50)), "p90_us": round(pct(v, 90)),
                                         "p99_us": round(pct(v, 99)),
                                         "mean_us": round(statistics.mean(v))}
    for mode in ("new", "keepalive"):
        summary[f"ratio_p50_{mode}"] = round(summary[f"direct_{mode}"]["p50_us"] /
                                             summary[f"ordinary_{mode}"]["p50_us"], 3)
    if not a.json:
        print(f"GET of a {a.size} B object from {a.vm}, {a.requests * a.rounds} requests per path "
              "and mode, alternating rounds")
        print(f"{'path':10} {'connection':11} {'p50 us':>8} {'p90 us':>8} {'p99 us':>8} {'mean us':>8}")
        for path in ("ordinary", "direct"):
            for mode in ("new", "keepalive"):
                s = summary[f"{path}_{mode}"]
                print(f"{path:10} {mode:11} {s['p50_us']:8} {s['p90_us']:8} {s['p99_us']:8} "
                      f"{s['mean_us']:8}")
        print(f"direct/ordinary p50: new connection {summary['ratio_p50_new']}, kept-alive "
              f"{summary['ratio_p50_keepalive']} (goal <= 0.5)")
        print(f"shortpathd bound to a storage node: {went['direct']} during the direct rounds, "
              f"{went['ordinary']} during the ordinary ones")
    print(json.dumps(summary))
    ok = went["ordinary"] == 0 and went["direct"] >= 2 * a.requests * a.rounds * 0.99
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
