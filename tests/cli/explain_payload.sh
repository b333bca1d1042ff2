#!/usr/bin/env bash
# `portcullis explain FILE FLOW --payload BYTES` scans the bytes as the data path would and names the
# payload rule (and its condition's file:line:column) that decides, or says the payload-free verdict
# stands. Usage: explain_payload.sh PORTCULLIS
set -u
cli=$1
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cat >"$dir/p.rules" <<'RULES'
default in drop
drop in tcp to 198.18.1.10 port 80 content "/etc/passwd"
allow in tcp to 198.18.1.10 port 80
RULES
flow='tcp 198.18.0.5:40000 -> 198.18.1.10:80 in'
out=$("$cli" explain "$dir/p.rules" "$flow" --payload 'GET /etc/passwd HTTP/1.1\r\n') || { echo "FAIL: exit $?"; exit 1; }
grep -q "payload: matched .*p.rules:2:" <<<"$out" || { echo "FAIL: no match reported:"; echo "$out"; exit 1; }
grep -q "condition at .*p.rules:2:36" <<<"$out" || { echo "FAIL: no condition position:"; echo "$out"; exit 1; }
grep -q "verdict: drop (decided by the payload)" <<<"$out" || { echo "FAIL: verdict"; echo "$out"; exit 1; }
out=$("$cli" explain "$dir/p.rules" "$flow" --payload 'GET /index.html HTTP/1.1\r\n') || exit 1
grep -q "payload-free verdict stands" <<<"$out" || { echo "FAIL: expected no match:"; echo "$out"; exit 1; }
grep -q "meanwhile it follows .*p.rules:3" <<<"$out" || { echo "FAIL: payload-free rule not named"; exit 1; }
echo "explain --payload: OK"
