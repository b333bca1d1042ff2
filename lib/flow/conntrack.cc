#include "flow/conntrack.h"

namespace portcullis::flow {
namespace {

constexpr uint8_t syn_ack = tcp_flag::syn | tcp_flag::ack;

void set_state(flow_entry& e, flow_state s) { store_state(e, s); }

ct_result track_tcp(flow_entry& e, const segment& s, bool from_opener)
{
	const uint8_t f = s.tcp_flags;
	const bool syn = f & tcp_flag::syn, ack = f & tcp_flag::ack, rst = f & tcp_flag::rst, fin = f & tcp_flag::fin;
	if (syn && rst)
		return ct_result::invalid;

	switch (e.state) {
	case flow_state::tcp_syn_sent: {
		// Until the SYN-ACK, responder_isn holds the SYN's data length (open()): with TCP Fast Open the
		// answer acknowledges ISN+1 up to ISN+1+data, as the responder took none, some or all of it.
		if (from_opener) {
			if (syn && !ack && s.payload > e.responder_isn)
				e.responder_isn = s.payload;  // a retransmission with more data
			return (syn && !ack) ? ct_result::pass : ct_result::invalid;  // SYN retransmission only
		}
		const bool acks_syn = s.ack - (e.opener_isn + 1) <= e.responder_isn;
		if ((f & syn_ack) == syn_ack && acks_syn) {
			e.opener_isn = s.ack - 1;  // what this SYN-ACK acknowledged: its retransmissions must say the same
			e.responder_isn = s.seq;
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
			set_state(e, flow_state::tcp_closed);
			return ct_result::pass;
		}
		if (from_opener) {
			if (syn)
				return ack ? ct_result::invalid : ct_result::pass;
			if (ack && s.ack == e.responder_isn + 1) {
				set_state(e, fin ? flow_state::tcp_fin_wait : flow_state::tcp_established);
				e.fin_seen |= fin ? 1 : 0;
				return ct_result::pass;
			}
			return ct_result::invalid;
		}
		// Only a retransmission of the SYN-ACK already seen.
		return ((f & syn_ack) == syn_ack && s.seq == e.responder_isn && s.ack == e.opener_isn + 1) ? ct_result::pass
		                                                                                        : ct_result::invalid;

	case flow_state::tcp_established:
	case flow_state::tcp_fin_wait:
		if (syn)
			return ct_result::invalid;
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
		// Last ACKs and retransmitted FINs/RSTs of the closing exchange still pass.
		return ct_result::pass;

	default:
		return ct_result::invalid;
	}
}

} // namespace

bool can_open(const segment& s, bool tcp_loose_pickup)
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

void open(flow_entry& e, const segment& s, bool tcp_loose_pickup)
{
	e.fin_seen = 0;
	switch (s.proto) {
	case 6:
		if ((s.tcp_flags & tcp_flag::syn) || !tcp_loose_pickup) {
			e.opener_isn = s.seq;
			e.responder_isn = s.payload;  // the SYN's data until the SYN-ACK comes (track_tcp)
			set_state(e, flow_state::tcp_syn_sent);
		} else {
			set_state(e, flow_state::tcp_established);  // picked up mid-stream
		}
		break;
	case 17: set_state(e, flow_state::udp_new); break;
	case 1:
	case 58: set_state(e, flow_state::icmp_new); break;
	default: set_state(e, flow_state::other_new); break;
	}
}

ct_result track(flow_entry& e, const segment& s, bool from_opener)
{
	switch (e.state) {
	case flow_state::udp_new:
		if (!from_opener)
			set_state(e, flow_state::udp_established);
		return ct_result::pass;
	case flow_state::icmp_new:
		if (!from_opener)
			set_state(e, flow_state::icmp_replied);
		return ct_result::pass;
	case flow_state::other_new:
		if (!from_opener)
			set_state(e, flow_state::other_established);
		return ct_result::pass;
	case flow_state::udp_established:
	case flow_state::icmp_replied:
	case flow_state::other_established:
		return ct_result::pass;
	default:
		return track_tcp(e, s, from_opener);
	}
}

} // namespace portcullis::flow
