"""The lab on the direct path with auth none: awscli, s3cmd and boto3 in the VM namespaces put and get objects through shortpathd straight to the storage nodes (access logs prove it), listings go the ordinary way, and a missing storage manager or node never makes a request fail (local authentication: test_lab_auth.py)."""
import hashlib
import json
import os
import re
import subprocess
import time
import urllib.request

import pytest

import sphelpers as sp
from test_lab_service import ENV_JSON, RUN, SVC, lab, logs

API = "http://127.0.0.1:9180"
MiB = 1 << 20
SIZES = [0, 1, MiB, 100 * MiB]
pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root: network namespaces and af_packet")


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    lab("down")
    r = lab("up")
    try:
        assert r.returncode == 0, f"lab.sh up failed:\n{r.stdout}{r.stderr}"
        assert "service s3 (10.79.0.10:80): direct path" in r.stdout, r.stdout
        # auth none: every enhanced request goes direct (with auth first, a PUT whose signed
        # body shortpathd cannot hold, Expect: 100-continue or larger than a flow buffer, takes
        # the ordinary path unless its VM holds a verdict: test_lab_auth.py)
        s = api("/v1/services/s3", "PATCH", {"auth": "none", "cache": {"policy": "none"}})
        assert s["auth"] == "none" and s["path"] == "direct", s
        # and no cache: every GET here must reach a storage node (test_lab_cache.py: the cache)
        with open(ENV_JSON) as f:
            env = json.load(f)
        work = tmp_path_factory.mktemp("direct")
        files = {}
        for n in SIZES:
            p = work / f"in-{n}"
            p.write_bytes(os.urandom(n))
            files[n] = str(p)
        env["work"], env["files"] = str(work), files
        env["bucket"] = f"direct-{int(time.time())}"
        client(env, "awscli", "sp-vm1", "mb")
        yield env
    finally:
        r = lab("down")
        assert "exit 0; packet pool: 0 of" in r.stdout, r.stdout + r.stderr


def api(path, method="GET", body=None):
    req = urllib.request.Request(API + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"{}")


def tcp():
    return api("/v1/stats")["total"]["tcp_events"]


BOTO3 = r"""
import sys, boto3, botocore.config
op, bucket, key, path, ak, sk, ep = sys.argv[1:8]
s3 = boto3.client("s3", endpoint_url=ep, aws_access_key_id=ak, aws_secret_access_key=sk,
                  region_name="us-east-1",
                  config=botocore.config.Config(s3={"addressing_style": "path"},
                                                retries={"max_attempts": 1}))
if op == "put":
    with open(path, "rb") as f:
        print(s3.put_object(Bucket=bucket, Key=key, Body=f)["ETag"])
elif op == "get":
    with open(path, "wb") as f:
        for c in s3.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(1 << 20):
            f.write(c)
elif op == "list":
    print([o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])])
"""


def client(env, name, vm, op, key=None, path=None, timeout=300):
    """One operation by a real client in a VM namespace (never hangs: a timeout fails it)."""
    b, ep = env["bucket"], env["SVC_ENDPOINT"]
    base = ["ip", "netns", "exec", vm, "env", "-i", "PATH=/usr/bin:/bin", f"HOME={env['work']}",
            "AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_EC2_METADATA_DISABLED=true",
            f"AWS_CONFIG_FILE={env['AWS_CONFIG_FILE']}", f"AWS_ACCESS_KEY_ID={env['AWS_ACCESS_KEY_ID']}",
            f"AWS_SECRET_ACCESS_KEY={env['AWS_SECRET_ACCESS_KEY']}", "AWS_DEFAULT_REGION=us-east-1",
            "AWS_MAX_ATTEMPTS=1"]
    if name == "awscli":
        aws = base + ["/usr/bin/aws", "--endpoint-url", ep, "s3api"]
        cmd = {"mb": aws + ["create-bucket", "--bucket", b],
               "put": aws + ["put-object", "--bucket", b, "--key", key or "", "--body", path or ""],
               "get": aws + ["get-object", "--bucket", b, "--key", key or "", path or ""],
               "list": aws + ["list-objects-v2", "--bucket", b],
               "buckets": aws + ["list-buckets"]}[op]
    elif name == "s3cmd":
        s3 = base + ["s3cmd", "-c", os.path.join(SVC, "s3cfg"), "--no-progress"]
        cmd = {"put": s3 + ["put", "--disable-multipart", path or "", f"s3://{b}/{key}"],
               "get": s3 + ["get", "--force", f"s3://{b}/{key}", path or ""],
               "list": s3 + ["ls", f"s3://{b}/"]}[op]
    else:
        cmd = base + ["/usr/bin/python3", "-c", BOTO3, op, b, key or "", path or "",
                      env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], ep]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{name} {op} {key}: {r.stdout}{r.stderr}"
    return r.stdout


def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while c := f.read(1 << 20):
            h.update(c)
    return h.hexdigest()


def direct_lines(text, method, bucket, key):
    """Node access log lines of a direct (node-manager) request for bucket/key."""
    return [ln for ln in text.splitlines()
            if f'"{method} /objects/{bucket}/{key} ' in ln and " key_id=nodemgr " in ln]


# (client, VM that puts, VM that gets): every client puts from one VM and gets from the other
CLIENTS = [("boto3", "sp-vm1", "sp-vm2"), ("awscli", "sp-vm2", "sp-vm1"),
           ("s3cmd", "sp-vm1", "sp-vm2")]


@pytest.mark.parametrize("name,put_vm,get_vm", CLIENTS, ids=[c[0] for c in CLIENTS])
def test_clients_put_and_get_direct(up, name, put_vm, get_vm):
    """0 B .. 100 MiB, byte-exact; every PUT and GET reached a storage node directly from the
    VM's address with the node-manager credential, and none of them the LB or a front end."""
    before = tcp()
    keys = []
    for n in SIZES:
        key = f"{name}-{n}"
        keys.append(key)
        client(up, name, put_vm, "put", key, up["files"][n])
        out = os.path.join(up["work"], f"out-{name}-{n}")
        client(up, name, get_vm, "get", key, out)
        assert os.path.getsize(out) == n and sha(out) == sha(up["files"][n]), (name, n)
        os.unlink(out)
    after = tcp()
    assert after["bind_node"] - before["bind_node"] >= 2 * len(SIZES), (before, after)
    text = logs()
    nodes = "".join(v for k, v in text.items() if re.fullmatch(r"node\d\.access\.log", k))
    ordinary = text["lb.access.log"] + text["fe1.log"] + text["fe2.log"]
    for key in keys:
        for method, vm in (("PUT", put_vm), ("GET", get_vm)):
            lines = direct_lines(nodes, method, up["bucket"], key)
            assert lines, (method, key)
            ip = "10.77.0.1" + vm[-1]
            assert any(f" remote={ip}:" in ln for ln in lines), (method, key, lines)
        assert f"/{up['bucket']}/{key}" not in ordinary, key


def test_listings_go_the_ordinary_way(up):
    """ListBuckets and ListObjectsV2 are not enhanced: HAProxy and a front end answer them."""
    before = tcp()
    out = client(up, "awscli", "sp-vm1", "list")
    assert '"Key": "awscli-1"' in out or "awscli-1" in out or "Contents" in out, out
    client(up, "awscli", "sp-vm2", "buckets")
    client(up, "boto3", "sp-vm1", "list")
    after = tcp()
    assert after["vip_listing"] - before["vip_listing"] >= 2, (before, after)
    assert after["vip_not_object"] - before["vip_not_object"] >= 1, (before, after)
    lb = logs()["lb.access.log"]
    assert re.search(rf'method=GET uri="/{up["bucket"]}\?list-type=2[^"]*" status=200', lb), lb
    assert re.search(r'method=GET uri="/" status=200', lb), lb


def test_storage_manager_unreachable_takes_the_ordinary_path(up):
    """shortpathd cannot reach the storage manager (a blackhole route in its namespace back to
    shortpathd's management address): new keys still work, by the ordinary path."""
    subprocess.run(["ip", "-n", "sp-mgr", "route", "add", "blackhole", "10.76.0.1/32"],
                   check=True)
    try:
        before = tcp()
        for i, (name, vm) in enumerate((("boto3", "sp-vm1"), ("awscli", "sp-vm2"))):
            key = f"nomgr-{name}"
            t0 = time.monotonic()
            client(up, name, vm, "put", key, up["files"][MiB], timeout=60)
            out = os.path.join(up["work"], key)
            client(up, name, vm, "get", key, out, timeout=60)
            assert sha(out) == sha(up["files"][MiB])
            assert time.monotonic() - t0 < 30
        after = tcp()
        missed = (after["loc_failed"] + after["loc_timeout"]) - \
            (before["loc_failed"] + before["loc_timeout"])
        assert missed >= 4 and after["vip_no_locator"] - before["vip_no_locator"] >= 4, after
        lb = logs()["lb.access.log"]
        for name in ("boto3", "awscli"):
            assert f'uri="/{up["bucket"]}/nomgr-{name}" status=200' in lb, name
    finally:
        subprocess.run(["ip", "-n", "sp-mgr", "route", "del", "blackhole", "10.76.0.1/32"])


def test_storage_node_down_replica_then_ordinary(up):
    """The first replica's nginx is stopped: the GET goes to the next replica (RST to the SYN,
    counted), byte-exact; with every replica down the service answers (503 from the service's
    own retry, never a hang)."""
    key = "replica-1m"
    client(up, "boto3", "sp-vm1", "put", key, up["files"][MiB])
    with urllib.request.urlopen(f"http://10.78.0.30:8000/locate?bucket={up['bucket']}&key={key}",
                                timeout=5) as r:
        loc = json.loads(r.read())
    first = loc["node_names"][0]
    pidfile = os.path.join(SVC, "run", f"{first}.pid")
    with open(pidfile) as f:
        pid = int(f.read().split()[0])
    before = tcp()
    os.kill(pid, 15)
    sp.wait_for(lambda: subprocess.run(["ip", "netns", "exec", f"sp-{first}", "ss", "-ltn",
                                        "sport = :80"], capture_output=True,
                                       text=True).stdout.count("LISTEN") == 0,
                10, what=f"{first} stopped")
    try:
        out = os.path.join(up["work"], key)
        client(up, "boto3", "sp-vm2", "get", key, out, timeout=60)
        assert sha(out) == sha(up["files"][MiB])
        after = tcp()
        assert after["be_refused"] - before["be_refused"] >= 1, after
        assert after["replica_retry"] - before["replica_retry"] >= 1, after
        second = loc["node_names"][1]
        assert direct_lines(logs()[f"{second}.access.log"], "GET", up["bucket"], key)
    finally:
        r = subprocess.run([os.path.join(sp.ROOT, "tools", "lab", "service", "svcctl.py"), "up",
                            "--base", SVC, "--layout", "netns"], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr


def test_flows_drain_and_telemetry(up):
    """After the clients are done every flow ends; /shortpath/flows and the counters agree."""
    def live():
        return sp.telemetry("shortpath-lab", "/shortpath/flows")["live"]
    sp.wait_for(lambda: live() == 0, 15, what="no live flow")
    t = tcp()
    assert t["cookie_ok"] == t["flow_freed"], t
    assert t["bind_node"] + t["bind_vip"] >= t["requests"] - t["vip_early_close"], t
