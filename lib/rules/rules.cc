// The public entry points (rules.h): parse_file/parse_string, format() and the queries on a parsed ruleset.
//
// The work is done by stage, one file each (stages.h): lexer.cc, parser.cc, resolve.cc, payload.cc,
// feed.cc, lower.cc.
#include "rules/rules.h"

#include <algorithm>
#include <cctype>

#include "rules/stages.h"

namespace portcullis::rules {

std::string_view action_name(action a)
{
	switch (a) {
	case action::allow: return "allow";
	case action::drop: return "drop";
	case action::reject: return "reject";
	}
	return "?";
}

std::string_view direction_name(direction d) { return d == direction::in ? "in" : "out"; }

std::string format(const diagnostic& d)
{
	std::string s = d.loc.file;
	if (d.loc.line != 0)
		s += ':' + std::to_string(d.loc.line) + ":" + std::to_string(d.loc.column);
	return s + ": error: " + d.message;
}

std::vector<uint32_t> rules_for(const ruleset& rs, direction d)
{
	std::vector<uint32_t> out;
	for (uint32_t i = 0; i < rs.rules.size(); ++i)
		if (rs.rules[i].applies(d))
			out.push_back(i);
	return out;
}

std::vector<uint32_t> payload_free_rules_for(const ruleset& rs, direction d)
{
	std::vector<uint32_t> out;
	for (uint32_t i = 0; i < rs.rules.size(); ++i)
		if (rs.rules[i].applies(d) && rs.rules[i].payload.empty())
			out.push_back(i);
	return out;
}

bool has_payload_rules(const ruleset& rs)
{
	for (const auto& r : rs.rules)
		if (!r.payload.empty())
			return true;
	return false;
}

std::string_view payload_kind_name(payload_kind k)
{
	switch (k) {
	case payload_kind::content: return "content";
	case payload_kind::regex: return "regex";
	case payload_kind::sni: return "sni";
	case payload_kind::http_host: return "http-host";
	case payload_kind::dns_query: return "dns-query";
	}
	return "?";
}

bool name_matches(std::string_view pattern, std::string_view name)
{
	if (!name.empty() && name.back() == '.')
		name.remove_suffix(1);
	auto iequal = [](std::string_view a, std::string_view b) {
		if (a.size() != b.size())
			return false;
		for (size_t i = 0; i < a.size(); ++i)
			if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
				return false;
		return true;
	};
	if (pattern.size() >= 2 && pattern[0] == '*' && pattern[1] == '.') {
		const std::string_view suffix = pattern.substr(1);  // ".example.com"
		return name.size() > suffix.size() && iequal(name.substr(name.size() - suffix.size()), suffix);
	}
	return iequal(pattern, name);
}

namespace {

parse_result guarded(const std::string& name, const parse_options& opts, std::optional<std::string_view> text)
{
	try {
		detail::parser p(opts);
		return p.run(name, text);
	} catch (const std::exception& e) {
		// Out of memory or a filesystem surprise: still an error value, never an exception.
		diagnostic d;
		d.loc.file = name;
		d.message = std::string("internal error: ") + e.what();
		parse_result r;
		r.errors.push_back(std::move(d));
		return r;
	}
}

} // namespace

parse_result parse_file(const std::string& path, const parse_options& opts) { return guarded(path, opts, std::nullopt); }

parse_result parse_string(std::string_view text, const std::string& name, const parse_options& opts)
{
	return guarded(name, opts, text);
}

namespace {

template <class T>
bool in_ranges(const std::vector<value_range<T>>& set, T a)  // set normalized
{
	auto it = std::upper_bound(set.begin(), set.end(), a, [](T v, const value_range<T>& r) { return v < r.lo; });
	return it != set.begin() && a <= std::prev(it)->hi;
}

template <class T>
uint8_t set_bits_of(const ruleset& rs, T src, T dst)
{
	uint8_t bits = 0;
	for (size_t i = 0; i < rs.set_tests.size(); ++i) {
		const auto& set = rs.sets[rs.set_tests[i].set];
		const T a = rs.set_tests[i].dst ? dst : src;
		bool in;
		if constexpr (sizeof(T) == 4)
			in = in_ranges(set.v4, a);
		else
			in = in_ranges(set.v6, a);
		bits |= uint8_t(in) << i;
	}
	return bits;
}

} // namespace

namespace {

address_feed to_address_feed(detail::feed_result feed, const std::string& path)
{
	address_feed out;
	auto error = [&](uint32_t line, uint32_t column, std::string message) {
		diagnostic d;
		d.loc.file = path;
		d.loc.line = line;
		d.loc.column = column;
		d.message = std::move(message);
		out.errors.push_back(std::move(d));
	};
	if (!feed.file_error.empty()) {
		error(0, 0, std::move(feed.file_error));
		return out;
	}
	for (auto& e : feed.errors)
		error(e.line, e.column, std::move(e.message));
	if (feed.more_errors)
		error(0, 0, std::to_string(feed.more_errors) + " more error(s) in this file");
	if (!out.errors.empty())
		return out;
	out.v4 = std::move(feed.addrs.v4);
	out.v6 = std::move(feed.addrs.v6);
	out.entries = feed.entries;
	return out;
}

} // namespace

address_feed read_address_feed(const std::string& path, const parse_options& opts)
{
	return to_address_feed(detail::read_feed(path, opts.max_set_file_bytes, opts.max_set_entries), path);
}

address_feed parse_address_feed(std::string_view text, const std::string& name, const parse_options& opts)
{
	return to_address_feed(detail::parse_feed(text, opts.max_set_entries), name);
}

uint8_t set_bits_for(const ruleset& rs, uint32_t src, uint32_t dst) { return set_bits_of(rs, src, dst); }
uint8_t set_bits_for(const ruleset& rs, u128 src, u128 dst) { return set_bits_of(rs, src, dst); }

} // namespace portcullis::rules
