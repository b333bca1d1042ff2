// libFuzzer target for address feeds (`set NAME = file`, lib/rules/feed.cc) and the lookup structure
// built from them (lib/sets). The input is a feed's text. Beyond "no crash, no sanitizer report":
//   - a feed gives ranges and no errors, or errors and no ranges; each error has a line inside the text
//     and a column inside that line (or 0 for a count of further errors) and says something;
//   - the ranges are normalized (sorted, disjoint, non-adjacent) and there is at least one per family
//     when the feed had entries of it;
//   - prefix_set4/6 built from the ranges answer exactly as bisection over them, at every range's ends,
//     one past them, and at the ends of the address space.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "promise.h"
#include "rules/rules.h"
#include "sets/prefix_set.h"

using namespace portcullis;

namespace {

template <class T>
bool normalized(const std::vector<value_range<T>>& s)
{
	for (size_t i = 0; i < s.size(); ++i) {
		if (s[i].lo > s[i].hi)
			return false;
		if (i > 0 && !(s[i - 1].hi < s[i].lo && T(s[i - 1].hi + 1) != s[i].lo))
			return false;
	}
	return true;
}

template <class T>
bool in(const std::vector<value_range<T>>& s, T a)
{
	auto it = std::upper_bound(s.begin(), s.end(), a, [](T v, const value_range<T>& r) { return v < r.lo; });
	return it != s.begin() && a <= std::prev(it)->hi;
}

template <class Set, class T>
void check_lookups(const std::vector<value_range<T>>& ranges)
{
	const Set set = Set::build(ranges);
	REQUIRE(set.range_count() == ranges.size());
	std::vector<T> probes = {T(0), T(~T(0))};
	for (const auto& r : ranges) {
		probes.push_back(r.lo);
		probes.push_back(r.hi);
		probes.push_back(T(r.lo - 1));
		probes.push_back(T(r.hi + 1));
	}
	for (T a : probes)
		REQUIRE(set.contains(a) == in(ranges, a));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
	const std::string_view text(reinterpret_cast<const char*>(data), size);
	rules::parse_options opts;
	opts.max_set_entries = 4096;
	const rules::address_feed feed = rules::parse_address_feed(text, "fuzz.netset", opts);

	size_t lines = 1 + size_t(std::count(text.begin(), text.end(), '\n'));
	if (!feed.errors.empty()) {
		REQUIRE(feed.v4.empty() && feed.v6.empty() && feed.entries == 0);
		for (const auto& e : feed.errors) {
			REQUIRE(e.loc.file == "fuzz.netset");
			REQUIRE(!e.message.empty());
			if (e.loc.line == 0) {
				REQUIRE(e.loc.column == 0);
				continue;
			}
			REQUIRE(e.loc.line <= lines);
			size_t begin = 0;
			for (uint32_t l = 1; l < e.loc.line; ++l)
				begin = text.find('\n', begin) + 1;
			const size_t end = std::min(text.find('\n', begin), text.size());
			REQUIRE(e.loc.column >= 1 && e.loc.column <= end - begin + 1);
		}
		return 0;
	}
	REQUIRE(normalized(feed.v4));
	REQUIRE(normalized(feed.v6));
	REQUIRE(feed.entries <= opts.max_set_entries);
	REQUIRE((feed.entries == 0) == (feed.v4.empty() && feed.v6.empty()));
	check_lookups<sets::prefix_set4>(feed.v4);
	check_lookups<sets::prefix_set6>(feed.v6);
	return 0;
}
