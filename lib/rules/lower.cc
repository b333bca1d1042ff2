// Lowering: value expressions ({ lists }, !negation) -> unions of ranges; a rule's fields -> its tuple_match.
//
// Every set here is normalized (match.h): sorted, disjoint, non-adjacent. Negation complements within
// the field's whole range, per address family for addresses (docs/rules.md, "Negation").
#include <algorithm>
#include <utility>

#include "rules/stages.h"

namespace portcullis::rules::detail {
namespace {

template <class T>
range_set<T> complement(const range_set<T>& s)  // s normalized
{
	range_set<T> out;
	T next = 0;
	bool done = false;  // next would have wrapped past the maximum
	for (const auto& r : s) {
		if (r.lo > next)
			out.push_back({next, T(r.lo - 1)});
		if (r.hi == T(~T(0))) {
			done = true;
			break;
		}
		next = T(r.hi + 1);
	}
	if (!done)
		out.push_back({next, T(~T(0))});
	return out;
}

template <class T>
range_set<T> unite(range_set<T> a, const range_set<T>& b)
{
	a.insert(a.end(), b.begin(), b.end());
	normalize(a);
	return a;
}

addr_set unite(addr_set a, const addr_set& b) { return {unite(a.v4, b.v4), unite(a.v6, b.v6)}; }
// `!X` is every address, of either family, that X does not cover (docs/rules.md, "Negation").
addr_set complement(const addr_set& a) { return {complement(a.v4), complement(a.v6)}; }

std::string families(const addr_set& a)
{
	if (a.v4.empty() && a.v6.empty())
		return "empty";
	if (a.v6.empty())
		return "IPv4 only";
	if (a.v4.empty())
		return "IPv6 only";
	return "IPv4 and IPv6";
}

} // namespace

// ---- value expressions: [!] atom | [!] { expr, ... } ----------------------------------------

template <class Set, class Atom>
Set parser::value_expr(Atom&& atom, std::string_view what)
{
	if (at_end())
		fail(peek(), "expected " + std::string(what) + ", got end of line");
	bool negate = false;
	if (peek().kind == token_kind::bang) {
		next();
		negate = true;
		if (at_end())
			fail(peek(), "expected " + std::string(what) + " after '!', got end of line");
	}
	Set s;
	if (peek().kind == token_kind::lbrace) {
		const token& open = next();
		for (;;) {
			if (at_end())
				fail(peek(), "missing '}' to close the list opened at line " + std::to_string(open.line) +
				                 " column " + std::to_string(open.column));
			if (peek().kind == token_kind::rbrace) {
				next();
				break;
			}
			if (peek().kind == token_kind::comma) {  // commas are optional separators
				next();
				continue;
			}
			s = unite(std::move(s), value_expr<Set>(atom, what));
		}
	} else {
		s = atom(next());
	}
	return negate ? complement(s) : s;
}

addr_set parser::address_expr()
{
	return value_expr<addr_set>([this](const token& t) { return address_atom(t); }, "an address");
}

port_set parser::port_expr()
{
	return value_expr<port_set>([this](const token& t) { return port_atom(t); }, "a port");
}

byte_set parser::proto_expr()
{
	return value_expr<byte_set>([this](const token& t) { return proto_atom(t); }, "a protocol");
}

byte_set parser::icmp_type_expr(bool v6)
{
	return value_expr<byte_set>([this, v6](const token& c) { return icmp_type_atom(c, v6); }, "an ICMP type");
}

byte_set parser::icmp_code_expr()
{
	return value_expr<byte_set>([this](const token& c) { return icmp_code_atom(c); }, "an ICMP code");
}

// ---- a rule's fields to its tuple_match -------------------------------------------------------

void parser::lower_match(rule& r, const token& act, rule_fields f)
{
	// Which families can this rule match?
	bool v4 = f.want_v4, v6 = f.want_v6;
	std::string proto_family;
	if (single_protocol(f.proto) == 1) {
		v6 = false;
		proto_family = "protocol icmp is IPv4 only";
	} else if (single_protocol(f.proto) == 58) {
		v4 = false;
		proto_family = "protocol icmp6 is IPv6 only";
	}
	if (v4) {
		r.match.src4 = f.src.v4;
		r.match.dst4 = f.dst.v4;
	}
	if (v6) {
		r.match.src6 = f.src.v6;
		r.match.dst6 = f.dst.v6;
	}
	if (!r.match.applies_to_ipv4() && !r.match.applies_to_ipv6()) {
		std::string why = "source is " + families(f.src) + ", destination " + families(f.dst);
		if (!proto_family.empty())
			why += ", " + proto_family;
		if (!f.family_word.empty())
			why += ", '" + f.family_word + "' limits it to IPv" + (f.family_word == "inet" ? "4" : "6");
		fail(act, "rule can never match: " + why);
	}
	if (f.src_set.set) {
		const uint8_t bit = set_test_bit(act, f.src_set, false);
		r.match.set_bits_mask |= bit;
		r.match.set_bits_value |= f.src_set.negate ? 0 : bit;
	}
	if (f.dst_set.set) {
		const uint8_t bit = set_test_bit(act, f.dst_set, true);
		r.match.set_bits_mask |= bit;
		r.match.set_bits_value |= f.dst_set.negate ? 0 : bit;
	}
	r.match.sport = std::move(f.sport);
	r.match.dport = std::move(f.dport);
	r.match.proto = std::move(f.proto);
}

uint32_t parser::ruleset_set(named_set& s)
{
	if (s.file_index < 0) {
		const auto it = std::find_if(sets_.begin(), sets_.end(), [&](const auto& kv) { return &kv.second == &s; });
		address_set out;
		out.name = it->first;
		out.file = s.file;
		out.v4 = std::move(s.addrs.v4);
		out.v6 = std::move(s.addrs.v6);
		out.entries = s.entries;
		out.loc = s.loc;
		out.dynamic = s.is_dynamic;
		out.max_adds = s.max_adds;
		out.dns_names = s.dns_names;
		s.file_index = int32_t(rs_.sets.size());
		rs_.sets.push_back(std::move(out));
	}
	return uint32_t(s.file_index);
}

uint8_t parser::set_test_bit(const token& act, const file_set_use& use, bool dst)
{
	named_set& s = *use.set;
	ruleset_set(s);
	const set_test test{uint32_t(s.file_index), dst};
	auto& tests = rs_.set_tests;
	size_t i = size_t(std::find(tests.begin(), tests.end(), test) - tests.begin());
	if (i == tests.size()) {
		if (tests.size() == max_set_tests)
			fail(act, "too many set-file tests: one rule set may test at most " + std::to_string(max_set_tests) +
			              " (set, from|to) pairs, and this rule adds a ninth");
		tests.push_back(test);
	}
	return uint8_t(1u << i);
}

} // namespace portcullis::rules::detail
