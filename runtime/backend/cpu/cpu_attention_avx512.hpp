// Internal to cpu_attention: the pieces the AVX-512 inner loops share
// (cpu_attention_avx512.cpp: K scores in fp32 and the kernel sets;
// cpu_attention_avx512_v.cpp: the weighted values; cpu_attention_avx512_vnni.cpp: K scores
// of int8 / int4 rows as integer dot products). Blocks are 16 rows (one zmm of scores);
// the row bookkeeping is the ISA-free cpu_attention_rows.hpp that the AVX2 loops use too.
//
// Software prefetch (rows::prefetch_ahead, the rows ~2 KiB ahead) only for int8 / int4 rows
// (the VNNI K loops, the quantized V loops), aimed at the OPT-30B decode shape on the GPU
// host (H = KVH 56, hd 128, G 64, 528 keys: short rows, 64 or 128 codes bytes plus 8 of
// params, and short streams, 33 blocks per work item), where int4 reads at 69% of the host's
// bandwidth; on the development VM (Zen 4) it measured neither faster nor slower. Not for
// f32 / f16: the AVX2 loops' prefetch made these loops slower there (one Zen 4 core, KV from
// memory, MHA hd 128, ns per key with / without: f32 73 / 53, f16 32 / 23; a prefetch per
// row instead of per block was slower still).
//
// Every function carries a target attribute rather than the files being compiled with
// -mavx512*: with per-file flags the compiler may emit AVX-512 code in the inline functions
// these files share with the rest of the program (std::vector, std::min, ...), and the
// linker keeps one copy of each, possibly that one, for every caller: the program would
// then fault on a host without AVX-512. Include this only from those files.
#pragma once

// GCC 12's AVX-512 intrinsics start many results from _mm512_undefined_*(), which its
// -W(maybe-)uninitialized report at every use (GCC bug 105593, fixed in GCC 13). Include
// this header first, so that the pragma precedes immintrin.h's first inclusion.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>

#include <cstdint>
#include <type_traits>

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

// Lane r = the dword at p[r] + off (16 rows; a load, then pairs, quads, ... combined).
ZINC_AVX512 inline __m512i rows_dword(const uint16_t* const* p, int off) {
  __m128i x[kRows];
#pragma GCC unroll 16
  for (int r = 0; r < kRows; ++r) {
    int32_t d;
    __builtin_memcpy(&d, p[r] + off, 4);
    x[r] = _mm_cvtsi32_si128(d);
  }
#pragma GCC unroll 8
  for (int r = 0; r < 8; ++r) x[r] = _mm_unpacklo_epi32(x[2 * r], x[2 * r + 1]);
#pragma GCC unroll 4
  for (int r = 0; r < 4; ++r) x[r] = _mm_unpacklo_epi64(x[2 * r], x[2 * r + 1]);
  const __m256i lo = _mm256_inserti128_si256(_mm256_castsi128_si256(x[0]), x[1], 1);
  const __m256i hi = _mm256_inserti128_si256(_mm256_castsi128_si256(x[2]), x[3], 1);
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

// Rows 8h .. 8h + 7's qwords at p[r] + off, in order (lane pair r = row 8h + r).
ZINC_AVX512 inline __m512i rows_qword(const uint16_t* const* p, int off, int h) {
  __m128i x[8];
#pragma GCC unroll 8
  for (int r = 0; r < 8; ++r)
    x[r] = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p[8 * h + r] + off));
#pragma GCC unroll 4
  for (int r = 0; r < 4; ++r) x[r] = _mm_unpacklo_epi64(x[2 * r], x[2 * r + 1]);
  const __m256i lo = _mm256_inserti128_si256(_mm256_castsi128_si256(x[0]), x[1], 1);
  const __m256i hi = _mm256_inserti128_si256(_mm256_castsi128_si256(x[2]), x[3], 1);
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

// d lane r = {scale, min} of row r (fp16 pair) -> sc[16 c + r], mn[16 c + r].
ZINC_AVX512 inline void store_params(__m512i d, int c, float* sc, float* mn) {
  _mm512_storeu_ps(sc + kRows * c, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(d)));
  _mm512_storeu_ps(mn + kRows * c,
                   _mm512_cvtph_ps(_mm512_cvtepi32_epi16(_mm512_srli_epi32(d, 16))));
}

// The block's params transposed: sc[16 * c + r], mn[16 * c + r] (scale and min of group c of
// row r). Two groups at a time from one 8-byte load per row, split by vpermt2d. (Gathers
// measured slower on Zen 4: 8.3 vs 7.1 ns per int8 row of V with one head.)
ZINC_AVX512 inline void load_params(const Geometry& g, const Block& blk, float* sc, float* mn) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  int c = 0;
  for (; c + 2 <= g.groups; c += 2) {
    const __m512i a = rows_qword(blk.params, 2 * c, 0), b = rows_qword(blk.params, 2 * c, 1);
    store_params(_mm512_permutex2var_epi32(a, even, b), c, sc, mn);
    store_params(_mm512_permutex2var_epi32(a, odd, b), c + 1, sc, mn);
  }
  if (c < g.groups) store_params(rows_dword(blk.params, 2 * c), c, sc, mn);
}

// The weighted-value tile for `group` query heads per kv head and `slices` 32-element
// slices per row: H heads x SL slices, 2 * H * SL <= 16 zmm accumulators (8 x 1 for groups
// of 8 or more, 4 x 2, 2 x 4, 1 x 8 or 1 x 4, fewer slices where they do not divide):
// returns f(std::integral_constant<int, H>(), std::integral_constant<int, SL>()).
template <class F>
inline void with_v_tile(int group, int slices, F&& f) {
  auto tile = [&](auto h, auto sl) { f(h, sl); };
  using I1 = std::integral_constant<int, 1>;
  using I2 = std::integral_constant<int, 2>;
  using I4 = std::integral_constant<int, 4>;
  using I8 = std::integral_constant<int, 8>;
  if (group % 8 == 0) return tile(I8(), I1());
  if (group % 4 == 0) return slices % 2 == 0 ? tile(I4(), I2()) : tile(I4(), I1());
  if (group % 2 == 0) {
    if (slices % 4 == 0) return tile(I2(), I4());
    return slices % 2 == 0 ? tile(I2(), I2()) : tile(I2(), I1());
  }
  if (slices % 8 == 0) return tile(I1(), I8());
  if (slices % 4 == 0) return tile(I1(), I4());
  return slices % 2 == 0 ? tile(I1(), I2()) : tile(I1(), I1());
}

// The accumulator tile of with_v_tile: a[h][s] = acc of head g0 + h (hd elements each),
// elements [32 (j0 + s), 32 (j0 + s) + 32) as two zmm; store_tile writes it back.
template <int H, int SL>
ZINC_AVX512 inline void load_tile(const float* acc, int hd, int g0, int j0, __m512 (&a)[H][SL][2]) {
#pragma GCC unroll 8
  for (int s = 0; s < SL; ++s)
#pragma GCC unroll 8
    for (int h = 0; h < H; ++h) {
      const float* ah = acc + static_cast<int64_t>(g0 + h) * hd + 32 * (j0 + s);
      a[h][s][0] = _mm512_loadu_ps(ah);
      a[h][s][1] = _mm512_loadu_ps(ah + 16);
    }
}

template <int H, int SL>
ZINC_AVX512 inline void store_tile(float* acc, int hd, int g0, int j0,
                                   const __m512 (&a)[H][SL][2]) {
#pragma GCC unroll 8
  for (int s = 0; s < SL; ++s)
#pragma GCC unroll 8
    for (int h = 0; h < H; ++h) {
      float* ah = acc + static_cast<int64_t>(g0 + h) * hd + 32 * (j0 + s);
      _mm512_storeu_ps(ah, a[h][s][0]);
      _mm512_storeu_ps(ah + 16, a[h][s][1]);
    }
}

// The weighted-value loops of every storage (cpu_attention_avx512_v.cpp).
VAccumulateFn v_accumulate_fn(quant::KvStorage s);

}  // namespace zinc::runtime::detail::avx512
