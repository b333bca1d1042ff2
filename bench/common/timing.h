// bench/common/timing.h: wall-clock timing for benches, and the interleaved comparison every bench with
// a baseline in the same process uses: run ours, the baseline, ours, the baseline ... so that noise from
// a shared machine (another process, a frequency change) lands on both sides alike, then compare medians.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

namespace portcullis::bench {

using clock_type = std::chrono::steady_clock;

inline double seconds_since(clock_type::time_point t0)
{
	return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// Seconds one call of f takes.
template <class F>
double time_once(F&& f)
{
	const auto t0 = clock_type::now();
	f();
	return seconds_since(t0);
}

// Seconds to call body(first, count) over [0, n) in bursts of `burst` (the last one shorter): the shape
// of every lookup bench (classify(keys + first, count, ...), lookup_burst(...)).
template <class Body>
double time_bursts(size_t n, uint32_t burst, Body&& body)
{
	return time_once([&] {
		for (size_t first = 0; first < n; first += burst)
			body(first, uint32_t(std::min<size_t>(burst, n - first)));
	});
}

// Calls each side in turn, `reps` times over (a, b, ..., a, b, ...), and returns what each call gave:
// samples[side][rep]. A side measures itself and returns its value (a rate, seconds, ...).
inline std::vector<std::vector<double>> interleave(int reps, const std::vector<std::function<double()>>& sides)
{
	std::vector<std::vector<double>> samples(sides.size());
	for (int r = 0; r < reps; ++r)
		for (size_t s = 0; s < sides.size(); ++s)
			samples[s].push_back(sides[s]());
	return samples;
}

} // namespace portcullis::bench
