// bench-flood: do established connections keep their speed while a SYN flood fills the flow table?
//
// One worker (dataplane::worker, the daemon's data path) between two in-memory ports (net_ring, set up
// by start_ports like the daemon's), running gateway.rules. Before timing, E TCP connections (default
// 1000) from outside clients to the server's http/https ports do their three-way handshake through the
// worker. Then, in interleaved passes, the same traffic of their data segments (both directions, 64-byte
// frames) runs
//   - without flood (the baseline), and
//   - with a SYN flood: SYNs from random sources in 198.18.0.0/15 (random source ports and sequence
//     numbers) to the server's http port, which the rules allow, so that every SYN opens an embryonic
//     flow. The flow table is small (default 65,536 entries), so the flood fills it many times over and
//     every flood SYN after the first fill evicts a half-open flow.
// Flood and established packets come in separate bursts (--shares: flood packets / all packets, one
// case each; 0.5 is one flood burst per established burst), and each burst's poll round (rx_burst from
// the ring, judge, tx_burst to the ring) is timed on its own with the TSC. The headline, ours_mpps, is
// the established packets divided by the time spent on their own bursts: what an established packet
// costs while the flood churns the table and the caches, not the share of one core the flood leaves
// over (that is total_mpps and the flood share). The frames of each burst are written into freshly
// allocated mbufs just before it is timed, as a NIC would have just written them, in both cases alike.
//
// Checks (exit 1 when one fails): every established packet of every pass leaves by the other port (one
// dropped established packet fails the run), the table's size never exceeds its capacity, and after each
// flood pass every established connection is still in the table, established.
//
// Between passes the flood's half-open flows are expired the way the control thread does it (expire()
// with a clock 60 s ahead: past the 30 s SYN-sent timeout, far inside the established one), so each
// flood pass starts from a table holding only the established flows and fills it again. During a pass
// nothing expires: the flood is far faster than any timeout, eviction is the only way out.
//
// One JSON line per flood share on stdout; progress and failures on stderr.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "common/eal.h"
#include "common/frames.h"
#include "common/host.h"
#include "common/json.h"
#include "common/stats.h"
#include "dataplane/dataplane.h"
#include "dataplane/ports.h"
#include "flow/conntrack.h"
#include "rules/rules.h"

namespace dp = portcullis::dataplane;
namespace flow = portcullis::flow;
namespace rules = portcullis::rules;
namespace po = boost::program_options;
namespace bench = portcullis::bench;
using bench::median;

namespace {

// Addresses of gateway.rules: its server, and the ranges the flood must not use as sources (the inside
// network, and the clients of the established connections).
constexpr uint32_t server = 0xC612010A;          // 198.18.1.10
constexpr uint32_t inside_net = 0xC6120100;      // 198.18.1.0/24
constexpr uint32_t client_net = 0xC613FC00;      // 198.19.252.0/22: established clients
constexpr uint32_t flood_net = 0xC6120000;       // 198.18.0.0/15
constexpr uint32_t flood_mask = 0x1FFFF;
constexpr uint16_t http = 80, https = 443;
constexpr uint16_t frame_bytes = 60;             // 64 on the wire with the FCS
constexpr int outside = 0, inside = 1;

struct options {
	double seconds = 1.5;        // per case per pass: 3 shares x 3 passes x 2 cases x 1.5 s, about 30 s in all
	uint32_t passes = 3;
	double warmup = 0.5;
	uint32_t flows = 1000;
	uint32_t capacity = 1u << 16;
	std::vector<double> shares = {0.5, 0.9, 0.99};
	uint16_t burst = 32;
	std::string rules_file = PORTCULLIS_RULES_DIR "/gateway.rules";
	unsigned lcore = 1;
	uint64_t seed = 1;
};

// ---- frames ----

struct tcp_frame {
	uint8_t bytes[64];
};

// Ethernet + IPv4 + TCP (no options), payload bytes of 'x', padded to 60 bytes. TCP checksums are not
// checked by the data path; the IPv4 one is right.
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

// A SYN from a random flood source: address in 198.18.0.0/15 outside the inside network and the
// established clients, port 1024-65535, random ISN.
struct flood_source {
	uint64_t s;
	uint64_t next()
	{
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;  // xorshift64
		return s;
	}
	tcp_frame syn()
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
};

// ---- the harness: a worker between two ring ports ----

struct harness {
	rte_ring* rx[2] = {};
	rte_ring* tx[2] = {};
	uint16_t port[2] = {};
	rte_mempool* pool = nullptr;
	std::vector<dp::port_state> ports;
	std::unique_ptr<dp::compiled_policy> policy;
	std::atomic<dp::compiled_policy*> active{nullptr};
	std::unique_ptr<dp::worker> worker;
	uint16_t burst = 32;

	std::string start(const options& o)
	{
		for (int side = 0; side < 2; ++side) {
			const std::string n = std::to_string(side);
			rx[side] = rte_ring_create(("flood_rx" + n).c_str(), 1024, int(rte_socket_id()), RING_F_SP_ENQ | RING_F_SC_DEQ);
			tx[side] = rte_ring_create(("flood_tx" + n).c_str(), 1024, int(rte_socket_id()), RING_F_SP_ENQ | RING_F_SC_DEQ);
			if (!rx[side] || !tx[side])
				return "cannot create rings";
			const int p = rte_eth_from_rings(("flood" + n).c_str(), &rx[side], 1, &tx[side], 1, rte_socket_id());
			if (p < 0)
				return "cannot create ring port";
			port[side] = uint16_t(p);
		}
		dp::port_setup setup;
		setup.mbufs = 8191;
		setup.symmetric_rss = false;
		if (auto err = dp::start_ports({port[outside], port[inside]}, setup, pool, ports); !err.empty())
			return err;

		auto parsed = rules::parse_file(o.rules_file);
		if (!parsed.rules) {
			std::string all;
			for (const auto& d : parsed.errors)
				all += rules::format(d) + "\n";
			return all;
		}
		auto compiled = dp::compile(std::move(*parsed.rules), 1, 1);
		if (!compiled.policy)
			return compiled.error;
		policy = std::move(compiled.policy);
		active.store(policy.get());

		// The daemon's two-port wiring: what arrives outside goes in and leaves inside, and back.
		dp::worker_config wc;
		wc.burst = o.burst;
		wc.flows.capacity = o.capacity;
		wc.flows.policy = flow::full_policy::evict_embryonic;
		wc.flows.tsc_hz = rte_get_tsc_hz();
		wc.queues.push_back({port[outside], 0, 0, {port[inside], port[inside]}, 0});
		wc.queues.push_back({port[inside], 0, 1, {port[outside], port[outside]}, 0});
		worker = std::make_unique<dp::worker>(wc, active, nullptr);
		burst = o.burst;
		return {};
	}

	// Frames into fresh mbufs on a side's RX ring. False when the pool or the ring has no room.
	bool inject(int side, const tcp_frame* const* frames, uint16_t n)
	{
		rte_mbuf* m[dp::max_burst];
		if (rte_pktmbuf_alloc_bulk(pool, m, n) != 0)
			return false;
		for (uint16_t i = 0; i < n; ++i) {
			std::memcpy(rte_pktmbuf_mtod(m[i], uint8_t*), frames[i]->bytes, frame_bytes);
			m[i]->data_len = frame_bytes;
			m[i]->pkt_len = frame_bytes;
		}
		if (rte_ring_enqueue_bulk(rx[side], reinterpret_cast<void* const*>(m), n, nullptr) != n) {
			rte_pktmbuf_free_bulk(m, n);
			return false;
		}
		return true;
	}

	// Frees what the worker transmitted on a side; returns how many.
	uint32_t drain(int side)
	{
		uint32_t total = 0;
		void* objs[256];
		for (unsigned n; (n = rte_ring_dequeue_burst(tx[side], objs, 256, nullptr)) > 0;) {
			rte_pktmbuf_free_bulk(reinterpret_cast<rte_mbuf**>(objs), n);
			total += n;
		}
		return total;
	}

	// One poll round over both ports, timed.
	uint64_t timed_poll()
	{
		const uint64_t t0 = rte_rdtsc_precise();
		worker->poll_once();
		return rte_rdtsc_precise() - t0;
	}

	void stop()
	{
		worker.reset();
		dp::stop_ports(ports);
	}
};

// ---- the established connections ----

struct connections {
	std::vector<tcp_frame> to_server, to_client;  // one data segment each way per connection
	std::vector<uint32_t> order;                  // a random permutation: bursts touch scattered flows
	size_t cursor = 0;
};

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

// The three-way handshakes through the worker, a burst at a time. Empty on success.
std::string handshake(harness& h, uint32_t n)
{
	using namespace flow::tcp_flag;
	for (uint32_t base = 0; base < n; base += h.burst) {
		const uint16_t m = uint16_t(std::min<uint32_t>(h.burst, n - base));
		std::vector<tcp_frame> syn, syn_ack, ack;
		for (uint32_t i = base; i < base + m; ++i) {
			const uint32_t client = client_net + (i % 1024);
			const uint16_t cport = uint16_t(20000 + i / 1024), sport = i % 2 ? https : http;
			const uint32_t cisn = 1000 + i, sisn = 500000 + i;
			syn.push_back(make_tcp4(client, cport, server, sport, flow::tcp_flag::syn, cisn, 0, 0));
			syn_ack.push_back(make_tcp4(server, sport, client, cport, flow::tcp_flag::syn | flow::tcp_flag::ack, sisn, cisn + 1, 0));
			ack.push_back(make_tcp4(client, cport, server, sport, flow::tcp_flag::ack, cisn + 1, sisn + 1, 0));
		}
		const struct {
			std::vector<tcp_frame>* frames;
			int from;
		} steps[] = {{&syn, outside}, {&syn_ack, inside}, {&ack, outside}};
		for (const auto& step : steps) {
			const tcp_frame* f[dp::max_burst];
			for (uint16_t i = 0; i < m; ++i)
				f[i] = &(*step.frames)[i];
			if (!h.inject(step.from, f, m))
				return "cannot inject the handshakes";
			h.worker->poll_once();
			const uint32_t passed = h.drain(1 - step.from);
			h.drain(step.from);
			if (passed != m)
				return "handshake packets dropped (" + std::to_string(m - passed) + " of " + std::to_string(m) +
				       "): do the rules allow inbound TCP to 198.18.1.10 ports 80 and 443?";
		}
	}
	return {};
}

// ---- one pass of one case ----

struct pass_result {
	uint64_t est_packets = 0, est_tsc = 0, est_dropped = 0;
	uint64_t flood_packets = 0, flood_tsc = 0, flood_forwarded = 0;
	uint64_t size_max = 0;
	std::vector<uint32_t> est_rounds, flood_rounds;  // TSC ticks of each timed poll round
	bool failed = false;
};

// Poll rounds the OS interrupted: on a shared 2-vCPU machine a round is now and then descheduled, and
// one such round (milliseconds) outweighs thousands of real ones (microseconds). Rounds longer than 20x
// the median are left out of the rates and counted; the rest are summed, so slow rounds of the data
// path itself (cache misses, long bucket scans) still count in full.
struct trimmed {
	uint64_t tsc = 0, rounds = 0, discarded = 0;
};

trimmed trim(const std::vector<uint32_t>& rounds)
{
	trimmed t;
	if (rounds.empty())
		return t;
	std::vector<uint32_t> sorted = rounds;
	std::nth_element(sorted.begin(), sorted.begin() + long(sorted.size() / 2), sorted.end());
	const uint64_t limit = 20 * uint64_t(sorted[sorted.size() / 2]);
	for (uint32_t r : rounds) {
		if (r > limit) {
			++t.discarded;
			continue;
		}
		t.tsc += r;
		++t.rounds;
	}
	return t;
}

// Runs established bursts (one per port per round) for `seconds`, with flood bursts in between so that
// flood packets are `share` of all packets (0: no flood).
pass_result run_pass(harness& h, connections& c, flood_source& flood, double share, double seconds)
{
	pass_result r;
	const uint64_t hz = rte_get_tsc_hz();
	const uint64_t end = rte_rdtsc() + uint64_t(seconds * double(hz));
	const uint32_t n = uint32_t(c.order.size());
	const uint16_t b = h.burst;
	const double flood_per_est = share > 0 ? share / (1 - share) : 0;
	double credit = 0;
	std::vector<tcp_frame> syns(b);
	const tcp_frame* f[dp::max_burst];
	while (rte_rdtsc() < end && !r.failed) {
		// Established: a burst from clients on the outside port, one from the server on the inside port.
		for (int side : {outside, inside}) {
			for (uint16_t i = 0; i < b; ++i) {
				const uint32_t k = c.order[(c.cursor + i + (side == inside ? n / 2 : 0)) % n];
				f[i] = side == outside ? &c.to_server[k] : &c.to_client[k];
			}
			if (!h.inject(side, f, b)) {
				std::fprintf(stderr, "bench-flood: cannot inject (mbuf pool empty?)\n");
				r.failed = true;
			}
		}
		if (r.failed)
			break;
		c.cursor = (c.cursor + b) % n;
		const uint64_t est_ticks = h.timed_poll();
		r.est_tsc += est_ticks;
		r.est_rounds.push_back(uint32_t(std::min<uint64_t>(est_ticks, UINT32_MAX)));
		r.est_packets += 2u * b;
		const uint32_t out = h.drain(outside) + h.drain(inside);
		if (out != 2u * b) {
			r.est_dropped += 2u * b - out;
			r.failed = true;
		}
		// Flood bursts owed for the established packets just sent.
		credit += flood_per_est * 2 * b;
		while (credit >= b && !r.failed) {
			credit -= b;
			for (uint16_t i = 0; i < b; ++i) {
				syns[i] = flood.syn();
				f[i] = &syns[i];
			}
			if (!h.inject(outside, f, b)) {
				std::fprintf(stderr, "bench-flood: cannot inject (mbuf pool empty?)\n");
				r.failed = true;
				break;
			}
			const uint64_t flood_ticks = h.timed_poll();
			r.flood_tsc += flood_ticks;
			r.flood_rounds.push_back(uint32_t(std::min<uint64_t>(flood_ticks, UINT32_MAX)));
			r.flood_packets += b;
			r.flood_forwarded += h.drain(inside);
			h.drain(outside);
			r.size_max = std::max<uint64_t>(r.size_max, h.worker->flows().size());
		}
	}
	return r;
}

// Removes the flood's half-open flows as the control thread would a minute later; established flows stay.
void expire_flood(harness& h)
{
	flow::flow_table& t = h.worker->flows();
	const uint64_t later = rte_rdtsc() + 60 * rte_get_tsc_hz();
	t.expire(later, UINT32_MAX);
	h.worker->poll_once();  // a quiescent point: the expired entries may be recycled
	t.expire(later, 0);     // recycles them into the free ring
}

struct census {
	uint64_t live = 0, established = 0;
};

census count_flows(const flow::flow_table& t)
{
	census c;
	t.for_each([&](const flow::flow_entry& e) {
		++c.live;
		c.established += e.state == flow::flow_state::tcp_established;
	});
	return c;
}

bool parse_options(int argc, char** argv, options& o, int& exit_code)
{
	std::string shares = "0.5,0.9,0.99";
	po::options_description desc(
	    "usage: bench-flood [options]\n"
	    "Established TCP connections through one worker, without and during a SYN flood that overfills the\n"
	    "flow table; one JSON line per flood share. Defaults take about 30 s");
	desc.add_options()
	    ("help,h", "this text")
	    ("seconds", po::value(&o.seconds)->default_value(o.seconds), "seconds per case per pass")
	    ("passes", po::value(&o.passes)->default_value(o.passes), "passes (no flood, flood) per share; medians reported")
	    ("warmup", po::value(&o.warmup)->default_value(o.warmup), "seconds of established traffic before the first pass")
	    ("flows", po::value(&o.flows)->default_value(o.flows), "established connections")
	    ("capacity", po::value(&o.capacity)->default_value(o.capacity), "flow table capacity")
	    ("shares", po::value(&shares)->default_value(shares), "flood shares of all packets, comma-separated, each in (0, 0.99]")
	    ("burst", po::value(&o.burst)->default_value(o.burst), "packets per burst (1-64)")
	    ("rules", po::value(&o.rules_file)->default_value(o.rules_file), "rule file (must allow inbound TCP to 198.18.1.10 ports 80, 443)")
	    ("lcore", po::value(&o.lcore)->default_value(o.lcore), "EAL lcore to run on")
	    ("seed", po::value(&o.seed)->default_value(o.seed), "seed of the flood's sources and the flows' order");
	po::variables_map vm;
	try {
		po::store(po::parse_command_line(argc, argv, desc), vm);
		po::notify(vm);
	} catch (const po::error& e) {
		std::cerr << "bench-flood: " << e.what() << "\n" << desc << "\n";
		exit_code = 2;
		return false;
	}
	if (vm.count("help")) {
		std::cout << desc << "\n";
		exit_code = 0;
		return false;
	}
	o.shares.clear();
	std::stringstream ss(shares);
	for (std::string s; std::getline(ss, s, ',');)
		o.shares.push_back(std::atof(s.c_str()));
	const bool bad_share = std::any_of(o.shares.begin(), o.shares.end(), [](double s) { return !(s > 0 && s <= 0.99); });
	if (o.shares.empty() || bad_share || o.burst < 1 || o.burst > dp::max_burst || o.flows < 2 * o.burst ||
	    o.flows >= o.capacity || o.passes < 1 || o.seconds <= 0) {
		std::cerr << "bench-flood: bad option values (shares in (0, 0.99], burst 1-64, 2*burst <= flows < capacity)\n";
		exit_code = 2;
		return false;
	}
	return true;
}

} // namespace

int main(int argc, char** argv)
{
	options o;
	int exit_code = 0;
	if (!parse_options(argc, argv, o, exit_code))
		return exit_code;

	const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (long(o.lcore) >= cpus)
		o.lcore = 0;
	bench::eal_config eal;
	eal.program = "bench-flood";
	eal.lcores = std::to_string(o.lcore);
	if (!bench::start_eal(eal))
		return 1;
	harness h;
	if (auto err = h.start(o); !err.empty()) {
		std::fprintf(stderr, "bench-flood: %s\n", err.c_str());
		return 1;
	}
	std::mt19937_64 rng(o.seed);
	connections conns = make_connections(o.flows, rng);
	if (auto err = handshake(h, o.flows); !err.empty()) {
		std::fprintf(stderr, "bench-flood: %s\n", err.c_str());
		return 1;
	}
	if (const census c = count_flows(h.worker->flows()); c.established != o.flows) {
		std::fprintf(stderr, "bench-flood: %lu of %u connections established after the handshakes\n",
		             (unsigned long)c.established, o.flows);
		return 1;
	}
	flood_source flood{o.seed * 0x9E3779B97F4A7C15ull | 1};
	run_pass(h, conns, flood, 0, o.warmup);

	const std::string machine = bench::machine();
	bool failed = false;
	for (const double share : o.shares) {
		std::vector<double> base_mpps, flood_mpps, pass_ratio, syn_mpps, total_mpps, base_untrimmed, flood_untrimmed;
		uint64_t rounds = 0, discarded = 0;
		pass_result sum_base, sum_flood;
		uint64_t established_min = o.flows, live_max = 0;
		const flow::table_counters& tc = h.worker->flows().counters();
		const uint64_t inserts0 = tc.inserts, evicted0 = tc.evicted_embryonic, refused_full0 = tc.refused_full,
		               refused_buckets0 = tc.refused_buckets;
		const dp::worker_counters& wc = h.worker->counters();
		const uint64_t full_drops0 = wc.drops[size_t(dp::drop_reason::flow_table_full)];
		const uint64_t opened0 = wc.flows_opened;
		uint64_t drops0 = 0;
		for (size_t r = 0; r < dp::drop_reason_count; ++r)
			drops0 += wc.drops[r];
		const uint64_t hz = rte_get_tsc_hz();
		for (uint32_t pass = 0; pass < o.passes && !failed; ++pass) {
			const pass_result a = run_pass(h, conns, flood, 0, o.seconds);
			const pass_result f = run_pass(h, conns, flood, share, o.seconds);
			const census c = count_flows(h.worker->flows());
			established_min = std::min(established_min, c.established);
			live_max = std::max(live_max, c.live);
			expire_flood(h);
			for (const pass_result* p : {&a, &f}) {
				pass_result& s = p == &a ? sum_base : sum_flood;
				s.est_packets += p->est_packets, s.est_tsc += p->est_tsc, s.est_dropped += p->est_dropped;
				s.flood_packets += p->flood_packets, s.flood_tsc += p->flood_tsc;
				s.flood_forwarded += p->flood_forwarded;
				s.size_max = std::max(s.size_max, p->size_max);
				failed |= p->failed;
			}
			// Rates over the rounds the OS did not interrupt (see trim); packets per round are fixed.
			const trimmed at = trim(a.est_rounds), ft = trim(f.est_rounds), st = trim(f.flood_rounds);
			auto mpps = [&](uint64_t packets, uint64_t tsc) { return tsc ? double(packets) * double(hz) / double(tsc) / 1e6 : 0.0; };
			const double am = mpps(at.rounds * 2 * o.burst, at.tsc), fm = mpps(ft.rounds * 2 * o.burst, ft.tsc);
			base_mpps.push_back(am);
			flood_mpps.push_back(fm);
			pass_ratio.push_back(am > 0 ? fm / am : 0);
			syn_mpps.push_back(mpps(st.rounds * o.burst, st.tsc));
			total_mpps.push_back(mpps(ft.rounds * 2 * o.burst + st.rounds * o.burst, ft.tsc + st.tsc));
			base_untrimmed.push_back(mpps(a.est_packets, a.est_tsc));
			flood_untrimmed.push_back(mpps(f.est_packets, f.est_tsc));
			rounds += a.est_rounds.size() + f.est_rounds.size() + f.flood_rounds.size();
			discarded += at.discarded + ft.discarded + st.discarded;
			std::fprintf(stderr, "bench-flood: share %.2f pass %u: established %.2f Mpps without, %.2f during (%.3f); "
			             "flood %.2f Mpps; table max %lu of %u, %lu live, %lu established\n",
			             share, pass + 1, am, fm, pass_ratio.back(), syn_mpps.back(), (unsigned long)f.size_max,
			             o.capacity, (unsigned long)c.live, (unsigned long)c.established);
		}
		uint64_t drops = 0;
		for (size_t r = 0; r < dp::drop_reason_count; ++r)
			drops += wc.drops[r];
		const uint64_t est_dropped = sum_base.est_dropped + sum_flood.est_dropped;
		const uint64_t size_max = std::max(sum_base.size_max, sum_flood.size_max);
		const uint64_t evicted = tc.evicted_embryonic - evicted0;
		const double ours = median(flood_mpps), base = median(base_mpps);
		// Flood SYNs the worker dropped (the table refused them: flow_table_full) are the only drops
		// expected; every established packet is checked above.
		const bool ok = !failed && est_dropped == 0 && size_max <= o.capacity && live_max <= o.capacity &&
		                established_min == o.flows;
		const uint64_t full_drops = wc.drops[size_t(dp::drop_reason::flow_table_full)] - full_drops0;
		bench::json_line()
		    .text("bench", "flood")
		    .text("case", "syn_flood_share" + bench::fixed(share * 100, 0))
		    .fixed("flood_share", share, 2)
		    .integer("flows_established", o.flows)
		    .integer("flow_capacity", o.capacity)
		    .integer("burst", o.burst)
		    .integer("passes", flood_mpps.size())
		    .fixed("seconds_per_pass", o.seconds, 1)
		    .text("ours", "established_during_flood")
		    .fixed("ours_mpps", ours, 3)
		    .text("baseline", "established_without_flood")
		    .fixed("baseline_mpps", base, 3)
		    .fixed("ratio", base > 0 ? ours / base : 0.0, 3)
		    .raw("goal", "0.9")
		    .fixed_array("pass_ratios", pass_ratio, 3)
		    .fixed("ratio_all_rounds",
		           median(base_untrimmed) > 0 ? median(flood_untrimmed) / median(base_untrimmed) : 0.0, 3)
		    .integer("rounds", rounds)
		    .integer("rounds_discarded", discarded)
		    .fixed("established_ns_per_packet", ours > 0 ? 1e3 / ours : 0.0, 1)
		    .fixed("baseline_ns_per_packet", base > 0 ? 1e3 / base : 0.0, 1)
		    .fixed("flood_mpps", median(syn_mpps), 3)
		    .fixed("total_mpps", median(total_mpps), 3)
		    .integer("established_packets", sum_base.est_packets + sum_flood.est_packets)
		    .integer("established_dropped", est_dropped)
		    .integer("flood_packets", sum_flood.flood_packets)
		    .integer("flood_forwarded", sum_flood.flood_forwarded)
		    .integer("flows_opened", wc.flows_opened - opened0)
		    .fixed("table_fills", double(wc.flows_opened - opened0) / double(o.capacity), 1)
		    .integer("flow_table_max", size_max)
		    .integer("flow_table_live_max", live_max)
		    .integer("established_alive_min", established_min)
		    .integer("flow_inserts", tc.inserts - inserts0)
		    .integer("evicted_embryonic", evicted)
		    .integer("refused_full", tc.refused_full - refused_full0)
		    .integer("refused_buckets", tc.refused_buckets - refused_buckets0)
		    .integer("drops_flow_table_full", full_drops)
		    .integer("drops_other", drops - drops0 - full_drops)
		    .boolean("ok", ok)
		    .text("machine", machine)
		    .print();
		if (!ok) {
			std::fprintf(stderr, "bench-flood: FAILED: %lu established packets dropped, table max %lu (live %lu) of %u, "
			             "%lu of %u connections left established\n",
			             (unsigned long)est_dropped, (unsigned long)size_max, (unsigned long)live_max, o.capacity,
			             (unsigned long)established_min, o.flows);
			for (size_t r = 0; r < dp::drop_reason_count; ++r)
				if (wc.drops[r])
					std::fprintf(stderr, "bench-flood: dropped %lu as %s\n", (unsigned long)wc.drops[r],
					             std::string(dp::to_string(dp::drop_reason(r))).c_str());
			failed = true;
		}
	}
	h.stop();
	rte_eal_cleanup();
	return failed ? 1 : 0;
}
