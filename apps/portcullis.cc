// portcullis: the offline command-line tool. Validates rule files, explains which rule a flow hits and
// classifies a file of flows, with the same parser and classifier the dataplane uses. Thin on purpose:
// argument parsing, wiring and printing; the work is in lib/rules and lib/classify.
#include <boost/program_options.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "classify/classify.h"
#include "rules/tuple.h"
#include "rules/rules.h"

namespace po = boost::program_options;
namespace rules = portcullis::rules;
namespace classify = portcullis::classify;

namespace {

constexpr int exit_ok = 0, exit_failed = 1, exit_usage = 2, exit_internal = 3;

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

FLOW syntax (the direction is the packet's: in = outside -> inside):
  tcp 198.18.0.5:40000 -> 198.18.1.2:22 in [flags S]      (TCP defaults to a SYN)
  udp [2001:2::5]:5353 -> [2001:2::53]:53 out
  icmp 198.18.0.5 -> 198.18.1.2 in type echo-request [code 0]
  47 198.18.0.5 -> 198.18.1.2 out                          (any protocol by number)

Exit status: 0 success, 1 rule/flow errors, 2 usage errors, 3 internal errors.
The rule language is described in docs/rules.md.

Options)";

struct options {
	std::string services = "/etc/services";
	classify::backend backend = classify::backend::ours;
	bool verbose = false;
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
		std::cout << "verdict: " << rules::action_name(r.act) << (r.log ? " (logged)" : "") << "\n"
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
		("backend", po::value(&backend_name)->default_value("ours"), "classifier to use: ours or linear")
		("services", po::value(&o.services)->default_value("/etc/services"),
		 "services file for port names beyond the built-in table ('' for none)");
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
			return cmd_explain(args, o);
		if (command == "classify")
			return cmd_classify(args, o);
	} catch (const std::exception& e) {
		std::cerr << "portcullis: internal error: " << e.what() << "\n";
		return exit_internal;
	}
	std::cerr << (command.empty() ? std::string("portcullis: missing command")
	                              : "portcullis: unknown command '" + command + "'")
	          << " (expected check, explain or classify; see portcullis --help)\n";
	return exit_usage;
}
