// K scores of int8 / int4 rows as AVX512-VNNI integer dot products (vpdpbusd: unsigned
// codes x signed bytes of q, four products summed per 32-bit lane). The values and
// everything else run the fp32 AVX-512 loops (cpu_attention_avx512*.cpp). With grouped
// queries the fp32 loops spend 2 FMAs per element per head on K alone; here one vpdpbusd
// covers 64 codes, so K costs a quarter (int4) or half (int8) of the vector work.
//
// q is rounded per query head to a fixed-point grid, q ~= sq * qi:
//   int4 keys: qi in [-127, 127], one signed byte per element (one vpdpbusd per 4 codes);
//   int8 keys: qi in [-32639, 32639], split into two signed bytes qi = 256 * hi + lo (two
//              vpdpbusd per 4 codes, exact in int32 for G <= 256).
// Scores are q' . k' for q' = sq * qi, exactly (up to fp32 rounding):
//   sq * sum_g scale_g * (qi . codes_g) + sum_g min_g * sq * sum(qi_g).
// Their error, (q' - q) . k', is then about 1/20 (int4) or 1/5000 (int8) of the error that
// the keys' own quantization puts there (q' - q has an rms of max|q| / (top * sqrt(12)),
// k' - k of scale / sqrt(12)), so the outputs stay as far from the f32 ones as before
// (attnbench's max_err column). (The exact sum(q_g) in the min term would leave
// (q' - q) . (k' - min) instead: codes are not centred, about 4x the squared error.)
//
// Layout: 16 rows of codes are transposed 4 bytes at a time (a 16 x 16 dword transpose per
// 64 bytes of each row), so that lane r of column k holds bytes [4k, 4k + 4) of row r: the
// scores come out with one row per lane (no horizontal sums), q's four bytes of column k
// are one broadcast, and int4's nibbles unpack with one AND and one shift per column
// (low nibbles: elements 8k, 8k + 2, 8k + 4, 8k + 6; high: the odd ones). Needs G % 32 == 0,
// hd % 32 == 0 (int8) or % 64 == 0 (int4): rows of 32 bytes or a multiple.
#include <algorithm>
#include <cmath>
#include <vector>

#include "runtime/backend/cpu/cpu_attention_avx512.hpp"

namespace zinc::runtime::detail {
namespace {

using namespace avx512;

// out[k] lane i = dword k of r[i] (a 16 x 16 transpose of 32-bit elements).
ZINC_AVX512 inline void transpose16(__m512i* r) {
  __m512i t[16], u[16];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
#pragma GCC unroll 4
  for (int g = 0; g < 4; ++g) {  // u[4g + j], block b: rows 4g .. 4g + 3 at dword 4b + j
    u[4 * g + 0] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
    u[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
    u[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
    u[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
  }
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    const __m512i v0 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0x88);
    const __m512i v1 = _mm512_shuffle_i32x4(u[j], u[4 + j], 0xDD);
    const __m512i w0 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0x88);
    const __m512i w1 = _mm512_shuffle_i32x4(u[8 + j], u[12 + j], 0xDD);
    r[j] = _mm512_shuffle_i32x4(v0, w0, 0x88);
    r[8 + j] = _mm512_shuffle_i32x4(v0, w0, 0xDD);
    r[4 + j] = _mm512_shuffle_i32x4(v1, w1, 0x88);
    r[12 + j] = _mm512_shuffle_i32x4(v1, w1, 0xDD);
  }
}

// q of `group` heads on the grid of the keys' storage, q ~= sq * qi with qi in [-top, top]
// rounded to nearest even (vcvtps2dq), per head h: sq[h], the sums of q' over each of the
// ng quant groups G, qs[h * ng + c], and the columns' dwords qd[(piece * group + h) * cols
// + k] (int8: piece 0 = the high bytes, 1 = the low bytes of qi = 256 * hi + lo; int4: 0 =
// the even elements of column k, 1 = the odd ones).
template <bool kInt4>
ZINC_AVX512 void quantize_q(const float* q, int group, int hd, int G, float* sq, float* qs,
                            int32_t* qd) {
  const float topf = kInt4 ? 127.0f : 32639.0f;
  const __m512 top = _mm512_set1_ps(topf), ntop = _mm512_set1_ps(-topf);
  const int cols = kInt4 ? hd / 8 : hd / 4, ng = hd / G;
  // int4: 16 codes (two columns) -> [even of column 2m, of 2m + 1, odd of 2m, of 2m + 1]
  const __m128i split = _mm_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
  for (int h = 0; h < group; ++h) {
    const float* qh = q + static_cast<int64_t>(h) * hd;
    __m512 mx = _mm512_setzero_ps();
    for (int d = 0; d < hd; d += 16) mx = _mm512_max_ps(mx, _mm512_abs_ps(_mm512_loadu_ps(qh + d)));
    const float m = _mm512_reduce_max_ps(mx);
    const __m512 inv = _mm512_set1_ps(m > 0.0f ? topf / m : 0.0f);
    sq[h] = m / topf;
    auto* p0 = reinterpret_cast<int8_t*>(qd + static_cast<int64_t>(h) * cols);
    auto* p1 = reinterpret_cast<int8_t*>(qd + static_cast<int64_t>(group + h) * cols);
    for (int c = 0; c < ng; ++c) {
      __m512i sum = _mm512_setzero_si512();
      for (int d = c * G; d < (c + 1) * G; d += 16) {
        const __m512i v = _mm512_cvtps_epi32(
            _mm512_min_ps(top, _mm512_max_ps(ntop, _mm512_mul_ps(_mm512_loadu_ps(qh + d), inv))));
        sum = _mm512_add_epi32(sum, v);
        if (kInt4) {
          const __m128i b = _mm_shuffle_epi8(_mm512_cvtepi32_epi8(v), split);
          _mm_storel_epi64(reinterpret_cast<__m128i*>(p0 + d / 2), b);
          _mm_storel_epi64(reinterpret_cast<__m128i*>(p1 + d / 2), _mm_unpackhi_epi64(b, b));
        } else {  // floor: v = 256 * hi + lo, both in [-128, 127]
          const __m512i hi = _mm512_srai_epi32(_mm512_add_epi32(v, _mm512_set1_epi32(128)), 8);
          const __m512i lo = _mm512_sub_epi32(v, _mm512_slli_epi32(hi, 8));
          _mm_storeu_si128(reinterpret_cast<__m128i*>(p0 + d), _mm512_cvtepi32_epi8(hi));
          _mm_storeu_si128(reinterpret_cast<__m128i*>(p1 + d), _mm512_cvtepi32_epi8(lo));
        }
      }
      qs[h * ng + c] = sq[h] * static_cast<float>(_mm512_reduce_add_epi32(sum));
    }
  }
}

// acc += the four-byte dot products of x's lanes with the dword *q (broadcast). Inline
// assembly: GCC 12 copies each accumulator out of and back into its register around every
// _mm512_dpbusd_epi32 in these loops (two moves per dot product) and loads the broadcast
// separately; "+v" keeps the accumulator in place and {1to16} folds the broadcast.
ZINC_AVX512_VNNI inline __m512i dpbusd_bcast(__m512i acc, __m512i x, const int32_t* q) {
  asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(x), "m"(*q));
  return acc;
}

// Heads h0 .. h0 + HT - 1 of one block: X [cols][16] the transposed codes.
template <bool kInt4, int HT>
ZINC_AVX512_VNNI inline void block_scores(const __m512i* X, int ng, int cpg, int cols,
                                          const int32_t* qd, int group, int h0, const float* sc,
                                          const float* mn, const float* sq, const float* qsum,
                                          float* out, int stride) {
  __m512 dot[HT];
#pragma GCC unroll 8
  for (int h = 0; h < HT; ++h) dot[h] = _mm512_setzero_ps();
  const int32_t* q0 = qd + static_cast<int64_t>(h0) * cols;
  const int32_t* q1 = qd + static_cast<int64_t>(group + h0) * cols;
  for (int c = 0; c < ng; ++c) {
    __m512i a0[HT], a1[HT];
#pragma GCC unroll 8
    for (int h = 0; h < HT; ++h) a0[h] = a1[h] = _mm512_setzero_si512();
    for (int k = c * cpg; k < (c + 1) * cpg; ++k) {
      const __m512i x = _mm512_load_si512(X + k);
      if (kInt4) {
        const __m512i m = _mm512_set1_epi8(15);
        const __m512i lo = _mm512_and_si512(x, m),
                      hi = _mm512_and_si512(_mm512_srli_epi32(x, 4), m);
#pragma GCC unroll 8
        for (int h = 0; h < HT; ++h) {
          a0[h] = dpbusd_bcast(a0[h], lo, q0 + h * cols + k);
          a1[h] = dpbusd_bcast(a1[h], hi, q1 + h * cols + k);
        }
      } else {
#pragma GCC unroll 8
        for (int h = 0; h < HT; ++h) {
          a0[h] = dpbusd_bcast(a0[h], x, q0 + h * cols + k);
          a1[h] = dpbusd_bcast(a1[h], x, q1 + h * cols + k);
        }
      }
    }
    const __m512 s = _mm512_load_ps(sc + kRows * c);
    const __m512 s0 = kInt4 ? s : _mm512_mul_ps(s, _mm512_set1_ps(256.0f));
#pragma GCC unroll 8
    for (int h = 0; h < HT; ++h) {
      if (kInt4) a0[h] = _mm512_add_epi32(a0[h], a1[h]);  // both pieces of one grid
      dot[h] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a0[h]), s0, dot[h]);
      if (!kInt4) dot[h] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a1[h]), s, dot[h]);
    }
  }
#pragma GCC unroll 8
  for (int h = 0; h < HT; ++h) {
    __m512 m = _mm512_setzero_ps();
    for (int c = 0; c < ng; ++c)
      m = _mm512_fmadd_ps(_mm512_load_ps(mn + kRows * c), _mm512_set1_ps(qsum[(h0 + h) * ng + c]),
                          m);
    _mm512_storeu_ps(out + static_cast<int64_t>(h) * stride,
                     _mm512_fmadd_ps(dot[h], _mm512_set1_ps(sq[h0 + h]), m));
  }
}

template <bool kInt4, int HT>
ZINC_AVX512_VNNI void k_scores_vnni(const quant::KvView& k, const int64_t* rows, int n,
                                    const float* q, const float*, int group, float* scores,
                                    int stride, float* tmp) {
  const int hd = k.head_dim, ng = k.groups();
  const int64_t code_bytes = kInt4 ? hd / 2 : hd;
  const int cols = static_cast<int>(code_bytes / 4), cpg = kInt4 ? k.group / 8 : k.group / 4;
  float* sc = align64(tmp);
  float* mn = sc + kRows * ng;
  const int64_t cb64 = (code_bytes + 63) / 64 * 64;       // a row's bytes in S
  auto* X = reinterpret_cast<__m512i*>(mn + kRows * ng);  // [cols][16]
  __m512i* S = X + cols;                                  // [16][cb64 / 64] (rows > 64 bytes)
  float* sq = reinterpret_cast<float*>(S + (code_bytes > 64 ? kRows * cb64 / 64 : 0));
  float* qs = sq + group;                                  // [group][ng]
  auto* qd = reinterpret_cast<int32_t*>(qs + group * ng);  // [2][group][cols]
  quantize_q<kInt4>(q, group, hd, k.group, sq, qs, qd);
  const Geometry geo(k, kRows);
  for (int base = 0; base < n; base += kRows) {
    Block blk;
    rows::block_rows(geo, rows, base, n, &blk);
    rows::prefetch_ahead<kRows>(geo, rows, base, n);
    load_params(geo, blk, sc, mn);
    // Rows of more than 64 bytes are first copied in order, each whole, to S: read 64 bytes
    // of each of the 16 rows, then the next 64, their loads measured 2.3x slower from memory
    // (int8, hd 128, one head: 21 vs 9 ns per row on Zen 4).
    const bool staged = code_bytes > 64;
    if (staged)
      for (int i = 0; i < kRows; ++i)
        for (int64_t off = 0; off < code_bytes; off += 64)
          _mm512_store_si512(S + (i * cb64 + off) / 64,
                             _mm512_maskz_loadu_epi32(code_bytes - off >= 64 ? 0xFFFF : 0x00FF,
                                                      blk.rows[i] + off));
    for (int64_t off = 0; off < code_bytes; off += 64) {  // 64 bytes of each row (or 32)
      const __mmask16 part = code_bytes - off >= 64 ? 0xFFFF : 0x00FF;
      __m512i r[kRows];
#pragma GCC unroll 16
      for (int i = 0; i < kRows; ++i)
        r[i] = staged ? _mm512_load_si512(S + (i * cb64 + off) / 64)
                      : _mm512_maskz_loadu_epi32(part, blk.rows[i] + off);
      transpose16(r);
      const int nk = part == 0xFFFF ? 16 : 8;
      for (int j = 0; j < nk; ++j) _mm512_store_si512(X + off / 4 + j, r[j]);
    }
    for (int h0 = 0; h0 < group; h0 += HT)
      block_scores<kInt4, HT>(X, ng, cpg, cols, qd, group, h0, sc, mn, sq, qs,
                              scores + static_cast<int64_t>(h0) * stride + base, stride);
  }
}

template <bool kInt4>
void k_scores(const quant::KvView& k, const int64_t* rows, int n, const float* q, const float* qsum,
              int group, float* scores, int stride, float* tmp) {
  if (group % 8 == 0)
    return k_scores_vnni<kInt4, 8>(k, rows, n, q, qsum, group, scores, stride, tmp);
  if (group % 4 == 0)
    return k_scores_vnni<kInt4, 4>(k, rows, n, q, qsum, group, scores, stride, tmp);
  if (group % 2 == 0)
    return k_scores_vnni<kInt4, 2>(k, rows, n, q, qsum, group, scores, stride, tmp);
  return k_scores_vnni<kInt4, 1>(k, rows, n, q, qsum, group, scores, stride, tmp);
}

}  // namespace

bool avx512_vnni_fits(const quant::KvView& k) {
  if (!quant::kv_storage_quantized(k.storage) || k.group % 32 != 0 || k.group > 256) return false;
  return k.head_dim % (k.storage == quant::KvStorage::Int4 ? 64 : 32) == 0;
}

void vnni_query(quant::KvStorage s, int hd, const float* q, float* out) {
  const bool int4 = s == quant::KvStorage::Int4;
  const int cols = int4 ? hd / 8 : hd / 4;
  float sq = 0.0f, qs = 0.0f;
  std::vector<int32_t> qd(2 * cols);
  if (int4) {
    quantize_q<true>(q, 1, hd, hd, &sq, &qs, qd.data());
  } else {
    quantize_q<false>(q, 1, hd, hd, &sq, &qs, qd.data());
  }
  const auto* p0 = reinterpret_cast<const int8_t*>(qd.data());
  const auto* p1 = reinterpret_cast<const int8_t*>(qd.data() + cols);
  for (int d = 0; d < hd; ++d) {
    const int i = (d / 8) * 4 + (d % 8) / 2;
    const int qi = int4 ? (d % 2 ? p1 : p0)[i] : 256 * p0[d] + p1[d];
    out[d] = sq * static_cast<float>(qi);
  }
}

AttentionKernels avx512_vnni_k_kernels(quant::KvStorage s) {
  AttentionKernels k = avx512_attention_kernels(s);  // the values' loops, softmax
  k.k_scores = s == quant::KvStorage::Int4 ? k_scores<true> : k_scores<false>;
  k.nibble_block = 0;  // q in natural order: quantize_q lays it out for the columns
  k.uses_qsum = false;  // the min term takes the sums of q' (quantize_q)
  k.isa = "avx512-vnni";
  return k;
}

}  // namespace zinc::runtime::detail
