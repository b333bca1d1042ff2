// A bounded ring of fixed-size records from one producer to one consumer (a worker to the control thread,
// the sync thread to a worker). The producer never waits: a full ring refuses the record and the caller
// counts it.
//
// Threads: one producer, one consumer.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

namespace portcullis::dataplane {

template <class Record>
class spsc_ring {
public:
	explicit spsc_ring(uint32_t capacity_pow2) : slots_(capacity_pow2) {}

	// Producer. False when the ring is full.
	bool push(const Record& r)
	{
		const uint64_t head = head_.load(std::memory_order_relaxed);
		if (head - tail_.load(std::memory_order_acquire) >= slots_.size())
			return false;
		slots_[head & (slots_.size() - 1)] = r;
		head_.store(head + 1, std::memory_order_release);
		return true;
	}

	// Producer: how many pushes would succeed now (at least; the consumer may free more).
	uint32_t room() const
	{
		return uint32_t(slots_.size() - (head_.load(std::memory_order_relaxed) - tail_.load(std::memory_order_acquire)));
	}

	// Consumer: fn(record) for at most max records, oldest first; returns how many.
	template <class Fn>
	uint32_t drain(Fn&& fn, uint32_t max)
	{
		uint64_t tail = tail_.load(std::memory_order_relaxed);
		const uint64_t head = head_.load(std::memory_order_acquire);
		uint32_t n = 0;
		for (; tail != head && n < max; ++tail, ++n)
			fn(slots_[tail & (slots_.size() - 1)]);
		tail_.store(tail, std::memory_order_release);
		return n;
	}

private:
	std::vector<Record> slots_;
	alignas(64) std::atomic<uint64_t> head_{0};
	alignas(64) std::atomic<uint64_t> tail_{0};
};

} // namespace portcullis::dataplane
