// attention_decode.cu: the decode kernel of kernels.hpp's `attention` (tq < kRowsMinTq,
// flash-decoding) and its launcher attn::launch_decode; attention.cu describes the
// semantics and chooses between this kernel and the rows kernel (attention_prefill.cu).
//
// attention_decode_kernel: one block of 128 threads per (query row b*tq+i, kv head, chunk
// of GH query heads of its group, key split); GH = 4 for groups of 4, else 2 for even
// groups, else 1: the GH heads share every K and V load (GQA/MQA read the cache once per
// chunk, not once per head; L2 serves the rest). A head row is read by LPK lanes, 8 dims
// each (one 16-byte load for F16/BF16, two for F32), LPK = the power of two >= ceil(hd /
// 8); the block's 128 / LPK lane groups ("slices") take the keys of each 512-key tile in
// turn, U keys per step (K and V loaded together and kept packed: U = 8 for 16-bit types,
// 4 for F32, halved at GH = 4), each slice with its own online softmax per head; the
// slices are merged at the end flash-decoding style. The tile's visibility and ALiBi
// positions come from a block prefix count over its mask bytes (4 per thread) plus the
// count carried from the tiles before (and the keys before the split). When there are
// fewer blocks than twice the SMs, the keys are split over a thread-block cluster of up
// to 8 blocks (flash-decoding without a workspace): each block reduces its part to (max,
// sum, acc[hd]) per head in shared memory and block 0 of the cluster merges them through
// distributed shared memory. The split count depends on the shapes and the device's SM
// count only (deterministic per device). Masked keys (and keys past the causal end) are
// never loaded: their K/V chunks are zeros in registers.
#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "runtime/backend/cuda/attention_common.cuh"
#include "runtime/backend/cuda/kernels.hpp"
#include "runtime/common/error.hpp"

namespace zinc::runtime::cuda::attn {
namespace {

namespace cg = cooperative_groups;

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
        orow[gh * hd + d] = from_f32<T>(L > 0.0f ? res_s[gh][2 + d] * inv : 0.0f);
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
        orow[gh * hd + d] = from_f32<T>(Lg > 0.0f ? o * inv : 0.0f);
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

template <typename T, int GH>
void launch_decode_heads(const T* q, const T* k, const T* v, const uint8_t* mask, const float* slopes,
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

}  // namespace

template <typename T>
void launch_decode(const T* q, const T* k, const T* v, const uint8_t* key_mask, const float* slopes,
                   const AttentionShape& sh, float scale, T* out, bool aligned, cudaStream_t s) {
  // Vector loads of 8 elements: rows and lane offsets are multiples of 8 elements.
  const bool vec = aligned && sh.head_dim % 8 == 0;
  // Query heads of a group share each K/V load: all 4 of a group of 4, else 2 of an even
  // group (measured on the H200: for groups of 8, chunks of 2 heads beat chunks of 4,
  // which halve the keys in flight per step), else 1.
  const int group = sh.heads / sh.kv_heads;
  if (group == 4)
    launch_decode_heads<T, 4>(q, k, v, key_mask, slopes, sh, scale, out, vec, s);
  else if (group % 2 == 0)
    launch_decode_heads<T, 2>(q, k, v, key_mask, slopes, sh, scale, out, vec, s);
  else
    launch_decode_heads<T, 1>(q, k, v, key_mask, slopes, sh, scale, out, vec, s);
}

ZINC_ATTN_INSTANTIATE(launch_decode);

}  // namespace zinc::runtime::cuda::attn
