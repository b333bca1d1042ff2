// SYN cookies: the initial sequence number a SYN proxy answers a SYN with, so that it keeps no state
// for a handshake until the client completes it (dataplane/synproxy.cc).
//
// A cookie is a keyed hash of the connection's addresses, ports and client ISN, plus a 6-bit time
// counter (64-second steps) and the index of the client's MSS in a table of four, as in Linux's
// cookies: cookie = H(tuple, isn) + (count << 26 | mss_index << 24 | H(tuple, isn, count, mss_index) &
// 0xffffff). The client's ACK returns cookie + 1; the proxy subtracts the first hash and checks the
// second, which needs the secret, so a forged ACK passes once in 2^24 tries. A cookie is good for
// 64 to 128 seconds. The hash is SipHash-2-4 (the keyed PRF Linux uses for its cookies) with a secret
// drawn when the worker starts.
//
// The client's window scale and SACK permission do not fit in 32 bits: when the client sends TCP
// timestamps they ride in the low 6 bits of the proxy's timestamp value, which the client echoes in
// every segment (Linux does the same). Without timestamps the connection gets neither.
#pragma once

#include <cstdint>

#include "flow/flow_key.h"

namespace portcullis::flow {

struct cookie_secret {
	uint64_t k0 = 0, k1 = 0;
	static cookie_secret random();
};

// SipHash-2-4 of n 64-bit words.
uint64_t siphash24(const cookie_secret& key, const uint64_t* words, uint32_t n);

// The MSS values a cookie can carry; a client's MSS is rounded down to one of them (536 at least).
inline constexpr uint16_t cookie_mss[4] = {536, 1300, 1440, 1460};

// The connection a cookie is for, as the client's SYN names it (client first).
struct cookie_tuple {
	u128 client, server;  // IPv4 addresses in the low 32 bits
	uint16_t client_port, server_port;
	uint8_t family;
};

// Time counter of a TSC reading: 64-second steps.
inline uint32_t cookie_count(uint64_t now_tsc, uint64_t tsc_hz) { return uint32_t(now_tsc / (tsc_hz * 64)); }

// The ISN to answer a SYN (client ISN isn, client MSS mss) with.
uint32_t make_cookie(const cookie_secret& key, const cookie_tuple& t, uint32_t isn, uint16_t mss, uint32_t count);

// The client MSS (one of cookie_mss) a cookie carries, or 0 if it is not one this secret made for
// this tuple and ISN within the last 128 seconds. cookie is the client ACK's ack - 1, isn its seq - 1.
uint16_t check_cookie(const cookie_secret& key, const cookie_tuple& t, uint32_t isn, uint32_t cookie, uint32_t count);

// The options a cookie timestamp carries: the client's window scale (15: none) and SACK permission.
struct cookie_options {
	uint8_t window_scale = 15;
	bool sack = false;
};
inline uint32_t encode_timestamp(uint32_t clock, cookie_options o)
{
	return (clock & ~0x3fu) | (o.window_scale & 0xfu) | (o.sack ? 0x10u : 0u);
}
inline cookie_options decode_timestamp(uint32_t echoed)
{
	return {uint8_t(echoed & 0xfu), (echoed & 0x10u) != 0};
}

} // namespace portcullis::flow
