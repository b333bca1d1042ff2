// portcullisd: the firewall daemon. Reads its configuration (INI files and command line), brings up the
// DPDK EAL and the ports of the driver profile, compiles the rules, starts one worker per lcore, and
// runs the control loop (flow expiry, statistics) on the main lcore until SIGINT/SIGTERM, a configured
// duration, or — for capture replays — until the input has gone idle. Prints the final counters, with the
// identity of the rule set active at exit. SIGHUP re-reads the configured rules file and swaps it in
// the way a push does (a file with errors keeps the running rules).
//
// This file reads the options; lib/daemon owns the lifecycle (daemon/appliance.h: the steps, the threads,
// the signals) and the option table (daemon/settings.h). Exit codes: 0 ok, 1 configuration (rules,
// ports, control socket), 2 usage, 3 runtime (EAL, ports, queues).
#include <boost/program_options.hpp>

#include <fstream>
#include <iostream>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "daemon/appliance.h"
#include "daemon/settings.h"

namespace po = boost::program_options;
namespace pd = portcullis::daemon;

namespace {

// Fills s from the command line, the config files it names (--config) and the driver profile
// (--profile), in that precedence. Returns an exit code when there is nothing to run: --help, or a
// usage error (already printed).
std::optional<int> parse_options(int argc, char** argv, pd::settings& s)
{
	const po::options_description options = pd::describe(s);
	po::variables_map vm;
	// Words after "--" are EAL arguments.
	std::vector<std::string> ours;
	for (int i = 1; i < argc; ++i) {
		if (std::string(argv[i]) == "--") {
			for (int j = i + 1; j < argc; ++j)
				s.eal_extra.emplace_back(argv[j]);
			break;
		}
		ours.emplace_back(argv[i]);
	}
	try {
		po::store(po::command_line_parser(ours).options(options).run(), vm);
		// Boost keeps the first value stored for an option: the command line wins over the config files,
		// which win over the driver profile.
		auto load = [&](const std::string& file, const char* what) {
			std::ifstream in(file);
			if (!in) {
				std::cerr << "portcullisd: cannot open " << what << " file " << file << "\n";
				return false;
			}
			po::store(po::parse_config_file(in, options), vm);
			return true;
		};
		if (vm.count("config"))
			for (const auto& file : vm["config"].as<std::vector<std::string>>())
				if (!load(file, "config"))
					return pd::exit_usage;
		if (vm.count("profile") && !load(vm["profile"].as<std::string>(), "profile"))
			return pd::exit_usage;
		po::notify(vm);
	} catch (const po::error& e) {
		std::cerr << "portcullisd: " << e.what() << "\n";
		return pd::exit_usage;
	}
	if (vm.count("help")) {
		std::cout << "usage: portcullisd --profile drivers-config/NAME.conf --rules FILE [options] [-- EAL args]\n\n"
		          << options << "\n";
		return pd::exit_ok;
	}
	return {};
}

} // namespace

int main(int argc, char** argv)
{
	pd::settings s;
	if (const auto done = parse_options(argc, argv, s))
		return *done;
	pd::appliance appliance(std::move(s));
	return appliance.run();
}
