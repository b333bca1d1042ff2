#include "flow/flow_table.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <algorithm>
#include <bit>
#include <cstring>
#include <new>

#include "memory/huge_map.h"
#include "memory/zero.h"

namespace portcullis::flow {

flow_table::flow_table(const table_config& config)
	: capacity_(std::clamp<uint32_t>(config.capacity, 1, max_table_capacity)), policy_(config.policy),
	  tsc_hz_(std::max<uint64_t>(config.tsc_hz, 1)),
	  // The largest unit of at most an eighth of a second: 2^32 of them are 17 years at least.
	  created_shift_(tsc_hz_ >= 16 ? uint32_t(std::bit_width(tsc_hz_ / 8)) - 1 : 0),
	  stamp_shift_(tsc_hz_ >= 2000 ? uint32_t(std::bit_width(tsc_hz_ / 1000)) - 1 : 0)
{
	for (uint32_t s = 0; s < flow_state_count; ++s) {
		const uint64_t ticks = uint64_t(std::min(config.idle.seconds[s], max_timeout_seconds)) * tsc_hz_;
		idle_stamps_[s] = uint32_t(std::min<uint64_t>(ticks >> stamp_shift_, stale_idle - 1));
	}
	// Six keys per 10-slot bucket at capacity: with primary-first placement about 4% of buckets then
	// overflow (Poisson, mean 6), and a cuckoo step places the rare key whose two buckets are both full;
	// a miss reads the secondary bucket only when its overflow group counts a key there. Eight keys per
	// bucket (8 MB of buckets for a million flows, as rte_hash has, where six take 11 MB) made misses at
	// a million flows 0.87-0.98 of rte_hash's instead of 0.82-0.90 on a host whose last-level cache
	// keeps about 10 MB, but a new flow in a full table then found both its buckets full 6% of the time
	// instead of 0.3%, and cost 110 cycles instead of 80 (bench-pipeline's new_flows_64b: 0.19 of
	// testpmd instead of 0.21).
	bucket_count_ = std::max<uint32_t>(2, (capacity_ + 5) / 6);
	buckets_ = static_cast<bucket*>(memory::map_zeroed(size_t(bucket_count_) * sizeof(bucket), true));
	entries_ = static_cast<flow_entry*>(memory::map_zeroed((size_t(capacity_) + 1) * sizeof(flow_entry), true));
	occupied_ = std::make_unique<std::atomic<uint64_t>[]>((size_t(bucket_count_) + 63) / 64);  // zeroed
	// Rings of indices: the free ring never holds more than capacity of them, the embryonic FIFO forgets
	// its oldest hints when full.
	const size_t ring = std::bit_ceil(size_t(capacity_));
	free_ring_.resize(ring);
	embryonic_fifo_.resize(ring);
}

flow_table::~flow_table()
{
	memory::unmap(buckets_, size_t(bucket_count_) * sizeof(bucket));
	memory::unmap(entries_, (size_t(capacity_) + 1) * sizeof(flow_entry));
}

size_t flow_table::memory_bytes() const
{
	// As mapped (whole huge pages for the large arrays), with the owner's bucket marks.
	return memory::mapped_bytes(size_t(bucket_count_) * sizeof(bucket)) +
	       memory::mapped_bytes((size_t(capacity_) + 1) * sizeof(flow_entry)) + (size_t(bucket_count_) + 63) / 64 * 8 +
	       free_ring_.size() * sizeof(uint32_t) + embryonic_fifo_.size() * sizeof(uint64_t);
}

size_t flow_table::overflowed_buckets() const
{
	size_t n = 0;
	for (size_t b = 0; b < bucket_count_; ++b)
		n += buckets_[b].overflow.load(std::memory_order_relaxed) != 0;
	return n;
}

uint64_t flow_table::size() const
{
	const uint64_t taken = taken_.load(std::memory_order_relaxed);
	const uint64_t retired = retired_count_.load(std::memory_order_relaxed);
	return taken > retired ? taken - retired : 0;
}

namespace {

// Bit i set when signature i is `tag`: two 16-byte compares (SSE2, which every x86-64 has), of
// signatures 0-7 and 2-9. Signatures are plain words that only the owner writes; the slot is then read
// atomically and the key compared.
inline uint32_t sig_matches(const uint16_t* sig, uint16_t tag)
{
#ifdef __SSE2__
	const __m128i want = _mm_set1_epi16(short(tag)), zero = _mm_setzero_si128();
	const __m128i lo = _mm_cmpeq_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(sig)), want);
	const __m128i hi = _mm_cmpeq_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sig + 2)), want);
	const uint32_t m0 = uint32_t(_mm_movemask_epi8(_mm_packs_epi16(lo, zero)));  // bits 0-7: signatures 0-7
	const uint32_t m1 = uint32_t(_mm_movemask_epi8(_mm_packs_epi16(hi, zero)));  // bits 0-7: signatures 2-9
	return (m0 | m1 << 2) & 0x3ffu;
#else
	uint32_t m = 0;
	for (uint32_t i = 0; i < 10; ++i)
		m |= uint32_t(sig[i] == tag) << i;
	return m;
#endif
}

// Bit i set when slot i of the ten holds `word` (0: when it is empty). Three compares instead of a loop
// whose exit mispredicts (an eviction's removal looks for its victim's word this way).
inline uint32_t slots_holding(const std::atomic<uint32_t>* slots, uint32_t word)
{
#ifdef __SSE2__
	const auto* v = reinterpret_cast<const __m128i*>(slots);
	const __m128i want = _mm_set1_epi32(int(word));
	auto bits = [&](__m128i x) { return uint32_t(_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(x, want)))); };
	const uint32_t m0 = bits(_mm_loadu_si128(v)), m1 = bits(_mm_loadu_si128(v + 1));
	const uint32_t m2 = bits(_mm_loadl_epi64(v + 2)) & 3u;  // slots 8 and 9
	return m0 | m1 << 4 | m2 << 8;
#else
	uint32_t m = 0;
	for (uint32_t i = 0; i < 10; ++i)
		m |= uint32_t(slots[i].load(std::memory_order_relaxed) == word) << i;
	return m;
#endif
}

inline uint32_t empty_slots(const std::atomic<uint32_t>* slots) { return slots_holding(slots, 0); }

// Adds to a counter that only this thread writes (others read it): a plain load and store, not the
// locked add of fetch_add, which cost about 20 cycles each, three times per new flow.
inline void bump(std::atomic<uint64_t>& c) { c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed); }

inline void clear(flow_entry& e)
{
	static_assert(alignof(flow_entry) >= 16);
	memory::zero_aligned<sizeof(flow_entry)>(&e);
}

} // namespace

flow_entry* flow_table::find_in(const bucket& b, const flow_key& key, uint16_t tag) const
{
	for (uint32_t m = sig_matches(b.sig, tag); m; m &= m - 1) {
		const uint32_t w = b.slots[__builtin_ctz(m)].load(std::memory_order_acquire);
		if (w && entries_[slot_index(w)].key == key)
			return &entries_[slot_index(w)];
	}
	return nullptr;
}

flow_entry* flow_table::lookup(const flow_key& key, uint64_t hash) const
{
	const uint16_t tag = tag_of(hash);
	if (!may_hold(hash))
		return nullptr;
	const bucket& p = buckets_[primary(hash)];
	if (flow_entry* e = find_in(p, key, tag))
		return e;
	if (!may_have_overflowed(p, hash)) {
		if (use_marks_)
			unmark_if_empty(primary(hash));
		return nullptr;
	}
	return find_in(buckets_[secondary(hash)], key, tag);
}

void flow_table::unmark_if_empty(uint32_t b) const
{
	// Only the owner adds keys, and it is the caller: a bucket seen empty with no overflow stays so until
	// the owner itself inserts (which marks it again); the control thread can only empty it further.
	// Slot 0 first: a new key takes a bucket's lowest free slot, so in a bucket that holds keys it is
	// nearly always taken, and a miss on a bucket that holds keys pays one load for this test.
	const bucket& bk = buckets_[b];
	if (bk.slots[0].load(std::memory_order_relaxed) == 0 && empty_slots(bk.slots) == (1u << bucket_slots) - 1 &&
	    bk.overflow.load(std::memory_order_relaxed) == 0)
		unmark(b);
}

void flow_table::lookup_burst(const flow_key* keys, const uint64_t* hashes, uint32_t n, flow_entry** found) const
{
	// Groups of 64, a worker's whole burst: two waits on memory per burst, one for its buckets and one for
	// its entries (groups of 16 kept established packets under a 99% SYN flood at 0.65 of their speed
	// instead of 0.68; bench-flood).
	constexpr uint32_t step = 64;
	for (uint32_t base = 0; base < n; base += step) {
		const uint32_t m = n - base < step ? n - base : step;
		const flow_entry* hints[step];
		start_lookups(hashes + base, m, hints, m);
		for (uint32_t i = 0; i < m; ++i)
			found[base + i] = finish_lookup(keys[base + i], hashes[base + i], hints[i]);
	}
}

void flow_table::start_lookups(const uint64_t* hashes, uint32_t n, const flow_entry** hints, uint32_t fetch_first) const
{
	// The caller has prefetched every key's primary bucket as it hashed the key (prefetch()): compare
	// signatures and prefetch the entries they point at; finish_lookup then compares keys. A first pass
	// that prefetched the buckets again, for callers that had not, cost bench-flowtable's misses 6-8%
	// (0.84-0.92 of rte_hash at a million flows, 0.90-0.99 without it, same runs). A key that is not in
	// its primary bucket is looked for in its secondary only when the primary has overflowed (about 4%
	// of buckets at capacity).
	if (window_lookups_ >= marks_window) {
		// The marks pay only on a miss whose bucket is empty, and every lookup pays for reading them: on
		// while at least one lookup in 64 of the last window missed, in a table at most an eighth full
		// (where about half the buckets are empty). Off, a lookup that hits saves the mark's load before
		// its bucket prefetch: established_64b's worker 0.98 of the cycles with the marks read, in
		// alternating 20 ms windows in one process. One in 64 keeps them on for a scan of a few percent
		// of the packets (bench-sets add_to_scan, 3%), whose misses they spare a bucket line each.
		const bool marks = window_misses_ * 64 >= window_lookups_ && size() <= capacity_ / 8;
		if (marks != use_marks_)  // written only on a change: its line is one the control thread reads
			use_marks_ = marks;
		window_lookups_ = window_misses_ = 0;
	}
	const bool marks = use_marks_;
	uint32_t misses = 0;
	for (uint32_t i = 0; i < n; ++i) {
		// A key whose primary bucket is marked empty is a miss without reading it: under a flood of SYNs
		// that open nothing (answered with cookies, or dropped by the rules) in a table with room, most
		// buckets are empty, and their lines stay out of the caches.
		const uint32_t bi = primary(hashes[i]);
		if (marks && !marked(bi)) {
			hints[i] = nullptr;
			++misses;
			continue;
		}
		const bucket& b = buckets_[bi];
		const uint32_t matches = sig_matches(b.sig, tag_of(hashes[i]));
		const flow_entry* e = nullptr;
		if (matches) {
			const uint32_t w = b.slots[__builtin_ctz(matches)].load(std::memory_order_acquire);
			e = &entries_[slot_index(w)];  // entries_[0] for an emptied slot: never a key's entry
			if (i < fetch_first)
				fetch(e);
		} else if (may_have_overflowed(b, hashes[i])) {
			memory::prefetch(&buckets_[secondary(hashes[i])]);
			e = entries_;  // look again in finish_lookup
		} else if (marks) {
			unmark_if_empty(bi);
		}
		misses += e == nullptr;
		hints[i] = e;
	}
	window_lookups_ += n;
	window_misses_ += misses;
}

// Empties `slot` of bucket b if it still holds w, and tells the removal hook: clear_slot without the
// overflow count, for a key in its primary bucket. Inline on the eviction's way (see insert()).
__attribute__((always_inline)) inline bool flow_table::take_slot(uint32_t b, uint32_t slot, uint32_t w)
{
	if (!buckets_[b].slots[slot].compare_exchange_strong(w, 0, std::memory_order_acq_rel))
		return false;
	const flow_entry& e = entries_[slot_index(w)];
	if (remove_hook_ && e.conn_limit)
		remove_hook_(remove_context_, e);
	return true;
}

// Inlined by force into both inserts: every new flow takes an entry here, and a full table's every new
// flow evicts one.
__attribute__((always_inline)) inline uint32_t flow_table::allocate(uint64_t now)
{
	(void)now;
	if (next_unused_ <= capacity_) {
		bump(taken_);
		return next_unused_++;
	}
	const uint64_t head = free_head_.load(std::memory_order_relaxed);
	if (head != free_tail_.load(std::memory_order_acquire)) {
		const uint32_t index = free_ring_[head & (free_ring_.size() - 1)];
		free_head_.store(head + 1, std::memory_order_release);
		bump(taken_);
		return index;
	}
	if (policy_ != full_policy::evict_embryonic)
		return 0;
	// Oldest embryonic flow first. The FIFO may hold flows that have since become established or been
	// expired and reused: the generation and state checks skip those.
	// Under a flood every new flow evicts one, and the victims' entries and buckets are cold (a full
	// table's worth of them lies between two uses): fetch the entries a few evictions ahead, and the
	// buckets of the victims whose entry, holding the key to hash, was fetched that way before. Under a
	// flood evictions come 30-40 ns apart (bench-pipeline's new_flows_64b): 16 and 8 ahead leave the lines
	// time to arrive from memory (8 and 4 did not: the open stage cost 95 TSC cycles a packet, now 87).
	// The FIFO itself was written a table's worth of flows ago and has left the caches: its line 64 hints
	// ahead is fetched too, or reading the hint 16 ahead waits on memory and the prefetches behind it
	// start late (a third of allocate's time in a profile of new_flows_64b).
	// Each hint also says where insert() placed the key: a victim still in its primary bucket costs that
	// one bucket line, fetched without first reading its key from the entry to hash it, and its slot is
	// emptied without a search (new_flows_64b: 0.936-0.951 of the worker cycles against both buckets
	// fetched by the key's hash, alternating 20 ms windows in one process, three runs). Victims placed in
	// their secondary bucket, or of unknown place, take the hash's way: both buckets.
	constexpr uint64_t entry_ahead = 16, bucket_ahead = 8, fifo_ahead = 64;
	static_assert(bucket_ahead < victim_hash_slots);
	const uint64_t mask = embryonic_fifo_.size() - 1;
	while (embryonic_head_ != embryonic_tail_) {
		const uint64_t queued = embryonic_tail_ - embryonic_head_;
		if (queued > fifo_ahead)
			memory::prefetch(&embryonic_fifo_[(embryonic_head_ + fifo_ahead) & mask]);
		if (queued > entry_ahead)
			fetch(&entries_[slot_index(uint32_t(embryonic_fifo_[(embryonic_head_ + entry_ahead) & mask]))]);
		if (queued > bucket_ahead) {
			const uint64_t at = embryonic_head_ + bucket_ahead;
			const uint64_t item = embryonic_fifo_[at & mask];
			const uint32_t place = uint32_t(item >> 32);
			if (place != 0 && !(place & 1)) {
				// In its primary bucket, where insert() put it: that line alone, no key read.
				memory::prefetch(&buckets_[place_bucket(place)]);
			} else {
				const uint64_t h = hash_key(entries_[slot_index(uint32_t(item))].key);
				memory::prefetch(&buckets_[primary(h)]);
				memory::prefetch(&buckets_[secondary(h)]);
				victim_hashes_[at % victim_hash_slots] = {at, h};
			}
		}
		const uint64_t at = embryonic_head_++;
		const uint64_t item = embryonic_fifo_[at & mask];
		const uint32_t ref = uint32_t(item), place = uint32_t(item >> 32);
		const flow_entry& e = entries_[slot_index(ref)];
		if (e.generation != slot_generation(ref) || !is_embryonic(e.state))
			continue;
		// The hash made as its buckets were fetched, if they were: the entry still holds that key (a reuse
		// would have changed its generation). Not hashing the key again: new_flows_64b 0.98 of the worker
		// cycles (alternating 20 ms windows in one process, three runs).
		const victim_hash& made = victim_hashes_[at % victim_hash_slots];
		const uint64_t h = made.position == at ? made.hash : no_hash;
		// Still where insert() put it (a cuckoo step may have moved it): that slot, without a search.
		if (place != 0) {
			const uint32_t b = place_bucket(place), slot = place_slot(place);
			if (buckets_[b].slots[slot].load(std::memory_order_relaxed) == ref &&
			    ((place & 1) ? clear_slot(b, slot, ref, h) : take_slot(b, slot, ref))) {
				bump(counters_.evicted_embryonic);
				return slot_index(ref);
			}
		}
		if (remove_slot(slot_index(ref), slot_generation(ref), h != no_hash ? h : hash_key(e.key))) {
			bump(counters_.evicted_embryonic);
			return slot_index(ref);
		}
	}
	return 0;
}

void flow_table::overflow_add(bucket& primary_bucket, uint64_t hash)
{
	// Owner and control thread both change the counters, so a CAS loop; a counter at 15 is left there
	// for good (the bucket's keys of that group then always look in their secondary bucket: slower, never
	// wrong), so it can neither carry into its neighbour nor later count down below the keys it holds.
	const uint32_t shift = overflow_shift(hash);
	uint32_t w = primary_bucket.overflow.load(std::memory_order_relaxed);
	while ((w >> shift & 15u) != 15u &&
	       !primary_bucket.overflow.compare_exchange_weak(w, w + (1u << shift), std::memory_order_relaxed))
		;
}

void flow_table::overflow_sub(bucket& primary_bucket, uint64_t hash)
{
	const uint32_t shift = overflow_shift(hash);
	uint32_t w = primary_bucket.overflow.load(std::memory_order_relaxed);
	while ((w >> shift & 15u) != 15u &&
	       !primary_bucket.overflow.compare_exchange_weak(w, w - (1u << shift), std::memory_order_relaxed))
		;
}

bool flow_table::clear_slot(uint32_t b, uint32_t slot, uint32_t w, uint64_t hash)
{
	if (!take_slot(b, slot, w))
		return false;
	// The slot's entry cannot be reused before this returns (the owner calls this, or the control thread
	// just took the entry out of every bucket), so its key is stable here.
	const flow_entry& e = entries_[slot_index(w)];
	if (hash == no_hash)
		hash = hash_key(e.key);
	if (const uint32_t primary_bucket = primary(hash); primary_bucket != b)
		overflow_sub(buckets_[primary_bucket], hash);
	return true;
}

bool flow_table::table_full() const
{
	return next_unused_ > capacity_ &&
	       free_head_.load(std::memory_order_relaxed) == free_tail_.load(std::memory_order_acquire);
}

bool flow_table::evict_in_buckets(uint32_t p, uint32_t s, uint32_t now_stamp, uint32_t& b, uint32_t& slot,
                                  uint32_t& index)
{
	// The stalest embryonic flow of the two buckets; its entry is reused at once (the owner is the only
	// one who could still be using it).
	uint32_t victim_bucket = 0, victim_slot = bucket_slots, victim_w = 0;
	int32_t victim_idle = -1;
	for (uint32_t vb : {p, s}) {
		for (uint32_t i = 0; i < bucket_slots; ++i) {
			const uint32_t w = buckets_[vb].slots[i].load(std::memory_order_relaxed);
			const flow_entry& v = entries_[slot_index(w)];
			const int32_t idle = int32_t(now_stamp - v.last_seen);
			if (w && is_embryonic(v.state) && idle > victim_idle) {
				victim_bucket = vb;
				victim_slot = i;
				victim_w = w;
				victim_idle = idle;
			}
		}
	}
	if (victim_slot == bucket_slots || !clear_slot(victim_bucket, victim_slot, victim_w))
		return false;
	bump(counters_.evicted_embryonic);
	b = victim_bucket;
	slot = victim_slot;
	index = slot_index(victim_w);
	return true;
}

__attribute__((always_inline)) inline void flow_table::push_embryonic(uint32_t slot_word, uint32_t place)
{
	if (embryonic_tail_ - embryonic_head_ == embryonic_fifo_.size())
		++embryonic_head_;  // full: forget the oldest hint
	embryonic_fifo_[embryonic_tail_++ & (embryonic_fifo_.size() - 1)] = uint64_t(place) << 32 | slot_word;
}

// Inlined by force into both inserts: a call would pass nine arguments, four of them on the stack.
__attribute__((always_inline)) inline flow_entry* flow_table::publish(const flow_key& key, uint64_t hash, uint64_t now,
                                                                      uint32_t p, uint32_t b, uint32_t slot,
                                                                      uint32_t index, uint8_t conn_limit,
                                                                      bool opener_is_b)
{
	flow_entry& e = entries_[index];
	const uint8_t generation = uint8_t(e.generation + 1);
	clear(e);
	e.key = key;
	e.generation = generation;
	e.created = uint32_t(now >> created_shift_);
	e.last_seen = stamp(now);
	e.conn_limit = conn_limit;
	e.opener_is_b = opener_is_b;
	bucket& bk = buckets_[b];
	bk.sig[slot] = tag_of(hash);
	mark(p);  // the key's primary bucket holds it or counts it as overflow: lookups must read it
	if (b != p)
		overflow_add(buckets_[p], hash);
	// Only the owner fills empty slots (the control thread only empties them), so a release store is
	// enough; it publishes the entry's contents with the slot. allocate() may have evicted from this
	// very bucket meanwhile, never from this slot, which was empty when chosen.
	const uint32_t word = make_slot(index, generation);
	bk.slots[slot].store(word, std::memory_order_release);
	bump(counters_.inserts);
	push_embryonic(word, place_of(b, slot, b != p));
	return &e;
}

flow_entry* flow_table::insert(const flow_key& key, uint64_t hash, uint64_t now, uint8_t conn_limit, bool opener_is_b)
{
	// The common case on its own short way: a free slot in the key's primary bucket (nearly every insert
	// below capacity, and most of a full table's, whose victims come from the embryonic FIFO, not from this
	// bucket). The slot stays free while allocate() evicts: only the owner fills slots. One function from
	// the bucket to the FIFO, allocate() and an eviction from a victim's primary bucket inline, where the
	// one way through the two rounds below, with calls to allocate, clear_slot and push_embryonic, had
	// kept its values on the stack: a new flow in a full table took 266 instructions of table work instead
	// of 348 (new_flows_64b under callgrind), its worker 190-194 TSC cycles instead of 200-203 (four
	// interleaved pairs), and cold inserts, each waiting on its bucket line, overlap the next one's fetch
	// further: bench-flowtable 6.7-7.6 M inserts/s instead of 4.5-4.6 at 1M flows (three pairs).
	const uint32_t p = primary(hash);
	if (const uint32_t free = empty_slots(buckets_[p].slots)) [[likely]] {
		const uint32_t index = allocate(now);
		if (index == 0) [[unlikely]] {
			bump(counters_.refused_full);
			return nullptr;
		}
		return publish(key, hash, now, p, p, uint32_t(__builtin_ctz(free)), index, conn_limit, opener_is_b);
	}
	return insert_crowded(key, hash, now, conn_limit, opener_is_b);
}

flow_entry* flow_table::insert_crowded(const flow_key& key, uint64_t hash, uint64_t now, uint8_t conn_limit,
                                       bool opener_is_b)
{
	const uint32_t p = primary(hash);
	const uint32_t now_stamp = stamp(now);
	uint32_t b = p, slot = bucket_slots, index = 0;
	// Two rounds: the control thread may empty a slot between the scan and our store; then look again.
	for (int round = 0; round < 2 && slot == bucket_slots; ++round) {
		if (const uint32_t free = empty_slots(buckets_[p].slots)) {
			b = p;
			slot = uint32_t(__builtin_ctz(free));
			break;
		}
		const uint32_t s = secondary(hash);
		if (const uint32_t free = empty_slots(buckets_[s].slots)) {
			b = s;
			slot = uint32_t(__builtin_ctz(free));
			break;
		}
		// Both full. A full table that evicts takes the place of the stalest embryonic flow in these two
		// buckets; otherwise one of their keys moves to its other bucket if that has room (a cuckoo step,
		// half-open flows first), so that the table fills to its capacity and evicts nothing before.
		// Under a flood most inserts find both buckets full: cuckoo steps there moved established flows
		// to their secondary buckets, where their lookups wait on a second line (bench-flood at a 99%
		// share: 0.39 of their speed kept with cuckoo steps of any flow first, 0.72 this way).
		const bool evicting = policy_ == full_policy::evict_embryonic && table_full();
		if (evicting && evict_in_buckets(p, s, now_stamp, b, slot, index))
			break;
		if (const uint32_t freed = displace(p, s); freed != 2 * bucket_slots) {
			b = freed < bucket_slots ? p : s;
			slot = freed % bucket_slots;
			break;
		}
		if (policy_ == full_policy::evict_embryonic && !evicting && evict_in_buckets(p, s, now_stamp, b, slot, index))
			break;
		if (policy_ != full_policy::evict_embryonic)
			break;
	}
	if (slot == bucket_slots) {
		bump(counters_.refused_buckets);
		return nullptr;
	}
	if (index == 0)
		index = allocate(now);
	if (index == 0) {
		bump(counters_.refused_full);
		return nullptr;
	}
	return publish(key, hash, now, p, b, slot, index, conn_limit, opener_is_b);
}

uint32_t flow_table::displace(uint32_t p, uint32_t s)
{
	// Rare while the table has room (both buckets of a new key full: about 1% of inserts near
	// capacity), so the entries' keys are read cold to find their other bucket. Half-open flows move
	// first: an established flow left in its primary bucket keeps its one-line lookup. Only the owner
	// moves keys and only the owner looks keys up, so a key out of both buckets for a moment is never
	// missed by a lookup; the control thread may skip it in one expiry pass or one listing.
	for (const bool embryonic_only : {true, false}) {
		for (uint32_t from : {p, s}) {
			bucket& fb = buckets_[from];
			const uint32_t at = from == p ? 0 : bucket_slots;
			for (uint32_t i = 0; i < bucket_slots; ++i) {
				uint32_t w = fb.slots[i].load(std::memory_order_acquire);
				if (!w)
					return at + i;  // emptied by the control thread meanwhile
				const flow_entry& e = entries_[slot_index(w)];
				if (embryonic_only && !is_embryonic(e.state))
					continue;
				const uint64_t h = hash_key(e.key);
				const uint32_t home = primary(h), to = from == home ? secondary(h) : home;
				const uint32_t free = empty_slots(buckets_[to].slots);
				if (!free)
					continue;
				if (!fb.slots[i].compare_exchange_strong(w, 0, std::memory_order_acq_rel))
					return at + i;  // expired meanwhile: the slot is free all the same
				const uint32_t j = uint32_t(__builtin_ctz(free));
				buckets_[to].sig[j] = tag_of(h);
				if (to != home)
					overflow_add(buckets_[home], h);
				buckets_[to].slots[j].store(w, std::memory_order_release);
				if (from != home)
					overflow_sub(buckets_[home], h);
				return at + i;
			}
		}
	}
	return 2 * bucket_slots;
}

void flow_table::note_embryonic(const flow_entry* e)
{
	push_embryonic(make_slot(uint32_t(e - entries_), e->generation), 0);
}

bool flow_table::remove_slot(uint32_t index, uint8_t generation, uint64_t hash)
{
	const uint32_t home = primary(hash), w = make_slot(index, generation);
	for (uint32_t b : {home, secondary(hash)})
		if (const uint32_t m = slots_holding(buckets_[b].slots, w))
			return clear_slot(b, uint32_t(__builtin_ctz(m)), w, hash);
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
	const uint32_t now_stamp = stamp(now);
	uint32_t expired = 0;
	for (uint32_t i = 0; i < buckets && i < bucket_count_; ++i) {
		const uint32_t b = uint32_t(expire_cursor_);
		expire_cursor_ = b + 1 == bucket_count_ ? 0 : b + 1;
		if (b == 0) {
			half_open_.store(sweep_half_open_, std::memory_order_relaxed);
			sweep_half_open_ = 0;
		}
		for (uint32_t s = 0; s < bucket_slots; ++s) {
			const uint32_t w = buckets_[b].slots[s].load(std::memory_order_acquire);
			if (!w)
				continue;
			const flow_entry& e = entries_[slot_index(w)];
			const flow_state state = load_state(e);
			// A stamp newer than now (the owner's clock ran ahead of ours) is idle < 0: not expired.
			const int32_t idle = int32_t(now_stamp - __atomic_load_n(&e.last_seen, __ATOMIC_RELAXED));
			if (idle <= int32_t(idle_stamps_[uint32_t(state) % flow_state_count])) {
				sweep_half_open_ += state == flow_state::tcp_syn_sent || state == flow_state::tcp_syn_received;
				continue;
			}
			// The generation in w makes this fail if the owner evicted and reused the entry meanwhile.
			if (clear_slot(b, s, w)) {
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
	for (uint32_t b = 0; b < bucket_count_; ++b) {
		for (uint32_t s = 0; s < bucket_slots; ++s) {
			const uint32_t w = buckets_[b].slots[s].load(std::memory_order_acquire);
			if (w && clear_slot(b, s, w)) {
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
