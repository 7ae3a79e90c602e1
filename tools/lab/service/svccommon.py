"""Shared by the lab object service's programs: node credentials, node paths, access logs."""
import hashlib
import hmac
import threading
import time
import urllib.parse

# X-SP-Node-Auth: <key_id>:<expires_unix>:<hex hmac_sha256(key, METHOD "\n" PATH "\n" expires)>
NODE_AUTH_HEADER = "X-SP-Node-Auth"
NODE_AUTH_MAX_AHEAD = 900  # storage nodes refuse credentials expiring more than 15 min ahead
REQUEST_ID_HEADER = "X-SP-Request-Id"  # front end -> manager -> node: the access logs line up
# The Server header of every answer a client can get: a storage node's nginx can say nothing else
# (server_tokens off), so the front ends say the same and a direct answer cannot be told by it
SERVER = "nginx"


def node_auth(key_id, secret_hex, method, path, ttl=300, now=None):
    """The X-SP-Node-Auth value for METHOD on PATH (exactly as sent: percent-encoded, no query).

    The HMAC key is the secret's bytes (the hex string of the keys file, decoded)."""
    expires = int(now if now is not None else time.time()) + ttl
    msg = f"{method}\n{path}\n{expires}".encode()
    mac = hmac.new(bytes.fromhex(secret_hex), msg, hashlib.sha256).hexdigest()
    return f"{key_id}:{expires}:{mac}"


def read_node_secret(path, key_id):
    """key_id's secret from a file of `key_id secret_hex` lines, or a file of one bare secret."""
    with open(path) as f:
        lines = [ln.split() for ln in f if ln.strip() and not ln.startswith("#")]
    for parts in lines:
        if len(parts) == 2 and parts[0] == key_id:
            return parts[1]
    if len(lines) == 1 and len(lines[0]) == 1:
        return lines[0][0]
    raise SystemExit(f"{path}: no secret for key id {key_id!r}")


def object_name(key):
    """An object key's flat file name on a storage node: all but [A-Za-z0-9_.~-] percent-encoded
    ('/' too, so keys 'a' and 'a/b' can coexist), a leading '.' too (no '.', '..', hidden files)."""
    name = urllib.parse.quote(key, safe="")
    return "%2E" + name[1:] if name.startswith(".") else name


def object_path(bucket, key):
    """An object's request path on a storage node: /objects/<bucket>/<object_name(key) URL-encoded
    once more>. nginx decodes the URI once: the file is <data>/objects/<bucket>/<object_name>."""
    return f"/objects/{bucket}/" + urllib.parse.quote(object_name(key), safe="")


def meta_path(bucket, key):
    """The request path of an object's metadata sidecar on a storage node (file
    <data>/meta/<bucket>/<object_name>): JSON {bucket, key, etag, size, last_modified,
    content_type, meta}, written next to every replica so the node can answer the node manager's
    direct GET/HEAD with the service's headers (storage_node_direct.js)."""
    return f"/meta/{bucket}/" + urllib.parse.quote(object_name(key), safe="")


def direct_target(raw_path):
    """(bucket, key) of an object_path() as sent (percent-encoded), or None if it is none."""
    parts = raw_path.split("/")
    if len(parts) != 4 or parts[:2] != ["", "objects"] or not parts[2] or not parts[3]:
        return None
    return urllib.parse.unquote(parts[2]), urllib.parse.unquote(urllib.parse.unquote(parts[3]))


def iso_now():
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


class AccessLog:
    """One line per request: `<time> <component> key=value ...`, values with blanks quoted."""

    def __init__(self, path, component):
        self.component = component
        self.lock = threading.Lock()
        self.f = open(path, "a", buffering=1) if path else None

    def write(self, **fields):
        parts = [iso_now(), self.component]
        for k, v in fields.items():
            v = "-" if v is None or v == "" else str(v)
            if any(c in v for c in ' "\\\n'):
                v = '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
            parts.append(f"{k}={v}")
        if self.f:
            with self.lock:
                self.f.write(" ".join(parts) + "\n")
