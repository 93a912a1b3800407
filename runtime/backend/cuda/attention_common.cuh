// attention_common.cuh: what the attention files share, in zinc::runtime::cuda::attn:
// the kernel choice's thresholds, the 16-bit pair conversion the SIMT kernels' loads use,
// and the three kernels' launchers (attention.cu calls them; attention_prefill.cu,
// attention_prefill_mma.cu and attention_decode.cu define them). Element type T is float,
// __half or __nv_bfloat16 (the tensor-core kernel: __half and __nv_bfloat16 only).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "runtime/backend/attention_shape.hpp"
#include "runtime/backend/cuda/attention_prefill_mma.cuh"
#include "runtime/backend/cuda/cuda_types.cuh"

namespace zinc::runtime::cuda::attn {

// tq >= kRowsMinTq: a prefill kernel (the tensor-core kernel where prefill_mma_fits, else
// the rows kernel); below: the decode kernel.
constexpr int kRowsMinTq = 8;

// The tensor-core prefill kernel's reach (T = __half or __nv_bfloat16): head_dim 64 or
// 128, q, k, v and out all 16-byte aligned (`aligned16`: its cp.async and 16-byte stores
// need it), at most 65535 query blocks (the grid's z).
inline bool prefill_mma_fits(const AttentionShape& sh, bool aligned16) {
  return aligned16 && (sh.head_dim == 64 || sh.head_dim == 128) && (sh.tq + mma::kBQ - 1) / mma::kBQ <= 65535;
}

// Two packed 16-bit elements (the lower one first) as fp32, exactly; the pointer only
// selects the type.
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

// The launchers, one per kernel: each picks its kernel's variant for sh and launches it on
// s. `aligned`: q, k and v are all 16-byte aligned (the kernels' vector loads need it, with
// head_dim a multiple of the vector's length). The shape has been checked by attention().
template <typename T>
void launch_prefill(const T* q, const T* k, const T* v, const uint8_t* key_mask, const float* slopes,
                    const AttentionShape& sh, float scale, T* out, bool aligned, cudaStream_t s);
// The tensor-core kernel (attention_prefill_mma.cu), for shapes where prefill_mma_fits;
// instantiated for __half and __nv_bfloat16.
template <typename T>
void launch_prefill_mma(const T* q, const T* k, const T* v, const uint8_t* key_mask, const float* slopes,
                        const AttentionShape& sh, float scale, T* out, cudaStream_t s);
template <typename T>
void launch_decode(const T* q, const T* k, const T* v, const uint8_t* key_mask, const float* slopes,
                   const AttentionShape& sh, float scale, T* out, bool aligned, cudaStream_t s);

// Explicit instantiation of a launcher for the three element types (in its own .cu file).
#define ZINC_ATTN_INSTANTIATE_ONE(launcher, T)                                                             \
  template void launcher<T>(const T*, const T*, const T*, const uint8_t*, const float*, const AttentionShape&, \
                            float, T*, bool, cudaStream_t)
#define ZINC_ATTN_INSTANTIATE(launcher)            \
  ZINC_ATTN_INSTANTIATE_ONE(launcher, float);      \
  ZINC_ATTN_INSTANTIATE_ONE(launcher, __half);     \
  ZINC_ATTN_INSTANTIATE_ONE(launcher, __nv_bfloat16)

}  // namespace zinc::runtime::cuda::attn
