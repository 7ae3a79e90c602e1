#!/usr/bin/python3
"""Starts, stops, shows the lab object service: Redis, nginx storage nodes, manager, S3 front ends.

    svcctl.py up     --base DIR --port-base P [--host 127.0.0.1] [--nodes 3] [--frontends 2]
                     [--replicas 2] [--region us-east-1] [--redis-port 0]
    svcctl.py status --base DIR
    svcctl.py down   --base DIR [--purge]

Ports on --host: storage manager P, front ends P+1..P+F, storage nodes P+F+1..P+F+N; Redis on the
unix socket DIR/redis.sock (and --redis-port if given).
`up` writes DIR/env and DIR/env.json (addresses, credentials), DIR/aws-config (path-style) and
DIR/s3cfg: `. DIR/env; aws --endpoint-url $SVC_ENDPOINT s3api list-buckets; s3cmd -c DIR/s3cfg ls`
It does nothing when all is running, restarts everything when a part is not, and cleans up if a
part fails to start.
`down` stops what the pid files in DIR/run name (also after a partial `up`); nothing running is
fine. State (Redis dump, objects, keys, client credential) stays for the next `up`, unless --purge.

DIR/logs: manager.log, fe<i>.log, node<i>.access.log (the access logs); *.out, node<i>.error,
          redis.log (diagnostics)
DIR/keys: node-keys (what storage nodes trust: `frontend <hex>`, `nodemgr <hex>`), frontend.key,
          nodemgr.key (one secret each), client (the S3 test credential: access key, secret)
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
        """[(name, pid, marker)] of DIR/run/*.pid in start order: redis, nodes, manager, fe."""
        rank = {"redis": 0, "node": 1, "manager": 2, "fe": 3}
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


def spawn(lab, name, argv, marker):
    out = os.path.join(lab.logs, name + ".out")
    with open(out, "ab") as f:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                             start_new_session=True, close_fds=True)
    lab.spawned.append(p)
    lab.record(name, p.pid, marker)
    return p, out


# ---- commands --------------------------------------------------------------------------------
def start(lab, a):
    for d in (lab.run, lab.logs, lab.keys, os.path.join(lab.base, "redis")):
        os.makedirs(d, exist_ok=True)
    host, P, F, N = a.host, a.port_base, a.frontends, a.nodes
    fe_secret = lab.secret_file("frontend.key", lambda: secrets.token_hex(32))
    nm_secret = lab.secret_file("nodemgr.key", lambda: secrets.token_hex(32))
    node_keys = os.path.join(lab.keys, "node-keys")
    with open(node_keys, "w") as f:
        f.write(f"frontend {fe_secret}\nnodemgr {nm_secret}\n")
    ak, sk = lab.secret_file("client", new_client_credential).split()

    # Redis: private, on a unix socket; dumps on shutdown so state survives down/up
    conf = os.path.join(lab.base, "redis", "redis.conf")
    with open(conf, "w") as f:
        f.write(f"port {a.redis_port}\nbind {host}\nunixsocket {lab.sock}\nunixsocketperm 700\n"
                f"dir {os.path.join(lab.base, 'redis')}\nsave 3600 1\nappendonly no\n"
                f"daemonize no\nlogfile {os.path.join(lab.logs, 'redis.log')}\n")
    proc, _ = spawn(lab, "redis", ["redis-server", conf], "redis-server")
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
    redis_url = f"unix://{lab.sock}"
    r.hset(f"svc:cred:{{{ak}}}", mapping={"secret": sk, "owner": "lab"})

    # storage nodes: one nginx each
    nodes = {}
    for i in range(1, N + 1):
        name, port = f"node{i}", P + F + i
        prefix = os.path.join(lab.base, name)
        os.makedirs(prefix, exist_ok=True)
        conf = os.path.join(prefix, "nginx.conf")
        access = os.path.join(lab.logs, f"{name}.access.log")
        subprocess.run([os.path.join(HERE, "storage_node.py"), "render", "--name", name,
                        "--listen", f"{host}:{port}", "--data", os.path.join(prefix, "data"),
                        "--keys", node_keys, "--log", access,
                        "--error-log", os.path.join(lab.logs, f"{name}.error"), "--out", conf],
                       check=True)
        res = subprocess.run(["nginx", "-p", prefix, "-c", conf], capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"nginx for {name} failed: {res.stderr.strip()}")
        with open(os.path.join(prefix, "nginx.pid")) as f:
            lab.record(name, int(f.read()), f"nginx -p {prefix}")
        nodes[name] = f"http://{host}:{port}"

    # storage manager and front ends
    manager = f"http://{host}:{P}"
    mproc, mout = spawn(lab, "manager", [
        os.path.join(HERE, "storage_manager.py"), "--listen", f"{host}:{P}", "--redis",
        redis_url, "--nodes", ",".join(f"{n}={u}" for n, u in nodes.items()),
        "--replicas", str(a.replicas), "--log", os.path.join(lab.logs, "manager.log")],
        "storage_manager.py")
    fes = []
    for i in range(1, F + 1):
        port = P + i
        proc, out = spawn(lab, f"fe{i}", [
            os.path.join(HERE, "s3front.py"), "--listen", f"{host}:{port}", "--redis",
            redis_url, "--manager", manager, "--node-key-id", "frontend", "--node-key-file",
            os.path.join(lab.keys, "frontend.key"), "--region", a.region, "--name", f"fe{i}",
            "--log", os.path.join(lab.logs, f"fe{i}.log")], "s3front.py")
        fes.append((f"fe{i}", port, proc, out))
    # (a spawned program is checked through its Popen: before exec, its command line is ours)
    wait_port(host, P, lambda: mproc.poll() is None, "storage manager", mout)
    for name, port, proc, out in fes:
        wait_port(host, port, lambda: proc.poll() is None, f"front end {name}", out)
    for i, name in enumerate(nodes, 1):
        with open(os.path.join(lab.base, name, "nginx.pid")) as f:
            pid = int(f.read())
        wait_port(host, P + F + i, lambda: proc_alive(pid, "nginx"), f"storage node {name}",
                  os.path.join(lab.logs, f"{name}.error"))

    env = {
        "SVC_BASE": lab.base, "SVC_HOST": host, "SVC_REGION": a.region,
        "SVC_REDIS_URL": redis_url, "SVC_REDIS_SOCKET": lab.sock,
        "SVC_MANAGER": manager, "SVC_ENDPOINT": f"http://{host}:{P + 1}",
        "SVC_FRONTENDS": ",".join(f"http://{host}:{port}" for _, port, _, _ in fes),
        "SVC_NODES": ",".join(f"{n}={u}" for n, u in nodes.items()),
        "SVC_REPLICAS": str(a.replicas), "SVC_NODE_KEYS": node_keys,
        "SVC_FRONTEND_KEY_ID": "frontend", "SVC_NODEMGR_KEY_ID": "nodemgr",
        "SVC_NODEMGR_KEY_FILE": os.path.join(lab.keys, "nodemgr.key"),
        "SVC_LOGS": lab.logs,
        "AWS_ACCESS_KEY_ID": ak, "AWS_SECRET_ACCESS_KEY": sk, "AWS_DEFAULT_REGION": a.region,
        "AWS_CONFIG_FILE": os.path.join(lab.base, "aws-config"),
    }
    with open(env["AWS_CONFIG_FILE"], "w") as f:
        f.write(f"[default]\nregion = {a.region}\ns3 =\n    addressing_style = path\n")
    with open(os.path.join(lab.base, "s3cfg"), "w") as f:
        f.write(f"[default]\naccess_key = {ak}\nsecret_key = {sk}\nhost_base = {host}:{P + 1}\n"
                f"host_bucket = {host}:{P + 1}\nbucket_location = {a.region}\nuse_https = False\n"
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
    log(f"up in {time.monotonic() - t0:.1f} s: {a.nodes} storage nodes, storage manager, "
        f"{a.frontends} front ends; . {lab.base}/env")
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
        print(f"endpoint {env['SVC_ENDPOINT']}  front ends {env['SVC_FRONTENDS']}")
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
    u.add_argument("--port-base", type=int, required=True)
    u.add_argument("--host", default="127.0.0.1")
    u.add_argument("--nodes", type=int, default=3)
    u.add_argument("--frontends", type=int, default=2)
    u.add_argument("--replicas", type=int, default=2)
    u.add_argument("--region", default="us-east-1")
    u.add_argument("--redis-port", type=int, default=0,
                   help="Redis also listens on this TCP port (default 0: the socket only)")
    d = sub.add_parser("down", help="stop everything the pid files name")
    d.add_argument("--base", required=True)
    d.add_argument("--purge", action="store_true", help="also remove DIR (state, logs)")
    s = sub.add_parser("status", help="what runs; exit 0 iff all of it")
    s.add_argument("--base", required=True)
    a = p.parse_args()
    return {"up": cmd_up, "down": cmd_down, "status": cmd_status}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
