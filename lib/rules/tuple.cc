// Test flows for the tools: parses a typed 5-tuple and explains, field by field, whether a rule matches (tuple.h).
#include "rules/tuple.h"

#include <arpa/inet.h>

#include "rules/names.h"

namespace portcullis::rules {
namespace {

using namespace detail;

struct word {
	std::string_view text;
	uint32_t column;
};

std::vector<word> split(std::string_view s)
{
	std::vector<word> out;
	size_t i = 0;
	while (i < s.size()) {
		while (i < s.size() && (s[i] == ' ' || s[i] == '\t'))
			++i;
		const size_t b = i;
		while (i < s.size() && s[i] != ' ' && s[i] != '\t')
			++i;
		if (i > b)
			out.push_back({s.substr(b, i - b), uint32_t(b + 1)});
	}
	return out;
}

struct flow_error {
	uint32_t column;
	std::string message;
};

struct endpoint {
	bool v6;
	u128 addr;
	std::optional<uint16_t> port;
};

endpoint parse_endpoint(const word& w)
{
	std::string_view s = w.text;
	std::string_view host = s, port;
	bool bracketed = false;
	bool port_given = false;  // a ':' after the address: a port must follow (a bare IPv6 address may end in ':')
	if (!s.empty() && s[0] == '[') {
		const auto close = s.find(']');
		if (close == std::string_view::npos)
			throw flow_error{w.column, "missing ']' after the IPv6 address"};
		host = s.substr(1, close - 1);
		bracketed = true;
		if (close + 1 < s.size()) {
			if (s[close + 1] != ':')
				throw flow_error{w.column, "expected ':PORT' after ']'"};
			port = s.substr(close + 2);
			port_given = true;
		}
	} else if (const auto colon = s.find(':'); colon != std::string_view::npos && s.find(':', colon + 1) == std::string_view::npos) {
		host = s.substr(0, colon);
		port = s.substr(colon + 1);
		port_given = true;
	}
	endpoint e{};
	const bool looks_v6 = bracketed || host.find(':') != std::string_view::npos;
	if (looks_v6) {
		const auto a = parse_ipv6(host);
		if (!a)
			throw flow_error{w.column, "invalid IPv6 address '" + std::string(host) + "'"};
		e = {true, *a, std::nullopt};
	} else {
		const auto a = parse_ipv4(host);
		if (!a)
			throw flow_error{w.column, "expected an address such as 198.18.0.5:40000 or [2001:2::5]:40000, got '" +
			                               std::string(s) + "'"};
		e = {false, *a, std::nullopt};
	}
	if (port_given) {
		if (auto n = parse_number(port, 65535))
			e.port = uint16_t(*n);
		else if (auto p = lookup_service(port, nullptr))
			e.port = *p;
		else
			throw flow_error{w.column, "invalid port '" + std::string(port) + "' (expected 0-65535 or a service name)"};
	}
	return e;
}

flow_tuple parse(std::string_view text)
{
	const auto words = split(text);
	size_t i = 0;
	auto need = [&](std::string_view what) -> const word& {
		if (i >= words.size())
			throw flow_error{uint32_t(text.size() + 1), "expected " + std::string(what) + ", got end of line"};
		return words[i++];
	};
	flow_tuple f;
	const word& p = need("a protocol (tcp, udp, icmp, icmp6 or a number)");
	if (auto n = parse_number(p.text, 255))
		f.proto = uint8_t(*n);
	else if (auto q = lookup_protocol(p.text))
		f.proto = *q;
	else
		throw flow_error{p.column, "unknown protocol '" + std::string(p.text) + "' (expected tcp, udp, icmp, icmp6 or a number 0-255)"};
	const bool has_ports = f.proto == 6 || f.proto == 17;
	const word& sw = need("a source address");
	const endpoint s = parse_endpoint(sw);
	const word& arrow = need("'->'");
	if (arrow.text != "->")
		throw flow_error{arrow.column, "expected '->' between source and destination, got '" + std::string(arrow.text) + "'"};
	const word& dw = need("a destination address");
	const endpoint d = parse_endpoint(dw);
	if (s.v6 != d.v6)
		throw flow_error{dw.column, "source and destination must be the same address family"};
	for (const auto* e : {&s, &d})
		if (e->port && !has_ports)
			throw flow_error{e == &s ? sw.column : dw.column,
			                 "ports need tcp or udp (for ICMP write 'type T code C' after the direction)"};
	f.v6 = s.v6;
	f.src = s.addr;
	f.dst = d.addr;
	f.sport = s.port.value_or(0);
	f.dport = d.port.value_or(0);
	const word& dir = need("a direction (in or out)");
	if (dir.text == "in")
		f.dir = direction::in;
	else if (dir.text == "out")
		f.dir = direction::out;
	else
		throw flow_error{dir.column, "expected a direction (in or out), got '" + std::string(dir.text) + "'"};
	if (f.proto == 6)
		f.tcp_flags = 0x02;  // SYN: see the header
	const bool icmp = f.proto == 1 || f.proto == 58;
	while (i < words.size()) {
		const word& k = words[i++];
		if (k.text == "flags" && f.proto == 6) {
			const word& v = need("TCP flags such as S or SA");
			const auto fl = parse_tcp_flags(v.text);
			if (!fl)
				throw flow_error{v.column, "invalid TCP flags '" + std::string(v.text) + "' (expected letters FSRPAUEW)"};
			f.tcp_flags = *fl;
		} else if (k.text == "type" && icmp) {
			const word& v = need("an ICMP type");
			if (auto n = parse_number(v.text, 255))
				f.sport = uint16_t(*n);
			else if (auto t = lookup_icmp_type(v.text, f.proto == 58))
				f.sport = *t;
			else
				throw flow_error{v.column, "unknown ICMP type '" + std::string(v.text) + "'"};
		} else if (k.text == "code" && icmp) {
			const word& v = need("an ICMP code");
			const auto n = parse_number(v.text, 255);
			if (!n)
				throw flow_error{v.column, "invalid ICMP code '" + std::string(v.text) + "' (expected 0-255)"};
			f.dport = uint16_t(*n);
		} else {
			throw flow_error{k.column, "unexpected '" + std::string(k.text) + "' (expected " +
			                               (f.proto == 6 ? "flags or end of line" : icmp ? "type, code or end of line" : "end of line") + ")"};
		}
	}
	return f;
}

template <class T>
bool in_set(const std::vector<value_range<T>>& s, T v) { return contains(s, v); }

} // namespace

tuple_parse_result parse_tuple(std::string_view text)
{
	tuple_parse_result r;
	try {
		r.value = parse(text);
	} catch (const flow_error& e) {
		r.error = e.message;
		r.column = e.column;
	} catch (const std::exception& e) {
		r.error = e.what();
		r.column = 1;
	}
	return r;
}

std::string format_protocol(uint8_t proto)
{
	switch (proto) {
	case 6: return "tcp";
	case 17: return "udp";
	case 1: return "icmp";
	case 58: return "icmp6";
	default: return std::to_string(proto);
	}
}

std::string format_address(bool v6, u128 a)
{
	if (!v6) {
		const auto x = uint32_t(a);
		return std::to_string(x >> 24) + "." + std::to_string((x >> 16) & 255) + "." + std::to_string((x >> 8) & 255) +
		       "." + std::to_string(x & 255);
	}
	in6_addr b{};
	for (int i = 15; i >= 0; --i, a >>= 8)
		b.s6_addr[i] = uint8_t(a);
	char buf[INET6_ADDRSTRLEN];
	inet_ntop(AF_INET6, &b, buf, sizeof buf);
	return buf;
}

std::string format(const flow_tuple& f)
{
	const bool ports = f.proto == 6 || f.proto == 17;
	auto ep = [&](u128 a, uint16_t p) {
		std::string s = format_address(f.v6, a);
		if (f.v6 && ports)
			s = "[" + s + "]";
		return ports ? s + ":" + std::to_string(p) : s;
	};
	std::string s = protocol_name(f.proto) + " " + ep(f.src, f.sport) + " -> " + ep(f.dst, f.dport) + " " +
	                std::string(direction_name(f.dir));
	if (f.proto == 6 && f.tcp_flags != 0x02)
		s += " flags " + format_tcp_flags(f.tcp_flags);
	if (f.proto == 1 || f.proto == 58)
		s += " type " + std::to_string(f.sport) + " code " + std::to_string(f.dport);
	return s;
}

match_explanation explain(const rule& r, const flow_tuple& f, uint8_t set_bits)
{
	match_explanation e;
	auto step = [&](bool ok, std::string what, const std::string& value, const std::string& written) {
		e.reasons.push_back(what + " " + value + (ok ? " in " : " not in ") + written);
		return ok;
	};
	if (!r.applies(f.dir)) {
		e.reasons.push_back("direction " + std::string(direction_name(f.dir)) + ": rule applies only to " +
		                    (r.in ? "in" : "out"));
		return e;
	}
	e.reasons.push_back("direction " + std::string(direction_name(f.dir)) + ": rule applies to " +
	                    (r.in && r.out ? "both directions" : std::string(direction_name(f.dir))));
	if (f.v6 ? !r.match.applies_to_ipv6() : !r.match.applies_to_ipv4()) {
		e.reasons.push_back(std::string("rule does not apply to ") + (f.v6 ? "IPv6" : "IPv4"));
		return e;
	}
	const bool icmp = f.proto == 1 || f.proto == 58;
	if (!step(in_set(r.match.proto, f.proto), "proto", protocol_name(f.proto), r.written.proto))
		return e;
	const bool src_ok = f.v6 ? in_set(r.match.src6, f.src) : in_set(r.match.src4, uint32_t(f.src));
	if (!step(src_ok, "src", format_address(f.v6, f.src), r.written.src))
		return e;
	if (!step(in_set(r.match.sport, f.sport), icmp ? "icmp-type" : "sport", std::to_string(f.sport),
	          icmp ? (r.written.icmp_type.empty() ? "any" : r.written.icmp_type) : r.written.sport))
		return e;
	const bool dst_ok = f.v6 ? in_set(r.match.dst6, f.dst) : in_set(r.match.dst4, uint32_t(f.dst));
	if (!step(dst_ok, "dst", format_address(f.v6, f.dst), r.written.dst))
		return e;
	if (!step(in_set(r.match.dport, f.dport), icmp ? "code" : "dport", std::to_string(f.dport),
	          icmp ? (r.written.icmp_code.empty() ? "any" : r.written.icmp_code) : r.written.dport))
		return e;
	if (r.match.set_bits_mask) {
		const bool ok = (set_bits & r.match.set_bits_mask) == r.match.set_bits_value;
		e.reasons.push_back(std::string("sets: ") + (ok ? "the addresses are " : "an address is not ") +
		                    "in or out of the rule's sets as it asks (from " + r.written.src + ", to " +
		                    r.written.dst + ")");
		if (!ok)
			return e;
	}
	if (r.match.tcp_flags_mask) {
		const bool ok = (f.tcp_flags & r.match.tcp_flags_mask) == r.match.tcp_flags_value;
		e.reasons.push_back("flags " + format_tcp_flags(f.tcp_flags) + (ok ? " match " : " do not match ") +
		                    r.written.flags);
		if (!ok)
			return e;
	}
	e.matched = true;
	return e;
}

std::optional<std::vector<std::string>> mismatches(const rule& r, const flow_tuple& f, uint8_t set_bits)
{
	if (!r.applies(f.dir) || (f.v6 ? !r.match.applies_to_ipv6() : !r.match.applies_to_ipv4()))
		return std::nullopt;
	std::vector<std::string> out;
	auto check = [&](bool ok, const std::string& what, const std::string& value, const std::string& written) {
		if (!ok)
			out.push_back(what + " " + value + " not in " + written);
	};
	const bool icmp = f.proto == 1 || f.proto == 58;
	// Ports (or ICMP type and code) mean something only under the rule's protocol: not compared across.
	const bool proto_ok = in_set(r.match.proto, f.proto);
	check(proto_ok, "proto", protocol_name(f.proto), r.written.proto);
	check(f.v6 ? in_set(r.match.src6, f.src) : in_set(r.match.src4, uint32_t(f.src)), "src", format_address(f.v6, f.src),
	      r.written.src);
	if (proto_ok)
		check(in_set(r.match.sport, f.sport), icmp ? "icmp-type" : "sport", std::to_string(f.sport),
		      icmp ? (r.written.icmp_type.empty() ? "any" : r.written.icmp_type) : r.written.sport);
	check(f.v6 ? in_set(r.match.dst6, f.dst) : in_set(r.match.dst4, uint32_t(f.dst)), "dst", format_address(f.v6, f.dst),
	      r.written.dst);
	if (proto_ok)
		check(in_set(r.match.dport, f.dport), icmp ? "code" : "dport", std::to_string(f.dport),
		      icmp ? (r.written.icmp_code.empty() ? "any" : r.written.icmp_code) : r.written.dport);
	if (r.match.set_bits_mask && (set_bits & r.match.set_bits_mask) != r.match.set_bits_value)
		out.push_back("sets: an address is not in or out of the rule's sets as it asks (from " + r.written.src + ", to " +
		              r.written.dst + ")");
	if (r.match.tcp_flags_mask && (f.tcp_flags & r.match.tcp_flags_mask) != r.match.tcp_flags_value)
		out.push_back("flags " + format_tcp_flags(f.tcp_flags) + " do not match " + r.written.flags);
	return out;
}

} // namespace portcullis::rules
