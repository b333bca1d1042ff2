#!/bin/bash
# Flow-state sync end to end (lib/sync, docs/scale-out.md): two portcullisd, each a bump in the wire on
# its own link between an outer and an inner router namespace, with real TCP stacks on both ends.
#
#   [c 198.18.0.5] - [ro] =link A= portcullisd A =link A= [ri] - [s 198.18.1.10]
#                         =link B= portcullisd B =link B=
#
# Failover: A active and B standby, synced over loopback. The routers send everything through link A.
# Three long-lived connections (a line echoed every 100 ms) and an iperf3 transfer run; then A is killed
# (SIGKILL), both routers move their route to link B, and B is promoted (`portcullis sync promote`, what
# keepalived's notify would run). Every connection must carry on, and iperf3 must finish.
# Two actives (sync.defer-ms), directions split: the outer router sends through A, the inner through B,
# so every SYN crosses A and every SYN-ACK B, which waits for A's record of the flow; iperf3 and the
# long-lived connections work. Two actives behind ECMP (multipath routes on both routers, hashed per
# 5-tuple): A is killed and its next hop removed; every connection carries on through B.
# Then the first failover without sync, to show the test can fail: B has no state, the connections are cut.
# Root, ip netns, python3 and iperf3; exits 77 (skip) without them.
set -u
daemon=$1
cli=$2
tag=sy$$
ns_c=${tag}c ns_ro=${tag}ro ns_ri=${tag}ri ns_s=${tag}s
work=$(mktemp -d)
py=$(command -v python3)
pids=()
failures=0
skip() { echo "SKIP: $*"; exit 77; }
fail() {
	echo "FAIL: $*"
	for f in "$work"/*.log; do [ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }; done
	exit 1
}
check() {  # NAME EXPECTED ACTUAL
	if [ "$2" = "$3" ]; then
		echo "PASS: $1"
	else
		echo "FAIL: $1 (expected '$2', got '$3')"
		failures=$((failures + 1))
	fi
}
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	for ns in "$ns_c" "$ns_ro" "$ns_ri" "$ns_s"; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	for l in ao ai bo bi; do ip link del "${tag}$l" 2>/dev/null; done
	rm -rf "$work"
}
trap cleanup EXIT

[ "$(id -u)" -eq 0 ] || skip "needs root"
command -v iperf3 >/dev/null || skip "needs iperf3"
[ -n "$py" ] || skip "needs python3"
ip netns add "$ns_c" 2>/dev/null || skip "cannot create network namespaces here"
for ns in "$ns_ro" "$ns_ri" "$ns_s"; do ip netns add "$ns" || fail "netns"; done

# veth pairs: the hosts to their routers, and each link's two halves (one end in a router, the other
# in the root namespace for a daemon).
veth() {  # END_A NS_A END_B NS_B (NS "" = root)
	ip link add "$1" type veth peer name "$3" || fail "veth $1"
	[ -n "$2" ] && ip link set "$1" netns "$2"
	[ -n "$4" ] && ip link set "$3" netns "$4"
	return 0
}
veth "${tag}c0" "$ns_c" "${tag}c1" "$ns_ro"
veth "${tag}s0" "$ns_s" "${tag}s1" "$ns_ri"
veth "${tag}ao" "" "${tag}aro" "$ns_ro"
veth "${tag}ai" "" "${tag}ari" "$ns_ri"
veth "${tag}bo" "" "${tag}bro" "$ns_ro"
veth "${tag}bi" "" "${tag}bri" "$ns_ri"
for l in ao ai bo bi; do
	ip link set "${tag}$l" up
	ip link set "${tag}$l" promisc on
	sysctl -qw "net.ipv6.conf.${tag}$l.disable_ipv6=1" 2>/dev/null
done
addr() {  # NS IF CIDR
	ip -n "$1" addr add "$3" dev "$2"
	ip -n "$1" link set "$2" up
	# Checksums are left to the veth peer in the kernel; through AF_PACKET nobody fills them in.
	ip netns exec "$1" ethtool -K "$2" tx off >/dev/null 2>&1 || fail "ethtool (install ethtool)"
}
addr "$ns_c" "${tag}c0" 198.18.0.5/24
addr "$ns_ro" "${tag}c1" 198.18.0.1/24
addr "$ns_ro" "${tag}aro" 198.18.2.1/24
addr "$ns_ro" "${tag}bro" 198.18.3.1/24
addr "$ns_ri" "${tag}ari" 198.18.2.2/24
addr "$ns_ri" "${tag}bri" 198.18.3.2/24
addr "$ns_ri" "${tag}s1" 198.18.1.1/24
addr "$ns_s" "${tag}s0" 198.18.1.10/24
for ns in "$ns_c" "$ns_ro" "$ns_ri" "$ns_s"; do ip -n "$ns" link set lo up; done
for ns in "$ns_ro" "$ns_ri"; do
	ip netns exec "$ns" sysctl -qw net.ipv4.ip_forward=1
	ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.rp_filter=0
done
ip -n "$ns_c" route add default via 198.18.0.1
ip -n "$ns_s" route add default via 198.18.1.1
# Routes: a or b, both routers over that link; ecmp, both over both links (multipath, hashed per
# 5-tuple on each router: a flow's two directions may cross different links); split, the outer router
# over link A and the inner over link B (every flow's directions apart).
route_via() {
	case $1 in
	a | b)
		local n=$([ "$1" = a ] && echo 2 || echo 3)
		ip -n "$ns_ro" route replace 198.18.1.0/24 via "198.18.$n.2"
		ip -n "$ns_ri" route replace 198.18.0.0/24 via "198.18.$n.1"
		;;
	ecmp)
		ip -n "$ns_ro" route replace 198.18.1.0/24 nexthop via 198.18.2.2 nexthop via 198.18.3.2
		ip -n "$ns_ri" route replace 198.18.0.0/24 nexthop via 198.18.2.1 nexthop via 198.18.3.1
		;;
	split)
		ip -n "$ns_ro" route replace 198.18.1.0/24 via 198.18.2.2
		ip -n "$ns_ri" route replace 198.18.0.0/24 via 198.18.3.1
		;;
	esac
}
for ns in "$ns_ro" "$ns_ri"; do ip netns exec "$ns" sysctl -qw net.ipv4.fib_multipath_hash_policy=1; done

cat >"$work/sync.rules" <<'RULES'
default in drop
default out allow
allow in tcp to 198.18.1.10 port { 5201, 7000 }
allow in icmp icmp-type echo-request
allow out from 198.18.1.0/24
RULES
head -c 32 /dev/urandom | base64 >"$work/key"
port_a=$((20000 + $$ % 20000))
port_b=$((port_a + 1))

start_daemon() {  # NAME LINK LCORE [options...]
	local try
	# Right after a daemon on the same interfaces was killed, the kernel may still hold its AF_PACKET
	# fanout group for a moment, and DPDK's af_packet PMD cannot set up its own: try again.
	for try in 1 2 3; do
		start_daemon_once "$@" && return 0
		grep -q "could not set PACKET_FANOUT" "$work/$1.log" || break
		sleep 0.5
	done
	fail "portcullisd $1 did not start"
}
start_daemon_once() {  # NAME LINK LCORE [options...]
	local name=$1 link=$2 lcore=$3
	shift 3
	"$daemon" --rules "$work/sync.rules" --ports.outside net_af_packet0 --ports.inside net_af_packet1 \
		--flows.capacity 4096 --run.duration 120 --control.socket "$work/$name.sock" --metrics.listen "" "$@" \
		-- -l "$lcore" --no-huge -m 256 --no-pci --file-prefix="${tag}$name" --log-level=error \
		--vdev="net_af_packet0,iface=${tag}${link}o" --vdev="net_af_packet1,iface=${tag}${link}i" \
		>"$work/$name.log" 2>&1 &
	pids+=($!)
	eval "pid_$name=$!"
	for _ in $(seq 50); do
		grep -q "worker(s)" "$work/$name.log" 2>/dev/null && return 0
		kill -0 "$!" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
sync_field() {  # NAME PYTHON-EXPRESSION over d (the sync object)
	"$cli" --socket "$work/$1.sock" --timeout 5 sync --json 2>/dev/null |
		"$py" -c 'import json, sys; d = json.load(sys.stdin)["sync"]; print(eval(sys.argv[1]))' "$2" 2>/dev/null
}
counter() {  # NAME PYTHON-EXPRESSION over d (stats)
	"$cli" --socket "$work/$1.sock" --timeout 5 stats --json 2>/dev/null |
		"$py" -c 'import json, sys; d = json.load(sys.stdin); print(eval(sys.argv[1]))' "$2" 2>/dev/null
}

# The inside host's services.
ip netns exec "$ns_s" "$py" "$(dirname "$0")/echo_server.py" 198.18.1.10 7000 &
pids+=($!)
ip netns exec "$ns_s" iperf3 -s -B 198.18.1.10 >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 50); do
	ip netns exec "$ns_s" ss -Hltn "sport = :7000" | grep -q LISTEN && break
	sleep 0.1
done

# N long-lived connections through whatever path: a line every 100 ms each, every echo awaited (4 s at
# most), until $work/stop appears. Prints per connection: lines sent, echoes received, slowest echo.
long_lived() {  # N OUT
	ip netns exec "$ns_c" "$py" "$(dirname "$0")/long_lived.py" 198.18.1.10 7000 "$1" "$work/stop" 4 >"$2" \
		2>"$2.err" &
	pids+=($!)
	ll_pid=$!
	for _ in $(seq 50); do
		[ "$(ls "$work"/stop.up* 2>/dev/null | wc -l)" -ge "$1" ] && return 0
		sleep 0.1
	done
	fail "the long-lived connections did not open"
}
# Connections whose every line came back: a count.
survivors() {  # OUT MIN_LINES
	"$py" -c '
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
print(sum(1 for r in rows if len(r) == 3 and r[0] == r[1] and int(r[0]) >= int(sys.argv[2])))' "$1" "$2"
}
fail_over() {  # A dies; the routers move to link B
	kill -9 "$pid_a"
	wait "$pid_a" 2>/dev/null
	route_via b
}

# ---- with sync: A active, B standby --------------------------------------------------------------
route_via a
start_daemon a a 0 --sync.listen "127.0.0.1:$port_a" --sync.peer "127.0.0.1:$port_b" --sync.key-file "$work/key" \
	--sync.interval-ms 50
start_daemon b b 1 --sync.listen "127.0.0.1:$port_b" --sync.peer "127.0.0.1:$port_a" --sync.key-file "$work/key" \
	--sync.interval-ms 50 --sync.role standby
for _ in $(seq 50); do [ "$(sync_field b 'd["ready"]')" = True ] && break; sleep 0.1; done
check "the standby is ready (bulk sync from the active done)" "True" "$(sync_field b 'd["ready"]')"
check "the standby forwards nothing (the routers cannot reach each other over link B)" "1" \
	"$(ip netns exec "$ns_ro" ping -c 1 -W 1 198.18.3.2 >/dev/null 2>&1; echo $?)"
check "ping crosses the active" "0" "$(ip netns exec "$ns_c" ping -c 2 -W 2 198.18.1.10 >/dev/null 2>&1; echo $?)"

long_lived 3 "$work/with_sync.out"
ip netns exec "$ns_c" timeout 30 iperf3 -c 198.18.1.10 -t 7 -J >"$work/iperf.json" 2>&1 &
iperf_pid=$!
pids+=($iperf_pid)
sleep 2.5
synced=$(counter b 'd["flows"]["live"]')
echo "note: flows on the standby before the failover: ${synced:-?}"
check "the standby holds the live connections (3 echo, 2 iperf3)" "1" \
	"$([ "${synced:-0}" -ge 5 ] 2>/dev/null && echo 1 || echo 0)"
fail_over
promoted=$("$cli" --socket "$work/b.sock" --timeout 5 sync promote 2>&1 | head -1)
echo "note: $promoted"
wait "$iperf_pid"
iperf_rc=$?
sleep 1
touch "$work/stop"
wait "$ll_pid"
received=$("$py" -c 'import json, sys; print(int(json.load(open(sys.argv[1]))["end"]["sum_received"]["bytes"]))' \
	"$work/iperf.json" 2>/dev/null || echo 0)
echo "note: iperf3 across the failover: exit $iperf_rc, $received bytes received"
echo "note: long-lived connections (sent, echoed, slowest s):" $(cat "$work/with_sync.out")
check "iperf3 finished across the failover" "0" "$iperf_rc"
check "every long-lived connection survived the failover" "3" "$(survivors "$work/with_sync.out" 30)"
check "the promoted standby dropped nothing as tcp_no_flow" "0" "$(counter b 'd["drops"].get("tcp_no_flow", 0)')"
check "the promoted standby forwards" "False" "$(sync_field b 'd["role"] == "standby"')"
kill -9 "$pid_b" 2>/dev/null
wait "$pid_b" 2>/dev/null
rm -f "$work"/stop*

# ---- two actives, directions split: every SYN crosses A and every SYN-ACK B ---------------------
sync_pair() {  # both active, deferring for each other
	start_daemon a a 0 --sync.listen "127.0.0.1:$port_a" --sync.peer "127.0.0.1:$port_b" --sync.key-file "$work/key" \
		--sync.interval-ms 50 --sync.defer-ms 400
	start_daemon b b 1 --sync.listen "127.0.0.1:$port_b" --sync.peer "127.0.0.1:$port_a" --sync.key-file "$work/key" \
		--sync.interval-ms 50 --sync.defer-ms 400
	for _ in $(seq 50); do [ "$(sync_field a 'd["ready"] and d["peers"][0]["up"]')" = True ] && break; sleep 0.1; done
}
route_via split
sync_pair
long_lived 3 "$work/split.out"
ip netns exec "$ns_c" timeout 30 iperf3 -c 198.18.1.10 -t 3 -J >"$work/iperf_split.json" 2>&1
split_rc=$?
sleep 1
touch "$work/stop"
wait "$ll_pid"
echo "note: directions split (sent, echoed, slowest s):" $(cat "$work/split.out")
echo "note: deferred on A: $(sync_field a 'd["deferred"]'), on B: $(sync_field b 'd["deferred"]')"
check "directions split across two actives: iperf3 completes" "0" "$split_rc"
check "and every long-lived connection echoes every line" "3" "$(survivors "$work/split.out" 20)"
check "the SYN-ACKs waited for the peer's record on B (deferred, resolved)" "1" \
	"$([ "$(sync_field b 'd["deferred"]["resolved"]')" -ge 3 ] 2>/dev/null && echo 1 || echo 0)"
for n in a b; do eval "kill -9 \$pid_$n; wait \$pid_$n 2>/dev/null"; done
rm -f "$work"/stop*

# ---- two actives behind ECMP: A dies and its next hop goes; every connection carries on -----------
route_via ecmp
sync_pair
long_lived 4 "$work/ecmp.out"
ip netns exec "$ns_c" timeout 30 iperf3 -c 198.18.1.10 -t 6 -P 2 -J >"$work/iperf_ecmp.json" 2>&1 &
iperf_pid=$!
pids+=($iperf_pid)
sleep 2.5
fail_over
wait "$iperf_pid"
ecmp_rc=$?
sleep 1
touch "$work/stop"
wait "$ll_pid"
echo "note: ECMP failover (sent, echoed, slowest s):" $(cat "$work/ecmp.out")
echo "note: deferred on B: $(counter b 'd["sync"]["deferred"]')"
check "ECMP pair, A killed: iperf3 (2 streams) completes on B" "0" "$ecmp_rc"
check "and every long-lived connection survived" "4" "$(survivors "$work/ecmp.out" 30)"
kill -9 "$pid_b" 2>/dev/null
wait "$pid_b" 2>/dev/null
rm -f "$work"/stop*

# ---- without sync: the same failover cuts them ---------------------------------------------------
route_via a
start_daemon a a 0
start_daemon b b 1
long_lived 3 "$work/without_sync.out"
sleep 1
fail_over
sleep 6
touch "$work/stop"
wait "$ll_pid"
echo "note: without sync (sent, echoed, slowest s):" $(cat "$work/without_sync.out")
check "without sync, the failover cuts every connection" "0" "$(survivors "$work/without_sync.out" 30)"
check "as tcp_no_flow on the new path" "1" \
	"$([ "$(counter b 'd["drops"].get("tcp_no_flow", 0)')" -ge 1 ] 2>/dev/null && echo 1 || echo 0)"

[ "$failures" -eq 0 ] || fail "$failures check(s) failed"
echo "sync e2e: all checks passed"
