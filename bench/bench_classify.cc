// bench-classify: our classifier against DPDK's rte_acl on ClassBench filter sets, both measured in the
// same process on the same core over the same trace, interleaved (ours, rte_acl, ours, rte_acl ...) so
// that noise from a shared machine hits both alike; the median of each is reported. Prints one JSON
// object per set on stdout; notes and errors go to stderr.
//
// Packets are classified in bursts (64 by default) straight from a key array: this measures the lookup,
// not parsing. ClassBench's TCP-flags column is ignored (see classbench.h), as dpdk-test-acl does.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include <rte_eal.h>
#include <rte_errno.h>

#include "classbench.h"
#include "classify/acl.h"
#include "classify/classify.h"

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
	for (int i = 1; i < argc; ++i) {
		const std::string arg = argv[i];
		auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
		const char* v = nullptr;
		if (arg == "--help" || arg == "-h") {
			usage();
			std::exit(0);
		} else if (arg == "--data" && (v = value())) {
			o.data_dir = v;
		} else if (arg == "--sets" && (v = value())) {
			std::stringstream ss(v);
			for (std::string s; std::getline(ss, s, ',');)
				if (!s.empty())
					o.sets.push_back(s);
		} else if (arg == "--iters" && (v = value())) {
			o.iters = std::max(1, std::atoi(v));
		} else if (arg == "--burst" && (v = value())) {
			o.burst = uint32_t(std::max(1, std::atoi(v)));
		} else if (arg == "--packets" && (v = value())) {
			o.max_packets = size_t(std::max(1LL, std::atoll(v)));
		} else if (arg == "--mem" && (v = value())) {
			o.memory_mb = std::max(64, std::atoi(v));
		} else if (arg == "--acl-method" && (v = value())) {
			const auto m = parse_acl_method(v);
			if (!m) {
				std::fprintf(stderr, "bench-classify: unknown rte_acl method '%s'\n", v);
				return false;
			}
			o.method = *m;
		} else {
			std::fprintf(stderr, "bench-classify: bad argument '%s'\n", arg.c_str());
			usage();
			return false;
		}
	}
	return true;
}

bool init_eal(const options& o)
{
	// One lcore (core 0): the EAL pins the main thread there, so both classifiers run on the same core.
	// --no-shconf rather than --in-memory: DPDK 22.11 refuses --in-memory with --no-huge; this gives the
	// same isolation (see tests/support/eal.cc).
	std::vector<std::string> args = {"bench-classify", "--no-huge", "-m", std::to_string(o.memory_mb), "--no-pci",
	                                 "--no-shconf", "--no-telemetry", "--file-prefix=bench-classify", "-l", "0",
	                                 "--log-level=error"};
	// rte_acl only allows avx512x32 when the EAL's SIMD limit is 512 bits (the 22.11 default is 256): lift
	// it, so that "best" is the fastest method this CPU has and the baseline is rte_acl at its strongest.
	args.push_back("--force-max-simd-bitwidth=512");
	std::vector<char*> argv;
	for (auto& a : args)
		argv.push_back(a.data());
	if (rte_eal_init(int(argv.size()), argv.data()) < 0) {
		std::fprintf(stderr, "bench-classify: rte_eal_init failed: %s\n", rte_strerror(rte_errno));
		return false;
	}
	return true;
}

// One pass over the trace in bursts; returns seconds.
double timed_pass(const classifier& c, const std::vector<key_v4>& keys, std::vector<uint32_t>& results,
                  uint32_t burst)
{
	const auto start = std::chrono::steady_clock::now();
	const size_t n = keys.size();
	for (size_t i = 0; i < n; i += burst)
		c.classify(keys.data() + i, uint32_t(std::min<size_t>(burst, n - i)), results.data() + i);
	return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> v)
{
	std::sort(v.begin(), v.end());
	const size_t m = v.size() / 2;
	return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
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
	const auto acl_start = std::chrono::steady_clock::now();
	auto acl = build_rte_acl(entries, o.method);
	acl.build_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - acl_start).count();
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

	std::vector<double> ours_s, acl_s;
	for (int it = 0; it < o.iters; ++it) {
		ours_s.push_back(timed_pass(*ours.classifier, keys, ours_results, o.burst));
		acl_s.push_back(timed_pass(*acl.classifier, keys, acl_results, o.burst));
	}
	const double ours_mpps = double(keys.size()) / median(ours_s) / 1e6;
	const double acl_mpps = double(keys.size()) / median(acl_s) / 1e6;

	std::printf("{\"bench\":\"classify\",\"case\":\"%s\",\"rules\":%zu,\"ours_mpps\":%.2f,\"baseline\":\"rte_acl\","
	            "\"baseline_method\":\"%s\",\"baseline_mpps\":%.2f,\"ratio\":%.3f,\"ours_build_ms\":%.1f,"
	            "\"baseline_build_ms\":%.1f,\"ours_bytes\":%zu,\"baseline_bytes\":%zu,\"mismatches\":%zu}\n",
	            name.c_str(), rules.rules.size(), ours_mpps, rte_acl_method_name(*acl.classifier).c_str(), acl_mpps,
	            ours_mpps / acl_mpps, ours.build_ms, acl.build_ms, ours.classifier->memory_bytes(),
	            acl.classifier->memory_bytes(), mismatches);
	std::fflush(stdout);
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
