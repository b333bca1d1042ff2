// The compiled form of one rule's match, as the classifiers see it.
//
// Every field is a union of inclusive ranges: sorted by lo, disjoint, non-adjacent, never empty for a
// rule that can match in that family. The rule compiler (rules.h) produces these from what the operator
// wrote (CIDRs, negations, sets, service names, port classes); the classifiers (classify/) consume them.
// A rule applies to IPv4 packets iff src4 and dst4 are both non-empty, and to IPv6 iff src6 and dst6
// are. Values are numeric, host order: 198.18.0.1 is 0xC6120001.
//
// ICMP and ICMPv6 carry their type in the sport field and their code in dport (the packet parser fills
// keys the same way), so "icmp type 8" is proto 1, sport 8..8.
#pragma once

#include <cstdint>
#include <vector>

namespace portcullis {

__extension__ typedef unsigned __int128 u128;

template <class T>
struct value_range {
	T lo;
	T hi;
	friend bool operator==(const value_range&, const value_range&) = default;
};

struct tuple_match {
	std::vector<value_range<uint32_t>> src4, dst4;
	std::vector<value_range<u128>> src6, dst6;
	std::vector<value_range<uint16_t>> sport, dport;
	std::vector<value_range<uint8_t>> proto;
	// TCP flags test: (flags & tcp_flags_mask) == tcp_flags_value. Mask 0 means any packet.
	// Only meaningful for TCP; a rule that tests flags has proto exactly 6.
	uint8_t tcp_flags_value = 0;
	uint8_t tcp_flags_mask = 0;
	// Large-set test: (key.set_bits & set_bits_mask) == set_bits_value. Bit i of a key's set_bits says
	// whether the packet's address is in the rule set's large-set test i (an address set from a file,
	// looked up in lib/sets before classification, so the set's entries never enter the classifier).
	// Mask 0 means any packet.
	uint8_t set_bits_value = 0;
	uint8_t set_bits_mask = 0;

	bool applies_to_ipv4() const { return !src4.empty() && !dst4.empty(); }
	bool applies_to_ipv6() const { return !src6.empty() && !dst6.empty(); }
};

// Helpers for building and testing matches.
template <class T>
constexpr value_range<T> full_range() { return {T(0), T(~T(0))}; }

template <class T>
bool contains(const std::vector<value_range<T>>& set, T v)
{
	for (const auto& r : set)
		if (r.lo <= v && v <= r.hi)
			return true;
	return false;
}

// Sorts, merges overlapping and adjacent ranges. Used by the compiler and by tests that generate sets.
template <class T>
void normalize(std::vector<value_range<T>>& set);

} // namespace portcullis

#include "rules/match_impl.h"
