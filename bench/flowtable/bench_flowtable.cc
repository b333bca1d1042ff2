// bench-flowtable: our flow table (lib/flow/flow_table.h) against DPDK's rte_hash on the same keys, in the
// same process, on one core. Prints one JSON object per (case, baseline) on stdout; notes go to stderr.
//
// Keys are canonical 40-byte flow keys (flow_key.h) of random, distinct IPv4 5-tuples. Both tables are
// sized for --flows entries and filled in two steps, to 50% and then to 90% of that; after each step we
// time lookups of present keys (hit), of absent keys (miss), and of present keys followed by the write a
// worker does to the flow's state (hit_update). Lookups go in bursts of --burst (32): our lookup_burst
// against rte_hash_lookup_bulk_data. The timed work is key -> answer on both sides: ours includes
// hash_key() and the bucket prefetch the worker issues as each key is hashed, rte_hash computes its own
// CRC32 hash and prefetches its buckets inside the call.
//
// Baselines (--baselines): rte_hash_lf (RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF: lock-free readers and a
// writer, the fair comparison for a table the control thread expires while the worker reads it),
// rte_hash_lf_ext (the same plus extendable buckets, so inserts cannot fail), rte_hash (no flags: no
// read/write concurrency at all, the fastest rte_hash can be, not usable for our threading).
//
// Fairness notes. rte_hash stores the key and a data pointer; a firewall built on it keeps the flow state
// elsewhere (here: an array of flow_entry indexed by the stored value) and pays one more cache miss to
// reach it; the hit_update case includes that. Page size matters at a million flows: our table asks for
// transparent huge pages (MADV_HUGEPAGE), while EAL memory under --no-huge is a memfd that gets 4 KiB
// pages (shmem THP is off on a default kernel), so by default (--pages 4k) the process runs with THP
// disabled (PR_SET_THP_DISABLE) and both tables use 4 KiB pages; --pages thp lets ours have its huge
// pages (rte_hash keeps 4 KiB: with real hugepages it would get 2 MiB ones too). Timed passes are
// interleaved (ours, each baseline, ours ...), inserts in chunks of keys taken in turn, every rep builds
// fresh tables, and the median is reported.
#include <sys/mman.h>
#include <sys/prctl.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <unordered_set>
#include <vector>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include "common/args.h"
#include "common/eal.h"
#include "common/json.h"
#include "common/stats.h"
#include "common/timing.h"
#include "flow/flow_key.h"
#include "flow/flow_table.h"

using namespace portcullis;
using flow::flow_entry;
using flow::flow_key;
using bench::seconds_since;

namespace {

struct options {
	std::vector<uint32_t> flows = {1u << 20};  // each size is a run of every case; --full adds 10M
	uint32_t burst = 32;
	int reps = 3;
	int passes = 3;  // timed lookup passes per table per rep
	uint64_t seed = 1;
	bool thp = false;  // let our table (and the state array) have transparent huge pages
	std::vector<std::string> baselines = {"rte_hash_lf", "rte_hash"};
};

struct baseline_kind {
	const char* name;
	uint8_t flags;
};
constexpr baseline_kind baseline_kinds[] = {
	{"rte_hash_lf", RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF},
	{"rte_hash_lf_ext", RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_EXT_TABLE},
	{"rte_hash", 0},
};

void usage()
{
	std::fprintf(stderr,
	             "usage: bench-flowtable [--flows N[,N...]] [--full] [--burst N] [--reps N] [--passes N] [--seed N]\n"
	             "                       [--baselines rte_hash_lf,rte_hash_lf_ext,rte_hash] [--pages 4k|thp]\n"
	             "  default: 1048576 flows, bursts of 32, 3 reps of 3 passes, baselines rte_hash_lf,rte_hash,\n"
	             "  4 KiB pages for both tables (thp: ours gets transparent huge pages, rte_hash cannot here);\n"
	             "  about 25 s. --full: also 10485760 flows (1 rep of 2 passes; about 2 minutes more)\n");
}

bool parse_args(int argc, char** argv, options& o)
{
	for (bench::arg_reader a(argc, argv, usage); a.next();) {
		if (a.option("--flows")) {
			o.flows.clear();
			for (const std::string& f : bench::split_list(a.value()))
				o.flows.push_back(uint32_t(std::clamp(std::atoll(f.c_str()), 64LL, (long long)flow::max_table_capacity)));
		} else if (a.flag("--full")) {
			o.flows = {1u << 20, 10u << 20};
		} else if (a.option("--burst")) {
			o.burst = uint32_t(std::clamp(std::atoi(a.value()), 1, RTE_HASH_LOOKUP_BULK_MAX));
		} else if (a.option("--reps")) {
			o.reps = std::max(1, std::atoi(a.value()));
		} else if (a.option("--passes")) {
			o.passes = std::max(1, std::atoi(a.value()));
		} else if (a.option("--seed")) {
			o.seed = std::strtoull(a.value(), nullptr, 10);
		} else if (a.option("--pages")) {
			o.thp = std::string(a.value()) == "thp";
		} else if (a.option("--baselines")) {
			o.baselines.clear();
			for (const std::string& s : bench::split_list(a.value())) {
				if (std::none_of(std::begin(baseline_kinds), std::end(baseline_kinds),
				                 [&](const baseline_kind& k) { return s == k.name; })) {
					std::fprintf(stderr, "bench-flowtable: unknown baseline '%s'\n", s.c_str());
					return false;
				}
				o.baselines.push_back(s);
			}
		} else {
			usage();
			return false;
		}
	}
	return true;
}

struct key_hasher {
	size_t operator()(const flow_key& k) const { return flow::hash_key(k, 0x1234567); }
};

// Distinct random TCP/UDP IPv4 flows in canonical form.
std::vector<flow_key> make_keys(size_t n, uint64_t seed)
{
	std::mt19937_64 rng(seed);
	std::unordered_set<flow_key, key_hasher> seen;
	seen.reserve(n * 2);
	std::vector<flow_key> keys;
	keys.reserve(n);
	while (keys.size() < n) {
		const uint64_t r1 = rng(), r2 = rng();
		bool reversed;
		const flow_key k = flow::make_key(4, (r2 >> 40) & 1 ? 6 : 17, u128(uint32_t(r1)), u128(uint32_t(r1 >> 32)),
		                                  uint16_t(r2), uint16_t(r2 >> 16), reversed);
		if (seen.insert(k).second)
			keys.push_back(k);
	}
	return keys;
}

// A lookup stream: keys in the order they are looked up, each with the index it was inserted under (or
// ~0u for absent keys), and the pointer array rte_hash's bulk call takes (built outside the timing).
struct stream {
	std::vector<flow_key> keys;
	std::vector<uint32_t> index;
	std::vector<const void*> ptrs;
};

stream make_stream(const std::vector<flow_key>& keys, size_t first, size_t count, bool present, std::mt19937_64& rng)
{
	stream s;
	std::vector<uint32_t> order(count);
	for (size_t i = 0; i < count; ++i)
		order[i] = uint32_t(first + i);
	std::shuffle(order.begin(), order.end(), rng);
	s.keys.reserve(count);
	for (uint32_t i : order) {
		s.keys.push_back(keys[i]);
		s.index.push_back(present ? i : ~0u);
	}
	for (const auto& k : s.keys)
		s.ptrs.push_back(&k);
	return s;
}

size_t heap_allocated()
{
	rte_malloc_socket_stats st{};
	rte_malloc_get_socket_stats(int(rte_socket_id()), &st);
	return st.heap_allocsz_bytes;
}

// The flow state a firewall on rte_hash keeps beside the table, indexed by the value stored in it.
struct state_array {
	flow_entry* entries = nullptr;
	size_t n = 0;
	explicit state_array(size_t count) : n(count)
	{
		void* p = mmap(nullptr, n * sizeof(flow_entry), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			throw std::bad_alloc();
		madvise(p, n * sizeof(flow_entry), MADV_HUGEPAGE);
		entries = static_cast<flow_entry*>(p);
	}
	~state_array() { munmap(entries, n * sizeof(flow_entry)); }
	state_array(const state_array&) = delete;
	state_array& operator=(const state_array&) = delete;
};

struct baseline_table {
	std::string name;
	rte_hash* h = nullptr;
	size_t bytes = 0;
	uint64_t insert_failures = 0;
};

rte_hash* create_rte_hash(const char* name, uint32_t entries, uint8_t flags)
{
	rte_hash_parameters p{};
	p.name = name;
	p.entries = entries;
	p.key_len = sizeof(flow_key);
	p.hash_func = rte_hash_crc;  // CRC32-C in hardware: rte_hash's fastest hash for a 40-byte key
	p.hash_func_init_val = 0;
	p.socket_id = int(rte_socket_id());
	p.extra_flag = flags;
	return rte_hash_create(&p);
}

// ---- the timed loops ----

enum class lookup_kind { hit, miss, hit_update };

// Our table: key -> hash -> lookup_burst, as the worker does it. Returns lookups per second.
double time_ours(const flow::flow_table& t, const stream& s, uint32_t burst, lookup_kind kind, uint64_t& sink)
{
	uint64_t hashes[RTE_HASH_LOOKUP_BULK_MAX];
	flow_entry* found[RTE_HASH_LOOKUP_BULK_MAX];
	uint64_t hits = 0;
	const double secs = bench::time_bursts(s.keys.size(), burst, [&](size_t base, uint32_t m) {
		for (uint32_t i = 0; i < m; ++i) {
			hashes[i] = flow::hash_key(s.keys[base + i]);
			t.prefetch(hashes[i]);
		}
		t.lookup_burst(&s.keys[base], hashes, m, found);
		for (uint32_t i = 0; i < m; ++i) {
			if (!found[i])
				continue;
			++hits;
			if (kind == lookup_kind::hit_update)
				found[i]->traffic[0].add(64);
		}
	});
	sink += hits;
	return double(s.keys.size()) / secs;
}

double time_baseline(const rte_hash* h, const stream& s, uint32_t burst, lookup_kind kind, state_array& state,
                     uint64_t& sink)
{
	void* data[RTE_HASH_LOOKUP_BULK_MAX];
	uint64_t hits = 0;
	const double secs = bench::time_bursts(s.keys.size(), burst, [&](size_t base, uint32_t m) {
		uint64_t mask = 0;
		rte_hash_lookup_bulk_data(h, const_cast<const void**>(&s.ptrs[base]), m, &mask, data);
		hits += uint64_t(__builtin_popcountll(mask));
		if (kind == lookup_kind::hit_update)
			for (uint64_t b = mask; b; b &= b - 1)
				state.entries[uintptr_t(data[__builtin_ctzll(b)])].traffic[0].add(64);
	});
	sink += hits;
	return double(s.keys.size()) / secs;
}

// Untimed: every answer of ours and of the baseline against what each table accepted (an insert either
// table refused must then be a miss in that table, and is counted as an insert failure, not here).
uint64_t count_mismatches(const flow::flow_table& t, const rte_hash* h, const stream& s,
                          const std::vector<uint8_t>& ours_has, const std::vector<uint8_t>& base_has)
{
	uint64_t bad = 0;
	for (size_t i = 0; i < s.keys.size(); ++i) {
		const flow_entry* e = t.lookup(s.keys[i], flow::hash_key(s.keys[i]));
		void* data = nullptr;
		const int rc = rte_hash_lookup_data(h, &s.keys[i], &data);
		const uint32_t x = s.index[i];
		const bool ours_ok = (x != ~0u && ours_has[x]) ? (e && e->key == s.keys[i] && e->rule_id == x) : e == nullptr;
		const bool base_ok = (x != ~0u && base_has[x]) ? (rc >= 0 && uintptr_t(data) == x) : rc < 0;
		bad += !ours_ok + !base_ok;
	}
	return bad;
}

struct case_result {
	std::vector<double> ours;
	std::vector<std::vector<double>> base;  // [baseline][sample]
	uint64_t mismatches = 0;
	uint64_t ours_failures = 0;
	std::vector<uint64_t> base_failures;
};

} // namespace

// Every case at one table size: both tables built and filled afresh each rep.
void run_size(const options& o, uint32_t n, uint64_t& sink)
{
	const size_t n50 = size_t(n) / 2, n90 = size_t(n) * 9 / 10;
	const auto tk = bench::clock_type::now();
	std::vector<flow_key> all = make_keys(n90 + n50, o.seed);
	// Present keys are all[0, n90); absent keys all[n90, n90 + n50).
	std::mt19937_64 rng(o.seed * 7 + 1);
	const stream hit50 = make_stream(all, 0, n50, true, rng);
	const stream hit90 = make_stream(all, 0, n90, true, rng);
	const stream miss = make_stream(all, n90, n50, false, rng);
	std::fprintf(stderr, "bench-flowtable: %zu keys in %.2f s; %u flows\n", all.size(), seconds_since(tk), n);

	const size_t nb = o.baselines.size();
	struct named_case {
		const char* name;
		case_result r;
	};
	std::vector<named_case> cases;
	for (const char* name : {"insert_load50", "lookup_hit_load50", "lookup_miss_load50", "lookup_hit_update_load50",
	                         "insert_load90", "lookup_hit_load90", "lookup_miss_load90", "lookup_hit_update_load90"}) {
		cases.push_back({name, {}});
		cases.back().r.base.resize(nb);
		cases.back().r.base_failures.resize(nb);
	}
	size_t ours_bytes = 0;
	std::vector<size_t> base_bytes(nb);
	state_array state(n);

	// Tens of millions of flows: one rep of two passes keeps the run to a couple of minutes.
	const int reps = n > (4u << 20) ? 1 : o.reps, passes = n > (4u << 20) ? std::min(o.passes, 2) : o.passes;
	for (int rep = 0; rep < reps; ++rep) {
		flow::table_config cfg;
		cfg.capacity = n;
		auto ours = std::make_unique<flow::flow_table>(cfg);
		ours_bytes = ours->memory_bytes();
		std::vector<baseline_table> base(nb);
		for (size_t b = 0; b < nb; ++b) {
			const auto& kind = *std::find_if(std::begin(baseline_kinds), std::end(baseline_kinds),
			                                 [&](const baseline_kind& k) { return o.baselines[b] == k.name; });
			const size_t before = heap_allocated();
			const std::string hname = "bft" + std::to_string(rep) + "_" + std::to_string(b);
			base[b].name = kind.name;
			base[b].h = create_rte_hash(hname.c_str(), n, kind.flags);
			if (!base[b].h) {
				std::fprintf(stderr, "bench-flowtable: rte_hash_create(%s) failed: %s\n", kind.name, rte_strerror(rte_errno));
				std::exit(1);
			}
			base_bytes[b] = heap_allocated() - before;
		}

		std::vector<uint8_t> ours_has(all.size());
		std::vector<std::vector<uint8_t>> base_has(nb, std::vector<uint8_t>(all.size()));
		// Inserts are timed in chunks taken in turn (ours, each baseline; the next chunk starting with the
		// next side ...), so that a slow spell of a shared host falls on both sides alike; one fill of each side,
		// timed whole and one after the other, moved the ratio between 0.6 and 1.6 from run to run on a
		// Xeon VM. A rate is the side's keys over the sum of its chunks' times.
		auto fill = [&](size_t from, size_t to, case_result& r) {
			constexpr size_t chunk = 16384;
			uint64_t failed = 0;
			std::vector<uint64_t> bf(nb, 0);
			std::vector<double> secs(nb + 1, 0.0);
			auto fill_ours = [&](size_t a, size_t z) {
				const auto t0 = bench::clock_type::now();
				for (size_t i = a; i < z; ++i) {
					flow_entry* e = ours->insert(all[i], flow::hash_key(all[i]), 0);
					if (e) {
						e->rule_id = uint32_t(i);
						ours_has[i] = 1;
					} else {
						++failed;
					}
				}
				secs[0] += seconds_since(t0);
			};
			auto fill_base = [&](size_t b, size_t a, size_t z) {
				const auto t0 = bench::clock_type::now();
				for (size_t i = a; i < z; ++i) {
					const bool ok = rte_hash_add_key_data(base[b].h, &all[i], reinterpret_cast<void*>(uintptr_t(i))) == 0;
					base_has[b][i] = ok;
					bf[b] += !ok;
				}
				secs[1 + b] += seconds_since(t0);
			};
			// Side k of chunk c is side (c + k) mod sides: each goes first, and after each other, in turn.
			const size_t sides = nb + 1;
			for (size_t a = from, c = 0; a < to; a += chunk, ++c) {
				const size_t z = std::min(to, a + chunk);
				for (size_t k = 0; k < sides; ++k) {
					const size_t side = (c + k) % sides;
					if (side == 0)
						fill_ours(a, z);
					else
						fill_base(side - 1, a, z);
				}
			}
			r.ours.push_back(double(to - from) / secs[0]);
			for (size_t b = 0; b < nb; ++b)
				r.base[b].push_back(double(to - from) / secs[1 + b]);
			if (rep == 0) {
				r.ours_failures += failed;
				for (size_t b = 0; b < nb; ++b)
					r.base_failures[b] += bf[b];
			}
		};
		auto lookups = [&](const stream& s, lookup_kind kind, case_result& r) {
			std::vector<std::function<double()>> sides = {[&] { return time_ours(*ours, s, o.burst, kind, sink); }};
			for (size_t b = 0; b < nb; ++b)
				sides.push_back([&, b] { return time_baseline(base[b].h, s, o.burst, kind, state, sink); });
			const auto samples = bench::interleave(passes, sides);
			r.ours.insert(r.ours.end(), samples[0].begin(), samples[0].end());
			for (size_t b = 0; b < nb; ++b)
				r.base[b].insert(r.base[b].end(), samples[1 + b].begin(), samples[1 + b].end());
			if (rep == 0)
				for (size_t b = 0; b < nb; ++b)
					r.mismatches += count_mismatches(*ours, base[b].h, s, ours_has, base_has[b]);
		};

		fill(0, n50, cases[0].r);
		lookups(hit50, lookup_kind::hit, cases[1].r);
		lookups(miss, lookup_kind::miss, cases[2].r);
		lookups(hit50, lookup_kind::hit_update, cases[3].r);
		fill(n50, n90, cases[4].r);
		lookups(hit90, lookup_kind::hit, cases[5].r);
		lookups(miss, lookup_kind::miss, cases[6].r);
		lookups(hit90, lookup_kind::hit_update, cases[7].r);

		for (auto& b : base)
			rte_hash_free(b.h);
	}

	// Insert failures are those of the first rep.
	for (const auto& c : cases) {
		const double ours_mops = bench::median(c.r.ours) / 1e6;
		for (size_t b = 0; b < nb; ++b) {
			const double base_mops = bench::median(c.r.base[b]) / 1e6;
			bench::json_line j;
			j.text("bench", "flowtable")
			    .text("case", c.name)
			    .integer("flows", n)
			    .integer("burst", o.burst)
			    .fixed("ours_mops", ours_mops, 2)
			    .text("baseline", o.baselines[b])
			    .fixed("baseline_mops", base_mops, 2)
			    .fixed("ratio", ours_mops / base_mops, 2)
			    .integer("ours_bytes", ours_bytes)
			    .integer("baseline_bytes", base_bytes[b])
			    .integer("baseline_bytes_with_state", base_bytes[b] + size_t(n) * sizeof(flow_entry))
			    .fixed("ours_bytes_per_flow", double(ours_bytes) / n, 1)
			    .fixed("baseline_bytes_per_flow_with_state", double(base_bytes[b] + size_t(n) * sizeof(flow_entry)) / n, 1)
			    .integer("mismatches", c.r.mismatches);
			if (std::strncmp(c.name, "insert", 6) == 0)
				j.integer("ours_insert_failures", c.r.ours_failures)
				    .integer("baseline_insert_failures", c.r.base_failures[b]);
			j.integer("reps", reps).text("pages", o.thp ? "thp" : "4k").print();
		}
	}
}

int main(int argc, char** argv)
{
	options o;
	if (!parse_args(argc, argv, o))
		return 2;
	if (!o.thp && prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0)
		std::fprintf(stderr, "bench-flowtable: cannot disable transparent huge pages; ours may use them\n");

	// rte_hash for N 40-byte keys takes ~70 bytes per entry (key store, buckets, free-slot ring): size the
	// EAL's memory for every baseline at once plus headroom.
	bench::eal_config eal;
	eal.program = "bench-flowtable";
	const uint32_t largest = *std::max_element(o.flows.begin(), o.flows.end());
	eal.memory_mb = unsigned(256 + size_t(o.baselines.size()) * ((size_t(largest) * 96) >> 20));
	eal.log_level = "warning";
	if (!bench::start_eal(eal))
		return 1;

	uint64_t sink = 0;
	for (const uint32_t n : o.flows)
		run_size(o, n, sink);
	std::fprintf(stderr, "bench-flowtable: done (checksum %lu)\n", (unsigned long)sink);
	rte_eal_cleanup();
	return 0;
}
