// bench/common/eal.h: the EAL a bench runs in. No hugepages (--no-huge -m), no PCI scan, no shared
// config file and no telemetry socket (--no-shconf --no-telemetry: a bench's EAL is private, the
// isolation --in-memory would give, which DPDK 22.11 refuses with --no-huge), and a file prefix holding
// the pid, so that benches and tests running at once on one machine do not meet. Ports are vdevs.
//
// start_eal may be called once per process (an EAL starts once); eal_arguments also gives the words for
// a DPDK program the bench starts itself (dpdk-testpmd), so that it runs in the same kind of EAL.
#pragma once

#include <string>
#include <vector>

namespace portcullis::bench {

struct eal_config {
	std::string program;            // argv[0], and the start of error messages
	std::string prefix;             // stem of the file prefix (the program when empty); "-<pid>" is added
	std::string lcores = "0";       // an -l list ("0", "0-1"), or an --lcores map when it has an '@'
	unsigned memory_mb = 1024;      // -m: memory without hugepages
	std::string log_level = "error";
	std::vector<std::string> vdevs; // each one --vdev=...
	std::vector<std::string> extra; // further EAL arguments, as they are
};

// The EAL's argv, program first.
std::vector<std::string> eal_arguments(const eal_config& c);

// rte_eal_init with those arguments; on failure, says why on stderr ("<program>: EAL init failed: ...").
bool start_eal(const eal_config& c);

} // namespace portcullis::bench
