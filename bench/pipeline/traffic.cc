// bench/pipeline/traffic.cc: generated captures and rule sets for bench-pipeline (traffic.h).
#include "pipeline/traffic.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <random>
#include <vector>

#include "common/frames.h"

namespace portcullis::bench::pipeline {
namespace {

constexpr uint32_t server = 0xC612010A;          // 198.18.1.10
constexpr uint32_t inside_net = 0xC6120100;      // 198.18.1.0/24
constexpr uint32_t outside_net = 0xC6130000;     // 198.19.0.0/16
constexpr uint8_t syn = 0x02, ack = 0x10, psh_ack = 0x18, syn_ack = 0x12;

struct endpoint_pair {
	uint32_t a, b;  // opener, responder
	uint16_t pa, pb;
};

// Flow k of a mix: even k inbound (an outside client to the server), odd k outbound (a workstation to
// an outside server). Distinct for k below 2^24.
endpoint_pair tcp_flow(uint32_t k)
{
	static constexpr uint16_t services[3] = {22, 80, 443};
	const uint32_t outside = outside_net | ((k >> 1) & 0xffff);
	const uint16_t eph = uint16_t(1024 + (k >> 17) * 7 + (k & 1));
	if (k % 2 == 0)
		return {outside, server, eph, services[(k >> 1) % 3]};
	const uint32_t workstation = inside_net | (20 + (k >> 1) % 200);
	return {workstation, outside, uint16_t(1024 + (k >> 1) / 200 % 60000 + (k >> 25)), 443};
}

template <class T>
void shuffle(std::vector<T>& v, uint64_t seed)
{
	std::mt19937_64 rng(seed);
	std::shuffle(v.begin(), v.end(), rng);
}

uint32_t largest_frame(const std::vector<std::string>& setup, const std::vector<std::string>& data)
{
	size_t most = 0;
	for (const auto* frames : {&setup, &data})
		for (const std::string& f : *frames)
			most = std::max(most, f.size());
	return uint32_t(most);
}

} // namespace

capture_pair established(uint32_t flows, uint64_t seed)
{
	std::vector<std::string> setup, data;
	setup.reserve(size_t(flows) * 3);
	data.reserve(flows);
	auto isn = [](uint32_t k, uint32_t side) { return k * 2654435761u + side * 0x9e3779b9u; };
	for (uint32_t step = 0; step < 3; ++step)
		for (uint32_t k = 0; k < flows; ++k) {
			const endpoint_pair f = tcp_flow(k);
			const uint32_t c = isn(k, 0), s = isn(k, 1);
			if (step == 0)
				setup.push_back(tcp4_frame(f.a, f.b, f.pa, f.pb, syn, c, 0));
			else if (step == 1)
				setup.push_back(tcp4_frame(f.b, f.a, f.pb, f.pa, syn_ack, s, c + 1));
			else
				setup.push_back(tcp4_frame(f.a, f.b, f.pa, f.pb, ack, c + 1, s + 1));
		}
	for (uint32_t k = 0; k < flows; ++k) {
		const endpoint_pair f = tcp_flow(k);
		const uint32_t c = isn(k, 0) + 1, s = isn(k, 1) + 1;
		if (k % 2 == 0)
			data.push_back(tcp4_frame(f.a, f.b, f.pa, f.pb, psh_ack, c, s));
		else
			data.push_back(tcp4_frame(f.b, f.a, f.pb, f.pa, psh_ack, s, c));
	}
	shuffle(data, seed);
	return {write_pcap("bench-pipeline-established-setup", setup), write_pcap("bench-pipeline-established", data),
	        setup.size(), data.size(), largest_frame(setup, data)};
}

capture_pair new_flows(uint32_t syns, uint64_t seed)
{
	std::vector<std::string> data;
	data.reserve(syns);
	for (uint32_t k = 0; k < syns; ++k)
		data.push_back(tcp4_frame(outside_net | (k & 0xffff), server, uint16_t(1024 + (k >> 16) * 13 % 60000), 80, syn,
		                          k * 2654435761u, 0));
	shuffle(data, seed);
	return {{}, write_pcap("bench-pipeline-new-flows", data), 0, data.size(), largest_frame({}, data)};
}

capture_pair imix(uint32_t flows, uint32_t looped, uint64_t seed)
{
	std::vector<std::string> setup, data;
	setup.reserve(flows);
	data.reserve(looped);
	auto flow = [](uint32_t k, uint16_t payload) {
		const uint32_t src = inside_net | (k & 0xff);
		const uint16_t sport = uint16_t(1024 + (k >> 8) % 60000);
		const uint32_t dst = outside_net | ((k >> 8) * 40503u & 0xffff);
		return udp4_frame(src, dst, sport, 443, payload);
	};
	for (uint32_t k = 0; k < flows; ++k)
		setup.push_back(flow(k, 18));
	// The looped flows: a random `looped` of them, in random order.
	std::vector<uint32_t> pick(flows);
	for (uint32_t k = 0; k < flows; ++k)
		pick[k] = k;
	shuffle(pick, seed);
	for (uint32_t i = 0; i < looped && i < flows; ++i) {
		// On-wire 64, 594, 1518 bytes (FCS included): 60, 590, 1514 in the file; UDP payload to match.
		const uint32_t at = i % 12;
		const uint16_t frame = at < 7 ? 60 : at < 11 ? 590 : 1514;
		data.push_back(flow(pick[i], uint16_t(std::max(18, frame - 14 - 20 - 8))));
	}
	return {write_pcap("bench-pipeline-imix-setup", setup), write_pcap("bench-pipeline-imix", data), setup.size(),
	        data.size(), largest_frame(setup, data)};
}

std::string large_rule_set(uint32_t count, const std::string& base, uint64_t seed)
{
	const std::string path = "/tmp/bench-pipeline-rules-" + std::to_string(getpid()) + ".rules";
	std::ofstream out(path);
	std::mt19937_64 rng(seed);
	auto prefix = [&] {
		// 10.0.0.0/8, 100.64.0.0/10 or 172.16.0.0/12 space: never the benchmark hosts.
		static constexpr uint32_t bases[3] = {0x0A000000, 0x64400000, 0xAC100000};
		const uint32_t len = 16 + uint32_t(rng() % 17);
		const uint32_t addr = (bases[rng() % 3] | (uint32_t(rng()) & 0x000fffff)) & (len ? ~0u << (32 - len) : 0);
		return std::to_string(addr >> 24) + "." + std::to_string(addr >> 16 & 255) + "." + std::to_string(addr >> 8 & 255) +
		       "." + std::to_string(addr & 255) + "/" + std::to_string(len);
	};
	auto ports = [&] {
		const uint32_t lo = uint32_t(rng() % 65000), span = uint32_t(rng() % 4) == 0 ? 0 : uint32_t(rng() % 500);
		return span ? std::to_string(lo) + "-" + std::to_string(lo + span) : std::to_string(lo);
	};
	out << "# " << count << " generated rules that the bench traffic never matches, then the gateway's rules.\n";
	for (uint32_t i = 0; i < count; ++i)
		out << "drop " << (rng() % 2 ? "in" : "out") << (rng() % 2 ? " tcp" : " udp") << " from " << prefix() << " port "
		    << ports() << " to " << prefix() << " port " << ports() << "\n";
	out << "include \"" << base << "\"\n";
	return path;
}

} // namespace portcullis::bench::pipeline
