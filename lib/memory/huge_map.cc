#include "memory/huge_map.h"

#include <sys/mman.h>

#include <cstdint>
#include <new>

namespace portcullis::memory {
namespace {

constexpr size_t huge_page = size_t(2) << 20;
constexpr size_t aligned_from = size_t(512) << 10;

} // namespace

size_t mapped_bytes(size_t bytes)
{
	if (bytes == 0)
		bytes = 1;
	return bytes >= aligned_from ? (bytes + huge_page - 1) & ~(huge_page - 1) : bytes;
}

void* map_zeroed(size_t bytes, bool populate)
{
	const size_t length = mapped_bytes(bytes);
	const bool aligned = length >= aligned_from;
	// An aligned array is cut out of a mapping one huge page longer, and the ends trimmed off.
	const size_t reserved = aligned ? length + huge_page : length;
	void* raw = mmap(nullptr, reserved, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		throw std::bad_alloc();
	auto* p = static_cast<char*>(raw);
	if (aligned) {
		const uintptr_t at = reinterpret_cast<uintptr_t>(raw);
		p = static_cast<char*>(raw) + ((huge_page - at % huge_page) % huge_page);
		if (p != raw)
			munmap(raw, size_t(p - static_cast<char*>(raw)));
		if (const size_t tail = size_t(static_cast<char*>(raw) + reserved - (p + length)))
			munmap(p + length, tail);
	}
#ifdef MADV_HUGEPAGE
	madvise(p, length, MADV_HUGEPAGE);  // before the pages exist, so that they can be huge ones
#endif
	if (!populate)
		return p;
#ifdef MADV_POPULATE_WRITE
	madvise(p, length, MADV_POPULATE_WRITE);  // all at once where it works (Linux 5.14 on)
#endif
	// And a write to each page through this mapping: under shadow paging (PVM guests) a page the kernel
	// populated still costs the data path an exit to the host on its first touch there.
	for (size_t at = 0; at < length; at += 4096)
		static_cast<volatile char*>(static_cast<void*>(p))[at] = 0;
	return p;
}

void unmap(void* p, size_t bytes)
{
	if (p)
		munmap(p, mapped_bytes(bytes));
}

} // namespace portcullis::memory
