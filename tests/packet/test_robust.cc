// Robustness: random mutations (bit flips, byte writes, truncations, extensions) of valid frames must
// never crash or read out of bounds (each mutant lives in a buffer of exactly its size, so ASan sees any
// overread), and whatever parses must describe a frame that fits in the bytes given.
#include <catch2/catch.hpp>

#include <cstring>
#include <memory>
#include <random>

#include "frames.h"

using namespace portcullis::packet;
using namespace portcullis::packet::test;

namespace {

std::vector<bytes> seed_frames()
{
	const bytes quote4 = ipv4({.proto = 6}, tcp({.sport = 1, .dport = 2}));
	const bytes quote6 = ipv6({.next_header = 0}, ipv6_opts_ext(17) + udp(3, 4));
	return {
		eth(et_ipv4, ipv4({.proto = 6}, tcp({.options = {2, 4, 5, 0xB4}}, filler(20)))),
		eth(et_ipv4, ipv4({.proto = 17, .options = {7, 7, 4, 0, 0, 0, 0}}, udp(53, 53, filler(12))), {{.vid = 9}}),
		eth(et_ipv4, ipv4({.proto = 1}, icmp_echo(8, 1, 2, filler(16)))),
		eth(et_ipv4, ipv4({.proto = 1}, icmp(3, 3, 0, quote4))),
		eth(et_ipv4, ipv4({.proto = 17, .mf = true}, udp(1, 2, filler(32), 1000))),
		eth(et_ipv4, ipv4({.proto = 6, .frag_offset = 64}, filler(32))),
		eth(et_ipv6, ipv6({.next_header = 6}, tcp({}, filler(8))), {{.tpid = 0x88A8, .vid = 1}, {.vid = 2}}),
		eth(et_ipv6, ipv6({.next_header = 0}, ipv6_opts_ext(43) + ipv6_opts_ext(44, 16) + ipv6_frag_ext(51, 0, true, 7) +
		                                       ipv6_ah_ext(17) + udp(7, 8, filler(8)))),
		eth(et_ipv6, ipv6({.next_header = 58}, icmp(1, 4, 0, quote6))),
		eth(et_ipv6, ipv6({.next_header = 58}, icmp_echo(128, 5, 6))),
		eth(et_ipv6, ipv6({.next_header = 44}, ipv6_frag_ext(6, 1448, true, 1) + filler(24))),
		eth(et_arp, filler(28), {}, 60),
	};
}

void check_invariants(const parsed& p, uint32_t len)
{
	REQUIRE(to_string(p.reason) != "unknown");
	REQUIRE(size_t(p.kind) < packet_kind_count);
	if (p.reason != drop_reason::none)
		return;
	REQUIRE(p.vlan_count <= max_vlan_tags);
	REQUIRE(p.l3_offset <= len);
	if (p.family == 0)
		return;
	REQUIRE((p.family == 4 || p.family == 6));
	REQUIRE(p.l3_offset + p.l3_length <= len);
	REQUIRE(p.l4_offset <= p.payload_offset);
	REQUIRE(p.payload_offset + p.payload_length <= p.l3_offset + p.l3_length);
	if (p.is_non_first_fragment())
		REQUIRE((p.sport == 0 && p.dport == 0));
}

} // namespace

TEST_CASE("200k random mutations of valid frames")
{
	const std::vector<bytes> seeds = seed_frames();
	for (const auto& s : seeds)
		REQUIRE(parse_bytes(s).ok());

	std::mt19937_64 rng(0x5EED'CAFE);
	auto pick = [&](size_t n) { return size_t(rng() % n); };
	size_t parsed_ok = 0;
	size_t reasons_seen[drop_reason_count] = {};
	constexpr int iterations = 200'000;
	for (int it = 0; it < iterations; ++it) {
		bytes m = seeds[pick(seeds.size())];
		const int edits = 1 + int(pick(4));
		for (int e = 0; e < edits; ++e) {
			switch (pick(6)) {
			case 0:
			case 1:  // flip a bit
				if (!m.empty())
					m[pick(m.size())] ^= uint8_t(1u << pick(8));
				break;
			case 2:  // overwrite a byte, biased to the header area where the lengths live
				if (!m.empty())
					m[pick(m.size() < 96 ? m.size() : 96)] = uint8_t(rng());
				break;
			case 3:  // truncate
				m.resize(pick(m.size() + 1));
				break;
			case 4:  // extend with junk
				for (size_t k = pick(64); k > 0; --k)
					m.push_back(uint8_t(rng()));
				break;
			case 5:  // set a length-like 16-bit field to an extreme
				if (m.size() >= 2) {
					const size_t at = pick(m.size() - 1);
					const uint16_t v = pick(2) ? 0xFFFF : uint16_t(pick(64));
					m[at] = uint8_t(v >> 8);
					m[at + 1] = uint8_t(v);
				}
				break;
			}
		}
		// An exact-size heap copy: any read past the end is a heap overflow the sanitizers catch.
		const uint32_t len = uint32_t(m.size());
		std::unique_ptr<uint8_t[]> buf(new uint8_t[len ? len : 1]);
		std::copy(m.begin(), m.end(), buf.get());
		parsed p;
		const parse_options opt{.verify_ipv4_checksum = (it & 1) != 0};
		parse(buf.get(), len, p, opt);
		check_invariants(p, len);
		++reasons_seen[size_t(p.reason)];
		parsed_ok += p.ok();

		// And as a split mbuf: a random contiguous prefix of the same bytes.
		const uint32_t contig = uint32_t(pick(len + 1));
		std::unique_ptr<uint8_t[]> part(new uint8_t[contig ? contig : 1]);
		std::copy(m.begin(), m.begin() + contig, part.get());
		parsed q;
		parse_first_segment(part.get(), contig, len, q, opt);
		check_invariants(q, len);
		if (q.ok()) {
			// Whatever parses from the prefix parses the same from the whole frame.
			REQUIRE(std::memcmp(&p, &q, sizeof p) == 0);
		}
	}
	// The mutations reach deep enough to exercise many reasons and still leave many frames valid.
	size_t distinct = 0;
	for (size_t r = 0; r < drop_reason_count; ++r)
		distinct += reasons_seen[r] != 0;
	INFO("parsed ok: " << parsed_ok << ", distinct reasons: " << distinct);
	CHECK(parsed_ok > iterations / 20);
	CHECK(distinct >= 20);
}
