// Flow-state sync as the control socket and the metrics see it: the daemon provides the probe (its
// sync engine, lib/sync), lib/control only asks. Empty functions: sync is off.
//
// Threads: called from the control thread (requests) and the exporter's HTTP threads (status).
#pragma once

#include <functional>
#include <string>

#include "sync/sync.h"

namespace portcullis::control {

struct sync_probe {
	std::function<sync::sync_status()> status;
	std::function<std::string()> promote;  // standby -> active; what it did
	explicit operator bool() const { return bool(status); }
};

} // namespace portcullis::control
