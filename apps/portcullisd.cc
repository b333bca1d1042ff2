// portcullisd: the firewall daemon. Reads its configuration (INI files and command line), brings up the
// DPDK EAL and the ports of the driver profile, compiles the rules, starts one worker per lcore, and
// runs the control loop (flow expiry, statistics) on the main lcore until SIGINT/SIGTERM, a configured
// duration, or — for capture replays — until the input has gone idle. Prints the final counters, with the
// identity of the rule set active at exit. SIGHUP re-reads the configured rules file and swaps it in
// the way a push does (a file with errors keeps the running rules).
//
// Signals: the handlers only set flags (lock-free atomic stores, async-signal-safe); the workers poll
// g_stop, the control loop acts on both. A push in progress when the daemon is asked to stop is abandoned
// at its next step (runtime.h): the rule set active at exit is the old one or the new one, complete.
#include <boost/program_options.hpp>

#include <dlfcn.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_pdump.h>
#include <rte_rcu_qsbr.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "dataplane/dataplane.h"
#include "control/drop_log.h"
#include "control/runtime.h"
#include "control/telemetry.h"
#include "metrics/metrics.h"
#include "control/server.h"
#include "etcd/etcd.h"
#include "dataplane/ports.h"
#include "rules/rules.h"

namespace po = boost::program_options;
namespace dp = portcullis::dataplane;
namespace flow = portcullis::flow;
namespace rules = portcullis::rules;

namespace {

constexpr int exit_ok = 0, exit_config = 1, exit_usage = 2, exit_runtime = 3;

std::atomic<bool> g_stop{false};    // SIGINT, SIGTERM, run.duration, run.exit-when-idle
std::atomic<bool> g_reload{false};  // SIGHUP: re-read the configured rules file
static_assert(std::atomic<bool>::is_always_lock_free, "the signal handlers store to these");

extern "C" void on_stop_signal(int) { g_stop.store(true); }
extern "C" void on_reload_signal(int) { g_reload.store(true); }

// Installed before the slow part of the start-up (EAL, ports, rule compile): a SIGHUP from `systemctl
// reload` right after the start must not kill the daemon (its default action), and a SIGTERM then stops
// it as soon as it is up.
void install_signal_handlers()
{
	struct sigaction sa{};
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop_signal;
	sigaction(SIGINT, &sa, nullptr);
	sigaction(SIGTERM, &sa, nullptr);
	sa.sa_handler = on_reload_signal;
	sigaction(SIGHUP, &sa, nullptr);
}

struct settings {
	std::string rules_file;
	std::string rules_watch;  // etcd://HOST[:PORT]/KEY, or empty
	std::string eal_args;
	std::vector<std::string> eal_extra;  // after "--" on the command line
	std::string outside, inside, mode, inside_networks, drops;
	std::string capture, output_dir;
	uint32_t workers = 1;
	uint32_t handoff_ring = 4096;
	dp::port_setup ports;
	std::string rss;
	uint16_t burst = 32;
	uint32_t flow_capacity = 1u << 20;
	std::string full_policy;
	bool tcp_loose_pickup = false;
	bool pass_other_l2 = false;
	bool send_rejects = true;
	bool pdump = true;
	std::string classifier;
	flow::timeouts idle;
	double duration = 0;
	uint32_t exit_when_idle_ms = 0;
	double stats_interval = 0;
	bool check_only = false;
	std::string control_socket;
	std::string metrics_listen;
	std::string log_target;
	uint32_t log_rate = 100;
	std::string control_group;
};

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
		("queues.burst", po::value(&s.burst)->default_value(32), "Packets per RX burst (1..64).")
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
		 "are dropped as tcp_no_flow.");
	for (uint32_t st = 0; st < flow::flow_state_count; ++st) {
		std::string name = "flows.timeout." + std::string(flow::to_string(flow::flow_state(st)));
		std::replace(name.begin(), name.end(), '_', '-');
		// option_description copies the name: no need to keep it (a strdup here leaked, seen by LeakSanitizer).
		flows.add_options()(name.c_str(), po::value(&s.idle.seconds[st])->default_value(s.idle.seconds[st]),
		                    "Idle timeout in seconds.");
	}

	po::options_description data("Data path ([dataplane] section)");
	data.add_options()
		("dataplane.pass-other-l2", po::bool_switch(&s.pass_other_l2),
		 "Forward frames that are neither IP nor ARP (dropped and counted as l2_other by default).")
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
	all.add(general).add(eal).add(ports).add(queues).add(flows).add(data).add(run).add(ctl).add(met).add(lg);
	return all;
}

std::vector<std::string> split_words(const std::string& s)
{
	std::istringstream in(s);
	std::vector<std::string> out;
	for (std::string w; in >> w;)
		out.push_back(w);
	return out;
}

void replace_all(std::string& s, const std::string& what, const std::string& with)
{
	for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + with.size()))
		s.replace(at, what.size(), with);
}

uint64_t sum_rx(const std::vector<std::unique_ptr<dp::worker>>& workers)
{
	uint64_t total = 0;
	for (const auto& w : workers)
		for (uint32_t p = 0; p < dp::max_ports; ++p)
			total += w->counters().rx_packets[p];
	return total;
}

void print_counters(const portcullis::control::runtime& rt, const std::vector<dp::port_state>& ports, FILE* out)
{
	const auto& workers = rt.workers();
	const dp::compiled_policy& pol = rt.policy();
	dp::worker_counters t{};
	uint64_t flows = 0;
	for (const auto& w : workers) {
		dp::accumulate(t, w->counters());
		flows += w->flows().size();
	}
	std::fprintf(out, "ports:\n");
	for (const auto& p : ports)
		std::fprintf(out, "  %-12s rx %10lu pkts %12lu bytes   tx %10lu pkts %12lu bytes\n", p.name.c_str(),
		             (unsigned long)t.rx_packets[p.port % dp::max_ports], (unsigned long)t.rx_bytes[p.port % dp::max_ports],
		             (unsigned long)t.tx_packets[p.port % dp::max_ports], (unsigned long)t.tx_bytes[p.port % dp::max_ports]);
	static const char* verdicts[] = {"forwarded", "dropped", "rejected"};
	for (int d = 0; d < 2; ++d)
		for (int v = 0; v < 3; ++v)
			std::fprintf(out, "%-3s %-9s %10lu pkts %12lu bytes\n", d == 0 ? "in" : "out", verdicts[v],
			             (unsigned long)t.packets[d][v], (unsigned long)t.bytes[d][v]);
	std::fprintf(out, "flows: %lu opened, %lu live; %lu reply packets, %lu related ICMP, %lu rejects sent\n",
	             (unsigned long)t.flows_opened, (unsigned long)flows, (unsigned long)t.reply_packets,
	             (unsigned long)t.related_icmp, (unsigned long)t.rejects_sent);
	std::fprintf(out, "drops by reason:\n");
	for (size_t r = 0; r < dp::drop_reason_count; ++r)
		if (t.drops[r])
			std::fprintf(out, "  %-22s %10lu\n", std::string(dp::to_string(dp::drop_reason(r))).c_str(), (unsigned long)t.drops[r]);
	for (size_t r = 1; r < portcullis::packet::drop_reason_count; ++r)
		if (t.parse.by_reason[r])
			std::fprintf(out, "  malformed/%-12s %10lu\n",
			             std::string(portcullis::packet::to_string(portcullis::packet::drop_reason(r))).c_str(),
			             (unsigned long)t.parse.by_reason[r]);
	// Which rule set this is: a push that was under way at a stop is either in it, whole, or not at all.
	const auto& src = rt.source();
	std::fprintf(out, "rules: generation %lu, %zu rules, digest %s, source %s %s%s\n", (unsigned long)pol.generation,
	             pol.rules.rules.size(), rt.digest().c_str(), std::string(portcullis::control::origin_name(src.origin)).c_str(),
	             src.file.c_str(),
	             src.origin == portcullis::control::rule_origin::push
	                 ? (" (runtime only: a restart or SIGHUP loads " + rt.configured_file() + ")").c_str()
	                 : "");
	for (uint32_t i = 0; i < pol.rules.rules.size(); ++i) {
		const auto& r = pol.rules.rules[i];
		const auto c = rt.rule_counters(i);
		std::fprintf(out, "  %8lu pkts %10lu bytes  %s:%u  %s\n", (unsigned long)c.packets, (unsigned long)c.bytes,
		             r.loc.file.c_str(), r.loc.line, r.text.c_str());
	}
	std::fflush(out);
}

// SIGHUP: the configured rules file again, through the same path as a push. Errors are logged with
// their file:line:column and change nothing.
void reload_rules(portcullis::control::runtime& rt)
{
	std::printf("portcullisd: SIGHUP: reloading %s\n", rt.configured_file().c_str());
	std::fflush(stdout);
	const auto report = rt.reload();
	for (const auto& d : report.errors)
		std::fprintf(stderr, "%s\n", rules::format(d).c_str());
	if (!report.ok)
		std::fprintf(stderr, "portcullisd: SIGHUP: %s not loaded (%s); the running rules (generation %lu, digest %s) stay\n",
		             rt.configured_file().c_str(),
		             report.errors.empty() ? report.error.c_str()
		                                   : (std::to_string(report.errors.size()) + " error(s)").c_str(),
		             (unsigned long)report.generation, rt.digest().c_str());
	std::fflush(stderr);
}

// A new revision of the followed etcd key: compiled and swapped in as a push would be. The text is one
// self-contained rule set (no include: nothing on this appliance's disk may change what the fleet's set
// means); `app` bundles come from the apps directory beside the configured rules file.
void apply_from_etcd(portcullis::control::runtime& rt, portcullis::etcd::follower& feed, const std::string& rules_file)
{
	auto change = feed.take();
	if (!change)
		return;
	const std::string name = feed.where().url() + "@" + std::to_string(change->mod_revision);
	if (change->deleted) {
		std::printf("portcullisd: rules: %s deleted; the running rules (generation %lu, digest %s) stay\n", name.c_str(),
		            (unsigned long)rt.policy().generation, rt.digest().c_str());
		std::fflush(stdout);
		return;
	}
	rules::parse_options opts;
	opts.max_include_depth = 0;
	opts.apps_dir = (std::filesystem::path(rules_file).parent_path() / "apps").string();
	const auto report = rt.push_text(change->text, name, opts, portcullis::control::rule_origin::etcd);
	for (const auto& d : report.errors)
		std::fprintf(stderr, "%s\n", rules::format(d).c_str());
	if (report.ok)
		rt.set_source_revision(change->mod_revision);
	else
		std::fprintf(stderr, "portcullisd: rules: %s refused (%s); the running rules (generation %lu, digest %s) stay\n",
		             name.c_str(),
		             report.errors.empty() ? report.error.c_str()
		                                   : (std::to_string(report.errors.size()) + " error(s)").c_str(),
		             (unsigned long)report.generation, rt.digest().c_str());
	std::fflush(stderr);
}

int worker_main(void* arg)
{
	static_cast<dp::worker*>(arg)->run(g_stop);
	return 0;
}

// Packet capture (rte_pdump, for dpdk-dumpcap). To start a capture, rte_pdump adds RX/TX callbacks that
// copy each packet into the mempool and ring of the dumpcap process; to stop it, it removes them and
// answers at once, and dumpcap frees that mempool and ring. DPDK 22.11 does not wait for a worker still
// inside a removed callback (rte_eth_remove_rx_callback leaves that to its caller): a worker preempted
// there went on copying into freed memory, which rte_free zeroes, so the pool's ops index read 0 — the
// first mempool driver loaded, octeontx_fpavf — and the daemon died in librte_mempool_octeontx (within
// a hundred dumpcap runs on two cores; docs/threat-model.md). The removals are therefore wrapped (below
// main's namespace): after DPDK's own, they wait until every online worker has passed a quiescent point
// (the RCU of the rule swap: a worker reports one per poll round, after its bursts), and only then does
// pdump answer dumpcap.
std::mutex g_capture_mutex;
rte_rcu_qsbr* g_capture_rcu = nullptr;  // guarded by g_capture_mutex: set while the workers run

void set_capture_rcu(rte_rcu_qsbr* rcu)
{
	std::lock_guard lock(g_capture_mutex);
	g_capture_rcu = rcu;
}

// On the EAL's IPC thread, which serves dumpcap's requests; about one poll round.
void wait_for_workers_past_callbacks()
{
	std::lock_guard lock(g_capture_mutex);
	if (g_capture_rcu)
		rte_rcu_qsbr_check(g_capture_rcu, rte_rcu_qsbr_start(g_capture_rcu), true);
}

template <class F>
F dpdk_definition(F, const char* name)
{
	return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

// What dpdk-dumpcap cannot attach to, in words; empty when it can. Secondary processes map the primary's
// hugepage files and talk to it over the runtime directory's mp_socket: --no-huge has no such files,
// --no-shconf and --in-memory no socket.
std::string capture_unavailable()
{
	if (!rte_eal_has_hugepages())
		return "the EAL runs without hugepages (--no-huge), and dumpcap maps the daemon's hugepage files";
	if (!std::filesystem::exists(std::filesystem::path(rte_eal_get_runtime_dir()) / "mp_socket"))
		return "the EAL keeps no shared files (--no-shconf or --in-memory), and dumpcap attaches through them";
	return {};
}

} // namespace

// The wrappers of the capture note above. The executable's definitions come first in symbol lookup, so
// librte_pdump's calls land here; DPDK's own are the next definitions (RTLD_NEXT).
extern "C" int rte_eth_remove_rx_callback(uint16_t port_id, uint16_t queue_id, const rte_eth_rxtx_callback* user_cb)
{
	static const auto dpdk = dpdk_definition(&rte_eth_remove_rx_callback, "rte_eth_remove_rx_callback");
	const int rc = dpdk ? dpdk(port_id, queue_id, user_cb) : -ENOTSUP;
	if (rc == 0)
		wait_for_workers_past_callbacks();
	return rc;
}

extern "C" int rte_eth_remove_tx_callback(uint16_t port_id, uint16_t queue_id, const rte_eth_rxtx_callback* user_cb)
{
	static const auto dpdk = dpdk_definition(&rte_eth_remove_tx_callback, "rte_eth_remove_tx_callback");
	const int rc = dpdk ? dpdk(port_id, queue_id, user_cb) : -ENOTSUP;
	if (rc == 0)
		wait_for_workers_past_callbacks();
	return rc;
}

int main(int argc, char** argv)
{
	settings s;
	const po::options_description options = describe(s);
	po::variables_map vm;
	// Words after "--" are EAL arguments.
	std::vector<std::string> ours;
	for (int i = 1; i < argc; ++i) {
		if (std::string(argv[i]) == "--") {
			for (int j = i + 1; j < argc; ++j)
				s.eal_extra.emplace_back(argv[j]);
			break;
		}
		ours.emplace_back(argv[i]);
	}
	try {
		po::store(po::command_line_parser(ours).options(options).run(), vm);
		// Boost keeps the first value stored for an option: the command line wins over the config files,
		// which win over the driver profile.
		auto load = [&](const std::string& file, const char* what) {
			std::ifstream in(file);
			if (!in) {
				std::cerr << "portcullisd: cannot open " << what << " file " << file << "\n";
				return false;
			}
			po::store(po::parse_config_file(in, options), vm);
			return true;
		};
		if (vm.count("config"))
			for (const auto& file : vm["config"].as<std::vector<std::string>>())
				if (!load(file, "config"))
					return exit_usage;
		if (vm.count("profile") && !load(vm["profile"].as<std::string>(), "profile"))
			return exit_usage;
		po::notify(vm);
	} catch (const po::error& e) {
		std::cerr << "portcullisd: " << e.what() << "\n";
		return exit_usage;
	}
	if (vm.count("help")) {
		std::cout << "usage: portcullisd --profile drivers-config/NAME.conf --rules FILE [options] [-- EAL args]\n\n"
		          << options << "\n";
		return exit_ok;
	}
	if (s.rules_file.empty()) {
		std::cerr << "portcullisd: --rules is required (see --help)\n";
		return exit_usage;
	}
	if (s.mode != "pair" && s.mode != "replay") {
		std::cerr << "portcullisd: ports.mode must be pair or replay, not '" << s.mode << "'\n";
		return exit_usage;
	}
	if (s.full_policy != "evict-embryonic" && s.full_policy != "drop") {
		std::cerr << "portcullisd: flows.full-policy must be evict-embryonic or drop\n";
		return exit_usage;
	}
	if (s.log_target != "stdout" && s.log_target != "syslog") {
		std::cerr << "portcullisd: log.target must be stdout or syslog\n";
		return exit_usage;
	}
	if (s.classifier != "ours" && s.classifier != "rte_acl") {
		std::cerr << "portcullisd: dataplane.classifier must be ours or rte_acl\n";
		return exit_usage;
	}
	if (s.workers < 1 || s.workers > dp::max_workers) {
		std::cerr << "portcullisd: queues.workers must be 1.." << dp::max_workers << "\n";
		return exit_usage;
	}

	portcullis::etcd::location watch;
	if (!s.rules_watch.empty()) {
		std::string error;
		if (!portcullis::etcd::parse_url(s.rules_watch, watch, error)) {
			std::cerr << "portcullisd: rules.watch: " << error << "\n";
			return exit_usage;
		}
	}

	auto parsed = rules::parse_file(s.rules_file);
	for (const auto& d : parsed.errors)
		std::cerr << rules::format(d) << "\n";
	if (!parsed.rules)
		return exit_config;
	portcullis::tuple_match inside;
	if (!s.inside_networks.empty()) {
		auto r = rules::parse_string("allow out from { " + s.inside_networks + " }", "ports.inside-networks");
		for (const auto& d : r.errors)
			std::cerr << rules::format(d) << "\n";
		if (!r.rules)
			return exit_config;
		inside = r.rules->rules.at(0).match;
	}
	if (s.check_only) {
		std::cout << s.rules_file << ": OK, " << parsed.rules->rules.size() << " rules\n";
		return exit_ok;
	}
	install_signal_handlers();

	// EAL
	std::string eal_args = s.eal_args;
	replace_all(eal_args, "{capture}", s.capture);
	replace_all(eal_args, "{output}", s.output_dir);
	std::vector<std::string> eal_words{"portcullisd"};
	for (auto& w : split_words(eal_args))
		eal_words.push_back(w);
	for (auto& w : s.eal_extra)
		eal_words.push_back(w);
	std::vector<char*> eal_argv;
	for (auto& w : eal_words)
		eal_argv.push_back(w.data());
	if (rte_eal_init(int(eal_argv.size()), eal_argv.data()) < 0) {
		std::cerr << "portcullisd: EAL init failed: " << rte_strerror(rte_errno) << "\n";
		return exit_runtime;
	}
	// Lets dpdk-dumpcap / dpdk-pdump (secondary processes with the same --file-prefix) capture what the
	// ports receive and send; see the capture note above main for what made it crash before.
	const std::string no_capture = s.pdump ? capture_unavailable() : "";
	bool pdump = s.pdump && no_capture.empty();
	if (pdump && rte_pdump_init() != 0) {
		std::fprintf(stderr, "portcullisd: packet capture (rte_pdump) not available: %s\n", rte_strerror(rte_errno));
		pdump = false;
	}

	const int outside = dp::resolve_port(s.outside), inside_port = dp::resolve_port(s.inside);
	if (outside < 0 || inside_port < 0 || outside == inside_port || outside >= int(dp::max_ports) ||
	    inside_port >= int(dp::max_ports)) {
		std::cerr << "portcullisd: need two distinct ports (outside '" << s.outside << "', inside '" << s.inside
		          << "'); the EAL found " << rte_eth_dev_count_avail() << "\n";
		rte_eal_cleanup();
		return exit_config;
	}

	std::vector<unsigned> worker_lcores;
	unsigned lcore;
	RTE_LCORE_FOREACH_WORKER(lcore) worker_lcores.push_back(lcore);
	const bool worker_on_main = worker_lcores.empty();
	uint32_t nworkers = worker_on_main ? 1 : std::min<uint32_t>(s.workers, uint32_t(worker_lcores.size()));
	if (nworkers < s.workers)
		std::fprintf(stderr, "portcullisd: %u worker(s), not %u: eal.args gives %zu lcore(s) besides the main one\n",
		             nworkers, s.workers, worker_lcores.size());
	// Each worker transmits on a TX queue of its own (a TX queue is not thread-safe): the port with the
	// fewest TX queues bounds the workers. RX queues do not: software distribution covers the shortfall.
	{
		std::string why;
		const uint32_t fit = dp::max_workers_for({uint16_t(outside), uint16_t(inside_port)}, nworkers, why);
		if (fit < nworkers) {
			std::fprintf(stderr, "portcullisd: %u worker(s), not %u: %s\n", fit, nworkers, why.c_str());
			nworkers = fit;
		}
	}
	s.ports.queues = nworkers;
	s.ports.symmetric_rss = s.rss == "symmetric";
	rte_mempool* pool = nullptr;
	std::vector<dp::port_state> ports;
	const int drop_port = s.drops.empty() ? -1 : dp::resolve_port(s.drops);
	if (!s.drops.empty() && (drop_port < 0 || drop_port >= int(dp::max_ports) || drop_port == outside ||
	                         drop_port == inside_port)) {
		std::cerr << "portcullisd: ports.drops '" << s.drops << "' is not a third port the EAL knows\n";
		rte_eal_cleanup();
		return exit_config;
	}
	std::vector<uint16_t> port_ids = {uint16_t(outside), uint16_t(inside_port)};
	if (drop_port >= 0)
		port_ids.push_back(uint16_t(drop_port));
	if (auto err = dp::start_ports(port_ids, s.ports, pool, ports); !err.empty()) {
		std::cerr << "portcullisd: " << err << "\n";
		rte_eal_cleanup();
		return exit_runtime;
	}
	const dp::worker_plan plan = dp::plan_workers(ports[0], ports[1], s.mode == "replay", nworkers);
	if (!plan.error.empty()) {
		std::cerr << "portcullisd: " << plan.error << "\n";
		dp::stop_ports(ports);
		rte_eal_cleanup();
		return exit_runtime;
	}
	std::vector<rte_ring*> handoff;
	if (plan.distribute) {
		std::string err;
		handoff = dp::make_handoff_rings(nworkers, s.handoff_ring, "portcullis_inbox", err);
		if (handoff.empty()) {
			std::cerr << "portcullisd: " << err << "\n";
			dp::stop_ports(ports);
			rte_eal_cleanup();
			return exit_runtime;
		}
	}
	for (const auto& p : ports)
		std::printf("portcullisd: port %s (%s): %u RX queue(s)%s, %u TX queue(s)\n", p.name.c_str(), p.driver.c_str(),
		            p.rx_queues, p.symmetric_rss ? " by symmetric RSS on IP addresses" : "", p.tx_queues);
	if (pdump)
		std::printf("portcullisd: capture: dpdk-dumpcap --file-prefix=%s -i %s (any port above)\n",
		            std::filesystem::path(rte_eal_get_runtime_dir()).filename().c_str(), ports[0].name.c_str());
	else if (!no_capture.empty())
		std::printf("portcullisd: capture: dpdk-dumpcap cannot attach: %s (docs/threat-model.md)\n", no_capture.c_str());
	if (nworkers > 1)
		std::printf("portcullisd: %s\n", plan.nic_rss ? "flows spread by the NICs (RSS): no handoffs"
		                                             : "flows spread in software: the workers polling a port hand "
		                                               "each packet to the worker owning its addresses");
	{
		// Mbufs sit in RX and TX rings, in the inboxes and in the per-lcore caches; a pool smaller than
		// that runs dry under load, and the NIC drops (imissed) with no counter of ours saying why.
		uint64_t need = uint64_t(s.ports.mbuf_cache) * (nworkers + 1);
		for (const auto& p : ports)
			need += uint64_t(p.rx_queues) * s.ports.rx_descriptors + uint64_t(p.tx_queues) * s.ports.tx_descriptors;
		need += uint64_t(handoff.size()) * rte_align32pow2(s.handoff_ring);
		if (need > s.ports.mbufs)
			std::fprintf(stderr, "portcullisd: warning: queues.mbufs = %u, but queues, inboxes and caches can hold "
			             "%lu; raise it (or lower the descriptors or queues.handoff-ring)\n",
			             s.ports.mbufs, (unsigned long)need);
	}

	std::vector<dp::worker_config> configs;
	for (uint32_t w = 0; w < nworkers; ++w) {
		dp::worker_config wc;
		wc.index = w;
		wc.burst = s.burst;
		wc.flows.capacity = std::max<uint32_t>(1, s.flow_capacity / nworkers);
		wc.flows.policy = s.full_policy == "drop" ? flow::full_policy::drop : flow::full_policy::evict_embryonic;
		wc.flows.idle = s.idle;
		wc.flows.tsc_hz = rte_get_tsc_hz();
		wc.tcp_loose_pickup = s.tcp_loose_pickup;
		wc.pass_other_l2 = s.pass_other_l2;
		wc.send_rejects = s.send_rejects;
		wc.log_rate = s.log_rate;
		wc.drop_port = drop_port;
		wc.inside4 = inside.src4;
		wc.inside6 = inside.src6;
		wc.queues = plan.queues[w];
		wc.handoff = handoff;
		configs.push_back(std::move(wc));
	}
	auto rt = std::make_unique<portcullis::control::runtime>(
		std::move(configs), std::move(*parsed.rules),
		s.classifier == "ours" ? portcullis::classify::backend::ours : portcullis::classify::backend::rte_acl);
	if (!rt->error().empty()) {
		std::cerr << "portcullisd: " << rt->error() << "\n";
		rt.reset();
		dp::free_handoff_rings(handoff);
		dp::stop_ports(ports);
		rte_eal_cleanup();
		return exit_config;
	}
	rt->set_configured_file(s.rules_file);
	rt->abandon_pushes_when(g_stop);
	rt->set_log([](const std::string& line) {
		std::printf("portcullisd: %s\n", line.c_str());
		std::fflush(stdout);
	});
	// Declared before the control socket and the exporter, which probe it, so that it outlives them.
	std::unique_ptr<portcullis::etcd::follower> rules_feed;
	portcullis::control::rules_feed_probe feed_probe;
	if (!s.rules_watch.empty()) {
		rules_feed = std::make_unique<portcullis::etcd::follower>(watch);
		feed_probe = [&f = *rules_feed] {
			return portcullis::control::rules_feed_status{f.where().url(), f.watching(), f.state(), f.revision()};
		};
		std::printf("portcullisd: rules: following %s\n", watch.url().c_str());
		std::fflush(stdout);
	}
	std::unique_ptr<portcullis::control::server> control_server;
	if (!s.control_socket.empty()) {
		portcullis::control::server_config sc;
		sc.socket_path = s.control_socket;
		sc.group = s.control_group;
		sc.rules_feed = feed_probe;
		control_server = std::make_unique<portcullis::control::server>(*rt, sc);
		if (!control_server->error().empty()) {
			std::cerr << "portcullisd: control socket: " << control_server->error() << "\n";
			control_server.reset();
			rt.reset();
			dp::free_handoff_rings(handoff);
			dp::stop_ports(ports);
			rte_eal_cleanup();
			return exit_config;
		}
	}
	portcullis::control::attach_telemetry(*rt);  // dpdk-telemetry.py: /portcullis/stats, /rules, /flows
	portcullis::control::drop_log rule_log(s.log_target == "syslog" ? portcullis::control::log_target::syslog_json
	                                                                : portcullis::control::log_target::stdout_json);
	std::unique_ptr<portcullis::metrics::exporter> exporter;
	if (!s.metrics_listen.empty()) {
		portcullis::metrics::exporter_options mo;
		mo.listen = s.metrics_listen;
		mo.port_names[ports[0].port] = "outside";
		mo.port_names[ports[1].port] = "inside";
		mo.rules_feed = feed_probe;
		auto started = portcullis::metrics::exporter::start(*rt, mo);
		if (!started.running) {
			// Metrics are an aid, not the firewall: run without them rather than not at all.
			std::cerr << "portcullisd: metrics exporter not started: " << started.error << "\n";
		} else {
			exporter = std::move(started.running);
			std::printf("portcullisd: metrics on http://%s/metrics\n", s.metrics_listen.c_str());
		}
	}
	auto& workers = rt->workers();
	const dp::compiled_policy& first = rt->policy();
	std::printf("portcullisd: %u worker(s), ports %s (outside) and %s (inside), %zu rules (generation 1), "
	            "classifier %s %zu bytes, compiled in %.2f ms\n",
	            nworkers, ports[0].name.c_str(), ports[1].name.c_str(), first.rules.rules.size(), s.classifier.c_str(),
	            first.classifier[0]->memory_bytes() + first.classifier[1]->memory_bytes(), first.compile_ms);
	std::printf("portcullisd: rules: generation 1 active: %zu rules, digest %s, source config %s\n",
	            first.rules.rules.size(), rt->digest().c_str(), rt->source().file.c_str());
	std::fflush(stdout);

	// The control loop: on the main lcore, or on a thread of its own when the worker has the main lcore.
	auto control = [&] {
		const auto start = std::chrono::steady_clock::now();
		auto last_stats = start;
		auto last_rx_change = start;
		uint64_t last_rx = 0;
		while (!g_stop.load()) {
			// The control socket's poll doubles as the loop's 20 ms pause.
			if (control_server)
				control_server->poll(20);
			else
				std::this_thread::sleep_for(std::chrono::milliseconds(20));
			if (g_reload.exchange(false) && !g_stop.load())
				reload_rules(*rt);
			if (rules_feed && !g_stop.load())
				apply_from_etcd(*rt, *rules_feed, s.rules_file);
			rt->housekeeping(rte_rdtsc());
			rule_log.flush(*rt);
			const auto now = std::chrono::steady_clock::now();
			const uint64_t rx = sum_rx(workers);
			if (rx != last_rx) {
				last_rx = rx;
				last_rx_change = now;
			}
			if (s.exit_when_idle_ms && rx > 0 &&
			    now - last_rx_change > std::chrono::milliseconds(s.exit_when_idle_ms))
				g_stop.store(true);
			if (s.duration > 0 && now - start > std::chrono::duration<double>(s.duration))
				g_stop.store(true);
			if (s.stats_interval > 0 && now - last_stats > std::chrono::duration<double>(s.stats_interval)) {
				last_stats = now;
				print_counters(*rt, ports, stdout);
			}
		}
	};

	set_capture_rcu(rt->rcu());
	if (worker_on_main) {
		std::thread control_thread(control);
		workers[0]->run(g_stop);
		control_thread.join();
	} else {
		for (uint32_t w = 0; w < nworkers; ++w)
			rte_eal_remote_launch(worker_main, workers[w].get(), worker_lcores[w]);
		control();
		rte_eal_mp_wait_lcore();
	}

	std::printf("portcullisd: stopped; final counters\n");
	print_counters(*rt, ports, stdout);
	rule_log.flush(*rt);
	portcullis::control::detach_telemetry();
	if (pdump)
		rte_pdump_uninit();
	set_capture_rcu(nullptr);  // the workers are offline: no removal has anything to wait for
	exporter.reset();        // both before the runtime they read
	control_server.reset();
	rt.reset();
	dp::free_handoff_rings(handoff);  // with the packets still in them, now that no worker runs
	dp::stop_ports(ports);
	rte_eal_cleanup();
	return exit_ok;
}
