#!/bin/bash
# The README's "run" command: bring the whole lab up (tools/lab/lab.sh up) and show traffic and S3 clients going through shortpathd (--once: demo, clean up, exit 0 iff every check passed).
#
#   sudo tools/lab/run-default.sh          demo, then stays up until Ctrl-C, then removes everything
#   sudo tools/lab/run-default.sh --once   demo, clean up, exit 0 if every check passed (the tests run this)
#
# Steps: tools/lab/lab.sh up (packages, build, the namespace network, the object service behind
# the fabric, Redis, shortpathd with configs/lab.conf), then ping, a 20 MiB HTTP download per VM
# checked by sha256, S3 with awscli from the VMs on the direct path (20 MiB put from one, get from
# the other, sha256; the storage nodes' logs show both came straight from the VMs with shortpathd's
# credential, the LB's that a listing went the ordinary way), local authentication (service s3 has
# auth first: a VM's first request is verified in the control thread, later ones ride the verdict;
# a wrong secret is refused with SignatureDoesNotMatch by shortpathd and never reaches the
# service), the local cache (a 64 KiB object read once from a storage node, then answered to both
# VMs by the worker: no packet on the uplink, no service log line), telemetry and /metrics. A trap runs tools/lab/lab.sh down (also on failure or Ctrl-C)
# and checks shortpathd stopped cleanly.
# shellcheck disable=SC2317 # functions called through wait_until and the EXIT trap
set -uo pipefail

cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
RUN=/run/shortpath-lab
PREFIX=shortpath-lab
API=127.0.0.1:9180
LAB=$ROOT/tools/lab/lab.sh
SPCTL=$ROOT/tools/spctl
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
		sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
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
HTTP_PID=""
WORK=""
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
# shellcheck source=tools/lab/common.sh
. "$ROOT/tools/lab/common.sh" # indent, wait_until

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
	if [ "$LAB_TOUCHED" -eq 1 ]; then
		local down
		down=$("$LAB" down 2>&1)
		echo "$down" | indent
		case "$down" in
		*"shortpathd stopped on SIGTERM, exit 0; packet pool: 0 of "*)
			pass "shortpathd stopped on SIGTERM, exit 0, every mbuf returned" ;;
		*"shortpathd stopped"* | *"shortpathd did not stop"*)
			bad "shortpathd did not stop cleanly (see above)" ;;
		esac
	fi
	[ -z "$WORK" ] || rm -rf "$WORK"
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

step "Bringing the lab up (tools/lab/lab.sh up)"
LAB_TOUCHED=1
"$LAB" up 2>&1 | indent
[ "${PIPESTATUS[0]}" -eq 0 ] || fail "tools/lab/lab.sh up failed (output above)"
SP_PID=$(cat "$RUN/shortpathd.pid")
pass "shortpathd pid $SP_PID is up: http://$API/v1/health answers"
if health_ok; then
	pass "health is \"ok\": shortpathd is connected to Redis"
else
	bad "health is \"$(health_status)\", not \"ok\" (Redis connection: see $RUN/shortpathd.log)"
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
WORK=$(mktemp -d /tmp/shortpath-demo.XXXXXX) || fail "cannot create a work directory"
mkdir -p "$WORK/www" || fail "cannot create $WORK/www"
head -c "$FILE_BYTES" /dev/urandom >"$WORK/www/$FILE" || fail "cannot write $RUN/www/$FILE"
WANT=$(sha256sum "$WORK/www/$FILE" | cut -d' ' -f1)
info "served: http://$FABRIC_IP:$HTTP_PORT/$FILE ($FILE_BYTES bytes, sha256 $WANT)"
setsid ip netns exec sp-fabric "$PY" -m http.server "$HTTP_PORT" --bind "$FABRIC_IP" \
	--directory "$WORK/www" >"$RUN/http.log" 2>&1 &
HTTP_PID=$!
http_up() {
	alive "$HTTP_PID" || return 99
	ip netns exec sp-fabric curl -s -m 2 -o /dev/null "http://$FABRIC_IP:$HTTP_PORT/"
}
wait_until 15 http_up || fail "the HTTP server in sp-fabric did not come up within 15 s (log: $RUN/http.log)"
for vm in $VMS; do
	dst="$WORK/download-$vm.bin"
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

step "S3 through shortpathd, direct path: awscli in sp-vm1 puts 20 MiB, awscli in sp-vm2 gets it (sha256)"
SVC=$RUN/svc
# awscli with the lab's credentials only (nothing from this host's ~/.aws)
aws_in() { # netns args...
	local ns=$1
	shift
	ip netns exec "$ns" env -i PATH=/usr/bin:/bin HOME="$WORK" AWS_PAGER="" \
		AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_EC2_METADATA_DISABLED=true \
		AWS_CONFIG_FILE="$SVC/aws-config" AWS_ACCESS_KEY_ID="$SVC_AK" \
		AWS_SECRET_ACCESS_KEY="$SVC_SK" AWS_DEFAULT_REGION=us-east-1 \
		timeout 120 /usr/bin/aws --endpoint-url "$SVC_ENDPOINT" s3api "$@"
}
SVC_ENDPOINT=$(sed -n "s/^export SVC_ENDPOINT=//p" "$SVC/env" | tr -d "'")
SVC_AK=$(sed -n "s/^export AWS_ACCESS_KEY_ID=//p" "$SVC/env" | tr -d "'")
SVC_SK=$(sed -n "s/^export AWS_SECRET_ACCESS_KEY=//p" "$SVC/env" | tr -d "'")
info "endpoint $SVC_ENDPOINT (HAProxy in sp-lb), access key $SVC_AK"
BUCKET=demo-$(date +%s)
if out=$(aws_in sp-vm1 create-bucket --bucket "$BUCKET" 2>&1); then
	pass "sp-vm1: create-bucket $BUCKET"
else
	echo "$out" | indent
	bad "sp-vm1: create-bucket $BUCKET failed"
fi
t=$SECONDS
if out=$(aws_in sp-vm1 put-object --bucket "$BUCKET" --key blob.bin --body "$WORK/www/$FILE" 2>&1) &&
	grep -q "$(md5sum "$WORK/www/$FILE" | cut -d' ' -f1)" <<<"$out"; then
	pass "sp-vm1: put-object 20 MiB in $((SECONDS - t)) s, ETag = MD5 of the file"
else
	echo "$out" | indent
	bad "sp-vm1: put-object failed or its ETag is not the file's MD5"
fi
t=$SECONDS
out=$(aws_in sp-vm2 get-object --bucket "$BUCKET" --key blob.bin "$WORK/s3-get.bin" 2>&1)
got=$(sha256sum "$WORK/s3-get.bin" 2>/dev/null | cut -d' ' -f1)
if [ "$got" = "$WANT" ]; then
	pass "sp-vm2: get-object 20 MiB in $((SECONDS - t)) s: sha256 OK"
else
	echo "$out" | indent
	bad "sp-vm2: get-object: sha256 ${got:-none}, want $WANT"
fi
# the direct path: the PUT and the GET reached a storage node straight from the VM, with
# shortpathd's node-manager credential, and neither the LB nor a front end saw them (auth first:
# sp-vm1's create-bucket was verified and earned the verdict its PUT rides; sp-vm2's GET, which
# has no body, was verified on its own)
direct=$(grep -h -E "key_id=nodemgr .*\"(PUT|GET) /objects/$BUCKET/blob.bin " "$SVC"/logs/node*.access.log)
if [ -n "$direct" ]; then
	info "the storage nodes' access logs (key_id=nodemgr: shortpathd's credential):"
	echo "$direct" | cut -c1-200 | indent
fi
if grep -q "remote=10.77.0.11:.*\"PUT /objects/$BUCKET/blob.bin " <<<"$direct" &&
	grep -q "remote=10.77.0.12:.*\"GET /objects/$BUCKET/blob.bin " <<<"$direct" &&
	! grep -q "uri=\"/$BUCKET/blob.bin\"" "$SVC/logs/lb.access.log" &&
	! grep -h -q "/$BUCKET/blob.bin" "$SVC"/logs/fe*.log; then
	pass "PUT from sp-vm1 and GET from sp-vm2 went direct to the storage node; LB and front ends saw neither"
else
	bad "the PUT/GET did not go direct (node logs above; LB: $(grep -c "/$BUCKET/blob.bin" "$SVC/logs/lb.access.log") lines)"
fi
# a listing is not enhanced: it takes the ordinary way (LB -> front end)
if out=$(aws_in sp-vm1 list-objects-v2 --bucket "$BUCKET" 2>&1) && grep -q blob.bin <<<"$out" &&
	grep -q "method=GET uri=\"/$BUCKET?list-type=2" "$SVC/logs/lb.access.log"; then
	pass "sp-vm1: list-objects-v2 went the ordinary way (LB -> front end) and lists blob.bin"
else
	echo "$out" | indent
	bad "list-objects-v2 failed or is not in the LB's log"
fi
info "shortpathd's TCP endpoint: $(api_get /v1/stats | "$PY" -c 'import json, sys
t = json.load(sys.stdin)["total"]["tcp_events"]
print(", ".join("%s %d" % (k, t[k]) for k in ("syn_rx", "requests", "bind_node", "bind_vip", "loc_hit", "loc_miss", "loc_resolved", "loc_prefetched")))')"

step "Local authentication (service s3, auth first): verified once per VM and client, then verdicts"
info "$("$SPCTL" service show s3 | grep -E '^(auth|region|path):' | tr -s ' ' | paste -sd ';' | sed 's/;/; /g')"
# the workers' auth events (summed over workers) and the control thread's count of requests it
# verified authentic and allowed (GET /v1/auth "ok")
auth_counters() {
	"$PY" - "$API" <<'PY'
import json, sys, urllib.request
api = "http://" + sys.argv[1]
t = json.load(urllib.request.urlopen(api + "/v1/stats", timeout=5))["total"]["tcp_events"]
a = json.load(urllib.request.urlopen(api + "/v1/auth", timeout=5))
print(" ".join(str(t.get(k, 0)) for k in ("auth_punt", "auth_ok", "auth_hit", "auth_refused"))
      + " " + str(a.get("ok", 0)))
PY
}
auth_delta() { # before after: "punt +a, ok +b, hit +c, refused +d; control verified +e"
	"$PY" -c 'import sys
b, a = (list(map(int, x.split())) for x in sys.argv[1:3])
d = [y - x for x, y in zip(b, a)]
print("auth_punt +%d, auth_ok +%d, auth_hit +%d, auth_refused +%d; control: verified +%d" % tuple(d))' "$1" "$2"
}
# setting the credential again (same secret) moves its generation: every verdict of it is gone
if out=$(printf '%s\n' "$SVC_SK" | "$SPCTL" cred set s3 "$SVC_AK" --secret-file - 2>&1); then
	info "spctl cred set s3 $SVC_AK (same secret): $(grep -E '^generation:' <<<"$out" | tr -s ' ')"
else
	echo "$out" | indent
	bad "spctl cred set s3 $SVC_AK failed"
fi
A0=$(auth_counters)
aws_in sp-vm1 head-object --bucket "$BUCKET" --key blob.bin >/dev/null 2>&1 || bad "sp-vm1: head-object failed"
A1=$(auth_counters)
read -r p0 o0 h0 _ v0 <<<"$A0"
read -r p1 o1 h1 _ v1 <<<"$A1"
if [ $((p1 - p0)) -eq 1 ] && [ $((o1 - o0)) -eq 1 ] && [ $((v1 - v0)) -eq 1 ] && [ "$h1" -eq "$h0" ]; then
	pass "sp-vm1's first request as $SVC_AK was verified in the control thread ($(auth_delta "$A0" "$A1"))"
else
	bad "sp-vm1's first request: $(auth_delta "$A0" "$A1") (want punt, ok and verified +1, no hit)"
fi
for _ in 1 2; do
	aws_in sp-vm1 head-object --bucket "$BUCKET" --key blob.bin >/dev/null 2>&1 || bad "sp-vm1: head-object failed"
done
A2=$(auth_counters)
read -r p2 _ h2 _ v2 <<<"$A2"
if [ "$p2" -eq "$p1" ] && [ "$v2" -eq "$v1" ] && [ $((h2 - h1)) -eq 2 ]; then
	pass "its next 2 requests rode the verdict, no crypto ($(auth_delta "$A1" "$A2"))"
else
	bad "sp-vm1's later requests: $(auth_delta "$A1" "$A2") (want auth_hit +2, nothing verified)"
fi
aws_in sp-vm2 head-object --bucket "$BUCKET" --key blob.bin >/dev/null 2>&1 || bad "sp-vm2: head-object failed"
A3=$(auth_counters)
read -r p3 _ _ _ v3 <<<"$A3"
if [ $((p3 - p2)) -eq 1 ] && [ $((v3 - v2)) -eq 1 ]; then
	pass "sp-vm2's first request was verified too: a verdict is per VM port ($(auth_delta "$A2" "$A3"))"
else
	bad "sp-vm2's first request: $(auth_delta "$A2" "$A3") (want verified +1)"
fi
# a wrong secret from sp-vm2: its verdict goes first (set again), since under a verdict mode
# first trusts a request without a crypto check (that is the mode; every-request checks each)
NOKEY=wrong-secret-$(date +%s%N)
printf '%s\n' "$SVC_SK" | "$SPCTL" cred set s3 "$SVC_AK" --secret-file - >/dev/null 2>&1
out=$(SVC_SK="wrong${SVC_SK#?????}" aws_in sp-vm2 get-object --bucket "$BUCKET" --key "$NOKEY" "$WORK/wrong.out" 2>&1)
A4=$(auth_counters)
sleep 0.5
seen=$(grep -l -- "$NOKEY" "$SVC"/logs/*.log 2>/dev/null | xargs -r -n1 basename | paste -sd, -)
if grep -q "(SignatureDoesNotMatch)" <<<"$out" && [ -z "$seen" ]; then
	pass "a wrong secret from sp-vm2: SignatureDoesNotMatch from shortpathd, no service log has it ($(auth_delta "$A3" "$A4"))"
else
	echo "$out" | indent
	bad "wrong secret: want SignatureDoesNotMatch answered by shortpathd; service logs naming it: ${seen:-none}"
fi
info "tools/spctl auth (GET /v1/auth), in short: $("$SPCTL" auth --json | "$PY" -c 'import json, sys
a = json.load(sys.stdin)
refused = ", ".join("%s %d" % kv for kv in a["refused_by"].items() if kv[1])
w = ", ".join("%s %d" % kv for kv in a["workers"].items() if kv[1])
print("control: punts %d, ok %d, refused %d (%s), undecided %d, verification mean %.0f us, max %.0f us; workers: %s"
      % (a["punts"], a["ok"], a["refused"], refused or "-", a["undecided"],
         a["verify"]["mean_ns"] / 1e3, a["verify"]["max_ns"] / 1e3, w))')"

step "Local cache (service s3, cache ttl 60 s): a repeated GET answered by the worker, nothing on the uplink"
# the counters a hit must move (the workers' cache events) and the packets sent on the uplink
cache_counters() {
	"$PY" - "$API" <<'PY'
import json, sys, urllib.request
api = "http://" + sys.argv[1]
s = json.load(urllib.request.urlopen(api + "/v1/stats", timeout=5))
t = s["total"]["tcp_events"]
up = [p["tx_packets"] for p in s["ports"].values() if p["role"] == "uplink"][0]
print(" ".join(str(t.get(k, 0)) for k in ("cache_hit", "cache_miss", "cache_fill_done")), up)
PY
}
head -c 65536 /dev/urandom >"$WORK/obj64k"
OBJ_SHA=$(sha256sum "$WORK/obj64k" | cut -d' ' -f1)
aws_in sp-vm1 put-object --bucket "$BUCKET" --key small.bin --body "$WORK/obj64k" >/dev/null 2>&1 ||
	bad "sp-vm1: put-object small.bin failed"
C0=$(cache_counters)
aws_in sp-vm2 get-object --bucket "$BUCKET" --key small.bin "$WORK/c0.bin" >/dev/null 2>&1
C1=$(cache_counters)
read -r h0 m0 f0 _ <<<"$C0"
read -r h1 m1 f1 _ <<<"$C1"
if [ $((m1 - m0)) -eq 1 ] && [ $((f1 - f0)) -eq 1 ] && [ "$(sha256sum <"$WORK/c0.bin" | cut -d' ' -f1)" = "$OBJ_SHA" ]; then
	pass "sp-vm2's first GET of small.bin (64 KiB) was a miss: fetched from the storage node and copied into the cache"
else
	bad "the first GET: cache_miss +$((m1 - m0)), cache_fill_done +$((f1 - f0)) (want +1, +1)"
fi
sleep 0.2
logs0=$(cat "$SVC"/logs/*.log 2>/dev/null | wc -c)
ok=1
for vm in sp-vm1 sp-vm2; do
	aws_in "$vm" get-object --bucket "$BUCKET" --key small.bin "$WORK/c1.bin" >/dev/null 2>&1
	[ "$(sha256sum <"$WORK/c1.bin" | cut -d' ' -f1)" = "$OBJ_SHA" ] || ok=0
done
C2=$(cache_counters)
read -r h2 _ _ u2 <<<"$C2"
read -r _ _ _ u1 <<<"$C1"
sleep 0.5
logs1=$(cat "$SVC"/logs/*.log 2>/dev/null | wc -c)
if [ "$ok" -eq 1 ] && [ $((h2 - h1)) -eq 2 ] && [ "$u2" -eq "$u1" ] && [ "$logs1" -eq "$logs0" ]; then
	pass "GETs from sp-vm1 and sp-vm2: cache_hit +2, sha256 OK, 0 packets sent on the uplink, no service log line"
else
	bad "cached GETs: sha256 ok=$ok, cache_hit +$((h2 - h1)) (want +2), uplink packets +$((u2 - u1)) (want 0), service log bytes +$((logs1 - logs0)) (want 0)"
fi
info "tools/spctl cache show s3 /$BUCKET/small.bin: $("$SPCTL" cache show s3 "/$BUCKET/small.bin" --json 2>/dev/null | "$PY" -c 'import json, sys
e = json.load(sys.stdin)
e = e.get("entry", e)
print("size %s, etag %s, hits %s, fresh for %.0f s" % (e["size"], e["etag"], e["hits"], e["fresh_ms"] / 1e3))' 2>/dev/null || echo "?")"
aws_in sp-vm1 delete-object --bucket "$BUCKET" --key small.bin >/dev/null 2>&1
aws_in sp-vm1 delete-object --bucket "$BUCKET" --key blob.bin >/dev/null 2>&1
aws_in sp-vm1 delete-bucket --bucket "$BUCKET" >/dev/null 2>&1

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
    . $RUN/svc/env; ip netns exec sp-vm1 aws --endpoint-url \$SVC_ENDPOINT s3api list-buckets
    ip netns exec sp-vm2 tools/lab/s3round.py --env $RUN/svc/env.json --client all
    tools/spctl service show s3; tools/spctl cred list s3; tools/spctl auth
    tail -f $RUN/svc/logs/lb.access.log $RUN/svc/logs/fe1.log $RUN/svc/logs/node1.access.log
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
