#include "sets/live_set.h"

#include <algorithm>

namespace portcullis::sets {
namespace {

// Removes [lo, hi] from the family's adds, splitting the adds that straddle an end.
void subtract(std::vector<timed_range>& adds, bool v6, u128 lo, u128 hi)
{
	std::vector<timed_range> out;
	out.reserve(adds.size() + 1);
	for (const timed_range& e : adds) {
		if (e.v6 != v6 || e.hi < lo || e.lo > hi) {
			out.push_back(e);
			continue;
		}
		if (e.lo < lo)
			out.push_back({e.v6, e.lo, lo - 1, e.expires_ms});
		if (e.hi > hi)
			out.push_back({e.v6, hi + 1, e.hi, e.expires_ms});
	}
	adds = std::move(out);
}

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
                   size_t base_entries)
	: name_(std::move(name))
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
	std::vector<value_range<uint32_t>> a4;
	std::vector<value_range<u128>> a6;
	for (const timed_range& e : adds_) {
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
	return retired(current_.exchange(v.release(), std::memory_order_acq_rel));
}

live_set::retired live_set::add(bool v6, u128 lo, u128 hi, uint64_t expires_ms)
{
	subtract(adds_, v6, lo, hi);
	subtract(v6 ? deleted6_ : deleted4_, lo, hi);
	const timed_range e{v6, lo, hi, expires_ms};
	adds_.insert(std::upper_bound(adds_.begin(), adds_.end(), e,
	                              [](const timed_range& a, const timed_range& b) {
		                              return a.v6 != b.v6 ? b.v6 : a.lo < b.lo;
	                              }),
	             e);
	++counters_.adds;
	return publish();
}

live_set::retired live_set::del(bool v6, u128 lo, u128 hi)
{
	subtract(adds_, v6, lo, hi);
	auto& deleted = v6 ? deleted6_ : deleted4_;
	deleted.push_back({lo, hi});
	normalize(deleted);
	++counters_.deletes;
	return publish();
}

live_set::retired live_set::flush()
{
	adds_.clear();
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
	deleted4_.clear();
	deleted6_.clear();
	++counters_.loads;
	return publish();
}

live_set::retired live_set::expire(uint64_t now_ms)
{
	const auto before = adds_.size();
	std::erase_if(adds_, [&](const timed_range& e) { return e.expires_ms != 0 && e.expires_ms <= now_ms; });
	if (adds_.size() == before)
		return nullptr;
	counters_.expiries += before - adds_.size();
	return publish();
}

uint64_t live_set::next_expiry() const
{
	uint64_t next = 0;
	for (const timed_range& e : adds_)
		if (e.expires_ms != 0 && (next == 0 || e.expires_ms < next))
			next = e.expires_ms;
	return next;
}

size_t live_set::memory_bytes() const
{
	const set_version* v = current_.load(std::memory_order_acquire);
	return v->base4->memory_bytes() + v->base6->memory_bytes() + v->added4.memory_bytes() +
	       v->added6.memory_bytes() + v->deleted4.memory_bytes() + v->deleted6.memory_bytes() +
	       adds_.capacity() * sizeof(timed_range) +
	       (deleted4_.capacity() + deleted6_.capacity()) * sizeof(value_range<u128>);
}

} // namespace portcullis::sets
