// Catch2's main for the inspection tests (no EAL: the scan path works on plain byte arrays).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
