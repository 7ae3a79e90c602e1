#!/usr/bin/python3
"""Starts, stops, shows the lab object service: Redis, nginx storage nodes and their node agents,
storage manager, S3 front ends, and HAProxy in front of them on the service endpoint.

    svcctl.py up     --base DIR --port-base P [--host 127.0.0.1] [--nodes 3] [--frontends 2]
                     [--replicas 2] [--region us-east-1] [--redis-port 0]
                     [--restricted-bucket restricted]
    svcctl.py up     --base DIR --layout netns [--replicas 2] [--region us-east-1]
                     [--restricted-bucket restricted]
    svcctl.py status --base DIR
    svcctl.py down   --base DIR [--purge]

--layout loopback (default): everything on --host; storage manager on port P, front ends P+1..P+F,
storage nodes P+F+1..P+F+N, HAProxy (the endpoint) P+F+N+1, node agents P+F+N+2..P+F+2N+1; Redis on
the unix socket DIR/redis.sock (and --redis-port if given).
--layout netns: each service host in its own namespace of tools/lab/labnet.sh (which must be up):
HAProxy on the VIP 10.79.0.10:80 in sp-lb, front ends sp-fe1/sp-fe2 (10.78.0.21/.22:8080), storage
manager sp-mgr (10.78.0.30:8000), Redis sp-sdb (10.78.0.40:6379, and DIR/redis.sock for the host),
storage nodes sp-node1..3 (10.78.0.51..53:80), each node's agent on 127.0.0.1:8081 in its
namespace. The host reaches them over the management path.
A storage node answers the node manager's direct requests (key id nodemgr) as the service would:
GET/HEAD from the object's file and metadata sidecar (storage_node_direct.js), PUT/DELETE through
its node agent (node_agent.py).
`up` writes DIR/env and DIR/env.json (addresses, credentials), DIR/aws-config (path-style) and
DIR/s3cfg: `. DIR/env; aws --endpoint-url $SVC_ENDPOINT s3api list-buckets; s3cmd -c DIR/s3cfg ls`
It does nothing when all is running, restarts everything when a part is not, and cleans up if a
part fails to start.
`down` stops what the pid files in DIR/run name (also after a partial `up`); nothing running is
fine. State (Redis dump, objects, keys, client credential) stays for the next `up`, unless --purge.

DIR/logs: lb.access.log (HAProxy), fe<i>.log, manager.log, node<i>.access.log, node<i>.agent.log
          (the access logs, one line per request, all carrying the request id the client gets as
          x-amz-request-id); *.out, node<i>.error, redis.log (diagnostics)
DIR/keys: node-keys (what storage nodes trust: `frontend <hex>`, `nodemgr <hex>`, `nodeagent
          <hex>`), frontend.key, nodemgr.key, nodeagent.key (one secret each), client (the S3 test
          credential: access key, secret; every bucket), restricted (a second client credential
          allowed only the bucket --restricted-bucket, default `restricted`: the service answers
          AccessDenied for any other; env RESTRICTED_ACCESS_KEY_ID, RESTRICTED_SECRET_ACCESS_KEY,
          RESTRICTED_BUCKET)
"""
import argparse
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import string
import subprocess
import sys
import time

import redis

HERE = os.path.dirname(os.path.abspath(__file__))
START_TIMEOUT = 10.0
STOP_TIMEOUT = 5.0


def log(msg):
    print(f"svcctl: {msg}", flush=True)


# ---- processes -------------------------------------------------------------------------------
def proc_alive(pid, marker):
    """pid runs (is no zombie) and its command line contains marker (a reused pid is not ours)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
    except (OSError, IndexError):
        return False
    return state != "Z" and marker in cmdline


def children(pid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


def stop_pid(pid, marker):
    """SIGTERM, SIGKILL after STOP_TIMEOUT: the process and its children (nginx workers)."""
    if not proc_alive(pid, marker):
        return False
    group = [pid] + children(pid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in group:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline and any(proc_alive(p, "") for p in group):
            time.sleep(0.05)
        if not any(proc_alive(p, "") for p in group):
            break
    return True


def wait_port(host, port, alive, what, logfile):
    """Until host:port accepts a connection; alive() false means the program has exited."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"{what} exited during start-up; {logfile}:\n{tail(logfile)}")
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} does not accept connections on {host}:{port} after "
                       f"{START_TIMEOUT:.0f} s")


def wait_port_in(ns, host, port, alive, what, logfile):
    """wait_port for an address inside network namespace ns."""
    probe = f"import socket; socket.create_connection(({host!r}, {port}), timeout=0.5).close()"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"{what} exited during start-up; {logfile}:\n{tail(logfile)}")
        probed = subprocess.run(in_ns(ns, [sys.executable, "-c", probe]), capture_output=True)
        if probed.returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} does not accept connections on {host}:{port} in {ns} after "
                       f"{START_TIMEOUT:.0f} s")


def tail(path, n=20):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return "(no log)"


# ---- layout ----------------------------------------------------------------------------------
class Lab:
    def __init__(self, base):
        self.base = os.path.abspath(base)
        self.run = os.path.join(self.base, "run")
        self.logs = os.path.join(self.base, "logs")
        self.keys = os.path.join(self.base, "keys")
        self.sock = os.path.join(self.base, "redis.sock")
        self.env_json = os.path.join(self.base, "env.json")
        self.spawned = []  # Popen of what this run started: surely ours, even before its exec

    def pidfile(self, name):
        return os.path.join(self.run, name + ".pid")

    def record(self, name, pid, marker):
        with open(self.pidfile(name), "w") as f:
            f.write(f"{pid} {marker}\n")

    def recorded(self):
        """[(name, pid, marker)] of DIR/run/*.pid in start order: redis, nodes, node agents,
        manager, fe, lb."""
        rank = {"redis": 0, "node": 1, "agent": 2, "manager": 3, "fe": 4, "lb": 5}
        out = []
        if os.path.isdir(self.run):
            for fn in sorted(os.listdir(self.run)):
                try:
                    pid, marker = open(os.path.join(self.run, fn)).read().split(None, 1)
                    out.append((fn[:-4], int(pid), marker.strip()))
                except (OSError, ValueError):
                    pass
        return sorted(out, key=lambda x: rank.get(x[0].rstrip("0123456789"), 9))

    def secret_file(self, name, make):
        """A secret kept in DIR/keys/name (created by make() the first time)."""
        path = os.path.join(self.keys, name)
        if not os.path.exists(path):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(make() + "\n")
        return open(path).read().strip()


def new_client_credential():
    """`<access key> <secret>`, shaped like AWS's: AKIA + 16 upper alnum, 40 base64 characters."""
    upper, b64 = string.ascii_uppercase + string.digits, string.ascii_letters + string.digits + "+/"
    ak = "AKIASP" + "".join(secrets.choice(upper) for _ in range(14))
    return ak + " " + "".join(secrets.choice(b64) for _ in range(40))


def in_ns(ns, argv):
    """argv run in network namespace ns (None: here). `ip netns exec` execs: the pid stays."""
    return ["ip", "netns", "exec", ns, *argv] if ns else argv


def spawn(lab, name, argv, marker, ns=None, stdout=None):
    out = os.path.join(lab.logs, name + ".out")
    with open(out, "ab") as f, open(stdout or os.devnull, "ab") as so:
        p = subprocess.Popen(in_ns(ns, argv), stdin=subprocess.DEVNULL,
                             stdout=so if stdout else f, stderr=f, start_new_session=True,
                             close_fds=True)
    lab.spawned.append(p)
    lab.record(name, p.pid, marker)
    return p, out


# ---- placement -------------------------------------------------------------------------------
NETNS_VIP = "10.79.0.10"
NETNS_AGENT_PORT = 8081


def placement(a):
    """{component: (netns or None, address, port)} for redis, manager, fe<i>, node<i>, agent<i>
    (node<i>'s agent, in its namespace), lb."""
    if a.layout == "netns":
        place = {"redis": ("sp-sdb", "10.78.0.40", 6379), "manager": ("sp-mgr", "10.78.0.30", 8000),
                 "lb": ("sp-lb", NETNS_VIP, 80)}
        place.update({f"fe{i}": (f"sp-fe{i}", f"10.78.0.{20 + i}", 8080) for i in (1, 2)})
        place.update({f"node{i}": (f"sp-node{i}", f"10.78.0.{50 + i}", 80) for i in (1, 2, 3)})
        place.update({f"agent{i}": (f"sp-node{i}", "127.0.0.1", NETNS_AGENT_PORT)
                      for i in (1, 2, 3)})
        missing = [ns for ns, _, _ in place.values() if not os.path.exists(f"/run/netns/{ns}")]
        if missing:
            raise RuntimeError(f"--layout netns: namespace(s) {', '.join(sorted(set(missing)))} "
                               "missing: run tools/lab/labnet.sh up first")
        return place
    if a.port_base is None:
        raise RuntimeError("--port-base is required with --layout loopback")
    h, P, F, N = a.host, a.port_base, a.frontends, a.nodes
    place = {"redis": (None, h, a.redis_port), "manager": (None, h, P),
             "lb": (None, h, P + F + N + 1)}
    place.update({f"fe{i}": (None, h, P + i) for i in range(1, F + 1)})
    place.update({f"node{i}": (None, h, P + F + i) for i in range(1, N + 1)})
    place.update({f"agent{i}": (None, h, P + F + N + 1 + i) for i in range(1, N + 1)})
    return place


def url(place, name):
    _, host, port = place[name]
    return f"http://{host}" + ("" if port == 80 else f":{port}")


CASE_ADJUST = ("Server", "Date", "Content-Type", "Content-Length", "Last-Modified", "Connection",
               "ETag", "Accept-Ranges", "Content-Range", "Location")

HAPROXY = """\
# HAProxy on the lab object service's endpoint (from tools/lab/service/svcctl.py)
global
    log stdout format raw local0 info
    maxconn 2000
    # header names as the storage nodes' nginx writes them (HAProxy writes them in lower case):
    # an answer a storage node gives the node manager directly must not differ by their case
{case_adjust}

defaults
    mode http
    log global
    timeout connect 5s
    timeout client 120s
    timeout server 120s
    timeout http-request 30s
    timeout http-keep-alive 30s
    option dontlognull

frontend s3
    bind {listen}
    option h1-case-adjust-bogus-client
    # the front end's x-amz-request-id names this request in every tier's access log
    capture response header x-amz-request-id len 32
    log-format "%[date,utime(%Y-%m-%dT%H:%M:%S)] lb req=%[capture.res.hdr(0)] client=%ci:%cp method=%HM uri=%{{+Q}}HU status=%ST bytes_in=%U bytes_out=%B backend=%b server=%s tt_ms=%Tt"
    # a front end that answers before reading a body the client holds back (Expect:
    # 100-continue and an early error) closes; the client's connection must close too, or its
    # next request would be read as that body
    http-response set-var(txn.close) bool(true) if {{ res.hdr(x-sp-close) -m found }}
    http-response del-header x-sp-close
    http-after-response set-header Connection close if {{ var(txn.close) -m bool }}
    default_backend frontends

backend frontends
    balance roundrobin
    option forwardfor
{servers}
"""


# ---- commands --------------------------------------------------------------------------------
def start(lab, a):
    for d in (lab.run, lab.logs, lab.keys, os.path.join(lab.base, "redis")):
        os.makedirs(d, exist_ok=True)
    place = placement(a)
    fe_names = sorted((n for n in place if n.startswith("fe")), key=lambda n: int(n[2:]))
    node_names = sorted((n for n in place if n.startswith("node")), key=lambda n: int(n[4:]))
    fe_secret = lab.secret_file("frontend.key", lambda: secrets.token_hex(32))
    nm_secret = lab.secret_file("nodemgr.key", lambda: secrets.token_hex(32))
    na_secret = lab.secret_file("nodeagent.key", lambda: secrets.token_hex(32))
    node_keys = os.path.join(lab.keys, "node-keys")
    with open(node_keys, "w") as f:
        f.write(f"frontend {fe_secret}\nnodemgr {nm_secret}\nnodeagent {na_secret}\n")
    ak, sk = lab.secret_file("client", new_client_credential).split()
    rak, rsk = lab.secret_file("restricted", new_client_credential).split()

    # Redis: private; the unix socket DIR/redis.sock for this host's management, TCP for the
    # service hosts in the netns layout; dumps on shutdown so state survives down/up
    rns, rhost, rport = place["redis"]
    conf = os.path.join(lab.base, "redis", "redis.conf")
    with open(conf, "w") as f:
        f.write(f"port {rport}\nbind {rhost}\nprotected-mode no\nunixsocket {lab.sock}\n"
                f"unixsocketperm 700\ndir {os.path.join(lab.base, 'redis')}\nsave 3600 1\n"
                f"appendonly no\ndaemonize no\nlogfile {os.path.join(lab.logs, 'redis.log')}\n")
    proc, _ = spawn(lab, "redis", ["redis-server", conf], "redis-server", rns)
    r = redis.Redis(unix_socket_path=lab.sock, decode_responses=True)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        try:
            r.ping()
            break
        except redis.RedisError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start; {lab.logs}/redis.log:\n"
                                   f"{tail(os.path.join(lab.logs, 'redis.log'))}") from None
            time.sleep(0.05)
    redis_url = f"redis://{rhost}:{rport}/0" if rns else f"unix://{lab.sock}"
    r.hset(f"svc:cred:{{{ak}}}", mapping={"secret": sk, "owner": "lab"})
    r.hset(f"svc:cred:{{{rak}}}", mapping={"secret": rsk, "owner": "restricted",
                                           "buckets": a.restricted_bucket})

    # storage nodes: one nginx each, and its node agent (in the same namespace)
    manager = url(place, "manager")
    nodes, agents = {}, []
    for name in node_names:
        ns, host, port = place[name]
        agent = "agent" + name[4:]
        _, ahost, aport = place[agent]
        prefix = os.path.join(lab.base, name)
        spool = os.path.join(prefix, "data", "tmp", "agent")
        os.makedirs(spool, exist_ok=True)
        proc, out = spawn(lab, agent, [
            os.path.join(HERE, "node_agent.py"), "--listen", f"{ahost}:{aport}", "--manager",
            manager, "--node-key-id", "nodeagent", "--node-key-file",
            os.path.join(lab.keys, "nodeagent.key"), "--name", name, "--spool-dir", spool,
            "--log", os.path.join(lab.logs, f"{name}.agent.log")], "node_agent.py", ns)
        agents.append((agent, ns, ahost, aport, proc, out))
        conf = os.path.join(prefix, "nginx.conf")
        access = os.path.join(lab.logs, f"{name}.access.log")
        subprocess.run([os.path.join(HERE, "storage_node.py"), "render", "--name", name,
                        "--listen", f"{host}:{port}", "--data", os.path.join(prefix, "data"),
                        "--keys", node_keys, "--log", access, "--agent", f"{ahost}:{aport}",
                        "--error-log", os.path.join(lab.logs, f"{name}.error"), "--out", conf],
                       check=True)
        res = subprocess.run(in_ns(ns, ["nginx", "-p", prefix, "-c", conf]), capture_output=True,
                             text=True)
        if res.returncode != 0:
            raise RuntimeError(f"nginx for {name} failed: {res.stderr.strip()}")
        with open(os.path.join(prefix, "nginx.pid")) as f:
            lab.record(name, int(f.read()), f"nginx -p {prefix}")
        nodes[name] = url(place, name)

    # storage manager and front ends
    mns, mhost, mport = place["manager"]
    mproc, mout = spawn(lab, "manager", [
        os.path.join(HERE, "storage_manager.py"), "--listen", f"{mhost}:{mport}", "--redis",
        redis_url, "--nodes", ",".join(f"{n}={u}" for n, u in nodes.items()),
        "--replicas", str(a.replicas), "--log", os.path.join(lab.logs, "manager.log")],
        "storage_manager.py", mns)
    fes = []
    for name in fe_names:
        ns, host, port = place[name]
        proc, out = spawn(lab, name, [
            os.path.join(HERE, "s3front.py"), "--listen", f"{host}:{port}", "--redis",
            redis_url, "--manager", manager, "--node-key-id", "frontend", "--node-key-file",
            os.path.join(lab.keys, "frontend.key"), "--region", a.region, "--name", name,
            "--log", os.path.join(lab.logs, f"{name}.log")], "s3front.py", ns)
        fes.append((name, host, port, proc, out))
    # (a spawned program is checked through its Popen: before exec, its command line is ours)
    wait_port(mhost, mport, lambda: mproc.poll() is None, "storage manager", mout)
    for name, host, port, proc, out in fes:
        wait_port(host, port, lambda: proc.poll() is None, f"front end {name}", out)
    for name in node_names:
        with open(os.path.join(lab.base, name, "nginx.pid")) as f:
            pid = int(f.read())
        _, host, port = place[name]
        wait_port(host, port, lambda: proc_alive(pid, "nginx"), f"storage node {name}",
                  os.path.join(lab.logs, f"{name}.error"))
    for agent, ns, host, port, proc, out in agents:
        if ns:  # its loopback address is in the node's namespace: ask from there
            wait_port_in(ns, host, port, lambda: proc.poll() is None, f"node agent {agent}", out)
        else:
            wait_port(host, port, lambda: proc.poll() is None, f"node agent {agent}", out)

    # HAProxy on the endpoint, last: its first health checks find every front end up
    lns, lhost, lport = place["lb"]
    conf = os.path.join(lab.base, "haproxy.cfg")
    with open(conf, "w") as f:
        f.write(HAPROXY.format(listen=f"{lhost}:{lport}", case_adjust="\n".join(
            f"    h1-case-adjust {h.lower()} {h}" for h in CASE_ADJUST), servers="".join(
            f"    server {n} {h}:{p} check inter 2s\n" for n, h, p, _, _ in fes)))
    res = subprocess.run(["haproxy", "-c", "-q", "-f", conf], capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"haproxy -c {conf}: {res.stdout}{res.stderr}".strip())
    lproc, lout = spawn(lab, "lb", ["haproxy", "-db", "-f", conf], f"haproxy -db -f {conf}", lns,
                        stdout=os.path.join(lab.logs, "lb.access.log"))
    wait_port(lhost, lport, lambda: lproc.poll() is None, "HAProxy", lout)
    endpoint = url(place, "lb")
    hostport = endpoint.split("//", 1)[1]

    env = {
        "SVC_BASE": lab.base, "SVC_LAYOUT": a.layout, "SVC_REGION": a.region,
        "SVC_REDIS_URL": redis_url, "SVC_REDIS_SOCKET": lab.sock,
        "SVC_MANAGER": manager, "SVC_ENDPOINT": endpoint,
        "SVC_FRONTENDS": ",".join(url(place, n) for n in fe_names),
        "SVC_NODES": ",".join(f"{n}={u}" for n, u in nodes.items()),
        # (in the netns layout, each in its node's namespace)
        "SVC_NODE_AGENTS": ",".join(f"node{a[0][5:]}=http://{a[2]}:{a[3]}" for a in agents),
        "SVC_NAMESPACES": ",".join(f"{n}={place[n][0]}" for n in place if place[n][0]),
        "SVC_REPLICAS": str(a.replicas), "SVC_NODE_KEYS": node_keys,
        "SVC_FRONTEND_KEY_ID": "frontend", "SVC_NODEMGR_KEY_ID": "nodemgr",
        "SVC_NODEMGR_KEY_FILE": os.path.join(lab.keys, "nodemgr.key"),
        "SVC_NODEAGENT_KEY_ID": "nodeagent",
        "SVC_LOGS": lab.logs,
        "AWS_ACCESS_KEY_ID": ak, "AWS_SECRET_ACCESS_KEY": sk, "AWS_DEFAULT_REGION": a.region,
        "AWS_CONFIG_FILE": os.path.join(lab.base, "aws-config"),
        "RESTRICTED_ACCESS_KEY_ID": rak, "RESTRICTED_SECRET_ACCESS_KEY": rsk,
        "RESTRICTED_BUCKET": a.restricted_bucket,
    }
    with open(env["AWS_CONFIG_FILE"], "w") as f:
        f.write(f"[default]\nregion = {a.region}\ns3 =\n    addressing_style = path\n")
    with open(os.path.join(lab.base, "s3cfg"), "w") as f:
        f.write(f"[default]\naccess_key = {ak}\nsecret_key = {sk}\nhost_base = {hostport}\n"
                f"host_bucket = {hostport}\nbucket_location = {a.region}\nuse_https = False\n"
                "signature_v4 = True\n")
    with open(os.path.join(lab.base, "env"), "w") as f:
        f.write("# lab object service (tools/lab/service/svcctl.py up): `. this-file` to use it\n")
        f.writelines(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
    with open(lab.env_json, "w") as f:
        json.dump(env, f, indent=1)


def cmd_up(a):
    lab = Lab(a.base)
    procs = lab.recorded()
    if os.path.exists(lab.env_json) and procs and all(proc_alive(p, m) for _, p, m in procs):
        log(f"already up ({lab.base}/env)")
        return 0
    stop_all(lab)
    t0 = time.monotonic()
    try:
        start(lab, a)
    except (RuntimeError, OSError, subprocess.CalledProcessError, redis.RedisError) as e:
        log(f"up failed: {e}")
        for p in lab.spawned:
            p.kill()
            p.wait()
        stop_all(lab)
        return 1
    with open(lab.env_json) as f:
        env = json.load(f)
    log(f"up in {time.monotonic() - t0:.1f} s ({a.layout}): HAProxy on {env['SVC_ENDPOINT']}, "
        f"{len(env['SVC_FRONTENDS'].split(','))} front ends, storage manager, "
        f"{len(env['SVC_NODES'].split(','))} storage nodes; . {lab.base}/env")
    return 0


def stop_all(lab):
    for path in (lab.env_json, os.path.join(lab.base, "env")):
        if os.path.exists(path):
            os.remove(path)
    stopped = []
    for name, pid, marker in reversed(lab.recorded()):  # front ends first, Redis (dumps) last
        if stop_pid(pid, marker):
            stopped.append(name)
        os.remove(lab.pidfile(name))
    return stopped


def cmd_down(a):
    lab = Lab(a.base)
    stopped = stop_all(lab)
    log(f"stopped {', '.join(stopped)}" if stopped else "nothing was running")
    if a.purge and os.path.isdir(lab.base):
        shutil.rmtree(lab.base)
    return 0


def cmd_status(a):
    lab = Lab(a.base)
    procs = lab.recorded()
    up = 0
    for name, pid, marker in procs:
        alive = proc_alive(pid, marker)
        up += alive
        print(f"{name:10} pid {pid:<8} {'running' if alive else 'DEAD'}")
    if os.path.exists(lab.env_json):
        with open(lab.env_json) as f:
            env = json.load(f)
        print(f"endpoint (HAProxy) {env['SVC_ENDPOINT']}  front ends {env['SVC_FRONTENDS']}")
        print(f"manager {env['SVC_MANAGER']}  nodes {env['SVC_NODES']}")
        print(f"redis {env['SVC_REDIS_URL']}  logs {env['SVC_LOGS']}  env {lab.base}/env")
    ok = procs and up == len(procs) and os.path.exists(lab.env_json)
    print("status: up" if ok else "status: down" if not up else "status: DEGRADED")
    return 0 if ok else 3


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("up", help="start everything (nothing if already running)")
    u.add_argument("--base", required=True, help="state directory")
    u.add_argument("--layout", choices=("loopback", "netns"), default="loopback")
    u.add_argument("--port-base", type=int, help="first port (loopback layout)")
    u.add_argument("--host", default="127.0.0.1")
    u.add_argument("--nodes", type=int, default=3)
    u.add_argument("--frontends", type=int, default=2)
    u.add_argument("--replicas", type=int, default=2)
    u.add_argument("--region", default="us-east-1")
    u.add_argument("--redis-port", type=int, default=0,
                   help="Redis also listens on this TCP port (default 0: the socket only)")
    u.add_argument("--restricted-bucket", default="restricted",
                   help="the one bucket the second client credential may use")
    d = sub.add_parser("down", help="stop everything the pid files name")
    d.add_argument("--base", required=True)
    d.add_argument("--purge", action="store_true", help="also remove DIR (state, logs)")
    s = sub.add_parser("status", help="what runs; exit 0 iff all of it")
    s.add_argument("--base", required=True)
    a = p.parse_args()
    return {"up": cmd_up, "down": cmd_down, "status": cmd_status}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
