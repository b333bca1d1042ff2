// The transport under etcd.h: HTTP/1.1 exchanges with etcd's JSON gateway (gateway.h) and its encodings.
#include "etcd/gateway.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace portcullis::etcd::detail {

namespace {

using nlohmann::json;

// A response head larger than this is not etcd's.
constexpr size_t max_head_bytes = 64u << 10;
// How often a blocked read looks at the stop flag.
constexpr int stop_check_ms = 200;

std::string errno_text(const char* what)
{
	return std::string(what) + ": " + std::strerror(errno);
}

int remaining_ms(clock::time_point deadline)
{
	const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
	return int(std::clamp<int64_t>(left, 0, stop_check_ms));
}

} // namespace

std::string base64_encode(std::string_view in)
{
	static constexpr char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	std::string out;
	out.reserve((in.size() + 2) / 3 * 4);
	size_t i = 0;
	for (; i + 3 <= in.size(); i += 3) {
		const uint32_t v = uint32_t(uint8_t(in[i])) << 16 | uint32_t(uint8_t(in[i + 1])) << 8 | uint8_t(in[i + 2]);
		out += digits[v >> 18];
		out += digits[(v >> 12) & 63];
		out += digits[(v >> 6) & 63];
		out += digits[v & 63];
	}
	if (const size_t rest = in.size() - i; rest > 0) {
		const uint32_t v = uint32_t(uint8_t(in[i])) << 16 | (rest == 2 ? uint32_t(uint8_t(in[i + 1])) << 8 : 0);
		out += digits[v >> 18];
		out += digits[(v >> 12) & 63];
		out += rest == 2 ? digits[(v >> 6) & 63] : '=';
		out += '=';
	}
	return out;
}

bool base64_decode(std::string_view in, std::string& out)
{
	auto digit = [](char c) -> int {
		if (c >= 'A' && c <= 'Z')
			return c - 'A';
		if (c >= 'a' && c <= 'z')
			return c - 'a' + 26;
		if (c >= '0' && c <= '9')
			return c - '0' + 52;
		if (c == '+')
			return 62;
		if (c == '/')
			return 63;
		return -1;
	};
	while (!in.empty() && in.back() == '=')
		in.remove_suffix(1);
	if (in.size() % 4 == 1)
		return false;
	out.clear();
	out.reserve(in.size() / 4 * 3 + 2);
	uint32_t acc = 0;
	int bits = 0;
	for (const char c : in) {
		const int d = digit(c);
		if (d < 0)
			return false;
		acc = acc << 6 | uint32_t(d);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out += char((acc >> bits) & 0xff);
		}
	}
	return true;
}


int64_t int_field(const json& j, const char* name)
{
	const auto it = j.find(name);
	if (it == j.end())
		return 0;
	if (it->is_number_integer())
		return it->get<int64_t>();
	if (it->is_string()) {
		try {
			return std::stoll(it->get<std::string>());
		} catch (...) {
			return 0;
		}
	}
	return 0;
}

exchange::~exchange()
{
	if (fd_ >= 0)
		::close(fd_);
}

bool exchange::open(const location& where, clock::time_point deadline, std::string& error)
{
	addrinfo hints{};
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	addrinfo* found = nullptr;
	if (const int rc = ::getaddrinfo(where.host.c_str(), where.port.c_str(), &hints, &found); rc != 0) {
		error = "cannot resolve " + where.host + ": " + ::gai_strerror(rc);
		return false;
	}
	error = "no address for " + where.host;
	for (addrinfo* a = found; a; a = a->ai_next) {
		const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
		if (fd < 0) {
			error = errno_text("socket");
			continue;
		}
		const std::string to = "connect to " + where.host + ":" + where.port;
		const int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
		const int connect_errno = rc == 0 ? 0 : errno;
		if (connect_errno == 0 || (connect_errno == EINPROGRESS && wait_connected(fd, deadline, error))) {
			fd_ = fd;
			break;
		}
		error = to + ": " + (connect_errno == EINPROGRESS ? error : std::string(std::strerror(connect_errno)));
		::close(fd);
	}
	::freeaddrinfo(found);
	if (fd_ < 0)
		return false;
	// A watch is silent while nothing changes; keepalives find a peer that vanished.
	const int on = 1, idle = 10, interval = 5, count = 3;
	::setsockopt(fd_, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
	::setsockopt(fd_, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
	::setsockopt(fd_, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
	::setsockopt(fd_, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
	host_ = where.host.find(':') != std::string::npos ? "[" + where.host + "]" : where.host;
	host_ += ":" + where.port;
	error.clear();
	return true;
}

bool exchange::post(const char* path, const std::string& body, clock::time_point deadline, std::string& error)
{
	std::string request = std::string("POST ") + path + " HTTP/1.1\r\nHost: " + host_ +
	                      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
	                      "\r\n\r\n" + body;
	size_t sent = 0;
	while (sent < request.size()) {
		const ssize_t n = ::send(fd_, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
		if (n > 0) {
			sent += size_t(n);
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			error = errno_text("send");
			return false;
		}
		if (!wait(POLLOUT, deadline, error))
			return false;
	}
	return read_head(deadline, error);
}

bool exchange::read_body(std::string& body, clock::time_point deadline, std::string& error)
{
	body.clear();
	for (;;) {
		decode(body);
		if (ended_)
			return true;
		if (body.size() > max_message_bytes) {
			error = "response larger than " + std::to_string(max_message_bytes) + " bytes";
			return false;
		}
		if (!fill(deadline, error)) {
			if (eof_ && !chunked_ && length_ < 0)
				return true;  // delimited by the connection's close
			return false;
		}
	}
}

bool exchange::next_message(std::string& message, clock::time_point deadline, std::string& error)
{
	for (;;) {
		decode(stream_);
		if (const size_t nl = stream_.find('\n'); nl != std::string::npos) {
			message.assign(stream_, 0, nl);
			stream_.erase(0, nl + 1);
			return true;
		}
		if (stream_.size() > max_message_bytes) {
			error = "watch message larger than " + std::to_string(max_message_bytes) + " bytes";
			return false;
		}
		if (ended_) {
			error = "etcd ended the watch";
			return false;
		}
		if (!fill(deadline, error))
			return false;
	}
}

bool exchange::wait_connected(int fd, clock::time_point deadline, std::string& error)
{
	const int saved = fd_;
	fd_ = fd;
	const bool ready = wait(POLLOUT, deadline, error);
	fd_ = saved;
	if (!ready)
		return false;
	int so_error = 0;
	socklen_t len = sizeof so_error;
	::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
	if (so_error != 0) {
		error = std::strerror(so_error);
		return false;
	}
	return true;
}

bool exchange::wait(short events, clock::time_point deadline, std::string& error)
{
	for (;;) {
		if (stop_ && stop_->load(std::memory_order_relaxed)) {
			error = "stopped";
			return false;
		}
		const bool forever = deadline == clock::time_point::max();
		if (!forever && clock::now() >= deadline) {
			error = "timed out";
			return false;
		}
		pollfd p{fd_, events, 0};
		const int rc = ::poll(&p, 1, forever ? stop_check_ms : remaining_ms(deadline));
		if (rc > 0)
			return true;
		if (rc < 0 && errno != EINTR) {
			error = errno_text("poll");
			return false;
		}
	}
}

bool exchange::fill(clock::time_point deadline, std::string& error)
{
	char chunk[64 << 10];
	for (;;) {
		const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
		if (n > 0) {
			raw_.append(chunk, size_t(n));
			return true;
		}
		if (n == 0) {
			eof_ = true;
			error = "connection closed by etcd";
			return false;
		}
		if (errno != EAGAIN && errno != EINTR) {
			error = errno_text("recv");
			return false;
		}
		if (!wait(POLLIN, deadline, error))
			return false;
	}
}

bool exchange::read_head(clock::time_point deadline, std::string& error)
{
	size_t end;
	while ((end = raw_.find("\r\n\r\n")) == std::string::npos) {
		if (raw_.size() > max_head_bytes) {
			error = "response head too large";
			return false;
		}
		if (!fill(deadline, error))
			return false;
	}
	const std::string head = raw_.substr(0, end);
	raw_.erase(0, end + 4);
	if (head.compare(0, 5, "HTTP/") != 0 || head.find(' ') == std::string::npos) {
		error = "not an HTTP response";
		return false;
	}
	status_ = std::atoi(head.c_str() + head.find(' ') + 1);
	size_t line = head.find("\r\n");
	while (line != std::string::npos) {
		const size_t start = line + 2;
		line = head.find("\r\n", start);
		std::string field = head.substr(start, line == std::string::npos ? std::string::npos : line - start);
		const size_t colon = field.find(':');
		if (colon == std::string::npos)
			continue;
		std::string name = field.substr(0, colon);
		std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return char(std::tolower(c)); });
		std::string content = field.substr(colon + 1);
		content.erase(0, content.find_first_not_of(" \t"));
		std::transform(content.begin(), content.end(), content.begin(), [](unsigned char c) { return char(std::tolower(c)); });
		if (name == "transfer-encoding" && content.find("chunked") != std::string::npos)
			chunked_ = true;
		else if (name == "content-length")
			length_ = std::atoll(content.c_str());
	}
	return true;
}

void exchange::decode(std::string& out)
{
	if (!chunked_) {
		if (length_ >= 0) {
			const size_t take = std::min<size_t>(raw_.size(), size_t(length_) - taken_);
			out.append(raw_, 0, take);
			raw_.erase(0, take);
			taken_ += take;
			ended_ = taken_ == size_t(length_);
		} else {
			out += raw_;
			raw_.clear();
		}
		return;
	}
	for (;;) {
		if (chunk_left_ > 0) {
			const size_t take = std::min(chunk_left_, raw_.size());
			out.append(raw_, 0, take);
			raw_.erase(0, take);
			chunk_left_ -= take;
			if (chunk_left_ > 0)
				return;
			after_chunk_ = true;
		}
		if (after_chunk_) {
			if (raw_.size() < 2)
				return;
			raw_.erase(0, 2);
			after_chunk_ = false;
		}
		const size_t eol = raw_.find("\r\n");
		if (eol == std::string::npos)
			return;
		const size_t size = std::strtoull(raw_.c_str(), nullptr, 16);
		raw_.erase(0, eol + 2);
		if (size == 0) {
			ended_ = true;
			return;
		}
		chunk_left_ = size;
	}
}

bool call(const location& where, const char* path, const json& request, json& response, std::string& error,
          std::chrono::milliseconds timeout)
{
	const auto deadline = clock::now() + timeout;
	exchange x(nullptr);
	std::string body;
	if (!x.open(where, deadline, error) || !x.post(path, request.dump(), deadline, error) ||
	    !x.read_body(body, deadline, error)) {
		error = where.url() + ": " + error;
		return false;
	}
	response = json::parse(body, nullptr, false);
	if (x.status() != 200 || !response.is_object()) {
		std::string why = response.is_object() && response.contains("error") ? response["error"].dump() : body.substr(0, 200);
		error = where.url() + ": HTTP " + std::to_string(x.status()) + ": " + why;
		return false;
	}
	return true;
}

} // namespace portcullis::etcd::detail
