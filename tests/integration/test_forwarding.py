"""Byte-exact forwarding, drops and counters of shortpathd on net_pcap ports, without Redis."""

import pytest

import pcaps
from pcaps import DROPS, TrafficSet
from sphelpers import pool_in_use_after_close



@pytest.fixture(scope="module")
def fwd():
    """One run: 2 VM ports with configured MACs + uplink, Redis address pointing nowhere.

    Snapshots telemetry and the API once every frame was received, then stops the daemon
    with SIGTERM and reads the output pcaps."""
    traffic = TrafficSet(full=True)
    nowhere = "/nonexistent/shortpath-test/redis.sock"  # a directory that does not exist
    # bursts of 128: the uplink's unicast run overflows rte_hash's bulk lookup (64) in one burst
    run = pcaps.PcapRun("fwd", traffic, f"unix:{nowhere}",
                        edit=lambda c: c.replace("[dataplane]\n", "[dataplane]\nburst = 128\n"))
    try:
        run.start()
        res = {"traffic": traffic, "run": run}
        res["stats"] = run.wait_all_received()
        res["ports"] = run.telemetry("/shortpath/ports")
        res["port"] = {p: run.telemetry(f"/shortpath/ports,{p}") for p in traffic.PORTS}
        res["lcores"] = run.telemetry("/shortpath/lcores")
        res["health"] = run.api_json("/v1/health")
        res["stats_after"] = run.stats()
        res["rc"], res["log"] = run.stop()
        res["out"] = run.outputs()
        yield res
    finally:
        run.close()


def test_forwarding_runs_without_redis(fwd):
    h = fwd["health"]
    assert h["status"] == "degraded"
    assert h["forwarding"] is True
    assert h["workers"] == 1
    assert h["redis"]["state"] == "disconnected"
    assert h["redis"]["connects"] == 0
    assert h["redis"]["failures"] >= 1
    s = fwd["stats_after"]
    assert s["redis"] == "disconnected" and s["redis_connects"] == 0


def test_packet_counters_exact(fwd):
    """Every rx/tx/drop/parse/class/event counter equals the hand-computed expectation."""
    want = fwd["traffic"].counters()
    got = fwd["stats"]
    mismatches = {k: (got.get(k), v) for k, v in want.items()
                  if k != "class_multicast" and got.get(k) != v}
    assert not mismatches, f"(got, expected): {mismatches}"
    # the telemetry has no counter this test does not know about
    counted = {k for k in got if k.startswith(("drop_", "parse_", "class_", "event_"))}
    assert counted == {k for k in want if k.startswith(("drop_", "parse_", "class_", "event_"))}
    # floods from the uplink are counted as multicast (VM broadcasts too: see below)
    uplink_floods = sum("multicast" in f.classes for f in fwd["traffic"].inputs["uplink"])
    assert got["class_multicast"] >= uplink_floods
    # nothing moved after the last frame was received
    after = fwd["stats_after"]
    for k in want:
        if k != "class_multicast":
            assert after[k] == got[k], k


def test_class_multicast_counts_vm_broadcasts(fwd):
    assert fwd["stats"]["class_multicast"] == fwd["traffic"].counters()["class_multicast"]


def test_every_frame_forwarded_or_dropped_once(fwd):
    s = fwd["stats"]
    frames = fwd["traffic"].all_frames()
    forwarded = [f for f in frames if f.to]
    assert s["rx_packets"] == len(frames)
    assert s["rx_packets"] == len(forwarded) + sum(s[f"drop_{d}"] for d in DROPS)
    assert s["tx_packets"] == sum(len(f.to) for f in frames)  # a flood counts once per VM port
    assert s["drop_tx_full"] == 0 and s["drop_clone_failed"] == 0 and s["drop_no_vm_port"] == 0


def test_lcores_match_totals(fwd):
    lc = fwd["lcores"]
    assert list(lc) == ["1"]
    w = lc["1"]
    assert w["worker"] == 0
    for k, v in w.items():
        if k in ("worker", "iterations", "idle_cycles", "busy_cycles"):
            continue
        assert fwd["stats"][k] == v, k
    assert w["busy_cycles"] > 0 and w["iterations"] > 0


def test_port_counters(fwd):
    want = fwd["traffic"].port_counters()
    macs = {"vm0": pcaps.VM0_MAC, "vm1": pcaps.VM1_MAC}
    ports = fwd["ports"]
    assert set(ports) == {"vm0", "vm1", "uplink"}
    for i, name in enumerate(("vm0", "vm1", "uplink")):
        p = ports[name]
        assert p == fwd["port"][name], f"/shortpath/ports,{name} differs from /shortpath/ports"
        assert p["role"] == ("uplink" if name == "uplink" else "vm")
        assert p["port_id"] == i
        assert p["device"].startswith(f"net_pcap{i},rx_pcap=")
        assert len(p["hw_mac"].split(":")) == 6
        if name in macs:
            assert p["vm_mac"] == macs[name]
        else:
            assert "vm_mac" not in p
        assert p["rx_queues"] == 1 and p["tx_queues"] == 1
        for k, v in want[name].items():
            assert p[k] == v, f"{name} {k}: {p[k]} != {v}"
        for k in ("rx_missed", "rx_errors", "tx_errors", "rx_nombuf"):
            assert p[k] == 0, f"{name} {k}"


def test_mac_table_static_entries_only(fwd):
    s = fwd["stats"]
    assert s["mac_entries"] == 2
    for ev in ("learned", "moved", "aged", "conflict", "limit", "table_full"):
        assert s[f"mac_{ev}"] == 0, ev


def test_mempool_idle_at_runtime(fwd):
    assert fwd["stats"]["mempool_size"] == 8191
    assert fwd["stats"]["mempool_in_use"] == 0
    assert fwd["stats_after"]["mempool_in_use"] == 0


def test_sigterm_exits_cleanly(fwd):
    assert fwd["rc"] == 0, fwd["log"]
    assert "signal 15: stopping" in fwd["log"]
    assert pool_in_use_after_close(fwd["log"]) == 0


@pytest.mark.parametrize("port", ["vm0", "vm1"])
def test_vm_port_output_byte_identical(fwd, port):
    """Each VM port sends exactly the uplink frames for it (unicast + floods), in order."""
    want = fwd["traffic"].expected_from("uplink", port)
    assert want, "the traffic set sends something to every VM port"
    problems = pcaps.compare_frames(fwd["out"][port], want)
    assert not problems, f"{port}.out.pcap:\n" + "\n".join(problems)


def test_uplink_output_byte_identical(fwd):
    """The uplink sends every valid VM frame unchanged, each VM's frames in their order."""
    out = fwd["out"]["uplink"]
    by_src = fwd["traffic"].expected_out("uplink")
    assert set(by_src) == {"vm0", "vm1"}
    problems = pcaps.check_merge(out, by_src)
    assert not problems, "uplink.out.pcap:\n" + "\n".join(problems)
    # the same, frame by frame, on each VM's share of the output
    for src, want in by_src.items():
        mine = [d for d in out if d in set(want)]
        assert not pcaps.compare_frames(mine, want), src
    names = {f.data: f.name for f in fwd["traffic"].all_frames()}
    assert names[next(d for d in out if len(d) > 8000)] == "vm0_jumbo"
