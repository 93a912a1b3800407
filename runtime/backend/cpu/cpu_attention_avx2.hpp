// Internal to cpu_attention: the pieces the AVX2 + FMA + F16C inner loops share
// (cpu_attention_avx2.cpp: the row-order f32 / f16 single-head loops, softmax and the
// dispatch; cpu_attention_avx2_blocked.cpp: the register-blocked loops every other case
// runs); the ISA-free row bookkeeping is in cpu_attention_rows.hpp. Every function carries
// the target attribute, so the rest of the program stays baseline x86-64; include this only
// from those files.
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstdint>

#include "runtime/backend/cpu/cpu_attention_kernels.hpp"
#include "runtime/backend/cpu/cpu_attention_rows.hpp"

#define ZINC_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace zinc::runtime::detail::avx2 {

// ---- loaders: elements [16k, 16k + 16) of a row as two vectors, in kernel order ----
struct LoadF32 {
  ZINC_AVX2 static inline void load(const uint8_t* row, int k, __m256& lo, __m256& hi) {
    const float* f = reinterpret_cast<const float*>(row) + 16 * k;
    lo = _mm256_loadu_ps(f);
    hi = _mm256_loadu_ps(f + 8);
  }
};

struct LoadF16 {
  ZINC_AVX2 static inline void load(const uint8_t* row, int k, __m256& lo, __m256& hi) {
    const auto* h = reinterpret_cast<const __m128i*>(row + 32 * k);
    lo = _mm256_cvtph_ps(_mm_loadu_si128(h));
    hi = _mm256_cvtph_ps(_mm_loadu_si128(h + 1));
  }
};

struct LoadI8 {
  ZINC_AVX2 static inline void load(const uint8_t* row, int k, __m256& lo, __m256& hi) {
    const uint8_t* c = row + 16 * k;
    lo = _mm256_cvtepi32_ps(
        _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c))));
    hi = _mm256_cvtepi32_ps(
        _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c + 8))));
  }
};

struct LoadI4 {  // kernel order: even elements (low nibbles), then odd (high nibbles)
  ZINC_AVX2 static inline void load(const uint8_t* row, int k, __m256& lo, __m256& hi) {
    const __m256i x =
        _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + 8 * k)));
    lo = _mm256_cvtepi32_ps(_mm256_and_si256(x, _mm256_set1_epi32(15)));
    hi = _mm256_cvtepi32_ps(_mm256_srli_epi32(x, 4));
  }
};

constexpr int kRows = 8;  // rows per block

// [sum(a[0]), ..., sum(a[7])]
ZINC_AVX2 inline __m256 reduce8(const __m256* a) {
  const __m256 h0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
  const __m256 h1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
  // h0 = [r0..r3 over elements 0-3 of each 8 | r0..r3 over elements 4-7], h1 the same for r4..r7
  return _mm256_add_ps(_mm256_permute2f128_ps(h0, h1, 0x20), _mm256_permute2f128_ps(h0, h1, 0x31));
}

// sum of the 8 lanes, in a fixed order
ZINC_AVX2 inline float hsum8(__m256 v) {
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

using Geometry = rows::Geometry;
using Block = rows::Block<kRows>;

// {scale, min} of two groups (4 halves, 8 bytes) of four rows, then a 4 x 4 transpose.
ZINC_AVX2 inline void load_params4(const uint16_t* const* p, int c, float* sc, float* mn) {
  __m128 r0 = _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p[0] + 2 * c)));
  __m128 r1 = _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p[1] + 2 * c)));
  __m128 r2 = _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p[2] + 2 * c)));
  __m128 r3 = _mm_cvtph_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p[3] + 2 * c)));
  _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
  _mm_storeu_ps(sc + kRows * c, r0);
  _mm_storeu_ps(mn + kRows * c, r1);
  _mm_storeu_ps(sc + kRows * (c + 1), r2);
  _mm_storeu_ps(mn + kRows * (c + 1), r3);
}

ZINC_AVX2 inline void load_block(const Geometry& g, const int64_t* rows, int base, int n,
                                 bool quant, Block* blk, float* sc, float* mn) {
  rows::block_rows(g, rows, base, n, blk);
  if (!quant) return;
  const uint16_t* const* p = blk->params;
  int c = 0;
  for (; c + 2 <= g.groups; c += 2) {
    load_params4(p, c, sc, mn);
    load_params4(p + 4, c, sc + 4, mn + 4);
  }
  if (c < g.groups) {  // an odd last group
    for (int r = 0; r < kRows; ++r) {
      sc[kRows * c + r] = _cvtsh_ss(p[r][2 * c]);
      mn[kRows * c + r] = _cvtsh_ss(p[r][2 * c + 1]);
    }
  }
}

inline void prefetch_ahead(const Geometry& g, const int64_t* rows, int base, int n) {
  rows::prefetch_ahead<kRows>(g, rows, base, n);
}

// The register-blocked loops (cpu_attention_avx2_blocked.cpp), for any group of query
// heads per kv head and any storage.
KScoresFn blocked_k_scores(quant::KvStorage s);
VAccumulateFn blocked_v_accumulate(quant::KvStorage s);

}  // namespace zinc::runtime::detail::avx2
