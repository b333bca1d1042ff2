// The connection-tracking key: one key for both directions of a flow.
//
// The two endpoints are stored in canonical order (the smaller (address, port) first), so a packet and
// its reply build the same key; `reversed` tells which way a given packet went. IPv4 addresses use the
// first 4 bytes of the 16-byte fields (host order, as uint32), the rest zero. ICMP echo uses the echo
// identifier as both ports so that request and reply meet; other ICMP uses 0.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "rules/match.h"

namespace portcullis::flow {

struct alignas(8) flow_key {
	// u128 values kept as bytes so the key packs into 40 bytes (a u128 member would align it to 48).
	uint8_t addr_a[16];
	uint8_t addr_b[16];
	uint16_t port_a;
	uint16_t port_b;
	uint8_t proto;
	uint8_t family;  // 4 or 6
	uint8_t pad[2];
	u128 a() const { u128 v; std::memcpy(&v, addr_a, 16); return v; }
	u128 b() const { u128 v; std::memcpy(&v, addr_b, 16); return v; }
	// Without a branch per word, inlined (unlike a call to libc's memcmp): two 16-byte compares and one
	// of 8 bytes, 13 instructions where five words took 24 (callgrind; 0.98 of established_64b's worker
	// cycles with the other cuts of that change, bench/README.md).
	friend bool operator==(const flow_key& x, const flow_key& y)
	{
		const auto* bx = reinterpret_cast<const unsigned char*>(&x);
		const auto* by = reinterpret_cast<const unsigned char*>(&y);
		uint64_t x4, y4;
		std::memcpy(&x4, bx + 32, 8);
		std::memcpy(&y4, by + 32, 8);
#ifdef __SSE2__
		const __m128i eq = _mm_and_si128(
		    _mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bx)),
		                   _mm_loadu_si128(reinterpret_cast<const __m128i*>(by))),
		    _mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(bx + 16)),
		                   _mm_loadu_si128(reinterpret_cast<const __m128i*>(by + 16))));
		return (_mm_movemask_epi8(eq) == 0xffff) & (x4 == y4);
#else
		uint64_t a[4], b[4];
		std::memcpy(a, bx, sizeof(a));
		std::memcpy(b, by, sizeof(b));
		return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (x4 ^ y4)) == 0;
#endif
	}
};
static_assert(sizeof(flow_key) == 40);

// Builds the canonical key of a packet going src -> dst; sets `reversed` when src is endpoint b.
inline flow_key make_key(uint8_t family, uint8_t proto, u128 src, u128 dst, uint16_t sport, uint16_t dport,
                         bool& reversed)
{
	flow_key k{};
	reversed = (src > dst) || (src == dst && sport > dport);
	const u128 a = reversed ? dst : src, b = reversed ? src : dst;
	std::memcpy(k.addr_a, &a, 16);
	std::memcpy(k.addr_b, &b, 16);
	k.port_a = reversed ? dport : sport;
	k.port_b = reversed ? sport : dport;
	k.proto = proto;
	k.family = family;
	return k;
}

// make_key for IPv4 (family 4), written straight into `k`, and its hash_key: the same bytes and hash,
// without 128-bit compares, and hashed from the words in registers. Building the key in memory and
// loading it back to hash it cost a failed store-to-load forward per packet (narrow stores, then a wider
// load of the same bytes: bench-pipeline's lookup stage).
inline uint64_t hash_words(uint64_t w0, uint64_t w1, uint64_t w2, uint64_t w3, uint64_t w4,
                           uint64_t seed = 0x2545f4914f6cdd1dull);
inline uint64_t hash_words4(uint64_t addresses, uint64_t w4, uint64_t seed = 0x2545f4914f6cdd1dull);

inline uint64_t make_key4(flow_key& k, uint8_t proto, uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
                          bool& reversed)
{
	static_assert(std::endian::native == std::endian::little, "an IPv4 address is the low 4 bytes of its field");
	reversed = (src > dst) || (src == dst && sport > dport);
	const uint64_t a = reversed ? dst : src, b = reversed ? src : dst;
	const uint64_t port_a = reversed ? dport : sport, port_b = reversed ? sport : dport;
	const uint64_t w4 = port_a | port_b << 16 | uint64_t(proto) << 32 | uint64_t(4) << 40;
	auto* out = reinterpret_cast<unsigned char*>(&k);
	const uint64_t zero = 0;
	std::memcpy(out, &a, 8);
	std::memcpy(out + 8, &zero, 8);
	std::memcpy(out + 16, &b, 8);
	std::memcpy(out + 24, &zero, 8);
	std::memcpy(out + 32, &w4, 8);
	return hash_words4(a | b << 32, w4);
}

// 64-bit hash of the five key words. Low bits pick the primary bucket and the slot signature, high bits
// the secondary bucket, so every bit must depend on every key bit: three independent 64x64->128-bit
// multiplies folded (wyhash's "mum"), then one more to mix the three. Three multiplies side by side
// instead of a chain of seven: about a third of the latency per key (bench-flowtable's miss case is
// mostly hashing once the buckets are cached).
inline uint64_t mum(uint64_t a, uint64_t b)
{
	const u128 r = u128(a) * b;
	return uint64_t(r) ^ uint64_t(r >> 64);
}

inline uint64_t hash_words(uint64_t w0, uint64_t w1, uint64_t w2, uint64_t w3, uint64_t w4, uint64_t seed)
{
	// Odd constants with about half their bits set (wyhash's); an IPv4 key's zero words still meet a
	// non-zero factor.
	constexpr uint64_t p0 = 0xa0761d6478bd642full, p1 = 0xe7037ed1a0b428dbull, p2 = 0x8ebc6af09c88c6e3ull,
	                   p3 = 0x589965cc75374cc3ull, p4 = 0x1d8e4e27c47d124full;
	const uint64_t a = mum(w0 ^ p0 ^ seed, w1 ^ p1);
	const uint64_t b = mum(w2 ^ p2, w3 ^ p3 ^ seed);
	const uint64_t c = mum(w4 ^ p4, seed ^ p0);
	return mum(a ^ b ^ p1, c ^ p2);
}

// An IPv4 key is 12 bytes of data (two addresses, and the ports, protocol and family word): one
// 64x64->128-bit multiply of the two words, folded by a second (wyhash's two-round short-input hash).
// Two multiplies where hash_words takes four, and the zero halves of the addresses are never read:
// 4 cycles a key instead of 7 (bench-flowtable's misses are half hashing once buckets are fetched).
inline uint64_t hash_words4(uint64_t addresses, uint64_t w4, uint64_t seed)
{
	// w4's top bit is always clear: setting it keeps the second factor from being zero, whatever the seed.
	// The first factor is zero for one address pair; the factors are folded in after the multiply too,
	// so that pair's flows still hash by their ports (or every flow between those two hosts would share
	// one pair of buckets).
	constexpr uint64_t p0 = 0xa0761d6478bd642full, p1 = 0xe7037ed1a0b428dbull, p2 = 0x8ebc6af09c88c6e3ull,
	                   p3 = 0x589965cc75374cc3ull;
	const uint64_t x = addresses ^ p0 ^ seed, y = (w4 ^ p1 ^ seed) | uint64_t(1) << 63;
	const u128 r = u128(x) * y;
	return mum(uint64_t(r) ^ y ^ p2, uint64_t(r >> 64) ^ x ^ p3);
}

// The hash of any key: IPv4 keys (family 4: the addresses' upper 12 bytes are zero) by hash_words4, the
// same value make_key4 returns; others by all five words.
inline uint64_t hash_key(const flow_key& k, uint64_t seed = 0x2545f4914f6cdd1dull)
{
	uint64_t w[5];
	std::memcpy(w, &k, sizeof(w));
	if (k.family == 4)
		return hash_words4(w[0] | w[2] << 32, w[4], seed);
	return hash_words(w[0], w[1], w[2], w[3], w[4], seed);
}

} // namespace portcullis::flow
