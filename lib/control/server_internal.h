// Helpers shared by the control server's files (server*.cc): the parts of a response several commands build.
// Private to lib/control.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "control/protocol.h"
#include "control/runtime.h"

namespace portcullis::control::detail {

inline nlohmann::json ok_response()
{
	return {{"v", protocol_version}, {"ok", true}};
}

// Where the active rules came from; `configured` is what a restart or SIGHUP loads (runtime.h).
inline nlohmann::json source_of(const runtime& rt)
{
	return {{"origin", std::string(origin_name(rt.source().origin))}, {"file", rt.source().file},
	        {"since_unix", rt.source().since_unix}, {"configured", rt.configured_file()},
	        {"revision", rt.source().revision}};
}

} // namespace portcullis::control::detail
