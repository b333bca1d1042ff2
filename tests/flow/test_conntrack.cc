#include <catch2/catch.hpp>

#include <algorithm>
#include <iterator>

#include "flow/conntrack.h"

using namespace portcullis::flow;

namespace {
segment tcp(uint8_t flags, uint32_t seq, uint32_t ack) { return {6, flags, seq, ack}; }
constexpr uint8_t S = tcp_flag::syn, A = tcp_flag::ack, F = tcp_flag::fin, R = tcp_flag::rst;
} // namespace

TEST_CASE("only a bare SYN opens a TCP flow unless loose pickup is on")
{
	CHECK(can_open(tcp(S, 1, 0), false));
	CHECK_FALSE(can_open(tcp(S | A, 1, 0), false));
	CHECK_FALSE(can_open(tcp(A, 1, 0), false));
	CHECK_FALSE(can_open(tcp(R, 1, 0), false));
	CHECK(can_open(tcp(A, 1, 0), true));
	CHECK_FALSE(can_open(tcp(R, 1, 0), true));
	CHECK(can_open({17, 0, 0, 0}, false));
}

TEST_CASE("three-way handshake, data and close")
{
	flow_entry e{};
	open(e, tcp(S, 1000, 0), false);
	CHECK(e.state == flow_state::tcp_syn_sent);
	CHECK(track(e, tcp(S, 1000, 0), true) == ct_result::pass);            // SYN retransmission
	CHECK(track(e, tcp(A, 5, 1001), false) == ct_result::invalid);         // responder data before SYN-ACK
	CHECK(track(e, tcp(S | A, 7000, 999), false) == ct_result::invalid);   // SYN-ACK acking the wrong ISN
	CHECK(track(e, tcp(S | A, 7000, 1001), false) == ct_result::pass);
	CHECK(e.state == flow_state::tcp_syn_received);
	CHECK(track(e, tcp(A, 1001, 6000), true) == ct_result::invalid);       // ACK of a SYN-ACK never sent
	CHECK(track(e, tcp(A, 1001, 7001), true) == ct_result::pass);
	CHECK(e.state == flow_state::tcp_established);
	CHECK(track(e, tcp(A, 7001, 1500), false) == ct_result::pass);
	CHECK(track(e, tcp(S, 1, 0), true) == ct_result::invalid);             // SYN inside a connection
	CHECK(track(e, tcp(F | A, 1500, 7001), true) == ct_result::pass);
	CHECK(e.state == flow_state::tcp_fin_wait);
	CHECK(track(e, tcp(F | A, 7001, 1501), false) == ct_result::pass);
	CHECK(e.state == flow_state::tcp_time_wait);
	CHECK(track(e, tcp(A, 1501, 7002), true) == ct_result::pass);
	// The same 5-tuple opened again.
	CHECK(track(e, tcp(S, 9000, 0), true) == ct_result::pass);
	CHECK(e.state == flow_state::tcp_syn_sent);
	CHECK(e.opener_isn == 9000);
}

TEST_CASE("RST handling")
{
	flow_entry e{};
	open(e, tcp(S, 1000, 0), false);
	CHECK(track(e, tcp(R | A, 0, 55), false) == ct_result::invalid);  // blind RST: wrong ack
	CHECK(e.state == flow_state::tcp_syn_sent);
	CHECK(track(e, tcp(R | A, 0, 1001), false) == ct_result::pass);   // port closed
	CHECK(e.state == flow_state::tcp_closed);
	CHECK(track(e, tcp(S | R, 0, 0), true) == ct_result::invalid);
}

TEST_CASE("UDP and ICMP become established on the first reply")
{
	flow_entry u{};
	open(u, {17, 0, 0, 0}, false);
	CHECK(u.state == flow_state::udp_new);
	CHECK(is_embryonic(u.state));
	CHECK(track(u, {17, 0, 0, 0}, true) == ct_result::pass);
	CHECK(u.state == flow_state::udp_new);
	CHECK(track(u, {17, 0, 0, 0}, false) == ct_result::pass);
	CHECK(u.state == flow_state::udp_established);
	CHECK_FALSE(is_embryonic(u.state));
	flow_entry i{};
	open(i, {1, 0, 0, 0}, false);
	CHECK(i.state == flow_state::icmp_new);
	track(i, {1, 0, 0, 0}, false);
	CHECK(i.state == flow_state::icmp_replied);
}

TEST_CASE("a retransmitted SYN-ACK must match the first one")
{
	flow_entry e{};
	open(e, tcp(S, 1000, 0), false);
	REQUIRE(track(e, tcp(S | A, 7000, 1001), false) == ct_result::pass);
	CHECK(track(e, tcp(S | A, 7000, 1001), false) == ct_result::pass);
	CHECK(track(e, tcp(S | A, 7000, 999), false) == ct_result::invalid);
	CHECK(track(e, tcp(S | A, 7001, 1001), false) == ct_result::invalid);
	CHECK(track(e, tcp(A | tcp_flag::psh, 7001, 1001), false) == ct_result::invalid);  // data before the handshake ends
}

TEST_CASE("valid TCP flag combinations follow conntrack's table, PSH, ECE and CWR aside")
{
	// The table, written out: SYN, SYN+ACK, RST, RST+ACK, FIN+ACK, ACK, each also with URG.
	const uint8_t valid[] = {0x02, 0x22, 0x12, 0x04, 0x14, 0x11, 0x31, 0x10, 0x30};
	for (uint32_t f = 0; f < 256; ++f) {
		const uint8_t core = uint8_t(f & ~(tcp_flag::psh | tcp_flag::ece | tcp_flag::cwr));
		const bool expect = std::find(std::begin(valid), std::end(valid), core) != std::end(valid);
		INFO("flags " << f);
		CHECK(valid_tcp_flags(uint8_t(f)) == expect);
	}
	CHECK(valid_tcp_flags(S | tcp_flag::ece | tcp_flag::cwr));  // an ECN-setup SYN (RFC 3168)
	CHECK_FALSE(valid_tcp_flags(S | F));
	CHECK_FALSE(valid_tcp_flags(0));                                   // NULL scan
	CHECK_FALSE(valid_tcp_flags(F | tcp_flag::psh | tcp_flag::urg));   // Xmas scan
	CHECK_FALSE(valid_tcp_flags(F));                                   // FIN scan
}

TEST_CASE("a SYN with data (TCP Fast Open): the answer may acknowledge none, some or all of it")
{
	for (const uint32_t acked : {0u, 100u, 580u}) {
		flow_entry e{};
		segment syn{6, S, 1000, 0, 580};
		open(e, syn, false);
		// Beyond the data: not an answer to this SYN.
		CHECK(track(e, tcp(S | A, 7000, 1000 + 1 + 581), false) == ct_result::invalid);
		CHECK(track(e, tcp(S | A, 7000, 1000 + 1 + acked), false) == ct_result::pass);
		CHECK(e.state == flow_state::tcp_syn_received);
		// A retransmitted SYN-ACK must acknowledge what the first did.
		CHECK(track(e, tcp(S | A, 7000, 1000 + 1 + acked), false) == ct_result::pass);
		if (acked != 580)
			CHECK(track(e, tcp(S | A, 7000, 1000 + 1 + 580), false) == ct_result::invalid);
		CHECK(track(e, tcp(A, 1000 + 1 + acked, 7001), true) == ct_result::pass);
		CHECK(e.state == flow_state::tcp_established);
	}
	// Refused: the RST acknowledges the SYN and its data (Linux answers ack = ISN + 1 + length).
	flow_entry r{};
	open(r, segment{6, S, 5000, 0, 580}, false);
	CHECK(track(r, tcp(R | A, 0, 5000 + 1 + 580), false) == ct_result::pass);
	CHECK(r.state == flow_state::tcp_closed);
	// Without data the SYN-ACK must acknowledge exactly ISN + 1, as before.
	flow_entry plain{};
	open(plain, tcp(S, 9000, 0), false);
	CHECK(track(plain, tcp(S | A, 1, 9000 + 2), false) == ct_result::invalid);
	CHECK(track(plain, tcp(S | A, 1, 9000 + 1), false) == ct_result::pass);
}
