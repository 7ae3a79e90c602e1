#!/usr/bin/python3
"""Web front end of the lab object service: the S3 REST subset (path-style, SigV4) over its tiers.

    s3front.py --listen ADDR:PORT --redis URL --manager http://ADDR:PORT --node-key-id ID
               --node-key-file FILE --region us-east-1 --log FILE [--name fe1] [--spool-dir DIR]

Operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation, ListObjects
(V1, V2), PutObject, GetObject (Range, If-Match, If-None-Match, If-Modified-Since,
If-Unmodified-Since), HeadObject, DeleteObject; anything else is S3's NotImplemented.
Client credentials: Redis hashes svc:cred:{ACCESS_KEY} (fields secret, owner, and optionally
buckets: comma-separated bucket names or prefixes ending in '*' the credential may use; absent =
every bucket). A correctly signed request for another bucket is AccessDenied (checked after the
signature, as S3 checks a policy); ListBuckets names no bucket and is allowed, any other request
without a bucket or with a percent-encoded bucket name is denied to a restricted credential.
A PutObject body is spooled (memory up to 1 MiB, then a temporary file) so its SHA-256 and
Content-MD5 are checked before anything is stored, then written to every replica the storage
manager names (the file's mtime is the object's Last-Modified), with the object's metadata sidecar
next to it (svccommon.meta_path: what a storage node needs to answer a direct GET itself); a
GetObject streams from the first replica that answers as expected.
Answers carry the storage nodes' Server header and nginx's header order, so that an answer a
storage node gives the node manager directly (node_agent.py, storage_node_direct.js) cannot be told
from this one.
Access log: one line per request (request id, access key, operation, status, bytes, storage node).
"""
import argparse
import base64
import binascii
import calendar
import email.utils
import hashlib
import hmac
import io
import json
import re
import secrets
import sys
import tempfile
import time
import traceback
import urllib.parse
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

import sigv4
from sigv4 import AuthError
from svccommon import (NODE_AUTH_HEADER, REQUEST_ID_HEADER, SERVER, AccessLog, meta_path, node_auth,
                       object_name, read_node_secret)

S3NS = "http://s3.amazonaws.com/doc/2006-03-01/"
CHUNK = 256 * 1024
SPOOL_IN_MEMORY = 1 << 20
MAX_SKEW = 900
MAX_OBJECT = 5 << 30
BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
SHA256_RE = re.compile(r"[0-9a-f]{64}")
ISO = "%Y-%m-%dT%H:%M:%SZ"
UNSUPPORTED = {  # sub-resources of operations this service does not implement
    "acl", "policy", "cors", "lifecycle", "tagging", "versioning", "website", "logging",
    "notification", "replication", "encryption", "uploads", "uploadId", "partNumber", "versionId",
    "versions", "delete", "restore", "select", "torrent", "object-lock", "legal-hold", "retention",
    "accelerate", "analytics", "inventory", "metrics", "ownershipControls", "publicAccessBlock",
    "requestPayment", "intelligent-tiering", "attributes"}

ERRORS = {  # S3 error code -> HTTP status, S3's default message
    "AccessDenied": (403, "Access Denied"),
    "AuthorizationHeaderMalformed": (400, "The authorization header is malformed."),
    "AuthorizationQueryParametersError": (400, "Query-string authentication version 4 requires "
                                          "the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, "
                                          "X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires "
                                          "parameters."),
    "BadDigest": (400, "The Content-MD5 you specified did not match what we received."),
    "BucketAlreadyExists": (409, "The requested bucket name is not available. The bucket "
                            "namespace is shared by all users of the system. Please select a "
                            "different name and try again."),
    "BucketAlreadyOwnedByYou": (409, "Your previous request to create the named bucket "
                                "succeeded and you already own it."),
    "BucketNotEmpty": (409, "The bucket you tried to delete is not empty"),
    "EntityTooLarge": (400, "Your proposed upload exceeds the maximum allowed object size."),
    "IncompleteBody": (400, "You did not provide the number of bytes specified by the "
                       "Content-Length HTTP header"),
    "InternalError": (500, "We encountered an internal error. Please try again."),
    "InvalidAccessKeyId": (403, "The AWS Access Key Id you provided does not exist in our "
                           "records."),
    "InvalidArgument": (400, "Invalid Argument"),
    "InvalidBucketName": (400, "The specified bucket is not valid."),
    "InvalidDigest": (400, "The Content-MD5 you specified was invalid."),
    "InvalidRange": (416, "The requested range is not satisfiable"),
    "InvalidRequest": (400, "Invalid Request"),
    "KeyTooLongError": (400, "Your key is too long"),
    "MaxMessageLengthExceeded": (400, "Your request was too big."),
    "MethodNotAllowed": (405, "The specified method is not allowed against this resource."),
    "MissingContentLength": (411, "You must provide the Content-Length HTTP header."),
    "NoSuchBucket": (404, "The specified bucket does not exist"),
    "NoSuchKey": (404, "The specified key does not exist."),
    "NotImplemented": (501, "A header you provided implies functionality that is not "
                       "implemented"),
    "PreconditionFailed": (412, "At least one of the pre-conditions you specified did not hold"),
    "RequestTimeTooSkewed": (403, "The difference between the request time and the current time "
                             "is too large."),
    "ServiceUnavailable": (503, "Service is unable to handle request."),
    "SignatureDoesNotMatch": (403, "The request signature we calculated does not match the "
                              "signature you provided. Check your key and signing method."),
    "XAmzContentSHA256Mismatch": (400, "The provided 'x-amz-content-sha256' header does not "
                                  "match what was computed."),
}


class S3Error(Exception):
    """An S3 error: code (status and default message from ERRORS), extra XML fields, headers."""

    def __init__(self, code, message=None, headers=(), **extra):
        self.status, default = ERRORS[code]
        super().__init__(message or default)
        self.code, self.message, self.headers, self.extra = code, message or default, headers, extra


def gmt_iso(epoch):
    return time.strftime(ISO, time.gmtime(epoch))


def iso_to_epoch(s):
    return calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S"))


def parse_http_date(s):
    try:
        return email.utils.parsedate_to_datetime(s).timestamp()
    except (TypeError, ValueError, IndexError):
        return None


def etag_matches(header, etag):
    tags = [t.strip().removeprefix("W/").strip('"') for t in header.split(",")]
    return "*" in tags or etag.strip('"') in tags


def xml_doc(root, inner, ns=True):
    xmlns = f' xmlns="{S3NS}"' if ns else ""
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}{xmlns}>{inner}</{root}>'.encode()


def el(name, value):
    return f"<{name}>{escape(str(value))}</{name}>"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = SERVER
    timeout = 120  # seconds a connection may stay silent (idle keep-alive, stalled body)
    disable_nagle_algorithm = True  # headers, then body: no delayed-ACK wait between them
    # reason phrases as nginx writes them (a storage node answering directly does)
    responses = {**BaseHTTPRequestHandler.responses, 405: ("Not Allowed", ""),
                 503: ("Service Temporarily Unavailable", "")}
    expect_continue = False  # the client waits for "100 Continue" before sending the body
    log_name_field = "fe"  # the access log's first field: <this> = the server's name

    def log_message(self, fmt, *args):  # the access log replaces http.server's stderr lines
        pass

    def version_string(self):  # the Server header: the storage nodes' (no Python version)
        return SERVER

    def handle_expect_100(self):
        self.expect_continue = True  # answer it only once the request is known to be acceptable
        return True

    def continue_100(self):
        if self.expect_continue:
            self.send_response_only(100)
            self.end_headers()
            self.expect_continue = False

    # ---- one request ---------------------------------------------------------------------------
    def serve(self):
        fe = self.server.fe
        self.req_id = secrets.token_hex(8).upper()
        t0 = time.monotonic()
        self.status = self.bytes_out = self.bytes_in = self.body_left = 0
        self.ak = self.auth = self.op = self.node = self.err = self.remote = None
        self.sent = False
        raw_path, _, raw_query = self.path.partition("?")
        self.resource, bucket, key = self.target(raw_path)
        try:
            if self.headers.get("Transfer-Encoding"):  # never read: S3 wants a Content-Length
                self.close_connection = True
            try:
                self.body_left = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                self.close_connection = True
                raise S3Error("InvalidArgument", "Bad Content-Length") from None
            self.pairs = sigv4.query_pairs(raw_query)
            self.q = dict(self.pairs)
            self.owner, self.payload_sha = self.authenticate(raw_path)
            self.route(bucket, key)
        except AuthError as e:
            self.send_error_xml(S3Error(e.code, e.message, **e.extra))
        except S3Error as e:
            self.send_error_xml(e)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            self.err = "client-gone"
        except Exception:  # noqa: BLE001 - answer InternalError, show the bug on stderr
            traceback.print_exc()
            self.send_error_xml(S3Error("InternalError"))
        finally:
            if self.unread_body_dropped():
                self.close_connection = True
            elif self.body_left:
                self.drain_body()
            self.expect_continue = False
            fe.log.write(**{self.log_name_field: fe.name}, req=self.req_id,
                         remote=self.remote or f"{self.client_address[0]}:{self.client_address[1]}",
                         ak=self.ak, auth=self.auth, op=self.op, method=self.command,
                         path=urllib.parse.quote(self.resource), status=self.status,
                         bytes_in=self.bytes_in, bytes_out=self.bytes_out, node=self.node,
                         err=self.err, ms=round((time.monotonic() - t0) * 1000, 1))

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = serve

    def target(self, raw_path):
        """(resource as error documents name it, bucket, key) of the request path (path-style)."""
        resource = urllib.parse.unquote(raw_path)
        bucket, _, key = resource.lstrip("/").partition("/")
        return resource, bucket, key

    # ---- responses -----------------------------------------------------------------------------
    def start(self, status, headers=(), length=0):
        """Status and headers, in the order nginx sends them (a storage node answering the node
        manager directly): Content-Type, Content-Length (not for 204 and 304), Last-Modified of a
        200/206, then the request ids, then the others as given."""
        self.status = status
        self.send_response(status)
        headers = list(headers)
        first = [h for h in headers if h[0] == "Content-Type"]
        if status not in (204, 304):
            first.append(("Content-Length", str(length)))
        if status in (200, 206):
            first += [h for h in headers if h[0] == "Last-Modified"]
        ids = [("x-amz-request-id", self.req_id),
               ("x-amz-id-2", base64.b64encode(self.req_id.encode()).decode())]
        for k, v in first + ids + [h for h in headers if h not in first]:
            self.send_header(k, v)
        if self.unread_body_dropped():
            # hop-by-hop: a proxy in front (HAProxy) keeps its client connection unless told by
            # a header it can see; the client did not send the body and must not reuse it
            self.send_header("Connection", "close")
            self.send_header("X-SP-Close", "unread-body")
        self.end_headers()
        self.sent = True

    def send_body(self, status, body=b"", headers=()):
        ctype = [("Content-Type", "application/xml")] if body else []
        self.start(status, list(headers) + ctype, len(body))
        if self.command != "HEAD" and body:
            self.wfile.write(body)
            self.bytes_out += len(body)

    def send_error_xml(self, e):
        self.err = e.code
        if self.sent:  # too late for an error document: cut the response short
            self.close_connection = True
            return
        inner = (el("Code", e.code) + el("Message", e.message) + el("Resource", self.resource)
                 + el("RequestId", self.req_id) + "".join(el(k, v) for k, v in e.extra.items()))
        self.send_body(e.status, xml_doc("Error", inner, ns=False), e.headers)

    # ---- request bodies ------------------------------------------------------------------------
    def unread_body_dropped(self):
        """A body is left that will not be read (the client waits for 100, or it is big)."""
        return self.body_left and (self.expect_continue or self.body_left > SPOOL_IN_MEMORY)

    def read_body(self):
        """The body in chunks, counting what is read; a short body is S3's IncompleteBody."""
        self.continue_100()
        while self.body_left:
            chunk = self.rfile.read(min(CHUNK, self.body_left))
            if not chunk:
                self.close_connection = True
                raise S3Error("IncompleteBody")
            self.body_left -= len(chunk)
            self.bytes_in += len(chunk)
            yield chunk

    def drain_body(self):
        """Read what is left of the body, for nothing: the next request follows it."""
        try:
            for _ in self.read_body():
                pass
        except (S3Error, OSError):
            pass

    def read_small_body(self):
        try:
            return b"".join(self.read_body())
        except (S3Error, OSError):
            return b""

    def check_small_body(self):
        """Read the body of an operation that is not PutObject; check it against a signed hash."""
        if self.body_left > SPOOL_IN_MEMORY:
            raise S3Error("MaxMessageLengthExceeded")
        body = self.read_small_body()
        if self.payload_sha and hashlib.sha256(body).hexdigest() != self.payload_sha:
            raise self.sha_mismatch(hashlib.sha256(body).hexdigest())
        return body

    def sha_mismatch(self, computed):
        return S3Error("XAmzContentSHA256Mismatch", ClientComputedContentSHA256=self.payload_sha,
                       S3ComputedContentSHA256=computed)

    # ---- authentication ------------------------------------------------------------------------
    def credential(self, ak):
        try:
            c = self.server.fe.redis.hgetall(f"svc:cred:{{{ak}}}")
        except self.server.fe.redis_error as e:
            raise S3Error("ServiceUnavailable", f"Credential store unavailable: {e}") from None
        if not c or "secret" not in c:
            raise S3Error("InvalidAccessKeyId", AWSAccessKeyId=ak)
        buckets = c.get("buckets")
        return (c["secret"], c.get("owner") or ak,
                None if buckets is None else [b.strip() for b in buckets.split(",") if b.strip()])

    def bucket_allowed(self, buckets, raw_path):
        """A restricted credential's bucket policy, on the bucket as sent (the first segment of
        the raw path): a name, or a prefix ending in '*', or '*'."""
        if buckets is None or "*" in buckets:
            return True
        bucket = raw_path[1:].partition("/")[0] if raw_path.startswith("/") else None
        if not bucket:  # ListBuckets is for every credential; no other request is
            return raw_path == "/" and self.command in ("GET", "HEAD")
        if "%" in bucket:
            return False
        return any(bucket.startswith(b[:-1]) if b.endswith("*") else bucket == b
                   for b in buckets)

    def authenticate(self, raw_path):
        """(owner, signed payload SHA-256 or None) of a correctly signed request, or AuthError."""
        q, region = self.q, self.server.fe.region
        presigned = "X-Amz-Credential" in q or "X-Amz-Signature" in q
        if "AWSAccessKeyId" in q and "Signature" in q:
            raise AuthError("InvalidRequest", "The authorization mechanism you have provided is "
                            "not supported. Please use AWS4-HMAC-SHA256.")
        if presigned:
            need = ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires",
                    "X-Amz-SignedHeaders", "X-Amz-Signature")
            if any(n not in q for n in need) or q["X-Amz-Algorithm"] != sigv4.ALGORITHM:
                raise AuthError("AuthorizationQueryParametersError")
            cred, signed, sig, amz_date = (q["X-Amz-Credential"], q["X-Amz-SignedHeaders"],
                                           q["X-Amz-Signature"], q["X-Amz-Date"])
        elif self.headers.get("Authorization"):
            cred, signed, sig = sigv4.parse_authorization(self.headers["Authorization"])
            amz_date = self.headers.get("X-Amz-Date", "")
        else:
            raise AuthError("AccessDenied")
        self.ak = cred.split("/", 1)[0]  # for the access log, also when authentication fails
        self.auth = "presigned" if presigned else "header"
        try:
            t = calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))
        except ValueError:
            raise AuthError("AccessDenied", "AWS authentication requires a valid Date or "
                            "x-amz-date header") from None
        ak, date, scope = sigv4.parse_credential(cred, amz_date, region)
        now = time.time()
        if presigned:
            expires = int(q["X-Amz-Expires"]) if q["X-Amz-Expires"].isdigit() else 0
            if not 0 < expires <= 604800:
                raise AuthError("AuthorizationQueryParametersError", "X-Amz-Expires must be less "
                                "than a week (in seconds) that is; 604800 seconds")
            if now > t + expires:
                raise AuthError("AccessDenied", "Request has expired", Expires=gmt_iso(t + expires),
                                ServerTime=gmt_iso(now))
            if t > now + MAX_SKEW:
                raise AuthError("AccessDenied", "Request is not valid yet")
            payload = q.get("X-Amz-Content-Sha256", sigv4.UNSIGNED)
        else:
            if abs(now - t) > MAX_SKEW:
                raise AuthError("RequestTimeTooSkewed", RequestTime=amz_date,
                                ServerTime=gmt_iso(now), MaxAllowedSkewMilliseconds=MAX_SKEW * 1000)
            payload = self.headers.get("X-Amz-Content-Sha256")
            if payload is None:
                raise AuthError("InvalidRequest", "Missing required header for this request: "
                                "x-amz-content-sha256")
        secret, owner, buckets = self.credential(ak)
        self.check_payload_hash(payload)
        creq = sigv4.canonical_request(self.command, raw_path, self.pairs, self.headers,
                                       signed.split(";"), payload,
                                       skip_query=("X-Amz-Signature",) if presigned else ())
        sts = sigv4.string_to_sign(amz_date, scope, creq)
        if not hmac.compare_digest(sigv4.signature(secret, date, region, "s3", sts), sig):
            raise AuthError("SignatureDoesNotMatch", AWSAccessKeyId=ak, StringToSign=sts,
                            SignatureProvided=sig, CanonicalRequest=creq)
        if not self.bucket_allowed(buckets, raw_path):
            raise AuthError("AccessDenied")
        self.auth += "/unsigned-payload" if payload == sigv4.UNSIGNED else "/signed-payload"
        return owner, (None if payload == sigv4.UNSIGNED else payload)

    @staticmethod
    def check_payload_hash(payload):
        """The payload hash a request claims must be one this service takes."""
        if payload.startswith("STREAMING-"):
            raise AuthError("NotImplemented", f"aws-chunked uploads ({payload}) are not "
                            "implemented: sign the whole payload or use UNSIGNED-PAYLOAD.")
        if payload != sigv4.UNSIGNED and not SHA256_RE.fullmatch(payload):
            raise AuthError("InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, "
                            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, or a valid sha256 value.")

    # ---- routing -------------------------------------------------------------------------------
    def route(self, bucket, key):
        m = self.command
        bad = sorted(UNSUPPORTED.intersection(self.q))
        if bad or m == "POST" or (m == "PUT" and key and "x-amz-copy-source" in self.headers):
            self.op = "Unsupported"
            what = ", ".join(bad) or ("POST" if m == "POST" else "CopyObject")
            raise S3Error("NotImplemented", f"{ERRORS['NotImplemented'][1]} ({what}).")
        if not bucket:
            if m not in ("GET", "HEAD"):
                raise S3Error("MethodNotAllowed")
            return self.list_buckets()
        if not key:
            if m in ("PUT", "HEAD", "DELETE"):
                return {"PUT": self.create_bucket, "HEAD": self.head_bucket,
                        "DELETE": self.delete_bucket}[m](bucket)
            if "location" in self.q:
                return self.bucket_location(bucket)
            return self.list_objects(bucket)
        if m == "PUT":
            return self.put_object(bucket, key)
        if m in ("GET", "HEAD"):
            return self.get_object(bucket, key, head=(m == "HEAD"))
        return self.delete_object(bucket, key)

    # ---- storage manager and nodes -------------------------------------------------------------
    def mgr(self, method, path, body=None, query=None):
        """(status, JSON answer) of the storage manager; it being down is ServiceUnavailable."""
        fe = self.server.fe
        if query:
            path += "?" + urllib.parse.urlencode(query)
        headers = {REQUEST_ID_HEADER: self.req_id, "Content-Type": "application/json"}
        try:
            conn = HTTPConnection(fe.manager.hostname, fe.manager.port, timeout=30)
            conn.request(method, path, None if body is None else json.dumps(body), headers)
            r = conn.getresponse()
            answer = json.loads(r.read() or b"{}")
            conn.close()
        except (OSError, ValueError) as e:
            raise S3Error("ServiceUnavailable", f"Storage manager unavailable: {e}") from None
        if r.status >= 500:
            raise S3Error("InternalError", f"Storage manager: {answer}")
        return r.status, answer

    def node_request(self, method, base, path, headers=None, body=None, length=0):
        """(connection, response) of a request to a storage node with our node credential."""
        fe = self.server.fe
        u = urllib.parse.urlsplit(base)
        conn = HTTPConnection(u.hostname, u.port, timeout=60)
        conn.putrequest(method, path, skip_accept_encoding=True)
        conn.putheader(NODE_AUTH_HEADER, node_auth(fe.node_key_id, fe.node_secret, method, path))
        conn.putheader(REQUEST_ID_HEADER, self.req_id)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(length))
        # the head and the first piece of the body in one send: a small request is one segment
        # (two would wait for a delayed ACK: Nagle)
        conn.endheaders(body.read(CHUNK) if body is not None else None)
        if body is not None:
            while chunk := body.read(CHUNK):
                conn.send(chunk)
        return conn, conn.getresponse()

    def node_delete(self, where):
        """An object's replicas gone from the nodes `where` names: its sidecar first (a direct
        GET then asks the storage manager, which no longer knows it), then its file."""
        meta = meta_path(where["bucket"], where["key"])
        for name, base in zip(where["node_names"], where["nodes"]):
            for path in (meta, where["path"]):
                try:
                    conn, r = self.node_request("DELETE", base, path)
                    r.read()
                    conn.close()
                except OSError as e:
                    print(f"s3front: delete {path} on {name}: {e}", file=sys.stderr)

    def node_put(self, name, base, path, body, length, headers=None):
        """PUT a file on a storage node; it failing is the service's error."""
        try:
            conn, r = self.node_request("PUT", base, path, headers, body=body, length=length)
            r.read()
            conn.close()
        except OSError as e:
            raise S3Error("ServiceUnavailable", f"Storage node {name}: {e}") from None
        if r.status not in (200, 201, 204):
            raise S3Error("InternalError", f"Storage node {name} answered {r.status}.")

    # ---- service and bucket operations ---------------------------------------------------------
    def list_buckets(self):
        self.op = "ListBuckets"
        self.check_small_body()
        _, ans = self.mgr("GET", "/buckets", query={"owner": self.owner})
        items = "".join("<Bucket>" + el("Name", b["name"]) + el("CreationDate", b["created"])
                        + "</Bucket>" for b in ans["buckets"])
        owner = "<Owner>" + el("ID", self.owner) + el("DisplayName", self.owner) + "</Owner>"
        self.send_body(200, xml_doc("ListAllMyBucketsResult",
                                    owner + "<Buckets>" + items + "</Buckets>"))

    def create_bucket(self, bucket):
        self.op = "CreateBucket"
        self.check_small_body()  # a CreateBucketConfiguration, if any: all buckets are here
        if not BUCKET_RE.fullmatch(bucket) or ".." in bucket:
            raise S3Error("InvalidBucketName", BucketName=bucket)
        st, ans = self.mgr("PUT", "/bucket/" + bucket, {"owner": self.owner})
        if st == 409:  # BucketAlreadyOwnedByYou (as S3 outside us-east-1) or BucketAlreadyExists
            raise S3Error(ans["error"], BucketName=bucket)
        self.send_body(200, headers=[("Location", "/" + bucket)])

    def bucket_exists(self, bucket):
        if self.mgr("GET", "/bucket/" + bucket)[0] == 404:
            raise S3Error("NoSuchBucket", BucketName=bucket)

    def head_bucket(self, bucket):
        self.op = "HeadBucket"
        self.check_small_body()
        self.bucket_exists(bucket)
        self.send_body(200, headers=[("x-amz-bucket-region", self.server.fe.region)])

    def delete_bucket(self, bucket):
        self.op = "DeleteBucket"
        self.check_small_body()
        st, ans = self.mgr("DELETE", "/bucket/" + bucket)
        if st in (404, 409):  # NoSuchBucket, BucketNotEmpty
            raise S3Error(ans["error"], BucketName=bucket)
        self.send_body(204)

    def bucket_location(self, bucket):
        self.op = "GetBucketLocation"
        self.check_small_body()
        self.bucket_exists(bucket)
        region = self.server.fe.region
        self.send_body(200, xml_doc("LocationConstraint",
                                    "" if region == "us-east-1" else escape(region)))

    def list_objects(self, bucket):
        q, v2 = self.q, self.q.get("list-type") == "2"
        self.op = "ListObjectsV2" if v2 else "ListObjects"
        self.check_small_body()
        max_keys = q.get("max-keys", "1000")
        if not max_keys.isdigit():
            raise S3Error("InvalidArgument", "Provided max-keys not an integer or within integer "
                          "range", ArgumentName="max-keys", ArgumentValue=max_keys)
        max_keys = min(int(max_keys), 1000)
        url = q.get("encoding-type") == "url"
        enc = (lambda s: urllib.parse.quote(s, safe="/")) if url else (lambda s: s)
        prefix, delim = q.get("prefix", ""), q.get("delimiter", "")
        token = q.get("continuation-token", "") if v2 else ""
        after = q.get("start-after", "") if v2 else q.get("marker", "")
        st, ans = self.mgr("GET", "/list", query={
            "bucket": bucket, "prefix": prefix, "delimiter": delim, "start_after": after,
            "continuation": token, "max_keys": max_keys})
        if st == 404:
            raise S3Error("NoSuchBucket", BucketName=bucket)
        if st == 400:
            raise S3Error("InvalidArgument", "The continuation token provided is incorrect",
                          ArgumentName="continuation-token")
        x = el("Name", bucket) + el("Prefix", enc(prefix))
        if v2:
            x += el("KeyCount", ans["key_count"]) + (el("StartAfter", enc(after)) if after else "")
            x += el("ContinuationToken", token) if token else ""
            if ans["is_truncated"]:
                x += el("NextContinuationToken", ans["next_continuation_token"])
        else:
            x += el("Marker", enc(after))
            if ans["is_truncated"] and delim:
                last = max([c["key"] for c in ans["contents"]] + ans["common_prefixes"])
                x += el("NextMarker", enc(last))
        x += el("MaxKeys", max_keys) + (el("Delimiter", enc(delim)) if delim else "")
        x += el("EncodingType", "url") if url else ""
        x += el("IsTruncated", str(ans["is_truncated"]).lower())
        for c in ans["contents"]:
            x += ("<Contents>" + el("Key", enc(c["key"])) + el("LastModified", c["last_modified"])
                  + el("ETag", c["etag"]) + el("Size", c["size"])
                  + el("StorageClass", "STANDARD") + "</Contents>")
        for p in ans["common_prefixes"]:
            x += "<CommonPrefixes>" + el("Prefix", enc(p)) + "</CommonPrefixes>"
        self.send_body(200, xml_doc("ListBucketResult", x))

    # ---- object operations ---------------------------------------------------------------------
    def put_object(self, bucket, key):
        self.op = "PutObject"
        if len(object_name(key)) > 255:
            raise S3Error("KeyTooLongError", "Your key is too long (this service keeps at most 255 "
                          "bytes of URL-encoded key).")
        if self.headers.get("Content-Length") is None:
            raise S3Error("MissingContentLength")
        size = self.body_left
        if size > MAX_OBJECT:
            raise S3Error("EntityTooLarge")
        want_md5 = None
        if self.headers.get("Content-MD5") is not None:
            try:
                want_md5 = base64.b64decode(self.headers["Content-MD5"], validate=True)
            except binascii.Error:
                want_md5 = b""
            if len(want_md5) != 16:
                raise S3Error("InvalidDigest")
        st, place = self.mgr("GET", "/place", query={"bucket": bucket, "key": key})
        if st == 404:
            raise S3Error("NoSuchBucket", BucketName=bucket)
        nodes = list(zip(place["node_names"], place["nodes"]))
        md5 = hashlib.md5()
        sha = hashlib.sha256() if self.payload_sha else None
        with tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY, dir=self.server.fe.spool_dir) as tmp:
            for chunk in self.read_body():
                md5.update(chunk)
                if sha:
                    sha.update(chunk)
                tmp.write(chunk)
            if sha and sha.hexdigest() != self.payload_sha:
                raise self.sha_mismatch(sha.hexdigest())
            if want_md5 is not None and md5.digest() != want_md5:
                raise S3Error("BadDigest")
            # the file's mtime (nginx's DAV PUT takes it from Date) is the object's Last-Modified:
            # what a storage node sends when it serves the file to the node manager directly
            now = int(time.time())
            for name, base in nodes:
                tmp.seek(0)
                self.node_put(name, base, place["path"], tmp, size,
                              {"Date": email.utils.formatdate(now, usegmt=True)})
        self.node = ",".join(place["node_names"])
        obj = {"bucket": bucket, "key": key, "etag": f'"{md5.hexdigest()}"', "size": size,
               "last_modified": gmt_iso(now)[:-1] + ".000Z",
               "content_type": self.headers.get("Content-Type") or "binary/octet-stream",
               "meta": {k.lower(): v for k, v in self.headers.items()
                        if k.lower().startswith("x-amz-meta-")}}
        sidecar = json.dumps(obj).encode()
        for name, base in nodes:
            self.node_put(name, base, meta_path(bucket, key), io.BytesIO(sidecar), len(sidecar))
        etag = obj["etag"]
        st, ans = self.mgr("POST", "/commit", {**obj, "nodes": place["node_names"]})
        if st == 404:
            raise S3Error("NoSuchBucket", BucketName=bucket)
        if ans["stale"]["nodes"]:  # the previous version also lived on nodes this one does not
            self.node_delete(ans["stale"])
        self.send_body(200, headers=[("ETag", etag)])

    def conditions(self, etag, mtime):
        """None to go on, or 304; 412 is raised (RFC 7232's order, as S3 does it)."""
        h = self.headers
        if h.get("If-Match") is not None:
            if not etag_matches(h["If-Match"], etag):
                raise S3Error("PreconditionFailed", Condition="If-Match")
        elif (t := parse_http_date(h.get("If-Unmodified-Since"))) is not None and mtime > t:
            raise S3Error("PreconditionFailed", Condition="If-Unmodified-Since")
        if h.get("If-None-Match") is not None:
            return 304 if etag_matches(h["If-None-Match"], etag) else None
        if (t := parse_http_date(h.get("If-Modified-Since"))) is not None and mtime <= t:
            return 304
        return None

    def byte_range(self, size):
        """None for the whole object, else (first, last); unsatisfiable is InvalidRange (416)."""
        h = self.headers.get("Range")
        m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", h or "")
        if not m or not (m[1] or m[2]) or (m[1] and m[2] and int(m[2]) < int(m[1])):
            return None  # absent, several ranges or malformed: S3 sends the whole object
        if m[1]:
            first, last = int(m[1]), min(int(m[2]) if m[2] else size - 1, size - 1)
        else:
            first, last = max(size - int(m[2]), 0), size - 1
        if first >= size or (not m[1] and int(m[2]) == 0):
            raise S3Error("InvalidRange", headers=[("Content-Range", f"bytes */{size}")],
                          RangeRequested=h, ActualObjectSize=size)
        return first, last

    def get_object(self, bucket, key, head):
        self.op = "HeadObject" if head else "GetObject"
        self.check_small_body()
        st, loc = self.mgr("GET", "/locate", query={"bucket": bucket, "key": key})
        if st == 404:
            raise S3Error(loc["error"], **({"Key": key} if loc["error"] == "NoSuchKey"
                                           else {"BucketName": bucket}))
        etag, size, mtime = loc["etag"], loc["size"], iso_to_epoch(loc["last_modified"])
        headers = [("ETag", etag), ("Last-Modified", email.utils.formatdate(mtime, usegmt=True))]
        if self.conditions(etag, mtime) == 304:
            return self.start(304, headers)
        rng = self.byte_range(size)
        headers += [("Accept-Ranges", "bytes"), ("Content-Type", loc["content_type"])]
        headers += list(loc["meta"].items())
        status, length = 200, size
        if rng:
            status, length = 206, rng[1] - rng[0] + 1
            headers.append(("Content-Range", f"bytes {rng[0]}-{rng[1]}/{size}"))
        if head:
            return self.start(status, headers, length)
        conn = self.open_replica(loc, rng, status, length)
        try:
            self.start(status, headers, length)
            while chunk := conn.resp.read(CHUNK):
                self.wfile.write(chunk)
                self.bytes_out += len(chunk)
            if self.bytes_out != length:
                self.err = "short-read-from-node"
                self.close_connection = True
        finally:
            conn.close()

    def open_replica(self, loc, rng, status, length):
        """The first replica answering with the expected status and length (conn, .resp set)."""
        tried = []
        for name, base in zip(loc["node_names"], loc["nodes"]):
            try:
                conn, r = self.node_request("GET", base, loc["path"],
                                            {"Range": f"bytes={rng[0]}-{rng[1]}"} if rng else None)
            except OSError as e:
                tried.append(f"{name}: {e}")
                continue
            if r.status == status and r.getheader("Content-Length") == str(length):
                conn.resp, self.node = r, name
                return conn
            tried.append(f"{name}: {r.status}")
            conn.close()
        raise S3Error("ServiceUnavailable", f"No replica could be read ({'; '.join(tried)}).")

    def delete_object(self, bucket, key):
        self.op = "DeleteObject"
        self.check_small_body()
        st, where = self.mgr("POST", "/delete", {"bucket": bucket, "key": key})
        if st == 404:
            raise S3Error("NoSuchBucket", BucketName=bucket)
        self.node = ",".join(where["node_names"]) or None
        self.node_delete(where)
        self.send_body(204)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


class Shared:
    """What every request handler of a front end or of the node agent shares: the storage
    manager, the node credential, the spool, the access log."""

    def __init__(self, a, name, log_kind, region):
        self.name = a.name or name
        self.region = region
        self.manager = urllib.parse.urlsplit(a.manager)
        self.node_key_id = a.node_key_id
        self.node_secret = read_node_secret(a.node_key_file, a.node_key_id)
        self.spool_dir = a.spool_dir
        self.log = AccessLog(a.log, log_kind)


class FrontEnd(Shared):
    """A front end's: the above, and Redis (client credentials)."""

    def __init__(self, a):
        super().__init__(a, f"fe@{a.listen}", "s3front", a.region)
        import redis  # here, not above: the node agent (node_agent.py) has no Redis to import

        self.redis = redis.Redis.from_url(a.redis, decode_responses=True)
        self.redis_error = redis.RedisError


def backend_args(p, listen_help):
    """The options of a front end and of the node agent: where they listen, the storage manager,
    the node credential, the access log, the spool."""
    p.add_argument("--listen", required=True, help=listen_help)
    p.add_argument("--manager", required=True, help="storage manager, http://ADDR:PORT")
    p.add_argument("--node-key-id", required=True, help="our key id at the storage nodes")
    p.add_argument("--node-key-file", required=True,
                   help="its secret (hex), or a keys file (`key_id secret_hex` lines)")
    p.add_argument("--log", help="access log file")
    p.add_argument("--name", help="name in the access log")
    p.add_argument("--spool-dir", default=tempfile.gettempdir(),
                   help="where request bodies over 1 MiB wait until checked")


def serve(a, handler, shared, prog):
    """Serve handler on a.listen with shared as what the handlers share, until killed."""
    host, _, port = a.listen.rpartition(":")
    srv = Server((host, int(port)), handler)
    srv.fe = shared
    print(f"{prog} {shared.name}: listening on {a.listen}, manager {a.manager}", flush=True)
    srv.serve_forever()


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    backend_args(p, "ADDR:PORT")
    p.add_argument("--redis", required=True, help="Redis URL (client credentials)")
    p.add_argument("--region", default="us-east-1")
    a = p.parse_args()
    serve(a, Handler, FrontEnd(a), "s3front")


if __name__ == "__main__":
    sys.exit(main())
