// The callback-removal wrappers that keep a dpdk-dumpcap stop from freeing memory under a worker.
//
// Packet capture (rte_pdump, for dpdk-dumpcap). To start a capture, rte_pdump adds RX/TX callbacks that
// copy each packet into the mempool and ring of the dumpcap process; to stop it, it removes them and
// answers at once, and dumpcap frees that mempool and ring. DPDK 22.11 does not wait for a worker still
// inside a removed callback (rte_eth_remove_rx_callback leaves that to its caller): a worker preempted
// there went on copying into freed memory, which rte_free zeroes, so the pool's ops index read 0 — the
// first mempool driver loaded, octeontx_fpavf — and the daemon died in librte_mempool_octeontx (within
// a hundred dumpcap runs on two cores; docs/threat-model.md; tests/e2e/dumpcap.sh holds a worker there
// on purpose). The removals are therefore wrapped: after DPDK's own, they wait until every online worker
// has passed a quiescent point (the RCU of the rule swap: a worker reports one per poll round, after its
// bursts), and only then does pdump answer dumpcap.
//
// How the wrapping works: these are definitions of DPDK's own function names in the executable (this
// object is linked into portcullisd because the appliance calls set_capture_rcu). The executable's
// definitions come first in symbol lookup, so librte_pdump's calls land here; DPDK's own are the next
// definitions (RTLD_NEXT).
//
// Threads: set_capture_rcu on the appliance's main thread; the removals on the EAL's IPC thread.
#include "daemon/pdump_callbacks.h"

#include <dlfcn.h>

#include <rte_ethdev.h>
#include <rte_rcu_qsbr.h>

#include <cerrno>
#include <mutex>

namespace portcullis::daemon {

namespace {

std::mutex capture_mutex;
rte_rcu_qsbr* capture_rcu = nullptr;  // guarded by capture_mutex: set while the workers run

// On the EAL's IPC thread, which serves dumpcap's requests; about one poll round.
void wait_for_workers_past_callbacks()
{
	std::lock_guard lock(capture_mutex);
	if (capture_rcu)
		rte_rcu_qsbr_check(capture_rcu, rte_rcu_qsbr_start(capture_rcu), true);
}

template <class F>
F dpdk_definition(F, const char* name)
{
	return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

} // namespace

void set_capture_rcu(rte_rcu_qsbr* rcu)
{
	std::lock_guard lock(capture_mutex);
	capture_rcu = rcu;
}

} // namespace portcullis::daemon

extern "C" int rte_eth_remove_rx_callback(uint16_t port_id, uint16_t queue_id, const rte_eth_rxtx_callback* user_cb)
{
	using portcullis::daemon::dpdk_definition;
	static const auto dpdk = dpdk_definition(&rte_eth_remove_rx_callback, "rte_eth_remove_rx_callback");
	const int rc = dpdk ? dpdk(port_id, queue_id, user_cb) : -ENOTSUP;
	if (rc == 0)
		portcullis::daemon::wait_for_workers_past_callbacks();
	return rc;
}

extern "C" int rte_eth_remove_tx_callback(uint16_t port_id, uint16_t queue_id, const rte_eth_rxtx_callback* user_cb)
{
	using portcullis::daemon::dpdk_definition;
	static const auto dpdk = dpdk_definition(&rte_eth_remove_tx_callback, "rte_eth_remove_tx_callback");
	const int rc = dpdk ? dpdk(port_id, queue_id, user_cb) : -ENOTSUP;
	if (rc == 0)
		portcullis::daemon::wait_for_workers_past_callbacks();
	return rc;
}
