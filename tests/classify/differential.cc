#include "differential.h"

#include <random>

#include "classify/acl.h"
#include "classify/bitvector.h"

namespace portcullis::test {
namespace {

// How many of a key's 5-tuple matches add_set_bits chooses from: the first rule is the one a wrong
// set test would wrongly let through or wrongly skip, the next few are where the answer moves to.
constexpr size_t candidate_rules = 4;

uint8_t random_mask(std::mt19937_64& rng)
{
	// Real rule sets test a few sets each, so mostly one to three bits; now and then any byte.
	if (rng() % 8 == 0)
		return uint8_t(rng() | 1);
	uint8_t mask = 0;
	for (uint64_t bits = 1 + rng() % 3; bits > 0; --bits)
		mask = uint8_t(mask | 1u << (rng() % 8));
	return mask;
}

template <class Key>
void add_bits(uint64_t seed, const std::vector<tuple_match>& rules, std::vector<Key>& keys)
{
	std::mt19937_64 rng(seed ^ 0x7365747321ull);
	// The rules without their set tests: which rules a key matches on everything else.
	std::vector<tuple_match> stripped = rules;
	for (auto& m : stripped)
		m.set_bits_mask = m.set_bits_value = 0;
	for (Key& k : keys) {
		const tuple_match* found[candidate_rules];
		size_t n = 0;
		for (size_t r = 0; r < rules.size() && n < candidate_rules; ++r)
			if (classify::matches(stripped[r], k))
				found[n++] = &rules[r];
		const uint8_t noise = uint8_t(rng());
		if (n == 0 || rng() % 8 == 0) {
			const uint8_t extremes[] = {0, 0xff, noise, noise};
			k.set_bits = extremes[rng() % 4];
			continue;
		}
		// The first candidate most often: it is the one whose set test decides whether the answer is
		// that rule or a later one.
		const tuple_match& m = *found[rng() % 2 == 0 ? 0 : rng() % n];
		k.set_bits = uint8_t(m.set_bits_value | (noise & ~m.set_bits_mask));
		if (m.set_bits_mask != 0 && rng() % 3 == 0) {
			// Fail the test by exactly one of its bits.
			uint8_t bit;
			do
				bit = uint8_t(1u << (rng() % 8));
			while (!(m.set_bits_mask & bit));
			k.set_bits = uint8_t(k.set_bits ^ bit);
		}
	}
}

} // namespace

void add_set_tests(uint64_t seed, std::vector<tuple_match>& rules, double share)
{
	std::mt19937_64 rng(seed ^ 0x6d61736b73ull);
	for (auto& m : rules) {
		if (double(rng() % 1000) >= share * 1000)
			continue;
		m.set_bits_mask = random_mask(rng);
		switch (rng() % 4) {
		case 0: m.set_bits_value = m.set_bits_mask; break;  // in every set tested
		case 1: m.set_bits_value = 0; break;                // in none of them
		default: m.set_bits_value = uint8_t(rng() & m.set_bits_mask); break;
		}
	}
}

void add_set_bits(uint64_t seed, const std::vector<tuple_match>& rules, std::vector<classify::key_v4>& keys)
{
	add_bits(seed, rules, keys);
}

void add_set_bits(uint64_t seed, const std::vector<tuple_match>& rules, std::vector<classify::key_v6>& keys)
{
	add_bits(seed, rules, keys);
}

std::string describe_with_sets(const tuple_match& m)
{
	if (m.set_bits_mask == 0 && m.set_bits_value == 0)
		return describe(m);
	char test[32];
	std::snprintf(test, sizeof(test), " sets 0x%02x/0x%02x", unsigned(m.set_bits_value), unsigned(m.set_bits_mask));
	return describe(m) + test;
}

std::vector<variant> all_variants()
{
	using namespace classify;
	return {
		{"ours", [](std::span<const rule_entry> r) { return build(backend::ours, r); }},
		{"ours-portable",
		 [](std::span<const rule_entry> r) { return build_bitvector(r, bitvector_options{.allow_avx512 = false}); }},
		// Every range-index layout on every rule set, whatever the build would choose for it: a bare
		// B-tree (top 0: IPv4 in 32-bit nodes, ports in 16-bit ones), small top tables with trees below
		// (8 and 12 bits), and the default (16). Both lookup paths read the 32-bit nodes.
		{"ours-top0",
		 [](std::span<const rule_entry> r) { return build_bitvector(r, bitvector_options{.top_bits = 0}); }},
		{"ours-top8",
		 [](std::span<const rule_entry> r) { return build_bitvector(r, bitvector_options{.top_bits = 8}); }},
		{"ours-top16",
		 [](std::span<const rule_entry> r) { return build_bitvector(r, bitvector_options{.top_bits = 16}); }},
		{"ours-portable-top0",
		 [](std::span<const rule_entry> r) {
			 return build_bitvector(r, bitvector_options{.allow_avx512 = false, .top_bits = 0});
		 }},
		{"ours-portable-top12",
		 [](std::span<const rule_entry> r) {
			 return build_bitvector(r, bitvector_options{.allow_avx512 = false, .top_bits = 12});
		 }},
		{"rte_acl", [](std::span<const rule_entry> r) { return build(backend::rte_acl, r); }},
		{"rte_acl-scalar", [](std::span<const rule_entry> r) { return build_rte_acl(r, acl_method::scalar); },
		 400},
	};
}

} // namespace portcullis::test
