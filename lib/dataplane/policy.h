// A compiled policy: one rule set, its two classifiers (one per direction), and the per-core counters of
// its rules. Built by the control plane off the data path, then published to the workers with one
// pointer store; immutable afterwards except for the counters, which each worker writes only in its
// own row. Freed only after every worker has passed a quiescent point (see dataplane.h).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "classify/classify.h"
#include "dataplane/conn_counts.h"
#include "inspect/inspect.h"
#include "rules/rules.h"
#include "sets/live_set.h"

namespace portcullis::dataplane {

inline constexpr uint32_t max_workers = 64;

// Per rule, per core: what the rule let through or stopped. alignas keeps two cores' rows apart.
struct alignas(32) rule_counter {
	uint64_t packets;
	uint64_t bytes;
	uint64_t last_hit_tsc;
	uint64_t over_limit;  // new flows this rule's `limit` turned away (to the rules after it)
};

// A rule's `limit` (rules.h rate_limit) as a generic cell rate algorithm: one atomic, the theoretical
// arrival time of the next flow in TSC, advanced by compare-and-swap. Shared by every worker, so the
// rule's rate is the rate of the whole firewall, not of each core; the price is one contended cache
// line per new flow of a limited rule, which a flood of new flows is exactly what the limit is for.
//
// `per-source`: one such word per slot of a table of meters indexed by a hash of the source address
// (IPv6: its /64). Sources that share a slot share a budget: a rare innocent source hashed next to a
// flooder is limited with it (1 in meter_slots), never the other way round; no entry is ever created or
// freed, so a flood from a million sources costs no memory and no cleanup.
struct alignas(64) rule_limiter {
	static constexpr uint32_t meter_slots = 1u << 16;

	std::atomic<uint64_t> tat{0};
	uint64_t interval = 0;   // TSC per flow at the rate
	uint64_t tolerance = 0;  // interval * (burst - 1): how far tat may run ahead of now
	std::unique_ptr<std::atomic<uint64_t>[]> meters;  // per-source only
	bool packets = false;    // `packets`: every packet of the rule's flows takes a token
	uint8_t prefix6 = 64;    // per-source: IPv6 sources share a meter per /prefix6
	bool rated = false;      // the rule has a `limit` (a rule with only `max-conn` or `during` has a slot too)
	// `during`: the rule's schedule (in the policy's rules), and whether now is inside it; the control
	// thread flips it at the window's edges (compiled_policy::update_schedules).
	const rules::rule_schedule* during = nullptr;
	std::atomic<bool> in_window{true};
	uint32_t max_conn = 0;   // `max-conn N per-source`: N, or 0
	uint8_t conn_id = 0;     // its id in conn_counts

	// The meter key of a source address (a flow's opener): an IPv4 address, or an IPv6 address cut to
	// prefix6 bits, mixed so that its top 16 bits pick the meter.
	uint64_t source_hash(bool v6, u128 address) const
	{
		if (!v6)
			return (uint64_t(uint32_t(address)) + 1) * 0x9E3779B97F4A7C15ull;
		const u128 kept = prefix6 >= 128 ? address : address & ~(~u128(0) >> prefix6);
		const u128 product = u128(uint64_t(kept >> 64) ^ 0xa0761d6478bd642full) * (uint64_t(kept) ^ 0xe7037ed1a0b428dbull);
		return (uint64_t(product) ^ uint64_t(product >> 64)) * 0x9E3779B97F4A7C15ull;
	}

	static bool admit(std::atomic<uint64_t>& word, uint64_t now, uint64_t interval, uint64_t tolerance)
	{
		uint64_t t = word.load(std::memory_order_relaxed);
		for (;;) {
			const uint64_t start = t > now ? t : now;
			if (start - now > tolerance)
				return false;
			if (word.compare_exchange_weak(t, start + interval, std::memory_order_relaxed))
				return true;
		}
	}
	// source_hash: any well-mixed hash of the source (its /64 for IPv6); ignored unless per-source.
	// Always true for a rule with no `limit`.
	bool admit(uint64_t now, uint64_t source_hash)
	{
		if (!rated)
			return true;
		std::atomic<uint64_t>& word = meters ? meters[source_hash >> 48] : tat;
		return admit(word, now, interval, tolerance);
	}
};

struct compiled_policy {
	uint64_t generation = 0;
	rules::ruleset rules;
	std::unique_ptr<classify::classifier> classifier[2];  // indexed by rules::direction
	// Payload inspection (only when the set has payload rules): classifiers of the payload-free rules,
	// whose verdict a flow follows while its payload is inspected, the Hyperscan database, and one
	// scratch (with its pool of streams) per worker.
	bool inspects = false;
	std::unique_ptr<classify::classifier> classifier_free[2];
	std::unique_ptr<inspect::database> inspect_db;
	std::vector<std::unique_ptr<inspect::scratch>> inspect_scratch;
	// The rule set's file sets (rules::ruleset::sets), by index, which the control thread may change
	// while the policy runs (`portcullis set`). A new flow's key gets bit i of set_bits when its address
	// is in the set of rules.set_tests[i]: up to eight lookups per new flow, none per established packet.
	std::vector<std::unique_ptr<sets::live_set>> sets;
	// `set NAME = dns ...`: the sets that DNS answers fill (their index in sets) and the name patterns
	// whose answers do; empty when the rule set has none, and then no packet is looked at for DNS.
	struct dns_watch {
		uint32_t set;
		std::vector<std::string> patterns;
	};
	std::vector<dns_watch> dns_sets;
	// Per worker: how many new flows' addresses each set test found in its set.
	struct alignas(64) set_hit_row {
		uint64_t hits[rules::max_set_tests];
	};
	std::unique_ptr<set_hit_row[]> set_hits;
	// What the data path reads of a rule when the rule decides a packet, by rule index: a few bytes in a
	// compact array rather than the rule itself (rules::rule: strings, ranges and options over several
	// cache lines), which a lone new flow among established traffic, a scan's SYN, found cold.
	struct rule_brief {
		rules::action act;
		bool log;
		bool payload;  // the rule has payload conditions
		bool add_to;   // the rule has `add-to`, whose target is add
		rules::set_add add;
	};
	static_assert(sizeof(rule_brief) == 16);
	std::vector<rule_brief> briefs;
	// Rate and connection limits: limiter_of[rule] is the rule's slot in limiters and continue_after, or
	// no_limit; empty when no rule has a limit or a max-conn. continue_after[dir][slot] classifies among the rules after the
	// limited one (null when the rule does not apply to dir or is the last): where an over-limit flow goes.
	static constexpr uint32_t no_limit = UINT32_MAX;
	std::vector<uint32_t> limiter_of;
	bool limits_packets = false;  // some rule's limit counts every packet (`packets`)
	// What a flow judged now carries (flow_entry::ruleset_generation): the generation in the high 20 bits,
	// the schedule edges passed under it in the low 12. An edge changes it, so every flow is re-judged on
	// its next packet, as after a push.
	std::atomic<uint32_t> judge_stamp{0};
	uint32_t schedule_edges = 0;
	bool scheduled = false;  // some rule has `during`
	// Control thread: moves every scheduled rule's in_window to what it is at this instant; true when
	// one changed (the judge stamp then moved on).
	bool update_schedules(int64_t unix_seconds);
	conn_counts* conns = nullptr; // the daemon's live-flow counts, when some rule has `max-conn`
	std::unique_ptr<rule_limiter[]> limiters;
	uint32_t limiter_count = 0;
	std::vector<std::unique_ptr<classify::classifier>> continue_after[2];
	rules::action default_action[2];
	double compile_ms = 0;
	uint32_t workers = 0;
	// [worker * stride + rule]; the stride leaves a cache line between two workers' rows.
	std::unique_ptr<rule_counter[]> counters;
	uint32_t counter_stride = 0;

	rule_counter& counter(uint32_t worker, uint32_t rule) { return counters[size_t(worker) * counter_stride + rule]; }
	const rule_counter& counter(uint32_t worker, uint32_t rule) const
	{
		return counters[size_t(worker) * counter_stride + rule];
	}
	// Sum over workers.
	rule_counter total(uint32_t rule) const;

	bool tests_sets() const { return !rules.set_tests.empty(); }
	// Index into `sets` of the set called name, or -1.
	int find_set(std::string_view name) const;
	// Sum over workers of the hits of every test of set `index`.
	uint64_t set_hit_total(uint32_t index) const;
	void count_set_hits(uint32_t worker, uint8_t bits)
	{
		for (uint32_t i = 0; bits; ++i, bits >>= 1)
			set_hits[worker].hits[i] += bits & 1;
	}
	uint8_t set_bits(uint32_t src, uint32_t dst) const
	{
		uint8_t bits = 0;
		for (size_t i = 0; i < rules.set_tests.size(); ++i) {
			const rules::set_test& t = rules.set_tests[i];
			bits |= uint8_t(sets[t.set]->contains(t.dst ? dst : src)) << i;
		}
		return bits;
	}
	// Starts fetching what set_bits(src, dst) will read (IPv4), for a burst's flow-table misses before
	// the known flows are handled: a new flow's set lookups would otherwise wait on memory one at a time
	// (bench-sets add_to_scan).
	void prefetch_set_bits(uint32_t src, uint32_t dst) const
	{
		for (const rules::set_test& t : rules.set_tests)
			sets[t.set]->prefetch(t.dst ? dst : src);
	}
	uint8_t set_bits(u128 src, u128 dst) const
	{
		uint8_t bits = 0;
		for (size_t i = 0; i < rules.set_tests.size(); ++i) {
			const rules::set_test& t = rules.set_tests[i];
			bits |= uint8_t(sets[t.set]->contains(t.dst ? dst : src)) << i;
		}
		return bits;
	}
};

struct compile_result {
	std::unique_ptr<compiled_policy> policy;  // null on failure
	std::string error;
	bool abandoned = false;  // `cancel` was set: policy null, error says so
};

// Builds both directions' classifiers for rs. `generation` is stamped into the result.
// `conns`: where `max-conn` rules count flows (the runtime's, kept across pushes); a rule set with
// max-conn does not compile without it.
// `cancel`, when given, may be set from another thread (the daemon's stopping flag): the classifier
// builds look at it as they go (classify.h), and compile looks at it between its steps (each
// classifier, the payload database, each worker's scratch, the classifiers after limited rules); once
// set, it gives up with `abandoned`. The Hyperscan database build itself runs to its end.
compile_result compile(rules::ruleset rs, uint64_t generation, uint32_t workers,
                       classify::backend backend = classify::backend::ours, const inspect::scan_config& scan = {},
                       conn_counts* conns = nullptr, const std::atomic<bool>* cancel = nullptr);

} // namespace portcullis::dataplane
