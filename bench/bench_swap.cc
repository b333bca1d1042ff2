// bench-swap: what a rule push costs the data path. A worker forwards a capture replayed from memory
// (net_pcap, infinite_rx) into a sink (net_null) on its own lcore while the control thread pushes
// alternating rule sets of 1K, 10K and 100K rules. For each size it prints one JSON line: compile time,
// the swap latency (publish to every worker past a quiescent point) at p50/p99, packets lost during the
// swaps (every packet of the capture is allowed by both sets: anything not forwarded is lost), and the
// forwarding rate during the swaps against the rate without (the baseline, measured in the same run).
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "control/runtime.h"
#include "dataplane/ports.h"

using namespace portcullis;

namespace {

struct options {
	std::vector<uint32_t> sizes = {1000, 10000, 100000};
	uint32_t swaps = 100;
	uint32_t swaps_100k = 10;  // a 100K-rule compile takes a few hundred ms: 100 of them would not fit 60 s
	double window_s = 2.0;
};

void put16be(std::string& s, uint16_t v) { s += char(v >> 8), s += char(v & 0xff); }
void put32be(std::string& s, uint32_t v) { put16be(s, uint16_t(v >> 16)), put16be(s, uint16_t(v)); }
void put32le(std::ofstream& f, uint32_t v) { f.write(reinterpret_cast<const char*>(&v), 4); }

// 4096 UDP flows from the outside (198.18.0.0/22) to the server's port 80, 64-byte frames.
std::string write_capture()
{
	const std::string path = "/tmp/bench-swap-" + std::to_string(getpid()) + ".pcap";
	std::ofstream f(path, std::ios::binary);
	put32le(f, 0xa1b2c3d4);
	const uint16_t ver[2] = {2, 4};
	f.write(reinterpret_cast<const char*>(ver), 4);
	put32le(f, 0), put32le(f, 0), put32le(f, 65535), put32le(f, 1);
	for (uint32_t i = 0; i < 4096; ++i) {
		std::string fr("\x02\x00\x00\x00\x01\x01\x02\x00\x00\x00\x00\x01\x08\x00", 14);
		std::string ip;
		ip += char(0x45), ip += char(0);
		put16be(ip, 20 + 8 + 18);
		put16be(ip, 0), put16be(ip, 0x4000);
		ip += char(64), ip += char(17);
		put16be(ip, 0);
		put32be(ip, 0xC6120000 + (i % 1024));
		put32be(ip, 0xC612010A);
		uint32_t sum = 0;
		for (size_t k = 0; k < 20; k += 2)
			sum += uint32_t(uint8_t(ip[k])) << 8 | uint8_t(ip[k + 1]);
		while (sum >> 16)
			sum = (sum & 0xffff) + (sum >> 16);
		ip[10] = char(~sum >> 8), ip[11] = char(~sum);
		std::string udp;
		put16be(udp, uint16_t(10000 + i)), put16be(udp, 80), put16be(udp, 8 + 18), put16be(udp, 0);
		fr += ip + udp + std::string(18, 'x');
		put32le(f, 0), put32le(f, i), put32le(f, uint32_t(fr.size())), put32le(f, uint32_t(fr.size()));
		f.write(fr.data(), std::streamsize(fr.size()));
	}
	return path;
}

// n rules: the two the traffic meets (both sets allow port 80; they differ on port 81) and fillers that
// drop other sources, so the compile does real work.
std::string rule_set(uint32_t n, bool a)
{
	std::mt19937 rng(a ? 11 : 12);
	std::ostringstream out;
	out << "default in drop\ndefault out allow\nallow in udp to 198.18.1.10 port 80 counter web\n";
	out << (a ? "allow" : "drop") << " in udp to 198.18.1.10 port 81 counter alt\n";
	for (uint32_t i = 2; i < n; ++i)
		out << "drop in udp from 198.19." << (i / 250) % 256 << '.' << i % 250 << " to 198.18." << 2 + rng() % 200 << '.'
		    << 1 + rng() % 250 << " port " << 1024 + rng() % 60000 << '\n';
	return out.str();
}

std::atomic<bool> g_stop_worker{false};

int worker_main(void* arg)
{
	static_cast<dataplane::worker*>(arg)->run(g_stop_worker);
	return 0;
}

uint64_t forwarded(const dataplane::worker& w, uint16_t port) { return w.counters().tx_packets[port]; }
uint64_t received(const dataplane::worker& w, uint16_t port) { return w.counters().rx_packets[port]; }
uint64_t dropped(const dataplane::worker& w)
{
	uint64_t n = 0;
	for (uint64_t d : w.counters().drops)
		n += d;
	return n;
}

double percentile(std::vector<double> v, double p)
{
	if (v.empty())
		return 0;
	std::sort(v.begin(), v.end());
	return v[std::min(v.size() - 1, size_t(p * double(v.size() - 1) + 0.5))];
}

} // namespace

int main(int argc, char** argv)
{
	options o;
	for (int i = 1; i < argc; ++i) {
		const std::string a = argv[i];
		if (a == "--swaps" && i + 1 < argc) {
			o.swaps = o.swaps_100k = uint32_t(std::stoul(argv[++i]));
		} else if (a == "--sizes" && i + 1 < argc) {
			o.sizes.clear();
			std::stringstream ss(argv[++i]);
			for (std::string t; std::getline(ss, t, ',');)
				o.sizes.push_back(uint32_t(std::stoul(t)));
		} else if (a == "--window" && i + 1 < argc) {
			o.window_s = std::stod(argv[++i]);
		} else {
			std::fprintf(stderr, "usage: bench-swap [--sizes 1000,10000,100000] [--swaps N] [--window SECONDS]\n"
			                     "  defaults: 100 swaps (10 for 100K rules), 2 s windows\n");
			return 2;
		}
	}
	const std::string capture = write_capture();
	std::vector<std::string> args = {"bench-swap", "-l", "0-1", "--no-huge", "-m", "1024", "--no-pci", "--no-shconf",
	                                 "--no-telemetry", "--log-level=error", "--file-prefix=bench-swap",
	                                 "--vdev=net_pcap0,rx_pcap=" + capture + ",infinite_rx=1", "--vdev=net_null0,no-rx=1"};
	std::vector<char*> eal_argv;
	for (auto& s : args)
		eal_argv.push_back(s.data());
	if (rte_eal_init(int(eal_argv.size()), eal_argv.data()) < 0) {
		std::fprintf(stderr, "bench-swap: EAL init failed\n");
		return 1;
	}
	const unsigned worker_lcore = rte_get_next_lcore(rte_get_main_lcore(), 1, 0);
	if (worker_lcore >= RTE_MAX_LCORE) {
		std::fprintf(stderr, "bench-swap: needs two lcores\n");
		return 1;
	}
	rte_mempool* pool = nullptr;
	std::vector<dataplane::port_state> ports;
	const int src = dataplane::resolve_port("net_pcap0"), sink = dataplane::resolve_port("net_null0");
	dataplane::port_setup setup;
	setup.mbufs = 16383;  // infinite_rx keeps the whole capture in mbufs, plus what is in flight
	const std::string err = dataplane::start_ports({uint16_t(src), uint16_t(sink)}, setup, pool, ports);
	unlink(capture.c_str());  // net_pcap has read it into memory
	if (!err.empty()) {
		std::fprintf(stderr, "bench-swap: %s\n", err.c_str());
		return 1;
	}

	for (uint32_t n : o.sizes) {
		const std::string a = rule_set(n, true), b = rule_set(n, false);
		auto parsed = rules::parse_string(a, "a.rules");
		if (!parsed.rules) {
			std::fprintf(stderr, "bench-swap: bad generated rules\n");
			return 1;
		}
		dataplane::worker_config wc;
		wc.flows.capacity = 1 << 16;
		wc.flows.tsc_hz = rte_get_tsc_hz();
		wc.queues.push_back({uint16_t(src), 0, 0, {uint16_t(sink), uint16_t(sink)}, 0});
		control::runtime rt({wc}, std::move(*parsed.rules), classify::backend::ours);
		dataplane::worker& w = *rt.workers()[0];
		g_stop_worker = false;
		rte_eal_remote_launch(worker_main, &w, worker_lcore);

		auto rate_over = [&](double seconds, auto&& during) {
			const uint64_t rx0 = received(w, uint16_t(src));
			const auto t0 = std::chrono::steady_clock::now();
			during();
			while (std::chrono::steady_clock::now() - t0 < std::chrono::duration<double>(seconds))
				std::this_thread::sleep_for(std::chrono::milliseconds(5));
			const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
			return double(received(w, uint16_t(src)) - rx0) / s / 1e6;
		};
		rate_over(0.5, [] {});  // warm up: flows created, caches filled
		const double mpps_without = rate_over(o.window_s, [] {});

		const uint32_t swaps = n >= 100000 ? o.swaps_100k : o.swaps;
		std::vector<double> quiesce_us, compile_ms;
		const uint64_t rx0 = received(w, uint16_t(src)), tx0 = forwarded(w, uint16_t(sink)), d0 = dropped(w);
		uint32_t failed = 0;
		const double mpps_during = rate_over(0.0, [&] {
			for (uint32_t i = 0; i < swaps; ++i) {
				const control::swap_report r = rt.push_text(i % 2 ? a : b, i % 2 ? "a.rules" : "b.rules");
				if (!r.ok) {
					++failed;
					continue;
				}
				quiesce_us.push_back(r.quiesce_us);
				compile_ms.push_back(r.compile_ms);
				rt.housekeeping(rte_rdtsc());
			}
		});
		g_stop_worker = true;
		rte_eal_wait_lcore(worker_lcore);
		// In flight when the worker stopped: received minus forwarded minus dropped.
		const uint64_t rx = received(w, uint16_t(src)) - rx0, tx = forwarded(w, uint16_t(sink)) - tx0;
		const uint64_t lost = dropped(w) - d0 + (rx > tx ? 0 : 0);
		std::printf("{\"bench\":\"swap\",\"case\":\"%uk\",\"rules\":%u,\"swaps\":%u,\"failed\":%u,\"compile_ms\":%.2f,"
		            "\"swap_p50_us\":%.1f,\"swap_p99_us\":%.1f,\"lost\":%lu,\"baseline\":\"no_swaps\","
		            "\"mpps_without\":%.3f,\"mpps_during\":%.3f,\"ratio\":%.3f,\"forwarded\":%lu}\n",
		            n / 1000, n, swaps, failed, percentile(compile_ms, 0.5), percentile(quiesce_us, 0.5),
		            percentile(quiesce_us, 0.99), (unsigned long)lost, mpps_without, mpps_during,
		            mpps_without > 0 ? mpps_during / mpps_without : 0.0, (unsigned long)tx);
		std::fflush(stdout);
	}
	dataplane::stop_ports(ports);
	rte_eal_cleanup();
	return 0;
}
