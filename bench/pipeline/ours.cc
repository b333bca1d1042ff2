// bench/pipeline/ours.cc: our side of a bench-pipeline run (ours.h).
#include "pipeline/ours.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "common/eal.h"
#include "common/json.h"
#include "control/runtime.h"
#include "dataplane/dataplane.h"
#include "dataplane/ports.h"
#include "rules/rules.h"

namespace portcullis::bench::pipeline {
namespace dp = portcullis::dataplane;
namespace {

// The inside of gateway.rules (its `set inside`), used to split the replayed capture by direction.
constexpr const char* inside_networks = "198.18.1.0/24, 2001:2:0:1::/64";

uint64_t sum(const uint64_t* v, size_t n)
{
	uint64_t s = 0;
	for (size_t i = 0; i < n; ++i)
		s += v[i];
	return s;
}

} // namespace

uint16_t mbuf_data_room(uint32_t max_frame)
{
	constexpr uint32_t line = RTE_CACHE_LINE_SIZE, most = dp::default_mbuf_data_room;
	return uint16_t(std::min(most, RTE_PKTMBUF_HEADROOM + (std::max<uint32_t>(max_frame, 320) + line - 1) / line * line));
}

// Under --no-huge the pool lies in 4 KiB pages and no mbuf crosses a page: a default 2.3 KiB mbuf takes
// a page of its own (1M of them failed with 3.6 GB and ran with 4.3), and filling a capture's worth of
// pages was most of each run's start (five of its eight seconds on a 2-vCPU EPYC guest under shadow
// paging, 104 s for the bench's default run). Objects are the data room, the rte_mbuf and the mempool's
// header, a cache line. The rest (rings, rules) fits in 256 MB; EAL faulted in all of -m as
// it started on a Xeon VM, where 768 MB for the rest cost the default run 12 s of system time.
uint32_t eal_megabytes(uint32_t mbufs, uint16_t data_room)
{
	const uint32_t object = RTE_CACHE_LINE_SIZE + uint32_t(sizeof(rte_mbuf)) + data_room,
	               per_page = std::max<uint32_t>(1, 4096 / object);
	return 256 + uint32_t(((uint64_t(mbufs) + per_page - 1) / per_page * 4096) >> 20);
}

std::vector<std::string> child_arguments(const child_run& r)
{
	return {"--child-ours", r.capture, r.setup.empty() ? "-" : r.setup, r.rules, fixed(r.warmup, 3), fixed(r.seconds, 3),
	        std::to_string(r.mbufs), std::to_string(r.mbuf_data_room), std::to_string(r.flow_capacity), r.expiry ? "1" : "0",
	        std::to_string(r.capture_packets)};
}

bool parse_child_arguments(int argc, char** argv, child_run& r)
{
	if (argc != 12 || std::string(argv[1]) != "--child-ours")
		return false;
	r.capture = argv[2];
	r.setup = std::string(argv[3]) == "-" ? "" : argv[3];
	r.rules = argv[4];
	r.warmup = std::atof(argv[5]);
	r.seconds = std::atof(argv[6]);
	r.mbufs = uint32_t(std::atol(argv[7]));
	r.mbuf_data_room = uint16_t(std::atol(argv[8]));
	r.flow_capacity = uint32_t(std::atol(argv[9]));
	r.expiry = std::atoi(argv[10]) != 0;
	r.capture_packets = std::strtoull(argv[11], nullptr, 10);
	return true;
}

int run_child(const child_run& r)
{
	// The worker runs on lcore 1, where testpmd runs its forwarding core too; the expiry thread (if any)
	// on the other CPU, where testpmd's main lcore sits.
	eal_config c;
	c.program = dp::stage_timers ? "bench-pipeline-stages" : "bench-pipeline";
	c.prefix = "bench-pipeline-ours";
	c.lcores = "1";
	c.memory_mb = eal_megabytes(r.mbufs, r.mbuf_data_room);
	c.log_level = "warning";
	c.vdevs = {"net_pcap0,rx_pcap=" + r.capture + ",infinite_rx=1", "net_null0,no-rx=1"};
	if (!r.setup.empty())
		c.vdevs.push_back("net_pcap1,rx_pcap=" + r.setup);
	const auto started = std::chrono::steady_clock::now();
	auto since_start = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(); };
	if (!start_eal(c))
		return 1;
	std::fprintf(stderr, "bench-pipeline: child: EAL up after %.1f s\n", since_start());
	const int outside = dp::resolve_port("net_pcap0"), inside = dp::resolve_port("net_null0");
	const int setup_port = r.setup.empty() ? -1 : dp::resolve_port("net_pcap1");
	if (outside < 0 || inside < 0 || (!r.setup.empty() && setup_port < 0)) {
		std::fprintf(stderr, "bench-pipeline: vdevs not found\n");
		return 1;
	}
	dp::port_setup setup;
	setup.mbufs = r.mbufs;
	setup.mbuf_data_room = r.mbuf_data_room;
	setup.symmetric_rss = false;
	rte_mempool* pool = nullptr;
	std::vector<dp::port_state> ports;
	std::vector<uint16_t> port_ids = {uint16_t(outside), uint16_t(inside)};
	if (setup_port >= 0)
		port_ids.push_back(uint16_t(setup_port));
	if (auto err = dp::start_ports(port_ids, setup, pool, ports); !err.empty()) {
		std::fprintf(stderr, "bench-pipeline: %s\n", err.c_str());
		return 1;
	}

	std::fprintf(stderr, "bench-pipeline: child: ports up (captures loaded) after %.1f s\n", since_start());
	auto parsed = rules::parse_file(r.rules);
	auto in_nets = rules::parse_string(std::string("allow out from { ") + inside_networks + " }", "inside-networks");
	if (!parsed.rules || !in_nets.rules) {
		for (const auto& d : parsed.errors)
			std::fprintf(stderr, "%s\n", rules::format(d).c_str());
		return 1;
	}
	const size_t rule_count = parsed.rules->rules.size();
	auto compiled = dp::compile(std::move(*parsed.rules), 1, 1);
	if (!compiled.policy) {
		std::fprintf(stderr, "bench-pipeline: %s\n", compiled.error.c_str());
		return 1;
	}
	std::atomic<dp::compiled_policy*> active{compiled.policy.get()};

	dp::worker_config wc;
	wc.flows.tsc_hz = rte_get_tsc_hz();
	wc.flows.capacity = r.flow_capacity;
	wc.inside4 = in_nets.rules->rules.at(0).match.src4;
	wc.inside6 = in_nets.rules->rules.at(0).match.src6;
	const uint16_t out_p = uint16_t(outside), in_p = uint16_t(inside);
	// Replay ports: direction per packet; inbound leaves by the inside sink, outbound back by the port it
	// came from (net_pcap without a tx file drops what it is given).
	wc.queues.push_back({out_p, 0, -1, {in_p, out_p}, 0});
	if (setup_port >= 0)
		wc.queues.push_back({uint16_t(setup_port), 0, -1, {in_p, uint16_t(setup_port)}, 0});
	// No RCU variable: one policy for the whole run.
	auto w = std::make_unique<dp::worker>(wc, active, nullptr);

	std::atomic<bool> stop{false};
	std::thread expiry;
	if (r.expiry)
		expiry = std::thread([&] {
			// What the daemon's control loop does for expiry, at its pace: a slice of the buckets a
			// round. (This thread once scanned 1024 buckets every millisecond, about five times the
			// daemon's rate; its reads of the lines the worker then writes cost new_flows_64b about a
			// tenth of its rate on a Xeon VM.)
			while (!stop.load(std::memory_order_relaxed)) {
				w->flows().expire(rte_rdtsc(), control::housekeeping_buckets);
				usleep(control::control_interval_ms * 1000);
			}
		});

	const uint64_t hz = rte_get_tsc_hz();
	// Warm-up: at least the warm-up time and one whole pass of the capture (so that every flow of the
	// traffic has been seen), and until the setup capture (handshakes) is all through.
	const uint64_t warm_end = rte_rdtsc() + uint64_t(r.warmup * double(hz));
	uint64_t t;
	while ((t = rte_rdtsc()) < warm_end || w->counters().rx_packets[outside % dp::max_ports] < r.capture_packets ||
	       (setup_port >= 0 && w->counters().rx_packets[setup_port % dp::max_ports] == 0))
		w->poll_once();
	if (setup_port >= 0) {
		// net_pcap without infinite_rx reads the file as it goes: drained when a few polls bring nothing.
		for (uint64_t last = ~0ull, idle = 0; idle < 1000; w->poll_once()) {
			const uint64_t now_rx = w->counters().rx_packets[setup_port % dp::max_ports];
			idle = now_rx == last ? idle + 1 : 0;
			last = now_rx;
		}
	}
	std::fprintf(stderr, "bench-pipeline: child: warm-up done after %.1f s\n", since_start());
	const dp::worker_counters b = w->counters();
	std::vector<double> per_second;
	auto rx_now = [&] { return sum(w->counters().rx_packets, dp::max_ports); };
	const uint64_t t0 = rte_rdtsc(), end = t0 + uint64_t(r.seconds * double(hz));
	uint64_t mark = t0, mark_rx = rx_now();
	while ((t = rte_rdtsc()) < end) {
		w->poll_once();
		if (t - mark >= hz) {
			const uint64_t rx = rx_now();
			per_second.push_back(double(rx - mark_rx) * double(hz) / double(t - mark));
			mark = t;
			mark_rx = rx;
		}
	}
	const dp::worker_counters a = w->counters();
	stop = true;
	if (expiry.joinable())
		expiry.join();
	const double secs = double(t - t0) / double(hz);

	const uint64_t rx = sum(a.rx_packets, dp::max_ports) - sum(b.rx_packets, dp::max_ports);
	uint64_t fwd = 0, dropped = 0;
	for (int d = 0; d < 2; ++d) {
		fwd += a.packets[d][0] - b.packets[d][0];
		dropped += a.packets[d][1] - b.packets[d][1] + a.packets[d][2] - b.packets[d][2];
	}
	json_line reasons;
	for (size_t k = 0; k < dp::drop_reason_count; ++k)
		if (const uint64_t n = a.drops[k] - b.drops[k])
			reasons.integer(dp::to_string(dp::drop_reason(k)), n);
	// Per packet, in TSC cycles: the worker's busy time without the driver's rx_burst and tx_burst, and
	// the driver's apart.
	const double per = rx ? 1.0 / double(rx) : 0;
	const uint64_t busy = a.busy_tsc - b.busy_tsc, drv_rx = a.driver_rx_tsc - b.driver_rx_tsc,
	               drv_tx = a.driver_tx_tsc - b.driver_tx_tsc;
	json_line stages;
	double stage_total = 0;
	for (uint32_t s = 0; s < dp::stage_count; ++s) {
		const double c = double(a.stage_tsc[s] - b.stage_tsc[s]) * per;
		stages.fixed(dp::to_string(dp::stage(s)), c, 1);
		stage_total += c;
	}
	json_line line;
	line.integer("rx", rx)
	    .integer("forwarded", fwd)
	    .integer("dropped", dropped)
	    .fixed("seconds", secs, 3)
	    .fixed("mpps", double(rx) / secs / 1e6, 3)
	    .integer("rules", rule_count)
	    .integer("flows_opened", a.flows_opened - b.flows_opened)
	    .fixed("flows_opened_per_second", double(a.flows_opened - b.flows_opened) / secs, 0)
	    .integer("flows_live", w->flows().size())
	    .integer("worker_packets", sum(a.rx_packets, dp::max_ports))  // setup and warm-up included
	    .fixed("busy_share", double(busy) / double(busy + a.idle_tsc - b.idle_tsc + 1), 3)
	    .fixed("cycles_per_packet", double(busy - drv_rx - drv_tx) * per, 1)
	    .fixed("driver_rx_cycles_per_packet", double(drv_rx) * per, 1)
	    .fixed("driver_tx_cycles_per_packet", double(drv_tx) * per, 1)
	    .fixed("tsc_ghz", double(hz) / 1e9, 3);
	if (dp::stage_timers)
		line.raw("stage_cycles", stages.str()).fixed("stage_cycles_total", stage_total, 1);
	line.raw("drop_reasons", reasons.str()).fixed_array("per_second_mpps", per_second, 3, 1e-6);
	std::printf("ours %s\n", line.str().c_str());
	std::fflush(stdout);
	w.reset();
	dp::stop_ports(ports);
	rte_eal_cleanup();
	return 0;
}

} // namespace portcullis::bench::pipeline
