// huge_map: large arrays on 2 MiB boundaries in whole 2 MiB pages, zeroed, and backed by huge pages
// where the kernel offers them.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "memory/huge_map.h"

using namespace portcullis;

namespace {

constexpr size_t mib = size_t(1) << 20;

bool aligned_2m(const void* p) { return reinterpret_cast<uintptr_t>(p) % (2 * mib) == 0; }

// The kernel's transparent huge page mode: "always", "madvise" or "never" (empty: none).
std::string thp_mode()
{
	std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
	std::string all;
	std::getline(in, all);
	const auto open = all.find('['), close = all.find(']');
	return open == std::string::npos || close == std::string::npos ? "" : all.substr(open + 1, close - open - 1);
}

// AnonHugePages of the mapping that starts at p, in kB, from /proc/self/smaps (-1: not found).
long huge_kb_at(const void* p)
{
	std::ifstream in("/proc/self/smaps");
	char start[32];
	std::snprintf(start, sizeof start, "%lx-", static_cast<unsigned long>(reinterpret_cast<uintptr_t>(p)));
	bool inside = false;
	for (std::string line; std::getline(in, line);) {
		if (line.rfind(start, 0) == 0)
			inside = true;
		else if (inside && line.rfind("AnonHugePages:", 0) == 0)
			return std::stol(line.substr(14));
	}
	return -1;
}

// Bytes of every mapping of this process, from /proc/self/maps.
size_t mapped_total()
{
	std::ifstream in("/proc/self/maps");
	size_t total = 0;
	for (std::string line; std::getline(in, line);) {
		unsigned long lo = 0, hi = 0;
		if (std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi) == 2)
			total += hi - lo;
	}
	return total;
}

} // namespace

TEST_CASE("small arrays are mapped as asked, large ones in whole 2 MiB pages")
{
	CHECK(memory::mapped_bytes(0) == 1);
	CHECK(memory::mapped_bytes(64) == 64);
	CHECK(memory::mapped_bytes(512 * 1024 - 1) == 512 * 1024 - 1);
	CHECK(memory::mapped_bytes(512 * 1024) == 2 * mib);
	CHECK(memory::mapped_bytes(699'072) == 2 * mib);  // bench-flood's 65,536-flow bucket array
	CHECK(memory::mapped_bytes(2 * mib) == 2 * mib);
	CHECK(memory::mapped_bytes(2 * mib + 1) == 4 * mib);
}

TEST_CASE("mapped arrays are zeroed and writable end to end, large ones on a 2 MiB boundary")
{
	for (const bool populate : {false, true}) {
		for (const size_t bytes : {size_t(1), size_t(64), size_t(4096), size_t(100'000), 512 * size_t(1024),
		                           size_t(699'072), 3 * mib + 5}) {
			CAPTURE(bytes, populate);
			auto* p = static_cast<unsigned char*>(memory::map_zeroed(bytes, populate));
			REQUIRE(p != nullptr);
			if (bytes >= 512 * 1024)
				CHECK(aligned_2m(p));
			unsigned nonzero = 0;
			for (size_t at = 0; at < bytes; at += 4093)
				nonzero += p[at] != 0;
			nonzero += p[bytes - 1] != 0;
			CHECK(nonzero == 0);
			// The whole mapped length is ours: write its last byte too.
			p[0] = 0xCD;
			p[memory::mapped_bytes(bytes) - 1] = 0xAB;
			CHECK(p[memory::mapped_bytes(bytes) - 1] == 0xAB);
			memory::unmap(p, bytes);
		}
	}
	memory::unmap(nullptr, 4096);  // nothing
}

TEST_CASE("mapping and unmapping gives everything back, the trimmed ends included")
{
	// An aligned array is cut from a mapping 2 MiB longer: a head or tail left mapped would add up here.
	const size_t before = mapped_total();
	for (int i = 0; i < 32; ++i)
		memory::unmap(memory::map_zeroed(699'072 + size_t(i) * 4096, i % 2 == 0), 699'072 + size_t(i) * 4096);
	const size_t after = mapped_total();
	CHECK(after < before + 2 * mib);  // 32 leaked ends would be 32 to 64 MiB
}

TEST_CASE("a populated large array is backed by huge pages when the kernel offers them")
{
	const std::string mode = thp_mode();
	if (mode != "always" && mode != "madvise") {
		WARN("skipped: transparent huge pages are '" << mode << "' here");
		return;
	}
	void* p = memory::map_zeroed(699'072, true);
	const long kb = huge_kb_at(p);
	memory::unmap(p, 699'072);
	CAPTURE(kb);
	REQUIRE(kb >= 0);  // the mapping was found
	// The kernel may still refuse one (memory too fragmented): then it says so, and the test does not
	// fail on what the machine cannot give.
	if (kb == 0)
		WARN("the kernel gave this 2 MiB range no huge page (memory too fragmented?)");
}
