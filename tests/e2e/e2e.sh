#!/usr/bin/env bash
# End to end: two network namespaces, a host in each, Portcullis between them on AF_PACKET, or on AF_XDP
# with E2E_DRIVER=af_xdp (pair.sh): the same checks, the same verdicts, on both kernel-interface drivers.
# Real TCP/UDP/ICMP from real sockets through the real daemon. Needs root and ip netns (and AF_XDP in
# the kernel for af_xdp); exits 77 (skip) without them. Usage: [E2E_DRIVER=af_xdp] e2e.sh PORTCULLISD RULES CLI
set -u
daemon=$1
rules=$2
cli=$3
source "$(dirname "$0")/pair.sh"
start_pair "${E2E_DRIVER:-af_packet}" "$rules"

server() {  # ns port: a TCP server that answers every connection with "hello PORT"
	ip netns exec "$1" "$py" -c '
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1]))); s.listen(16)
while True:
    c, _ = s.accept(); c.sendall(b"hello " + sys.argv[1].encode()); c.close()
' "$2" &
}
client() {  # ns host port [source] -> prints what the server said, or "refused"/"timeout"
	ip netns exec "$1" "$py" -c '
import socket, sys
try:
    src = (sys.argv[3], 0) if len(sys.argv) > 3 and sys.argv[3] else None
    c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2, source_address=src)
    print(c.recv(100).decode())
except ConnectionRefusedError: print("refused")
except (socket.timeout, TimeoutError, OSError) as e: print("timeout")
' "$2" "$3" "${4:-}"
}

server "$ns_in" 8080
server "$ns_in" 8081
server "$ns_in" 8082
server "$ns_in" 8083
server "$ns_out" 9000
server "$ns_out" 9443
# A real resolver outside: dnsmasq answers *.cdn.e2e.example with 198.18.0.7.
if command -v dnsmasq >/dev/null; then
	ip netns exec "$ns_out" dnsmasq --keep-in-foreground --no-resolv --no-hosts --bind-interfaces \
		--listen-address=198.18.0.5 --port=53 --address=/cdn.e2e.example/198.18.0.7 \
		--pid-file="$work/dnsmasq.pid" --log-facility="$work/dnsmasq.log" &
	wait_listen "$ns_out" 53 -u
fi
for port in 8080 8081 8082 8083; do wait_listen "$ns_in" $port; done
for port in 9000 9443; do wait_listen "$ns_out" $port; done

failures=0
expect() {  # description expected actual
	if [ "$2" = "$3" ]; then echo "ok: $1"; else echo "not ok: $1 (expected '$2', got '$3')"; failures=$((failures + 1)); fi
}
expect "outside reaches the allowed inside service" "hello 8080" "$(client "$ns_out" 198.18.1.10 8080)"
expect "outside cannot reach another inside port" "timeout" "$(client "$ns_out" 198.18.1.10 8081)"
expect "a reject rule answers with a RST" "refused" "$(client "$ns_out" 198.18.1.10 8082)"
expect "inside reaches the outside, and the reply comes back" "hello 9000" "$(client "$ns_in" 198.18.0.5 9000)"
expect "ping from outside (echo-request allowed)" "0" "$(ip netns exec "$ns_out" ping -c 1 -W 2 198.18.1.10 >/dev/null 2>&1; echo $?)"
expect "ping from inside (outbound allowed, reply tracked)" "0" "$(ip netns exec "$ns_in" ping -c 1 -W 2 198.18.0.5 >/dev/null 2>&1; echo $?)"

# The live CLI against the running daemon, over its control socket.
expect "cli stats" "0" "$("$cli" --socket "$work/control.sock" stats >/dev/null 2>&1; echo $?)"
expect "cli rules shows the 8080 rule's hits" "1" "$("$cli" --socket "$work/control.sock" rules --json | "$py" -c '
import json, sys
r = json.load(sys.stdin)
print(int(any("8080" in x["text"] and x["packets"] > 0 for x in r["rules"])))')"
# A per-source limit (e2e.rules): ten connections from 198.18.0.5, three get through; 198.18.0.6's pass.
passed=0
for _ in $(seq 10); do
	[ "$(client "$ns_out" 198.18.1.10 8083)" = "hello 8083" ] && passed=$((passed + 1))
done
expect "a flooding client is held to its per-source limit" "3" "$passed"
expect "another client is not" "hello 8083" "$(client "$ns_out" 198.18.1.10 8083 198.18.0.6)"
# At least the seven refused connections' SYNs (the kernel's retransmissions of them count too).
expect "rules shows what the limit turned away" "1" "$("$cli" --socket "$work/control.sock" rules --json | "$py" -c '
import json, sys
r = json.load(sys.stdin)
print(int(sum(x.get("over_limit", 0) for x in r["rules"]) >= 7))')"

# The scanner trap (e2e.rules): a port scan from 198.18.0.5 puts it in $scanners through the data path's
# add-to; its later connections are refused while 198.18.0.6 still gets in.
if command -v nmap >/dev/null; then
	ip netns exec "$ns_out" nmap -n -Pn -sT -p 23,3389,31337 --max-retries 0 --host-timeout 15s 198.18.1.10 >"$work/nmap.log" 2>&1
	expect "nmap scanned the trap ports" "0" "$?"
else
	echo "note: nmap not installed; knocking on telnet and 3389 with plain connects instead"
	client "$ns_out" 198.18.1.10 23 >/dev/null
	client "$ns_out" 198.18.1.10 3389 >/dev/null
fi
sleep 0.2  # the control loop applies queued adds every 20 ms
expect "the scanner is in \$scanners" "1" "$("$cli" --socket "$work/control.sock" set show scanners --json | "$py" -c '
import json, sys
r = json.load(sys.stdin)
print(int(any(a["address"] == "198.18.0.5" for a in r["added"])))')"
expect "the scanner cannot reach the allowed service any more" "timeout" "$(client "$ns_out" 198.18.1.10 8080)"
expect "another outside host still can" "hello 8080" "$(client "$ns_out" 198.18.1.10 8080 198.18.0.6)"
expect "set del lets the scanner back in" "0" "$("$cli" --socket "$work/control.sock" set del scanners 198.18.0.5 >/dev/null 2>&1; echo $?)"
expect "and it reaches the service again" "hello 8080" "$(client "$ns_out" 198.18.1.10 8080)"

# A set that follows DNS (e2e.rules: port 9443 only to $cdn): refused before the name is resolved,
# reached once the inside host has asked the outside resolver through the firewall.
if command -v dnsmasq >/dev/null; then
	expect "the CDN edge is not in \$cdn before any answer" "timeout" "$(client "$ns_in" 198.18.0.7 9443)"
	answer=$(ip netns exec "$ns_in" "$py" -c '
import socket, struct
name = b"".join(bytes([len(l)]) + l for l in b"www.cdn.e2e.example".split(b".")) + b"\0"
q = struct.pack(">HHHHHH", 0x4242, 0x0100, 1, 0, 0, 0) + name + struct.pack(">HH", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2)
s.sendto(q, ("198.18.0.5", 53))
r = s.recv(512)
print(".".join(str(b) for b in r[-4:]))' 2>&1)
	expect "dnsmasq answers through the firewall" "198.18.0.7" "$answer"
	sleep 0.2  # the control loop applies queued adds every 20 ms
	expect "the answer put the address in \$cdn" "1" "$("$cli" --socket "$work/control.sock" set show cdn --json | "$py" -c '
import json, sys
r = json.load(sys.stdin)
print(int(any(a["address"] == "198.18.0.7" for a in r["added"])))')"
	expect "the inside host reaches the CDN edge now" "hello 9443" "$(client "$ns_in" 198.18.0.7 9443)"
	expect "but not another outside host on that port" "timeout" "$(client "$ns_in" 198.18.0.6 9443)"
else
	echo "SKIP: dnsmasq not installed (package dnsmasq-base): the dns set checks"
fi

# Strict TCP window tracking (flows.tcp-window, the default) against real stacks: a bulk transfer with
# window scaling loses nothing to it, a blind RST is dropped and the connection lives on, the exact RST
# ends it.
drops() {  # reason -> that drop counter of the running daemon
	"$cli" --socket "$work/control.sock" stats --json | "$py" -c 'import json, sys; print(json.load(sys.stdin)["drops"].get(sys.argv[1], 0))' "$1"
}
if command -v iperf3 >/dev/null; then
	ip netns exec "$ns_out" iperf3 -s -B 198.18.0.5 -p 5201 -1 >"$work/iperf3-server.log" 2>&1 &
	wait_listen "$ns_out" 5201
	ip netns exec "$ns_in" iperf3 -c 198.18.0.5 -p 5201 -t 2 -J >"$work/iperf3.json" 2>&1
	expect "iperf3 through strict window tracking" "0" "$?"
	expect "iperf3 moved data with window scaling on" "1" "$("$py" -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(int("error" not in r and r["end"]["sum_received"]["bytes"] > 1000000))' "$work/iperf3.json" 2>&1)"
	expect "no segment of it was out of window" "0" "$(drops tcp_out_of_window)"
else
	echo "SKIP: iperf3 not installed: the bulk transfer check"
fi
ip netns exec "$ns_out" "$py" "$(dirname "$0")/forged_rst.py" "${tag}oh" 198.18.0.5 9100 >"$work/forged.log" 2>&1 &
wait_listen "$ns_out" 9100  # it listens once its sniffer is bound
before=$(drops tcp_out_of_window)
pings=$(ip netns exec "$ns_in" "$py" -c '
import socket, time
c = socket.create_connection(("198.18.0.5", 9100), timeout=3)
for _ in range(10):
    try:
        c.sendall(b"ping\n")
        print("pong" if c.recv(100) == b"pong\n" else "eof")
    except (ConnectionResetError, BrokenPipeError):
        print("reset"); break
    except OSError:
        print("timeout"); break
    time.sleep(0.3)
' 2>&1 | tr '\n' ' ')
wait $!
expect "the forger saw the handshake and sent both RSTs" "wrong-rst sent right-rst sent" "$(tr '\n' ' ' <"$work/forged.log" | sed 's/ $//')"
expect "a blind RST does not end the connection, the exact one does" "pong pong pong pong pong pong reset " "$pings"
expect "the blind RST was dropped as tcp_out_of_window" "1" "$(( $(drops tcp_out_of_window) - before ))"

# push --confirm with nobody confirming: the rules before it come back by themselves at the deadline,
# while pings flow through both swaps, none lost.
{ cat "$rules"; echo "allow in tcp to 198.18.1.10 port 8081"; } >"$work/confirm.rules"
gen_before=$("$cli" --socket "$work/control.sock" rules --json | "$py" -c 'import json, sys; print(json.load(sys.stdin)["generation"])')
ip netns exec "$ns_out" ping -n -i 0.02 -c 250 -W 1 198.18.1.10 >"$work/ping.log" 2>&1 &
ping_pid=$!
sleep 0.5
expect "push --confirm 2s" "0" "$("$cli" --socket "$work/control.sock" push --confirm 2s "$work/confirm.rules" >"$work/confirm.log" 2>&1; echo $?)"
grep -q "unconfirmed: generation $gen_before's rules come back" "$work/confirm.log" || { echo "not ok: push --confirm says what comes back: $(cat "$work/confirm.log")"; failures=$((failures + 1)); }
expect "the unconfirmed rules are in force" "hello 8081" "$(client "$ns_out" 198.18.1.10 8081)"
sleep 2.5
expect "unconfirmed at the deadline: the rules before it are back" "timeout" "$(client "$ns_out" 198.18.1.10 8081)"
expect "as a new generation, with nothing pending" "$((gen_before + 2)) True" "$("$cli" --socket "$work/control.sock" rules --json | "$py" -c 'import json, sys; r = json.load(sys.stdin); print(r["generation"], r["rollback"] is None)')"
wait "$ping_pid"
expect "no ping lost through the push and the rollback" "250 received" "$(grep -o '[0-9]* received' "$work/ping.log")"
grep -q "was not confirmed in time: rolling back" "$work/daemon.log" || { echo "not ok: the rollback is logged"; failures=$((failures + 1)); }

cat >"$work/closed.rules" <<'RULES'
default in drop
default out allow
allow in icmp icmp-type echo-request
allow out from 198.18.1.0/24
RULES
expect "push a rule set that closes 8080" "0" "$("$cli" --socket "$work/control.sock" push "$work/closed.rules" >/dev/null 2>&1; echo $?)"
expect "8080 is closed by the new rules" "timeout" "$(client "$ns_out" 198.18.1.10 8080)"
printf 'default in drop\nallow in tcp to 198.18.1.10 port 80800\n' >"$work/broken.rules"
out=$("$cli" --socket "$work/control.sock" push "$work/broken.rules" 2>&1)
expect "a broken push is refused" "1" "$?"
case $out in *broken.rules:2:*) echo "ok: the refusal names file:line:column" ;; *) echo "not ok: no file:line:column in: $out"; failures=$((failures + 1)) ;; esac
expect "the running rules stay: 8080 still closed" "timeout" "$(client "$ns_out" 198.18.1.10 8080)"
expect "and outbound still works" "hello 9000" "$(client "$ns_in" 198.18.0.5 9000)"

# DPDK's own tool reads the same counters through the telemetry socket.
if command -v dpdk-telemetry.py >/dev/null; then
	tele=$(printf '/portcullis/stats\n/portcullis/rules\n' | timeout 10 dpdk-telemetry.py -f "$tag" 2>/dev/null)
	expect "dpdk-telemetry.py /portcullis/stats counts the allowed packets" "1" "$("$py" -c '
import json, sys
stats = rules = None
for line in sys.stdin:
    line = line.strip().lstrip("-> ").strip()
    if not line.startswith("{"):
        continue
    d = json.loads(line)
    stats = d.get("/portcullis/stats", stats)
    rules = d.get("/portcullis/rules", rules)
print(int(bool(stats) and stats["in_allow_packets"] > 0 and stats["ruleset_generation"] >= 2 and bool(rules)))' <<<"$tele")"
else
	echo "SKIP: dpdk-telemetry.py not installed"
fi

kill -TERM "$pid"
wait "$pid"
status=$?
pid=""
expect "portcullisd exits cleanly on SIGTERM" "0" "$status"
grep -q "final counters" "$work/daemon.log" || { echo "not ok: final counters printed"; failures=$((failures + 1)); }
grep -E "default_drop|rule_reject|flows:" "$work/daemon.log"
[ "$failures" -eq 0 ] || fail "$failures check(s) failed"
echo "e2e: all checks passed"
