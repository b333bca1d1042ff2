// live_set: the base, runtime adds (with expiry) and deletes, and the versions it publishes.
#include <catch2/catch.hpp>

#include "sets/live_set.h"

using namespace portcullis;
using sets::live_set;

namespace {

constexpr uint32_t ip4(uint32_t a, uint32_t b, uint32_t c, uint32_t d) { return a << 24 | b << 16 | c << 8 | d; }

live_set make(std::vector<value_range<uint32_t>> base4 = {{ip4(198, 18, 0, 0), ip4(198, 18, 0, 255)}})
{
	return live_set("s", std::move(base4), {}, 1);
}

} // namespace

TEST_CASE("a live set holds its base until changed")
{
	live_set s = make();
	CHECK(s.contains(ip4(198, 18, 0, 7)));
	CHECK_FALSE(s.contains(ip4(198, 18, 1, 7)));
	CHECK_FALSE(s.contains(u128(ip4(198, 18, 0, 7))));  // an IPv6 address with the same number is not in it
	CHECK(s.base_ranges() == 1);
	CHECK(s.counters().versions == 1);
}

TEST_CASE("adds and deletes override the base, and the later one wins")
{
	live_set s = make();
	auto old = s.add(false, ip4(198, 18, 1, 0), ip4(198, 18, 1, 15), 0);
	CHECK(old != nullptr);  // the version it replaced, for the caller to free after quiescence
	CHECK(s.contains(ip4(198, 18, 1, 15)));
	CHECK_FALSE(s.contains(ip4(198, 18, 1, 16)));
	s.del(false, ip4(198, 18, 0, 0), ip4(198, 18, 0, 127));
	CHECK_FALSE(s.contains(ip4(198, 18, 0, 5)));
	CHECK(s.contains(ip4(198, 18, 0, 128)));
	// A delete inside an add splits it.
	s.del(false, ip4(198, 18, 1, 4), ip4(198, 18, 1, 7));
	CHECK(s.contains(ip4(198, 18, 1, 3)));
	CHECK_FALSE(s.contains(ip4(198, 18, 1, 4)));
	CHECK(s.contains(ip4(198, 18, 1, 8)));
	CHECK(s.adds().size() == 2);
	// Adding back what was deleted from the base.
	s.add(false, ip4(198, 18, 0, 5), ip4(198, 18, 0, 5), 0);
	CHECK(s.contains(ip4(198, 18, 0, 5)));
	CHECK_FALSE(s.contains(ip4(198, 18, 0, 6)));
	CHECK(s.counters().adds == 2);
	CHECK(s.counters().deletes == 2);
}

TEST_CASE("adds expire at their time, and only then")
{
	live_set s = make({});
	s.add(false, ip4(198, 18, 2, 1), ip4(198, 18, 2, 1), 1000);
	s.add(false, ip4(198, 18, 2, 2), ip4(198, 18, 2, 2), 2000);
	s.add(false, ip4(198, 18, 2, 3), ip4(198, 18, 2, 3), 0);
	CHECK(s.next_expiry() == 1000);
	CHECK(s.expire(999) == nullptr);  // nothing due: nothing published
	CHECK(s.expire(1000) != nullptr);
	CHECK_FALSE(s.contains(ip4(198, 18, 2, 1)));
	CHECK(s.contains(ip4(198, 18, 2, 2)));
	CHECK(s.next_expiry() == 2000);
	s.expire(5000);
	CHECK_FALSE(s.contains(ip4(198, 18, 2, 2)));
	CHECK(s.contains(ip4(198, 18, 2, 3)));  // no timeout
	CHECK(s.next_expiry() == 0);
	CHECK(s.counters().expiries == 2);
	// Re-adding refreshes the timeout instead of keeping two entries.
	s.add(false, ip4(198, 18, 2, 3), ip4(198, 18, 2, 3), 7000);
	CHECK(s.adds().size() == 1);
	CHECK(s.next_expiry() == 7000);
}

TEST_CASE("replace and flush start over; IPv6 works the same")
{
	live_set s = make();
	s.add(false, ip4(198, 18, 3, 0), ip4(198, 18, 3, 255), 0);
	const u128 net = u128(0x2001000200000000ull) << 64;
	s.replace({{ip4(198, 19, 0, 0), ip4(198, 19, 255, 255)}}, {{net, net | ((u128(1) << 80) - 1)}}, 2);
	CHECK_FALSE(s.contains(ip4(198, 18, 0, 1)));  // the old base is gone
	CHECK_FALSE(s.contains(ip4(198, 18, 3, 1)));  // and so are the adds
	CHECK(s.contains(ip4(198, 19, 7, 7)));
	CHECK(s.contains(net | 5));
	s.del(true, net, net | 0xFFFF);
	CHECK_FALSE(s.contains(net | 5));
	CHECK(s.contains(net | 0x10000));
	s.add(true, net | 5, net | 5, 0);
	CHECK(s.contains(net | 5));
	s.flush();
	CHECK_FALSE(s.contains(net | 5));
	CHECK_FALSE(s.contains(ip4(198, 19, 7, 7)));
	CHECK(s.base_ranges() == 0);
	CHECK(s.counters().loads == 1);
	CHECK(s.counters().flushes == 1);
}

TEST_CASE("a reader keeps a consistent version while the writer moves on")
{
	live_set s = make();
	auto first = s.add(false, ip4(198, 18, 9, 9), ip4(198, 18, 9, 9), 0);
	REQUIRE(first);
	// The retired version still answers as it did: a worker mid-burst sees the old set, never a mix.
	CHECK(first->contains(ip4(198, 18, 0, 1)));
	CHECK_FALSE(first->contains(ip4(198, 18, 9, 9)));
	CHECK(s.contains(ip4(198, 18, 9, 9)));
}

TEST_CASE("a full set drops its oldest adds first, and counts them")
{
	live_set s("scanners", {}, {}, 0, 3);
	for (uint32_t i = 1; i <= 3; ++i)
		s.add(false, ip4(198, 18, 5, i), ip4(198, 18, 5, i), 0);
	// Refreshing the oldest makes it the newest.
	s.add(false, ip4(198, 18, 5, 1), ip4(198, 18, 5, 1), 0);
	s.add(false, ip4(198, 18, 5, 4), ip4(198, 18, 5, 4), 0);
	CHECK(s.adds().size() == 3);
	CHECK(s.counters().evicted == 1);
	CHECK_FALSE(s.contains(ip4(198, 18, 5, 2)));  // the oldest
	CHECK(s.contains(ip4(198, 18, 5, 1)));
	CHECK(s.contains(ip4(198, 18, 5, 3)));
	CHECK(s.contains(ip4(198, 18, 5, 4)));
}

TEST_CASE("a batch of adds is one version")
{
	live_set s("scanners", {}, {}, 0, 1000);
	const uint64_t before = s.counters().versions;
	std::vector<sets::timed_range> batch;
	for (uint32_t i = 0; i < 500; ++i)
		batch.push_back({false, ip4(198, 18, 6, 0) + i, ip4(198, 18, 6, 0) + i, 0, 0});
	batch.push_back({false, ip4(198, 18, 6, 0), ip4(198, 18, 6, 0), 0, 0});  // a repeat
	CHECK(s.add_batch(batch) != nullptr);
	CHECK(s.counters().versions == before + 1);
	CHECK(s.adds().size() == 500);
	CHECK(s.contains(ip4(198, 18, 6, 0) + 499));
	CHECK_FALSE(s.contains(ip4(198, 18, 6, 0) + 500));
	CHECK(s.add_batch({}) == nullptr);
}

TEST_CASE("the pieces an add splits stay evictable, so a full set keeps its bound")
{
	live_set s("mixed", {}, {}, 0, 4);
	s.add(false, ip4(198, 18, 7, 0), ip4(198, 18, 7, 255), 0);
	for (uint32_t i = 1; i < 200; i += 2) {
		s.add(false, ip4(198, 18, 7, i), ip4(198, 18, 7, i), 0);
		REQUIRE(s.adds().size() <= 4);
	}
	CHECK(s.contains(ip4(198, 18, 7, 199)));  // the newest stays
	CHECK(s.counters().evicted > 90);
}
