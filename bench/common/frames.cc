// bench/common/frames.cc: frames and pcap files for benches (frames.h).
#include "common/frames.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>

namespace portcullis::bench {

void ipv4_checksum(uint8_t* ip)
{
	ip[10] = ip[11] = 0;
	uint32_t sum = 0;
	for (int k = 0; k < 20; k += 2)
		sum += uint32_t(ip[k]) << 8 | ip[k + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	store16be(ip + 10, uint16_t(~sum));
}

namespace {

// Ethernet (fixed unicast MACs: the data path only refuses group source MACs) and an IPv4 header (DF, TTL 64, checksum
// right) at the start of p, for `l4_bytes` of protocol `proto` after it. Returns the L4 header's place.
uint8_t* eth_ipv4(uint8_t* p, uint32_t src, uint32_t dst, uint8_t proto, size_t l4_bytes)
{
	const uint8_t macs[12] = {2, 0, 0, 0, 1, 1, 2, 0, 0, 0, 0, 1};
	std::copy(macs, macs + 12, p);
	store16be(p + 12, 0x0800);
	uint8_t* ip = p + 14;
	std::fill(ip, ip + 20, 0);
	ip[0] = 0x45;
	store16be(ip + 2, uint16_t(20 + l4_bytes));
	store16be(ip + 6, 0x4000);
	ip[8] = 64;
	ip[9] = proto;
	store32be(ip + 12, src);
	store32be(ip + 16, dst);
	ipv4_checksum(ip);
	return ip + 20;
}

} // namespace

std::string udp4_frame(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint16_t payload)
{
	std::string fr(14 + 20 + 8 + size_t(payload), 'x');
	uint8_t* udp = eth_ipv4(reinterpret_cast<uint8_t*>(fr.data()), src, dst, 17, 8 + size_t(payload));
	std::fill(udp, udp + 8, 0);
	store16be(udp, sport);
	store16be(udp + 2, dport);
	store16be(udp + 4, uint16_t(8 + payload));
	return fr;
}

std::string tcp4_frame(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint8_t flags, uint32_t seq,
                       uint32_t ack, size_t frame_bytes)
{
	constexpr size_t headers = 14 + 20 + 20;
	const size_t payload = frame_bytes > 60 ? frame_bytes - headers : 0;  // a 60-byte frame is padding only
	std::string fr(std::max(frame_bytes, headers), '\0');
	uint8_t* tcp = eth_ipv4(reinterpret_cast<uint8_t*>(fr.data()), src, dst, 6, 20 + payload);
	store16be(tcp, sport);
	store16be(tcp + 2, dport);
	store32be(tcp + 4, seq);
	store32be(tcp + 8, ack);
	tcp[12] = 5 << 4;
	tcp[13] = flags;
	store16be(tcp + 14, 65535);
	return fr;
}

std::string write_pcap(const std::string& stem, const std::vector<std::string>& frames)
{
	const std::string path = "/tmp/" + stem + "-" + std::to_string(getpid()) + ".pcap";
	std::ofstream f(path, std::ios::binary);
	auto put32 = [&](uint32_t v) { f.write(reinterpret_cast<const char*>(&v), 4); };  // the writer's byte order
	put32(0xa1b2c3d4);
	const uint16_t version[2] = {2, 4};
	f.write(reinterpret_cast<const char*>(version), 4);
	put32(0), put32(0), put32(65535), put32(1);  // zone, sigfigs, snaplen, Ethernet
	for (size_t i = 0; i < frames.size(); ++i) {
		put32(0), put32(uint32_t(i)), put32(uint32_t(frames[i].size())), put32(uint32_t(frames[i].size()));
		f.write(frames[i].data(), std::streamsize(frames[i].size()));
	}
	return path;
}

} // namespace portcullis::bench
