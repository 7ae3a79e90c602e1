#!/usr/bin/python3
"""Renders the nginx configuration of one lab storage node: objects as files, WebDAV, njs auth.

    storage_node.py render --name N --listen ADDR:PORT --data DIR --keys KEYFILE --log LOGFILE
                           --agent ADDR:PORT --out CONF [--error-log FILE] [--direct-key-id ID]
    nginx -p PREFIX -c CONF     # start it: one nginx per node, each with its own prefix directory

Every request needs a valid X-SP-Node-Auth credential (storage_node.js) or gets 403. Objects live at
/objects/<bucket>/<name> (svccommon.object_path), stored as <DIR>/objects/<bucket>/<name>, their
metadata sidecars at /meta/<bucket>/<name> (svccommon.meta_path), <DIR>/meta/<bucket>/<name>.
The front ends (and the node agent) use both as WebDAV: GET, PUT, DELETE.
The node manager's requests (key id `nodemgr`) on /objects/ are answered as the S3 service itself
answers them (storage_node_direct.js): GET/HEAD from the file and its sidecar, the rest by the
node's agent (node_agent.py on --agent). Access log: one line per request; `direct=` says how a
node manager's request was answered (file, njs, agent), `req=` carries the request id.
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

TEMPLATE = """\
# nginx configuration of lab storage node {name} (from tools/lab/service/storage_node.py)
{user}daemon on;
worker_processes 1;
pid nginx.pid;
error_log {error_log} notice;
load_module {module};

events {{
    worker_connections 1024;
}}

http {{
    js_import auth from {js};
    js_import direct from {direct_js};
    js_set $sp_auth auth.verify;
    js_set $sp_key_id auth.keyId;
    js_set $sp_route direct.route;
    js_set $sp_status direct.status;  # $status (that of a file served directly is its 299)
    js_var $sp_direct -;  # how a direct request was answered: file, njs, agent
    js_var $sp_file;     # the file a direct GET serves: <bucket>/<name>
    js_var $sp_headers;  # and its headers (JSON)

    # a front end's request id, or the one a direct request's answer carries, or -
    map $http_x_sp_request_id $sp_req {{
        "" $sp_answer_id;
        default $http_x_sp_request_id;
    }}
    map $sent_http_x_amz_request_id $sp_answer_id {{
        "" -;
        default $sent_http_x_amz_request_id;
    }}

    log_format sp_node '$time_iso8601 node={name} remote=$remote_addr:$remote_port '
                       'key_id=$sp_key_id auth=$sp_auth req=$sp_req '
                       '"$request" status=$sp_status bytes_out=$body_bytes_sent '
                       'bytes_in=$request_length rt=$request_time direct=$sp_direct';

    access_log {log} sp_node;
    server_tokens off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    default_type application/octet-stream;
    client_max_body_size 0;
    client_body_temp_path {data}/tmp/body;
    proxy_temp_path {data}/tmp/proxy;
    fastcgi_temp_path {data}/tmp/fastcgi;
    uwsgi_temp_path {data}/tmp/uwsgi;
    scgi_temp_path {data}/tmp/scgi;

    server {{
        listen {listen};
        server_name {name};
        root {data};

        set $sp_keys_file {keys};
        set $sp_data {data};
        set $sp_direct_key {direct_key};
        if ($sp_auth != "ok") {{
            return 403 "storage node {name}: credential refused ($sp_auth)\\n";
        }}

        location /objects/ {{
            # the node manager's requests (storage_node_direct.js); here, not in the server: an
            # internal redirect goes through the server's rewrites again
            if ($sp_route = direct) {{
                rewrite ^ /_sp/direct last;
            }}
            dav_methods PUT DELETE;
            create_full_put_path on;
            dav_access user:rw group:r all:r;
        }}
        location /meta/ {{
            if ($sp_route = none) {{
                return 404;
            }}
            dav_methods PUT DELETE;
            create_full_put_path on;
            dav_access user:rw group:r all:r;
        }}

        location = /_sp/direct {{
            internal;
            default_type "";  # a 304 has no Content-Type
            js_content direct.handle;  # (nginx reads a body first: 100-continue is answered)
            # the file or the node agent's answer, its status a 299 until direct.headers or
            # direct.agentHeaders: nginx's not-modified filter would judge If-Match,
            # If-None-Match, If-Unmodified-Since again, by its own ETag and mtime
            error_page 418 =299 /_sp/whole/$sp_file;
            error_page 419 =299 /_sp/range/$sp_file;
            error_page 420 =299 @agent;  # named: method and body stay
        }}
        location /_sp/whole/ {{
            internal;
            alias {data}/objects/;
            etag off;
            max_ranges 0;  # the whole object, whatever Range says (s3front decided)
            js_header_filter direct.headers;
        }}
        location /_sp/range/ {{
            internal;
            alias {data}/objects/;
            etag off;
            max_ranges 1;
            js_header_filter direct.headers;
        }}
        location @agent {{
            proxy_pass http://{agent}$request_uri;
            proxy_set_header Expect "";  # nginx itself answers 100-continue, then reads the body
            proxy_set_header X-SP-Transfer-Encoding $http_transfer_encoding;
            proxy_set_header X-SP-Remote $remote_addr:$remote_port;
            proxy_hide_header X-SP-Close;
            proxy_buffering off;
            proxy_read_timeout 300s;
            proxy_send_timeout 300s;
            js_header_filter direct.agentHeaders;
        }}

        location / {{
            return 404;
        }}
    }}
}}
"""


def render(a):
    for d in ("objects", "meta", "tmp"):
        os.makedirs(os.path.join(a.data, d), exist_ok=True)
    conf = TEMPLATE.format(
        name=a.name, listen=a.listen, data=os.path.abspath(a.data), keys=os.path.abspath(a.keys),
        log=os.path.abspath(a.log), error_log=os.path.abspath(a.error_log or a.log + ".error"),
        js=os.path.join(HERE, "storage_node.js"), module=a.module, agent=a.agent,
        direct_js=os.path.join(HERE, "storage_node_direct.js"), direct_key=a.direct_key_id,
        # as root, nginx's workers would run as nobody and could not write the data directory
        user="user root root;\n" if os.geteuid() == 0 else "")
    with open(a.out, "w") as f:
        f.write(conf)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render", help="write the nginx configuration of one storage node")
    r.add_argument("--name", required=True)
    r.add_argument("--listen", required=True, help="ADDR:PORT")
    r.add_argument("--data", required=True,
                   help="data directory (gets objects/, meta/ and tmp/)")
    r.add_argument("--keys", required=True, help="trusted keys, lines `key_id secret_hex`")
    r.add_argument("--log", required=True, help="access log")
    r.add_argument("--agent", required=True,
                   help="ADDR:PORT of the node agent (node_agent.py)")
    r.add_argument("--direct-key-id", default="nodemgr",
                   help="the key id of the node manager, whose requests are direct")
    r.add_argument("--error-log", help="nginx error log (default: LOG.error)")
    r.add_argument("--module", default="/usr/lib/nginx/modules/ngx_http_js_module.so",
                   help="the njs module")
    r.add_argument("--out", required=True, help="configuration file to write")
    a = p.parse_args()
    render(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
