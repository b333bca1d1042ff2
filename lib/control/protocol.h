// The control protocol of portcullisd (docs/control.md) and its client.
//
// One JSON object per line each way over a Unix stream socket: the client writes a request
// {"v":1,"cmd":"stats",...}\n and reads one response {"v":1,"ok":true,...}\n. A connection may carry
// several requests in turn; the daemon closes it after a protocol error (bad JSON, unknown command,
// oversized request) and after refusing the peer. Failures the daemon reports are values in the
// response ({"ok":false,"code":...,"error":...}); failures to talk to it at all are client_status values.
//
// Kept free of DPDK and of the runtime so that the CLI links only this (control_client_dep).
// Threads: a client is one connection; use it from one thread at a time. The free functions are pure.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace portcullis::control {

inline constexpr int protocol_version = 1;
inline constexpr const char* default_socket_path = "/run/portcullis/portcullisd.sock";
// Bound on one request line. A rule set pushed as text is the largest request; the rule parser
// refuses files above 16 MiB anyway (rules::parse_options::max_file_bytes).
inline constexpr size_t max_request_bytes = 16u << 20;
// Bound on one response line the client accepts: a listing of 100k flows is about 30 MiB.
inline constexpr size_t max_response_bytes = 256u << 20;

// Values of "code" in a failed response.
namespace error_code {
inline constexpr const char* bad_request = "bad_request";          // not JSON, not an object, wrong field types
inline constexpr const char* unsupported_version = "unsupported_version";
inline constexpr const char* unknown_command = "unknown_command";
inline constexpr const char* too_large = "too_large";              // request line over max_request_bytes
inline constexpr const char* permission_denied = "permission_denied";  // peer not root nor in control.group
inline constexpr const char* busy = "busy";                        // too many connections
inline constexpr const char* rules = "rules";                      // the pushed rule set has errors
inline constexpr const char* not_readable = "not_readable";        // push: the file is not readable by the peer
inline constexpr const char* bad_flow = "bad_flow";                // explain: the flow does not parse
inline constexpr const char* failed = "failed";                    // anything else the daemon could not do
} // namespace error_code

enum class client_status {
	ok,                 // a response arrived (it may still say "ok":false)
	unreachable,        // no socket, nobody listening, or the connection broke before a response
	permission_denied,  // the socket's mode refused us, or the daemon did (SO_PEERCRED check)
	protocol_error,     // the response was not one JSON object on one line, or timed out
};

struct client_result {
	client_status status = client_status::unreachable;
	nlohmann::json response;  // the daemon's answer when status is ok or permission_denied by the daemon
	std::string error;        // why, when status is not ok
};

// One connection to the daemon.
class client {
public:
	client() = default;
	~client();
	client(const client&) = delete;
	client& operator=(const client&) = delete;

	// Connects to the socket. On failure returns unreachable or permission_denied with a message.
	client_result connect(const std::string& socket_path);
	// Sends one request and waits up to timeout_ms for its response line. "v" is added when missing.
	client_result call(nlohmann::json request, int timeout_ms = 120'000);
	void close();

private:
	int fd_ = -1;
	std::string buffered_;  // bytes after the last response line
};

// Connects, sends one request, returns the response: what the CLI does for each command.
client_result request(const std::string& socket_path, const nlohmann::json& req, int timeout_ms = 120'000);

// A failed response as the daemon builds it: {"v":1,"ok":false,"code":code,"error":message}.
nlohmann::json error_response(std::string_view code, std::string_view message);

} // namespace portcullis::control
