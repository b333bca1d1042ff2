// NIC port setup for the daemon: resolve ports by name or id, size the mbuf pool, configure one RX and
// one TX queue per worker (symmetric RSS across them when the NIC can), start, and stop. Control plane
// only; called before the workers start and after they stop.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

struct rte_mempool;

namespace portcullis::dataplane {

struct port_setup {
	uint32_t queues = 1;           // RX and TX queues per port (one per worker)
	uint16_t rx_descriptors = 1024;
	uint16_t tx_descriptors = 1024;
	uint32_t mbufs = 16383;        // per pool; 2^n - 1 is what the mempool sizes best
	uint32_t mbuf_cache = 256;
	bool symmetric_rss = true;
	bool promiscuous = true;
};

// A port id from "3" or a device name ("net_pcap0", "0000:3b:00.0"); -1 if none.
int resolve_port(const std::string& name_or_id);

struct port_state {
	uint16_t port;
	std::string name;
	std::string driver;
	uint32_t queues;  // what the port actually got (at most what was asked)
};

// Sets up and starts the given ports sharing one mbuf pool. Returns an error message, empty on success.
std::string start_ports(const std::vector<uint16_t>& ports, const port_setup& setup, rte_mempool*& pool,
                        std::vector<port_state>& out);
void stop_ports(const std::vector<port_state>& ports);

// The RSS key that makes the Toeplitz hash symmetric (both directions of a flow hash alike): the 16-bit
// pattern 0x6d5a repeated, after Woo and Park, "Scalable TCP Session Monitoring with Symmetric RSS".
extern const uint8_t symmetric_rss_key[40];

} // namespace portcullis::dataplane
