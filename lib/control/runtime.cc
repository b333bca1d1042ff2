#include "control/runtime.h"

#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include <algorithm>
#include <chrono>

namespace portcullis::control {
namespace {

// A rule named by the operator (`counter NAME`) keeps its counts across pushes by that name; one with a
// generated positional name ("rule7") only while its text stays the same, so that a different rule
// landing at the same position does not inherit them.
std::string carry_key(const rules::rule& r)
{
	const bool generated = r.counter.size() > 4 && r.counter.compare(0, 4, "rule") == 0 &&
	                       r.counter.find_first_not_of("0123456789", 4) == std::string::npos;
	return generated ? r.counter + "\n" + r.text : r.counter;
}

} // namespace

runtime::runtime(std::vector<dataplane::worker_config> workers, rules::ruleset initial, classify::backend backend)
	: backend_(backend)
{
	const uint32_t n = uint32_t(workers.size());
	auto compiled = dataplane::compile(std::move(initial), next_generation_++, n, backend_);
	if (!compiled.policy) {
		error_ = compiled.error;
		return;
	}
	owned_ = std::move(compiled.policy);
	last_compile_seconds_ = owned_->compile_ms / 1000;
	active_.store(owned_.get(), std::memory_order_release);
	const size_t size = rte_rcu_qsbr_get_memsize(n);
	rcu_ = static_cast<rte_rcu_qsbr*>(rte_zmalloc("portcullis_rcu", size, RTE_CACHE_LINE_SIZE));
	if (!rcu_ || rte_rcu_qsbr_init(rcu_, n) != 0) {
		error_ = "cannot set up the RCU variable";
		return;
	}
	for (uint32_t w = 0; w < n; ++w) {
		workers[w].index = w;
		rte_rcu_qsbr_thread_register(rcu_, w);
		workers_.push_back(std::make_unique<dataplane::worker>(workers[w], active_, rcu_));
	}
	last_swap_unix_ = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

runtime::~runtime()
{
	workers_.clear();
	rte_free(rcu_);
}

rule_totals runtime::rule_counters(uint32_t rule) const
{
	const dataplane::compiled_policy& p = policy();
	const dataplane::rule_counter live = p.total(rule);
	rule_totals t{live.packets, live.bytes, live.last_hit_tsc};
	if (auto it = carried_.find(carry_key(p.rules.rules[rule])); it != carried_.end()) {
		t.packets += it->second.packets;
		t.bytes += it->second.bytes;
		t.last_hit_tsc = std::max(t.last_hit_tsc, it->second.last_hit_tsc);
	}
	return t;
}

swap_report runtime::push(rules::ruleset rs)
{
	swap_report report;
	auto compiled = dataplane::compile(std::move(rs), next_generation_, uint32_t(workers_.size()), backend_);
	if (!compiled.policy) {
		++swaps_failed_;
		report.error = compiled.error;
		report.generation = policy().generation;
		return report;
	}
	++next_generation_;
	std::unique_ptr<dataplane::compiled_policy> fresh = std::move(compiled.policy);
	report.compile_ms = fresh->compile_ms;
	report.rules = fresh->rules.rules.size();

	dataplane::compiled_policy* old = active_.load(std::memory_order_relaxed);
	const auto published = std::chrono::steady_clock::now();
	active_.store(fresh.get(), std::memory_order_release);
	const uint64_t token = rte_rcu_qsbr_start(rcu_);
	rte_rcu_qsbr_check(rcu_, token, true);
	report.quiesce_us =
		std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - published).count();

	// No worker touches the old policy any more: carry its rule counts over, then free it.
	std::unique_lock writer(guard_);
	std::map<std::string, rule_totals> carried;
	for (uint32_t r = 0; r < old->rules.rules.size(); ++r) {
		const std::string key = carry_key(old->rules.rules[r]);
		rule_totals t;
		if (auto it = carried_.find(key); it != carried_.end())
			t = it->second;
		const dataplane::rule_counter live = old->total(r);
		t.packets += live.packets;
		t.bytes += live.bytes;
		t.last_hit_tsc = std::max(t.last_hit_tsc, live.last_hit_tsc);
		carried[key] = t;
	}
	carried_ = std::move(carried);
	owned_ = std::move(fresh);  // frees the old policy: no worker can still be reading it

	++swaps_ok_;
	last_compile_seconds_ = report.compile_ms / 1000;
	last_quiesce_us_ = report.quiesce_us;
	last_swap_unix_ = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
	report.ok = true;
	report.generation = owned_->generation;
	return report;
}

swap_report runtime::push_file(const std::string& path, const rules::parse_options& opts)
{
	auto parsed = rules::parse_file(path, opts);
	if (!parsed.rules) {
		swap_report report;
		report.errors = std::move(parsed.errors);
		report.generation = policy().generation;
		++swaps_failed_;
		return report;
	}
	return push(std::move(*parsed.rules));
}

swap_report runtime::push_text(const std::string& text, const std::string& name, const rules::parse_options& opts)
{
	auto parsed = rules::parse_string(text, name, opts);
	if (!parsed.rules) {
		swap_report report;
		report.errors = std::move(parsed.errors);
		report.generation = policy().generation;
		++swaps_failed_;
		return report;
	}
	return push(std::move(*parsed.rules));
}

void runtime::housekeeping(uint64_t now_tsc, uint32_t budget)
{
	for (auto& w : workers_)
		w->flows().expire(now_tsc, budget);
}

uint64_t runtime::flush_flows()
{
	uint64_t n = 0;
	for (auto& w : workers_)
		n += w->flows().flush();
	return n;
}

} // namespace portcullis::control
