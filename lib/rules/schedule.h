// `during "Mon-Fri 08:00-18:00" [tz Europe/Berlin]` on a rule (docs/rules.md, "Schedules"): the weekly
// windows a rule is in force, and the time zone they are read in.
//
// Time zones come from the system's zoneinfo files (TZif, package tzdata), read once when the rule set
// is compiled: no global TZ variable is touched, so any thread may ask a zone what time it is. Past a
// file's last transition the last offset holds, unless the file's footer says daylight saving goes on
// (Debian's files then list transitions to 2037); past those the transitions of 28 years earlier are
// used: the calendar and weekdays repeat every 28 years between 1901 and 2099.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace portcullis::rules {

// Minutes [start, end) of the days in `days` (bit 0 Monday ... bit 6 Sunday). end <= start: the window
// runs past midnight, until `end` on the next day.
struct time_window {
	uint8_t days = 0;
	uint16_t start = 0, end = 0;
	friend bool operator==(const time_window&, const time_window&) = default;
};

// "Mon-Fri 08:00-18:00, Sat 10:00-14:00" (days: Mon..Sun, ranges such as Fri-Mon, `daily`, `weekdays`,
// `weekends`; no days: daily; 24:00 ends a day). On error: a message, and the offset in spec it is at.
struct window_error {
	std::string message;
	size_t offset = 0;
};
std::optional<window_error> parse_windows(std::string_view spec, std::vector<time_window>& out);

class time_zone {
public:
	// "Europe/Berlin", "UTC"; "" is the system's zone (/etc/localtime), UTC when it has none. On failure
	// nullopt and a reason in error.
	static std::optional<time_zone> load(const std::string& name, std::string& error);
	static time_zone utc() { return time_zone(); }
	// Seconds to add to UTC for local time at this instant.
	int32_t offset_at(int64_t unix_seconds) const;
	const std::string& name() const { return name_; }

private:
	std::string name_ = "UTC";
	std::vector<int64_t> transitions_;  // ascending
	std::vector<int32_t> offsets_;      // offset from transitions_[i] on
	int32_t before_ = 0;                // offset before the first transition
	bool rules_go_on_ = false;          // daylight saving continues past the last transition (TZ footer)
};

// Is the instant inside one of the windows, in that zone's local time?
bool in_windows(const std::vector<time_window>& windows, const time_zone& zone, int64_t unix_seconds);

} // namespace portcullis::rules
