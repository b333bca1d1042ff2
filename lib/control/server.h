// The daemon's control socket: serves the protocol of protocol.h (docs/control.md) to the CLI.
//
// A Unix stream socket at config.socket_path, mode 0660, owned by root (the daemon's user) and
// config.group; a missing parent directory is created 0750 with the same owners (an existing one is left
// as the operator made it). The file mode keeps everyone else from connecting; in addition each accepted
// peer is checked with SO_PEERCRED: uid 0, the daemon's own uid, or a process whose primary or
// supplementary groups (/proc/<pid>/status) include the group may talk, anyone else gets one
// "permission denied" response and is disconnected (counted in counters().refused).
//
// Invariants: the server never blocks the control loop for long. Sockets are non-blocking; poll()
// waits at most its timeout, then serves whatever is ready. A request line is bounded
// (max_request_bytes) and must arrive within read_deadline_ms of the connection or of the previous
// response; a response must be taken within write_deadline_ms. Only handling a request takes real time
// (a push compiles its rule set on this thread, as the runtime's push() always does). A protocol error
// (bad JSON, unknown command, oversized request) gets an error response and closes that connection;
// nothing a client sends can stop the daemon.
//
// Push and file access: a "push" by path makes the daemon read the file (so includes resolve on the
// daemon's side) with the daemon's privileges. So that the socket does not become a way to read files,
// a peer other than root must be able to read the top file itself (mode bits against its uid and
// groups; ACLs are not consulted), and diagnostics located in files the peer cannot read are reported
// without their message.
//
// Threads: poll() and handle_line() run on the daemon's control thread, the one that owns the runtime
// (runtime.h): the server calls the runtime's control-thread functions directly. Construct it before that
// thread starts polling and destroy it after it stops (and before the runtime).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "control/feed.h"
#include "control/sync_probe.h"
#include "control/protocol.h"
#include "control/request.h"
#include "control/runtime.h"

namespace portcullis::control {

struct server_config {
	std::string socket_path = default_socket_path;
	std::string group = "root";  // name or number
	size_t max_request_bytes = control::max_request_bytes;
	int read_deadline_ms = 5'000;
	int write_deadline_ms = 10'000;
	uint32_t max_connections = 16;
	uint32_t default_flow_limit = 1'000;  // flows listed when the request gives no limit
	uint32_t max_flow_limit = 100'000;    // and at most, whatever it asks
	rules::parse_options parse;           // for pushed rule sets
	rules_feed_probe rules_feed;          // rules.watch, for stats; empty when there is none
	sync_probe sync;                      // flow-state sync, for stats, sync and sync_promote; empty when off
};

struct server_counters {
	uint64_t accepted = 0;
	uint64_t refused = 0;          // peers that failed the credentials check
	uint64_t busy = 0;             // connections turned away at max_connections
	uint64_t requests = 0;         // request lines handled
	uint64_t failed = 0;           // of which answered with "ok":false
	uint64_t protocol_errors = 0;  // bad JSON, unknown command, too large, bad version
	uint64_t timeouts = 0;         // connections closed at a deadline
};

class server {
public:
	// Creates and listens on the socket. Check error() afterwards: empty when listening.
	server(runtime& rt, server_config config);
	// Closes every connection and removes the socket file (if it is still ours).
	~server();
	server(const server&) = delete;
	server& operator=(const server&) = delete;

	const std::string& error() const { return error_; }
	const std::string& path() const { return config_.socket_path; }
	gid_t group_id() const { return gid_; }

	// Waits up to timeout_ms for activity, then accepts, reads, answers and times out connections, and
	// returns. Call it from the control loop every few tens of milliseconds (it can replace the sleep).
	void poll(int timeout_ms);

	const server_counters& counters() const { return counters_; }
	size_t connections() const { return connections_.size(); }

	// Answers one request line as if it came from a root peer: the protocol without the socket.
	nlohmann::json handle_line(const std::string& line);

private:
	struct peer {
		pid_t pid = 0;
		uid_t uid = 0;
		gid_t gid = 0;
		std::vector<gid_t> groups;  // supplementary, from /proc/<pid>/status
	};
	struct connection {
		int fd = -1;
		peer who;
		std::string in;
		size_t scanned = 0;    // bytes of `in` known to hold no newline
		std::string out;
		size_t out_sent = 0;
		std::chrono::steady_clock::time_point deadline;
		bool closing = false;  // close once out is sent
	};

	void accept_ready();
	bool read_ready(connection& c);   // false when the connection is to be dropped now
	bool write_ready(connection& c);
	void serve_lines(connection& c);
	nlohmann::json handle(const std::string& line, const peer& who, bool& close);

	nlohmann::json cmd_push(const parsed_request& req, const peer& who);
	nlohmann::json cmd_push_preview(const parsed_request& req, const peer& who);  // push with dry_run
	nlohmann::json cmd_confirm();
	nlohmann::json cmd_sync();
	nlohmann::json cmd_sync_promote();
	nlohmann::json cmd_rules();
	nlohmann::json cmd_flows(const parsed_request& req);
	nlohmann::json cmd_flush_flows();
	nlohmann::json cmd_stats();
	nlohmann::json cmd_explain(const parsed_request& req);
	nlohmann::json cmd_set(const parsed_request& req, const peer& who);
	void sample_load();

	runtime& rt_;
	server_config config_;
	std::string error_;
	gid_t gid_ = 0;
	int listen_fd_ = -1;
	dev_t socket_dev_ = 0;
	ino_t socket_ino_ = 0;
	std::vector<std::unique_ptr<connection>> connections_;
	server_counters counters_;

	// Per-worker busy/idle TSC at the last load sample (about once a second), for a recent busy ratio.
	struct load_sample {
		uint64_t busy = 0, idle = 0;
		double recent_ratio = 0;
	};
	std::vector<load_sample> load_;
	std::chrono::steady_clock::time_point last_sample_{};
};

} // namespace portcullis::control
