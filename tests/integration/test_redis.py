"""shortpathd and Redis: degraded but forwarding without it, registration, loss and recovery."""
import signal
import socket
import subprocess
import time

import pytest

import pcaps
from pcaps import TrafficSet
from sphelpers import (SHORTPATHD, free_tcp_port, new_redis, pool_in_use_after_close,
                       wait_for)

HOST = socket.gethostname()
NODE_KEY = f"sp:node:{{{HOST}}}"
ALIVE_KEY = f"{NODE_KEY}:alive"
HEARTBEAT_MS = 200  # sphelpers.base_config: the alive key lives 3 heartbeats


def shortpathd_version():
    out = subprocess.run([SHORTPATHD, "--version"], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0] == "shortpathd"
    return out[1]


def health(run):
    return run.api_json("/v1/health")


def wait_status(run, status, timeout=5.0):
    return wait_for(lambda: (h := health(run))["status"] == status and h, timeout,
                    what=f"/v1/health status {status}")


def kill_redis(r):
    r.proc.kill()
    r.proc.wait(10)
    r.proc = None


def node_hash(r):
    lines = r.cli("HGETALL", NODE_KEY).splitlines()
    return dict(zip(lines[0::2], lines[1::2]))


def check_registration(r, run, version):
    node = node_hash(r)
    assert set(node) == {"host", "pid", "version", "started"}, node
    assert node["host"] == HOST
    assert node["pid"] == str(run.pid)
    assert node["version"] == version
    assert abs(int(node["started"]) - time.time()) < 60
    # the first heartbeat goes out right after the registration reply: allow it to land
    ttl = wait_for(lambda: (t := int(r.cli("PTTL", ALIVE_KEY))) > 0 and t, 2,
                   what=f"a TTL on {ALIVE_KEY}")
    assert ttl <= 3 * HEARTBEAT_MS, ttl
    return node


def check_forwarding(run):
    """The small traffic set went through exactly (counters now, pcaps after the stop)."""
    s = run.wait_all_received()
    want = run.traffic.counters()
    for k in ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "class_arp", "class_ipv4",
              "class_tcp", "class_udp", "drop_runt", "drop_unknown_dst", "mempool_in_use"):
        assert s[k] == want.get(k, 0), k


def check_outputs(run):
    out = run.outputs()
    for port in ("vm0", "vm1"):
        assert not pcaps.compare_frames(out[port], run.traffic.expected_from("uplink", port))
    assert not pcaps.check_merge(out["uplink"], run.traffic.expected_out("uplink"))


def test_redis_down_up_killed_back_unix(cleanup):
    r = new_redis(cleanup)  # not started yet: its socket path does not exist
    run = pcaps.PcapRun("redis-unix", TrafficSet(full=False), r.address)
    cleanup(run.close)
    version = shortpathd_version()
    run.start()

    # 1. Redis absent: degraded, and forwarding regardless
    h = health(run)
    assert h["status"] == "degraded" and h["forwarding"] is True
    assert h["redis"]["state"] == "disconnected" and h["redis"]["connects"] == 0
    assert h["redis"]["address"] == r.address
    check_forwarding(run)
    f0 = h["redis"]["failures"]
    wait_for(lambda: health(run)["redis"]["failures"] >= f0 + 2, 5, what="more reconnect attempts")
    assert run.stats()["redis"] == "disconnected"

    # 2. Redis comes up: ok within a few seconds, the instance is registered
    r.start()
    h = wait_status(run, "ok", 5)
    assert h["redis"]["state"] == "up" and h["redis"]["connects"] == 1
    s = run.stats()
    assert s["redis"] == "up" and s["redis_connects"] == 1
    check_registration(r, run, version)
    assert "sp_redis_up 1\n" in run.api("/metrics")[2]
    # the heartbeat keeps the alive key (TTL 3 heartbeats) going well past its first TTL
    time.sleep(4 * HEARTBEAT_MS / 1000)
    assert 0 < int(r.cli("PTTL", ALIVE_KEY)) <= 3 * HEARTBEAT_MS
    assert health(run)["status"] == "ok"

    # 3. Redis killed: degraded again, failure counted, still forwarding
    f1 = health(run)["redis"]["failures"]
    kill_redis(r)
    h = wait_status(run, "degraded", 5)
    assert h["redis"]["state"] != "up" and h["forwarding"] is True
    wait_for(lambda: health(run)["redis"]["failures"] > f1, 5, what="redis_failures to grow")
    assert run.stats()["redis_failures"] > f1

    # 4. Redis back (empty: no persistence): ok again, registered again
    r.start()
    h = wait_status(run, "ok", 5)
    assert h["redis"]["connects"] == 2
    wait_for(lambda: node_hash(r), 5, what="re-registration")
    check_registration(r, run, version)

    rc, log = run.stop()
    assert rc == 0, log
    assert pool_in_use_after_close(log) == 0
    check_outputs(run)


def test_redis_tcp_address(cleanup):
    r = new_redis(cleanup, port=free_tcp_port())
    assert r.address.startswith("127.0.0.1:")
    run = pcaps.PcapRun("redis-tcp", TrafficSet(full=False), r.address)
    cleanup(run.close)
    run.start()
    h = health(run)
    assert h["status"] == "degraded" and h["redis"]["state"] != "up"
    assert h["redis"]["address"] == r.address
    check_forwarding(run)
    r.start()
    h = wait_status(run, "ok", 5)
    assert h["redis"]["state"] == "up" and h["redis"]["connects"] == 1
    check_registration(r, run, shortpathd_version())
    kill_redis(r)
    wait_status(run, "degraded", 5)
    r.start()
    assert wait_status(run, "ok", 5)["redis"]["connects"] == 2
    rc, log = run.stop()
    assert rc == 0 and pool_in_use_after_close(log) == 0, log
    check_outputs(run)


def test_redis_hang_times_out_and_recovers(cleanup):
    """A Redis that stops answering (SIGSTOP) is dropped after command_timeout_ms."""
    r = new_redis(cleanup)
    r.start()
    cleanup(lambda: r.proc and r.proc.send_signal(signal.SIGCONT))
    run = pcaps.PcapRun("redis-hang", TrafficSet(full=False), r.address)
    cleanup(run.close)
    run.start()
    wait_status(run, "ok", 5)
    r.proc.send_signal(signal.SIGSTOP)
    h = wait_status(run, "degraded", 5)
    assert h["forwarding"] is True
    wait_for(lambda: health(run)["redis"]["timeouts"] >= 1, 5, what="a command timeout")
    check_forwarding(run)
    r.proc.send_signal(signal.SIGCONT)
    h = wait_status(run, "ok", 5)
    assert h["redis"]["connects"] >= 2
    rc, log = run.stop()
    assert rc == 0 and pool_in_use_after_close(log) == 0, log


def test_started_field_is_daemon_start_time(cleanup):
    r = new_redis(cleanup)
    run = pcaps.PcapRun("redis-started", TrafficSet(full=False), r.address)
    cleanup(run.close)
    run.start()
    time.sleep(2.5)  # start Redis well after shortpathd (time() has 1 s resolution)
    r.start()
    wait_status(run, "ok", 5)
    started = int(wait_for(lambda: node_hash(r).get("started"), 5, what="registration"))
    daemon_start = time.time() - health(run)["uptime_ms"] / 1000
    assert abs(started - daemon_start) <= 1.5, (started, daemon_start)


class SilentServer:
    """A TCP listener that never accepts or answers: a Redis that hangs in the handshake."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self):
        self.sock.close()


def long_redis_timeouts(conf):
    return (conf.replace("connect_timeout_ms = 500", "connect_timeout_ms = 60000")
            .replace("command_timeout_ms = 500", "command_timeout_ms = 60000"))


@pytest.mark.parametrize("case,sig", [("refused", signal.SIGTERM), ("refused", signal.SIGINT),
                                      ("silent", signal.SIGTERM)])
def test_stop_while_redis_down_is_prompt(cleanup, case, sig):
    if case == "refused":
        address = "unix:/nonexistent/shortpath-test/redis.sock"
        edit = None
    else:
        srv = SilentServer()
        cleanup(srv.close)
        address, edit = srv.address, long_redis_timeouts
    run = pcaps.PcapRun(f"stop-{case}-{int(sig)}", TrafficSet(full=False), address, edit=edit)
    cleanup(run.close)
    run.start()
    check_forwarding(run)
    if case == "silent":
        wait_for(lambda: health(run)["redis"]["state"] == "handshake", 5,
                 what="a handshake stuck in flight")
    assert health(run)["status"] == "degraded"
    t0 = time.monotonic()
    rc, log = run.stop(sig, timeout=10)
    elapsed = time.monotonic() - t0
    assert rc == 0, log
    assert elapsed < 3.0, f"took {elapsed:.1f} s to stop"
    assert f"signal {int(sig)}: stopping" in log
    assert pool_in_use_after_close(log) == 0
    check_outputs(run)


def test_error_replies_degrade_then_recover(cleanup):
    """A Redis that answers errors (a read-only replica) is not 'up': the heartbeat's error
    drops the connection; once writable again the node re-registers."""
    r = new_redis(cleanup)
    r.start()
    run = pcaps.PcapRun("redis-ro", TrafficSet(full=False), r.address)
    cleanup(run.close)
    run.start()
    wait_status(run, "ok", 5)
    c0 = health(run)["redis"]["connects"]
    assert r.cli("REPLICAOF", "127.0.0.1", "1") == "OK"  # a master that does not exist
    h = wait_status(run, "degraded", 5)
    assert "READONLY" in h["redis"]["last_error"] or "heartbeat" in h["redis"]["last_error"]
    assert r.cli("REPLICAOF", "NO", "ONE") == "OK"
    h = wait_status(run, "ok", 5)
    assert h["redis"]["connects"] > c0
    check_forwarding(run)
    rc, log = run.stop()
    assert rc == 0
    assert pool_in_use_after_close(log) == 0


def test_select_failure_writes_nothing(cleanup):
    """SELECT of a database the server lacks: nothing is written to db 0, and health says
    degraded with the server's error."""
    r = new_redis(cleanup)
    r.start()
    run = pcaps.PcapRun("redis-db", TrafficSet(full=False), r.address,
                        edit=lambda c: c.replace("[redis]\n", "[redis]\ndb = 20\n"))
    cleanup(run.close)
    run.start()
    h = wait_for(lambda: (x := health(run))["redis"]["failures"] >= 2 and x, 5,
                 what="failed handshakes")
    assert h["status"] == "degraded"
    assert "SELECT" in h["redis"]["last_error"]
    assert r.cli("EXISTS", NODE_KEY) == "0"
    rc, _ = run.stop()
    assert rc == 0
