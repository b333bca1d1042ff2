// The follower of etcd.h: a thread that reads one key, then watches it, and keeps the newest change.
#include "etcd/etcd.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "etcd/gateway.h"

namespace portcullis::etcd {

namespace {

using nlohmann::json;
using detail::base64_decode;
using detail::base64_encode;
using detail::clock;
using detail::exchange;
using detail::int_field;

} // namespace

follower::follower(location where) : where_(std::move(where))
{
	state_ = "connecting to " + where_.url();
	thread_ = std::thread([this] { run(); });
}

follower::~follower()
{
	stop_.store(true, std::memory_order_relaxed);
	if (thread_.joinable())
		thread_.join();
}

std::optional<follower::update> follower::take()
{
	std::lock_guard lock(mutex_);
	std::optional<update> u = std::move(pending_);
	pending_.reset();
	return u;
}

std::string follower::state() const
{
	std::lock_guard lock(mutex_);
	return state_;
}

void follower::set_state(std::string s)
{
	std::lock_guard lock(mutex_);
	state_ = std::move(s);
}

void follower::offer(update u)
{
	seen_revision_.store(u.mod_revision, std::memory_order_relaxed);
	std::lock_guard lock(mutex_);
	pending_ = std::move(u);
}

void follower::run()
{
	auto backoff = std::chrono::milliseconds(500);
	int64_t known = 0;  // mod_revision of the newest change offered
	auto pause = [this](std::chrono::milliseconds d) {
		for (auto until = clock::now() + d; clock::now() < until && !stop_.load(std::memory_order_relaxed);)
			std::this_thread::sleep_for(std::chrono::milliseconds(50));
	};
	while (!stop_.load(std::memory_order_relaxed)) {
		// Read the key first: a watch from a compacted revision would fail, and after a reconnect the
		// key may have changed any number of times.
		value v;
		std::string error;
		if (!get(where_, v, error)) {
			set_state("unreachable: " + error + " (retrying in " + std::to_string(backoff.count()) + " ms)");
			pause(backoff);
			backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(30));
			continue;
		}
		if (v.found && v.mod_revision != known) {
			known = v.mod_revision;
			offer(update{false, std::move(v.text), v.mod_revision});
		}
		if (watch_from(v.revision + 1))
			backoff = std::chrono::milliseconds(500);  // the watch ran: start over gently
		if (stop_.load(std::memory_order_relaxed))
			break;
		pause(backoff);
		backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(30));
	}
}

// Watches until the stream breaks or stop is set. Returns true when the watch was established.
bool follower::watch_from(int64_t start_revision)
{
	struct not_watching_at_exit {
		std::atomic<bool>& watching;
		~not_watching_at_exit() { watching.store(false, std::memory_order_relaxed); }
	} guard{watching_};
	int64_t next_revision = start_revision;
	exchange x(&stop_);
	std::string error;
	const auto connect_deadline = clock::now() + std::chrono::seconds(5);
	const json request{{"create_request", {{"key", base64_encode(where_.key)}, {"start_revision", start_revision}}}};
	if (!x.open(where_, connect_deadline, error) || !x.post("/v3/watch", request.dump(), connect_deadline, error)) {
		set_state("unreachable: " + where_.url() + ": " + error);
		return false;
	}
	if (x.status() != 200) {
		set_state("watch refused: HTTP " + std::to_string(x.status()));
		return false;
	}
	bool established = false;
	std::string message;
	while (x.next_message(message, clock::time_point::max(), error)) {
		const json j = json::parse(message, nullptr, false);
		if (!j.is_object() || !j.contains("result")) {
			set_state("watch error: " + message.substr(0, 200));
			return established;
		}
		const json& r = j["result"];
		if (r.value("canceled", false)) {
			// Usually compaction: the revision we asked for is gone; the caller reads the key again.
			set_state("watch canceled by etcd (compact revision " + std::to_string(int_field(r, "compact_revision")) + ")");
			return established;
		}
		if (r.value("created", false)) {
			established = true;
			watching_.store(true, std::memory_order_relaxed);
			set_state("watching " + where_.url() + " from revision " + std::to_string(start_revision));
		}
		const auto events = r.find("events");
		if (events == r.end() || !events->is_array())
			continue;
		// Only the newest event of a batch matters: rule sets replace each other whole.
		for (const json& e : *events) {
			const json& kv = e.contains("kv") ? e["kv"] : json::object();
			const int64_t rev = int_field(kv, "mod_revision");
			next_revision = std::max(next_revision, rev + 1);
			if (e.value("type", "PUT") == "DELETE") {
				offer(update{true, {}, rev});
				continue;
			}
			update u{false, {}, rev};
			const std::string encoded = kv.value("value", "");
			if (!base64_decode(encoded, u.text) || u.text.size() > max_value_bytes) {
				set_state("ignored revision " + std::to_string(rev) + ": value not base64 or over " +
				          std::to_string(max_value_bytes) + " bytes");
				continue;
			}
			offer(std::move(u));
		}
		set_state("watching " + where_.url() + " at revision " + std::to_string(next_revision - 1));
	}
	if (!stop_.load(std::memory_order_relaxed))
		set_state("watch broken: " + where_.url() + ": " + error);
	return established;
}

} // namespace portcullis::etcd
