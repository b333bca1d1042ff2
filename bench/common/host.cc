// bench/common/host.cc: the description of the machine (host.h).
#include "common/host.h"

#include <unistd.h>

#include <fstream>

namespace portcullis::bench {

std::string cpu_model()
{
	std::ifstream in("/proc/cpuinfo");
	for (std::string line; std::getline(in, line);)
		if (line.rfind("model name", 0) == 0)
			return line.substr(line.find(':') + 2);
	return "unknown";
}

std::string machine() { return cpu_model() + ", " + std::to_string(sysconf(_SC_NPROCESSORS_ONLN)) + " cpus"; }

} // namespace portcullis::bench
