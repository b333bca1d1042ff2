#!/usr/bin/env bash
# The drop capture point: with ports.drops naming a pcap vdev, every packet portcullisd drops is written
# to that capture, and nothing else is. The bundled demo capture replayed once: the daemon's own
# counters say how many it dropped; the capture must hold exactly those. Usage: drops.sh PORTCULLISD RULES CAPTURE
set -u
daemon=$1
rules=$2
capture=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*"; tail -30 "$work/daemon.log" 2>/dev/null; exit 1; }

"$daemon" --rules "$rules" --ports.outside net_pcap0 --ports.inside net_pcap1 --ports.drops net_pcap2 \
	--ports.mode replay --ports.inside-networks "198.18.1.0/24, 2001:2:0:1::/64" --queues.mbufs 4095 \
	--run.exit-when-idle 300 --run.duration 30 --control.socket "" --metrics.listen "" \
	--eal.args "-l 0 --no-huge -m 256 --no-pci --no-shconf --no-telemetry --file-prefix=pcdrops$$ --log-level=warning --vdev=net_pcap0,rx_pcap=$capture,tx_pcap=$work/out.pcap --vdev=net_pcap1,tx_pcap=$work/in.pcap --vdev=net_pcap2,tx_pcap=$work/drops.pcap" \
	>"$work/daemon.log" 2>&1 || fail "portcullisd failed"

count() {  # packets in a classic pcap file
	python3 - "$1" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
at, n = 24, 0
while at + 16 <= len(data):
    incl = struct.unpack_from("<I", data, at + 8)[0]
    at += 16 + incl
    n += 1
print(n)
PY
}
dropped=$(awk '$2 == "dropped" {sum += $3} END {print sum + 0}' "$work/daemon.log")
forwarded=$(awk '$2 == "forwarded" || $2 == "rejected" {sum += $3} END {print sum + 0}' "$work/daemon.log")
[ "$dropped" -gt 0 ] || fail "the demo capture should have drops"
got=$(count "$work/drops.pcap")
[ "$got" -eq "$dropped" ] || fail "drop capture holds $got packets, the daemon dropped $dropped"
echo "ok: the drop capture holds exactly the $dropped dropped packets"
passed=$(( $(count "$work/out.pcap") + $(count "$work/in.pcap") ))
[ "$passed" -eq "$forwarded" ] || fail "forwarded captures hold $passed packets, the daemon forwarded $forwarded"
echo "ok: the forwarded captures hold the other $forwarded"
echo "drops: OK"
