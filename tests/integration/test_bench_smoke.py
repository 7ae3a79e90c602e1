"""Benchmark smoke run: tools/bench/fwd_bench.py --seconds 1 --json measures all three programs.

Checks that shortpathd, dpdk-testpmd io and dpdk-testpmd macswap each forwarded traffic and got
positive figures, on the same ports, and that the benchmark cleaned up after itself. It asserts
no speed: speed depends on the machine and on what else runs on it (see the benchmark's output).
"""

import json
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNTIME = "/var/run/dpdk"
BENCH = os.path.join(ROOT, "tools", "bench", "fwd_bench.py")
PROGRAMS = ("shortpathd", "testpmd-io", "testpmd-macswap")


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
