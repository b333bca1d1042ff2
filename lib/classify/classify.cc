#include "classify/classify.h"

#include <chrono>

#include "classify/acl.h"
#include "classify/bitvector.h"
#include "classify/linear.h"

namespace portcullis::classify {

std::string_view backend_name(backend b)
{
	switch (b) {
	case backend::ours: return "ours";
	case backend::rte_acl: return "rte_acl";
	case backend::linear: return "linear";
	}
	return "?";
}

bool matches(const tuple_match& m, const key_v4& k)
{
	return contains(m.src4, k.src) && contains(m.dst4, k.dst) && contains(m.sport, k.sport) &&
	       contains(m.dport, k.dport) && contains(m.proto, k.proto) &&
	       (k.tcp_flags & m.tcp_flags_mask) == m.tcp_flags_value &&
	       (k.set_bits & m.set_bits_mask) == m.set_bits_value;
}

bool matches(const tuple_match& m, const key_v6& k)
{
	return contains(m.src6, k.src) && contains(m.dst6, k.dst) && contains(m.sport, k.sport) &&
	       contains(m.dport, k.dport) && contains(m.proto, k.proto) &&
	       (k.tcp_flags & m.tcp_flags_mask) == m.tcp_flags_value &&
	       (k.set_bits & m.set_bits_mask) == m.set_bits_value;
}

build_result abandoned_build()
{
	build_result r;
	r.abandoned = true;
	r.error = "build abandoned: cancelled";
	return r;
}

build_result build(backend b, std::span<const rule_entry> rules, const std::atomic<bool>* cancel)
{
	const auto start = std::chrono::steady_clock::now();
	build_result r;
	switch (b) {
	case backend::ours: r = build_bitvector(rules, bitvector_options{.cancel = cancel}); break;
	case backend::rte_acl: r = build_rte_acl(rules, acl_method::best, cancel); break;
	case backend::linear: r = build_linear(rules); break;
	}
	r.build_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
	return r;
}

} // namespace portcullis::classify
