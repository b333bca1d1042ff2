// The portcullis CLI's commands: what each one checks, asks and prints. apps/portcullis parses the
// command line into an options struct and calls one of these; they do the rest.
//
// Three groups, one file each: offline (check, explain FILE FLOW, classify: the rule parser and the
// classifiers run in this process, as the dataplane would run them), live (push, rules, flows, flush,
// stats, explain FLOW: one request each to portcullisd over its control socket, docs/control.md) and
// publish (check, then store the rule text in etcd). How answers look is render.h's job.
//
// Every command takes its positional arguments, the options, and the two streams it prints to
// (std::cout/std::cerr in the tool, string streams in tests), and returns the tool's exit status. Live
// commands also take the daemon to call: over_socket() in the tool, canned answers in tests.
// Threads: commands keep no state between calls; two may run at once if they print to different streams.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "classify/classify.h"
#include "control/protocol.h"

namespace portcullis::cli {

// 3 is both "internal error" (offline commands) and "cannot reach the daemon / permission denied"
// (live commands): either way the answer to the question asked is not known.
inline constexpr int exit_ok = 0, exit_failed = 1, exit_usage = 2, exit_internal = 3, exit_unreachable = 3;

struct options {
	std::string services = "/etc/services";
	classify::backend backend = classify::backend::ours;
	bool verbose = false;
	std::string socket = control::default_socket_path;
	bool json = false;
	int64_t limit = -1;  // flows: -1 = the daemon's default
	double timeout = 120;
	std::optional<std::string> payload;  // explain: the flow's first payload bytes (C escapes allowed)
	bool lint = false;               // check: also report shadowed, redundant, correlated rules... (lint.h)
	bool dry_run = false;            // push: preview only
	std::optional<std::string> confirm;  // push: the previous rules come back after this long (2m) unless confirmed
	std::vector<std::string> keep;   // push --dry-run: ADDR:PORT endpoints whose flows must not be cut
	double interval = 1.0;  // top: seconds between refreshes
	int64_t count = 0;      // top: refreshes before it exits, 0 = until q or interrupted
	bool interactive = false;  // top: draw on the terminal (stdin and stdout are one) rather than print text
};

// Where a command prints: results on out, diagnostics on err.
struct streams {
	std::ostream& out;
	std::ostream& err;
};

// Sends one request to the daemon and returns what came back (or why nothing did).
using daemon_call = std::function<control::client_result(const nlohmann::json& request)>;
// The real daemon: one connection to o.socket per request, waiting up to o.timeout seconds.
daemon_call over_socket(const options& o);

using arguments = std::vector<std::string>;

// Offline (offline.cc).
int cmd_check(const arguments& args, const options& o, streams io);
int cmd_explain(const arguments& args, const options& o, streams io);  // FILE FLOW
int cmd_classify(const arguments& args, const options& o, streams io);

// Publish (publish.cc).
int cmd_publish(const arguments& args, const options& o, streams io);

// Live (live.cc).
int cmd_push(const arguments& args, const options& o, streams io, const daemon_call& daemon);
int cmd_confirm(const arguments& args, const options& o, streams io, const daemon_call& daemon);
// sync | sync promote
int cmd_sync(const arguments& args, const options& o, streams io, const daemon_call& daemon);
int cmd_rules(const arguments& args, const options& o, streams io, const daemon_call& daemon);
int cmd_flows(const arguments& args, const options& o, streams io, const daemon_call& daemon);
int cmd_flush(const arguments& args, const options& o, streams io, const daemon_call& daemon);
// set list | show NAME | add NAME ADDR [timeout D] | del NAME ADDR | flush NAME | load NAME FILE
int cmd_set(const arguments& args, const options& o, streams io, const daemon_call& daemon);
int cmd_stats(const arguments& args, const options& o, streams io, const daemon_call& daemon);
int cmd_explain_live(const std::string& flow, const options& o, streams io, const daemon_call& daemon);
// Live view (top.cc, top.h).
int cmd_top(const arguments& args, const options& o, streams io, const daemon_call& daemon);

} // namespace portcullis::cli
