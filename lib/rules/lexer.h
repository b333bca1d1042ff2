// Internal to lib/rules: splits a rule file into tokens carrying line and column.
//
// The language is line-oriented: a newline ends a statement, except inside { } so that long lists
// can span lines. The lexer never fails; malformed pieces (an unterminated string, a lone '$') come
// out as tokens the parser reports with their position.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace portcullis::rules::detail {

enum class token_kind : uint8_t {
	word,       // any run of characters that are not blanks or punctuation below: keywords, numbers,
	            // addresses (198.18.0.0/15, 2001:2::/48), names (echo-request), ranges (1000-2000)
	string,     // "..." (text excludes the quotes; raw: a backslash escapes the next character, `\"`
	            // does not end the string, and the parser decodes escapes where they mean something)
	bad_string, // " with no closing quote on the same line
	lbrace,
	rbrace,
	comma,
	bang,
	equals,
	var,        // $name (text excludes the '$'; empty when no name follows)
	newline,    // end of a statement
};

struct token {
	token_kind kind;
	std::string_view text;
	uint32_t line;    // 1-based
	uint32_t column;  // 1-based, in bytes
	size_t begin;     // byte offsets of the whole token in the source (quotes and '$' included)
	size_t end;
};

// Tokens view into `src`, which must outlive them. Always ends with a newline token.
std::vector<token> lex(std::string_view src);

} // namespace portcullis::rules::detail
