// Why the daemon defines rte_eth_remove_rx_callback and rte_eth_remove_tx_callback itself: a
// use-after-free in DPDK 22.11's packet capture (rte_pdump, for dpdk-dumpcap), told in full in
// pdump_callbacks.cc. The wrappers there make a removal wait until every worker has left the removed
// callback, which they learn from the workers' RCU (the rule swap's QSBR variable).
//
// Threads: the appliance's main thread sets the RCU variable once the workers exist and clears it once
// they have stopped; the wrappers run on the EAL's IPC thread, which serves dumpcap's requests.
#pragma once

struct rte_rcu_qsbr;

namespace portcullis::daemon {

// The workers' QSBR variable that removals wait on; nullptr (the start) when no worker runs: then a
// removal has nothing to wait for.
void set_capture_rcu(rte_rcu_qsbr* rcu);

} // namespace portcullis::daemon
