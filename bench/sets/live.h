// bench-sets, cases set_load_under_load and set_add: a file set of a running rule set changed while a
// worker forwards. See live.cc for what is measured and bench/README.md for how to read it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace portcullis::bench::live {

struct options {
	size_t feed_entries = 1'000'000;  // lines of each generated feed
	double feed6_share = 0.05;        // of them IPv6
	uint32_t loads = 5;               // runtime::set_load calls (--full: 10)
	uint32_t pushes = 3;              // runtime::push calls, the baseline (--full: 6)
	uint32_t adds = 200;              // runtime::set_add calls (set_add case)
	uint32_t filler_rules = 0;        // rules the traffic never meets, beside the feed's test and the allow
	double window_s = 1.0;            // forwarding rate without changes (mpps_without)
	uint64_t seed = 1;
	bool run_load = false, run_add = false;
};

// The EAL these cases need beside the lookup cases: two lcores (the control thread and one worker) and
// a replayed capture into a sink. prepare() writes the capture; the vdev arguments name it.
struct environment {
	std::string capture;  // removed by run() once net_pcap has read it
	std::vector<std::string> vdevs;
	std::string lcores = "0-1";
};
environment prepare();

// Runs the selected cases after start_eal; prints their JSON lines. False when something failed (no
// second lcore, a port, a feed the parser refused, a change that failed).
bool run(const options& o, environment& env);

} // namespace portcullis::bench::live
