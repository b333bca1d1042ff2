// The name extractors on byte-exact payloads, every truncation of them, and random bytes; and the
// domain conditions end to end through the scan path.
#include <random>

#include "helpers.h"
#include "inspect/names.h"

using namespace portcullis;
using namespace portcullis::inspect;
using namespace portcullis::inspect::test;
using packet::test::put16;
using packet::test::put8;

namespace {

void put24(bytes& b, uint32_t v)
{
	put8(b, uint8_t(v >> 16));
	put16(b, uint16_t(v));
}

bytes with_len16(const bytes& body)
{
	bytes b;
	put16(b, uint16_t(body.size()));
	b.insert(b.end(), body.begin(), body.end());
	return b;
}

bytes extension(uint16_t type, const bytes& data)
{
	bytes b;
	put16(b, type);
	const bytes l = with_len16(data);
	b.insert(b.end(), l.begin(), l.end());
	return b;
}

// A TLS 1.3-style ClientHello in one record, built field by field (RFC 8446 section 4.1.2), with the
// server_name extension after `before_sni` bytes of another extension.
bytes client_hello(const std::string& sni, size_t before_sni = 0)
{
	bytes hello;
	put16(hello, 0x0303);                          // legacy_version
	for (int i = 0; i < 32; ++i)
		put8(hello, uint8_t(i));                   // random
	put8(hello, 32);                               // legacy_session_id
	for (int i = 0; i < 32; ++i)
		put8(hello, uint8_t(0xA0 + i));
	const bytes suites = with_len16({0x13, 0x01, 0x13, 0x02, 0x13, 0x03, 0xC0, 0x2F});
	hello.insert(hello.end(), suites.begin(), suites.end());
	put8(hello, 1);                                // compression methods: null
	put8(hello, 0);
	bytes exts;
	if (before_sni) {
		const bytes pad = extension(21, bytes(before_sni, 0));  // padding
		exts.insert(exts.end(), pad.begin(), pad.end());
	}
	if (!sni.empty()) {
		bytes entry;
		put8(entry, 0);                            // host_name
		const bytes name = with_len16(bytes(sni.begin(), sni.end()));
		entry.insert(entry.end(), name.begin(), name.end());
		const bytes e = extension(0, with_len16(entry));
		exts.insert(exts.end(), e.begin(), e.end());
	}
	const bytes versions = extension(43, {0x02, 0x03, 0x04});  // supported_versions: TLS 1.3
	exts.insert(exts.end(), versions.begin(), versions.end());
	const bytes el = with_len16(exts);
	hello.insert(hello.end(), el.begin(), el.end());

	bytes hs;
	put8(hs, 1);  // client_hello
	put24(hs, uint32_t(hello.size()));
	hs.insert(hs.end(), hello.begin(), hello.end());
	bytes rec;
	put8(rec, 22);  // handshake
	put16(rec, 0x0301);
	put16(rec, uint16_t(hs.size()));
	rec.insert(rec.end(), hs.begin(), hs.end());
	return rec;
}

bytes dns_query(const std::string& name, uint16_t flags = 0x0100)
{
	bytes b;
	put16(b, 0x1234);
	put16(b, flags);
	put16(b, 1);  // qdcount
	put16(b, 0);
	put16(b, 0);
	put16(b, 0);
	size_t start = 0;
	while (start <= name.size() && !name.empty()) {
		size_t dot = name.find('.', start);
		if (dot == std::string::npos)
			dot = name.size();
		put8(b, uint8_t(dot - start));
		b.insert(b.end(), name.begin() + long(start), name.begin() + long(dot));
		start = dot + 1;
	}
	put8(b, 0);
	put16(b, 1);  // A
	put16(b, 1);  // IN
	return b;
}

// A DNS response to `name` (as dns_query builds it, flags 0x8180) with answer records appended by the
// helpers below; owner names are written as a pointer to the question (offset 12) when `owner` is
// empty, else in full.
struct dns_reply {
	bytes b;
	uint16_t answers = 0;
	explicit dns_reply(const std::string& name, uint16_t flags = 0x8180) : b(dns_query(name, flags)) {}
	void owner(const std::string& name)
	{
		if (name.empty()) {
			put16(b, 0xC00C);
			return;
		}
		size_t start = 0;
		while (start <= name.size()) {
			size_t dot = name.find('.', start);
			if (dot == std::string::npos)
				dot = name.size();
			put8(b, uint8_t(dot - start));
			b.insert(b.end(), name.begin() + long(start), name.begin() + long(dot));
			start = dot + 1;
		}
		put8(b, 0);
	}
	void record(const std::string& owner_name, uint16_t type, uint32_t ttl, const bytes& rdata)
	{
		owner(owner_name);
		put16(b, type);
		put16(b, 1);
		put16(b, uint16_t(ttl >> 16));
		put16(b, uint16_t(ttl));
		put16(b, uint16_t(rdata.size()));
		b.insert(b.end(), rdata.begin(), rdata.end());
		++answers;
		b[6] = uint8_t(answers >> 8);
		b[7] = uint8_t(answers);
	}
	void a(const std::string& owner_name, uint32_t ttl, std::initializer_list<uint8_t> addr) { record(owner_name, 1, ttl, bytes(addr)); }
	void cname(const std::string& owner_name, const std::string& target)
	{
		dns_reply t("");  // encode the target as a name
		t.b.clear();
		t.owner(target);
		record(owner_name, 5, 300, t.b);
	}
};

std::vector<std::string> answers_of(const bytes& b, std::string* qname = nullptr, size_t n = SIZE_MAX)
{
	char name[max_name_bytes];
	dns_address found[16];
	size_t count = 99;
	const size_t len = dns_response(b.data(), std::min(n, b.size()), name, sizeof name, found, 16, &count);
	if (qname)
		*qname = std::string(name, len);
	std::vector<std::string> out;
	for (size_t i = 0; i < count; ++i) {
		char text[64];
		if (found[i].family == 4)
			std::snprintf(text, sizeof text, "%u.%u.%u.%u/%u", found[i].addr[0], found[i].addr[1], found[i].addr[2],
			              found[i].addr[3], found[i].ttl);
		else
			std::snprintf(text, sizeof text, "v6:%02x%02x..%02x/%u", found[i].addr[0], found[i].addr[1], found[i].addr[15],
			              found[i].ttl);
		out.push_back(text);
	}
	return out;
}

template <class F>
std::string run(F f, const bytes& b, size_t n = SIZE_MAX)
{
	char out[max_name_bytes];
	const size_t len = f(b.data(), std::min(n, b.size()), out, sizeof out);
	return std::string(out, len);
}

std::string as_string(const bytes& b) { return std::string(b.begin(), b.end()); }

} // namespace

TEST_CASE("TLS ClientHello SNI", "[names]")
{
	const bytes ch = client_hello("WWW.Example.com");
	CHECK(run(tls_sni, ch) == "www.example.com");
	CHECK(run(tls_sni, client_hello("")) == "");
	CHECK(run(tls_sni, client_hello("a.example", 300)) == "a.example");
	// Every truncation: the name appears only once all of it is there, and nothing reads past n.
	const size_t full = ch.size() - 7;  // the supported_versions extension follows the name
	for (size_t n = 0; n < ch.size(); ++n)
		CHECK(run(tls_sni, ch, n) == (n >= full ? "www.example.com" : ""));
	bytes not_hello = ch;
	not_hello[5] = 2;  // ServerHello
	CHECK(run(tls_sni, not_hello) == "");
	bytes bad_len = ch;
	bad_len[ch.size() - 5] = 0xFF;  // supported_versions length runs past the end: the SNI still counts
	CHECK(run(tls_sni, bad_len) == "www.example.com");
}

TEST_CASE("HTTP/1 Host header", "[names]")
{
	CHECK(run(http_host, to_bytes("GET / HTTP/1.1\r\nHost: WWW.Example.org:8080\r\nAccept: */*\r\n\r\n")) ==
	      "www.example.org");
	CHECK(run(http_host, to_bytes("POST /x HTTP/1.0\r\nUser-Agent: a\r\nhost:\texample.net \r\n\r\n")) == "example.net");
	CHECK(run(http_host, to_bytes("GET / HTTP/1.1\r\nHost: [2001:db8::1]:80\r\n\r\n")) == "[2001:db8::1]");
	CHECK(run(http_host, to_bytes("GET / HTTP/1.1\r\nAccept: */*\r\n\r\nHost: late.example\r\n")) == "");
	CHECK(run(http_host, to_bytes("GET / HTTP/2\r\nHost: a.example\r\n\r\n")) == "");
	CHECK(run(http_host, to_bytes("get / HTTP/1.1\r\nHost: a.example\r\n\r\n")) == "");
	CHECK(run(http_host, to_bytes("GET / HTTP/1.1\r\nHost: a.exam")) == "");  // may continue
	const bytes req = to_bytes("GET /index.html HTTP/1.1\r\nHost: a.example\r\n\r\n");
	for (size_t n = 0; n < req.size(); ++n)
		CHECK(run(http_host, req, n) == (n >= 43 ? "a.example" : ""));
}

TEST_CASE("DNS query name", "[names]")
{
	CHECK(run(dns_qname, dns_query("Ads.Tracker.NET")) == "ads.tracker.net");
	CHECK(run(dns_qname, dns_query("")) == "");                       // the root
	CHECK(run(dns_qname, dns_query("a.example", 0x8180)) == "");     // a response
	bytes ptr = dns_query("a.example");
	ptr[12] = 0xC0;  // compression pointer
	CHECK(run(dns_qname, ptr) == "");
	bytes runs_past = dns_query("a.example");
	runs_past[14] = 60;  // the second label claims more bytes than there are
	CHECK(run(dns_qname, runs_past) == "");
	const std::string label63(63, 'x');
	CHECK(run(dns_qname, dns_query(label63 + "." + label63 + "." + label63 + "." + std::string(61, 'y'))).size() == 253);
	const bytes q = dns_query("a.example");
	for (size_t n = 0; n < q.size(); ++n)
		CHECK(run(dns_qname, q, n) == (n >= 12 + 11 ? "a.example" : ""));
}

// Found by tests/fuzz/fuzz_names.cc: only one trailing dot was dropped, so "w...." came back as "w..."
// (a name ending in a dot, which names.h rules out and no pattern can match).
TEST_CASE("DNS response addresses: the question's, through CNAME chains, and no one else's", "[names]")
{
	dns_reply r("WWW.Example.com");
	r.a("", 60, {198, 18, 7, 1});
	r.a("", 0x80000001u, {198, 18, 7, 2});  // a TTL with the top bit set is 0 (RFC 2181)
	r.record("", 28, 120, bytes{0x20, 0x01, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9});
	r.a("other.example", 60, {198, 18, 7, 3});  // not the question: ignored
	r.record("", 16, 60, bytes{3, 'a', 'b', 'c'});  // TXT: ignored
	std::string q;
	CHECK(answers_of(r.b, &q) == std::vector<std::string>{"198.18.7.1/60", "198.18.7.2/0", "v6:2001..09/120"});
	CHECK(q == "www.example.com");
	// A CNAME chain, its links in any order: the addresses of its end belong to the question.
	dns_reply c("www.example.com");
	c.a("edge.cdn.example", 20, {198, 18, 8, 1});
	c.cname("cdn.example.net", "edge.cdn.example");
	c.cname("", "cdn.example.net");
	c.a("unrelated.example", 20, {198, 18, 8, 2});
	CHECK(answers_of(c.b) == std::vector<std::string>{"198.18.8.1/20"});
	// Not a usable answer: a query, an error code, two questions, a truncated message.
	dns_reply query("www.example.com", 0x0100);
	query.a("", 60, {198, 18, 7, 1});
	CHECK(answers_of(query.b).empty());
	dns_reply nx("www.example.com", 0x8183);
	nx.a("", 60, {198, 18, 7, 1});
	CHECK(answers_of(nx.b).empty());
	bytes two = r.b;
	two[5] = 2;
	CHECK(answers_of(two).empty());
	for (size_t cut = 12; cut < r.b.size(); ++cut)
		CHECK(answers_of(r.b, nullptr, cut).empty());
}

TEST_CASE("DNS response work is bounded: a chain in reverse order, and only the first 64 records", "[names]")
{
	// Eight CNAME links listed last to first, then the address: found (each name decoded once).
	dns_reply c("q.example");
	for (int i = 8; i >= 1; --i)
		c.cname(i == 1 ? "" : "c" + std::to_string(i - 1) + ".example", "c" + std::to_string(i) + ".example");
	c.a("c8.example", 60, {198, 18, 9, 1});
	CHECK(answers_of(c.b) == std::vector<std::string>{"198.18.9.1/60"});
	// An address after 64 other records is not read.
	dns_reply many("q.example");
	for (int i = 0; i < 64; ++i)
		many.record("", 16, 60, bytes{1, 'x'});  // TXT
	many.a("", 60, {198, 18, 9, 2});
	CHECK(answers_of(many.b).empty());
	dns_reply fewer("q.example");
	for (int i = 0; i < 63; ++i)
		fewer.record("", 16, 60, bytes{1, 'x'});
	fewer.a("", 60, {198, 18, 9, 2});
	CHECK(answers_of(fewer.b) == std::vector<std::string>{"198.18.9.2/60"});
}

TEST_CASE("DNS response names: compression pointers must point back, and loops end", "[names]")
{
	dns_reply r("a.example");
	r.a("", 60, {198, 18, 7, 1});
	bytes forward = r.b;
	const size_t owner_at = forward.size() - 16;  // the answer's owner pointer
	REQUIRE(forward[owner_at] == 0xC0);
	forward[owner_at + 1] = uint8_t(owner_at);  // points at itself
	CHECK(answers_of(forward).empty());
	forward[owner_at + 1] = uint8_t(owner_at + 2);  // points forward
	CHECK(answers_of(forward).empty());
	// A CNAME whose target points back to the question: a chain to itself, no addresses added twice.
	dns_reply loop("a.example");
	loop.record("", 5, 60, bytes{0xC0, 0x0C});
	loop.a("", 60, {198, 18, 7, 1});
	CHECK(answers_of(loop.b) == std::vector<std::string>{"198.18.7.1/60"});
}

TEST_CASE("a name with an empty label is no name", "[names]")
{
	CHECK(run(tls_sni, client_hello("www.example.com.")) == "www.example.com");
	CHECK(run(tls_sni, client_hello("www.example.com..")) == "");
	CHECK(run(tls_sni, client_hello("w....")) == "");
	CHECK(run(tls_sni, client_hello(".example.com")) == "");
	CHECK(run(tls_sni, client_hello(".")) == "");
	CHECK(run(http_host, to_bytes("GET / HTTP/1.1\r\nHost: a..example:80\r\n\r\n")) == "");
	CHECK(run(http_host, to_bytes("GET / HTTP/1.1\r\nHost: a.example..\r\n\r\n")) == "");
	CHECK(run(http_host, to_bytes("GET / HTTP/1.1\r\nHost: a.example.\r\n\r\n")) == "a.example");
}

TEST_CASE("the extractors survive random and mutated bytes", "[names][fuzz]")
{
	std::mt19937 rng(11);
	dns_reply reply("a.b.example");
	reply.cname("", "c.example");
	reply.a("c.example", 60, {198, 18, 7, 1});
	const bytes seeds[] = {client_hello("www.example.com", 40), dns_query("a.b.example"),
	                       to_bytes("GET / HTTP/1.1\r\nHost: a.example\r\n\r\n"), reply.b};
	char out[max_name_bytes];
	for (int i = 0; i < 100000; ++i) {
		bytes b = seeds[i % 4];
		const int flips = 1 + int(rng() % 4);
		for (int k = 0; k < flips; ++k)
			b[rng() % b.size()] = uint8_t(rng());
		b.resize(rng() % (b.size() + 1));
		// The input is copied to an exact-size heap buffer so a sanitizer build catches any over-read.
		std::unique_ptr<uint8_t[]> exact(new uint8_t[b.size() + 1]);
		std::copy(b.begin(), b.end(), exact.get());
		for (auto f : {tls_sni, http_host, dns_qname}) {
			const size_t n = f(exact.get(), b.size(), out, sizeof out);
			REQUIRE(n <= max_name_bytes);
		}
		dns_address found[4];
		size_t count = 0;
		REQUIRE(dns_response(exact.get(), b.size(), out, sizeof out, found, 4, &count) <= max_name_bytes);
		REQUIRE(count <= 4);
	}
}

TEST_CASE("domain conditions through the scan path", "[inspect][names]")
{
	harness h("drop out tcp sni \"*.example.com\"\n"
	          "reject out tcp http-host \"example.org\"\n"
	          "drop out udp dns-query \"*.tracker.net\"\n"
	          "allow out\n");
	// A TLS flow to port 443.
	h.open(1, tcp_frame(true, 1000, "", 0x02, 443));
	auto r = h.packet(1, tcp_frame(true, 1001, as_string(client_hello("Mail.EXAMPLE.com")), 0x18, 443));
	CHECK(r.st == state::matched);
	CHECK(r.rule == 0);
	h.open(2, tcp_frame(true, 1000, "", 0x02, 443));
	CHECK(h.packet(2, tcp_frame(true, 1001, as_string(client_hello("example.com")), 0x18, 443)).st == state::inspecting);
	CHECK(h.stats().names[0] == 2);
	// HTTP: the Host header, exact.
	h.open(3, tcp_frame(true, 1000, "", 0x02));
	CHECK(h.packet(3, tcp_frame(true, 1001, "GET / HTTP/1.1\r\nHost: Example.ORG\r\n\r\n")).rule == 1);
	h.open(4, tcp_frame(true, 1000, "", 0x02));
	CHECK(h.packet(4, tcp_frame(true, 1001, "GET / HTTP/1.1\r\nHost: www.example.org\r\n\r\n")).st == state::inspecting);
	// DNS: the first datagram of the flow is the query.
	CHECK(h.open(5, udp_frame(true, as_string(dns_query("x.y.tracker.net")))).rule == 2);
	CHECK(h.open(6, udp_frame(true, as_string(dns_query("tracker.net")))).st == state::inspecting);
}
