// Loader for ClassBench filter sets and traces (format: ../shared/classbench/README.md), shared by
// bench-classify and the ClassBench agreement test.
//
// Rules become tuple_match in file order (line 1 = rule 0 = highest priority), IPv4 only. The protocol is
// value/mask (0xFF exact, 0x00 any; other masks become the set of matching values). The trailing 16-bit
// TCP-flags value/mask is ignored, as dpdk-test-acl and the usual 5-tuple benchmarks do: ClassBench's
// "flags" are not the 8-bit TCP flags our rules test, so the comparison is on the 5-tuple only. Trace
// keys therefore carry tcp_flags = 0.
//
// Errors are values ("file:line: what"); nothing throws. Threads: pure functions, any thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "classify/classify.h"
#include "rules/match.h"

namespace portcullis::classbench {

struct rules_result {
	std::vector<tuple_match> rules;
	std::string error;  // empty on success
};

struct trace_packet {
	classify::key_v4 key;
	uint32_t filter;  // 0-based index of the rule the header was generated from (not always the first match)
};

struct trace_result {
	std::vector<trace_packet> packets;
	std::string error;
};

rules_result load_rules(const std::string& path);

// Reads a gzip (or plain) trace with zlib; stops after max_packets lines.
trace_result load_trace(const std::string& path, size_t max_packets = SIZE_MAX);

// Names of the sets in dir ("acl1_10k" ...) that have both <name>.rules and <name>.trace.gz, sorted.
std::vector<std::string> list_sets(const std::string& dir);

} // namespace portcullis::classbench
