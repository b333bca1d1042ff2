// State sync's form of a flow (flow_record.h).
#include "flow/flow_record.h"

#include <algorithm>
#include <cmath>

#include "classify/classify.h"

namespace portcullis::flow {

namespace {

// A flow's states in the order its life runs through them; the enum keeps each protocol's in order.
bool later(flow_state a, flow_state b) { return uint8_t(a) > uint8_t(b); }

bool closing(flow_state s)
{
	return s == flow_state::tcp_fin_wait || s == flow_state::tcp_time_wait || s == flow_state::tcp_closed;
}

uint64_t ms_ticks(const flow_table& t, uint32_t ms) { return uint64_t(ms) * (t.tsc_hz() / 1000); }

} // namespace

bool valid(const flow_record& r)
{
	if (uint8_t(r.state) >= flow_state_count || (r.key.family != 4 && r.key.family != 6))
		return false;
	const uint8_t s = uint8_t(r.state);
	switch (r.key.proto) {
	case 6: return s <= uint8_t(flow_state::tcp_closed);
	case 17: return r.state == flow_state::udp_new || r.state == flow_state::udp_established;
	case 1:
	case 58: return r.state == flow_state::icmp_new || r.state == flow_state::icmp_replied;
	default: return r.state == flow_state::other_new || r.state == flow_state::other_established;
	}
}

flow_record record_of(const flow_table& table, const flow_entry& e, uint64_t now)
{
	flow_record r{};
	r.key = e.key;
	// Rounded up: a copy is never fresher than its original, so a record that comes back advances nothing.
	r.idle_ms = uint32_t(std::min(std::ceil(table.idle_seconds(e, now) * 1000.0), 4e9));
	r.age_s = uint32_t(std::min(table.age_seconds(e, now), 4e9));
	r.seq_end[0] = e.seq_end[0];
	r.seq_end[1] = e.seq_end[1];
	r.window[0] = e.window[0];
	r.window[1] = e.window[1];
	r.state = load_state(e);
	r.flags = uint8_t((e.opener_is_b ? record_flag::opener_is_b : 0) | (e.opener_direction ? record_flag::opener_out : 0) |
	                  (e.fin_seen & 1 ? record_flag::fin_opener : 0) | (e.fin_seen & 2 ? record_flag::fin_responder : 0) |
	                  (e.ruleset_generation != installed_unjudged ? record_flag::seen_here : 0));
	return r;
}

install_result install(flow_table& table, const flow_record& r, uint64_t now)
{
	if (!valid(r))
		return install_result::refused;
	const uint64_t hash = hash_key(r.key);
	const uint32_t idle_ms = std::min(r.idle_ms, max_timeout_seconds * 1000u);
	const uint32_t last_seen = table.stamp(now - std::min(now, ms_ticks(table, idle_ms)));
	const uint8_t fin = uint8_t((r.flags & record_flag::fin_opener ? 1 : 0) | (r.flags & record_flag::fin_responder ? 2 : 0));
	if (flow_entry* e = table.lookup(r.key, hash)) {
		// Which connection on the tuple the record is of, by the ages (a tuple reopened starts its age over,
		// worker.cc): a new one opening where this copy is closing replaces it; one older than this copy
		// (a closing record of the connection before a reopen) changes no state. The 2 s margin covers
		// the rounding and the delays of a record on its way.
		const double local_age = table.age_seconds(*e, now);
		const bool newer_connection = is_embryonic(r.state) && closing(e->state) && double(r.age_s) + 2.0 < local_age;
		const bool older_connection = double(r.age_s) > local_age + 2.0;
		bool changed = false;
		if (newer_connection || (!older_connection && later(r.state, e->state))) {
			// The peer's view is further along (it saw the SYN-ACK, say): its ends and windows with it.
			e->seq_end[0] = r.seq_end[0];
			e->seq_end[1] = r.seq_end[1];
			e->window[0] = r.window[0];
			e->window[1] = r.window[1];
			store_state(*e, r.state);
			e->fin_seen = fin;
			if (newer_connection) {
				e->opener_is_b = r.flags & record_flag::opener_is_b ? 1 : 0;
				e->opener_direction = r.flags & record_flag::opener_out ? 1 : 0;
				e->tcp_liberal = 1;
				e->ruleset_generation = installed_unjudged;
				e->created = table.created_stamp(now - std::min(now, uint64_t(r.age_s) * table.tsc_hz()));
			}
			changed = true;
		}
		if ((r.flags & record_flag::seen_here) && !e->tcp_liberal) {
			e->tcp_liberal = 1;
			changed = true;
		}
		if (int32_t(last_seen - __atomic_load_n(&e->last_seen, __ATOMIC_RELAXED)) > 0) {
			__atomic_store_n(&e->last_seen, last_seen, __ATOMIC_RELAXED);
			changed = true;
		}
		return changed ? install_result::updated : install_result::unchanged;
	}
	flow_entry* e = table.insert(r.key, hash, now, 0, r.flags & record_flag::opener_is_b);
	if (!e)
		return install_result::refused;
	e->opener_direction = r.flags & record_flag::opener_out ? 1 : 0;
	e->fin_seen = fin;
	e->seq_end[0] = r.seq_end[0];
	e->seq_end[1] = r.seq_end[1];
	e->window[0] = r.window[0];
	e->window[1] = r.window[1];
	e->tcp_liberal = 1;
	e->rule_id = classify::no_match;
	e->ruleset_generation = installed_unjudged;  // its first packet is judged here
	const uint64_t age_ticks = uint64_t(r.age_s) * table.tsc_hz();
	e->created = table.created_stamp(now - std::min(now, age_ticks));
	__atomic_store_n(&e->last_seen, last_seen, __ATOMIC_RELAXED);
	store_state(*e, r.state);
	return install_result::inserted;
}

} // namespace portcullis::flow
