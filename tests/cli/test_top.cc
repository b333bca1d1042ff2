// portcullis top's frame from two canned snapshots: rates over the interval, the views' rows and their
// order, and what a counter that went down (a restarted daemon) counts as.
#include <catch2/catch.hpp>

#include <string>

#include "cli/top.h"

using namespace portcullis::cli;
using json = nlohmann::json;

namespace {

json rule(unsigned index, unsigned line, const char* text, uint64_t packets, uint64_t bytes)
{
	return {{"index", index}, {"file", "/etc/portcullis/gw.rules"}, {"line", line}, {"text", text},
	        {"packets", packets}, {"bytes", bytes}};
}

json flow(const char* src, int sport, uint64_t packets, uint64_t bytes, double age)
{
	return {{"worker", 0}, {"proto", "tcp"}, {"family", 4}, {"src", src}, {"sport", sport}, {"dst", "198.18.1.10"},
	        {"dport", 443}, {"state", "tcp_established"}, {"packets", {packets / 2, packets - packets / 2}},
	        {"bytes", {bytes / 2, bytes - bytes / 2}}, {"age_s", age}};
}

top_snapshot snapshot(double t, uint64_t scale)
{
	top_snapshot s;
	s.seconds = t;
	s.stats = {{"rules", {{"generation", 4}, {"count", 2}, {"digest", "5f1c"}}},
	           {"flows", {{"live", 3}, {"capacity", 1000}, {"opened", 10 * scale}, {"evicted_embryonic", 0}, {"expired", 2 * scale}}},
	           {"traffic", {{"in", {{"forwarded", {{"packets", 1000 * scale}}}, {"dropped", {{"packets", 10 * scale}}}}}}},
	           {"drops", {{"default_drop", 10 * scale}, {"malformed", 4 * scale}, {"tcp_out_of_window", 0}}},
	           {"malformed", {{"ipv4_bad_checksum", 4 * scale}}},
	           {"workers", {{{"worker", 0}, {"busy_ratio", 0.25}}}}};
	s.rules = {{"rules", {rule(0, 3, "allow in tcp to any port 443", 100 * scale, 1000 * scale),
	                      rule(1, 4, "allow out", 300 * scale, 600 * scale)}}};
	s.flows = {{"flows", {flow("198.18.0.5", 40000, 50 * scale, 5000 * scale, 10)}}};
	return s;
}

} // namespace

TEST_CASE("top: rates over the interval, busiest first, by packets or by bytes", "[cli][top]")
{
	const top_snapshot a = snapshot(10.0, 1), b = snapshot(12.0, 3);  // two seconds, every counter tripled
	auto lines = top_frame(a, b, top_view::rules, top_sort::packets, 10);
	std::string frame;
	for (const auto& l : lines)
		frame += l + "\n";
	INFO(frame);
	REQUIRE(lines.size() == 9);
	CHECK(lines[0] == "portcullis top  generation 4 (2 rules, 5f1c)  every 2.0s  view: rules  sort: packets");
	CHECK(lines[1] == "flows 3 of 1000 (0.3%)  opened 10/s  evicted 0/s  expired 2/s");
	CHECK(lines[2].find("in 1.0k pkt/s forwarded, 10 dropped") != std::string::npos);
	CHECK(lines[3] == "workers  0: 25% busy");
	// Rule 4 passes 300 packets a second ((900 - 300) / 2), rule 3 100: by packets, rule 4 first.
	CHECK(lines[7].starts_with("gw.rules:4 "));
	CHECK(lines[7].find("   300      600      900  allow out") != std::string::npos);
	CHECK(lines[8].starts_with("gw.rules:3 "));
	// By bytes rule 3 (1000 B/s) comes before rule 4 (600 B/s).
	lines = top_frame(a, b, top_view::rules, top_sort::bytes, 10);
	CHECK(lines[7].starts_with("gw.rules:3 "));
	CHECK(lines[7].find("  1.0k") != std::string::npos);
	// At most `rows` rows.
	CHECK(top_frame(a, b, top_view::rules, top_sort::bytes, 1).size() == 8);
}

TEST_CASE("top: drops by reason, parser reasons under malformed/, zero totals left out", "[cli][top]")
{
	const auto lines = top_frame(snapshot(0, 1), snapshot(1, 2), top_view::drops, top_sort::packets, 10);
	REQUIRE(lines.size() == 9);
	CHECK(lines[7].starts_with("default_drop "));
	CHECK(lines[7].find("       10        20") != std::string::npos);
	CHECK(lines[8].starts_with("malformed/ipv4_bad_checksum "));
}

TEST_CASE("top: a flow's rate, a new flow's over its life, and a counter that went down", "[cli][top]")
{
	top_snapshot a = snapshot(0, 1), b = snapshot(1, 3);
	b.flows["flows"].push_back(flow("198.18.0.6", 40001, 400, 40000, 0.5));  // new: 400 packets in half a second
	auto lines = top_frame(a, b, top_view::flows, top_sort::packets, 10);
	std::string frame;
	for (const auto& l : lines)
		frame += l + "\n";
	INFO(frame);
	REQUIRE(lines.size() == 9);
	CHECK(lines[7].find("198.18.0.6:40001 -> 198.18.1.10:443") != std::string::npos);
	CHECK(lines[7].find("  800    80.0k") != std::string::npos);
	CHECK(lines[8].find("198.18.0.5:40000") != std::string::npos);
	CHECK(lines[8].find("  100    10.0k") != std::string::npos);
	// A flow new to the listing but an hour old is rated over its hour, not over the interval.
	b = snapshot(1, 3);
	b.flows["flows"].push_back(flow("198.18.0.7", 40002, 3'600'000, 360'000'000, 3600));
	lines = top_frame(a, b, top_view::flows, top_sort::packets, 10);
	REQUIRE(lines.size() == 9);
	CHECK(lines[7].find("198.18.0.7:40002") != std::string::npos);
	CHECK(lines[7].find(" 1.0k   100.0k") != std::string::npos);
	// The daemon restarted: its counters start again from zero, counted from zero, not as negative.
	lines = top_frame(snapshot(0, 3), snapshot(1, 1), top_view::rules, top_sort::packets, 10);
	CHECK(lines[7].find("   300      600      300  allow out") != std::string::npos);
}
