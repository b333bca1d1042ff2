// bench/flood/traffic.cc: the established connections' frames and the SYN flood's (traffic.h).
#include "flood/traffic.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "common/frames.h"
#include "flow/conntrack.h"

namespace portcullis::bench::flood {

tcp_frame make_tcp4(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, uint8_t flags, uint32_t seq,
                    uint32_t ack, uint16_t payload)
{
	tcp_frame f{};
	uint8_t* e = f.bytes;
	const uint8_t macs[12] = {2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1};
	std::memcpy(e, macs, 12);
	bench::store16be(e + 12, 0x0800);
	uint8_t* ip = e + 14;
	ip[0] = 0x45;
	bench::store16be(ip + 2, uint16_t(40 + payload));
	bench::store16be(ip + 6, 0x4000);
	ip[8] = 64;
	ip[9] = 6;
	bench::store32be(ip + 12, src);
	bench::store32be(ip + 16, dst);
	bench::ipv4_checksum(ip);
	uint8_t* tcp = ip + 20;
	bench::store16be(tcp, sport);
	bench::store16be(tcp + 2, dport);
	bench::store32be(tcp + 4, seq);
	bench::store32be(tcp + 8, ack);
	tcp[12] = 5 << 4;
	tcp[13] = flags;
	bench::store16be(tcp + 14, 65535);
	std::memset(tcp + 20, 'x', payload);
	return f;
}

tcp_frame flood_source::syn()
{
	uint32_t src;
	uint64_t r;
	do {
		r = next();
		src = flood_net | (uint32_t(r) & flood_mask);
	} while ((src & 0xFFFFFF00) == inside_net || (src & 0xFFFFFC00) == client_net);
	const uint16_t sport = uint16_t(1024 + (r >> 32) % 64512);
	return make_tcp4(src, sport, server, http, flow::tcp_flag::syn, uint32_t(r >> 17), 0, 0);
}

connections make_connections(uint32_t n, std::mt19937_64& rng)
{
	connections c;
	for (uint32_t i = 0; i < n; ++i) {
		const uint32_t client = client_net + (i % 1024);
		const uint16_t cport = uint16_t(20000 + i / 1024), sport = i % 2 ? https : http;
		const uint32_t cisn = 1000 + i, sisn = 500000 + i;
		c.to_server.push_back(make_tcp4(client, cport, server, sport, flow::tcp_flag::psh | flow::tcp_flag::ack,
		                                cisn + 1, sisn + 1, 6));
		c.to_client.push_back(make_tcp4(server, sport, client, cport, flow::tcp_flag::psh | flow::tcp_flag::ack,
		                                sisn + 1, cisn + 1, 6));
	}
	c.order.resize(n);
	std::iota(c.order.begin(), c.order.end(), 0u);
	std::shuffle(c.order.begin(), c.order.end(), rng);
	return c;
}

} // namespace portcullis::bench::flood
