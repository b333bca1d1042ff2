#include "differential.h"

#include "classify/acl.h"
#include "classify/bitvector.h"

namespace portcullis::test {

std::vector<variant> all_variants()
{
	using namespace classify;
	return {
		{"ours", [](std::span<const rule_entry> r) { return build(backend::ours, r); }},
		{"ours-portable",
		 [](std::span<const rule_entry> r) { return build_bitvector(r, bitvector_options{.allow_avx512 = false}); }},
		{"rte_acl", [](std::span<const rule_entry> r) { return build(backend::rte_acl, r); }},
		{"rte_acl-scalar", [](std::span<const rule_entry> r) { return build_rte_acl(r, acl_method::scalar); },
		 400},
	};
}

} // namespace portcullis::test
