// lint.h: shadowed, redundant and correlated rules by box subtraction, unused sets, wide allows.
#include "lint/lint.h"

#include <algorithm>

namespace portcullis::lint {
namespace {

// One piece of a rule's match: ranges over (source, destination, destination port, source port,
// protocol), addresses of one family as 128-bit numbers; the most telling fields first, so that a test
// of two pieces that miss each other stops early.
constexpr int dims = 5;
struct box {
	u128 lo[dims], hi[dims];
};

bool intersects(const box& a, const box& b)
{
	for (int d = 0; d < dims; ++d)
		if (a.hi[d] < b.lo[d] || b.hi[d] < a.lo[d])
			return false;
	return true;
}

// The smallest box holding all of them: a cheap first test before the pieces.
box bound_of(const std::vector<box>& bs)
{
	box b = bs.front();
	for (const auto& x : bs)
		for (int d = 0; d < dims; ++d) {
			b.lo[d] = std::min(b.lo[d], x.lo[d]);
			b.hi[d] = std::max(b.hi[d], x.hi[d]);
		}
	return b;
}

template <class T>
std::vector<std::pair<u128, u128>> widen(const std::vector<value_range<T>>& rs)
{
	std::vector<std::pair<u128, u128>> out;
	for (const auto& r : rs)
		out.push_back({u128(r.lo), u128(r.hi)});
	return out;
}

// What a rule looks like to the lint, per family: its pieces (empty when it cannot apply to that family).
struct prepared {
	bool dirs[2];            // in, out
	bool opaque;             // more than the 5-tuple decides: may not match, so covers nothing
	std::vector<box> boxes[2];  // [0] IPv4, [1] IPv6
	box bound[2];
	bool too_many[2] = {false, false};
};

prepared prepare(const rules::rule& r, size_t max_boxes)
{
	prepared p{};
	p.dirs[0] = r.in;
	p.dirs[1] = r.out;
	p.opaque = !r.payload.empty() || r.match.tcp_flags_mask || r.match.set_bits_mask || r.limit || r.max_conn || r.during;
	for (int fam = 0; fam < 2; ++fam) {
		if (fam == 0 ? !r.match.applies_to_ipv4() : !r.match.applies_to_ipv6())
			continue;
		const auto proto = widen(r.match.proto), sport = widen(r.match.sport), dport = widen(r.match.dport);
		const auto src = fam == 0 ? widen(r.match.src4) : widen(r.match.src6);
		const auto dst = fam == 0 ? widen(r.match.dst4) : widen(r.match.dst6);
		const size_t n = proto.size() * src.size() * sport.size() * dst.size() * dport.size();
		if (n > max_boxes) {
			p.too_many[fam] = true;
			continue;
		}
		for (const auto& a : proto)
			for (const auto& b : src)
				for (const auto& c : sport)
					for (const auto& d : dst)
						for (const auto& e : dport)
							p.boxes[fam].push_back({{b.first, d.first, e.first, c.first, a.first},
							                        {b.second, d.second, e.second, c.second, a.second}});
		if (!p.boxes[fam].empty())
			p.bound[fam] = bound_of(p.boxes[fam]);
	}
	return p;
}

// from -= what, piece by piece: a box that meets one of what's is cut into the parts outside it (at most
// two per dimension). False when the pieces would pass max_boxes (from is then unusable).
bool subtract(std::vector<box>& from, const std::vector<box>& what, size_t max_boxes, bool& touched, uint64_t& budget)
{
	for (const box& w : what) {
		// Each piece looked at costs one unit of the rule's budget: a rule that would take more is left
		// undecided, so that no rule set can make the lint (and every push) run for ever.
		if (budget < from.size())
			return false;
		budget -= from.size();
		// In place: a box that w misses stays where it is; one it meets is replaced by its pieces outside
		// w, appended after the boxes still to look at.
		const size_t before = from.size();
		size_t kept = 0;
		std::vector<box> pieces;
		for (size_t k = 0; k < before; ++k) {
			box b = from[k];
			if (!intersects(b, w)) {
				from[kept++] = b;
				continue;
			}
			touched = true;
			for (int d = 0; d < dims; ++d) {
				if (b.lo[d] < w.lo[d]) {
					box below = b;
					below.hi[d] = w.lo[d] - 1;
					pieces.push_back(below);
					b.lo[d] = w.lo[d];
				}
				if (b.hi[d] > w.hi[d]) {
					box above = b;
					above.lo[d] = w.hi[d] + 1;
					pieces.push_back(above);
					b.hi[d] = w.hi[d];
				}
			}
			if (kept + pieces.size() > max_boxes)
				return false;
		}
		from.resize(kept);
		from.insert(from.end(), pieces.begin(), pieces.end());
		if (from.empty())
			break;
	}
	return true;
}

// Is all of a inside b? (Undecided, past max_boxes or the budget, counts as no.)
bool inside(const std::vector<box>& a, const std::vector<box>& b, size_t max_boxes, uint64_t& budget);

bool meets(const std::vector<box>& a, const box& a_bound, const std::vector<box>& b, const box& b_bound)
{
	if (a.empty() || b.empty() || !intersects(a_bound, b_bound))
		return false;
	for (const auto& x : a)
		for (const auto& y : b)
			if (intersects(x, y))
				return true;
	return false;
}

bool inside(const std::vector<box>& a, const std::vector<box>& b, size_t max_boxes, uint64_t& budget)
{
	std::vector<box> rest = a;
	bool touched = false;
	return subtract(rest, b, max_boxes, touched, budget) && rest.empty();
}

std::string where(const rules::rule& r) { return r.loc.file + ":" + std::to_string(r.loc.line); }

std::string list(const rules::ruleset& rs, const std::vector<uint32_t>& ids, size_t at_most = 5)
{
	std::string out;
	for (size_t i = 0; i < ids.size() && i < at_most; ++i)
		out += (i ? ", " : "") + where(rs.rules[ids[i]]);
	if (ids.size() > at_most)
		out += " and " + std::to_string(ids.size() - at_most) + " more";
	return out;
}

uint64_t port_count(const std::vector<value_range<uint16_t>>& ports)
{
	uint64_t n = 0;
	for (const auto& r : ports)
		n += uint64_t(r.hi) - r.lo + 1;
	return n;
}

} // namespace

const char* kind_name(kind k)
{
	switch (k) {
	case kind::shadowed: return "shadowed";
	case kind::redundant: return "redundant";
	case kind::correlated: return "correlated";
	case kind::unused_set: return "unused-set";
	case kind::wide_allow: return "wide-allow";
	}
	return "unknown";
}

report lint(const rules::ruleset& rs, const options& opt)
{
	report out;
	const size_t n = rs.rules.size();
	std::vector<prepared> p;
	p.reserve(n);
	for (const auto& r : rs.rules)
		p.push_back(prepare(r, opt.max_boxes));

	for (uint32_t i = 0; i < n; ++i) {
		const rules::rule& r = rs.rules[i];
		bool undecided = p[i].too_many[0] || p[i].too_many[1];
		bool any_view = false, reachable = false, redundant = true;
		std::vector<uint32_t> covered_by, correlated, redundant_by;
		bool by_default = false, redundancy_undecided = false;
		uint64_t budget = opt.work_per_rule;
		for (int dir = 0; dir < 2 && !undecided; ++dir) {
			if (!p[i].dirs[dir])
				continue;
			for (int fam = 0; fam < 2 && !undecided; ++fam) {
				if (p[i].boxes[fam].empty())
					continue;
				any_view = true;
				// What reaches the rule: its pieces less every earlier rule that surely matches.
				std::vector<box> left = p[i].boxes[fam];
				box left_bound = p[i].bound[fam];
				for (uint32_t j = 0; j < i && !left.empty(); ++j) {
					const prepared& e = p[j];
					if (!e.dirs[dir] || !meets(left, left_bound, e.boxes[fam], e.bound[fam]))
						continue;
					const bool takes = !e.opaque;
					// Correlated: another action, and neither rule inside the other. An earlier rule inside
					// this one is the usual exception before a catch-all, not a question of order.
					if (rs.rules[j].act != r.act && correlated.size() < opt.max_correlated &&
					    std::find(correlated.begin(), correlated.end(), j) == correlated.end() &&
					    !inside(e.boxes[fam], p[i].boxes[fam], opt.max_boxes, budget))
						correlated.push_back(j);
					if (!takes)
						continue;
					bool touched = false;
					if (!subtract(left, e.boxes[fam], opt.max_boxes, touched, budget)) {
						undecided = true;
						break;
					}
					if (touched && std::find(covered_by.begin(), covered_by.end(), j) == covered_by.end())
						covered_by.push_back(j);
				}
				if (undecided || left.empty())
					continue;
				reachable = true;
				// Without the rule, where would what reaches it go? To later rules of the same action (or
				// the default, if that is the same) before any rule of another action: then it is redundant.
				if (p[i].opaque || r.log || r.add_to) {
					redundant = false;
					continue;
				}
				for (uint32_t j = i + 1; j < n && !left.empty() && redundant && !redundancy_undecided; ++j) {
					const prepared& l = p[j];
					if (!l.dirs[dir])
						continue;
					if (l.too_many[fam]) {  // its pieces were not built: whether it takes these packets is not known
						redundancy_undecided = true;
						break;
					}
					if (!meets(left, left_bound, l.boxes[fam], l.bound[fam]))
						continue;
					// Another action, or the same with more to it (a limit, a payload condition, add-to, log):
					// without this rule those packets would be treated differently.
					const rules::rule& later = rs.rules[j];
					if (later.act != r.act || l.opaque || later.add_to || later.log) {
						redundant = false;
						break;
					}
					bool touched = false;
					if (!subtract(left, l.boxes[fam], opt.max_boxes, touched, budget)) {
						redundancy_undecided = true;  // reachable for sure; redundant, not known: not claimed
						break;
					}
					if (touched && std::find(redundant_by.begin(), redundant_by.end(), j) == redundant_by.end())
						redundant_by.push_back(j);
				}
				if (redundancy_undecided)
					redundant = false;
				if (!left.empty() && redundant) {
					if (rs.default_for(dir == 0 ? rules::direction::in : rules::direction::out) == r.act)
						by_default = true;
					else
						redundant = false;
				}
			}
		}
		if (undecided) {
			++out.undecided;
			continue;
		}
		if (!any_view)
			continue;
		if (!reachable) {
			out.findings.push_back({kind::shadowed, r.loc,
			                        "never matches: " + list(rs, covered_by) + " cover" + (covered_by.size() == 1 ? "s" : "") +
			                            " all of it",
			                        i, covered_by});
			continue;
		}
		if (redundant) {
			std::string why = redundant_by.empty() ? std::string() : list(rs, redundant_by);
			if (by_default)
				why += (why.empty() ? "" : " and ") + std::string("the default ") + std::string(rules::action_name(r.act));
			out.findings.push_back({kind::redundant, r.loc,
			                        "removing it changes no verdict: what reaches it gets " +
			                            std::string(rules::action_name(r.act)) + " from " + why + " anyway",
			                        i, redundant_by});
		}
		if (!correlated.empty())
			out.findings.push_back({kind::correlated, r.loc,
			                        "partly overlapped by earlier rules of another action: " + list(rs, correlated) +
			                            " (their order decides those packets)",
			                        i, correlated});
		// An inbound allow from any source to many ports.
		const bool any_source = (!r.match.applies_to_ipv4() || r.match.src4 == std::vector{full_range<uint32_t>()}) &&
		                        (!r.match.applies_to_ipv6() || r.match.src6 == std::vector{full_range<u128>()});
		// Ports only where they are ports: a TCP or UDP rule (an ICMP rule's "ports" are types and codes).
		const bool has_ports = contains(r.match.proto, uint8_t(6)) || contains(r.match.proto, uint8_t(17));
		const uint64_t ports = port_count(r.match.dport);
		if (r.act == rules::action::allow && r.in && any_source && has_ports && ports > opt.wide_ports)
			out.findings.push_back({kind::wide_allow, r.loc,
			                        "allows in from any source to " + std::to_string(ports) + " ports (more than " +
			                            std::to_string(opt.wide_ports) + ")",
			                        i, {}});
	}
	for (const auto& s : rs.unused_sets)
		out.findings.push_back({kind::unused_set, s.loc,
		                        std::string(s.ports ? "port set" : "set") + " '" + s.name + "' is never used", -1, {}});
	return out;
}

} // namespace portcullis::lint
