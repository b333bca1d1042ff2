// The resolver: words -> values ($set names, addresses, ports, services, protocols, ICMP names); includes.
//
// An atom is one token of a value expression; lower.cc combines atoms ({ lists }, !negation) into range
// sets. Service names come from names.cc's table, then the services file (parse_options).
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "rules/stages.h"

namespace portcullis::rules::detail {
namespace {

std::string format_address_v4(uint32_t a)
{
	return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 255) + "." + std::to_string((a >> 8) & 255) +
	       "." + std::to_string(a & 255);
}

} // namespace

// ---- files and includes -----------------------------------------------------------------------

// Reads `path`; errors are reported at `from` (the include statement) or at the file itself.
void parser::parse_path(const std::string& path, const source_location* from, int depth, const std::string& shown)
{
	auto report = [&](std::string msg) {
		add_error(from ? *from : source_location{path, 0, 0}, std::move(msg));
	};
	if (cancel_requested())
		return;
	std::error_code ec;
	const auto size = std::filesystem::file_size(path, ec);
	if (ec) {
		report("cannot read " + std::string(from ? "include file '" + shown + "' (resolved to '" + path + "')" : "file") +
		       ": " + ec.message());
		return;
	}
	if (size > opts_.max_file_bytes) {
		report(std::string(from ? "include file '" + shown + "'" : "file") + " is " + std::to_string(size) +
		       " bytes, more than the limit of " + std::to_string(opts_.max_file_bytes));
		return;
	}
	std::ifstream in(path, std::ios::binary);
	std::ostringstream ss;
	ss << in.rdbuf();
	if (!in) {
		report("cannot read " + std::string(from ? "include file '" + shown + "'" : "file"));
		return;
	}
	parse_text(path, ss.str(), depth);
}

void parser::include_statement(int depth)
{
	const token& kw = next();
	if (at_end() || (peek().kind != token_kind::string && peek().kind != token_kind::bad_string &&
	                 peek().kind != token_kind::word))
		fail(at_end() ? kw : peek(), "expected a file name in quotes after 'include', got " + got());
	const token& name = next();
	if (name.kind == token_kind::bad_string)
		fail(name, "missing closing '\"' after the file name");
	expect_end("end of line after the file name");
	const std::filesystem::path included(std::string(name.text));
	const std::string resolved = included.is_absolute()
		? included.string()
		: (std::filesystem::path(file_->path).parent_path() / included).lexically_normal().string();
	std::error_code ec;
	auto canonical = std::filesystem::weakly_canonical(resolved, ec).string();
	if (ec)
		canonical = resolved;
	for (size_t i = 0; i < include_stack_.size(); ++i) {
		if (include_stack_[i] != canonical)
			continue;
		std::string chain;
		for (size_t j = i; j < include_stack_.size(); ++j)
			chain += std::filesystem::path(include_stack_[j]).filename().string() + " -> ";
		fail(name, "include cycle: " + chain + std::filesystem::path(canonical).filename().string());
	}
	if (opts_.max_include_depth == 0)
		fail(name, "include is not allowed here: this rule set is one self-contained text (a set from etcd, say); "
		           "put the included rules in it");
	if (depth + 1 > opts_.max_include_depth)
		fail(name, "includes nested too deep (more than " + std::to_string(opts_.max_include_depth) + " levels)");
	const source_location from = loc(name);
	const source_file* here = file_;
	const size_t saved_pos = pos_, saved_end = end_;
	parse_path(resolved, &from, depth + 1, std::string(name.text));
	file_ = here;
	pos_ = saved_pos;
	end_ = saved_end;
}

// ---- names and atoms ---------------------------------------------------------------------------

namespace {

// `$martians`, there without a definition (a `set martians` of one's own takes its place): the sources no
// host can have, as dataplane.drop-martians drops them before any rule (docs/threat-model.md).
named_set builtin_martians()
{
	named_set s;
	s.addrs.v4 = {{0x00000000u, 0x00ffffffu}, {0x7f000000u, 0x7fffffffu}, {0xe0000000u, 0xffffffffu}};  // 0/8 127/8 224/3
	s.addrs.v6 = {{0, 1}, {u128(0xff) << 120, ~u128(0)}};  // ::, ::1, ff00::/8
	s.loc = {"(built-in $martians)", 0, 0};
	return s;
}

} // namespace

const named_set& parser::lookup_set(const token& t)
{
	if (t.text.empty())
		fail(t, "expected a set name after '$'");
	auto it = sets_.find(std::string(t.text));
	if (it == sets_.end() && t.text == "martians") {
		it = sets_.emplace("martians", builtin_martians()).first;
		it->second.used = true;
	}
	if (it == sets_.end())
		fail(t, "unknown set '$" + std::string(t.text) + "' (sets must be defined with 'set' or 'ports' before use)");
	it->second.used = true;
	if (it->second.broken)
		fail(t, "");
	return it->second;
}

file_set_use parser::file_set_atom()
{
	const size_t at = pos_;
	bool negate = false;
	if (!at_end() && peek().kind == token_kind::bang) {
		next();
		negate = true;
	}
	if (!at_end() && peek().kind == token_kind::var) {
		auto it = sets_.find(std::string(peek().text));
		if (it != sets_.end() && it->second.is_file) {
			it->second.used = true;
			const token& t = next();
			if (it->second.broken)
				fail(t, "");
			return {&it->second, negate};
		}
	}
	pos_ = at;
	return {};
}

addr_set parser::address_atom(const token& t)
{
	static constexpr std::string_view expected =
		"expected an address: any, an IPv4 or IPv6 address or CIDR, $set or { list }";
	if (t.kind == token_kind::var) {
		const named_set& s = lookup_set(t);
		if (s.is_ports)
			fail(t, "'$" + std::string(t.text) + "' is a port set (expected an address set)");
		if (s.is_file)
			fail(t, "'$" + std::string(t.text) + "' is a set from a file: it stands alone after from or to ('from $" +
			            std::string(t.text) + "' or 'from !$" + std::string(t.text) +
			            "'), not inside a list or another set, because the data path looks it up apart");
		return s.addrs;
	}
	if (t.kind != token_kind::word)
		fail(t, std::string(expected) + ", got '" + shown(t) + "'");
	const std::string_view w = t.text;
	if (w == "any")
		return {{full_range<uint32_t>()}, {full_range<u128>()}};
	const auto slash = w.find('/');
	const std::string_view host = w.substr(0, slash);
	const bool v6 = host.find(':') != std::string_view::npos;
	const bool v4 = !v6 && !host.empty() && host.find_first_not_of("0123456789.") == std::string_view::npos &&
	                host.find('.') != std::string_view::npos;
	if (!v4 && !v6) {
		if (sets_.count(std::string(w)))
			fail(t, std::string(expected) + ", got '" + std::string(w) + "' (did you mean $" + std::string(w) + "?)");
		fail(t, std::string(expected) + ", got '" + std::string(w) + "'");
	}
	const unsigned bits = v6 ? 128 : 32;
	unsigned prefix = bits;
	if (slash != std::string_view::npos) {
		const auto p = parse_number(w.substr(slash + 1), 1000);
		if (!p)
			fail(t, "invalid prefix length in '" + std::string(w) + "' (expected /0 to /" + std::to_string(bits) + ")");
		if (*p > bits)
			fail(t, "prefix length /" + std::to_string(*p) + " is too long for " + (v6 ? "IPv6" : "IPv4") +
			            " (expected /0 to /" + std::to_string(bits) + ")");
		prefix = *p;
	}
	if (v4) {
		const auto a = parse_ipv4(host);
		if (!a)
			fail(t, "invalid IPv4 address '" + std::string(host) + "'");
		const uint32_t host_mask = prefix == 0 ? ~uint32_t(0) : uint32_t((uint64_t(1) << (32 - prefix)) - 1);
		if (*a & host_mask)
			fail(t, "host bits set in '" + std::string(w) + "' (expected the network address " +
			            format_address_v4(*a & ~host_mask) + "/" + std::to_string(prefix) +
			            ", or the host without a prefix)");
		return {{{*a, *a | host_mask}}, {}};
	}
	const auto a = parse_ipv6(host);
	if (!a)
		fail(t, "invalid IPv6 address '" + std::string(host) + "'");
	const u128 host_mask = prefix == 0 ? ~u128(0) : (prefix == 128 ? u128(0) : (u128(1) << (128 - prefix)) - 1);
	if (*a & host_mask)
		fail(t, "host bits set in '" + std::string(w) + "' (expected a network address with the bits after /" +
		            std::to_string(prefix) + " zero, or the host without a prefix)");
	return {{}, {{*a, *a | host_mask}}};
}

std::optional<uint16_t> parser::single_port(std::string_view s) const
{
	if (auto n = parse_number(s, 65535))
		return uint16_t(*n);
	return lookup_service(s, &services_);
}

port_set parser::port_atom(const token& t)
{
	static constexpr std::string_view expected =
		"expected a port number 0-65535, a range, a service name or a class";
	if (t.kind == token_kind::var) {
		const named_set& s = lookup_set(t);
		if (!s.is_ports)
			fail(t, "'$" + std::string(t.text) + "' is an address set (expected a port set)");
		return s.ports;
	}
	if (t.kind != token_kind::word)
		fail(t, std::string(expected) + ", got '" + shown(t) + "'");
	const std::string_view w = t.text;
	const bool digits = w.find_first_not_of("0123456789") == std::string_view::npos;
	if (digits) {
		if (auto n = parse_number(w, 65535))
			return {{uint16_t(*n), uint16_t(*n)}};
		fail(t, "port " + std::string(w) + " out of range (expected 0-65535)");
	}
	if (auto c = lookup_port_class(w))
		return {*c};
	if (auto p = lookup_service(w, &services_))
		return {{*p, *p}};
	// A range: try each '-' (service names contain dashes too, e.g. ftp-data-1000).
	for (size_t dash = w.find('-'); dash != std::string_view::npos; dash = w.find('-', dash + 1)) {
		const auto a = w.substr(0, dash), b = w.substr(dash + 1);
		const auto lo = single_port(a), hi = single_port(b);
		if (lo && hi) {
			if (*lo > *hi)
				fail(t, "port range " + std::string(w) + " is reversed (expected low-high)");
			return {{*lo, *hi}};
		}
		const bool da = !a.empty() && a.find_first_not_of("0123456789") == std::string_view::npos;
		const bool db = !b.empty() && b.find_first_not_of("0123456789") == std::string_view::npos;
		if (da && db)
			fail(t, "port range " + std::string(w) + " out of range (expected ports 0-65535)");
	}
	fail(t, "unknown service '" + std::string(w) + "' (" + std::string(expected) + ")");
}

byte_set parser::proto_atom(const token& t)
{
	if (t.kind == token_kind::word) {
		if (t.text == "any")
			return {full_range<uint8_t>()};
		if (auto n = parse_number(t.text, 255))
			return {{uint8_t(*n), uint8_t(*n)}};
		if (auto p = lookup_protocol(t.text))
			return {{*p, *p}};
	}
	fail(t, "unknown protocol '" + shown(t) + "' (expected tcp, udp, icmp, icmp6, a name such as gre, or a number 0-255)");
}

byte_set parser::icmp_type_atom(const token& t, bool v6)
{
	if (t.kind == token_kind::word) {
		if (t.text == "any")
			return {full_range<uint8_t>()};
		if (auto n = parse_number(t.text, 255))
			return {{uint8_t(*n), uint8_t(*n)}};
		if (auto p = lookup_icmp_type(t.text, v6))
			return {{*p, *p}};
	}
	fail(t, "unknown " + std::string(v6 ? "ICMPv6" : "ICMP") + " type '" + shown(t) +
	            "' (expected a number 0-255 or a name such as echo-request, echo-reply, dest-unreachable, time-exceeded)");
}

byte_set parser::icmp_code_atom(const token& t)
{
	if (t.kind == token_kind::word) {
		if (t.text == "any")
			return {full_range<uint8_t>()};
		if (auto n = parse_number(t.text, 255))
			return {{uint8_t(*n), uint8_t(*n)}};
	}
	fail(t, "invalid ICMP code '" + shown(t) + "' (expected a number 0-255)");
}

} // namespace portcullis::rules::detail
