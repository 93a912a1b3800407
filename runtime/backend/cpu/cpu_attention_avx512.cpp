// The AVX-512 inner loops of cpu_attention: K scores in fp32 for every storage, the CPU
// checks and the kernel sets (the weighted values are in cpu_attention_avx512_v.cpp, the
// integer K scores of int8 / int4 in cpu_attention_avx512_vnni.cpp, the shared loaders in
// cpu_attention_avx512.hpp). Needs hd % 32 == 0 and, quantized, G % 32 == 0.
//
// K: a block of 16 rows is taken R rows x H query heads at a time (R * H = 16: 16x1 for
// MHA, 8x2, 4x4, 2x8, 1x16 for groups of 2, 4, 8, 16 or more), with one accumulator per
// (row, head): each 32-element slice of a row is loaded and widened once into registers
// and feeds all H heads, and one reduce16 per quant group turns the sixteen accumulators
// into the sixteen dots, folding in scale * dot + min * sum(q) as one vector (the AVX2
// loops of cpu_attention_avx2_blocked.cpp, twice as wide). With one head, each row is read
// from start to end before the next (sequential addresses for the prefetchers).
#include "runtime/backend/cpu/cpu_attention_avx512.hpp"

#include <cmath>

#include "runtime/backend/cpu/cpu_attention_exp.hpp"

namespace zinc::runtime::detail {
namespace {

using namespace avx512;

// Lane i = x[i % R] (x: R consecutive rows' values).
template <int R>
ZINC_AVX512 inline __m512 bcast_rows(const float* x) {
  if constexpr (R == 16) {
    return _mm512_loadu_ps(x);
  } else if constexpr (R == 8) {
    return _mm512_broadcast_f32x8(_mm256_loadu_ps(x));
  } else if constexpr (R == 4) {
    return _mm512_broadcast_f32x4(_mm_loadu_ps(x));
  } else if constexpr (R == 2) {
    return _mm512_castpd_ps(_mm512_set1_pd(*reinterpret_cast<const double*>(x)));
  } else {
    return _mm512_set1_ps(*x);
  }
}

// Lane h * R + r of d -> out[h * stride + r].
template <int R>
ZINC_AVX512 inline void store_dots(__m512 d, float* out, int stride) {
  if constexpr (R == 16) {
    _mm512_storeu_ps(out, d);
  } else if constexpr (R == 8) {
    _mm256_storeu_ps(out, _mm512_castps512_ps256(d));
    _mm256_storeu_ps(out + stride, _mm512_extractf32x8_ps(d, 1));
  } else if constexpr (R == 4) {
    _mm_storeu_ps(out, _mm512_castps512_ps128(d));
    _mm_storeu_ps(out + stride, _mm512_extractf32x4_ps(d, 1));
    _mm_storeu_ps(out + 2 * stride, _mm512_extractf32x4_ps(d, 2));
    _mm_storeu_ps(out + 3 * stride, _mm512_extractf32x4_ps(d, 3));
  } else {
    alignas(64) float d16[kRows];
    _mm512_store_ps(d16, d);
    for (int h = 0; h < kRows / R; ++h)
      for (int r = 0; r < R; ++r) out[h * stride + r] = d16[h * R + r];
  }
}

// Slice j of one row into the accumulators a[h * R] of the H heads q[h * hd].
template <class L, int R, int H>
ZINC_AVX512 inline __attribute__((always_inline)) void k_slice(const uint8_t* row, int j,
                                                               const float* q, int hd, __m512* a) {
  __m512 lo, hi;
  L::load(row, j, lo, hi);
#pragma GCC unroll 16
  for (int h = 0; h < H; ++h) {
    const float* qh = q + h * hd + 32 * j;
    a[h * R] = _mm512_fmadd_ps(hi, _mm512_loadu_ps(qh + 16),
                               _mm512_fmadd_ps(lo, _mm512_loadu_ps(qh), a[h * R]));
  }
}

// scores[g * stride + t] for t < n rounded up to 16 (the rows past n repeat the last one).
template <class L, bool kQuant, int R>
ZINC_AVX512 void k_scores_rxh(const quant::KvView& k, const int64_t* rows, int n, const float* q,
                              const float* qsum, int group, float* scores, int stride, float* tmp) {
  constexpr int H = kRows / R;
  const int hd = k.head_dim, gsz = kQuant ? k.group : hd, ng = hd / gsz, bpg = gsz / 32;
  float* sc = align64(tmp);
  float* mn = sc + kRows * ng;
  float* qsv = mn + kRows * ng;  // [group / H][ng][16]: lane i = qsum of head g0 + i / R
  if (kQuant)
    for (int g0 = 0; g0 < group; g0 += H)
      for (int c = 0; c < ng; ++c)
        for (int i = 0; i < kRows; ++i)
          qsv[((g0 / H) * ng + c) * kRows + i] = qsum[(g0 + i / R) * ng + c];
  const Geometry geo(k, kRows);
  for (int base = 0; base < n; base += kRows) {
    Block blk;
    rows::block_rows(geo, rows, base, n, &blk);
    if (kQuant) load_params(geo, blk, sc, mn);
    for (int g0 = 0; g0 < group; g0 += H) {
      const float* qg = q + static_cast<int64_t>(g0) * hd;
      for (int r0 = 0; r0 < blk.m; r0 += R) {
        __m512 tot = _mm512_setzero_ps();
        for (int c = 0; c < ng; ++c) {
          __m512 a[kRows];
#pragma GCC unroll 16
          for (int i = 0; i < kRows; ++i) a[i] = _mm512_setzero_ps();
          if constexpr (H == 1) {  // one row after another
#pragma GCC unroll 16
            for (int r = 0; r < R; ++r)
              for (int j = c * bpg; j < (c + 1) * bpg; ++j)
                k_slice<L, R, H>(blk.rows[r0 + r], j, qg, hd, a + r);
          } else {  // each slice of R rows feeds H heads
            for (int j = c * bpg; j < (c + 1) * bpg; ++j)
#pragma GCC unroll 16
              for (int r = 0; r < R; ++r) k_slice<L, R, H>(blk.rows[r0 + r], j, qg, hd, a + r);
          }
          const __m512 d = reduce16(a);
          if (kQuant) {
            tot = _mm512_fmadd_ps(d, bcast_rows<R>(sc + kRows * c + r0), tot);
            tot = _mm512_fmadd_ps(bcast_rows<R>(mn + kRows * c + r0),
                                  _mm512_loadu_ps(qsv + ((g0 / H) * ng + c) * kRows), tot);
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
void k_scores(const quant::KvView& k, const int64_t* rows, int n, const float* q, const float* qsum,
              int group, float* scores, int stride, float* tmp) {
  if (group % 16 == 0)
    return k_scores_rxh<L, kQuant, 1>(k, rows, n, q, qsum, group, scores, stride, tmp);
  if (group % 8 == 0)
    return k_scores_rxh<L, kQuant, 2>(k, rows, n, q, qsum, group, scores, stride, tmp);
  if (group % 4 == 0)
    return k_scores_rxh<L, kQuant, 4>(k, rows, n, q, qsum, group, scores, stride, tmp);
  if (group % 2 == 0)
    return k_scores_rxh<L, kQuant, 8>(k, rows, n, q, qsum, group, scores, stride, tmp);
  return k_scores_rxh<L, kQuant, 16>(k, rows, n, q, qsum, group, scores, stride, tmp);
}

// exp for x <= 0 (cpu_attention_exp.hpp; the same operations as the AVX2 loops').
ZINC_AVX512 inline __m512 exp_nonpositive(__m512 x) {
  using namespace softmax_exp;
  const __mmask16 tiny = _mm512_cmp_ps_mask(x, _mm512_set1_ps(kMin), _CMP_LT_OQ);
  // operands in this order so that a NaN x stays NaN (min/max return the second on NaN)
  x = _mm512_max_ps(_mm512_set1_ps(kMin), _mm512_min_ps(_mm512_setzero_ps(), x));
  const __m512 fx =
      _mm512_roundscale_ps(_mm512_fmadd_ps(x, _mm512_set1_ps(kLog2e), _mm512_set1_ps(0.5f)),
                           _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(kLn2Hi), x);
  x = _mm512_fnmadd_ps(fx, _mm512_set1_ps(kLn2Lo), x);
  __m512 y = _mm512_set1_ps(kP[0]);
  for (int i = 1; i < 6; ++i) y = _mm512_fmadd_ps(y, x, _mm512_set1_ps(kP[i]));
  y = _mm512_fmadd_ps(y, _mm512_mul_ps(x, x), _mm512_add_ps(x, _mm512_set1_ps(1.0f)));
  const __m512i e =
      _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvttps_epi32(fx), _mm512_set1_epi32(127)), 23);
  return _mm512_maskz_mul_ps(static_cast<__mmask16>(~tiny), y, _mm512_castsi512_ps(e));
}

// The softmax (SoftmaxFn) 16 lanes at a time, the tail under a mask.
ZINC_AVX512 float softmax(float* x, const float* pos, int n, float scale, float slope,
                          float* max_out) {
  const __m512 vs = _mm512_set1_ps(scale), vl = _mm512_set1_ps(slope);
  const bool alibi = slope != 0.0f;
  auto lanes = [n](int t) {
    return static_cast<__mmask16>(n - t >= 16 ? 0xFFFF : (1u << (n - t)) - 1);
  };
  __m512 mx = _mm512_set1_ps(-INFINITY);
  for (int t = 0; t < n; t += 16) {
    const __mmask16 m = lanes(t);
    __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + t), vs);
    if (alibi) v = _mm512_fmadd_ps(vl, _mm512_maskz_loadu_ps(m, pos + t), v);
    _mm512_mask_storeu_ps(x + t, m, v);
    mx = _mm512_mask_max_ps(mx, m, mx, v);
  }
  const float shift = _mm512_reduce_max_ps(mx);
  *max_out = shift;
  const __m512 sh = _mm512_set1_ps(shift);
  __m512 sum = _mm512_setzero_ps();
  for (int t = 0; t < n; t += 16) {
    const __mmask16 m = lanes(t);
    const __m512 e =
        _mm512_maskz_mov_ps(m, exp_nonpositive(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + t), sh)));
    _mm512_mask_storeu_ps(x + t, m, e);
    sum = _mm512_add_ps(sum, e);
  }
  return _mm512_reduce_add_ps(sum);
}

template <class L, bool kQuant>
AttentionKernels make_kernels(quant::KvStorage s) {
  AttentionKernels k;
  k.k_scores = k_scores<L, kQuant>;
  k.v_accumulate = v_accumulate_fn(s);
  k.softmax = softmax;
  k.nibble_block = L::kNibbleBlock;
  k.uses_qsum = true;
  k.isa = "avx512";
  return k;
}

}  // namespace

bool cpu_has_avx512() {
  static const bool yes = cpu_has_avx2_fma_f16c() && __builtin_cpu_supports("avx512f") &&
                          __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  return yes;
}

bool cpu_has_avx512_vnni() {
  static const bool yes = cpu_has_avx512() && __builtin_cpu_supports("avx512vnni");
  return yes;
}

AttentionKernels avx512_attention_kernels(quant::KvStorage s) {
  switch (s) {
    case quant::KvStorage::F32:
      return make_kernels<LoadF32, false>(s);
    case quant::KvStorage::F16:
      return make_kernels<LoadF16, false>(s);
    case quant::KvStorage::Int8:
      return make_kernels<LoadI8, true>(s);
    case quant::KvStorage::Int4:  // int4: kernel order (nibble_block 32), see LoadI4
      return make_kernels<LoadI4, true>(s);
  }
  return make_kernels<LoadF32, false>(s);
}

}  // namespace zinc::runtime::detail
