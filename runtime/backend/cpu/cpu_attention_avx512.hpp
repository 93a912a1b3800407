// Internal to cpu_attention: the pieces the AVX-512 inner loops share
// (cpu_attention_avx512.cpp: K scores in fp32 and the kernel sets;
// cpu_attention_avx512_v.cpp: the weighted values; cpu_attention_avx512_vnni.cpp: K scores
// of int8 / int4 rows as integer dot products). Blocks are 16 rows (one zmm of scores);
// the row bookkeeping is the ISA-free cpu_attention_rows.hpp that the AVX2 loops use too.
//
// Every function carries a target attribute rather than the files being compiled with
// -mavx512*: with per-file flags the compiler may emit AVX-512 code in the inline functions
// these files share with the rest of the program (std::vector, std::min, ...), and the
// linker keeps one copy of each, possibly that one, for every caller: the program would
// then fault on a host without AVX-512. Include this only from those files.
#pragma once

// GCC 12's AVX-512 intrinsics start many results from _mm512_undefined_*(), which its
// -Wmaybe-uninitialized reports at every use (GCC bug 105593, fixed in GCC 13). Include
// this header first, so that the pragma precedes immintrin.h's first inclusion.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstdint>

#include "runtime/backend/cpu/cpu_attention_kernels.hpp"
#include "runtime/backend/cpu/cpu_attention_rows.hpp"

#define ZINC_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#define ZINC_AVX512_VNNI \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))

namespace zinc::runtime::detail::avx512 {

constexpr int kRows = 16;  // rows per block
using Geometry = rows::Geometry;
using Block = rows::Block<kRows>;

// tmp (cpu_attention_kernels.hpp) rounded up to 64 bytes: room for aligned zmm stores.
inline float* align64(float* p) {
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t{63});
}

// ---- loaders: elements [32j, 32j + 32) of a row as two zmm, in kernel order ----
struct LoadF32 {
  static constexpr int kNibbleBlock = 0;
  ZINC_AVX512 static inline void load(const uint8_t* row, int j, __m512& lo, __m512& hi) {
    const float* f = reinterpret_cast<const float*>(row) + 32 * j;
    lo = _mm512_loadu_ps(f);
    hi = _mm512_loadu_ps(f + 16);
  }
};

struct LoadF16 {
  static constexpr int kNibbleBlock = 0;
  ZINC_AVX512 static inline void load(const uint8_t* row, int j, __m512& lo, __m512& hi) {
    const auto* h = reinterpret_cast<const __m256i*>(row + 64 * j);
    lo = _mm512_cvtph_ps(_mm256_loadu_si256(h));
    hi = _mm512_cvtph_ps(_mm256_loadu_si256(h + 1));
  }
};

struct LoadI8 {
  static constexpr int kNibbleBlock = 0;
  ZINC_AVX512 static inline void load(const uint8_t* row, int j, __m512& lo, __m512& hi) {
    const auto* c = reinterpret_cast<const __m128i*>(row + 32 * j);
    lo = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(c)));
    hi = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(c + 1)));
  }
};

struct LoadI4 {  // kernel order: the 16 even elements (low nibbles), then the 16 odd (high)
  static constexpr int kNibbleBlock = 32;
  ZINC_AVX512 static inline void load(const uint8_t* row, int j, __m512& lo, __m512& hi) {
    const __m512i x =
        _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(row + 16 * j)));
    lo = _mm512_cvtepi32_ps(_mm512_and_si512(x, _mm512_set1_epi32(15)));
    hi = _mm512_cvtepi32_ps(_mm512_srli_epi32(x, 4));
  }
};

// [sum(a[0]), ..., sum(a[15])] in 45 instructions (a transpose-and-add tree).
ZINC_AVX512 inline __m512 reduce16(const __m512* a) {
  __m512 s[8], u[4], v[2];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i)  // 128-bit block b: [A0+A2, B0+B2, A1+A3, B1+B3] of a[2i], a[2i+1]
    s[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]),
                         _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {  // block b: the block-b sums of a[4i .. 4i + 3]
    const __m512d x = _mm512_castps_pd(s[2 * i]), y = _mm512_castps_pd(s[2 * i + 1]);
    u[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
                         _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
  }
#pragma GCC unroll 2
  for (int i = 0; i < 2; ++i)  // [u0 b0+b1, u0 b2+b3, u1 b0+b1, u1 b2+b3] of u[2i], u[2i+1]
    v[i] = _mm512_add_ps(_mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], 0x88),
                         _mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], 0xDD));
  return _mm512_add_ps(_mm512_shuffle_f32x4(v[0], v[1], 0x88),
                       _mm512_shuffle_f32x4(v[0], v[1], 0xDD));
}

// The block's params transposed: sc[16 * c + r], mn[16 * c + r] (scale and min of group c of
// row r), one gather of the 16 rows' {scale, min} pair per group.
ZINC_AVX512 inline void load_params(const Geometry& g, const Block& blk, float* sc, float* mn) {
  const __m512i stride = _mm512_set1_epi64(2 * g.param_halves);  // bytes per row
  const __m512i off0 = _mm512_mullo_epi64(_mm512_loadu_si512(blk.index), stride);
  const __m512i off1 = _mm512_mullo_epi64(_mm512_loadu_si512(blk.index + 8), stride);
  for (int c = 0; c < g.groups; ++c) {
    const void* base = g.params + 2 * c;
    const __m512i d = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm512_i64gather_epi32(off0, base, 1)),
        _mm512_i64gather_epi32(off1, base, 1), 1);
    _mm512_storeu_ps(sc + kRows * c, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(d)));
    _mm512_storeu_ps(mn + kRows * c,
                     _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(d, 16))));
  }
}

// The weighted-value loops of every storage (cpu_attention_avx512_v.cpp).
VAccumulateFn v_accumulate_fn(quant::KvStorage s);

}  // namespace zinc::runtime::detail::avx512
