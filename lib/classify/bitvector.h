// Portcullis' own classifier: per-field equivalence classes joined by aggregated bit vectors.
//
// Build (control plane): for every field (src, dst, sport, dport, proto, tcp flags, set bits) the value
// space is cut into elementary intervals at every rule boundary; each interval's set of matching rules
// is a bit vector over the rules in priority order. Identical vectors collapse into one equivalence
// class, and each class's vector is stored as 512-bit chunks: a 64-bit summary says which chunks have
// any bit set, and each non-empty chunk points at a deduplicated 64-byte pattern. Fields in which every
// value matches every rule are dropped from the lookup altogether (ClassBench acl1 has a wildcard source
// port, for example; a rule set without large-set tests has no set-bits field).
//
// Lookup (data path), per burst, in stages so that the memory accesses of different keys overlap:
//   1. value -> class per field: ports, protocol, flags and set bits by direct table, IPv4 addresses by
//      a 2^16 table plus 32-way SIMD B-tree nodes for the low 16 bits, IPv6 addresses by binary search;
//      when every port and IPv4 field of a partition fits one SIMD node (small rule sets), ports and
//      IPv4 by that node alone, a few KB in all instead of 256 KiB per field (see range_index in
//      bitvector_layout.h); the small fields are normally joined into one (l4_index there);
//   2. AND of the classes' summaries gives the candidate chunks, lowest (= highest priority) first;
//   3. AND of the candidate chunk's patterns: the first set bit is the first matching rule. Only when a
//      chunk's AND is empty does the next candidate chunk get read.
// So a lookup costs a fixed handful of independent loads rather than a walk whose depth grows with the
// rule set, and unions (port lists, negations, sets) cost nothing extra: a rule is one bit whatever its
// shape. Rule sets above 32768 rules are split into partitions of 64 chunks, searched in priority order.
//
// The stage-3 AND runs on AVX-512 where the CPU has it (chosen once at build), else on 64-bit words.
#pragma once
#include "classify/classify.h"

namespace portcullis::classify {

struct bitvector_options {
	bool allow_avx512 = true;  // tests turn this off to exercise the portable path
	// Tests force every port and IPv4 range index to a top table of 2^top_bits entries (capped at the
	// field's width) so that each layout runs on every rule set; -1 lets the build choose per field.
	int top_bits = -1;
	// Set from another thread to abandon the build (classify.h, "Cancelling a build").
	const std::atomic<bool>* cancel = nullptr;
};

build_result build_bitvector(std::span<const rule_entry> rules, const bitvector_options& = {});

} // namespace portcullis::classify
