// libFuzzer target for the payload name extractors (lib/inspect/names.h): the input is the first payload
// of a flow, handed to tls_sni, http_host, dns_qname and dns_response alike. Beyond "no crash, no out-of-bounds read
// or write" (the output buffer is a heap block of exactly `cap` bytes, so ASan sees one byte too many),
// it checks names.h's promises:
//   - a name is at most max_name_bytes and at most cap, lower case, of host-name bytes, no trailing dot;
//   - it comes from the input: TLS and HTTP names are a run of input bytes (caselessly), a DNS name is
//     the question's labels at offset 12 joined by dots;
//   - "does not fit" means 0: with cap exactly the name's length the same name comes back, one less
//     gives 0.
//   - a ClientHello or request cut short yields the same name or none, never another one.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

#include "inspect/names.h"
#include "promise.h"

using namespace portcullis::inspect;

namespace {

using extractor = size_t (*)(const uint8_t*, size_t, char*, size_t);

char lower(uint8_t c) { return char(c >= 'A' && c <= 'Z' ? c + 32 : c); }

// Runs f with an output block of exactly cap bytes; returns the name (empty for none).
std::string run(extractor f, const uint8_t* p, size_t n, size_t cap)
{
	std::unique_ptr<char[]> out(new char[cap ? cap : 1]);
	const size_t len = f(p, n, cap ? out.get() : nullptr, cap);
	REQUIRE(len <= cap && len <= max_name_bytes);
	return std::string(out.get(), len);
}

bool occurs_caselessly(std::string_view name, const uint8_t* p, size_t n)
{
	for (size_t at = 0; at + name.size() <= n; ++at) {
		size_t k = 0;
		while (k < name.size() && lower(p[at + k]) == name[k])
			++k;
		if (k == name.size())
			return true;
	}
	return false;
}

// The question name's labels, lower-cased and joined, straight from the wire.
bool is_question_name(std::string_view name, const uint8_t* p, size_t n)
{
	size_t at = 12, k = 0;
	while (at < n && p[at] != 0) {
		const size_t label = p[at++];
		if (k > 0) {
			if (k >= name.size() || name[k++] != '.')
				return false;
		}
		for (size_t i = 0; i < label; ++i)
			if (at + i >= n || k >= name.size() || lower(p[at + i]) != name[k++])
				return false;
		at += label;
	}
	return at < n && k == name.size();
}

void check(extractor f, bool dns, const uint8_t* p, size_t n)
{
	const std::string name = run(f, p, n, max_name_bytes);
	// A bigger buffer changes nothing: the bound is max_name_bytes.
	REQUIRE(run(f, p, n, max_name_bytes + 64) == name);
	if (name.empty())
		return;
	for (const char c : name)
		REQUIRE(c > 0x20 && c < 0x7f && !(c >= 'A' && c <= 'Z'));
	REQUIRE(name.back() != '.');
	REQUIRE(dns ? is_question_name(name, p, n) : occurs_caselessly(name, p, n));
	REQUIRE(run(f, p, n, name.size()) == name);
	REQUIRE(run(f, p, n, name.size() - 1).empty());
	// Cut short: the same name or none.
	for (const size_t cut : {n / 2, n - 1}) {
		const std::string part = run(f, p, cut, max_name_bytes);
		REQUIRE(part.empty() || part == name);
	}
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
	check(tls_sni, false, data, size);
	check(http_host, false, data, size);
	check(dns_qname, true, data, size);
	// dns_response: bounded output, a name of host bytes, addresses only with a name, and the same
	// answer whatever room is left after the records it found.
	char name[max_name_bytes];
	dns_address found[8];
	size_t count = 0;
	const size_t len = dns_response(data, size, name, sizeof name, found, 8, &count);
	REQUIRE(len <= max_name_bytes && count <= 8);
	REQUIRE(len > 0 || count == 0);
	for (size_t i = 0; i < len; ++i)
		REQUIRE(name[i] > 0x20 && name[i] < 0x7f && !(name[i] >= 'A' && name[i] <= 'Z'));
	for (size_t i = 0; i < count; ++i)
		REQUIRE((found[i].family == 4 || found[i].family == 6) && found[i].ttl <= 0x7FFFFFFFu);
	return 0;
}
