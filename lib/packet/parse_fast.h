// The parser's fast path, in a header so that parse_burst (burst.cc) inlines it: a call per packet to
// parse_first_segment, whose fast path this is, cost more than a tenth of the parse's instructions in
// its prologue, epilogue and arguments (bench-pipeline under callgrind).
#pragma once

#include <cstdint>

#include "memory/zero.h"
#include "packet/packet.h"
#include "packet/wire.h"

namespace portcullis::packet::fast {

// The common case in one straight line: untagged Ethernet, IPv4 with a 20-byte header, not a fragment,
// TCP or UDP, every header within the first segment. Most of a gateway's packets are this; they skip the
// general parser's layer-by-layer checks and calls (bench-pipeline's parse stage). Any doubt (options,
// fragments, VLANs, short or odd lengths, other protocols) returns false before
// anything is written, and the general parser decides, so both give the same record for every frame.
// `contiguous` is at most frame_len. The caller takes the general way when the IPv4 checksum is to be
// verified (parse_options::verify_ipv4_checksum): this path does not verify it.
inline bool parse_ipv4_tcp_udp(const uint8_t* p, uint32_t contiguous, uint32_t frame_len, parsed& out)
{
	using namespace wire;
	constexpr uint32_t ipv4 = ipv4_min_header, tcp = tcp_min_header, udp = udp_header_len;
	constexpr uint32_t l3 = eth_header_len, l4 = l3 + ipv4;
	if (contiguous < l4 + udp || load_be16(p + 12) != ethertype_ipv4 || p[l3] != ipv4_version_ihl_plain)
		return false;
	const uint8_t* h = p + l3;
	const uint32_t total = load_be16(h + 2);
	const uint8_t proto = h[9];
	// No fragment: MF clear and offset 0 (DF may be set).
	if ((load_be16(h + 6) & 0x3FFF) != 0 || total < ipv4 || l3 + total > frame_len)
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
		const uint32_t udp_len = load_be16(t + 4);
		if (end < l4 + udp || udp_len < udp || udp_len > end - l4)
			return false;
		payload = l4 + udp;
	} else {
		return false;
	}
	memory::zero_aligned<sizeof(parsed)>(&out);
	out.src.v4 = load_be32(h + 12);
	out.dst.v4 = load_be32(h + 16);
	out.sport = load_be16(t);
	out.dport = load_be16(t + 2);
	out.proto = proto;
	out.family = 4;
	out.kind = packet_kind::ipv4;
	out.l3_offset = uint8_t(l3);
	out.l4_offset = uint16_t(l4);
	out.payload_offset = uint16_t(payload);
	out.ethertype = ethertype_ipv4;
	out.l3_length = total;
	if (proto == proto_tcp) {
		out.tcp_seq = load_be32(t + 4);
		out.tcp_ack = load_be32(t + 8);
		out.tcp_flags = t[13];
		out.tcp_window = load_be16(t + 14);
		out.payload_length = uint16_t(end - payload);
	} else {
		out.payload_length = uint16_t(load_be16(t + 4) - udp);
	}
	return true;
}

} // namespace portcullis::packet::fast
