// rms_norm and layer_norm (kernels.hpp, "norms.cu"): one block of 256 threads per row
// (blocks stride over rows past the grid), fp32 statistics reduced with block_sum, the
// row re-read from memory (L1/L2) for each pass, as the CPU backend's loops do: rms_norm
// sums x^2 then writes; layer_norm takes the mean, then var = mean((x - mean)^2), then
// writes. Rows move in packs of 8 elements (16-byte accesses) when d % 8 == 0 and every
// pointer is 16-byte aligned. out may alias x (every read of a row precedes a barrier
// that precedes its writes).
#include <cuda_runtime.h>

#include <cstdint>

#include "runtime/backend/cuda/cuda_types.cuh"
#include "runtime/backend/cuda/kernels.hpp"

namespace zinc::runtime::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxRowBlocks = int64_t{1} << 16;

unsigned row_grid(int64_t n) { return static_cast<unsigned>(n < kMaxRowBlocks ? n : kMaxRowBlocks); }

// out = w * (x * r), r = 1 / sqrt(mean(x^2) + eps): the CPU's operations in order.
template <bool kVec, typename T>
__global__ void rms_norm_kernel(const T* x, const T* w, float eps, int64_t n, int64_t d, T* out) {
  const int64_t packs = d / kPack;
  for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
    const T* xr = x + row * d;
    T* orow = out + row * d;
    float ss = 0.f;
    if constexpr (kVec) {
      for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
        float v[kPack];
        load8_f32(xr + p * kPack, v);
#pragma unroll
        for (int j = 0; j < kPack; ++j) ss += v[j] * v[j];
      }
    } else {
      for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
        const float v = load_f32(xr + j);
        ss += v * v;
      }
    }
    ss = block_sum(ss);
    const float r = 1.0f / sqrtf(ss / static_cast<float>(d) + eps);
    if constexpr (kVec) {
      for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
        float v[kPack], wv[kPack];
        load8_f32(xr + p * kPack, v);
        load8_f32(w + p * kPack, wv);
#pragma unroll
        for (int j = 0; j < kPack; ++j) v[j] = wv[j] * (v[j] * r);
        store8_f32(orow + p * kPack, v);
      }
    } else {
      for (int64_t j = threadIdx.x; j < d; j += blockDim.x) store_f32(orow + j, load_f32(w + j) * (load_f32(xr + j) * r));
    }
  }
}

// y = (x - mean) * r, r = 1 / sqrt(var + eps); then y *= w, y += b where given.
template <bool kVec, typename T>
__global__ void layer_norm_kernel(const T* x, const T* w, const T* b, float eps, int64_t n, int64_t d, T* out) {
  const int64_t packs = d / kPack;
  const float fd = static_cast<float>(d);
  for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
    const T* xr = x + row * d;
    T* orow = out + row * d;
    // pass 1: mean
    float sum = 0.f;
    if constexpr (kVec) {
      for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
        float v[kPack];
        load8_f32(xr + p * kPack, v);
#pragma unroll
        for (int j = 0; j < kPack; ++j) sum += v[j];
      }
    } else {
      for (int64_t j = threadIdx.x; j < d; j += blockDim.x) sum += load_f32(xr + j);
    }
    const float mean = block_sum(sum) / fd;
    // pass 2: var = mean((x - mean)^2)
    float sq = 0.f;
    if constexpr (kVec) {
      for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
        float v[kPack];
        load8_f32(xr + p * kPack, v);
#pragma unroll
        for (int j = 0; j < kPack; ++j) sq += (v[j] - mean) * (v[j] - mean);
      }
    } else {
      for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
        const float c = load_f32(xr + j) - mean;
        sq += c * c;
      }
    }
    const float var = block_sum(sq) / fd;
    const float r = 1.0f / sqrtf(var + eps);
    // pass 3: normalise and apply the affine parts that are given
    if constexpr (kVec) {
      for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
        float v[kPack];
        load8_f32(xr + p * kPack, v);
#pragma unroll
        for (int j = 0; j < kPack; ++j) v[j] = (v[j] - mean) * r;
        if (w != nullptr) {
          float wv[kPack];
          load8_f32(w + p * kPack, wv);
#pragma unroll
          for (int j = 0; j < kPack; ++j) v[j] *= wv[j];
        }
        if (b != nullptr) {
          float bv[kPack];
          load8_f32(b + p * kPack, bv);
#pragma unroll
          for (int j = 0; j < kPack; ++j) v[j] += bv[j];
        }
        store8_f32(orow + p * kPack, v);
      }
    } else {
      for (int64_t j = threadIdx.x; j < d; j += blockDim.x) {
        float y = (load_f32(xr + j) - mean) * r;
        if (w != nullptr) y *= load_f32(w + j);
        if (b != nullptr) y += load_f32(b + j);
        store_f32(orow + j, y);
      }
    }
  }
}

bool aligned16_or_null(const void* p) { return p == nullptr || aligned16(p); }

}  // namespace

void rms_norm(quant::DType t, const void* x, const void* w, float eps, int64_t n, int64_t d, void* out,
              cudaStream_t s) {
  if (n == 0 || d == 0) return;
  ZINC_CHECK(w != nullptr, "cuda::rms_norm: the weight is null");
  dispatch_float_type(t, "cuda::rms_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const auto* px = static_cast<const T*>(x);
    const auto* pw = static_cast<const T*>(w);
    auto* po = static_cast<T*>(out);
    const bool vec = d % kPack == 0 && aligned16(x) && aligned16(w) && aligned16(out);
    if (vec) {
      rms_norm_kernel<true><<<row_grid(n), kThreads, 0, s>>>(px, pw, eps, n, d, po);
    } else {
      rms_norm_kernel<false><<<row_grid(n), kThreads, 0, s>>>(px, pw, eps, n, d, po);
    }
    ZINC_CUDA_LAUNCH_CHECK("rms_norm_kernel");
  });
}

void layer_norm(quant::DType t, const void* x, const void* w, const void* b, float eps, int64_t n, int64_t d,
                void* out, cudaStream_t s) {
  if (n == 0 || d == 0) return;
  dispatch_float_type(t, "cuda::layer_norm", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const auto* px = static_cast<const T*>(x);
    const auto* pw = static_cast<const T*>(w);
    const auto* pb = static_cast<const T*>(b);
    auto* po = static_cast<T*>(out);
    const bool vec = d % kPack == 0 && aligned16(x) && aligned16(out) && aligned16_or_null(w) && aligned16_or_null(b);
    if (vec) {
      layer_norm_kernel<true><<<row_grid(n), kThreads, 0, s>>>(px, pw, pb, eps, n, d, po);
    } else {
      layer_norm_kernel<false><<<row_grid(n), kThreads, 0, s>>>(px, pw, pb, eps, n, d, po);
    }
    ZINC_CUDA_LAUNCH_CHECK("layer_norm_kernel");
  });
}

}  // namespace zinc::runtime::cuda
