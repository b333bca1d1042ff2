// bench/flood/harness.cc: the worker between two ring ports, the handshakes, the flood's expiry (harness.h).
#include "flood/harness.h"

#include <algorithm>
#include <cstring>

#include <rte_cycles.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "flow/conntrack.h"
#include "rules/rules.h"

namespace portcullis::bench::flood {

namespace dp = portcullis::dataplane;

std::string harness::start(const std::string& rules_file, uint16_t burst_size, uint32_t capacity)
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

	auto parsed = rules::parse_file(rules_file);
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
	wc.burst = burst_size;
	wc.flows.capacity = capacity;
	wc.flows.policy = flow::full_policy::evict_embryonic;
	wc.flows.tsc_hz = rte_get_tsc_hz();
	wc.queues.push_back({port[outside], 0, 0, {port[inside], port[inside]}, 0});
	wc.queues.push_back({port[inside], 0, 1, {port[outside], port[outside]}, 0});
	worker = std::make_unique<dp::worker>(wc, active, nullptr);
	burst = burst_size;
	return {};
}

bool harness::inject(int side, const tcp_frame* const* frames, uint16_t n)
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

uint32_t harness::drain(int side)
{
	uint32_t total = 0;
	void* objs[256];
	for (unsigned n; (n = rte_ring_dequeue_burst(tx[side], objs, 256, nullptr)) > 0;) {
		rte_pktmbuf_free_bulk(reinterpret_cast<rte_mbuf**>(objs), n);
		total += n;
	}
	return total;
}

uint64_t harness::timed_poll()
{
	const uint64_t t0 = rte_rdtsc_precise();
	worker->poll_once();
	return rte_rdtsc_precise() - t0;
}

void harness::stop()
{
	worker.reset();
	dp::stop_ports(ports);
}

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

void expire_flood(harness& h)
{
	flow::flow_table& t = h.worker->flows();
	const uint64_t later = rte_rdtsc() + 60 * rte_get_tsc_hz();
	t.expire(later, UINT32_MAX);
	h.worker->poll_once();  // a quiescent point: the expired entries may be recycled
	t.expire(later, 0);     // recycles them into the free ring
}

census count_flows(const flow::flow_table& t)
{
	census c;
	t.for_each([&](const flow::flow_entry& e) {
		++c.live;
		c.established += e.state == flow::flow_state::tcp_established;
	});
	return c;
}

} // namespace portcullis::bench::flood
