// `limit R/s [burst B]` on a rule: what parses, the defaults, and the errors.
#include "helpers.h"

namespace portcullis::rules::test {

TEST_CASE("rate limits parse with their units and bursts")
{
	const ruleset rs = parse_ok("allow in tcp to any port ssh limit 10/m\n"
	                            "allow in udp limit 100/s burst 200 counter dns\n"
	                            "allow in limit 50000/h\n"
	                            "allow out\n");
	REQUIRE(rs.rules[0].limit);
	CHECK(rs.rules[0].limit->rate == 10);
	CHECK(rs.rules[0].limit->per == 60);
	CHECK(rs.rules[0].limit->burst == 10);  // default: the rate
	CHECK(rs.rules[0].limit->written == "10/m");
	CHECK(rs.rules[1].limit->per == 1);
	CHECK(rs.rules[1].limit->burst == 200);
	CHECK(rs.rules[1].limit->written == "100/s burst 200");
	CHECK(rs.rules[1].counter == "dns");
	CHECK(rs.rules[2].limit->per == 3600);
	CHECK(rs.rules[2].limit->burst == 10000);  // default burst is capped
	CHECK_FALSE(rs.rules[3].limit);
	CHECK_FALSE(rs.rules[0].limit->per_source);
	const rule per_source = parse_one("allow in tcp to any port http limit per-source 20/s burst 40\n");
	REQUIRE(per_source.limit);
	CHECK(per_source.limit->per_source);
	CHECK(per_source.limit->rate == 20);
	CHECK(per_source.limit->burst == 40);
	CHECK(per_source.limit->written == "per-source 20/s burst 40");
	CHECK(per_source.limit->prefix6 == 64);  // the default
	CHECK_FALSE(per_source.limit->packets);
	// `packets` and `ipv6-prefix`, in either order, with or without the slash.
	const rule policer = parse_one("allow in udp to any port 53 limit per-source 100/s packets ipv6-prefix /56 burst 300\n");
	REQUIRE(policer.limit);
	CHECK(policer.limit->packets);
	CHECK(policer.limit->prefix6 == 56);
	CHECK(policer.limit->burst == 300);
	CHECK(policer.limit->written == "per-source 100/s packets ipv6-prefix /56 burst 300");
	CHECK(parse_one("allow in limit per-source 5/s ipv6-prefix 48\n").limit->prefix6 == 48);
	CHECK(parse_one("allow in limit 5/s packets\n").limit->packets);
}

TEST_CASE("max-conn per-source parses on allow rules, with or without a limit")
{
	const ruleset rs = parse_ok("allow in tcp to any port ssh max-conn 5 per-source counter ssh\n"
	                            "allow in tcp to any port http limit per-source 20/s max-conn 50 per-source\n");
	REQUIRE(rs.rules[0].max_conn);
	CHECK(rs.rules[0].max_conn->max == 5);
	CHECK(rs.rules[0].max_conn->written == "max-conn 5 per-source");
	CHECK_FALSE(rs.rules[0].limit);
	REQUIRE(rs.rules[1].max_conn);
	CHECK(rs.rules[1].max_conn->max == 50);
	CHECK(rs.rules[1].limit->rate == 20);
	auto first = [](const std::string& text) { return format(parse_errors(text)[0]); };
	CHECK(first("allow in max-conn\n") ==
	      "t.rules:1:10: error: expected a number after 'max-conn' (e.g. 'max-conn 50 per-source'), got end of line");
	CHECK(first("allow in max-conn 0 per-source\n") ==
	      "t.rules:1:19: error: invalid connection count '0' (expected 1 to 10000000)");
	CHECK(first("allow in max-conn 5\n") ==
	      "t.rules:1:19: error: expected 'per-source' after 'max-conn 5' (connections are counted per source address), got end of line");
	CHECK(first("allow in max-conn 5 per-source max-conn 6 per-source\n") ==
	      "t.rules:1:32: error: duplicate 'max-conn' in one rule");
	CHECK(first("drop in max-conn 5 per-source\n") ==
	      "t.rules:1:1: error: max-conn goes only on allow rules: it counts the flows the rule lets open");
	CHECK(first("allow in tcp max-conn 5 per-source content \"x\"\n").starts_with(
		"t.rules:1:1: error: max-conn does not go with payload conditions"));
}

TEST_CASE("rate limit errors")
{
	auto first = [](const std::string& text) { return format(parse_errors(text)[0]); };
	CHECK(first("allow in limit\n") ==
	      "t.rules:1:10: error: expected a rate after 'limit' (e.g. 'limit 100/s', 'limit 20/m burst 5'), got end of line");
	CHECK(first("allow in limit 10\n") ==
	      "t.rules:1:16: error: invalid rate '10' (expected N/s, N/m or N/h with N from 1 to 100000000)");
	CHECK(first("allow in limit 0/s\n").starts_with("t.rules:1:16: error: invalid rate '0/s'"));
	CHECK(first("allow in limit 5/d\n").starts_with("t.rules:1:16: error: invalid rate '5/d'"));
	CHECK(first("allow in limit 5/s burst 0\n") ==
	      "t.rules:1:26: error: invalid burst '0' (expected 1 to 100000000 flows)");
	CHECK(first("allow in limit per-source\n").starts_with("t.rules:1:10: error: expected a rate after 'limit'"));
	CHECK(first("allow in limit 5/s limit 6/s\n") == "t.rules:1:20: error: duplicate 'limit' in one rule");
	CHECK(first("allow in limit 5/s ipv6-prefix /56\n") ==
	      "t.rules:1:20: error: 'ipv6-prefix' needs 'limit per-source' (it says how IPv6 sources share a bucket)");
	CHECK(first("allow in limit per-source 5/s ipv6-prefix /0\n") ==
	      "t.rules:1:43: error: invalid IPv6 prefix length '/0' (expected /1 to /128)");
	CHECK(first("allow in limit per-source 5/s ipv6-prefix /129\n").starts_with(
		"t.rules:1:43: error: invalid IPv6 prefix length '/129'"));
	CHECK(first("allow in limit per-source 5/s ipv6-prefix\n").starts_with(
		"t.rules:1:31: error: expected a prefix length after 'ipv6-prefix'"));
	CHECK(first("allow in limit 5/s packets packets\n") == "t.rules:1:28: error: duplicate 'packets' in one limit");
	CHECK(first("allow in limit 5/s burst 2 burst 3\n") == "t.rules:1:28: error: duplicate 'burst' in one limit");
	CHECK(first("allow in tcp limit 5/s content \"x\"\n").starts_with(
		"t.rules:1:1: error: limit does not go with payload conditions"));
}

} // namespace portcullis::rules::test
