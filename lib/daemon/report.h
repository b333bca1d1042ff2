// The counters portcullisd prints: every run.stats-interval and once more at exit (the final summary):
// per port, per direction and verdict, flows, drops by reason, and the rule set active (generation,
// digest, source) with each rule's counters.
//
// Threads: the control thread (it reads the runtime's policy; worker counters may be read any time).
#pragma once

#include <cstdio>
#include <vector>

#include "control/runtime.h"
#include "dataplane/ports.h"

namespace portcullis::daemon {

void print_counters(const control::runtime& rt, const std::vector<dataplane::port_state>& ports, FILE* out);

} // namespace portcullis::daemon
