// bench-sets, cases add_to_scan and per_source_limit: rules that act on what the data path sees.
//
// add_to_scan: does a scan that fills a set through `add-to` slow down the established traffic? The rules
// are docs/sets.md's example, and an allow for the traffic:
//   set scanners = dynamic size 100000
//   drop in tcp to any port { telnet, 3389, 31337 } add-to $scanners timeout 1h
//   drop in from $scanners
//   allow in udp to 198.18.1.10 port 80
// Workers, of which one at a time runs on lcore 1 and forwards a capture that net_pcap replays from
// memory (infinite_rx) into net_null:
//   - no_scan, the baseline: the plain capture, --scan-sources / --scan-share packets (1.67M by default)
//     of the 4096 established UDP flows of set_load_under_load (198.18.4.0/22 to 198.18.1.10 port 80);
//   - the scan: the scan capture, the same with every 1/share-th packet (evenly spread) a SYN from one
//     of --scan-sources distinct random addresses (each once a pass) to a trap port of a 198.18.1.x;
//   - trap_only, to split the cost: the scan capture against the same rules without the set (the trap
//     rule only drops), its own runtime.
// Both captures have the same length, so both replays read as much memory a packet (the mbufs net_pcap
// copies from are spread over hundreds of MB either way). The control thread runs the daemon's loop
// (control_loop.cc): every 20 ms housekeeping, apply_set_adds, expire_sets. Warm-ups: each worker's
// flows established; the scan's runs until every scanner is in the set (fill_ms, at most --fill-max).
// Then --rounds rounds of --window seconds windows, no_scan, scan, trap_only. Every scan SYN is dropped
// by the trap rule, which queues an add each time: the trap rule comes first, so a scanner already in
// the set is queued again (its timeout refreshed).
//
// The headline is the established packets forwarded a second with the scan over without (ratio). On a
// shared machine the OS also takes the worker's CPU now and then, and more so while the control thread
// is busy applying adds; so each window also reads the worker thread's CPU time
// (/proc/self/task/<tid>/schedstat), and cpu_ratio compares established packets per second of worker
// CPU time: the data path's own cost. From the same CPU times: cycles per packet (TSC rate times CPU
// time, over packets received) and what one scan SYN costs (scan_syn_ns: the scan window's CPU time
// less what its established packets cost in the no_scan window, over its SYNs). Also reported: the adds
// the worker queued, the control thread applied and the worker's ring lost a second, the time
// apply_set_adds takes (wall and CPU), the set's final size and evictions, and whether every scanner
// is in it.
//
// per_source_limit: one source floods SYNs at 198.18.1.10 port 80 (hping3 -S --flood: one address,
// the source port counting up, --flood-pps), another opens --innocent-cps connections a second to the
// same port, against
//   allow in tcp to 198.18.1.10 port 80 limit per-source 100/s burst 100
//   drop in tcp to 198.18.1.10 port 80
// and, the baseline, the same with a plain `limit 100/s burst 100` (one bucket for every source). The
// control thread generates both sources' SYNs, paced by the TSC, into an in-memory port (net_ring) that
// one worker polls and transmits back to on its other ring, where the control thread counts what passed
// by source. Each variant has its own runtime (fresh buckets, empty flow table), a warm-up that spends
// the initial burst, then a measured window. A flooder SYN counts as a new flow passed when its source
// port passes for the first time: after its port wraps (65,536 SYNs) the flooder repeats the 5-tuples
// of flows it opened, which then pass as retransmitted SYNs of a known flow and are not new flows.
#include "dynamic.h"

#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <thread>
#include <tuple>
#include <unordered_set>

#include "common/frames.h"
#include "common/host.h"
#include "common/json.h"
#include "common/stats.h"
#include "common/timing.h"
#include "control/runtime.h"
#include "dataplane/ports.h"

namespace portcullis::bench::dynamic {
namespace {

constexpr uint32_t client_net = 0xC6120400;  // 198.18.4.0/22: the established flows' clients, as live.cc's
constexpr uint32_t server = 0xC612010A;      // 198.18.1.10
constexpr uint32_t established_flows = 4096;
constexpr uint16_t trap_ports[3] = {23, 3389, 31337};
constexpr uint32_t scan_set_size = 100'000;
constexpr uint32_t limit_rate = 100, limit_burst = 100;
constexpr uint32_t flooder = 0xCB007142;   // 203.0.113.66
constexpr uint32_t innocent0 = 0xC6336407;  // 198.51.100.7 (the next address if it shares the flooder's meter)

// A 60-byte frame needs the headroom and 64 bytes: 320 bytes of mbuf, 384 with the mempool's object
// header rounded to a cache line, against 2.3 KB for the default size. The replayed captures hold a
// million and a half of them each.
constexpr uint16_t small_data_room = RTE_PKTMBUF_HEADROOM + 64;
constexpr double mbuf_bytes = 384;

std::atomic<bool> stop_worker{false};
std::atomic<int> worker_tid{0};

int worker_main(void* arg)
{
	worker_tid = rte_sys_gettid();
	static_cast<dataplane::worker*>(arg)->run(stop_worker);
	return 0;
}

// The worker thread's time on a CPU (ns; the first field of /proc/self/task/<tid>/schedstat; 0 when
// the kernel has none): on a shared machine the OS takes the worker's CPU from it now and then, and
// busy_tsc, a TSC difference, counts those moments as busy.
uint64_t thread_run_ns(int tid)
{
	unsigned long long run = 0;
	const std::string path = "/proc/self/task/" + std::to_string(tid) + "/schedstat";
	if (std::FILE* f = std::fopen(path.c_str(), "r")) {
		if (std::fscanf(f, "%llu", &run) != 1)
			run = 0;
		std::fclose(f);
	}
	return run;
}

uint32_t load32be(const uint8_t* p) { return uint32_t(p[0]) << 24 | uint32_t(p[1]) << 16 | uint32_t(p[2]) << 8 | p[3]; }
uint16_t load16be(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }

std::string established_frame(uint32_t i)
{
	i %= established_flows;
	return udp4_frame(client_net + (i % 1024), server, uint16_t(10000 + i), 80);
}

// One RX and one TX queue, started. Empty on success.
std::string start_port(uint16_t port, rte_mempool* pool)
{
	rte_eth_conf conf{};
	int rc = rte_eth_dev_configure(port, 1, 1, &conf);
	uint16_t rxd = 1024, txd = 1024;
	if (rc == 0)
		rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &rxd, &txd);
	if (rc == 0)
		rc = rte_eth_rx_queue_setup(port, 0, rxd, SOCKET_ID_ANY, nullptr, pool);
	if (rc == 0)
		rc = rte_eth_tx_queue_setup(port, 0, txd, SOCKET_ID_ANY, nullptr);
	if (rc == 0)
		rc = rte_eth_dev_start(port);
	return rc == 0 ? std::string() : "port " + std::to_string(port) + ": " + rte_strerror(-rc);
}

void free_all(rte_ring* r)
{
	void* obj;
	while (r && rte_ring_dequeue(r, &obj) == 0)
		rte_pktmbuf_free(static_cast<rte_mbuf*>(obj));
}

// ---- add_to_scan ----

struct worker_snapshot {
	uint64_t rx = 0, tx = 0, drops = 0, rule_drops = 0, busy = 0, driver = 0, adds = 0, adds_lost = 0;
	worker_snapshot operator-(const worker_snapshot& a) const
	{
		return {rx - a.rx,     tx - a.tx,         drops - a.drops, rule_drops - a.rule_drops,
		        busy - a.busy, driver - a.driver, adds - a.adds,   adds_lost - a.adds_lost};
	}
	worker_snapshot& operator+=(const worker_snapshot& d)
	{
		rx += d.rx, tx += d.tx, drops += d.drops, rule_drops += d.rule_drops;
		busy += d.busy, driver += d.driver, adds += d.adds, adds_lost += d.adds_lost;
		return *this;
	}
};

worker_snapshot snapshot(const dataplane::worker& w, uint16_t src, uint16_t sink)
{
	const dataplane::worker_counters& c = w.counters();
	auto get = [](const uint64_t& v) { return __atomic_load_n(&v, __ATOMIC_RELAXED); };
	worker_snapshot s;
	s.rx = get(c.rx_packets[src]);
	s.tx = get(c.tx_packets[sink]);
	// Each counter read once, so that drops - rule_drops counts only the other reasons even while the
	// worker runs.
	for (size_t k = 0; k < dataplane::drop_reason_count; ++k) {
		const uint64_t d = get(c.drops[k]);
		s.drops += d;
		if (k == size_t(dataplane::drop_reason::rule_drop))
			s.rule_drops = d;
	}
	s.busy = get(c.busy_tsc);
	s.driver = get(c.driver_rx_tsc) + get(c.driver_tx_tsc);
	s.adds = get(c.set_adds);
	s.adds_lost = get(c.set_adds_lost);
	return s;
}

struct window_sample {
	double seconds = 0;
	worker_snapshot d;
	uint64_t applied = 0;  // apply_set_adds' returns during the window
	uint64_t run_ns = 0;   // the worker thread's CPU time
};

struct side_totals {
	double seconds = 0;
	worker_snapshot d;
	uint64_t applied = 0;
	uint64_t run_ns = 0;
	std::vector<double> mpps_each;  // established packets forwarded, per window
	void add(const window_sample& s)
	{
		seconds += s.seconds;
		d += s.d;
		applied += s.applied;
		run_ns += s.run_ns;
		mpps_each.push_back(double(s.d.tx) / s.seconds / 1e6);
	}
	double per_s(uint64_t n) const { return seconds > 0 ? double(n) / seconds : 0; }
	double mpps() const { return per_s(d.tx) / 1e6; }
	// The worker thread's share of the wall time on a CPU, and established Mpps per second of it.
	double cpu_share() const { return seconds > 0 ? double(run_ns) / 1e9 / seconds : 0; }
	double mpps_per_cpu() const { return run_ns ? double(d.tx) / (double(run_ns) / 1e9) / 1e6 : 0; }
	// TSC cycles of the worker's CPU time per packet received (scan SYNs included).
	double cycles_per_packet() const { return d.rx ? double(run_ns) * double(rte_get_tsc_hz()) / 1e9 / double(d.rx) : 0; }
	// Of the busy time, the part inside the drivers' rx_burst and tx_burst (net_pcap's copy, net_null).
	double driver_share() const { return d.busy ? double(d.driver) / double(d.busy) : 0; }
	// What a scan SYN costs the worker (ns of CPU time), when the established packets beside it cost
	// what they cost in `plain`.
	double syn_ns(const side_totals& plain) const
	{
		const uint64_t syns = d.rule_drops;
		if (!syns || !plain.d.rx)
			return 0;
		const double ns_per_plain = double(plain.run_ns) / double(plain.d.rx);
		return (double(run_ns) - double(d.rx - syns) * ns_per_plain) / double(syns);
	}
};

// The scan's rules, and (add_to false) the same trap without the set: the SYNs' own cost.
std::string scan_rules(bool add_to)
{
	if (!add_to)
		return "default in drop\n"
		       "default out allow\n"
		       "drop in tcp to any port { telnet, 3389, 31337 } counter trap\n"
		       "allow in udp to 198.18.1.10 port 80 counter web\n";
	return "default in drop\n"
	       "default out allow\n"
	       "set scanners = dynamic size " + std::to_string(scan_set_size) + "\n"
	       "drop in tcp to any port { telnet, 3389, 31337 } add-to $scanners timeout 1h counter trap\n"
	       "drop in from $scanners counter scanners\n"
	       "allow in udp to 198.18.1.10 port 80 counter web\n";
}

double thread_cpu_ms()
{
	timespec ts{};
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return double(ts.tv_sec) * 1e3 + double(ts.tv_nsec) / 1e6;
}

// ---- per_source_limit ----

struct limit_result {
	double seconds = 0;
	uint64_t flood_syns = 0, flood_new_passed = 0, flood_forwarded = 0;
	uint64_t innocent_syns = 0, innocent_passed = 0;
	uint64_t over_limit = 0, flows_opened = 0;
	uint64_t ring_full = 0;  // times the worker's RX ring had no room (the SYN waited for the next round)
	bool ok = false;
	double flood_pps() const { return seconds > 0 ? double(flood_syns) / seconds : 0; }
	double flood_passed_per_s() const { return seconds > 0 ? double(flood_new_passed) / seconds : 0; }
	double innocent_share() const { return innocent_syns ? double(innocent_passed) / double(innocent_syns) : 0; }
};

std::string limit_rules(bool per_source)
{
	const std::string limit = std::string("limit ") + (per_source ? "per-source " : "") + std::to_string(limit_rate) +
	                          "/s burst " + std::to_string(limit_burst);
	return "default in drop\n"
	       "default out allow\n"
	       "allow in tcp to 198.18.1.10 port 80 " + limit + " counter web\n"
	       "drop in tcp to 198.18.1.10 port 80 counter web_excess\n";
}

// The meter a per-source limit gives an IPv4 source: worker.cc's hash, (source + 1) * 2^64/phi, and
// rule_limiter's slot, its top 16 bits. Only to choose two sources that do not share one.
uint32_t meter_slot(uint32_t a) { return uint32_t(((uint64_t(a) + 1) * 0x9E3779B97F4A7C15ull) >> 48); }

struct limit_port {
	uint16_t port;
	rte_ring* rx;  // the control thread enqueues, the worker receives
	rte_ring* tx;  // the worker transmits, the control thread counts
	rte_mempool* pool;
};

limit_result run_limit_variant(bool per_source, const options& o, const limit_port& lp, uint32_t innocent,
                               unsigned lcore)
{
	limit_result r;
	auto parsed = rules::parse_string(limit_rules(per_source), "limit.rules");
	if (!parsed.rules) {
		std::fprintf(stderr, "bench-sets: %s\n", rules::format(parsed.errors.front()).c_str());
		return r;
	}
	dataplane::worker_config wc;
	wc.flows.capacity = 1 << 16;
	wc.flows.tsc_hz = rte_get_tsc_hz();
	wc.queues.push_back({lp.port, 0, 0, {lp.port, lp.port}, 0});
	control::runtime rt({wc}, std::move(*parsed.rules), classify::backend::ours);
	if (!rt.error().empty()) {
		std::fprintf(stderr, "bench-sets: %s\n", rt.error().c_str());
		return r;
	}
	dataplane::worker& w = *rt.workers()[0];
	stop_worker = false;
	rte_eal_remote_launch(worker_main, &w, lcore);

	const std::string flood_frame = tcp4_frame(flooder, server, 0, 80, 0x02, 0, 0);
	const std::string innocent_frame = tcp4_frame(innocent, server, 0, 80, 0x02, 0, 0);
	constexpr size_t sport_at = 14 + 20, seq_at = 14 + 20 + 4;
	// A SYN of `frame` with source port sport and sequence number seq (the SYN's index: the window it
	// was sent in, read back where it comes out).
	auto make = [&](rte_mbuf* m, const std::string& frame, uint16_t sport, uint32_t seq) {
		uint8_t* p = rte_pktmbuf_mtod(m, uint8_t*);
		std::memcpy(p, frame.data(), frame.size());
		store16be(p + sport_at, sport);
		store32be(p + seq_at, seq);
		m->data_len = uint16_t(frame.size());
		m->pkt_len = uint32_t(frame.size());
	};

	const uint64_t hz = rte_get_tsc_hz();
	const uint64_t t0 = rte_rdtsc();
	const uint64_t t_window = t0 + uint64_t(o.limit_warmup_s * double(hz));
	const uint64_t t_end = t_window + uint64_t(o.limit_window_s * double(hz));
	uint64_t flood_sent = 0, innocent_sent = 0;
	// Indexes of the first SYN of each source sent in the window, and of the first after it.
	uint64_t flood_first = UINT64_MAX, innocent_first = UINT64_MAX;
	uint64_t over0 = 0, opened0 = 0;
	std::vector<uint8_t> flood_passed_port(65536, 0);
	auto in_window = [](uint64_t seq, uint64_t first) { return first != UINT64_MAX && seq >= first; };
	auto drain = [&] {
		rte_mbuf* out[64];
		const unsigned n = rte_ring_dequeue_burst(lp.tx, reinterpret_cast<void**>(out), 64, nullptr);
		for (unsigned i = 0; i < n; ++i) {
			const uint8_t* p = rte_pktmbuf_mtod(out[i], const uint8_t*);
			const uint32_t src = load32be(p + 14 + 12);
			const uint16_t sport = load16be(p + sport_at);
			const uint32_t seq = load32be(p + seq_at);
			if (src == innocent && in_window(seq, innocent_first))
				++r.innocent_passed;
			if (src == flooder && in_window(seq, flood_first)) {
				++r.flood_forwarded;
				r.flood_new_passed += !flood_passed_port[sport];
			}
			if (src == flooder)
				flood_passed_port[sport] = 1;
			rte_pktmbuf_free(out[i]);
		}
	};
	for (;;) {
		const uint64_t now = rte_rdtsc();
		if (now >= t_end)
			break;
		if (flood_first == UINT64_MAX && now >= t_window) {
			flood_first = flood_sent, innocent_first = innocent_sent;
			over0 = rt.policy().total(0).over_limit;
			opened0 = w.counters().flows_opened;
		}
		const double elapsed = double(now - t0) / double(hz);
		// Both sources' SYNs in the order of their send times (the flooder's j-th at j / flood_pps, the
		// innocent's i-th at i / innocent_cps), all those due by now. When this thread has been
		// descheduled (a shared machine), its backlog goes out in that order, as the two hosts would have
		// sent it: sending the innocent's first would hand it the tokens the flooder's backlog would
		// have taken. A SYN that finds the ring full waits for the next round, and every later one too.
		for (;;) {
			const double t_flood = double(flood_sent) / o.flood_pps, t_innocent = double(innocent_sent) / o.innocent_cps;
			if (t_innocent <= t_flood && t_innocent <= elapsed) {
				rte_mbuf* m = rte_pktmbuf_alloc(lp.pool);
				if (!m)
					break;
				make(m, innocent_frame, uint16_t(20000 + innocent_sent), uint32_t(innocent_sent));
				if (rte_ring_enqueue(lp.rx, m) != 0) {
					rte_pktmbuf_free(m);
					++r.ring_full;
					break;
				}
				++innocent_sent;
				continue;
			}
			if (t_flood > elapsed)
				break;
			const double until = std::min(elapsed, t_innocent);
			const unsigned n = unsigned(std::min(32.0, std::floor(until * o.flood_pps) - double(flood_sent) + 1));
			rte_mbuf* b[32];
			if (n == 0 || rte_pktmbuf_alloc_bulk(lp.pool, b, n) != 0)
				break;
			for (unsigned i = 0; i < n; ++i)
				make(b[i], flood_frame, uint16_t(1024 + (flood_sent + i) % 64512), uint32_t(flood_sent + i));
			const unsigned sent = rte_ring_enqueue_burst(lp.rx, reinterpret_cast<void**>(b), n, nullptr);
			for (unsigned i = sent; i < n; ++i)
				rte_pktmbuf_free(b[i]);
			flood_sent += sent;
			if (sent < n) {
				++r.ring_full;
				break;
			}
		}
		drain();
	}
	r.seconds = o.limit_window_s;
	// What is in flight comes out within a poll round or two.
	for (const auto t = clock_type::now(); seconds_since(t) < 0.02;)
		drain();
	r.flood_syns = flood_sent - flood_first;
	r.innocent_syns = innocent_sent - innocent_first;
	r.over_limit = rt.policy().total(0).over_limit - over0;
	r.flows_opened = w.counters().flows_opened - opened0;
	stop_worker = true;
	rte_eal_wait_lcore(lcore);
	free_all(lp.rx);
	free_all(lp.tx);
	r.ok = true;
	return r;
}

} // namespace

void environment::remove_captures()
{
	for (std::string* p : {&scan_capture, &plain_capture})
		if (!p->empty()) {
			unlink(p->c_str());
			p->clear();
		}
}

environment prepare(const options& o)
{
	environment env;
	if (!o.run_scan)
		return env;
	std::mt19937_64 rng(o.seed * 7919 + 3);
	// Scanners from all over the unicast space, none in the traffic's 198.18.0.0/15: random, not
	// consecutive, so that the set holds as many ranges as addresses.
	std::unordered_set<uint32_t> seen;
	env.scanners.reserve(o.scan_sources);
	while (env.scanners.size() < o.scan_sources) {
		const uint32_t a = 0x01000000u + uint32_t(rng() % (0xE0000000u - 0x01000000u));
		if ((a >> 24) == 127 || (a >> 17) == (0xC6120000u >> 17) || !seen.insert(a).second)
			continue;
		env.scanners.push_back(a);
	}
	const uint64_t total = uint64_t(std::llround(double(o.scan_sources) / o.scan_share));
	std::vector<std::string> scan, plain;
	scan.reserve(total), plain.reserve(total);
	uint32_t s = 0, e_scan = 0, e_plain = 0;
	for (uint64_t k = 0; k < total; ++k) {
		// Exactly scan_sources SYNs, evenly spread.
		if ((k + 1) * o.scan_sources / total != k * o.scan_sources / total) {
			scan.push_back(tcp4_frame(env.scanners[s], (server & 0xFFFFFF00u) | (1 + s % 250),
			                          uint16_t(32768 + rng() % 28000), trap_ports[s % 3], 0x02, uint32_t(rng()), 0));
			++s;
		} else {
			scan.push_back(established_frame(e_scan++));
		}
		plain.push_back(established_frame(e_plain++));
	}
	env.capture_packets = total;
	env.scan_capture = write_pcap("bench-sets-scan", scan);
	env.plain_capture = write_pcap("bench-sets-plain", plain);
	env.vdevs = {"net_pcap1,rx_pcap=" + env.plain_capture + ",infinite_rx=1",
	             "net_pcap2,rx_pcap=" + env.scan_capture + ",infinite_rx=1", "net_null1,no-rx=1"};
	// Two pools of a capture's packets (plus what is in flight), and net_pcap's two rings of pointers.
	env.memory_mb = unsigned((2 * double(total + 8192) * mbuf_bytes + 2 * 16.0 * double(total)) / 1e6) + 64;
	return env;
}

bool run_add_to_scan(const options& o, environment& env)
{
	const unsigned lcore = rte_get_next_lcore(rte_get_main_lcore(), 1, 0);
	const int plain_port = dataplane::resolve_port("net_pcap1"), scan_port = dataplane::resolve_port("net_pcap2"),
	          sink = dataplane::resolve_port("net_null1");
	if (lcore >= RTE_MAX_LCORE || plain_port < 0 || scan_port < 0 || sink < 0) {
		std::fprintf(stderr, "bench-sets: add_to_scan needs two lcores and the net_pcap1/2, net_null1 vdevs\n");
		env.remove_captures();
		return false;
	}
	auto t0 = clock_type::now();
	const uint32_t mbufs = uint32_t(env.capture_packets + 8191);
	rte_mempool* pools[2] = {
	    rte_pktmbuf_pool_create("bench_sets_plain", mbufs, 256, 0, small_data_room, SOCKET_ID_ANY),
	    rte_pktmbuf_pool_create("bench_sets_scan", mbufs, 256, 0, small_data_room, SOCKET_ID_ANY)};
	std::string err;
	if (!pools[0] || !pools[1])
		err = std::string("cannot create the replay's mbuf pools: ") + rte_strerror(rte_errno);
	if (err.empty())
		err = start_port(uint16_t(plain_port), pools[0]);
	if (err.empty())
		err = start_port(uint16_t(scan_port), pools[1]);
	if (err.empty())
		err = start_port(uint16_t(sink), pools[0]);
	env.remove_captures();  // net_pcap has read them into its mbufs
	if (!err.empty()) {
		std::fprintf(stderr, "bench-sets: add_to_scan: %s\n", err.c_str());
		return false;
	}
	std::fprintf(stderr, "bench-sets: add_to_scan: two captures of %zu packets loaded in %.1f s\n",
	             env.capture_packets, seconds_since(t0));

	// Runtime A, the scan's rules: worker 0 replays the plain capture, worker 1 the scan. Runtime B, the
	// trap without add-to: its one worker replays the scan. One worker at a time runs on lcore 1; the
	// others are offline for their RCU variable, so apply_set_adds does not wait for them.
	auto make = [&](bool add_to, std::vector<uint16_t> sources) -> std::unique_ptr<control::runtime> {
		auto parsed = rules::parse_string(scan_rules(add_to), "scan.rules");
		if (!parsed.rules) {
			std::fprintf(stderr, "bench-sets: %s\n", rules::format(parsed.errors.front()).c_str());
			return nullptr;
		}
		std::vector<dataplane::worker_config> wcs(sources.size());
		for (size_t i = 0; i < sources.size(); ++i) {
			wcs[i].flows.capacity = 1 << 16;
			wcs[i].flows.tsc_hz = rte_get_tsc_hz();
			wcs[i].queues.push_back({sources[i], 0, 0, {uint16_t(sink), uint16_t(sink)}, 0});
		}
		auto rt = std::make_unique<control::runtime>(wcs, std::move(*parsed.rules), classify::backend::ours);
		if (!rt->error().empty()) {
			std::fprintf(stderr, "bench-sets: %s\n", rt->error().c_str());
			return nullptr;
		}
		return rt;
	};
	bool ok = true;
	{
		const auto rt = make(true, {uint16_t(plain_port), uint16_t(scan_port)});
		const auto trap_rt = make(false, {uint16_t(scan_port)});
		if (!rt || !trap_rt)
			return false;
		const sets::live_set& set = *rt->policy().sets[size_t(rt->policy().find_set("scanners"))];

		std::vector<double> apply_ms, apply_cpu_ms;  // runtime A's, while its scan worker runs
		clock_type::time_point fill_start{};
		bool filling = false;
		double fill_ms = std::nan("");
		// The daemon's control loop (control_loop.cc): a 20 ms pause, housekeeping, the set adds, expiry.
		auto tick = [&](control::runtime& r, bool scanning, uint64_t& applied) {
			std::this_thread::sleep_for(std::chrono::milliseconds(control::control_interval_ms));
			r.housekeeping(rte_rdtsc());
			const auto a0 = clock_type::now();
			const double c0 = thread_cpu_ms();
			applied += r.apply_set_adds();
			if (scanning) {
				apply_ms.push_back(seconds_since(a0) * 1e3);
				apply_cpu_ms.push_back(thread_cpu_ms() - c0);
			}
			r.expire_sets();
			if (filling && set.adds().size() >= o.scan_sources) {
				fill_ms = seconds_since(fill_start) * 1e3;
				filling = false;
			}
		};
		// Runs worker wi of r for settle_s unmeasured, then for seconds measured; with fill, only until
		// every scanner is in the set (fill_ms: from the worker's start).
		auto window = [&](control::runtime& r, size_t wi, uint16_t src, double settle_s, double seconds,
		                  bool fill = false) {
			window_sample s;
			dataplane::worker& w = *r.workers()[wi];
			const bool scanning = &r == rt.get() && wi == 1;
			uint64_t applied = 0;
			stop_worker = false;
			worker_tid = 0;
			filling = fill;
			fill_start = clock_type::now();
			rte_eal_remote_launch(worker_main, &w, lcore);
			while (worker_tid == 0)
				std::this_thread::yield();
			for (const auto t = clock_type::now(); seconds_since(t) < settle_s;)
				tick(r, scanning, applied);
			const worker_snapshot a = snapshot(w, src, uint16_t(sink));
			const uint64_t run0 = thread_run_ns(worker_tid);
			const uint64_t applied0 = applied;
			const auto t = clock_type::now();
			while (seconds_since(t) < seconds && !(fill && !filling))
				tick(r, scanning, applied);
			filling = false;
			s.d = snapshot(w, src, uint16_t(sink)) - a;
			s.run_ns = thread_run_ns(worker_tid) - run0;
			s.seconds = seconds_since(t);
			s.applied = applied - applied0;
			stop_worker = true;
			rte_eal_wait_lcore(lcore);
			return s;
		};

		// Warm-ups: the 4096 flows established in each worker's table, caches warm; the scan's first
		// passes fill the set.
		window(*rt, 0, uint16_t(plain_port), 0, 0.3);
		const window_sample fill = window(*rt, 1, uint16_t(scan_port), 0, o.fill_max_s, true);
		const size_t fill_entries = set.adds().size();
		window(*trap_rt, 0, uint16_t(scan_port), 0, 0.3);
		side_totals plain, scan, trap;
		for (uint32_t r = 0; r < o.rounds; ++r) {
			plain.add(window(*rt, 0, uint16_t(plain_port), 0.05, o.window_s));
			scan.add(window(*rt, 1, uint16_t(scan_port), 0.05, o.window_s));
			trap.add(window(*trap_rt, 0, uint16_t(scan_port), 0.05, o.window_s));
		}
		rt->apply_set_adds();  // what the last window queued, before the set is read

		uint64_t unaccounted = 0;
		for (const auto& [r, wi, src] : {std::tuple{rt.get(), 0, plain_port}, std::tuple{rt.get(), 1, scan_port},
		                                 std::tuple{trap_rt.get(), 0, scan_port}}) {
			const worker_snapshot e = snapshot(*r->workers()[size_t(wi)], uint16_t(src), uint16_t(sink));
			unaccounted += e.rx - e.tx - e.drops;
		}
		uint64_t other_drops = 0;
		for (const side_totals* t : {&plain, &scan, &trap})
			other_drops += t->d.drops - t->d.rule_drops;
		size_t in_set = 0;
		for (const uint32_t a : env.scanners)
			in_set += set.contains(a);
		const double base = plain.mpps(), with = scan.mpps();
		auto over = [](double a, double b) { return b > 0 ? a / b : 0.0; };
		// Each round's scan (and trap-only) window over the no-scan window just before it: the host's
		// speed drifts by more than the scan costs over a few seconds, and a pair of adjacent windows
		// shares most of it, where totals over all rounds do not.
		std::vector<double> paired, trap_paired;
		for (size_t r = 0; r < plain.mpps_each.size(); ++r) {
			paired.push_back(over(scan.mpps_each[r], plain.mpps_each[r]));
			trap_paired.push_back(over(trap.mpps_each[r], plain.mpps_each[r]));
		}
		const spread paired_spread = min_max(paired);
		json_line()
		    .text("bench", "sets")
		    .text("case", "add_to_scan")
		    .integer("scan_sources", o.scan_sources)
		    .fixed("scan_share", o.scan_share, 3)
		    .integer("capture_packets", env.capture_packets)
		    .integer("rounds", o.rounds)
		    .fixed("window_s", o.window_s, 2)
		    .fixed("mpps", with, 3)
		    .text("baseline", "no_scan")
		    .fixed("baseline_mpps", base, 3)
		    .fixed("ratio", over(with, base), 3)
		    .fixed("ratio_paired", median(paired), 3)
		    .fixed("ratio_paired_min", paired_spread.min, 3)
		    .fixed("ratio_paired_max", paired_spread.max, 3)
		    .fixed("trap_only_ratio_paired", median(trap_paired), 3)
		    .fixed("mpps_per_cpu", scan.mpps_per_cpu(), 3)
		    .fixed("baseline_mpps_per_cpu", plain.mpps_per_cpu(), 3)
		    .fixed("cpu_ratio", over(scan.mpps_per_cpu(), plain.mpps_per_cpu()), 3)
		    .fixed("trap_only_mpps", trap.mpps(), 3)
		    .fixed("trap_only_mpps_per_cpu", trap.mpps_per_cpu(), 3)
		    .fixed("trap_only_cpu_ratio", over(trap.mpps_per_cpu(), plain.mpps_per_cpu()), 3)
		    .fixed("worker_cpu_share", scan.cpu_share(), 3)
		    .fixed("baseline_worker_cpu_share", plain.cpu_share(), 3)
		    .fixed("trap_only_worker_cpu_share", trap.cpu_share(), 3)
		    .fixed("total_mpps", scan.per_s(scan.d.rx) / 1e6, 3)
		    .fixed("scan_syns_per_s", scan.per_s(scan.d.rule_drops), 0)
		    .fixed("set_adds_queued_per_s", scan.per_s(scan.d.adds), 0)
		    .fixed("set_adds_applied_per_s", scan.per_s(scan.applied), 0)
		    .integer("set_adds_lost", scan.d.adds_lost)
		    .fixed("set_adds_lost_share", over(double(scan.d.adds_lost), double(scan.d.adds + scan.d.adds_lost)), 3)
		    .integer("applies", apply_ms.size())
		    .fixed("apply_ms", median(apply_ms), 2)
		    .fixed("apply_max_ms", min_max(apply_ms).max, 2)
		    .fixed("apply_cpu_ms", median(apply_cpu_ms), 2)
		    .integer("set_entries", set.adds().size())
		    .integer("set_size", scan_set_size)
		    .integer("scanners_in_set", in_set)
		    .integer("evicted", set.counters().evicted)
		    .integer("set_versions", set.counters().versions)
		    .fixed("fill_ms", fill_ms, 0)
		    .fixed("fill_window_s", fill.seconds, 2)
		    .integer("fill_entries", fill_entries)
		    .integer("fill_adds_queued", fill.d.adds)
		    .integer("fill_adds_lost", fill.d.adds_lost)
		    .fixed("cycles_per_packet", scan.cycles_per_packet(), 1)
		    .fixed("baseline_cycles_per_packet", plain.cycles_per_packet(), 1)
		    .fixed("trap_only_cycles_per_packet", trap.cycles_per_packet(), 1)
		    .fixed("driver_share", scan.driver_share(), 3)
		    .fixed("baseline_driver_share", plain.driver_share(), 3)
		    .fixed("established_ns", plain.d.rx ? double(plain.run_ns) / double(plain.d.rx) : 0.0, 1)
		    .fixed("scan_syn_ns", scan.syn_ns(plain), 1)
		    .fixed("trap_only_syn_ns", trap.syn_ns(plain), 1)
		    .integer("other_drops", other_drops)
		    .integer("unaccounted", unaccounted)
		    .fixed_array("mpps_each", scan.mpps_each, 3)
		    .fixed_array("baseline_mpps_each", plain.mpps_each, 3)
		    .fixed_array("trap_only_mpps_each", trap.mpps_each, 3)
		    .text("machine", machine())
		    .print();
		ok = unaccounted == 0 && other_drops == 0;
		if (!ok)
			std::fprintf(stderr, "bench-sets: add_to_scan: %llu packets unaccounted, %llu dropped other than by a rule\n",
			             (unsigned long long)unaccounted, (unsigned long long)other_drops);
	}
	for (const int p : {plain_port, scan_port, sink}) {
		rte_eth_dev_stop(uint16_t(p));
		rte_eth_dev_close(uint16_t(p));
	}
	rte_mempool_free(pools[0]);
	rte_mempool_free(pools[1]);
	return ok;
}

bool run_per_source_limit(const options& o)
{
	const unsigned lcore = rte_get_next_lcore(rte_get_main_lcore(), 1, 0);
	if (lcore >= RTE_MAX_LCORE) {
		std::fprintf(stderr, "bench-sets: per_source_limit needs two lcores\n");
		return false;
	}
	uint32_t innocent = innocent0;
	while (meter_slot(innocent) == meter_slot(flooder))
		++innocent;
	limit_port lp{};
	lp.pool = rte_pktmbuf_pool_create("bench_sets_limit", 16383, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	lp.rx = rte_ring_create("bench_sets_limit_rx", 8192, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	lp.tx = rte_ring_create("bench_sets_limit_tx", 8192, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
	int port = -1;
	if (lp.pool && lp.rx && lp.tx)
		port = rte_eth_from_rings("bench_sets_limit", &lp.rx, 1, &lp.tx, 1, rte_socket_id());
	std::string err = port < 0 ? "cannot make the ring port" : start_port(uint16_t(port), lp.pool);
	if (!err.empty()) {
		std::fprintf(stderr, "bench-sets: per_source_limit: %s\n", err.c_str());
		return false;
	}
	lp.port = uint16_t(port);

	const limit_result ours = run_limit_variant(true, o, lp, innocent, lcore);
	const limit_result shared = ours.ok ? run_limit_variant(false, o, lp, innocent, lcore) : limit_result{};
	rte_eth_dev_stop(lp.port);
	rte_eth_dev_close(lp.port);
	rte_ring_free(lp.rx);
	rte_ring_free(lp.tx);
	rte_mempool_free(lp.pool);
	if (!ours.ok || !shared.ok)
		return false;

	json_line()
	    .text("bench", "sets")
	    .text("case", "per_source_limit")
	    .text("limit", "per-source " + std::to_string(limit_rate) + "/s burst " + std::to_string(limit_burst))
	    .fixed("window_s", ours.seconds, 2)
	    .fixed("flood_pps", ours.flood_pps(), 0)
	    .integer("flooder_syns", ours.flood_syns)
	    .integer("flooder_new_passed", ours.flood_new_passed)
	    .fixed("flooder_passed_per_s", ours.flood_passed_per_s(), 1)
	    .fixed("flooder_vs_limit", ours.flood_passed_per_s() / limit_rate, 3)
	    .integer("flooder_forwarded", ours.flood_forwarded)
	    .integer("over_limit", ours.over_limit)
	    .fixed("innocent_cps", o.innocent_cps, 1)
	    .integer("innocent_syns", ours.innocent_syns)
	    .integer("innocent_passed", ours.innocent_passed)
	    .fixed("innocent_share", ours.innocent_share(), 3)
	    .integer("flows_opened", ours.flows_opened)
	    .text("baseline", "limit " + std::to_string(limit_rate) + "/s burst " + std::to_string(limit_burst))
	    .fixed("baseline_flood_pps", shared.flood_pps(), 0)
	    .integer("baseline_flooder_syns", shared.flood_syns)
	    .integer("baseline_flooder_new_passed", shared.flood_new_passed)
	    .fixed("baseline_flooder_passed_per_s", shared.flood_passed_per_s(), 1)
	    .integer("baseline_over_limit", shared.over_limit)
	    .integer("baseline_innocent_syns", shared.innocent_syns)
	    .integer("baseline_innocent_passed", shared.innocent_passed)
	    .fixed("baseline_innocent_share", shared.innocent_share(), 3)
	    .integer("baseline_flows_opened", shared.flows_opened)
	    .integer("ring_full", ours.ring_full + shared.ring_full)
	    .text("machine", machine())
	    .print();
	return true;
}

} // namespace portcullis::bench::dynamic
