// The set command (server.h, docs/control.md "set"): list, show and change the active rules' file sets.
#include "control/server.h"

#include "control/server_internal.h"
#include "rules/tuple.h"

namespace portcullis::control {
namespace {

using json = nlohmann::json;
using detail::ok_response;

// "198.18.0.0/24", or the address alone for a single one. A range that is no prefix (left after a
// delete split an add) is shown as "lo-hi".
std::string format_range(bool v6, u128 lo, u128 hi)
{
	const unsigned bits = v6 ? 128 : 32;
	const u128 size_minus_1 = hi - lo;
	if (size_minus_1 == 0)
		return rules::format_address(v6, lo);
	unsigned host = 0;
	while (host < bits && (size_minus_1 >> host) & 1)
		++host;
	const bool prefix = (host == bits || (size_minus_1 >> host) == 0) && (lo & size_minus_1) == 0;
	if (prefix)
		return rules::format_address(v6, lo) + "/" + std::to_string(bits - host);
	return rules::format_address(v6, lo) + "-" + rules::format_address(v6, hi);
}

json describe(const dataplane::compiled_policy& pol, uint32_t i)
{
	const sets::live_set& s = *pol.sets[i];
	const rules::address_set& def = pol.rules.sets[i];
	json j;
	j["name"] = s.name();
	j["file"] = def.file;
	j["base_entries"] = s.base_entries();
	j["base_ranges"] = s.base_ranges();
	j["adds"] = s.adds().size();
	j["deletes"] = s.deletes4().size() + s.deletes6().size();
	j["memory_bytes"] = s.memory_bytes();
	j["hits"] = pol.set_hit_total(i);
	const auto& c = s.counters();
	j["counters"] = {{"adds", c.adds}, {"deletes", c.deletes}, {"expiries", c.expiries},
	                 {"loads", c.loads}, {"flushes", c.flushes}, {"versions", c.versions}};
	json tested = json::array();
	for (const auto& t : pol.rules.set_tests)
		if (t.set == i)
			tested.push_back(t.dst ? "to" : "from");
	j["tested"] = tested;
	return j;
}

} // namespace

json server::cmd_set(const parsed_request& req, const peer& who)
{
	const dataplane::compiled_policy& pol = rt_.policy();
	if (req.set_op == "list") {
		json list = json::array();
		for (uint32_t i = 0; i < pol.sets.size(); ++i)
			list.push_back(describe(pol, i));
		json r = ok_response();
		r["generation"] = pol.generation;
		r["sets"] = std::move(list);
		return r;
	}
	const int index = pol.find_set(req.set_name);
	if (req.set_op == "show") {
		if (index < 0)
			return error_response(error_code::failed, "no file set '" + req.set_name + "' in the active rules");
		json r = ok_response();
		r["set"] = describe(pol, uint32_t(index));
		const sets::live_set& s = *pol.sets[size_t(index)];
		const uint64_t now = runtime::set_clock_ms();
		json adds = json::array();
		for (const auto& [key, a] : s.adds()) {
			json e;
			e["address"] = format_range(a.v6, a.lo, a.hi);
			if (a.expires_ms)
				e["expires_in_s"] = a.expires_ms > now ? double(a.expires_ms - now) / 1000 : 0.0;
			else
				e["expires_in_s"] = nullptr;
			adds.push_back(std::move(e));
		}
		json deletes = json::array();
		for (const auto& d : s.deletes4())
			deletes.push_back(format_range(false, d.lo, d.hi));
		for (const auto& d : s.deletes6())
			deletes.push_back(format_range(true, d.lo, d.hi));
		r["added"] = std::move(adds);
		r["deleted"] = std::move(deletes);
		return r;
	}
	runtime::set_report rep;
	const address_prefix& p = req.set_address;
	const unsigned bits = p.v6 ? 128 : 32;
	const u128 host = p.len == 0 ? (p.v6 ? ~u128(0) : u128(0xFFFFFFFFu)) : (u128(1) << (bits - p.len)) - 1;
	const u128 lo = p.addr & ~host, hi = lo | host;
	if (req.set_op == "add")
		rep = rt_.set_add(req.set_name, p.v6, lo, hi, req.set_timeout_s * 1000);
	else if (req.set_op == "del")
		rep = rt_.set_del(req.set_name, p.v6, lo, hi);
	else if (req.set_op == "flush")
		rep = rt_.set_flush(req.set_name);
	else if (!detail::readable_by(who.uid, who.gid, who.groups, req.path))
		return error_response(error_code::not_readable,
		                      "set load: " + req.path + " is not readable by uid " + std::to_string(who.uid));
	else
		rep = rt_.set_load(req.set_name, req.path, config_.parse);
	if (!rep.ok) {
		json e = error_response(rep.errors.empty() ? error_code::failed : error_code::rules, rep.error);
		if (!rep.errors.empty()) {
			json errs = json::array();
			for (const auto& d : rep.errors)
				errs.push_back({{"file", d.loc.file}, {"line", d.loc.line}, {"column", d.loc.column}, {"message", d.message}});
			e["errors"] = std::move(errs);
		}
		return e;
	}
	json r = ok_response();
	r["set"] = describe(pol, uint32_t(index));
	r["publish_us"] = rep.publish_us;
	if (req.set_op == "load")
		r["entries"] = rep.entries;
	return r;
}

} // namespace portcullis::control
