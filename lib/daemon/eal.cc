// The EAL's arguments and what its setup allows dumpcap; see eal.h.
#include "daemon/eal.h"

#include <rte_eal.h>

#include <filesystem>
#include <sstream>

namespace portcullis::daemon {

namespace {

std::vector<std::string> split_words(const std::string& s)
{
	std::istringstream in(s);
	std::vector<std::string> out;
	for (std::string w; in >> w;)
		out.push_back(w);
	return out;
}

void replace_all(std::string& s, const std::string& what, const std::string& with)
{
	for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + with.size()))
		s.replace(at, what.size(), with);
}

} // namespace

std::vector<std::string> eal_arguments(const settings& s)
{
	std::string eal_args = s.eal_args;
	replace_all(eal_args, "{capture}", s.capture);
	replace_all(eal_args, "{output}", s.output_dir);
	std::vector<std::string> words{"portcullisd"};
	for (auto& w : split_words(eal_args))
		words.push_back(w);
	for (auto& w : s.eal_extra)
		words.push_back(w);
	return words;
}

// Secondary processes map the primary's hugepage files and talk to it over the runtime directory's
// mp_socket: --no-huge has no such files, --no-shconf and --in-memory no socket.
std::string capture_unavailable()
{
	if (!rte_eal_has_hugepages())
		return "the EAL runs without hugepages (--no-huge), and dumpcap maps the daemon's hugepage files";
	if (!std::filesystem::exists(std::filesystem::path(rte_eal_get_runtime_dir()) / "mp_socket"))
		return "the EAL keeps no shared files (--no-shconf or --in-memory), and dumpcap attaches through them";
	return {};
}

} // namespace portcullis::daemon
