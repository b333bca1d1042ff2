// Large zeroed arrays straight from the kernel, laid out so that transparent huge pages can back them:
// the flow table's buckets and entries, the address sets' records. Read at random by the data path, on
// 4 KiB pages most of their reads would also miss the TLB.
//
// An array of 512 KiB or more is mapped on a 2 MiB boundary and rounded up to whole 2 MiB pages (the
// kernel gives a huge page only to an aligned 2 MiB range: Linux 6.1 does not align anonymous mappings
// itself, and a 700 KB bucket array never had one). It then takes at most 2 MiB more than asked for.
// bench-flood at a 99% SYN flood, three interleaved runs each: the established packets kept 0.75 of
// their speed with the 65,536-flow table's 700 KB of buckets on 4 KiB pages, 0.76-0.79 on a huge page
// (with SYN cookies, whose flood reads nothing but buckets, 0.82-0.84 either way).
#pragma once

#include <cstddef>

namespace portcullis::memory {

// The length map_zeroed(bytes) maps.
size_t mapped_bytes(size_t bytes);
// Zeroed memory for `bytes`, asked for huge pages (MADV_HUGEPAGE). populate: fault every page in now,
// on the control plane, rather than on the data path later. Throws std::bad_alloc.
void* map_zeroed(size_t bytes, bool populate);
// Gives back what map_zeroed(bytes) returned (null: nothing).
void unmap(void* p, size_t bytes);

} // namespace portcullis::memory
