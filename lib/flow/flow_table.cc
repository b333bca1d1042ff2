#include "flow/flow_table.h"

#include <sys/mman.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <bit>
#include <cstring>
#include <new>

namespace portcullis::flow {
namespace {

// Large zeroed allocations straight from the kernel; transparent huge pages cut TLB misses on a table of
// millions of flows.
void* map_zeroed(size_t bytes)
{
	// Populate: fault every page in now, on the control plane, rather than on the data path when the
	// first million flows arrive (a page fault per 32 new entries otherwise; bench-flowtable's inserts).
	void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
	madvise(p, bytes, MADV_HUGEPAGE);  // before the pages exist, so that they can be huge ones
#endif
#ifdef MADV_POPULATE_WRITE
	if (madvise(p, bytes, MADV_POPULATE_WRITE) == 0)
		return p;
#endif
	for (size_t at = 0; at < bytes; at += 4096)  // kernels before 5.14: touch each page
		static_cast<volatile char*>(p)[at] = 0;
	return p;
}

} // namespace

flow_table::flow_table(const table_config& config)
	: capacity_(config.capacity < 1 ? 1 : config.capacity), policy_(config.policy)
{
	for (uint32_t s = 0; s < flow_state_count; ++s)
		idle_ticks_[s] = uint64_t(config.idle.seconds[s]) * config.tsc_hz;
	// Slots at most half full at capacity: 8-slot buckets, capacity / 4 of them, rounded up.
	bucket_count_ = std::bit_ceil(size_t(capacity_ + 3) / 4);
	if (bucket_count_ < 2)
		bucket_count_ = 2;
	bucket_mask_ = bucket_count_ - 1;
	buckets_ = static_cast<bucket*>(map_zeroed(bucket_count_ * sizeof(bucket)));
	entries_ = static_cast<flow_entry*>(map_zeroed((size_t(capacity_) + 1) * sizeof(flow_entry)));
	const size_t ring = std::bit_ceil(size_t(capacity_) + 1);
	free_ring_.resize(ring);
	embryonic_fifo_.resize(ring);
}

flow_table::~flow_table()
{
	munmap(buckets_, bucket_count_ * sizeof(bucket));
	munmap(entries_, (size_t(capacity_) + 1) * sizeof(flow_entry));
}

size_t flow_table::memory_bytes() const
{
	return bucket_count_ * sizeof(bucket) + (size_t(capacity_) + 1) * sizeof(flow_entry) +
	       free_ring_.size() * sizeof(uint32_t) + embryonic_fifo_.size() * sizeof(embryonic_ref);
}

uint64_t flow_table::size() const
{
	const uint64_t taken = taken_.load(std::memory_order_relaxed);
	const uint64_t retired = retired_count_.load(std::memory_order_relaxed);
	return taken > retired ? taken - retired : 0;
}

// Bit i set when slot i's tag is `tag` (tags are never 0, so empty slots never match). SSE2, which every
// x86-64 has: four 16-byte compares of the slots' top 16 bits instead of eight loads and branches. The
// slot words are read without atomics here; the slot chosen is then read atomically and its entry's key
// compared, so a slot changing under the scan only costs the exact lookup.
static inline uint32_t tag_matches(const std::atomic<uint64_t>* slots, uint16_t tag)
{
#ifdef __SSE2__
	const __m128i want = _mm_set1_epi16(short(tag));
	const auto* v = reinterpret_cast<const __m128i*>(slots);
	uint32_t m = 0;
	for (uint32_t i = 0; i < 4; ++i) {
		const uint32_t eq = uint32_t(_mm_movemask_epi8(_mm_cmpeq_epi16(_mm_load_si128(v + i), want)));
		m |= ((eq >> 7) & 1u) << (2 * i) | ((eq >> 15) & 1u) << (2 * i + 1);
	}
	return m;
#else
	uint32_t m = 0;
	for (uint32_t i = 0; i < 8; ++i)
		m |= uint32_t(uint16_t(slots[i].load(std::memory_order_relaxed) >> 48) == tag) << i;
	return m;
#endif
}

flow_entry* flow_table::lookup(const flow_key& key, uint64_t hash) const
{
	// Only the slots whose tag matches are read atomically and have their entry's key compared: a loop
	// over 16 slots with a branch each cost more than the SIMD tag compare when the worker called this
	// for every new flow after the first of a burst (a flood's every SYN; bench-flood).
	const uint16_t tag = tag_of(hash);
	for (size_t b : {primary(hash), secondary(hash)}) {
		const bucket& bk = buckets_[b];
		for (uint32_t m = tag_matches(bk.slots, tag); m; m &= m - 1) {
			const uint64_t w = bk.slots[__builtin_ctz(m)].load(std::memory_order_acquire);
			if (w && uint16_t(w >> 48) == tag && entries_[slot_index(w)].key == key)
				return &entries_[slot_index(w)];
		}
	}
	return nullptr;
}

void flow_table::lookup_burst(const flow_key* keys, const uint64_t* hashes, uint32_t n, flow_entry** found) const
{
	// Three passes over groups of keys so that the bucket and entry misses of a group overlap: prefetch
	// both buckets of every key, then find tag matches and prefetch their entries, then compare keys.
	// Groups of 64, a worker's whole burst: two waits on memory per burst, one for its buckets and one for
	// its entries. Groups of 16 (four waits in a burst of 32) kept established packets at 0.65 of their
	// speed under a 99% SYN flood instead of 0.68 (bench-flood, five interleaved runs each), when the
	// flood has pushed their buckets and entries out of the core's caches.
	constexpr uint32_t step = 64;
	for (uint32_t base = 0; base < n; base += step) {
		const uint32_t m = n - base < step ? n - base : step;
		for (uint32_t i = 0; i < m; ++i) {
			__builtin_prefetch(&buckets_[primary(hashes[base + i])]);
			__builtin_prefetch(&buckets_[secondary(hashes[base + i])]);
		}
		flow_entry* candidate[step];
		for (uint32_t i = 0; i < m; ++i) {
			const uint64_t h = hashes[base + i];
			const uint16_t tag = tag_of(h);
			const bucket& b1 = buckets_[primary(h)];
			const bucket& b2 = buckets_[secondary(h)];
			const uint32_t m1 = tag_matches(b1.slots, tag), m2 = tag_matches(b2.slots, tag);
			flow_entry* e = nullptr;
			if (m1)
				e = &entries_[slot_index(b1.slots[__builtin_ctz(m1)].load(std::memory_order_acquire))];
			else if (m2)
				e = &entries_[slot_index(b2.slots[__builtin_ctz(m2)].load(std::memory_order_acquire))];
			if (e) {
				// Both lines: the key is in the first, the state conntrack reads and the counters it
				// bumps in the second (flow_entry is 128 bytes).
				__builtin_prefetch(e);
				__builtin_prefetch(reinterpret_cast<const char*>(e) + 64);
			}
			candidate[i] = e;
		}
		for (uint32_t i = 0; i < m; ++i) {
			flow_entry* e = candidate[i];
			if (e && !(e->key == keys[base + i]))
				e = lookup(keys[base + i], hashes[base + i]);  // tag collision (or a slot reused meanwhile)
			found[base + i] = e;
		}
	}
}

uint32_t flow_table::allocate(uint64_t now)
{
	(void)now;
	if (next_unused_ <= capacity_) {
		taken_.fetch_add(1, std::memory_order_relaxed);
		return next_unused_++;
	}
	const uint64_t head = free_head_.load(std::memory_order_relaxed);
	if (head != free_tail_.load(std::memory_order_acquire)) {
		const uint32_t index = free_ring_[head & (free_ring_.size() - 1)];
		free_head_.store(head + 1, std::memory_order_release);
		taken_.fetch_add(1, std::memory_order_relaxed);
		return index;
	}
	if (policy_ != full_policy::evict_embryonic)
		return 0;
	// Oldest embryonic flow first. The FIFO may hold flows that have since become established or been
	// expired and reused: the generation and state checks skip those.
	// Under a flood every new flow evicts one, and the victims' entries and buckets are cold (a full
	// table's worth of them lies between two uses): fetch the entries a few evictions ahead, and the
	// buckets of the victims whose entry, holding the key to hash, was fetched that way before. Each
	// eviction is a few hundred ns apart, so 4 ahead leaves the entry lines time to arrive.
	constexpr uint64_t entry_ahead = 8, bucket_ahead = 4;
	const uint64_t mask = embryonic_fifo_.size() - 1;
	while (embryonic_head_ != embryonic_tail_) {
		const uint64_t queued = embryonic_tail_ - embryonic_head_;
		if (queued > entry_ahead) {
			const char* ahead = reinterpret_cast<const char*>(&entries_[embryonic_fifo_[(embryonic_head_ + entry_ahead) & mask].index]);
			__builtin_prefetch(ahead);
			__builtin_prefetch(ahead + 64);
		}
		if (queued > bucket_ahead) {
			const uint64_t h = hash_key(entries_[embryonic_fifo_[(embryonic_head_ + bucket_ahead) & mask].index].key);
			__builtin_prefetch(&buckets_[primary(h)]);
			__builtin_prefetch(&buckets_[secondary(h)]);
		}
		const embryonic_ref ref = embryonic_fifo_[embryonic_head_++ & mask];
		flow_entry& e = entries_[ref.index];
		if (e.generation != ref.generation || !is_embryonic(e.state))
			continue;
		if (remove_slot(e, ref.index, ref.generation)) {
			counters_.evicted_embryonic.fetch_add(1, std::memory_order_relaxed);
			return ref.index;
		}
	}
	return 0;
}

flow_entry* flow_table::insert(const flow_key& key, uint64_t hash, uint64_t now)
{
	const uint16_t tag = tag_of(hash);
	// The emptier of the two buckets (primary on a tie): keeps the load even, so that a key finds both
	// of its buckets full only when the table really is nearly full.
	std::atomic<uint64_t>* free_slot = nullptr;
	uint32_t index = 0;
	// Two rounds: the control thread may empty a slot between the scan and our CAS; then look again.
	for (int round = 0; round < 2 && !free_slot; ++round) {
		uint32_t most_free = 0;
		for (size_t b : {primary(hash), secondary(hash)}) {
			std::atomic<uint64_t>* first = nullptr;
			uint32_t free = 0;
			for (auto& slot : buckets_[b].slots) {
				if (slot.load(std::memory_order_relaxed) == 0) {
					free++;
					if (!first)
						first = &slot;
				}
			}
			if (free > most_free) {
				most_free = free;
				free_slot = first;
			}
		}
		if (free_slot || policy_ != full_policy::evict_embryonic)
			break;
		// Both buckets full: make room in them by evicting their stalest embryonic flow, if any; its
		// entry is reused at once (the owner is the only one who could still be using it).
		std::atomic<uint64_t>* victim = nullptr;
		uint64_t victim_seen = UINT64_MAX;
		for (size_t b : {primary(hash), secondary(hash)}) {
			for (auto& slot : buckets_[b].slots) {
				const uint64_t w = slot.load(std::memory_order_relaxed);
				const flow_entry& v = entries_[slot_index(w)];
				if (w && is_embryonic(v.state) && v.last_seen < victim_seen) {
					victim = &slot;
					victim_seen = v.last_seen;
				}
			}
		}
		if (!victim)
			break;
		uint64_t w = victim->load(std::memory_order_relaxed);
		if (w && victim->compare_exchange_strong(w, 0, std::memory_order_acq_rel)) {
			counters_.evicted_embryonic.fetch_add(1, std::memory_order_relaxed);
			free_slot = victim;
			index = slot_index(w);
		}
	}
	if (!free_slot) {
		counters_.refused_buckets.fetch_add(1, std::memory_order_relaxed);
		return nullptr;
	}
	if (index == 0)
		index = allocate(now);
	if (index == 0) {
		counters_.refused_full.fetch_add(1, std::memory_order_relaxed);
		return nullptr;
	}
	flow_entry& e = entries_[index];
	const uint16_t generation = uint16_t(e.generation + 1);
	std::memset(static_cast<void*>(&e), 0, sizeof(e));
	e.key = key;
	e.generation = generation;
	e.created = now;
	e.last_seen = now;
	// Only the owner fills empty slots (the control thread only empties them), so a release store is
	// enough; it publishes the entry's contents with the slot.
	free_slot->store(make_slot(index, generation, tag), std::memory_order_release);
	counters_.inserts.fetch_add(1, std::memory_order_relaxed);
	note_embryonic(&e);
	return &e;
}

void flow_table::note_embryonic(const flow_entry* e)
{
	if (embryonic_tail_ - embryonic_head_ == embryonic_fifo_.size())
		++embryonic_head_;  // full: forget the oldest hint
	embryonic_fifo_[embryonic_tail_++ & (embryonic_fifo_.size() - 1)] = {uint32_t(e - entries_), e->generation};
}

bool flow_table::remove_slot(const flow_entry& e, uint32_t index, uint16_t generation)
{
	const uint64_t hash = hash_key(e.key);
	for (size_t b : {primary(hash), secondary(hash)}) {
		for (auto& slot : buckets_[b].slots) {
			uint64_t w = slot.load(std::memory_order_acquire);
			if (w && slot_index(w) == index && slot_generation(w) == generation)
				return slot.compare_exchange_strong(w, 0, std::memory_order_acq_rel);
		}
	}
	return false;
}

void flow_table::retire(uint32_t index)
{
	retired_.push_back({index, quiescent_epoch_.load(std::memory_order_acquire)});
	retired_count_.fetch_add(1, std::memory_order_relaxed);
}

void flow_table::recycle_ready()
{
	// An entry retired at owner epoch E may still be in use by the owner until its epoch moves past E.
	const uint64_t epoch = quiescent_epoch_.load(std::memory_order_acquire);
	size_t kept = 0;
	uint64_t tail = free_tail_.load(std::memory_order_relaxed);
	for (const retired& r : retired_) {
		if (epoch > r.epoch) {
			free_ring_[tail & (free_ring_.size() - 1)] = r.index;
			++tail;
			counters_.recycled.fetch_add(1, std::memory_order_relaxed);
		} else {
			retired_[kept++] = r;
		}
	}
	retired_.resize(kept);
	free_tail_.store(tail, std::memory_order_release);
}

uint32_t flow_table::expire(uint64_t now, uint32_t buckets)
{
	recycle_ready();
	uint32_t expired = 0;
	for (uint32_t i = 0; i < buckets && i < bucket_count_; ++i) {
		bucket& b = buckets_[expire_cursor_];
		expire_cursor_ = (expire_cursor_ + 1) & bucket_mask_;
		for (auto& slot : b.slots) {
			uint64_t w = slot.load(std::memory_order_acquire);
			if (!w)
				continue;
			const flow_entry& e = entries_[slot_index(w)];
			const flow_state state = load_state(e);
			const uint64_t last = __atomic_load_n(&e.last_seen, __ATOMIC_RELAXED);
			if (now <= last || now - last <= idle_ticks_[uint32_t(state) % flow_state_count])
				continue;
			// The generation in w makes this fail if the owner evicted and reused the entry meanwhile.
			if (slot.compare_exchange_strong(w, 0, std::memory_order_acq_rel)) {
				counters_.expired[uint32_t(state) % flow_state_count].fetch_add(1, std::memory_order_relaxed);
				retire(slot_index(w));
				++expired;
			}
		}
	}
	return expired;
}

uint32_t flow_table::flush()
{
	recycle_ready();
	uint32_t removed = 0;
	for (size_t b = 0; b < bucket_count_; ++b) {
		for (auto& slot : buckets_[b].slots) {
			uint64_t w = slot.load(std::memory_order_acquire);
			if (w && slot.compare_exchange_strong(w, 0, std::memory_order_acq_rel)) {
				retire(slot_index(w));
				++removed;
			}
		}
	}
	counters_.flushed.fetch_add(removed, std::memory_order_relaxed);
	return removed;
}

std::string_view to_string(flow_state s)
{
	switch (s) {
	case flow_state::tcp_syn_sent: return "tcp_syn_sent";
	case flow_state::tcp_syn_received: return "tcp_syn_received";
	case flow_state::tcp_established: return "tcp_established";
	case flow_state::tcp_fin_wait: return "tcp_fin_wait";
	case flow_state::tcp_time_wait: return "tcp_time_wait";
	case flow_state::tcp_closed: return "tcp_closed";
	case flow_state::udp_new: return "udp_new";
	case flow_state::udp_established: return "udp_established";
	case flow_state::icmp_new: return "icmp_new";
	case flow_state::icmp_replied: return "icmp_replied";
	case flow_state::other_new: return "other_new";
	case flow_state::other_established: return "other_established";
	}
	return "unknown";
}

} // namespace portcullis::flow
