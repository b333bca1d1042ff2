// State sync's datagrams (wire.h). The HMAC is OpenSSL's; the comparison is constant-time.
#include "sync/wire.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstring>

namespace portcullis::sync {

namespace {

constexpr char magic[4] = {'P', 'C', 'S', '1'};

void mac_of(const uint8_t* data, size_t len, std::string_view key, uint8_t* mac)
{
	unsigned int mac_len = 0;
	HMAC(EVP_sha256(), key.data(), int(key.size()), data, len, mac, &mac_len);
}

} // namespace

uint32_t endpoint_id(const std::string& address, uint16_t port)
{
	uint32_t h = 2166136261u;  // FNV-1a
	for (const char c : address + ":" + std::to_string(port))
		h = (h ^ uint8_t(c)) * 16777619u;
	return h;
}

header make_header(message_type type, uint64_t boot, uint64_t peer_boot)
{
	header h{};
	std::memcpy(h.magic, magic, sizeof(magic));
	h.type = uint8_t(type);
	h.boot = boot;
	h.peer_boot = peer_boot;
	return h;
}

void encode(const header& h, const flow::flow_record* records, size_t n, std::string_view key, std::vector<uint8_t>& out)
{
	header copy = h;
	copy.count = uint16_t(n);
	const size_t body = sizeof(header) + n * sizeof(flow::flow_record);
	out.resize(body + mac_bytes);
	std::memcpy(out.data(), &copy, sizeof(header));
	if (n)
		std::memcpy(out.data() + sizeof(header), records, n * sizeof(flow::flow_record));
	mac_of(out.data(), body, key, out.data() + body);
}

refusal decode(const uint8_t* data, size_t len, std::string_view key, header& h, std::vector<flow::flow_record>& records)
{
	if (len < sizeof(header) + mac_bytes || len > max_datagram || std::memcmp(data, magic, sizeof(magic)) != 0)
		return refusal::malformed;
	const size_t body = len - mac_bytes;
	if ((body - sizeof(header)) % sizeof(flow::flow_record) != 0)
		return refusal::malformed;
	uint8_t mac[EVP_MAX_MD_SIZE];
	mac_of(data, body, key, mac);
	if (CRYPTO_memcmp(mac, data + body, mac_bytes) != 0)
		return refusal::bad_auth;
	std::memcpy(&h, data, sizeof(header));
	const size_t n = (body - sizeof(header)) / sizeof(flow::flow_record);
	if (h.count != n || (h.type != uint8_t(message_type::hello) && h.type != uint8_t(message_type::data) &&
	                     h.type != uint8_t(message_type::ack)))
		return refusal::malformed;
	records.resize(n);
	if (n)
		std::memcpy(records.data(), data + sizeof(header), n * sizeof(flow::flow_record));
	// Authenticated is not well-formed: a peer's bug must not index tables with a state out of range.
	for (const flow::flow_record& r : records)
		if (!flow::valid(r))
			return refusal::malformed;
	return refusal::none;
}

} // namespace portcullis::sync
