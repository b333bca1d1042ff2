#include "classify/acl.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include <rte_acl.h>
#include <rte_byteorder.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_memory.h>

namespace portcullis::classify {
namespace {

// rte_acl reads the input as bytes: the first field is one byte consumed on its own, every later
// "input index" is a group of 4 consecutive bytes read at once. So the layouts below put the protocol
// first, pad to 4, and give every group exactly 4 bytes (ports share one group).
struct acl_input_v4 {
	uint8_t proto;
	uint8_t pad[3];
	uint32_t src;  // big-endian
	uint32_t dst;
	uint16_t sport;
	uint16_t dport;
	uint32_t flags;  // big-endian, TCP flags in the low byte (only read if a rule tests flags)
};
static_assert(sizeof(acl_input_v4) == 20);

struct acl_input_v6 {
	uint8_t proto;
	uint8_t pad[3];
	uint8_t src[16];  // network order: word i (most significant first) at src + 4i
	uint8_t dst[16];
	uint16_t sport;
	uint16_t dport;
	uint32_t flags;
};
static_assert(sizeof(acl_input_v6) == 44);

enum : uint8_t { f4_proto, f4_src, f4_dst, f4_sport, f4_dport, f4_flags, f4_count };
enum : uint8_t {
	f6_proto,
	f6_src0,
	f6_dst0 = f6_src0 + 4,
	f6_sport = f6_dst0 + 4,
	f6_dport,
	f6_flags,
	f6_count
};

template <int N>
struct acl_rule {
	rte_acl_rule_data data;
	rte_acl_field field[N];
};

// Whole-set choices made before expanding: dpdk-test-acl matches the protocol as a BITMASK and IPv4
// addresses as MASK; we do the same when the rules allow it (ClassBench always does), so the baseline
// trie is the one DPDK's own tool measures, and fall back to RANGE otherwise. The flags group costs four
// more trie steps per lookup, so it only exists when some rule tests flags.
struct field_modes {
	bool proto_bitmask = true;
	bool addr_mask = true;  // IPv4 only; IPv6 is always prefixes on MASK words
	bool flags = false;
};

// Beyond this many rte_acl rules per family we refuse: rte_acl keeps every rule in its context and the
// build time and memory grow far faster than the rule count.
constexpr uint64_t max_acl_rules = uint64_t(1) << 21;

// Burst split: rte_acl wants arrays of input pointers; 64 inputs (20-44 bytes each) stay on the stack
// and fill the avx512x16/x32 lanes.
constexpr uint32_t batch = 64;

std::atomic<uint32_t> context_counter{0};

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

// A rule can match in a family only if every field is non-empty and its flags test is satisfiable.
bool can_match(const tuple_match& m, bool v6)
{
	if (v6 ? !m.applies_to_ipv6() : !m.applies_to_ipv4())
		return false;
	if (m.sport.empty() || m.dport.empty() || m.proto.empty())
		return false;
	return (m.tcp_flags_value & ~m.tcp_flags_mask) == 0;
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
	f.value.u32 = m.tcp_flags_value;
	f.mask_range.u32 = m.tcp_flags_mask;
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

// Sets a 128-bit prefix into four MASK words, most significant word first.
void set_prefix6(rte_acl_field* words, u128 value, int length)
{
	for (int w = 0; w < 4; ++w) {
		words[w].value.u32 = uint32_t(value >> (96 - 32 * w));
		words[w].mask_range.u32 = uint32_t(std::clamp(length - 32 * w, 0, 32));
	}
}

size_t rte_heap_allocated()
{
	size_t total = 0;
	for (unsigned i = 0; i < rte_socket_count(); ++i) {
		rte_malloc_socket_stats s{};
		if (rte_malloc_get_socket_stats(rte_socket_id_by_idx(i), &s) == 0)
			total += s.heap_allocsz_bytes;
	}
	return total;
}

struct acl_ctx_free {
	void operator()(rte_acl_ctx* c) const { rte_acl_free(c); }
};
using acl_ctx_ptr = std::unique_ptr<rte_acl_ctx, acl_ctx_free>;

enum rte_acl_classify_alg to_alg(acl_method m)
{
	switch (m) {
	case acl_method::best: return RTE_ACL_CLASSIFY_DEFAULT;
	case acl_method::scalar: return RTE_ACL_CLASSIFY_SCALAR;
	case acl_method::sse: return RTE_ACL_CLASSIFY_SSE;
	case acl_method::avx2: return RTE_ACL_CLASSIFY_AVX2;
	case acl_method::avx512x16: return RTE_ACL_CLASSIFY_AVX512X16;
	case acl_method::avx512x32: return RTE_ACL_CLASSIFY_AVX512X32;
	}
	return RTE_ACL_CLASSIFY_DEFAULT;
}

// Sets the method on ctx. For best, rte_acl has no getter for the method it chose at create time, so
// we walk its own preference order (rte_acl.c acl_get_best_alg in 22.11) and keep the first one
// rte_acl_set_ctx_classify accepts: the same choice, and now we know its name.
bool apply_method(rte_acl_ctx* ctx, acl_method wanted, acl_method& chosen)
{
	if (wanted != acl_method::best) {
		chosen = wanted;
		return rte_acl_set_ctx_classify(ctx, to_alg(wanted)) == 0;
	}
	for (acl_method m : {acl_method::avx512x32, acl_method::avx512x16, acl_method::avx2, acl_method::sse,
	                     acl_method::scalar}) {
		if (rte_acl_set_ctx_classify(ctx, to_alg(m)) == 0) {
			chosen = m;
			return true;
		}
	}
	return false;
}

// Creates, fills and builds one context. rules holds count rules of rule_size bytes each. On failure
// returns null with the reason in error and rte_acl's return code in build_rc (0 if it never got to build).
acl_ctx_ptr make_context(const char* family, const rte_acl_config& config, const void* rules, uint32_t count,
                         uint32_t rule_size, acl_method wanted, acl_method& chosen, size_t& bytes,
                         std::string& error, int& build_rc)
{
	build_rc = 0;
	char name[RTE_ACL_NAMESIZE];
	std::snprintf(name, sizeof(name), "pc_%s_%u", family, context_counter.fetch_add(1));
	rte_acl_param param{};
	param.name = name;
	param.socket_id = SOCKET_ID_ANY;
	param.rule_size = rule_size;
	param.max_rule_num = count;
	acl_ctx_ptr ctx(rte_acl_create(&param));
	if (!ctx) {
		error = std::string("rte_acl_create(") + name + ") failed: " + rte_strerror(rte_errno);
		return nullptr;
	}
	if (int rc = rte_acl_add_rules(ctx.get(), static_cast<const rte_acl_rule*>(rules), count); rc != 0) {
		error = std::string("rte_acl_add_rules(") + name + ") failed: " + rte_strerror(-rc);
		return nullptr;
	}
	const size_t before = rte_heap_allocated();
	if (int rc = rte_acl_build(ctx.get(), &config); rc != 0) {
		build_rc = rc;
		error = std::string("rte_acl_build(") + name + ", " + std::to_string(count) +
		        " rules) failed: " + rte_strerror(-rc);
		return nullptr;
	}
	const size_t after = rte_heap_allocated();
	bytes += after > before ? after - before : 0;
	if (!apply_method(ctx.get(), wanted, chosen)) {
		error = std::string("rte_acl method ") + std::string(acl_method_name(wanted)) +
		        " is not supported on this CPU/EAL (see --force-max-simd-bitwidth)";
		return nullptr;
	}
	return ctx;
}

// rte_acl splits a context into at most 8 tries to bound its node count; heavily overlapping rule sets
// (wide ranges, negations, wildcards: the random sets of the tests) need more and rte_acl_build then fails
// with -ENOMEM. We split such a set by priority into consecutive parts, one context each, and take the
// first part with a match at classify time: correct because every rule of an earlier part has higher
// priority than every rule of a later one. ClassBench sets build as one context.
constexpr size_t max_contexts = 64;

template <class Rule>
bool build_chain(const char* family, const rte_acl_config& config, const Rule* rules, size_t count,
                 acl_method wanted, acl_method& chosen, size_t& bytes, std::vector<acl_ctx_ptr>& chain,
                 std::string& error)
{
	int rc = 0;
	acl_ctx_ptr ctx = make_context(family, config, rules, uint32_t(count), sizeof(Rule), wanted, chosen, bytes,
	                               error, rc);
	if (ctx) {
		chain.push_back(std::move(ctx));
		return true;
	}
	if (rc != -ENOMEM || count < 2)
		return false;
	if (chain.size() + 2 > max_contexts) {
		error += "; still failing after splitting into " + std::to_string(max_contexts) + " contexts";
		return false;
	}
	error.clear();
	const size_t half = count / 2;
	return build_chain(family, config, rules, half, wanted, chosen, bytes, chain, error) &&
	       build_chain(family, config, rules + half, count - half, wanted, chosen, bytes, chain, error);
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
		if (m.tcp_flags_mask != 0)
			modes.flags = true;
	}
	return modes;
}

uint32_t priority_of(size_t index) { return uint32_t(RTE_ACL_MAX_PRIORITY - index); }

class acl_classifier final : public classifier {
public:
	acl_classifier(std::vector<acl_ctx_ptr> v4, std::vector<acl_ctx_ptr> v6, size_t bytes, acl_method method)
		: v4_(std::move(v4)), v6_(std::move(v6)), bytes_(bytes), method_(method)
	{
	}

	backend kind() const override { return backend::rte_acl; }
	size_t memory_bytes() const override { return bytes_; }
	acl_method method() const { return method_; }
	size_t contexts() const { return v4_.size() + v6_.size(); }

	void classify(const key_v4* keys, uint32_t n, uint32_t* results) const override
	{
		if (v4_.empty()) {
			std::fill_n(results, n, no_match);
			return;
		}
		acl_input_v4 input[batch];
		const uint8_t* data[batch];
		for (uint32_t done = 0; done < n; done += batch) {
			const uint32_t count = std::min(batch, n - done);
			for (uint32_t i = 0; i < count; ++i) {
				const key_v4& k = keys[done + i];
				acl_input_v4& in = input[i];
				in.proto = k.proto;
				in.src = rte_cpu_to_be_32(k.src);
				in.dst = rte_cpu_to_be_32(k.dst);
				in.sport = rte_cpu_to_be_16(k.sport);
				in.dport = rte_cpu_to_be_16(k.dport);
				in.flags = rte_cpu_to_be_32(k.tcp_flags);
				data[i] = &in.proto;
			}
			run(v4_, data, results + done, count);
		}
	}

	void classify(const key_v6* keys, uint32_t n, uint32_t* results) const override
	{
		if (v6_.empty()) {
			std::fill_n(results, n, no_match);
			return;
		}
		acl_input_v6 input[batch];
		const uint8_t* data[batch];
		for (uint32_t done = 0; done < n; done += batch) {
			const uint32_t count = std::min(batch, n - done);
			for (uint32_t i = 0; i < count; ++i) {
				const key_v6& k = keys[done + i];
				acl_input_v6& in = input[i];
				in.proto = k.proto;
				store_be128(in.src, k.src);
				store_be128(in.dst, k.dst);
				in.sport = rte_cpu_to_be_16(k.sport);
				in.dport = rte_cpu_to_be_16(k.dport);
				in.flags = rte_cpu_to_be_32(k.tcp_flags);
				data[i] = &in.proto;
			}
			run(v6_, data, results + done, count);
		}
	}

private:
	static void store_be128(uint8_t* out, u128 v)
	{
		const uint64_t high = rte_cpu_to_be_64(uint64_t(v >> 64));
		const uint64_t low = rte_cpu_to_be_64(uint64_t(v));
		std::memcpy(out, &high, 8);
		std::memcpy(out + 8, &low, 8);
	}

	// userdata is id + 1 and rte_acl writes 0 for "no match": subtracting 1 maps that to no_match.
	// With several contexts (see build_chain) the first one with a match wins.
	static void run(const std::vector<acl_ctx_ptr>& chain, const uint8_t** data, uint32_t* results, uint32_t count)
	{
		rte_acl_classify(chain[0].get(), data, results, count, 1);
		for (size_t c = 1; c < chain.size(); ++c) {
			if (std::find(results, results + count, 0u) == results + count)
				break;
			uint32_t more[batch];
			rte_acl_classify(chain[c].get(), data, more, count, 1);
			for (uint32_t i = 0; i < count; ++i)
				results[i] = results[i] != 0 ? results[i] : more[i];
		}
		for (uint32_t i = 0; i < count; ++i)
			results[i] -= 1;
	}

	std::vector<acl_ctx_ptr> v4_, v6_;
	size_t bytes_;
	acl_method method_;
};

template <int N>
void fill_data(acl_rule<N>& r, size_t index, uint32_t id)
{
	r.data.category_mask = 1;
	r.data.priority = int32_t(priority_of(index));
	r.data.userdata = id + 1;
}

bool expand_v4(std::span<const rule_entry> rules, const field_modes& modes, std::vector<acl_rule<f4_count>>& out,
               std::string& error)
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
               std::string& error)
{
	std::vector<std::pair<u128, int>> src, dst;
	for (int pass = 0; pass < 2; ++pass) {
		uint64_t total = 0;
		for (size_t i = 0; i < rules.size(); ++i) {
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

} // namespace

std::string_view acl_method_name(acl_method m)
{
	switch (m) {
	case acl_method::best: return "best";
	case acl_method::scalar: return "scalar";
	case acl_method::sse: return "sse";
	case acl_method::avx2: return "avx2";
	case acl_method::avx512x16: return "avx512x16";
	case acl_method::avx512x32: return "avx512x32";
	}
	return "?";
}

std::optional<acl_method> parse_acl_method(std::string_view name)
{
	for (acl_method m : {acl_method::best, acl_method::scalar, acl_method::sse, acl_method::avx2,
	                     acl_method::avx512x16, acl_method::avx512x32})
		if (acl_method_name(m) == name)
			return m;
	return std::nullopt;
}

std::string rte_acl_method_name(const classifier& c)
{
	if (const auto* acl = dynamic_cast<const acl_classifier*>(&c))
		return std::string(acl_method_name(acl->method()));
	return {};
}

size_t rte_acl_context_count(const classifier& c)
{
	if (const auto* acl = dynamic_cast<const acl_classifier*>(&c))
		return acl->contexts();
	return 0;
}

build_result build_rte_acl(std::span<const rule_entry> rules, acl_method method)
{
	build_result result;
	if (rules.size() >= RTE_ACL_MAX_PRIORITY) {
		result.error = "too many rules for rte_acl priorities";
		return result;
	}
	size_t bytes = 0;
	acl_method chosen = method;
	std::vector<acl_ctx_ptr> v4, v6;

	const field_modes modes4 = choose_modes(rules, false);
	std::vector<acl_rule<f4_count>> rules4;
	if (!expand_v4(rules, modes4, rules4, result.error))
		return result;
	if (!rules4.empty() && !build_chain("v4", config_v4(modes4), rules4.data(), rules4.size(), method, chosen,
	                                    bytes, v4, result.error))
		return result;
	rules4 = {};

	const field_modes modes6 = choose_modes(rules, true);
	std::vector<acl_rule<f6_count>> rules6;
	if (!expand_v6(rules, modes6, rules6, result.error))
		return result;
	if (!rules6.empty() && !build_chain("v6", config_v6(modes6), rules6.data(), rules6.size(), method, chosen,
	                                    bytes, v6, result.error))
		return result;

	// With no context at all nothing was asked of rte_acl; still report the method it would use, from
	// a throwaway context, so the name is never "best".
	if (v4.empty() && v6.empty() && method == acl_method::best) {
		rte_acl_param param{};
		char name[RTE_ACL_NAMESIZE];
		std::snprintf(name, sizeof(name), "pc_probe_%u", context_counter.fetch_add(1));
		param.name = name;
		param.socket_id = SOCKET_ID_ANY;
		param.rule_size = sizeof(acl_rule<f4_count>);
		param.max_rule_num = 1;
		acl_ctx_ptr probe(rte_acl_create(&param));
		if (!probe || !apply_method(probe.get(), method, chosen)) {
			result.error = "rte_acl_create failed (is the EAL initialised?)";
			return result;
		}
	}
	result.classifier = std::make_unique<acl_classifier>(std::move(v4), std::move(v6), bytes, chosen);
	return result;
}

} // namespace portcullis::classify
