// bench/common/frames.h: test traffic written by the benches themselves: big-endian stores, the IPv4
// header checksum, a small UDP frame, and classic pcap files that net_pcap replays (rx_pcap=...).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace portcullis::bench {

inline void store16be(uint8_t* p, uint16_t v) { p[0] = uint8_t(v >> 8), p[1] = uint8_t(v); }
inline void store32be(uint8_t* p, uint32_t v) { store16be(p, uint16_t(v >> 16)), store16be(p + 2, uint16_t(v)); }

// Writes the checksum of the 20-byte IPv4 header at ip (bytes 10-11, zeroed first).
void ipv4_checksum(uint8_t* ip);

// Ethernet + IPv4 (DF, TTL 64, checksum right) + UDP (no checksum) + `payload` bytes of 'x'. Addresses
// in host order; the MACs are fixed (the data path does not look at them).
std::string udp4_frame(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint16_t payload = 18);

// Ethernet + IPv4 (DF, TTL 64, checksum right) + a 20-byte TCP header (no checksum: nothing on the
// benches' paths reads it) + zero payload, padded to at least `frame_bytes` (60: a minimum Ethernet frame).
std::string tcp4_frame(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint8_t flags, uint32_t seq,
                       uint32_t ack, size_t frame_bytes = 60);

// A classic pcap file (microsecond timestamps 0, 1, 2 ...) of the frames, at /tmp/<stem>-<pid>.pcap;
// returns the path. The caller removes it once read (net_pcap with infinite_rx reads it at start-up).
std::string write_pcap(const std::string& stem, const std::vector<std::string>& frames);

} // namespace portcullis::bench
