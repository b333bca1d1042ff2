#include "control/telemetry.h"

#include <rte_telemetry.h>

#include <atomic>
#include <mutex>
#include <string>

#include "control/runtime.h"

namespace portcullis::control {
namespace {

std::atomic<const runtime*> g_runtime{nullptr};
std::mutex g_detach;  // held by a callback while it reads, and by detach_telemetry()

int stats(const char*, const char*, rte_tel_data* d)
{
	std::lock_guard guard(g_detach);
	const runtime* rt = g_runtime.load();
	if (!rt)
		return -1;
	dataplane::worker_counters t{};
	uint64_t flows = 0, capacity = 0, evicted = 0;
	for (const auto& w : rt->workers()) {
		dataplane::accumulate(t, w->counters());
		flows += w->flows().size();
		capacity += w->flows().capacity();
		evicted += w->flows().counters().evicted_embryonic.load(std::memory_order_relaxed);
	}
	rte_tel_data_start_dict(d);
	static const char* verdict[] = {"allow", "drop", "reject"};
	for (int dir = 0; dir < 2; ++dir)
		for (int v = 0; v < 3; ++v)
			rte_tel_data_add_dict_u64(d, (std::string(dir ? "out_" : "in_") + verdict[v] + "_packets").c_str(),
			                          t.packets[dir][v]);
	for (size_t r = 0; r < dataplane::drop_reason_count; ++r)
		rte_tel_data_add_dict_u64(d, ("drop_" + std::string(dataplane::to_string(dataplane::drop_reason(r)))).c_str(),
		                          t.drops[r]);
	for (size_t r = 1; r < packet::drop_reason_count; ++r)
		if (t.parse.by_reason[r])
			rte_tel_data_add_dict_u64(d, ("malformed_" + std::string(packet::to_string(packet::drop_reason(r)))).c_str(),
			                          t.parse.by_reason[r]);
	rte_tel_data_add_dict_u64(d, "flows", flows);
	rte_tel_data_add_dict_u64(d, "flow_capacity", capacity);
	rte_tel_data_add_dict_u64(d, "flows_opened", t.flows_opened);
	rte_tel_data_add_dict_u64(d, "flows_evicted_embryonic", evicted);
	auto lock = rt->reader_lock();
	rte_tel_data_add_dict_u64(d, "ruleset_generation", rt->policy().generation);
	rte_tel_data_add_dict_u64(d, "swaps_ok", rt->swaps_ok());
	rte_tel_data_add_dict_u64(d, "swaps_failed", rt->swaps_failed());
	return 0;
}

// Packets per rule, by counter name (the first 200 rules: telemetry dicts hold at most 256 entries).
int rules(const char*, const char*, rte_tel_data* d)
{
	std::lock_guard guard(g_detach);
	const runtime* rt = g_runtime.load();
	if (!rt)
		return -1;
	auto lock = rt->reader_lock();
	const auto& rs = rt->policy().rules;
	rte_tel_data_start_dict(d);
	for (uint32_t i = 0; i < rs.rules.size() && i < 200; ++i)
		rte_tel_data_add_dict_u64(d, rs.rules[i].counter.c_str(), rt->rule_counters(i).packets);
	return 0;
}

// Live flows by state.
int flows(const char*, const char*, rte_tel_data* d)
{
	std::lock_guard guard(g_detach);
	const runtime* rt = g_runtime.load();
	if (!rt)
		return -1;
	uint64_t by_state[flow::flow_state_count] = {};
	uint64_t total = 0;
	for (const auto& w : rt->workers())
		w->flows().for_each([&](const flow::flow_entry& e) {
			by_state[uint32_t(flow::load_state(e)) % flow::flow_state_count]++;
			++total;
		});
	rte_tel_data_start_dict(d);
	rte_tel_data_add_dict_u64(d, "total", total);
	for (uint32_t s = 0; s < flow::flow_state_count; ++s)
		rte_tel_data_add_dict_u64(d, std::string(flow::to_string(flow::flow_state(s))).c_str(), by_state[s]);
	return 0;
}

} // namespace

void attach_telemetry(const runtime& rt)
{
	static std::once_flag registered;
	std::call_once(registered, [] {
		rte_telemetry_register_cmd("/portcullis/stats", stats,
		                           "Portcullis totals: verdicts by direction, drops by reason, flows, rule-set generation");
		rte_telemetry_register_cmd("/portcullis/rules", rules, "Portcullis packets per rule, by counter name");
		rte_telemetry_register_cmd("/portcullis/flows", flows, "Portcullis live flows by state");
	});
	g_runtime.store(&rt);
}

void detach_telemetry()
{
	std::lock_guard guard(g_detach);
	g_runtime.store(nullptr);
}

} // namespace portcullis::control
