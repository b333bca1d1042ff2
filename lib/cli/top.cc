// portcullis top (top.h): the frame from two snapshots, and the loop that takes them, drawn with ncurses
// on a terminal or printed as text elsewhere.
#include "cli/top.h"

#include <curses.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <ostream>
#include <thread>

#include "cli/cli.h"
#include "cli/render.h"

namespace portcullis::cli {

using json = nlohmann::json;

namespace {

// 1234567 -> "1.2M": rates and counts in a column.
std::string si(double v)
{
	char buf[32];
	if (v < 1000)
		std::snprintf(buf, sizeof buf, "%.0f", v);
	else if (v < 1e6)
		std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
	else if (v < 1e9)
		std::snprintf(buf, sizeof buf, "%.1fM", v / 1e6);
	else
		std::snprintf(buf, sizeof buf, "%.1fG", v / 1e9);
	return buf;
}

uint64_t count(const json& j, const char* key) { return j.is_object() ? j.value(key, uint64_t(0)) : 0; }

// The per-second rate of a counter between two answers; a counter that went down (a restart) counts from 0.
double rate(uint64_t before, uint64_t now, double dt) { return dt > 0 ? double(now >= before ? now - before : now) / dt : 0; }

std::string pad(std::string s, size_t width)
{
	if (s.size() < width)
		s.append(width - s.size(), ' ');
	return s;
}
std::string right(const std::string& s, size_t width) { return s.size() < width ? std::string(width - s.size(), ' ') + s : s; }

struct row {
	double packets_per_s, bytes_per_s;
	std::string line;
};

void sort_rows(std::vector<row>& rows, top_sort sort)
{
	std::stable_sort(rows.begin(), rows.end(), [sort](const row& a, const row& b) {
		return sort == top_sort::packets ? a.packets_per_s > b.packets_per_s : a.bytes_per_s > b.bytes_per_s;
	});
}

std::vector<row> rule_rows(const json& before, const json& now, double dt)
{
	std::map<uint64_t, std::pair<uint64_t, uint64_t>> prev;
	for (const auto& r : before.value("rules", json::array()))
		prev[r.value("index", uint64_t(0))] = {count(r, "packets"), count(r, "bytes")};
	std::vector<row> rows;
	for (const auto& r : now.value("rules", json::array())) {
		const auto it = prev.find(r.value("index", uint64_t(0)));
		const auto [p0, b0] = it == prev.end() ? std::pair<uint64_t, uint64_t>{0, 0} : it->second;
		const double pps = rate(p0, count(r, "packets"), dt), bps = rate(b0, count(r, "bytes"), dt);
		const std::string where = std::filesystem::path(r.value("file", "")).filename().string() + ":" +
		                          std::to_string(r.value("line", 0));
		rows.push_back({pps, bps, pad(where, 22) + right(si(pps), 9) + right(si(bps), 9) + right(si(double(count(r, "packets"))), 9) +
		                              "  " + r.value("text", "")});
	}
	return rows;
}

std::vector<row> drop_rows(const json& before, const json& now, double dt)
{
	std::vector<row> rows;
	auto add = [&](const json& b, const json& n, const std::string& prefix) {
		if (!n.is_object())
			return;
		for (const auto& [reason, total] : n.items()) {
			const uint64_t t = total.is_number() ? total.get<uint64_t>() : 0;
			if (t == 0 || (prefix.empty() && reason == "malformed"))  // malformed: by parser reason below
				continue;
			const double pps = rate(count(b, reason.c_str()), t, dt);
			rows.push_back({pps, pps, pad(prefix + reason, 40) + right(si(pps), 9) + right(si(double(t)), 10)});
		}
	};
	add(before.value("drops", json::object()), now.value("drops", json::object()), "");
	add(before.value("malformed", json::object()), now.value("malformed", json::object()), "malformed/");
	return rows;
}

std::string flow_key(const json& f)
{
	return std::to_string(f.value("worker", 0)) + f.value("proto", "") + endpoint(f, "src", "sport") + ">" +
	       endpoint(f, "dst", "dport");
}

uint64_t both(const json& f, const char* key)
{
	const json a = f.value(key, json::array());
	return a.is_array() && a.size() == 2 ? a[0].get<uint64_t>() + a[1].get<uint64_t>() : 0;
}

std::vector<row> flow_rows(const json& before, const json& now, double dt)
{
	std::map<std::string, std::pair<uint64_t, uint64_t>> prev;
	for (const auto& f : before.value("flows", json::array()))
		prev[flow_key(f)] = {both(f, "packets"), both(f, "bytes")};
	std::vector<row> rows;
	for (const auto& f : now.value("flows", json::array())) {
		const auto it = prev.find(flow_key(f));
		// A flow not in the last listing (new, or new to the sample a large table gives): its whole
		// life so far, over that life.
		const double span = it == prev.end() ? std::max(f.value("age_s", dt), 1e-3) : dt;
		const auto [p0, b0] = it == prev.end() ? std::pair<uint64_t, uint64_t>{0, 0} : it->second;
		const double pps = rate(p0, both(f, "packets"), span), bps = rate(b0, both(f, "bytes"), span);
		rows.push_back({pps, bps, pad(f.value("proto", ""), 6) + pad(endpoint(f, "src", "sport") + " -> " + endpoint(f, "dst", "dport"), 52) +
		                              pad(f.value("state", ""), 17) + right(si(pps), 9) + right(si(bps), 9)});
	}
	return rows;
}

} // namespace

std::vector<std::string> top_frame(const top_snapshot& before, const top_snapshot& now, top_view view, top_sort sort,
                                   size_t rows)
{
	const double dt = now.seconds - before.seconds;
	const json& s0 = before.stats;
	const json& s1 = now.stats;
	std::vector<std::string> out;
	const json rules = s1.value("rules", json::object());
	const char* view_name = view == top_view::rules ? "rules" : view == top_view::drops ? "drops" : "flows";
	out.push_back("portcullis top  generation " + std::to_string(rules.value("generation", 0)) + " (" +
	              std::to_string(rules.value("count", 0)) + " rules, " + rules.value("digest", "") + ")  every " +
	              fixed(dt, 1) + "s  view: " + view_name + "  sort: " + (sort == top_sort::packets ? "packets" : "bytes"));
	const json f0 = s0.value("flows", json::object()), f1 = s1.value("flows", json::object());
	const uint64_t live = count(f1, "live"), capacity = count(f1, "capacity");
	const size_t sampled = now.flows.value("flows", json::array()).size();
	out.push_back("flows " + std::to_string(live) + " of " + std::to_string(capacity) + " (" +
	              fixed(capacity ? 100.0 * double(live) / double(capacity) : 0, 1) + "%)  opened " +
	              si(rate(count(f0, "opened"), count(f1, "opened"), dt)) + "/s  evicted " +
	              si(rate(count(f0, "evicted_embryonic"), count(f1, "evicted_embryonic"), dt)) + "/s  expired " +
	              si(rate(count(f0, "expired"), count(f1, "expired"), dt)) + "/s");
	auto direction = [&](const char* d) {
		const json t0 = s0.value("traffic", json::object()).value(d, json::object());
		const json t1 = s1.value("traffic", json::object()).value(d, json::object());
		auto r = [&](const char* verdict) {
			return rate(count(t0.value(verdict, json::object()), "packets"), count(t1.value(verdict, json::object()), "packets"), dt);
		};
		return std::string(d) + " " + si(r("forwarded")) + " pkt/s forwarded, " + si(r("dropped")) + " dropped, " +
		       si(r("rejected")) + " rejected";
	};
	out.push_back("traffic " + direction("in") + "; " + direction("out"));
	std::string workers = "workers";
	for (const auto& w : s1.value("workers", json::array()))
		workers += "  " + std::to_string(w.value("worker", 0)) + ": " + fixed(100.0 * w.value("busy_ratio", 0.0), 0) + "% busy";
	out.push_back(workers);
	out.push_back("keys: r rules  d drops  f flows  s sort by packets/bytes  q quit");
	out.push_back("");

	std::vector<row> table;
	if (view == top_view::rules) {
		out.push_back(pad("RULE", 22) + right("PKT/S", 9) + right("B/S", 9) + right("PACKETS", 9) + "  TEXT");
		table = rule_rows(before.rules, now.rules, dt);
	} else if (view == top_view::drops) {
		out.push_back(pad("DROP REASON", 40) + right("PKT/S", 9) + right("TOTAL", 10));
		table = drop_rows(s0, s1, dt);
	} else {
		if (sampled < live)
			out.back() = "busiest of " + std::to_string(sampled) + " flows listed (of " + std::to_string(live) + " live)";
		out.push_back(pad("PROTO", 6) + pad("FLOW (OPENER FIRST)", 52) + pad("STATE", 17) + right("PKT/S", 9) + right("B/S", 9));
		table = flow_rows(before.flows, now.flows, dt);
	}
	sort_rows(table, view == top_view::drops ? top_sort::packets : sort);
	for (size_t i = 0; i < table.size() && i < rows; ++i)
		out.push_back(table[i].line);
	return out;
}

namespace {

// The flows a refresh lists to find the busiest: enough for a gateway's view, bounded for the daemon. A
// larger table is seen through this sample (the daemon lists in table order), which the header says.
constexpr uint64_t top_flow_sample = 10'000;

double steady_seconds()
{
	return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

} // namespace

int cmd_top(const arguments& args, const options& o, streams io, const daemon_call& daemon)
{
	if (!args.empty()) {
		io.err << "portcullis: top takes no arguments (keys: r d f s q)\n";
		return exit_usage;
	}
	if (!(o.interval >= 0.1 && o.interval <= 3600)) {
		io.err << "portcullis: top: --interval must be 0.1 to 3600 seconds\n";
		return exit_usage;
	}
	std::string error;
	auto ask = [&](const json& req, json& answer) {
		const auto r = daemon(req);
		if (r.status != control::client_status::ok) {
			error = r.error;
			return false;
		}
		if (!r.response.value("ok", false)) {
			error = "top: the daemon refused " + req.value("cmd", "") + ": " + r.response.value("error", "no reason given");
			return false;
		}
		answer = r.response;
		return true;
	};
	auto take = [&](top_snapshot& s) {
		s.seconds = steady_seconds();
		return ask({{"cmd", "stats"}}, s.stats) && ask({{"cmd", "rules"}}, s.rules) &&
		       ask({{"cmd", "flows"}, {"filter", json::object()}, {"limit", top_flow_sample}}, s.flows);
	};
	top_snapshot before, now;
	if (!take(before)) {
		io.err << "portcullis: " << error << "\n";
		return exit_unreachable;
	}
	top_view view = top_view::rules;
	top_sort sort = top_sort::packets;
	const auto pause = std::chrono::duration<double>(o.interval);

	if (!o.interactive) {
		for (int64_t n = 0; o.count <= 0 || n < o.count; ++n) {
			std::this_thread::sleep_for(pause);
			if (!take(now)) {
				io.err << "portcullis: " << error << "\n";
				return exit_unreachable;
			}
			for (const auto& line : top_frame(before, now, view, sort, 20))
				io.out << line << "\n";
			io.out << "\n" << std::flush;
			before = now;
		}
		return exit_ok;
	}

	initscr();
	cbreak();
	noecho();
	keypad(stdscr, TRUE);
	curs_set(0);
	timeout(int(o.interval * 1000));
	// The first frame comes soon, from a shorter interval; then one every interval, and at once on a key.
	std::this_thread::sleep_for(std::chrono::duration<double>(std::min(o.interval, 0.5)));
	int status = take(now) ? exit_ok : exit_unreachable;
	for (int64_t n = 0; status == exit_ok && (o.count <= 0 || n < o.count);) {
		erase();
		const auto lines = top_frame(before, now, view, sort, size_t(std::max(LINES - 8, 1)));
		for (size_t i = 0; i < lines.size() && int(i) < LINES; ++i)
			mvaddnstr(int(i), 0, lines[i].c_str(), COLS);
		refresh();
		const int key = getch();  // waits up to the interval
		if (key == 'q' || key == 'Q')
			break;
		if (key == 'r')
			view = top_view::rules;
		else if (key == 'd')
			view = top_view::drops;
		else if (key == 'f')
			view = top_view::flows;
		else if (key == 's')
			sort = sort == top_sort::packets ? top_sort::bytes : top_sort::packets;
		if (key != ERR)
			continue;  // the same snapshots again, in the new view
		before = now;
		if (!take(now))
			status = exit_unreachable;
		++n;
	}
	endwin();
	if (status != exit_ok)
		io.err << "portcullis: " << error << "\n";
	return status;
}

} // namespace portcullis::cli
