#!/usr/bin/env bash
# portcullis top as a person uses it: in a terminal (tmux), against a daemon forwarding a replayed
# capture. Reads the screen (capture-pane), presses keys (send-keys): each view shows what it should, s
# switches the sort, q quits. Then top with its output in a pipe prints plain text frames.
# Usage: top_tmux.sh PORTCULLISD PORTCULLIS RULES CAPTURE. Exits 77 (skip) without tmux.
set -u
daemon=$1
cli=$2
rules=$3
capture=$4
command -v tmux >/dev/null || { echo "SKIP: tmux not installed"; exit 77; }
work=$(mktemp -d)
session=pctop$$
pid=""
cleanup() {
	tmux kill-session -t "$session" 2>/dev/null
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; echo "--- screen:"; cat "$work/screen" 2>/dev/null; tail -20 "$work/daemon.log"; exit 1; }

"$daemon" --rules "$rules" --ports.outside net_pcap0 --ports.inside net_pcap1 --ports.mode replay \
	--ports.inside-networks "198.18.1.0/24, 2001:2:0:1::/64" --control.socket "$work/c.sock" --metrics.listen "" \
	--run.duration 60 -- -l 0 --no-huge -m 512 --no-pci --file-prefix="pctop$$" --log-level=error \
	--vdev="net_pcap0,rx_pcap=$capture,infinite_rx=1" --vdev=net_pcap1,tx_pcap=/dev/null >"$work/daemon.log" 2>&1 &
pid=$!
for _ in $(seq 50); do
	[ -S "$work/c.sock" ] && break
	sleep 0.1
done
[ -S "$work/c.sock" ] || fail "portcullisd did not start"

screen() { tmux capture-pane -p -t "$session" >"$work/screen"; }
wait_for() {  # TEXT: up to 5 s for it to show on the screen
	for _ in $(seq 50); do
		screen
		grep -qF -- "$1" "$work/screen" && return 0
		sleep 0.1
	done
	return 1
}

tmux new-session -d -s "$session" -x 180 -y 40 "$cli --socket $work/c.sock top --interval 0.5" || fail "tmux"
wait_for "view: rules" || fail "top did not draw the rules view"
wait_for "gateway.rules:16" || fail "the rules view lists no rule"
# The busiest rule first: the server's TCP rule carries most of the demo capture.
grep -A1 "^RULE" "$work/screen" | tail -1 | grep -q "gateway.rules:16 " || fail "the busiest rule is not first"
grep -q "generation 1 (9 rules" "$work/screen" || fail "no rule generation in the header"
grep -q "0: [0-9]*% busy" "$work/screen" || fail "no worker busy ratio"
echo "ok: the rules view, busiest first, with the generation and the workers' load"

tmux send-keys -t "$session" d
wait_for "DROP REASON" || fail "d did not switch to drops"
wait_for "rule_drop" || fail "the drops view lacks the capture's rule drops"
echo "ok: d shows drops by reason"

tmux send-keys -t "$session" f
wait_for "FLOW (OPENER FIRST)" || fail "f did not switch to flows"
wait_for "198.18.0." || fail "the flows view lists no flow"
echo "ok: f shows the top flows"

tmux send-keys -t "$session" s
wait_for "sort: bytes" || fail "s did not switch the sort"
echo "ok: s sorts by bytes"

tmux send-keys -t "$session" q
for _ in $(seq 50); do
	tmux has-session -t "$session" 2>/dev/null || break
	sleep 0.1
done
tmux has-session -t "$session" 2>/dev/null && fail "q did not quit"
echo "ok: q quits"

# Not a terminal: plain frames, as many as asked.
"$cli" --socket "$work/c.sock" top --interval 0.2 --count 2 >"$work/plain" 2>&1 || fail "top in a pipe failed"
[ "$(grep -c '^portcullis top' "$work/plain")" = 2 ] || fail "expected two plain frames: $(cat "$work/plain")"
grep -q $'\e' "$work/plain" && fail "escape codes in the plain output"
echo "ok: in a pipe, plain text frames"
echo "top: all checks passed"
