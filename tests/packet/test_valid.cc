// Well-formed frames: every field of the parsed record, for IPv4/IPv6 x TCP/UDP/ICMP, VLAN, QinQ,
// Ethernet padding, fragments, extension headers, ICMP errors and a jumbo frame.
#include <catch2/catch.hpp>

#include "frames.h"

using namespace portcullis::packet;
using namespace portcullis::packet::test;

TEST_CASE("record layout: two cache lines, per-packet fields in the first")
{
	STATIC_REQUIRE(sizeof(parsed) == 128);
	STATIC_REQUIRE(alignof(parsed) == 64);
	STATIC_REQUIRE(offsetof(parsed, tcp_ack) < 64);
}

TEST_CASE("ipv4 tcp: every field")
{
	const bytes payload = filler(100);
	const bytes f = eth(et_ipv4, ipv4({.proto = 6, .df = true},
	                                  tcp({.sport = 40000, .dport = 443, .seq = 0x01020304, .ack = 0xA0B0C0D0,
	                                       .flags = 0x12, .window = 29200, .options = {2, 4, 0x05, 0xB4}},
	                                      payload)));
	const parsed p = parse_bytes(f);
	REQUIRE(p.reason == drop_reason::none);
	CHECK(p.ok());
	CHECK(p.kind == packet_kind::ipv4);
	CHECK(p.family == 4);
	CHECK(p.ethertype == 0x0800);
	CHECK(p.vlan_count == 0);
	CHECK(p.l3_offset == 14);
	CHECK(p.l3_length == 20 + 24 + 100);
	CHECK(p.src.v4 == 0xC0000201);
	CHECK(p.dst.v4 == 0xC6336402);
	CHECK(p.src.v6 == 0xC0000201);  // upper bits zero
	CHECK(p.proto == 6);
	CHECK(p.sport == 40000);
	CHECK(p.dport == 443);
	CHECK(p.tcp_seq == 0x01020304);
	CHECK(p.tcp_ack == 0xA0B0C0D0);
	CHECK(p.tcp_flags == 0x12);
	CHECK(p.tcp_window == 29200);
	CHECK(p.l4_offset == 34);
	CHECK(p.payload_offset == 34 + 24);
	CHECK(p.payload_length == 100);
	CHECK(p.frag == 0);
	CHECK_FALSE(p.is_fragment());
	CHECK(p.frag_id == 0);  // only recorded for fragments
	CHECK(p.icmp_type == 0);
	CHECK(p.icmp_echo_id == 0);
	CHECK(p.inner.family == 0);
	CHECK_FALSE(p.is_icmp_error());
	CHECK(flow_sport(p) == 40000);
	CHECK(flow_dport(p) == 443);
	CHECK(f[p.payload_offset] == payload[0]);
}

TEST_CASE("ipv4 with options, udp")
{
	// Record route (7, len 7) and a router alert (148, len 4): IHL 8.
	const bytes opts = {1, 7, 7, 4, 0, 0, 0, 0, 148, 4, 0, 0};
	const bytes f = eth(et_ipv4, ipv4({.proto = 17, .options = opts}, udp(5353, 53, filler(33))));
	const parsed p = parse_bytes(f);
	REQUIRE(p.reason == drop_reason::none);
	CHECK(p.proto == 17);
	CHECK(p.l4_offset == 14 + 32);
	CHECK(p.sport == 5353);
	CHECK(p.dport == 53);
	CHECK(p.payload_offset == 14 + 32 + 8);
	CHECK(p.payload_length == 33);
	CHECK(p.tcp_flags == 0);
	CHECK(p.tcp_seq == 0);
}

TEST_CASE("udp length shorter than the IP payload: payload from the UDP length")
{
	const bytes f = eth(et_ipv4, ipv4({.proto = 17}, udp(1, 2, filler(20), 8 + 12)));
	const parsed p = parse_bytes(f);
	REQUIRE(p.ok());
	CHECK(p.payload_length == 12);
}

TEST_CASE("ethernet padding beyond the IP total length is ignored")
{
	// 14 + 20 + 8 = 42 bytes of headers, padded to the 60-byte minimum with non-zero junk.
	bytes f = eth(et_ipv4, ipv4({.proto = 17}, udp(1000, 2000)));
	REQUIRE(f.size() == 42);
	f.resize(60, 0xEE);
	const parsed p = parse_bytes(f);
	REQUIRE(p.ok());
	CHECK(p.l3_length == 28);
	CHECK(p.payload_offset == 42);
	CHECK(p.payload_length == 0);

	// Same for TCP: the payload length comes from the IP total length, not the frame.
	bytes t = eth(et_ipv4, ipv4({}, tcp({}, filler(2))), {}, 60);
	const parsed q = parse_bytes(t);
	REQUIRE(q.ok());
	CHECK(q.payload_length == 2);

	// And IPv6.
	bytes s = eth(et_ipv6, ipv6({.next_header = 17}, udp(1, 2, filler(3))));
	s.resize(s.size() + 9, 0xEE);
	const parsed r = parse_bytes(s);
	REQUIRE(r.ok());
	CHECK(r.payload_length == 3);
	CHECK(r.l3_length == 40 + 11);
}

TEST_CASE("ipv4 icmp echo: classifier ports are type/code, flow ports are the echo id")
{
	const bytes f = eth(et_ipv4, ipv4({.proto = 1}, icmp_echo(8, 0xBEEF, 3, filler(56))));
	const parsed p = parse_bytes(f);
	REQUIRE(p.ok());
	CHECK(p.proto == 1);
	CHECK(p.is_icmp());
	CHECK(p.is_icmp_echo());
	CHECK(p.icmp_type == 8);
	CHECK(p.icmp_code == 0);
	CHECK(p.icmp_echo_id == 0xBEEF);
	CHECK(p.sport == 8);
	CHECK(p.dport == 0);
	CHECK(flow_sport(p) == 0xBEEF);
	CHECK(flow_dport(p) == 0);
	CHECK(p.payload_offset == 14 + 20 + 8);
	CHECK(p.payload_length == 56);

	const parsed reply = parse_bytes(eth(et_ipv4, ipv4({.proto = 1}, icmp_echo(0, 0xBEEF, 3))));
	REQUIRE(reply.ok());
	CHECK(reply.icmp_type == 0);
	CHECK(reply.icmp_echo_id == 0xBEEF);
	CHECK(flow_sport(reply) == 0xBEEF);
}

TEST_CASE("ipv4 icmp non-echo: no echo id")
{
	// Timestamp request (13) carries an identifier but is not an echo.
	const parsed p = parse_bytes(eth(et_ipv4, ipv4({.proto = 1}, icmp(13, 0, 0x11112222, filler(12)))));
	REQUIRE(p.ok());
	CHECK(p.icmp_type == 13);
	CHECK(p.icmp_echo_id == 0);
	CHECK(p.sport == 13);
	CHECK(flow_sport(p) == 13);
	CHECK_FALSE(p.is_icmp_error());
}

TEST_CASE("ipv6 tcp: every field")
{
	const bytes f = eth(et_ipv6, ipv6({.next_header = 6}, tcp({.sport = 1234, .dport = 22, .flags = 0x02}, filler(10))));
	const parsed p = parse_bytes(f);
	REQUIRE(p.ok());
	CHECK(p.kind == packet_kind::ipv6);
	CHECK(p.family == 6);
	CHECK(p.ethertype == 0x86DD);
	CHECK(p.l3_offset == 14);
	CHECK(p.l3_length == 40 + 30);
	CHECK(p.src.v6 == v6addr(0x20010db800000000ull, 1));
	CHECK(p.dst.v6 == v6addr(0x20010db800000001ull, 2));
	CHECK(p.proto == 6);
	CHECK(p.sport == 1234);
	CHECK(p.dport == 22);
	CHECK(p.tcp_flags == 0x02);
	CHECK(p.tcp_seq == 0x01020304);
	CHECK(p.tcp_ack == 0xA0B0C0D0);
	CHECK(p.tcp_window == 64240);
	CHECK(p.l4_offset == 54);
	CHECK(p.payload_offset == 74);
	CHECK(p.payload_length == 10);
	CHECK(p.frag == 0);
}

TEST_CASE("ipv6 udp and icmpv6 echo")
{
	const parsed u = parse_bytes(eth(et_ipv6, ipv6({.next_header = 17}, udp(546, 547, filler(40)))));
	REQUIRE(u.ok());
	CHECK(u.proto == 17);
	CHECK(u.sport == 546);
	CHECK(u.dport == 547);
	CHECK(u.payload_length == 40);

	const parsed e = parse_bytes(eth(et_ipv6, ipv6({.next_header = 58}, icmp_echo(128, 0x4242, 1, filler(8)))));
	REQUIRE(e.ok());
	CHECK(e.proto == 58);
	CHECK(e.icmp_type == 128);
	CHECK(e.icmp_code == 0);
	CHECK(e.icmp_echo_id == 0x4242);
	CHECK(e.sport == 128);
	CHECK(e.dport == 0);
	CHECK(e.is_icmp_echo());
	CHECK(flow_sport(e) == 0x4242);

	// Neighbour solicitation: ICMPv6 but not echo, not error.
	const parsed ns = parse_bytes(eth(et_ipv6, ipv6({.next_header = 58}, icmp(135, 0, 0, filler(16)))));
	REQUIRE(ns.ok());
	CHECK(ns.icmp_type == 135);
	CHECK(ns.icmp_echo_id == 0);
	CHECK_FALSE(ns.is_icmp_error());
}

TEST_CASE("ipv6 extension chain: hop-by-hop, routing, destination options, AH, then TCP")
{
	const bytes chain = ipv6_opts_ext(43, 8) + ipv6_opts_ext(60, 24) + ipv6_opts_ext(51, 16) + ipv6_ah_ext(6, 24);
	const bytes f = eth(et_ipv6, ipv6({.next_header = 0}, chain + tcp({.dport = 80}, filler(5))));
	const parsed p = parse_bytes(f);
	REQUIRE(p.ok());
	CHECK(p.proto == 6);
	CHECK(p.l4_offset == 14 + 40 + 8 + 24 + 16 + 24);
	CHECK(p.dport == 80);
	CHECK(p.payload_length == 5);
	CHECK(p.frag == 0);
}

TEST_CASE("ipv6 extension chain of exactly eight headers is accepted")
{
	bytes chain;
	for (int i = 0; i < 7; ++i)
		chain = chain + ipv6_opts_ext(60);
	chain = chain + ipv6_opts_ext(17);
	const parsed p = parse_bytes(eth(et_ipv6, ipv6({.next_header = 60}, chain + udp(7, 9))));
	REQUIRE(p.ok());
	CHECK(p.proto == 17);
	CHECK(p.l4_offset == 14 + 40 + 64);
	CHECK(p.dport == 9);
}

TEST_CASE("ipv6 ESP and no-next-header end the walk")
{
	const parsed esp = parse_bytes(eth(et_ipv6, ipv6({.next_header = 0}, ipv6_opts_ext(50) + filler(40))));
	REQUIRE(esp.ok());
	CHECK(esp.proto == 50);
	CHECK(esp.l4_offset == 14 + 48);
	CHECK(esp.payload_offset == esp.l4_offset);
	CHECK(esp.payload_length == 40);
	CHECK(esp.sport == 0);

	const parsed none = parse_bytes(eth(et_ipv6, ipv6({.next_header = 59}, {})));
	REQUIRE(none.ok());
	CHECK(none.proto == 59);
	CHECK(none.payload_length == 0);
}

TEST_CASE("vlan and qinq: ids recorded, outer first")
{
	const bytes inner = ipv4({.proto = 17}, udp(10, 20));
	const parsed one = parse_bytes(eth(et_ipv4, inner, {{.tpid = 0x8100, .vid = 100, .pcp = 5}}));
	REQUIRE(one.ok());
	CHECK(one.vlan_count == 1);
	CHECK(one.vlan_id[0] == 100);
	CHECK(one.vlan_id[1] == 0);
	CHECK(one.l3_offset == 18);
	CHECK(one.l4_offset == 38);
	CHECK(one.sport == 10);

	const parsed two = parse_bytes(eth(et_ipv6, ipv6({.next_header = 17}, udp(10, 20)),
	                                   {{.tpid = 0x88A8, .vid = 4000}, {.tpid = 0x8100, .vid = 7}}));
	REQUIRE(two.ok());
	CHECK(two.vlan_count == 2);
	CHECK(two.vlan_id[0] == 4000);
	CHECK(two.vlan_id[1] == 7);
	CHECK(two.l3_offset == 22);
	CHECK(two.ethertype == 0x86DD);
	CHECK(two.dport == 20);

	// Pre-standard 0x9100 outer tag.
	const parsed old = parse_bytes(eth(et_ipv4, inner, {{.tpid = 0x9100, .vid = 1}, {.tpid = 0x8100, .vid = 2}}));
	REQUIRE(old.ok());
	CHECK(old.vlan_count == 2);
	CHECK(old.vlan_id[1] == 2);
}

TEST_CASE("non-IP ethertypes are classified, not dropped")
{
	bytes arp_body = filler(28);
	const parsed arp = parse_bytes(eth(et_arp, arp_body, {}, 60));
	REQUIRE(arp.ok());
	CHECK(arp.kind == packet_kind::arp);
	CHECK(arp.family == 0);
	CHECK(arp.ethertype == 0x0806);
	CHECK(arp.l3_offset == 14);

	const parsed vlan_arp = parse_bytes(eth(et_arp, arp_body, {{.vid = 3}}));
	REQUIRE(vlan_arp.ok());
	CHECK(vlan_arp.kind == packet_kind::arp);
	CHECK(vlan_arp.vlan_id[0] == 3);

	const parsed lldp = parse_bytes(eth(0x88CC, filler(30)));
	REQUIRE(lldp.ok());
	CHECK(lldp.kind == packet_kind::other_l2);
	CHECK(lldp.ethertype == 0x88CC);

	// An 802.3 length field in place of the ethertype (LLC/STP).
	const parsed stp = parse_bytes(eth(0x0026, filler(38)));
	REQUIRE(stp.ok());
	CHECK(stp.kind == packet_kind::other_l2);

	// A bare 14-byte header is a (useless) valid frame.
	CHECK(parse_bytes(head(eth(0x88B5, {}), 14)).ok());
}

TEST_CASE("other IP protocols: no ports, payload from L4")
{
	const parsed gre = parse_bytes(eth(et_ipv4, ipv4({.proto = 47}, filler(24))));
	REQUIRE(gre.ok());
	CHECK(gre.proto == 47);
	CHECK(gre.sport == 0);
	CHECK(gre.dport == 0);
	CHECK(gre.l4_offset == 34);
	CHECK(gre.payload_offset == 34);
	CHECK(gre.payload_length == 24);

	// ICMPv6 inside IPv4 is just an opaque protocol number, and so is ICMP inside IPv6.
	const parsed odd = parse_bytes(eth(et_ipv4, ipv4({.proto = 58}, filler(2))));
	REQUIRE(odd.ok());
	CHECK(odd.icmp_type == 0);
	const parsed odd6 = parse_bytes(eth(et_ipv6, ipv6({.next_header = 1}, filler(2))));
	REQUIRE(odd6.ok());
	CHECK(odd6.proto == 1);
}

TEST_CASE("ipv4 fragments")
{
	SECTION("first fragment: L4 parsed, UDP length may exceed this piece")
	{
		const bytes data = udp(5000, 53, filler(1472), 8 + 3000);
		const parsed p = parse_bytes(eth(et_ipv4, ipv4({.proto = 17, .id = 0xABCD, .mf = true}, data)));
		REQUIRE(p.ok());
		CHECK(p.is_fragment());
		CHECK_FALSE(p.is_non_first_fragment());
		CHECK(p.frag == (frag_is_fragment | frag_more));
		CHECK(p.frag_id == 0xABCD);
		CHECK(p.frag_offset == 0);
		CHECK(p.sport == 5000);
		CHECK(p.dport == 53);
		CHECK(p.payload_length == 1472);
	}
	SECTION("middle fragment: no L4, ports 0")
	{
		const parsed p = parse_bytes(eth(et_ipv4, ipv4({.proto = 6, .id = 7, .frag_offset = 1480, .mf = true}, filler(1480))));
		REQUIRE(p.ok());
		CHECK(p.frag == (frag_is_fragment | frag_more | frag_non_first));
		CHECK(p.frag_offset == 1480);
		CHECK(p.frag_id == 7);
		CHECK(p.proto == 6);
		CHECK(p.sport == 0);
		CHECK(p.dport == 0);
		CHECK(p.tcp_flags == 0);
		CHECK(p.l4_offset == 34);
		CHECK(p.payload_offset == 34);
		CHECK(p.payload_length == 1480);
	}
	SECTION("last fragment")
	{
		const parsed p = parse_bytes(eth(et_ipv4, ipv4({.proto = 17, .frag_offset = 2960}, filler(40))));
		REQUIRE(p.ok());
		CHECK(p.frag == (frag_is_fragment | frag_non_first));
		CHECK(p.sport == 0);
	}
	SECTION("a non-first ICMP fragment has no type")
	{
		const parsed p = parse_bytes(eth(et_ipv4, ipv4({.proto = 1, .frag_offset = 8}, filler(8))));
		REQUIRE(p.ok());
		CHECK(p.icmp_type == 0);
		CHECK_FALSE(p.is_icmp_echo());
	}
	SECTION("fragment ending exactly at 65535")
	{
		// 65504 + 20 + 11 = 65535: the largest datagram reassembly allows.
		const parsed p = parse_bytes(eth(et_ipv4, ipv4({.proto = 17, .frag_offset = 65504}, filler(11))));
		REQUIRE(p.ok());
	}
}

TEST_CASE("ipv6 fragments")
{
	SECTION("first fragment after hop-by-hop")
	{
		const bytes f = eth(et_ipv6, ipv6({.next_header = 0}, ipv6_opts_ext(44) + ipv6_frag_ext(6, 0, true, 0xDEADBEEF) +
		                                                          tcp({.dport = 8080}, filler(100))));
		const parsed p = parse_bytes(f);
		REQUIRE(p.ok());
		CHECK(p.frag == (frag_is_fragment | frag_more));
		CHECK(p.frag_id == 0xDEADBEEF);
		CHECK(p.frag_offset == 0);
		CHECK(p.proto == 6);
		CHECK(p.dport == 8080);
		CHECK(p.l4_offset == 14 + 40 + 16);
	}
	SECTION("non-first fragment: no L4, walk stops at the fragment header")
	{
		const bytes f = eth(et_ipv6, ipv6({.next_header = 44}, ipv6_frag_ext(17, 1448, false, 99) + filler(100)));
		const parsed p = parse_bytes(f);
		REQUIRE(p.ok());
		CHECK(p.frag == (frag_is_fragment | frag_non_first));
		CHECK(p.frag_offset == 1448);
		CHECK(p.frag_id == 99);
		CHECK(p.proto == 17);
		CHECK(p.sport == 0);
		CHECK(p.dport == 0);
		CHECK(p.l4_offset == 14 + 48);
		CHECK(p.payload_length == 100);
	}
	SECTION("atomic fragment (offset 0, M 0) is parsed as whole")
	{
		const bytes f = eth(et_ipv6, ipv6({.next_header = 44}, ipv6_frag_ext(17, 0, false, 5) + udp(1, 2, filler(4))));
		const parsed p = parse_bytes(f);
		REQUIRE(p.ok());
		CHECK(p.frag == frag_is_fragment);
		CHECK(p.dport == 2);
		CHECK(p.payload_length == 4);
	}
}

TEST_CASE("icmpv4 errors: the quoted tuple")
{
	const bytes original = ipv4({.src = 0xC6336402, .dst = 0x08080808, .proto = 17}, udp(33434, 53, filler(20)));
	SECTION("destination unreachable quoting the full datagram")
	{
		const bytes f = eth(et_ipv4, ipv4({.src = 0x0A000001, .dst = 0xC6336402, .proto = 1}, icmp(3, 3, 0, original)));
		const parsed p = parse_bytes(f);
		REQUIRE(p.ok());
		CHECK(p.icmp_type == 3);
		CHECK(p.icmp_code == 3);
		CHECK(p.sport == 3);
		CHECK(p.dport == 3);
		CHECK(p.is_icmp_error());
		CHECK(p.inner.family == 4);
		CHECK(p.inner.src.v4 == 0xC6336402);
		CHECK(p.inner.dst.v4 == 0x08080808);
		CHECK(p.inner.proto == 17);
		CHECK(p.inner.sport == 33434);
		CHECK(p.inner.dport == 53);
	}
	SECTION("time exceeded quoting exactly header + 8 bytes of TCP")
	{
		const bytes orig = head(ipv4({.src = 1, .dst = 2, .proto = 6}, tcp({.sport = 1111, .dport = 2222})), 28);
		const parsed p = parse_bytes(eth(et_ipv4, ipv4({.proto = 1}, icmp(11, 0, 0, orig))));
		REQUIRE(p.ok());
		CHECK(p.inner.proto == 6);
		CHECK(p.inner.src.v4 == 1);
		CHECK(p.inner.sport == 1111);
		CHECK(p.inner.dport == 2222);
	}
	SECTION("parameter problem quoting an echo request: inner ports are the flow convention")
	{
		const bytes orig = ipv4({.src = 5, .dst = 6, .proto = 1}, icmp_echo(8, 0x7777, 1));
		const parsed p = parse_bytes(eth(et_ipv4, ipv4({.proto = 1}, icmp(12, 0, 0x14000000, orig))));
		REQUIRE(p.ok());
		CHECK(p.inner.proto == 1);
		CHECK(p.inner.sport == 0x7777);
		CHECK(p.inner.dport == 0);
	}
	SECTION("quote of a non-first fragment: no ports")
	{
		const bytes orig = ipv4({.proto = 17, .frag_offset = 1480}, filler(8));
		const parsed p = parse_bytes(eth(et_ipv4, ipv4({.proto = 1}, icmp(3, 4, 1400, orig))));
		REQUIRE(p.ok());
		CHECK(p.inner.family == 4);
		CHECK(p.inner.sport == 0);
	}
	SECTION("quote with IP options")
	{
		const bytes orig = ipv4({.proto = 17, .options = {1, 1, 1, 0}}, udp(4, 5));
		const parsed p = parse_bytes(eth(et_ipv4, ipv4({.proto = 1}, icmp(3, 1, 0, orig))));
		REQUIRE(p.ok());
		CHECK(p.inner.sport == 4);
		CHECK(p.inner.dport == 5);
	}
	SECTION("quote of a protocol without ports needs only the header")
	{
		const bytes orig = head(ipv4({.proto = 47}, filler(30)), 20);
		const parsed p = parse_bytes(eth(et_ipv4, ipv4({.proto = 1}, icmp(3, 2, 0, orig))));
		REQUIRE(p.ok());
		CHECK(p.inner.proto == 47);
	}
}

TEST_CASE("icmpv6 errors: the quoted tuple")
{
	const bytes original = ipv6({.src = v6addr(1, 2), .dst = v6addr(3, 4), .next_header = 6}, tcp({.sport = 50000, .dport = 443}, filler(1200)));
	SECTION("packet too big")
	{
		const parsed p = parse_bytes(eth(et_ipv6, ipv6({.next_header = 58}, icmp(2, 0, 1280, head(original, 1232)))));
		REQUIRE(p.ok());
		CHECK(p.icmp_type == 2);
		CHECK(p.inner.family == 6);
		CHECK(p.inner.src.v6 == v6addr(1, 2));
		CHECK(p.inner.dst.v6 == v6addr(3, 4));
		CHECK(p.inner.proto == 6);
		CHECK(p.inner.sport == 50000);
		CHECK(p.inner.dport == 443);
	}
	SECTION("dest unreachable quoting a packet with extension headers")
	{
		const bytes orig = ipv6({.next_header = 0}, ipv6_opts_ext(60) + ipv6_opts_ext(17) + udp(9999, 123));
		const parsed p = parse_bytes(eth(et_ipv6, ipv6({.next_header = 58}, icmp(1, 4, 0, orig))));
		REQUIRE(p.ok());
		CHECK(p.inner.proto == 17);
		CHECK(p.inner.sport == 9999);
		CHECK(p.inner.dport == 123);
	}
	SECTION("time exceeded and parameter problem")
	{
		for (uint8_t type : {uint8_t(3), uint8_t(4)}) {
			const parsed p = parse_bytes(eth(et_ipv6, ipv6({.next_header = 58}, icmp(type, 0, 0, head(original, 48)))));
			REQUIRE(p.ok());
			CHECK(p.inner.sport == 50000);
		}
	}
	SECTION("quoting an echo request")
	{
		const bytes orig = ipv6({.next_header = 58}, icmp_echo(128, 0x0102, 9));
		const parsed p = parse_bytes(eth(et_ipv6, ipv6({.next_header = 58}, icmp(3, 0, 0, orig))));
		REQUIRE(p.ok());
		CHECK(p.inner.proto == 58);
		CHECK(p.inner.sport == 0x0102);
		CHECK(p.inner.dport == 0);
	}
}

TEST_CASE("a 9000-byte jumbo frame")
{
	const bytes f = eth(et_ipv4, ipv4({.proto = 6}, tcp({.sport = 1, .dport = 2}, filler(9000 - 14 - 20 - 20))));
	REQUIRE(f.size() == 9000);
	const parsed p = parse_bytes(f);
	REQUIRE(p.ok());
	CHECK(p.l3_length == 8986);
	CHECK(p.payload_length == 8946);
	CHECK(p.payload_offset == 54);

	const bytes f6 = eth(et_ipv6, ipv6({.next_header = 17}, udp(1, 2, filler(9000 - 14 - 40 - 8))));
	const parsed q = parse_bytes(f6);
	REQUIRE(q.ok());
	CHECK(q.payload_length == 8938);
}

TEST_CASE("software IPv4 checksum check, when asked")
{
	const bytes good = eth(et_ipv4, ipv4({.proto = 17, .options = {1, 1, 1, 1}}, udp(1, 2)));
	const bytes bad = eth(et_ipv4, ipv4({.proto = 17, .bad_checksum = true}, udp(1, 2)));
	parsed p;
	CHECK(parse(bad.data(), uint32_t(bad.size()), p) == drop_reason::none);  // off by default
	CHECK(parse(bad.data(), uint32_t(bad.size()), p, {.verify_ipv4_checksum = true}) == drop_reason::ipv4_bad_checksum);
	CHECK(parse(good.data(), uint32_t(good.size()), p, {.verify_ipv4_checksum = true}) == drop_reason::none);
}

TEST_CASE("parse works on unaligned buffers")
{
	const bytes f = eth(et_ipv6, ipv6({.next_header = 6}, tcp({.sport = 7, .seq = 0x11223344})));
	for (size_t shift = 1; shift < 8; ++shift) {
		bytes buf(shift, 0);
		append(buf, f);
		parsed p;
		REQUIRE(parse(buf.data() + shift, uint32_t(f.size()), p) == drop_reason::none);
		CHECK(p.sport == 7);
		CHECK(p.tcp_seq == 0x11223344);
	}
}

TEST_CASE("drop reason and kind names")
{
	CHECK(to_string(drop_reason::none) == "none");
	CHECK(to_string(drop_reason::ipv4_bad_ihl) == "ipv4_bad_ihl");
	CHECK(to_string(drop_reason::ipv4_tiny_fragment) == "ipv4_tiny_fragment");
	CHECK(to_string(drop_reason::ipv6_ext_chain_too_long) == "ipv6_ext_chain_too_long");
	CHECK(to_string(drop_reason::icmp_error_bad_quote) == "icmp_error_bad_quote");
	CHECK(to_string(drop_reason::mbuf_headers_segmented) == "mbuf_headers_segmented");
	CHECK(to_string(drop_reason(drop_reason_count)) == "unknown");
	for (size_t i = 0; i < drop_reason_count; ++i) {
		const std::string_view n = to_string(drop_reason(i));
		CHECK(!n.empty());
		for (char ch : n)
			CHECK(((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'));
		for (size_t j = 0; j < i; ++j)
			CHECK(n != to_string(drop_reason(j)));
	}
	CHECK(to_string(packet_kind::arp) == "arp");
	CHECK(to_string(packet_kind::other_l2) == "other_l2");
}

TEST_CASE("a SYN's window scale option, found among its other options")
{
	auto scale_of = [](uint8_t flags, const bytes& options) {
		const bytes h = tcp({.flags = flags, .options = options});
		return syn_window_scale(h.data(), uint32_t(h.size()));
	};
	const bytes linux_syn = {2, 4, 0x05, 0xB4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7};  // MSS, SACK, TS, NOP, WS 7
	CHECK(scale_of(0x02, linux_syn) == 7);
	CHECK(scale_of(0x12, linux_syn) == 7);                               // SYN-ACK
	CHECK(scale_of(0x10, linux_syn) == no_window_scale);                 // not a SYN: not looked at
	CHECK(scale_of(0x02, {2, 4, 0x05, 0xB4}) == no_window_scale);        // no option
	CHECK(scale_of(0x02, {3, 3, 20}) == 14);                             // RFC 7323: above 14 counts as 14
	CHECK(scale_of(0x02, {0, 3, 3, 7}) == no_window_scale);              // after the end-of-options mark
	CHECK(scale_of(0x02, {2, 40, 0x05, 0xB4, 3, 3, 7}) == no_window_scale);  // a length past the header
	CHECK(scale_of(0x02, {2, 0, 3, 3, 7}) == no_window_scale);           // a zero length stops the walk
}
