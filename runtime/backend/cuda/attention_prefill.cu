// attention_prefill.cu: the rows kernel of kernels.hpp's `attention` (tq >= kRowsMinTq,
// prefill, where the tensor-core kernel attention_prefill_mma.cu does not fit: F32, head_dim
// not 64 / 128, unaligned pointers) and of attention_prefill_reference (any shape), with its
// launcher attn::launch_prefill; attention.cu describes the semantics and chooses between
// the kernels.
//
// attention_rows_kernel: one block of 128 threads per (query block of BQ rows, head h,
// sequence b), keys in tiles of BK = 32 rows staged in shared memory as fp32 (Q tile
// [BQ][HDMAX+4], K tile [BK][HDMAX+4], V tile [BK][HDMAX], P tile [BQ][BK+8]; the pads keep
// the float4 reads conflict-free). Thread (ty, tx) = (tid / 8, tid % 8) owns rows ty + 16 r
// and, for the scores, keys tx + 8 c, for the output, dims 4 tx + 32 c .. +3; the 8 threads
// of a row are 8 adjacent lanes, so the row max / sum are 3 shuffles. HDMAX in {64, 128,
// 256} (the smallest >= head_dim): BQ = 64 (32 for 256). Tiles past the block's last causal
// key are never visited; the ALiBi position of each key is warp 0's ballot prefix count
// over the tile plus the count carried from the tiles before (a block always starts at key
// 0). Masked keys (and keys past the causal end) are never loaded: their K/V rows are
// zeros in shared memory.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "runtime/backend/cuda/attention_common.cuh"
#include "runtime/backend/cuda/kernels.hpp"
#include "runtime/common/error.hpp"

namespace zinc::runtime::cuda::attn {
namespace {

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
  if (n > 0) r.x = load_f32(p);
  if (n > 1) r.y = load_f32(p + 1);
  if (n > 2) r.z = load_f32(p + 2);
  if (n > 3) r.w = load_f32(p + 3);
  return r;
}

// ---- the rows kernel ----

constexpr int kRowsThreads = 128;
constexpr int kRowsTY = 16;  // thread rows
constexpr int kRowsTX = 8;   // thread columns (adjacent lanes)
constexpr int kRowsBK = 32;  // keys per tile (= one warp for the mask ballot)

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
        if (d0 + e < hd) orow[d0 + e] = from_f32<T>(lt > 0.0f ? vals[e] * inv : 0.0f);
    }
  }
}

// ---- launch ----

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

}  // namespace

template <typename T>
void launch_prefill(const T* q, const T* k, const T* v, const uint8_t* key_mask, const float* slopes,
                    const AttentionShape& sh, float scale, T* out, bool aligned, cudaStream_t s) {
  const bool vec = aligned && sh.head_dim % 4 == 0;  // loads of 4 elements
  if (sh.head_dim <= 64)
    launch_rows<T, 64>(q, k, v, key_mask, slopes, sh, scale, out, vec, s);
  else if (sh.head_dim <= 128)
    launch_rows<T, 128>(q, k, v, key_mask, slopes, sh, scale, out, vec, s);
  else
    launch_rows<T, 256>(q, k, v, key_mask, slopes, sh, scale, out, vec, s);
}

ZINC_ATTN_INSTANTIATE(launch_prefill);

}  // namespace zinc::runtime::cuda::attn
