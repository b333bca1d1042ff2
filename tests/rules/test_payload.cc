// Payload conditions: content escapes, regex flags and Hyperscan validation, offset/depth, name
// patterns and their wildcard semantics, app bundles, and every error at its file:line:column.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "helpers.h"

using namespace portcullis;
using namespace portcullis::rules;
using namespace portcullis::rules::test;

namespace {

parse_options with_apps()
{
	parse_options o = no_services();
	o.apps_dir = std::string(PORTCULLIS_SOURCE_ROOT) + "/rules/apps";
	return o;
}

payload_pattern only_pattern(const rule& r)
{
	REQUIRE(r.payload.size() == 1);
	REQUIRE(r.payload[0].any_of.size() == 1);
	return r.payload[0].any_of[0];
}

struct error_case {
	const char* text;
	uint32_t line;
	uint32_t column;
	const char* message;  // substring
};

const error_case payload_errors[] = {
	{"drop content \"x\"", 1, 6, "'content' needs protocol tcp or udp (this rule's protocol is any)"},
	{"drop icmp content \"x\"", 1, 11, "'content' needs protocol tcp or udp (this rule's protocol is icmp)"},
	{"drop udp sni \"a.com\"", 1, 10, "'sni' needs protocol tcp (this rule's protocol is udp)"},
	{"drop tcp http-host \"a.com\" dns-query \"b.com\"", 1, 28, "'dns-query' needs protocol udp"},
	{"drop tcp content", 1, 10, "expected a quoted string after 'content', got end of line"},
	{"drop tcp content abc", 1, 18, "expected a quoted string after 'content', got 'abc'"},
	{"drop tcp content \"abc", 1, 18, "missing closing '\"' after the content pattern"},
	{"drop tcp content \"\"", 1, 18, "empty content can never be searched for"},
	{"drop tcp content \"ab\\q\"", 1, 21, "invalid escape in content (expected \\xNN"},
	{"drop tcp content \"ab\\x4\"", 1, 21, "invalid escape in content"},
	{"drop tcp nocase", 1, 10, "'nocase' must follow a content or regex condition"},
	{"drop tcp depth 4 content \"a\"", 1, 10, "'depth' must follow a content or regex condition"},
	{"drop tcp content \"abcdef\" depth 4", 1, 33, "depth 4 is shorter than the content (6 bytes): it can never match"},
	{"drop tcp content \"a\" depth 0", 1, 28, "depth 0 can never match"},
	{"drop tcp content \"a\" offset x", 1, 29, "invalid offset 'x' (expected a number 0-1048576)"},
	{"drop tcp content \"a\" offset 1 offset 2", 1, 31, "duplicate 'offset' for one content"},
	{"drop tcp content \"a\" nocase nocase", 1, 29, "duplicate 'nocase' for one content"},
	{"drop tcp regex \"/a/\" nocase", 1, 22, "'nocase' applies to content only"},
	{"drop tcp regex \"abc\"", 1, 16, "expected a regex written as \"/expression/flags\""},
	{"drop tcp regex \"/abc/x\"", 1, 22, "unknown regex flag 'x' (expected i, s or m)"},
	{"drop tcp regex \"//\"", 1, 16, "empty regex can never match"},
	{"drop tcp regex \"/(ab/\"", 1, 16, "regex \"/(ab/\" is not supported by Hyperscan: Missing close parenthesis"},
	{"drop tcp regex \"/(a)\\1/\"", 1, 16, "is not supported by Hyperscan: "},
	{"drop tcp regex \"/a*/\"", 1, 16, "is not supported by Hyperscan: "},
	{"drop tcp sni \"*example.com\"", 1, 14, "invalid name \"*example.com\""},
	{"drop tcp sni \"a..com\"", 1, 14, "invalid name"},
	{"drop tcp sni \"a.*.com\"", 1, 14, "invalid name"},
	{"drop tcp sni \"\"", 1, 14, "empty name"},
	{"drop tcp app", 1, 10, "expected an application name after 'app'"},
	{"drop tcp app nosuchapp", 1, 14, "unknown app 'nosuchapp' (no readable bundle file"},
	{"drop tcp content \"a\" content \"b\" content \"c\" content \"d\" content \"e\" content \"f\" content \"g\" "
	 "content \"h\" content \"i\"", 1, 106, "too many payload conditions in one rule (the limit is 8)"},
	{"drop tcp to any port 80 content \"a\" foo", 1, 37,
	 "unexpected 'foo' (expected flags, icmp-type, code, counter, add-to, limit, max-conn, during or end of line); payload conditions are"},
};

} // namespace

TEST_CASE("content: escapes, nocase, offset and depth", "[payload]")
{
	const rule r = parse_one("drop in tcp to any port 80 content \"GET \\x2Fadmin\\\"\\\\\" nocase offset 2 depth 40 counter c");
	const auto p = only_pattern(r);
	CHECK(p.kind == payload_kind::content);
	CHECK(p.value == "GET /admin\"\\");
	CHECK(p.nocase);
	CHECK(p.offset == 2);
	CHECK(p.depth == 40);
	CHECK(p.loc.line == 1);
	CHECK(p.loc.column == 36);
	CHECK(r.counter == "c");
	CHECK(r.match.dport == std::vector<value_range<uint16_t>>{{80, 80}});
	// The 5-tuple part is what it would be without the payload part.
	CHECK(r.match.proto == parse_one("drop in tcp to any port 80").match.proto);
}

TEST_CASE("content: binary bytes", "[payload]")
{
	const auto p = only_pattern(parse_one("drop udp content \"\\x00\\xff\\x13ab\""));
	CHECK(p.value == std::string("\x00\xff\x13" "ab", 5));
}

TEST_CASE("regex: flags and escapes pass through to Hyperscan", "[payload]")
{
	const auto p = only_pattern(parse_one("drop tcp regex \"/^user \\\"[a-z]+\\x20\\/x/ism\""));
	CHECK(p.kind == payload_kind::regex);
	CHECK(p.value == "^user \"[a-z]+\\x20\\/x");
	CHECK(p.regex_flags == (regex_caseless | regex_dotall | regex_multiline));
}

TEST_CASE("several conditions on one rule, modifiers apply to the preceding pattern", "[payload]")
{
	const rule r = parse_one("drop tcp content \"a\" depth 10 regex \"/b+c/\" offset 3 http-host \"*.Example.COM\"");
	REQUIRE(r.payload.size() == 3);
	CHECK(r.payload[0].any_of[0].depth == 10);
	CHECK(r.payload[0].any_of[0].offset == 0);
	CHECK(r.payload[1].any_of[0].offset == 3);
	CHECK(r.payload[1].any_of[0].depth == 0);
	CHECK(r.payload[2].any_of[0].kind == payload_kind::http_host);
	CHECK(r.payload[2].any_of[0].value == "*.example.com");
}

TEST_CASE("domain conditions", "[payload]")
{
	CHECK(only_pattern(parse_one("drop tcp sni \"WWW.Example.com\"")).value == "www.example.com");
	CHECK(only_pattern(parse_one("drop udp dns-query \"*.ads.example\"")).kind == payload_kind::dns_query);
	CHECK(only_pattern(parse_one("drop tcp http-host \"a_b-c.d\"")).kind == payload_kind::http_host);
}

TEST_CASE("wildcard semantics", "[payload]")
{
	CHECK(name_matches("*.example.com", "www.example.com"));
	CHECK(name_matches("*.example.com", "a.b.example.com"));
	CHECK(name_matches("*.example.com", "WWW.EXAMPLE.COM"));
	CHECK(name_matches("*.example.com", "www.example.com."));
	CHECK_FALSE(name_matches("*.example.com", "example.com"));
	CHECK_FALSE(name_matches("*.example.com", "badexample.com"));
	CHECK_FALSE(name_matches("*.example.com", "www.example.com.evil"));
	CHECK(name_matches("example.com", "Example.Com"));
	CHECK_FALSE(name_matches("example.com", "www.example.com"));
	CHECK_FALSE(name_matches("example.com", "example.co"));
}

TEST_CASE("app bundles expand to alternatives", "[payload]")
{
	const auto rs = parse_ok("drop tcp app bittorrent\ndrop udp app bittorrent\nallow tcp app ssh app tls\nallow tcp app http",
	                         with_apps());
	REQUIRE(rs.rules.size() == 4);
	REQUIRE(rs.rules[0].payload.size() == 1);
	CHECK(rs.rules[0].payload[0].app == "bittorrent");
	CHECK(rs.rules[0].payload[0].any_of.size() == 3);
	CHECK(rs.rules[0].payload[0].any_of[0].value == "\x13" "BitTorrent protocol");
	CHECK(rs.rules[0].payload[0].any_of[0].depth == 20);
	CHECK(rs.rules[0].payload[0].any_of[0].loc.file.find("bittorrent.rules") != std::string::npos);
	CHECK(rs.rules[2].payload.size() == 2);
	CHECK(has_payload_rules(rs));
	CHECK(payload_free_rules_for(rs, direction::in).empty());
	CHECK(rules_for(rs, direction::in).size() == 4);
}

TEST_CASE("app bundle errors are reported in the bundle file", "[payload]")
{
	const auto dir = std::filesystem::temp_directory_path() / ("portcullis-apps-" + std::to_string(::getpid()));
	std::filesystem::create_directories(dir);
	{
		std::ofstream(dir / "broken.rules") << "# comment\ncontent \"ok\"\nregex \"/(x/\"\nsni \"a.com\"\n";
		std::ofstream(dir / "empty.rules") << "# nothing\n";
	}
	parse_options o = no_services();
	o.apps_dir = dir.string();
	auto errs = parse_errors("drop tcp app broken\ndrop tcp app broken\ndrop tcp app empty", o);
	REQUIRE(errs.size() == 3);  // reported once, however often the bundle is used
	CHECK(errs[0].loc.file == (dir / "broken.rules").string());
	CHECK(errs[0].loc.line == 3);
	CHECK(errs[0].loc.column == 7);
	CHECK(errs[0].message.find("Missing close parenthesis") != std::string::npos);
	CHECK(errs[1].loc.line == 4);
	CHECK(errs[1].message.find("'sni' is not allowed in an app bundle") != std::string::npos);
	CHECK(errs[2].message.find("app bundle 'empty' has no patterns") != std::string::npos);
	std::filesystem::remove_all(dir);
}

TEST_CASE("the default apps directory is next to the top-level file", "[payload]")
{
	auto r = parse_file(std::string(PORTCULLIS_SOURCE_ROOT) + "/rules/gateway.rules", no_services());
	REQUIRE(r.errors.empty());
	auto o = no_services();
	auto t = parse_string("drop tcp app ssh", std::string(PORTCULLIS_SOURCE_ROOT) + "/rules/x.rules", o);
	CHECK(t.errors.empty());
}

TEST_CASE("payload limits", "[payload]")
{
	const std::string big(max_pattern_bytes + 1, 'a');
	auto errs = parse_errors("drop tcp content \"" + big + "\"");
	CHECK(errs[0].message.find("content is 1025 bytes, more than the limit of 1024") != std::string::npos);
	auto o = no_services();
	o.max_payload_patterns = 2;
	errs = parse_errors("drop tcp content \"a\"\ndrop tcp content \"b\"\ndrop tcp content \"c\"", o);
	CHECK(errs[0].loc.line == 3);
	CHECK(errs[0].message.find("too many payload patterns in the rule set (the limit is 2)") != std::string::npos);
}

TEST_CASE("payload errors name file:line:column", "[payload][errors]")
{
	for (const auto& c : payload_errors) {
		INFO(c.text);
		const auto errs = parse_errors(c.text, with_apps());
		REQUIRE(errs.size() >= 1);
		INFO(format(errs[0]));
		CHECK(errs[0].loc.line == c.line);
		CHECK(errs[0].loc.column == c.column);
		CHECK(errs[0].message.find(c.message) != std::string::npos);
	}
}
