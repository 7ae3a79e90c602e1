#!/usr/bin/python3
"""Renders the nginx configuration of one lab storage node: objects as files, WebDAV, njs auth.

    storage_node.py render --name N --listen ADDR:PORT --data DIR --keys KEYFILE --log LOGFILE
                           --out CONF [--error-log FILE]
    nginx -p PREFIX -c CONF     # start it: one nginx per node, each with its own prefix directory

Every request needs a valid X-SP-Node-Auth credential (storage_node.js) or gets 403. Objects live at
/objects/<bucket>/<name> (svccommon.object_path), stored as <DIR>/objects/<bucket>/<name>.
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
    js_set $sp_auth auth.verify;
    js_set $sp_key_id auth.keyId;

    log_format sp_node '$time_iso8601 node={name} remote=$remote_addr:$remote_port '
                       'key_id=$sp_key_id auth=$sp_auth req=$http_x_sp_request_id '
                       '"$request" status=$status bytes_out=$body_bytes_sent '
                       'bytes_in=$request_length rt=$request_time';

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
        if ($sp_auth != "ok") {{
            return 403 "storage node {name}: credential refused ($sp_auth)\\n";
        }}

        location /objects/ {{
            dav_methods PUT DELETE;
            create_full_put_path on;
            dav_access user:rw group:r all:r;
        }}
        location / {{
            return 404;
        }}
    }}
}}
"""


def render(a):
    for d in ("objects", "tmp"):
        os.makedirs(os.path.join(a.data, d), exist_ok=True)
    conf = TEMPLATE.format(
        name=a.name, listen=a.listen, data=os.path.abspath(a.data), keys=os.path.abspath(a.keys),
        log=os.path.abspath(a.log), error_log=os.path.abspath(a.error_log or a.log + ".error"),
        js=os.path.join(HERE, "storage_node.js"), module=a.module,
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
    r.add_argument("--data", required=True, help="data directory (gets objects/ and tmp/)")
    r.add_argument("--keys", required=True, help="trusted keys, lines `key_id secret_hex`")
    r.add_argument("--log", required=True, help="access log")
    r.add_argument("--error-log", help="nginx error log (default: LOG.error)")
    r.add_argument("--module", default="/usr/lib/nginx/modules/ngx_http_js_module.so",
                   help="the njs module")
    r.add_argument("--out", required=True, help="configuration file to write")
    a = p.parse_args()
    render(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
