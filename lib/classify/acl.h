// DPDK rte_acl backend: the baseline our classifier is measured against, and a fallback.
//
// One classifier holds two rte_acl contexts, IPv4 and IPv6, each built only if some rule applies to
// that family. A rule becomes as many rte_acl rules as the cross product of its fields' ranges needs
// (ports are RANGE fields, one ACL rule per range; IPv4 addresses are MASK fields when every range in the
// set is a prefix, as in dpdk-test-acl, else RANGE; the protocol is a BITMASK when every set is one value
// or any, else RANGE; IPv6 addresses are split into prefixes and matched as four 32-bit MASK words; TCP
// flags and set bits share one 32-bit BITMASK group that exists only if some rule tests either).
// First-match order maps to rte_acl priority (rule 0 highest) and userdata is id + 1, so rte_acl's
// "0 = no match" becomes no_match by one subtraction. A family whose rules overlap too much for one
// rte_acl context (rte_acl_build fails past 8 tries) is split by priority into several contexts, tried
// in order at classify time.
//
// Byte order: rte_acl takes rule values as host-order integers and compares them against the input
// bytes read as big-endian (it walks the input a byte at a time, most significant first). classify()
// therefore converts our host-order keys into a private big-endian input layout, in fixed-size stack
// batches: nothing is allocated on the classify path.
//
// Needs the DPDK EAL to be initialised by the caller (rte_acl allocates with rte_malloc). Build from
// any thread; classify() from any number of threads at once. memory_bytes() is the rte_malloc heap
// growth across rte_acl_build (the run-time tries; rte_acl reports no size publicly), so it is exact
// only if no other thread uses rte_malloc during the build.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "classify/classify.h"

namespace portcullis::classify {

// rte_acl's classify methods. best = what rte_acl itself picks on this CPU under the EAL's
// max-SIMD-bitwidth (22.11 default 256 bits: avx512x16 on an AVX-512 machine, not avx512x32).
enum class acl_method { best, scalar, sse, avx2, avx512x16, avx512x32 };

std::string_view acl_method_name(acl_method m);
std::optional<acl_method> parse_acl_method(std::string_view name);

// Fails (with a reason) when the method is not supported here, a rule set expands beyond what
// rte_acl can hold, or rte_acl_build fails (out of memory).
// `cancel`: see classify.h, "Cancelling a build".
build_result build_rte_acl(std::span<const rule_entry> rules, acl_method method = acl_method::best,
                           const std::atomic<bool>* cancel = nullptr);

// The method an rte_acl classifier runs ("avx512x16", never "best"); empty if c is another backend.
std::string rte_acl_method_name(const classifier& c);

// How many rte_acl contexts it holds (IPv4 and IPv6 together): 1 per family normally, more when a
// family's rules needed more than rte_acl's 8 tries and were split by priority; 0 for other backends.
size_t rte_acl_context_count(const classifier& c);

} // namespace portcullis::classify
