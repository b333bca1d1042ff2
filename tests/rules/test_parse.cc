// Each construct of the language compiles to the exact ranges expected.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "classify/classify.h"
#include "helpers.h"

using namespace portcullis;
using namespace portcullis::rules;
using namespace portcullis::rules::test;

namespace {

template <class T>
using ranges = std::vector<value_range<T>>;

const ranges<uint32_t> all4{full_range<uint32_t>()};
const ranges<u128> all6{full_range<u128>()};
const ranges<uint16_t> all_ports{full_range<uint16_t>()};
const ranges<uint8_t> all_protos{full_range<uint8_t>()};

constexpr u128 v6(uint64_t hi, uint64_t lo) { return (u128(hi) << 64) | lo; }
constexpr u128 net_2001_2 = v6(0x2001000200000000ull, 0);  // 2001:2::/48

struct temp_dir {
	std::filesystem::path path;
	temp_dir()
	{
		path = std::filesystem::temp_directory_path() /
		       ("portcullis-rules-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
		std::filesystem::create_directories(path);
	}
	~temp_dir() { std::filesystem::remove_all(path); }
	std::string write(const std::string& name, const std::string& text) const
	{
		const auto p = path / name;
		std::filesystem::create_directories(p.parent_path());
		std::ofstream(p) << text;
		return p.string();
	}
	static inline int counter = 0;
};

} // namespace

TEST_CASE("a full rule compiles to exact ranges", "[rules][parse]")
{
	const rule r = parse_one("allow in tcp from 198.18.0.0/24 port 1024-65535 to 198.18.1.10 port 22\n");
	CHECK(r.act == action::allow);
	CHECK(r.in);
	CHECK_FALSE(r.out);
	CHECK_FALSE(r.log);
	CHECK(r.match.src4 == ranges<uint32_t>{{ip4(198, 18, 0, 0), ip4(198, 18, 0, 255)}});
	CHECK(r.match.dst4 == ranges<uint32_t>{{ip4(198, 18, 1, 10), ip4(198, 18, 1, 10)}});
	CHECK(r.match.src6.empty());
	CHECK(r.match.dst6.empty());
	CHECK(r.match.applies_to_ipv4());
	CHECK_FALSE(r.match.applies_to_ipv6());
	CHECK(r.match.proto == ranges<uint8_t>{{6, 6}});
	CHECK(r.match.sport == ranges<uint16_t>{{1024, 65535}});
	CHECK(r.match.dport == ranges<uint16_t>{{22, 22}});
	CHECK(r.match.tcp_flags_mask == 0);
	CHECK(r.loc.file == "t.rules");
	CHECK(r.loc.line == 1);
	CHECK(r.loc.column == 1);
	CHECK(r.text == "allow in tcp from 198.18.0.0/24 port 1024-65535 to 198.18.1.10 port 22");
	CHECK(r.counter == "rule1");
	CHECK(r.written.dport == "22");
	CHECK(r.written.src == "198.18.0.0/24");
}

TEST_CASE("omitted parts mean any, both directions, both families", "[rules][parse]")
{
	const rule r = parse_one("allow");
	CHECK(r.in);
	CHECK(r.out);
	CHECK(r.match.src4 == all4);
	CHECK(r.match.dst4 == all4);
	CHECK(r.match.src6 == all6);
	CHECK(r.match.dst6 == all6);
	CHECK(r.match.proto == all_protos);
	CHECK(r.match.sport == all_ports);
	CHECK(r.match.dport == all_ports);

	const rule out = parse_one("drop log out all");
	CHECK_FALSE(out.in);
	CHECK(out.out);
	CHECK(out.log);
	CHECK(out.act == action::drop);
	CHECK(out.match.src6 == all6);

	const rule both = parse_one("reject in out log");
	CHECK(both.in);
	CHECK(both.out);
	CHECK(both.act == action::reject);
}

TEST_CASE("IPv6 CIDRs and hosts", "[rules][parse]")
{
	const rule r = parse_one("drop from 2001:2::/48 to 2001:2:0:1::10");
	CHECK(r.match.src6 == ranges<u128>{{net_2001_2, net_2001_2 | ((u128(1) << 80) - 1)}});
	const u128 host = v6(0x2001000200000001ull, 0x10);
	CHECK(r.match.dst6 == ranges<u128>{{host, host}});
	CHECK(r.match.src4.empty());
	CHECK_FALSE(r.match.applies_to_ipv4());
	CHECK(r.match.applies_to_ipv6());
}

TEST_CASE("mixed v4/v6 sets fill both families", "[rules][parse]")
{
	const auto rs = parse_ok("set s = { 198.18.0.1, 2001:2::1 }\n"
	                         "set t = { $s, 198.18.0.2 }\n"
	                         "drop from $t to any\n");
	REQUIRE(rs.rules.size() == 1);
	const auto& m = rs.rules[0].match;
	CHECK(m.src4 == ranges<uint32_t>{{ip4(198, 18, 0, 1), ip4(198, 18, 0, 2)}});  // adjacent hosts merge
	CHECK(m.src6 == ranges<u128>{{net_2001_2 | 1, net_2001_2 | 1}});
	CHECK(m.dst4 == all4);
	CHECK(m.dst6 == all6);
	CHECK(m.applies_to_ipv4());
	CHECK(m.applies_to_ipv6());
}

TEST_CASE("$martians is there without a definition; a set of one's own of that name takes its place", "[rules][parse]")
{
	auto rs = parse_ok("drop in from $martians\nallow in to !$martians\n");
	REQUIRE(rs.rules.size() == 2);
	const auto& m = rs.rules[0].match;
	CHECK(m.src4 == ranges<uint32_t>{{0, ip4(0, 255, 255, 255)}, {ip4(127, 0, 0, 0), ip4(127, 255, 255, 255)},
	                                 {ip4(224, 0, 0, 0), 0xffffffffu}});
	CHECK(m.src6 == ranges<u128>{{0, 1}, {u128(0xff) << 120, ~u128(0)}});
	// Its complement: every other address, 198.18.0.0/15 among them.
	CHECK(contains(rs.rules[1].match.dst4, ip4(198, 18, 1, 10)));
	CHECK_FALSE(contains(rs.rules[1].match.dst4, ip4(127, 0, 0, 1)));
	rs = parse_ok("set martians = { 198.18.9.9 }\ndrop in from $martians\n");
	CHECK(rs.rules[0].match.src4 == ranges<uint32_t>{{ip4(198, 18, 9, 9), ip4(198, 18, 9, 9)}});
}

TEST_CASE("a v4-only source with any destination applies to IPv4 only", "[rules][parse]")
{
	const rule r = parse_one("allow from 198.18.0.0/15");
	CHECK(r.match.applies_to_ipv4());
	CHECK_FALSE(r.match.applies_to_ipv6());
	CHECK(r.match.dst6 == all6);  // present but unused: src6 is empty
}

TEST_CASE("negation is the complement over both families", "[rules][parse]")
{
	const ranges<uint32_t> not_bench{{0, ip4(198, 17, 255, 255)}, {ip4(198, 20, 0, 0), 0xFFFFFFFF}};
	const rule a = parse_one("drop from !198.18.0.0/15");
	CHECK(a.match.src4 == not_bench);
	CHECK(a.match.src6 == all6);
	const rule b = parse_one("drop from !{ 198.18.0.0/16, 198.19.0.0/16 }");
	CHECK(b.match.src4 == not_bench);
	const rule c = parse_one("drop inet from !198.18.0.0/15");  // inet limits it to IPv4
	CHECK(c.match.src4 == not_bench);
	CHECK(c.match.src6.empty());
	const rule d = parse_one("drop from { !198.18.0.0/15, 198.18.0.1 }");  // union of items
	CHECK(d.match.src4 == ranges<uint32_t>{{0, ip4(198, 17, 255, 255)}, {ip4(198, 18, 0, 1), ip4(198, 18, 0, 1)},
	                                        {ip4(198, 20, 0, 0), 0xFFFFFFFF}});
	const rule e = parse_one("drop inet6 to !2001:2::/48");
	CHECK(e.match.dst6 == ranges<u128>{{0, net_2001_2 - 1}, {net_2001_2 + (u128(1) << 80), ~u128(0)}});
	CHECK(e.match.dst4.empty());
}

TEST_CASE("ports: numbers, names, ranges, lists, classes, negation, sets", "[rules][parse]")
{
	CHECK(parse_one("allow tcp to any port ssh").match.dport == ranges<uint16_t>{{22, 22}});
	CHECK(parse_one("allow tcp to any port { http, https, 8000-8080 }").match.dport ==
	      ranges<uint16_t>{{80, 80}, {443, 443}, {8000, 8080}});
	CHECK(parse_one("allow udp to any port { dns domain 53 }").match.dport == ranges<uint16_t>{{53, 53}});
	CHECK(parse_one("allow tcp to any port !22").match.dport == ranges<uint16_t>{{0, 21}, {23, 65535}});
	CHECK(parse_one("allow tcp to any port well-known").match.dport == ranges<uint16_t>{{0, 1023}});
	CHECK(parse_one("allow tcp to any port registered").match.dport == ranges<uint16_t>{{1024, 49151}});
	CHECK(parse_one("allow tcp from any port dynamic").match.sport == ranges<uint16_t>{{49152, 65535}});
	CHECK(parse_one("allow tcp to any port ftp-data").match.dport == ranges<uint16_t>{{20, 20}});
	CHECK(parse_one("allow tcp to any port ftp-data-ssh").match.dport == ranges<uint16_t>{{20, 22}});
	CHECK(parse_one("allow tcp to any port 0-65535").match.dport == all_ports);
	const auto rs = parse_ok("ports web = { http, https }\nports more = { $web, 8080 }\nallow tcp to any port $more");
	CHECK(rs.rules[0].match.dport == ranges<uint16_t>{{80, 80}, {443, 443}, {8080, 8080}});
	CHECK(parse_one("allow proto { tcp, udp } to any port 53").match.proto == ranges<uint8_t>{{6, 6}, {17, 17}});
	CHECK(parse_one("allow proto 17 to any port 53").match.proto == ranges<uint8_t>{{17, 17}});
}

TEST_CASE("service names come from the built-in table, then the services file", "[rules][parse]")
{
	temp_dir dir;
	parse_options o;
	o.services_file = dir.write("services", "# comment\nmyproto\t4444/tcp  alias-name # x\nssh 2222/tcp\n");
	auto rs = parse_ok("allow tcp to any port { myproto, alias-name, ssh }", o);
	CHECK(rs.rules[0].match.dport == ranges<uint16_t>{{22, 22}, {4444, 4444}});  // built-in ssh wins
	o.services_file = (dir.path / "missing").string();
	CHECK(parse_ok("allow tcp to any port ssh", o).rules.size() == 1);
}

TEST_CASE("protocols, ICMP types and codes, TCP flags", "[rules][parse]")
{
	CHECK(parse_one("allow proto gre").match.proto == ranges<uint8_t>{{47, 47}});
	CHECK(parse_one("allow proto 255").match.proto == ranges<uint8_t>{{255, 255}});
	CHECK(parse_one("allow proto any").match.proto == all_protos);

	const rule echo = parse_one("allow in icmp icmp-type echo-request code 0");
	CHECK(echo.match.proto == ranges<uint8_t>{{1, 1}});
	CHECK(echo.match.sport == ranges<uint16_t>{{8, 8}});
	CHECK(echo.match.dport == ranges<uint16_t>{{0, 0}});
	CHECK(echo.match.applies_to_ipv4());
	CHECK_FALSE(echo.match.applies_to_ipv6());  // ICMP is IPv4's

	const rule echo6 = parse_one("allow ipv6-icmp icmp-type { echo-request, packet-too-big, 135 }");
	CHECK(echo6.match.proto == ranges<uint8_t>{{58, 58}});
	CHECK(echo6.match.sport == ranges<uint16_t>{{2, 2}, {128, 128}, {135, 135}});
	CHECK(echo6.match.dport == all_ports);
	CHECK(echo6.match.applies_to_ipv6());
	CHECK_FALSE(echo6.match.applies_to_ipv4());

	const rule syn = parse_one("allow tcp to any port 22 flags S/SA");
	CHECK(syn.match.tcp_flags_value == 0x02);
	CHECK(syn.match.tcp_flags_mask == 0x12);
	const rule s = parse_one("allow tcp flags S");
	CHECK(s.match.tcp_flags_value == 0x02);
	CHECK(s.match.tcp_flags_mask == 0x02);
	CHECK(parse_one("allow tcp flags any").match.tcp_flags_mask == 0);
}

TEST_CASE("defaults, counters, comments, multi-line lists", "[rules][parse]")
{
	const auto rs = parse_ok("# header\n"
	                         "\n"
	                         "default in reject   # trailing comment\n"
	                         "default out drop\n"
	                         "set multi = {\n"
	                         "\t198.18.0.1,   # first\n"
	                         "\t198.18.0.3\n"
	                         "}\n"
	                         "allow in to $multi counter first\n"
	                         "drop\n");
	CHECK(rs.default_in == action::reject);
	CHECK(rs.default_out == action::drop);
	REQUIRE(rs.rules.size() == 2);
	CHECK(rs.rules[0].counter == "first");
	CHECK(rs.rules[1].counter == "rule2");
	CHECK(rs.rules[0].loc.line == 9);
	CHECK(rs.rules[1].loc.line == 10);
	CHECK(rs.rules[0].match.dst4 ==
	      ranges<uint32_t>{{ip4(198, 18, 0, 1), ip4(198, 18, 0, 1)}, {ip4(198, 18, 0, 3), ip4(198, 18, 0, 3)}});
	CHECK(rules_for(rs, direction::in) == std::vector<uint32_t>{0, 1});
	CHECK(parse_ok("").default_in == action::drop);
	CHECK(parse_ok("").default_out == action::allow);
}

TEST_CASE("rules_for selects by direction, in order", "[rules][parse]")
{
	const auto rs = parse_ok("allow in\nallow out\nallow\ndrop in out\n");
	CHECK(rules_for(rs, direction::in) == std::vector<uint32_t>{0, 2, 3});
	CHECK(rules_for(rs, direction::out) == std::vector<uint32_t>{1, 2, 3});
}

TEST_CASE("first match wins in file order", "[rules][parse]")
{
	const auto rs = parse_ok("drop in tcp to 198.18.1.0/24 port 22\n"
	                         "allow in tcp to any port 22\n"
	                         "reject in tcp\n");
	std::vector<classify::rule_entry> entries;
	for (uint32_t i : rules_for(rs, direction::in))
		entries.push_back({i, &rs.rules[i].match});
	auto b = classify::build(classify::backend::linear, entries);
	REQUIRE(b.classifier);
	const classify::key_v4 keys[] = {
		{ip4(198, 19, 0, 1), ip4(198, 18, 1, 5), 40000, 22, 6, 2, 0, 0},
		{ip4(198, 19, 0, 1), ip4(198, 18, 2, 5), 40000, 22, 6, 2, 0, 0},
		{ip4(198, 19, 0, 1), ip4(198, 18, 2, 5), 40000, 80, 6, 2, 0, 0},
		{ip4(198, 19, 0, 1), ip4(198, 18, 2, 5), 40000, 80, 17, 0, 0, 0},
	};
	uint32_t results[4];
	b.classifier->classify(keys, 4, results);
	CHECK(results[0] == 0);
	CHECK(results[1] == 1);
	CHECK(results[2] == 2);
	CHECK(results[3] == classify::no_match);
}

TEST_CASE("includes are inlined at the include point, relative to the including file", "[rules][include]")
{
	temp_dir dir;
	dir.write("sub/inner.rules", "set inner = 198.18.5.0/24\ndrop in from $inner\n");
	dir.write("sub/mid.rules", "include \"inner.rules\"\nallow in tcp\n");
	const auto top = dir.write("top.rules", "drop in udp\ninclude \"sub/mid.rules\"\nallow in to $inner\n");
	auto r = parse_file(top, no_services());
	for (const auto& d : r.errors)
		UNSCOPED_INFO(format(d));
	REQUIRE(r.rules);
	const auto& rs = *r.rules;
	REQUIRE(rs.rules.size() == 4);
	CHECK(rs.rules[0].text == "drop in udp");
	CHECK(rs.rules[1].text == "drop in from $inner");
	CHECK(rs.rules[1].loc.file == (dir.path / "sub/inner.rules").string());
	CHECK(rs.rules[1].loc.line == 2);
	CHECK(rs.rules[2].text == "allow in tcp");
	CHECK(rs.rules[3].text == "allow in to $inner");  // sets from includes are visible afterwards
	CHECK(rs.files.size() == 3);
}

TEST_CASE("include errors: missing file, cycle, depth", "[rules][include][errors]")
{
	temp_dir dir;
	const auto missing = dir.write("m.rules", "allow\ninclude \"nope.rules\"\n");
	auto r = parse_file(missing, no_services());
	REQUIRE(r.errors.size() == 1);
	CHECK(r.errors[0].loc.file == missing);
	CHECK(r.errors[0].loc.line == 2);
	CHECK(r.errors[0].loc.column == 9);
	CHECK_THAT(r.errors[0].message, Catch::Contains("cannot read include file 'nope.rules'"));

	dir.write("a.rules", "include \"b.rules\"\n");
	const auto b = dir.write("b.rules", "allow\ninclude \"a.rules\"\n");
	r = parse_file((dir.path / "a.rules").string(), no_services());
	REQUIRE(r.errors.size() == 1);
	CHECK(r.errors[0].loc.file == b);
	CHECK(r.errors[0].loc.line == 2);
	CHECK(r.errors[0].loc.column == 9);
	CHECK_THAT(r.errors[0].message, Catch::Contains("include cycle: a.rules -> b.rules -> a.rules"));

	const auto self = dir.write("self.rules", "include \"self.rules\"\n");
	r = parse_file(self, no_services());
	REQUIRE(r.errors.size() == 1);
	CHECK_THAT(r.errors[0].message, Catch::Contains("include cycle"));

	dir.write("d1.rules", "include \"d2.rules\"\n");
	dir.write("d2.rules", "include \"d3.rules\"\n");
	const auto d3 = dir.write("d3.rules", "allow\n");
	parse_options o = no_services();
	o.max_include_depth = 1;
	r = parse_file((dir.path / "d1.rules").string(), o);
	REQUIRE(r.errors.size() == 1);
	CHECK(r.errors[0].loc.file == (dir.path / "d2.rules").string());
	CHECK(r.errors[0].loc.line == 1);
	CHECK(r.errors[0].loc.column == 9);
	CHECK_THAT(r.errors[0].message, Catch::Contains("nested too deep"));
	o.max_include_depth = 2;
	CHECK(parse_file((dir.path / "d1.rules").string(), o).rules);

	// Depth 0: a self-contained text (the daemon's etcd rule sets) may not include at all.
	o.max_include_depth = 0;
	r = parse_string("allow in tcp to any port 22\ninclude \"d3.rules\"\n", "etcd://h:2379/k@7", o);
	REQUIRE(r.errors.size() == 1);
	CHECK(r.errors[0].loc.file == "etcd://h:2379/k@7");
	CHECK(r.errors[0].loc.line == 2);
	CHECK(r.errors[0].loc.column == 9);
	CHECK_THAT(r.errors[0].message, Catch::Contains("include is not allowed here"));
}

TEST_CASE("limits: file size and rule count", "[rules][errors]")
{
	parse_options o = no_services();
	o.max_file_bytes = 10;
	auto r = parse_string("allow in tcp to any port 22\n", "big.rules", o);
	REQUIRE(r.errors.size() == 1);
	CHECK(r.errors[0].loc.file == "big.rules");
	CHECK(r.errors[0].loc.line == 0);
	CHECK_THAT(r.errors[0].message, Catch::Contains("more than the limit of 10"));
	CHECK(format(r.errors[0]).rfind("big.rules: error: file is", 0) == 0);

	temp_dir dir;
	const auto f = dir.write("f.rules", "include \"big.rules\"\n");
	dir.write("big.rules", "allow in tcp to any port 22\n");
	o.max_file_bytes = 25;
	r = parse_file(f, o);
	REQUIRE(r.errors.size() == 1);
	CHECK(r.errors[0].loc.line == 1);
	CHECK(r.errors[0].loc.column == 9);
	CHECK_THAT(r.errors[0].message, Catch::Contains("include file 'big.rules' is 28 bytes"));

	o = no_services();
	o.max_rules = 2;
	r = parse_string("allow\nallow\n\nallow\nallow\n", "t.rules", o);
	REQUIRE(r.errors.size() == 1);
	CHECK(r.errors[0].loc.line == 4);
	CHECK(r.errors[0].loc.column == 1);
	CHECK_THAT(r.errors[0].message, Catch::Contains("too many rules (the limit is 2)"));

	r = parse_file("/nonexistent/portcullis.rules", o);
	REQUIRE(r.errors.size() == 1);
	CHECK_THAT(format(r.errors[0]), Catch::StartsWith("/nonexistent/portcullis.rules: error: cannot read file"));
}

TEST_CASE("every shipped rule set parses", "[rules][examples]")
{
	const std::filesystem::path dir = std::filesystem::path(PORTCULLIS_SOURCE_ROOT) / "rules";
	size_t files = 0;
	for (const auto& e : std::filesystem::directory_iterator(dir)) {
		if (e.path().extension() != ".rules")
			continue;
		++files;
		INFO(e.path().string());
		auto r = parse_file(e.path().string(), no_services());
		for (const auto& d : r.errors)
			UNSCOPED_INFO(format(d));
		CHECK(r.errors.empty());
		REQUIRE(r.rules);
		CHECK_FALSE(r.rules->rules.empty());
	}
	CHECK(files >= 4);
	auto gw = parse_file((dir / "gateway.rules").string(), no_services());
	REQUIRE(gw.rules);
	CHECK(gw.rules->default_in == action::drop);
	CHECK(gw.rules->default_out == action::allow);
}

// A cancel flag set before the call, or by another thread while a large set is parsed, abandons the parse:
// no rules, one diagnostic, abandoned set. (The outcome is asserted, not how long it took.)
TEST_CASE("a set cancel flag abandons the parse", "[parse][cancel]")
{
	std::string big = "default in drop\n";
	for (int i = 0; i < 200000; ++i)
		big += "drop in tcp from 10." + std::to_string(i / 65536 % 256) + "." + std::to_string(i / 256 % 256) + "." +
		       std::to_string(i % 256) + " to 198.18.1.1 port " + std::to_string(1 + i % 65000) + "\n";
	std::atomic<bool> cancel{false};
	parse_options o = no_services();
	o.cancel = &cancel;
	SECTION("not set: parses as usual")
	{
		auto r = parse_string("allow in tcp to 198.18.1.1 port 22\n", "t.rules", o);
		CHECK(!r.abandoned);
		CHECK(r.rules.has_value());
	}
	SECTION("not set: a large set parses whole, past many cancel checks")
	{
		auto r = parse_string(big, "t.rules", o);
		CHECK(!r.abandoned);
		REQUIRE(r.rules.has_value());
		CHECK(r.rules->rules.size() == 200000);
	}
	SECTION("set before the call")
	{
		cancel = true;
		auto r = parse_string(big, "t.rules", o);
		CHECK(r.abandoned);
		CHECK(!r.rules.has_value());
		REQUIRE(r.errors.size() == 1);
		CHECK(r.errors[0].message.find("abandoned") != std::string::npos);
	}
	SECTION("set by another thread while parsing")
	{
		std::atomic<bool> started{false};
		std::thread setter([&] {
			while (!started.load())
				std::this_thread::yield();
			std::this_thread::sleep_for(std::chrono::milliseconds(5));
			cancel = true;
		});
		started = true;
		auto r = parse_string(big, "t.rules", o);
		setter.join();
		CHECK(r.abandoned);
		CHECK(!r.rules.has_value());
	}
}
