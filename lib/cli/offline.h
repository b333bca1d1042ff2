// Inside lib/cli: reading a rule file the way every offline command does (check, explain, classify and
// publish), errors printed as FILE:LINE:COLUMN: error: ... and a count.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>

#include "cli/cli.h"
#include "lint/lint.h"
#include "rules/rules.h"

namespace portcullis::cli {

// Parses path with o's services file; prints every error and their count on err. Empty when the file has
// errors (or cannot be read).
std::optional<rules::ruleset> load(const std::string& path, const options& o, std::ostream& err);

// The lint's findings as FILE:LINE:COLUMN: warning: KIND: RULE: what (check --lint, push).
void print_lint(const lint::report& report, const rules::ruleset& rs, std::ostream& out);

} // namespace portcullis::cli
