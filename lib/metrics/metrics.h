// The Prometheus exporter: the firewall's counters as Prometheus metrics, served over HTTP (/metrics)
// and rendered as text for the CLI and tests.
//
// Nothing is copied or accumulated on the data path: every scrape walks the workers and sums their
// per-core counter rows (plain 64-bit loads; a sum may be a few packets behind a running worker, never
// torn), reads each flow table's relaxed atomics, and reads the policy, the rule counters and the swap
// statistics under runtime::reader_lock(), which a hot swap takes exclusively only around freeing the
// old policy. Metric names and labels are a public interface: see docs/monitoring/README.md, and add
// rather than rename.
//
// Invariants: every label set a family can have is always present (a drop reason that never happened
// is exported as 0), so rate() and dashboards never see series appear out of nowhere; counters only
// go up while the runtime lives (rule counters survive hot swaps, see control/runtime.h), except the
// portcullis_set_* counters: a push or reload reads every file set again and drops its runtime changes
// (docs/sets.md), and the set's counters start again from 0 with it, which rate() takes as a counter
// reset (runtime.h carries rule counters over at the swap; the exporter, which sees only what it
// scrapes, could not carry set counters without losing what happened since its last scrape); TSC values
// become seconds with rte_get_tsc_hz() and timestamps become unix time through one (tsc, wall clock)
// pair taken when the exporter starts.
//
// Threads: start() and the destructor on the control thread, while the runtime is alive (destroy the
// exporter first). Scrapes run on prometheus-cpp's HTTP threads, concurrently with the workers and the
// control thread. render() may be called from any thread holding no reader_lock() of its own.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "control/feed.h"
#include "control/sync_probe.h"

namespace prometheus {
class Exposer;
struct MetricFamily;
} // namespace prometheus

namespace portcullis::control {
class runtime;
}

namespace portcullis::metrics {

inline constexpr const char* default_listen = "127.0.0.1:9469";

struct exporter_options {
	// Where to listen, as civetweb takes it: "ADDRESS:PORT" ("[::1]:9469" for IPv6); port 0 picks a free
	// one (see exporter::port()). Loopback by default: the counters name rules, files and networks, so
	// exposing them beyond the host is the operator's decision.
	std::string listen = default_listen;
	// HTTP threads; one scrape is one pass over the counters, so two are plenty.
	size_t threads = 2;
	// Names for the `port` label by DPDK port id (e.g. "outside", "inside"); ports without one are
	// labelled with their id.
	std::map<uint16_t, std::string> port_names;
	// The rule feed the daemon follows (rules.watch), if any: portcullis_rules_watch_* gauges.
	control::rules_feed_probe rules_feed;
	// Flow-state sync, if on: portcullis_sync_* families.
	control::sync_probe sync;
};

// Turns TSC readings into unix time: one (tsc, wall clock) pair and the TSC frequency.
struct clock_anchor {
	uint64_t tsc = 0;
	double unix_seconds = 0;
	double tsc_hz = 1;

	static clock_anchor now();  // needs the EAL (rte_get_tsc_hz)
	double to_unix(uint64_t t) const { return unix_seconds + (double(t) - double(tsc)) / tsc_hz; }
};

// Every metric family, summed over the workers, as of now. `previous_busy` (optional, one entry per
// worker) holds the busy/idle TSC of the previous call: portcullis_worker_busy_ratio then covers the
// interval since that call instead of the whole run, and the vector is updated.
struct busy_sample {
	uint64_t busy_tsc = 0, idle_tsc = 0;
	double share = 0;  // the ratio exported for the interval that ended here
};
std::vector<prometheus::MetricFamily> collect(const control::runtime& rt, const exporter_options& opt,
                                              const clock_anchor& clock,
                                              std::vector<busy_sample>* previous_busy = nullptr);

// The text exposition format (version 0.0.4) of collect(): for `portcullis stats --prometheus` and
// tests. portcullis_worker_busy_ratio covers the whole run here.
std::string render(const control::runtime& rt, const exporter_options& opt = {});

class exporter {
public:
	struct start_result {
		std::unique_ptr<exporter> running;  // null on failure
		std::string error;                   // why, e.g. "cannot listen on 127.0.0.1:9469: ..."
	};
	// Listens on opt.listen and serves /metrics until destroyed. Never throws: a bad address or a port
	// in use comes back as an error, and the daemon decides whether to run without metrics.
	static start_result start(const control::runtime& rt, const exporter_options& opt = {});

	~exporter();
	exporter(const exporter&) = delete;
	exporter& operator=(const exporter&) = delete;

	// The port actually bound (the chosen one when opt.listen asked for port 0).
	uint16_t port() const { return port_; }

private:
	class collector;
	exporter() = default;

	std::shared_ptr<collector> collector_;
	std::unique_ptr<prometheus::Exposer> exposer_;
	uint16_t port_ = 0;
};

} // namespace portcullis::metrics
