// bench-sync: what flow-state sync (lib/sync) costs the data path, how many flow events one control
// thread syncs per second, and how long a joining peer's bulk sync of 1M flows takes.
//
// pipeline: bench-flood's worker (dataplane::worker between two net_ring ports, gateway.rules) carries
// established TCP connections (data segments both ways, 64-byte frames) while 5% of the packets are new
// connections' SYNs (flows to sync), first with sync off, then with sync on, in alternating passes: the
// worker drains its install ring and reads the forwarding flag, a control thread walks its table
// (engine::collect every 20 ms, the daemon's cadence) and the engine sends to a peer engine on loopback,
// which installs what it gets in a table of its own. ours = established Mpps with sync, baseline = without,
// in the same run; goal >= 0.95.
// events: a table of --event-flows flows, synced to a peer; then every flow changes state at once, and the
// time until the peer has applied every change gives the events one control thread syncs per second
// (walk, records, datagrams, acks, installs).
// bulk: a table of --bulk-flows (1M) flows; a peer starts and the clock runs until it has installed all
// of them and says it is ready. Goal <= 5 s.
//
// One JSON line per case on stdout; progress on stderr. Exit 1 when a check fails (an established packet
// dropped, a peer missing flows).
#include <rte_cycles.h>
#include <rte_eal.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <boost/program_options.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>
#include <thread>

#include "common/host.h"
#include "common/json.h"
#include "common/eal.h"
#include "common/stats.h"
#include "flood/harness.h"
#include "sync/sync.h"

namespace dp = portcullis::dataplane;
namespace flow = portcullis::flow;
namespace ps = portcullis::sync;  // not "sync": unistd.h has a sync()
namespace po = boost::program_options;
namespace bench = portcullis::bench;
using namespace portcullis::bench::flood;

namespace {

struct options {
	double seconds = 2;
	uint32_t passes = 3;
	uint32_t flows = 10000;
	uint32_t capacity = 1u << 17;
	double churn = 0.05;
	uint32_t event_flows = 200000;
	uint32_t bulk_flows = 1000000;
	unsigned lcore = 1;
};

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t) { return std::chrono::duration<double>(clock_type::now() - t).count(); }

uint64_t now_ns()
{
	return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch()).count());
}

// A clock for the tables: steady_clock's nanoseconds (tsc_hz 1e9, tables filled here) or the TSC
// (the pipeline's worker).
uint64_t clock_of(uint64_t hz) { return hz == 1'000'000'000 ? now_ns() : rte_rdtsc(); }

// The daemon's control loop as far as sync goes: engine.collect() every 20 ms, on a thread of its own.
class collector {
public:
	collector(ps::engine& e, uint64_t hz)
		: thread_([this, &e, hz] {
			  while (!stop_.load(std::memory_order_relaxed)) {
				  e.collect(clock_of(hz));
				  std::this_thread::sleep_for(std::chrono::milliseconds(20));
			  }
		  })
	{
	}
	~collector()
	{
		stop_ = true;
		thread_.join();
	}

private:
	std::atomic<bool> stop_{false};
	std::thread thread_;
};

// n TCP flows in a state, as their worker would have opened them; how many fit.
uint32_t fill(flow::flow_table& table, uint32_t n, flow::flow_state state);

// A peer on loopback with a table of its own, whose "worker" is a thread installing what arrives.
struct peer_node {
	flow::flow_table table;
	dp::spsc_ring<flow::flow_record> ring{8192};
	std::atomic<bool> forwarding{true};
	std::unique_ptr<ps::engine> engine;
	std::atomic<bool> stop{false};
	std::atomic<uint64_t> applied{0};
	std::thread worker;
	std::unique_ptr<collector> control;

	peer_node(flow::table_config tc, const ps::sync_config& c, uint64_t hz) : table(tc)
	{
		engine = std::make_unique<ps::engine>(c, std::vector<ps::table_port>{{&table, &ring}},
		                                        [](const flow::flow_key&, uint32_t) { return 0u; }, forwarding);
		worker = std::thread([this, hz] {
			while (!stop.load(std::memory_order_relaxed)) {
				const uint64_t now = clock_of(hz);
				const uint32_t n = ring.drain([&](const flow::flow_record& r) { flow::install(table, r, now); }, 4096);
				applied.fetch_add(n, std::memory_order_relaxed);
				if (!n)
					std::this_thread::sleep_for(std::chrono::microseconds(50));
			}
		});
		control = std::make_unique<collector>(*engine, hz);
	}
	std::string start() { return engine->start(); }
	~peer_node()
	{
		stop = true;
		worker.join();
		control.reset();
		engine->stop();
	}
};

ps::sync_config config_for(uint16_t port, uint16_t peer_port, ps::role role = ps::role::active)
{
	ps::sync_config c;
	c.listen = "127.0.0.1:" + std::to_string(port);
	c.peers = {"127.0.0.1:" + std::to_string(peer_port)};
	c.key = "bench-sync shared secret, 32 bytes";
	c.initial = role;
	return c;
}

flow::flow_key key_of(uint32_t i)
{
	bool reversed;
	return flow::make_key(4, 6, portcullis::u128(0xC6120000u | (i >> 12)), portcullis::u128(0xC613000Au),
	                      uint16_t(1024 + (i & 0xfff)), 443, reversed);
}

flow::table_config table_of(uint32_t capacity)
{
	flow::table_config c;
	c.capacity = capacity;
	c.tsc_hz = 1'000'000'000;  // steady_clock nanoseconds
	return c;
}

// Runs fn with the calling thread on these CPUs, then puts it back: the threads fn starts (an engine's,
// the peer's) inherit them. The daemon's sync thread runs on the main lcore, beside the control loop and
// not on a worker's core; so do these, off the pipeline worker's.
template <class Fn>
void on_cpus(const std::vector<int>& cpus, Fn&& fn)
{
	cpu_set_t before, want;
	pthread_getaffinity_np(pthread_self(), sizeof(before), &before);
	CPU_ZERO(&want);
	for (int c : cpus)
		CPU_SET(c, &want);
	pthread_setaffinity_np(pthread_self(), sizeof(want), &want);
	fn();
	pthread_setaffinity_np(pthread_self(), sizeof(before), &before);
}

std::vector<int> all_cpus()
{
	std::vector<int> v;
	for (long c = 0; c < sysconf(_SC_NPROCESSORS_ONLN); ++c)
		v.push_back(int(c));
	return v;
}

bool wait_for(const std::function<bool()>& done, double timeout_s)
{
	const auto start = clock_type::now();
	while (seconds_since(start) < timeout_s) {
		if (done())
			return true;
		std::this_thread::sleep_for(std::chrono::milliseconds(1));
	}
	return done();
}

// ---- pipeline: established traffic with 5% new connections, sync off and on ----

struct pass_result {
	uint64_t packets = 0, tsc = 0, dropped = 0;
};

pass_result run_pass(harness& h, connections& c, flood_source& syns, double churn, double seconds)
{
	pass_result r;
	const uint64_t end = rte_rdtsc() + uint64_t(seconds * double(rte_get_tsc_hz()));
	const uint32_t n = uint32_t(c.order.size());
	const uint16_t b = h.burst;
	const double syn_per_est = churn / (1 - churn);
	double credit = 0;
	std::vector<tcp_frame> fresh(b);
	const tcp_frame* f[dp::max_burst];
	while (rte_rdtsc() < end) {
		for (int side : {outside, inside}) {
			for (uint16_t i = 0; i < b; ++i) {
				const uint32_t k = c.order[(c.cursor + i + (side == inside ? n / 2 : 0)) % n];
				f[i] = side == outside ? &c.to_server[k] : &c.to_client[k];
			}
			if (!h.inject(side, f, b))
				return r.dropped = 1, r;
		}
		c.cursor = (c.cursor + b) % n;
		r.tsc += h.timed_poll();
		r.packets += 2u * b;
		const uint32_t out = h.drain(outside) + h.drain(inside);
		r.dropped += 2u * b - out;
		// New connections, their own bursts (not timed: the established packets' cost is the measure).
		credit += syn_per_est * 2 * b;
		while (credit >= b) {
			credit -= b;
			for (uint16_t i = 0; i < b; ++i) {
				fresh[i] = syns.syn();
				f[i] = &fresh[i];
			}
			if (!h.inject(outside, f, b))
				return r.dropped = 1, r;
			h.timed_poll();
			h.drain(inside);
			h.drain(outside);
		}
	}
	return r;
}

bool pipeline_case(const options& o, const std::string& machine, uint16_t port_a, uint16_t port_b)
{
	const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	const std::vector<int> control_cpus = {cpus > 1 ? int(o.lcore == 0 ? 1 : 0) : 0};
	harness h;
	if (auto err = h.start(PORTCULLIS_RULES_DIR "/gateway.rules", 32, o.capacity); !err.empty()) {
		std::fprintf(stderr, "bench-sync: %s\n", err.c_str());
		return false;
	}
	std::atomic<bool> forwarding{true};
	std::vector<double> off_mpps, on_mpps;
	uint64_t dropped = 0, peer_flows_max = 0, records_sent = 0;
	bool failed = false;
	for (uint32_t pass = 0; pass < o.passes * 2 && !failed; ++pass) {
		const bool on = pass % 2 == 1;
		h.config.sync_installs = on;
		h.config.forwarding = on ? &forwarding : nullptr;
		h.restart_worker(dp::syncookie_mode::never);
		std::mt19937_64 rng(1);
		connections conns = make_connections(o.flows, rng);
		if (auto err = handshake(h, o.flows, conns); !err.empty()) {
			std::fprintf(stderr, "bench-sync: %s\n", err.c_str());
			return false;
		}
		flood_source syns{0x9E3779B97F4A7C15ull + pass};
		std::unique_ptr<ps::engine> engine;
		std::unique_ptr<peer_node> peer;
		std::unique_ptr<collector> control;
		if (on) on_cpus(control_cpus, [&] {
			const uint64_t hz = rte_get_tsc_hz();
			ps::sync_config ca = config_for(port_a, port_b);
			engine = std::make_unique<ps::engine>(
			    ca, std::vector<ps::table_port>{{&h.worker->flows(), &h.worker->installs()}}, &dp::owner_of_flow, forwarding);
			flow::table_config tc = table_of(o.capacity);
			tc.tsc_hz = hz;
			peer = std::make_unique<peer_node>(tc, config_for(port_b, port_a), hz);
			if (!engine->start().empty() || !peer->start().empty()) {
				std::fprintf(stderr, "bench-sync: cannot start the engines on 127.0.0.1:%u/%u\n", port_a, port_b);
				failed = true;
				return;
			}
			control = std::make_unique<collector>(*engine, hz);
		});
		if (failed)
			return false;
		if (on)
			wait_for([&] { return engine->status().peers[0].bulk_out_acked >= o.flows; }, 5);
		run_pass(h, conns, syns, o.churn, 0.3);  // warm
		const pass_result r = run_pass(h, conns, syns, o.churn, o.seconds);
		dropped += r.dropped;
		const double mpps = r.tsc ? double(r.packets) * double(rte_get_tsc_hz()) / double(r.tsc) / 1e6 : 0;
		(on ? on_mpps : off_mpps).push_back(mpps);
		if (on) {
			control.reset();
			records_sent += engine->status().records_sent;
			peer_flows_max = std::max<uint64_t>(peer_flows_max, peer->table.size());
			engine->stop();
			peer.reset();
			engine.reset();
		}
		std::fprintf(stderr, "bench-sync: pipeline pass %u, sync %s: established %.2f Mpps\n", pass / 2 + 1,
		             on ? "on" : "off", mpps);
		failed = r.dropped != 0;
	}
	h.config.sync_installs = false;
	h.config.forwarding = nullptr;
	h.stop();
	const double ours = bench::median(on_mpps), base = bench::median(off_mpps);
	bench::json_line()
	    .text("bench", "sync")
	    .text("case", "pipeline_sync_on")
	    .text("machine", machine)
	    .integer("flows_established", o.flows)
	    .fixed("new_flow_share", o.churn, 2)
	    .text("ours", "established_with_sync")
	    .fixed("ours_mpps", ours, 2)
	    .text("baseline", "established_without_sync")
	    .fixed("baseline_mpps", base, 2)
	    .fixed("ratio", base > 0 ? ours / base : 0, 3)
	    .fixed_array("ours_mpps_passes", on_mpps, 2)
	    .fixed_array("baseline_mpps_passes", off_mpps, 2)
	    .fixed("goal_ratio", 0.95, 2)
	    .integer("records_sent", records_sent)
	    .integer("peer_flows_max", peer_flows_max)
	    .integer("established_dropped", dropped)
	    .print();
	return !failed && dropped == 0;
}

// ---- events and bulk: engines alone, tables filled by the test thread ----

uint32_t fill(flow::flow_table& table, uint32_t n, flow::flow_state state)
{
	for (uint32_t i = 0; i < n; ++i)
		if (flow::flow_entry* e = table.insert(key_of(i), flow::hash_key(key_of(i)), now_ns()))
			flow::store_state(*e, state);
	return uint32_t(table.size());
}

bool events_case(const options& o, const std::string& machine, uint16_t port_a, uint16_t port_b)
{
	flow::flow_table table(table_of(o.event_flows + o.event_flows / 4));
	std::atomic<bool> forwarding{true};
	dp::spsc_ring<flow::flow_record> ring{8};
	const uint32_t flows = fill(table, o.event_flows, flow::flow_state::tcp_syn_received);
	ps::sync_config ca = config_for(port_a, port_b);
	ca.interval_ms = 100;
	ps::engine a(ca, {{&table, &ring}}, [](const flow::flow_key&, uint32_t) { return 0u; }, forwarding);
	peer_node b(table_of(flows + flows / 4), config_for(port_b, port_a), 1'000'000'000);
	if (!a.start().empty() || !b.start().empty())
		return false;
	auto control = std::make_unique<collector>(a, 1'000'000'000);
	// Settled: the bulk sync acknowledged, and the first whole walks (which send every flow once more, as
	// new to the incremental stream) applied.
	bool ok = wait_for([&] {
		const ps::sync_status s = a.status();
		return b.table.size() == flows && s.peers[0].bulk_out_acked == flows && s.walks >= 2 && s.peers[0].queued == 0 &&
		       s.peers[0].in_flight == 0;
	}, 30);
	// Every flow changes state at once: the walk finds them all, and the clock runs until the peer has
	// applied every one of those records.
	const uint64_t before = b.applied.load();
	const auto start = clock_type::now();
	table.for_each([](const flow::flow_entry& e) { flow::store_state(const_cast<flow::flow_entry&>(e), flow::flow_state::tcp_established); });
	uint64_t established = 0;
	auto count_established = [&] {
		established = 0;
		b.table.for_each([&](const flow::flow_entry& e) { established += flow::load_state(e) == flow::flow_state::tcp_established; });
		return established == flows;
	};
	ok = ok && wait_for([&] { return b.applied.load() - before >= flows && count_established(); }, 30);
	const double seconds = seconds_since(start);
	control.reset();
	const ps::sync_status s = a.status();
	a.stop();
	const double rate = ok ? double(flows) / seconds : 0;
	std::fprintf(stderr, "bench-sync: events: %u state changes applied by the peer in %.3f s (%.0f/s)\n", flows, seconds, rate);
	bench::json_line()
	    .text("bench", "sync")
	    .text("case", "events")
	    .text("machine", machine)
	    .integer("flows", flows)
	    .fixed("seconds", seconds, 3)
	    .text("ours", "flow_events_synced_per_second")
	    .fixed("events_per_second", rate, 0)
	    .integer("peer_established", established)
	    .integer("datagrams_sent", s.datagrams_sent)
	    .integer("retransmitted", s.retransmitted)
	    .print();
	return ok && established == flows;
}

bool bulk_case(const options& o, const std::string& machine, uint16_t port_a, uint16_t port_b)
{
	flow::flow_table table(table_of(o.bulk_flows + o.bulk_flows / 4));
	std::atomic<bool> forwarding{true};
	dp::spsc_ring<flow::flow_record> ring{8};
	const uint32_t flows = fill(table, o.bulk_flows, flow::flow_state::tcp_established);
	ps::engine a(config_for(port_a, port_b), {{&table, &ring}}, [](const flow::flow_key&, uint32_t) { return 0u; },
	               forwarding);
	if (!a.start().empty())
		return false;
	auto control = std::make_unique<collector>(a, 1'000'000'000);
	// The peer joins now: the clock runs from its start to its table holding every flow, ready.
	const auto start = clock_type::now();
	auto b = std::make_unique<peer_node>(table_of(flows + flows / 4), config_for(port_b, port_a, ps::role::standby),
	                                     1'000'000'000);
	bool ok = b->start().empty();
	ok = ok && wait_for([&] { return b->table.size() == flows && b->engine->status().ready; }, 60);
	const double seconds = seconds_since(start);
	const ps::sync_status sb = b->engine->status();
	b.reset();
	control.reset();
	a.stop();
	std::fprintf(stderr, "bench-sync: bulk: %u flows to a joining peer in %.2f s\n", flows, seconds);
	bench::json_line()
	    .text("bench", "sync")
	    .text("case", "bulk_1m")
	    .text("machine", machine)
	    .integer("flows", flows)
	    .text("ours", "bulk_sync_seconds")
	    .fixed("seconds", seconds, 2)
	    .fixed("flows_per_second", ok ? double(flows) / seconds : 0, 0)
	    .fixed("goal_seconds", 5, 1)
	    .fixed("peer_bulk_seconds", sb.last_bulk_in_seconds, 2)
	    .print();
	return ok;
}

} // namespace

int main(int argc, char** argv)
{
	options o;
	std::string cases = "pipeline,events,bulk";
	po::options_description desc(
	    "usage: bench-sync [options]\n"
	    "Flow-state sync: the data path with sync on against off, flow events synced per second, a 1M-flow\n"
	    "bulk sync; one JSON line per case. Defaults take about 40 s");
	desc.add_options()
	    ("help,h", "this text")
	    ("cases", po::value(&cases)->default_value(cases), "comma-separated: pipeline, events, bulk")
	    ("seconds", po::value(&o.seconds)->default_value(o.seconds), "pipeline: seconds per pass")
	    ("passes", po::value(&o.passes)->default_value(o.passes), "pipeline: passes each way; medians reported")
	    ("flows", po::value(&o.flows)->default_value(o.flows), "pipeline: established connections")
	    ("churn", po::value(&o.churn)->default_value(o.churn), "pipeline: share of packets that are new connections' SYNs")
	    ("event-flows", po::value(&o.event_flows)->default_value(o.event_flows), "events: flows that change state at once")
	    ("bulk-flows", po::value(&o.bulk_flows)->default_value(o.bulk_flows), "bulk: flows in the joining peer's bulk sync")
	    ("lcore", po::value(&o.lcore)->default_value(o.lcore), "EAL lcore of the pipeline's worker");
	po::variables_map vm;
	try {
		po::store(po::parse_command_line(argc, argv, desc), vm);
		po::notify(vm);
	} catch (const po::error& e) {
		std::cerr << "bench-sync: " << e.what() << "\n" << desc << "\n";
		return 2;
	}
	if (vm.count("help")) {
		std::cout << desc << "\n";
		return 0;
	}
	if (o.flows < 64 || o.flows >= o.capacity || !(o.churn >= 0 && o.churn < 0.5) || o.passes < 1) {
		std::cerr << "bench-sync: bad option values (64 <= flows < 131072, churn in [0, 0.5))\n";
		return 2;
	}
	const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (long(o.lcore) >= cpus)
		o.lcore = 0;
	bench::eal_config eal;
	eal.program = "bench-sync";
	eal.lcores = std::to_string(o.lcore);
	if (!bench::start_eal(eal))
		return 1;
	const std::string machine = bench::machine();
	// Loopback ports of this process's own: the pid keeps parallel runs apart.
	const uint16_t base_port = uint16_t(30000 + (getpid() % 10000) * 2);
	bool ok = true;
	if (cases.find("pipeline") != std::string::npos)
		ok &= pipeline_case(o, machine, base_port, uint16_t(base_port + 1));
	// Engines alone: anywhere, as a daemon's control lcore would be.
	on_cpus(all_cpus(), [&] {
		if (cases.find("events") != std::string::npos)
			ok &= events_case(o, machine, uint16_t(base_port + 2), uint16_t(base_port + 3));
		if (cases.find("bulk") != std::string::npos)
			ok &= bulk_case(o, machine, uint16_t(base_port + 4), uint16_t(base_port + 5));
	});
	rte_eal_cleanup();
	return ok ? 0 : 1;
}
