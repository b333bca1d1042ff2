// Run-time layout of the bit-vector classifier (see bitvector.h). Plain data, built by bitvector.cc and
// read by the lookup loops in bitvector_lookup.inc, which is compiled once per instruction set.
#pragma once

#include <cstdint>

#include "classify/classify.h"

namespace portcullis::classify::bv {

inline constexpr uint32_t chunk_bits = 512;
inline constexpr uint32_t chunk_words = chunk_bits / 64;
inline constexpr uint32_t max_chunks = 64;  // one 64-bit summary per class
inline constexpr uint32_t max_partition_rules = chunk_bits * max_chunks;
inline constexpr uint32_t max_fields = 7;
// Keys looked up together. 32 keeps the per-stage scratch (7 fields x 32 classes) in a few cache lines
// while giving the out-of-order core enough independent loads to overlap.
inline constexpr uint32_t batch = 32;

// set_bits is the large-set test (tuple_match::set_bits_mask); like tcp_flags it is dropped from the
// lookup when every rule's mask is 0, so rule sets without large sets pay nothing for it.
enum class field : uint8_t { src, dst, sport, dport, proto, tcp_flags, set_bits, l4 };

struct alignas(chunk_bits / 8) pattern {
	uint64_t words[chunk_words];
};

// One equivalence class of one field.
struct class_row {
	uint64_t summary;     // bit k: chunk k of the class's vector is non-empty
	uint32_t ref_offset;  // its non-empty chunks' pattern indices start at refs[ref_offset], in chunk order
	uint32_t pad;
};

struct field_rows {
	const class_row* rows;
	const uint32_t* refs;
	const pattern* patterns;
};

// Value -> payload (a class, or a class times a product stride) for the ports and IPv4 addresses.
// top[v >> shift] is a payload tagged leaf_tag or the index of a node, and a node is a small B-tree
// level: sorted interval starts searched with one SIMD compare, and one successor per gap, again tagged.
// The build chooses the top table's size per field from the field's boundaries (see bitvector.cc): a
// direct table when it pays, 2^16 entries plus nodes for dense address fields, down to a single entry
// (just the node tree) when the field has few distinct ranges, so that a handful of rules costs a few
// cache lines instead of 256 KiB per field.
// node16 keys are the low 16 bits of the value (shift <= 16: the top entry fixes the rest); node32 keys
// are whole values. Unused keys hold the maximum and their successors repeat the last one, so a count of
// the keys <= v is always a valid successor index.
inline constexpr uint32_t leaf_tag = 0x80000000u;
struct alignas(64) node16 {
	uint16_t keys[32];
	uint32_t next[33];
	uint32_t pad[15];
};
static_assert(sizeof(node16) == 256);

// 15 keys (the 16th lane is never compared) and 16 successors: two cache lines.
inline constexpr uint32_t node32_keys = 15;
struct alignas(64) node32 {
	uint32_t keys[16];
	uint32_t next[16];
};
static_assert(sizeof(node32) == 128);

struct range_index {
	const uint32_t* top;  // 2^(value bits - shift) entries
	const node16* nodes16;  // when shift <= 16
	const node32* nodes32;  // when shift > 16 (IPv4 only)
	uint32_t shift;
	bool direct;  // no nodes: every top entry is a leaf
};

// The small fields (ports, protocol, flags, set bits) joined into one: their classes index a
// cross-product table whose entries are classes of the joined field. Fewer fields means fewer loads per
// candidate chunk, and the joined summary is exact where separate summaries only say "some rule in this
// chunk". Each component yields class * stride, so the product index is a sum; a component that is not
// part of the product yields 0 (ports: a one-entry direct index; protocol, flags, set bits: mask 0 and a
// one-entry table). The lookup tests set_bits_mask once per batch and leaves the set-bits load out when
// it is 0, so the usual product (no large sets) costs what it did before the field existed.
struct l4_index {
	range_index sport, dport;
	const uint32_t* proto;
	const uint32_t* tcp_flags;
	const uint32_t* set_bits;
	uint8_t proto_mask, tcp_flags_mask, set_bits_mask;
	const uint32_t* product;
};

// IPv6 address -> class by binary search over interval starts (starts[0] == 0).
struct ip6_index {
	const u128* starts;
	const uint32_t* classes;
	uint32_t count;
};

struct partition {
	uint32_t nfields;
	field fields[max_fields];
	field_rows rows[max_fields];
	range_index src4, dst4;
	ip6_index src6, dst6;
	range_index sport, dport;
	const uint16_t* proto;  // 256 entries
	const uint16_t* tcp_flags;
	const uint16_t* set_bits;
	l4_index l4;
	const uint32_t* rule_ids;  // bit position -> rule id
	// A partition in which no field was left to look up (every rule matches everything, or there
	// are no rules): the answer is constant.
	uint32_t constant_result;
};

using run_v4_fn = void (*)(const partition* parts, uint32_t nparts, const key_v4* keys, uint32_t n,
                           uint32_t* results);
using run_v6_fn = void (*)(const partition* parts, uint32_t nparts, const key_v6* keys, uint32_t n,
                           uint32_t* results);

namespace scalar {
void run_v4(const partition*, uint32_t, const key_v4*, uint32_t, uint32_t*);
void run_v6(const partition*, uint32_t, const key_v6*, uint32_t, uint32_t*);
}
namespace avx512 {
void run_v4(const partition*, uint32_t, const key_v4*, uint32_t, uint32_t*);
void run_v6(const partition*, uint32_t, const key_v6*, uint32_t, uint32_t*);
}

} // namespace portcullis::classify::bv
