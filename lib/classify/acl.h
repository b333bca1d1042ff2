// DPDK rte_acl backend: the baseline our classifier is measured against, and a fallback.
// Needs the DPDK EAL to be initialised by the caller (rte_acl allocates with rte_malloc).
// Picks the best SIMD method the CPU has (rte_acl's own default selection).
#pragma once
#include "classify/classify.h"

namespace portcullis::classify {
build_result build_rte_acl(std::span<const rule_entry> rules);
}
