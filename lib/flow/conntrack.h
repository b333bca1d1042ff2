// Connection tracking: what a packet does to its flow's state, and whether it is valid for that state.
//
// Window-less: sequence numbers are checked where the handshake pins them (the SYN-ACK must acknowledge
// the SYN, and its data with TCP Fast Open, the final handshake ACK must acknowledge the SYN-ACK, a RST
// to a half-open flow must carry the expected ACK), not against sliding windows. That stops blind handshake spoofing and RST injection
// into half-open flows without the per-segment bookkeeping of full window tracking.
// Called by the owner worker only, on its own flow entries.
#pragma once

#include <cstdint>

#include "flow/flow_table.h"

namespace portcullis::flow {

namespace tcp_flag {
inline constexpr uint8_t fin = 0x01, syn = 0x02, rst = 0x04, psh = 0x08, ack = 0x10, urg = 0x20, ece = 0x40, cwr = 0x80;
}

struct segment {
	uint8_t proto;
	uint8_t tcp_flags;
	uint32_t seq;
	uint32_t ack;
	uint16_t payload = 0;  // TCP payload bytes: a SYN's data (TCP Fast Open) moves the ACK that answers it
};

// May a TCP segment carry these flags at all? Linux conntrack's table (tcp_valid_flags), PSH, ECE and
// CWR aside: SYN, SYN+ACK, RST, RST+ACK, FIN+ACK, ACK, each also with URG. Refused: no flags (a NULL
// scan), FIN alone (FIN scan), FIN+PSH+URG (Xmas), SYN+FIN, SYN+RST and the like. A SYN with ECE and
// CWR is an ECN-setup SYN (RFC 3168) and valid.
inline bool valid_tcp_flags(uint8_t flags)
{
	constexpr uint64_t valid = uint64_t(1) << tcp_flag::syn | uint64_t(1) << (tcp_flag::syn | tcp_flag::urg) |
	                           uint64_t(1) << (tcp_flag::syn | tcp_flag::ack) | uint64_t(1) << tcp_flag::rst |
	                           uint64_t(1) << (tcp_flag::rst | tcp_flag::ack) | uint64_t(1) << (tcp_flag::fin | tcp_flag::ack) |
	                           uint64_t(1) << (tcp_flag::fin | tcp_flag::ack | tcp_flag::urg) | uint64_t(1) << tcp_flag::ack |
	                           uint64_t(1) << (tcp_flag::ack | tcp_flag::urg);
	return valid >> (flags & ~(tcp_flag::psh | tcp_flag::ece | tcp_flag::cwr)) & 1;
}

enum class ct_result : uint8_t {
	pass,
	invalid,  // not a valid packet for the flow's state: drop and count
};

// May this packet create a flow? TCP: a SYN without ACK (a mid-stream packet of an unknown connection is
// refused unless loose pickup is on); everything else: yes.
bool can_open(const segment& s, bool tcp_loose_pickup);

// Initial state of a flow opened by s (from the opener).
void open(flow_entry& e, const segment& s, bool tcp_loose_pickup);

// Updates e for a packet from the opener (from_opener) or the responder and says whether it passes.
ct_result track(flow_entry& e, const segment& s, bool from_opener);

} // namespace portcullis::flow
