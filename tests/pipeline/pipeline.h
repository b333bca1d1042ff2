// A worker between two in-memory ports (net_ring): tests put frames on a port's RX ring, run the
// worker's poll loop once, and read what it transmitted on each port's TX ring.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/dataplane.h"

struct rte_mempool;
struct rte_ring;
#include "frames.h"
#include "ring_ports.h"

namespace portcullis::test {

using packet::test::bytes;

inline constexpr int outside = 0, inside = 1;

// The EAL and two net_ring ports, set up once per test process (the fields name ports' parts).
struct environment {
	ring_ports ports;
	rte_mempool* pool = nullptr;
	rte_ring* rx[2] = {};
	rte_ring* tx[2] = {};
	uint16_t port[2] = {};
	environment();
};
environment& env();

struct pipeline_options {
	uint32_t flow_capacity = 1024;
	flow::full_policy policy = flow::full_policy::evict_embryonic;
	bool replay = false;  // one port carrying both directions, split by inside networks
	std::vector<value_range<uint32_t>> inside4;  // replay's inside networks; empty: 198.18.1.0/24
	bool drop_martians = true;
	bool drop_land = true;
	flow::window_mode tcp_window = flow::window_mode::strict;
	dataplane::syncookie_config syncookies;  // never, unless a test says
	// Flow-state sync's side of the worker (worker_config): the forwarding flag, the install ring, defer.
	const std::atomic<bool>* forwarding = nullptr;
	bool sync_installs = false;
	uint32_t sync_defer_ms = 0;
};

class pipeline {
public:
	explicit pipeline(const std::string& rules_text, const pipeline_options& opt = {});
	~pipeline();

	// Frames arriving on a side (outside/inside); run() polls every queue once.
	void inject(int side, const bytes& frame);
	void run();
	// Frames the worker sent out of a side since the last call.
	std::vector<bytes> sent(int side);
	// Inject, run, and return what left through each side.
	struct result {
		std::vector<bytes> to_outside, to_inside;
	};
	result send(int side, const bytes& frame);

	// Compile and publish a new rule set (what the control plane's hot swap does).
	void swap_rules(const std::string& rules_text);

	dataplane::worker& worker() { return *worker_; }
	const dataplane::compiled_policy& policy() const { return *policies_.back(); }
	// What the control loop does each round: scheduled rules on or off as at this instant.
	bool update_schedules(int64_t unix_seconds) { return policies_.back()->update_schedules(unix_seconds); }
	uint64_t drops(dataplane::drop_reason r) const { return worker_->counters().drops[size_t(r)]; }

private:
	dataplane::conn_counts conns_;  // max-conn counts, kept across swap_rules as the runtime keeps them
	std::vector<std::unique_ptr<dataplane::compiled_policy>> policies_;
	std::atomic<dataplane::compiled_policy*> active_{nullptr};
	std::unique_ptr<dataplane::worker> worker_;
};

// Frames between the benchmarking-range hosts used by the tests.
using packet::test::tcp4;
using packet::test::tcp6;
using packet::test::udp4;

} // namespace portcullis::test
