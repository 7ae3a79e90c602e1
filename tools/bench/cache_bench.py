#!/usr/bin/python3
# Cache benchmark: cached 1 KiB GETs/s of shortpath's worker vs nginx proxy_cache (wrk), one run.
"""Cached 1 KiB GETs per second: shortpath's worker (tcp_bench --cache) against nginx proxy_cache.

    tools/bench/cache_bench.py [--duration 5] [--connections 32] [--build build] [--json]
                               [--nginx-only] [--tcp-bench-arg ARG ...] [--keep]

The reference, in the same run: one nginx (worker_processes 1, pinned to CPU 1: "per core") with
an origin server block serving a 1 KiB file and a front server block caching it with proxy_cache.
The cache is warmed (the first GET is a MISS, the next must be a HIT), then wrk, pinned to CPU 0,
loads the front for --duration seconds twice: keep-alive connections, and a new connection per
request (Connection: close). The origin block logs every request it gets; it must get none while
wrk runs (every request measured was a cache hit), and the object must still be a HIT afterwards.

shortpath's figures come from build/tools/bench/tcp_bench in its cache modes (TCP_BENCH_MODES
below; the synthetic client is in process, one worker), if the binary has them; otherwise the
table says they are not available and nginx's figures are still printed.

Exit status: 0 on success; 1 if nginx or wrk is missing or fails, the cache never reported HIT,
or tcp_bench failed in a mode it has; 2 on bad usage; 128 + signal number when interrupted
(130 for Ctrl-C). nginx and every temporary file are removed on every way out.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

# the benchmarks' common process handling: Ctrl-C unwinds, children die with the benchmark
from fwd_bench import Interrupted, _child_setup, _on_signal

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# tcp_bench's cache modes: (mode, extra arguments). Adjust here if tcp_bench's options change.
TCP_BENCH_CACHE_OPT = "--cache"
TCP_BENCH_MODES = (("keep-alive", [TCP_BENCH_CACHE_OPT]),
                   ("new connection", [TCP_BENCH_CACHE_OPT, "--new-conn"]))
# where a rate / a cycle count may sit in tcp_bench's last-line JSON, first match wins
RATE_KEYS = ("gets_per_s", "hits_per_s", "txn_per_s", "transactions_per_s", "requests_per_s")
CYCLE_KEYS = ("cycles_per_get", "cycles_per_hit", "cycles_per_txn", "cycles_per_transaction")
CPP_KEYS = ("cycles_per_packet", "cycles_per_frame_in", "cycles_per_frame")
# the same in its text output: "transactions/s: N", "N txn/s", "cycles/txn: N", "N cycles/txn"
RATE_RES = (r"(?:transactions|txn|gets|hits|requests)/s\s*[:=]\s*([0-9][0-9.,e+]*)",
            r"([0-9][0-9.,e+]*)\s*(?:transactions|txn|gets|hits|requests)/s\b")
CYCLE_RES = (r"cycles/(?:txn|get|hit|transaction)\s*[:=]\s*([0-9][0-9.,e+]*)",
             r"([0-9][0-9.,e+]*)\s*cycles/(?:txn|get|hit|transaction)\b")

OBJECT_SIZE = 1024
OBJECT_PATH = "/obj-1k"
NGINX = "nginx"
WRK = "wrk"
TASKSET = "taskset"
NGINX_CPU, WRK_CPU = 1, 0

NGINX_CONF = """\
# cache_bench.py's nginx proxy_cache reference (a temporary configuration)
{user}daemon off;
master_process on;
worker_processes 1;
worker_cpu_affinity {affinity};
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;
    default_type application/octet-stream;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 100000000;  # wrk's keep-alive connections stay open for the whole run
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy_temp;
    fastcgi_temp_path {tmp}/fastcgi_temp;
    uwsgi_temp_path {tmp}/uwsgi_temp;
    scgi_temp_path {tmp}/scgi_temp;
    proxy_cache_path {tmp}/cache levels=1:2 keys_zone=bench:10m max_size=64m inactive=60m
                     use_temp_path=off;

    # origin: the object as a static file; it logs every request, so a miss during the runs shows
    server {{
        listen 127.0.0.1:{port_o};
        root {tmp}/www;
        access_log {tmp}/origin.log;
    }}

    # front: the cache
    server {{
        listen 127.0.0.1:{port_c} backlog=4096;
        location / {{
            proxy_pass http://127.0.0.1:{port_o};
            proxy_cache bench;
            proxy_cache_valid 200 10m;
            proxy_cache_lock on;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            add_header X-Cache-Status $upstream_cache_status;
        }}
    }}
}}
"""


def log(msg):
    print(f"cache_bench: {msg}", file=sys.stderr, flush=True)


class Failed(Exception):
    """A precondition or a measurement failed: message for the user, exit 1."""


def free_tcp_ports(n):
    """n distinct TCP ports on 127.0.0.1 that are free right now."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def object_bytes():
    """The 1 KiB object: printable, deterministic, ends in a newline."""
    line = b"shortpath cache_bench object 0123456789abcdefghijklmnopqrstuvwxyz\n"
    return (line * (OBJECT_SIZE // len(line) + 1))[:OBJECT_SIZE - 1] + b"\n"


def get(port, path=OBJECT_PATH, timeout=5):
    """(status, headers as a dict with lower-case names, body) of one GET on a new connection."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, body
    finally:
        c.close()


def wait_port(port, proc, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def busy_processes(own, seconds=0.5, threshold=0.2):
    """[{pid, comm, cpu}] of other processes using more than threshold of a CPU right now (they
    take CPU time from nginx and wrk: a busy-polling DPDK process, say)."""
    def sample():
        t = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    st = f.read()
            except OSError:
                continue
            comm = st[st.index("(") + 1:st.rindex(")")]
            fields = st[st.rindex(")") + 2:].split()
            t[int(pid)] = (comm, int(fields[11]) + int(fields[12]))  # utime + stime
        return t
    hz = os.sysconf("SC_CLK_TCK")
    a = sample()
    time.sleep(seconds)
    b = sample()
    busy = []
    for pid, (comm, ticks) in b.items():
        if pid in own or pid not in a:
            continue
        cpu = (ticks - a[pid][1]) / hz / seconds
        if cpu > threshold:
            busy.append({"pid": pid, "comm": comm, "cpu": round(cpu, 2)})
    return sorted(busy, key=lambda x: -x["cpu"])


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return sum(1 for _ in f)
    except FileNotFoundError:
        return 0


# ---- nginx ---------------------------------------------------------------------------------------

class Nginx:
    """One nginx (master + 1 worker, daemon off) in its own temporary prefix directory."""

    def __init__(self, tmp, cpu):
        self.tmp = tmp
        self.cpu = cpu
        self.proc = None
        self.port_o, self.port_c = free_tcp_ports(2)
        self.conf = os.path.join(tmp, "nginx.conf")
        os.makedirs(os.path.join(tmp, "www"))
        os.makedirs(os.path.join(tmp, "cache"))
        self.body = object_bytes()
        with open(os.path.join(tmp, "www", OBJECT_PATH.lstrip("/")), "wb") as f:
            f.write(self.body)
        ncpu = os.cpu_count() or 1
        # worker_cpu_affinity: a bit mask, rightmost character is CPU 0
        affinity = "1" + "0" * cpu if cpu < ncpu else "auto"
        # as root, the worker would run as nobody and could not read the temp dir (0700)
        user = "user root root;\n" if os.geteuid() == 0 else ""
        with open(self.conf, "w") as f:
            f.write(NGINX_CONF.format(user=user, affinity=affinity, tmp=tmp,
                                      port_o=self.port_o, port_c=self.port_c))
        self.origin_log = os.path.join(tmp, "origin.log")
        self.error_log = os.path.join(tmp, "error.log")

    def version(self):
        r = subprocess.run([NGINX, "-v"], capture_output=True, text=True)
        return (r.stderr or r.stdout).strip().split("/", 1)[-1]

    def start(self):
        # -e: the error log before the configuration is read (else /var/log/nginx/error.log)
        argv = [NGINX, "-p", self.tmp, "-e", self.error_log, "-c", self.conf]
        r = subprocess.run(argv + ["-t", "-q"], capture_output=True, text=True)
        if r.returncode != 0:
            raise Failed(f"nginx rejects its configuration: {(r.stderr or r.stdout).strip()}")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, preexec_fn=_child_setup,
                                     start_new_session=True)
        for port in (self.port_o, self.port_c):
            if not wait_port(port, self.proc):
                raise Failed(f"nginx did not start listening on 127.0.0.1:{port}: "
                             f"{self.errors()}")

    def worker_pids(self):
        if self.proc is None:
            return []
        pids = []
        try:
            with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                children = [int(p) for p in f.read().split()]
        except OSError:
            return []
        for pid in children:  # not the cache manager and cache loader
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"worker process" in f.read():
                        pids.append(pid)
            except OSError:
                pass
        return pids

    def errors(self):
        try:
            with open(self.error_log, errors="replace") as f:
                return " | ".join(ln.strip() for ln in f.readlines()[-5:])
        except OSError:
            return "(no error log)"

    def stop(self):
        """SIGTERM (fast shutdown) to the master, SIGKILL to its group after 5 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=5)
        if self.proc.stderr:
            self.proc.stderr.close()

    def warm(self):
        """GET the object until the cache answers HIT: [statuses seen]. The first must be MISS."""
        seen = []
        for _ in range(5):
            status, hdrs, body = get(self.port_c)
            if status != 200:
                raise Failed(f"nginx answered {status} to GET {OBJECT_PATH}: {self.errors()}")
            if body != self.body:
                raise Failed(f"nginx's body differs from the object ({len(body)} B)")
            seen.append(hdrs.get("x-cache-status", "-"))
            if seen[-1] == "HIT":
                break
            time.sleep(0.05)
        if seen[-1] != "HIT":
            raise Failed(f"nginx's cache never reported HIT (X-Cache-Status: {seen}); "
                         f"{self.errors()}")
        if seen[0] != "MISS":
            log(f"warning: the first GET was {seen[0]}, not MISS")
        return seen

    def cache_status(self):
        status, hdrs, _ = get(self.port_c)
        return hdrs.get("x-cache-status", "-") if status == 200 else f"status {status}"


# ---- wrk -----------------------------------------------------------------------------------------

_UNITS = {"us": 1.0, "ms": 1e3, "s": 1e6, "m": 60e6, "h": 3600e6}


def _usec(text):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m|h)", text.strip())
    return float(m.group(1)) * _UNITS[m.group(2)] if m else None


def _num(text):
    """wrk's 12.34k / 1.2M / 123 (Req/Sec column)."""
    m = re.fullmatch(r"([0-9.]+)([kMG]?)", text.strip())
    if not m:
        return None
    return float(m.group(1)) * {"": 1, "k": 1e3, "M": 1e6, "G": 1e9}[m.group(2)]


def parse_wrk(out):
    """Requests/sec, requests, errors and latency (µs) from wrk --latency's output."""
    r = {}
    m = re.search(r"^Requests/sec:\s*([0-9.]+)", out, re.M)
    r["requests_per_s"] = float(m.group(1)) if m else None
    m = re.search(r"^\s*(\d+) requests in ([0-9.]+)(us|ms|s|m)", out, re.M)
    if m:
        r["requests"] = int(m.group(1))
        r["seconds"] = _usec(m.group(2) + m.group(3)) / 1e6
    m = re.search(r"^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)", out, re.M)
    lat = {}
    if m:
        lat = {"avg": _usec(m.group(1)), "stdev": _usec(m.group(2)), "max": _usec(m.group(3))}
    for pct, val in re.findall(r"^\s*(\d+)%\s+(\S+)\s*$", out, re.M):
        lat[f"p{pct}"] = _usec(val)
    r["latency_us"] = lat
    m = re.search(r"^\s*Req/Sec\s+(\S+)", out, re.M)
    r["req_per_s_per_thread_avg"] = _num(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    r["non_2xx_3xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["socket_errors"] = (dict(zip(("connect", "read", "write", "timeout"),
                                   map(int, m.groups()))) if m else {})
    return r


def run_wrk(nginx, args, new_conn):
    argv = [TASKSET, "-c", str(args.wrk_cpu), WRK, "-t1", f"-c{args.connections}",
            f"-d{args.duration}s", "--latency", "--timeout", "5s"]
    if new_conn:
        argv += ["-H", "Connection: close"]
    argv.append(f"http://127.0.0.1:{nginx.port_c}{OBJECT_PATH}")
    origin_before = count_lines(nginx.origin_log)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=args.duration + 60,
                       preexec_fn=_child_setup)
    if r.returncode != 0:
        raise Failed(f"wrk failed (exit {r.returncode}): {r.stderr.strip() or r.stdout.strip()}")
    res = parse_wrk(r.stdout)
    if not res["requests_per_s"]:
        raise Failed(f"no Requests/sec in wrk's output:\n{r.stdout}")
    res["command"] = argv
    res["origin_requests_during_run"] = count_lines(nginx.origin_log) - origin_before
    res["cache_status_after"] = nginx.cache_status()
    res["cache_hit"] = (res["origin_requests_during_run"] == 0
                        and res["cache_status_after"] == "HIT" and res["non_2xx_3xx"] == 0)
    res["output"] = r.stdout
    return res


def nginx_reference(tmp, args):
    for prog in (NGINX, WRK, TASKSET):
        if shutil.which(prog) is None:
            hint = " (apt-get install wrk, or tools/install-deps.sh)" if prog == WRK else ""
            raise Failed(f"{prog} is not installed{hint}")
    if args.nginx_cpu >= (os.cpu_count() or 1) or args.wrk_cpu >= (os.cpu_count() or 1):
        raise Failed(f"CPUs {args.wrk_cpu} (wrk) and {args.nginx_cpu} (nginx) needed, "
                     f"this machine has {os.cpu_count()}")
    ng = Nginx(os.path.join(tmp, "nginx"), args.nginx_cpu)
    doc = {"version": ng.version(), "cpu": args.nginx_cpu, "wrk_cpu": args.wrk_cpu,
           "worker_processes": 1, "ports": {"origin": ng.port_o, "cache": ng.port_c}}
    try:
        ng.start()
        doc["worker_pids"] = ng.worker_pids()
        doc["other_busy_processes"] = busy_processes({os.getpid(), ng.proc.pid}
                                                     | set(ng.worker_pids()))
        for p in doc["other_busy_processes"]:
            log(f"warning: {p['comm']} (pid {p['pid']}) uses {p['cpu']:.0%} of a CPU: "
                "the figures are lower than on an idle machine")
        log(f"nginx {doc['version']} on 127.0.0.1:{ng.port_c} (origin :{ng.port_o}), "
            f"worker on CPU {args.nginx_cpu}; wrk on CPU {args.wrk_cpu}")
        doc["warmup"] = ng.warm()
        for key, new_conn in (("keep_alive", False), ("new_connection", True)):
            log(f"wrk {args.duration} s, {args.connections} connections, "
                f"{'new connection per request' if new_conn else 'keep-alive'}")
            doc[key] = run_wrk(ng, args, new_conn)
            if doc[key]["non_2xx_3xx"]:
                log(f"warning: {doc[key]['non_2xx_3xx']} non-2xx/3xx responses")
            if any(doc[key]["socket_errors"].values()):
                log(f"warning: socket errors {doc[key]['socket_errors']}")
        doc["cache_hit"] = all(doc[k]["cache_hit"] for k in ("keep_alive", "new_connection"))
        if not doc["cache_hit"]:
            raise Failed("nginx's cache did not answer every request: "
                         + "; ".join(f"{k}: origin got {doc[k]['origin_requests_during_run']}, "
                                     f"status after {doc[k]['cache_status_after']}, "
                                     f"non-2xx {doc[k]['non_2xx_3xx']}"
                                     for k in ("keep_alive", "new_connection")))
    finally:
        ng.stop()
    doc["error_log"] = ng.errors() if os.path.exists(ng.error_log) and \
        os.path.getsize(ng.error_log) else ""
    return doc


# ---- shortpath (tcp_bench) -----------------------------------------------------------------------

def _find_key(obj, keys):
    """The value of the first of keys found in obj, preferring the top level, then nested dicts
    (breadth first: "cache" / "endpoint" before deeper ones)."""
    queue = [obj]
    while queue:
        level, queue = queue, []
        for d in level:
            for k in keys:
                if isinstance(d.get(k), (int, float)) and not isinstance(d.get(k), bool):
                    return float(d[k])
        for d in level:
            queue += [v for v in d.values() if isinstance(v, dict)]
    return None


def _find_re(text, patterns):
    for p in patterns:
        m = re.search(p, text, re.I)
        if m:
            try:
                return float(m.group(1).replace(",", ""))
            except ValueError:
                pass
    return None


def parse_tcp_bench(out):
    """GETs/s and cycles per GET from tcp_bench's output: its last JSON line if any (the JSON's
    endpoint figures are per worker), else its text lines ("transactions/s: N", "N txn/s")."""
    doc = None
    for line in reversed(out.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                doc = json.loads(line)
                break
            except json.JSONDecodeError:
                continue
    res = {}
    if doc is not None:
        res["gets_per_s"] = _find_key(doc, RATE_KEYS)
        res["cycles_per_get"] = _find_key(doc, CYCLE_KEYS)
        res["cycles_per_packet"] = _find_key(doc, CPP_KEYS)
        res["ok"] = doc.get("ok")
        res["json"] = doc
    if res.get("gets_per_s") is None:
        res["gets_per_s"] = _find_re(out, RATE_RES)
    if res.get("cycles_per_get") is None:
        res["cycles_per_get"] = _find_re(out, CYCLE_RES)
    return res


def tcp_bench_options(path):
    r = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=30)
    return r.stdout + r.stderr


def shortpath_figures(args):
    path = os.path.join(args.build, "tools", "bench", "tcp_bench")
    if not os.access(path, os.X_OK):
        return {"available": False, "reason": f"no {path} (build it: ninja -C {args.build})"}
    helptext = tcp_bench_options(path)
    if TCP_BENCH_CACHE_OPT not in helptext:
        return {"available": False, "reason": f"tcp_bench has no {TCP_BENCH_CACHE_OPT}"}
    doc = {"available": True, "binary": path}
    for mode, extra in TCP_BENCH_MODES:
        key = mode.replace(" ", "_").replace("-", "_")
        missing = [o for o in extra if o not in helptext]
        if missing:
            doc[key] = {"available": False, "reason": f"tcp_bench has no {' '.join(missing)}"}
            continue
        argv = [path] + extra + list(args.tcp_bench_arg)
        log(f"tcp_bench ({mode}): {' '.join(argv)}")
        r = subprocess.run(argv, capture_output=True, text=True, timeout=900,
                           preexec_fn=_child_setup)
        res = parse_tcp_bench(r.stdout)
        res.update(command=argv, exit_code=r.returncode, available=True)
        if r.returncode != 0 or not res.get("gets_per_s"):
            raise Failed(f"tcp_bench {' '.join(extra)} failed (exit {r.returncode}): "
                         f"{r.stderr.strip()[-2000:]}\n{r.stdout.strip()[-2000:]}")
        res["output"] = r.stdout
        doc[key] = res
    return doc


# ---- report --------------------------------------------------------------------------------------

MODES = (("keep-alive", "keep_alive"), ("new connection", "new_connection"))


def summarize(ng, sp):
    rows = []
    for mode, key in MODES:
        n = ng[key]
        s = sp.get(key, {}) if sp.get("available") else {}
        sp_rate = s.get("gets_per_s") if s.get("available") else None
        rows.append({"mode": mode, "nginx_req_per_s": n["requests_per_s"],
                     "nginx_p50_us": n["latency_us"].get("p50"),
                     "nginx_p99_us": n["latency_us"].get("p99"),
                     "shortpath_gets_per_s_per_worker": sp_rate,
                     "shortpath_cycles_per_get": s.get("cycles_per_get"),
                     "ratio": sp_rate / n["requests_per_s"] if sp_rate else None})
    return rows


def _fmt(v, spec, none="n/a"):
    return none if v is None else format(v, spec)


def print_report(doc):
    ng, sp = doc["nginx"], doc["shortpath"]
    print(f"cached {OBJECT_SIZE} B GETs: nginx {ng['version']} proxy_cache (1 worker on CPU "
          f"{ng['cpu']}, wrk -t1 -c{doc['config']['connections']} on CPU {ng['wrk_cpu']}, "
          f"{doc['config']['duration']} s each) vs shortpath's worker (tcp_bench, in process)")
    print(f"  {'mode':<16} {'nginx req/s':>13} {'nginx p50':>10} {'nginx p99':>10} "
          f"{'shortpath GETs/s':>17} {'cycles/GET':>10} {'ratio':>8}")
    print(f"  {'':<16} {'(1 core)':>13} {'':>10} {'':>10} {'(per worker)':>17}")
    for r in doc["rows"]:
        p50 = _fmt(r["nginx_p50_us"], ".0f")
        p99 = _fmt(r["nginx_p99_us"], ".0f")
        print(f"  {r['mode']:<16} {r['nginx_req_per_s']:>13.0f} {p50 + ' us':>10} "
              f"{p99 + ' us':>10} {_fmt(r['shortpath_gets_per_s_per_worker'], '.0f'):>17} "
              f"{_fmt(r['shortpath_cycles_per_get'], '.0f'):>10} "
              f"{_fmt(r['ratio'], '.1f') + ('x' if r['ratio'] else ''):>8}")
    if not sp.get("available"):
        print(f"shortpath figures: not available ({sp['reason']})")
    else:
        for mode, key in MODES:
            if not sp.get(key, {}).get("available"):
                print(f"shortpath {mode}: not available ({sp.get(key, {}).get('reason')})")
    cpp = [f"{mode} {sp[key]['cycles_per_packet']:.0f}" for mode, key in MODES
           if sp.get(key, {}).get("cycles_per_packet")]
    if cpp:
        print(f"shortpath cycles per packet, frames in + out (hit path): {', '.join(cpp)}")
    print(f"nginx cache: warm-up {' -> '.join(ng['warmup'])}; origin requests during the runs: "
          f"{ng['keep_alive']['origin_requests_during_run']} (keep-alive), "
          f"{ng['new_connection']['origin_requests_during_run']} (new connection)")
    for p in ng.get("other_busy_processes", []):
        print(f"noise: {p['comm']} (pid {p['pid']}) used {p['cpu']:.0%} of a CPU while this ran")
    for mode, key in MODES:
        e = ng[key]
        bad = {k: v for k, v in e["socket_errors"].items() if v}
        if bad or e["non_2xx_3xx"]:
            print(f"nginx {mode}: socket errors {bad}, non-2xx/3xx {e['non_2xx_3xx']}")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", type=int, default=5, metavar="S",
                   help="seconds of each wrk run (default 5)")
    p.add_argument("--connections", type=int, default=32, metavar="N",
                   help="wrk's connections (default 32)")
    p.add_argument("--build", default=os.environ.get("SP_BUILD_DIR", os.path.join(ROOT, "build")),
                   metavar="DIR", help="meson build directory with tools/bench/tcp_bench "
                   "(default build)")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.add_argument("--nginx-only", action="store_true",
                   help="the nginx reference only (no tcp_bench)")
    p.add_argument("--tcp-bench-arg", action="append", default=[], metavar="ARG",
                   help="one more argument for tcp_bench (repeatable), "
                   "e.g. --tcp-bench-arg=-n1000000")
    p.add_argument("--nginx-cpu", type=int, default=NGINX_CPU, help=argparse.SUPPRESS)
    p.add_argument("--wrk-cpu", type=int, default=WRK_CPU, help=argparse.SUPPRESS)
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    a = p.parse_args(argv)
    if a.duration < 1 or a.connections < 1:
        p.error("--duration and --connections must be at least 1")
    return a


def main(argv=None):
    args = parse_args(argv)
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    tmpdir = tempfile.mkdtemp(prefix="cache-bench-")
    try:
        ng = nginx_reference(tmpdir, args)
        if args.nginx_only:
            sp = {"available": False, "reason": "--nginx-only"}
        else:
            sp = shortpath_figures(args)
        cfg = {k: v for k, v in vars(args).items() if k not in ("json", "keep")}
        doc = {"bench": "cache_bench", "ok": True, "object_bytes": OBJECT_SIZE, "config": cfg,
               "nginx": ng, "shortpath": sp, "rows": summarize(ng, sp), "tmpdir": tmpdir}
        if args.json:
            print(json.dumps(doc, indent=2))
        else:
            print_report(doc)
        return 0
    except Failed as e:
        log(f"FAIL: {e}")
        if args.json:
            print(json.dumps({"bench": "cache_bench", "ok": False, "error": str(e),
                              "tmpdir": tmpdir}))
        return 1
    except Interrupted as e:
        signum = e.args[0]
        log(f"interrupted ({signal.Signals(signum).name}): cleaning up")
        return 128 + signum
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # no second interrupt in the middle of it
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if args.keep:
            log(f"kept {tmpdir}")
        else:
            shutil.rmtree(tmpdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
