// bench/pipeline/traffic.h: the captures and the rule set of bench-pipeline's generated cases
// (established_64b, new_flows_64b, imix_1m), written by the bench itself. Hosts are in the RFC 2544 range
// only: the inside 198.18.1.0/24 (server 198.18.1.10, workstations around it), the outside 198.19.0.0/16.
#pragma once

#include <cstdint>
#include <string>

namespace portcullis::bench::pipeline {

struct capture_pair {
	std::string setup;  // replayed once before measuring (empty: none)
	std::string data;   // replayed in a loop: the measured traffic, and testpmd's
	uint64_t setup_packets = 0, data_packets = 0;
	uint32_t max_frame = 0;  // the largest frame of both: what an mbuf must hold to replay them
};

// `flows` TCP connections through gateway.rules, half inbound to the server's ssh/http/https, half
// outbound to https: the setup capture holds their handshakes (all SYNs, then SYN-ACKs, then ACKs), the
// data capture one 64-byte segment per connection, from the opener for even flows and from the responder
// for odd ones, in random order.
capture_pair established(uint32_t flows, uint64_t seed);

// `syns` distinct SYNs from outside clients to the server's http port, in random order: every packet
// opens a flow (when the table is smaller than `syns`, the flow a SYN opened has been evicted before it
// comes round again).
capture_pair new_flows(uint32_t syns, uint64_t seed);

// `flows` UDP flows from inside hosts to outside servers on https (QUIC-like), opened by a setup capture
// of one 64-byte packet each; the data capture holds one packet each of `looped` of them, picked at
// random, in random order, with simple-IMIX frame sizes: 64, 594 and 1518 bytes on the wire at 7:4:1.
// (A setup capture is read from its file as it goes; a looped one is held in mbufs, 4 KiB each here, so
// looping all of a million flows would take 4 GB and seconds to load per process.)
capture_pair imix(uint32_t flows, uint32_t looped, uint64_t seed);

// A rule file of `count` generated drop rules (random prefixes outside 198.18.0.0/15, port ranges,
// TCP or UDP, both directions) followed by an include of `base` (gateway.rules): a large classifier
// that the bench traffic crosses without matching until the base rules. Returns the file's path.
std::string large_rule_set(uint32_t count, const std::string& base, uint64_t seed);

} // namespace portcullis::bench::pipeline
