// NIC port setup for the daemon: resolve ports by name or id, size the mbuf pool, configure RX and TX
// queues for the workers, start, and stop; and the plan that says which worker polls which queue.
//
// Queues and workers (docs/workers.md): every worker transmits on a TX queue of its own on every port
// (a TX queue is not thread-safe), so a port gets one TX queue per worker, and the number of workers is
// bounded by the port with the fewest TX queues (see max_workers_for). RX queues: one per worker as far
// as the device has them, spread by RSS on the IP addresses only, with a symmetric key, so that both
// directions of a flow, its fragments and the ICMP errors about it land on one queue. When that cannot
// be had on every polled port (a single-queue device, no RSS, RSS with a key that is not symmetric, two
// ports that would spread differently), the workers that poll a queue hand each packet to its owner
// (owner_of in dataplane.h) and the others only take handoffs: see plan_workers.
//
// Control plane only; called before the workers start and after they stop.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/dataplane.h"

struct rte_mempool;
struct rte_ring;

namespace portcullis::dataplane {

// DPDK's default mbuf data room (RTE_MBUF_DEFAULT_BUF_SIZE): a whole 2 KB frame behind 128 bytes of
// headroom.
inline constexpr uint16_t default_mbuf_data_room = 2048 + 128;

struct port_setup {
	uint32_t queues = 1;           // workers: RX queues wanted per port, and TX queues needed per port
	uint16_t rx_descriptors = 1024;
	uint16_t tx_descriptors = 1024;
	uint32_t mbufs = 16383;        // per pool; 2^n - 1 is what the mempool sizes best
	uint32_t mbuf_cache = 256;
	// Each mbuf's data room, headroom included. A bench replaying small frames from memory may take less.
	uint16_t mbuf_data_room = default_mbuf_data_room;
	bool symmetric_rss = true;
	bool promiscuous = true;
};

// A port id from "3" or a device name ("net_pcap0", "0000:3b:00.0"); -1 if none.
int resolve_port(const std::string& name_or_id);

// What a device offers before it is configured.
struct port_limits {
	uint16_t max_rx_queues = 0, max_tx_queues = 0;
	bool ip_rss = false;   // can spread IPv4/IPv6 by addresses
	std::string driver;
};
port_limits query_port(uint16_t port);

// The most workers these ports can serve: one TX queue each on every port. why says which port limits
// it (empty when nothing does below `wanted`).
uint32_t max_workers_for(const std::vector<uint16_t>& ports, uint32_t wanted, std::string& why);

struct port_state {
	uint16_t port;
	std::string name;
	std::string driver;
	uint32_t rx_queues;    // what the port got: at most what was asked, at most what the device has
	uint32_t tx_queues;
	// RX is spread over rx_queues by RSS on IP addresses with the symmetric key (both directions alike),
	// and the indirection table is queue = entry % rx_queues.
	bool symmetric_rss = false;
	uint16_t reta_size = 0;
	uint64_t rss_hf = 0;   // what the device says it hashes on, after configuration
};

// Sets up and starts the given ports sharing one mbuf pool. Returns an error message, empty on success.
std::string start_ports(const std::vector<uint16_t>& ports, const port_setup& setup, rte_mempool*& pool,
                        std::vector<port_state>& out);
void stop_ports(const std::vector<port_state>& ports);

// Which worker polls what. queues[w] is worker w's rx_queue_map list (their direction, TX ports and
// TX queue filled in); distribute is true when some of them hand packets over, and the workers then
// need inbox rings (make_handoff_rings).
struct worker_plan {
	std::vector<std::vector<rx_queue_map>> queues;
	bool distribute = false;
	bool nic_rss = false;   // every polled port spreads by symmetric RSS, one queue per worker
	std::string error;      // a port without a TX queue per worker
};
// Pair mode: outside and inside are both polled. Replay mode (outside == inside is not required; the
// inside port only transmits): the outside port carries both directions, decided per packet.
worker_plan plan_workers(const port_state& outside, const port_state& inside, bool replay, uint32_t workers);

// One multi-producer, single-consumer ring per worker, named "<prefix><w>". Empty on failure (error set).
std::vector<rte_ring*> make_handoff_rings(uint32_t workers, uint32_t size, const std::string& prefix,
                                          std::string& error);
// After the workers have stopped: frees what is still queued in the rings, then the rings.
void free_handoff_rings(std::vector<rte_ring*>& rings);

// The RSS key that makes the Toeplitz hash symmetric (both directions of a flow hash alike): the 16-bit
// pattern 0x6d5a repeated, after Woo and Park, "Scalable TCP Session Monitoring with Symmetric RSS".
// Any length made of the repeated pattern is symmetric; start_ports repeats it to the device's key size
// (40 bytes on most NICs, 52 on i40e and ice).
extern const uint8_t symmetric_rss_key[40];

} // namespace portcullis::dataplane
