// bench/flood/harness.h: bench-flood's data path: one worker between two ring ports, and how it is driven.
//
// The worker (dataplane::worker, the daemon's data path) runs the rules of a file between two net_ring
// ports set up by start_ports like the daemon's, with the daemon's two-port wiring: what arrives on the
// outside port leaves by the inside one, and back. Frames go in through a side's RX ring and come out of
// the other's TX ring; everything runs on the calling thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/dataplane.h"
#include "dataplane/ports.h"
#include "flood/traffic.h"

struct rte_ring;

namespace portcullis::bench::flood {

constexpr int outside = 0, inside = 1;

struct harness {
	rte_ring* rx[2] = {};
	rte_ring* tx[2] = {};
	uint16_t port[2] = {};
	rte_mempool* pool = nullptr;
	std::vector<dataplane::port_state> ports;
	std::unique_ptr<dataplane::compiled_policy> policy;
	std::atomic<dataplane::compiled_policy*> active{nullptr};
	std::unique_ptr<dataplane::worker> worker;
	dataplane::worker_config config;
	uint16_t burst = 32;

	// The ports, the policy compiled from rules_file, and a worker with a flow table of `capacity`
	// entries that evicts embryonic flows when full. Empty on success, else why not.
	std::string start(const std::string& rules_file, uint16_t burst_size, uint32_t capacity);
	// A fresh worker (an empty flow table) on the same ports, with SYN cookies as given.
	void restart_worker(dataplane::syncookie_mode cookies);

	// Frames into fresh mbufs on a side's RX ring. False when the pool or the ring has no room.
	bool inject(int side, const tcp_frame* const* frames, uint16_t n);

	// Frees what the worker transmitted on a side; returns how many.
	uint32_t drain(int side);
	// As drain, keeping a copy of each frame's first 64 bytes.
	uint32_t drain(int side, std::vector<tcp_frame>& frames);

	// One poll round over both ports, timed.
	uint64_t timed_poll();

	void stop();
};

// The three-way handshakes of the first n connections (see connections) through the worker, a burst at
// a time. With SYN cookies always on, the proxy's dance (the client's SYN answered with a cookie, its ACK
// turned into the SYN to the server, the server's SYN-ACK answered by the proxy), and c's segments to
// the server then acknowledge their cookie, as a real client's would. Empty on success.
std::string handshake(harness& h, uint32_t n, connections& c);

// Removes the flood's half-open flows as the control thread would a minute later; established flows stay.
void expire_flood(harness& h);

struct census {
	uint64_t live = 0, established = 0;
};

census count_flows(const flow::flow_table& t);

} // namespace portcullis::bench::flood
