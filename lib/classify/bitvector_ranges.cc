// Bit-vector build, step 2 (bitvector_ranges.h): range indexes as top tables over SIMD B-tree nodes.
#include "classify/bitvector_ranges.h"

#include <algorithm>
#include <iterator>

namespace portcullis::classify::bv {
namespace {

// Returns a tagged entry: a payload, or the index of a node covering the m intervals (m >= 1).
template <class Node, class Key, size_t nkeys>
uint32_t build_node(std::vector<Node>& nodes, uint64_t& levels, uint32_t depth, const interval* iv, size_t m)
{
	if (m == 1) {
		levels += depth;
		return iv[0].payload | leaf_tag;
	}
	constexpr size_t fan = nkeys + 1;
	const uint32_t index = uint32_t(nodes.size());
	nodes.emplace_back();
	Node node{};
	std::fill(std::begin(node.keys), std::end(node.keys), Key(~Key(0)));
	if (m <= fan) {
		for (size_t j = 1; j < m; ++j)
			node.keys[j - 1] = Key(iv[j].start);
		for (size_t j = 0; j < fan; ++j)
			node.next[j] = iv[std::min(j, m - 1)].payload | leaf_tag;
		levels += uint64_t(depth + 1) * m;
	} else {
		// fan nearly equal groups, each a subtree.
		for (size_t g = 0; g < fan; ++g) {
			const size_t lo = m * g / fan, hi = m * (g + 1) / fan;
			if (g > 0)
				node.keys[g - 1] = Key(iv[lo].start);
			node.next[g] = build_node<Node, Key, nkeys>(nodes, levels, depth + 1, iv + lo, hi - lo);
		}
	}
	nodes[index] = node;
	return index;
}

// A range index over a value_bits-wide field whose top table is indexed by the top_bits high bits.
range_store build_range(const std::vector<interval>& iv, uint32_t value_bits, uint32_t top_bits)
{
	range_store rs;
	rs.shift = value_bits - top_bits;
	const uint64_t blocks = uint64_t(1) << top_bits;
	const uint64_t block_size = uint64_t(1) << rs.shift;
	rs.top.resize(blocks);
	std::vector<interval> block;
	size_t i = 0;  // interval containing the start of the current block
	for (uint64_t b = 0; b < blocks; ++b) {
		const uint64_t first = b * block_size, last = first + block_size - 1;
		while (i + 1 < iv.size() && iv[i + 1].start <= first)
			++i;
		block.clear();
		block.push_back({uint32_t(first), iv[i].payload});
		for (size_t j = i + 1; j < iv.size() && iv[j].start <= last; ++j)
			block.push_back(iv[j]);
		rs.top[b] = rs.shift <= 16
		                ? build_node<node16, uint16_t, 32>(rs.nodes16, rs.node_levels, 0, block.data(), block.size())
		                : build_node<node32, uint32_t, node32_keys>(rs.nodes32, rs.node_levels, 0, block.data(),
		                                                            block.size());
	}
	if (rs.direct())
		for (uint32_t& e : rs.top)
			e &= ~leaf_tag;
	return rs;
}

} // namespace

range_store make_range(const std::vector<interval>& iv, uint32_t value_bits, int top_bits)
{
	return build_range(iv, value_bits, top_bits < 0 ? 16 : std::min<uint32_t>(uint32_t(top_bits), value_bits));
}

} // namespace portcullis::classify::bv
