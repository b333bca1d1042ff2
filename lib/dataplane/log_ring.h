// Log records for rules marked `log`: the worker writes a fixed-size record into its own ring, the
// control thread reads them and writes JSON lines (control/drop_log.h). The worker never formats, never
// does I/O and never waits: when its per-second budget is spent or the ring is full, the record is only
// counted as suppressed, so a flood cannot turn into a log flood.
//
// Threads: one producer (the owning worker), one consumer (the control thread).
#pragma once

#include <atomic>
#include <cstdint>
#include <utility>
#include <vector>

#include "dataplane/spsc_ring.h"
#include "rules/match.h"

namespace portcullis::dataplane {

struct log_record {
	uint64_t tsc;
	u128 src, dst;
	uint16_t sport, dport;
	uint8_t family, proto, direction, verdict;  // verdict: 0 allow, 1 drop, 2 reject
	uint32_t rule;
	uint64_t generation;
};

class log_ring {
public:
	// rate: records per second this producer may write (tokens refill continuously, burst = rate).
	log_ring(uint32_t capacity_pow2, uint32_t rate, uint64_t tsc_hz)
		: ring_(capacity_pow2), ticks_per_token_(rate ? tsc_hz / rate : 0), burst_(rate)
	{
	}

	// Producer. False when the record was suppressed (budget or ring full).
	bool push(const log_record& r)
	{
		if (!take_token(r.tsc) || !ring_.push(r)) {
			suppressed_.store(suppressed_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
			return false;
		}
		return true;
	}

	// Consumer.
	template <class Fn>
	uint32_t drain(Fn&& fn, uint32_t max)
	{
		return ring_.drain(std::forward<Fn>(fn), max);
	}

	uint64_t suppressed() const { return suppressed_.load(std::memory_order_relaxed); }

private:
	bool take_token(uint64_t now)
	{
		if (ticks_per_token_ == 0)
			return false;
		if (tokens_ == 0) {
			const uint64_t gained = (now - last_refill_) / ticks_per_token_;
			if (gained == 0)
				return false;
			tokens_ = gained > burst_ ? burst_ : gained;
			last_refill_ = now;
		}
		--tokens_;
		return true;
	}

	spsc_ring<log_record> ring_;
	uint64_t ticks_per_token_;
	uint64_t burst_;
	uint64_t tokens_ = 0;
	uint64_t last_refill_ = 0;
	std::atomic<uint64_t> suppressed_{0};
};

} // namespace portcullis::dataplane
