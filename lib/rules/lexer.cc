// The lexer: rule text -> tokens with line and column (lexer.h).
#include "rules/lexer.h"

namespace portcullis::rules::detail {
namespace {

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

bool is_word_char(char c)
{
	switch (c) {
	case ' ': case '\t': case '\r': case '\f': case '\v': case '\n':
	case '{': case '}': case ',': case '!': case '=': case '$': case '"': case '#':
		return false;
	default:
		return true;
	}
}

bool starts_statement(std::string_view rest)
{
	size_t b = 0;
	while (b < rest.size() && is_blank(rest[b]))
		++b;
	size_t e = b;
	while (e < rest.size() && is_word_char(rest[e]))
		++e;
	const auto w = rest.substr(b, e - b);
	for (std::string_view k : {"allow", "drop", "reject", "default", "set", "ports", "include"})
		if (w == k)
			return true;
	return false;
}

} // namespace

std::vector<token> lex(std::string_view src)
{
	std::vector<token> out;
	uint32_t line = 1;
	size_t line_start = 0;
	int depth = 0;
	size_t i = 0;
	auto push = [&](token_kind k, size_t b, size_t e, std::string_view text) {
		out.push_back({k, text, line, uint32_t(b - line_start + 1), b, e});
	};
	auto end_statement = [&](size_t at) {
		if (!out.empty() && out.back().kind != token_kind::newline)
			push(token_kind::newline, at, at, {});
	};
	while (i < src.size()) {
		const char c = src[i];
		if (c == '\n') {
			// A list left open by mistake would swallow the rest of the file; a line starting with a
			// statement keyword cannot be inside a list, so it closes the statement (the parser then
			// reports the missing '}') and later statements are still checked.
			if (depth > 0 && starts_statement(src.substr(i + 1)))
				depth = 0;
			if (depth == 0)
				end_statement(i);
			++i;
			++line;
			line_start = i;
		} else if (is_blank(c)) {
			++i;
		} else if (c == '#') {
			while (i < src.size() && src[i] != '\n')
				++i;
		} else if (c == '"') {
			// A backslash keeps the next character inside the string (content "a\"b"); the parser
			// decodes escapes, the token keeps the raw text.
			size_t j = i + 1;
			while (j < src.size() && src[j] != '"' && src[j] != '\n')
				j += (src[j] == '\\' && j + 1 < src.size() && src[j + 1] != '\n') ? 2 : 1;
			if (j < src.size() && src[j] == '"') {
				push(token_kind::string, i, j + 1, src.substr(i + 1, j - i - 1));
				i = j + 1;
			} else {
				push(token_kind::bad_string, i, j, src.substr(i + 1, j - i - 1));
				i = j;
			}
		} else if (c == '$') {
			size_t j = i + 1;
			while (j < src.size() && is_word_char(src[j]))
				++j;
			push(token_kind::var, i, j, src.substr(i + 1, j - i - 1));
			i = j;
		} else if (is_word_char(c)) {
			size_t j = i;
			while (j < src.size() && is_word_char(src[j]))
				++j;
			push(token_kind::word, i, j, src.substr(i, j - i));
			i = j;
		} else {
			token_kind k = token_kind::comma;
			switch (c) {
			case '{': k = token_kind::lbrace; ++depth; break;
			case '}': k = token_kind::rbrace; if (depth > 0) --depth; break;
			case ',': k = token_kind::comma; break;
			case '!': k = token_kind::bang; break;
			case '=': k = token_kind::equals; break;
			}
			push(k, i, i + 1, src.substr(i, 1));
			++i;
		}
	}
	end_statement(src.size());
	if (out.empty() || out.back().kind != token_kind::newline)
		push(token_kind::newline, src.size(), src.size(), {});
	return out;
}

} // namespace portcullis::rules::detail
