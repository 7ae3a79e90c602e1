"""What the lab's latency benchmarks share (direct_latency.py, auth_latency.py): shortpathd's API,
the lab's environment, a test object put from the host, a SigV4-signed GET from a VM namespace,
percentiles."""
import contextlib
import hashlib
import json
import os
import statistics
import time
import urllib.request

RUN = "/run/shortpath-lab"
ENV_JSON = os.path.join(RUN, "svc", "env.json")
API = "http://127.0.0.1:9180"


def api(method, path, body=None):
    """shortpathd's management API: the JSON answer (raises on 4xx/5xx)."""
    req = urllib.request.Request(API + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.loads(r.read() or b"{}")


def tcp_events():
    """The workers' TCP endpoint events, summed."""
    return api("GET", "/v1/stats")["total"]["tcp_events"]


def load_env(path=ENV_JSON):
    with open(path) as f:
        return json.load(f)


def set_auth(mode, cache="none"):
    """Switch the lab's service s3 to auth mode and cache policy cache (default off: every GET
    measured goes to the storage node or the service, none is a cache hit; "ttl": 600 s); the
    workers have the new table once the API answered, the pause lets a connection of the
    previous mode finish. The caller restores the service (restore())."""
    api("PATCH", "/v1/services/s3",
        {"auth": mode, "cache": {"policy": cache, "ttl_s": 600 if cache != "none" else 0}})
    time.sleep(0.3)


def restore(svc):
    """The service s3 as it was (svc: its definition before set_auth)."""
    api("PATCH", "/v1/services/s3", {"auth": svc["auth"], "cache": svc["cache"]})


@contextlib.contextmanager
def test_object(env, prefix, size):
    """A new bucket with one object of size random bytes, put from the host straight to the
    service (the management link reaches the VIP without shortpathd); yields (bucket, key,
    sha256 hex) and deletes both after."""
    import boto3
    import botocore.config

    bucket, key = f"{prefix}-{int(time.time())}", "obj"
    data = os.urandom(size)
    s3 = boto3.client("s3", endpoint_url=env["SVC_ENDPOINT"],
                      aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                      region_name=env.get("SVC_REGION", "us-east-1"),
                      config=botocore.config.Config(s3={"addressing_style": "path"}))
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    try:
        yield bucket, key, hashlib.sha256(data).hexdigest()
    finally:
        s3.delete_object(Bucket=bucket, Key=key)
        s3.delete_bucket(Bucket=bucket)


def get_signer(env, bucket, key):
    """(host, path, sign): sign() gives the headers of a GET of bucket/key signed now with the
    lab client's credential (botocore, UNSIGNED-PAYLOAD); run inside the VM namespace."""
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials

    creds = botocore.credentials.Credentials(env["AWS_ACCESS_KEY_ID"],
                                             env["AWS_SECRET_ACCESS_KEY"])
    host = env["SVC_ENDPOINT"].split("://", 1)[1]
    path = f"/{bucket}/{key}"

    def sign():
        req = botocore.awsrequest.AWSRequest(method="GET", url=f"http://{host}{path}")
        req.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
        botocore.auth.S3SigV4Auth(creds, "s3", env.get("SVC_REGION", "us-east-1")).add_auth(req)
        return dict(req.headers.items())
    return host, path, sign


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def summary(v):
    """p50/p90/p99/mean (microseconds, rounded) of latencies v."""
    return {"p50_us": round(pct(v, 50)), "p90_us": round(pct(v, 90)),
            "p99_us": round(pct(v, 99)), "mean_us": round(statistics.mean(v))}
