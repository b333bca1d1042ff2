// The offline commands on rule and flow files written to a temporary directory: check's summary and its
// FILE:LINE:COLUMN errors, explain's verdict and reasons (payload rules included), classify's verdict
// lines and counts, publish's refusals before anything reaches etcd, and the exit codes of each.
#include <catch2/catch.hpp>

#include <string>

#include "helpers.h"

using namespace portcullis::cli;
using namespace portcullis::cli::test;

namespace {

constexpr const char* gateway = R"(# a small gateway
default in drop
default out allow
allow in udp to 198.18.1.10 port 53
allow log in tcp to 198.18.1.10 port 22 counter ssh
drop out udp to any port 53
reject in tcp to any port 23
)";

// Two errors, each with its own line and column.
constexpr const char* broken = R"(default in drop
allow in tcp to 198.18.1.10 port 99999
allow in tcp from 1.2.3.4/33 to any
)";

options offline_options()
{
	options o;
	o.services = "";  // the built-in port names only: the same on every machine
	return o;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }
bool ends_with(const std::string& s, const std::string& suffix)
{
	return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

} // namespace

TEST_CASE("check summarises a good rule file and exits 0", "[cli][offline]")
{
	temp_dir dir;
	const auto file = dir.write("gw.rules", gateway);
	for (const auto backend : {portcullis::classify::backend::ours, portcullis::classify::backend::linear}) {
		auto o = offline_options();
		o.backend = backend;
		const auto r = capture([&](streams io) { return cmd_check({file}, o, io); });
		CHECK(r.status == exit_ok);
		CHECK(r.err.empty());
		CHECK(starts_with(r.out, file + ": OK, 4 rules in 1 file (in: 3 (v4 3, v6 1), default drop; out: 1 (v4 1, v6 1), "
		                                "default allow), classifier '" +
		                             std::string(portcullis::classify::backend_name(backend)) + "' "));
		CHECK(r.out.find(" bytes, compiled in ") != std::string::npos);
		CHECK(ends_with(r.out, " ms\n"));
	}
}

TEST_CASE("check --lint prints each finding as file:line:column, or JSON for CI", "[cli][offline]")
{
	temp_dir dir;
	const auto file = dir.write("l.rules", "default in drop\n"
	                                       "set spare = { 198.18.5.0/24 }\n"
	                                       "allow in tcp to 198.18.1.0/24 port { 80, 443 }\n"
	                                       "allow in tcp to 198.18.1.10 port 80\n");
	auto o = offline_options();
	o.lint = true;
	auto r = capture([&](streams io) { return cmd_check({file}, o, io); });
	CHECK(r.status == exit_ok);
	const auto lines = lines_of(r.out);
	REQUIRE(lines.size() == 3);
	CHECK(lines[0] == file + ":4:1: warning: shadowed: allow in tcp to 198.18.1.10 port 80: never matches: " + file +
	                      ":3 covers all of it");
	CHECK(lines[1] == file + ":2:5: warning: unused-set: set 'spare' is never used");
	CHECK(lines[2] == file + ": 2 rules, 2 warnings");
	o.json = true;
	r = capture([&](streams io) { return cmd_check({file}, o, io); });
	const auto j = nlohmann::json::parse(r.out);
	CHECK(j["ok"] == true);
	CHECK(j["undecided"] == 0);
	REQUIRE(j["findings"].size() == 2);
	CHECK(j["findings"][0]["kind"] == "shadowed");
	CHECK(j["findings"][0]["line"] == 4);
	CHECK(j["findings"][0]["rule"] == 1);
	CHECK(j["findings"][0]["by"][0]["line"] == 3);
	CHECK(j["findings"][1]["kind"] == "unused-set");
	CHECK(j["findings"][1]["rule"].is_null());
}

TEST_CASE("check counts the files an include brings in", "[cli][offline]")
{
	temp_dir dir;
	const auto base = dir.write("gw.rules", gateway);
	const auto top = dir.write("top.rules", "include \"" + base + "\"\nallow in tcp to 198.18.1.11 port 80\n");
	const auto r = capture([&](streams io) { return cmd_check({top}, offline_options(), io); });
	CHECK(r.status == exit_ok);
	CHECK(starts_with(r.out, top + ": OK, 5 rules in 2 files (in: 4 "));
}

TEST_CASE("check prints every error as file:line:column and exits 1", "[cli][offline]")
{
	temp_dir dir;
	const auto file = dir.write("bad.rules", broken);
	const auto r = capture([&](streams io) { return cmd_check({file}, offline_options(), io); });
	CHECK(r.status == exit_failed);
	CHECK(r.out.empty());
	const auto lines = lines_of(r.err);
	REQUIRE(lines.size() == 3);
	CHECK(lines[0] == file + ":2:34: error: port 99999 out of range (expected 0-65535)");
	CHECK(starts_with(lines[1], file + ":3:19: error: prefix length /33 is too long for IPv4"));
	CHECK(lines[2] == file + ": 2 errors");
}

TEST_CASE("check: a missing file is an error, the wrong number of arguments a usage error", "[cli][offline]")
{
	temp_dir dir;
	const auto missing = (dir.path() / "nope.rules").string();
	const auto r = capture([&](streams io) { return cmd_check({missing}, offline_options(), io); });
	CHECK(r.status == exit_failed);
	CHECK(starts_with(r.err, missing + ":"));
	CHECK(ends_with(r.err, missing + ": 1 error\n"));

	const auto none = capture([&](streams io) { return cmd_check({}, offline_options(), io); });
	CHECK(none.status == exit_usage);
	CHECK(none.err == "portcullis: check takes one FILE\n");
	const auto two = capture([&](streams io) { return cmd_check({"a", "b"}, offline_options(), io); });
	CHECK(two.status == exit_usage);
}

TEST_CASE("explain names the deciding rule, its counter and why, field by field", "[cli][offline]")
{
	temp_dir dir;
	const auto file = dir.write("gw.rules", gateway);
	const auto r = capture([&](streams io) {
		return cmd_explain({file, "tcp 198.18.0.5:40000 -> 198.18.1.10:22 in"}, offline_options(), io);
	});
	CHECK(r.status == exit_ok);
	CHECK(r.err.empty());
	CHECK(r.out == "flow:    tcp 198.18.0.5:40000 -> 198.18.1.10:22 in\n"
	               "verdict: allow (logged)\n"
	               "rule:    " + file + ":5: allow log in tcp to 198.18.1.10 port 22 counter ssh\n"
	               "counter: ssh\n"
	               "because:\n"
	               "  direction in: rule applies to in\n"
	               "  proto tcp in tcp\n"
	               "  src 198.18.0.5 in any\n"
	               "  sport 40000 in any\n"
	               "  dst 198.18.1.10 in 198.18.1.10\n"
	               "  dport 22 in 22\n");
}

TEST_CASE("explain -v lists the rules before the deciding one and why they did not match", "[cli][offline]")
{
	temp_dir dir;
	const auto file = dir.write("gw.rules", gateway);
	auto o = offline_options();
	o.verbose = true;
	const auto r = capture([&](streams io) { return cmd_explain({file, "tcp 198.18.0.5:40000 -> 198.18.1.10:23 in"}, o, io); });
	CHECK(r.status == exit_ok);
	const auto lines = lines_of(r.out);
	REQUIRE(lines.size() >= 7);
	CHECK(lines[1] == "skipped: " + file + ":4: allow in udp to 198.18.1.10 port 53");
	CHECK(starts_with(lines[2], "         (proto tcp"));
	CHECK(lines[3] == "skipped: " + file + ":5: allow log in tcp to 198.18.1.10 port 22 counter ssh");
	CHECK(starts_with(lines[4], "         (dport 23"));
	CHECK(lines[5] == "verdict: reject");
	CHECK(lines[6] == "rule:    " + file + ":7: reject in tcp to any port 23");
}

TEST_CASE("explain says when the direction's default decides", "[cli][offline]")
{
	temp_dir dir;
	const auto file = dir.write("gw.rules", gateway);
	const auto in = capture([&](streams io) {
		return cmd_explain({file, "udp [2001:2::5]:5353 -> [2001:2::53]:123 in"}, offline_options(), io);
	});
	CHECK(in.status == exit_ok);
	// The nearest rules of that direction and family, and the fields that kept each from matching (the
	// IPv4-only ones cannot apply and are not listed).
	CHECK(in.out == "flow:    udp [2001:2::5]:5353 -> [2001:2::53]:123 in\n"
	                "verdict: drop (default in: no rule matched)\n"
	                "nearest rules:\n"
	                "  " + file + ":7 reject in tcp to any port 23: proto udp not in tcp\n");
	const auto telnet = capture([&](streams io) {
		return cmd_explain({file, "tcp 198.18.0.5:40000 -> 198.18.1.10:24 in"}, offline_options(), io);
	});
	// One field off first (the ssh rule's port, the telnet rule's port), in file order; then the UDP rule.
	CHECK(ends_with(telnet.out, "nearest rules:\n"
	                            "  " + file + ":5 allow log in tcp to 198.18.1.10 port 22 counter ssh: dport 24 not in 22\n"
	                            "  " + file + ":7 reject in tcp to any port 23: dport 24 not in 23\n"
	                            "  " + file + ":4 allow in udp to 198.18.1.10 port 53: proto tcp not in udp\n"));
	const auto out = capture([&](streams io) {
		return cmd_explain({file, "icmp 198.18.1.2 -> 198.18.0.5 out type echo-request"}, offline_options(), io);
	});
	CHECK(ends_with(out.out, "verdict: allow (default out: no rule matched)\nnearest rules:\n  " + file +
	                             ":6 drop out udp to any port 53: proto icmp not in udp\n"));
}

TEST_CASE("explain: a flow that does not parse is a usage error with a caret under its column", "[cli][offline]")
{
	temp_dir dir;
	const auto file = dir.write("gw.rules", gateway);
	const std::string flow = "tcp 198.18.0.5:40000 -> 198.18.1.10:22 inn";
	const auto r = capture([&](streams io) { return cmd_explain({file, flow}, offline_options(), io); });
	CHECK(r.status == exit_usage);
	CHECK(r.out.empty());
	CHECK(r.err == "flow:40: error: expected a direction (in or out), got 'inn'\n  " + flow + "\n  " + std::string(39, ' ') +
	                   "^\n");
	const auto bad_rules = capture([&](streams io) {
		return cmd_explain({dir.write("bad.rules", broken), "tcp 198.18.0.5:40000 -> 198.18.1.10:22 in"}, offline_options(), io);
	});
	CHECK(bad_rules.status == exit_failed);
	const auto one = capture([&](streams io) { return cmd_explain({file}, offline_options(), io); });
	CHECK(one.status == exit_usage);
}

TEST_CASE("explain scans --payload as the data path would", "[cli][offline]")
{
	temp_dir dir;
	const auto file = dir.write("p.rules", "default in drop\n"
	                                       "drop in tcp to 198.18.1.10 port 80 content \"/etc/passwd\"\n"
	                                       "allow in tcp to 198.18.1.10 port 80\n");
	const std::string flow = "tcp 198.18.0.5:40000 -> 198.18.1.10:80 in";

	const auto pending = capture([&](streams io) { return cmd_explain({file, flow}, offline_options(), io); });
	CHECK(pending.status == exit_ok);
	CHECK(pending.out.find("verdict: decided by the payload (see below)\n") != std::string::npos);
	CHECK(pending.out.find("payload: this flow's payload is inspected; meanwhile it follows " + file +
	                       ":3: allow in tcp to 198.18.1.10 port 80\n  candidate " + file + ":2: ") != std::string::npos);

	auto o = offline_options();
	o.payload = "GET /etc/passwd HTTP/1.1\\r\\n";
	const auto hit = capture([&](streams io) { return cmd_explain({file, flow}, o, io); });
	CHECK(hit.status == exit_ok);
	CHECK(hit.out.find("payload: matched " + file + ":2: ") != std::string::npos);
	CHECK(hit.out.find("verdict: drop (decided by the payload)\n  condition at " + file + ":2:36\n") != std::string::npos);

	o.payload = "GET /index.html HTTP/1.1\\x0d\\n";
	const auto miss = capture([&](streams io) { return cmd_explain({file, flow}, o, io); });
	CHECK(miss.status == exit_ok);
	CHECK(ends_with(miss.out, "payload: no candidate matched these 26 bytes; the payload-free verdict stands\n"));
}

TEST_CASE("classify prints a verdict per flow line, then the counts", "[cli][offline]")
{
	temp_dir dir;
	const auto file = dir.write("gw.rules", gateway);
	const auto flows = dir.write("f.flows", "tcp 198.18.0.5:40000 -> 198.18.1.10:22 in\n"
	                                        "# a comment line\n"
	                                        "\n"
	                                        "udp [2001:2::5]:5353 -> [2001:2::53]:53 out   # dns\n"
	                                        "tcp 198.18.0.5:40000 -> 198.18.1.10:23 in\n"
	                                        "tcp 198.18.0.5:40000 -> 198.18.1.10:24 in\n");
	for (const auto backend : {portcullis::classify::backend::ours, portcullis::classify::backend::linear}) {
		auto o = offline_options();
		o.backend = backend;
		const auto r = capture([&](streams io) { return cmd_classify({file, flows}, o, io); });
		CHECK(r.status == exit_ok);
		CHECK(r.err.empty());
		const auto lines = lines_of(r.out);
		REQUIRE(lines.size() == 5);
		// verdict padded to 6, deciding rule to 24, then the flow as parsed.
		const std::string by = file + ":5";
		CHECK(lines[0] == flows + ":1: allow  " + by + std::string(by.size() < 24 ? 24 - by.size() : 0, ' ') +
		                      " tcp 198.18.0.5:40000 -> 198.18.1.10:22 in");
		CHECK(starts_with(lines[1], flows + ":4: drop   " + file + ":6"));
		CHECK(ends_with(lines[1], " udp [2001:2::5]:5353 -> [2001:2::53]:53 out"));
		CHECK(starts_with(lines[2], flows + ":5: reject " + file + ":7"));
		CHECK(lines[3] == flows + ":6: drop   default in               tcp 198.18.0.5:40000 -> 198.18.1.10:24 in");
		CHECK(lines[4] == "4 flows: allow 1 drop 2 reject 1");
	}
}

TEST_CASE("classify shows what a flow with payload rules does first, and what its payload may decide", "[cli][offline]")
{
	temp_dir dir;
	const auto file = dir.write("p.rules", "drop tcp to any port 80 content \"evil\"\n"
	                                       "allow tcp\n");
	const auto flows = dir.write("f.flows", "tcp 198.18.0.5:40000 -> 198.18.1.10:80 in\n"
	                                        "tcp 198.18.0.5:40000 -> 198.18.1.10:81 in\n");
	const auto r = capture([&](streams io) { return cmd_classify({file, flows}, offline_options(), io); });
	CHECK(r.status == exit_ok);
	const auto lines = lines_of(r.out);
	REQUIRE(lines.size() == 3);
	// Port 80: the allow rule carries it until its payload says otherwise; explain says the same.
	CHECK(starts_with(lines[0], flows + ":1: allow  " + file + ":2"));
	CHECK(ends_with(lines[0], "tcp 198.18.0.5:40000 -> 198.18.1.10:80 in  (until its payload decides: drop by " + file + ":1)"));
	CHECK(starts_with(lines[1], flows + ":2: allow  " + file + ":2"));
	CHECK(ends_with(lines[1], "-> 198.18.1.10:81 in"));
	CHECK(lines[2] == "2 flows: allow 2 drop 0 reject 0");
	const auto e = capture([&](streams io) { return cmd_explain({file, "tcp 198.18.0.5:40000 -> 198.18.1.10:80 in"}, offline_options(), io); });
	CHECK(e.out.find("meanwhile it follows " + file + ":2: allow tcp\n") != std::string::npos);
}

TEST_CASE("classify reports every bad flow line as file:line:column and exits 1", "[cli][offline]")
{
	temp_dir dir;
	const auto file = dir.write("gw.rules", gateway);
	const auto flows = dir.write("bad.flows", "tcp 1.2.3.4:5 -> 6.7.8.9:10 in\n"
	                                          "tcp 1.2.3.4:5 -> 6.7.8.9:10 sideways\n"
	                                          "\n"
	                                          "tcp 1.2.3.4:5 => 6.7.8.9:10 in\n");
	const auto r = capture([&](streams io) { return cmd_classify({file, flows}, offline_options(), io); });
	CHECK(r.status == exit_failed);
	CHECK(r.out.empty());
	const auto lines = lines_of(r.err);
	REQUIRE(lines.size() == 2);
	CHECK(starts_with(lines[0], flows + ":2:29: error: "));
	CHECK(starts_with(lines[1], flows + ":4:"));

	const auto missing = capture([&](streams io) { return cmd_classify({file, flows + ".gone"}, offline_options(), io); });
	CHECK(missing.status == exit_failed);
	CHECK(missing.err == flows + ".gone: error: cannot open the flows file\n");
	const auto bad_rules = capture([&](streams io) { return cmd_classify({dir.write("b.rules", broken), flows}, offline_options(), io); });
	CHECK(bad_rules.status == exit_failed);
	const auto one = capture([&](streams io) { return cmd_classify({file}, offline_options(), io); });
	CHECK(one.status == exit_usage);
	CHECK(one.err == "portcullis: classify takes FILE and FLOWS\n");
}

TEST_CASE("publish refuses before etcd: bad URL, rule errors, includes; no etcd is exit 3", "[cli][publish]")
{
	temp_dir dir;
	const auto file = dir.write("gw.rules", gateway);
	const auto url = capture([&](streams io) { return cmd_publish({file, "http://x/y"}, offline_options(), io); });
	CHECK(url.status == exit_usage);
	CHECK(url.err == "portcullis: not an etcd:// URL: 'http://x/y'\n");
	CHECK(url.out.empty());

	const auto bad = dir.write("bad.rules", broken);
	const auto errors = capture([&](streams io) { return cmd_publish({bad, "etcd://127.0.0.1:1/k"}, offline_options(), io); });
	CHECK(errors.status == exit_failed);
	CHECK(ends_with(errors.err, bad + ": 2 errors\n"));

	const auto top = dir.write("top.rules", "include \"" + file + "\"\n");
	const auto included = capture([&](streams io) { return cmd_publish({top, "etcd://127.0.0.1:1/k"}, offline_options(), io); });
	CHECK(included.status == exit_failed);
	CHECK(starts_with(included.out, top + ": OK, "));  // the check ran and passed first
	CHECK(included.err == top + ": error: includes " + file +
	                          "; a rule set in etcd is one self-contained text (inline the included rules)\n");

	// Port 1 on loopback: nobody listens, the connection is refused at once.
	auto o = offline_options();
	o.timeout = 2;
	const auto down = capture([&](streams io) { return cmd_publish({file, "etcd://127.0.0.1:1/k"}, o, io); });
	CHECK(down.status == exit_unreachable);
	CHECK(starts_with(down.out, file + ": OK, "));
	CHECK(starts_with(down.err, "portcullis: etcd://127.0.0.1:1/k: connect to 127.0.0.1:1: "));

	const auto usage = capture([&](streams io) { return cmd_publish({file}, offline_options(), io); });
	CHECK(usage.status == exit_usage);
}
