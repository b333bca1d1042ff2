// bench-pipeline: packets per second and cycles per packet through the real data path (parse, flow
// lookup, conntrack, classification of new flows, forward or drop) against dpdk-testpmd's io forwarding
// on the same traffic, both replaying the same capture from memory on one core. Prints one JSON object
// per case on stdout; progress and errors go to stderr.
//
// Cases (--cases; all by default):
//   replay_64b, replay_512b  a capture made by make-bench-capture.py: 10k TCP flows both ways through
//                            rules/gateway.rules, handshakes first, then data frames of the size, ~3%
//                            denied packets; in steady state mostly established flows.
//   established_64b          100K TCP connections, opened by a handshake capture replayed once before the
//                            window, then one 64-byte segment per connection per pass, in random order,
//                            through a 10K-rule set (10,000 generated rules the traffic never matches,
//                            then gateway.rules).
//   new_flows_64b            every packet a SYN that opens a flow (262,144 distinct SYNs replayed in a
//                            loop) through the same 10K-rule set, into a 65,536-flow table that stays
//                            full: every new flow evicts the oldest half-open one, while a control thread
//                            expires beside the worker at the daemon's pace (control::housekeeping_buckets
//                            every control_interval_ms). connections_per_second.
//   imix_1m                  1M UDP flows through gateway.rules, opened by a setup capture (one packet
//                            each, read from its file), then a loop of 262,144 of them picked at random,
//                            one packet each per pass in random order, simple-IMIX sizes (64, 594, 1518
//                            bytes at 7:4:1): a 1M-flow table, a 256K-flow working set.
// replay_64b also runs ours once more with an idle payload rule (replay_64b_payload_rules_idle).
//
// net_pcap with infinite_rx holds a capture in mbufs and replays it forever, so both sides pay the same
// per-packet copy inside the PMD: testpmd io (rx_burst -> tx_burst to net_null) is the ceiling of this I/O
// path, and the ratio says what fraction of it the firewall keeps. Both sides report the median of their
// per-second rates (ours from the worker's counters, testpmd from its --stats-period=1 Rx-pps).
//
// cycles_per_packet: the worker's busy TSC cycles over the window, without the driver's rx_burst and
// tx_burst (reported apart as driver_*_cycles_per_packet), per packet received. stage_cycles: the same
// time split by stage of worker::process (lib/dataplane/stage_clock.h), from a second run of ours in the
// same bench run by bench-pipeline-stages, this program built with the stage timers compiled in (they
// cost the daemon nothing because it is built without them). added_ns_per_packet = 1000/ours_mpps -
// 1000/testpmd_mpps. baseline_cycles_per_packet: testpmd's TSC cycles a packet; ratio_if_worker_free:
// those over our driver rx + tx, the ratio a worker of no cost would reach; goal and
// worker_cycles_for_goal: issue #11's ratio for the case and the worker cycles a packet that would meet
// it on this machine in this run.
//
// Each run is its own process with its own EAL (ours re-executes this binary with --child-ours; see
// pipeline/ours.h); runs go ours, ours with stage timers, testpmd, per case.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/args.h"
#include "common/eal.h"
#include "common/host.h"
#include "common/json.h"
#include "common/stats.h"
#include "dataplane/dataplane.h"
#include "pipeline/ours.h"
#include "pipeline/traffic.h"

namespace bench = portcullis::bench;
namespace pl = portcullis::bench::pipeline;

namespace {

// testpmd runs its forwarding core on this lcore, as our child runs its worker; its main lcore gets 0.
constexpr const char* forward_lcore = "1";
const char* const all_cases[] = {"replay_64b", "replay_512b", "established_64b", "new_flows_64b", "imix_1m"};

struct options {
	double seconds = 1.0;      // measured per run; x3 runs per case (ours, ours with stage timers, testpmd)
	double warmup = 0.3;       // and at least one pass of the capture
	double stage_seconds = 0.5;  // the stage-timer run's window
	std::vector<std::string> cases = {std::begin(all_cases), std::end(all_cases)};
	std::string capture_dir = PORTCULLIS_BENCH_CAPTURE_DIR;
	std::string rules_file = PORTCULLIS_RULES_DIR "/gateway.rules";
	bool payload_idle = true;
	std::string testpmd = "dpdk-testpmd";
	uint32_t rule_count = 10000;  // the generated rule set of established_64b and new_flows_64b
	std::string child_wrapper;    // a command that ours' measured run starts under (e.g. valgrind)
};

void usage()
{
	std::fprintf(stderr,
	             "usage: bench-pipeline [--cases replay_64b,replay_512b,established_64b,new_flows_64b,imix_1m]\n"
	             "                      [--seconds N] [--warmup N] [--stage-seconds N] [--full] [--captures DIR]\n"
	             "                      [--rules FILE] [--rule-count N] [--no-payload-idle] [--testpmd PATH]\n"
	             "                      [--child-wrapper 'COMMAND']\n"
	             "  default: every case; per case ours (0.3 s and one pass of the capture to warm up, 1 s measured),\n"
	             "  ours with stage timers (0.5 s), testpmd io (its first 2-second report);\n"
	             "  replay captures bench-<size>b.pcap from %s (made by make-bench-capture.py\n"
	             "  if missing), generated cases written to /tmp and removed; rules %s/gateway.rules; about\n"
	             "  55 s in all. --full: 8 s measured, 3 s with stage timers. --child-wrapper: ours' measured run\n"
	             "  starts under COMMAND (words split by the shell), e.g. a callgrind command line; its line's\n"
	             "  worker_packets (every packet the worker took, warm-up included) divides what that counts.\n",
	             PORTCULLIS_BENCH_CAPTURE_DIR, PORTCULLIS_RULES_DIR);
}

std::string shell_quote(const std::string& s)
{
	std::string out = "'";
	for (char c : s) {
		if (c == '\'')
			out += "'\\''";
		else
			out += c;
	}
	return out + "'";
}

std::string run_capture(const std::string& cmd, int& status)
{
	std::string out;
	FILE* p = popen(cmd.c_str(), "r");
	if (!p) {
		status = -1;
		return out;
	}
	char buf[4096];
	for (size_t n; (n = std::fread(buf, 1, sizeof(buf), p)) > 0;)
		out.append(buf, n);
	status = pclose(p);
	return out;
}

// The packets of a classic pcap file and its largest frame (record headers only).
struct pcap_shape {
	uint64_t packets = 0;
	uint32_t max_frame = 0;
};
pcap_shape read_pcap_shape(const std::string& path)
{
	pcap_shape s;
	FILE* f = std::fopen(path.c_str(), "rb");
	if (!f)
		return s;
	// Read straight through: a seek per record cost the whole run a second or two.
	std::vector<char> frame(65536);
	std::setvbuf(f, nullptr, _IOFBF, 1 << 20);
	if (std::fread(frame.data(), 24, 1, f) == 1) {
		uint32_t rec[4];
		while (std::fread(rec, sizeof(rec), 1, f) == 1 && rec[2] <= frame.size() &&
		       std::fread(frame.data(), 1, rec[2], f) == rec[2]) {
			++s.packets;
			s.max_frame = std::max(s.max_frame, rec[2]);
		}
	}
	std::fclose(f);
	return s;
}

// Rx-pps of port 0 from testpmd's periodic statistics, skipping the first `skip` reports.
std::vector<double> parse_testpmd_rx_pps(const std::string& out, int skip, int take)
{
	std::istringstream in(out);
	int port = -1, seen = 0;
	std::vector<double> samples;
	for (std::string line; std::getline(in, line);) {
		if (auto at = line.find("NIC statistics for port "); at != std::string::npos) {
			port = std::atoi(line.c_str() + at + 24);
			continue;
		}
		if (auto at = line.find("Rx-pps:"); at != std::string::npos && port == 0)
			if (seen++ >= skip && int(samples.size()) < take)
				samples.push_back(std::atof(line.c_str() + at + 7));
	}
	return samples;
}

// The numbers of a flat JSON array field of our child's line.
std::vector<double> array_field(const std::string& json, const std::string& key)
{
	std::vector<double> out;
	auto at = json.find("\"" + key + "\":[");
	if (at == std::string::npos)
		return out;
	const char* p = json.c_str() + at + key.size() + 4;
	while (*p && *p != ']') {
		char* end = nullptr;
		out.push_back(std::strtod(p, &end));
		if (end == p)
			break;
		p = *end == ',' ? end + 1 : end;
	}
	return out;
}

std::string self_path()
{
	char buf[4096];
	const ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	return n > 0 ? std::string(buf, size_t(n)) : "bench-pipeline";
}

bool file_exists(const std::string& path)
{
	struct stat st{};
	return stat(path.c_str(), &st) == 0 && st.st_size > 24;
}

// Extracts a number field from our child's one-line JSON (flat keys only).
double field(const std::string& json, const std::string& key)
{
	const auto at = json.find("\"" + key + "\":");
	return at == std::string::npos ? 0 : std::atof(json.c_str() + at + key.size() + 3);
}


// Issue #11's goal for a case's ratio to testpmd io; 0 where it sets none (imix_1m).
double ratio_goal(const std::string& name)
{
	if (name == "replay_64b" || name == "established_64b")
		return 0.6;
	if (name == "replay_512b")
		return 0.8;
	if (name == "new_flows_64b")
		return 0.3;
	return 0;
}

// A case: what both sides replay, and how ours is set up.
struct case_setup {
	std::string name;
	std::string frame;              // "64", "512" or "imix"
	pl::capture_pair traffic;
	bool generated = false;         // captures to remove afterwards
	std::string rules;
	bool generated_rules = false;
	uint32_t flows = 0;             // flows in the traffic
	uint32_t flow_capacity = 1u << 20;
	bool expiry = false;
};

bool make_case(const std::string& name, const options& o, case_setup& c, std::string& error)
{
	c.name = name;
	c.rules = o.rules_file;
	if (name == "replay_64b" || name == "replay_512b") {
		const std::string size = name == "replay_64b" ? "64" : "512";
		c.frame = size;
		c.flows = 10000;
		c.traffic.data = o.capture_dir + "/bench-" + size + "b.pcap";
		if (!file_exists(c.traffic.data)) {
			// Made once, where meson would put it, so that later runs start at once.
			std::fprintf(stderr, "bench-pipeline: making %s (once)\n", c.traffic.data.c_str());
			const std::string cmd = "python3 " + shell_quote(PORTCULLIS_BENCH_CAPTURE_SCRIPT) + " " +
			                        shell_quote(c.traffic.data) + " --size " + size;
			if (std::system(cmd.c_str()) != 0) {
				error = "cannot make the capture";
				return false;
			}
		}
		const pcap_shape shape = read_pcap_shape(c.traffic.data);
		c.traffic.data_packets = shape.packets;
		c.traffic.max_frame = shape.max_frame;
		return true;
	}
	c.generated = true;
	if (name == "established_64b" || name == "new_flows_64b") {
		c.rules = pl::large_rule_set(o.rule_count, o.rules_file, 7);
		c.generated_rules = true;
	}
	if (name == "established_64b") {
		c.frame = "64";
		c.flows = 100000;
		c.traffic = pl::established(c.flows, 11);
	} else if (name == "new_flows_64b") {
		c.frame = "64";
		c.flows = 262144;
		c.flow_capacity = 65536;
		c.expiry = true;
		c.traffic = pl::new_flows(c.flows, 13);
	} else if (name == "imix_1m") {
		c.frame = "imix";
		c.flows = 1u << 20;
		c.flow_capacity = 1u << 21;
		c.traffic = pl::imix(c.flows, 262144, 17);
	} else {
		error = "unknown case '" + name + "'";
		return false;
	}
	return true;
}

void remove_case_files(const case_setup& c)
{
	if (c.generated) {
		unlink(c.traffic.data.c_str());
		if (!c.traffic.setup.empty())
			unlink(c.traffic.setup.c_str());
	}
	if (c.generated_rules)
		unlink(c.rules.c_str());
}

// One child run of ours (`program`: this binary, or bench-pipeline-stages beside it), its stderr into
// `log`. Returns the JSON of its "ours {...}" line, empty when the run failed.
std::string run_ours(const std::string& program, const pl::child_run& r, const std::string& log, int& status,
                     const std::string& wrapper = {})
{
	std::string cmd = (wrapper.empty() ? std::string() : wrapper + " ") + shell_quote(program);
	for (const auto& a : pl::child_arguments(r))
		cmd.append(" ").append(shell_quote(a));  // not " " + ...: GCC 12 warns falsely (-Wrestrict) on that
	const std::string out = run_capture(cmd + " 2>" + shell_quote(log), status);
	const size_t at = out.find("ours {");
	if (status != 0 || at == std::string::npos)
		return {};
	std::string line(out, at + 5);
	line.resize(std::min(line.size(), line.find('\n')));
	return line;
}

// A nested object field of a child's line ({...}, no deeper nesting), or "{}".
std::string object_field(const std::string& json, const std::string& key)
{
	const size_t at = json.find("\"" + key + "\":{");
	if (at == std::string::npos)
		return "{}";
	const size_t open = at + key.size() + 3;
	return json.substr(open, json.find('}', open) - open + 1);
}

// The headline rate of a child's line: the median of its per-second rates (the whole window if it had none).
double child_mpps(const std::string& json)
{
	const std::vector<double> samples = array_field(json, "per_second_mpps");
	return samples.empty() ? field(json, "mpps") : bench::median(samples);
}

// testpmd io on the same vdevs, pool and lcore: the median of its per-second Rx rates (empty: failed).
std::vector<double> run_testpmd(const options& o, const std::string& capture, uint64_t packets, uint32_t mbufs,
                                uint16_t data_room, const std::string& log)
{
	// testpmd prints its statistics every --stats-period, but looks at the clock only once a second, so
	// reports come every 2 s here, each the rate since the one before; the first comes as forwarding
	// starts (after the capture is loaded into mbufs, about 4 s per million packets) and is skipped.
	const int skip = 1, take = std::max(1, int(o.seconds / 2 + 0.5));
	// A bound; it normally stops earlier. Loading took up to 16 s per million packets on a slow VM.
	const int wall = 5 + int(double(packets) * 20e-6) + 2 * take;
	bench::eal_config c;
	c.program = o.testpmd;
	c.prefix = "bench-pipeline-testpmd";
	c.lcores = std::string("0,") + forward_lcore;
	c.memory_mb = pl::eal_megabytes(mbufs, data_room);
	c.log_level = "warning";
	c.vdevs = {"net_pcap0,rx_pcap=" + capture + ",infinite_rx=1", "net_null0,no-rx=1"};
	// `echo $$; exec ...`: the first line is the pid that becomes timeout's, so that we can stop testpmd
	// (timeout passes a SIGINT on) as soon as the reports wanted are in.
	std::string cmd = "echo $$; exec timeout -s INT -k 5 " + std::to_string(wall);
	for (const auto& word : bench::eal_arguments(c))
		cmd += ' ' + shell_quote(word);
	// The burst our worker asks rx_burst for (the daemon's default), so that both read the driver alike.
	cmd += " -- --forward-mode=io --stats-period=1 --nb-cores=1 --burst=" +
	       std::to_string(portcullis::dataplane::default_burst) + " --total-num-mbufs=" + std::to_string(mbufs) +
	       " --mbuf-size=" + std::to_string(data_room) +
	       " </dev/null 2>&1";
	int status = 0;
	std::string out;
	if (FILE* p = popen(cmd.c_str(), "r")) {
		char buf[4096];
		pid_t pid = 0;
		if (std::fgets(buf, sizeof buf, p))
			pid = pid_t(std::atol(buf));
		bool stopped = false;
		while (std::fgets(buf, sizeof buf, p)) {
			out += buf;
			if (!stopped && pid > 0 && std::strstr(buf, "Rx-pps:") &&
			    int(parse_testpmd_rx_pps(out, skip, take).size()) == take) {
				kill(pid, SIGINT);
				stopped = true;
			}
		}
		status = pclose(p);
		if (stopped)
			status = 0;  // stopped by us, as the bound would have
	}
	std::vector<double> samples = parse_testpmd_rx_pps(out, skip, take);
	if (samples.empty()) {
		std::ofstream(log) << out;
		std::fprintf(stderr, "bench-pipeline: no testpmd statistics (status %d); its output is in %s\n", status, log.c_str());
	}
	return samples;
}

std::string sibling(const std::string& name)
{
	const std::string self = self_path();
	const size_t slash = self.rfind('/');
	return (slash == std::string::npos ? std::string() : self.substr(0, slash + 1)) + name;
}

} // namespace

int main(int argc, char** argv)
{
	if (pl::child_run r; pl::parse_child_arguments(argc, argv, r))
		return pl::run_child(r);

	options o;
	for (bench::arg_reader a(argc, argv, usage); a.next();) {
		if (a.option("--seconds")) {
			o.seconds = std::max(0.5, std::atof(a.value()));
		} else if (a.option("--warmup")) {
			o.warmup = std::max(0.2, std::atof(a.value()));
		} else if (a.option("--stage-seconds")) {
			o.stage_seconds = std::max(0.5, std::atof(a.value()));
		} else if (a.flag("--full")) {
			o.seconds = 8;
			o.stage_seconds = 3;
		} else if (a.option("--cases")) {
			o.cases = bench::split_list(a.value());
		} else if (a.option("--sizes")) {  // the replay cases of these sizes, as before the other cases existed
			o.cases.clear();
			for (const auto& s : bench::split_list(a.value()))
				o.cases.push_back("replay_" + s + "b");
		} else if (a.option("--captures")) {
			o.capture_dir = a.value();
		} else if (a.flag("--no-payload-idle")) {
			o.payload_idle = false;
		} else if (a.option("--rules")) {
			o.rules_file = a.value();
		} else if (a.option("--rule-count")) {
			o.rule_count = uint32_t(std::max(0, std::atoi(a.value())));
		} else if (a.option("--testpmd")) {
			o.testpmd = a.value();
		} else if (a.option("--child-wrapper")) {
			o.child_wrapper = a.value();
		} else {
			usage();
			return 2;
		}
	}

	const std::string machine = bench::machine(), self = self_path(), stages_program = sibling("bench-pipeline-stages");
	const std::string log = "/tmp/bench-pipeline-" + std::to_string(getpid()) + ".log";
	int failures = 0;
	for (const std::string& name : o.cases) {
		case_setup c;
		std::string error;
		std::fprintf(stderr, "bench-pipeline: %s: preparing\n", name.c_str());
		if (!make_case(name, o, c, error)) {
			std::fprintf(stderr, "bench-pipeline: %s: %s\n", name.c_str(), error.c_str());
			++failures;
			continue;
		}
		// The looped capture is held in mbufs; the setup one is read from its file as it goes.
		const uint32_t mbufs = uint32_t(c.traffic.data_packets + 32768);
		// Mbufs as large as the captures' frames need, for ours and testpmd alike (ours.cc, eal_megabytes).
		const uint16_t data_room = pl::mbuf_data_room(c.traffic.max_frame);
		pl::child_run r;
		r.capture = c.traffic.data;
		r.setup = c.traffic.setup;
		r.rules = c.rules;
		r.warmup = o.warmup;
		r.seconds = o.seconds;
		r.mbufs = mbufs;
		r.mbuf_data_room = data_room;
		r.flow_capacity = c.flow_capacity;
		r.expiry = c.expiry;
		r.capture_packets = c.traffic.data_packets;

		int status = 0;
		std::fprintf(stderr, "bench-pipeline: %s: ours (%lu packets in the capture)\n", name.c_str(),
		             (unsigned long)c.traffic.data_packets);
		const std::string ours = run_ours(self, r, log, status, o.child_wrapper);
		const std::string ours_log = log + ".ours";
		std::rename(log.c_str(), ours_log.c_str());
		pl::child_run timed = r;
		timed.seconds = o.stage_seconds;
		std::fprintf(stderr, "bench-pipeline: %s: ours with stage timers\n", name.c_str());
		const std::string staged = ours.empty() ? std::string() : run_ours(stages_program, timed, log, status);
		std::fprintf(stderr, "bench-pipeline: %s: testpmd\n", name.c_str());
		const std::vector<double> tp_samples = ours.empty() ? std::vector<double>() : run_testpmd(o, c.traffic.data, c.traffic.data_packets, mbufs, data_room, log);
		if (ours.empty() || staged.empty() || tp_samples.empty()) {
			std::fprintf(stderr, "bench-pipeline: %s: a run failed (status %d); its log is %s\n", name.c_str(), status,
			             log.c_str());
			remove_case_files(c);
			++failures;
			continue;
		}

		const double ours_mpps = child_mpps(ours);
		const double base_mpps = bench::median(tp_samples) / 1e6;
		bench::json_line line;
		line.text("bench", "pipeline")
		    .text("case", name)
		    .integer("frame_bytes", c.frame == "imix" ? 362 : std::atoi(c.frame.c_str()));
		if (c.frame == "imix")  // frame_bytes is then the mix's mean on the wire
			line.text("frame_mix", "64,594,1518 at 7:4:1");
		line.integer("flows", c.flows)
		    .fixed("rules", field(ours, "rules"), 0)
		    .integer("capture_packets", c.traffic.data_packets)
		    .integer("burst", portcullis::dataplane::default_burst)
		    .fixed("seconds", field(ours, "seconds"), 1)
		    .fixed("ours_mpps", ours_mpps, 3)
		    .text("baseline", "testpmd_io")
		    .fixed("baseline_mpps", base_mpps, 3)
		    .fixed("ratio", base_mpps > 0 ? ours_mpps / base_mpps : 0.0, 3)
		    .fixed("added_ns_per_packet", ours_mpps > 0 && base_mpps > 0 ? 1e3 / ours_mpps - 1e3 / base_mpps : 0.0, 1)
		    .fixed("cycles_per_packet", field(ours, "cycles_per_packet"), 1)
		    .fixed("driver_rx_cycles_per_packet", field(ours, "driver_rx_cycles_per_packet"), 1)
		    .fixed("driver_tx_cycles_per_packet", field(ours, "driver_tx_cycles_per_packet"), 1)
		    .raw("stage_cycles", object_field(staged, "stage_cycles"))
		    .fixed("stage_cycles_total", field(staged, "stage_cycles_total"), 1)
		    .fixed("stage_run_cycles_per_packet", field(staged, "cycles_per_packet"), 1)
		    .fixed("tsc_ghz", field(ours, "tsc_ghz"), 3);
		// What a ratio can reach here. testpmd io's loop is the same two driver calls as ours without the
		// worker, so testpmd's cycles a packet over our rx + tx is the ratio of a worker that cost nothing,
		// and a goal leaves the worker testpmd's cycles over the goal, less our rx + tx (negative: out of
		// reach against this driver whatever the worker does).
		const double base_cycles = base_mpps > 0 ? field(ours, "tsc_ghz") * 1e3 / base_mpps : NAN;
		const double drivers = field(ours, "driver_rx_cycles_per_packet") + field(ours, "driver_tx_cycles_per_packet");
		line.fixed("baseline_cycles_per_packet", base_cycles, 1)
		    .fixed("ratio_if_worker_free", drivers > 0 ? base_cycles / drivers : NAN, 3);
		if (const double goal = ratio_goal(name); goal > 0)
			line.fixed("goal", goal, 1).fixed("worker_cycles_for_goal", base_cycles / goal - drivers, 1);
		if (name == "new_flows_64b")
			line.fixed("connections_per_second", field(ours, "flows_opened_per_second"), 0);
		line.fixed("forwarded", field(ours, "forwarded"), 0)
		    .fixed("dropped", field(ours, "dropped"), 0)
		    .fixed("flows_opened", field(ours, "flows_opened"), 0)
		    .fixed("flows_live", field(ours, "flows_live"), 0)
		    .fixed("worker_packets", field(ours, "worker_packets"), 0)
		    .raw("drop_reasons", object_field(ours, "drop_reasons"))
		    .fixed_array("ours_per_second_mpps", array_field(ours, "per_second_mpps"), 2)
		    .fixed_array("baseline_per_second_mpps", tp_samples, 2, 1e-6)
		    .text("machine", machine)
		    .print();

		// Payload rules present but not applicable to this traffic: the cost of the inspection hooks on
		// established flows, against the run above without payload rules (goal: within 5%).
		if (o.payload_idle && name == "replay_64b") {
			const std::string idle_rules = "/tmp/bench-pipeline-" + std::to_string(getpid()) + "-payload.rules";
			std::ofstream(idle_rules) << "drop in tcp to any port 8081 content \"never-in-this-capture\"\n"
			                          << "include \"" << o.rules_file << "\"\n";
			std::fprintf(stderr, "bench-pipeline: %s: ours with idle payload rules\n", name.c_str());
			pl::child_run idle_run = r;
			idle_run.rules = idle_rules;
			const std::string idle = run_ours(self, idle_run, log, status);
			unlink(idle_rules.c_str());
			if (idle.empty()) {
				std::fprintf(stderr, "bench-pipeline: the payload-rules run failed; its log is %s\n", log.c_str());
				++failures;
			} else {
				const double idle_mpps = child_mpps(idle);
				bench::json_line()
				    .text("bench", "pipeline")
				    .text("case", name + "_payload_rules_idle")
				    .fixed("ours_mpps", idle_mpps, 3)
				    .text("baseline", "ours_without_payload_rules")
				    .fixed("baseline_mpps", ours_mpps, 3)
				    .fixed("ratio", ours_mpps > 0 ? idle_mpps / ours_mpps : 0.0, 3)
				    .fixed("cycles_per_packet", field(idle, "cycles_per_packet"), 1)
				    .print();
			}
		}
		remove_case_files(c);
	}
	if (failures == 0)
		unlink(log.c_str());
	return failures ? 1 : 0;
}
