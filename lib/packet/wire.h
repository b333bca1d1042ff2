// Wire constants and big-endian field loads shared by the general parser (parse.cc) and its inlined
// fast path (parse_fast.h), so the two read headers with the same numbers and the same loads.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

#include "packet/packet.h"

namespace portcullis::packet::wire {

constexpr uint16_t ethertype_ipv4 = 0x0800;
constexpr uint16_t ethertype_arp = 0x0806;
constexpr uint16_t ethertype_ipv6 = 0x86DD;
constexpr uint16_t ethertype_vlan = 0x8100;      // 802.1Q C-tag
constexpr uint16_t ethertype_qinq = 0x88A8;      // 802.1ad S-tag
constexpr uint16_t ethertype_qinq_old = 0x9100;  // pre-standard QinQ, still sent by some switches

constexpr uint8_t proto_icmp = 1;
constexpr uint8_t proto_tcp = 6;
constexpr uint8_t proto_udp = 17;
constexpr uint8_t proto_icmpv6 = 58;
constexpr uint8_t ipv6_hop_by_hop = 0;
constexpr uint8_t ipv6_routing = 43;
constexpr uint8_t ipv6_fragment = 44;
constexpr uint8_t ipv6_ah = 51;
constexpr uint8_t ipv6_dest_opts = 60;

constexpr uint32_t eth_header_len = 14;
constexpr uint32_t vlan_tag_len = 4;
constexpr uint32_t ipv4_min_header = 20;
constexpr uint8_t ipv4_version_ihl_plain = 0x45;  // version 4, 20-byte header: no options
constexpr uint32_t ipv6_header_len = 40;
constexpr uint32_t tcp_min_header = 20;
constexpr uint32_t udp_header_len = 8;
constexpr uint32_t icmp_header_len = 8;
// RFC 792 / 4443: an error quotes the offending IP header and at least the first 8 bytes after it.
constexpr uint32_t quoted_l4_len = 8;
constexpr uint32_t max_ip_datagram = 65535;

// One unaligned load and a byte swap each (memcpy keeps them legal on any alignment).
inline uint16_t load_be16(const uint8_t* p)
{
	uint16_t v;
	std::memcpy(&v, p, 2);
	if constexpr (std::endian::native == std::endian::little)
		v = __builtin_bswap16(v);
	return v;
}
inline uint32_t load_be32(const uint8_t* p)
{
	uint32_t v;
	std::memcpy(&v, p, 4);
	if constexpr (std::endian::native == std::endian::little)
		v = __builtin_bswap32(v);
	return v;
}
inline u128 load_be128(const uint8_t* p)
{
	uint64_t hi, lo;
	std::memcpy(&hi, p, 8);
	std::memcpy(&lo, p + 8, 8);
	if constexpr (std::endian::native == std::endian::little) {
		hi = __builtin_bswap64(hi);
		lo = __builtin_bswap64(lo);
	}
	return u128(hi) << 64 | lo;
}

} // namespace portcullis::packet::wire
