// reject: turn the offending frame, in place, into the answer a closed port would give — a TCP RST, or an
// ICMP/ICMPv6 destination unreachable quoting the packet — and send it back out the port it came in on.
// As a transparent bridge Portcullis has no address of its own, so the answer comes from the packet's
// destination address (as pf's return-rst/return-icmp does on a bridge).
#include <rte_mbuf.h>

#include <cstring>

#include "dataplane/dataplane.h"

namespace portcullis::dataplane {
namespace {

void put16(uint8_t* p, uint16_t v)
{
	p[0] = uint8_t(v >> 8);
	p[1] = uint8_t(v);
}
void put32(uint8_t* p, uint32_t v)
{
	put16(p, uint16_t(v >> 16));
	put16(p + 2, uint16_t(v));
}

uint32_t sum_bytes(const uint8_t* p, size_t n, uint32_t sum = 0)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += uint32_t(p[i]) << 8 | p[i + 1];
	if (n & 1)
		sum += uint32_t(p[n - 1]) << 8;
	return sum;
}

uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return uint16_t(~sum);
}

// Pseudo-header sum for TCP/ICMPv6 checksums; the addresses are already in place in the new IP header.
uint32_t pseudo_sum(const uint8_t* ip, bool v6, uint8_t proto, uint32_t l4_len)
{
	if (v6)
		return sum_bytes(ip + 8, 32) + proto + l4_len;
	return sum_bytes(ip + 12, 8) + proto + l4_len;
}

// Writes a fresh IP header at ip (20 bytes for v4, 40 for v6) from `to` back to `from`.
uint32_t write_ip(uint8_t* ip, const packet::parsed& p, uint8_t proto, uint32_t l4_len)
{
	uint8_t src[16], dst[16];
	if (p.family == 4) {
		put32(src, p.dst.v4);
		put32(dst, p.src.v4);
		ip[0] = 0x45;
		ip[1] = 0;
		put16(ip + 2, uint16_t(20 + l4_len));
		put16(ip + 4, 0);
		put16(ip + 6, 0x4000);  // DF
		ip[8] = 64;
		ip[9] = proto;
		put16(ip + 10, 0);
		std::memcpy(ip + 12, src, 4);
		std::memcpy(ip + 16, dst, 4);
		put16(ip + 10, fold(sum_bytes(ip, 20)));
		return 20;
	}
	for (int i = 0; i < 16; ++i) {
		src[i] = uint8_t(p.dst.v6 >> (8 * (15 - i)));
		dst[i] = uint8_t(p.src.v6 >> (8 * (15 - i)));
	}
	put32(ip, 0x60000000u);
	put16(ip + 4, uint16_t(l4_len));
	ip[6] = proto;
	ip[7] = 64;
	std::memcpy(ip + 8, src, 16);
	std::memcpy(ip + 24, dst, 16);
	return 40;
}

} // namespace

bool worker::make_reject(rte_mbuf* m, const packet::parsed& p)
{
	if (m->nb_segs != 1 || (p.family != 4 && p.family != 6) || p.is_icmp_error())
		return false;
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
	if (p.proto == 6) {
		l4_len = 20;
		if (p.l3_offset + ip_len + l4_len > room)
			return false;
		const bool had_ack = p.tcp_flags & 0x10;
		const uint32_t seg_len = p.payload_length + ((p.tcp_flags & 0x02) ? 1 : 0) + ((p.tcp_flags & 0x01) ? 1 : 0);
		write_ip(ip, p, 6, l4_len);
		uint8_t* tcp = ip + ip_len;
		put16(tcp, p.dport);
		put16(tcp + 2, p.sport);
		put32(tcp + 4, had_ack ? p.tcp_ack : 0);
		put32(tcp + 8, had_ack ? 0 : p.tcp_seq + seg_len);
		tcp[12] = 5 << 4;
		tcp[13] = had_ack ? 0x04 : 0x14;  // RST, or RST|ACK
		put16(tcp + 14, 0);
		put16(tcp + 16, 0);
		put16(tcp + 18, 0);
		put16(tcp + 16, fold(sum_bytes(tcp, 20, pseudo_sum(ip, v6, 6, 20))));
	} else {
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
		write_ip(ip, p, proto, l4_len);
		uint8_t* icmp = ip + ip_len;
		icmp[0] = v6 ? 1 : 3;                                        // destination unreachable
		icmp[1] = p.proto == 17 ? (v6 ? 4 : 3) : (v6 ? 1 : 13);      // port unreachable / administratively prohibited
		put16(icmp + 2, 0);
		put32(icmp + 4, 0);
		std::memcpy(icmp + 8, quote, want);
		const uint32_t base = v6 ? pseudo_sum(ip, true, 58, l4_len) : 0;
		put16(icmp + 2, fold(sum_bytes(icmp, l4_len, base)));
	}
	const uint32_t len = p.l3_offset + ip_len + l4_len;
	const uint32_t padded = len < 60 ? 60 : len;  // Ethernet minimum frame, without FCS
	if (padded > room)
		return false;
	if (padded > len)
		std::memset(frame + len, 0, padded - len);
	m->data_len = uint16_t(padded);
	m->pkt_len = padded;
	m->ol_flags = 0;
	return true;
}

} // namespace portcullis::dataplane
