// The weighted values of int4 rows as AVX512-BF16 dot products (vdpbf16ps: two bf16
// products summed into each fp32 lane), for the avx512-vnni rung on CPUs with AVX512_BF16;
// everything else as cpu_attention_avx512_v.cpp (whose file comment describes the tiles).
//
// Two rows at a time: lane i of one vector holds the bf16 pair (code of row t, code of row
// t + 1) for one element, and the weights pair (w_t, w_t+1) is one broadcast dword, so one
// instruction does the work of two FMAs. Codes are exact in bf16 (as 128 + code: bf16 bits
// 0x4300 | code, one OR after the nibble unpack); the 128 * sum(w) this adds is taken off
// with the min term. The weights p * scale are rounded to bf16 (8 significant bits): each
// output moves by about 2^-9 / sqrt(3) * rms(code * scale) * sqrt(sum p^2), about 1/1000
// of the variance that int4's own rounding of the values (scale / sqrt(12) per element)
// puts there, so attnbench's max_err against f32 does not move. Needs hd % 32 == 0 and
// G % 32 == 0 (as the avx512 loops); kernel order: LoadI4's (32-element nibble blocks).
#include <algorithm>
#include <vector>

#include "runtime/backend/cpu/cpu_attention_avx512.hpp"

#define ZINC_AVX512_BF16 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c")))

namespace zinc::runtime::detail {
namespace {

using namespace avx512;

// acc += pairs of x (bf16) times the bf16 pair *w (broadcast). Inline assembly for the same
// reason as cpu_attention_avx512_vnni.cpp's dpbusd_bcast.
ZINC_AVX512_BF16 inline __m512 dpbf16_bcast(__m512 acc, __m512i x, const uint32_t* w) {
  asm("vdpbf16ps %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(x), "m"(*w));
  return acc;
}

// Block j (32 elements, 16 bytes) of rows a and b: lane i of e = (a, b)'s element 2i as
// bf16 128 + code, of o = element 2i + 1.
ZINC_AVX512_BF16 inline void pair_codes(const uint8_t* a, const uint8_t* b, int j, __m512i& e,
                                        __m512i& o) {
  const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + 16 * j));
  const __m128i y = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 16 * j));
  const __m256i xy = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_unpacklo_epi8(x, y)),
                                             _mm_unpackhi_epi8(x, y), 1);
  const __m512i w = _mm512_cvtepu8_epi16(xy);
  const __m512i bias = _mm512_set1_epi16(0x4300);
  e = _mm512_ternarylogic_epi32(w, _mm512_set1_epi16(15), bias, 0xEA);  // (w & 15) | bias
  o = _mm512_or_si512(_mm512_srli_epi16(w, 4), bias);
}

template <int H, int SL>
ZINC_AVX512_BF16 void v_int4_bf16(const quant::KvView& v, const int64_t* rows, int n,
                                  const float* p, int stride, int group, float* acc, float* msum,
                                  float* tmp) {
  const int hd = v.head_dim, ng = v.groups(), bpg = v.group / 32;
  float* sc = align64(tmp);
  float* mn = sc + kRows * ng;
  auto* wb = reinterpret_cast<uint32_t*>(mn + kRows * ng);     // [ng][group][8] bf16 pairs
  float* msv = reinterpret_cast<float*>(wb + 8 * ng * group);  // [group][ng][16]
  std::fill(msv, msv + static_cast<int64_t>(kRows) * ng * group, 0.0f);
  int cg_small[64];  // quant group of each 32-element slice (no division in the loops)
  std::vector<int> cg_big(hd / 32 > 64 ? hd / 32 : 0);
  int* cg = cg_big.empty() ? cg_small : cg_big.data();
  for (int j = 0; j < hd / 32; ++j) cg[j] = j / bpg;
  const Geometry geo(v, kRows);
  const __m512 bias = _mm512_set1_ps(128.0f);
  for (int base = 0; base < n; base += kRows) {
    Block blk;
    rows::block_rows(geo, rows, base, n, &blk);
    rows::prefetch_ahead<kRows>(geo, rows, base, n);
    load_params(geo, blk, sc, mn);
    const __mmask16 real = static_cast<__mmask16>((1u << blk.m) - 1);
    for (int g = 0; g < group; ++g) {
      const __m512 p16 = _mm512_maskz_loadu_ps(real, p + static_cast<int64_t>(g) * stride + base);
      for (int c = 0; c < ng; ++c) {
        const __m256i w = reinterpret_cast<__m256i>(
            _mm512_cvtneps_pbh(_mm512_mul_ps(p16, _mm512_loadu_ps(sc + kRows * c))));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(wb + (c * group + g) * 8), w);
        const __m512 wf = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(w), 16));
        float* ms = msv + (g * ng + c) * kRows;
        _mm512_storeu_ps(ms, _mm512_fnmadd_ps(bias, wf,
                                              _mm512_fmadd_ps(p16, _mm512_loadu_ps(mn + kRows * c),
                                                              _mm512_loadu_ps(ms))));
      }
    }
    for (int g0 = 0; g0 < group; g0 += H) {
      for (int j0 = 0; j0 < hd / 32; j0 += SL) {
        __m512 a[H][SL][2];
        load_tile<H, SL>(acc, hd, g0, j0, a);
        const uint32_t* wc[SL];  // the weights of slice j0 + s: its quant group, head g0
#pragma GCC unroll 8
        for (int s = 0; s < SL; ++s) wc[s] = wb + (cg[j0 + s] * group + g0) * 8;
#pragma GCC unroll 2
        for (int r = 0; r < kRows; r += 2) {
#pragma GCC unroll 8
          for (int s = 0; s < SL; ++s) {
            __m512i e, o;
            pair_codes(blk.rows[r], blk.rows[r + 1], j0 + s, e, o);
#pragma GCC unroll 8
            for (int h = 0; h < H; ++h) {
              const uint32_t* wp = wc[s] + h * 8 + r / 2;
              a[h][s][0] = dpbf16_bcast(a[h][s][0], e, wp);
              a[h][s][1] = dpbf16_bcast(a[h][s][1], o, wp);
            }
          }
        }
        store_tile<H, SL>(acc, hd, g0, j0, a);
      }
    }
  }
  for (int g = 0; g < group; ++g)
    for (int c = 0; c < ng; ++c)
      msum[g * ng + c] += _mm512_reduce_add_ps(_mm512_loadu_ps(msv + (g * ng + c) * kRows));
}

void v_int4(const quant::KvView& v, const int64_t* rows, int n, const float* p, int stride,
            int group, float* acc, float* msum, float* tmp) {
  with_v_tile(group, v.head_dim / 32, [&](auto h, auto sl) {
    v_int4_bf16<decltype(h)::value, decltype(sl)::value>(v, rows, n, p, stride, group, acc, msum,
                                                         tmp);
  });
}

}  // namespace

bool cpu_has_avx512_bf16() {
  static const bool yes = cpu_has_avx512() && __builtin_cpu_supports("avx512bf16");
  return yes;
}

AttentionKernels avx512_bf16_v_kernels(quant::KvStorage s) {
  AttentionKernels k = avx512_attention_kernels(s);
  if (s == quant::KvStorage::Int4) {
    k.v_accumulate = v_int4;
    k.isa = "avx512-bf16";
  }
  return k;
}

}  // namespace zinc::runtime::detail
