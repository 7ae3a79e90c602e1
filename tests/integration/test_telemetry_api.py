"""DPDK telemetry commands (via dpdk-telemetry.py), Prometheus /metrics and the JSON API."""
import json
import re
import subprocess
import time

import pytest

import pcaps
from pcaps import ANOMALIES, CLASSES, DROPS, TrafficSet

TELEMETRY_SCRIPT = "/usr/bin/dpdk-telemetry.py"
PORTS = ("vm0", "vm1", "uplink")


@pytest.fixture(scope="module")
def sp():
    """shortpathd with the full pcap traffic set already forwarded, Redis absent."""
    nowhere = "/nonexistent/shortpath-test/redis.sock"  # a directory that does not exist
    run = pcaps.PcapRun("tel", TrafficSet(full=True), f"unix:{nowhere}")
    try:
        run.start()
        run.wait_all_received()
        yield run
    finally:
        run.close()


def run_telemetry_script(prefix, commands):
    """Feed commands to dpdk-telemetry.py on stdin (non-interactive); one JSON reply a line."""
    r = subprocess.run([TELEMETRY_SCRIPT, "-f", prefix], input="".join(c + "\n" for c in commands),
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stdout.splitlines() if ln.strip()]
    assert len(lines) == len(commands), r.stdout + r.stderr
    return [json.loads(ln) for ln in lines]


# --- dpdk-telemetry.py -------------------------------------------------------------------------

def test_dpdk_telemetry_script(sp):
    traffic = sp.traffic
    listing, stats, uplink, lcores, bad, helptext = run_telemetry_script(sp.prefix, [
        "/", "/shortpath/stats", "/shortpath/ports,uplink", "/shortpath/lcores",
        "/shortpath/ports,nosuchport", "/help,/shortpath/ports"])
    for cmd in ("/shortpath/stats", "/shortpath/ports", "/shortpath/lcores"):
        assert cmd in listing["/"]

    s = stats["/shortpath/stats"]
    want = traffic.counters()
    for k in ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "drop_runt",
              "drop_bad_src_mac", "drop_unknown_dst", "parse_ipv4_truncated",
              "parse_tcp_bad_offset", "class_ipv6", "class_vlan", "class_scattered"):
        assert s[k] == want[k], k
    assert s["workers"] == 1 and s["ports"] == 3
    assert s["mempool_size"] == 8191 and s["mempool_in_use"] == 0
    assert s["mac_entries"] == 2
    assert s["redis"] == "disconnected"
    assert s["uptime_ms"] > 0

    u = uplink["/shortpath/ports"]
    pc = traffic.port_counters()["uplink"]
    assert u["role"] == "uplink" and u["port_id"] == 2
    assert {k: u[k] for k in pc} == pc

    lc = lcores["/shortpath/lcores"]
    assert set(lc) == {"1"}
    assert lc["1"]["worker"] == 0 and lc["1"]["rx_packets"] == want["rx_packets"]

    assert bad == {"/shortpath/ports": None}  # unknown port name: the command fails
    assert "port name" in helptext["/help"]["/shortpath/ports"]


def test_ports_by_name(sp):
    for name in PORTS:
        one = sp.telemetry(f"/shortpath/ports,{name}")
        assert one["role"] == ("uplink" if name == "uplink" else "vm")
        assert one["rx_packets"] == sp.traffic.port_counters()[name]["rx_packets"]


def test_loop_counters_advance(sp):
    """iterations and idle cycles grow while idle; busy cycles only when frames arrive."""
    a = sp.stats()
    la = sp.telemetry("/shortpath/lcores")["1"]
    t0 = time.monotonic()
    time.sleep(0.3)
    b = sp.stats()
    lb = sp.telemetry("/shortpath/lcores")["1"]
    dt = time.monotonic() - t0
    assert b["iterations"] > a["iterations"]
    assert b["idle_cycles"] > a["idle_cycles"]
    assert b["busy_cycles"] == a["busy_cycles"] > 0  # no new traffic: the pcap inputs are done
    assert b["busy_cycles"] + b["idle_cycles"] > a["busy_cycles"] + a["idle_cycles"]
    assert lb["iterations"] > la["iterations"] and lb["idle_cycles"] > la["idle_cycles"]
    assert b["uptime_ms"] >= a["uptime_ms"] + 250
    # the cycles are TSC cycles: between 10 MHz and 100 GHz worth of them per second
    rate = (b["idle_cycles"] - a["idle_cycles"]) / dt
    assert 1e7 < rate < 1e11, rate


# --- Prometheus /metrics -----------------------------------------------------------------------

METRIC_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL_NAME = r"[a-zA-Z_][a-zA-Z0-9_]*"
LABEL = rf'({LABEL_NAME})="((?:[^"\\\n]|\\[\\"n])*)"'
_LABEL_NC = rf'{LABEL_NAME}="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(rf"^(?P<name>{METRIC_NAME})"
                    rf"(?:\{{(?P<labels>{_LABEL_NC}(?:,{_LABEL_NC})*,?)?\}})?"
                    rf" (?P<value>\S+)(?: (?P<ts>-?\d+))?$")
VALUE = re.compile(r"^(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|[+-]?Inf|NaN)$")


def parse_prometheus(text):
    """Strict Prometheus 0.0.4 text parser: {family: {type, help, samples: {labels: value}}}."""
    assert text.endswith("\n"), "the exposition must end with a newline"
    families = {}
    current = None  # family whose samples may follow
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = f"line {n}: {line!r}"
        assert line.strip() == line and line, f"blank or padded line, {where}"
        if line.startswith("#"):
            if not re.match(r"^# (HELP|TYPE) ", line):
                continue  # a plain comment
            m = re.match(rf"^# (HELP|TYPE) ({METRIC_NAME}) (.+)$", line)
            assert m, f"bad HELP/TYPE line, {where}"
            kind, name, rest = m.groups()
            fam = families.setdefault(name, {"help": None, "type": None, "samples": {}})
            assert not fam["samples"], f"# {kind} after samples of {name}, {where}"
            if kind == "HELP":
                assert fam["help"] is None, f"second HELP for {name}"
                fam["help"] = rest
            else:
                assert fam["type"] is None, f"second TYPE for {name}"
                assert rest in ("counter", "gauge", "histogram", "summary", "untyped"), where
                fam["type"] = rest
            current = name
            continue
        m = SAMPLE.match(line)
        assert m, f"bad sample, {where}"
        name, value = m.group("name"), m.group("value")
        labels_text = m.group("labels") or ""
        assert VALUE.match(value), f"bad value {value!r}, {where}"
        labels = tuple(re.findall(LABEL, labels_text))
        names = [k for k, _ in labels]
        assert len(names) == len(set(names)), f"repeated label, {where}"
        assert name == current, f"sample of {name} outside its family block, {where}"
        fam = families[name]
        assert fam["help"] is not None and fam["type"] is not None, \
            f"{name} has no HELP and TYPE before its samples"
        assert labels not in fam["samples"], f"duplicate sample, {where}"
        fam["samples"][labels] = float(value)
    for name, fam in families.items():
        assert fam["samples"], f"family {name} has no samples"
        if fam["type"] == "counter":
            assert name.endswith("_total"), f"counter {name} does not end in _total"
            assert all(v >= 0 for v in fam["samples"].values()), name
    return families


def test_parser_rejects_bad_exposition():
    """The parser above is itself strict (so a lenient parser cannot hide a bad /metrics)."""
    good = '# HELP a_total x\n# TYPE a_total counter\na_total{l="v"} 1\n# other comment\n'
    parse_prometheus(good)
    parse_prometheus("# HELP g x\n# TYPE g gauge\ng 1.5\n")
    bad = {
        "space before labels": good.replace("a_total{", "a_total {"),
        "unquoted label value": good.replace('"v"', "v"),
        "no HELP": good.replace("# HELP a_total x\n", ""),
        "no TYPE": good.replace("# TYPE a_total counter\n", ""),
        "counter without _total": "# HELP a x\n# TYPE a counter\na 1\n",
        "duplicate sample": good + 'a_total{l="v"} 2\n',
        "family split": good + '# HELP b x\n# TYPE b gauge\nb 1\na_total{l="w"} 1\n',
        "bad value": good.replace(" 1\n", " one\n"),
        "bad name": "# HELP 1a x\n# TYPE 1a gauge\n1a 1\n",
        "bad label name": good.replace("{l=", "{1l="),
        "no final newline": good[:-1],
        "HELP after samples": good + "# HELP a_total y\n",
    }
    for why, text in bad.items():
        with pytest.raises(AssertionError):
            parse_prometheus(text)
            pytest.fail(f"accepted: {why}")


def test_metrics_prometheus_format_and_values(sp):
    status, headers, body = sp.api("/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    fam = parse_prometheus(body)
    s = sp.stats()
    ports = sp.telemetry("/shortpath/ports")

    def one(name, **labels):
        samples = fam[name]["samples"]
        hits = [v for k, v in samples.items() if all((lk, lv) in k for lk, lv in labels.items())]
        assert len(hits) == 1, (name, labels, samples)
        return hits[0]

    w = {"worker": "0", "lcore": "1"}
    for k in ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes"):
        assert one(f"sp_worker_{k}_total", **w) == s[k]
    for d in DROPS:
        assert one("sp_worker_drops_total", reason=d, **w) == s[f"drop_{d}"]
    for a in ANOMALIES:
        assert one("sp_worker_parse_anomalies_total", reason=a, **w) == s[f"parse_{a}"]
    for c in CLASSES:
        assert one("sp_worker_classified_total", **{"class": c}, **w) == s[f"class_{c}"]
    assert one("sp_worker_events_total", event="learn_punted", **w) == s["event_learn_punted"]
    assert 0 < one("sp_worker_iterations_total", **w) <= s["iterations"]  # read before s
    for p in PORTS:
        role = ports[p]["role"]
        for k in ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "rx_missed", "rx_nombuf"):
            assert one(f"sp_port_{k}_total", port=p, role=role) == ports[p][k], (p, k)
    assert one("sp_mac_entries") == s["mac_entries"] == 2
    assert one("sp_mac_events_total", event="learned") == s["mac_learned"]
    assert one("sp_mempool_size") == s["mempool_size"]
    assert one("sp_mempool_in_use") == 0
    assert one("sp_redis_up") == 0
    assert one("sp_redis_connects_total") == s["redis_connects"] == 0
    assert one("sp_redis_failures_total") >= 1
    assert fam["sp_uptime_seconds"]["type"] == "gauge" and one("sp_uptime_seconds") > 0
    assert s["rx_packets"] == len(sp.traffic.all_frames())


# --- JSON API ----------------------------------------------------------------------------------

def test_v1_stats_json(sp):
    st = sp.api_json("/v1/stats")
    s = sp.stats()
    assert set(st) >= {"ports", "workers", "total", "mac_table", "mempool", "redis"}
    t = st["total"]
    for k in ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "busy_cycles"):
        assert t[k] == s[k], k
    assert t["drops"] == {d: s[f"drop_{d}"] for d in DROPS}
    assert t["parse_anomalies"] == {a: s[f"parse_{a}"] for a in ANOMALIES}
    assert t["classified"] == {c: s[f"class_{c}"] for c in CLASSES}
    assert t["events"] == {"learn_punted": s["event_learn_punted"],
                           "punt_ring_full": s["event_punt_ring_full"],
                           "learn_throttled": s["event_learn_throttled"]}
    assert len(st["workers"]) == 1
    w = st["workers"][0]
    assert w["worker"] == 0 and w["lcore"] == 1 and w["rx_packets"] == s["rx_packets"]
    assert w["drops"] == t["drops"]
    assert st["mac_table"]["entries"] == 2
    assert st["mac_table"]["events"] == {e: 0 for e in ("learned", "moved", "aged", "conflict",
                                                        "limit", "table_full")}
    assert st["mempool"] == {"size": 8191, "in_use": 0}
    assert st["redis"]["state"] == "disconnected" and st["redis"]["address"].startswith("unix:")
    tel_ports = sp.telemetry("/shortpath/ports")
    assert set(st["ports"]) == set(PORTS)
    for p in PORTS:
        for k in ("role", "port_id", "device", "hw_mac", "rx_packets", "rx_bytes", "tx_packets",
                  "tx_bytes", "rx_missed", "rx_errors", "tx_errors", "rx_nombuf"):
            assert st["ports"][p][k] == tel_ports[p][k], (p, k)


def test_v1_health(sp):
    status, headers, body = sp.api("/v1/health")
    assert status == 200 and headers["Content-Type"] == "application/json"
    h = json.loads(body)
    assert h["status"] == "degraded" and h["forwarding"] is True and h["workers"] == 1
    assert h["redis"]["state"] == "disconnected" and h["uptime_ms"] > 0
    status, _h, body = sp.api("/v1/health?verbose=1")
    assert status == 200 and json.loads(body)["status"] == "degraded"
    status, _h, body = sp.api("/v1/health", "HEAD")
    assert status == 200 and body == ""


@pytest.mark.parametrize("method,path", [("GET", "/nope"), ("GET", "/"), ("GET", "/v1/health/"),
                                         ("GET", "/v1"), ("GET", "/metrics/x"),
                                         ("POST", "/v1/nope")])
def test_unknown_path_404_json(sp, method, path):
    status, headers, body = sp.api(path, method)
    assert status == 404
    assert headers["Content-Type"] == "application/json"
    err = json.loads(body)
    assert err["error"] == "not_found" and path in err["message"]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["/v1/health", "/v1/stats", "/metrics"])
def test_wrong_method_405_json(sp, method, path):
    status, headers, body = sp.api(path, method)
    assert status == 405
    assert headers["Allow"] == "GET, HEAD"
    assert headers["Content-Type"] == "application/json"
    err = json.loads(body)
    assert err["error"] == "method_not_allowed" and path in err["message"]
