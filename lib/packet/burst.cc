// parse_burst: the rte_mbuf wrapper around parse_first_segment (packet.h).
#include "packet/packet.h"
#include "packet/parse_fast.h"

#include <algorithm>

#include <rte_mbuf.h>
#include <rte_prefetch.h>

namespace portcullis::packet {
namespace {

// How many packets ahead to prefetch frame data: the l3fwd choice (it prefetches 3-4 ahead), which
// covers one DRAM/LLC miss with the parse work of the packets in between. bench-pipeline cannot tune it:
// net_pcap's receive copies each frame, which is then in the cache when parsed (without the second
// line's prefetch, in one process: the worker's cycles within 0.4% on replay_64b, established_64b and
// new_flows_64b, as with nothing changed). A NIC's DMA into memory or the LLC is where it counts.
constexpr uint16_t prefetch_distance = 4;

inline void prefetch_frame(const rte_mbuf* m)
{
	// The mbuf header itself is warm: the PMD wrote it in rx_burst. Frame data usually starts on a cache
	// line (RTE_PKTMBUF_HEADROOM = 128), and Ethernet + VLAN + IPv6 + TCP runs to 78 bytes or more, so
	// the second line is taken too.
	const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
	rte_prefetch0(d);
	rte_prefetch0(d + RTE_CACHE_LINE_SIZE);
}

} // namespace

void parse_burst(rte_mbuf* const* pkts, uint16_t n, parsed* out, parse_counters& c, const parse_options& opt,
                 uint64_t* fast_mask)
{
	for (uint16_t i = 0; i < n && i < prefetch_distance; ++i)
		prefetch_frame(pkts[i]);
	parse_options no_verify = opt;
	no_verify.verify_ipv4_checksum = false;
	// The straight-line parser does not verify IPv4 checksums: with verification on, it takes only the
	// packets whose checksum the NIC has found good. Read once a burst: the stores to `out` may alias opt.
	const bool fast_any = !opt.general_only, fast_needs_good_checksum = opt.verify_ipv4_checksum;
	// The fast path's packets all parse as IPv4 with no drop reason: counted once a burst.
	uint32_t common = 0;
	uint64_t fast = 0, bit = 1;  // bit: 1 << i, 0 from the 64th packet on
	for (uint16_t i = 0; i < n; ++i, bit <<= 1) {
		if (i + prefetch_distance < n)
			prefetch_frame(pkts[i + prefetch_distance]);
		const rte_mbuf* m = pkts[i];
		const uint64_t ip_csum = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
		const uint8_t* frame = rte_pktmbuf_mtod(m, const uint8_t*);
		// parse_first_segment's fast path, inlined (parse_fast.h); a packet the NIC calls bad goes the
		// general way, to be dropped below.
		if (fast_any && ip_csum != RTE_MBUF_F_RX_IP_CKSUM_BAD &&
		    (!fast_needs_good_checksum || ip_csum == RTE_MBUF_F_RX_IP_CKSUM_GOOD) &&
		    fast::parse_ipv4_tcp_udp(frame, std::min<uint32_t>(m->data_len, m->pkt_len), m->pkt_len, out[i]))
		    [[likely]] {
			++common;
			fast |= bit;
			continue;
		}
		// When the NIC has checked the IPv4 header checksum already, do not do it again.
		const parse_options& o = ip_csum == RTE_MBUF_F_RX_IP_CKSUM_GOOD ? no_verify : opt;
		drop_reason r = parse_first_segment(frame, m->data_len, m->pkt_len, out[i], o);
		if (r == drop_reason::none && out[i].family == 4 && ip_csum == RTE_MBUF_F_RX_IP_CKSUM_BAD) {
			r = drop_reason::ipv4_bad_checksum;
			out[i].reason = r;
		}
		++c.by_reason[size_t(r)];
		++c.by_kind[size_t(out[i].kind)];
	}
	if (fast_mask)
		*fast_mask = fast;
	c.packets += n;
	c.by_reason[size_t(drop_reason::none)] += common;
	c.by_kind[size_t(packet_kind::ipv4)] += common;
}

} // namespace portcullis::packet
