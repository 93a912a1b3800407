// The AVX2 + FMA + F16C inner loops of cpu_attention (chosen at run time; every function
// here carries the target attribute, so the rest of the program stays baseline x86-64).
//
// Rows are processed in blocks of eight. K: per quant group, one vector accumulator per
// row takes q . codes, one horizontal reduction turns the eight into a vector of dots, and
// scale * dot + min * sum(q) folds the group in (f32 / f16: one group, no scale). V:
// acc += (p * scale) * codes over the eight rows, with p * min summed per group on the side.
// Codes are widened in registers (f16: vcvtph2ps; int8: vpmovzxbd + vcvtdq2ps; int4: one
// vpmovzxbd puts eight bytes in 32-bit lanes, then AND 15 / shift 4 give the even and odd
// elements). With grouped-query attention (several query heads per kv head) a block is
// first widened once into an 8 x hd f32 scratch in L1 and every head reads it from there.
// Rows are prefetched about 2 KiB ahead. Needs hd % 16 == 0 and, quantized, G % 16 == 0.
//
// Measured on the 2-core development VM (AMD EPYC, Zen 3), one core, hd 128, rows in
// cache: about 8-14 ns per row for K and as much for V in every storage (the VM's speed
// varies with its neighbours). So f32 / f16 rows (512 / 256 bytes) are bound by memory,
// int4 rows (72 bytes with params) by the vector ALUs (unpack, convert, FMA per element),
// and GQA by the FMAs (every query head does its own q.k and p*v over the shared rows).
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

// Long rows are streamed row after row, short ones a slice of every row at a time (k_dot8).
template <class L>
constexpr bool kRowMajor() {
  return std::is_same<L, LoadF32>::value || std::is_same<L, LoadF16>::value;
}
// In row order, f16 rows go two at a time (measured: 5-10% faster on one core); f32 rows
// (512 bytes at hd 128) one at a time (two at a time measured 30% slower on one core).
template <class L>
constexpr bool kPairs() {
  return std::is_same<L, LoadF16>::value;
}

// [sum(a[0]), ..., sum(a[7])]
ZINC_AVX2 inline __m256 reduce8(const __m256* a) {
  const __m256 h0 = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
  const __m256 h1 = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
  // h0 = [r0..r3 over elements 0-3 of each 8 | r0..r3 over elements 4-7], h1 the same for r4..r7
  return _mm256_add_ps(_mm256_permute2f128_ps(h0, h1, 0x20), _mm256_permute2f128_ps(h0, h1, 0x31));
}

// Where rows live, computed once per kernel call (no per-row function calls or divisions).
struct Geometry {
  const uint8_t* data;
  const uint16_t* params;
  int64_t code_bytes;    // per row
  int64_t param_halves;  // per row: 2 * groups
  int groups;            // quant groups per row (0: f32 / f16)
  int prefetch_rows;     // how far ahead prefetch_ahead reads, a multiple of kRows
  explicit Geometry(const KvView& v)
      : data(v.data),
        params(v.params),
        code_bytes(static_cast<int64_t>(kv_row_code_bytes(v.storage, v.head_dim))),
        param_halves(2 * static_cast<int64_t>(v.groups())),
        groups(v.groups()),
        prefetch_rows(
            std::max<int>(kRows, static_cast<int>(kPrefetchBytes / code_bytes) / kRows * kRows)) {}
  static constexpr int64_t kPrefetchBytes = 2048;
};

// One block: kRows row pointers (a short block repeats its last row; its results are
// dropped and its weights are zero) and, quantized, the rows' params transposed:
// sc[c * kRows + r], mn[c * kRows + r] for group c.
struct Block {
  const uint8_t* rows[kRows];
  int m = 0;  // real rows
};

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
  blk->m = std::min(kRows, n - base);
  const uint16_t* p[kRows];
  for (int r = 0; r < kRows; ++r) {
    const int64_t row = rows[base + std::min(r, blk->m - 1)];
    blk->rows[r] = g.data + row * g.code_bytes;
    p[r] = g.params + row * g.param_halves;
  }
  if (!quant) return;
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

// Software prefetch of the rows prefetch_rows ahead (>= one block, about 2 KiB): one core
// keeps too few misses in flight on its own (measured: f32 rows at 45% of one core's read
// bandwidth without it, before rows were also read in order).
ZINC_AVX2 inline void prefetch_ahead(const Geometry& g, const int64_t* rows, int base, int n) {
  const int end = std::min(n, base + g.prefetch_rows + kRows);
  for (int t = base + g.prefetch_rows; t < end; ++t) {
    const char* p = reinterpret_cast<const char*>(g.data + rows[t] * g.code_bytes);
    for (int64_t off = 0; off < g.code_bytes; off += 64) _mm_prefetch(p + off, _MM_HINT_T0);
    if (g.groups > 0)
      _mm_prefetch(reinterpret_cast<const char*>(g.params + rows[t] * g.param_halves), _MM_HINT_T0);
  }
}

// Widens the block's rows into f32 scratch (kRows x hd, kernel order), for reuse by the
// query heads of a GQA group.
template <class L>
ZINC_AVX2 inline void stage_block(Block* blk, int hd, float* scratch) {
  for (int r = 0; r < kRows; ++r) {
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

// The block's kRows dots q . k'(row r) for one query head; gsz = quant group (hd when not
// quantized). One accumulator per row: eight independent FMA chains. Rows of f32 and f16
// are long (256-512 bytes at hd 128), so they are read row after row (kInOrder): the
// hardware prefetchers follow a sequential stream far better than eight interleaved ones
// (measured on one core: 14.3 GB/s sequential, 8.7 GB/s over 8 interleaved 256-byte rows).
// Short int8 / int4 rows are read a 16-element slice of every row at a time, which loads
// each q slice once for the eight rows (their cost is unpacking, not the memory stream).
template <class L, bool kQuant, bool kInOrder>
ZINC_AVX2 inline __m256 k_dot8(const Block& blk, int hd, int gsz, const float* q, const float* qsum,
                               const float* sc, const float* mn) {
  __m256 tot = _mm256_setzero_ps();
  const int kpg = gsz / 16;
  for (int c = 0; c < hd / gsz; ++c) {
    __m256 a[kRows];
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) a[r] = _mm256_setzero_ps();
    if (kInOrder && kPairs<L>()) {  // two rows at a time, each q slice loaded once
#pragma GCC unroll 4
      for (int r = 0; r < kRows; r += 2) {
        for (int k = c * kpg; k < (c + 1) * kpg; ++k) {
          const __m256 ql = _mm256_loadu_ps(q + 16 * k), qh = _mm256_loadu_ps(q + 16 * k + 8);
          __m256 lo, hi;
          L::load(blk.rows[r], k, lo, hi);
          a[r] = _mm256_fmadd_ps(hi, qh, _mm256_fmadd_ps(lo, ql, a[r]));
          L::load(blk.rows[r + 1], k, lo, hi);
          a[r + 1] = _mm256_fmadd_ps(hi, qh, _mm256_fmadd_ps(lo, ql, a[r + 1]));
        }
      }
    } else if (kInOrder) {
#pragma GCC unroll 8
      for (int r = 0; r < kRows; ++r) {
        for (int k = c * kpg; k < (c + 1) * kpg; ++k) {
          __m256 lo, hi;
          L::load(blk.rows[r], k, lo, hi);
          a[r] = _mm256_fmadd_ps(hi, _mm256_loadu_ps(q + 16 * k + 8),
                                 _mm256_fmadd_ps(lo, _mm256_loadu_ps(q + 16 * k), a[r]));
        }
      }
    } else {
      for (int k = c * kpg; k < (c + 1) * kpg; ++k) {
        const __m256 ql = _mm256_loadu_ps(q + 16 * k), qh = _mm256_loadu_ps(q + 16 * k + 8);
#pragma GCC unroll 8
        for (int r = 0; r < kRows; ++r) {
          __m256 lo, hi;
          L::load(blk.rows[r], k, lo, hi);
          a[r] = _mm256_fmadd_ps(hi, qh, _mm256_fmadd_ps(lo, ql, a[r]));
        }
      }
    }
    const __m256 d = reduce8(a);
    if (kQuant) {
      tot = _mm256_fmadd_ps(d, _mm256_loadu_ps(sc + kRows * c), tot);
      tot = _mm256_fmadd_ps(_mm256_loadu_ps(mn + kRows * c), _mm256_set1_ps(qsum[c]), tot);
    } else {
      tot = d;  // a single group
    }
  }
  return tot;
}

template <class L, bool kQuant>
ZINC_AVX2 void k_scores_avx2(const KvView& k, const int64_t* rows, int n, const float* q,
                             const float* qsum, int group, float* scores, int stride, float* tmp) {
  const int hd = k.head_dim, gsz = kQuant ? k.group : hd, ng = hd / gsz;
  constexpr bool kWide = std::is_same<L, LoadF32>::value;
  const bool staged = !kWide && group > 1;
  float* scratch = tmp;
  float* sc = tmp + kRows * hd;
  float* mn = sc + kRows * ng;
  const Geometry geo(k);
  for (int base = 0; base < n; base += kRows) {
    Block blk;
    prefetch_ahead(geo, rows, base, n);
    load_block(geo, rows, base, n, kQuant, &blk, sc, mn);
    if (staged) stage_block<L>(&blk, hd, scratch);
    for (int g = 0; g < group; ++g) {
      const float* qg = q + static_cast<int64_t>(g) * hd;
      const float* qs = qsum + static_cast<int64_t>(g) * ng;
      // one head: stream long rows in order; several: the block is in L1 after the first
      // head (prefetched, or staged), so share each q slice across the eight rows
      const __m256 d = staged ? k_dot8<LoadF32, kQuant, false>(blk, hd, gsz, qg, qs, sc, mn)
                       : group == 1
                           ? k_dot8<L, kQuant, kRowMajor<L>()>(blk, hd, gsz, qg, qs, sc, mn)
                           : k_dot8<L, kQuant, false>(blk, hd, gsz, qg, qs, sc, mn);
      float* out = scores + static_cast<int64_t>(g) * stride + base;
      if (blk.m == kRows) {
        _mm256_storeu_ps(out, d);
      } else {
        float d8[kRows];
        _mm256_storeu_ps(d8, d);
        for (int r = 0; r < blk.m; ++r) out[r] = d8[r];
      }
    }
  }
}

// acc += sum_r w[c * kRows + r] * row_r over group c's elements, for the block's rows;
// the same two orders as k_dot8.
template <class L, bool kInOrder>
ZINC_AVX2 inline void v_axpy8(const Block& blk, int hd, int gsz, const float* w, float* acc) {
  const int kpg = gsz / 16;
  for (int c = 0; c < hd / gsz; ++c) {
    if (kInOrder && kPairs<L>()) {  // two rows at a time: half the accumulator traffic
      for (int r = 0; r < kRows; r += 2) {
        const __m256 w0 = _mm256_broadcast_ss(w + kRows * c + r);
        const __m256 w1 = _mm256_broadcast_ss(w + kRows * c + r + 1);
        for (int k = c * kpg; k < (c + 1) * kpg; ++k) {
          __m256 lo0, hi0, lo1, hi1;
          L::load(blk.rows[r], k, lo0, hi0);
          L::load(blk.rows[r + 1], k, lo1, hi1);
          const __m256 al = _mm256_fmadd_ps(w0, lo0, _mm256_loadu_ps(acc + 16 * k));
          const __m256 ah = _mm256_fmadd_ps(w0, hi0, _mm256_loadu_ps(acc + 16 * k + 8));
          _mm256_storeu_ps(acc + 16 * k, _mm256_fmadd_ps(w1, lo1, al));
          _mm256_storeu_ps(acc + 16 * k + 8, _mm256_fmadd_ps(w1, hi1, ah));
        }
      }
      continue;
    }
    if (kInOrder) {
      for (int r = 0; r < kRows; ++r) {
        const __m256 wr = _mm256_broadcast_ss(w + kRows * c + r);
        for (int k = c * kpg; k < (c + 1) * kpg; ++k) {
          __m256 lo, hi;
          L::load(blk.rows[r], k, lo, hi);
          _mm256_storeu_ps(acc + 16 * k, _mm256_fmadd_ps(wr, lo, _mm256_loadu_ps(acc + 16 * k)));
          _mm256_storeu_ps(acc + 16 * k + 8,
                           _mm256_fmadd_ps(wr, hi, _mm256_loadu_ps(acc + 16 * k + 8)));
        }
      }
      continue;
    }
    __m256 wr[kRows];
#pragma GCC unroll 8
    for (int r = 0; r < kRows; ++r) wr[r] = _mm256_broadcast_ss(w + kRows * c + r);
    for (int k = c * kpg; k < (c + 1) * kpg; ++k) {
      // rows 0-3 onto acc, rows 4-7 into a second chain: two 4-FMA chains, not one of 8
      __m256 al = _mm256_loadu_ps(acc + 16 * k), ah = _mm256_loadu_ps(acc + 16 * k + 8);
      __m256 bl = _mm256_setzero_ps(), bh = bl;
#pragma GCC unroll 4
      for (int r = 0; r < kRows / 2; ++r) {
        __m256 lo, hi;
        L::load(blk.rows[r], k, lo, hi);
        al = _mm256_fmadd_ps(wr[r], lo, al);
        ah = _mm256_fmadd_ps(wr[r], hi, ah);
        L::load(blk.rows[r + kRows / 2], k, lo, hi);
        bl = _mm256_fmadd_ps(wr[r + kRows / 2], lo, bl);
        bh = _mm256_fmadd_ps(wr[r + kRows / 2], hi, bh);
      }
      _mm256_storeu_ps(acc + 16 * k, _mm256_add_ps(al, bl));
      _mm256_storeu_ps(acc + 16 * k + 8, _mm256_add_ps(ah, bh));
    }
  }
}

// sum of the 8 lanes, in a fixed order
ZINC_AVX2 inline float hsum8(__m256 v) {
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

template <class L, bool kQuant>
ZINC_AVX2 void v_accumulate_avx2(const KvView& v, const int64_t* rows, int n, const float* p,
                                 int stride, int group, float* acc, float* msum, float* tmp) {
  const int hd = v.head_dim, gsz = kQuant ? v.group : hd, ng = hd / gsz;
  constexpr bool kWide = std::is_same<L, LoadF32>::value;
  const bool staged = !kWide && group > 1;
  float* scratch = tmp;
  float* sc = tmp + kRows * hd;
  float* mn = sc + kRows * ng;
  float* w = mn + kRows * ng;
  const Geometry geo(v);
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int base = 0; base < n; base += kRows) {
    Block blk;
    prefetch_ahead(geo, rows, base, n);
    load_block(geo, rows, base, n, kQuant, &blk, sc, mn);
    if (staged) stage_block<L>(&blk, hd, scratch);
    const __m256i real = _mm256_cmpgt_epi32(_mm256_set1_epi32(blk.m), lane);
    for (int g = 0; g < group; ++g) {
      const __m256 p8 = _mm256_maskload_ps(p + static_cast<int64_t>(g) * stride + base, real);
      if (kQuant) {
        for (int c = 0; c < ng; ++c) {
          _mm256_storeu_ps(w + kRows * c, _mm256_mul_ps(p8, _mm256_loadu_ps(sc + kRows * c)));
          msum[static_cast<int64_t>(g) * ng + c] +=
              hsum8(_mm256_mul_ps(p8, _mm256_loadu_ps(mn + kRows * c)));
        }
      } else {
        _mm256_storeu_ps(w, p8);
      }
      float* ag = acc + static_cast<int64_t>(g) * hd;
      if (staged) {
        v_axpy8<LoadF32, false>(blk, hd, gsz, w, ag);
      } else {
        if (group == 1) {
          v_axpy8<L, kRowMajor<L>()>(blk, hd, gsz, w, ag);
        } else {
          v_axpy8<L, false>(blk, hd, gsz, w, ag);
        }
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

template <class L, bool kQuant>
AttentionKernels make_kernels() {
  AttentionKernels k;
  k.k_scores = k_scores_avx2<L, kQuant>;
  k.v_accumulate = v_accumulate_avx2<L, kQuant>;
  k.softmax = softmax_avx2;
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
