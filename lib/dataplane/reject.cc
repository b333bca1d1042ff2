// reject: turn the offending frame, in place, into the answer a closed port would give — a TCP RST, or an
// ICMP/ICMPv6 destination unreachable quoting the packet — and send it back out the port it came in on.
// As a transparent bridge Portcullis has no address of its own, so the answer comes from the packet's
// destination address (as pf's return-rst/return-icmp does on a bridge).
#include <rte_mbuf.h>

#include <cstring>

#include "dataplane/dataplane.h"
#include "dataplane/frame.h"

namespace portcullis::dataplane {

using namespace frame;

bool worker::make_reject(rte_mbuf* m, const packet::parsed& p)
{
	if (m->nb_segs != 1 || (p.family != 4 && p.family != 6) || p.is_icmp_error())
		return false;
	if (p.proto == 6) {
		const bool had_ack = p.tcp_flags & 0x10;
		const uint32_t seg_len = p.payload_length + ((p.tcp_flags & 0x02) ? 1 : 0) + ((p.tcp_flags & 0x01) ? 1 : 0);
		return write_tcp(m, p, true, had_ack ? p.tcp_ack : 0, had_ack ? 0 : p.tcp_seq + seg_len,
		                 had_ack ? 0x04 : 0x14, 0, nullptr, 0);  // RST, or RST|ACK
	}
	uint8_t* frame = rte_pktmbuf_mtod(m, uint8_t*);
	const uint32_t room = m->data_len + rte_pktmbuf_tailroom(m);
	const bool v6 = p.family == 6;
	const uint32_t ip_len = v6 ? 40 : 20;
	uint8_t* ip = frame + p.l3_offset;

	// Swap the MAC addresses.
	uint8_t mac[6];
	std::memcpy(mac, frame, 6);
	std::memcpy(frame, frame + 6, 6);
	std::memcpy(frame + 6, mac, 6);

	uint32_t l4_len;
	{
		// ICMP(v6) unreachable quoting the IP header and the first 8 bytes of its payload (v4), or as much
		// of the packet as a minimum-MTU answer allows, capped small (v6).
		uint8_t quote[256];
		const uint32_t have = m->data_len - p.l3_offset;
		uint32_t want = v6 ? 256u : uint32_t(p.l4_offset - p.l3_offset) + 8;
		if (want > have)
			want = have;
		if (want > p.l3_length)
			want = p.l3_length;
		if (want > sizeof(quote))
			want = sizeof(quote);
		std::memcpy(quote, ip, want);
		l4_len = 8 + want;
		if (p.l3_offset + ip_len + l4_len > room)
			return false;
		const uint8_t proto = v6 ? 58 : 1;
		write_ip(ip, p, true, proto, l4_len);
		uint8_t* icmp = ip + ip_len;
		icmp[0] = v6 ? 1 : 3;                                        // destination unreachable
		icmp[1] = p.proto == 17 ? (v6 ? 4 : 3) : (v6 ? 1 : 13);      // port unreachable / administratively prohibited
		put16(icmp + 2, 0);
		put32(icmp + 4, 0);
		std::memcpy(icmp + 8, quote, want);
		const uint32_t base = v6 ? pseudo_sum(ip, true, 58, l4_len) : 0;
		put16(icmp + 2, fold(sum_bytes(icmp, l4_len, base)));
	}
	return end_frame(m, p.l3_offset + ip_len + l4_len);
}

} // namespace portcullis::dataplane
