// Bit-vector build, step 3 (design in bitvector.h): partitions from the fields' classes, and the classifier.
// The classes come from bitvector_classes.h, their range indexes from bitvector_ranges.h. Control plane
// only: allocates freely, runs once per rule-set compile.
#include "classify/bitvector.h"

#include <algorithm>
#include <memory>
#include <span>
#include <vector>

#include "classify/bitvector_classes.h"
#include "classify/bitvector_layout.h"
#include "classify/bitvector_ranges.h"

namespace portcullis::classify {
namespace {

using namespace bv;

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
	std::vector<uint16_t> proto, tcp_flags, set_bits;
	std::vector<uint32_t> l4_proto, l4_tcp_flags, l4_set_bits, l4_product;
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

// The byte values v with (v & mask) == value: a flags or set-bits test as a range set (empty when value
// has bits outside mask, as the test then never holds).
range_set<uint8_t> masked_values(uint8_t value, uint8_t mask)
{
	range_set<uint8_t> out;
	for (uint32_t v = 0; v < 256; ++v)
		if ((v & mask) == value)
			out.push_back({uint8_t(v), uint8_t(v)});
	normalize(out);
	return out;
}

// Joins the small fields that need a lookup into one l4 field when their cross product is small enough;
// sets (the set-bits field) may be null to leave it out of the product. Returns false (and changes
// nothing) when fewer than two need a lookup or the product is too large.
bool join_small_fields(partition_store& ps, field_classes<uint16_t>& sport, field_classes<uint16_t>& dport,
                       field_classes<uint8_t>& proto, field_classes<uint8_t>& flags,
                       field_classes<uint8_t>* sets, int top_bits)
{
	struct component {
		const class_builder* vectors;
		std::vector<uint16_t> classes;  // value -> class (protocol, flags and set bits)
		uint32_t count;
		uint32_t stride = 0;
		int slot;  // 0 sport, 1 dport, 2 proto, 3 flags, 4 set bits
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
	if (sets)
		consider(*sets, 256, 4);
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
	ix.proto = ix.tcp_flags = ix.set_bits = zero;
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
		case 3:
		case 4: {
			std::vector<uint32_t>& table = c.slot == 2 ? ps.l4_proto : c.slot == 3 ? ps.l4_tcp_flags : ps.l4_set_bits;
			table.resize(c.classes.size());
			for (size_t v = 0; v < table.size(); ++v)
				table[v] = c.classes[v] * c.stride;
			ps.bytes += table.size() * sizeof(uint32_t);
			if (c.slot == 2) {
				ix.proto = table.data();
				ix.proto_mask = 0xff;
			} else if (c.slot == 3) {
				ix.tcp_flags = table.data();
				ix.tcp_flags_mask = 0xff;
			} else {
				ix.set_bits = table.data();
				ix.set_bits_mask = 0xff;
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

// Null when cancel is seen set (between field cuts, or within one).
template <bool v6>
std::unique_ptr<partition_store> build_partition(std::span<const rule_entry> rules, const bitvector_options& opt,
                                                 cancel_watch& cancel)
{
	auto ps = std::make_unique<partition_store>();
	std::vector<range_set<uint8_t>> flags(rules.size()), sets(rules.size());
	std::vector<const range_set<uint16_t>*> sport, dport;
	std::vector<const range_set<uint8_t>*> proto, tcp_flags, set_bits;
	for (size_t r = 0; r < rules.size(); ++r) {
		const tuple_match& m = *rules[r].match;
		ps->rule_ids.push_back(rules[r].id);
		sport.push_back(&m.sport);
		dport.push_back(&m.dport);
		proto.push_back(&m.proto);
		flags[r] = masked_values(m.tcp_flags_value, m.tcp_flags_mask);
		tcp_flags.push_back(&flags[r]);
		sets[r] = masked_values(m.set_bits_value, m.set_bits_mask);
		set_bits.push_back(&sets[r]);
	}
	ps->bytes += ps->rule_ids.size() * sizeof(uint32_t);

	auto fsp = cut_field(sport, cancel);
	auto fdp = cut_field(dport, cancel);
	auto fpr = cut_field(proto, cancel);
	auto ffl = cut_field(tcp_flags, cancel);
	auto fsb = cut_field(set_bits, cancel);  // matches_everything when no rule has a set-bits mask
	if (cancel.seen)
		return nullptr;
	int top_bits = opt.top_bits;
	if constexpr (!v6) {
		std::vector<const range_set<uint32_t>*> src, dst;
		for (const auto& r : rules) {
			src.push_back(&r.match->src4);
			dst.push_back(&r.match->dst4);
		}
		auto fs = cut_field(src, cancel);
		auto fd = cut_field(dst, cancel);
		if (cancel.seen)
			return nullptr;
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
		auto fs = cut_field(src, cancel);
		if (cancel.seen)
			return nullptr;
		add6(field::src, fs, ps->src6, ps->view.src6);
		auto fd = cut_field(dst, cancel);
		if (cancel.seen)
			return nullptr;
		add6(field::dst, fd, ps->dst6, ps->view.dst6);
	}

	auto add_direct = [&](field f, auto& fc, size_t size, std::vector<uint16_t>& table, const uint16_t*& view) {
		if (fc.matches_everything)
			return;
		table = direct_table(fc, size);
		view = table.data();
		ps->bytes += table.size() * sizeof(uint16_t);
		ps->add_field(f, fc.vectors);
	};
	// The set bits join the product when it stays small enough; if they alone push it past the limit,
	// the other small fields are still joined and the set bits get a field of their own.
	bool joined = join_small_fields(*ps, fsp, fdp, fpr, ffl, &fsb, top_bits);
	if (!joined && !fsb.matches_everything && join_small_fields(*ps, fsp, fdp, fpr, ffl, nullptr, top_bits)) {
		add_direct(field::set_bits, fsb, 256, ps->set_bits, ps->view.set_bits);
		joined = true;
	}
	if (!joined) {
		auto add_port = [&](field f, field_classes<uint16_t>& fc, range_store& store, range_index& view) {
			if (fc.matches_everything)
				return;
			store = make_range(intervals_of(fc), 16, top_bits);
			view = store.view();
			ps->bytes += store.bytes();
			ps->add_field(f, fc.vectors);
		};
		add_port(field::sport, fsp, ps->sport, ps->view.sport);
		add_port(field::dport, fdp, ps->dport, ps->view.dport);
		add_direct(field::proto, fpr, 256, ps->proto, ps->view.proto);
		add_direct(field::tcp_flags, ffl, 256, ps->tcp_flags, ps->view.tcp_flags);
		add_direct(field::set_bits, fsb, 256, ps->set_bits, ps->view.set_bits);
	}

	ps->view.rule_ids = ps->rule_ids.data();
	ps->view.constant_result = ps->rule_ids.empty() ? no_match : ps->rule_ids[0];
	return ps;
}

class bitvector_classifier final : public classifier {
public:
	// False when the build was cancelled (the object is then half-built and must be discarded).
	bool build(std::span<const rule_entry> rules, const bitvector_options& opt)
	{
		cancel_watch cancel{opt.cancel};
		std::vector<rule_entry> v4, v6;
		for (const auto& r : rules) {
			if (r.match->applies_to_ipv4())
				v4.push_back(r);
			if (r.match->applies_to_ipv6())
				v6.push_back(r);
		}
		if (!build_family<false>(v4, opt, cancel, stores4_, views4_) ||
		    !build_family<true>(v6, opt, cancel, stores6_, views6_))
			return false;
		const bool avx512 = opt.allow_avx512 && __builtin_cpu_supports("avx512f") &&
		                    __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
		                    __builtin_cpu_supports("avx512dq");
		run4_ = avx512 ? bv::avx512::run_v4 : bv::scalar::run_v4;
		run6_ = avx512 ? bv::avx512::run_v6 : bv::scalar::run_v6;
		return true;
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
	static bool build_family(const std::vector<rule_entry>& rules, const bitvector_options& opt,
	                         cancel_watch& cancel, std::vector<std::unique_ptr<partition_store>>& stores,
	                         std::vector<partition>& views)
	{
		for (size_t at = 0; at < rules.size(); at += max_partition_rules) {
			if (cancel())
				return false;
			const size_t count = std::min<size_t>(max_partition_rules, rules.size() - at);
			auto store = build_partition<v6>(std::span(rules).subspan(at, count), opt, cancel);
			if (!store)
				return false;
			stores.push_back(std::move(store));
			views.push_back(stores.back()->view);
		}
		return !cancel();
	}

	std::vector<std::unique_ptr<partition_store>> stores4_, stores6_;
	std::vector<partition> views4_, views6_;
	run_v4_fn run4_ = nullptr;
	run_v6_fn run6_ = nullptr;
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
	auto c = std::make_unique<bitvector_classifier>();
	if (!c->build(rules, opt))
		return abandoned_build();
	r.classifier = std::move(c);
	return r;
}

} // namespace portcullis::classify
