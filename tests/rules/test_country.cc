// `set NAME = country { CC, ... } [from "CSV"]`: the CSV formats and their errors by line and column,
// the code list and its errors, and (when Debian's geoip-database is installed) sets walked out of the
// real GeoIP databases, checked against facts of its 2019 data by lookups alone.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "helpers.h"

namespace portcullis::rules::test {
namespace {

// Debian's databases, unless PORTCULLIS_GEOIP_DIR names others (or, set to a missing directory, shows
// that the GeoIP tests skip cleanly where the package is not installed).
const std::string geoip_dir = std::getenv("PORTCULLIS_GEOIP_DIR") ? std::getenv("PORTCULLIS_GEOIP_DIR") : "/usr/share/GeoIP";

parse_options geoip_options()
{
	parse_options o = no_services();
	o.geoip_dir = geoip_dir;
	return o;
}

// A directory of its own per test case, removed at the end.
struct temp_dir {
	std::filesystem::path path;
	temp_dir()
	{
		char tmpl[] = "/tmp/portcullis-country-XXXXXX";
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

// The formatted errors of a rule text that must fail.
std::vector<std::string> errors_of(const temp_dir& d, const std::string& text, parse_options o = no_services())
{
	auto r = parse_rules(d, text, o);
	REQUIRE_FALSE(r.rules);
	std::vector<std::string> out;
	for (const auto& e : r.errors)
		out.push_back(format(e));
	return out;
}

constexpr u128 ip6(uint16_t a, uint16_t b, uint16_t c = 0, uint16_t d = 0, uint16_t e = 0, uint16_t f = 0,
                   uint16_t g = 0, uint16_t h = 0)
{
	return u128(a) << 112 | u128(b) << 96 | u128(c) << 80 | u128(d) << 64 | u128(e) << 48 | u128(f) << 32 |
	       u128(g) << 16 | u128(h);
}

const address_set& set_named(const ruleset& rs, const std::string& name)
{
	const auto it = std::find_if(rs.sets.begin(), rs.sets.end(), [&](const address_set& s) { return s.name == name; });
	REQUIRE(it != rs.sets.end());
	return *it;
}

template <class T>
bool disjoint(const std::vector<value_range<T>>& a, const std::vector<value_range<T>>& b)
{
	for (size_t i = 0, j = 0; i < a.size() && j < b.size();) {
		if (a[i].hi < b[j].lo)
			++i;
		else if (b[j].hi < a[i].lo)
			++j;
		else
			return false;
	}
	return true;
}

template <class T>
std::vector<value_range<T>> united(std::vector<value_range<T>> a, const std::vector<value_range<T>>& b)
{
	a.insert(a.end(), b.begin(), b.end());
	normalize(a);
	return a;
}

uint64_t v4_addresses(const address_set& s)
{
	uint64_t n = 0;
	for (const auto& r : s.v4)
		n += uint64_t(r.hi) - r.lo + 1;
	return n;
}

bool have_geoip() { return std::filesystem::exists(geoip_dir + "/GeoIP.dat"); }

const std::string no_geoip = "SKIPPED: " + geoip_dir + "/GeoIP.dat is not installed (Debian package geoip-database): "
                             "the country sets from GeoIP are untested";

// Three countries in both line formats and both families, with comments, quotes, blanks and CRLF.
const char* const sample_csv =
	"# network,country\n"
	"198.18.0.0/24,DE\n"
	"198.18.1.0,198.18.1.255,FR   # a first,last,cc line\n"
	"198.18.2.0/24,US\r\n"
	"\n"
	"2001:2::/48,de\n"
	"2001:2:5::,2001:2:5::ffff,FR\n"
	"\"198.18.3.0\",\"198.18.3.127\",\"DE\"\n"
	"  198.18.4.7/24 , DE \n"
	"2001:2:2::/48,US\n";

} // namespace

TEST_CASE("country sets from a CSV hold the listed countries' lines, in both formats and both families")
{
	temp_dir d;
	const std::string csv = d.write("countries.csv", sample_csv);
	const ruleset rs = rules_ok(d, "set eu = country { DE, fr } from \"countries.csv\"\n"
	                               "set de = country de from \"countries.csv\"\n"
	                               "set us = country US from \"countries.csv\"\n"
	                               "drop in from $eu\ndrop in from $de\ndrop out to $us\n");
	REQUIRE(rs.sets.size() == 3);
	const auto& eu = set_named(rs, "eu");
	CHECK(eu.file == csv);
	CHECK(eu.entries == 6);
	// 198.18.0.0/24 (DE) and 198.18.1.0/24 (FR) are adjacent and merge; 198.18.4.7/24 is 198.18.4.0/24.
	CHECK(eu.v4 == std::vector<value_range<uint32_t>>{{ip4(198, 18, 0, 0), ip4(198, 18, 1, 255)},
	                                                  {ip4(198, 18, 3, 0), ip4(198, 18, 3, 127)},
	                                                  {ip4(198, 18, 4, 0), ip4(198, 18, 4, 255)}});
	CHECK(eu.v6 == std::vector<value_range<u128>>{{ip6(0x2001, 2), ip6(0x2001, 2, 0, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff)},
	                                              {ip6(0x2001, 2, 5), ip6(0x2001, 2, 5, 0, 0, 0, 0, 0xffff)}});
	const auto& de = set_named(rs, "de");
	CHECK(de.entries == 4);
	CHECK(contains(de.v4, ip4(198, 18, 3, 127)));
	CHECK_FALSE(contains(de.v4, ip4(198, 18, 1, 0)));
	CHECK_FALSE(contains(de.v4, ip4(198, 18, 3, 128)));
	const auto& us = set_named(rs, "us");
	CHECK(us.entries == 2);
	CHECK(us.v4 == std::vector<value_range<uint32_t>>{{ip4(198, 18, 2, 0), ip4(198, 18, 2, 255)}});
	CHECK(contains(us.v6, ip6(0x2001, 2, 2, 0, 0, 0, 0, 1)));
	CHECK(disjoint(us.v4, eu.v4));
	// Read like a set file: listed with the rule set's files, tested by a key bit.
	CHECK(std::count(rs.files.begin(), rs.files.end(), csv) == 3);
	REQUIRE(rs.set_tests.size() == 3);
	CHECK(rs.rules[0].match.set_bits_mask == 1);
	CHECK(set_bits_for(rs, ip4(198, 18, 1, 7), ip4(198, 18, 2, 1)) == (1 | 4));
	CHECK(set_bits_for(rs, ip4(198, 18, 3, 7), ip4(198, 18, 9, 9)) == (1 | 2));
	CHECK(set_bits_for(rs, ip6(0x2001, 2, 5, 0, 0, 0, 0, 5), ip6(0x2001, 2, 2)) == (1 | 4));
	CHECK(set_bits_for(rs, ip4(198, 18, 9, 9), ip4(198, 18, 9, 9)) == 0);
}

TEST_CASE("a country list takes codes in any case, commas optional, across lines")
{
	temp_dir d;
	d.write("c.csv", sample_csv);
	const ruleset rs = rules_ok(d, "set a = country {\n  de\n  Fr, US\n} from \"c.csv\"\ndrop in from $a\n");
	CHECK(rs.sets[0].entries == 8);
	// XK (Kosovo) is not in libgeoip's table but the CSV exports use it.
	d.write("k.csv", "198.18.5.0/24,XK\n");
	CHECK(rules_ok(d, "set k = country XK from \"k.csv\"\ndrop in from $k\n").sets[0].v4.size() == 1);
}

TEST_CASE("CSV errors name the CSV, line and column, and the rules are refused")
{
	temp_dir d;
	const std::string csv = d.write("bad.csv",
	                                "198.18.0.0/24,DE\n"                  // 1 fine
	                                "nonsense,DE\n"                       // 2
	                                "198.18.0.0/33,DE\n"                  // 3
	                                "198.18.1.0,198.18.0.255,DE\n"        // 4
	                                "198.18.1.0,2001:2::1,DE\n"           // 5
	                                "198.18.1.0/24,Germany\n"             // 6
	                                "  198.18.1.0/24\n"                   // 7
	                                "1.0.0.0,1.0.0.255,AU,Australia\n"    // 8
	                                "198.18.1.0, x,DE\n"                  // 9
	                                "2001:2::zz/48,DE\n"                  // 10
	                                "# 198.18.7.0/24,DE,,,\n");           // 11 a comment
	const auto e = errors_of(d, "set eu = country { DE FR } from \"bad.csv\"\ndrop in from $eu\n");
	const std::string p = csv + ":";
	const std::string s = ": error: set 'eu': ";
	REQUIRE(e.size() == 9);  // and no "unknown set" for the use, no "no address of FR" on top
	CHECK(e[0] == p + "2:1" + s + "expected an IPv4 or IPv6 address or CIDR, got 'nonsense'");
	CHECK(e[1] == p + "3:1" + s + "invalid prefix length in '198.18.0.0/33' (expected /0 to /32)");
	CHECK(e[2] == p + "4:12" + s + "the range ends before it starts ('198.18.0.255' < '198.18.1.0')");
	CHECK(e[3] == p + "5:12" + s + "the range starts with an IPv4 address and ends with an IPv6 address");
	CHECK(e[4] == p + "6:15" + s + "expected a two-letter country code, got 'Germany'");
	CHECK(e[5] == p + "7:3" + s +
	      "expected a ',' and a country code after '198.18.1.0/24' (lines are CIDR,CC or FIRST,LAST,CC)");
	CHECK(e[6] == p + "8:22" + s + "unexpected fourth field 'Australia' (lines are CIDR,CC or FIRST,LAST,CC)");
	CHECK(e[7] == p + "9:13" + s + "expected the last IPv4 or IPv6 address of a range, got 'x'");
	CHECK(e[8] == p + "10:1" + s + "expected an IPv4 or IPv6 address or CIDR, got '2001:2::zz/48'");
}

TEST_CASE("a CSV with many bad lines reports the first twenty and counts the rest")
{
	temp_dir d;
	std::string text;
	for (int i = 0; i < 30; ++i)
		text += "junk" + std::to_string(i) + ",DE\n";
	d.write("c.csv", text);
	const auto r = parse_rules(d, "set c = country DE from \"c.csv\"\n");
	REQUIRE(r.errors.size() == 21);
	CHECK(r.errors[20].message == "set 'c': 10 more error(s) in this file");
}

TEST_CASE("country list mistakes are errors at the rule file's position")
{
	temp_dir d;
	d.write("c.csv", sample_csv);
	const std::string m = (d.path / "main.rules").string() + ":";
	auto first = [&](const std::string& text, parse_options o = no_services()) { return errors_of(d, text, o).at(0); };
	const std::string iso = "(expected an ISO 3166-1 alpha-2 code, such as DE for Germany or FR for France)";
	CHECK(first("set x = country { DE, XY } from \"c.csv\"\n") == m + "1:23: error: unknown country code 'XY' " + iso);
	CHECK(first("set x = country zz\n") == m + "1:17: error: unknown country code 'zz' " + iso);
	CHECK(first("set x = country DEU\n") ==
	      m + "1:17: error: expected a two-letter country code (ISO 3166-1 alpha-2, such as DE or FR), got 'DEU'");
	CHECK(first("set x = country \"DE\"\n").starts_with(m + "1:17: error: expected a two-letter country code"));
	CHECK(first("set x = country { DE, $y }\n").starts_with(m + "1:23: error: expected a two-letter country code"));
	CHECK(first("set x = country EU\n").starts_with(m + "1:17: error: 'EU' is not a country: GeoIP uses it for "
	                                                    "networks known only to be somewhere in Europe"));
	CHECK(first("set x = country { A1 }\n").starts_with(m + "1:19: error: 'A1' is not a country"));
	CHECK(first("set x = country { }\n") == m + "1:17: error: empty list of countries: the set would match nothing");
	CHECK(first("set x = country { , }\n") == m + "1:17: error: empty list of countries: the set would match nothing");
	CHECK(first("set x = country\n") ==
	      m + "1:9: error: expected a country code or a { list } of them after 'country', got end of line");
	CHECK(first("set x = country { DE\n").starts_with(m + "2:1: error: missing '}' to close the list opened at line 1 column 17"));
	CHECK(first("set x = country DE from\n") ==
	      m + "1:20: error: expected a CSV file name in quotes after 'from', got end of line");
	CHECK(first("set x = country DE from c.csv\n") ==
	      m + "1:25: error: expected a CSV file name in quotes after 'from', got 'c.csv'");
	CHECK(first("set x = country DE from \"c.csv\n") == m + "1:25: error: missing closing '\"' after the file name");
	CHECK(first("set x = country DE to \"c.csv\"\n") ==
	      m + "1:20: error: unexpected 'to' after the country codes (expected from \"FILE\" or end of line)");
	CHECK(first("set x = country DE from \"c.csv\" extra\n") ==
	      m + "1:33: error: unexpected 'extra' (expected end of line after the set's value)");
	CHECK(first("set x = country DE from \"missing.csv\"\n")
	          .starts_with(m + "1:25: error: set 'x': cannot read '" + (d.path / "missing.csv").string() + "': "));
	// A listed country with no line in the CSV: the set would silently lack it.
	const auto none = errors_of(d, "set x = country { DE JP US } from \"c.csv\"\n");
	REQUIRE(none.size() == 1);
	CHECK(none[0] == m + "1:22: error: set 'x': no address of 'JP' in '" + (d.path / "c.csv").string() + "'");
	// A set from etcd has no directory: relative CSV paths are refused there.
	parse_options self_contained = no_services();
	self_contained.max_include_depth = 0;
	auto r = parse_string("set x = country DE from \"c.csv\"\n", "etcd", self_contained);
	REQUIRE_FALSE(r.errors.empty());
	CHECK(r.errors[0].message.starts_with("a set file must be an absolute path here"));
	// A broken country set does not also make each use an "unknown set".
	CHECK(errors_of(d, "set x = country XY\ndrop in from $x\ndrop out to $x\n").size() == 1);
	// It stands alone after from/to, as a file set does.
	CHECK(first("set x = country DE from \"c.csv\"\ndrop in from { $x, 198.18.0.1 }\n")
	          .starts_with(m + "2:16: error: '$x' is a set from a file: it stands alone after from or to"));
}

TEST_CASE("CSV size and entry limits apply to country CSVs")
{
	temp_dir d;
	d.write("c.csv", sample_csv);
	parse_options small = no_services();
	small.max_set_file_bytes = 10;
	CHECK(errors_of(d, "set x = country DE from \"c.csv\"\n", small).at(0).find("more than the limit of 10") !=
	      std::string::npos);
	parse_options few = no_services();
	few.max_set_entries = 3;
	CHECK(errors_of(d, "set x = country DE from \"c.csv\"\n", few).at(0) ==
	      (d.path / "c.csv").string() + ":6:1: error: set 'x': more than 3 entries in one set file");
}

TEST_CASE("a missing GeoIP database is an error at 'country' saying where it comes from")
{
	temp_dir d;
	parse_options o = no_services();
	o.geoip_dir = (d.path / "GeoIP").string();
	const auto e = errors_of(d, "set eu = country { DE FR }\ndrop in from $eu\n", o);
	REQUIRE(e.size() == 1);
	CHECK(e[0] == (d.path / "main.rules").string() + ":1:10: error: set 'eu': no GeoIP database '" + o.geoip_dir +
	                  "/GeoIP.dat' (apt-get install geoip-database provides it; or give the addresses in a CSV: "
	                  "country { ... } from \"FILE\")");
}

TEST_CASE("a file that is not a GeoIP database is an error, not a crash or an endless walk")
{
	temp_dir d;
	std::filesystem::create_directory(d.path / "GeoIP");
	// No structure trailer: libgeoip takes any such file for an IPv4 country database, so the IPv6 one is
	// refused by its edition. (The IPv4 walk's own guard is tested below, with the real GeoIPv6.dat.)
	d.write("GeoIP/GeoIP.dat", std::string(5000, 'A'));
	d.write("GeoIP/GeoIPv6.dat", std::string(5000, 'A'));
	parse_options o = no_services();
	o.geoip_dir = (d.path / "GeoIP").string();
	const auto e = errors_of(d, "set x = country DE\n", o);
	REQUIRE(e.size() == 1);
	CHECK(e[0] == (d.path / "main.rules").string() + ":1:9: error: set 'x': '" + o.geoip_dir +
	                  "/GeoIPv6.dat' is not a GeoIP IPv6 country database (its edition is 1)");
}

TEST_CASE("country sets from Debian's GeoIP databases (2019 data)")
{
	if (!have_geoip()) {
		WARN(no_geoip);
		return;
	}
	temp_dir d;
	const ruleset rs = rules_ok(d, "set de = country DE\nset fr = country fr\nset eu = country { DE, FR }\n"
	                               "set jp = country JP\n"
	                               "drop in from $de\ndrop in from $fr\ndrop in from $eu\ndrop out to $jp\n",
	                            geoip_options());
	const auto& de = set_named(rs, "de");
	const auto& fr = set_named(rs, "fr");
	const auto& eu = set_named(rs, "eu");
	const auto& jp = set_named(rs, "jp");
	CHECK(de.file == geoip_dir + "/GeoIP.dat, " + geoip_dir + "/GeoIPv6.dat");
	CHECK(std::count(rs.files.begin(), rs.files.end(), geoip_dir + "/GeoIPv6.dat") == 4);
	// Well-known blocks: Deutsche Telekom, Orange (France), the Japanese academic /8.
	CHECK(contains(de.v4, ip4(80, 128, 0, 1)));     // 80.128.0.0/11, t-ipconnect.de
	CHECK(contains(de.v4, ip4(217, 0, 0, 1)));      // 217.0.0.0/13, DTAG
	CHECK(contains(fr.v4, ip4(90, 0, 0, 1)));       // 90.0.0.0/9, Orange
	CHECK(contains(fr.v4, ip4(193, 51, 0, 1)));     // RENATER
	CHECK(contains(jp.v4, ip4(133, 1, 1, 1)));
	CHECK_FALSE(contains(de.v4, ip4(90, 0, 0, 1)));
	CHECK(contains(de.v6, ip6(0x2003, 0, 0, 0, 0, 0, 0, 1)));   // 2003::/19, DTAG
	CHECK(contains(fr.v6, ip6(0x2a01, 0xc000, 0, 0, 0, 0, 0, 1)));  // 2a01:c000::/19, Orange
	CHECK(contains(jp.v6, ip6(0x2400, 0x4000, 0, 0, 0, 0, 0, 1)));
	// 6to4 (2002::/16) carries the IPv4 country: 2002:5080:1:: is 80.128.0.1's.
	CHECK(contains(de.v6, ip6(0x2002, 0x5080, 1, 0, 0, 0, 0, 1)));
	// The database's IPv4-compatible and IPv4-mapped copies (::/8) are left out.
	CHECK_FALSE(contains(de.v6, ip6(0, 0, 0, 0, 0, 0xffff, 0x5080, 1)));
	CHECK_FALSE(contains(de.v6, ip6(0, 0, 0, 0, 0, 0, 0x5080, 1)));
	// Private, loopback and benchmarking addresses belong to no country.
	for (const address_set* s : {&de, &fr, &jp}) {
		CHECK_FALSE(contains(s->v4, ip4(10, 0, 0, 1)));
		CHECK_FALSE(contains(s->v4, ip4(127, 0, 0, 1)));
		CHECK_FALSE(contains(s->v4, ip4(198, 18, 0, 5)));
		CHECK_FALSE(contains(s->v6, ip6(0x2001, 2, 0, 0, 0, 0, 0, 1)));
		CHECK_FALSE(s->v6.empty());
		CHECK(s->entries > 100);
	}
	CHECK(disjoint(de.v4, fr.v4));
	CHECK(disjoint(de.v6, fr.v6));
	CHECK(disjoint(de.v4, jp.v4));
	CHECK(eu.v4 == united(de.v4, fr.v4));
	CHECK(eu.v6 == united(de.v6, fr.v6));
	CHECK(eu.entries == de.entries + fr.entries);
	// Germany has had ~120M IPv4 addresses for years: a walk that lost or doubled records shows here.
	CHECK(v4_addresses(de) > 80'000'000);
	CHECK(v4_addresses(de) < 160'000'000);
	// A rule over the set tests its key bit: explain/classify give a German source bit 0.
	CHECK(set_bits_for(rs, ip4(80, 128, 0, 1), ip4(198, 18, 1, 1)) == (1 | 4));
	CHECK(set_bits_for(rs, ip4(198, 18, 0, 5), ip4(133, 1, 1, 1)) == 8);
}

TEST_CASE("GeoIP database problems are errors at 'country'")
{
	if (!have_geoip()) {
		WARN(no_geoip);
		return;
	}
	temp_dir d;
	const std::string m = (d.path / "main.rules").string() + ":1:9: error: set 'x': ";
	// Only the IPv4 database: the IPv6 one is named as missing.
	std::filesystem::create_directory(d.path / "v4only");
	std::filesystem::create_symlink(geoip_dir + "/GeoIP.dat", d.path / "v4only" / "GeoIP.dat");
	parse_options o = no_services();
	o.geoip_dir = (d.path / "v4only").string();
	CHECK(errors_of(d, "set x = country DE\n", o).at(0) ==
	      m + "no GeoIP database '" + o.geoip_dir + "/GeoIPv6.dat' (apt-get install geoip-database provides it; or "
	          "give the addresses in a CSV: country { ... } from \"FILE\")");
	// The databases swapped: the edition check refuses them.
	std::filesystem::create_directory(d.path / "swapped");
	std::filesystem::create_symlink(geoip_dir + "/GeoIPv6.dat", d.path / "swapped" / "GeoIP.dat");
	std::filesystem::create_symlink(geoip_dir + "/GeoIP.dat", d.path / "swapped" / "GeoIPv6.dat");
	o.geoip_dir = (d.path / "swapped").string();
	CHECK(errors_of(d, "set x = country DE\n", o).at(0).starts_with(
		m + "'" + o.geoip_dir + "/GeoIP.dat' is not a GeoIP IPv4 country database (its edition is 12)"));
	// An IPv4 database whose tree points outside the file: the walk stops at the first bad answer.
	std::filesystem::create_directory(d.path / "garbage");
	d.write("garbage/GeoIP.dat", std::string(5000, 'A'));
	std::filesystem::create_symlink(geoip_dir + "/GeoIPv6.dat", d.path / "garbage" / "GeoIPv6.dat");
	o.geoip_dir = (d.path / "garbage").string();
	CHECK(errors_of(d, "set x = country DE\n", o).at(0) ==
	      m + "'" + o.geoip_dir + "/GeoIP.dat': a lookup gave prefix length 0: is it a GeoIP country database?");
	// A valid code that the database gives no address: every country of its table has some, but XK
	// (Kosovo, accepted for the CSV exports) is not in it.
	const auto e = errors_of(d, "set x = country { NO XK }\n", geoip_options());
	REQUIRE(e.size() == 1);
	CHECK(e[0] == (d.path / "main.rules").string() + ":1:22: error: set 'x': no address of 'XK' in the GeoIP databases (" +
	                  geoip_dir + "/GeoIP.dat, " + geoip_dir + "/GeoIPv6.dat)");
}

} // namespace portcullis::rules::test
