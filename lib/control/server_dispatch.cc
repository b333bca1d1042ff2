// Request dispatch (server.h): one request line decoded, answered by its command, and counted.
#include "control/server.h"

#include <exception>
#include <string>

namespace portcullis::control {

using json = nlohmann::json;

nlohmann::json server::handle_line(const std::string& line)
{
	bool close = false;
	return handle(line, peer{}, close);
}

json server::handle(const std::string& line, const peer& who, bool& close)
{
	++counters_.requests;
	decode_result d = decode_request(line);
	if (!d.req) {
		++counters_.failed;
		if (d.protocol_error) {
			++counters_.protocol_errors;
			close = true;
		}
		return std::move(d.error);
	}
	const parsed_request& req = *d.req;
	json resp;
	try {
		switch (req.cmd) {
		case command::push: resp = cmd_push(req, who); break;
		case command::rules: resp = cmd_rules(); break;
		case command::flows: resp = cmd_flows(req); break;
		case command::flush_flows: resp = cmd_flush_flows(); break;
		case command::stats: resp = cmd_stats(); break;
		case command::explain: resp = cmd_explain(req); break;
		case command::set: resp = cmd_set(req, who); break;
		case command::confirm: resp = cmd_confirm(); break;
		case command::sync: resp = cmd_sync(); break;
		case command::sync_promote: resp = cmd_sync_promote(); break;
		}
	} catch (const std::exception& e) {
		resp = error_response(error_code::failed, std::string("internal error: ") + e.what());
	}
	if (resp.value("ok", false) == false)
		++counters_.failed;
	if (d.id)
		resp["id"] = std::move(*d.id);
	return resp;
}

} // namespace portcullis::control
