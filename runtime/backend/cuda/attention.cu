// attention.cu: Backend::attention on the GPU (kernels.hpp's `attention`).
//
// Semantics (runtime/backend/backend.hpp, the CPU reference cpu_attention.cpp): query i of
// sequence b sits at cache index t0 + i and sees keys j <= t0 + i with
// key_mask[b * t_max + j] == 1; score = (q . k) * scale (+ slope[h] * p(b, j), p(b, j) =
// the number of real keys of b before j); softmax over the visible keys; a query that sees
// no key writes zeros; query head h reads kv head h / (H / KVH). Element type T (F32, F16,
// BF16) in memory, fp32 everywhere else. No [B, H, tq, T] buffer: both kernels run an
// online softmax (running max m, running sum l, fp32 accumulator) over key tiles.
//
// Two kernels, chosen by tq (both are correct for every shape; the choice is speed only):
//
// * attention_rows_kernel (tq >= kRowsMinTq, prefill): one block of 128 threads per
//   (query block of BQ rows, head h, sequence b), keys in tiles of BK = 32 rows staged in
//   shared memory as fp32 (Q tile [BQ][HDMAX+4], K tile [BK][HDMAX+4], V tile [BK][HDMAX],
//   P tile [BQ][BK+8]; the pads keep the float4 reads conflict-free). Thread (ty, tx) =
//   (tid / 8, tid % 8) owns rows ty + 16 r and, for the scores, keys tx + 8 c, for the
//   output, dims 4 tx + 32 c .. +3; the 8 threads of a row are 8 adjacent lanes, so the
//   row max / sum are 3 shuffles. HDMAX in {64, 128, 256} (the smallest >= head_dim):
//   BQ = 64 (32 for 256). Tiles past the block's last causal key are never visited; the
//   ALiBi position of each key is warp 0's ballot prefix count over the tile plus the
//   count carried from the tiles before (a block always starts at key 0).
//
// * attention_decode_kernel (tq < kRowsMinTq, decode): one block of 128 threads per
//   (query row b*tq+i, kv head, chunk of GH query heads of its group, key split); GH = 4
//   for groups of 4, else 2 for even groups, else 1: the GH heads share every K and V
//   load (GQA/MQA read the cache once per chunk, not once per head; L2 serves the rest).
//   A head row is read by LPK lanes, 8 dims each (one 16-byte load for F16/BF16, two for
//   F32), LPK = the power of two >= ceil(hd / 8); the block's 128 / LPK lane groups ("slices") take the keys of each
//   512-key tile in turn, U keys per step (K and V loaded together and kept packed: U = 8
//   for 16-bit types, 4 for F32, halved at GH = 4), each slice with its own online softmax
//   per head; the slices are merged at the end flash-decoding style. The tile's
//   visibility and ALiBi positions come from a block prefix count over its mask bytes (4
//   per thread) plus the count carried from the tiles before (and the keys before the
//   split). When there are fewer blocks than twice the SMs, the keys are split over a
//   thread-block cluster of up to 8 blocks (flash-decoding without a workspace): each
//   block reduces its part to (max, sum, acc[hd]) per head in shared memory and block 0
//   of the cluster merges them through distributed shared memory. The split count depends
//   on the shapes and the device's SM count only (deterministic per device).
//
// Keys that are masked out (or beyond the causal end) are never loaded: their K/V rows
// are zeros in shared memory / registers, so uninitialised cache rows (even NaN bits)
// cannot leak into the output.
#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "runtime/backend/cuda/kernels.hpp"
#include "runtime/common/error.hpp"

namespace zinc::runtime::cuda {
namespace {

namespace cg = cooperative_groups;

// ---- private element helpers (load as fp32, store rounded to nearest even) ----

template <typename T>
__device__ __forceinline__ float ld1(const T* p);
template <>
__device__ __forceinline__ float ld1<float>(const float* p) {
  return *p;
}
template <>
__device__ __forceinline__ float ld1<__half>(const __half* p) {
  return __half2float(*p);
}
template <>
__device__ __forceinline__ float ld1<__nv_bfloat16>(const __nv_bfloat16* p) {
  return __bfloat162float(*p);
}

template <typename T>
__device__ __forceinline__ T st_cvt(float x);
template <>
__device__ __forceinline__ float st_cvt<float>(float x) {
  return x;
}
template <>
__device__ __forceinline__ __half st_cvt<__half>(float x) {
  return __float2half_rn(x);
}
template <>
__device__ __forceinline__ __nv_bfloat16 st_cvt<__nv_bfloat16>(float x) {
  return __float2bfloat16_rn(x);
}

__device__ __forceinline__ float2 u32_to_f2(uint32_t u, const __half*) {
  __half2 h;
  memcpy(&h, &u, 4);
  return __half22float2(h);
}
__device__ __forceinline__ float2 u32_to_f2(uint32_t u, const __nv_bfloat16*) {
  __nv_bfloat162 h;
  memcpy(&h, &u, 4);
  return __bfloat1622float2(h);
}

// 4 consecutive elements, p aligned to 4 elements.
__device__ __forceinline__ float4 ld4_aligned(const float* p) { return *reinterpret_cast<const float4*>(p); }
template <typename T>
__device__ __forceinline__ float4 ld4_aligned(const T* p) {
  const uint2 raw = *reinterpret_cast<const uint2*>(p);
  const float2 a = u32_to_f2(raw.x, p), b = u32_to_f2(raw.y, p);
  return make_float4(a.x, a.y, b.x, b.y);
}

// Elements p[0..3] with p[e] for e >= n read as 0 (n may be <= 0); vector load when `vec`
// (the caller's guarantee that p is 4-element aligned) and the 4 are all in range.
template <typename T>
__device__ __forceinline__ float4 ld4(const T* p, int n, bool vec) {
  if (vec && n >= 4) return ld4_aligned(p);
  float4 r = make_float4(0.f, 0.f, 0.f, 0.f);
  if (n > 0) r.x = ld1(p);
  if (n > 1) r.y = ld1(p + 1);
  if (n > 2) r.z = ld1(p + 2);
  if (n > 3) r.w = ld1(p + 3);
  return r;
}

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// ---- the rows kernel (prefill) ----

constexpr int kRowsThreads = 128;
constexpr int kRowsTY = 16;  // thread rows
constexpr int kRowsTX = 8;   // thread columns (adjacent lanes)
constexpr int kRowsBK = 32;  // keys per tile (= one warp for the mask ballot)
constexpr int kRowsMinTq = 8;

template <int HDMAX>
struct RowsCfg {
  static constexpr int BQ = HDMAX >= 256 ? 32 : 64;  // query rows per block
  static constexpr int BK = kRowsBK;
  static constexpr int RPT = BQ / kRowsTY;            // rows per thread
  static constexpr int KPT = BK / kRowsTX;            // score keys per thread
  static constexpr int DPT = HDMAX / (4 * kRowsTX);   // output float4 groups per thread
  static constexpr int QP = HDMAX + 4;                // Q / K tile pitch (floats)
  static constexpr int VP = HDMAX;                    // V tile pitch
  static constexpr int PP = BK + 8;                   // P tile pitch
  static constexpr int kFloats = BQ * QP + BK * QP + BK * VP + BQ * PP + BK + BK;
  static constexpr size_t kSmemBytes = sizeof(float) * kFloats;
};

template <typename T, int HDMAX>
__global__ void __launch_bounds__(kRowsThreads)
    attention_rows_kernel(const T* __restrict__ q, const T* __restrict__ kc, const T* __restrict__ vc,
                          const uint8_t* __restrict__ key_mask, const float* __restrict__ slopes,
                          AttentionShape sh, float scale, T* __restrict__ out, bool vec) {
  using C = RowsCfg<HDMAX>;
  constexpr int BQ = C::BQ, BK = C::BK, RPT = C::RPT, KPT = C::KPT, DPT = C::DPT;
  constexpr int QP = C::QP, VP = C::VP, PP = C::PP;
  constexpr int C4 = HDMAX / 4;  // float4 chunks per row

  extern __shared__ float4 smem_f4[];
  float* Q_s = reinterpret_cast<float*>(smem_f4);  // [BQ][QP]
  float* K_s = Q_s + BQ * QP;                       // [BK][QP]
  float* V_s = K_s + BK * QP;                       // [BK][VP]
  float* P_s = V_s + BK * VP;                       // [BQ][PP]
  float* pos_s = P_s + BQ * PP;                     // [BK] ALiBi positions
  int* vis_s = reinterpret_cast<int*>(pos_s + BK);  // [BK] 1 = key real and < kend

  const int qblocks = (sh.tq + BQ - 1) / BQ;
  const int qblk = qblocks - 1 - static_cast<int>(blockIdx.x);  // longest blocks first
  const int h = blockIdx.y, b = blockIdx.z;
  const int hd = sh.head_dim, H = sh.heads, KVH = sh.kv_heads;
  const int kvh = h / (H / KVH);
  const int q0 = qblk * BQ;
  const int tid = threadIdx.x, tx = tid % kRowsTX, ty = tid / kRowsTX;
  const float slope = slopes != nullptr ? slopes[h] : 0.0f;

  const int64_t q_stride = static_cast<int64_t>(H) * hd;  // q / out row length
  const T* qb = q + (static_cast<int64_t>(b) * sh.tq) * q_stride + static_cast<int64_t>(h) * hd;
  T* ob = out + (static_cast<int64_t>(b) * sh.tq) * q_stride + static_cast<int64_t>(h) * hd;
  const int64_t kv_stride = static_cast<int64_t>(KVH) * hd;  // between keys j and j+1
  const int64_t kv_off = static_cast<int64_t>(b) * sh.t_max * kv_stride + static_cast<int64_t>(kvh) * hd;
  const T* kb = kc + kv_off;
  const T* vb = vc + kv_off;
  const uint8_t* mrow = key_mask + static_cast<int64_t>(b) * sh.t_max;

  // Q tile, zero past hd and past tq.
  for (int idx = tid; idx < BQ * C4; idx += kRowsThreads) {
    const int r = idx / C4, d0 = (idx % C4) * 4;
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (q0 + r < sh.tq) v = ld4(qb + (q0 + r) * q_stride + d0, hd - d0, vec);
    *reinterpret_cast<float4*>(Q_s + r * QP + d0) = v;
  }

  // Keys this block can see: 0 .. t0 + (its last row).
  const int last_row = min(q0 + BQ, sh.tq) - 1;
  const int kend = sh.t0 + last_row + 1;
  const int hd4 = (hd + 3) & ~3;

  float m[RPT], l[RPT];
  float4 acc[RPT][DPT];
  int lim[RPT];  // row r sees keys j <= lim[r] (-1: a padding row of the block)
#pragma unroll
  for (int r = 0; r < RPT; ++r) {
    m[r] = -INFINITY;
    l[r] = 0.0f;
    const int i = q0 + ty + kRowsTY * r;
    lim[r] = i < sh.tq ? sh.t0 + i : -1;
#pragma unroll
    for (int c = 0; c < DPT; ++c) acc[r][c] = make_float4(0.f, 0.f, 0.f, 0.f);
  }
  int run = 0;  // warp 0: real keys before the current tile

  for (int kt = 0; kt < kend; kt += BK) {
    // K and V tiles (zero rows for keys that are masked or past kend).
    for (int idx = tid; idx < BK * C4; idx += kRowsThreads) {
      const int r = idx / C4, d0 = (idx % C4) * 4, j = kt + r;
      float4 kv = make_float4(0.f, 0.f, 0.f, 0.f), vv = kv;
      if (j < kend && mrow[j] != 0) {
        kv = ld4(kb + j * kv_stride + d0, hd - d0, vec);
        vv = ld4(vb + j * kv_stride + d0, hd - d0, vec);
      }
      *reinterpret_cast<float4*>(K_s + r * QP + d0) = kv;
      *reinterpret_cast<float4*>(V_s + r * VP + d0) = vv;
    }
    if (tid < 32) {  // BK == 32: one key per lane
      const int j = kt + tid;
      const bool real = j < kend && mrow[j] != 0;
      const unsigned ballot = __ballot_sync(0xffffffffu, real);
      pos_s[tid] = static_cast<float>(run + __popc(ballot & ((1u << tid) - 1u)));
      vis_s[tid] = real ? 1 : 0;
      run += __popc(ballot);
    }
    __syncthreads();

    // Scores of rows ty + 16 r, keys tx + 8 c.
    float s[RPT][KPT];
#pragma unroll
    for (int r = 0; r < RPT; ++r)
#pragma unroll
      for (int c = 0; c < KPT; ++c) s[r][c] = 0.0f;
#pragma unroll 4
    for (int d = 0; d < hd4; d += 4) {
      float4 qv[RPT], kv[KPT];
#pragma unroll
      for (int r = 0; r < RPT; ++r) qv[r] = *reinterpret_cast<const float4*>(Q_s + (ty + kRowsTY * r) * QP + d);
#pragma unroll
      for (int c = 0; c < KPT; ++c) kv[c] = *reinterpret_cast<const float4*>(K_s + (tx + kRowsTX * c) * QP + d);
#pragma unroll
      for (int r = 0; r < RPT; ++r)
#pragma unroll
        for (int c = 0; c < KPT; ++c) {
          s[r][c] = fmaf(qv[r].x, kv[c].x, s[r][c]);
          s[r][c] = fmaf(qv[r].y, kv[c].y, s[r][c]);
          s[r][c] = fmaf(qv[r].z, kv[c].z, s[r][c]);
          s[r][c] = fmaf(qv[r].w, kv[c].w, s[r][c]);
        }
    }

    // Online softmax per row; P to shared memory.
#pragma unroll
    for (int r = 0; r < RPT; ++r) {
      float mx = -INFINITY;
#pragma unroll
      for (int c = 0; c < KPT; ++c) {
        const int kk = tx + kRowsTX * c;
        const int j = kt + kk;
        s[r][c] = (vis_s[kk] != 0 && j <= lim[r]) ? s[r][c] * scale + slope * pos_s[kk] : -INFINITY;
        mx = fmaxf(mx, s[r][c]);
      }
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 4));
      const float m_new = fmaxf(m[r], mx);
      float alpha = 1.0f;
      float psum = 0.0f;
      float* prow = P_s + (ty + kRowsTY * r) * PP;
      if (m_new == -INFINITY) {  // nothing visible yet in this row
#pragma unroll
        for (int c = 0; c < KPT; ++c) prow[tx + kRowsTX * c] = 0.0f;
      } else {
        alpha = expf(m[r] - m_new);  // m = -inf -> 0 (acc and l are 0 then anyway)
#pragma unroll
        for (int c = 0; c < KPT; ++c) {
          const float p = expf(s[r][c] - m_new);  // s = -inf -> 0
          psum += p;
          prow[tx + kRowsTX * c] = p;
        }
      }
      m[r] = m_new;
      l[r] = l[r] * alpha + psum;  // this thread's part of the row sum (same alpha on all 8)
#pragma unroll
      for (int c = 0; c < DPT; ++c) {
        acc[r][c].x *= alpha;
        acc[r][c].y *= alpha;
        acc[r][c].z *= alpha;
        acc[r][c].w *= alpha;
      }
    }
    __syncthreads();

    // acc += P V over the tile.
#pragma unroll 4
    for (int kk = 0; kk < BK; ++kk) {
      float p[RPT];
#pragma unroll
      for (int r = 0; r < RPT; ++r) p[r] = P_s[(ty + kRowsTY * r) * PP + kk];
#pragma unroll
      for (int c = 0; c < DPT; ++c) {
        if (32 * c < hd) {  // uniform: skip float4 groups wholly past hd
          const float4 vv = *reinterpret_cast<const float4*>(V_s + kk * VP + 4 * tx + 32 * c);
#pragma unroll
          for (int r = 0; r < RPT; ++r) {
            acc[r][c].x = fmaf(p[r], vv.x, acc[r][c].x);
            acc[r][c].y = fmaf(p[r], vv.y, acc[r][c].y);
            acc[r][c].z = fmaf(p[r], vv.z, acc[r][c].z);
            acc[r][c].w = fmaf(p[r], vv.w, acc[r][c].w);
          }
        }
      }
    }
    __syncthreads();  // K_s, V_s, P_s, pos_s, vis_s are rewritten next tile
  }

  // out = acc / l (zeros for a row that saw no key).
#pragma unroll
  for (int r = 0; r < RPT; ++r) {
    float lt = l[r];
    lt += __shfl_xor_sync(0xffffffffu, lt, 1);
    lt += __shfl_xor_sync(0xffffffffu, lt, 2);
    lt += __shfl_xor_sync(0xffffffffu, lt, 4);
    const int i = q0 + ty + kRowsTY * r;
    if (i >= sh.tq) continue;
    const float inv = lt > 0.0f ? 1.0f / lt : 0.0f;
    T* orow = ob + i * q_stride;
#pragma unroll
    for (int c = 0; c < DPT; ++c) {
      const int d0 = 4 * tx + 32 * c;
      const float vals[4] = {acc[r][c].x, acc[r][c].y, acc[r][c].z, acc[r][c].w};
#pragma unroll
      for (int e = 0; e < 4; ++e)
        if (d0 + e < hd) orow[d0 + e] = st_cvt<T>(lt > 0.0f ? vals[e] * inv : 0.0f);
    }
  }
}

// ---- the decode kernel ----

constexpr int kDecThreads = 128;
constexpr int kDecTile = 512;                      // keys per tile (4 per thread in the mask scan)
constexpr int kDecScan = kDecTile / kDecThreads;   // keys per thread in the scan
constexpr int kDecElems = 8;                       // head dims per lane
constexpr int kMaxSplits = 8;                      // portable cluster size

// 8 consecutive elements of a K or V row, kept packed until used.
template <typename T>
struct Chunk8 {
  uint4 r;  // 8 x 16 bits
};
template <>
struct Chunk8<float> {
  float4 a, b;
};

__device__ __forceinline__ void load_chunk(const float* p, int n, bool vec, Chunk8<float>& c) {
  if (vec && n >= 8) {
    c.a = reinterpret_cast<const float4*>(p)[0];
    c.b = reinterpret_cast<const float4*>(p)[1];
    return;
  }
  float f[8];
#pragma unroll
  for (int e = 0; e < 8; ++e) f[e] = e < n ? p[e] : 0.0f;
  c.a = make_float4(f[0], f[1], f[2], f[3]);
  c.b = make_float4(f[4], f[5], f[6], f[7]);
}
template <typename T>
__device__ __forceinline__ void load_chunk(const T* p, int n, bool vec, Chunk8<T>& c) {
  if (vec && n >= 8) {
    c.r = *reinterpret_cast<const uint4*>(p);
    return;
  }
  const unsigned short* ps = reinterpret_cast<const unsigned short*>(p);
  uint32_t w[4];
#pragma unroll
  for (int e = 0; e < 4; ++e) {
    const uint32_t lo = 2 * e < n ? ps[2 * e] : 0u, hi = 2 * e + 1 < n ? ps[2 * e + 1] : 0u;  // 0 bits = +0
    w[e] = lo | (hi << 16);
  }
  c.r = make_uint4(w[0], w[1], w[2], w[3]);
}
__device__ __forceinline__ void zero_chunk(Chunk8<float>& c) { c.a = c.b = make_float4(0.f, 0.f, 0.f, 0.f); }
template <typename T>
__device__ __forceinline__ void zero_chunk(Chunk8<T>& c) {
  c.r = make_uint4(0u, 0u, 0u, 0u);
}
__device__ __forceinline__ void chunk_to_f32(const Chunk8<float>& c, float* f) {
  f[0] = c.a.x, f[1] = c.a.y, f[2] = c.a.z, f[3] = c.a.w, f[4] = c.b.x, f[5] = c.b.y, f[6] = c.b.z, f[7] = c.b.w;
}
template <typename T>
__device__ __forceinline__ void chunk_to_f32(const Chunk8<T>& c, float* f) {
  const T* tag = nullptr;
  const float2 a = u32_to_f2(c.r.x, tag), b = u32_to_f2(c.r.y, tag), d = u32_to_f2(c.r.z, tag),
               e = u32_to_f2(c.r.w, tag);
  f[0] = a.x, f[1] = a.y, f[2] = b.x, f[3] = b.y, f[4] = d.x, f[5] = d.y, f[6] = e.x, f[7] = e.y;
}

// Keys per slice per step: as many as the registers allow (K and V chunks are 8 or 16 regs
// per key for 16-bit / fp32 elements; GH heads add 18 regs each).
template <typename T, int GH>
constexpr int dec_unroll() {
  return (sizeof(T) == 4 ? 4 : 8) / (GH >= 4 ? 2 : 1);
}

// Block: (query row b*tq+i, kv head kvh, chunk hc of GH of its query heads, key split).
// Query heads h = kvh * G + hc * GH + gh, gh < GH, share every K and V load.
template <typename T, int GH>
__global__ void __launch_bounds__(kDecThreads)
    attention_decode_kernel(const T* __restrict__ q, const T* __restrict__ kc, const T* __restrict__ vc,
                            const uint8_t* __restrict__ key_mask, const float* __restrict__ slopes,
                            AttentionShape sh, float scale, T* __restrict__ out, int splits, int lpk,
                            bool vec) {
  constexpr int U = dec_unroll<T, GH>();
  __shared__ float posv_s[kDecTile];  // ALiBi position of a visible key, -1 for an invisible one
  __shared__ int warp_cnt[kDecThreads / 32];
  __shared__ float m_s[GH][kDecThreads], l_s[GH][kDecThreads];
  __shared__ float acc_s[GH][kDecThreads * kDecElems];  // [gh][slice][lpk * 8]: thread t's at t * 8
  __shared__ float res_s[GH][2 + 256];                  // this block's {max, sum, acc[hd]} per head

  const int H = sh.heads, KVH = sh.kv_heads, hd = sh.head_dim;
  const int G = H / KVH, hchunks = G / GH;
  const int split = static_cast<int>(blockIdx.x % splits);
  int unit = static_cast<int>(blockIdx.x / splits);
  const int hc = unit % hchunks;
  unit /= hchunks;
  const int kvh = unit % KVH;
  const int bi = unit / KVH;  // b * tq + i
  const int b = bi / sh.tq, i = bi % sh.tq;
  const int h0 = kvh * G + hc * GH;  // first query head of the block
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int nslices = kDecThreads / lpk;
  const int slice = tid / lpk, g = tid % lpk;  // lane groups never straddle warps (lpk | 32)
  const int d0 = g * kDecElems;                // this lane's first dim
  const int per_slice = kDecTile / nslices;    // tile keys per slice (= kDecScan * lpk)

  float slope[GH];
#pragma unroll
  for (int gh = 0; gh < GH; ++gh) slope[gh] = slopes != nullptr ? slopes[h0 + gh] : 0.0f;

  // This split's keys [kbeg, kend) of 0 .. t0 + i.
  const int klen = sh.t0 + i + 1;
  const int chunk = (klen + splits - 1) / splits;
  const int kbeg = min(split * chunk, klen), kend = min(kbeg + chunk, klen);

  const int64_t q_stride = static_cast<int64_t>(H) * hd;
  float qv[GH][kDecElems];
#pragma unroll
  for (int gh = 0; gh < GH; ++gh) {
    Chunk8<T> c;
    load_chunk(q + bi * q_stride + static_cast<int64_t>(h0 + gh) * hd + d0, hd - d0, vec, c);
    chunk_to_f32(c, qv[gh]);
  }

  const int64_t kv_stride = static_cast<int64_t>(KVH) * hd;
  const int64_t kv_off = static_cast<int64_t>(b) * sh.t_max * kv_stride + static_cast<int64_t>(kvh) * hd + d0;
  const T* kb = kc + kv_off;
  const T* vb = vc + kv_off;
  const uint8_t* mrow = key_mask + static_cast<int64_t>(b) * sh.t_max;

  // ALiBi: real keys before kbeg.
  int run = 0;
  if (slopes != nullptr) {
    int c = 0;
    for (int j = tid; j < kbeg; j += kDecThreads) c += mrow[j] != 0;
    c = static_cast<int>(__reduce_add_sync(0xffffffffu, static_cast<unsigned>(c)));
    if (lane == 0) warp_cnt[warp] = c;
    __syncthreads();
#pragma unroll
    for (int w = 0; w < kDecThreads / 32; ++w) run += warp_cnt[w];
    __syncthreads();
  }

  float m[GH], l[GH], acc[GH][kDecElems];
#pragma unroll
  for (int gh = 0; gh < GH; ++gh) {
    m[gh] = -INFINITY;
    l[gh] = 0.0f;
#pragma unroll
    for (int e = 0; e < kDecElems; ++e) acc[gh][e] = 0.0f;
  }

  for (int tile = kbeg; tile < kend; tile += kDecTile) {
    {  // visibility and ALiBi positions of the tile's keys: thread t scans keys 4t .. 4t+3
      bool real[kDecScan];
      int cnt = 0;
#pragma unroll
      for (int e = 0; e < kDecScan; ++e) {
        const int j = tile + kDecScan * tid + e;
        real[e] = j < kend && mrow[j] != 0;
        cnt += real[e];
      }
      int incl = cnt;
#pragma unroll
      for (int off = 1; off < 32; off <<= 1) {
        const int n = __shfl_up_sync(0xffffffffu, incl, off);
        if (lane >= off) incl += n;
      }
      if (lane == 31) warp_cnt[warp] = incl;
      __syncthreads();
      int before = 0, total = 0;
#pragma unroll
      for (int w = 0; w < kDecThreads / 32; ++w) {
        const int cw = warp_cnt[w];
        before += w < warp ? cw : 0;
        total += cw;
      }
      int pos = run + before + incl - cnt;
#pragma unroll
      for (int e = 0; e < kDecScan; ++e) {
        posv_s[kDecScan * tid + e] = real[e] ? static_cast<float>(pos) : -1.0f;
        pos += real[e];
      }
      run += total;
      __syncthreads();
    }
    // Slice `slice` takes tile keys slice + nslices * u, u < per_slice, U at a time.
    for (int u0 = 0; u0 < per_slice; u0 += U) {
      Chunk8<T> kr[U], vr[U];
      float pv[U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const int kk = slice + nslices * (u0 + u);
        pv[u] = u0 + u < per_slice ? posv_s[kk] : -1.0f;
        if (pv[u] >= 0.0f) {
          const int64_t off = static_cast<int64_t>(tile + kk) * kv_stride;
          load_chunk(kb + off, hd - d0, vec, kr[u]);
          load_chunk(vb + off, hd - d0, vec, vr[u]);
        } else {
          zero_chunk(kr[u]);
          zero_chunk(vr[u]);
        }
      }
      float s[GH][U];
#pragma unroll
      for (int u = 0; u < U; ++u) {
        float kf[kDecElems];
        chunk_to_f32(kr[u], kf);
#pragma unroll
        for (int gh = 0; gh < GH; ++gh) {
          float dot = 0.0f;
#pragma unroll
          for (int e = 0; e < kDecElems; ++e) dot = fmaf(qv[gh][e], kf[e], dot);
          for (int off = lpk >> 1; off > 0; off >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, off);
          s[gh][u] = pv[u] >= 0.0f ? dot * scale + slope[gh] * pv[u] : -INFINITY;
        }
      }
      float p[GH][U];
      bool any = false;
#pragma unroll
      for (int gh = 0; gh < GH; ++gh) {
        float mx = -INFINITY;
#pragma unroll
        for (int u = 0; u < U; ++u) mx = fmaxf(mx, s[gh][u]);
        const float m_new = fmaxf(m[gh], mx);
        if (m_new != -INFINITY) {  // uniform within the slice
          const float alpha = expf(m[gh] - m_new);
          l[gh] *= alpha;
#pragma unroll
          for (int e = 0; e < kDecElems; ++e) acc[gh][e] *= alpha;
#pragma unroll
          for (int u = 0; u < U; ++u) {
            p[gh][u] = expf(s[gh][u] - m_new);
            l[gh] += p[gh][u];
          }
          m[gh] = m_new;
          any = true;
        } else {
#pragma unroll
          for (int u = 0; u < U; ++u) p[gh][u] = 0.0f;
        }
      }
      if (any) {
#pragma unroll
        for (int u = 0; u < U; ++u) {
          float vf[kDecElems];
          chunk_to_f32(vr[u], vf);
#pragma unroll
          for (int gh = 0; gh < GH; ++gh)
#pragma unroll
            for (int e = 0; e < kDecElems; ++e) acc[gh][e] = fmaf(p[gh][u], vf[e], acc[gh][e]);
        }
      }
    }
    __syncthreads();  // posv_s and warp_cnt are rewritten next tile
  }

  // Merge the slices: this block's (M, L, o[hd]) per head into res_s.
#pragma unroll
  for (int gh = 0; gh < GH; ++gh) {
    if (g == 0) {
      m_s[gh][slice] = m[gh];
      l_s[gh][slice] = l[gh];
    }
#pragma unroll
    for (int e = 0; e < kDecElems; ++e) acc_s[gh][tid * kDecElems + e] = acc[gh][e];
  }
  __syncthreads();
  const int row_floats = lpk * kDecElems;  // one slice's acc block in acc_s
#pragma unroll
  for (int gh = 0; gh < GH; ++gh) {
    float M = -INFINITY;
    for (int c = 0; c < nslices; ++c) M = fmaxf(M, m_s[gh][c]);
    float L = 0.0f;
    if (M != -INFINITY)
      for (int c = 0; c < nslices; ++c)
        if (m_s[gh][c] != -INFINITY) L += l_s[gh][c] * expf(m_s[gh][c] - M);
    for (int d = tid; d < hd; d += kDecThreads) {
      float o = 0.0f;
      if (M != -INFINITY)
        for (int c = 0; c < nslices; ++c)
          if (m_s[gh][c] != -INFINITY) o += acc_s[gh][c * row_floats + d] * expf(m_s[gh][c] - M);
      res_s[gh][2 + d] = o;
    }
    if (tid == 0) {
      res_s[gh][0] = M;
      res_s[gh][1] = L;
    }
  }

  T* orow = out + bi * q_stride + static_cast<int64_t>(h0) * hd;  // head h0 + gh at gh * hd
  if (splits == 1) {
    __syncthreads();
#pragma unroll
    for (int gh = 0; gh < GH; ++gh) {
      const float L = res_s[gh][1];
      const float inv = L > 0.0f ? 1.0f / L : 0.0f;
      for (int d = tid; d < hd; d += kDecThreads)
        orow[gh * hd + d] = st_cvt<T>(L > 0.0f ? res_s[gh][2 + d] * inv : 0.0f);
    }
    return;
  }
  // Across the cluster's blocks (one per split): block rank 0 merges through DSMEM.
  cg::cluster_group cluster = cg::this_cluster();
  cluster.sync();
  if (cluster.block_rank() == 0) {
    const int n = static_cast<int>(cluster.num_blocks());
#pragma unroll
    for (int gh = 0; gh < GH; ++gh) {
      float Mg = -INFINITY;
      for (int r = 0; r < n; ++r) Mg = fmaxf(Mg, cluster.map_shared_rank(&res_s[gh][0], r)[0]);
      float Lg = 0.0f;
      if (Mg != -INFINITY)
        for (int r = 0; r < n; ++r) {
          const float* rr = cluster.map_shared_rank(&res_s[gh][0], r);
          if (rr[0] != -INFINITY) Lg += rr[1] * expf(rr[0] - Mg);
        }
      const float inv = Lg > 0.0f ? 1.0f / Lg : 0.0f;
      for (int d = tid; d < hd; d += kDecThreads) {
        float o = 0.0f;
        if (Mg != -INFINITY)
          for (int r = 0; r < n; ++r) {
            const float* rr = cluster.map_shared_rank(&res_s[gh][0], r);
            if (rr[0] != -INFINITY) o += rr[2 + d] * expf(rr[0] - Mg);
          }
        orow[gh * hd + d] = st_cvt<T>(Lg > 0.0f ? o * inv : 0.0f);
      }
    }
  }
  cluster.sync();  // peers' shared memory stays alive until block 0 has read it
}

// ---- launch ----

int sm_count() {
  int dev = 0, n = 0;
  ZINC_CUDA_CHECK(cudaGetDevice(&dev));
  ZINC_CUDA_CHECK(cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, dev));
  return n > 0 ? n : 1;
}

template <typename T, int HDMAX>
void launch_rows(const T* q, const T* k, const T* v, const uint8_t* mask, const float* slopes,
                 const AttentionShape& sh, float scale, T* out, bool vec, cudaStream_t s) {
  using C = RowsCfg<HDMAX>;
  auto kernel = attention_rows_kernel<T, HDMAX>;
  ZINC_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(C::kSmemBytes)));
  const dim3 grid((sh.tq + C::BQ - 1) / C::BQ, sh.heads, sh.batch);
  kernel<<<grid, kRowsThreads, C::kSmemBytes, s>>>(q, k, v, mask, slopes, sh, scale, out, vec);
  ZINC_CUDA_LAUNCH_CHECK(attention_rows_kernel);
}

template <typename T, int GH>
void launch_decode(const T* q, const T* k, const T* v, const uint8_t* mask, const float* slopes,
                   const AttentionShape& sh, float scale, T* out, bool vec, cudaStream_t s) {
  const int group = sh.heads / sh.kv_heads;
  const int64_t units = static_cast<int64_t>(sh.batch) * sh.tq * sh.kv_heads * (group / GH);
  const int chunks = (sh.head_dim + kDecElems - 1) / kDecElems;
  int lpk = 1;
  while (lpk < chunks) lpk *= 2;
  // Key splits (a cluster per unit) while the units leave SMs idle; >= 256 keys per split.
  const int n_keys = sh.t0 + sh.tq;
  int splits = 1;
  const int64_t target = 2 * static_cast<int64_t>(sm_count());
  if (units < target) {
    splits = static_cast<int>((target + units - 1) / units);
    splits = min(splits, kMaxSplits);
    splits = min(splits, (n_keys + 255) / 256);
    splits = max(splits, 1);
  }
  ZINC_CHECK(units * splits <= 0x7fffffff, "attention: too many query rows (" << units << " blocks)");
  const unsigned blocks = static_cast<unsigned>(units * splits);
  auto kernel = attention_decode_kernel<T, GH>;
  if (splits == 1) {
    kernel<<<blocks, kDecThreads, 0, s>>>(q, k, v, mask, slopes, sh, scale, out, 1, lpk, vec);
    ZINC_CUDA_LAUNCH_CHECK(attention_decode_kernel);
    return;
  }
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(blocks, 1, 1);
  cfg.blockDim = dim3(kDecThreads, 1, 1);
  cfg.dynamicSmemBytes = 0;
  cfg.stream = s;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeClusterDimension;
  attr[0].val.clusterDim.x = static_cast<unsigned>(splits);
  attr[0].val.clusterDim.y = 1;
  attr[0].val.clusterDim.z = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  ZINC_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kernel, q, k, v, mask, slopes, sh, scale, out, splits, lpk, vec));
  ZINC_CUDA_LAUNCH_CHECK(attention_decode_kernel);
}

template <typename T>
void attention_typed(const void* q, const void* k_cache, const void* v_cache, const uint8_t* key_mask,
                     const float* alibi_slopes, const AttentionShape& sh, float scale, void* out,
                     cudaStream_t s) {
  const T* qt = static_cast<const T*>(q);
  const T* kt = static_cast<const T*>(k_cache);
  const T* vt = static_cast<const T*>(v_cache);
  T* ot = static_cast<T*>(out);
  const bool aligned = aligned16(q) && aligned16(k_cache) && aligned16(v_cache);
  if (sh.tq < kRowsMinTq) {
    // Vector loads of 8 elements: rows and lane offsets are multiples of 8 elements.
    const bool vec = aligned && sh.head_dim % 8 == 0;
    // Query heads of a group share each K/V load: all 4 of a group of 4, else 2 of an even
    // group (measured on the H200: for groups of 8, chunks of 2 heads beat chunks of 4,
    // which halve the keys in flight per step), else 1.
    const int group = sh.heads / sh.kv_heads;
    if (group == 4)
      launch_decode<T, 4>(qt, kt, vt, key_mask, alibi_slopes, sh, scale, ot, vec, s);
    else if (group % 2 == 0)
      launch_decode<T, 2>(qt, kt, vt, key_mask, alibi_slopes, sh, scale, ot, vec, s);
    else
      launch_decode<T, 1>(qt, kt, vt, key_mask, alibi_slopes, sh, scale, ot, vec, s);
    return;
  }
  const bool vec = aligned && sh.head_dim % 4 == 0;  // loads of 4 elements
  if (sh.head_dim <= 64)
    launch_rows<T, 64>(qt, kt, vt, key_mask, alibi_slopes, sh, scale, ot, vec, s);
  else if (sh.head_dim <= 128)
    launch_rows<T, 128>(qt, kt, vt, key_mask, alibi_slopes, sh, scale, ot, vec, s);
  else
    launch_rows<T, 256>(qt, kt, vt, key_mask, alibi_slopes, sh, scale, ot, vec, s);
}

}  // namespace

void attention(quant::DType t, const void* q, const void* k_cache, const void* v_cache, const uint8_t* key_mask,
               const float* alibi_slopes, const AttentionShape& sh, float scale, void* out, cudaStream_t s) {
  ZINC_CHECK(sh.batch >= 0 && sh.tq >= 0 && sh.t0 >= 0 && sh.heads > 0 && sh.kv_heads > 0 && sh.head_dim > 0,
             "attention: bad shape (batch " << sh.batch << ", tq " << sh.tq << ", t0 " << sh.t0 << ", heads "
                                            << sh.heads << ", kv_heads " << sh.kv_heads << ", head_dim "
                                            << sh.head_dim << ")");
  ZINC_CHECK(sh.heads % sh.kv_heads == 0,
             "attention: " << sh.heads << " query heads are not a multiple of " << sh.kv_heads << " kv heads");
  ZINC_CHECK(sh.head_dim <= 256, "attention: head_dim " << sh.head_dim << " > 256 is not supported");
  ZINC_CHECK(sh.t0 + sh.tq <= sh.t_max,
             "attention: keys 0.." << sh.t0 + sh.tq - 1 << " exceed the cache (t_max " << sh.t_max << ")");
  ZINC_CHECK(sh.heads <= 65535 && sh.batch <= 65535, "attention: heads / batch beyond the grid limits");
  if (sh.batch == 0 || sh.tq == 0) return;
  ZINC_CHECK(q != nullptr && k_cache != nullptr && v_cache != nullptr && key_mask != nullptr && out != nullptr,
             "attention: q, caches, key_mask and out must not be null");
  switch (t) {
    case quant::DType::F32:
      attention_typed<float>(q, k_cache, v_cache, key_mask, alibi_slopes, sh, scale, out, s);
      break;
    case quant::DType::F16:
      attention_typed<__half>(q, k_cache, v_cache, key_mask, alibi_slopes, sh, scale, out, s);
      break;
    case quant::DType::BF16:
      attention_typed<__nv_bfloat16>(q, k_cache, v_cache, key_mask, alibi_slopes, sh, scale, out, s);
      break;
    default:
      ZINC_THROW("attention: element type " << quant::dtype_name(t) << " is not F32, F16 or BF16");
  }
}

}  // namespace zinc::runtime::cuda
