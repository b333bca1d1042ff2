// Rule sets from etcd: a small client for the one thing a fleet of Portcullis appliances needs from
// etcd, following one key that holds a rule file's text (docs/scale-out.md).
//
// It speaks etcd v3's JSON gateway (/v3/kv/range, /v3/kv/put, /v3/watch over plain HTTP/1.1), which
// every etcd since 3.3 serves on its client port: no gRPC stack, no shell-out to etcdctl. TLS and
// authentication are not spoken; put the appliance and etcd on a management network, or front etcd
// with a local proxy (etcd's own `grpc-proxy`) that holds the credentials.
//
// Threads: get() and put() are blocking calls usable from any thread. A follower owns one thread
// that watches the key; its take() and state() may be called from any other thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace portcullis::etcd {

// Where a rule set lives: etcd://HOST[:PORT]/KEY (PORT defaults to 2379; [v6addr]:PORT for IPv6).
struct location {
	std::string host;
	std::string port = "2379";
	std::string key;  // without a leading '/' added or removed: "/portcullis/rules" stays as written
	std::string url() const;
};

// Parses an etcd:// URL. The key is everything after the first '/' that follows the host (so
// etcd://h/portcullis/gw is key "portcullis/gw"; etcd://h//portcullis/gw is key "/portcullis/gw").
bool parse_url(std::string_view url, location& out, std::string& error);

// Values larger than this are refused (the rule parser refuses files above 16 MiB anyway).
inline constexpr size_t max_value_bytes = 16u << 20;

struct value {
	bool found = false;
	std::string text;
	int64_t mod_revision = 0;  // the revision that last wrote the key
	int64_t revision = 0;      // the store's revision when it answered
};

// One range request. found=false (and true is returned) when the key does not exist.
bool get(const location& where, value& out, std::string& error,
         std::chrono::milliseconds timeout = std::chrono::seconds(5));
// One put; revision is the store's revision after it.
bool put(const location& where, std::string_view text, int64_t& revision, std::string& error,
         std::chrono::milliseconds timeout = std::chrono::seconds(5));
// One delete (used by tests and by operators' scripts; the follower reports it).
bool erase(const location& where, std::string& error, std::chrono::milliseconds timeout = std::chrono::seconds(5));

// Follows one key from a thread of its own: reads it, then watches it from the next revision, and
// keeps only the newest change for take() (a rule set superseded before the control thread looked at
// it need not be compiled). Connection failures, compaction and a restarted etcd are retried with a
// backoff from 0.5 s to 30 s; what happened last is in state().
class follower {
public:
	struct update {
		bool deleted = false;  // the key was deleted: the caller keeps what it runs
		std::string text;
		int64_t mod_revision = 0;
	};

	explicit follower(location where);
	~follower();  // stops and joins the thread (it checks its stop flag every 200 ms)
	follower(const follower&) = delete;
	follower& operator=(const follower&) = delete;

	// The newest change since the last take(), if any. The first one is the key's value at start.
	std::optional<update> take();
	// e.g. "watching etcd://127.0.0.1:2379/portcullis/rules at revision 12" or "unreachable: ...".
	std::string state() const;
	// Revision of the newest change seen (0 before the first).
	int64_t revision() const { return seen_revision_.load(std::memory_order_relaxed); }
	// True while a watch is established (false while connecting or retrying).
	bool watching() const { return watching_.load(std::memory_order_relaxed); }
	const location& where() const { return where_; }

private:
	void run();
	bool watch_from(int64_t start_revision);
	void offer(update u);
	void set_state(std::string s);

	location where_;
	std::atomic<bool> stop_{false};
	std::atomic<int64_t> seen_revision_{0};
	std::atomic<bool> watching_{false};
	mutable std::mutex mutex_;
	std::optional<update> pending_;
	std::string state_;
	std::thread thread_;
};

} // namespace portcullis::etcd
