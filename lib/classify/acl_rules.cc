// Our rules as rte_acl rules (acl_rules.h): field modes, field definitions and the expansion of each rule.
#include "classify/acl_rules.h"

#include <algorithm>
#include <cstddef>
#include <utility>

namespace portcullis::classify::acl_rules {
namespace {

// Beyond this many rte_acl rules per family we refuse: rte_acl keeps every rule in its context and the
// build time and memory grow far faster than the rule count.
constexpr uint64_t max_acl_rules = uint64_t(1) << 21;

template <class T>
int count_trailing_zeros(T v)
{
	if constexpr (sizeof(T) <= 8) {
		return v == 0 ? int(sizeof(T) * 8) : __builtin_ctzll(uint64_t(v));
	} else {
		const uint64_t low = uint64_t(v);
		if (low != 0)
			return __builtin_ctzll(low);
		const uint64_t high = uint64_t(v >> 64);
		return high == 0 ? 128 : 64 + __builtin_ctzll(high);
	}
}

template <class T>
constexpr T low_mask(int bits)
{
	return bits >= int(sizeof(T) * 8) ? T(~T(0)) : T((T(1) << bits) - 1);
}

// Splits [lo, hi] into the fewest aligned prefix blocks: (first address, prefix length).
template <class T>
void split_prefixes(T lo, T hi, std::vector<std::pair<T, int>>& out)
{
	constexpr int width = int(sizeof(T) * 8);
	for (;;) {
		int host = count_trailing_zeros(lo);
		while (T(lo | low_mask<T>(host)) > hi)
			--host;
		const T last = T(lo | low_mask<T>(host));
		out.emplace_back(lo, width - host);
		if (last >= hi)
			return;
		lo = T(last + 1);
	}
}

template <class T>
bool is_prefix(const value_range<T>& r)
{
	const T size_minus_one = T(r.hi - r.lo);
	return (size_minus_one & T(size_minus_one + 1)) == 0 && (r.lo & size_minus_one) == 0;
}

// Length of a range that is_prefix() accepted.
template <class T>
int prefix_length(const value_range<T>& r)
{
	const T span = T(r.hi - r.lo);
	return span == T(~T(0)) ? 0 : int(sizeof(T) * 8) - count_trailing_zeros(T(span + 1));
}

// A rule can match in a family only if every field is non-empty and its flags and set-bits tests are
// satisfiable.
bool can_match(const tuple_match& m, bool v6)
{
	if (v6 ? !m.applies_to_ipv6() : !m.applies_to_ipv4())
		return false;
	if (m.sport.empty() || m.dport.empty() || m.proto.empty())
		return false;
	return (m.tcp_flags_value & ~m.tcp_flags_mask) == 0 && (m.set_bits_value & ~m.set_bits_mask) == 0;
}

uint64_t saturating_mul(uint64_t a, uint64_t b)
{
	return (a != 0 && b > UINT64_MAX / a) ? UINT64_MAX : a * b;
}

void set_proto(rte_acl_field& f, const value_range<uint8_t>& r, bool bitmask)
{
	if (!bitmask) {
		f.value.u8 = r.lo;
		f.mask_range.u8 = r.hi;
	} else if (r.lo == 0 && r.hi == 0xff) {
		f.value.u8 = 0;
		f.mask_range.u8 = 0;
	} else {
		f.value.u8 = r.lo;
		f.mask_range.u8 = 0xff;
	}
}

void set_port(rte_acl_field& f, const value_range<uint16_t>& r)
{
	f.value.u16 = r.lo;
	f.mask_range.u16 = r.hi;
}

void set_flags(rte_acl_field& f, const tuple_match& m)
{
	f.value.u32 = flags_word(m.tcp_flags_value, m.set_bits_value);
	f.mask_range.u32 = flags_word(m.tcp_flags_mask, m.set_bits_mask);
}

rte_acl_field_def field_def(uint8_t type, uint8_t size, uint8_t index, uint8_t input, uint32_t offset)
{
	rte_acl_field_def d{};
	d.type = type;
	d.size = size;
	d.field_index = index;
	d.input_index = input;
	d.offset = offset;
	return d;
}

// Sets a 128-bit prefix into four MASK words, most significant word first.
void set_prefix6(rte_acl_field* words, u128 value, int length)
{
	for (int w = 0; w < 4; ++w) {
		words[w].value.u32 = uint32_t(value >> (96 - 32 * w));
		words[w].mask_range.u32 = uint32_t(std::clamp(length - 32 * w, 0, 32));
	}
}

uint32_t priority_of(size_t index) { return uint32_t(RTE_ACL_MAX_PRIORITY - index); }

template <int N>
void fill_data(acl_rule<N>& r, size_t index, uint32_t id)
{
	r.data.category_mask = 1;
	r.data.priority = int32_t(priority_of(index));
	r.data.userdata = id + 1;
}

} // namespace

rte_acl_config config_v4(const field_modes& modes)
{
	rte_acl_config c{};
	c.num_categories = 1;
	const uint8_t addr = modes.addr_mask ? RTE_ACL_FIELD_TYPE_MASK : RTE_ACL_FIELD_TYPE_RANGE;
	c.defs[0] = field_def(modes.proto_bitmask ? RTE_ACL_FIELD_TYPE_BITMASK : RTE_ACL_FIELD_TYPE_RANGE, 1,
	                      f4_proto, 0, offsetof(acl_input_v4, proto));
	c.defs[1] = field_def(addr, 4, f4_src, 1, offsetof(acl_input_v4, src));
	c.defs[2] = field_def(addr, 4, f4_dst, 2, offsetof(acl_input_v4, dst));
	c.defs[3] = field_def(RTE_ACL_FIELD_TYPE_RANGE, 2, f4_sport, 3, offsetof(acl_input_v4, sport));
	c.defs[4] = field_def(RTE_ACL_FIELD_TYPE_RANGE, 2, f4_dport, 3, offsetof(acl_input_v4, dport));
	c.num_fields = 5;
	if (modes.flags)
		c.defs[c.num_fields++] =
			field_def(RTE_ACL_FIELD_TYPE_BITMASK, 4, f4_flags, 4, offsetof(acl_input_v4, flags));
	return c;
}

rte_acl_config config_v6(const field_modes& modes)
{
	rte_acl_config c{};
	c.num_categories = 1;
	uint8_t n = 0;
	c.defs[n++] = field_def(modes.proto_bitmask ? RTE_ACL_FIELD_TYPE_BITMASK : RTE_ACL_FIELD_TYPE_RANGE, 1,
	                        f6_proto, 0, offsetof(acl_input_v6, proto));
	for (uint8_t w = 0; w < 4; ++w)
		c.defs[n++] = field_def(RTE_ACL_FIELD_TYPE_MASK, 4, uint8_t(f6_src0 + w), uint8_t(1 + w),
		                        uint32_t(offsetof(acl_input_v6, src) + 4 * w));
	for (uint8_t w = 0; w < 4; ++w)
		c.defs[n++] = field_def(RTE_ACL_FIELD_TYPE_MASK, 4, uint8_t(f6_dst0 + w), uint8_t(5 + w),
		                        uint32_t(offsetof(acl_input_v6, dst) + 4 * w));
	c.defs[n++] = field_def(RTE_ACL_FIELD_TYPE_RANGE, 2, f6_sport, 9, offsetof(acl_input_v6, sport));
	c.defs[n++] = field_def(RTE_ACL_FIELD_TYPE_RANGE, 2, f6_dport, 9, offsetof(acl_input_v6, dport));
	if (modes.flags)
		c.defs[n++] = field_def(RTE_ACL_FIELD_TYPE_BITMASK, 4, f6_flags, 10, offsetof(acl_input_v6, flags));
	c.num_fields = n;
	return c;
}

field_modes choose_modes(std::span<const rule_entry> rules, bool v6)
{
	field_modes modes;
	for (const auto& r : rules) {
		const tuple_match& m = *r.match;
		if (!can_match(m, v6))
			continue;
		for (const auto& p : m.proto)
			if (p.lo != p.hi && !(p.lo == 0 && p.hi == 0xff))
				modes.proto_bitmask = false;
		if (!v6)
			for (const auto* set : {&m.src4, &m.dst4})
				for (const auto& a : *set)
					if (!is_prefix(a))
						modes.addr_mask = false;
		if (m.tcp_flags_mask != 0 || m.set_bits_mask != 0)
			modes.flags = true;
	}
	return modes;
}

bool expand_v4(std::span<const rule_entry> rules, const field_modes& modes, std::vector<acl_rule<f4_count>>& out,
               std::string& error, const std::atomic<bool>* cancel, bool& abandoned)
{
	uint64_t total = 0;
	for (size_t i = 0; i < rules.size(); ++i) {
		const tuple_match& m = *rules[i].match;
		if (!can_match(m, false))
			continue;
		total += saturating_mul(saturating_mul(m.proto.size(), m.src4.size() * m.dst4.size()),
		                        m.sport.size() * m.dport.size());
		if (total > max_acl_rules) {
			error = "IPv4 rules expand to more than " + std::to_string(max_acl_rules) +
			        " rte_acl rules (at rule index " + std::to_string(i) + ")";
			return false;
		}
	}
	out.reserve(total);
	for (size_t i = 0; i < rules.size(); ++i) {
		if (i % cancel_check_events == 0 && cancelled(cancel)) {
			abandoned = true;
			return false;
		}
		const tuple_match& m = *rules[i].match;
		if (!can_match(m, false))
			continue;
		acl_rule<f4_count> r{};
		fill_data(r, i, rules[i].id);
		set_flags(r.field[f4_flags], m);
		for (const auto& p : m.proto) {
			set_proto(r.field[f4_proto], p, modes.proto_bitmask);
			for (const auto& s : m.src4) {
				for (const auto& d : m.dst4) {
					if (modes.addr_mask) {
						r.field[f4_src].value.u32 = s.lo;
						r.field[f4_src].mask_range.u32 = uint32_t(prefix_length(s));
						r.field[f4_dst].value.u32 = d.lo;
						r.field[f4_dst].mask_range.u32 = uint32_t(prefix_length(d));
					} else {
						r.field[f4_src].value.u32 = s.lo;
						r.field[f4_src].mask_range.u32 = s.hi;
						r.field[f4_dst].value.u32 = d.lo;
						r.field[f4_dst].mask_range.u32 = d.hi;
					}
					for (const auto& sp : m.sport) {
						set_port(r.field[f4_sport], sp);
						for (const auto& dp : m.dport) {
							set_port(r.field[f4_dport], dp);
							out.push_back(r);
						}
					}
				}
			}
		}
	}
	return true;
}

bool expand_v6(std::span<const rule_entry> rules, const field_modes& modes, std::vector<acl_rule<f6_count>>& out,
               std::string& error, const std::atomic<bool>* cancel, bool& abandoned)
{
	std::vector<std::pair<u128, int>> src, dst;
	for (int pass = 0; pass < 2; ++pass) {
		uint64_t total = 0;
		for (size_t i = 0; i < rules.size(); ++i) {
			if (i % cancel_check_events == 0 && cancelled(cancel)) {
				abandoned = true;
				return false;
			}
			const tuple_match& m = *rules[i].match;
			if (!can_match(m, true))
				continue;
			src.clear();
			dst.clear();
			for (const auto& s : m.src6)
				split_prefixes(s.lo, s.hi, src);
			for (const auto& d : m.dst6)
				split_prefixes(d.lo, d.hi, dst);
			total += saturating_mul(saturating_mul(m.proto.size(), src.size() * dst.size()),
			                        m.sport.size() * m.dport.size());
			if (total > max_acl_rules) {
				error = "IPv6 rules expand to more than " + std::to_string(max_acl_rules) +
				        " rte_acl rules (at rule index " + std::to_string(i) + ")";
				return false;
			}
			if (pass == 0)
				continue;
			acl_rule<f6_count> r{};
			fill_data(r, i, rules[i].id);
			set_flags(r.field[f6_flags], m);
			for (const auto& p : m.proto) {
				set_proto(r.field[f6_proto], p, modes.proto_bitmask);
				for (const auto& [sv, sl] : src) {
					set_prefix6(&r.field[f6_src0], sv, sl);
					for (const auto& [dv, dl] : dst) {
						set_prefix6(&r.field[f6_dst0], dv, dl);
						for (const auto& sp : m.sport) {
							set_port(r.field[f6_sport], sp);
							for (const auto& dp : m.dport) {
								set_port(r.field[f6_dport], dp);
								out.push_back(r);
							}
						}
					}
				}
			}
		}
		if (pass == 0)
			out.reserve(total);
	}
	return true;
}

} // namespace portcullis::classify::acl_rules
