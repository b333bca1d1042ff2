// The publish command: check a rule file as `check` does, then store its text under an etcd key, where
// every portcullisd following that key (rules.watch, docs/scale-out.md) swaps it in.
#include <chrono>
#include <fstream>
#include <iterator>
#include <ostream>
#include <string>

#include "cli/cli.h"
#include "cli/offline.h"
#include "etcd/etcd.h"

namespace portcullis::cli {

// Publishing goes through the same check as `check`: a set that does not compile here would be refused
// by every appliance, so it never reaches etcd.
int cmd_publish(const arguments& args, const options& o, streams io)
{
	if (args.size() != 2) {
		io.err << "portcullis: publish takes FILE and etcd://HOST[:PORT]/KEY\n";
		return exit_usage;
	}
	etcd::location where;
	std::string error;
	if (!etcd::parse_url(args[1], where, error)) {
		io.err << "portcullis: " << error << "\n";
		return exit_usage;
	}
	if (const int checked = cmd_check({args[0]}, o, io); checked != exit_ok)
		return checked;
	const auto rs = load(args[0], o, io.err);
	if (!rs)
		return exit_failed;
	if (rs->files.size() > 1) {
		io.err << args[0] << ": error: includes " << rs->files[1]
		       << "; a rule set in etcd is one self-contained text (inline the included rules)\n";
		return exit_failed;
	}
	std::ifstream in(args[0], std::ios::binary);
	const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
	int64_t revision = 0;
	if (!etcd::put(where, text, revision, error, std::chrono::milliseconds(int64_t(o.timeout * 1000)))) {
		io.err << "portcullis: " << error << "\n";
		return exit_unreachable;
	}
	io.out << "published " << args[0] << " (" << rs->rules.size() << " rules) to " << where.url() << " at revision "
	       << revision << "\n";
	return exit_ok;
}

} // namespace portcullis::cli
