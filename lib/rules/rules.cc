// The public entry points (rules.h), and the stages not yet moved to their own files (stages.h).
//
// The work is done by stage, one file each (stages.h): lexer.cc, parser.cc, resolve.cc, payload.cc,
// lower.cc.
#include "rules/rules.h"

#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <system_error>

#include <hs.h>

#include "rules/stages.h"

namespace portcullis::rules::detail {
namespace {

std::string where(const source_location& l)
{
	return l.file + ":" + std::to_string(l.line) + ":" + std::to_string(l.column);
}

} // namespace

parse_result parser::run(const std::string& path, std::optional<std::string_view> text)
{
	apps_dir_ = opts_.apps_dir.empty()
		? (std::filesystem::path(path).parent_path() / "apps").string()
		: opts_.apps_dir;
	if (text)
		parse_text(path, std::string(*text), 0);
	else
		parse_path(path, nullptr, 0, path);
	parse_result r;
	r.errors = std::move(errors_);
	if (r.errors.empty())
		r.rules = std::move(rs_);
	return r;
}

// ---- files and statements -----------------------------------------------------------------

void parser::parse_text(const std::string& path, std::string content, int depth)
{
	if (content.size() > opts_.max_file_bytes) {
		add_error({path, 0, 0}, "file is " + std::to_string(content.size()) +
		                            " bytes, more than the limit of " + std::to_string(opts_.max_file_bytes));
		return;
	}
	std::error_code ec;
	auto canonical = std::filesystem::weakly_canonical(path, ec).string();
	if (ec)
		canonical = path;
	include_stack_.push_back(canonical);
	rs_.files.push_back(path);
	// Kept alive for the whole parse: tokens view into content.
	files_.push_back(std::make_unique<source_file>(source_file{path, std::move(content), {}}));
	source_file& f = *files_.back();
	f.tokens = lex(f.content);
	size_t start = 0;
	for (size_t i = 0; i < f.tokens.size() && !stop_; ++i) {
		if (f.tokens[i].kind != token_kind::newline)
			continue;
		if (i > start)
			statement(f, start, i, depth);
		start = i + 1;
	}
	include_stack_.pop_back();
}

void parser::statement(const source_file& f, size_t begin, size_t end, int depth)
{
	file_ = &f;
	pos_ = begin;
	end_ = end;
	try {
		const token& t = f.tokens[begin];
		if (t.kind != token_kind::word)
			fail(t, "expected a statement (allow, drop, reject, default, set, ports or include), got '" +
			            shown(t) + "'");
		if (t.text == "allow" || t.text == "drop" || t.text == "reject")
			rule_statement();
		else if (t.text == "default")
			default_statement();
		else if (t.text == "set" || t.text == "ports")
			set_statement();
		else if (t.text == "include")
			include_statement(depth);
		else
			unknown_statement(t);
	} catch (const statement_error& e) {
		if (!e.message.empty()) {  // empty: a consequence of an error already reported
			source_location l = loc(*e.at);
			if (e.column)
				l.column = e.column;
			add_error(std::move(l), e.message);
		}
	}
	file_ = &f;  // an include may have switched it
}

// ---- token helpers (stages.h) ------------------------------------------------------------

std::string parser::shown(const token& t)
{
	switch (t.kind) {
	case token_kind::newline: return "end of line";
	case token_kind::var: return "$" + std::string(t.text);
	case token_kind::string: case token_kind::bad_string: return "\"" + std::string(t.text) + "\"";
	default: return std::string(t.text);
	}
}

// The next token as shown in a message, or "end of line".
std::string parser::got() const { return at_end() ? "end of line" : '\'' + shown(peek()) + "'"; }

void parser::expect_end(std::string_view expected)
{
	if (!at_end())
		fail(peek(), "unexpected '" + shown(peek()) + "' (expected " + std::string(expected) + ")");
}

// Source text from token b to the token before pos_, blanks and newlines collapsed to one space.
std::string parser::text_from(size_t b) const
{
	if (pos_ == b)
		return {};
	const auto& toks = file_->tokens;
	const std::string_view raw =
		std::string_view(file_->content).substr(toks[b].begin, toks[pos_ - 1].end - toks[b].begin);
	std::string out;
	bool blank = false;
	for (char c : raw) {
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
			blank = true;
			continue;
		}
		if (blank && !out.empty())
			out += ' ';
		blank = false;
		out += c;
	}
	return out;
}

// ---- statements ---------------------------------------------------------------------------

std::optional<action> parser::action_word(std::string_view w)
{
	if (w == "allow") return action::allow;
	if (w == "drop") return action::drop;
	if (w == "reject") return action::reject;
	return std::nullopt;
}

void parser::unknown_statement(const token& t)
{
	static const std::map<std::string_view, std::string_view> other_firewalls{
		{"pass", "allow"}, {"accept", "allow"}, {"permit", "allow"}, {"block", "drop"}, {"deny", "drop"}};
	static constexpr std::string_view rule_words[] = {"in", "out", "log", "tcp", "udp", "icmp", "icmp6", "ipv6-icmp",
	                                                  "proto", "from", "to", "all", "inet", "inet6"};
	for (auto w : rule_words)
		if (t.text == w)
			fail(t, "missing action: expected allow, drop or reject before '" + std::string(t.text) + "'");
	std::string msg = "unknown keyword '" + std::string(t.text) +
	                  "' (expected allow, drop, reject, default, set, ports or include)";
	if (auto it = other_firewalls.find(t.text); it != other_firewalls.end())
		msg += "; write '" + std::string(it->second) + "' instead";
	fail(t, msg);
}

void parser::default_statement()
{
	next();  // default
	if (at_end() || peek().kind != token_kind::word || (peek().text != "in" && peek().text != "out"))
		fail(peek(), "expected 'in' or 'out' after 'default', got " + got());
	const token& dir = next();
	if (at_end() || peek().kind != token_kind::word || !action_word(peek().text))
		fail(peek(), "expected an action (allow, drop or reject) after 'default " + std::string(dir.text) + "', got " + got());
	const action a = *action_word(next().text);
	expect_end("end of line");
	auto& seen = dir.text == "in" ? default_in_at_ : default_out_at_;
	if (seen)
		fail(dir, "duplicate 'default " + std::string(dir.text) + "' (first set at " + where(*seen) + ")");
	seen = loc(dir);
	(dir.text == "in" ? rs_.default_in : rs_.default_out) = a;
}

bool parser::valid_name(std::string_view n)
{
	if (n.empty() || !(std::isalpha(static_cast<unsigned char>(n[0])) || n[0] == '_'))
		return false;
	for (char c : n)
		if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.'))
			return false;
	return true;
}

void parser::set_statement()
{
	const token& kw = next();
	const bool ports = kw.text == "ports";
	if (at_end() || peek().kind != token_kind::word || !valid_name(peek().text))
		fail(peek(), "expected " + std::string(ports ? "a port" : "an address") + " set name after '" +
		                 std::string(kw.text) + "' (letters, digits, '_', '-', starting with a letter), got " + got());
	const token& name = next();
	if (at_end() || peek().kind != token_kind::equals)
		fail(peek(), "expected '=' after the set name, got " + got());
	next();
	named_set s;
	s.is_ports = ports;
	s.loc = loc(name);
	if (auto it = sets_.find(std::string(name.text)); it != sets_.end())
		fail(name, "duplicate set '" + std::string(name.text) + "' (first defined at " + where(it->second.loc) + ")");
	try {
		if (ports)
			s.ports = port_expr();
		else
			s.addrs = address_expr();
		expect_end("end of line after the set's value");
	} catch (const statement_error&) {
		// Remember the name so that its uses do not each report "unknown set" on top of this error.
		s.broken = true;
		sets_.emplace(std::string(name.text), std::move(s));
		throw;
	}
	sets_.emplace(std::string(name.text), std::move(s));
}

// ACTION [in|out|log]... [inet|inet6] [PROTO] [all | [from ADDR [port P]] [to ADDR [port P]]]
//        [flags V/M] [icmp-type T] [code C] [counter NAME]
void parser::rule_statement()
{
	const size_t first = pos_;
	const token& act = next();
	rule r;
	r.act = *action_word(act.text);
	r.loc = loc(act);

	bool in = false, out = false;
	for (;;) {
		if (accept_word("in"))
			in = true;
		else if (accept_word("out"))
			out = true;
		else if (accept_word("log"))
			r.log = true;
		else
			break;
	}
	r.in = in || !out;  // neither named: both
	r.out = out || !in;

	bool want_v4 = true, want_v6 = true;
	std::string family_word;
	if (peek_word("inet") || peek_word("inet6")) {
		family_word = next().text;
		want_v4 = family_word == "inet";
		want_v6 = !want_v4;
	}

	byte_set proto{full_range<uint8_t>()};
	for (std::string_view p : {"tcp", "udp", "icmp", "icmp6", "ipv6-icmp"}) {
		if (peek_word(p)) {
			const auto v = *lookup_protocol(next().text);
			proto = {{v, v}};
			r.written.proto = std::string(p);
			break;
		}
	}
	if (r.written.proto == "any" && accept_word("proto")) {
		const size_t b = pos_;
		proto = proto_expr();
		r.written.proto = text_from(b);
		if (proto.empty())
			fail(file_->tokens[b], "protocol set is empty: the rule can never match");
	}
	auto ports_allowed = [&] {
		if (proto.empty())
			return false;
		for (const auto& pr : proto)
			for (unsigned v = pr.lo; v <= pr.hi; ++v)
				if (v != 6 && v != 17)
					return false;
		return true;
	};

	addr_set src{{full_range<uint32_t>()}, {full_range<u128>()}}, dst = src;
	port_set sport{full_range<uint16_t>()}, dport = sport;
	auto endpoint = [&](addr_set& a, std::string& a_text, port_set& p, std::string& p_text) {
		size_t b = pos_;
		a = address_expr();
		a_text = text_from(b);
		if (a.v4.empty() && a.v6.empty())
			fail(file_->tokens[b], "address set '" + a_text + "' is empty: the rule can never match");
		if (peek_word("port")) {
			const token& kw = next();
			if (!ports_allowed())
				fail(kw, "'port' needs protocol tcp or udp (this rule's protocol is " + r.written.proto +
				             "; write e.g. '" + std::string(act.text) + " tcp ... port 22')");
			b = pos_;
			p = port_expr();
			p_text = text_from(b);
			if (p.empty())
				fail(file_->tokens[b], "port set '" + p_text + "' is empty: the rule can never match");
		}
	};
	bool saw_from = false, saw_to = false;
	if (accept_word("all")) {
		saw_from = saw_to = true;
	} else {
		if ((saw_from = accept_word("from")))
			endpoint(src, r.written.src, sport, r.written.sport);
		if ((saw_to = accept_word("to")))
			endpoint(dst, r.written.dst, dport, r.written.dport);
	}

	bool saw_flags = false, saw_type = false, saw_code = false, saw_counter = false, saw_payload = false;
	pattern_state_ = {};
	auto once = [&](bool& seen, const token& t) {
		if (seen)
			fail(t, "duplicate '" + std::string(t.text) + "' in one rule");
		seen = true;
	};
	auto single_proto = [&] { return single_protocol(proto); };
	while (!at_end()) {
		const token& t = peek();
		if (t.kind == token_kind::word && t.text == "flags") {
			next();
			once(saw_flags, t);
			if (single_proto() != 6)
				fail(t, "'flags' needs protocol tcp (this rule's protocol is " + r.written.proto + ")");
			flags(r);
		} else if (t.kind == token_kind::word && (t.text == "icmp-type" || t.text == "code")) {
			next();
			once(t.text == "code" ? saw_code : saw_type, t);
			const auto p = single_proto();
			if (p != 1 && p != 58)
				fail(t, "'" + std::string(t.text) + "' needs protocol icmp or icmp6 (this rule's protocol is " +
				            r.written.proto + ")");
			const size_t b = pos_;
			if (t.text == "code") {
				auto codes = icmp_code_expr();
				r.written.icmp_code = text_from(b);
				dport.clear();
				for (auto c : codes)
					dport.push_back({c.lo, c.hi});
			} else {
				auto types = icmp_type_expr(p == 58);
				r.written.icmp_type = text_from(b);
				sport.clear();
				for (auto c : types)
					sport.push_back({c.lo, c.hi});
			}
			if ((t.text == "code" ? dport : sport).empty())
				fail(file_->tokens[b], "ICMP " + std::string(t.text == "code" ? "code" : "type") +
				                           " set is empty: the rule can never match");
		} else if (t.kind == token_kind::word && t.text == "counter") {
			next();
			once(saw_counter, t);
			counter(r);
		} else if (payload_option(r.payload, &proto)) {
			saw_payload = true;
		} else {
			std::string expected = "flags, icmp-type, code, counter or end of line";
			if (!saw_flags && !saw_type && !saw_code && !saw_counter && !saw_payload) {
				if (!saw_from && !saw_to)
					expected = "from, to, all, " + expected;
				else if (!saw_to)
					expected = "to, " + expected;
			}
			if (t.kind == token_kind::word && (t.text == "port" || t.text == "from" || t.text == "to"))
				fail(t, "unexpected '" + shown(t) + "' here (order is: action, in/out/log, protocol, from ADDR [port P], "
				        "to ADDR [port P], options)");
			fail(t, "unexpected '" + shown(t) + "' (expected " + expected +
			            "); payload conditions are content, regex, sni, http-host, dns-query and app");
		}
	}
	for (const auto& c : r.payload)
		if (c.app.empty())
			validate_pattern(c.any_of[0], pattern_modes(proto));

	lower_match(r, act, {std::move(src), std::move(dst), std::move(sport), std::move(dport), std::move(proto), want_v4,
	                     want_v6, std::move(family_word)});
	r.text = text_from(first);

	if (rs_.rules.size() >= opts_.max_rules) {
		stop_ = true;
		fail(act, "too many rules (the limit is " + std::to_string(opts_.max_rules) + ")");
	}
	if (r.counter.empty())
		r.counter = "rule" + std::to_string(rs_.rules.size() + 1);
	rs_.rules.push_back(std::move(r));
}

void parser::flags(rule& r)
{
	if (at_end() || peek().kind != token_kind::word)
		fail(peek(), "expected TCP flags value/mask such as S/SA after 'flags', got " + got());
	const token& t = next();
	r.written.flags = std::string(t.text);
	if (t.text == "any")
		return;
	const auto slash = t.text.find('/');
	const auto value = parse_tcp_flags(t.text.substr(0, slash));
	const auto mask = slash == std::string_view::npos ? value : parse_tcp_flags(t.text.substr(slash + 1));
	if (!value || !mask || (slash != std::string_view::npos && t.text.substr(slash + 1).empty()))
		fail(t, "invalid TCP flags '" + std::string(t.text) + "' (expected value/mask in letters FSRPAUEW, e.g. S/SA)");
	if (*value & ~*mask)
		fail(t, "TCP flags '" + std::string(t.text) + "': the value has flags outside the mask (expected value "
		        "letters to appear in the mask, e.g. S/SA)");
	r.match.tcp_flags_value = *value;
	r.match.tcp_flags_mask = *mask;
}

void parser::counter(rule& r)
{
	if (at_end() || peek().kind != token_kind::word || !valid_name(peek().text))
		fail(peek(), "expected a counter name after 'counter' (letters, digits, '_', '-', starting with a letter), got " + got());
	const token& t = next();
	const std::string name(t.text);
	if (name.size() > 4 && name.compare(0, 4, "rule") == 0 &&
	    name.find_first_not_of("0123456789", 4) == std::string::npos)
		fail(t, "counter name '" + name + "' is reserved for generated names (ruleN)");
	auto [it, inserted] = counters_.emplace(name, loc(t));
	if (!inserted)
		fail(t, "duplicate counter '" + name + "' (first used at " + where(it->second) + ")");
	r.counter = name;
}

} // namespace portcullis::rules::detail

namespace portcullis::rules::detail {
namespace {

bool only_tcp_udp(const byte_set& proto)
{
	if (proto.empty())
		return false;
	for (const auto& pr : proto)
		for (unsigned v = pr.lo; v <= pr.hi; ++v)
			if (v != 6 && v != 17)
				return false;
	return true;
}

int hex_digit(char c)
{
	if (c >= '0' && c <= '9') return c - '0';
	if (c >= 'a' && c <= 'f') return c - 'a' + 10;
	if (c >= 'A' && c <= 'F') return c - 'A' + 10;
	return -1;
}

} // namespace

// ---- payload conditions -------------------------------------------------------------------

// Which Hyperscan modes a pattern of a rule with these protocols is compiled for (lib/inspect:
// stream mode for TCP, block mode for UDP).
unsigned parser::pattern_modes(const byte_set& proto)
{
	unsigned m = 0;
	if (contains(proto, uint8_t(6)))
		m |= HS_MODE_STREAM;
	if (contains(proto, uint8_t(17)))
		m |= HS_MODE_BLOCK;
	return m;
}

// One payload keyword at pos_, or false when the next token is none. `proto` is the rule's
// protocol set, null inside an app bundle (which holds content and regex lines only).
bool parser::payload_option(std::vector<payload_condition>& conds, const byte_set* proto)
{
	if (at_end() || peek().kind != token_kind::word)
		return false;
	const token& t = peek();
	const std::string_view w = t.text;
	const bool pattern_kw = w == "content" || w == "regex";
	const bool name_kw = w == "sni" || w == "http-host" || w == "dns-query";
	const bool modifier = w == "nocase" || w == "offset" || w == "depth";
	if (!pattern_kw && !name_kw && !modifier && w != "app")
		return false;
	next();
	if (!proto && (name_kw || w == "app"))
		fail(t, "'" + std::string(w) + "' is not allowed in an app bundle (expected content or regex)");
	if (modifier) {
		pattern_modifier(t);
		return true;
	}
	if (proto) {
		const std::string rule_proto = proto_text(*proto);
		if (w == "sni" || w == "http-host") {
			if (!(proto->size() == 1 && proto->front().lo == 6 && proto->front().hi == 6))
				fail(t, "'" + std::string(w) + "' needs protocol tcp (this rule's protocol is " + rule_proto + ")");
		} else if (w == "dns-query") {
			if (!(proto->size() == 1 && proto->front().lo == 17 && proto->front().hi == 17))
				fail(t, "'dns-query' needs protocol udp (this rule's protocol is " + rule_proto + ")");
		} else if (!only_tcp_udp(*proto)) {
			fail(t, "'" + std::string(w) + "' needs protocol tcp or udp (this rule's protocol is " + rule_proto + ")");
		}
		if (conds.size() >= max_conditions_per_rule)
			fail(t, "too many payload conditions in one rule (the limit is " +
			            std::to_string(max_conditions_per_rule) + ")");
	}
	payload_condition c;
	c.loc = loc(t);
	pattern_state_ = {};
	if (w == "app") {
		if (at_end() || peek().kind != token_kind::word || !valid_name(peek().text))
			fail(at_end() ? t : peek(), "expected an application name after 'app' (a bundle in " + apps_dir_ +
			                                "/NAME.rules), got " + got());
		const token& name = next();
		c.app = std::string(name.text);
		c.any_of = load_app(name, pattern_modes(*proto));
		count_patterns(name, c.any_of.size());
		conds.push_back(std::move(c));
		return true;
	}
	if (at_end() || (peek().kind != token_kind::string && peek().kind != token_kind::bad_string))
		fail(at_end() ? t : peek(), "expected a quoted " +
		                                std::string(w == "regex" ? "regex \"/.../flags\"" : pattern_kw ? "string" : "name") +
		                                " after '" + std::string(w) + "', got " + got());
	const token& str = next();
	if (str.kind == token_kind::bad_string)
		fail(str, "missing closing '\"' after the " + std::string(w) + " pattern");
	payload_pattern p;
	p.loc = loc(str);
	if (w == "content") {
		p.kind = payload_kind::content;
		p.value = decode_content(str);
	} else if (w == "regex") {
		p.kind = payload_kind::regex;
		regex_literal(str, p);
	} else {
		p.kind = w == "sni" ? payload_kind::sni : w == "http-host" ? payload_kind::http_host : payload_kind::dns_query;
		p.value = name_pattern(str);
	}
	if (proto)
		count_patterns(str, 1);
	c.any_of.push_back(std::move(p));
	conds.push_back(std::move(c));
	if (pattern_kw)
		pattern_state_.last = &conds.back().any_of.back();
	return true;
}

std::string parser::proto_text(const byte_set& proto) const
{
	if (proto.size() == 1 && proto[0].lo == proto[0].hi) {
		switch (proto[0].lo) {
		case 6: return "tcp";
		case 17: return "udp";
		case 1: return "icmp";
		case 58: return "icmp6";
		}
		return std::to_string(proto[0].lo);
	}
	return proto.size() == 1 && proto[0].lo == 0 && proto[0].hi == 255 ? "any" : "a set of protocols";
}

void parser::count_patterns(const token& t, size_t n)
{
	total_patterns_ += n;
	if (total_patterns_ > opts_.max_payload_patterns)
		fail(t, "too many payload patterns in the rule set (the limit is " +
		            std::to_string(opts_.max_payload_patterns) + ")");
}

void parser::pattern_modifier(const token& t)
{
	const std::string_view w = t.text;
	payload_pattern* p = pattern_state_.last;
	if (!p)
		fail(t, "'" + std::string(w) + "' must follow a content or regex condition");
	if (w == "nocase") {
		if (p->kind != payload_kind::content)
			fail(t, "'nocase' applies to content only (write the regex with the i flag: \"/.../i\")");
		if (pattern_state_.nocase)
			fail(t, "duplicate 'nocase' for one content");
		pattern_state_.nocase = true;
		p->nocase = true;
		return;
	}
	bool& seen = w == "offset" ? pattern_state_.offset : pattern_state_.depth;
	if (seen)
		fail(t, "duplicate '" + std::string(w) + "' for one " + std::string(payload_kind_name(p->kind)));
	seen = true;
	if (at_end() || peek().kind != token_kind::word)
		fail(at_end() ? t : peek(), "expected a byte count after '" + std::string(w) + "', got " + got());
	const token& n = next();
	const auto v = parse_number(n.text, 1u << 20);
	if (!v)
		fail(n, "invalid " + std::string(w) + " '" + std::string(n.text) + "' (expected a number 0-1048576)");
	if (w == "offset") {
		p->offset = uint32_t(*v);
		return;
	}
	if (*v == 0)
		fail(n, "depth 0 can never match (expected at least 1)");
	if (p->kind == payload_kind::content && *v < p->value.size())
		fail(n, "depth " + std::to_string(*v) + " is shorter than the content (" + std::to_string(p->value.size()) +
		            " bytes): it can never match");
	p->depth = uint32_t(*v);
}

// The token's raw text with \xNN, \" and \\ decoded.
std::string parser::decode_content(const token& t)
{
	const std::string_view raw = t.text;
	std::string out;
	for (size_t i = 0; i < raw.size(); ++i) {
		if (raw[i] != '\\') {
			out += raw[i];
			continue;
		}
		const uint32_t col = t.column + 1 + uint32_t(i);  // +1: the opening quote
		if (i + 1 < raw.size() && (raw[i + 1] == '"' || raw[i + 1] == '\\')) {
			out += raw[++i];
		} else if (i + 3 < raw.size() + 0 && raw[i + 1] == 'x' && hex_digit(raw[i + 2]) >= 0 && hex_digit(raw[i + 3]) >= 0) {
			out += char(hex_digit(raw[i + 2]) * 16 + hex_digit(raw[i + 3]));
			i += 3;
		} else {
			throw statement_error{&t, "invalid escape in content (expected \\xNN with two hex digits, \\\" or \\\\)", col};
		}
	}
	if (out.empty())
		fail(t, "empty content can never be searched for (expected at least one byte)");
	if (out.size() > max_pattern_bytes)
		fail(t, "content is " + std::to_string(out.size()) + " bytes, more than the limit of " +
		            std::to_string(max_pattern_bytes));
	return out;
}

// "/expr/flags": expr keeps its backslashes except that \" stands for ".
void parser::regex_literal(const token& t, payload_pattern& p)
{
	const std::string_view raw = t.text;
	const size_t close = raw.rfind('/');
	if (raw.empty() || raw[0] != '/' || close == 0)
		fail(t, "expected a regex written as \"/expression/flags\" (flags i, s, m), got \"" + std::string(raw) + "\"");
	std::string expr;
	for (size_t i = 1; i < close; ++i) {
		if (raw[i] == '\\' && i + 1 < close && raw[i + 1] == '"') {
			expr += '"';
			++i;
		} else {
			expr += raw[i];
			if (raw[i] == '\\' && i + 1 < close)
				expr += raw[++i];
		}
	}
	if (expr.empty())
		fail(t, "empty regex can never match (expected \"/expression/flags\")");
	if (expr.size() > max_pattern_bytes)
		fail(t, "regex is " + std::to_string(expr.size()) + " bytes, more than the limit of " +
		            std::to_string(max_pattern_bytes));
	for (size_t i = close + 1; i < raw.size(); ++i) {
		const uint8_t bit = raw[i] == 'i' ? regex_caseless : raw[i] == 's' ? regex_dotall : raw[i] == 'm' ? regex_multiline : 0;
		if (!bit)
			throw statement_error{&t, "unknown regex flag '" + std::string(1, raw[i]) + "' (expected i, s or m)",
			                      t.column + 1 + uint32_t(i)};
		p.regex_flags |= bit;
	}
	p.value = std::move(expr);
}

// Lower case; "*.a.b" or an exact name of letters, digits, '-', '_' and dots between labels.
std::string parser::name_pattern(const token& t)
{
	std::string v(t.text);
	for (auto& c : v)
		c = char(std::tolower(static_cast<unsigned char>(c)));
	static constexpr std::string_view expected =
		"(expected a name such as example.com or *.example.com: labels of letters, digits, '-' and '_' separated by "
		"dots, '*.' only at the start)";
	if (v.empty())
		fail(t, "empty name " + std::string(expected));
	if (v.size() > 253)
		fail(t, "name is " + std::to_string(v.size()) + " bytes, more than DNS allows (253)");
	std::string_view rest = v;
	if (rest.size() >= 2 && rest[0] == '*' && rest[1] == '.')
		rest.remove_prefix(2);
	size_t label = 0;
	for (size_t i = 0; i <= rest.size(); ++i) {
		const char c = i < rest.size() ? rest[i] : '.';
		if (c == '.') {
			if (label == 0 || label > 63)
				fail(t, "invalid name \"" + std::string(t.text) + "\" " + std::string(expected));
			label = 0;
		} else if (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') {
			++label;
		} else {
			fail(t, "invalid name \"" + std::string(t.text) + "\" " + std::string(expected));
		}
	}
	return v;
}

// Test-compiles one content/regex the way lib/inspect will, so that a rule set that parses also
// compiles. Reports Hyperscan's reason at the pattern.
void parser::validate_pattern(const payload_pattern& p, unsigned modes)
{
	if (p.kind != payload_kind::regex)
		return;
	unsigned flags = HS_FLAG_SINGLEMATCH;
	if (p.regex_flags & regex_caseless) flags |= HS_FLAG_CASELESS;
	if (p.regex_flags & regex_dotall) flags |= HS_FLAG_DOTALL;
	if (p.regex_flags & regex_multiline) flags |= HS_FLAG_MULTILINE;
	hs_expr_ext_t ext{};
	if (p.depth) {
		ext.flags |= HS_EXT_FLAG_MAX_OFFSET;
		ext.max_offset = uint64_t(p.offset) + p.depth;
	}
	const hs_expr_ext_t* exts[] = {&ext};
	const char* exprs[] = {p.value.c_str()};
	const unsigned ids[] = {0};
	for (unsigned mode : {unsigned(HS_MODE_BLOCK), unsigned(HS_MODE_STREAM)}) {
		if (!(modes & mode))
			continue;
		hs_database_t* db = nullptr;
		hs_compile_error_t* err = nullptr;
		if (hs_compile_ext_multi(exprs, &flags, ids, exts, 1, mode, nullptr, &db, &err) != HS_SUCCESS) {
			std::string msg = err && err->message ? err->message : "unknown error";
			hs_free_compile_error(err);
			add_error(p.loc, "regex \"/" + p.value + "/\" is not supported by Hyperscan: " + msg);
			throw statement_error{nullptr, ""};
		}
		hs_free_database(db);
	}
}

// The patterns of rules/apps/NAME.rules (apps_dir_), parsed once per rule set. Each line is one
// alternative: content "..." [nocase] [offset N] [depth N] | regex "/.../f" [offset N] [depth N].
std::vector<payload_pattern> parser::load_app(const token& name, unsigned modes)
{
	const std::string key(name.text);
	if (auto it = apps_.find(key); it != apps_.end()) {
		if (!it->second)
			fail(name, "");  // broken bundle, already reported
		for (const auto& p : *it->second)
			validate_pattern(p, modes);
		return *it->second;
	}
	const std::string path = (std::filesystem::path(apps_dir_) / (key + ".rules")).string();
	std::error_code ec;
	const auto size = std::filesystem::file_size(path, ec);
	if (ec || size > opts_.max_file_bytes)
		fail(name, "unknown app '" + key + "' (no readable bundle file '" + path + "'" +
		               (ec ? ": " + ec.message() : std::string(", too big")) + ")");
	std::ifstream in(path, std::ios::binary);
	std::ostringstream ss;
	ss << in.rdbuf();
	files_.push_back(std::make_unique<source_file>(source_file{path, ss.str(), {}}));
	source_file& f = *files_.back();
	f.tokens = lex(f.content);

	const source_file* here = file_;
	const size_t saved_pos = pos_, saved_end = end_;
	const pattern_state saved_state = pattern_state_;
	std::vector<payload_condition> lines;
	bool broken = false;
	size_t start = 0;
	for (size_t i = 0; i < f.tokens.size(); ++i) {
		if (f.tokens[i].kind != token_kind::newline)
			continue;
		if (i > start) {
			file_ = &f;
			pos_ = start;
			end_ = i;
			try {
				pattern_state_ = {};
				if (!payload_option(lines, nullptr))
					fail(peek(), "expected content or regex in an app bundle, got " + got());
				while (!at_end()) {
					const token& t = peek();
					if (!(t.kind == token_kind::word && (t.text == "nocase" || t.text == "offset" || t.text == "depth")))
						fail(t, "unexpected '" + shown(t) + "' (expected nocase, offset, depth or end of line)");
					payload_option(lines, nullptr);
				}
				validate_pattern(lines.back().any_of[0], HS_MODE_BLOCK | HS_MODE_STREAM);
			} catch (const statement_error& e) {
				broken = true;
				if (!e.message.empty()) {
					source_location l = loc(*e.at);
					if (e.column)
						l.column = e.column;
					add_error(std::move(l), e.message);
				}
			}
		}
		start = i + 1;
	}
	file_ = here;
	pos_ = saved_pos;
	end_ = saved_end;
	pattern_state_ = saved_state;
	std::vector<payload_pattern> out;
	for (auto& l : lines)
		out.push_back(std::move(l.any_of[0]));
	if (!broken && out.empty()) {
		add_error({path, 0, 0}, "app bundle '" + key + "' has no patterns");
		broken = true;
	}
	if (!broken && out.size() > max_app_alternatives) {
		add_error({path, 0, 0}, "app bundle '" + key + "' has " + std::to_string(out.size()) +
		                            " patterns, more than the limit of " + std::to_string(max_app_alternatives));
		broken = true;
	}
	if (broken) {
		apps_.emplace(key, std::nullopt);
		fail(name, "");
	}
	apps_.emplace(key, out);
	return out;
}

} // namespace portcullis::rules::detail

namespace portcullis::rules {

std::string_view action_name(action a)
{
	switch (a) {
	case action::allow: return "allow";
	case action::drop: return "drop";
	case action::reject: return "reject";
	}
	return "?";
}

std::string_view direction_name(direction d) { return d == direction::in ? "in" : "out"; }

std::string format(const diagnostic& d)
{
	std::string s = d.loc.file;
	if (d.loc.line != 0)
		s += ':' + std::to_string(d.loc.line) + ":" + std::to_string(d.loc.column);
	return s + ": error: " + d.message;
}

std::vector<uint32_t> rules_for(const ruleset& rs, direction d)
{
	std::vector<uint32_t> out;
	for (uint32_t i = 0; i < rs.rules.size(); ++i)
		if (rs.rules[i].applies(d))
			out.push_back(i);
	return out;
}

std::vector<uint32_t> payload_free_rules_for(const ruleset& rs, direction d)
{
	std::vector<uint32_t> out;
	for (uint32_t i = 0; i < rs.rules.size(); ++i)
		if (rs.rules[i].applies(d) && rs.rules[i].payload.empty())
			out.push_back(i);
	return out;
}

bool has_payload_rules(const ruleset& rs)
{
	for (const auto& r : rs.rules)
		if (!r.payload.empty())
			return true;
	return false;
}

std::string_view payload_kind_name(payload_kind k)
{
	switch (k) {
	case payload_kind::content: return "content";
	case payload_kind::regex: return "regex";
	case payload_kind::sni: return "sni";
	case payload_kind::http_host: return "http-host";
	case payload_kind::dns_query: return "dns-query";
	}
	return "?";
}

bool name_matches(std::string_view pattern, std::string_view name)
{
	if (!name.empty() && name.back() == '.')
		name.remove_suffix(1);
	auto iequal = [](std::string_view a, std::string_view b) {
		if (a.size() != b.size())
			return false;
		for (size_t i = 0; i < a.size(); ++i)
			if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i])))
				return false;
		return true;
	};
	if (pattern.size() >= 2 && pattern[0] == '*' && pattern[1] == '.') {
		const std::string_view suffix = pattern.substr(1);  // ".example.com"
		return name.size() > suffix.size() && iequal(name.substr(name.size() - suffix.size()), suffix);
	}
	return iequal(pattern, name);
}

namespace {

parse_result guarded(const std::string& name, const parse_options& opts, std::optional<std::string_view> text)
{
	try {
		detail::parser p(opts);
		return p.run(name, text);
	} catch (const std::exception& e) {
		// Out of memory or a filesystem surprise: still an error value, never an exception.
		diagnostic d;
		d.loc.file = name;
		d.message = std::string("internal error: ") + e.what();
		parse_result r;
		r.errors.push_back(std::move(d));
		return r;
	}
}

} // namespace

parse_result parse_file(const std::string& path, const parse_options& opts) { return guarded(path, opts, std::nullopt); }

parse_result parse_string(std::string_view text, const std::string& name, const parse_options& opts)
{
	return guarded(name, opts, text);
}

} // namespace portcullis::rules
