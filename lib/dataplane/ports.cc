#include "dataplane/ports.h"

#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include <cstdlib>
#include <cstring>

namespace portcullis::dataplane {

const uint8_t symmetric_rss_key[40] = {
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
};

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

std::string start_ports(const std::vector<uint16_t>& ports, const port_setup& setup, rte_mempool*& pool,
                        std::vector<port_state>& out)
{
	pool = rte_pktmbuf_pool_create("portcullis_mbufs", setup.mbufs, setup.mbuf_cache, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
	                               int(rte_socket_id()));
	if (!pool)
		return "cannot create the mbuf pool (" + std::to_string(setup.mbufs) + " mbufs): " + rte_strerror(rte_errno);
	for (uint16_t port : ports) {
		rte_eth_dev_info info{};
		if (rte_eth_dev_info_get(port, &info) != 0)
			return "port " + std::to_string(port) + ": cannot read device info";
		char name[RTE_ETH_NAME_MAX_LEN] = {};
		rte_eth_dev_get_name_by_port(port, name);
		uint32_t queues = setup.queues;
		if (queues > info.max_rx_queues)
			queues = info.max_rx_queues;
		if (queues > info.max_tx_queues)
			queues = info.max_tx_queues;
		if (queues < 1)
			queues = 1;

		rte_eth_conf conf{};
		if (queues > 1 && info.flow_type_rss_offloads) {
			conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
			conf.rx_adv_conf.rss_conf.rss_hf = (RTE_ETH_RSS_IP | RTE_ETH_RSS_TCP | RTE_ETH_RSS_UDP) & info.flow_type_rss_offloads;
			if (setup.symmetric_rss && info.hash_key_size == sizeof(symmetric_rss_key)) {
				conf.rx_adv_conf.rss_conf.rss_key = const_cast<uint8_t*>(symmetric_rss_key);
				conf.rx_adv_conf.rss_conf.rss_key_len = sizeof(symmetric_rss_key);
			}
		}
		int rc = rte_eth_dev_configure(port, uint16_t(queues), uint16_t(queues), &conf);
		if (rc != 0)
			return std::string("port ") + name + ": configure failed: " + rte_strerror(-rc);
		uint16_t rxd = setup.rx_descriptors, txd = setup.tx_descriptors;
		rte_eth_dev_adjust_nb_rx_tx_desc(port, &rxd, &txd);
		const int socket = rte_eth_dev_socket_id(port);
		for (uint32_t q = 0; q < queues; ++q) {
			rc = rte_eth_rx_queue_setup(port, uint16_t(q), rxd, socket < 0 ? SOCKET_ID_ANY : unsigned(socket), nullptr, pool);
			if (rc != 0)
				return std::string("port ") + name + ": RX queue setup failed: " + rte_strerror(-rc);
			rc = rte_eth_tx_queue_setup(port, uint16_t(q), txd, socket < 0 ? SOCKET_ID_ANY : unsigned(socket), nullptr);
			if (rc != 0)
				return std::string("port ") + name + ": TX queue setup failed: " + rte_strerror(-rc);
		}
		rc = rte_eth_dev_start(port);
		if (rc != 0)
			return std::string("port ") + name + ": start failed: " + rte_strerror(-rc);
		if (setup.promiscuous)
			rte_eth_promiscuous_enable(port);  // a bump in the wire forwards frames for every MAC
		out.push_back({port, name, info.driver_name ? info.driver_name : "", queues});
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

} // namespace portcullis::dataplane
