#include "daemon/xdp_check.h"

#include <bpf/libbpf.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/xdp_diag.h>
#include <fcntl.h>
#include <net/if.h>
#include <sys/file.h>
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

// Free hugepages of every size.
uint64_t free_hugepages()
{
	uint64_t free = 0;
	std::error_code ec;
	for (const auto& size : std::filesystem::directory_iterator("/sys/kernel/mm/hugepages", ec)) {
		std::ifstream count(size.path() / "free_hugepages");
		uint64_t n = 0;
		if (count >> n)
			free += n;
	}
	return free;
}

// The queues of ifindex that AF_XDP sockets are bound to now (sock_diag, as `ss --xdp` asks); empty when
// none, or when the kernel will not say.
std::vector<uint32_t> bound_xsk_queues(unsigned ifindex)
{
	std::vector<uint32_t> queues;
	const int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (fd < 0)
		return queues;
	struct {
		nlmsghdr header;
		xdp_diag_req request;
	} ask = {};
	ask.header.nlmsg_len = sizeof ask;
	ask.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	ask.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	ask.request.sdiag_family = AF_XDP;
	ask.request.xdiag_show = XDP_SHOW_INFO;
	if (send(fd, &ask, sizeof ask, 0) != ssize_t(sizeof ask)) {
		close(fd);
		return queues;
	}
	alignas(nlmsghdr) char buffer[16384];
	for (bool done = false; !done;) {
		const ssize_t got = recv(fd, buffer, sizeof buffer, 0);
		if (got <= 0)
			break;
		int left = int(got);
		for (auto* h = reinterpret_cast<nlmsghdr*>(buffer); NLMSG_OK(h, left); h = NLMSG_NEXT(h, left)) {
			if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR) {
				done = true;
				break;
			}
			const auto* message = static_cast<const xdp_diag_msg*>(NLMSG_DATA(h));
			int attributes = int(h->nlmsg_len) - int(NLMSG_LENGTH(sizeof *message));
			for (auto* a = reinterpret_cast<const nlattr*>(message + 1); attributes >= int(sizeof(nlattr)) &&
			                                                             a->nla_len >= sizeof(nlattr) &&
			                                                             int(a->nla_len) <= attributes;) {
				if (a->nla_type == XDP_DIAG_INFO && a->nla_len >= NLA_HDRLEN + sizeof(xdp_diag_info)) {
					const auto* info = reinterpret_cast<const xdp_diag_info*>(reinterpret_cast<const char*>(a) + NLA_HDRLEN);
					if (info->ifindex == ifindex)
						queues.push_back(info->queue_id);
				}
				const int step = int(NLA_ALIGN(a->nla_len));
				attributes -= step;
				a = reinterpret_cast<const nlattr*>(reinterpret_cast<const char*>(a) + step);
			}
		}
	}
	close(fd);
	return queues;
}

} // namespace

xdp_findings af_xdp_findings(const std::vector<std::string>& eal_words)
{
	std::vector<std::map<std::string, std::string>> devices;
	bool no_huge = false;
	for (size_t i = 0; i < eal_words.size(); ++i) {
		const std::string& w = eal_words[i];
		no_huge |= w == "--no-huge";
		std::string value;
		if (w.rfind("--vdev=", 0) == 0)
			value = w.substr(7);
		else if (w == "--vdev" && i + 1 < eal_words.size())
			value = eal_words[i + 1];
		if (value.rfind("net_af_xdp", 0) == 0)
			devices.push_back(devargs(value));
	}
	xdp_findings found;
	std::vector<std::string>& problems = found.problems;
	if (devices.empty())
		return found;
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
		// Another portcullisd on this interface holds its lock (ours, for every interface it uses).
		const std::string lock_dir = std::filesystem::is_directory("/run/lock") ? "/run/lock" : "/tmp";
		const std::string lock_path = lock_dir + "/portcullis-xdp-" + ifc + ".lock";
		if (const int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600); fd >= 0) {
			if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
				found.locks.push_back(fd);
			} else {
				close(fd);
				problems.push_back(name + ": another portcullisd uses " + ifc + " (it holds " + lock_path +
				                   "); starting would detach that one's XDP program");
				continue;
			}
		}
		std::string taken;
		for (const uint32_t queue : bound_xsk_queues(index))
			if (queue >= first && queue < first + count)
				taken += (taken.empty() ? "" : ", ") + std::to_string(queue);
		__u32 prog = 0;
		const bool attached = bpf_xdp_query_id(int(index), 0, &prog) == 0 && prog != 0;
		if (!taken.empty())
			problems.push_back(name + ": " + ifc + " queue(s) " + taken + " already have an AF_XDP socket of another "
			                   "process (another daemon on this interface?); starting would detach its XDP program");
		else if (attached)
			found.warnings.push_back(name + ": " + ifc + " holds an XDP program (id " + std::to_string(prog) +
			                         ") and no AF_XDP socket: left by a run that did not end cleanly, or another "
			                         "tool; libxdp reuses or replaces it (`ip link set dev " + ifc + " xdp off` removes it)");
	}
	return found;
}

} // namespace portcullis::daemon
