// First-fragment verdicts, so that the later fragments of a datagram follow it.
//
// Only the first fragment of an IP datagram carries the ports, so only it can be judged by the rules and
// the flow table. When a first fragment passes, its (family, src, dst, protocol, fragment id) is
// remembered here for a short time; a later fragment of the same datagram passes if and only if it finds
// its first fragment's entry. Fragments are not reassembled: the end host does that. What this does not
// allow through: non-first fragments that arrive before their first fragment (dropped, counted), and the
// overlap tricks that rewrite a first fragment's L4 header (RFC 1858: the parser drops tiny first
// fragments and TCP fragments at offset 8, so the ports a rule saw are the ports the host gets).
//
// Per worker, owner-only: a 4-way set-associative array, the oldest entry of a set replaced first.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "packet/packet.h"

namespace portcullis::dataplane {

class fragment_verdicts {
public:
	fragment_verdicts(uint32_t entries, uint64_t ttl_ticks) : ttl_(ttl_ticks)
	{
		uint32_t sets = 1;
		while (sets * ways < entries)
			sets <<= 1;
		mask_ = sets - 1;
		slots_.resize(size_t(sets) * ways);
	}

	// A first fragment passed: its datagram's other fragments may follow until now + ttl.
	void remember(const packet::parsed& p, uint64_t now)
	{
		const key k = key_of(p);
		entry* set = &slots_[size_t(hash(k) & mask_) * ways];
		entry* victim = &set[0];
		for (uint32_t w = 0; w < ways; ++w) {
			if (set[w].k == k) {
				victim = &set[w];
				break;
			}
			if (set[w].expires < victim->expires)
				victim = &set[w];
		}
		victim->k = k;
		victim->expires = now + ttl_;
	}

	// A later fragment: did its first fragment pass, recently?
	bool allowed(const packet::parsed& p, uint64_t now) const
	{
		const key k = key_of(p);
		const entry* set = &slots_[size_t(hash(k) & mask_) * ways];
		for (uint32_t w = 0; w < ways; ++w)
			if (set[w].k == k && set[w].expires > now)
				return true;
		return false;
	}

private:
	static constexpr uint32_t ways = 4;
	struct key {
		uint8_t src[16], dst[16];
		uint32_t id;
		uint8_t proto, family, pad[2];
		friend bool operator==(const key& a, const key& b) { return std::memcmp(&a, &b, sizeof(key)) == 0; }
	};
	struct entry {
		key k{};
		uint64_t expires = 0;
	};

	static key key_of(const packet::parsed& p)
	{
		key k{};
		std::memcpy(k.src, &p.src, 16);
		std::memcpy(k.dst, &p.dst, 16);
		k.id = p.frag_id;
		k.proto = p.proto;
		k.family = p.family;
		return k;
	}
	static uint64_t hash(const key& k)
	{
		uint64_t w[5];
		std::memcpy(w, &k, sizeof(w));
		uint64_t h = 0x9e3779b97f4a7c15ull;
		for (uint64_t x : w)
			h = (h ^ x) * 0xff51afd7ed558ccdull;
		return h ^ (h >> 31);
	}

	std::vector<entry> slots_;
	uint32_t mask_;
	uint64_t ttl_;
};

} // namespace portcullis::dataplane
