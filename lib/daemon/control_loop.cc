// The appliance's run phase: the workers on their lcores and, on the main lcore, the control loop that
// acts on signals and rule feeds, expires flows, drains the rule log, prints periodic counters and
// decides when to stop (run.duration, run.exit-when-idle). See appliance.h.
//
// Threads: serve() and control_loop() on the main thread, or control_loop() on a thread of its own
// when the only worker has the main lcore; worker_main on each worker lcore.
#include "daemon/appliance.h"

#include <rte_cycles.h>
#include <rte_launch.h>

#include <chrono>
#include <ctime>
#include <cstdio>
#include <thread>

#include "daemon/pdump_callbacks.h"
#include "daemon/report.h"
#include "daemon/rule_updates.h"
#include "daemon/signals.h"

namespace portcullis::daemon {

namespace {

int worker_main(void* arg)
{
	static_cast<dataplane::worker*>(arg)->run(stop_requested);
	return 0;
}

uint64_t sum_rx(const std::vector<std::unique_ptr<dataplane::worker>>& workers)
{
	uint64_t total = 0;
	for (const auto& w : workers)
		for (uint32_t p = 0; p < dataplane::max_ports; ++p)
			total += w->counters().rx_packets[p];
	return total;
}

} // namespace

void appliance::serve()
{
	auto& workers = rt_->workers();
	set_capture_rcu(rt_->rcu());
	if (worker_on_main_) {
		std::thread control_thread([this] { control_loop(); });
		workers[0]->run(stop_requested);
		control_thread.join();
	} else {
		for (uint32_t w = 0; w < nworkers_; ++w)
			rte_eal_remote_launch(worker_main, workers[w].get(), worker_lcores_[w]);
		control_loop();
		rte_eal_mp_wait_lcore();
	}
}

void appliance::control_loop()
{
	const auto& workers = rt_->workers();
	const auto start = std::chrono::steady_clock::now();
	auto last_stats = start;
	auto last_rx_change = start;
	uint64_t last_rx = 0;
	while (!stop_requested.load()) {
		// The control socket's poll doubles as the loop's pause.
		if (control_server_)
			control_server_->poll(int(control::control_interval_ms));
		else
			std::this_thread::sleep_for(std::chrono::milliseconds(control::control_interval_ms));
		if (reload_requested.exchange(false) && !stop_requested.load())
			reload_rules(*rt_);
		if (rules_feed_ && !stop_requested.load())
			apply_from_etcd(*rt_, *rules_feed_, s_.rules_file);
		rt_->housekeeping(rte_rdtsc());
		if (sync_)
			sync_->collect(rte_rdtsc());
		rt_->apply_set_adds();
		rt_->update_schedules(int64_t(std::time(nullptr)));
		// An unconfirmed push --confirm past its deadline: the previous rules come back (logged).
		rt_->roll_back_if_due(control::runtime::steady_seconds());
		rt_->expire_sets();
		rule_log_->flush(*rt_);
		const auto now = std::chrono::steady_clock::now();
		const uint64_t rx = sum_rx(workers);
		if (rx != last_rx) {
			last_rx = rx;
			last_rx_change = now;
		}
		if (s_.exit_when_idle_ms && rx > 0 && now - last_rx_change > std::chrono::milliseconds(s_.exit_when_idle_ms))
			stop_requested.store(true);
		if (s_.duration > 0 && now - start > std::chrono::duration<double>(s_.duration))
			stop_requested.store(true);
		if (s_.stats_interval > 0 && now - last_stats > std::chrono::duration<double>(s_.stats_interval)) {
			last_stats = now;
			print_counters(*rt_, ports_, stdout);
		}
	}
}

} // namespace portcullis::daemon
