#!/usr/bin/python3
"""Storage manager of the lab object service: metadata in Redis, consistent-hash placement, locate.

    storage_manager.py --listen ADDR:PORT --redis URL --nodes name=http://addr:port,...
                       --replicas N --log FILE

Non-public HTTP JSON API (for front ends and shortpath's node manager; clients never see it):
  GET  /locate?bucket=B&key=K  where an object lives: {"bucket", "key", "nodes": [node base URLs],
                               "node_names", "urls": [object URLs], "path", "etag", "size",
                               "last_modified", "content_type", "meta"};
                               404 {"error": "NoSuchKey" | "NoSuchBucket"}
  POST /locate/batch           {"objects": [{"bucket", "key"}, ...]}
                               -> {"results": [a locate answer, or {"bucket", "key", "error"}]}
  GET  /place?bucket=B&key=K   where a new object goes (locate's fields without metadata)
  POST /commit                 {"bucket", "key", "etag", "size", "content_type", "last_modified",
                               "nodes" (names or base URLs), "meta"} -> {"ok": true, "stale":
                               {"nodes", "urls", "path": replicas of the previous version that
                               this one does not have}}
  POST /delete                 {"bucket", "key"} -> {"deleted", "nodes", "node_names", "urls",
                               "path"}
  PUT  /bucket/B               {"owner"} -> {"created": true} | 409 BucketAlreadyOwnedByYou/Exists
  GET  /bucket/B   DELETE /bucket/B (409 BucketNotEmpty)   GET /buckets?owner=O
  GET  /list?bucket=B&prefix=&delimiter=&start_after=&continuation=&max_keys=
                               one ListObjects page: {"contents": [{"key", "etag", "size",
                               "last_modified"}], "common_prefixes", "is_truncated",
                               "next_continuation_token", "key_count"}
  GET  /nodes   GET /health

Redis (every key of a bucket has the hash tag {B}):
  svc:buckets        set of bucket names
  svc:bucket:{B}     hash: name, owner, created
  svc:obj:{B}:KEY    hash: etag, size, content_type, last_modified, nodes (names, comma-separated),
                     meta (JSON)
  svc:keys:{B}       sorted set, scores all 0, members the keys (lexicographic listing)
"""
import argparse
import base64
import bisect
import hashlib
import json
import sys
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import redis

from svccommon import REQUEST_ID_HEADER, AccessLog, object_path

VNODES = 64  # points per storage node on the ring


class Ring:
    """Consistent hashing: each node owns VNODES points on a 64-bit ring; an object goes to the
    first `replicas` distinct nodes clockwise from the hash of bucket/key."""

    def __init__(self, nodes, replicas):
        self.nodes = dict(nodes)  # name -> base URL
        self.replicas = min(replicas, len(self.nodes))
        self.points = sorted((self._hash(f"{name}#{i}"), name)
                             for name in self.nodes for i in range(VNODES))

    @staticmethod
    def _hash(s):
        return int.from_bytes(hashlib.md5(s.encode()).digest()[:8], "big")

    def place(self, bucket, key):
        i = bisect.bisect(self.points, (self._hash(f"{bucket}/{key}"), ""))
        chosen = []
        for j in range(len(self.points)):
            name = self.points[(i + j) % len(self.points)][1]
            if name not in chosen:
                chosen.append(name)
                if len(chosen) == self.replicas:
                    break
        return chosen


class Store:
    """Bucket and object metadata in Redis."""

    def __init__(self, url, ring):
        self.r = redis.Redis.from_url(url, decode_responses=True)
        self.ring = ring

    @staticmethod
    def k_bucket(b):
        return f"svc:bucket:{{{b}}}"

    @staticmethod
    def k_obj(b, k):
        return f"svc:obj:{{{b}}}:{k}"

    @staticmethod
    def k_keys(b):
        return f"svc:keys:{{{b}}}"

    def where(self, bucket, key, names):
        path = object_path(bucket, key)
        urls = [self.ring.nodes[n] for n in names if n in self.ring.nodes]
        return {"bucket": bucket, "key": key, "path": path, "node_names": names, "nodes": urls,
                "urls": [u + path for u in urls]}

    def bucket(self, b):
        return self.r.hgetall(self.k_bucket(b)) or None

    def locate(self, b, k):
        """(answer, None) or (None, S3 error code)."""
        obj = self.r.hgetall(self.k_obj(b, k))
        if not obj:
            return None, ("NoSuchKey" if self.r.exists(self.k_bucket(b)) else "NoSuchBucket")
        out = self.where(b, k, obj["nodes"].split(",") if obj.get("nodes") else [])
        out.update(etag=obj["etag"], size=int(obj["size"]), last_modified=obj["last_modified"],
                   content_type=obj.get("content_type", "binary/octet-stream"),
                   meta=json.loads(obj.get("meta") or "{}"))
        return out, None

    def commit(self, o):
        by_url = {u: n for n, u in self.ring.nodes.items()}
        names = [by_url.get(n.rstrip("/"), n) for n in o["nodes"]]
        if any(n not in self.ring.nodes for n in names):
            raise ValueError(f"unknown node in {o['nodes']}")
        b, k = o["bucket"], o["key"]
        old = self.r.hget(self.k_obj(b, k), "nodes")
        p = self.r.pipeline(transaction=True)
        p.delete(self.k_obj(b, k))
        p.hset(self.k_obj(b, k), mapping={
            "etag": o["etag"], "size": int(o["size"]), "last_modified": o["last_modified"],
            "content_type": o.get("content_type") or "binary/octet-stream",
            "nodes": ",".join(names), "meta": json.dumps(o.get("meta") or {})})
        p.zadd(self.k_keys(b), {k: 0})
        p.execute()
        return self.where(b, k, [n for n in (old.split(",") if old else []) if n not in names])

    def delete(self, b, k):
        old = self.r.hget(self.k_obj(b, k), "nodes")
        p = self.r.pipeline(transaction=True)
        p.delete(self.k_obj(b, k))
        p.zrem(self.k_keys(b), k)
        p.execute()
        out = self.where(b, k, old.split(",") if old else [])
        out["deleted"] = old is not None
        return out

    def list(self, b, prefix="", delimiter="", start_after="", continuation="", max_keys=1000):
        """One page of keys and common prefixes, in order, as ListObjects wants it. The
        continuation token is opaque to clients: base64 of the Redis lex bound to resume from."""
        if continuation:
            lo = base64.urlsafe_b64decode(continuation.encode())
        elif start_after and start_after >= prefix:
            lo = b"(" + start_after.encode()
            i = start_after.find(delimiter, len(prefix)) if delimiter else -1
            if i >= 0:  # inside a common prefix, which sorts before it: skip the whole prefix
                lo = b"[" + start_after[:i + len(delimiter)].encode() + b"\xff"
        else:
            lo = b"[" + prefix.encode()
        contents, prefixes = [], []
        truncated = done = False
        while not (truncated or done):
            batch = self.r.zrangebylex(self.k_keys(b), lo, "+", start=0, num=max(100, max_keys + 1))
            done = not batch
            for key in batch:
                if not key.startswith(prefix):
                    done = True
                    break
                if len(contents) + len(prefixes) == max_keys:
                    truncated = True
                    break
                i = key.find(delimiter, len(prefix)) if delimiter else -1
                if i >= 0:
                    prefixes.append(key[:i + len(delimiter)])
                    # no UTF-8 byte is 0xff: this bound skips every key under the common prefix
                    lo = b"[" + prefixes[-1].encode() + b"\xff"
                    break
                contents.append(key)
                lo = b"(" + key.encode()
        p = self.r.pipeline(transaction=False)
        for key in contents:
            p.hgetall(self.k_obj(b, key))
        objs = [{"key": key, "etag": h["etag"], "size": int(h["size"]),
                 "last_modified": h["last_modified"]}
                for key, h in zip(contents, p.execute()) if h]
        return {"bucket": b, "contents": objs, "common_prefixes": prefixes,
                "is_truncated": truncated, "key_count": len(objs) + len(prefixes),
                "next_continuation_token": base64.urlsafe_b64encode(lo).decode() if truncated
                else None}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "shortpath-storage-manager"
    timeout = 120  # seconds a connection may stay silent

    def log_message(self, fmt, *args):  # the access log replaces http.server's stderr lines
        pass

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.status, self.bytes_out = status, len(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body_json(self):
        return json.loads(self.body or b"{}")

    def serve(self):
        t0 = time.monotonic()
        self.status, self.bytes_out = 500, 0
        url = urllib.parse.urlsplit(self.path)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        try:
            self.body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.route(self.command, url.path, q)
        except (ValueError, KeyError, TypeError) as e:
            self.reply(400, {"error": "BadRequest", "message": repr(e)})
        except redis.RedisError as e:
            self.reply(503, {"error": "ServiceUnavailable", "message": f"redis: {e}"})
        except Exception as e:  # noqa: BLE001 - answer, then show the bug on stderr
            traceback.print_exc()
            self.reply(500, {"error": "InternalError", "message": repr(e)})
        finally:
            self.server.log.write(req=self.headers.get(REQUEST_ID_HEADER),
                                  remote=f"{self.client_address[0]}:{self.client_address[1]}",
                                  op=url.path.split("/")[1] or "-", method=self.command,
                                  path=self.path, status=self.status, bytes_out=self.bytes_out,
                                  ms=round((time.monotonic() - t0) * 1000, 1))

    do_GET = do_PUT = do_POST = do_DELETE = serve

    def no_bucket(self, b):
        return self.reply(404, {"error": "NoSuchBucket", "bucket": b})

    def route(self, method, path, q):
        st = self.server.store
        if (method, path) == ("GET", "/health"):
            return self.reply(200, {"ok": True})
        if (method, path) == ("GET", "/nodes"):
            return self.reply(200, {"nodes": st.ring.nodes, "replicas": st.ring.replicas})
        if (method, path) == ("GET", "/locate"):
            obj, err = st.locate(q["bucket"], q["key"])
            return self.reply(200, obj) if obj else \
                self.reply(404, {"error": err, "bucket": q["bucket"], "key": q["key"]})
        if (method, path) == ("POST", "/locate/batch"):
            results = []
            for o in self.body_json()["objects"]:
                obj, err = st.locate(o["bucket"], o["key"])
                results.append(obj or {"bucket": o["bucket"], "key": o["key"], "error": err})
            return self.reply(200, {"results": results})
        if (method, path) == ("GET", "/place"):
            b, k = q["bucket"], q["key"]
            return self.reply(200, st.where(b, k, st.ring.place(b, k))) if st.bucket(b) else \
                self.no_bucket(b)
        if (method, path) == ("POST", "/commit"):
            o = self.body_json()
            return self.reply(200, {"ok": True, "stale": st.commit(o)}) if st.bucket(o["bucket"]) \
                else self.no_bucket(o["bucket"])
        if (method, path) == ("POST", "/delete"):
            o = self.body_json()
            return self.reply(200, st.delete(o["bucket"], o["key"])) if st.bucket(o["bucket"]) \
                else self.no_bucket(o["bucket"])
        if (method, path) == ("GET", "/list"):
            if not st.bucket(q["bucket"]):
                return self.no_bucket(q["bucket"])
            return self.reply(200, st.list(q["bucket"], q.get("prefix", ""), q.get("delimiter", ""),
                                           q.get("start_after", ""), q.get("continuation", ""),
                                           int(q.get("max_keys") or 1000)))
        if (method, path) == ("GET", "/buckets"):
            names = sorted(st.r.smembers("svc:buckets"))
            p = st.r.pipeline(transaction=False)
            for n in names:
                p.hgetall(st.k_bucket(n))
            owner = q.get("owner")
            return self.reply(200, {"buckets": [h for h in p.execute()
                                                if h and (not owner or h.get("owner") == owner)]})
        if path.startswith("/bucket/"):
            return self.route_bucket(method, urllib.parse.unquote(path[len("/bucket/"):]))
        return self.reply(404, {"error": "NoSuchEndpoint", "path": path})

    def route_bucket(self, method, b):
        st = self.server.store
        if method == "PUT":
            owner = self.body_json().get("owner", "")
            if st.r.hsetnx(st.k_bucket(b), "name", b):
                created = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
                st.r.hset(st.k_bucket(b), mapping={"owner": owner, "created": created})
                st.r.sadd("svc:buckets", b)
                return self.reply(200, {"created": True, "bucket": b})
            mine = st.r.hget(st.k_bucket(b), "owner") == owner
            return self.reply(409, {"error": "BucketAlreadyOwnedByYou" if mine
                                    else "BucketAlreadyExists", "bucket": b})
        if not st.bucket(b):
            return self.no_bucket(b)
        if method == "GET":
            return self.reply(200, st.bucket(b))
        if method == "DELETE":
            if st.r.zcard(st.k_keys(b)):
                return self.reply(409, {"error": "BucketNotEmpty", "bucket": b})
            st.r.delete(st.k_bucket(b))
            st.r.srem("svc:buckets", b)
            return self.reply(200, {"deleted": True, "bucket": b})
        return self.reply(405, {"error": "MethodNotAllowed"})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


def parse_nodes(s):
    nodes = {}
    for item in s.split(","):
        name, _, url = item.partition("=")
        if not name or not url.startswith("http://"):
            raise SystemExit(f"--nodes: bad entry {item!r} (want name=http://addr:port)")
        nodes[name] = url.rstrip("/")
    return nodes


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--listen", required=True, help="ADDR:PORT")
    p.add_argument("--redis", required=True,
                   help="Redis URL: unix:///path/redis.sock or redis://host:port/0")
    p.add_argument("--nodes", required=True, help="name=http://addr:port,...")
    p.add_argument("--replicas", type=int, default=2)
    p.add_argument("--log", help="access log file")
    a = p.parse_args()
    host, _, port = a.listen.rpartition(":")
    srv = Server((host, int(port)), Handler)
    srv.store = Store(a.redis, Ring(parse_nodes(a.nodes), a.replicas))
    srv.log = AccessLog(a.log, "manager")
    print(f"storage_manager: listening on {a.listen}, {len(srv.store.ring.nodes)} nodes, "
          f"{srv.store.ring.replicas} replicas", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
