#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <iterator>
#include <random>

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
	CHECK(track(e, tcp(S, 1000, 0), true, window_mode::off) == ct_result::pass);            // SYN retransmission
	CHECK(track(e, tcp(A, 5, 1001), false, window_mode::off) == ct_result::invalid);         // responder data before SYN-ACK
	CHECK(track(e, tcp(S | A, 7000, 999), false, window_mode::off) == ct_result::invalid);   // SYN-ACK acking the wrong ISN
	CHECK(track(e, tcp(S | A, 7000, 1001), false, window_mode::off) == ct_result::pass);
	CHECK(e.state == flow_state::tcp_syn_received);
	CHECK(track(e, tcp(A, 1001, 6000), true, window_mode::off) == ct_result::invalid);       // ACK of a SYN-ACK never sent
	CHECK(track(e, tcp(A, 1001, 7001), true, window_mode::off) == ct_result::pass);
	CHECK(e.state == flow_state::tcp_established);
	CHECK(track(e, tcp(A, 7001, 1500), false, window_mode::off) == ct_result::pass);
	CHECK(track(e, tcp(S, 1, 0), true, window_mode::off) == ct_result::invalid);             // SYN inside a connection
	CHECK(track(e, tcp(F | A, 1500, 7001), true, window_mode::off) == ct_result::pass);
	CHECK(e.state == flow_state::tcp_fin_wait);
	CHECK(track(e, tcp(F | A, 7001, 1501), false, window_mode::off) == ct_result::pass);
	CHECK(e.state == flow_state::tcp_time_wait);
	CHECK(track(e, tcp(A, 1501, 7002), true, window_mode::off) == ct_result::pass);
	// The same 5-tuple opened again.
	CHECK(track(e, tcp(S, 9000, 0), true, window_mode::off) == ct_result::pass);
	CHECK(e.state == flow_state::tcp_syn_sent);
	CHECK(e.seq_end[0] == 9000);
}

TEST_CASE("RST handling")
{
	flow_entry e{};
	open(e, tcp(S, 1000, 0), false);
	CHECK(track(e, tcp(R | A, 0, 55), false, window_mode::off) == ct_result::invalid);  // blind RST: wrong ack
	CHECK(e.state == flow_state::tcp_syn_sent);
	CHECK(track(e, tcp(R | A, 0, 1001), false, window_mode::off) == ct_result::pass);   // port closed
	CHECK(e.state == flow_state::tcp_closed);
	CHECK(track(e, tcp(S | R, 0, 0), true, window_mode::off) == ct_result::invalid);
}

TEST_CASE("UDP and ICMP become established on the first reply")
{
	flow_entry u{};
	open(u, {17, 0, 0, 0}, false);
	CHECK(u.state == flow_state::udp_new);
	CHECK(is_embryonic(u.state));
	CHECK(track(u, {17, 0, 0, 0}, true, window_mode::off) == ct_result::pass);
	CHECK(u.state == flow_state::udp_new);
	CHECK(track(u, {17, 0, 0, 0}, false, window_mode::off) == ct_result::pass);
	CHECK(u.state == flow_state::udp_established);
	CHECK_FALSE(is_embryonic(u.state));
	flow_entry i{};
	open(i, {1, 0, 0, 0}, false);
	CHECK(i.state == flow_state::icmp_new);
	CHECK(track(i, {1, 0, 0, 0}, true, window_mode::off) == ct_result::pass);
	CHECK(i.state == flow_state::icmp_new);
	track(i, {1, 0, 0, 0}, false, window_mode::off);
	CHECK(i.state == flow_state::icmp_replied);
	// Other protocols (GRE here) likewise; a replied flow stays so, from either side.
	flow_entry o{};
	open(o, {47, 0, 0, 0}, false);
	CHECK(o.state == flow_state::other_new);
	CHECK(track(o, {47, 0, 0, 0}, true, window_mode::strict) == ct_result::pass);
	CHECK(o.state == flow_state::other_new);
	CHECK(track(o, {47, 0, 0, 0}, false, window_mode::strict) == ct_result::pass);
	CHECK(o.state == flow_state::other_established);
	for (flow_entry* e : {&u, &i, &o}) {
		const flow_state replied = e->state;
		CHECK(track(*e, {e->state == flow_state::udp_established ? uint8_t(17) : uint8_t(1), 0, 0, 0}, true,
		            window_mode::strict) == ct_result::pass);
		CHECK(track(*e, {17, 0, 0, 0}, false, window_mode::strict) == ct_result::pass);
		CHECK(e->state == replied);
	}
}

TEST_CASE("a retransmitted SYN-ACK must match the first one")
{
	flow_entry e{};
	open(e, tcp(S, 1000, 0), false);
	REQUIRE(track(e, tcp(S | A, 7000, 1001), false, window_mode::off) == ct_result::pass);
	CHECK(track(e, tcp(S | A, 7000, 1001), false, window_mode::off) == ct_result::pass);
	CHECK(track(e, tcp(S | A, 7000, 999), false, window_mode::off) == ct_result::invalid);
	CHECK(track(e, tcp(S | A, 7001, 1001), false, window_mode::off) == ct_result::invalid);
	// Data before the final ACK (a TCP Fast Open server answering at once) must acknowledge what the
	// SYN-ACK did.
	CHECK(track(e, tcp(A | tcp_flag::psh, 7001, 999), false, window_mode::off) == ct_result::invalid);
	CHECK(track(e, tcp(A | tcp_flag::psh, 7001, 1001), false, window_mode::off) == ct_result::pass);
	CHECK(track(e, tcp(F | A, 7001, 1001), false, window_mode::off) == ct_result::invalid);  // no FIN before it
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
		CHECK(track(e, tcp(S | A, 7000, 1000 + 1 + 581), false, window_mode::off) == ct_result::invalid);
		CHECK(track(e, tcp(S | A, 7000, 1000 + 1 + acked), false, window_mode::off) == ct_result::pass);
		CHECK(e.state == flow_state::tcp_syn_received);
		// A retransmitted SYN-ACK must acknowledge what the first did.
		CHECK(track(e, tcp(S | A, 7000, 1000 + 1 + acked), false, window_mode::off) == ct_result::pass);
		if (acked != 580)
			CHECK(track(e, tcp(S | A, 7000, 1000 + 1 + 580), false, window_mode::off) == ct_result::invalid);
		CHECK(track(e, tcp(A, 1000 + 1 + acked, 7001), true, window_mode::off) == ct_result::pass);
		CHECK(e.state == flow_state::tcp_established);
	}
	// Refused: the RST acknowledges the SYN and its data (Linux answers ack = ISN + 1 + length).
	flow_entry r{};
	open(r, segment{6, S, 5000, 0, 580}, false);
	CHECK(track(r, tcp(R | A, 0, 5000 + 1 + 580), false, window_mode::off) == ct_result::pass);
	CHECK(r.state == flow_state::tcp_closed);
	// Without data the SYN-ACK must acknowledge exactly ISN + 1, as before.
	flow_entry plain{};
	open(plain, tcp(S, 9000, 0), false);
	CHECK(track(plain, tcp(S | A, 1, 9000 + 2), false, window_mode::off) == ct_result::invalid);
	CHECK(track(plain, tcp(S | A, 1, 9000 + 1), false, window_mode::off) == ct_result::pass);
}

namespace {
// A segment with its window field; a SYN's window scale option in `scale` (none by default).
segment seg(uint8_t flags, uint32_t seq, uint32_t ack, uint16_t payload, uint16_t window, uint8_t scale = 0xff)
{
	return {6, flags, seq, ack, payload, window, scale};
}

// A connection set up through e: the opener's ISN is isn_o, the responder's isn_r; both SYNs carry
// their window and the scale option (0xff: none).
void handshake(flow_entry& e, uint32_t isn_o, uint32_t isn_r, uint16_t win_o, uint8_t scale_o, uint16_t win_r,
               uint8_t scale_r, window_mode mode = window_mode::strict)
{
	open(e, seg(S, isn_o, 0, 0, win_o, scale_o), false);
	REQUIRE(track(e, seg(S | A, isn_r, isn_o + 1, 0, win_r, scale_r), false, mode) == ct_result::pass);
	REQUIRE(track(e, seg(A, isn_o + 1, isn_r + 1, 0, win_o), true, mode) == ct_result::pass);
	REQUIRE(e.state == flow_state::tcp_established);
}
} // namespace

TEST_CASE("strict windows: data within the receiver's largest window passes, beyond it or older than it does not")
{
	flow_entry e{};
	// Scaling on both sides (shift 7): the responder's window field 8000 means 1,024,000 bytes.
	handshake(e, 1000, 50000, 64240, 7, 65160, 7);
	CHECK(max_window(e.window[1]) >= 65160);
	CHECK(track(e, seg(A, 50001, 1001, 0, 8000), false, window_mode::strict) == ct_result::pass);
	CHECK(max_window(e.window[1]) >= 1'024'000);
	CHECK(max_window(e.window[1]) <= 1'024'000 + (16 << 7));
	// A segment ending 1,000,000 bytes past what the opener sent: inside the window.
	CHECK(track(e, seg(A, 1001 + 1'000'000 - 1400, 50001, 1400, 500), true, window_mode::strict) == ct_result::pass);
	CHECK(e.seq_end[0] == 1001 + 1'000'000);
	// Two megabytes further: beyond any window the responder offered.
	CHECK(track(e, seg(A, 1001 + 3'000'000, 50001, 1400, 500), true, window_mode::strict) == ct_result::out_of_window);
	CHECK(e.seq_end[0] == 1001 + 1'000'000);
	// A retransmission of old data passes; data from more than a window back does not.
	CHECK(track(e, seg(A, 1001 + 500'000, 50001, 1400, 500), true, window_mode::strict) == ct_result::pass);
	CHECK(track(e, seg(A, 1001 + 1'000'000 - 1'100'000, 50001, 1400, 500), true, window_mode::strict) == ct_result::out_of_window);
	// A keep-alive (one byte below the next sequence number) passes.
	CHECK(track(e, seg(A, 1001 + 1'000'000 - 1, 50001, 0, 500), true, window_mode::strict) == ct_result::pass);
	// ACKs: not of bytes the opener never sent, nor from long before them.
	CHECK(track(e, seg(A, 50001, 1001 + 1'000'000, 0, 8000), false, window_mode::strict) == ct_result::pass);
	CHECK(track(e, seg(A, 50001, 1001 + 1'000'001, 0, 8000), false, window_mode::strict) == ct_result::out_of_window);
	CHECK(track(e, seg(A, 50001, 1001 - 2'000'000, 0, 8000), false, window_mode::strict) == ct_result::out_of_window);
	CHECK(e.state == flow_state::tcp_established);
}

TEST_CASE("window scaling is on only when both SYNs carry the option")
{
	flow_entry e{};
	handshake(e, 1000, 50000, 64240, 7, 65160, 0xff);  // the SYN-ACK has none: no scaling either way
	CHECK(track(e, seg(A, 50001, 1001, 0, 8000), false, window_mode::strict) == ct_result::pass);
	// The window field 8000 is 8000 bytes now; the largest window seen is still the SYN-ACK's 65160.
	CHECK(max_window(e.window[1]) < 65160 + 32);
	CHECK(track(e, seg(A, 1001 + 60'000, 50001, 1000, 500), true, window_mode::strict) == ct_result::pass);
	CHECK(track(e, seg(A, 1001 + 200'000, 50001, 1000, 500), true, window_mode::strict) == ct_result::out_of_window);
	// The opener's SYN window was never scaled either: the responder's data may reach about 64 KB past.
	CHECK(track(e, seg(A, 50001 + 60'000, 1001 + 61'000, 1000, 8000), false, window_mode::strict) == ct_result::pass);
	CHECK(track(e, seg(A, 50001 + 300'000, 1001 + 61'000, 1000, 8000), false, window_mode::strict) ==
	      ct_result::out_of_window);
}

TEST_CASE("a RST is accepted only within the window, in strict and in loose mode")
{
	for (const window_mode mode : {window_mode::strict, window_mode::loose, window_mode::off}) {
		INFO("mode " << int(mode));
		flow_entry e{};
		handshake(e, 1000, 50000, 64240, 7, 65160, 7, mode);
		CHECK(track(e, seg(A, 1001, 50001, 100, 500), true, mode) == ct_result::pass);
		// A blind RST: the right 5-tuple, a sequence number half the space away.
		const ct_result blind = track(e, seg(R, 50001 + 0x80000000u, 0, 0, 0), false, mode);
		CHECK(blind == (mode == window_mode::off ? ct_result::pass : ct_result::out_of_window));
		if (mode == window_mode::off)
			continue;
		CHECK(e.state == flow_state::tcp_established);
		// Out-of-window data passes only in loose mode.
		const ct_result data = track(e, seg(A, 1001 + 0x40000000u, 50001, 100, 500), true, mode);
		CHECK(data == (mode == window_mode::loose ? ct_result::pass : ct_result::out_of_window));
		// The responder's RST at its next sequence number kills the connection.
		CHECK(track(e, seg(R | A, 50001, 1101, 0, 0), false, mode) == ct_result::pass);
		CHECK(e.state == flow_state::tcp_closed);
	}
}

TEST_CASE("sequence numbers wrap: a connection whose ISN is near 2^32 crosses zero")
{
	flow_entry e{};
	const uint32_t isn = 0xffffff00u;
	handshake(e, isn, 0x7fffff00u, 64240, 7, 65160, 7);
	uint32_t seq = isn + 1;
	for (int i = 0; i < 10; ++i) {
		CHECK(track(e, seg(A, seq, 0x7fffff01u, 100, 500), true, window_mode::strict) == ct_result::pass);
		seq += 100;  // crosses 0 after three segments
	}
	CHECK(e.seq_end[0] == uint32_t(isn + 1 + 1000));
	CHECK(track(e, seg(A, 0x7fffff01u, seq, 0, 500), false, window_mode::strict) == ct_result::pass);
	CHECK(track(e, seg(A, 0x7fffff01u, seq + 1, 0, 500), false, window_mode::strict) == ct_result::out_of_window);
	CHECK(track(e, seg(A, isn + 1, 0x7fffff01u, 100, 500), true, window_mode::strict) == ct_result::pass);  // retransmitted
}

TEST_CASE("zero windows, window probes and a FIN's sequence number")
{
	flow_entry e{};
	handshake(e, 1000, 50000, 64240, 0xff, 65160, 0xff);
	// The responder closes its window; the opener probes it with one byte.
	CHECK(track(e, seg(A, 50001, 1001, 0, 0), false, window_mode::strict) == ct_result::pass);
	CHECK(track(e, seg(A, 1001, 50001, 1, 64240), true, window_mode::strict) == ct_result::pass);
	CHECK(track(e, seg(A, 1001, 50001, 1, 64240), true, window_mode::strict) == ct_result::pass);  // again
	// A FIN takes a sequence number: its ACK is one past it, not two.
	CHECK(track(e, seg(F | A, 1002, 50001, 0, 64240), true, window_mode::strict) == ct_result::pass);
	CHECK(track(e, seg(A, 50001, 1004, 0, 65160), false, window_mode::strict) == ct_result::out_of_window);
	CHECK(track(e, seg(A, 50001, 1003, 0, 65160), false, window_mode::strict) == ct_result::pass);
	CHECK(track(e, seg(F | A, 50001, 1003, 0, 65160), false, window_mode::strict) == ct_result::pass);
	CHECK(e.state == flow_state::tcp_time_wait);
	CHECK(track(e, seg(A, 1003, 50002, 0, 64240), true, window_mode::strict) == ct_result::pass);
	CHECK(track(e, seg(A, 1003, 50003, 0, 64240), true, window_mode::strict) == ct_result::out_of_window);
}

TEST_CASE("a TCP Fast Open server's data before the final ACK is window-checked too")
{
	flow_entry e{};
	open(e, seg(S, 1000, 0, 300, 64240, 7), false);
	REQUIRE(track(e, seg(S | A, 9000, 1301, 0, 65160, 7), false, window_mode::strict) == ct_result::pass);
	CHECK(track(e, seg(A, 9001, 1301, 1000, 500), false, window_mode::strict) == ct_result::pass);
	CHECK(track(e, seg(A, 9001 + 0x20000000u, 1301, 1000, 500), false, window_mode::strict) == ct_result::out_of_window);
	// The SYN-ACK retransmitted after that data still matches.
	CHECK(track(e, seg(S | A, 9000, 1301, 0, 65160, 7), false, window_mode::strict) == ct_result::pass);
	CHECK(track(e, seg(A, 1301, 10001, 0, 500), true, window_mode::strict) == ct_result::pass);
	CHECK(e.state == flow_state::tcp_established);
}

TEST_CASE("a connection picked up mid-stream is not window-checked (its scales are unknown)")
{
	flow_entry e{};
	open(e, seg(A, 123456, 987654, 100, 500), true);
	CHECK(e.state == flow_state::tcp_established);
	CHECK(e.tcp_liberal);
	CHECK(track(e, seg(A, 123456 + 0x40000000u, 987654, 100, 500), true, window_mode::strict) == ct_result::pass);
	CHECK(track(e, seg(R, 5, 0, 0, 0), false, window_mode::strict) == ct_result::pass);
	// A new connection on the tuple is tracked again.
	CHECK(track(e, seg(S, 1000, 0, 0, 64240, 7), true, window_mode::strict) == ct_result::pass);
	CHECK_FALSE(e.tcp_liberal);
}

TEST_CASE("a RST ends a window-tracked flow only at the sender's next sequence number")
{
	flow_entry e{};
	handshake(e, 1000, 50000, 64240, 7, 65160, 7);
	REQUIRE(track(e, seg(A, 50001, 1001, 500, 500), false, window_mode::strict) == ct_result::pass);  // 500 bytes
	// In the window but not exact: passed (the host answers with a challenge ACK), the flow stays.
	CHECK(track(e, seg(R, 50001 + 100, 0, 0, 0), false, window_mode::strict) == ct_result::pass);
	CHECK(e.state == flow_state::tcp_established);
	CHECK(track(e, seg(R | A, 50001 + 500 - 1, 1001, 0, 0), false, window_mode::strict) == ct_result::pass);
	CHECK(e.state == flow_state::tcp_established);
	// Ahead of the next sequence number but in the window: passed, and the sender's end stays.
	CHECK(track(e, seg(R, 50501 + 10000, 0, 0, 0), false, window_mode::strict) == ct_result::pass);
	CHECK(e.state == flow_state::tcp_established);
	CHECK(e.seq_end[1] == 50501);
	// The challenge ACK still passes; the RST at the exact next sequence number ends the flow.
	CHECK(track(e, seg(A, 1001, 50501, 0, 500), true, window_mode::strict) == ct_result::pass);
	CHECK(track(e, seg(R | A, 50501, 1001, 0, 0), false, window_mode::strict) == ct_result::pass);
	CHECK(e.state == flow_state::tcp_closed);
	// Without window tracking any RST the handshake checks let through ends it, as before.
	flow_entry off{};
	handshake(off, 1000, 50000, 64240, 7, 65160, 7, window_mode::off);
	CHECK(track(off, seg(R, 12345, 0, 0, 0), false, window_mode::off) == ct_result::pass);
	CHECK(off.state == flow_state::tcp_closed);
}

TEST_CASE("the responder's SYN-ACK retransmitted after the final ACK passes and changes nothing")
{
	flow_entry e{};
	handshake(e, 1000, 50000, 64240, 7, 65160, 7);
	CHECK(track(e, seg(S | A, 50000, 1001, 0, 65160, 7), false, window_mode::strict) == ct_result::pass);
	CHECK(e.state == flow_state::tcp_established);
	CHECK(e.seq_end[1] == 50001);
	// Not one acknowledging what the opener never sent, nor a SYN from the opener.
	CHECK(track(e, seg(S | A, 50000, 900000, 0, 65160, 7), false, window_mode::strict) == ct_result::invalid);
	CHECK(track(e, seg(S, 1000, 0, 0, 64240, 7), true, window_mode::strict) == ct_result::invalid);
}

TEST_CASE("a fragmented segment is checked by its start; ACKs of it may run past what was seen; a fragmented SYN's data may be acknowledged")
{
	flow_entry e{};
	handshake(e, 1000, 50000, 64240, 7, 65160, 7);
	segment first = seg(A | tcp_flag::psh, 1001, 50001, 480, 500);  // 480 of a 1000-byte segment
	first.partial = true;
	CHECK(track(e, first, true, window_mode::strict) == ct_result::pass);
	CHECK_FALSE(e.tcp_liberal);
	// The ACK of the whole segment: beyond what this packet showed, and still passed.
	CHECK(track(e, seg(A, 50001, 2001, 0, 500), false, window_mode::strict) == ct_result::pass);
	// A spoofed first fragment far out of the window is refused like any segment, and changes nothing:
	// a RST elsewhere in the window still does not end the flow.
	segment spoof = seg(A, 0x80000000u, 50001, 480, 500);
	spoof.partial = true;
	CHECK(track(e, spoof, true, window_mode::strict) == ct_result::out_of_window);
	CHECK(track(e, seg(R, 0x12345678u, 0, 0, 0), true, window_mode::strict) == ct_result::out_of_window);
	CHECK(e.state == flow_state::tcp_established);

	flow_entry syn_flow{};
	segment syn = seg(S, 7000, 0, 1400, 64240, 7);
	syn.partial = true;  // a fragmented SYN with 3000 bytes of TCP Fast Open data
	open(syn_flow, syn, false);
	CHECK(track(syn_flow, seg(S | A, 90000, 7001 + 3000, 0, 65160, 7), false, window_mode::strict) == ct_result::pass);
}

TEST_CASE("track_plain, the worker's way for a plain established segment, agrees with in_window and advance")
{
	// Random established entries and segments without SYN, FIN or RST, near each side's end so that both
	// verdicts come up: the result and every byte of the entry after it must be the general check's.
	std::mt19937_64 rng(0x7CA1'0E57);
	auto near = [&](uint32_t at) { return at + uint32_t(int32_t(rng() % 400'000) - 200'000); };
	size_t passed = 0, refused = 0;
	for (int it = 0; it < 200'000; ++it) {
		flow_entry e{};
		e.state = flow_state::tcp_established;
		e.seq_end[0] = uint32_t(rng());
		e.seq_end[1] = uint32_t(rng());
		e.window[0] = uint16_t(rng());
		e.window[1] = uint16_t(rng() % 4 == 0 ? rng() : rng() & 0x0fff);  // scale 0 often: small windows
		e.tcp_fragmented = rng() % 8 == 0;
		const uint32_t from = uint32_t(rng() & 1);
		const uint8_t flags = uint8_t((rng() % 3 ? A : 0) | (rng() & (tcp_flag::psh | tcp_flag::urg)));
		const segment s{6, flags, near(e.seq_end[from]), near(e.seq_end[from ^ 1]), uint16_t(rng() % 1500),
		                uint16_t(rng())};
		REQUIRE(is_plain_established(e, s.tcp_flags, window_mode::strict));
		flow_entry general = e;
		const ct_result want = in_window(general, s, from) ? ct_result::pass : ct_result::out_of_window;
		if (want == ct_result::pass)
			advance(general, s, from);
		const ct_result got = track_plain(e, s.seq, s.ack, s.payload, s.window, s.tcp_flags, from);
		REQUIRE(got == want);
		REQUIRE(std::memcmp(&e, &general, sizeof e) == 0);
		(got == ct_result::pass ? passed : refused)++;
	}
	// Both verdicts came up often enough for the comparison to mean something.
	CHECK(passed > 20'000);
	CHECK(refused > 20'000);
}

TEST_CASE("is_plain_established: only an established, window-tracked connection's segment without SYN, FIN or RST")
{
	flow_entry e{};
	e.state = flow_state::tcp_established;
	CHECK(is_plain_established(e, A, window_mode::strict));
	CHECK(is_plain_established(e, A | tcp_flag::psh, window_mode::strict));
	for (const uint8_t f : {S, F, R, uint8_t(S | A), uint8_t(F | A), uint8_t(R | A)})
		CHECK_FALSE(is_plain_established(e, f, window_mode::strict));
	CHECK_FALSE(is_plain_established(e, A, window_mode::loose));
	CHECK_FALSE(is_plain_established(e, A, window_mode::off));
	e.tcp_liberal = 1;
	CHECK_FALSE(is_plain_established(e, A, window_mode::strict));
	e.tcp_liberal = 0;
	e.state = flow_state::tcp_fin_wait;
	CHECK_FALSE(is_plain_established(e, A, window_mode::strict));
	e.state = flow_state::udp_established;
	CHECK_FALSE(is_plain_established(e, 0, window_mode::strict));
}
