#include "sets/live_set.h"

#include <algorithm>

namespace portcullis::sets {
namespace {

void subtract(std::vector<value_range<u128>>& set, u128 lo, u128 hi)
{
	std::vector<value_range<u128>> out;
	out.reserve(set.size() + 1);
	for (const auto& r : set) {
		if (r.hi < lo || r.lo > hi) {
			out.push_back(r);
			continue;
		}
		if (r.lo < lo)
			out.push_back({r.lo, lo - 1});
		if (r.hi > hi)
			out.push_back({hi + 1, r.hi});
	}
	set = std::move(out);
}

std::vector<value_range<uint32_t>> narrow(const std::vector<value_range<u128>>& set)
{
	std::vector<value_range<uint32_t>> out;
	out.reserve(set.size());
	for (const auto& r : set)
		out.push_back({uint32_t(r.lo), uint32_t(r.hi)});
	return out;
}

} // namespace

live_set::live_set(std::string name, std::vector<value_range<uint32_t>> base4, std::vector<value_range<u128>> base6,
                   size_t base_entries, size_t max_adds)
	: name_(std::move(name)), max_adds_(max_adds ? max_adds : 1)
{
	replace(std::move(base4), std::move(base6), base_entries);
	counters_.loads = 0;
}

live_set::~live_set() { delete current_.load(std::memory_order_relaxed); }

live_set::retired live_set::publish()
{
	auto v = std::make_unique<set_version>();
	v->base4 = base4_;
	v->base6 = base6_;
	v->base4_used = base4_ && base4_->range_count() != 0;
	v->base6_used = base6_ && base6_->range_count() != 0;
	std::vector<value_range<uint32_t>> a4;
	std::vector<value_range<u128>> a6;
	for (const auto& [key, e] : adds_) {
		if (e.v6)
			a6.push_back({e.lo, e.hi});
		else
			a4.push_back({uint32_t(e.lo), uint32_t(e.hi)});
	}
	normalize(a4);
	normalize(a6);
	v->added4 = prefix_set4::build(a4);
	v->added6 = prefix_set6::build(a6);
	v->deleted4 = prefix_set4::build(narrow(deleted4_));
	v->deleted6 = prefix_set6::build(deleted6_);
	++counters_.versions;
	// Every change publishes, so the earliest expiry is found here once per change rather than by the
	// control loop's every round.
	next_expiry_ = 0;
	for (const auto& [key, e] : adds_)
		if (e.expires_ms != 0 && (next_expiry_ == 0 || e.expires_ms < next_expiry_))
			next_expiry_ = e.expires_ms;
	return retired(current_.exchange(v.release(), std::memory_order_acq_rel));
}

// Removes [lo, hi] from the family's adds, splitting the adds that straddle an end.
void live_set::remove(bool v6, u128 lo, u128 hi)
{
	auto it = adds_.lower_bound({v6, lo});
	if (it != adds_.begin()) {
		auto before = std::prev(it);
		if (before->second.v6 == v6 && before->second.hi >= lo)
			it = before;
	}
	while (it != adds_.end() && it->second.v6 == v6 && it->second.lo <= hi) {
		const timed_range e = it->second;
		it = adds_.erase(it);
		if (e.lo < lo)
			adds_.emplace(std::pair{v6, e.lo}, timed_range{v6, e.lo, lo - 1, e.expires_ms, e.seq});
		if (e.hi > hi) {
			// The upper piece has a key of its own: give it an order entry, or it could never be evicted.
			it = adds_.emplace(std::pair{v6, hi + 1}, timed_range{v6, hi + 1, e.hi, e.expires_ms, e.seq}).first;
			add_order_.emplace_back(e.seq, std::pair{v6, hi + 1});
		}
	}
}

void live_set::insert(bool v6, u128 lo, u128 hi, uint64_t expires_ms)
{
	remove(v6, lo, hi);
	subtract(v6 ? deleted6_ : deleted4_, lo, hi);
	while (adds_.size() >= max_adds_ && !add_order_.empty()) {
		const auto [seq, key] = add_order_.front();
		add_order_.pop_front();
		auto it = adds_.find(key);
		if (it != adds_.end() && it->second.seq == seq) {
			adds_.erase(it);
			++counters_.evicted;
		}
	}
	const uint64_t seq = next_seq_++;
	adds_.emplace(std::pair{v6, lo}, timed_range{v6, lo, hi, expires_ms, seq});
	add_order_.emplace_back(seq, std::pair{v6, lo});
	// Pieces left by splits keep their old seq and may outlive their order entry; the order list is
	// trimmed of stale pairs when it grows well past the adds it describes.
	if (add_order_.size() > 2 * max_adds_ + 1024) {
		std::erase_if(add_order_, [&](const auto& o) {
			auto it = adds_.find(o.second);
			return it == adds_.end() || it->second.seq != o.first;
		});
	}
	++counters_.adds;
}

live_set::retired live_set::add(bool v6, u128 lo, u128 hi, uint64_t expires_ms)
{
	insert(v6, lo, hi, expires_ms);
	return publish();
}

live_set::retired live_set::add_batch(const std::vector<timed_range>& adds)
{
	if (adds.empty())
		return nullptr;
	for (const timed_range& e : adds)
		insert(e.v6, e.lo, e.hi, e.expires_ms);
	return publish();
}

live_set::retired live_set::del(bool v6, u128 lo, u128 hi)
{
	remove(v6, lo, hi);
	auto& deleted = v6 ? deleted6_ : deleted4_;
	deleted.push_back({lo, hi});
	normalize(deleted);
	++counters_.deletes;
	return publish();
}

live_set::retired live_set::flush()
{
	adds_.clear();
	add_order_.clear();
	deleted4_.clear();
	deleted6_.clear();
	base4_ = std::make_shared<const prefix_set4>();
	base6_ = std::make_shared<const prefix_set6>();
	base_entries_ = base4_ranges_ = base6_ranges_ = 0;
	++counters_.flushes;
	return publish();
}

live_set::retired live_set::replace(std::vector<value_range<uint32_t>> base4, std::vector<value_range<u128>> base6,
                                    size_t entries)
{
	base4_ranges_ = base4.size();
	base6_ranges_ = base6.size();
	base_entries_ = entries;
	base4_ = std::make_shared<const prefix_set4>(prefix_set4::build(base4));
	base6_ = std::make_shared<const prefix_set6>(prefix_set6::build(base6));
	adds_.clear();
	add_order_.clear();
	deleted4_.clear();
	deleted6_.clear();
	++counters_.loads;
	return publish();
}

live_set::retired live_set::expire(uint64_t now_ms)
{
	const auto before = adds_.size();
	std::erase_if(adds_, [&](const auto& kv) { return kv.second.expires_ms != 0 && kv.second.expires_ms <= now_ms; });
	if (adds_.size() == before)
		return nullptr;
	counters_.expiries += before - adds_.size();
	return publish();
}

size_t live_set::memory_bytes() const
{
	const set_version* v = current_.load(std::memory_order_acquire);
	return v->base4->memory_bytes() + v->base6->memory_bytes() + v->added4.memory_bytes() +
	       v->added6.memory_bytes() + v->deleted4.memory_bytes() + v->deleted6.memory_bytes() +
	       adds_.size() * (sizeof(timed_range) + 64) + add_order_.size() * 40 +
	       (deleted4_.capacity() + deleted6_.capacity()) * sizeof(value_range<u128>);
}

} // namespace portcullis::sets
