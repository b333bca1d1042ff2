// DPDK rte_acl backend (acl.h): contexts built from the expanded rules, the classifier over them.
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

#include "classify/acl_rules.h"

namespace portcullis::classify {
namespace {

using namespace acl_rules;

// Burst split: rte_acl wants arrays of input pointers; 64 inputs (20-44 bytes each) stay on the stack
// and fill the avx512x16/x32 lanes.
constexpr uint32_t batch = 64;

std::atomic<uint32_t> context_counter{0};

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

// Gives up (false, `abandoned` set) when the cancel flag is set before a context is made: one
// rte_acl_build runs to its end, there is no way into it.
template <class Rule>
bool build_chain(const char* family, const rte_acl_config& config, const Rule* rules, size_t count,
                 acl_method wanted, acl_method& chosen, size_t& bytes, std::vector<acl_ctx_ptr>& chain,
                 std::string& error, const std::atomic<bool>* cancel, bool& abandoned)
{
	if (cancelled(cancel)) {
		abandoned = true;
		return false;
	}
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
	return build_chain(family, config, rules, half, wanted, chosen, bytes, chain, error, cancel, abandoned) &&
	       build_chain(family, config, rules + half, count - half, wanted, chosen, bytes, chain, error, cancel,
	                   abandoned);
}

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
				in.flags = rte_cpu_to_be_32(flags_word(k.tcp_flags, k.set_bits));
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
				in.flags = rte_cpu_to_be_32(flags_word(k.tcp_flags, k.set_bits));
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

build_result build_rte_acl(std::span<const rule_entry> rules, acl_method method, const std::atomic<bool>* cancel)
{
	build_result result;
	bool abandoned = false;
	if (rules.size() >= RTE_ACL_MAX_PRIORITY) {
		result.error = "too many rules for rte_acl priorities";
		return result;
	}
	size_t bytes = 0;
	acl_method chosen = method;
	std::vector<acl_ctx_ptr> v4, v6;

	const field_modes modes4 = choose_modes(rules, false);
	std::vector<acl_rule<f4_count>> rules4;
	if (!expand_v4(rules, modes4, rules4, result.error, cancel, abandoned))
		return abandoned ? abandoned_build() : std::move(result);
	if (!rules4.empty() && !build_chain("v4", config_v4(modes4), rules4.data(), rules4.size(), method, chosen,
	                                    bytes, v4, result.error, cancel, abandoned))
		return abandoned ? abandoned_build() : std::move(result);
	rules4 = {};

	const field_modes modes6 = choose_modes(rules, true);
	std::vector<acl_rule<f6_count>> rules6;
	if (!expand_v6(rules, modes6, rules6, result.error, cancel, abandoned))
		return abandoned ? abandoned_build() : std::move(result);
	if (!rules6.empty() && !build_chain("v6", config_v6(modes6), rules6.data(), rules6.size(), method, chosen,
	                                    bytes, v6, result.error, cancel, abandoned))
		return abandoned ? abandoned_build() : std::move(result);
	if (cancelled(cancel))  // the last rte_acl_build ran while the flag was set
		return abandoned_build();

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
