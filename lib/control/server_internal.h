// Helpers shared by the control server's files (server*.cc): the parts of a response several commands build.
// Private to lib/control.
#pragma once

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

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

// One flow as the flows command lists it: endpoints opener first, state, age, idle, traffic each way,
// the rule that allowed it. e is the caller's copy of a live entry (the owner may be writing that one).
nlohmann::json flow_json(const flow::flow_entry& e, uint32_t worker, const flow::flow_table& table, uint64_t now);

// A pending commit-confirmed rollback (push --confirm), or null when none is pending.
inline nlohmann::json rollback_of(const runtime& rt)
{
	const runtime::rollback_state r = rt.rollback();
	if (!r.pending)
		return nullptr;
	return {{"deadline_unix", r.deadline_unix},
	        {"seconds_left", std::max(0.0, r.deadline - runtime::steady_seconds())},
	        {"confirms_generation", r.confirms_generation},
	        {"restores_generation", r.restores_generation}};
}

// Would the peer's own permissions let it read `file`? The daemon reads as root; push and set load must
// not read (or quote in errors) a file on behalf of a peer that could not.
inline bool readable_by(uid_t uid, gid_t gid, const std::vector<gid_t>& groups, const std::string& file)
{
	if (uid == 0)
		return true;
	struct stat st{};
	if (::stat(file.c_str(), &st) != 0)
		return true;  // the reader reports it missing; there is nothing to leak
	if (st.st_uid == uid)
		return (st.st_mode & S_IRUSR) != 0;
	if (st.st_gid == gid || std::find(groups.begin(), groups.end(), st.st_gid) != groups.end())
		return (st.st_mode & S_IRGRP) != 0;
	return (st.st_mode & S_IROTH) != 0;
}

} // namespace portcullis::control::detail
