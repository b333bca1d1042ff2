// Classifier tests: every backend (ours, its portable path, rte_acl with its best and its scalar method)
// must give exactly the brute-force reference's answer on hand-written edge cases and on random rule
// sets with random and adversarial keys, with and without large-set tests (set bits).
//
// The random cases are reproducible from their seed; set PORTCULLIS_TEST_SEED to try other seeds.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <thread>

#include "classify/acl.h"
#include "classify/bitvector.h"
#include "classify/linear.h"
#include "differential.h"

using namespace portcullis;
using namespace portcullis::classify;
using namespace portcullis::test;

namespace {

uint64_t base_seed()
{
	if (const char* s = std::getenv("PORTCULLIS_TEST_SEED"))
		return std::strtoull(s, nullptr, 0);
	return 20261125;
}

tuple_match any_match(bool v4, bool v6)
{
	tuple_match m;
	if (v4) {
		m.src4 = {full_range<uint32_t>()};
		m.dst4 = {full_range<uint32_t>()};
	}
	if (v6) {
		m.src6 = {full_range<u128>()};
		m.dst6 = {full_range<u128>()};
	}
	m.sport = {full_range<uint16_t>()};
	m.dport = {full_range<uint16_t>()};
	m.proto = {full_range<uint8_t>()};
	return m;
}

value_range<uint32_t> cidr4(uint32_t a, int len)
{
	const uint32_t host = len == 0 ? ~0u : (len == 32 ? 0u : (~0u >> len));
	return {a & ~host, (a & ~host) | host};
}

key_v4 key4(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint8_t proto, uint8_t flags = 0)
{
	key_v4 k{};
	k.src = src;
	k.dst = dst;
	k.sport = sport;
	k.dport = dport;
	k.proto = proto;
	k.tcp_flags = flags;
	return k;
}

key_v4 with_sets(key_v4 k, uint8_t set_bits)
{
	k.set_bits = set_bits;
	return k;
}

key_v6 key6(u128 src, u128 dst, uint16_t sport, uint16_t dport, uint8_t proto, uint8_t flags, uint8_t set_bits)
{
	key_v6 k{};
	k.src = src;
	k.dst = dst;
	k.sport = sport;
	k.dport = dport;
	k.proto = proto;
	k.tcp_flags = flags;
	k.set_bits = set_bits;
	return k;
}

std::unique_ptr<classifier> must_build(const variant& v, std::span<const rule_entry> entries)
{
	auto r = v.build(entries);
	INFO(v.name << " build error: " << r.error);
	REQUIRE(r.classifier != nullptr);
	return std::move(r.classifier);
}

// Every variant against linear on these rules and keys, at one burst size.
void check_all(const std::string& label, const std::vector<tuple_match>& rules, const std::vector<key_v4>& keys4,
               const std::vector<key_v6>& keys6, uint32_t burst)
{
	const auto entries = entries_of(rules);
	auto reference = build_linear(entries).classifier;
	const auto expected4 = classify_all(*reference, keys4, uint32_t(std::max<size_t>(1, keys4.size())));
	const auto expected6 = classify_all(*reference, keys6, uint32_t(std::max<size_t>(1, keys6.size())));
	for (const auto& v : all_variants()) {
		if (rules.size() > v.max_rules)
			continue;
		auto r = v.build(entries);
		if (!r.classifier) {
			FAIL_CHECK(label << ": " << v.name << " failed to build: " << r.error);
			continue;
		}
		const std::string what = label + " [" + v.name + ", burst " + std::to_string(burst) + "]";
		const std::string diff4 = compare_results(what + " v4", rules, keys4, expected4,
		                                          classify_all(*r.classifier, keys4, burst));
		const std::string diff6 = compare_results(what + " v6", rules, keys6, expected6,
		                                          classify_all(*r.classifier, keys6, burst));
		if (!diff4.empty())
			FAIL_CHECK(diff4);
		if (!diff6.empty())
			FAIL_CHECK(diff6);
		SUCCEED(what);
	}
}

} // namespace

TEST_CASE("empty rule set matches nothing", "[classify]")
{
	const std::vector<tuple_match> none;
	const auto keys4 = random_keys_v4(1, none, 200);
	const auto keys6 = random_keys_v6(1, none, 200);
	for (const auto& v : all_variants()) {
		DYNAMIC_SECTION(v.name)
		{
			auto c = must_build(v, {});
			for (uint32_t r : classify_all(*c, keys4, 64))
				CHECK(r == no_match);
			for (uint32_t r : classify_all(*c, keys6, 64))
				CHECK(r == no_match);
		}
	}
}

TEST_CASE("a single any rule matches every key of its families", "[classify]")
{
	const std::vector<tuple_match> rules = {any_match(true, true)};
	const auto keys4 = random_keys_v4(2, rules, 500);
	const auto keys6 = random_keys_v6(2, rules, 500);
	for (const auto& v : all_variants()) {
		DYNAMIC_SECTION(v.name)
		{
			auto c = must_build(v, entries_of(rules));
			for (uint32_t r : classify_all(*c, keys4, 64))
				CHECK(r == id_of_index(0));
			for (uint32_t r : classify_all(*c, keys6, 64))
				CHECK(r == id_of_index(0));
		}
	}
}

TEST_CASE("rules of one family never match keys of the other", "[classify]")
{
	const std::vector<tuple_match> only6 = {any_match(false, true)};
	const std::vector<tuple_match> only4 = {any_match(true, false)};
	const auto keys4 = random_keys_v4(3, only4, 300);
	const auto keys6 = random_keys_v6(3, only6, 300);
	for (const auto& v : all_variants()) {
		DYNAMIC_SECTION(v.name)
		{
			auto c6 = must_build(v, entries_of(only6));
			for (uint32_t r : classify_all(*c6, keys4, 64))
				CHECK(r == no_match);
			for (uint32_t r : classify_all(*c6, keys6, 64))
				CHECK(r == id_of_index(0));
			auto c4 = must_build(v, entries_of(only4));
			for (uint32_t r : classify_all(*c4, keys6, 64))
				CHECK(r == no_match);
			for (uint32_t r : classify_all(*c4, keys4, 64))
				CHECK(r == id_of_index(0));
		}
	}
}

TEST_CASE("duplicate rules: the first one wins", "[classify]")
{
	tuple_match web = any_match(true, false);
	web.dst4 = {cidr4(0xC6120000, 16)};
	web.dport = {{80, 80}, {443, 443}};
	web.proto = {{6, 6}};
	tuple_match narrower = web;
	narrower.dport = {{443, 443}};
	// Same rule five times, a narrower copy after them, then the same rule again: only index 0 answers.
	const std::vector<tuple_match> rules = {web, web, narrower, web, web, any_match(true, false), web};
	const std::vector<key_v4> keys = {key4(1, 0xC6120001, 1234, 80, 6), key4(1, 0xC612FFFF, 1, 443, 6),
	                                  key4(1, 0xC6130000, 1, 443, 6), key4(1, 0xC6120001, 1, 443, 17)};
	for (const auto& v : all_variants()) {
		DYNAMIC_SECTION(v.name)
		{
			auto c = must_build(v, entries_of(rules));
			const auto got = classify_all(*c, keys, 3);
			CHECK(got[0] == id_of_index(0));
			CHECK(got[1] == id_of_index(0));
			CHECK(got[2] == id_of_index(5));
			CHECK(got[3] == id_of_index(5));
		}
	}
}

TEST_CASE("known answers that catch byte-order mistakes", "[classify]")
{
	tuple_match r0 = any_match(true, false);
	r0.src4 = {cidr4(0x0A000000, 8)};      // 10.0.0.0/8
	r0.dport = {{256, 256}};               // 0x0100: byte-swapped it would be port 1
	r0.proto = {{6, 6}};
	tuple_match r1 = any_match(true, false);
	r1.dst4 = {{0x01020304, 0x01020304}};  // 1.2.3.4; byte-swapped 4.3.2.1
	r1.sport = {{1000, 1999}};
	tuple_match r2 = any_match(true, false);
	r2.proto = {{6, 6}};
	r2.tcp_flags_mask = 0x12;  // SYN|ACK
	r2.tcp_flags_value = 0x02; // SYN without ACK
	tuple_match r3 = any_match(true, false);
	r3.proto = {{1, 1}};
	r3.sport = {{8, 8}};  // ICMP echo request: type in sport
	r3.dport = {{0, 0}};
	tuple_match r4 = any_match(true, false);
	r4.src4 = {{0xFFFFFFFF, 0xFFFFFFFF}};
	r4.dport = {{65535, 65535}};
	const std::vector<tuple_match> rules = {r0, r1, r2, r3, r4};
	const std::vector<std::pair<key_v4, uint32_t>> cases = {
		{key4(0x0A010203, 9, 5, 256, 6), id_of_index(0)},
		{key4(0x0A010203, 9, 5, 1, 6), no_match},
		{key4(0x0B000000, 9, 5, 256, 6), no_match},
		{key4(0x0A000000, 9, 5, 256, 17), no_match},
		{key4(7, 0x01020304, 1000, 5, 17), id_of_index(1)},
		{key4(7, 0x04030201, 1000, 5, 17), no_match},
		{key4(7, 0x01020304, 999, 5, 17), no_match},
		{key4(7, 0x01020304, 0xE803, 5, 17), no_match},  // 1000 byte-swapped
		{key4(7, 7, 5, 5, 6, 0x02), id_of_index(2)},
		{key4(7, 7, 5, 5, 6, 0x12), no_match},
		{key4(7, 7, 5, 5, 6, 0xEF & ~0x10), id_of_index(2)},
		{key4(7, 7, 5, 5, 6, 0x00), no_match},
		{key4(7, 7, 8, 0, 1), id_of_index(3)},
		{key4(7, 7, 0, 8, 1), no_match},
		{key4(0xFFFFFFFF, 7, 5, 65535, 99), id_of_index(4)},
		{key4(0xFFFFFFFE, 7, 5, 65535, 99), no_match},
		{key4(0xFFFFFFFF, 7, 5, 65534, 99), no_match},
	};
	std::vector<key_v4> keys;
	for (const auto& c : cases)
		keys.push_back(c.first);
	for (const auto& v : all_variants()) {
		DYNAMIC_SECTION(v.name)
		{
			auto c = must_build(v, entries_of(rules));
			const auto got = classify_all(*c, keys, 64);
			for (size_t i = 0; i < cases.size(); ++i) {
				INFO("case " << i << ": " << describe(keys[i]));
				CHECK(got[i] == cases[i].second);
			}
		}
	}
}

// Range-index boundaries at the ends of each field's value space, where an off-by-one in a node's padding
// (keys of 0xffff / 0xffffffff) or in a top-table shift would show. Dense sets of single values as well,
// so that the forced layouts get trees of several levels.
TEST_CASE("range boundaries at 0 and at the maximum, every layout", "[classify]")
{
	std::vector<tuple_match> rules;
	auto add = [&](auto&& edit) {
		tuple_match m = any_match(true, true);
		edit(m);
		rules.push_back(m);
	};
	add([](tuple_match& m) { m.src4 = {{0, 0}}; });
	add([](tuple_match& m) { m.src4 = {{0xFFFFFFFF, 0xFFFFFFFF}}; });
	add([](tuple_match& m) { m.dst4 = {{0, 0x7FFFFFFF}}; m.dport = {{0, 0}}; });
	add([](tuple_match& m) { m.dst4 = {{0x80000000, 0xFFFFFFFF}}; m.dport = {{65535, 65535}}; });
	add([](tuple_match& m) { m.sport = {{0, 0}, {65535, 65535}}; });
	add([](tuple_match& m) { m.src6 = {{0, 0}}; m.dport = {{1, 65534}}; });
	add([](tuple_match& m) { m.dst6 = {{~u128(0), ~u128(0)}}; m.sport = {{65534, 65535}}; });
	// Many single values near both ends and around the 2^16 and 2^24 block edges.
	for (uint32_t i = 0; i < 40; ++i) {
		add([&](tuple_match& m) { m.src4 = {{i * 3, i * 3}}; m.sport = {{uint16_t(i * 7), uint16_t(i * 7)}}; });
		add([&](tuple_match& m) {
			m.dst4 = {{0xFFFFFFFF - i * 5, 0xFFFFFFFF - i * 5}};
			m.dport = {{uint16_t(65535 - i * 3), uint16_t(65535 - i * 3)}};
		});
		add([&](tuple_match& m) { m.src4 = {{0x00FFFFF0 + i, 0x01000010 + i}}; });
		add([&](tuple_match& m) { m.dst4 = {{0x0000FFF0 + i, 0x00010000 + i}}; m.proto = {{6, 6}}; });
	}
	add([](tuple_match& m) { m.proto = {{17, 17}}; });

	std::vector<key_v4> keys4;
	std::vector<key_v6> keys6;
	const uint32_t addrs[] = {0,          1,          2,          3,          0x0000FFFF, 0x00010000, 0x00FFFFFF,
	                          0x01000000, 0x01000010, 0x7FFFFFFF, 0x80000000, 0xFFFFFF00, 0xFFFFFFFE, 0xFFFFFFFF};
	const uint16_t ports[] = {0, 1, 7, 8, 255, 256, 32767, 32768, 65534, 65535};
	for (uint32_t a : addrs)
		for (uint32_t b : {0u, 0xFFFFFFFFu, 0x00010000u, a})
			for (uint16_t p : ports)
				for (uint8_t proto : {uint8_t(6), uint8_t(17), uint8_t(0), uint8_t(255)}) {
					keys4.push_back(key4(a, b, p, uint16_t(65535 - p), proto));
					keys4.push_back(key4(b, a, uint16_t(p ^ 1), p, proto));
				}
	for (u128 a : {u128(0), u128(1), ~u128(0), ~u128(0) - 1, u128(1) << 127})
		for (u128 b : {u128(0), ~u128(0), u128(12345)})
			for (uint16_t p : ports) {
				key_v6 k{};
				k.src = a;
				k.dst = b;
				k.sport = p;
				k.dport = uint16_t(65535 - p);
				k.proto = 6;
				keys6.push_back(k);
				k.sport = k.dport;
				k.dport = p;
				k.proto = 17;
				keys6.push_back(k);
			}
	const auto more4 = random_keys_v4(base_seed() + 11, rules, 2000);
	keys4.insert(keys4.end(), more4.begin(), more4.end());
	const auto more6 = random_keys_v6(base_seed() + 12, rules, 1000);
	keys6.insert(keys6.end(), more6.begin(), more6.end());
	check_all("boundaries", rules, keys4, keys6, 64);
}

// The build picks the compact layout (one node per field, no 256 KiB tables) only when every port and
// IPv4 field fits one node. Memory is the observable part of that choice.
TEST_CASE("a handful of rules takes a few KB, a dense set the default layout", "[classify]")
{
	std::vector<tuple_match> few;
	for (uint32_t i = 0; i < 9; ++i) {
		tuple_match m = any_match(true, true);
		m.dst4 = {cidr4(0xC6120000 + (i << 8), 24)};
		m.dport = {{uint16_t(20 + i), uint16_t(20 + i)}, {uint16_t(8000 + i), uint16_t(8000 + i)}};
		m.proto = {{6, 6}};
		few.push_back(m);
	}
	auto small = build_bitvector(entries_of(few));
	REQUIRE(small.classifier);
	CHECK(small.classifier->memory_bytes() < 32 * 1024);
	// The same rules forced to the default layout: the 2^16 IPv4 and the direct port tables.
	auto forced = build_bitvector(entries_of(few), bitvector_options{.top_bits = 16});
	REQUIRE(forced.classifier);
	CHECK(forced.classifier->memory_bytes() > 256 * 1024);

	// 40 destination ports: more than one 16-bit node holds, so every field gets the default layout.
	std::vector<tuple_match> dense = few;
	for (uint16_t p = 0; p < 40; ++p) {
		tuple_match m = any_match(true, false);
		m.dport = {{uint16_t(1000 + 2 * p), uint16_t(1000 + 2 * p)}};
		dense.push_back(m);
	}
	auto big = build_bitvector(entries_of(dense));
	REQUIRE(big.classifier);
	CHECK(big.classifier->memory_bytes() > 256 * 1024);
}

TEST_CASE("burst sizes that are not multiples of the internal batch", "[classify]")
{
	rule_gen_options options;
	options.count = 200;
	options.family = family_mix::both;
	const auto rules = random_rules(base_seed() + 7, options);
	auto keys4 = random_keys_v4(base_seed() + 8, rules, 2011);
	auto keys6 = random_keys_v6(base_seed() + 9, rules, 2011);
	for (uint32_t burst : {1u, 3u, 64u, 65u, 1000u, 4096u})
		check_all("burst " + std::to_string(burst), rules, keys4, keys6, burst);

	// A zero-length burst touches nothing.
	for (const auto& v : all_variants()) {
		auto c = must_build(v, entries_of(rules));
		uint32_t sentinel = 42;
		c->classify(keys4.data(), 0, &sentinel);
		c->classify(keys6.data(), 0, &sentinel);
		CHECK(sentinel == 42);
	}
}

TEST_CASE("random rule sets: every backend agrees with linear", "[classify][differential]")
{
	struct config {
		family_mix family;
		size_t count;
	};
	const config configs[] = {
		{family_mix::v4, 1},     {family_mix::v4, 2},     {family_mix::v4, 3},    {family_mix::v4, 5},
		{family_mix::v4, 10},    {family_mix::v4, 30},    {family_mix::v4, 100},  {family_mix::v4, 300},
		{family_mix::v4, 1000},  {family_mix::v4, 3000},  {family_mix::v6, 1},    {family_mix::v6, 4},
		{family_mix::v6, 20},    {family_mix::v6, 100},   {family_mix::v6, 400},  {family_mix::v6, 800},
		{family_mix::both, 6},   {family_mix::both, 60},  {family_mix::both, 600}, {family_mix::both, 1500},
	};
	const uint32_t bursts[] = {64, 1, 3, 1000, 7, 256};
	const char* family_names[] = {"v4", "v6", "both"};
	size_t index = 0;
	// PORTCULLIS_TEST_QUICK (the sanitizer run in scripts/test.sh): the sets above 600 rules are mostly
	// rte_acl build time, many times slower under ASan; the smaller ones exercise the same code.
	const bool quick = std::getenv("PORTCULLIS_TEST_QUICK") != nullptr;
	for (const auto& c : configs) {
		if (quick && c.count > 600) {
			++index;
			continue;
		}
		const uint64_t seed = base_seed() * 1000 + index;
		rule_gen_options options;
		options.count = c.count;
		options.family = c.family;
		// Small sets get a smaller address pool so that their rules overlap as much as big ones do.
		options.address_pool = std::clamp<size_t>(c.count / 8, 2, 40);
		const auto rules = random_rules(seed, options);
		auto keys4 = random_keys_v4(seed, rules, 3000);
		auto keys6 = random_keys_v6(seed, rules, 3000);
		const auto adv4 = adversarial_keys_v4(rules);
		const auto adv6 = adversarial_keys_v6(rules);
		keys4.insert(keys4.end(), adv4.begin(), adv4.end());
		keys6.insert(keys6.end(), adv6.begin(), adv6.end());
		const std::string label = std::string(family_names[int(c.family)]) + " " + std::to_string(c.count) +
		                          " rules, seed " + std::to_string(seed);
		check_all(label, rules, keys4, keys6, bursts[index % std::size(bursts)]);
		++index;
	}
}

TEST_CASE("rte_acl reports its method and memory", "[classify][rte_acl]")
{
	rule_gen_options options;
	options.count = 50;
	options.family = family_mix::both;
	const auto rules = random_rules(base_seed() + 11, options);
	auto r = build(backend::rte_acl, entries_of(rules));
	REQUIRE(r.classifier != nullptr);
	const std::string method = rte_acl_method_name(*r.classifier);
	CHECK(method != "");
	CHECK(method != "best");
	CHECK(parse_acl_method(method).has_value());
	CHECK(r.classifier->memory_bytes() > 0);
	CHECK(r.classifier->kind() == backend::rte_acl);
	auto lin = build(backend::linear, entries_of(rules));
	CHECK(rte_acl_method_name(*lin.classifier) == "");

	auto empty = build(backend::rte_acl, {});
	REQUIRE(empty.classifier != nullptr);
	CHECK(rte_acl_method_name(*empty.classifier) == method);
}

// The large-set test, (set_bits & mask) == value, by hand: rule order decides when a higher rule fails
// only its set test, and the answer for every one of the 256 set-bit values, in both families.
TEST_CASE("large-set test: in the set, not in the set, first match in order", "[classify][sets]")
{
	auto rule = [](uint8_t proto, uint16_t dport, uint8_t value, uint8_t mask) {
		tuple_match m = any_match(true, true);
		if (proto != 0)
			m.proto = {{proto, proto}};
		if (dport != 0)
			m.dport = {{dport, dport}};
		m.set_bits_value = value;
		m.set_bits_mask = mask;
		return m;
	};
	const std::vector<tuple_match> rules = {
		rule(0, 0, 0x01, 0x00),   // #0 value outside the mask: never matches
		rule(6, 22, 0x01, 0x01),  // #1 ssh from an address in set 0
		rule(6, 22, 0x00, 0x03),  // #2 ssh from an address in neither set 0 nor set 1
		rule(6, 22, 0x00, 0x00),  // #3 the rest of ssh: no set test, whatever the bits
		rule(17, 53, 0x00, 0x04), // #4 dns from an address not in set 2
		rule(0, 0, 0x80, 0x80),   // #5 anything in set 7
	};
	// The answer rule by rule, as the comments above say it.
	auto expected = [](uint8_t proto, uint16_t dport, uint8_t bits) -> uint32_t {
		if (proto == 6 && dport == 22)
			return id_of_index((bits & 0x01) ? 1 : (bits & 0x03) == 0 ? 2 : 3);
		if (proto == 17 && dport == 53 && !(bits & 0x04))
			return id_of_index(4);
		return (bits & 0x80) ? id_of_index(5) : no_match;
	};
	std::vector<key_v4> keys4;
	std::vector<key_v6> keys6;
	std::vector<uint32_t> want;
	for (auto [proto, dport] : {std::pair<uint8_t, uint16_t>{6, 22}, {17, 53}, {6, 53}, {17, 22}}) {
		for (uint32_t bits = 0; bits < 256; ++bits) {
			keys4.push_back(with_sets(key4(0x0A000001, 0xC6120001, 40000, dport, proto, 0x02), uint8_t(bits)));
			keys6.push_back(key6(u128(1) << 100, 7, 40000, dport, proto, 0x02, uint8_t(bits)));
			want.push_back(expected(proto, dport, uint8_t(bits)));
		}
	}
	// The reference itself first: the hand-written answers are what matches() means.
	auto reference = build_linear(entries_of(rules)).classifier;
	REQUIRE(classify_all(*reference, keys4, 64) == want);
	REQUIRE(classify_all(*reference, keys6, 64) == want);
	for (const auto& v : all_variants()) {
		DYNAMIC_SECTION(v.name)
		{
			auto c = must_build(v, entries_of(rules));
			const auto got4 = classify_all(*c, keys4, 64);
			const auto got6 = classify_all(*c, keys6, 64);
			for (size_t i = 0; i < want.size(); ++i) {
				INFO("key " << i << ": " << describe_with_sets(keys4[i]));
				CHECK(got4[i] == want[i]);
				CHECK(got6[i] == want[i]);
			}
		}
	}
}

// Only the set test differs between the rules, so the set bits are the only field looked up (ours keeps
// them as a field of their own rather than a product), and a TCP-flags test next to a set test: rte_acl
// holds both in one 32-bit word, where a shifted byte would show.
TEST_CASE("large-set test alone and next to a TCP-flags test", "[classify][sets]")
{
	tuple_match in_set1 = any_match(true, true);
	in_set1.set_bits_value = in_set1.set_bits_mask = 0x02;
	tuple_match syn_in_set0 = any_match(true, true);
	syn_in_set0.proto = {{6, 6}};
	syn_in_set0.tcp_flags_mask = 0x12;
	syn_in_set0.tcp_flags_value = 0x02;
	syn_in_set0.set_bits_mask = 0x01;
	syn_in_set0.set_bits_value = 0x01;
	const std::vector<tuple_match> alone = {in_set1};
	const std::vector<tuple_match> both = {syn_in_set0, any_match(true, true)};
	struct probe {
		uint8_t flags, bits;
		uint32_t alone, both;
	};
	const probe probes[] = {
		{0x02, 0x00, no_match, id_of_index(1)},        {0x02, 0x01, no_match, id_of_index(0)},
		{0x02, 0x02, id_of_index(0), id_of_index(1)},  {0x12, 0x01, no_match, id_of_index(1)},
		{0x02, 0x03, id_of_index(0), id_of_index(0)},  {0x01, 0x02, id_of_index(0), id_of_index(1)},
		{0x00, 0x00, no_match, id_of_index(1)},        {0x12, 0xff, id_of_index(0), id_of_index(1)},
		{0xff, 0xfe, id_of_index(0), id_of_index(1)},  {0xef, 0x01, no_match, id_of_index(0)},
		{0xef, 0x03, id_of_index(0), id_of_index(0)},
	};
	std::vector<key_v4> keys4;
	std::vector<key_v6> keys6;
	for (const auto& p : probes) {
		keys4.push_back(with_sets(key4(1, 2, 3, 4, 6, p.flags), p.bits));
		keys6.push_back(key6(1, 2, 3, 4, 6, p.flags, p.bits));
	}
	for (const auto& v : all_variants()) {
		DYNAMIC_SECTION(v.name)
		{
			auto a = must_build(v, entries_of(alone));
			auto b = must_build(v, entries_of(both));
			const auto a4 = classify_all(*a, keys4, 64), a6 = classify_all(*a, keys6, 64);
			const auto b4 = classify_all(*b, keys4, 64), b6 = classify_all(*b, keys6, 64);
			for (size_t i = 0; i < std::size(probes); ++i) {
				INFO("probe " << i << ": " << describe_with_sets(keys4[i]));
				CHECK(a4[i] == probes[i].alone);
				CHECK(a6[i] == probes[i].alone);
				CHECK(b4[i] == probes[i].both);
				CHECK(b6[i] == probes[i].both);
			}
		}
	}
}

// A rule set without set tests answers the same whatever the keys' set bits: the bits are ignored, not
// read as 0.
TEST_CASE("rules without a set test ignore the set bits", "[classify][sets]")
{
	rule_gen_options options;
	options.count = 300;
	options.family = family_mix::both;
	const auto rules = random_rules(base_seed() + 21, options);
	auto keys4 = random_keys_v4(base_seed() + 22, rules, 2000);
	auto keys6 = random_keys_v6(base_seed() + 23, rules, 2000);
	auto noisy4 = keys4;
	auto noisy6 = keys6;
	for (size_t i = 0; i < noisy4.size(); ++i)
		noisy4[i].set_bits = uint8_t(i * 37 + 1);
	for (size_t i = 0; i < noisy6.size(); ++i)
		noisy6[i].set_bits = uint8_t(i * 53 + 1);
	for (const auto& v : all_variants()) {
		DYNAMIC_SECTION(v.name)
		{
			auto c = must_build(v, entries_of(rules));
			CHECK(classify_all(*c, noisy4, 64) == classify_all(*c, keys4, 64));
			CHECK(classify_all(*c, noisy6, 64) == classify_all(*c, keys6, 64));
		}
	}
}

// Enough port classes that the product of ports, protocol and flags is near ours's 2^18 limit and the
// set bits' classes push it past: the set bits then get a field of their own next to the joined rest.
TEST_CASE("set bits with a product too large to join", "[classify][sets]")
{
	std::vector<tuple_match> rules;
	for (uint16_t i = 0; i < 60; ++i) {
		tuple_match m = any_match(true, true);
		m.sport = {{uint16_t(1000 + 3 * i), uint16_t(1000 + 3 * i)}};
		m.dport = {{uint16_t(2000 + 5 * i), uint16_t(2000 + 5 * i)}};
		m.proto = {{uint8_t(i % 2 ? 6 : 17), uint8_t(i % 2 ? 6 : 17)}};
		m.set_bits_mask = uint8_t(1u << (i % 8));
		m.set_bits_value = (i / 8) % 2 ? m.set_bits_mask : 0;
		rules.push_back(m);
	}
	auto keys4 = random_keys_v4(base_seed() + 31, rules, 3000);
	auto keys6 = random_keys_v6(base_seed() + 32, rules, 3000);
	const auto adv4 = adversarial_keys_v4(rules);
	const auto adv6 = adversarial_keys_v6(rules);
	keys4.insert(keys4.end(), adv4.begin(), adv4.end());
	keys6.insert(keys6.end(), adv6.begin(), adv6.end());
	add_set_bits(base_seed() + 33, rules, keys4);
	add_set_bits(base_seed() + 34, rules, keys6);
	check_all("set bits beyond the product", rules, keys4, keys6, 64);
}

TEST_CASE("random rule sets with large-set tests: every backend agrees with linear", "[classify][differential][sets]")
{
	struct config {
		family_mix family;
		size_t count;
		double share;  // of rules with a set test
	};
	const config configs[] = {
		{family_mix::v4, 1, 1.0},    {family_mix::v4, 3, 0.5},    {family_mix::v4, 10, 0.3},
		{family_mix::v4, 100, 0.3},  {family_mix::v4, 1000, 0.1}, {family_mix::v6, 4, 0.5},
		{family_mix::v6, 100, 0.3},  {family_mix::v6, 400, 0.2},  {family_mix::both, 60, 0.5},
		{family_mix::both, 600, 0.2}, {family_mix::v4, 300, 1.0},
	};
	const uint32_t bursts[] = {64, 1, 3, 1000, 7, 256};
	const char* family_names[] = {"v4", "v6", "both"};
	const bool quick = std::getenv("PORTCULLIS_TEST_QUICK") != nullptr;
	size_t index = 0;
	for (const auto& c : configs) {
		if (quick && c.count > 600) {
			++index;
			continue;
		}
		const uint64_t seed = base_seed() * 1000 + 500 + index;
		rule_gen_options options;
		options.count = c.count;
		options.family = c.family;
		options.address_pool = std::clamp<size_t>(c.count / 8, 2, 40);
		auto rules = random_rules(seed, options);
		add_set_tests(seed, rules, c.share);
		auto keys4 = random_keys_v4(seed, rules, 3000);
		auto keys6 = random_keys_v6(seed, rules, 3000);
		const auto adv4 = adversarial_keys_v4(rules);
		const auto adv6 = adversarial_keys_v6(rules);
		keys4.insert(keys4.end(), adv4.begin(), adv4.end());
		keys6.insert(keys6.end(), adv6.begin(), adv6.end());
		add_set_bits(seed, rules, keys4);
		add_set_bits(seed, rules, keys6);
		const std::string label = std::string(family_names[int(c.family)]) + " " + std::to_string(c.count) +
		                          " rules with set tests, seed " + std::to_string(seed);
		check_all(label, rules, keys4, keys6, bursts[index % std::size(bursts)]);
		++index;
	}
}

// A cancel flag set before the build, or by another thread during the build of a large set, abandons it:
// no classifier, abandoned set. (The outcome is asserted, not how long it took.)
TEST_CASE("a set cancel flag abandons every builder", "[classify][cancel]")
{
	std::vector<tuple_match> rules;
	for (uint32_t i = 0; i < 100000; ++i) {
		tuple_match m = any_match(true, false);
		m.src4 = {cidr4(0xC6120000 + (i * 7919u) % 131072u, 32)};  // distinct hosts of 198.18.0.0/15
		m.dport = {{uint16_t(1 + i % 65000), uint16_t(1 + i % 65000)}};
		m.proto = {{6, 6}};
		rules.push_back(m);
	}
	const auto entries = entries_of(rules);
	std::atomic<bool> cancel{false};
	const std::vector<std::pair<std::string, std::function<build_result()>>> builders = {
		{"ours", [&] { return build_bitvector(entries, bitvector_options{.cancel = &cancel}); }},
		{"rte_acl", [&] { return build_rte_acl(entries, acl_method::best, &cancel); }},
		{"build(ours)", [&] { return classify::build(backend::ours, entries, &cancel); }},
		{"build(rte_acl)", [&] { return classify::build(backend::rte_acl, entries, &cancel); }},
	};
	SECTION("set before the call")
	{
		cancel = true;
		for (const auto& [name, b] : builders) {
			INFO(name);
			auto r = b();
			CHECK(r.abandoned);
			CHECK(!r.classifier);
			CHECK(r.error.find("abandoned") != std::string::npos);
		}
	}
	SECTION("set by another thread during the build")
	{
		for (const auto& [name, b] : builders) {
			INFO(name);
			cancel = false;
			std::atomic<bool> started{false};
			std::thread setter([&] {
				while (!started.load())
					std::this_thread::yield();
				std::this_thread::sleep_for(std::chrono::milliseconds(5));
				cancel = true;
			});
			started = true;
			auto r = b();
			setter.join();
			CHECK(r.abandoned);
			CHECK(!r.classifier);
		}
	}
	SECTION("not set: a small set builds and classifies as without the flag")
	{
		const std::vector<tuple_match> few(rules.begin(), rules.begin() + 10);
		const auto few_entries = entries_of(few);
		const key_v4 hit = key4(few[3].src4[0].lo, 0xC6120101, 40000, few[3].dport[0].lo, 6);
		const key_v4 miss = key4(0xC613FFFF, 0xC6120101, 40000, 1, 17);
		for (backend b : {backend::ours, backend::rte_acl}) {
			INFO(backend_name(b));
			auto r = classify::build(b, few_entries, &cancel);
			CHECK(!r.abandoned);
			REQUIRE(r.classifier);
			const key_v4 keys[2] = {hit, miss};
			uint32_t results[2];
			r.classifier->classify(keys, 2, results);
			CHECK(results[0] == few_entries[3].id);
			CHECK(results[1] == no_match);
		}
	}
}
