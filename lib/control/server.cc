// The control socket (server.h): listen, check each peer's credentials, read requests, write responses.
// Each complete line goes to handle() (server_dispatch.cc); the commands are in server_{rules,flows,stats}.cc.
#include "control/server.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

namespace portcullis::control {
namespace {

using json = nlohmann::json;
using clock = std::chrono::steady_clock;

std::string errno_text() { return std::strerror(errno); }

// One response line. Rule files are bytes, not UTF-8, and rule texts and diagnostics quote them: what is
// not UTF-8 becomes U+FFFD instead of an exception from dump() that would end the daemon's control loop.
std::string printed(const json& response)
{
	return response.dump(-1, ' ', false, json::error_handler_t::replace);
}

// Supplementary groups of a process, from the "Groups:" line of /proc/<pid>/status.
std::vector<gid_t> supplementary_groups(pid_t pid)
{
	std::vector<gid_t> out;
	std::ifstream in("/proc/" + std::to_string(pid) + "/status");
	for (std::string line; std::getline(in, line);) {
		if (line.rfind("Groups:", 0) != 0)
			continue;
		std::istringstream words(line.substr(7));
		for (unsigned long g; words >> g;)
			out.push_back(gid_t(g));
		break;
	}
	return out;
}

std::optional<gid_t> resolve_group(const std::string& name)
{
	if (!name.empty() && name.find_first_not_of("0123456789") == std::string::npos)
		return gid_t(std::stoul(name));
	std::vector<char> buf(16384);
	group g{};
	group* found = nullptr;
	if (getgrnam_r(name.c_str(), &g, buf.data(), buf.size(), &found) != 0 || !found)
		return std::nullopt;
	return found->gr_gid;
}

} // namespace

server::server(runtime& rt, server_config config) : rt_(rt), config_(std::move(config))
{
	const auto gid = resolve_group(config_.group);
	if (!gid) {
		error_ = "control.group '" + config_.group + "' is not a known group";
		return;
	}
	gid_ = *gid;
	const std::string& path = config_.socket_path;
	sockaddr_un addr{};
	addr.sun_family = AF_UNIX;
	if (path.empty() || path.size() >= sizeof addr.sun_path) {
		error_ = "control.socket '" + path + "' is empty or longer than " + std::to_string(sizeof addr.sun_path - 1) +
		         " bytes";
		return;
	}
	std::memcpy(addr.sun_path, path.data(), path.size());
	const bool root = geteuid() == 0;

	// The directory: created for the group if missing; an existing one is the operator's (systemd's
	// RuntimeDirectory=, say) and is left alone.
	if (const auto slash = path.rfind('/'); slash != std::string::npos && slash > 0) {
		const std::string dir = path.substr(0, slash);
		struct stat st{};
		if (::stat(dir.c_str(), &st) != 0) {
			if (::mkdir(dir.c_str(), 0750) != 0) {
				error_ = "cannot create " + dir + ": " + errno_text();
				return;
			}
			// mkdir's mode went through the umask; the group needs r-x, so set it exactly.
			if (::chmod(dir.c_str(), 0750) != 0 || (root && ::chown(dir.c_str(), 0, gid_) != 0)) {
				error_ = "cannot set owner and mode of " + dir + ": " + errno_text();
				return;
			}
		} else if (!S_ISDIR(st.st_mode)) {
			error_ = dir + " is not a directory";
			return;
		}
	}

	// A socket file left by a daemon that died is removed; one that answers belongs to a running daemon.
	struct stat st{};
	if (::lstat(path.c_str(), &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			error_ = path + " exists and is not a socket; not replacing it";
			return;
		}
		const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		const bool live = probe >= 0 && ::connect(probe, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
		if (probe >= 0)
			::close(probe);
		if (live) {
			error_ = path + " is in use: is another portcullisd running?";
			return;
		}
		::unlink(path.c_str());
	}

	listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (listen_fd_ < 0) {
		error_ = "socket: " + errno_text();
		return;
	}
	// Linux gives the socket file the mode of the socket's inode (less the umask): setting it before
	// bind() means the file never exists with a wider mode than 0660.
	::fchmod(listen_fd_, 0660);
	if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
		error_ = "cannot bind " + path + ": " + errno_text();
		::close(listen_fd_);
		listen_fd_ = -1;
		return;
	}
	if (::chmod(path.c_str(), 0660) != 0 || (root && ::chown(path.c_str(), 0, gid_) != 0)) {
		error_ = "cannot set owner and mode of " + path + ": " + errno_text();
		::unlink(path.c_str());
		::close(listen_fd_);
		listen_fd_ = -1;
		return;
	}
	if (::lstat(path.c_str(), &st) == 0) {
		socket_dev_ = st.st_dev;
		socket_ino_ = st.st_ino;
	}
	if (::listen(listen_fd_, 16) != 0) {
		error_ = "cannot listen on " + path + ": " + errno_text();
		::unlink(path.c_str());
		::close(listen_fd_);
		listen_fd_ = -1;
		return;
	}
}

server::~server()
{
	for (auto& c : connections_)
		::close(c->fd);
	connections_.clear();
	if (listen_fd_ >= 0) {
		::close(listen_fd_);
		// Remove the file only if it is still the one we bound: a second daemon may have replaced it.
		struct stat st{};
		if (::lstat(config_.socket_path.c_str(), &st) == 0 && st.st_dev == socket_dev_ && st.st_ino == socket_ino_)
			::unlink(config_.socket_path.c_str());
	}
}

void server::poll(int timeout_ms)
{
	if (listen_fd_ < 0)
		return;
	auto now = clock::now();
	if (now - last_sample_ >= std::chrono::seconds(1))
		sample_load();
	// Wake up for the nearest deadline too.
	int wait = std::max(0, timeout_ms);
	for (const auto& c : connections_) {
		const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(c->deadline - now).count();
		wait = std::min<int>(wait, int(std::max<int64_t>(0, left)));
	}
	std::vector<pollfd> fds;
	fds.reserve(connections_.size() + 1);
	fds.push_back({listen_fd_, POLLIN, 0});
	for (const auto& c : connections_)
		fds.push_back({c->fd, short((c->closing ? 0 : POLLIN) | (c->out_sent < c->out.size() ? POLLOUT : 0)), 0});
	const int ready = ::poll(fds.data(), nfds_t(fds.size()), wait);
	if (ready < 0 && errno != EINTR)
		return;

	std::vector<bool> drop(connections_.size(), false);
	for (size_t i = 0; i < connections_.size(); ++i) {
		connection& c = *connections_[i];
		const short ev = fds[i + 1].revents;
		if ((ev & (POLLIN | POLLHUP | POLLERR)) && !c.closing && !read_ready(c))
			drop[i] = true;
		if (!drop[i] && (ev & (POLLOUT | POLLERR)) && !write_ready(c))
			drop[i] = true;
		if (!drop[i] && c.closing && c.out_sent >= c.out.size())
			drop[i] = true;
	}
	now = clock::now();
	for (size_t i = 0; i < connections_.size(); ++i)
		if (!drop[i] && now >= connections_[i]->deadline) {
			++counters_.timeouts;
			drop[i] = true;
		}
	for (size_t i = connections_.size(); i-- > 0;)
		if (drop[i]) {
			::close(connections_[i]->fd);
			connections_.erase(connections_.begin() + long(i));
		}
	if (fds[0].revents & POLLIN)
		accept_ready();
}

void server::accept_ready()
{
	// Bounded: a flood of connects cannot keep the control loop here.
	for (int n = 0; n < 64; ++n) {
		const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		++counters_.accepted;
		auto c = std::make_unique<connection>();
		c->fd = fd;
		c->deadline = clock::now() + std::chrono::milliseconds(config_.read_deadline_ms);
		ucred cred{};
		socklen_t len = sizeof cred;
		bool allowed = false;
		if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
			c->who.pid = cred.pid;
			c->who.uid = cred.uid;
			c->who.gid = cred.gid;
			c->who.groups = supplementary_groups(cred.pid);
			allowed = cred.uid == 0 || cred.uid == geteuid() || cred.gid == gid_ ||
			          std::find(c->who.groups.begin(), c->who.groups.end(), gid_) != c->who.groups.end();
		}
		if (!allowed) {
			++counters_.refused;
			c->out = error_response(error_code::permission_denied,
			                        "permission denied: uid " + std::to_string(cred.uid) +
			                            " is neither root nor a member of the control group '" + config_.group + "'")
			             .dump() +
			         "\n";
			c->closing = true;
		} else if (connections_.size() >= config_.max_connections) {
			++counters_.busy;
			c->out = error_response(error_code::busy, "too many control connections; try again").dump() + "\n";
			c->closing = true;
		}
		if (c->closing) {
			c->deadline = clock::now() + std::chrono::milliseconds(config_.write_deadline_ms);
			if (!write_ready(*c) || c->out_sent >= c->out.size()) {
				// Said all there is to say (or cannot): half-close so the peer reads the answer, then EOF.
				::shutdown(fd, SHUT_WR);
				::close(fd);
				continue;
			}
		}
		connections_.push_back(std::move(c));
	}
}

bool server::read_ready(connection& c)
{
	// Read what is there, but never more than one request's worth past the bound.
	char chunk[65536];
	for (;;) {
		const ssize_t n = ::recv(c.fd, chunk, sizeof chunk, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return false;
		}
		if (n == 0) {
			// The peer is done sending: answer what is complete, then close once written.
			serve_lines(c);
			c.closing = true;
			return write_ready(c);
		}
		c.in.append(chunk, size_t(n));
		// Leave the rest in the kernel until what we hold is answered: memory stays bounded.
		if (c.in.size() > config_.max_request_bytes + 1)
			break;
	}
	serve_lines(c);
	return write_ready(c);
}

void server::serve_lines(connection& c)
{
	size_t start = 0;
	while (!c.closing) {
		const auto nl = c.in.find('\n', std::max(start, c.scanned));
		if (nl == std::string::npos) {
			c.scanned = c.in.size();
			if (c.in.size() - start > config_.max_request_bytes) {
				++counters_.protocol_errors;
				c.out += error_response(error_code::too_large,
				                        "request larger than " + std::to_string(config_.max_request_bytes) + " bytes")
				             .dump() +
				         "\n";
				c.closing = true;
			}
			break;
		}
		std::string line = c.in.substr(start, nl - start);
		start = nl + 1;
		if (line.size() > config_.max_request_bytes) {
			++counters_.protocol_errors;
			c.out += error_response(error_code::too_large,
			                        "request larger than " + std::to_string(config_.max_request_bytes) + " bytes")
			             .dump() +
			         "\n";
			c.closing = true;
			break;
		}
		if (line.find_first_not_of(" \t\r") == std::string::npos)
			continue;
		bool close = false;
		c.out += printed(handle(line, c.who, close)) + "\n";
		if (close)
			c.closing = true;
	}
	c.in.erase(0, start);
	c.scanned = c.scanned > start ? c.scanned - start : 0;
	// The clock restarts only when a request is complete: a client dribbling bytes cannot hold a
	// connection open past the read deadline.
	if (start > 0 || c.closing) {
		const int ms = c.out_sent < c.out.size() ? config_.write_deadline_ms : config_.read_deadline_ms;
		c.deadline = clock::now() + std::chrono::milliseconds(ms);
	}
}

bool server::write_ready(connection& c)
{
	while (c.out_sent < c.out.size()) {
		const ssize_t n = ::send(c.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return true;
			return false;
		}
		c.out_sent += size_t(n);
	}
	if (!c.out.empty()) {
		// All answered: the next request has the read deadline from now.
		c.out.clear();
		c.out_sent = 0;
		if (!c.closing)
			c.deadline = clock::now() + std::chrono::milliseconds(config_.read_deadline_ms);
	}
	return true;
}

} // namespace portcullis::control
