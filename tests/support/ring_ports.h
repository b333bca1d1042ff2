// Two in-memory ports (net_ring) and a packet pool, for tests that run a worker between them: a test
// enqueues frames on rx[side] (what arrives on that port) and dequeues what the worker transmitted from
// tx[side]. Side 0 is the outside port, side 1 the inside one.
//
// Threads: set up from main() or the first test, after the EAL (init_eal()); the rings are single-
// consumer, and single-producer on RX unless multi_producer_rx.
#pragma once

#include <cstdint>
#include <string>

struct rte_mempool;
struct rte_ring;

namespace portcullis::test {

struct ring_ports_options {
	unsigned ring_size = 1024;  // each RX and TX ring
	unsigned descriptors = 1024;
	unsigned mbufs = 4095;
	unsigned mbuf_cache = 0;
	bool multi_producer_rx = false;  // tests that inject from two threads
};

struct ring_ports {
	rte_mempool* pool = nullptr;
	rte_ring* rx[2] = {};
	rte_ring* tx[2] = {};
	uint16_t port[2] = {};
};

// Creates, configures and starts both ports; rings, ports and pool are named after `name` (unique per
// process). Throws std::runtime_error saying what failed.
ring_ports make_ring_ports(const std::string& name, const ring_ports_options& opt = {});
// Stops and closes both ports (before rte_eal_cleanup()).
void close_ring_ports(ring_ports& p);
// Frees every mbuf left on a ring.
void drain_ring(rte_ring* r);

} // namespace portcullis::test
