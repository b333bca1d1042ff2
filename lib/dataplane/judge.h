// A flow's opening packet judged again by a rule set: the rule that decides it now. Revalidation asks it
// of the active set on a flow's first packet after a push; push --dry-run asks it of a set not yet
// published, to tell which live flows that set would cut.
#pragma once

#include <cstdint>

#include "dataplane/policy.h"
#include "flow/flow_table.h"

namespace portcullis::dataplane {

// The rule the opener's first packet would match under pol, classify::no_match for the direction's
// default: the payload-free rules when pol has payload rules (a flow's payload was inspected under the
// set that opened it), rules outside their schedule skipped. Limits and max-conn are not counted again.
// Reads e only; any thread, while the owner may update e (a listing's consistency).
uint32_t judge_flow(const compiled_policy& pol, const flow::flow_entry& e);

// What that rule (or the default) does with the flow.
inline rules::action verdict_of(const compiled_policy& pol, const flow::flow_entry& e, uint32_t rule)
{
	return rule == classify::no_match ? pol.default_action[e.opener_direction & 1] : pol.briefs[rule].act;
}

} // namespace portcullis::dataplane
