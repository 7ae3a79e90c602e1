#!/bin/sh
# Installs every Debian package shortpath needs to build, test, benchmark and run its labs (idempotent).
set -eu

PKGS="build-essential meson ninja-build pkg-config clang-format
libdpdk-dev dpdk dpdk-dev libhiredis-dev libssl-dev libevent-dev libjansson-dev libcmocka-dev libpcap-dev libhttp-parser-dev
redis-server redis-tools
python3 python3-scapy python3-pytest
iproute2 ethtool iputils-ping curl tcpdump procps psmisc
nginx libnginx-mod-http-js haproxy wrk faketime python3-redis python3-boto3 python3-botocore awscli s3cmd"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
	echo "install-deps: all packages present"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing:$missing -- run as root (or with sudo)" >&2
	exit 1
fi
echo "install-deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
# Debian starts redis-server and nginx as services on install; shortpath's scripts run their own.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	systemctl disable --now redis-server >/dev/null 2>&1 || true
	systemctl disable --now nginx >/dev/null 2>&1 || true
	systemctl disable --now haproxy >/dev/null 2>&1 || true
fi
echo "install-deps: done"
