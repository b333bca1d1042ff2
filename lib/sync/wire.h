// State sync's datagrams (sync.h): a header, flow records, and an HMAC-SHA256 over both under the
// peers' shared key. A datagram that is short, not ours, or whose HMAC does not verify is refused
// before any field of it is used.
//
// Threads: any; no state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "flow/flow_record.h"

namespace portcullis::sync {

// Below a 1500-byte MTU with IPv6 and UDP headers.
inline constexpr size_t max_datagram = 1400;
inline constexpr size_t mac_bytes = 32;

enum class message_type : uint8_t {
	hello = 1,  // I am here (every half second): who I am (boot), who I think you are (peer_boot)
	data = 2,   // records of the sender's stream to this peer, in order by seq
	ack = 3,    // the receiver has applied the sender's stream up to seq
};

namespace message_flag {
inline constexpr uint8_t bulk_begin = 1;  // a bulk sync starts: bulk_total flows follow
inline constexpr uint8_t bulk_end = 2;    // the bulk sync is complete
}

struct header {
	char magic[4];       // "PCS1"
	uint8_t type;        // message_type
	uint8_t flags;       // message_flag
	uint16_t count;      // flow records after the header
	uint64_t boot;       // the sender's boot id (its start time in ns: higher is newer)
	uint64_t peer_boot;  // the receiver's boot id as the sender knows it, 0 before it has heard one
	uint32_t stream;     // data: the sender's stream to this receiver; ack: the receiver's stream acked
	uint32_t seq;        // data: this datagram's number in its stream (from 1); ack: all up to here applied
	uint32_t bulk_total; // bulk_begin: how many flows the bulk sync sends
	uint32_t reserved;
	// Who sends, and to whom (endpoint_id of each one's sync.listen), under the HMAC: a datagram sent back
	// to its sender, or to another peer, is not taken for one of the peer's own.
	uint32_t sender;
	uint32_t receiver;
};
static_assert(sizeof(header) == 48);

inline constexpr size_t max_records = (max_datagram - sizeof(header) - mac_bytes) / sizeof(flow::flow_record);

// Writes the datagram into out (cleared first); n <= max_records.
void encode(const header& h, const flow::flow_record* records, size_t n, std::string_view key, std::vector<uint8_t>& out);

enum class refusal : uint8_t { none, malformed, bad_auth };

// Checks a datagram and reads it: h and records (count of them) when none.
refusal decode(const uint8_t* data, size_t len, std::string_view key, header& h, std::vector<flow::flow_record>& records);

// A header with the magic filled in.
header make_header(message_type type, uint64_t boot, uint64_t peer_boot);

// An appliance's id in headers: a hash of its sync address and port.
uint32_t endpoint_id(const std::string& address, uint16_t port);

} // namespace portcullis::sync
