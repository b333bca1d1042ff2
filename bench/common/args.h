// bench/common/args.h: the command lines of benches: "--name value" options and bare flags, read in
// one pass, and comma-separated lists. A bench that wants more (defaults in --help) uses
// boost::program_options instead.
#pragma once

#include <string>
#include <vector>

namespace portcullis::bench {

// Walks argv from argv[1]; --help and -h print the usage and exit(0):
//   for (arg_reader a(argc, argv, usage); a.next();)
//       if (a.option("--iters")) iters = atoi(a.value()); else if (a.flag("--quiet")) ... else bad(a.name());
class arg_reader {
public:
	arg_reader(int argc, char** argv, void (*usage)()) : argc_(argc), argv_(argv), usage_(usage) {}
	bool next();
	const char* name() const { return argv_[i_]; }
	bool flag(const char* n) const { return name() == std::string(n); }
	// True when this argument is `n` and a value follows: value() is then that value (consumed).
	bool option(const char* n)
	{
		if (!flag(n) || i_ + 1 >= argc_)
			return false;
		value_ = argv_[++i_];
		return true;
	}
	const char* value() const { return value_; }

private:
	int argc_;
	char** argv_;
	void (*usage_)();
	int i_ = 0;
	const char* value_ = nullptr;
};

// "a,b,,c" -> {"a", "b", "c"}: empty items are skipped.
std::vector<std::string> split_list(const std::string& s, char sep = ',');

} // namespace portcullis::bench
