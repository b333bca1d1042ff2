// The lint against hand-built rule sets, and against a brute force on random small ones: a rule is
// shadowed exactly when no point of the space reaches it, redundant exactly when every point that
// reaches it gets the same action without it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <set>
#include <string>

#include "lint/lint.h"

using namespace portcullis;

namespace {

rules::ruleset parse(const std::string& text)
{
	rules::parse_options o;
	o.services_file = "";
	auto r = rules::parse_string(text, "t.rules", o);
	for (const auto& d : r.errors)
		UNSCOPED_INFO(rules::format(d));
	REQUIRE(r.rules);
	return std::move(*r.rules);
}

bool has(const lint::report& r, lint::kind k)
{
	return std::any_of(r.findings.begin(), r.findings.end(), [k](const lint::finding& f) { return f.what == k; });
}

std::set<std::pair<std::string, uint32_t>> kinds_at(const lint::report& r)
{
	std::set<std::pair<std::string, uint32_t>> out;
	for (const auto& f : r.findings)
		out.insert({lint::kind_name(f.what), f.loc.line});
	return out;
}

} // namespace

TEST_CASE("lint: shadowed, redundant, correlated, unused sets and wide allows, each at its line", "[lint]")
{
	const auto rs = parse("default in drop\n"                                          // 1
	                      "default out allow\n"                                        // 2
	                      "set unused = { 198.18.5.0/24 }\n"                           // 3
	                      "ports webports = { 80, 443 }\n"                             // 4
	                      "allow in tcp to 198.18.1.0/24 port { 80, 443 }\n"           // 5
	                      "allow in tcp to 198.18.1.10 port 80\n"                      // 6 shadowed by 5
	                      "drop in tcp to 198.18.1.0/25 port 443\n"                    // 7 shadowed by 5
	                      "drop in tcp from 198.18.0.5 to 198.18.1.10 port 22\n"       // 8
	                      "allow in\n"                                                 // 9 wide (8 is inside it: not correlated)
	                      "allow in udp to 198.18.1.10 port 53\n"                      // 10 shadowed by 9
	                      "allow out from 198.18.1.0/24\n");                           // 11 redundant: default out allow
	const auto r = lint::lint(rs);
	CHECK(r.undecided == 0);
	const std::set<std::pair<std::string, uint32_t>> expected = {
		{"shadowed", 6}, {"shadowed", 7}, {"wide-allow", 9}, {"shadowed", 10},
		{"redundant", 11}, {"unused-set", 3}, {"unused-set", 4}};
	CHECK(kinds_at(r) == expected);
	const auto shadowed6 = std::find_if(r.findings.begin(), r.findings.end(), [](const lint::finding& f) { return f.loc.line == 6; });
	REQUIRE(shadowed6 != r.findings.end());
	CHECK(shadowed6->by == std::vector<uint32_t>{0});
	CHECK(shadowed6->message == "never matches: t.rules:5 covers all of it");
}

TEST_CASE("lint: covering takes several earlier rules together; a rule with more than the 5-tuple covers nothing", "[lint]")
{
	// 4 is covered by 2 and 3 together, neither alone.
	auto r = lint::lint(parse("default in drop\n"
	                          "allow in tcp to 198.18.1.10 port 1-100\n"
	                          "allow in tcp to 198.18.1.10 port 101-200\n"
	                          "drop in tcp to 198.18.1.10 port 50-150\n"));
	CHECK(kinds_at(r) == std::set<std::pair<std::string, uint32_t>>{{"shadowed", 4}});
	CHECK(r.findings[0].by == std::vector<uint32_t>{0, 1});
	// Correlated: another action, neither inside the other. An exception before a catch-all is not.
	r = lint::lint(parse("default in drop\n"
	                     "drop in tcp from 198.18.0.0/24\n"
	                     "allow in tcp to 198.18.1.10 port 80\n"
	                     "drop in tcp from 198.18.2.5 to 198.18.1.20\n"
	                     "allow in tcp from 198.18.0.0/16\n"));
	CHECK(kinds_at(r) == std::set<std::pair<std::string, uint32_t>>{{"correlated", 3}});
	CHECK(r.findings[0].by == std::vector<uint32_t>{0});
	// A rule with a rate limit may not match: the rule after it stays reachable. A payload rule likewise.
	r = lint::lint(parse("default in drop\n"
	                     "allow in tcp to 198.18.1.10 port 22 limit 10/s\n"
	                     "reject in tcp to 198.18.1.10 port 22\n"
	                     "drop in tcp to any port 80 content \"evil\"\n"
	                     "allow in tcp to any port 80\n"));
	CHECK_FALSE(has(r, lint::kind::shadowed));
	// Another direction or family does not cover: an outbound-only or IPv6-only rule leaves IPv4 inbound.
	r = lint::lint(parse("default in drop\n"
	                     "allow out tcp to any port 443\n"
	                     "allow tcp to 2001:2::/48 port 443\n"
	                     "allow in tcp to 198.18.1.10 port 443\n"));
	CHECK_FALSE(has(r, lint::kind::shadowed));
}

TEST_CASE("lint: no redundancy claimed past a later rule it could not cut up, or one that does more than its action", "[lint]")
{
	// A later rule of another action with 11 x 11 x 11 pieces (past max_boxes) takes some of what rule 2
	// allows: without rule 2 that traffic would be dropped.
	std::string srcs, dsts, ports;
	for (int k = 0; k < 11; ++k) {
		srcs += (k ? ", " : "") + std::string("198.18.0.") + std::to_string(k + 1);
		dsts += (k ? ", " : "") + std::string("198.18.1.") + std::to_string(k + 10);
		ports += (k ? ", " : "") + std::to_string(80 + k);
	}
	auto r = lint::lint(parse("default in allow\n"
	                          "allow in tcp to 198.18.1.10 port 80\n"
	                          "drop in tcp from { " + srcs + " } to { " + dsts + " } port { " + ports + " }\n"));
	CHECK_FALSE(has(r, lint::kind::redundant));
	// A later allow that polices every packet (limit ... packets), or fills a set, is not the same verdict.
	r = lint::lint(parse("default in allow\n"
	                     "allow in tcp to 198.18.1.10 port 80\n"
	                     "allow in tcp to 198.18.1.10 port 80 limit 10/s packets\n"));
	CHECK_FALSE(has(r, lint::kind::redundant));
	r = lint::lint(parse("default in allow\n"
	                     "set seen = dynamic\n"
	                     "allow in tcp to 198.18.1.10 port 80\n"
	                     "allow in tcp to 198.18.1.0/24 add-to $seen\n"));
	CHECK_FALSE(has(r, lint::kind::redundant));
	// The work bound: with almost no budget, a rule that needs subtractions is left undecided, not judged.
	lint::options tight;
	tight.work_per_rule = 0;
	r = lint::lint(parse("default in drop\n"
	                     "allow in tcp to 198.18.1.0/24\n"
	                     "allow in tcp to 198.18.1.10 port 80\n"),
	               tight);
	CHECK(r.undecided == 1);
	CHECK_FALSE(has(r, lint::kind::shadowed));
}

TEST_CASE("lint agrees with a brute force over every distinct point on random small rule sets", "[lint][property]")
{
	std::mt19937 rng(20261130);
	const char* actions[] = {"allow", "drop", "reject"};
	const char* protos[] = {"tcp", "udp", ""};
	const char* addrs[] = {"198.18.0.0", "198.18.0.1", "198.18.0.2", "198.18.0.0/31", "198.18.0.2/31", "198.18.0.0/30", "any"};
	size_t shadowed_seen = 0, redundant_seen = 0;
	for (int round = 0; round < 300; ++round) {
		// Both directions, each with its default; a rule for one of them or (no keyword) both.
		const char* directions[] = {" in", " out", ""};
		std::string text = std::string("default in ") + actions[rng() % 2] + "\ndefault out " + actions[rng() % 2] + "\n";
		const int n = 2 + int(rng() % 7);
		for (int i = 0; i < n; ++i) {
			const std::string proto = protos[rng() % 3];
			std::string line = std::string(actions[rng() % 3]) + directions[rng() % 3] + (proto.empty() ? "" : " " + proto) +
			                   " from " + addrs[rng() % 7] + " to " + addrs[rng() % 7];
			if (!proto.empty() && rng() % 2) {  // ports need tcp or udp
				const uint32_t lo = rng() % 8, hi = lo + rng() % 4;
				line += " port " + std::to_string(lo) + (hi > lo ? "-" + std::to_string(hi) : "");
			}
			text += line + "\n";
		}
		const std::string& with_ports = text;
		INFO(with_ports);
		const auto rs = parse(with_ports);
		const auto report = lint::lint(rs);
		REQUIRE(report.undecided == 0);

		// Every distinct point: the starts of the pieces the rules' bounds cut each field into.
		auto cuts = [&](auto field) {
			std::set<u128> c = {0};
			for (const auto& r : rs.rules)
				for (const auto& x : field(r.match)) {
					c.insert(u128(x.lo));
					c.insert(u128(x.hi) + 1);
				}
			return c;
		};
		const auto protos_c = cuts([](const tuple_match& m) { return m.proto; });
		const auto src_c = cuts([](const tuple_match& m) { return m.src4; });
		const auto dst_c = cuts([](const tuple_match& m) { return m.dst4; });
		const auto dport_c = cuts([](const tuple_match& m) { return m.dport; });
		std::vector<bool> reached(rs.rules.size(), false), changes(rs.rules.size(), false);
		for (const auto dir : {rules::direction::in, rules::direction::out})
		for (u128 pr : protos_c) {
			if (pr > 255)
				continue;
			for (u128 s : src_c) {
				if (s > 0xffffffffu)
					continue;
				for (u128 d : dst_c) {
					if (d > 0xffffffffu)
						continue;
					for (u128 dp : dport_c) {
						if (dp > 65535)
							continue;
						auto matches = [&](const rules::rule& r) {
							return r.applies(dir) && contains(r.match.proto, uint8_t(pr)) && contains(r.match.src4, uint32_t(s)) &&
							       contains(r.match.dst4, uint32_t(d)) && contains(r.match.sport, uint16_t(0)) &&
							       contains(r.match.dport, uint16_t(dp));
						};
						size_t first = rs.rules.size();
						for (size_t i = 0; i < rs.rules.size() && first == rs.rules.size(); ++i)
							if (rs.rules[i].match.applies_to_ipv4() && matches(rs.rules[i]))
								first = i;
						if (first == rs.rules.size())
							continue;
						reached[first] = true;
						rules::action without = rs.default_for(dir);
						for (size_t j = first + 1; j < rs.rules.size(); ++j)
							if (rs.rules[j].match.applies_to_ipv4() && matches(rs.rules[j])) {
								without = rs.rules[j].act;
								break;
							}
						if (without != rs.rules[first].act)
							changes[first] = true;
					}
				}
			}
		}
		for (size_t i = 0; i < rs.rules.size(); ++i) {
			INFO("rule " << i + 1 << ": " << rs.rules[i].text);
			bool shadowed = false, redundant = false;
			for (const auto& f : report.findings)
				if (f.rule == int64_t(i)) {
					shadowed |= f.what == lint::kind::shadowed;
					redundant |= f.what == lint::kind::redundant;
				}
			CHECK(shadowed == !reached[i]);
			CHECK(redundant == (reached[i] && !changes[i]));
			shadowed_seen += shadowed;
			redundant_seen += redundant;
		}
	}
	// The random sets did exercise both findings.
	CHECK(shadowed_seen > 50);
	CHECK(redundant_seen > 50);
}
