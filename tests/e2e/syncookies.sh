#!/usr/bin/env bash
# SYN cookies and the SYN proxy between real Linux hosts, through portcullisd on net_af_packet (pair.sh).
#
# flows.syncookies always: the daemon answers every allowed SYN itself with a cookie SYN-ACK and keeps no
# state; the client's ACK opens the flow and the daemon replays the handshake to the server, then
# translates sequence numbers (and timestamps, SACK blocks) for the connection's life. An iperf3 transfer,
# a server that speaks first (banner, echo, a megabyte echoed both ways at once), a closed port (the
# server's RST reaches the client), a lone SYN (no flow) and a stray ACK (no valid cookie) against it.
#
# flows.syncookies adaptive: an attacker on the outside segment (a third namespace, on a macvlan over the
# outside host's veth) floods SYNs with hping3 from an address nobody answers for, as a real flood would:
# cookies come on, the flow table stays nearly empty, a long-lived connection keeps echoing through the
# flood, and a new connection still opens after it.
#
# Usage: syncookies.sh PORTCULLISD [RULES] CLI. The script writes its own rules; a RULES argument, as the
# other e2e scripts take, is ignored. Needs root, ip netns, hping3 and iperf3: exits 77 (skip) without.
set -u
daemon=$1
cli=${!#}
here=$(dirname "$0")
source "$here/pair.sh"
command -v hping3 >/dev/null || skip "hping3 not installed"
command -v iperf3 >/dev/null || skip "iperf3 not installed"
command -v timeout >/dev/null || skip "timeout (coreutils) not installed"

ns_att=${tag}att
attacker=198.18.0.66
spoofed=198.18.0.67  # in the outside subnet, but no host has it: nobody answers its SYN-ACKs
trap 'ip netns pids "$ns_att" 2>/dev/null | xargs -r kill 2>/dev/null; ip netns del "$ns_att" 2>/dev/null; cleanup' EXIT

failures=0
check() {  # description expected actual
	if [ "$2" = "$3" ]; then
		echo "PASS: $1"
	else
		echo "FAIL: $1 (expected '$2', got '$3')"
		failures=$((failures + 1))
	fi
}
counter() {  # KEY.KEY... -> that field of the running daemon's stats --json ("missing" without it)
	"$cli" --socket "$work/control.sock" --timeout 5 stats --json | "$py" -c '
import json, sys
d = json.load(sys.stdin)
try:
    for k in sys.argv[1].split("."):
        d = d[k]
    print(d)
except (KeyError, TypeError):
    print("missing")' "$1"
}
at_least() {  # A B -> 1 if the integer A >= B, else 0 (a non-number is 0)
	case $1 in '' | *[!0-9]*) echo 0 ;; *) [ "$1" -ge "$2" ] && echo 1 || echo 0 ;; esac
}

rules_text=$(cat <<'RULES'
# The inside host's services: iperf3, a banner-and-echo server, a port nothing listens on, an echo server
# that the flood aims at. Everything else inbound is dropped; outbound is allowed.
default in drop
default out allow
allow in tcp to 198.18.1.10 port { 5201, 7001, 7002, 7003 }
allow in icmp icmp-type echo-request
allow out from 198.18.1.0/24
RULES
)

# A threaded TCP server on 198.18.1.10:PORT that sends BANNER (if any) on accept, then echoes everything.
echo_server() {  # PORT [BANNER]
	ip netns exec "$ns_in" "$py" "$here/echo_server.py" 198.18.1.10 "$@" &
}
phase() {  # [daemon options...]: a fresh pair of namespaces and a daemon with these options
	cleanup
	work=$(mktemp -d)
	pid=""
	printf '%s\n' "$rules_text" >"$work/syncookies.rules"
	start_pair af_packet "$work/syncookies.rules" "$@"
	echo "--- portcullisd $*"
}

# ---- 1. flows.syncookies always ---------------------------------------------------------------------
phase --flows.syncookies always --flows.syncookie-mss 1460 --flows.syncookie-wscale 7
check "stats report the mode" "always" "$(counter syncookies.mode)"

# (a) A bulk transfer through the proxy: the cookie handshake, the replayed one, then 2 s of translation.
ip netns exec "$ns_in" iperf3 -s -B 198.18.1.10 -p 5201 -1 >"$work/iperf3-server.log" 2>&1 &
wait_listen "$ns_in" 5201
ip netns exec "$ns_out" timeout 15 iperf3 -c 198.18.1.10 -p 5201 -t 2 -J >"$work/iperf3.json" 2>&1
check "iperf3 outside -> inside through SYN cookies exits 0" "0" "$?"
check "iperf3 moved data, no error" "1" "$("$py" -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(int("error" not in r and r["end"]["sum_received"]["bytes"] > 1000000))' "$work/iperf3.json" 2>&1)"
check "iperf3: no segment dropped as out of window" "0" "$(counter drops.tcp_out_of_window)"
check "syncookies.sent >= 1 (cookie SYN-ACKs)" "1" "$(at_least "$(counter syncookies.sent)" 1)"
check "syncookies.accepted >= 1 (valid cookies that opened a flow)" "1" "$(at_least "$(counter syncookies.accepted)" 1)"
check "syncookies.handshakes >= 1 (replayed to the server)" "1" "$(at_least "$(counter syncookies.handshakes)" 1)"

# (b) The server speaks first: its banner only exists once the replayed handshake is done, and every byte
# each way crosses the sequence translation. Then a megabyte echoed back while it is still being sent.
echo_server 7001 "220 portcullis-e2e ready"
wait_listen "$ns_in" 7001
accepted=$(counter syncookies.accepted)
talk=$(ip netns exec "$ns_out" timeout 20 "$py" -c '
import socket, threading
c = socket.create_connection(("198.18.1.10", 7001), timeout=10)
f = c.makefile("rb")
out = []
out.append("banner" if f.readline() == b"220 portcullis-e2e ready\n" else "no-banner")
c.sendall(b"hello through the proxy\n")
out.append("echo" if f.readline() == b"hello through the proxy\n" else "no-echo")
data = bytes(range(256)) * 4096
t = threading.Thread(target=c.sendall, args=(data,))
t.start()
got = f.read(len(data))
t.join()
out.append("bulk" if got == data else "bulk-damaged-%d" % len(got))
c.close()
print(" ".join(out))' 2>&1 | tail -1)
check "server-speaks-first through the proxy: banner, echo, 1 MiB each way" "banner echo bulk" "$talk"
check "that connection went through a cookie" "1" "$(at_least "$(counter syncookies.accepted)" $((${accepted/missing/0} + 1)))"

# (c) An allowed port where nothing listens: the client's connect succeeds on the cookie SYN-ACK, the
# replayed SYN meets the server's RST, and that RST, translated, must end the client's connection.
closed=$(ip netns exec "$ns_out" timeout 20 "$py" -c '
import socket, time
t0 = time.time()
try:
    c = socket.create_connection(("198.18.1.10", 7002), timeout=10)
    c.settimeout(10)
    r = c.recv(100)
    what = "eof" if r == b"" else "data"
except ConnectionRefusedError:
    what = "refused"
except ConnectionResetError:
    what = "reset"
except (socket.timeout, TimeoutError):
    what = "timeout"
except OSError as e:
    what = "error-%s" % e.errno
print(what, "%.2f" % (time.time() - t0))' 2>&1 | tail -1)
echo "note: the closed port: $closed (outcome, seconds)"
check "a closed port ends the client's connection (reset, eof or refused)" "1" \
	"$(case ${closed% *} in reset | eof | refused) echo 1 ;; *) echo 0 ;; esac)"
check "within 5 s" "1" "$("$py" -c 'import sys; print(int(float(sys.argv[1]) < 5))' "${closed#* }" 2>/dev/null || echo 0)"

# (d) SYNs never completed leave no state: three lone SYNs (from an address nobody answers for) get three
# cookies and no flow. (e) ACKs that no SYN-ACK of ours preceded fail the cookie check, open nothing.
inserted=$(counter flows.inserted)  # counts every flow ever opened: others expiring do not hide one
sent=$(counter syncookies.sent)
failed=$(counter syncookies.failed)
ip netns exec "$ns_out" hping3 -q -c 3 -i u100000 -S -p 7001 -a "$spoofed" 198.18.1.10 >"$work/hping-syn.log" 2>&1
sleep 0.3
check "3 lone SYNs: 3 cookie SYN-ACKs" "$((${sent/missing/0} + 3))" "$(counter syncookies.sent)"
check "3 lone SYNs: no flow" "$inserted" "$(counter flows.inserted)"
ip netns exec "$ns_out" hping3 -q -c 3 -i u100000 -A -p 7001 -a "$spoofed" 198.18.1.10 >"$work/hping-ack.log" 2>&1
sleep 0.3
check "3 stray ACKs fail the cookie check" "1" "$(at_least "$(counter syncookies.failed)" $((${failed/missing/0} + 3)))"
check "3 stray ACKs: no flow" "$inserted" "$(counter flows.inserted)"
check "always: every worker answers with cookies" "1" "$(at_least "$(counter syncookies.active_workers)" 1)"

# ---- 2. flows.syncookies adaptive, under a flood ----------------------------------------------------
phase --flows.syncookies adaptive --flows.syncookies-rate 200
check "stats report the mode" "adaptive" "$(counter syncookies.mode)"
check "adaptive, no flood yet: no worker answers with cookies" "0" "$(counter syncookies.active_workers)"

# The attacker: a third namespace on the outside segment, through a macvlan over the outside host's veth
# (its frames leave by that veth to portcullisd; the answers come back to its own MAC).
ip netns add "$ns_att" || fail "netns $ns_att"
ip -n "$ns_out" link add "${tag}m" link "${tag}oh" type macvlan mode bridge || fail "macvlan"
ip -n "$ns_out" link set "${tag}m" netns "$ns_att"
ip -n "$ns_att" addr add "$attacker/15" dev "${tag}m"
ip -n "$ns_att" link set lo up
ip -n "$ns_att" link set "${tag}m" up
ip netns exec "$ns_att" ethtool -K "${tag}m" tx off >/dev/null 2>&1
check "the attacker reaches the inside host (ping through portcullisd)" "0" \
	"$(ip netns exec "$ns_att" ping -c 1 -W 2 198.18.1.10 >/dev/null 2>&1; echo $?)"

echo_server 7003
wait_listen "$ns_in" 7003
# The long-lived connection: a line every 100 ms, each echo awaited, until $work/stop appears. Prints the
# lines sent, the echoes received intact and the slowest echo in seconds.
ip netns exec "$ns_out" "$py" "$here/long_lived.py" 198.18.1.10 7003 1 "$work/stop" 10 >"$work/longlived.out" \
	2>"$work/longlived.err" &
longlived=$!
for _ in $(seq 50); do [ -e "$work/stop.up0" ] && break; sleep 0.1; done
[ -e "$work/stop.up0" ] || fail "the long-lived connection did not open"
sleep 0.5

# Watch the daemon while the flood runs: the most workers answering with cookies and the most live flows.
: >"$work/watch.log"
(
	while [ ! -e "$work/flood.done" ]; do
		"$cli" --socket "$work/control.sock" --timeout 5 stats --json | "$py" -c '
import json, sys
d = json.load(sys.stdin)
print(d.get("syncookies", {}).get("active_workers", -1), d["flows"]["live"], d.get("syncookies", {}).get("sent", -1))' >>"$work/watch.log" 2>/dev/null
		sleep 0.2
	done
) &
watcher=$!
# At the lowest priority: on a small machine the flooder, the busy-polling daemon and the kernel share few
# cores, and a flooder that starves the daemon measures the scheduler, not the cookies.
ip netns exec "$ns_att" nice -n 19 timeout -s INT 3 hping3 --flood -S -p 7003 -a "$spoofed" 198.18.1.10 >"$work/flood.log" 2>&1
touch "$work/flood.done"
wait "$watcher"
flood=$(grep -o '^[0-9]* packets transmitted' "$work/flood.log" | grep -o '^[0-9]*')
max_col() {  # N: the largest value of column N in the watch log (0 if none)
	"$py" -c 'import sys; print(max([int(l.split()[int(sys.argv[2])]) for l in open(sys.argv[1]) if l.strip()] or [0]))' \
		"$work/watch.log" "$1"
}
echo "note: hping3 sent ${flood:-?} SYNs in 3 s; during it, $(wc -l <"$work/watch.log") looks: at most" \
	"$(max_col 0) worker(s) on cookies, $(max_col 1) live flows, $(max_col 2) cookies sent"
sleep 1  # the long-lived connection keeps going a little after the flood
touch "$work/stop"
wait "$longlived"
read -r ll_sent ll_ok ll_worst <"$work/longlived.out" 2>/dev/null
echo "note: long-lived connection: ${ll_sent:-?} lines, ${ll_ok:-?} echoed, slowest ${ll_worst:-?} s"
[ -s "$work/longlived.err" ] && cat "$work/longlived.err"

check "hping3 flooded (over 2000 SYNs)" "1" "$(at_least "${flood:-0}" 2000)"
check "the long-lived connection echoed every line through the flood" "1" \
	"$([ -n "${ll_sent:-}" ] && [ "$ll_sent" = "$ll_ok" ] && [ "$ll_sent" -ge 10 ] && echo 1 || echo 0)"
check "and none took over 3 s (a retransmission or two)" "1" "$("$py" -c 'import sys; print(int(float(sys.argv[1]) < 3))' "${ll_worst:-99}" 2>/dev/null || echo 0)"
check "cookies came on during the flood (active_workers reached 1)" "1" "$(at_least "$(max_col 0)" 1)"
sent=$(counter syncookies.sent)
check "syncookies.sent > 1000" "1" "$(at_least "$sent" 1001)"
max_live=$(max_col 1)
live=$(counter flows.live)
capacity=$(counter flows.capacity)
echo "note: live flows after the flood: $live (at most $max_live during it; capacity $capacity); flows inserted" \
	"$(counter flows.inserted), half-open ones evicted $(counter flows.evicted_embryonic); cookies sent $sent"
check "the flood did not fill the flow table (live flows < a quarter of it, during and after)" "1" \
	"$([ "$(at_least "$live" 0)" = 1 ] && [ "$live" -lt $((capacity / 4)) ] && [ "$max_live" -lt $((capacity / 4)) ] && echo 1 || echo 0)"
check "far fewer live flows than SYNs sent" "1" "$([ "$(at_least "$live" 0)" = 1 ] && [ $((live * 20)) -lt "${flood:-0}" ] && echo 1 || echo 0)"
check "refused_full is 0" "0" "$(counter flows.refused_full)"
check "a new connection opens after the flood" "7003 ok" "$(ip netns exec "$ns_out" timeout 20 "$py" -c '
import socket
c = socket.create_connection(("198.18.1.10", 7003), timeout=10)
c.sendall(b"after the flood\n")
print("7003 ok" if c.makefile("rb").readline() == b"after the flood\n" else "7003 bad")' 2>&1 | tail -1)"
echo "note: after the flood: active_workers $(counter syncookies.active_workers), sent $(counter syncookies.sent)," \
	"accepted $(counter syncookies.accepted), failed $(counter syncookies.failed), handshakes $(counter syncookies.handshakes)"

[ "$failures" -eq 0 ] || fail "$failures check(s) failed"
echo "syncookies: all checks passed"
