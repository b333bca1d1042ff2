#include "daemon/xdp_check.h"

#include <bpf/libbpf.h>
#include <net/if.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#ifndef AF_XDP
#define AF_XDP 44
#endif

namespace portcullis::daemon {
namespace {

// The devargs of a --vdev value: "net_af_xdp0,iface=eth0,start_queue=0" -> {name: net_af_xdp0, ...}.
std::map<std::string, std::string> devargs(const std::string& value)
{
	std::map<std::string, std::string> args;
	std::stringstream in(value);
	std::string item;
	std::getline(in, item, ',');
	args["name"] = item;
	while (std::getline(in, item, ','))
		if (const auto eq = item.find('='); eq != std::string::npos)
			args[item.substr(0, eq)] = item.substr(eq + 1);
	return args;
}

uint32_t number(const std::map<std::string, std::string>& a, const std::string& key, uint32_t otherwise)
{
	const auto it = a.find(key);
	return it == a.end() ? otherwise : uint32_t(std::strtoul(it->second.c_str(), nullptr, 10));
}

uint64_t free_hugepages()
{
	std::ifstream meminfo("/proc/meminfo");
	for (std::string line; std::getline(meminfo, line);)
		if (line.rfind("HugePages_Free:", 0) == 0)
			return std::strtoull(line.c_str() + 15, nullptr, 10);
	return 0;
}

} // namespace

std::vector<std::string> af_xdp_problems(const std::vector<std::string>& eal_words)
{
	std::vector<std::map<std::string, std::string>> devices;
	bool no_huge = false;
	for (size_t i = 0; i < eal_words.size(); ++i) {
		const std::string& w = eal_words[i];
		no_huge |= w == "--no-huge" || w == "--in-memory";
		std::string value;
		if (w.rfind("--vdev=", 0) == 0)
			value = w.substr(7);
		else if (w == "--vdev" && i + 1 < eal_words.size())
			value = eal_words[i + 1];
		if (value.rfind("net_af_xdp", 0) == 0)
			devices.push_back(devargs(value));
	}
	std::vector<std::string> problems;
	if (devices.empty())
		return problems;
	if (const int fd = socket(AF_XDP, SOCK_RAW, 0); fd < 0) {
		problems.push_back(errno == EAFNOSUPPORT ? "this kernel has no AF_XDP sockets (4.18 or later, CONFIG_XDP_SOCKETS): "
		                                           "net_af_xdp cannot work; use net_af_packet (drivers-config/af_packet.conf)"
		                                         : std::string("cannot open an AF_XDP socket (") + std::strerror(errno) +
		                                               "): net_af_xdp needs root or CAP_NET_RAW, CAP_BPF and CAP_NET_ADMIN");
	} else {
		close(fd);
	}
	if (!no_huge && free_hugepages() == 0)
		problems.push_back("no free hugepages, and the EAL is not given --no-huge: reserve some "
		                   "(scripts/hugepages.sh reserve) or add --no-huge to eal.args");
	for (const auto& d : devices) {
		const std::string name = d.at("name");
		const auto iface = d.find("iface");
		if (iface == d.end()) {
			problems.push_back(name + ": no iface= in its --vdev arguments");
			continue;
		}
		const std::string& ifc = iface->second;
		const unsigned index = if_nametoindex(ifc.c_str());
		if (index == 0) {
			problems.push_back(name + ": no interface named '" + ifc + "' here");
			continue;
		}
		const uint32_t first = number(d, "start_queue", 0), count = number(d, "queue_count", 1);
		uint32_t queues = 0;
		std::error_code ec;
		for (const auto& entry : std::filesystem::directory_iterator("/sys/class/net/" + ifc + "/queues", ec))
			queues += entry.path().filename().string().rfind("rx-", 0) == 0;
		if (queues && first + count > queues)
			problems.push_back(name + ": " + ifc + " has " + std::to_string(queues) + " RX queue(s), but start_queue=" +
			                   std::to_string(first) + " and queue_count=" + std::to_string(count) +
			                   " ask for up to queue " + std::to_string(first + count - 1) +
			                   " (ethtool -L " + ifc + " combined N)");
		__u32 prog = 0;
		if (bpf_xdp_query_id(int(index), 0, &prog) == 0 && prog != 0)
			problems.push_back(name + ": " + ifc + " already holds an XDP program (id " + std::to_string(prog) +
			                   "), from another tool or a run that did not end cleanly: `ip link set dev " + ifc +
			                   " xdp off` removes it (with libxdp's dispatcher on a mounted bpffs they can share)");
	}
	return problems;
}

} // namespace portcullis::daemon
