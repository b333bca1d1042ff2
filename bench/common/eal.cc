// bench/common/eal.cc: EAL start-up for benches (eal.h).
#include "common/eal.h"

#include <unistd.h>

#include <cstdio>

#include <rte_eal.h>
#include <rte_errno.h>

namespace portcullis::bench {

std::vector<std::string> eal_arguments(const eal_config& c)
{
	std::vector<std::string> words = {c.program};
	words.push_back(c.lcores.find('@') == std::string::npos ? "-l" : "--lcores");
	words.push_back(c.lcores);
	for (const char* w : {"--no-huge", "-m"})
		words.push_back(w);
	words.push_back(std::to_string(c.memory_mb));
	for (const char* w : {"--no-pci", "--no-shconf", "--no-telemetry"})
		words.push_back(w);
	words.push_back("--file-prefix=" + (c.prefix.empty() ? c.program : c.prefix) + "-" + std::to_string(getpid()));
	words.push_back("--log-level=" + c.log_level);
	for (const auto& v : c.vdevs)
		words.push_back("--vdev=" + v);
	words.insert(words.end(), c.extra.begin(), c.extra.end());
	return words;
}

bool start_eal(const eal_config& c)
{
	std::vector<std::string> words = eal_arguments(c);
	std::vector<char*> argv;
	for (auto& w : words)
		argv.push_back(w.data());
	if (rte_eal_init(int(argv.size()), argv.data()) < 0) {
		std::fprintf(stderr, "%s: EAL init failed: %s\n", c.program.c_str(), rte_strerror(rte_errno));
		return false;
	}
	return true;
}

} // namespace portcullis::bench
