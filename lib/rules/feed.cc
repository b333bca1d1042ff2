// Address feeds: the file behind `set NAME = file "PATH"` (docs/rules.md, "Sets from files").
//
// One address or CIDR a line, in the formats that blocklists ship: plain lists, FireHOL .netset/.ipset
// ('#' comments) and Spamhaus DROP ("CIDR ; SBLnnn", header lines starting with ';'). Host bits under
// a prefix are cleared rather than refused: a feed is someone else's file that the operator cannot fix,
// and 192.0.2.7/24 can only mean the /24. Everything else that is not an address is an error with its
// line and column, so a truncated download does not silently become a shorter blocklist.
#include <fstream>
#include <sstream>
#include <system_error>
#include <filesystem>

#include "rules/stages.h"

namespace portcullis::rules::detail {
namespace {

constexpr size_t max_reported_errors = 20;

bool blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

// The entry's ranges, or an error message.
std::optional<std::string> parse_entry(std::string_view w, addr_set& out)
{
	// Only what an address or CIDR can hold: a NUL would end the text inet_pton sees and let
	// "198.18.0.1<NUL>junk" pass as 198.18.0.1.
	if (w.find_first_not_of("0123456789abcdefABCDEF.:/") != std::string_view::npos)
		return "expected an IPv4 or IPv6 address or CIDR, got '" + std::string(w) + "'";
	const auto slash = w.find('/');
	const std::string_view host = w.substr(0, slash);
	const bool v6 = host.find(':') != std::string_view::npos;
	const unsigned bits = v6 ? 128 : 32;
	unsigned prefix = bits;
	if (slash != std::string_view::npos) {
		const auto p = parse_number(w.substr(slash + 1), 1000);
		if (!p || *p > bits)
			return "invalid prefix length in '" + std::string(w) + "' (expected /0 to /" + std::to_string(bits) + ")";
		prefix = *p;
	}
	if (!v6) {
		const auto a = parse_ipv4(host);
		if (!a)
			return "expected an IPv4 or IPv6 address or CIDR, got '" + std::string(w) + "'";
		const uint32_t host_mask = prefix == 0 ? ~uint32_t(0) : uint32_t((uint64_t(1) << (32 - prefix)) - 1);
		out.v4.push_back({*a & ~host_mask, *a | host_mask});
		return std::nullopt;
	}
	const auto a = parse_ipv6(host);
	if (!a)
		return "invalid IPv6 address '" + std::string(host) + "'";
	const u128 host_mask = prefix == 0 ? ~u128(0) : (prefix == 128 ? u128(0) : (u128(1) << (128 - prefix)) - 1);
	out.v6.push_back({*a & ~host_mask, *a | host_mask});
	return std::nullopt;
}

} // namespace

std::string read_bounded_file(const std::string& path, size_t max_bytes, std::string& text)
{
	std::error_code ec;
	const auto size = std::filesystem::file_size(path, ec);
	if (ec)
		return "cannot read '" + path + "': " + ec.message();
	if (size > max_bytes)
		return "'" + path + "' is " + std::to_string(size) + " bytes, more than the limit of " + std::to_string(max_bytes);
	text.assign(size, '\0');
	std::ifstream in(path, std::ios::binary);
	if (!in.read(text.data(), std::streamsize(size)))
		return "cannot read '" + path + "'";
	return {};
}

feed_result read_feed(const std::string& path, size_t max_bytes, size_t max_entries)
{
	std::string text;
	if (std::string error = read_bounded_file(path, max_bytes, text); !error.empty()) {
		feed_result r;
		r.file_error = std::move(error);
		return r;
	}
	return parse_feed(text, max_entries);
}

feed_result parse_feed(std::string_view text, size_t max_entries)
{
	feed_result r;
	auto error = [&](uint32_t line, uint32_t column, std::string msg) {
		if (r.errors.size() < max_reported_errors)
			r.errors.push_back({line, column, std::move(msg)});
		else
			++r.more_errors;
	};
	uint32_t line = 0;
	for (size_t at = 0; at < text.size();) {
		++line;
		size_t eol = text.find('\n', at);
		if (eol == std::string::npos)
			eol = text.size();
		std::string_view l(text.data() + at, eol - at);
		at = eol + 1;
		if (const auto c = l.find_first_of("#;"); c != std::string_view::npos)
			l = l.substr(0, c);
		size_t b = 0;
		while (b < l.size() && blank(l[b]))
			++b;
		size_t e = b;
		while (e < l.size() && !blank(l[e]))
			++e;
		if (b == e)
			continue;
		const auto column = uint32_t(b + 1);
		size_t rest = e;
		while (rest < l.size() && blank(l[rest]))
			++rest;
		if (rest < l.size()) {
			error(line, uint32_t(rest + 1), "unexpected '" + std::string(l.substr(rest)) +
			                                    "' after the address (one address or CIDR a line; comments start with # or ;)");
			continue;
		}
		if (r.entries >= max_entries) {
			error(line, column, "more than " + std::to_string(max_entries) + " entries in one set file");
			break;
		}
		if (auto msg = parse_entry(l.substr(b, e - b), r.addrs))
			error(line, column, std::move(*msg));
		else
			++r.entries;
	}
	if (!r.errors.empty()) {  // refused anyway: do not sort what will be thrown away
		r.addrs = {};
		return r;
	}
	normalize(r.addrs.v4);
	normalize(r.addrs.v6);
	return r;
}

} // namespace portcullis::rules::detail
