"""Shared helpers for shortpath's integration tests: run shortpathd, query telemetry and the API."""
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("SP_BUILD_DIR", os.path.join(ROOT, "build"))
SHORTPATHD = os.path.join(BUILD, "control", "shortpathd")
RUNTIME = "/var/run/dpdk"

_port_counter = [0]


def free_tcp_port():
    """A TCP port on 127.0.0.1 that is free right now."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def free_port_block(n):
    """A base port with n consecutive free TCP ports on 127.0.0.1."""
    for _ in range(50):
        base = random.randrange(20000, 60000 - n)
        socks = []
        try:
            for p in range(base, base + n):
                socks.append(socket.socket())
                socks[-1].bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no block of free ports")


def wait_for(fn, timeout=10.0, interval=0.05, what="condition"):
    """Poll fn() until it returns a truthy value; return it, or raise after timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = fn()
            if last:
                return last
        except Exception as e:  # noqa: BLE001 - keep polling, report the last error
            last = e
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}; last: {last!r}")


def telemetry(prefix, cmd):
    """One command on the DPDK telemetry v2 socket, as dpdk-telemetry.py does it."""
    path = os.path.join(RUNTIME, prefix, "dpdk_telemetry.v2")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.settimeout(5)
    s.connect(path)
    try:
        info = json.loads(s.recv(16384).decode())
        bufsz = info.get("max_output_len", 16384)
        s.send(cmd.encode())
        reply = json.loads(s.recv(bufsz).decode())
    finally:
        s.close()
    key = cmd.split(",", 1)[0]
    return reply[key]


def http_get(port, path, method="GET"):
    """(status, headers, body text) of a request to the management API."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def base_config(prefix, api_port, redis_address, workers="1", memory_mb=512, mbufs=8191):
    """The [eal]/[lcores]/[redis]/[api]/[dataplane] part of a test config."""
    return f"""[eal]
file_prefix = {prefix}
memory_mb = {memory_mb}
no_huge = true
no_pci = true

[lcores]
main = 0
workers = {workers}

[redis]
address = {redis_address}
connect_timeout_ms = 500
command_timeout_ms = 500
heartbeat_ms = 200
reconnect_min_ms = 50
reconnect_max_ms = 400

[api]
listen = 127.0.0.1:{api_port}

[dataplane]
mbufs = {mbufs}
mbuf_cache = 64
"""


class Daemon:
    """shortpathd with a config text; stop() sends SIGTERM and returns (exit code, log)."""

    def __init__(self, config_text, name="sp"):
        self.dir = tempfile.mkdtemp(prefix=f"sptest-{name}-")
        self.conf = os.path.join(self.dir, "shortpathd.conf")
        with open(self.conf, "w") as f:
            f.write(config_text)
        self.logpath = os.path.join(self.dir, "shortpathd.log")
        self.proc = None

    def start(self, ready_prefix=None, api_port=None, timeout=20):
        self.log = open(self.logpath, "w")
        self.proc = subprocess.Popen([SHORTPATHD, "-c", self.conf], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        if api_port is not None:
            wait_for(lambda: self._alive() and http_get(api_port, "/v1/health")[0] == 200,
                     timeout, what="shortpathd API")
        if ready_prefix is not None:
            wait_for(lambda: self._alive() and telemetry(ready_prefix, "/shortpath/stats"),
                     timeout, what="shortpathd telemetry")
        return self

    def _alive(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"shortpathd exited with {self.proc.returncode}:\n"
                               + self.read_log())
        return True

    def read_log(self):
        with open(self.logpath) as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc is None:
            return None, self.read_log()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
            raise RuntimeError("shortpathd did not stop on signal:\n" + self.read_log())
        self.log.close()
        self.proc = None
        self._remove_runtime_dir()
        return rc, self.read_log()

    def close(self):
        """Stop it if it still runs (kill it if it will not stop); drop its runtime directory.
        For cleanup paths: it never raises, so it cannot mask a test's own failure."""
        try:
            if self.proc is not None:
                self.stop(timeout=10)
        except Exception:  # noqa: BLE001
            if self.proc is not None and self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self._remove_runtime_dir()

    def _remove_runtime_dir(self):
        """EAL leaves config/fbarray files (MBs on tmpfs) in /var/run/dpdk/PREFIX after exit."""
        for line in open(self.conf):
            key, _, value = line.partition("=")
            if key.strip() == "file_prefix":
                shutil.rmtree(os.path.join(RUNTIME, value.split("#")[0].strip()),
                              ignore_errors=True)


def run_check(config_text):
    """shortpathd --check on a config text: (exit code, stdout + stderr)."""
    d = tempfile.mkdtemp(prefix="sptest-check-")
    path = os.path.join(d, "c.conf")
    with open(path, "w") as f:
        f.write(config_text)
    r = subprocess.run([SHORTPATHD, "-c", path, "--check"], capture_output=True, text=True,
                       timeout=30)
    return r.returncode, r.stdout + r.stderr


def pool_in_use_after_close(log):
    """The count from 'packet pool: N of M mbufs in use after close' in the daemon's log."""
    for line in log.splitlines():
        if "mbufs in use after close" in line:
            return int(line.split("packet pool: ")[1].split(" ")[0])
    raise AssertionError("no pool report in the log:\n" + log)


class Redis:
    """A private redis-server on a unix socket (and no TCP unless port given)."""

    def __init__(self, port=0):
        self.dir = tempfile.mkdtemp(prefix="sptest-redis-")
        self.sock = os.path.join(self.dir, "redis.sock")
        self.port = port
        self.proc = None

    @property
    def address(self):
        return f"127.0.0.1:{self.port}" if self.port else f"unix:{self.sock}"

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--unixsocket", self.sock,
             "--save", "", "--appendonly", "no", "--dir", self.dir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.cli("PING") == "PONG", 10, what="redis-server")
        return self

    def cli(self, *args):
        r = subprocess.run(["redis-cli", "-s", self.sock, *args], capture_output=True,
                           text=True, timeout=5)
        return r.stdout.strip()

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


def new_redis(cleanup, **kw):
    """A Redis (not started) that is stopped and whose directory is removed after the test."""
    r = Redis(**kw)
    cleanup(lambda: shutil.rmtree(r.dir, ignore_errors=True))
    cleanup(r.stop)
    return r
