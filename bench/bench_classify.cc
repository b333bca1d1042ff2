// bench-classify: our classifier against DPDK's rte_acl on ClassBench filter sets, both measured in the
// same process on the same core over the same trace, interleaved (ours, rte_acl, ours, rte_acl ...) so
// that noise from a shared machine hits both alike; the median of each is reported. Prints one JSON
// object per set on stdout; notes and errors go to stderr.
//
// Packets are classified in bursts (64 by default) straight from a key array: this measures the lookup,
// not parsing. ClassBench's TCP-flags column is ignored (see classbench.h), as dpdk-test-acl does.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <rte_eal.h>

#include "classbench.h"
#include "classify/acl.h"
#include "classify/classify.h"
#include "common/args.h"
#include "common/eal.h"
#include "common/json.h"
#include "common/stats.h"
#include "common/timing.h"

using namespace portcullis;
using namespace portcullis::classify;

namespace {

struct options {
	std::string data_dir = PORTCULLIS_CLASSBENCH_DIR;
	std::vector<std::string> sets;  // empty: every set in data_dir except the skipped-by-default ones
	int iters = 7;
	uint32_t burst = 64;
	size_t max_packets = 1000000;
	acl_method method = acl_method::best;
	int memory_mb = 2048;
};

void usage()
{
	std::fprintf(stderr,
	             "usage: bench-classify [--data DIR] [--sets a,b,...] [--iters N] [--burst N] [--packets N]\n"
	             "                      [--acl-method best|scalar|sse|avx2|avx512x16|avx512x32] [--mem MB]\n"
	             "  default: every <set>.rules with a <set>.trace.gz in %s, 7 iterations, bursts of 64,\n"
	             "  up to 1M trace packets per set, rte_acl's own choice of method, 2048 MB of EAL memory\n"
	             "  (acl1_100k needs it: rte_acl's tries take 430 MB there and its build ~2 GB of heap)\n",
	             PORTCULLIS_CLASSBENCH_DIR);
}

bool parse_args(int argc, char** argv, options& o)
{
	for (bench::arg_reader a(argc, argv, usage); a.next();) {
		if (a.option("--data")) {
			o.data_dir = a.value();
		} else if (a.option("--sets")) {
			const auto sets = bench::split_list(a.value());
			o.sets.insert(o.sets.end(), sets.begin(), sets.end());
		} else if (a.option("--iters")) {
			o.iters = std::max(1, std::atoi(a.value()));
		} else if (a.option("--burst")) {
			o.burst = uint32_t(std::max(1, std::atoi(a.value())));
		} else if (a.option("--packets")) {
			o.max_packets = size_t(std::max(1LL, std::atoll(a.value())));
		} else if (a.option("--mem")) {
			o.memory_mb = std::max(64, std::atoi(a.value()));
		} else if (a.option("--acl-method")) {
			const auto m = parse_acl_method(a.value());
			if (!m) {
				std::fprintf(stderr, "bench-classify: unknown rte_acl method '%s'\n", a.value());
				return false;
			}
			o.method = *m;
		} else {
			std::fprintf(stderr, "bench-classify: bad argument '%s'\n", a.name());
			usage();
			return false;
		}
	}
	return true;
}

bool init_eal(const options& o)
{
	// One lcore (core 0): the EAL pins the main thread there, so both classifiers run on the same core.
	bench::eal_config c;
	c.program = "bench-classify";
	c.memory_mb = unsigned(o.memory_mb);
	// rte_acl only allows avx512x32 when the EAL's SIMD limit is 512 bits (the 22.11 default is 256): lift
	// it, so that "best" is the fastest method this CPU has and the baseline is rte_acl at its strongest.
	c.extra = {"--force-max-simd-bitwidth=512"};
	return bench::start_eal(c);
}

// One pass over the trace in bursts; returns seconds.
double timed_pass(const classifier& c, const std::vector<key_v4>& keys, std::vector<uint32_t>& results,
                  uint32_t burst)
{
	return bench::time_bursts(keys.size(), burst,
	                          [&](size_t i, uint32_t n) { c.classify(keys.data() + i, n, results.data() + i); });
}

bool run_set(const options& o, const std::string& name)
{
	const auto rules = classbench::load_rules(o.data_dir + "/" + name + ".rules");
	if (!rules.error.empty()) {
		std::fprintf(stderr, "bench-classify: %s\n", rules.error.c_str());
		return false;
	}
	const auto trace = classbench::load_trace(o.data_dir + "/" + name + ".trace.gz", o.max_packets);
	if (!trace.error.empty() || trace.packets.empty()) {
		std::fprintf(stderr, "bench-classify: %s\n",
		             trace.error.empty() ? (name + ": empty trace").c_str() : trace.error.c_str());
		return false;
	}
	std::vector<rule_entry> entries;
	entries.reserve(rules.rules.size());
	for (size_t i = 0; i < rules.rules.size(); ++i)
		entries.push_back({uint32_t(i), &rules.rules[i]});
	std::vector<key_v4> keys;
	keys.reserve(trace.packets.size());
	for (const auto& p : trace.packets)
		keys.push_back(p.key);

	auto ours = build(backend::ours, entries);
	if (!ours.classifier) {
		std::fprintf(stderr, "bench-classify: %s: ours failed to build: %s\n", name.c_str(), ours.error.c_str());
		return false;
	}
	const auto acl_start = bench::clock_type::now();
	auto acl = build_rte_acl(entries, o.method);
	acl.build_ms = bench::seconds_since(acl_start) * 1e3;
	if (!acl.classifier) {
		std::fprintf(stderr, "bench-classify: %s: rte_acl failed to build: %s\n", name.c_str(), acl.error.c_str());
		return false;
	}

	if (const size_t contexts = rte_acl_context_count(*acl.classifier); contexts > 1)
		std::fprintf(stderr, "bench-classify: note: %s: rte_acl needed %zu contexts (more than 8 tries)\n",
		             name.c_str(), contexts);

	std::vector<uint32_t> ours_results(keys.size()), acl_results(keys.size());
	// The first pass of each also warms caches and the page tables of the results array.
	timed_pass(*ours.classifier, keys, ours_results, o.burst);
	timed_pass(*acl.classifier, keys, acl_results, o.burst);
	size_t mismatches = 0;
	for (size_t i = 0; i < keys.size(); ++i)
		mismatches += ours_results[i] != acl_results[i];

	const auto seconds = bench::interleave(o.iters, {
		[&] { return timed_pass(*ours.classifier, keys, ours_results, o.burst); },
		[&] { return timed_pass(*acl.classifier, keys, acl_results, o.burst); },
	});
	const double ours_mpps = double(keys.size()) / bench::median(seconds[0]) / 1e6;
	const double acl_mpps = double(keys.size()) / bench::median(seconds[1]) / 1e6;

	bench::json_line()
	    .text("bench", "classify")
	    .text("case", name)
	    .integer("rules", rules.rules.size())
	    .fixed("ours_mpps", ours_mpps, 2)
	    .text("baseline", "rte_acl")
	    .text("baseline_method", rte_acl_method_name(*acl.classifier))
	    .fixed("baseline_mpps", acl_mpps, 2)
	    .fixed("ratio", ours_mpps / acl_mpps, 3)
	    .fixed("ours_build_ms", ours.build_ms, 1)
	    .fixed("baseline_build_ms", acl.build_ms, 1)
	    .integer("ours_bytes", ours.classifier->memory_bytes())
	    .integer("baseline_bytes", acl.classifier->memory_bytes())
	    .integer("mismatches", mismatches)
	    .print();
	return true;
}

} // namespace

int main(int argc, char** argv)
{
	options o;
	if (!parse_args(argc, argv, o))
		return 2;
	std::vector<std::string> sets = o.sets;
	if (sets.empty()) {
		sets = classbench::list_sets(o.data_dir);
		if (sets.empty()) {
			std::fprintf(stderr, "bench-classify: no ClassBench sets in %s\n", o.data_dir.c_str());
			return 1;
		}
	}
	if (!init_eal(o))
		return 1;
	bool ok = true;
	for (const auto& name : sets)
		ok = run_set(o, name) && ok;
	rte_eal_cleanup();
	return ok ? 0 : 1;
}
