// bench-sets, cases set_load_under_load and set_add: what changing a 1M-entry file set costs while a
// worker forwards, against the alternative of pushing the whole rule set again.
//
// Set-up (as bench-swap): one worker on its own lcore forwards a capture replayed from memory (net_pcap,
// infinite_rx: 4096 UDP flows from 198.18.4.0/22 to 198.18.1.10 port 80) into a sink (net_null). The
// rule set drops `in from $feed`, a file set read from a generated feed of 1M random entries (95% IPv4
// CIDRs with a routing table's lengths, 5% IPv6 under 2000::/3), none covering 198.18.0.0/15, and
// allows the traffic. After a warm-up every packet belongs to an established flow, which looks no set
// up: every packet offered should be forwarded whatever happens to the set.
//
// set_load_under_load: the control thread replaces the set --loads times with runtime::set_load,
// alternating two feeds (A, B: different seeds, same sizes), interleaved with --pushes pushes of the
// same rule set naming the other feed (runtime::push_text: parse the rules and the feed, compile,
// publish, wait, free the old policy), the baseline. --rules N adds N rules the traffic never meets, so
// that the push compiles a rule set of a gateway's size (default none: the feed's test and one allow). Each operation switches the set to the other feed.
// Per operation: its wall time; for a load the runtime's publish_us (change_us here: the new base's
// build, the pointer store, the wait for the worker, the old version's free), and publish_us, the wait
// from an rte_rcu_qsbr_start on the runtime's variable to the worker past a quiescent point, timed right
// after the load (a load's own pointer store is one atomic exchange; what makes it take effect is that
// wait; set_load's report cannot split it from the build); for a push its compile time and quiesce wait.
// Packets: offered = taken by the worker from the source during the operation (the replay never runs dry
// and never drops, so this is all the source could give), forwarded = transmitted to the sink, lost =
// dropped for any reason (every packet taken is either transmitted or counted under a drop reason; at the
// end, with the worker stopped, received - transmitted - dropped over the whole run is printed as
// `unaccounted`, which must be 0). A worker that stalled would lose nothing from an infinite replay but
// would forward less: mpps_during against mpps_without (the same worker with no change, same run).
//
// set_add: --adds single-address adds (198.19.x.y/32, outside the traffic) to the 1M set, each a
// runtime::set_add: its publish_us (build the small add set, publish, wait for the worker, free), median
// and p99, against the load of the whole feed (load_ms) as baseline.
#include "live.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_rcu_qsbr.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <thread>

#include "common/frames.h"
#include "common/host.h"
#include "common/json.h"
#include "common/stats.h"
#include "common/timing.h"
#include "control/runtime.h"
#include "dataplane/ports.h"

namespace portcullis::bench::live {
namespace {

namespace fs = std::filesystem;

constexpr uint32_t traffic_net = 0xC6120000;  // 198.18.0.0/15 holds the traffic and the set adds: no feed entry may touch it
constexpr uint32_t traffic_last = 0xC613FFFF;
constexpr uint32_t server = 0xC612010A;       // 198.18.1.10
// The clients, 198.18.4.0/22: not the server, whose packets to itself would be dropped as land packets.
constexpr uint32_t client_net = 0xC6120400;
const u128 reserved6 = u128(0x20010002) << 96;  // 2001:2::/48, kept out of the feeds as well

struct length_weight {
	unsigned lo, hi;
	double weight;
};

// 95% IPv4 with a BGP table's lengths (as the ipv4 case), 5% IPv6 as the ipv6 case. Network addresses
// (host bits clear), one a line. Returns {v4 lines, v6 lines}.
std::pair<size_t, size_t> write_feed(const fs::path& path, size_t entries, double share6, uint64_t seed)
{
	std::mt19937_64 rng(seed);
	const std::vector<length_weight> len4 = {{8, 8, 0.00001}, {9, 15, 0.0003}, {16, 16, 0.005}, {17, 19, 0.02},
	                                         {20, 21, 0.07}, {22, 23, 0.19}, {24, 24, 0.55}, {25, 31, 0.03},
	                                         {32, 32, 0.10}};
	const std::vector<length_weight> len6 = {{16, 31, 0.05}, {32, 32, 0.20}, {33, 47, 0.15}, {48, 48, 0.35},
	                                         {49, 63, 0.10}, {64, 64, 0.10}, {128, 128, 0.05}};
	auto picker = [](const std::vector<length_weight>& l) {
		std::vector<double> w;
		for (const auto& x : l)
			w.push_back(x.weight);
		return std::discrete_distribution<size_t>(w.begin(), w.end());
	};
	auto pick4 = picker(len4), pick6 = picker(len6);
	auto draw = [&](const std::vector<length_weight>& l, std::discrete_distribution<size_t>& pick) {
		const length_weight& w = l[pick(rng)];
		return w.lo + unsigned(rng() % (w.hi - w.lo + 1));
	};

	const size_t n6 = size_t(double(entries) * share6), n4 = entries - n6;
	std::string out;
	out.reserve(entries * 24);
	char line[64];
	for (size_t i = 0; i < n4;) {
		const unsigned len = draw(len4, pick4);
		const uint32_t host = len >= 32 ? 0 : uint32_t(~0u) >> len;
		const uint32_t lo = uint32_t(rng()) & ~host, hi = lo | host;
		if (lo <= traffic_last && hi >= traffic_net)
			continue;
		const int n = std::snprintf(line, sizeof line, "%u.%u.%u.%u/%u\n", lo >> 24, (lo >> 16) & 255, (lo >> 8) & 255,
		                            lo & 255, len);
		out.append(line, size_t(n));
		++i;
	}
	for (size_t i = 0; i < n6;) {
		const unsigned len = draw(len6, pick6);
		const u128 rnd = (u128(rng()) << 64) | rng();
		const u128 host = len >= 128 ? 0 : ~u128(0) >> len;
		const u128 lo = ((u128(0x2) << 124) | (rnd >> 3)) & ~host, hi = lo | host;
		if (lo <= (reserved6 | ((u128(1) << 80) - 1)) && hi >= reserved6)
			continue;
		uint8_t b[16];
		for (int k = 0; k < 16; ++k)
			b[k] = uint8_t(lo >> (120 - 8 * k));
		char text[INET6_ADDRSTRLEN];
		inet_ntop(AF_INET6, b, text, sizeof text);
		const int n = std::snprintf(line, sizeof line, "%s/%u\n", text, len);
		out.append(line, size_t(n));
		++i;
	}
	std::FILE* f = std::fopen(path.c_str(), "w");
	if (!f || std::fwrite(out.data(), 1, out.size(), f) != out.size() || std::fclose(f) != 0)
		throw std::runtime_error("cannot write " + path.string());
	return {n4, n6};
}

// The feed's test, the rule the traffic meets, and `fillers` rules it never meets (sources in
// 198.19.0.0/16, as bench-swap's) so that a push has a rule set of that size to compile.
std::string rule_text(const fs::path& feed, uint32_t fillers)
{
	std::string text = "default in drop\n"
	                   "default out allow\n"
	                   "set feed = file \"" + feed.string() + "\"\n"
	                   "drop in from $feed counter feed\n"
	                   "allow in udp to 198.18.1.10 port 80 counter web\n";
	std::mt19937 rng(11);
	for (uint32_t i = 0; i < fillers; ++i)
		text += "drop in udp from 198.19." + std::to_string((i / 250) % 256) + '.' + std::to_string(i % 250) +
		        " to 198.18." + std::to_string(2 + rng() % 200) + '.' + std::to_string(1 + rng() % 250) + " port " +
		        std::to_string(1024 + rng() % 60000) + '\n';
	return text;
}

std::atomic<bool> stop_worker{false};

int worker_main(void* arg)
{
	static_cast<dataplane::worker*>(arg)->run(stop_worker);
	return 0;
}

struct packet_counts {
	uint64_t rx = 0, tx = 0, drops = 0;
};

packet_counts counts(const dataplane::worker& w, uint16_t src, uint16_t sink)
{
	const dataplane::worker_counters& c = w.counters();
	packet_counts p;
	p.rx = __atomic_load_n(&c.rx_packets[src], __ATOMIC_RELAXED);
	p.tx = __atomic_load_n(&c.tx_packets[sink], __ATOMIC_RELAXED);
	for (const uint64_t& d : c.drops)
		p.drops += __atomic_load_n(&d, __ATOMIC_RELAXED);
	return p;
}

// One change to the set, or one push, and the packets around it.
struct op_sample {
	double ms = 0;          // the call, end to end
	double change_us = 0;   // load: the runtime's publish_us (the base's build included); push: quiesce_us
	double publish_us = 0;  // load: the RCU wait timed right after; push: quiesce_us
	double compile_ms = 0;  // push only
	uint64_t offered = 0, forwarded = 0, lost = 0;
	double mpps = 0;
};

struct op_totals {
	uint64_t offered = 0, forwarded = 0, lost = 0;
	double seconds = 0;
	std::vector<double> ms, change_us, publish_us, compile_ms, lost_each;
	void add(const op_sample& s)
	{
		offered += s.offered, forwarded += s.forwarded, lost += s.lost;
		seconds += s.ms / 1e3;
		ms.push_back(s.ms);
		change_us.push_back(s.change_us);
		publish_us.push_back(s.publish_us);
		compile_ms.push_back(s.compile_ms);
		lost_each.push_back(double(s.lost));
	}
	double mpps() const { return seconds > 0 ? double(offered) / seconds / 1e6 : 0; }
};

double us_since(clock_type::time_point t0) { return seconds_since(t0) * 1e6; }

// From now until every online worker has passed a quiescent point: what a published pointer takes to be
// seen by all of them.
double quiesce_us(rte_rcu_qsbr* v)
{
	const auto t0 = clock_type::now();
	rte_rcu_qsbr_check(v, rte_rcu_qsbr_start(v), true);
	return us_since(t0);
}

} // namespace

environment prepare()
{
	std::vector<std::string> frames;
	for (uint32_t i = 0; i < 4096; ++i)
		frames.push_back(udp4_frame(client_net + (i % 1024), server, uint16_t(10000 + i), 80));
	environment env;
	env.capture = write_pcap("bench-sets", frames);
	env.vdevs = {"net_pcap0,rx_pcap=" + env.capture + ",infinite_rx=1", "net_null0,no-rx=1"};
	return env;
}

bool run(const options& o, environment& env)
{
	const unsigned worker_lcore = rte_get_next_lcore(rte_get_main_lcore(), 1, 0);
	const int src = dataplane::resolve_port("net_pcap0"), sink = dataplane::resolve_port("net_null0");
	if (worker_lcore >= RTE_MAX_LCORE || src < 0 || sink < 0) {
		std::fprintf(stderr, "bench-sets: the live cases need two lcores and the net_pcap0/net_null0 vdevs\n");
		unlink(env.capture.c_str());
		return false;
	}
	rte_mempool* pool = nullptr;
	std::vector<dataplane::port_state> ports;
	dataplane::port_setup setup;
	setup.mbufs = 16383;  // infinite_rx keeps the whole capture in mbufs, plus what is in flight
	const std::string err = dataplane::start_ports({uint16_t(src), uint16_t(sink)}, setup, pool, ports);
	unlink(env.capture.c_str());  // net_pcap has read it into memory
	if (!err.empty()) {
		std::fprintf(stderr, "bench-sets: %s\n", err.c_str());
		return false;
	}

	char dir_template[] = "/tmp/bench-sets-feeds-XXXXXX";
	if (!mkdtemp(dir_template)) {
		std::fprintf(stderr, "bench-sets: cannot make a temporary directory\n");
		return false;
	}
	const fs::path dir = dir_template;
	struct remove_dir {
		fs::path p;
		~remove_dir()
		{
			std::error_code ec;
			fs::remove_all(p, ec);
		}
	} cleanup{dir};
	const fs::path feeds[2] = {dir / "feed-a.txt", dir / "feed-b.txt"};
	auto t0 = clock_type::now();
	std::pair<size_t, size_t> sizes;
	try {
		sizes = write_feed(feeds[0], o.feed_entries, o.feed6_share, o.seed * 1000 + 1);
		write_feed(feeds[1], o.feed_entries, o.feed6_share, o.seed * 1000 + 2);
	} catch (const std::exception& e) {
		std::fprintf(stderr, "bench-sets: %s\n", e.what());
		return false;
	}
	std::fprintf(stderr, "bench-sets: two feeds of %zu entries written in %.1f s (%.1f MB each)\n", o.feed_entries,
	             seconds_since(t0), double(fs::file_size(feeds[0])) / 1e6);

	t0 = clock_type::now();
	auto parsed = rules::parse_string(rule_text(feeds[0], o.filler_rules), "bench.rules");
	if (!parsed.rules) {
		std::fprintf(stderr, "bench-sets: %s\n", rules::format(parsed.errors.front()).c_str());
		return false;
	}
	dataplane::worker_config wc;
	wc.flows.capacity = 1 << 16;
	wc.flows.tsc_hz = rte_get_tsc_hz();
	wc.queues.push_back({uint16_t(src), 0, 0, {uint16_t(sink), uint16_t(sink)}, 0});
	bool ok = true;
	{
		control::runtime rt({wc}, std::move(*parsed.rules), classify::backend::ours);
		if (!rt.error().empty()) {
			std::fprintf(stderr, "bench-sets: %s\n", rt.error().c_str());
			return false;
		}
		std::fprintf(stderr, "bench-sets: rule set with the feed parsed and compiled in %.2f s\n", seconds_since(t0));
		dataplane::worker& w = *rt.workers()[0];
		// One load before the worker runs: what the control thread's work costs on a CPU that a spinning
		// worker and its sibling's load do not share (on a 2-vCPU VM every other process then has CPU 0).
		int current = 0;  // the feed the set holds
		t0 = clock_type::now();
		if (!rt.set_load("feed", feeds[1].string()).ok) {
			std::fprintf(stderr, "bench-sets: set_load of %s failed\n", feeds[1].c_str());
			return false;
		}
		const double load_ms_idle = seconds_since(t0) * 1e3;
		current = 1;
		stop_worker = false;
		rte_eal_remote_launch(worker_main, &w, worker_lcore);

		auto rate_over = [&](double seconds) {
			const packet_counts a = counts(w, uint16_t(src), uint16_t(sink));
			const auto s0 = clock_type::now();
			std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
			return double(counts(w, uint16_t(src), uint16_t(sink)).rx - a.rx) / seconds_since(s0) / 1e6;
		};
		rate_over(0.5);  // warm up: the 4096 flows are established, caches filled
		const double mpps_without = rate_over(o.window_s);

		// Runs f and fills the packet side of its sample.
		auto measure = [&](auto&& f) {
			op_sample s;
			const packet_counts a = counts(w, uint16_t(src), uint16_t(sink));
			const auto s0 = clock_type::now();
			f(s);
			s.ms = seconds_since(s0) * 1e3;
			const packet_counts b = counts(w, uint16_t(src), uint16_t(sink));
			s.offered = b.rx - a.rx;
			s.forwarded = b.tx - a.tx;
			s.lost = b.drops - a.drops;
			s.mpps = s.ms > 0 ? double(s.offered) / s.ms / 1e3 : 0;
			return s;
		};

		// set_add alone still loads once: the baseline it is compared with.
		const uint32_t n_loads = o.run_load ? o.loads : 1, n_pushes = o.run_load ? o.pushes : 0;
		op_totals loads, pushes;
		size_t ranges = 0;
		for (uint32_t i = 0; ok && i < std::max(n_loads, n_pushes); ++i) {
			if (i < n_loads) {
				current ^= 1;
				const op_sample s = measure([&](op_sample& m) {
					const auto r = rt.set_load("feed", feeds[current].string());
					if (!r.ok) {
						std::fprintf(stderr, "bench-sets: set_load: %s\n", r.error.c_str());
						ok = false;
					}
					m.change_us = r.publish_us;
				});
				op_sample t = s;
				t.publish_us = quiesce_us(rt.rcu());
				loads.add(t);
			}
			if (ok && i < n_pushes) {
				current ^= 1;
				const std::string text = rule_text(feeds[current], o.filler_rules);
				const op_sample s = measure([&](op_sample& m) {
					const auto r = rt.push_text(text, "bench.rules");
					if (!r.ok) {
						std::fprintf(stderr, "bench-sets: push: %s\n",
						             r.errors.empty() ? r.error.c_str() : rules::format(r.errors.front()).c_str());
						ok = false;
					}
					m.compile_ms = r.compile_ms;
					m.change_us = m.publish_us = r.quiesce_us;
				});
				pushes.add(s);
			}
			rt.housekeeping(rte_rdtsc());
		}
		{
			const auto lock = rt.reader_lock();
			ranges = rt.policy().sets[0]->base_ranges();
		}

		op_totals adds;
		if (ok && o.run_add) {
			for (uint32_t i = 0; ok && i < o.adds; ++i) {
				const uint32_t a = 0xC6130000 + i;  // 198.19.x.y: in 198.18.0.0/15, sent no traffic
				adds.add(measure([&](op_sample& m) {
					const auto r = rt.set_add("feed", false, a, a, 0);
					if (!r.ok) {
						std::fprintf(stderr, "bench-sets: set_add: %s\n", r.error.c_str());
						ok = false;
					}
					m.publish_us = m.change_us = r.publish_us;
				}));
			}
		}

		stop_worker = true;
		rte_eal_wait_lcore(worker_lcore);
		const packet_counts end = counts(w, uint16_t(src), uint16_t(sink));
		const int64_t unaccounted = int64_t(end.rx) - int64_t(end.tx) - int64_t(end.drops);

		const double load_ms = median(loads.ms), push_ms = median(pushes.ms);
		if (ok && o.run_load) {
			std::vector<double> parse_build_ms, parse_ms;
			for (size_t i = 0; i < loads.ms.size(); ++i) {
				parse_build_ms.push_back(loads.ms[i] - loads.publish_us[i] / 1e3);
				parse_ms.push_back(loads.ms[i] - loads.change_us[i] / 1e3);
			}
			json_line()
			    .text("bench", "sets")
			    .text("case", "set_load_under_load")
			    .integer("entries", o.feed_entries)
			    .integer("entries4", sizes.first)
			    .integer("entries6", sizes.second)
			    .integer("ranges", ranges)
			    .integer("rules", 2 + o.filler_rules)
			    .integer("loads", loads.ms.size())
			    .fixed("load_ms", load_ms, 1)
			    .fixed("load_ms_idle_worker", load_ms_idle, 1)
			    .fixed("parse_build_ms", median(parse_build_ms), 1)
			    .fixed("parse_ms", median(parse_ms), 1)
			    .fixed("change_us", median(loads.change_us), 0)
			    .fixed("publish_us", median(loads.publish_us), 1)
			    .fixed("publish_max_us", min_max(loads.publish_us).max, 1)
			    .integer("offered", loads.offered)
			    .integer("forwarded", loads.forwarded)
			    .integer("lost", loads.lost)
			    .fixed("mpps_during", loads.mpps(), 3)
			    .text("baseline", "push")
			    .integer("pushes", pushes.ms.size())
			    .fixed("push_ms", push_ms, 1)
			    .fixed("push_compile_ms", median(pushes.compile_ms), 1)
			    .fixed("push_quiesce_us", median(pushes.publish_us), 1)
			    .integer("push_offered", pushes.offered)
			    .integer("push_forwarded", pushes.forwarded)
			    .integer("push_lost", pushes.lost)
			    .fixed("push_mpps_during", pushes.mpps(), 3)
			    .fixed("ratio", load_ms > 0 ? push_ms / load_ms : 0.0, 2)
			    .fixed("mpps_without", mpps_without, 3)
			    .integer("unaccounted", unaccounted)
			    .fixed_array("load_ms_each", loads.ms, 1)
			    .fixed_array("publish_us_each", loads.publish_us, 1)
			    .fixed_array("lost_each", loads.lost_each, 0)
			    .fixed_array("push_ms_each", pushes.ms, 1)
			    .fixed_array("push_lost_each", pushes.lost_each, 0)
			    .text("machine", machine())
			    .print();
		}
		if (ok && o.run_add) {
			const double us = median(adds.publish_us);
			json_line()
			    .text("bench", "sets")
			    .text("case", "set_add")
			    .integer("set_entries", o.feed_entries)
			    .integer("adds", adds.ms.size())
			    .fixed("publish_us", us, 1)
			    .fixed("publish_p99_us", percentile(adds.publish_us, 0.99), 1)
			    .fixed("call_us", median(adds.ms) * 1e3, 1)
			    .integer("offered", adds.offered)
			    .integer("forwarded", adds.forwarded)
			    .integer("lost", adds.lost)
			    .fixed("mpps_during", adds.mpps(), 3)
			    .text("baseline", "set_load")
			    .fixed("baseline_ms", load_ms, 1)
			    .fixed("ratio", us > 0 ? load_ms * 1e3 / us : 0.0, 0)
			    .fixed("mpps_without", mpps_without, 3)
			    .integer("unaccounted", unaccounted)
			    .text("machine", machine())
			    .print();
		}
		ok = ok && unaccounted == 0;
		if (unaccounted != 0)
			std::fprintf(stderr, "bench-sets: %lld packets received but neither sent nor counted as dropped\n",
			             (long long)unaccounted);
	}
	dataplane::stop_ports(ports);
	return ok;
}

} // namespace portcullis::bench::live
