#include "random_rules.h"

#include <algorithm>
#include <cstdio>
#include <random>

namespace portcullis::test {
namespace {

using classify::key_v4;
using classify::key_v6;

template <class T>
constexpr int width = int(sizeof(T) * 8);

template <class T>
T all_ones() { return T(~T(0)); }

template <class T>
T host_mask(int prefix_length)
{
	const int host = width<T> - prefix_length;
	return host >= width<T> ? all_ones<T>() : T((T(1) << host) - 1);
}

class generator {
public:
	explicit generator(uint64_t seed) : rng_(seed) {}

	uint64_t u64() { return rng_(); }
	u128 u128_value() { return (u128(rng_()) << 64) | rng_(); }
	template <class T>
	T value()
	{
		if constexpr (sizeof(T) > 8)
			return u128_value();
		else
			return T(rng_());
	}
	size_t below(size_t n) { return size_t(rng_() % n); }
	double unit() { return std::uniform_real_distribution<double>(0, 1)(rng_); }
	bool chance(double p) { return unit() < p; }

private:
	std::mt19937_64 rng_;
};

// Prefix lengths: the boundaries that trip implementations up, then anything.
template <class T>
int random_prefix_length(generator& g)
{
	static const int v4[] = {0, 1, 7, 8, 15, 16, 23, 24, 25, 31, 32, 32, 32};
	static const int v6[] = {0, 1, 31, 32, 33, 48, 63, 64, 64, 65, 96, 127, 128, 128, 128};
	if (g.chance(0.6)) {
		if constexpr (width<T> == 32)
			return v4[g.below(std::size(v4))];
		else
			return v6[g.below(std::size(v6))];
	}
	return int(g.below(width<T> + 1));
}

template <class T>
struct address_gen {
	std::vector<T> pool;

	T base(generator& g) { return g.chance(0.85) ? pool[g.below(pool.size())] : g.value<T>(); }

	value_range<T> prefix(generator& g)
	{
		const int len = random_prefix_length<T>(g);
		const T lo = T(base(g) & ~host_mask<T>(len));
		return {lo, T(lo | host_mask<T>(len))};
	}

	value_range<T> range(generator& g)
	{
		// IPv6 ranges stay under 2^12 addresses: rte_acl takes them as prefixes, up to 2 per bit.
		const T lo = T(base(g) + (width<T> == 32 ? T(g.below(1 << 12)) : T(g.below(64))) -
		               (width<T> == 32 ? T(g.below(1 << 10)) : T(0)));
		const T length = width<T> == 32 ? T(g.below(g.chance(0.5) ? (1u << 8) : (1u << 24)))
		                                : T(g.below(1u << 12));
		const T hi = T(lo + length) < lo ? all_ones<T>() : T(lo + length);
		return {lo, hi};
	}

	std::vector<value_range<T>> field(generator& g, double range_share)
	{
		std::vector<value_range<T>> set;
		const double pick = g.unit();
		if (pick < 0.1) {
			set.push_back(full_range<T>());
		} else if (pick < 0.1 + range_share) {
			set.push_back(range(g));
		} else if (pick < 0.2 + range_share) {
			const size_t n = 2 + g.below(2);
			for (size_t i = 0; i < n; ++i)
				set.push_back(g.chance(0.7) ? prefix(g) : range(g));
		} else if (pick < 0.3 + range_share) {
			// "not <prefix>": two ranges around it. IPv6 keeps the prefix short (its complement is one
			// prefix per bit of length in rte_acl).
			value_range<T> p = prefix(g);
			if (width<T> > 32) {
				const int len = 1 + int(g.below(16));
				const T lo = T(p.lo & ~host_mask<T>(len));
				p = {lo, T(lo | host_mask<T>(len))};
			}
			if (p.lo != 0)
				set.push_back({T(0), T(p.lo - 1)});
			if (p.hi != all_ones<T>())
				set.push_back({T(p.hi + 1), all_ones<T>()});
			if (set.empty())
				set.push_back(full_range<T>());
		} else {
			set.push_back(prefix(g));
		}
		normalize(set);
		return set;
	}
};

uint16_t interesting_port(generator& g)
{
	static const uint16_t ports[] = {0, 1, 22, 53, 80, 123, 443, 1023, 1024, 8080, 32768, 65534, 65535};
	return g.chance(0.6) ? ports[g.below(std::size(ports))] : uint16_t(g.u64());
}

value_range<uint16_t> port_range(generator& g)
{
	const uint16_t lo = interesting_port(g);
	const uint32_t hi = std::min<uint32_t>(65535, lo + uint32_t(g.below(g.chance(0.5) ? 16 : 20000)));
	return {lo, uint16_t(hi)};
}

std::vector<value_range<uint16_t>> port_field(generator& g)
{
	std::vector<value_range<uint16_t>> set;
	const size_t pick = g.below(20);
	if (pick < 6) {
		set.push_back(full_range<uint16_t>());
	} else if (pick < 12) {
		const uint16_t p = interesting_port(g);
		set.push_back({p, p});
	} else if (pick < 15) {
		set.push_back(port_range(g));
	} else if (pick < 17) {
		const size_t n = 2 + g.below(3);
		for (size_t i = 0; i < n; ++i) {
			if (g.chance(0.7)) {
				const uint16_t p = interesting_port(g);
				set.push_back({p, p});
			} else {
				set.push_back(port_range(g));
			}
		}
	} else if (pick < 19) {
		const auto r = g.chance(0.5) ? port_range(g) : [&] {
			const uint16_t p = interesting_port(g);
			return value_range<uint16_t>{p, p};
		}();
		if (r.lo != 0)
			set.push_back({0, uint16_t(r.lo - 1)});
		if (r.hi != 65535)
			set.push_back({uint16_t(r.hi + 1), 65535});
		if (set.empty())
			set.push_back(full_range<uint16_t>());
	} else {
		set.push_back({1024, 65535});
	}
	normalize(set);
	return set;
}

std::vector<value_range<uint8_t>> proto_field(generator& g)
{
	std::vector<value_range<uint8_t>> set;
	const size_t pick = g.below(20);
	if (pick < 6) {
		set.push_back(full_range<uint8_t>());
	} else if (pick < 16) {
		static const uint8_t common[] = {6, 6, 6, 17, 17, 1, 58, 0, 255};
		const uint8_t p = g.chance(0.85) ? common[g.below(std::size(common))] : uint8_t(g.u64());
		set.push_back({p, p});
	} else if (pick < 18) {
		set.push_back({6, 6});
		set.push_back({17, 17});
	} else if (pick < 19) {
		const uint8_t lo = uint8_t(g.u64());
		set.push_back({lo, uint8_t(std::min<int>(255, lo + int(g.below(40))))});
	} else {
		const uint8_t p = g.chance(0.5) ? 6 : uint8_t(g.u64());
		if (p != 0)
			set.push_back({0, uint8_t(p - 1)});
		if (p != 255)
			set.push_back({uint8_t(p + 1), 255});
	}
	normalize(set);
	return set;
}

template <class T>
T pick_in(generator& g, const std::vector<value_range<T>>& set)
{
	const auto& r = set[g.below(set.size())];
	switch (g.below(4)) {
	case 0: return r.lo;
	case 1: return r.hi;
	default: {
		const T span = T(r.hi - r.lo);
		if (span == all_ones<T>())
			return g.value<T>();
		return T(r.lo + T(g.value<T>() % T(span + 1)));
	}
	}
}

// Inside the set most of the time, otherwise just outside one of its ranges (which may still be inside
// another rule's set: that is the point).
template <class T>
T pick_near(generator& g, const std::vector<value_range<T>>& set)
{
	if (set.empty() || g.chance(0.1))
		return g.value<T>();
	if (g.chance(0.75))
		return pick_in(g, set);
	const auto& r = set[g.below(set.size())];
	return g.chance(0.5) ? T(r.lo - 1) : T(r.hi + 1);
}

uint8_t flags_for(generator& g, const tuple_match& m)
{
	if (m.tcp_flags_mask != 0 && g.chance(0.7))
		return uint8_t(m.tcp_flags_value | (uint8_t(g.u64()) & ~m.tcp_flags_mask));
	return uint8_t(g.u64());
}

template <class Key, class Addr>
std::vector<Key> random_keys(uint64_t seed, const std::vector<tuple_match>& rules, size_t n,
                             std::vector<value_range<Addr>> tuple_match::*src,
                             std::vector<value_range<Addr>> tuple_match::*dst)
{
	generator g(seed ^ 0x6b65797321ull);
	std::vector<const tuple_match*> usable;
	for (const auto& r : rules)
		if (!(r.*src).empty() && !(r.*dst).empty())
			usable.push_back(&r);
	std::vector<Key> keys;
	keys.reserve(n);
	while (keys.size() < n) {
		Key k{};
		const size_t pick = g.below(20);
		if (pick < 13 && !usable.empty()) {
			const tuple_match& m = *usable[g.below(usable.size())];
			// Take the source from one rule and the destination from another now and then: keys
			// that satisfy parts of several rules are where priority bugs show.
			const tuple_match& m2 = g.chance(0.2) ? *usable[g.below(usable.size())] : m;
			k.src = pick_near(g, m.*src);
			k.dst = pick_near(g, m2.*dst);
			k.sport = pick_near(g, m.sport);
			k.dport = pick_near(g, m2.dport);
			k.proto = pick_near(g, m.proto);
			k.tcp_flags = flags_for(g, m);
		} else if (pick < 18) {
			k.src = g.value<Addr>();
			k.dst = g.value<Addr>();
			k.sport = uint16_t(g.u64());
			k.dport = uint16_t(g.u64());
			k.proto = g.chance(0.5) ? uint8_t(g.chance(0.5) ? 6 : 17) : uint8_t(g.u64());
			k.tcp_flags = uint8_t(g.u64());
		} else {
			const Addr extremes[] = {Addr(0), all_ones<Addr>(), Addr(1), Addr(all_ones<Addr>() - 1)};
			k.src = extremes[g.below(4)];
			k.dst = extremes[g.below(4)];
			const uint16_t ports[] = {0, 65535, 1, 65534};
			k.sport = ports[g.below(4)];
			k.dport = ports[g.below(4)];
			const uint8_t protos[] = {0, 255, 6, 17};
			k.proto = protos[g.below(4)];
			k.tcp_flags = g.chance(0.5) ? uint8_t(0) : uint8_t(0xff);
		}
		keys.push_back(k);
	}
	return keys;
}

template <class T>
std::vector<T> edges(const std::vector<value_range<T>>& set)
{
	std::vector<T> out;
	for (size_t i = 0; i < set.size() && i < 4; ++i) {
		const auto& r = set[i];
		out.push_back(T(r.lo - 1));
		out.push_back(r.lo);
		out.push_back(r.hi);
		out.push_back(T(r.hi + 1));
	}
	return out;
}

template <class Key, class Addr>
std::vector<Key> adversarial_keys(const std::vector<tuple_match>& rules, size_t max_rules,
                                  std::vector<value_range<Addr>> tuple_match::*src,
                                  std::vector<value_range<Addr>> tuple_match::*dst)
{
	std::vector<Key> keys;
	Key zero{};
	keys.push_back(zero);
	Key ones{};
	ones.src = all_ones<Addr>();
	ones.dst = all_ones<Addr>();
	ones.sport = ones.dport = 65535;
	ones.proto = 255;
	ones.tcp_flags = 255;
	keys.push_back(ones);

	size_t used = 0;
	for (const auto& m : rules) {
		if ((m.*src).empty() || (m.*dst).empty() || m.sport.empty() || m.dport.empty() || m.proto.empty())
			continue;
		if (used++ == max_rules)
			break;
		Key inside{};
		inside.src = (m.*src)[0].lo;
		inside.dst = (m.*dst)[0].hi;
		inside.sport = m.sport[0].lo;
		inside.dport = m.dport.back().hi;
		inside.proto = m.proto[0].lo;
		inside.tcp_flags = m.tcp_flags_value;
		keys.push_back(inside);
		// inside with one field moved to each edge of that field's set, field by field.
		auto at_edges = [&](const auto& set, auto Key::*field) {
			for (auto v : edges(set)) {
				Key k = inside;
				k.*field = v;
				keys.push_back(k);
			}
		};
		at_edges(m.*src, &Key::src);
		at_edges(m.*dst, &Key::dst);
		at_edges(m.sport, &Key::sport);
		at_edges(m.dport, &Key::dport);
		at_edges(m.proto, &Key::proto);
		if (m.tcp_flags_mask != 0) {
			for (int bit = 0; bit < 8; ++bit) {
				Key k = inside;
				k.tcp_flags = uint8_t(k.tcp_flags ^ (1u << bit));
				keys.push_back(k);
			}
		}
	}
	return keys;
}

template <class T, class F>
std::string describe_set(const std::vector<value_range<T>>& set, F format_value)
{
	if (set.empty())
		return "none";
	if (set.size() == 1 && set[0].lo == 0 && set[0].hi == all_ones<T>())
		return "any";
	std::string out;
	for (const auto& r : set) {
		if (!out.empty())
			out += ",";
		out += format_value(r.lo);
		if (r.hi != r.lo) {
			// Prefixes print as CIDR, other ranges as lo-hi.
			const T span = T(r.hi - r.lo);
			if constexpr (sizeof(T) >= 4) {
				if ((span & T(span + 1)) == 0 && (r.lo & span) == 0) {
					int host = 0;
					for (T s = span; s != 0; s >>= 1)
						++host;
					out += '/';
					out += std::to_string(width<T> - host);
					continue;
				}
			}
			out += '-';
			out += format_value(r.hi);
		}
	}
	return out;
}

std::string number(unsigned v) { return std::to_string(v); }

std::string hex8(unsigned v)
{
	char buf[8];
	std::snprintf(buf, sizeof(buf), "0x%02x", v);
	return buf;
}

} // namespace

std::vector<tuple_match> random_rules(uint64_t seed, const rule_gen_options& options)
{
	generator g(seed);
	address_gen<uint32_t> a4;
	address_gen<u128> a6;
	for (size_t i = 0; i < std::max<size_t>(1, options.address_pool); ++i) {
		a4.pool.push_back(g.value<uint32_t>());
		a6.pool.push_back(g.value<u128>());
	}
	std::vector<tuple_match> rules;
	rules.reserve(options.count);
	for (size_t i = 0; i < options.count; ++i) {
		tuple_match m;
		bool v4 = options.family == family_mix::v4;
		bool v6 = options.family == family_mix::v6;
		if (options.family == family_mix::both) {
			const size_t pick = g.below(5);
			v4 = pick != 0 && pick != 1;  // 2,3,4
			v6 = pick != 2 && pick != 3;  // 0,1,4
		}
		if (v4) {
			m.src4 = a4.field(g, options.address_range_share);
			m.dst4 = a4.field(g, options.address_range_share);
		}
		if (v6) {
			m.src6 = a6.field(g, options.address_range_share);
			m.dst6 = a6.field(g, options.address_range_share);
		}
		m.sport = port_field(g);
		m.dport = port_field(g);
		m.proto = proto_field(g);
		if (m.proto.size() == 1 && m.proto[0].lo == 6 && m.proto[0].hi == 6 && g.chance(options.flags_share)) {
			m.tcp_flags_mask = uint8_t(g.u64() | 1u << g.below(8));
			m.tcp_flags_value = uint8_t(g.u64() & m.tcp_flags_mask);
		}
		rules.push_back(std::move(m));
	}
	return rules;
}

std::vector<classify::rule_entry> entries_of(const std::vector<tuple_match>& matches)
{
	std::vector<classify::rule_entry> entries;
	entries.reserve(matches.size());
	for (size_t i = 0; i < matches.size(); ++i)
		entries.push_back({id_of_index(i), &matches[i]});
	return entries;
}

std::vector<key_v4> random_keys_v4(uint64_t seed, const std::vector<tuple_match>& rules, size_t n)
{
	return random_keys<key_v4, uint32_t>(seed, rules, n, &tuple_match::src4, &tuple_match::dst4);
}

std::vector<key_v6> random_keys_v6(uint64_t seed, const std::vector<tuple_match>& rules, size_t n)
{
	return random_keys<key_v6, u128>(seed, rules, n, &tuple_match::src6, &tuple_match::dst6);
}

std::vector<key_v4> adversarial_keys_v4(const std::vector<tuple_match>& rules, size_t max_rules)
{
	return adversarial_keys<key_v4, uint32_t>(rules, max_rules, &tuple_match::src4, &tuple_match::dst4);
}

std::vector<key_v6> adversarial_keys_v6(const std::vector<tuple_match>& rules, size_t max_rules)
{
	return adversarial_keys<key_v6, u128>(rules, max_rules, &tuple_match::src6, &tuple_match::dst6);
}

std::string format_ipv4(uint32_t a)
{
	char buf[16];
	std::snprintf(buf, sizeof(buf), "%u.%u.%u.%u", a >> 24, (a >> 16) & 0xff, (a >> 8) & 0xff, a & 0xff);
	return buf;
}

std::string format_ipv6(u128 a)
{
	// Full eight groups, no "::" shortening: unambiguous and easy to compare by eye.
	std::string out;
	for (int group = 7; group >= 0; --group) {
		char buf[8];
		std::snprintf(buf, sizeof(buf), "%x", unsigned(uint16_t(a >> (16 * group))));
		out += buf;
		if (group != 0)
			out += ":";
	}
	return out;
}

std::string describe(const tuple_match& m)
{
	std::string out = "proto " + describe_set(m.proto, number);
	if (!m.src4.empty() || !m.dst4.empty())
		out += " src4 " + describe_set(m.src4, format_ipv4) + " dst4 " + describe_set(m.dst4, format_ipv4);
	if (!m.src6.empty() || !m.dst6.empty())
		out += " src6 " + describe_set(m.src6, format_ipv6) + " dst6 " + describe_set(m.dst6, format_ipv6);
	out += " sport " + describe_set(m.sport, number) + " dport " + describe_set(m.dport, number);
	if (m.tcp_flags_mask != 0)
		out += " flags " + hex8(m.tcp_flags_value) + "/" + hex8(m.tcp_flags_mask);
	return out;
}

std::string describe(const key_v4& k)
{
	return "v4 proto " + number(k.proto) + " " + format_ipv4(k.src) + ":" + number(k.sport) + " -> " +
	       format_ipv4(k.dst) + ":" + number(k.dport) + " flags " + hex8(k.tcp_flags);
}

std::string describe(const key_v6& k)
{
	return "v6 proto " + number(k.proto) + " [" + format_ipv6(k.src) + "]:" + number(k.sport) + " -> [" +
	       format_ipv6(k.dst) + "]:" + number(k.dport) + " flags " + hex8(k.tcp_flags);
}

} // namespace portcullis::test
