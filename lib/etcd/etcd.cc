// The key-value calls of etcd.h: etcd:// URLs, and get, put and erase as one gateway call each.
#include "etcd/etcd.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "etcd/gateway.h"

namespace portcullis::etcd {

namespace {

using nlohmann::json;
using detail::base64_decode;
using detail::base64_encode;
using detail::call;
using detail::int_field;
using detail::max_message_bytes;

} // namespace

std::string location::url() const
{
	return "etcd://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + port + "/" + key;
}

bool parse_url(std::string_view url, location& out, std::string& error)
{
	constexpr std::string_view scheme = "etcd://";
	if (url.substr(0, scheme.size()) != scheme) {
		error = "not an etcd:// URL: '" + std::string(url) + "'";
		return false;
	}
	std::string_view rest = url.substr(scheme.size());
	const size_t slash = rest.find('/');
	if (slash == std::string_view::npos || slash + 1 >= rest.size()) {
		error = "an etcd:// URL needs a key: etcd://HOST[:PORT]/KEY";
		return false;
	}
	std::string_view authority = rest.substr(0, slash);
	location l;
	l.key = std::string(rest.substr(slash + 1));
	if (!authority.empty() && authority.front() == '[') {
		const size_t close = authority.find(']');
		if (close == std::string_view::npos) {
			error = "unclosed '[' in etcd:// URL";
			return false;
		}
		l.host = std::string(authority.substr(1, close - 1));
		authority.remove_prefix(close + 1);
		if (!authority.empty() && authority.front() != ':') {
			error = "expected ':PORT' after ']' in etcd:// URL";
			return false;
		}
	} else {
		const size_t colon = authority.find(':');
		l.host = std::string(authority.substr(0, colon));
		authority.remove_prefix(colon == std::string_view::npos ? authority.size() : colon);
	}
	if (!authority.empty()) {
		const std::string_view port = authority.substr(1);
		if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
		    std::stoi(std::string(port)) == 0 || std::stoi(std::string(port)) > 65535) {
			error = "bad port in etcd:// URL: '" + std::string(port) + "'";
			return false;
		}
		l.port = std::string(port);
	}
	if (l.host.empty()) {
		error = "an etcd:// URL needs a host";
		return false;
	}
	out = std::move(l);
	return true;
}

bool get(const location& where, value& out, std::string& error, std::chrono::milliseconds timeout)
{
	json response;
	if (!call(where, "/v3/kv/range", json{{"key", base64_encode(where.key)}}, response, error, timeout))
		return false;
	out = value{};
	out.revision = response.contains("header") ? int_field(response["header"], "revision") : 0;
	const auto kvs = response.find("kvs");
	if (kvs == response.end() || !kvs->is_array() || kvs->empty())
		return true;
	const json& kv = kvs->front();
	const std::string encoded = kv.value("value", "");
	if (encoded.size() > max_message_bytes || !base64_decode(encoded, out.text) || out.text.size() > max_value_bytes) {
		error = where.url() + ": value is not valid base64 or larger than " + std::to_string(max_value_bytes) + " bytes";
		return false;
	}
	out.found = true;
	out.mod_revision = int_field(kv, "mod_revision");
	return true;
}

bool put(const location& where, std::string_view text, int64_t& revision, std::string& error, std::chrono::milliseconds timeout)
{
	if (text.size() > max_value_bytes) {
		error = "value larger than " + std::to_string(max_value_bytes) + " bytes";
		return false;
	}
	json response;
	if (!call(where, "/v3/kv/put", json{{"key", base64_encode(where.key)}, {"value", base64_encode(text)}}, response,
	          error, timeout))
		return false;
	revision = response.contains("header") ? int_field(response["header"], "revision") : 0;
	return true;
}

bool erase(const location& where, std::string& error, std::chrono::milliseconds timeout)
{
	json response;
	return call(where, "/v3/kv/deleterange", json{{"key", base64_encode(where.key)}}, response, error, timeout);
}

} // namespace portcullis::etcd
