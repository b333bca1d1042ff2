// Malformed frames: each must be refused with exactly its own drop reason.
#include <catch2/catch.hpp>

#include "frames.h"

using namespace portcullis::packet;
using namespace portcullis::packet::test;

namespace {

drop_reason reason_of(const bytes& f) { return parse_bytes(f).reason; }

const bytes v4_tcp = eth(et_ipv4, ipv4({.proto = 6}, tcp({}, filler(10))));
const bytes v6_tcp = eth(et_ipv6, ipv6({.next_header = 6}, tcp({}, filler(10))));

} // namespace

TEST_CASE("truncated ethernet, including the empty frame")
{
	CHECK(reason_of({}) == drop_reason::eth_truncated);
	parsed p;
	CHECK(parse(nullptr, 0, p) == drop_reason::eth_truncated);
	CHECK(p.reason == drop_reason::eth_truncated);
	CHECK(p.kind == packet_kind::other_l2);
	for (size_t n = 1; n < 14; ++n)
		CHECK(reason_of(head(v4_tcp, n)) == drop_reason::eth_truncated);
}

TEST_CASE("vlan: truncated tag, three tags")
{
	const bytes one = eth(et_ipv4, ipv4({}, tcp({})), {{.vid = 5}});
	for (size_t n = 14; n < 18; ++n)
		CHECK(reason_of(head(one, n)) == drop_reason::vlan_truncated);
	const bytes two = eth(et_ipv4, ipv4({}, tcp({})), {{.tpid = 0x88A8, .vid = 5}, {.vid = 6}});
	for (size_t n = 18; n < 22; ++n)
		CHECK(reason_of(head(two, n)) == drop_reason::vlan_truncated);
	const bytes three = eth(et_ipv4, ipv4({}, tcp({})), {{.tpid = 0x88A8, .vid = 5}, {.vid = 6}, {.vid = 7}});
	CHECK(reason_of(three) == drop_reason::vlan_too_many_tags);
	// The third tag is refused even when its bytes are missing: the count decides first.
	CHECK(reason_of(head(three, 23)) == drop_reason::vlan_too_many_tags);
}

TEST_CASE("ipv4 header faults")
{
	SECTION("truncated below 20 bytes")
	{
		for (size_t n = 14; n < 34; ++n) {
			const parsed p = parse_bytes(head(v4_tcp, n));
			CHECK(p.reason == drop_reason::ipv4_truncated);
			CHECK(p.kind == packet_kind::ipv4);
		}
	}
	SECTION("bad version")
	{
		CHECK(reason_of(eth(et_ipv4, ipv4({.version = 6}, tcp({})))) == drop_reason::ipv4_bad_version);
		CHECK(reason_of(eth(et_ipv4, ipv4({.version = 0}, tcp({})))) == drop_reason::ipv4_bad_version);
	}
	SECTION("IHL < 5")
	{
		for (uint8_t ihl = 0; ihl < 5; ++ihl)
			CHECK(reason_of(eth(et_ipv4, ipv4({.ihl = ihl}, tcp({})))) == drop_reason::ipv4_bad_ihl);
	}
	SECTION("IHL past the end of the frame")
	{
		// IHL 15 = 60 bytes of header, but only 20 + 8 bytes follow the Ethernet header.
		CHECK(reason_of(eth(et_ipv4, ipv4({.proto = 17, .ihl = 15}, udp(1, 2)))) == drop_reason::ipv4_header_truncated);
		// Options declared but cut off.
		const bytes f = eth(et_ipv4, ipv4({.options = {1, 1, 1, 1, 1, 1, 1, 1}}, {}));
		CHECK(reason_of(head(f, f.size() - 1)) == drop_reason::ipv4_header_truncated);
	}
	SECTION("total length smaller than the header")
	{
		CHECK(reason_of(eth(et_ipv4, ipv4({.total_length = 19}, tcp({})))) == drop_reason::ipv4_bad_total_length);
		CHECK(reason_of(eth(et_ipv4, ipv4({.options = {1, 1, 1, 1}, .total_length = 20}, tcp({})))) ==
		      drop_reason::ipv4_bad_total_length);
		CHECK(reason_of(eth(et_ipv4, ipv4({.total_length = 0}, tcp({})))) == drop_reason::ipv4_bad_total_length);
	}
	SECTION("total length bigger than the frame")
	{
		CHECK(reason_of(eth(et_ipv4, ipv4({.total_length = 51}, tcp({}, filler(10))))) ==
		      drop_reason::ipv4_total_length_exceeds_frame);
		CHECK(reason_of(head(v4_tcp, v4_tcp.size() - 1)) == drop_reason::ipv4_total_length_exceeds_frame);
		CHECK(reason_of(eth(et_ipv4, ipv4({.total_length = 65535}, tcp({})))) == drop_reason::ipv4_total_length_exceeds_frame);
	}
	SECTION("malformed options")
	{
		// Length 1 (< 2), length past the header, a length byte missing at the end.
		CHECK(reason_of(eth(et_ipv4, ipv4({.proto = 17, .options = {7, 1, 0, 0}}, udp(1, 2)))) == drop_reason::ipv4_bad_options);
		CHECK(reason_of(eth(et_ipv4, ipv4({.proto = 17, .options = {7, 9, 0, 0, 0, 0, 0, 0}}, udp(1, 2)))) ==
		      drop_reason::ipv4_bad_options);
		CHECK(reason_of(eth(et_ipv4, ipv4({.proto = 17, .options = {1, 1, 1, 68}}, udp(1, 2)))) == drop_reason::ipv4_bad_options);
		// EOL ends the list; what follows is padding even if it looks like garbage.
		CHECK(reason_of(eth(et_ipv4, ipv4({.proto = 17, .options = {0, 99, 99, 99}}, udp(1, 2)))) == drop_reason::none);
	}
}

TEST_CASE("ipv4 fragment faults")
{
	SECTION("tiny first fragment")
	{
		// 16 bytes of TCP in a first fragment: the flags may only come in the next piece.
		const bytes tcp16 = head(tcp({}), 16);
		CHECK(reason_of(eth(et_ipv4, ipv4({.proto = 6, .mf = true}, tcp16))) == drop_reason::ipv4_tiny_fragment);
		// Header with options split across fragments.
		const bytes tcp_opts = head(tcp({.options = {2, 4, 5, 0xB4, 1, 1, 1, 1}}), 24);
		CHECK(reason_of(eth(et_ipv4, ipv4({.proto = 6, .mf = true}, tcp_opts))) == drop_reason::ipv4_tiny_fragment);
		CHECK(reason_of(eth(et_ipv4, ipv4({.proto = 17, .mf = true}, filler(4)))) == drop_reason::ipv4_tiny_fragment);
		CHECK(reason_of(eth(et_ipv4, ipv4({.proto = 1, .mf = true}, filler(6)))) == drop_reason::ipv4_tiny_fragment);
		// The same bytes unfragmented are an ordinary truncation.
		CHECK(reason_of(eth(et_ipv4, ipv4({.proto = 6}, tcp16))) == drop_reason::tcp_truncated);
		// A tiny fragment of a protocol we do not parse is fine.
		CHECK(reason_of(eth(et_ipv4, ipv4({.proto = 47, .mf = true}, filler(4)))) == drop_reason::none);
	}
	SECTION("offset + length beyond 65535")
	{
		CHECK(reason_of(eth(et_ipv4, ipv4({.proto = 17, .frag_offset = 65504}, filler(12)))) ==
		      drop_reason::ipv4_fragment_overflow);
		CHECK(reason_of(eth(et_ipv4, ipv4({.proto = 17, .frag_offset = 65528, .mf = true}, filler(100)))) ==
		      drop_reason::ipv4_fragment_overflow);
	}
	SECTION("TCP fragment at offset 8")
	{
		CHECK(reason_of(eth(et_ipv4, ipv4({.proto = 6, .frag_offset = 8}, filler(16)))) ==
		      drop_reason::ipv4_tcp_fragment_offset_one);
		CHECK(reason_of(eth(et_ipv4, ipv4({.proto = 17, .frag_offset = 8}, filler(16)))) == drop_reason::none);
	}
}

TEST_CASE("ipv6 header faults")
{
	for (size_t n = 14; n < 54; ++n) {
		const parsed p = parse_bytes(head(v6_tcp, n));
		CHECK(p.reason == drop_reason::ipv6_truncated);
		CHECK(p.kind == packet_kind::ipv6);
	}
	CHECK(reason_of(eth(et_ipv6, ipv6({.version = 4}, tcp({})))) == drop_reason::ipv6_bad_version);
	// Payload length says more than the frame holds.
	CHECK(reason_of(eth(et_ipv6, ipv6({.payload_length = 31}, tcp({}, filler(10))))) ==
	      drop_reason::ipv6_payload_length_exceeds_frame);
	CHECK(reason_of(head(v6_tcp, v6_tcp.size() - 1)) == drop_reason::ipv6_payload_length_exceeds_frame);
	// Payload length says less: TCP header cut by it, even though the frame has the bytes.
	CHECK(reason_of(eth(et_ipv6, ipv6({.payload_length = 19}, tcp({}, filler(10))))) == drop_reason::tcp_truncated);
}

TEST_CASE("ipv6 extension header faults")
{
	SECTION("chain longer than eight headers")
	{
		bytes chain;
		for (int i = 0; i < 8; ++i)
			chain = chain + ipv6_opts_ext(60);
		chain = chain + ipv6_opts_ext(17);
		CHECK(reason_of(eth(et_ipv6, ipv6({.next_header = 60}, chain + udp(1, 2)))) == drop_reason::ipv6_ext_chain_too_long);
		// Fragment headers count too.
		bytes frags;
		for (int i = 0; i < 9; ++i)
			frags = frags + ipv6_frag_ext(44, 0, false, uint32_t(i));
		CHECK(reason_of(eth(et_ipv6, ipv6({.next_header = 44}, frags + udp(1, 2)))) == drop_reason::ipv6_ext_chain_too_long);
	}
	SECTION("an extension header's length past the end")
	{
		// Declares 16 bytes, 8 present.
		bytes ext = ipv6_opts_ext(17);
		ext[1] = 1;
		CHECK(reason_of(eth(et_ipv6, ipv6({.next_header = 0}, ext))) == drop_reason::ipv6_ext_truncated);
		// Past the payload length, though within the frame.
		CHECK(reason_of(eth(et_ipv6, ipv6({.next_header = 60, .payload_length = 4}, ipv6_opts_ext(17) + udp(1, 2)))) ==
		      drop_reason::ipv6_ext_truncated);
		// A single byte of extension header.
		CHECK(reason_of(eth(et_ipv6, ipv6({.next_header = 43}, {17}))) == drop_reason::ipv6_ext_truncated);
		// AH too long, fragment header cut.
		bytes ah = ipv6_ah_ext(6, 12);
		ah[1] = 200;
		CHECK(reason_of(eth(et_ipv6, ipv6({.next_header = 51}, ah + tcp({})))) == drop_reason::ipv6_ext_truncated);
		CHECK(reason_of(eth(et_ipv6, ipv6({.next_header = 44}, head(ipv6_frag_ext(6, 0, false, 1), 6)))) ==
		      drop_reason::ipv6_ext_truncated);
		// Payload length 0 with a hop-by-hop header (a jumbogram, which we do not take).
		CHECK(reason_of(eth(et_ipv6, ipv6({.next_header = 0, .payload_length = 0}, ipv6_opts_ext(59)))) ==
		      drop_reason::ipv6_ext_truncated);
	}
	SECTION("tiny first fragment")
	{
		const bytes f = eth(et_ipv6, ipv6({.next_header = 44}, ipv6_frag_ext(6, 0, true, 1) + head(tcp({}), 12)));
		CHECK(reason_of(f) == drop_reason::ipv6_tiny_fragment);
		const bytes u = eth(et_ipv6, ipv6({.next_header = 44}, ipv6_frag_ext(17, 0, true, 1) + filler(7)));
		CHECK(reason_of(u) == drop_reason::ipv6_tiny_fragment);
	}
	SECTION("fragment overflow")
	{
		const bytes f = eth(et_ipv6, ipv6({.next_header = 44}, ipv6_frag_ext(17, 65528, false, 1) + filler(16)));
		CHECK(reason_of(f) == drop_reason::ipv6_fragment_overflow);
	}
}

TEST_CASE("tcp faults")
{
	SECTION("truncated below 20 bytes")
	{
		const bytes t = tcp({});
		for (size_t n = 0; n < 20; ++n)
			CHECK(reason_of(eth(et_ipv4, ipv4({.proto = 6}, head(t, n)))) == drop_reason::tcp_truncated);
		for (size_t n = 0; n < 20; ++n)
			CHECK(reason_of(eth(et_ipv6, ipv6({.next_header = 6}, head(t, n)))) == drop_reason::tcp_truncated);
	}
	SECTION("data offset < 5")
	{
		for (uint8_t d = 0; d < 5; ++d)
			CHECK(reason_of(eth(et_ipv4, ipv4({.proto = 6}, tcp({.data_offset = d}, filler(40))))) ==
			      drop_reason::tcp_bad_data_offset);
	}
	SECTION("data offset past the end")
	{
		CHECK(reason_of(eth(et_ipv4, ipv4({.proto = 6}, tcp({.data_offset = 15}, filler(39))))) ==
		      drop_reason::tcp_header_truncated);
		CHECK(reason_of(eth(et_ipv6, ipv6({.next_header = 6}, tcp({.data_offset = 6})))) == drop_reason::tcp_header_truncated);
		// Within the frame (Ethernet padding) but past the IP total length.
		CHECK(reason_of(eth(et_ipv4, ipv4({.proto = 6}, tcp({.data_offset = 8})), {}, 80)) == drop_reason::tcp_header_truncated);
	}
}

TEST_CASE("udp faults")
{
	for (size_t n = 0; n < 8; ++n)
		CHECK(reason_of(eth(et_ipv4, ipv4({.proto = 17}, head(udp(1, 2), n)))) == drop_reason::udp_truncated);
	CHECK(reason_of(eth(et_ipv6, ipv6({.next_header = 17}, head(udp(1, 2), 7)))) == drop_reason::udp_truncated);
	// Length field < 8.
	for (uint16_t l = 0; l < 8; ++l)
		CHECK(reason_of(eth(et_ipv4, ipv4({.proto = 17}, udp(1, 2, filler(4), l)))) == drop_reason::udp_bad_length);
	// Length field > IP payload.
	CHECK(reason_of(eth(et_ipv4, ipv4({.proto = 17}, udp(1, 2, filler(4), 13)))) == drop_reason::udp_bad_length);
	CHECK(reason_of(eth(et_ipv6, ipv6({.next_header = 17}, udp(1, 2, filler(4), 100)))) == drop_reason::udp_bad_length);
	// ... even when Ethernet padding would cover it.
	CHECK(reason_of(eth(et_ipv4, ipv4({.proto = 17}, udp(1, 2, {}, 16)), {}, 60)) == drop_reason::udp_bad_length);
}

TEST_CASE("icmp faults")
{
	for (size_t n = 0; n < 8; ++n) {
		CHECK(reason_of(eth(et_ipv4, ipv4({.proto = 1}, head(icmp_echo(8, 1, 1), n)))) == drop_reason::icmp_truncated);
		CHECK(reason_of(eth(et_ipv6, ipv6({.next_header = 58}, head(icmp_echo(128, 1, 1), n)))) == drop_reason::icmp_truncated);
	}
}

TEST_CASE("icmp errors quoting garbage")
{
	const bytes inner4 = ipv4({.proto = 17}, udp(1, 2, filler(8)));
	auto v4_error = [](const bytes& quote) { return reason_of(eth(et_ipv4, ipv4({.proto = 1}, icmp(3, 1, 0, quote)))); };
	auto v6_error = [](const bytes& quote) { return reason_of(eth(et_ipv6, ipv6({.next_header = 58}, icmp(1, 0, 0, quote)))); };

	CHECK(v4_error({}) == drop_reason::icmp_error_bad_quote);
	CHECK(v4_error(filler(40)) == drop_reason::icmp_error_bad_quote);         // version nibble 0
	CHECK(v4_error(head(inner4, 19)) == drop_reason::icmp_error_bad_quote);   // short IP header
	CHECK(v4_error(head(inner4, 27)) == drop_reason::icmp_error_bad_quote);   // 7 of the 8 L4 bytes
	CHECK(v4_error(ipv4({.ihl = 4}, tcp({}))) == drop_reason::icmp_error_bad_quote);
	CHECK(v4_error(ipv4({.proto = 17, .ihl = 15}, udp(1, 2))) == drop_reason::icmp_error_bad_quote);
	CHECK(v4_error(ipv6({}, tcp({}))) == drop_reason::icmp_error_bad_quote);  // wrong family

	const bytes inner6 = ipv6({.next_header = 17}, udp(1, 2));
	CHECK(v6_error({}) == drop_reason::icmp_error_bad_quote);
	CHECK(v6_error(head(inner6, 39)) == drop_reason::icmp_error_bad_quote);
	CHECK(v6_error(head(inner6, 47)) == drop_reason::icmp_error_bad_quote);
	CHECK(v6_error(inner4 + filler(40)) == drop_reason::icmp_error_bad_quote);
	bytes long_chain;
	for (int i = 0; i < 9; ++i)
		long_chain = long_chain + ipv6_opts_ext(60);
	CHECK(v6_error(ipv6({.next_header = 60}, long_chain + udp(1, 2))) == drop_reason::icmp_error_bad_quote);
	CHECK(v6_error(ipv6({.next_header = 0}, head(ipv6_opts_ext(17, 16), 12))) == drop_reason::icmp_error_bad_quote);

	// The quote is bounded by the outer IP length, not the frame: padding does not complete it.
	const bytes padded = eth(et_ipv4, ipv4({.proto = 1}, icmp(3, 1, 0, head(inner4, 24))), {}, 80);
	CHECK(reason_of(padded) == drop_reason::icmp_error_bad_quote);

	// Fields before the fault stay readable for diagnostics.
	const parsed p = parse_bytes(eth(et_ipv4, ipv4({.proto = 1}, icmp(11, 0, 0, {}))));
	CHECK(p.reason == drop_reason::icmp_error_bad_quote);
	CHECK(p.icmp_type == 11);
}

TEST_CASE("a multi-segment frame: headers past the first segment are mbuf_headers_segmented")
{
	parsed p;
	// Whole TCP header needed but only 40 bytes contiguous.
	CHECK(parse_first_segment(v4_tcp.data(), 40, uint32_t(v4_tcp.size()), p) == drop_reason::mbuf_headers_segmented);
	// A genuinely short frame is still refused for what it is.
	CHECK(parse_first_segment(v4_tcp.data(), 40, 40, p) == drop_reason::ipv4_total_length_exceeds_frame);
	// Headers in the first segment, payload beyond: fine, lengths checked against the whole frame.
	CHECK(parse_first_segment(v4_tcp.data(), 54, uint32_t(v4_tcp.size()), p) == drop_reason::none);
	CHECK(p.payload_length == 10);
	for (uint32_t contig = 0; contig < 54; ++contig)
		CHECK(parse_first_segment(v4_tcp.data(), contig, uint32_t(v4_tcp.size()), p) == drop_reason::mbuf_headers_segmented);
	for (uint32_t contig = 0; contig < 74; ++contig)
		CHECK(parse_first_segment(v6_tcp.data(), contig, uint32_t(v6_tcp.size()), p) == drop_reason::mbuf_headers_segmented);
}
