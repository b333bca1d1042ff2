// libFuzzer target for the daemon's side of the control protocol: the input is one request line as a
// client would write it, decoded by decode_request (lib/control/request.h), the function
// server::handle_line runs first on every line, without the socket, the EAL or a runtime.
// Beyond "no crash, no exception, no sanitizer report", it checks the decoder's promises:
//   - exactly one of request and error; an error is a response {"v":1,"ok":false,"code","error"} with a
//     code from protocol.h, and it closes the connection exactly for the codes docs/control.md says;
//   - the "id" of a request object comes back in its error response;
//   - every response prints (dump() throws on bad UTF-8, and the server prints outside any try);
//   - a decoded request holds what the server relies on: an absolute path or a text for push, a flow
//     that prints back in the explain syntax and parses again to the same tuple.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "control/protocol.h"
#include "promise.h"
#include "control/request.h"
#include "rules/tuple.h"

using namespace portcullis;
using namespace portcullis::control;

namespace {

bool known_code(const std::string& c)
{
	for (const char* k : {error_code::bad_request, error_code::unsupported_version, error_code::unknown_command,
	                      error_code::rules, error_code::bad_flow, error_code::failed})
		if (c == k)
			return true;
	return false;
}

bool same(const rules::flow_tuple& a, const rules::flow_tuple& b)
{
	return a.v6 == b.v6 && a.src == b.src && a.dst == b.dst && a.sport == b.sport && a.dport == b.dport &&
	       a.proto == b.proto && a.tcp_flags == b.tcp_flags && a.dir == b.dir;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
	const std::string_view line(reinterpret_cast<const char*>(data), size);
	const decode_result d = decode_request(line);
	REQUIRE(d.req.has_value() == d.error.is_null());
	if (!d.req) {
		const auto& e = d.error;
		REQUIRE(e.is_object() && e.value("v", 0) == protocol_version && e.value("ok", true) == false);
		REQUIRE(e.contains("code") && e["code"].is_string() && known_code(e["code"].get<std::string>()));
		REQUIRE(e.contains("error") && e["error"].is_string() && !e["error"].get<std::string>().empty());
		const std::string code = e["code"].get<std::string>();
		REQUIRE(d.protocol_error == (code == error_code::bad_request || code == error_code::unsupported_version ||
		                             code == error_code::unknown_command));
		REQUIRE(!d.id || (e.contains("id") && e["id"] == *d.id));
		(void)e.dump();
		return 0;
	}
	const parsed_request& r = *d.req;
	switch (r.cmd) {
	case command::push:
		REQUIRE(r.path.empty() || r.path[0] == '/');
		break;
	case command::explain: {
		const std::string shown = rules::format(r.flow);
		const auto again = rules::parse_tuple(shown);
		REQUIRE(again.value && same(*again.value, r.flow));
		break;
	}
	case command::flows:
		if (r.filter.address)
			REQUIRE(r.filter.address->len <= (r.filter.address->v6 ? 128u : 32u));
		break;
	default:
		break;
	}
	if (d.id)
		(void)d.id->dump();
	return 0;
}
