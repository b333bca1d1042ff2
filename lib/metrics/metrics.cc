#include "metrics/metrics.h"

#include <prometheus/collectable.h>
#include <prometheus/exposer.h>
#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include <rte_cycles.h>

#include <chrono>
#include <exception>
#include <mutex>
#include <set>
#include <utility>

#include "control/runtime.h"
#include "dataplane/dataplane.h"
#include "flow/flow_table.h"
#include "packet/packet.h"
#include "sets/live_set.h"

#ifndef PORTCULLIS_VERSION
#define PORTCULLIS_VERSION "unknown"
#endif

namespace portcullis::metrics {
namespace {

namespace pm = prometheus;
namespace dp = dataplane;
using labels = std::vector<pm::ClientMetric::Label>;

// Workers write their counter rows with plain stores (the hot path does no atomics). Reading them with
// a relaxed atomic load keeps the compiler from tearing or caching the value here; on x86-64 it is the
// same single mov, and an aligned 64-bit store is never seen half done.
uint64_t peek(const uint64_t& v) { return __atomic_load_n(&v, __ATOMIC_RELAXED); }

class family {
public:
	family(std::string name, std::string help, pm::MetricType type)
	{
		f_.name = std::move(name);
		f_.help = std::move(help);
		f_.type = type;
	}
	family& add(labels l, double v)
	{
		pm::ClientMetric m;
		m.label = std::move(l);
		if (f_.type == pm::MetricType::Counter)
			m.counter.value = v;
		else
			m.gauge.value = v;
		f_.metric.push_back(std::move(m));
		return *this;
	}
	family& add(double v) { return add({}, v); }
	pm::MetricFamily take() { return std::move(f_); }

private:
	pm::MetricFamily f_;
};

family counter(std::string name, std::string help) { return family(std::move(name), std::move(help), pm::MetricType::Counter); }
family gauge(std::string name, std::string help) { return family(std::move(name), std::move(help), pm::MetricType::Gauge); }

// The worker counters summed over every worker (per-worker time is exported separately).
struct totals {
	uint64_t rx_packets[dp::max_ports] = {}, rx_bytes[dp::max_ports] = {};
	uint64_t tx_packets[dp::max_ports] = {}, tx_bytes[dp::max_ports] = {};
	uint64_t packets[2][3] = {}, bytes[2][3] = {};
	uint64_t drops[dp::drop_reason_count] = {};
	uint64_t malformed[packet::drop_reason_count] = {};
	uint64_t flows_opened = 0, reply_packets = 0, related_icmp = 0, rejects_sent = 0;
	uint64_t syncookies_sent = 0, syncookies_accepted = 0, syncookies_failed = 0, synproxy_handshakes = 0, synproxy_held = 0;
	uint64_t syncookies_active = 0;
	uint64_t sync_installed = 0, sync_updated = 0, sync_refused = 0;
	uint64_t sync_deferred = 0, sync_deferred_resolved = 0, sync_deferred_expired = 0, sync_defer_full = 0;
	// Flow tables.
	uint64_t flows = 0, capacity = 0, inserts = 0, refused_full = 0, refused_buckets = 0, evicted_embryonic = 0;
	uint64_t expired[flow::flow_state_count] = {};
	uint64_t flushed = 0;
};

totals sum(const control::runtime& rt)
{
	totals t;
	for (const auto& w : rt.workers()) {
		const dp::worker_counters& c = w->counters();
		for (uint32_t p = 0; p < dp::max_ports; ++p) {
			t.rx_packets[p] += peek(c.rx_packets[p]);
			t.rx_bytes[p] += peek(c.rx_bytes[p]);
			t.tx_packets[p] += peek(c.tx_packets[p]);
			t.tx_bytes[p] += peek(c.tx_bytes[p]);
		}
		for (int d = 0; d < 2; ++d)
			for (int v = 0; v < 3; ++v) {
				t.packets[d][v] += peek(c.packets[d][v]);
				t.bytes[d][v] += peek(c.bytes[d][v]);
			}
		for (size_t r = 0; r < dp::drop_reason_count; ++r)
			t.drops[r] += peek(c.drops[r]);
		for (size_t r = 0; r < packet::drop_reason_count; ++r)
			t.malformed[r] += peek(c.parse.by_reason[r]);
		t.flows_opened += peek(c.flows_opened);
		t.reply_packets += peek(c.reply_packets);
		t.related_icmp += peek(c.related_icmp);
		t.rejects_sent += peek(c.rejects_sent);
		t.syncookies_sent += peek(c.syncookies_sent);
		t.syncookies_accepted += peek(c.syncookies_accepted);
		t.syncookies_failed += peek(c.syncookies_failed);
		t.synproxy_handshakes += peek(c.synproxy_handshakes);
		t.synproxy_held += peek(c.synproxy_held);
		t.syncookies_active += peek(c.syncookies_active);
		t.sync_installed += peek(c.sync_installed);
		t.sync_updated += peek(c.sync_updated);
		t.sync_refused += peek(c.sync_refused);
		t.sync_deferred += peek(c.sync_deferred);
		t.sync_deferred_resolved += peek(c.sync_deferred_resolved);
		t.sync_deferred_expired += peek(c.sync_deferred_expired);
		t.sync_defer_full += peek(c.sync_defer_full);

		const flow::flow_table& ft = w->flows();
		const flow::table_counters& fc = ft.counters();
		constexpr auto relaxed = std::memory_order_relaxed;
		t.flows += ft.size();
		t.capacity += ft.capacity();
		t.inserts += fc.inserts.load(relaxed);
		t.refused_full += fc.refused_full.load(relaxed);
		t.refused_buckets += fc.refused_buckets.load(relaxed);
		t.evicted_embryonic += fc.evicted_embryonic.load(relaxed);
		for (uint32_t s = 0; s < flow::flow_state_count; ++s)
			t.expired[s] += fc.expired[s].load(relaxed);
		t.flushed += fc.flushed.load(relaxed);
	}
	return t;
}

// Ports a worker receives from or transmits to, in id order. Counter rows are indexed by port id, so
// an id past max_ports has no row (the port set-up refuses such ports anyway).
std::set<uint16_t> ports_of(const control::runtime& rt)
{
	std::set<uint16_t> ports;
	for (const auto& w : rt.workers())
		for (const dp::rx_queue_map& q : w->config().queues)
			for (uint16_t p : {q.port, q.tx_port[0], q.tx_port[1]})
				if (p < dp::max_ports)
					ports.insert(p);
	return ports;
}

std::string port_label(const exporter_options& opt, uint16_t port)
{
	auto it = opt.port_names.find(port);
	return it != opt.port_names.end() ? it->second : std::to_string(port);
}

double tsc_seconds(uint64_t tsc, const clock_anchor& clock) { return double(tsc) / clock.tsc_hz; }

// compiled_policy::set_hit_total with peek(): workers bump their rows with plain stores while we read.
uint64_t set_hits(const dp::compiled_policy& pol, uint32_t set)
{
	uint64_t n = 0;
	for (uint32_t w = 0; w < pol.workers; ++w)
		for (size_t t = 0; t < pol.rules.set_tests.size(); ++t)
			if (pol.rules.set_tests[t].set == set)
				n += peek(pol.set_hits[w].hits[t]);
	return n;
}

} // namespace

clock_anchor clock_anchor::now()
{
	clock_anchor a;
	a.tsc = rte_rdtsc();
	a.unix_seconds = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
	a.tsc_hz = double(rte_get_tsc_hz());
	if (a.tsc_hz <= 0)
		a.tsc_hz = 1;
	return a;
}

// Flow-state sync (lib/sync): its records, datagrams, refusals, peers, lag and bulk syncs.
void add_sync(std::vector<pm::MetricFamily>& out, const sync::sync_status& s, const totals& t)
{
	out.push_back(counter("portcullis_sync_records_total",
	                      "Flow records sent to peers, received from them, or dropped (a peer down, or too far behind).")
	                  .add({{"event", "sent"}}, double(s.records_sent))
	                  .add({{"event", "received"}}, double(s.records_received))
	                  .add({{"event", "dropped"}}, double(s.records_dropped))
	                  .take());
	out.push_back(counter("portcullis_sync_installs_total",
	                      "Peers' flows the workers installed (new), moved forward (updated), or could not (refused: table full).")
	                  .add({{"result", "new"}}, double(t.sync_installed))
	                  .add({{"result", "updated"}}, double(t.sync_updated))
	                  .add({{"result", "refused"}}, double(t.sync_refused))
	                  .take());
	out.push_back(counter("portcullis_sync_deferred_total",
	                      "TCP segments held for a peer's record (sync.defer-ms): held, then sent through again when "
	                      "the record came (resolved) or at the deadline (expired); full: not held, every slot taken.")
	                  .add({{"event", "held"}}, double(t.sync_deferred))
	                  .add({{"event", "resolved"}}, double(t.sync_deferred_resolved))
	                  .add({{"event", "expired"}}, double(t.sync_deferred_expired))
	                  .add({{"event", "full"}}, double(t.sync_defer_full))
	                  .take());
	out.push_back(counter("portcullis_sync_datagrams_total", "Sync datagrams sent, received, and resent for want of an acknowledgement.")
	                  .add({{"event", "sent"}}, double(s.datagrams_sent))
	                  .add({{"event", "received"}}, double(s.datagrams_received))
	                  .add({{"event", "retransmitted"}}, double(s.retransmitted))
	                  .take());
	out.push_back(counter("portcullis_sync_refused_total",
	                      "Sync datagrams refused: malformed, failed authentication, not from a configured peer, stale "
	                      "(an older boot or stream: a replay), misdirected (sent back to us, or meant for another "
	                      "appliance), or duplicate (already applied: a resend or a replay).")
	                  .add({{"reason", "malformed"}}, double(s.refused_malformed))
	                  .add({{"reason", "bad_auth"}}, double(s.refused_auth))
	                  .add({{"reason", "unknown_peer"}}, double(s.refused_unknown_peer))
	                  .add({{"reason", "stale"}}, double(s.refused_stale))
	                  .add({{"reason", "misdirected"}}, double(s.refused_misdirected))
	                  .add({{"reason", "duplicate"}}, double(s.duplicates))
	                  .take());
	auto up = gauge("portcullis_sync_peer_up", "1 while the peer is heard from (sync.peer).");
	auto lag = gauge("portcullis_sync_lag_seconds", "Age of the oldest sync datagram the peer has not acknowledged (0: none).");
	for (const sync::peer_status& p : s.peers) {
		up.add({{"peer", p.address}}, p.up ? 1 : 0);
		lag.add({{"peer", p.address}}, p.lag_seconds);
	}
	out.push_back(up.take());
	out.push_back(lag.take());
	out.push_back(gauge("portcullis_sync_ready",
	                    "1 once every peer that is up has completed a bulk sync to this appliance (or none came up).")
	                  .add(s.ready ? 1 : 0)
	                  .take());
	out.push_back(gauge("portcullis_sync_standby", "1 while this appliance is a standby that forwards nothing.")
	                  .add(s.standby ? 1 : 0)
	                  .take());
	out.push_back(gauge("portcullis_sync_last_bulk_seconds", "How long the last complete bulk sync to this appliance took.")
	                  .add(s.last_bulk_in_seconds)
	                  .take());
}

std::vector<pm::MetricFamily> collect(const control::runtime& rt, const exporter_options& opt, const clock_anchor& clock,
                                      std::vector<busy_sample>* previous_busy)
{
	std::vector<pm::MetricFamily> out;
	const totals t = sum(rt);

	// ---- ports ----
	{
		auto packets = counter("portcullis_port_packets_total", "Packets received (rx) or transmitted (tx) by the workers on a port.");
		auto bytes = counter("portcullis_port_bytes_total", "Bytes received (rx) or transmitted (tx) by the workers on a port.");
		for (uint16_t p : ports_of(rt)) {
			const std::string name = port_label(opt, p);
			packets.add({{"port", name}, {"direction", "rx"}}, double(t.rx_packets[p]));
			packets.add({{"port", name}, {"direction", "tx"}}, double(t.tx_packets[p]));
			bytes.add({{"port", name}, {"direction", "rx"}}, double(t.rx_bytes[p]));
			bytes.add({{"port", name}, {"direction", "tx"}}, double(t.tx_bytes[p]));
		}
		out.push_back(packets.take());
		out.push_back(bytes.take());
	}

	// ---- verdicts ----
	{
		static constexpr const char* directions[] = {"in", "out"};
		static constexpr const char* verdicts[] = {"allow", "drop", "reject"};
		auto packets = counter("portcullis_packets_total", "Packets judged, by direction and verdict.");
		auto bytes = counter("portcullis_bytes_total", "Bytes judged, by direction and verdict.");
		for (int d = 0; d < 2; ++d)
			for (int v = 0; v < 3; ++v) {
				packets.add({{"direction", directions[d]}, {"verdict", verdicts[v]}}, double(t.packets[d][v]));
				bytes.add({{"direction", directions[d]}, {"verdict", verdicts[v]}}, double(t.bytes[d][v]));
			}
		out.push_back(packets.take());
		out.push_back(bytes.take());
	}

	// ---- drops ----
	{
		auto drops = counter("portcullis_drops_total", "Packets dropped by the data path, by reason.");
		for (size_t r = 0; r < dp::drop_reason_count; ++r)
			drops.add({{"reason", std::string(dp::to_string(dp::drop_reason(r)))}}, double(t.drops[r]));
		out.push_back(drops.take());
		auto malformed = counter("portcullis_malformed_packets_total",
		                         "Frames the parser refused, by reason (their sum is portcullis_drops_total{reason=\"malformed\"}).");
		for (size_t r = 1; r < packet::drop_reason_count; ++r)  // 0 is `none`: parsed fine
			malformed.add({{"reason", std::string(packet::to_string(packet::drop_reason(r)))}}, double(t.malformed[r]));
		out.push_back(malformed.take());
	}

	// ---- connection tracking ----
	out.push_back(counter("portcullis_flows_opened_total", "Flows opened by an allowed first packet.").add(double(t.flows_opened)).take());
	out.push_back(counter("portcullis_reply_packets_total", "Packets passed as the reply of an allowed flow.").add(double(t.reply_packets)).take());
	out.push_back(counter("portcullis_related_icmp_total", "ICMP errors passed as related to a known flow.").add(double(t.related_icmp)).take());
	out.push_back(counter("portcullis_rejects_sent_total", "TCP RSTs and ICMP unreachables sent for reject rules.").add(double(t.rejects_sent)).take());
	out.push_back(counter("portcullis_syncookies_total", "SYN proxy: cookie SYN-ACKs sent, ACKs whose cookie opened a flow "
	                      "(accepted), ACKs of no flow without a good cookie (failed), server handshakes completed, client segments "
	                      "kept until their server answered (held).")
	                      .add({{"event", "sent"}}, double(t.syncookies_sent))
	                      .add({{"event", "accepted"}}, double(t.syncookies_accepted))
	                      .add({{"event", "failed"}}, double(t.syncookies_failed))
	                      .add({{"event", "handshake"}}, double(t.synproxy_handshakes))
	                      .add({{"event", "held"}}, double(t.synproxy_held))
	                      .take());
	out.push_back(gauge("portcullis_syncookies_active_workers", "Workers answering SYNs with cookies now (flows.syncookies).")
	                      .add(double(t.syncookies_active)).take());
	out.push_back(gauge("portcullis_flows", "Live flows in all flow tables.").add(double(t.flows)).take());
	out.push_back(gauge("portcullis_flow_capacity", "Flows the flow tables can hold in all.").add(double(t.capacity)).take());
	out.push_back(counter("portcullis_flow_inserts_total", "Flows inserted into the flow tables.").add(double(t.inserts)).take());
	out.push_back(counter("portcullis_flow_evictions_total", "Flows evicted to make room for a new one, by kind.")
	                      .add({{"kind", "embryonic"}}, double(t.evicted_embryonic))
	                      .take());
	out.push_back(counter("portcullis_flow_refused_total", "New flows refused by the flow table, by reason.")
	                      .add({{"reason", "full"}}, double(t.refused_full))
	                      .add({{"reason", "buckets"}}, double(t.refused_buckets))
	                      .take());
	{
		auto expired = counter("portcullis_flow_expirations_total", "Flows removed after their idle timeout, by the state they were in.");
		for (uint32_t s = 0; s < flow::flow_state_count; ++s)
			expired.add({{"state", std::string(flow::to_string(flow::flow_state(s)))}}, double(t.expired[s]));
		out.push_back(expired.take());
	}
	out.push_back(counter("portcullis_flows_flushed_total", "Flows removed by a flush.").add(double(t.flushed)).take());

	// ---- workers ----
	{
		auto busy = counter("portcullis_worker_busy_seconds_total", "Time a worker spent on polls that received packets.");
		auto idle = counter("portcullis_worker_idle_seconds_total", "Time a worker spent on polls that received nothing.");
		auto ratio = gauge("portcullis_worker_busy_ratio",
		                   previous_busy ? "Busy share of a worker's polling time since the previous scrape."
		                                 : "Busy share of a worker's polling time since it started.");
		auto polls = counter("portcullis_worker_polls_total", "RX queue polls by a worker.");
		auto idle_polls = counter("portcullis_worker_idle_polls_total", "RX queue polls by a worker that received nothing.");
		const auto& workers = rt.workers();
		if (previous_busy)
			previous_busy->resize(workers.size());
		for (size_t i = 0; i < workers.size(); ++i) {
			const dp::worker_counters& c = workers[i]->counters();
			const labels l = {{"worker", std::to_string(workers[i]->config().index)}};
			const busy_sample now{peek(c.busy_tsc), peek(c.idle_tsc)};
			busy.add(l, tsc_seconds(now.busy_tsc, clock));
			idle.add(l, tsc_seconds(now.idle_tsc, clock));
			double share = 0;
			if (previous_busy) {
				busy_sample& prev = (*previous_busy)[i];
				const uint64_t b = now.busy_tsc - prev.busy_tsc, total = b + (now.idle_tsc - prev.idle_tsc);
				// A worker that has not polled since the previous scrape (stopped, or two scrapes in one
				// poll round) has no new interval: repeat the last share rather than report 0/0.
				if (total) {
					share = double(b) / double(total);
					prev = {now.busy_tsc, now.idle_tsc, share};
				} else {
					share = prev.share;
				}
			} else if (const uint64_t total = now.busy_tsc + now.idle_tsc) {
				share = double(now.busy_tsc) / double(total);
			}
			ratio.add(l, share);
			polls.add(l, double(peek(c.polls)));
			idle_polls.add(l, double(peek(c.idle_polls)));
		}
		out.push_back(busy.take());
		out.push_back(idle.take());
		out.push_back(ratio.take());
		out.push_back(polls.take());
		out.push_back(idle_polls.take());
	}

	// ---- policy: read under the reader lock so a hot swap cannot free it under us ----
	{
		const auto lock = rt.reader_lock();
		const dp::compiled_policy& pol = rt.policy();
		auto packets = counter("portcullis_rule_packets_total", "Packets a rule accounts for: those it dropped or rejected, and every packet of the flows it allowed.");
		auto bytes = counter("portcullis_rule_bytes_total", "Bytes of the packets portcullis_rule_packets_total counts.");
		auto last_hit = gauge("portcullis_rule_last_hit_timestamp_seconds", "Unix time of the last packet a rule accounted for; 0 if none.");
		for (uint32_t i = 0; i < pol.rules.rules.size(); ++i) {
			const rules::rule& r = pol.rules.rules[i];
			const control::rule_totals c = rt.rule_counters(i);
			const labels l = {{"rule", r.counter}, {"file", r.loc.file}, {"line", std::to_string(r.loc.line)}};
			packets.add(l, double(c.packets));
			bytes.add(l, double(c.bytes));
			last_hit.add(l, c.last_hit_tsc ? clock.to_unix(c.last_hit_tsc) : 0.0);
		}
		out.push_back(packets.take());
		out.push_back(bytes.take());
		out.push_back(last_hit.take());
		out.push_back(gauge("portcullis_ruleset_generation", "Generation of the active rule set (1 at start, +1 per successful swap).")
		                      .add(double(pol.generation))
		                      .take());
		out.push_back(gauge("portcullis_ruleset_rules", "Rules in the active rule set.").add(double(pol.rules.rules.size())).take());
		out.push_back(gauge("portcullis_ruleset_etcd_revision",
		                    "etcd revision of the active rule set when it came from the followed key (rules.watch), else 0.")
		                      .add(double(rt.source().revision))
		                      .take());
		if (opt.rules_feed) {
			const control::rules_feed_status f = opt.rules_feed();
			out.push_back(gauge("portcullis_rules_watch_connected",
			                    "1 while the daemon watches the rule feed it follows (rules.watch), 0 while it retries.")
			                      .add({{"url", f.url}}, f.connected ? 1 : 0)
			                      .take());
			out.push_back(gauge("portcullis_rules_watch_revision",
			                    "Newest revision of the followed key seen, applied or refused (compare "
			                    "portcullis_ruleset_etcd_revision).")
			                      .add({{"url", f.url}}, double(f.revision))
			                      .take());
		}
		if (opt.sync)
			add_sync(out, opt.sync.status(), t);
		const control::runtime::rollback_state rollback = rt.rollback();
		out.push_back(gauge("portcullis_ruleset_rollback_pending",
		                    "1 while a push --confirm waits for `portcullis confirm`; the previous rules come back at "
		                    "portcullis_ruleset_rollback_deadline_timestamp_seconds otherwise.")
		                      .add(rollback.pending ? 1 : 0)
		                      .take());
		out.push_back(gauge("portcullis_ruleset_rollback_deadline_timestamp_seconds",
		                    "Unix time a pending push --confirm rolls back at; 0 when none is pending.")
		                      .add(rollback.pending ? rollback.deadline_unix : 0.0)
		                      .take());
		out.push_back(gauge("portcullis_ruleset_last_swap_timestamp_seconds",
		                    "Unix time the active rule set was published (start-up or the last successful swap).")
		                      .add(rt.last_swap_unix())
		                      .take());
		out.push_back(gauge("portcullis_ruleset_compile_seconds", "Time the active rule set took to compile.")
		                      .add(rt.last_compile_seconds())
		                      .take());
		out.push_back(gauge("portcullis_ruleset_swap_quiesce_seconds",
		                    "Time from publishing the last swapped-in rule set until every worker had moved to it.")
		                      .add(rt.last_quiesce_us() / 1e6)
		                      .take());
		out.push_back(counter("portcullis_ruleset_swaps_total", "Rule set swaps, by result (a failed one changes nothing).")
		                      .add({{"result", "ok"}}, double(rt.swaps_ok()))
		                      .add({{"result", "failed"}}, double(rt.swaps_failed()))
		                      .take());

		// ---- file sets: the control thread changes them (and their counters) only under the
		// exclusive lock, so what is read here is one consistent state of each set ----
		auto entries = gauge("portcullis_set_entries",
		                     "Entries of a file set: the lines with an address in its file (or last load) plus the runtime adds.");
		auto ranges = gauge("portcullis_set_ranges",
		                    "Disjoint address ranges of a file set's base (its file or last load; overlapping and adjacent entries merged).");
		auto memory = gauge("portcullis_set_memory_bytes", "Memory of a file set's current version and of its runtime lists.");
		auto hits = counter("portcullis_set_hits_total",
		                    "Lookups of a rule's test of a file set that found the address: one per test per packet of no known flow.");
		auto adds = counter("portcullis_set_adds_total", "Runtime adds to a file set (portcullis set add).");
		auto deletes = counter("portcullis_set_deletes_total", "Runtime deletes from a file set (portcullis set del).");
		auto expiries = counter("portcullis_set_expiries_total", "Runtime adds to a file set removed when their timeout passed.");
		auto loads = counter("portcullis_set_loads_total", "Loads that replaced a file set's base (portcullis set load).");
		auto flushes = counter("portcullis_set_flushes_total", "Flushes that emptied a file set (portcullis set flush).");
		auto evictions = counter("portcullis_set_evictions_total",
		                         "Runtime adds pushed out, oldest first, by an add to a file set holding its most adds.");
		for (uint32_t i = 0; i < pol.sets.size(); ++i) {
			const sets::live_set& s = *pol.sets[i];
			const sets::live_set_counters& c = s.counters();
			const labels l = {{"set", s.name()}};
			entries.add(l, double(s.base_entries() + s.adds().size()));
			ranges.add(l, double(s.base_ranges()));
			memory.add(l, double(s.memory_bytes()));
			hits.add(l, double(set_hits(pol, i)));
			adds.add(l, double(c.adds));
			deletes.add(l, double(c.deletes));
			expiries.add(l, double(c.expiries));
			loads.add(l, double(c.loads));
			flushes.add(l, double(c.flushes));
			evictions.add(l, double(c.evicted));
		}
		for (family* f : {&entries, &ranges, &memory, &hits, &adds, &deletes, &expiries, &loads, &flushes, &evictions})
			out.push_back(f->take());
	}

	out.push_back(gauge("portcullis_build_info", "Always 1; the version of the running portcullisd in a label.")
	                      .add({{"version", PORTCULLIS_VERSION}}, 1)
	                      .take());
	return out;
}

std::string render(const control::runtime& rt, const exporter_options& opt)
{
	return pm::TextSerializer().Serialize(collect(rt, opt, clock_anchor::now()));
}

// The Collectable prometheus-cpp calls on its HTTP threads. It holds the runtime by reference: the
// exporter (and with it the HTTP server) is destroyed before the runtime.
class exporter::collector final : public pm::Collectable {
public:
	collector(const control::runtime& rt, exporter_options opt) : rt_(rt), opt_(std::move(opt)), clock_(clock_anchor::now()) {}

	std::vector<pm::MetricFamily> Collect() const override
	{
		// Two HTTP threads may scrape at once; they share the busy-ratio baseline.
		std::lock_guard lock(busy_mutex_);
		return collect(rt_, opt_, clock_, &previous_busy_);
	}

private:
	const control::runtime& rt_;
	const exporter_options opt_;
	const clock_anchor clock_;
	mutable std::mutex busy_mutex_;
	mutable std::vector<busy_sample> previous_busy_;
};

exporter::start_result exporter::start(const control::runtime& rt, const exporter_options& opt)
{
	start_result result;
	std::unique_ptr<exporter> e(new exporter());
	try {
		e->collector_ = std::make_shared<collector>(rt, opt);
		e->exposer_ = std::make_unique<pm::Exposer>(opt.listen, opt.threads);
		e->exposer_->RegisterCollectable(e->collector_);
		const std::vector<int> ports = e->exposer_->GetListeningPorts();
		e->port_ = ports.empty() ? 0 : uint16_t(ports.front());
	} catch (const std::exception& ex) {
		result.error = "cannot serve metrics on " + opt.listen + ": " + ex.what();
		return result;
	} catch (...) {
		result.error = "cannot serve metrics on " + opt.listen;
		return result;
	}
	result.running = std::move(e);
	return result;
}

exporter::~exporter() = default;

} // namespace portcullis::metrics
