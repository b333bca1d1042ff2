// bench-flood: do established connections keep their speed while a SYN flood fills the flow table?
//
// One worker (dataplane::worker, the daemon's data path) between two in-memory ports (net_ring, set up
// by start_ports like the daemon's), running gateway.rules. Before timing, E TCP connections (default
// 1000) from outside clients to the server's http/https ports do their three-way handshake through the
// worker. Then, in interleaved passes, the same traffic of their data segments (both directions, 64-byte
// frames) runs
//   - without flood (the baseline), and
//   - with a SYN flood: SYNs from random sources in 198.18.0.0/15 (random source ports and sequence
//     numbers) to the server's http port, which the rules allow, so that every SYN opens an embryonic
//     flow. The flow table is small (default 65,536 entries), so the flood fills it many times over and
//     every flood SYN after the first fill evicts a half-open flow.
// Flood and established packets come in separate bursts (--shares: flood packets / all packets, one
// case each; 0.5 is one flood burst per established burst), and each burst's poll round (rx_burst from
// the ring, judge, tx_burst to the ring) is timed on its own with the TSC. The headline, ours_mpps, is
// the established packets divided by the time spent on their own bursts: what an established packet
// costs while the flood churns the table and the caches, not the share of one core the flood leaves
// over (that is total_mpps and the flood share). The frames of each burst are written into freshly
// allocated mbufs just before it is timed, as a NIC would have just written them, in both cases alike.
//
// Checks (exit 1 when one fails): every established packet of every pass leaves by the other port (one
// dropped established packet fails the run), the table's size never exceeds its capacity, and after each
// flood pass every established connection is still in the table, established. With cookies always on,
// no flood SYN may reach the table or the server, and every one must be answered; adaptive, the flood
// may leave at most two ticks' worth of SYNs in the table and evict nothing.
//
// Between passes the flood's half-open flows are expired the way the control thread does it (expire()
// with a clock 60 s ahead: past the 30 s SYN-sent timeout, far inside the established one), so each
// flood pass starts from a table holding only the established flows and fills it again. During a pass
// nothing expires: the flood is far faster than any timeout, eviction is the only way out.
//
// Then the 99% share again (--cookie-shares, --adaptive-shares) on a fresh worker with SYN cookies always
// on, and with them adaptive (the daemon's default): the flood's SYNs answered with cookies instead of
// opening flows. Built as bench-flood-stages (the data path's stage timers compiled in), each line also
// gives an established packet's cycles by stage, during the flood and without it. At 99% without cookies
// (--gap-shares) a third side runs the established rounds with idle waits as long as the flood's bursts
// in their place: what the time away costs an established packet, apart from what the flood's work does.
//
// One JSON line per flood share on stdout; progress and failures on stderr. The frames are made in
// traffic.cc, the worker between its ring ports is set up and driven by harness.cc; this file holds the
// passes, their measurement and the JSON.
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <initializer_list>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <boost/program_options.hpp>

#include <rte_cycles.h>
#include <rte_eal.h>

#include "common/eal.h"
#include "common/host.h"
#include "common/json.h"
#include "common/stats.h"
#include "dataplane/dataplane.h"
#include "flood/harness.h"
#include "flood/traffic.h"
#include "flow/flow_table.h"

namespace dp = portcullis::dataplane;
namespace flow = portcullis::flow;
namespace po = boost::program_options;
namespace bench = portcullis::bench;
using bench::median;
using namespace portcullis::bench::flood;  // the traffic (traffic.h) and the worker it goes through (harness.h)

namespace {

struct options {
	double seconds = 1.5;        // per case per pass: 5 shares x 3 passes x 2 sides x 1.5 s, and a gap side at 99%: about 52 s in all
	uint32_t passes = 3;
	double warmup = 0.5;
	uint32_t flows = 1000;
	uint32_t capacity = 1u << 16;
	std::vector<double> shares = {0.5, 0.9, 0.99};
	std::vector<double> cookie_shares = {0.99};    // the same with SYN cookies always on
	std::vector<double> adaptive_shares = {0.99};  // and with them adaptive, the daemon's default
	std::vector<double> gap_shares = {0.99};       // cookies off: also a pass with idle gaps instead of the flood
	uint16_t burst = 32;
	std::string rules_file = PORTCULLIS_RULES_DIR "/gateway.rules";
	unsigned lcore = 1;
	uint64_t seed = 1;
};

// ---- one pass of one case ----

struct pass_result {
	uint64_t est_packets = 0, est_tsc = 0, est_dropped = 0;
	uint64_t flood_packets = 0, flood_tsc = 0, flood_forwarded = 0;
	uint64_t size_max = 0;
	std::vector<uint32_t> est_rounds, flood_rounds;  // TSC ticks of each timed poll round
	// bench-flood-stages: each established round's TSC ticks by stage, as est_rounds
	std::vector<std::array<uint32_t, dp::stage_count>> est_round_stages;
	// Summed over passes: established rounds by stage, and their packets, over the rounds trim() keeps
	uint64_t est_stage_tsc[dp::stage_count] = {}, est_stage_packets = 0;
	std::vector<double> away;  // TSC ticks from each established round's end to the next one's start
	bool failed = false;
};

// Poll rounds the OS interrupted: on a shared 2-vCPU machine a round is now and then descheduled, and
// one such round (milliseconds) outweighs thousands of real ones (microseconds). Rounds longer than 20x
// the median are left out of the rates and counted; the rest are summed, so slow rounds of the data
// path itself (cache misses, long bucket scans) still count in full.
struct trimmed {
	uint64_t tsc = 0, rounds = 0, discarded = 0;
	uint64_t limit = 0;  // rounds of more ticks are left out
};

trimmed trim(const std::vector<uint32_t>& rounds)
{
	trimmed t;
	if (rounds.empty())
		return t;
	std::vector<uint32_t> sorted = rounds;
	std::nth_element(sorted.begin(), sorted.begin() + long(sorted.size() / 2), sorted.end());
	const uint64_t limit = 20 * uint64_t(sorted[sorted.size() / 2]);
	t.limit = limit;
	for (uint32_t r : rounds) {
		if (r > limit) {
			++t.discarded;
			continue;
		}
		t.tsc += r;
		++t.rounds;
	}
	return t;
}

// Runs established bursts (one per port per round) for `seconds`, with flood bursts in between so that
// flood packets are `share` of all packets (0: no flood). With `gap` TSC ticks instead, no flood: the
// worker waits that long after each established round, idle, as long as the flood's bursts took.
pass_result run_pass(harness& h, connections& c, flood_source& flood, double share, double seconds, uint64_t gap = 0)
{
	pass_result r;
	const uint64_t hz = rte_get_tsc_hz();
	const uint64_t end = rte_rdtsc() + uint64_t(seconds * double(hz));
	const uint32_t n = uint32_t(c.order.size());
	const uint16_t b = h.burst;
	const double flood_per_est = share > 0 ? share / (1 - share) : 0;
	double credit = 0;
	std::vector<tcp_frame> syns(b);
	const tcp_frame* f[dp::max_burst];
	while (rte_rdtsc() < end && !r.failed) {
		// Established: a burst from clients on the outside port, one from the server on the inside port.
		for (int side : {outside, inside}) {
			for (uint16_t i = 0; i < b; ++i) {
				const uint32_t k = c.order[(c.cursor + i + (side == inside ? n / 2 : 0)) % n];
				f[i] = side == outside ? &c.to_server[k] : &c.to_client[k];
			}
			if (!h.inject(side, f, b)) {
				std::fprintf(stderr, "bench-flood: cannot inject (mbuf pool empty?)\n");
				r.failed = true;
			}
		}
		if (r.failed)
			break;
		c.cursor = (c.cursor + b) % n;
		uint64_t stage_before[dp::stage_count];
		if constexpr (dp::stage_timers)
			std::copy_n(h.worker->counters().stage_tsc, dp::stage_count, stage_before);
		const uint64_t est_ticks = h.timed_poll();
		if constexpr (dp::stage_timers) {
			std::array<uint32_t, dp::stage_count> by_stage;
			for (uint32_t k = 0; k < dp::stage_count; ++k)
				by_stage[k] = uint32_t(std::min<uint64_t>(h.worker->counters().stage_tsc[k] - stage_before[k], UINT32_MAX));
			r.est_round_stages.push_back(by_stage);
		}
		r.est_tsc += est_ticks;
		r.est_rounds.push_back(uint32_t(std::min<uint64_t>(est_ticks, UINT32_MAX)));
		r.est_packets += 2u * b;
		const uint32_t out = h.drain(outside) + h.drain(inside);
		if (out != 2u * b) {
			r.est_dropped += 2u * b - out;
			r.failed = true;
		}
		const uint64_t away_from = rte_rdtsc();
		if (gap) {
			// A bare loop on the TSC: under KVM a loop of `pause` makes the host deschedule the vCPU
			// (pause-loop exiting), which a worker that is busy with a flood is not.
			for (const uint64_t until = away_from + gap; rte_rdtsc() < until;)
				;
			r.away.push_back(double(rte_rdtsc() - away_from));
			continue;
		}
		// Flood bursts owed for the established packets just sent.
		credit += flood_per_est * 2 * b;
		while (credit >= b && !r.failed) {
			credit -= b;
			for (uint16_t i = 0; i < b; ++i) {
				syns[i] = flood.syn();
				f[i] = &syns[i];
			}
			if (!h.inject(outside, f, b)) {
				std::fprintf(stderr, "bench-flood: cannot inject (mbuf pool empty?)\n");
				r.failed = true;
				break;
			}
			const uint64_t flood_ticks = h.timed_poll();
			r.flood_tsc += flood_ticks;
			r.flood_rounds.push_back(uint32_t(std::min<uint64_t>(flood_ticks, UINT32_MAX)));
			r.flood_packets += b;
			r.flood_forwarded += h.drain(inside);
			h.drain(outside);
			r.size_max = std::max<uint64_t>(r.size_max, h.worker->flows().size());
		}
		if (share > 0)
			r.away.push_back(double(rte_rdtsc() - away_from));
	}
	return r;
}

bool parse_options(int argc, char** argv, options& o, int& exit_code)
{
	std::string shares = "0.5,0.9,0.99", cookie_shares = "0.99", adaptive_shares = "0.99", gap_shares = "0.99";
	po::options_description desc(
	    "usage: bench-flood [options]\n"
	    "Established TCP connections through one worker, without and during a SYN flood that overfills the\n"
	    "flow table; one JSON line per flood share. Defaults take about 52 s");
	desc.add_options()
	    ("help,h", "this text")
	    ("seconds", po::value(&o.seconds)->default_value(o.seconds), "seconds per case per pass")
	    ("passes", po::value(&o.passes)->default_value(o.passes), "passes (no flood, flood, and the gap side where asked) per share; medians reported")
	    ("warmup", po::value(&o.warmup)->default_value(o.warmup), "seconds of established traffic before the first pass")
	    ("flows", po::value(&o.flows)->default_value(o.flows), "established connections")
	    ("capacity", po::value(&o.capacity)->default_value(o.capacity), "flow table capacity")
	    ("shares", po::value(&shares)->default_value(shares), "flood shares of all packets, comma-separated, each in (0, 0.99]")
	    ("cookie-shares", po::value(&cookie_shares)->default_value(cookie_shares),
	     "flood shares to run again with SYN cookies always on (flows.syncookies); empty for none")
	    ("adaptive-shares", po::value(&adaptive_shares)->default_value(adaptive_shares),
	     "flood shares to run again with SYN cookies adaptive, the daemon's default; empty for none")
	    ("gap-shares", po::value(&gap_shares)->default_value(gap_shares),
	     "shares (of --shares) that also run a pass with idle gaps as long as the flood's bursts; empty for none")
	    ("burst", po::value(&o.burst)->default_value(o.burst), "packets per burst (1-64)")
	    ("rules", po::value(&o.rules_file)->default_value(o.rules_file), "rule file (must allow inbound TCP to 198.18.1.10 ports 80, 443)")
	    ("lcore", po::value(&o.lcore)->default_value(o.lcore), "EAL lcore to run on")
	    ("seed", po::value(&o.seed)->default_value(o.seed), "seed of the flood's sources and the flows' order");
	po::variables_map vm;
	try {
		po::store(po::parse_command_line(argc, argv, desc), vm);
		po::notify(vm);
	} catch (const po::error& e) {
		std::cerr << "bench-flood: " << e.what() << "\n" << desc << "\n";
		exit_code = 2;
		return false;
	}
	if (vm.count("help")) {
		std::cout << desc << "\n";
		exit_code = 0;
		return false;
	}
	auto split = [](const std::string& text) {
		std::vector<double> v;
		std::stringstream ss(text);
		for (std::string s; std::getline(ss, s, ',');)
			v.push_back(std::atof(s.c_str()));
		return v;
	};
	o.shares = split(shares);
	o.cookie_shares = split(cookie_shares);
	o.adaptive_shares = split(adaptive_shares);
	o.gap_shares = split(gap_shares);
	auto bad = [](const std::vector<double>& v) {
		return std::any_of(v.begin(), v.end(), [](double s) { return !(s > 0 && s <= 0.99); });
	};
	const bool bad_share = bad(o.shares) || bad(o.cookie_shares) || bad(o.adaptive_shares) ||
	                       std::any_of(o.gap_shares.begin(), o.gap_shares.end(), [&](double g) {
		                       return std::find(o.shares.begin(), o.shares.end(), g) == o.shares.end();
	                       });
	if (o.shares.empty() || bad_share || o.burst < 1 || o.burst > dp::max_burst || o.flows < 2 * o.burst ||
	    o.flows >= o.capacity || o.passes < 1 || o.seconds <= 0) {
		std::cerr << "bench-flood: bad option values (shares in (0, 0.99], gap shares among --shares, burst 1-64, "
		             "2*burst <= flows < capacity)\n";
		exit_code = 2;
		return false;
	}
	return true;
}

// One flood share: passes without and with the flood, one JSON line. False when a check failed.
bool run_share(harness& h, connections& conns, flood_source& flood, const options& o, double share,
               dp::syncookie_mode cookies, const std::string& machine)
{
	bool failed = false;
	std::vector<double> base_mpps, flood_mpps, pass_ratio, syn_mpps, total_mpps, base_untrimmed, flood_untrimmed;
	std::vector<double> gap_mpps, gap_us;
	const bool with_gap = cookies == dp::syncookie_mode::never &&
	                      std::find(o.gap_shares.begin(), o.gap_shares.end(), share) != o.gap_shares.end();
	uint64_t rounds = 0, discarded = 0;
	pass_result sum_base, sum_flood, sum_gap;
	uint64_t established_min = o.flows, live_max = 0;
	const flow::table_counters& tc = h.worker->flows().counters();
	const uint64_t inserts0 = tc.inserts, evicted0 = tc.evicted_embryonic, refused_full0 = tc.refused_full,
	               refused_buckets0 = tc.refused_buckets;
	const dp::worker_counters& wc = h.worker->counters();
	const uint64_t full_drops0 = wc.drops[size_t(dp::drop_reason::flow_table_full)];
	const uint64_t opened0 = wc.flows_opened, synacks0 = wc.syncookies_sent;
	const bool proxied = cookies == dp::syncookie_mode::always;
	const bool adaptive = cookies == dp::syncookie_mode::adaptive;
	uint64_t drops0 = 0;
	for (size_t r = 0; r < dp::drop_reason_count; ++r)
		drops0 += wc.drops[r];
	const uint64_t hz = rte_get_tsc_hz();
	for (uint32_t pass = 0; pass < o.passes && !failed; ++pass) {
		const pass_result a = run_pass(h, conns, flood, 0, o.seconds);
		const pass_result f = run_pass(h, conns, flood, share, o.seconds);
		const census c = count_flows(h.worker->flows());
		established_min = std::min(established_min, c.established);
		live_max = std::max(live_max, c.live);
		expire_flood(h);
		// The gap side, on the table the baseline has (the flood's flows expired): the same established
		// rounds, each followed by an idle wait as long as the flood kept the worker away from them in the
		// pass just run (the median time from one established round's end to the next one's start: the
		// flood's polls, and the bench making and draining its frames). What the flood costs an
		// established packet beyond that time away is ours / gap.
		pass_result g;
		if (with_gap && !f.away.empty()) {
			const uint64_t gap = uint64_t(median(f.away));
			g = run_pass(h, conns, flood, 0, o.seconds, gap);
			gap_us.push_back(median(g.away) * 1e6 / double(hz));
		}
		// Rates over the rounds the OS did not interrupt (see trim); packets per round are fixed.
		const trimmed at = trim(a.est_rounds), ft = trim(f.est_rounds), gt = trim(g.est_rounds),
		              st = trim(f.flood_rounds);
		for (const pass_result* p : std::initializer_list<const pass_result*>{&a, &f, &g}) {
			pass_result& s = p == &a ? sum_base : p == &f ? sum_flood : sum_gap;
			const trimmed& t = p == &a ? at : p == &f ? ft : gt;
			s.est_packets += p->est_packets, s.est_tsc += p->est_tsc, s.est_dropped += p->est_dropped;
			s.flood_packets += p->flood_packets, s.flood_tsc += p->flood_tsc;
			s.flood_forwarded += p->flood_forwarded;
			s.size_max = std::max(s.size_max, p->size_max);
			// Stage cycles over the same rounds as the rates: a round the OS interrupted in the middle of a
			// stage would charge that stage with milliseconds.
			for (size_t r = 0; r < p->est_round_stages.size(); ++r) {
				if (p->est_rounds[r] > t.limit)
					continue;
				for (uint32_t k = 0; k < dp::stage_count; ++k)
					s.est_stage_tsc[k] += p->est_round_stages[r][k];
				s.est_stage_packets += 2u * o.burst;
			}
			failed |= p->failed;
		}
		auto mpps = [&](uint64_t packets, uint64_t tsc) { return tsc ? double(packets) * double(hz) / double(tsc) / 1e6 : 0.0; };
		const double am = mpps(at.rounds * 2 * o.burst, at.tsc), fm = mpps(ft.rounds * 2 * o.burst, ft.tsc);
		if (with_gap && !g.est_rounds.empty()) {
			gap_mpps.push_back(mpps(gt.rounds * 2 * o.burst, gt.tsc));
			rounds += g.est_rounds.size();
			discarded += gt.discarded;
		}
		base_mpps.push_back(am);
		flood_mpps.push_back(fm);
		pass_ratio.push_back(am > 0 ? fm / am : 0);
		syn_mpps.push_back(mpps(st.rounds * o.burst, st.tsc));
		total_mpps.push_back(mpps(ft.rounds * 2 * o.burst + st.rounds * o.burst, ft.tsc + st.tsc));
		base_untrimmed.push_back(mpps(a.est_packets, a.est_tsc));
		flood_untrimmed.push_back(mpps(f.est_packets, f.est_tsc));
		rounds += a.est_rounds.size() + f.est_rounds.size() + f.flood_rounds.size();
		discarded += at.discarded + ft.discarded + st.discarded;
		std::fprintf(stderr, "bench-flood: share %.2f pass %u: established %.2f Mpps without, %.2f during (%.3f); "
		             "flood %.2f Mpps; table max %lu of %u, %lu live, %lu established\n",
		             share, pass + 1, am, fm, pass_ratio.back(), syn_mpps.back(), (unsigned long)f.size_max,
		             o.capacity, (unsigned long)c.live, (unsigned long)c.established);
	}
	uint64_t drops = 0;
	for (size_t r = 0; r < dp::drop_reason_count; ++r)
		drops += wc.drops[r];
	const uint64_t est_dropped = sum_base.est_dropped + sum_flood.est_dropped + sum_gap.est_dropped;
	const uint64_t size_max = std::max(sum_base.size_max, sum_flood.size_max);
	const uint64_t evicted = tc.evicted_embryonic - evicted0;
	const double ours = median(flood_mpps), base = median(base_mpps);
	// Flood SYNs the worker dropped (the table refused them: flow_table_full) are the only drops
	// expected; every established packet is checked above.
	// With SYN cookies the flood must leave no trace in the table: no entry past the established ones,
	// no SYN forwarded to the server, every one answered.
	const uint64_t flood_entries = size_max > o.flows ? size_max - o.flows : 0;
	const uint64_t synacks = wc.syncookies_sent - synacks0;
	// Adaptive, the flood opens flows only until cookies come on: at most a tick's worth of SYNs at the
	// configured rate (a tick is a tenth of a second), twice that when the flood starts just before a
	// tick ends (the count starts again at each tick); from then on every SYN is answered with a cookie,
	// so the table never fills and evicts nothing.
	const uint64_t adaptive_entries_max = 2 * (h.config.syncookies.rate / 10) + o.burst;
	const bool ok = !failed && est_dropped == 0 && size_max <= o.capacity && live_max <= o.capacity &&
	                established_min == o.flows &&
	                (!proxied || (flood_entries == 0 && sum_flood.flood_forwarded == 0 && synacks == sum_flood.flood_packets)) &&
	                (!adaptive || (flood_entries <= adaptive_entries_max && evicted == 0 &&
	                               synacks + sum_flood.flood_forwarded == sum_flood.flood_packets));
	const uint64_t full_drops = wc.drops[size_t(dp::drop_reason::flow_table_full)] - full_drops0;
	// Built with the stage timers (bench-flood-stages): an established packet's TSC cycles by stage of
	// worker::process, during the flood and without it, over all passes' established rounds that the rates
	// count (trim).
	auto stages = [&](const pass_result& p) {
		bench::json_line line;
		for (uint32_t k = 0; k < dp::stage_count; ++k)
			line.fixed(dp::to_string(dp::stage(k)),
			           p.est_stage_packets ? double(p.est_stage_tsc[k]) / double(p.est_stage_packets) : 0.0, 1);
		return line.str();
	};
	bench::json_line line;
	line
	    .text("bench", "flood")
	    .text("case", "syn_flood_share" + bench::fixed(share * 100, 0) +
	                      (proxied ? "_syncookies" : adaptive ? "_syncookies_adaptive" : ""))
	    .text("syncookies", proxied ? "always" : adaptive ? "adaptive" : "never")
	    .fixed("flood_share", share, 2)
	    .integer("flows_established", o.flows)
	    .integer("flow_capacity", o.capacity)
	    .integer("burst", o.burst)
	    .integer("passes", flood_mpps.size())
	    .fixed("seconds_per_pass", o.seconds, 1)
	    .text("ours", "established_during_flood")
	    .fixed("ours_mpps", ours, 3)
	    .text("baseline", "established_without_flood")
	    .fixed("baseline_mpps", base, 3)
	    .fixed("ratio", base > 0 ? ours / base : 0.0, 3)
	    .raw("goal", "0.9")
	    .fixed_array("pass_ratios", pass_ratio, 3)
	    .raw("gap_mpps", with_gap ? bench::fixed(median(gap_mpps), 3) : "null")
	    .raw("gap_us", with_gap ? bench::fixed(median(gap_us), 1) : "null")
	    .raw("gap_ratio", with_gap && base > 0 ? bench::fixed(median(gap_mpps) / base, 3) : "null")
	    .raw("ratio_vs_gap", with_gap && median(gap_mpps) > 0 ? bench::fixed(ours / median(gap_mpps), 3) : "null")
	    .fixed("ratio_all_rounds",
	           median(base_untrimmed) > 0 ? median(flood_untrimmed) / median(base_untrimmed) : 0.0, 3)
	    .integer("rounds", rounds)
	    .integer("rounds_discarded", discarded)
	    .fixed("established_ns_per_packet", ours > 0 ? 1e3 / ours : 0.0, 1)
	    .fixed("baseline_ns_per_packet", base > 0 ? 1e3 / base : 0.0, 1)
	    .fixed("flood_mpps", median(syn_mpps), 3)
	    .fixed("total_mpps", median(total_mpps), 3)
	    .integer("established_packets", sum_base.est_packets + sum_flood.est_packets + sum_gap.est_packets)
	    .integer("established_dropped", est_dropped)
	    .integer("flood_packets", sum_flood.flood_packets)
	    .integer("flood_forwarded", sum_flood.flood_forwarded)
	    .integer("flows_opened", wc.flows_opened - opened0)
	    .fixed("table_fills", double(wc.flows_opened - opened0) / double(o.capacity), 1)
	    .integer("flow_table_max", size_max)
	    .integer("flood_entries_max", flood_entries)
	    .integer("syncookies_sent", synacks)
	    .fixed("synack_mpps", sum_flood.flood_tsc ? double(synacks) * double(hz) / double(sum_flood.flood_tsc) / 1e6 : 0.0, 3)
	    .integer("flow_table_live_max", live_max)
	    .integer("established_alive_min", established_min)
	    .integer("flow_inserts", tc.inserts - inserts0)
	    .integer("evicted_embryonic", evicted)
	    .integer("refused_full", tc.refused_full - refused_full0)
	    .integer("refused_buckets", tc.refused_buckets - refused_buckets0)
	    .integer("drops_flow_table_full", full_drops)
	    .integer("drops_other", drops - drops0 - full_drops)
	    .boolean("ok", ok);
	if constexpr (dp::stage_timers)
		line.raw("stage_cycles", stages(sum_flood))
		    .raw("baseline_stage_cycles", stages(sum_base))
		    .raw("gap_stage_cycles", with_gap ? stages(sum_gap) : "null");
	line.text("machine", machine).print();
	if (!ok) {
		std::fprintf(stderr, "bench-flood: FAILED: %lu established packets dropped, table max %lu (live %lu) of %u, "
		             "%lu of %u connections left established\n",
		             (unsigned long)est_dropped, (unsigned long)size_max, (unsigned long)live_max, o.capacity,
		             (unsigned long)established_min, o.flows);
		for (size_t r = 0; r < dp::drop_reason_count; ++r)
			if (wc.drops[r])
				std::fprintf(stderr, "bench-flood: dropped %lu as %s\n", (unsigned long)wc.drops[r],
				             std::string(dp::to_string(dp::drop_reason(r))).c_str());
		failed = true;
	}
	return !failed;
}

} // namespace

int main(int argc, char** argv)
{
	options o;
	int exit_code = 0;
	if (!parse_options(argc, argv, o, exit_code))
		return exit_code;

	const long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (long(o.lcore) >= cpus)
		o.lcore = 0;
	bench::eal_config eal;
	eal.program = "bench-flood";
	eal.lcores = std::to_string(o.lcore);
	if (!bench::start_eal(eal))
		return 1;
	harness h;
	if (auto err = h.start(o.rules_file, o.burst, o.capacity); !err.empty()) {
		std::fprintf(stderr, "bench-flood: %s\n", err.c_str());
		return 1;
	}
	const std::string machine = bench::machine();
	bool failed = false;
	const std::pair<dp::syncookie_mode, const std::vector<double>*> modes[] = {
	    {dp::syncookie_mode::never, &o.shares},
	    {dp::syncookie_mode::always, &o.cookie_shares},
	    {dp::syncookie_mode::adaptive, &o.adaptive_shares}};
	for (const auto& [cookies, shares] : modes) {
		if (shares->empty() || failed)
			continue;
		// A fresh worker and the same connections, opened through it (the SYN proxy's way with cookies).
		h.restart_worker(cookies);
		std::mt19937_64 rng(o.seed);
		connections conns = make_connections(o.flows, rng);
		if (auto err = handshake(h, o.flows, conns); !err.empty()) {
			std::fprintf(stderr, "bench-flood: %s\n", err.c_str());
			return 1;
		}
		if (const census c = count_flows(h.worker->flows()); c.established != o.flows) {
			std::fprintf(stderr, "bench-flood: %lu of %u connections established after the handshakes\n",
			             (unsigned long)c.established, o.flows);
			return 1;
		}
		flood_source flood{o.seed * 0x9E3779B97F4A7C15ull | 1};
		run_pass(h, conns, flood, 0, o.warmup);
		for (const double share : *shares)
			failed |= !run_share(h, conns, flood, o, share, cookies, machine);
	}
	h.stop();
	rte_eal_cleanup();
	return failed ? 1 : 0;
}
