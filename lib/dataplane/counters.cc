// Names of the data path's drop reasons and stages, and the sum of per-core counters that readers take.
#include "dataplane/dataplane.h"

namespace portcullis::dataplane {

std::string_view to_string(stage s)
{
	switch (s) {
	case stage::parse: return "parse";
	case stage::lookup: return "lookup";
	case stage::track: return "track";
	case stage::classify: return "classify";
	case stage::open: return "open";
	case stage::counters: return "counters";
	case stage::tx_prepare: return "tx_prepare";
	case stage::count_: break;
	}
	return "unknown";
}

std::string_view to_string(drop_reason r)
{
	switch (r) {
	case drop_reason::rule_drop: return "rule_drop";
	case drop_reason::rule_reject: return "rule_reject";
	case drop_reason::default_drop: return "default_drop";
	case drop_reason::tcp_no_flow: return "tcp_no_flow";
	case drop_reason::conntrack_invalid: return "conntrack_invalid";
	case drop_reason::flow_table_full: return "flow_table_full";
	case drop_reason::revalidated: return "revalidated";
	case drop_reason::fragment_no_first: return "fragment_no_first";
	case drop_reason::l2_other: return "l2_other";
	case drop_reason::malformed: return "malformed";
	case drop_reason::tx_full: return "tx_full";
	case drop_reason::handoff_full: return "handoff_full";
	case drop_reason::rate_limited: return "rate_limited";
	case drop_reason::tcp_invalid_flags: return "tcp_invalid_flags";
	case drop_reason::tcp_out_of_window: return "tcp_out_of_window";
	case drop_reason::fragment_overlap: return "fragment_overlap";
	case drop_reason::martian_source: return "martian_source";
	case drop_reason::land: return "land";
	case drop_reason::martian_mac: return "martian_mac";
	case drop_reason::synproxy_pending: return "synproxy_pending";
	case drop_reason::standby: return "standby";
	case drop_reason::count_: break;
	}
	return "unknown";
}

void accumulate(worker_counters& t, const worker_counters& c)
{
	for (uint32_t p = 0; p < max_ports; ++p) {
		t.rx_packets[p] += c.rx_packets[p];
		t.rx_bytes[p] += c.rx_bytes[p];
		t.tx_packets[p] += c.tx_packets[p];
		t.tx_bytes[p] += c.tx_bytes[p];
	}
	for (int d = 0; d < 2; ++d)
		for (int v = 0; v < 3; ++v) {
			t.packets[d][v] += c.packets[d][v];
			t.bytes[d][v] += c.bytes[d][v];
		}
	for (size_t r = 0; r < drop_reason_count; ++r)
		t.drops[r] += c.drops[r];
	t.flows_opened += c.flows_opened;
	t.reply_packets += c.reply_packets;
	t.related_icmp += c.related_icmp;
	t.rejects_sent += c.rejects_sent;
	t.handed_off += c.handed_off;
	t.payload_decided += c.payload_decided;
	t.set_adds += c.set_adds;
	t.set_adds_lost += c.set_adds_lost;
	t.syncookies_sent += c.syncookies_sent;
	t.syncookies_accepted += c.syncookies_accepted;
	t.syncookies_failed += c.syncookies_failed;
	t.synproxy_handshakes += c.synproxy_handshakes;
	t.synproxy_held += c.synproxy_held;
	t.syncookies_active += c.syncookies_active;
	t.sync_installed += c.sync_installed;
	t.sync_updated += c.sync_updated;
	t.sync_refused += c.sync_refused;
	t.sync_deferred += c.sync_deferred;
	t.sync_deferred_resolved += c.sync_deferred_resolved;
	t.sync_deferred_expired += c.sync_deferred_expired;
	t.sync_defer_full += c.sync_defer_full;
	t.busy_tsc += c.busy_tsc;
	t.idle_tsc += c.idle_tsc;
	t.polls += c.polls;
	t.idle_polls += c.idle_polls;
	t.driver_rx_tsc += c.driver_rx_tsc;
	t.driver_tx_tsc += c.driver_tx_tsc;
	for (uint32_t st = 0; st < stage_count; ++st)
		t.stage_tsc[st] += c.stage_tsc[st];
	t.parse.packets += c.parse.packets;
	for (size_t r = 0; r < packet::drop_reason_count; ++r)
		t.parse.by_reason[r] += c.parse.by_reason[r];
	for (size_t k = 0; k < packet::packet_kind_count; ++k)
		t.parse.by_kind[k] += c.parse.by_kind[k];
}

} // namespace portcullis::dataplane
