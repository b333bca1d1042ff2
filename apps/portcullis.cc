// portcullis: the command-line tool. Offline, it validates rule files, explains which rule a flow hits and
// classifies a file of flows, with the same parser and classifier the dataplane uses. Live, it talks to a
// running portcullisd over its control socket (docs/control.md): push rules, list rules with their
// counters, list and flush connections, show statistics, explain a flow against the live rules. Thin on
// purpose: this file parses the command line and dispatches; the commands are in lib/cli.
#include <boost/program_options.hpp>

#include <iostream>
#include <string>
#include <vector>

#include <unistd.h>

#include "cli/cli.h"
#include "control/protocol.h"

namespace po = boost::program_options;
namespace cli = portcullis::cli;
namespace classify = portcullis::classify;
namespace control = portcullis::control;

namespace {

constexpr const char* usage_text = R"(usage: portcullis [options] COMMAND ARGS...

Commands:
  check FILE                 Parse and compile a rule file offline. Prints a summary (rules per
                             direction and address family, classifier size, compile time) and
                             exits 0, or prints every error as FILE:LINE:COLUMN: error: ... on
                             stderr and exits 1. --lint: also warn, as FILE:LINE:COLUMN: warning:,
                             of rules that never match (shadowed), that change no verdict
                             (redundant), that an earlier rule of another action partly overlaps
                             (correlated), of unused sets and of wide inbound allows; exact, on
                             the rules' ranges (--json for CI). A push prints the same warnings.
  explain FILE 'FLOW'        Show which rule decides FLOW and why, field by field, or that the
                             direction's default applies, with the nearest rules and the fields
                             each failed on. Checks that the fast classifier agrees with the
                             reference one.
  classify FILE FLOWS        Print the verdict for every flow in the file FLOWS (one per line,
                             '#' comments), then a count per verdict. A flow whose first rule
                             has payload conditions shows what it does until its payload decides,
                             and which rules may decide it. Addresses: 198.18.0.5:40000,
                             [2001:2::5]:40000, or bare (2001:2::5) without a port.
  publish FILE etcd://HOST[:PORT]/KEY
                             Check FILE as above, then store its text under KEY in etcd, where every
                             portcullisd following that key (rules.watch) swaps it in. FILE must be
                             self-contained (no include). Prints the etcd revision.

Live commands (talk to a running portcullisd over --socket; --json prints the daemon's answer):
  push FILE                  Validate FILE offline, then have the daemon load it (by absolute path, so
                             includes resolve) and swap it in. Prints the new generation, rule count,
                             compile and quiesce times. A refused rule set leaves the running one.
                             --dry-run: nothing changes; shows the rules added, removed, moved and
                             changed against the live set, and the live flows it would cut (the
                             largest --limit N, default 20), with a warning when your own connection
                             (--keep ADDR:PORT, or SSH_CONNECTION's) is one of them.
                             --confirm 2m: the rules active before come back after 2 minutes unless
                             `portcullis confirm` comes first (commit confirmed).
  confirm                    Keep the rules of a push --confirm; shown as pending in rules and stats.
  sync [promote]             Flow-state sync with the peer appliances: role, ready (every peer that is
                             up has sent its bulk sync), records, refusals, and per peer up/down, bulk
                             progress and lag. promote: a standby starts forwarding (the hook for
                             keepalived's notify_master).
  rules                      The active rules with packets, bytes and time since the last hit; the set's
                             digest and where it came from (the configured file, or a push: runtime
                             only, a restart or SIGHUP loads the configured file again).
  flows [FILTER]             The tracked connections: protocol, endpoints (opener first), state, age,
                             idle time, packets and bytes each way. FILTER words: tcp|udp|icmp|icmp6,
                             proto P, host ADDR[/LEN], port N, state S (e.g. established, tcp_syn_sent).
                             --limit N lists at most N (0: only count them).
  flush flows                Remove every tracked connection.
  stats                      Ports, traffic by direction and verdict, drops by reason, malformed packets
                             by parse reason, flow table, rule generation and swaps, worker load.
  top                        A live view, refreshed every --interval seconds: rules by packet rate,
                             drops by reason with rates, top flows by rate (keys r, d, f; s sorts by
                             packets or bytes; q quits), above them table fill, evictions, expiries,
                             traffic and each worker's busy ratio. Not on a terminal: the same as
                             text at each refresh (--count N refreshes, 0: until interrupted).
  explain 'FLOW'             Which live rule decides FLOW and why (one argument: live; with FILE first:
                             offline, as above).
  set list                   The file sets of the active rules: entries, runtime adds and deletes, hits.
  set show NAME              One set, with its runtime adds (and time left) and deletes.
  set add NAME ADDR[/LEN] [timeout D]
  set del NAME ADDR[/LEN]    Add to / delete from a set at once, without recompiling rules (D: 90s, 15m,
                             1h, 7d). Runtime only: a push, SIGHUP or restart reads the set's file again.
  set flush NAME             Empty the set (its file's entries too, until the next push or reload).
  set load NAME FILE         Replace the set's entries with FILE's (checked offline first), atomically.

FLOW syntax (the direction is the packet's: in = outside -> inside):
  tcp 198.18.0.5:40000 -> 198.18.1.2:22 in [flags S]      (TCP defaults to a SYN)
  udp [2001:2::5]:5353 -> [2001:2::53]:53 out
  icmp 198.18.0.5 -> 198.18.1.2 in type echo-request [code 0]
  47 198.18.0.5 -> 198.18.1.2 out                          (any protocol by number)

Exit status: 0 success, 1 rule/flow errors or a request the daemon refused or failed, 2 usage errors,
3 internal errors, or (live commands) the daemon cannot be reached or denied permission.
The rule language is described in docs/rules.md.

Options)";

} // namespace

int main(int argc, char** argv)
{
	cli::options o;
	std::string backend_name = "ours";
	std::string command;
	std::vector<std::string> args;
	po::options_description visible(usage_text);
	visible.add_options()
		("help,h", "show this help")
		("verbose,v", po::bool_switch(&o.verbose), "explain: also list the rules that did not match, and why")
		("payload", po::value<std::string>()->notifier([&](const std::string& v) { o.payload = v; }),
		 "explain FILE FLOW: the first payload the opener sends (\\xNN, \\r, \\n escapes), scanned against the "
		 "payload rules as the data path would")
		("backend", po::value(&backend_name)->default_value("ours"), "classifier to use: ours or linear")
		("services", po::value(&o.services)->default_value("/etc/services"),
		 "services file for port names beyond the built-in table ('' for none)")
		("socket", po::value(&o.socket)->default_value(control::default_socket_path),
		 "live commands: the daemon's control socket")
		("json", po::bool_switch(&o.json), "live commands: print the daemon's JSON answer (one line) instead")
		("limit", po::value(&o.limit), "flows: list at most this many (0: only count)")
		("timeout", po::value(&o.timeout)->default_value(120), "live commands: seconds to wait for the daemon")
		("confirm", po::value<std::string>()->notifier([&](const std::string& v) { o.confirm = v; }),
		 "push: the rules active before come back after this long (e.g. 2m) unless `portcullis confirm`")
		("lint", po::bool_switch(&o.lint),
		 "check: also report shadowed, redundant and correlated rules, unused sets and wide allows (with --json: "
		 "as JSON)")
		("dry-run", po::bool_switch(&o.dry_run),
		 "push: change nothing; show the rule diff and the live flows the set would cut")
		("keep", po::value(&o.keep),
		 "push --dry-run: ADDR:PORT of a connection that must not be cut (repeatable; SSH_CONNECTION's client "
		 "end is added by itself)")
		("interval", po::value(&o.interval)->default_value(1.0), "top: seconds between refreshes")
		("count", po::value(&o.count)->default_value(0), "top: refreshes before exiting (0: until q or interrupted)");
	po::options_description hidden;
	hidden.add_options()
		("command", po::value(&command))
		("args", po::value(&args));
	po::options_description all;
	all.add(visible).add(hidden);
	po::positional_options_description pos;
	pos.add("command", 1).add("args", -1);
	po::variables_map vm;
	try {
		po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), vm);
		po::notify(vm);
	} catch (const po::error& e) {
		std::cerr << "portcullis: " << e.what() << "\n(see portcullis --help)\n";
		return cli::exit_usage;
	}
	if (vm.count("help")) {
		std::cout << visible << "\n";
		return cli::exit_ok;
	}
	if (backend_name == "ours")
		o.backend = classify::backend::ours;
	else if (backend_name == "linear")
		o.backend = classify::backend::linear;
	else {
		std::cerr << "portcullis: unknown backend '" << backend_name << "' (expected ours or linear)\n";
		return cli::exit_usage;
	}
	o.interactive = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
	const cli::streams io{std::cout, std::cerr};
	const cli::daemon_call daemon = cli::over_socket(o);
	try {
		if (command == "check")
			return cli::cmd_check(args, o, io);
		if (command == "explain")
			return args.size() == 1 ? cli::cmd_explain_live(args[0], o, io, daemon) : cli::cmd_explain(args, o, io);
		if (command == "classify")
			return cli::cmd_classify(args, o, io);
		if (command == "publish")
			return cli::cmd_publish(args, o, io);
		if (command == "push")
			return cli::cmd_push(args, o, io, daemon);
		if (command == "rules")
			return cli::cmd_rules(args, o, io, daemon);
		if (command == "flows")
			return cli::cmd_flows(args, o, io, daemon);
		if (command == "flush")
			return cli::cmd_flush(args, o, io, daemon);
		if (command == "set")
			return cli::cmd_set(args, o, io, daemon);
		if (command == "stats")
			return cli::cmd_stats(args, o, io, daemon);
		if (command == "confirm")
			return cli::cmd_confirm(args, o, io, daemon);
		if (command == "sync")
			return cli::cmd_sync(args, o, io, daemon);
		if (command == "top")
			return cli::cmd_top(args, o, io, daemon);
	} catch (const std::exception& e) {
		std::cerr << "portcullis: internal error: " << e.what() << "\n";
		return cli::exit_internal;
	}
	std::cerr << (command.empty() ? std::string("portcullis: missing command")
	                              : "portcullis: unknown command '" + command + "'")
	          << " (expected check, explain, classify, publish, push, confirm, rules, flows, flush, stats, top, set, sync; see portcullis --help)\n";
	return cli::exit_usage;
}
