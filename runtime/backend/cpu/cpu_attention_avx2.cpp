// The AVX2 + FMA + F16C inner loops of cpu_attention that are not register-blocked:
// f32 / f16 rows with one query head per kv head (MHA), streamed row after row, the
// softmax, and the choice of loops per storage and query group. Everything else runs the
// blocked loops of cpu_attention_avx2_blocked.cpp; the shared pieces (loaders, blocks,
// params, prefetch) are in cpu_attention_avx2.hpp. Needs hd % 16 == 0 and, quantized,
// G % 16 == 0.
//
// f32 and f16 rows are long (512 / 256 bytes at hd 128) and, with one head, bound by
// memory: the hardware prefetchers follow a sequential stream far better than eight
// interleaved ones (measured on one core of the development VM: 14.3 GB/s sequential,
// 8.7 GB/s over 8 interleaved 256-byte rows), so K and V read them row after row, with a
// software prefetch about 2 KiB ahead, f16 two rows at a time (5-10% faster on one core),
// f32 one (two at a time measured 30% slower).
#include "runtime/backend/cpu/cpu_attention_avx2.hpp"
#include "runtime/backend/cpu/cpu_attention_exp.hpp"

#include <cmath>
#include <type_traits>

#include "quant/dtype.hpp"

namespace zinc::runtime::detail {
namespace {

using namespace avx2;

template <class L>
constexpr bool kPairs() {
  return std::is_same<L, LoadF16>::value;
}

// q . row for the block's kRows rows, one head, one group (f32 / f16), rows in order: one
// accumulator per row, eight independent FMA chains.
template <class L>
ZINC_AVX2 inline __m256 k_dot8_rows(const Block& blk, int hd, const float* q) {
  __m256 a[kRows];
#pragma GCC unroll 8
  for (int r = 0; r < kRows; ++r) a[r] = _mm256_setzero_ps();
  if (kPairs<L>()) {  // two rows at a time, each q slice loaded once
#pragma GCC unroll 4
    for (int r = 0; r < kRows; r += 2) {
      for (int k = 0; k < hd / 16; ++k) {
        const __m256 ql = _mm256_loadu_ps(q + 16 * k), qh = _mm256_loadu_ps(q + 16 * k + 8);
        __m256 lo, hi;
        L::load(blk.rows[r], k, lo, hi);
        a[r] = _mm256_fmadd_ps(hi, qh, _mm256_fmadd_ps(lo, ql, a[r]));
        L::load(blk.rows[r + 1], k, lo, hi);
        a[r + 1] = _mm256_fmadd_ps(hi, qh, _mm256_fmadd_ps(lo, ql, a[r + 1]));
      }
    }
  } else {
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) {
      for (int k = 0; k < hd / 16; ++k) {
        __m256 lo, hi;
        L::load(blk.rows[r], k, lo, hi);
        a[r] = _mm256_fmadd_ps(hi, _mm256_loadu_ps(q + 16 * k + 8),
                               _mm256_fmadd_ps(lo, _mm256_loadu_ps(q + 16 * k), a[r]));
      }
    }
  }
  return reduce8(a);
}

template <class L>
ZINC_AVX2 void k_scores_rows(const quant::KvView& k, const int64_t* rows, int n, const float* q,
                             const float*, int, float* scores, int, float*) {
  const int hd = k.head_dim;
  const Geometry geo(k, kRows);
  for (int base = 0; base < n; base += kRows) {
    Block blk;
    prefetch_ahead(geo, rows, base, n);
    load_block(geo, rows, base, n, false, &blk, nullptr, nullptr);
    _mm256_storeu_ps(scores + base, k_dot8_rows<L>(blk, hd, q));  // n rounded up to 8
  }
}

// acc += sum_r w[r] * row_r, rows in order.
template <class L>
ZINC_AVX2 inline void v_axpy8_rows(const Block& blk, int hd, const float* w, float* acc) {
  if (kPairs<L>()) {  // two rows at a time: half the accumulator traffic
    for (int r = 0; r < kRows; r += 2) {
      const __m256 w0 = _mm256_broadcast_ss(w + r), w1 = _mm256_broadcast_ss(w + r + 1);
      for (int k = 0; k < hd / 16; ++k) {
        __m256 lo0, hi0, lo1, hi1;
        L::load(blk.rows[r], k, lo0, hi0);
        L::load(blk.rows[r + 1], k, lo1, hi1);
        const __m256 al = _mm256_fmadd_ps(w0, lo0, _mm256_loadu_ps(acc + 16 * k));
        const __m256 ah = _mm256_fmadd_ps(w0, hi0, _mm256_loadu_ps(acc + 16 * k + 8));
        _mm256_storeu_ps(acc + 16 * k, _mm256_fmadd_ps(w1, lo1, al));
        _mm256_storeu_ps(acc + 16 * k + 8, _mm256_fmadd_ps(w1, hi1, ah));
      }
    }
    return;
  }
  for (int r = 0; r < kRows; ++r) {
    const __m256 wr = _mm256_broadcast_ss(w + r);
    for (int k = 0; k < hd / 16; ++k) {
      __m256 lo, hi;
      L::load(blk.rows[r], k, lo, hi);
      _mm256_storeu_ps(acc + 16 * k, _mm256_fmadd_ps(wr, lo, _mm256_loadu_ps(acc + 16 * k)));
      _mm256_storeu_ps(acc + 16 * k + 8,
                       _mm256_fmadd_ps(wr, hi, _mm256_loadu_ps(acc + 16 * k + 8)));
    }
  }
}

template <class L>
ZINC_AVX2 void v_accumulate_rows(const quant::KvView& v, const int64_t* rows, int n, const float* p, int,
                                 int, float* acc, float*, float*) {
  const int hd = v.head_dim;
  const Geometry geo(v, kRows);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  alignas(32) float w[kRows];
  for (int base = 0; base < n; base += kRows) {
    Block blk;
    prefetch_ahead(geo, rows, base, n);
    load_block(geo, rows, base, n, false, &blk, nullptr, nullptr);
    const __m256i real = _mm256_cmpgt_epi32(_mm256_set1_epi32(blk.m), lane);
    _mm256_store_ps(w, _mm256_maskload_ps(p + base, real));
    v_axpy8_rows<L>(blk, hd, w, acc);
  }
}

// One query head per kv head, f32 / f16: rows in order; otherwise the blocked loops.
template <class L>
void k_scores_avx2(const quant::KvView& k, const int64_t* rows, int n, const float* q, const float* qsum,
                   int group, float* scores, int stride, float* tmp) {
  if (group == 1) return k_scores_rows<L>(k, rows, n, q, qsum, group, scores, stride, tmp);
  blocked_k_scores(k.storage)(k, rows, n, q, qsum, group, scores, stride, tmp);
}

template <class L>
void v_accumulate_avx2(const quant::KvView& v, const int64_t* rows, int n, const float* p, int stride,
                       int group, float* acc, float* msum, float* tmp) {
  if (group == 1) return v_accumulate_rows<L>(v, rows, n, p, stride, group, acc, msum, tmp);
  blocked_v_accumulate(v.storage)(v, rows, n, p, stride, group, acc, msum, tmp);
}

// exp for x <= 0 (cpu_attention_exp.hpp).
ZINC_AVX2 inline __m256 exp_nonpositive(__m256 x) {
  using namespace softmax_exp;
  const __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(kMin), _CMP_LT_OQ);
  // operands in this order so that a NaN x stays NaN (min/max return the second on NaN)
  x = _mm256_max_ps(_mm256_set1_ps(kMin), _mm256_min_ps(_mm256_set1_ps(0.0f), x));
  const __m256 fx =
      _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(kLog2e), _mm256_set1_ps(0.5f)));
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(kLn2Hi), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(kLn2Lo), x);
  __m256 y = _mm256_set1_ps(kP[0]);
  for (int i = 1; i < 6; ++i) y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(kP[i]));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
  const __m256i e =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
  y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
  return _mm256_andnot_ps(tiny, y);
}

// Lanes [0, n - t) of a tail vector.
ZINC_AVX2 inline __m256i tail_mask(int left) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(left), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

ZINC_AVX2 float softmax_avx2(float* x, const float* pos, int n, float scale, float slope,
                             float* max_out) {
  const __m256 vs = _mm256_set1_ps(scale), vl = _mm256_set1_ps(slope);
  const bool alibi = slope != 0.0f;
  __m256 mx = _mm256_set1_ps(-INFINITY);
  int t = 0;
  for (; t + 8 <= n; t += 8) {
    __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x + t), vs);
    if (alibi) v = _mm256_fmadd_ps(vl, _mm256_loadu_ps(pos + t), v);
    _mm256_storeu_ps(x + t, v);
    mx = _mm256_max_ps(mx, v);
  }
  const int tail = n - t;
  const __m256i m = tail_mask(tail);
  if (tail > 0) {
    __m256 v = _mm256_mul_ps(_mm256_maskload_ps(x + t, m), vs);
    if (alibi) v = _mm256_fmadd_ps(vl, _mm256_maskload_ps(pos + t, m), v);
    _mm256_maskstore_ps(x + t, m, v);
    mx = _mm256_max_ps(mx, _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), v, _mm256_castsi256_ps(m)));
  }
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_shuffle_ps(m4, m4, 1));
  const float shift = _mm_cvtss_f32(m4);
  *max_out = shift;

  const __m256 sh = _mm256_set1_ps(shift);
  __m256 sum = _mm256_setzero_ps();
  for (t = 0; t + 8 <= n; t += 8) {
    const __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(x + t), sh));
    _mm256_storeu_ps(x + t, e);
    sum = _mm256_add_ps(sum, e);
  }
  if (tail > 0) {
    __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_maskload_ps(x + t, m), sh));
    e = _mm256_and_ps(e, _mm256_castsi256_ps(m));
    _mm256_maskstore_ps(x + t, m, e);
    sum = _mm256_add_ps(sum, e);
  }
  return hsum8(sum);
}

AttentionKernels make_kernels(KScoresFn k_scores, VAccumulateFn v_accumulate, bool split) {
  AttentionKernels k;
  k.k_scores = k_scores;
  k.v_accumulate = v_accumulate;
  k.softmax = softmax_avx2;
  k.nibble_block = split ? 16 : 0;
  k.uses_qsum = true;
  k.isa = "avx2";
  return k;
}

}  // namespace

bool cpu_has_avx2_fma_f16c() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                          quant::cpu_has_f16c();  // clang 14's builtin has no "f16c"
  return yes;
}

AttentionKernels avx2_attention_kernels(quant::KvStorage s) {
  switch (s) {
    case quant::KvStorage::F32:
      return make_kernels(k_scores_avx2<LoadF32>, v_accumulate_avx2<LoadF32>, false);
    case quant::KvStorage::F16:
      return make_kernels(k_scores_avx2<LoadF16>, v_accumulate_avx2<LoadF16>, false);
    case quant::KvStorage::Int8:
    case quant::KvStorage::Int4:  // int4: kernel order (nibble_block 16), see LoadI4
      return make_kernels(blocked_k_scores(s), blocked_v_accumulate(s), s == quant::KvStorage::Int4);
  }
  return make_kernels(k_scores_avx2<LoadF32>, v_accumulate_avx2<LoadF32>, false);
}

}  // namespace zinc::runtime::detail
