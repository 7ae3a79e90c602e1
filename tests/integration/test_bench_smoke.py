"""Benchmark smoke run: tools/bench/fwd_bench.py --seconds 1 --json measures all three programs.

Checks that shortpathd, dpdk-testpmd io and dpdk-testpmd macswap each forwarded traffic and got
positive figures, on the same ports, and that the benchmark cleaned up after itself. It asserts
no speed: speed depends on the machine and on what else runs on it (see the benchmark's output).

tcp_bench --quick (the worker's TCP endpoint, direct-to-storage GETs in process): every transaction
went through byte for byte, the counters add up, nothing leaked, and the run cleaned up after itself.
"""

import json
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNTIME = "/var/run/dpdk"
BENCH = os.path.join(ROOT, "tools", "bench", "fwd_bench.py")
PROGRAMS = ("shortpathd", "testpmd-io", "testpmd-macswap")
TCP_BENCH = os.path.join(os.environ.get("SP_BUILD_DIR", os.path.join(ROOT, "build")),
                         "tools", "bench", "tcp_bench")


@pytest.fixture(scope="module")
def bench():
    r = subprocess.run(["/usr/bin/python3", BENCH, "--seconds", "1", "--json"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, f"exit {r.returncode}\nstderr:\n{r.stderr}\nstdout:\n{r.stdout}"
    try:
        doc = json.loads(r.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"stdout is not one JSON document:\n{r.stdout}\nstderr:\n{r.stderr}")
    return doc


def test_all_three_programs_ran(bench):
    assert bench["ok"] is True
    assert [r["program"] for r in bench["runs"]] == list(PROGRAMS)
    for r in bench["runs"]:
        assert r["ok"], r
        assert r["exit_code"] == 0, r
        assert r["seconds"] > 0.5


def test_positive_figures(bench):
    per = bench["summary"]["per_program"]
    assert set(per) == set(PROGRAMS)
    for name in PROGRAMS:
        m = per[name]
        assert m["workers"] == 1, name
        for k in ("rx_pps", "tx_pps", "rx_pps_per_worker", "tx_pps_per_worker",
                  "tx_bits_per_s"):
            assert m[k] > 0, (name, k, m[k])
    ratios = bench["summary"]["ratios"]
    assert set(ratios) == {"shortpathd/testpmd-io", "shortpathd/testpmd-macswap"}
    assert all(v > 0 for v in ratios.values()), ratios


def test_shortpathd_forwards_every_frame(bench):
    """One VM port: every frame in is one frame out (broadcasts flood to that one port)."""
    sp = next(r for r in bench["runs"] if r["program"] == "shortpathd")
    assert sp["drops"] == 0, sp["drops_by_reason"]
    assert abs(sp["tx_packets"] - sp["rx_packets"]) <= max(1024, sp["rx_packets"] // 100), sp
    assert sp["busy_cycles_per_packet"] > 0
    assert sp["tsc_hz_measured"] > 1e8
    assert sp["mbufs_in_use_after_close"] == 0
    # each direction carries traffic
    for port, r in sp["ports"].items():
        assert r["rx_packets"] > 0 and r["tx_packets"] > 0, (port, r)


def test_same_ports_and_options(bench):
    """The three programs got the same EAL options and the same net_pcap devices."""
    def vdevs(argv):
        return [argv[i + 1] for i, a in enumerate(argv) if a == "--vdev"]

    runs = {r["program"]: r for r in bench["runs"]}
    sp_eal = runs["shortpathd"]["eal_args"]
    want = vdevs(sp_eal)
    assert len(want) == 2 and all("infinite_rx=1" in v for v in want), want
    for name in ("testpmd-io", "testpmd-macswap"):
        argv = runs[name]["command"]["argv"]
        assert vdevs(argv) == want, (name, argv)
        for opt in ("--no-huge", "--no-pci"):
            assert opt in argv and opt in sp_eal
        assert f"--forward-mode={name.split('-')[1]}" in argv
        assert argv[argv.index("-m") + 1] == sp_eal[sp_eal.index("-m") + 1] == "1024"


def test_cleaned_up(bench):
    assert not os.path.exists(bench["tmpdir"])
    for p in bench["file_prefixes"]:
        assert not os.path.exists(os.path.join(RUNTIME, p)), p
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if bench["tmpdir"] in cmd or any(p in cmd for p in bench["file_prefixes"]):
            left.append((pid, cmd))
    assert not left, left


@pytest.fixture(scope="module")
def tcp_bench():
    r = subprocess.run([TCP_BENCH, "--quick"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"exit {r.returncode}\nstderr:\n{r.stderr}\nstdout:\n{r.stdout}"
    last = r.stdout.strip().splitlines()[-1]
    try:
        doc = json.loads(last)
    except json.JSONDecodeError:
        pytest.fail(f"the last line is not JSON:\n{r.stdout}\nstderr:\n{r.stderr}")
    return doc


def test_tcp_bench_transactions(tcp_bench):
    b = tcp_bench
    assert b["ok"] is True and b["failures"] == 0, b
    assert b["transactions"] >= 2000
    assert b["frames_in_per_txn"] == 9 and b["frames_out_per_txn"] == 10, b
    for k in ("txn_per_s", "ns_per_txn", "cycles_per_txn", "cycles_per_frame_in"):
        assert b["endpoint"][k] > 0, (k, b["endpoint"])
    assert b["reference"]["cycles_per_frame"] > 0
    assert b["reference"]["cycles_per_frame_flows_live"] > 0
    assert all(v > 0 for v in b["breakdown_cycles"].values()), b["breakdown_cycles"]
    assert b["checksummed_frames"] > 0


def test_tcp_bench_counters(tcp_bench):
    """Every transaction: one cookie, one flow, a locator hit, bound to the node, closed."""
    c = tcp_bench["counters"]
    n = c["cookie_ok"]
    assert n >= tcp_bench["transactions"]
    for k in ("syn_rx", "synack_tx", "requests", "loc_hit", "bind_node", "be_syn_tx", "closed",
              "flow_freed"):
        assert c[k] == n, (k, c)
    assert c["spliced_vm"] == 2 * n and c["spliced_be"] == 3 * n, c
    assert set(c) == {"syn_rx", "synack_tx", "cookie_ok", "flow_freed", "requests", "loc_hit",
                      "bind_node", "be_syn_tx", "spliced_vm", "spliced_be", "closed",
                      "loc_prefetched"}, c


def test_tcp_bench_nothing_leaked(tcp_bench):
    b = tcp_bench
    assert b["mbufs_leaked"] == 0 and b["mbufs_in_use_end"] == b["mbufs_in_use_start"], b
    assert b["flows_live_after_run"] > 0 and b["flows_live_at_end"] == 0, b
    assert not os.path.exists(os.path.join(RUNTIME, b["file_prefix"]))


def test_tcp_bench_auth_first():
    """--auth-first: the same transactions with the service's auth "first" and a verdict in
    place: each request is parsed for its credentials and trusted on the verdict (auth_hit per
    transaction, nothing punted)."""
    r = subprocess.run([TCP_BENCH, "--quick", "--auth-first"], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, f"exit {r.returncode}\nstderr:\n{r.stderr}\nstdout:\n{r.stdout}"
    b = json.loads(r.stdout.strip().splitlines()[-1])
    assert b["ok"] is True and b["auth"] == "first" and b["mbufs_leaked"] == 0, b
    c = b["counters"]
    assert c["auth_hit"] == c["requests"] == c["bind_node"] == c["cookie_ok"], c
    assert not any(k.startswith("auth_") and k != "auth_hit" for k in c), c


def test_cache_bench_nginx_reference():
    """tools/bench/cache_bench.py --nginx-only: nginx proxy_cache answers wrk's keep-alive GETs of
    the 1 KiB object from its cache (warm-up MISS then HIT, no origin request while wrk ran), and
    the benchmark cleaned up after itself."""
    bench = os.path.join(ROOT, "tools", "bench", "cache_bench.py")
    r = subprocess.run(["/usr/bin/python3", bench, "--duration", "1", "--json", "--nginx-only"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"exit {r.returncode}\nstderr:\n{r.stderr}\nstdout:\n{r.stdout}"
    try:
        doc = json.loads(r.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"stdout is not one JSON document:\n{r.stdout}\nstderr:\n{r.stderr}")
    ng = doc["nginx"]
    assert doc["ok"] is True and doc["object_bytes"] == 1024, doc
    assert ng["keep_alive"]["requests_per_s"] > 0, ng["keep_alive"]
    assert ng["new_connection"]["requests_per_s"] > 0, ng["new_connection"]
    assert ng["warmup"][0] == "MISS" and ng["warmup"][-1] == "HIT", ng["warmup"]
    assert ng["cache_hit"] is True, ng
    for mode in ("keep_alive", "new_connection"):
        assert ng[mode]["origin_requests_during_run"] == 0, ng[mode]
        assert ng[mode]["cache_status_after"] == "HIT", ng[mode]
    assert doc["shortpath"]["available"] is False
    assert not os.path.exists(doc["tmpdir"])
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if doc["tmpdir"] in cmd:
            left.append((pid, cmd))
    assert not left, left


@pytest.mark.parametrize("extra, mode", [([], "keep-alive"), (["--new-conn"], "new-connection")],
                         ids=["keep-alive", "new-conn"])
def test_tcp_bench_cache(extra, mode):
    """tcp_bench --cache [--new-conn] --quick: /bench/obj is in the cache and the worker answers
    every GET itself (keep-alive: GET after GET on each connection; --new-conn: a connection per
    GET); every response was checked byte for byte, each GET is a cache hit, nothing went to the
    uplink (no node SYN, no locator use), nothing leaked, and the run cleaned up after itself."""
    r = subprocess.run([TCP_BENCH, "--cache", "--quick"] + extra, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, f"exit {r.returncode}\nstderr:\n{r.stderr}\nstdout:\n{r.stdout}"
    try:
        b = json.loads(r.stdout.strip().splitlines()[-1])
    except json.JSONDecodeError:
        pytest.fail(f"the last line is not JSON:\n{r.stdout}\nstderr:\n{r.stderr}")
    assert b["ok"] is True and b["failures"] == 0 and b["mode"] == mode, b
    gets, conns = b["gets"], b["connections"]
    assert gets >= 2000 and b["responses_checked"] == gets and b["entry_hits"] == gets, b
    assert b["ids_checked"] > 0 and b["checksummed_frames"] > 0, b
    for k in ("gets_per_s", "cycles_per_get", "cycles_per_packet", "cycles_per_frame_in",
              "ns_per_get"):
        assert b[k] > 0, (k, b)
    # frames per GET: keep-alive 1 in (the GET, acknowledging the last response) and the
    # response (+ the worker's ACK of the request); a new connection: its handshake and close too
    assert b["frames_per_get"] == pytest.approx(b["frames_in_per_get"] + b["frames_out_per_get"],
                                                abs=0.01), b
    if mode == "keep-alive":
        assert conns < gets and 1 <= b["frames_in_per_get"] < 1.5, b
    else:
        assert conns == gets and b["frames_in_per_get"] == pytest.approx(4, abs=0.01), b
    assert b["uplink_frames"] == 0, b
    c = b["counters"]
    assert c["cache_hit"] == c["cache_200"] == c["requests"] == gets, c
    assert c["cache_bytes"] == 1024 * gets, c
    assert c["syn_rx"] == c["cookie_ok"] == c["flow_freed"] == conns, c
    assert c.get("cache_keepalive", 0) == gets - conns, c
    for k in ("be_syn_tx", "bind_node", "loc_hit", "loc_miss", "cache_miss", "cache_fill_start",
              "spliced_vm", "spliced_be"):
        assert c.get(k, 0) == 0, (k, c)
    assert b["mbufs_leaked"] == 0 and b["flows_live_at_end"] == 0, b
    assert not os.path.exists(os.path.join(RUNTIME, b["file_prefix"]))
