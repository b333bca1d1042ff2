// bench-sets: our address sets (lib/sets/prefix_set.h) against DPDK's rte_lpm (IPv4) and rte_lpm6 (IPv6)
// holding the same prefixes, in the same process, on one core. Prints one JSON object per (case, lookup
// method) on stdout; notes go to stderr.
//
// Cases: ipv4, 250K (--full: 1M) random IPv4 prefixes, lengths drawn like a routing table's (most /24, then
// /22-/23, /20-/21, /16-/19, a few shorter down to /8 and some /25-/32); ipv6, 100K random IPv6
// prefixes under 2000::/3 (/32 and /48 most, /16-/64, some /128); ipv6_2a00, the same all under
// 2a00::/12 (a European feed: every prefix shares its first 12 bits). Fixed seed.
//
// Both sides get the same prefixes: ours as ranges (prefix -> range, normalize, build: all in its build
// time), rte_lpm/rte_lpm6 as rules with next hop 1 (create + every add: its build time). Both are asked
// the same query stream: half random addresses (uniform over the space the prefixes were drawn from),
// half addresses inside a random prefix, shuffled. Ours takes host-order addresses (as our parsed keys
// hold them), rte_lpm6 the 16 network-order bytes (as a packet holds them).
//
// Lookup methods, each ours against a baseline: one address at a time (contains vs rte_lpm_lookup /
// rte_lpm6_lookup, in a loop), and bursts of --burst (contains_burst vs rte_lpm_lookup_bulk and
// rte_lpm_lookupx4, l3fwd's SSE path / rte_lpm6_lookup_bulk_func). Timed passes are interleaved in
// pairs (ours twice, the baseline twice ...): the median of the second of each pair is the rate (warm),
// of the first the cold rate (the other side's tables just swept the caches). Before timing, every
// query's answer is compared: ours single against rte's single, our burst against our single, rte's bulk
// and x4 against rte's single (mismatches, must be 0; exit status 1 otherwise).
//
// Memory: ours is memory_bytes(); rte's is the rte_malloc heap growth across create (tbl24, tbl8 groups
// and rule table as configured; for rte_lpm that is 2^24*4 + tbl8s*1024 + rules*8). Each is sized to
// need: rte_lpm's tbl8 groups = the /24s holding a longer prefix, rte_lpm6's = the distinct tree nodes
// below its 24-bit first level, counted from the prefixes.
//
// Cases set_load_under_load and set_add (live.cc): a 1M-entry file set of a running rule set replaced
// with runtime::set_load, and changed with runtime::set_add, while a worker on a second lcore forwards
// established flows, against pushing the whole rule set again; they run together, once.
//
// Cases add_to_scan and per_source_limit (dynamic.cc): established flows forwarded while a scan of 50K
// sources fills a dynamic set through `add-to`, against the same flows without the scan; and a
// `limit per-source` holding one SYN flooder to its rate while another source's connections all pass,
// against a plain `limit` shared by every source.
//
// Pages: under --no-huge the EAL's memory (where rte_lpm lives) is 4 KiB pages; by default the process
// runs with transparent huge pages disabled (PR_SET_THP_DISABLE) so ours gets 4 KiB pages too.
// --pages thp lets ours have huge pages (rte_lpm would have them too with hugepages configured).
#include <sys/prctl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_lpm.h>
#include <rte_lpm6.h>
#include <rte_malloc.h>

#include "common/args.h"
#include "common/eal.h"
#include "common/host.h"
#include "common/json.h"
#include "common/stats.h"
#include "common/timing.h"
#include "dynamic.h"
#include "live.h"
#include "rules/match.h"
#include "sets/prefix_set.h"

using namespace portcullis;
using bench::seconds_since;
using sets::prefix_set4;
using sets::prefix_set6;

namespace {

struct options {
	size_t prefixes4 = 250000;  // --full: 1M (rte_lpm then takes a minute or two to build)
	size_t prefixes6 = 100000;
	size_t queries = 1000000;
	uint32_t burst = 32;
	int passes = 7;       // timed lookup passes per side (each after an untimed warm-up pass)
	int build_reps = 3;   // builds per side (median)
	uint64_t seed = 1;
	bool thp = false;
	std::vector<std::string> cases = {"ipv4",    "ipv6",        "ipv6_2a00",       "set_load_under_load",
	                                  "set_add", "add_to_scan", "per_source_limit"};
	bench::live::options live;
	bench::dynamic::options dyn;
};

void usage()
{
	std::fprintf(stderr,
	             "usage: bench-sets [--cases ipv4,ipv6,ipv6_2a00,set_load_under_load,set_add,add_to_scan,\n"
	             "                  per_source_limit] [--prefixes4 N] [--prefixes6 N] [--queries N] [--burst N]\n"
	             "                  [--passes N] [--build-reps N] [--seed N] [--pages 4k|thp] [--feed-entries N]\n"
	             "                  [--loads N] [--pushes N] [--rules N] [--adds N] [--scan-sources N]\n"
	             "                  [--scan-share F] [--scan-rounds N] [--scan-window S] [--fill-max S]\n"
	             "                  [--flood-pps N] [--innocent-cps N] [--limit-window S] [--full]\n"
	             "  default: 250K IPv4 and 100K IPv6 prefixes, 1M queries, bursts of 32, 7 lookup passes and 3 builds\n"
	             "  a side; a 1M-entry feed loaded 5 times against 3 rule pushes, 200 set adds; a scan of 50K\n"
	             "  sources at 3%% of the packets, 9 rounds of 0.2 s windows a side; a 500K SYN/s flood against a\n"
	             "  per-source limit and a shared one, 1.5 s each; about 40 s.\n"
	             "  --full: 1M IPv4 prefixes, 11 passes and 5 builds (rte_lpm built once: its add is quadratic in\n"
	             "  the prefixes of one length, 1-3 minutes for 1M), 10 loads and 6 pushes, 6 scan rounds of 1 s,\n"
	             "  5 s limit windows; about 3 minutes.\n");
}

bool parse_args(int argc, char** argv, options& o)
{
	for (bench::arg_reader a(argc, argv, usage); a.next();) {
		if (a.option("--cases"))
			o.cases = bench::split_list(a.value());
		else if (a.option("--prefixes4"))
			o.prefixes4 = size_t(std::max(1LL, std::atoll(a.value())));
		else if (a.option("--prefixes6"))
			o.prefixes6 = size_t(std::max(1LL, std::atoll(a.value())));
		else if (a.option("--queries"))
			o.queries = size_t(std::max(64LL, std::atoll(a.value())));
		else if (a.option("--burst"))
			o.burst = uint32_t(std::clamp(std::atoi(a.value()), 4, 256)) & ~3u;  // rte_lpm_lookupx4 takes fours
		else if (a.option("--passes"))
			o.passes = std::max(1, std::atoi(a.value()));
		else if (a.option("--build-reps"))
			o.build_reps = std::max(1, std::atoi(a.value()));
		else if (a.option("--seed"))
			o.seed = std::strtoull(a.value(), nullptr, 10);
		else if (a.option("--pages"))
			o.thp = std::string(a.value()) == "thp";
		else if (a.option("--feed-entries"))
			o.live.feed_entries = size_t(std::max(1000LL, std::atoll(a.value())));
		else if (a.option("--loads"))
			o.live.loads = uint32_t(std::max(1, std::atoi(a.value())));
		else if (a.option("--pushes"))
			o.live.pushes = uint32_t(std::max(1, std::atoi(a.value())));
		else if (a.option("--rules"))
			o.live.filler_rules = uint32_t(std::max(0, std::atoi(a.value())));
		else if (a.option("--adds"))
			o.live.adds = uint32_t(std::max(1, std::atoi(a.value())));
		else if (a.option("--scan-sources"))
			o.dyn.scan_sources = uint32_t(std::clamp(std::atoll(a.value()), 1LL, 5'000'000LL));
		else if (a.option("--scan-share"))
			o.dyn.scan_share = std::clamp(std::atof(a.value()), 0.001, 0.5);
		else if (a.option("--scan-rounds"))
			o.dyn.rounds = uint32_t(std::max(1, std::atoi(a.value())));
		else if (a.option("--scan-window"))
			o.dyn.window_s = std::max(0.05, std::atof(a.value()));
		else if (a.option("--fill-max"))
			o.dyn.fill_max_s = std::max(0.1, std::atof(a.value()));
		else if (a.option("--flood-pps"))
			o.dyn.flood_pps = std::max(1.0, std::atof(a.value()));
		else if (a.option("--innocent-cps"))
			o.dyn.innocent_cps = std::max(0.1, std::atof(a.value()));
		else if (a.option("--limit-window"))
			o.dyn.limit_window_s = std::max(0.1, std::atof(a.value()));
		else if (a.flag("--full"))
			o.prefixes4 = 1000000, o.passes = 11, o.build_reps = 5, o.live.loads = 10, o.live.pushes = 6,
			o.dyn.rounds = 6, o.dyn.window_s = 1.0, o.dyn.limit_window_s = 5.0;
		else {
			usage();
			return false;
		}
	}
	// add_to_scan holds each of its two captures in mbufs of 384 bytes.
	if (double(o.dyn.scan_sources) / o.dyn.scan_share > 8e6) {
		std::fprintf(stderr, "bench-sets: --scan-sources / --scan-share above 8M packets a capture (6 GB of mbufs)\n");
		return false;
	}
	return true;
}

size_t heap_allocated()
{
	rte_malloc_socket_stats st{};
	rte_malloc_get_socket_stats(int(rte_socket_id()), &st);
	return st.heap_allocsz_bytes;
}

template <class T>
struct prefix {
	T addr;  // host order
	uint8_t len;
};

template <class T>
value_range<T> range_of(const prefix<T>& p)
{
	constexpr unsigned w = sizeof(T) * 8;
	const T host = p.len == 0 ? T(~T(0)) : p.len >= w ? T(0) : T(T(~T(0)) >> p.len);
	return {T(p.addr & ~host), T(p.addr | host)};
}

template <class T>
T random_in(const prefix<T>& p, std::mt19937_64& rng)
{
	const value_range<T> r = range_of(p);
	const T rnd = sizeof(T) > 8 ? T((T(rng()) << 64) | T(rng())) : T(rng());
	return T(r.lo | (rnd & T(r.hi - r.lo)));
}

// Lengths by weight: a length is drawn with probability weight / sum.
struct length_weight {
	unsigned lo, hi;  // uniform over [lo, hi]
	double weight;
};

template <class T>
std::vector<prefix<T>> random_prefixes(size_t n, const prefix<T>& under, const std::vector<length_weight>& lengths,
                                       std::mt19937_64& rng)
{
	std::vector<double> w;
	for (const auto& l : lengths)
		w.push_back(l.weight);
	std::discrete_distribution<size_t> pick(w.begin(), w.end());
	std::vector<prefix<T>> out;
	out.reserve(n);
	for (size_t i = 0; i < n; ++i) {
		const auto& l = lengths[pick(rng)];
		const auto len = uint8_t(std::max<unsigned>(under.len, l.lo + unsigned(rng() % (l.hi - l.lo + 1))));
		const value_range<T> r = range_of(prefix<T>{random_in(under, rng), len});
		out.push_back({r.lo, len});
	}
	return out;
}

// Half random addresses in `space`, half inside a random prefix; shuffled.
template <class T>
std::vector<T> make_queries(size_t n, const std::vector<prefix<T>>& prefixes, const prefix<T>& space, std::mt19937_64& rng)
{
	std::vector<T> q;
	q.reserve(n);
	for (size_t i = 0; i < n; ++i)
		q.push_back(i % 2 ? random_in(space, rng) : random_in(prefixes[rng() % prefixes.size()], rng));
	std::shuffle(q.begin(), q.end(), rng);
	return q;
}

template <class T>
std::vector<value_range<T>> to_ranges(const std::vector<prefix<T>>& prefixes)
{
	std::vector<value_range<T>> r;
	r.reserve(prefixes.size());
	for (const auto& p : prefixes)
		r.push_back(range_of(p));
	normalize(r);
	return r;
}

void be_bytes(u128 v, uint8_t* out)
{
	for (int i = 15; i >= 0; --i, v >>= 8)
		out[i] = uint8_t(v);
}

// One lookup method's comparison, ready to print.
struct method_result {
	std::string ours, baseline;
	std::vector<double> ours_mpps, base_mpps;  // warm: the second of two passes in a row
	std::vector<double> ours_cold, base_cold;  // the first: right after the other side's passes
};

// Interleaved: ours twice, the baseline twice, ours twice ... Each pair's first pass starts with the
// other side's data in the caches (cold), the second with its own (warm, reported as the rate).
method_result compare(int passes, const char* ours, const char* baseline, const std::function<double()>& a,
                      const std::function<double()>& b)
{
	method_result m{ours, baseline, {}, {}, {}, {}};
	const auto s = bench::interleave(passes, {[&] {
		                                          m.ours_cold.push_back(a());
		                                          return a();
	                                          },
	                                          [&] {
		                                          m.base_cold.push_back(b());
		                                          return b();
	                                          }});
	m.ours_mpps = s[0];
	m.base_mpps = s[1];
	return m;
}

struct case_result {
	std::string name, family;
	size_t prefixes = 0, distinct_prefixes = 0, ranges = 0, queries = 0, hits = 0;
	unsigned bucket_bits = 0;
	std::vector<double> ours_build_ms, ours_normalize_ms, base_build_ms;
	size_t ours_bytes = 0, base_bytes = 0;
	size_t base_bytes_config = 0;  // rte_lpm: 2^24 * 4 + tbl8s * 256 * 4 + rules * 8
	uint32_t base_tbl8s = 0;
	int base_build_reps = 0;
	uint64_t mismatches = 0;
	std::vector<method_result> methods;
};

void print(const options& o, const case_result& c)
{
	const double ob = bench::median(c.ours_build_ms), bb = bench::median(c.base_build_ms);
	for (const auto& m : c.methods) {
		const double om = bench::median(m.ours_mpps), bm = bench::median(m.base_mpps);
		bench::json_line j;
		j.text("bench", "sets")
		    .text("case", c.name)
		    .text("family", c.family)
		    .integer("prefixes", c.prefixes)
		    .integer("distinct_prefixes", c.distinct_prefixes)
		    .integer("ranges", c.ranges)
		    .integer("queries", c.queries)
		    .fixed("hit_share", double(c.hits) / double(c.queries), 3)
		    .text("ours", m.ours)
		    .text("baseline", m.baseline)
		    .fixed("ours_mpps", om, 2)
		    .fixed("baseline_mpps", bm, 2)
		    .fixed("ratio", om / bm, 2)
		    .fixed("ours_spread", bench::min_max(m.ours_mpps).relative(), 3)
		    .fixed("baseline_spread", bench::min_max(m.base_mpps).relative(), 3)
		    .fixed("ours_cold_mpps", bench::median(m.ours_cold), 2)
		    .fixed("baseline_cold_mpps", bench::median(m.base_cold), 2)
		    .fixed("cold_ratio", bench::median(m.ours_cold) / bench::median(m.base_cold), 2)
		    .fixed("ours_build_ms", ob, 1)
		    .fixed("ours_normalize_ms", bench::median(c.ours_normalize_ms), 1)
		    .fixed("baseline_build_ms", bb, 1)
		    .fixed("build_ratio", ob / bb, 4)
		    .integer("baseline_build_reps", c.base_build_reps)
		    .integer("ours_bytes", c.ours_bytes)
		    .integer("baseline_bytes", c.base_bytes);
		if (c.base_bytes_config)
			j.integer("baseline_bytes_config", c.base_bytes_config);
		j.fixed("memory_ratio", double(c.ours_bytes) / double(c.base_bytes), 4)
		    .integer("baseline_tbl8s", c.base_tbl8s)
		    .integer("bucket_bits", c.bucket_bits)
		    .integer("burst", o.burst)
		    .integer("passes", o.passes)
		    .integer("mismatches", c.mismatches)
		    .text("pages", o.thp ? "thp" : "4k")
		    .text("machine", bench::machine())
		    .print();
	}
}

template <class T>
size_t count_distinct(const std::vector<prefix<T>>& p)
{
	std::vector<std::pair<T, uint8_t>> v;
	for (const auto& x : p)
		v.push_back({x.addr, x.len});
	std::sort(v.begin(), v.end());
	return size_t(std::unique(v.begin(), v.end()) - v.begin());
}

// ---- IPv4 ----

// rte_lpm's tbl8 groups: one per /24 that holds a prefix longer than /24.
uint32_t lpm_tbl8s_needed(const std::vector<prefix<uint32_t>>& prefixes)
{
	std::unordered_set<uint32_t> s;
	for (const auto& p : prefixes)
		if (p.len > 24)
			s.insert(p.addr >> 8);
	return uint32_t(s.size());
}

rte_lpm* build_lpm(const std::vector<prefix<uint32_t>>& prefixes, uint32_t tbl8s, int rep)
{
	rte_lpm_config cfg{};
	cfg.max_rules = uint32_t(prefixes.size());
	cfg.number_tbl8s = tbl8s;
	const std::string name = "bsets4_" + std::to_string(rep);
	rte_lpm* lpm = rte_lpm_create(name.c_str(), int(rte_socket_id()), &cfg);
	if (!lpm) {
		std::fprintf(stderr, "bench-sets: rte_lpm_create failed: %s\n", rte_strerror(rte_errno));
		std::exit(1);
	}
	for (const auto& p : prefixes)
		if (rte_lpm_add(lpm, p.addr, p.len, 1) != 0) {
			std::fprintf(stderr, "bench-sets: rte_lpm_add failed (tbl8s %u)\n", tbl8s);
			std::exit(1);
		}
	return lpm;
}

case_result run_ipv4(const options& o, uint64_t& sink)
{
	std::mt19937_64 rng(o.seed);
	// Shares like a BGP table's: /24 over half, /22-/23 a fifth, /16-/21 a tenth; shorter ones rare
	// (each covers much of the space), and /25-/32 as a blocklist's single hosts and small nets. 40% of
	// random addresses fall in the 1M set, 13% in the 250K one.
	const std::vector<length_weight> lengths = {{8, 8, 0.00001}, {9, 15, 0.0003}, {16, 16, 0.005}, {17, 19, 0.02},
	                                            {20, 21, 0.07}, {22, 23, 0.19}, {24, 24, 0.55}, {25, 31, 0.03},
	                                            {32, 32, 0.10}};
	const prefix<uint32_t> space{0, 0};
	const auto prefixes = random_prefixes<uint32_t>(o.prefixes4, space, lengths, rng);
	const auto queries = make_queries<uint32_t>(o.queries, prefixes, space, rng);

	case_result c;
	c.name = "ipv4";
	c.family = "ipv4";
	c.prefixes = prefixes.size();
	c.distinct_prefixes = count_distinct(prefixes);
	c.queries = queries.size();
	c.base_tbl8s = lpm_tbl8s_needed(prefixes) + 64;

	prefix_set4 ours;
	for (int rep = 0; rep < o.build_reps; ++rep) {
		const auto t0 = bench::clock_type::now();
		std::vector<value_range<uint32_t>> ranges = to_ranges(prefixes);
		const double normalize_s = seconds_since(t0);
		prefix_set4 s = prefix_set4::build(ranges);
		c.ours_build_ms.push_back(seconds_since(t0) * 1e3);
		c.ours_normalize_ms.push_back(normalize_s * 1e3);
		ours = std::move(s);
		c.ranges = ranges.size();
	}
	// rte_lpm keeps its rules in one array per length and scans a length's rules on every add: quadratic
	// in the /24s, about a minute or more for 1M prefixes. Built once past 300K prefixes, and not again
	// once a build has taken over 3 s (250K prefixes: 4.6 s a build on an EPYC VM, 13 s on a Xeon VM,
	// where three builds made the defaults take 75 s); baseline_build_reps says how many were made.
	const int base_reps_wanted = prefixes.size() > 300000 ? 1 : o.build_reps;
	rte_lpm* lpm = nullptr;
	for (int rep = 0; rep < base_reps_wanted; ++rep) {
		if (lpm)
			rte_lpm_free(lpm);
		const size_t before = heap_allocated();
		const auto t0 = bench::clock_type::now();
		lpm = build_lpm(prefixes, c.base_tbl8s, rep);
		c.base_build_ms.push_back(seconds_since(t0) * 1e3);
		c.base_bytes = heap_allocated() - before;
		if (c.base_build_ms.back() > 3000)
			break;
	}
	c.base_build_reps = int(c.base_build_ms.size());
	c.ours_bytes = ours.memory_bytes();
	c.bucket_bits = ours.bucket_bits();
	c.base_bytes_config = (size_t(1) << 24) * 4 + size_t(c.base_tbl8s) * 256 * 4 + prefixes.size() * sizeof(uint64_t);

	// Agreement, untimed.
	const size_t n = queries.size();
	std::vector<uint8_t> ours_one(n), ours_burst(n);
	std::vector<uint32_t> hops(n);
	ours.contains_burst(queries.data(), uint32_t(n), ours_burst.data());
	rte_lpm_lookup_bulk(lpm, queries.data(), hops.data(), unsigned(n));
	for (size_t i = 0; i < n; ++i) {
		uint32_t nh = 0;
		const bool base = rte_lpm_lookup(lpm, queries[i], &nh) == 0;
		ours_one[i] = ours.contains(queries[i]);
		c.hits += ours_one[i];
		const bool bulk = (hops[i] & RTE_LPM_LOOKUP_SUCCESS) != 0;
		c.mismatches += (ours_one[i] != base) + (ours_burst[i] != ours_one[i]) + (bulk != base);
	}
	for (size_t i = 0; i + 4 <= n; i += 4) {
		uint32_t hop[4];
		rte_lpm_lookupx4(lpm, _mm_loadu_si128(reinterpret_cast<const __m128i*>(&queries[i])), hop, 0);
		for (int k = 0; k < 4; ++k)
			c.mismatches += (hop[k] != 0) != bool(ours_one[i + k]);
	}

	const uint32_t burst = o.burst;
	auto rate = [n](double secs) { return double(n) / secs / 1e6; };
	auto ours_single = [&] {
		uint64_t hits = 0;
		const double s = bench::time_once([&] {
			for (size_t i = 0; i < n; ++i)
				hits += ours.contains(queries[i]);
		});
		sink += hits;
		return rate(s);
	};
	auto base_single = [&] {
		uint64_t hits = 0;
		const double s = bench::time_once([&] {
			for (size_t i = 0; i < n; ++i) {
				uint32_t nh;
				hits += rte_lpm_lookup(lpm, queries[i], &nh) == 0;
			}
		});
		sink += hits;
		return rate(s);
	};
	auto ours_bursts = [&] {
		uint64_t hits = 0;
		uint8_t out[256];
		const double s = bench::time_bursts(n, burst, [&](size_t first, uint32_t m) {
			ours.contains_burst(&queries[first], m, out);
			for (uint32_t k = 0; k < m; ++k)
				hits += out[k];
		});
		sink += hits;
		return rate(s);
	};
	auto base_bulk = [&] {
		uint64_t hits = 0;
		uint32_t nh[256];
		const double s = bench::time_bursts(n, burst, [&](size_t first, uint32_t m) {
			rte_lpm_lookup_bulk(lpm, &queries[first], nh, m);
			for (uint32_t k = 0; k < m; ++k)
				hits += (nh[k] & RTE_LPM_LOOKUP_SUCCESS) != 0;
		});
		sink += hits;
		return rate(s);
	};
	auto base_x4 = [&] {
		uint64_t hits = 0;
		uint32_t hop[4];
		const double s = bench::time_once([&] {
			size_t i = 0;
			for (; i + 4 <= n; i += 4) {
				rte_lpm_lookupx4(lpm, _mm_loadu_si128(reinterpret_cast<const __m128i*>(&queries[i])), hop, 0);
				hits += (hop[0] != 0) + (hop[1] != 0) + (hop[2] != 0) + (hop[3] != 0);
			}
			for (uint32_t nh; i < n; ++i)
				hits += rte_lpm_lookup(lpm, queries[i], &nh) == 0;
		});
		sink += hits;
		return rate(s);
	};
	c.methods.push_back(compare(o.passes, "contains", "rte_lpm_lookup", ours_single, base_single));
	c.methods.push_back(compare(o.passes, "contains_burst", "rte_lpm_lookup_bulk", ours_bursts, base_bulk));
	c.methods.push_back(compare(o.passes, "contains_burst", "rte_lpm_lookupx4", ours_bursts, base_x4));
	rte_lpm_free(lpm);
	return c;
}

// ---- IPv6 ----

// rte_lpm6's tbl8 groups: its first level covers 24 bits, each further one 8; a prefix of length L
// needs a group below every level it goes past, shared by all prefixes with the same leading bits.
uint32_t lpm6_tbl8s_needed(const std::vector<prefix<u128>>& prefixes)
{
	struct key_hash {
		size_t operator()(const std::pair<u128, unsigned>& k) const
		{
			return std::hash<uint64_t>()(uint64_t(k.first >> 64) * 31 + uint64_t(k.first) * 7 + k.second);
		}
	};
	std::unordered_set<std::pair<u128, unsigned>, key_hash> nodes;
	for (const auto& p : prefixes)
		for (unsigned level = 24; level < p.len; level += 8)
			nodes.insert({p.addr >> (128 - level), level});
	return uint32_t(nodes.size());
}

rte_lpm6* build_lpm6(const std::vector<prefix<u128>>& prefixes, const std::vector<std::array<uint8_t, 16>>& bytes,
                     uint32_t tbl8s, int rep, const std::string& tag)
{
	rte_lpm6_config cfg{};
	cfg.max_rules = uint32_t(prefixes.size());
	cfg.number_tbl8s = tbl8s;
	const std::string name = "bsets6_" + tag + std::to_string(rep);
	rte_lpm6* lpm = rte_lpm6_create(name.c_str(), int(rte_socket_id()), &cfg);
	if (!lpm) {
		std::fprintf(stderr, "bench-sets: rte_lpm6_create failed: %s\n", rte_strerror(rte_errno));
		std::exit(1);
	}
	for (size_t i = 0; i < prefixes.size(); ++i)
		if (rte_lpm6_add(lpm, bytes[i].data(), prefixes[i].len, 1) != 0) {
			std::fprintf(stderr, "bench-sets: rte_lpm6_add failed (tbl8s %u)\n", tbl8s);
			std::exit(1);
		}
	return lpm;
}

case_result run_ipv6(const options& o, const std::string& name, const prefix<u128>& space, uint64_t& sink)
{
	std::mt19937_64 rng(o.seed + 6);
	// Under a /12, /16-/27 would cover it whole (a few thousand /16s fill its sixteen): there the
	// shortest are /28, as RIPE's largest allocations.
	const unsigned shortest = space.len >= 12 ? 28 : 16;
	const std::vector<length_weight> lengths = {{shortest, 31, 0.05}, {32, 32, 0.20}, {33, 47, 0.15}, {48, 48, 0.35},
	                                            {49, 63, 0.10}, {64, 64, 0.10}, {128, 128, 0.05}};
	const auto prefixes = random_prefixes<u128>(o.prefixes6, space, lengths, rng);
	const auto queries = make_queries<u128>(o.queries, prefixes, space, rng);
	std::vector<std::array<uint8_t, 16>> prefix_bytes(prefixes.size());
	for (size_t i = 0; i < prefixes.size(); ++i)
		be_bytes(prefixes[i].addr, prefix_bytes[i].data());
	const size_t n = queries.size();
	std::vector<uint8_t> query_bytes(n * 16);
	for (size_t i = 0; i < n; ++i)
		be_bytes(queries[i], &query_bytes[i * 16]);
	auto qb = reinterpret_cast<uint8_t(*)[16]>(query_bytes.data());

	case_result c;
	c.name = name;
	c.family = "ipv6";
	c.prefixes = prefixes.size();
	c.distinct_prefixes = count_distinct(prefixes);
	c.queries = n;
	c.base_tbl8s = lpm6_tbl8s_needed(prefixes) + 64;

	prefix_set6 ours;
	rte_lpm6* lpm = nullptr;
	for (int rep = 0; rep < o.build_reps; ++rep) {
		auto t0 = bench::clock_type::now();
		std::vector<value_range<u128>> ranges = to_ranges(prefixes);
		const double normalize_s = seconds_since(t0);
		prefix_set6 s = prefix_set6::build(ranges);
		c.ours_build_ms.push_back(seconds_since(t0) * 1e3);
		c.ours_normalize_ms.push_back(normalize_s * 1e3);
		ours = std::move(s);
		c.ranges = ranges.size();

		if (lpm)
			rte_lpm6_free(lpm);
		const size_t before = heap_allocated();
		t0 = bench::clock_type::now();
		lpm = build_lpm6(prefixes, prefix_bytes, c.base_tbl8s, rep, name);
		c.base_build_ms.push_back(seconds_since(t0) * 1e3);
		c.base_bytes = heap_allocated() - before;
	}
	c.base_build_reps = o.build_reps;
	c.ours_bytes = ours.memory_bytes();
	c.bucket_bits = ours.bucket_bits();

	std::vector<uint8_t> ours_burst(n);
	std::vector<int32_t> hops(n);
	ours.contains_burst(queries.data(), uint32_t(n), ours_burst.data());
	rte_lpm6_lookup_bulk_func(lpm, qb, hops.data(), unsigned(n));
	for (size_t i = 0; i < n; ++i) {
		uint32_t nh = 0;
		const bool base = rte_lpm6_lookup(lpm, qb[i], &nh) == 0;
		const bool one = ours.contains(queries[i]);
		c.hits += one;
		c.mismatches += (one != base) + (ours_burst[i] != one) + ((hops[i] >= 0) != base);
	}

	const uint32_t burst = o.burst;
	auto rate = [n](double secs) { return double(n) / secs / 1e6; };
	auto ours_single = [&] {
		uint64_t hits = 0;
		const double s = bench::time_once([&] {
			for (size_t i = 0; i < n; ++i)
				hits += ours.contains(queries[i]);
		});
		sink += hits;
		return rate(s);
	};
	auto base_single = [&] {
		uint64_t hits = 0;
		const double s = bench::time_once([&] {
			for (size_t i = 0; i < n; ++i) {
				uint32_t nh;
				hits += rte_lpm6_lookup(lpm, qb[i], &nh) == 0;
			}
		});
		sink += hits;
		return rate(s);
	};
	auto ours_bursts = [&] {
		uint64_t hits = 0;
		uint8_t out[256];
		const double s = bench::time_bursts(n, burst, [&](size_t first, uint32_t m) {
			ours.contains_burst(&queries[first], m, out);
			for (uint32_t k = 0; k < m; ++k)
				hits += out[k];
		});
		sink += hits;
		return rate(s);
	};
	auto base_bulk = [&] {
		uint64_t hits = 0;
		int32_t nh[256];
		const double s = bench::time_bursts(n, burst, [&](size_t first, uint32_t m) {
			rte_lpm6_lookup_bulk_func(lpm, qb + first, nh, m);
			for (uint32_t k = 0; k < m; ++k)
				hits += nh[k] >= 0;
		});
		sink += hits;
		return rate(s);
	};
	c.methods.push_back(compare(o.passes, "contains", "rte_lpm6_lookup", ours_single, base_single));
	c.methods.push_back(compare(o.passes, "contains_burst", "rte_lpm6_lookup_bulk_func", ours_bursts, base_bulk));
	rte_lpm6_free(lpm);
	return c;
}

} // namespace

int main(int argc, char** argv)
{
	options o;
	if (!parse_args(argc, argv, o))
		return 2;
	if (!o.thp && prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0)
		std::fprintf(stderr, "bench-sets: cannot disable transparent huge pages; ours may use them\n");

	static const std::unordered_set<std::string> known = {"ipv4",    "ipv6",        "ipv6_2a00",       "set_load_under_load",
	                                                      "set_add", "add_to_scan", "per_source_limit"};
	for (const std::string& name : o.cases) {
		if (!known.count(name)) {
			std::fprintf(stderr, "bench-sets: unknown case '%s'\n", name.c_str());
			return 2;
		}
		o.live.run_load = o.live.run_load || name == "set_load_under_load";
		o.live.run_add = o.live.run_add || name == "set_add";
		o.dyn.run_scan = o.dyn.run_scan || name == "add_to_scan";
		o.dyn.run_limit = o.dyn.run_limit || name == "per_source_limit";
	}
	o.live.seed = o.seed;
	o.dyn.seed = o.seed;

	bench::eal_config eal;
	eal.program = "bench-sets";
	eal.memory_mb = 2048;  // rte_lpm: 64 MB tbl24 + ~100 MB of tbl8s; rte_lpm6: a few hundred MB of tbl8s
	eal.log_level = "warning";
	bench::live::environment live_env;
	const bool live = o.live.run_load || o.live.run_add;
	if (live) {
		live_env = bench::live::prepare();
		eal.lcores = live_env.lcores;
		eal.vdevs = live_env.vdevs;
	}
	bench::dynamic::environment dyn_env;
	if (o.dyn.run_scan || o.dyn.run_limit) {
		eal.lcores = "0-1";
		dyn_env = bench::dynamic::prepare(o.dyn);
		eal.vdevs.insert(eal.vdevs.end(), dyn_env.vdevs.begin(), dyn_env.vdevs.end());
		eal.memory_mb += dyn_env.memory_mb;
	}
	if (!bench::start_eal(eal)) {
		if (live)
			unlink(live_env.capture.c_str());
		dyn_env.remove_captures();
		return 1;
	}

	uint64_t sink = 0;
	bool ok = true;
	bool live_done = false;
	std::unordered_set<std::string> done;
	for (const std::string& name : o.cases) {
		if (!done.insert(name).second)
			continue;
		const auto t0 = bench::clock_type::now();
		if (name == "set_load_under_load" || name == "set_add") {
			if (live_done)  // both cases come from one run
				continue;
			live_done = true;
			ok = bench::live::run(o.live, live_env) && ok;
			std::fprintf(stderr, "bench-sets: set_load_under_load/set_add in %.1f s\n", seconds_since(t0));
			continue;
		}
		if (name == "add_to_scan" || name == "per_source_limit") {
			ok = (name == "add_to_scan" ? bench::dynamic::run_add_to_scan(o.dyn, dyn_env)
			                            : bench::dynamic::run_per_source_limit(o.dyn)) &&
			     ok;
			std::fprintf(stderr, "bench-sets: %s in %.1f s\n", name.c_str(), seconds_since(t0));
			continue;
		}
		case_result c;
		if (name == "ipv4")
			c = run_ipv4(o, sink);
		else if (name == "ipv6")
			c = run_ipv6(o, name, prefix<u128>{u128(0x2) << 124, 3}, sink);
		else
			c = run_ipv6(o, name, prefix<u128>{u128(0x2a00) << 112, 12}, sink);
		print(o, c);
		ok = ok && c.mismatches == 0;
		std::fprintf(stderr, "bench-sets: %s in %.1f s\n", name.c_str(), seconds_since(t0));
	}
	std::fprintf(stderr, "bench-sets: done (checksum %lu)\n", (unsigned long)sink);
	rte_eal_cleanup();
	return ok ? 0 : 1;
}
