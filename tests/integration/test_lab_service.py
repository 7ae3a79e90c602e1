"""The whole lab (tools/lab/lab.sh): real S3 clients in the VM namespaces reach the object service through shortpathd, every tier logs the request, and the lab comes down clean."""
import json
import os
import re
import subprocess

import pytest

import sphelpers as sp

LAB = os.path.join(sp.ROOT, "tools", "lab", "lab.sh")
S3ROUND = os.path.join(sp.ROOT, "tools", "lab", "s3round.py")
RUN = "/run/shortpath-lab"
SVC = os.path.join(RUN, "svc")
ENV_JSON = os.path.join(SVC, "env.json")
API_PORT = 9180  # configs/lab.conf
MiB = 1 << 20
LAB_NS = re.compile(r"^sp-(vm\d+|fabric|lb|fe\d+|mgr|sdb|node\d+)$")
pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root: network namespaces and af_packet")


def lab(*args, timeout=600):
    return subprocess.run([LAB, *args], capture_output=True, text=True, timeout=timeout,
                          cwd=sp.ROOT)


def lab_namespaces():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return sorted(n for n in (ln.split()[0] for ln in out.splitlines() if ln.strip())
                  if LAB_NS.match(n))


def lab_pids():
    """Every process of the lab: the pid files of lab.sh and svcctl, all in the lab namespaces."""
    pids = set()
    for d in (RUN, os.path.join(SVC, "run")):
        for fn in os.listdir(d) if os.path.isdir(d) else []:
            if fn.endswith(".pid"):
                with open(os.path.join(d, fn)) as f:
                    pids.add(int(f.read().split()[0]))
    for ns in lab_namespaces():
        out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
        pids.update(int(p) for p in out.split())
    return pids


def running(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_failed_up_takes_down_what_it_started():
    """shortpathd cannot start (its API address is taken): `up` fails naming why and leaves no
    namespace, service process or shortpathd behind."""
    lab("down")
    squatter = subprocess.Popen(["/usr/bin/python3", "-m", "http.server", str(API_PORT), "--bind",
                                 "127.0.0.1"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    try:
        sp.wait_for(lambda: sp.http_get(API_PORT, "/")[0] == 200, 10, interval=0.1,
                    what="a web server on the API port")
        r = lab("up")
        assert r.returncode != 0, r.stdout + r.stderr
        assert "something already answers on 127.0.0.1:9180" in r.stderr, r.stderr
        assert "up failed: taking down what it started" in r.stderr, r.stderr
        assert lab_namespaces() == []
        assert not os.path.exists(os.path.join(SVC, "run")) or \
            os.listdir(os.path.join(SVC, "run")) == []
    finally:
        squatter.kill()
        squatter.wait()


@pytest.fixture(scope="module")
def up():
    """The lab, brought up once for this module; `down` is also this module's last test."""
    lab("down")
    # the ordinary path: the service authenticates every request (the error rounds need it);
    # the direct path is tests/integration/test_lab_direct.py
    r = lab("up", "--ordinary")
    try:
        assert r.returncode == 0, f"lab.sh up failed:\n{r.stdout}{r.stderr}"
        assert "service s3 (10.79.0.10:80): ordinary path" in r.stdout, r.stdout
        with open(ENV_JSON) as f:
            yield json.load(f)
    finally:
        lab("down")


def port_bytes():
    """{port: (rx_bytes, tx_bytes)} from shortpathd's /v1/stats."""
    status, _, body = sp.http_get(API_PORT, "/v1/stats")
    assert status == 200
    return {n: (p["rx_bytes"], p["tx_bytes"]) for n, p in json.loads(body)["ports"].items()}


def logs():
    out = {}
    for fn in os.listdir(os.path.join(SVC, "logs")):
        if fn.endswith(".log"):
            with open(os.path.join(SVC, "logs", fn), errors="replace") as f:
                out[fn] = f.read()
    return out


def tiers_of(rid):
    """The access logs (lb, fe<i>, manager, node<i>) with a line for request id rid."""
    return sorted(fn for fn, text in logs().items() if f" req={rid} " in text)


def test_lab_up_status_and_idempotent_up(up):
    assert up["SVC_ENDPOINT"] == "http://10.79.0.10" and up["SVC_LAYOUT"] == "netns"
    r = lab("status")
    assert r.returncode == 0 and "the lab is up" in r.stdout, r.stdout + r.stderr
    assert set(lab_namespaces()) >= {"sp-vm1", "sp-vm2", "sp-fabric", "sp-lb", "sp-fe1",
                                     "sp-fe2", "sp-mgr", "sp-sdb", "sp-node1", "sp-node2",
                                     "sp-node3"}
    r = lab("up", "--ordinary")
    assert r.returncode == 0 and "shortpathd already runs" in r.stdout, r.stdout + r.stderr
    assert "svcctl: already up" in r.stdout
    # the VMs' only way out is their default route through shortpathd; the host's management
    # path reaches the service hosts but not the VMs
    for vm in ("sp-vm1", "sp-vm2"):
        routes = subprocess.run(["ip", "-n", vm, "-4", "route"], capture_output=True,
                                text=True).stdout
        assert routes.splitlines()[0].strip() == "default via 10.77.0.1 dev eth0", routes
    host = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    assert "10.78.0.0/24 via 10.76.0.2 dev sp-mgmt" in host and "10.77.0." not in host


# Which VM runs which client: both VMs are exercised, each client once.
ROUNDS = [("boto3", "sp-vm1"), ("awscli", "sp-vm2"), ("s3cmd", "sp-vm1"), ("curl", "sp-vm2")]


@pytest.mark.parametrize("client,vm", ROUNDS, ids=[c for c, _ in ROUNDS])
def test_client_round_through_shortpathd(up, client, vm):
    """A full round (bucket, put/get 0 B .. 100 MiB by checksum, range, conditional, head, list,
    delete, every error case) by a real client in a VM namespace; the bytes crossed shortpathd's
    VM port, and one GET and one PUT are in every tier's access log."""
    before = port_bytes()
    r = subprocess.run(["ip", "netns", "exec", vm, S3ROUND, "--env", ENV_JSON, "--client", client,
                        "--sizes", "0,1,1MiB,100MiB", "-q"],
                       capture_output=True, text=True, timeout=600)
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert r.returncode == 0 and summary["failed"] == 0, r.stdout + r.stderr
    mine = summary["clients"][client]
    assert mine["passed"] >= 20 and mine["failed"] == 0, mine
    after = port_bytes()
    port = "vm" + vm[-1]
    # 100 MiB went up (VM -> uplink) and came back down (uplink -> VM) through this VM's port
    assert after[port][0] - before[port][0] > 100 * MiB, (before, after)
    assert after[port][1] - before[port][1] > 100 * MiB, (before, after)
    assert after["uplink"][0] - before["uplink"][0] > 100 * MiB
    # the ordinary path: LB -> front end -> storage manager -> storage node
    for op in ("get", "put"):
        rid = mine["request_ids"][op]
        found = sp.wait_for(lambda: (t := tiers_of(rid)) and len(t) >= 4 and t, 5,
                            what=f"{client} {op} {rid} in every tier's log")
        assert "lb.access.log" in found and "manager.log" in found, found
        assert any(re.fullmatch(r"fe\d\.log", t) for t in found), found
        assert any(re.fullmatch(r"node\d\.access\.log", t) for t in found), found
        lb_line = re.search(rf"^.* req={rid} .*$", logs()["lb.access.log"], re.M).group(0)
        assert re.search(r" client=10\.77\.0\.1\d:\d+ ", lb_line), lb_line  # from the VM


def test_errors_reach_the_service_with_s3_codes(up):
    """The error answers the clients checked came from the front ends (they log the S3 code),
    from the VMs' addresses through HAProxy."""
    fe = logs()["fe1.log"] + logs()["fe2.log"]
    for code in ("SignatureDoesNotMatch", "InvalidAccessKeyId", "RequestTimeTooSkewed",
                 "AccessDenied", "NoSuchKey", "NoSuchBucket", "InvalidRange",
                 "PreconditionFailed"):
        assert f" err={code} " in fe, code
    assert re.search(r" remote=10\.78\.0\.10:\d+ ", fe)  # front ends only hear the LB


def test_lab_down_is_clean(up):
    pids = lab_pids()
    assert len(pids) >= 12  # shortpathd, 2 Redis, HAProxy, 2 front ends, manager, 3 nginx x 2
    r = lab("down")
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"shortpathd stopped on SIGTERM, exit 0; packet pool: 0 of \d+ mbufs",
                     r.stdout), r.stdout
    assert lab_namespaces() == []
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    assert not re.search(r"^\d+: (sp-vm\d|sp-up|sp-mgmt)[@:]", links, re.M), links
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    assert "10.78.0.0" not in routes and "10.79.0.0" not in routes, routes
    assert sp.wait_for(lambda: not [p for p in pids if running(p)], 10, what="no lab process")
    assert not os.path.exists("/var/run/dpdk/shortpath-lab")
    assert sorted(os.listdir(RUN)) == sorted(
        ["svc"] + [f for f in os.listdir(RUN) if f.endswith(".log")])  # logs only
    assert os.listdir(SVC) == ["logs"]
    r = lab("down")
    assert r.returncode == 0 and "lab.sh: down" in r.stdout, r.stdout + r.stderr
    r = lab("status")
    assert r.returncode != 0 and "the lab is down or incomplete" in r.stdout
