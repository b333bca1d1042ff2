// bench/flood/traffic.h: bench-flood's frames: the established connections' segments and the SYN flood.
//
// Addresses are those of gateway.rules: its server 198.18.1.10 behind the inside network 198.18.1.0/24,
// the established clients in 198.19.252.0/22, the flood's sources elsewhere in 198.18.0.0/15. Frames are
// 60 bytes (64 on the wire with the FCS), built once and copied into mbufs by the harness.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace portcullis::bench::flood {

// Addresses of gateway.rules: its server, and the ranges the flood must not use as sources (the inside
// network, and the clients of the established connections).
constexpr uint32_t server = 0xC612010A;          // 198.18.1.10
constexpr uint32_t inside_net = 0xC6120100;      // 198.18.1.0/24
constexpr uint32_t client_net = 0xC613FC00;      // 198.19.252.0/22: established clients
constexpr uint32_t flood_net = 0xC6120000;       // 198.18.0.0/15
constexpr uint32_t flood_mask = 0x1FFFF;
constexpr uint16_t http = 80, https = 443;
constexpr uint16_t frame_bytes = 60;             // 64 on the wire with the FCS

struct tcp_frame {
	uint8_t bytes[64];
};

// Ethernet + IPv4 + TCP (no options), payload bytes of 'x', padded to 60 bytes. TCP checksums are not
// checked by the data path; the IPv4 one is right.
tcp_frame make_tcp4(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, uint8_t flags, uint32_t seq,
                    uint32_t ack, uint16_t payload);

// A SYN from a random flood source: address in 198.18.0.0/15 outside the inside network and the
// established clients, port 1024-65535, random ISN.
struct flood_source {
	uint64_t s;
	uint64_t next()
	{
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;  // xorshift64
		return s;
	}
	tcp_frame syn();
};

// The established connections: connection i is client client_net + i % 1024, port 20000 + i / 1024, to
// the server's https port for odd i and http for even i, client ISN 1000 + i, server ISN 500000 + i.
struct connections {
	std::vector<tcp_frame> to_server, to_client;  // one data segment each way per connection
	std::vector<uint32_t> order;                  // a random permutation: bursts touch scattered flows
	size_t cursor = 0;
};

connections make_connections(uint32_t n, std::mt19937_64& rng);

} // namespace portcullis::bench::flood
