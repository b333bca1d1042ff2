#include "control/drop_log.h"

#include <rte_cycles.h>
#include <syslog.h>

#include <chrono>
#include <ctime>

#include "control/runtime.h"
#include "rules/tuple.h"

namespace portcullis::control {
namespace {

std::string utc_now()
{
	const auto now = std::chrono::system_clock::now();
	const std::time_t t = std::chrono::system_clock::to_time_t(now);
	const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
	std::tm tm{};
	gmtime_r(&t, &tm);
	char buf[80];  // room for any int the compiler cannot rule out, so -Wformat-truncation stays quiet
	std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	              tm.tm_hour, tm.tm_min, tm.tm_sec, int(ms));
	return buf;
}

// JSON string escaping for the few free-text fields (file names).
std::string quoted(const std::string& s)
{
	std::string out = "\"";
	for (char c : s) {
		if (c == '"' || c == '\\')
			out += '\\', out += c;
		else if (uint8_t(c) < 0x20)
			out += ' ';
		else
			out += c;
	}
	return out + "\"";
}

} // namespace

drop_log::drop_log(log_target target, FILE* out) : target_(target), out_(out)
{
	if (target_ == log_target::syslog_json)
		openlog("portcullisd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

drop_log::~drop_log()
{
	if (target_ == log_target::syslog_json)
		closelog();
}

void drop_log::emit(const std::string& line)
{
	if (target_ == log_target::syslog_json) {
		syslog(LOG_INFO, "%s", line.c_str());
	} else {
		std::fputs(line.c_str(), out_);
		std::fputc('\n', out_);
	}
}

uint32_t drop_log::flush(const runtime& rt)
{
	static const char* verdicts[] = {"allow", "drop", "reject"};
	uint32_t lines = 0;
	uint64_t suppressed = 0;
	const dataplane::compiled_policy& pol = rt.policy();
	const std::string ts = utc_now();
	for (const auto& w : rt.workers()) {
		lines += w->log().drain(
			[&](const dataplane::log_record& r) {
				std::string line = "{\"ts\":\"" + ts + "\",\"event\":\"rule\",\"verdict\":\"" + verdicts[r.verdict % 3] +
				                   "\",\"direction\":\"" + (r.direction ? "out" : "in") + "\",\"proto\":\"" +
				                   rules::format_protocol(r.proto) + "\",\"src\":\"" + rules::format_address(r.family == 6, r.src) +
				                   "\",\"sport\":" + std::to_string(r.sport) + ",\"dst\":\"" +
				                   rules::format_address(r.family == 6, r.dst) + "\",\"dport\":" + std::to_string(r.dport);
				// Rule names only while the record's rule set is the active one (indices change with a push).
				if (r.generation == pol.generation && r.rule < pol.rules.rules.size()) {
					const rules::rule& rule = pol.rules.rules[r.rule];
					line += ",\"rule\":" + quoted(rule.counter) + ",\"file\":" + quoted(rule.loc.file) +
					        ",\"line\":" + std::to_string(rule.loc.line);
				} else {
					line += ",\"rule_index\":" + std::to_string(r.rule);
				}
				line += ",\"generation\":" + std::to_string(r.generation) + "}";
				emit(line);
			},
			4096);
		suppressed += w->log().suppressed();
	}
	const uint64_t now = rte_rdtsc();
	if (suppressed > suppressed_reported_ && now - last_report_tsc_ >= rte_get_tsc_hz()) {
		emit("{\"ts\":\"" + ts + "\",\"event\":\"suppressed\",\"count\":" + std::to_string(suppressed - suppressed_reported_) +
		     "}");
		suppressed_reported_ = suppressed;
		last_report_tsc_ = now;
		++lines;
	}
	if (lines && target_ == log_target::stdout_json)
		std::fflush(out_);
	return lines;
}

} // namespace portcullis::control
