#include "dataplane/frame.h"

#include <rte_mbuf.h>

#include <cstring>

namespace portcullis::dataplane::frame {

uint32_t write_ip(uint8_t* ip, const packet::parsed& p, bool reply, uint8_t proto, uint32_t l4_len)
{
	const packet::ip_address& from = reply ? p.dst : p.src;
	const packet::ip_address& to = reply ? p.src : p.dst;
	if (p.family == 4) {
		ip[0] = 0x45;
		ip[1] = 0;
		put16(ip + 2, uint16_t(20 + l4_len));
		put16(ip + 4, 0);
		put16(ip + 6, 0x4000);  // DF
		ip[8] = 64;
		ip[9] = proto;
		put16(ip + 10, 0);
		put32(ip + 12, from.v4);
		put32(ip + 16, to.v4);
		put16(ip + 10, fold(sum_bytes(ip, 20)));
		return 20;
	}
	put32(ip, 0x60000000u);
	put16(ip + 4, uint16_t(l4_len));
	ip[6] = proto;
	ip[7] = 64;
	for (int i = 0; i < 16; ++i) {
		ip[8 + i] = uint8_t(from.v6 >> (8 * (15 - i)));
		ip[24 + i] = uint8_t(to.v6 >> (8 * (15 - i)));
	}
	return 40;
}

bool write_tcp(rte_mbuf* m, const packet::parsed& p, bool reply, uint32_t seq, uint32_t ack, uint8_t flags,
               uint16_t window, const uint8_t* options, uint32_t options_len)
{
	if (m->nb_segs != 1 || (p.family != 4 && p.family != 6) || options_len > 40 || options_len % 4)
		return false;
	uint8_t* frame = rte_pktmbuf_mtod(m, uint8_t*);
	const uint32_t room = m->data_len + rte_pktmbuf_tailroom(m);
	const bool v6 = p.family == 6;
	const uint32_t l4_len = 20 + options_len;
	const uint32_t len = p.l3_offset + (v6 ? 40 : 20) + l4_len;
	const uint32_t padded = len < 60 ? 60 : len;  // Ethernet minimum frame, without FCS
	if (padded > room)
		return false;
	if (reply) {
		uint8_t mac[6];
		std::memcpy(mac, frame, 6);
		std::memcpy(frame, frame + 6, 6);
		std::memcpy(frame + 6, mac, 6);
	}
	uint8_t* ip = frame + p.l3_offset;
	uint8_t* tcp = ip + write_ip(ip, p, reply, 6, l4_len);
	put16(tcp, reply ? p.dport : p.sport);
	put16(tcp + 2, reply ? p.sport : p.dport);
	put32(tcp + 4, seq);
	put32(tcp + 8, ack);
	tcp[12] = uint8_t(l4_len / 4 << 4);
	tcp[13] = flags;
	put16(tcp + 14, window);
	put16(tcp + 16, 0);
	put16(tcp + 18, 0);
	if (options_len)
		std::memcpy(tcp + 20, options, options_len);
	put16(tcp + 16, fold(sum_bytes(tcp, l4_len, pseudo_sum(ip, v6, 6, l4_len))));
	return end_frame(m, len);
}

bool end_frame(rte_mbuf* m, uint32_t len)
{
	const uint32_t padded = len < 60 ? 60 : len;
	if (padded > uint32_t(m->data_len) + rte_pktmbuf_tailroom(m))
		return false;
	if (padded > len)
		std::memset(rte_pktmbuf_mtod(m, uint8_t*) + len, 0, padded - len);
	m->data_len = uint16_t(padded);
	m->pkt_len = padded;
	m->ol_flags = 0;
	return true;
}

} // namespace portcullis::dataplane::frame
