// A named address set that the data path reads while the control thread changes it: `portcullis set
// add|del|flush|load` (docs/sets.md). No rule is recompiled and no flow is touched by a change.
//
// A version is immutable: the base (the set's file, or the last `load`), the runtime adds, each with an
// optional expiry, and the runtime deletes, each a prefix_set. An address is in the set when it is added,
// or in the base and not deleted. A change builds a new version from the writer's lists and publishes it
// with one pointer store; the base is shared between versions, so an add to a million-entry set builds
// only the small add and delete sets and takes effect in microseconds, not the base's tens of
// milliseconds. The replaced version is handed back to the caller, which frees it once every reader has
// passed a quiescent point (control/runtime.cc, rte_rcu_qsbr), as for rule sets.
//
// Expiry is the control thread's: expire() drops the adds whose time has come and publishes a version
// without them; readers never look at clocks. Times are milliseconds of any monotonic clock the caller
// chooses (0 = never).
//
// Threads: contains() from any number of readers; every other member from one writer thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sets/prefix_set.h"

namespace portcullis::sets {

struct set_version {
	std::shared_ptr<const prefix_set4> base4;
	std::shared_ptr<const prefix_set6> base6;
	prefix_set4 added4, deleted4;
	prefix_set6 added6, deleted6;
	// Whether the base holds any range. A set of runtime adds only (`dynamic`, filled by add-to or `set
	// add`) then never reads the base's object: one dependent line fewer before a new flow's set test can
	// fetch its record, where the scan of bench-sets add_to_scan left that line cold for every SYN.
	bool base4_used = false, base6_used = false;

	bool contains(uint32_t a) const noexcept
	{
		return added4.contains(a) || (base4_used && base4->contains(a) && !deleted4.contains(a));
	}
	bool contains(u128 a) const noexcept
	{
		return added6.contains(a) || (base6_used && base6->contains(a) && !deleted6.contains(a));
	}
	void prefetch(uint32_t a) const noexcept
	{
		added4.prefetch(a);
		if (base4_used)
			base4->prefetch(a);
	}
};

// One runtime add: an IPv4 range (v6 false, host-order numbers in the low 32 bits) or an IPv6 range.
struct timed_range {
	bool v6 = false;
	u128 lo = 0, hi = 0;
	uint64_t expires_ms = 0;  // 0: until flushed, deleted or replaced
	uint64_t seq = 0;         // order of adding: when the set is full the lowest goes first
};

struct live_set_counters {
	uint64_t adds = 0;      // add() calls that added something
	uint64_t deletes = 0;
	uint64_t expiries = 0;  // adds that timed out
	uint64_t loads = 0;     // replace() calls
	uint64_t flushes = 0;
	uint64_t versions = 0;  // versions published
	uint64_t evicted = 0;   // adds pushed out, oldest first, by an add to a full set
};

class live_set {
public:
	using retired = std::unique_ptr<const set_version>;

	// The base's ranges must be normalized (rules/match.h). max_adds bounds the runtime adds (ranges).
	live_set(std::string name, std::vector<value_range<uint32_t>> base4, std::vector<value_range<u128>> base6,
	         size_t base_entries, size_t max_adds = 65536);
	~live_set();
	live_set(const live_set&) = delete;
	live_set& operator=(const live_set&) = delete;

	// ---- readers ----
	bool contains(uint32_t a) const noexcept { return current_.load(std::memory_order_acquire)->contains(a); }
	bool contains(u128 a) const noexcept { return current_.load(std::memory_order_acquire)->contains(a); }
	void prefetch(uint32_t a) const noexcept { current_.load(std::memory_order_acquire)->prefetch(a); }

	// ---- the writer ----
	const std::string& name() const { return name_; }
	// A prefix given as its range. An add replaces an earlier add's expiry for the same addresses. A full
	// set first drops its oldest adds.
	retired add(bool v6, u128 lo, u128 hi, uint64_t expires_ms);
	// Many adds, one version: what the data path's add-to asks for arrives in batches.
	retired add_batch(const std::vector<timed_range>& adds);
	retired del(bool v6, u128 lo, u128 hi);
	retired flush();  // empty: no base, no adds, no deletes
	// `load`: the base becomes these ranges (normalized), and the adds and deletes are dropped.
	retired replace(std::vector<value_range<uint32_t>> base4, std::vector<value_range<u128>> base6, size_t entries);
	// Drops the adds that expired at now_ms; null when none did (nothing published).
	retired expire(uint64_t now_ms);
	// The earliest expiry among the adds, 0 when none expires.
	uint64_t next_expiry() const { return next_expiry_; }

	using add_map = std::map<std::pair<bool, u128>, timed_range>;  // by (v6, lo); disjoint
	const add_map& adds() const { return adds_; }
	size_t max_adds() const { return max_adds_; }
	const std::vector<value_range<u128>>& deletes4() const { return deleted4_; }
	const std::vector<value_range<u128>>& deletes6() const { return deleted6_; }
	size_t base_entries() const { return base_entries_; }   // lines of the file (or load) it came from
	size_t base_ranges() const { return base4_ranges_ + base6_ranges_; }
	size_t memory_bytes() const;
	const live_set_counters& counters() const { return counters_; }

private:
	retired publish();
	void insert(bool v6, u128 lo, u128 hi, uint64_t expires_ms);
	void remove(bool v6, u128 lo, u128 hi);

	std::string name_;
	std::shared_ptr<const prefix_set4> base4_;
	std::shared_ptr<const prefix_set6> base6_;
	size_t base_entries_ = 0, base4_ranges_ = 0, base6_ranges_ = 0;
	add_map adds_;
	std::deque<std::pair<uint64_t, std::pair<bool, u128>>> add_order_;  // (seq, key); stale pairs skipped
	uint64_t next_seq_ = 1;
	uint64_t next_expiry_ = 0;
	size_t max_adds_;
	std::vector<value_range<u128>> deleted4_, deleted6_;  // normalized
	std::atomic<const set_version*> current_{nullptr};
	live_set_counters counters_;
};

} // namespace portcullis::sets
