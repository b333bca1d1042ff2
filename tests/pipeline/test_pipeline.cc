#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <optional>
#include <set>

#include "packet/packet.h"
#include "pipeline.h"

using namespace portcullis;
using namespace portcullis::test;
using dataplane::drop_reason;
namespace pt = portcullis::packet::test;

namespace {

const char* gateway = R"(
default in drop
default out allow
set inside = { 198.18.1.0/24, 2001:2:0:1::/64 }
set server = { 198.18.1.10, 2001:2:0:1::10 }
drop in tcp to any port 31337
allow in tcp to $server port { ssh, http, https }
reject in tcp to $inside port telnet
reject in udp to $inside port 9999
allow in icmp icmp-type echo-request
allow out from $inside
)";

constexpr uint32_t client = 0xC6120005;   // 198.18.0.5, outside
constexpr uint32_t server = 0xC612010A;   // 198.18.1.10
constexpr uint32_t station = 0xC6120114;  // 198.18.1.20
constexpr uint32_t remote = 0xC6120035;   // 198.18.0.53, outside
constexpr uint8_t S = 0x02, A = 0x10, F = 0x01, R = 0x04, SA = 0x12, PA = 0x18, FA = 0x11;

packet::parsed parse(const bytes& b)
{
	packet::parsed p;
	packet::parse(b.data(), uint32_t(b.size()), p);
	return p;
}

} // namespace

TEST_CASE("inbound connection to an allowed service passes both ways")
{
	pipeline pl(gateway);
	auto r = pl.send(outside, tcp4(client, 40000, server, 22, S, 100));
	REQUIRE(r.to_inside.size() == 1);
	CHECK(r.to_outside.empty());
	CHECK(r.to_inside[0] == tcp4(client, 40000, server, 22, S, 100));  // forwarded untouched
	r = pl.send(inside, tcp4(server, 22, client, 40000, SA, 900, 101));
	REQUIRE(r.to_outside.size() == 1);
	r = pl.send(outside, tcp4(client, 40000, server, 22, A, 101, 901));
	REQUIRE(r.to_inside.size() == 1);
	r = pl.send(inside, tcp4(server, 22, client, 40000, PA, 901, 101, pt::filler(100)));
	REQUIRE(r.to_outside.size() == 1);
	CHECK(pl.worker().counters().flows_opened == 1);
	CHECK(pl.worker().counters().reply_packets == 2);
	auto* e = pl.worker().flows().lookup(
		[&] {
			bool rev;
			return flow::make_key(4, 6, client, server, 40000, 22, rev);
		}(),
		[&] {
			bool rev;
			return flow::hash_key(flow::make_key(4, 6, client, server, 40000, 22, rev));
		}());
	REQUIRE(e);
	CHECK(e->state == flow::flow_state::tcp_established);
	CHECK(e->traffic[0].packets() == 2);
	CHECK(e->traffic[1].packets() == 2);
	CHECK(e->rule_id == 1);
	CHECK(pl.policy().total(1).packets == 4);
}

TEST_CASE("unsolicited inbound traffic meets the default deny")
{
	pipeline pl(gateway);
	auto r = pl.send(outside, tcp4(client, 40000, station, 22, S));  // ssh allowed only to the server
	CHECK(r.to_inside.empty());
	r = pl.send(outside, udp4(client, 5000, station, 5000));
	CHECK(r.to_inside.empty());
	r = pl.send(outside, tcp4(client, 40000, server, 31337, S));
	CHECK(r.to_inside.empty());
	CHECK(pl.drops(drop_reason::default_drop) == 2);
	CHECK(pl.drops(drop_reason::rule_drop) == 1);
	// A mid-stream packet of an allowed service opens nothing.
	r = pl.send(outside, tcp4(client, 40001, server, 80, A, 5, 5));
	CHECK(r.to_inside.empty());
	CHECK(pl.drops(drop_reason::tcp_no_flow) == 1);
	CHECK(pl.worker().counters().flows_opened == 0);
}

TEST_CASE("outbound connections let their replies back in, and only their replies")
{
	pipeline pl(gateway);
	auto r = pl.send(inside, udp4(station, 50000, remote, 53, bytes(20, 1)));
	REQUIRE(r.to_outside.size() == 1);
	r = pl.send(outside, udp4(remote, 53, station, 50000, bytes(40, 2)));
	REQUIRE(r.to_inside.size() == 1);
	// Same remote host, other port: not a reply.
	r = pl.send(outside, udp4(remote, 54, station, 50000));
	CHECK(r.to_inside.empty());
	// TCP out and back.
	r = pl.send(inside, tcp4(station, 50001, remote, 443, S, 1));
	REQUIRE(r.to_outside.size() == 1);
	r = pl.send(outside, tcp4(remote, 443, station, 50001, SA, 70, 2));
	REQUIRE(r.to_inside.size() == 1);
	// A SYN-ACK that does not acknowledge our SYN is not a reply.
	r = pl.send(outside, tcp4(remote, 443, station, 50001, SA, 70, 999));
	CHECK(r.to_inside.empty());
	CHECK(pl.drops(drop_reason::conntrack_invalid) == 1);
	CHECK(pl.worker().counters().flows_opened == 2);
}

TEST_CASE("packets of one new flow in the same burst")
{
	pipeline pl(gateway);
	// A SYN and its retransmission in one burst open one flow, and both pass.
	pl.inject(outside, tcp4(client, 40000, server, 22, S, 1));
	pl.inject(outside, tcp4(client, 40000, server, 22, S, 1));
	pl.run();
	CHECK(pl.sent(inside).size() == 2);
	CHECK(pl.worker().counters().flows_opened == 1);
	// Replay port: both directions in one burst, request first.
	pipeline_options o;
	o.replay = true;
	pipeline rp(gateway, o);
	rp.inject(outside, tcp4(station, 50002, remote, 443, S, 1));
	rp.inject(outside, tcp4(remote, 443, station, 50002, SA, 70, 2));
	rp.inject(outside, tcp4(station, 50002, remote, 443, A, 2, 71));
	rp.run();
	CHECK(rp.sent(outside).size() == 2);  // the station's packets leave by the outside port
	CHECK(rp.sent(inside).size() == 1);   // the reply goes in
	CHECK(rp.worker().counters().flows_opened == 1);
}

TEST_CASE("a burst mixing plain segments, a drop and a FIN of one connection keeps their order")
{
	// The worker takes a burst's plain packets of known flows on a way of their own until the first
	// packet that needs more (here the FIN), and every packet after that the general way.
	pipeline pl(gateway);
	const uint32_t c = 1000, s = 900000;
	REQUIRE(pl.send(outside, tcp4(client, 41000, server, 22, S, c)).to_inside.size() == 1);
	REQUIRE(pl.send(inside, tcp4(server, 22, client, 41000, SA, s, c + 1)).to_outside.size() == 1);
	REQUIRE(pl.send(outside, tcp4(client, 41000, server, 22, A, c + 1, s + 1)).to_inside.size() == 1);
	const uint64_t out_of_window = pl.drops(drop_reason::tcp_out_of_window);
	pl.inject(outside, tcp4(client, 41000, server, 22, PA, c + 1, s + 1, bytes(10, 7)));
	pl.inject(outside, tcp4(client, 41000, server, 22, PA, c + 1 + 0x40000000, s + 1, bytes(10, 7)));  // out of window
	pl.inject(outside, tcp4(client, 41000, server, 22, FA, c + 11, s + 1));
	pl.inject(inside, tcp4(server, 22, client, 41000, A, s + 1, c + 12));
	pl.inject(inside, tcp4(server, 22, client, 41000, PA, s + 1, c + 12, bytes(5, 1)));
	pl.run();
	CHECK(pl.sent(inside).size() == 2);   // the data and the FIN
	CHECK(pl.sent(outside).size() == 2);  // the ACK of the FIN, and data after it
	CHECK(pl.drops(drop_reason::tcp_out_of_window) == out_of_window + 1);
	// The FIN was seen before the server's ACK of it: the server's own FIN now closes the connection.
	CHECK(pl.send(inside, tcp4(server, 22, client, 41000, FA, s + 6, c + 12)).to_outside.size() == 1);
	CHECK(pl.send(outside, tcp4(client, 41000, server, 22, A, c + 12, s + 7)).to_inside.size() == 1);
	// A UDP flow's reply and more requests in one burst: the reply moves the flow on, all pass.
	REQUIRE(pl.send(inside, udp4(station, 50100, remote, 53, bytes(20, 1))).to_outside.size() == 1);
	pl.inject(outside, udp4(remote, 53, station, 50100, bytes(40, 2)));
	pl.inject(inside, udp4(station, 50100, remote, 53, bytes(20, 1)));
	pl.inject(outside, udp4(remote, 53, station, 50100, bytes(40, 2)));
	pl.run();
	CHECK(pl.sent(inside).size() == 2);
	CHECK(pl.sent(outside).size() == 1);
	bool reversed;
	const flow::flow_key k = flow::make_key(4, 17, station, remote, 50100, 53, reversed);
	const flow::flow_entry* e = pl.worker().flows().lookup(k, flow::hash_key(k));
	REQUIRE(e != nullptr);
	CHECK(e->state == flow::flow_state::udp_established);
}

TEST_CASE("a replay port tells the directions apart by its inside ranges, however many")
{
	// The worker tests up to four ranges inline and more through the general list: the station's range
	// last among 1 to 9, behind /24s of 198.19 that hold neither host. Then without the station's range:
	// its SYN comes from outside and the default inbound drop takes it.
	for (const uint32_t ranges : {1u, 2u, 4u, 5u, 9u}) {
		for (const bool station_inside : {true, false}) {
			pipeline_options o;
			o.replay = true;
			for (uint32_t k = 0; k + 1 < ranges; ++k)
				o.inside4.push_back({0xC6130000u + (k << 8), 0xC61300FFu + (k << 8)});  // 198.19.k.0/24
			o.inside4.push_back(station_inside ? value_range<uint32_t>{0xC6120100u, 0xC61201FFu}
			                                   : value_range<uint32_t>{0xC6130A00u, 0xC6130AFFu});
			pipeline rp(gateway, o);
			rp.inject(outside, tcp4(station, 50002, remote, 443, S, 1));
			rp.inject(outside, tcp4(remote, 443, station, 50002, SA, 70, 2));
			rp.run();
			INFO(ranges << " ranges, station inside " << station_inside);
			CHECK(rp.sent(outside).size() == (station_inside ? 1u : 0u));  // out by the outside port
			CHECK(rp.sent(inside).size() == (station_inside ? 1u : 0u));   // the reply in by the inside one
			CHECK(rp.worker().counters().flows_opened == (station_inside ? 1u : 0u));
		}
	}
}

TEST_CASE("reject answers TCP with a RST and UDP with an ICMP port unreachable")
{
	pipeline pl(gateway);
	auto r = pl.send(outside, tcp4(client, 40000, station, 23, S, 5000));
	CHECK(r.to_inside.empty());
	REQUIRE(r.to_outside.size() == 1);
	const packet::parsed rst = parse(r.to_outside[0]);
	REQUIRE(rst.ok());
	CHECK(rst.src.v4 == station);
	CHECK(rst.dst.v4 == client);
	CHECK(rst.sport == 23);
	CHECK(rst.dport == 40000);
	CHECK(rst.tcp_flags == (R | A));
	CHECK(rst.tcp_ack == 5001);
	r = pl.send(outside, udp4(client, 40000, station, 9999, bytes(30, 7)));
	REQUIRE(r.to_outside.size() == 1);
	const packet::parsed icmp = parse(r.to_outside[0]);
	REQUIRE(icmp.ok());
	CHECK(icmp.proto == 1);
	CHECK(icmp.icmp_type == 3);
	CHECK(icmp.icmp_code == 3);
	CHECK(icmp.dst.v4 == client);
	REQUIRE(icmp.is_icmp_error());
	CHECK(icmp.inner.src.v4 == client);
	CHECK(icmp.inner.dst.v4 == station);
	CHECK(icmp.inner.dport == 9999);
	CHECK(pl.worker().counters().rejects_sent == 2);
	CHECK(pl.drops(drop_reason::rule_reject) == 2);
}

TEST_CASE("ICMP errors about a known flow pass; about no flow they meet the rules")
{
	pipeline pl(gateway);
	REQUIRE(pl.send(inside, udp4(station, 50000, remote, 53, bytes(8, 0))).to_outside.size() == 1);
	// The remote answers "port unreachable", quoting the station's datagram.
	pt::ipv4_spec quoted_ip;
	quoted_ip.src = station;
	quoted_ip.dst = remote;
	quoted_ip.proto = 17;
	const bytes quote = pt::ipv4(quoted_ip, pt::udp(50000, 53, bytes(8, 0)));
	pt::ipv4_spec outer;
	outer.src = remote;
	outer.dst = station;
	outer.proto = 1;
	const bytes err = pt::eth(0x0800, pt::ipv4(outer, pt::icmp(3, 3, 0, pt::head(quote, 28))), {}, 60);
	auto r = pl.send(outside, err);
	CHECK(r.to_inside.size() == 1);
	CHECK(pl.worker().counters().related_icmp == 1);
	// The same error about a flow that never existed: the rules allow only echo-request in.
	pt::ipv4_spec other_ip = quoted_ip;
	other_ip.src = server;
	const bytes quote2 = pt::ipv4(other_ip, pt::udp(50000, 53, bytes(8, 0)));
	r = pl.send(outside, pt::eth(0x0800, pt::ipv4(outer, pt::icmp(3, 3, 0, pt::head(quote2, 28))), {}, 60));
	CHECK(r.to_inside.empty());
	CHECK(pl.drops(drop_reason::default_drop) == 1);
}

TEST_CASE("ping in and its reply, keyed by the echo identifier")
{
	pipeline pl(gateway);
	pt::ipv4_spec ip;
	ip.src = client;
	ip.dst = server;
	ip.proto = 1;
	auto r = pl.send(outside, pt::eth(0x0800, pt::ipv4(ip, pt::icmp_echo(8, 77, 1)), {}, 60));
	REQUIRE(r.to_inside.size() == 1);
	std::swap(ip.src, ip.dst);
	r = pl.send(inside, pt::eth(0x0800, pt::ipv4(ip, pt::icmp_echo(0, 77, 1)), {}, 60));
	CHECK(r.to_outside.size() == 1);
	r = pl.send(inside, pt::eth(0x0800, pt::ipv4(ip, pt::icmp_echo(0, 78, 1)), {}, 60));  // other id: new, allowed out
	CHECK(r.to_outside.size() == 1);
	CHECK(pl.worker().counters().flows_opened == 2);
}

TEST_CASE("IPv6 flows")
{
	pipeline pl(gateway);
	const u128 c6 = pt::v6addr(0x2001000200000000ull, 5), s6 = pt::v6addr(0x2001000200000001ull, 0x10);
	auto r = pl.send(outside, tcp6(c6, 40000, s6, 443, S, 10));
	REQUIRE(r.to_inside.size() == 1);
	r = pl.send(inside, tcp6(s6, 443, c6, 40000, SA, 20, 11));
	CHECK(r.to_outside.size() == 1);
	r = pl.send(outside, tcp6(c6, 40000, s6, 25, S, 10));
	CHECK(r.to_inside.empty());
}

TEST_CASE("malformed frames are counted by reason and dropped; ARP passes, other L2 does not")
{
	pipeline pl(gateway);
	pt::ipv4_spec bad;
	bad.src = client;
	bad.dst = server;
	bad.ihl = 4;
	auto r = pl.send(outside, pt::eth(0x0800, pt::ipv4(bad, pt::filler(20)), {}, 60));
	CHECK(r.to_inside.empty());
	CHECK(pl.drops(drop_reason::malformed) == 1);
	CHECK(pl.worker().counters().parse.by_reason[size_t(packet::drop_reason::ipv4_bad_ihl)] == 1);
	r = pl.send(outside, pt::eth(0x0806, pt::filler(28)));
	CHECK(r.to_inside.size() == 1);
	r = pl.send(outside, pt::eth(0x88cc, pt::filler(40)));  // LLDP
	CHECK(r.to_inside.empty());
	CHECK(pl.drops(drop_reason::l2_other) == 1);
}

TEST_CASE("a full flow table keeps established flows and evicts half-open ones")
{
	pipeline_options o;
	o.flow_capacity = 8;
	pipeline pl(gateway, o);
	// Four established outbound connections.
	for (uint16_t i = 0; i < 4; ++i) {
		REQUIRE(pl.send(inside, tcp4(station, uint16_t(50000 + i), remote, 443, S, 1)).to_outside.size() == 1);
		REQUIRE(pl.send(outside, tcp4(remote, 443, station, uint16_t(50000 + i), SA, 9, 2)).to_inside.size() == 1);
		REQUIRE(pl.send(inside, tcp4(station, uint16_t(50000 + i), remote, 443, A, 2, 10)).to_outside.size() == 1);
	}
	// A SYN flood from the outside to the server fills the rest and keeps evicting itself.
	for (uint32_t i = 0; i < 100; ++i)
		pl.send(outside, tcp4(0xC6120000 + 100 + i, uint16_t(1000 + i), server, 80, S, i));
	CHECK(pl.worker().flows().size() <= 8);
	CHECK(pl.worker().flows().counters().evicted_embryonic.load() >= 96);
	for (uint16_t i = 0; i < 4; ++i)
		CHECK(pl.send(outside, tcp4(remote, 443, station, uint16_t(50000 + i), PA, 10, 2, pt::filler(5))).to_inside.size() == 1);
}

TEST_CASE("TCP flag combinations no stack sends are dropped and counted, to known flows too")
{
	pipeline pl(gateway);
	// SYN+FIN, SYN+RST, a NULL scan and an Xmas scan to the allowed ssh port: dropped, no flow opened.
	for (const uint8_t flags : {uint8_t(S | F), uint8_t(S | R), uint8_t(0), uint8_t(F | 0x08 | 0x20)})
		CHECK(pl.send(outside, tcp4(client, 41000, server, 22, flags, 100)).to_inside.empty());
	CHECK(pl.drops(drop_reason::tcp_invalid_flags) == 4);
	CHECK(pl.worker().counters().flows_opened == 0);
	// An ECN-setup SYN (SYN+ECE+CWR) is a SYN; a FIN alone to its open flow is not a segment.
	CHECK(pl.send(outside, tcp4(client, 41001, server, 22, uint8_t(S | 0x40 | 0x80), 100)).to_inside.size() == 1);
	CHECK(pl.send(inside, tcp4(server, 22, client, 41001, SA, 900, 101)).to_outside.size() == 1);
	CHECK(pl.send(outside, tcp4(client, 41001, server, 22, A, 101, 901)).to_inside.size() == 1);
	CHECK(pl.send(outside, tcp4(client, 41001, server, 22, F, 101, 901)).to_inside.empty());
	CHECK(pl.drops(drop_reason::tcp_invalid_flags) == 5);
	CHECK(pl.send(outside, tcp4(client, 41001, server, 22, FA, 101, 901)).to_inside.size() == 1);
}

TEST_CASE("martian sources and land packets are dropped in both directions, unless turned off")
{
	const std::string rules_text = "default in allow\ndefault out allow\n";
	pipeline pl(rules_text);
	// Sources no host can have, to an allow-everything rule set.
	for (const uint32_t src : {0x7F000001u, 0x00000001u, 0xE0000001u, 0xF0000001u, 0xFFFFFFFFu})
		CHECK(pl.send(outside, udp4(src, 4000, server, 53)).to_inside.empty());
	CHECK(pl.send(inside, udp4(0x7F000001u, 4000, client, 53)).to_outside.empty());
	CHECK(pl.send(outside, tcp6(1, 4000, pt::v6addr(0x2001000200000001ull, 0x10), 22, S, 1)).to_inside.empty());  // ::1
	CHECK(pl.send(outside, tcp6(pt::v6addr(0xff02000000000000ull, 1), 4000, pt::v6addr(0x2001000200000001ull, 0x10), 22, S, 1))
	          .to_inside.empty());
	CHECK(pl.drops(drop_reason::martian_source) == 8);
	// The land attack: source == destination.
	CHECK(pl.send(outside, tcp4(server, 22, server, 22, S, 1)).to_inside.empty());
	CHECK(pl.drops(drop_reason::land) == 1);
	// A DHCP client's request from 0.0.0.0 crosses; an ordinary source passes.
	CHECK(pl.send(inside, udp4(0, 68, 0xFFFFFFFFu, 67)).to_outside.size() == 1);
	CHECK(pl.send(outside, udp4(client, 4000, server, 53)).to_inside.size() == 1);
	CHECK(pl.worker().counters().flows_opened == 2);
	// A broadcast or multicast source MAC, whatever the frame holds (ARP included).
	bytes from_broadcast = udp4(client, 4000, server, 53);
	std::fill(from_broadcast.begin() + 6, from_broadcast.begin() + 12, uint8_t(0xff));
	CHECK(pl.send(outside, from_broadcast).to_inside.empty());
	bytes from_multicast = udp4(client, 4000, server, 53);
	from_multicast[6] = 0x01;
	CHECK(pl.send(outside, from_multicast).to_inside.empty());
	CHECK(pl.drops(drop_reason::martian_mac) == 2);
	// Both checks can be turned off (dataplane.drop-martians, dataplane.drop-land).
	pipeline_options off;
	off.drop_martians = false;
	off.drop_land = false;
	pipeline open(rules_text, off);
	CHECK(open.send(outside, udp4(0x7F000001u, 4000, server, 53)).to_inside.size() == 1);
	CHECK(open.send(outside, tcp4(server, 22, server, 22, S, 1)).to_inside.size() == 1);
	CHECK(open.send(outside, from_broadcast).to_inside.size() == 1);
}

TEST_CASE("a SYN with data (TCP Fast Open) and its answers pass")
{
	pipeline pl(gateway);
	// The server takes the data: its SYN-ACK acknowledges ISN + 1 + 580.
	CHECK(pl.send(outside, tcp4(client, 42000, server, 22, S, 100, 0, pt::filler(580))).to_inside.size() == 1);
	CHECK(pl.send(inside, tcp4(server, 22, client, 42000, SA, 900, 100 + 1 + 580)).to_outside.size() == 1);
	CHECK(pl.send(outside, tcp4(client, 42000, server, 22, A, 681, 901)).to_inside.size() == 1);
	// A server that refuses it answers RST+ACK with the same acknowledgement.
	CHECK(pl.send(outside, tcp4(client, 42001, server, 22, S, 100, 0, pt::filler(580))).to_inside.size() == 1);
	CHECK(pl.send(inside, tcp4(server, 22, client, 42001, uint8_t(R | A), 0, 100 + 1 + 580)).to_outside.size() == 1);
	// Past the data is still no answer.
	CHECK(pl.send(outside, tcp4(client, 42002, server, 22, S, 100, 0, pt::filler(580))).to_inside.size() == 1);
	CHECK(pl.send(inside, tcp4(server, 22, client, 42002, SA, 900, 100 + 1 + 581)).to_outside.empty());
	CHECK(pl.drops(drop_reason::conntrack_invalid) == 1);
}

namespace {
// A TCP frame client <-> server with a chosen window and, on a SYN, the window scale option.
pt::bytes tcp4w(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, uint8_t flags, uint32_t seq, uint32_t ack,
                uint16_t window, std::optional<uint8_t> scale = {}, size_t payload = 0)
{
	pt::bytes options;
	if (scale)
		options = {1, 3, 3, *scale};  // NOP, window scale
	return pt::eth(pt::et_ipv4,
	               pt::ipv4({.src = src, .dst = dst, .proto = 6},
	                        pt::tcp({.sport = sport, .dport = dport, .seq = seq, .ack = ack, .flags = flags,
	                                 .window = window, .options = options},
	                                pt::filler(payload))),
	               {}, 60);
}
} // namespace

TEST_CASE("TCP window tracking: a forged RST or data outside the windows is dropped, the connection lives on")
{
	for (const flow::window_mode mode : {flow::window_mode::strict, flow::window_mode::off}) {
		INFO("mode " << int(mode));
		pipeline_options o;
		o.tcp_window = mode;
		pipeline pl(gateway, o);
		const uint32_t c = 100000, s = 7000000;  // ISNs
		REQUIRE(pl.send(outside, tcp4w(client, 43000, server, 22, S, c, 0, 64240, 7)).to_inside.size() == 1);
		REQUIRE(pl.send(inside, tcp4w(server, 22, client, 43000, SA, s, c + 1, 65160, 7)).to_outside.size() == 1);
		REQUIRE(pl.send(outside, tcp4w(client, 43000, server, 22, A, c + 1, s + 1, 502)).to_inside.size() == 1);
		// The server's window of 1000 << 7 bytes lets the client send 100 KB ahead.
		CHECK(pl.send(inside, tcp4w(server, 22, client, 43000, A, s + 1, c + 1, 1000)).to_outside.size() == 1);
		CHECK(pl.send(outside, tcp4w(client, 43000, server, 22, A, c + 1 + 100000, s + 1, 502, {}, 100)).to_inside.size() == 1);
		// An attacker who knows the 5-tuple but not the sequence numbers: RSTs and data both ways.
		const bool strict = mode == flow::window_mode::strict;
		for (const uint32_t guess : {0x40000000u, 0x80000000u, 0xC0000000u}) {
			CHECK(pl.send(outside, tcp4w(client, 43000, server, 22, R, c + guess, 0, 0)).to_inside.size() == (strict ? 0 : 1));
			if (!strict)
				break;  // the flow is closed now
			CHECK(pl.send(inside, tcp4w(server, 22, client, 43000, uint8_t(R | A), s + guess, c + 1, 0)).to_outside.empty());
			CHECK(pl.send(inside, tcp4w(server, 22, client, 43000, A, s + guess, c + 1, 1000, {}, 20)).to_outside.empty());
		}
		if (!strict)
			continue;
		CHECK(pl.drops(drop_reason::tcp_out_of_window) == 9);
		// The connection still works both ways.
		CHECK(pl.send(outside, tcp4w(client, 43000, server, 22, A, c + 1 + 100100, s + 1, 502, {}, 10)).to_inside.size() == 1);
		CHECK(pl.send(inside, tcp4w(server, 22, client, 43000, A, s + 1, c + 1 + 100110, 1000, {}, 10)).to_outside.size() == 1);
		// An ACK of bytes the client never sent is refused too.
		CHECK(pl.send(inside, tcp4w(server, 22, client, 43000, A, s + 11, c + 1 + 200000, 1000)).to_outside.empty());
		CHECK(pl.drops(drop_reason::tcp_out_of_window) == 10);
		// The server's real RST, at its next sequence number, passes and ends the flow.
		CHECK(pl.send(inside, tcp4w(server, 22, client, 43000, uint8_t(R | A), s + 11, c + 1 + 100110, 0)).to_outside.size() == 1);
		CHECK(pl.send(outside, tcp4w(client, 43000, server, 22, S, c + 500000, 0, 64240, 7)).to_inside.size() == 1);  // reopened
	}
}

TEST_CASE("a new rule set re-judges existing flows on their next packet")
{
	pipeline pl(gateway);
	REQUIRE(pl.send(outside, tcp4(client, 40000, server, 22, S, 100)).to_inside.size() == 1);
	REQUIRE(pl.send(outside, tcp4(client, 40001, server, 80, S, 100)).to_inside.size() == 1);
	// ssh no longer allowed; http still is.
	pl.swap_rules(R"(
default in drop
allow in tcp to 198.18.1.10 port http
)");
	CHECK(pl.send(inside, tcp4(server, 22, client, 40000, SA, 900, 101)).to_outside.empty());
	CHECK(pl.drops(drop_reason::revalidated) == 1);
	CHECK(pl.send(inside, tcp4(server, 80, client, 40001, SA, 900, 101)).to_outside.size() == 1);
	// The revoked flow goes at the next expiry scan, however many packets it got after (each marks it
	// for reaping again; the marks must not add up to a fresh-looking stamp).
	for (int i = 0; i < 5; ++i)
		CHECK(pl.send(inside, tcp4(server, 22, client, 40000, SA, 900, 101)).to_outside.empty());
	CHECK(pl.drops(drop_reason::revalidated) == 6);
	auto& table = pl.worker().flows();
	CHECK(table.size() == 2);
	CHECK(table.expire(rte_rdtsc(), 1u << 20) == 1);
	CHECK(table.size() == 1);
}

TEST_CASE("a rule over its rate limit does not match: the flow goes on to the next rule")
{
	pipeline pl("default in drop\n"
	            "allow in tcp to any port ssh limit 2/h burst 2\n"
	            "reject in tcp to any port ssh\n");
	// Stray ACKs open nothing and take no token (they still meet the rules: the limited one allows, and a
	// mid-stream packet of no flow is dropped as ever).
	for (uint16_t i = 0; i < 5; ++i)
		CHECK(pl.send(outside, tcp4(client, uint16_t(45000 + i), server, 22, A, 5, 5)).to_inside.empty());
	CHECK(pl.policy().total(0).over_limit == 0);
	CHECK(pl.send(outside, tcp4(client, 40000, server, 22, S, 100)).to_inside.size() == 1);
	CHECK(pl.send(outside, tcp4(client, 40001, server, 22, S, 100)).to_inside.size() == 1);
	auto r = pl.send(outside, tcp4(client, 40002, server, 22, S, 100));
	CHECK(r.to_inside.empty());
	CHECK(r.to_outside.size() == 1);  // the RST of the reject rule, not the silent default
	CHECK(pl.policy().total(0).packets == 7);  // the five ACKs matched it too, and opened nothing
	CHECK(pl.policy().total(0).over_limit == 1);
	CHECK(pl.policy().total(1).packets == 1);
	// Packets of the admitted flows are not counted against the limit.
	CHECK(pl.send(inside, tcp4(server, 22, client, 40000, SA, 900, 101)).to_outside.size() == 1);
	CHECK(pl.send(outside, tcp4(client, 40000, server, 22, A, 101, 901)).to_inside.size() == 1);
	CHECK(pl.policy().total(0).over_limit == 1);
}

TEST_CASE("a per-source limit holds one flooding source to its rate while another passes untouched")
{
	pipeline pl("default in drop\n"
	            "allow in tcp to any port http limit per-source 3/h burst 3\n");
	uint32_t flooder_passed = 0;
	for (uint16_t i = 0; i < 20; ++i)
		flooder_passed += uint32_t(pl.send(outside, tcp4(client, uint16_t(41000 + i), server, 80, S, 1)).to_inside.size());
	CHECK(flooder_passed == 3);
	uint32_t other_passed = 0;
	for (uint16_t i = 0; i < 3; ++i)
		other_passed += uint32_t(pl.send(outside, tcp4(remote, uint16_t(42000 + i), server, 80, S, 1)).to_inside.size());
	CHECK(other_passed == 3);
	CHECK(pl.policy().total(0).over_limit == 17);
	// IPv6 sources are metered by their /64: another address of the same /64 shares the budget.
	const u128 a = pt::v6addr(0x2001000200000000ull, 5), b = pt::v6addr(0x2001000200000000ull, 6);
	const u128 s6 = pt::v6addr(0x2001000200000001ull, 0x10);
	uint32_t v6_passed = 0;
	for (uint16_t i = 0; i < 2; ++i)
		v6_passed += uint32_t(pl.send(outside, tcp6(a, uint16_t(43000 + i), s6, 80, S, 1)).to_inside.size());
	for (uint16_t i = 0; i < 2; ++i)
		v6_passed += uint32_t(pl.send(outside, tcp6(b, uint16_t(43000 + i), s6, 80, S, 1)).to_inside.size());
	CHECK(v6_passed == 3);
}

TEST_CASE("a limit with 'packets' polices every packet of its flows, both ways, metered by the opener")
{
	pipeline pl("default in drop\n"
	            "allow in udp to any port 53 limit per-source 4/h burst 4 packets\n");
	// One flow, both ways: the query that opens it and three more packets take the four tokens.
	CHECK(pl.send(outside, udp4(client, 40000, server, 53, pt::filler(20))).to_inside.size() == 1);
	CHECK(pl.send(inside, udp4(server, 53, client, 40000, pt::filler(40))).to_outside.size() == 1);
	CHECK(pl.send(outside, udp4(client, 40000, server, 53, pt::filler(20))).to_inside.size() == 1);
	CHECK(pl.send(inside, udp4(server, 53, client, 40000, pt::filler(40))).to_outside.size() == 1);
	CHECK(pl.drops(drop_reason::rate_limited) == 0);
	// Spent: the flow's next packets are dropped whichever way they go, and counted on the rule.
	CHECK(pl.send(inside, udp4(server, 53, client, 40000, pt::filler(40))).to_outside.empty());
	CHECK(pl.send(outside, udp4(client, 40000, server, 53, pt::filler(20))).to_inside.empty());
	CHECK(pl.drops(drop_reason::rate_limited) == 2);
	CHECK(pl.policy().total(0).over_limit == 2);
	CHECK(pl.worker().counters().flows_opened == 1);  // the flow stays; only its packets are policed
	// A new flow from the same opener is over the limit too (the rule does not match it: default drop);
	// another source has its own bucket.
	CHECK(pl.send(outside, udp4(client, 40001, server, 53, pt::filler(20))).to_inside.empty());
	CHECK(pl.drops(drop_reason::default_drop) == 1);
	for (int i = 0; i < 4; ++i)
		CHECK(pl.send(outside, udp4(remote, 40000, server, 53, pt::filler(20))).to_inside.size() == 1);
	CHECK(pl.send(outside, udp4(remote, 40000, server, 53, pt::filler(20))).to_inside.empty());
}

TEST_CASE("max-conn per-source caps a source's live flows, uncounts ended ones, and keeps counting across a push")
{
	const std::string rules_text = "default in drop\n"
	                               "allow in tcp to any port ssh max-conn 2 per-source counter ssh\n"
	                               "reject in tcp to any port ssh\n";
	pipeline pl(rules_text);
	CHECK(pl.send(outside, tcp4(client, 40000, server, 22, S, 1)).to_inside.size() == 1);
	CHECK(pl.send(outside, tcp4(client, 40001, server, 22, S, 1)).to_inside.size() == 1);
	// A retransmitted SYN of an open flow is that flow, not a third.
	CHECK(pl.send(outside, tcp4(client, 40001, server, 22, S, 1)).to_inside.size() == 1);
	auto r = pl.send(outside, tcp4(client, 40002, server, 22, S, 1));
	CHECK(r.to_inside.empty());
	CHECK(r.to_outside.size() == 1);  // the next rule's RST
	CHECK(pl.policy().total(0).over_limit == 1);
	// Another source has its own count.
	CHECK(pl.send(outside, tcp4(remote, 40000, server, 22, S, 1)).to_inside.size() == 1);
	// The same rules pushed again: the flows still count under the rule's name.
	pl.swap_rules(rules_text);
	CHECK(pl.send(outside, tcp4(client, 40003, server, 22, S, 1)).to_inside.empty());
	// Flows that end are uncounted, whoever removes them: here a flush.
	CHECK(pl.worker().flows().flush() == 3);
	CHECK(pl.send(outside, tcp4(client, 40004, server, 22, S, 1)).to_inside.size() == 1);
	CHECK(pl.send(outside, tcp4(client, 40005, server, 22, S, 1)).to_inside.size() == 1);
	CHECK(pl.send(outside, tcp4(client, 40006, server, 22, S, 1)).to_inside.empty());
}

TEST_CASE("max-conn ids: a name keeps its id; 255 names at most, and an unused name's id is reused once its flows end")
{
	dataplane::conn_counts c;
	const uint8_t ssh = c.id_for("ssh");
	CHECK(ssh != 0);
	CHECK(c.id_for("ssh") == ssh);
	uint8_t id[254];
	for (int i = 0; i < 254; ++i) {
		id[i] = c.id_for("rule" + std::to_string(i));
		CHECK(id[i] != 0);
	}
	CHECK(std::set<uint8_t>(id, id + 254).size() == 254);
	c.in_use({"ssh", "rule0"});  // the running rules: the other names are gone from them
	// Every name but rule0 and rule253 still counts a flow; a new name takes rule253's id.
	const uint64_t source = dataplane::conn_counts::source_key(false, client);
	for (int i = 1; i < 253; ++i)
		c.opened(id[i], source);
	CHECK(c.id_for("web") == id[253]);
	CHECK(c.id_for("mail") == 0);  // nothing else is free ("web" is in use from now on)
	c.closed(id[7], source);
	CHECK(c.live(id[7]) == 0);
	CHECK(c.id_for("mail") == id[7]);
	CHECK(c.id_for("rule0") == id[0]);  // in use: kept
	CHECK(c.id_for("ssh") == ssh);  // in use: never taken
}

TEST_CASE("a rule with 'during' is in force only inside its window, and its flows are re-judged at the edges")
{
	constexpr int64_t wed_10_00_utc = 1782900000, wed_19_00_utc = 1782932400;
	pipeline pl("default in drop\n"
	            "allow in tcp to any port ssh during \"Mon-Fri 08:00-18:00\" tz UTC\n"
	            "reject in tcp to any port ssh\n");
	pl.update_schedules(wed_10_00_utc);
	REQUIRE(pl.send(outside, tcp4(client, 40000, server, 22, S, 1)).to_inside.size() == 1);
	CHECK(pl.send(inside, tcp4(server, 22, client, 40000, SA, 9, 2)).to_outside.size() == 1);
	CHECK_FALSE(pl.update_schedules(wed_10_00_utc + 60));  // no edge, nothing changes
	// 19:00: the window closed. The open flow is re-judged on its next packet and dropped; a new one
	// meets the rule after it.
	CHECK(pl.update_schedules(wed_19_00_utc));
	CHECK(pl.send(outside, tcp4(client, 40000, server, 22, A, 2, 10)).to_inside.empty());
	CHECK(pl.drops(drop_reason::revalidated) == 1);
	auto r = pl.send(outside, tcp4(client, 40001, server, 22, S, 1));
	CHECK(r.to_inside.empty());
	CHECK(r.to_outside.size() == 1);  // the reject rule's RST
	CHECK(pl.policy().total(0).over_limit == 0);  // a closed window is not a limit
	// Outside its window the rule is not there for packets that open nothing either: a stray ACK meets
	// the reject rule after it (inside the window the allow rule matched it, and it was dropped silently
	// for having no flow).
	CHECK(pl.send(outside, tcp4(client, 40009, server, 22, A, 5, 5)).to_outside.size() == 1);
	// The next morning it is back.
	CHECK(pl.update_schedules(wed_10_00_utc + 86400));
	CHECK(pl.send(outside, tcp4(client, 40002, server, 22, S, 1)).to_inside.size() == 1);
}

TEST_CASE("a per-source limit's ipv6-prefix sets how IPv6 sources share a bucket")
{
	pipeline pl("default in drop\n"
	            "allow in tcp to any port http limit per-source 2/h burst 2 ipv6-prefix /56\n"
	            "allow in tcp to any port https limit per-source 2/h burst 2\n");
	// Two /64s of one /56 (all within 2001:2::/48): one bucket under /56; two under the default /64.
	const u128 a = pt::v6addr(0x2001000200000101ull, 5), b = pt::v6addr(0x2001000200000102ull, 6);
	const u128 s6 = pt::v6addr(0x2001000200000001ull, 0x10);
	uint32_t http = 0, https = 0;
	for (uint16_t i = 0; i < 2; ++i) {
		http += uint32_t(pl.send(outside, tcp6(a, uint16_t(43000 + i), s6, 80, S, 1)).to_inside.size());
		http += uint32_t(pl.send(outside, tcp6(b, uint16_t(43000 + i), s6, 80, S, 1)).to_inside.size());
		https += uint32_t(pl.send(outside, tcp6(a, uint16_t(44000 + i), s6, 443, S, 1)).to_inside.size());
		https += uint32_t(pl.send(outside, tcp6(b, uint16_t(44000 + i), s6, 443, S, 1)).to_inside.size());
	}
	CHECK(http == 2);
	CHECK(https == 4);
	// Another /56 has its own bucket.
	const u128 c = pt::v6addr(0x2001000200000201ull, 5);
	CHECK(pl.send(outside, tcp6(c, 45000, s6, 80, S, 1)).to_inside.size() == 1);
}
