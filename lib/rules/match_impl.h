// The template bodies declared in match.h (normalize).
#pragma once
#include <algorithm>

namespace portcullis {

template <class T>
void normalize(std::vector<value_range<T>>& set)
{
	std::sort(set.begin(), set.end(), [](const auto& a, const auto& b) { return a.lo < b.lo; });
	std::vector<value_range<T>> out;
	for (const auto& r : set) {
		if (!out.empty() && (r.lo <= out.back().hi ||
		                     (out.back().hi != T(~T(0)) && r.lo == T(out.back().hi + 1)))) {
			if (r.hi > out.back().hi)
				out.back().hi = r.hi;
		} else {
			out.push_back(r);
		}
	}
	set = std::move(out);
}

} // namespace portcullis
