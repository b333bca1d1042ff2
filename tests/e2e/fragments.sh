#!/usr/bin/env bash
# IPv4 fragments between real Linux hosts, through portcullisd on net_af_xdp (pair.sh).
#
# net_af_packet cannot show this: DPDK's AF_PACKET driver joins its sockets to a PACKET_FANOUT group with
# PACKET_FANOUT_FLAG_DEFRAG, so the kernel reassembles IPv4 in front of the daemon and cuts what exceeds
# a ring frame (docs/threat-model.md). AF_XDP hands over frames as they came off the wire.
#
# Legitimate fragmented datagrams cross whole: UDP answers of 3000 and 65000 bytes to an outbound query,
# and a fragmented TCP SYN to an allowed port (the inside kernel reassembles it: its IpReasmOKs counts
# it). Hostile ones are dropped and counted: a tiny first fragment, a TCP fragment at offset 8, an
# orphan, an overlapping fragment. Usage: fragments.sh PORTCULLISD RULES CLI (root; exits 77 without).
set -u
daemon=$1
rules=$2
cli=$3
here=$(dirname "$0")
source "$here/pair.sh"
start_pair af_xdp "$rules"

failures=0
expect() {  # description expected actual
	if [ "$2" = "$3" ]; then echo "ok: $1"; else echo "not ok: $1 (expected '$2', got '$3')"; failures=$((failures + 1)); fi
}
counter() {  # drops|malformed REASON -> that counter of the running daemon
	"$cli" --socket "$work/control.sock" stats --json |
		"$py" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]].get(sys.argv[2], 0))' "$1" "$2"
}
reasm() {  # OKs|Fails -> the inside host's IP reassembly counter
	ip netns exec "$ns_in" "$py" -c '
import sys
lines = [l.split() for l in open("/proc/net/snmp") if l.startswith("Ip:")]
print(dict(zip(lines[0], lines[1]))["Reasm" + sys.argv[1]])' "$1"
}
send() {  # PORT ID KIND: fragments from the outside host to the inside one
	ip netns exec "$ns_out" "$py" "$here/send_fragments.py" 198.18.0.5 198.18.1.10 "$1" "$2" "$3"
	sleep 0.3
}

# An outside UDP server whose answer is as long as the query asks: the kernel fragments it to the MTU.
ip netns exec "$ns_out" "$py" -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.18.0.5", 5300))
while True:
    q, peer = s.recvfrom(100)
    n = int(q)
    s.sendto(bytes((i * 13) & 0xFF for i in range(n)), peer)
' &
wait_listen "$ns_out" 5300 -u
for size in 3000 65000; do
	got=$(ip netns exec "$ns_in" "$py" -c '
import socket, sys
n = int(sys.argv[1])
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.settimeout(3)
c.sendto(str(n).encode(), ("198.18.0.5", 5300))
try:
    r = c.recv(70000)
    print("whole" if r == bytes((i * 13) & 0xFF for i in range(n)) else "damaged %d" % len(r))
except OSError:
    print("timeout")' "$size")
	expect "a $size-byte UDP answer crosses in fragments, whole" "whole" "$got"
done

oks=$(reasm OKs)
send 8080 101 whole
expect "a fragmented TCP SYN to an allowed port reaches the inside host whole" "$((oks + 1))" "$(reasm OKs)"
no_first=$(counter drops fragment_no_first)
send 8081 102 whole
expect "to a denied port, its first fragment is dropped and the others follow it" "$((oks + 1))" "$(reasm OKs)"
expect "the two later fragments count as fragment_no_first" "$((no_first + 2))" "$(counter drops fragment_no_first)"

send 8080 103 tiny
expect "a tiny first fragment is dropped and counted" "1" "$(counter malformed ipv4_tiny_fragment)"
offset_one=$(counter malformed ipv4_tcp_fragment_offset_one)  # the tiny one's second fragment was one
send 8080 104 offset-one
expect "a TCP fragment at offset 8 is dropped and counted" "$((offset_one + 1))" "$(counter malformed ipv4_tcp_fragment_offset_one)"
no_first=$(counter drops fragment_no_first)
send 8080 105 orphan
expect "an orphan fragment is dropped and counted" "$((no_first + 1))" "$(counter drops fragment_no_first)"
fails=$(reasm Fails)
oks=$(reasm OKs)
send 8080 106 overlap
expect "an overlapping fragment is dropped and counted" "1" "$(counter drops fragment_overlap)"
expect "so the host reassembles the clean datagram" "$((oks + 1))" "$(reasm OKs)"
expect "and never sees the overlap" "$fails" "$(reasm Fails)"

# A second daemon on the same interfaces: the first one's XDP programs are attached, and the second says
# so and stops before its EAL probes the devices (a failed probe would detach the first one's program).
"$daemon" --rules "$rules" --ports.outside net_af_xdp0 --ports.inside net_af_xdp1 --run.duration 1 \
	--control.socket "$work/second.sock" --metrics.listen "" \
	-- -l 0 --no-huge -m 256 --no-pci --file-prefix="${tag}b" --log-level=error \
	--vdev="net_af_xdp0,iface=${tag}o" --vdev="net_af_xdp1,iface=${tag}i" >"$work/second.log" 2>&1
expect "a second daemon on the same interfaces stops (a configuration error)" "1" "$?"
expect "naming the daemon in its way" "1" \
	"$(grep -c "net_af_xdp0: another portcullisd uses ${tag}o" "$work/second.log")"
expect "and the first keeps forwarding" "0" "$(ip netns exec "$ns_out" ping -c 1 -W 2 198.18.1.10 >/dev/null 2>&1; echo $?)"

[ "$failures" -eq 0 ] || fail "$failures check(s) failed"
echo "fragments: all checks passed"
