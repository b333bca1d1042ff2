# Shared by the namespace tests (e2e.sh, fragments.sh, syncookies.sh): two network namespaces, a host in
# each, and portcullisd between them on two veth pairs.
#
#   [ns out: 198.18.0.5] --veth-- (Xo) portcullisd (Xi) --veth-- [ns in: 198.18.1.10]
#
# Source it, then call start_pair DRIVER RULES [daemon options...] with DRIVER af_packet or af_xdp. It
# sets tag, ns_out, ns_in, work (a scratch directory), pid (the daemon's) and py, and cleans all up on
# exit; wait_listen NS PORT [-u] waits for a server started in the background. Needs root and ip netns:
# exits 77 (skip) without them.
tag=pc$$
ns_out=${tag}out
ns_in=${tag}in
work=$(mktemp -d)
pid=""
py=$(command -v python3)
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; [ -f "$work/daemon.log" ] && tail -40 "$work/daemon.log"; exit 1; }
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	ip netns pids "$ns_out" 2>/dev/null | xargs -r kill 2>/dev/null
	ip netns pids "$ns_in" 2>/dev/null | xargs -r kill 2>/dev/null
	ip netns del "$ns_out" 2>/dev/null
	ip netns del "$ns_in" 2>/dev/null
	ip link del "${tag}o" 2>/dev/null
	ip link del "${tag}i" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT
# Until something in namespace NS listens on PORT (TCP, or UDP with -u): a server started in the
# background can take longer than any fixed sleep on a loaded CI host, and a connection to a port not
# yet listened on is refused by the host itself, not by the firewall (e2e-af_xdp failed so once).
wait_listen() {  # NS PORT [-u]
	local kind=-Hltn
	[ "${3:-}" = -u ] && kind=-Hlun
	for _ in $(seq 100); do
		ip netns exec "$1" ss $kind "sport = :$2" | grep -q . && return 0
		sleep 0.1
	done
	fail "nothing listens on port $2 in $1"
}

start_pair() {  # DRIVER RULES [daemon options...]
	local driver=$1 rules=$2
	shift 2
	[ "$(id -u)" -eq 0 ] || skip "needs root"
	command -v ip >/dev/null || skip "needs iproute2"
	ip netns add "$ns_out" 2>/dev/null || skip "cannot create network namespaces here"
	ip netns add "$ns_in" || fail "netns"

	# One veth pair per side: the host end goes into its namespace, the other end stays for Portcullis.
	ip link add "${tag}o" type veth peer name "${tag}oh" || fail "veth"
	ip link add "${tag}i" type veth peer name "${tag}ih" || fail "veth"
	ip link set "${tag}oh" netns "$ns_out"
	ip link set "${tag}ih" netns "$ns_in"
	for ifc in "${tag}o" "${tag}i"; do
		ip link set "$ifc" up
		ip link set "$ifc" promisc on
		sysctl -qw "net.ipv6.conf.$ifc.disable_ipv6=1" 2>/dev/null
	done
	ip -n "$ns_out" addr add 198.18.0.5/15 dev "${tag}oh"
	ip -n "$ns_out" addr add 198.18.0.6/15 dev "${tag}oh"  # a second outside host, for the scanner trap
	ip -n "$ns_out" addr add 198.18.0.7/15 dev "${tag}oh"  # a CDN edge that DNS names (the dns set)
	ip -n "$ns_in" addr add 198.18.1.10/15 dev "${tag}ih"
	for ns in "$ns_out" "$ns_in"; do
		ip -n "$ns" link set lo up
	done
	ip -n "$ns_out" link set "${tag}oh" up
	ip -n "$ns_in" link set "${tag}ih" up
	# Checksums are filled by the veth's peer in the kernel; through AF_PACKET they are not: compute them.
	ip netns exec "$ns_out" ethtool -K "${tag}oh" tx off >/dev/null 2>&1 || fail "ethtool (install ethtool)"
	ip netns exec "$ns_in" ethtool -K "${tag}ih" tx off >/dev/null 2>&1 || fail "ethtool"

	# --run.duration is a backstop for a script killed before its trap runs, far past the slowest run: at
	# 60 s it stopped the daemon in the middle of e2e.sh on a slow host (its checks take 45-70 s).
	"$daemon" --rules "$rules" --ports.outside "net_${driver}0" --ports.inside "net_${driver}1" \
		--flows.capacity 4096 --run.duration 300 --control.socket "$work/control.sock" --metrics.listen "" "$@" \
		-- -l 0 --no-huge -m 256 --no-pci --file-prefix="$tag" --log-level=error \
		--vdev="net_${driver}0,iface=${tag}o" --vdev="net_${driver}1,iface=${tag}i" >"$work/daemon.log" 2>&1 &
	pid=$!
	for _ in $(seq 50); do
		grep -q "worker(s)" "$work/daemon.log" 2>/dev/null && break
		if ! kill -0 "$pid" 2>/dev/null; then
			# A machine without AF_XDP (the daemon says so before its EAL starts) skips, as it would without netns.
			grep -q "af_xdp: this kernel has no AF_XDP\|af_xdp: cannot open an AF_XDP socket" "$work/daemon.log" &&
				skip "$(grep -m1 'af_xdp:' "$work/daemon.log")"
			fail "portcullisd exited"
		fi
		sleep 0.1
	done
	grep -q "worker(s)" "$work/daemon.log" || fail "portcullisd did not start"
}
