// memory::zero_aligned: exactly the bytes asked are zeroed, at every size the data path uses.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>

#include "memory/zero.h"

namespace {

// Fills a buffer with a pattern, zeroes Bytes of it from a 16-byte boundary, and checks every byte.
template <std::size_t Bytes>
void check_zeroes_exactly()
{
	alignas(64) uint8_t buf[Bytes + 64];
	for (std::size_t i = 0; i < sizeof buf; ++i)
		buf[i] = uint8_t(0xA5 ^ i);
	portcullis::memory::zero_aligned<Bytes>(buf + 16);
	for (std::size_t i = 0; i < sizeof buf; ++i) {
		const bool inside = i >= 16 && i < 16 + Bytes;
		INFO("size " << Bytes << ", byte " << i);
		CHECK(buf[i] == (inside ? 0 : uint8_t(0xA5 ^ i)));
	}
}

} // namespace

TEST_CASE("zero_aligned zeroes exactly its bytes and nothing beside them")
{
	check_zeroes_exactly<16>();
	check_zeroes_exactly<96>();   // a flow entry
	check_zeroes_exactly<128>();  // a parsed record, a burst's filter of opened flows
	check_zeroes_exactly<256>();
}
