// The daemon's two requests from outside: stop (SIGINT, SIGTERM; also set by the control loop for
// run.duration and run.exit-when-idle) and reload (SIGHUP: re-read the configured rules file).
//
// Threads: the handlers only store to these flags (lock-free atomics, async-signal-safe). The workers
// poll stop_requested between bursts; the control loop acts on both; a push in progress reads
// stop_requested at its steps and is abandoned (control/runtime.h).
#pragma once

#include <atomic>

namespace portcullis::daemon {

extern std::atomic<bool> stop_requested;
extern std::atomic<bool> reload_requested;

// Installed before the slow part of the start-up (EAL, ports, rule compile): a SIGHUP from `systemctl
// reload` right after the start must not kill the daemon (its default action), and a SIGTERM then stops
// it as soon as it is up.
void install_signal_handlers();

} // namespace portcullis::daemon
