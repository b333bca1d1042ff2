// Portable lookup loops of the bit-vector classifier: 64-bit words, no SIMD beyond what the compiler finds.
#include "classify/bitvector_layout.h"

namespace portcullis::classify::bv::scalar {

static inline uint32_t count_le16(const uint16_t* keys, uint16_t v)
{
	uint32_t c = 0;
	for (uint32_t i = 0; i < 32; ++i)
		c += keys[i] <= v;
	return c;
}

static inline uint32_t count_le32(const uint32_t* keys, uint32_t v)
{
	uint32_t c = 0;
	for (uint32_t i = 0; i < node32_keys; ++i)
		c += keys[i] <= v;
	return c;
}

static inline int first_common_bit(const pattern* const* p, uint32_t n)
{
	for (uint32_t w = 0; w < chunk_words; ++w) {
		uint64_t acc = p[0]->words[w];
		for (uint32_t f = 1; f < n; ++f)
			acc &= p[f]->words[w];
		if (acc)
			return int(w * 64 + uint32_t(__builtin_ctzll(acc)));
	}
	return -1;
}

#include "classify/bitvector_lookup.inc"

} // namespace portcullis::classify::bv::scalar
