// How the CLI prints: numbers, durations, endpoints and the rule set's source as text, and the
// daemon's answers (docs/control.md) as the tables and lines an operator reads.
//
// The render_* functions take an answer with "ok":true exactly as the daemon sends it and print it; they
// never talk to the daemon (live.cc does), so tests hand them canned answers. Fields missing from an
// answer print as zero or empty, as from an older daemon. Pure functions of their arguments.
#pragma once

#include <iosfwd>
#include <string>

#include <nlohmann/json.hpp>

namespace portcullis::cli {

// v with a fixed number of decimals: fixed(1.234, 2) is "1.23".
std::string fixed(double v, int decimals);
// Seconds, short enough for a column: 0.4s, 12s, 5m03s, 2h10m, 3d04h.
std::string duration(double seconds);
// A flow's endpoint from its answer fields: 198.18.0.5:40000, [2001:2::5]:5353, or the bare address for
// protocols without ports.
std::string endpoint(const nlohmann::json& flow, const char* address_field, const char* port_field);
// Where the active rules came from (the daemon's "source"), and whether a restart would keep them.
std::string source_line(const nlohmann::json& source);

// One renderer per live command's answer.
void render_push(const nlohmann::json& answer, const std::string& path, std::ostream& out);
// push --dry-run: the rule diff and the live flows the set would cut; `warn` gets the warning when one of
// them is the caller's own connection (the answer's keep_cut).
void render_preview(const nlohmann::json& answer, const std::string& path, std::ostream& out, std::ostream& warn);
void render_rules(const nlohmann::json& answer, std::ostream& out);
void render_flows(const nlohmann::json& answer, std::ostream& out);
void render_flush(const nlohmann::json& answer, std::ostream& out);
// op: list, show, or the change made (add, del, flush, load).
void render_set(const nlohmann::json& answer, const std::string& op, std::ostream& out);
void render_stats(const nlohmann::json& answer, std::ostream& out);
// Flow-state sync: role, readiness, traffic and each peer (the "sync" object of stats and sync).
void render_sync(const nlohmann::json& sync, std::ostream& out);
// verbose also lists the rules before the deciding one that did not match, and why.
void render_explain(const nlohmann::json& answer, bool verbose, std::ostream& out);

} // namespace portcullis::cli
