// `during "..." [tz ZONE]`: the window grammar, time zones from the zoneinfo files, and which instants a
// schedule holds (instants are fixed UTC times, so the test does not depend on the clock).
#include <cstdlib>
#include <ctime>
#include <filesystem>

#include "helpers.h"

namespace portcullis::rules::test {
namespace {

// Unix times (UTC).
constexpr int64_t wed_2026_07_01_0530 = 1782883800, wed_2026_07_01_0630 = 1782887400;
constexpr int64_t wed_2026_01_14_0630 = 1768372200, wed_2026_01_14_0730 = 1768375800;
constexpr int64_t sat_2026_07_04_1000 = 1783159200, fri_2026_07_03_2330 = 1783121400;
constexpr int64_t sat_2026_07_04_0300 = 1783134000, sun_2026_07_05_0300 = 1783220400;
constexpr int64_t wed_2050_07_06_0630 = 2540701800;

std::vector<time_window> windows(const std::string& spec)
{
	std::vector<time_window> w;
	const auto err = parse_windows(spec, w);
	REQUIRE_FALSE(err);
	return w;
}

bool have_zoneinfo() { return std::filesystem::exists("/usr/share/zoneinfo/Europe/Berlin"); }

} // namespace

TEST_CASE("schedule windows parse: days, ranges, wrapping ranges and several windows")
{
	CHECK(windows("Mon-Fri 08:00-18:00") == std::vector<time_window>{{0x1F, 480, 1080}});
	CHECK(windows("08:00-09:30") == std::vector<time_window>{{0x7F, 480, 570}});
	CHECK(windows("weekends 00:00-24:00, Wed 12:00-13:00") == std::vector<time_window>{{0x60, 0, 1440}, {0x04, 720, 780}});
	CHECK(windows("Fri-Mon 22:00-06:00") == std::vector<time_window>{{0x71, 1320, 360}});
	CHECK(windows("  sat   10:00-14:00 ") == std::vector<time_window>{{0x20, 600, 840}});
	std::vector<time_window> w;
	auto err = parse_windows("Mon-Fry 08:00-18:00", w);
	REQUIRE(err);
	CHECK(err->offset == 0);
	CHECK(err->message.starts_with("invalid days 'Mon-Fry'"));
	err = parse_windows("Mon 8:00-18:00", w);
	REQUIRE(err);
	CHECK(err->offset == 4);
	CHECK(err->message.starts_with("invalid time range '8:00-18:00'"));
	CHECK(parse_windows("Mon 08:00-08:00", w)->message.starts_with("empty time range"));
	CHECK(parse_windows("Mon 08:00-24:01", w));
	CHECK(parse_windows("Mon 08:00-18:00,", w)->offset == 16);
	CHECK(parse_windows("Mon 08:00-18:00 extra", w)->offset == 16);
}

TEST_CASE("a schedule holds at the instants its zone's local time says")
{
	const auto office = windows("Mon-Fri 08:00-18:00");
	const time_zone utc = time_zone::utc();
	CHECK(in_windows(office, utc, wed_2026_07_01_0630 + 2 * 3600));  // 08:30 UTC
	CHECK_FALSE(in_windows(office, utc, wed_2026_07_01_0630));       // 06:30 UTC
	CHECK_FALSE(in_windows(office, utc, sat_2026_07_04_1000));       // Saturday
	// Past midnight: Friday 22:00 to Saturday 06:00 belongs to Friday's window.
	const auto night = windows("Fri 22:00-06:00");
	CHECK(in_windows(night, utc, fri_2026_07_03_2330));
	CHECK(in_windows(night, utc, sat_2026_07_04_0300));
	CHECK_FALSE(in_windows(night, utc, sun_2026_07_05_0300));
	if (!have_zoneinfo()) {
		WARN("skipped the Europe/Berlin checks: no /usr/share/zoneinfo (package tzdata)");
		return;
	}
	std::string error;
	const auto berlin = time_zone::load("Europe/Berlin", error);
	REQUIRE(berlin);
	CHECK(berlin->offset_at(wed_2026_07_01_0630) == 7200);  // CEST
	CHECK(berlin->offset_at(wed_2026_01_14_0630) == 3600);  // CET
	CHECK(in_windows(office, *berlin, wed_2026_07_01_0630));        // 08:30 in Berlin
	CHECK_FALSE(in_windows(office, *berlin, wed_2026_07_01_0530));  // 07:30
	CHECK(in_windows(office, *berlin, wed_2026_01_14_0730));        // 08:30 in winter
	CHECK_FALSE(in_windows(office, *berlin, wed_2026_01_14_0630));  // 07:30 in winter
	// Past the zone file's last transition (2037): summer time still starts in spring.
	CHECK(berlin->offset_at(wed_2050_07_06_0630) == 7200);
	CHECK(in_windows(office, *berlin, wed_2050_07_06_0630));
	CHECK_FALSE(time_zone::load("Mars/Olympus_Mons", error));
	CHECK(error.starts_with("unknown time zone 'Mars/Olympus_Mons'"));
	CHECK_FALSE(time_zone::load("../etc/passwd", error));
	CHECK(error.starts_with("invalid time zone name"));
}

TEST_CASE("zone offsets agree with the C library's for zones with and without daylight saving")
{
	if (!have_zoneinfo()) {
		WARN("skipped: no /usr/share/zoneinfo (package tzdata)");
		return;
	}
	// Zones whose last transition is long past (Kolkata 1945, Phoenix, Jakarta, Moscow 2014, Mexico City
	// 2022), zones with daylight saving both hemispheres, and half-hour offsets: every 7 hours of 2025-2027.
	for (const char* name : {"Asia/Kolkata", "Europe/Moscow", "America/Mexico_City", "Asia/Jakarta", "America/Phoenix",
	                         "Africa/Lagos", "Europe/Berlin", "America/New_York", "Australia/Sydney", "Asia/Tehran",
	                         "America/St_Johns", "UTC"}) {
		INFO(name);
		std::string error;
		const auto zone = time_zone::load(name, error);
		REQUIRE(zone);
		setenv("TZ", name, 1);
		tzset();
		uint32_t mismatches = 0;
		for (int64_t t = 1735689600; t < 1735689600 + 3 * 365 * 86400LL; t += 7 * 3600) {
			const time_t tt = time_t(t);
			struct tm tm;
			localtime_r(&tt, &tm);
			mismatches += tm.tm_gmtoff != zone->offset_at(t);
		}
		CHECK(mismatches == 0);
	}
	unsetenv("TZ");
	tzset();
}

TEST_CASE("during on a rule: its windows, its zone, and the errors at their columns")
{
	const rule r = parse_one("allow in tcp to any port ssh during \"Mon-Fri 08:00-18:00\" tz UTC\n");
	REQUIRE(r.during);
	CHECK(r.during->windows == std::vector<time_window>{{0x1F, 480, 1080}});
	CHECK(r.during->zone.name() == "UTC");
	CHECK(r.during->written == "during \"Mon-Fri 08:00-18:00\" tz UTC");
	auto first = [](const std::string& text) { return format(parse_errors(text)[0]); };
	CHECK(first("allow in during\n") ==
	      "t.rules:1:10: error: expected a schedule in quotes after 'during' (e.g. during \"Mon-Fri 08:00-18:00\"), got end of line");
	CHECK(first("allow in during \"Mon-Fri 8:00-18:00\"\n").starts_with("t.rules:1:26: error: invalid time range '8:00-18:00'"));
	CHECK(first("allow in during \"Mon 08:00-18:00\" tz\n").starts_with("t.rules:1:17: error: expected a time zone after 'tz'"));
	CHECK(first("allow in during \"Mon 08:00-18:00\" tz Mars/Olympus_Mons\n")
	          .starts_with("t.rules:1:38: error: unknown time zone 'Mars/Olympus_Mons'"));
	CHECK(first("allow in tcp during \"Mon 08:00-18:00\" content \"x\"\n")
	          .starts_with("t.rules:1:1: error: during does not go with payload conditions"));
}

} // namespace portcullis::rules::test
