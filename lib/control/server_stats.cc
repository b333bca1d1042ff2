// The stats command (server.h): ports, traffic, drops, flows, rules, control counters and worker load.
// Each worker's recent load comes from a sample taken about once a second (sample_load).
#include "control/server.h"

#include <rte_ethdev.h>

#include <cstdio>
#include <set>

#include "control/server_internal.h"

namespace portcullis::control {

using json = nlohmann::json;
using clock = std::chrono::steady_clock;
using detail::ok_response;
using detail::source_of;

namespace {

json sync_json(const sync::sync_status& s, const dataplane::worker_counters& t)
{
	json peers = json::array();
	for (const sync::peer_status& p : s.peers)
		peers.push_back({{"address", p.address},
		                 {"up", p.up},
		                 {"boot", p.boot},
		                 {"bulk_in", {{"done", p.bulk_in_done}, {"received", p.bulk_in_received}, {"total", p.bulk_in_total}}},
		                 {"bulk_out",
		                  {{"acked", p.bulk_out_acked}, {"total", p.bulk_out_total}, {"seconds", p.bulk_out_seconds}}},
		                 {"lag_seconds", p.lag_seconds},
		                 {"queued", p.queued},
		                 {"in_flight", p.in_flight}});
	return {{"listen", s.listen},
	        {"role", s.standby ? "standby" : "active"},
	        {"ready", s.ready},
	        {"records", {{"sent", s.records_sent}, {"received", s.records_received}, {"dropped", s.records_dropped}}},
	        {"datagrams",
	         {{"sent", s.datagrams_sent}, {"received", s.datagrams_received}, {"retransmitted", s.retransmitted}}},
	        {"refused",
	         {{"malformed", s.refused_malformed},
	          {"bad_auth", s.refused_auth},
	          {"unknown_peer", s.refused_unknown_peer},
	          {"stale", s.refused_stale},
	          {"misdirected", s.refused_misdirected}}},
	        {"duplicates", s.duplicates},
	        {"out_of_order", s.out_of_order},
	        {"install_backpressure", s.install_backpressure},
	        {"installed", {{"new", t.sync_installed}, {"updated", t.sync_updated}, {"refused", t.sync_refused}}},
	        {"deferred",
	         {{"held", t.sync_deferred},
	          {"resolved", t.sync_deferred_resolved},
	          {"expired", t.sync_deferred_expired},
	          {"full", t.sync_defer_full}}},
	        {"bulk_syncs", {{"sent", s.bulk_syncs_sent}, {"received", s.bulk_syncs_received}}},
	        {"last_bulk_in_seconds", s.last_bulk_in_seconds},
	        {"walks", s.walks},
	        {"peers", peers}};
}

dataplane::worker_counters total_of(const runtime& rt)
{
	dataplane::worker_counters t{};
	for (const auto& w : rt.workers())
		dataplane::accumulate(t, w->counters());
	return t;
}

} // namespace

void server::sample_load()
{
	const auto& workers = rt_.workers();
	load_.resize(workers.size());
	for (size_t w = 0; w < workers.size(); ++w) {
		const auto& c = workers[w]->counters();
		const uint64_t busy = c.busy_tsc - load_[w].busy, idle = c.idle_tsc - load_[w].idle;
		load_[w].recent_ratio = busy + idle ? double(busy) / double(busy + idle) : 0.0;
		load_[w].busy = c.busy_tsc;
		load_[w].idle = c.idle_tsc;
	}
	last_sample_ = clock::now();
}

json server::cmd_stats()
{
	const auto& workers = rt_.workers();
	dataplane::worker_counters t{};
	std::set<uint16_t> ports;
	uint64_t live = 0, capacity = 0, inserts = 0, evicted = 0, refused_full = 0, refused_buckets = 0, flushed = 0;
	uint64_t expired[flow::flow_state_count] = {};
	json per_worker = json::array();
	if (load_.size() != workers.size())
		sample_load();
	for (size_t w = 0; w < workers.size(); ++w) {
		const auto& c = workers[w]->counters();
		dataplane::accumulate(t, c);
		for (const auto& q : workers[w]->config().queues) {
			ports.insert(q.port);
			ports.insert(q.tx_port[0]);
			ports.insert(q.tx_port[1]);
		}
		const auto& table = workers[w]->flows();
		const auto& tc = table.counters();
		live += table.size();
		capacity += table.capacity();
		inserts += tc.inserts.load(std::memory_order_relaxed);
		evicted += tc.evicted_embryonic.load(std::memory_order_relaxed);
		refused_full += tc.refused_full.load(std::memory_order_relaxed);
		refused_buckets += tc.refused_buckets.load(std::memory_order_relaxed);
		flushed += tc.flushed.load(std::memory_order_relaxed);
		for (uint32_t s = 0; s < flow::flow_state_count; ++s)
			expired[s] += tc.expired[s].load(std::memory_order_relaxed);
		const uint64_t all = c.busy_tsc + c.idle_tsc;
		per_worker.push_back({{"worker", w},
		                      {"busy_ratio", load_[w].recent_ratio},
		                      {"busy_ratio_total", all ? double(c.busy_tsc) / double(all) : 0.0},
		                      {"polls", c.polls},
		                      {"idle_polls", c.idle_polls},
		                      {"flows", table.size()}});
	}

	json port_list = json::array();
	for (uint16_t p : ports) {
		if (p >= dataplane::max_ports)
			continue;
		char name[RTE_ETH_NAME_MAX_LEN] = {};
		if (rte_eth_dev_get_name_by_port(p, name) != 0)
			std::snprintf(name, sizeof name, "port%u", unsigned(p));
		port_list.push_back({{"port", p},
		                     {"name", name},
		                     {"rx_packets", t.rx_packets[p]},
		                     {"rx_bytes", t.rx_bytes[p]},
		                     {"tx_packets", t.tx_packets[p]},
		                     {"tx_bytes", t.tx_bytes[p]}});
	}
	static const char* verdicts[] = {"forwarded", "dropped", "rejected"};
	json traffic = json::object();
	for (int d = 0; d < 2; ++d)
		for (int v = 0; v < 3; ++v)
			traffic[d == 0 ? "in" : "out"][verdicts[v]] = {{"packets", t.packets[d][v]}, {"bytes", t.bytes[d][v]}};
	json drops = json::object();
	for (size_t r = 0; r < dataplane::drop_reason_count; ++r)
		drops[std::string(dataplane::to_string(dataplane::drop_reason(r)))] = t.drops[r];
	json malformed = json::object();
	for (size_t r = 1; r < packet::drop_reason_count; ++r)
		malformed[std::string(packet::to_string(packet::drop_reason(r)))] = t.parse.by_reason[r];
	json kinds = json::object();
	for (size_t k = 0; k < packet::packet_kind_count; ++k)
		kinds[std::string(packet::to_string(packet::packet_kind(k)))] = t.parse.by_kind[k];
	json expired_by_state = json::object();
	uint64_t expired_total = 0;
	for (uint32_t s = 0; s < flow::flow_state_count; ++s) {
		expired_by_state[std::string(flow::to_string(flow::flow_state(s)))] = expired[s];
		expired_total += expired[s];
	}

	json r = ok_response();
	r["ports"] = port_list;
	r["traffic"] = traffic;
	r["parsed"] = {{"packets", t.parse.packets}, {"by_kind", kinds}};
	r["drops"] = drops;
	r["malformed"] = malformed;
	r["flows"] = {{"live", live},
	              {"capacity", capacity},
	              {"opened", t.flows_opened},
	              {"inserted", inserts},
	              {"evicted_embryonic", evicted},
	              {"refused_full", refused_full},
	              {"refused_buckets", refused_buckets},
	              {"flushed", flushed},
	              {"expired", expired_total},
	              {"expired_by_state", expired_by_state},
	              {"reply_packets", t.reply_packets},
	              {"related_icmp", t.related_icmp},
	              {"rejects_sent", t.rejects_sent}};
	const auto mode = workers.empty() ? dataplane::syncookie_mode::never : workers[0]->config().syncookies.mode;
	r["syncookies"] = {{"mode", mode == dataplane::syncookie_mode::always  ? "always"
	                            : mode == dataplane::syncookie_mode::never ? "never"
	                                                                      : "adaptive"},
	                   {"active_workers", t.syncookies_active},
	                   {"sent", t.syncookies_sent},
	                   {"accepted", t.syncookies_accepted},
	                   {"failed", t.syncookies_failed},
	                   {"handshakes", t.synproxy_handshakes},
	                   {"held", t.synproxy_held}};
	r["rules"] = {{"generation", rt_.policy().generation},
	              {"count", rt_.policy().rules.rules.size()},
	              {"swaps_ok", rt_.swaps_ok()},
	              {"swaps_failed", rt_.swaps_failed()},
	              {"last_swap_unix", rt_.last_swap_unix()},
	              {"last_compile_ms", rt_.last_compile_seconds() * 1000},
	              {"last_quiesce_us", rt_.last_quiesce_us()},
	              {"digest", rt_.digest()},
	              {"source", source_of(rt_)},
	              {"rollback", detail::rollback_of(rt_)}};
	if (config_.rules_feed) {
		const rules_feed_status f = config_.rules_feed();
		r["rules_watch"] = {{"url", f.url}, {"connected", f.connected}, {"state", f.state}, {"revision", f.revision}};
	}
	if (config_.sync)
		r["sync"] = sync_json(config_.sync.status(), t);
	r["workers"] = per_worker;
	r["control"] = {{"accepted", counters_.accepted},
	                {"refused", counters_.refused},
	                {"busy", counters_.busy},
	                {"requests", counters_.requests},
	                {"failed", counters_.failed},
	                {"protocol_errors", counters_.protocol_errors},
	                {"timeouts", counters_.timeouts}};
	return r;
}

json server::cmd_sync()
{
	if (!config_.sync)
		return error_response(error_code::failed, "sync: flow-state sync is off (sync.listen)");
	json r = ok_response();
	r["sync"] = sync_json(config_.sync.status(), total_of(rt_));
	return r;
}

json server::cmd_sync_promote()
{
	if (!config_.sync)
		return error_response(error_code::failed, "sync promote: flow-state sync is off (sync.listen)");
	json r = ok_response();
	r["result"] = config_.sync.promote();
	r["sync"] = sync_json(config_.sync.status(), total_of(rt_));
	return r;
}

} // namespace portcullis::control
