"""The lab object service on loopback (tools/lab/service) with boto3, awscli, s3cmd and curl; storage nodes answering the node manager's direct requests as the service does."""
import base64
import collections
import concurrent.futures
import datetime
import email.utils
import glob
import hashlib
import http.client
import io
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
import types
import urllib.parse
from unittest import mock

import boto3
import botocore.auth
import pytest
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

import sphelpers as sp

SERVICE = os.path.join(sp.ROOT, "tools", "lab", "service")
SVCCTL = os.path.join(SERVICE, "svcctl.py")
sys.path.insert(0, SERVICE)
import svccommon  # noqa: E402 - the lab's own storage-node credential code

AWS = "/usr/bin/aws"  # Debian's, not a shim that may come first on PATH
S3CMD = "/usr/bin/s3cmd"
MiB = 1 << 20
DATA = {"0B": b"", "1B": b"x", "1MiB": random.Random(7).randbytes(MiB)}
UNKNOWN_KEY = "AKIANOSUCHKEY0000000"


def md5_etag(data):
    return '"' + hashlib.md5(data).hexdigest() + '"'


def svcctl(*args):
    return subprocess.run([SVCCTL, *args], capture_output=True, text=True, timeout=60)


def service_up(base, *extra):
    for _ in range(3):  # a port may be taken between choosing and binding it: take another block
        r = svcctl("up", "--base", str(base), "--port-base", str(sp.free_port_block(12)), *extra)
        if r.returncode == 0:
            with open(os.path.join(base, "env.json")) as f:
                return json.load(f)
    raise AssertionError(f"svcctl up failed:\n{r.stdout}{r.stderr}")


class Service:
    """The running service (svcctl's env) and a client of each kind for it."""

    def __init__(self, base, env, home):
        self.base, self.env, self.home = str(base), env, str(home)
        self.endpoint = env["SVC_ENDPOINT"]
        self.ak, self.sk = env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]
        self.wrong_sk = "wrong" + self.sk[5:]
        os.makedirs(self.home, exist_ok=True)

    def boto(self, ak=None, sk=None, **s3cfg):
        cfg = Config(signature_version="s3v4", s3={"addressing_style": "path", **s3cfg},
                     connect_timeout=5, read_timeout=60, retries={"max_attempts": 1})
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=ak or self.ak, aws_secret_access_key=sk or self.sk,
                            config=cfg)

    def aws(self, *args, **env):
        """awscli with svcctl's credentials and config (path-style), nothing from this host."""
        clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        clean.update({k: v for k, v in self.env.items() if k.startswith("AWS_")})
        clean.update(HOME=self.home, AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_PAGER="",
                     AWS_EC2_METADATA_DISABLED="true", **env)
        return subprocess.run([AWS, "--endpoint-url", self.endpoint, "s3api", *args],
                              capture_output=True, text=True, timeout=60, env=clean)

    def s3cmd(self, *args):
        """s3cmd with svcctl's config file (host_base/host_bucket, signature_v4, no https)."""
        return subprocess.run([S3CMD, "-c", os.path.join(self.base, "s3cfg"), *args],
                              capture_output=True, text=True, timeout=60)

    def log(self, name):
        """An access log; "fe" is every front end's (HAProxy spreads requests over them)."""
        names = sorted(glob.glob(os.path.join(self.env["SVC_LOGS"], "fe[0-9]*.log"))) \
            if name == "fe" else [os.path.join(self.env["SVC_LOGS"], name)]
        out = ""
        for path in names:
            with open(path) as f:
                out += f.read()
        return out

    def pid(self, name):
        with open(os.path.join(self.base, "run", name + ".pid")) as f:
            return int(f.read().split()[0])

    def manager(self, method, path, body=None):
        status, _, data = raw(method, self.env["SVC_MANAGER"] + path,
                              body=None if body is None else json.dumps(body))
        return status, json.loads(data)


@pytest.fixture(scope="module")
def svc(tmp_path_factory):
    base = tmp_path_factory.mktemp("svc")
    try:
        yield Service(base / "lab", service_up(base / "lab"), base / "home")
    finally:
        svcctl("down", "--base", str(base / "lab"))
        for data in glob.glob(str(base / "lab" / "node*" / "data")):  # objects go, logs stay
            shutil.rmtree(data, ignore_errors=True)


def client_error(fn):
    """(S3 error code, HTTP status) of a boto3 call that must fail."""
    with pytest.raises(ClientError) as ei:
        fn()
    e = ei.value.response
    return e["Error"]["Code"], e["ResponseMetadata"]["HTTPStatusCode"]


def raw(method, url, headers=None, body=None):
    """(status, headers, body) of one plain HTTP request."""
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    c.request(method, u.path + ("?" + u.query if u.query else ""), body=body, headers=headers or {})
    r = c.getresponse()
    out = (r.status, dict(r.getheaders()), r.read())
    c.close()
    return out


def s3_code(body):
    m = re.search(rb"<Code>([^<]*)</Code>", body)
    return m.group(1).decode() if m else None


# ---- boto3 ------------------------------------------------------------------------------------
def test_boto3_round(svc):
    s3 = svc.boto()
    b = "boto-round"
    s3.create_bucket(Bucket=b)
    assert client_error(lambda: s3.create_bucket(Bucket=b)) == ("BucketAlreadyOwnedByYou", 409)
    assert b in [x["Name"] for x in s3.list_buckets()["Buckets"]]

    # put: signed payloads, and one UNSIGNED-PAYLOAD (header auth; the client shows what it sent)
    for name, data in DATA.items():
        assert s3.put_object(Bucket=b, Key=f"obj/{name}", Body=data)["ETag"] == md5_etag(data)
    sent = []
    unsigned = svc.boto(payload_signing_enabled=False)
    unsigned.meta.events.register("before-send.s3.PutObject", lambda request, **_: sent.append(
        request.headers["X-Amz-Content-SHA256"]))
    r = unsigned.put_object(Bucket=b, Key="obj/unsigned", Body=DATA["1MiB"])
    assert r["ETag"] == md5_etag(DATA["1MiB"])
    assert sent in ([b"UNSIGNED-PAYLOAD"], ["UNSIGNED-PAYLOAD"])
    for name, data in list(DATA.items()) + [("unsigned", DATA["1MiB"])]:
        g = s3.get_object(Bucket=b, Key=f"obj/{name}")
        assert (g["Body"].read(), g["ETag"], g["ContentLength"]) == \
            (data, md5_etag(data), len(data))

    # ranges: closed, open, suffix, past the end -> 206 + Content-Range; none left -> 416
    big, key = DATA["1MiB"], "obj/1MiB"
    for rng, first, last in (("bytes=0-9", 0, 9), (f"bytes={MiB - 5}-", MiB - 5, MiB - 1),
                             ("bytes=-100", MiB - 100, MiB - 1),
                             ("bytes=10-99999999", 10, MiB - 1)):
        g = s3.get_object(Bucket=b, Key=key, Range=rng)
        assert g["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert g["ContentRange"] == f"bytes {first}-{last}/{MiB}"
        assert g["Body"].read() == big[first:last + 1]
    assert client_error(lambda: s3.get_object(Bucket=b, Key=key, Range=f"bytes={MiB}-")) == \
        ("InvalidRange", 416)
    assert client_error(lambda: s3.get_object(Bucket=b, Key="obj/0B", Range="bytes=0-")) == \
        ("InvalidRange", 416)

    # conditionals
    etag = md5_etag(big)
    past = datetime.datetime(2000, 1, 1)
    future = datetime.datetime.utcnow() + datetime.timedelta(days=1)
    get = lambda **kw: lambda: s3.get_object(Bucket=b, Key=key, **kw)  # noqa: E731
    assert client_error(get(IfNoneMatch=etag)) == ("304", 304)
    assert client_error(get(IfMatch='"0000"')) == ("PreconditionFailed", 412)
    assert client_error(get(IfModifiedSince=future)) == ("304", 304)
    assert client_error(get(IfUnmodifiedSince=past)) == ("PreconditionFailed", 412)
    assert get(IfMatch=etag)()["Body"].read() == big
    assert get(IfNoneMatch='"0000"', IfModifiedSince=past)()["ContentLength"] == MiB

    # head
    h = s3.head_object(Bucket=b, Key=key)
    assert (h["ContentLength"], h["ETag"], h["AcceptRanges"]) == (MiB, etag, "bytes")
    assert client_error(lambda: s3.head_object(Bucket=b, Key="obj/none")) == ("404", 404)

    # list: prefix, delimiter, max-keys + continuation tokens, start-after; V1 too
    all_keys = ["list/a", "list/b/1", "list/b/2", "list/c", "list/d e+f"]
    for k in all_keys:
        s3.put_object(Bucket=b, Key=k, Body=k.encode())
    r = s3.list_objects_v2(Bucket=b, Prefix="list/", Delimiter="/")
    assert [c["Key"] for c in r["Contents"]] == ["list/a", "list/c", "list/d e+f"]
    assert [p["Prefix"] for p in r["CommonPrefixes"]] == ["list/b/"]
    assert (r["Contents"][0]["ETag"], r["Contents"][0]["Size"]) == (md5_etag(b"list/a"), 6)
    keys, pages, more = [], 0, {}
    while True:
        r = s3.list_objects_v2(Bucket=b, Prefix="list/", MaxKeys=2, **more)
        keys, pages = keys + [c["Key"] for c in r["Contents"]], pages + 1
        if not r["IsTruncated"]:
            break
        more = {"ContinuationToken": r["NextContinuationToken"]}
    assert (keys, pages) == (all_keys, 3)
    r = s3.list_objects_v2(Bucket=b, StartAfter="list/b/1", Prefix="list/")
    assert [c["Key"] for c in r["Contents"]] == all_keys[2:]
    r = s3.list_objects(Bucket=b, Prefix="list/b/")
    assert [c["Key"] for c in r["Contents"]] == ["list/b/1", "list/b/2"]

    # delete (204 also when missing), then the errors
    for _ in range(2):
        assert s3.delete_object(Bucket=b, Key=key)["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert client_error(lambda: s3.get_object(Bucket=b, Key=key)) == ("NoSuchKey", 404)
    nob = "no-such-bucket"
    assert client_error(lambda: s3.get_object(Bucket=nob, Key=key)) == ("NoSuchBucket", 404)
    assert client_error(lambda: s3.put_object(Bucket=nob, Key=key, Body=b"x")) == \
        ("NoSuchBucket", 404)
    assert client_error(lambda: s3.list_objects_v2(Bucket=nob)) == ("NoSuchBucket", 404)
    assert client_error(lambda: svc.boto(sk=svc.wrong_sk).list_buckets()) == \
        ("SignatureDoesNotMatch", 403)
    assert client_error(lambda: svc.boto(ak=UNKNOWN_KEY).list_buckets()) == \
        ("InvalidAccessKeyId", 403)
    assert client_error(lambda: s3.put_object(Bucket=b, Key="bad-md5", Body=b"abc",
                                              ContentMD5="1B2M2Y8AsgTpgAmY7PhCfg==")) == \
        ("BadDigest", 400)


def test_skewed_clock_and_payload_hash(svc):
    """botocore's own SigV4 signer, used directly: 20 min skew -> RequestTimeTooSkewed (the same
    signer on time -> 200); a body that is not the signed SHA-256 -> XAmzContentSHA256Mismatch."""
    def signed(method, path, minutes=0, body=b"", payload_hash=None):
        class Signer(botocore.auth.S3SigV4Auth):
            def payload(self, request):  # what the client claims as x-amz-content-sha256
                return payload_hash or super().payload(request)

        req = AWSRequest(method=method, url=svc.endpoint + path, data=body)
        now = datetime.datetime.utcnow() + datetime.timedelta(minutes=minutes)
        clock = types.SimpleNamespace(datetime=types.SimpleNamespace(utcnow=lambda: now))
        with mock.patch.object(botocore.auth, "datetime", clock):
            Signer(Credentials(svc.ak, svc.sk), "s3", "us-east-1").add_auth(req)
        status, _, body = raw(method, svc.endpoint + path, dict(req.headers.items()), body)
        return status, s3_code(body)

    assert signed("GET", "/") == (200, None)
    assert signed("GET", "/", minutes=-20) == (403, "RequestTimeTooSkewed")
    assert signed("GET", "/", minutes=20) == (403, "RequestTimeTooSkewed")
    svc.boto().create_bucket(Bucket="payload-checks")
    other = hashlib.sha256(b"other body").hexdigest()
    assert signed("PUT", "/payload-checks/k", body=b"actual body", payload_hash=other) == \
        (400, "XAmzContentSHA256Mismatch")
    assert signed("PUT", "/payload-checks/k", body=b"x",
                  payload_hash="STREAMING-AWS4-HMAC-SHA256-PAYLOAD") == (501, "NotImplemented")
    assert client_error(lambda: svc.boto().head_object(Bucket="payload-checks", Key="k")) == \
        ("404", 404)


# ---- awscli -----------------------------------------------------------------------------------
def test_awscli_round(svc, tmp_path):
    b = "awscli-round"
    assert svc.aws("create-bucket", "--bucket", b).returncode == 0

    def run_all(cmds):  # awscli takes a second to start: three at a time
        with concurrent.futures.ThreadPoolExecutor(3) as ex:
            return list(ex.map(lambda c: svc.aws(*c[0], **c[1]) if isinstance(c, tuple)
                               else svc.aws(*c), cmds))

    for name, data in DATA.items():
        (tmp_path / name).write_bytes(data)
    puts = run_all([["put-object", "--bucket", b, "--key", f"d/{n}", "--body", str(tmp_path / n)]
                    for n in DATA])
    for data, r in zip(DATA.values(), puts):
        assert r.returncode == 0 and json.loads(r.stdout)["ETag"] == md5_etag(data), r.stderr
    out = {n: str(tmp_path / f"out-{n}") for n in ("full", "zero", "range", "x")}
    key = ["--bucket", b, "--key", "d/1MiB"]
    etag = md5_etag(DATA["1MiB"])
    (full, zero, rng, inm, im, head, ls, dup, badrange, none, nob, badsecret, badkey) = run_all([
        ["get-object", *key, out["full"]],
        ["get-object", "--bucket", b, "--key", "d/0B", out["zero"]],
        ["get-object", *key, "--range", "bytes=-10", out["range"]],
        ["get-object", *key, "--if-none-match", etag, out["x"] + "1"],
        ["get-object", *key, "--if-match", '"0000"', out["x"] + "2"],
        ["head-object", *key],
        ["list-objects-v2", "--bucket", b, "--prefix", "d/", "--delimiter", "/"],
        ["create-bucket", "--bucket", b],
        ["get-object", *key, "--range", f"bytes={MiB}-", out["x"] + "3"],
        ["get-object", "--bucket", b, "--key", "d/none", out["x"] + "4"],
        ["get-object", "--bucket", "no-such-bucket", "--key", "k", out["x"] + "5"],
        (["list-buckets"], {"AWS_SECRET_ACCESS_KEY": svc.wrong_sk}),
        (["list-buckets"], {"AWS_ACCESS_KEY_ID": UNKNOWN_KEY}),
    ])
    for r in (full, zero, rng, head, ls):
        assert r.returncode == 0, r.stderr
    assert open(out["full"], "rb").read() == DATA["1MiB"] and open(out["zero"], "rb").read() == b""
    assert open(out["range"], "rb").read() == DATA["1MiB"][-10:]
    assert json.loads(rng.stdout)["ContentRange"] == f"bytes {MiB - 10}-{MiB - 1}/{MiB}"
    assert json.loads(head.stdout)["ContentLength"] == MiB
    assert [c["Key"] for c in json.loads(ls.stdout)["Contents"]] == ["d/0B", "d/1B", "d/1MiB"]
    for r, code in ((inm, "304"), (im, "PreconditionFailed"), (dup, "BucketAlreadyOwnedByYou"),
                    (badrange, "InvalidRange"), (none, "NoSuchKey"), (nob, "NoSuchBucket"),
                    (badsecret, "SignatureDoesNotMatch"), (badkey, "InvalidAccessKeyId")):
        assert r.returncode != 0 and f"({code})" in r.stderr, (code, r.stderr)
    assert svc.aws("delete-object", *key).returncode == 0
    r = svc.aws("head-object", *key)
    assert r.returncode != 0 and "(404)" in r.stderr, r.stderr


# ---- s3cmd ------------------------------------------------------------------------------------
def test_s3cmd_round(svc, tmp_path):
    """s3cmd has no conditional GET (its --add-header reaches uploads only): no conditional here."""
    b = "s3cmd-round"
    r = svc.s3cmd("mb", f"s3://{b}")
    assert r.returncode == 0, r.stdout + r.stderr
    r = svc.s3cmd("mb", f"s3://{b}")
    assert r.returncode != 0 and "BucketAlreadyOwnedByYou" in r.stderr, r.stderr
    for name, data in DATA.items():
        (tmp_path / name).write_bytes(data)
        r = svc.s3cmd("put", str(tmp_path / name), f"s3://{b}/d/{name}")
        assert r.returncode == 0, r.stderr
        r = svc.s3cmd("get", "--force", f"s3://{b}/d/{name}", str(tmp_path / f"got-{name}"))
        assert r.returncode == 0 and (tmp_path / f"got-{name}").read_bytes() == data, r.stderr
    # range: --continue resumes a partial download with a Range request (206 in a front end's log)
    part = tmp_path / "partial"
    part.write_bytes(DATA["1MiB"][:1000])
    r = svc.s3cmd("get", "--continue", f"s3://{b}/d/1MiB", str(part))
    assert r.returncode == 0 and part.read_bytes() == DATA["1MiB"], r.stderr
    assert re.search(rf"op=GetObject method=GET path=/{b}/d/1MiB status=206 bytes_in=0 "
                     rf"bytes_out={MiB - 1000} ", svc.log("fe"))
    r = svc.s3cmd("info", f"s3://{b}/d/1MiB")
    assert r.returncode == 0 and "File size: 1048576" in r.stdout, r.stdout
    assert hashlib.md5(DATA["1MiB"]).hexdigest() in r.stdout
    r = svc.s3cmd("ls", f"s3://{b}/d/")
    assert r.returncode == 0 and [ln.split()[-1] for ln in r.stdout.splitlines()] == \
        [f"s3://{b}/d/{n}" for n in DATA], r.stdout
    assert f"s3://{b}" in svc.s3cmd("ls").stdout
    r = svc.s3cmd("del", f"s3://{b}/d/1MiB")
    assert r.returncode == 0, r.stderr
    r = svc.s3cmd("get", f"s3://{b}/d/1MiB", str(tmp_path / "gone"))
    assert r.returncode != 0 and "does not exist" in r.stderr, r.stderr
    for args, code in ((["ls", "s3://no-such-bucket/"], "NoSuchBucket"),
                       (["--secret_key", svc.wrong_sk, "ls"], "SignatureDoesNotMatch"),
                       (["--access_key", UNKNOWN_KEY, "ls"], "InvalidAccessKeyId")):
        r = svc.s3cmd(*args)
        assert r.returncode != 0 and code in r.stderr, (code, r.stderr)


# ---- curl -------------------------------------------------------------------------------------
def curl(*args):
    """(HTTP status, body) of a curl run."""
    r = subprocess.run(["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", *args],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    body, _, status = r.stdout.rpartition(b"\n")
    return int(status), body


def test_curl_presigned_and_anonymous(svc, tmp_path):
    s3 = svc.boto()
    b = "curl-round"
    s3.create_bucket(Bucket=b)

    def url(op, key, **kw):
        return s3.generate_presigned_url(op, Params={"Bucket": b, "Key": key}, **kw)

    for name, data in DATA.items():
        (tmp_path / name).write_bytes(data)
        assert curl("-T", str(tmp_path / name), url("put_object", f"c/{name}"))[0] == 200
        assert curl(url("get_object", f"c/{name}")) == (200, data)
    big = DATA["1MiB"]
    u = url("get_object", "c/1MiB")
    assert curl("-r", "100-199", u) == (206, big[100:200])
    assert curl("-r", "-7", u) == (206, big[-7:])
    status, body = curl("-r", f"{MiB}-", u)
    assert (status, s3_code(body)) == (416, "InvalidRange")
    assert curl("-H", f"If-None-Match: {md5_etag(big)}", u) == (304, b"")
    status, body = curl("-H", 'If-Match: "0000"', u)
    assert (status, s3_code(body)) == (412, "PreconditionFailed")
    assert curl("-I", u)[0] == 403  # signed for GET, not for HEAD
    status, body = curl("-I", url("head_object", "c/1MiB"))
    assert status == 200 and f"content-length: {MiB}".encode() in body.lower()  # HAProxy: lower
    assert md5_etag(big).encode() in body
    lst = s3.generate_presigned_url("list_objects_v2", Params={"Bucket": b, "Prefix": "c/"})
    status, body = curl(lst)
    assert status == 200 and body.count(b"<Key>") == 3
    assert curl("-X", "DELETE", url("delete_object", "c/1B"))[0] == 204
    status, body = curl(url("get_object", "c/1B"))
    assert (status, s3_code(body)) == (404, "NoSuchKey")
    # errors: tampered signature, expired URL, no credentials at all
    status, body = curl(re.sub(r"X-Amz-Signature=[0-9a-f]{8}", "X-Amz-Signature=00000000", u))
    assert (status, s3_code(body)) == (403, "SignatureDoesNotMatch")
    expiring = url("get_object", "c/1MiB", ExpiresIn=1)
    time.sleep(2.1)
    status, body = curl(expiring)
    assert (status, s3_code(body)) == (403, "AccessDenied") and b"Request has expired" in body
    for plain in (f"{svc.endpoint}/{b}/c/1MiB", f"{svc.endpoint}/", f"{svc.endpoint}/{b}"):
        status, body = curl(plain)
        assert (status, s3_code(body)) == (403, "AccessDenied"), body
        assert b"<RequestId>" in body and b"<Resource>" in body


# ---- 100 MiB ----------------------------------------------------------------------------------
def test_100mib_object(svc, tmp_path):
    """Signed-payload PUT with boto3 (the front end checks the SHA-256 while spooling), GET with
    curl through a presigned URL, sha256 equal; the front end's peak memory stays small."""
    src, dst = tmp_path / "big.src", tmp_path / "big.dst"
    try:
        check_100mib(svc, src, dst)
    finally:
        for f in (src, dst):
            f.unlink(missing_ok=True)


def check_100mib(svc, src, dst):
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with open(src, "wb") as f:
        for _ in range(100):
            chunk = os.urandom(MiB)
            sha.update(chunk)
            md5.update(chunk)
            f.write(chunk)
    s3 = svc.boto()
    s3.create_bucket(Bucket="big")
    t0 = time.monotonic()
    with open(src, "rb") as f:
        assert s3.put_object(Bucket="big", Key="100MiB", Body=f)["ETag"] == f'"{md5.hexdigest()}"'
    t1 = time.monotonic()
    u = s3.generate_presigned_url("get_object", Params={"Bucket": "big", "Key": "100MiB"})
    r = subprocess.run(["curl", "-sS", "-f", "-o", str(dst), u], capture_output=True, timeout=60)
    t2 = time.monotonic()
    assert r.returncode == 0, r.stderr
    got = hashlib.sha256()
    with open(dst, "rb") as f:
        while chunk := f.read(MiB):
            got.update(chunk)
    assert got.hexdigest() == sha.hexdigest()
    peak_kib = 0
    for fe in ("fe1", "fe2"):
        with open(f"/proc/{svc.pid(fe)}/status") as f:
            peak_kib = max(peak_kib, int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1)))
    assert peak_kib < 80 * 1024, f"front end peak RSS {peak_kib} KiB for a 100 MiB object"
    print(f"100 MiB: put {t1 - t0:.2f} s, get {t2 - t1:.2f} s, front end peak RSS "
          f"{peak_kib >> 10} MiB")


# ---- storage manager and nodes ----------------------------------------------------------------
def test_storage_node_credentials(svc):
    s3 = svc.boto()
    s3.create_bucket(Bucket="node-auth")
    data = b"direct from the storage node"
    s3.put_object(Bucket="node-auth", Key="dir/obj.txt", Body=data)
    status, loc = svc.manager("GET", "/locate?bucket=node-auth&key=dir/obj.txt")
    assert status == 200 and (loc["etag"], loc["size"]) == (md5_etag(data), len(data))
    assert len(loc["nodes"]) == len(set(loc["node_names"])) == int(svc.env["SVC_REPLICAS"])
    assert loc["path"] == svccommon.object_path("node-auth", "dir/obj.txt") == \
        "/objects/node-auth/dir%252Fobj.txt"
    status, res = svc.manager("POST", "/locate/batch", {"objects": [
        {"bucket": "node-auth", "key": "dir/obj.txt"}, {"bucket": "node-auth", "key": "nope"}]})
    assert status == 200 and res["results"][0]["urls"] == loc["urls"]
    assert res["results"][1]["error"] == "NoSuchKey"
    assert svc.manager("GET", "/locate?bucket=node-auth&key=nope") == \
        (404, {"error": "NoSuchKey", "bucket": "node-auth", "key": "nope"})

    with open(svc.env["SVC_NODE_KEYS"]) as f:
        keys = dict(ln.split() for ln in f)

    def cred(key_id="nodemgr", ttl=300, method="GET", path=loc["path"], secret=None):
        value = svccommon.node_auth(key_id, secret or keys[key_id], method, path, ttl)
        return {svccommon.NODE_AUTH_HEADER: value}

    for url in loc["urls"]:
        assert raw("GET", url)[0] == 403                                 # no credential
        assert raw("GET", url, cred(ttl=-10))[0] == 403                  # expired
        assert raw("GET", url, cred(ttl=1200))[0] == 403                 # > 15 min ahead
        assert raw("GET", url, cred(secret="00" * 32))[0] == 403         # wrong secret
        assert raw("GET", url, cred("stranger", secret="00" * 32))[0] == 403
        assert raw("GET", url, cred(method="PUT"))[0] == 403             # for another method
        assert raw("GET", url, cred(path=loc["path"] + "x"))[0] == 403   # ... another path
        assert raw("GET", url, cred())[::2] == (200, data)               # node manager's key
        assert raw("GET", url, cred("frontend"))[::2] == (200, data)     # front ends' key
    logs = "".join(svc.log(f"{n}.access.log") for n in loc["node_names"])
    for what in ("key_id=nodemgr auth=ok", "auth=expired", "auth=too-far-ahead", "auth=missing",
                 "auth=unknown-key", "auth=bad-signature"):
        assert what in logs


def test_read_falls_back_to_the_next_replica(svc):
    """The object's file is gone from the first replica (404 there): the second one serves."""
    s3 = svc.boto()
    s3.create_bucket(Bucket="failover")
    s3.put_object(Bucket="failover", Key="k", Body=b"replicated")
    first, second = svc.manager("GET", "/locate?bucket=failover&key=k")[1]["node_names"]
    os.remove(os.path.join(svc.base, first, "data", "objects", "failover",
                           svccommon.object_name("k")))
    g = s3.get_object(Bucket="failover", Key="k")
    assert g["Body"].read() == b"replicated"
    rid = g["ResponseMetadata"]["RequestId"]
    assert re.search(rf"req={rid} .* status=200 .* node={second} ", svc.log("fe"))
    assert re.search(rf'req={rid} "GET /objects/failover/k HTTP/1.1" status=404',
                     svc.log(f"{first}.access.log"))


def test_access_logs_show_the_path(svc):
    """One GET: the front end's line names the storage node, the manager logged the locate, that
    node logged the read with the front ends' key -- all under the request id the client got."""
    s3 = svc.boto()
    s3.create_bucket(Bucket="log-path")
    s3.put_object(Bucket="log-path", Key="traced", Body=b"trace me")
    g = s3.get_object(Bucket="log-path", Key="traced")
    assert g["Body"].read() == b"trace me"
    rid = g["ResponseMetadata"]["RequestId"]

    def line(log):
        return sp.wait_for(lambda: re.search(rf"^.* req={rid} .*$", svc.log(log), re.M), 5,
                           what=f"request {rid} in {log}").group(0)

    fe = line("fe")
    assert re.search(rf"s3front fe=fe\d req={rid} ", fe), fe
    lb = line("lb.access.log")
    assert re.search(r" lb req=\w+ client=127\.0\.0\.1:\d+ method=GET uri=\"/log-path/traced\" "
                     r"status=200 .* backend=frontends server=fe\d ", lb), lb
    assert f"ak={svc.ak} auth=header/signed-payload op=GetObject method=GET " \
           "path=/log-path/traced status=200 bytes_in=0 bytes_out=8 " in fe
    node = re.search(r" node=(node\d+) ", fe).group(1)
    assert "op=locate method=GET path=/locate?bucket=log-path&key=traced status=200" in \
        line("manager.log")
    n = line(f"{node}.access.log")
    assert f"node={node} " in n and "key_id=frontend auth=ok" in n
    assert '"GET /objects/log-path/traced HTTP/1.1" status=200 bytes_out=8' in n


# ---- the node manager's direct requests to storage nodes --------------------------------------
# shortpath sends a VM's S3 request straight to a storage node: the request line's target becomes
# svccommon.object_path(bucket, key), X-SP-Node-Auth (key id nodemgr) and `Connection: close` are
# added, everything else is the client's. The answer must be the service's (HAProxy -> front end)
# for the same request: status, header names (case too) and values in the same order, body.
VARYING = ("date", "x-amz-request-id", "x-amz-id-2")  # values differ from answer to answer
HOP_BY_HOP = ("connection", "keep-alive")  # shortpath asks the node for Connection: close


class Answer(types.SimpleNamespace):
    """status, headers [(name, value)] as sent, body, continued (a 100 Continue came first)."""

    def header(self, name):
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def shape(self):
        """What must be equal between the service's answer and a node's."""
        headers = [(k, "*" if k.lower() in VARYING else v) for k, v in self.headers
                   if k.lower() not in HOP_BY_HOP]
        return self.status, headers, re.sub(rb"<RequestId>\w+</RequestId>", b"<RequestId/>",
                                            self.body)


def read_head(f):
    status = int(f.readline().split()[1])
    headers = []
    while (line := f.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers.append((name, value.strip()))
    return status, headers


def read_answer(f, method, status, headers, continued):
    length = next((int(v) for k, v in headers if k.lower() == "content-length"), None)
    if method == "HEAD" or status in (204, 304):
        body = b""
    else:
        body = f.read() if length is None else f.read(length)
    return Answer(status=status, headers=headers, body=body, continued=continued)


def exchange(addr, method, target, headers, body=b"", expect=False):
    """One request on its own connection (the client asks to close it), the answer as sent; with
    expect, the body goes only after a 100 Continue (as awscli and boto3 do)."""
    headers = headers + [("Expect", "100-continue")] if expect else headers
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    with socket.create_connection(addr, timeout=60) as s, s.makefile("rb") as f:
        s.sendall((head + "\r\n").encode("latin-1"))
        continued = False
        if expect:
            status, hdrs = read_head(f)
            if status != 100:  # answered before the body: the client does not send it
                return read_answer(f, method, status, hdrs, False)
            continued = True
        s.sendall(body)
        while (head := read_head(f))[0] == 100:
            continued = True
        return read_answer(f, method, *head, continued)


class Direct:
    """The same signed S3 request sent the ordinary way (HAProxy) and the node manager's way."""

    def __init__(self, svc):
        self.svc = svc
        u = urllib.parse.urlsplit(svc.endpoint)
        self.lb, self.host = (u.hostname, u.port), u.netloc
        with open(svc.env["SVC_NODE_KEYS"]) as f:
            self.keys = dict(ln.split() for ln in f)
        self.nodes = dict(n.split("=", 1) for n in svc.env["SVC_NODES"].split(","))

    def node_of(self, bucket, key, i=0):
        """(name, base URL) of the object's i-th replica (as placed), any node for no bucket."""
        status, place = self.svc.manager("GET", "/place?" + urllib.parse.urlencode(
            {"bucket": bucket, "key": key}))
        if status == 404:
            return next(iter(self.nodes.items()))
        return place["node_names"][i], place["nodes"][i]

    def client_headers(self, method, bucket, key, headers=(), body=b"", payload_hash=None):
        """What an S3 client sends: botocore's SigV4 over the request, Host, Content-Length."""
        class Signer(botocore.auth.S3SigV4Auth):
            def payload(self, request):
                return payload_hash or super().payload(request)

        path = f"/{bucket}/" + urllib.parse.quote(key, safe="/~")
        req = AWSRequest(method=method, url=self.svc.endpoint + path, data=body,
                         headers=dict(headers))
        Signer(Credentials(self.svc.ak, self.svc.sk), "s3", "us-east-1").add_auth(req)
        out = [("Host", self.host), ("User-Agent", "Boto3/1.26 direct-test")]
        out += [(k, v) for k, v in req.headers.items()]
        if body or method == "PUT":
            out.append(("Content-Length", str(len(body))))
        return path, out

    def via_lb(self, method, bucket, key, headers=(), body=b"", expect=False, **kw):
        path, hdrs = self.client_headers(method, bucket, key, headers, body, **kw)
        return exchange(self.lb, method, path, hdrs + [("Connection", "close")], body, expect)

    def via_node(self, method, bucket, key, headers=(), body=b"", expect=False, node=None,
                 key_id="nodemgr", **kw):
        """As shortpath sends it: the target rewritten, its credential and Connection: close."""
        _, hdrs = self.client_headers(method, bucket, key, headers, body, **kw)
        base = self.nodes[node] if node else self.node_of(bucket, key)[1]
        u = urllib.parse.urlsplit(base)
        target = svccommon.object_path(bucket, key)
        hdrs += [(svccommon.NODE_AUTH_HEADER,
                  svccommon.node_auth(key_id, self.keys[key_id], method, target)),
                 ("Connection", "close")]
        return exchange((u.hostname, u.port), method, target, hdrs, body, expect)

    def same(self, method, bucket, key, headers=(), body=b"", expect=False, **kw):
        """The service's answer and the node's for one request: equal but for request ids and
        dates; the node's request id as the service's are. Returns the node's answer."""
        lb = self.via_lb(method, bucket, key, headers, body, expect, **kw)
        node = self.via_node(method, bucket, key, headers, body, expect, **kw)
        what = f"{method} {bucket}/{key} {dict(headers)}"
        assert node.shape() == lb.shape(), f"{what}\nservice: {lb.shape()}\nnode:    {node.shape()}"
        assert node.continued == lb.continued, what
        check_request_id(node)
        return node


def check_request_id(a):
    rid = a.header("x-amz-request-id")
    assert re.fullmatch(r"[0-9A-F]{16}", rid or ""), a.headers
    assert a.header("x-amz-id-2") == base64.b64encode(rid.encode()).decode()
    if a.body.startswith(b"<?xml"):
        assert f"<RequestId>{rid}</RequestId>".encode() in a.body


def logged(svc, log, pattern):
    """The line of an access log matching pattern (logs are written after the answer)."""
    return sp.wait_for(lambda: re.search(pattern, svc.log(log), re.M), 5,
                       what=f"{pattern} in {log}")[0]


@pytest.fixture(scope="module")
def direct(svc):
    return Direct(svc)


def test_direct_get_and_head_answer_as_the_service(svc, direct):
    s3 = svc.boto()
    b = "direct-get"
    s3.create_bucket(Bucket=b)
    data = random.Random(11).randbytes(3000)
    key = "dir/obj name+1.bin"
    s3.put_object(Bucket=b, Key=key, Body=data, ContentType="application/x-test",
                  Metadata={"foo": "bar", "color": "blue"})
    s3.put_object(Bucket=b, Key="empty", Body=b"")
    etag = md5_etag(data)
    lm = s3.head_object(Bucket=b, Key=key)["LastModified"].timestamp()
    before, at, future = (email.utils.formatdate(t, usegmt=True) for t in (lm - 1, lm, lm + 86400))
    cases = [
        {}, {"Range": "bytes=0-9"}, {"Range": "bytes=2990-"}, {"Range": "bytes=-100"},
        {"Range": "bytes=10-999999"}, {"Range": "bytes=3000-"}, {"Range": "bytes=-0"},
        {"Range": "bytes=9-2"}, {"Range": "bytes=0-1,5-6"}, {"Range": "items=0-1"},
        {"Range": "bytes=-"}, {"Range": "bytes=1-99999999999999999999"},
        {"If-None-Match": etag}, {"If-None-Match": '"0000", W/' + etag}, {"If-None-Match": "*"},
        {"If-None-Match": '"0000"'}, {"If-Match": etag}, {"If-Match": etag.strip('"')},
        {"If-Match": '"0000"'}, {"If-Modified-Since": at}, {"If-Modified-Since": before},
        {"If-Modified-Since": future}, {"If-Unmodified-Since": before},
        {"If-Unmodified-Since": at}, {"If-Unmodified-Since": "not a date"},
        {"If-Match": etag, "If-Unmodified-Since": before},                # If-Match wins
        {"If-None-Match": '"0000"', "If-Modified-Since": future},         # If-None-Match wins
        {"If-Match": '"0000"', "Range": "bytes=5000-"},                   # 412 before 416
        {"If-None-Match": etag, "Range": "bytes=0-1"},
        {"Range": "bytes=0-1", "If-Range": '"0000"'},                     # If-Range: ignored
        {"If-Modified-Since": "Sunday, 06-Nov-94 08:49:37 GMT"},         # RFC 850
        {"If-Unmodified-Since": "Sun Nov  6 08:49:37 1994"},              # asctime
        {"If-Unmodified-Since": "Sun, 06 Nov 1994 08:49:37 +0100"},
    ]
    ways = collections.Counter()
    for method in ("GET", "HEAD"):
        for headers in cases:
            a = direct.same(method, b, key, headers)
            if method == "GET" and a.status in (200, 206):
                rng = a.header("Content-Range")
                first, last = (int(x) for x in rng.split()[1].split("/")[0].split("-")) \
                    if rng else (0, len(data) - 1)
                assert a.body == data[first:last + 1]
            ways[a.status] += 1
    assert set(ways) == {200, 206, 304, 412, 416}
    for method in ("GET", "HEAD"):
        for headers in ({}, {"Range": "bytes=0-"}, {"Range": "bytes=-1"}):
            direct.same(method, b, "empty", headers)
        direct.same(method, b, "no/such key", {})                           # NoSuchKey
        direct.same(method, "no-such-bucket", key, {})                      # NoSuchBucket

    # served by nginx from the file (and its sidecar), or by njs, or by the node agent: the node's
    # access log says which; the service's logs never saw the node's request ids
    a = direct.via_node("GET", b, key)
    rid, node = a.header("x-amz-request-id"), direct.node_of(b, key)[0]
    line = logged(svc, f"{node}.access.log", rf"^.* req={rid} .*$")
    assert "key_id=nodemgr auth=ok" in line and "status=200 bytes_out=3000 " in line, line
    assert line.endswith(" direct=file"), line
    for log in ("fe", "lb.access.log", "manager.log"):
        assert rid not in svc.log(log)
    assert " direct=njs" in svc.log(f"{node}.access.log")
    assert not re.search(r"^.* key_id=nodemgr auth=ok .* direct=-$",
                         svc.log(f"{node}.access.log"), re.M)


def test_direct_get_without_sidecar_asks_the_agent(svc, direct):
    """An object written before sidecars existed (here: its sidecar removed) or not on this node:
    the node agent answers, as the front ends would (from a replica), and logs it."""
    s3 = svc.boto()
    b = "direct-nosidecar"
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="k", Body=b"no sidecar here", Metadata={"m": "1"})
    name, _ = direct.node_of(b, "k")
    os.remove(os.path.join(svc.base, name, "data", "meta", b, "k"))
    etag = md5_etag(b"no sidecar here")
    for method in ("GET", "HEAD"):
        for headers in ({}, {"Range": "bytes=3-"}, {"Range": "bytes=99-"}, {"If-Match": '"0000"'},
                        {"If-None-Match": etag}, {"If-Match": etag.strip('"')}):
            direct.same(method, b, "k", headers)
    a = direct.via_node("GET", b, "k")
    rid = a.header("x-amz-request-id")
    assert a.body == b"no sidecar here"
    logged(svc, f"{name}.access.log", rf"req={rid} .* direct=agent$")
    logged(svc, f"{name}.agent.log",
           rf"agent={name} req={rid} .* op=GetObject method=GET path=/{b}/k status=200 ")
    other = next(n for n in direct.nodes if n not in svc.manager(
        "GET", f"/locate?bucket={b}&key=k")[1]["node_names"])  # the node without a replica
    a = direct.via_node("GET", b, "k", node=other)
    assert (a.status, a.body) == (200, b"no sidecar here")


def test_direct_put_and_delete(svc, direct):
    s3 = svc.boto()
    b = "direct-put"
    s3.create_bucket(Bucket=b)
    data = random.Random(5).randbytes(200_000)
    md5 = base64.b64encode(hashlib.md5(data).digest()).decode()
    meta = {"x-amz-meta-foo": "bar", "Content-Type": "text/x-direct"}

    def put_both(key, headers, body=data, **kw):
        """The same PUT the ordinary way, then directly (the node's version is the one kept)."""
        lb = direct.via_lb("PUT", b, key, headers, body, expect=True, **kw)
        node = direct.via_node("PUT", b, key, headers, body, expect=True, **kw)
        assert node.shape() == lb.shape(), f"{key}\n{lb.shape()}\n{node.shape()}"
        check_request_id(node)
        if node.status == 200:  # the storage manager has the node's version
            logged(svc, "manager.log", rf"req={node.header('x-amz-request-id')} .* op=commit ")
        return node

    a = put_both("put/plain", meta)
    assert a.continued and (a.status, a.header("ETag")) == (200, md5_etag(data))
    assert a.header("Content-Length") == "0" and a.header("Server") == "nginx"
    assert put_both("put/md5", {"Content-MD5": md5}).status == 200
    assert s3_code(put_both("put/bad-md5", {"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg=="}).body) \
        == "BadDigest"
    other = hashlib.sha256(b"another body").hexdigest()
    a = put_both("put/bad-sha", {}, payload_hash=other)
    assert (a.status, s3_code(a.body)) == (400, "XAmzContentSHA256Mismatch")
    assert put_both("put/unsigned", {}, payload_hash="UNSIGNED-PAYLOAD").status == 200
    assert put_both("put/empty", {}, body=b"").status == 200
    # answered before the body by the front end, after it by the node (nginx answers the
    # 100-continue itself): the same answer, but only the node's came after a 100 Continue;
    # a body over 1 MiB too (the node agent reads it all, nginx sends it all)
    big = data * 11
    for key, headers, code in (("put/invalid-md5", {"Content-MD5": "nope"}, "InvalidDigest"),
                               ("k" * 300, {}, "KeyTooLongError")):
        lb = direct.via_lb("PUT", b, key, headers, big, expect=True)
        node = direct.via_node("PUT", b, key, headers, big, expect=True)
        assert node.shape() == lb.shape() and s3_code(node.body) == code, (lb, node)
    lb = direct.via_lb("PUT", "no-such-bucket", "k", {}, data)
    node = direct.via_node("PUT", "no-such-bucket", "k", {}, data)
    assert node.shape() == lb.shape() and s3_code(node.body) == "NoSuchBucket"

    # what the node stored is what the service serves: body, ETag, metadata, listing
    g = s3.get_object(Bucket=b, Key="put/plain")
    assert (g["Body"].read(), g["ETag"], g["ContentType"], g["Metadata"]) == \
        (data, md5_etag(data), "text/x-direct", {"foo": "bar"})
    only = direct.via_node("PUT", b, "put/only-node", {"x-amz-meta-who": "node"}, b"node data",
                           expect=True)
    g = s3.get_object(Bucket=b, Key="put/only-node")
    assert (g["Body"].read(), g["ETag"], g["ContentType"], g["Metadata"]) == \
        (b"node data", only.header("ETag"), "binary/octet-stream", {"who": "node"})
    keys = [c["Key"] for c in s3.list_objects_v2(Bucket=b, Prefix="put/")["Contents"]]
    assert {"put/plain", "put/md5", "put/only-node"} <= set(keys) and "put/bad-md5" not in keys
    assert client_error(lambda: s3.head_object(Bucket=b, Key="put/bad-sha")) == ("404", 404)
    for key in ("put/plain", "put/empty"):
        direct.same("GET", b, key)
    # on every replica: the file, its sidecar; the log: the node, its agent, the replica writes
    loc = svc.manager("GET", f"/locate?bucket={b}&key=put/plain")[1]
    for name in loc["node_names"]:
        with open(os.path.join(svc.base, name, "data", "objects", b, "put%2Fplain"), "rb") as f:
            assert f.read() == data
        with open(os.path.join(svc.base, name, "data", "meta", b, "put%2Fplain")) as f:
            assert json.load(f)["etag"] == md5_etag(data)
    a = direct.via_node("PUT", b, "put/logged", {}, b"logged", expect=True)
    rid = a.header("x-amz-request-id")
    name = direct.node_of(b, "put/logged")[0]
    logged(svc, f"{name}.access.log", rf'key_id=nodemgr auth=ok req={rid} "PUT /objects/{b}/'
           r'put%252Flogged HTTP/1.1" status=200 .* direct=agent$')
    logged(svc, f"{name}.agent.log", rf"agent={name} req={rid} .* op=PutObject method=PUT "
           rf"path=/{b}/put/logged status=200 bytes_in=6 ")
    replicas = svc.manager("GET", f"/locate?bucket={b}&key=put/logged")[1]["node_names"]
    for n in replicas:
        assert re.search(rf'key_id=nodeagent auth=ok req={rid} "PUT /objects/{b}/put%252Flogged',
                         svc.log(f"{n}.access.log"))
    assert f"req={rid} " in svc.log("manager.log")
    assert rid not in svc.log("fe") + svc.log("lb.access.log")

    # a front end's object read directly; a node's deleted directly, then gone for the service
    s3.put_object(Bucket=b, Key="fe/obj", Body=b"via the front end", Metadata={"a": "1"})
    direct.same("GET", b, "fe/obj")
    direct.same("HEAD", b, "fe/obj", {"Range": "bytes=4-"})
    lb = direct.via_lb("DELETE", b, "put/unsigned")
    node = direct.via_node("DELETE", b, "put/md5")
    assert node.shape() == lb.shape() and node.status == 204
    assert direct.via_node("DELETE", b, "put/md5").status == 204  # missing: 204 too
    assert client_error(lambda: s3.get_object(Bucket=b, Key="put/md5")) == ("NoSuchKey", 404)
    for name in loc["node_names"]:
        for d in ("objects", "meta"):
            assert not os.path.exists(os.path.join(svc.base, name, "data", d, b, "put%2Fmd5"))
    direct.same("GET", b, "put/md5")
    node = direct.via_node("DELETE", "no-such-bucket", "k")
    assert (node.status, s3_code(node.body)) == (404, "NoSuchBucket")

    # 20 MiB: stored and served directly, byte for byte, by both ways
    big = os.urandom(20 * MiB)
    t0 = time.monotonic()
    a = direct.via_node("PUT", b, "big", {}, big, expect=True, payload_hash="UNSIGNED-PAYLOAD")
    t1 = time.monotonic()
    assert (a.status, a.header("ETag"), a.continued) == (200, md5_etag(big), True)
    g = direct.via_node("GET", b, "big")
    t2 = time.monotonic()
    assert g.status == 200 and g.body == big and g.header("Content-Length") == str(20 * MiB)
    assert direct.via_lb("GET", b, "big").body == big
    print(f"20 MiB direct: put {t1 - t0:.2f} s, get {t2 - t1:.2f} s")


def test_direct_boto3_client(svc, direct):
    """boto3 itself, its requests sent where shortpath would send them (a before-send hook does
    shortpath's part): PutObject waits for 100 Continue, then Get, Head, Delete."""
    s3 = svc.boto()
    b = "direct-boto3"
    s3.create_bucket(Bucket=b)
    sent = []

    def to_node(request, **_):
        bucket, _, key = urllib.parse.unquote(urllib.parse.urlsplit(request.url).path) \
            .lstrip("/").partition("/")
        target = svccommon.object_path(bucket, key)
        request.url = direct.node_of(bucket, key)[1] + target
        request.headers[svccommon.NODE_AUTH_HEADER] = svccommon.node_auth(
            "nodemgr", direct.keys["nodemgr"], request.method, target)
        sent.append((request.method, request.headers.get("Expect")))

    for op in ("PutObject", "GetObject", "HeadObject", "DeleteObject"):
        s3.meta.events.register(f"before-send.s3.{op}", to_node)
    data = random.Random(3).randbytes(3 * MiB)
    r = s3.put_object(Bucket=b, Key="k", Body=io.BytesIO(data), Metadata={"via": "node"})
    assert r["ETag"] == md5_etag(data)
    g = s3.get_object(Bucket=b, Key="k", Range="bytes=5-")
    assert (g["ContentRange"], g["Metadata"]) == (f"bytes 5-{3 * MiB - 1}/{3 * MiB}",
                                                  {"via": "node"})
    assert g["Body"].read() == data[5:]
    assert s3.head_object(Bucket=b, Key="k")["ContentLength"] == 3 * MiB
    s3.delete_object(Bucket=b, Key="k")
    assert client_error(lambda: s3.head_object(Bucket=b, Key="k")) == ("404", 404)
    assert sent[0] in (("PUT", b"100-continue"), ("PUT", "100-continue"))
    assert [m for m, _ in sent] == ["PUT", "GET", "HEAD", "DELETE", "HEAD"]
    assert client_error(lambda: svc.boto().get_object(Bucket=b, Key="k")) == ("NoSuchKey", 404)


def test_direct_node_keeps_dav_and_refusals(svc, direct):
    """The front ends' key still gets plain WebDAV (nginx's own answers, no S3 headers); no or a
    bad credential is still a 403; the node manager's key reaches objects only."""
    s3 = svc.boto()
    b = "direct-dav"
    s3.create_bucket(Bucket=b)
    s3.put_object(Bucket=b, Key="k", Body=b"dav")
    name, base = direct.node_of(b, "k")
    path = svccommon.object_path(b, "k")

    def cred(method, p=path, key_id="frontend"):
        return {svccommon.NODE_AUTH_HEADER: svccommon.node_auth(key_id, direct.keys[key_id],
                                                                method, p)}

    status, headers, body = raw("GET", base + path, cred("GET"))
    assert (status, body) == (200, b"dav") and "x-amz-request-id" not in headers
    assert headers["ETag"] != md5_etag(b"dav")  # nginx's own
    tmp = f"/objects/{b}/dav-only"
    assert raw("PUT", base + tmp, cred("PUT", tmp), b"x")[0] == 201
    assert raw("GET", base + tmp, cred("GET", tmp))[::2] == (200, b"x")
    assert raw("DELETE", base + tmp, cred("DELETE", tmp))[0] == 204
    assert raw("GET", base + tmp, cred("GET", tmp))[0] == 404
    for method in ("GET", "PUT", "DELETE"):
        assert raw(method, base + path, {}, b"x" if method == "PUT" else None)[0] == 403
        bad = {svccommon.NODE_AUTH_HEADER: svccommon.node_auth("nodemgr", "00" * 32, method,
                                                               path)}
        assert raw(method, base + path, bad, b"x" if method == "PUT" else None)[0] == 403
    meta = svccommon.meta_path(b, "k")
    assert raw("GET", base + meta, cred("GET", meta, "nodemgr"))[0] == 404
    assert raw("PUT", base + meta, cred("PUT", meta, "nodemgr"), b"{}")[0] == 404
    assert raw("GET", base + "/", cred("GET", "/", "nodemgr"))[0] == 404
    assert s3.get_object(Bucket=b, Key="k")["Body"].read() == b"dav"


# ---- svcctl -----------------------------------------------------------------------------------
def test_svcctl_lifecycle(tmp_path):
    """up is idempotent and repairs a broken service; state survives; down stops every process."""
    base = str(tmp_path / "lab")
    small = ["--nodes", "1", "--frontends", "1", "--replicas", "1"]
    env = service_up(base, *small)
    port = env["SVC_MANAGER"].rsplit(":", 1)[1]
    r = svcctl("up", "--base", base, "--port-base", port, *small)
    assert r.returncode == 0 and "already up" in r.stdout
    assert svcctl("status", "--base", base).returncode == 0
    s3 = boto3.client("s3", endpoint_url=env["SVC_ENDPOINT"], region_name="us-east-1",
                      aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                      config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
    s3.create_bucket(Bucket="keep")
    s3.put_object(Bucket="keep", Key="k", Body=b"kept")

    def pids():
        run = os.path.join(base, "run")
        return {fn[:-4]: int(open(os.path.join(run, fn)).read().split()[0])
                for fn in os.listdir(run)}

    assert set(pids()) == {"redis", "node1", "agent1", "manager", "fe1", "lb"}
    os.kill(pids()["fe1"], 9)
    r = svcctl("status", "--base", base)
    assert r.returncode != 0 and "DEGRADED" in r.stdout
    r = svcctl("up", "--base", base, "--port-base", port, *small)
    assert r.returncode == 0, r.stdout + r.stderr
    assert s3.get_object(Bucket="keep", Key="k")["Body"].read() == b"kept"

    running = pids().values()
    r = svcctl("down", "--base", base)
    assert r.returncode == 0 and "stopped" in r.stdout
    for p in running:
        assert not os.path.exists(f"/proc/{p}") or open(f"/proc/{p}/stat").read().split()[2] == "Z"
    assert os.listdir(os.path.join(base, "run")) == []
    r = svcctl("down", "--base", base)
    assert r.returncode == 0 and "nothing was running" in r.stdout
    assert svcctl("status", "--base", base).returncode != 0
    r = svcctl("down", "--base", base, "--purge")
    assert r.returncode == 0 and not os.path.exists(base)
