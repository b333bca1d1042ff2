// portcullis: the command-line tool. Offline, it validates rule files, explains which rule a flow hits and
// classifies a file of flows, with the same parser and classifier the dataplane uses. Live, it talks to a
// running portcullisd over its control socket (docs/control.md): push rules, list rules with their
// counters, list and flush connections, show statistics, explain a flow against the live rules. Thin on
// purpose: argument parsing, wiring and printing; the work is in lib/rules, lib/classify and the daemon.
#include <boost/program_options.hpp>

#include <algorithm>
#include <cctype>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "classify/classify.h"
#include "control/protocol.h"
#include "etcd/etcd.h"
#include "rules/tuple.h"
#include "rules/rules.h"
#include "inspect/inspect.h"
#include "packet/packet.h"

namespace po = boost::program_options;
namespace rules = portcullis::rules;
namespace classify = portcullis::classify;
namespace control = portcullis::control;
namespace inspect = portcullis::inspect;
namespace packet = portcullis::packet;
using json = nlohmann::json;

namespace {

// 3 is both "internal error" (offline commands) and "cannot reach the daemon / permission denied"
// (live commands): either way the answer to the question asked is not known.
constexpr int exit_ok = 0, exit_failed = 1, exit_usage = 2, exit_internal = 3, exit_unreachable = 3;

constexpr const char* usage_text = R"(usage: portcullis [options] COMMAND ARGS...

Commands:
  check FILE                 Parse and compile a rule file offline. Prints a summary (rules per
                             direction and address family, classifier size, compile time) and
                             exits 0, or prints every error as FILE:LINE:COLUMN: error: ... on
                             stderr and exits 1.
  explain FILE 'FLOW'        Show which rule decides FLOW and why, field by field, or that the
                             direction's default applies. Checks that the fast classifier agrees
                             with the reference one.
  classify FILE FLOWS        Print the verdict for every flow in the file FLOWS (one per line,
                             '#' comments), then a count per verdict.
  publish FILE etcd://HOST[:PORT]/KEY
                             Check FILE as above, then store its text under KEY in etcd, where every
                             portcullisd following that key (rules.watch) swaps it in. FILE must be
                             self-contained (no include). Prints the etcd revision.

Live commands (talk to a running portcullisd over --socket; --json prints the daemon's answer):
  push FILE                  Validate FILE offline, then have the daemon load it (by absolute path, so
                             includes resolve) and swap it in. Prints the new generation, rule count,
                             compile and quiesce times. A refused rule set leaves the running one.
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
  explain 'FLOW'             Which live rule decides FLOW and why (one argument: live; with FILE first:
                             offline, as above).

FLOW syntax (the direction is the packet's: in = outside -> inside):
  tcp 198.18.0.5:40000 -> 198.18.1.2:22 in [flags S]      (TCP defaults to a SYN)
  udp [2001:2::5]:5353 -> [2001:2::53]:53 out
  icmp 198.18.0.5 -> 198.18.1.2 in type echo-request [code 0]
  47 198.18.0.5 -> 198.18.1.2 out                          (any protocol by number)

Exit status: 0 success, 1 rule/flow errors or a request the daemon refused or failed, 2 usage errors,
3 internal errors, or (live commands) the daemon cannot be reached or denied permission.
The rule language is described in docs/rules.md.

Options)";

struct options {
	std::string services = "/etc/services";
	classify::backend backend = classify::backend::ours;
	bool verbose = false;
	std::string socket = control::default_socket_path;
	bool json = false;
	int64_t limit = -1;  // flows: -1 = the daemon's default
	double timeout = 120;
	std::optional<std::string> payload;  // explain: the flow's first payload bytes (C escapes allowed)
};

std::optional<rules::ruleset> load(const std::string& path, const options& o)
{
	rules::parse_options po;
	po.services_file = o.services;
	auto r = rules::parse_file(path, po);
	for (const auto& d : r.errors)
		std::cerr << rules::format(d) << "\n";
	if (!r.errors.empty())
		std::cerr << path << ": " << r.errors.size() << (r.errors.size() == 1 ? " error\n" : " errors\n");
	return std::move(r.rules);
}

// One classifier per direction, built from the rules that apply to it; ids are indices into rs.rules.
struct direction_classifier {
	std::vector<uint32_t> ids;
	classify::build_result built;
};

direction_classifier build_for(const rules::ruleset& rs, rules::direction d, classify::backend b)
{
	direction_classifier dc;
	dc.ids = rules::rules_for(rs, d);
	std::vector<classify::rule_entry> entries;
	entries.reserve(dc.ids.size());
	for (uint32_t id : dc.ids)
		entries.push_back({id, &rs.rules[id].match});
	dc.built = classify::build(b, entries);
	return dc;
}

uint32_t lookup(const classify::classifier& c, const rules::flow_tuple& f)
{
	uint32_t result = classify::no_match;
	if (f.v6) {
		classify::key_v6 k{};
		k.src = f.src;
		k.dst = f.dst;
		k.sport = f.sport;
		k.dport = f.dport;
		k.proto = f.proto;
		k.tcp_flags = f.tcp_flags;
		c.classify(&k, 1, &result);
	} else {
		classify::key_v4 k{};
		k.src = uint32_t(f.src);
		k.dst = uint32_t(f.dst);
		k.sport = f.sport;
		k.dport = f.dport;
		k.proto = f.proto;
		k.tcp_flags = f.tcp_flags;
		c.classify(&k, 1, &result);
	}
	return result;
}

std::string where(const rules::rule& r) { return r.loc.file + ":" + std::to_string(r.loc.line); }

int cmd_check(const std::vector<std::string>& args, const options& o)
{
	if (args.size() != 1) {
		std::cerr << "portcullis: check takes one FILE\n";
		return exit_usage;
	}
	const auto rs = load(args[0], o);
	if (!rs)
		return exit_failed;
	std::string per_direction;
	size_t bytes = 0;
	double ms = 0;
	for (auto d : {rules::direction::in, rules::direction::out}) {
		auto dc = build_for(*rs, d, o.backend);
		if (!dc.built.classifier) {
			std::cerr << args[0] << ": error: cannot build the '" << classify::backend_name(o.backend)
			          << "' classifier for direction " << rules::direction_name(d) << ": " << dc.built.error << "\n";
			return exit_failed;
		}
		size_t v4 = 0, v6 = 0;
		for (uint32_t id : dc.ids) {
			v4 += rs->rules[id].match.applies_to_ipv4();
			v6 += rs->rules[id].match.applies_to_ipv6();
		}
		bytes += dc.built.classifier->memory_bytes();
		ms += dc.built.build_ms;
		per_direction += std::string(per_direction.empty() ? "" : "; ") + std::string(rules::direction_name(d)) + ": " +
		                 std::to_string(dc.ids.size()) + " (v4 " + std::to_string(v4) + ", v6 " + std::to_string(v6) +
		                 "), default " + std::string(rules::action_name(rs->default_for(d)));
	}
	char timing[32];
	std::snprintf(timing, sizeof timing, "%.2f", ms);
	std::cout << args[0] << ": OK, " << rs->rules.size() << " rules in " << rs->files.size()
	          << (rs->files.size() == 1 ? " file" : " files") << " (" << per_direction << "), classifier '"
	          << classify::backend_name(o.backend) << "' " << bytes << " bytes, compiled in " << timing << " ms\n";
	return exit_ok;
}

// Publishing goes through the same check as `check`: a set that does not compile here would be refused
// by every appliance, so it never reaches etcd.
int cmd_publish(const std::vector<std::string>& args, const options& o)
{
	if (args.size() != 2) {
		std::cerr << "portcullis: publish takes FILE and etcd://HOST[:PORT]/KEY\n";
		return exit_usage;
	}
	portcullis::etcd::location where;
	std::string error;
	if (!portcullis::etcd::parse_url(args[1], where, error)) {
		std::cerr << "portcullis: " << error << "\n";
		return exit_usage;
	}
	if (const int checked = cmd_check({args[0]}, o); checked != exit_ok)
		return checked;
	const auto rs = load(args[0], o);
	if (!rs)
		return exit_failed;
	if (rs->files.size() > 1) {
		std::cerr << args[0] << ": error: includes " << rs->files[1]
		          << "; a rule set in etcd is one self-contained text (inline the included rules)\n";
		return exit_failed;
	}
	std::ifstream in(args[0], std::ios::binary);
	const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
	int64_t revision = 0;
	if (!portcullis::etcd::put(where, text, revision, error, std::chrono::milliseconds(int64_t(o.timeout * 1000)))) {
		std::cerr << "portcullis: " << error << "\n";
		return exit_unreachable;
	}
	std::cout << "published " << args[0] << " (" << rs->rules.size() << " rules) to " << where.url() << " at revision "
	          << revision << "\n";
	return exit_ok;
}


std::string unescape(const std::string& in)
{
	std::string out;
	for (size_t i = 0; i < in.size(); ++i) {
		if (in[i] != '\\' || i + 1 == in.size()) {
			out += in[i];
			continue;
		}
		const char c = in[++i];
		if (c == 'n')
			out += '\n';
		else if (c == 'r')
			out += '\r';
		else if (c == 't')
			out += '\t';
		else if (c == 'x' && i + 2 < in.size() + 0 && std::isxdigit((unsigned char)in[i + 1]) &&
		         std::isxdigit((unsigned char)in[i + 2])) {
			out += char(std::stoi(in.substr(i + 1, 2), nullptr, 16));
			i += 2;
		} else
			out += c;
	}
	return out;
}

// The flow's first rule has payload conditions: show the payload rules that may still decide it and
// the payload-free verdict it follows meanwhile; with --payload, scan those bytes as the data path would
// (same Hyperscan database, same stream logic) and say which rule, and which condition, decides.
int explain_payload(const rules::ruleset& rs, const rules::flow_tuple& f, uint32_t first, const options& o)
{
	inspect::flow_tuple t{};
	t.src = f.src;
	t.dst = f.dst;
	t.sport = f.sport;
	t.dport = f.dport;
	t.proto = f.proto;
	t.family = f.v6 ? 6 : 4;
	t.tcp_flags = f.tcp_flags;
	const inspect::candidates c = inspect::candidates_for(rs, f.dir, t);
	std::cout << "payload: this flow's payload is inspected; meanwhile it follows "
	          << (c.payload_free == inspect::no_rule ? std::string("the default (") + std::string(rules::action_name(rs.default_for(f.dir))) + ")"
	                                                 : where(rs.rules[c.payload_free]) + ": " + rs.rules[c.payload_free].text)
	          << "\n";
	for (uint32_t r : c.rules)
		std::cout << "  candidate " << where(rs.rules[r]) << ": " << rs.rules[r].text << "\n";
	if (!o.payload)
		return exit_ok;
	auto db = inspect::database::build(rs);
	if (!db.db) {
		std::cerr << db.error << "\n";
		return exit_failed;
	}
	inspect::scan_config cfg;
	cfg.max_streams = 4;
	auto scr = inspect::scratch::create(*db.db, cfg);
	if (!scr.s) {
		std::cerr << "portcullis: " << scr.error << "\n";
		return exit_internal;
	}
	const std::string bytes = unescape(*o.payload);
	packet::parsed p{};
	p.family = t.family;
	p.kind = f.v6 ? packet::packet_kind::ipv6 : packet::packet_kind::ipv4;
	if (f.v6) {
		p.src.v6 = f.src;
		p.dst.v6 = f.dst;
	} else {
		p.src.v4 = uint32_t(f.src);
		p.dst.v4 = uint32_t(f.dst);
	}
	p.sport = f.sport;
	p.dport = f.dport;
	p.proto = f.proto;
	p.tcp_flags = 0x02;
	p.tcp_seq = 1000;
	inspect::flow_streams streams(1);
	streams.begin(*scr.s, 1, inspect::plan_for(first, c.payload_free), p, f.dir);
	inspect::result r{};
	if (f.proto == 6)
		r = streams.scan(*scr.s, 1, p, reinterpret_cast<const uint8_t*>(bytes.data()), true);
	p.tcp_flags = f.proto == 6 ? 0x18 : 0;
	p.tcp_seq = 1001;
	p.payload_offset = 0;
	p.payload_length = uint16_t(std::min<size_t>(bytes.size(), 65535));
	r = streams.scan(*scr.s, 1, p, reinterpret_cast<const uint8_t*>(bytes.data()), true);
	if (r.st == inspect::state::matched && r.rule != inspect::no_rule) {
		const rules::rule& d = rs.rules[r.rule];
		std::cout << "payload: matched " << where(d) << ": " << d.text << "\n"
		          << "verdict: " << rules::action_name(d.act) << " (decided by the payload)\n";
		for (const auto& cond : d.payload)
			std::cout << "  condition at " << cond.loc.file << ":" << cond.loc.line << ":" << cond.loc.column << "\n";
	} else {
		std::cout << "payload: no candidate matched these " << bytes.size() << " bytes; the payload-free verdict stands\n";
	}
	return exit_ok;
}

int cmd_explain(const std::vector<std::string>& args, const options& o)
{
	if (args.size() != 2) {
		std::cerr << "portcullis: explain takes FILE and one FLOW in quotes, e.g. "
		             "'tcp 198.18.0.5:40000 -> 198.18.1.2:22 in'\n";
		return exit_usage;
	}
	const auto fp = rules::parse_tuple(args[1]);
	if (!fp.value) {
		std::cerr << "flow:" << fp.column << ": error: " << fp.error << "\n  " << args[1] << "\n  "
		          << std::string(fp.column ? fp.column - 1 : 0, ' ') << "^\n";
		return exit_usage;
	}
	const auto rs = load(args[0], o);
	if (!rs)
		return exit_failed;
	const rules::flow_tuple& f = *fp.value;
	auto fast = build_for(*rs, f.dir, o.backend);
	auto reference = build_for(*rs, f.dir, classify::backend::linear);
	if (!fast.built.classifier || !reference.built.classifier) {
		std::cerr << "portcullis: cannot build classifier: " << fast.built.error << reference.built.error << "\n";
		return exit_internal;
	}
	const uint32_t id = lookup(*fast.built.classifier, f);
	const uint32_t ref = lookup(*reference.built.classifier, f);

	std::cout << "flow:    " << rules::format(f) << "\n";
	if (o.verbose) {
		for (uint32_t i : fast.ids) {
			if (i == ref)
				break;
			const auto e = rules::explain(rs->rules[i], f);
			std::cout << "skipped: " << where(rs->rules[i]) << ": " << rs->rules[i].text << "\n         ("
			          << (e.reasons.empty() ? "" : e.reasons.back()) << ")\n";
		}
	}
	if (id == classify::no_match) {
		std::cout << "verdict: " << rules::action_name(rs->default_for(f.dir)) << " (default "
		          << rules::direction_name(f.dir) << ": no rule matched)\n";
	} else {
		const auto& r = rs->rules[id];
		const auto e = rules::explain(r, f);
		std::cout << "verdict: "
		          << (r.payload.empty() ? std::string(rules::action_name(r.act)) : std::string("decided by the payload (see below)"))
		          << (r.log ? " (logged)" : "") << "\n"
		          << "rule:    " << where(r) << ": " << r.text << "\n"
		          << "counter: " << r.counter << "\n"
		          << "because:\n";
		for (const auto& reason : e.reasons)
			std::cout << "  " << reason << "\n";
		if (!e.matched) {
			std::cerr << "portcullis: internal error: the classifier chose a rule its explanation does not match\n";
			return exit_internal;
		}
	}
	if (id != classify::no_match && !rs->rules[id].payload.empty()) {
		const int rc = explain_payload(*rs, f, id, o);
		if (rc != exit_ok)
			return rc;
	}
	if (id != ref) {
		std::cerr << "portcullis: internal error: classifier '" << classify::backend_name(o.backend) << "' chose "
		          << (id == classify::no_match ? "no rule" : where(rs->rules[id])) << " but the reference chose "
		          << (ref == classify::no_match ? "no rule" : where(rs->rules[ref])) << "\n";
		return exit_internal;
	}
	return exit_ok;
}

int cmd_classify(const std::vector<std::string>& args, const options& o)
{
	if (args.size() != 2) {
		std::cerr << "portcullis: classify takes FILE and FLOWS\n";
		return exit_usage;
	}
	std::ifstream in(args[1]);
	if (!in) {
		std::cerr << args[1] << ": error: cannot open the flows file\n";
		return exit_failed;
	}
	const auto rs = load(args[0], o);
	if (!rs)
		return exit_failed;

	struct entry {
		uint32_t line;
		rules::flow_tuple flow;
	};
	std::vector<entry> flows;
	bool bad = false;
	std::string text;
	for (uint32_t line = 1; std::getline(in, text); ++line) {
		if (auto hash = text.find('#'); hash != std::string::npos)
			text.resize(hash);
		if (text.find_first_not_of(" \t\r") == std::string::npos)
			continue;
		auto fp = rules::parse_tuple(text);
		if (!fp.value) {
			std::cerr << args[1] << ":" << line << ":" << fp.column << ": error: " << fp.error << "\n";
			bad = true;
			continue;
		}
		flows.push_back({line, *fp.value});
	}
	if (bad)
		return exit_failed;

	std::array<direction_classifier, 2> fast{build_for(*rs, rules::direction::in, o.backend),
	                                         build_for(*rs, rules::direction::out, o.backend)};
	std::array<direction_classifier, 2> reference{build_for(*rs, rules::direction::in, classify::backend::linear),
	                                              build_for(*rs, rules::direction::out, classify::backend::linear)};
	for (const auto* dc : {&fast[0], &fast[1], &reference[0], &reference[1]}) {
		if (!dc->built.classifier) {
			std::cerr << "portcullis: cannot build classifier: " << dc->built.error << "\n";
			return exit_internal;
		}
	}

	// The flows go through the classifier in bursts, one per direction and family, as on the data path.
	std::vector<uint32_t> results(flows.size(), classify::no_match);
	for (int d = 0; d < 2; ++d) {
		std::vector<classify::key_v4> k4;
		std::vector<classify::key_v6> k6;
		std::vector<size_t> i4, i6;
		for (size_t i = 0; i < flows.size(); ++i) {
			const auto& f = flows[i].flow;
			if (int(f.dir) != d)
				continue;
			if (f.v6) {
				classify::key_v6 k{};
				k.src = f.src, k.dst = f.dst, k.sport = f.sport, k.dport = f.dport, k.proto = f.proto,
				k.tcp_flags = f.tcp_flags;
				k6.push_back(k);
				i6.push_back(i);
			} else {
				classify::key_v4 k{};
				k.src = uint32_t(f.src), k.dst = uint32_t(f.dst), k.sport = f.sport, k.dport = f.dport,
				k.proto = f.proto, k.tcp_flags = f.tcp_flags;
				k4.push_back(k);
				i4.push_back(i);
			}
		}
		std::vector<uint32_t> r4(k4.size()), r6(k6.size());
		fast[d].built.classifier->classify(k4.data(), uint32_t(k4.size()), r4.data());
		fast[d].built.classifier->classify(k6.data(), uint32_t(k6.size()), r6.data());
		for (size_t j = 0; j < r4.size(); ++j)
			results[i4[j]] = r4[j];
		for (size_t j = 0; j < r6.size(); ++j)
			results[i6[j]] = r6[j];
	}

	std::map<std::string, size_t> counts;
	int status = exit_ok;
	for (size_t i = 0; i < flows.size(); ++i) {
		const auto& f = flows[i].flow;
		const uint32_t id = results[i];
		const uint32_t ref = lookup(*reference[int(f.dir)].built.classifier, f);
		const auto verdict = id == classify::no_match ? rules::action_name(rs->default_for(f.dir)) : rules::action_name(rs->rules[id].act);
		const std::string by = id == classify::no_match ? "default " + std::string(rules::direction_name(f.dir))
		                                                : where(rs->rules[id]);
		char buf[64];
		std::snprintf(buf, sizeof buf, "%-6s %-24s ", std::string(verdict).c_str(), by.c_str());
		std::cout << args[1] << ":" << flows[i].line << ": " << buf << rules::format(f) << "\n";
		++counts[std::string(verdict)];
		if (id != ref) {
			std::cerr << args[1] << ":" << flows[i].line << ": internal error: classifier '"
			          << classify::backend_name(o.backend) << "' disagrees with the reference\n";
			status = exit_internal;
		}
	}
	std::cout << flows.size() << " flows:";
	for (const auto* a : {"allow", "drop", "reject"})
		std::cout << " " << a << " " << counts[a];
	std::cout << "\n";
	return status;
}

// ---- live commands: one request each over the control socket ----

// Sends req; on an answer with "ok":true returns it, otherwise prints why and sets status to the exit code.
std::optional<json> call(const options& o, json req, int& status)
{
	const auto r = control::request(o.socket, req, int(o.timeout * 1000));
	if (r.status != control::client_status::ok) {
		const char* code = r.status == control::client_status::permission_denied ? "permission_denied"
		                   : r.status == control::client_status::protocol_error  ? "protocol_error"
		                                                                         : "unreachable";
		if (o.json)
			std::cout << json{{"ok", false}, {"code", code}, {"error", r.error}}.dump() << "\n";
		std::cerr << "portcullis: " << r.error << "\n";
		status = exit_unreachable;
		return std::nullopt;
	}
	if (o.json)
		std::cout << r.response.dump() << "\n";
	if (!r.response.value("ok", false)) {
		if (!o.json) {
			for (const auto& e : r.response.value("errors", json::array()))
				std::cerr << e.value("file", "") << ":" << e.value("line", 0) << ":" << e.value("column", 0)
				          << ": error: " << e.value("message", "") << "\n";
			std::cerr << "portcullis: " << req.value("cmd", "") << " failed: " << r.response.value("error", "no reason given")
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

std::string fixed(double v, int decimals)
{
	char buf[64];
	std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
	return buf;
}

// 0.4s, 12s, 5m03s, 2h10m, 3d04h: short enough for a column.
std::string duration(double s)
{
	if (s < 10)
		return fixed(s, 1) + "s";
	const auto t = uint64_t(s);
	char buf[32];
	if (t < 60)
		std::snprintf(buf, sizeof buf, "%lus", (unsigned long)t);
	else if (t < 3600)
		std::snprintf(buf, sizeof buf, "%lum%02lus", (unsigned long)(t / 60), (unsigned long)(t % 60));
	else if (t < 86400)
		std::snprintf(buf, sizeof buf, "%luh%02lum", (unsigned long)(t / 3600), (unsigned long)(t / 60 % 60));
	else
		std::snprintf(buf, sizeof buf, "%lud%02luh", (unsigned long)(t / 86400), (unsigned long)(t / 3600 % 24));
	return buf;
}

std::string endpoint(const json& f, const char* addr, const char* port)
{
	const std::string a = f.value(addr, "");
	const std::string p = f.value("proto", "");
	if (p != "tcp" && p != "udp")
		return a;
	const std::string port_text = std::to_string(f.value(port, 0));
	return f.value("family", 4) == 6 ? "[" + a + "]:" + port_text : a + ":" + port_text;
}

// Where the active rules came from (the daemon's "source"), and whether a restart would keep them.
std::string source_line(const json& src)
{
	const std::string file = src.value("file", ""), configured = src.value("configured", "");
	if (!src.contains("origin"))
		return "source: not reported by this portcullisd";
	if (src.value("origin", "") == "config")
		return "source: the configured rules file " + file + " (loaded at start-up or by SIGHUP)";
	if (src.value("origin", "") == "etcd")
		return "source: " + file + " (the etcd key this portcullisd follows; a restart starts on " + configured +
		       " and takes the key again)";
	return "source: pushed " + file + " (runtime only: a restart or SIGHUP loads the configured " + configured + ")";
}

int cmd_push(const std::vector<std::string>& args, const options& o)
{
	if (args.size() != 1) {
		std::cerr << "portcullis: push takes one FILE\n";
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
			std::cout << json{{"ok", false}, {"code", control::error_code::rules}, {"error", "the rule set has errors; not sent"},
			                  {"errors", errors}}.dump()
			          << "\n";
		} else {
			for (const auto& d : parsed.errors)
				std::cerr << rules::format(d) << "\n";
			std::cerr << args[0] << ": " << parsed.errors.size() << (parsed.errors.size() == 1 ? " error" : " errors")
			          << "; not sent to the daemon\n";
		}
		return exit_failed;
	}
	std::error_code ec;
	const std::string path = std::filesystem::absolute(args[0], ec).lexically_normal().string();
	int status = exit_ok;
	const auto r = call(o, {{"cmd", "push"}, {"path", path}}, status);
	if (r) {
		std::cout << "pushed " << path << ": generation " << r->value("generation", 0) << " (was "
		          << r->value("previous_generation", 0) << "), " << r->value("rules", 0) << " rules, digest "
		          << r->value("digest", "") << ", compiled in " << fixed(r->value("compile_ms", 0.0), 2)
		          << " ms, quiesced in " << fixed(r->value("quiesce_us", 0.0), 1) << " us\n";
		std::cout << source_line(r->value("source", json::object())) << "\n";
	}
	return status;
}

int cmd_rules(const std::vector<std::string>& args, const options& o)
{
	if (!args.empty()) {
		std::cerr << "portcullis: rules takes no arguments\n";
		return exit_usage;
	}
	int status = exit_ok;
	const auto r = call(o, {{"cmd", "rules"}}, status);
	if (!r)
		return status;
	const auto& list = (*r)["rules"];
	std::cout << "generation " << r->value("generation", 0) << ", " << list.size() << " rules, default in "
	          << r->value("default_in", "") << ", default out " << r->value("default_out", "") << ", digest "
	          << r->value("digest", "") << "\n"
	          << source_line(r->value("source", json::object())) << "\n";
	char line[160];
	std::snprintf(line, sizeof line, "%5s %12s %14s %9s  %s\n", "#", "PACKETS", "BYTES", "LAST HIT", "WHERE: RULE");
	std::cout << line;
	for (const auto& x : list) {
		const auto& hit = x["last_hit_seconds_ago"];
		const std::string last = hit.is_number() ? duration(hit.get<double>()) + " ago" : "never";
		std::snprintf(line, sizeof line, "%5u %12lu %14lu %9s  ", x.value("index", 0u), (unsigned long)x.value("packets", uint64_t(0)),
		              (unsigned long)x.value("bytes", uint64_t(0)), last.c_str());
		std::cout << line << x.value("file", "") << ":" << x.value("line", 0) << ": " << x.value("text", "") << "\n";
	}
	return exit_ok;
}

int cmd_flows(const std::vector<std::string>& args, const options& o)
{
	json filter = json::object();
	for (size_t i = 0; i < args.size(); ++i) {
		const std::string& w = args[i];
		auto value = [&]() -> std::optional<std::string> {
			if (i + 1 >= args.size()) {
				std::cerr << "portcullis: flows: '" << w << "' needs a value\n";
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
				std::cerr << "portcullis: flows: port must be 0-65535, not '" << *v << "'\n";
				return exit_usage;
			}
			filter["port"] = std::stoul(*v);
		} else {
			std::cerr << "portcullis: flows: unexpected '" << w
			          << "' (expected tcp, udp, icmp, icmp6, proto P, host ADDR[/LEN], port N or state S)\n";
			return exit_usage;
		}
	}
	json req = {{"cmd", "flows"}, {"filter", filter}};
	if (o.limit >= 0)
		req["limit"] = o.limit;
	int status = exit_ok;
	const auto r = call(o, req, status);
	if (!r)
		return status;
	for (const auto& f : (*r)["flows"]) {
		const auto& p = f["packets"];
		const auto& b = f["bytes"];
		char line[256];
		std::snprintf(line, sizeof line, "%-5s %-45s %-3s %-16s age %-7s idle %-7s pkts %lu/%lu bytes %lu/%lu\n",
		              f.value("proto", "").c_str(),
		              (endpoint(f, "src", "sport") + " -> " + endpoint(f, "dst", "dport")).c_str(),
		              f.value("direction", "").c_str(), f.value("state", "").c_str(), duration(f.value("age_s", 0.0)).c_str(),
		              duration(f.value("idle_s", 0.0)).c_str(), (unsigned long)p[0].get<uint64_t>(),
		              (unsigned long)p[1].get<uint64_t>(), (unsigned long)b[0].get<uint64_t>(), (unsigned long)b[1].get<uint64_t>());
		std::cout << line;
	}
	std::cout << r->value("listed", 0) << " listed, " << r->value("matched", 0) << " matching, " << r->value("live", 0)
	          << " live" << (r->value("truncated", false) ? " (raise --limit to see more)" : "") << "\n";
	return exit_ok;
}

int cmd_flush(const std::vector<std::string>& args, const options& o)
{
	if (args.size() != 1 || args[0] != "flows") {
		std::cerr << "portcullis: usage: portcullis flush flows\n";
		return exit_usage;
	}
	int status = exit_ok;
	if (const auto r = call(o, {{"cmd", "flush_flows"}}, status))
		std::cout << "flushed " << r->value("flushed", 0) << " flows\n";
	return status;
}

int cmd_stats(const std::vector<std::string>& args, const options& o)
{
	if (!args.empty()) {
		std::cerr << "portcullis: stats takes no arguments\n";
		return exit_usage;
	}
	int status = exit_ok;
	const auto r = call(o, {{"cmd", "stats"}}, status);
	if (!r)
		return status;
	char line[256];
	std::cout << "ports:\n";
	for (const auto& p : (*r)["ports"]) {
		std::snprintf(line, sizeof line, "  %-16s rx %12lu pkts %14lu bytes   tx %12lu pkts %14lu bytes\n",
		              p.value("name", "").c_str(), (unsigned long)p.value("rx_packets", uint64_t(0)),
		              (unsigned long)p.value("rx_bytes", uint64_t(0)), (unsigned long)p.value("tx_packets", uint64_t(0)),
		              (unsigned long)p.value("tx_bytes", uint64_t(0)));
		std::cout << line;
	}
	std::cout << "traffic:\n";
	for (const char* d : {"in", "out"})
		for (const char* v : {"forwarded", "dropped", "rejected"}) {
			const auto& x = (*r)["traffic"][d][v];
			std::snprintf(line, sizeof line, "  %-3s %-9s %12lu pkts %14lu bytes\n", d, v,
			              (unsigned long)x.value("packets", uint64_t(0)), (unsigned long)x.value("bytes", uint64_t(0)));
			std::cout << line;
		}
	auto nonzero = [&](const char* title, const json& m) {
		std::cout << title;
		bool any = false;
		for (const auto& [name, v] : m.items())
			if (v.get<uint64_t>()) {
				std::snprintf(line, sizeof line, "\n  %-32s %12lu", name.c_str(), (unsigned long)v.get<uint64_t>());
				std::cout << line;
				any = true;
			}
		std::cout << (any ? "\n" : " none\n");
	};
	nonzero("drops by reason:", (*r)["drops"]);
	nonzero("malformed by parse reason:", (*r)["malformed"]);
	const auto& f = (*r)["flows"];
	std::cout << "flows: " << f.value("live", 0) << " live of " << f.value("capacity", 0) << ", " << f.value("opened", 0)
	          << " opened, " << f.value("evicted_embryonic", 0) << " evicted, " << f.value("expired", 0) << " expired, "
	          << f.value("flushed", 0) << " flushed, " << f.value("refused_full", 0) + f.value("refused_buckets", 0)
	          << " refused\n";
	nonzero("expired by state:", f["expired_by_state"]);
	const auto& rl = (*r)["rules"];
	std::cout << "rules: generation " << rl.value("generation", 0) << ", " << rl.value("count", 0) << " rules, "
	          << rl.value("swaps_ok", 0) << " swaps (" << rl.value("swaps_failed", 0) << " refused), last compile "
	          << fixed(rl.value("last_compile_ms", 0.0), 2) << " ms, last quiesce " << fixed(rl.value("last_quiesce_us", 0.0), 1)
	          << " us, digest " << rl.value("digest", "") << "\n  " << source_line(rl.value("source", json::object())) << "\n";
	if (r->contains("rules_watch")) {
		const auto& w = (*r)["rules_watch"];
		std::cout << "rules.watch: " << w.value("url", "") << (w.value("connected", false) ? " (connected)" : " (NOT connected)")
		          << ", newest revision seen " << w.value("revision", int64_t(0)) << "\n  " << w.value("state", "") << "\n";
	}
	std::cout << "workers:\n";
	for (const auto& w : (*r)["workers"]) {
		std::snprintf(line, sizeof line, "  %-3u busy %5.1f%% (last second), %5.1f%% (since start), %lu flows\n",
		              w.value("worker", 0u), 100 * w.value("busy_ratio", 0.0), 100 * w.value("busy_ratio_total", 0.0),
		              (unsigned long)w.value("flows", uint64_t(0)));
		std::cout << line;
	}
	return exit_ok;
}

int cmd_explain_live(const std::string& flow, const options& o)
{
	// Parse here too: a typo is a usage error with a caret, as offline, without bothering the daemon.
	const auto fp = rules::parse_tuple(flow);
	if (!fp.value) {
		std::cerr << "flow:" << fp.column << ": error: " << fp.error << "\n  " << flow << "\n  "
		          << std::string(fp.column ? fp.column - 1 : 0, ' ') << "^\n";
		return exit_usage;
	}
	int status = exit_ok;
	const auto r = call(o, {{"cmd", "explain"}, {"flow", flow}}, status);
	if (!r)
		return status;
	std::cout << "flow:    " << r->value("flow", "") << "\n";
	if (o.verbose)
		for (const auto& s : (*r)["skipped"])
			std::cout << "skipped: " << s.value("file", "") << ":" << s.value("line", 0) << ": " << s.value("text", "")
			          << "\n         (" << s.value("reason", "") << ")\n";
	if (r->value("default", false)) {
		std::cout << "verdict: " << r->value("verdict", "") << " (default " << r->value("direction", "")
		          << ": no rule matched)\n";
	} else {
		const auto& rule = (*r)["rule"];
		std::cout << "verdict: " << r->value("verdict", "") << (rule.value("log", false) ? " (logged)" : "") << "\n"
		          << "rule:    " << rule.value("file", "") << ":" << rule.value("line", 0) << ": " << rule.value("text", "")
		          << "\n"
		          << "counter: " << rule.value("counter", "") << "\n"
		          << "because:\n";
		for (const auto& reason : (*r)["reasons"])
			std::cout << "  " << reason.get<std::string>() << "\n";
	}
	std::cout << "(live rules, generation " << r->value("generation", 0) << ")\n";
	return exit_ok;
}

} // namespace

int main(int argc, char** argv)
{
	options o;
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
		("timeout", po::value(&o.timeout)->default_value(120), "live commands: seconds to wait for the daemon");
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
		return exit_usage;
	}
	if (vm.count("help")) {
		std::cout << visible << "\n";
		return exit_ok;
	}
	if (backend_name == "ours")
		o.backend = classify::backend::ours;
	else if (backend_name == "linear")
		o.backend = classify::backend::linear;
	else {
		std::cerr << "portcullis: unknown backend '" << backend_name << "' (expected ours or linear)\n";
		return exit_usage;
	}
	try {
		if (command == "check")
			return cmd_check(args, o);
		if (command == "explain")
			return args.size() == 1 ? cmd_explain_live(args[0], o) : cmd_explain(args, o);
		if (command == "classify")
			return cmd_classify(args, o);
		if (command == "publish")
			return cmd_publish(args, o);
		if (command == "push")
			return cmd_push(args, o);
		if (command == "rules")
			return cmd_rules(args, o);
		if (command == "flows")
			return cmd_flows(args, o);
		if (command == "flush")
			return cmd_flush(args, o);
		if (command == "stats")
			return cmd_stats(args, o);
	} catch (const std::exception& e) {
		std::cerr << "portcullis: internal error: " << e.what() << "\n";
		return exit_internal;
	}
	std::cerr << (command.empty() ? std::string("portcullis: missing command")
	                              : "portcullis: unknown command '" + command + "'")
	          << " (expected check, explain, classify, publish, push, rules, flows, flush, stats; see portcullis --help)\n";
	return exit_usage;
}
