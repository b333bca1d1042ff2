// `set NAME = file "PATH"`: feed formats, errors in the feed file by line and column, and how a rule
// that tests such a set compiles (a key bit, not address ranges).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "classify/classify.h"
#include "helpers.h"

namespace portcullis::rules::test {
namespace {

// A directory of its own per test case, removed at the end.
struct temp_dir {
	std::filesystem::path path;
	temp_dir()
	{
		char tmpl[] = "/tmp/portcullis-sets-XXXXXX";
		REQUIRE(mkdtemp(tmpl) != nullptr);
		path = tmpl;
	}
	~temp_dir() { std::filesystem::remove_all(path); }
	std::string write(const std::string& name, const std::string& text) const
	{
		std::ofstream(path / name, std::ios::binary) << text;
		return (path / name).string();
	}
};

parse_result parse_rules(const temp_dir& d, const std::string& text, parse_options o = no_services())
{
	return parse_file(d.write("main.rules", text), o);
}

ruleset rules_ok(const temp_dir& d, const std::string& text, parse_options o = no_services())
{
	auto r = parse_rules(d, text, o);
	for (const auto& e : r.errors)
		UNSCOPED_INFO(format(e));
	REQUIRE(r.errors.empty());
	return std::move(*r.rules);
}

bool in_set(const address_set& s, uint32_t a) { return contains(s.v4, a); }

} // namespace

TEST_CASE("file sets read plain, FireHOL and Spamhaus DROP feeds")
{
	temp_dir d;
	d.write("plain.txt", "198.18.0.1\n198.18.1.0/24\n2001:2::/48\r\n\n   198.18.9.9   \n");
	d.write("firehol.netset",
	        "#\n# firehol_level1\n#\n198.18.16.0/20\n198.18.32.7\n# trailing comment line\n");
	d.write("drop.txt",
	        "; Spamhaus DROP List 2026/11/30\n; Last-Modified: Mon, 30 Nov 2026\n198.18.64.0/18 ; SBL256894\n"
	        "198.18.128.0/17 ; SBL123\n");
	const ruleset rs = rules_ok(d, "set a = file \"plain.txt\"\nset b = file \"firehol.netset\"\n"
	                               "set c = file \"drop.txt\"\n"
	                               "drop in from $a\ndrop in from $b\ndrop in to $c\n");
	REQUIRE(rs.sets.size() == 3);
	CHECK(rs.sets[0].name == "a");
	CHECK(rs.sets[0].entries == 4);
	CHECK(in_set(rs.sets[0], ip4(198, 18, 0, 1)));
	CHECK_FALSE(in_set(rs.sets[0], ip4(198, 18, 0, 2)));
	CHECK(in_set(rs.sets[0], ip4(198, 18, 1, 255)));
	CHECK(in_set(rs.sets[0], ip4(198, 18, 9, 9)));
	REQUIRE(rs.sets[0].v6.size() == 1);
	CHECK(rs.sets[0].v6[0].lo == u128(0x20010002) << 96);
	CHECK(rs.sets[1].entries == 2);
	CHECK(in_set(rs.sets[1], ip4(198, 18, 31, 255)));
	CHECK(in_set(rs.sets[1], ip4(198, 18, 32, 7)));
	CHECK_FALSE(in_set(rs.sets[1], ip4(198, 18, 32, 8)));
	CHECK(rs.sets[2].entries == 2);
	// Two adjacent CIDRs merge into one range.
	REQUIRE(rs.sets[2].v4.size() == 1);
	CHECK(rs.sets[2].v4[0].lo == ip4(198, 18, 64, 0));
	CHECK(rs.sets[2].v4[0].hi == ip4(198, 18, 255, 255));
	// The feed files are among the files the rule set was read from (a reload rereads them).
	CHECK(std::count(rs.files.begin(), rs.files.end(), (d.path / "drop.txt").string()) == 1);
}

TEST_CASE("host bits under a feed's prefix are cleared, not refused")
{
	temp_dir d;
	d.write("f.txt", "198.18.7.9/24\n");
	const ruleset rs = rules_ok(d, "set f = file \"f.txt\"\ndrop in from $f\n");
	REQUIRE(rs.sets[0].v4.size() == 1);
	CHECK(rs.sets[0].v4[0].lo == ip4(198, 18, 7, 0));
	CHECK(rs.sets[0].v4[0].hi == ip4(198, 18, 7, 255));
}

TEST_CASE("a rule over a file set tests a key bit and keeps its address fields any")
{
	temp_dir d;
	d.write("bad.txt", "198.18.0.0/24\n");
	d.write("good.txt", "198.19.0.0/24\n");
	const ruleset rs = rules_ok(d, "set bad = file \"bad.txt\"\nset good = file \"good.txt\"\n"
	                               "drop in from $bad\n"
	                               "allow in tcp from !$good to any port 22\n"
	                               "allow out to $bad\n"
	                               "drop in from $bad to $good\n");
	REQUIRE(rs.rules.size() == 4);
	REQUIRE(rs.set_tests.size() == 4);
	CHECK(rs.set_tests[0] == set_test{0, false});
	CHECK(rs.set_tests[1] == set_test{1, false});
	CHECK(rs.set_tests[2] == set_test{0, true});
	CHECK(rs.set_tests[3] == set_test{1, true});
	const auto& m0 = rs.rules[0].match;
	CHECK(m0.set_bits_mask == 1);
	CHECK(m0.set_bits_value == 1);
	CHECK(m0.src4 == std::vector<value_range<uint32_t>>{full_range<uint32_t>()});
	CHECK(m0.src6 == std::vector<value_range<u128>>{full_range<u128>()});
	CHECK(rs.rules[0].written.src == "$bad");
	CHECK(rs.rules[1].match.set_bits_mask == 2);
	CHECK(rs.rules[1].match.set_bits_value == 0);  // negated: the source must not be in the set
	CHECK(rs.rules[1].written.src == "!$good");
	CHECK(rs.rules[2].match.set_bits_mask == 4);
	CHECK(rs.rules[3].match.set_bits_mask == (1 | 8));
	CHECK(rs.rules[3].match.set_bits_value == (1 | 8));

	// The reference semantics: only a key whose bit says "in the set" matches.
	classify::key_v4 k{ip4(198, 18, 0, 5), ip4(198, 18, 1, 1), 1000, 22, 6, 2, 0, 0};
	CHECK_FALSE(classify::matches(m0, k));
	k.set_bits = 1;
	CHECK(classify::matches(m0, k));
	k.set_bits = 2;
	CHECK_FALSE(classify::matches(rs.rules[1].match, k));
	k.set_bits = 0;
	CHECK(classify::matches(rs.rules[1].match, k));
}

TEST_CASE("a file set that no rule tests stays out of the rule set")
{
	temp_dir d;
	d.write("f.txt", "198.18.0.0/24\n");
	const ruleset rs = rules_ok(d, "set f = file \"f.txt\"\nallow out all\n");
	CHECK(rs.sets.empty());
	CHECK(rs.set_tests.empty());
}

TEST_CASE("feed errors name the feed file, line and column, and the rules are refused")
{
	temp_dir d;
	const std::string feed = d.write("feed.txt", "198.18.0.1\n  not-an-address\n198.18.0.0/33\n198.18.1.1 extra\n"
	                                             "2001:2:::1\n198.18.2.1 ; fine\n");
	const auto r = parse_rules(d, "set f = file \"feed.txt\"\ndrop in from $f\n");
	REQUIRE_FALSE(r.rules);
	REQUIRE(r.errors.size() == 4);
	CHECK(format(r.errors[0]) == feed + ":2:3: error: set 'f': expected an IPv4 or IPv6 address or CIDR, got 'not-an-address'");
	CHECK(format(r.errors[1]) == feed + ":3:1: error: set 'f': invalid prefix length in '198.18.0.0/33' (expected /0 to /32)");
	CHECK(format(r.errors[2]).starts_with(feed + ":4:12: error: set 'f': unexpected 'extra' after the address"));
	CHECK(format(r.errors[3]) == feed + ":5:1: error: set 'f': invalid IPv6 address '2001:2:::1'");
}

TEST_CASE("a NUL inside a feed's address is an error, not the end of the address")
{
	temp_dir d;
	d.write("feed.txt", std::string("198.18.0.1\0junk\n", 16));
	const auto r = parse_rules(d, "set f = file \"feed.txt\"\ndrop in from $f\n");
	REQUIRE(r.errors.size() == 1);
	CHECK(r.errors[0].loc.line == 1);
	CHECK(r.errors[0].message.starts_with("set 'f': expected an IPv4 or IPv6 address or CIDR"));
}

TEST_CASE("a feed with many bad lines reports the first twenty and counts the rest")
{
	temp_dir d;
	std::string text;
	for (int i = 0; i < 50; ++i)
		text += "junk" + std::to_string(i) + "\n";
	d.write("feed.txt", text);
	const auto r = parse_rules(d, "set f = file \"feed.txt\"\ndrop in from $f\n");
	REQUIRE(r.errors.size() == 21);
	CHECK(r.errors[20].message == "set 'f': 30 more error(s) in this file");
}

TEST_CASE("file set misuse and file problems are errors at the rule file's position")
{
	temp_dir d;
	d.write("f.txt", "198.18.0.0/24\n");
	auto first = [&](const std::string& text, parse_options o = no_services()) {
		auto r = parse_rules(d, text, o);
		REQUIRE_FALSE(r.errors.empty());
		return format(r.errors[0]);
	};
	const std::string main = (d.path / "main.rules").string();
	CHECK(first("set f = file \"missing.txt\"\n").starts_with(main + ":1:14: error: set 'f': cannot read '"));
	CHECK(first("set f = file\n") == main + ":1:9: error: expected a file name in quotes after 'file', got end of line");
	CHECK(first("set f = file \"f.txt\"\ndrop in from { $f, 198.18.0.1 }\n")
	          .starts_with(main + ":2:16: error: '$f' is a set from a file: it stands alone after from or to"));
	CHECK(first("set f = file \"f.txt\"\nset g = { $f }\n").starts_with(main + ":2:11: error: '$f' is a set from a file"));
	parse_options small = no_services();
	small.max_set_file_bytes = 4;
	CHECK(first("set f = file \"f.txt\"\n", small).find("more than the limit of 4") != std::string::npos);
	parse_options few = no_services();
	few.max_set_entries = 0;
	CHECK(first("set f = file \"f.txt\"\n", few).find("more than 0 entries in one set file") != std::string::npos);
	// A set from etcd has no directory: relative set files are refused there.
	parse_options self_contained = no_services();
	self_contained.max_include_depth = 0;
	auto r = parse_string("set f = file \"f.txt\"\n", "etcd", self_contained);
	REQUIRE_FALSE(r.errors.empty());
	CHECK(r.errors[0].message.starts_with("a set file must be an absolute path here"));
	// A broken feed does not also make each use an "unknown set".
	d.write("bad.txt", "junk\n");
	auto b = parse_rules(d, "set f = file \"bad.txt\"\ndrop in from $f\ndrop out to $f\n");
	CHECK(b.errors.size() == 1);
}

TEST_CASE("at most eight set tests in one rule set")
{
	temp_dir d;
	std::string text;
	for (int i = 0; i < 5; ++i) {
		d.write("f" + std::to_string(i) + ".txt", "198.18." + std::to_string(i) + ".0/24\n");
		text += "set s" + std::to_string(i) + " = file \"f" + std::to_string(i) + ".txt\"\n";
	}
	for (int i = 0; i < 4; ++i)
		text += "drop in from $s" + std::to_string(i) + " to $s" + std::to_string(i) + "\n";
	CHECK(rules_ok(d, text).set_tests.size() == 8);
	// Reusing a tested (set, side) pair takes no new bit.
	CHECK(rules_ok(d, text + "drop out from !$s0\n").set_tests.size() == 8);
	auto r = parse_rules(d, text + "drop in from $s4\n");
	REQUIRE(r.errors.size() == 1);
	CHECK(r.errors[0].message.starts_with("too many set-file tests: one rule set may test at most 8"));
	CHECK(r.errors[0].loc.line == 10);
}

TEST_CASE("a million-line feed parses")
{
	temp_dir d;
	std::string text;
	text.reserve(20 << 20);
	for (uint32_t i = 0; i < 1'000'000; ++i) {
		const uint32_t a = 0x0A000000u + i * 4;  // 10.0.0.0 upwards, every fourth address
		text += std::to_string(a >> 24) + "." + std::to_string(a >> 16 & 255) + "." + std::to_string(a >> 8 & 255) +
		        "." + std::to_string(a & 255) + "\n";
	}
	d.write("big.txt", text);
	const ruleset rs = rules_ok(d, "set big = file \"big.txt\"\ndrop in from $big\n");
	CHECK(rs.sets[0].entries == 1'000'000);
	CHECK(rs.sets[0].v4.size() == 1'000'000);
	CHECK(in_set(rs.sets[0], 0x0A000000u + 4 * 999'999));
}

} // namespace portcullis::rules::test

namespace portcullis::rules::test {

TEST_CASE("dynamic sets and add-to")
{
	const ruleset rs = parse_ok("set scanners = dynamic size 1000\nset seen = dynamic\n"
	                            "drop in tcp to any port { telnet, 3389, 31337 } add-to $scanners timeout 1h\n"
	                            "drop in from $scanners\n"
	                            "allow out add-to dst $seen\n"
	                            "allow in tcp to any port 22 add-to src $seen timeout 90\n");
	REQUIRE(rs.sets.size() == 2);
	CHECK(rs.sets[0].name == "scanners");
	CHECK(rs.sets[0].dynamic);
	CHECK(rs.sets[0].max_adds == 1000);
	CHECK(rs.sets[0].file.empty());
	CHECK(rs.sets[1].max_adds == 65536);
	REQUIRE(rs.rules[0].add_to);
	CHECK(rs.rules[0].add_to->set == 0);
	CHECK_FALSE(rs.rules[0].add_to->dst);
	CHECK(rs.rules[0].add_to->timeout_s == 3600);
	CHECK_FALSE(rs.rules[1].add_to);
	CHECK(rs.rules[1].match.set_bits_mask == 1);
	CHECK(rs.rules[2].add_to->set == 1);
	CHECK(rs.rules[2].add_to->dst);
	CHECK(rs.rules[2].add_to->timeout_s == 0);
	CHECK(rs.rules[3].add_to->timeout_s == 90);
	// Filling a set takes no key bit; only testing does.
	CHECK(rs.set_tests.size() == 1);
}

TEST_CASE("dns sets: their name patterns, lower case and without repeats, and a size")
{
	const ruleset rs = parse_ok("set cdn = dns \"*.CDN.example\"\n"
	                            "set apis = dns { \"api.example\", \"*.api.example\", \"api.example\" } size 500\n"
	                            "allow out tcp to $cdn port https\n"
	                            "allow out tcp to $apis port https\n");
	REQUIRE(rs.sets.size() == 2);
	CHECK(rs.sets[0].name == "cdn");
	CHECK(rs.sets[0].dynamic);
	CHECK(rs.sets[0].dns_names == std::vector<std::string>{"*.cdn.example"});
	CHECK(rs.sets[0].max_adds == 65536);
	CHECK(rs.sets[1].dns_names == std::vector<std::string>{"api.example", "*.api.example"});
	CHECK(rs.sets[1].max_adds == 500);
	CHECK(rs.rules[0].match.set_bits_mask == 1);
	auto first = [](const std::string& text) { return format(parse_errors(text)[0]); };
	CHECK(first("set s = dns\n") ==
	      "t.rules:1:9: error: expected a name in quotes or a { list } of them after 'dns', got end of line");
	CHECK(first("set s = dns example.com\n") ==
	      "t.rules:1:13: error: expected a name in quotes (e.g. \"*.example.com\"), got 'example.com'");
	CHECK(first("set s = dns \"a..example\"\n").starts_with("t.rules:1:13: error: invalid name \"a..example\""));
	CHECK(first("set s = dns { }\n") == "t.rules:1:13: error: empty list of names: the set would never fill");
	CHECK(first("set s = dns \"a.example\" size 0\n").starts_with("t.rules:1:30: error: invalid set size '0'"));
}

TEST_CASE("add-to and dynamic set errors")
{
	auto first = [](const std::string& text) { return format(parse_errors(text)[0]); };
	CHECK(first("set s = dynamic size 0\n") == "t.rules:1:22: error: invalid set size '0' (expected 1 to 10000000 entries)");
	CHECK(first("set s = dynamic size\n") == "t.rules:1:21: error: expected a number of entries after 'size', got end of line");
	CHECK(first("drop in add-to $nope\n").starts_with("t.rules:1:16: error: unknown set '$nope'"));
	CHECK(first("set s = { 198.18.0.1 }\ndrop in add-to $s\n")
	          .starts_with("t.rules:2:16: error: '$s' is written out in the rules; add-to needs a set the data path can change"));
	CHECK(first("set s = dynamic\ndrop in add-to\n") ==
	      "t.rules:2:9: error: expected a set after 'add-to' (e.g. 'add-to $scanners' or 'add-to dst $seen'), got end of line");
	CHECK(first("set s = dynamic\ndrop in add-to $s timeout 2y\n") ==
	      "t.rules:2:27: error: invalid timeout '2y' (expected 1s to 366d, e.g. 90s, 15m, 1h, 7d)");
	CHECK(first("set s = dynamic\ndrop in add-to $s timeout 367d\n").starts_with("t.rules:2:27: error: invalid timeout"));
	CHECK(first("set s = dynamic\ndrop in add-to $s add-to $s\n") == "t.rules:2:19: error: duplicate 'add-to' in one rule");
	CHECK(first("set s = dynamic\ndrop in tcp from $s content \"x\"\n")
	          .starts_with("t.rules:2:1: error: a set from a file (or dynamic, or country) does not go with payload"));
}

} // namespace portcullis::rules::test

namespace portcullis::rules::test {

TEST_CASE("a feed of more than ten million lines is refused at the first line past the limit")
{
	temp_dir d;
	{
		// The same few lines over and over: the limit counts lines with an address, not distinct ones.
		std::ofstream out(d.path / "huge.txt", std::ios::binary);
		std::string block;
		for (int i = 0; i < 1000; ++i)
			block += "198.18." + std::to_string(i % 250) + ".1\n";
		for (int i = 0; i < 10'000; ++i)
			out << block;
		out << "198.19.0.1\n";
	}
	auto r = parse_rules(d, "set huge = file \"huge.txt\"\ndrop in from $huge\n");
	REQUIRE(r.errors.size() == 1);
	CHECK(r.errors[0].loc.file == (d.path / "huge.txt").string());
	CHECK(r.errors[0].loc.line == 10'000'001);
	CHECK(r.errors[0].message == "set 'huge': more than 10000000 entries in one set file");
}

} // namespace portcullis::rules::test
