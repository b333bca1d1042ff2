// The EAL as the daemon brings it up: the argument words it is given (from eal.args and the command
// line), and whether dpdk-dumpcap will be able to attach to what that EAL set up.
//
// Threads: the appliance's main thread; capture_unavailable after rte_eal_init.
#pragma once

#include <string>
#include <vector>

#include "daemon/settings.h"

namespace portcullis::daemon {

// argv for rte_eal_init: "portcullisd", the words of eal.args with {capture} and {output} replaced by
// replay.capture and replay.output-dir, then the words after "--" on the command line.
std::vector<std::string> eal_arguments(const settings& s);

// What dpdk-dumpcap cannot attach to, in words; empty when it can.
std::string capture_unavailable();

} // namespace portcullis::daemon
