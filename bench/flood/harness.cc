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
	config.burst = burst_size;
	config.flows.capacity = capacity;
	config.flows.policy = flow::full_policy::evict_embryonic;
	config.flows.tsc_hz = rte_get_tsc_hz();
	config.queues.push_back({port[outside], 0, 0, {port[inside], port[inside]}, 0});
	config.queues.push_back({port[inside], 0, 1, {port[outside], port[outside]}, 0});
	burst = burst_size;
	restart_worker(dp::syncookie_mode::never);
	return {};
}

void harness::restart_worker(dp::syncookie_mode cookies)
{
	worker.reset();
	config.syncookies.mode = cookies;
	worker = std::make_unique<dp::worker>(config, active, nullptr);
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

uint32_t harness::drain(int side, std::vector<tcp_frame>& frames)
{
	uint32_t total = 0;
	void* objs[256];
	for (unsigned n; (n = rte_ring_dequeue_burst(tx[side], objs, 256, nullptr)) > 0;) {
		for (unsigned i = 0; i < n; ++i) {
			const rte_mbuf* m = static_cast<rte_mbuf*>(objs[i]);
			tcp_frame f{};
			std::memcpy(f.bytes, rte_pktmbuf_mtod(m, const uint8_t*), std::min<uint32_t>(m->data_len, sizeof f.bytes));
			frames.push_back(f);
		}
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

namespace {

uint32_t get32(const uint8_t* b) { return uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | b[3]; }
constexpr size_t tcp_seq_at = 14 + 20 + 4, tcp_ack_at = 14 + 20 + 8;  // in make_tcp4's frames

// One step of a handshake: m frames in on side `from`, each answered by one frame out on side `to`.
std::string step(harness& h, const std::vector<tcp_frame>& in, int from, int to, std::vector<tcp_frame>& out)
{
	const tcp_frame* f[dp::max_burst];
	for (size_t i = 0; i < in.size(); ++i)
		f[i] = &in[i];
	if (!h.inject(from, f, uint16_t(in.size())))
		return "cannot inject the handshakes";
	h.worker->poll_once();
	out.clear();
	const uint32_t passed = h.drain(to, out);
	h.drain(1 - to);
	if (passed != in.size())
		return "handshake packets dropped (" + std::to_string(in.size() - passed) + " of " + std::to_string(in.size()) +
		       "): do the rules allow inbound TCP to 198.18.1.10 ports 80 and 443?";
	return {};
}

} // namespace

std::string handshake(harness& h, uint32_t n, connections& c)
{
	namespace tf = flow::tcp_flag;
	const bool proxied = h.config.syncookies.mode == dp::syncookie_mode::always;
	for (uint32_t base = 0; base < n; base += h.burst) {
		const uint16_t m = uint16_t(std::min<uint32_t>(h.burst, n - base));
		std::vector<tcp_frame> syns, syn_acks, acks, out;
		for (uint32_t i = base; i < base + m; ++i) {
			const uint32_t client = client_net + (i % 1024);
			const uint16_t cport = uint16_t(20000 + i / 1024), sport = i % 2 ? https : http;
			const uint32_t cisn = 1000 + i, sisn = 500000 + i;
			syns.push_back(make_tcp4(client, cport, server, sport, tf::syn, cisn, 0, 0));
			syn_acks.push_back(make_tcp4(server, sport, client, cport, tf::syn | tf::ack, sisn, cisn + 1, 0));
			acks.push_back(make_tcp4(client, cport, server, sport, tf::ack, cisn + 1, sisn + 1, 0));
		}
		if (!proxied) {
			for (const auto& [frames, from] : {std::pair{&syns, outside}, std::pair{&syn_acks, inside}, std::pair{&acks, outside}})
				if (auto err = step(h, *frames, from, 1 - from, out); !err.empty())
					return err;
			continue;
		}
		// The proxy answers each SYN back to its client, in order; the client's ACK returns its cookie.
		if (auto err = step(h, syns, outside, outside, out); !err.empty())
			return err;
		for (uint16_t k = 0; k < m; ++k) {
			const uint32_t cookie = get32(out[k].bytes + tcp_seq_at);
			acks[k] = make_tcp4(client_net + ((base + k) % 1024), uint16_t(20000 + (base + k) / 1024), server,
			                   (base + k) % 2 ? https : http, tf::ack, 1000 + base + k + 1, cookie + 1, 0);
			tcp_frame& data = c.to_server[base + k];
			for (int b = 0; b < 4; ++b)
				data.bytes[tcp_ack_at + b] = uint8_t((cookie + 1) >> (24 - 8 * b));
		}
		if (auto err = step(h, acks, outside, inside, out); !err.empty())  // the SYNs to the server
			return err;
		if (auto err = step(h, syn_acks, inside, inside, out); !err.empty())  // answered by the proxy's ACKs
			return err;
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
