// bench/common/args.cc: comma-separated lists of bench options (args.h).
#include "common/args.h"

#include <cstdlib>
#include <sstream>

namespace portcullis::bench {

bool arg_reader::next()
{
	if (++i_ >= argc_)
		return false;
	if (flag("--help") || flag("-h")) {
		usage_();
		std::exit(0);
	}
	return true;
}

std::vector<std::string> split_list(const std::string& s, char sep)
{
	std::vector<std::string> out;
	std::stringstream ss(s);
	for (std::string item; std::getline(ss, item, sep);)
		if (!item.empty())
			out.push_back(item);
	return out;
}

} // namespace portcullis::bench
