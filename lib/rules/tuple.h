// Test flows for the tools: parses one packet's 5-tuple as an operator types it
//   tcp 198.18.0.5:40000 -> 198.18.1.2:22 in
//   udp [2001:2::5]:5353 -> [2001:2::53]:53 out
//   icmp 198.18.0.5 -> 198.18.1.2 in type echo-request code 0
//   tcp 198.18.0.5:40000 -> 198.18.1.2:22 in flags SA
// and says, field by field, whether a rule matches it (what `portcullis explain` prints).
//
// A TCP flow without `flags` is taken as the first packet of a connection (SYN only), since that is
// the packet a stateful firewall's rules decide on. Ports default to 0 when omitted.
// Pure functions, any thread; errors are values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "rules/rules.h"

namespace portcullis::rules {

struct flow_tuple {
	bool v6 = false;
	u128 src = 0, dst = 0;  // host order; IPv4 in the low 32 bits
	uint16_t sport = 0, dport = 0;  // ICMP: type, code
	uint8_t proto = 0;
	uint8_t tcp_flags = 0;
	direction dir = direction::in;
};

struct tuple_parse_result {
	std::optional<flow_tuple> value;
	std::string error;     // what was expected, when value is empty
	uint32_t column = 0;   // 1-based position of the offending token
};

tuple_parse_result parse_tuple(std::string_view text);
std::string format(const flow_tuple& f);  // back in the input syntax
std::string format_address(bool v6, u128 a);
// "tcp", "udp", "icmp", "icmp6", or the protocol's number: how flows, logs and messages name it.
std::string format_protocol(uint8_t proto);

// Does r match f (direction included)? One line per field saying why, e.g. "dport 22 in { ssh, http }",
// or, when it does not match, the first field that fails ("dport 8080 not in { ssh, http }").
struct match_explanation {
	bool matched = false;
	std::vector<std::string> reasons;
};
// set_bits: the flow's key bits for the rule set's file-set tests (rules.h set_bits_for, or the data
// path's live sets); a rule that tests a set is judged on them.
match_explanation explain(const rule& r, const flow_tuple& f, uint8_t set_bits = 0);

// Every field of f that r's match refuses, each as explain words it ("dport 3389 not in { ssh, http,
// https }"); empty when r matches. Nothing (nullopt) when r cannot apply at all: another direction or
// address family. For a default verdict: the rules that came nearest, and what kept each from matching.
std::optional<std::vector<std::string>> mismatches(const rule& r, const flow_tuple& f, uint8_t set_bits = 0);

} // namespace portcullis::rules
