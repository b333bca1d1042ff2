// Bit-vector build, step 1 (bitvector_classes.h): interning rule bit vectors and cutting fields into classes.
#include "classify/bitvector_classes.h"

#include <algorithm>
#include <cstring>

namespace portcullis::classify::bv {

uint32_t class_builder::intern_chunk(const uint64_t* words)
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

uint32_t class_builder::intern_class(const std::vector<uint32_t>& chunk_patterns)
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

uint32_t class_builder::intern(const uint64_t* bits)
{
	std::vector<uint32_t> chunk_patterns(nchunks);
	for (uint32_t k = 0; k < nchunks; ++k)
		chunk_patterns[k] = intern_chunk(bits + size_t(k) * chunk_words);
	return intern_class(chunk_patterns);
}

std::vector<uint64_t> class_builder::expand(uint32_t cls) const
{
	std::vector<uint64_t> bits(size_t(nchunks) * chunk_words, 0);
	const class_row& row = rows[cls];
	uint32_t ref = row.ref_offset;
	for (uint32_t k = 0; k < nchunks; ++k)
		if (row.summary & (uint64_t(1) << k))
			std::memcpy(&bits[size_t(k) * chunk_words], patterns[refs[ref++]].words, sizeof(pattern));
	return bits;
}

size_t class_builder::bytes() const
{
	return rows.size() * sizeof(class_row) + refs.size() * sizeof(uint32_t) + patterns.size() * sizeof(pattern);
}

template <class T>
field_classes<T> cut_field(const std::vector<const range_set<T>*>& sets, cancel_watch& cancel)
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
	size_t emitted = 0;
	if (events.empty() || events[0].at != T(0))
		emit(T(0));
	if (cancel())
		return out;
	while (e < events.size()) {
		// Each emit interns up to 64 chunks: the sweep is where a big partition spends its time.
		if (++emitted % cancel_check_events == 0 && cancel())
			return out;
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

template field_classes<uint8_t> cut_field(const std::vector<const range_set<uint8_t>*>&, cancel_watch&);
template field_classes<uint16_t> cut_field(const std::vector<const range_set<uint16_t>*>&, cancel_watch&);
template field_classes<uint32_t> cut_field(const std::vector<const range_set<uint32_t>*>&, cancel_watch&);
template field_classes<u128> cut_field(const std::vector<const range_set<u128>*>&, cancel_watch&);
template std::vector<uint16_t> direct_table(const field_classes<uint8_t>&, size_t);
template std::vector<uint16_t> direct_table(const field_classes<uint16_t>&, size_t);

} // namespace portcullis::classify::bv
