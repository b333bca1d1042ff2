// The parser: a file's tokens -> statements (rule, default, set, ports, include), each parsed on its own.
//
// A statement with a mistake is recorded as one error and parsing resumes at the next statement
// (stages.h). The values inside a statement come from resolve.cc (names, atoms), payload.cc (payload
// conditions) and lower.cc (lists and negation, then the rule's tuple_match).
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <system_error>

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
	// Also at the end: a flag set at any time before the parse returns makes it abandoned.
	if (cancel_requested()) {
		r.abandoned = true;
		diagnostic d;
		d.loc.file = path;
		d.message = "parse abandoned: cancelled before the end of the rule set";
		r.errors.push_back(std::move(d));
		return r;
	}
	r.errors = std::move(errors_);
	if (r.errors.empty()) {
		for (const auto& [name, s] : sets_)
			if (!s.used)
				rs_.unused_sets.push_back({name, s.loc, s.is_ports});
		r.rules = std::move(rs_);
	}
	return r;
}

// ---- files and statements -----------------------------------------------------------------

void parser::parse_text(const std::string& path, std::string content, int depth)
{
	if (cancel_requested())
		return;
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
		if (i > start) {
			if (++statements_ % cancel_check_statements == 0 && cancel_requested())
				break;
			statement(f, start, i, depth);
		}
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
		else if (peek_word("file"))
			file_set(s, name.text);
		else if (peek_word("country"))
			country_set(s, name.text);
		else if (peek_word("dynamic"))
			dynamic_set(s);
		else if (peek_word("dns"))
			dns_set(s);
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

// The file a set names in quotes (`file "PATH"`, `from "CSV"`): relative to the rule file's directory;
// only absolute in a self-contained rule set, which has no directory.
std::string parser::set_file_path(const token& name)
{
	if (name.kind == token_kind::bad_string)
		fail(name, "missing closing '\"' after the file name");
	const std::filesystem::path given(std::string(name.text));
	if (!given.is_absolute() && opts_.max_include_depth == 0)
		fail(name, "a set file must be an absolute path here: this rule set is one self-contained text (from etcd, "
		           "say) with no directory of its own");
	return given.is_absolute()
		? given.string()
		: (std::filesystem::path(file_->path).parent_path() / given).lexically_normal().string();
}

// set NAME = file "PATH": reads the feed now; a rule that tests the set later moves it into the ruleset.
void parser::file_set(named_set& s, std::string_view set)
{
	const token& kw = next();
	if (at_end() || (peek().kind != token_kind::string && peek().kind != token_kind::bad_string))
		fail(at_end() ? kw : peek(), "expected a file name in quotes after 'file', got " + got());
	const token& name = next();
	s.is_file = true;
	s.file = set_file_path(name);
	feed_result feed = read_feed(s.file, opts_.max_set_file_bytes, opts_.max_set_entries);
	const std::string set_name = "set '" + std::string(set) + "'";
	if (!feed.file_error.empty())
		fail(name, set_name + ": " + feed.file_error);
	for (const auto& e : feed.errors)
		add_error({s.file, e.line, e.column}, set_name + ": " + e.message);
	if (feed.more_errors)
		add_error({s.file, 0, 0}, set_name + ": " + std::to_string(feed.more_errors) + " more error(s) in this file");
	if (!feed.errors.empty())
		s.broken = true;
	s.addrs = std::move(feed.addrs);
	s.entries = feed.entries;
	rs_.files.push_back(s.file);
}

// set NAME = dns "PATTERN" | dns { "PATTERN" ... } [size N]: a dynamic set that the addresses of DNS
// answers for matching names fill (docs/sets.md, "Sets that follow DNS").
void parser::dns_set(named_set& s)
{
	const token& kw = next();
	auto pattern = [&](const token& t) {
		if (t.kind != token_kind::string)
			fail(t, "expected a name in quotes (e.g. \"*.example.com\"), got '" + shown(t) + "'");
		std::string name = name_pattern(t);
		if (std::find(s.dns_names.begin(), s.dns_names.end(), name) == s.dns_names.end())
			s.dns_names.push_back(std::move(name));
	};
	if (at_end())
		fail(kw, "expected a name in quotes or a { list } of them after 'dns', got end of line");
	if (const token* open = item_or_list(pattern); open && s.dns_names.empty())
		fail(*open, "empty list of names: the set would never fill");
	dynamic_size(s);
}

// set NAME = dynamic [size N]: an empty large set that `add-to` rules and `portcullis set` fill.
void parser::dynamic_set(named_set& s)
{
	next();
	dynamic_size(s);
}

void parser::dynamic_size(named_set& s)
{
	s.is_file = true;
	s.is_dynamic = true;
	if (accept_word("size")) {
		if (at_end() || peek().kind != token_kind::word)
			fail(peek(), "expected a number of entries after 'size', got " + got());
		const token& n = next();
		const auto v = parse_number(n.text, 10'000'000);
		if (!v || *v == 0)
			fail(n, "invalid set size '" + std::string(n.text) + "' (expected 1 to 10000000 entries)");
		s.max_adds = *v;
	}
}

namespace {

// "90", "90s", "15m", "1h", "7d": seconds, 1 s to 366 days.
std::optional<uint32_t> parse_duration(std::string_view w)
{
	if (w.empty())
		return std::nullopt;
	uint32_t unit = 1;
	switch (w.back()) {
	case 's': w.remove_suffix(1); break;
	case 'm': unit = 60, w.remove_suffix(1); break;
	case 'h': unit = 3600, w.remove_suffix(1); break;
	case 'd': unit = 86400, w.remove_suffix(1); break;
	default: break;
	}
	const auto n = parse_number(w, 366u * 86400);
	if (!n || *n == 0 || uint64_t(*n) * unit > 366u * 86400)
		return std::nullopt;
	return *n * unit;
}

} // namespace

// add-to [src|dst] $NAME [timeout D]
void parser::add_to(rule& r, const token& kw)
{
	bool dst = false;
	if (accept_word("dst"))
		dst = true;
	else
		accept_word("src");
	if (at_end() || peek().kind != token_kind::var)
		fail(at_end() ? kw : peek(), "expected a set after 'add-to' (e.g. 'add-to $scanners' or 'add-to dst $seen'), got " + got());
	const token& name = next();
	lookup_set(name);  // unknown or broken: the error is there
	named_set& s = sets_.find(std::string(name.text))->second;
	if (!s.is_file)
		fail(name, "'$" + std::string(name.text) + "' is written out in the rules; add-to needs a set the data path can "
		           "change: 'set " + std::string(name.text) + " = dynamic' (or = file \"PATH\")");
	uint32_t timeout = 0;
	if (accept_word("timeout")) {
		if (at_end() || peek().kind != token_kind::word)
			fail(peek(), "expected a duration after 'timeout' (e.g. 90s, 15m, 1h, 7d), got " + got());
		const token& d = next();
		const auto t = parse_duration(d.text);
		if (!t)
			fail(d, "invalid timeout '" + std::string(d.text) + "' (expected 1s to 366d, e.g. 90s, 15m, 1h, 7d)");
		timeout = *t;
	}
	r.add_to = set_add{ruleset_set(s), dst, timeout};
}

// limit [per-source] R/s|R/m|R/h [burst B] [packets] [ipv6-prefix /N]
void parser::limit(rule& r, const token& kw)
{
	const bool per_source = accept_word("per-source");
	if (at_end() || peek().kind != token_kind::word)
		fail(at_end() ? kw : peek(), "expected a rate after 'limit' (e.g. 'limit 100/s', 'limit 20/m burst 5'), got " + got());
	const token& t = next();
	const std::string_view w = t.text;
	const auto slash = w.find('/');
	const auto n = slash == std::string_view::npos ? std::nullopt : parse_number(w.substr(0, slash), 100'000'000);
	const std::string_view unit = slash == std::string_view::npos ? std::string_view() : w.substr(slash + 1);
	const uint64_t per = unit == "s" || unit == "second" ? 1 : unit == "m" || unit == "minute" ? 60
	                   : unit == "h" || unit == "hour"   ? 3600 : 0;
	if (!n || *n == 0 || per == 0)
		fail(t, "invalid rate '" + std::string(w) + "' (expected N/s, N/m or N/h with N from 1 to 100000000)");
	rate_limit l;
	l.per = per;
	l.rate = *n;
	l.burst = std::min<uint64_t>(*n, 10'000);
	l.per_source = per_source;
	l.written = (per_source ? "per-source " : "") + std::string(w);
	// The options after the rate, each at most once, in any order.
	bool burst = false, prefix = false;
	for (;;) {
		if (peek_word("burst")) {
			const token& bk = next();
			if (burst)
				fail(bk, "duplicate 'burst' in one limit");
			burst = true;
			if (at_end() || peek().kind != token_kind::word)
				fail(peek(), "expected a number after 'burst', got " + got());
			const token& b = next();
			const auto v = parse_number(b.text, 100'000'000);
			if (!v || *v == 0)
				fail(b, "invalid burst '" + std::string(b.text) + "' (expected 1 to 100000000 flows)");
			l.burst = *v;
			l.written += " burst " + std::string(b.text);
		} else if (peek_word("packets")) {
			const token& pk = next();
			if (l.packets)
				fail(pk, "duplicate 'packets' in one limit");
			l.packets = true;
			l.written += " packets";
		} else if (peek_word("ipv6-prefix")) {
			const token& pk = next();
			if (!per_source)
				fail(pk, "'ipv6-prefix' needs 'limit per-source' (it says how IPv6 sources share a bucket)");
			if (prefix)
				fail(pk, "duplicate 'ipv6-prefix' in one limit");
			prefix = true;
			if (at_end() || peek().kind != token_kind::word)
				fail(at_end() ? pk : peek(), "expected a prefix length after 'ipv6-prefix' (e.g. '/56'), got " + got());
			const token& n = next();
			const std::string_view digits = n.text.starts_with('/') ? n.text.substr(1) : n.text;
			const auto v = parse_number(digits, 128);
			if (!v || *v == 0)
				fail(n, "invalid IPv6 prefix length '" + std::string(n.text) + "' (expected /1 to /128)");
			l.prefix6 = uint8_t(*v);
			l.written += " ipv6-prefix /" + std::to_string(*v);
		} else {
			break;
		}
	}
	r.limit = std::move(l);
}

// max-conn N per-source
void parser::max_conn(rule& r, const token& kw)
{
	if (at_end() || peek().kind != token_kind::word)
		fail(at_end() ? kw : peek(), "expected a number after 'max-conn' (e.g. 'max-conn 50 per-source'), got " + got());
	const token& t = next();
	const auto n = parse_number(t.text, 10'000'000);
	if (!n || *n == 0)
		fail(t, "invalid connection count '" + std::string(t.text) + "' (expected 1 to 10000000)");
	if (!peek_word("per-source"))
		fail(at_end() ? t : peek(), "expected 'per-source' after 'max-conn " + std::string(t.text) +
		                                "' (connections are counted per source address), got " + got());
	next();
	r.max_conn = conn_limit{uint32_t(*n), "max-conn " + std::string(t.text) + " per-source"};
}

// during "Mon-Fri 08:00-18:00[, ...]" [tz ZONE]
void parser::during(rule& r, const token& kw)
{
	if (at_end() || peek().kind != token_kind::string)
		fail(at_end() ? kw : peek(), "expected a schedule in quotes after 'during' (e.g. during \"Mon-Fri 08:00-18:00\"), got " +
		                                 got());
	const token& spec = next();
	rule_schedule sch;
	if (const auto err = parse_windows(spec.text, sch.windows)) {
		// At the offending part of the string: past the opening quote. An empty message ends the statement
		// without a second report.
		add_error({file_->path, spec.line, spec.column + 1 + uint32_t(err->offset)}, err->message);
		fail(spec, "");
	}
	sch.written = "during \"" + std::string(spec.text) + "\"";
	std::string zone_name;
	if (accept_word("tz")) {
		if (at_end() || peek().kind != token_kind::word)
			fail(at_end() ? spec : peek(), "expected a time zone after 'tz' (e.g. 'tz Europe/Berlin'), got " + got());
		const token& z = next();
		zone_name = std::string(z.text);
		std::string error;
		auto zone = time_zone::load(zone_name, error);
		if (!zone)
			fail(z, error);
		sch.zone = std::move(*zone);
		sch.written += " tz " + zone_name;
	} else {
		std::string error;
		auto zone = time_zone::load("", error);
		if (!zone)
			fail(spec, "the system's time zone: " + error);
		sch.zone = std::move(*zone);
	}
	r.during = std::move(sch);
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

	addr_set src{{full_range<uint32_t>()}, {full_range<u128>()}}, dst = src;
	port_set sport{full_range<uint16_t>()}, dport = sport;
	file_set_use src_set, dst_set;
	auto endpoint = [&](addr_set& a, std::string& a_text, file_set_use& set, port_set& p, std::string& p_text) {
		size_t b = pos_;
		set = file_set_atom();
		if (!set.set)
			a = address_expr();
		a_text = text_from(b);
		if (a.v4.empty() && a.v6.empty())
			fail(file_->tokens[b], "address set '" + a_text + "' is empty: the rule can never match");
		if (peek_word("port")) {
			const token& kw = next();
			if (!only_tcp_udp(proto))
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
			endpoint(src, r.written.src, src_set, sport, r.written.sport);
		if ((saw_to = accept_word("to")))
			endpoint(dst, r.written.dst, dst_set, dport, r.written.dport);
	}

	bool saw_flags = false, saw_type = false, saw_code = false, saw_counter = false, saw_payload = false;
	bool saw_add_to = false, saw_limit = false, saw_max_conn = false, saw_during = false;
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
		} else if (t.kind == token_kind::word && t.text == "add-to") {
			next();
			once(saw_add_to, t);
			add_to(r, t);
		} else if (t.kind == token_kind::word && t.text == "limit") {
			next();
			once(saw_limit, t);
			limit(r, t);
		} else if (t.kind == token_kind::word && t.text == "max-conn") {
			next();
			once(saw_max_conn, t);
			max_conn(r, t);
		} else if (t.kind == token_kind::word && t.text == "during") {
			next();
			once(saw_during, t);
			during(r, t);
		} else if (payload_option(r.payload, &proto)) {
			saw_payload = true;
		} else {
			std::string expected = "flags, icmp-type, code, counter, add-to, limit, max-conn, during or end of line";
			if (!saw_flags && !saw_type && !saw_code && !saw_counter && !saw_payload && !saw_add_to && !saw_limit &&
			    !saw_max_conn && !saw_during) {
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
	if (r.add_to && !r.payload.empty())
		fail(act, "add-to does not go with payload conditions: it acts on a flow's first packet, before any payload");
	if ((src_set.set || dst_set.set) && !r.payload.empty())
		fail(act, "a set from a file (or dynamic, or country) does not go with payload conditions: payload rules "
		          "are matched on the flow's tuple alone");
	if (r.limit && !r.payload.empty())
		fail(act, "limit does not go with payload conditions: it counts flows at their first packet, before any payload");
	if (r.max_conn && !r.payload.empty())
		fail(act, "max-conn does not go with payload conditions: it counts flows at their first packet, before any payload");
	if (r.during && !r.payload.empty())
		fail(act, "during does not go with payload conditions: a schedule judges a flow by its tuple");
	if (r.max_conn && r.act != action::allow)
		fail(act, "max-conn goes only on allow rules: it counts the flows the rule lets open");

	lower_match(r, act, {std::move(src), std::move(dst), std::move(sport), std::move(dport), std::move(proto), want_v4,
	                     want_v6, std::move(family_word), src_set, dst_set});
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
