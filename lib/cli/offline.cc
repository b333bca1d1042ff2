// The offline commands: check, explain FILE FLOW and classify, with the rule parser, classifiers and
// payload scanner the dataplane uses, run in this process on a rule file.
#include "cli/offline.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "classify/classify.h"
#include "inspect/inspect.h"
#include "lint/lint.h"
#include "packet/packet.h"
#include "rules/rules.h"
#include "rules/tuple.h"

namespace portcullis::cli {

std::optional<rules::ruleset> load(const std::string& path, const options& o, std::ostream& err)
{
	rules::parse_options po;
	po.services_file = o.services;
	auto r = rules::parse_file(path, po);
	for (const auto& d : r.errors)
		err << rules::format(d) << "\n";
	if (!r.errors.empty())
		err << path << ": " << r.errors.size() << (r.errors.size() == 1 ? " error\n" : " errors\n");
	return std::move(r.rules);
}

namespace {

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

uint32_t lookup(const classify::classifier& c, const rules::ruleset& rs, const rules::flow_tuple& f)
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
		k.set_bits = rules::set_bits_for(rs, f.src, f.dst);
		c.classify(&k, 1, &result);
	} else {
		classify::key_v4 k{};
		k.src = uint32_t(f.src);
		k.dst = uint32_t(f.dst);
		k.sport = f.sport;
		k.dport = f.dport;
		k.proto = f.proto;
		k.tcp_flags = f.tcp_flags;
		k.set_bits = rules::set_bits_for(rs, uint32_t(f.src), uint32_t(f.dst));
		c.classify(&k, 1, &result);
	}
	return result;
}

std::string where(const rules::rule& r) { return r.loc.file + ":" + std::to_string(r.loc.line); }

} // namespace

int cmd_check(const arguments& args, const options& o, streams io)
{
	if (args.size() != 1) {
		io.err << "portcullis: check takes one FILE\n";
		return exit_usage;
	}
	const auto rs = load(args[0], o, io.err);
	if (!rs)
		return exit_failed;
	std::string per_direction;
	size_t bytes = 0;
	double ms = 0;
	for (auto d : {rules::direction::in, rules::direction::out}) {
		auto dc = build_for(*rs, d, o.backend);
		if (!dc.built.classifier) {
			io.err << args[0] << ": error: cannot build the '" << classify::backend_name(o.backend)
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
	if (!o.lint) {
		io.out << args[0] << ": OK, " << rs->rules.size() << " rules in " << rs->files.size()
		       << (rs->files.size() == 1 ? " file" : " files") << " (" << per_direction << "), classifier '"
		       << classify::backend_name(o.backend) << "' " << bytes << " bytes, compiled in " << timing << " ms\n";
		return exit_ok;
	}
	const auto started = std::chrono::steady_clock::now();
	const lint::report report = lint::lint(*rs);
	const double lint_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
	if (o.json) {
		nlohmann::json findings = nlohmann::json::array();
		for (const auto& f : report.findings) {
			nlohmann::json by = nlohmann::json::array();
			for (uint32_t b : f.by)
				by.push_back({{"file", rs->rules[b].loc.file}, {"line", rs->rules[b].loc.line}, {"index", b}});
			findings.push_back({{"kind", lint::kind_name(f.what)}, {"file", f.loc.file}, {"line", f.loc.line},
			                    {"column", f.loc.column}, {"rule", f.rule >= 0 ? nlohmann::json(f.rule) : nlohmann::json(nullptr)},
			                    {"message", f.message}, {"by", by}});
		}
		io.out << nlohmann::json{{"ok", true}, {"rules", rs->rules.size()}, {"findings", findings},
		                         {"undecided", report.undecided}, {"lint_ms", lint_ms}}.dump()
		       << "\n";
		return exit_ok;
	}
	print_lint(report, *rs, io.out);
	io.out << args[0] << ": " << rs->rules.size() << " rules, " << report.findings.size()
	       << (report.findings.size() == 1 ? " warning" : " warnings")
	       << (report.undecided ? ", " + std::to_string(report.undecided) + " rules too intricate to decide" : std::string())
	       << "\n";
	return exit_ok;
}

void print_lint(const lint::report& report, const rules::ruleset& rs, std::ostream& out)
{
	for (const auto& f : report.findings)
		out << f.loc.file << ":" << f.loc.line << ":" << f.loc.column << ": warning: " << lint::kind_name(f.what) << ": "
		    << (f.rule >= 0 ? rs.rules[size_t(f.rule)].text + ": " : std::string()) << f.message << "\n";
}

// Publishing goes through the same check as `check`: a set that does not compile here would be refused
// by every appliance, so it never reaches etcd.

namespace {

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
inspect::flow_tuple inspect_tuple(const rules::flow_tuple& f)
{
	inspect::flow_tuple t{};
	t.src = f.src;
	t.dst = f.dst;
	t.sport = f.sport;
	t.dport = f.dport;
	t.proto = f.proto;
	t.family = f.v6 ? 6 : 4;
	t.tcp_flags = f.tcp_flags;
	return t;
}

// A default verdict: the rules of the flow's direction and family that failed on the fewest fields (at
// most three, in file order among equals), and the fields that failed, so that a missing rule or a
// typo in one shows at once.
void print_nearest(const rules::ruleset& rs, const rules::flow_tuple& f, uint8_t set_bits, streams io)
{
	struct near {
		size_t failed;
		uint32_t id;
		std::vector<std::string> why;
	};
	std::vector<near> all;
	for (uint32_t i = 0; i < rs.rules.size(); ++i)
		if (auto m = rules::mismatches(rs.rules[i], f, set_bits); m && !m->empty()) {
			// Another protocol is farther than another port: its ports were not even compared.
			const size_t distance = m->size() + (m->front().starts_with("proto ") ? 1 : 0);
			all.push_back({distance, i, std::move(*m)});
		}
	std::stable_sort(all.begin(), all.end(), [](const near& a, const near& b) { return a.failed < b.failed; });
	if (all.empty())
		return;
	io.out << "nearest rules:\n";
	for (size_t k = 0; k < all.size() && k < 3; ++k) {
		const rules::rule& r = rs.rules[all[k].id];
		io.out << "  " << where(r) << " " << r.text << ":";
		for (size_t j = 0; j < all[k].why.size(); ++j)
			io.out << (j ? ";" : "") << " " << all[k].why[j];
		io.out << "\n";
	}
}

int explain_payload(const rules::ruleset& rs, const rules::flow_tuple& f, uint32_t first, const options& o, streams io)
{
	const inspect::flow_tuple t = inspect_tuple(f);
	const inspect::candidates c = inspect::candidates_for(rs, f.dir, t);
	io.out << "payload: this flow's payload is inspected; meanwhile it follows "
	          << (c.payload_free == inspect::no_rule ? std::string("the default (") + std::string(rules::action_name(rs.default_for(f.dir))) + ")"
	                                                 : where(rs.rules[c.payload_free]) + ": " + rs.rules[c.payload_free].text)
	          << "\n";
	for (uint32_t r : c.rules)
		io.out << "  candidate " << where(rs.rules[r]) << ": " << rs.rules[r].text << "\n";
	if (!o.payload)
		return exit_ok;
	auto db = inspect::database::build(rs);
	if (!db.db) {
		io.err << db.error << "\n";
		return exit_failed;
	}
	inspect::scan_config cfg;
	cfg.max_streams = 4;
	auto scr = inspect::scratch::create(*db.db, cfg);
	if (!scr.s) {
		io.err << "portcullis: " << scr.error << "\n";
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
		io.out << "payload: matched " << where(d) << ": " << d.text << "\n"
		          << "verdict: " << rules::action_name(d.act) << " (decided by the payload)\n";
		for (const auto& cond : d.payload)
			io.out << "  condition at " << cond.loc.file << ":" << cond.loc.line << ":" << cond.loc.column << "\n";
	} else {
		io.out << "payload: no candidate matched these " << bytes.size() << " bytes; the payload-free verdict stands\n";
	}
	return exit_ok;
}

} // namespace

int cmd_explain(const arguments& args, const options& o, streams io)
{
	if (args.size() != 2) {
		io.err << "portcullis: explain takes FILE and one FLOW in quotes, e.g. "
		             "'tcp 198.18.0.5:40000 -> 198.18.1.2:22 in'\n";
		return exit_usage;
	}
	const auto fp = rules::parse_tuple(args[1]);
	if (!fp.value) {
		io.err << "flow:" << fp.column << ": error: " << fp.error << "\n  " << args[1] << "\n  "
		          << std::string(fp.column ? fp.column - 1 : 0, ' ') << "^\n";
		return exit_usage;
	}
	const auto rs = load(args[0], o, io.err);
	if (!rs)
		return exit_failed;
	const rules::flow_tuple& f = *fp.value;
	auto fast = build_for(*rs, f.dir, o.backend);
	auto reference = build_for(*rs, f.dir, classify::backend::linear);
	if (!fast.built.classifier || !reference.built.classifier) {
		io.err << "portcullis: cannot build classifier: " << fast.built.error << reference.built.error << "\n";
		return exit_internal;
	}
	const uint32_t id = lookup(*fast.built.classifier, *rs, f);
	const uint32_t ref = lookup(*reference.built.classifier, *rs, f);

	const uint8_t set_bits = f.v6 ? rules::set_bits_for(*rs, f.src, f.dst)
	                              : rules::set_bits_for(*rs, uint32_t(f.src), uint32_t(f.dst));
	io.out << "flow:    " << rules::format(f) << "\n";
	if (o.verbose) {
		for (uint32_t i : fast.ids) {
			if (i == ref)
				break;
			const auto e = rules::explain(rs->rules[i], f, set_bits);
			io.out << "skipped: " << where(rs->rules[i]) << ": " << rs->rules[i].text << "\n         ("
			          << (e.reasons.empty() ? "" : e.reasons.back()) << ")\n";
		}
	}
	if (id == classify::no_match) {
		io.out << "verdict: " << rules::action_name(rs->default_for(f.dir)) << " (default "
		          << rules::direction_name(f.dir) << ": no rule matched)\n";
		print_nearest(*rs, f, set_bits, io);
	} else {
		const auto& r = rs->rules[id];
		const auto e = rules::explain(r, f, set_bits);
		io.out << "verdict: "
		          << (r.payload.empty() ? std::string(rules::action_name(r.act)) : std::string("decided by the payload (see below)"))
		          << (r.log ? " (logged)" : "") << "\n"
		          << "rule:    " << where(r) << ": " << r.text << "\n"
		          << "counter: " << r.counter << "\n"
		          << "because:\n";
		for (const auto& reason : e.reasons)
			io.out << "  " << reason << "\n";
		if (!e.matched) {
			io.err << "portcullis: internal error: the classifier chose a rule its explanation does not match\n";
			return exit_internal;
		}
	}
	if (id != classify::no_match && !rs->rules[id].payload.empty()) {
		const int rc = explain_payload(*rs, f, id, o, io);
		if (rc != exit_ok)
			return rc;
	}
	if (id != ref) {
		io.err << "portcullis: internal error: classifier '" << classify::backend_name(o.backend) << "' chose "
		          << (id == classify::no_match ? "no rule" : where(rs->rules[id])) << " but the reference chose "
		          << (ref == classify::no_match ? "no rule" : where(rs->rules[ref])) << "\n";
		return exit_internal;
	}
	return exit_ok;
}

int cmd_classify(const arguments& args, const options& o, streams io)
{
	if (args.size() != 2) {
		io.err << "portcullis: classify takes FILE and FLOWS\n";
		return exit_usage;
	}
	std::ifstream in(args[1]);
	if (!in) {
		io.err << args[1] << ": error: cannot open the flows file\n";
		return exit_failed;
	}
	const auto rs = load(args[0], o, io.err);
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
			io.err << args[1] << ":" << line << ":" << fp.column << ": error: " << fp.error << "\n";
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
			io.err << "portcullis: cannot build classifier: " << dc->built.error << "\n";
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
				k.set_bits = rules::set_bits_for(*rs, f.src, f.dst);
				k6.push_back(k);
				i6.push_back(i);
			} else {
				classify::key_v4 k{};
				k.src = uint32_t(f.src), k.dst = uint32_t(f.dst), k.sport = f.sport, k.dport = f.dport,
				k.proto = f.proto, k.tcp_flags = f.tcp_flags;
				k.set_bits = rules::set_bits_for(*rs, uint32_t(f.src), uint32_t(f.dst));
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
		const uint32_t ref = lookup(*reference[int(f.dir)].built.classifier, *rs, f);
		// A first rule with payload conditions does not decide yet: the flow follows the first
		// payload-free rule (or the default) until its payload matches a candidate, as explain says.
		uint32_t follows = id;
		std::string payload_note;
		if (id != classify::no_match && !rs->rules[id].payload.empty()) {
			const inspect::candidates c = inspect::candidates_for(*rs, f.dir, inspect_tuple(f));
			follows = c.payload_free == inspect::no_rule ? classify::no_match : c.payload_free;
			payload_note = "  (until its payload decides:";
			for (uint32_t r : c.rules)
				payload_note.append(" ").append(rules::action_name(rs->rules[r].act)).append(" by ").append(where(rs->rules[r]));
			payload_note += ")";
		}
		const auto verdict = follows == classify::no_match ? rules::action_name(rs->default_for(f.dir))
		                                                   : rules::action_name(rs->rules[follows].act);
		const std::string by = follows == classify::no_match ? "default " + std::string(rules::direction_name(f.dir))
		                                                     : where(rs->rules[follows]);
		char buf[64];
		std::snprintf(buf, sizeof buf, "%-6s %-24s ", std::string(verdict).c_str(), by.c_str());
		io.out << args[1] << ":" << flows[i].line << ": " << buf << rules::format(f) << payload_note << "\n";
		++counts[std::string(verdict)];
		if (id != ref) {
			io.err << args[1] << ":" << flows[i].line << ": internal error: classifier '"
			          << classify::backend_name(o.backend) << "' disagrees with the reference\n";
			status = exit_internal;
		}
	}
	io.out << flows.size() << " flows:";
	for (const auto* a : {"allow", "drop", "reject"})
		io.out << " " << a << " " << counts[a];
	io.out << "\n";
	return status;
}

} // namespace portcullis::cli
