// Rules marked `log`: the worker records, the control thread writes JSON lines, and a flood is
// rate-limited with what was suppressed reported.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <rte_mbuf.h>
#include <rte_ring.h>

#include <cstdio>
#include <sstream>
#include <thread>

#include "control/drop_log.h"
#include "control/runtime.h"
#include "pipeline.h"

using namespace portcullis;
using namespace portcullis::test;

namespace {

std::vector<std::string> lines_of(FILE* f)
{
	std::fflush(f);
	std::rewind(f);
	std::vector<std::string> out;
	char buf[4096];
	while (std::fgets(buf, sizeof(buf), f))
		out.emplace_back(buf);
	return out;
}

void inject(const bytes& frame)
{
	rte_mbuf* m = rte_pktmbuf_alloc(env().pool);
	REQUIRE(m);
	std::memcpy(rte_pktmbuf_append(m, uint16_t(frame.size())), frame.data(), frame.size());
	while (rte_ring_enqueue(env().rx[outside], m) != 0)
		std::this_thread::yield();
}

void drain_tx()
{
	void* obj;
	for (int side = 0; side < 2; ++side)
		while (rte_ring_dequeue(env().tx[side], &obj) == 0)
			rte_pktmbuf_free(static_cast<rte_mbuf*>(obj));
}

} // namespace

TEST_CASE("logged rules produce JSON lines, and a flood is rate-limited")
{
	environment& e = env();
	auto parsed = rules::parse_string("default in drop\ndrop log in udp to any port 9999 counter probe\n"
	                                  "allow in udp to 198.18.1.10 port 53\n",
	                                  "log.rules");
	REQUIRE(parsed.rules);
	dataplane::worker_config wc;
	wc.flows.capacity = 1024;
	wc.flows.tsc_hz = rte_get_tsc_hz();
	wc.log_rate = 50;
	wc.queues.push_back({e.port[outside], 0, 0, {e.port[inside], e.port[inside]}, 0});
	control::runtime rt({wc}, std::move(*parsed.rules), classify::backend::ours);
	REQUIRE(rt.error().empty());
	FILE* out = std::tmpfile();
	control::drop_log log(control::log_target::stdout_json, out);
	auto& w = *rt.workers()[0];

	// Wait a little so the worker's budget has filled (tokens accrue from its first record).
	for (int i = 0; i < 3; ++i) {
		inject(udp4(0xC6120005, uint16_t(1000 + i), 0xC612010A, 9999));
		w.poll_once();
		std::this_thread::sleep_for(std::chrono::milliseconds(30));
	}
	inject(udp4(0xC6120005, 1000, 0xC612010A, 53));  // allowed, not logged
	w.poll_once();
	drain_tx();
	log.flush(rt);
	auto lines = lines_of(out);
	REQUIRE(lines.size() == 3);
	for (const auto& l : lines) {
		CHECK(l.find("\"event\":\"rule\"") != std::string::npos);
		CHECK(l.find("\"verdict\":\"drop\"") != std::string::npos);
		CHECK(l.find("\"src\":\"198.18.0.5\"") != std::string::npos);
		CHECK(l.find("\"dst\":\"198.18.1.10\"") != std::string::npos);
		CHECK(l.find("\"dport\":9999") != std::string::npos);
		CHECK(l.find("\"rule\":\"probe\"") != std::string::npos);
		CHECK(l.find("\"file\":\"log.rules\",\"line\":2") != std::string::npos);
	}

	// A flood: 3000 logged packets at once. The worker's budget (50/s) lets a handful through and counts
	// the rest; the log says how many were suppressed.
	for (int i = 0; i < 3000; ++i) {
		inject(udp4(0xC6120000 + uint32_t(i % 250), uint16_t(2000 + i), 0xC612010A, 9999));
		if (i % 32 == 31) {
			w.poll_once();
			drain_tx();
		}
	}
	while (rte_ring_count(e.rx[outside]))
		w.poll_once();
	drain_tx();
	std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // one report a second at most
	log.flush(rt);
	lines = lines_of(out);
	const uint64_t suppressed = w.log().suppressed();
	CHECK(suppressed > 2900);
	CHECK(lines.size() < 3 + 100);
	CHECK(lines.back().find("\"event\":\"suppressed\",\"count\":" + std::to_string(suppressed)) != std::string::npos);
	std::fclose(out);
}
