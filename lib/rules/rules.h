// The rule language: parses what the operator wrote (docs/rules.md) into an ordered rule list whose
// matches are in the classifiers' form (match.h).
//
// A ruleset is the rules in file order (includes inline at the include point); the first rule that
// matches a packet in its direction decides, otherwise the direction's default applies. Every rule
// in a successful parse can match something: rules that cannot (empty field, source and destination
// in different address families) are errors, so the classifiers never see them.
//
// Errors are values: parse_*() never throw; a parse either yields a ruleset and no errors or no
// ruleset and at least one error, each naming file:line:column (1-based, column in bytes) and what
// was expected. Parsing continues at the next statement after an error so that one run reports
// several mistakes.
//
// Threads: the functions are pure (they read files, nothing global) and may run on any thread; the
// control plane parses off the data path and hands the matches to classify::build().
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rules/match.h"

namespace portcullis::rules {

enum class action : uint8_t { allow, drop, reject };
// in = outside -> inside, out = inside -> outside.
enum class direction : uint8_t { in, out };

std::string_view action_name(action a);
std::string_view direction_name(direction d);

struct source_location {
	std::string file;
	uint32_t line = 0;    // 0 when the problem is the file as a whole (cannot open, too big)
	uint32_t column = 0;
};

// What the operator wrote for each part of a rule, for explain/show output ("any" when omitted).
struct written_fields {
	std::string proto = "any", src = "any", sport = "any", dst = "any", dport = "any";
	std::string flags, icmp_type, icmp_code;  // empty when the rule does not test them
};

struct rule {
	tuple_match match;
	action act = action::drop;
	bool log = false;
	bool in = true, out = true;  // directions the rule applies to (both when the rule names none)
	std::string counter;         // `counter NAME`, or generated "ruleN" (N = 1-based position)
	source_location loc;         // where the rule's action keyword is
	std::string text;            // the rule as written, on one line
	written_fields written;

	bool applies(direction d) const { return d == direction::in ? in : out; }
};

struct ruleset {
	std::vector<rule> rules;
	action default_in = action::drop;
	action default_out = action::allow;
	std::vector<std::string> files;  // every file read, the top one first

	action default_for(direction d) const { return d == direction::in ? default_in : default_out; }
};

struct diagnostic {
	source_location loc;
	std::string message;  // says what was found and what was expected
};

struct parse_result {
	std::optional<ruleset> rules;  // present iff errors is empty
	std::vector<diagnostic> errors;
};

struct parse_options {
	// Extra service names (ports) beyond the built-in table; built-in names win. Empty = none.
	// A missing file is not an error: the built-in table is enough to parse every example.
	std::string services_file = "/etc/services";
	size_t max_file_bytes = 16 << 20;  // per file, includes too
	size_t max_rules = 1'000'000;
	int max_include_depth = 8;  // the top file is depth 0
};

parse_result parse_file(const std::string& path, const parse_options& opts = {});
// `name` is the file name used in diagnostics; includes resolve relative to its directory.
parse_result parse_string(std::string_view text, const std::string& name, const parse_options& opts = {});

// "file:line:column: error: message" (or "file: error: message" when line is 0).
std::string format(const diagnostic& d);

// Indices into rs.rules, in priority order, of the rules that apply to direction d. The classifier
// for d is built from exactly these (rule_entry id = the index into rs.rules).
std::vector<uint32_t> rules_for(const ruleset& rs, direction d);

} // namespace portcullis::rules
