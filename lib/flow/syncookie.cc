#include "flow/syncookie.h"

#include <random>

namespace portcullis::flow {
namespace {

inline uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

inline void sip_round(uint64_t& v0, uint64_t& v1, uint64_t& v2, uint64_t& v3)
{
	v0 += v1;
	v1 = rotl(v1, 13);
	v1 ^= v0;
	v0 = rotl(v0, 32);
	v2 += v3;
	v3 = rotl(v3, 16);
	v3 ^= v2;
	v0 += v3;
	v3 = rotl(v3, 21);
	v3 ^= v0;
	v2 += v1;
	v1 = rotl(v1, 17);
	v1 ^= v2;
	v2 = rotl(v2, 32);
}

// The tuple and ISN in five words; the second hash adds a sixth, the count and MSS index.
uint32_t tuple_hash(const cookie_secret& key, const cookie_tuple& t, uint32_t isn, uint64_t extra, uint32_t words)
{
	const uint64_t w[6] = {
		uint64_t(t.client), uint64_t(t.client >> 64) ^ uint64_t(t.family) << 56,
		uint64_t(t.server), uint64_t(t.server >> 64),
		uint64_t(t.client_port) << 48 | uint64_t(t.server_port) << 32 | isn,
		extra,
	};
	return uint32_t(siphash24(key, w, words));
}

} // namespace

cookie_secret cookie_secret::random()
{
	std::random_device rd;
	cookie_secret s;
	s.k0 = uint64_t(rd()) << 32 | rd();
	s.k1 = uint64_t(rd()) << 32 | rd();
	return s;
}

uint64_t siphash24(const cookie_secret& key, const uint64_t* words, uint32_t n)
{
	uint64_t v0 = 0x736f6d6570736575ull ^ key.k0, v1 = 0x646f72616e646f6dull ^ key.k1;
	uint64_t v2 = 0x6c7967656e657261ull ^ key.k0, v3 = 0x7465646279746573ull ^ key.k1;
	for (uint32_t i = 0; i < n; ++i) {
		v3 ^= words[i];
		sip_round(v0, v1, v2, v3);
		sip_round(v0, v1, v2, v3);
		v0 ^= words[i];
	}
	// The final block: no tail bytes, the message length in bytes in the top byte.
	const uint64_t last = uint64_t(n * 8) << 56;
	v3 ^= last;
	sip_round(v0, v1, v2, v3);
	sip_round(v0, v1, v2, v3);
	v0 ^= last;
	v2 ^= 0xff;
	for (int r = 0; r < 4; ++r)
		sip_round(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

uint32_t make_cookie(const cookie_secret& key, const cookie_tuple& t, uint32_t isn, uint16_t mss, uint32_t count)
{
	uint32_t index = 0;
	for (uint32_t i = 1; i < 4; ++i)
		if (mss >= cookie_mss[i])
			index = i;
	const uint32_t stamp = (count & 0x3fu) << 26 | index << 24;
	return tuple_hash(key, t, isn, 0, 5) + (stamp | (tuple_hash(key, t, isn, stamp, 6) & 0xffffffu));
}

uint16_t check_cookie(const cookie_secret& key, const cookie_tuple& t, uint32_t isn, uint32_t cookie, uint32_t count)
{
	const uint32_t v = cookie - tuple_hash(key, t, isn, 0, 5);
	const uint32_t made = v >> 26;
	if (((count - made) & 0x3fu) > 1)
		return 0;
	const uint32_t stamp = v & 0xff000000u;
	if ((tuple_hash(key, t, isn, stamp, 6) & 0xffffffu) != (v & 0xffffffu))
		return 0;
	return cookie_mss[(v >> 24) & 3u];
}

} // namespace portcullis::flow
