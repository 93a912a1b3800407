// The AVX2 + FMA + F16C inner loops of cpu_attention (chosen at run time; every function
// here carries the target attribute, so the rest of the program stays baseline x86-64).
//
// Rows are processed four at a time. K: for each quant group, eight vector accumulators
// (four rows x low/high half of a 16-element block) take q . codes, one horizontal
// reduction turns them into four dots, and scale * dot + min * sum(q) folds the group in
// (f32 / f16: one group, no scale). V: acc += (p * scale) * codes for the four rows, with
// p * min summed per group on the side. Codes are widened in registers (f16: vcvtph2ps;
// int8: vpmovzxbd + vcvtdq2ps; int4: one vpmovzxbd gives eight bytes in 32-bit lanes, then
// AND 15 / shift 4 give the even and odd elements). With grouped-query attention (several
// query heads per kv head) the four rows are first widened once into a 4 x hd scratch in
// L1 and every head reads them from there. Needs hd % 16 == 0 and G % 16 == 0.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "offload/cpu_attention_kernels.hpp"

#define ZINC_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace zinc::offload::detail {
namespace {

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
    lo = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c))));
    hi = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c + 8))));
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

// [sum(a0), sum(a1), sum(a2), sum(a3)]
ZINC_AVX2 inline __m128 reduce4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
  const __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

// The four rows of a block: row pointers (a short block repeats its last row; callers
// drop those results and give them zero weight) and, quantized, their params as floats:
// sc[c * 4 + r], mn[c * 4 + r] for group c.
struct Block {
  const uint8_t* rows[4];
  int m = 0;  // real rows
};

ZINC_AVX2 inline void load_block(const KvView& view, const int64_t* rows, int base, int n,
                                 bool quant, Block* blk, float* sc, float* mn) {
  blk->m = std::min(4, n - base);
  const int ng = quant ? view.groups() : 0;
  for (int r = 0; r < 4; ++r) {
    const int64_t row = rows[base + std::min(r, blk->m - 1)];
    blk->rows[r] = view.row_codes(row);
    if (quant) {
      const uint16_t* p = view.row_params(row);
      for (int c = 0; c < ng; ++c) {
        sc[c * 4 + r] = _cvtsh_ss(p[2 * c]);
        mn[c * 4 + r] = _cvtsh_ss(p[2 * c + 1]);
      }
    }
  }
}

// Widens the block's rows into f32 scratch (4 x hd, kernel order), for reuse by many heads.
template <class L>
ZINC_AVX2 inline void stage_block(Block* blk, int hd, float* scratch) {
  for (int r = 0; r < 4; ++r) {
    float* dst = scratch + r * hd;
    for (int k = 0; k < hd / 16; ++k) {
      __m256 lo, hi;
      L::load(blk->rows[r], k, lo, hi);
      _mm256_storeu_ps(dst + 16 * k, lo);
      _mm256_storeu_ps(dst + 16 * k + 8, hi);
    }
    blk->rows[r] = reinterpret_cast<const uint8_t*>(dst);
  }
}

// Four dots q . k'(row r) of one query head; gsz = quant group (hd when not quantized).
template <class L, bool kQuant>
ZINC_AVX2 inline __m128 k_dot4(const Block& blk, int hd, int gsz, const float* q,
                               const float* qsum, const float* sc, const float* mn) {
  __m128 tot = _mm_setzero_ps();
  const int kpg = gsz / 16;
  for (int c = 0; c < hd / gsz; ++c) {
    __m256 a0l = _mm256_setzero_ps(), a0h = a0l, a1l = a0l, a1h = a0l;
    __m256 a2l = a0l, a2h = a0l, a3l = a0l, a3h = a0l;
    for (int k = c * kpg; k < (c + 1) * kpg; ++k) {
      const __m256 ql = _mm256_loadu_ps(q + 16 * k), qh = _mm256_loadu_ps(q + 16 * k + 8);
      __m256 lo, hi;
      L::load(blk.rows[0], k, lo, hi);
      a0l = _mm256_fmadd_ps(lo, ql, a0l);
      a0h = _mm256_fmadd_ps(hi, qh, a0h);
      L::load(blk.rows[1], k, lo, hi);
      a1l = _mm256_fmadd_ps(lo, ql, a1l);
      a1h = _mm256_fmadd_ps(hi, qh, a1h);
      L::load(blk.rows[2], k, lo, hi);
      a2l = _mm256_fmadd_ps(lo, ql, a2l);
      a2h = _mm256_fmadd_ps(hi, qh, a2h);
      L::load(blk.rows[3], k, lo, hi);
      a3l = _mm256_fmadd_ps(lo, ql, a3l);
      a3h = _mm256_fmadd_ps(hi, qh, a3h);
    }
    const __m128 d4 = reduce4(_mm256_add_ps(a0l, a0h), _mm256_add_ps(a1l, a1h),
                              _mm256_add_ps(a2l, a2h), _mm256_add_ps(a3l, a3h));
    if (kQuant) {
      tot = _mm_fmadd_ps(d4, _mm_loadu_ps(sc + 4 * c), tot);
      tot = _mm_fmadd_ps(_mm_loadu_ps(mn + 4 * c), _mm_set1_ps(qsum[c]), tot);
    } else {
      tot = d4;  // a single group
    }
  }
  return tot;
}

template <class L, bool kQuant>
ZINC_AVX2 void k_scores_avx2(const KvView& k, const int64_t* rows, int n, const float* q,
                             const float* qsum, int group, float* scores, int stride, float* tmp) {
  const int hd = k.head_dim, gsz = kQuant ? k.group : hd, ng = hd / gsz;
  constexpr bool kWide = std::is_same<L, LoadF32>::value;
  float* scratch = tmp;
  float* sc = tmp + 4 * hd;
  float* mn = sc + 4 * ng;
  for (int base = 0; base < n; base += 4) {
    Block blk;
    load_block(k, rows, base, n, kQuant, &blk, sc, mn);
    const bool staged = !kWide && group > 1;
    if (staged) stage_block<L>(&blk, hd, scratch);
    for (int g = 0; g < group; ++g) {
      const float* qg = q + static_cast<int64_t>(g) * hd;
      const float* qs = qsum + static_cast<int64_t>(g) * ng;
      const __m128 d = staged ? k_dot4<LoadF32, kQuant>(blk, hd, gsz, qg, qs, sc, mn)
                              : k_dot4<L, kQuant>(blk, hd, gsz, qg, qs, sc, mn);
      float d4[4];
      _mm_storeu_ps(d4, d);
      float* out = scores + static_cast<int64_t>(g) * stride + base;
      for (int r = 0; r < blk.m; ++r) out[r] = d4[r];
    }
  }
}

// acc += sum_r w[c * 4 + r] * row_r (group c's elements), for the four rows of a block.
template <class L>
ZINC_AVX2 inline void v_axpy4(const Block& blk, int hd, int gsz, const float* w, float* acc) {
  const int kpg = gsz / 16;
  for (int c = 0; c < hd / gsz; ++c) {
    const __m256 w0 = _mm256_broadcast_ss(w + 4 * c), w1 = _mm256_broadcast_ss(w + 4 * c + 1);
    const __m256 w2 = _mm256_broadcast_ss(w + 4 * c + 2), w3 = _mm256_broadcast_ss(w + 4 * c + 3);
    for (int k = c * kpg; k < (c + 1) * kpg; ++k) {
      __m256 al = _mm256_loadu_ps(acc + 16 * k), ah = _mm256_loadu_ps(acc + 16 * k + 8);
      __m256 lo, hi;
      L::load(blk.rows[0], k, lo, hi);
      al = _mm256_fmadd_ps(w0, lo, al);
      ah = _mm256_fmadd_ps(w0, hi, ah);
      L::load(blk.rows[1], k, lo, hi);
      al = _mm256_fmadd_ps(w1, lo, al);
      ah = _mm256_fmadd_ps(w1, hi, ah);
      L::load(blk.rows[2], k, lo, hi);
      al = _mm256_fmadd_ps(w2, lo, al);
      ah = _mm256_fmadd_ps(w2, hi, ah);
      L::load(blk.rows[3], k, lo, hi);
      al = _mm256_fmadd_ps(w3, lo, al);
      ah = _mm256_fmadd_ps(w3, hi, ah);
      _mm256_storeu_ps(acc + 16 * k, al);
      _mm256_storeu_ps(acc + 16 * k + 8, ah);
    }
  }
}

template <class L, bool kQuant>
ZINC_AVX2 void v_accumulate_avx2(const KvView& v, const int64_t* rows, int n, const float* p,
                                 int stride, int group, float* acc, float* msum, float* tmp) {
  const int hd = v.head_dim, gsz = kQuant ? v.group : hd, ng = hd / gsz;
  constexpr bool kWide = std::is_same<L, LoadF32>::value;
  float* scratch = tmp;
  float* sc = tmp + 4 * hd;
  float* mn = sc + 4 * ng;
  float* w = mn + 4 * ng;
  for (int base = 0; base < n; base += 4) {
    Block blk;
    load_block(v, rows, base, n, kQuant, &blk, sc, mn);
    const bool staged = !kWide && group > 1;
    if (staged) stage_block<L>(&blk, hd, scratch);
    for (int g = 0; g < group; ++g) {
      const float* pg = p + static_cast<int64_t>(g) * stride + base;
      float p4[4];
      for (int r = 0; r < 4; ++r) p4[r] = r < blk.m ? pg[r] : 0.0f;
      for (int c = 0; c < ng; ++c) {
        for (int r = 0; r < 4; ++r) w[4 * c + r] = kQuant ? p4[r] * sc[4 * c + r] : p4[r];
        if (kQuant) {
          msum[static_cast<int64_t>(g) * ng + c] +=
              p4[0] * mn[4 * c] + p4[1] * mn[4 * c + 1] + p4[2] * mn[4 * c + 2] + p4[3] * mn[4 * c + 3];
        }
      }
      float* ag = acc + static_cast<int64_t>(g) * hd;
      if (staged) {
        v_axpy4<LoadF32>(blk, hd, gsz, w, ag);
      } else {
        v_axpy4<L>(blk, hd, gsz, w, ag);
      }
    }
  }
}

// exp for x <= 0 (Cephes' expf polynomial, about 1 ulp); x < -87 gives 0 (exp(-87) is
// 1.6e-38: nothing next to the softmax's largest term, which is 1).
ZINC_AVX2 inline __m256 exp_nonpositive(__m256 x) {
  const __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(-87.0f), _CMP_LT_OQ);
  // operands in this order so that a NaN x stays NaN (min/max return the second on NaN)
  x = _mm256_max_ps(_mm256_set1_ps(-87.0f), _mm256_min_ps(_mm256_set1_ps(0.0f), x));
  const __m256 fx = _mm256_floor_ps(
      _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
  y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
  return _mm256_andnot_ps(tiny, y);
}

ZINC_AVX2 float exp_sum_avx2(float* x, int n, float shift) {
  const __m256 sh = _mm256_set1_ps(shift);
  __m256 sum = _mm256_setzero_ps();
  int t = 0;
  for (; t + 8 <= n; t += 8) {
    const __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(x + t), sh));
    _mm256_storeu_ps(x + t, e);
    sum = _mm256_add_ps(sum, e);
  }
  if (t < n) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n - t), lane);
    __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_maskload_ps(x + t, mask), sh));
    e = _mm256_and_ps(e, _mm256_castsi256_ps(mask));
    _mm256_maskstore_ps(x + t, mask, e);
    sum = _mm256_add_ps(sum, e);
  }
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

template <class L, bool kQuant>
AttentionKernels make_kernels() {
  AttentionKernels k;
  k.k_scores = k_scores_avx2<L, kQuant>;
  k.v_accumulate = v_accumulate_avx2<L, kQuant>;
  k.exp_sum = exp_sum_avx2;
  k.split_nibbles = std::is_same<L, LoadI4>::value;
  k.isa = "avx2";
  return k;
}

}  // namespace

bool cpu_has_avx2_fma_f16c() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                          __builtin_cpu_supports("f16c");
  return yes;
}

AttentionKernels avx2_attention_kernels(KvStorage s) {
  switch (s) {
    case KvStorage::F32:
      return make_kernels<LoadF32, false>();
    case KvStorage::F16:
      return make_kernels<LoadF16, false>();
    case KvStorage::Int8:
      return make_kernels<LoadI8, true>();
    case KvStorage::Int4:
      return make_kernels<LoadI4, true>();
  }
  return make_kernels<LoadF32, false>();
}

}  // namespace zinc::offload::detail
