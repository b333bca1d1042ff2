// Connection tracking: what a packet does to its flow's state, and whether it is valid for that state.
//
// TCP is tracked as Linux conntrack and pf do. The handshake pins sequence numbers exactly (the SYN-ACK
// must acknowledge the SYN, and its data with TCP Fast Open; the final ACK must acknowledge the SYN-ACK;
// a RST to a half-open flow must carry the expected ACK). After it, with window tracking on, every
// segment must fall within the windows: its data no further than the receiver's largest window past what
// its sender sent before, nor older than that window (retransmissions and keep-alives pass); its ACK
// no further than what the other side sent, nor more than a window behind. Each side's window scale
// comes from the SYN and SYN-ACK options (RFC 7323), its largest window from every segment. That refuses
// blind RST injection and out-of-window data, as conntrack's tcp_in_window and pf's state tracking do.
// Called by the owner worker only, on its own flow entries.
#pragma once

#include <algorithm>
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
	uint16_t window = 0;   // raw window field
	uint8_t window_scale = 0xff;  // a SYN's window scale option, 0xff none (packet::no_window_scale)
	// A first fragment: the segment runs on past this packet, its length unknown here. Its start is
	// checked as any segment's; the flow's ACKs may then run up to 64 KB past what was seen sent (an ACK
	// of the whole segment would otherwise look like one of bytes never sent).
	bool partial = false;
};

// flows.tcp-window: how established TCP segments are checked against the windows.
enum class window_mode : uint8_t {
	strict,  // every segment (tcp_out_of_window otherwise)
	loose,   // RSTs only: no blind reset, but data is not checked (asymmetric paths, odd stacks)
	off,     // handshake checks only
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
	invalid,        // not a valid packet for the flow's state: drop and count
	out_of_window,  // a valid packet for the state, but outside the windows: drop and count
};

// flow_entry::window, per side: its window scale in the top 4 bits, its largest window (in units of
// 2^scale bytes) divided by 16 in the low 12, so that (low + 1) * 16 << scale bounds it from above: the
// room of 4 bytes for both sides. Until the SYN-ACK, window[0] holds the opener's SYN window and its
// scale option, scale 15 when it had none.
inline constexpr uint16_t scale_unknown = 15;
inline uint16_t window_field(uint32_t scale, uint32_t units) { return uint16_t(scale << 12 | std::min<uint32_t>(units >> 4, 0xfff)); }

// can_open and open are here, inline, because the worker calls them for every new flow: as calls into
// conntrack.cc they cost new_flows_64b 1.3-2% of the worker cycles (alternating 20 ms windows in one
// process, three runs).

// May this packet create a flow? TCP: a SYN without ACK (a mid-stream packet of an unknown connection is
// refused unless loose pickup is on); everything else: yes.
inline bool can_open(const segment& s, bool tcp_loose_pickup)
{
	if (s.proto != 6)
		return true;
	const uint8_t f = s.tcp_flags;
	if (f & tcp_flag::rst)
		return false;
	if ((f & (tcp_flag::syn | tcp_flag::ack)) == tcp_flag::syn)
		return true;
	return tcp_loose_pickup && !(f & tcp_flag::syn);
}

// Initial state of a flow opened by s (from the opener).
inline void open(flow_entry& e, const segment& s, bool tcp_loose_pickup)
{
	e.fin_seen = 0;
	e.syn_proxied = 0;  // a new connection on the tuple of a proxied one is not proxied (synproxy.h)
	switch (s.proto) {
	case 6:
		if ((s.tcp_flags & tcp_flag::syn) || !tcp_loose_pickup) {
			e.seq_end[0] = s.seq;
			// The SYN's data until the SYN-ACK comes (track_tcp); a fragmented SYN's, up to the most a
			// datagram holds.
			e.seq_end[1] = s.partial ? 0xffffu : s.payload;
			e.window[0] = window_field(s.window_scale <= 14 ? s.window_scale : scale_unknown, s.window);
			e.window[1] = 0;
			e.tcp_liberal = 0;
			e.tcp_fragmented = s.partial ? 1 : 0;
			store_state(e, flow_state::tcp_syn_sent);
		} else {
			// Picked up mid-stream: neither side's window scale is known, so the windows are not checked
			// (conntrack's "be liberal" for a picked-up connection); the ends are still followed.
			e.seq_end[0] = s.seq + s.payload;
			e.seq_end[1] = s.ack;
			e.tcp_liberal = 1;
			store_state(e, flow_state::tcp_established);
		}
		break;
	case 17: store_state(e, flow_state::udp_new); break;
	case 1:
	case 58: store_state(e, flow_state::icmp_new); break;
	default: store_state(e, flow_state::other_new); break;
	}
}

// The bound a flow_entry::window field (window_field, above) gives a side's largest window, in bytes (at
// most 2^30).
inline uint32_t max_window(uint16_t field) { return ((field & 0xfffu) + 1) << 4 << (field >> 12); }

// How far behind the other side's end an ACK may be whatever the window: conntrack's MAXACKWINDOW.
inline constexpr uint32_t max_ack_window_floor = 66000;

// Is a segment from side `from` (0 opener, 1 responder) of a synchronized connection within the windows?
// Data: its end no further past what its sender sent before than the receiver's largest window (the
// receiver's right edge, its last ACK plus its window, lies inside that), and no older than that window
// (retransmissions, keep-alives, zero-window probes pass). ACK: not of bytes the other side never sent,
// nor more than a window behind them (conntrack's MAXACKWINDOW, at least 66000).
inline bool in_window(const flow_entry& e, const segment& s, uint32_t from)
{
	const uint32_t to = from ^ 1u;
	const uint32_t len = s.payload + ((s.tcp_flags & tcp_flag::syn) ? 1u : 0u) + ((s.tcp_flags & tcp_flag::fin) ? 1u : 0u);
	// Distances taken both ways round the sequence space, so that half of it away is far either way.
	const uint32_t receive_window = max_window(e.window[to]);
	const uint32_t ahead = s.seq + len - e.seq_end[from];
	if (ahead > receive_window && uint32_t(-ahead) > receive_window)
		return false;
	// An ACK ahead of the other side's end is a huge distance behind it (except by up to one datagram
	// once a side sent a fragmented segment whose end this flow never saw).
	// (The floor first: most ACKs are well within it, and its test spares them decoding the window.)
	const uint32_t behind = e.seq_end[to] - s.ack;
	return !(s.tcp_flags & tcp_flag::ack) || behind <= max_ack_window_floor || behind <= max_window(e.window[from]) ||
	       (e.tcp_fragmented && s.ack - e.seq_end[to] <= 0xffffu);
}

// After a segment passed: its sender's end moves forward, its largest window grows (the window field of
// a segment that is not a SYN is in its sender's scale).
inline void advance(flow_entry& e, const segment& s, uint32_t from)
{
	const uint32_t end = s.seq + s.payload + ((s.tcp_flags & tcp_flag::fin) ? 1u : 0u);
	if (int32_t(end - e.seq_end[from]) > 0)
		e.seq_end[from] = end;
	if (!(s.tcp_flags & tcp_flag::syn) && uint32_t(s.window >> 4) > (e.window[from] & 0xfffu))
		e.window[from] = uint16_t((e.window[from] & 0xf000u) | uint32_t(s.window >> 4));
}

// A plain segment of an established connection under strict windows: no SYN, FIN or RST, and the
// connection's windows known (not picked up mid-stream).
inline bool is_plain_established(const flow_entry& e, uint8_t tcp_flags, window_mode windows)
{
	return e.state == flow_state::tcp_established && windows == window_mode::strict && !e.tcp_liberal &&
	       !(tcp_flags & (tcp_flag::syn | tcp_flag::fin | tcp_flag::rst));
}

// in_window and advance for such a segment from side `from` (0 opener, 1 responder), its fields passed
// as they are: what a SYN or FIN adds is left out, its length is its payload's and its window is in its
// sender's scale. The worker calls it straight from the parse record, without a segment: 0.90 of
// established_64b's worker cycles with the other cuts of that change (bench/README.md).
// Inline by force: with a second caller in the worker (its loop without calls) GCC 12 made it a function.
[[gnu::always_inline]] inline ct_result track_plain(flow_entry& e, uint32_t seq, uint32_t ack, uint16_t payload,
                                                    uint16_t window, uint8_t tcp_flags, uint32_t from)
{
	const uint32_t to = from ^ 1u;
	const uint32_t receive_window = max_window(e.window[to]);
	const uint32_t ahead = seq + payload - e.seq_end[from];
	if (ahead > receive_window && uint32_t(-ahead) > receive_window) [[unlikely]]
		return ct_result::out_of_window;
	const uint32_t behind = e.seq_end[to] - ack;
	if ((tcp_flags & tcp_flag::ack) && behind > max_ack_window_floor && behind > max_window(e.window[from]) &&
	    !(e.tcp_fragmented && ack - e.seq_end[to] <= 0xffffu)) [[unlikely]]
		return ct_result::out_of_window;
	if (int32_t(ahead) > 0)
		e.seq_end[from] += ahead;
	const uint32_t field = e.window[from];
	if (uint32_t(window >> 4) > (field & 0xfffu))
		e.window[from] = uint16_t((field & 0xf000u) | uint32_t(window >> 4));
	return ct_result::pass;
}

// A packet of a UDP, ICMP or other flow (its state udp_new or past it): a reply moves a new flow on,
// nothing else changes.
inline ct_result track_datagram(flow_entry& e, bool from_opener)
{
	if (!from_opener && uint8_t(e.state) % 2 == 0)
		store_state(e, flow_state(uint8_t(e.state) + 1));
	return ct_result::pass;
}

// Every other case of track(): the TCP states but a plain segment of an established connection.
ct_result track_slow(flow_entry& e, const segment& s, bool from_opener, window_mode windows);

// Updates e for a packet from the opener (from_opener) or the responder and says whether it passes.
// Inline for what most packets are: a UDP (ICMP, other) packet, or a segment of an established
// connection with no SYN, FIN or RST under strict tracking.
inline ct_result track(flow_entry& e, const segment& s, bool from_opener, window_mode windows)
{
	if (s.partial) [[unlikely]]
		e.tcp_fragmented = 1;
	if (is_plain_established(e, s.tcp_flags, windows))
		return track_plain(e, s.seq, s.ack, s.payload, s.window, s.tcp_flags, from_opener ? 0 : 1);
	// UDP, ICMP and other protocols: a reply moves a new flow on, nothing else changes. Inline, since a
	// flow that only ever goes one way (imix_1m's UDP, a syslog or video stream) stays new for good:
	// through track_slow it cost imix_1m 3% of the worker cycles (alternating 20 ms windows in one
	// process, two runs).
	static_assert(uint8_t(flow_state::udp_new) + 1 == uint8_t(flow_state::udp_established) &&
	              uint8_t(flow_state::icmp_new) == uint8_t(flow_state::udp_new) + 2 &&
	              uint8_t(flow_state::icmp_new) + 1 == uint8_t(flow_state::icmp_replied) &&
	              uint8_t(flow_state::other_new) == uint8_t(flow_state::icmp_new) + 2 &&
	              uint8_t(flow_state::other_new) + 1 == uint8_t(flow_state::other_established) &&
	              uint8_t(flow_state::udp_new) % 2 == 0 && flow_state_count == uint8_t(flow_state::other_established) + 1,
	              "the states past TCP's come in (new, replied) pairs, new even");
	if (uint8_t(e.state) >= uint8_t(flow_state::udp_new))
		return track_datagram(e, from_opener);
	return track_slow(e, s, from_opener, windows);
}

} // namespace portcullis::flow
