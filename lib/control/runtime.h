// The running firewall as the control plane sees it: the workers, the active policy, and the hot swap.
//
// Hot swap: push() parses nothing and touches no packet. It compiles the new rule set off to the side
// (on the calling thread), publishes it with one atomic pointer store, waits until every online worker
// has passed a quiescent point (rte_rcu QSBR: each worker reports one per poll round, so the wait is about
// one burst), and only then frees the old policy. Workers pick the new policy up at their next burst; a
// flow judged by an older generation is re-checked lazily on its next packet (see dataplane.h). A rule
// set that fails to compile changes nothing: the running one stays.
//
// Per-rule counters live in the policy of their generation; at a swap their totals are carried over by
// counter name, so a rule that survives a push keeps counting up (Prometheus counters stay monotonic).
//
// Threads: every member function is for the control thread (one at a time); workers only read the
// published policy pointer. Other control-plane threads (the metrics exporter's) may read the policy,
// rule counters and swap statistics while holding reader_lock(): push() and flush take it exclusively
// around the moments they change or free them. Worker counters and flow-table counters are plain
// per-core numbers that anyone may read at any time.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/dataplane.h"
#include "rules/rules.h"

struct rte_rcu_qsbr;

namespace portcullis::control {

struct swap_report {
	bool ok = false;
	uint64_t generation = 0;     // the active generation after the call
	size_t rules = 0;
	double compile_ms = 0;
	double quiesce_us = 0;       // publish to every worker past a quiescent point
	std::vector<rules::diagnostic> errors;  // rule errors (file:line:column)
	std::string error;           // anything else
};

struct rule_totals {
	uint64_t packets = 0, bytes = 0, last_hit_tsc = 0;
};

class runtime {
public:
	// Compiles `initial` as generation 1. Check error() after construction.
	runtime(std::vector<dataplane::worker_config> workers, rules::ruleset initial, classify::backend backend);
	~runtime();
	runtime(const runtime&) = delete;
	runtime& operator=(const runtime&) = delete;

	const std::string& error() const { return error_; }

	swap_report push(rules::ruleset rs);
	swap_report push_file(const std::string& path, const rules::parse_options& opts = {});
	swap_report push_text(const std::string& text, const std::string& name, const rules::parse_options& opts = {});

	// Expires idle flows in every worker's table (budget buckets each) and recycles entries.
	void housekeeping(uint64_t now_tsc, uint32_t budget = 4096);
	// Removes every flow; returns how many.
	uint64_t flush_flows();

	std::vector<std::unique_ptr<dataplane::worker>>& workers() { return workers_; }
	const std::vector<std::unique_ptr<dataplane::worker>>& workers() const { return workers_; }
	const dataplane::compiled_policy& policy() const { return *active_.load(std::memory_order_relaxed); }
	// A rule's counters: this generation's plus what earlier generations counted under its name.
	rule_totals rule_counters(uint32_t rule) const;
	rte_rcu_qsbr* rcu() const { return rcu_; }
	std::shared_lock<std::shared_mutex> reader_lock() const { return std::shared_lock(guard_); }

	uint64_t swaps_ok() const { return swaps_ok_; }
	uint64_t swaps_failed() const { return swaps_failed_; }
	double last_swap_unix() const { return last_swap_unix_; }
	double last_compile_seconds() const { return last_compile_seconds_; }
	double last_quiesce_us() const { return last_quiesce_us_; }

private:
	classify::backend backend_;
	std::string error_;
	rte_rcu_qsbr* rcu_ = nullptr;
	std::atomic<dataplane::compiled_policy*> active_{nullptr};
	std::unique_ptr<dataplane::compiled_policy> owned_;
	std::vector<std::unique_ptr<dataplane::worker>> workers_;
	std::map<std::string, rule_totals> carried_;
	mutable std::shared_mutex guard_;
	uint64_t next_generation_ = 1;
	uint64_t swaps_ok_ = 0, swaps_failed_ = 0;
	double last_swap_unix_ = 0, last_compile_seconds_ = 0, last_quiesce_us_ = 0;
};

} // namespace portcullis::control
