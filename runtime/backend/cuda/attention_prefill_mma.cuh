// attention_prefill_mma.cuh: the block algorithm of the tensor-core prefill kernel
// (attention_prefill_mma.cu describes the kernel: tiling, thread mapping, semantics).
//
// Written against a small set of warp primitives, the template parameter Ops (static
// functions): cp_async16 / cp_async_commit / cp_async_wait1 (global -> shared copies, a
// zero fill when the source is not valid), ldsm_x4 / ldsm_x4_trans (ldmatrix), mma
// (m16n8k16 row.col, fp32 accumulators, the element type's A/B fragments), pack2 (two
// fp32 as the element type's pair, the lower element first), copy16 (16 aligned bytes),
// shfl_xor, ballot, popc, sync_block, sync_warp and exp2. attention_prefill_mma.cu implements them with inline
// PTX; tests/unit/test_attention_mma_emu.cpp implements them on the host (a warp of
// fibers, the fragment layouts of the PTX ISA) to check this file's index math without a
// GPU. Elements are moved as raw 16-bit words; only Ops interprets them. Plain C++ outside
// nvcc (no CUDA header here).
#pragma once

#include <cmath>
#include <cstdint>

#include "runtime/backend/attention_shape.hpp"

#ifdef __CUDACC__
#define ZINC_MMA_FN __device__ __forceinline__
#define ZINC_MMA_UNROLL _Pragma("unroll")
#else
#define ZINC_MMA_FN inline
#define ZINC_MMA_UNROLL
#endif

namespace zinc::runtime::cuda::attn::mma {

constexpr int kWarps = 4;              // 16 query rows each
constexpr int kThreads = 32 * kWarps;  // threads per block
constexpr int kBQ = 16 * kWarps;       // query rows per block
constexpr int kBK = 64;                // keys per tile (two ballots of warp 0)
constexpr float kLog2e = 1.4426950408889634f;

// Shared memory of one block, in 16-bit elements unless noted: Q [kBQ][kPitch], K and V
// [2][kBK][kPitch] (double-buffered), then the tile's key terms, fp32 [kBK]. A row is
// head_dim + 8 elements: the 8 row addresses of one ldmatrix 8x8 matrix then start 16
// bytes apart modulo 128, on distinct banks.
template <int HD>
struct Cfg {
  static_assert(HD == 64 || HD == 128, "the tensor-core kernel takes head_dim 64 or 128");
  static constexpr int kPitch = HD + 8;
  static constexpr int kChunks = HD / 8;  // 16-byte chunks of a row
  static constexpr int kQElems = kBQ * kPitch;
  static constexpr int kTileElems = kBK * kPitch;
  static constexpr size_t kSmemBytes = 2u * (kQElems + 4 * kTileElems) + sizeof(float) * kBK;
};

// The block of query rows qblk * kBQ .. +kBQ-1 of sequence b, head h. q, out: [B*tq, H*HD];
// kc, vc: [B, t_max, KVH, HD]; all 16-byte aligned. scale_log2 = scale * log2(e). smem:
// Cfg<HD>::kSmemBytes, 16-byte aligned. tid: 0 .. kThreads-1. Every thread of the block
// calls it (it synchronises the block).
template <class Ops, int HD>
ZINC_MMA_FN void prefill_block(const uint16_t* __restrict__ q, const uint16_t* __restrict__ kc,
                               const uint16_t* __restrict__ vc, const uint8_t* __restrict__ key_mask,
                               const float* __restrict__ slopes, const AttentionShape& sh, float scale_log2,
                               uint16_t* __restrict__ out, unsigned char* smem, int tid, int h, int b, int qblk) {
  using C = Cfg<HD>;
  constexpr int P = C::kPitch, CH = C::kChunks;
  constexpr int KS = HD / 16;   // k-steps of S = Q K^T (16 dims each)
  constexpr int NT = kBK / 8;   // n-tiles of S (8 keys each)
  constexpr int PS = kBK / 16;  // k-steps of O += P V (16 keys each)
  constexpr int DT = HD / 8;    // n-tiles of O (8 dims each)
  static_assert(kBK == 64, "the key terms take two ballots of 32 keys");
  static_assert(kBQ * CH % kThreads == 0 && kBK * CH % kThreads == 0 && 16 * CH % 32 == 0, "whole copy rounds");

  uint16_t* const Qs = reinterpret_cast<uint16_t*>(smem);
  uint16_t* const Ks = Qs + C::kQElems;         // [2][kBK][P]
  uint16_t* const Vs = Ks + 2 * C::kTileElems;  // [2][kBK][P]
  float* const term_s = reinterpret_cast<float*>(Vs + 2 * C::kTileElems);  // [kBK]

  const int warp = tid / 32, lane = tid % 32;
  const int g = lane / 4, t4 = lane % 4;  // the mma fragments' groupID, thread-in-group
  const int kvh = h / (sh.heads / sh.kv_heads);
  const int q0 = qblk * kBQ;
  const int64_t q_stride = static_cast<int64_t>(sh.heads) * HD;  // q / out row
  const int64_t q_off = static_cast<int64_t>(b) * sh.tq * q_stride + static_cast<int64_t>(h) * HD;
  const uint16_t* const qb = q + q_off;
  uint16_t* const ob = out + q_off;
  const int64_t kv_stride = static_cast<int64_t>(sh.kv_heads) * HD;  // key j -> j+1
  const int64_t kv_off = static_cast<int64_t>(b) * sh.t_max * kv_stride + static_cast<int64_t>(kvh) * HD;
  const uint16_t* const kb = kc + kv_off;
  const uint16_t* const vb = vc + kv_off;
  const uint8_t* const mrow = key_mask + static_cast<int64_t>(b) * sh.t_max;
  const float slope_log2 = slopes != nullptr ? slopes[h] * kLog2e : 0.0f;

  const int rows = sh.tq - q0 < kBQ ? sh.tq - q0 : kBQ;  // real query rows of the block (>= 1)
  const int kend = sh.t0 + q0 + rows;                    // keys 0 .. kend-1 are seen by some row
  const int ntiles = (kend + kBK - 1) / kBK;

  // K / V tile `tile` into buffer `buf`: keys that are masked or >= kend are zero rows
  // (never read from the cache), so neither their K nor their V can carry NaN.
  auto load_kv = [&](int tile, int buf) {
    uint16_t* const kd = Ks + buf * C::kTileElems;
    uint16_t* const vd = Vs + buf * C::kTileElems;
    const int kt = tile * kBK;
    ZINC_MMA_UNROLL
    for (int it = 0; it < kBK * CH / kThreads; ++it) {
      const int idx = it * kThreads + tid;
      const int r = idx / CH, c = idx % CH, j = kt + r;
      const bool ok = j < kend && mrow[j] != 0;
      const int64_t src = ok ? j * kv_stride + c * 8 : 0;
      Ops::cp_async16(kd + r * P + c * 8, kb + src, ok);
      Ops::cp_async16(vd + r * P + c * 8, vb + src, ok);
    }
  };

  // Q tile (rows past tq are zeros), then K/V tile 0; Q into registers.
  ZINC_MMA_UNROLL
  for (int it = 0; it < kBQ * CH / kThreads; ++it) {
    const int idx = it * kThreads + tid;
    const int r = idx / CH, c = idx % CH;
    const bool ok = r < rows;
    Ops::cp_async16(Qs + r * P + c * 8, qb + (ok ? (q0 + r) * q_stride + c * 8 : 0), ok);
  }
  Ops::cp_async_commit();
  load_kv(0, 0);
  Ops::cp_async_commit();
  Ops::cp_async_wait1();  // the Q group
  Ops::sync_block();
  // A fragments of this warp's 16 rows: matrices (rows 0-7 | 8-15) x (dims 0-7 | 8-15)
  // from lanes 0-7, 8-15, 16-23, 24-31 (a0..a3 of the PTX layout).
  uint32_t qf[KS][4];
  ZINC_MMA_UNROLL
  for (int ks = 0; ks < KS; ++ks)
    Ops::ldsm_x4(qf[ks], Qs + (warp * 16 + (lane & 15)) * P + ks * 16 + (lane >> 4) * 8);

  // This thread's rows (C fragment rows g and g + 8) see keys j <= lim (-1: past tq).
  const int i0 = q0 + warp * 16 + g, i1 = i0 + 8;
  const int lim0 = i0 < sh.tq ? sh.t0 + i0 : -1;
  const int lim1 = i1 < sh.tq ? sh.t0 + i1 : -1;
  const int wrow = q0 + warp * 16;  // this warp's first row; its last real row sees up to wlast
  const int wlast = wrow < sh.tq ? sh.t0 + (wrow + 15 < sh.tq ? wrow + 15 : sh.tq - 1) : -1;

  float m0 = -INFINITY, m1 = -INFINITY;  // running max (log2 units) of rows g, g + 8
  float l0 = 0.0f, l1 = 0.0f;            // this thread's part of the running sums
  float o[DT][4];
  ZINC_MMA_UNROLL
  for (int dt = 0; dt < DT; ++dt) o[dt][0] = o[dt][1] = o[dt][2] = o[dt][3] = 0.0f;
  int run = 0;  // warp 0: real keys before the current tile

  for (int t = 0; t < ntiles; ++t) {
    const int kt = t * kBK;
    if (t + 1 < ntiles) load_kv(t + 1, (t + 1) & 1);
    Ops::cp_async_commit();  // (an empty group on the last tile: wait1 below still waits for tile t)

    // Key terms of the tile: log2(e) * slope * p(b, j) for a real key j < kend, else -inf.
    if (warp == 0) {
      const int ja = kt + lane, jb = kt + 32 + lane;
      const bool ra = ja < kend && mrow[ja] != 0;
      const bool rb = jb < kend && mrow[jb] != 0;
      const unsigned ba = Ops::ballot(ra), bb = Ops::ballot(rb);
      const unsigned below = (1u << lane) - 1u;
      const int pa = run + Ops::popc(ba & below);
      const int pb = run + Ops::popc(ba) + Ops::popc(bb & below);
      term_s[lane] = ra ? slope_log2 * static_cast<float>(pa) : -INFINITY;
      term_s[32 + lane] = rb ? slope_log2 * static_cast<float>(pb) : -INFINITY;
      run += Ops::popc(ba) + Ops::popc(bb);
    }
    Ops::cp_async_wait1();  // tile t (this thread's copies)
    Ops::sync_block();      // everyone's copies and the key terms

    if (kt <= wlast) {  // warp-uniform: a tile wholly past the warp's rows changes nothing
      const uint16_t* const Kt = Ks + (t & 1) * C::kTileElems;
      const uint16_t* const Vt = Vs + (t & 1) * C::kTileElems;

      // S = Q K^T: B fragments from K rows (keys) with ldmatrix (no transpose): matrices
      // (keys 0-7, dims 0-7), (keys 0-7, dims 8-15), (keys 8-15, dims 0-7), (keys 8-15,
      // dims 8-15) = b0, b1 of n-tile 2np, b0, b1 of n-tile 2np + 1.
      float s[NT][4];
      ZINC_MMA_UNROLL
      for (int nt = 0; nt < NT; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
      ZINC_MMA_UNROLL
      for (int ks = 0; ks < KS; ++ks) {
        ZINC_MMA_UNROLL
        for (int np = 0; np < NT / 2; ++np) {
          uint32_t kf[4];
          Ops::ldsm_x4(kf, Kt + (np * 16 + (lane & 7) + (lane >> 4) * 8) * P + ks * 16 + ((lane >> 3) & 1) * 8);
          Ops::mma(s[2 * np], qf[ks], kf[0], kf[1]);
          Ops::mma(s[2 * np + 1], qf[ks], kf[2], kf[3]);
        }
      }

      // Scores in log2 units; -inf for keys that are masked, past kend or past the row.
      // s[nt][e] is row g, key kt + 8 nt + 2 t4 + e; s[nt][2 + e] is row g + 8.
      float mx0 = -INFINITY, mx1 = -INFINITY;
      ZINC_MMA_UNROLL
      for (int nt = 0; nt < NT; ++nt) {
        ZINC_MMA_UNROLL
        for (int e = 0; e < 2; ++e) {
          const int kk = nt * 8 + 2 * t4 + e, j = kt + kk;
          const float term = term_s[kk];
          s[nt][e] = j <= lim0 ? fmaf(s[nt][e], scale_log2, term) : -INFINITY;
          s[nt][2 + e] = j <= lim1 ? fmaf(s[nt][2 + e], scale_log2, term) : -INFINITY;
          mx0 = fmaxf(mx0, s[nt][e]);
          mx1 = fmaxf(mx1, s[nt][2 + e]);
        }
      }
      // The 4 threads of a quad hold a row's 64 keys.
      mx0 = fmaxf(mx0, Ops::shfl_xor(mx0, 1));
      mx0 = fmaxf(mx0, Ops::shfl_xor(mx0, 2));
      mx1 = fmaxf(mx1, Ops::shfl_xor(mx1, 1));
      mx1 = fmaxf(mx1, Ops::shfl_xor(mx1, 2));
      const float mn0 = fmaxf(m0, mx0), mn1 = fmaxf(m1, mx1);
      // A row with nothing visible yet keeps m = -inf: subtract 0 there, so that
      // exp2(-inf - 0) = 0 for p and alpha (never -inf - -inf = NaN).
      const float base0 = mn0 == -INFINITY ? 0.0f : mn0;
      const float base1 = mn1 == -INFINITY ? 0.0f : mn1;
      const float alpha0 = Ops::exp2(m0 - base0), alpha1 = Ops::exp2(m1 - base1);
      m0 = mn0;
      m1 = mn1;

      // P = exp2(s - m) as the element type, straight into A fragments of O += P V:
      // k-step ps covers keys 16 ps .. +15 = n-tiles 2 ps (a0, a1) and 2 ps + 1 (a2, a3).
      uint32_t pf[PS][4];
      float sum0 = 0.0f, sum1 = 0.0f;
      ZINC_MMA_UNROLL
      for (int nt = 0; nt < NT; ++nt) {
        const float p00 = Ops::exp2(s[nt][0] - base0), p01 = Ops::exp2(s[nt][1] - base0);
        const float p10 = Ops::exp2(s[nt][2] - base1), p11 = Ops::exp2(s[nt][3] - base1);
        sum0 += p00 + p01;
        sum1 += p10 + p11;
        pf[nt / 2][(nt & 1) * 2 + 0] = Ops::pack2(p00, p01);  // row g
        pf[nt / 2][(nt & 1) * 2 + 1] = Ops::pack2(p10, p11);  // row g + 8
      }
      l0 = l0 * alpha0 + sum0;
      l1 = l1 * alpha1 + sum1;
      ZINC_MMA_UNROLL
      for (int dt = 0; dt < DT; ++dt) {
        o[dt][0] *= alpha0;
        o[dt][1] *= alpha0;
        o[dt][2] *= alpha1;
        o[dt][3] *= alpha1;
      }

      // O += P V: B fragments from V rows (keys) with ldmatrix.trans: matrices (keys 0-7,
      // dims 0-7), (keys 8-15, dims 0-7), (keys 0-7, dims 8-15), (keys 8-15, dims 8-15) =
      // b0, b1 of n-tile 2dp, b0, b1 of n-tile 2dp + 1.
      ZINC_MMA_UNROLL
      for (int ps = 0; ps < PS; ++ps) {
        ZINC_MMA_UNROLL
        for (int dp = 0; dp < DT / 2; ++dp) {
          uint32_t vf[4];
          Ops::ldsm_x4_trans(vf, Vt + (ps * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * P + dp * 16 + (lane >> 4) * 8);
          Ops::mma(o[2 * dp], pf[ps], vf[0], vf[1]);
          Ops::mma(o[2 * dp + 1], pf[ps], vf[2], vf[3]);
        }
      }
    }
    Ops::sync_block();  // buffer t & 1 and the key terms are rewritten next
  }

  // out = O / l (zeros for a row that saw no key): through this warp's rows of the Q tile
  // (no longer read), then 16-byte stores of whole rows.
  l0 += Ops::shfl_xor(l0, 1);
  l0 += Ops::shfl_xor(l0, 2);
  l1 += Ops::shfl_xor(l1, 1);
  l1 += Ops::shfl_xor(l1, 2);
  const float inv0 = l0 > 0.0f ? 1.0f / l0 : 0.0f, inv1 = l1 > 0.0f ? 1.0f / l1 : 0.0f;
  uint16_t* const Ow = Qs + warp * 16 * P;
  ZINC_MMA_UNROLL
  for (int dt = 0; dt < DT; ++dt) {
    const int d = dt * 8 + 2 * t4;
    *reinterpret_cast<uint32_t*>(Ow + g * P + d) =
        Ops::pack2(l0 > 0.0f ? o[dt][0] * inv0 : 0.0f, l0 > 0.0f ? o[dt][1] * inv0 : 0.0f);
    *reinterpret_cast<uint32_t*>(Ow + (g + 8) * P + d) =
        Ops::pack2(l1 > 0.0f ? o[dt][2] * inv1 : 0.0f, l1 > 0.0f ? o[dt][3] * inv1 : 0.0f);
  }
  Ops::sync_warp();
  ZINC_MMA_UNROLL
  for (int it = 0; it < 16 * CH / 32; ++it) {
    const int idx = it * 32 + lane;
    const int r = idx / CH, c = idx % CH, i = wrow + r;
    if (i < sh.tq)
      Ops::copy16(ob + i * q_stride + c * 8, Ow + r * P + c * 8);
  }
}

}  // namespace zinc::runtime::cuda::attn::mma
