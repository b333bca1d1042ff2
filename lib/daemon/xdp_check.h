// What stands in the way of the EAL's net_af_xdp devices, said before the EAL tries them: DPDK's own
// errors for these cases are a line about "channel info" or a failed probe.
//
// For each --vdev=net_af_xdp...,iface=IF in the EAL words: no AF_XDP in the kernel (or no right to open
// one), no such interface, fewer queues on it than start_queue + queue_count ask for, an XDP program
// already attached (left by another tool or a crashed run); and no free hugepages when the EAL is not
// told --no-huge or --in-memory. The daemon stops on any of them before the EAL starts.
#pragma once

#include <string>
#include <vector>

namespace portcullis::daemon {

// One line per problem found, naming the device and the interface; empty when there is no af_xdp device
// or nothing is wrong.
std::vector<std::string> af_xdp_problems(const std::vector<std::string>& eal_words);

} // namespace portcullis::daemon
