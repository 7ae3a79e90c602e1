#!/usr/bin/python3
"""Check the lab object service end to end with real S3 clients, one full round per client.

Run it inside a VM namespace, so that every request crosses the dataplane:

    ip netns exec sp-vm1 tools/lab/s3round.py --env /run/shortpath-lab/svc/env.json [--client all]

A round (boto3 in this process; awscli, s3cmd and curl as subprocesses with a clean environment,
independent commands a few at a time) creates a bucket (and again: BucketAlreadyOwnedByYou), puts
objects of the --sizes (ETag = MD5) and one outside the listed prefix, gets the former back
(SHA-256 compared), heads the smallest and the largest, reads ranges of the largest (closed,
suffix, past the end: InvalidRange), sends conditional GETs (If-None-Match, If-Match wrong and
right, If-Modified-Since in the future), lists with a prefix (ListObjectsV2; s3cmd: ListObjects)
and lists the buckets, provokes NoSuchBucket, SignatureDoesNotMatch (wrong secret),
InvalidAccessKeyId (unknown key), RequestTimeTooSkewed (the client under `faketime -f -20m`; for
boto3, a small /usr/bin/python3 subprocess using boto3 under faketime) and AccessDenied (no
credential), deletes an object and gets it (NoSuchKey), then deletes its objects and its bucket
(awscli: `aws s3 rb --force`). What a client cannot express is a skip, not a pass: s3cmd sends no
conditional GETs, no closed or suffix ranges (its `get --continue` sends an open one, which is
checked), no unsigned requests, and HEADs an object before GETting it.

Output: one line per check, `ok   CLIENT CHECK`, `FAIL CLIENT CHECK: DETAIL` or
`skip CLIENT CHECK: WHY`, then one line of JSON: per client the counts and the x-amz-request-id of
one successful PutObject and one GetObject (to follow through the service's access logs: load
balancer, front end, storage manager, storage node), and the number of failed checks.
Exit status: 0 all checks passed, 1 some check failed, 2 usage error.
"""
import argparse
import dataclasses
import datetime
import email.utils
import hashlib
import http.client
import itertools
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
UNITS = {"": 1, "kib": KiB, "mib": MiB, "gib": GiB}
CHUNK = MiB             # hashing and writing go in chunks of this size
SMALL = 64 * KiB        # GET bodies up to this size are also kept, for exact comparison
TIMEOUT = 120           # seconds for any one subprocess
# Independent checks of a round run this many at a time. Client start-ups are CPU-bound (awscli:
# ~1 s of CPU each), so more workers than cores only slow things down (here the dataplane
# busy-polls one of two cores: 2 workers take 38 s for the awscli round, 4 take 51 s).
WORKERS = max(2, min(4, os.cpu_count() or 2))
SKEW = "-20m"           # faketime offset: beyond the service's 15 minutes
CLEAN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
AWS, S3CMD, PYTHON = "/usr/bin/aws", "/usr/bin/s3cmd", "/usr/bin/python3"
CLIENTS = ("boto3", "awscli", "s3cmd", "curl")
UNKNOWN_KEY = "AKIANOSUCHKEY0000000"
WRONG_ETAG = '"00000000000000000000000000000000"'
FUTURE = datetime.datetime(2100, 1, 1, tzinfo=datetime.timezone.utc)
PREFIX = "data/"        # the listed prefix; EXTRA_KEY lies outside it and is the deleted object
EXTRA_KEY, EXTRA_SIZE = "other/delete-me", 3
BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# (check name, credential variant, expected S3 error code); all expect HTTP 403
AUTH_ERRORS = (("error SignatureDoesNotMatch", "bad-secret", "SignatureDoesNotMatch"),
               ("error InvalidAccessKeyId", "bad-key", "InvalidAccessKeyId"),
               ("error RequestTimeTooSkewed", "skew", "RequestTimeTooSkewed"),
               ("error AccessDenied", "anon", "AccessDenied"))

# boto3 with a skewed clock: this runs as `faketime -f SKEW /usr/bin/python3 -c SKEW_PROBE ...`
# (credentials and region from the environment) and prints the outcome of ListObjectsV2 as JSON.
SKEW_PROBE = """\
import json, sys
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
endpoint, bucket, prefix = sys.argv[1:4]
s3 = boto3.client("s3", endpoint_url=endpoint,
                  config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))
try:
    meta, err = s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["ResponseMetadata"], {}
except ClientError as e:
    meta, err = e.response.get("ResponseMetadata", {}), e.response.get("Error", {})
print(json.dumps({"status": meta.get("HTTPStatusCode"), "request_id": meta.get("RequestId"),
                  "code": err.get("Code"), "message": err.get("Message")}))
"""


class Usage(Exception):
    """A usage error: one line on stderr, exit status 2."""


# ---- what the clients answer -------------------------------------------------------------------
@dataclasses.dataclass
class Resp:
    """One client operation's outcome, as far as that client lets us see it (None: not visible)."""
    ok: bool
    status: int = None          # HTTP status
    code: str = None            # S3 error code
    request_id: str = None      # x-amz-request-id
    etag: str = None
    size: int = None            # HeadObject: Content-Length; GetObject: bytes received
    content_range: str = None
    sha256: str = None          # GetObject: of the bytes received
    body: bytes = None          # GetObject: the bytes received, if at most SMALL
    keys: list = None           # listings: object keys or bucket names
    detail: str = ""

    def set_code(self, code):
        """An error code as a client reports it: a bare number (304, HEAD's 404) is a status."""
        if code and code.isdigit():
            self.status = int(code)
        elif code:
            self.code = code

    def describe(self):
        parts = [f"status {self.status}" if self.status is not None else "",
                 self.code or "", self.detail]
        return ", ".join(p for p in parts if p) or "failed, nothing said"


@dataclasses.dataclass
class Obj:
    """A local file of random bytes and the key it is stored under."""
    key: str
    path: str
    size: int
    md5: str
    sha256: str

    @property
    def etag(self):
        return f'"{self.md5}"'


@dataclasses.dataclass
class Service:
    endpoint: str
    region: str
    access_key: str
    secret_key: str
    aws_config: str
    s3cfg: str

    def credentials(self, variant=None):
        """(access key, secret) for a credential variant: None, bad-secret or bad-key."""
        if variant == "bad-secret":
            return self.access_key, "WRONG" + self.secret_key[5:]
        if variant == "bad-key":
            return UNKNOWN_KEY, self.secret_key
        return self.access_key, self.secret_key


# ---- small helpers -----------------------------------------------------------------------------
def emit(line):
    """Print a line. A reader that goes away (`| head`) must not stop a round before its cleanup:
    the rest of the output goes to /dev/null."""
    try:
        print(line, flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def hash_file(path):
    """(SHA-256 hex, size, the bytes if at most SMALL else None), read in CHUNKs."""
    sha, n, keep = hashlib.sha256(), 0, bytearray()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
            n += len(chunk)
            if n <= SMALL:
                keep += chunk
    return sha.hexdigest(), n, (bytes(keep) if n <= SMALL else None)


def take_body(r, path):
    """Fill r's sha256, size and body from a downloaded file, then remove the file."""
    try:
        if r.ok and os.path.exists(path):
            r.sha256, r.size, r.body = hash_file(path)
    finally:
        remove(path)
    return r


def remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def read_range(path, first, last):
    with open(path, "rb") as f:
        f.seek(first)
        return f.read(last - first + 1)


def copy_head(src, dst, n):
    """dst = the first n bytes of src, in CHUNKs."""
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        while n and (chunk := fi.read(min(CHUNK, n))):
            fo.write(chunk)
            n -= len(chunk)


def xml_texts(data, tag):
    """Texts of all elements named tag (any namespace) in an XML document; [] if not XML."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return []
    return [e.text or "" for e in root.iter() if e.tag == tag or e.tag.endswith("}" + tag)]


def tail(text):
    """The most telling line of a client's stderr, for a FAIL line."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if "An error occurred" in ln or ln.startswith("ERROR:")]
    line = (errors or lines or ["(no output)"])[-1]
    return line[:240]


def size_label(n):
    for unit, mult in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n and n % mult == 0:
            return f"{n // mult}{unit}"
    return str(n)


def parse_sizes(text):
    sizes = []
    for token in text.split(","):
        m = re.fullmatch(r"\s*(\d+)\s*([KMG]iB)?\s*", token, re.I)
        if not m:
            raise Usage(f"--sizes: {token.strip()!r} is not a size (N, NKiB, NMiB or NGiB)")
        n = int(m[1]) * UNITS[(m[2] or "").lower()]
        if n not in sizes:
            sizes.append(n)
    return sizes


def load_env(path):
    """The service description: env.json, or the shell-sourceable `env` file next to it."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise Usage(f"--env {path}: {e.strerror}") from None
    try:
        env = json.loads(text)
    except ValueError:
        env = {}
        for line in text.splitlines():
            try:
                words = shlex.split(line, comments=True)
            except ValueError:  # unbalanced quotes: not one of ours
                continue
            if len(words) == 2 and words[0] == "export" and "=" in words[1]:
                k, _, v = words[1].partition("=")
                env[k] = v
    if not isinstance(env, dict) or not env:
        raise Usage(f"--env {path}: neither JSON nor `export KEY=VALUE` lines")
    missing = [k for k in ("SVC_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
               if not env.get(k)]
    if missing:
        raise Usage(f"--env {path}: missing {', '.join(missing)}")
    return Service(endpoint=env["SVC_ENDPOINT"].rstrip("/"),
                   region=env.get("SVC_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
                   access_key=env["AWS_ACCESS_KEY_ID"], secret_key=env["AWS_SECRET_ACCESS_KEY"],
                   aws_config=env.get("AWS_CONFIG_FILE", ""),
                   s3cfg=os.path.join(env.get("SVC_BASE", ""), "s3cfg"))


def clean_env(svc, home, variant=None):
    """The whole environment of a client subprocess: nothing inherited from ours."""
    ak, sk = svc.credentials(variant)
    return {"PATH": CLEAN_PATH, "HOME": home, "LANG": "C.UTF-8",
            "AWS_ACCESS_KEY_ID": ak, "AWS_SECRET_ACCESS_KEY": sk,
            "AWS_DEFAULT_REGION": svc.region, "AWS_CONFIG_FILE": svc.aws_config or os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_PAGER": "",
            "AWS_EC2_METADATA_DISABLED": "true"}


def run(argv, env, stdin=None, skew=False):
    """(exit status or None if it timed out, stdout, stderr) of a subprocess."""
    if skew:
        argv = ["faketime", "-f", SKEW] + list(argv)
    feed = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
    try:
        p = subprocess.run(argv, env=env, capture_output=True, text=True, errors="replace",
                           timeout=TIMEOUT, check=False, **feed)
    except subprocess.TimeoutExpired:
        return None, "", f"{os.path.basename(argv[0])}: timed out after {TIMEOUT} s"
    return p.returncode, p.stdout, p.stderr


class Client:
    """What a round needs of a client; every method answers a Resp."""
    name = ""
    RANGES = CONDITIONS = ANONYMOUS = True   # can send closed/suffix ranges, If-*, no credential
    HEAD_BEFORE_GET = False                 # GETs of a missing key show only HEAD's bare 404
    FORCE_RB = False                        # delete_bucket also deletes the objects

    def __init__(self, svc, work):
        self.svc = svc
        self.home = tempfile.mkdtemp(prefix=f"home-{self.name}-", dir=work)


# ---- boto3 -------------------------------------------------------------------------------------
class Boto3(Client):
    name = "boto3"

    def __init__(self, svc, work):
        super().__init__(svc, work)
        try:
            import boto3
            import botocore
            from botocore.config import Config
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError as e:
            raise Usage(f"boto3 cannot be imported by {sys.executable} ({e}); "
                        f"run this with {PYTHON}") from None
        self.boto3, self.unsigned, self.Config = boto3, botocore.UNSIGNED, Config
        self.errors, self.ClientError = (BotoCoreError, ClientError), ClientError
        # only the service's config file (path-style addressing), no profile, no other credentials
        os.environ.update({"AWS_CONFIG_FILE": svc.aws_config or os.devnull,
                           "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                           "AWS_EC2_METADATA_DISABLED": "true"})
        for k in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN"):
            os.environ.pop(k, None)
        self.s3 = self.client()
        self.variants = {v: self.client(v) for v in ("bad-secret", "bad-key", "anon")}

    def client(self, variant=None):
        ak, sk = self.svc.credentials(variant)
        cfg = self.Config(signature_version=self.unsigned if variant == "anon" else "s3v4",
                          s3={"addressing_style": "path"}, max_pool_connections=2 * WORKERS)
        session = self.boto3.session.Session(aws_access_key_id=ak, aws_secret_access_key=sk,
                                             region_name=self.svc.region)
        return session.client("s3", endpoint_url=self.svc.endpoint, config=cfg)

    def call(self, op, client=None, **kw):
        """(Resp, the operation's answer or {})."""
        try:
            ans = getattr(client or self.s3, op)(**kw)
        except self.ClientError as e:
            meta, err = e.response.get("ResponseMetadata", {}), e.response.get("Error", {})
            r = Resp(False, status=meta.get("HTTPStatusCode"), request_id=meta.get("RequestId"),
                     detail=err.get("Message") or "")
            r.set_code(err.get("Code"))
            return r, {}
        except self.errors as e:
            return Resp(False, detail=f"{type(e).__name__}: {e}"), {}
        meta = ans.get("ResponseMetadata", {})
        return Resp(True, status=meta.get("HTTPStatusCode"), request_id=meta.get("RequestId"),
                    etag=ans.get("ETag")), ans

    def create_bucket(self, bucket):
        return self.call("create_bucket", Bucket=bucket)[0]

    def delete_bucket(self, bucket):
        return self.call("delete_bucket", Bucket=bucket)[0]

    def list_buckets(self):
        r, ans = self.call("list_buckets")
        r.keys = [b["Name"] for b in ans.get("Buckets", [])]
        return r

    def put(self, bucket, key, path, want_id=False):
        with open(path, "rb") as body:
            return self.call("put_object", Bucket=bucket, Key=key, Body=body)[0]

    def get(self, bucket, key, dest, rng=None, if_match=None, if_none_match=None,
            if_modified_since=None, want_id=False):
        opts = {"Range": rng, "IfMatch": if_match, "IfNoneMatch": if_none_match,
                "IfModifiedSince": if_modified_since}
        r, ans = self.call("get_object", Bucket=bucket, Key=key,
                           **{k: v for k, v in opts.items() if v is not None})
        if r.ok:  # stream the body through the hash: never the whole object in memory
            sha, keep, stream = hashlib.sha256(), bytearray(), ans["Body"]
            r.size, r.content_range = 0, ans.get("ContentRange")
            try:
                for chunk in stream.iter_chunks(CHUNK):
                    sha.update(chunk)
                    r.size += len(chunk)
                    if r.size <= SMALL:
                        keep += chunk
            finally:
                stream.close()
            r.sha256, r.body = sha.hexdigest(), (bytes(keep) if r.size <= SMALL else None)
        return r

    def head(self, bucket, key):
        r, ans = self.call("head_object", Bucket=bucket, Key=key)
        r.size = ans.get("ContentLength")
        return r

    def list_objects(self, bucket, prefix, variant=None):
        if variant == "skew":
            return self.skewed_list(bucket, prefix)
        r, ans = self.call("list_objects_v2", self.variants.get(variant), Bucket=bucket,
                           Prefix=prefix)
        r.keys = [c["Key"] for c in ans.get("Contents", [])]
        return r

    def skewed_list(self, bucket, prefix):
        rc, out, err = run([PYTHON, "-c", SKEW_PROBE, self.svc.endpoint, bucket, prefix],
                           clean_env(self.svc, self.home), skew=True)
        try:
            ans = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return Resp(False, detail=f"skew probe (exit {rc}): {tail(err)}")
        r = Resp(ans["code"] is None, status=ans["status"], request_id=ans["request_id"],
                 detail=ans.get("message") or "")
        r.set_code(ans["code"])
        return r

    def delete(self, bucket, key):
        return self.call("delete_object", Bucket=bucket, Key=key)[0]


# ---- awscli ------------------------------------------------------------------------------------
class AwsCli(Client):
    name = "awscli"
    FORCE_RB = True

    def aws(self, *args, variant=None, debug=False):
        """(Resp, its JSON output). Only --debug shows the request id: ask for it sparingly."""
        argv = [AWS, "--endpoint-url", self.svc.endpoint, "--output", "json"]
        argv += ["--debug"] * debug + ["--no-sign-request"] * (variant == "anon")
        rc, out, err = run(argv + list(args), clean_env(self.svc, self.home, variant),
                           skew=variant == "skew")
        ids = re.findall(r"""['"]x-amz-request-id['"]: ['"]([^'"]+)""", err, re.I)
        if rc == 0:
            try:
                doc = json.loads(out) if out.strip() else {}
            except ValueError:
                return Resp(False, detail=f"output is not JSON: {out[:100]!r}"), {}
            return Resp(True, request_id=ids[-1] if ids else None, etag=doc.get("ETag")), doc
        r = Resp(False, detail=tail(err) if rc is not None else err)
        m = re.search(r"An error occurred \(([^)]*)\) when calling", err)
        r.set_code(m and m[1])
        return r, {}

    def create_bucket(self, bucket):
        return self.aws("s3api", "create-bucket", "--bucket", bucket)[0]

    def delete_bucket(self, bucket):
        """`aws s3 rb --force`: lists the bucket, deletes each object, then the bucket."""
        rc, out, err = run([AWS, "--endpoint-url", self.svc.endpoint, "s3", "rb", "--force",
                            f"s3://{bucket}"], clean_env(self.svc, self.home))
        ok = rc == 0 and f"remove_bucket: {bucket}" in out
        return Resp(ok, detail="" if ok else tail(err or out))

    def list_buckets(self):
        r, doc = self.aws("s3api", "list-buckets")
        r.keys = [b["Name"] for b in doc.get("Buckets") or []]
        return r

    def put(self, bucket, key, path, want_id=False):
        return self.aws("s3api", "put-object", "--bucket", bucket, "--key", key, "--body", path,
                        debug=want_id)[0]

    def get(self, bucket, key, dest, rng=None, if_match=None, if_none_match=None,
            if_modified_since=None, want_id=False):
        args = ["s3api", "get-object", "--bucket", bucket, "--key", key]
        if if_modified_since:
            if_modified_since = if_modified_since.strftime("%Y-%m-%dT%H:%M:%SZ")
        for opt, value in (("--range", rng), ("--if-match", if_match),
                           ("--if-none-match", if_none_match),
                           ("--if-modified-since", if_modified_since)):
            if value is not None:
                args += [opt, value]
        r, doc = self.aws(*args, dest, debug=want_id)
        r.content_range = doc.get("ContentRange")
        return take_body(r, dest)

    def head(self, bucket, key):
        r, doc = self.aws("s3api", "head-object", "--bucket", bucket, "--key", key)
        r.size = doc.get("ContentLength")
        return r

    def list_objects(self, bucket, prefix, variant=None):
        r, doc = self.aws("s3api", "list-objects-v2", "--bucket", bucket, "--prefix", prefix,
                          variant=variant)
        r.keys = [c["Key"] for c in doc.get("Contents") or []]
        return r

    def delete(self, bucket, key):
        return self.aws("s3api", "delete-object", "--bucket", bucket, "--key", key)[0]


# ---- s3cmd -------------------------------------------------------------------------------------
class S3cmd(Client):
    name = "s3cmd"
    RANGES = CONDITIONS = ANONYMOUS = False
    HEAD_BEFORE_GET = True

    def __init__(self, svc, work):
        """The service's s3cfg with the key pair of --env (as the other clients get it)."""
        super().__init__(svc, work)
        with open(svc.s3cfg, encoding="utf-8") as f:
            text = f.read()
        for name, value in (("access_key", svc.access_key), ("secret_key", svc.secret_key)):
            text = re.sub(rf"(?m)^{name}\s*=.*$", lambda _, n=name, v=value: f"{n} = {v}", text)
        self.cfg = os.path.join(self.home, "s3cfg")
        with open(os.open(self.cfg, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(text)

    def s3cmd(self, *args, variant=None, debug=False):
        """(Resp, stdout). With --debug, status, ETag and request id of the last response."""
        argv = [S3CMD, "-c", self.cfg, "--no-progress"]
        if variant == "bad-secret":
            argv.append(f"--secret_key={self.svc.credentials(variant)[1]}")
        elif variant == "bad-key":
            argv.append(f"--access_key={UNKNOWN_KEY}")
        argv += ["--debug"] * debug
        rc, out, err = run(argv + list(args), clean_env(self.svc, self.home),
                           skew=variant == "skew")
        r = Resp(rc == 0)
        if debug and "DEBUG: Response:" in err:
            block = self.response_block(err)
            for attr, pattern in (("status", r"'status': (\d+)"), ("etag", r"'etag': '([^']*)'"),
                                  ("request_id", r"'x-amz-request-id': '([^']*)'"),
                                  ("content_range", r"'content-range': '([^']*)'")):
                if m := re.search(pattern, block):
                    setattr(r, attr, int(m[1]) if attr == "status" else m[1])
        if rc != 0:
            r.detail = tail(err) if rc is not None else err
            if m := re.search(r"S3 error: (\d{3}) \(([^)]*)\)", err):
                r.status = int(m[1])
                if m[2] != http.client.responses.get(r.status):  # a reason: no error body
                    r.code = m[2]
        return r, out

    @staticmethod
    def response_block(err):
        """The last response (a pprint'ed dict) that --debug shows with an ETag, else the last:
        `info` asks for the policy, CORS and ACL after its HEAD."""
        blocks = []
        for part in err.split("DEBUG: Response:")[1:]:
            lines = part.splitlines()[1:]
            blocks.append("\n".join(itertools.takewhile(lambda ln: ln[:1] in ("{", " "), lines)))
        return ([b for b in blocks if "'etag':" in b] or blocks)[-1]

    def create_bucket(self, bucket):
        return self.s3cmd("mb", f"s3://{bucket}")[0]

    def delete_bucket(self, bucket):
        return self.s3cmd("rb", f"s3://{bucket}")[0]

    def list_buckets(self):
        r, out = self.s3cmd("ls")
        r.keys = re.findall(r"\ss3://([^/\s]+)/?\s*$", out, re.M)
        return r

    def put(self, bucket, key, path, want_id=False):
        return self.s3cmd("put", "--disable-multipart", path, f"s3://{bucket}/{key}",
                          debug=True)[0]

    def get(self, bucket, key, dest, want_id=False):
        return take_body(self.s3cmd("get", f"s3://{bucket}/{key}", dest, debug=True)[0], dest)

    def get_continue(self, bucket, key, dest):
        """Complete a partial local copy: s3cmd sends `Range: bytes=<its size>-`."""
        r = self.s3cmd("get", "--continue", f"s3://{bucket}/{key}", dest, debug=True)[0]
        return take_body(r, dest)

    def head(self, bucket, key):
        r, out = self.s3cmd("info", f"s3://{bucket}/{key}", debug=True)
        if m := re.search(r"File size:\s*(\d+)", out):
            r.size = int(m[1])
        return r

    def list_objects(self, bucket, prefix, variant=None):
        r, out = self.s3cmd("ls", f"s3://{bucket}/{prefix}", variant=variant)
        base = f"s3://{bucket}/"
        r.keys = [ln.split(base, 1)[1] for ln in out.splitlines()
                  if base in ln and " DIR " not in ln]
        return r

    def delete(self, bucket, key):
        return self.s3cmd("del", f"s3://{bucket}/{key}")[0]


# ---- curl --------------------------------------------------------------------------------------
class Curl(Client):
    name = "curl"

    def __init__(self, svc, work):
        super().__init__(svc, work)
        self.seq = itertools.count()

    def curl(self, method, bucket="", key="", query="", headers=(), upload=None, dest=None,
             variant=None):
        """(Resp, response body if no dest). Signed with --aws-sigv4, the key pair fed on stdin
        (-K -) so that it is not in the process list; variant anon: no credential at all."""
        url = f"{self.svc.endpoint}/{urllib.parse.quote(bucket)}"
        url += ("/" + urllib.parse.quote(key)) * bool(key) + ("?" + query) * bool(query)
        n = next(self.seq)
        hdr, body = os.path.join(self.home, f"h{n}"), dest or os.path.join(self.home, f"b{n}")
        argv, stdin = ["curl", "-sS", "-D", hdr, "-o", body], None
        if variant != "anon":
            ak, sk = self.svc.credentials(variant)
            quoted = f"{ak}:{sk}".replace("\\", "\\\\").replace('"', '\\"')
            stdin = f'user = "{quoted}"\n'
            argv += ["--aws-sigv4", f"aws:amz:{self.svc.region}:s3", "-K", "-",
                     "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]
        if method == "HEAD":
            argv.append("-I")
        elif upload is not None:
            argv += ["-T", upload]
        elif method != "GET":
            argv += ["-X", method]
        for h in headers:
            argv += ["-H", h]
        rc, _, err = run(argv + [url], clean_env(self.svc, self.home), stdin,
                         skew=variant == "skew")
        try:
            if rc != 0:
                return Resp(False, detail=f"curl exit {rc}: {tail(err)}"), b""
            with open(hdr, encoding="latin-1", newline="") as f:  # after any 100 Continue
                block = f.read().strip().split("\r\n\r\n")[-1].splitlines()
            status = int(block[0].split()[1])
            h = dict((k.strip().lower(), v.strip()) for k, _, v in
                     (ln.partition(":") for ln in block[1:]))
            r = Resp(200 <= status < 300, status=status, request_id=h.get("x-amz-request-id"),
                     etag=h.get("etag"), content_range=h.get("content-range"))
            if method == "HEAD":
                r.size = int(h.get("content-length", -1))
            data = b""
            if method != "HEAD" and os.path.exists(body) and (
                    dest is None or (status >= 300 and os.path.getsize(body) <= SMALL)):
                with open(body, "rb") as f:
                    data = f.read()
            if status >= 300 and data:
                r.code = "".join(xml_texts(data, "Code")) or None
                r.detail = "".join(xml_texts(data, "Message"))
            return r, data
        finally:
            remove(hdr)
            if dest is None:
                remove(body)

    def create_bucket(self, bucket):
        return self.curl("PUT", bucket)[0]

    def delete_bucket(self, bucket):
        return self.curl("DELETE", bucket)[0]

    def list_buckets(self):
        r, data = self.curl("GET")
        r.keys = xml_texts(data, "Name")
        return r

    def put(self, bucket, key, path, want_id=False):
        return self.curl("PUT", bucket, key, upload=path)[0]

    def get(self, bucket, key, dest, rng=None, if_match=None, if_none_match=None,
            if_modified_since=None, want_id=False):
        headers = [f"{name}: {value}" for name, value in (
            ("Range", rng), ("If-Match", if_match), ("If-None-Match", if_none_match),
            ("If-Modified-Since", if_modified_since and
             email.utils.format_datetime(if_modified_since, usegmt=True)))
            if value is not None]
        return take_body(self.curl("GET", bucket, key, headers=headers, dest=dest)[0], dest)

    def head(self, bucket, key):
        return self.curl("HEAD", bucket, key)[0]

    def list_objects(self, bucket, prefix, variant=None):
        query = "list-type=2&prefix=" + urllib.parse.quote(prefix, safe="")
        r, data = self.curl("GET", bucket, query=query, variant=variant)
        r.keys = xml_texts(data, "Key") if r.ok else []
        return r

    def delete(self, bucket, key):
        return self.curl("DELETE", bucket, key)[0]


DRIVERS = {"boto3": Boto3, "awscli": AwsCli, "s3cmd": S3cmd, "curl": Curl}


# ---- checks ------------------------------------------------------------------------------------
def verdict(check, problems):
    return ("FAIL", check, "; ".join(problems)) if problems else ("ok", check, "")


def failed(r):
    """[] if the operation succeeded, else what went wrong."""
    return [] if r.ok else [f"failed: {r.describe()}"]


def expect_error(check, r, code, status):
    """The operation must fail with S3 error `code` (None: no body, e.g. 304) and HTTP status
    `status`; a status the client does not show is not held against it, a code is."""
    if r.ok:
        seen = f" (status {r.status})" if r.status is not None else ""
        return verdict(check, [f"succeeded{seen}, expected {code or 'status'} {status}"])
    problems = []
    if code is not None and r.code != code:
        problems.append(f"expected {code}, got {r.describe()}")
    if status is not None and r.status is not None and r.status != status:
        problems.append(f"status {r.status}, expected {status}")
    if code is None and r.status is None:
        problems.append(f"expected status {status}, got {r.describe()}")
    return verdict(check, problems)


def body_problems(r, size, sha256, etag=None):
    if r.size != size:
        return [f"got {r.size} bytes, expected {size}"]
    problems = [] if r.sha256 == sha256 else ["SHA-256 of the body differs"]
    if etag and r.etag is not None and r.etag != etag:
        problems.append(f"ETag {r.etag}, expected {etag}")
    return problems


class Round:
    """One client's round against one bucket; reports each check as it is decided."""

    def __init__(self, client, bucket, objs, work, quiet):
        self.cl, self.bucket, self.objs, self.quiet = client, bucket, objs, quiet
        self.dl = tempfile.mkdtemp(prefix=f"dl-{client.name}-", dir=work)
        self.seq = itertools.count()
        self.counts = {"ok": 0, "FAIL": 0, "skip": 0}
        self.ids = {"get": None, "put": None}
        data = [o for o in objs if o.key.startswith(PREFIX)]
        self.data_keys = {o.key for o in data}
        by_size = sorted(data, key=lambda o: o.size)
        self.heads = by_size[:1] + by_size[-1:] if len(by_size) > 1 else by_size
        # the probe (request ids, conditional GETs): the smallest non-empty object
        self.probe = min((o for o in objs if o.size), key=lambda o: o.size)
        self.big = max(objs, key=lambda o: o.size)  # the range target
        self.extra = next(o for o in objs if o.key == EXTRA_KEY)
        self.missing_bucket = f"nosuch-{secrets.token_hex(6)}"

    def report(self, result, check, detail=""):
        self.counts[result] += 1
        if not self.quiet or result == "FAIL":
            detail = ": " + " ".join(detail.split()) if detail and result != "ok" else ""
            emit(f"{result:<4} {self.cl.name} {check}{detail}")

    def dest(self):
        return os.path.join(self.dl, f"get{next(self.seq)}")

    def phase(self, tasks):
        """Run independent checks, (name, method, args...), concurrently; report them in order."""
        def one(task):
            check, fn, *args = task
            try:
                out = fn(check, *args)
            except Exception as e:  # noqa: BLE001 - a surprise fails that check, not the round
                return [("FAIL", check, f"{type(e).__name__}: {e}")]
            return out if isinstance(out, list) else [out]
        with ThreadPoolExecutor(WORKERS) as ex:
            for outcomes in ex.map(one, tasks):
                for outcome in outcomes:
                    self.report(*outcome)

    def run(self):
        created = False
        try:
            r = self.cl.create_bucket(self.bucket)
            self.report(*verdict(f"create-bucket {self.bucket}", failed(r)))
            if not r.ok:
                return
            created = True
            self.phase([("create-bucket-again BucketAlreadyOwnedByYou", self.c_create_again)]
                       + [(f"put {o.key}", self.c_put, o) for o in self.objs])
            gets = [o for o in self.objs if o.key in self.data_keys or o is self.probe]
            gets.sort(key=lambda o: -o.size)  # the long ones start first
            self.phase([(f"get {o.key}", self.c_get, o) for o in gets]
                       + self.range_tasks() + self.condition_tasks()
                       + [(f"head {o.key}", self.c_head, o) for o in self.heads]
                       + [(f"list-prefix {PREFIX}", self.c_list),
                          ("list-buckets", self.c_list_buckets),
                          ("error NoSuchBucket", self.c_no_such_bucket)]
                       + [(name, self.c_auth_error, variant, code)
                          for name, variant, code in AUTH_ERRORS])
        finally:
            if created:
                self.cleanup()

    def cleanup(self):
        """Delete the extra object and get it (NoSuchKey) while the others are deleted, then the
        bucket (awscli: `s3 rb --force` deletes the others, then the bucket)."""
        rest = [] if self.cl.FORCE_RB else [o for o in self.objs if o is not self.extra]
        self.phase([(f"delete {EXTRA_KEY}", self.c_delete_and_get)]
                   + [(f"cleanup delete {o.key}", self.c_delete, o) for o in rest])
        what = "delete-bucket --force" if self.cl.FORCE_RB else "delete-bucket"
        self.phase([(f"{what} {self.bucket}", self.c_delete_bucket)])

    # ---- the checks: (check name, args...) -> outcome or [outcomes] ----------------------------
    def c_create_again(self, check):
        return expect_error(check, self.cl.create_bucket(self.bucket), "BucketAlreadyOwnedByYou",
                            409)

    def c_put(self, check, o):
        probe = o is self.probe
        r = self.cl.put(self.bucket, o.key, o.path, want_id=probe)
        problems = failed(r)
        if r.ok and r.etag != o.etag:
            problems.append(f"ETag {r.etag}, MD5 of the body {o.etag}")
        if r.ok and probe:
            self.ids["put"] = r.request_id
            problems += [] if r.request_id else ["no x-amz-request-id seen"]
        return verdict(check, problems)

    def c_get(self, check, o):
        probe = o is self.probe
        r = self.cl.get(self.bucket, o.key, self.dest(), want_id=probe)
        problems = failed(r) or body_problems(r, o.size, o.sha256, o.etag)
        if r.ok and probe:
            self.ids["get"] = r.request_id
            problems += [] if r.request_id else ["no x-amz-request-id seen"]
        return verdict(check, problems)

    def c_head(self, check, o):
        r = self.cl.head(self.bucket, o.key)
        problems = failed(r)
        if r.ok and r.size != o.size:
            problems.append(f"size {r.size}, expected {o.size}")
        if r.ok and r.etag != o.etag:
            problems.append(f"ETag {r.etag}, expected {o.etag}")
        return verdict(check, problems)

    def range_tasks(self):
        size, tasks = self.big.size, []
        if size:
            first = min(100, size // 2)
            last = min(first + 99, size - 1)
            n = min(100, size)
            tasks += [(f"range bytes={first}-{last}", self.c_range, f"bytes={first}-{last}",
                       first, last),
                      (f"range bytes=-{n}", self.c_range, f"bytes=-{n}", size - n, size - 1)]
        else:
            tasks += [(f"range {what}", self.c_skip, "the largest object is empty")
                      for what in ("closed", "suffix")]
        past = f"bytes={size + 100}-{size + 199}"
        tasks.append((f"range {past} InvalidRange", self.c_range_past_end, past))
        if not self.cl.RANGES:
            why = f"{self.cl.name} cannot ask for an arbitrary range"
            tasks = [(name, self.c_skip, why) for name, *_ in tasks]
            tasks.append(("range open (get --continue)", self.c_range_continue))
        return tasks

    def c_skip(self, check, why):
        return ("skip", check, why)

    def c_range(self, check, rng, first, last):
        o = self.big
        r = self.cl.get(self.bucket, o.key, self.dest(), rng=rng)
        want = read_range(o.path, first, last)
        problems = failed(r)
        if r.ok and r.body != want:
            problems.append(f"{r.size} bytes received differ from bytes {first}-{last}")
        if r.ok and r.status not in (None, 206):
            problems.append(f"status {r.status}, expected 206")
        if r.ok and r.content_range not in (None, f"bytes {first}-{last}/{o.size}"):
            problems.append(f"Content-Range {r.content_range}")
        return verdict(check, problems)

    def c_range_past_end(self, check, rng):
        r = self.cl.get(self.bucket, self.big.key, self.dest(), rng=rng)
        return expect_error(check, r, "InvalidRange", 416)

    def c_range_continue(self, check):
        o = self.big
        if o.size < 2:
            return ("skip", check, "the largest object is too small")
        have = max(1, o.size - 100)
        dest = self.dest()
        copy_head(o.path, dest, have)
        r = self.cl.get_continue(self.bucket, o.key, dest)
        problems = failed(r) or body_problems(r, o.size, o.sha256)
        if r.ok and (r.status, r.content_range) != (206, f"bytes {have}-{o.size - 1}/{o.size}"):
            problems.append(f"status {r.status}, Content-Range {r.content_range}: expected 206, "
                            f"bytes {have}-{o.size - 1}/{o.size}")
        return verdict(check, problems)

    def condition_tasks(self):
        tasks = [("if-none-match 304", self.c_not_modified, {"if_none_match": self.probe.etag}),
                 ("if-modified-since-future 304", self.c_not_modified,
                  {"if_modified_since": FUTURE}),
                 ("if-match-wrong PreconditionFailed", self.c_precondition_failed),
                 ("if-match 200", self.c_if_match)]
        if not self.cl.CONDITIONS:
            why = f"{self.cl.name} cannot send conditional requests"
            tasks = [(name, self.c_skip, why) for name, *_ in tasks]
        return tasks

    def c_not_modified(self, check, condition):
        r = self.cl.get(self.bucket, self.probe.key, self.dest(), **condition)
        return expect_error(check, r, None, 304)

    def c_precondition_failed(self, check):
        r = self.cl.get(self.bucket, self.probe.key, self.dest(), if_match=WRONG_ETAG)
        return expect_error(check, r, "PreconditionFailed", 412)

    def c_if_match(self, check):
        o = self.probe
        r = self.cl.get(self.bucket, o.key, self.dest(), if_match=o.etag)
        problems = failed(r) or body_problems(r, o.size, o.sha256, o.etag)
        if r.ok and r.status not in (None, 200):
            problems.append(f"status {r.status}, expected 200")
        return verdict(check, problems)

    def c_list(self, check):
        r = self.cl.list_objects(self.bucket, PREFIX)
        problems = failed(r)
        if r.ok and set(r.keys) != self.data_keys:
            problems.append(f"missing {sorted(self.data_keys - set(r.keys))}, "
                            f"unexpected {sorted(set(r.keys) - self.data_keys)}")
        return verdict(check, problems)

    def c_list_buckets(self, check):
        r = self.cl.list_buckets()
        problems = failed(r)
        if r.ok and self.bucket not in r.keys:
            problems.append(f"{self.bucket} not among {len(r.keys)} buckets listed")
        return verdict(check, problems)

    def c_no_such_bucket(self, check):
        r = self.cl.list_objects(self.missing_bucket, PREFIX)
        return expect_error(check, r, "NoSuchBucket", 404)

    def c_auth_error(self, check, variant, code):
        if variant == "anon" and not self.cl.ANONYMOUS:
            return ("skip", check, f"{self.cl.name} cannot send a request without a credential")
        return expect_error(check, self.cl.list_objects(self.bucket, PREFIX, variant), code, 403)

    def c_delete_and_get(self, check):
        r = self.cl.delete(self.bucket, EXTRA_KEY)
        out = [verdict(check, failed(r))]
        r = self.cl.get(self.bucket, EXTRA_KEY, self.dest())
        if self.cl.HEAD_BEFORE_GET:
            out += [expect_error("get-deleted 404", r, None, 404),
                    ("skip", "get-deleted NoSuchKey",
                     f"{self.cl.name} HEADs before it GETs, and a HEAD error has no body to carry "
                     "the code")]
        else:
            out.append(expect_error("get-deleted NoSuchKey", r, "NoSuchKey", 404))
        return out

    def c_delete(self, check, o):
        return verdict(check, failed(self.cl.delete(self.bucket, o.key)))

    def c_delete_bucket(self, check):
        return verdict(check, failed(self.cl.delete_bucket(self.bucket)))

    def summary(self):
        return {"passed": self.counts["ok"], "failed": self.counts["FAIL"],
                "skipped": self.counts["skip"], "request_ids": self.ids}


# ---- main --------------------------------------------------------------------------------------
def make_object(dirpath, key, size):
    """A file of `size` random bytes (written, and hashed, in CHUNKs)."""
    path = os.path.join(dirpath, key.replace("/", "_"))
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            chunk = os.urandom(min(CHUNK, left))
            md5.update(chunk)
            sha.update(chunk)
            f.write(chunk)
            left -= len(chunk)
    return Obj(key, path, size, md5.hexdigest(), sha.hexdigest())


def check_setup(a, svc, clients):
    """Usage errors that can be told before anything is sent."""
    tools = {"awscli": AWS, "s3cmd": S3CMD, "curl": "curl"}
    need = ["faketime"] + [tools[c] for c in clients if c in tools]
    need += [PYTHON] * ("boto3" in clients)
    for tool in need:
        if not shutil.which(tool, path=CLEAN_PATH):
            raise Usage(f"{tool} is not installed (needed by --client {a.client})")
    if "awscli" in clients and not os.path.isfile(svc.aws_config):
        raise Usage(f"--env {a.env}: AWS_CONFIG_FILE {svc.aws_config!r} is not a file")
    if "s3cmd" in clients and not os.path.isfile(svc.s3cfg):
        raise Usage(f"--env {a.env}: no s3cmd configuration {svc.s3cfg} (SVC_BASE/s3cfg)")
    if a.workdir and not os.path.isdir(a.workdir):
        raise Usage(f"--workdir {a.workdir}: not a directory")


def bucket_names(a, clients):
    names = {}
    for c in clients:
        if a.bucket:
            names[c] = a.bucket if a.client != "all" else f"{a.bucket}-{c}"
        else:
            names[c] = f"round-{c}-{secrets.token_hex(3)}"
        if not BUCKET_RE.fullmatch(names[c]) or ".." in names[c]:
            raise Usage(f"--bucket: {names[c]!r} is not a valid bucket name (3-63 characters "
                        "a-z 0-9 . -, a letter or digit at either end)")
    return names


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", required=True,
                   help="the service's env.json (e.g. /run/shortpath-lab/svc/env.json)")
    p.add_argument("--client", choices=CLIENTS + ("all",), default="all")
    p.add_argument("--sizes", default="0,1,1MiB,100MiB",
                   help="object sizes, comma-separated, suffixes KiB MiB GiB (default %(default)s)")
    p.add_argument("--bucket", help="bucket name (with --client all: its prefix; "
                   "default round-CLIENT-RANDOM)")
    p.add_argument("--workdir", help="where the temporary directory goes (default: $TMPDIR)")
    p.add_argument("-q", "--quiet", action="store_true", help="only FAIL lines and the JSON")
    a = p.parse_args()
    clients = list(CLIENTS) if a.client == "all" else [a.client]
    work = None
    try:
        svc = load_env(a.env)
        sizes = parse_sizes(a.sizes)
        check_setup(a, svc, clients)
        buckets = bucket_names(a, clients)
        work = tempfile.mkdtemp(prefix="s3round-", dir=a.workdir)
        drivers = {name: DRIVERS[name](svc, work) for name in clients}
    except (Usage, OSError) as e:
        print(f"s3round: {e}", file=sys.stderr)
        if work:
            shutil.rmtree(work, ignore_errors=True)
        return 2
    summary = {}
    try:
        src = tempfile.mkdtemp(prefix="src-", dir=work)
        objs = [make_object(src, f"{PREFIX}{size_label(n)}", n) for n in sizes]
        objs.append(make_object(src, EXTRA_KEY, EXTRA_SIZE))
        for name in clients:
            rnd = Round(drivers[name], buckets[name], objs, work, a.quiet)
            try:
                rnd.run()
            except Exception as e:  # noqa: BLE001 - report it, go on with the next client
                rnd.report("FAIL", "round", f"{type(e).__name__}: {e}")
            summary[name] = rnd.summary()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    total = sum(s["failed"] for s in summary.values())
    emit(json.dumps({"clients": summary, "failed": total}))
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main())
