// Request decoding (request.h): the checks server.cc used to make inline, in the same order and with the
// same messages, plus the nesting bound.
#include "control/request.h"

#include <arpa/inet.h>

#include <algorithm>

#include "control/protocol.h"

namespace portcullis::control {
namespace {

using json = nlohmann::json;

// A failure of the request's shape or types, answered with error_code::bad_request.
struct bad_field {
	std::string message;
};

std::optional<uint8_t> proto_number(const json& v)
{
	if (v.is_number_unsigned() && v.get<uint64_t>() <= 255)
		return uint8_t(v.get<uint64_t>());
	if (!v.is_string())
		return std::nullopt;
	const std::string s = v.get<std::string>();
	if (s == "tcp") return 6;
	if (s == "udp") return 17;
	if (s == "icmp") return 1;
	if (s == "icmp6" || s == "ipv6-icmp" || s == "icmpv6") return 58;
	if (!s.empty() && s.size() <= 3 && s.find_first_not_of("0123456789") == std::string::npos && std::stoul(s) <= 255)
		return uint8_t(std::stoul(s));
	return std::nullopt;
}

// The deepest nesting of arrays and objects in a JSON text, found without parsing it: brackets inside
// strings do not count. A malformed text gives some number and then fails to parse anyway.
size_t nesting_depth(std::string_view s)
{
	size_t depth = 0, deepest = 0;
	bool in_string = false;
	for (size_t i = 0; i < s.size(); ++i) {
		const char c = s[i];
		if (in_string) {
			if (c == '\\')
				++i;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == '[' || c == '{') {
			deepest = std::max(deepest, ++depth);
		} else if ((c == ']' || c == '}') && depth > 0) {
			--depth;
		}
	}
	return deepest;
}

// The parser's message quotes the bytes it choked on, which may be anything: \xNN for the non-ASCII
// ones, so that the response is valid UTF-8.
std::string ascii(std::string_view s)
{
	static constexpr char hex[] = "0123456789abcdef";
	std::string out;
	for (const char c : s) {
		const auto b = uint8_t(c);
		if (b < 0x80)
			out += c;
		else
			out += std::string("\\x") + hex[b >> 4] + hex[b & 15];
	}
	return out;
}

std::string string_field(const json& req, const char* key)
{
	if (!req.contains(key))
		throw bad_field{std::string("missing \"") + key + "\" (a string)"};
	const json& v = req.at(key);
	if (!v.is_string())
		throw bad_field{std::string("\"") + key + "\" must be a string"};
	return v.get<std::string>();
}

// The checks of one command's fields. An error response returned here keeps the connection unless it
// is a bad_request; a bad_field thrown here is a bad_request.
std::optional<json> decode_push(const json& req, parsed_request& r)
{
	const bool by_path = req.contains("path"), by_text = req.contains("text");
	if (by_path == by_text)
		return error_response(error_code::bad_request, "push takes either \"path\" or \"text\" (with \"name\")");
	if (by_path) {
		r.path = string_field(req, "path");
		if (r.path.empty() || r.path[0] != '/')
			return error_response(error_code::bad_request,
			                      "push: \"path\" must be absolute (the daemon reads it, from its own directory)");
	} else {
		r.text = string_field(req, "text");
		r.name = req.contains("name") ? string_field(req, "name") : std::string("pushed.rules");
	}
	if (req.contains("dry_run")) {
		if (!req.at("dry_run").is_boolean())
			return error_response(error_code::bad_request, "push: \"dry_run\" must be true or false");
		r.dry_run = req.at("dry_run").get<bool>();
	}
	if (req.contains("confirm_s") && req.contains("dry_run"))
		return error_response(error_code::bad_request, "push: \"confirm_s\" and \"dry_run\" do not go together");
	if (req.contains("confirm_s")) {
		const json& c = req.at("confirm_s");
		if (!c.is_number_unsigned() || c.get<uint64_t>() == 0 || c.get<uint64_t>() > max_confirm_s)
			return error_response(error_code::bad_request, "push: \"confirm_s\" must be 1 to " + std::to_string(max_confirm_s) + " seconds");
		r.confirm_s = c.get<uint64_t>();
	}
	if (req.contains("limit")) {
		if (!req.at("limit").is_number_unsigned())
			throw bad_field{"push: \"limit\" must be a non-negative integer"};
		r.limit = req.at("limit").get<uint64_t>();
	}
	if (req.contains("keep")) {
		const json& keep = req.at("keep");
		if (!keep.is_array() || !r.dry_run)
			return error_response(error_code::bad_request, "push: \"keep\" is an array of {address, port}, with \"dry_run\"");
		for (const auto& k : keep) {
			const auto a = k.is_object() && k.contains("address") && k.at("address").is_string()
			                   ? parse_prefix(k.at("address").get<std::string>())
			                   : std::nullopt;
			if (!a || (a->v6 ? a->len != 128 : a->len != 32) || !k.contains("port") || !k.at("port").is_number_unsigned() ||
			    k.at("port").get<uint64_t>() > 65535)
				return error_response(error_code::bad_request, "push: each \"keep\" entry is {\"address\": ADDR, \"port\": 0-65535}");
			r.keep.push_back({a->v6, a->addr, uint16_t(k.at("port").get<uint64_t>())});
		}
	}
	return std::nullopt;
}

std::optional<json> decode_flows(const json& req, parsed_request& r)
{
	if (req.contains("filter")) {
		const json& filter = req.at("filter");
		if (!filter.is_object())
			return error_response(error_code::bad_request, "flows: \"filter\" must be an object");
		for (const auto& [key, value] : filter.items()) {
			if (key == "proto") {
				r.filter.proto = proto_number(value);
				if (!r.filter.proto)
					return error_response(error_code::failed, "flows: unknown protocol " + value.dump() +
					                                              " (expected tcp, udp, icmp, icmp6 or 0-255)");
			} else if (key == "address") {
				if (value.is_string())
					r.filter.address = parse_prefix(value.get<std::string>());
				if (!r.filter.address)
					return error_response(error_code::failed,
					                      "flows: invalid address " + value.dump() + " (expected an address or a prefix)");
			} else if (key == "port") {
				if (!value.is_number_unsigned() || value.get<uint64_t>() > 65535)
					return error_response(error_code::failed, "flows: invalid port " + value.dump() + " (expected 0-65535)");
				r.filter.port = uint16_t(value.get<uint64_t>());
			} else if (key == "state") {
				if (!value.is_string())
					throw bad_field{"flows: \"state\" must be a string"};
				// Whether it names a state is the flow table's business: server.cc checks.
				r.filter.state = value.get<std::string>();
			} else {
				return error_response(error_code::bad_request,
				                      "flows: unknown filter '" + key + "' (expected proto, address, port, state)");
			}
		}
	}
	if (req.contains("limit")) {
		// Only a non-negative integer: converting a negative or huge floating-point number to an
		// integer is undefined behaviour.
		const json& limit = req.at("limit");
		if (!limit.is_number_unsigned())
			throw bad_field{"flows: \"limit\" must be a non-negative integer"};
		r.limit = limit.get<uint64_t>();
	}
	return std::nullopt;
}

std::optional<json> decode_set(const json& req, parsed_request& r)
{
	static constexpr std::string_view ops[] = {"list", "show", "add", "del", "flush", "load"};
	if (!req.contains("op") || !req["op"].is_string() ||
	    std::find(std::begin(ops), std::end(ops), req["op"].get<std::string>()) == std::end(ops))
		return error_response(error_code::bad_request, "set takes \"op\": list, show, add, del, flush or load");
	r.set_op = req["op"].get<std::string>();
	if (r.set_op == "list")
		return std::nullopt;
	r.set_name = string_field(req, "set");
	if (r.set_op == "add" || r.set_op == "del") {
		const std::string a = string_field(req, "address");
		const auto p = parse_prefix(a);
		if (!p)
			return error_response(error_code::failed, "set " + r.set_op + ": invalid address '" + a +
			                                              "' (expected an IPv4 or IPv6 address or CIDR)");
		r.set_address = *p;
	}
	if (req.contains("timeout_s")) {
		if (r.set_op != "add")
			throw bad_field{"set: \"timeout_s\" goes with add only"};
		const json& t = req.at("timeout_s");
		if (!t.is_number_unsigned() || t.get<uint64_t>() == 0 || t.get<uint64_t>() > max_set_timeout_s)
			throw bad_field{"set add: \"timeout_s\" must be an integer from 1 to " + std::to_string(max_set_timeout_s)};
		r.set_timeout_s = t.get<uint64_t>();
	}
	if (r.set_op == "load") {
		r.path = string_field(req, "path");
		if (r.path.empty() || r.path[0] != '/')
			return error_response(error_code::bad_request,
			                      "set load: \"path\" must be absolute (the daemon reads it, from its own directory)");
	}
	return std::nullopt;
}

std::optional<json> decode_explain(const json& req, parsed_request& r)
{
	if (!req.contains("flow") || !req["flow"].is_string())
		return error_response(error_code::bad_request, "explain takes \"flow\", e.g. \"tcp 198.18.0.5:40000 -> 198.18.1.2:22 in\"");
	const auto parsed = rules::parse_tuple(req["flow"].get<std::string>());
	if (!parsed.value) {
		json e = error_response(error_code::bad_flow, parsed.error);
		e["column"] = parsed.column;
		return e;
	}
	r.flow = *parsed.value;
	return std::nullopt;
}

bool closes_connection(const json& error)
{
	const json& code = error["code"];
	return code == error_code::bad_request || code == error_code::unsupported_version ||
	       code == error_code::unknown_command;
}

} // namespace

bool address_prefix::contains(bool v6_, u128 a) const
{
	if (v6_ != v6)
		return false;
	const unsigned bits = v6 ? 128 : 32;
	if (len == 0)
		return true;
	const unsigned shift = bits - len;
	return shift >= 128 ? true : (a >> shift) == (addr >> shift);
}

std::optional<address_prefix> parse_prefix(const std::string& s)
{
	address_prefix p;
	std::string host = s;
	std::optional<unsigned> len;
	if (const auto slash = s.find('/'); slash != std::string::npos) {
		host = s.substr(0, slash);
		const std::string l = s.substr(slash + 1);
		if (l.empty() || l.size() > 3 || l.find_first_not_of("0123456789") != std::string::npos)
			return std::nullopt;
		len = unsigned(std::stoul(l));
	}
	in_addr a4{};
	in6_addr a6{};
	if (inet_pton(AF_INET, host.c_str(), &a4) == 1) {
		p.addr = ntohl(a4.s_addr);
		p.len = len.value_or(32);
		if (p.len > 32)
			return std::nullopt;
	} else if (inet_pton(AF_INET6, host.c_str(), &a6) == 1) {
		p.v6 = true;
		for (uint8_t b : a6.s6_addr)
			p.addr = (p.addr << 8) | b;
		p.len = len.value_or(128);
		if (p.len > 128)
			return std::nullopt;
	} else {
		return std::nullopt;
	}
	return p;
}

decode_result decode_request(std::string_view line)
{
	decode_result out;
	auto fail = [&](json error) {
		out.protocol_error = closes_connection(error);
		if (out.id)
			error["id"] = *out.id;
		out.error = std::move(error);
		return std::move(out);
	};
	if (const size_t depth = nesting_depth(line); depth > max_request_depth)
		return fail(error_response(error_code::bad_request, "request nested " + std::to_string(depth) +
		                                                        " levels deep, more than the limit of " +
		                                                        std::to_string(max_request_depth)));
	json req;
	try {
		req = json::parse(line);
	} catch (const json::exception& e) {
		return fail(error_response(error_code::bad_request, "malformed JSON: " + ascii(e.what())));
	}
	if (!req.is_object())
		return fail(error_response(error_code::bad_request, "a request is one JSON object per line"));
	if (req.contains("id"))
		out.id = req["id"];
	if (!req.contains("v") || !req["v"].is_number_integer())
		return fail(error_response(error_code::bad_request, "missing protocol version \"v\" (this daemon speaks 1)"));
	if (req["v"].get<int64_t>() != protocol_version)
		return fail(error_response(error_code::unsupported_version,
		                           "protocol version " + req["v"].dump() + " is not supported (this daemon speaks 1)"));
	if (!req.contains("cmd") || !req["cmd"].is_string())
		return fail(error_response(error_code::bad_request, "missing \"cmd\" (a string)"));
	const std::string cmd = req["cmd"].get<std::string>();
	parsed_request r;
	std::optional<json> error;
	try {
		if (cmd == "push")
			r.cmd = command::push, error = decode_push(req, r);
		else if (cmd == "rules")
			r.cmd = command::rules;
		else if (cmd == "flows")
			r.cmd = command::flows, error = decode_flows(req, r);
		else if (cmd == "flush_flows")
			r.cmd = command::flush_flows;
		else if (cmd == "stats")
			r.cmd = command::stats;
		else if (cmd == "explain")
			r.cmd = command::explain, error = decode_explain(req, r);
		else if (cmd == "set")
			r.cmd = command::set, error = decode_set(req, r);
		else if (cmd == "confirm")
			r.cmd = command::confirm;
		else if (cmd == "sync")
			r.cmd = command::sync;
		else if (cmd == "sync_promote")
			r.cmd = command::sync_promote;
		else
			return fail(error_response(error_code::unknown_command,
			                           "unknown command '" + cmd +
			                               "' (expected push, confirm, rules, flows, flush_flows, stats, explain, set, sync or sync_promote)"));
	} catch (const bad_field& e) {
		return fail(error_response(error_code::bad_request, "bad request field: " + e.message));
	}
	if (error)
		return fail(std::move(*error));
	out.req = std::move(r);
	return out;
}

} // namespace portcullis::control
