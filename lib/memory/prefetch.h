// A software prefetch the compiler must keep: the data path's look-ahead fetches (flow table buckets and
// entries, address-set records, per-flow side state) go through it.
//
// Why not __builtin_prefetch: GCC 12 is free to delete it, and did. A set lookup's prefetch inlined
// under two conditionals lost its instruction (bench-sets add_to_scan: the new flow's set record then
// waited on memory); and a one-line condition added inside flow_table::fetch() took both of its
// prefetches out of worker::process and start_lookups, which doubled established_64b's worker cycles
// (bench-pipeline, 200 -> 430 a packet; prefetch instructions in process: 9 -> 5). An asm volatile
// instruction stays where it is written.
#pragma once

namespace portcullis::memory {

// Asks for the cache line holding p, for reading, into every level (prefetcht0). Never faults, whatever
// p is: an address past a table's end or in no mapping is simply not fetched.
inline void prefetch(const void* p)
{
#if defined(__x86_64__) || defined(__i386__)
	asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p)));
#else
	__builtin_prefetch(p);
#endif
}

} // namespace portcullis::memory
