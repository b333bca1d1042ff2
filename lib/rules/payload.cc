// Payload conditions: content, regex, sni/http-host/dns-query names and app bundles, checked with Hyperscan.
//
// docs/rules.md, "Payload conditions". lib/inspect compiles what this accepts; validate_pattern()
// test-compiles each regex here so that a rule set that parses also compiles there.
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include <hs.h>

#include "rules/stages.h"
#include "rules/tuple.h"

namespace portcullis::rules::detail {

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

namespace {

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
	if (proto.size() == 1 && proto[0].lo == proto[0].hi)
		return rules::format_protocol(uint8_t(proto[0].lo));
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
