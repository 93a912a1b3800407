// The AVX-512 weighted-value loops of cpu_attention, every storage: acc[g * hd + d] +=
// sum_t w * row_t[d] (kernel order). Shared pieces are in cpu_attention_avx512.hpp.
//
// A tile of H query heads x SL 32-element slices (2 * H * SL <= 16 zmm accumulators)
// stays in registers over the block's sixteen rows; each row slice is widened once and
// feeds the H heads, with the weights p * scale (per group, head and row) prepared once per
// block as vectors and p * min summed on the side (the caller adds it to every element of
// the group). With one head (MHA) the tile is a whole row of up to 256 elements, read
// from start to end, so the rows stream in order. The tiles: with_v_tile.
#include <algorithm>
#include <vector>

#include "runtime/backend/cpu/cpu_attention_avx512.hpp"

namespace zinc::runtime::detail::avx512 {
namespace {

template <class L, bool kQuant, int H, int SL>
ZINC_AVX512 void v_accumulate_hxs(const quant::KvView& v, const int64_t* rows, int n,
                                  const float* p, int stride, int group, float* acc, float* msum,
                                  float* tmp) {
  const int hd = v.head_dim, gsz = kQuant ? v.group : hd, ng = hd / gsz, bpg = gsz / 32;
  float* sc = align64(tmp);
  float* mn = sc + kRows * ng;
  float* w = mn + kRows * ng;                                 // [ng][group][16]
  float* msv = w + static_cast<int64_t>(kRows) * ng * group;  // [group][ng][16]
  if (kQuant) std::fill(msv, msv + static_cast<int64_t>(kRows) * ng * group, 0.0f);
  int cg_small[64];  // quant group of each 32-element slice (no division in the loops)
  std::vector<int> cg_big(hd / 32 > 64 ? hd / 32 : 0);
  int* cg = cg_big.empty() ? cg_small : cg_big.data();
  for (int j = 0; j < hd / 32; ++j) cg[j] = j / bpg;
  const Geometry geo(v, kRows);
  for (int base = 0; base < n; base += kRows) {
    Block blk;
    rows::block_rows(geo, rows, base, n, &blk);
    if (kQuant) rows::prefetch_ahead<kRows>(geo, rows, base, n);
    if (kQuant) load_params(geo, blk, sc, mn);
    const __mmask16 real = static_cast<__mmask16>((1u << blk.m) - 1);
    for (int g = 0; g < group; ++g) {
      const __m512 p16 = _mm512_maskz_loadu_ps(real, p + static_cast<int64_t>(g) * stride + base);
      if (kQuant) {
        for (int c = 0; c < ng; ++c) {
          _mm512_storeu_ps(w + (c * group + g) * kRows,
                           _mm512_mul_ps(p16, _mm512_loadu_ps(sc + kRows * c)));
          float* ms = msv + (g * ng + c) * kRows;
          _mm512_storeu_ps(
              ms, _mm512_fmadd_ps(p16, _mm512_loadu_ps(mn + kRows * c), _mm512_loadu_ps(ms)));
        }
      } else {
        _mm512_storeu_ps(w + g * kRows, p16);
      }
    }
    for (int g0 = 0; g0 < group; g0 += H) {
      for (int j0 = 0; j0 < hd / 32; j0 += SL) {
        __m512 a[H][SL][2];
        load_tile<H, SL>(acc, hd, g0, j0, a);
        const float* wc[SL];  // the weights of slice j0 + s: its quant group, head g0
#pragma GCC unroll 8
        for (int s = 0; s < SL; ++s) wc[s] = w + (cg[j0 + s] * group + g0) * kRows;
#pragma GCC unroll 4
        for (int r = 0; r < kRows; ++r) {
#pragma GCC unroll 8
          for (int s = 0; s < SL; ++s) {
            __m512 lo, hi;
            L::load(blk.rows[r], j0 + s, lo, hi);
#pragma GCC unroll 8
            for (int h = 0; h < H; ++h) {
              const __m512 wr = _mm512_set1_ps(wc[s][h * kRows + r]);
              a[h][s][0] = _mm512_fmadd_ps(wr, lo, a[h][s][0]);
              a[h][s][1] = _mm512_fmadd_ps(wr, hi, a[h][s][1]);
            }
          }
        }
        store_tile<H, SL>(acc, hd, g0, j0, a);
      }
    }
  }
  if (kQuant)
    for (int g = 0; g < group; ++g)
      for (int c = 0; c < ng; ++c)
        msum[g * ng + c] += _mm512_reduce_add_ps(_mm512_loadu_ps(msv + (g * ng + c) * kRows));
}

template <class L, bool kQuant>
void v_accumulate(const quant::KvView& v, const int64_t* rows, int n, const float* p, int stride,
                  int group, float* acc, float* msum, float* tmp) {
  with_v_tile(group, v.head_dim / 32, [&](auto h, auto sl) {
    v_accumulate_hxs<L, kQuant, decltype(h)::value, decltype(sl)::value>(v, rows, n, p, stride,
                                                                         group, acc, msum, tmp);
  });
}

}  // namespace

VAccumulateFn v_accumulate_fn(quant::KvStorage s) {
  switch (s) {
    case quant::KvStorage::F32:
      return v_accumulate<LoadF32, false>;
    case quant::KvStorage::F16:
      return v_accumulate<LoadF16, false>;
    case quant::KvStorage::Int8:
      return v_accumulate<LoadI8, true>;
    case quant::KvStorage::Int4:
      return v_accumulate<LoadI4, true>;
  }
  return v_accumulate<LoadF32, false>;
}

}  // namespace zinc::runtime::detail::avx512
