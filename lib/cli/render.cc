// The CLI's renderer: numbers, durations, endpoints and source lines as text, and the daemon's answers
// to the live commands as the tables and lines the operator reads.
#include "cli/render.h"

#include <cstdint>
#include <cstdio>
#include <ostream>
#include <string>

namespace portcullis::cli {

using json = nlohmann::json;

std::string fixed(double v, int decimals)
{
	char buf[64];
	std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
	return buf;
}

std::string duration(double s)
{
	if (s < 10)
		return fixed(s, 1) + "s";
	const auto t = uint64_t(s);
	char buf[32];
	if (t < 60)
		std::snprintf(buf, sizeof buf, "%lus", (unsigned long)t);
	else if (t < 3600)
		std::snprintf(buf, sizeof buf, "%lum%02lus", (unsigned long)(t / 60), (unsigned long)(t % 60));
	else if (t < 86400)
		std::snprintf(buf, sizeof buf, "%luh%02lum", (unsigned long)(t / 3600), (unsigned long)(t / 60 % 60));
	else
		std::snprintf(buf, sizeof buf, "%lud%02luh", (unsigned long)(t / 86400), (unsigned long)(t / 3600 % 24));
	return buf;
}

std::string endpoint(const json& f, const char* addr, const char* port)
{
	const std::string a = f.value(addr, "");
	const std::string p = f.value("proto", "");
	if (p != "tcp" && p != "udp")
		return a;
	const std::string port_text = std::to_string(f.value(port, 0));
	return f.value("family", 4) == 6 ? "[" + a + "]:" + port_text : a + ":" + port_text;
}

std::string source_line(const json& src)
{
	const std::string file = src.value("file", ""), configured = src.value("configured", "");
	if (!src.contains("origin"))
		return "source: not reported by this portcullisd";
	if (src.value("origin", "") == "config")
		return "source: the configured rules file " + file + " (loaded at start-up or by SIGHUP)";
	if (src.value("origin", "") == "etcd")
		return "source: " + file + " (the etcd key this portcullisd follows; a restart starts on " + configured +
		       " and takes the key again)";
	return "source: pushed " + file + " (runtime only: a restart or SIGHUP loads the configured " + configured + ")";
}

// A pending push --confirm: what comes back, and when.
std::string rollback_line(const json& rollback)
{
	if (!rollback.is_object())
		return {};
	return "unconfirmed: generation " + std::to_string(rollback.value("restores_generation", 0)) +
	       "'s rules come back in " + duration(rollback.value("seconds_left", 0.0)) + " unless `portcullis confirm` keeps generation " +
	       std::to_string(rollback.value("confirms_generation", 0)) + "\n";
}

void render_push(const json& r, const std::string& path, std::ostream& out)
{
	out << "pushed " << path << ": generation " << r.value("generation", 0) << " (was " << r.value("previous_generation", 0)
	    << "), " << r.value("rules", 0) << " rules, digest " << r.value("digest", "") << ", compiled in "
	    << fixed(r.value("compile_ms", 0.0), 2) << " ms, quiesced in " << fixed(r.value("quiesce_us", 0.0), 1) << " us\n";
	out << source_line(r.value("source", json::object())) << "\n" << rollback_line(r.value("rollback", json()));
}

void render_preview(const json& r, const std::string& path, std::ostream& out, std::ostream& warn)
{
	const json diff = r.value("diff", json::object());
	auto list = [&](const char* key) { return diff.value(key, json::array()); };
	out << "dry run of " << path << ": nothing changed; generation " << r.value("generation", 0) << " stays\n"
	    << "rules: " << r.value("rules", 0) << " (digest " << r.value("digest", "") << "): " << list("added").size()
	    << " added, " << list("removed").size() << " removed, " << list("moved").size() << " moved, "
	    << list("changed").size() << " changed\n";
	auto where = [](const json& x) { return x.value("file", "") + ":" + std::to_string(x.value("line", 0)); };
	for (const auto& x : list("added"))
		out << "  + " << where(x) << ": " << x.value("text", "") << "\n";
	for (const auto& x : list("removed"))
		out << "  - " << where(x) << ": " << x.value("text", "") << "\n";
	for (const auto& x : list("changed"))
		out << "  ~ " << where(x) << ": " << x.value("was_action", "") << " -> " << x.value("action", "") << ": "
		    << x.value("text", "") << (x.value("was_text", "") != x.value("text", "") ? " (was: " + x.value("was_text", "") + ")" : "")
		    << "\n";
	for (const auto& x : list("moved"))
		out << "  > " << where(x) << ": #" << x.value("was_index", 0) << " -> #" << x.value("index", 0) << ": "
		    << x.value("text", "") << "\n";
	const json flows = r.value("flows", json::object());
	const json listed = flows.value("listed", json::array());
	out << "flows: " << flows.value("cut", 0) << " of " << flows.value("live", 0)
	    << " live flows would be cut when re-judged on their next packet";
	out << (listed.empty() ? "\n" : listed.size() < flows.value("cut", size_t(0)) ? ", the " + std::to_string(listed.size()) + " largest:\n" : ":\n");
	auto flow_line = [](const json& f) {
		const auto& b = f["bytes"];
		const json rule = f.value("new_rule", json());
		return f.value("proto", "") + " " + endpoint(f, "src", "sport") + " -> " + endpoint(f, "dst", "dport") + " " +
		       f.value("direction", "") + "  " + f.value("state", "") + "  " +
		       std::to_string(b[0].get<uint64_t>() + b[1].get<uint64_t>()) + " bytes  -> " + f.value("new_action", "") +
		       (rule.is_number() ? " by rule #" + std::to_string(rule.get<uint64_t>()) : std::string(" by default"));
	};
	for (const auto& f : listed)
		out << "  " << flow_line(f) << "\n";
	for (const auto& f : r.value("keep_cut", json::array()))
		warn << "WARNING: this rule set would cut your own connection: " << flow_line(f) << "\n";
}

void render_rules(const json& r, std::ostream& out)
{
	const auto& list = r["rules"];
	out << "generation " << r.value("generation", 0) << ", " << list.size() << " rules, default in "
	    << r.value("default_in", "") << ", default out " << r.value("default_out", "") << ", digest "
	    << r.value("digest", "") << "\n"
	    << source_line(r.value("source", json::object())) << "\n"
	    << rollback_line(r.value("rollback", json()));
	char line[160];
	std::snprintf(line, sizeof line, "%5s %12s %14s %9s  %s\n", "#", "PACKETS", "BYTES", "LAST HIT", "WHERE: RULE");
	out << line;
	for (const auto& x : list) {
		const auto& hit = x["last_hit_seconds_ago"];
		const std::string last = hit.is_number() ? duration(hit.get<double>()) + " ago" : "never";
		std::snprintf(line, sizeof line, "%5u %12lu %14lu %9s  ", x.value("index", 0u), (unsigned long)x.value("packets", uint64_t(0)),
		              (unsigned long)x.value("bytes", uint64_t(0)), last.c_str());
		out << line << x.value("file", "") << ":" << x.value("line", 0) << ": " << x.value("text", "") << "\n";
	}
}

void render_flows(const json& r, std::ostream& out)
{
	for (const auto& f : r["flows"]) {
		const auto& p = f["packets"];
		const auto& b = f["bytes"];
		char line[256];
		std::snprintf(line, sizeof line, "%-5s %-45s %-3s %-16s age %-7s idle %-7s pkts %lu/%lu bytes %lu/%lu\n",
		              f.value("proto", "").c_str(),
		              (endpoint(f, "src", "sport") + " -> " + endpoint(f, "dst", "dport")).c_str(),
		              f.value("direction", "").c_str(), f.value("state", "").c_str(), duration(f.value("age_s", 0.0)).c_str(),
		              duration(f.value("idle_s", 0.0)).c_str(), (unsigned long)p[0].get<uint64_t>(),
		              (unsigned long)p[1].get<uint64_t>(), (unsigned long)b[0].get<uint64_t>(), (unsigned long)b[1].get<uint64_t>());
		out << line;
	}
	out << r.value("listed", 0) << " listed, " << r.value("matched", 0) << " matching, " << r.value("live", 0) << " live"
	    << (r.value("truncated", false) ? " (raise --limit to see more)" : "") << "\n";
}

void render_flush(const json& r, std::ostream& out) { out << "flushed " << r.value("flushed", 0) << " flows\n"; }

void render_set(const json& r, const std::string& op, std::ostream& out)
{
	auto line = [&](const json& s) {
		char buf[512];
		std::snprintf(buf, sizeof buf, "%-20s %10lu entries %8lu ranges  +%lu -%lu runtime  %12lu hits  %s\n",
		              s.value("name", "").c_str(), (unsigned long)s.value("base_entries", uint64_t(0)),
		              (unsigned long)s.value("base_ranges", uint64_t(0)), (unsigned long)s.value("adds", uint64_t(0)),
		              (unsigned long)s.value("deletes", uint64_t(0)), (unsigned long)s.value("hits", uint64_t(0)),
		              s.value("file", "").c_str());
		out << buf;
	};
	if (op == "list") {
		if (r["sets"].empty())
			out << "no file sets in the active rules (generation " << r.value("generation", uint64_t(0)) << ")\n";
		for (const auto& s : r["sets"])
			line(s);
		return;
	}
	line(r["set"]);
	if (op == "show") {
		for (const auto& a : r.value("added", json::array())) {
			out << "  + " << a.value("address", "");
			if (a["expires_in_s"].is_number())
				out << "  (expires in " << uint64_t(a["expires_in_s"].get<double>()) << " s)";
			out << "\n";
		}
		for (const auto& d : r.value("deleted", json::array()))
			out << "  - " << d.get<std::string>() << "\n";
		return;
	}
	char buf[128];
	std::snprintf(buf, sizeof buf, "%s applied in %.0f us\n", op.c_str(), r.value("publish_us", 0.0));
	out << buf;
}

void render_sync(const json& s, std::ostream& out)
{
	const auto& rec = s["records"];
	const auto& dg = s["datagrams"];
	const auto& ref = s["refused"];
	const auto& in = s["installed"];
	out << "sync: " << s.value("role", "") << (s.value("ready", false) ? ", ready" : ", NOT ready (bulk sync pending)")
	    << ", listening on " << s.value("listen", "") << "\n  records " << rec.value("sent", 0) << " sent, "
	    << rec.value("received", 0) << " received, " << rec.value("dropped", 0) << " dropped; installed "
	    << in.value("new", 0) << " new, " << in.value("updated", 0) << " updated, " << in.value("refused", 0)
	    << " refused; deferred " << s["deferred"].value("held", 0) << " (" << s["deferred"].value("resolved", 0)
	    << " resolved, " << s["deferred"].value("expired", 0) << " expired); datagrams " << dg.value("retransmitted", 0)
	    << " resent; refused " << ref.value("malformed", 0)
	    << " malformed, " << ref.value("bad_auth", 0) << " bad auth, " << ref.value("unknown_peer", 0) << " unknown peer, "
	    << ref.value("stale", 0) << " stale, " << ref.value("misdirected", 0) << " misdirected, " << s.value("duplicates", 0)
	    << " duplicate\n";
	for (const auto& p : s["peers"]) {
		const auto& bi = p["bulk_in"];
		const auto& bo = p["bulk_out"];
		out << "  peer " << p.value("address", "") << ": " << (p.value("up", false) ? "up" : "DOWN") << ", bulk in "
		    << (bi.value("done", false) ? "done" : "pending") << " (" << bi.value("received", 0) << " of " << bi.value("total", 0)
		    << "), bulk out " << bo.value("acked", 0) << " of " << bo.value("total", 0) << " acknowledged";
		if (const double sec = bo.value("seconds", 0.0); sec > 0)
			out << " in " << fixed(sec, 2) << " s";
		out << ", lag " << fixed(p.value("lag_seconds", 0.0) * 1000, 0) << " ms, " << p.value("queued", 0) << " queued\n";
	}
}

void render_stats(const json& r, std::ostream& out)
{
	char line[256];
	out << "ports:\n";
	for (const auto& p : r["ports"]) {
		std::snprintf(line, sizeof line, "  %-16s rx %12lu pkts %14lu bytes   tx %12lu pkts %14lu bytes\n",
		              p.value("name", "").c_str(), (unsigned long)p.value("rx_packets", uint64_t(0)),
		              (unsigned long)p.value("rx_bytes", uint64_t(0)), (unsigned long)p.value("tx_packets", uint64_t(0)),
		              (unsigned long)p.value("tx_bytes", uint64_t(0)));
		out << line;
	}
	out << "traffic:\n";
	for (const char* d : {"in", "out"})
		for (const char* v : {"forwarded", "dropped", "rejected"}) {
			const auto& x = r["traffic"][d][v];
			std::snprintf(line, sizeof line, "  %-3s %-9s %12lu pkts %14lu bytes\n", d, v,
			              (unsigned long)x.value("packets", uint64_t(0)), (unsigned long)x.value("bytes", uint64_t(0)));
			out << line;
		}
	// Counters by name, only those above zero ("none" when all are).
	auto nonzero = [&](const char* title, const json& m) {
		out << title;
		bool any = false;
		for (const auto& [name, v] : m.items())
			if (v.get<uint64_t>()) {
				std::snprintf(line, sizeof line, "\n  %-32s %12lu", name.c_str(), (unsigned long)v.get<uint64_t>());
				out << line;
				any = true;
			}
		out << (any ? "\n" : " none\n");
	};
	nonzero("drops by reason:", r["drops"]);
	nonzero("malformed by parse reason:", r["malformed"]);
	const auto& f = r["flows"];
	out << "flows: " << f.value("live", 0) << " live of " << f.value("capacity", 0) << ", " << f.value("opened", 0)
	    << " opened, " << f.value("evicted_embryonic", 0) << " evicted, " << f.value("expired", 0) << " expired, "
	    << f.value("flushed", 0) << " flushed, " << f.value("refused_full", 0) + f.value("refused_buckets", 0) << " refused\n";
	nonzero("expired by state:", f["expired_by_state"]);
	if (r.contains("syncookies")) {
		const auto& c = r["syncookies"];
		out << "syncookies (" << c.value("mode", "") << "): " << c.value("active_workers", 0) << " worker(s) answering now, "
		    << c.value("sent", 0) << " SYN-ACKs sent, " << c.value("accepted", 0) << " accepted, " << c.value("failed", 0)
		    << " failed, " << c.value("handshakes", 0) << " server handshakes\n";
	}
	if (r.contains("sync"))
		render_sync(r["sync"], out);
	const auto& rl = r["rules"];
	out << "rules: generation " << rl.value("generation", 0) << ", " << rl.value("count", 0) << " rules, "
	    << rl.value("swaps_ok", 0) << " swaps (" << rl.value("swaps_failed", 0) << " refused), last compile "
	    << fixed(rl.value("last_compile_ms", 0.0), 2) << " ms, last quiesce " << fixed(rl.value("last_quiesce_us", 0.0), 1)
	    << " us, digest " << rl.value("digest", "") << "\n  " << source_line(rl.value("source", json::object())) << "\n";
	if (const std::string pending = rollback_line(rl.value("rollback", json())); !pending.empty())
		out << "  " << pending;
	if (r.contains("rules_watch")) {
		const auto& w = r["rules_watch"];
		out << "rules.watch: " << w.value("url", "") << (w.value("connected", false) ? " (connected)" : " (NOT connected)")
		    << ", newest revision seen " << w.value("revision", int64_t(0)) << "\n  " << w.value("state", "") << "\n";
	}
	out << "workers:\n";
	for (const auto& w : r["workers"]) {
		std::snprintf(line, sizeof line, "  %-3u busy %5.1f%% (last second), %5.1f%% (since start), %lu flows\n",
		              w.value("worker", 0u), 100 * w.value("busy_ratio", 0.0), 100 * w.value("busy_ratio_total", 0.0),
		              (unsigned long)w.value("flows", uint64_t(0)));
		out << line;
	}
}

void render_explain(const json& r, bool verbose, std::ostream& out)
{
	out << "flow:    " << r.value("flow", "") << "\n";
	if (verbose)
		for (const auto& s : r["skipped"])
			out << "skipped: " << s.value("file", "") << ":" << s.value("line", 0) << ": " << s.value("text", "")
			    << "\n         (" << s.value("reason", "") << ")\n";
	if (r.value("default", false)) {
		out << "verdict: " << r.value("verdict", "") << " (default " << r.value("direction", "") << ": no rule matched)\n";
	} else {
		const auto& rule = r["rule"];
		out << "verdict: " << r.value("verdict", "") << (rule.value("log", false) ? " (logged)" : "") << "\n"
		    << "rule:    " << rule.value("file", "") << ":" << rule.value("line", 0) << ": " << rule.value("text", "") << "\n"
		    << "counter: " << rule.value("counter", "") << "\n"
		    << "because:\n";
		for (const auto& reason : r["reasons"])
			out << "  " << reason.get<std::string>() << "\n";
	}
	out << "(live rules, generation " << r.value("generation", 0) << ")\n";
}

} // namespace portcullis::cli
