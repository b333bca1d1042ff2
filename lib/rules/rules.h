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
// Payload conditions (content, regex, sni, http-host, dns-query, app) ride along on a rule without
// changing its tuple_match: the classifiers never see them; lib/inspect compiles them. Regexes are
// validated with Hyperscan at parse time, so a rule set that parses compiles in lib/inspect.
//
// Cancelling: a parse given parse_options::cancel looks at the flag before each file, every
// cancel_check_statements statements and at the end, and once it finds it set gives up with
// parse_result::abandoned (no ruleset, one diagnostic saying so): the daemon asked to stop does not wait
// for a huge file. Lexing one file (16 MiB at most) is not interrupted.
//
// Threads: the functions are pure (they read files, nothing global) and may run on any thread; the
// control plane parses off the data path and hands the matches to classify::build(). The cancel flag
// may be set from any thread (or a signal handler) while a parse runs.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rules/match.h"
#include "rules/schedule.h"

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

// ---- payload conditions (docs/rules.md, "Payload conditions"; matched by lib/inspect) ----------

// Bounds that keep one rule set's pattern database compilable and its scan state small.
inline constexpr size_t max_pattern_bytes = 1024;        // a content's bytes, a regex's text, a name
inline constexpr size_t max_conditions_per_rule = 8;     // one bit each in the flow's partial-match state
inline constexpr size_t max_app_alternatives = 64;       // patterns in one rules/apps bundle

enum class payload_kind : uint8_t {
	content,    // literal bytes
	regex,      // a PCRE subset, as Hyperscan accepts it
	sni,        // TLS ClientHello server_name
	http_host,  // HTTP/1 Host header
	dns_query,  // DNS question name (QNAME)
};
std::string_view payload_kind_name(payload_kind k);  // "content", "regex", "sni", "http-host", "dns-query"

inline constexpr uint8_t regex_caseless = 0x01;   // /i
inline constexpr uint8_t regex_dotall = 0x02;     // /s
inline constexpr uint8_t regex_multiline = 0x04;  // /m

// One pattern: content/regex over the payload bytes, or a name pattern for sni/http-host/dns-query.
struct payload_pattern {
	payload_kind kind = payload_kind::content;
	// content: the bytes, escapes decoded. regex: the expression between the slashes. Names: lower
	// case, "*.example.com" (any name ending in ".example.com", not "example.com") or an exact name.
	std::string value;
	bool nocase = false;   // content `nocase`; names are always caseless
	uint8_t regex_flags = 0;
	uint32_t offset = 0;   // content/regex: where in the direction's byte stream (TCP) or datagram (UDP)
	uint32_t depth = 0;    // 0 = no bound; see docs/rules.md for the exact window
	source_location loc;   // the pattern's string token (in a bundle file for app patterns)
};

// A condition holds when any of its alternatives matches: one alternative for content/regex/names,
// a bundle's patterns for `app NAME`. A rule's conditions must all hold (AND).
struct payload_condition {
	std::vector<payload_pattern> any_of;
	std::string app;       // bundle name for `app NAME`, else empty
	source_location loc;   // the condition's keyword
};

// `add-to [src|dst] $NAME [timeout D]` on a rule: when the rule decides a new flow, the data path adds
// the packet's source (or destination) address to sets[set] (docs/sets.md, "Rules that fill sets").
struct set_add {
	uint32_t set = 0;
	bool dst = false;
	uint32_t timeout_s = 0;  // 0: until removed or pushed out
};

// `limit R/s [burst B] [packets]` on a rule (docs/rules.md, "Rate limits"): the rule matches a new flow
// only while its token bucket, shared by every worker, has a token; a flow over the limit goes on to the
// next rule that matches, as nft's `limit` does. R per second, minute or hour. With `packets`, every
// packet of the rule's flows takes a token too, and one over the limit is dropped (a policer).
struct rate_limit {
	uint64_t per = 1;        // seconds in R's unit: 1, 60 or 3600
	uint64_t rate = 0;       // flows (or packets) per `per` seconds, at least 1
	uint64_t burst = 0;      // bucket depth, at least 1 (default: rate, at most 10000)
	bool per_source = false; // `limit per-source ...`: a bucket per source address (the flow's opener)
	bool packets = false;    // `packets`: count every packet, not only new flows
	uint8_t prefix6 = 64;    // per-source: IPv6 sources share a bucket per /prefix6 (`ipv6-prefix /N`)
	std::string written;     // "100/s burst 200"
};

// `max-conn N per-source` on an allow rule (docs/rules.md): the rule matches a new flow only while its
// source has fewer than N live flows that this rule (by its counter name) opened; past that, the flow
// goes on to the next rule, as with `limit`. IPv6 sources are counted per /64.
struct conn_limit {
	uint32_t max = 0;
	std::string written;  // "max-conn 50 per-source"
};

// `during "SPEC" [tz ZONE]` on a rule (docs/rules.md, "Schedules"): the rule is in force only inside
// these weekly windows, read in that zone (the system's when none is named).
struct rule_schedule {
	std::vector<time_window> windows;
	time_zone zone;
	std::string written;  // "during \"Mon-Fri 08:00-18:00\" tz Europe/Berlin"
};

struct rule {
	tuple_match match;
	// Empty for a rule decided by the 5-tuple alone. Non-empty: the rule also needs these to hold on
	// the flow's payload (protocol tcp and/or udp only); classifiers see only `match`.
	std::vector<payload_condition> payload;
	action act = action::drop;
	bool log = false;
	bool in = true, out = true;  // directions the rule applies to (both when the rule names none)
	std::string counter;         // `counter NAME`, or generated "ruleN" (N = 1-based position)
	std::optional<set_add> add_to;
	std::optional<rate_limit> limit;
	std::optional<conn_limit> max_conn;
	std::optional<rule_schedule> during;
	source_location loc;         // where the rule's action keyword is
	std::string text;            // the rule as written, on one line
	written_fields written;

	bool applies(direction d) const { return d == direction::in ? in : out; }
};

// ---- large address sets (docs/rules.md, "Sets from files") ------------------------------------

// `set NAME = file "PATH"`: an address set read from a feed file. Its entries never enter the
// classifiers: the data path looks a new flow's address up in the set (lib/sets) and the rule tests
// one bit of the key (tuple_match::set_bits_*), so a rule over a million addresses costs one lookup.
struct address_set {
	std::string name;
	std::string file;                      // as resolved (relative to the rule file's directory)
	std::vector<value_range<uint32_t>> v4;  // normalized (match.h)
	std::vector<value_range<u128>> v6;
	size_t entries = 0;                    // lines that held an address or CIDR
	source_location loc;                   // the set's name in its `set` statement
	bool dynamic = false;                  // `set NAME = dynamic` (or dns): no file, filled at run time
	size_t max_adds = 65536;               // runtime adds it holds before the oldest go (`size N`)
	std::vector<std::string> dns_names;    // `set NAME = dns ...`: name patterns whose answers fill it
};


// Bit i of a key's set_bits: is the packet's source (or destination) address in sets[set]?
struct set_test {
	uint32_t set = 0;  // index into ruleset::sets
	bool dst = false;
	friend bool operator==(const set_test&, const set_test&) = default;
};
// A key has 8 set bits: one rule set may test at most 8 (set, source|destination) pairs.
inline constexpr size_t max_set_tests = 8;

struct ruleset {
	std::vector<rule> rules;
	std::vector<address_set> sets;     // the file sets that some rule tests
	std::vector<set_test> set_tests;   // [bit]
	action default_in = action::drop;
	action default_out = action::allow;
	std::vector<std::string> files;  // every file read, the top one first
	// Sets and port sets defined but never named by a rule or another set (portcullis check --lint).
	struct unused_set {
		std::string name;
		source_location loc;
		bool ports = false;
	};
	std::vector<unused_set> unused_sets;

	action default_for(direction d) const { return d == direction::in ? default_in : default_out; }
};

struct diagnostic {
	source_location loc;
	std::string message;  // says what was found and what was expected
};

struct parse_result {
	std::optional<ruleset> rules;  // present iff errors is empty
	std::vector<diagnostic> errors;
	bool abandoned = false;        // parse_options::cancel was set: no rules, errors holds one saying so
};

// How often a parse looks at parse_options::cancel: one relaxed load per this many statements (about a
// millisecond of parsing on the benchmark host), and once before each file.
inline constexpr size_t cancel_check_statements = 4096;

struct parse_options {
	// Extra service names (ports) beyond the built-in table; built-in names win. Empty = none.
	// A missing file is not an error: the built-in table is enough to parse every example.
	std::string services_file = "/etc/services";
	size_t max_file_bytes = 16 << 20;  // per file, includes too
	size_t max_rules = 1'000'000;
	int max_include_depth = 8;  // the top file is depth 0
	// Where `app NAME` finds NAME.rules; empty = the "apps" directory next to the top-level file
	// (rules/gateway.rules -> rules/apps/).
	std::string apps_dir;
	size_t max_payload_patterns = 200'000;  // in the whole rule set, app alternatives included
	size_t max_set_file_bytes = size_t(1) << 30;  // per `set NAME = file` feed
	size_t max_set_entries = 10'000'000;          // addresses and CIDRs in one feed
	// Where `set NAME = country {...}` finds the GeoIP country databases (Debian's geoip-database:
	// GeoIP.dat for IPv4, GeoIPv6.dat for IPv6).
	std::string geoip_dir = "/usr/share/GeoIP";
	// When set (the control plane points it at its stopping flag), the parse gives up once it reads
	// true: parse_result::abandoned. Must outlive the call.
	const std::atomic<bool>* cancel = nullptr;
};

parse_result parse_file(const std::string& path, const parse_options& opts = {});
// `name` is the file name used in diagnostics; includes resolve relative to its directory.
parse_result parse_string(std::string_view text, const std::string& name, const parse_options& opts = {});

// "file:line:column: error: message" (or "file: error: message" when line is 0).
std::string format(const diagnostic& d);

// Indices into rs.rules, in priority order, of the rules that apply to direction d. The classifier
// for d is built from exactly these (rule_entry id = the index into rs.rules).
std::vector<uint32_t> rules_for(const ruleset& rs, direction d);

// As rules_for, without the rules that have payload conditions: the classifier built from these
// gives a flow's payload-free verdict (docs/inspect.md).
std::vector<uint32_t> payload_free_rules_for(const ruleset& rs, direction d);

bool has_payload_rules(const ruleset& rs);

// A feed file read as `set NAME = file "PATH"` reads it (docs/rules.md, "Sets from files"), for
// `portcullis set load`: errors name path:line:column (the first 20, then a count), and any error means
// no ranges.
struct address_feed {
	std::vector<value_range<uint32_t>> v4;  // normalized
	std::vector<value_range<u128>> v6;
	size_t entries = 0;
	std::vector<diagnostic> errors;
};
address_feed read_address_feed(const std::string& path, const parse_options& opts = {});
// The same for a feed's text (errors name `name`): for tests and fuzzing.
address_feed parse_address_feed(std::string_view text, const std::string& name, const parse_options& opts = {});

// A key's set_bits for these addresses: bit i when set_tests[i] holds (a bisection per test). For the
// tools (explain, classify) and tests; the data path asks lib/sets, which must answer the same.
uint8_t set_bits_for(const ruleset& rs, uint32_t src, uint32_t dst);
uint8_t set_bits_for(const ruleset& rs, u128 src, u128 dst);

// Name-pattern semantics shared by the parser's tests and lib/inspect's reference matcher: `name` is
// compared caselessly; "*.example.com" matches names ending in ".example.com" (at least one more
// label), anything else matches exactly. A trailing dot on `name` is ignored.
bool name_matches(std::string_view pattern, std::string_view name);

} // namespace portcullis::rules
