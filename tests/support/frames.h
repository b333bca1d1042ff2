// A byte-by-byte frame builder for the tests that parse, classify or forward frames: each layer is a function from its fields and its
// payload to bytes, so tests compose frames inside out (eth(ipv4(tcp(...)))) and can lie in any field
// (lengths, IHL, data offset) through the optional overrides. Lengths and the IPv4 header checksum are
// computed unless overridden; L4 checksums are left 0 (the parser does not read them).
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "packet/packet.h"

namespace portcullis::packet::test {

using bytes = std::vector<uint8_t>;

inline void put8(bytes& b, uint8_t v) { b.push_back(v); }
inline void put16(bytes& b, uint16_t v)
{
	b.push_back(uint8_t(v >> 8));
	b.push_back(uint8_t(v));
}
inline void put32(bytes& b, uint32_t v)
{
	put16(b, uint16_t(v >> 16));
	put16(b, uint16_t(v));
}
inline void put128(bytes& b, u128 v)
{
	for (int i = 15; i >= 0; --i)
		b.push_back(uint8_t(v >> (8 * i)));
}
inline void append(bytes& b, const bytes& more) { b.insert(b.end(), more.begin(), more.end()); }
inline bytes operator+(bytes a, const bytes& b)
{
	append(a, b);
	return a;
}
// The first n bytes (or all when shorter).
inline bytes head(const bytes& b, size_t n) { return bytes(b.begin(), b.begin() + long(n < b.size() ? n : b.size())); }

inline u128 v6addr(uint64_t hi, uint64_t lo) { return u128(hi) << 64 | lo; }

struct vlan_tag {
	uint16_t tpid = 0x8100;
	uint16_t vid = 0;
	uint8_t pcp = 0;
};

// Ethernet II: fixed MACs, the tags in order (outer first), then the ethertype; padded with zeros to
// pad_to bytes (60 = the minimum frame without FCS) when the frame is shorter.
inline bytes eth(uint16_t ethertype, const bytes& payload, const std::vector<vlan_tag>& tags = {}, size_t pad_to = 0)
{
	bytes b = {0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01};
	for (const auto& t : tags) {
		put16(b, t.tpid);
		put16(b, uint16_t(t.pcp << 13 | t.vid));
	}
	put16(b, ethertype);
	append(b, payload);
	if (b.size() < pad_to)
		b.resize(pad_to, 0);
	return b;
}

struct ipv4_spec {
	uint32_t src = 0xC0000201;  // 192.0.2.1
	uint32_t dst = 0xC6336402;  // 198.51.100.2
	uint8_t proto = 6;
	uint16_t id = 0x1234;
	uint16_t frag_offset = 0;  // bytes, a multiple of 8
	bool mf = false;
	bool df = false;
	bytes options = {};             // padded to 4 bytes with EOL
	uint8_t ttl = 64;
	uint8_t version = 4;
	std::optional<uint8_t> ihl = std::nullopt;             // words; default from the options
	std::optional<uint16_t> total_length = std::nullopt;   // default header + payload
	bool bad_checksum = false;
};

inline uint16_t ipv4_checksum(const uint8_t* h, size_t len)
{
	uint32_t sum = 0;
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += uint32_t(h[i]) << 8 | h[i + 1];
	while (sum >> 16)
		sum = (sum & 0xFFFF) + (sum >> 16);
	return uint16_t(~sum);
}

inline bytes ipv4(const ipv4_spec& s, const bytes& payload)
{
	bytes opts = s.options;
	while (opts.size() % 4)
		opts.push_back(0);
	const size_t hlen = 20 + opts.size();
	bytes b;
	put8(b, uint8_t(s.version << 4 | (s.ihl ? *s.ihl : uint8_t(hlen / 4))));
	put8(b, 0);
	put16(b, s.total_length ? *s.total_length : uint16_t(hlen + payload.size()));
	put16(b, s.id);
	put16(b, uint16_t((s.df ? 0x4000 : 0) | (s.mf ? 0x2000 : 0) | (s.frag_offset / 8)));
	put8(b, s.ttl);
	put8(b, s.proto);
	put16(b, 0);
	put32(b, s.src);
	put32(b, s.dst);
	append(b, opts);
	uint16_t c = ipv4_checksum(b.data(), b.size());
	if (s.bad_checksum)
		c ^= 0x5555;
	b[10] = uint8_t(c >> 8);
	b[11] = uint8_t(c);
	append(b, payload);
	return b;
}

struct ipv6_spec {
	u128 src = v6addr(0x20010db800000000ull, 1);  // 2001:db8::1
	u128 dst = v6addr(0x20010db800000001ull, 2);  // 2001:db8:0:1::2
	uint8_t next_header = 6;
	uint8_t hop_limit = 64;
	uint8_t version = 6;
	uint32_t flow_label = 0x12345;
	std::optional<uint16_t> payload_length = std::nullopt;
};

inline bytes ipv6(const ipv6_spec& s, const bytes& payload)
{
	bytes b;
	put32(b, uint32_t(s.version) << 28 | (s.flow_label & 0xFFFFF));
	put16(b, s.payload_length ? *s.payload_length : uint16_t(payload.size()));
	put8(b, s.next_header);
	put8(b, s.hop_limit);
	put128(b, s.src);
	put128(b, s.dst);
	append(b, payload);
	return b;
}

// Hop-by-hop, routing or destination options: `len` bytes (a multiple of 8, >= 8), padded with PadN.
inline bytes ipv6_opts_ext(uint8_t next, size_t len = 8)
{
	bytes b(len, 0);
	b[0] = next;
	b[1] = uint8_t(len / 8 - 1);
	b[2] = 1;  // PadN over the rest
	b[3] = uint8_t(len - 4);
	return b;
}

inline bytes ipv6_frag_ext(uint8_t next, uint16_t offset, bool more, uint32_t id)
{
	bytes b = {next, 0};
	put16(b, uint16_t(offset | (more ? 1 : 0)));
	put32(b, id);
	return b;
}

// Authentication header of `len` bytes (a multiple of 4, >= 12).
inline bytes ipv6_ah_ext(uint8_t next, size_t len = 16)
{
	bytes b(len, 0xAB);  // the integrity check value
	b[0] = next;
	b[1] = uint8_t(len / 4 - 2);
	b[2] = b[3] = 0;
	b[4] = b[5] = b[6] = b[8] = b[9] = b[10] = 0;
	b[7] = 0x10;  // SPI 0x10
	b[11] = 7;    // sequence 7
	return b;
}

struct tcp_spec {
	uint16_t sport = 40000;
	uint16_t dport = 443;
	uint32_t seq = 0x01020304;
	uint32_t ack = 0xA0B0C0D0;
	uint8_t flags = 0x18;  // PSH ACK
	uint16_t window = 64240;
	bytes options = {};  // padded to 4 bytes with EOL
	std::optional<uint8_t> data_offset = std::nullopt;  // words
};

inline bytes tcp(const tcp_spec& s, const bytes& payload = {})
{
	bytes opts = s.options;
	while (opts.size() % 4)
		opts.push_back(0);
	bytes b;
	put16(b, s.sport);
	put16(b, s.dport);
	put32(b, s.seq);
	put32(b, s.ack);
	put8(b, uint8_t((s.data_offset ? *s.data_offset : uint8_t((20 + opts.size()) / 4)) << 4));
	put8(b, s.flags);
	put16(b, s.window);
	put16(b, 0);  // checksum
	put16(b, 0);  // urgent pointer
	append(b, opts);
	append(b, payload);
	return b;
}

inline bytes udp(uint16_t sport, uint16_t dport, const bytes& payload = {}, std::optional<uint16_t> length = {})
{
	bytes b;
	put16(b, sport);
	put16(b, dport);
	put16(b, length ? *length : uint16_t(8 + payload.size()));
	put16(b, 0);
	append(b, payload);
	return b;
}

// ICMP or ICMPv6: type, code, checksum 0, the 4 "rest of header" bytes, then the body.
inline bytes icmp(uint8_t type, uint8_t code, uint32_t rest = 0, const bytes& body = {})
{
	bytes b = {type, code, 0, 0};
	put32(b, rest);
	append(b, body);
	return b;
}
inline bytes icmp_echo(uint8_t type, uint16_t id, uint16_t seq, const bytes& body = {})
{
	return icmp(type, 0, uint32_t(id) << 16 | seq, body);
}

inline bytes filler(size_t n, uint8_t seed = 0)
{
	bytes b(n);
	for (size_t i = 0; i < n; ++i)
		b[i] = uint8_t(seed + i * 7);
	return b;
}

constexpr uint16_t et_ipv4 = 0x0800;
constexpr uint16_t et_ipv6 = 0x86DD;
constexpr uint16_t et_arp = 0x0806;

// The TCP segment of tcp4 and tcp6: the given ports, flags and sequence numbers, tcp_spec's defaults for
// the rest.
inline bytes tcp_segment(uint16_t sport, uint16_t dport, uint8_t flags, uint32_t seq, uint32_t ack,
                         const bytes& payload = {})
{
	return tcp({.sport = sport, .dport = dport, .seq = seq, .ack = ack, .flags = flags}, payload);
}

// Whole frames between two hosts, padded to Ethernet's 60-byte minimum: what tests of the data path send.
inline bytes tcp4(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, uint8_t flags, uint32_t seq = 0,
                  uint32_t ack = 0, const bytes& payload = {})
{
	return eth(et_ipv4, ipv4({.src = src, .dst = dst, .proto = 6}, tcp_segment(sport, dport, flags, seq, ack, payload)),
	           {}, 60);
}

inline bytes udp4(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, const bytes& payload = {})
{
	return eth(et_ipv4, ipv4({.src = src, .dst = dst, .proto = 17}, udp(sport, dport, payload)), {}, 60);
}

inline bytes tcp6(u128 src, uint16_t sport, u128 dst, uint16_t dport, uint8_t flags, uint32_t seq = 0, uint32_t ack = 0)
{
	return eth(et_ipv6, ipv6({.src = src, .dst = dst, .next_header = 6}, tcp_segment(sport, dport, flags, seq, ack)), {},
	           60);
}

inline parsed parse_bytes(const bytes& b)
{
	parsed p;
	parse(b.data(), uint32_t(b.size()), p);
	return p;
}

} // namespace portcullis::packet::test
