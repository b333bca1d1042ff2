// Every mistake is reported at file:line:column of the offending token with what was expected.
#include "helpers.h"

using namespace portcullis::rules;
using namespace portcullis::rules::test;

namespace {

struct error_case {
	const char* text;
	uint32_t line;
	uint32_t column;
	const char* message;  // substring
};

// Columns are 1-based byte offsets of the token the message is about.
const error_case cases[] = {
	{"allow in tcp to any port htp", 1, 26,
	 "unknown service 'htp' (expected a port number 0-65535, a range, a service name or a class)"},
	{"allow in tcp to any port 70000", 1, 26, "port 70000 out of range (expected 0-65535)"},
	{"allow in tcp to any port { 22, 70000 }", 1, 32, "port 70000 out of range"},
	{"allow in tcp to any port 2000-1000", 1, 26, "port range 2000-1000 is reversed"},
	{"allow in tcp to any port 1-99999", 1, 26, "port range 1-99999 out of range"},
	{"allow from 198.18.0.0/33", 1, 12, "prefix length /33 is too long for IPv4 (expected /0 to /32)"},
	{"allow from 2001:2::/129", 1, 12, "prefix length /129 is too long for IPv6"},
	{"allow from 198.18.0.0/x", 1, 12, "invalid prefix length"},
	{"allow from 198.18.0.1/24", 1, 12, "host bits set in '198.18.0.1/24' (expected the network address 198.18.0.0/24"},
	{"allow from 2001:2::1/48", 1, 12, "host bits set in '2001:2::1/48'"},
	{"allow from 198.18.0.256", 1, 12, "invalid IPv4 address '198.18.0.256'"},
	{"allow from 2001:2::g1", 1, 12, "invalid IPv6 address"},
	{"allow from example", 1, 12, "expected an address: any, an IPv4 or IPv6 address or CIDR, $set or { list }, got 'example'"},
	{"set web = 198.18.0.1\nallow from web", 2, 12, "(did you mean $web?)"},
	{"allow from $nope", 1, 12, "unknown set '$nope'"},
	{"allow from $", 1, 12, "expected a set name after '$'"},
	{"set a = 198.18.0.1\nset a = 198.18.0.2", 2, 5, "duplicate set 'a' (first defined at t.rules:1:5)"},
	{"ports a = 22\nset a = 198.18.0.2", 2, 5, "duplicate set 'a'"},
	{"set = 198.18.0.1", 1, 5, "expected an address set name after 'set'"},
	{"set a 198.18.0.1", 1, 7, "expected '=' after the set name"},
	{"set a = 198.18.0.1 198.18.0.2", 1, 20, "unexpected '198.18.0.2' (expected end of line after the set's value)"},
	{"ports p = { 22 }\nallow from $p", 2, 12, "'$p' is a port set (expected an address set)"},
	{"set s = 198.18.0.1\nallow tcp to any port $s", 2, 23, "'$s' is an address set (expected a port set)"},
	{"permit in tcp", 1, 1, "unknown keyword 'permit' (expected allow, drop, reject, default, set, ports or include); write 'allow'"},
	{"frobnicate", 1, 1, "unknown keyword 'frobnicate'"},
	{"in tcp to any port 22", 1, 1, "missing action: expected allow, drop or reject before 'in'"},
	{"tcp to any port 22", 1, 1, "missing action"},
	{"{ allow }", 1, 1, "expected a statement"},
	{"allow in to any port 22", 1, 17, "'port' needs protocol tcp or udp (this rule's protocol is any"},
	{"allow in icmp to any port 22", 1, 22, "'port' needs protocol tcp or udp (this rule's protocol is icmp"},
	{"allow proto { tcp, gre } to any port 22", 1, 33, "'port' needs protocol tcp or udp"},
	{"allow in tcp port 22", 1, 14, "unexpected 'port' here"},
	{"allow in tcp to any from any", 1, 21, "unexpected 'from' here"},
	{"allow in tcp to any port 22 foo", 1, 29, "unexpected 'foo' (expected flags, icmp-type, code, counter, add-to, limit, max-conn, during or end of line)"},
	{"allow in tcp froom any", 1, 14, "unexpected 'froom' (expected from, to, all, flags"},
	{"allow in tcp icmp-type echo-request", 1, 14, "'icmp-type' needs protocol icmp or icmp6 (this rule's protocol is tcp)"},
	{"allow in icmp icmp-type packet-too-big", 1, 25, "unknown ICMP type 'packet-too-big'"},
	{"allow in icmp icmp-type 256", 1, 25, "unknown ICMP type '256'"},
	{"allow in icmp icmp-type 8 code x", 1, 32, "invalid ICMP code 'x'"},
	{"allow in icmp icmp-type 8 icmp-type 0", 1, 27, "duplicate 'icmp-type' in one rule"},
	{"allow in udp flags S/SA", 1, 14, "'flags' needs protocol tcp (this rule's protocol is udp)"},
	{"allow in tcp flags S/A", 1, 20, "the value has flags outside the mask"},
	{"allow in tcp flags X/SA", 1, 20, "invalid TCP flags 'X/SA' (expected value/mask in letters FSRPAUEW"},
	{"allow in tcp flags", 1, 19, "expected TCP flags value/mask"},
	{"allow proto bogus", 1, 13, "unknown protocol 'bogus'"},
	{"allow proto 256", 1, 13, "unknown protocol '256'"},
	{"allow from 198.18.0.1 to 2001:2::1", 1, 1,
	 "rule can never match: source is IPv4 only, destination IPv6 only"},
	{"allow icmp from 2001:2::1", 1, 1, "rule can never match: source is IPv6 only, destination IPv4 and IPv6, protocol icmp is IPv4 only"},
	{"allow inet6 to 198.18.0.0/15", 1, 1, "'inet6' limits it to IPv6"},
	{"allow from !any", 1, 12, "address set '!any' is empty: the rule can never match"},
	{"allow tcp to any port !{ well-known, registered, dynamic }", 1, 23, "port set '!{ well-known, registered, dynamic }' is empty"},
	{"allow from { 198.18.0.1, 198.18.0.2", 1, 36, "missing '}' to close the list opened at line 1 column 12"},
	{"allow from", 1, 11, "expected an address, got end of line"},
	{"allow from !", 1, 13, "expected an address after '!', got end of line"},
	{"default in maybe", 1, 12, "expected an action (allow, drop or reject) after 'default in', got 'maybe'"},
	{"default sideways drop", 1, 9, "expected 'in' or 'out' after 'default', got 'sideways'"},
	{"default in drop\ndefault in allow", 2, 9, "duplicate 'default in' (first set at t.rules:1:9)"},
	{"default out drop now", 1, 18, "unexpected 'now' (expected end of line)"},
	{"allow counter a\nallow counter a", 2, 15, "duplicate counter 'a' (first used at t.rules:1:15)"},
	{"allow counter rule7", 1, 15, "counter name 'rule7' is reserved"},
	{"allow counter", 1, 14, "expected a counter name after 'counter'"},
	{"include", 1, 1, "expected a file name in quotes after 'include'"},
	{"include \"x.rules", 1, 9, "missing closing '\"'"},
	{"include \"x.rules\" now", 1, 19, "unexpected 'now'"},
	{"  \tallow in tcp to any port htp", 1, 29, "unknown service 'htp'"},
};

} // namespace

TEST_CASE("each mistake is reported at its token with what was expected", "[rules][errors]")
{
	for (const auto& c : cases) {
		INFO(c.text);
		const auto errors = parse_errors(c.text);
		for (const auto& d : errors)
			INFO(format(d));
		REQUIRE(errors.size() == 1);
		CHECK(errors[0].loc.file == "t.rules");
		CHECK(errors[0].loc.line == c.line);
		CHECK(errors[0].loc.column == c.column);
		CHECK_THAT(errors[0].message, Catch::Contains(c.message));
	}
}

TEST_CASE("several errors are reported at once, in order, and no rules come out", "[rules][errors]")
{
	const auto errors = parse_errors("default in drop\n"
	                                 "allow in tcp to any port htp\n"
	                                 "allow in tcp to 198.18.1.10 port 22\n"
	                                 "alow out\n"
	                                 "set broken = { 198.18.0.1/24 }\n"
	                                 "drop from $broken\n"  // no second error for the broken set
	                                 "drop in tcp from 198.18.0.0/33 to any port 2000-1000\n");
	REQUIRE(errors.size() == 4);
	CHECK(errors[0].loc.line == 2);
	CHECK(errors[1].loc.line == 4);
	CHECK(errors[1].loc.column == 1);
	CHECK(errors[2].loc.line == 5);
	CHECK(errors[2].loc.column == 16);
	CHECK(errors[3].loc.line == 7);
	CHECK(errors[3].loc.column == 18);  // the first mistake on a line is the one reported
	CHECK(format(errors[0]) ==
	      "t.rules:2:26: error: unknown service 'htp' (expected a port number 0-65535, a range, a service name or a class)");
}

TEST_CASE("an unclosed list does not hide the errors after it", "[rules][errors]")
{
	const auto errors = parse_errors("set a = { 198.18.0.1,\n"
	                                 "          198.18.0.2\n"
	                                 "allow in tcp to any port htp\n");
	REQUIRE(errors.size() == 2);
	CHECK_THAT(errors[0].message, Catch::Contains("missing '}'"));
	CHECK(errors[1].loc.line == 3);
	CHECK(errors[1].loc.column == 26);
}
