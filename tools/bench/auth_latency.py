#!/usr/bin/python3
"""GET latency through shortpathd in the lab with local authentication: a VM's first request (verified in the control thread) vs a later one (verdict hit) vs auth none vs every-request, same run.

    tools/lab/lab.sh up                               # the lab, service s3 direct with auth first
    tools/bench/auth_latency.py [--requests 200] [--rounds 3] [--size 1024] [--vm sp-vm1]
                                [--ordinary] [--json]

A client in the VM namespace signs (SigV4, botocore, before the clock starts) and sends GETs of
one object, each on a new TCP connection (the direct path answers Connection: close), and times
each from connect to the last body byte; every body is checked (SHA-256). The service `s3` is
switched at run time through shortpathd's API:
  first     auth first, and before every sample the lab client's credential is set again with
            the same secret (PUT /v1/services/s3/credentials/AK, outside the timed part): its
            generation moves, so the sample finds no verdict and is verified in the control
            thread (the latency a VM's first request as a client pays)
  hit       auth first, after one warm-up request: every sample rides the verdict (no crypto)
  none      auth none: nobody authenticates (the direct path of issue 4)
  every     auth every-request: every sample is verified in the control thread
  ordinary  (--ordinary) auth service: the ordinary path, the service's front end authenticates
Every sample of every mode is paced alike: the same API call comes right before it (in the other
modes it sets the lab's restricted credential again, which leaves the measured key's verdicts
alone), because in this lab a request after an idle gap costs more than one right after another
(wake-ups): without it, "first" would be charged for the pause its API call makes. The modes
alternate within each round so drift hits all of them. shortpathd's counters prove
what happened (auth_punt / auth_hit of the workers, "ok" of the control thread) and the exit
status is 1 if a sample went another way than its mode says, or a request failed. Prints
p50/p90/p99/mean per mode, the latency verification adds to a first request (first - hit), and
the control thread's own verification time (GET /v1/auth).
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import time

from labbench import (ENV_JSON, api, get_signer, load_env, restore, set_auth, summary, tcp_events,
                      test_object)

MODES = ("first", "hit", "none", "every")
AUTH_OF = {"first": "first", "hit": "first", "none": "none", "every": "every-request",
           "ordinary": "service"}


def client(a):
    """Inside the VM namespace: one signed GET per line "GET" on stdin, a JSON line each."""
    import http.client

    host, path, sign = get_signer(load_env(a.env), a.bucket, a.key)
    for line in sys.stdin:
        if line.strip() != "GET":
            break
        headers = sign()
        t0 = time.perf_counter()
        conn = http.client.HTTPConnection(host, timeout=10)
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        body = r.read()
        dt = time.perf_counter() - t0
        conn.close()
        ok = r.status == 200 and hashlib.sha256(body).hexdigest() == a.sha256
        print(json.dumps({"us": dt * 1e6, "ok": ok, "status": r.status}), flush=True)


def counters():
    """(workers' TCP events summed, the control thread's GET /v1/auth)."""
    return tcp_events(), api("GET", "/v1/auth")


def ctl(doc, *names):
    """A control-side counter (nested names: ctl(doc, "verify_ns", "sum")); 0 if absent."""
    for n in names:
        doc = doc.get(n, 0) if isinstance(doc, dict) else 0
    return doc if isinstance(doc, (int, float)) else 0


class Client:
    """The measuring client in the VM namespace, kept running across samples."""

    def __init__(self, a, env, bucket, key, sha):
        self.p = subprocess.Popen(
            ["ip", "netns", "exec", a.vm, sys.executable, os.path.abspath(__file__), "--client",
             "--env", a.env, "--bucket", bucket, "--key", key, "--sha256", sha],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def get(self):
        self.p.stdin.write("GET\n")
        self.p.stdin.flush()
        line = self.p.stdout.readline()
        if not line:
            sys.exit(f"the client in the VM died (exit {self.p.wait()})")
        r = json.loads(line)
        if not r["ok"]:
            sys.exit(f"a GET failed: status {r['status']} or a wrong body")
        return r["us"]

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=10)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--requests", type=int, default=200, help="GETs per mode and round")
    p.add_argument("--rounds", type=int, default=3, help="alternations of the modes")
    p.add_argument("--size", type=int, default=1024, help="object size in bytes")
    p.add_argument("--vm", default="sp-vm1", help="VM namespace of the client")
    p.add_argument("--ordinary", action="store_true",
                   help="also measure auth service (the ordinary path) for reference")
    p.add_argument("--json", action="store_true", help="only the JSON summary")
    p.add_argument("--client", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--env", default=ENV_JSON, help=argparse.SUPPRESS)
    p.add_argument("--bucket", help=argparse.SUPPRESS)
    p.add_argument("--key", help=argparse.SUPPRESS)
    p.add_argument("--sha256", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.client:
        return client(a)

    env = load_env(a.env)
    ak, sk = env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
    svc = api("GET", "/v1/services/s3")
    cred = f"/v1/services/s3/credentials/{ak}"
    api("GET", cred)  # the lab's credential must be registered (lab.sh up does it)
    # the pacing call of the other modes: the restricted credential set again (lab.sh up
    # registers it); should it share the measured key's generation counter, "hit" would be
    # verified and the counters below say so
    pace = f"/v1/services/s3/credentials/{env['RESTRICTED_ACCESS_KEY_ID']}"
    pace_body = {"secret": env["RESTRICTED_SECRET_ACCESS_KEY"]}
    api("GET", pace)
    modes = MODES + (("ordinary",) if a.ordinary else ())
    lat = {m: [] for m in modes}
    seen = {m: {"punt": 0, "hit": 0, "verified": 0, "verifications": 0, "bind_node": 0,
                "verify_ns": 0}
            for m in modes}
    with test_object(env, "authlat", a.size) as (bucket, key, sha):
        c = Client(a, env, bucket, key, sha)
        try:
            for _ in range(a.rounds):
                for mode in modes:
                    set_auth(AUTH_OF[mode])
                    if mode == "hit":
                        c.get()  # earns the verdict; not a sample
                    t0, a0 = counters()
                    for _ in range(a.requests):
                        if mode == "first":  # no verdict left for this key: verified again
                            api("PUT", cred, {"secret": sk})
                        else:  # the same work, another key
                            api("PUT", pace, pace_body)
                        lat[mode].append(c.get())
                    t1, a1 = counters()
                    s = seen[mode]
                    s["punt"] += t1.get("auth_punt", 0) - t0.get("auth_punt", 0)
                    s["hit"] += t1.get("auth_hit", 0) - t0.get("auth_hit", 0)
                    s["bind_node"] += t1.get("bind_node", 0) - t0.get("bind_node", 0)
                    s["verified"] += ctl(a1, "ok") - ctl(a0, "ok")
                    s["verifications"] += ctl(a1, "verify", "count") - ctl(a0, "verify", "count")
                    s["verify_ns"] += ctl(a1, "verify", "sum_ns") - ctl(a0, "verify", "sum_ns")
        finally:
            c.close()
            restore(svc)
            api("PUT", cred, {"secret": sk})

    n = a.requests * a.rounds
    result = {"size": a.size, "samples_per_mode": n, "vm": a.vm, "counters": seen}
    for mode in modes:
        v = lat[mode]
        result[mode] = summary(v)
        if seen[mode]["verifications"]:
            result[mode]["ctl_verify_mean_us"] = round(
                seen[mode]["verify_ns"] / seen[mode]["verifications"] / 1000, 1)
    result["first_minus_hit_p50_us"] = result["first"]["p50_us"] - result["hit"]["p50_us"]
    result["hit_minus_none_p50_us"] = result["hit"]["p50_us"] - result["none"]["p50_us"]
    # each mode went the way it says: verified (punted) or on a verdict, and direct
    want = {"first": (n, 0, n), "hit": (0, n, 0), "none": (0, 0, 0), "every": (n, 0, n)}
    wrong = [m for m, (punt, hit, ver) in want.items()
             if (seen[m]["punt"], seen[m]["hit"], seen[m]["verified"]) != (punt, hit, ver)
             or seen[m]["bind_node"] != n]
    if a.ordinary and (seen["ordinary"]["punt"] or seen["ordinary"]["bind_node"]):
        wrong.append("ordinary")
    result["wrong_way"] = wrong
    if not a.json:
        print(f"GET of a {a.size} B object from {a.vm}, new connection each, {n} samples per "
              f"mode ({a.rounds} alternating rounds)")
        print(f"{'mode':9} {'p50 us':>8} {'p90 us':>8} {'p99 us':>8} {'mean us':>8}  "
              "punted  hits  verified  control verify mean")
        for mode in modes:
            s, k = result[mode], seen[mode]
            cv = f"{s['ctl_verify_mean_us']} us" if "ctl_verify_mean_us" in s else "-"
            print(f"{mode:9} {s['p50_us']:8} {s['p90_us']:8} {s['p99_us']:8} {s['mean_us']:8}  "
                  f"{k['punt']:6} {k['hit']:5} {k['verified']:9}  {cv}")
        print(f"added to a first request by the verification (p50 first - hit): "
              f"{result['first_minus_hit_p50_us']} us; a verdict hit vs auth none (p50): "
              f"{result['hit_minus_none_p50_us']:+} us")
        if wrong:
            print(f"WRONG WAY: {', '.join(wrong)} (counters above)")
    print(json.dumps(result))
    sys.exit(1 if wrong else 0)


if __name__ == "__main__":
    main()
