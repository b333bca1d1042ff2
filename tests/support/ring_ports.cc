#include "ring_ports.h"

#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include <stdexcept>

namespace portcullis::test {

ring_ports make_ring_ports(const std::string& name, const ring_ports_options& opt)
{
	ring_ports p;
	p.pool = rte_pktmbuf_pool_create((name + "_pool").c_str(), opt.mbufs, opt.mbuf_cache, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
	if (!p.pool)
		throw std::runtime_error(name + ": cannot create the mbuf pool");
	for (int side = 0; side < 2; ++side) {
		const std::string n = name + std::to_string(side);
		p.rx[side] = rte_ring_create((n + "rx").c_str(), opt.ring_size, 0,
		                             opt.multi_producer_rx ? RING_F_SC_DEQ : RING_F_SP_ENQ | RING_F_SC_DEQ);
		p.tx[side] = rte_ring_create((n + "tx").c_str(), opt.ring_size, 0, RING_F_SP_ENQ | RING_F_SC_DEQ);
		if (!p.rx[side] || !p.tx[side])
			throw std::runtime_error(n + ": cannot create the rings");
		const int id = rte_eth_from_rings(n.c_str(), &p.rx[side], 1, &p.tx[side], 1, 0);
		if (id < 0)
			throw std::runtime_error(n + ": cannot create the ring port");
		p.port[side] = uint16_t(id);
		rte_eth_conf conf{};
		if (rte_eth_dev_configure(p.port[side], 1, 1, &conf) != 0 ||
		    rte_eth_rx_queue_setup(p.port[side], 0, opt.descriptors, 0, nullptr, p.pool) != 0 ||
		    rte_eth_tx_queue_setup(p.port[side], 0, opt.descriptors, 0, nullptr) != 0 ||
		    rte_eth_dev_start(p.port[side]) != 0)
			throw std::runtime_error(n + ": cannot start the ring port");
	}
	return p;
}

void close_ring_ports(ring_ports& p)
{
	for (int side = 0; side < 2; ++side) {
		rte_eth_dev_stop(p.port[side]);
		rte_eth_dev_close(p.port[side]);
	}
}

void drain_ring(rte_ring* r)
{
	void* obj;
	while (r && rte_ring_dequeue(r, &obj) == 0)
		rte_pktmbuf_free(static_cast<rte_mbuf*>(obj));
}

} // namespace portcullis::test
