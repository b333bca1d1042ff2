// libFuzzer target for the rule language (lib/rules): the input is a rule file's text. It is parsed, and
// what parses is compiled the ways the daemon compiles it: the bit-vector classifier of each direction
// (classify::build, backend ours) and the payload database (inspect::database::build). Beyond "no crash,
// no exception, no sanitizer report", it checks the promises of rules.h:
//   - a parse gives a rule set and no errors, or no rule set and at least one error;
//   - each error in the text names it and a line and column inside it (line 1..lines, column 1..length
//     of that line + 1) and says something; an input of valid UTF-8 gives messages and rule texts of
//     valid UTF-8 (they travel in JSON, whose printer throws on anything else);
//   - a rule set that parses compiles: both classifiers and the payload database build;
//   - the compiled classifier agrees with the rule-by-rule reference (classify::matches) and with the
//     rule language's own explanation (rules::explain) on keys at the edges of each rule's ranges.
// Includes are refused (max_include_depth 0) so that the input never names files to read; `app NAME`
// reads the bundles in rules/apps of the source tree.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "classify/classify.h"
#include "promise.h"
#include "inspect/inspect.h"
#include "rules/rules.h"
#include "rules/tuple.h"

using namespace portcullis;

namespace {

constexpr const char* file_name = "/fuzz/input.rules";
// Keys are derived from at most this many rules per direction: enough to reach every shape, few enough
// to keep thousands of inputs a second.
constexpr size_t keyed_rules = 16;

bool valid_utf8(std::string_view s)
{
	for (size_t i = 0; i < s.size();) {
		const auto c = uint8_t(s[i]);
		const size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
		if (n == 0 || i + n > s.size())
			return false;
		for (size_t k = 1; k < n; ++k)
			if ((uint8_t(s[i + k]) & 0xC0) != 0x80)
				return false;
		// Overlong forms, surrogates and code points past U+10FFFF, as a JSON printer refuses them.
		const auto c1 = uint8_t(n > 1 ? s[i + 1] : 0);
		if ((n == 2 && c < 0xC2) || (n == 3 && c == 0xE0 && c1 < 0xA0) || (n == 3 && c == 0xED && c1 >= 0xA0) ||
		    (n == 4 && c == 0xF0 && c1 < 0x90) || (n == 4 && (c > 0xF4 || (c == 0xF4 && c1 >= 0x90))))
			return false;
		i += n;
	}
	return true;
}

std::vector<size_t> line_lengths(std::string_view text)
{
	std::vector<size_t> out;
	size_t start = 0;
	for (size_t i = 0; i <= text.size(); ++i)
		if (i == text.size() || text[i] == '\n') {
			out.push_back(i - start);
			start = i + 1;
		}
	return out;
}

// Values just inside and just outside each range of a field (at most a few ranges per field).
template <class T>
std::vector<T> edges(const std::vector<value_range<T>>& set)
{
	std::vector<T> out;
	for (size_t i = 0; i < set.size() && i < 3; ++i) {
		out.push_back(set[i].lo);
		out.push_back(set[i].hi);
		out.push_back(T(set[i].lo - 1));
		out.push_back(T(set[i].hi + 1));
	}
	return out;
}

template <class T>
T first_or(const std::vector<value_range<T>>& set, T fallback)
{
	return set.empty() ? fallback : set.front().lo;
}

// A key inside the rule, then with one field at a time moved to each edge of that field's ranges.
template <bool v6>
auto keys_for(const tuple_match& m)
{
	using key = std::conditional_t<v6, classify::key_v6, classify::key_v4>;
	key base{};
	if constexpr (v6) {
		base.src = first_or(m.src6, u128(0));
		base.dst = first_or(m.dst6, u128(0));
	} else {
		base.src = first_or(m.src4, 0u);
		base.dst = first_or(m.dst4, 0u);
	}
	base.sport = first_or(m.sport, uint16_t(0));
	base.dport = first_or(m.dport, uint16_t(0));
	base.proto = first_or(m.proto, uint8_t(0));
	base.tcp_flags = m.tcp_flags_value;
	std::vector<key> out{base};
	auto vary = [&](auto member, const auto& set) {
		for (auto v : edges(set)) {
			key k = base;
			k.*member = v;
			out.push_back(k);
		}
	};
	if constexpr (v6) {
		vary(&key::src, m.src6);
		vary(&key::dst, m.dst6);
	} else {
		vary(&key::src, m.src4);
		vary(&key::dst, m.dst4);
	}
	vary(&key::sport, m.sport);
	vary(&key::dport, m.dport);
	vary(&key::proto, m.proto);
	for (const uint8_t flags : {uint8_t(0), uint8_t(0x02), uint8_t(0x12), uint8_t(m.tcp_flags_value ^ m.tcp_flags_mask)}) {
		key k = base;
		k.tcp_flags = flags;
		out.push_back(k);
	}
	return out;
}

template <class Key>
rules::flow_tuple tuple_of(const Key& k, rules::direction d)
{
	rules::flow_tuple f;
	f.v6 = sizeof(Key) == sizeof(classify::key_v6);
	f.src = k.src;
	f.dst = k.dst;
	f.sport = k.sport;
	f.dport = k.dport;
	f.proto = k.proto;
	f.tcp_flags = k.tcp_flags;
	f.dir = d;
	return f;
}

// The classifier's answer for each key against the first rule, in `order`, that classify::matches
// says matches (the reference), and rules::explain's view of that rule and of every rule before it.
template <class Key>
void compare(const classify::classifier& c, const rules::ruleset& rs, const std::vector<uint32_t>& order,
             rules::direction d, const std::vector<Key>& keys)
{
	std::vector<uint32_t> got(keys.size());
	c.classify(keys.data(), uint32_t(keys.size()), got.data());
	for (size_t i = 0; i < keys.size(); ++i) {
		uint32_t want = classify::no_match;
		for (uint32_t r : order) {
			const bool m = classify::matches(rs.rules[r].match, keys[i]);
			REQUIRE(rules::explain(rs.rules[r], tuple_of(keys[i], d)).matched == m);
			if (m) {
				want = r;
				break;
			}
		}
		REQUIRE(got[i] == want);
	}
}

void check_compiles(const rules::ruleset& rs)
{
	for (const rules::direction d : {rules::direction::in, rules::direction::out}) {
		const std::vector<uint32_t> order = rules::rules_for(rs, d);
		std::vector<classify::rule_entry> entries;
		for (uint32_t i : order)
			entries.push_back({i, &rs.rules[i].match});
		const auto ours = classify::build(classify::backend::ours, entries);
		REQUIRE(ours.classifier != nullptr && ours.error.empty());
		std::vector<classify::key_v4> k4;
		std::vector<classify::key_v6> k6;
		for (size_t i = 0; i < order.size() && i < keyed_rules; ++i) {
			const tuple_match& m = rs.rules[order[i]].match;
			if (m.applies_to_ipv4())
				for (const auto& k : keys_for<false>(m))
					k4.push_back(k);
			if (m.applies_to_ipv6())
				for (const auto& k : keys_for<true>(m))
					k6.push_back(k);
		}
		k4.push_back({});
		k6.push_back({});
		compare(*ours.classifier, rs, order, d, k4);
		compare(*ours.classifier, rs, order, d, k6);
	}
	if (rules::has_payload_rules(rs)) {
		const auto db = inspect::database::build(rs);
		REQUIRE(db.db != nullptr && db.error.empty());
	}
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
	const std::string_view text(reinterpret_cast<const char*>(data), size);
	rules::parse_options opts;
	opts.services_file = "";
	opts.max_include_depth = 0;
	opts.apps_dir = PORTCULLIS_SOURCE_ROOT "/rules/apps";
	const rules::parse_result r = rules::parse_string(text, file_name, opts);
	REQUIRE(r.rules.has_value() == r.errors.empty());

	const bool utf8 = valid_utf8(text);
	const std::vector<size_t> lines = line_lengths(text);
	for (const auto& e : r.errors) {
		REQUIRE(!e.message.empty());
		if (utf8)
			REQUIRE(valid_utf8(e.message) && valid_utf8(rules::format(e)));
		if (e.loc.file != file_name)
			continue;  // in an app bundle
		REQUIRE(e.loc.line >= 1 && e.loc.line <= lines.size());
		REQUIRE(e.loc.column >= 1 && e.loc.column <= lines[e.loc.line - 1] + 1);
	}
	if (!r.rules)
		return 0;
	for (const auto& rule : r.rules->rules) {
		REQUIRE(rule.in || rule.out);
		REQUIRE(rule.match.applies_to_ipv4() || rule.match.applies_to_ipv6());
		if (utf8)
			REQUIRE(valid_utf8(rule.text) && valid_utf8(rule.counter));
	}
	check_compiles(*r.rules);
	return 0;
}
