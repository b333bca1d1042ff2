// Decoding of one control request line (docs/control.md, "Protocol") into a typed request: the part of
// the control socket that reads what a client wrote, kept apart from the socket and the runtime so that
// it can be tested and fuzzed alone (tests/fuzz/fuzz_control.cc). server.cc answers a decoded request.
//
// Every way a line can be wrong is an error response, never an exception: not JSON, nested deeper than
// max_request_depth (copying or printing deeper JSON recurses once per level and would overflow the
// stack), not an object, a bad "v" or "cmd", a field of the wrong type or value. Errors that the table in
// docs/control.md marks "closed" set protocol_error; the "id" of a request object is echoed in its
// error response as in any other.
//
// Threads: a pure function; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "rules/tuple.h"

namespace portcullis::control {

// Arrays and objects inside one another, the request object being level 1. Real requests use 3.
inline constexpr size_t max_request_depth = 64;

enum class command : uint8_t { push, rules, flows, flush_flows, stats, explain, set, confirm, sync, sync_promote };

// An address or a CIDR prefix, in host-order numbers as flow keys hold them.
struct address_prefix {
	bool v6 = false;
	u128 addr = 0;
	unsigned len = 0;
	bool contains(bool v6_, u128 a) const;
};
std::optional<address_prefix> parse_prefix(const std::string& s);

struct flow_filter {
	std::optional<uint8_t> proto;
	std::optional<address_prefix> address;  // either endpoint
	std::optional<uint16_t> port;           // either port (TCP/UDP)
	std::optional<std::string> state;       // a flow state name or its suffix ("established")
};

// An endpoint a dry-run push must not cut: the caller's own connection (push --keep, SSH_CONNECTION).
struct keep_endpoint {
	bool v6 = false;
	u128 addr = 0;
	uint16_t port = 0;
};

struct parsed_request {
	command cmd = command::stats;
	// push: by path (absolute) or by text with the name diagnostics and includes use.
	std::string path;
	std::string text, name;
	bool dry_run = false;              // push: compile and report, change nothing
	uint64_t confirm_s = 0;            // push: the previous rules come back after this long unless confirmed
	std::vector<keep_endpoint> keep;   // push dry run: flows with one of these endpoints are named if cut
	// flows
	flow_filter filter;
	std::optional<uint64_t> limit;  // as asked; the server applies its default and bound
	// explain
	rules::flow_tuple flow;
	// set: list, show, add, del, flush, load (path above)
	std::string set_op, set_name;
	address_prefix set_address;
	uint64_t set_timeout_s = 0;  // add: 0 = no timeout
};

inline constexpr uint64_t max_set_timeout_s = 366ull * 24 * 3600;  // a year
inline constexpr uint64_t max_confirm_s = 24 * 3600;               // push --confirm: a day at most

struct decode_result {
	std::optional<parsed_request> req;  // present iff `error` is null
	nlohmann::json error;               // the response to send when req is empty ("id" included)
	bool protocol_error = false;        // the error closes the connection
	std::optional<nlohmann::json> id;   // the request's "id", to echo in the response
};

decode_result decode_request(std::string_view line);

} // namespace portcullis::control
