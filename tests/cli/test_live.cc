// The live commands against canned daemon answers shaped as lib/control/server.cc sends them: the
// requests they build, the tables and lines they render, --json passthrough, and the exit codes of a
// refusal (1), a usage error (2, nothing sent) and a daemon that cannot be reached (3).
#include <catch2/catch.hpp>

#include <filesystem>
#include <string>

#include "cli/render.h"
#include "helpers.h"

using namespace portcullis::cli;
using namespace portcullis::cli::test;
using json = nlohmann::json;
using portcullis::control::client_status;

namespace {

json ok(json answer)
{
	answer["v"] = 1;
	answer["ok"] = true;
	return answer;
}

const json config_source = {{"origin", "config"},
                            {"file", "/etc/portcullis/gateway.rules"},
                            {"since_unix", 1700000000},
                            {"configured", "/etc/portcullis/gateway.rules"},
                            {"revision", 0}};

json rule_row(unsigned index, unsigned line, const char* text, uint64_t packets, uint64_t bytes, json last_hit)
{
	return {{"index", index},     {"file", "/etc/portcullis/gateway.rules"},
	        {"line", line},       {"column", 1},
	        {"text", text},       {"action", "allow"},
	        {"log", false},       {"counter", ""},
	        {"directions", {"in"}}, {"packets", packets},
	        {"bytes", bytes},     {"last_hit_seconds_ago", last_hit}};
}

json rules_answer()
{
	return ok({{"generation", 2},
	           {"default_in", "drop"},
	           {"default_out", "allow"},
	           {"files", {"/etc/portcullis/gateway.rules"}},
	           {"digest", "5f1c"},
	           {"source", config_source},
	           {"rules",
	            {rule_row(0, 3, "allow in tcp to 198.18.1.10 port 22", 12345678901, 98765432109876, 125.7),
	             rule_row(1, 4, "drop out udp to any port 53", 0, 0, nullptr),
	             rule_row(2, 5, "allow in icmp", 1, 64, 0.42)}}});
}

json flow_row(const char* proto, int family, const char* src, int sport, const char* dst, int dport, const char* state,
              double age, double idle)
{
	return {{"worker", 0},       {"proto", proto},    {"family", family},          {"src", src},
	        {"sport", sport},    {"dst", dst},        {"dport", dport},            {"direction", "in"},
	        {"state", state},    {"age_s", age},      {"idle_s", idle},            {"packets", {10, 12}},
	        {"bytes", {1000, 20000}}, {"rule", 0},    {"rule_generation", 2}};
}

json stats_answer()
{
	json traffic;
	for (const char* d : {"in", "out"})
		for (const char* v : {"forwarded", "dropped", "rejected"})
			traffic[d][v] = {{"packets", 0}, {"bytes", 0}};
	traffic["in"]["forwarded"] = {{"packets", 5}, {"bytes", 500}};
	return ok({{"ports", {{{"port", 0}, {"name", "net_ring0"}, {"rx_packets", 100}, {"rx_bytes", 6400}, {"tx_packets", 90}, {"tx_bytes", 5760}}}},
	           {"traffic", traffic},
	           {"parsed", {{"packets", 100}, {"by_kind", {{"ipv4", 100}}}}},
	           {"drops", {{"rule", 2}, {"no_tx", 0}, {"flow_table_full", 7}}},
	           {"malformed", {{"ipv4_bad_ihl", 0}, {"truncated", 0}}},
	           {"flows",
	            {{"live", 4}, {"capacity", 65536}, {"opened", 10}, {"inserted", 10}, {"evicted_embryonic", 1},
	             {"refused_full", 2}, {"refused_buckets", 3}, {"flushed", 4}, {"expired", 5},
	             {"expired_by_state", {{"tcp_syn_sent", 5}, {"udp_new", 0}}}, {"reply_packets", 0}, {"related_icmp", 0},
	             {"rejects_sent", 0}}},
	           {"rules",
	            {{"generation", 2}, {"count", 3}, {"swaps_ok", 2}, {"swaps_failed", 1}, {"last_swap_unix", 1},
	             {"last_compile_ms", 3.14159}, {"last_quiesce_us", 8.88}, {"digest", "5f1c"}, {"source", config_source}}},
	           {"workers",
	            {{{"worker", 0}, {"busy_ratio", 0.1234}, {"busy_ratio_total", 0.5}, {"polls", 1}, {"idle_polls", 1}, {"flows", 3}}}},
	           {"control", {{"accepted", 1}}}});
}

// Runs a live command against d with options o.
template <typename Command>
run_result live(Command command, const arguments& args, const options& o, canned_daemon& d)
{
	const auto call = d.call();
	return capture([&](streams io) { return command(args, o, io, call); });
}

} // namespace

TEST_CASE("durations are short enough for a column", "[cli][render]")
{
	CHECK(duration(0) == "0.0s");
	CHECK(duration(0.42) == "0.4s");
	CHECK(duration(9.94) == "9.9s");
	CHECK(duration(12.9) == "12s");
	CHECK(duration(59.99) == "59s");
	CHECK(duration(60) == "1m00s");
	CHECK(duration(125.7) == "2m05s");
	CHECK(duration(3599) == "59m59s");
	CHECK(duration(3600) == "1h00m");
	CHECK(duration(7800) == "2h10m");
	CHECK(duration(86400) == "1d00h");
	CHECK(duration(300000) == "3d11h");
}

TEST_CASE("fixed-point numbers, endpoints and source lines", "[cli][render]")
{
	CHECK(fixed(3.14159, 2) == "3.14");
	CHECK(fixed(8.88, 1) == "8.9");
	CHECK(fixed(0, 2) == "0.00");

	CHECK(endpoint(flow_row("tcp", 4, "198.18.0.5", 40000, "198.18.1.10", 22, "", 0, 0), "src", "sport") == "198.18.0.5:40000");
	CHECK(endpoint(flow_row("udp", 6, "2001:2::5", 5353, "2001:2::53", 53, "", 0, 0), "dst", "dport") == "[2001:2::53]:53");
	CHECK(endpoint(flow_row("icmp", 4, "198.18.0.5", 8, "198.18.1.2", 0, "", 0, 0), "src", "sport") == "198.18.0.5");

	CHECK(source_line(config_source) ==
	      "source: the configured rules file /etc/portcullis/gateway.rules (loaded at start-up or by SIGHUP)");
	CHECK(source_line({{"origin", "push"}, {"file", "/tmp/x.rules"}, {"configured", "/etc/g.rules"}}) ==
	      "source: pushed /tmp/x.rules (runtime only: a restart or SIGHUP loads the configured /etc/g.rules)");
	CHECK(source_line({{"origin", "etcd"}, {"file", "etcd://h:2379/k@5"}, {"configured", "/etc/g.rules"}}) ==
	      "source: etcd://h:2379/k@5 (the etcd key this portcullisd follows; a restart starts on /etc/g.rules and "
	      "takes the key again)");
	CHECK(source_line(json::object()) == "source: not reported by this portcullisd");
}

TEST_CASE("rules: one request, a table with counters and time since the last hit", "[cli][live]")
{
	auto d = canned_daemon::answering(rules_answer());
	const auto r = live(cmd_rules, {}, options{}, d);
	CHECK(r.status == exit_ok);
	CHECK(r.err.empty());
	REQUIRE(d.requests.size() == 1);
	CHECK(d.requests[0] == json{{"cmd", "rules"}});
	CHECK(r.out ==
	      "generation 2, 3 rules, default in drop, default out allow, digest 5f1c\n"
	      "source: the configured rules file /etc/portcullis/gateway.rules (loaded at start-up or by SIGHUP)\n"
	      "    #      PACKETS          BYTES  LAST HIT  WHERE: RULE\n"
	      "    0  12345678901 98765432109876 2m05s ago  /etc/portcullis/gateway.rules:3: allow in tcp to 198.18.1.10 port 22\n"
	      "    1            0              0     never  /etc/portcullis/gateway.rules:4: drop out udp to any port 53\n"
	      "    2            1             64  0.4s ago  /etc/portcullis/gateway.rules:5: allow in icmp\n");
}

TEST_CASE("--json prints the daemon's answer as one line and nothing else", "[cli][live]")
{
	options o;
	o.json = true;
	const json answer = rules_answer();
	auto d = canned_daemon::answering(answer);
	const auto r = live(cmd_rules, {}, o, d);
	CHECK(r.status == exit_ok);
	CHECK(r.out == answer.dump() + "\n");
	CHECK(r.err.empty());

	auto s = canned_daemon::answering(stats_answer());
	CHECK(live(cmd_stats, {}, o, s).out == stats_answer().dump() + "\n");
}

TEST_CASE("flows: filter words become the request's filter; rows and a count line", "[cli][live]")
{
	json answer = ok({{"live", 40},
	                  {"matched", 2},
	                  {"listed", 2},
	                  {"truncated", true},
	                  {"flows",
	                   {flow_row("tcp", 4, "198.18.0.5", 40000, "198.18.1.10", 22, "tcp_established", 125.2, 0.3),
	                    flow_row("udp", 6, "2001:2::5", 5353, "2001:2::53", 53, "udp_established", 45, 12.9)}}});
	auto d = canned_daemon::answering(answer);
	options o;
	o.limit = 5;
	const auto r = live(cmd_flows, {"udp", "host", "2001:2::/64", "port", "53", "state", "established", "proto", "17"}, o, d);
	CHECK(r.status == exit_ok);
	REQUIRE(d.requests.size() == 1);
	CHECK(d.requests[0] == json{{"cmd", "flows"},
	                            {"filter", {{"proto", "17"}, {"address", "2001:2::/64"}, {"port", 53}, {"state", "established"}}},
	                            {"limit", 5}});
	const auto lines = lines_of(r.out);
	REQUIRE(lines.size() == 3);
	CHECK(lines[0] == "tcp   198.18.0.5:40000 -> 198.18.1.10:22            in  tcp_established  age 2m05s   idle 0.3s    "
	                  "pkts 10/12 bytes 1000/20000");
	CHECK(lines[1] == "udp   [2001:2::5]:5353 -> [2001:2::53]:53           in  udp_established  age 45s     idle 12s     "
	                  "pkts 10/12 bytes 1000/20000");
	CHECK(lines[2] == "2 listed, 2 matching, 40 live (raise --limit to see more)");

	answer["truncated"] = false;
	answer["flows"] = json::array();
	answer["listed"] = 0;
	auto none = canned_daemon::answering(answer);
	const auto empty = live(cmd_flows, {}, options{}, none);
	CHECK(empty.out == "0 listed, 2 matching, 40 live\n");
	CHECK(none.requests[0] == json{{"cmd", "flows"}, {"filter", json::object()}});  // no limit: the daemon's default
}

TEST_CASE("flows: a bad filter is a usage error and nothing is sent", "[cli][live]")
{
	auto d = canned_daemon::answering(ok({}));
	const auto port = live(cmd_flows, {"port", "99999"}, options{}, d);
	CHECK(port.status == exit_usage);
	CHECK(port.err == "portcullis: flows: port must be 0-65535, not '99999'\n");
	CHECK(live(cmd_flows, {"port", "x2"}, options{}, d).status == exit_usage);
	const auto missing = live(cmd_flows, {"tcp", "host"}, options{}, d);
	CHECK(missing.status == exit_usage);
	CHECK(missing.err == "portcullis: flows: 'host' needs a value\n");
	const auto word = live(cmd_flows, {"sideways"}, options{}, d);
	CHECK(word.status == exit_usage);
	CHECK(word.err.find("unexpected 'sideways'") != std::string::npos);
	CHECK(d.requests.empty());
}

TEST_CASE("stats: ports, traffic, counters above zero only, flows, rules, workers", "[cli][live]")
{
	auto d = canned_daemon::answering(stats_answer());
	const auto r = live(cmd_stats, {}, options{}, d);
	CHECK(r.status == exit_ok);
	CHECK(d.requests.at(0) == json{{"cmd", "stats"}});
	CHECK(r.out ==
	      "ports:\n"
	      "  net_ring0        rx          100 pkts           6400 bytes   tx           90 pkts           5760 bytes\n"
	      "traffic:\n"
	      "  in  forwarded            5 pkts            500 bytes\n"
	      "  in  dropped              0 pkts              0 bytes\n"
	      "  in  rejected             0 pkts              0 bytes\n"
	      "  out forwarded            0 pkts              0 bytes\n"
	      "  out dropped              0 pkts              0 bytes\n"
	      "  out rejected             0 pkts              0 bytes\n"
	      "drops by reason:\n"
	      "  flow_table_full                             7\n"
	      "  rule                                        2\n"
	      "malformed by parse reason: none\n"
	      "flows: 4 live of 65536, 10 opened, 1 evicted, 5 expired, 4 flushed, 5 refused\n"
	      "expired by state:\n"
	      "  tcp_syn_sent                                5\n"
	      "rules: generation 2, 3 rules, 2 swaps (1 refused), last compile 3.14 ms, last quiesce 8.9 us, digest 5f1c\n"
	      "  source: the configured rules file /etc/portcullis/gateway.rules (loaded at start-up or by SIGHUP)\n"
	      "workers:\n"
	      "  0   busy  12.3% (last second),  50.0% (since start), 3 flows\n");

	json watched = stats_answer();
	watched["rules_watch"] = {{"url", "etcd://h:2379/k"}, {"connected", true}, {"state", "following"}, {"revision", 7}};
	auto w = canned_daemon::answering(watched);
	CHECK(live(cmd_stats, {}, options{}, w).out.find("rules.watch: etcd://h:2379/k (connected), newest revision seen 7\n"
	                                                 "  following\nworkers:\n") != std::string::npos);
	CHECK(live(cmd_stats, {"now"}, options{}, w).status == exit_usage);

	json flooded = stats_answer();
	flooded["syncookies"] = {{"mode", "adaptive"}, {"active_workers", 1}, {"sent", 50000}, {"accepted", 12},
	                         {"failed", 3}, {"handshakes", 11}};
	auto f = canned_daemon::answering(flooded);
	CHECK(live(cmd_stats, {}, options{}, f).out.find("  tcp_syn_sent                                5\n"
	                                                 "syncookies (adaptive): 1 worker(s) answering now, 50000 SYN-ACKs "
	                                                 "sent, 12 accepted, 3 failed, 11 server handshakes\nrules:") !=
	      std::string::npos);
}

TEST_CASE("push validates offline, sends the absolute path, prints the new generation", "[cli][live]")
{
	temp_dir dir;
	const auto file = dir.write("gw.rules", "default in drop\nallow in tcp to 198.18.1.10 port 22\n");
	auto d = canned_daemon::answering(ok({{"generation", 3},
	                                      {"previous_generation", 2},
	                                      {"rules", 1},
	                                      {"compile_ms", 1.23456},
	                                      {"quiesce_us", 12.25},
	                                      {"digest", "abc"},
	                                      {"source", {{"origin", "push"}, {"file", file}, {"configured", "/etc/g.rules"}}}}));
	// A relative path with a detour: the daemon gets it absolute and normalised.
	std::filesystem::create_directory(dir.path() / "sub");
	const auto cwd = std::filesystem::current_path();
	std::filesystem::current_path(dir.path());
	const auto r = live(cmd_push, {"./sub/../gw.rules"}, options{}, d);
	std::filesystem::current_path(cwd);
	CHECK(r.status == exit_ok);
	REQUIRE(d.requests.size() == 1);
	CHECK(d.requests[0] == json{{"cmd", "push"}, {"path", file}});
	CHECK(r.out == "pushed " + file + ": generation 3 (was 2), 1 rules, digest abc, compiled in 1.23 ms, quiesced in 12.2 us\n"
	               "source: pushed " + file + " (runtime only: a restart or SIGHUP loads the configured /etc/g.rules)\n");
}

TEST_CASE("push: a rule file with errors is never sent", "[cli][live]")
{
	temp_dir dir;
	const auto file = dir.write("bad.rules", "default in drop\nallow in tcp to 198.18.1.10 port 99999\n");
	auto d = canned_daemon::answering(ok({}));
	const auto r = live(cmd_push, {file}, options{}, d);
	CHECK(r.status == exit_failed);
	CHECK(r.out.empty());
	CHECK(r.err == file + ":2:34: error: port 99999 out of range (expected 0-65535)\n" + file +
	                   ": 1 error; not sent to the daemon\n");

	options o;
	o.json = true;
	const auto j = live(cmd_push, {file}, o, d);
	CHECK(j.status == exit_failed);
	CHECK(j.err.empty());
	const json printed = json::parse(j.out);
	CHECK(printed["ok"] == false);
	CHECK(printed["code"] == "rules");
	CHECK(printed["errors"][0] == json{{"file", file}, {"line", 2}, {"column", 34}, {"message", "port 99999 out of range (expected 0-65535)"}});
	CHECK(d.requests.empty());
	CHECK(live(cmd_push, {}, options{}, d).status == exit_usage);
}

TEST_CASE("a refusal by the daemon is exit 1: its errors as file:line:column, or its answer with --json", "[cli][live]")
{
	temp_dir dir;
	const auto file = dir.write("gw.rules", "default in drop\n");
	const json refusal = {{"v", 1},
	                      {"ok", false},
	                      {"code", "rules"},
	                      {"error", "1 error in the rule set; the running rules (generation 2) stay"},
	                      {"errors", {{{"file", "/etc/g.rules"}, {"line", 3}, {"column", 34}, {"message", "port 99999 out of range"}}}}};
	auto d = canned_daemon::answering(refusal);
	const auto r = live(cmd_push, {file}, options{}, d);
	CHECK(r.status == exit_failed);
	CHECK(r.out.empty());
	CHECK(r.err == "/etc/g.rules:3:34: error: port 99999 out of range\n"
	               "portcullis: push failed: 1 error in the rule set; the running rules (generation 2) stay\n");

	options o;
	o.json = true;
	const auto j = live(cmd_push, {file}, o, d);
	CHECK(j.status == exit_failed);
	CHECK(j.out == refusal.dump() + "\n");
	CHECK(j.err.empty());

	auto bare = canned_daemon::answering({{"v", 1}, {"ok", false}, {"code", "failed"}});
	CHECK(live(cmd_flush, {"flows"}, options{}, bare).err == "portcullis: flush_flows failed: no reason given\n");
}

TEST_CASE("a daemon that cannot be reached is exit 3, with a JSON line under --json", "[cli][live]")
{
	const std::pair<client_status, const char*> cases[] = {{client_status::unreachable, "unreachable"},
	                                                       {client_status::permission_denied, "permission_denied"},
	                                                       {client_status::protocol_error, "protocol_error"}};
	for (const auto& [status, code] : cases) {
		auto d = canned_daemon::failing(status, "cannot reach portcullisd at /x.sock");
		const auto r = live(cmd_stats, {}, options{}, d);
		CHECK(r.status == exit_unreachable);
		CHECK(r.out.empty());
		CHECK(r.err == "portcullis: cannot reach portcullisd at /x.sock\n");

		options o;
		o.json = true;
		const auto j = live(cmd_rules, {}, o, d);
		CHECK(j.status == exit_unreachable);
		CHECK(j.out == json{{"ok", false}, {"code", code}, {"error", "cannot reach portcullisd at /x.sock"}}.dump() + "\n");
		CHECK(j.err == "portcullis: cannot reach portcullisd at /x.sock\n");
	}
}

TEST_CASE("flush flows", "[cli][live]")
{
	auto d = canned_daemon::answering(ok({{"flushed", 17}}));
	const auto r = live(cmd_flush, {"flows"}, options{}, d);
	CHECK(r.status == exit_ok);
	CHECK(r.out == "flushed 17 flows\n");
	CHECK(d.requests.at(0) == json{{"cmd", "flush_flows"}});
	const auto usage = live(cmd_flush, {"rules"}, options{}, d);
	CHECK(usage.status == exit_usage);
	CHECK(usage.err == "portcullis: usage: portcullis flush flows\n");
	CHECK(d.requests.size() == 1);
}

TEST_CASE("live explain: the deciding rule, or the default; -v adds the skipped rules", "[cli][live]")
{
	const std::string flow = "tcp 198.18.0.5:40000 -> 198.18.1.10:22 in";
	auto d = canned_daemon::answering(ok({{"flow", flow + " flags S"},
	                                      {"direction", "in"},
	                                      {"generation", 2},
	                                      {"verdict", "allow"},
	                                      {"default", false},
	                                      {"rule", {{"file", "/etc/g.rules"}, {"line", 3}, {"text", "allow log in tcp port 22"}, {"log", true}, {"counter", "ssh"}}},
	                                      {"reasons", {"proto tcp in tcp", "dport 22 in 22"}},
	                                      {"skipped", {{{"file", "/etc/g.rules"}, {"line", 2}, {"text", "drop in udp"}, {"reason", "proto tcp not in udp"}}}}}));
	options o;
	o.verbose = true;
	const auto call = d.call();
	const auto r = capture([&](streams io) { return cmd_explain_live(flow, o, io, call); });
	CHECK(r.status == exit_ok);
	CHECK(d.requests.at(0) == json{{"cmd", "explain"}, {"flow", flow}});
	CHECK(r.out == "flow:    " + flow + " flags S\n"
	               "skipped: /etc/g.rules:2: drop in udp\n"
	               "         (proto tcp not in udp)\n"
	               "verdict: allow (logged)\n"
	               "rule:    /etc/g.rules:3: allow log in tcp port 22\n"
	               "counter: ssh\n"
	               "because:\n"
	               "  proto tcp in tcp\n"
	               "  dport 22 in 22\n"
	               "(live rules, generation 2)\n");

	std::ostringstream out;
	render_explain(ok({{"flow", "udp 1.2.3.4:5 -> 6.7.8.9:10 out"}, {"direction", "out"}, {"generation", 9}, {"verdict", "drop"},
	                   {"default", true}, {"rule", nullptr}, {"skipped", json::array()}}),
	               false, out);
	CHECK(out.str() == "flow:    udp 1.2.3.4:5 -> 6.7.8.9:10 out\n"
	                   "verdict: drop (default out: no rule matched)\n"
	                   "(live rules, generation 9)\n");

	// A flow that does not parse never reaches the daemon.
	const auto bad = capture([&](streams io) { return cmd_explain_live("tcp 1.2.3.4:5 -> 6.7.8.9:10 up", o, io, call); });
	CHECK(bad.status == exit_usage);
	CHECK(bad.err.rfind("flow:29: error: ", 0) == 0);
	CHECK(d.requests.size() == 1);
}
