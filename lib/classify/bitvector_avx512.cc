// AVX-512 lookup loops of the bit-vector classifier. Compiled with -mavx512{f,bw,vl,dq}; only called when
// the CPU reports those (bitvector.cc checks once, at build).
#include <immintrin.h>

#include "classify/bitvector_layout.h"

namespace portcullis::classify::bv::avx512 {

static inline uint32_t count_le16(const uint16_t* keys, uint16_t v)
{
	const __m512i k = _mm512_load_si512(keys);
	return uint32_t(__builtin_popcount(_mm512_cmple_epu16_mask(k, _mm512_set1_epi16(short(v)))));
}

static inline uint32_t count_le32(const uint32_t* keys, uint32_t v)
{
	const __m512i k = _mm512_load_si512(keys);
	return uint32_t(__builtin_popcount(_mm512_mask_cmple_epu32_mask(0x7fff, k, _mm512_set1_epi32(int(v)))));
}

static inline int first_common_bit(const pattern* const* p, uint32_t n)
{
	if constexpr (chunk_bits == 512) {
		__m512i acc = _mm512_load_si512(p[0]->words);
		for (uint32_t f = 1; f < n; ++f)
			acc = _mm512_and_si512(acc, _mm512_load_si512(p[f]->words));
		const __mmask8 nonzero = _mm512_test_epi64_mask(acc, acc);
		if (!nonzero)
			return -1;
		// The first non-zero word, moved to lane 0 in a register: going through memory would stall on
		// store-to-load forwarding from the 64-byte store (measured: a fifth of the lookup's samples).
		const uint32_t w = uint32_t(__builtin_ctz(nonzero));
		const uint64_t word = uint64_t(_mm_cvtsi128_si64(_mm512_castsi512_si128(_mm512_maskz_compress_epi64(nonzero, acc))));
		return int(w * 64 + uint32_t(__builtin_ctzll(word)));
	} else {
		__m256i acc = _mm256_load_si256(reinterpret_cast<const __m256i*>(p[0]->words));
		for (uint32_t f = 1; f < n; ++f)
			acc = _mm256_and_si256(acc, _mm256_load_si256(reinterpret_cast<const __m256i*>(p[f]->words)));
		const __mmask8 nonzero = _mm256_test_epi64_mask(acc, acc);
		if (!nonzero)
			return -1;
		const uint32_t w = uint32_t(__builtin_ctz(nonzero));
		const uint64_t word = uint64_t(_mm_cvtsi128_si64(_mm256_castsi256_si128(_mm256_maskz_compress_epi64(nonzero, acc))));
		return int(w * 64 + uint32_t(__builtin_ctzll(word)));
	}
}

#include "classify/bitvector_lookup.inc"

} // namespace portcullis::classify::bv::avx512
