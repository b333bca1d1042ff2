// Random rule sets and keys for differential tests of the classifiers.
//
// Rules draw their addresses from a small pool of base addresses so that they overlap (random 32- or
// 128-bit values would almost never meet), and mix every shape the rule compiler can produce: any,
// prefixes of every length (/0, /1, /31, /32, /64, /127, /128 ...), explicit ranges, unions of several
// prefixes, negations (the complement of a prefix or port range is two ranges), single ports, port
// ranges and lists, protocol sets and TCP-flag tests. Keys are either random, taken from a rule with
// fields nudged to its edges, or adversarial: every range's lo-1, lo, hi, hi+1, and the extremes (0,
// 65535, all-zero and all-ones addresses).
//
// Everything is a pure function of its seed, so a failing case is reproduced by its seed alone.
// Threads: no shared state; call from anywhere.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "classify/classify.h"
#include "rules/match.h"

namespace portcullis::test {

enum class family_mix { v4, v6, both };

struct rule_gen_options {
	size_t count = 100;
	family_mix family = family_mix::v4;
	// Share of address fields that are an explicit, non-prefix range. IPv6 ranges are kept short (they
	// become many prefixes in rte_acl).
	double address_range_share = 0.15;
	// Share of TCP rules that also test flags.
	double flags_share = 0.2;
	// How many base addresses the rules draw from: fewer means more overlap between rules.
	size_t address_pool = 12;
};

std::vector<tuple_match> random_rules(uint64_t seed, const rule_gen_options& options);

// Rule entries over matches; ids are not the indexes (id = 1000 + 3 * index) so that a backend that
// returns an index instead of an id is caught.
std::vector<classify::rule_entry> entries_of(const std::vector<tuple_match>& matches);
inline uint32_t id_of_index(size_t index) { return uint32_t(1000 + 3 * index); }

// Mix of keys taken from rules (inside and just outside their ranges), random keys and extremes.
std::vector<classify::key_v4> random_keys_v4(uint64_t seed, const std::vector<tuple_match>& rules, size_t n);
std::vector<classify::key_v6> random_keys_v6(uint64_t seed, const std::vector<tuple_match>& rules, size_t n);

// For (up to max_rules of) the rules: a key inside the rule, then each field moved to lo-1, lo, hi and
// hi+1 of each of its ranges, plus the all-zero and all-ones keys.
std::vector<classify::key_v4> adversarial_keys_v4(const std::vector<tuple_match>& rules, size_t max_rules = 300);
std::vector<classify::key_v6> adversarial_keys_v6(const std::vector<tuple_match>& rules, size_t max_rules = 300);

// Readable forms for failure messages: "proto 6 src 10.0.0.0/8 dst any sport any dport 80,443 flags 0x02/0x12".
std::string describe(const tuple_match& m);
std::string describe(const classify::key_v4& k);
std::string describe(const classify::key_v6& k);
std::string format_ipv4(uint32_t a);
std::string format_ipv6(u128 a);

} // namespace portcullis::test
