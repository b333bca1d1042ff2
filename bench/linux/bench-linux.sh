#!/usr/bin/env bash
# bench-linux: portcullisd between real Linux stacks against the kernel's own stateful firewall.
#
# The same iperf3 TCP transfer and the same UDP small-packet flood (64-byte payloads, iperf3 -u -l 64 -b 0)
# run several ways in one run, between a client namespace (198.18.0.5) and a server namespace (198.18.1.10):
#
#   af_xdp        [client] --veth-- portcullisd (net_af_xdp)    --veth-- [server]   one /15, bridged
#   af_xdp_defer  the same, with preferred busy polling on the daemon's veth ends (napi_defer_hard_irqs,
#                 gro_flush_timeout: the veth's XDP receive then runs in the daemon's polls, on its CPU)
#   af_packet     [client] --veth-- portcullisd (net_af_packet) --veth-- [server]   one /15, bridged
#   nft           [client] --veth-- [router: ip_forward, nftables forward chain] --veth-- [server]
#                 198.18.0.0/24 and 198.18.1.0/24, routed; nothing pinned
#   nft_pinned    the same, with iperf3 on the hosts' CPU(s) and the router's forwarding steered by RPS
#                 to the CPU the daemon would have: the daemon ways' CPU split, for the kernel
#
# The daemon's rules and the router's chain say the same: inbound (client side) only TCP and UDP to the
# server's port 5201 (iperf3's control and data port), everything outbound, replies by the connection
# table, everything else dropped. Tx offloads are off on both host ends in every way (ethtool -K IF tx
# off, as tests/e2e/pair.sh must for the daemon): 1500-byte frames, no TSO, checksums by the sender.
# The daemon runs one worker on one CPU (EAL -l, the last CPU by default) and busy-polls it; iperf3
# runs pinned to the other CPU(s) in the daemon ways (taskset) and unpinned in the nft way.
#
# stdout: one JSON line per (way, case, rep), then per case one line per (ours, baseline) with
# ratio = median(ours) / median(baseline) over the reps, goal 1.0. stderr: progress and the daemon's
# warnings. Needs root, ip netns, iperf3, ethtool, python3 (exit 77 "SKIP: ..." without them); without
# nft the nft ways are skipped and their ratios are null. BENCH_LINUX_DEBUG=1 adds top, interface,
# socket and daemon counters per case on stderr.
#
# Usage: bash bench/linux/bench-linux.sh [--daemon PATH] [--cli PATH] [--seconds N] [--reps N]
#          [--ways af_xdp,af_xdp_defer,af_packet,nft,nft_pinned] [--cases tcp,udp]
#          [--lcore N] [--hosts-cpu LIST|all] [--rx-descriptors N] [--burst N] [--napi-defer N,NS]
#          [--xdp-devargs ARGS] [--afp-devargs ARGS] [--daemon-arg ARG]... [--sender-nice N] [--host-rps 0|1]
#   --seconds N        each transfer (3); --reps N: the ways in turn, N times (1). Default run: ~45 s.
#   --lcore N          the daemon's CPU (EAL -l N), and the router's in nft_pinned. Default: the last.
#   --hosts-cpu L      taskset CPU list for iperf3 in the pinned ways; default: every CPU but --lcore.
#   --rx-descriptors N the daemon's RX ring (queues.rx-descriptors; 4096 here, the daemon's default 1024).
#   --napi-defer N,NS  af_xdp_defer's napi_defer_hard_irqs and gro_flush_timeout (2,200000).
#   --xdp-devargs A    extra net_af_xdp devargs (e.g. busy_budget=0); --afp-devargs A: net_af_packet's
#                      (default framecnt=4096: the ring, 512 frames by default).
#   --daemon-arg A     one more daemon option (repeatable), e.g. --daemon-arg --queues.tx-descriptors=4096.
#   --sender-nice N    nice the UDP sender (0). --host-rps 1: RPS on the host ends, to the hosts' CPUs (0).
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
daemon=$repo/build/apps/portcullisd
cli=$repo/build/apps/portcullis
seconds=3
reps=1
ways=af_xdp,af_xdp_defer,af_packet,nft,nft_pinned
cases=tcp,udp
ncpu=$(nproc)
lcore=$((ncpu - 1))
hosts_cpu=""
burst=""
rx_desc=4096
sender_nice=0
napi_defer=2,200000
host_rps=0
xdp_devargs=""
afp_devargs=",framecnt=4096"
daemon_args=()
port=5201

usage() { sed -n '/^# Usage:/,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
	case $1 in
	--daemon) daemon=$2; shift 2 ;;
	--cli) cli=$2; shift 2 ;;
	--seconds) seconds=$2; shift 2 ;;
	--reps) reps=$2; shift 2 ;;
	--ways) ways=$2; shift 2 ;;
	--cases) cases=$2; shift 2 ;;
	--lcore) lcore=$2; shift 2 ;;
	--hosts-cpu) hosts_cpu=$2; shift 2 ;;
	--burst) burst=$2; shift 2 ;;
	--rx-descriptors) rx_desc=$2; shift 2 ;;
	--sender-nice) sender_nice=$2; shift 2 ;;
	--napi-defer) napi_defer=$2; shift 2 ;;
	--host-rps) host_rps=$2; shift 2 ;;
	--xdp-devargs) xdp_devargs=${2:+,$2}; shift 2 ;;
	--afp-devargs) afp_devargs=${2:+,$2}; shift 2 ;;
	--daemon-arg) daemon_args+=("$2"); shift 2 ;;
	-h|--help) usage; exit 0 ;;
	*) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
	esac
done
if [ -z "$hosts_cpu" ]; then
	if [ "$ncpu" -gt 1 ]; then
		hosts_cpu=$(seq -s, 0 $((ncpu - 1)) | tr , '\n' | grep -vx "$lcore" | paste -sd,)
	else
		hosts_cpu=all
	fi
fi

skip() { echo "SKIP: $*"; exit 77; }
log() { echo "bench-linux: $*" >&2; }
[ "$(id -u)" -eq 0 ] || skip "needs root"
command -v ip >/dev/null || skip "needs iproute2"
command -v iperf3 >/dev/null || skip "needs iperf3 (apt-get install -y iperf3)"
command -v ethtool >/dev/null || skip "needs ethtool"
command -v python3 >/dev/null || skip "needs python3"
py=$(command -v python3)
has_nft=1
command -v nft >/dev/null || has_nft=0

tag=bl$$
ns_c=${tag}c
ns_s=${tag}s
ns_r=${tag}r
work=$(mktemp -d)
pid=""
machine="$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $ncpu cpus"

stop_daemon() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		pid=""
	fi
}
teardown() {  # every namespace, link and process of the current way
	stop_daemon
	for ns in "$ns_c" "$ns_s" "$ns_r"; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
	done
	sleep 0.1
	for ns in "$ns_c" "$ns_s" "$ns_r"; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	ip link del "${tag}o" 2>/dev/null
	ip link del "${tag}i" 2>/dev/null
}
cleanup() {
	teardown
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$ns_c" 2>/dev/null || skip "cannot create network namespaces here"
ip netns del "$ns_c"

host_ns() {  # NS: a host namespace with loopback up and no IPv6 chatter
	ip netns add "$1" || return 1
	ip -n "$1" link set lo up
	ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}
cpu_mask() {  # CPU LIST (a,b or all) -> hex mask
	local m=0 c
	if [ "$1" = all ]; then echo 0; return; fi
	for c in ${1//,/ }; do m=$((m | (1 << c))); done
	printf '%x' "$m"
}
host_rps_on() {  # the hosts' receive processing on the hosts' CPUs (RPS on their ends), not the middle's
	[ "$host_rps" = 1 ] && [ "$hosts_cpu" != all ] || return 0
	local mask
	mask=$(cpu_mask "$hosts_cpu")
	ip netns exec "$ns_c" sh -c "echo $mask >/sys/class/net/${tag}oh/queues/rx-0/rps_cpus" &&
		ip netns exec "$ns_s" sh -c "echo $mask >/sys/class/net/${tag}ih/queues/rx-0/rps_cpus"
}
tx_off() {  # NS IF: tx offloads off (checksums by the sending host; no TSO)
	ip netns exec "$1" ethtool -K "$2" tx off >/dev/null 2>&1
}

warm_up() {  # ARP both ways before measuring: a ping outbound (server to client), which both rule sets allow
	ip netns exec "$ns_s" ping -c 1 -W 2 198.18.0.5 >/dev/null 2>&1 ||
		log "warning: the server cannot ping the client through the $way way"
}

setup_daemon_way() {  # DRIVER: client and server on one /15, portcullisd bridging two veth pairs
	local driver=${1%_defer} defer=$2 devargs
	host_ns "$ns_c" && host_ns "$ns_s" || return 1
	ip link add "${tag}o" type veth peer name "${tag}oh" || return 1
	ip link add "${tag}i" type veth peer name "${tag}ih" || return 1
	ip link set "${tag}oh" netns "$ns_c"
	ip link set "${tag}ih" netns "$ns_s"
	for ifc in "${tag}o" "${tag}i"; do
		sysctl -qw "net.ipv6.conf.$ifc.disable_ipv6=1" 2>/dev/null
		ip link set "$ifc" up
		ip link set "$ifc" promisc on
		if [ "$defer" = 1 ]; then  # DEFER,TIMEOUT_NS: preferred busy polling (DPDK's af_xdp guide)
			echo "${napi_defer%,*}" >"/sys/class/net/$ifc/napi_defer_hard_irqs"
			echo "${napi_defer#*,}" >"/sys/class/net/$ifc/gro_flush_timeout"
		fi
	done
	ip -n "$ns_c" addr add 198.18.0.5/15 dev "${tag}oh"
	ip -n "$ns_s" addr add 198.18.1.10/15 dev "${tag}ih"
	ip -n "$ns_c" link set "${tag}oh" up
	ip -n "$ns_s" link set "${tag}ih" up
	tx_off "$ns_c" "${tag}oh" && tx_off "$ns_s" "${tag}ih" || return 1
	host_rps_on || return 1

	cat >"$work/bench.rules" <<-EOF
	# bench-linux: what the nft way's forward chain says.
	default in drop
	default out allow
	allow in tcp to 198.18.1.10 port $port
	allow in udp to 198.18.1.10 port $port
	EOF
	if [ "$driver" = af_xdp ]; then devargs=$xdp_devargs; else devargs=$afp_devargs; fi
	local opts=(--rules "$work/bench.rules" --ports.outside "net_${driver}0" --ports.inside "net_${driver}1"
		--flows.capacity 65536 --queues.rx-descriptors "$rx_desc" --control.socket "$work/control.sock"
		--metrics.listen "" --run.duration $((seconds * 10 + 60)))  # a bound should this script be killed
	[ -n "$burst" ] && opts+=(--queues.burst "$burst")
	"$daemon" "${opts[@]}" "${daemon_args[@]}" \
		-- -l "$lcore" --no-huge -m 512 --no-pci --file-prefix="$tag" --log-level=warning \
		--vdev="net_${driver}0,iface=${tag}o$devargs" --vdev="net_${driver}1,iface=${tag}i$devargs" \
		>"$work/daemon.log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do
		grep -q "worker(s)" "$work/daemon.log" 2>/dev/null && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	# The daemon's warnings (XDP, memory) go to stderr whatever happens.
	grep -iE "warn|xdp|error|fail" "$work/daemon.log" | grep -v "elf: skipping unrecognized data section" | sed "s/^/bench-linux: [$driver daemon] /" >&2
	if ! grep -q "worker(s)" "$work/daemon.log"; then
		log "portcullisd did not start on $driver:"
		tail -20 "$work/daemon.log" >&2
		return 1
	fi
	warm_up
}

setup_nft_way() {  # [pinned]: a router namespace forwarding between two /24s, with an nftables stateful chain
	host_ns "$ns_c" && host_ns "$ns_s" && host_ns "$ns_r" || return 1
	ip link add "${tag}o" type veth peer name "${tag}oh" || return 1
	ip link add "${tag}i" type veth peer name "${tag}ih" || return 1
	ip link set "${tag}oh" netns "$ns_c"
	ip link set "${tag}ih" netns "$ns_s"
	ip link set "${tag}o" netns "$ns_r"
	ip link set "${tag}i" netns "$ns_r"
	ip -n "$ns_r" addr add 198.18.0.1/24 dev "${tag}o"
	ip -n "$ns_r" addr add 198.18.1.1/24 dev "${tag}i"
	ip -n "$ns_r" link set "${tag}o" up
	ip -n "$ns_r" link set "${tag}i" up
	ip netns exec "$ns_r" sysctl -qw net.ipv4.ip_forward=1
	ip -n "$ns_c" addr add 198.18.0.5/24 dev "${tag}oh"
	ip -n "$ns_s" addr add 198.18.1.10/24 dev "${tag}ih"
	ip -n "$ns_c" link set "${tag}oh" up
	ip -n "$ns_s" link set "${tag}ih" up
	ip -n "$ns_c" route add default via 198.18.0.1
	ip -n "$ns_s" route add default via 198.18.1.1
	tx_off "$ns_c" "${tag}oh" && tx_off "$ns_s" "${tag}ih" || return 1
	ip netns exec "$ns_r" nft -f - <<-EOF || return 1
	table inet bench {
		chain forward {
			type filter hook forward priority filter; policy drop;
			ct state established,related accept
			ct state invalid drop
			iifname "${tag}o" ip daddr 198.18.1.10 tcp dport $port accept
			iifname "${tag}o" ip daddr 198.18.1.10 udp dport $port accept
			iifname "${tag}i" accept
		}
	}
	EOF
	if [ "$1" = pinned ]; then
		# The router's packet processing on the daemon's CPU: RPS on its two ends steers each received
		# frame's forwarding (and what follows in softirq: the peer host's receive) to that CPU.
		local mask
		mask=$(cpu_mask "$lcore")
		ip netns exec "$ns_r" sh -c "echo $mask >/sys/class/net/${tag}o/queues/rx-0/rps_cpus &&
			echo $mask >/sys/class/net/${tag}i/queues/rx-0/rps_cpus" || return 1
		host_rps_on || return 1
	fi
	warm_up
}

in_hosts() {  # NS CMD...: run in a host namespace, pinned to the hosts' CPUs in the daemon ways
	local ns=$1
	shift
	if [ "$pinned" = 1 ] && [ "$hosts_cpu" != all ]; then
		ip netns exec "$ns" taskset -c "$hosts_cpu" "$@"
	else
		ip netns exec "$ns" "$@"
	fi
}

stats_to() {  # FILE: the daemon's stats (busy ratio, drops, port counters)
	[ -n "$pid" ] && "$cli" --socket "$work/control.sock" stats --json >"$1" 2>/dev/null
}

debug_counters() {  # LABEL: where packets were lost (BENCH_LINUX_DEBUG=1), on stderr
	{
		for ifc in "${tag}o" "${tag}i"; do
			if [ "$pinned" = 1 ]; then
				echo "$ifc: $(ip -s -s link show "$ifc" | tr -s ' \n' ' ')"
				ethtool -S "$ifc" 2>/dev/null | grep -vE ': 0$' | tr -s ' \n' ' '
				echo
			fi
		done
		for ns in "$ns_c" "$ns_s"; do
			echo "$ns: $(ip netns exec "$ns" nstat -az 2>/dev/null | grep -E 'UdpInErrors|UdpRcvbufErrors|TcpRetransSegs|IpInDiscards|TcpExtTCPBacklogDrop' | tr -s ' \n' ' ')"
		done
		[ -f "$work/stats.after" ] && "$py" -c '
import json, sys
d = json.load(open(sys.argv[1]))
print("daemon ports", d["ports"], "drops", {k: v for k, v in d["drops"].items() if v}, "workers", d["workers"])' "$work/stats.after"
	} 2>&1 | sed "s/^/bench-linux: [debug $1] /" >&2
}

host_snap() {  # FILE: the host ends' packet counters and the server's UDP socket drops
	{
		echo "client_tx $(ip -n "$ns_c" -s -j link show "${tag}oh" | "$py" -c 'import json, sys; print(json.load(sys.stdin)[0]["stats64"]["tx"]["packets"])')"
		echo "server_rx $(ip -n "$ns_s" -s -j link show "${tag}ih" | "$py" -c 'import json, sys; print(json.load(sys.stdin)[0]["stats64"]["rx"]["packets"])')"
		ip netns exec "$ns_s" awk '/^Udp:/ { if (!n++) split($0, k); else for (i = 2; i <= NF; i++) print "server_udp_" k[i], $i }' /proc/net/snmp
	} >"$1" 2>/dev/null
}

run_case() {  # WAY CASE REP -> one JSON line; the headline value appended to $work/WAY.CASE
	local way=$1 case=$2 rep=$3 out=$work/$1.$2
	rm -f "$work"/server.json "$work"/client.json "$work"/stats.* "$work"/host.*
	in_hosts "$ns_s" iperf3 -s -1 -J -B 198.18.1.10 -p "$port" >"$work/server.json" 2>&1 &
	local spid=$!
	sleep 0.3
	local args=(-c 198.18.1.10 -p "$port" -t "$seconds" -J) nice_cmd=()
	if [ "$case" = udp ]; then
		args+=(-u -l 64 -b 0)
		[ "$sender_nice" != 0 ] && nice_cmd=(nice -n "$sender_nice")
	fi
	stats_to "$work/stats.before"
	host_snap "$work/host.before"
	# Halfway through: the daemon's busy ratio (over about the last second) and what top sees.
	(
		sleep "$(awk -v s="$seconds" 'BEGIN { print s * 0.6 }')"
		stats_to "$work/stats.mid"
		top -b -n2 -d 0.5 -w 200 | awk '/^top -/ { n++ } n == 2' | sed -n '1,4p;7,15p' >"$work/top.$way.$case"
	) &
	local tpid=$!
	in_hosts "$ns_c" "${nice_cmd[@]}" iperf3 "${args[@]}" >"$work/client.json" 2>&1
	local crc=$?
	wait "$tpid" 2>/dev/null
	for _ in $(seq 30); do kill -0 "$spid" 2>/dev/null || break; sleep 0.1; done
	kill "$spid" 2>/dev/null
	wait "$spid" 2>/dev/null
	stats_to "$work/stats.after"
	host_snap "$work/host.after"
	[ "$crc" -eq 0 ] || log "$way $case: iperf3 client failed: $(head -c 300 "$work/client.json")"
	"$py" "$here/report.py" --way "$way" --case "$case" --rep "$rep" --seconds "$seconds" --dir "$work" \
		--cpus "$cpus" --profile "$profile" --machine "$machine" --out "$out"
	if [ -n "${BENCH_LINUX_DEBUG:-}" ]; then
		sed "s/^/bench-linux: [top $way $case] /" "$work/top.$way.$case" >&2
		debug_counters "$way $case"
	fi
	return 0
}

rps_note=""
[ "$host_rps" = 1 ] && [ "$hosts_cpu" != all ] && rps_note="; the hosts' receive steered to cpu $hosts_cpu (RPS)"
IFS=, read -r -a way_list <<<"$ways"
IFS=, read -r -a case_list <<<"$cases"
start=$(date +%s.%N)
for rep in $(seq "$reps"); do
	for way in "${way_list[@]}"; do
		case $way in
		af_xdp|af_xdp_defer|af_packet)
			[ -x "$daemon" ] || { log "no daemon at $daemon: skipping $way"; continue; }
			pinned=1
			if [ "$hosts_cpu" = all ]; then hcpu="all $ncpu cpus"; else hcpu="cpu $hosts_cpu"; fi
			cpus="portcullisd: cpu $lcore, busy-polling; iperf3 client and server: $hcpu (taskset); kernel work where it is raised$rps_note"
			if [ "$way" = af_packet ]; then devargs=$afp_devargs; else devargs=$xdp_devargs; fi
			profile="rx-descriptors=$rx_desc burst=${burst:-32} devargs=${devargs#,}"
			defer=0
			if [ "$way" = af_xdp_defer ]; then
				defer=1
				profile="$profile; napi_defer_hard_irqs=${napi_defer%,*} gro_flush_timeout=${napi_defer#*,} on the daemon's ends"
			fi
			log "$way: starting portcullisd on cpu $lcore"
			setup_daemon_way "$way" "$defer" || { log "$way: setup failed, skipped"; teardown; continue; } ;;
		nft|nft_pinned)
			if [ "$has_nft" = 0 ]; then log "nft not installed: $way way skipped"; continue; fi
			profile="nftables forward chain, ct state established,related accept"
			if [ "$way" = nft ]; then
				pinned=0
				cpus="router namespace (kernel forwarding + nftables) + iperf3: all $ncpu cpus, unpinned"
			else
				pinned=1
				if [ "$hosts_cpu" = all ]; then hcpu="all $ncpu cpus"; else hcpu="cpu $hosts_cpu"; fi
				cpus="router forwarding + nftables: cpu $lcore (RPS on the router's ends); iperf3 client and server: $hcpu (taskset)$rps_note"
			fi
			log "$way: router namespace"
			setup_nft_way "${way#nft_}" || { log "$way: setup failed, skipped"; teardown; continue; } ;;
		*) log "unknown way $way"; continue ;;
		esac
		for c in "${case_list[@]}"; do
			log "$way $c: ${seconds} s (rep $rep of $reps)"
			run_case "$way" "$c" "$rep"
		done
		teardown
	done
done

for c in "${case_list[@]}"; do
	for base in nft nft_pinned; do
		[[ ",$ways," == *",$base,"* ]] || continue
		for ours in af_xdp af_xdp_defer af_packet; do
			[[ ",$ways," == *",$ours,"* ]] || continue
			"$py" "$here/report.py" --ratio "$c" "$ours" "$base" "$work/$ours.$c" "$work/$base.$c"
		done
	done
done
log "done in $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }') s"
