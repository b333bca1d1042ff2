// The parser's fast path, in a header so that parse_burst (burst.cc) inlines it: a call per packet to
// parse_first_segment, whose fast path this is, cost more than a tenth of the parse's instructions in
// its prologue, epilogue and arguments (bench-pipeline under callgrind).
#pragma once

#include <cstdint>
#include <cstring>

#include "memory/zero.h"
#include "packet/packet.h"

namespace portcullis::packet::fast {

inline uint16_t be16(const uint8_t* p)
{
	uint16_t v;
	std::memcpy(&v, p, 2);
	return __builtin_bswap16(v);
}
inline uint32_t be32(const uint8_t* p)
{
	uint32_t v;
	std::memcpy(&v, p, 4);
	return __builtin_bswap32(v);
}

// The common case in one straight line: untagged Ethernet, IPv4 with a 20-byte header, not a fragment,
// TCP or UDP, every header within the first segment. Most of a gateway's packets are this; they skip the
// general parser's layer-by-layer checks and calls (bench-pipeline's parse stage). Any doubt (options,
// fragments, VLANs, short or odd lengths, other protocols, a checksum to verify) returns false before
// anything is written, and the general parser decides, so both give the same record for every frame.
// `contiguous` is at most frame_len.
inline bool parse_ipv4_tcp_udp(const uint8_t* p, uint32_t contiguous, uint32_t frame_len, parsed& out,
                               const parse_options& opt)
{
	constexpr uint32_t eth = 14, ipv4 = 20, tcp = 20, udp = 8;
	constexpr uint32_t l3 = eth, l4 = eth + ipv4;
	constexpr uint8_t proto_tcp = 6, proto_udp = 17;
	if (contiguous < l4 + udp || be16(p + 12) != 0x0800 || p[l3] != 0x45 || opt.verify_ipv4_checksum)
		return false;
	const uint8_t* h = p + l3;
	const uint32_t total = be16(h + 2);
	const uint8_t proto = h[9];
	// No fragment: MF clear and offset 0 (DF may be set).
	if ((be16(h + 6) & 0x3FFF) != 0 || total < ipv4 || l3 + total > frame_len)
		return false;
	const uint32_t end = l3 + total;
	const uint8_t* t = p + l4;
	uint32_t payload;
	if (proto == proto_tcp) {
		if (end < l4 + tcp || contiguous < l4 + tcp)
			return false;
		const uint32_t data_offset = uint32_t(t[12] >> 4) * 4;
		if (data_offset < tcp || l4 + data_offset > end || l4 + data_offset > contiguous)
			return false;
		payload = l4 + data_offset;
	} else if (proto == proto_udp) {
		const uint32_t udp_len = be16(t + 4);
		if (end < l4 + udp || udp_len < udp || udp_len > end - l4)
			return false;
		payload = l4 + udp;
	} else {
		return false;
	}
	memory::zero_aligned<sizeof(parsed)>(&out);
	out.src.v4 = be32(h + 12);
	out.dst.v4 = be32(h + 16);
	out.sport = be16(t);
	out.dport = be16(t + 2);
	out.proto = proto;
	out.family = 4;
	out.kind = packet_kind::ipv4;
	out.l3_offset = uint8_t(l3);
	out.l4_offset = uint16_t(l4);
	out.payload_offset = uint16_t(payload);
	out.ethertype = 0x0800;
	out.l3_length = total;
	if (proto == proto_tcp) {
		out.tcp_seq = be32(t + 4);
		out.tcp_ack = be32(t + 8);
		out.tcp_flags = t[13];
		out.tcp_window = be16(t + 14);
		out.payload_length = uint16_t(end - payload);
	} else {
		out.payload_length = uint16_t(be16(t + 4) - udp);
	}
	return true;
}

} // namespace portcullis::packet::fast
