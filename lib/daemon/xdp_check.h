// What stands in the way of the EAL's net_af_xdp devices, said before the EAL tries them: DPDK's own
// errors for these cases are a line about "channel info" or a failed probe.
//
// For each --vdev=net_af_xdp...,iface=IF in the EAL words: no AF_XDP in the kernel (or no right to open
// one), no such interface, fewer queues on it than start_queue + queue_count ask for, another daemon on
// the same interface (its lock, below) or an AF_XDP socket of another process bound to one of those
// queues (where the kernel reports them: sock_diag, `ss --xdp`), either of which the EAL's failed probe
// would cut off by detaching its XDP program; and no free hugepages when the EAL is not told --no-huge. The daemon stops on any of them before the EAL starts. An XDP program left on the interface
// with no socket bound (a run that did not end cleanly) is only a warning: libxdp reuses or replaces it.
#pragma once

#include <string>
#include <vector>

namespace portcullis::daemon {

struct xdp_findings {
	std::vector<std::string> problems;  // each stops the daemon
	std::vector<std::string> warnings;
	// Open files holding a lock per interface (/run/lock/portcullis-xdp-IF.lock) for as long as they stay
	// open: the daemon keeps them until it exits, and the kernel lets them go if it dies.
	std::vector<int> locks;
};

// One line per finding, naming the device and the interface; empty when there is no af_xdp device or
// nothing is wrong.
xdp_findings af_xdp_findings(const std::vector<std::string>& eal_words);

} // namespace portcullis::daemon
