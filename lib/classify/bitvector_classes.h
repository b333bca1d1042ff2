// Bit-vector build, step 1 (see bitvector.h): each field's value space cut into equivalence classes.
// Private to lib/classify: bitvector_classes.cc, bitvector_ranges.cc and bitvector.cc.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "classify/bitvector_layout.h"

namespace portcullis::classify::bv {

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
	uint32_t intern_chunk(const uint64_t* words);
	uint32_t intern_class(const std::vector<uint32_t>& chunk_patterns);
	uint32_t intern(const uint64_t* bits);
	// The full vector of a class, nchunks * chunk_words words.
	std::vector<uint64_t> expand(uint32_t cls) const;
	size_t bytes() const;
};

// Remembers that the build's cancel flag was seen set, so that every later step gives up at once.
struct cancel_watch {
	const std::atomic<bool>* flag = nullptr;
	bool seen = false;

	bool operator()() { return seen = seen || cancelled(flag); }
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
// Gives up (returning what it has) when `cancel` is seen set; the caller checks cancel.seen.
// Instantiated in bitvector_classes.cc for the field types: uint8_t, uint16_t, uint32_t and u128.
template <class T>
field_classes<T> cut_field(const std::vector<const range_set<T>*>& sets, cancel_watch& cancel);

// Fill a direct table (ports, protocol, flags, set bits) from intervals.
// Instantiated for uint8_t and uint16_t.
template <class T>
std::vector<uint16_t> direct_table(const field_classes<T>& fc, size_t size);

} // namespace portcullis::classify::bv
