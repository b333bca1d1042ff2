// The connection table of one worker: a lock-free bucketised hash table of flow entries.
//
// Threads: each worker owns one table (flows are pinned to workers by symmetric RSS or by the software
// distributor, so both directions of a flow meet in one table). The owner looks up, inserts and updates
// entries; the control thread concurrently expires, lists and flushes them. No locks: bucket slots are
// 32-bit words changed with compare-and-swap, and an entry removed by the control thread is recycled only
// after the owner has passed a quiescent point (quiescent(), once per poll loop): quiescent-state-based
// reclamation with a single reader, so the owner never sees an entry reused under its feet.
//
// Layout: buckets of one cache line: ten 16-bit signatures side by side, an overflow count, and ten
// 32-bit slots (entry index, 24 bits, and the entry's generation, 8 bits; 0 is empty). A key lives in its
// primary bucket while that has room, else in its secondary one, and the primary then counts it in the
// one of its eight overflow counters that three bits of the key's hash pick; a lookup reads the
// secondary only when its own counter is not zero (one miss in eight of those a single count sent
// there). Callers prefetch a key's bucket as they hash it (prefetch()). So a miss costs one bucket
// line and two SIMD compares of the signatures, not two lines (rte_hash and VPP's bihash read both). One
// bucket per six flows of capacity (11 bytes a flow): at capacity a bucket holds six keys on average and
// about 4% of buckets overflow. 16-bit signatures, not 8: with twelve 8-bit ones a miss in a 90%-full
// table fetched a wrong entry 3% of the time, a dependent memory read that cost misses a quarter of
// their speed (bench-flowtable). Signatures are written by the owner only, before the slot is published,
// and go stale when the control thread empties a slot; a signature match is a hint, the entry's key
// decides. The generation in the slot makes every CAS specific to one use of an entry: a remover holding
// a stale slot word fails instead of removing the entry's next flow. When both buckets of a new key are full, a table
// with entries to spare moves one of their keys to its other bucket (one cuckoo step, half-open flows
// first); a full table with evict_embryonic takes the place of their stalest half-open flow. The owner
// also keeps a bit per bucket, set when a key whose primary bucket it is arrives and cleared when a lookup
// finds the bucket empty: in a table at most an eighth full, while lookups miss (one in 64 or more), a
// key whose bit is clear is a miss without reading its bucket (a SYN flood answered with cookies, or a
// scan the rules drop, then reads no bucket line; bench-sets add_to_scan: a trap-only SYN 70-105 ns
// instead of 130-210).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "flow/flow_key.h"
#include "flow/flow_state.h"
#include "memory/prefetch.h"

namespace portcullis::flow {

enum class full_policy : uint8_t { evict_embryonic, drop };

// At most 2^24 - 1 flows per table: a slot holds the entry index in 24 bits.
inline constexpr uint32_t max_table_capacity = (1u << 24) - 1;

// Idle timeouts longer than this are cut to it (flow_table::stamp: stamps are compared modulo 2^32).
// Linux conntrack's longest default, TCP established, is five days.
inline constexpr uint32_t max_timeout_seconds = 6 * 86400;

// Packets and bytes one side of a flow sent: 40-bit packets (10^12) and 56-bit bytes (64 PiB) in 12
// bytes. Written by the owner only; read by the control thread for listings.
struct side_traffic {
	uint32_t packets_low;
	uint64_t bytes_and_packets_high;  // bytes in the low 56 bits, packets' bits 32-39 in the top 8
	uint64_t packets() const { return packets_low | (bytes_and_packets_high >> 56) << 32; }
	uint64_t bytes() const { return bytes_and_packets_high & ((uint64_t(1) << 56) - 1); }
	void add(uint32_t len)
	{
		const uint64_t carry = ++packets_low == 0 ? uint64_t(1) << 56 : 0;
		bytes_and_packets_high += len + carry;  // bytes wrap into the packets' bits only past 64 PiB
	}
} __attribute__((packed));
static_assert(sizeof(side_traffic) == 12);

// 96 bytes, on a 32-byte boundary: two cache lines whatever its place, which lookup_burst prefetches.
// Everything a packet of a known flow reads or writes, and what the control thread lists and expires.
struct alignas(32) flow_entry {
	flow_key key;
	uint32_t last_seen;           // when the last packet came, in the table's stamp units (flow_table::stamp)
	uint32_t created;             // when the first packet came, in the table's coarse units (see age_seconds)
	uint32_t rule_id;             // rule that allowed the flow
	uint32_t ruleset_generation;  // rule set it was last judged by
	uint32_t seq_end[2];          // TCP, [0] opener, [1] responder: the sequence number after the last byte
	                              // (or SYN, FIN) each sent; before the SYN-ACK, the opener's ISN and the
	                              // SYN's data length (conntrack.cc)
	side_traffic traffic[2];      // [0] from the opener, [1] from the responder
	uint16_t window[2];           // TCP: each side's window scale and largest window (conntrack.cc)
	uint8_t generation;           // bumped on every reuse; also in the bucket slot
	flow_state state;
	uint8_t opener_is_b : 1;      // which endpoint of the key opened the flow
	uint8_t opener_direction : 1; // direction (0 in, 1 out) of the opening packet
	uint8_t fin_seen : 2;         // bit 0: opener sent FIN, bit 1: responder did
	uint8_t payload_watched : 1;  // its payload is (or was) inspected: only then is the scan state read
	uint8_t tcp_liberal : 1;      // TCP picked up mid-stream: windows unknown, not checked (as conntrack)
	uint8_t tcp_fragmented : 1;   // a side sent a fragmented segment: its ACKs may run up to 64 KB ahead
	uint8_t syn_proxied : 1;      // opened by a SYN cookie: its sequence numbers are translated (synproxy.h)
	uint8_t conn_limit;           // the `max-conn` id that counted this flow, 0 none (dataplane/conn_counts.h)
};
static_assert(sizeof(flow_entry) == 96);
static_assert(sizeof(flow_state) == 1);

// The state word as the control thread reads it while the owner may write it. Relaxed one-byte
// accesses: no tearing, no ordering needed. Through uint8_t because clang's atomic builtins take only
// integers and pointers (an unsigned char may alias the enum).
inline flow_state load_state(const flow_entry& e)
{
	return flow_state(__atomic_load_n(reinterpret_cast<const uint8_t*>(&e.state), __ATOMIC_RELAXED));
}
inline void store_state(flow_entry& e, flow_state s)
{
	__atomic_store_n(reinterpret_cast<uint8_t*>(&e.state), uint8_t(s), __ATOMIC_RELAXED);
}

struct table_config {
	uint32_t capacity = 1u << 20;  // flows this table holds (at most max_table_capacity)
	full_policy policy = full_policy::evict_embryonic;
	timeouts idle;
	uint64_t tsc_hz = 1'000'000'000;  // TSC ticks per second, to turn timeouts into ticks
};

// Counters of one table. The owner writes the first group, the control thread the second; each is read
// by anyone with relaxed loads (Prometheus sums them).
struct table_counters {
	std::atomic<uint64_t> inserts{0};
	std::atomic<uint64_t> refused_full{0};       // new flow refused: table full, nothing evictable
	std::atomic<uint64_t> refused_buckets{0};    // new flow refused: both its buckets full
	std::atomic<uint64_t> evicted_embryonic{0};
	alignas(64) std::atomic<uint64_t> expired[flow_state_count] = {};
	std::atomic<uint64_t> flushed{0};
	std::atomic<uint64_t> recycled{0};
};

class flow_table {
public:
	explicit flow_table(const table_config& config);
	~flow_table();
	flow_table(const flow_table&) = delete;
	flow_table& operator=(const flow_table&) = delete;

	// ---- owner worker ----
	// Lookups (lookup_burst, lookup, live, may_hold, prefetch) are the owner's only, though const: they
	// read, and lookups update, the owner's bucket marks (marked()).
	// found[i] = the entry of keys[i], or nullptr. hashes[i] = hash_key(keys[i]), each already given to
	// prefetch(): lookup_burst does not fetch the buckets itself (a key not prefetched is found all the
	// same, after a wait on its bucket).
	void lookup_burst(const flow_key* keys, const uint64_t* hashes, uint32_t n, flow_entry** found) const;
	// lookup_burst in two halves, for a caller with work of its own to overlap with the entries' fetches:
	// start_lookups compares the signatures in the bucket of each hash (already given to prefetch()),
	// leaving a hint per key (hints[i] for hashes[i]), and starts fetching the entries of the first
	// fetch_first hints; fetch(hint) starts the others', as the caller goes. finish_lookup(key, hashes[i],
	// hints[i]) then gives the entry or nullptr, and only it reads the entry. Hints are good until the
	// owner next inserts or calls quiescent().
	void start_lookups(const uint64_t* hashes, uint32_t n, const flow_entry** hints, uint32_t fetch_first) const;
	void fetch(const flow_entry* hint) const
	{
		// Both lines a 96-byte entry spans: the key is in the first, the state conntrack reads and the
		// counters it bumps may be in the second.
		if (hint && hint != entries_) {
			memory::prefetch(hint);
			memory::prefetch(reinterpret_cast<const char*>(hint) + 64);
		}
	}
	flow_entry* finish_lookup(const flow_key& key, uint64_t hash, const flow_entry* hint) const
	{
		bool settled;
		flow_entry* e = settle_lookup(key, hint, settled);
		return settled ? e : lookup(key, hash);  // signature collision, overflow, slot emptied since
	}
	// finish_lookup's answer where the hint settles it, without the call the other cases take: a miss by
	// its bucket's signatures or mark (nullptr), or the hinted entry holding the key. `settled` false:
	// ask finish_lookup.
	flow_entry* settle_lookup(const flow_key& key, const flow_entry* hint, bool& settled) const
	{
		const bool hit = hint != nullptr && hint != entries_ && hint->key == key;
		settled = hint == nullptr || hit;
		return hit ? const_cast<flow_entry*>(hint) : nullptr;
	}
	// Starts fetching the bucket a lookup of this hash reads first. A caller that hashes a burst's keys one
	// by one calls it with each hash as it is made, so that the fetches overlap the hashing (and parsing)
	// of the rest of the burst instead of starting in lookup_burst.
	// A key whose primary bucket is marked empty (may_hold() false) is looked up without reading memory,
	// so nothing is fetched for it.
	void prefetch(uint64_t hash) const
	{
		const uint32_t b = primary(hash);
		if (!use_marks_ || marked(b))
			memory::prefetch(&buckets_[b]);
	}
	// False when no key of this hash is in the table, from one bit per bucket (kept by the owner: set when
	// a key whose primary bucket it is arrives, cleared when a lookup finds that bucket empty with no
	// overflow), without reading the bucket. True may still be a miss; always true while the marks are not
	// in use (use_marks_).
	bool may_hold(uint64_t hash) const { return !use_marks_ || marked(primary(hash)); }
	flow_entry* lookup(const flow_key& key, uint64_t hash) const;
	// A zeroed entry holding key, with created = last_seen = now and a fresh generation, visible to
	// lookups; nullptr when refused (see full_policy). The caller fills in state and the rest; what the
	// removal hook reads (conn_limit, opener_is_b) is set before the entry is published, since the
	// control thread may remove it at once.
	flow_entry* insert(const flow_key& key, uint64_t hash, uint64_t now, uint8_t conn_limit = 0, bool opener_is_b = false);
	// The owner marks an entry embryonic again (e.g. re-opened TCP); keeps the eviction order honest.
	void note_embryonic(const flow_entry* e);
	// Entry index (1..capacity): the key of per-flow side tables such as the payload scan state.
	uint32_t index_of(const flow_entry* e) const { return uint32_t(e - entries_); }
	// Is the entry at this index a live flow (reachable from its buckets)?
	bool live(uint32_t index) const
	{
		const flow_entry& e = entries_[index];
		return index >= 1 && index <= capacity_ && lookup(e.key, hash_key(e.key)) == &e;
	}
	// Called with every flow the table removes (expired, flushed, evicted), by the thread removing it,
	// before its entry can be reused: for counts kept outside the table (conn_counts). Set before use.
	using remove_hook = void (*)(void* context, const flow_entry& e);
	void on_remove(remove_hook hook, void* context)
	{
		remove_hook_ = hook;
		remove_context_ = context;
	}
	// Once per poll loop, outside any use of entry pointers.
	void quiescent() { quiescent_epoch_.store(quiescent_epoch_.load(std::memory_order_relaxed) + 1, std::memory_order_release); }

	// ---- control thread ----
	// Scans up to `buckets` buckets from where the last call stopped, removes flows idle past their state's
	// timeout, and recycles entries whose grace period has passed. Returns the number expired.
	uint32_t expire(uint64_t now, uint32_t buckets);
	// Removes every flow. Returns how many.
	uint32_t flush();
	// Calls fn(const flow_entry&) for every live flow. Entries are read while the owner may write them:
	// a listing, not a transaction.
	template <class Fn>
	void for_each(Fn&& fn) const
	{
		for_each_slot_in(0, bucket_count_, [&](const flow_entry& e, uint8_t) { fn(e); });
	}
	// fn(entry, generation) over buckets [first, first + n) of bucket_count(), a walk in slices, with the
	// generation the entry's slot gives (which use of the entry it is): a reader that copies an entry
	// checks that its generation did not change meanwhile (sync's records).
	template <class Fn>
	void for_each_slot_in(size_t first, size_t n, Fn&& fn) const
	{
		const size_t end = std::min<size_t>(first + n, bucket_count_);
		for (size_t b = first; b < end; ++b)
			for (const auto& slot : buckets_[b].slots) {
				const uint32_t w = slot.load(std::memory_order_acquire);
				if (w)
					fn(entries_[slot_index(w)], slot_generation(w));
			}
	}
	size_t bucket_count() const { return bucket_count_; }
	// Live flows (approximate while workers run).
	uint64_t size() const;
	// Half-open TCP flows (SYN sent or SYN-ACK seen) as the last complete expiry sweep counted them: a
	// picture up to one sweep old, which the adaptive SYN cookies read (0 until a sweep completes).
	uint32_t half_open() const { return half_open_.load(std::memory_order_relaxed); }

	// ---- anyone ----
	// Seconds since the flow's first packet, to an eighth of a second or better (entries keep their
	// creation time in 32-bit units of 2^k TSC ticks: 17 years at least before it wraps), and never less
	// than the time since its last packet.
	double age_seconds(const flow_entry& e, uint64_t now) const
	{
		const uint32_t units = uint32_t(now >> created_shift_) - e.created;
		return std::max(double(uint64_t(units) << created_shift_) / double(tsc_hz_), idle_seconds(e, now));
	}
	// Seconds since the flow's last packet, to a millisecond or better.
	double idle_seconds(const flow_entry& e, uint64_t now) const
	{
		const int32_t idle = int32_t(stamp(now) - __atomic_load_n(&e.last_seen, __ATOMIC_RELAXED));
		return idle > 0 ? double(uint64_t(idle) << stamp_shift_) / double(tsc_hz_) : 0.0;
	}
	// A time as flow_entry::last_seen keeps it: 32-bit units of 2^k TSC ticks, the largest unit of at most
	// a millisecond, so 24 days at least before the stamp wraps. Idle times are differences modulo 2^32,
	// so timeouts are capped (max_timeout_seconds) well below that. Four bytes where a TSC takes eight:
	// the room TCP window tracking uses.
	uint32_t stamp(uint64_t now) const { return uint32_t(now >> stamp_shift_); }
	// A last_seen the next expiry scan takes as idle past any timeout (a flow to reap).
	static uint32_t stale_stamp(uint32_t now_stamp) { return now_stamp - stale_idle; }
	// flow_entry::created's units for a TSC time (age_seconds).
	uint32_t created_stamp(uint64_t tsc) const { return uint32_t(tsc >> created_shift_); }
	uint64_t tsc_hz() const { return tsc_hz_; }
	uint32_t capacity() const { return capacity_; }
	const table_counters& counters() const { return counters_; }

	size_t memory_bytes() const;
	// Buckets with a key counted as overflowed into its secondary bucket (a scan of every bucket): none
	// once the table is empty, unless a counter saturated (overflow_add).
	size_t overflowed_buckets() const;

private:
	static constexpr uint32_t bucket_slots = 10;
	struct alignas(64) bucket {
		uint16_t sig[bucket_slots];       // signature of the key in each slot; stale when the slot is empty
		// Keys of this primary bucket living in their secondary one, in eight 4-bit counters by
		// overflow_group of their hash; a counter that reaches 15 stays there (see overflow_add).
		std::atomic<uint32_t> overflow;
		std::atomic<uint32_t> slots[bucket_slots];  // index | generation << 24; 0 is empty
	};
	static_assert(sizeof(bucket) == 64 && offsetof(bucket, slots) == 24);
	static uint32_t slot_index(uint32_t w) { return w & max_table_capacity; }
	static uint8_t slot_generation(uint32_t w) { return uint8_t(w >> 24); }
	static uint16_t tag_of(uint64_t hash) { return uint16_t(hash); }
	// The overflow counter a key's hash uses: bits 32-34, the low end of the word whose high end picks
	// the secondary bucket, so they split a bucket's keys evenly and apart from their signatures.
	static uint32_t overflow_shift(uint64_t hash) { return uint32_t(hash >> 30) & 28u; }
	// Might the key of this hash live in its secondary bucket, by its primary bucket's counters?
	static bool may_have_overflowed(const bucket& primary_bucket, uint64_t hash)
	{
		return (primary_bucket.overflow.load(std::memory_order_relaxed) >> overflow_shift(hash) & 15u) != 0;
	}
	static void overflow_add(bucket& primary_bucket, uint64_t hash);
	static void overflow_sub(bucket& primary_bucket, uint64_t hash);
	static uint32_t make_slot(uint32_t index, uint8_t generation) { return index | uint32_t(generation) << 24; }
	// The owner's map of buckets that may hold keys whose primary bucket they are (may_hold()). Only the
	// owner reads or writes it, so an unset bit is never stale: the control thread only removes keys.
	bool marked(uint32_t b) const { return occupied_[b >> 6].load(std::memory_order_relaxed) >> (b & 63) & 1; }
	void mark(uint32_t b) const
	{
		std::atomic<uint64_t>& w = occupied_[b >> 6];
		w.store(w.load(std::memory_order_relaxed) | uint64_t(1) << (b & 63), std::memory_order_relaxed);
	}
	void unmark(uint32_t b) const
	{
		std::atomic<uint64_t>& w = occupied_[b >> 6];
		w.store(w.load(std::memory_order_relaxed) & ~(uint64_t(1) << (b & 63)), std::memory_order_relaxed);
	}
	void unmark_if_empty(uint32_t b) const;
	// Multiply-shift ranges (Lemire): the low 32 bits of the hash pick the primary bucket, the high 32 the
	// secondary, the lowest 16 (nearly independent of the primary's pick, which the high bits of its
	// word decide) make the signature.
	uint32_t primary(uint64_t hash) const { return uint32_t((uint64_t(uint32_t(hash)) * bucket_count_) >> 32); }
	uint32_t secondary(uint64_t hash) const
	{
		const uint32_t b = uint32_t(((hash >> 32) * bucket_count_) >> 32);
		return b != primary(hash) ? b : (b + 1 == bucket_count_ ? 0 : b + 1);
	}
	// The entry of the first slot in b whose signature is tag, whose key is key; nullptr if none.
	flow_entry* find_in(const bucket& b, const flow_key& key, uint16_t tag) const;
	// Removes the slot holding (index, generation), an entry whose key has this hash; true if this call
	// removed it.
	bool remove_slot(uint32_t index, uint8_t generation, uint64_t hash);
	// No entry unused or recycled: a new flow needs an eviction.
	bool table_full() const;
	// Empties the slot of the stalest embryonic flow in buckets p and s, for a new key whose buckets are
	// both full; b, slot and index then say where and which entry to reuse. False when there is none.
	bool evict_in_buckets(uint32_t p, uint32_t s, uint32_t now_stamp, uint32_t& b, uint32_t& slot, uint32_t& index);
	// Moves one key of bucket p or s (both full) to its other bucket; returns the freed slot (0..9 in p,
	// 10..19 in s), or 20 when every key's other bucket is full too.
	uint32_t displace(uint32_t p, uint32_t s);
	// insert() when the key's primary bucket has no free slot: its secondary bucket, a cuckoo step or an
	// eviction in the two buckets.
	flow_entry* insert_crowded(const flow_key& key, uint64_t hash, uint64_t now, uint8_t conn_limit, bool opener_is_b);
	// Fills entries_[index] with the key and publishes it in slot `slot` of bucket b (p: the key's primary
	// bucket), what every insert ends with.
	inline flow_entry* publish(const flow_key& key, uint64_t hash, uint64_t now, uint32_t p, uint32_t b, uint32_t slot,
	                           uint32_t index, uint8_t conn_limit, bool opener_is_b);
	// Empties `slot` of bucket b if it still holds w; keeps the overflow counts of the key's primary
	// bucket (from `hash`, the key's hash, or from the entry's key when the caller does not know it).
	static constexpr uint64_t no_hash = 0;
	bool clear_slot(uint32_t b, uint32_t slot, uint32_t w, uint64_t hash = no_hash);
	// clear_slot where b is known to be the key's primary bucket: nothing to count down, no hash needed.
	inline bool take_slot(uint32_t b, uint32_t slot, uint32_t w);
	// Where insert() placed a key, kept with its hint in the embryonic FIFO: (bucket + 1) << 5 | slot << 1
	// | 1 when the bucket is the key's secondary; 0 when not known (a flow embryonic again, note_embryonic).
	// At most 2^24 / 6 buckets: it fits 32 bits.
	static uint32_t place_of(uint32_t b, uint32_t slot, bool secondary) { return (b + 1) << 5 | slot << 1 | uint32_t(secondary); }
	static uint32_t place_bucket(uint32_t place) { return (place >> 5) - 1; }
	static uint32_t place_slot(uint32_t place) { return place >> 1 & 15u; }
	inline void push_embryonic(uint32_t slot_word, uint32_t place);
	inline uint32_t allocate(uint64_t now);
	void retire(uint32_t index);
	void recycle_ready();

	uint32_t capacity_;
	full_policy policy_;
	uint64_t tsc_hz_;
	uint32_t created_shift_;  // flow_entry::created counts 2^created_shift_ TSC ticks
	uint32_t stamp_shift_;    // flow_entry::last_seen counts 2^stamp_shift_ TSC ticks
	static constexpr uint32_t stale_idle = 1u << 30;
	uint32_t idle_stamps_[flow_state_count];  // timeouts in stamp units, below stale_idle
	uint32_t bucket_count_;
	bucket* buckets_;
	flow_entry* entries_;  // index 0 unused: a zero slot word means empty
	// A bit per bucket (marked()): a lookup, const, clears the bit of a bucket it finds empty.
	std::unique_ptr<std::atomic<uint64_t>[]> occupied_;
	// Whether lookups consult the marks, as start_lookups last decided (owner only): in a table at most an
	// eighth full, where about half the buckets are empty, while lookups miss (at least one in 64 of the
	// last marks_window). Fuller, a lookup would pay the extra load and skip almost nothing
	// (bench-flowtable's misses at 50-90% load: 0.78-0.83 of rte_hash with the marks read, 0.86-0.90
	// without); with nearly every lookup a hit, they skip nothing either. Inserts keep the marks either way.
	mutable bool use_marks_ = true;
	static constexpr uint32_t marks_window = 2048;  // lookups between two decisions on use_marks_
	mutable uint32_t window_lookups_ = 0, window_misses_ = 0;  // in this window, by start_lookups
	remove_hook remove_hook_ = nullptr;
	void* remove_context_ = nullptr;

	// Owner-only allocation state.
	alignas(64) uint32_t next_unused_ = 1;
	std::atomic<uint64_t> taken_{0};  // entries taken from the unused range or the free ring
	// Oldest first: slot word (index and generation) in the low half, its place (place_of) in the high.
	std::vector<uint64_t> embryonic_fifo_;
	uint64_t embryonic_head_ = 0, embryonic_tail_ = 0;
	// The hashes allocate() made of the victims' keys to fetch their buckets ahead, by FIFO position
	// (modulo victim_hash_slots): the eviction uses them rather than hash each victim's key twice.
	struct victim_hash {
		uint64_t position = ~uint64_t(0);  // embryonic_head_ the hash is for; none yet
		uint64_t hash = 0;
	};
	static constexpr uint32_t victim_hash_slots = 16;  // above allocate()'s bucket_ahead
	victim_hash victim_hashes_[victim_hash_slots];

	// Free ring: the control thread produces recycled indices, the owner consumes them.
	std::vector<uint32_t> free_ring_;
	alignas(64) std::atomic<uint64_t> free_head_{0};  // owner
	alignas(64) std::atomic<uint64_t> free_tail_{0};  // control thread

	alignas(64) std::atomic<uint64_t> quiescent_epoch_{0};

	alignas(64) std::atomic<uint32_t> half_open_{0};

	// Control-thread-only.
	size_t expire_cursor_ = 0;
	uint32_t sweep_half_open_ = 0;  // half-open flows the sweep in progress has passed
	struct retired {
		uint32_t index;
		uint64_t epoch;
	};
	std::vector<retired> retired_;
	std::atomic<uint64_t> retired_count_{0};

	table_counters counters_;
};

} // namespace portcullis::flow
