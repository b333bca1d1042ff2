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
// Where the rules come from: the configured rules file is the source of truth. It is loaded at start-up
// and again by reload() (the daemon's SIGHUP); a push from another file, or as text, is runtime only: a
// restart or a reload brings the configured file back. source() says which one is active, digest()
// identifies it.
//
// Stopping: abandon_pushes_when(flag) makes a push that finds the flag set give up without publishing:
// a daemon asked to stop keeps the rule set it had, and the push is answered as abandoned. The push looks
// at its steps (before reading, after parsing, after compiling), and hands the flag to the steps
// themselves as their cancel flag (rules::parse_options::cancel, dataplane::compile's cancel), which look
// at it every few thousand statements or rules and between partitions, classifiers and rte_acl contexts:
// a stop during a huge parse or compile waits for one such slice (one rte_acl_build, one Hyperscan
// database build at most), not for the whole step. The workers stop on their own flag meanwhile, so
// nothing is forwarded while it finishes.
//
// Threads: every member function is for the control thread (one at a time); workers only read the
// published policy pointer. Other control-plane threads (the metrics exporter's) may read the policy,
// rule counters and swap statistics while holding reader_lock(): push() and flush take it exclusively
// around the moments they change or free them. Worker counters and flow-table counters are plain
// per-core numbers that anyone may read at any time.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/dataplane.h"
#include "rules/rules.h"

struct rte_rcu_qsbr;

namespace portcullis::control {

// The daemon's control loop (daemon/control_loop.cc) runs a round every control_interval_ms: flow expiry
// (housekeeping, housekeeping_buckets buckets of each worker's table), the set adds, schedules, set
// timeouts. Benchmarks that stand in for it use the same numbers.
inline constexpr uint32_t control_interval_ms = 20;
inline constexpr uint32_t housekeeping_buckets = 4096;

struct swap_report {
	bool ok = false;
	bool abandoned = false;      // not published because the daemon is stopping (error says so)
	uint64_t generation = 0;     // the active generation after the call
	size_t rules = 0;
	std::string digest;          // of the published set (ruleset_digest)
	double compile_ms = 0;
	double quiesce_us = 0;       // publish to every worker past a quiescent point
	std::vector<rules::diagnostic> errors;  // rule errors (file:line:column)
	std::string error;           // anything else
};

// Where the active rule set came from.
enum class rule_origin : uint8_t {
	config,  // the configured rules file: at start-up, by reload(), or pushed by that file's path
	push,    // pushed from another file or as text: runtime only, a restart or reload() reverts it
	etcd,    // a revision of the etcd key the daemon follows (rules.watch): after a restart the daemon
	         // starts on the configured file and takes the key's current value again
};
std::string_view origin_name(rule_origin o);  // "config", "push", "etcd"

struct rule_source {
	rule_origin origin = rule_origin::config;
	std::string file;       // the top file read, or the name of a set pushed as text
	double since_unix = 0;  // when it was published
	int64_t revision = 0;   // origin etcd: the key's mod_revision (0 otherwise)
};

// Identity of what a rule set enforces, 16 hex digits (64-bit FNV-1a; an identity, not a security
// checksum): the defaults and, in order, each rule's matches, action, directions, log flag, counter name
// and payload conditions. File names, line numbers, comments and spacing do not count, so the same rules
// read from another path have the same digest.
std::string ruleset_digest(const rules::ruleset& rs);

// Is the rule's counter the parser's positional "ruleN" rather than a `counter NAME` of the operator's?
inline bool has_generated_counter(const rules::rule& r)
{
	return r.counter.size() > 4 && r.counter.compare(0, 4, "rule") == 0 &&
	       r.counter.find_first_not_of("0123456789", 4) == std::string::npos;
}

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

	// Compiles and publishes rs (origin push unless `from` says otherwise).
	swap_report push(rules::ruleset rs, rule_origin from = rule_origin::push);
	// Reads path: origin config when path is the configured rules file, else push.
	swap_report push_file(const std::string& path, const rules::parse_options& opts = {});
	swap_report push_text(const std::string& text, const std::string& name, const rules::parse_options& opts = {},
	                      rule_origin from = rule_origin::push);
	// Reads the configured rules file again and swaps it in (the daemon's SIGHUP). A file with errors
	// changes nothing.
	swap_report reload(const rules::parse_options& opts = {}) { return push_file(configured_file_, opts); }

	// The file a restart or reload() loads; by default the top file of the initial rule set.
	void set_configured_file(std::string path) { configured_file_ = std::move(path); }
	const std::string& configured_file() const { return configured_file_; }
	const rule_source& source() const { return source_; }
	// The etcd revision the active set was read at, recorded by its follower after a successful push.
	void set_source_revision(int64_t revision) { source_.revision = revision; }
	const std::string& digest() const { return digest_; }

	// Pushes give up, unpublished, once `stopping` is set (see the top of this file).
	void abandon_pushes_when(const std::atomic<bool>& stopping) { stopping_ = &stopping; }
	// One line per step of every push and reload (reading, compiling, published, refused, abandoned):
	// the daemon's record of rule changes.
	void set_log(std::function<void(const std::string&)> log) { log_ = std::move(log); }

	// ---- runtime set changes (docs/sets.md) ----
	// Change a file set of the active policy in place: no rule is recompiled, no flow touched. Each
	// publishes the set's new version, waits for the workers' quiescent point (as a push does) and frees
	// the old one. Changes last until the next push or reload, which read the set's file again.
	// Addresses are host-order numbers (IPv4 in the low 32 bits); a prefix is given as its range.
	struct set_report {
		bool ok = false;
		std::string error;                      // unknown set, bad file...
		std::vector<rules::diagnostic> errors;  // load: the file's errors (file:line:column)
		double publish_us = 0;                  // start of the change to the workers past it
		size_t entries = 0;                     // load: lines with an address
	};
	set_report set_add(const std::string& name, bool v6, u128 lo, u128 hi, uint64_t timeout_ms);
	set_report set_del(const std::string& name, bool v6, u128 lo, u128 hi);
	set_report set_flush(const std::string& name);
	set_report set_load(const std::string& name, const std::string& path, const rules::parse_options& opts = {});
	// Drops the set adds whose timeout passed (the control loop calls it with housekeeping).
	void expire_sets();
	// Applies what `add-to` rules queued in the workers' rings (dataplane::set_add_record): one version
	// per changed set, one quiescent wait for all of them. Records of an older policy are dropped (the
	// push read the sets' files afresh). Returns the records applied.
	uint64_t apply_set_adds();
	// Turns rules with `during` on or off as the clock says (unix seconds); flows are re-judged on their
	// next packet when one changed. Each round of the control loop.
	bool update_schedules(int64_t unix_seconds) { return owned_ && owned_->update_schedules(unix_seconds); }
	// The clock of set timeouts: milliseconds of steady_clock.
	static uint64_t set_clock_ms();

	// Expires idle flows in every worker's table (budget buckets each) and recycles entries.
	void housekeeping(uint64_t now_tsc, uint32_t budget = housekeeping_buckets);
	// Removes every flow; returns how many.
	uint64_t flush_flows();

	// ---- commit confirmed (push --confirm) ----
	// After a confirmed push, the rules active before it come back at the deadline unless confirm()
	// comes first. Any other successful push (plain push, reload, etcd) confirms; a second confirmed push
	// while one is pending keeps the older rules as the ones to come back, with its own deadline. Held
	// in memory only: a restart loads the configured file, as ever.
	struct rollback_state {
		bool pending = false;
		double deadline = 0;               // steady_seconds(): a wall-clock step moves nothing
		double deadline_unix = 0;          // the same moment on the wall clock when armed, for people
		uint64_t confirms_generation = 0;  // the generation confirm() would keep
		uint64_t restores_generation = 0;  // the generation whose rules come back
	};
	// The rules active now, to come back unless confirmed: call before the confirmed push (it keeps the
	// pending ones when a rollback is already armed). Then arm_rollback() once that push succeeded.
	void save_for_rollback();
	void arm_rollback(double seconds);
	// The clock rollbacks are timed by: steady_clock, in seconds.
	static double steady_seconds();
	// Keeps the rules now active; false when no rollback was pending.
	bool confirm();
	// Control loop: past the deadline (steady_seconds()), pushes the saved rules back (as generation N+1),
	// as they were parsed then: set files as read then too (a push or reload reads them again). Returns
	// that push's report, or nothing when no rollback was due.
	std::optional<swap_report> roll_back_if_due(double now_steady);
	// Written by the control thread under the writer lock; other threads read it under reader_lock().
	rollback_state rollback() const { return rollback_; }

	// push --dry-run: rs compiled as a push would compile it, for dataplane::judge_flow, but not
	// published; nothing in the daemon changes (max-conn ids it took are given back at once).
	dataplane::compile_result compile_preview(rules::ruleset rs);

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
	bool stopping() const { return stopping_ && stopping_->load(); }
	void note(const std::string& line) const
	{
		if (log_)
			log_(line);
	}
	swap_report abandon(const std::string& what);
	// opts with the stopping flag as its cancel flag (unless the caller gave one).
	rules::parse_options cancellable(const rules::parse_options& opts) const;
	template <class Change>
	set_report change_set(const std::string& name, Change&& change);
	void retire(std::unique_ptr<const sets::set_version> old);

	classify::backend backend_;
	std::string error_;
	rte_rcu_qsbr* rcu_ = nullptr;
	std::atomic<dataplane::compiled_policy*> active_{nullptr};
	std::unique_ptr<dataplane::compiled_policy> owned_;
	dataplane::conn_counts conns_;  // max-conn counts: outlive every policy and worker's table
	std::vector<std::unique_ptr<dataplane::worker>> workers_;
	std::map<std::string, rule_totals> carried_;
	mutable std::shared_mutex guard_;
	std::string configured_file_;
	rule_source source_;
	std::string digest_;
	const std::atomic<bool>* stopping_ = nullptr;
	std::function<void(const std::string&)> log_;
	uint64_t next_generation_ = 1;
	rollback_state rollback_;
	struct saved_rules {
		rules::ruleset rules;
		rule_source source;
		uint64_t generation = 0;
	};
	std::optional<saved_rules> rollback_rules_;  // what comes back; kept while a rollback is pending
	uint64_t swaps_ok_ = 0, swaps_failed_ = 0;
	double last_swap_unix_ = 0, last_compile_seconds_ = 0, last_quiesce_us_ = 0;
};

} // namespace portcullis::control
