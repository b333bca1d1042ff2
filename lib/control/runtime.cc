#include "control/runtime.h"

#include <rte_malloc.h>
#include <rte_rcu_qsbr.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>

namespace portcullis::control {
namespace {

// A rule named by the operator (`counter NAME`) keeps its counts across pushes by that name; one with a
// generated positional name ("rule7") only while its text stays the same, so that a different rule
// landing at the same position does not inherit them.
std::string carry_key(const rules::rule& r)
{
	return has_generated_counter(r) ? r.counter + "\n" + r.text : r.counter;
}

double unix_now()
{
	return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string top_file(const rules::ruleset& rs) { return rs.files.empty() ? "(unnamed)" : rs.files.front(); }

// 64-bit FNV-1a over a byte serialization that is the same on every host (integers little-endian,
// strings length-prefixed), so that appliances of a fleet can compare digests.
struct fnv1a {
	uint64_t h = 0xcbf29ce484222325ull;
	void byte(uint8_t b)
	{
		h ^= b;
		h *= 0x100000001b3ull;
	}
	template <class T>
	void number(T v)
	{
		for (size_t i = 0; i < sizeof(T); ++i)
			byte(uint8_t(v >> (8 * i)));
	}
	void text(std::string_view s)
	{
		number(uint64_t(s.size()));
		for (char c : s)
			byte(uint8_t(c));
	}
	template <class T>
	void ranges(const std::vector<value_range<T>>& set)
	{
		number(uint64_t(set.size()));
		for (const auto& r : set) {
			number(r.lo);
			number(r.hi);
		}
	}
};

} // namespace

std::string_view origin_name(rule_origin o)
{
	switch (o) {
	case rule_origin::config:
		return "config";
	case rule_origin::etcd:
		return "etcd";
	case rule_origin::push:
		break;
	}
	return "push";
}

std::string ruleset_digest(const rules::ruleset& rs)
{
	fnv1a f;
	f.number(uint8_t(rs.default_in));
	f.number(uint8_t(rs.default_out));
	f.number(uint64_t(rs.rules.size()));
	for (const auto& r : rs.rules) {
		f.number(uint8_t(r.act));
		f.number(uint8_t(r.log | r.in << 1 | r.out << 2));
		f.text(r.counter);
		const tuple_match& m = r.match;
		f.ranges(m.src4);
		f.ranges(m.dst4);
		f.ranges(m.src6);
		f.ranges(m.dst6);
		f.ranges(m.sport);
		f.ranges(m.dport);
		f.ranges(m.proto);
		f.number(m.tcp_flags_value);
		f.number(m.tcp_flags_mask);
		// Hashed only when present, so that a rule set without them keeps the digest it always had.
		if (m.set_bits_mask) {
			f.number(m.set_bits_value);
			f.number(m.set_bits_mask);
		}
		if (r.add_to) {
			f.text("add-to");
			f.number(r.add_to->set);
			f.number(uint8_t(r.add_to->dst));
			f.number(r.add_to->timeout_s);
		}
		if (r.max_conn) {
			f.text("max-conn");
			f.number(r.max_conn->max);
		}
		if (r.during)
			f.text(r.during->written + " in " + r.during->zone.name());
		if (r.limit) {
			f.text("limit");
			f.number(r.limit->rate);
			f.number(r.limit->per);
			f.number(r.limit->burst);
			f.number(uint8_t(r.limit->per_source));
			f.number(uint8_t(r.limit->packets));
			f.number(r.limit->prefix6);
		}
		f.number(uint64_t(r.payload.size()));
		for (const auto& c : r.payload) {
			f.text(c.app);
			f.number(uint64_t(c.any_of.size()));
			for (const auto& p : c.any_of) {
				f.number(uint8_t(p.kind));
				f.text(p.value);
				f.number(uint8_t(p.nocase));
				f.number(p.regex_flags);
				f.number(p.offset);
				f.number(p.depth);
			}
		}
	}
	// The sets the rules test or fill, with their contents: a changed feed is a changed rule set.
	for (const auto& set : rs.sets) {
		f.text(set.name);
		f.ranges(set.v4);
		f.ranges(set.v6);
		f.number(uint64_t(set.max_adds));
		for (const auto& name : set.dns_names)
			f.text(name);
	}
	for (const auto& t : rs.set_tests) {
		f.number(t.set);
		f.number(uint8_t(t.dst));
	}
	char hex[17];
	std::snprintf(hex, sizeof hex, "%016llx", (unsigned long long)f.h);
	return hex;
}

namespace {

// The names that a rule set's max-conn rules count under (conn_counts).
std::set<std::string> max_conn_names(const rules::ruleset& rs)
{
	std::set<std::string> names;
	for (const auto& r : rs.rules)
		if (r.max_conn)
			names.insert(r.counter);
	return names;
}

} // namespace

runtime::runtime(std::vector<dataplane::worker_config> workers, rules::ruleset initial, classify::backend backend)
	: backend_(backend)
{
	const uint32_t n = uint32_t(workers.size());
	auto compiled = dataplane::compile(std::move(initial), next_generation_++, n, backend_, {}, &conns_);
	if (!compiled.policy) {
		error_ = compiled.error;
		return;
	}
	owned_ = std::move(compiled.policy);
	configured_file_ = top_file(owned_->rules);
	source_ = {rule_origin::config, configured_file_, unix_now()};
	digest_ = ruleset_digest(owned_->rules);
	last_compile_seconds_ = owned_->compile_ms / 1000;
	active_.store(owned_.get(), std::memory_order_release);
	conns_.in_use(max_conn_names(owned_->rules));
	const size_t size = rte_rcu_qsbr_get_memsize(n);
	rcu_ = static_cast<rte_rcu_qsbr*>(rte_zmalloc("portcullis_rcu", size, RTE_CACHE_LINE_SIZE));
	if (!rcu_ || rte_rcu_qsbr_init(rcu_, n) != 0) {
		error_ = "cannot set up the RCU variable";
		return;
	}
	for (uint32_t w = 0; w < n; ++w) {
		workers[w].index = w;
		workers[w].conns = &conns_;
		rte_rcu_qsbr_thread_register(rcu_, w);
		workers_.push_back(std::make_unique<dataplane::worker>(workers[w], active_, rcu_));
	}
	last_swap_unix_ = source_.since_unix;
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

rules::parse_options runtime::cancellable(const rules::parse_options& opts) const
{
	rules::parse_options o = opts;
	if (!o.cancel)
		o.cancel = stopping_;
	return o;
}

swap_report runtime::abandon(const std::string& what)
{
	swap_report report;
	report.abandoned = true;
	report.generation = policy().generation;
	report.error = "portcullisd is stopping: " + what + " abandoned before it was published";
	note("rules: " + what + " abandoned (stopping); generation " + std::to_string(report.generation) + " stays");
	return report;
}

swap_report runtime::push(rules::ruleset rs, rule_origin from)
{
	const std::string file = top_file(rs);
	if (stopping())
		return abandon(file);
	note("rules: " + file + ": " + std::to_string(rs.rules.size()) + " rules parsed, compiling");
	swap_report report;
	auto compiled = dataplane::compile(std::move(rs), next_generation_, uint32_t(workers_.size()), backend_, {},
	                                   &conns_, stopping_);
	if (compiled.abandoned)
		return abandon(file);
	if (!compiled.policy) {
		++swaps_failed_;
		report.error = compiled.error;
		report.generation = policy().generation;
		note("rules: " + file + " refused: " + report.error + "; generation " + std::to_string(report.generation) +
		     " stays");
		return report;
	}
	// The last moment to give up: nothing is published yet, and the compiled set is simply freed.
	if (stopping())
		return abandon(file);
	++next_generation_;
	std::unique_ptr<dataplane::compiled_policy> fresh = std::move(compiled.policy);
	report.compile_ms = fresh->compile_ms;
	report.rules = fresh->rules.rules.size();
	report.digest = ruleset_digest(fresh->rules);

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
	conns_.in_use(max_conn_names(owned_->rules));

	++swaps_ok_;
	// Any push confirms a pending rollback (a confirmed push arms it again after this returns, and the
	// log says so then).
	if (rollback_.pending)
		note("rules: generation " + std::to_string(rollback_.confirms_generation) + " kept: generation " +
		     std::to_string(owned_->generation) + " was pushed over it");
	rollback_ = {};
	last_compile_seconds_ = report.compile_ms / 1000;
	last_quiesce_us_ = report.quiesce_us;
	last_swap_unix_ = unix_now();
	source_ = {from, file, last_swap_unix_};
	digest_ = report.digest;
	report.ok = true;
	report.generation = owned_->generation;
	char times[96];
	std::snprintf(times, sizeof times, "compiled in %.2f ms, quiesced in %.1f us", report.compile_ms, report.quiesce_us);
	note("rules: generation " + std::to_string(report.generation) + " active: " + std::to_string(report.rules) +
	     " rules, digest " + digest_ + ", source " + std::string(origin_name(from)) + " " + file + "; " + times);
	return report;
}

swap_report runtime::push_file(const std::string& path, const rules::parse_options& opts)
{
	std::error_code ec;
	const rule_origin from = !configured_file_.empty() && std::filesystem::equivalent(path, configured_file_, ec)
	                             ? rule_origin::config
	                             : rule_origin::push;
	if (stopping())
		return abandon(path);
	note("rules: reading " + path + " (" + std::string(origin_name(from)) + ")");
	auto parsed = rules::parse_file(path, cancellable(opts));
	if (parsed.abandoned)
		return abandon(path);
	if (!parsed.rules) {
		swap_report report;
		report.errors = std::move(parsed.errors);
		report.generation = policy().generation;
		++swaps_failed_;
		note("rules: " + path + " refused: " + std::to_string(report.errors.size()) + " error(s), the first " +
		     rules::format(report.errors.front()) + "; generation " + std::to_string(report.generation) + " stays");
		return report;
	}
	return push(std::move(*parsed.rules), from);
}

swap_report runtime::push_text(const std::string& text, const std::string& name, const rules::parse_options& opts,
                               rule_origin from)
{
	if (stopping())
		return abandon(name);
	auto parsed = rules::parse_string(text, name, cancellable(opts));
	if (parsed.abandoned)
		return abandon(name);
	if (!parsed.rules) {
		swap_report report;
		report.errors = std::move(parsed.errors);
		report.generation = policy().generation;
		++swaps_failed_;
		note("rules: text " + name + " refused: " + std::to_string(report.errors.size()) + " error(s), the first " +
		     rules::format(report.errors.front()) + "; generation " + std::to_string(report.generation) + " stays");
		return report;
	}
	return push(std::move(*parsed.rules), from);
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

dataplane::compile_result runtime::compile_preview(rules::ruleset rs)
{
	// Compiled as a push compiles (conns_ too, so that max-conn rules compile, and given up when the
	// daemon stops); the max-conn ids only the preview's names took are given back at once.
	auto compiled =
		dataplane::compile(std::move(rs), next_generation_, uint32_t(workers_.size()), backend_, {}, &conns_, stopping_);
	conns_.in_use(max_conn_names(owned_->rules));
	return compiled;
}

void runtime::save_for_rollback()
{
	if (rollback_.pending && rollback_rules_)
		return;  // an unconfirmed set is running: the one before it is still what comes back
	std::shared_lock reader(guard_);
	rollback_rules_ = saved_rules{owned_->rules, source_, owned_->generation};
}

double runtime::steady_seconds()
{
	return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void runtime::arm_rollback(double seconds)
{
	if (!rollback_rules_)
		return;
	{
		std::unique_lock writer(guard_);
		rollback_ = {true, steady_seconds() + seconds, unix_now() + seconds, owned_->generation, rollback_rules_->generation};
	}
	char when[64];
	std::snprintf(when, sizeof when, "%.0f", rollback_.deadline_unix);
	note("rules: generation " + std::to_string(owned_->generation) + " must be confirmed by unix time " + when +
	     ", or generation " + std::to_string(rollback_rules_->generation) + "'s rules come back");
}

bool runtime::confirm()
{
	if (!rollback_.pending)
		return false;
	note("rules: generation " + std::to_string(rollback_.confirms_generation) + " confirmed");
	{
		std::unique_lock writer(guard_);
		rollback_ = {};
	}
	rollback_rules_.reset();
	return true;
}

std::optional<swap_report> runtime::roll_back_if_due(double now_steady)
{
	if (!rollback_.pending || now_steady < rollback_.deadline || !rollback_rules_)
		return std::nullopt;
	note("rules: generation " + std::to_string(rollback_.confirms_generation) +
	     " was not confirmed in time: rolling back to generation " + std::to_string(rollback_rules_->generation) +
	     "'s rules");
	saved_rules saved = std::move(*rollback_rules_);
	rollback_rules_.reset();
	{
		std::unique_lock writer(guard_);
		rollback_ = {};
	}
	const rule_source before = saved.source;
	swap_report report = push(std::move(saved.rules), before.origin);
	if (report.ok) {
		std::unique_lock writer(guard_);
		source_.file = before.file;
		source_.revision = before.revision;
	} else {
		// Could not compile what once compiled (no room for its classifiers, say): the unconfirmed set
		// stays, and says so in the log; no further attempt.
		note("rules: rollback failed: " + report.error + "; generation " + std::to_string(report.generation) + " stays");
	}
	return report;
}

} // namespace portcullis::control
