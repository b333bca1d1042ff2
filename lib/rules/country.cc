// `set NAME = country { CC, ... } [from "CSV"]` (docs/rules.md, "Country sets"): the addresses that a
// country database assigns to the listed countries, as one large set that rules test like a file set.
//
// Two sources:
// - GeoIP (the default): the legacy MaxMind databases of Debian's geoip-database, GeoIP.dat (IPv4) and
//   GeoIPv6.dat (IPv6), read through libgeoip. libgeoip answers "which country, and how long is the
//   prefix that answer holds for" for one address, so the database's ranges are enumerated by walking
//   the address space prefix by prefix: look up, keep the prefix if its country is wanted, jump past it.
//   Each lookup lands on a record of the database's tree, so the walk costs one lookup per record
//   (Debian 12's 2019 data: 350k for IPv4, 657k for IPv6, about 30 + 75 ms on one core; the whole set,
//   normalized, in under a quarter of a second) rather than anything proportional to the space.
// - A CSV file the operator gives (fresher data than Debian's 2019 snapshot): `CIDR,CC` or
//   `FIRST,LAST,CC` lines, IPv4 or IPv6, '#' comments. Errors are reported at the CSV's line and column,
//   and refuse the rule set as a broken feed does (feed.cc): a truncated download never becomes a
//   smaller country in service.
//
// Codes are ISO 3166-1 alpha-2, checked against libgeoip's country table (plus XK, which the free CSV
// exports use for Kosovo). A listed country that ends up with no address at all is an error at its
// code: a set that silently matches nothing would be a rule that silently does nothing.
#include <GeoIP.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <memory>
#include <system_error>

#include "rules/stages.h"

namespace portcullis::rules::detail {
namespace {

constexpr size_t max_reported_errors = 20;  // per CSV, then a count (as feed.cc)

// A database whose tree yields more records than this is not a country database (the real ones have
// under 1M); the cap turns a corrupt file into an error instead of a walk of 2^32 single addresses.
constexpr size_t max_database_records = size_t(1) << 24;

// ---- country codes ----------------------------------------------------------------------------

std::string upper(std::string_view w)
{
	std::string c(w);
	for (char& ch : c)
		if (ch >= 'a' && ch <= 'z')
			ch = char(ch - 'a' + 'A');
	return c;
}

// Upper-cased when `w` is two ASCII letters.
std::optional<std::string> two_letters(std::string_view w)
{
	std::string c = upper(w);
	if (c.size() != 2 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z')
		return std::nullopt;
	return c;
}

// GeoIP's codes that are not countries. EU in particular is a trap: it is not the European Union but
// the few networks GeoIP only knows to be somewhere in Europe.
std::optional<std::string> not_a_country(const std::string& c)
{
	if (c == "EU")
		return "'EU' is not a country: GeoIP uses it for networks known only to be somewhere in Europe, not "
		       "for the European Union (list the member states)";
	if (c == "AP")
		return "'AP' is not a country: GeoIP uses it for networks known only to be in the Asia/Pacific region";
	if (c == "A1" || c == "A2" || c == "O1")
		return "'" + c + "' is not a country: GeoIP uses it for anonymous proxies, satellite providers or other";
	return std::nullopt;
}

bool known_country(const std::string& c)
{
	if (c == "XK")  // Kosovo: user-assigned in ISO 3166-1, used by the RIRs and the free CSV exports
		return true;
	for (unsigned id = 1; id < GeoIP_num_countries(); ++id)
		if (const char* k = GeoIP_code_by_id(int(id)); k && c == k)
			return true;
	return false;
}

struct wanted_code {
	std::string code;
	const token* at;
	bool found = false;
};

wanted_code* find_code(std::vector<wanted_code>& codes, std::string_view c)
{
	for (auto& w : codes)
		if (w.code == c)
			return &w;
	return nullptr;
}

// ---- GeoIP databases --------------------------------------------------------------------------

struct geoip_closer {
	void operator()(GeoIP* g) const { GeoIP_delete(g); }
};
using geoip_ptr = std::unique_ptr<GeoIP, geoip_closer>;

// wanted[id] points at the listed code whose country has libgeoip id `id`, or is null.
using id_table = std::array<wanted_code*, 256>;

id_table ids_of(std::vector<wanted_code>& codes)
{
	id_table t{};
	for (unsigned id = 1; id < GeoIP_num_countries() && id < t.size(); ++id)
		if (const char* k = GeoIP_code_by_id(int(id)))
			t[id] = find_code(codes, k);
	return t;
}

wanted_code* wanted_id(const id_table& t, int id) { return id > 0 && size_t(id) < t.size() ? t[size_t(id)] : nullptr; }

// The walk of one database: which prefixes it adds, or why it could not.
struct walk_result {
	size_t entries = 0;  // records (prefixes) added to the set
	std::string error;
};

// IPv4: every prefix of GeoIP.dat whose country is wanted. The *_gl lookups return the prefix length
// in their GeoIPLookup: GeoIP_last_netmask() gives the same but is deprecated (state in the GeoIP*).
walk_result walk_v4(GeoIP* gi, const id_table& ids, range_set<uint32_t>& out, size_t max_entries)
{
	walk_result r;
	uint64_t ip = 0;
	for (size_t n = 0; ip <= 0xFFFFFFFFu; ++n) {
		if (n == max_database_records) {
			r.error = "more than " + std::to_string(max_database_records) + " records: is it a GeoIP country database?";
			return r;
		}
		GeoIPLookup gl{};
		// libgeoip answers nothing (not even the netmask) for 0.0.0.0 itself, so ask for 0.0.0.1: its
		// prefix holds 0.0.0.0 too unless it is a /32, and then 0.0.0.0 is taken as in no country.
		const int id = GeoIP_id_by_ipnum_gl(gi, ip == 0 ? 1 : static_cast<unsigned long>(ip), &gl);
		if (gl.netmask < 1 || gl.netmask > 32) {
			r.error = "a lookup gave prefix length " + std::to_string(gl.netmask) + ": is it a GeoIP country database?";
			return r;
		}
		if (ip == 0 && gl.netmask == 32) {
			ip = 1;
			continue;
		}
		const uint64_t size = uint64_t(1) << (32 - gl.netmask);
		const uint64_t first = ip & ~(size - 1);
		if (wanted_code* w = wanted_id(ids, id)) {
			if (++r.entries > max_entries) {
				r.error = "more than " + std::to_string(max_entries) + " entries in one set";
				return r;
			}
			out.push_back({uint32_t(first), uint32_t(first + size - 1)});
			w->found = true;
		}
		ip = first + size;
	}
	return r;
}

geoipv6_t to_geoip(u128 a)
{
	geoipv6_t g{};
	for (int i = 15; i >= 0; --i, a >>= 8)
		g.s6_addr[i] = uint8_t(a);
	return g;
}

// IPv6: every prefix of GeoIPv6.dat whose country is wanted, from 0100:: up. The database also holds
// three copies of its IPv4 data: IPv4-compatible (::/96) and IPv4-mapped (::ffff:0:0/96) addresses,
// which never arrive as IPv6 sources or destinations, and 6to4 (2002::/16), which do and are kept.
// The first two lie in ::/8 (reserved by IANA, never routed), which the walk skips: that halves it.
walk_result walk_v6(GeoIP* gi, const id_table& ids, range_set<u128>& out, size_t max_entries)
{
	walk_result r;
	u128 ip = u128(1) << 120;
	for (size_t n = 0;; ++n) {
		if (n == max_database_records) {
			r.error = "more than " + std::to_string(max_database_records) + " records: is it a GeoIP country database?";
			return r;
		}
		GeoIPLookup gl{};
		const int id = GeoIP_id_by_ipnum_v6_gl(gi, to_geoip(ip), &gl);
		if (gl.netmask < 1 || gl.netmask > 128) {
			r.error = "a lookup gave prefix length " + std::to_string(gl.netmask) + ": is it a GeoIP country database?";
			return r;
		}
		const u128 host = gl.netmask == 128 ? u128(0) : (u128(1) << (128 - gl.netmask)) - 1;
		const u128 first = ip & ~host;
		if (wanted_code* w = wanted_id(ids, id)) {
			if (++r.entries > max_entries) {
				r.error = "more than " + std::to_string(max_entries) + " entries in one set";
				return r;
			}
			out.push_back({first, first | host});
			w->found = true;
		}
		if ((first | host) == ~u128(0))
			return r;
		ip = (first | host) + 1;
	}
}

// Opens a database of the given edition; a message when it is missing or something else.
std::string open_database(const std::string& path, int edition, geoip_ptr& out)
{
	std::error_code ec;
	if (!std::filesystem::exists(path, ec))
		return "no GeoIP database '" + path + "' (apt-get install geoip-database provides it; or give the "
		       "addresses in a CSV: country { ... } from \"FILE\")";
	// MEMORY_CACHE: the walk reads every record, so one read of the file beats a pread per tree node.
	// SILENCE: libgeoip would print its own complaints on stderr.
	out.reset(GeoIP_open(path.c_str(), GEOIP_MEMORY_CACHE | GEOIP_SILENCE));
	if (!out)
		return "cannot open GeoIP database '" + path + "'";
	if (GeoIP_database_edition(out.get()) != edition)
		return "'" + path + "' is not a GeoIP " + (edition == GEOIP_COUNTRY_EDITION ? "IPv4" : "IPv6") +
		       " country database (its edition is " + std::to_string(int(GeoIP_database_edition(out.get()))) + ")";
	// The walk must read the tree itself: with Teredo decoding on, libgeoip answers for 2001::/32 from
	// the IPv4 address embedded in each address, one /128 at a time.
	GeoIP_enable_teredo(out.get(), 0);
	return {};
}

// ---- CSV ----------------------------------------------------------------------------------------

bool blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

struct csv_field {
	std::string_view text;
	uint32_t column;  // 1-based, of the text (inside quotes when quoted)
};

struct csv_result {
	addr_set addrs;
	size_t entries = 0;  // lines whose country is wanted
	std::vector<feed_error> errors;
	size_t more_errors = 0;
	std::string file_error;
};

// An address of either family: {v6, value}.
struct any_address {
	bool v6;
	u128 value;
};

std::optional<any_address> parse_address(std::string_view s)
{
	if (s.find(':') != std::string_view::npos) {
		if (auto a = parse_ipv6(s))
			return any_address{true, *a};
		return std::nullopt;
	}
	if (auto a = parse_ipv4(s))
		return any_address{false, *a};
	return std::nullopt;
}

std::string family(const any_address& a) { return a.v6 ? "IPv6" : "IPv4"; }

// `CIDR`: the range, or an error message. Host bits are cleared as in feeds (feed.cc).
std::optional<std::string> parse_cidr(std::string_view w, any_address& lo, any_address& hi)
{
	const auto slash = w.find('/');
	const auto a = parse_address(w.substr(0, slash));
	if (!a)
		return "expected an IPv4 or IPv6 address or CIDR, got '" + std::string(w) + "'";
	const unsigned bits = a->v6 ? 128 : 32;
	unsigned prefix = bits;
	if (slash != std::string_view::npos) {
		const auto p = parse_number(w.substr(slash + 1), 1000);
		if (!p || *p > bits)
			return "invalid prefix length in '" + std::string(w) + "' (expected /0 to /" + std::to_string(bits) + ")";
		prefix = *p;
	}
	const u128 host = bits - prefix == 128 ? ~u128(0) : (u128(1) << (bits - prefix)) - 1;
	lo = {a->v6, a->value & ~host};
	hi = {a->v6, a->value | host};
	return std::nullopt;
}

std::vector<csv_field> split_fields(std::string_view l)
{
	std::vector<csv_field> f;
	size_t at = 0;
	for (;;) {
		size_t end = l.find(',', at);
		if (end == std::string_view::npos)
			end = l.size();
		size_t b = at, e = end;
		while (b < e && blank(l[b]))
			++b;
		while (e > b && blank(l[e - 1]))
			--e;
		if (e - b >= 2 && l[b] == '"' && l[e - 1] == '"') {  // "1.0.0.0","1.0.0.255","AU" as some exports quote
			++b;
			--e;
		}
		f.push_back({l.substr(b, e - b), uint32_t(b + 1)});
		if (end == l.size())
			return f;
		at = end + 1;
	}
}

csv_result read_country_csv(const std::string& path, std::vector<wanted_code>& codes, size_t max_bytes,
                            size_t max_entries)
{
	csv_result r;
	std::string text;
	r.file_error = read_bounded_file(path, max_bytes, text);
	if (!r.file_error.empty())
		return r;
	auto error = [&](uint32_t line, uint32_t column, std::string msg) {
		if (r.errors.size() < max_reported_errors)
			r.errors.push_back({line, column, std::move(msg)});
		else
			++r.more_errors;
	};
	constexpr std::string_view format = "lines are CIDR,CC or FIRST,LAST,CC";
	size_t lines = 0;  // lines with data, for the entry limit
	uint32_t line = 0;
	for (size_t at = 0; at < text.size();) {
		++line;
		size_t eol = text.find('\n', at);
		if (eol == std::string::npos)
			eol = text.size();
		std::string_view l(text.data() + at, eol - at);
		at = eol + 1;
		if (const auto c = l.find('#'); c != std::string_view::npos)
			l = l.substr(0, c);
		if (l.find_first_not_of(" \t\r\v\f") == std::string_view::npos)
			continue;
		if (++lines > max_entries) {
			error(line, 1, "more than " + std::to_string(max_entries) + " entries in one set file");
			break;
		}
		const auto f = split_fields(l);
		if (f.size() < 2 || f.size() > 3) {
			const auto& at_field = f.size() < 2 ? f[0] : f[3];
			error(line, at_field.column,
			      f.size() < 2 ? "expected a ',' and a country code after '" + std::string(f[0].text) + "' (" +
			                         std::string(format) + ")"
			                   : "unexpected fourth field '" + std::string(at_field.text) + "' (" + std::string(format) + ")");
			continue;
		}
		any_address lo{}, hi{};
		if (f.size() == 2) {
			if (auto msg = parse_cidr(f[0].text, lo, hi)) {
				error(line, f[0].column, std::move(*msg));
				continue;
			}
		} else {
			const auto a = parse_address(f[0].text);
			if (!a) {
				error(line, f[0].column, "expected the first IPv4 or IPv6 address of a range, got '" +
				                             std::string(f[0].text) + "'");
				continue;
			}
			const auto b = parse_address(f[1].text);
			if (!b) {
				error(line, f[1].column, "expected the last IPv4 or IPv6 address of a range, got '" +
				                             std::string(f[1].text) + "'");
				continue;
			}
			if (a->v6 != b->v6) {
				error(line, f[1].column, "the range starts with an " + family(*a) + " address and ends with an " +
				                             family(*b) + " address");
				continue;
			}
			if (b->value < a->value) {
				error(line, f[1].column, "the range ends before it starts ('" + std::string(f[1].text) + "' < '" +
				                             std::string(f[0].text) + "')");
				continue;
			}
			lo = *a;
			hi = *b;
		}
		const csv_field& cc = f.back();
		const auto code = two_letters(cc.text);
		if (!code) {
			error(line, cc.column, "expected a two-letter country code, got '" + std::string(cc.text) + "'");
			continue;
		}
		wanted_code* w = find_code(codes, *code);
		if (!w)
			continue;
		w->found = true;
		++r.entries;
		if (lo.v6)
			r.addrs.v6.push_back({lo.value, hi.value});
		else
			r.addrs.v4.push_back({uint32_t(lo.value), uint32_t(hi.value)});
	}
	return r;
}

} // namespace

// country CC | country { CC ... }, then optionally from "CSV". The set behaves as a file set.
void parser::country_set(named_set& s, std::string_view set)
{
	const token& kw = next();
	const std::string set_name = "set '" + std::string(set) + "'";
	std::vector<wanted_code> codes;
	auto code = [&](const token& t) {
		if (t.kind == token_kind::word)
			if (auto msg = not_a_country(upper(t.text)))  // before the letters test: A1, A2 and O1 have digits
				fail(t, *msg);
		const auto c = t.kind == token_kind::word ? two_letters(t.text) : std::nullopt;
		if (!c)
			fail(t, "expected a two-letter country code (ISO 3166-1 alpha-2, such as DE or FR), got '" + shown(t) + "'");
		if (!known_country(*c))
			fail(t, "unknown country code '" + std::string(t.text) +
			            "' (expected an ISO 3166-1 alpha-2 code, such as DE for Germany or FR for France)");
		if (!find_code(codes, *c))
			codes.push_back({*c, &t});
	};
	if (at_end())
		fail(kw, "expected a country code or a { list } of them after 'country', got end of line");
	if (const token* open = item_or_list(code); open && codes.empty())
		fail(*open, "empty list of countries: the set would match nothing");

	s.is_file = true;
	const bool from_csv = accept_word("from");
	if (from_csv) {
		if (at_end() || (peek().kind != token_kind::string && peek().kind != token_kind::bad_string))
			fail(at_end() ? file_->tokens[pos_ - 1] : peek(), "expected a CSV file name in quotes after 'from', got " + got());
		const token& name = next();
		s.file = set_file_path(name);
		csv_result csv = read_country_csv(s.file, codes, opts_.max_set_file_bytes, opts_.max_set_entries);
		if (!csv.file_error.empty())
			fail(name, set_name + ": " + csv.file_error);
		for (const auto& e : csv.errors)
			add_error({s.file, e.line, e.column}, set_name + ": " + e.message);
		if (csv.more_errors)
			add_error({s.file, 0, 0}, set_name + ": " + std::to_string(csv.more_errors) + " more error(s) in this file");
		rs_.files.push_back(s.file);
		s.addrs = std::move(csv.addrs);
		s.entries = csv.entries;
		if (!csv.errors.empty()) {
			s.broken = true;  // and a country missing from a broken file says nothing more
			return;
		}
	} else {
		if (!at_end())
			fail(peek(), "unexpected '" + shown(peek()) + "' after the country codes (expected from \"FILE\" or end of line)");
		const std::string v4_path = (std::filesystem::path(opts_.geoip_dir) / "GeoIP.dat").string();
		const std::string v6_path = (std::filesystem::path(opts_.geoip_dir) / "GeoIPv6.dat").string();
		geoip_ptr v4, v6;
		if (auto msg = open_database(v4_path, GEOIP_COUNTRY_EDITION, v4); !msg.empty())
			fail(kw, set_name + ": " + msg);
		if (auto msg = open_database(v6_path, GEOIP_COUNTRY_EDITION_V6, v6); !msg.empty())
			fail(kw, set_name + ": " + msg);
		const id_table ids = ids_of(codes);
		const walk_result r4 = walk_v4(v4.get(), ids, s.addrs.v4, opts_.max_set_entries);
		if (!r4.error.empty())
			fail(kw, set_name + ": '" + v4_path + "': " + r4.error);
		const walk_result r6 = walk_v6(v6.get(), ids, s.addrs.v6, opts_.max_set_entries - r4.entries);
		if (!r6.error.empty())
			fail(kw, set_name + ": '" + v6_path + "': " + r6.error);
		s.file = v4_path + ", " + v6_path;
		s.entries = r4.entries + r6.entries;
		rs_.files.push_back(v4_path);
		rs_.files.push_back(v6_path);
	}
	normalize(s.addrs.v4);
	normalize(s.addrs.v6);
	for (const auto& w : codes)
		if (!w.found) {
			add_error(loc(*w.at), set_name + ": no address of '" + w.code + "' in " +
			                          (from_csv ? "'" + s.file + "'" : "the GeoIP databases (" + s.file + ")"));
			s.broken = true;
		}
}

} // namespace portcullis::rules::detail
