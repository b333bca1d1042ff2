#include "rules/schedule.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <iterator>

namespace portcullis::rules {
namespace {

constexpr std::array<std::string_view, 7> day_names = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};

std::string lower(std::string_view s)
{
	std::string out(s);
	for (auto& c : out)
		c = char(std::tolower(static_cast<unsigned char>(c)));
	return out;
}

int day_index(std::string_view w)
{
	const std::string l = lower(w);
	for (size_t i = 0; i < day_names.size(); ++i)
		if (l == day_names[i])
			return int(i);
	return -1;
}

// "HH:MM" with 00 <= HH <= 24 (24:00 only), minutes of the day.
std::optional<uint16_t> clock_time(std::string_view t)
{
	if (t.size() != 5 || t[2] != ':' || !std::isdigit(static_cast<unsigned char>(t[0])) ||
	    !std::isdigit(static_cast<unsigned char>(t[1])) || !std::isdigit(static_cast<unsigned char>(t[3])) ||
	    !std::isdigit(static_cast<unsigned char>(t[4])))
		return std::nullopt;
	const int h = (t[0] - '0') * 10 + (t[1] - '0'), m = (t[3] - '0') * 10 + (t[4] - '0');
	if (m > 59 || h > 24 || (h == 24 && m != 0))
		return std::nullopt;
	return uint16_t(h * 60 + m);
}

} // namespace

std::optional<window_error> parse_windows(std::string_view spec, std::vector<time_window>& out)
{
	out.clear();
	size_t at = 0;
	while (true) {
		// One item: [DAYS] HH:MM-HH:MM, items separated by commas.
		const size_t end = std::min(spec.find(',', at), spec.size());
		std::vector<std::pair<std::string_view, size_t>> words;  // word, offset
		for (size_t i = at; i < end;) {
			while (i < end && spec[i] == ' ')
				++i;
			const size_t start = i;
			while (i < end && spec[i] != ' ')
				++i;
			if (i > start)
				words.emplace_back(spec.substr(start, i - start), start);
		}
		if (words.empty())
			return window_error{"expected a window such as 'Mon-Fri 08:00-18:00'", at};
		if (words.size() > 2)
			return window_error{"unexpected '" + std::string(words[2].first) + "' (a window is [DAYS] HH:MM-HH:MM)",
			                    words[2].second};
		time_window w;
		w.days = 0x7F;
		if (words.size() == 2) {
			const auto [d, off] = words[0];
			const std::string l = lower(d);
			if (l == "daily")
				w.days = 0x7F;
			else if (l == "weekdays")
				w.days = 0x1F;
			else if (l == "weekends")
				w.days = 0x60;
			else {
				const size_t dash = d.find('-');
				const int first = day_index(d.substr(0, dash));
				const int last = dash == std::string_view::npos ? first : day_index(d.substr(dash + 1));
				if (first < 0 || last < 0)
					return window_error{"invalid days '" + std::string(d) +
					                        "' (expected Mon..Sun, a range such as Mon-Fri, daily, weekdays or weekends)",
					                    off};
				w.days = 0;
				for (int i = first;; i = (i + 1) % 7) {  // Fri-Mon wraps through the weekend
					w.days |= uint8_t(1u << i);
					if (i == last)
						break;
				}
			}
		}
		const auto [range, roff] = words.back();
		const size_t dash = range.find('-');
		const auto from = clock_time(range.substr(0, dash));
		const auto to = dash == std::string_view::npos ? std::nullopt : clock_time(range.substr(dash + 1));
		if (!from || !to || *from == 24 * 60)
			return window_error{"invalid time range '" + std::string(range) + "' (expected HH:MM-HH:MM, e.g. 08:00-18:00)",
			                    roff};
		if (*from == *to)
			return window_error{"empty time range '" + std::string(range) + "' (use 00:00-24:00 for a whole day)", roff};
		w.start = *from;
		w.end = *to == 24 * 60 ? uint16_t(24 * 60) : *to;
		out.push_back(w);
		if (end == spec.size())
			break;
		at = end + 1;
	}
	return std::nullopt;
}

std::optional<time_zone> time_zone::load(const std::string& name, std::string& error)
{
	time_zone z;
	std::string path;
	if (name.empty()) {
		path = "/etc/localtime";
		std::ifstream probe(path);
		if (!probe)
			return z;  // no system zone: UTC
		z.name_ = "local";
	} else {
		if (name.front() == '/' || name.find("..") != std::string::npos ||
		    name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+-") != std::string::npos) {
			error = "invalid time zone name '" + name + "' (expected an IANA name such as Europe/Berlin or UTC)";
			return std::nullopt;
		}
		path = "/usr/share/zoneinfo/" + name;
		z.name_ = name;
	}
	std::ifstream f(path, std::ios::binary);
	if (!f) {
		error = "unknown time zone '" + name + "' (no " + path + "; package tzdata)";
		return std::nullopt;
	}
	const std::string d((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
	auto u32 = [&](size_t at) {
		return uint32_t(uint8_t(d[at])) << 24 | uint32_t(uint8_t(d[at + 1])) << 16 | uint32_t(uint8_t(d[at + 2])) << 8 |
		       uint32_t(uint8_t(d[at + 3]));
	};
	auto bad = [&] {
		error = "cannot read time zone file " + path;
		return std::nullopt;
	};
	if (d.size() < 44 || d.compare(0, 4, "TZif") != 0)
		return bad();
	// Header: magic, version, 15 reserved bytes, six counts.
	auto counts = [&](size_t at, uint32_t c[6]) {
		for (int i = 0; i < 6; ++i)
			c[i] = u32(at + 20 + size_t(i) * 4);
	};
	uint32_t c[6];  // isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt
	counts(0, c);
	size_t at = 44;
	size_t time_bytes = 4;
	if (d[4] >= '2') {  // skip the 32-bit block, read the 64-bit one
		at += size_t(c[3]) * 5 + size_t(c[4]) * 6 + c[5] + size_t(c[2]) * 8 + c[1] + c[0];
		if (d.size() < at + 44 || d.compare(at, 4, "TZif") != 0)
			return bad();
		counts(at, c);
		at += 44;
		time_bytes = 8;
	}
	const size_t need = size_t(c[3]) * (time_bytes + 1) + size_t(c[4]) * 6;
	if (c[4] == 0 || d.size() < at + need)
		return bad();
	std::vector<int64_t> times(c[3]);
	for (uint32_t i = 0; i < c[3]; ++i) {
		const size_t p = at + size_t(i) * time_bytes;
		times[i] = time_bytes == 8 ? int64_t(uint64_t(u32(p)) << 32 | u32(p + 4)) : int64_t(int32_t(u32(p)));
	}
	at += size_t(c[3]) * time_bytes;
	std::vector<uint8_t> index(c[3]);
	for (uint32_t i = 0; i < c[3]; ++i)
		index[i] = uint8_t(d[at + i]);
	at += c[3];
	std::vector<int32_t> type_offset(c[4]);
	for (uint32_t i = 0; i < c[4]; ++i)
		type_offset[i] = int32_t(u32(at + size_t(i) * 6));
	// The footer after version 2+ data: "\nTZ\n", a POSIX TZ string. A comma means daylight saving rules
	// go on past the last transition; none means the last offset holds for good (Asia/Kolkata's since
	// 1945: extrapolating its 1940s transitions would be an hour off).
	if (time_bytes == 8) {
		const size_t footer = at + size_t(c[4]) * 6 + c[5] + size_t(c[2]) * (time_bytes + 4) + c[1] + c[0];
		if (footer < d.size() && d[footer] == '\n') {
			const size_t end = d.find('\n', footer + 1);
			z.rules_go_on_ = d.substr(footer + 1, end == std::string::npos ? std::string::npos : end - footer - 1)
			                     .find(',') != std::string::npos;
		}
	}
	for (uint32_t i = 0; i < c[3]; ++i) {
		if (index[i] >= c[4])
			return bad();
		z.transitions_.push_back(times[i]);
		z.offsets_.push_back(type_offset[index[i]]);
	}
	z.before_ = type_offset[0];
	return z;
}

int32_t time_zone::offset_at(int64_t t) const
{
	if (transitions_.empty())
		return before_;
	if (t > transitions_.back()) {
		if (!rules_go_on_)
			return offsets_.back();  // no daylight saving any more: the last offset holds
		// Daylight saving rules past the file's transitions (Debian's run to 2037): the same instant 28
		// years earlier, which has the same weekdays and dates.
		constexpr int64_t cycle = int64_t(28) * 365 * 86400 + 7 * 86400;  // 28 years, 7 of them leap
		while (t > transitions_.back() && t - cycle > transitions_.front())
			t -= cycle;
	}
	const auto it = std::upper_bound(transitions_.begin(), transitions_.end(), t);
	return it == transitions_.begin() ? before_ : offsets_[size_t(it - transitions_.begin()) - 1];
}

bool in_windows(const std::vector<time_window>& windows, const time_zone& zone, int64_t unix_seconds)
{
	const int64_t local = unix_seconds + zone.offset_at(unix_seconds);
	const int64_t day = local >= 0 ? local / 86400 : (local - 86399) / 86400;
	const uint32_t minute = uint32_t((local - day * 86400) / 60);
	const uint32_t today = uint32_t(((day + 3) % 7 + 7) % 7);  // 1970-01-01 was a Thursday (index 3)
	const uint32_t yesterday = (today + 6) % 7;
	for (const auto& w : windows) {
		if (w.start < w.end) {
			if ((w.days >> today & 1) && minute >= w.start && minute < w.end)
				return true;
		} else if (((w.days >> today & 1) && minute >= w.start) || ((w.days >> yesterday & 1) && minute < w.end)) {
			return true;
		}
	}
	return false;
}

} // namespace portcullis::rules
