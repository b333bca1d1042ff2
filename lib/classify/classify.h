// Packet classification: "which rule, in priority order, first matches this 5-tuple?"
//
// A classifier is built once, off the data path, from an ordered list of rules (index 0 = highest
// priority) and is immutable afterwards: any number of threads may call classify() on it at once.
// Build may allocate, take time and fail (errors as values); classify() allocates nothing, throws
// nothing and takes bursts of keys so that implementations can interleave memory accesses across them.
//
// Three implementations sit behind this interface:
//   backend::ours     the compiled bit-vector classifier (bitvector.h), the one the dataplane uses;
//   backend::rte_acl  DPDK's rte_acl, the baseline we measure against and a fallback;
//   backend::linear   brute force over the rule list, the reference the tests compare against.
// A burst may hold any number of keys; implementations split it internally.
//
// Cancelling a build: given a cancel flag, a builder looks at it between its steps (ours: before each
// partition and each field cut, every cancel_check_events sweep events within a cut; rte_acl: while
// expanding rules and before each rte_acl context, whose rte_acl_build cannot itself be interrupted;
// linear: not at all, it only copies the list) and once it finds it set returns build_result::abandoned.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "rules/match.h"

namespace portcullis::classify {

// Keys hold host-order numeric values (198.18.0.1 is 0xC6120001). For ICMP, sport = type, dport = code.
// set_bits is filled by the caller from the rule set's large sets (match.h); 0 when it has none.
struct key_v4 {
	uint32_t src;
	uint32_t dst;
	uint16_t sport;
	uint16_t dport;
	uint8_t proto;
	uint8_t tcp_flags;
	uint8_t set_bits;  // tuple_match::set_bits_value: the packet's large-set memberships, 0 when none
	uint8_t pad;
};
static_assert(sizeof(key_v4) == 16);

struct alignas(16) key_v6 {
	u128 src;
	u128 dst;
	uint16_t sport;
	uint16_t dport;
	uint8_t proto;
	uint8_t tcp_flags;
	uint8_t set_bits;
};

// What a classifier is built from: the rule's match and the id classify() returns when it matches.
struct rule_entry {
	uint32_t id;
	const tuple_match* match;
};

inline constexpr uint32_t no_match = UINT32_MAX;

enum class backend { ours, rte_acl, linear };
std::string_view backend_name(backend b);

class classifier {
public:
	virtual ~classifier() = default;
	virtual backend kind() const = 0;
	// Bytes of run-time structure the classifier reads on lookup (not build scratch).
	virtual size_t memory_bytes() const = 0;
	// results[i] = id of the first rule matching keys[i], or no_match.
	virtual void classify(const key_v4* keys, uint32_t n, uint32_t* results) const = 0;
	virtual void classify(const key_v6* keys, uint32_t n, uint32_t* results) const = 0;
};

struct build_result {
	std::unique_ptr<portcullis::classify::classifier> classifier;  // null on failure
	std::string error;                       // why, when classifier is null
	bool abandoned = false;                  // the cancel flag was set: classifier null, error says so
	double build_ms = 0;
};

// How often a build sweeping rules looks at its cancel flag: one relaxed load per this many rules or
// events (well under a millisecond of build work each).
inline constexpr size_t cancel_check_events = 4096;

inline bool cancelled(const std::atomic<bool>* cancel)
{
	return cancel && cancel->load(std::memory_order_relaxed);
}
build_result abandoned_build();  // abandoned = true and its error

// Rules are given in priority order. The match objects need only live for the duration of the call.
// `cancel`, when given, may be set from another thread to abandon the build (see the top of this file).
build_result build(backend b, std::span<const rule_entry> rules, const std::atomic<bool>* cancel = nullptr);

// Reference semantics, shared by the linear backend and by tests.
bool matches(const tuple_match& m, const key_v4& k);
bool matches(const tuple_match& m, const key_v6& k);

} // namespace portcullis::classify
