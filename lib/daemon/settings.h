// What portcullisd runs with: the settings of every INI section and command-line option, the option
// table that fills them (boost::program_options, for the command line, the config files and the driver
// profile alike), and the checks that a value is one the daemon knows, before anything is started.
//
// Threads: the main thread, before the EAL; the appliance keeps its own copy afterwards.
#pragma once

#include <boost/program_options/options_description.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "dataplane/ports.h"
#include "flow/flow_state.h"

namespace portcullis::daemon {

// Exit codes of portcullisd (docs and the service unit rely on them).
inline constexpr int exit_ok = 0, exit_config = 1, exit_usage = 2, exit_runtime = 3;

struct settings {
	std::string rules_file;
	std::string rules_watch;  // etcd://HOST[:PORT]/KEY, or empty
	std::string eal_args;
	std::vector<std::string> eal_extra;  // after "--" on the command line
	std::string outside, inside, mode, inside_networks, drops;
	std::string capture, output_dir;
	uint32_t workers = 1;
	uint32_t handoff_ring = 4096;
	dataplane::port_setup ports;
	std::string rss;
	uint16_t burst = dataplane::default_burst;
	uint32_t flow_capacity = 1u << 20;
	std::string full_policy;
	bool tcp_loose_pickup = false;
	std::string tcp_window;
	std::string syncookies;
	uint32_t syncookies_rate = 50000;
	double syncookies_half_open = 0.25;
	uint32_t syncookie_mss = 1460;
	uint32_t syncookie_wscale = 7;
	bool pass_other_l2 = false;
	bool send_rejects = true;
	bool drop_martians = true;
	bool drop_land = true;
	bool pdump = true;
	std::string classifier;
	flow::timeouts idle;
	double duration = 0;
	uint32_t exit_when_idle_ms = 0;
	double stats_interval = 0;
	bool check_only = false;
	std::string control_socket;
	std::string metrics_listen;
	std::string log_target;
	uint32_t log_rate = 100;
	std::string control_group;
	// [sync]: flow-state sync with peers (lib/sync/sync.h); off while sync_listen is empty.
	std::string sync_listen;
	std::vector<std::string> sync_peers;
	std::string sync_key_file;
	std::string sync_role;
	uint32_t sync_interval_ms = 100;
	uint32_t sync_refresh = 30;
	uint32_t sync_defer_ms = 0;
};

// Every option, grouped by INI section as --help shows them, each stored into s when notified. The
// description refers to s: s must outlive it and the variables_map that it fills.
boost::program_options::options_description describe(settings& s);

// The first value that the daemon does not know (mode, policy, log target, classifier, worker count,
// a missing --rules), as the message to print after "portcullisd: "; empty when there is none.
std::string usage_error(const settings& s);

} // namespace portcullis::daemon
