// The rule-set commands (server.h): push a rule set (or preview one: dry run), list the active rules,
// explain a flow's verdict.
#include "control/server.h"

#include <rte_cycles.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>

#include <sys/stat.h>

#include "control/server_internal.h"
#include "dataplane/judge.h"
#include "rules/tuple.h"

namespace portcullis::control {
namespace {

using json = nlohmann::json;
using detail::ok_response;
using detail::source_of;

double tsc_seconds(uint64_t ticks) { return double(ticks) / double(rte_get_tsc_hz()); }

json location(const rules::source_location& l)
{
	return {{"file", l.file}, {"line", l.line}, {"column", l.column}};
}

json rule_summary(const rules::rule& r, uint32_t index)
{
	json j = location(r.loc);
	j["index"] = index;
	j["text"] = r.text;
	j["action"] = rules::action_name(r.act);
	j["log"] = r.log;
	j["counter"] = r.counter;
	json dirs = json::array();
	if (r.in)
		dirs.push_back("in");
	if (r.out)
		dirs.push_back("out");
	j["directions"] = dirs;
	return j;
}

// The key's set bits from the policy's live sets, as the data path computes them (not the files'
// contents: `portcullis set` and add-to may have changed the sets since).
uint8_t live_set_bits(const dataplane::compiled_policy& pol, const rules::flow_tuple& f)
{
	if (!pol.tests_sets())
		return 0;
	return f.v6 ? pol.set_bits(f.src, f.dst) : pol.set_bits(uint32_t(f.src), uint32_t(f.dst));
}

uint32_t classify_one(const classify::classifier& c, uint8_t set_bits, const rules::flow_tuple& f)
{
	uint32_t result = classify::no_match;
	if (f.v6) {
		classify::key_v6 k{};
		k.src = f.src, k.dst = f.dst, k.sport = f.sport, k.dport = f.dport, k.proto = f.proto, k.tcp_flags = f.tcp_flags;
		k.set_bits = set_bits;
		c.classify(&k, 1, &result);
	} else {
		classify::key_v4 k{};
		k.src = uint32_t(f.src), k.dst = uint32_t(f.dst), k.sport = f.sport, k.dport = f.dport, k.proto = f.proto,
		k.tcp_flags = f.tcp_flags;
		k.set_bits = set_bits;
		c.classify(&k, 1, &result);
	}
	return result;
}

// A rule with `during` outside its window is not in force: the data path skips it (policy.h).
bool out_of_window(const dataplane::compiled_policy& pol, uint32_t rule)
{
	return pol.scheduled && rule < pol.limiter_of.size() && pol.limiter_of[rule] != dataplane::compiled_policy::no_limit &&
	       !pol.limiters[pol.limiter_of[rule]].in_window.load(std::memory_order_relaxed);
}

// A push refused (or, dry run, a set that would be): its rule errors as file:line:column, quoted only
// where the peer may read the file.
json refusal(const swap_report& report, const std::function<bool(const std::string&)>& readable)
{
	json errors = json::array();
	for (const auto& d : report.errors) {
		json e = location(d.loc);
		e["message"] = readable(d.loc.file) ? d.message : "error in a file the requesting user cannot read";
		errors.push_back(e);
	}
	const std::string why = !report.errors.empty()
	                            ? std::to_string(report.errors.size()) +
	                                  (report.errors.size() == 1 ? " error" : " errors") + " in the rule set"
	                            : report.abandoned ? report.error : "the rule set does not compile: " + report.error;
	json r = error_response(report.errors.empty() ? error_code::failed : error_code::rules,
	                        why + "; the running rules (generation " + std::to_string(report.generation) + ") stay");
	r["errors"] = errors;
	r["generation"] = report.generation;
	return r;
}

// A rule's identity across two sets, for the dry run's diff: its counter name when it has one of its
// own, else its text (a generated "ruleN" names a position, not a rule).
std::string diff_key(const rules::rule& r)
{
	return has_generated_counter(r) ? "text " + r.text : "counter " + r.counter;
}

// Added, removed, changed (another action or text under the same name) and moved rules. Moved: of the
// rules in both sets, those outside a longest run kept in the same relative order.
json rule_diff(const std::vector<rules::rule>& before, const std::vector<rules::rule>& after)
{
	std::map<std::string, std::vector<uint32_t>> old_at;  // a text may be there twice: matched in order
	for (uint32_t i = 0; i < before.size(); ++i)
		old_at[diff_key(before[i])].push_back(i);
	std::map<std::string, size_t> taken;
	std::vector<int64_t> old_index(after.size(), -1);
	std::vector<bool> old_kept(before.size(), false);
	for (uint32_t i = 0; i < after.size(); ++i) {
		const std::string k = diff_key(after[i]);
		auto it = old_at.find(k);
		if (it != old_at.end() && taken[k] < it->second.size()) {
			old_index[i] = it->second[taken[k]++];
			old_kept[size_t(old_index[i])] = true;
		}
	}
	// Longest increasing run of old positions, in new order (patience sorting, n log n).
	std::vector<uint32_t> tails, tail_at, parent(after.size(), UINT32_MAX);
	for (uint32_t i = 0; i < after.size(); ++i) {
		if (old_index[i] < 0)
			continue;
		const auto pos = std::lower_bound(tails.begin(), tails.end(), uint32_t(old_index[i])) - tails.begin();
		if (size_t(pos) == tails.size()) {
			tails.push_back(uint32_t(old_index[i]));
			tail_at.push_back(i);
		} else {
			tails[size_t(pos)] = uint32_t(old_index[i]);
			tail_at[size_t(pos)] = i;
		}
		parent[i] = pos ? tail_at[size_t(pos) - 1] : UINT32_MAX;
	}
	std::vector<bool> in_order(after.size(), false);
	for (uint32_t i = tail_at.empty() ? UINT32_MAX : tail_at.back(); i != UINT32_MAX; i = parent[i])
		in_order[i] = true;

	json added = json::array(), removed = json::array(), moved = json::array(), changed = json::array();
	for (uint32_t i = 0; i < after.size(); ++i) {
		if (old_index[i] < 0) {
			added.push_back(rule_summary(after[i], i));
			continue;
		}
		const rules::rule& was = before[size_t(old_index[i])];
		if (was.act != after[i].act || was.text != after[i].text) {
			json c = rule_summary(after[i], i);
			c["was_text"] = was.text;
			c["was_action"] = rules::action_name(was.act);
			changed.push_back(c);
		}
		if (!in_order[i]) {
			json m = rule_summary(after[i], i);
			m["was_index"] = old_index[i];
			moved.push_back(m);
		}
	}
	for (uint32_t i = 0; i < before.size(); ++i)
		if (!old_kept[i])
			removed.push_back(rule_summary(before[i], i));
	return {{"added", added}, {"removed", removed}, {"moved", moved}, {"changed", changed}};
}

} // namespace

json server::cmd_push_preview(const parsed_request& req, const peer& who)
{
	auto readable = [&](const std::string& file) { return detail::readable_by(who.uid, who.gid, who.groups, file); };
	const dataplane::compiled_policy& live = rt_.policy();
	swap_report report;
	report.generation = live.generation;
	auto parsed = req.path.empty() ? rules::parse_string(req.text, req.name, config_.parse)
	                               : rules::parse_file(req.path, config_.parse);
	if (!parsed.rules) {
		report.errors = std::move(parsed.errors);
		return refusal(report, readable);
	}
	auto compiled = rt_.compile_preview(std::move(*parsed.rules));
	if (!compiled.policy) {
		report.error = compiled.error;
		return refusal(report, readable);
	}
	const dataplane::compiled_policy& next = *compiled.policy;

	// Every live flow judged as revalidation will judge it on its next packet after the push. Only the
	// `limit` largest cut flows are kept (a heap, smallest on top), and the keep matches: a preview that
	// cuts millions of flows costs a scan, not millions of answers.
	struct cut_flow {
		uint64_t bytes;
		uint32_t worker, rule;
		flow::flow_entry entry;
	};
	auto larger = [](const cut_flow& a, const cut_flow& b) { return a.bytes > b.bytes; };
	const size_t limit = std::min<uint64_t>(req.limit.value_or(20), config_.max_flow_limit);
	std::vector<cut_flow> largest, kept_cut;
	uint64_t live_flows = 0, cut = 0;
	auto& workers = rt_.workers();
	for (uint32_t w = 0; w < workers.size(); ++w) {
		workers[w]->flows().for_each([&](const flow::flow_entry& live_entry) {
			++live_flows;
			cut_flow c{0, w, 0, {}};
			std::memcpy(static_cast<void*>(&c.entry), &live_entry, sizeof c.entry);
			const flow::flow_entry& e = c.entry;
			c.rule = dataplane::judge_flow(next, e);
			if (dataplane::verdict_of(next, e, c.rule) == rules::action::allow)
				return;
			++cut;
			c.bytes = e.traffic[0].bytes() + e.traffic[1].bytes();
			const bool v6 = e.key.family == 6;
			for (const auto& k : req.keep)
				if (k.v6 == v6 && ((k.addr == e.key.a() && k.port == e.key.port_a) || (k.addr == e.key.b() && k.port == e.key.port_b))) {
					kept_cut.push_back(c);
					break;
				}
			if (largest.size() < limit) {
				largest.push_back(c);
				std::push_heap(largest.begin(), largest.end(), larger);
			} else if (limit && c.bytes > largest.front().bytes) {
				std::pop_heap(largest.begin(), largest.end(), larger);
				largest.back() = c;
				std::push_heap(largest.begin(), largest.end(), larger);
			}
		});
	}
	std::sort_heap(largest.begin(), largest.end(), larger);  // largest first
	const uint64_t now = rte_rdtsc();
	auto answer = [&](const cut_flow& c) {
		json j = detail::flow_json(c.entry, c.worker, workers[c.worker]->flows(), now);
		j["new_rule"] = c.rule == classify::no_match ? json(nullptr) : json(c.rule);
		j["new_action"] = rules::action_name(dataplane::verdict_of(next, c.entry, c.rule));
		return j;
	};
	json listed = json::array(), keep = json::array();
	for (const auto& c : largest)
		listed.push_back(answer(c));
	for (const auto& c : kept_cut)
		keep.push_back(answer(c));

	json r = ok_response();
	r["dry_run"] = true;
	r["generation"] = live.generation;
	r["rules"] = next.rules.rules.size();
	r["digest"] = ruleset_digest(next.rules);
	r["diff"] = rule_diff(live.rules.rules, next.rules.rules);
	r["flows"] = {{"live", live_flows}, {"cut", cut}, {"listed", listed}};
	r["keep_cut"] = keep;
	return r;
}

json server::cmd_push(const parsed_request& req, const peer& who)
{
	auto readable = [&](const std::string& file) { return detail::readable_by(who.uid, who.gid, who.groups, file); };
	const uint64_t before = rt_.policy().generation;
	swap_report report;
	if (!req.path.empty() && !readable(req.path))
		return error_response(error_code::not_readable, "push: " + req.path + " is not readable by uid " +
		                                                    std::to_string(who.uid));
	if (req.dry_run)
		return cmd_push_preview(req, who);
	if (req.confirm_s)
		rt_.save_for_rollback();
	if (!req.path.empty())
		report = rt_.push_file(req.path, config_.parse);
	else
		report = rt_.push_text(req.text, req.name, config_.parse);
	if (!report.ok)
		return refusal(report, readable);
	if (req.confirm_s)
		rt_.arm_rollback(double(req.confirm_s));
	json r = ok_response();
	r["generation"] = report.generation;
	r["previous_generation"] = before;
	r["rollback"] = detail::rollback_of(rt_);
	r["rules"] = report.rules;
	r["compile_ms"] = report.compile_ms;
	r["quiesce_us"] = report.quiesce_us;
	r["digest"] = report.digest;
	r["source"] = source_of(rt_);
	return r;
}

json server::cmd_rules()
{
	const dataplane::compiled_policy& pol = rt_.policy();
	const uint64_t now = rte_rdtsc();
	json list = json::array();
	for (uint32_t i = 0; i < pol.rules.rules.size(); ++i) {
		json j = rule_summary(pol.rules.rules[i], i);
		const rule_totals t = rt_.rule_counters(i);
		j["packets"] = t.packets;
		j["bytes"] = t.bytes;
		if (t.last_hit_tsc && now >= t.last_hit_tsc)
			j["last_hit_seconds_ago"] = tsc_seconds(now - t.last_hit_tsc);
		else
			j["last_hit_seconds_ago"] = nullptr;
		const rules::rule& r = pol.rules.rules[i];
		if (r.limit)
			j["limit"] = r.limit->written;
		if (r.max_conn)
			j["max_conn"] = r.max_conn->max;
		if (r.limit || r.max_conn)
			j["over_limit"] = pol.total(i).over_limit;  // this generation's: flows over the limit or the count
		if (r.during) {
			j["during"] = r.during->written;
			j["in_window"] = !out_of_window(pol, i);
		}
		list.push_back(j);
	}
	json r = ok_response();
	r["generation"] = pol.generation;
	r["default_in"] = rules::action_name(pol.rules.default_in);
	r["default_out"] = rules::action_name(pol.rules.default_out);
	r["files"] = pol.rules.files;
	r["digest"] = rt_.digest();
	r["source"] = source_of(rt_);
	r["rollback"] = detail::rollback_of(rt_);
	r["rules"] = list;
	return r;
}

json server::cmd_confirm()
{
	const uint64_t generation = rt_.rollback().confirms_generation;
	if (!rt_.confirm())
		return error_response(error_code::failed, "confirm: no push is waiting to be confirmed");
	json r = ok_response();
	r["generation"] = generation;
	return r;
}

json server::cmd_explain(const parsed_request& req)
{
	const rules::flow_tuple& f = req.flow;
	const dataplane::compiled_policy& pol = rt_.policy();
	const auto& rs = pol.rules;
	// The data path's own classifier decides; the rule-by-rule walk explains and double-checks it.
	const uint8_t set_bits = live_set_bits(pol, f);
	uint32_t id = classify_one(*pol.classifier[size_t(f.dir)], set_bits, f);
	while (id != classify::no_match && out_of_window(pol, id)) {  // as the worker goes on past it
		const classify::classifier* after = pol.continue_after[size_t(f.dir)][pol.limiter_of[id]].get();
		id = after ? classify_one(*after, set_bits, f) : classify::no_match;
	}
	json skipped = json::array();
	uint32_t reference = classify::no_match;
	for (uint32_t i : rules::rules_for(rs, f.dir)) {
		const auto e = rules::explain(rs.rules[i], f, set_bits);
		if (e.matched && !out_of_window(pol, i)) {
			reference = i;
			break;
		}
		json s = rule_summary(rs.rules[i], i);
		s["reason"] = e.matched ? "outside its schedule (" + rs.rules[i].during->written + ")"
		              : e.reasons.empty() ? "" : e.reasons.back();
		skipped.push_back(std::move(s));
	}
	json r = ok_response();
	r["flow"] = rules::format(f);
	r["direction"] = rules::direction_name(f.dir);
	r["generation"] = pol.generation;
	if (id == classify::no_match) {
		r["verdict"] = rules::action_name(rs.default_for(f.dir));
		r["default"] = true;
		r["rule"] = nullptr;
	} else {
		const auto& rule = rs.rules[id];
		r["verdict"] = rules::action_name(rule.act);
		r["default"] = false;
		r["rule"] = rule_summary(rule, id);
		r["reasons"] = rules::explain(rule, f, set_bits).reasons;
	}
	r["skipped"] = std::move(skipped);
	if (id != reference) {
		r = error_response(error_code::failed, "internal error: the live classifier and the rule-by-rule reference disagree");
		r["classifier_rule"] = id == classify::no_match ? json(nullptr) : json(id);
		r["reference_rule"] = reference == classify::no_match ? json(nullptr) : json(reference);
	}
	return r;
}

} // namespace portcullis::control
