"""Namespace lab smoke tests: run-default.sh --once end to end, and shortpathd on the lab's veths (learning, downloads, isolation, counters)."""
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

import sphelpers as sp

LABNET = os.path.join(sp.ROOT, "tools", "lab", "labnet.sh")
RUN_DEFAULT = os.path.join(sp.ROOT, "tools", "lab", "run-default.sh")
PY = "/usr/bin/python3"

VM1_MAC, VM2_MAC = "02:77:00:00:00:11", "02:77:00:00:00:12"
VM_IP = {"sp-vm1": "10.77.0.11", "sp-vm2": "10.77.0.12"}
FABRIC_IP = "10.77.0.1"
FILE_BYTES = 20 * 1024 * 1024

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="needs root: network namespaces and af_packet")


def sh(*args, timeout=60, check=True):
    """Run a command; returns CompletedProcess (text). check: assert exit 0 with its output."""
    r = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check:
        assert r.returncode == 0, f"{' '.join(args)}: exit {r.returncode}\n{r.stdout}{r.stderr}"
    return r


def netns(ns, *args, **kw):
    return sh("ip", "netns", "exec", ns, *args, **kw)


def ping(ns, target, count=3, check=True):
    """count pings, 1 s wait for each reply; check: assert all answered."""
    r = netns(ns, "ping", "-n", "-c", str(count), "-i", "0.2", "-W", "1", target,
              timeout=30, check=False)
    if check:
        assert r.returncode == 0 and " 0% packet loss" in r.stdout, \
            f"ping {ns} -> {target} failed:\n{r.stdout}{r.stderr}"
    return r


# --- (a) the README's run command ---------------------------------------------------------

def test_run_default_once():
    """tools/lab/run-default.sh --once: lab.sh up (build, network, service, Redis, shortpathd),
    every check passes (ping, HTTP, S3 through shortpathd on the direct path, a listing the
    ordinary way, local authentication), lab.sh down."""
    proc = subprocess.Popen([RUN_DEFAULT, "--once"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=sp.ROOT)
    try:
        out, _ = proc.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # its trap stops shortpathd, redis and the lab
        out, _ = proc.communicate(timeout=120)
        pytest.fail("run-default.sh --once took more than 600 s:\n" + out)
    assert proc.returncode == 0, f"run-default.sh --once exited {proc.returncode}:\n{out}"
    for vm in ("sp-vm1", "sp-vm2"):
        assert re.search(rf"OK +{vm} -> {FABRIC_IP}: 3 packets transmitted, 3 received, "
                         r"0% packet loss", out), f"no clean ping from {vm}:\n{out}"
        assert re.search(rf"OK +sp-fabric -> {VM_IP[vm]}: .* 0% packet loss", out), out
        assert re.search(rf"OK +{vm} downloaded {FILE_BYTES} bytes .*: sha256 OK", out), \
            f"no verified download for {vm}:\n{out}"
    assert re.search(r"OK +sp-vm2: get-object 20 MiB in \d+ s: sha256 OK", out), out
    assert "went direct to the storage node; LB and front ends saw neither" in out, out
    assert "list-objects-v2 went the ordinary way" in out, out
    # local authentication (auth first): verified once per VM, then verdicts; a wrong secret
    # refused by shortpathd, never seen by the service
    assert re.search(r"OK +sp-vm1's first request as \S+ was verified in the control thread", out)
    assert re.search(r"OK +its next 2 requests rode the verdict", out), out
    assert re.search(r"OK +sp-vm2's first request was verified too", out), out
    assert re.search(r"OK +a wrong secret from sp-vm2: SignatureDoesNotMatch from shortpathd", out)
    assert "FAIL" not in out, out
    assert "shortpathd stopped on SIGTERM, exit 0" in out, out
    assert "packet pool: 0 of " in out, out
    assert re.search(r"run-default: all \d+ checks passed", out), out
    # Everything it started is gone.
    assert not any(n.startswith(("sp-vm1", "sp-vm2", "sp-fabric"))
                   for n in sh("ip", "netns", "list").stdout.split()), "lab left behind"
    assert sh("ip", "link", "show", "dev", "sp-up", check=False).returncode != 0


# --- (b) shortpathd on the lab, driven by this test ----------------------------------------

@pytest.fixture
def lab():
    """The namespaces and veths of tools/lab/labnet.sh (always removed afterwards)."""
    sh(LABNET, "down")
    try:
        sh(LABNET, "up")
        sh(LABNET, "status")
        yield
    finally:
        sh(LABNET, "down", check=False)


def lab_config(prefix, api_port):
    ports = "".join(f"""
[port.{name}]
device = net_af_packet{i},iface={iface},qpairs=1,blocksz=4096,framesz=2048,framecnt=512
role = {role}
{extra}
""" for i, (name, iface, role, extra) in enumerate([
        ("vm1", "sp-vm1", "vm", f"mac = {VM1_MAC}"),
        ("vm2", "sp-vm2", "vm", "# no mac: learned"),
        ("uplink", "sp-up", "uplink", ""),
    ]))
    # Redis is absent on purpose: forwarding does not depend on it.
    return sp.base_config(prefix, api_port, f"unix:/nonexistent/{prefix}-redis.sock") + ports


@pytest.fixture
def daemon(lab):
    prefix = f"sptest-lab-{os.getpid()}"
    api_port = sp.free_tcp_port()
    d = sp.Daemon(lab_config(prefix, api_port), name="lab")
    d.prefix, d.api_port = prefix, api_port
    try:
        d.start(ready_prefix=prefix, api_port=api_port, timeout=60)
        yield d
    finally:
        if d.proc is not None:
            d.stop()
        # EAL leaves its runtime files (~6 MB of fbarrays in /run) behind after a clean exit.
        shutil.rmtree(os.path.join(sp.RUNTIME, prefix), ignore_errors=True)


@pytest.fixture
def web(lab):
    """python3 -m http.server in sp-fabric serving a 20 MiB random file; yields its sha256."""
    www = tempfile.mkdtemp(prefix="sptest-lab-www-")
    data = os.urandom(FILE_BYTES)
    with open(os.path.join(www, "blob.bin"), "wb") as f:
        f.write(data)
    proc = subprocess.Popen(["ip", "netns", "exec", "sp-fabric", PY, "-m", "http.server", "8080",
                             "--bind", FABRIC_IP, "--directory", www],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sp.wait_for(lambda: proc.poll() is None and netns(
            "sp-fabric", "curl", "-s", "-m", "2", "-o", "/dev/null", f"http://{FABRIC_IP}:8080/",
            check=False, timeout=10).returncode == 0, 20, interval=0.2, what="http.server")
        yield hashlib.sha256(data).hexdigest()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        os.unlink(os.path.join(www, "blob.bin"))
        os.rmdir(www)


def download(ns, want_sha):
    """curl the blob from inside ns to a temp file; asserts it is byte-exact (sha256). Seconds."""
    fd, path = tempfile.mkstemp(prefix=f"sptest-lab-{ns}-")
    os.close(fd)
    try:
        r = netns(ns, "curl", "-sS", "--max-time", "120", "-o", path, "-w",
                  "%{http_code} %{size_download} %{time_total}",
                  f"http://{FABRIC_IP}:8080/blob.bin", timeout=150, check=False)
        assert r.returncode == 0, f"curl from {ns} failed: {r.stdout}{r.stderr}"
        code, size, secs = r.stdout.split()
        assert code == "200" and int(size) == FILE_BYTES, r.stdout
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        assert h.hexdigest() == want_sha, f"{ns}: downloaded bytes differ (sha256)"
        return float(secs)
    finally:
        os.unlink(path)


class Capture:
    """tcpdump on eth0 inside a namespace with a filter; stop() returns the frames that matched.

    The count is tcpdump's "packets received by filter" (the kernel's count of frames that
    passed the filter, including any the capture buffer could not keep), not "captured":
    on a busy 2-core host tcpdump itself may fall behind a 20 MiB burst."""

    def __init__(self, ns, bpf):
        self.err = tempfile.NamedTemporaryFile(prefix="sptest-lab-tcpdump-", mode="w+")
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, "tcpdump", "-i", "eth0", "-nn",
                                      "-w", "/dev/null", bpf],
                                     stdout=subprocess.DEVNULL, stderr=self.err)
        sp.wait_for(lambda: self._read().find("listening on") >= 0 or self.proc.poll() is not None,
                    20, what=f"tcpdump in {ns}")
        assert self.proc.poll() is None, f"tcpdump in {ns} exited: {self._read()}"

    def _read(self):
        self.err.seek(0)
        return self.err.read()

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(20)
        text = self._read()
        self.err.close()
        m = re.search(r"(\d+) packets? received by filter", text)
        assert m, f"no tcpdump summary: {text}"
        return int(m.group(1))


def ports(d):
    return sp.telemetry(d.prefix, "/shortpath/ports")


def stats(d):
    return sp.telemetry(d.prefix, "/shortpath/stats")


def api_stats(d):
    status, _, body = sp.http_get(d.api_port, "/v1/stats")
    assert status == 200, body
    return json.loads(body)


def quiet_counters(d):
    """(ports, stats) once two reads 0.3 s apart agree: nothing in flight."""
    def stable():
        a = (ports(d), stats(d))
        time.sleep(0.3)
        b = (ports(d), stats(d))
        key = lambda x: ({n: (p["rx_packets"], p["tx_packets"]) for n, p in x[0].items()},
                         x[1]["rx_packets"], x[1]["tx_packets"])
        return b if key(a) == key(b) else None
    return sp.wait_for(stable, 20, interval=0.1, what="quiet counters")


def delta(after, before, port, key):
    return after[port][key] - before[port][key]


def test_lab_learning_forwarding_isolation(daemon, web):
    d = daemon

    # 0. Forwarding without Redis: the API answers 200, "degraded" (Redis unreachable).
    status, _, body = sp.http_get(d.api_port, "/v1/health")
    health = json.loads(body)
    assert status == 200 and health["forwarding"] is True, body

    # 1. Only vm1's configured MAC is known; vm2 has not sent anything yet (the lab is IPv4
    #    only, so the namespaces do not chatter).
    s = api_stats(d)
    assert s["mac_table"]["entries"] == 1 and s["mac_table"]["events"]["learned"] == 0, \
        s["mac_table"]
    assert ports(d)["vm1"]["vm_mac"] == VM1_MAC

    # 2. Before learning, unicast from the fabric to vm2's MAC has nowhere to go: dropped as
    #    unknown_dst (the fabric is given vm2's MAC statically, so no ARP broadcast helps).
    unknown0 = stats(d)["drop_unknown_dst"]
    netns("sp-fabric", "ip", "neigh", "replace", VM_IP["sp-vm2"], "lladdr", VM2_MAC, "dev",
          "eth0", "nud", "permanent")
    r = ping("sp-fabric", VM_IP["sp-vm2"], count=2, check=False)
    netns("sp-fabric", "ip", "neigh", "del", VM_IP["sp-vm2"], "dev", "eth0")
    assert r.returncode != 0, "vm2 answered before shortpathd knew its MAC:\n" + r.stdout
    assert stats(d)["drop_unknown_dst"] >= unknown0 + 2

    # 3. Ping both ways: vm2's first frames teach shortpathd its MAC.
    for vm in ("sp-vm1", "sp-vm2"):
        ping(vm, FABRIC_IP)
    for vm in ("sp-vm1", "sp-vm2"):
        ping("sp-fabric", VM_IP[vm])
    s = api_stats(d)
    assert s["mac_table"]["events"]["learned"] >= 1, s["mac_table"]
    assert s["mac_table"]["entries"] == 2, s["mac_table"]
    assert s["mac_table"]["events"]["conflict"] == 0, s["mac_table"]

    # 4. vm1 downloads 20 MiB byte-exact; the frames go to vm1's port and not to vm2's.
    p0, _ = quiet_counters(d)
    t1 = download("sp-vm1", web)
    p1, s1 = quiet_counters(d)
    assert delta(p1, p0, "vm1", "tx_bytes") >= FILE_BYTES
    assert delta(p1, p0, "uplink", "rx_bytes") >= FILE_BYTES
    assert delta(p1, p0, "vm2", "tx_packets") <= 20, (p0, p1)

    # 5. vm2 downloads 20 MiB byte-exact while tcpdump watches eth0 in both VM namespaces
    #    for frames addressed to vm2: vm1 must see none of them, vm2 all of them.
    bpf = f"ether dst {VM2_MAC}"
    cap1, cap2 = Capture("sp-vm1", bpf), Capture("sp-vm2", bpf)
    try:
        t2 = download("sp-vm2", web)
        time.sleep(0.3)
    finally:
        seen_by_vm1, seen_by_vm2 = cap1.stop(), cap2.stop()
    p2, s2 = quiet_counters(d)
    min_frames = FILE_BYTES // 1500
    assert seen_by_vm2 >= min_frames, f"vm2 saw only {seen_by_vm2} frames to its MAC"
    assert seen_by_vm1 == 0, f"vm1 received {seen_by_vm1} frames addressed to vm2"
    assert delta(p2, p1, "vm2", "tx_bytes") >= FILE_BYTES
    assert delta(p2, p1, "vm2", "tx_packets") >= min_frames
    assert delta(p2, p1, "vm1", "tx_packets") <= 20, (p1, p2)

    # 6. Counters agree with each other: ports vs worker totals, VM rx vs uplink tx, and
    #    uplink rx vs VM tx (each uplink multicast frame goes to both VMs).
    assert sum(p["rx_packets"] for p in p2.values()) == s2["rx_packets"], (p2, s2)
    assert sum(p["tx_packets"] for p in p2.values()) == s2["tx_packets"], (p2, s2)
    assert s2["drop_runt"] == s2["drop_bad_src_mac"] == s2["drop_tx_full"] == 0, s2
    assert p2["uplink"]["tx_packets"] == p2["vm1"]["rx_packets"] + p2["vm2"]["rx_packets"], p2
    floods = (p2["vm1"]["tx_packets"] + p2["vm2"]["tx_packets"]
              + s2["drop_unknown_dst"] - p2["uplink"]["rx_packets"])
    assert 0 <= floods <= s2["class_multicast"], (floods, p2, s2)
    # /metrics says the same as telemetry.
    _, _, metrics = sp.http_get(d.api_port, "/metrics")
    m = re.search(r'^sp_port_tx_packets_total\{port="vm2",role="vm"\} (\d+)$', metrics, re.M)
    assert m and int(m.group(1)) == p2["vm2"]["tx_packets"], metrics[:2000]

    # 7. Orderly stop: SIGTERM, exit 0, every mbuf back in the pool.
    rc, log = d.stop()
    assert rc == 0, log
    assert sp.pool_in_use_after_close(log) == 0, log
    assert "learned MAC " + VM2_MAC in log, log
    print(f"downloads: vm1 {t1:.2f} s, vm2 {t2:.2f} s; vm2 frames seen by vm1 {seen_by_vm1}, "
          f"by vm2 {seen_by_vm2}")
