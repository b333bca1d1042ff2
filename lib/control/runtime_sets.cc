// Runtime set changes (runtime.h, docs/sets.md): a file set of the active policy changed in place.
//
// A change publishes the set's new version with one pointer store (sets/live_set.h), then waits, as a
// push does, until every worker has passed a quiescent point, and only then frees the version it
// replaced: a worker that loaded the old pointer in its burst is done with it by then. The metrics
// thread reads sets under reader_lock(), so the free also takes the lock.
#include "control/runtime.h"

#include <chrono>

#include <rte_rcu_qsbr.h>

namespace portcullis::control {
namespace {

std::string set_names(const dataplane::compiled_policy& pol)
{
	if (pol.sets.empty())
		return "the active rules test no file set";
	std::string names = "file sets in the active rules:";
	for (const auto& s : pol.sets)
		names += " " + s->name();
	return names;
}

} // namespace

uint64_t runtime::set_clock_ms()
{
	return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
	                    std::chrono::steady_clock::now().time_since_epoch())
	                    .count());
}

void runtime::retire(std::unique_ptr<const sets::set_version> old)
{
	if (!old)
		return;
	const uint64_t token = rte_rcu_qsbr_start(rcu_);
	rte_rcu_qsbr_check(rcu_, token, true);
	std::unique_lock lock(guard_);
	old.reset();
}

template <class Change>
runtime::set_report runtime::change_set(const std::string& name, Change&& change)
{
	set_report r;
	dataplane::compiled_policy& pol = *owned_;
	const int i = pol.find_set(name);
	if (i < 0) {
		r.error = "no file set '" + name + "' (" + set_names(pol) + ")";
		return r;
	}
	const auto start = std::chrono::steady_clock::now();
	std::unique_ptr<const sets::set_version> old;
	{
		std::unique_lock lock(guard_);
		old = change(*pol.sets[size_t(i)]);
	}
	retire(std::move(old));
	r.publish_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start).count();
	r.ok = true;
	return r;
}

runtime::set_report runtime::set_add(const std::string& name, bool v6, u128 lo, u128 hi, uint64_t timeout_ms)
{
	const uint64_t expires = timeout_ms ? set_clock_ms() + timeout_ms : 0;
	return change_set(name, [&](sets::live_set& s) { return s.add(v6, lo, hi, expires); });
}

runtime::set_report runtime::set_del(const std::string& name, bool v6, u128 lo, u128 hi)
{
	return change_set(name, [&](sets::live_set& s) { return s.del(v6, lo, hi); });
}

runtime::set_report runtime::set_flush(const std::string& name)
{
	return change_set(name, [&](sets::live_set& s) { return s.flush(); });
}

runtime::set_report runtime::set_load(const std::string& name, const std::string& path, const rules::parse_options& opts)
{
	if (owned_->find_set(name) < 0)
		return change_set(name, [](sets::live_set&) { return std::unique_ptr<const sets::set_version>(); });
	// Read and checked before anything changes: a feed with errors leaves the set as it was.
	rules::address_feed feed = rules::read_address_feed(path, opts);
	if (!feed.errors.empty()) {
		set_report r;
		r.errors = std::move(feed.errors);
		r.error = std::to_string(r.errors.size()) + " error(s) in '" + path + "'; the set '" + name + "' stays as it was";
		note("sets: load " + name + " from " + path + " refused: " + rules::format(r.errors.front()));
		return r;
	}
	const size_t entries = feed.entries;
	set_report r = change_set(name, [&](sets::live_set& s) {
		return s.replace(std::move(feed.v4), std::move(feed.v6), entries);
	});
	r.entries = entries;
	if (r.ok)
		note("sets: " + name + " loaded from " + path + ": " + std::to_string(entries) + " entries");
	return r;
}

uint64_t runtime::apply_set_adds()
{
	dataplane::compiled_policy& pol = *owned_;
	std::vector<std::vector<sets::timed_range>> batches(pol.sets.size());
	const uint64_t now = set_clock_ms();
	uint64_t applied = 0;
	for (auto& w : workers_) {
		w->set_adds().drain(
			[&](const dataplane::set_add_record& r) {
				if (r.generation != pol.generation || r.set >= batches.size())
					return;
				const uint64_t expires = r.timeout_s ? now + uint64_t(r.timeout_s) * 1000 : 0;
				batches[r.set].push_back({r.v6 != 0, r.addr, r.addr, expires, 0});
				++applied;
			},
			UINT32_MAX);
	}
	std::vector<std::unique_ptr<const sets::set_version>> old;
	{
		std::unique_lock lock(guard_);
		for (size_t i = 0; i < batches.size(); ++i)
			if (auto v = pol.sets[i]->add_batch(batches[i]))
				old.push_back(std::move(v));
	}
	if (!old.empty()) {
		const uint64_t token = rte_rcu_qsbr_start(rcu_);
		rte_rcu_qsbr_check(rcu_, token, true);
		std::unique_lock lock(guard_);
		old.clear();
	}
	return applied;
}

void runtime::expire_sets()
{
	dataplane::compiled_policy& pol = *owned_;
	const uint64_t now = set_clock_ms();
	for (auto& s : pol.sets) {
		const uint64_t next = s->next_expiry();
		if (next == 0 || next > now)
			continue;
		std::unique_ptr<const sets::set_version> old;
		{
			std::unique_lock lock(guard_);
			old = s->expire(now);
		}
		retire(std::move(old));
	}
}

} // namespace portcullis::control
