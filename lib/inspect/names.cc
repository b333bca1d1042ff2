// Domain-name extraction (names.h): three small hand-written parsers with a bounds check before
// every read.
#include "inspect/names.h"

#include <algorithm>
#include <cstring>

namespace portcullis::inspect {
namespace {

// A bounds-checked cursor: once a read fails, every later read fails too, so parsers check once.
struct reader {
	const uint8_t* p;
	size_t n;
	size_t at = 0;
	bool ok = true;

	bool has(size_t k) const { return ok && k <= n - at; }
	uint32_t u8()
	{
		if (!has(1))
			return ok = false, 0;
		return p[at++];
	}
	uint32_t u16()
	{
		if (!has(2))
			return ok = false, 0;
		const uint32_t v = uint32_t(p[at]) << 8 | p[at + 1];
		at += 2;
		return v;
	}
	uint32_t u24()
	{
		if (!has(3))
			return ok = false, 0;
		const uint32_t v = uint32_t(p[at]) << 16 | uint32_t(p[at + 1]) << 8 | p[at + 2];
		at += 3;
		return v;
	}
	void skip(size_t k)
	{
		if (!has(k))
			ok = false;
		else
			at += k;
	}
};

char lower(uint8_t c) { return char(c >= 'A' && c <= 'Z' ? c + 32 : c); }
bool host_byte(uint8_t c) { return c > 0x20 && c < 0x7f; }

// Copies a host name, lower case, trailing dot dropped; 0 if empty, too long, with a bad byte or with an
// empty label ("a..b", ".a", "a.." would otherwise come out with a dot at the end, and no pattern can
// name them).
size_t copy_name(const uint8_t* s, size_t len, char* out, size_t cap)
{
	if (len > 0 && s[len - 1] == '.')
		--len;
	if (len == 0 || len > cap || len > max_name_bytes || s[0] == '.' || s[len - 1] == '.')
		return 0;
	for (size_t i = 0; i < len; ++i) {
		if (!host_byte(s[i]) || (s[i] == '.' && s[i - 1] == '.'))
			return 0;
		out[i] = lower(s[i]);
	}
	return len;
}

} // namespace

size_t tls_sni(const uint8_t* p, size_t n, char* out, size_t cap)
{
	reader r{p, n};
	// Record header: type 22 (handshake), version 3.x, length. The record may continue past n.
	if (r.u8() != 22 || r.u8() != 3)
		return 0;
	r.skip(1);
	const size_t record_len = r.u16();
	if (!r.ok || record_len < 4)
		return 0;
	if (record_len < r.n - r.at)
		r.n = r.at + record_len;  // parse only this record
	// Handshake header: type 1 (ClientHello), 24-bit length.
	if (r.u8() != 1)
		return 0;
	const size_t hello_len = r.u24();
	if (!r.ok || hello_len < 38)
		return 0;
	if (hello_len < r.n - r.at)
		r.n = r.at + hello_len;
	r.skip(2 + 32);      // client_version, random
	r.skip(r.u8());      // session_id
	r.skip(r.u16());     // cipher_suites
	r.skip(r.u8());      // compression_methods
	size_t ext_end = r.u16();
	if (!r.ok)
		return 0;
	ext_end = ext_end < r.n - r.at ? r.at + ext_end : r.n;
	while (r.ok && r.at + 4 <= ext_end) {
		const uint32_t type = r.u16();
		const size_t len = r.u16();
		if (type != 0) {
			r.skip(len);
			continue;
		}
		// server_name: a list of (name_type, name); host_name is type 0.
		reader s{r.p, r.at + len < ext_end ? r.at + len : ext_end, r.at};
		size_t list_end = s.u16();
		if (!s.ok)
			return 0;
		list_end = list_end < s.n - s.at ? s.at + list_end : s.n;
		while (s.ok && s.at + 3 <= list_end) {
			const uint32_t name_type = s.u8();
			const size_t name_len = s.u16();
			if (!s.has(name_len) || s.at + name_len > list_end)
				return 0;
			if (name_type == 0)
				return copy_name(s.p + s.at, name_len, out, cap);
			s.skip(name_len);
		}
		return 0;
	}
	return 0;
}

size_t http_host(const uint8_t* p, size_t n, char* out, size_t cap)
{
	// Request line: METHOD SP target SP HTTP/1.x CRLF. The method is upper-case letters.
	size_t i = 0;
	while (i < n && i < 16 && p[i] >= 'A' && p[i] <= 'Z')
		++i;
	if (i == 0 || i >= n || p[i] != ' ')
		return 0;
	size_t eol = i;
	while (eol < n && p[eol] != '\n')
		++eol;
	if (eol >= n)
		return 0;  // the request line is not complete in these bytes
	const size_t line_end = eol > 0 && p[eol - 1] == '\r' ? eol - 1 : eol;
	if (line_end < i + 11)  // SP, a one-byte target, " HTTP/1.x"
		return 0;
	const uint8_t* v = p + line_end - 9;  // " HTTP/1.x"
	if (!(v[0] == ' ' && v[1] == 'H' && v[2] == 'T' && v[3] == 'T' && v[4] == 'P' && v[5] == '/' && v[6] == '1' &&
	      v[7] == '.'))
		return 0;
	// Header lines until the empty line.
	size_t at = eol + 1;
	while (at < n) {
		size_t e = at;
		while (e < n && p[e] != '\n')
			++e;
		size_t le = e > at && p[e - 1] == '\r' ? e - 1 : e;
		if (le == at)
			return 0;  // end of headers, no Host
		static constexpr char host[] = "host:";
		if (le - at >= 5) {
			bool is_host = true;
			for (size_t k = 0; k < 5 && is_host; ++k)
				is_host = lower(p[at + k]) == host[k];
			if (is_host) {
				if (e >= n)
					return 0;  // the value may continue in the next segment
				size_t b = at + 5;
				while (b < le && (p[b] == ' ' || p[b] == '\t'))
					++b;
				while (le > b && (p[le - 1] == ' ' || p[le - 1] == '\t'))
					--le;
				size_t end = le;
				if (b < le && p[b] == '[') {  // IPv6 literal: [addr]:port
					size_t k = b;
					while (k < le && p[k] != ']')
						++k;
					if (k >= le)
						return 0;
					end = k + 1;
				} else {
					for (size_t k = b; k < le; ++k)
						if (p[k] == ':') {
							end = k;
							break;
						}
				}
				return copy_name(p + b, end - b, out, cap);
			}
		}
		at = e + 1;
	}
	return 0;
}

size_t dns_qname(const uint8_t* p, size_t n, char* out, size_t cap)
{
	reader r{p, n};
	r.skip(2);  // id
	const uint32_t flags = r.u16();
	const uint32_t qdcount = r.u16();
	r.skip(6);  // an, ns, ar counts
	if (!r.ok || (flags & 0x8000) || ((flags >> 11) & 0xF) != 0 || qdcount == 0)
		return 0;  // a response, not a standard query, or no question
	size_t len = 0;
	for (;;) {
		const uint32_t label = r.u8();
		if (!r.ok || (label & 0xC0))
			return 0;  // truncated, or a compression pointer / reserved label type
		if (label == 0)
			break;
		if (!r.has(label))
			return 0;
		const size_t need = len + (len ? 1 : 0) + label;
		if (need > max_name_bytes || need > cap)
			return 0;
		if (len)
			out[len++] = '.';
		for (size_t k = 0; k < label; ++k) {
			const uint8_t c = r.p[r.at + k];
			if (!host_byte(c) || c == '.')
				return 0;
			out[len++] = lower(c);
		}
		r.skip(label);
	}
	return len;
}

namespace {

// Reads the (possibly compressed) name at `at`, lower case, dots between labels, into out; returns its
// length (0 for the root or on any error, with ok cleared on error) and moves `next` past the name as it
// lies at `at`. Pointers must point strictly before the label that holds them, so no loop is possible;
// 16 jumps at most.
size_t read_name(const uint8_t* p, size_t n, size_t at, char* out, size_t cap, size_t& next, bool& ok)
{
	size_t len = 0, pos = at, limit = at;  // pointers must land below `limit`
	bool jumped = false;
	for (int jumps = 0;;) {
		if (pos >= n)
			return ok = false, 0;
		const uint32_t label = p[pos];
		if ((label & 0xC0) == 0xC0) {
			if (pos + 1 >= n || ++jumps > 16)
				return ok = false, 0;
			const size_t target = (label & 0x3F) << 8 | p[pos + 1];
			if (target >= limit)
				return ok = false, 0;
			if (!jumped)
				next = pos + 2;
			jumped = true;
			limit = target;
			pos = target;
			continue;
		}
		if (label & 0xC0)
			return ok = false, 0;  // reserved label types
		if (label == 0) {
			if (!jumped)
				next = pos + 1;
			return len;
		}
		if (label > n - pos - 1)
			return ok = false, 0;
		const size_t need = len + (len ? 1 : 0) + label;
		if (need > max_name_bytes || need > cap)
			return ok = false, 0;
		if (len)
			out[len++] = '.';
		for (size_t k = 0; k < label; ++k) {
			const uint8_t c = p[pos + 1 + k];
			if (!host_byte(c) || c == '.')
				return ok = false, 0;
			out[len++] = lower(c);
		}
		pos += 1 + label;
	}
}

} // namespace

namespace {

// A name's identity for chain membership: FNV-1a over its decoded, lower-case bytes. A forger who
// found two names with one hash would gain nothing: it writes the answer, owners included, anyway.
uint64_t name_hash(const char* name, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; ++i)
		h = (h ^ uint8_t(name[i])) * 0x100000001b3ull;
	return h ^ len;
}

} // namespace

size_t dns_response(const uint8_t* p, size_t n, char* qname, size_t cap, dns_address* addresses,
                    size_t max_addresses, size_t* count)
{
	*count = 0;
	reader r{p, n};
	r.skip(2);  // id
	const uint32_t flags = r.u16();
	const uint32_t qdcount = r.u16();
	const uint32_t ancount = r.u16();
	r.skip(4);  // ns, ar counts
	// QR set, opcode 0 (query), RCODE 0 (no error), exactly one question.
	if (!r.ok || !(flags & 0x8000) || ((flags >> 11) & 0xF) != 0 || (flags & 0xF) != 0 || qdcount != 1)
		return 0;
	bool ok = true;
	size_t at = r.at;
	const size_t qlen = read_name(p, n, at, qname, cap, at, ok);
	if (!ok || qlen == 0 || at + 4 > n)
		return 0;
	at += 4;  // qtype, qclass
	// One pass over the answer records (at most max_records: a name is decoded once per record, so a
	// hostile answer costs a bounded amount of work), then the CNAME chain and the addresses from what
	// it kept.
	constexpr uint32_t max_records = 64;
	struct record {
		uint64_t owner;   // name_hash of the owner
		uint64_t target;  // CNAME: name_hash of the target
		uint32_t ttl;
		uint16_t type;
		uint16_t rdlen;
		uint32_t rdata;  // offset of the address
	};
	record rec[max_records];
	uint32_t nrec = 0;
	char name[max_name_bytes];
	for (uint32_t a = 0; a < ancount && a < max_records; ++a) {
		const size_t olen = read_name(p, n, at, name, sizeof name, at, ok);
		if (!ok || at + 10 > n)
			return 0;
		const uint32_t type = uint32_t(p[at]) << 8 | p[at + 1];
		const uint32_t cls = uint32_t(p[at + 2]) << 8 | p[at + 3];
		const uint32_t ttl = uint32_t(p[at + 4]) << 24 | uint32_t(p[at + 5]) << 16 | uint32_t(p[at + 6]) << 8 | p[at + 7];
		const size_t rdlen = size_t(p[at + 8]) << 8 | p[at + 9];
		at += 10;
		if (rdlen > n - at)
			return 0;
		const bool address = (type == 1 && rdlen == 4) || (type == 28 && rdlen == 16);
		if (cls == 1 && olen && (address || type == 5)) {
			record& x = rec[nrec++];
			x = {name_hash(name, olen), 0, ttl & 0x80000000u ? 0 : ttl, uint16_t(type), uint16_t(rdlen), uint32_t(at)};
			if (type == 5) {
				size_t after = 0;
				const size_t tlen = read_name(p, at + rdlen, at, name, sizeof name, after, ok);
				if (!ok)
					return 0;
				if (tlen == 0)
					--nrec;  // a CNAME to the root leads nowhere
				else
					x.target = name_hash(name, tlen);
			}
		}
		at += rdlen;
	}
	// The names this answer may speak for: the question, then the CNAME targets reached from it (links
	// in any order, at most max_cname_chain).
	uint64_t chain[max_cname_chain + 1] = {name_hash(qname, qlen)};
	size_t names = 1;
	auto in_chain = [&](uint64_t h) { return std::find(chain, chain + names, h) != chain + names; };
	for (bool grew = true; grew && names <= max_cname_chain;) {
		grew = false;
		for (uint32_t i = 0; i < nrec && names <= max_cname_chain; ++i)
			if (rec[i].type == 5 && in_chain(rec[i].owner) && !in_chain(rec[i].target)) {
				chain[names++] = rec[i].target;
				grew = true;
			}
	}
	for (uint32_t i = 0; i < nrec && *count < max_addresses; ++i) {
		if (rec[i].type == 5 || !in_chain(rec[i].owner))
			continue;
		dns_address& d = addresses[(*count)++];
		d.family = rec[i].type == 1 ? 4 : 6;
		std::memset(d.addr, 0, sizeof d.addr);
		std::memcpy(d.addr, p + rec[i].rdata, rec[i].rdlen);
		d.ttl = rec[i].ttl;  // RFC 2181: a TTL with the top bit set means 0
	}
	return qlen;
}

} // namespace portcullis::inspect
