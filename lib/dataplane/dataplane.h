// The data path: per-core workers that pull bursts from NIC queues, parse them, look them up in their
// flow table, classify the first packet of each new flow, and forward or drop.
//
// Threads: one worker per lcore, share-nothing. A worker owns its flow table, its counters and its TX
// queues; it reads the active compiled policy through one atomic pointer, loaded once per burst, and
// reports a quiescent state (rte_rcu QSBR) after each poll round so the control plane knows when an old
// policy can be freed. The control thread reads counters (plain 64-bit loads of per-core rows) and
// expires flows in each worker's table (see flow_table.h). Nothing here allocates, locks or throws
// once the worker runs.
//
// Direction: a packet that arrives on the outside port goes "in" and leaves through the inside port;
// one from the inside port goes "out". A replay port (pcap demos and benchmarks: one capture holding
// both directions) decides per packet, like tcpprep: a source inside `inside_networks` goes out.
//
// Verdicts: a packet of a known flow is tracked (conntrack.h) and passes unless invalid for the flow's
// state; replies of an allowed flow pass whatever the rules of their direction say. A packet of no
// known flow is classified in its direction: allow opens a flow (TCP only on a SYN), drop and reject
// drop it (reject also answers with a TCP RST or an ICMP unreachable), no rule means the direction's
// default. ICMP errors about a known flow pass as related traffic. A later fragment of a datagram passes
// when its first fragment did (fragments.h). When the policy generation has
// changed since a flow was judged, its first packet re-checks the flow's opening tuple against the new
// rules, and a flow they no longer allow is dropped and closed.
//
// Payload rules (content, regex, app, sni/http-host/dns-query; see inspect.h): a new flow whose first
// matching rule has payload conditions follows the first payload-free rule that matches while its
// payload is scanned; the first payload rule whose conditions all hold then decides the flow from that
// packet on. Sets without payload rules pay nothing for this.
#pragma once

#include <atomic>
#include <cstdint>
#include <string_view>
#include <vector>

#include "dataplane/fragments.h"
#include "dataplane/log_ring.h"
#include "dataplane/spsc_ring.h"
#include "dataplane/policy.h"
#include "dataplane/stage_clock.h"
#include "dataplane/synproxy.h"
#include "flow/conntrack.h"
#include "flow/flow_record.h"
#include "flow/flow_table.h"
#include "packet/packet.h"

struct rte_mbuf;
struct rte_rcu_qsbr;
struct rte_ring;

namespace portcullis::dataplane {

inline constexpr uint32_t max_ports = 8;
// Packets a worker takes from a queue per rx_burst: at most max_burst (the size of its per-burst arrays),
// default_burst unless queues.burst says otherwise. 64 rather than the 32 of l3fwd and testpmd: the
// per-burst costs (the policy load, the clock, the transmit grouping, the counters) and the ramp of the
// flow table's look-ahead fetches spread over twice the packets. Alternating 20 ms windows of 32 and 64
// in one process (bench-pipeline, Xeon VM): the worker's own cycles a packet 0.93-0.94 of burst 32's on
// established_64b and replay_64b, 0.91 on imix_1m, 0.98 on new_flows_64b; 2.5-7% more packets a second,
// the driver included. 128 gained little more there and cost new_flows_64b 4%.
inline constexpr uint16_t max_burst = 64;
inline constexpr uint16_t default_burst = 64;

enum class drop_reason : uint8_t {
	rule_drop,            // a rule said drop (a payload rule included)
	rule_reject,          // a rule said reject
	default_drop,         // no rule matched and the direction's default is drop (or reject)
	tcp_no_flow,          // TCP packet that is not a SYN, for no known flow
	conntrack_invalid,    // not valid for its flow's state
	flow_table_full,      // allowed, but no room for the new flow
	revalidated,          // its flow is no longer allowed by the current rules
	fragment_no_first,    // a later fragment whose first fragment did not pass (or not recently)
	l2_other,             // neither IP nor ARP
	malformed,            // the parser refused it (see parse counters for why)
	tx_full,              // the TX queue had no room
	handoff_full,         // the owning worker's inbox had no room (software distribution)
	rate_limited,         // a packet of a flow whose rule's `limit ... packets` was spent
	tcp_invalid_flags,    // a TCP flag combination no stack sends (SYN+FIN, NULL, Xmas; conntrack's table)
	tcp_out_of_window,    // a TCP segment of a known flow outside its windows (flows.tcp-window)
	fragment_overlap,     // an IPv4 fragment over bytes of its datagram that another fragment carried
	martian_source,       // a source no host can have: 0/8, 127/8, 224/4, 240/4; ::, ::1, ff00::/8
	land,                 // source address equal to the destination (the land attack)
	martian_mac,          // a group (multicast or broadcast) source MAC address
	synproxy_pending,     // from a client of a SYN-proxied flow whose server has not answered yet (past the one held)
	standby,              // a state-sync standby forwards nothing until promoted (sync.h)
	count_
};
inline constexpr size_t drop_reason_count = size_t(drop_reason::count_);
std::string_view to_string(drop_reason r);

enum class verdict : uint8_t { allow, drop, reject };

struct alignas(64) worker_counters {
	uint64_t rx_packets[max_ports], rx_bytes[max_ports];
	uint64_t tx_packets[max_ports], tx_bytes[max_ports];
	uint64_t packets[2][3], bytes[2][3];  // [direction][verdict]
	uint64_t drops[drop_reason_count];
	uint64_t flows_opened;
	uint64_t reply_packets;   // passed as the reply of an allowed flow
	uint64_t related_icmp;    // ICMP errors about a known flow
	uint64_t rejects_sent;
	uint64_t handed_off;      // packets passed to their owning worker (software distribution)
	uint64_t payload_decided; // flows a payload rule decided (see inspect_counters for the rest)
	uint64_t set_adds;        // add-to requests queued for the control thread
	uint64_t set_adds_lost;   // add-to requests refused by a full queue
	// SYN proxy (synproxy.h): cookie SYN-ACKs sent, ACKs whose cookie opened a flow, ACKs of no flow
	// checked for a cookie that carried none, server handshakes completed; whether cookies are on now.
	uint64_t syncookies_sent, syncookies_accepted, syncookies_failed, synproxy_handshakes;
	uint64_t synproxy_held;  // client segments kept until the server answered, then sent on
	// State sync (sync.h): peers' flows this worker installed (new, or moved forward), and those its full
	// table refused.
	uint64_t sync_installed, sync_updated, sync_refused;
	// sync.defer-ms: TCP packets of no flow (or invalid for their flow's state) held for a peer's record,
	// and how they went on: sent through again when their flow's record came, or at the deadline.
	uint64_t sync_deferred, sync_deferred_resolved, sync_deferred_expired;
	uint64_t sync_defer_full;  // not held: every slot taken
	uint64_t syncookies_active;
	uint64_t busy_tsc, idle_tsc, polls, idle_polls;
	// Of busy_tsc, the time spent inside the driver's rx_burst and tx_burst: the rest is the worker's own.
	uint64_t driver_rx_tsc, driver_tx_tsc;
	// Of the worker's own time, per stage of process(); zero unless built with stage timers.
	uint64_t stage_tsc[stage_count];
	packet::parse_counters parse;
};

// Adds one worker's counters into a total (readers sum the per-core rows; workers never share one).
void accumulate(worker_counters& total, const worker_counters& c);

struct rx_queue_map {
	uint16_t port;
	uint16_t queue;
	int8_t direction;      // 0 in, 1 out, -1 decided per packet from inside_networks
	uint16_t tx_port[2];   // where a packet of each direction leaves
	uint16_t tx_queue;
	// Single-queue devices (af_packet without fanout, pcap, ring) with several workers: the worker that
	// polls this queue hands each packet to the worker that owns its address pair (see owner_of).
	bool distribute = false;
	// False for a port that another worker polls and distributes from: the map still says how this
	// worker treats and where it sends the packets handed to it from that port.
	bool poll = true;
};

// The worker that owns a packet when software distributes: a hash of the sorted address pair, so that
// both directions of a flow, its fragments and the ICMP errors about it (by their quoted addresses)
// meet on one worker. NIC RSS is configured the same way (IP addresses only, symmetric key).
uint32_t owner_of(const packet::parsed& p, uint32_t workers);
// The same for a flow's key (state sync installs a peer's flow in the worker that owns it).
uint32_t owner_of_flow(const flow::flow_key& key, uint32_t workers);

struct worker_config {
	uint32_t index = 0;  // 0 .. workers-1: row in counters, thread id in the QSBR variable
	std::vector<rx_queue_map> queues;
	flow::table_config flows;
	bool tcp_loose_pickup = false;
	flow::window_mode tcp_window = flow::window_mode::strict;  // flows.tcp-window
	bool pass_other_l2 = false;
	bool send_rejects = true;
	bool drop_martians = true;  // sources no host can have (martian_source)
	bool drop_land = true;      // source address == destination address (land)
	syncookie_config syncookies;  // flows.syncookies
	// A port that receives every dropped packet (a net_null sink, say), so that dpdk-dumpcap can capture
	// the drops on it; -1 frees them. Costs a TX burst per burst with drops: for troubleshooting.
	int drop_port = -1;
	uint16_t burst = default_burst;
	uint32_t fragment_entries = 4096;   // datagrams in flight whose first fragment passed
	uint32_t fragment_seconds = 30;     // how long their later fragments may follow
	uint32_t log_rate = 100;            // log records per second this worker may write (rules marked `log`)
	std::vector<value_range<uint32_t>> inside4;  // replay ports only
	std::vector<value_range<u128>> inside6;
	// Software distribution: handoff[w] is worker w's inbox (multi-producer, single-consumer ring);
	// empty when there is one worker or every port has a queue per worker.
	std::vector<rte_ring*> handoff;
	// Live-flow counts of `max-conn` rules, shared by the workers (the runtime's); the worker's table
	// uncounts the flows it removes.
	conn_counts* conns = nullptr;
	// State sync (sync.h): while *forwarding is false (a standby) every packet is dropped as `standby`;
	// nullptr: always forwards. With sync_installs the worker drains an install ring of peers' flows.
	const std::atomic<bool>* forwarding = nullptr;
	bool sync_installs = false;
	// Two actives behind ECMP (pfsync's defer): a TCP segment that finds no flow, or a state its flow has
	// not reached here, may belong to a flow whose other direction crosses the peer; it waits up to this
	// long for the peer's record, then goes through the checks again. 0: no waiting.
	uint32_t sync_defer_ms = 0;
};

// `add-to` (rules.h set_add): an address the worker asks the control thread to add to a set of the
// policy of `generation` (control/runtime.h apply_set_adds).
struct set_add_record {
	uint64_t generation;
	u128 addr;
	uint32_t set;
	uint32_t timeout_s;
	uint8_t v6;
};

class worker {
public:
	worker(const worker_config& config, const std::atomic<compiled_policy*>& policy, rte_rcu_qsbr* rcu);
	~worker();
	worker(const worker&) = delete;
	worker& operator=(const worker&) = delete;

	// Polls the configured queues until stop is set.
	void run(const std::atomic<bool>& stop);
	// One poll round over every queue; returns packets received. run() is a loop of these.
	uint32_t poll_once();
	// Judges one burst that arrived on q and transmits or frees every packet. Exposed for tests.
	void process(rte_mbuf** pkts, uint16_t n, const rx_queue_map& q);

	flow::flow_table& flows() { return table_; }
	const flow::flow_table& flows() const { return table_; }
	const worker_counters& counters() const { return counters_; }
	const inspect::counters& inspect_counters() const { return streams_.stats(); }
	log_ring& log() { return log_; }
	spsc_ring<set_add_record>& set_adds() { return set_adds_; }
	// Peers' flows for this worker's table (state sync): the sync thread pushes, the worker installs.
	spsc_ring<flow::flow_record>& installs() { return installs_; }
	const worker_config& config() const { return config_; }

private:
	int direction_of(const rx_queue_map& q, const packet::parsed& p) const;
	// config_.inside4 tested inline: each range as its low end and its span (hi - lo). Up to `max` ranges
	// are tested without a branch on the address (the two directions come in any order on a replay port;
	// a branch on each was a mispredicted one half of the time).
	struct inside_ranges4 {
		static constexpr uint32_t max = 4;
		uint32_t count = 0;  // more than max: direction_of's way
		uint32_t lo[max] = {}, span[max] = {};
		uint32_t holds(uint32_t a) const
		{
			uint32_t inside = 0;
			for (uint32_t k = 0; k < count; ++k)
				inside |= uint32_t(a - lo[k] <= span[k]);
			return inside;
		}
	};
	// direction_of inline for the common cases, a port of one direction (`port_direction`, the queue's
	// own, at least 0) and an IPv4 packet on a replay port; a replay port's usual single range first,
	// without the loop. `inside4` is process()'s copy of inside4_, which the packet loop's byte stores
	// cannot alias (this->inside4_ would be loaded again for every packet).
	uint8_t direction_fast(int port_direction, const rx_queue_map& q, const packet::parsed& p,
	                       const inside_ranges4& inside4) const
	{
		if (port_direction >= 0)
			return uint8_t(port_direction);
		if (p.family == 4 && inside4.count == 1) [[likely]]
			return uint8_t(p.src.v4 - inside4.lo[0] <= inside4.span[0]);
		if (p.family != 4 || inside4.count > inside_ranges4::max) [[unlikely]]
			return uint8_t(direction_of(q, p));
		return uint8_t(inside4.holds(p.src.v4));
	}
	verdict judge_new(const compiled_policy& pol, const packet::parsed& p, int dir, rte_mbuf* m, uint32_t& rule);
	bool revalidate(const compiled_policy& pol, flow::flow_entry& e, uint32_t stamp, uint32_t now_stamp);
	// Transmits n packets of `bytes` bytes in all (summed as the caller sorted them by port); counts
	// what went and drops what the queue did not take.
	void send(uint16_t port, uint16_t queue, rte_mbuf** pkts, uint16_t n, uint64_t bytes);
	uint16_t distribute(rte_mbuf** pkts, uint16_t n, uint16_t port);
	const rx_queue_map* queue_of_port(uint16_t port) const;
	bool make_reject(rte_mbuf* m, const packet::parsed& p);
	// Adaptive SYN cookies: once a tick, are they on?
	void update_syncookies(uint64_t now);
	// SYN proxy: a client's first data while the server's handshake is pending waits here instead of
	// being dropped (the client would resend it only after its retransmission timeout, 200 ms or more).
	bool hold(const flow::flow_entry& e, rte_mbuf* m, uint64_t now);
	[[gnu::noinline]] void proxied_handshake(flow::flow_entry& e, rte_mbuf* m, const packet::parsed& p, bool from_client,
	                                         uint64_t now, uint32_t now_stamp, uint8_t& verdict,
	                                         rte_mbuf** released, uint16_t& nreleased);
	[[gnu::noinline]] flow::segment proxied_segment(const flow::flow_entry& e, const packet::parsed& p,
	                                                const rte_mbuf* m, bool from_client) const;
	void expire_held(uint64_t now);
	[[gnu::noinline]] void drop_standby(rte_mbuf** pkts, uint16_t n, const rx_queue_map& q);
	[[gnu::noinline]] void install_synced(uint64_t now);
	// sync.defer-ms: keeps m until its flow's record comes from a peer (false: no room, or not now).
	[[gnu::noinline]] bool defer(rte_mbuf* m, uint64_t key_hash, const rx_queue_map& q, uint64_t now);
	// Sends the deferred packets whose record came, or whose time is up, through process() again.
	[[gnu::noinline]] void redeliver(uint64_t now);

	worker_config config_;
	const std::atomic<compiled_policy*>& policy_;
	rte_rcu_qsbr* rcu_;
	flow::flow_table table_;
	fragment_verdicts fragments_;
	inspect::flow_streams streams_;  // payload scan state, by flow entry index
	log_ring log_;
	spsc_ring<set_add_record> set_adds_;
	spsc_ring<flow::flow_record> installs_;
	// SYN proxy: the cookie secret, the per-flow translation state (by table index; empty when never),
	// whether cookies answer SYNs now, and the adaptive mode's tick.
	flow::cookie_secret cookie_key_;
	std::vector<proxy_state> proxy_;
	bool cookies_on_ = false;
	uint64_t cookies_checked_until_ = 0;  // ACKs of no flow are checked for cookies until then (TSC)
	uint64_t cookie_tick_end_ = 0, cookies_hold_until_ = 0;
	uint32_t tick_syns_ = 0;
	uint64_t evicted_at_tick_ = 0;
	struct held_packet {
		rte_mbuf* m;        // nullptr: a free slot
		uint64_t key_hash;  // its flow: the key's hash, the entry and its generation then (an entry reused
		uint32_t index;     // 256 times since, for another flow, does not match)
		uint8_t generation;
		uint8_t direction;  // its verdict counters' row, written when it goes or is dropped
		uint64_t since;
	};
	// The segment a flow's server SYN-ACK releases (m nullptr: none), not counted yet.
	held_packet take_held(const flow::flow_entry& e);
	void count_held(const held_packet& h, uint8_t verdict);
	static constexpr uint32_t held_slots = 64;  // per worker: a bound on the mbufs the proxy keeps
	held_packet held_[held_slots] = {};
	uint32_t held_count_ = 0;
	struct deferred_packet {
		rte_mbuf* m;  // nullptr: a free slot
		uint64_t key_hash;
		uint64_t deadline;
		const rx_queue_map* q;
		uint64_t order;  // arrival: redelivered in this order
		bool resolved;   // its flow's record has come
	};
	static constexpr uint32_t deferred_slots = 64;
	deferred_packet deferred_[deferred_slots] = {};
	uint32_t deferred_count_ = 0;
	uint64_t deferred_arrivals_ = 0;
	bool redelivering_ = false;  // in redeliver(): no second deferral, and no second count as received
	worker_counters counters_{};
	inside_ranges4 inside4_;
};

} // namespace portcullis::dataplane
