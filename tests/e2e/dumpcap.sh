#!/usr/bin/env bash
# Live capture with the real dpdk-dumpcap from a running portcullisd (rte_pdump), on hugepages.
#
# 1. Reference: the bundled demo capture replayed once without hugepages; the inside port (a pcap vdev)
#    writes what the daemon forwards inbound, the drop port (ports.drops) what it drops. A --no-huge
#    daemon must say that dumpcap cannot attach to it, and dumpcap must indeed fail to.
# 2. Live: the same frames on hugepages, sent into a veth pair that the daemon reads (AF_PACKET) only once
#    dpdk-dumpcap captures its inside port and its drop port (net_null sinks; dumpcap sees what they
#    transmit). dumpcap stops by itself after as many packets as the reference forwarded inbound and
#    dropped. Its capture must hold exactly the reference's packets, byte for byte and in order, on each
#    port, none lost by its own count, as many as the daemon's counters say; the 5-tuples must follow the
#    rules (nothing to the backdoor port passes; the drops hold it); and the daemon must still run after
#    dumpcap has gone.
# 3. The race that killed the daemon (docs/threat-model.md, Capturing traffic): a worker held inside
#    the capture callback (PDUMP-HOLD, a test-only LD_PRELOAD library) while a third dumpcap stops and
#    frees its mempool. Before the fix (lib/daemon/pdump_callbacks.cc) the daemon died there, in
#    librte_mempool_octeontx, every time; it must live on, and then exit 0 on SIGINT.
#
# Needs root, hugetlbfs, veth and dpdk-dumpcap; exits 77 (skip) without them. Reserves 256 more 2 MiB
# hugepages on a hugetlbfs mount of its own, and always puts both back as they were. Usage:
#   dumpcap.sh PORTCULLISD RULES CAPTURE DPDK-DUMPCAP PDUMP-HOLD
set -u
daemon=$1
rules=$2
capture=$3
dumpcap=${4:-}
hold_lib=$5
tag=pcdc$$
work=$(mktemp -d)
sysfs_pages=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
old_pages=""
mounted=""
pid=""
dc_pid=""
veth=""

skip() { echo "SKIP: $*"; exit 77; }
fail() {
	echo "FAIL: $*"
	for f in daemon.log dumpcap.err inside.out inside.err drops.out drops.err; do
		[ -s "$work/$f" ] && { echo "--- $f"; tail -20 "$work/$f"; }
	done
	exit 1
}
stop() {  # pids: ask, then insist
	for p in "$@"; do
		kill "$p" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
}
cleanup() {
	stop $dc_pid
	stop "$pid"
	if [ -n "$mounted" ]; then
		umount "$work/huge" 2>/dev/null || umount -l "$work/huge"
	fi
	[ -n "$old_pages" ] && echo "$old_pages" >"$sysfs_pages"
	[ -n "$veth" ] && ip link del "${tag}a" 2>/dev/null
	rm -rf "$work" "/var/run/dpdk/$tag" "/var/run/dpdk/${tag}ref" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 1' INT TERM

[ "$(id -u)" -eq 0 ] || skip "needs root (hugepages)"
[ -n "$dumpcap" ] && [ -x "$dumpcap" ] || skip "dpdk-dumpcap not found (Debian: apt install dpdk)"
[ -f "$hold_lib" ] || fail "no fault injector library: $hold_lib"
grep -qw hugetlbfs /proc/filesystems || skip "no hugetlbfs in this kernel"
[ -w "$sysfs_pages" ] || skip "cannot reserve 2 MiB hugepages ($sysfs_pages)"
command -v stdbuf >/dev/null || skip "needs stdbuf (coreutils)"
command -v ip >/dev/null || skip "needs iproute2"

common=(--rules "$rules" --ports.mode replay --ports.inside-networks "198.18.1.0/24, 2001:2:0:1::/64"
	--queues.mbufs 4095 --flows.capacity 4096 --control.socket "" --metrics.listen "")
pcap_ports=(--ports.outside net_pcap0 --ports.inside net_pcap1)

# 1. Reference, no hugepages.
"$daemon" "${common[@]}" "${pcap_ports[@]}" --ports.drops net_pcap2 --run.exit-when-idle 300 --run.duration 30 \
	--eal.args "-l 0 --no-huge -m 256 --no-pci --no-telemetry --file-prefix=${tag}ref --log-level=warning --vdev=net_pcap0,rx_pcap=$capture,tx_pcap=$work/ref-out.pcap --vdev=net_pcap1,tx_pcap=$work/ref-in.pcap --vdev=net_pcap2,tx_pcap=$work/ref-drops.pcap" \
	>"$work/daemon.log" 2>&1 || fail "reference run failed"
grep -q "dpdk-dumpcap cannot attach: the EAL runs without hugepages" "$work/daemon.log" ||
	fail "a --no-huge daemon should say that dumpcap cannot attach"

# The same without hugepages, kept running: dumpcap must fail to attach (and the daemon said why).
"$daemon" "${common[@]}" --run.duration 30 \
	--eal.args "-l 0 --no-huge -m 256 --no-pci --no-telemetry --file-prefix=${tag}ref --log-level=warning --vdev=net_null0,no-rx=1 --vdev=net_null1,no-rx=1" \
	--ports.outside net_null0 --ports.inside net_null1 >"$work/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "worker(s)" "$work/daemon.log" && break; kill -0 $pid 2>/dev/null || break; sleep 0.1; done
grep -q "worker(s)" "$work/daemon.log" || fail "the --no-huge daemon did not start"
if timeout 20 "$dumpcap" --file-prefix="${tag}ref" -D >"$work/dumpcap.out" 2>"$work/dumpcap.err"; then
	fail "dumpcap attached to a --no-huge daemon (docs say it cannot)"
fi
echo "ok: dumpcap cannot attach to a --no-huge daemon, which says so: $(grep -o 'cannot attach: [^(]*' "$work/daemon.log")"
stop "$pid"
pid=""

# 2. Hugepages: 256 more 2 MiB pages, on a mount of our own.
old_pages=$(cat "$sysfs_pages")
echo $((old_pages + 256)) >"$sysfs_pages" 2>/dev/null
[ "$(cat "$sysfs_pages")" -ge $((old_pages + 128)) ] || skip "the kernel gave no hugepages (memory fragmented?)"
mkdir "$work/huge"
mount -t hugetlbfs -o pagesize=2M nodev "$work/huge" 2>/dev/null || skip "cannot mount hugetlbfs here"
mounted=yes

# The live daemon reads a veth pair's end through AF_PACKET; the test sends the capture's frames into the
# other end once dumpcap captures. Its inside and drop ports are net_null sinks: a pcap vdev would not
# do, since every secondary process (dumpcap too) re-opens a pcap vdev's files, truncating tx_pcap ones.
ip link add "${tag}a" type veth peer name "${tag}b" 2>/dev/null || skip "cannot create a veth pair here"
veth=yes
for ifc in "${tag}a" "${tag}b"; do
	sysctl -qw "net.ipv6.conf.$ifc.disable_ipv6=1" 2>/dev/null  # no neighbour discovery in the capture
	ip link set "$ifc" up
done
ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" LD_PRELOAD="$hold_lib" \
	PORTCULLIS_TEST_HOLD="$work/hold" \
	"$daemon" "${common[@]}" --ports.outside net_af_packet0 --ports.inside net_null0 --ports.drops net_null1 --run.duration 50 \
	--eal.args "-l 0 --huge-dir=$work/huge --no-pci --no-telemetry --file-prefix=$tag --log-level=warning --vdev=net_af_packet0,iface=${tag}a,qpairs=1 --vdev=net_null0,no-rx=1 --vdev=net_null1,no-rx=1" \
	>"$work/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "worker(s)" "$work/daemon.log" && break; kill -0 $pid 2>/dev/null || break; sleep 0.1; done
grep -q "worker(s)" "$work/daemon.log" || fail "portcullisd did not start on hugepages"
grep -q "capture: dpdk-dumpcap --file-prefix=$tag -i" "$work/daemon.log" || fail "the daemon should offer capture"

timeout 20 "$dumpcap" --file-prefix="$tag" -D >"$work/ports" 2>"$work/dumpcap.err" || fail "dumpcap -D cannot attach"
port_in=$(awk '$2 == "net_null0" {sub(/\./, "", $1); print $1}' "$work/ports")
port_drops=$(awk '$2 == "net_null1" {sub(/\./, "", $1); print $1}' "$work/ports")
[ -n "$port_in" ] && [ -n "$port_drops" ] || fail "dumpcap -D does not list the daemon's ports: $(tr '\n' ' ' <"$work/ports")"

send_frames() {  # pcap file, all|echo-request: its frames (or its first IPv4 echo request) into the veth
	python3 -c '
import socket, struct, sys
data = open(sys.argv[1], "rb").read()
out = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
out.bind((sys.argv[2], 0))
at = 24
while at + 16 <= len(data):
    incl = struct.unpack_from("<I", data, at + 8)[0]
    frame = data[at + 16:at + 16 + incl]
    at += 16 + incl
    if sys.argv[3] == "all":
        out.send(frame)
    elif frame[12:14] == b"\x08\x00" and frame[23] == 1 and frame[14 + (frame[14] & 15) * 4] == 8:
        out.send(frame)
        sys.exit(0)
sys.exit(sys.argv[3] != "all")
' "$1" "${tag}b" "$2"
}
count() {  # packets in a classic pcap file
	python3 -c '
import struct, sys
data = open(sys.argv[1], "rb").read()
at, n = 24, 0
while at + 16 <= len(data):
    at += 16 + struct.unpack_from("<I", data, at + 8)[0]
    n += 1
print(n)' "$1"
}
want_in=$(count "$work/ref-in.pcap")
want_drops=$(count "$work/ref-drops.pcap")
[ "$want_in" -gt 0 ] && [ "$want_drops" -gt 0 ] || fail "the reference should forward and drop packets"

# One dumpcap per port (22.11's takes one -i). Each prints "Capturing on" once rte_pdump has its
# callbacks in place (line-buffered through stdbuf).
capture_port() {  # port packets|"" name
	timeout 30 stdbuf -oL "$dumpcap" --file-prefix="$tag" -q -i "$1" ${2:+-c "$2"} -w "$work/$3.pcapng" \
		>"$work/$3.out" 2>"$work/$3.err" &
	dc_pid="$dc_pid $!"
	for _ in $(seq 100); do grep -q "Capturing on" "$work/$3.out" && break; kill -0 $! 2>/dev/null || break; sleep 0.1; done
	grep -q "Capturing on" "$work/$3.out" || fail "dumpcap did not start capturing on $1: $(tail -3 "$work/$3.err")"
}
capture_port net_null0 "$want_in" inside
capture_port net_null1 "$want_drops" drops
send_frames "$capture" all || fail "cannot send the capture into ${tag}b"
for p in $dc_pid; do
	wait "$p" || fail "dumpcap exited $? (124: it did not see all the packets it waited for)"
done
dc_pid=""
kill -0 $pid 2>/dev/null || fail "portcullisd died when dumpcap stopped"
echo "ok: two dumpcaps captured $want_in and $want_drops packets and stopped; portcullisd still runs"
grep -Eq "received/dropped on interface 'net_null0': $want_in/0 " "$work/inside.err" ||
	fail "dumpcap's count for net_null0: $(grep net_null0 "$work/inside.err")"
grep -Eq "received/dropped on interface 'net_null1': $want_drops/0 " "$work/drops.err" ||
	fail "dumpcap's count for net_null1: $(grep net_null1 "$work/drops.err")"

# 3. A worker held in the copy callback (one forwarded echo request) while this dumpcap stops.
dc_pid=""
capture_port net_null0 "" held
held_pid=$dc_pid
echo $held_pid >"$work/hold.tmp" && mv "$work/hold.tmp" "$work/hold"
send_frames "$work/ref-in.pcap" echo-request || fail "no echo request to send"
wait $held_pid
rc=$?
dc_pid=""
[ ! -e "$work/hold" ] || fail "the echo request did not reach the capture callback"
# The held copy resumes one second after dumpcap was told to stop: wait for it to end, or the daemon to.
while [ ! -e "$work/hold.done" ] && kill -0 $pid 2>/dev/null; do sleep 0.1; done
kill -0 $pid 2>/dev/null || fail "portcullisd died when dumpcap stopped with a worker inside the capture callback"
[ $rc -eq 0 ] || fail "dumpcap exited $rc after SIGINT"
echo "ok: a worker held inside the capture callback while dumpcap stopped and freed its pool: portcullisd lives on"

kill -INT $pid
wait $pid
rc=$?
pid=""
[ $rc -eq 0 ] || fail "portcullisd exited $rc after SIGINT"
grep -q "stopped; final counters" "$work/daemon.log" || fail "no final counters"
echo "ok: portcullisd exited 0 on SIGINT"

# The capture against the reference and the daemon's counters.
forwarded_in=$(awk '$1 == "in" && $2 == "forwarded" {print $3}' "$work/daemon.log")  # and phase 3's echo request
dropped=$(awk '$2 == "dropped" {sum += $3} END {print sum + 0}' "$work/daemon.log")
python3 - "$work/inside.pcapng" "$work/drops.pcapng" "$port_in" "$port_drops" "$work/ref-in.pcap" "$work/ref-drops.pcap" \
	"$((forwarded_in - 1))" "$dropped" <<'PY' || fail "the capture does not match"
import ipaddress, struct, sys

live_in, live_drops, port_in, port_drops, ref_in, ref_drops, forwarded_in, dropped = sys.argv[1:]
port_in, port_drops, forwarded_in, dropped = int(port_in), int(port_drops), int(forwarded_in), int(dropped)

def pcap_frames(path):
    data = open(path, "rb").read()
    at, out = 24, []
    while at + 16 <= len(data):
        incl = struct.unpack_from("<I", data, at + 8)[0]
        out.append(data[at + 16:at + 16 + incl])
        at += 16 + incl
    return out

def pcapng_frames(path):
    """(interface id, direction, frame) per enhanced packet block; direction 1 in, 2 out (epb_flags)."""
    data = open(path, "rb").read()
    at, out = 0, []
    while at + 12 <= len(data):
        btype, blen = struct.unpack_from("<II", data, at)
        if btype == 6:
            iface, _, _, caplen, _ = struct.unpack_from("<IIIII", data, at + 8)
            frame = data[at + 28:at + 28 + caplen]
            opts, direction = at + 28 + ((caplen + 3) & ~3), 0
            while opts + 4 <= at + blen - 4:
                code, length = struct.unpack_from("<HH", data, opts)
                if code == 0:
                    break
                if code == 2:
                    direction = struct.unpack_from("<I", data, opts + 4)[0] & 3
                opts += 4 + ((length + 3) & ~3)
            out.append((iface, direction, frame))
        at += blen
    return out

def five_tuple(frame):
    eth = struct.unpack_from("!H", frame, 12)[0]
    if eth == 0x0800:
        ihl, proto = (frame[14] & 15) * 4, frame[23]
        src, dst, l4 = ipaddress.ip_address(frame[26:30]), ipaddress.ip_address(frame[30:34]), 14 + ihl
    elif eth == 0x86DD:
        proto, src, dst, l4 = frame[20], ipaddress.ip_address(frame[22:38]), ipaddress.ip_address(frame[38:54]), 54
    else:
        return None
    ports = struct.unpack_from("!HH", frame, l4) if proto in (6, 17) and len(frame) >= l4 + 4 else (None, None)
    return proto, src, ports[0], dst, ports[1]

captured = {port_in: pcapng_frames(live_in), port_drops: pcapng_frames(live_drops)}
for port, blocks in captured.items():
    assert all(i == port for i, _, _ in blocks), f"packets from another port than {port}"
    assert all(d == 2 for _, d, _ in blocks), "these ports only transmit: every packet should be outbound"
inside = [f for _, _, f in captured[port_in]]
drops = [f for _, _, f in captured[port_drops]]
ok = True
for name, got, want in (("inside port", inside, pcap_frames(ref_in)), ("drop port", drops, pcap_frames(ref_drops))):
    if got != want:
        ok = False
        print(f"{name}: captured {len(got)} packets, expected {len(want)}; first difference at",
              next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want))))
if len(inside) != forwarded_in or len(drops) != dropped:
    ok = False
    print(f"daemon counters: {forwarded_in} forwarded in (besides the held echo request), {dropped} dropped; "
          f"captured {len(inside)} and {len(drops)}")
inside_nets = [ipaddress.ip_network("198.18.1.0/24"), ipaddress.ip_network("2001:2:0:1::/64")]
tuples_in = [five_tuple(f) for f in inside]  # None: ARP, which passes both ways
for t in tuples_in:
    if t and not any(t[3] in n for n in inside_nets):
        ok = False
        print("forwarded to the inside port, but not addressed to the inside networks:", t)
if any(t and t[0] == 6 and t[4] == 31337 for t in tuples_in):
    ok = False
    print("a packet to the backdoor port (31337) was forwarded")
if not any(t and t[0] == 6 and t[4] == 31337 for t in map(five_tuple, drops)):
    ok = False
    print("the drops should hold the backdoor packets (tcp port 31337)")
if not ok:
    sys.exit(1)
print(f"ok: capture holds the {len(inside)} forwarded inbound packets and the {len(drops)} drops, byte for byte, "
      f"as the reference and the daemon's counters say; 5-tuples follow the rules")
PY
echo "dumpcap: OK"
