// `set NAME = country { CC, ... }` (docs/rules.md, "Country sets").
#include "rules/stages.h"

namespace portcullis::rules::detail {

void parser::country_set(named_set&, std::string_view)
{
	fail(peek(), "country sets are not built yet");
}

} // namespace portcullis::rules::detail
