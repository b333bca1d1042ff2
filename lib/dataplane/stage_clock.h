// Cycle accounting of the data path's stages, for benchmarks: compiled in only when the build defines
// PORTCULLIS_STAGE_TIMERS (bench/pipeline builds a second copy of the data path that way), so that the
// daemon pays nothing for it. A lap reads the TSC once per stage per burst, not per packet.
#pragma once

#include <cstdint>
#include <string_view>

#include <rte_cycles.h>

namespace portcullis::dataplane {

// The stages of worker::process, in the order a burst goes through them.
enum class stage : uint8_t {
	parse,       // frames to parsed records
	lookup,      // direction, flow keys and hashes, buckets and their signatures (start_lookups)
	track,       // known flows: their entries read (finish_lookup), revalidation, conntrack, payload,
	             // flow and rule counters
	classify,    // unknown flows: classifier keys and lookups
	open,        // unknown flows: verdicts, new flows inserted and opened
	counters,    // per-burst port and verdict counters
	tx_prepare,  // grouping by port, fragment verdicts, frees
	count_
};
inline constexpr uint32_t stage_count = uint32_t(stage::count_);
std::string_view to_string(stage s);

#ifdef PORTCULLIS_STAGE_TIMERS
inline constexpr bool stage_timers = true;
#else
inline constexpr bool stage_timers = false;
#endif

class stage_clock {
public:
	explicit stage_clock(uint64_t* totals) : totals_(totals)
	{
		if constexpr (stage_timers)
			last_ = rte_rdtsc();
	}
	// Charges the time since the last lap (or the start) to s.
	void lap(stage s)
	{
		if constexpr (stage_timers) {
			const uint64_t now = rte_rdtsc();
			totals_[uint32_t(s)] += now - last_;
			last_ = now;
		} else {
			(void)s;
		}
	}

private:
	uint64_t* totals_;
	uint64_t last_ = 0;
};

} // namespace portcullis::dataplane
