// bench/common/json.cc: the JSON line builder (json.h).
#include "common/json.h"

#include <cmath>

namespace portcullis::bench {

std::string fixed(double v, int decimals)
{
	if (!std::isfinite(v))
		return "null";
	char buf[64];
	std::snprintf(buf, sizeof(buf), "%.*f", decimals, v);
	return buf;
}

std::string quoted(std::string_view s)
{
	std::string out = "\"";
	for (const char c : s) {
		if (c == '"' || c == '\\') {
			out += '\\';
			out += c;
		} else if (uint8_t(c) < 0x20) {
			char esc[8];
			std::snprintf(esc, sizeof(esc), "\\u%04x", unsigned(c));
			out += esc;
		} else {
			out += c;
		}
	}
	return out + "\"";
}

json_line& json_line::raw(std::string_view key, std::string_view json)
{
	if (body_.size() > 1)
		body_ += ',';
	body_ += quoted(key);
	body_ += ':';
	body_ += json;
	return *this;
}

json_line& json_line::text(std::string_view key, std::string_view value) { return raw(key, quoted(value)); }

json_line& json_line::fixed(std::string_view key, double value, int decimals)
{
	return raw(key, bench::fixed(value, decimals));
}

json_line& json_line::boolean(std::string_view key, bool value) { return raw(key, value ? "true" : "false"); }

json_line& json_line::fixed_array(std::string_view key, const std::vector<double>& values, int decimals, double scale)
{
	std::string a = "[";
	for (size_t i = 0; i < values.size(); ++i) {
		if (i)
			a += ',';
		a += bench::fixed(values[i] * scale, decimals);
	}
	return raw(key, a + "]");
}

void json_line::print(std::FILE* out) const
{
	std::fprintf(out, "%s}\n", body_.c_str());
	std::fflush(out);
}

} // namespace portcullis::bench
