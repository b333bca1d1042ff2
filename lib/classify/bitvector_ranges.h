// Bit-vector build, step 2 (see bitvector.h): a field's classes laid out as a range_index for lookup.
// Private to lib/classify: bitvector_ranges.cc and bitvector.cc.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "classify/bitvector_classes.h"
#include "classify/bitvector_layout.h"

namespace portcullis::classify::bv {

// One interval of a field for a range index: where it starts and what a lookup there returns.
struct interval {
	uint32_t start;
	uint32_t payload;  // below leaf_tag
};

template <class T>
std::vector<interval> intervals_of(const field_classes<T>& fc, uint32_t stride = 1)
{
	std::vector<interval> out(fc.starts.size());
	for (size_t i = 0; i < out.size(); ++i)
		out[i] = {uint32_t(fc.starts[i]), fc.classes[i] * stride};
	return out;
}

// The built form of a range_index (bitvector_layout.h), with what the choice between sizes looks at.
struct range_store {
	std::vector<uint32_t> top;
	std::vector<node16> nodes16;
	std::vector<node32> nodes32;
	uint32_t shift = 0;
	uint64_t node_levels = 0;  // summed over the intervals of every top entry: nodes a lookup there reads

	bool direct() const { return nodes16.empty() && nodes32.empty(); }
	range_index view() const { return {top.data(), nodes16.data(), nodes32.data(), shift, direct()}; }
	size_t bytes() const
	{
		return top.size() * sizeof(uint32_t) + nodes16.size() * sizeof(node16) + nodes32.size() * sizeof(node32);
	}
};

// A range index with a top table of 2^top_bits entries, or the default layout when top_bits < 0 (see
// choose_top_bits).
range_store make_range(const std::vector<interval>& iv, uint32_t value_bits, int top_bits);

// How big the port and IPv4 top tables of one partition are: 0 bits (one entry leading to one node) when
// every such field's intervals fit one node, else the default layout (-1): direct tables for ports,
// 2^16 entries plus nodes for IPv4.
//
// The compact layout is what lets a firewall with a handful of rules keep its classifier in a few KB
// instead of 256 KiB per field (gateway.rules: 1.5 MB before, 6 KB now), so it stays in L1 next to the
// flow table. It is not chosen field by field: on the ClassBench 1K sets every smaller top table measured
// slower than the direct layout (a bare B-tree, 2^8 or 2^12 entries: 0.75-0.95 of its rate on acl1_1k,
// fw1_1k and ipc1_1k, fw1_1k's source port alone in one node 0.95) because each node level is a
// dependent load, compare and popcount where a direct table costs one L2 hit; once some field needs a
// big table anyway, the few hundred KB the others would save buy nothing.
template <class... Fields>
int choose_top_bits(const Fields&... fields)
{
	auto fits = [](const auto& fc) {
		const size_t one_node = sizeof(fc.starts[0]) == 4 ? node32_keys + 1 : 33;
		return fc.matches_everything || fc.starts.size() <= one_node;
	};
	return (fits(fields) && ...) ? 0 : -1;
}

} // namespace portcullis::classify::bv
