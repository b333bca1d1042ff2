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

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "common/args.h"
#include "common/eal.h"
#include "common/frames.h"
#include "common/json.h"
#include "common/stats.h"
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

// 4096 UDP flows from the outside (198.18.4.0/22, which leaves out the server: a packet from 198.18.1.10 to
// itself is a land packet, dropped) to the server's port 80, 64-byte frames.
std::string write_capture()
{
	std::vector<std::string> frames;
	for (uint32_t i = 0; i < 4096; ++i)
		frames.push_back(bench::udp4_frame(0xC6120400 + (i % 1024), 0xC612010A, uint16_t(10000 + i), 80));
	return bench::write_pcap("bench-swap", frames);
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

void usage()
{
	std::fprintf(stderr, "usage: bench-swap [--sizes 1000,10000,100000] [--swaps N] [--window SECONDS]\n"
	                     "  defaults: 100 swaps (10 for 100K rules), 2 s windows\n");
}

} // namespace

int main(int argc, char** argv)
{
	options o;
	for (bench::arg_reader a(argc, argv, usage); a.next();) {
		if (a.option("--swaps")) {
			o.swaps = o.swaps_100k = uint32_t(std::stoul(a.value()));
		} else if (a.option("--sizes")) {
			o.sizes.clear();
			for (const auto& t : bench::split_list(a.value()))
				o.sizes.push_back(uint32_t(std::stoul(t)));
		} else if (a.option("--window")) {
			o.window_s = std::stod(a.value());
		} else {
			usage();
			return 2;
		}
	}
	const std::string capture = write_capture();
	bench::eal_config eal;
	eal.program = "bench-swap";
	eal.lcores = "0-1";
	eal.vdevs = {"net_pcap0,rx_pcap=" + capture + ",infinite_rx=1", "net_null0,no-rx=1"};
	if (!bench::start_eal(eal)) {
		unlink(capture.c_str());
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
		bench::json_line()
		    .text("bench", "swap")
		    .text("case", std::to_string(n / 1000) + "k")
		    .integer("rules", n)
		    .integer("swaps", swaps)
		    .integer("failed", failed)
		    .fixed("compile_ms", bench::percentile(compile_ms, 0.5), 2)
		    .fixed("swap_p50_us", bench::percentile(quiesce_us, 0.5), 1)
		    .fixed("swap_p99_us", bench::percentile(quiesce_us, 0.99), 1)
		    .integer("lost", lost)
		    .text("baseline", "no_swaps")
		    .fixed("mpps_without", mpps_without, 3)
		    .fixed("mpps_during", mpps_during, 3)
		    .fixed("ratio", mpps_without > 0 ? mpps_during / mpps_without : 0.0, 3)
		    .integer("forwarded", tx)
		    .print();
	}
	dataplane::stop_ports(ports);
	rte_eal_cleanup();
	return 0;
}
