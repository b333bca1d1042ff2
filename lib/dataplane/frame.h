// Writing the frames the data path makes or changes itself: the answers of reject rules (reject.cc)
// and the SYN proxy's handshake segments and sequence translation (synproxy.cc). Byte order is the
// wire's; checksums are the Internet checksum, written whole or adjusted in place (RFC 1624).
#pragma once

#include <cstddef>
#include <cstdint>

#include "packet/packet.h"

struct rte_mbuf;

namespace portcullis::dataplane::frame {

inline void put16(uint8_t* p, uint16_t v)
{
	p[0] = uint8_t(v >> 8);
	p[1] = uint8_t(v);
}
inline void put32(uint8_t* p, uint32_t v)
{
	put16(p, uint16_t(v >> 16));
	put16(p + 2, uint16_t(v));
}
inline uint16_t get16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }
inline uint32_t get32(const uint8_t* p) { return uint32_t(get16(p)) << 16 | get16(p + 2); }

// One's complement sum of n bytes as 16-bit big-endian words, added to sum.
inline uint32_t sum_bytes(const uint8_t* p, size_t n, uint32_t sum = 0)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += uint32_t(p[i]) << 8 | p[i + 1];
	if (n & 1)
		sum += uint32_t(p[n - 1]) << 8;
	return sum;
}

inline uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return uint16_t(~sum);
}

// Pseudo-header sum of a TCP/UDP/ICMPv6 checksum over the addresses of the IP header at ip.
inline uint32_t pseudo_sum(const uint8_t* ip, bool v6, uint8_t proto, uint32_t l4_len)
{
	return (v6 ? sum_bytes(ip + 8, 32) : sum_bytes(ip + 12, 8)) + proto + l4_len;
}

// Writes a fresh IP header at ip (20 bytes for IPv4, 40 for IPv6) for l4_len bytes of protocol proto:
// from p's destination back to its source (reply), or from its source to its destination. Returns its
// length.
uint32_t write_ip(uint8_t* ip, const packet::parsed& p, bool reply, uint8_t proto, uint32_t l4_len);

// Rewrites m, in place, into a TCP segment without payload: a reply (back to p's source, MAC addresses
// swapped) or a packet on to p's destination, with these numbers, flags, window and options (a
// multiple of 4 bytes, at most 40), padded to the Ethernet minimum. L2 and VLAN tags stay. False when
// the mbuf is chained or has no room; m is then unchanged.
bool write_tcp(rte_mbuf* m, const packet::parsed& p, bool reply, uint32_t seq, uint32_t ack, uint8_t flags,
               uint16_t window, const uint8_t* options, uint32_t options_len);

// Ends a frame written in place at len bytes: pads it with zeros to the Ethernet minimum (60 bytes
// without the FCS) and sets the mbuf's lengths; clears offload flags (the checksums are written). False
// when the padded frame does not fit the mbuf's segment.
bool end_frame(rte_mbuf* m, uint32_t len);

// Adjusts the checksum at csum (big-endian, in place) for `len` bytes at an even (or odd) offset from the
// start of the checksummed data changing from old_bytes to new_bytes (RFC 1624: HC' = ~(~HC + ~m + m')).
inline void adjust_checksum(uint8_t* csum, const uint8_t* old_bytes, const uint8_t* new_bytes, uint32_t len, bool odd)
{
	// At an odd offset each byte pairs with its neighbour the other way round: sum as if shifted by one.
	auto sum_at = [odd](const uint8_t* b, uint32_t n) {
		uint32_t s = 0;
		for (uint32_t i = 0; i < n; ++i)
			s += ((i & 1) != odd) ? b[i] : uint32_t(b[i]) << 8;
		return s;
	};
	uint32_t sum = uint16_t(~get16(csum));
	sum += 0xffffu * 4 - sum_at(old_bytes, len);  // adds ~old, with room against underflow
	sum += sum_at(new_bytes, len);
	put16(csum, fold(sum));
}

// Replaces the 32-bit field at offset `at` of a checksummed header (tcp) with v, adjusting the checksum.
inline void replace32(uint8_t* tcp, uint32_t at, uint8_t* csum, uint32_t v)
{
	uint8_t old_bytes[4], new_bytes[4];
	for (int i = 0; i < 4; ++i)
		old_bytes[i] = tcp[at + i];
	put32(new_bytes, v);
	for (int i = 0; i < 4; ++i)
		tcp[at + i] = new_bytes[i];
	adjust_checksum(csum, old_bytes, new_bytes, 4, at & 1);
}

// The same for a 16-bit field at an even offset (a TCP window, say).
inline void replace16(uint8_t* header, uint32_t at, uint8_t* csum, uint16_t v)
{
	const uint8_t old_bytes[2] = {header[at], header[at + 1]};
	put16(header + at, v);
	adjust_checksum(csum, old_bytes, header + at, 2, at & 1);
}

} // namespace portcullis::dataplane::frame
