// Hostile traffic through the real worker: every malformation is counted under its own reason and
// dropped, fragments follow their first fragment, and a jumbo frame in a chain of mbufs passes intact.
#include <catch2/catch.hpp>

#include "packet/packet.h"
#include "pipeline.h"

using namespace portcullis;
using namespace portcullis::test;
using dataplane::drop_reason;
namespace pt = portcullis::packet::test;
using reason = portcullis::packet::drop_reason;

namespace {

const char* policy = R"(
default in drop
default out allow
allow in proto { tcp, udp } to 198.18.1.10
allow in icmp
)";

constexpr uint32_t client = 0xC6120005, server = 0xC612010A, station = 0xC6120114, remote = 0xC6120035;

bytes v4(const pt::ipv4_spec& ip, const bytes& l4) { return pt::eth(0x0800, pt::ipv4(ip, l4), {}, 60); }

pt::ipv4_spec ip4(uint32_t src, uint32_t dst, uint8_t proto)
{
	pt::ipv4_spec s;
	s.src = src;
	s.dst = dst;
	s.proto = proto;
	return s;
}

// The bytes [from, to) of an outbound UDP datagram (from the inside station to a remote host) as one
// IPv4 fragment of datagram `id`; `from` a multiple of 8.
bytes fragment_of(const bytes& datagram, uint16_t id, uint16_t from, uint16_t to)
{
	pt::ipv4_spec f = ip4(station, remote, 17);
	f.id = id;
	f.frag_offset = from;
	f.mf = to < datagram.size();
	return v4(f, bytes(datagram.begin() + from, datagram.begin() + to));
}

pt::tcp_spec syn(uint16_t dport)
{
	pt::tcp_spec t;
	t.dport = dport;
	t.flags = 0x02;
	return t;
}

} // namespace

TEST_CASE("each malformed frame is dropped and counted under its reason")
{
	pipeline pl(policy);
	struct hostile {
		const char* what;
		bytes frame;
		reason why;
	};
	pt::ipv4_spec bad_ihl = ip4(client, server, 6);
	bad_ihl.ihl = 4;
	pt::ipv4_spec ihl_past_end = ip4(client, server, 6);
	ihl_past_end.ihl = 15;
	pt::ipv4_spec long_total = ip4(client, server, 6);
	long_total.total_length = 1500;
	pt::ipv4_spec short_total = ip4(client, server, 6);
	short_total.total_length = 12;
	pt::tcp_spec small_offset = syn(80);
	small_offset.data_offset = 4;
	pt::tcp_spec big_offset = syn(80);
	big_offset.data_offset = 15;
	pt::ipv4_spec tiny = ip4(client, server, 6);
	tiny.mf = true;
	pt::ipv4_spec offset_one = ip4(client, server, 6);
	offset_one.frag_offset = 8;
	pt::ipv6_spec chain;
	chain.next_header = 0;
	bytes exts;
	for (int i = 0; i < 9; ++i)
		pt::append(exts, pt::ipv6_opts_ext(i == 8 ? 6 : 60));
	pt::ipv6_spec cut;
	cut.next_header = 60;

	const std::vector<hostile> cases = {
		{"truncated Ethernet", bytes(10, 0xab), reason::eth_truncated},
		{"zero-length frame", bytes{}, reason::eth_truncated},
		{"IHL below 5", v4(bad_ihl, pt::tcp(syn(80))), reason::ipv4_bad_ihl},
		{"IHL past the end", pt::eth(0x0800, pt::head(pt::ipv4(ihl_past_end, {}), 40)), reason::ipv4_header_truncated},
		{"total length beyond the frame", v4(long_total, pt::tcp(syn(80))), reason::ipv4_total_length_exceeds_frame},
		{"total length below the header", v4(short_total, pt::tcp(syn(80))), reason::ipv4_bad_total_length},
		{"truncated TCP", pt::eth(0x0800, pt::ipv4(ip4(client, server, 6), pt::head(pt::tcp(syn(80)), 12))), reason::tcp_truncated},
		{"TCP data offset below 5", v4(ip4(client, server, 6), pt::tcp(small_offset)), reason::tcp_bad_data_offset},
		{"TCP data offset past the end", v4(ip4(client, server, 6), pt::tcp(big_offset)), reason::tcp_header_truncated},
		{"UDP length lies", v4(ip4(client, server, 17), pt::udp(1, 53, bytes(4, 0), uint16_t(200))), reason::udp_bad_length},
		{"truncated UDP", pt::eth(0x0800, pt::ipv4(ip4(client, server, 17), bytes(4, 0))), reason::udp_truncated},
		{"IPv6 extension chain past the budget", pt::eth(0x86DD, pt::ipv6(chain, [&] { bytes b = exts; pt::append(b, pt::tcp(syn(80))); return b; }())), reason::ipv6_ext_chain_too_long},
		{"IPv6 extension header past the end", pt::eth(0x86DD, pt::ipv6(cut, pt::head(pt::ipv6_opts_ext(6, 64), 20))), reason::ipv6_ext_truncated},
		{"tiny first fragment", v4(tiny, pt::head(pt::tcp(syn(80)), 8)), reason::ipv4_tiny_fragment},
		{"TCP fragment at offset 8", v4(offset_one, pt::filler(24)), reason::ipv4_tcp_fragment_offset_one},
		{"ICMP error quoting garbage", v4(ip4(remote, station, 1), pt::icmp(3, 3, 0, pt::filler(40))), reason::icmp_error_bad_quote},
	};
	uint64_t malformed = 0;
	for (const auto& h : cases) {
		INFO(h.what);
		const auto before = pl.worker().counters().parse.by_reason[size_t(h.why)];
		auto r = pl.send(outside, h.frame);
		CHECK(r.to_inside.empty());
		CHECK(r.to_outside.empty());
		CHECK(pl.worker().counters().parse.by_reason[size_t(h.why)] == before + 1);
		CHECK(pl.drops(drop_reason::malformed) == ++malformed);
	}
	// The worker still works.
	CHECK(pl.send(outside, tcp4(client, 40000, server, 80, 0x02)).to_inside.size() == 1);
}

TEST_CASE("a 9000-byte frame in a chain of mbufs passes intact")
{
	pipeline pl(policy);
	pt::ipv4_spec ip = ip4(client, server, 17);
	const bytes jumbo = pt::eth(0x0800, pt::ipv4(ip, pt::udp(4000, 4000, pt::filler(9000 - 14 - 20 - 8))));
	REQUIRE(jumbo.size() == 9000);
	auto r = pl.send(outside, jumbo);
	REQUIRE(r.to_inside.size() == 1);
	CHECK(r.to_inside[0] == jumbo);
}

TEST_CASE("later fragments follow their first fragment")
{
	pipeline pl(policy);
	// Outbound UDP datagram in two fragments: allowed out, both pass.
	pt::ipv4_spec first = ip4(station, remote, 17);
	first.id = 777;
	first.mf = true;
	const bytes payload = pt::udp(5000, 53, pt::filler(40));
	pt::ipv4_spec second = first;
	second.mf = false;
	second.frag_offset = 24;
	auto r = pl.send(inside, v4(first, pt::head(payload, 24)));
	CHECK(r.to_outside.size() == 1);
	r = pl.send(inside, v4(second, bytes(payload.begin() + 24, payload.end())));
	CHECK(r.to_outside.size() == 1);
	// A later fragment with no first fragment: dropped.
	pt::ipv4_spec orphan = second;
	orphan.id = 778;
	r = pl.send(inside, v4(orphan, pt::filler(16)));
	CHECK(r.to_outside.empty());
	CHECK(pl.drops(drop_reason::fragment_no_first) == 1);
	// Inbound to a denied host: the first fragment is dropped, so its followers are too.
	pt::ipv4_spec denied = ip4(client, station, 17);
	denied.id = 900;
	denied.mf = true;
	r = pl.send(outside, v4(denied, pt::head(pt::udp(1, 9999, pt::filler(40)), 24)));
	CHECK(r.to_inside.empty());
	denied.mf = false;
	denied.frag_offset = 24;
	r = pl.send(outside, v4(denied, pt::filler(24)));
	CHECK(r.to_inside.empty());
	CHECK(pl.drops(drop_reason::fragment_no_first) == 2);
}

TEST_CASE("an IPv4 fragment over bytes another fragment of its datagram carried is dropped")
{
	pipeline pl(policy);
	// Outbound UDP datagram of 8 + 88 bytes in fragments of 24: [0,24) first, then the rest.
	const bytes payload = pt::udp(5000, 53, pt::filler(88));
	auto piece = [&](uint16_t id, uint16_t from, uint16_t to) { return fragment_of(payload, id, from, to); };
	CHECK(pl.send(inside, piece(801, 0, 24)).to_outside.size() == 1);
	// Over the first fragment's bytes (RFC 1858's rewrite of the L4 header, from offset 16).
	CHECK(pl.send(inside, piece(801, 16, 40)).to_outside.empty());
	CHECK(pl.drops(drop_reason::fragment_overlap) == 1);
	// Out of order: the last piece first, then the middle, which fills the gap exactly.
	CHECK(pl.send(inside, piece(801, 72, 96)).to_outside.size() == 1);
	CHECK(pl.send(inside, piece(801, 24, 48)).to_outside.size() == 1);
	CHECK(pl.send(inside, piece(801, 48, 72)).to_outside.size() == 1);
	// A duplicate (it could carry other bytes: hosts differ in which copy wins) and a partial overlap.
	CHECK(pl.send(inside, piece(801, 24, 48)).to_outside.empty());
	CHECK(pl.send(inside, piece(801, 64, 80)).to_outside.empty());
	CHECK(pl.drops(drop_reason::fragment_overlap) == 3);
	// Another datagram of the same hosts is a clean slate.
	CHECK(pl.send(inside, piece(802, 0, 24)).to_outside.size() == 1);
	CHECK(pl.send(inside, piece(802, 24, 96)).to_outside.size() == 1);
	CHECK(pl.drops(drop_reason::fragment_no_first) == 0);
}

TEST_CASE("fragment overlaps: a first fragment sent again, a datagram scattered in pieces, fragments in one burst")
{
	pipeline pl(policy);
	const bytes payload = pt::udp(5000, 53, pt::filler(192));  // 200 bytes of datagram
	auto piece = [&](uint16_t id, uint16_t from, uint16_t to) { return fragment_of(payload, id, from, to); };
	// The first fragment again, then other bytes where the first second fragment went: both refused.
	CHECK(pl.send(inside, piece(901, 0, 24)).to_outside.size() == 1);
	CHECK(pl.send(inside, piece(901, 24, 48)).to_outside.size() == 1);
	CHECK(pl.send(inside, piece(901, 0, 24)).to_outside.empty());
	CHECK(pl.send(inside, piece(901, 24, 48)).to_outside.empty());
	CHECK(pl.drops(drop_reason::fragment_overlap) == 2);
	// Scattered: four separate pieces are followed, a fifth gap is refused.
	CHECK(pl.send(inside, piece(902, 0, 16)).to_outside.size() == 1);
	CHECK(pl.send(inside, piece(902, 40, 56)).to_outside.size() == 1);
	CHECK(pl.send(inside, piece(902, 80, 96)).to_outside.size() == 1);
	CHECK(pl.send(inside, piece(902, 120, 136)).to_outside.size() == 1);
	CHECK(pl.send(inside, piece(902, 160, 176)).to_outside.empty());
	CHECK(pl.drops(drop_reason::fragment_overlap) == 3);
	// A filler that joins two pieces is fine.
	CHECK(pl.send(inside, piece(902, 16, 40)).to_outside.size() == 1);
	CHECK(pl.send(inside, piece(902, 160, 176)).to_outside.size() == 1);
	// All of a datagram's fragments in one burst, the later ones even before their first: all pass.
	pl.inject(inside, piece(903, 104, 200));
	pl.inject(inside, piece(903, 0, 48));
	pl.inject(inside, piece(903, 48, 104));
	pl.run();
	CHECK(pl.sent(outside).size() == 3);
	CHECK(pl.drops(drop_reason::fragment_no_first) == 0);
	// Two first fragments of one datagram in one burst: the second overlaps the first.
	pl.inject(inside, piece(905, 0, 24));
	pl.inject(inside, piece(905, 0, 48));
	pl.run();
	CHECK(pl.sent(outside).size() == 1);
	CHECK(pl.drops(drop_reason::fragment_overlap) == 4);
	// A burst whose later fragment's first is dropped: the follower is dropped too, and counted once.
	pt::ipv4_spec denied = ip4(client, station, 17);
	denied.id = 904;
	denied.mf = true;
	pl.inject(outside, v4(denied, pt::head(pt::udp(1, 9999, pt::filler(40)), 24)));
	denied.mf = false;
	denied.frag_offset = 24;
	pl.inject(outside, v4(denied, pt::filler(24)));
	pl.run();
	CHECK(pl.sent(inside).empty());
	CHECK(pl.drops(drop_reason::fragment_no_first) == 1);
}
