// Test-flow syntax (what `portcullis explain/classify` read) and the field-by-field explanation.
#include "helpers.h"
#include "rules/tuple.h"

using namespace portcullis;
using namespace portcullis::rules;
using namespace portcullis::rules::test;

TEST_CASE("flows parse: v4, v6 with brackets, ICMP, protocol numbers, flags", "[rules][flow]")
{
	auto f = parse_tuple("tcp 198.18.0.5:40000 -> 198.18.1.2:22 in");
	REQUIRE(f.value);
	CHECK_FALSE(f.value->v6);
	CHECK(f.value->src == ip4(198, 18, 0, 5));
	CHECK(f.value->dst == ip4(198, 18, 1, 2));
	CHECK(f.value->sport == 40000);
	CHECK(f.value->dport == 22);
	CHECK(f.value->proto == 6);
	CHECK(f.value->tcp_flags == 0x02);  // a new connection
	CHECK(f.value->dir == direction::in);
	CHECK(format(*f.value) == "tcp 198.18.0.5:40000 -> 198.18.1.2:22 in");

	f = parse_tuple("udp [2001:2::5]:5353 -> [2001:2::53]:domain out");
	REQUIRE(f.value);
	CHECK(f.value->v6);
	CHECK(f.value->dst == ((u128(0x20010002) << 96) | 0x53));
	CHECK(f.value->dport == 53);
	CHECK(f.value->dir == direction::out);
	CHECK(format(*f.value) == "udp [2001:2::5]:5353 -> [2001:2::53]:53 out");

	f = parse_tuple("icmp6 2001:2::5 -> 2001:2::1 in type echo-request code 0");
	REQUIRE(f.value);
	CHECK(f.value->proto == 58);
	CHECK(f.value->sport == 128);
	CHECK(f.value->dport == 0);

	f = parse_tuple("tcp 198.18.0.5:1 -> 198.18.1.2:2 out flags SA");
	REQUIRE(f.value);
	CHECK(f.value->tcp_flags == 0x12);

	f = parse_tuple("47 198.18.0.5 -> 198.18.1.2 in");
	REQUIRE(f.value);
	CHECK(f.value->proto == 47);

	// Bare IPv6 addresses that end in ':' (what --help shows and explain prints) are addresses, not an
	// address and an empty port.
	f = parse_tuple("icmp6 2001:2::1 -> 2001:2:: in type 1");
	REQUIRE(f.value);
	CHECK(f.value->dst == (u128(0x20010002) << 96));
	CHECK(f.value->sport == 1);
	f = parse_tuple("47 2001:2:: -> 2001:2::1 in");
	REQUIRE(f.value);
	CHECK(f.value->v6);
	CHECK(f.value->src == (u128(0x20010002) << 96));
	f = parse_tuple("icmp6 :: -> ::1 in type 1");
	REQUIRE(f.value);
	CHECK(f.value->src == 0);
	CHECK(f.value->dst == 1);
	CHECK(format(*f.value).find("::1") != std::string::npos);
	const auto again = parse_tuple(format(*f.value));
	REQUIRE(again.value);
	CHECK(again.value->dst == 1);
}

TEST_CASE("flow errors name the column", "[rules][flow]")
{
	struct c {
		const char* text;
		uint32_t column;
		const char* message;
	};
	for (const auto& e : {
		     c{"tpc 198.18.0.5:1 -> 198.18.1.2:2 in", 1, "unknown protocol 'tpc'"},
		     c{"tcp 198.18.0.5:1 => 198.18.1.2:2 in", 18, "expected '->'"},
		     c{"tcp 198.18.0.5:1 -> 198.18.1.2:99999 in", 21, "invalid port '99999'"},
		     c{"tcp 198.18.0.5:1 -> [2001:2::1]:2 in", 21, "same address family"},
		     c{"tcp 198.18.0.5:1 -> 198.18.1.2:2 sideways", 34, "expected a direction (in or out)"},
		     c{"tcp 198.18.0.5:1 -> 198.18.1.2:2", 33, "expected a direction (in or out), got end of line"},
		     c{"icmp 198.18.0.5:1 -> 198.18.1.2 in", 6, "ports need tcp or udp"},
		     c{"udp 198.18.0.5:1 -> 198.18.1.2:2 in flags S", 37, "unexpected 'flags'"},
		     c{"tcp host:1 -> 198.18.1.2:2 in", 5, "expected an address"},
		     c{"tcp 198.18.0.5: -> 198.18.1.2:2 in", 5, "invalid port ''"},
		     c{"tcp [2001:2::5]: -> [2001:2::1]:2 in", 5, "invalid port ''"},
	     }) {
		INFO(e.text);
		const auto r = parse_tuple(e.text);
		REQUIRE_FALSE(r.value);
		CHECK(r.column == e.column);
		CHECK_THAT(r.error, Catch::Contains(e.message));
	}
}

TEST_CASE("explain says which field matched or failed and why", "[rules][flow]")
{
	const auto rs = parse_ok("set server = { 198.18.1.10, 2001:2:0:1::10 }\n"
	                         "allow in tcp to $server port { ssh, http, https }\n"
	                         "allow in icmp icmp-type echo-request\n"
	                         "allow out\n");
	const auto ssh = parse_tuple("tcp 198.18.0.5:40000 -> 198.18.1.10:22 in");
	REQUIRE(ssh.value);
	auto e = explain(rs.rules[0], *ssh.value);
	CHECK(e.matched);
	CHECK(std::find(e.reasons.begin(), e.reasons.end(), "dport 22 in { ssh, http, https }") != e.reasons.end());
	CHECK(std::find(e.reasons.begin(), e.reasons.end(), "dst 198.18.1.10 in $server") != e.reasons.end());

	const auto other = parse_tuple("tcp 198.18.0.5:40000 -> 198.18.1.10:8080 in");
	e = explain(rs.rules[0], *other.value);
	CHECK_FALSE(e.matched);
	CHECK(e.reasons.back() == "dport 8080 not in { ssh, http, https }");

	const auto v6 = parse_tuple("icmp6 2001:2::5 -> 2001:2:0:1::10 in type echo-request");
	e = explain(rs.rules[1], *v6.value);
	CHECK_FALSE(e.matched);
	CHECK(e.reasons.back() == "rule does not apply to IPv6");

	e = explain(rs.rules[2], *ssh.value);
	CHECK_FALSE(e.matched);
	CHECK(e.reasons.back() == "direction in: rule applies only to out");

	const auto ping = parse_tuple("icmp 198.18.0.5 -> 198.18.1.10 in type 8");
	e = explain(rs.rules[1], *ping.value);
	CHECK(e.matched);
	CHECK(std::find(e.reasons.begin(), e.reasons.end(), "icmp-type 8 in echo-request") != e.reasons.end());
}
