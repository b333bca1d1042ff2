#include "dataplane/policy.h"

#include <algorithm>
#include <chrono>
#include <ctime>

#include <rte_cycles.h>

namespace portcullis::dataplane {

rule_counter compiled_policy::total(uint32_t rule) const
{
	rule_counter t{};
	for (uint32_t w = 0; w < workers; ++w) {
		const rule_counter& c = counter(w, rule);
		t.packets += c.packets;
		t.bytes += c.bytes;
		t.over_limit += c.over_limit;
		if (c.last_hit_tsc > t.last_hit_tsc)
			t.last_hit_tsc = c.last_hit_tsc;
	}
	return t;
}

int compiled_policy::find_set(std::string_view name) const
{
	for (size_t i = 0; i < sets.size(); ++i)
		if (sets[i]->name() == name)
			return int(i);
	return -1;
}

uint64_t compiled_policy::set_hit_total(uint32_t index) const
{
	uint64_t n = 0;
	for (uint32_t w = 0; w < workers; ++w)
		for (size_t i = 0; i < rules.set_tests.size(); ++i)
			if (rules.set_tests[i].set == index)
				n += set_hits[w].hits[i];
	return n;
}

bool compiled_policy::update_schedules(int64_t unix_seconds)
{
	if (!scheduled)
		return false;
	bool changed = false;
	for (uint32_t slot = 0; limiters && slot < limiter_count; ++slot) {
		rule_limiter& lim = limiters[slot];
		if (!lim.during)
			continue;
		const bool in = rules::in_windows(lim.during->windows, lim.during->zone, unix_seconds);
		if (in != lim.in_window.load(std::memory_order_relaxed)) {
			lim.in_window.store(in, std::memory_order_relaxed);
			changed = true;
		}
	}
	if (changed) {
		++schedule_edges;
		judge_stamp.store(uint32_t(generation << 12) | (schedule_edges & 0xFFF), std::memory_order_release);
	}
	return changed;
}

namespace {

compile_result abandoned()
{
	compile_result out;
	out.abandoned = true;
	out.error = "compile abandoned: cancelled";
	return out;
}

} // namespace

compile_result compile(rules::ruleset rs, uint64_t generation, uint32_t workers, classify::backend backend,
                       const inspect::scan_config& scan, conn_counts* conns, const std::atomic<bool>* cancel)
{
	const auto start = std::chrono::steady_clock::now();
	compile_result out;
	if (classify::cancelled(cancel))
		return abandoned();
	auto p = std::make_unique<compiled_policy>();
	p->generation = generation;
	p->judge_stamp.store(uint32_t(generation << 12), std::memory_order_relaxed);
	p->rules = std::move(rs);
	p->default_action[uint32_t(rules::direction::in)] = p->rules.default_in;
	p->default_action[uint32_t(rules::direction::out)] = p->rules.default_out;
	for (const auto& r : p->rules.rules)
		p->briefs.push_back({r.act, r.log, !r.payload.empty(), r.add_to.has_value(), r.add_to.value_or(rules::set_add{})});
	for (const auto& set : p->rules.sets) {
		if (!set.dns_names.empty())
			p->dns_sets.push_back({uint32_t(p->sets.size()), set.dns_names});
		p->sets.push_back(std::make_unique<sets::live_set>(set.name, set.v4, set.v6, set.entries, set.max_adds));
	}
	for (rules::direction d : {rules::direction::in, rules::direction::out}) {
		std::vector<classify::rule_entry> entries;
		for (uint32_t index : rules::rules_for(p->rules, d))
			entries.push_back({index, &p->rules.rules[index].match});
		auto built = classify::build(backend, entries, cancel);
		if (built.abandoned)
			return abandoned();
		if (!built.classifier) {
			out.error = "cannot build the " + std::string(rules::direction_name(d)) + " classifier: " + built.error;
			return out;
		}
		p->classifier[uint32_t(d)] = std::move(built.classifier);
	}
	p->workers = workers < 1 ? 1 : workers;
	if (rules::has_payload_rules(p->rules)) {
		p->inspects = true;
		for (rules::direction d : {rules::direction::in, rules::direction::out}) {
			std::vector<classify::rule_entry> entries;
			for (uint32_t index : rules::payload_free_rules_for(p->rules, d))
				entries.push_back({index, &p->rules.rules[index].match});
			auto built = classify::build(backend, entries, cancel);
			if (built.abandoned)
				return abandoned();
			if (!built.classifier) {
				out.error = "cannot build the payload-free classifier: " + built.error;
				return out;
			}
			p->classifier_free[uint32_t(d)] = std::move(built.classifier);
		}
		if (classify::cancelled(cancel))
			return abandoned();
		auto db = inspect::database::build(p->rules);
		if (!db.db) {
			out.error = db.error;
			return out;
		}
		p->inspect_db = std::move(db.db);
		auto proto = inspect::scratch::create(*p->inspect_db, scan);
		if (!proto.s) {
			out.error = "payload inspection: " + proto.error;
			return out;
		}
		if (classify::cancelled(cancel))
			return abandoned();
		for (uint32_t w = 0; w < p->workers; ++w) {
			auto clone = proto.s->clone();
			if (!clone.s) {
				out.error = "payload inspection: " + clone.error;
				return out;
			}
			p->inspect_scratch.push_back(std::move(clone.s));
		}
	}
	if (classify::cancelled(cancel))
		return abandoned();
	uint32_t limited = 0;
	for (const auto& r : p->rules.rules)
		limited += r.limit.has_value() || r.max_conn.has_value() || r.during.has_value();
	if (limited) {
		const uint64_t hz = rte_get_tsc_hz();
		p->limiter_of.assign(p->rules.rules.size(), compiled_policy::no_limit);
		p->limiters = std::make_unique<rule_limiter[]>(limited);
		p->limiter_count = limited;
		uint32_t slot = 0;
		for (uint32_t i = 0; i < p->rules.rules.size(); ++i) {
			const rules::rule& rule = p->rules.rules[i];
			const auto& l = rule.limit;
			if (!l && !rule.max_conn && !rule.during)
				continue;
			p->limiter_of[i] = slot;
			rule_limiter& lim = p->limiters[slot];
			if (l) {
				lim.rated = true;
				lim.interval = std::max<uint64_t>(1, uint64_t(double(hz) * double(l->per) / double(l->rate)));
				// Saturating: 1/h with a burst of 10^8 is 10^21 TSC ticks of tolerance, past 64 bits.
				const u128 tolerance = u128(lim.interval) * (l->burst - 1);
				lim.tolerance = tolerance > (UINT64_MAX >> 2) ? (UINT64_MAX >> 2) : uint64_t(tolerance);
				if (l->per_source)
					lim.meters = std::make_unique<std::atomic<uint64_t>[]>(rule_limiter::meter_slots);
				lim.packets = l->packets;
				lim.prefix6 = l->prefix6;
				p->limits_packets |= l->packets;
			}
			if (rule.max_conn) {
				const uint8_t id = conns ? conns->id_for(rule.counter) : 0;
				if (id == 0) {
					out.error = rule.loc.file + ":" + std::to_string(rule.loc.line) + ": " +
					            (conns ? "too many distinct max-conn rule names since the daemon started (255)"
					                   : "max-conn needs the daemon's connection counts");
					return out;
				}
				lim.max_conn = rule.max_conn->max;
				lim.conn_id = id;
				p->conns = conns;
			}
			if (rule.during) {
				lim.during = &*rule.during;
				p->scheduled = true;
			}
			for (rules::direction d : {rules::direction::in, rules::direction::out}) {
				auto& after = p->continue_after[uint32_t(d)];
				after.resize(limited);
				if (!p->rules.rules[i].applies(d))
					continue;
				std::vector<classify::rule_entry> entries;
				for (uint32_t index : p->inspects ? rules::payload_free_rules_for(p->rules, d) : rules::rules_for(p->rules, d))
					if (index > i)
						entries.push_back({index, &p->rules.rules[index].match});
				if (entries.empty())
					continue;
				auto built = classify::build(backend, entries, cancel);
				if (built.abandoned)
					return abandoned();
				if (!built.classifier) {
					out.error = "cannot build the classifier after a limited rule: " + built.error;
					return out;
				}
				after[slot] = std::move(built.classifier);
			}
			++slot;
		}
	}
	if (classify::cancelled(cancel))
		return abandoned();
	constexpr uint32_t per_line = 64 / sizeof(rule_counter);
	p->counter_stride = uint32_t((p->rules.rules.size() + per_line - 1) / per_line * per_line + per_line);
	p->counters = std::make_unique<rule_counter[]>(size_t(p->workers) * p->counter_stride);
	p->set_hits = std::make_unique<compiled_policy::set_hit_row[]>(p->workers);
	// Scheduled rules start as the clock says now; the control loop keeps them so (update_schedules).
	for (uint32_t slot = 0; slot < p->limiter_count; ++slot)
		if (const rules::rule_schedule* d = p->limiters[slot].during)
			p->limiters[slot].in_window.store(rules::in_windows(d->windows, d->zone, int64_t(std::time(nullptr))),
			                                  std::memory_order_relaxed);
	p->compile_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
	out.policy = std::move(p);
	return out;
}

} // namespace portcullis::dataplane
