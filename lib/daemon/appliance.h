// The firewall appliance's lifecycle, which portcullisd runs: configure (check the settings, parse the
// rules file), start the EAL, the ports, the workers (the runtime compiles the rules), the control plane
// (etcd follower, control socket, telemetry, rule log) and the metrics exporter; run (workers on their
// lcores, the control loop on the main one) until asked to stop; then stop, print the final counters
// and release everything in the reverse order of the start.
//
// Each step prints what it did or why it failed, as portcullisd always has; a failed step gives the exit
// code (settings.h) and run() releases what the steps before it had set up.
//
// Threads: run() on the process's main thread (the EAL's main lcore), once. The workers run on the
// other lcores (or on the main lcore, with the control loop on a thread of its own, when eal.args gives
// none); they share nothing with the control loop but the runtime's published policy and the stop flag.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "control/drop_log.h"
#include "control/feed.h"
#include "control/runtime.h"
#include "control/server.h"
#include "control/sync_probe.h"
#include "daemon/settings.h"
#include "dataplane/ports.h"
#include "etcd/etcd.h"
#include "metrics/metrics.h"
#include "rules/match.h"
#include "rules/rules.h"

namespace portcullis::daemon {

class appliance {
public:
	explicit appliance(settings s);
	~appliance();  // releases whatever the steps set up and stop() has not
	appliance(const appliance&) = delete;
	appliance& operator=(const appliance&) = delete;

	// Every step in order; returns the process's exit code. --check stops after configure().
	int run();

private:
	// A step gives nothing when the next one may follow, else the exit code to return.
	using outcome = std::optional<int>;

	outcome configure();       // settings, rules.watch URL, rules file, ports.inside-networks; --check ends here
	outcome start_eal();       // rte_eal_init, rte_pdump
	outcome start_ports();     // port ids, worker count, ports and queues, worker plan, handoff rings
	outcome start_runtime();   // worker configs and the runtime, which compiles the rules (generation 1)
	outcome start_sync();      // flow-state sync with the peers ([sync]), when configured
	outcome start_control();   // etcd follower, control socket, telemetry, rule log
	void start_metrics();      // the Prometheus exporter; runs without it when it cannot start
	void announce() const;     // the start-up summary: workers, ports, rules, classifier
	void serve();              // launches the workers, runs the control loop until a stop (control_loop.cc)
	void control_loop();       // the main lcore's work while the workers run (control_loop.cc)
	void stop();               // the final counters, then release()
	void release();            // every resource still held, in the reverse order of the start

	settings s_;
	etcd::location watch_;
	std::optional<rules::ruleset> initial_rules_;  // parsed by configure(), handed to the runtime
	tuple_match inside_;                            // ports.inside-networks

	std::vector<std::string> eal_words_;  // rte_eal_init's argv points into these
	std::vector<int> xdp_locks_;          // af_xdp interface locks (xdp_check.h), released at exit
	bool eal_up_ = false;
	bool pdump_ = false;          // rte_pdump serves dumpcap
	std::string no_capture_;      // why dumpcap cannot attach, when it cannot
	int outside_ = -1, inside_port_ = -1, drop_port_ = -1;
	std::vector<unsigned> worker_lcores_;
	bool worker_on_main_ = false;
	uint32_t nworkers_ = 0;
	bool ports_up_ = false;
	std::vector<dataplane::port_state> ports_;
	dataplane::worker_plan plan_;
	std::vector<rte_ring*> handoff_;

	std::unique_ptr<control::runtime> rt_;
	// Flow-state sync: reads the runtime's tables, so it goes before the runtime. The workers read
	// forwarding_ (false on a standby until promoted).
	std::atomic<bool> forwarding_{true};
	std::unique_ptr<sync::engine> sync_;
	control::sync_probe sync_probe_;
	// Before the control socket and the exporter, which probe it, so that it outlives them.
	std::unique_ptr<etcd::follower> rules_feed_;
	control::rules_feed_probe feed_probe_;
	std::unique_ptr<control::server> control_server_;
	bool telemetry_attached_ = false;
	std::unique_ptr<control::drop_log> rule_log_;
	std::unique_ptr<metrics::exporter> exporter_;
};

} // namespace portcullis::daemon
