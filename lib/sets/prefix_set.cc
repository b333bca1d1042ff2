// Building prefix sets (prefix_set.h), the overflow searches and the burst lookups.
#include "sets/prefix_set.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <new>
#include <vector>

#include "memory/huge_map.h"

namespace portcullis::sets {

// ---- memory ----

namespace detail {
namespace {

// Below this, plain aligned new: an mmap is at least a page, and huge pages only pay for megabytes.
constexpr size_t map_threshold = size_t(1) << 20;

} // namespace

template <class T>
bool mapped_array<T>::mapped(size_t bytes)
{
	return bytes >= map_threshold;
}

template <class T>
mapped_array<T>::mapped_array(size_t n) : n_(n)
{
	const size_t bytes = asked(n);
	if (!mapped(bytes)) {
		p_ = static_cast<T*>(::operator new(bytes, std::align_val_t(64)));
		std::memset(static_cast<void*>(p_), 0, bytes);
		return;
	}
	p_ = static_cast<T*>(memory::map_zeroed(bytes, false));
}

template <class T>
size_t mapped_array<T>::bytes() const
{
	if (!p_)
		return 0;
	return mapped(asked(n_)) ? memory::mapped_bytes(asked(n_)) : asked(n_);
}

template <class T>
mapped_array<T>::~mapped_array()
{
	if (!p_)
		return;
	if (mapped(asked(n_)))
		memory::unmap(p_, asked(n_));
	else
		::operator delete(static_cast<void*>(p_), std::align_val_t(64));
}

template class mapped_array<record4_narrow>;
template class mapped_array<record4_wide>;
template class mapped_array<record6>;
template class mapped_array<uint16_t>;
template class mapped_array<uint32_t>;
template class mapped_array<uint64_t>;

} // namespace detail

namespace {

using detail::meta_overflow;

template <class T>
constexpr unsigned width = sizeof(T) * 8;

unsigned leading_zeros(uint32_t v) { return unsigned(std::countl_zero(v)); }
unsigned leading_zeros(u128 v)
{
	const auto hi = uint64_t(v >> 64);
	return hi ? unsigned(std::countl_zero(hi)) : 64 + unsigned(std::countl_zero(uint64_t(v)));
}

template <class T>
bool well_formed(std::span<const value_range<T>> ranges)
{
	for (size_t i = 0; i < ranges.size(); ++i) {
		if (ranges[i].lo > ranges[i].hi)
			return false;
		if (i && (ranges[i - 1].hi == T(~T(0)) || ranges[i].lo <= T(ranges[i - 1].hi + 1)))
			return false;
	}
	return true;
}

// ranges as they are when well formed, else sorted, merged and without empty ones, kept in storage.
template <class T>
std::span<const value_range<T>> well_formed_view(std::span<const value_range<T>> ranges,
                                                 std::vector<value_range<T>>& storage)
{
	if (well_formed(ranges))
		return ranges;
	storage.assign(ranges.begin(), ranges.end());
	std::erase_if(storage, [](const value_range<T>& r) { return r.lo > r.hi; });
	normalize(storage);
	return storage;
}

// The boundaries of well-formed ranges: each lo, and each hi + 1 that exists. Strictly ascending.
template <class T>
std::vector<T> boundaries_of(std::span<const value_range<T>> ranges)
{
	std::vector<T> b;
	b.reserve(ranges.size() * 2);
	for (const auto& r : ranges) {
		b.push_back(r.lo);
		if (r.hi != T(~T(0)))
			b.push_back(T(r.hi + 1));
	}
	return b;
}

// Where the buckets lie: the block of addresses sharing the boundaries' common prefix of p bits, cut
// into 2^bits buckets of 2^shift addresses.
template <class T>
struct shape {
	T base;
	T span;  // block size - 1
	unsigned prefix;
	unsigned bits;
	unsigned shift;
};

template <class T>
unsigned common_prefix(const std::vector<T>& b)
{
	return b.size() >= 2 ? leading_zeros(T(b.front() ^ b.back())) : 0;
}

// Bits for about `per_bucket` boundaries a bucket at most: 2^bits >= n / per_bucket.
unsigned bits_for(size_t n, size_t per_bucket)
{
	return unsigned(std::bit_width((n + per_bucket - 1) / per_bucket));
}

template <class T>
shape<T> make_shape(const std::vector<T>& b, unsigned prefix, unsigned bits)
{
	shape<T> s;
	s.prefix = prefix;
	s.bits = std::clamp(bits, 1u, width<T> - prefix);
	s.shift = width<T> - prefix - s.bits;
	s.span = T(~T(0)) >> prefix;
	s.base = b.empty() ? T(0) : T(b.front() & ~s.span);
	return s;
}

// Walks the buckets in order and hands each its parity (boundaries up to its first address, mod 2) and
// its in-bucket boundaries [first, last): O(buckets + boundaries).
template <class T, class Emit>
void for_each_bucket(const std::vector<T>& b, const shape<T>& s, Emit&& emit)
{
	const size_t buckets = size_t(1) << s.bits;
	const T bucket_mask = T((T(1) << s.shift) - 1);
	size_t j = 0;
	for (size_t k = 0; k < buckets; ++k) {
		const T start = T(s.base + (T(k) << s.shift));
		while (j < b.size() && b[j] <= start)
			++j;
		size_t e = j;
		while (e < b.size() && T(b[e] - start) <= bucket_mask)
			++e;
		emit(k, uint32_t(j & 1), start, j, e);
		j = e;
	}
}

// How many of the sorted keys[0, n) are <= k: a linear count for short lists (no branch to mispredict),
// bisection for long ones.
template <class Key>
uint32_t count_at_most(const Key* keys, uint32_t n, Key k)
{
	if (n <= 32) {
		uint32_t c = 0;
		for (uint32_t i = 0; i < n; ++i)
			c += keys[i] <= k;
		return c;
	}
	const Key* base = keys;
	while (n > 1) {
		const uint32_t half = n / 2;
		base = base[half] <= k ? base + half : base;
		n -= half;
	}
	return uint32_t(base - keys) + (*base <= k);
}

template <class T>
void copy_into(detail::mapped_array<T>& dst, const std::vector<T>& src)
{
	if (src.empty())
		return;
	dst = detail::mapped_array<T>(src.size());
	std::copy(src.begin(), src.end(), dst.data());
}

} // namespace

// ---- IPv4 ----

// Tuning, on bench-sets' 1M prefixes (1.14M boundaries; EPYC, 32 MB L3, warm, contains() in a loop):
// 32-byte records of 15 keys with at most 8 boundaries a bucket on average (2^18 of them, 4.4 each,
// 8 MB; 0.6% of queries in an overflowing bucket) ran 320 Mpps; 16-byte records of 7 keys at 2^19
// (8 MB, 5% overflow) 190; 64-byte records of 31 keys at 2^17 (8 MB) 235; 32-byte records at 2^17
// (4 MB, 20% overflow) 145.
// Boundaries come in pairs (a prefix's two ends), so buckets fill more unevenly than Poisson.
struct builder4 {
	static constexpr size_t narrow_per_bucket = 8;  // at most, on average
	static constexpr size_t wide_per_bucket = 4;
	static constexpr unsigned max_bits = 24;

	static void build(prefix_set4& set, const std::vector<uint32_t>& b)
	{
		const unsigned prefix = common_prefix(b);
		const unsigned target_narrow = std::min(bits_for(b.size(), narrow_per_bucket), max_bits);
		// 16-bit keys need buckets of at most 2^16 addresses: at least 16 - prefix bits. Worth it unless
		// that is many more buckets than the set needs (a small set spread over the whole space).
		const unsigned min_narrow = prefix < 16 ? 16 - prefix : 1;
		const unsigned narrow_bits = std::max(target_narrow, min_narrow);
		const bool narrow = narrow_bits <= std::max(target_narrow + 3, 12u);
		const unsigned wide_bits = std::min(bits_for(b.size(), wide_per_bucket), max_bits);
		const shape<uint32_t> s = make_shape(b, prefix, narrow ? narrow_bits : wide_bits);

		set.base_ = s.base;
		set.span_ = s.span;
		set.shift_ = s.shift;
		set.low_mask_ = uint32_t((uint64_t(1) << s.shift) - 1);
		set.above_answer_ = uint32_t(b.size() & 1);
		set.bucket_bits_ = s.bits;
		if (narrow)
			fill<detail::record4_narrow, uint16_t, 15>(set.narrow_, set.overflow16_, b, s);
		else
			fill<detail::record4_wide, uint32_t, 7>(set.wide_, set.overflow32_, b, s);
	}

	template <class Record, class Key, int Inline>
	static void fill(detail::mapped_array<Record>& records, detail::mapped_array<Key>& overflow,
	                 const std::vector<uint32_t>& b, const shape<uint32_t>& s)
	{
		records = detail::mapped_array<Record>(size_t(1) << s.bits);
		std::vector<Key> spill;
		for_each_bucket(b, s, [&](size_t k, uint32_t parity, uint32_t start, size_t first, size_t last) {
			Record& r = records[k];
			const auto count = uint32_t(last - first);
			r.meta = decltype(r.meta)(parity ^ (count & 1));
			if (count <= Inline) {
				for (uint32_t i = 0; i < count; ++i)
					r.key[i] = Key(b[first + i] - start);
				return;
			}
			r.meta |= meta_overflow;
			const auto begin = uint32_t(spill.size());
			for (size_t i = first; i < last; ++i)
				spill.push_back(Key(b[i] - start));
			if constexpr (sizeof(Key) == 2) {
				std::memcpy(&r.key[1], &begin, 4);
				std::memcpy(&r.key[3], &count, 4);
			} else {
				r.key[0] = begin;
				r.key[1] = count;
			}
		});
		copy_into(overflow, spill);
	}
};

prefix_set4::prefix_set4() : prefix_set4(build({})) {}
prefix_set4::prefix_set4(empty_tag) {}

prefix_set4 prefix_set4::build(std::span<const range> ranges)
{
	prefix_set4 set{empty_tag{}};
	std::vector<range> storage;
	ranges = well_formed_view(ranges, storage);
	set.range_count_ = ranges.size();
	builder4::build(set, boundaries_of(ranges));
	return set;
}

bool prefix_set4::overflow_lookup(const detail::record4_narrow& r, uint32_t low) const noexcept
{
	uint32_t begin, count;
	std::memcpy(&begin, &r.key[1], 4);
	std::memcpy(&count, &r.key[3], 4);
	return (r.meta ^ (count - count_at_most(overflow16_.data() + begin, count, uint16_t(low)))) & 1;
}

bool prefix_set4::overflow_lookup(const detail::record4_wide& r, uint32_t low) const noexcept
{
	const uint32_t begin = r.key[0], count = r.key[1];
	return (r.meta ^ (count - count_at_most(overflow32_.data() + begin, count, low))) & 1;
}

// Prefetch a group's records, then answer them: the group's cache misses overlap instead of queuing
// behind each other. Groups of 32 (a whole burst of the dataplane): on 1M prefixes with warm caches,
// groups of 8, 16 and 32 gave 330, 385 and 420 Mpps (contains() in a loop: 320).
void prefix_set4::contains_burst(const uint32_t* addrs, uint32_t n, uint8_t* out) const noexcept
{
	constexpr uint32_t group = 32;
	for (uint32_t first = 0; first < n; first += group) {
		const uint32_t m = std::min(group, n - first);
		for (uint32_t i = 0; i < m; ++i)
			memory::prefetch(record_of(addrs[first + i]));
		for (uint32_t i = 0; i < m; ++i)
			out[first + i] = contains(addrs[first + i]);
	}
}

size_t prefix_set4::memory_bytes() const
{
	return sizeof(*this) + narrow_.bytes() + wide_.bytes() + overflow16_.bytes() + overflow32_.bytes();
}

// ---- IPv6 ----

// At most 2 boundaries a bucket on average: bench-sets' 100K prefixes (185K boundaries) in 2^17 records
// of 64 bytes, 8 MB, 120-140 Mpps warm, 2% of queries in an overflowing bucket. 2^16 of them (4 MB):
// 100 Mpps; 32-byte records of three keys at 2^17: 75 Mpps, a third of queries overflowing.
struct builder6 {
	static constexpr size_t per_bucket = 2;
	static constexpr unsigned max_bits = 22;

	static void build(prefix_set6& set, const std::vector<u128>& b)
	{
		const shape<u128> s = make_shape(b, common_prefix(b), std::min(bits_for(b.size(), per_bucket), max_bits));
		set.base_ = s.base;
		set.span_ = s.span;
		set.shift_ = s.shift;
		set.above_answer_ = uint32_t(b.size() & 1);
		set.bucket_bits_ = s.bits;
		set.records_ = detail::mapped_array<detail::record6>(size_t(1) << s.bits);
		std::vector<uint64_t> hi, lo;
		for_each_bucket(b, s, [&](size_t k, uint32_t parity, u128, size_t first, size_t last) {
			detail::record6& r = set.records_[k];
			const auto count = uint32_t(last - first);
			r.meta = parity ^ (count & 1);
			const bool whole =
			    std::all_of(b.begin() + ptrdiff_t(first), b.begin() + ptrdiff_t(last), [](u128 v) { return uint64_t(v) == 0; });
			r.begin = uint32_t(hi.size());
			if (count <= 7) {
				r.meta |= count << 3;
				for (uint32_t i = 0; i < count; ++i)
					r.key[i] = uint64_t(b[first + i] >> 64);
				if (whole)
					return;
				r.meta |= detail::meta_ties;
			} else {
				r.meta |= meta_overflow;
				r.key[0] = count;
			}
			for (size_t i = first; i < last; ++i) {
				hi.push_back(uint64_t(b[i] >> 64));
				lo.push_back(uint64_t(b[i]));
			}
		});
		copy_into(set.overflow_hi_, hi);
		copy_into(set.overflow_lo_, lo);
	}
};

prefix_set6::prefix_set6() : prefix_set6(build({})) {}
prefix_set6::prefix_set6(empty_tag) {}

prefix_set6 prefix_set6::build(std::span<const range> ranges)
{
	prefix_set6 set{empty_tag{}};
	std::vector<range> storage;
	ranges = well_formed_view(ranges, storage);
	set.range_count_ = ranges.size();
	builder6::build(set, boundaries_of(ranges));
	return set;
}

// Boundaries (hi, lo) <= addr: those whose upper half is below addr's, and, among those sharing its
// upper half (prefixes longer than /64; a run of /128s in one /64 may be long), those whose lower half
// is not above addr's. Three searches at most, each linear when short, bisection when long.
bool prefix_set6::overflow_lookup(const detail::record6& r, u128 addr) const noexcept
{
	const auto count = r.meta & meta_overflow ? uint32_t(r.key[0]) : r.meta >> 3;
	const uint64_t* hi = overflow_hi_.data() + r.begin;
	const uint64_t* lo = overflow_lo_.data() + r.begin;
	const auto ah = uint64_t(addr >> 64), al = uint64_t(addr);
	const uint32_t at_most_hi = count_at_most(hi, count, ah);
	const uint32_t below = ah ? count_at_most(hi, at_most_hi, ah - 1) : 0;
	// [below, at_most_hi) share addr's upper half: of those, the ones whose lower half is not above al.
	const uint32_t at_most = below == at_most_hi ? below : below + count_at_most(lo + below, at_most_hi - below, al);
	return (r.meta ^ (count - at_most)) & 1;
}

void prefix_set6::contains_burst(const u128* addrs, uint32_t n, uint8_t* out) const noexcept
{
	constexpr uint32_t group = 32;
	for (uint32_t first = 0; first < n; first += group) {
		const uint32_t m = std::min(group, n - first);
		for (uint32_t i = 0; i < m; ++i) {
			const u128 off = addrs[first + i] - base_;
			memory::prefetch(records_.data() + (off <= span_ ? uint32_t(off >> shift_) : 0));
		}
		for (uint32_t i = 0; i < m; ++i)
			out[first + i] = contains(addrs[first + i]);
	}
}

size_t prefix_set6::memory_bytes() const
{
	return sizeof(*this) + records_.bytes() + overflow_hi_.bytes() + overflow_lo_.bytes();
}

} // namespace portcullis::sets
