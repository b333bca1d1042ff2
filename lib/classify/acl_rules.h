// Our rules as rte_acl rules, for acl.cc: the input layouts, the field definitions and the rule expansion.
// Each rule becomes the cross product of its fields' ranges (see acl.h). Private to lib/classify.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <rte_acl.h>

#include "classify/classify.h"

namespace portcullis::classify::acl_rules {

// rte_acl reads the input as bytes: the first field is one byte consumed on its own, every later
// "input index" is a group of 4 consecutive bytes read at once. So the layouts below put the protocol
// first, pad to 4, and give every group exactly 4 bytes (ports share one group).
struct acl_input_v4 {
	uint8_t proto;
	uint8_t pad[3];
	uint32_t src;  // big-endian
	uint32_t dst;
	uint16_t sport;
	uint16_t dport;
	uint32_t flags;  // big-endian: TCP flags in the low byte, set bits in the next (see field_modes)
};
static_assert(sizeof(acl_input_v4) == 20);

struct acl_input_v6 {
	uint8_t proto;
	uint8_t pad[3];
	uint8_t src[16];  // network order: word i (most significant first) at src + 4i
	uint8_t dst[16];
	uint16_t sport;
	uint16_t dport;
	uint32_t flags;
};
static_assert(sizeof(acl_input_v6) == 44);

enum : uint8_t { f4_proto, f4_src, f4_dst, f4_sport, f4_dport, f4_flags, f4_count };
enum : uint8_t {
	f6_proto,
	f6_src0,
	f6_dst0 = f6_src0 + 4,
	f6_sport = f6_dst0 + 4,
	f6_dport,
	f6_flags,
	f6_count
};

template <int N>
struct acl_rule {
	rte_acl_rule_data data;
	rte_acl_field field[N];
};

// Whole-set choices made before expanding: dpdk-test-acl matches the protocol as a BITMASK and IPv4
// addresses as MASK; we do the same when the rules allow it (ClassBench always does), so the baseline
// trie is the one DPDK's own tool measures, and fall back to RANGE otherwise. The flags group costs four
// more trie steps per lookup, so it only exists when some rule tests flags or set bits. Both tests are
// one 32-bit BITMASK field: (word & mask) == value with the TCP flags in bits 0-7 and the set bits in
// bits 8-15 of word, mask and value, so a rule that tests both is still one rte_acl rule and the set
// bits cost no trie step of their own.
struct field_modes {
	bool proto_bitmask = true;
	bool addr_mask = true;  // IPv4 only; IPv6 is always prefixes on MASK words
	bool flags = false;     // some rule tests TCP flags or set bits
};

// The flags word of an input or a rule (see field_modes), host order.
inline uint32_t flags_word(uint8_t tcp_flags, uint8_t set_bits) { return uint32_t(set_bits) << 8 | tcp_flags; }

// Which field types a family's rules allow (see field_modes).
field_modes choose_modes(std::span<const rule_entry> rules, bool v6);

// The rte_acl field definitions for a family under the chosen modes.
rte_acl_config config_v4(const field_modes& modes);
rte_acl_config config_v6(const field_modes& modes);

// Every rule that can match in the family, as rte_acl rules in priority order (rule index i gets
// priority RTE_ACL_MAX_PRIORITY - i, userdata id + 1). Fails when the expansion grows too large.
// Gives up (false, `abandoned` set) when cancel is seen set, every cancel_check_events rules.
bool expand_v4(std::span<const rule_entry> rules, const field_modes& modes, std::vector<acl_rule<f4_count>>& out,
               std::string& error, const std::atomic<bool>* cancel, bool& abandoned);
bool expand_v6(std::span<const rule_entry> rules, const field_modes& modes, std::vector<acl_rule<f6_count>>& out,
               std::string& error, const std::atomic<bool>* cancel, bool& abandoned);

} // namespace portcullis::classify::acl_rules
