// DPDK telemetry commands, so that `dpdk-telemetry.py` (and anything speaking the telemetry socket)
// can read a running portcullisd: /portcullis/stats, /portcullis/rules, /portcullis/flows.
//
// Threads: the callbacks run on DPDK's telemetry thread. They read per-core counters without locks, and
// the policy under runtime::reader_lock(). attach() and detach() are for the control thread; DPDK 22.11
// cannot unregister a command, so detach() makes them answer "not running" instead.
#pragma once

namespace portcullis::control {

class runtime;

// Registers the commands (once per process) and points them at rt.
void attach_telemetry(const runtime& rt);
void detach_telemetry();

} // namespace portcullis::control
