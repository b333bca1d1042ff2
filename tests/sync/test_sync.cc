// Flow-state sync (lib/sync): the datagram format and its authentication, how a peer's flow enters a
// table, and two engines over loopback UDP with real flow tables: bulk sync on join, changes, a
// restarted peer, standby and promote, and what a hostile or confused sender gets (refused, counted,
// never applied twice).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <thread>

#include "sync/sync.h"
#include "sync/wire.h"

using namespace portcullis;
using flow::flow_record;
using flow::flow_state;

namespace {

const std::string secret = "0123456789abcdef-shared";

uint64_t now_ns()
{
	return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
	                    .count());
}

flow::table_config table_config(uint32_t capacity = 4096)
{
	flow::table_config c;
	c.capacity = capacity;
	c.tsc_hz = 1'000'000'000;  // the "TSC" here is steady_clock's nanoseconds
	return c;
}

flow::flow_key key_of(uint32_t i, uint16_t dport = 80)
{
	bool reversed;
	return flow::make_key(4, 6, u128(0xC6120005u + (i >> 16)), u128(0xC613000Au), uint16_t(1024 + (i & 0xffff)), dport,
	                      reversed);
}

flow::flow_entry* open_flow(flow::flow_table& t, const flow::flow_key& k, flow_state s = flow_state::tcp_established)
{
	flow::flow_entry* e = t.insert(k, flow::hash_key(k), now_ns());
	REQUIRE(e);
	flow::store_state(*e, s);
	return e;
}

// A free UDP port on loopback (bound and released: the engine binds it again at once).
uint16_t free_port()
{
	const int fd = socket(AF_INET, SOCK_DGRAM, 0);
	sockaddr_in a{};
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
	socklen_t len = sizeof(a);
	getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
	close(fd);
	return ntohs(a.sin_port);
}

std::string at(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

// One appliance: a table its "worker" (the test thread) owns, the install ring, the engine.
struct node {
	flow::flow_table table{table_config()};
	dataplane::spsc_ring<flow_record> ring{8192};
	std::atomic<bool> forwarding{true};
	std::unique_ptr<sync::engine> engine;
	uint64_t inserted = 0, updated = 0;

	node(uint16_t port, std::vector<uint16_t> peers, sync::role role = sync::role::active, std::string key = secret)
	{
		sync::sync_config c;
		c.listen = at(port);
		for (uint16_t p : peers)
			c.peers.push_back(at(p));
		c.key = std::move(key);
		c.initial = role;
		c.interval_ms = 20;
		c.peer_timeout_ms = 1500;
		engine = std::make_unique<sync::engine>(c, std::vector<sync::table_port>{{&table, &ring}},
		                                        [](const flow::flow_key&, uint32_t) { return 0u; }, forwarding);
		REQUIRE(engine->start().empty());
	}
	// The control thread's turn and the worker's: collect, then install what came.
	void turn()
	{
		engine->collect(now_ns());
		ring.drain(
		    [&](const flow_record& r) {
			    const auto res = flow::install(table, r, now_ns());
			    inserted += res == flow::install_result::inserted;
			    updated += res == flow::install_result::updated;
		    },
		    8192);
	}
};

// Runs every node's turns until done() or 5 s.
bool run_until(std::vector<node*> nodes, const std::function<bool()>& done)
{
	const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(5);
	while (std::chrono::steady_clock::now() < end) {
		for (node* n : nodes)
			n->turn();
		if (done())
			return true;
		std::this_thread::sleep_for(std::chrono::milliseconds(2));
	}
	return false;
}

// A bare UDP socket on loopback, to speak the protocol (or garbage) to an engine by hand.
struct raw_peer {
	int fd;
	uint16_t port;
	explicit raw_peer(uint16_t p = 0)
	{
		fd = socket(AF_INET, SOCK_DGRAM, 0);
		sockaddr_in a{};
		a.sin_family = AF_INET;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a.sin_port = htons(p);
		REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
		socklen_t len = sizeof(a);
		getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
		port = ntohs(a.sin_port);
		timeval tv{0, 200'000};
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	}
	~raw_peer() { close(fd); }
	void send(uint16_t to, const std::vector<uint8_t>& bytes) const
	{
		sockaddr_in a{};
		a.sin_family = AF_INET;
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		a.sin_port = htons(to);
		sendto(fd, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof(a));
	}
	// The next datagram of this type that verifies under key, or false after a second.
	bool receive(sync::message_type type, sync::header& h, const std::string& key = secret) const
	{
		std::vector<flow_record> records;
		for (int i = 0; i < 5; ++i) {
			uint8_t buf[2048];
			const ssize_t n = recv(fd, buf, sizeof(buf), 0);
			if (n > 0 && sync::decode(buf, size_t(n), key, h, records) == sync::refusal::none && h.type == uint8_t(type))
				return true;
		}
		return false;
	}
};

// A header from the raw peer on port `from` to the engine on port `to`.
sync::header header_of(sync::message_type type, uint64_t boot, uint64_t peer_boot, uint16_t from, uint16_t to)
{
	sync::header h = sync::make_header(type, boot, peer_boot);
	h.sender = sync::endpoint_id("127.0.0.1", from);
	h.receiver = sync::endpoint_id("127.0.0.1", to);
	return h;
}

std::vector<uint8_t> datagram(const sync::header& h, const std::vector<flow_record>& records, const std::string& key = secret)
{
	std::vector<uint8_t> out;
	sync::encode(h, records.data(), records.size(), key, out);
	return out;
}

} // namespace

TEST_CASE("a datagram decodes as encoded, and one altered, short, foreign or under another key is refused")
{
	flow::flow_table t(table_config());
	auto* e = open_flow(t, key_of(7));
	e->seq_end[0] = 1000;
	const flow_record r = flow::record_of(t, *e, now_ns());
	sync::header h = sync::make_header(sync::message_type::data, 11, 22);
	h.stream = 3;
	h.seq = 4;
	const auto bytes = datagram(h, {r, r});
	CHECK(bytes.size() == sizeof(sync::header) + 2 * sizeof(flow_record) + sync::mac_bytes);

	sync::header out;
	std::vector<flow_record> records;
	REQUIRE(sync::decode(bytes.data(), bytes.size(), secret, out, records) == sync::refusal::none);
	CHECK(out.boot == 11);
	CHECK(out.peer_boot == 22);
	CHECK(out.stream == 3);
	CHECK(out.seq == 4);
	REQUIRE(records.size() == 2);
	CHECK(records[1].key == r.key);
	CHECK(records[1].seq_end[0] == 1000);
	CHECK(records[1].state == flow_state::tcp_established);

	CHECK(sync::decode(bytes.data(), bytes.size(), "another key of 16+ bytes", out, records) == sync::refusal::bad_auth);
	for (size_t at : {size_t(5), sizeof(sync::header) + 3, bytes.size() - 1}) {
		auto altered = bytes;
		altered[at] ^= 1;
		CHECK(sync::decode(altered.data(), altered.size(), secret, out, records) == sync::refusal::bad_auth);
	}
	CHECK(sync::decode(bytes.data(), 20, secret, out, records) == sync::refusal::malformed);
	CHECK(sync::decode(bytes.data(), bytes.size() - 7, secret, out, records) == sync::refusal::malformed);
	auto foreign = bytes;
	foreign[0] = 'X';
	CHECK(sync::decode(foreign.data(), foreign.size(), secret, out, records) == sync::refusal::malformed);
	// A count that disagrees with the length, signed correctly: still refused.
	sync::header lying = h;
	auto signed_lie = datagram(lying, {r});
	reinterpret_cast<sync::header*>(signed_lie.data())->count = 2;
	CHECK(sync::decode(signed_lie.data(), signed_lie.size(), secret, out, records) == sync::refusal::bad_auth);
}

TEST_CASE("a peer's flow is installed unjudged and liberal, and only moves forward")
{
	flow::flow_table a(table_config()), b(table_config());
	auto* e = open_flow(a, key_of(1), flow_state::tcp_syn_received);
	e->opener_is_b = 1;
	e->opener_direction = 1;
	e->seq_end[1] = 77;
	const uint64_t now = now_ns();
	flow_record r = flow::record_of(a, *e, now);
	// Its packets crossed here (it was judged here): seen_here.
	CHECK(r.flags == (flow::record_flag::opener_is_b | flow::record_flag::opener_out | flow::record_flag::seen_here));

	REQUIRE(flow::install(b, r, now) == flow::install_result::inserted);
	flow::flow_entry* got = b.lookup(r.key, flow::hash_key(r.key));
	REQUIRE(got);
	CHECK(got->state == flow_state::tcp_syn_received);
	CHECK(got->opener_is_b == 1);
	CHECK(got->opener_direction == 1);
	CHECK(got->seq_end[1] == 77);
	CHECK(got->tcp_liberal == 1);
	CHECK(got->ruleset_generation == flow::installed_unjudged);  // judged by this side's rules on its first packet
	CHECK(b.size() == 1);

	CHECK(flow::install(b, r, now) == flow::install_result::unchanged);
	r.state = flow_state::tcp_established;
	CHECK(flow::install(b, r, now) == flow::install_result::updated);
	CHECK(got->state == flow_state::tcp_established);
	r.state = flow_state::tcp_syn_sent;  // an older record arriving late does not go back
	CHECK(flow::install(b, r, now) == flow::install_result::unchanged);
	CHECK(got->state == flow_state::tcp_established);
	// A record of b's copy, which no packet crossed, does not claim packets; sent back to a it changes nothing.
	flow::store_state(*e, flow_state::tcp_established);
	const flow_record back = flow::record_of(b, *got, now);
	CHECK_FALSE(back.flags & flow::record_flag::seen_here);
	CHECK(flow::install(a, back, now) == flow::install_result::unchanged);
	CHECK(e->tcp_liberal == 0);
	// Once b's copy sees a packet (judged there), its record says so, and a stops checking windows: each
	// side now sees part of the flow's segments.
	got->ruleset_generation = 7;
	CHECK(flow::install(a, flow::record_of(b, *got, now), now) == flow::install_result::updated);
	CHECK(e->tcp_liberal == 1);
	// A connection reopened on the tuple (its age starts over) replaces a closing copy; a late record of
	// the connection before, closing, does not take the new one back.
	flow::flow_table d(table_config());
	flow_record old_conn = r;
	old_conn.state = flow_state::tcp_time_wait;
	old_conn.age_s = 100;
	REQUIRE(flow::install(d, old_conn, now) == flow::install_result::inserted);
	flow_record reopened = r;
	reopened.state = flow_state::tcp_syn_sent;
	reopened.age_s = 0;
	CHECK(flow::install(d, reopened, now) == flow::install_result::updated);
	flow::flow_entry* de = d.lookup(r.key, flow::hash_key(r.key));
	CHECK(de->state == flow_state::tcp_syn_sent);
	CHECK(d.age_seconds(*de, now) < 1.0);
	CHECK(flow::install(d, old_conn, now) == flow::install_result::unchanged);
	CHECK(de->state == flow_state::tcp_syn_sent);
	// A late record of the same connection, from before it closed here, does not reopen it.
	flow::store_state(*de, flow_state::tcp_time_wait);
	flow_record early = reopened;
	early.state = flow_state::tcp_syn_received;
	CHECK(flow::install(d, early, now) == flow::install_result::unchanged);
	CHECK(de->state == flow_state::tcp_time_wait);
	// A record of no state its protocol has is refused.
	flow_record bad = r;
	bad.state = flow_state(200);
	CHECK_FALSE(flow::valid(bad));
	CHECK(flow::install(d, bad, now) == flow::install_result::refused);
	// Idle time: the record's, never fresher than the sender saw it.
	r.idle_ms = 5000;
	flow::flow_table c(table_config());
	REQUIRE(flow::install(c, r, now) == flow::install_result::inserted);
	CHECK(c.idle_seconds(*c.lookup(r.key, flow::hash_key(r.key)), now) == Approx(5.0).margin(0.01));
}

TEST_CASE("a joining standby gets every flow by bulk sync, then the changes, and forwards once promoted")
{
	const uint16_t pa = free_port(), pb = free_port();
	node a(pa, {pb});
	for (uint32_t i = 0; i < 1000; ++i)
		open_flow(a.table, key_of(i));
	node b(pb, {pa}, sync::role::standby);
	CHECK_FALSE(b.forwarding.load());

	REQUIRE(run_until({&a, &b}, [&] { return b.table.size() == 1000 && b.engine->status().ready; }));
	REQUIRE(a.engine->status().peers.size() == 1);
	// Up as a's status says it, waited for rather than read once: under ASan on a loaded CI host a turn
	// can come after the test's 1.5 s peer timeout, and the peer is then down until its next hello.
	CHECK(run_until({&a, &b}, [&] { return a.engine->status().peers[0].up; }));
	REQUIRE(run_until({&a, &b}, [&] {
		const auto s = a.engine->status();
		return s.peers[0].up && s.peers[0].bulk_out_total == 1000 && s.peers[0].bulk_out_acked == 1000;
	}));
	const auto sb = b.engine->status();
	CHECK(sb.standby);
	CHECK(sb.peers[0].bulk_in_done);
	CHECK(sb.peers[0].bulk_in_total == 1000);
	CHECK(sb.records_received >= 1000);
	CHECK(b.inserted == 1000);

	// A new flow and a state change reach the standby within a walk or two.
	open_flow(a.table, key_of(5000), flow_state::tcp_syn_sent);
	flow::flow_entry* e = a.table.lookup(key_of(3), flow::hash_key(key_of(3)));
	flow::store_state(*e, flow_state::tcp_fin_wait);
	REQUIRE(run_until({&a, &b}, [&] {
		const auto* x = b.table.lookup(key_of(5000), flow::hash_key(key_of(5000)));
		const auto* y = b.table.lookup(key_of(3), flow::hash_key(key_of(3)));
		return x && y && y->state == flow_state::tcp_fin_wait;
	}));
	// The standby sends nothing of its own.
	CHECK(b.engine->status().records_sent == 0);

	CHECK(b.engine->promote().find("promoted") == 0);
	CHECK(b.forwarding.load());
	CHECK_FALSE(b.engine->status().standby);
	CHECK(b.engine->promote() == "already active");
}

TEST_CASE("a peer that restarts gets a new stream and the whole table again")
{
	const uint16_t pa = free_port(), pb = free_port();
	node a(pa, {pb});
	for (uint32_t i = 0; i < 300; ++i)
		open_flow(a.table, key_of(i));
	auto b = std::make_unique<node>(pb, std::vector<uint16_t>{pa});
	REQUIRE(run_until({&a, b.get()}, [&] { return b->table.size() == 300; }));
	b.reset();
	// While it is gone, more flows; they reach the new start of it by its bulk sync.
	for (uint32_t i = 300; i < 400; ++i)
		open_flow(a.table, key_of(i));
	b = std::make_unique<node>(pb, std::vector<uint16_t>{pa});
	REQUIRE(run_until({&a, b.get()}, [&] { return b->table.size() == 400 && b->engine->status().ready; }));
	CHECK(a.engine->status().bulk_syncs_sent >= 2);
	// Two actives: each one's flows reach the other, and a flow that comes back changes nothing.
	open_flow(b->table, key_of(9000), flow_state::tcp_established);
	REQUIRE(run_until({&a, b.get()}, [&] { return a.table.lookup(key_of(9000), flow::hash_key(key_of(9000))) != nullptr; }));
	CHECK(a.table.size() == 401);
}

TEST_CASE("garbage, forged, foreign, replayed and stale datagrams are refused and counted, never applied twice")
{
	raw_peer c;  // a configured peer, spoken by hand
	const uint16_t pb = free_port();
	node b(pb, {c.port});
	raw_peer stranger;

	stranger.send(pb, std::vector<uint8_t>(100, 0x42));
	c.send(pb, std::vector<uint8_t>(100, 0x42));
	const uint64_t c_boot = 1'000'000;
	using sync::message_type;
	c.send(pb, datagram(header_of(message_type::hello, c_boot, 0, c.port, pb), {}, "not the shared secret!"));
	REQUIRE(run_until({&b}, [&] {
		const auto s = b.engine->status();
		return s.refused_unknown_peer == 1 && s.refused_malformed == 1 && s.refused_auth == 1;
	}));

	// A proper hello: b answers with its boot id, which data must carry.
	c.send(pb, datagram(header_of(message_type::hello, c_boot, 0, c.port, pb), {}));
	sync::header hello;
	for (int i = 0; i < 5 && !(c.receive(sync::message_type::hello, hello) && hello.peer_boot == c_boot); ++i) {
	}  // b's periodic hellos from before it heard c name no boot of c's
	REQUIRE(hello.peer_boot == c_boot);
	const uint64_t b_boot = hello.boot;
	// Nothing of c is believed until a hello of it names this start of b: c's next one does.
	CHECK_FALSE(b.engine->status().peers[0].up);
	auto hello_from_c = [&](uint64_t boot, uint32_t counter) {
		sync::header x = header_of(message_type::hello, boot, b_boot, c.port, pb);
		x.seq = counter;
		return datagram(x, {});
	};
	c.send(pb, hello_from_c(c_boot, 1));
	REQUIRE(run_until({&b}, [&] { return b.engine->status().peers[0].up; }));
	c.send(pb, hello_from_c(c_boot, 1));  // replayed: its counter is not past the last one
	REQUIRE(run_until({&b}, [&] { return b.engine->status().refused_stale == 1; }));

	flow::flow_table source(table_config());
	const flow_record r = flow::record_of(source, *open_flow(source, key_of(42)), now_ns());
	sync::header h = header_of(message_type::data, c_boot, b_boot, c.port, pb);
	h.stream = 1;
	h.seq = 1;
	const auto first = datagram(h, {r});
	c.send(pb, first);
	sync::header ack;
	REQUIRE(c.receive(sync::message_type::ack, ack));
	CHECK(ack.seq == 1);
	REQUIRE(run_until({&b}, [&] { return b.inserted == 1; }));
	const uint64_t received = b.engine->status().records_received;

	c.send(pb, first);  // replayed
	sync::header wrong_peer_boot = h;
	wrong_peer_boot.peer_boot = b_boot - 1;  // meant for an earlier start of b
	wrong_peer_boot.seq = 2;
	c.send(pb, datagram(wrong_peer_boot, {r}));
	sync::header old_stream = h;  // the stream before this one
	old_stream.stream = 0;
	c.send(pb, datagram(old_stream, {r}));
	sync::header old_boot = h;  // a start of c before this one
	old_boot.boot = c_boot - 1;
	old_boot.seq = 2;
	c.send(pb, datagram(old_boot, {r}));
	REQUIRE(run_until({&b}, [&] {
		const auto s = b.engine->status();
		return s.duplicates == 1 && s.refused_stale == 4;
	}));
	CHECK(b.engine->status().records_received == received);
	CHECK(b.inserted == 1);
	CHECK(b.updated == 0);

	// Out of order: seq 3 before 2 is not applied; 2 then 3 are.
	sync::header h3 = h;
	h3.seq = 3;
	flow::flow_table other(table_config());
	c.send(pb, datagram(h3, {flow::record_of(other, *open_flow(other, key_of(43)), now_ns())}));
	REQUIRE(run_until({&b}, [&] { return b.engine->status().out_of_order == 1; }));
	CHECK(b.table.size() == 1);
	sync::header h2 = h;
	h2.seq = 2;
	c.send(pb, datagram(h2, {flow::record_of(other, *open_flow(other, key_of(44)), now_ns())}));
	c.send(pb, datagram(h3, {flow::record_of(other, *other.lookup(key_of(43), flow::hash_key(key_of(43))), now_ns())}));
	REQUIRE(run_until({&b}, [&] { return b.table.size() == 3; }));

	// b's own hello sent back to it from c's address, and a datagram c meant for another appliance: not
	// taken for c's (a reflected hello used to make b take c for a peer with b's own boot).
	sync::header reflected = header_of(message_type::hello, b_boot, c_boot, pb, c.port);
	c.send(pb, datagram(reflected, {}));
	sync::header elsewhere = h;
	elsewhere.receiver = sync::endpoint_id("127.0.0.1", uint16_t(pb + 1));
	elsewhere.seq = 4;
	c.send(pb, datagram(elsewhere, {flow::record_of(other, *open_flow(other, key_of(45)), now_ns())}));
	REQUIRE(run_until({&b}, [&] { return b.engine->status().refused_misdirected == 2; }));
	// (status() shows the peers as the engine's thread last saw them, at most a tick, 5 ms, ago.)
	REQUIRE(run_until({&b}, [&] { return b.engine->status().peers[0].boot == c_boot; }));
	CHECK(b.table.size() == 3);

	// A record no flow can have (a UDP state on a TCP key), signed by a peer: the datagram is refused.
	flow_record odd = flow::record_of(other, *other.lookup(key_of(43), flow::hash_key(key_of(43))), now_ns());
	odd.state = flow_state::udp_established;
	sync::header h4 = h;
	h4.seq = 4;
	c.send(pb, datagram(h4, {odd}));
	REQUIRE(run_until({&b}, [&] { return b.engine->status().refused_malformed == 2; }));

	// c restarts with its clock behind (a lower boot id): refused while c counts as up, taken once it
	// has been silent for the peer timeout.
	const uint64_t earlier_boot = c_boot - 500;
	c.send(pb, hello_from_c(earlier_boot, 1));
	REQUIRE(run_until({&b}, [&] { return b.engine->status().refused_stale == 5; }));
	REQUIRE(run_until({&b}, [&] { return !b.engine->status().peers[0].up; }));
	c.send(pb, hello_from_c(earlier_boot, 2));
	REQUIRE(run_until({&b}, [&] {
		const auto s = b.engine->status();
		return s.peers[0].up && s.peers[0].boot == earlier_boot;
	}));
}

TEST_CASE("sync addresses are ADDR:PORT or [V6]:PORT")
{
	std::string addr;
	uint16_t port = 0;
	CHECK(sync::split_address("198.18.0.1:7400", addr, port));
	CHECK(addr == "198.18.0.1");
	CHECK(port == 7400);
	CHECK(sync::split_address("[2001:2::1]:7400", addr, port));
	CHECK(addr == "2001:2::1");
	CHECK_FALSE(sync::split_address("2001:2::1:7400", addr, port));
	CHECK_FALSE(sync::split_address("198.18.0.1", addr, port));
	CHECK_FALSE(sync::split_address("198.18.0.1:0", addr, port));
	CHECK_FALSE(sync::split_address("198.18.0.1:70000", addr, port));
	CHECK_FALSE(sync::split_address("host:7400", addr, port));
}

TEST_CASE("a peer that flaps (restarts every few hundred ms) while flows keep opening ends with every flow")
{
	const uint16_t pa = free_port(), pb = free_port();
	node a(pa, {pb});
	uint32_t opened = 0;
	for (int flap = 0; flap < 5; ++flap) {
		node b(pb, {pa}, sync::role::standby);
		const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
		while (std::chrono::steady_clock::now() < until) {
			for (int k = 0; k < 5; ++k)
				open_flow(a.table, key_of(opened++));
			a.turn();
			b.turn();
			std::this_thread::sleep_for(std::chrono::milliseconds(5));
		}
	}  // each b goes mid-stream, its queue and in-flight datagrams lost with it
	node b(pb, {pa}, sync::role::standby);
	REQUIRE(run_until({&a, &b}, [&] { return b.table.size() == opened && b.engine->status().ready; }));
	CHECK(a.engine->status().bulk_syncs_sent >= 6);
}
