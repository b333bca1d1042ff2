// prefix_set4 / prefix_set6 against a slow reference (binary search over the normalized ranges), on random
// sets of many sizes, skewed and clustered sets that overflow their buckets, and the edges of the address
// space and of every range.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <string>
#include <random>
#include <vector>

#include "memory/huge_map.h"
#include "rules/match.h"
#include "sets/prefix_set.h"

using namespace portcullis;
using portcullis::sets::prefix_set4;
using portcullis::sets::prefix_set6;

namespace {

using range4 = value_range<uint32_t>;
using range6 = value_range<u128>;
constexpr u128 u128_max = ~u128(0);

template <class T>
bool reference_contains(const std::vector<value_range<T>>& ranges, T a)
{
	auto it = std::upper_bound(ranges.begin(), ranges.end(), a, [](T v, const value_range<T>& r) { return v < r.lo; });
	return it != ranges.begin() && a <= std::prev(it)->hi;
}

template <class T>
value_range<T> prefix_range(T addr, unsigned len)
{
	constexpr unsigned w = sizeof(T) * 8;
	const T host = len == 0 ? T(~T(0)) : len >= w ? T(0) : T(T(~T(0)) >> len);
	return {T(addr & ~host), T(addr | host)};
}

u128 random128(std::mt19937_64& rng) { return (u128(rng()) << 64) | rng(); }

// Random prefixes, lengths uniform in [min_len, max_len], normalized into ranges.
std::vector<range4> random_prefixes4(std::mt19937_64& rng, size_t n, unsigned min_len, unsigned max_len)
{
	std::uniform_int_distribution<unsigned> len(min_len, max_len);
	std::vector<range4> r;
	for (size_t i = 0; i < n; ++i)
		r.push_back(prefix_range(uint32_t(rng()), len(rng)));
	normalize(r);
	return r;
}

// Random IPv6 prefixes under `under` (its first under_len bits kept).
std::vector<range6> random_prefixes6(std::mt19937_64& rng, size_t n, unsigned min_len, unsigned max_len, u128 under = 0,
                                     unsigned under_len = 0)
{
	std::uniform_int_distribution<unsigned> len(std::max(min_len, under_len), max_len);
	const range6 block = prefix_range(under, under_len);
	std::vector<range6> r;
	for (size_t i = 0; i < n; ++i) {
		const u128 a = block.lo | (random128(rng) & (block.hi - block.lo));
		r.push_back(prefix_range(a, len(rng)));
	}
	normalize(r);
	return r;
}

// The queries that find mistakes: both ends of every range and their neighbours, a random address inside
// each, the ends of the space, and random addresses.
template <class T, class Random>
std::vector<T> queries_for(const std::vector<value_range<T>>& ranges, std::mt19937_64& rng, size_t random_count, Random&& random)
{
	std::vector<T> q = {T(0), T(1), T(~T(0)), T(~T(0) - 1)};
	for (const auto& r : ranges) {
		for (T v : {r.lo, r.hi, T(r.lo - 1), T(r.hi + 1), T(r.lo + 1), T(r.hi - 1)})
			q.push_back(v);
		const T width = T(r.hi - r.lo);
		q.push_back(width == T(~T(0)) ? random(rng) : T(r.lo + random(rng) % T(width + 1)));
	}
	for (size_t i = 0; i < random_count; ++i)
		q.push_back(random(rng));
	return q;
}

uint32_t random32(std::mt19937_64& rng) { return uint32_t(rng()); }

std::string hex(uint32_t v)
{
	char b[16];
	std::snprintf(b, sizeof b, "%08x", v);
	return b;
}
std::string hex(u128 v)
{
	char b[40];
	std::snprintf(b, sizeof b, "%016llx%016llx", (unsigned long long)(v >> 64), (unsigned long long)v);
	return b;
}

// Every query, one at a time and in bursts of awkward sizes; the first mismatch is reported.
template <class Set, class T>
void check_against_reference(const Set& set, const std::vector<value_range<T>>& ranges, const std::vector<T>& queries)
{
	REQUIRE(set.range_count() == ranges.size());
	size_t mismatches = 0;
	for (T q : queries) {
		const bool want = reference_contains(ranges, q);
		if (set.contains(q) != want && mismatches++ == 0) {
			INFO("address " << hex(q) << " expected " << want);
			CHECK(set.contains(q) == want);
		}
	}
	CHECK(mismatches == 0);

	std::vector<uint8_t> out(queries.size() + 1, 0xAA);
	size_t burst_mismatches = 0;
	for (size_t first = 0, step = 1; first < queries.size(); first += step, step = step % 37 + 5) {
		const auto n = uint32_t(std::min(step, queries.size() - first));
		set.contains_burst(queries.data() + first, n, out.data() + first);
	}
	CHECK(out.back() == 0xAA);  // nothing written past n
	for (size_t i = 0; i < queries.size(); ++i)
		burst_mismatches += out[i] != uint8_t(reference_contains(ranges, queries[i]));
	CHECK(burst_mismatches == 0);
}

void check4(const std::vector<range4>& ranges, std::mt19937_64& rng, size_t random_count = 20000)
{
	const prefix_set4 set = prefix_set4::build(ranges);
	check_against_reference(set, ranges, queries_for(ranges, rng, random_count, random32));
}

void check6(const std::vector<range6>& ranges, std::mt19937_64& rng, size_t random_count = 20000)
{
	const prefix_set6 set = prefix_set6::build(ranges);
	check_against_reference(set, ranges, queries_for(ranges, rng, random_count, random128));
}

} // namespace

TEST_CASE("reference agrees with the linear contains of match.h")
{
	std::mt19937_64 rng(7);
	auto ranges = random_prefixes4(rng, 50, 4, 32);
	std::vector<range4> v(ranges.begin(), ranges.end());
	for (uint32_t q : queries_for(ranges, rng, 1000, random32))
		REQUIRE(reference_contains(ranges, q) == portcullis::contains(v, q));
}

TEST_CASE("empty sets contain nothing")
{
	const prefix_set4 e4;
	const prefix_set6 e6;
	for (uint32_t a : {0u, 1u, 0x7FFFFFFFu, 0x80000000u, 0xFFFFFFFFu})
		CHECK_FALSE(e4.contains(a));
	for (u128 a : {u128(0), u128(1), u128(1) << 127, u128_max})
		CHECK_FALSE(e6.contains(a));
	CHECK(e4.range_count() == 0);
	CHECK(e6.range_count() == 0);
	const prefix_set4 b4 = prefix_set4::build({});
	const prefix_set6 b6 = prefix_set6::build({});
	CHECK_FALSE(b4.contains(0));
	CHECK_FALSE(b4.contains(0xFFFFFFFF));
	CHECK_FALSE(b6.contains(0));
	CHECK_FALSE(b6.contains(u128_max));
	uint8_t out[3] = {9, 9, 9};
	const uint32_t a[3] = {0, 5, 0xFFFFFFFF};
	b4.contains_burst(a, 3, out);
	CHECK((out[0] == 0 && out[1] == 0 && out[2] == 0));
	b4.contains_burst(a, 0, out);  // n = 0 touches nothing
}

TEST_CASE("single ranges at the edges of the space")
{
	std::mt19937_64 rng(11);
	const uint32_t m4 = 0xFFFFFFFF;
	for (const range4& r : {range4{0, m4}, range4{0, 0}, range4{m4, m4}, range4{1, m4 - 1}, range4{0, m4 - 1},
	                        range4{1, m4}, range4{0x0A000000, 0x0AFFFFFF}, range4{0x80000000, m4}, range4{5, 5},
	                        range4{0, 0x7FFFFFFF}, range4{0x12345678, 0x12345678}})
		check4({r}, rng, 2000);
	for (const range6& r : {range6{0, u128_max}, range6{0, 0}, range6{u128_max, u128_max}, range6{1, u128_max - 1},
	                        range6{0, u128_max - 1}, range6{1, u128_max}, prefix_range<u128>(u128(0x2a00) << 112, 12),
	                        prefix_range<u128>(u128(0x20010db8) << 96, 128), range6{u128(1) << 64, (u128(1) << 64) + 1}})
		check6({r}, rng, 2000);

	const prefix_set4 full4 = prefix_set4::build(std::vector<range4>{{0, m4}});
	CHECK(full4.contains(0));
	CHECK(full4.contains(m4));
	const prefix_set6 full6 = prefix_set6::build(std::vector<range6>{{0, u128_max}});
	CHECK(full6.contains(0));
	CHECK(full6.contains(u128_max));
	const prefix_set4 top4 = prefix_set4::build(std::vector<range4>{{m4, m4}});
	CHECK(top4.contains(m4));
	CHECK_FALSE(top4.contains(m4 - 1));
	CHECK_FALSE(top4.contains(0));
}

TEST_CASE("a few ranges")
{
	std::mt19937_64 rng(13);
	const uint32_t m4 = 0xFFFFFFFF;
	check4({{0, 0}, {2, 2}, {m4, m4}}, rng);
	check4({{0, 10}, {0x80000000, 0x80000000}, {m4 - 10, m4 - 1}}, rng);
	check6({{0, 0}, {2, 2}, {u128_max, u128_max}}, rng);
	check6({{0, u128(1) << 64}, {u128(3) << 64, (u128(3) << 64) + 5}, {u128_max - 3, u128_max}}, rng);
	for (size_t n : {2, 3, 5, 8, 13, 40}) {
		check4(random_prefixes4(rng, n, 0, 32), rng);
		check4(random_prefixes4(rng, n, 16, 32), rng);
		check6(random_prefixes6(rng, n, 1, 128), rng);
		check6(random_prefixes6(rng, n, 16, 64), rng);
	}
}

TEST_CASE("random IPv4 sets of many sizes")
{
	std::mt19937_64 rng(17);
	for (size_t n : {100, 1000, 10000, 100000}) {
		INFO("prefixes " << n);
		check4(random_prefixes4(rng, n, 8, 32), rng);
		check4(random_prefixes4(rng, n, 20, 32), rng);
	}
}

TEST_CASE("a million IPv4 prefixes")
{
	std::mt19937_64 rng(19);
	const auto ranges = random_prefixes4(rng, 1000000, 22, 32);
	REQUIRE(ranges.size() > 800000);
	const prefix_set4 set = prefix_set4::build(ranges);
	CHECK(set.narrow());
	check_against_reference(set, ranges, queries_for(ranges, rng, 1000000, random32));
	// A fraction of rte_lpm's 64 MB tbl24, which it allocates for any set.
	CHECK(set.memory_bytes() < 32u << 20);
}

TEST_CASE("memory_bytes counts mapped records as mapped, in whole 2 MiB pages")
{
	// 80,000 addresses in 10.0.0.0/8: 2^15 records of 32 bytes, 1 MiB, mapped as one 2 MiB page.
	std::mt19937_64 rng(29);
	std::vector<prefix_set4::range> ranges;
	for (uint32_t i = 0; i < 80000; ++i) {
		const uint32_t a = 0x0A000000u | uint32_t(rng() & 0xFFFFFF);
		ranges.push_back({a, a});
	}
	const prefix_set4 set = prefix_set4::build(ranges);
	REQUIRE(set.narrow());
	REQUIRE(set.bucket_bits() == 15);
	CHECK(set.memory_bytes() >= memory::mapped_bytes(size_t(32) << 15));
	CHECK(memory::mapped_bytes(size_t(32) << 15) == size_t(2) << 20);
	// A small set is not mapped: what it asked for.
	const prefix_set4 small = prefix_set4::build(std::vector<prefix_set4::range>(ranges.begin(), ranges.begin() + 10));
	CHECK(small.memory_bytes() < size_t(64) << 10);
}

TEST_CASE("IPv4 sets that are clustered, dense, or overflow their buckets")
{
	std::mt19937_64 rng(23);
	SECTION("all in 10.0.0.0/8")
	{
		std::vector<range4> r;
		for (int i = 0; i < 20000; ++i)
			r.push_back(prefix_range(0x0A000000u | (uint32_t(rng()) & 0xFFFFFF), 20 + unsigned(rng() % 13)));
		normalize(r);
		check4(r, rng);
	}
	SECTION("every other address of a /16, and a few spread ones")
	{
		// One bucket holds tens of thousands of boundaries: bisection in the overflow array.
		std::vector<range4> r;
		for (uint32_t a = 0xC0A80000; a < 0xC0A90000; a += 2)
			r.push_back({a, a});
		for (int i = 0; i < 50; ++i)
			r.push_back(prefix_range(uint32_t(rng()), 24));
		normalize(r);
		const prefix_set4 set = prefix_set4::build(r);
		std::vector<uint32_t> q = queries_for(r, rng, 1000, random32);
		for (uint32_t a = 0xC0A7FF00; a < 0xC0A90100; ++a)  // the whole /16 and past both ends
			q.push_back(a);
		check_against_reference(set, r, q);
	}
	SECTION("clusters of short runs, 8 to 40 boundaries a cluster")
	{
		// Bucket counts around the 15 inline keys and the 32-key linear/bisection switch.
		std::vector<range4> r;
		for (int c = 0; c < 3000; ++c) {
			uint32_t a = uint32_t(rng()) & ~0xFFFu;
			const int runs = 4 + int(rng() % 18);  // 8 to 42 boundaries
			for (int i = 0; i < runs; ++i) {
				a += 2 + uint32_t(rng() % 60);
				const uint32_t len = uint32_t(rng() % 5);
				r.push_back({a, a + len});
				a += len;
			}
		}
		normalize(r);
		check4(r, rng);
	}
	SECTION("small sets spread over the space use 32-bit keys, clustered ones 16-bit keys")
	{
		const auto spread = random_prefixes4(rng, 300, 24, 32);
		const prefix_set4 wide = prefix_set4::build(spread);
		CHECK_FALSE(wide.narrow());
		CHECK(wide.memory_bytes() < 64u << 10);
		check_against_reference(wide, spread, queries_for(spread, rng, 20000, random32));
		std::vector<range4> close;
		for (int i = 0; i < 300; ++i)
			close.push_back(prefix_range(0xAC100000u | (uint32_t(rng()) & 0xFFFFF), 28));
		normalize(close);
		const prefix_set4 narrow = prefix_set4::build(close);
		CHECK(narrow.narrow());
		check_against_reference(narrow, close, queries_for(close, rng, 20000, random32));
	}
	SECTION("aligned prefixes, on bucket edges")
	{
		std::vector<range4> r;
		for (int i = 0; i < 30000; ++i)
			r.push_back(prefix_range(uint32_t(rng()), 12 + unsigned(rng() % 9)));
		normalize(r);
		check4(r, rng);
	}
}

TEST_CASE("random IPv6 sets")
{
	std::mt19937_64 rng(29);
	for (size_t n : {100, 1000, 10000, 100000}) {
		INFO("prefixes " << n);
		check6(random_prefixes6(rng, n, 16, 64), rng);
		check6(random_prefixes6(rng, n, 1, 128), rng);
	}
}

TEST_CASE("IPv6 sets skewed under one prefix")
{
	std::mt19937_64 rng(31);
	const u128 p2a00 = u128(0x2a00) << 112;
	SECTION("100K prefixes all under 2a00::/12")
	{
		// /32 and longer: with /16s, a few thousand of them would cover all 16 /16s of the /12.
		const auto r = random_prefixes6(rng, 100000, 32, 64, p2a00, 12);
		REQUIRE(r.size() > 90000);
		const prefix_set6 set = prefix_set6::build(r);
		// The common prefix is skipped: the buckets spread over the /12, not one bucket holding it all.
		CHECK(set.bucket_bits() >= 16);
		check_against_reference(set, r, queries_for(r, rng, 100000, random128));
		// And addresses near the /12 from outside it.
		std::vector<u128> q;
		for (int i = 0; i < 10000; ++i) {
			q.push_back(p2a00 | (random128(rng) & ((u128(1) << 116) - 1)));
			q.push_back((p2a00 - 1) - (random128(rng) & 0xFFFF));
			q.push_back((p2a00 + (u128(1) << 116)) + (random128(rng) & 0xFFFF));
		}
		check_against_reference(set, r, q);
	}
	SECTION("clustered: thousands of /48s in a few /32s, and /128s in a few /64s")
	{
		std::vector<range6> r;
		for (int c = 0; c < 8; ++c) {
			const u128 p32 = p2a00 | (u128(rng() & 0xFFFFF) << 96);
			for (int i = 0; i < 5000; ++i)
				r.push_back(prefix_range<u128>(p32 | (u128(rng() & 0xFFFF) << 80), 48));
		}
		for (int c = 0; c < 4; ++c) {
			const u128 p64 = p2a00 | (random128(rng) & (((u128(1) << 52) - 1) << 64));
			const int n = c == 0 ? 3 : c == 1 ? 20 : 3000;  // ties on the upper half, short and long runs
			for (int i = 0; i < n; ++i)
				r.push_back(prefix_range<u128>(p64 | (rng() & 0xFFFFF), 128));
		}
		normalize(r);
		const prefix_set6 set = prefix_set6::build(r);
		std::vector<u128> q = queries_for(r, rng, 50000, random128);
		for (const auto& x : r)
			for (int i = 0; i < 4; ++i)
				q.push_back((x.lo & ~u128(0xFFFFF)) | (rng() & 0xFFFFF));
		check_against_reference(set, r, q);
	}
	SECTION("all in one /64")
	{
		// The buckets then cut the lower half: in-bucket boundaries with lower halves that are not zero.
		const u128 p64 = (u128(0x20010db8) << 96) | (u128(0x12345678) << 64);
		std::vector<range6> r;
		for (int i = 0; i < 20000; ++i)
			r.push_back(prefix_range<u128>(p64 | rng(), 96 + unsigned(rng() % 33)));
		normalize(r);
		check6(r, rng);
	}
}

TEST_CASE("IPv6 edge addresses in mixed sets")
{
	std::mt19937_64 rng(37);
	auto r = random_prefixes6(rng, 2000, 16, 128);
	r.push_back({0, 0xFF});
	r.push_back({u128_max - 0xFF, u128_max});
	normalize(r);
	check6(r, rng);
}

TEST_CASE("build normalizes input that is not sorted, disjoint and non-adjacent")
{
	std::mt19937_64 rng(41);
	std::vector<range4> messy;
	for (int i = 0; i < 5000; ++i)
		messy.push_back(prefix_range(uint32_t(rng()), 8 + unsigned(rng() % 25)));
	messy.push_back({100, 200});
	messy.push_back({201, 300});  // adjacent
	messy.push_back({150, 250});  // overlapping
	messy.push_back({9, 3});      // empty: ignored
	std::vector<range4> clean(messy.begin(), messy.end() - 1);
	normalize(clean);
	const prefix_set4 set = prefix_set4::build(messy);
	check_against_reference(set, clean, queries_for(clean, rng, 20000, random32));

	std::vector<range6> messy6 = {{u128(50), u128(60)}, {u128(10), u128(20)}, {u128(21), u128(30)}, {u128(15), u128(55)}};
	const prefix_set6 set6 = prefix_set6::build(messy6);
	std::vector<range6> clean6 = messy6;
	normalize(clean6);
	REQUIRE(clean6.size() == 1);
	check_against_reference(set6, clean6, queries_for(clean6, rng, 1000, random128));
}

TEST_CASE("sets move")
{
	std::mt19937_64 rng(43);
	const auto r4 = random_prefixes4(rng, 10000, 16, 32);
	prefix_set4 a = prefix_set4::build(r4);
	prefix_set4 b = std::move(a);
	check_against_reference(b, r4, queries_for(r4, rng, 1000, random32));
	prefix_set4 c;
	c = std::move(b);
	check_against_reference(c, r4, queries_for(r4, rng, 1000, random32));

	const auto r6 = random_prefixes6(rng, 10000, 16, 64);
	prefix_set6 d = prefix_set6::build(r6);
	prefix_set6 e;
	e = std::move(d);
	check_against_reference(e, r6, queries_for(r6, rng, 1000, random128));
}
