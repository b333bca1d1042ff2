#include "pipeline.h"

#include "eal.h"

#include <rte_eal.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <unistd.h>

namespace portcullis::test {

environment::environment()
{
	if (!init_eal(512))
		throw std::runtime_error("EAL init failed");
	// Multi-producer RX rings: the swap test injects from two threads.
	ports = make_ring_ports("pipe", {.ring_size = 4096, .mbufs = 16383, .mbuf_cache = 256, .multi_producer_rx = true});
	pool = ports.pool;
	for (int side = 0; side < 2; ++side) {
		rx[side] = ports.rx[side];
		tx[side] = ports.tx[side];
		port[side] = ports.port[side];
	}
}

environment& env()
{
	static environment e;
	return e;
}

pipeline::pipeline(const std::string& rules_text, const pipeline_options& opt)
{
	environment& e = env();
	for (int side = 0; side < 2; ++side)
		sent(side);  // leftovers of an earlier test
	dataplane::worker_config wc;
	wc.flows.capacity = opt.flow_capacity;
	wc.flows.policy = opt.policy;
	wc.flows.tsc_hz = 1'000'000'000;
	wc.drop_martians = opt.drop_martians;
	wc.drop_land = opt.drop_land;
	wc.tcp_window = opt.tcp_window;
	wc.syncookies = opt.syncookies;
	wc.forwarding = opt.forwarding;
	wc.sync_installs = opt.sync_installs;
	wc.sync_defer_ms = opt.sync_defer_ms;
	if (opt.replay) {
		wc.queues.push_back({e.port[outside], 0, -1, {e.port[inside], e.port[outside]}, 0});
		wc.inside4 = opt.inside4;
		if (wc.inside4.empty())
			wc.inside4 = {{0xC6120100u, 0xC61201FFu}};  // 198.18.1.0/24
	} else {
		wc.queues.push_back({e.port[outside], 0, 0, {e.port[inside], e.port[inside]}, 0});
		wc.queues.push_back({e.port[inside], 0, 1, {e.port[outside], e.port[outside]}, 0});
	}
	swap_rules(rules_text);
	wc.conns = &conns_;
	worker_ = std::make_unique<dataplane::worker>(wc, active_, nullptr);
}

pipeline::~pipeline()
{
	for (int side = 0; side < 2; ++side)
		sent(side);
}

void pipeline::swap_rules(const std::string& rules_text)
{
	auto parsed = rules::parse_string(rules_text, "test.rules");
	if (!parsed.rules) {
		std::string all;
		for (const auto& d : parsed.errors)
			all += rules::format(d) + "\n";
		throw std::runtime_error("bad test rules:\n" + all);
	}
	auto c = dataplane::compile(std::move(*parsed.rules), policies_.size() + 1, 1, classify::backend::ours, {}, &conns_);
	if (!c.policy)
		throw std::runtime_error(c.error);
	policies_.push_back(std::move(c.policy));
	active_.store(policies_.back().get(), std::memory_order_release);
}

void pipeline::inject(int side, const bytes& frame)
{
	// Frames larger than one mbuf (jumbo frames) become a chain, as a NIC with scatter RX delivers them.
	constexpr size_t segment = 2048;
	rte_mbuf* head = nullptr;
	size_t at = 0;
	do {
		rte_mbuf* m = rte_pktmbuf_alloc(env().pool);
		if (!m)
			throw std::runtime_error("mbuf pool empty");
		const size_t len = std::min(segment, frame.size() - at);
		char* data = rte_pktmbuf_append(m, uint16_t(len));
		if (len && !data)
			throw std::runtime_error("cannot append to an mbuf");
		if (len)
			std::memcpy(data, frame.data() + at, len);
		at += len;
		if (!head)
			head = m;
		else if (rte_pktmbuf_chain(head, m) != 0)
			throw std::runtime_error("cannot chain mbufs");
	} while (at < frame.size());
	if (rte_ring_enqueue(env().rx[side], head) != 0)
		throw std::runtime_error("rx ring full");
}

void pipeline::run() { worker_->poll_once(); }

std::vector<bytes> pipeline::sent(int side)
{
	std::vector<bytes> out;
	void* obj;
	while (rte_ring_dequeue(env().tx[side], &obj) == 0) {
		auto* m = static_cast<rte_mbuf*>(obj);
		bytes frame;
		for (rte_mbuf* seg = m; seg; seg = seg->next) {
			const uint8_t* d = rte_pktmbuf_mtod(seg, const uint8_t*);
			frame.insert(frame.end(), d, d + seg->data_len);
		}
		out.push_back(std::move(frame));
		rte_pktmbuf_free(m);
	}
	return out;
}

pipeline::result pipeline::send(int side, const bytes& frame)
{
	inject(side, frame);
	run();
	return {sent(outside), sent(inside)};
}

} // namespace portcullis::test
