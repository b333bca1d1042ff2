// The appliance's start and stop steps (the run phase is in control_loop.cc); see appliance.h.
// Everything here runs on the process's main thread, before the workers start or after they stopped.
#include "daemon/appliance.h"

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_pdump.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "control/telemetry.h"
#include "daemon/eal.h"
#include "daemon/xdp_check.h"
#include "daemon/pdump_callbacks.h"
#include "daemon/report.h"
#include "daemon/signals.h"

namespace portcullis::daemon {

namespace dp = dataplane;

namespace {

// Mbufs sit in RX and TX rings, in the inboxes and in the per-lcore caches; a pool smaller than that
// runs dry under load, and the NIC drops (imissed) with no counter of ours saying why.
uint64_t mbufs_needed(const settings& s, const std::vector<dp::port_state>& ports, uint32_t workers,
                      size_t inboxes)
{
	uint64_t need = uint64_t(s.ports.mbuf_cache) * (workers + 1);
	for (const auto& p : ports)
		need += uint64_t(p.rx_queues) * s.ports.rx_descriptors + uint64_t(p.tx_queues) * s.ports.tx_descriptors;
	need += uint64_t(inboxes) * rte_align32pow2(s.handoff_ring);
	return need;
}

} // namespace

appliance::appliance(settings s) : s_(std::move(s)) {}

appliance::~appliance() { release(); }

int appliance::run()
{
	if (const outcome done = configure())
		return *done;
	install_signal_handlers();
	for (auto step : {&appliance::start_eal, &appliance::start_ports, &appliance::start_runtime,
	                  &appliance::start_sync, &appliance::start_control})
		if (const outcome failed = (this->*step)()) {
			release();
			return *failed;
		}
	start_metrics();
	announce();
	serve();
	stop();
	return exit_ok;
}

appliance::outcome appliance::configure()
{
	if (const std::string error = usage_error(s_); !error.empty()) {
		std::cerr << "portcullisd: " << error << "\n";
		return exit_usage;
	}
	if (!s_.rules_watch.empty()) {
		std::string error;
		if (!etcd::parse_url(s_.rules_watch, watch_, error)) {
			std::cerr << "portcullisd: rules.watch: " << error << "\n";
			return exit_usage;
		}
	}
	auto parsed = rules::parse_file(s_.rules_file);
	for (const auto& d : parsed.errors)
		std::cerr << rules::format(d) << "\n";
	if (!parsed.rules)
		return exit_config;
	if (!s_.inside_networks.empty()) {
		auto r = rules::parse_string("allow out from { " + s_.inside_networks + " }", "ports.inside-networks");
		for (const auto& d : r.errors)
			std::cerr << rules::format(d) << "\n";
		if (!r.rules)
			return exit_config;
		inside_ = r.rules->rules.at(0).match;
	}
	if (s_.check_only) {
		std::cout << s_.rules_file << ": OK, " << parsed.rules->rules.size() << " rules\n";
		return exit_ok;
	}
	initial_rules_ = std::move(parsed.rules);
	return {};
}

appliance::outcome appliance::start_eal()
{
	eal_words_ = eal_arguments(s_);
	// Each would fail the EAL's probe with a vaguer message, and a probe that fails on an interface whose
	// XDP program belongs to a running daemon detaches it: stop here instead.
	xdp_findings xdp = af_xdp_findings(eal_words_);
	xdp_locks_ = std::move(xdp.locks);  // held until the daemon exits
	for (const std::string& warning : xdp.warnings)
		std::fprintf(stderr, "portcullisd: af_xdp: warning: %s\n", warning.c_str());
	if (!xdp.problems.empty()) {
		for (const std::string& problem : xdp.problems)
			std::fprintf(stderr, "portcullisd: af_xdp: %s\n", problem.c_str());
		return exit_config;
	}
	std::vector<char*> eal_argv;
	for (auto& w : eal_words_)
		eal_argv.push_back(w.data());
	if (rte_eal_init(int(eal_argv.size()), eal_argv.data()) < 0) {
		std::cerr << "portcullisd: EAL init failed: " << rte_strerror(rte_errno) << "\n";
		return exit_runtime;
	}
	eal_up_ = true;
	// Lets dpdk-dumpcap / dpdk-pdump (secondary processes with the same --file-prefix) capture what the
	// ports receive and send; pdump_callbacks.cc tells what made it crash before.
	no_capture_ = s_.pdump ? capture_unavailable() : "";
	pdump_ = s_.pdump && no_capture_.empty();
	if (pdump_ && rte_pdump_init() != 0) {
		std::fprintf(stderr, "portcullisd: packet capture (rte_pdump) not available: %s\n", rte_strerror(rte_errno));
		pdump_ = false;
	}
	return {};
}

appliance::outcome appliance::start_ports()
{
	outside_ = dp::resolve_port(s_.outside);
	inside_port_ = dp::resolve_port(s_.inside);
	if (outside_ < 0 || inside_port_ < 0 || outside_ == inside_port_ || outside_ >= int(dp::max_ports) ||
	    inside_port_ >= int(dp::max_ports)) {
		std::cerr << "portcullisd: need two distinct ports (outside '" << s_.outside << "', inside '" << s_.inside
		          << "'); the EAL found " << rte_eth_dev_count_avail() << "\n";
		return exit_config;
	}

	unsigned lcore;
	RTE_LCORE_FOREACH_WORKER(lcore) worker_lcores_.push_back(lcore);
	worker_on_main_ = worker_lcores_.empty();
	nworkers_ = worker_on_main_ ? 1 : std::min<uint32_t>(s_.workers, uint32_t(worker_lcores_.size()));
	if (nworkers_ < s_.workers)
		std::fprintf(stderr, "portcullisd: %u worker(s), not %u: eal.args gives %zu lcore(s) besides the main one\n",
		             nworkers_, s_.workers, worker_lcores_.size());
	// Each worker transmits on a TX queue of its own (a TX queue is not thread-safe): the port with the
	// fewest TX queues bounds the workers. RX queues do not: software distribution covers the shortfall.
	{
		std::string why;
		const uint32_t fit = dp::max_workers_for({uint16_t(outside_), uint16_t(inside_port_)}, nworkers_, why);
		if (fit < nworkers_) {
			std::fprintf(stderr, "portcullisd: %u worker(s), not %u: %s\n", fit, nworkers_, why.c_str());
			nworkers_ = fit;
		}
	}
	s_.ports.queues = nworkers_;
	s_.ports.symmetric_rss = s_.rss == "symmetric";
	drop_port_ = s_.drops.empty() ? -1 : dp::resolve_port(s_.drops);
	if (!s_.drops.empty() && (drop_port_ < 0 || drop_port_ >= int(dp::max_ports) || drop_port_ == outside_ ||
	                          drop_port_ == inside_port_)) {
		std::cerr << "portcullisd: ports.drops '" << s_.drops << "' is not a third port the EAL knows\n";
		return exit_config;
	}
	std::vector<uint16_t> port_ids = {uint16_t(outside_), uint16_t(inside_port_)};
	if (drop_port_ >= 0)
		port_ids.push_back(uint16_t(drop_port_));
	rte_mempool* pool = nullptr;
	if (auto err = dp::start_ports(port_ids, s_.ports, pool, ports_); !err.empty()) {
		std::cerr << "portcullisd: " << err << "\n";
		return exit_runtime;
	}
	ports_up_ = true;
	plan_ = dp::plan_workers(ports_[0], ports_[1], s_.mode == "replay", nworkers_);
	if (!plan_.error.empty()) {
		std::cerr << "portcullisd: " << plan_.error << "\n";
		return exit_runtime;
	}
	if (plan_.distribute) {
		std::string err;
		handoff_ = dp::make_handoff_rings(nworkers_, s_.handoff_ring, "portcullis_inbox", err);
		if (handoff_.empty()) {
			std::cerr << "portcullisd: " << err << "\n";
			return exit_runtime;
		}
	}

	for (const auto& p : ports_) {
		std::printf("portcullisd: port %s (%s): %u RX queue(s)%s, %u TX queue(s)\n", p.name.c_str(), p.driver.c_str(),
		            p.rx_queues, p.symmetric_rss ? " by symmetric RSS on IP addresses" : "", p.tx_queues);
		// DPDK's AF_PACKET driver asks the kernel to reassemble (PACKET_FANOUT_FLAG_DEFRAG): say what that costs.
		if (p.driver == "net_af_packet")
			std::printf("portcullisd: port %s: the kernel reassembles IPv4 fragments in front of net_af_packet, so the "
			            "fragment checks do not see them and a datagram longer than a ring frame is cut and dropped; "
			            "net_af_xdp passes them as sent (docs/threat-model.md)\n",
			            p.name.c_str());
	}
	if (pdump_)
		std::printf("portcullisd: capture: dpdk-dumpcap --file-prefix=%s -i %s (any port above)\n",
		            std::filesystem::path(rte_eal_get_runtime_dir()).filename().c_str(), ports_[0].name.c_str());
	else if (!no_capture_.empty())
		std::printf("portcullisd: capture: dpdk-dumpcap cannot attach: %s (docs/threat-model.md)\n", no_capture_.c_str());
	if (nworkers_ > 1)
		std::printf("portcullisd: %s\n", plan_.nic_rss ? "flows spread by the NICs (RSS): no handoffs"
		                                               : "flows spread in software: the workers polling a port hand "
		                                                 "each packet to the worker owning its addresses");
	if (const uint64_t need = mbufs_needed(s_, ports_, nworkers_, handoff_.size()); need > s_.ports.mbufs)
		std::fprintf(stderr, "portcullisd: warning: queues.mbufs = %u, but queues, inboxes and caches can hold "
		             "%lu; raise it (or lower the descriptors or queues.handoff-ring)\n",
		             s_.ports.mbufs, (unsigned long)need);
	return {};
}

appliance::outcome appliance::start_runtime()
{
	std::vector<dp::worker_config> configs;
	for (uint32_t w = 0; w < nworkers_; ++w) {
		dp::worker_config wc;
		wc.index = w;
		wc.burst = s_.burst;
		wc.flows.capacity = std::max<uint32_t>(1, s_.flow_capacity / nworkers_);
		wc.flows.policy = s_.full_policy == "drop" ? flow::full_policy::drop : flow::full_policy::evict_embryonic;
		wc.flows.idle = s_.idle;
		wc.flows.tsc_hz = rte_get_tsc_hz();
		wc.tcp_loose_pickup = s_.tcp_loose_pickup;
		wc.tcp_window = s_.tcp_window == "off"     ? flow::window_mode::off
		                : s_.tcp_window == "loose" ? flow::window_mode::loose
		                                           : flow::window_mode::strict;
		wc.syncookies.mode = s_.syncookies == "always"  ? dp::syncookie_mode::always
		                     : s_.syncookies == "never" ? dp::syncookie_mode::never
		                                                : dp::syncookie_mode::adaptive;
		wc.syncookies.rate = s_.syncookies_rate;
		wc.syncookies.half_open = s_.syncookies_half_open;
		wc.syncookies.mss = uint16_t(s_.syncookie_mss);
		wc.syncookies.window_scale = uint8_t(s_.syncookie_wscale);
		wc.pass_other_l2 = s_.pass_other_l2;
		wc.send_rejects = s_.send_rejects;
		wc.drop_martians = s_.drop_martians;
		wc.drop_land = s_.drop_land;
		wc.log_rate = s_.log_rate;
		wc.drop_port = drop_port_;
		wc.inside4 = inside_.src4;
		wc.inside6 = inside_.src6;
		wc.queues = plan_.queues[w];
		wc.handoff = handoff_;
		if (!s_.sync_listen.empty()) {
			wc.forwarding = &forwarding_;
			wc.sync_installs = true;
			wc.sync_defer_ms = s_.sync_defer_ms;
		}
		configs.push_back(std::move(wc));
	}
	rt_ = std::make_unique<control::runtime>(
		std::move(configs), std::move(*initial_rules_),
		s_.classifier == "ours" ? classify::backend::ours : classify::backend::rte_acl);
	initial_rules_.reset();
	if (!rt_->error().empty()) {
		std::cerr << "portcullisd: " << rt_->error() << "\n";
		return exit_config;
	}
	rt_->set_configured_file(s_.rules_file);
	rt_->abandon_pushes_when(stop_requested);
	rt_->set_log([](const std::string& line) {
		std::printf("portcullisd: %s\n", line.c_str());
		std::fflush(stdout);
	});
	return {};
}

appliance::outcome appliance::start_sync()
{
	if (s_.sync_listen.empty())
		return {};
	// A peer's flow is installed in the worker that owns its addresses by software distribution's hash;
	// NIC RSS spreads by its own (Toeplitz) hash, which the sync thread does not compute.
	if (nworkers_ > 1 && plan_.nic_rss) {
		std::cerr << "portcullisd: sync: with " << nworkers_ << " workers on NIC RSS queues a synced flow could "
		          << "land on the wrong worker; use one worker, or queues.rss = plain (flows spread in software)\n";
		return exit_config;
	}
	sync::sync_config sc;
	sc.listen = s_.sync_listen;
	sc.peers = s_.sync_peers;
	{
		std::ifstream in(s_.sync_key_file, std::ios::binary);
		std::ostringstream key;
		key << in.rdbuf();
		if (!in) {
			std::cerr << "portcullisd: sync.key-file " << s_.sync_key_file << ": cannot read it\n";
			return exit_config;
		}
		sc.key = key.str();
		while (!sc.key.empty() && (sc.key.back() == '\n' || sc.key.back() == '\r'))
			sc.key.pop_back();
	}
	sc.initial = s_.sync_role == "standby" ? sync::role::standby : sync::role::active;
	sc.interval_ms = s_.sync_interval_ms;
	sc.refresh_s = s_.sync_refresh;
	sc.idle = s_.idle;
	std::vector<sync::table_port> tables;
	for (const auto& w : rt_->workers())
		tables.push_back({&w->flows(), &w->installs()});
	sync_ = std::make_unique<sync::engine>(std::move(sc), std::move(tables), &dp::owner_of_flow, forwarding_);
	if (const std::string err = sync_->start(); !err.empty()) {
		std::cerr << "portcullisd: sync: " << err << "\n";
		sync_.reset();
		return exit_config;
	}
	sync_probe_.status = [&e = *sync_] { return e.status(); };
	sync_probe_.promote = [&e = *sync_] {
		std::string what = e.promote();
		std::printf("portcullisd: sync: %s\n", what.c_str());
		std::fflush(stdout);
		return what;
	};
	std::printf("portcullisd: sync: %s on %s with %zu peer(s)%s\n", s_.sync_role.c_str(), s_.sync_listen.c_str(),
	            s_.sync_peers.size(), s_.sync_role == "standby" ? ": forwarding nothing until `portcullis sync promote`" : "");
	std::fflush(stdout);
	return {};
}

appliance::outcome appliance::start_control()
{
	if (!s_.rules_watch.empty()) {
		rules_feed_ = std::make_unique<etcd::follower>(watch_);
		feed_probe_ = [&f = *rules_feed_] {
			return control::rules_feed_status{f.where().url(), f.watching(), f.state(), f.revision()};
		};
		std::printf("portcullisd: rules: following %s\n", watch_.url().c_str());
		std::fflush(stdout);
	}
	if (!s_.control_socket.empty()) {
		control::server_config sc;
		sc.socket_path = s_.control_socket;
		sc.group = s_.control_group;
		sc.rules_feed = feed_probe_;
		sc.sync = sync_probe_;
		control_server_ = std::make_unique<control::server>(*rt_, sc);
		if (!control_server_->error().empty()) {
			std::cerr << "portcullisd: control socket: " << control_server_->error() << "\n";
			return exit_config;
		}
	}
	control::attach_telemetry(*rt_);  // dpdk-telemetry.py: /portcullis/stats, /rules, /flows
	telemetry_attached_ = true;
	rule_log_ = std::make_unique<control::drop_log>(s_.log_target == "syslog" ? control::log_target::syslog_json
	                                                                          : control::log_target::stdout_json);
	return {};
}

void appliance::start_metrics()
{
	if (s_.metrics_listen.empty())
		return;
	metrics::exporter_options mo;
	mo.listen = s_.metrics_listen;
	mo.port_names[ports_[0].port] = "outside";
	mo.port_names[ports_[1].port] = "inside";
	mo.rules_feed = feed_probe_;
	mo.sync = sync_probe_;
	auto started = metrics::exporter::start(*rt_, mo);
	if (!started.running) {
		// Metrics are an aid, not the firewall: run without them rather than not at all.
		std::cerr << "portcullisd: metrics exporter not started: " << started.error << "\n";
		return;
	}
	exporter_ = std::move(started.running);
	std::printf("portcullisd: metrics on http://%s/metrics\n", s_.metrics_listen.c_str());
}

void appliance::announce() const
{
	const dp::compiled_policy& first = rt_->policy();
	std::printf("portcullisd: %u worker(s), ports %s (outside) and %s (inside), %zu rules (generation 1), "
	            "classifier %s %zu bytes, compiled in %.2f ms\n",
	            nworkers_, ports_[0].name.c_str(), ports_[1].name.c_str(), first.rules.rules.size(),
	            s_.classifier.c_str(), first.classifier[0]->memory_bytes() + first.classifier[1]->memory_bytes(),
	            first.compile_ms);
	std::printf("portcullisd: rules: generation 1 active: %zu rules, digest %s, source config %s\n",
	            first.rules.rules.size(), rt_->digest().c_str(), rt_->source().file.c_str());
	std::fflush(stdout);
}

void appliance::stop()
{
	std::printf("portcullisd: stopped; final counters\n");
	print_counters(*rt_, ports_, stdout);
	rule_log_->flush(*rt_);
	release();
}

// The order matters: nothing may read the runtime once it is gone (telemetry, the exporter, the control
// socket), the removal wrappers must not wait on its RCU variable after it is freed, and the inboxes are
// emptied only once no worker runs, with the packets still in them going back to the ports' pool.
void appliance::release()
{
	if (telemetry_attached_) {
		control::detach_telemetry();
		telemetry_attached_ = false;
	}
	if (pdump_) {
		rte_pdump_uninit();
		pdump_ = false;
	}
	set_capture_rcu(nullptr);  // the workers are offline: no removal has anything to wait for
	exporter_.reset();         // both before the runtime they read
	control_server_.reset();
	sync_probe_ = {};
	sync_.reset();  // stops its thread; before the tables it reads
	rt_.reset();
	dp::free_handoff_rings(handoff_);
	if (ports_up_) {
		dp::stop_ports(ports_);
		ports_up_ = false;
	}
	if (eal_up_) {
		rte_eal_cleanup();
		eal_up_ = false;
	}
	rule_log_.reset();
	feed_probe_ = nullptr;
	rules_feed_.reset();
}

} // namespace portcullis::daemon
