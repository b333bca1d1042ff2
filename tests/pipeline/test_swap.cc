// Hot swap under load: a worker thread forwards a steady stream while the control thread pushes
// alternating 10,000-rule sets. Packets both sets allow must all arrive; packets the current set forbids
// must not pass once its push has returned; the heap returns to its size after the first swaps.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <malloc.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <atomic>
#include <chrono>
#include <random>
#include <sstream>
#include <thread>

#include "control/runtime.h"
#include "pipeline.h"

using namespace portcullis;
using namespace portcullis::test;

namespace {

constexpr uint32_t client_base = 0xC6120000;  // 198.18.0.0/24, outside
constexpr uint32_t server = 0xC612010A;       // 198.18.1.10

// Two 10,002-rule sets: both allow UDP to the server's port 80; only `a` allows port 81. The filler rules
// (drops of other sources) make the compile realistic and never match the test traffic.
std::string rule_set(bool a)
{
	std::mt19937 rng(a ? 1 : 2);
	std::ostringstream out;
	out << "default in drop\ndefault out allow\n";
	out << "allow in udp to 198.18.1.10 port 80 counter both\n";
	out << (a ? "allow" : "drop") << " in udp to 198.18.1.10 port 81 counter only-a\n";
	for (int i = 0; i < 10000; ++i)
		out << "drop in udp from 198.19." << i / 250 << '.' << i % 250 << " to 198.18." << 2 + rng() % 200 << '.'
		    << 1 + rng() % 250 << " port " << 1024 + rng() % 60000 << '\n';
	return out.str();
}

// Sequence number and generation travel in the payload.
bytes probe(uint16_t sport, uint16_t dport, uint32_t seq, uint32_t generation)
{
	bytes payload(8);
	std::memcpy(payload.data(), &seq, 4);
	std::memcpy(payload.data() + 4, &generation, 4);
	return udp4(client_base + (seq % 200), sport, server, dport, payload);
}

rte_mbuf* to_mbuf(const bytes& frame)
{
	rte_mbuf* m = rte_pktmbuf_alloc(env().pool);
	if (m)
		std::memcpy(rte_pktmbuf_append(m, uint16_t(frame.size())), frame.data(), frame.size());
	return m;
}

size_t heap_in_use() { return mallinfo2().uordblks; }

} // namespace

TEST_CASE("rule pushes under load lose no allowed packet and let no forbidden one through")
{
	environment& e = env();
	const std::string set_a = rule_set(true), set_b = rule_set(false);
	auto parsed = rules::parse_string(set_a, "a.rules");
	REQUIRE(parsed.rules);

	dataplane::worker_config wc;
	// Room for every flow opened between two housekeeping rounds: this test is about swaps; table pressure
	// (where retired entries wait a grace period before reuse) has tests of its own.
	wc.flows.capacity = 1 << 18;
	wc.flows.tsc_hz = 1'000'000'000;
	wc.queues.push_back({e.port[outside], 0, 0, {e.port[inside], e.port[inside]}, 0});
	control::runtime rt({wc}, std::move(*parsed.rules), classify::backend::ours);
	REQUIRE(rt.error().empty());

	std::atomic<bool> stop_worker{false}, stop_traffic{false};
	std::thread worker([&] { rt.workers()[0]->run(stop_worker); });

	// Traffic: port-80 datagrams, each its own flow (new source port), as fast as the rings take them;
	// the same thread drains the inside port and sorts what arrives.
	std::atomic<uint64_t> sent80{0};
	uint64_t got80 = 0, got81_allowed = 0, got81_forbidden = 0;
	std::atomic<uint32_t> forbidden_generation_mask{0};  // bit g%32 set while generation g forbids port 81
	std::thread traffic([&] {
		uint32_t seq = 0;
		auto drain = [&] {
			void* objs[64];
			unsigned n;
			while ((n = rte_ring_dequeue_burst(e.tx[inside], objs, 64, nullptr)) > 0) {
				for (unsigned i = 0; i < n; ++i) {
					auto* m = static_cast<rte_mbuf*>(objs[i]);
					const auto* d = rte_pktmbuf_mtod(m, const uint8_t*);
					const uint16_t dport = uint16_t(d[36] << 8 | d[37]);
					uint32_t generation;
					std::memcpy(&generation, d + 42 + 4, 4);
					if (dport == 80)
						++got80;
					else if (forbidden_generation_mask.load() & (1u << (generation % 32)))
						++got81_forbidden;
					else
						++got81_allowed;
					rte_pktmbuf_free(m);
				}
			}
		};
		while (!stop_traffic.load()) {
			// Keep at most half a TX ring in flight, so the sink never overflows: a loss here would be the
			// test's, not the firewall's. Bounded, in case a packet does get lost.
			for (int spins = 0; sent80.load() - got80 > 2048 && spins < 1000000; ++spins)
				drain();
			for (int i = 0; i < 32; ++i) {
				rte_mbuf* m = to_mbuf(probe(uint16_t(1024 + seq % 60000), 80, seq, 0));
				if (!m)
					break;
				while (rte_ring_enqueue(e.rx[outside], m) != 0)
					drain();
				++seq;
				sent80.fetch_add(1);
			}
			drain();
		}
		// Let the worker finish what is queued.
		while (rte_ring_count(e.rx[outside]) > 0)
			drain();
		for (int i = 0; i < 1000; ++i) {
			drain();
			std::this_thread::yield();
		}
		drain();
	});

	size_t heap_after_warmup = 0;
	constexpr int pushes = 30;
	uint32_t probe_seq = 1u << 24;
	for (int i = 0; i < pushes; ++i) {
		// The daemon runs housekeeping every 20 ms; here twice a push: this call recycles what the one
		// after the probes retired (once the worker has passed a quiescent point), that one expires.
		rt.housekeeping(~uint64_t(0) >> 1, 1 << 20);
		const bool to_a = i % 2 == 1;
		const control::swap_report r = rt.push_text(to_a ? set_a : set_b, to_a ? "a.rules" : "b.rules");
		REQUIRE(r.ok);
		REQUIRE(r.rules == 10002);
		const uint32_t gen = uint32_t(r.generation);
		if (!to_a)
			forbidden_generation_mask.fetch_or(1u << (gen % 32));
		// Probes to port 81, tagged with the generation now active. Wait until the worker has taken them
		// before the next push, so each is judged by the set it is tagged with.
		for (int k = 0; k < 20; ++k) {
			rte_mbuf* m = to_mbuf(probe(uint16_t(2000 + k), 81, probe_seq++, gen));
			REQUIRE(m);
			while (rte_ring_enqueue(e.rx[outside], m) != 0)
				std::this_thread::yield();
		}
		while (rte_ring_count(e.rx[outside]) > 0)
			std::this_thread::yield();
		rt.housekeeping(~uint64_t(0) >> 1, 1 << 20);  // expire and recycle flows as the daemon would
		if (i == 3)
			heap_after_warmup = heap_in_use();
	}
	const size_t heap_at_end = heap_in_use();

	stop_traffic = true;
	traffic.join();
	stop_worker = true;
	worker.join();

	const auto& c = rt.workers()[0]->counters();
	INFO("sent80 " << sent80.load() << " got80 " << got80 << " tx_full " << c.drops[size_t(dataplane::drop_reason::tx_full)]
	               << " table_full " << c.drops[size_t(dataplane::drop_reason::flow_table_full)] << " (refused: full "
	               << rt.workers()[0]->flows().counters().refused_full.load() << ", buckets "
	               << rt.workers()[0]->flows().counters().refused_buckets.load() << ")");
	CHECK(sent80.load() > 10000);
	CHECK(got80 == sent80.load());
	CHECK(got81_forbidden == 0);
	CHECK(got81_allowed > 0);
	CHECK(rt.swaps_ok() == pushes);
	// Each push frees the set before it: 26 more pushes of 10,000-rule sets leave the heap where it was
	// (1 MiB of slack for allocator fragmentation; one set's classifiers alone take more than that).
	CHECK(heap_at_end <= heap_after_warmup + (1u << 20));
}

// dataplane::compile given a cancel flag: set before the call, nothing is built (abandoned, no policy);
// not set, the set compiles as without it.
TEST_CASE("compile with a set cancel flag is abandoned")
{
	env();
	std::atomic<bool> cancel{false};
	for (bool set : {true, false}) {
		INFO("cancel set: " << set);
		cancel = set;
		auto parsed = rules::parse_string(rule_set(true), "a.rules");
		REQUIRE(parsed.rules);
		auto c = dataplane::compile(std::move(*parsed.rules), 7, 1, classify::backend::ours, {}, nullptr, &cancel);
		CHECK(c.abandoned == set);
		CHECK((c.policy != nullptr) == !set);
		if (set)
			CHECK(c.error.find("abandoned") != std::string::npos);
		else
			CHECK(c.policy->generation == 7);
	}
}

// A push with the stopping flag raised (before it, once it is compiling, or by another thread while a
// large set is parsed or compiled) is abandoned: nothing is published and the old generation stays; with
// the flag down again pushes publish as before. (The outcome is asserted, not how long it took.)
TEST_CASE("a push while stopping is abandoned and the old generation stays")
{
	environment& e = env();
	auto parsed = rules::parse_string(rule_set(true), "a.rules");
	REQUIRE(parsed.rules);
	dataplane::worker_config wc;
	wc.flows.capacity = 1 << 12;
	wc.flows.tsc_hz = 1'000'000'000;
	wc.queues.push_back({e.port[outside], 0, 0, {e.port[inside], e.port[inside]}, 0});
	control::runtime rt({wc}, std::move(*parsed.rules), classify::backend::ours);
	REQUIRE(rt.error().empty());
	const std::string digest = rt.digest();
	std::atomic<bool> stopping{false};
	rt.abandon_pushes_when(stopping);
	std::vector<std::string> log;

	SECTION("raised before the push")
	{
		stopping = true;
		const control::swap_report r = rt.push_text(rule_set(false), "b.rules");
		CHECK(r.abandoned);
		CHECK(!r.ok);
	}
	SECTION("raised as the compile starts: the compile itself gives up")
	{
		rt.set_log([&](const std::string& line) {
			log.push_back(line);
			if (line.find("parsed, compiling") != std::string::npos)
				stopping = true;
		});
		const control::swap_report r = rt.push_text(rule_set(false), "b.rules");
		CHECK(r.abandoned);
		CHECK(!r.ok);
		// The compile began (the parse was not cut short) and the push was abandoned, not refused.
		REQUIRE(log.size() == 2);
		CHECK(log[0].find("10002 rules parsed, compiling") != std::string::npos);
		CHECK(log[1].find("abandoned (stopping)") != std::string::npos);
		CHECK(rt.swaps_failed() == 0);
	}
	SECTION("raised by another thread during a large push")
	{
		std::string big = rule_set(false);
		for (int i = 0; i < 200000; ++i)
			big += "drop in tcp from 198.19." + std::to_string(i / 256 % 256) + "." + std::to_string(i % 256) +
			       " to 198.18.9.1 port " + std::to_string(1 + i % 65000) + "\n";
		std::atomic<bool> started{false};
		std::thread setter([&] {
			while (!started.load())
				std::this_thread::yield();
			std::this_thread::sleep_for(std::chrono::milliseconds(5));
			stopping = true;
		});
		started = true;
		const control::swap_report r = rt.push_text(big, "big.rules");
		setter.join();
		CHECK(r.abandoned);
		CHECK(!r.ok);
	}
	CHECK(rt.policy().generation == 1);
	CHECK(rt.digest() == digest);
	CHECK(rt.swaps_ok() == 0);
	stopping = false;
	rt.set_log({});
	const control::swap_report r = rt.push_text(rule_set(false), "b.rules");
	CHECK(r.ok);
	CHECK(rt.policy().generation == 2);
}
