// Flow-state sync (sync.h): the walk that finds what to send (control thread), and the engine's thread
// that sends, resends, receives and installs.
#include "sync/sync.h"

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <deque>
#include <mutex>
#include <thread>

#include <sys/socket.h>

#include "sync/wire.h"

namespace portcullis::sync {

namespace asio = boost::asio;
using udp = asio::ip::udp;

namespace {

uint64_t steady_ms()
{
	return uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
	                    std::chrono::steady_clock::now().time_since_epoch())
	                    .count());
}

// What collect() hands the engine's thread for one peer, in order: flows, and the bulk sync's markers.
struct queued_item {
	flow::flow_record record;
	uint8_t marker;      // 0: a flow; else message_flag::bulk_begin (total in `total`) or bulk_end
	uint32_t total;
	uint32_t queued_ms;  // when it was read from the table (steady_ms, low 32 bits)
};

// What the walk remembers of a table index: the flow last sent from it.
struct sent_flow {
	uint32_t last_seen;  // its last_seen then
	uint32_t sent_ms;    // when (steady_ms, low 32 bits)
	uint8_t generation;  // which use of the entry
	uint8_t state;
	uint8_t known;       // 1 once something was sent from this index
	uint8_t pad;
};

} // namespace

bool split_address(const std::string& text, std::string& addr, uint16_t& port)
{
	std::string port_text;
	if (!text.empty() && text[0] == '[') {
		const size_t close = text.find("]:");
		if (close == std::string::npos)
			return false;
		addr = text.substr(1, close - 1);
		port_text = text.substr(close + 2);
	} else {
		const size_t colon = text.rfind(':');
		if (colon == std::string::npos || text.find(':') != colon)
			return false;
		addr = text.substr(0, colon);
		port_text = text.substr(colon + 1);
	}
	if (addr.empty() || port_text.empty() || port_text.size() > 5 ||
	    port_text.find_first_not_of("0123456789") != std::string::npos)
		return false;
	const unsigned long p = std::stoul(port_text);
	if (p == 0 || p > 65535)
		return false;
	port = uint16_t(p);
	boost::system::error_code ec;
	asio::ip::make_address(addr, ec);
	return !ec;
}

struct engine::impl {
	// A datagram sent and not acknowledged yet. Its records are kept, not its bytes: each (re)send
	// encodes them with their times advanced by how long they waited, so that a peer never takes a
	// record for fresher or younger than it is.
	struct outgoing {
		uint32_t seq;
		uint8_t flags;
		uint32_t bulk_total;
		uint64_t first_sent_ms, sent_ms;
		std::vector<flow::flow_record> records;
		std::vector<uint32_t> queued_ms;
	};
	struct peer {
		std::string address;
		udp::endpoint at;
		uint32_t id = 0;  // endpoint_id of its sync address
		// The engine's thread only.
		uint64_t boot = 0;          // its boot, once a hello of it named this start of ours (verified)
		uint64_t claimed_boot = 0;  // the boot its latest hello gave, verified or not: what ours echo
		uint32_t hello_seq = 0;     // the last hello counter taken from boot: a replayed hello is older
		uint64_t last_heard = 0, last_hello = 0;
		bool up = false;
		uint32_t rx_stream = 0, rx_next = 1;
		bool bulk_in_active = false, bulk_in_done = false, bulk_end_seen = false;
		uint64_t bulk_end_mark = 0;  // pending_pushed when its bulk_end came: done once handed that far
		uint32_t bulk_in_received = 0, bulk_in_total = 0;
		uint64_t bulk_in_started = 0;
		uint32_t tx_stream = 0, tx_next = 1;
		uint32_t rto_ms = 0;  // the resend timer now: doubled on each expiry (to 1 s), back on progress
		std::deque<outgoing> unacked;
		bool bulk_out_running = false;
		uint32_t bulk_begin_seq = 0;  // the datagram that began the running bulk sync
		uint32_t bulk_out_total = 0, bulk_out_acked = 0;
		uint64_t bulk_out_started = 0;
		double bulk_out_seconds = 0;
		// Shared with collect().
		std::mutex m;
		std::deque<queued_item> queued;       // guarded by m
		uint32_t queue_epoch = 0;             // guarded by m: bumped when the queue is thrown away
		std::atomic<bool> accepting{false};   // up and streaming: collect() queues its changes
		std::atomic<bool> bulk_wanted{false};
		std::atomic<bool> resync_wanted{false};  // its queue overflowed: a new stream and a bulk sync
	};

	sync_config cfg;
	std::vector<table_port> tables;
	owner_fn owner;
	uint64_t boot = 0;
	uint32_t id = 0;  // endpoint_id of sync.listen
	uint32_t hello_counter = 0;
	uint64_t started_ms = 0;
	std::atomic<bool>* forwarding = nullptr;
	std::atomic<bool> standby{false};

	asio::io_context io;
	udp::socket socket{io};
	asio::steady_timer timer{io};
	std::thread thread;
	std::vector<std::unique_ptr<peer>> peers;
	std::array<uint8_t, 2048> rx_buffer;
	udp::endpoint rx_from;
	std::vector<flow::flow_record> rx_records;
	static constexpr size_t max_pending = 1u << 18;  // records received, not yet in a worker's ring
	struct pending_install {
		uint32_t worker;
		uint32_t received_ms;
		flow::flow_record record;
	};
	std::deque<pending_install> pending_installs;
	uint64_t pending_pushed = 0, pending_handed = 0;
	std::vector<uint8_t> tx_bytes;

	// The walk (control thread).
	std::vector<std::vector<sent_flow>> sent;
	std::vector<size_t> cursor;
	std::vector<double> slice_carry;
	uint64_t last_collect_ms = 0;

	// Counters, read by status(); records_dropped is bumped by both threads.
	std::atomic<uint64_t> records_sent{0}, records_received{0}, records_dropped{0};
	std::atomic<uint64_t> datagrams_sent{0}, datagrams_received{0}, retransmitted{0};
	std::atomic<uint64_t> refused_malformed{0}, refused_auth{0}, refused_unknown_peer{0}, refused_stale{0};
	std::atomic<uint64_t> refused_misdirected{0};
	std::atomic<uint64_t> duplicates{0}, out_of_order{0}, install_backpressure{0};
	std::atomic<uint64_t> bulk_syncs_sent{0}, bulk_syncs_received{0}, walks{0};
	std::atomic<uint64_t> last_bulk_in_ms{0};

	// The peers' part of status(), refreshed by the engine's thread each tick.
	mutable std::mutex snapshot_m;
	std::vector<peer_status> snapshot;
	bool ready = false;

	static void bump(std::atomic<uint64_t>& c, uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }

	peer* find_peer(const udp::endpoint& from)
	{
		for (auto& p : peers)
			if (p->at == from)
				return p.get();
		return nullptr;
	}

	void send(peer& p, const std::vector<uint8_t>& bytes)
	{
		boost::system::error_code ec;
		socket.send_to(asio::buffer(bytes), p.at, 0, ec);  // a failed send is a lost datagram: resent
		bump(datagrams_sent);
	}

	header header_for(const peer& p, message_type type) const
	{
		header h = make_header(type, boot, p.boot);
		h.sender = id;
		h.receiver = p.id;
		return h;
	}

	void send_control(peer& p, message_type type, uint32_t stream, uint32_t seq)
	{
		header h = header_for(p, type);
		h.stream = stream;
		h.seq = seq;
		encode(h, nullptr, 0, cfg.key, tx_bytes);
		send(p, tx_bytes);
	}

	// A hello: our boot, the boot p last claimed (for it to verify us by), and our hello counter.
	void send_hello(peer& p, uint64_t now)
	{
		header h = header_for(p, message_type::hello);
		h.peer_boot = p.claimed_boot;
		h.seq = ++hello_counter;
		encode(h, nullptr, 0, cfg.key, tx_bytes);
		send(p, tx_bytes);
		p.last_hello = now;
	}

	// Everything queued or in flight for p is dropped (counted); with a new stream, a bulk sync follows.
	void drop_stream(peer& p)
	{
		uint64_t lost = 0;
		for (const outgoing& o : p.unacked)
			lost += o.records.size();
		p.unacked.clear();
		{
			std::lock_guard lock(p.m);
			for (const queued_item& q : p.queued)
				lost += q.marker == 0;
			p.queued.clear();
			++p.queue_epoch;
		}
		bump(records_dropped, lost);
		p.bulk_out_running = false;
	}

	void restart_stream(peer& p)
	{
		drop_stream(p);
		++p.tx_stream;
		p.tx_next = 1;
		p.rto_ms = cfg.rto_ms;
		p.accepting.store(true, std::memory_order_release);
		p.bulk_wanted.store(true, std::memory_order_release);
	}

	void go_down(peer& p)
	{
		p.up = false;
		p.accepting.store(false, std::memory_order_release);
		drop_stream(p);
	}

	// p, verified (its datagram named this start of ours), sent by its boot `their_boot`: false when
	// stale. An older boot is refused while p is up, and taken once p is down: a peer restarted with its
	// clock behind is back after a peer-timeout, not locked out.
	bool heard(peer& p, uint64_t their_boot, uint64_t now)
	{
		if (their_boot < p.boot && p.up) {
			bump(refused_stale);
			return false;
		}
		const bool restarted = their_boot != p.boot;
		if (restarted) {
			p.boot = their_boot;
			p.hello_seq = 0;
			p.rx_stream = 0;
			p.rx_next = 1;
			p.bulk_in_active = p.bulk_in_done = p.bulk_end_seen = false;
		}
		p.last_heard = now;
		if (!p.up || restarted) {
			p.up = true;
			restart_stream(p);
			send_hello(p, now);  // so that it verifies us without waiting for the next one
		}
		return true;
	}

	void on_datagram(size_t len)
	{
		const uint64_t now = steady_ms();
		peer* p = find_peer(rx_from);
		if (!p) {
			bump(refused_unknown_peer);
			return;
		}
		header h;
		switch (decode(rx_buffer.data(), len, cfg.key, h, rx_records)) {
		case refusal::malformed: bump(refused_malformed); return;
		case refusal::bad_auth: bump(refused_auth); return;
		case refusal::none: break;
		}
		// Sent back to us (a reflected hello carries our own boot), or meant for another appliance.
		if (h.sender != p->id || h.receiver != id || h.boot == boot) {
			bump(refused_misdirected);
			return;
		}
		bump(datagrams_received);
		const auto type = message_type(h.type);
		if (type == message_type::hello) {
			if (h.peer_boot != boot) {
				// It does not know this start of ours (or it is a hello from before it, replayed): nothing
				// of it is believed, but our hellos echo its boot so that it can verify us.
				p->claimed_boot = h.boot;
				send_hello(*p, now);
				return;
			}
			p->claimed_boot = h.boot;
			if (h.boot == p->boot && h.seq <= p->hello_seq) {  // replayed within this start of ours
				bump(refused_stale);
				return;
			}
			if (!heard(*p, h.boot, now))
				return;
			p->hello_seq = h.seq;
			return;
		}
		// Data and acks only from the start of p a hello verified, meant for this start of ours.
		if (h.peer_boot != boot || h.boot != p->boot || !p->up) {
			bump(refused_stale);
			return;
		}
		p->last_heard = now;
		if (type == message_type::ack) {
			if (h.stream == p->tx_stream)
				acked(*p, h.seq, now);
			return;
		}
		on_data(*p, h, now);
	}

	void acked(peer& p, uint32_t seq, uint64_t now)
	{
		if (!p.unacked.empty() && int32_t(p.unacked.front().seq - seq) <= 0)
			p.rto_ms = cfg.rto_ms;
		while (!p.unacked.empty() && int32_t(p.unacked.front().seq - seq) <= 0) {
			const outgoing& o = p.unacked.front();
			// Progress of the running bulk sync: datagrams after its beginning only.
			if (p.bulk_out_running && int32_t(o.seq - p.bulk_begin_seq) > 0) {
				p.bulk_out_acked = std::min(p.bulk_out_total, p.bulk_out_acked + uint32_t(o.records.size()));
				if (o.flags & message_flag::bulk_end) {
					p.bulk_out_running = false;
					p.bulk_out_acked = p.bulk_out_total;
					p.bulk_out_seconds = double(now - p.bulk_out_started) / 1e3;
				}
			}
			p.unacked.pop_front();
		}
		pump(p, now);
	}

	void on_data(peer& p, const header& h, uint64_t now)
	{
		if (h.stream < p.rx_stream) {
			bump(refused_stale);
			return;
		}
		if (h.stream > p.rx_stream) {
			p.rx_stream = h.stream;
			p.rx_next = 1;
			p.bulk_in_active = p.bulk_in_done = p.bulk_end_seen = false;
		}
		if (h.seq != p.rx_next) {
			bump(h.seq < p.rx_next ? duplicates : out_of_order);
			send_control(p, message_type::ack, p.rx_stream, p.rx_next - 1);
			return;
		}
		// All of it or none: a datagram is applied once, in order. It waits here for room in the workers'
		// rings (a bulk sync outruns them); past max_pending it is not taken, nor acknowledged, and the
		// sender resends it once the workers have caught up.
		if (pending_installs.size() + rx_records.size() > max_pending) {
			bump(install_backpressure);
			return;
		}
		const uint32_t workers = uint32_t(tables.size());
		for (const flow::flow_record& r : rx_records)
			pending_installs.push_back({workers > 1 ? owner(r.key, workers) : 0, uint32_t(now), r});
		pending_pushed += rx_records.size();
		++p.rx_next;
		bump(records_received, rx_records.size());
		if (h.flags & message_flag::bulk_begin) {
			p.bulk_in_active = true;
			p.bulk_in_done = p.bulk_end_seen = false;
			p.bulk_in_total = h.bulk_total;
			p.bulk_in_received = 0;
			p.bulk_in_started = now;
		}
		if (p.bulk_in_active)
			p.bulk_in_received += uint32_t(rx_records.size());
		if ((h.flags & message_flag::bulk_end) && p.bulk_in_active) {
			p.bulk_in_active = false;
			p.bulk_end_seen = true;
			p.bulk_end_mark = pending_pushed;
		}
		hand_to_workers(now);
		send_control(p, message_type::ack, p.rx_stream, p.rx_next - 1);
	}

	// Peers' records into the owners' install rings, oldest first, as far as there is room; their idle
	// time grows by the time they waited here. A bulk sync is complete once all of it is in the rings.
	void hand_to_workers(uint64_t now)
	{
		while (!pending_installs.empty()) {
			const pending_install& x = pending_installs.front();
			flow::flow_record r = x.record;
			r.idle_ms += uint32_t(now) - x.received_ms;
			if (!tables[x.worker].installs->push(r))
				break;
			pending_installs.pop_front();
			++pending_handed;
		}
		for (auto& pp : peers) {
			peer& p = *pp;
			if (p.bulk_end_seen && pending_handed >= p.bulk_end_mark) {
				p.bulk_end_seen = false;
				p.bulk_in_done = true;
				last_bulk_in_ms.store(now - p.bulk_in_started, std::memory_order_relaxed);
				bump(bulk_syncs_received);
			}
		}
	}

	// Encodes and sends o with its records' times advanced by how long each has waited since it was read.
	void transmit(peer& p, outgoing& o, uint64_t now)
	{
		header h = header_for(p, message_type::data);
		h.flags = o.flags;
		h.bulk_total = o.bulk_total;
		h.stream = p.tx_stream;
		h.seq = o.seq;
		flow::flow_record batch[max_records];
		for (size_t i = 0; i < o.records.size(); ++i) {
			batch[i] = o.records[i];
			const uint32_t waited = uint32_t(now) - o.queued_ms[i];
			batch[i].idle_ms += waited;
			batch[i].age_s += (waited + 500) / 1000;
		}
		encode(h, batch, o.records.size(), cfg.key, tx_bytes);
		send(p, tx_bytes);
		o.sent_ms = now;
	}

	// Sends what p's window allows of its queue.
	void pump(peer& p, uint64_t now)
	{
		if (!p.up)
			return;
		while (p.unacked.size() < cfg.window) {
			outgoing o{p.tx_next, 0, 0, now, now, {}, {}};
			{
				std::lock_guard lock(p.m);
				if (p.queued.empty())
					break;
				if (p.queued.front().marker) {
					o.flags = p.queued.front().marker;
					o.bulk_total = p.queued.front().total;
					p.queued.pop_front();
				} else {
					while (o.records.size() < max_records && !p.queued.empty() && p.queued.front().marker == 0) {
						o.records.push_back(p.queued.front().record);
						o.queued_ms.push_back(p.queued.front().queued_ms);
						p.queued.pop_front();
					}
				}
			}
			++p.tx_next;
			transmit(p, o, now);
			bump(records_sent, o.records.size());
			if (o.flags & message_flag::bulk_begin) {
				p.bulk_out_running = true;
				p.bulk_begin_seq = o.seq;
				p.bulk_out_total = o.bulk_total;
				p.bulk_out_acked = 0;
				p.bulk_out_started = now;
				p.bulk_out_seconds = 0;
				bump(bulk_syncs_sent);
			}
			p.unacked.push_back(std::move(o));
		}
	}

	void tick()
	{
		const uint64_t now = steady_ms();
		hand_to_workers(now);
		for (auto& pp : peers) {
			peer& p = *pp;
			if (now - p.last_hello >= cfg.hello_ms)
				send_hello(p, now);
			if (p.up && now - p.last_heard > cfg.peer_timeout_ms)
				go_down(p);
			if (p.up && p.resync_wanted.exchange(false))
				restart_stream(p);
			// Go-back-N: once the oldest datagram is overdue, it and the next ones go again (the receiver
			// dropped whatever came after a gap), at most 32 a time, the timer doubling while nothing is
			// acknowledged: a peer that cannot keep up is not flooded.
			if (p.up && !p.unacked.empty() && now - p.unacked.front().sent_ms >= p.rto_ms) {
				uint32_t resent = 0;
				for (outgoing& o : p.unacked) {
					if (resent++ == 32)
						break;
					transmit(p, o, now);
					bump(retransmitted);
				}
				p.rto_ms = std::min<uint32_t>(p.rto_ms * 2, 1000);
			}
			pump(p, now);
		}
		refresh_snapshot(now);
		timer.expires_after(std::chrono::milliseconds(5));
		timer.async_wait([this](const boost::system::error_code& ec) {
			if (!ec)
				tick();
		});
	}

	// Ready: every peer this start has heard from has completed a bulk sync to it (its last one, on its
	// current stream, all of it handed to the workers), or none was heard within a peer-timeout of start.
	// A peer that went down in the middle of its bulk sync leaves this appliance not ready.
	void refresh_snapshot(uint64_t now)
	{
		std::vector<peer_status> s;
		bool all_in = true, any_heard = false;
		for (auto& pp : peers) {
			peer& p = *pp;
			peer_status ps;
			ps.address = p.address;
			ps.up = p.up;
			ps.boot = p.boot;
			ps.bulk_in_done = p.bulk_in_done;
			ps.bulk_in_received = p.bulk_in_received;
			ps.bulk_in_total = p.bulk_in_total;
			ps.bulk_out_total = p.bulk_out_total;
			ps.bulk_out_acked = p.bulk_out_acked;
			ps.bulk_out_seconds = p.bulk_out_seconds;
			ps.lag_seconds = p.unacked.empty() ? 0.0 : double(now - p.unacked.front().first_sent_ms) / 1e3;
			{
				std::lock_guard lock(p.m);
				ps.queued = p.queued.size();
			}
			ps.in_flight = p.unacked.size();
			if (p.boot) {
				any_heard = true;
				all_in = all_in && p.bulk_in_done;
			}
			s.push_back(std::move(ps));
		}
		std::lock_guard lock(snapshot_m);
		snapshot = std::move(s);
		ready = all_in && (any_heard || now - started_ms >= cfg.peer_timeout_ms);
	}

	void receive()
	{
		socket.async_receive_from(asio::buffer(rx_buffer), rx_from, [this](const boost::system::error_code& ec, size_t len) {
			if (ec == asio::error::operation_aborted)
				return;
			if (!ec)
				on_datagram(len);
			receive();
		});
	}

	// The record of an entry, read while its worker may write it. The slot said which use of the entry
	// it is (slot_generation); one reused for another flow while it was read, whose key could mix two
	// flows', reads another generation before or after, and is left out.
	static bool copy_of(const flow::flow_table& table, const flow::flow_entry& e, uint8_t slot_generation,
	                    uint64_t now_tsc, std::vector<flow::flow_record>& out)
	{
		if (__atomic_load_n(&e.generation, __ATOMIC_ACQUIRE) != slot_generation)
			return false;
		const flow::flow_record r = flow::record_of(table, e, now_tsc);
		std::atomic_thread_fence(std::memory_order_acquire);
		if (__atomic_load_n(&e.generation, __ATOMIC_RELAXED) != slot_generation || !flow::valid(r))
			return false;
		out.push_back(r);
		return true;
	}

	// The records a walk sends: every flow from this index that the peers have not seen as it is now.
	void walk_slice(uint32_t t, size_t first, size_t n, uint64_t now_tsc, uint64_t now_ms, std::vector<flow::flow_record>& out)
	{
		const flow::flow_table& table = *tables[t].table;
		std::vector<sent_flow>& memo = sent[t];
		table.for_each_slot_in(first, n, [&](const flow::flow_entry& e, uint8_t generation) {
			// A peer's flow no packet has crossed here: its sender has it as it is, or newer.
			if (!flow::syncable(e) || e.ruleset_generation == flow::installed_unjudged)
				return;
			const uint32_t index = table.index_of(&e);
			if (index >= memo.size())
				return;
			sent_flow& s = memo[index];
			const uint32_t last_seen = __atomic_load_n(&e.last_seen, __ATOMIC_RELAXED);
			const flow::flow_state state = flow::load_state(e);
			const bool fresh = !s.known || s.generation != generation;
			const uint32_t refresh_ms =
			    std::max<uint32_t>(1000, std::min(cfg.refresh_s, cfg.idle[state] / 4) * 1000);
			if (!fresh && s.state == uint8_t(state) &&
			    (s.last_seen == last_seen || uint32_t(now_ms) - s.sent_ms < refresh_ms))
				return;
			if (!copy_of(table, e, generation, now_tsc, out))
				return;
			s = {last_seen, uint32_t(now_ms), generation, uint8_t(state), 1, 0};
		});
	}

	// Changes for p, as far as its queue has room. Past it they are dropped, and p gets a new stream and
	// a bulk sync (the walk counts them as sent: only a resync brings p level again).
	void queue_changes(peer& p, const std::vector<flow::flow_record>& records, uint32_t now_ms)
	{
		size_t take;
		{
			std::lock_guard lock(p.m);
			const size_t room = cfg.max_queued > p.queued.size() ? cfg.max_queued - p.queued.size() : 0;
			take = std::min(room, records.size());
			for (size_t i = 0; i < take; ++i)
				p.queued.push_back({records[i], 0, 0, now_ms});
		}
		if (take < records.size()) {
			bump(records_dropped, records.size() - take);
			p.resync_wanted.store(true, std::memory_order_release);
		}
	}

	// A bulk sync for p, whole: pushed in slices, so that the engine's thread is not kept waiting on the
	// queue's lock for a million flows. If p's queue is thrown away meanwhile (it restarted, went down),
	// the rest is too: a new bulk sync follows on its new stream.
	void queue_bulk(peer& p, const std::vector<flow::flow_record>& records, uint32_t now_ms)
	{
		constexpr size_t slice = 4096;
		uint32_t epoch = 0;
		for (size_t at = 0; at <= records.size(); at += slice) {
			std::lock_guard lock(p.m);
			if (at == 0) {
				epoch = p.queue_epoch;
				p.queued.push_back({{}, message_flag::bulk_begin, uint32_t(records.size()), now_ms});
			} else if (p.queue_epoch != epoch) {
				return;
			}
			for (size_t i = at; i < std::min(records.size(), at + slice); ++i)
				p.queued.push_back({records[i], 0, 0, now_ms});
			if (at + slice > records.size())
				p.queued.push_back({{}, message_flag::bulk_end, 0, now_ms});
		}
	}
};

engine::engine(sync_config config, std::vector<table_port> tables, owner_fn owner, std::atomic<bool>& forwarding)
	: impl_(std::make_unique<impl>())
{
	impl_->forwarding = &forwarding;
	impl_->cfg = std::move(config);
	impl_->tables = std::move(tables);
	impl_->owner = owner;
	impl_->standby.store(impl_->cfg.initial == role::standby);
	forwarding.store(impl_->cfg.initial == role::active, std::memory_order_release);
	for (const table_port& t : impl_->tables) {
		impl_->sent.emplace_back(size_t(t.table->capacity()) + 1, sent_flow{});
		impl_->cursor.push_back(0);
		impl_->slice_carry.push_back(0);
	}
}

engine::~engine() { stop(); }

std::string engine::start()
{
	impl& m = *impl_;
	std::string addr;
	uint16_t port = 0;
	if (!split_address(m.cfg.listen, addr, port))
		return "sync.listen '" + m.cfg.listen + "' is not ADDR:PORT";
	const auto listen_addr = asio::ip::make_address(addr);
	if (listen_addr.is_unspecified())
		return "sync.listen '" + m.cfg.listen + "' must be the address the peers name in their sync.peer, not " +
		       listen_addr.to_string();
	m.id = endpoint_id(listen_addr.to_string(), port);
	for (const std::string& text : m.cfg.peers) {
		std::string paddr;
		uint16_t pport = 0;
		if (!split_address(text, paddr, pport))
			return "sync.peer '" + text + "' is not ADDR:PORT";
		auto p = std::make_unique<impl::peer>();
		p->address = text;
		p->at = udp::endpoint(asio::ip::make_address(paddr), pport);
		p->id = endpoint_id(p->at.address().to_string(), pport);
		p->rto_ms = m.cfg.rto_ms;
		if (p->at.address().is_v4() != listen_addr.is_v4())
			return "sync.peer '" + text + "' is not of sync.listen's address family";
		m.peers.push_back(std::move(p));
	}
	if (m.peers.empty())
		return "sync needs at least one sync.peer";
	if (m.cfg.key.size() < 16)
		return "sync.key must be at least 16 bytes";
	boost::system::error_code ec;
	const udp::endpoint local(listen_addr, port);
	m.socket.open(local.protocol(), ec);
	if (!ec)
		m.socket.bind(local, ec);
	if (ec)
		return "cannot listen on " + m.cfg.listen + " for sync: " + ec.message();
	m.socket.non_blocking(true, ec);
	// A window of datagrams arrives at once (a bulk sync): room for it, or the kernel drops and the sender
	// waits out its resend timer. FORCE passes net.core.rmem_max as root; the plain option is capped by it.
	const int bytes = 8 << 20;
	if (setsockopt(m.socket.native_handle(), SOL_SOCKET, SO_RCVBUFFORCE, &bytes, sizeof(bytes)) != 0)
		setsockopt(m.socket.native_handle(), SOL_SOCKET, SO_RCVBUF, &bytes, sizeof(bytes));
	if (setsockopt(m.socket.native_handle(), SOL_SOCKET, SO_SNDBUFFORCE, &bytes, sizeof(bytes)) != 0)
		setsockopt(m.socket.native_handle(), SOL_SOCKET, SO_SNDBUF, &bytes, sizeof(bytes));
	m.boot = uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(
	                      std::chrono::system_clock::now().time_since_epoch())
	                      .count());
	m.started_ms = steady_ms();
	m.receive();
	m.tick();
	m.thread = std::thread([&m] { m.io.run(); });
	return {};
}

void engine::stop()
{
	impl& m = *impl_;
	if (!m.thread.joinable())
		return;
	m.io.stop();
	m.thread.join();
	boost::system::error_code ec;
	m.socket.close(ec);
}

void engine::collect(uint64_t now_tsc)
{
	impl& m = *impl_;
	const uint64_t now_ms = steady_ms();
	// Bulk syncs first, whole tables: what a peer that (re)joined needs before anything newer.
	for (auto& p : m.peers) {
		if (!p->bulk_wanted.exchange(false))
			continue;
		std::vector<flow::flow_record> all;
		for (uint32_t t = 0; t < m.tables.size(); ++t) {
			const flow::flow_table& table = *m.tables[t].table;
			table.for_each_slot_in(0, table.bucket_count(), [&](const flow::flow_entry& e, uint8_t generation) {
				if (flow::syncable(e))
					impl::copy_of(table, e, generation, now_tsc, all);
			});
		}
		m.queue_bulk(*p, all, uint32_t(now_ms));
	}
	const uint64_t elapsed = m.last_collect_ms ? now_ms - m.last_collect_ms : 0;
	m.last_collect_ms = now_ms;
	if (m.standby.load(std::memory_order_relaxed))
		return;  // its flows are its peers': nothing of its own to send
	std::vector<flow::flow_record> changed;
	for (uint32_t t = 0; t < m.tables.size(); ++t) {
		const size_t buckets = m.tables[t].table->bucket_count();
		m.slice_carry[t] += double(buckets) * double(elapsed) / double(std::max<uint32_t>(m.cfg.interval_ms, 1));
		size_t n = size_t(m.slice_carry[t]);
		m.slice_carry[t] -= double(n);
		n = std::min(n, buckets);
		while (n) {
			const size_t step = std::min(n, buckets - m.cursor[t]);
			m.walk_slice(t, m.cursor[t], step, now_tsc, now_ms, changed);
			m.cursor[t] += step;
			n -= step;
			if (m.cursor[t] == buckets) {
				m.cursor[t] = 0;
				if (t == 0)
					impl::bump(m.walks, 1);
			}
		}
	}
	if (changed.empty())
		return;
	for (auto& p : m.peers)
		if (p->accepting.load(std::memory_order_acquire))
			m.queue_changes(*p, changed, uint32_t(now_ms));
}

std::string engine::promote()
{
	impl& m = *impl_;
	if (!m.standby.exchange(false))
		return "already active";
	m.forwarding->store(true, std::memory_order_release);
	std::lock_guard lock(m.snapshot_m);
	return m.ready ? "promoted: forwarding" : "promoted: forwarding before a complete bulk sync (flows not synced yet are dropped as tcp_no_flow)";
}

sync_status engine::status() const
{
	const impl& m = *impl_;
	sync_status s;
	s.enabled = true;
	s.listen = m.cfg.listen;
	s.standby = m.standby.load(std::memory_order_relaxed);
	auto r = [](const std::atomic<uint64_t>& c) { return c.load(std::memory_order_relaxed); };
	s.records_sent = r(m.records_sent);
	s.records_received = r(m.records_received);
	s.records_dropped = r(m.records_dropped);
	s.datagrams_sent = r(m.datagrams_sent);
	s.datagrams_received = r(m.datagrams_received);
	s.retransmitted = r(m.retransmitted);
	s.refused_malformed = r(m.refused_malformed);
	s.refused_auth = r(m.refused_auth);
	s.refused_unknown_peer = r(m.refused_unknown_peer);
	s.refused_stale = r(m.refused_stale);
	s.refused_misdirected = r(m.refused_misdirected);
	s.duplicates = r(m.duplicates);
	s.out_of_order = r(m.out_of_order);
	s.install_backpressure = r(m.install_backpressure);
	s.bulk_syncs_sent = r(m.bulk_syncs_sent);
	s.bulk_syncs_received = r(m.bulk_syncs_received);
	s.last_bulk_in_seconds = double(r(m.last_bulk_in_ms)) / 1e3;
	s.walks = r(m.walks);
	std::lock_guard lock(m.snapshot_m);
	s.ready = m.ready;
	s.peers = m.snapshot;
	return s;
}

} // namespace portcullis::sync
