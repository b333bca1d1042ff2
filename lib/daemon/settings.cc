// The option table of portcullisd and the checks on its values; see settings.h.
#include "daemon/settings.h"

#include <boost/program_options.hpp>

#include <algorithm>
#include <string>

#include "control/protocol.h"
#include "dataplane/policy.h"

namespace portcullis::daemon {

namespace po = boost::program_options;

po::options_description describe(settings& s)
{
	po::options_description general("General");
	general.add_options()
		("help,h", "Show this help and exit.")
		("config,c", po::value<std::vector<std::string>>()->composing(),
		 "INI configuration file (repeatable). Precedence: command line, then config files in order, then the profile.")
		("profile,p", po::value<std::string>(),
		 "Driver profile (drivers-config/*.conf): EAL arguments, ports and queues. Same format as --config; "
		 "may be named by a config file (profile = ...).")
		("rules,r", po::value(&s.rules_file),
		 "Rule file to enforce (required): the source of truth. SIGHUP re-reads it; a push is runtime only.")
		("rules.watch", po::value(&s.rules_watch)->default_value(""),
		 "etcd://HOST[:PORT]/KEY: follow this etcd key (docs/scale-out.md). The daemon starts on --rules, then "
		 "swaps in the key's value and every new revision of it the way a push does; a revision with errors "
		 "is refused (errors as etcd://...@REVISION:LINE:COLUMN) and the running rules stay; deleting the key "
		 "or losing etcd keeps them too. '' (default): no etcd.")
		("check", po::bool_switch(&s.check_only),
		 "Validate the configuration and the rule file, then exit (0 when both are good); touches no NIC.");

	po::options_description eal("EAL ([eal] section)");
	eal.add_options()
		("eal.args", po::value(&s.eal_args)->default_value(""),
		 "DPDK EAL arguments, e.g. \"-l 0-1 --vdev=net_null0\"; words after -- on the command line are "
		 "appended. {capture} and {output} are replaced by replay.capture and replay.output-dir.");

	po::options_description ports("Ports ([ports] section)");
	ports.add_options()
		("ports.outside", po::value(&s.outside)->default_value("0"), "Outside port: id or device name.")
		("ports.inside", po::value(&s.inside)->default_value("1"), "Inside port: id or device name.")
		("ports.mode", po::value(&s.mode)->default_value("pair"),
		 "pair: traffic from the outside port is inbound and leaves by the inside port, and back. "
		 "replay: the outside port carries both directions (a capture); a packet whose source is in "
		 "ports.inside-networks is outbound and leaves by the outside port, others leave by the inside port.")
		("ports.drops", po::value(&s.drops)->default_value(""),
		 "Optional third port (e.g. a net_null vdev) that receives every dropped packet, so that "
		 "`dpdk-dumpcap -i <it>` captures the drops. Off ('') by default: it costs a TX burst per burst with drops.")
		("ports.inside-networks", po::value(&s.inside_networks)->default_value(""),
		 "Replay mode: the inside address ranges, as in a rule (\"198.18.1.0/24, 2001:2:0:1::/64\").")
		("replay.capture", po::value(&s.capture)->default_value(""), "Capture file substituted for {capture} in eal.args.")
		("replay.output-dir", po::value(&s.output_dir)->default_value("."), "Directory substituted for {output} in eal.args.");

	po::options_description queues("Queues and memory ([queues] section)");
	queues.add_options()
		("queues.workers", po::value(&s.workers)->default_value(1),
		 "Worker lcores. Needs that many lcores besides the main one in eal.args (-l), or runs one worker on "
		 "the main lcore when there are none; and one TX queue per worker on every port. Each worker polls "
		 "its own RX queue of every port (symmetric RSS on IP addresses); a port with fewer RX queues is "
		 "polled by the first workers, which hand each packet to the worker that owns its addresses "
		 "(docs/workers.md).")
		("queues.handoff-ring", po::value(&s.handoff_ring)->default_value(4096),
		 "Packets each worker's inbox holds when workers hand packets over (software distribution); a full "
		 "inbox drops, counted as handoff_full.")
		("queues.rx-descriptors", po::value(&s.ports.rx_descriptors)->default_value(1024), "RX ring size per queue.")
		("queues.tx-descriptors", po::value(&s.ports.tx_descriptors)->default_value(1024), "TX ring size per queue.")
		("queues.mbufs", po::value(&s.ports.mbufs)->default_value(16383), "Mbufs in the packet pool.")
		("queues.mbuf-cache", po::value(&s.ports.mbuf_cache)->default_value(256), "Per-lcore mbuf cache.")
		("queues.burst", po::value(&s.burst)->default_value(dataplane::default_burst), "Packets per RX burst (1..64).")
		("queues.rss", po::value(&s.rss)->default_value("symmetric"),
		 "symmetric: RSS with a key that sends both directions of a flow to one queue; plain: the NIC's default key.");

	po::options_description flows("Connection tracking ([flows] section)");
	flows.add_options()
		("flows.capacity", po::value(&s.flow_capacity)->default_value(1u << 20),
		 "Flows tracked in all, split evenly between the workers.")
		("flows.full-policy", po::value(&s.full_policy)->default_value("evict-embryonic"),
		 "When the table is full: evict-embryonic (the oldest half-open flow makes room; established flows "
		 "are never evicted) or drop (new flows are refused). Both are counted.")
		("flows.tcp-loose-pickup", po::bool_switch(&s.tcp_loose_pickup),
		 "Let an allowed TCP packet that is not a SYN open a flow (after a restart, say). Off: such packets "
		 "are dropped as tcp_no_flow.")
		("flows.tcp-window", po::value(&s.tcp_window)->default_value("strict"),
		 "TCP window tracking once a connection is set up: strict (every segment's sequence and ACK numbers "
		 "must fall within the windows, else tcp_out_of_window), loose (RSTs only: no blind reset) or off "
		 "(handshake checks only). Flows picked up mid-stream are not checked.")
		("flows.syncookies", po::value(&s.syncookies)->default_value("adaptive"),
		 "SYN proxy with SYN cookies for inbound connections: never, always, or adaptive (on while a worker "
		 "sees more new inbound SYNs per second than flows.syncookies-rate, its table holds more half-open "
		 "flows than flows.syncookies-half-open of it, or it evicts half-open flows for room; and a second "
		 "after). While on, an allowed SYN is answered by the firewall and creates no flow; the client's ACK "
		 "opens it and the handshake is replayed to the server.")
		("flows.syncookies-rate", po::value(&s.syncookies_rate)->default_value(50000),
		 "Adaptive SYN cookies: new inbound SYNs per second, per worker, that turn them on (at least 1).")
		("flows.syncookies-half-open", po::value(&s.syncookies_half_open)->default_value(0.25),
		 "Adaptive SYN cookies: the share of a worker's table in half-open TCP flows that turns them on.")
		("flows.syncookie-mss", po::value(&s.syncookie_mss)->default_value(1460),
		 "The MSS the proxy's SYN-ACK announces: set it to the protected servers' (536..9000).")
		("flows.syncookie-wscale", po::value(&s.syncookie_wscale)->default_value(7),
		 "The window scale the proxy's SYN-ACK announces: set it to the protected servers' (0..14).");
	for (uint32_t st = 0; st < flow::flow_state_count; ++st) {
		std::string name = "flows.timeout." + std::string(flow::to_string(flow::flow_state(st)));
		std::replace(name.begin(), name.end(), '_', '-');
		// option_description copies the name: no need to keep it (a strdup here leaked, seen by LeakSanitizer).
		flows.add_options()(name.c_str(), po::value(&s.idle.seconds[st])->default_value(s.idle.seconds[st]),
		                    "Idle timeout in seconds, at most 518400 (6 days).");
	}

	po::options_description data("Data path ([dataplane] section)");
	data.add_options()
		("dataplane.pass-other-l2", po::bool_switch(&s.pass_other_l2),
		 "Forward frames that are neither IP nor ARP (dropped and counted as l2_other by default).")
		("dataplane.drop-martians", po::value(&s.drop_martians)->default_value(true),
		 "Drop packets from sources no host can have (0/8, 127/8, 224/4, 240/4, 255.255.255.255; ::, ::1, "
		 "ff00::/8) in both directions, counted as martian_source, and frames from a multicast or broadcast "
		 "source MAC, counted as martian_mac.")
		("dataplane.drop-land", po::value(&s.drop_land)->default_value(true),
		 "Drop packets whose source address is their destination (the land attack), counted as land.")
		("dataplane.send-rejects", po::value(&s.send_rejects)->default_value(true),
		 "Answer reject rules with a TCP RST or an ICMP unreachable (else they only drop).")
		("dataplane.classifier", po::value(&s.classifier)->default_value("ours"), "ours or rte_acl.")
		("dataplane.pdump", po::value(&s.pdump)->default_value(true),
		 "Serve dpdk-dumpcap/dpdk-pdump (rte_pdump): `dpdk-dumpcap --file-prefix=<the daemon's> -i <port>` "
		 "captures what a port receives and sends. Needs hugepages (not --no-huge) and the EAL's shared files "
		 "(not --no-shconf or --in-memory). Costs nothing until a capture starts. false: refuse captures.");

	po::options_description run("Run ([run] section)");
	run.add_options()
		("run.duration", po::value(&s.duration)->default_value(0), "Stop after this many seconds (0: until a signal).")
		("run.exit-when-idle", po::value(&s.exit_when_idle_ms)->default_value(0),
		 "Stop once no packet has arrived for this many milliseconds after the first one (capture replays).")
		("run.stats-interval", po::value(&s.stats_interval)->default_value(0),
		 "Print counters every this many seconds (0: only at exit).");

	po::options_description ctl("Control socket ([control] section)");
	ctl.add_options()
		("control.socket", po::value(&s.control_socket)->default_value(portcullis::control::default_socket_path),
		 "Unix socket for the portcullis CLI (docs/control.md); '' for none. Mode 0660, owner root and control.group.")
		("control.group", po::value(&s.control_group)->default_value("root"),
		 "Group (name or number) whose members may use the control socket besides root.");

	po::options_description all;
	po::options_description met("Metrics ([metrics] section)");
	met.add_options()
		("metrics.listen", po::value(&s.metrics_listen)->default_value("127.0.0.1:9469"),
		 "Prometheus exporter address (host:port; /metrics). Loopback by default: not reachable from other "
		 "machines unless the operator says so. '' for none.");
	po::options_description lg("Logging of rules marked `log` ([log] section)");
	lg.add_options()
		("log.target", po::value(&s.log_target)->default_value("stdout"),
		 "stdout (JSON lines) or syslog (JSON lines to the daemon facility; journald collects them).")
		("log.rate", po::value(&s.log_rate)->default_value(100),
		 "Log records per second each worker may write; beyond it records are counted as suppressed, and the "
		 "log says how many once a second.");
	po::options_description sy("Flow-state sync with peer appliances ([sync] section; docs/scale-out.md)");
	sy.add_options()
		("sync.listen", po::value(&s.sync_listen)->default_value(""),
		 "ADDR:PORT (UDP) this appliance receives its peers' flows on, on a management or dedicated link; '' for "
		 "no sync.")
		("sync.peer", po::value(&s.sync_peers)->composing(),
		 "ADDR:PORT of a peer's sync.listen; one per peer (repeat the option). Datagrams from any other address "
		 "are refused and counted.")
		("sync.key-file", po::value(&s.sync_key_file)->default_value(""),
		 "File holding the shared secret (at least 16 bytes; the same on every peer): every datagram carries an "
		 "HMAC-SHA256 under it.")
		("sync.role", po::value(&s.sync_role)->default_value("active"),
		 "active (forwards, and sends its flows) or standby (installs its peers' flows and forwards nothing until "
		 "`portcullis sync promote`).")
		("sync.interval-ms", po::value(&s.sync_interval_ms)->default_value(100),
		 "The flow tables are walked for new and changed flows once per this many milliseconds (a slice each "
		 "control-loop turn): how late a peer can learn of a flow.")
		("sync.refresh", po::value(&s.sync_refresh)->default_value(30),
		 "Seconds: a flow that keeps seeing packets is sent again at most this long after it was last sent "
		 "(sooner for short timeouts: a quarter of its state's), so that its peer copy does not expire.")
		("sync.defer-ms", po::value(&s.sync_defer_ms)->default_value(0),
		 "Two active appliances behind ECMP, where a flow's directions may cross different boxes: a TCP segment "
		 "of no flow here (a SYN-ACK whose SYN crossed the peer), or one its flow's state here does not allow "
		 "yet, waits up to this long for the peer's record of the flow, then is judged again (pfsync's defer). "
		 "Set it to twice sync.interval-ms or more; 0 (the default) for active/standby pairs.");
	all.add(general).add(eal).add(ports).add(queues).add(flows).add(data).add(run).add(ctl).add(met).add(lg).add(sy);
	return all;
}

std::string usage_error(const settings& s)
{
	if (s.rules_file.empty())
		return "--rules is required (see --help)";
	if (s.mode != "pair" && s.mode != "replay")
		return "ports.mode must be pair or replay, not '" + s.mode + "'";
	if (s.full_policy != "evict-embryonic" && s.full_policy != "drop")
		return "flows.full-policy must be evict-embryonic or drop";
	if (s.tcp_window != "strict" && s.tcp_window != "loose" && s.tcp_window != "off")
		return "flows.tcp-window must be strict, loose or off, not '" + s.tcp_window + "'";
	if (s.syncookies != "never" && s.syncookies != "always" && s.syncookies != "adaptive")
		return "flows.syncookies must be never, always or adaptive, not '" + s.syncookies + "'";
	if (s.syncookies_rate == 0)
		return "flows.syncookies-rate must be at least 1 (flows.syncookies = always answers every SYN)";
	if (s.syncookie_mss < 536 || s.syncookie_mss > 9000)
		return "flows.syncookie-mss must be 536..9000";
	if (s.syncookie_wscale > 14)
		return "flows.syncookie-wscale must be 0..14";
	if (!(s.syncookies_half_open > 0 && s.syncookies_half_open <= 1))
		return "flows.syncookies-half-open must be a share of the table, above 0 and at most 1";
	if (s.log_target != "stdout" && s.log_target != "syslog")
		return "log.target must be stdout or syslog";
	if (s.classifier != "ours" && s.classifier != "rte_acl")
		return "dataplane.classifier must be ours or rte_acl";
	if (s.workers < 1 || s.workers > dataplane::max_workers)
		return "queues.workers must be 1.." + std::to_string(dataplane::max_workers);
	if (!s.sync_listen.empty()) {
		if (s.sync_role != "active" && s.sync_role != "standby")
			return "sync.role must be active or standby, not '" + s.sync_role + "'";
		if (s.sync_peers.empty())
			return "sync.listen needs at least one sync.peer";
		if (s.sync_key_file.empty())
			return "sync.listen needs sync.key-file (the peers' shared secret)";
		if (s.sync_interval_ms < 10 || s.sync_interval_ms > 60000)
			return "sync.interval-ms must be 10..60000";
		if (s.sync_refresh < 1)
			return "sync.refresh must be at least 1 second";
		if (s.sync_defer_ms > 5000)
			return "sync.defer-ms must be 0..5000";
	}
	for (uint32_t st = 0; st < flow::flow_state_count; ++st)
		if (s.idle.seconds[st] > flow::max_timeout_seconds) {
			std::string name(flow::to_string(flow::flow_state(st)));
			std::replace(name.begin(), name.end(), '_', '-');
			return "flows.timeout." + name + " must be at most " + std::to_string(flow::max_timeout_seconds) +
			       " seconds (6 days)";
		}
	return {};
}

} // namespace portcullis::daemon
