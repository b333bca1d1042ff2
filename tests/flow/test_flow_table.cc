#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "flow/flow_table.h"

using namespace portcullis;
using namespace portcullis::flow;

namespace {

flow_key key_n(uint32_t n, uint8_t proto = 6)
{
	bool reversed;
	return make_key(4, proto, 0xC6120000u + (n & 0xffff), 0xC6130000u + (n >> 16), uint16_t(1024 + n % 50000), 80, reversed);
}

// An IPv4 key of random addresses, from one draw of rng, with the given protocol and ports.
flow_key random_key(std::mt19937_64& rng, uint8_t proto, uint16_t sport, uint16_t dport)
{
	bool reversed;
	const uint64_t r = rng();
	return make_key(4, proto, u128(uint32_t(r)), u128(uint32_t(r >> 32)), sport, dport, reversed);
}

table_config small_config(uint32_t capacity, full_policy policy = full_policy::evict_embryonic)
{
	table_config c;
	c.capacity = capacity;
	c.policy = policy;
	c.tsc_hz = 1000;  // 1 tick = 1 ms
	return c;
}

// The canonical order, spelled out: the smaller (address, port) is endpoint a, and `reversed` says the
// packet went from b to a.
void require_canonical(const flow_key& k, bool reversed_said, u128 src, u128 dst, uint16_t sport, uint16_t dport)
{
	const bool reversed = src > dst || (src == dst && sport > dport);
	REQUIRE(reversed_said == reversed);
	REQUIRE(k.a() == (reversed ? dst : src));
	REQUIRE(k.b() == (reversed ? src : dst));
	REQUIRE(k.port_a == (reversed ? dport : sport));
	REQUIRE(k.port_b == (reversed ? sport : dport));
}

} // namespace

TEST_CASE("make_key gives both directions of a flow the same key")
{
	bool r1, r2;
	const flow_key a = make_key(4, 6, 0xC6120001, 0xC6130002, 40000, 22, r1);
	const flow_key b = make_key(4, 6, 0xC6130002, 0xC6120001, 22, 40000, r2);
	CHECK(a == b);
	CHECK(r1 != r2);
	CHECK(hash_key(a) == hash_key(b));
	// Same addresses, ports swapped the other way round is a different flow.
	const flow_key c = make_key(4, 6, 0xC6120001, 0xC6130002, 22, 40000, r1);
	CHECK_FALSE(a == c);
}

TEST_CASE("insert and lookup agree with a reference map, single and burst")
{
	flow_table t(small_config(20000));
	std::unordered_map<uint32_t, flow_entry*> ref;
	std::mt19937 rng(7);
	for (uint32_t i = 0; i < 20000; ++i) {
		const uint32_t n = rng() % 1000000;
		if (ref.count(n))
			continue;
		const flow_key k = key_n(n);
		REQUIRE(t.lookup(k, hash_key(k)) == nullptr);
		flow_entry* e = t.insert(k, hash_key(k), 1);
		REQUIRE(e != nullptr);
		e->state = flow_state::tcp_established;
		ref[n] = e;
	}
	CHECK(t.size() == ref.size());
	std::vector<flow_key> keys;
	std::vector<uint64_t> hashes;
	std::vector<uint32_t> ids;
	for (auto& [n, e] : ref) {
		keys.push_back(key_n(n));
		ids.push_back(n);
	}
	for (uint32_t i = 0; i < 5000; ++i) {  // misses too
		keys.push_back(key_n(2000000 + i));
		ids.push_back(UINT32_MAX);
	}
	for (const auto& k : keys)
		hashes.push_back(hash_key(k));
	std::vector<flow_entry*> found(keys.size());
	t.lookup_burst(keys.data(), hashes.data(), uint32_t(keys.size()), found.data());
	for (size_t i = 0; i < keys.size(); ++i) {
		flow_entry* expect = ids[i] == UINT32_MAX ? nullptr : ref[ids[i]];
		REQUIRE(found[i] == expect);
		REQUIRE(t.lookup(keys[i], hashes[i]) == expect);
	}
	// The two halves the worker uses, in its bursts, whatever number of entries is fetched up front and
	// however many ahead the rest are asked for: the same answers, hits and misses alike.
	std::shuffle(keys.begin(), keys.end(), rng);  // hits and misses mixed within each burst
	for (size_t i = 0; i < keys.size(); ++i)
		hashes[i] = hash_key(keys[i]);
	for (const uint32_t ahead : {0u, 5u, 32u}) {
		for (size_t base = 0; base < keys.size(); base += 32) {
			const uint32_t n = uint32_t(std::min<size_t>(32, keys.size() - base));
			const flow_entry* hints[32];
			for (uint32_t i = 0; i < n; ++i)
				t.prefetch(hashes[base + i]);
			t.start_lookups(&hashes[base], n, hints, ahead);
			for (uint32_t i = 0; i < n; ++i) {
				if (i + ahead < n)
					t.fetch(hints[i + ahead]);
				REQUIRE(t.finish_lookup(keys[base + i], hashes[base + i], hints[i]) ==
				        t.lookup(keys[base + i], hashes[base + i]));
			}
		}
	}
}

TEST_CASE("a full table evicts the oldest embryonic flow and never an established one")
{
	// 50 established flows, then 50 half-open ones: a full table.
	auto fill = [](flow_table& t, std::vector<flow_entry*>& established) {
		for (uint32_t i = 0; i < 50; ++i) {
			flow_entry* e = t.insert(key_n(i), hash_key(key_n(i)), 1);
			REQUIRE(e);
			e->state = flow_state::tcp_established;
			established.push_back(e);
		}
		for (uint32_t i = 50; i < 100; ++i) {
			flow_entry* e = t.insert(key_n(i), hash_key(key_n(i)), 2);
			REQUIRE(e);
			e->state = flow_state::tcp_syn_sent;
		}
	};
	// A new key whose two buckets are both full takes the place of the stalest half-open flow in them;
	// otherwise the oldest half-open flow of the table goes. Every new key evicts exactly one half-open
	// flow; the first of keys 1000... that, in a table filled the same way, evicts key 50 (the oldest) is
	// one whose buckets had room, and it must do so again here.
	uint32_t newcomer = 0;
	for (uint32_t k = 1000; k < 1100 && newcomer == 0; ++k) {
		flow_table twin(small_config(100));
		std::vector<flow_entry*> ignored;
		fill(twin, ignored);
		REQUIRE(twin.insert(key_n(k), hash_key(key_n(k)), 3));
		CHECK(twin.counters().evicted_embryonic.load() == 1);
		uint32_t gone = 0;
		for (uint32_t i = 0; i < 100; ++i)
			gone += twin.lookup(key_n(i), hash_key(key_n(i))) == nullptr;
		CHECK(gone == 1);
		for (uint32_t i = 0; i < 50; ++i)
			CHECK(twin.lookup(key_n(i), hash_key(key_n(i))) != nullptr);
		if (twin.lookup(key_n(50), hash_key(key_n(50))) == nullptr)
			newcomer = k;
	}
	REQUIRE(newcomer != 0);  // most keys' buckets have room (8 keys per 10 slots at capacity)
	flow_table t(small_config(100));
	std::vector<flow_entry*> established;
	fill(t, established);
	CHECK(t.size() == 100);
	flow_entry* e = t.insert(key_n(newcomer), hash_key(key_n(newcomer)), 3);
	REQUIRE(e);
	e->state = flow_state::tcp_syn_sent;
	CHECK(t.counters().evicted_embryonic.load() == 1);
	CHECK(t.lookup(key_n(50), hash_key(key_n(50))) == nullptr);
	CHECK(t.lookup(key_n(51), hash_key(key_n(51))) != nullptr);
	CHECK(t.lookup(key_n(newcomer), hash_key(key_n(newcomer))) == e);
	CHECK(t.size() == 100);
	// A flood of 500 more: every embryonic goes, the established all stay, the table never grows.
	for (uint32_t i = 2000; i < 2500; ++i) {
		flow_entry* f = t.insert(key_n(i), hash_key(key_n(i)), 4);
		REQUIRE(f);
		f->state = flow_state::tcp_syn_sent;
	}
	CHECK(t.size() == 100);
	for (uint32_t i = 0; i < 50; ++i)
		CHECK(t.lookup(key_n(i), hash_key(key_n(i))) == established[i]);
	// Only established left besides the flood's latest: once they fill the table, new flows are refused.
	for (uint32_t i = 2500; i < 2550; ++i) {
		flow_entry* f = t.insert(key_n(i), hash_key(key_n(i)), 5);
		REQUIRE(f);
		f->state = flow_state::tcp_established;
	}
	CHECK(t.insert(key_n(9999), hash_key(key_n(9999)), 6) == nullptr);
	CHECK(t.counters().refused_full.load() == 1);
}

TEST_CASE("a flood evicts every older half-open flow past stale and established FIFO entries")
{
	// The FIFO of half-open flows holds entries since established (skipped), and entries expired and
	// reused by other keys (their old generation, skipped). Each eviction must still remove the flow it
	// picks: an eviction that looked for the victim's slot with a wrong hash would leave it in the table
	// and drop it from the FIFO for good.
	constexpr uint32_t capacity = 1000;
	flow_table t(small_config(capacity));  // 1 tick = 1 ms; half-open flows time out after 30 s
	auto add = [&](uint32_t k, uint64_t now, flow_state s) {
		flow_entry* e = t.insert(key_n(k), hash_key(key_n(k)), now);
		REQUIRE(e);
		e->state = s;
		return e;
	};
	std::vector<std::pair<uint32_t, flow_entry*>> established;
	for (uint32_t k = 0; k < capacity; ++k) {
		const bool keeps = k % 7 == 0;
		flow_entry* e = add(k, k < 600 ? 0 : 40000, keeps ? flow_state::tcp_established : flow_state::tcp_syn_sent);
		if (keeps)
			established.push_back({k, e});
	}
	CHECK(t.size() == capacity);
	// Keys 0-599 that are still half-open expire; their entries come back for keys 2000-2599, then the
	// table is full again and evicts.
	const uint32_t expired = t.expire(45000, 1u << 20);
	CHECK(expired == 600 - 86);
	t.quiescent();
	t.expire(45000, 0);  // recycles
	for (uint32_t k = 2000; k < 2600; ++k)
		add(k, 45000, flow_state::tcp_syn_sent);
	CHECK(t.size() == capacity);
	const uint64_t evicted_before_flood = t.counters().evicted_embryonic.load();
	CHECK(evicted_before_flood == 600 - expired);
	constexpr uint32_t flood = 3 * capacity;
	for (uint32_t k = 10000; k < 10000 + flood; ++k)
		add(k, 46000 + k, flow_state::tcp_syn_sent);
	CHECK(t.size() == capacity);
	CHECK(t.counters().evicted_embryonic.load() - evicted_before_flood == flood);
	CHECK(t.counters().refused_full.load() == 0);
	CHECK(t.counters().refused_buckets.load() == 0);
	uint32_t lingering = 0;
	for (uint32_t k = 0; k < capacity; ++k)
		lingering += k % 7 != 0 && t.lookup(key_n(k), hash_key(key_n(k))) != nullptr;
	for (uint32_t k = 2000; k < 2600; ++k)
		lingering += t.lookup(key_n(k), hash_key(key_n(k))) != nullptr;
	CHECK(lingering == 0);
	for (const auto& [k, e] : established)
		CHECK(t.lookup(key_n(k), hash_key(key_n(k))) == e);
	// The newest half-open flows are the ones left (but for the few a full pair of buckets evicted early).
	uint32_t newest = 0;
	for (uint32_t k = 10000 + flood - (capacity - uint32_t(established.size())); k < 10000 + flood; ++k)
		newest += t.lookup(key_n(k), hash_key(key_n(k))) != nullptr;
	CHECK(newest >= (capacity - established.size()) * 9 / 10);
}

TEST_CASE("a flood evicts its victims from where they were placed, moved or overflowed, and every key stays findable")
{
	// A table filled to capacity with random half-open keys holds some in their secondary bucket and some
	// moved there by a cuckoo step after their place was noted: evictions take a victim from the slot
	// insert() put it in when it is still there, and look for it otherwise. Each must remove exactly its
	// victim and count down the overflow of a key that was in its secondary bucket: a count left too low
	// would hide a live key from lookups (which skip a secondary bucket the count says is unused).
	for (uint32_t capacity : {64u, 1000u, 20000u}) {
		flow_table t(small_config(capacity));
		std::mt19937_64 rng(capacity + 7);
		std::vector<flow_key> keys;
		auto add = [&](uint64_t now) {
			const flow_key k = random_key(rng, 6, 1024, 80);
			if (t.lookup(k, hash_key(k)))
				return;
			flow_entry* e = t.insert(k, hash_key(k), now);
			REQUIRE(e != nullptr);
			e->state = flow_state::tcp_syn_sent;
			keys.push_back(k);
		};
		while (keys.size() < capacity)
			add(1);
		CHECK(t.size() == capacity);
		CHECK(t.counters().evicted_embryonic.load() == 0);
		while (keys.size() < 4 * size_t(capacity))
			add(2);
		CHECK(t.size() == capacity);
		CHECK(t.counters().evicted_embryonic.load() == 3 * uint64_t(capacity));
		CHECK(t.counters().refused_buckets.load() == 0);
		uint32_t findable = 0;
		for (const flow_key& k : keys)
			findable += t.lookup(k, hash_key(k)) != nullptr;
		CHECK(findable == capacity);
		uint32_t listed = 0;
		t.for_each([&](const flow_entry&) { ++listed; });
		CHECK(listed == capacity);
	}
}

TEST_CASE("every counted flow a full table evicts reaches the removal hook once, from its primary or secondary bucket")
{
	// max-conn counts live outside the table: the hook gives each counted flow back exactly once, whoever
	// removes it and from wherever its key was placed (an eviction from the key's primary bucket takes
	// the slot without the overflow bookkeeping, one from its secondary bucket counts the overflow down).
	constexpr uint32_t capacity = 6000;
	flow_table t(small_config(capacity));
	std::unordered_map<uint32_t, int> removals;  // by rule_id, which holds the flow's number here
	t.on_remove([](void* context, const flow_entry& e) { ++(*static_cast<std::unordered_map<uint32_t, int>*>(context))[e.rule_id]; },
	            &removals);
	std::mt19937_64 rng(11);
	std::vector<flow_key> keys;
	auto counted = [](uint32_t n) { return n % 3 == 0; };
	while (keys.size() < 4 * size_t(capacity)) {
		const flow_key k = random_key(rng, 6, 1024, 80);
		if (t.lookup(k, hash_key(k)))
			continue;
		const uint32_t n = uint32_t(keys.size());
		flow_entry* e = t.insert(k, hash_key(k), 1 + n / capacity, counted(n) ? 1 : 0);
		REQUIRE(e != nullptr);
		e->state = flow_state::tcp_syn_sent;
		e->rule_id = n;
		keys.push_back(k);
	}
	CHECK(t.counters().evicted_embryonic.load() == 3 * uint64_t(capacity));
	CHECK(t.overflowed_buckets() > 0);  // some keys live in their secondary bucket, as some victims did
	// Evicted: mostly the oldest (the FIFO), a few of any age (both buckets of a new key full).
	uint32_t live = 0;
	for (uint32_t n = 0; n < keys.size(); ++n) {
		const bool in_table = t.lookup(keys[n], hash_key(keys[n])) != nullptr;
		live += in_table;
		INFO("flow " << n);
		CHECK(removals[n] == (counted(n) && !in_table ? 1 : 0));
	}
	CHECK(live == capacity);
	CHECK(t.flush() == capacity);
	for (uint32_t n = 0; n < keys.size(); ++n) {
		INFO("flow " << n);
		CHECK(removals[n] == (counted(n) ? 1 : 0));
	}
	// Every key that had overflowed was counted down as it went, the evicted ones included: an eviction
	// from a secondary bucket that skipped it would leave its primary's count up for good.
	CHECK(t.overflowed_buckets() == 0);
}

TEST_CASE("drop policy refuses new flows when full")
{
	flow_table t(small_config(10, full_policy::drop));
	for (uint32_t i = 0; i < 10; ++i) {
		flow_entry* e = t.insert(key_n(i), hash_key(key_n(i)), 1);
		REQUIRE(e);
		e->state = flow_state::tcp_syn_sent;
	}
	CHECK(t.insert(key_n(10), hash_key(key_n(10)), 1) == nullptr);
	CHECK(t.counters().refused_full.load() == 1);
	CHECK(t.counters().evicted_embryonic.load() == 0);
}

TEST_CASE("expiry follows per-state timeouts and entries come back after a quiescent point")
{
	table_config c = small_config(4);
	c.idle[flow_state::tcp_syn_sent] = 5;       // seconds = 5000 ticks here
	c.idle[flow_state::tcp_established] = 100;
	flow_table t(c);
	flow_entry* a = t.insert(key_n(1), hash_key(key_n(1)), 0);
	a->state = flow_state::tcp_syn_sent;
	flow_entry* b = t.insert(key_n(2), hash_key(key_n(2)), 0);
	b->state = flow_state::tcp_established;
	CHECK(t.expire(4000, 1u << 20) == 0);
	CHECK(t.expire(6000, 1u << 20) == 1);
	CHECK(t.lookup(key_n(1), hash_key(key_n(1))) == nullptr);
	CHECK(t.lookup(key_n(2), hash_key(key_n(2))) == b);
	CHECK(t.counters().expired[uint32_t(flow_state::tcp_syn_sent)].load() == 1);
	b->last_seen = t.stamp(90000);  // the worker saw a packet: not idle
	CHECK(t.expire(150000, 1u << 20) == 0);
	CHECK(t.expire(200000, 1u << 20) == 1);
	CHECK(t.size() == 0);
	// Capacity 4: two never used plus two retired. The retired ones come back only after the owner
	// passes a quiescent point.
	for (uint32_t i = 10; i < 12; ++i)
		REQUIRE(t.insert(key_n(i), hash_key(key_n(i)), 200000));
	for (uint32_t i = 10; i < 12; ++i)
		t.lookup(key_n(i), hash_key(key_n(i)))->state = flow_state::tcp_established;
	CHECK(t.insert(key_n(12), hash_key(key_n(12)), 200000) == nullptr);
	t.quiescent();
	t.expire(200000, 1);  // recycles
	CHECK(t.counters().recycled.load() == 2);
	CHECK(t.insert(key_n(12), hash_key(key_n(12)), 200000) != nullptr);
	CHECK(t.insert(key_n(13), hash_key(key_n(13)), 200000) != nullptr);
}

TEST_CASE("flush removes everything")
{
	flow_table t(small_config(1000));
	for (uint32_t i = 0; i < 300; ++i)
		REQUIRE(t.insert(key_n(i), hash_key(key_n(i)), 1));
	CHECK(t.flush() == 300);
	CHECK(t.size() == 0);
	for (uint32_t i = 0; i < 300; ++i)
		CHECK(t.lookup(key_n(i), hash_key(key_n(i))) == nullptr);
}

TEST_CASE("owner and control thread run concurrently without losing live flows")
{
	// The owner keeps 1000 long-lived flows fresh while churning short-lived ones through a small table;
	// the control thread expires and recycles at the same time. Live flows must always be found.
	table_config c = small_config(4000);
	c.idle[flow_state::udp_new] = 1;            // 1000 ticks
	c.idle[flow_state::tcp_established] = 1000;
	flow_table t(c);
	std::atomic<uint64_t> now{0};
	std::atomic<bool> stop{false};
	for (uint32_t i = 0; i < 1000; ++i) {
		flow_entry* e = t.insert(key_n(i), hash_key(key_n(i)), 0);
		REQUIRE(e);
		e->state = flow_state::tcp_established;
	}
	std::thread control([&] {
		while (!stop.load()) {
			t.expire(now.load(), 64);
			std::this_thread::yield();
		}
	});
	uint64_t lost = 0, refused = 0;
	for (uint32_t round = 0; round < 300; ++round) {
		now.fetch_add(100);
		const uint64_t ts = now.load();
		for (uint32_t i = 0; i < 1000; ++i) {
			flow_entry* e = t.lookup(key_n(i), hash_key(key_n(i)));
			if (!e)
				++lost;
			else
				__atomic_store_n(&e->last_seen, t.stamp(ts), __ATOMIC_RELAXED);
		}
		for (uint32_t j = 0; j < 50; ++j) {
			const uint32_t n = 100000 + round * 50 + j;
			flow_entry* e = t.insert(key_n(n, 17), hash_key(key_n(n, 17)), ts);
			if (e)
				e->state = flow_state::udp_new;
			else
				++refused;
		}
		t.quiescent();
	}
	stop = true;
	control.join();
	CHECK(lost == 0);
	CHECK(t.size() <= 4000);
	CHECK(t.counters().expired[uint32_t(flow_state::udp_new)].load() > 0);
	INFO("refused " << refused);
}

TEST_CASE("a table fills to its capacity, and keys moved or overflowed stay findable through removals")
{
	// Random keys at several capacities: every insert up to capacity succeeds (primary bucket, then the
	// secondary, then one cuckoo step), and after expiring every other flow the rest are all still found,
	// which checks the overflow counts that let a lookup skip secondary buckets.
	for (uint32_t capacity : {64u, 1000u, 65536u, 100000u}) {
		table_config c = small_config(capacity, full_policy::drop);
		c.idle[flow_state::udp_new] = 1;
		c.idle[flow_state::tcp_established] = 1000;
		flow_table t(c);
		std::mt19937_64 rng(capacity);
		std::vector<flow_key> keys;
		std::vector<flow_entry*> entries;
		while (keys.size() < capacity) {
			const flow_key k = random_key(rng, 17, 53, 53);
			if (t.lookup(k, hash_key(k)))
				continue;
			flow_entry* e = t.insert(k, hash_key(k), 0);
			REQUIRE(e != nullptr);
			e->state = keys.size() % 2 ? flow_state::udp_new : flow_state::tcp_established;
			keys.push_back(k);
			entries.push_back(e);
		}
		CHECK(t.size() == capacity);
		CHECK(t.counters().refused_buckets.load() == 0);
		bool reversed;
		const flow_key one_more = make_key(6, 6, 1, 2, 3, 4, reversed);
		CHECK(t.insert(one_more, hash_key(one_more), 0) == nullptr);
		CHECK(t.counters().refused_full.load() == 1);
		for (size_t i = 0; i < keys.size(); ++i)
			REQUIRE(t.lookup(keys[i], hash_key(keys[i])) == entries[i]);
		CHECK(t.expire(5000, 1u << 24) == capacity / 2);
		std::vector<flow_entry*> found(keys.size());
		std::vector<uint64_t> hashes;
		for (const auto& k : keys)
			hashes.push_back(hash_key(k));
		t.lookup_burst(keys.data(), hashes.data(), uint32_t(keys.size()), found.data());
		for (size_t i = 0; i < keys.size(); ++i) {
			flow_entry* expect = i % 2 ? nullptr : entries[i];
			REQUIRE(t.lookup(keys[i], hashes[i]) == expect);
			REQUIRE(found[i] == expect);
		}
		// The expired half's room comes back after a quiescent point, and refills completely.
		t.quiescent();
		t.expire(5000, 1);
		for (size_t i = 1; i < keys.size(); i += 2)
			REQUIRE(t.insert(keys[i], hashes[i], 6000) != nullptr);
		CHECK(t.size() == capacity);
		for (size_t i = 0; i < keys.size(); ++i)
			REQUIRE(t.lookup(keys[i], hashes[i]) != nullptr);
	}
}


TEST_CASE("structured keys spread: one address pair with every source port, and consecutive addresses")
{
	// The IPv4 hash multiplies the addresses by the ports' word: keys that differ in a few low bits of
	// one of them only (a NAT's ports, a scan's addresses) must still land in buckets evenly enough that
	// a table fills to its capacity without a refusal.
	const uint32_t server = 0xc6120001;  // 198.18.0.1
	for (int pattern = 0; pattern < 3; ++pattern) {
		const uint32_t capacity = 60000;
		flow_table t(small_config(capacity, full_policy::drop));
		for (uint32_t i = 0; i < capacity; ++i) {
			flow_key k;
			bool reversed;
			if (pattern == 0)  // one client, every source port, one service
				make_key4(k, 6, 0xc6130002, server, uint16_t(1024 + i), 443, reversed);
			else if (pattern == 1)  // consecutive clients, one source port
				make_key4(k, 17, 0xc6130000 + i, server, 40000, 53, reversed);
			else  // one client to consecutive ports of one host (a port scan)
				make_key4(k, 6, 0xc6130002, server, 50000, uint16_t(i + 1), reversed);
			REQUIRE(t.insert(k, hash_key(k), 0) != nullptr);
		}
		CHECK(t.size() == capacity);
		CHECK(t.counters().refused_buckets.load() == 0);
	}
}

TEST_CASE("the IPv4 hash still mixes the ports of the one address pair whose multiplier is zero")
{
	// hash_words4 multiplies (addresses ^ p0 ^ seed) by the ports' word; for addresses equal to p0 ^ seed
	// that factor is zero, and the ports must still decide the hash.
	const uint64_t seed = 0x2545f4914f6cdd1dull, p0 = 0xa0761d6478bd642full;
	const uint64_t addresses = p0 ^ seed;
	std::set<uint64_t> hashes;
	for (uint64_t port = 1; port <= 1000; ++port)
		hashes.insert(hash_words4(addresses, port | uint64_t(6) << 32 | uint64_t(4) << 40, seed));
	CHECK(hashes.size() == 1000);
}

TEST_CASE("make_key4 builds the same key as make_key for IPv4, and its hash")
{
	std::mt19937_64 rng(44);
	for (int i = 0; i < 10000; ++i) {
		const uint64_t r = rng();
		// Equal addresses and equal ports now and then: the tie-breaks must agree too.
		const uint32_t src = uint32_t(r), dst = i % 7 == 0 ? src : uint32_t(r >> 32);
		const uint16_t sport = uint16_t(rng()), dport = i % 5 == 0 ? sport : uint16_t(rng());
		const uint8_t proto = uint8_t(rng());
		bool r1, r2;
		const flow_key a = make_key(4, proto, src, dst, sport, dport, r1);
		flow_key b;
		const uint64_t h = make_key4(b, proto, src, dst, sport, dport, r2);
		REQUIRE(std::memcmp(&a, &b, sizeof a) == 0);
		REQUIRE(h == hash_key(a));
		REQUIRE(r1 == r2);
		require_canonical(a, r1, src, dst, sport, dport);
	}
}

TEST_CASE("make_key puts the smaller IPv6 (address, port) first, and a packet and its reply meet")
{
	std::mt19937_64 rng(45);
	for (int i = 0; i < 10000; ++i) {
		// Addresses that differ only in their low half, or not at all, now and then: the compare must
		// take the whole 128 bits, then the ports.
		const u128 src = u128(rng()) << 64 | rng();
		const u128 dst = i % 7 == 0 ? src : i % 3 == 0 ? (src >> 64 << 64 | rng()) : (u128(rng()) << 64 | rng());
		const uint16_t sport = uint16_t(rng()), dport = i % 5 == 0 ? sport : uint16_t(rng());
		bool there, back;
		const flow_key k = make_key(6, 17, src, dst, sport, dport, there);
		const flow_key reply = make_key(6, 17, dst, src, dport, sport, back);
		require_canonical(k, there, src, dst, sport, dport);
		REQUIRE(k == reply);
		require_canonical(reply, back, dst, src, dport, sport);
	}
}

TEST_CASE("a 96-byte entry counts 40-bit packets and 56-bit bytes per side, and knows its age")
{
	side_traffic t{};
	t.packets_low = 0xffffffffu;  // the next packet carries into the packets' high bits
	t.add(1500);
	CHECK(t.packets() == (uint64_t(1) << 32));
	CHECK(t.bytes() == 1500);
	for (int i = 0; i < 3; ++i)
		t.add(64);
	CHECK(t.packets() == (uint64_t(1) << 32) + 3);
	CHECK(t.bytes() == 1500 + 3 * 64);

	table_config c = small_config(16);  // 1000 ticks a second
	flow_table table(c);
	flow_entry* e = table.insert(key_n(1), hash_key(key_n(1)), 5000);
	REQUIRE(e);
	e->last_seen = table.stamp(9000);
	// Created at 5 s: 4 s old at 9 s, to within the coarse unit (an eighth of a second at most here).
	CHECK(table.age_seconds(*e, 9000) >= 3.875);
	CHECK(table.age_seconds(*e, 9000) <= 4.0);
	// Never younger than its idle time.
	CHECK(table.age_seconds(*e, 9100) >= 0.1);
	CHECK(sizeof(flow_entry) == 96);
}

TEST_CASE("idle times are stamp differences modulo 2^32: a wrapped stamp is still fresh, a stale stamp expires")
{
	table_config c = small_config(8);
	c.tsc_hz = 2'600'000'000;  // stamps of 2^21 ticks (0.8 ms)
	c.idle[flow_state::tcp_established] = 7440;
	c.idle[flow_state::udp_established] = 4'000'000'000u;  // cut to max_timeout_seconds
	flow_table t(c);
	const uint64_t second = c.tsc_hz;
	// Just before the stamp wraps: 2^32 stamps of 2^21 ticks.
	const uint64_t wrap = uint64_t(1) << 53;
	const uint64_t before = wrap - 10 * second;
	flow_entry* e = t.insert(key_n(1), hash_key(key_n(1)), before);
	REQUIRE(e);
	e->state = flow_state::tcp_established;
	CHECK(t.stamp(before) > t.stamp(wrap + 10 * second));  // the stamp wrapped
	CHECK(t.idle_seconds(*e, wrap + 10 * second) == Approx(20.0).epsilon(0.001));
	CHECK(t.expire(wrap + 10 * second, 1u << 20) == 0);
	CHECK(t.expire(before + 7430 * second, 1u << 20) == 0);
	CHECK(t.expire(before + 7450 * second, 1u << 20) == 1);

	// A flow its worker marked stale goes at the next scan, whatever its timeout.
	flow_entry* u = t.insert(key_n(2, 17), hash_key(key_n(2, 17)), wrap);
	REQUIRE(u);
	u->state = flow_state::udp_established;
	CHECK(t.expire(wrap + 86400 * second, 1u << 20) == 0);
	CHECK(t.expire(wrap + (max_timeout_seconds - 10) * second, 1u << 20) == 0);
	u->last_seen = flow_table::stale_stamp(u->last_seen);
	CHECK(t.expire(wrap + (max_timeout_seconds - 10) * second, 1u << 20) == 1);

	// The longest timeout is cut to max_timeout_seconds, so it fires before stamps could wrap around.
	flow_entry* v = t.insert(key_n(3, 17), hash_key(key_n(3, 17)), wrap);
	REQUIRE(v);
	v->state = flow_state::udp_established;
	CHECK(t.expire(wrap + (max_timeout_seconds + 10) * second, 1u << 20) == 1);
	// A stamp newer than the scan's clock (a worker ahead of the control thread) is not idle.
	flow_entry* w = t.insert(key_n(4, 17), hash_key(key_n(4, 17)), wrap + 100 * second);
	REQUIRE(w);
	w->state = flow_state::udp_established;
	CHECK(t.idle_seconds(*w, wrap) == 0.0);
	CHECK(t.expire(wrap, 1u << 20) == 0);
}

TEST_CASE("a table that is not full evicts nothing, even when a new key's buckets are full of half-open flows")
{
	// Every flow embryonic (SYN-sent), the evicting policy: buckets of a key fill up well before the
	// table does, and the key must find room by a cuckoo step, not by evicting.
	for (uint32_t capacity : {1000u, 65536u}) {
		flow_table t(small_config(capacity, full_policy::evict_embryonic));
		std::mt19937_64 rng(capacity + 1);
		std::vector<flow_key> keys;
		while (keys.size() < capacity) {
			const flow_key k = random_key(rng, 6, 80, 443);
			if (t.lookup(k, hash_key(k)))
				continue;
			flow_entry* e = t.insert(k, hash_key(k), keys.size());
			REQUIRE(e != nullptr);
			e->state = flow_state::tcp_syn_sent;
			keys.push_back(k);
		}
		CHECK(t.counters().evicted_embryonic.load() == 0);
		for (const auto& k : keys)
			REQUIRE(t.lookup(k, hash_key(k)) != nullptr);
		// Full now: the next one evicts.
		bool reversed;
		const flow_key extra = make_key(6, 6, 7, 8, 9, 10, reversed);
		REQUIRE(t.insert(extra, hash_key(extra), capacity + 1) != nullptr);
		CHECK(t.counters().evicted_embryonic.load() == 1);
		CHECK(t.size() == capacity);
	}
}

TEST_CASE("a sparse table skips the buckets it knows are empty and still finds every live key")
{
	// The owner's bucket marks (may_hold): set by every insert, cleared by a lookup that finds the bucket
	// empty, read only while the table is at most an eighth full. Rounds of inserts, expiries and flushes,
	// through sparse and dense phases, against a reference set; every lookup, single and burst, must agree.
	table_config c = small_config(65536, full_policy::drop);
	c.idle[flow_state::udp_new] = 1;  // 1000 ticks
	c.idle[flow_state::tcp_established] = 1'000'000;
	flow_table t(c);
	std::mt19937_64 rng(42);
	std::vector<flow_key> keys;  // every key ever inserted
	std::vector<flow_entry*> live;  // its entry while live, else nullptr
	uint64_t now = 10;
	auto check_all = [&] {
		std::vector<uint64_t> hashes;
		for (const auto& k : keys)
			hashes.push_back(hash_key(k));
		std::vector<flow_entry*> found(keys.size());
		t.lookup_burst(keys.data(), hashes.data(), uint32_t(keys.size()), found.data());
		for (size_t i = 0; i < keys.size(); ++i) {
			REQUIRE(found[i] == live[i]);
			REQUIRE(t.lookup(keys[i], hashes[i]) == live[i]);
			if (live[i])
				REQUIRE(t.may_hold(hashes[i]));
		}
	};
	auto insert_some = [&](uint32_t n) {
		for (uint32_t added = 0; added < n;) {
			const flow_key k = random_key(rng, 17, 53, 53);
			if (t.lookup(k, hash_key(k)))
				continue;
			flow_entry* e = t.insert(k, hash_key(k), now);
			REQUIRE(e != nullptr);
			e->state = rng() % 3 ? flow_state::udp_new : flow_state::tcp_established;
			keys.push_back(k);
			live.push_back(e);
			++added;
		}
	};
	auto expire_new = [&] {  // every udp_new flow goes
		now += 2000;
		t.expire(now, 1u << 24);
		for (auto& e : live)
			if (e && e->state == flow_state::udp_new)
				e = nullptr;
		t.quiescent();
		t.expire(now, 1);  // recycles
	};
	for (int round = 0; round < 12; ++round) {
		// Sparse rounds (a few thousand flows), then one dense (30,000), then back down.
		insert_some(round == 6 ? 30000 : 600);
		check_all();
		expire_new();
		check_all();
		if (round == 3 || round == 9) {
			t.flush();
			std::fill(live.begin(), live.end(), nullptr);
			t.quiescent();
			t.expire(now, 1);
			check_all();
		}
	}
	// After a flush and a lookup of every key, the marks say every bucket is empty: nothing is fetched.
	t.flush();
	std::fill(live.begin(), live.end(), nullptr);
	check_all();
	size_t marked = 0;
	for (const auto& k : keys)
		marked += t.may_hold(hash_key(k));
	CHECK(marked == 0);
	// And a key inserted again is marked again.
	t.quiescent();
	t.expire(now, 1);
	flow_entry* e = t.insert(keys[0], hash_key(keys[0]), now);
	REQUIRE(e != nullptr);
	CHECK(t.may_hold(hash_key(keys[0])));
	CHECK(t.lookup(keys[0], hash_key(keys[0])) == e);
}

TEST_CASE("a sparse table reads its bucket marks only while its lookups miss")
{
	// At most an eighth full, the marks are read while at least one lookup in 64 misses; with every
	// lookup a hit they are left unread (may_hold says true for any key), and misses bring them back.
	flow_table t(small_config(65536, full_policy::drop));
	std::mt19937_64 rng(5);
	std::vector<flow_key> present;
	std::vector<uint64_t> present_hashes;
	while (present.size() < 2000) {
		const flow_key k = random_key(rng, 6, 443, 50000);
		if (t.lookup(k, hash_key(k)))
			continue;
		REQUIRE(t.insert(k, hash_key(k), 1) != nullptr);
		present.push_back(k);
		present_hashes.push_back(hash_key(k));
	}
	// A key of no flow whose primary bucket is unmarked: the marks, read from the start, rule it out.
	flow_key absent = random_key(rng, 6, 443, 50000);
	while (t.may_hold(hash_key(absent)) || t.lookup(absent, hash_key(absent)))
		absent = random_key(rng, 6, 443, 50000);
	const uint64_t absent_hash = hash_key(absent);
	auto lookups = [&](uint32_t total, uint32_t miss_every) {
		std::vector<flow_key> keys;
		std::vector<uint64_t> hashes;
		std::vector<flow_entry*> expect;
		for (uint32_t i = 0; i < total; ++i) {
			const bool miss = miss_every && i % miss_every == 0;
			const size_t at = rng() % present.size();
			keys.push_back(miss ? absent : present[at]);
			hashes.push_back(miss ? absent_hash : present_hashes[at]);
			expect.push_back(miss ? nullptr : t.lookup(present[at], present_hashes[at]));
		}
		std::vector<flow_entry*> found(total);
		for (uint32_t base = 0; base < total; base += 32)
			t.lookup_burst(&keys[base], &hashes[base], std::min<uint32_t>(32, total - base), &found[base]);
		for (uint32_t i = 0; i < total; ++i)
			REQUIRE(found[i] == expect[i]);
	};
	lookups(3 * 2048, 0);  // hits only: the marks go unread
	CHECK(t.may_hold(absent_hash));
	CHECK(t.lookup(absent, absent_hash) == nullptr);
	lookups(3 * 2048, 16);  // one in 16 a miss: read again
	CHECK_FALSE(t.may_hold(absent_hash));
	lookups(3 * 2048, 128);  // one in 128: below one in 64, unread
	CHECK(t.may_hold(absent_hash));
}

TEST_CASE("a key overflowed from a bucket full of other buckets' keys marks its own primary bucket")
{
	// Hashes made by hand (insert and lookup take the caller's hash): ten keys fill bucket q, ten more
	// whose primary is q land in their secondary p, which holds no key of its own and so is unmarked;
	// then a key whose primary is p finds it full and goes to its secondary s. Its lookup, with the marks
	// in use (a sparse table), must still read p and follow p's overflow count to s.
	const uint32_t capacity = 65536;
	flow_table t(small_config(capacity, full_policy::drop));
	const uint64_t buckets = std::max<uint32_t>(2, (capacity + 5) / 6);  // as flow_table sizes itself
	auto word_for = [&](uint64_t bucket, uint32_t j) {  // a 32-bit word that multiply-shift maps to bucket
		return ((bucket << 32) + buckets - 1) / buckets + j;
	};
	auto hash_for = [&](uint64_t primary, uint64_t secondary, uint32_t j) {
		return word_for(secondary, j) << 32 | word_for(primary, j * 7 + 1);
	};
	const uint64_t q = 100, p = 5000, s = 9000, other = 7000;
	std::vector<flow_key> keys;
	std::vector<uint64_t> hashes;
	std::vector<flow_entry*> entries;
	auto add = [&](uint64_t primary, uint64_t secondary, uint32_t j) {
		const flow_key k = key_n(uint32_t(keys.size()) + 1);
		const uint64_t h = hash_for(primary, secondary, j);
		flow_entry* e = t.insert(k, h, 1);
		REQUIRE(e != nullptr);
		keys.push_back(k);
		hashes.push_back(h);
		entries.push_back(e);
	};
	for (uint32_t j = 0; j < 10; ++j)
		add(q, other, j);  // fill q
	for (uint32_t j = 10; j < 20; ++j)
		add(q, p, j);  // overflow into p
	CHECK_FALSE(t.may_hold(hash_for(p, s, 99)));  // p holds only q's keys
	add(p, s, 20);  // p is full: to s, counted in p's overflow
	CHECK(t.may_hold(hashes.back()));
	std::vector<flow_entry*> found(keys.size());
	t.lookup_burst(keys.data(), hashes.data(), uint32_t(keys.size()), found.data());
	for (size_t i = 0; i < keys.size(); ++i) {
		REQUIRE(found[i] == entries[i]);
		REQUIRE(t.lookup(keys[i], hashes[i]) == entries[i]);
	}
}

TEST_CASE("flow keys are equal exactly when all 40 bytes are")
{
	// Every byte position, flipped alone, makes a different key: the 16-byte halves and the 8-byte tail
	// are all compared. Copies are equal, whatever the bytes.
	std::mt19937_64 rng(0x6E'4B1);
	for (int it = 0; it < 2000; ++it) {
		flow_key a;
		auto* bytes = reinterpret_cast<unsigned char*>(&a);
		for (size_t i = 0; i < sizeof a; ++i)
			bytes[i] = uint8_t(rng());
		flow_key b = a;
		REQUIRE(a == b);
		const size_t at = size_t(it) % sizeof a;
		reinterpret_cast<unsigned char*>(&b)[at] ^= uint8_t(1u << (rng() % 8));
		INFO("byte " << at);
		REQUIRE_FALSE(a == b);
		REQUIRE_FALSE(b == a);
	}
}
