// libFuzzer target for the packet parser: the input is one frame. It is parsed whole and as a multi-
// segment mbuf would present it (first half contiguous), with and without the IPv4 checksum check.
// Beyond "no crash, no out-of-bounds read" (run it under ASan/UBSan), it checks the record's promises:
// offsets and lengths of a parsed frame lie within it, and a frame that parses from its first segment
// parses identically from the whole, and the IPv4 TCP/UDP fast path gives what the general parser gives.
//
// Built by meson with -Dfuzz=true (tests/fuzz/meson.build) and run as the test fuzz-packet; by hand:
//   build-fuzz/tests/fuzz/fuzz-packet -max_total_time=600 CORPUS_DIR (a copy of tests/fuzz/corpus/packet)
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "packet/packet.h"

using namespace portcullis::packet;

namespace {

void check(const parsed& p, uint32_t len)
{
	if (to_string(p.reason) == "unknown" || size_t(p.kind) >= packet_kind_count)
		std::abort();
	if (!p.ok() || p.family == 0)
		return;
	if (uint32_t(p.l3_offset) + p.l3_length > len || p.l4_offset > p.payload_offset ||
	    uint32_t(p.payload_offset) + p.payload_length > uint32_t(p.l3_offset) + p.l3_length)
		std::abort();
	if (p.is_non_first_fragment() && (p.sport != 0 || p.dport != 0))
		std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
	if (size > 65535 + 64)
		return 0;
	const uint32_t len = uint32_t(size);
	for (const bool verify : {false, true}) {
		const parse_options opt{.verify_ipv4_checksum = verify};
		parsed whole;
		parse(data, len, whole, opt);
		check(whole, len);

		parsed first;
		parse_first_segment(data, len / 2, len, first, opt);
		check(first, len);
		if (first.ok() && std::memcmp(&first, &whole, sizeof whole) != 0)
			std::abort();

		parse_options general_opt = opt;
		general_opt.general_only = true;
		for (const uint32_t contiguous : {len, len / 2}) {
			parsed fast, general;
			parse_first_segment(data, contiguous, len, fast, opt);
			parse_first_segment(data, contiguous, len, general, general_opt);
			if (std::memcmp(&fast, &general, sizeof fast) != 0)
				std::abort();
		}
	}
	return 0;
}
