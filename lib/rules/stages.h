// Internal to lib/rules: the parse state and the value types that the stage files share.
//
// One parse is one `parser`. The stages, one file each (the parser's members are split among them):
//   lexer.cc    text -> tokens (lexer.h)
//   parser.cc   tokens -> statements: rule, default, set, ports, include; the per-statement error recovery
//   resolve.cc  words -> values: $set names, addresses, ports, services, protocols, ICMP names; files
//               and includes
//   feed.cc     the address file of `set NAME = file "PATH"` (feeds, blocklists)
//   country.cc  `set NAME = country { CC, ... }`: a country's addresses from GeoIP or a CSV
//   payload.cc  a rule's payload conditions (content, regex, names, app bundles), checked with Hyperscan
//   lower.cc    value expressions ({ lists }, !negation) -> unions of ranges; a rule's fields ->
//               its tuple_match
//   rules.cc    the public entry points (rules.h)
// Grammar and semantics: docs/rules.md.
//
// Each statement is parsed on its own; a mistake throws a statement_error (caught per statement in
// parser.cc and per app bundle line in payload.cc, never out of the API), is recorded, and parsing
// resumes at the next statement.
//
// Not a public header: include it only from lib/rules/*.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "rules/lexer.h"
#include "rules/names.h"
#include "rules/rules.h"

namespace portcullis::rules::detail {

template <class T>
using range_set = std::vector<value_range<T>>;

// An address expression's value: the addresses it covers in each family.
struct addr_set {
	range_set<uint32_t> v4;
	range_set<u128> v6;
};

using port_set = range_set<uint16_t>;
using byte_set = range_set<uint8_t>;

struct named_set {
	bool is_ports = false;
	bool broken = false;  // its definition had an error (already reported)
	// `set NAME = file "PATH"`: tested by a key bit, never expanded into a rule (rules.h address_set).
	bool is_file = false;     // or dynamic, or country: a large set (rules.h address_set)
	bool is_dynamic = false;  // `set NAME = dynamic [size N]` (and `dns`)
	std::vector<std::string> dns_names;  // `set NAME = dns "PATTERN" | { ... } [size N]`
	size_t max_adds = 65536;
	int32_t file_index = -1;  // into ruleset::sets once a rule tests or fills it (addrs then moved there)
	addr_set addrs;
	port_set ports;
	std::string file;
	size_t entries = 0;
	source_location loc;
	bool used = false;  // named by a rule or another set (for lint's unused sets)
};

// `from $S` / `to !$S` where S is a file set: the rule tests a key bit instead of an address field.
struct file_set_use {
	named_set* set = nullptr;
	bool negate = false;
};

// feed.cc: the file of a `set NAME = file "PATH"`; errors by line and column in that file.
struct feed_error {
	uint32_t line, column;
	std::string message;
};
struct feed_result {
	addr_set addrs;  // normalized
	size_t entries = 0;
	std::vector<feed_error> errors;  // the first ones; more_errors counts the rest
	size_t more_errors = 0;
	std::string file_error;  // cannot open, too big: the file as a whole
};
feed_result read_feed(const std::string& path, size_t max_bytes, size_t max_entries);
feed_result parse_feed(std::string_view text, size_t max_entries);
// The whole file into text, refused past max_bytes; the error message, or empty.
std::string read_bounded_file(const std::string& path, size_t max_bytes, std::string& text);

// A rule's tuple fields as the parser evaluated them, before lower_match() makes its tuple_match.
struct rule_fields {
	addr_set src, dst;
	port_set sport, dport;  // ICMP: the types and the codes
	byte_set proto;
	bool want_v4 = true, want_v6 = true;  // false when 'inet' or 'inet6' excludes the family
	std::string family_word;              // "inet", "inet6" or empty
	file_set_use src_set, dst_set;        // set: src/dst above are "any" and the key bit decides
};

// The protocol when the set holds exactly one, else nullopt.
inline std::optional<uint8_t> single_protocol(const byte_set& proto)
{
	if (proto.size() == 1 && proto[0].lo == proto[0].hi)
		return proto[0].lo;
	return std::nullopt;
}

struct statement_error {
	const detail::token* at;
	std::string message;
	uint32_t column = 0;  // when not 0: a column inside the token (an escape inside a string)
};

struct source_file {
	std::string path;
	std::string content;
	std::vector<token> tokens;
};

class parser {
public:
	explicit parser(const parse_options& opts) : opts_(opts), services_(load_services_file(opts.services_file)) {}

	// parser.cc. `text` given: parse it under the name `path`; else read the file `path`.
	parse_result run(const std::string& path, std::optional<std::string_view> text);

private:
	void add_error(source_location loc, std::string msg) { errors_.push_back({std::move(loc), std::move(msg)}); }

	// One relaxed load; once set, stop_ ends every statement loop (includes unwind through theirs).
	bool cancel_requested()
	{
		if (!cancelled_ && opts_.cancel && opts_.cancel->load(std::memory_order_relaxed))
			cancelled_ = stop_ = true;
		return cancelled_;
	}

	// ---- token helpers: the cursor over the statement being parsed (all stages) ---------------

	source_location loc(const token& t) const { return {file_->path, t.line, t.column}; }
	[[noreturn]] void fail(const token& t, std::string msg) const { throw statement_error{&t, std::move(msg)}; }
	const token& peek() const { return file_->tokens[pos_]; }
	bool at_end() const { return pos_ >= end_; }
	const token& next()
	{
		const token& t = file_->tokens[pos_];
		if (pos_ < end_)
			++pos_;
		return t;
	}
	bool peek_word(std::string_view w) const { return !at_end() && peek().kind == token_kind::word && peek().text == w; }
	bool accept_word(std::string_view w)
	{
		if (!peek_word(w))
			return false;
		next();
		return true;
	}
	// In parser.cc:
	static std::string shown(const token& t);  // a token as a message quotes it
	std::string got() const;
	void expect_end(std::string_view expected);
	std::string text_from(size_t b) const;

	// ---- parser.cc: statements --------------------------------------------------------------------

	void parse_text(const std::string& path, std::string content, int depth);
	void statement(const source_file& f, size_t begin, size_t end, int depth);
	std::optional<action> action_word(std::string_view w);
	void unknown_statement(const token& t);
	void default_statement();
	static bool valid_name(std::string_view n);
	void set_statement();
	void file_set(named_set& s, std::string_view set);
	void dynamic_set(named_set& s);
	void dns_set(named_set& s);
	// One item, or a `{ list }` of them (commas optional): item(token) for each. Returns the '{' token of
	// a list (for the caller's "empty list" error), nullptr for a single item.
	template <class Item>
	const token* item_or_list(Item&& item)
	{
		if (peek().kind != token_kind::lbrace) {
			item(next());
			return nullptr;
		}
		const token& open = next();
		for (;;) {
			if (at_end())
				fail(peek(), "missing '}' to close the list opened at line " + std::to_string(open.line) + " column " +
				                 std::to_string(open.column));
			if (peek().kind == token_kind::rbrace)
				break;
			if (peek().kind == token_kind::comma) {
				next();
				continue;
			}
			item(next());
		}
		next();
		return &open;
	}
	void dynamic_size(named_set& s);  // [size N] of a dynamic or dns set
	std::string set_file_path(const token& name);
	// country.cc: set NAME = country { CC, ... } [from "CSV"]: a large set like a file set.
	void country_set(named_set& s, std::string_view set);
	void rule_statement();
	void flags(rule& r);
	void add_to(rule& r, const token& kw);
	void limit(rule& r, const token& kw);
	void max_conn(rule& r, const token& kw);
	void during(rule& r, const token& kw);
	void counter(rule& r);

	// ---- resolve.cc: files and includes; names and atoms to values --------------------------------

	void parse_path(const std::string& path, const source_location* from, int depth, const std::string& shown);
	void include_statement(int depth);
	const named_set& lookup_set(const token& t);
	// At `[!]$S` with S a file set: consumes it. Otherwise consumes nothing and returns set = null.
	file_set_use file_set_atom();
	addr_set address_atom(const token& t);
	std::optional<uint16_t> single_port(std::string_view s) const;
	port_set port_atom(const token& t);
	byte_set proto_atom(const token& t);
	byte_set icmp_type_atom(const token& t, bool v6);
	byte_set icmp_code_atom(const token& t);

	// ---- payload.cc: payload conditions -----------------------------------------------------------

	static unsigned pattern_modes(const byte_set& proto);
	// Where the modifiers (nocase, offset, depth) of the pattern being parsed go.
	struct pattern_state {
		payload_pattern* last = nullptr;  // the latest content/regex, or null
		bool nocase = false, offset = false, depth = false;
	};
	bool payload_option(std::vector<payload_condition>& conds, const byte_set* proto);
	std::string proto_text(const byte_set& proto) const;
	void count_patterns(const token& t, size_t n);
	void pattern_modifier(const token& t);
	std::string decode_content(const token& t);
	void regex_literal(const token& t, payload_pattern& p);
	std::string name_pattern(const token& t);
	void validate_pattern(const payload_pattern& p, unsigned modes);
	std::vector<payload_pattern> load_app(const token& name, unsigned modes);

	// ---- lower.cc: value expressions to ranges; a rule's fields to its tuple_match -------------

	// [!] atom | [!] { expr, ... }: the union of the list's values, complemented by '!'. Defined and
	// instantiated in lower.cc only: the other stages call the *_expr() functions below.
	template <class Set, class Atom>
	Set value_expr(Atom&& atom, std::string_view what);
	addr_set address_expr();
	port_set port_expr();
	byte_set proto_expr();
	byte_set icmp_type_expr(bool v6);
	byte_set icmp_code_expr();
	// Fills r.match from the fields; fails at the action `act` when the rule can match no family.
	void lower_match(rule& r, const token& act, rule_fields f);
	// The key bit that tests `use` on the source or destination (rules.h set_test); fails past 8.
	uint8_t set_test_bit(const token& act, const file_set_use& use, bool dst);
	// The large set's index in ruleset::sets, moving it there on first use.
	uint32_t ruleset_set(named_set& s);

	// ---- state ------------------------------------------------------------------------------------

	const parse_options& opts_;
	std::unordered_map<std::string, uint16_t> services_;
	ruleset rs_;
	std::vector<diagnostic> errors_;
	std::map<std::string, named_set> sets_;
	std::map<std::string, source_location> counters_;
	std::optional<source_location> default_in_at_, default_out_at_;
	std::vector<std::string> include_stack_;
	std::vector<std::unique_ptr<source_file>> files_;
	bool stop_ = false;  // too many rules or cancelled: further statements would only repeat the error
	bool cancelled_ = false;  // opts_.cancel was seen set: the result is abandoned, whatever was parsed
	size_t statements_ = 0;   // in every file so far, for the cancel check's period
	std::string apps_dir_;
	std::map<std::string, std::optional<std::vector<payload_pattern>>> apps_;  // nullopt: broken bundle
	pattern_state pattern_state_;
	size_t total_patterns_ = 0;

	const source_file* file_ = nullptr;  // statement being parsed
	size_t pos_ = 0, end_ = 0;
};

// Is every protocol of the set TCP or UDP (and the set not empty)? Where ports and payload rules apply.
bool only_tcp_udp(const byte_set& proto);

} // namespace portcullis::rules::detail
