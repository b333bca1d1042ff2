// bench-workers: what a second worker buys when the ports have one RX queue each, so that one worker
// polls and hands packets to their owners (software distribution, docs/workers.md). A capture holding
// both directions of 4096 UDP flows is replayed from memory (net_pcap, infinite_rx) as the outside port
// in replay mode, split by inside networks; inbound packets leave by a net_null sink, outbound ones by
// the pcap port (written to /dev/null, one TX queue per worker). The same wiring as the daemon
// (start_ports, plan_workers, make_handoff_rings) runs with one worker, then with two; each prints the
// forwarding rate over the same window, and one JSON line compares them.
//
// On a machine with fewer CPUs than lcores (main + 2 workers), the lcores share CPUs (--lcores): the
// main lcore only sleeps while measuring, so two workers get about two CPUs, but whatever the OS does
// lands on them too. The JSON says how many CPUs there were.
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "common/args.h"
#include "common/eal.h"
#include "common/frames.h"
#include "common/json.h"
#include "control/runtime.h"
#include "dataplane/ports.h"

using namespace portcullis;
namespace dp = portcullis::dataplane;

namespace {

constexpr uint32_t flows = 4096;
constexpr uint32_t server_net = 0xC6120100;  // 198.18.1.0/24, the inside network
constexpr uint32_t client_net = 0x0A000000;  // 10.0.0.0/16, outside

// Each flow: a request from an outside client to an inside server's port 80, then its reply. 1024
// clients and 250 servers, so the address pairs (what owner_of hashes) are many and spread evenly.
std::string write_capture()
{
	std::vector<std::string> frames;
	for (uint32_t i = 0; i < flows; ++i) {
		const uint32_t client = client_net + 1 + (i % 1024), server = server_net + 1 + (i * 7) % 250;
		const uint16_t cport = uint16_t(10000 + i);
		frames.push_back(bench::udp4_frame(client, server, cport, 80));
		frames.push_back(bench::udp4_frame(server, client, 80, cport));
	}
	return bench::write_pcap("bench-workers", frames);
}

std::atomic<bool> g_stop{false};

int worker_main(void* arg)
{
	static_cast<dp::worker*>(arg)->run(g_stop);
	return 0;
}

struct totals {
	uint64_t rx = 0, tx = 0, drops = 0, handed_off = 0;
};

totals sum(const control::runtime& rt)
{
	totals t;
	for (const auto& w : rt.workers()) {
		const auto& c = w->counters();
		for (uint32_t p = 0; p < dp::max_ports; ++p) {
			t.rx += __atomic_load_n(&c.rx_packets[p], __ATOMIC_RELAXED);
			t.tx += __atomic_load_n(&c.tx_packets[p], __ATOMIC_RELAXED);
		}
		for (size_t r = 0; r < dp::drop_reason_count; ++r)
			t.drops += __atomic_load_n(&c.drops[r], __ATOMIC_RELAXED);
		t.handed_off += __atomic_load_n(&c.handed_off, __ATOMIC_RELAXED);
	}
	return t;
}

struct result {
	double mpps = 0;           // forwarded (transmitted) per second
	double handed_share = 0;   // handed off / received
	uint64_t drops = 0;
};

result run_case(uint32_t nworkers, const std::vector<dp::port_state>& ports, const std::vector<unsigned>& lcores,
                double window_s)
{
	result res;
	const dp::worker_plan plan = dp::plan_workers(ports[0], ports[1], true, nworkers);
	if (!plan.error.empty()) {
		std::fprintf(stderr, "bench-workers: %s\n", plan.error.c_str());
		return res;
	}
	std::string err;
	std::vector<rte_ring*> handoff;
	if (plan.distribute) {
		handoff = dp::make_handoff_rings(nworkers, 4096, "bw_inbox" + std::to_string(nworkers) + "_", err);
		if (handoff.empty()) {
			std::fprintf(stderr, "bench-workers: %s\n", err.c_str());
			return res;
		}
	}
	std::vector<dp::worker_config> configs(nworkers);
	for (uint32_t w = 0; w < nworkers; ++w) {
		configs[w].flows.capacity = 1 << 16;
		configs[w].flows.tsc_hz = rte_get_tsc_hz();
		configs[w].queues = plan.queues[w];
		configs[w].handoff = handoff;
		configs[w].inside4 = {{server_net, server_net + 255}};
	}
	auto parsed = rules::parse_string("default in drop\ndefault out allow\nallow in udp to 198.18.1.0/24 port 80\n",
	                                  "bench.rules");
	auto rt = std::make_unique<control::runtime>(configs, std::move(*parsed.rules), classify::backend::ours);
	if (!rt->error().empty()) {
		std::fprintf(stderr, "bench-workers: %s\n", rt->error().c_str());
		return res;
	}
	g_stop = false;
	for (uint32_t w = 0; w < nworkers; ++w)
		rte_eal_remote_launch(worker_main, rt->workers()[w].get(), lcores[w]);

	// Warm up (flows opened, caches filled), then measure; the main lcore only sleeps meanwhile.
	std::this_thread::sleep_for(std::chrono::milliseconds(500));
	const totals t0 = sum(*rt);
	const auto start = std::chrono::steady_clock::now();
	std::this_thread::sleep_for(std::chrono::duration<double>(window_s));
	const totals t1 = sum(*rt);
	const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
	g_stop = true;
	rte_eal_mp_wait_lcore();

	res.mpps = double(t1.tx - t0.tx) / s / 1e6;
	res.handed_share = t1.rx > t0.rx ? double(t1.handed_off - t0.handed_off) / double(t1.rx - t0.rx) : 0;
	res.drops = t1.drops;
	for (uint32_t w = 0; w < nworkers; ++w) {
		const auto& c = rt->workers()[w]->counters();
		uint64_t rx = 0;
		for (uint32_t p = 0; p < dp::max_ports; ++p)
			rx += c.rx_packets[p];
		std::fprintf(stderr, "bench-workers: %u worker(s): worker %u judged %lu, handed off %lu, idle polls %.1f%%\n",
		             nworkers, w, (unsigned long)rx, (unsigned long)c.handed_off,
		             c.polls ? 100.0 * double(c.idle_polls) / double(c.polls) : 0.0);
		for (size_t r = 0; r < dp::drop_reason_count; ++r)
			if (c.drops[r])
				std::fprintf(stderr, "bench-workers: %u worker(s): worker %u dropped %lu as %s\n", nworkers, w,
				             (unsigned long)c.drops[r], std::string(dp::to_string(dp::drop_reason(r))).c_str());
	}
	rt.reset();
	dp::free_handoff_rings(handoff);
	return res;
}

void usage()
{
	std::fprintf(stderr, "usage: bench-workers [--window SECONDS] [--lcores EAL_LCORE_MAP]\n"
	                     "  defaults: 3 s windows; lcores 0-2, or 0@0,1@1,2@0 on a 2-CPU machine\n");
}

} // namespace

int main(int argc, char** argv)
{
	double window_s = 3.0;
	std::string lcores_arg;
	for (bench::arg_reader a(argc, argv, usage); a.next();) {
		if (a.option("--window")) {
			window_s = std::stod(a.value());
		} else if (a.option("--lcores")) {
			lcores_arg = a.value();
		} else {
			usage();
			return 2;
		}
	}
	const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (lcores_arg.empty())
		lcores_arg = cpus >= 3 ? "0-2" : "0@0,1@1,2@0";  // worker 1 shares the main lcore's CPU
	const std::string capture = write_capture();
	bench::eal_config eal;
	eal.program = "bench-workers";
	eal.lcores = lcores_arg;
	eal.vdevs = {"net_pcap0,rx_pcap=" + capture + ",infinite_rx=1,tx_pcap=/dev/null,tx_pcap=/dev/null",
	             "net_null0,no-rx=1"};
	if (!bench::start_eal(eal)) {
		unlink(capture.c_str());
		return 1;
	}
	std::vector<unsigned> lcores;
	unsigned lcore;
	RTE_LCORE_FOREACH_WORKER(lcore) lcores.push_back(lcore);
	if (lcores.size() < 2) {
		std::fprintf(stderr, "bench-workers: needs three lcores (main and two workers)\n");
		return 1;
	}
	const int src = dp::resolve_port("net_pcap0"), sink = dp::resolve_port("net_null0");
	dp::port_setup setup;
	setup.queues = 2;      // TX queues for two workers; the pcap port has one RX queue whatever we ask
	setup.mbufs = 32767;   // the capture held in mbufs, two inboxes, the rings and caches
	rte_mempool* pool = nullptr;
	std::vector<dp::port_state> ports;
	const std::string err = dp::start_ports({uint16_t(src), uint16_t(sink)}, setup, pool, ports);
	unlink(capture.c_str());  // net_pcap has read it into memory
	if (!err.empty()) {
		std::fprintf(stderr, "bench-workers: %s\n", err.c_str());
		return 1;
	}

	const result one = run_case(1, ports, lcores, window_s);
	const result two = run_case(2, ports, lcores, window_s);
	bench::json_line()
	    .text("bench", "workers")
	    .text("case", "replay")
	    .text("baseline", "1_worker")
	    .fixed("baseline_mpps", one.mpps, 3)
	    .text("ours", "2_workers")
	    .fixed("ours_mpps", two.mpps, 3)
	    .fixed("ratio", one.mpps > 0 ? two.mpps / one.mpps : 0.0, 3)
	    .integer("rx_queues", ports[0].rx_queues)
	    .fixed("handed_off_share", two.handed_share, 3)
	    .integer("drops_1", one.drops)
	    .integer("drops_2", two.drops)
	    .integer("cpus", cpus)
	    .text("lcores", lcores_arg)
	    .print();
	dp::stop_ports(ports);
	rte_eal_cleanup();
	return 0;
}
