// The counters, in the text that operators and tests read; see report.h.
#include "daemon/report.h"

#include <string>

#include "dataplane/dataplane.h"
#include "packet/packet.h"

namespace portcullis::daemon {

void print_counters(const control::runtime& rt, const std::vector<dataplane::port_state>& ports, FILE* out)
{
	const auto& workers = rt.workers();
	const dataplane::compiled_policy& pol = rt.policy();
	dataplane::worker_counters t{};
	uint64_t flows = 0;
	for (const auto& w : workers) {
		dataplane::accumulate(t, w->counters());
		flows += w->flows().size();
	}
	std::fprintf(out, "ports:\n");
	for (const auto& p : ports) {
		const uint32_t i = p.port % dataplane::max_ports;
		std::fprintf(out, "  %-12s rx %10lu pkts %12lu bytes   tx %10lu pkts %12lu bytes\n", p.name.c_str(),
		             (unsigned long)t.rx_packets[i], (unsigned long)t.rx_bytes[i], (unsigned long)t.tx_packets[i],
		             (unsigned long)t.tx_bytes[i]);
	}
	static const char* verdicts[] = {"forwarded", "dropped", "rejected"};
	for (int d = 0; d < 2; ++d)
		for (int v = 0; v < 3; ++v)
			std::fprintf(out, "%-3s %-9s %10lu pkts %12lu bytes\n", d == 0 ? "in" : "out", verdicts[v],
			             (unsigned long)t.packets[d][v], (unsigned long)t.bytes[d][v]);
	std::fprintf(out, "flows: %lu opened, %lu live; %lu reply packets, %lu related ICMP, %lu rejects sent\n",
	             (unsigned long)t.flows_opened, (unsigned long)flows, (unsigned long)t.reply_packets,
	             (unsigned long)t.related_icmp, (unsigned long)t.rejects_sent);
	std::fprintf(out, "drops by reason:\n");
	for (size_t r = 0; r < dataplane::drop_reason_count; ++r)
		if (t.drops[r])
			std::fprintf(out, "  %-22s %10lu\n", std::string(dataplane::to_string(dataplane::drop_reason(r))).c_str(),
			             (unsigned long)t.drops[r]);
	for (size_t r = 1; r < packet::drop_reason_count; ++r)
		if (t.parse.by_reason[r])
			std::fprintf(out, "  malformed/%-12s %10lu\n",
			             std::string(packet::to_string(packet::drop_reason(r))).c_str(),
			             (unsigned long)t.parse.by_reason[r]);
	// Which rule set this is: a push that was under way at a stop is either in it, whole, or not at all.
	const auto& src = rt.source();
	std::fprintf(out, "rules: generation %lu, %zu rules, digest %s, source %s %s%s\n", (unsigned long)pol.generation,
	             pol.rules.rules.size(), rt.digest().c_str(), std::string(control::origin_name(src.origin)).c_str(),
	             src.file.c_str(),
	             src.origin == control::rule_origin::push
	                 ? (" (runtime only: a restart or SIGHUP loads " + rt.configured_file() + ")").c_str()
	                 : "");
	for (uint32_t i = 0; i < pol.rules.rules.size(); ++i) {
		const auto& r = pol.rules.rules[i];
		const auto c = rt.rule_counters(i);
		std::fprintf(out, "  %8lu pkts %10lu bytes  %s:%u  %s\n", (unsigned long)c.packets, (unsigned long)c.bytes,
		             r.loc.file.c_str(), r.loc.line, r.text.c_str());
	}
	std::fflush(out);
}

} // namespace portcullis::daemon
