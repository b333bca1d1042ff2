// Flow-state sync between portcullisd instances, for failover (active/standby) and ECMP pairs (both
// active): each appliance sends its flows to its peers, and installs theirs in its own tables.
//
// What is sent: the control thread's collect() walks the flow tables a slice per call, a whole walk
// every sync.interval, and queues a record (flow_record.h) for every flow that is new, changed state,
// or saw packets and was last sent longer ago than its refresh time (a quarter of its state's idle
// timeout, at most refresh-s); the workers' hot path does nothing for it. A peer's flow that no packet
// has crossed here is not sent back. Records carry relative times, advanced at each (re)send and at
// each hand-off to a worker by how long they waited. A peer ages a synced flow by
// its own clock from the last record, so flows need no close events: a closed TCP flow's state (closed,
// time-wait) goes out, and its short timeout ends it on both sides.
//
// How: the engine's own thread (Boost.Asio, UDP) packs records into datagrams (wire.h: HMAC-SHA256
// under the shared key; datagrams from an address that is not a configured peer are refused and
// counted), numbered per peer stream. The receiver applies a stream strictly in order and acknowledges
// what it applied; the sender keeps up to `window` datagrams unacknowledged and resends those unacked
// after `rto` (go-back-N, as conntrackd's FTFW). A receiver whose install rings are full applies nothing
// and acks nothing: the sender resends later, so the workers set the pace.
//
// Joins: each side sends a hello every half second carrying its boot id (start time), the boot id its
// peer last claimed, and a counter. A peer is believed (verified) only by a hello that names this start
// of ours, with a counter past the last one. A peer verified with a new boot id (it restarted), or again
// after it was down, gets a new stream and a bulk sync: every live flow (peers' flows included), between
// a bulk-begin (with the count) and a bulk-end marker. An appliance is ready while every peer it has
// heard since it started has completed its latest bulk sync to it, all of it handed to the workers (or
// when none was heard, a peer-timeout after start).
//
// Replays: every datagram names its sender and receiver (ids of their sync addresses), its sender's boot
// and stream and the receiver's boot: one sent back to us or meant for another appliance is refused as
// misdirected; one of an older boot or stream, from a start of the peer no hello verified, or meant for
// an earlier start of the receiver, is refused as stale; one of the current stream already applied is a
// duplicate (counted, acknowledged again, not applied).
//
// Roles: active appliances forward and send; a standby installs what it gets and forwards nothing
// (the workers drop every packet as `standby`) until promote(). Two actives behind ECMP both forward.
//
// Threads: start/stop/promote/status from the control thread (status also from the exporter's);
// collect() from the control thread; the engine's thread does the rest. The workers drain their install
// ring (one producer: the engine's thread) and read forwarding().
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/spsc_ring.h"
#include "flow/flow_record.h"

namespace portcullis::sync {

enum class role : uint8_t { active, standby };

struct sync_config {
	std::string listen;              // ADDR:PORT this appliance receives sync on
	std::vector<std::string> peers;  // ADDR:PORT of each peer
	std::string key;                 // shared secret (HMAC-SHA256 key)
	role initial = role::active;
	uint32_t interval_ms = 100;      // a whole walk of the tables at most this often
	uint32_t refresh_s = 30;         // a flow with packets is sent again after at most this long
	uint32_t window = 256;           // datagrams in flight per peer
	uint32_t rto_ms = 40;            // an unacknowledged datagram is resent after this
	uint32_t hello_ms = 500;
	uint32_t peer_timeout_ms = 3000; // a peer not heard from this long is down
	uint32_t max_queued = 1u << 22;  // records waiting per peer; past it they are dropped (counted)
	flow::timeouts idle;             // the tables' idle timeouts: a flow is sent again a quarter of its way in
};

// One worker's side: its table, read by collect(), and its install ring, which it drains.
struct table_port {
	const flow::flow_table* table;
	dataplane::spsc_ring<flow::flow_record>* installs;
};

struct peer_status {
	std::string address;
	bool up = false;
	uint64_t boot = 0;            // its boot id, 0 before it was heard
	bool bulk_in_done = false;    // its bulk sync to us is complete (on its current stream)
	uint32_t bulk_in_received = 0, bulk_in_total = 0;
	uint32_t bulk_out_total = 0;  // our last bulk sync to it: flows, and how many it has acknowledged
	uint32_t bulk_out_acked = 0;
	double bulk_out_seconds = 0;  // how long it took, queued to acknowledged (0 while running)
	double lag_seconds = 0;       // age of the oldest datagram it has not acknowledged
	uint64_t queued = 0, in_flight = 0;
};

struct sync_status {
	bool enabled = false;
	std::string listen;
	bool standby = false;
	bool ready = false;
	uint64_t records_sent = 0, records_received = 0, records_dropped = 0;
	uint64_t datagrams_sent = 0, datagrams_received = 0, retransmitted = 0;
	uint64_t refused_malformed = 0, refused_auth = 0, refused_unknown_peer = 0, refused_stale = 0;
	uint64_t refused_misdirected = 0;  // sent back to us, or to another appliance
	uint64_t duplicates = 0, out_of_order = 0, install_backpressure = 0;
	uint64_t bulk_syncs_sent = 0, bulk_syncs_received = 0;
	double last_bulk_in_seconds = 0;  // the last complete bulk sync to us, begin to end
	uint64_t walks = 0;               // whole walks of the tables done
	std::vector<peer_status> peers;
};

class engine {
public:
	// owner_of(key) names the worker (index into tables) that owns a flow. forwarding is the flag the
	// workers read (worker_config::forwarding): set here by role, and by promote().
	using owner_fn = uint32_t (*)(const flow::flow_key& key, uint32_t workers);
	engine(sync_config config, std::vector<table_port> tables, owner_fn owner, std::atomic<bool>& forwarding);
	~engine();
	engine(const engine&) = delete;
	engine& operator=(const engine&) = delete;

	// Binds the socket, resolves the peers, starts the thread. Empty, or why it could not.
	std::string start();
	void stop();

	// Control thread, once per loop: walks the next slice of the tables (and whole tables for a peer
	// that asked for a bulk sync) and queues what the peers need.
	void collect(uint64_t now_tsc);

	// Standby -> active; says what it did.
	std::string promote();
	sync_status status() const;

private:
	struct impl;
	std::unique_ptr<impl> impl_;
};

// "ADDR:PORT" or "[V6ADDR]:PORT" split; false when it is neither.
bool split_address(const std::string& text, std::string& addr, uint16_t& port);

} // namespace portcullis::sync
