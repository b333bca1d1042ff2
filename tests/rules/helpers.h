// Shared helpers for the rules tests: parse text that must succeed / must fail.
#pragma once

#include <catch2/catch.hpp>

#include <string>

#include "rules/rules.h"

namespace portcullis::rules::test {

// Tests must not depend on the host's /etc/services.
inline parse_options no_services()
{
	parse_options o;
	o.services_file = "";
	return o;
}

inline ruleset parse_ok(const std::string& text, parse_options o = no_services())
{
	auto r = parse_string(text, "t.rules", o);
	for (const auto& d : r.errors)
		UNSCOPED_INFO(format(d));
	REQUIRE(r.errors.empty());
	REQUIRE(r.rules.has_value());
	return std::move(*r.rules);
}

inline rule parse_one(const std::string& text)
{
	auto rs = parse_ok(text);
	REQUIRE(rs.rules.size() == 1);
	return rs.rules[0];
}

inline std::vector<diagnostic> parse_errors(const std::string& text, parse_options o = no_services())
{
	auto r = parse_string(text, "t.rules", o);
	REQUIRE_FALSE(r.errors.empty());
	REQUIRE_FALSE(r.rules.has_value());
	return r.errors;
}

constexpr uint32_t ip4(uint32_t a, uint32_t b, uint32_t c, uint32_t d) { return a << 24 | b << 16 | c << 8 | d; }

} // namespace portcullis::rules::test
