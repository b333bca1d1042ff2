// The Catch2 runner for the packet tests. The EAL is brought up lazily, by the burst tests only
// (test_burst.cc), so the byte-array tests run without DPDK.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
