// The register-blocked AVX2 inner loops of cpu_attention: every storage and query group
// except f32 / f16 rows with one query head per kv head (those stream row after row:
// cpu_attention_avx2.cpp). Shared pieces are in cpu_attention_avx2.hpp.
//
// K: a block of kRows = 8 rows is taken R rows x H query heads at a time (R * H = 8: 8x1
// for MHA, 4x2, 2x4, 1x8 for groups of 2, 4, 8 or more), with one accumulator per (row,
// head). Each 16-element slice of a row is loaded and widened once into registers and
// feeds all H heads (no f32 scratch), and one reduce8 per quant group turns the eight
// accumulators into the eight dots, folding in scale * dot + min * sum(q) as one vector.
// V: H heads x SL 16-element slices (H * SL = 4, eight accumulators) stay in registers
// over the block's eight rows; each row slice is widened once and feeds the H heads, with
// the weights p * scale (per group, head and row) prepared once per block and p * min
// summed on the side as vectors. So per row, widening costs 1 / H of what it did, and
// nothing but the FMAs grows with the group. (Reading each row's slices one row after
// another instead, for sequential addresses, measured 0-40% slower: the FMA chains per
// accumulator get longer.)
//
// Measured on the development VM (one core, rows in L1/L2, hd 128, ns per key for K + V,
// minimum of 15 interleaved rounds), before (f32 scratch per block, one head at a time)
// and after: group 4: f16 60 -> 33, int8 55 -> 40, int4 56 -> 40; group 1: int8 26 -> 24,
// int4 27 -> 24. Group 4 costs 128 FMAs per key; this VM's cores sustain one 256-bit FMA
// per 0.3-0.5 ns, so about 40 ns per key is the floor of exact fp32 arithmetic here, and
// int8 / int4 rows (272 / 144 bytes per key) cannot reach the memory's pace on one core.
// With one head, int8 / int4 are bound by widening (int4: vpmovzxbd, AND, shift and two
// vcvtdq2ps per 16 codes), about 12 ns per row for K and as much for V.
#include <cmath>
#include <vector>

#include "runtime/backend/cpu/cpu_attention_avx2.hpp"

namespace zinc::runtime::detail::avx2 {
namespace {

// Lane i = x[i % R] (x: R consecutive rows' values).
template <int R>
ZINC_AVX2 inline __m256 bcast_rows(const float* x) {
  if constexpr (R == 8) {
    return _mm256_loadu_ps(x);
  } else if constexpr (R == 4) {
    return _mm256_broadcast_ps(reinterpret_cast<const __m128*>(x));
  } else if constexpr (R == 2) {
    return _mm256_castpd_ps(_mm256_broadcast_sd(reinterpret_cast<const double*>(x)));
  } else {
    return _mm256_broadcast_ss(x);
  }
}

// Lane h * R + r of d -> out[h * stride + r].
template <int R>
ZINC_AVX2 inline void store_dots(__m256 d, float* out, int stride) {
  if constexpr (R == 8) {
    _mm256_storeu_ps(out, d);
  } else if constexpr (R == 4) {
    _mm_storeu_ps(out, _mm256_castps256_ps128(d));
    _mm_storeu_ps(out + stride, _mm256_extractf128_ps(d, 1));
  } else if constexpr (R == 2) {
    const __m128 lo = _mm256_castps256_ps128(d), hi = _mm256_extractf128_ps(d, 1);
    _mm_storel_pi(reinterpret_cast<__m64*>(out), lo);
    _mm_storeh_pi(reinterpret_cast<__m64*>(out + stride), lo);
    _mm_storel_pi(reinterpret_cast<__m64*>(out + 2 * stride), hi);
    _mm_storeh_pi(reinterpret_cast<__m64*>(out + 3 * stride), hi);
  } else {
    alignas(32) float d8[kRows];
    _mm256_store_ps(d8, d);
    for (int h = 0; h < kRows; ++h) out[h * stride] = d8[h];
  }
}

// scores[g * stride + t] for t < n rounded up to 8 (the rows past n repeat the last one).
template <class L, bool kQuant, int R>
ZINC_AVX2 void k_scores_rxh(const quant::KvView& k, const int64_t* rows, int n, const float* q,
                            const float* qsum, int group, float* scores, int stride, float* tmp) {
  constexpr int H = kRows / R;
  const int hd = k.head_dim, gsz = kQuant ? k.group : hd, ng = hd / gsz, kpg = gsz / 16;
  float* sc = tmp;
  float* mn = sc + kRows * ng;
  float* qsv = mn + kRows * ng;  // [group / H][ng][8]: lane i = qsum of head g0 + i / R
  if (kQuant)
    for (int g0 = 0; g0 < group; g0 += H)
      for (int c = 0; c < ng; ++c)
        for (int i = 0; i < kRows; ++i)
          qsv[((g0 / H) * ng + c) * kRows + i] = qsum[(g0 + i / R) * ng + c];
  const Geometry geo(k, kRows);
  for (int base = 0; base < n; base += kRows) {
    Block blk;
    prefetch_ahead(geo, rows, base, n);
    load_block(geo, rows, base, n, kQuant, &blk, sc, mn);
    for (int g0 = 0; g0 < group; g0 += H) {
      const float* qg = q + static_cast<int64_t>(g0) * hd;
      for (int r0 = 0; r0 < blk.m; r0 += R) {
        __m256 tot = _mm256_setzero_ps();
        for (int c = 0; c < ng; ++c) {
          __m256 a[kRows];
#pragma GCC unroll 8
          for (int i = 0; i < kRows; ++i) a[i] = _mm256_setzero_ps();
          for (int s = c * kpg; s < (c + 1) * kpg; ++s) {
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r) {
              __m256 lo, hi;
              L::load(blk.rows[r0 + r], s, lo, hi);
#pragma GCC unroll 8
              for (int h = 0; h < H; ++h) {
                const float* qh = qg + h * hd + 16 * s;
                a[h * R + r] = _mm256_fmadd_ps(
                    hi, _mm256_loadu_ps(qh + 8),
                    _mm256_fmadd_ps(lo, _mm256_loadu_ps(qh), a[h * R + r]));
              }
            }
          }
          const __m256 d = reduce8(a);
          if (kQuant) {
            tot = _mm256_fmadd_ps(d, bcast_rows<R>(sc + kRows * c + r0), tot);
            tot = _mm256_fmadd_ps(bcast_rows<R>(mn + kRows * c + r0),
                                  _mm256_loadu_ps(qsv + ((g0 / H) * ng + c) * kRows), tot);
          } else {
            tot = d;  // a single group
          }
        }
        store_dots<R>(tot, scores + static_cast<int64_t>(g0) * stride + base + r0, stride);
      }
    }
  }
}

template <class L, bool kQuant>
void k_scores_blocked(const quant::KvView& k, const int64_t* rows, int n, const float* q,
                      const float* qsum, int group, float* scores, int stride, float* tmp) {
  if (group % 8 == 0)
    return k_scores_rxh<L, kQuant, 1>(k, rows, n, q, qsum, group, scores, stride, tmp);
  if (group % 4 == 0)
    return k_scores_rxh<L, kQuant, 2>(k, rows, n, q, qsum, group, scores, stride, tmp);
  if (group % 2 == 0)
    return k_scores_rxh<L, kQuant, 4>(k, rows, n, q, qsum, group, scores, stride, tmp);
  return k_scores_rxh<L, kQuant, 8>(k, rows, n, q, qsum, group, scores, stride, tmp);
}

// acc[g * hd + d] += sum_t w * row_t[d]; see the file comment.
template <class L, bool kQuant, int H, int SL>
ZINC_AVX2 void v_accumulate_hxs(const quant::KvView& v, const int64_t* rows, int n, const float* p,
                                int stride, int group, float* acc, float* msum, float* tmp) {
  const int hd = v.head_dim, gsz = kQuant ? v.group : hd, ng = hd / gsz, kpg = gsz / 16;
  float* sc = tmp;
  float* mn = sc + kRows * ng;
  float* w = mn + kRows * ng;                                // [ng][group][8]
  float* msv = w + static_cast<int64_t>(kRows) * ng * group;  // [group][ng][8]
  if (kQuant) std::fill(msv, msv + static_cast<int64_t>(kRows) * ng * group, 0.0f);
  int cg_small[64];  // quant group of each 16-element slice (no division in the loops)
  std::vector<int> cg_big(hd / 16 > 64 ? hd / 16 : 0);
  int* cg = cg_big.empty() ? cg_small : cg_big.data();
  for (int k = 0; k < hd / 16; ++k) cg[k] = k / kpg;
  const Geometry geo(v, kRows);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int base = 0; base < n; base += kRows) {
    Block blk;
    prefetch_ahead(geo, rows, base, n);
    load_block(geo, rows, base, n, kQuant, &blk, sc, mn);
    const __m256i real = _mm256_cmpgt_epi32(_mm256_set1_epi32(blk.m), lane);
    for (int g = 0; g < group; ++g) {
      const __m256 p8 = _mm256_maskload_ps(p + static_cast<int64_t>(g) * stride + base, real);
      if (kQuant) {
        for (int c = 0; c < ng; ++c) {
          _mm256_storeu_ps(w + (c * group + g) * kRows,
                           _mm256_mul_ps(p8, _mm256_loadu_ps(sc + kRows * c)));
          float* ms = msv + (g * ng + c) * kRows;
          _mm256_storeu_ps(
              ms, _mm256_fmadd_ps(p8, _mm256_loadu_ps(mn + kRows * c), _mm256_loadu_ps(ms)));
        }
      } else {
        _mm256_storeu_ps(w + g * kRows, p8);
      }
    }
    for (int g0 = 0; g0 < group; g0 += H) {
      for (int k0 = 0; k0 < hd / 16; k0 += SL) {
        __m256 a[H][SL][2];
        const float* wc[SL];  // the weights of slice k0 + s: its quant group, head g0
#pragma GCC unroll 4
        for (int s = 0; s < SL; ++s) {
          wc[s] = w + (cg[k0 + s] * group + g0) * kRows;
#pragma GCC unroll 4
          for (int h = 0; h < H; ++h) {
            const float* ah = acc + static_cast<int64_t>(g0 + h) * hd + 16 * (k0 + s);
            a[h][s][0] = _mm256_loadu_ps(ah);
            a[h][s][1] = _mm256_loadu_ps(ah + 8);
          }
        }
#pragma GCC unroll 8
        for (int r = 0; r < kRows; ++r) {
#pragma GCC unroll 4
          for (int s = 0; s < SL; ++s) {
            __m256 lo, hi;
            L::load(blk.rows[r], k0 + s, lo, hi);
#pragma GCC unroll 4
            for (int h = 0; h < H; ++h) {
              const __m256 wr = _mm256_broadcast_ss(wc[s] + h * kRows + r);
              a[h][s][0] = _mm256_fmadd_ps(wr, lo, a[h][s][0]);
              a[h][s][1] = _mm256_fmadd_ps(wr, hi, a[h][s][1]);
            }
          }
        }
#pragma GCC unroll 4
        for (int s = 0; s < SL; ++s)
#pragma GCC unroll 4
          for (int h = 0; h < H; ++h) {
            float* ah = acc + static_cast<int64_t>(g0 + h) * hd + 16 * (k0 + s);
            _mm256_storeu_ps(ah, a[h][s][0]);
            _mm256_storeu_ps(ah + 8, a[h][s][1]);
          }
      }
    }
  }
  if (kQuant)
    for (int g = 0; g < group; ++g)
      for (int c = 0; c < ng; ++c)
        msum[g * ng + c] += hsum8(_mm256_loadu_ps(msv + (g * ng + c) * kRows));
}

template <class L, bool kQuant>
void v_accumulate_blocked(const quant::KvView& v, const int64_t* rows, int n, const float* p, int stride,
                          int group, float* acc, float* msum, float* tmp) {
  const int slices = v.head_dim / 16;
  if (group % 4 == 0)
    return v_accumulate_hxs<L, kQuant, 4, 1>(v, rows, n, p, stride, group, acc, msum, tmp);
  if (group % 2 == 0) {
    if (slices % 2 == 0)
      return v_accumulate_hxs<L, kQuant, 2, 2>(v, rows, n, p, stride, group, acc, msum, tmp);
    return v_accumulate_hxs<L, kQuant, 2, 1>(v, rows, n, p, stride, group, acc, msum, tmp);
  }
  if (slices % 4 == 0)
    return v_accumulate_hxs<L, kQuant, 1, 4>(v, rows, n, p, stride, group, acc, msum, tmp);
  if (slices % 2 == 0)
    return v_accumulate_hxs<L, kQuant, 1, 2>(v, rows, n, p, stride, group, acc, msum, tmp);
  return v_accumulate_hxs<L, kQuant, 1, 1>(v, rows, n, p, stride, group, acc, msum, tmp);
}

}  // namespace

KScoresFn blocked_k_scores(quant::KvStorage s) {
  switch (s) {
    case quant::KvStorage::F32:
      return k_scores_blocked<LoadF32, false>;
    case quant::KvStorage::F16:
      return k_scores_blocked<LoadF16, false>;
    case quant::KvStorage::Int8:
      return k_scores_blocked<LoadI8, true>;
    case quant::KvStorage::Int4:
      return k_scores_blocked<LoadI4, true>;
  }
  return k_scores_blocked<LoadF32, false>;
}

VAccumulateFn blocked_v_accumulate(quant::KvStorage s) {
  switch (s) {
    case quant::KvStorage::F32:
      return v_accumulate_blocked<LoadF32, false>;
    case quant::KvStorage::F16:
      return v_accumulate_blocked<LoadF16, false>;
    case quant::KvStorage::Int8:
      return v_accumulate_blocked<LoadI8, true>;
    case quant::KvStorage::Int4:
      return v_accumulate_blocked<LoadI4, true>;
  }
  return v_accumulate_blocked<LoadF32, false>;
}

}  // namespace zinc::runtime::detail::avx2
