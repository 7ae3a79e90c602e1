#!/bin/bash
# The lab's network: VM namespaces on veths for shortpathd, a routed fabric behind its uplink, one namespace per service host, a management path from the host (`labnet.sh up [--vms N]|down|status`).
#
#   VM side (shortpathd attaches the host ends with net_af_packet)
#     netns sp-vm<i>   eth0 10.77.0.1<i>/24  02:77:00:00:00:1<i>  <-veth->  sp-vm<i> (host, no IP)
#                      default via 10.77.0.1                         i = 1..N (default N=2, max 8)
#     netns sp-fabric  eth0 10.77.0.1/24     02:77:00:00:00:01    <-veth->  sp-up    (host, no IP)
#
#   sp-fabric routes (ip_forward) between the VM subnet, the service subnet and the management link:
#     br0 10.78.0.1/24: one veth (s-<host>) per service host namespace
#       sp-lb 10.78.0.10 (+ the service VIP 10.79.0.10/32 on lo; fabric: 10.79.0.0/24 via .10)
#       sp-fe1 10.78.0.21, sp-fe2 10.78.0.22   sp-mgr 10.78.0.30   sp-sdb 10.78.0.40 (service Redis)
#       sp-node1 10.78.0.51, sp-node2 .52, sp-node3 .53
#     mgmt0 10.76.0.2/30 <-veth-> sp-mgmt 10.76.0.1/30 on the host; the host routes 10.78.0.0/24 and
#       10.79.0.0/24 through it (storage manager, service Redis, VIP), never the VM subnet.
#
# Kernel offloads are off on both ends of the veths shortpathd attaches (and rx checksumming off
# on its ends): with them on, af_packet hands shortpathd frames with unfinished checksums and TSO
# super-frames and TCP through it stalls (DESIGN.md §8). Service-side veths are kernel to kernel
# and keep theirs. IPv6 is off everywhere in the lab: it is IPv4 only and quiet.
#
# `up` is idempotent (creates what is missing, re-applies settings to what exists); `down`
# removes every lab namespace and host link whatever N was, also after a partial `up`, and
# succeeds when nothing is there. Processes left in lab namespaces are killed by `down`.
set -eu

VMS=2
FABRIC=sp-fabric
SERVICE_HOSTS="sp-lb:10 sp-fe1:21 sp-fe2:22 sp-mgr:30 sp-sdb:40 sp-node1:51 sp-node2:52 sp-node3:53"
VIP=10.79.0.10
# every namespace and host link this script can create, whatever --vms was
NS_PATTERN='^sp-(vm[0-9]+|fabric|lb|fe[0-9]+|mgr|sdb|node[0-9]+)$'
HOST_LINK_PATTERN='^(sp-vm[0-9]+|sp-up|sp-mgmt)$'

die() {
	echo "labnet.sh: $*" >&2
	exit 1
}

need_root() {
	[ "$(id -u)" -eq 0 ] || die "run as root (network namespaces, veth)"
	for c in ip ethtool sysctl; do
		command -v "$c" >/dev/null 2>&1 || die "missing command '$c' (run tools/install-deps.sh)"
	done
}

ns_exists() { [ -e "/run/netns/$1" ]; }

link_exists() { # [netns] dev
	if [ $# -eq 2 ]; then
		ip -n "$1" link show dev "$2" >/dev/null 2>&1
	else
		ip link show dev "$1" >/dev/null 2>&1
	fi
}

# ns|"" dev feature...: ethtool -K one feature at a time (so one the kernel refuses does not
# keep the others on), then checks that every one of them reads "off".
offloads_off() {
	local ns=$1 dev=$2 f name state
	shift 2
	local -a exec=()
	[ -z "$ns" ] || exec=(ip netns exec "$ns")
	for f in "$@"; do
		"${exec[@]}" ethtool -K "$dev" "$f" off >/dev/null 2>&1 || true
	done
	state=$("${exec[@]}" ethtool -k "$dev")
	for f in "$@"; do
		case "$f" in
		rx) name=rx-checksumming ;;
		tx) name=tx-checksumming ;;
		tso) name=tcp-segmentation-offload ;;
		gso) name=generic-segmentation-offload ;;
		gro) name=generic-receive-offload ;;
		*) name=$f ;;
		esac
		grep -q "^$name: off" <<<"$state" ||
			die "${ns:+netns $ns: }$dev: cannot turn $name off (ethtool -K $dev $f off)"
	done
}

ns_up() { # ns: exists, lo up, IPv6 off
	ns_exists "$1" || ip netns add "$1"
	ip -n "$1" link set lo up
	ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
	ip netns exec "$1" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
}

# veth between "$1" (host end name, in namespace $3 or the host if $3 is "") and eth0-like "$4" in
# namespace $2. A half left over from an earlier run (one end without the other) is recreated.
veth() { # outer_name ns inner_name [outer_ns]
	local outer=$1 ns=$2 inner=$3 ons=${4:-}
	local -a on=()
	[ -z "$ons" ] || on=(-n "$ons")
	local have_outer=0 have_inner=0
	ip "${on[@]}" link show dev "$outer" >/dev/null 2>&1 && have_outer=1
	link_exists "$ns" "$inner" && have_inner=1
	if [ $have_outer -ne $have_inner ]; then
		[ $have_outer -eq 0 ] || ip "${on[@]}" link del "$outer"
		[ $have_inner -eq 0 ] || ip -n "$ns" link del "$inner"
		have_outer=0
	fi
	# Created with the peer directly inside the namespace: no half-moved state.
	[ $have_outer -eq 1 ] || ip "${on[@]}" link add "$outer" type veth peer name "$inner" netns "$ns"
}

# A host end shortpathd attaches: no addresses, no IPv6, never answers ARP (the host must stay
# out of the lab's traffic), fixed MAC, offloads off (rx too: shortpathd reads this end).
dataplane_end() { # dev mac
	sysctl -qw "net.ipv6.conf.$1.disable_ipv6=1"
	sysctl -qw "net.ipv4.conf.$1.arp_ignore=8"
	ip addr flush dev "$1"
	ip link set dev "$1" address "$2"
	offloads_off "" "$1" rx tx tso gso gro
	ip link set dev "$1" up
}

inner_end() { # ns dev address mac|"" offloads(0/1)
	local ns=$1 dev=$2 addr=$3 mac=$4
	[ -z "$mac" ] || ip -n "$ns" link set dev "$dev" address "$mac"
	ip -n "$ns" addr replace "$addr" dev "$dev"
	[ "$5" -eq 0 ] || offloads_off "$ns" "$dev" tx tso gso gro
	ip -n "$ns" link set dev "$dev" up
}

cmd_up() {
	need_root
	trap 'rc=$?; [ $rc -eq 0 ] || echo "labnet.sh: up failed (exit $rc); \"$0 down\" removes the partial lab" >&2' EXIT
	local i n vmip

	# the fabric: a router between the VM subnet (behind shortpathd), services, management
	ns_up "$FABRIC"
	ip netns exec "$FABRIC" sysctl -qw net.ipv4.ip_forward=1
	veth sp-up "$FABRIC" eth0
	dataplane_end sp-up 02:77:00:00:01:01
	inner_end "$FABRIC" eth0 10.77.0.1/24 02:77:00:00:00:01 1

	# VMs: default route through shortpathd to the fabric
	for i in $(seq 1 "$VMS"); do
		ns_up "sp-vm$i"
		veth "sp-vm$i" "sp-vm$i" eth0
		dataplane_end "sp-vm$i" "02:77:00:00:01:1$i"
		inner_end "sp-vm$i" eth0 "10.77.0.1$i/24" "02:77:00:00:00:1$i" 1
		ip -n "sp-vm$i" route replace default via 10.77.0.1
	done
	# VMs beyond N from an earlier, larger lab go
	for n in $(ip netns list | awk '{print $1}' | grep -E '^sp-vm[0-9]+$' || true); do
		i=${n#sp-vm}
		if [ "$i" -gt "$VMS" ]; then
			ip link del "$n" >/dev/null 2>&1 || true
			kill_ns_pids "$n"
			ip netns del "$n"
		fi
	done

	# service hosts on a bridge in the fabric
	if ! link_exists "$FABRIC" br0; then
		ip -n "$FABRIC" link add br0 type bridge stp_state 0 forward_delay 0
	fi
	ip -n "$FABRIC" addr replace 10.78.0.1/24 dev br0
	ip -n "$FABRIC" link set br0 up
	for entry in $SERVICE_HOSTS; do
		n=${entry%%:*}
		ns_up "$n"
		veth "s-${n#sp-}" "$n" eth0 "$FABRIC"
		ip -n "$FABRIC" link set "s-${n#sp-}" master br0 up
		inner_end "$n" eth0 "10.78.0.${entry#*:}/24" "" 0
		ip -n "$n" route replace default via 10.78.0.1
	done
	ip -n sp-lb addr replace "$VIP/32" dev lo
	ip -n "$FABRIC" route replace 10.79.0.0/24 via 10.78.0.10

	# management path: host <-> fabric
	veth sp-mgmt "$FABRIC" mgmt0
	sysctl -qw net.ipv6.conf.sp-mgmt.disable_ipv6=1
	ip addr replace 10.76.0.1/30 dev sp-mgmt
	ip link set dev sp-mgmt up
	inner_end "$FABRIC" mgmt0 10.76.0.2/30 "" 0
	ip route replace 10.78.0.0/24 via 10.76.0.2 dev sp-mgmt
	ip route replace 10.79.0.0/24 via 10.76.0.2 dev sp-mgmt

	trap - EXIT
	vmip=""
	for i in $(seq 1 "$VMS"); do vmip="$vmip sp-vm$i 10.77.0.1$i"; done
	echo "labnet.sh: up (VMs:$vmip; fabric 10.77.0.1 behind sp-up; VIP $VIP; service hosts 10.78.0.0/24; management sp-mgmt 10.76.0.1)"
}

# Processes left in a namespace keep it (and its veth ends) alive after `ip netns del`: end them
# first (by pid: only what runs inside the lab).
kill_ns_pids() {
	local ns=$1 pids i=0
	pids=$(ip netns pids "$ns" 2>/dev/null || true)
	[ -n "$pids" ] || return 0
	# shellcheck disable=SC2086
	kill $pids 2>/dev/null || true
	while [ $i -lt 50 ] && [ -n "$(ip netns pids "$ns" 2>/dev/null || true)" ]; do
		sleep 0.1
		i=$((i + 1))
	done
	pids=$(ip netns pids "$ns" 2>/dev/null || true)
	# shellcheck disable=SC2086
	[ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
}

cmd_down() {
	need_root
	local n
	ip route del 10.78.0.0/24 via 10.76.0.2 >/dev/null 2>&1 || true
	ip route del 10.79.0.0/24 via 10.76.0.2 >/dev/null 2>&1 || true
	for n in $(ip -o link show | awk -F': ' '{sub(/@.*/, "", $2); print $2}' | grep -E "$HOST_LINK_PATTERN" || true); do
		ip link del "$n" >/dev/null 2>&1 || true # deleting either end of a veth deletes both
	done
	for n in $(ip netns list | awk '{print $1}' | grep -E "$NS_PATTERN" || true); do
		kill_ns_pids "$n"
		ip netns del "$n" >/dev/null 2>&1 || true
	done
	echo "labnet.sh: down"
}

cmd_status() {
	local ok=1 i n state mac addr want
	check() { # label ns dev want_addr want_mac
		if ! ns_exists "$2"; then
			printf '%-10s namespace missing\n' "$2"
			ok=0
			return
		fi
		state=$(ip netns exec "$2" cat "/sys/class/net/$3/operstate" 2>/dev/null || echo missing)
		mac=$(ip netns exec "$2" cat "/sys/class/net/$3/address" 2>/dev/null || echo "?")
		addr=$(ip -n "$2" -4 -o addr show dev "$3" 2>/dev/null | awk '{print $4}' | tr '\n' ' ')
		addr=${addr% }
		printf '%-10s %-5s %-7s %s %s\n' "$2" "$3" "$state" "$mac" "$addr"
		if [ "$state" != up ] || [ "$addr" != "$4" ] || { [ -n "$5" ] && [ "$mac" != "$5" ]; }; then
			ok=0
		fi
	}
	host_end() { # dev
		state=$(cat "/sys/class/net/$1/operstate" 2>/dev/null || echo missing)
		addr=$(ip -o -4 addr show dev "$1" 2>/dev/null | awk '{print $4}' | tr '\n' ' ')
		addr=${addr% }
		printf '%-10s %-7s %s\n' "host:$1" "$state" "${addr:-no address}"
		[ "$state" = up ] && [ "$addr" = "$2" ] || ok=0
	}
	for i in $(seq 1 "$VMS"); do
		check vm "sp-vm$i" eth0 "10.77.0.1$i/24" "02:77:00:00:00:1$i"
		host_end "sp-vm$i" ""
	done
	check fabric "$FABRIC" eth0 10.77.0.1/24 02:77:00:00:00:01
	host_end sp-up ""
	check fabric "$FABRIC" br0 10.78.0.1/24 ""
	for entry in $SERVICE_HOSTS; do
		check svc "${entry%%:*}" eth0 "10.78.0.${entry#*:}/24" ""
	done
	host_end sp-mgmt 10.76.0.1/30
	if [ $ok -eq 1 ]; then
		echo "labnet.sh: lab network is up"
		return 0
	fi
	echo "labnet.sh: lab network is down or incomplete ('$0 up' creates it, '$0 down' removes it)"
	return 1
}

cmd=${1:-}
[ $# -eq 0 ] || shift
while [ $# -gt 0 ]; do
	case "$1" in
	--vms)
		[ $# -ge 2 ] || die "--vms needs a number"
		VMS=$2
		shift 2
		;;
	--vms=*)
		VMS=${1#--vms=}
		shift
		;;
	*) die "unknown argument '$1' (usage: $0 up|down|status [--vms N])" ;;
	esac
done
case "$VMS" in
[1-8]) ;;
*) die "--vms: '$VMS' is not a number from 1 to 8" ;;
esac
case "$cmd" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
*)
	echo "usage: $0 up|down|status [--vms N]" >&2
	exit 2
	;;
esac
