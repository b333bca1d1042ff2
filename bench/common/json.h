// bench/common/json.h: one JSON object per line, the form every bench prints its results in.
//
// Fields come out in the order they are added. Numbers are written as the bench asks (an integer, or a
// fixed number of decimals, as printf's %.Nf would), so that a line's format stays the same from run to
// run and from before a change to after it; a number that is not finite is written as null. Strings are
// escaped (quote, backslash, control characters), so a CPU model or a file name cannot break the line.
#pragma once

#include <concepts>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

namespace portcullis::bench {

// v with `decimals` digits after the point, as printf("%.*f") writes it; "null" when v is not finite.
std::string fixed(double v, int decimals);

// s between quotes, with JSON's escapes.
std::string quoted(std::string_view s);

class json_line {
public:
	json_line& text(std::string_view key, std::string_view value);
	json_line& fixed(std::string_view key, double value, int decimals);
	json_line& boolean(std::string_view key, bool value);
	template <std::integral T>
	json_line& integer(std::string_view key, T value)
	{
		return raw(key, std::to_string(value));
	}
	// [v0*scale,v1*scale,...], each with `decimals` digits after the point.
	json_line& fixed_array(std::string_view key, const std::vector<double>& values, int decimals, double scale = 1);
	// A value that is JSON already (a nested object, for example another json_line's str()).
	json_line& raw(std::string_view key, std::string_view json);

	// The object: {"key":value,...}.
	std::string str() const { return body_ + "}"; }
	// The object and a newline on `out`, flushed, so that a reader of a pipe sees each line when it is done.
	void print(std::FILE* out = stdout) const;

private:
	std::string body_ = "{";
};

} // namespace portcullis::bench
