// Payload rules through the real worker: the flow follows its payload-free rule until a payload rule's
// pattern shows up in the stream; from that packet on, the payload rule decides.
#include <catch2/catch.hpp>

#include "packet/packet.h"
#include "pipeline.h"

using namespace portcullis;
using namespace portcullis::test;
using dataplane::drop_reason;
namespace pt = portcullis::packet::test;

namespace {

const char* web = R"(
default in drop
default out allow
drop in tcp to 198.18.1.10 port 80 content "evil"
reject in tcp to 198.18.1.10 port 80 content "/etc/passwd"
allow in tcp to 198.18.1.10 port 80
allow out from 198.18.1.0/24
)";

constexpr uint32_t client = 0xC6120005, server = 0xC612010A;
constexpr uint8_t S = 0x02, A = 0x10, SA = 0x12, PA = 0x18;

bytes text(const char* s) { return bytes(s, s + std::strlen(s)); }

// Opens client:sport -> server:80 (SYN, SYN-ACK, ACK); returns the client's next sequence number.
uint32_t open(pipeline& pl, uint16_t sport)
{
	REQUIRE(pl.send(outside, tcp4(client, sport, server, 80, S, 100)).to_inside.size() == 1);
	REQUIRE(pl.send(inside, tcp4(server, 80, client, sport, SA, 500, 101)).to_outside.size() == 1);
	REQUIRE(pl.send(outside, tcp4(client, sport, server, 80, A, 101, 501)).to_inside.size() == 1);
	return 101;
}

} // namespace

TEST_CASE("a content rule drops the flow from the packet that carries the pattern")
{
	pipeline pl(web);
	uint32_t seq = open(pl, 40000);
	const bytes ok = text("GET /index.html HTTP/1.1\r\n");
	CHECK(pl.send(outside, tcp4(client, 40000, server, 80, PA, seq, 501, ok)).to_inside.size() == 1);
	seq += uint32_t(ok.size());
	const bytes bad = text("GET /evil HTTP/1.1\r\n");
	CHECK(pl.send(outside, tcp4(client, 40000, server, 80, PA, seq, 501, bad)).to_inside.empty());
	seq += uint32_t(bad.size());
	// Everything after, both ways, is dropped: the drop rule now decides the flow.
	CHECK(pl.send(outside, tcp4(client, 40000, server, 80, PA, seq, 501, ok)).to_inside.empty());
	CHECK(pl.send(inside, tcp4(server, 80, client, 40000, PA, 501, seq, ok)).to_outside.empty());
	CHECK(pl.worker().counters().payload_decided == 1);
	// Another connection without the pattern is unaffected.
	seq = open(pl, 40001);
	CHECK(pl.send(outside, tcp4(client, 40001, server, 80, PA, seq, 501, ok)).to_inside.size() == 1);
}

TEST_CASE("a pattern split across segments still matches")
{
	pipeline pl(web);
	uint32_t seq = open(pl, 40002);
	const bytes first = text("GET /ev"), second = text("il HTTP/1.1\r\n");
	CHECK(pl.send(outside, tcp4(client, 40002, server, 80, PA, seq, 501, first)).to_inside.size() == 1);
	seq += uint32_t(first.size());
	CHECK(pl.send(outside, tcp4(client, 40002, server, 80, PA, seq, 501, second)).to_inside.empty());
	CHECK(pl.worker().inspect_counters().decided == 1);
}

TEST_CASE("a reject payload rule answers with a RST")
{
	pipeline pl(web);
	const uint32_t seq = open(pl, 40003);
	const auto r = pl.send(outside, tcp4(client, 40003, server, 80, PA, seq, 501, text("GET /etc/passwd HTTP/1.1\r\n")));
	CHECK(r.to_inside.empty());
	REQUIRE(r.to_outside.size() == 1);
	packet::parsed rst;
	packet::parse(r.to_outside[0].data(), uint32_t(r.to_outside[0].size()), rst);
	CHECK(rst.tcp_flags == 0x04);  // RST, acknowledging nothing: the offending segment had ACK
	CHECK(rst.sport == 80);
	CHECK(rst.dst.v4 == client);
}
