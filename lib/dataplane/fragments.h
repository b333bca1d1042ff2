// First-fragment verdicts, so that the later fragments of a datagram follow it.
//
// Only the first fragment of an IP datagram carries the ports, so only it can be judged by the rules and
// the flow table. When a first fragment passes, its (family, src, dst, protocol, fragment id) is
// remembered here for a short time; a later fragment of the same datagram passes if and only if it finds
// its first fragment's entry. Fragments are not reassembled: the end host does that. What this does not
// allow through: non-first fragments that arrive before their first fragment (dropped, counted), and the
// overlap tricks that rewrite what a host reassembles. The parser drops tiny first fragments and TCP
// fragments at offset 8 (RFC 1858), so the ports a rule saw are the ports the host gets; for IPv4 the
// entry also keeps which byte ranges of the datagram have passed, and a fragment that overlaps one
// (RFC 1858's overlap attack, or a duplicate that could carry other bytes: hosts differ in which copy
// wins) is dropped and counted, a first fragment sent again included. So is a fragment that would leave
// a datagram in more than four separate pieces at once: past that the ranges could not be followed, and
// no sender scatters a datagram so. IPv6 hosts discard overlapping datagrams themselves (RFC 5722).
//
// Per worker, owner-only: a 4-way set-associative array, the oldest entry of a set replaced first.
#pragma once

#include <algorithm>
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

	// A first fragment passed: its datagram's other fragments may follow until now + ttl. False when a
	// first fragment of the same datagram passed already (two in one burst): this one overlaps it.
	bool remember(const packet::parsed& p, uint64_t now)
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
		const bool same = victim->k == k && victim->expires > now;
		victim->k = k;
		victim->expires = now + ttl_;
		if (!same) {
			victim->ranges = 0;
			victim->tracked = p.family == 4;
		}
		if (!victim->tracked)
			return true;
		if (same && victim->overlaps(0, data_length(p)))
			return false;
		return victim->add(0, data_length(p));
	}

	enum class verdict : uint8_t { allowed, no_first, overlap };

	// A later fragment: did its first fragment pass, recently, and does it cover only bytes of the
	// datagram that no fragment has yet? Its bytes are recorded.
	verdict check(const packet::parsed& p, uint64_t now)
	{
		entry* e = find(p, now);
		if (!e)
			return verdict::no_first;
		if (!e->tracked)
			return verdict::allowed;
		const uint32_t lo = p.frag_offset, hi = lo + data_length(p);
		return e->overlaps(lo, hi) || !e->add(lo, hi) ? verdict::overlap : verdict::allowed;
	}

	// A first fragment, before the rules judge it: one of a datagram whose first fragment passed
	// already would overlap its bytes. (remember() records it once it passes.)
	bool first_overlaps(const packet::parsed& p, uint64_t now)
	{
		const entry* e = find(p, now);
		return e && e->tracked && e->overlaps(0, data_length(p));
	}

private:
	static constexpr uint32_t ways = 4;
	struct key {
		uint8_t src[16], dst[16];
		uint32_t id;
		uint8_t proto, family, pad[2];
		friend bool operator==(const key& a, const key& b) { return std::memcmp(&a, &b, sizeof(key)) == 0; }
	};
	// Byte ranges of the datagram that have passed, [lo, hi), adjacent ones merged: in order, or nearly,
	// a datagram needs one or two.
	static constexpr uint32_t max_ranges = 4;
	struct entry {
		key k{};
		uint64_t expires = 0;
		uint32_t lo[max_ranges] = {}, hi[max_ranges] = {};
		uint8_t ranges = 0;
		bool tracked = false;
		bool overlaps(uint32_t from, uint32_t to) const
		{
			for (uint32_t r = 0; r < ranges; ++r)
				if (from < hi[r] && lo[r] < to)
					return true;
			return false;
		}
		// False when the datagram would be in more than max_ranges pieces.
		bool add(uint32_t from, uint32_t to)
		{
			for (uint32_t r = 0; r < ranges; ++r) {
				if (hi[r] == from || lo[r] == to) {
					lo[r] = std::min(lo[r], from);
					hi[r] = std::max(hi[r], to);
					// It may now touch another range: join them.
					for (uint32_t q = 0; q < ranges; ++q)
						if (q != r && (hi[q] == lo[r] || lo[q] == hi[r])) {
							lo[r] = std::min(lo[r], lo[q]);
							hi[r] = std::max(hi[r], hi[q]);
							lo[q] = lo[ranges - 1], hi[q] = hi[ranges - 1];
							--ranges;
							break;
						}
					return true;
				}
			}
			if (ranges == max_ranges)
				return false;
			lo[ranges] = from;
			hi[ranges] = to;
			++ranges;
			return true;
		}
	};
	entry* find(const packet::parsed& p, uint64_t now)
	{
		const key k = key_of(p);
		entry* set = &slots_[size_t(hash(k) & mask_) * ways];
		for (uint32_t w = 0; w < ways; ++w)
			if (set[w].k == k && set[w].expires > now)
				return &set[w];
		return nullptr;
	}
	// Bytes of the datagram this fragment carries (IPv4: after the IP header).
	static uint32_t data_length(const packet::parsed& p) { return p.l3_length - uint32_t(p.l4_offset - p.l3_offset); }

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
