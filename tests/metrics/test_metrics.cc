// The exporter end to end: known traffic through a real worker, then the exact counter values in the
// text page, the same page over HTTP, promtool's verdict on it, and a real Prometheus server scraping
// it. promtool and prometheus are optional: their tests say so and skip when the binary is missing.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

#include "harness.h"
#include "metrics/metrics.h"

extern char** environ;

using namespace portcullis;
using namespace portcullis::test;
namespace fs = std::filesystem;

namespace {

// Line numbers matter: the rule labels carry them (ssh is on line 4, blocked on 5, telnet on 6).
const char* rules_text = R"(default in drop
default out allow
set server = { 198.18.1.10 }
allow in tcp to $server port ssh counter ssh
drop in udp to any port 9999 counter blocked
reject in tcp to any port telnet counter telnet
)";

constexpr uint32_t client = 0xC6120005;   // 198.18.0.5, outside
constexpr uint32_t server = 0xC612010A;   // 198.18.1.10
constexpr uint32_t station = 0xC6120114;  // 198.18.1.20
constexpr uint32_t remote = 0xC6120035;   // 198.18.0.53
constexpr uint8_t syn = 0x02;

// What send_known_traffic() sends.
constexpr int allowed_in = 5, default_dropped = 3, rule_dropped = 2, rejected = 1, malformed = 2, allowed_out = 1;
constexpr int dropped_in = default_dropped + rule_dropped + malformed;
constexpr int frame_bytes = 60;  // every well-formed test frame is padded to the minimum
constexpr int total_packets = allowed_in + dropped_in + rejected + allowed_out;

void send_known_traffic(firewall& fw)
{
	std::vector<bytes> in, out;
	for (int i = 0; i < allowed_in; ++i)
		in.push_back(tcp4(client, uint16_t(40000 + i), server, 22, syn));
	for (int i = 0; i < default_dropped; ++i)
		in.push_back(udp4(client, uint16_t(5000 + i), station, 5000));
	for (int i = 0; i < rule_dropped; ++i)
		in.push_back(udp4(client, uint16_t(6000 + i), station, 9999));
	for (int i = 0; i < rejected; ++i)
		in.push_back(tcp4(client, uint16_t(7000 + i), station, 23, syn));
	in.push_back(bytes(10, 0xAB));  // eth_truncated
	{
		packet::test::ipv4_spec ip;
		ip.ihl = 4;
		in.push_back(packet::test::eth(0x0800, packet::test::ipv4(ip, packet::test::filler(20)), {}, 60));  // ipv4_bad_ihl
	}
	for (int i = 0; i < allowed_out; ++i)
		out.push_back(tcp4(station, uint16_t(50000 + i), remote, 80, syn));
	fw.send(outside, in);
	fw.send(inside, out);
}

double value(const std::map<std::string, double>& s, const std::string& series)
{
	auto it = s.find(series);
	INFO("series " << series);
	REQUIRE(it != s.end());
	return it->second;
}

std::string packets(const char* direction, const char* verdict)
{
	return std::string("portcullis_packets_total{direction=\"") + direction + "\",verdict=\"" + verdict + "\"}";
}

std::string url_encode(const std::string& s)
{
	static const char* hex = "0123456789ABCDEF";
	std::string out;
	for (unsigned char c : s) {
		if (std::isalnum(c) || c == '_' || c == '-' || c == '.' || c == '~') {
			out += char(c);
		} else {
			out += '%';
			out += hex[c >> 4];
			out += hex[c & 15];
		}
	}
	return out;
}

// The first sample's value in a Prometheus /api/v1/query answer ("value":[<time>,"<value>"]).
std::optional<double> first_value(const std::string& json)
{
	const size_t at = json.find("\"value\":[");
	if (at == std::string::npos)
		return std::nullopt;
	const size_t open = json.find(",\"", at);
	if (open == std::string::npos)
		return std::nullopt;
	return std::strtod(json.c_str() + open + 2, nullptr);
}

// A temporary directory removed with everything in it.
struct temp_dir {
	fs::path path;
	temp_dir()
	{
		char t[] = "/tmp/portcullis-metrics-XXXXXX";
		if (!mkdtemp(t))
			throw std::runtime_error("mkdtemp failed");
		path = t;
	}
	~temp_dir()
	{
		std::error_code ec;
		fs::remove_all(path, ec);
	}
};

// A child process killed (TERM, then KILL after 5 s) and reaped when the guard goes.
struct child {
	pid_t pid = -1;
	~child()
	{
		if (pid <= 0)
			return;
		kill(pid, SIGTERM);
		int status;
		for (int i = 0; i < 100; ++i) {
			if (waitpid(pid, &status, WNOHANG) == pid)
				return;
			std::this_thread::sleep_for(std::chrono::milliseconds(50));
		}
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	bool running() const
	{
		int status;
		return pid > 0 && waitpid(pid, &status, WNOHANG) == 0;
	}
};

} // namespace

TEST_CASE("render() reports the exact counts of the traffic sent")
{
	firewall fw(rules_text);
	send_known_traffic(fw);
	metrics::exporter_options opt;
	opt.port_names = {{fw.port(outside), "outside"}, {fw.port(inside), "inside"}};
	const std::string page = metrics::render(fw.runtime(), opt);
	const auto s = samples(page);
	INFO(page);

	CHECK(value(s, packets("in", "allow")) == allowed_in);
	CHECK(value(s, packets("in", "drop")) == dropped_in);
	CHECK(value(s, packets("in", "reject")) == rejected);
	CHECK(value(s, packets("out", "allow")) == allowed_out);
	CHECK(value(s, packets("out", "drop")) == 0);
	CHECK(value(s, "portcullis_bytes_total{direction=\"in\",verdict=\"allow\"}") == allowed_in * frame_bytes);

	CHECK(value(s, "portcullis_port_packets_total{port=\"outside\",direction=\"rx\"}") ==
	      allowed_in + dropped_in + rejected);
	CHECK(value(s, "portcullis_port_packets_total{port=\"inside\",direction=\"rx\"}") == allowed_out);
	CHECK(value(s, "portcullis_port_packets_total{port=\"inside\",direction=\"tx\"}") == allowed_in);
	// The allowed outbound SYN and the RST answering the telnet SYN.
	CHECK(value(s, "portcullis_port_packets_total{port=\"outside\",direction=\"tx\"}") == allowed_out + rejected);

	CHECK(value(s, "portcullis_drops_total{reason=\"default_drop\"}") == default_dropped);
	CHECK(value(s, "portcullis_drops_total{reason=\"rule_drop\"}") == rule_dropped);
	CHECK(value(s, "portcullis_drops_total{reason=\"rule_reject\"}") == rejected);
	CHECK(value(s, "portcullis_drops_total{reason=\"malformed\"}") == malformed);
	CHECK(value(s, "portcullis_malformed_packets_total{reason=\"eth_truncated\"}") == 1);
	CHECK(value(s, "portcullis_malformed_packets_total{reason=\"ipv4_bad_ihl\"}") == 1);
	// Every reason is present, zeros included, so dashboards and rate() never see a series appear.
	for (size_t r = 0; r < dataplane::drop_reason_count; ++r)
		CHECK(s.count("portcullis_drops_total{reason=\"" + std::string(dataplane::to_string(dataplane::drop_reason(r))) + "\"}"));
	for (size_t r = 1; r < packet::drop_reason_count; ++r)
		CHECK(s.count("portcullis_malformed_packets_total{reason=\"" +
		              std::string(packet::to_string(packet::drop_reason(r))) + "\"}"));
	CHECK_FALSE(s.count("portcullis_malformed_packets_total{reason=\"none\"}"));
	CHECK(value(s, "portcullis_drops_total{reason=\"tx_full\"}") == 0);

	CHECK(value(s, "portcullis_rule_packets_total{rule=\"ssh\",file=\"test.rules\",line=\"4\"}") == allowed_in);
	CHECK(value(s, "portcullis_rule_bytes_total{rule=\"ssh\",file=\"test.rules\",line=\"4\"}") == allowed_in * frame_bytes);
	CHECK(value(s, "portcullis_rule_packets_total{rule=\"blocked\",file=\"test.rules\",line=\"5\"}") == rule_dropped);
	CHECK(value(s, "portcullis_rule_packets_total{rule=\"telnet\",file=\"test.rules\",line=\"6\"}") == rejected);
	const double now = double(std::chrono::duration_cast<std::chrono::seconds>(
		std::chrono::system_clock::now().time_since_epoch()).count());
	const double last_hit = value(s, "portcullis_rule_last_hit_timestamp_seconds{rule=\"ssh\",file=\"test.rules\",line=\"4\"}");
	CHECK(std::abs(last_hit - now) < 60);

	CHECK(value(s, "portcullis_flows_opened_total") == allowed_in + allowed_out);
	CHECK(value(s, "portcullis_flows") == allowed_in + allowed_out);
	CHECK(value(s, "portcullis_flow_inserts_total") == allowed_in + allowed_out);
	CHECK(value(s, "portcullis_flow_capacity") == 1024);
	CHECK(value(s, "portcullis_flow_evictions_total{kind=\"embryonic\"}") == 0);
	CHECK(value(s, "portcullis_flow_refused_total{reason=\"full\"}") == 0);
	CHECK(value(s, "portcullis_flow_expirations_total{state=\"tcp_syn_sent\"}") == 0);
	CHECK(value(s, "portcullis_rejects_sent_total") == rejected);
	CHECK(value(s, "portcullis_reply_packets_total") == 0);

	CHECK(value(s, "portcullis_ruleset_generation") == 1);
	CHECK(value(s, "portcullis_ruleset_swaps_total{result=\"ok\"}") == 0);
	CHECK(value(s, "portcullis_ruleset_last_swap_timestamp_seconds") > now - 60);
	CHECK(value(s, "portcullis_worker_busy_seconds_total{worker=\"0\"}") > 0);
	const double ratio = value(s, "portcullis_worker_busy_ratio{worker=\"0\"}");
	CHECK(ratio > 0);
	CHECK(ratio <= 1);
	CHECK(value(s, "portcullis_build_info{version=\"0.1.0\"}") == 1);
	CHECK(page.find("# TYPE portcullis_packets_total counter") != std::string::npos);
	CHECK(page.find("# TYPE portcullis_flows gauge") != std::string::npos);
}

TEST_CASE("rule counters and swap statistics follow a hot swap")
{
	firewall fw(rules_text);
	send_known_traffic(fw);
	// The same rules one line lower: ssh keeps its name, so its count carries over.
	auto r = fw.runtime().push_text(std::string("\n") + rules_text, "test.rules");
	REQUIRE(r.ok);
	r = fw.runtime().push_text("allow in tcp to any port nonsense-port\n", "broken.rules");
	REQUIRE_FALSE(r.ok);
	fw.send(outside, {tcp4(client, 41000, server, 22, syn)});
	fw.send(inside, {tcp4(server, 22, client, 41000, 0x12, 900, 101)});  // its SYN-ACK: counted for the rule too

	const auto s = samples(metrics::render(fw.runtime()));
	CHECK(value(s, "portcullis_ruleset_generation") == 2);
	CHECK(value(s, "portcullis_ruleset_swaps_total{result=\"ok\"}") == 1);
	CHECK(value(s, "portcullis_ruleset_swaps_total{result=\"failed\"}") == 1);
	CHECK(value(s, "portcullis_rule_packets_total{rule=\"ssh\",file=\"test.rules\",line=\"5\"}") == allowed_in + 2);
	CHECK(value(s, "portcullis_reply_packets_total") == 1);
	CHECK_FALSE(s.count("portcullis_rule_packets_total{rule=\"ssh\",file=\"test.rules\",line=\"4\"}"));
	CHECK(value(s, "portcullis_ruleset_swap_quiesce_seconds") >= 0);
	CHECK(value(s, "portcullis_ruleset_compile_seconds") >= 0);
	// Without names the port label is the DPDK port id.
	CHECK(value(s, "portcullis_port_packets_total{port=\"" + std::to_string(fw.port(inside)) + "\",direction=\"tx\"}") ==
	      allowed_in + 1);
}

TEST_CASE("file sets: entries, ranges, memory, hits and runtime changes; a push starts the set's counters again")
{
	temp_dir dir;
	const fs::path feed = dir.path / "feed.txt", reload = dir.path / "reload.netset";
	// 6 entries, 4 ranges: the /25 lies inside the /24, and 198.18.204.0/24 joins 198.18.202.0/23.
	std::ofstream(feed) << "# test feed\n"
	                       "198.18.200.0/24\n"
	                       "198.18.200.128/25\n"
	                       "198.18.201.7\n"
	                       "198.18.202.0/23 ; a comment\n"
	                       "198.18.204.0/24\n"
	                       "2001:2:0:1::/64\n";
	std::ofstream(reload) << "198.18.210.0/24\n198.18.211.0/24\n198.18.220.1\n";  // 3 entries, 2 ranges
	const std::string text = "default in drop\n"
	                         "default out allow\n"
	                         "set feed = file \"" + feed.string() + "\"\n"
	                         "drop in from $feed counter feed\n"
	                         "allow in from any counter rest\n";
	firewall fw(text);
	const std::string l = "{set=\"feed\"}";
	auto sample = [&](const std::map<std::string, double>& s, const char* name) { return value(s, name + l); };

	// Three new flows from the feed (two IPv4, one IPv6) and two from elsewhere; each is one lookup.
	const u128 in_feed6 = packet::test::v6addr(0x2001000200000001, 5), outside6 = packet::test::v6addr(0x2001000200000002, 5);
	fw.send(outside, {udp4(0xC612C801, 4000, server, 53), udp4(0xC612C907, 4001, server, 53),  // 198.18.200.1, .201.7
	                  packet::test::tcp6(in_feed6, 4002, outside6, 22, syn),
	                  udp4(client, 4003, server, 53), udp4(0xC612C908, 4004, server, 53)});  // 198.18.201.8: not in it
	auto s = samples(metrics::render(fw.runtime()));
	CHECK(sample(s, "portcullis_set_entries") == 6);
	CHECK(sample(s, "portcullis_set_ranges") == 4);
	CHECK(sample(s, "portcullis_set_hits_total") == 3);
	CHECK(value(s, "portcullis_rule_packets_total{rule=\"feed\",file=\"test.rules\",line=\"4\"}") == 3);
	for (const char* c : {"portcullis_set_adds_total", "portcullis_set_deletes_total", "portcullis_set_expiries_total",
	                      "portcullis_set_loads_total", "portcullis_set_flushes_total", "portcullis_set_evictions_total"})
		CHECK(sample(s, c) == 0);
	{
		const auto lock = fw.runtime().reader_lock();
		CHECK(sample(s, "portcullis_set_memory_bytes") == double(fw.runtime().policy().sets[0]->memory_bytes()));
	}
	CHECK(sample(s, "portcullis_set_memory_bytes") > 0);

	// Runtime changes: two adds (one with a timeout that passes), a delete, then a load.
	control::runtime& rt = fw.runtime();
	REQUIRE(rt.set_add("feed", false, 0xC6130001, 0xC6130001, 0).ok);  // 198.19.0.1
	const u128 net48 = packet::test::v6addr(0x2001000200000000, 0);
	REQUIRE(rt.set_add("feed", true, net48, net48 | ((u128(1) << 80) - 1), 1).ok);  // 2001:2::/48 for 1 ms
	REQUIRE(rt.set_del("feed", false, 0xC612C900, 0xC612C9FF).ok);  // 198.18.201.0/24
	s = samples(metrics::render(rt));
	CHECK(sample(s, "portcullis_set_entries") == 6 + 2);  // deletes are not subtracted from the entries
	CHECK(sample(s, "portcullis_set_adds_total") == 2);
	CHECK(sample(s, "portcullis_set_deletes_total") == 1);
	CHECK(sample(s, "portcullis_set_expiries_total") == 0);
	std::this_thread::sleep_for(std::chrono::milliseconds(20));
	rt.expire_sets();
	s = samples(metrics::render(rt));
	CHECK(sample(s, "portcullis_set_expiries_total") == 1);
	CHECK(sample(s, "portcullis_set_entries") == 6 + 1);

	// 198.19.0.1 was added, 198.18.201.7 deleted: one more hit, not two.
	fw.send(outside, {udp4(0xC6130001, 4005, server, 53), udp4(0xC612C907, 4006, server, 53)});
	CHECK(sample(samples(metrics::render(rt)), "portcullis_set_hits_total") == 3 + 1);

	const auto loaded = rt.set_load("feed", reload.string());
	REQUIRE(loaded.ok);
	fw.send(outside, {udp4(0xC612D201, 4007, server, 53), udp4(0xC612C801, 4008, server, 53)});  // .210.1 in, .200.1 no longer
	s = samples(metrics::render(rt));
	CHECK(sample(s, "portcullis_set_loads_total") == 1);
	CHECK(sample(s, "portcullis_set_entries") == 3);  // the load dropped the runtime add
	CHECK(sample(s, "portcullis_set_ranges") == 2);
	CHECK(sample(s, "portcullis_set_hits_total") == 3 + 1 + 1);
	CHECK(sample(s, "portcullis_set_adds_total") == 2);

	REQUIRE(rt.set_flush("feed").ok);
	s = samples(metrics::render(rt));
	CHECK(sample(s, "portcullis_set_flushes_total") == 1);
	CHECK(sample(s, "portcullis_set_entries") == 0);
	CHECK(sample(s, "portcullis_set_ranges") == 0);

	// A push reads the file again and drops the runtime changes: the set and its counters start over
	// (rule counters carry over by name).
	REQUIRE(rt.push_text(text, "test.rules").ok);
	s = samples(metrics::render(rt));
	CHECK(sample(s, "portcullis_set_entries") == 6);
	CHECK(sample(s, "portcullis_set_ranges") == 4);
	for (const char* c : {"portcullis_set_hits_total", "portcullis_set_adds_total", "portcullis_set_deletes_total",
	                      "portcullis_set_expiries_total", "portcullis_set_loads_total", "portcullis_set_flushes_total"})
		CHECK(sample(s, c) == 0);
	CHECK(value(s, "portcullis_rule_packets_total{rule=\"feed\",file=\"test.rules\",line=\"4\"}") == 3 + 1 + 1);

	const std::string page = metrics::render(rt);
	CHECK(page.find("# TYPE portcullis_set_entries gauge") != std::string::npos);
	CHECK(page.find("# TYPE portcullis_set_hits_total counter") != std::string::npos);
	if (const std::string promtool = find_program("promtool"); !promtool.empty()) {
		const fs::path file = dir.path / "metrics.txt";
		std::ofstream(file) << page;
		std::string output;
		const int rc = run_program({promtool, "check", "metrics"}, file.string(), output);
		INFO("promtool said:\n" << output);
		CHECK(rc == 0);
	}
}

TEST_CASE("without file sets the set families are present and empty")
{
	firewall fw(rules_text);
	const std::string page = metrics::render(fw.runtime());
	CHECK(page.find("# TYPE portcullis_set_entries gauge") != std::string::npos);
	CHECK(page.find("portcullis_set_entries{") == std::string::npos);
}

TEST_CASE("the exporter's busy ratio covers the interval since the previous scrape")
{
	firewall fw(rules_text);
	send_known_traffic(fw);
	const metrics::clock_anchor clock = metrics::clock_anchor::now();
	std::vector<metrics::busy_sample> previous;
	auto ratio = [&] {
		const auto page = prometheus::TextSerializer().Serialize(metrics::collect(fw.runtime(), {}, clock, &previous));
		return value(samples(page), "portcullis_worker_busy_ratio{worker=\"0\"}");
	};
	const double first = ratio();  // since start: mostly busy (every poll but the last found packets)
	CHECK(first > 0);
	CHECK(ratio() == first);  // no poll in between: the last interval's share again, not 0/0
	fw.idle_polls(10);
	CHECK(ratio() == 0);  // only idle polls since the previous scrape
	REQUIRE(previous.size() == 1);
	CHECK(previous[0].idle_tsc == fw.runtime().workers().front()->counters().idle_tsc);
}

TEST_CASE("the exporter serves /metrics over HTTP and reports listen errors as values")
{
	firewall fw(rules_text);
	send_known_traffic(fw);
	metrics::exporter_options opt;
	opt.listen = "127.0.0.1:0";
	auto started = metrics::exporter::start(fw.runtime(), opt);
	REQUIRE(started.error.empty());
	REQUIRE(started.running);
	const uint16_t port = started.running->port();
	REQUIRE(port != 0);

	auto response = http_get(port, "/metrics");
	REQUIRE(response);
	CHECK(response->status == 200);
	CHECK(response->headers.find("text/plain") != std::string::npos);
	const auto s = samples(response->body);
	CHECK(value(s, packets("in", "allow")) == allowed_in);
	CHECK(value(s, packets("in", "drop")) == dropped_in);
	CHECK(value(s, "portcullis_drops_total{reason=\"default_drop\"}") == default_dropped);

	// More traffic shows on the next scrape: nothing is cached.
	fw.send(outside, {tcp4(client, 41000, server, 22, syn)});
	response = http_get(port, "/metrics");
	REQUIRE(response);
	CHECK(value(samples(response->body), packets("in", "allow")) == allowed_in + 1);

	SECTION("a port in use is an error, not a crash")
	{
		opt.listen = "127.0.0.1:" + std::to_string(port);
		auto second = metrics::exporter::start(fw.runtime(), opt);
		CHECK_FALSE(second.running);
		CHECK(second.error.find("127.0.0.1:" + std::to_string(port)) != std::string::npos);
	}
	SECTION("a bad address is an error, not a crash")
	{
		opt.listen = "not an address";
		auto bad = metrics::exporter::start(fw.runtime(), opt);
		CHECK_FALSE(bad.running);
		CHECK_FALSE(bad.error.empty());
	}
}

TEST_CASE("promtool accepts the page")
{
	const std::string promtool = find_program("promtool");
	if (promtool.empty()) {
		WARN("SKIPPED: promtool is not installed (Debian package prometheus)");
		return;
	}
	firewall fw(rules_text);
	send_known_traffic(fw);
	metrics::exporter_options opt;
	opt.listen = "127.0.0.1:0";
	auto started = metrics::exporter::start(fw.runtime(), opt);
	REQUIRE(started.running);
	auto response = http_get(started.running->port(), "/metrics");
	REQUIRE(response);

	temp_dir dir;
	const fs::path page = dir.path / "metrics.txt";
	std::ofstream(page) << response->body;
	std::string output;
	const int rc = run_program({promtool, "check", "metrics"}, page.string(), output);
	INFO("promtool said:\n" << output);
	CHECK(rc == 0);
}

TEST_CASE("a Prometheus server scrapes the exporter")
{
	const std::string prometheus = find_program("prometheus");
	if (prometheus.empty()) {
		WARN("SKIPPED: the prometheus server is not installed (Debian package prometheus)");
		return;
	}
	firewall fw(rules_text);
	send_known_traffic(fw);
	metrics::exporter_options opt;
	opt.listen = "127.0.0.1:0";
	auto started = metrics::exporter::start(fw.runtime(), opt);
	REQUIRE(started.running);

	temp_dir dir;
	const uint16_t web_port = free_port();
	REQUIRE(web_port != 0);
	std::ofstream(dir.path / "prometheus.yml") << "global:\n"
	                                              "  scrape_interval: 1s\n"
	                                              "  scrape_timeout: 1s\n"
	                                              "scrape_configs:\n"
	                                              "  - job_name: portcullis\n"
	                                              "    static_configs:\n"
	                                              "      - targets: ['127.0.0.1:"
	                                           << started.running->port() << "']\n";
	const std::string log = (dir.path / "prometheus.log").string();
	std::vector<std::string> args = {prometheus,
	                                 "--config.file=" + (dir.path / "prometheus.yml").string(),
	                                 "--storage.tsdb.path=" + (dir.path / "data").string(),
	                                 "--web.listen-address=127.0.0.1:" + std::to_string(web_port)};
	std::vector<char*> argv;
	for (auto& a : args)
		argv.push_back(a.data());
	argv.push_back(nullptr);
	posix_spawn_file_actions_t actions;
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	posix_spawn_file_actions_adddup2(&actions, 1, 2);
	child server;
	const int rc = posix_spawn(&server.pid, prometheus.c_str(), &actions, nullptr, argv.data(), environ);
	posix_spawn_file_actions_destroy(&actions);
	REQUIRE(rc == 0);

	const std::string query = "/api/v1/query?query=" + url_encode("sum(portcullis_packets_total)");
	const std::string allowed_query = "/api/v1/query?query=" + url_encode(packets("in", "allow"));
	std::optional<double> seen;
	std::string last_answer;
	const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
	while (std::chrono::steady_clock::now() < deadline && server.running()) {
		if (auto r = http_get(web_port, query, 1000); r && r->status == 200) {
			last_answer = r->body;
			seen = first_value(r->body);
			if (seen && *seen == total_packets)
				break;
		}
		std::this_thread::sleep_for(std::chrono::milliseconds(250));
	}
	std::string server_log;
	{
		std::ifstream in(log);
		server_log.assign(std::istreambuf_iterator<char>(in), {});
	}
	INFO("last answer: " << last_answer << "\nprometheus log:\n" << server_log);
	REQUIRE(seen);
	CHECK(*seen == total_packets);
	auto allowed = http_get(web_port, allowed_query, 1000);
	REQUIRE(allowed);
	CHECK(first_value(allowed->body) == std::optional<double>(allowed_in));
}

int main(int argc, char** argv)
{
	if (!init_environment())
		return 1;
	const int rc = Catch::Session().run(argc, argv);
	cleanup_environment();
	return rc;
}
