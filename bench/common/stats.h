// bench/common/stats.h: the summaries benches report of repeated measurements: median, percentiles and
// the spread between the fastest and the slowest sample. All take the samples by value (they sort a
// copy) and give 0 for no samples, so that a bench with nothing measured prints zeros, not garbage.
#pragma once

#include <algorithm>
#include <vector>

namespace portcullis::bench {

// The middle sample; the mean of the two middle ones for an even count.
inline double median(std::vector<double> v)
{
	if (v.empty())
		return 0;
	std::sort(v.begin(), v.end());
	const size_t m = v.size() / 2;
	return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

// The sample at rank p (0..1) of the sorted samples, rounded to the nearest rank: no interpolation, so
// that a p99 is a latency that did happen.
inline double percentile(std::vector<double> v, double p)
{
	if (v.empty())
		return 0;
	std::sort(v.begin(), v.end());
	return v[std::min(v.size() - 1, size_t(p * double(v.size() - 1) + 0.5))];
}

struct spread {
	double min = 0, max = 0;
	// (max - min) / max: how far apart the samples are, 0 when they all agree.
	double relative() const { return max > 0 ? (max - min) / max : 0; }
};

inline spread min_max(const std::vector<double>& v)
{
	if (v.empty())
		return {};
	const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
	return {*lo, *hi};
}

} // namespace portcullis::bench
