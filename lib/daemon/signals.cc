// The signal handlers of portcullisd: each stores one flag and returns; see signals.h.
#include "daemon/signals.h"

#include <csignal>

namespace portcullis::daemon {

std::atomic<bool> stop_requested{false};
std::atomic<bool> reload_requested{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the signal handlers store to these");

namespace {

extern "C" void on_stop_signal(int) { stop_requested.store(true); }
extern "C" void on_reload_signal(int) { reload_requested.store(true); }

} // namespace

void install_signal_handlers()
{
	struct sigaction sa{};
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_stop_signal;
	sigaction(SIGINT, &sa, nullptr);
	sigaction(SIGTERM, &sa, nullptr);
	sa.sa_handler = on_reload_signal;
	sigaction(SIGHUP, &sa, nullptr);
}

} // namespace portcullis::daemon
