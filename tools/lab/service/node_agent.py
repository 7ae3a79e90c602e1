#!/usr/bin/python3
"""Node agent of a lab storage node: the node manager's direct requests nginx cannot answer alone.

    node_agent.py --listen 127.0.0.1:PORT --manager http://ADDR:PORT --node-key-id nodeagent
                  --node-key-file FILE --name node1 --log FILE [--spool-dir DIR]

The node manager (shortpath) sends a VM's S3 request straight to a storage node, its target
rewritten to svccommon.object_path(bucket, key). The node's nginx answers GET/HEAD from the file
and its metadata sidecar (storage_node_direct.js) and proxies the rest here (on loopback, nginx
having read the body and answered `Expect: 100-continue`): PutObject, DeleteObject, and the
GET/HEAD it cannot answer from those (no sidecar, a body, If-Range, ...). This is s3front.py's
Handler with the request's bucket and key taken from the node path and no SigV4 check (the node
manager vouches for the request with its node credential, which nginx checked); everything else
is s3front's own code: the storage manager places, locates, commits and deletes, the replicas are
written and read over WebDAV with this agent's node credential (key id `nodeagent`), the answers
and S3 error documents are the front ends'. A chunked body (which nginx has read) is refused as
the front ends refuse it: MissingContentLength.
Access log: s3front's line, `agent=<node name>`, remote = the node manager's address.
"""
import argparse
import sys
import urllib.parse

import s3front
import sigv4
from s3front import S3Error
from svccommon import direct_target


class Handler(s3front.Handler):
    log_name_field = "agent"

    def unread_body_dropped(self):
        """Never: nginx has read the whole body and sends it; it must be read (then dropped
        when answered without it), or nginx's send fails and the answer is a 502."""
        return False

    def target(self, raw_path):
        t = direct_target(raw_path)
        if t is None:
            return urllib.parse.unquote(raw_path), None, None
        return f"/{t[0]}/{t[1]}", t[0], t[1]

    def authenticate(self, raw_path):
        """No owner; the payload hash the client claims, checked as the front ends check it."""
        self.auth = "node-manager"
        self.remote = self.headers.get("X-SP-Remote")
        try:  # the client's access key, for the access log only
            self.ak = sigv4.parse_authorization(self.headers.get("Authorization", ""))[0] \
                .split("/", 1)[0]
        except sigv4.AuthError:
            pass
        # no header: a presigned request, its query (with any payload hash) not passed on
        payload = self.headers.get("X-Amz-Content-Sha256") or sigv4.UNSIGNED
        self.check_payload_hash(payload)
        return None, None if payload == sigv4.UNSIGNED else payload

    def route(self, bucket, key):
        if bucket is None:
            raise S3Error("InvalidRequest", "Not an object path: the node manager sends "
                          "/objects/<bucket>/<object name>.")
        if self.command == "PUT" and self.headers.get("X-SP-Transfer-Encoding"):
            self.op = "PutObject"  # nginx read a chunked body; the front ends never read one
            raise S3Error("MissingContentLength")
        return super().route(bucket, key)


class Agent(s3front.Shared):
    """What the handlers share (s3front.FrontEnd's attributes that they use)."""

    def __init__(self, a):
        # region: used by bucket operations only, which never come here
        super().__init__(a, f"agent@{a.listen}", "node-agent", "us-east-1")


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    s3front.backend_args(p, "ADDR:PORT (loopback: only nginx calls)")
    a = p.parse_args()
    s3front.serve(a, Handler, Agent(a), "node_agent")


if __name__ == "__main__":
    sys.exit(main())
