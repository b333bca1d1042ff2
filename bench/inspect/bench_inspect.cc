// bench-inspect: payload scanning rate on one core with 10, 1K and 10K content patterns, over a mixed
// corpus (HTTP-like text, random bytes, base64-like text) cut into 1400-byte segments of 256
// interleaved flows. Ours = flow_streams::scan (sequence tracking, budget, stream pool, candidate
// checks) on pre-parsed frames; the baseline = hs_scan_stream (TCP) or hs_scan (UDP) on the same
// payload bytes in the same order, with a database compiled from the same expressions and flags.
// Patterns are random lower-case words that do not occur in the corpus, so no flow stops early and
// both sides scan every byte; the budget is set above the corpus size for the same reason.
//
// Prints one JSON line per case:
//   {"bench":"inspect","case":"1k_patterns","ours_gbps":...,"baseline":"hs_scan_stream","baseline_gbps":...,"ratio":...}
// Usage: bench-inspect [seconds per measurement, default 0.4]
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <hs.h>

#include "common/json.h"
#include "common/timing.h"
#include "inspect/inspect.h"
#include "packet/packet.h"

using namespace portcullis;

namespace {

using bytes = std::vector<uint8_t>;
using bench::clock_type;
using bench::seconds_since;

constexpr uint32_t flows = 256;
constexpr uint32_t segments_per_flow = 48;
constexpr uint32_t segment_bytes = 1400;

void put16(bytes& b, uint16_t v) { b.push_back(uint8_t(v >> 8)); b.push_back(uint8_t(v)); }
void put32(bytes& b, uint32_t v) { put16(b, uint16_t(v >> 16)); put16(b, uint16_t(v)); }

// Ethernet + IPv4 + TCP (or UDP) around a payload; checksums are not read by the parser.
bytes frame(bool tcp, uint32_t flow, uint32_t seq, const uint8_t* payload, uint32_t len, uint8_t flags = 0x18)
{
	bytes b(12, 0);
	put16(b, 0x0800);
	const uint32_t l4 = tcp ? 20 : 8;
	b.push_back(0x45);
	b.push_back(0);
	put16(b, uint16_t(20 + l4 + len));
	put32(b, 0);
	b.push_back(64);
	b.push_back(tcp ? 6 : 17);
	put16(b, 0);
	put32(b, 0xC6120000 | flow);
	put32(b, 0xC6130001);
	put16(b, uint16_t(10000 + flow));
	put16(b, 80);
	if (tcp) {
		put32(b, seq);
		put32(b, 0);
		b.push_back(0x50);
		b.push_back(flags);
		put16(b, 65535);
		put32(b, 0);
	} else {
		put16(b, uint16_t(8 + len));
		put16(b, 0);
	}
	b.insert(b.end(), payload, payload + len);
	return b;
}

std::string word(std::mt19937& rng, size_t n, const char* alphabet, size_t k)
{
	std::string s;
	for (size_t i = 0; i < n; ++i)
		s += alphabet[rng() % k];
	return s;
}

// The corpus of one flow: a third each of HTTP-like text, random bytes and base64-like text.
bytes corpus(std::mt19937& rng, uint32_t flow)
{
	bytes c;
	const size_t total = size_t(segments_per_flow) * segment_bytes;
	static const char* const words[] = {"GET", "/index.html", "HTTP/1.1", "Host:", "Accept:", "text/html",
	                                    "Content-Length:", "gzip", "keep-alive", "Mozilla/5.0", "\r\n"};
	while (c.size() < total) {
		const uint32_t kind = (flow + uint32_t(c.size() / 4096)) % 3;
		if (kind == 0) {
			const std::string w = words[rng() % 11];
			c.insert(c.end(), w.begin(), w.end());
			c.push_back(' ');
		} else if (kind == 1) {
			for (int i = 0; i < 64; ++i)
				c.push_back(uint8_t(rng()));
		} else {
			static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
			const std::string w = word(rng, 64, b64, 64);
			c.insert(c.end(), w.begin(), w.end());
		}
	}
	c.resize(total);
	return c;
}

struct packet_ref {
	bytes frame;
	packet::parsed p;
	uint32_t flow;
};

// Runs pass() until `min_seconds` have passed; returns Gbit/s of payload.
template <class Pass>
double measure(double min_seconds, uint64_t bytes_per_pass, Pass&& pass)
{
	pass();  // warm-up
	uint64_t total = 0;
	const auto t0 = clock_type::now();
	double s = 0;
	do {
		pass();
		total += bytes_per_pass;
		s = seconds_since(t0);
	} while (s < min_seconds);
	return double(total) * 8 / s / 1e9;
}

bool run_case(const char* name, uint32_t patterns, bool tcp, double min_seconds)
{
	std::mt19937 rng(patterns * 2 + tcp);
	// Patterns: 10-16 random lower-case letters from q..z, which the corpus's words never spell out.
	std::vector<std::string> pats;
	std::string text;
	for (uint32_t i = 0; i < patterns; ++i) {
		pats.push_back(word(rng, 10 + rng() % 7, "qrstuvwxyz", 10));
		text += std::string("drop ") + (tcp ? "tcp" : "udp") + " content \"" + pats.back() + "\"\n";
	}
	text += tcp ? "allow tcp\n" : "allow udp\n";
	rules::parse_options o;
	o.services_file = "";
	const auto t_parse = clock_type::now();
	auto pr = rules::parse_string(text, "bench.rules", o);
	if (!pr.errors.empty()) {
		std::fprintf(stderr, "bench-inspect: %s\n", rules::format(pr.errors[0]).c_str());
		return false;
	}
	const auto t_build = clock_type::now();
	auto built = inspect::database::build(*pr.rules);
	if (!built.db) {
		std::fprintf(stderr, "bench-inspect: %s\n", built.error.c_str());
		return false;
	}
	const double build_s = seconds_since(t_build);
	inspect::scan_config cfg;
	cfg.budget = 1u << 30;
	cfg.max_streams = 2 * flows;
	auto sc = inspect::scratch::create(*built.db, cfg);
	if (!sc.s) {
		std::fprintf(stderr, "bench-inspect: %s\n", sc.error.c_str());
		return false;
	}

	// The baseline's database: the same expressions, flags and ids.
	std::vector<std::string> exprs;
	std::vector<const char*> ep;
	std::vector<unsigned> flags, ids;
	for (uint32_t i = 0; i < patterns; ++i)
		exprs.push_back(inspect::literal_expression(pats[i]));
	for (uint32_t i = 0; i < patterns; ++i) {
		ep.push_back(exprs[i].c_str());
		flags.push_back(HS_FLAG_SINGLEMATCH);
		ids.push_back(i);
	}
	hs_database_t* bdb = nullptr;
	hs_compile_error_t* err = nullptr;
	if (hs_compile_multi(ep.data(), flags.data(), ids.data(), patterns, tcp ? HS_MODE_STREAM : HS_MODE_BLOCK, nullptr,
	                     &bdb, &err) != HS_SUCCESS) {
		std::fprintf(stderr, "bench-inspect: baseline compile: %s\n", err->message);
		hs_free_compile_error(err);
		return false;
	}
	hs_scratch_t* bs = nullptr;
	hs_alloc_scratch(bdb, &bs);
	std::vector<hs_stream_t*> bstreams(flows, nullptr);
	if (tcp)
		for (auto& s : bstreams)
			hs_open_stream(bdb, 0, &s);

	// Frames: each flow's SYN, then its segments interleaved round-robin across flows.
	std::vector<packet_ref> syns, pkts;
	uint64_t payload_bytes = 0;
	for (uint32_t f = 0; f < flows; ++f) {
		const bytes c = corpus(rng, f);
		packet_ref s{frame(tcp, f, 999, nullptr, 0, 0x02), {}, f};
		syns.push_back(std::move(s));
		for (uint32_t k = 0; k < segments_per_flow; ++k) {
			packet_ref r{frame(tcp, f, 1000 + k * segment_bytes, c.data() + size_t(k) * segment_bytes, segment_bytes), {}, f};
			pkts.push_back(std::move(r));
		}
	}
	std::vector<packet_ref> order;
	for (uint32_t k = 0; k < segments_per_flow; ++k)
		for (uint32_t f = 0; f < flows; ++f)
			order.push_back(std::move(pkts[size_t(f) * segments_per_flow + k]));
	for (auto* v : {&syns, &order})
		for (auto& r : *v) {
			packet::parse(r.frame.data(), uint32_t(r.frame.size()), r.p);
			if (!r.p.ok()) {
				std::fprintf(stderr, "bench-inspect: frame does not parse\n");
				return false;
			}
			payload_bytes += r.p.payload_length;
		}

	inspect::flow_streams fs(flows + 1);
	uint64_t decided = 0;
	auto ours = [&] {
		for (uint32_t f = 0; f < flows; ++f) {
			// Every flow is a candidate of every payload rule: first = rule 0, limit = the final allow.
			fs.begin(*sc.s, f + 1, inspect::plan_for(0, patterns), syns[f].p, rules::direction::out);
			fs.scan(*sc.s, f + 1, syns[f].p, syns[f].frame.data(), true);
		}
		for (const auto& r : order)
			decided += fs.scan(*sc.s, r.flow + 1, r.p, r.frame.data(), true).st == inspect::state::matched;
		for (uint32_t f = 0; f < flows; ++f)
			fs.end(*sc.s, f + 1);
	};
	uint64_t baseline_matches = 0;
	auto on_match = [](unsigned, unsigned long long, unsigned long long, unsigned, void* ctx) -> int {
		++*static_cast<uint64_t*>(ctx);
		return 0;
	};
	auto baseline = [&] {
		for (const auto& r : order) {
			const char* data = reinterpret_cast<const char*>(r.frame.data() + r.p.payload_offset);
			if (tcp)
				hs_scan_stream(bstreams[r.flow], data, r.p.payload_length, 0, bs, on_match, &baseline_matches);
			else
				hs_scan(bdb, data, r.p.payload_length, 0, bs, on_match, &baseline_matches);
		}
		if (tcp)
			for (auto* s : bstreams)
				hs_reset_stream(s, 0, nullptr, nullptr, nullptr);
	};
	const double ours_gbps = measure(min_seconds, payload_bytes, ours);
	const double base_gbps = measure(min_seconds, payload_bytes, baseline);
	bench::json_line()
	    .text("bench", "inspect")
	    .text("case", name)
	    .integer("patterns", patterns)
	    .text("mode", tcp ? "stream" : "block")
	    .fixed("ours_gbps", ours_gbps, 3)
	    .text("baseline", tcp ? "hs_scan_stream" : "hs_scan")
	    .fixed("baseline_gbps", base_gbps, 3)
	    .fixed("ratio", ours_gbps / base_gbps, 3)
	    .integer("db_bytes", built.db->memory_bytes())
	    .integer("stream_bytes", built.db->stream_state_bytes())
	    .fixed("compile_s", build_s, 3)
	    .integer("matches", decided + baseline_matches)
	    .print();
	(void)t_parse;
	for (auto* s : bstreams)
		if (s)
			hs_close_stream(s, nullptr, nullptr, nullptr);
	hs_free_scratch(bs);
	hs_free_database(bdb);
	return true;
}

} // namespace

int main(int argc, char** argv)
{
	const double min_seconds = argc > 1 ? std::atof(argv[1]) : 0.4;
	bool ok = true;
	ok &= run_case("10_patterns", 10, true, min_seconds);
	ok &= run_case("1k_patterns", 1000, true, min_seconds);
	ok &= run_case("10k_patterns", 10000, true, min_seconds);
	ok &= run_case("1k_patterns_udp", 1000, false, min_seconds);
	return ok ? 0 : 1;
}
