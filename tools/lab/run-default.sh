#!/bin/bash
# The README's "run" command: build shortpathd, start the namespace lab and show traffic going through it (--once: demo, clean up, exit 0 iff every check passed).
#
#   sudo tools/lab/run-default.sh          demo, then stays up until Ctrl-C, then removes everything
#   sudo tools/lab/run-default.sh --once   demo, clean up, exit 0 if every check passed (the tests run this)
#
# Steps: install packages (tools/install-deps.sh), build if needed, start a private redis-server
# (configs/redis-dev.conf), create the lab (tools/lab/lab.sh up), start shortpathd with
# configs/lab.conf, then ping, a 20 MiB HTTP download per VM checked by sha256, telemetry and
# /metrics. A trap stops everything this script started (also on failure or Ctrl-C).
# shellcheck disable=SC2317 # functions called through wait_until and the EXIT trap
set -uo pipefail

cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
RUN=/run/shortpath-lab
SOCK=$RUN/redis.sock
PREFIX=shortpath-lab
API=127.0.0.1:9180
CONF=$ROOT/configs/lab.conf
SHORTPATHD=$ROOT/build/control/shortpathd
LAB=$ROOT/tools/lab/lab.sh
PY=/usr/bin/python3
FABRIC_IP=10.77.0.1
HTTP_PORT=8080
FILE=random-20MiB.bin
FILE_BYTES=$((20 * 1024 * 1024))
VMS="sp-vm1 sp-vm2"
declare -A VM_IP=([sp-vm1]=10.77.0.11 [sp-vm2]=10.77.0.12)

ONCE=0
for a in "$@"; do
	case "$a" in
	--once) ONCE=1 ;;
	-h | --help)
		sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "run-default: unknown argument '$a' (try --help)" >&2
		exit 2
		;;
	esac
done

T0=$(date +%s.%N)
CHECKS=0
FAILURES=0
REDIS_PID=""
SP_PID=""
HTTP_PID=""
LAB_TOUCHED=0
WAITING=0

elapsed() { awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
step() { printf '\n==> [%5ss] %s\n' "$(elapsed)" "$*"; }
info() { printf '    %s\n' "$*"; }
pass() {
	CHECKS=$((CHECKS + 1))
	printf '    OK    %s\n' "$*"
}
bad() {
	CHECKS=$((CHECKS + 1))
	FAILURES=$((FAILURES + 1))
	printf '    FAIL  %s\n' "$*"
}
fail() {
	printf '\nrun-default: FAILED: %s\n' "$*" >&2
	exit 1
}
indent() { sed 's/^/    | /'; }

# Polls "$@" every 0.2 s until it succeeds or $1 seconds pass: wait_until SECONDS CMD...
# A command returning 99 means "will never succeed" (e.g. the process died): stop at once.
wait_until() {
	local limit=$1 i=0 r
	shift
	while [ "$i" -lt $((limit * 5)) ]; do
		"$@"
		r=$?
		[ $r -eq 0 ] && return 0
		[ $r -eq 99 ] && return 99
		sleep 0.2
		i=$((i + 1))
	done
	return 1
}

alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null; }
dead() { ! alive "$1"; }

# Stops a child of this script: SIGTERM, up to $2 seconds, then SIGKILL. Sets STOP_RC.
stop_child() {
	local pid=$1 limit=$2
	STOP_RC=""
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	if ! wait_until "$limit" dead "$pid"; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		STOP_RC=killed
		return 1
	fi
	wait "$pid" 2>/dev/null
	STOP_RC=$?
	return 0
}

redis_ping() { [ "$(redis-cli -s "$SOCK" ping 2>/dev/null)" = PONG ]; }
api_get() { curl -s -m 5 "http://$API$1"; }
health_status() { api_get /v1/health | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["status"])' 2>/dev/null; }
health_ok() { [ "$(health_status)" = ok ]; }

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	[ "$WAITING" -eq 1 ] && [ "$rc" -eq 130 ] && rc=0 # Ctrl-C is how the demo ends
	step "Cleaning up"
	if [ -n "$HTTP_PID" ]; then
		stop_child "$HTTP_PID" 5
		info "HTTP server in sp-fabric stopped"
	fi
	if [ -n "$SP_PID" ]; then
		if stop_child "$SP_PID" 30; then
			local pool
			pool=$(grep -o 'packet pool: [0-9]* of [0-9]* mbufs in use after close' \
				"$RUN/shortpathd.log" | tail -n 1)
			if [ "$STOP_RC" = 0 ]; then
				pass "shortpathd stopped on SIGTERM, exit 0"
			else
				bad "shortpathd exit status $STOP_RC on SIGTERM (log: $RUN/shortpathd.log)"
			fi
			case "$pool" in
			"packet pool: 0 of "*) pass "shortpathd returned every mbuf: $pool" ;;
			*) bad "shortpathd did not return every mbuf: '${pool:-no pool line in the log}'" ;;
			esac
		else
			bad "shortpathd did not stop within 30 s of SIGTERM: killed (log: $RUN/shortpathd.log)"
		fi
		# EAL leaves its runtime files (~6 MB of fbarrays in /run) behind after it exits.
		rm -rf "/var/run/dpdk/$PREFIX"
	fi
	if [ -n "$REDIS_PID" ]; then
		stop_child "$REDIS_PID" 10
		info "redis-server stopped"
	fi
	if [ "$LAB_TOUCHED" -eq 1 ]; then
		"$LAB" down | indent
	fi
	rm -rf "$RUN/www" "$RUN"/download-*.bin
	printf '\n'
	if [ "$rc" -eq 0 ] && [ "$FAILURES" -eq 0 ]; then
		echo "run-default: all $CHECKS checks passed ($(elapsed) s); logs in $RUN/"
		exit 0
	fi
	if [ "$FAILURES" -gt 0 ]; then
		echo "run-default: $FAILURES of $CHECKS checks FAILED ($(elapsed) s); logs in $RUN/" >&2
	else
		echo "run-default: stopped with status $rc ($(elapsed) s); logs in $RUN/" >&2
	fi
	[ "$rc" -ne 0 ] && exit "$rc"
	exit 1
}

[ "$(id -u)" -eq 0 ] || fail "run as root (sudo $0): DPDK and network namespaces need it"
trap cleanup EXIT
trap 'printf "\nrun-default: interrupted\n"; exit 130' INT TERM

step "Installing packages (tools/install-deps.sh)"
tools/install-deps.sh 2>&1 | indent || fail "tools/install-deps.sh failed"

step "Building shortpathd"
mkdir -p "$RUN" || fail "cannot create $RUN"
if [ ! -f build/build.ninja ]; then
	meson setup build >"$RUN/build.log" 2>&1 || {
		tail -n 30 "$RUN/build.log" | indent
		fail "meson setup build failed (full log: $RUN/build.log)"
	}
fi
ninja -C build >>"$RUN/build.log" 2>&1 || {
	tail -n 30 "$RUN/build.log" | indent
	fail "ninja -C build failed (full log: $RUN/build.log)"
}
[ -x "$SHORTPATHD" ] || fail "no $SHORTPATHD after the build"
info "$("$SHORTPATHD" -c "$CONF" --check 2>&1)"
"$SHORTPATHD" -c "$CONF" --check >/dev/null 2>&1 || fail "configs/lab.conf does not validate"

step "Starting Redis (configs/redis-dev.conf, unix:$SOCK)"
if redis_ping; then
	info "a redis-server already answers on $SOCK: using it (and leaving it running)"
else
	setsid redis-server "$ROOT/configs/redis-dev.conf" >"$RUN/redis.log" 2>&1 &
	REDIS_PID=$!
	wait_until 10 redis_ping || {
		tail -n 20 "$RUN/redis.log" | indent
		fail "redis-server did not answer on $SOCK within 10 s (log: $RUN/redis.log)"
	}
	info "redis-server pid $REDIS_PID, no TCP, nothing persisted (log: $RUN/redis.log)"
fi

step "Creating the lab (tools/lab/lab.sh up)"
LAB_TOUCHED=1
"$LAB" up 2>&1 | indent || fail "tools/lab/lab.sh up failed"
"$LAB" status 2>&1 | indent || fail "the lab is not complete after lab.sh up"

step "Starting shortpathd -c configs/lab.conf (log: $RUN/shortpathd.log)"
if curl -s -m 2 -o /dev/null "http://$API/v1/health"; then
	fail "something already answers on $API (another shortpathd with configs/lab.conf? stop it first)"
fi
if [ -S "/var/run/dpdk/$PREFIX/dpdk_telemetry.v2" ] &&
	"$PY" -c "import socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.connect(sys.argv[1])" \
		"/var/run/dpdk/$PREFIX/dpdk_telemetry.v2" 2>/dev/null; then
	fail "a DPDK process with file prefix $PREFIX is already running (another shortpathd with configs/lab.conf? stop it first)"
fi
setsid "$SHORTPATHD" -c "$CONF" >"$RUN/shortpathd.log" 2>&1 &
SP_PID=$!
sp_healthy() {
	alive "$SP_PID" || return 99
	curl -s -m 2 -o /dev/null "http://$API/v1/health"
}
if ! wait_until 30 sp_healthy; then
	tail -n 30 "$RUN/shortpathd.log" | indent
	alive "$SP_PID" || { wait "$SP_PID"; SP_RC=$?; SP_PID=""; fail "shortpathd exited (status $SP_RC) before its API came up"; }
	fail "shortpathd's API did not answer on $API within 30 s"
fi
grep -E '^shortpath: (port |running)' "$RUN/shortpathd.log" | indent
pass "shortpathd pid $SP_PID is up: http://$API/v1/health answers"
if wait_until 10 health_ok; then
	pass "health is \"ok\": shortpathd is connected to Redis at unix:$SOCK"
else
	bad "health is \"$(health_status)\" after 10 s, not \"ok\" (Redis connection: see $RUN/shortpathd.log)"
fi

step "Ping: each VM namespace -> the fabric ($FABRIC_IP), then the fabric -> each VM"
ping_check() { # ns target
	local out
	out=$(ip netns exec "$1" ping -n -c 3 -i 0.2 -W 2 -w 10 "$2" 2>&1)
	local prc=$?
	local summary
	summary=$(echo "$out" | grep 'packets transmitted')
	if [ $prc -eq 0 ] && echo "$summary" | grep -q ' 0% packet loss'; then
		pass "$1 -> $2: $summary"
	else
		echo "$out" | indent
		bad "$1 -> $2: ${summary:-ping failed (exit $prc)}"
	fi
}
for vm in $VMS; do
	ping_check "$vm" "$FABRIC_IP"
done
for vm in $VMS; do
	ping_check sp-fabric "${VM_IP[$vm]}"
done

step "HTTP: a 20 MiB random file served in sp-fabric, downloaded by each VM, checked by sha256"
mkdir -p "$RUN/www" || fail "cannot create $RUN/www"
head -c "$FILE_BYTES" /dev/urandom >"$RUN/www/$FILE" || fail "cannot write $RUN/www/$FILE"
WANT=$(sha256sum "$RUN/www/$FILE" | cut -d' ' -f1)
info "served: http://$FABRIC_IP:$HTTP_PORT/$FILE ($FILE_BYTES bytes, sha256 $WANT)"
setsid ip netns exec sp-fabric "$PY" -m http.server "$HTTP_PORT" --bind "$FABRIC_IP" \
	--directory "$RUN/www" >"$RUN/http.log" 2>&1 &
HTTP_PID=$!
http_up() {
	alive "$HTTP_PID" || return 99
	ip netns exec sp-fabric curl -s -m 2 -o /dev/null "http://$FABRIC_IP:$HTTP_PORT/"
}
wait_until 15 http_up || fail "the HTTP server in sp-fabric did not come up within 15 s (log: $RUN/http.log)"
for vm in $VMS; do
	dst="$RUN/download-$vm.bin"
	w=$(ip netns exec "$vm" curl -sS --max-time 120 -o "$dst" \
		-w '%{http_code} %{size_download} %{time_total}' \
		"http://$FABRIC_IP:$HTTP_PORT/$FILE" 2>&1)
	crc=$?
	read -r code size secs <<<"$w"
	got=$(sha256sum "$dst" 2>/dev/null | cut -d' ' -f1)
	rate=$(awk -v b="${size:-0}" -v s="${secs:-0}" 'BEGIN { if (s > 0) printf "%.2f s, %.0f Mbit/s", s, b * 8 / s / 1e6; else print "?" }')
	if [ $crc -eq 0 ] && [ "$code" = 200 ] && [ "$got" = "$WANT" ]; then
		pass "$vm downloaded $size bytes ($rate): sha256 OK"
	else
		bad "$vm download: curl exit $crc, '$w', sha256 ${got:-none} (want $WANT): sha256 MISMATCH"
	fi
	rm -f "$dst"
done

step "Management API: GET http://$API/v1/health"
api_get /v1/health | indent

step "Telemetry (dpdk-telemetry.py -f $PREFIX): /shortpath/ports and /shortpath/stats"
TEL=$(printf '/shortpath/ports\n/shortpath/stats\n' | timeout 20 dpdk-telemetry.py -f "$PREFIX" 2>&1)
if ! "$PY" - "$TEL" <<'PY'; then
import json, sys

docs = {}
for line in sys.argv[1].splitlines():
    line = line.strip()
    if line.startswith("{"):
        docs.update(json.loads(line))
ports, stats = docs["/shortpath/ports"], docs["/shortpath/stats"]
cols = ("rx_packets", "rx_bytes", "tx_packets", "tx_bytes", "rx_missed", "tx_errors")
print("    %-8s %-6s %-17s" % ("port", "role", "vm_mac") + "".join("%12s" % c for c in cols))
for name, p in ports.items():
    print("    %-8s %-6s %-17s" % (name, p["role"], p.get("vm_mac", "(learned)" if p["role"] == "vm" else "-"))
          + "".join("%12d" % p[c] for c in cols))
drops = {k[5:]: v for k, v in stats.items() if k.startswith("drop_")}
print("    drops: " + ", ".join("%s %d" % kv for kv in drops.items()) + "  (total %d)" % sum(drops.values()))
print("    totals: rx %d / tx %d packets; MAC table %d entries, %d learned; mempool %d of %d in use; redis %s"
      % (stats["rx_packets"], stats["tx_packets"], stats["mac_entries"], stats["mac_learned"],
         stats["mempool_in_use"], stats["mempool_size"], stats["redis"]))
sys.exit(0 if stats["mac_learned"] >= 1 else 3)
PY
	echo "$TEL" | indent
	bad "telemetry: no MAC learned for sp-vm2 (or the telemetry query failed; output above)"
else
	pass "telemetry answers; sp-vm2's MAC (not configured) was learned from its traffic"
fi

step "Prometheus: GET http://$API/metrics (a few lines)"
METRICS=$(api_get /metrics)
if [ -n "$METRICS" ]; then
	echo "$METRICS" | grep -E '^sp_(port_(rx|tx)_packets_total|mac_entries|mempool_in_use|redis_up|uptime_seconds)' | indent
	pass "/metrics answers ($(echo "$METRICS" | grep -vc '^#') samples)"
else
	bad "/metrics returned nothing"
fi

cat <<EOF

==> Poke at it by hand
    ip netns exec sp-vm1 curl -s -o /dev/null -w '%{size_download} bytes %{time_total}s\\n' http://$FABRIC_IP:$HTTP_PORT/$FILE
    ip netns exec sp-vm2 ping -c 3 $FABRIC_IP
    ip netns exec sp-fabric ping -c 3 ${VM_IP[sp-vm2]}
    dpdk-telemetry.py -f $PREFIX                  # then /shortpath/stats, /shortpath/ports, /shortpath/lcores
    curl -s $API/v1/stats
    curl -s $API/metrics
    tail -f $RUN/shortpathd.log
    tools/lab/lab.sh status
EOF

if [ "$ONCE" -eq 1 ]; then
	exit 0 # the EXIT trap cleans up and turns failed checks into a non-zero status
fi
if [ "$FAILURES" -gt 0 ]; then
	printf '\n    %d of %d checks FAILED above; the lab stays up for inspection.\n' "$FAILURES" "$CHECKS"
fi
printf '\n==> Running. Press Ctrl-C to stop shortpathd and remove the lab.\n'
WAITING=1
while alive "$SP_PID"; do
	sleep 1
done
WAITING=0
bad "shortpathd exited on its own (log: $RUN/shortpathd.log)"
exit 1
