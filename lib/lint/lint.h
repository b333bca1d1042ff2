// portcullis check --lint: what is wrong with a rule set that still parses. Exact, on the rules' range
// sets, not on sampled packets:
//   shadowed    a rule no packet can reach: earlier rules cover all of it (the rule is dead);
//   redundant   a rule whose removal changes no verdict: what reaches it goes, with the same action, to
//               later rules (or the default) before any rule of another action could take it;
//   correlated  a rule partly overlapped by an earlier rule of another action (worth a look: which
//               packets get which verdict depends on the order);
//   unused-set  a set or port set that nothing names;
//   wide-allow  an inbound allow from any source to more than wide_ports ports.
//
// A rule's match is a union of boxes over (protocol, source, source port, destination, destination
// port), one family and direction at a time; covering is decided by subtracting boxes. A rule with more
// than the 5-tuple (payload, TCP flags, a large set, limit, max-conn, schedule) may not match, so it
// covers nothing for the others; it can itself be shadowed. A rule whose pieces would pass max_boxes, or
// whose comparisons would pass work_per_rule, is left undecided (counted): the work is at most
// rules * (rules + work_per_rule) steps whatever the rule set (ClassBench's 10K sets: under 2 s).
// Pure function of the rule set; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "rules/rules.h"

namespace portcullis::lint {

enum class kind : uint8_t { shadowed, redundant, correlated, unused_set, wide_allow };
const char* kind_name(kind k);  // "shadowed", "redundant", "correlated", "unused-set", "wide-allow"

struct finding {
	kind what;
	rules::source_location loc;    // the rule (or set) it is about
	std::string message;           // what, and the rules responsible, as file:line
	int64_t rule = -1;             // its index, -1 for a set
	std::vector<uint32_t> by;      // the other rules responsible
};

struct options {
	uint32_t wide_ports = 1024;    // wide-allow: an inbound allow from any source to more ports than this
	size_t max_boxes = 1024;       // per rule: past this many pieces it is undecided
	uint64_t work_per_rule = 8u << 20;  // per rule: pieces compared in all, past which it is undecided
	size_t max_correlated = 3;     // correlated: earlier rules named per rule at most
};

struct report {
	std::vector<finding> findings;  // in rule order, then the sets
	size_t undecided = 0;           // rules whose reachability was left undecided (max_boxes); a rule whose
	                                // redundancy could not be decided is simply not called redundant
};

report lint(const rules::ruleset& rs, const options& opt = {});

} // namespace portcullis::lint
