// judge.h: a flow's opening packet, judged again.
#include "dataplane/judge.h"

#include "flow/conntrack.h"

namespace portcullis::dataplane {

uint32_t judge_flow(const compiled_policy& pol, const flow::flow_entry& e)
{
	// Re-judge the flow's opening packet: the opener's side of the key, in the direction it came from.
	const bool b = e.opener_is_b;
	const u128 src = b ? e.key.b() : e.key.a(), dst = b ? e.key.a() : e.key.b();
	uint16_t sport = b ? e.key.port_b : e.key.port_a, dport = b ? e.key.port_a : e.key.port_b;
	uint8_t flags = 0;
	if (e.key.proto == 6)
		flags = flow::tcp_flag::syn;
	if (e.key.proto == 1 || e.key.proto == 58) {  // keyed by echo id: judge as an echo request
		sport = e.key.proto == 1 ? 8 : 128;
		dport = 0;
	}
	uint32_t rule = classify::no_match;
	// An established flow is re-judged on its 5-tuple: by the payload-free rules when the set has payload
	// rules (its payload was seen under the old set; inspection does not restart).
	const uint32_t d = e.opener_direction & 1;
	const auto& cls = pol.inspects ? *pol.classifier_free[d] : *pol.classifier[d];
	classify::key_v4 k4{uint32_t(src), uint32_t(dst), sport, dport, e.key.proto, flags, 0, 0};
	classify::key_v6 k6{};
	if (e.key.family == 4) {
		if (pol.tests_sets())
			k4.set_bits = pol.set_bits(k4.src, k4.dst);
	} else {
		k6.src = src;
		k6.dst = dst;
		k6.sport = sport;
		k6.dport = dport;
		k6.proto = e.key.proto;
		k6.tcp_flags = flags;
		if (pol.tests_sets())
			k6.set_bits = pol.set_bits(k6.src, k6.dst);
	}
	auto run = [&](const classify::classifier& c) {
		if (e.key.family == 4)
			c.classify(&k4, 1, &rule);
		else
			c.classify(&k6, 1, &rule);
	};
	run(cls);
	// A rule outside its schedule is not there (limits and max-conn are not re-checked: they count flows
	// when they open).
	while (pol.scheduled && rule != classify::no_match && pol.limiter_of[rule] != compiled_policy::no_limit &&
	       !pol.limiters[pol.limiter_of[rule]].in_window.load(std::memory_order_relaxed)) {
		const classify::classifier* after = pol.continue_after[d][pol.limiter_of[rule]].get();
		rule = classify::no_match;
		if (after)
			run(*after);
	}
	return rule;
}

} // namespace portcullis::dataplane
