// The rule feed a daemon follows besides its rules file (rules.watch: an etcd key), as the control
// socket's stats and the metrics report it. The daemon provides a probe; lib/control knows no etcd.
//
// Threads: the probe is called from the control thread (stats) and the exporter's HTTP threads.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace portcullis::control {

struct rules_feed_status {
	std::string url;         // e.g. etcd://10.0.0.1:2379/portcullis/site-a
	bool connected = false;  // watching now (false: connecting, or unreachable and retrying)
	std::string state;       // in words: "watching ... at revision N", "unreachable: ...", ...
	int64_t revision = 0;    // the newest revision of the key seen (active or refused)
};

using rules_feed_probe = std::function<rules_feed_status()>;

} // namespace portcullis::control
