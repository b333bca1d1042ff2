#include "harness.h"

#include "eal.h"
#include "ring_ports.h"

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_eth_ring.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_rcu_qsbr.h>
#include <rte_ring.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace portcullis::test {
namespace {

ring_ports env;
bool env_up = false;

void drain(rte_ring* r) { drain_ring(r); }

} // namespace

bool init_environment()
{
	if (!init_eal())
		return false;
	try {
		env = make_ring_ports("metrics");
	} catch (const std::exception& e) {
		std::fprintf(stderr, "%s\n", e.what());
		return false;
	}
	env_up = true;
	return true;
}

void cleanup_environment()
{
	if (env_up)
		close_ring_ports(env);
	env_up = false;
	cleanup_eal();
}

firewall::firewall(const std::string& rules_text)
{
	for (int side = 0; side < 2; ++side) {
		drain(env.rx[side]);
		drain(env.tx[side]);
	}
	auto parsed = rules::parse_string(rules_text, "test.rules");
	if (!parsed.rules)
		throw std::runtime_error("bad test rules: " + rules::format(parsed.errors.front()));
	dataplane::worker_config wc;
	wc.flows.capacity = 1024;
	wc.flows.tsc_hz = rte_get_tsc_hz();
	wc.queues.push_back({env.port[outside], 0, 0, {env.port[inside], env.port[inside]}, 0});
	wc.queues.push_back({env.port[inside], 0, 1, {env.port[outside], env.port[outside]}, 0});
	runtime_ = std::make_unique<control::runtime>(std::vector<dataplane::worker_config>{wc}, std::move(*parsed.rules),
	                                              classify::backend::ours);
	if (!runtime_->error().empty())
		throw std::runtime_error("runtime: " + runtime_->error());
}

firewall::~firewall()
{
	for (int side = 0; side < 2; ++side) {
		drain(env.rx[side]);
		drain(env.tx[side]);
	}
}

void firewall::idle_polls(int n)
{
	rte_rcu_qsbr_thread_online(runtime_->rcu(), 0);
	for (int i = 0; i < n; ++i)
		runtime_->workers().front()->poll_once();
	rte_rcu_qsbr_thread_offline(runtime_->rcu(), 0);
}

uint16_t firewall::port(int side) const { return env.port[side]; }

void firewall::send(int side, const std::vector<bytes>& frames)
{
	for (const bytes& f : frames) {
		rte_mbuf* m = rte_pktmbuf_alloc(env.pool);
		if (!m)
			throw std::runtime_error("mbuf pool empty");
		char* data = rte_pktmbuf_append(m, uint16_t(f.size()));
		if (!data)
			throw std::runtime_error("frame too big for one mbuf");
		std::memcpy(data, f.data(), f.size());
		if (rte_ring_enqueue(env.rx[side], m) != 0)
			throw std::runtime_error("rx ring full");
	}
	// Poll the way worker::run() does: online in the QSBR variable while polling, offline after. A
	// worker that reported a quiescent state and stayed "online" would make the next hot swap wait for
	// it forever. A poll takes at most one burst per queue; the bound only guards against a worker that
	// stops taking packets.
	rte_rcu_qsbr_thread_online(runtime_->rcu(), 0);
	for (size_t polls = 0; rte_ring_count(env.rx[side]) > 0 && polls < frames.size() + 16; ++polls)
		runtime_->workers().front()->poll_once();
	rte_rcu_qsbr_thread_offline(runtime_->rcu(), 0);
	for (int s = 0; s < 2; ++s)
		drain(env.tx[s]);
}

std::map<std::string, double> samples(const std::string& page)
{
	std::map<std::string, double> out;
	std::istringstream in(page);
	for (std::string line; std::getline(in, line);) {
		if (line.empty() || line[0] == '#')
			continue;
		// Label values may hold spaces; the value is after the last one.
		const size_t space = line.rfind(' ');
		if (space == std::string::npos)
			continue;
		out[line.substr(0, space)] = std::strtod(line.c_str() + space + 1, nullptr);
	}
	return out;
}

std::optional<http_response> http_get(uint16_t port, const std::string& path, int timeout_ms)
{
	const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return std::nullopt;
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_port = htons(port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
		close(fd);
		return std::nullopt;
	}
	const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
	if (send(fd, request.data(), request.size(), MSG_NOSIGNAL) != ssize_t(request.size())) {
		close(fd);
		return std::nullopt;
	}
	std::string raw;
	char buf[16384];
	for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;)
		raw.append(buf, size_t(n));
	close(fd);
	const size_t end = raw.find("\r\n\r\n");
	if (raw.compare(0, 5, "HTTP/") != 0 || end == std::string::npos)
		return std::nullopt;
	http_response r;
	r.status = std::atoi(raw.c_str() + raw.find(' ') + 1);
	r.headers = raw.substr(0, end);
	r.body = raw.substr(end + 4);
	return r;
}

uint16_t free_port()
{
	const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof a;
	uint16_t port = 0;
	if (fd >= 0 && bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
	    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

std::string find_program(const std::string& name)
{
	const char* path = std::getenv("PATH");
	std::istringstream dirs(path ? path : "/usr/bin:/bin");
	for (std::string dir; std::getline(dirs, dir, ':');) {
		const std::string full = (dir.empty() ? "." : dir) + "/" + name;
		if (access(full.c_str(), X_OK) == 0)
			return full;
	}
	return {};
}

int run_program(const std::vector<std::string>& argv, const std::string& stdin_file, std::string& output)
{
	char out_template[] = "/tmp/portcullis-metrics-out-XXXXXX";
	const int out_fd = mkstemp(out_template);
	if (out_fd < 0)
		return -1;
	posix_spawn_file_actions_t actions;
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, 0, stdin_file.c_str(), O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&actions, out_fd, 1);
	posix_spawn_file_actions_adddup2(&actions, out_fd, 2);
	std::vector<char*> args;
	for (const auto& a : argv)
		args.push_back(const_cast<char*>(a.c_str()));
	args.push_back(nullptr);
	pid_t pid;
	const int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
	posix_spawn_file_actions_destroy(&actions);
	int status = -1;
	if (rc == 0)
		waitpid(pid, &status, 0);
	output.clear();
	lseek(out_fd, 0, SEEK_SET);
	char buf[4096];
	for (ssize_t n; (n = read(out_fd, buf, sizeof buf)) > 0;)
		output.append(buf, size_t(n));
	close(out_fd);
	unlink(out_template);
	if (rc != 0 || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

} // namespace portcullis::test
