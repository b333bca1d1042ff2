// Shared by the classifier tests: build a backend, run keys through it in bursts, compare with the
// brute-force reference and describe the first disagreement readably (seed, key, expected and actual
// rule, and the whole rule set when it is small). Also the large-set layer over random_rules.h: set-bits
// tests on some rules and set bits on keys, chosen against the rules so that they decide the answer.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "classify/classify.h"
#include "random_rules.h"

namespace portcullis::test {

// How to build the classifier under test: classify::build(backend) or a backend's own builder with
// options (the portable bit-vector path, a fixed rte_acl method).
struct variant {
	std::string name;
	std::function<classify::build_result(std::span<const classify::rule_entry>)> build;
	// Larger rule sets skip this variant: it re-checks a path the main variant already covers (rte_acl's
	// scalar method reads the same trie as its SIMD ones) and its build is the slow part of the suite.
	size_t max_rules = SIZE_MAX;
};

std::vector<variant> all_variants();

// Gives about share of the rules a large-set test (set_bits_mask of one to three bits, occasionally
// more; the value "in the set", "not in the set" or a mix), drawn from seed.
void add_set_tests(uint64_t seed, std::vector<tuple_match>& rules, double share);

// Sets each key's set_bits: for a key that some rules match on their other fields, the bits pass or
// (about a third of the time) fail one of the first few such rules' set tests, so that the answer turns
// on the set bits and on rule order; other keys get random bits, 0 or 0xff.
void add_set_bits(uint64_t seed, const std::vector<tuple_match>& rules, std::vector<classify::key_v4>& keys);
void add_set_bits(uint64_t seed, const std::vector<tuple_match>& rules, std::vector<classify::key_v6>& keys);

// describe() of random_rules.h with the set test or the set bits appended when there are any.
std::string describe_with_sets(const tuple_match& m);
template <class Key>
std::string describe_with_sets(const Key& k)
{
	char bits[16];
	std::snprintf(bits, sizeof(bits), " sets 0x%02x", unsigned(k.set_bits));
	return describe(k) + bits;
}

// Classifies keys through c in bursts of the given size (the last one short).
template <class Key>
std::vector<uint32_t> classify_all(const classify::classifier& c, const std::vector<Key>& keys, uint32_t burst)
{
	std::vector<uint32_t> out(keys.size(), 0xdeadbeef);
	for (size_t i = 0; i < keys.size(); i += burst) {
		const uint32_t n = uint32_t(std::min<size_t>(burst, keys.size() - i));
		c.classify(keys.data() + i, n, out.data() + i);
	}
	return out;
}

// Empty when got agrees with the reference everywhere, otherwise a report of the first mismatch and a
// count of all of them.
template <class Key>
std::string compare_results(const std::string& what, const std::vector<tuple_match>& rules,
                            const std::vector<Key>& keys, const std::vector<uint32_t>& expected,
                            const std::vector<uint32_t>& got)
{
	size_t mismatches = 0, first = 0;
	for (size_t i = 0; i < keys.size(); ++i)
		if (expected[i] != got[i] && mismatches++ == 0)
			first = i;
	if (mismatches == 0)
		return {};
	auto rule_text = [&](uint32_t id) -> std::string {
		if (id == classify::no_match)
			return "no_match";
		for (size_t i = 0; i < rules.size(); ++i)
			if (id_of_index(i) == id)
				return "rule #" + std::to_string(i) + " (id " + std::to_string(id) + "): " +
				       describe_with_sets(rules[i]);
		return "unknown id " + std::to_string(id);
	};
	std::string out = what + ": " + std::to_string(mismatches) + " of " + std::to_string(keys.size()) +
	                  " keys disagree with linear; first at key #" + std::to_string(first) + "\n  key:      " +
	                  describe_with_sets(keys[first]) + "\n  expected: " + rule_text(expected[first]) +
	                  "\n  got:      " + rule_text(got[first]) + "\n";
	if (rules.size() <= 24) {
		out += "  rule set (" + std::to_string(rules.size()) + " rules):\n";
		for (size_t i = 0; i < rules.size(); ++i)
			out += "    #" + std::to_string(i) + " " + describe_with_sets(rules[i]) + "\n";
	}
	return out;
}

} // namespace portcullis::test
