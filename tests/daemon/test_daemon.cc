// The daemon's settings: what the option table stores where, which values the checks refuse and with
// which words, and the argv that the EAL is given.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>

#include <boost/program_options.hpp>

#include <sstream>
#include <string>
#include <vector>

#include "daemon/eal.h"
#include "daemon/settings.h"

namespace po = boost::program_options;
using namespace portcullis::daemon;

namespace {

// The command line first, then the INI text: as portcullisd stores them (the first value stored wins).
settings parse(const std::vector<std::string>& command_line, const std::string& ini = "")
{
	settings s;
	const auto options = describe(s);
	po::variables_map vm;
	po::store(po::command_line_parser(command_line).options(options).run(), vm);
	std::istringstream in(ini);
	po::store(po::parse_config_file(in, options), vm);
	po::notify(vm);
	return s;
}

} // namespace

TEST_CASE("defaults are what --help says")
{
	const settings s = parse({"--rules", "r.rules"});
	CHECK(s.rules_file == "r.rules");
	CHECK(s.outside == "0");
	CHECK(s.inside == "1");
	CHECK(s.mode == "pair");
	CHECK(s.workers == 1);
	CHECK(s.handoff_ring == 4096);
	CHECK(s.burst == 64);
	CHECK(s.rss == "symmetric");
	CHECK(s.full_policy == "evict-embryonic");
	CHECK(s.classifier == "ours");
	CHECK(s.send_rejects);
	CHECK(s.pdump);
	CHECK_FALSE(s.check_only);
	CHECK(s.control_socket == "/run/portcullis/portcullisd.sock");
	CHECK(s.metrics_listen == "127.0.0.1:9469");
	CHECK(s.log_target == "stdout");
	CHECK(s.log_rate == 100);
	CHECK(s.control_group == "root");
	CHECK(usage_error(s).empty());
}

TEST_CASE("INI sections fill the same settings, and the command line wins over them")
{
	const settings s = parse({"--rules", "cli.rules", "--queues.workers", "3"},
	                         "rules = ini.rules\n"
	                         "[ports]\nmode = replay\ninside-networks = 198.18.1.0/24\n"
	                         "[queues]\nworkers = 2\nburst = 16\n"
	                         "[flows]\ntimeout.tcp-established = 60\n"
	                         "[run]\nduration = 1.5\nexit-when-idle = 500\n");
	CHECK(s.rules_file == "cli.rules");
	CHECK(s.workers == 3);
	CHECK(s.mode == "replay");
	CHECK(s.inside_networks == "198.18.1.0/24");
	CHECK(s.burst == 16);
	CHECK(s.idle.seconds[uint32_t(portcullis::flow::flow_state::tcp_established)] == 60);
	CHECK(s.duration == 1.5);
	CHECK(s.exit_when_idle_ms == 500);
}

TEST_CASE("values the daemon does not know are refused, the first one named")
{
	settings s = parse({"--rules", "r.rules"});
	auto refused = [&](auto change) {
		settings t = s;
		change(t);
		return usage_error(t);
	};
	CHECK(refused([](settings& t) { t.rules_file.clear(); }) == "--rules is required (see --help)");
	CHECK(refused([](settings& t) { t.mode = "bridge"; }) == "ports.mode must be pair or replay, not 'bridge'");
	CHECK(refused([](settings& t) { t.full_policy = "lru"; }) == "flows.full-policy must be evict-embryonic or drop");
	CHECK(refused([](settings& t) { t.log_target = "file"; }) == "log.target must be stdout or syslog");
	CHECK(refused([](settings& t) { t.classifier = "dpdk"; }) == "dataplane.classifier must be ours or rte_acl");
	CHECK(refused([](settings& t) { t.workers = 0; }) == "queues.workers must be 1..64");
	CHECK(refused([](settings& t) { t.workers = 65; }) == "queues.workers must be 1..64");
	CHECK(refused([](settings& t) { t.workers = 64; }).empty());
	CHECK(refused([](settings& t) { t.rules_file.clear(), t.mode = "x"; }) == "--rules is required (see --help)");
}

TEST_CASE("the EAL's argv: the program, eal.args with {capture} and {output} replaced, then the words after --")
{
	settings s;
	s.eal_args = "  -l 0-1 --vdev=net_pcap0,rx_pcap={capture},tx_pcap={output}/out.pcap\t--vdev=x,a={output}/b ";
	s.capture = "/data/in.pcap";
	s.output_dir = "/tmp/o";
	s.eal_extra = {"--log-level=debug", "--no-pci"};
	CHECK(eal_arguments(s) == std::vector<std::string>{"portcullisd", "-l", "0-1",
	                                                   "--vdev=net_pcap0,rx_pcap=/data/in.pcap,tx_pcap=/tmp/o/out.pcap",
	                                                   "--vdev=x,a=/tmp/o/b", "--log-level=debug", "--no-pci"});
	CHECK(eal_arguments(settings{}) == std::vector<std::string>{"portcullisd"});
}
