// Connection states and their idle timeouts.
#pragma once

#include <cstdint>
#include <string_view>

namespace portcullis::flow {

enum class flow_state : uint8_t {
	tcp_syn_sent,      // opener's SYN seen
	tcp_syn_received,  // responder's SYN-ACK seen
	tcp_established,   // opener's ACK of the SYN-ACK seen
	tcp_fin_wait,      // one side sent FIN
	tcp_time_wait,     // both sides sent FIN
	tcp_closed,        // RST seen
	udp_new,           // no reply yet
	udp_established,   // replied
	icmp_new,
	icmp_replied,
	other_new,
	other_established,
};
inline constexpr uint32_t flow_state_count = 12;

std::string_view to_string(flow_state s);

// Embryonic flows are the ones a flood creates: first to go when the table is full.
constexpr bool is_embryonic(flow_state s)
{
	return s == flow_state::tcp_syn_sent || s == flow_state::tcp_syn_received || s == flow_state::udp_new ||
	       s == flow_state::icmp_new || s == flow_state::other_new;
}

// Idle timeouts, seconds. Defaults follow the usual firewall practice: TCP established at least
// 2 h 4 min (RFC 5382 REQ-5), UDP at least 2 min once replied (RFC 4787 REQ-5; 5 min recommended),
// short timeouts for half-open flows so a SYN flood ages out fast.
struct timeouts {
	uint32_t seconds[flow_state_count] = {
		30,    // tcp_syn_sent
		30,    // tcp_syn_received
		7440,  // tcp_established
		120,   // tcp_fin_wait
		120,   // tcp_time_wait
		10,    // tcp_closed
		30,    // udp_new
		300,   // udp_established
		30,    // icmp_new
		30,    // icmp_replied
		30,    // other_new
		600,   // other_established
	};
	uint32_t& operator[](flow_state s) { return seconds[uint32_t(s)]; }
	uint32_t operator[](flow_state s) const { return seconds[uint32_t(s)]; }
};

} // namespace portcullis::flow
