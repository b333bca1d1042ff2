// The flow-table commands (server.h): flows (a filtered listing across workers) and flush_flows.
#include "control/server.h"

#include <rte_cycles.h>

#include <algorithm>
#include <cstring>

#include "control/server_internal.h"
#include "rules/tuple.h"

namespace portcullis::control {
namespace {

using json = nlohmann::json;
using detail::ok_response;

} // namespace

json server::cmd_flows(const parsed_request& req)
{
	const flow_filter& filter = req.filter;
	const std::optional<uint8_t>& proto = filter.proto;
	const std::optional<address_prefix>& where = filter.address;
	const std::optional<uint16_t>& port = filter.port;
	const std::string state = filter.state.value_or("");
	if (filter.state) {
		bool known = false;
		for (uint32_t s = 0; s < flow::flow_state_count; ++s) {
			const std::string n(flow::to_string(flow::flow_state(s)));
			known |= n == state || (n.size() > state.size() && n.ends_with("_" + state));
		}
		if (!known)
			return error_response(error_code::failed,
			                      "flows: unknown state '" + state + "' (e.g. tcp_established, established, udp_new)");
	}
	const uint64_t limit = std::min<uint64_t>(req.limit.value_or(config_.default_flow_limit), config_.max_flow_limit);

	json list = json::array();
	uint64_t matched = 0, live = 0;
	const uint64_t now = rte_rdtsc();
	auto& workers = rt_.workers();
	for (uint32_t w = 0; w < workers.size(); ++w) {
		workers[w]->flows().for_each([&](const flow::flow_entry& live_entry) {
			++live;
			// The owner may be updating the entry: work from one copy so the fields agree at least roughly.
			flow::flow_entry e;
			std::memcpy(static_cast<void*>(&e), &live_entry, sizeof e);
			const bool v6 = e.key.family == 6;
			const bool b_opened = e.opener_is_b != 0;
			const u128 src = b_opened ? e.key.b() : e.key.a(), dst = b_opened ? e.key.a() : e.key.b();
			const uint16_t sport = b_opened ? e.key.port_b : e.key.port_a;
			const uint16_t dport = b_opened ? e.key.port_a : e.key.port_b;
			const std::string st(flow::to_string(e.state));
			if (proto && e.key.proto != *proto)
				return;
			if (where && !where->contains(v6, src) && !where->contains(v6, dst))
				return;
			const bool has_ports = e.key.proto == 6 || e.key.proto == 17;
			if (port && (!has_ports || (sport != *port && dport != *port)))
				return;
			if (!state.empty() && st != state && !st.ends_with("_" + state))
				return;
			++matched;
			if (list.size() >= limit)
				return;
			list.push_back(detail::flow_json(e, w, workers[w]->flows(), now));
		});
	}
	json r = ok_response();
	r["live"] = live;
	r["matched"] = matched;
	r["listed"] = list.size();
	r["truncated"] = matched > list.size();
	r["flows"] = std::move(list);
	return r;
}

namespace detail {

json flow_json(const flow::flow_entry& e, uint32_t worker, const flow::flow_table& table, uint64_t now)
{
	const bool v6 = e.key.family == 6;
	const bool b_opened = e.opener_is_b != 0;
	const u128 src = b_opened ? e.key.b() : e.key.a(), dst = b_opened ? e.key.a() : e.key.b();
	json j;
	j["worker"] = worker;
	j["proto"] = rules::format_protocol(e.key.proto);
	j["family"] = v6 ? 6 : 4;
	j["src"] = rules::format_address(v6, v6 ? src : u128(uint32_t(src)));
	j["dst"] = rules::format_address(v6, v6 ? dst : u128(uint32_t(dst)));
	j["sport"] = b_opened ? e.key.port_b : e.key.port_a;
	j["dport"] = b_opened ? e.key.port_a : e.key.port_b;
	j["direction"] = e.opener_direction ? "out" : "in";
	j["state"] = std::string(flow::to_string(e.state));
	j["age_s"] = table.age_seconds(e, now);
	j["idle_s"] = table.idle_seconds(e, now);
	j["packets"] = {e.traffic[0].packets(), e.traffic[1].packets()};
	j["bytes"] = {e.traffic[0].bytes(), e.traffic[1].bytes()};
	j["rule"] = e.rule_id;
	j["rule_generation"] = e.ruleset_generation >> 12;  // the judge stamp's generation part (policy.h)
	return j;
}

} // namespace detail

json server::cmd_flush_flows()
{
	json r = ok_response();
	r["flushed"] = rt_.flush_flows();
	return r;
}

} // namespace portcullis::control
