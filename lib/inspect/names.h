// Domain names from the first payload of a flow: the TLS ClientHello server_name (SNI), the HTTP/1
// Host header, and the DNS question name. Matched against sni / http-host / dns-query conditions.
//
// Pure functions over bytes: every read is bounds-checked against `n`, nothing is allocated, nothing
// thrown; any thread may call them (tests/inspect mutates seed payloads 100k times against them;
// tests/fuzz/fuzz_names.cc is their libFuzzer target).
// Each writes the name, lower case and without a trailing dot, to out[0..cap) and returns its length,
// or 0 when the bytes hold no such name, the name does not fit, or it has bytes a host name cannot
// (controls, blanks, non-ASCII) or an empty label ("a..example"). Truncated input is parsed as far as it goes: a ClientHello cut at the
// end of its first TCP segment still yields the SNI when the extension lies within that segment.
#pragma once

#include <cstddef>
#include <cstdint>

namespace portcullis::inspect {

inline constexpr size_t max_name_bytes = 255;

// A TLS record of type handshake holding a ClientHello (any TLS/SSL 3.x record version).
size_t tls_sni(const uint8_t* p, size_t n, char* out, size_t cap);
// An HTTP/1.x request (request line ending in " HTTP/1.x"); the Host header's value without a port.
size_t http_host(const uint8_t* p, size_t n, char* out, size_t cap);
// A DNS query (QR = 0, QDCOUNT >= 1): the first question's name. Compression pointers are refused
// (a query's first name has nothing to point back to).
size_t dns_qname(const uint8_t* p, size_t n, char* out, size_t cap);

// One address record of a DNS answer: A (family 4, addr[0..4)) or AAAA (family 6), network order.
struct dns_address {
	uint8_t family;
	uint8_t addr[16];
	uint32_t ttl;  // seconds
};
inline constexpr size_t max_cname_chain = 8;

// A DNS response (QR = 1, standard query, RCODE 0, one question): writes the question name to
// qname[0..cap) as dns_qname does and returns its length, and stores up to max_addresses of the A and
// AAAA records of the answer section whose owner is that name, or a name a CNAME chain from it
// (at most max_cname_chain links, in any order) leads to, in addresses; *count says how many. Records
// for other owners are ignored: an answer can only speak for the name that was asked. Only the first 64
// answer records are read, each name decoded once: a hostile answer costs bounded work. Names in records
// may be compressed; a pointer must point backwards, and a name may follow at most 16 of them. Returns 0
// (and *count 0) for anything else: a query, an error, a truncated or malformed message.
size_t dns_response(const uint8_t* p, size_t n, char* qname, size_t cap, dns_address* addresses,
                    size_t max_addresses, size_t* count);

} // namespace portcullis::inspect
