// Device helpers the CUDA kernels share: the element types as fp32 (loads widen exactly,
// stores round to nearest even), packs of 8 elements moved with 16-byte accesses, the
// host-side dispatch from quant::DType to a template parameter, and fp32 warp/block
// reductions. Kept small and stable: several kernel files include it.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "quant/dtype.hpp"
#include "runtime/common/error.hpp"

namespace zinc::runtime::cuda {

// ---- element <-> fp32 ------------------------------------------------------------------

template <typename T>
__device__ __forceinline__ float to_f32(T v);
template <>
__device__ __forceinline__ float to_f32<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ float to_f32<__half>(__half v) {
  return __half2float(v);  // exact, subnormals included
}
template <>
__device__ __forceinline__ float to_f32<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);  // exact
}

// Round to nearest even (overflow -> inf), as quant::f32_to_f16 / f32_to_bf16.
template <typename T>
__device__ __forceinline__ T from_f32(float v);
template <>
__device__ __forceinline__ float from_f32<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ __half from_f32<__half>(float v) {
  return __float2half_rn(v);
}
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

template <typename T>
__device__ __forceinline__ float load_f32(const T* p) {
  return to_f32<T>(*p);
}
template <typename T>
__device__ __forceinline__ void store_f32(T* p, float v) {
  *p = from_f32<T>(v);
}

// fp16 bits (a stored scale or minimum) as fp32, exactly.
__device__ __forceinline__ float f16_bits_to_f32(uint16_t bits) { return __half2float(__ushort_as_half(bits)); }

// ---- packs of 8 elements (16-byte accesses; p must be 16-byte aligned) ------------------

constexpr int kPack = 8;

template <typename T>
__device__ __forceinline__ void load8_f32(const T* p, float (&f)[kPack]) {
  static_assert(kPack * sizeof(T) % 16 == 0, "a pack is a whole number of 16-byte words");
  constexpr int kWords = kPack * sizeof(T) / 16;
  uint4 w[kWords];
#pragma unroll
  for (int i = 0; i < kWords; ++i) w[i] = reinterpret_cast<const uint4*>(p)[i];
  const T* e = reinterpret_cast<const T*>(w);
#pragma unroll
  for (int j = 0; j < kPack; ++j) f[j] = to_f32<T>(e[j]);
}

template <typename T>
__device__ __forceinline__ void store8_f32(T* p, const float (&f)[kPack]) {
  constexpr int kWords = kPack * sizeof(T) / 16;
  uint4 w[kWords];
  T* e = reinterpret_cast<T*>(w);
#pragma unroll
  for (int j = 0; j < kPack; ++j) e[j] = from_f32<T>(f[j]);
#pragma unroll
  for (int i = 0; i < kWords; ++i) reinterpret_cast<uint4*>(p)[i] = w[i];
}

inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// ---- type dispatch (host) ---------------------------------------------------------------

template <typename T>
struct TypeTag {
  using type = T;
};

// Calls f(TypeTag<float>{}), f(TypeTag<__half>{}) or f(TypeTag<__nv_bfloat16>{}) for F32,
// F16 or BF16; throws zinc::Error naming `what` for any other type. In f:
//   using T = typename decltype(tag)::type;
template <class F>
void dispatch_float_type(quant::DType t, const char* what, F&& f) {
  switch (t) {
    case quant::DType::F32:
      f(TypeTag<float>{});
      return;
    case quant::DType::F16:
      f(TypeTag<__half>{});
      return;
    case quant::DType::BF16:
      f(TypeTag<__nv_bfloat16>{});
      return;
    default:
      ZINC_THROW(what << ": element type " << quant::dtype_name(t) << " is not F32, F16 or BF16");
  }
}

// ---- reductions (fp32) ------------------------------------------------------------------

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// The sum of v over a 1-D block, returned to every thread (the same bits in each). The
// block size must be a multiple of 32 (at most 1024) and every thread must call it; it
// synchronises the block, and may be called again right away.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  __syncthreads();  // an earlier call's readers are done with `partial`
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const int warps = blockDim.x >> 5;
  return warp_sum(lane < warps ? partial[lane] : 0.0f);
}

// The maximum of v over a 1-D block (same rules as block_sum; -inf for an all -inf block).
__device__ __forceinline__ float block_max(float v) {
  __shared__ float partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const int warps = blockDim.x >> 5;
  return warp_max(lane < warps ? partial[lane] : -INFINITY);
}

// ---- launch geometry ----------------------------------------------------------------------

// Blocks for a grid-stride loop over `work` items with `threads` per block: enough to
// fill the GPU many times over, never more than the items need.
inline unsigned grid_for(int64_t work, int threads) {
  constexpr int64_t kMaxBlocks = int64_t{1} << 16;  // 65536 blocks: ~500 per SM on H200
  const int64_t blocks = (work + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > kMaxBlocks ? kMaxBlocks : blocks));
}

}  // namespace zinc::runtime::cuda
