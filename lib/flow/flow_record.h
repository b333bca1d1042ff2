// A flow as state sync carries it between appliances (lib/sync): what a peer needs to take the flow
// over, and how a peer's flow enters the owner's table.
//
// Threads: record_of by anyone who may read the table (a listing, as for_each); install by the table's
// owner only (the worker, or a test or bench acting as one).
#pragma once

#include <cstdint>

#include "flow/flow_table.h"

namespace portcullis::flow {

// 64 bytes, sent as they are (little-endian hosts only, as the table itself). Times are relative, so
// that the two appliances' clocks need not agree.
struct flow_record {
	flow_key key;
	uint32_t idle_ms;        // since the flow's last packet, at the sender
	uint32_t age_s;          // since its first packet
	uint32_t seq_end[2];     // TCP: as flow_entry
	uint16_t window[2];
	flow_state state;
	uint8_t flags;           // record_flag
	uint8_t pad[2];
};
static_assert(sizeof(flow_record) == 64);

namespace record_flag {
inline constexpr uint8_t opener_is_b = 1, opener_out = 2, fin_opener = 4, fin_responder = 8;
// The sender's own packets went through this flow (not only a peer's record of it): with both
// appliances seeing its packets, each sees part of the segments (ECMP), so windows are not checked.
inline constexpr uint8_t seen_here = 16;
}

// A record whose key and state are ones a flow can have (a state of its protocol).
bool valid(const flow_record& r);

// What a peer needs of e, read now (the sender's clock).
flow_record record_of(const flow_table& table, const flow_entry& e, uint64_t now);

// Is this entry one a peer can take over? Not a SYN-proxied flow: its sequence translation lives in
// the worker that proxied it (synproxy.h) and is not synced, so a peer could not carry it on.
inline bool syncable(const flow_entry& e) { return !e.syn_proxied; }

enum class install_result : uint8_t { inserted, updated, unchanged, refused };

// flow_entry::ruleset_generation of a flow a peer sent and no packet has crossed here yet: no policy's
// judge stamp, so the first packet judges it by this appliance's rules.
inline constexpr uint32_t installed_unjudged = UINT32_MAX;

// A peer's flow into the owner's table. A flow not there is inserted: its windows unknown (tracked
// liberally, as a flow picked up mid-stream), its rule unjudged (the first packet judges it by this
// appliance's rules, as after a rule swap), and its last packet as long ago as the record says. A flow
// already there moves forward only: its state to the record's when that is later in the same
// protocol's life (or the record's flow is a newer connection on the same tuple), its last packet to
// the later of the two; it is tracked liberally once the peer has seen packets of it too (seen_here). So
// a record that comes back from the peer it went to changes nothing.
// Refused when !valid(r).
install_result install(flow_table& table, const flow_record& r, uint64_t now);

} // namespace portcullis::flow
