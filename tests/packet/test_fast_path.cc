// The straight-line path for untagged IPv4 TCP/UDP (parse.cc) against the general parser: for every
// frame, valid or mutated, whole or split as a multi-segment mbuf presents it, both must give the same
// reason and the same record to the byte. The seeds sit on the fast path's edges (options, DF, padding,
// TCP options, short UDP lengths, VLAN tags, fragments), where a wrong shortcut would show.
#include <catch2/catch.hpp>

#include <cstring>
#include <array>
#include <memory>
#include <random>

#include "frames.h"

using namespace portcullis::packet;
using namespace portcullis::packet::test;

namespace {

std::vector<bytes> edge_frames()
{
	return {
		eth(et_ipv4, ipv4({.proto = 6}, tcp({.flags = 0x02}))),
		eth(et_ipv4, ipv4({.proto = 6, .df = true}, tcp({.options = {2, 4, 5, 0xB4}}, filler(30)))),
		eth(et_ipv4, ipv4({.proto = 17}, udp(53, 5353, filler(5))), {}, 60),  // padded to 60 bytes
		eth(et_ipv4, ipv4({.proto = 17}, udp(1, 2, filler(12), 10))),         // UDP length shorter than IP's
		eth(et_ipv4, ipv4({.proto = 17}, udp(1, 2, {}, 8))),
		eth(et_ipv4, ipv4({.proto = 6, .options = {1, 1, 1, 0}}, tcp({}))),  // IHL 6: general path
		eth(et_ipv4, ipv4({.proto = 17, .mf = true}, udp(1, 2, filler(16), 800))),
		eth(et_ipv4, ipv4({.proto = 6, .frag_offset = 16}, filler(24))),
		eth(et_ipv4, ipv4({.proto = 6}, tcp({})), {{.vid = 7}}),
		eth(et_ipv4, ipv4({.proto = 1}, icmp_echo(8, 3, 4))),
		eth(et_ipv4, ipv4({.proto = 6, .bad_checksum = true}, tcp({}, filler(4)))),
		eth(et_ipv6, ipv6({.next_header = 6}, tcp({}))),
	};
}

void require_same(const uint8_t* frame, uint32_t contiguous, uint32_t len, bool verify)
{
	parsed fast, general;
	const drop_reason a = parse_first_segment(frame, contiguous, len, fast, {.verify_ipv4_checksum = verify});
	const drop_reason b =
	    parse_first_segment(frame, contiguous, len, general, {.verify_ipv4_checksum = verify, .general_only = true});
	REQUIRE(a == b);
	REQUIRE(fast.reason == general.reason);
	REQUIRE(std::memcmp(&fast, &general, sizeof fast) == 0);
}

} // namespace

TEST_CASE("the IPv4 TCP/UDP fast path and the general parser agree on every frame")
{
	const std::vector<bytes> seeds = edge_frames();
	for (const auto& s : seeds)
		for (const bool verify : {false, true})
			require_same(s.data(), uint32_t(s.size()), uint32_t(s.size()), verify);

	std::mt19937_64 rng(0xFA57'0A7B);
	auto pick = [&](size_t n) { return size_t(rng() % n); };
	size_t ok = 0;
	for (int it = 0; it < 100'000; ++it) {
		bytes m = seeds[pick(seeds.size())];
		for (int e = 1 + int(pick(3)); e > 0; --e) {
			switch (pick(4)) {
			case 0:  // a byte of the first 64 (Ethernet, IPv4, TCP/UDP headers) set at random
				if (!m.empty())
					m[pick(m.size() < 64 ? m.size() : 64)] = uint8_t(rng());
				break;
			case 1:  // a bit flip anywhere
				if (!m.empty())
					m[pick(m.size())] ^= uint8_t(1u << pick(8));
				break;
			case 2:  // truncate or extend
				if (pick(2))
					m.resize(pick(m.size() + 1));
				else
					m.resize(m.size() + pick(40), 0);
				break;
			case 3:  // a length field (IPv4 total length, UDP length, TCP data offset) nudged
				if (m.size() >= 48) {
					const size_t at = std::array<size_t, 3>{16, 38, 46}[pick(3)];
					m[at + 1] = uint8_t(m[at + 1] + int(pick(9)) - 4);
				}
				break;
			}
		}
		const uint32_t len = uint32_t(m.size());
		std::unique_ptr<uint8_t[]> buf(new uint8_t[len ? len : 1]);  // exact size: ASan sees overreads
		std::copy(m.begin(), m.end(), buf.get());
		const bool verify = (it & 3) == 0;
		require_same(buf.get(), len, len, verify);
		require_same(buf.get(), uint32_t(pick(len + 1)), len, verify);
		parsed p;
		ok += parse(buf.get(), len, p) == drop_reason::none;
	}
	CHECK(ok > 10'000);
}
