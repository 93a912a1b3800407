// attention_prefill_mma.cu: the tensor-core prefill kernel of kernels.hpp's `attention`
// (tq >= kRowsMinTq, T = __half or __nv_bfloat16, head_dim 64 or 128, q/k/v/out 16-byte
// aligned: attn::prefill_mma_fits) and its launcher attn::launch_prefill_mma; every other
// prefill shape runs the rows kernel (attention_prefill.cu). attention.cu describes the
// semantics, which this kernel shares with the others (causal, key mask, GQA/MQA, ALiBi
// with p(b, j) = real keys of b before j, zeros for a query that sees no key).
//
// FlashAttention-2 on mma.sync.m16n8k16 (row.col, fp32 accumulators); the block algorithm
// is attention_prefill_mma.cuh's prefill_block, written over the PTX primitives below.
// Grid (heads, batch, query blocks), the query-block index reversed so that the blocks
// with the most keys (the last rows, under the causal mask) are scheduled first; GQA heads
// sharing a kv head are neighbours in x, their K/V reads hit L2 together. A block: 4 warps
// (128 threads), 64 query rows (warp w: rows 16 w .. 16 w + 15), keys in tiles of 64.
//   - Staging: cp.async 16-byte copies global -> shared; Q [64][hd+8] once, K and V
//     [2][64][hd+8] double-buffered (tile t+1 is in flight while tile t is computed). A key
//     that is masked or past the block's causal end (kend = t0 + its last row + 1) is a
//     zero-filled row (cp.async with source size 0): the cache row is never read, so NaN
//     bits of an unwritten row cannot reach S or P V. Tiles past kend are never visited.
//   - Q: ldmatrix.x4 into A fragments once (hd/16 x 4 registers), kept for the whole loop.
//   - S = Q K^T per warp: 16 x 64 in fp32 C fragments (8 n-tiles x 4 registers); K's B
//     fragments by ldmatrix.x4 (non-transposed: K rows are B's columns).
//   - Scores in log2 units, s = (q.k) * scale * log2(e) + term[j], term = log2(e) * slope
//     * p(b, j) for a real key j < kend and -inf otherwise (warp 0 writes the tile's 64
//     terms from two ballots over the mask, the prefix count carried across tiles: a block
//     always starts at key 0); -inf also past the row's causal end (j > t0 + i). Online
//     softmax per row in fp32 with exp2f: the row max over the quad of 4 lanes holding the
//     row (2 shuffles); a row with nothing visible yet subtracts 0 (no -inf - -inf).
//   - P = exp2(s - m) rounded to T, placed directly as A fragments of O += P V (the C
//     layout of two n-tiles is the A layout of one k-step); V's B fragments by
//     ldmatrix.x4.trans. O: 16 x hd per warp in fp32 (hd/8 x 4 registers per thread).
//   - A warp skips a tile whose first key is past its last row's causal end.
//   - End: O / l (l = the row sum over the quad; zeros where l = 0), rounded to T, staged
//     through the warp's rows of the Q tile, written as 16-byte row chunks.
// Shared memory: 2 * (64 + 4 * 64) * (hd + 8) + 256 bytes (hd 128: 87296, hd 64: 46336).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <cstring>

#include "runtime/backend/cuda/attention_common.cuh"
#include "runtime/backend/cuda/attention_prefill_mma.cuh"
#include "runtime/backend/cuda/kernels.hpp"
#include "runtime/common/error.hpp"

namespace zinc::runtime::cuda::attn {
namespace {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// The primitives prefill_block is written over (attention_prefill_mma.cuh lists them).
template <typename T>
struct PtxOps;

struct PtxOpsCommon {
  // 16 bytes global -> shared, or 16 zero bytes (nothing read) when !valid.
  static __device__ __forceinline__ void cp_async16(void* smem_dst, const void* src, bool valid) {
    const int n = valid ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(smem_dst)), "l"(src), "r"(n)
                 : "memory");
  }
  static __device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
  // Waits for all but the newest committed group.
  static __device__ __forceinline__ void cp_async_wait1() { asm volatile("cp.async.wait_group 1;\n" ::: "memory"); }
  static __device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
  }
  static __device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], const void* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
  }
  static __device__ __forceinline__ void copy16(void* dst, const void* src) {
    *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
  }
  static __device__ __forceinline__ float shfl_xor(float v, int m) { return __shfl_xor_sync(0xffffffffu, v, m); }
  static __device__ __forceinline__ unsigned ballot(bool p) { return __ballot_sync(0xffffffffu, p); }
  static __device__ __forceinline__ int popc(unsigned v) { return __popc(v); }
  static __device__ __forceinline__ void sync_block() { __syncthreads(); }
  static __device__ __forceinline__ void sync_warp() { __syncwarp(); }
  static __device__ __forceinline__ float exp2(float x) { return exp2f(x); }  // exp2(-inf) = 0
};

template <>
struct PtxOps<__half> : PtxOpsCommon {
  // d += a b: a 16x16 (row), b 16x8 (col), d 16x8 fp32.
  static __device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  static __device__ __forceinline__ uint32_t pack2(float lo, float hi) {
    const __half2 h = __floats2half2_rn(lo, hi);  // .x = lo: the lower 16 bits
    uint32_t u;
    memcpy(&u, &h, 4);
    return u;
  }
};

template <>
struct PtxOps<__nv_bfloat16> : PtxOpsCommon {
  static __device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  static __device__ __forceinline__ uint32_t pack2(float lo, float hi) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    uint32_t u;
    memcpy(&u, &h, 4);
    return u;
  }
};

// Two blocks per SM at hd 128 (87 KB of shared memory each), three at hd 64.
template <typename T, int HD>
__global__ void __launch_bounds__(mma::kThreads, HD == 64 ? 3 : 2)
    attention_prefill_mma_kernel(const T* __restrict__ q, const T* __restrict__ kc, const T* __restrict__ vc,
                                 const uint8_t* __restrict__ key_mask, const float* __restrict__ slopes,
                                 AttentionShape sh, float scale_log2, T* __restrict__ out) {
  extern __shared__ uint4 mma_smem[];
  const int qblk = static_cast<int>(gridDim.z - 1 - blockIdx.z);  // most keys first
  mma::prefill_block<PtxOps<T>, HD>(reinterpret_cast<const uint16_t*>(q), reinterpret_cast<const uint16_t*>(kc),
                                    reinterpret_cast<const uint16_t*>(vc), key_mask, slopes, sh, scale_log2,
                                    reinterpret_cast<uint16_t*>(out), reinterpret_cast<unsigned char*>(mma_smem),
                                    static_cast<int>(threadIdx.x), static_cast<int>(blockIdx.x),
                                    static_cast<int>(blockIdx.y), qblk);
}

template <typename T, int HD>
void launch_mma(const T* q, const T* k, const T* v, const uint8_t* mask, const float* slopes,
                const AttentionShape& sh, float scale, T* out, cudaStream_t s) {
  using C = mma::Cfg<HD>;
  auto kernel = attention_prefill_mma_kernel<T, HD>;
  ZINC_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       static_cast<int>(C::kSmemBytes)));
  const dim3 grid(sh.heads, sh.batch, (sh.tq + mma::kBQ - 1) / mma::kBQ);
  kernel<<<grid, mma::kThreads, C::kSmemBytes, s>>>(q, k, v, mask, slopes, sh, scale * mma::kLog2e, out);
  ZINC_CUDA_LAUNCH_CHECK(attention_prefill_mma_kernel);
}

}  // namespace

template <typename T>
void launch_prefill_mma(const T* q, const T* k, const T* v, const uint8_t* key_mask, const float* slopes,
                        const AttentionShape& sh, float scale, T* out, cudaStream_t s) {
  ZINC_CHECK(prefill_mma_fits(sh, true), "attention: the tensor-core kernel does not take head_dim "
                                             << sh.head_dim << " / tq " << sh.tq);
  if (sh.head_dim == 64)
    launch_mma<T, 64>(q, k, v, key_mask, slopes, sh, scale, out, s);
  else
    launch_mma<T, 128>(q, k, v, key_mask, slopes, sh, scale, out, s);
}

template void launch_prefill_mma<__half>(const __half*, const __half*, const __half*, const uint8_t*, const float*,
                                         const AttentionShape&, float, __half*, cudaStream_t);
template void launch_prefill_mma<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*,
                                                const uint8_t*, const float*, const AttentionShape&, float,
                                                __nv_bfloat16*, cudaStream_t);

}  // namespace zinc::runtime::cuda::attn
