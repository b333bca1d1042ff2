// What the fuzz targets share: checking a parser's promises, not only that it does not crash.
#pragma once

#include <cstdio>
#include <cstdlib>

// A broken promise: say which, then crash so that libFuzzer saves the input.
#define REQUIRE(cond)                                                                        \
	do {                                                                                     \
		if (!(cond)) {                                                                       \
			std::fprintf(stderr, "%s:%d: promise broken: %s\n", __FILE__, __LINE__, #cond); \
			std::abort();                                                                    \
		}                                                                                    \
	} while (0)
