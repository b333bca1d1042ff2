// Immutable address sets for large blocklists: is this IPv4 / IPv6 address in the set?
//
// Built once from a sorted, disjoint, non-adjacent list of inclusive ranges (what normalize() in
// rules/match.h makes of a list of CIDR prefixes), then only read. Sized for 100K-1M IPv4 prefixes and
// 100K IPv6 prefixes: a few bytes a range where rte_lpm needs its 64 MB tbl24 before the first rule.
//
// The idea: the set is the sorted list of its boundaries (each range's lo and hi + 1), and an address is
// in it iff an odd number of boundaries are <= it. The addresses all boundaries share a common prefix
// with (p bits, skipped: a feed all under 2a00::/12 spreads over the index like a global one) are cut
// into 2^B equal buckets, B chosen from the boundary count; each bucket is one fixed-size record that
// holds the parity of the boundaries before it and, inline, the few boundaries inside it. A lookup reads
// one record (one cache line) and compares the address with its inline keys; a bucket with more
// boundaries than fit points to its sorted keys in an overflow array, searched linearly when short and
// by bisection when long, so a skewed set stays correct and degrades logarithmically, not linearly.
//
// IPv4 records are 32 bytes: fifteen 16-bit keys (the bits under the bucket, when a bucket is at most
// 2^16 addresses wide), compared with two SSE2 instructions, or, for small sets spread too thin to pay
// for 2^(16-p) buckets, seven 32-bit keys. About 8 boundaries a bucket: 1M random prefixes (570K
// ranges) take 8 MB, rte_lpm 213 MB. IPv6 records are 64 bytes: seven keys, each the upper half of a
// boundary; a boundary with a lower half (a prefix longer than /64) marks its record, and an address
// whose upper half equals one of its keys is decided on the full boundaries. About 2 boundaries a
// bucket: 100K prefixes take 9 MB, rte_lpm6 400 MB.
//
// Threads: build() on the control plane (it allocates; it throws only std::bad_alloc); contains() and
// contains_burst() from any number of threads at once, allocation-free and throw-free. Input that is
// not sorted, disjoint and non-adjacent is normalized by build() first (a copy), so it is still correct.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "memory/prefetch.h"
#include "rules/match.h"

namespace portcullis::sets {

namespace detail {

// Memory from mmap, asked for transparent huge pages when large (the records of a million-range set are
// megabytes read at random: 4 KiB pages cost a TLB miss on most lookups). Zeroed, movable, not copyable.
template <class T>
class mapped_array {
public:
	mapped_array() = default;
	explicit mapped_array(size_t n);
	~mapped_array();
	mapped_array(mapped_array&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
	mapped_array& operator=(mapped_array&& o) noexcept
	{
		std::swap(p_, o.p_);
		std::swap(n_, o.n_);
		return *this;
	}
	T* data() const { return p_; }
	T& operator[](size_t i) const { return p_[i]; }
	size_t size() const { return n_; }
	// What the array holds of memory, as allocated: a mapped one in whole 2 MiB pages (memory/huge_map.h).
	size_t bytes() const;

private:
	// The bytes asked for (at least a line), and whether that many are mapped rather than new'd.
	static size_t asked(size_t n) { return n * sizeof(T) > 64 ? n * sizeof(T) : 64; }
	static bool mapped(size_t bytes);

	T* p_ = nullptr;
	size_t n_ = 0;
};

// meta, all record kinds: bit 0 is the answer for an address below every inline key of the bucket
// (parity of the boundaries up to the bucket's first address, xor parity of the bucket's own count);
// bit 1 says the keys are in the overflow array (begin and count then replace the inline keys: narrow
// key[1..2] and key[3..4], wide key[0] and key[1]). Unused inline keys are 0: an IPv4 in-bucket key is
// never 0 (a boundary at the bucket's first address is counted in bit 0), and a lookup counts the keys
// *above* the address, so the answer is bit 0 flipped once per key above.
struct alignas(32) record4_narrow {
	uint16_t meta;
	uint16_t key[15];  // boundary - bucket start, ascending, 0 = unused
};
struct alignas(32) record4_wide {
	uint32_t meta;
	uint32_t key[7];
};
// IPv6 also has bit 2, "ties": some inline key is the upper half of a boundary whose lower half is not
// zero (a prefix longer than /64), so an address with the same upper half is decided on the full
// boundaries, which are then also in the overflow arrays at `begin`. Bits 3-5 hold the inline count.
struct alignas(64) record6 {
	uint32_t meta;
	uint32_t begin;   // first of the bucket's boundaries in the overflow arrays (overflow or ties)
	uint64_t key[7];  // upper halves of the boundaries, ascending, 0 = unused; overflow: key[0] = count
};
static_assert(sizeof(record4_narrow) == 32 && sizeof(record4_wide) == 32 && sizeof(record6) == 64);

inline constexpr uint32_t meta_overflow = 2;
inline constexpr uint32_t meta_ties = 4;

} // namespace detail

class prefix_set4 {
public:
	using range = value_range<uint32_t>;

	// An empty set.
	prefix_set4();
	static prefix_set4 build(std::span<const range> ranges);

	bool contains(uint32_t addr) const noexcept;
	// Starts fetching the record contains(addr) reads, for a caller that knows the address well before it
	// asks (the worker, for a burst's flow-table misses, before its known flows' work).
	void prefetch(uint32_t addr) const noexcept { memory::prefetch(record_of(addr)); }
	// out[i] = contains(addrs[i]) for i < n: the records of a group of addresses are prefetched together,
	// so their cache misses overlap.
	void contains_burst(const uint32_t* addrs, uint32_t n, uint8_t* out) const noexcept;

	size_t memory_bytes() const;
	size_t range_count() const { return range_count_; }
	// For benches and tests: log2 of the bucket count, and whether records hold 16-bit keys.
	unsigned bucket_bits() const { return bucket_bits_; }
	bool narrow() const { return narrow_.size() != 0; }

private:
	struct empty_tag {};
	explicit prefix_set4(empty_tag);  // no records yet: build() fills them
	bool overflow_lookup(const detail::record4_narrow& r, uint32_t low) const noexcept;
	bool overflow_lookup(const detail::record4_wide& r, uint32_t low) const noexcept;
	// The record contains(addr) reads (narrow and wide records are both 32 bytes).
	const void* record_of(uint32_t addr) const noexcept
	{
		const uint32_t off = addr - base_;
		const char* records = narrow_.data() ? reinterpret_cast<const char*>(narrow_.data())
		                                     : reinterpret_cast<const char*>(wide_.data());
		return records + size_t(off <= span_ ? off >> shift_ : 0) * sizeof(detail::record4_narrow);
	}
	friend struct builder4;

	uint32_t base_ = 0;      // first address of the block that holds every boundary
	uint32_t span_ = ~0u;    // its last address - base_
	uint32_t shift_ = 31;    // bucket = (addr - base_) >> shift_
	uint32_t low_mask_ = 0;  // (1 << shift_) - 1: the key of an address inside its bucket
	uint32_t above_answer_ = 0;  // the answer above the block: boundary count parity
	unsigned bucket_bits_ = 1;
	size_t range_count_ = 0;
	detail::mapped_array<detail::record4_narrow> narrow_;
	detail::mapped_array<detail::record4_wide> wide_;
	detail::mapped_array<uint16_t> overflow16_;
	detail::mapped_array<uint32_t> overflow32_;
};

class prefix_set6 {
public:
	using range = value_range<u128>;

	prefix_set6();
	static prefix_set6 build(std::span<const range> ranges);

	bool contains(u128 addr) const noexcept;
	void contains_burst(const u128* addrs, uint32_t n, uint8_t* out) const noexcept;

	size_t memory_bytes() const;
	size_t range_count() const { return range_count_; }
	unsigned bucket_bits() const { return bucket_bits_; }

private:
	struct empty_tag {};
	explicit prefix_set6(empty_tag);
	bool overflow_lookup(const detail::record6& r, u128 addr) const noexcept;
	friend struct builder6;

	u128 base_ = 0;
	u128 span_ = ~u128(0);
	uint32_t shift_ = 127;
	uint32_t above_answer_ = 0;
	unsigned bucket_bits_ = 1;
	size_t range_count_ = 0;
	detail::mapped_array<detail::record6> records_;
	detail::mapped_array<uint64_t> overflow_hi_;
	detail::mapped_array<uint64_t> overflow_lo_;
};

// ---- lookups, inline: a per-packet call should cost no function call ----

namespace detail {

// How many of the keys are above `k` (unused keys are 0, never above).
template <class Key, int N>
inline uint32_t keys_above(const Key (&key)[N], Key k)
{
	uint32_t n = 0;
	for (int i = 0; i < N; ++i)
		n += key[i] > k;
	return n;
}

// The answer from a narrow record: meta bit 0 flipped once per key above `low`. SSE2: 16 lanes
// (meta and the 15 keys) compared at once; lane 0, the meta, is masked off.
inline bool narrow_answer(const record4_narrow& r, uint16_t low)
{
#ifdef __SSE2__
	const __m128i k = _mm_set1_epi16(short(low));
	const __m128i zero = _mm_setzero_si128();
	const auto* v = reinterpret_cast<const __m128i*>(&r);
	// key > low  <=>  key -sat low != 0
	const __m128i a = _mm_cmpeq_epi16(_mm_subs_epu16(_mm_load_si128(v), k), zero);
	const __m128i b = _mm_cmpeq_epi16(_mm_subs_epu16(_mm_load_si128(v + 1), k), zero);
	const auto above = ~unsigned(_mm_movemask_epi8(_mm_packs_epi16(a, b))) & 0xFFFEu;
	return (r.meta ^ unsigned(__builtin_parity(above))) & 1;
#else
	return (r.meta ^ keys_above(r.key, low)) & 1;
#endif
}

} // namespace detail

inline bool prefix_set4::contains(uint32_t addr) const noexcept
{
	const uint32_t off = addr - base_;
	if (off > span_) [[unlikely]]  // outside the block: below every boundary, or above them all
		return addr > base_ && above_answer_;
	const uint32_t bucket = off >> shift_;
	const uint32_t low = off & low_mask_;
	if (narrow_.data()) [[likely]] {
		const detail::record4_narrow& r = narrow_[bucket];
		if (r.meta & detail::meta_overflow) [[unlikely]]
			return overflow_lookup(r, low);
		return detail::narrow_answer(r, uint16_t(low));
	}
	const detail::record4_wide& r = wide_[bucket];
	if (r.meta & detail::meta_overflow) [[unlikely]]
		return overflow_lookup(r, low);
	return (r.meta ^ detail::keys_above(r.key, low)) & 1;
}

inline bool prefix_set6::contains(u128 addr) const noexcept
{
	const u128 off = addr - base_;
	if (off > span_) [[unlikely]]
		return addr > base_ && above_answer_;
	const detail::record6& r = records_[uint32_t(off >> shift_)];
	if (r.meta & detail::meta_overflow) [[unlikely]]
		return overflow_lookup(r, addr);
	const auto high = uint64_t(addr >> 64);
	if (r.meta & detail::meta_ties) [[unlikely]] {
		bool tie = false;
		for (uint64_t k : r.key)
			tie |= k == high;
		if (tie)
			return overflow_lookup(r, addr);
	}
	return (r.meta ^ detail::keys_above(r.key, high)) & 1;
}

} // namespace portcullis::sets
