// The SYN proxy (flows.syncookies, dataplane/synproxy.h) through the real worker: cookie SYN-ACKs, the
// replayed handshake, sequence/timestamp/SACK/window translation, refusals, forged cookies, the
// adaptive mode. Every frame the proxy writes or rewrites must carry a valid TCP checksum.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>

#include "dataplane/frame.h"
#include "packet/packet.h"
#include "pipeline.h"

using namespace portcullis;
using namespace portcullis::test;
using dataplane::drop_reason;
namespace pt = portcullis::packet::test;

namespace {

const char* proxied_rules = R"(
default in drop
default out allow
allow in tcp to 198.18.1.10 port { ssh, http }
allow in tcp to 2001:2:0:1::10 port ssh
)";

constexpr uint32_t client = 0xC6120005;  // 198.18.0.5
constexpr uint32_t server = 0xC612010A;  // 198.18.1.10
constexpr uint8_t S = 0x02, A = 0x10, R = 0x04, SA = 0x12, PA = 0x18;

struct options {
	uint16_t mss = 0;
	bool sack_permitted = false;
	bool timestamps = false;
	uint32_t ts_value = 0, ts_echo = 0;
	int scale = -1;
	std::vector<std::pair<uint32_t, uint32_t>> sack = {};
};

pt::bytes option_bytes(const options& o)
{
	pt::bytes b;
	if (o.mss)
		b.insert(b.end(), {2, 4, uint8_t(o.mss >> 8), uint8_t(o.mss)});
	if (o.sack_permitted)
		b.insert(b.end(), {4, 2});
	if (o.timestamps) {
		b.insert(b.end(), {1, 8, 10});  // one no-op: the timestamps start at an odd offset
		pt::put32(b, o.ts_value);
		pt::put32(b, o.ts_echo);
	}
	if (o.scale >= 0)
		b.insert(b.end(), {1, 3, 3, uint8_t(o.scale)});
	if (!o.sack.empty()) {
		b.insert(b.end(), {1, 1, 5, uint8_t(2 + 8 * o.sack.size())});
		for (auto [l, r] : o.sack) {
			pt::put32(b, l);
			pt::put32(b, r);
		}
	}
	return b;
}

// The one's complement sum of the TCP segment of a frame with its pseudo-header: 0xffff when the
// checksum is right.
uint16_t tcp_sum(const pt::bytes& f)
{
	const packet::parsed p = pt::parse_bytes(f);
	const uint8_t* ip = f.data() + p.l3_offset;
	const uint32_t l4_len = p.payload_offset - p.l4_offset + p.payload_length;
	uint32_t sum = 6 + l4_len;
	auto add = [&](const uint8_t* b, size_t n) {
		for (size_t i = 0; i + 1 < n; i += 2)
			sum += uint32_t(b[i]) << 8 | b[i + 1];
		if (n & 1)
			sum += uint32_t(b[n - 1]) << 8;
	};
	if (p.family == 4)
		add(ip + 12, 8);
	else
		add(ip + 8, 32);
	add(f.data() + p.l4_offset, l4_len);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return uint16_t(sum);
}

// Writes the TCP checksum into a frame, as a sending host would.
pt::bytes checksummed(pt::bytes f)
{
	const packet::parsed p = pt::parse_bytes(f);
	f[p.l4_offset + 16] = f[p.l4_offset + 17] = 0;
	const uint16_t c = uint16_t(~tcp_sum(f));
	f[p.l4_offset + 16] = uint8_t(c >> 8);
	f[p.l4_offset + 17] = uint8_t(c);
	return f;
}

pt::bytes seg4(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, uint8_t flags, uint32_t seq, uint32_t ack,
               const options& o = {}, uint16_t window = 502, size_t payload = 0)
{
	return checksummed(pt::eth(pt::et_ipv4,
	                           pt::ipv4({.src = src, .dst = dst, .proto = 6},
	                                    pt::tcp({.sport = sport, .dport = dport, .seq = seq, .ack = ack, .flags = flags,
	                                             .window = window, .options = option_bytes(o)},
	                                            pt::filler(payload))),
	                           {}, 60));
}

struct seen {
	packet::parsed p;
	packet::tcp_options o;
	uint16_t sum;
};
seen look(const pt::bytes& f)
{
	seen s{pt::parse_bytes(f), {}, tcp_sum(f)};
	s.o = packet::tcp_options_of(f.data() + s.p.l4_offset, uint32_t(s.p.payload_offset - s.p.l4_offset));
	return s;
}

pipeline_options cookies(dataplane::syncookie_mode mode = dataplane::syncookie_mode::always)
{
	pipeline_options o;
	o.syncookies.mode = mode;
	o.syncookies.mss = 1460;
	o.syncookies.window_scale = 7;
	return o;
}

// The client's SYN and its cookie ACK: the flow is open and its SYN on the way to the server. Returns the
// cookie.
uint32_t cookie_open(pipeline& pl, uint16_t sport, uint16_t dport, uint32_t isn)
{
	auto r = pl.send(outside, seg4(client, sport, server, dport, S, isn, 0, {.mss = 1460}));
	REQUIRE(r.to_outside.size() == 1);
	const uint32_t cookie = look(r.to_outside[0]).p.tcp_seq;
	REQUIRE(pl.send(outside, seg4(client, sport, server, dport, A, isn + 1, cookie + 1)).to_inside.size() == 1);
	return cookie;
}

const flow::flow_entry* flow_of(pipeline& pl, uint16_t sport, uint16_t dport = 22)
{
	bool reversed = false;
	const flow::flow_key k = flow::make_key(4, 6, client, server, sport, dport, reversed);
	return pl.worker().flows().lookup(k, flow::hash_key(k));
}

} // namespace

TEST_CASE("SYN proxy: the SYN gets a cookie, the ACK opens the flow, the handshake is replayed, both ways are translated")
{
	pipeline pl(proxied_rules, cookies());
	const uint32_t c = 1000000, s = 0x7ffffff0;  // the server's ISN wraps within the connection
	// The client's SYN, with every option: answered by the proxy out of the port it came in on.
	auto r = pl.send(outside, seg4(client, 40000, server, 22, S, c, 0,
	                               {.mss = 1460, .sack_permitted = true, .timestamps = true, .ts_value = 1000, .scale = 8},
	                               64240));
	CHECK(r.to_inside.empty());
	REQUIRE(r.to_outside.size() == 1);
	const seen synack = look(r.to_outside[0]);
	CHECK(synack.sum == 0xffff);
	CHECK(synack.p.src.v4 == server);
	CHECK(synack.p.dst.v4 == client);
	CHECK(synack.p.sport == 22);
	CHECK(synack.p.dport == 40000);
	CHECK(synack.p.tcp_flags == SA);
	CHECK(synack.p.tcp_ack == c + 1);
	CHECK(synack.o.mss == 1460);
	CHECK(synack.o.window_scale == 7);
	CHECK(synack.o.sack_permitted);
	CHECK(synack.o.ts_echo == 1000);
	CHECK(pl.worker().flows().size() == 0);  // no state for a SYN
	CHECK(pl.worker().counters().syncookies_sent == 1);
	const uint32_t cookie = synack.p.tcp_seq, proxy_ts = synack.o.ts_value;

	// The client's ACK returns the cookie: the flow opens and the SYN goes on to the server, with the
	// client's ISN and the options the cookie kept.
	r = pl.send(outside, seg4(client, 40000, server, 22, A, c + 1, cookie + 1,
	                          {.timestamps = true, .ts_value = 1001, .ts_echo = proxy_ts}, 502));
	CHECK(r.to_outside.empty());
	REQUIRE(r.to_inside.size() == 1);
	const seen syn = look(r.to_inside[0]);
	CHECK(syn.sum == 0xffff);
	CHECK(syn.p.src.v4 == client);
	CHECK(syn.p.tcp_flags == S);
	CHECK(syn.p.tcp_seq == c);
	CHECK(syn.o.mss == 1460);
	CHECK(syn.o.window_scale == 8);
	CHECK(syn.o.sack_permitted);
	CHECK(syn.o.ts_value == 1001);
	CHECK(pl.worker().counters().syncookies_accepted == 1);
	const flow::flow_entry* e = flow_of(pl, 40000);
	REQUIRE(e);
	CHECK(e->syn_proxied);
	CHECK(e->state == flow::flow_state::tcp_syn_sent);

	// The client's first data, sent before the server answered, waits for it; more data is dropped (the
	// client sends it again).
	CHECK(pl.send(outside, seg4(client, 40000, server, 22, PA, c + 1, cookie + 1,
	                            {.timestamps = true, .ts_value = 1002, .ts_echo = proxy_ts}, 502, 30))
	          .to_inside.empty());
	CHECK(pl.worker().counters().synproxy_held == 1);
	CHECK(pl.send(outside, seg4(client, 40000, server, 22, PA, c + 31, cookie + 1,
	                            {.timestamps = true, .ts_value = 1002, .ts_echo = proxy_ts}, 502, 10))
	          .to_inside.empty());
	CHECK(pl.drops(drop_reason::synproxy_pending) == 1);

	// The server's SYN-ACK is answered by the proxy, with the ACK the client would have sent, and the
	// waiting data follows it in the server's numbers.
	r = pl.send(inside, seg4(server, 22, client, 40000, SA, s, c + 1,
	                         {.mss = 1400, .sack_permitted = true, .timestamps = true, .ts_value = 5000, .ts_echo = 1001,
	                          .scale = 9},
	                         65160));
	CHECK(r.to_outside.empty());
	REQUIRE(r.to_inside.size() == 2);
	const seen held = look(r.to_inside[1]);
	CHECK(held.sum == 0xffff);
	CHECK(held.p.tcp_seq == c + 1);
	CHECK(held.p.tcp_ack == s + 1);
	CHECK(held.p.payload_length == 30);
	CHECK(held.o.ts_echo == 5000);  // it echoed the proxy's timestamp: now the server's
	const seen ack = look(r.to_inside[0]);
	CHECK(ack.sum == 0xffff);
	CHECK(ack.p.src.v4 == client);
	CHECK(ack.p.tcp_flags == A);
	CHECK(ack.p.tcp_seq == c + 1);
	CHECK(ack.p.tcp_ack == s + 1);
	CHECK(ack.p.tcp_window == 502);
	CHECK(ack.o.ts_value == 1001);
	CHECK(ack.o.ts_echo == 5000);
	CHECK(e->state == flow::flow_state::tcp_established);
	CHECK(pl.worker().counters().synproxy_handshakes == 1);

	// Server to client: its numbers moved into the cookie's, its timestamps into the proxy's, its window
	// from its scale (9) into the announced one (7).
	r = pl.send(inside, seg4(server, 22, client, 40000, PA, s + 1, c + 1,
	                         {.timestamps = true, .ts_value = 5010, .ts_echo = 1001}, 100, 200));
	REQUIRE(r.to_outside.size() == 1);
	const seen down = look(r.to_outside[0]);
	CHECK(down.sum == 0xffff);
	CHECK(down.p.tcp_seq == cookie + 1);
	CHECK(down.p.tcp_ack == c + 1);
	CHECK(down.o.ts_value == proxy_ts + 10);
	CHECK(down.o.ts_echo == 1001);
	CHECK(down.p.tcp_window == 400);
	CHECK(down.p.payload_length == 200);

	// Client to server: its ACK, its timestamp echo and its SACK blocks in the server's numbers.
	r = pl.send(outside, seg4(client, 40000, server, 22, PA, c + 1, cookie + 101,
	                          {.timestamps = true, .ts_value = 1003, .ts_echo = proxy_ts + 10,
	                           .sack = {{cookie + 151, cookie + 201}}},
	                          502, 30));
	REQUIRE(r.to_inside.size() == 1);
	const seen up = look(r.to_inside[0]);
	CHECK(up.sum == 0xffff);
	CHECK(up.p.tcp_seq == c + 1);
	CHECK(up.p.tcp_ack == s + 101);
	CHECK(up.o.ts_value == 1003);
	CHECK(up.o.ts_echo == 5010);
	REQUIRE(up.o.sack_blocks == 1);
	const pt::bytes& f = r.to_inside[0];
	const uint32_t left = uint32_t(f[up.p.l4_offset + up.o.sack_at + 2]) << 24 | f[up.p.l4_offset + up.o.sack_at + 3] << 16 |
	                      f[up.p.l4_offset + up.o.sack_at + 4] << 8 | f[up.p.l4_offset + up.o.sack_at + 5];
	CHECK(left == s + 151);

	// Window tracking runs in the server's numbers: an ACK (in the client's) of bytes the server never
	// sent is out of the window.
	CHECK(pl.send(outside, seg4(client, 40000, server, 22, A, c + 31, cookie + 100000, {}, 502)).to_inside.empty());
	CHECK(pl.drops(drop_reason::tcp_out_of_window) == 1);
	CHECK(pl.worker().counters().flows_opened == 1);
}

TEST_CASE("SYN proxy: forged and stale cookies open nothing")
{
	pipeline pl(proxied_rules, cookies());
	auto r = pl.send(outside, seg4(client, 40001, server, 22, S, 500, 0, {.mss = 1460}));
	REQUIRE(r.to_outside.size() == 1);
	const uint32_t cookie = look(r.to_outside[0]).p.tcp_seq;
	// Wrong cookie, right cookie on another port, right cookie with another ISN: all tcp_no_flow.
	CHECK(pl.send(outside, seg4(client, 40001, server, 22, A, 501, cookie + 2)).to_inside.empty());
	CHECK(pl.send(outside, seg4(client, 40002, server, 22, A, 501, cookie + 1)).to_inside.empty());
	CHECK(pl.send(outside, seg4(client, 40001, server, 22, A, 502, cookie + 1)).to_inside.empty());
	CHECK(pl.drops(drop_reason::tcp_no_flow) == 3);
	CHECK(pl.worker().counters().syncookies_failed == 3);
	CHECK(pl.worker().flows().size() == 0);
	// A good cookie for a port the rules do not allow opens nothing either (the SYN was never answered,
	// but an attacker who guessed one must still meet the rules).
	CHECK(pl.send(outside, seg4(client, 40003, server, 25, S, 500, 0)).to_outside.empty());
	// Without timestamps the cookie keeps the MSS only, rounded down to one it can carry.
	r = pl.send(outside, seg4(client, 40004, server, 80, S, 900, 0, {.mss = 1400, .sack_permitted = true, .scale = 7}));
	REQUIRE(r.to_outside.size() == 1);
	const seen synack = look(r.to_outside[0]);
	CHECK(synack.o.mss == 1460);
	CHECK(synack.o.window_scale == packet::no_window_scale);
	CHECK(!synack.o.sack_permitted);
	CHECK(synack.o.timestamp_at == 0);
	r = pl.send(outside, seg4(client, 40004, server, 80, A, 901, synack.p.tcp_seq + 1));
	REQUIRE(r.to_inside.size() == 1);
	const seen syn = look(r.to_inside[0]);
	CHECK(syn.o.mss == 1300);
	CHECK(syn.o.window_scale == packet::no_window_scale);
	CHECK(!syn.o.sack_permitted);
	CHECK(syn.sum == 0xffff);
}

TEST_CASE("SYN proxy: a server that refuses resets the client at its next expected byte")
{
	pipeline pl(proxied_rules, cookies());
	const uint32_t cookie = cookie_open(pl, 40010, 22, 700);
	pipeline::result r;
	// A RST that does not acknowledge the SYN is not the server's answer.
	CHECK(pl.send(inside, seg4(server, 22, client, 40010, uint8_t(R | A), 0, 9999)).to_outside.empty());
	r = pl.send(inside, seg4(server, 22, client, 40010, uint8_t(R | A), 0, 701));
	REQUIRE(r.to_outside.size() == 1);
	const seen rst = look(r.to_outside[0]);
	CHECK(rst.p.tcp_seq == cookie + 1);
	CHECK(rst.sum == 0xffff);
	CHECK(flow_of(pl, 40010)->state == flow::flow_state::tcp_closed);
}

TEST_CASE("SYN proxy over IPv6")
{
	pipeline pl(proxied_rules, cookies());
	const u128 c6 = pt::v6addr(0x2001000200000000ull, 5), s6 = pt::v6addr(0x2001000200000001ull, 0x10);
	auto seg6 = [&](bool from_client, uint8_t flags, uint32_t seq, uint32_t ack, const options& o = {}) {
		return checksummed(pt::eth(
			pt::et_ipv6,
			pt::ipv6({.src = from_client ? c6 : s6, .dst = from_client ? s6 : c6, .next_header = 6},
			         pt::tcp({.sport = uint16_t(from_client ? 41000 : 22), .dport = uint16_t(from_client ? 22 : 41000),
			                  .seq = seq, .ack = ack, .flags = flags, .window = 1000, .options = option_bytes(o)})),
			{}, 60));
	};
	auto r = pl.send(outside, seg6(true, S, 10, 0, {.mss = 1440, .timestamps = true, .ts_value = 77, .scale = 2}));
	REQUIRE(r.to_outside.size() == 1);
	const seen synack = look(r.to_outside[0]);
	CHECK(synack.sum == 0xffff);
	CHECK(synack.p.src.v6 == s6);
	r = pl.send(outside, seg6(true, A, 11, synack.p.tcp_seq + 1, {.timestamps = true, .ts_value = 78, .ts_echo = synack.o.ts_value}));
	REQUIRE(r.to_inside.size() == 1);
	const seen syn = look(r.to_inside[0]);
	CHECK(syn.o.mss == 1440);
	CHECK(syn.o.window_scale == 2);
	r = pl.send(inside, seg6(false, SA, 50, 11, {.mss = 1440, .timestamps = true, .ts_value = 9, .ts_echo = 78, .scale = 7}));
	REQUIRE(r.to_inside.size() == 1);
	r = pl.send(inside, seg6(false, A, 51, 11, {.timestamps = true, .ts_value = 10, .ts_echo = 78}));
	REQUIRE(r.to_outside.size() == 1);
	const seen down = look(r.to_outside[0]);
	CHECK(down.p.tcp_seq == synack.p.tcp_seq + 1);
	CHECK(down.sum == 0xffff);
}

TEST_CASE("adaptive SYN cookies: on past the SYN rate, off again a second after it stops")
{
	pipeline_options o = cookies(dataplane::syncookie_mode::adaptive);
	o.syncookies.rate = 100;  // 10 SYNs in a tenth of a second
	pipeline pl(proxied_rules, o);
	CHECK(pl.worker().counters().syncookies_active == 0);
	// Below the rate: plain SYNs open flows and go on to the server.
	for (uint16_t port = 0; port < 5; ++port)
		CHECK(pl.send(outside, seg4(client, uint16_t(42000 + port), server, 22, S, 1, 0)).to_inside.size() == 1);
	// A burst of SYNs past the rate: the next tick turns cookies on.
	for (uint16_t port = 5; port < 40; ++port)
		pl.inject(outside, seg4(client, uint16_t(42000 + port), server, 22, S, 1, 0));
	pl.run();
	pl.sent(inside);
	// The worker's clock runs at the test's assumed 1 GHz (pipeline.cc): a tick is at most 100 ms here.
	bool on = false;
	for (int round = 0; round < 50 && !on; ++round) {
		std::this_thread::sleep_for(std::chrono::milliseconds(10));
		auto r = pl.send(outside, seg4(client, uint16_t(43000 + round), server, 22, S, 1, 0, {.mss = 1460}));
		on = r.to_outside.size() == 1;
	}
	REQUIRE(on);
	CHECK(pl.worker().counters().syncookies_active == 1);
	// While on, SYNs are answered and the table does not grow.
	const uint64_t flows_before = pl.worker().flows().size();
	for (uint16_t port = 0; port < 20; ++port)
		CHECK(pl.send(outside, seg4(client, uint16_t(45000 + port), server, 22, S, 1, 0)).to_outside.size() == 1);
	CHECK(pl.worker().flows().size() == flows_before);
	// Quiet for more than the hold time: off again, and SYNs open flows as before.
	bool off = false;
	for (int round = 0; round < 40 && !off; ++round) {
		std::this_thread::sleep_for(std::chrono::milliseconds(100));
		auto r = pl.send(outside, seg4(client, uint16_t(44000 + round), server, 22, S, 1, 0));
		off = r.to_inside.size() == 1;
	}
	CHECK(off);
	CHECK(pl.worker().counters().syncookies_active == 0);
}

namespace {
// A connection opened through the proxy: the client's SYN and cookie ACK, the server's SYN-ACK (answered
// by the proxy). Returns the cookie; ack_window gets the window of the proxy's ACK to the server.
uint32_t proxied_open(pipeline& pl, uint16_t sport, uint16_t dport, uint32_t c, uint32_t s, options client_options,
                      options server_options, uint16_t* ack_window = nullptr)
{
	auto r = pl.send(outside, seg4(client, sport, server, dport, S, c, 0, client_options, 64240));
	REQUIRE(r.to_outside.size() == 1);
	const seen synack = look(r.to_outside[0]);
	const options ack{.timestamps = client_options.timestamps, .ts_value = client_options.ts_value + 1,
	                  .ts_echo = synack.o.ts_value};
	r = pl.send(outside, seg4(client, sport, server, dport, A, c + 1, synack.p.tcp_seq + 1, ack, 502));
	REQUIRE(r.to_inside.size() == 1);
	server_options.ts_echo = client_options.ts_value + 1;
	r = pl.send(inside, seg4(server, dport, client, sport, SA, s, c + 1, server_options, 65160));
	REQUIRE(r.to_inside.size() == 1);
	if (ack_window)
		*ack_window = look(r.to_inside[0]).p.tcp_window;
	return synack.p.tcp_seq;
}
} // namespace

TEST_CASE("SYN proxy: max-conn counts the flows that cookies open")
{
	const char* rules = "default in drop\ndefault out allow\n"
	                    "allow in tcp to 198.18.1.10 port ssh max-conn 2 per-source\n";
	pipeline pl(rules, cookies());
	// Five SYNs in parallel all get cookies (a SYN counts nothing); only two of their ACKs open a flow.
	std::vector<uint32_t> cookie;
	for (uint16_t k = 0; k < 5; ++k) {
		auto r = pl.send(outside, seg4(client, uint16_t(50000 + k), server, 22, S, 100, 0, {.mss = 1460}));
		REQUIRE(r.to_outside.size() == 1);
		cookie.push_back(look(r.to_outside[0]).p.tcp_seq);
	}
	size_t opened = 0;
	for (uint16_t k = 0; k < 5; ++k)
		opened += pl.send(outside, seg4(client, uint16_t(50000 + k), server, 22, A, 101, cookie[k] + 1)).to_inside.size();
	CHECK(opened == 2);
	CHECK(pl.worker().flows().size() == 2);
	// The three refused ACKs' clients, connected as far as they knew, got a RST at their next byte.
	CHECK(pl.worker().counters().rejects_sent == 3);
}

TEST_CASE("SYN proxy: data of a flow whose payload rules still scan is not held, and meets them when resent")
{
	const char* rules = "default in drop\ndefault out allow\n"
	                    "drop in tcp to 198.18.1.10 port 80 content \"evil\"\n"
	                    "allow in tcp to 198.18.1.10 port 80\n";
	pipeline pl(rules, cookies());
	const uint32_t cookie = cookie_open(pl, 40800, 80, 1000);
	pipeline::result r;
	const pt::bytes evil = pt::eth(pt::et_ipv4,
	                               pt::ipv4({.src = client, .dst = server, .proto = 6},
	                                        pt::tcp({.sport = 40800, .dport = 80, .seq = 1001, .ack = cookie + 1,
	                                                 .flags = PA, .window = 502},
	                                                {'G', 'E', 'T', ' ', 'e', 'v', 'i', 'l'})),
	                               {}, 60);
	CHECK(pl.send(outside, checksummed(evil)).to_inside.empty());
	CHECK(pl.worker().counters().synproxy_held == 0);
	CHECK(pl.drops(drop_reason::synproxy_pending) == 1);
	r = pl.send(inside, seg4(server, 80, client, 40800, SA, 5000, 1001, {.mss = 1460}));
	CHECK(r.to_inside.size() == 1);  // the proxy's ACK alone
	CHECK(pl.send(outside, checksummed(evil)).to_inside.empty());
	CHECK(pl.drops(drop_reason::rule_drop) == 1);
}

TEST_CASE("SYN proxy: a payload rule with flags matches a proxied flow as its SYN opened it")
{
	const char* rules = "default in drop\ndefault out allow\n"
	                    "drop in tcp to 198.18.1.10 port 80 flags S/SA content \"evil\"\n"
	                    "allow in tcp to 198.18.1.10 port 80\n";
	pipeline pl(rules, cookies());
	const uint32_t cookie = proxied_open(pl, 40100, 80, 1000, 5000, {.mss = 1460}, {.mss = 1460});
	const pt::bytes evil = {'G', 'E', 'T', ' ', 'e', 'v', 'i', 'l'};
	const pt::bytes f = pt::eth(pt::et_ipv4,
	                            pt::ipv4({.src = client, .dst = server, .proto = 6},
	                                     pt::tcp({.sport = 40100, .dport = 80, .seq = 1001, .ack = cookie + 1,
	                                              .flags = PA, .window = 502},
	                                             evil)),
	                            {}, 60);
	CHECK(pl.send(outside, checksummed(f)).to_inside.empty());
	CHECK(pl.drops(drop_reason::rule_drop) == 1);
}

TEST_CASE("SYN proxy: a server without window scaling reads the client's windows scaled up for it")
{
	pipeline pl(proxied_rules, cookies());
	uint16_t window = 0;
	// The client scales by 8 (with the proxy); the server's SYN-ACK has no window scale option.
	const uint32_t cookie =
		proxied_open(pl, 40200, 22, 1000, 5000, {.mss = 1460, .timestamps = true, .ts_value = 10, .scale = 8},
		             {.mss = 1460, .timestamps = true, .ts_value = 77}, &window);
	CHECK(window == 0xffff);  // 502 << 8, capped
	auto r = pl.send(outside, seg4(client, 40200, server, 22, A, 1001, cookie + 1,
	                               {.timestamps = true, .ts_value = 12, .ts_echo = 0}, 100));
	REQUIRE(r.to_inside.size() == 1);
	const seen up = look(r.to_inside[0]);
	CHECK(up.p.tcp_window == 100 << 8);
	CHECK(up.sum == 0xffff);
	// The server's windows, unscaled, are scaled down into the 7 announced to the client.
	r = pl.send(inside, seg4(server, 22, client, 40200, A, 5001, 1001, {.timestamps = true, .ts_value = 78}, 25600));
	REQUIRE(r.to_outside.size() == 1);
	CHECK(look(r.to_outside[0]).p.tcp_window == 25600 >> 7);
}

TEST_CASE("SYN proxy: an ICMP error about a server's segment reaches the server in its own numbers")
{
	pipeline pl(proxied_rules, cookies());
	const uint32_t s = 5000;
	proxied_open(pl, 40300, 22, 1000, s, {.mss = 1460}, {.mss = 1460});
	auto r = pl.send(inside, seg4(server, 22, client, 40300, PA, s + 1, 1001, {}, 100, 300));
	REQUIRE(r.to_outside.size() == 1);
	// A router on the client's side: fragmentation needed, quoting the segment as it saw it.
	const pt::bytes& down = r.to_outside[0];
	const packet::parsed dp = pt::parse_bytes(down);
	pt::bytes icmp = pt::icmp(3, 4, 1400, pt::bytes(down.begin() + dp.l3_offset, down.begin() + dp.l4_offset + 8));
	const uint16_t c = dataplane::frame::fold(dataplane::frame::sum_bytes(icmp.data(), icmp.size()));
	icmp[2] = uint8_t(c >> 8);
	icmp[3] = uint8_t(c);
	r = pl.send(outside, pt::eth(pt::et_ipv4, pt::ipv4({.src = 0xC6120001, .dst = server, .proto = 1}, icmp), {}, 60));
	REQUIRE(r.to_inside.size() == 1);
	const pt::bytes& error = r.to_inside[0];
	const packet::parsed ep = pt::parse_bytes(error);
	const uint8_t* quoted_tcp = error.data() + ep.l4_offset + 8 + 20;
	CHECK(dataplane::frame::get32(quoted_tcp + 4) == s + 1);
	const size_t icmp_len = ep.l3_length - (ep.l4_offset - ep.l3_offset);
	CHECK(dataplane::frame::fold(dataplane::frame::sum_bytes(error.data() + ep.l4_offset, icmp_len)) == 0);
}

TEST_CASE("SYN proxy: the server's SYN-ACK sent again is answered again, not passed to the client")
{
	pipeline pl(proxied_rules, cookies());
	proxied_open(pl, 40400, 22, 1000, 5000, {.mss = 1460}, {.mss = 1460});
	auto r = pl.send(inside, seg4(server, 22, client, 40400, SA, 5000, 1001, {.mss = 1460}, 65160));
	CHECK(r.to_outside.empty());
	REQUIRE(r.to_inside.size() == 1);
	const seen ack = look(r.to_inside[0]);
	CHECK(ack.p.tcp_flags == A);
	CHECK(ack.p.tcp_seq == 1001);
	CHECK(ack.p.tcp_ack == 5001);
	CHECK(ack.sum == 0xffff);
}

TEST_CASE("SYN proxy: a held segment whose server never answers is dropped after three seconds")
{
	pipeline pl(proxied_rules, cookies());
	const uint32_t cookie = cookie_open(pl, 40700, 22, 100);
	pipeline::result r;
	const auto& counted = pl.worker().counters();
	const uint64_t allowed_before = counted.packets[0][0], dropped_before = counted.packets[0][1];
	CHECK(pl.send(outside, seg4(client, 40700, server, 22, PA, 101, cookie + 1, {}, 502, 20)).to_inside.empty());
	CHECK(pl.worker().counters().synproxy_held == 1);
	CHECK(counted.packets[0][0] == allowed_before);  // counted when it goes or is dropped
	// The worker's clock runs at the test's assumed 1 GHz (pipeline.cc): three of its seconds pass in
	// 3 / (TSC GHz) real ones. Any packet lets the worker look.
	for (int round = 0; round < 40 && pl.drops(drop_reason::synproxy_pending) == 0; ++round) {
		std::this_thread::sleep_for(std::chrono::milliseconds(100));
		pl.send(outside, seg4(client, uint16_t(41000 + round), server, 22, S, 100, 0, {.mss = 1460}));
	}
	CHECK(pl.drops(drop_reason::synproxy_pending) == 1);
	CHECK(counted.packets[0][1] == dropped_before + 1);
	// The server's late SYN-ACK completes the flow; nothing is left to send behind the ACK.
	r = pl.send(inside, seg4(server, 22, client, 40700, SA, 9000, 101, {.mss = 1460}));
	CHECK(r.to_inside.size() == 1);
}

TEST_CASE("SYN proxy: outbound connections are never proxied")
{
	pipeline pl(proxied_rules, cookies());
	auto r = pl.send(inside, seg4(server, 33000, 0xC6120035, 443, S, 1, 0, {.mss = 1460}));
	CHECK(r.to_inside.empty());
	CHECK(r.to_outside.size() == 1);
	CHECK(pl.worker().counters().syncookies_sent == 0);
	CHECK(pl.worker().flows().size() == 1);
}

TEST_CASE("SYN proxy: a proxied flow that closed opens again unproxied on the same tuple")
{
	pipeline pl(proxied_rules, cookies());
	const uint32_t s = 5000;
	const uint32_t cookie = proxied_open(pl, 40600, 22, 1000, s, {.mss = 1460}, {.mss = 1460});
	constexpr uint8_t FA = 0x11;
	REQUIRE(pl.send(outside, seg4(client, 40600, server, 22, FA, 1001, cookie + 1)).to_inside.size() == 1);
	auto r = pl.send(inside, seg4(server, 22, client, 40600, FA, s + 1, 1002));
	REQUIRE(r.to_outside.size() == 1);
	CHECK(look(r.to_outside[0]).p.tcp_seq == cookie + 1);
	REQUIRE(pl.send(outside, seg4(client, 40600, server, 22, A, 1002, cookie + 2)).to_inside.size() == 1);
	// A new connection on the same tuple while the old one is in time-wait: conntrack reopens the flow.
	r = pl.send(outside, seg4(client, 40600, server, 22, S, 90000, 0, {.mss = 1460}));
	REQUIRE(r.to_inside.size() == 1);
	CHECK(!flow_of(pl, 40600)->syn_proxied);
	r = pl.send(inside, seg4(server, 22, client, 40600, SA, 777, 90001, {.mss = 1460}));
	REQUIRE(r.to_outside.size() == 1);
	CHECK(look(r.to_outside[0]).p.tcp_seq == 777);  // untranslated
	CHECK(pl.send(outside, seg4(client, 40600, server, 22, A, 90001, 778)).to_inside.size() == 1);
	CHECK(flow_of(pl, 40600)->state == flow::flow_state::tcp_established);
}
