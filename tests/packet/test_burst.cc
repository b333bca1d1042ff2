// parse_burst over real rte_mbufs: frames copied into mbufs from a heap-backed mempool (no hugepages),
// parsed in bursts; the per-reason counters, multi-segment mbufs and the NIC checksum flags.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "frames.h"

using namespace portcullis::packet;
using namespace portcullis::packet::test;

namespace {

// The EAL, once per process, on first use: no hugepages, no PCI, one lcore. --in-memory cannot be used
// with --no-huge in DPDK 22.11 (--no-huge implies legacy memory, which --in-memory rejects), so, as in
// tests/support/eal.cc, --no-shconf and --no-telemetry give the isolation instead: no shared config, no
// socket, no file, and any number of test binaries run side by side.
bool eal_up()
{
	static const bool up = [] {
		std::vector<std::string> args = {"test-packet", "--no-huge", "-m", "128", "--no-pci", "--no-shconf",
		                                 "--no-telemetry", "--file-prefix=portcullis-packet-test", "-l", "0",
		                                 "--log-level=error"};
		std::vector<char*> argv;
		for (auto& a : args)
			argv.push_back(a.data());
		if (rte_eal_init(int(argv.size()), argv.data()) < 0) {
			std::fprintf(stderr, "rte_eal_init failed: %s\n", rte_strerror(rte_errno));
			return false;
		}
		return true;
	}();
	return up;
}

rte_mempool* pool()
{
	static rte_mempool* mp = rte_pktmbuf_pool_create("packet_test", 1023, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	return mp;
}

// One mbuf per piece: frames longer than a segment, or with explicit split points, become chains.
rte_mbuf* to_mbuf(const bytes& f, std::vector<size_t> splits = {})
{
	splits.push_back(f.size());
	rte_mbuf* headm = nullptr;
	size_t from = 0;
	for (size_t to : splits) {
		while (from < to || (from == 0 && to == 0 && !headm)) {
			rte_mbuf* m = rte_pktmbuf_alloc(pool());
			REQUIRE(m != nullptr);
			const size_t n = std::min<size_t>(to - from, rte_pktmbuf_tailroom(m));
			if (n) {
				char* d = rte_pktmbuf_append(m, uint16_t(n));
				REQUIRE(d != nullptr);
				std::memcpy(d, f.data() + from, n);
			}
			from += n;
			if (!headm)
				headm = m;
			else
				REQUIRE(rte_pktmbuf_chain(headm, m) == 0);
			if (n == 0)
				break;
		}
	}
	return headm;
}

} // namespace

TEST_CASE("parse_burst over mbufs")
{
	REQUIRE(eal_up());
	REQUIRE(pool() != nullptr);

	const bytes v4 = eth(et_ipv4, ipv4({.proto = 6}, tcp({.sport = 1000, .dport = 80}, filler(100))));
	const bytes v6 = eth(et_ipv6, ipv6({.next_header = 17}, udp(53, 5353, filler(30))), {{.vid = 12}});
	const bytes arp = eth(et_arp, filler(28), {}, 60);
	const bytes bad_ihl = eth(et_ipv4, ipv4({.ihl = 3}, tcp({})));
	const bytes three_tags = eth(et_ipv4, ipv4({}, tcp({})), {{.vid = 1}, {.vid = 2}, {.vid = 3}});
	const bytes tiny = eth(et_ipv4, ipv4({.proto = 6, .mf = true}, head(tcp({}), 8)));
	const bytes jumbo = eth(et_ipv4, ipv4({.proto = 17}, udp(7, 9, filler(9000 - 14 - 20 - 8))));

	// A burst longer than the prefetch distance, mixing outcomes; some packets repeated.
	std::vector<rte_mbuf*> pkts = {
		to_mbuf(v4), to_mbuf(v6), to_mbuf(arp), to_mbuf(bad_ihl), to_mbuf(three_tags),
		to_mbuf(tiny), to_mbuf(v4), to_mbuf(v6), to_mbuf(v4),
		to_mbuf(jumbo),                     // 9000 bytes over several segments, headers in the first
		to_mbuf(v4, {30}),                  // TCP header split across segments
		to_mbuf(v6, {40, 41}),              // IPv6 header split, three segments
		to_mbuf(head(v4, 40)),              // truly short: one segment, nothing more
	};
	REQUIRE(pkts[9]->nb_segs > 1);
	REQUIRE(pkts[11]->nb_segs == 3);
	const uint16_t n = uint16_t(pkts.size());
	std::vector<parsed> out(n);
	parse_counters c{};
	uint64_t fast = ~uint64_t(0);
	parse_burst(pkts.data(), n, out.data(), c, {}, &fast);
	// The straight-line path took exactly the untagged IPv4 TCP/UDP frames with their headers in the
	// first segment: the three copies of v4 and the jumbo datagram (not the split or cut ones).
	CHECK(fast == (uint64_t(1) << 0 | uint64_t(1) << 6 | uint64_t(1) << 8 | uint64_t(1) << 9));
	for (uint16_t i = 0; i < n; ++i)
		if ((fast >> i) & 1) {
			CHECK(out[i].ok());
			CHECK(out[i].kind == packet_kind::ipv4);
			CHECK(out[i].frag == 0);
			CHECK((out[i].proto == 6 || out[i].proto == 17));
		}

	// Every record is parse_first_segment's for its frame, to the byte, whether parse_burst took its
	// inlined fast path or the general parser.
	for (uint16_t i = 0; i < n; ++i) {
		parsed ref;
		parse_first_segment(rte_pktmbuf_mtod(pkts[i], const uint8_t*), pkts[i]->data_len, pkts[i]->pkt_len, ref);
		CHECK(std::memcmp(&ref, &out[i], sizeof ref) == 0);
	}
	CHECK(out[0].reason == drop_reason::none);
	CHECK(out[0].sport == 1000);
	CHECK(out[0].payload_length == 100);
	CHECK(out[1].reason == drop_reason::none);
	CHECK(out[1].vlan_id[0] == 12);
	CHECK(out[1].dport == 5353);
	CHECK(out[2].kind == packet_kind::arp);
	CHECK(out[3].reason == drop_reason::ipv4_bad_ihl);
	CHECK(out[4].reason == drop_reason::vlan_too_many_tags);
	CHECK(out[5].reason == drop_reason::ipv4_tiny_fragment);
	CHECK(out[9].reason == drop_reason::none);
	CHECK(out[9].payload_length == 9000 - 14 - 20 - 8);
	CHECK(out[10].reason == drop_reason::mbuf_headers_segmented);
	CHECK(out[11].reason == drop_reason::mbuf_headers_segmented);
	CHECK(out[12].reason == drop_reason::ipv4_total_length_exceeds_frame);

	CHECK(c.packets == n);
	CHECK(c.by_reason[size_t(drop_reason::none)] == 7);
	CHECK(c.by_reason[size_t(drop_reason::ipv4_bad_ihl)] == 1);
	CHECK(c.by_reason[size_t(drop_reason::vlan_too_many_tags)] == 1);
	CHECK(c.by_reason[size_t(drop_reason::ipv4_tiny_fragment)] == 1);
	CHECK(c.by_reason[size_t(drop_reason::mbuf_headers_segmented)] == 2);
	CHECK(c.by_reason[size_t(drop_reason::ipv4_total_length_exceeds_frame)] == 1);
	uint64_t sum = 0;
	for (uint64_t v : c.by_reason)
		sum += v;
	CHECK(sum == n);
	CHECK(c.by_kind[size_t(packet_kind::ipv4)] == 8);
	CHECK(c.by_kind[size_t(packet_kind::ipv6)] == 3);
	CHECK(c.by_kind[size_t(packet_kind::arp)] == 1);
	CHECK(c.by_kind[size_t(packet_kind::other_l2)] == 1);  // three_tags: dropped before its ethertype

	// Counters accumulate across bursts.
	parse_burst(pkts.data(), 3, out.data(), c);
	CHECK(c.packets == n + 3u);
	CHECK(c.by_reason[size_t(drop_reason::none)] == 10);

	// An empty burst touches nothing.
	parse_burst(pkts.data(), 0, out.data(), c);
	CHECK(c.packets == n + 3u);

	for (rte_mbuf* m : pkts)
		rte_pktmbuf_free(m);
}

TEST_CASE("parse_burst honours the NIC's IPv4 checksum verdict")
{
	REQUIRE(eal_up());
	const bytes good = eth(et_ipv4, ipv4({.proto = 17}, udp(1, 2)));
	const bytes bad = eth(et_ipv4, ipv4({.proto = 17, .bad_checksum = true}, udp(1, 2)));
	const bytes v6 = eth(et_ipv6, ipv6({.next_header = 17}, udp(1, 2)));
	rte_mbuf* pkts[4] = {to_mbuf(good), to_mbuf(bad), to_mbuf(bad), to_mbuf(v6)};
	pkts[0]->ol_flags |= RTE_MBUF_F_RX_IP_CKSUM_BAD;   // the NIC says bad: dropped, whatever the bytes
	pkts[1]->ol_flags |= RTE_MBUF_F_RX_IP_CKSUM_GOOD;  // the NIC says good: trusted, even with verify on
	pkts[2]->ol_flags |= RTE_MBUF_F_RX_IP_CKSUM_UNKNOWN;
	pkts[3]->ol_flags |= RTE_MBUF_F_RX_IP_CKSUM_BAD;   // not IPv4: the flag means nothing here
	parsed out[4];
	parse_counters c{};

	parse_burst(pkts, 4, out, c, {.verify_ipv4_checksum = true});
	CHECK(out[0].reason == drop_reason::ipv4_bad_checksum);
	CHECK(out[1].reason == drop_reason::none);
	CHECK(out[2].reason == drop_reason::ipv4_bad_checksum);  // unknown: checked in software
	CHECK(out[3].reason == drop_reason::none);
	CHECK(c.by_reason[size_t(drop_reason::ipv4_bad_checksum)] == 2);

	// The straight-line parser does not verify: with verification on it takes only what the NIC found good.
	uint64_t fast = 0;
	parse_burst(pkts, 4, out, c, {.verify_ipv4_checksum = true}, &fast);
	CHECK(fast == uint64_t(1) << 1);

	parse_burst(pkts, 4, out, c, {}, &fast);  // verification off: only the NIC's verdict counts
	CHECK(out[0].reason == drop_reason::ipv4_bad_checksum);
	CHECK(out[2].reason == drop_reason::none);
	CHECK(fast == (uint64_t(1) << 1 | uint64_t(1) << 2));  // the bad one and IPv6 go the general way

	for (rte_mbuf* m : pkts)
		rte_pktmbuf_free(m);
}

TEST_CASE("parse_burst's mask holds the first 64 packets of a longer burst")
{
	REQUIRE(eal_up());
	const bytes udp4 = eth(et_ipv4, ipv4({.proto = 17}, udp(1, 2)));
	const bytes v6 = eth(et_ipv6, ipv6({.next_header = 17}, udp(1, 2)));
	constexpr uint16_t n = 80;
	std::vector<rte_mbuf*> pkts;
	uint64_t expect = 0;
	for (uint16_t i = 0; i < n; ++i) {
		const bool fast = i % 3 != 1;  // every third an IPv6 packet, for the general parser
		pkts.push_back(to_mbuf(fast ? udp4 : v6));
		if (fast && i < 64)
			expect |= uint64_t(1) << i;
	}
	std::vector<parsed> out(n);
	parse_counters c{};
	uint64_t fast = 0;
	parse_burst(pkts.data(), n, out.data(), c, {}, &fast);
	CHECK(fast == expect);
	for (uint16_t i = 0; i < n; ++i) {
		CHECK(out[i].reason == drop_reason::none);
		CHECK(out[i].family == (i % 3 != 1 ? 4 : 6));
	}
	CHECK(c.by_kind[size_t(packet_kind::ipv4)] == 53);
	CHECK(c.by_kind[size_t(packet_kind::ipv6)] == 27);
	for (rte_mbuf* m : pkts)
		rte_pktmbuf_free(m);
}
