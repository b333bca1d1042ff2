// Flow-state sync's side of the worker (sync.h, dataplane.h): a standby drops everything as `standby`
// until its flag turns; peers' flows come in through the install ring and carry mid-stream packets,
// judged by this side's rules; with sync.defer-ms a segment whose flow (or flow state) crossed the peer
// waits for the peer's record and then passes, or is judged again at its deadline.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "flow/flow_record.h"
#include "pipeline.h"

using namespace portcullis;
using namespace portcullis::test;
using dataplane::drop_reason;

namespace {

const char* sync_rules = R"(
default in drop
default out allow
allow in tcp to 198.18.1.10 port ssh
)";

constexpr uint32_t client = 0xC6120005;  // 198.18.0.5
constexpr uint32_t server = 0xC612010A;  // 198.18.1.10
constexpr uint8_t S = 0x02, A = 0x10, SA = 0x12, PA = 0x18;

// The peer's record of the connection client:sport -> server:dport, opened from outside.
flow::flow_record peer_record(uint16_t sport, uint16_t dport, flow::flow_state state, uint32_t client_end = 0,
                              uint32_t server_end = 0)
{
	flow::flow_record r{};
	bool reversed;
	r.key = flow::make_key(4, 6, client, server, sport, dport, reversed);
	r.state = state;
	r.flags = uint8_t((reversed ? flow::record_flag::opener_is_b : 0) | flow::record_flag::seen_here);
	r.seq_end[0] = client_end;
	r.seq_end[1] = server_end;
	return r;
}

const flow::flow_entry* flow_of(pipeline& pl, uint16_t sport, uint16_t dport = 22)
{
	bool reversed;
	const flow::flow_key k = flow::make_key(4, 6, client, server, sport, dport, reversed);
	return pl.worker().flows().lookup(k, flow::hash_key(k));
}

} // namespace

TEST_CASE("sync: a standby drops every packet as standby until it is promoted")
{
	std::atomic<bool> forwarding{false};
	pipeline_options o;
	o.forwarding = &forwarding;
	o.sync_installs = true;
	pipeline pl(sync_rules, o);
	auto r = pl.send(outside, tcp4(client, 40000, server, 22, S, 100));
	CHECK(r.to_inside.empty());
	CHECK(r.to_outside.empty());
	CHECK(pl.drops(drop_reason::standby) == 1);
	CHECK(pl.worker().flows().size() == 0);
	CHECK(pl.worker().counters().rx_packets[env().port[outside]] == 1);
	forwarding = true;
	CHECK(pl.send(outside, tcp4(client, 40000, server, 22, S, 100)).to_inside.size() == 1);
	CHECK(pl.drops(drop_reason::standby) == 1);
}

TEST_CASE("sync: a peer's flow carries its mid-stream packets here, judged by this side's rules")
{
	pipeline_options o;
	o.sync_installs = true;
	pipeline pl(sync_rules, o);
	REQUIRE(pl.worker().installs().push(peer_record(40001, 22, flow::flow_state::tcp_established, 5000, 9000)));
	// A flow to a port these rules do not allow: installed, and refused at its first packet.
	REQUIRE(pl.worker().installs().push(peer_record(40002, 23, flow::flow_state::tcp_established, 5000, 9000)));
	pl.run();  // the poll round drains the ring
	CHECK(pl.worker().counters().sync_installed == 2);
	const flow::flow_entry* e = flow_of(pl, 40001);
	REQUIRE(e);
	CHECK(e->tcp_liberal);
	// Mid-stream data both ways, which no SYN opened here, passes (strict window tracking is on).
	CHECK(pl.send(outside, tcp4(client, 40001, server, 22, PA, 5000, 9000, {'h', 'i'})).to_inside.size() == 1);
	CHECK(pl.send(inside, tcp4(server, 22, client, 40001, PA, 9000, 5002, {'o', 'k'})).to_outside.size() == 1);
	CHECK(pl.drops(drop_reason::tcp_no_flow) == 0);
	CHECK(pl.send(outside, tcp4(client, 40002, server, 23, A, 5000, 9000)).to_inside.empty());
	CHECK(pl.drops(drop_reason::revalidated) == 1);
	// Without the record, the same mid-stream segment finds no flow.
	CHECK(pl.send(outside, tcp4(client, 40003, server, 22, A, 5000, 9000)).to_inside.empty());
	CHECK(pl.drops(drop_reason::tcp_no_flow) == 1);
}

TEST_CASE("sync: with defer, a SYN-ACK whose SYN crossed the peer waits for its record, then passes")
{
	pipeline_options o;
	o.sync_installs = true;
	o.sync_defer_ms = 100;
	pipeline pl(sync_rules, o);
	// The SYN went through the peer; its SYN-ACK comes here first.
	auto r = pl.send(inside, tcp4(server, 22, client, 40010, SA, 7000, 1001));
	CHECK(r.to_outside.empty());
	CHECK(pl.worker().counters().sync_deferred == 1);
	CHECK(pl.drops(drop_reason::tcp_no_flow) == 0);
	// The peer's record of the flow arrives: the SYN-ACK goes on, as if it had just come.
	REQUIRE(pl.worker().installs().push(peer_record(40010, 22, flow::flow_state::tcp_syn_sent, 1000, 0)));
	pl.run();
	auto out = pl.sent(outside);
	REQUIRE(out.size() == 1);
	CHECK(out[0] == tcp4(server, 22, client, 40010, SA, 7000, 1001));
	CHECK(pl.worker().counters().sync_deferred_resolved == 1);
	const flow::flow_entry* e = flow_of(pl, 40010);
	REQUIRE(e);
	CHECK(e->state == flow::flow_state::tcp_syn_received);
	// Received once, counted once.
	CHECK(pl.worker().counters().rx_packets[env().port[inside]] == 1);

	// A SYN-ACK no record ever explains is judged again at its deadline: no flow, dropped.
	CHECK(pl.send(inside, tcp4(server, 22, client, 40011, SA, 7000, 1001)).to_outside.empty());
	std::this_thread::sleep_for(std::chrono::milliseconds(150));
	pl.run();
	CHECK(pl.sent(outside).empty());
	CHECK(pl.worker().counters().sync_deferred_expired == 1);
	CHECK(pl.drops(drop_reason::tcp_no_flow) == 1);
}

TEST_CASE("sync: with defer, the client's ACK waits for the state its SYN-ACK reached on the peer")
{
	pipeline_options o;
	o.sync_installs = true;
	o.sync_defer_ms = 100;
	pipeline pl(sync_rules, o);
	// The SYN crosses here; the SYN-ACK crosses the peer; the client's ACK comes here.
	CHECK(pl.send(outside, tcp4(client, 40020, server, 22, S, 1000)).to_inside.size() == 1);
	CHECK(pl.send(outside, tcp4(client, 40020, server, 22, A, 1001, 7001)).to_inside.empty());
	CHECK(pl.worker().counters().sync_deferred == 1);
	CHECK(pl.drops(drop_reason::conntrack_invalid) == 0);
	// One segment a flow waits: a second one of the same flow is judged at once (64 ACKs after one SYN
	// must not take every slot).
	CHECK(pl.send(outside, tcp4(client, 40020, server, 22, A, 1001, 7001)).to_inside.empty());
	CHECK(pl.worker().counters().sync_deferred == 1);
	CHECK(pl.drops(drop_reason::conntrack_invalid) == 1);
	REQUIRE(pl.worker().installs().push(peer_record(40020, 22, flow::flow_state::tcp_syn_received, 1001, 7001)));
	pl.run();
	CHECK(pl.sent(inside).size() == 1);
	const flow::flow_entry* e = flow_of(pl, 40020);
	REQUIRE(e);
	CHECK(e->state == flow::flow_state::tcp_established);
	CHECK(e->tcp_liberal);  // each box sees part of its segments
	// Data both ways now pass, whichever box each direction crosses.
	CHECK(pl.send(outside, tcp4(client, 40020, server, 22, PA, 1001, 7001, {'x'})).to_inside.size() == 1);
	// A burst of 65 segments of unknown flows: 64 wait, the rest is judged at once.
	for (uint16_t i = 0; i < 65; ++i)
		pl.inject(inside, tcp4(server, 22, client, uint16_t(41000 + i), SA, 7000, 1001));
	for (int round = 0; round < 3; ++round)  // bursts of 32
		pl.run();
	CHECK(pl.worker().counters().sync_deferred == 1 + 64);
	CHECK(pl.drops(drop_reason::tcp_no_flow) == 1);
}
