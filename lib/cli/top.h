// portcullis top: what the daemon is doing right now, refreshed every second (pftop and htop are the
// anchors). Each refresh asks the daemon for stats, rules and flows; rates are the differences between
// two refreshes over the time between them.
//
// Views (keys): r rules by rate, d drops by reason with rates, f top flows by rate; s switches the sort
// between packets and bytes; q quits. Above every view: the rule generation, table fill, evictions and
// expiries, traffic and drop rates, and each worker's busy ratio. On a terminal it draws with ncurses;
// anywhere else (a pipe, a file) it prints the same frame as plain text at each refresh.
//
// The frame is a pure function of two snapshots (top_frame), which the tests feed with canned answers.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace portcullis::cli {

// The daemon's answers at one moment.
struct top_snapshot {
	double seconds = 0;  // steady clock when they were taken
	nlohmann::json stats, rules, flows;
};

enum class top_view { rules, drops, flows };
enum class top_sort { packets, bytes };

// The lines of one frame: the summary, then the view's table, at most `rows` rows of it, sorted by the
// rate chosen.
std::vector<std::string> top_frame(const top_snapshot& before, const top_snapshot& now, top_view view, top_sort sort,
                                   size_t rows);

} // namespace portcullis::cli
