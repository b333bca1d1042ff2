#include "control/protocol.h"

#include <cerrno>
#include <chrono>
#include <cstring>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace portcullis::control {
namespace {

std::string errno_text(int e) { return std::strerror(e); }

client_result failure(client_status s, std::string message)
{
	client_result r;
	r.status = s;
	r.error = std::move(message);
	return r;
}

} // namespace

client::~client() { close(); }

void client::close()
{
	if (fd_ >= 0)
		::close(fd_);
	fd_ = -1;
	buffered_.clear();
}

client_result client::connect(const std::string& socket_path)
{
	close();
	sockaddr_un addr{};
	addr.sun_family = AF_UNIX;
	if (socket_path.empty() || socket_path.size() >= sizeof addr.sun_path)
		return failure(client_status::unreachable, "socket path '" + socket_path + "' is empty or too long");
	std::memcpy(addr.sun_path, socket_path.data(), socket_path.size());
	fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd_ < 0)
		return failure(client_status::unreachable, "socket: " + errno_text(errno));
	if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
		const int e = errno;
		close();
		if (e == EACCES || e == EPERM)
			return failure(client_status::permission_denied,
			               "permission denied connecting to " + socket_path +
			                   " (run as root or as a member of the daemon's control.group)");
		if (e == ENOENT || e == ECONNREFUSED)
			return failure(client_status::unreachable,
			               "cannot reach portcullisd at " + socket_path + ": " + errno_text(e) + " (is it running?)");
		return failure(client_status::unreachable, "cannot connect to " + socket_path + ": " + errno_text(e));
	}
	return {client_status::ok, {}, {}};
}

client_result client::call(nlohmann::json request, int timeout_ms)
{
	if (fd_ < 0)
		return failure(client_status::unreachable, "not connected");
	if (request.is_object() && !request.contains("v"))
		request["v"] = protocol_version;
	const std::string line = request.dump() + "\n";
	const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
	auto remaining_ms = [&] {
		const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
		return int(std::max<int64_t>(0, left.count()));
	};

	// A daemon that refuses us answers and closes, possibly before we have written everything: a write
	// error is not the end, the refusal may be waiting to be read.
	bool write_failed = false;
	int write_errno = 0;
	for (size_t sent = 0; sent < line.size();) {
		pollfd p{fd_, POLLOUT, 0};
		if (::poll(&p, 1, remaining_ms()) <= 0) {
			close();
			return failure(client_status::protocol_error, "timed out sending the request");
		}
		const ssize_t n = ::send(fd_, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			write_failed = true;
			write_errno = errno;
			break;
		}
		sent += size_t(n);
	}

	for (;;) {
		if (const auto nl = buffered_.find('\n'); nl != std::string::npos) {
			client_result r;
			try {
				r.response = nlohmann::json::parse(buffered_.substr(0, nl));
			} catch (const nlohmann::json::exception& e) {
				close();
				return failure(client_status::protocol_error, std::string("the daemon's response is not JSON: ") + e.what());
			}
			buffered_.erase(0, nl + 1);
			if (!r.response.is_object()) {
				close();
				return failure(client_status::protocol_error, "the daemon's response is not a JSON object");
			}
			r.status = client_status::ok;
			if (r.response.value("code", "") == error_code::permission_denied) {
				r.status = client_status::permission_denied;
				r.error = r.response.value("error", "permission denied");
			}
			return r;
		}
		if (buffered_.size() > max_response_bytes) {
			close();
			return failure(client_status::protocol_error, "the daemon's response is larger than the client accepts");
		}
		pollfd p{fd_, POLLIN, 0};
		const int ready = ::poll(&p, 1, remaining_ms());
		if (ready < 0 && errno == EINTR)
			continue;
		if (ready <= 0) {
			close();
			return failure(client_status::protocol_error, "timed out waiting for the daemon's response");
		}
		char chunk[65536];
		const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0) {
			const std::string why = n == 0 ? "closed the connection" : "broke the connection (" + errno_text(errno) + ")";
			close();
			if (write_failed)
				return failure(client_status::unreachable, "cannot send the request: " + errno_text(write_errno));
			return failure(client_status::unreachable, "the daemon " + why + " without answering");
		}
		buffered_.append(chunk, size_t(n));
	}
}

client_result request(const std::string& socket_path, const nlohmann::json& req, int timeout_ms)
{
	client c;
	if (auto r = c.connect(socket_path); r.status != client_status::ok)
		return r;
	return c.call(req, timeout_ms);
}

nlohmann::json error_response(std::string_view code, std::string_view message)
{
	return {{"v", protocol_version}, {"ok", false}, {"code", code}, {"error", message}};
}

} // namespace portcullis::control
