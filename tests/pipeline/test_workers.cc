// Two workers on real threads between two single-queue ports, wired as the daemon wires them
// (start_ports, plan_workers, make_handoff_rings): worker 0 polls both ports and hands each packet to the
// worker owning its address pair; worker 1 only takes handoffs. Each port has one RX ring and a TX ring
// per worker, so the test sees which worker sent what. Flows open from both sides, their replies come
// from the other side, and every packet must end up judged by the one worker that holds its flow.
// Bounded (phases wait for the counters, with a generous deadline against hangs); no timing thresholds.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <thread>
#include <tuple>

#include "control/runtime.h"
#include "dataplane/ports.h"
#include "flow/conntrack.h"
#include "pipeline.h"

using namespace portcullis;
using namespace portcullis::test;
namespace dp = portcullis::dataplane;

namespace {

constexpr uint32_t nworkers = 2;
constexpr uint32_t nflows = 400;
constexpr uint32_t ndenied = 40;

// Inbound flows to the inside servers' port 80 (TCP) and 53 (UDP) are allowed, anything else inbound is
// dropped; outbound is allowed by default.
constexpr const char* rules_text =
	"default in drop\n"
	"default out allow\n"
	"allow in tcp to 198.18.1.0/24 port 80\n"
	"allow in udp to 198.18.1.0/24 port 53\n"
	"allow in tcp to 198.18.1.0/24 port 8443 limit 10/h burst 10\n"  // rule 2: phase 4
	"allow in tcp to 198.18.1.0/24 port 8444 max-conn 5 per-source\n";  // rule 3: phase 5

constexpr uint32_t limited_rule = 2, limit_burst = 10, nlimited = 100;
constexpr uint32_t conn_rule = 3, max_conn = 5, nconn = 40;

struct flow_case {
	bool tcp;
	bool inbound;  // opened from the outside
	uint32_t client, server;
	uint16_t cport, sport;
	uint32_t isn_c = 1000, isn_s = 5000;
	int opener_side() const { return inbound ? outside : inside; }
	int responder_side() const { return inbound ? inside : outside; }
	bytes open() const
	{
		return tcp ? tcp4(client, cport, server, sport, flow::tcp_flag::syn, isn_c) : udp4(client, cport, server, sport);
	}
	bytes reply() const
	{
		return tcp ? tcp4(server, sport, client, cport, flow::tcp_flag::syn | flow::tcp_flag::ack, isn_s, isn_c + 1)
		           : udp4(server, sport, client, cport);
	}
	bytes finish() const
	{
		return tcp ? tcp4(client, cport, server, sport, flow::tcp_flag::ack, isn_c + 1, isn_s + 1)
		           : udp4(client, cport, server, sport);
	}
};

std::vector<flow_case> make_flows()
{
	std::vector<flow_case> flows;
	for (uint32_t i = 0; i < nflows; ++i) {
		flow_case f;
		f.tcp = i % 2 == 0;
		f.inbound = (i / 2) % 2 == 0;
		const uint32_t far = 0xCB007101 + (i * 13) % 200;     // 203.0.113.x, outside
		const uint32_t near = 0xC6120101 + (i * 37) % 250;    // 198.18.1.x, inside
		f.client = f.inbound ? far : near;
		f.server = f.inbound ? near : far;
		f.cport = uint16_t(10000 + i);
		f.sport = f.inbound ? (f.tcp ? 80 : 53) : (f.tcp ? 443 : 123);
		flows.push_back(f);
	}
	return flows;
}

packet::parsed parse(const bytes& frame)
{
	packet::parsed p{};
	packet::parse_first_segment(frame.data(), uint32_t(frame.size()), uint32_t(frame.size()), p);
	return p;
}

// (src, dst, sport, dport, proto) of a frame: how a transmitted frame is matched to its flow.
using tuple5 = std::tuple<uint32_t, uint32_t, uint16_t, uint16_t, uint8_t>;
tuple5 tuple_of(const bytes& frame)
{
	const packet::parsed p = parse(frame);
	return {p.src.v4, p.dst.v4, p.sport, p.dport, p.proto};
}

uint64_t load(const uint64_t& v) { return __atomic_load_n(&v, __ATOMIC_RELAXED); }

// A single-RX-queue port with a TX ring per worker, like af_packet without fanout or a pcap file.
struct ring_port {
	rte_ring* rx = nullptr;
	rte_ring* tx[nworkers] = {};
	uint16_t id = 0;
};

ring_port make_port(const std::string& name)
{
	ring_port p;
	// Multi-producer RX: the test injects; the worker (one thread) receives.
	p.rx = rte_ring_create((name + "_rx").c_str(), 4096, 0, RING_F_SC_DEQ);
	for (uint32_t w = 0; w < nworkers; ++w)
		p.tx[w] = rte_ring_create((name + "_tx" + std::to_string(w)).c_str(), 4096, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
	const int id = rte_eth_from_rings(name.c_str(), &p.rx, 1, p.tx, nworkers, 0);
	if (id < 0)
		throw std::runtime_error("cannot create ring port " + name);
	p.id = uint16_t(id);
	return p;
}

void inject(ring_port& p, const bytes& frame)
{
	rte_mbuf* m = rte_pktmbuf_alloc(env().pool);
	REQUIRE(m);
	std::memcpy(rte_pktmbuf_append(m, uint16_t(frame.size())), frame.data(), frame.size());
	REQUIRE(rte_ring_enqueue(p.rx, m) == 0);
}

struct sent_frame {
	bytes frame;
	uint32_t worker;  // whose TX queue it left by
};

std::vector<sent_frame> drain(ring_port& p)
{
	std::vector<sent_frame> out;
	for (uint32_t w = 0; w < nworkers; ++w) {
		void* obj;
		while (rte_ring_dequeue(p.tx[w], &obj) == 0) {
			auto* m = static_cast<rte_mbuf*>(obj);
			const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
			out.push_back({bytes(d, d + m->data_len), w});
			rte_pktmbuf_free(m);
		}
	}
	return out;
}

// Every packet the workers have finished with: transmitted or dropped (no rejects in these rules).
uint64_t done(const control::runtime& rt)
{
	uint64_t n = 0;
	for (const auto& w : rt.workers()) {
		const auto& c = w->counters();
		for (uint32_t p = 0; p < dp::max_ports; ++p)
			n += load(c.tx_packets[p]);
		for (size_t r = 0; r < dp::drop_reason_count; ++r)
			n += load(c.drops[r]);
	}
	return n;
}

} // namespace

TEST_CASE("two workers on single-queue ports: each flow lives on its owner, and every reply passes")
{
	env();  // the EAL and the test mbuf pool
	ring_port port[2] = {make_port("wk_out"), make_port("wk_in")};

	dp::port_setup setup;
	setup.queues = nworkers;
	setup.mbufs = 4095;
	rte_mempool* pool = nullptr;
	std::vector<dp::port_state> states;
	REQUIRE(dp::start_ports({port[outside].id, port[inside].id}, setup, pool, states) == "");
	REQUIRE(states.size() == 2);
	CHECK(states[0].rx_queues == 1);
	CHECK(states[0].tx_queues == nworkers);

	const dp::worker_plan plan = dp::plan_workers(states[0], states[1], false, nworkers);
	REQUIRE(plan.error.empty());
	REQUIRE(plan.distribute);
	CHECK_FALSE(plan.nic_rss);
	REQUIRE(plan.queues.size() == nworkers);
	for (const auto& q : plan.queues[0])
		CHECK((q.poll && q.distribute && q.tx_queue == 0));
	for (const auto& q : plan.queues[1])
		CHECK((!q.poll && q.tx_queue == 1));

	std::string err;
	std::vector<rte_ring*> handoff = dp::make_handoff_rings(nworkers, 4096, "test_inbox", err);
	REQUIRE(handoff.size() == nworkers);

	std::vector<dp::worker_config> configs(nworkers);
	for (uint32_t w = 0; w < nworkers; ++w) {
		configs[w].flows.capacity = 4096;
		configs[w].flows.tsc_hz = rte_get_tsc_hz();
		configs[w].queues = plan.queues[w];
		configs[w].handoff = handoff;
	}
	auto parsed_rules = rules::parse_string(rules_text, "workers.rules");
	REQUIRE(parsed_rules.rules);
	auto rt = std::make_unique<control::runtime>(configs, std::move(*parsed_rules.rules), classify::backend::ours);
	REQUIRE(rt->error().empty());

	std::atomic<bool> stop{false};
	std::vector<std::thread> threads;
	for (uint32_t w = 0; w < nworkers; ++w)
		threads.emplace_back([&rt, &stop, w] { rt->workers()[w]->run(stop); });

	uint64_t injected = 0;
	// Waits until the workers have finished every packet injected so far; the deadline only guards
	// against a hang (a lost packet), it measures nothing.
	auto settle = [&] {
		const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
		while (done(*rt) < injected && std::chrono::steady_clock::now() < deadline)
			std::this_thread::sleep_for(std::chrono::milliseconds(1));
		REQUIRE(done(*rt) == injected);
	};

	const std::vector<flow_case> flows = make_flows();
	std::map<tuple5, uint32_t> flow_of_reply;
	for (uint32_t i = 0; i < flows.size(); ++i)
		flow_of_reply[tuple_of(flows[i].reply())] = i;
	auto owner = [](const bytes& frame) { return dp::owner_of(parse(frame), nworkers); };

	// 1. Openers from both sides, and inbound connections the rules refuse.
	for (const auto& f : flows) {
		inject(port[f.opener_side()], f.open());
		++injected;
	}
	for (uint32_t i = 0; i < ndenied; ++i) {
		inject(port[outside], tcp4(0xCB007101 + i, uint16_t(30000 + i), 0xC6120101 + i, 22, flow::tcp_flag::syn));
		++injected;
	}
	settle();
	uint64_t forwarded = 0;
	for (auto& p : port)
		forwarded += drain(p).size();
	CHECK(forwarded == nflows);

	// 2. Replies from the responders: every one must pass, sent by the worker that owns its flow.
	for (const auto& f : flows) {
		inject(port[f.responder_side()], f.reply());
		++injected;
	}
	settle();
	std::vector<int> replied(flows.size(), 0);
	uint32_t by_wrong_worker = 0, to_wrong_side = 0;
	for (int side : {outside, inside})
		for (const sent_frame& s : drain(port[side])) {
			++forwarded;
			auto it = flow_of_reply.find(tuple_of(s.frame));
			REQUIRE(it != flow_of_reply.end());
			const flow_case& f = flows[it->second];
			replied[it->second]++;
			to_wrong_side += side != f.opener_side();
			by_wrong_worker += s.worker != owner(f.open());
		}
	CHECK(std::count(replied.begin(), replied.end(), 1) == int(flows.size()));
	CHECK(to_wrong_side == 0);
	CHECK(by_wrong_worker == 0);

	// 3. The openers' final handshake ACKs (and a second UDP datagram).
	for (const auto& f : flows) {
		inject(port[f.opener_side()], f.finish());
		++injected;
	}
	settle();
	for (auto& p : port)
		forwarded += drain(p).size();

	// 4. A limited rule under new flows from many sources, judged by both workers: the bucket is shared,
	// so the whole firewall lets exactly `burst` flows through (per-worker buckets would let twice that).
	uint32_t limited_by[nworkers] = {};
	for (uint32_t i = 0; i < nlimited; ++i) {
		const bytes syn = tcp4(0xC6130001 + i * 7, uint16_t(20000 + i), 0xC6120101, 8443, flow::tcp_flag::syn);
		limited_by[owner(syn)]++;
		inject(port[outside], syn);
		++injected;
	}
	settle();
	CHECK(limited_by[0] > 0);
	CHECK(limited_by[1] > 0);
	const size_t passed = drain(port[inside]).size();
	forwarded += passed;
	CHECK(passed == limit_burst);
	CHECK(rt->policy().total(limited_rule).packets == limit_burst);
	CHECK(rt->policy().total(limited_rule).over_limit == nlimited - limit_burst);

	// 5. max-conn per source, one source's new flows to several servers, judged by both workers (flows
	// go to workers by address pair): the count is shared, so the firewall lets max_conn of them open
	// (one more at most, when both workers admit at the same instant).
	uint32_t conn_by[nworkers] = {};
	for (uint32_t i = 0; i < nconn; ++i) {
		const bytes syn = tcp4(0xC6130F01, uint16_t(30000 + i), 0xC6120101 + i % 8, 8444, flow::tcp_flag::syn);
		conn_by[owner(syn)]++;
		inject(port[outside], syn);
		++injected;
	}
	settle();
	CHECK(conn_by[0] > 0);
	CHECK(conn_by[1] > 0);
	const size_t conn_passed = drain(port[inside]).size();
	forwarded += conn_passed;
	CHECK(conn_passed >= max_conn);
	CHECK(conn_passed <= max_conn + nworkers - 1);
	CHECK(rt->policy().total(conn_rule).over_limit == nconn - conn_passed);

	stop = true;
	for (auto& t : threads)
		t.join();

	// Every flow is in exactly one table: its owner's, and established if TCP.
	uint32_t owned[nworkers] = {};
	uint32_t in_one_table = 0, in_owner = 0, established = 0;
	for (const auto& f : flows) {
		const bytes frame = f.open();
		const packet::parsed p = parse(frame);
		bool reversed;
		const flow::flow_key key = flow::make_key(p.family, p.proto, p.src.v6, p.dst.v6, p.sport, p.dport, reversed);
		const uint64_t hash = flow::hash_key(key);
		uint32_t holders = 0, holder = 0;
		for (uint32_t w = 0; w < nworkers; ++w)
			if (const flow::flow_entry* e = rt->workers()[w]->flows().lookup(key, hash)) {
				++holders;
				holder = w;
				established += f.tcp && e->state == flow::flow_state::tcp_established;
			}
		in_one_table += holders == 1;
		in_owner += holders == 1 && holder == owner(frame);
		owned[holder] += holders == 1;
	}
	CHECK(in_one_table == nflows);
	CHECK(in_owner == nflows);
	CHECK(established == nflows / 2);
	for (uint32_t w = 0; w < nworkers; ++w) {
		INFO("worker " << w);
		CHECK(owned[w] > 0);
	}

	// Counters: every injected packet received once, by the worker that judged it; the distributor's
	// handoffs are exactly what worker 1 received; forwarded plus dropped is everything.
	uint64_t rx = 0, tx = 0, drops = 0, verdicts = 0;
	for (const auto& w : rt->workers()) {
		const auto& c = w->counters();
		for (uint32_t p = 0; p < dp::max_ports; ++p) {
			rx += c.rx_packets[p];
			tx += c.tx_packets[p];
		}
		for (size_t r = 0; r < dp::drop_reason_count; ++r)
			drops += c.drops[r];
		for (int d = 0; d < 2; ++d)
			for (int v = 0; v < 3; ++v)
				verdicts += c.packets[d][v];
		CHECK(c.drops[size_t(dp::drop_reason::handoff_full)] == 0);
		CHECK(c.drops[size_t(dp::drop_reason::tx_full)] == 0);
		// Bytes sent are the bytes of what each worker let through (allowed, or rejected with its answer).
		uint64_t tx_bytes = 0, passed_bytes = 0;
		for (uint32_t p = 0; p < dp::max_ports; ++p)
			tx_bytes += c.tx_bytes[p];
		for (int d = 0; d < 2; ++d)
			passed_bytes += c.bytes[d][size_t(dp::verdict::allow)] + c.bytes[d][size_t(dp::verdict::reject)];
		CHECK(tx_bytes == passed_bytes);
		CHECK(tx_bytes > 0);
	}
	const auto& c0 = rt->workers()[0]->counters();
	const auto& c1 = rt->workers()[1]->counters();
	uint64_t rx1 = 0;
	for (uint32_t p = 0; p < dp::max_ports; ++p)
		rx1 += c1.rx_packets[p];
	CHECK(rx == injected);
	CHECK(verdicts == injected);
	CHECK(tx == forwarded);
	CHECK(tx + drops == injected);
	CHECK(drops == ndenied + nlimited - limit_burst + nconn - conn_passed);
	CHECK(c0.handed_off > 0);
	CHECK(c0.handed_off == rx1);
	CHECK(c1.handed_off == 0);

	rt.reset();
	dp::free_handoff_rings(handoff);
	dp::stop_ports(states);
}
