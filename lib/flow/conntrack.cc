#include "flow/conntrack.h"

#include <algorithm>

namespace portcullis::flow {
namespace {

constexpr uint8_t syn_ack = tcp_flag::syn | tcp_flag::ack;

void set_state(flow_entry& e, flow_state s) { store_state(e, s); }

uint32_t scale_of(uint16_t field) { return field >> 12; }
// Both SYNs seen: window scaling is on only when both carried the option (RFC 7323 section 2.2). The
// SYNs' own windows are never scaled: they are turned into units of their side's scale.
void settle_windows(flow_entry& e, const segment& syn_ack_segment)
{
	const uint32_t opener_scale = scale_of(e.window[0]);
	const bool scaled = opener_scale != scale_unknown && syn_ack_segment.window_scale <= 14;
	const uint32_t so = scaled ? opener_scale : 0, sr = scaled ? syn_ack_segment.window_scale : 0;
	e.window[0] = window_field(so, (e.window[0] & 0xfffu) << 4 >> so);
	e.window[1] = window_field(sr, uint32_t(syn_ack_segment.window) >> sr);
}

int32_t diff(uint32_t a, uint32_t b) { return int32_t(a - b); }  // a - b in sequence space

// Window check of a segment in a synchronized state. Off, or a flow picked up mid-stream: nothing is
// checked, the ends follow every segment. Loose: only a RST must be in the window; other segments
// outside it pass but do not move the ends, which stay what the connection really did.
bool window_allows(flow_entry& e, const segment& s, uint32_t from, window_mode windows)
{
	if (windows == window_mode::off || e.tcp_liberal) {
		advance(e, s, from);
		return true;
	}
	if (in_window(e, s, from)) {
		advance(e, s, from);
		return true;
	}
	return windows == window_mode::loose && !(s.tcp_flags & tcp_flag::rst);
}

ct_result track_tcp(flow_entry& e, const segment& s, bool from_opener, window_mode windows)
{
	const uint8_t f = s.tcp_flags;
	const bool syn = f & tcp_flag::syn, ack = f & tcp_flag::ack, rst = f & tcp_flag::rst, fin = f & tcp_flag::fin;
	const uint32_t from = from_opener ? 0 : 1;
	if (syn && rst)
		return ct_result::invalid;

	switch (e.state) {
	case flow_state::tcp_syn_sent: {
		// Until the SYN-ACK, seq_end holds the opener's ISN and its SYN's data length (open()): with TCP
		// Fast Open the answer acknowledges ISN+1 up to ISN+1+data, as the responder took none, some or all.
		const uint32_t isn = e.seq_end[0], syn_data = e.seq_end[1];
		if (from_opener) {
			if (syn && !ack && s.payload > syn_data)
				e.seq_end[1] = s.payload;  // a retransmission with more data
			return (syn && !ack) ? ct_result::pass : ct_result::invalid;  // SYN retransmission only
		}
		const bool acks_syn = s.ack - (isn + 1) <= syn_data;
		if ((f & syn_ack) == syn_ack && acks_syn) {
			// From here on each side's end: the opener's is what this SYN-ACK acknowledged, which its
			// retransmissions must acknowledge too.
			e.seq_end[0] = s.ack;
			e.seq_end[1] = s.seq + 1 + s.payload;
			settle_windows(e, s);
			set_state(e, flow_state::tcp_syn_received);
			return ct_result::pass;
		}
		if (rst && ack && acks_syn) {  // connection refused
			set_state(e, flow_state::tcp_closed);
			return ct_result::pass;
		}
		return ct_result::invalid;
	}

	case flow_state::tcp_syn_received:
		if (rst) {
			if (!window_allows(e, s, from, windows))
				return ct_result::out_of_window;
			set_state(e, flow_state::tcp_closed);
			return ct_result::pass;
		}
		if (from_opener) {
			if (syn)
				return ack ? ct_result::invalid : ct_result::pass;
			if (ack && s.ack == e.seq_end[1]) {
				if (!window_allows(e, s, from, windows))
					return ct_result::out_of_window;
				set_state(e, fin ? flow_state::tcp_fin_wait : flow_state::tcp_established);
				e.fin_seen |= fin ? 1 : 0;
				return ct_result::pass;
			}
			return ct_result::invalid;
		}
		// A retransmission of the SYN-ACK already seen, or (TCP Fast Open) the responder's data before the
		// final ACK: either acknowledges what the SYN-ACK did.
		if (!ack || s.ack != e.seq_end[0])
			return ct_result::invalid;
		if (syn) {
			const uint32_t synack_end = s.seq + 1 + s.payload;
			return diff(synack_end, e.seq_end[1]) <= 0 && diff(e.seq_end[1], s.seq + 1) <= int32_t(max_window(e.window[0]))
			           ? ct_result::pass
			           : ct_result::invalid;
		}
		if (fin)
			return ct_result::invalid;
		return window_allows(e, s, from, windows) ? ct_result::pass : ct_result::out_of_window;

	case flow_state::tcp_established:
	case flow_state::tcp_fin_wait:
		if (syn) {
			// The responder's SYN-ACK again (the final ACK was lost after us): passed, changing nothing,
			// as conntrack ignores it, so that the opener can answer it. Any other SYN is invalid.
			if (!from_opener && ack && in_window(e, s, from))
				return ct_result::pass;
			return ct_result::invalid;
		}
		if (rst && windows != window_mode::off && !e.tcp_liberal) {
			// Tracked windows: only a RST at the sender's next sequence number ends the flow. One elsewhere
			// in the window passes but changes nothing, not even the sender's end: an RFC 5961 host answers
			// it with a challenge ACK rather than dropping the connection, and the flow must still carry
			// that answer (conntrack keeps such a connection established too).
			if (!in_window(e, s, from))
				return ct_result::out_of_window;
			if (s.seq != e.seq_end[from])
				return ct_result::pass;
			set_state(e, flow_state::tcp_closed);
			return ct_result::pass;
		}
		if (!window_allows(e, s, from, windows))
			return ct_result::out_of_window;
		if (rst) {
			set_state(e, flow_state::tcp_closed);
			return ct_result::pass;
		}
		if (fin) {
			e.fin_seen |= from_opener ? 1 : 2;
			set_state(e, e.fin_seen == 3 ? flow_state::tcp_time_wait : flow_state::tcp_fin_wait);
		}
		return ct_result::pass;

	case flow_state::tcp_time_wait:
	case flow_state::tcp_closed:
		// A new connection on the same 5-tuple from the same opener starts over.
		if (from_opener && syn && !ack) {
			open(e, s, false);
			return ct_result::pass;
		}
		if (syn)
			return ct_result::invalid;
		// Last ACKs and retransmitted FINs/RSTs of the closing exchange still pass, within the windows.
		return window_allows(e, s, from, windows) ? ct_result::pass : ct_result::out_of_window;

	default:
		return ct_result::invalid;
	}
}

} // namespace

ct_result track_slow(flow_entry& e, const segment& s, bool from_opener, window_mode windows)
{
	return track_tcp(e, s, from_opener, windows);  // track() has handled the other protocols' states
}

} // namespace portcullis::flow
