// Live flows per (`max-conn` rule, source address), for `max-conn N per-source` (docs/rules.md).
//
// One table shared by every worker and kept across rule pushes: a rule's counts are found by its name
// (the `counter` name, "ruleN" when it has none), which maps to a small id that the same name keeps for
// the daemon's life, so flows opened before a push still count, and are uncounted when they end, after
// it. A flow that a max-conn rule opened carries the id (flow_entry::conn_limit); the flow table calls
// closed() when it removes the flow, whoever removes it (expiry, flush, eviction).
//
// Counts are 2^20 atomic words (4 MB) indexed by a hash of (id, source). Like the per-source rate meters,
// two sources that share a word share a count (one time in a million for a given pair), and nothing is
// allocated per source, so a million spoofed sources cost no memory.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <set>
#include <memory>
#include <string>

#include "flow/flow_table.h"
#include "rules/match.h"

namespace portcullis::dataplane {

class conn_counts {
public:
	static constexpr uint32_t slot_bits = 20;
	static constexpr uint8_t max_ids = 255;

	conn_counts() : counts_(std::make_unique<std::atomic<uint32_t>[]>(size_t(1) << slot_bits)) {}

	// ---- control thread (compiling a rule set) ----
	// The id of the max-conn rule called name: the same for the same name across pushes. A new name
	// takes an id never given, or the id of a name that the running rule set no longer has and whose
	// flows have all ended; 0 when none of the 255 is free.
	uint8_t id_for(const std::string& name);
	// The max-conn names of the rule set now running (after every publish): the others' ids may be
	// given to new names once their last flow ends (names given an id since the last call count as in
	// use too).
	void in_use(std::set<std::string> names) { in_use_ = std::move(names); }

	// ---- any thread ----
	// The count's key: an IPv4 source, or an IPv6 source's /64.
	static uint64_t source_key(bool v6, u128 address)
	{
		return v6 ? uint64_t(address >> 64) : uint64_t(uint32_t(address));
	}
	uint32_t count(uint8_t id, uint64_t source) const { return counts_[slot(id, source)].load(std::memory_order_relaxed); }
	// A flow of this id and source was opened. Two workers may both pass the check before either counts,
	// so a source may hold up to (workers - 1) flows past its N for a moment.
	void opened(uint8_t id, uint64_t source)
	{
		counts_[slot(id, source)].fetch_add(1, std::memory_order_relaxed);
		live_[id].fetch_add(1, std::memory_order_relaxed);
	}
	void closed(uint8_t id, uint64_t source)
	{
		std::atomic<uint32_t>& c = counts_[slot(id, source)];
		uint32_t v = c.load(std::memory_order_relaxed);
		while (v && !c.compare_exchange_weak(v, v - 1, std::memory_order_relaxed))
			;
		if (v)
			live_[id].fetch_sub(1, std::memory_order_relaxed);
	}
	// Flows counted under an id (all sources).
	uint64_t live(uint8_t id) const { return live_[id].load(std::memory_order_relaxed); }
	// The flow table's removal hook (flow_table::on_remove): uncounts a flow a max-conn rule opened.
	static void flow_removed(void* self, const flow::flow_entry& e);

private:
	static uint32_t slot(uint8_t id, uint64_t source)
	{
		const u128 m = u128(source ^ 0xa0761d6478bd642full) * (uint64_t(id) * 0x9E3779B97F4A7C15ull | 1);
		return uint32_t((uint64_t(m) ^ uint64_t(m >> 64)) >> (64 - slot_bits));
	}
	std::unique_ptr<std::atomic<uint32_t>[]> counts_;
	std::atomic<uint64_t> live_[max_ids + 1] = {};
	std::map<std::string, uint8_t> ids_;
	std::set<std::string> in_use_;
};

} // namespace portcullis::dataplane
