// bench-lint: portcullis check --lint's analysis (lib/lint) on ClassBench filter sets, timed against
// compiling the same rules with our classifier in the same run (the work every push does anyway), so the
// ratio says what the lint adds to a check. Actions are assigned from each rule's position (allow, drop,
// reject in a fixed pseudo-random mix): ClassBench has none, and a lint of one action only would find no
// correlations. One JSON object per set on stdout; notes on stderr.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "classbench.h"
#include "classify/classify.h"
#include "common/args.h"
#include "common/json.h"
#include "common/stats.h"
#include "lint/lint.h"

using namespace portcullis;

namespace {

struct options {
	std::string data_dir = PORTCULLIS_CLASSBENCH_DIR;
	std::vector<std::string> sets = {"acl1_1k", "fw1_1k", "acl1_10k", "fw1_10k"};
	int iters = 3;
};

void usage()
{
	std::fprintf(stderr,
	             "usage: bench-lint [--data DIR] [--sets a,b,...] [--iters N]\n"
	             "  default: acl1_1k, fw1_1k, acl1_10k and fw1_10k from %s, 3 runs each (median);\n"
	             "  about 20 s. The issue's bound: 10K rules in 2 s or less.\n",
	             PORTCULLIS_CLASSBENCH_DIR);
}

double seconds_since(std::chrono::steady_clock::time_point t)
{
	return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

} // namespace

int main(int argc, char** argv)
{
	options o;
	for (bench::arg_reader a(argc, argv, usage); a.next();) {
		if (a.option("--data")) {
			o.data_dir = a.value();
		} else if (a.option("--sets")) {
			o.sets = bench::split_list(a.value());
		} else if (a.option("--iters")) {
			o.iters = std::max(1, std::atoi(a.value()));
		} else {
			std::fprintf(stderr, "bench-lint: bad argument '%s'\n", a.name());
			usage();
			return 2;
		}
	}
	int status = 0;
	for (const auto& name : o.sets) {
		const std::string path = o.data_dir + "/" + name + ".rules";
		const auto loaded = classbench::load_rules(path);
		if (!loaded.error.empty()) {
			std::fprintf(stderr, "bench-lint: %s (skipped)\n", loaded.error.c_str());
			status = 1;
			continue;
		}
		rules::ruleset rs;
		rs.files = {path};
		const rules::action mix[] = {rules::action::allow, rules::action::allow, rules::action::drop, rules::action::reject};
		for (size_t i = 0; i < loaded.rules.size(); ++i) {
			rules::rule r;
			r.match = loaded.rules[i];
			r.act = mix[(i * 2654435761u >> 7) % 4];
			r.out = false;
			r.loc = {path, uint32_t(i + 1), 1};
			r.text = "classbench rule " + std::to_string(i + 1);
			rs.rules.push_back(std::move(r));
		}
		std::vector<classify::rule_entry> entries;
		for (uint32_t i = 0; i < rs.rules.size(); ++i)
			entries.push_back({i, &rs.rules[i].match});

		std::vector<double> lint_s, compile_s;
		lint::report report;
		for (int it = 0; it < o.iters; ++it) {
			auto t = std::chrono::steady_clock::now();
			auto built = classify::build(classify::backend::ours, entries);
			compile_s.push_back(seconds_since(t));
			t = std::chrono::steady_clock::now();
			report = lint::lint(rs);
			lint_s.push_back(seconds_since(t));
		}
		size_t counts[5] = {};
		for (const auto& f : report.findings)
			++counts[size_t(f.what)];
		const double lint_med = bench::median(lint_s), compile_med = bench::median(compile_s);
		bench::json_line()
			.text("bench", "lint")
			.text("set", name)
			.integer("rules", rs.rules.size())
			.fixed("lint_seconds", lint_med, 4)
			.fixed("baseline_compile_seconds", compile_med, 4)
			.fixed("ratio_lint_to_compile", compile_med > 0 ? lint_med / compile_med : 0, 2)
			.boolean("within_2s", lint_med <= 2.0)
			.integer("shadowed", counts[size_t(lint::kind::shadowed)])
			.integer("redundant", counts[size_t(lint::kind::redundant)])
			.integer("correlated", counts[size_t(lint::kind::correlated)])
			.integer("wide_allow", counts[size_t(lint::kind::wide_allow)])
			.integer("undecided", report.undecided)
			.print();
	}
	return status;
}
