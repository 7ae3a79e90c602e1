#!/bin/sh
# Namespace lab for shortpathd: `lab.sh up|down|status` creates/removes two VM namespaces and a fabric namespace on veth pairs.
#
# Topology (the host ends are what shortpathd attaches with net_af_packet):
#
#   netns sp-vm1     eth0 10.77.0.11/24 02:77:00:00:00:11  <-veth->  sp-vm1  (host, no IP)
#   netns sp-vm2     eth0 10.77.0.12/24 02:77:00:00:00:12  <-veth->  sp-vm2  (host, no IP)
#   netns sp-fabric  eth0 10.77.0.1/24  02:77:00:00:00:01  <-veth->  sp-up   (host, no IP)
#
# Kernel offloads are off on both ends of every veth (and rx checksumming off on the host
# ends): with them on, af_packet hands shortpathd frames with unfinished checksums and TSO
# super-frames and TCP through it stalls (DESIGN.md §8). IPv6 is disabled on the host ends
# and inside the lab namespaces so the kernel does not chatter (DAD, MLD, router
# solicitations): the lab is IPv4 only and quiet unless something is sent on purpose.
#
# `up` is idempotent (creates what is missing, re-applies settings to what exists); `down`
# removes everything, also after a partial `up`, and succeeds when nothing is there.
set -eu

# namespace,host_end,ns_address,ns_mac
LAB="sp-vm1,sp-vm1,10.77.0.11/24,02:77:00:00:00:11
sp-vm2,sp-vm2,10.77.0.12/24,02:77:00:00:00:12
sp-fabric,sp-up,10.77.0.1/24,02:77:00:00:00:01"

# Shell functions share variables: helpers use prefixed names (o_*) to leave ns/host/... alone.

# Fixed MACs for the host ends too (locally administered), so captures are easy to read.
host_mac() {
	case "$1" in
	sp-vm1) echo 02:77:00:00:01:11 ;;
	sp-vm2) echo 02:77:00:00:01:12 ;;
	sp-up) echo 02:77:00:00:01:01 ;;
	esac
}

die() {
	echo "lab.sh: $*" >&2
	exit 1
}

need_root() {
	[ "$(id -u)" -eq 0 ] || die "run as root (network namespaces, veth)"
	for c in ip ethtool sysctl; do
		command -v "$c" >/dev/null 2>&1 || die "missing command '$c' (run tools/install-deps.sh)"
	done
}

ns_exists() {
	[ -e "/run/netns/$1" ]
}

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
	o_ns=$1 o_dev=$2
	shift 2
	o_exec=""
	[ -z "$o_ns" ] || o_exec="ip netns exec $o_ns"
	for o_f in "$@"; do
		$o_exec ethtool -K "$o_dev" "$o_f" off >/dev/null 2>&1 || true
	done
	o_state=$($o_exec ethtool -k "$o_dev")
	for o_f in "$@"; do
		case "$o_f" in
		rx) o_name=rx-checksumming ;;
		tx) o_name=tx-checksumming ;;
		tso) o_name=tcp-segmentation-offload ;;
		gso) o_name=generic-segmentation-offload ;;
		gro) o_name=generic-receive-offload ;;
		*) o_name=$o_f ;;
		esac
		echo "$o_state" | grep -q "^$o_name: off" ||
			die "${o_ns:+netns $o_ns: }$o_dev: cannot turn $o_name off (ethtool -K $o_dev $o_f off)"
	done
}

up_one() { # ns host ip mac
	ns=$1 host=$2 ip=$3 mac=$4
	ns_exists "$ns" || ip netns add "$ns"
	ip -n "$ns" link set lo up
	# IPv4-only, quiet lab: no link-local addresses, DAD, MLD or router solicitations.
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1

	# A host end without its peer in the namespace (or vice versa) is a leftover: recreate.
	if link_exists "$host" && ! link_exists "$ns" eth0; then
		ip link del "$host"
	fi
	if link_exists "$ns" eth0 && ! link_exists "$host"; then
		ip -n "$ns" link del eth0
	fi
	if ! link_exists "$host"; then
		# Created with the peer directly inside the namespace: no half-moved state.
		ip link add "$host" type veth peer name eth0 netns "$ns"
	fi

	# Host end: no addresses, no IPv6, never answers ARP (the host must stay out of the
	# lab's traffic: only shortpathd uses this end), offloads off (rx too: shortpathd
	# reads this end).
	sysctl -qw "net.ipv6.conf.$host.disable_ipv6=1"
	sysctl -qw "net.ipv4.conf.$host.arp_ignore=8"
	ip addr flush dev "$host"
	ip link set dev "$host" address "$(host_mac "$host")"
	offloads_off "" "$host" rx tx tso gso gro
	ip link set dev "$host" up

	# Namespace end: fixed MAC, the lab address, offloads off.
	ip -n "$ns" link set dev eth0 address "$mac"
	ip -n "$ns" addr replace "$ip" dev eth0
	offloads_off "$ns" eth0 tx tso gso gro
	ip -n "$ns" link set dev eth0 up
}

# Splits "$entry" (namespace,host,address,mac) into ns host ip mac.
parse() {
	ns=${entry%%,*}
	rest=${entry#*,}
	host=${rest%%,*}
	rest=${rest#*,}
	ip=${rest%%,*}
	mac=${rest#*,}
}

cmd_up() {
	need_root
	# shellcheck disable=SC2154 # rc is assigned inside the trap
	trap 'rc=$?; [ $rc -eq 0 ] || echo "lab.sh: up failed (exit $rc); \"$0 down\" removes the partial lab" >&2' EXIT
	for entry in $LAB; do
		parse
		up_one "$ns" "$host" "$ip" "$mac"
	done
	trap - EXIT
	echo "lab.sh: up (sp-vm1 10.77.0.11, sp-vm2 10.77.0.12, sp-fabric 10.77.0.1; host ends sp-vm1 sp-vm2 sp-up)"
}

cmd_down() {
	need_root
	for entry in $LAB; do
		parse
		# Processes left in a namespace keep it (and its veth end) alive after
		# `ip netns del`: end them first (by pid: only what runs inside the lab).
		if ns_exists "$ns"; then
			pids=$(ip netns pids "$ns" 2>/dev/null || true)
			if [ -n "$pids" ]; then
				# shellcheck disable=SC2086
				kill $pids 2>/dev/null || true
				i=0
				while [ $i -lt 50 ] && [ -n "$(ip netns pids "$ns" 2>/dev/null || true)" ]; do
					sleep 0.1
					i=$((i + 1))
				done
				pids=$(ip netns pids "$ns" 2>/dev/null || true)
				# shellcheck disable=SC2086
				[ -z "$pids" ] || kill -9 $pids 2>/dev/null || true
			fi
		fi
		# Deleting either end of a veth deletes both.
		ip link del "$host" >/dev/null 2>&1 || true
		ip netns del "$ns" >/dev/null 2>&1 || true
	done
	echo "lab.sh: down"
}

cmd_status() {
	ok=1
	for entry in $LAB; do
		parse
		if ! ns_exists "$ns"; then
			printf '%-10s namespace missing\n' "$ns"
			ok=0
			continue
		fi
		if ! link_exists "$host" || ! link_exists "$ns" eth0; then
			printf '%-10s namespace present, veth %s<->eth0 missing\n' "$ns" "$host"
			ok=0
			continue
		fi
		hstate=$(cat "/sys/class/net/$host/operstate" 2>/dev/null || echo "?")
		nstate=$(ip netns exec "$ns" cat /sys/class/net/eth0/operstate 2>/dev/null || echo "?")
		nmac=$(ip netns exec "$ns" cat /sys/class/net/eth0/address 2>/dev/null || echo "?")
		naddr=$(ip -n "$ns" -4 -o addr show dev eth0 | awk '{print $4}' | tr '\n' ' ')
		naddr=${naddr% }
		haddr=$(ip -o addr show dev "$host" | awk '{print $4}' | tr '\n' ' ')
		haddr=${haddr% }
		printf '%-10s eth0 %-4s %s %-14s | host %-6s %-4s addresses: %s\n' "$ns" "$nstate" \
			"$nmac" "$naddr" "$host" "$hstate" "${haddr:-none}"
		if [ "$nmac" != "$mac" ] || [ "$naddr" != "$ip" ] || [ -n "$haddr" ] ||
			[ "$hstate" != up ] || [ "$nstate" != up ]; then
			ok=0
		fi
	done
	if [ $ok -eq 1 ]; then
		echo "lab.sh: lab is up"
		return 0
	fi
	echo "lab.sh: lab is down or incomplete ('$0 up' creates it, '$0 down' removes it)"
	return 1
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
*)
	echo "usage: $0 up|down|status" >&2
	exit 2
	;;
esac
