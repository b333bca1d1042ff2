#include "eal.h"

#include <cstdio>
#include <string>
#include <vector>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_log.h>

namespace portcullis::test {
namespace {
int eal_state = 0;  // 0 not tried, 1 up, -1 failed
}

bool init_eal(unsigned memory_mb)
{
	if (eal_state != 0)
		return eal_state > 0;
	// The brief's --in-memory cannot be combined with --no-huge in DPDK 22.11 (--no-huge implies legacy
	// memory, which --in-memory rejects). --no-shconf gives the same isolation here: no shared config,
	// anonymous memseg arrays, multi-process IPC off; with telemetry off too, no socket or file is shared,
	// so any number of test binaries run side by side under one fixed prefix (a per-pid prefix would leave
	// one empty runtime directory behind per run).
	std::vector<std::string> args = {"portcullis-test", "--no-huge", "-m", std::to_string(memory_mb), "--no-pci", "--no-shconf",
	                                 "--no-telemetry", "--file-prefix=portcullis-test", "-l", "0",
	                                 "--log-level=error"};
	std::vector<char*> argv;
	for (auto& a : args)
		argv.push_back(a.data());
	if (rte_eal_init(int(argv.size()), argv.data()) < 0) {
		std::fprintf(stderr, "rte_eal_init failed: %s\n", rte_strerror(rte_errno));
		eal_state = -1;
		return false;
	}
	// rte_acl logs an error each time a context needs more than its 8 tries; the backend then splits the
	// rule set (classify/acl.h) and the random sets of the tests do that on purpose, so keep it quiet.
	rte_log_set_level(RTE_LOGTYPE_ACL, RTE_LOG_CRIT);
	eal_state = 1;
	return true;
}

void cleanup_eal()
{
	if (eal_state > 0)
		rte_eal_cleanup();
	eal_state = 0;
}

} // namespace portcullis::test
