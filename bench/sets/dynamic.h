// bench-sets, cases add_to_scan and per_source_limit: rules that act on what the data path sees, a set
// filled by `add-to` during a scan and a `limit per-source` against one flooding source. See dynamic.cc
// for what is measured and bench/README.md for how to read it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace portcullis::bench::dynamic {

struct options {
	// add_to_scan
	uint32_t scan_sources = 50'000;  // distinct scanning addresses, one SYN each per pass of the capture
	double scan_share = 0.03;        // of the capture's packets (the rest: established flows)
	uint32_t rounds = 9;             // rounds of windows without the scan, with it, trap only, interleaved
	double window_s = 0.2;
	double fill_max_s = 4.0;         // the scan's warm-up: until every scanner is in the set, at most this
	// per_source_limit
	double flood_pps = 500'000;      // the flooder's SYNs a second (hping3 --flood from one host)
	double innocent_cps = 50;        // the other source's new connections a second
	double limit_window_s = 1.5;     // measured, after a warm-up of limit_warmup_s
	double limit_warmup_s = 0.3;
	uint64_t seed = 1;
	bool run_scan = false, run_limit = false;
};

// add_to_scan replays two captures (net_pcap, infinite_rx) into a sink (net_null); per_source_limit
// makes its in-memory port itself at run time. prepare() writes the captures when add_to_scan runs.
struct environment {
	std::string scan_capture, plain_capture;  // removed by run_add_to_scan once net_pcap has read them
	size_t capture_packets = 0;
	std::vector<uint32_t> scanners;  // the scan's sources, host order
	std::vector<std::string> vdevs;
	unsigned memory_mb = 0;  // what the replay's mbufs need beyond the other cases' EAL memory
	void remove_captures();
};
environment prepare(const options& o);

// Each runs its case after start_eal (lcores 0-1) and prints its JSON line; false when something failed.
bool run_add_to_scan(const options& o, environment& env);
bool run_per_source_limit(const options& o);

} // namespace portcullis::bench::dynamic
