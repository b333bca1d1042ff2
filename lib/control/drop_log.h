// The log of rules marked `log`: drains every worker's log ring (dataplane/log_ring.h) on the control
// thread and writes one JSON object per line, to stdout or to syslog (which journald collects):
//   {"ts":"2026-11-25T17:40:00.123Z","event":"rule","verdict":"drop","direction":"in","proto":"tcp",
//    "src":"198.18.0.66","sport":40666,"dst":"198.18.1.10","dport":31337,"rule":"backdoor",
//    "file":"rules/gateway.rules","line":14,"generation":1}
// Workers rate-limit themselves (log.rate per worker per second); what they had to suppress is reported
// here once a second as {"event":"suppressed","count":N}, so the log says that it is incomplete.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace portcullis::control {

class runtime;

enum class log_target { stdout_json, syslog_json };

class drop_log {
public:
	drop_log(log_target target, FILE* out = stdout);
	~drop_log();
	// Control thread: write what the workers logged since the last call. Returns lines written.
	uint32_t flush(const runtime& rt);

private:
	void emit(const std::string& line);
	log_target target_;
	FILE* out_;
	uint64_t suppressed_reported_ = 0;
	uint64_t last_report_tsc_ = 0;
};

} // namespace portcullis::control
