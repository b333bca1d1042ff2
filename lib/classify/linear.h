// Brute-force reference classifier: tries every rule in order. Slow on purpose and obviously correct;
// the tests compare the fast classifiers against it.
#pragma once
#include "classify/classify.h"

namespace portcullis::classify {
build_result build_linear(std::span<const rule_entry> rules);
}
