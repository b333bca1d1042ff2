// libFuzzer target for flow-state sync's datagrams (lib/sync/wire.h) and what a peer's records do to a
// flow table (flow/flow_record.h). The input is a datagram. Beyond "no crash, no sanitizer report":
//   - as it came, it is refused (the fuzzer cannot forge the HMAC) unless it is what encode() makes;
//   - signed here, as an authenticated but confused peer would send it: decode() refuses it, or gives
//     the header's count of records, each valid (a state of its protocol);
//   - install() of each record leaves the table no fuller than its capacity and every flow it holds in a
//     valid state; a record decode refused is refused by install() too.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "flow/flow_record.h"
#include "promise.h"
#include "sync/wire.h"

using namespace portcullis;

namespace {

const char key[] = "fuzz-sync shared secret, 24+ bytes";

flow::table_config small_table()
{
	flow::table_config c;
	c.capacity = 64;
	c.tsc_hz = 1'000'000'000;
	return c;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
	sync::header h;
	std::vector<flow::flow_record> records;
	const sync::refusal as_is = sync::decode(data, size, key, h, records);
	if (size < sizeof(sync::header))
		REQUIRE(as_is == sync::refusal::malformed);

	// Signed as a peer would sign it: the header as given, the rest taken as records.
	if (size < sizeof(sync::header))
		return 0;
	std::memcpy(&h, data, sizeof(h));
	const size_t n = std::min((size - sizeof(h)) / sizeof(flow::flow_record), sync::max_records);
	std::vector<flow::flow_record> sent(n);
	if (n)
		std::memcpy(sent.data(), data + sizeof(h), n * sizeof(flow::flow_record));
	std::vector<uint8_t> bytes;
	sync::encode(h, sent.data(), n, key, bytes);
	sync::header got;
	const sync::refusal r = sync::decode(bytes.data(), bytes.size(), key, got, records);
	REQUIRE(r != sync::refusal::bad_auth);
	bool all_valid = true;
	for (const flow::flow_record& s : sent)
		all_valid = all_valid && flow::valid(s);
	if (r == sync::refusal::none) {
		REQUIRE(records.size() == n);
		REQUIRE(got.count == n);
		REQUIRE(all_valid);
		REQUIRE(std::memcmp(got.magic, "PCS1", 4) == 0);
	} else if (std::memcmp(h.magic, "PCS1", 4) == 0 && h.type >= 1 && h.type <= 3) {
		REQUIRE(!all_valid);  // refused only for a record no flow can have
	}

	flow::flow_table t(small_table());
	uint64_t now = 1'000'000'000'000ull;
	for (const flow::flow_record& s : sent) {
		const flow::install_result res = flow::install(t, s, now += 1000);
		if (!flow::valid(s))
			REQUIRE(res == flow::install_result::refused);
	}
	REQUIRE(t.size() <= t.capacity());
	t.for_each([](const flow::flow_entry& e) {
		flow::flow_record check{};
		check.key = e.key;
		check.state = e.state;
		REQUIRE(flow::valid(check));
	});
	return 0;
}
