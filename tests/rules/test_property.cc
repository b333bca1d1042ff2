// Randomized: small rule sets are generated as a model, printed as rule text, parsed, compiled into
// classifiers and compared, flow by flow, with a direct interpretation of the model (no ranges, no
// complement arithmetic: membership tests on prefixes). Catches mistakes in negation, set union,
// family handling and rule order that hand-written cases miss.
#include <random>
#include <sstream>

#include "classify/classify.h"
#include "helpers.h"

using namespace portcullis;
using namespace portcullis::rules;
using namespace portcullis::rules::test;

namespace {

struct prefix {
	bool any = false;
	bool v6 = false;
	u128 base = 0;
	unsigned len = 0;
	std::string text;

	bool contains(bool is_v6, u128 a) const
	{
		if (any)
			return true;
		if (is_v6 != v6)
			return false;
		const unsigned bits = v6 ? 128 : 32;
		const unsigned shift = bits - len;
		return shift >= 128 ? true : (a >> shift) == (base >> shift);
	}
};

constexpr u128 bench6 = u128(0x20010002) << 96;

const std::vector<prefix> address_pool = {
	{true, false, 0, 0, "any"},
	{false, false, ip4(198, 18, 0, 0), 15, "198.18.0.0/15"},
	{false, false, ip4(198, 18, 0, 0), 16, "198.18.0.0/16"},
	{false, false, ip4(198, 18, 1, 0), 24, "198.18.1.0/24"},
	{false, false, ip4(198, 18, 1, 10), 32, "198.18.1.10"},
	{false, false, ip4(198, 19, 128, 0), 17, "198.19.128.0/17"},
	{false, true, bench6, 48, "2001:2::/48"},
	{false, true, bench6 | (u128(1) << 64), 64, "2001:2:0:1::/64"},
	{false, true, bench6 | (u128(1) << 64) | 0x10, 128, "2001:2:0:1::10"},
};

// An address or port expression: [!] item or [!] { item, item }.
template <class Item>
struct expr {
	bool negate = false;
	std::vector<Item> items;
};

struct port_item {
	uint16_t lo, hi;
	std::string text;
};

struct model_rule {
	action act;
	bool in, out;
	int proto;  // -1 any, else 6, 17, 1
	std::optional<expr<prefix>> src, dst;
	std::optional<expr<port_item>> sport, dport;
};

bool member(const expr<prefix>& e, bool v6, u128 a)
{
	bool hit = false;
	for (const auto& p : e.items)
		hit = hit || p.contains(v6, a);
	return hit != e.negate;
}

bool member(const expr<port_item>& e, uint16_t p)
{
	bool hit = false;
	for (const auto& i : e.items)
		hit = hit || (i.lo <= p && p <= i.hi);
	return hit != e.negate;
}

// Does the expression admit any address of this family? (For "can never match" rules.)
bool has_family(const std::optional<expr<prefix>>& e, bool v6)
{
	if (!e)
		return true;
	bool any = false, fam = false;
	for (const auto& p : e->items) {
		any = any || p.any;
		fam = fam || p.any || p.v6 == v6;
	}
	return e->negate ? !any : fam;  // no pool prefix covers a whole family except any
}

template <class Item>
std::string print(const expr<Item>& e)
{
	std::string s = e.negate ? "!" : "";
	if (e.items.size() == 1)
		return s + e.items[0].text;
	s += "{ ";
	for (size_t i = 0; i < e.items.size(); ++i)
		s += (i ? ", " : "") + e.items[i].text;
	return s + " }";
}

struct generator {
	std::mt19937_64 rng;
	int pick(int n) { return int(rng() % uint64_t(n)); }

	expr<prefix> address()
	{
		expr<prefix> e;
		e.negate = pick(4) == 0;
		const int n = 1 + pick(3) / 2;
		for (int i = 0; i < n; ++i)
			e.items.push_back(address_pool[size_t(pick(int(address_pool.size())))]);
		return e;
	}

	expr<port_item> ports()
	{
		static const std::vector<port_item> pool = {
			{22, 22, "ssh"}, {53, 53, "53"}, {80, 80, "http"}, {443, 443, "https"},
			{1000, 2000, "1000-2000"}, {0, 1023, "well-known"}, {49152, 65535, "dynamic"},
		};
		expr<port_item> e;
		e.negate = pick(4) == 0;
		const int n = 1 + pick(3) / 2;
		for (int i = 0; i < n; ++i)
			e.items.push_back(pool[size_t(pick(int(pool.size())))]);
		return e;
	}

	model_rule rule()
	{
		model_rule r;
		r.act = action(pick(3));
		const int d = pick(3);
		r.in = d != 2;
		r.out = d != 1;
		static const int protos[] = {-1, 6, 17, 1};
		r.proto = protos[pick(4)];
		if (pick(3))
			r.src = address();
		if (pick(3))
			r.dst = address();
		if (r.proto == 6 || r.proto == 17) {
			if (r.src && pick(3) == 0)
				r.sport = ports();
			if (r.dst && pick(2))
				r.dport = ports();
		}
		return r;
	}
};

std::string print(const model_rule& r)
{
	std::string s(action_name(r.act));
	if (r.in != r.out)
		s += r.in ? " in" : " out";
	if (r.proto == 6) s += " tcp";
	if (r.proto == 17) s += " udp";
	if (r.proto == 1) s += " icmp";
	if (r.src) {
		s += " from " + print(*r.src);
		if (r.sport)
			s += " port " + print(*r.sport);
	}
	if (r.dst) {
		s += " to " + print(*r.dst);
		if (r.dport)
			s += " port " + print(*r.dport);
	}
	return s;
}

bool can_match(const model_rule& r)
{
	auto fam = [&](bool v6) { return has_family(r.src, v6) && has_family(r.dst, v6) && !(v6 && r.proto == 1); };
	return fam(false) || fam(true);
}

struct test_flow {
	bool v6;
	u128 src, dst;
	uint16_t sport, dport;
	uint8_t proto;
	direction dir;
};

bool model_matches(const model_rule& r, const test_flow& f)
{
	if (!(f.dir == direction::in ? r.in : r.out))
		return false;
	if (r.proto == 1 && f.v6)
		return false;  // icmp is IPv4's
	if (r.proto >= 0 && f.proto != r.proto)
		return false;
	if (r.src && !member(*r.src, f.v6, f.src))
		return false;
	if (r.dst && !member(*r.dst, f.v6, f.dst))
		return false;
	if (r.sport && !member(*r.sport, f.sport))
		return false;
	if (r.dport && !member(*r.dport, f.dport))
		return false;
	return true;
}

u128 interesting_address(generator& g, bool v6)
{
	std::vector<const prefix*> fam;
	for (const auto& p : address_pool)
		if (!p.any && p.v6 == v6)
			fam.push_back(&p);
	const prefix& p = *fam[size_t(g.pick(int(fam.size())))];
	const unsigned bits = v6 ? 128 : 32;
	const u128 size = p.len == 0 ? 0 : (u128(1) << (bits - p.len));
	switch (g.pick(5)) {
	case 0: return p.base;
	case 1: return p.base + size - 1;
	case 2: return p.base - 1;
	case 3: return p.base + size;
	default: return p.base + (u128(g.rng()) % (size ? size : 1));
	}
}

} // namespace

TEST_CASE("random rule sets: compiled classifiers agree with a direct interpretation", "[rules][property]")
{
	generator g{std::mt19937_64(20240531)};
	const uint16_t ports[] = {0, 21, 22, 23, 53, 80, 443, 999, 1000, 1500, 2000, 2001, 1023, 1024, 49151, 49152, 65535};
	const uint8_t protos[] = {6, 17, 1, 58, 47};
	size_t compared = 0, never = 0;
	for (int round = 0; round < 300; ++round) {
		std::vector<model_rule> model;
		std::string text;
		const int n = 1 + g.pick(8);
		for (int i = 0; i < n; ++i) {
			model_rule r = g.rule();
			const std::string line = print(r);
			auto alone = parse_string(line, "r.rules", no_services());
			INFO(line);
			if (!can_match(r)) {
				// The parser must refuse exactly the rules that can never match.
				REQUIRE(alone.errors.size() == 1);
				CHECK_THAT(alone.errors[0].message, Catch::Contains("never match"));
				++never;
				continue;
			}
			for (const auto& d : alone.errors)
				UNSCOPED_INFO(format(d));
			REQUIRE(alone.errors.empty());
			model.push_back(r);
			text += line + "\n";
		}
		INFO(text);
		const auto rs = parse_ok(text);
		REQUIRE(rs.rules.size() == model.size());

		for (auto dir : {direction::in, direction::out}) {
			std::vector<classify::rule_entry> entries;
			for (uint32_t i : rules_for(rs, dir))
				entries.push_back({i, &rs.rules[i].match});
			auto linear = classify::build(classify::backend::linear, entries);
			auto ours = classify::build(classify::backend::ours, entries);
			REQUIRE(linear.classifier);
			REQUIRE(ours.classifier);
			for (int k = 0; k < 40; ++k) {
				test_flow f{};
				f.v6 = g.pick(2);
				f.src = interesting_address(g, f.v6);
				f.dst = interesting_address(g, f.v6);
				f.sport = ports[g.pick(int(std::size(ports)))];
				f.dport = ports[g.pick(int(std::size(ports)))];
				f.proto = protos[g.pick(int(std::size(protos)))];
				f.dir = dir;
				uint32_t expected = classify::no_match;
				for (uint32_t i = 0; i < model.size(); ++i) {
					if (model_matches(model[i], f)) {
						expected = i;
						break;
					}
				}
				uint32_t got_linear, got_ours;
				if (f.v6) {
					const classify::key_v6 key{f.src, f.dst, f.sport, f.dport, f.proto, 0x02, 0};
					linear.classifier->classify(&key, 1, &got_linear);
					ours.classifier->classify(&key, 1, &got_ours);
				} else {
					const classify::key_v4 key{uint32_t(f.src), uint32_t(f.dst), f.sport, f.dport, f.proto, 0x02, 0, 0};
					linear.classifier->classify(&key, 1, &got_linear);
					ours.classifier->classify(&key, 1, &got_ours);
				}
				INFO("flow v6=" << f.v6 << " sport=" << f.sport << " dport=" << f.dport << " proto=" << int(f.proto)
				                << " dir=" << direction_name(dir));
				REQUIRE(got_linear == expected);
				REQUIRE(got_ours == expected);
				++compared;
			}
		}
	}
	CHECK(compared > 10000);
	CHECK(never > 0);
}
