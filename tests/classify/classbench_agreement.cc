// ClassBench agreement: on real filter sets and their traces, ours and rte_acl give exactly the brute-force
// answer for every packet, and that answer is consistent with how the trace was generated (some rule at
// or before the generating filter, and that rule matches). Exits 77 (meson: SKIP) when the data is absent.
//
// Usage: test-classify-classbench [DIR]   (default: <shared_dir>/classbench from meson)
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "classbench.h"
#include "classify/acl.h"
#include "classify/classify.h"
#include "eal.h"
#include "random_rules.h"

using namespace portcullis;
using namespace portcullis::classify;

namespace {

constexpr const char* sets[] = {"acl1_1k", "fw1_1k", "ipc1_1k"};

// Returns the number of failed checks, printing the first few of each kind.
size_t check_set(const std::string& dir, const std::string& name)
{
	const auto rules = classbench::load_rules(dir + "/" + name + ".rules");
	const auto trace = classbench::load_trace(dir + "/" + name + ".trace.gz");
	if (!rules.error.empty() || !trace.error.empty()) {
		std::printf("FAIL %s: %s%s\n", name.c_str(), rules.error.c_str(), trace.error.c_str());
		return 1;
	}
	std::vector<rule_entry> entries;
	for (size_t i = 0; i < rules.rules.size(); ++i)
		entries.push_back({uint32_t(i), &rules.rules[i]});
	std::vector<key_v4> keys;
	for (const auto& p : trace.packets)
		keys.push_back(p.key);

	auto reference = build(backend::linear, entries).classifier;
	std::vector<uint32_t> expected(keys.size());
	reference->classify(keys.data(), uint32_t(keys.size()), expected.data());

	size_t failures = 0;
	auto report = [&](size_t& count, const char* what, size_t i, const std::string& detail) {
		if (count++ < 3)
			std::printf("FAIL %s packet #%zu (%s): %s%s\n", name.c_str(), i, test::describe(keys[i]).c_str(), what,
			            detail.c_str());
		++failures;
	};

	size_t trace_problems = 0;
	for (size_t i = 0; i < keys.size(); ++i) {
		const uint32_t filter = trace.packets[i].filter;
		if (filter >= rules.rules.size() || !matches(rules.rules[filter], keys[i]))
			report(trace_problems, "generating filter does not match", i, " filter " + std::to_string(filter));
		else if (expected[i] == no_match || expected[i] > filter || !matches(rules.rules[expected[i]], keys[i]))
			report(trace_problems, "reference answer inconsistent with the trace", i,
			       " answer " + std::to_string(expected[i]) + ", filter " + std::to_string(filter));
	}

	for (backend b : {backend::ours, backend::rte_acl}) {
		auto built = build(b, entries);
		if (!built.classifier) {
			std::printf("FAIL %s: %s failed to build: %s\n", name.c_str(), std::string(backend_name(b)).c_str(),
			            built.error.c_str());
			++failures;
			continue;
		}
		std::vector<uint32_t> got(keys.size());
		for (size_t i = 0; i < keys.size(); i += 64)
			built.classifier->classify(keys.data() + i, uint32_t(std::min<size_t>(64, keys.size() - i)),
			                           got.data() + i);
		size_t mismatches = 0;
		for (size_t i = 0; i < keys.size(); ++i)
			if (got[i] != expected[i])
				report(mismatches, (std::string(backend_name(b)) + " disagrees with linear").c_str(), i,
				       ": expected " + std::to_string(expected[i]) + ", got " + std::to_string(got[i]));
		std::string detail;
		if (b == backend::rte_acl)
			detail = " (" + rte_acl_method_name(*built.classifier) + ", " +
			         std::to_string(rte_acl_context_count(*built.classifier)) + " context(s))";
		std::printf("%s %s: %zu rules, %zu packets, %s%s mismatches %zu\n", mismatches ? "FAIL" : "ok  ",
		            name.c_str(), rules.rules.size(), keys.size(), std::string(backend_name(b)).c_str(),
		            detail.c_str(), mismatches);
	}
	return failures;
}

} // namespace

int main(int argc, char** argv)
{
	const std::string dir = argc > 1 ? argv[1] : PORTCULLIS_CLASSBENCH_DIR;
	for (const char* name : sets) {
		std::error_code ec;
		if (!std::filesystem::exists(dir + "/" + name + ".rules", ec) ||
		    !std::filesystem::exists(dir + "/" + name + ".trace.gz", ec)) {
			std::printf("SKIP: no ClassBench data at %s (%s.rules / %s.trace.gz)\n", dir.c_str(), name, name);
			return 77;
		}
	}
	if (!test::init_eal())
		return 1;
	size_t failures = 0;
	for (const char* name : sets)
		failures += check_set(dir, name);
	test::cleanup_eal();
	std::printf("%s\n", failures == 0 ? "all ClassBench checks passed" : "ClassBench checks FAILED");
	return failures == 0 ? 0 : 1;
}
