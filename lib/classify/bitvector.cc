// Build side of the bit-vector classifier (see bitvector.h for the design). Control plane only: allocates
// freely, runs once per rule-set compile.
#include "classify/bitvector.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include "classify/bitvector_layout.h"

namespace portcullis::classify {
namespace {

using namespace bv;

template <class T>
using range_set = std::vector<value_range<T>>;

struct pattern_hash {
	size_t operator()(const std::array<uint64_t, chunk_words>& a) const
	{
		uint64_t h = 0x9e3779b97f4a7c15ull;
		for (uint64_t w : a)
			h = (h ^ w) * 0xff51afd7ed558ccdull + (h >> 29);
		return size_t(h);
	}
};

// Interns rule bit vectors of one field: identical 64-byte chunks share one pattern, identical
// vectors share one class.
struct class_builder {
	uint32_t nchunks = 0;
	std::vector<class_row> rows;
	std::vector<uint32_t> refs;
	std::vector<pattern> patterns;
	std::unordered_map<std::array<uint64_t, chunk_words>, uint32_t, pattern_hash> pattern_ids;
	std::unordered_map<std::string, uint32_t> class_ids;

	explicit class_builder(uint32_t chunks) : nchunks(chunks) {}

	// UINT32_MAX for an all-zero chunk.
	uint32_t intern_chunk(const uint64_t* words)
	{
		std::array<uint64_t, chunk_words> key;
		std::memcpy(key.data(), words, sizeof(key));
		if (std::all_of(key.begin(), key.end(), [](uint64_t w) { return w == 0; }))
			return UINT32_MAX;
		auto [it, fresh] = pattern_ids.try_emplace(key, uint32_t(patterns.size()));
		if (fresh) {
			pattern p;
			std::memcpy(p.words, words, sizeof(p.words));
			patterns.push_back(p);
		}
		return it->second;
	}

	uint32_t intern_class(const std::vector<uint32_t>& chunk_patterns)
	{
		std::string key(reinterpret_cast<const char*>(chunk_patterns.data()), chunk_patterns.size() * sizeof(uint32_t));
		auto [it, fresh] = class_ids.try_emplace(std::move(key), uint32_t(rows.size()));
		if (fresh) {
			class_row row{0, uint32_t(refs.size()), 0};
			for (uint32_t k = 0; k < nchunks; ++k) {
				if (chunk_patterns[k] != UINT32_MAX) {
					row.summary |= uint64_t(1) << k;
					refs.push_back(chunk_patterns[k]);
				}
			}
			rows.push_back(row);
		}
		return it->second;
	}

	uint32_t intern(const uint64_t* bits)
	{
		std::vector<uint32_t> chunk_patterns(nchunks);
		for (uint32_t k = 0; k < nchunks; ++k)
			chunk_patterns[k] = intern_chunk(bits + size_t(k) * chunk_words);
		return intern_class(chunk_patterns);
	}

	// The full vector of a class, nchunks * chunk_words words.
	std::vector<uint64_t> expand(uint32_t cls) const
	{
		std::vector<uint64_t> bits(size_t(nchunks) * chunk_words, 0);
		const class_row& row = rows[cls];
		uint32_t ref = row.ref_offset;
		for (uint32_t k = 0; k < nchunks; ++k)
			if (row.summary & (uint64_t(1) << k))
				std::memcpy(&bits[size_t(k) * chunk_words], patterns[refs[ref++]].words, sizeof(pattern));
		return bits;
	}

	size_t bytes() const
	{
		return rows.size() * sizeof(class_row) + refs.size() * sizeof(uint32_t) + patterns.size() * sizeof(pattern);
	}
};

// Result of cutting one field into equivalence classes.
template <class T>
struct field_classes {
	std::vector<T> starts;          // elementary intervals (adjacent ones differ in class); starts[0] == 0
	std::vector<uint32_t> classes;  // class of each interval
	class_builder vectors;
	bool matches_everything = false;  // one class, holding every rule: the field need not be looked up

	explicit field_classes(uint32_t nchunks) : vectors(nchunks) {}
	uint32_t class_count() const { return uint32_t(vectors.rows.size()); }
};

// Sweep the field's value space once, in order of the rules' range boundaries, keeping the set of rules
// that cover the current point; every time it changes, intern its chunks and the class they form.
template <class T>
field_classes<T> cut_field(const std::vector<const range_set<T>*>& sets)
{
	const uint32_t nrules = uint32_t(sets.size());
	const uint32_t nchunks = (nrules + chunk_bits - 1) / chunk_bits;

	struct event {
		T at;
		uint32_t rule;
		bool add;
	};
	std::vector<event> events;
	for (uint32_t r = 0; r < nrules; ++r) {
		for (const auto& rg : *sets[r]) {
			events.push_back({rg.lo, r, true});
			if (rg.hi != T(~T(0)))
				events.push_back({T(rg.hi + 1), r, false});
		}
	}
	std::sort(events.begin(), events.end(), [](const event& a, const event& b) {
		return a.at < b.at || (a.at == b.at && !a.add && b.add);
	});

	field_classes<T> out(nchunks);
	std::vector<uint64_t> cur(size_t(nchunks) * chunk_words, 0);
	std::vector<uint32_t> chunk_pattern(nchunks, UINT32_MAX);
	std::vector<uint8_t> dirty(nchunks, 0);

	// Only the chunks that an event touched need interning again.
	auto emit = [&](T at) {
		for (uint32_t k = 0; k < nchunks; ++k) {
			if (dirty[k]) {
				dirty[k] = 0;
				chunk_pattern[k] = out.vectors.intern_chunk(&cur[size_t(k) * chunk_words]);
			}
		}
		const uint32_t c = out.vectors.intern_class(chunk_pattern);
		if (out.classes.empty() || out.classes.back() != c) {
			out.starts.push_back(at);
			out.classes.push_back(c);
		}
	};

	size_t e = 0;
	if (events.empty() || events[0].at != T(0))
		emit(T(0));
	while (e < events.size()) {
		const T at = events[e].at;
		for (; e < events.size() && events[e].at == at; ++e) {
			const uint32_t r = events[e].rule;
			uint64_t& w = cur[(r / chunk_bits) * chunk_words + (r % chunk_bits) / 64];
			const uint64_t bit = uint64_t(1) << (r % 64);
			w = events[e].add ? (w | bit) : (w & ~bit);
			dirty[r / chunk_bits] = 1;
		}
		emit(at);
	}

	if (out.class_count() == 1) {
		uint32_t set = 0;
		for (uint64_t w : cur)
			set += uint32_t(__builtin_popcountll(w));
		// One class means cur never changed after the first point, so it still holds that class.
		out.matches_everything = (set == nrules);
	}
	return out;
}

// Fill a direct table (ports, protocol, flags) from intervals.
template <class T>
std::vector<uint16_t> direct_table(const field_classes<T>& fc, size_t size)
{
	std::vector<uint16_t> table(size);
	for (size_t i = 0; i < fc.starts.size(); ++i) {
		const size_t end = (i + 1 < fc.starts.size()) ? size_t(fc.starts[i + 1]) : size;
		std::fill(table.begin() + ptrdiff_t(fc.starts[i]), table.begin() + ptrdiff_t(end), uint16_t(fc.classes[i]));
	}
	return table;
}

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

// A range index with a top table of 2^top_bits entries, or the default layout when top_bits < 0 (see
// choose_top_bits).
range_store make_range(const std::vector<interval>& iv, uint32_t value_bits, int top_bits)
{
	return build_range(iv, value_bits, top_bits < 0 ? 16 : std::min<uint32_t>(uint32_t(top_bits), value_bits));
}

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

struct ip6_store {
	std::vector<u128> starts;
	std::vector<uint32_t> classes;
	size_t bytes() const { return starts.size() * sizeof(u128) + classes.size() * sizeof(uint32_t); }
};

// Everything one partition owns; `view` points into it.
struct partition_store {
	std::vector<uint32_t> rule_ids;
	std::vector<class_row> rows[max_fields];
	std::vector<uint32_t> refs[max_fields];
	std::vector<pattern> patterns[max_fields];
	range_store src4, dst4;
	ip6_store src6, dst6;
	range_store sport, dport, l4_sport, l4_dport;
	std::vector<uint16_t> proto, tcp_flags;
	std::vector<uint32_t> l4_proto, l4_tcp_flags, l4_product;
	partition view{};
	size_t bytes = 0;

	void add_field(field f, class_builder& cb)
	{
		const uint32_t slot = view.nfields++;
		view.fields[slot] = f;
		rows[slot] = std::move(cb.rows);
		refs[slot] = std::move(cb.refs);
		patterns[slot] = std::move(cb.patterns);
		view.rows[slot] = {rows[slot].data(), refs[slot].data(), patterns[slot].data()};
		bytes += rows[slot].size() * sizeof(class_row) + refs[slot].size() * sizeof(uint32_t) +
		         patterns[slot].size() * sizeof(pattern);
	}
};

// Largest cross product of small-field classes that gets joined (entries of 4 bytes: 1 MiB). Beyond
// it the fields stay separate; the product grows with the number of distinct port ranges, and real
// rule sets (ClassBench acl1/fw1/ipc1: a few thousand entries) are far below.
constexpr size_t max_l4_product = size_t(1) << 18;

range_set<uint8_t> flag_values(uint8_t value, uint8_t mask)
{
	range_set<uint8_t> out;
	for (uint32_t v = 0; v < 256; ++v)
		if ((v & mask) == value)
			out.push_back({uint8_t(v), uint8_t(v)});
	normalize(out);
	return out;
}

// Joins the small fields that need a lookup into one l4 field when their cross product is small enough.
// Returns false (and changes nothing) when fewer than two need a lookup or the product is too large.
bool join_small_fields(partition_store& ps, field_classes<uint16_t>& sport, field_classes<uint16_t>& dport,
                       field_classes<uint8_t>& proto, field_classes<uint8_t>& flags, int top_bits)
{
	struct component {
		const class_builder* vectors;
		std::vector<uint16_t> classes;  // value -> class (protocol and flags)
		uint32_t count;
		uint32_t stride = 0;
		int slot;  // 0 sport, 1 dport, 2 proto, 3 flags
	};
	std::vector<component> comps;
	auto consider = [&](auto& fc, size_t size, int slot) {
		if (!fc.matches_everything)
			comps.push_back({&fc.vectors, size == 256 ? direct_table(fc, size) : std::vector<uint16_t>{},
			                 fc.class_count(), 0, slot});
	};
	consider(proto, 256, 2);
	consider(sport, 65536, 0);
	consider(dport, 65536, 1);
	consider(flags, 256, 3);
	if (comps.size() < 2)
		return false;
	size_t product = 1;
	for (const auto& c : comps) {
		product *= c.count;
		if (product > max_l4_product)
			return false;
	}
	uint32_t stride = 1;
	for (size_t i = comps.size(); i-- > 0;) {
		comps[i].stride = stride;
		stride *= comps[i].count;
	}

	const uint32_t nchunks = sport.vectors.nchunks;
	class_builder joined(nchunks);
	ps.l4_product.resize(product);
	std::vector<std::vector<uint64_t>> partial(comps.size());
	std::vector<std::vector<uint64_t>> expanded(comps.size());
	// Depth-first over the product, ANDing one component's vector per level.
	auto walk = [&](auto&& self, size_t level, uint32_t index) -> void {
		const component& c = comps[level];
		for (uint32_t cls = 0; cls < c.count; ++cls) {
			std::vector<uint64_t> v = c.vectors->expand(cls);
			if (level > 0)
				for (size_t w = 0; w < v.size(); ++w)
					v[w] &= partial[level - 1][w];
			const uint32_t at = index + cls * c.stride;
			if (level + 1 == comps.size()) {
				ps.l4_product[at] = joined.intern(v.data());
			} else {
				partial[level] = std::move(v);
				self(self, level + 1, at);
			}
		}
	};
	walk(walk, 0, 0);

	static const uint32_t zero[1] = {0};
	static const uint32_t zero_direct[1] = {0};
	l4_index& ix = ps.view.l4;
	ix = {};
	ix.sport = ix.dport = {zero_direct, nullptr, nullptr, 16, true};
	ix.proto = ix.tcp_flags = zero;
	for (const auto& c : comps) {
		switch (c.slot) {
		case 0:
			ps.l4_sport = make_range(intervals_of(sport, c.stride), 16, top_bits);
			ix.sport = ps.l4_sport.view();
			ps.bytes += ps.l4_sport.bytes();
			break;
		case 1:
			ps.l4_dport = make_range(intervals_of(dport, c.stride), 16, top_bits);
			ix.dport = ps.l4_dport.view();
			ps.bytes += ps.l4_dport.bytes();
			break;
		case 2:
		case 3: {
			std::vector<uint32_t>& table = c.slot == 2 ? ps.l4_proto : ps.l4_tcp_flags;
			table.resize(c.classes.size());
			for (size_t v = 0; v < table.size(); ++v)
				table[v] = c.classes[v] * c.stride;
			ps.bytes += table.size() * sizeof(uint32_t);
			if (c.slot == 2) {
				ix.proto = table.data();
				ix.proto_mask = 0xff;
			} else {
				ix.tcp_flags = table.data();
				ix.tcp_flags_mask = 0xff;
			}
			break;
		}
		}
	}
	ix.product = ps.l4_product.data();
	ps.bytes += ps.l4_product.size() * sizeof(uint32_t);
	ps.add_field(field::l4, joined);
	return true;
}

template <bool v6>
std::unique_ptr<partition_store> build_partition(std::span<const rule_entry> rules, const bitvector_options& opt)
{
	auto ps = std::make_unique<partition_store>();
	std::vector<range_set<uint8_t>> flags(rules.size());
	std::vector<const range_set<uint16_t>*> sport, dport;
	std::vector<const range_set<uint8_t>*> proto, tcp_flags;
	for (size_t r = 0; r < rules.size(); ++r) {
		const tuple_match& m = *rules[r].match;
		ps->rule_ids.push_back(rules[r].id);
		sport.push_back(&m.sport);
		dport.push_back(&m.dport);
		proto.push_back(&m.proto);
		flags[r] = flag_values(m.tcp_flags_value, m.tcp_flags_mask);
		tcp_flags.push_back(&flags[r]);
	}
	ps->bytes += ps->rule_ids.size() * sizeof(uint32_t);

	auto fsp = cut_field(sport);
	auto fdp = cut_field(dport);
	auto fpr = cut_field(proto);
	auto ffl = cut_field(tcp_flags);
	int top_bits = opt.top_bits;
	if constexpr (!v6) {
		std::vector<const range_set<uint32_t>*> src, dst;
		for (const auto& r : rules) {
			src.push_back(&r.match->src4);
			dst.push_back(&r.match->dst4);
		}
		auto fs = cut_field(src);
		auto fd = cut_field(dst);
		if (top_bits < 0)
			top_bits = choose_top_bits(fs, fd, fsp, fdp);
		auto add4 = [&](field f, field_classes<uint32_t>& fc, range_store& store, range_index& view) {
			if (fc.matches_everything)
				return;
			store = make_range(intervals_of(fc), 32, top_bits);
			view = store.view();
			ps->bytes += store.bytes();
			ps->add_field(f, fc.vectors);
		};
		add4(field::src, fs, ps->src4, ps->view.src4);
		add4(field::dst, fd, ps->dst4, ps->view.dst4);
	} else {
		std::vector<const range_set<u128>*> src, dst;
		for (const auto& r : rules) {
			src.push_back(&r.match->src6);
			dst.push_back(&r.match->dst6);
		}
		auto add6 = [&](field f, field_classes<u128>& fc, ip6_store& store, ip6_index& view) {
			if (fc.matches_everything)
				return;
			store.starts = fc.starts;
			store.classes = fc.classes;
			view = {store.starts.data(), store.classes.data(), uint32_t(store.starts.size())};
			ps->bytes += store.bytes();
			ps->add_field(f, fc.vectors);
		};
		if (top_bits < 0)
			top_bits = choose_top_bits(fsp, fdp);
		auto fs = cut_field(src);
		add6(field::src, fs, ps->src6, ps->view.src6);
		auto fd = cut_field(dst);
		add6(field::dst, fd, ps->dst6, ps->view.dst6);
	}

	if (!join_small_fields(*ps, fsp, fdp, fpr, ffl, top_bits)) {
		auto add_port = [&](field f, field_classes<uint16_t>& fc, range_store& store, range_index& view) {
			if (fc.matches_everything)
				return;
			store = make_range(intervals_of(fc), 16, top_bits);
			view = store.view();
			ps->bytes += store.bytes();
			ps->add_field(f, fc.vectors);
		};
		auto add_direct = [&](field f, auto& fc, size_t size, std::vector<uint16_t>& table, const uint16_t*& view) {
			if (fc.matches_everything)
				return;
			table = direct_table(fc, size);
			view = table.data();
			ps->bytes += table.size() * sizeof(uint16_t);
			ps->add_field(f, fc.vectors);
		};
		add_port(field::sport, fsp, ps->sport, ps->view.sport);
		add_port(field::dport, fdp, ps->dport, ps->view.dport);
		add_direct(field::proto, fpr, 256, ps->proto, ps->view.proto);
		add_direct(field::tcp_flags, ffl, 256, ps->tcp_flags, ps->view.tcp_flags);
	}

	ps->view.rule_ids = ps->rule_ids.data();
	ps->view.constant_result = ps->rule_ids.empty() ? no_match : ps->rule_ids[0];
	return ps;
}

class bitvector_classifier final : public classifier {
public:
	bitvector_classifier(std::span<const rule_entry> rules, const bitvector_options& opt)
	{
		std::vector<rule_entry> v4, v6;
		for (const auto& r : rules) {
			if (r.match->applies_to_ipv4())
				v4.push_back(r);
			if (r.match->applies_to_ipv6())
				v6.push_back(r);
		}
		build_family<false>(v4, opt, stores4_, views4_);
		build_family<true>(v6, opt, stores6_, views6_);
		const bool avx512 = opt.allow_avx512 && __builtin_cpu_supports("avx512f") &&
		                    __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
		                    __builtin_cpu_supports("avx512dq");
		run4_ = avx512 ? bv::avx512::run_v4 : bv::scalar::run_v4;
		run6_ = avx512 ? bv::avx512::run_v6 : bv::scalar::run_v6;
	}

	backend kind() const override { return backend::ours; }
	size_t memory_bytes() const override
	{
		size_t total = 0;
		for (const auto& s : stores4_)
			total += s->bytes;
		for (const auto& s : stores6_)
			total += s->bytes;
		return total;
	}
	void classify(const key_v4* keys, uint32_t n, uint32_t* results) const override
	{
		run4_(views4_.data(), uint32_t(views4_.size()), keys, n, results);
	}
	void classify(const key_v6* keys, uint32_t n, uint32_t* results) const override
	{
		run6_(views6_.data(), uint32_t(views6_.size()), keys, n, results);
	}

private:
	template <bool v6>
	static void build_family(const std::vector<rule_entry>& rules, const bitvector_options& opt, std::vector<std::unique_ptr<partition_store>>& stores,
	                         std::vector<partition>& views)
	{
		for (size_t at = 0; at < rules.size(); at += max_partition_rules) {
			const size_t count = std::min<size_t>(max_partition_rules, rules.size() - at);
			stores.push_back(build_partition<v6>(std::span(rules).subspan(at, count), opt));
			views.push_back(stores.back()->view);
		}
	}

	std::vector<std::unique_ptr<partition_store>> stores4_, stores6_;
	std::vector<partition> views4_, views6_;
	run_v4_fn run4_;
	run_v6_fn run6_;
};

} // namespace

build_result build_bitvector(std::span<const rule_entry> rules, const bitvector_options& opt)
{
	build_result r;
	for (const auto& e : rules) {
		if (e.match == nullptr) {
			r.error = "rule without a match";
			return r;
		}
	}
	r.classifier = std::make_unique<bitvector_classifier>(rules, opt);
	return r;
}

} // namespace portcullis::classify
