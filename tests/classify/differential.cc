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
		// Every range-index layout on every rule set, whatever the build would choose for it: a bare
		// B-tree (top 0: IPv4 in 32-bit nodes, ports in 16-bit ones), small top tables with trees below
		// (8 and 12 bits), and the default (16). Both lookup paths read the 32-bit nodes.
		{"ours-top0",
		 [](std::span<const rule_entry> r) { return build_bitvector(r, bitvector_options{.top_bits = 0}); }},
		{"ours-top8",
		 [](std::span<const rule_entry> r) { return build_bitvector(r, bitvector_options{.top_bits = 8}); }},
		{"ours-top16",
		 [](std::span<const rule_entry> r) { return build_bitvector(r, bitvector_options{.top_bits = 16}); }},
		{"ours-portable-top0",
		 [](std::span<const rule_entry> r) {
			 return build_bitvector(r, bitvector_options{.allow_avx512 = false, .top_bits = 0});
		 }},
		{"ours-portable-top12",
		 [](std::span<const rule_entry> r) {
			 return build_bitvector(r, bitvector_options{.allow_avx512 = false, .top_bits = 12});
		 }},
		{"rte_acl", [](std::span<const rule_entry> r) { return build(backend::rte_acl, r); }},
		{"rte_acl-scalar", [](std::span<const rule_entry> r) { return build_rte_acl(r, acl_method::scalar); },
		 400},
	};
}

} // namespace portcullis::test
