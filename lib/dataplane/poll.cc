// The worker's poll loop: receive bursts, hand packets to their owning worker when software distributes
// (owner_of), process, transmit, and report quiescent points. Runs on the worker's lcore only.
#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include "dataplane/dataplane.h"
#include "inspect/inspect.h"

namespace portcullis::dataplane {

void worker::send(uint16_t port, uint16_t queue, rte_mbuf** pkts, uint16_t n, uint64_t bytes)
{
	const uint64_t start = rte_rdtsc();
	const uint16_t sent = rte_eth_tx_burst(port, queue, pkts, n);
	counters_.driver_tx_tsc += rte_rdtsc() - start;
	for (uint16_t i = sent; i < n; ++i)
		bytes -= pkts[i]->pkt_len;
	counters_.tx_packets[port] += sent;
	counters_.tx_bytes[port] += bytes;
	if (sent < n) {
		counters_.drops[size_t(drop_reason::tx_full)] += n - sent;
		rte_pktmbuf_free_bulk(pkts + sent, n - sent);
	}
}

uint32_t owner_of(const packet::parsed& p, uint32_t workers)
{
	const bool quoted = p.is_icmp_error();
	bool reversed;
	const flow::flow_key pair = flow::make_key(p.family, 0, quoted ? p.inner.src.v6 : p.src.v6,
	                                           quoted ? p.inner.dst.v6 : p.dst.v6, 0, 0, reversed);
	return uint32_t((flow::hash_key(pair) >> 32) % workers);
}

uint32_t owner_of_flow(const flow::flow_key& key, uint32_t workers)
{
	bool reversed;
	const flow::flow_key pair = flow::make_key(key.family, 0, key.a(), key.b(), 0, 0, reversed);
	return uint32_t((flow::hash_key(pair) >> 32) % workers);
}

const rx_queue_map* worker::queue_of_port(uint16_t port) const
{
	for (const rx_queue_map& q : config_.queues)
		if (q.port == port)
			return &q;
	return nullptr;
}

// Keeps this worker's packets at the front of pkts and hands the rest to their owners; returns how many
// stay. Parsing here is only for the addresses; the owner parses again (and counts) when it processes.
uint16_t worker::distribute(rte_mbuf** pkts, uint16_t n, uint16_t port)
{
	const uint32_t workers = uint32_t(config_.handoff.size());
	rte_mbuf* out[max_workers][max_burst];
	uint16_t out_n[max_workers] = {};
	uint16_t kept = 0;
	for (uint16_t i = 0; i < n; ++i) {
		packet::parsed p;
		packet::parse_first_segment(rte_pktmbuf_mtod(pkts[i], const uint8_t*), pkts[i]->data_len, pkts[i]->pkt_len, p);
		const uint32_t owner = p.family ? owner_of(p, workers) : config_.index;  // non-IP stays here
		if (owner == config_.index)
			pkts[kept++] = pkts[i];
		else {
			pkts[i]->port = port;  // not every PMD sets it; the owner needs it to know the packet's side
			out[owner][out_n[owner]++] = pkts[i];
		}
	}
	for (uint32_t w = 0; w < workers; ++w) {
		if (!out_n[w])
			continue;
		const unsigned sent = rte_ring_enqueue_burst(config_.handoff[w], reinterpret_cast<void* const*>(out[w]), out_n[w], nullptr);
		counters_.handed_off += sent;
		if (sent < out_n[w]) {
			counters_.drops[size_t(drop_reason::handoff_full)] += out_n[w] - sent;
			rte_pktmbuf_free_bulk(out[w] + sent, out_n[w] - sent);
		}
	}
	return kept;
}

uint32_t worker::poll_once()
{
	uint32_t total = 0;
	rte_mbuf* pkts[max_burst];
	for (const rx_queue_map& q : config_.queues) {
		if (!q.poll)
			continue;
		const uint64_t start = rte_rdtsc();
		uint16_t n = rte_eth_rx_burst(q.port, q.queue, pkts, config_.burst);
		const uint64_t received = rte_rdtsc();
		counters_.polls++;
		if (n == 0) {
			counters_.idle_polls++;
			counters_.idle_tsc += received - start;
			continue;
		}
		counters_.driver_rx_tsc += received - start;
		total += n;
		if (q.distribute && config_.handoff.size() > 1)
			n = distribute(pkts, n, q.port);
		if (n)
			process(pkts, n, q);
		counters_.busy_tsc += rte_rdtsc() - start;
	}
	// Packets other workers handed to this one, grouped by the port they came in on.
	// Up to two bursts a round: the distributing worker may hand over one burst per port it polls.
	for (int round = 0; round < 2 && config_.handoff.size() > 1; ++round) {
		const uint64_t start = rte_rdtsc();
		const unsigned n = rte_ring_dequeue_burst(config_.handoff[config_.index], reinterpret_cast<void**>(pkts),
		                                          config_.burst, nullptr);
		counters_.polls++;
		if (n == 0) {
			counters_.idle_polls++;
			counters_.idle_tsc += rte_rdtsc() - start;
			break;
		}
		// Another core just wrote these packets: fetch their first lines before parsing needs them.
		for (unsigned k = 0; k < n; ++k)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[k], void*));
		for (unsigned at = 0; at < n;) {
			unsigned end = at + 1;
			while (end < n && pkts[end]->port == pkts[at]->port)
				++end;
			if (const rx_queue_map* q = queue_of_port(pkts[at]->port))
				process(pkts + at, uint16_t(end - at), *q);
			else
				rte_pktmbuf_free_bulk(pkts + at, end - at);
			at = end;
		}
		if (n)
			counters_.busy_tsc += rte_rdtsc() - start;
		total += n;
	}
	if (config_.sync_installs)
		install_synced(rte_rdtsc());
	// Idle: give back the scan streams of flows that ended (expired, evicted) since they were opened.
	if (total == 0) {
		const compiled_policy* pol = policy_.load(std::memory_order_acquire);
		if (pol && pol->inspects)
			streams_.sweep(*pol->inspect_scratch[config_.index], 64, [&](uint32_t index) { return table_.live(index); });
	}
	table_.quiescent();
	if (rcu_)
		rte_rcu_qsbr_quiescent(rcu_, config_.index);
	return total;
}

void worker::run(const std::atomic<bool>& stop)
{
	if (rcu_)
		rte_rcu_qsbr_thread_online(rcu_, config_.index);
	while (!stop.load(std::memory_order_relaxed))
		poll_once();
	if (rcu_)
		rte_rcu_qsbr_thread_offline(rcu_, config_.index);
}

} // namespace portcullis::dataplane
