#include "dataplane/ports.h"

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace portcullis::dataplane {

const uint8_t symmetric_rss_key[40] = {
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
};

namespace {

// IP addresses only: a TCP or UDP hash would send a datagram's later fragments (no ports) and the ICMP
// errors about a flow (other protocol, quoted addresses) to other queues than the flow's own. The price
// is coarser spreading: all flows between two hosts share a queue (docs/workers.md).
constexpr uint64_t rss_ip_only = RTE_ETH_RSS_IP;

std::string port_name(uint16_t port)
{
	char name[RTE_ETH_NAME_MAX_LEN] = {};
	rte_eth_dev_get_name_by_port(port, name);
	return name;
}

// Queue = entry % queues, written out rather than trusted: the default table differs between drivers,
// and two ports must agree on it for a flow's two directions to meet on one worker.
bool program_reta(uint16_t port, uint16_t reta_size, uint32_t queues)
{
	if (reta_size == 0 || reta_size % RTE_ETH_RETA_GROUP_SIZE != 0)
		return false;
	std::vector<rte_eth_rss_reta_entry64> reta(reta_size / RTE_ETH_RETA_GROUP_SIZE);
	for (uint32_t i = 0; i < reta_size; ++i) {
		auto& group = reta[i / RTE_ETH_RETA_GROUP_SIZE];
		group.mask |= uint64_t(1) << (i % RTE_ETH_RETA_GROUP_SIZE);
		group.reta[i % RTE_ETH_RETA_GROUP_SIZE] = uint16_t(i % queues);
	}
	if (rte_eth_dev_rss_reta_update(port, reta.data(), reta_size) == 0)
		return true;
	// Some drivers refuse updates but already use this table: accept it if so.
	for (auto& group : reta)
		std::memset(group.reta, 0xff, sizeof(group.reta));
	if (rte_eth_dev_rss_reta_query(port, reta.data(), reta_size) != 0)
		return false;
	for (uint32_t i = 0; i < reta_size; ++i)
		if (reta[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE] != i % queues)
			return false;
	return true;
}

} // namespace

int resolve_port(const std::string& name_or_id)
{
	if (name_or_id.empty())
		return -1;
	char* end = nullptr;
	const long id = std::strtol(name_or_id.c_str(), &end, 10);
	if (end && *end == '\0')
		return rte_eth_dev_is_valid_port(uint16_t(id)) ? int(id) : -1;
	uint16_t port;
	if (rte_eth_dev_get_port_by_name(name_or_id.c_str(), &port) == 0)
		return port;
	return -1;
}

port_limits query_port(uint16_t port)
{
	port_limits l;
	rte_eth_dev_info info{};
	if (rte_eth_dev_info_get(port, &info) != 0)
		return l;
	l.max_rx_queues = info.max_rx_queues;
	l.max_tx_queues = info.max_tx_queues;
	l.ip_rss = (info.flow_type_rss_offloads & rss_ip_only) != 0;
	l.driver = info.driver_name ? info.driver_name : "";
	return l;
}

uint32_t max_workers_for(const std::vector<uint16_t>& ports, uint32_t wanted, std::string& why)
{
	why.clear();
	uint32_t n = wanted;
	for (uint16_t port : ports) {
		const port_limits l = query_port(port);
		if (l.max_tx_queues < n) {
			n = std::max<uint32_t>(1, l.max_tx_queues);
			why = "port " + port_name(port) + " (" + l.driver + ") has " + std::to_string(l.max_tx_queues) +
			      " TX queue(s), and each worker needs its own";
		}
	}
	return n;
}

std::string start_ports(const std::vector<uint16_t>& ports, const port_setup& setup, rte_mempool*& pool,
                        std::vector<port_state>& out)
{
	static_assert(default_mbuf_data_room == RTE_MBUF_DEFAULT_BUF_SIZE);
	pool = rte_pktmbuf_pool_create("portcullis_mbufs", setup.mbufs, setup.mbuf_cache, 0, setup.mbuf_data_room,
	                               int(rte_socket_id()));
	if (!pool)
		return "cannot create the mbuf pool (" + std::to_string(setup.mbufs) + " mbufs): " + rte_strerror(rte_errno);
	const uint32_t wanted = std::max<uint32_t>(1, setup.queues);
	for (uint16_t port : ports) {
		rte_eth_dev_info info{};
		if (rte_eth_dev_info_get(port, &info) != 0)
			return "port " + std::to_string(port) + ": cannot read device info";
		const std::string name = port_name(port);
		// Every RX queue a device has up to one per worker, RSS or not: af_packet with qpairs=N fans out
		// to N sockets whatever we ask, and a queue nobody set up would lose what lands on it.
		const uint32_t rxq = std::max<uint32_t>(1, std::min<uint32_t>(wanted, info.max_rx_queues));
		const uint32_t txq = std::min<uint32_t>(wanted, info.max_tx_queues);
		if (txq < wanted)
			return "port " + name + ": " + std::to_string(info.max_tx_queues) + " TX queue(s) for " +
			       std::to_string(wanted) + " workers (each needs its own; see max_workers_for)";

		rte_eth_conf conf{};
		std::vector<uint8_t> key;
		const uint64_t hf = rss_ip_only & info.flow_type_rss_offloads;
		bool symmetric = false;
		if (rxq > 1 && hf) {
			conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
			conf.rx_adv_conf.rss_conf.rss_hf = hf;
			if (setup.symmetric_rss && info.hash_key_size > 0) {
				key.resize(info.hash_key_size);
				for (size_t i = 0; i < key.size(); ++i)
					key[i] = symmetric_rss_key[i % 2];
				conf.rx_adv_conf.rss_conf.rss_key = key.data();
				conf.rx_adv_conf.rss_conf.rss_key_len = uint8_t(key.size());
				symmetric = true;
			}
		}
		int rc = rte_eth_dev_configure(port, uint16_t(rxq), uint16_t(txq), &conf);
		if (rc != 0)
			return "port " + name + ": configure failed: " + rte_strerror(-rc);
		uint16_t rxd = setup.rx_descriptors, txd = setup.tx_descriptors;
		rte_eth_dev_adjust_nb_rx_tx_desc(port, &rxd, &txd);
		const int socket = rte_eth_dev_socket_id(port);
		const unsigned sock = socket < 0 ? unsigned(SOCKET_ID_ANY) : unsigned(socket);
		for (uint32_t q = 0; q < rxq; ++q) {
			rc = rte_eth_rx_queue_setup(port, uint16_t(q), rxd, sock, nullptr, pool);
			if (rc != 0)
				return "port " + name + ": RX queue setup failed: " + rte_strerror(-rc);
		}
		for (uint32_t q = 0; q < txq; ++q) {
			rc = rte_eth_tx_queue_setup(port, uint16_t(q), txd, sock, nullptr);
			if (rc != 0)
				return "port " + name + ": TX queue setup failed: " + rte_strerror(-rc);
		}
		rc = rte_eth_dev_start(port);
		if (rc != 0)
			return "port " + name + ": start failed: " + rte_strerror(-rc);
		if (setup.promiscuous)
			rte_eth_promiscuous_enable(port);  // a bump in the wire forwards frames for every MAC

		port_state st{port, name, info.driver_name ? info.driver_name : "", rxq, txq};
		if (rxq > 1 && hf) {
			rte_eth_rss_conf applied{};
			if (rte_eth_dev_rss_hash_conf_get(port, &applied) == 0)
				st.rss_hf = applied.rss_hf;
			st.reta_size = info.reta_size;
			st.symmetric_rss = symmetric && st.rss_hf != 0 && program_reta(port, info.reta_size, rxq);
		}
		out.push_back(std::move(st));
	}
	return {};
}

void stop_ports(const std::vector<port_state>& ports)
{
	for (const auto& p : ports) {
		rte_eth_dev_stop(p.port);
		rte_eth_dev_close(p.port);
	}
}

worker_plan plan_workers(const port_state& outside, const port_state& inside, bool replay, uint32_t workers)
{
	worker_plan plan;
	workers = std::max<uint32_t>(1, workers);
	for (const port_state* p : {&outside, &inside})
		if (p->tx_queues < workers) {
			plan.error = "port " + p->name + " has " + std::to_string(p->tx_queues) + " TX queue(s) for " +
			             std::to_string(workers) + " workers";
			return plan;
		}
	std::vector<const port_state*> polled{&outside};
	if (!replay)
		polled.push_back(&inside);

	// NIC RSS alone keeps a flow on one worker only if every polled port spreads by the same symmetric
	// hash into one queue per worker through the same table. Anything less, and software decides.
	plan.nic_rss = workers > 1;
	for (const port_state* p : polled)
		plan.nic_rss = plan.nic_rss && p->symmetric_rss && p->rx_queues == workers && p->driver == outside.driver &&
		               p->reta_size == outside.reta_size;
	plan.distribute = workers > 1 && !plan.nic_rss;

	const uint16_t out_p = outside.port, in_p = inside.port;
	plan.queues.resize(workers);
	for (uint32_t w = 0; w < workers; ++w) {
		auto map = [&](const port_state& p, int8_t direction, uint16_t tx_in, uint16_t tx_out) {
			rx_queue_map q{p.port, uint16_t(w), direction, {tx_in, tx_out}, uint16_t(w)};
			// A worker past the port's queues polls nothing there, but keeps the map: it says how to treat
			// and where to send what other workers hand over from that port.
			q.poll = w < p.rx_queues;
			if (!q.poll)
				q.queue = 0;
			q.distribute = plan.distribute && q.poll;
			plan.queues[w].push_back(q);
		};
		if (replay) {
			map(outside, -1, in_p, out_p);
		} else {
			map(outside, 0, in_p, in_p);
			map(inside, 1, out_p, out_p);
		}
	}
	return plan;
}

std::vector<rte_ring*> make_handoff_rings(uint32_t workers, uint32_t size, const std::string& prefix,
                                          std::string& error)
{
	std::vector<rte_ring*> rings;
	for (uint32_t w = 0; w < workers; ++w) {
		const std::string name = prefix + std::to_string(w);
		// Many workers may hand over to w (multi-producer); only w takes out (single consumer).
		rte_ring* r = rte_ring_create(name.c_str(), rte_align32pow2(size), int(rte_socket_id()), RING_F_SC_DEQ);
		if (!r) {
			error = "cannot create handoff ring " + name + ": " + rte_strerror(rte_errno);
			free_handoff_rings(rings);
			return {};
		}
		rings.push_back(r);
	}
	return rings;
}

void free_handoff_rings(std::vector<rte_ring*>& rings)
{
	for (rte_ring* r : rings) {
		void* obj;
		while (rte_ring_dequeue(r, &obj) == 0)
			rte_pktmbuf_free(static_cast<rte_mbuf*>(obj));
		rte_ring_free(r);
	}
	rings.clear();
}

} // namespace portcullis::dataplane
