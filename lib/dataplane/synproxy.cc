#include "dataplane/synproxy.h"

#include <rte_mbuf.h>

#include <algorithm>

#include "dataplane/frame.h"

namespace portcullis::dataplane {
namespace {

using namespace frame;
namespace tcp_flag = flow::tcp_flag;

// The window of the proxy's SYN-ACK: Linux's initial receive window for a 1460-byte MSS. The client
// learns the server's real one from the server's first segment.
constexpr uint16_t synack_window = 64240;

struct option_writer {
	uint8_t bytes[40];
	uint32_t n = 0;
	void mss(uint16_t v)
	{
		bytes[n++] = 2;
		bytes[n++] = 4;
		put16(bytes + n, v);
		n += 2;
	}
	// SACK permitted (or two no-ops in its place) and the timestamps: 12 bytes, as Linux lays them out.
	void sack_and_timestamps(bool sack, uint32_t value, uint32_t echo)
	{
		bytes[n++] = sack ? 4 : 1;
		bytes[n++] = sack ? 2 : 1;
		bytes[n++] = 8;
		bytes[n++] = 10;
		put32(bytes + n, value);
		put32(bytes + n + 4, echo);
		n += 8;
	}
	void window_scale(uint8_t v)
	{
		bytes[n++] = 1;
		bytes[n++] = 3;
		bytes[n++] = 3;
		bytes[n++] = v;
	}
};

uint8_t* tcp_of(rte_mbuf* m, const packet::parsed& p) { return rte_pktmbuf_mtod(m, uint8_t*) + p.l4_offset; }
uint32_t tcp_header_length(const packet::parsed& p) { return uint32_t(p.payload_offset - p.l4_offset); }

} // namespace

flow::cookie_tuple cookie_tuple_of(const packet::parsed& p)
{
	if (p.family == 4)
		return {u128(p.src.v4), u128(p.dst.v4), p.sport, p.dport, 4};
	return {p.src.v6, p.dst.v6, p.sport, p.dport, 6};
}

bool answer_syn(rte_mbuf* m, const packet::parsed& p, const syncookie_config& c, const flow::cookie_secret& key,
                uint32_t count, uint32_t ts_clock)
{
	const packet::tcp_options o = packet::tcp_options_of(tcp_of(m, p), tcp_header_length(p));
	const uint32_t cookie = flow::make_cookie(key, cookie_tuple_of(p), p.tcp_seq, o.mss ? o.mss : 536, count);
	option_writer opt;
	opt.mss(c.mss);
	// The client's window scale and SACK permission ride in the proxy's timestamp: without timestamps
	// there is nowhere to keep them, and the connection goes without (as with Linux's cookies).
	if (o.timestamp_at) {
		flow::cookie_options kept;
		kept.window_scale = o.window_scale <= 14 ? o.window_scale : 15;
		kept.sack = o.sack_permitted;
		opt.sack_and_timestamps(o.sack_permitted, flow::encode_timestamp(ts_clock, kept), o.ts_value);
		if (o.window_scale <= 14)
			opt.window_scale(c.window_scale);
	}
	return write_tcp(m, p, true, cookie, p.tcp_seq + 1, tcp_flag::syn | tcp_flag::ack, synack_window, opt.bytes, opt.n);
}

bool replay_syn(flow::flow_entry& e, proxy_state& s, rte_mbuf* m, const packet::parsed& p, uint16_t mss)
{
	const packet::tcp_options o = packet::tcp_options_of(tcp_of(m, p), tcp_header_length(p));
	flow::cookie_options kept;
	if (o.timestamp_at)
		kept = flow::decode_timestamp(o.ts_echo);
	s = {};
	s.seq_delta = p.tcp_ack - 1;  // the cookie, until the server's ISN is known
	s.ts_delta = o.ts_echo;       // the proxy's timestamp, likewise
	s.client_ts = o.ts_value;
	s.client_window = p.tcp_window;
	s.client_scale = kept.window_scale <= 14 ? kept.window_scale : 15;
	s.timestamps = o.timestamp_at != 0;

	option_writer opt;
	opt.mss(mss);
	if (s.timestamps)
		opt.sack_and_timestamps(kept.sack, o.ts_value, 0);
	if (s.client_scale <= 14)
		opt.window_scale(s.client_scale);
	const uint32_t isn = p.tcp_seq - 1;
	const uint32_t scale = s.client_scale <= 14 ? s.client_scale : 0;
	const uint16_t window = uint16_t(std::min<uint32_t>(uint32_t(p.tcp_window) << scale, 0xffff));
	if (!write_tcp(m, p, false, isn, 0, tcp_flag::syn, window, opt.bytes, opt.n))
		return false;
	// Conntrack follows the connection as the server sees it: from the SYN it is sent now.
	flow::open(e, flow::segment{6, tcp_flag::syn, isn, 0, 0, window, s.client_scale <= 14 ? uint8_t(s.client_scale) : packet::no_window_scale},
	           false);
	e.syn_proxied = 1;
	return true;
}

proxy_step server_handshake(flow::flow_entry& e, proxy_state& s, rte_mbuf* m, const packet::parsed& p,
                            const flow::segment& seg, bool from_client, const syncookie_config& c,
                            flow::window_mode windows)
{
	if (from_client)
		return proxy_step::drop;
	const uint32_t client_next = e.seq_end[0] + 1;  // seq_end[0] holds the client's ISN until the SYN-ACK
	if (p.tcp_flags & tcp_flag::rst) {
		if (!(p.tcp_flags & tcp_flag::ack) || p.tcp_ack != client_next)
			return proxy_step::drop;
		// Refused: the client, established as far as it knows, must get the RST at its next expected byte.
		uint8_t* tcp = tcp_of(m, p);
		replace32(tcp, 4, tcp + 16, s.seq_delta + 1);
		flow::store_state(e, flow::flow_state::tcp_closed);
		return proxy_step::forward;
	}
	if ((p.tcp_flags & (tcp_flag::syn | tcp_flag::ack)) != (tcp_flag::syn | tcp_flag::ack) ||
	    flow::track(e, seg, false, windows) != flow::ct_result::pass)
		return proxy_step::drop;
	const packet::tcp_options o = packet::tcp_options_of(tcp_of(m, p), tcp_header_length(p));
	const uint32_t cookie = s.seq_delta, proxy_ts = s.ts_delta;
	s.seq_delta = cookie - p.tcp_seq;
	s.timestamps = s.timestamps && o.timestamp_at;
	s.ts_delta = s.timestamps ? proxy_ts - o.ts_value : 0;
	const bool client_scales = s.client_scale <= 14, server_scales = client_scales && o.window_scale <= 14;
	s.window_shift = int8_t((server_scales ? o.window_scale : 0) - (client_scales ? c.window_scale : 0));
	s.client_shift = client_scales && !server_scales ? s.client_scale : 0;

	// The ACK the client would have sent, in this frame, back to the server; conntrack takes it as sent.
	option_writer opt;
	if (s.timestamps)
		opt.sack_and_timestamps(false, s.client_ts, o.ts_value);
	const uint32_t ack = p.tcp_seq + 1;
	const uint16_t window = client_window_for_server(s.client_window, s);
	if (!write_tcp(m, p, true, client_next, ack, tcp_flag::ack, window, opt.bytes, opt.n))
		return proxy_step::drop;
	const flow::segment client_ack{6, tcp_flag::ack, client_next, ack, 0, window};
	return flow::track(e, client_ack, true, windows) == flow::ct_result::pass ? proxy_step::answered : proxy_step::drop;
}

void translate(rte_mbuf* m, const packet::parsed& p, const proxy_state& s, bool from_client)
{
	uint8_t* tcp = tcp_of(m, p);
	uint8_t* csum = tcp + 16;
	const uint32_t header = tcp_header_length(p);
	const packet::tcp_options o = header > 20 ? packet::tcp_options_of(tcp, header) : packet::tcp_options{};
	if (from_client) {
		if (p.tcp_flags & tcp_flag::ack)
			replace32(tcp, 8, csum, p.tcp_ack - s.seq_delta);
		if (s.timestamps && o.timestamp_at)
			replace32(tcp, o.timestamp_at + 6u, csum, o.ts_echo - s.ts_delta);
		// SACK blocks name bytes the server sent, in the client's numbers.
		for (uint32_t b = 0; b < o.sack_blocks; ++b)
			for (uint32_t edge = 0; edge < 2; ++edge) {
				const uint32_t at = o.sack_at + 2u + b * 8 + edge * 4;
				replace32(tcp, at, csum, get32(tcp + at) - s.seq_delta);
			}
		if (s.client_shift && !(p.tcp_flags & tcp_flag::syn))
			replace16(tcp, 14, csum, client_window_for_server(p.tcp_window, s));
		return;
	}
	replace32(tcp, 4, csum, p.tcp_seq + s.seq_delta);
	if (s.timestamps && o.timestamp_at)
		replace32(tcp, o.timestamp_at + 2u, csum, o.ts_value + s.ts_delta);
	if (s.window_shift && !(p.tcp_flags & tcp_flag::syn)) {
		const uint32_t w = p.tcp_window;
		uint32_t scaled = s.window_shift > 0 ? std::min<uint32_t>(w << s.window_shift, 0xffff) : w >> -s.window_shift;
		if (scaled == 0 && w != 0)
			scaled = 1;  // an open window stays open
		replace16(tcp, 14, csum, uint16_t(scaled));
	}
}

void translate_quoted(rte_mbuf* m, const packet::parsed& p, const proxy_state& s)
{
	// The quoted IP header follows the 8-byte ICMP header; its TCP header's sequence number, 4 bytes in,
	// is what the server checks. Only a quote whose TCP header starts right after a plain IP header (no
	// IPv6 extension headers) is rewritten.
	if (m->nb_segs != 1 || p.inner.proto != 6)
		return;
	uint8_t* frame = rte_pktmbuf_mtod(m, uint8_t*);
	uint8_t* icmp = frame + p.l4_offset;
	const uint32_t quoted_ip = p.l4_offset + 8u;
	if (quoted_ip + 1 > m->data_len)
		return;
	uint32_t quoted_tcp;
	if (p.inner.family == 4)
		quoted_tcp = quoted_ip + (frame[quoted_ip] & 0xfu) * 4u;
	else if (quoted_ip + 40 <= m->data_len && frame[quoted_ip + 6] == 6)
		quoted_tcp = quoted_ip + 40;
	else
		return;
	if (quoted_tcp + 8 > m->data_len)
		return;
	// The ICMP(v6) checksum covers the quote: adjust it for the new bytes (at an even or odd distance
	// from the ICMP header, where its sum starts).
	const uint32_t at = quoted_tcp + 4 - p.l4_offset;
	replace32(icmp, at, icmp + 2, get32(icmp + at) - s.seq_delta);
}

bool answer_synack_again(rte_mbuf* m, const packet::parsed& p, const proxy_state& s)
{
	return write_tcp(m, p, true, p.tcp_ack, p.tcp_seq + 1, tcp_flag::ack, client_window_for_server(s.client_window, s),
	                 nullptr, 0);
}

} // namespace portcullis::dataplane
