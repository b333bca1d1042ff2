// The live commands: push, rules, flows, flush, stats, explain FLOW and set, one request each to portcullisd
// over its control socket (docs/control.md). Here: checking arguments, building the request, handling
// refusals and --json; the answers are printed by render.cc.
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <sstream>
#include <ostream>
#include <string>
#include <system_error>

#include "cli/cli.h"
#include "cli/offline.h"
#include "cli/render.h"
#include "control/request.h"
#include "rules/rules.h"
#include "rules/tuple.h"

namespace portcullis::cli {

using json = nlohmann::json;

daemon_call over_socket(const options& o)
{
	return [socket = o.socket, timeout_ms = int(o.timeout * 1000)](const json& req) {
		return control::request(socket, req, timeout_ms);
	};
}

namespace {

// Pushes of more rules than this skip the lint's warnings (check --lint runs it on any size).
constexpr size_t max_push_lint_rules = 20'000;

// Sends req; on an answer with "ok":true returns it, otherwise prints why and sets status to the exit code.
// With --json every answer (or the client's failure, in the same shape) is printed as one line here, and
// nothing is returned to render.
std::optional<json> call(const daemon_call& daemon, const options& o, streams io, const json& req, int& status)
{
	const auto r = daemon(req);
	if (r.status != control::client_status::ok) {
		const char* code = r.status == control::client_status::permission_denied ? "permission_denied"
		                   : r.status == control::client_status::protocol_error  ? "protocol_error"
		                                                                         : "unreachable";
		if (o.json)
			io.out << json{{"ok", false}, {"code", code}, {"error", r.error}}.dump() << "\n";
		io.err << "portcullis: " << r.error << "\n";
		status = exit_unreachable;
		return std::nullopt;
	}
	if (o.json)
		io.out << r.response.dump() << "\n";
	if (!r.response.value("ok", false)) {
		if (!o.json) {
			for (const auto& e : r.response.value("errors", json::array()))
				io.err << e.value("file", "") << ":" << e.value("line", 0) << ":" << e.value("column", 0)
				       << ": error: " << e.value("message", "") << "\n";
			io.err << "portcullis: " << req.value("cmd", "") << " failed: " << r.response.value("error", "no reason given")
			       << "\n";
		}
		status = exit_failed;
		return std::nullopt;
	}
	status = exit_ok;
	if (o.json)
		return std::nullopt;  // printed already; nothing more to say
	return r.response;
}

// "90", "90s", "15m", "1h", "7d" -> seconds; nullopt when not that or out of range.
std::optional<uint64_t> parse_duration(const std::string& s)
{
	if (s.empty())
		return std::nullopt;
	uint64_t unit = 1;
	std::string digits = s;
	switch (s.back()) {
	case 's': unit = 1; digits.pop_back(); break;
	case 'm': unit = 60; digits.pop_back(); break;
	case 'h': unit = 3600; digits.pop_back(); break;
	case 'd': unit = 86400; digits.pop_back(); break;
	default: break;
	}
	if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos)
		return std::nullopt;
	const uint64_t v = std::stoull(digits) * unit;
	if (v == 0 || v > control::max_set_timeout_s)
		return std::nullopt;
	return v;
}

// A flow that does not parse is a usage error with a caret under the column, as offline.
bool parse_flow(const std::string& flow, std::ostream& err)
{
	const auto fp = rules::parse_tuple(flow);
	if (!fp.value)
		err << "flow:" << fp.column << ": error: " << fp.error << "\n  " << flow << "\n  "
		    << std::string(fp.column ? fp.column - 1 : 0, ' ') << "^\n";
	return fp.value.has_value();
}

} // namespace

int cmd_push(const arguments& args, const options& o, streams io, const daemon_call& daemon)
{
	if (args.size() != 1) {
		io.err << "portcullis: push takes one FILE\n";
		return exit_usage;
	}
	// Validate here first: the errors come back at once and name the file as the operator typed it.
	rules::parse_options popt;
	popt.services_file = o.services;
	const auto parsed = rules::parse_file(args[0], popt);
	if (!parsed.rules) {
		if (o.json) {
			json errors = json::array();
			for (const auto& d : parsed.errors)
				errors.push_back({{"file", d.loc.file}, {"line", d.loc.line}, {"column", d.loc.column}, {"message", d.message}});
			io.out << json{{"ok", false}, {"code", control::error_code::rules}, {"error", "the rule set has errors; not sent"},
			               {"errors", errors}}.dump()
			       << "\n";
		} else {
			for (const auto& d : parsed.errors)
				io.err << rules::format(d) << "\n";
			io.err << args[0] << ": " << parsed.errors.size() << (parsed.errors.size() == 1 ? " error" : " errors")
			       << "; not sent to the daemon\n";
		}
		return exit_failed;
	}
	// The lint's warnings, as check --lint gives them (not for huge sets: it is quadratic in rules).
	if (!o.json && parsed.rules->rules.size() <= max_push_lint_rules)
		print_lint(lint::lint(*parsed.rules), *parsed.rules, io.err);
	std::error_code ec;
	const std::string path = std::filesystem::absolute(args[0], ec).lexically_normal().string();
	json req = {{"cmd", "push"}, {"path", path}};
	if (o.confirm) {
		const auto t = parse_duration(*o.confirm);
		if (!t || *t > control::max_confirm_s || o.dry_run) {
			io.err << "portcullis: push: --confirm takes a time such as 2m, up to a day (and not with --dry-run), not '"
			       << *o.confirm << "'\n";
			return exit_usage;
		}
		req["confirm_s"] = *t;
	}
	if (o.dry_run) {
		req["dry_run"] = true;
		if (o.limit >= 0)
			req["limit"] = o.limit;
		// The caller's own connection: --keep endpoints, and the client end of an SSH session.
		json keep = json::array();
		std::vector<std::string> endpoints = o.keep;
		if (const char* ssh = std::getenv("SSH_CONNECTION")) {
			std::istringstream words(ssh);
			std::string client, port;
			if (words >> client >> port) {
				const bool v6 = client.find(':') != std::string::npos;
				std::string endpoint = v6 ? std::string(1, '[') : std::string();
				endpoint.append(client).append(v6 ? "]:" : ":").append(port);
				endpoints.push_back(std::move(endpoint));
			}
		}
		for (const auto& e : endpoints) {
			const auto f = rules::parse_tuple("tcp " + e + " -> " + e + " in");
			if (!f.value || f.column) {
				io.err << "portcullis: push: --keep takes ADDR:PORT or [ADDR6]:PORT, not '" << e << "'\n";
				return exit_usage;
			}
			keep.push_back({{"address", rules::format_address(f.value->v6, f.value->src)}, {"port", f.value->sport}});
		}
		req["keep"] = keep;
	}
	int status = exit_ok;
	if (const auto r = call(daemon, o, io, req, status)) {
		if (o.dry_run)
			render_preview(*r, path, io.out, io.err);
		else
			render_push(*r, path, io.out);
	}
	return status;
}

int cmd_confirm(const arguments& args, const options& o, streams io, const daemon_call& daemon)
{
	if (!args.empty()) {
		io.err << "portcullis: confirm takes no arguments\n";
		return exit_usage;
	}
	int status = exit_ok;
	if (const auto r = call(daemon, o, io, {{"cmd", "confirm"}}, status))
		io.out << "confirmed: generation " << r->value("generation", 0) << " stays\n";
	return status;
}

int cmd_sync(const arguments& args, const options& o, streams io, const daemon_call& daemon)
{
	const bool promote = args.size() == 1 && args[0] == "promote";
	if (!args.empty() && !promote) {
		io.err << "portcullis: usage: portcullis sync [promote]\n";
		return exit_usage;
	}
	int status = exit_ok;
	if (const auto r = call(daemon, o, io, {{"cmd", promote ? "sync_promote" : "sync"}}, status)) {
		if (promote)
			io.out << "sync: " << r->value("result", "") << "\n";
		render_sync((*r)["sync"], io.out);
	}
	return status;
}

int cmd_rules(const arguments& args, const options& o, streams io, const daemon_call& daemon)
{
	if (!args.empty()) {
		io.err << "portcullis: rules takes no arguments\n";
		return exit_usage;
	}
	int status = exit_ok;
	if (const auto r = call(daemon, o, io, {{"cmd", "rules"}}, status))
		render_rules(*r, io.out);
	return status;
}

int cmd_flows(const arguments& args, const options& o, streams io, const daemon_call& daemon)
{
	json filter = json::object();
	for (size_t i = 0; i < args.size(); ++i) {
		const std::string& w = args[i];
		auto value = [&]() -> std::optional<std::string> {
			if (i + 1 >= args.size()) {
				io.err << "portcullis: flows: '" << w << "' needs a value\n";
				return std::nullopt;
			}
			return args[++i];
		};
		if (w == "tcp" || w == "udp" || w == "icmp" || w == "icmp6") {
			filter["proto"] = w;
		} else if (w == "proto" || w == "host" || w == "state") {
			const auto v = value();
			if (!v)
				return exit_usage;
			filter[w == "host" ? "address" : w] = *v;
		} else if (w == "port") {
			const auto v = value();
			if (!v)
				return exit_usage;
			if (v->empty() || v->size() > 5 || v->find_first_not_of("0123456789") != std::string::npos || std::stoul(*v) > 65535) {
				io.err << "portcullis: flows: port must be 0-65535, not '" << *v << "'\n";
				return exit_usage;
			}
			filter["port"] = std::stoul(*v);
		} else {
			io.err << "portcullis: flows: unexpected '" << w
			       << "' (expected tcp, udp, icmp, icmp6, proto P, host ADDR[/LEN], port N or state S)\n";
			return exit_usage;
		}
	}
	json req = {{"cmd", "flows"}, {"filter", filter}};
	if (o.limit >= 0)
		req["limit"] = o.limit;
	int status = exit_ok;
	if (const auto r = call(daemon, o, io, req, status))
		render_flows(*r, io.out);
	return status;
}

int cmd_flush(const arguments& args, const options& o, streams io, const daemon_call& daemon)
{
	if (args.size() != 1 || args[0] != "flows") {
		io.err << "portcullis: usage: portcullis flush flows\n";
		return exit_usage;
	}
	int status = exit_ok;
	if (const auto r = call(daemon, o, io, {{"cmd", "flush_flows"}}, status))
		render_flush(*r, io.out);
	return status;
}

int cmd_stats(const arguments& args, const options& o, streams io, const daemon_call& daemon)
{
	if (!args.empty()) {
		io.err << "portcullis: stats takes no arguments\n";
		return exit_usage;
	}
	int status = exit_ok;
	if (const auto r = call(daemon, o, io, {{"cmd", "stats"}}, status))
		render_stats(*r, io.out);
	return status;
}

int cmd_explain_live(const std::string& flow, const options& o, streams io, const daemon_call& daemon)
{
	// Parse here too: a typo is a usage error with a caret, as offline, without bothering the daemon.
	if (!parse_flow(flow, io.err))
		return exit_usage;
	int status = exit_ok;
	if (const auto r = call(daemon, o, io, {{"cmd", "explain"}, {"flow", flow}}, status))
		render_explain(*r, o.verbose, io.out);
	return status;
}

int cmd_set(const arguments& args, const options& o, streams io, const daemon_call& daemon)
{
	static constexpr const char* usage =
		"portcullis: usage: portcullis set list | show NAME | add NAME ADDR[/LEN] [timeout 1h] | del NAME ADDR[/LEN] |"
		" flush NAME | load NAME FILE\n";
	const std::string op = args.empty() ? "" : args[0];
	const size_t want = op == "list" ? 1 : op == "show" || op == "flush" ? 2 : op == "del" || op == "load" ? 3 : 0;
	const bool add_ok = op == "add" && (args.size() == 3 || (args.size() == 5 && args[3] == "timeout"));
	if (!add_ok && (want == 0 || args.size() != want)) {
		io.err << usage;
		return exit_usage;
	}
	json req = {{"cmd", "set"}, {"op", op}};
	if (op != "list")
		req["set"] = args[1];
	if (op == "add" || op == "del") {
		if (!control::parse_prefix(args[2])) {
			io.err << "portcullis: set " << op << ": invalid address '" << args[2]
			       << "' (expected an IPv4 or IPv6 address or CIDR)\n";
			return exit_usage;
		}
		req["address"] = args[2];
	}
	if (op == "add" && args.size() == 5) {
		const auto t = parse_duration(args[4]);
		if (!t) {
			io.err << "portcullis: set add: invalid timeout '" << args[4]
			       << "' (expected a positive number of s, m, h or d, at most a year, e.g. 1h)\n";
			return exit_usage;
		}
		req["timeout_s"] = *t;
	}
	if (op == "load") {
		// Checked here first, as push does: errors with file:line:column before the daemon is asked.
		const auto feed = rules::read_address_feed(args[2]);
		for (const auto& d : feed.errors)
			io.err << rules::format(d) << "\n";
		if (!feed.errors.empty())
			return exit_failed;
		std::error_code ec;
		req["path"] = std::filesystem::absolute(args[2], ec).lexically_normal().string();
	}
	int status = exit_ok;
	if (const auto r = call(daemon, o, io, req, status))
		render_set(*r, op, io.out);
	return status;
}

} // namespace portcullis::cli
