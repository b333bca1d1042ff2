// The SYN proxy (flows.syncookies), as pf's `set syncookies` and nft's synproxy: while it is on, the
// data path answers a SYN that the rules allow with a SYN-ACK whose sequence number is a SYN cookie
// (flow/syncookie.h), and creates no flow, so a flood of SYNs from sources that never answer leaves the
// flow table alone. The client's ACK that returns a good cookie opens the flow and is turned into a SYN
// to the server with the client's ISN and the options the cookie kept (MSS, window scale, SACK); the
// server's SYN-ACK is answered with the ACK the client would have sent, and from then on the server's
// sequence numbers are moved by (cookie - server ISN) towards the client and back, its timestamps by
// the offset to the proxy's, SACK blocks likewise, and its window fields from its window scale to the
// one the proxy's SYN-ACK announced. The first data segment the client sends before the server answered
// waits in the worker (64 at most per worker, three seconds at most) and follows the proxy's ACK to the
// server, so that a client that speaks first (HTTP, TLS) does not wait for its retransmission timeout;
// later ones are dropped (synproxy_pending) and sent again by the client. Linux's synproxy caveats
// apply: the SYN-ACK announces `syncookie-mss` and `syncookie-wscale`, which should be the servers' own,
// and TCP Fast Open data in a SYN is not taken (the client sends it again after the handshake).
//
// Only inbound SYNs (from the outside port, to the servers the proxy stands in for) are answered:
// outbound connections go to servers whose options the proxy cannot know.
//
// Modes: never; always; adaptive, on while a worker sees more new inbound SYNs per second than `rate`,
// while the half-open flows of its table (as the last expiry sweep counted them) pass a share of it, or
// while its table evicts half-open flows to make room, and for a second after all stop. Cookies are
// checked on ACKs of no flow for two minutes after the last one was sent.
#pragma once

#include <algorithm>
#include <cstdint>

#include "flow/conntrack.h"
#include "flow/syncookie.h"
#include "packet/packet.h"

struct rte_mbuf;

namespace portcullis::dataplane {

enum class syncookie_mode : uint8_t { never, always, adaptive };

struct syncookie_config {
	syncookie_mode mode = syncookie_mode::never;
	uint16_t mss = 1460;         // the MSS the proxy's SYN-ACK announces: the servers'
	uint8_t window_scale = 7;    // the window scale it announces: the servers'
	uint32_t rate = 50000;       // adaptive: new inbound SYNs per second (per worker) that turn cookies on
	double half_open = 0.25;     // adaptive: half-open share of the table that turns them on
};

// Per flow of a proxied connection, by flow table index: 16 bytes, kept only when cookies are enabled.
struct proxy_state {
	uint32_t seq_delta;      // added to the server's sequence numbers (until its SYN-ACK: the cookie)
	uint32_t ts_delta;       // added to the server's timestamps (until its SYN-ACK: the proxy's own)
	uint32_t client_ts;      // until the server's SYN-ACK: the client's timestamp, for the ACK to it
	uint16_t client_window;  // until then: the client's window field, likewise
	uint8_t client_scale : 4;  // the client's window scale, 15 when not in use
	// A server that declined window scaling reads the client's window fields unscaled: they are scaled
	// up by this much on the way to it (0 when both scale).
	uint8_t client_shift : 4;
	int8_t window_shift : 6;   // the server's window scale minus the one announced to the client
	uint8_t timestamps : 1;    // both ends use timestamps: they are translated
};
static_assert(sizeof(proxy_state) == 16);

// The cookie tuple of a packet from the client.
flow::cookie_tuple cookie_tuple_of(const packet::parsed& p);

// Rewrites a SYN (m, p) into the proxy's cookie SYN-ACK back to the client. ts_clock is a millisecond
// clock for the timestamp option. False when m cannot be rewritten (then it is left as it was).
bool answer_syn(rte_mbuf* m, const packet::parsed& p, const syncookie_config& c, const flow::cookie_secret& key,
                uint32_t count, uint32_t ts_clock);

// The client MSS the cookie of a pure ACK of no flow carries, 0 when it carries none of ours.
inline uint16_t cookie_of_ack(const packet::parsed& p, const flow::cookie_secret& key, uint32_t count)
{
	return flow::check_cookie(key, cookie_tuple_of(p), p.tcp_seq - 1, p.tcp_ack - 1, count);
}

// The ACK with a good cookie (m, p; its cookie's MSS mss) opened flow e: fills e (SYN sent, proxied) and
// s, and rewrites m into the SYN to the server. False when m cannot be rewritten.
bool replay_syn(flow::flow_entry& e, proxy_state& s, rte_mbuf* m, const packet::parsed& p, uint16_t mss);

enum class proxy_step : uint8_t {
	answered,  // m is now the ACK to the server: send it back where it came from
	forward,   // m goes on to its destination, rewritten for it
	drop,
};

// A packet of a proxied flow whose server has not answered yet (state SYN sent). The server's SYN-ACK
// completes the flow (established) and becomes the ACK to the server; its refusal (RST) goes on to the
// client in the client's numbers and closes the flow.
proxy_step server_handshake(flow::flow_entry& e, proxy_state& s, rte_mbuf* m, const packet::parsed& p,
                            const flow::segment& seg, bool from_client, const syncookie_config& c,
                            flow::window_mode windows);

// A client's window field as the server reads it.
inline uint16_t client_window_for_server(uint16_t window, const proxy_state& s)
{
	return uint16_t(std::min<uint32_t>(uint32_t(window) << s.client_shift, 0xffff));
}

// A client's segment as the server will see it, for conntrack (which follows the server's numbers): its
// ACK in the server's sequence space, its window in the server's reading.
inline void to_server_numbers(flow::segment& seg, const proxy_state& s, bool from_client)
{
	if (from_client) {
		seg.ack -= s.seq_delta;
		seg.window = client_window_for_server(seg.window, s);
	}
}

// An ICMP error about a proxied flow whose quoted segment the client's side sent back towards the server
// (a path-MTU "fragmentation needed", say): the quoted sequence number goes back into the server's
// numbers, or the server's stack takes the error for a stray and ignores it.
void translate_quoted(rte_mbuf* m, const packet::parsed& p, const proxy_state& s);

// A retransmission of the server's SYN-ACK after the flow was set up (the proxy's ACK was lost):
// rewritten into that ACK again, back to the server. False when m cannot be rewritten.
bool answer_synack_again(rte_mbuf* m, const packet::parsed& p, const proxy_state& s);

// Rewrites a packet of an established proxied flow for its receiver (checksum adjusted in place).
void translate(rte_mbuf* m, const packet::parsed& p, const proxy_state& s, bool from_client);

} // namespace portcullis::dataplane
