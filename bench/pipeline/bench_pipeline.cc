// bench-pipeline: packets per second through the real data path (parse, flow lookup, conntrack,
// classification of new flows, forward or drop) against dpdk-testpmd's io forwarding on the same traffic,
// both replaying the same capture from memory on one core. Prints one JSON object per case on stdout;
// progress and errors go to stderr.
//
// Traffic: a capture made by make-bench-capture.py (10k TCP flows, both directions, handshakes first,
// then data frames of the case's size, ~3% denied packets; see the script). net_pcap with infinite_rx
// holds it in mbufs and replays it forever, so both sides pay the same per-packet copy inside the PMD:
// testpmd io (rx_burst -> tx_burst to net_null) is the ceiling of this I/O path, and the ratio says what
// fraction of it the firewall keeps.
//
// What ours measures: the first pass opens the 10k flows (classification + insert); from then on every
// pass is steady state. Per pass, the handshake ACK and every data segment are packets of an established
// flow (lookup hit, conntrack, forward), each flow's SYN and SYN-ACK replayed into an established flow
// are dropped as conntrack_invalid (lookup hit, conntrack), and the denied packets miss the flow table
// and are classified every time (drops, rejects answered with a RST). The warm-up (--warmup, 1 s) covers
// the first pass; counters are taken over the next --seconds (6). Both sides report the median of their
// per-second rates (ours from the worker's counters, testpmd from its --stats-period=1 Rx-pps of the
// capture port), so one slow second on a shared VM does not move the result; the samples are printed too.
// added_ns_per_packet = 1000/ours_mpps - 1000/baseline_mpps: the firewall's own cost per packet.
//
// Each run is its own process with its own EAL (an EAL starts once per process, and every capture needs
// its own pool): ours re-executes this binary with --child-ours, which runs a dataplane::worker on the
// main lcore, lcore 1, where testpmd runs its forwarding core too. Runs alternate ours, testpmd per case.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>

#include "common/args.h"
#include "common/eal.h"
#include "common/host.h"
#include "common/json.h"
#include "common/stats.h"
#include "dataplane/dataplane.h"
#include "dataplane/ports.h"
#include "rules/rules.h"

namespace dp = portcullis::dataplane;
namespace rules = portcullis::rules;
namespace bench = portcullis::bench;

namespace {

// The inside of gateway.rules (its `set inside`), used to split the replayed capture by direction.
constexpr const char* inside_networks = "198.18.1.0/24, 2001:2:0:1::/64";
// testpmd and our child run their packet loop on this lcore; the main lcore of testpmd gets lcore 0.
constexpr const char* forward_lcore = "1";

struct options {
	double seconds = 6;  // x5 runs (ours and testpmd per size, plus idle payload rules once): under a minute
	double warmup = 1;
	std::vector<int> sizes = {64, 512};
	std::string capture_dir = PORTCULLIS_BENCH_CAPTURE_DIR;
	std::string rules_file = PORTCULLIS_RULES_DIR "/gateway.rules";
	bool payload_idle = true;
	std::string testpmd = "dpdk-testpmd";
	uint32_t flows = 10000;  // for captures generated at run time
};

void usage()
{
	std::fprintf(stderr,
	             "usage: bench-pipeline [--seconds N] [--warmup N] [--sizes 64,512] [--captures DIR] [--rules FILE] [--no-payload-idle]\n"
	             "                      [--testpmd PATH]\n"
	             "  default: 8 s measured (after 1 s of warm-up) per run, frame sizes 64 and 512, captures\n"
	             "  bench-<size>b.pcap from %s (made by make-bench-capture.py if missing),\n"
	             "  rules %s/gateway.rules; about 45 s in all\n",
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

// Packets in a classic pcap file (record headers only).
uint64_t count_pcap_packets(const std::string& path)
{
	FILE* f = std::fopen(path.c_str(), "rb");
	if (!f)
		return 0;
	uint64_t n = 0;
	if (std::fseek(f, 24, SEEK_SET) == 0) {
		uint32_t rec[4];
		while (std::fread(rec, sizeof(rec), 1, f) == 1) {
			++n;
			if (std::fseek(f, long(rec[2]), SEEK_CUR) != 0)
				break;
		}
	}
	std::fclose(f);
	return n;
}

// The pool must hold the whole capture (net_pcap's infinite_rx copies it into mbufs at queue setup) and
// the mbufs in flight; 2.5 KiB per default-sized mbuf with its headers, plus room for everything else.
uint32_t mbufs_for(uint64_t packets) { return uint32_t(packets + 32768); }
uint32_t eal_megabytes(uint32_t mbufs) { return std::max<uint32_t>(1024, 512 + uint32_t((uint64_t(mbufs) * 2560) >> 20)); }

// The EAL of both sides: the same lcores, memory, log level and vdevs, each with a file prefix of its own.
bench::eal_config eal_for(const std::string& program, const std::string& side, const std::string& lcores,
                          const std::string& capture, uint32_t mbufs)
{
	bench::eal_config c;
	c.program = program;
	c.prefix = "bench-pipeline-" + side;
	c.lcores = lcores;
	c.memory_mb = eal_megabytes(mbufs);
	c.log_level = "warning";
	c.vdevs = {"net_pcap0,rx_pcap=" + capture + ",infinite_rx=1", "net_null0,no-rx=1"};
	return c;
}

// ---- our side: the child process ----

uint64_t sum(const uint64_t* v, size_t n)
{
	uint64_t s = 0;
	for (size_t i = 0; i < n; ++i)
		s += v[i];
	return s;
}

int run_ours(const std::string& capture, double warmup, double seconds, const std::string& rules_file, uint32_t mbufs)
{
	if (!bench::start_eal(eal_for("bench-pipeline", "ours", forward_lcore, capture, mbufs)))
		return 1;
	const int outside = dp::resolve_port("net_pcap0"), inside = dp::resolve_port("net_null0");
	if (outside < 0 || inside < 0) {
		std::fprintf(stderr, "bench-pipeline: vdevs net_pcap0/net_null0 not found\n");
		return 1;
	}
	dp::port_setup setup;
	setup.mbufs = mbufs;
	setup.symmetric_rss = false;
	rte_mempool* pool = nullptr;
	std::vector<dp::port_state> ports;
	if (auto err = dp::start_ports({uint16_t(outside), uint16_t(inside)}, setup, pool, ports); !err.empty()) {
		std::fprintf(stderr, "bench-pipeline: %s\n", err.c_str());
		return 1;
	}

	auto parsed = rules::parse_file(rules_file);
	auto in_nets = rules::parse_string(std::string("allow out from { ") + inside_networks + " }", "inside-networks");
	if (!parsed.rules || !in_nets.rules) {
		for (const auto& d : parsed.errors)
			std::fprintf(stderr, "%s\n", rules::format(d).c_str());
		return 1;
	}
	auto compiled = dp::compile(std::move(*parsed.rules), 1, 1);
	if (!compiled.policy) {
		std::fprintf(stderr, "bench-pipeline: %s\n", compiled.error.c_str());
		return 1;
	}
	std::atomic<dp::compiled_policy*> active{compiled.policy.get()};

	dp::worker_config wc;
	wc.flows.tsc_hz = rte_get_tsc_hz();
	wc.inside4 = in_nets.rules->rules.at(0).match.src4;
	wc.inside6 = in_nets.rules->rules.at(0).match.src6;
	const uint16_t out_p = uint16_t(outside), in_p = uint16_t(inside);
	// Replay port: direction per packet; inbound leaves by the inside sink, outbound back by the outside
	// port (net_pcap without a tx file drops what it is given).
	wc.queues.push_back({out_p, 0, -1, {in_p, out_p}, 0});
	// No RCU variable and no control thread: one policy for the whole run and nothing to expire (the
	// flows stay established well within their timeouts).
	auto w = std::make_unique<dp::worker>(wc, active, nullptr);

	const uint64_t hz = rte_get_tsc_hz();
	uint64_t t = rte_rdtsc();
	const uint64_t warm_end = t + uint64_t(warmup * double(hz));
	while ((t = rte_rdtsc()) < warm_end)
		w->poll_once();
	const dp::worker_counters before = w->counters();
	// Received packets at each second of the measured window: the median of the per-second rates is the
	// headline, as it is for testpmd's periodic statistics; a shared VM has noisy seconds.
	std::vector<double> per_second;
	auto rx_now = [&] { return sum(w->counters().rx_packets, dp::max_ports); };
	const uint64_t t0 = rte_rdtsc(), end = t0 + uint64_t(seconds * double(hz));
	uint64_t mark = t0, mark_rx = rx_now();
	while ((t = rte_rdtsc()) < end) {
		w->poll_once();
		if (t - mark >= hz) {
			const uint64_t rx = rx_now();
			per_second.push_back(double(rx - mark_rx) * double(hz) / double(t - mark));
			mark = t;
			mark_rx = rx;
		}
	}
	const dp::worker_counters after = w->counters();
	const double secs = double(t - t0) / double(hz);

	const auto& a = after;
	const auto& b = before;
	const uint64_t rx = sum(a.rx_packets, dp::max_ports) - sum(b.rx_packets, dp::max_ports);
	uint64_t fwd = 0, dropped = 0;
	for (int d = 0; d < 2; ++d) {
		fwd += a.packets[d][0] - b.packets[d][0];
		dropped += a.packets[d][1] - b.packets[d][1] + a.packets[d][2] - b.packets[d][2];
	}
	bench::json_line reasons;
	for (size_t r = 0; r < dp::drop_reason_count; ++r)
		if (const uint64_t n = a.drops[r] - b.drops[r])
			reasons.integer(dp::to_string(dp::drop_reason(r)), n);
	const bench::json_line line =
	    bench::json_line()
	        .integer("rx", rx)
	        .integer("forwarded", fwd)
	        .integer("dropped", dropped)
	        .fixed("seconds", secs, 3)
	        .fixed("mpps", double(rx) / secs / 1e6, 3)
	        .integer("flows_opened", a.flows_opened)
	        .integer("flows_live", w->flows().size())
	        .fixed("busy_share",
	               double(a.busy_tsc - b.busy_tsc) / double(a.busy_tsc - b.busy_tsc + a.idle_tsc - b.idle_tsc + 1), 3)
	        .raw("drop_reasons", reasons.str())
	        .fixed_array("per_second_mpps", per_second, 3, 1e-6);
	std::printf("ours %s\n", line.str().c_str());
	std::fflush(stdout);
	w.reset();
	dp::stop_ports(ports);
	rte_eal_cleanup();
	return 0;
}

// ---- the parent: captures, runs, JSON ----

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

// Our side of one run: this binary again with --child-ours, its stderr into `log`. Returns the JSON of its
// "ours {...}" line, empty when the run failed.
std::string run_child(const options& o, const std::string& capture, const std::string& rules_file, uint32_t mbufs,
                      const std::string& log, int& status)
{
	const std::string cmd = shell_quote(self_path()) + " --child-ours " + shell_quote(capture) + " " +
	                        bench::fixed(o.warmup, 3) + " " + bench::fixed(o.seconds, 3) + " " + shell_quote(rules_file) +
	                        " " + std::to_string(mbufs) + " 2>" + shell_quote(log);
	const std::string out = run_capture(cmd, status);
	const auto at = out.find("ours {");
	if (status != 0 || at == std::string::npos)
		return {};
	return out.substr(at + 5, out.find('\n', at) - at - 5);
}

// The headline rate of a child's line: the median of its per-second rates (the whole window if it had none).
double child_mpps(const std::string& json)
{
	const std::vector<double> samples = array_field(json, "per_second_mpps");
	return samples.empty() ? field(json, "mpps") : bench::median(samples);
}

} // namespace

int main(int argc, char** argv)
{
	if (argc >= 2 && std::string(argv[1]) == "--child-ours") {
		if (argc != 7)
			return 2;
		return run_ours(argv[2], std::atof(argv[3]), std::atof(argv[4]), argv[5], uint32_t(std::atol(argv[6])));
	}

	options o;
	for (bench::arg_reader a(argc, argv, usage); a.next();) {
		if (a.option("--seconds")) {
			o.seconds = std::max(0.5, std::atof(a.value()));
		} else if (a.option("--warmup")) {
			o.warmup = std::max(0.2, std::atof(a.value()));
		} else if (a.option("--sizes")) {
			o.sizes.clear();
			for (const auto& s : bench::split_list(a.value()))
				if (int n = std::atoi(s.c_str()); n >= 60 && n <= 1518)
					o.sizes.push_back(n);
		} else if (a.option("--captures")) {
			o.capture_dir = a.value();
		} else if (a.flag("--no-payload-idle")) {
			o.payload_idle = false;
		} else if (a.option("--rules")) {
			o.rules_file = a.value();
		} else if (a.option("--testpmd")) {
			o.testpmd = a.value();
		} else {
			usage();
			return 2;
		}
	}

	const std::string machine = bench::machine();
	const std::string log = "/tmp/bench-pipeline-" + std::to_string(getpid()) + ".log";
	int failures = 0;
	for (int size : o.sizes) {
		const std::string name = "replay_" + std::to_string(size) + "b";
		std::string capture = o.capture_dir + "/bench-" + std::to_string(size) + "b.pcap";
		if (!file_exists(capture)) {
			// Made once, where meson would put it, so that later runs start at once.
			std::fprintf(stderr, "bench-pipeline: making %s (once)\n", capture.c_str());
			const std::string cmd = "python3 " + shell_quote(PORTCULLIS_BENCH_CAPTURE_SCRIPT) + " " +
			                        shell_quote(capture) + " --size " + std::to_string(size);
			if (std::system(cmd.c_str()) != 0) {
				std::fprintf(stderr, "bench-pipeline: cannot make the capture\n");
				return 1;
			}
		}
		const uint64_t packets = count_pcap_packets(capture);
		const uint32_t mbufs = mbufs_for(packets);

		// Ours.
		int status = 0;
		std::fprintf(stderr, "bench-pipeline: %s: ours (%lu packets in the capture)\n", name.c_str(),
		             (unsigned long)packets);
		const std::string ours = run_child(o, capture, o.rules_file, mbufs, log, status);
		if (ours.empty()) {
			std::fprintf(stderr, "bench-pipeline: our run failed (status %d); its log is %s\n", status, log.c_str());
			++failures;
			continue;
		}

		// testpmd: the same EAL memory, vdevs and pool size; io forwarding from the capture to the sink.
		std::fprintf(stderr, "bench-pipeline: %s: testpmd\n", name.c_str());
		const int skip = int(o.warmup + 1.5), take = int(o.seconds);
		const int wall = skip + take + 2;
		std::string cmd = "timeout -s INT -k 5 " + std::to_string(wall);
		for (const auto& word : bench::eal_arguments(
		         eal_for(o.testpmd, "testpmd", std::string("0,") + forward_lcore, capture, mbufs)))
			cmd += ' ' + shell_quote(word);
		cmd += " -- --forward-mode=io --stats-period=1 --nb-cores=1 --burst=32 --total-num-mbufs=" +
		       std::to_string(mbufs) + " </dev/null 2>&1";
		const std::string tp_out = run_capture(cmd, status);
		const std::vector<double> tp_samples = parse_testpmd_rx_pps(tp_out, skip, take);
		if (tp_samples.empty()) {
			std::ofstream(log) << tp_out;
			std::fprintf(stderr, "bench-pipeline: no testpmd statistics (status %d); its output is in %s\n", status,
			             log.c_str());
			++failures;
			continue;
		}

		const std::vector<double> ours_samples = array_field(ours, "per_second_mpps");
		const double ours_mpps = child_mpps(ours);
		const double base_mpps = bench::median(tp_samples) / 1e6;
		// Our child's drop reasons, a flat object, copied as they are.
		const size_t reasons = ours.find("\"drop_reasons\":{"), reasons_end = ours.find('}', reasons);
		// added_ns_per_packet: what the firewall costs per packet beyond the replay I/O both sides pay.
		bench::json_line()
		    .text("bench", "pipeline")
		    .text("case", name)
		    .integer("frame_bytes", size)
		    .integer("capture_packets", packets)
		    .fixed("seconds", field(ours, "seconds"), 1)
		    .fixed("ours_mpps", ours_mpps, 3)
		    .text("baseline", "testpmd_io")
		    .fixed("baseline_mpps", base_mpps, 3)
		    .fixed("ratio", base_mpps > 0 ? ours_mpps / base_mpps : 0.0, 3)
		    .fixed("added_ns_per_packet", ours_mpps > 0 && base_mpps > 0 ? 1e3 / ours_mpps - 1e3 / base_mpps : 0.0, 1)
		    .fixed("forwarded", field(ours, "forwarded"), 0)
		    .fixed("dropped", field(ours, "dropped"), 0)
		    .fixed("flows_opened", field(ours, "flows_opened"), 0)
		    .raw("drop_reasons", reasons == std::string::npos ? "{}" : ours.substr(reasons + 15, reasons_end - reasons - 14))
		    .fixed_array("ours_per_second_mpps", ours_samples, 2)
		    .fixed_array("baseline_per_second_mpps", tp_samples, 2, 1e-6)
		    .text("machine", machine)
		    .print();

		// Payload rules present but not applicable to this traffic: the cost of the inspection hooks on
		// established flows, against the run above without payload rules (goal: within 5%). First size only,
		// to stay within the minute.
		if (o.payload_idle && size == o.sizes.front()) {
			const std::string idle_rules = "/tmp/bench-pipeline-" + std::to_string(getpid()) + "-payload.rules";
			std::ofstream(idle_rules) << "drop in tcp to any port 8081 content \"never-in-this-capture\"\n"
			                          << "include \"" << o.rules_file << "\"\n";
			std::fprintf(stderr, "bench-pipeline: %s: ours with idle payload rules\n", name.c_str());
			const std::string idle = run_child(o, capture, idle_rules, mbufs, log, status);
			unlink(idle_rules.c_str());
			if (idle.empty()) {
				std::fprintf(stderr, "bench-pipeline: the payload-rules run failed; its log is %s\n", log.c_str());
				++failures;
				continue;
			}
			const double idle_mpps = child_mpps(idle);
			bench::json_line()
			    .text("bench", "pipeline")
			    .text("case", name + "_payload_rules_idle")
			    .fixed("ours_mpps", idle_mpps, 3)
			    .text("baseline", "ours_without_payload_rules")
			    .fixed("baseline_mpps", ours_mpps, 3)
			    .fixed("ratio", ours_mpps > 0 ? idle_mpps / ours_mpps : 0.0, 3)
			    .print();
		}
	}
	if (failures == 0)
		unlink(log.c_str());
	return failures ? 1 : 0;
}
