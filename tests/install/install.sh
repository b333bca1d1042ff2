#!/usr/bin/env bash
# `meson install` into a scratch DESTDIR lays out the binaries, configuration, profiles, unit and
# completion, and the installed daemon validates the installed configuration (`--check`, as the unit's
# ExecStartPre does). Usage: install.sh BUILD_DIR
set -u
build=$1
dest=$(mktemp -d)
trap 'rm -rf "$dest"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
DESTDIR=$dest meson install -C "$build" --quiet --no-rebuild >"$dest.log" 2>&1 || { cat "$dest.log"; fail "meson install"; }
rm -f "$dest.log"
prefix=$(meson introspect "$build" --buildoptions | python3 -c 'import json,sys; o={x["name"]:x["value"] for x in json.load(sys.stdin)}; print(o["prefix"], o["sysconfdir"], o["sbindir"], o["bindir"], o["datadir"])')
read -r pfx sysconf sbin bin data <<<"$prefix"
abs() { case $1 in /*) echo "$1" ;; *) echo "$pfx/$1" ;; esac; }
etc=$dest$(abs "$sysconf")/portcullis
share=$dest$(abs "$data")
for f in "$dest$(abs "$sbin")/portcullisd" "$dest$(abs "$bin")/portcullis" "$etc/portcullisd.conf" "$etc/rules/active.rules" \
	"$share/portcullis/drivers-config/af_packet.conf" "$share/portcullis/drivers-config/mlx5.conf" \
	"$share/portcullis/examples/rules/gateway.rules" "$share/bash-completion/completions/portcullis" \
	"$dest$pfx/lib/systemd/system/portcullisd.service"; do
	[ -e "$f" ] || fail "not installed: ${f#$dest}"
done
grep -q "ExecStartPre=.*portcullisd --config .*--check" "$dest$pfx/lib/systemd/system/portcullisd.service" || fail "unit lacks the --check ExecStartPre"
"$dest$(abs "$sbin")/portcullisd" --config "$etc/portcullisd.conf" --profile "$share/portcullis/drivers-config/af_packet.conf" \
	--rules "$etc/rules/active.rules" --check || fail "installed daemon rejects the installed configuration"
bash -n "$share/bash-completion/completions/portcullis" || fail "completion script does not parse"
"$dest$(abs "$bin")/portcullis" check "$etc/rules/active.rules" >/dev/null || fail "installed CLI rejects the installed rules"
echo "install: layout and configuration OK"
