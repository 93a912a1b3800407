// rope (kernels.hpp, "rope.cu"): rotate-half rotary embedding in place, one block per
// token row (blocks stride over rows past the grid). The block first computes the row's
// cos/sin of angle_i = pos * inv_freq_i, i < hd/2, into shared memory, then rotates every
// head's halves with them: threads (x) over i, (y) over heads, so a row's trig is done
// once, not once per head.
//
// inv_freq_i = 1 / theta^(2i/hd) as the CPU backend computes it: the exponent 2i/hd in
// fp32, theta^e rounded to fp32 (taken in double here, so it is the correctly rounded
// value the host's powf gives, where CUDA's powf may be a few ulps off), then an fp32
// reciprocal by true division; angle = pos * inv_freq in fp32; sincosf (full-range
// accurate, not the __sinf intrinsics).
#include <cuda_runtime.h>

#include <cstdint>

#include "runtime/backend/cuda/cuda_types.cuh"
#include "runtime/backend/cuda/kernels.hpp"

namespace zinc::runtime::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxRowBlocks = int64_t{1} << 16;

template <typename T>
__global__ void rope_kernel(T* x, const int32_t* __restrict positions, int64_t n, int heads, int head_dim,
                            float theta) {
  extern __shared__ float trig[];  // cos [half], then sin [half]
  const int half = head_dim / 2;
  const int tid = threadIdx.y * blockDim.x + threadIdx.x;
  const int nthreads = blockDim.x * blockDim.y;
  for (int64_t row = blockIdx.x; row < n; row += gridDim.x) {
    const float pos = static_cast<float>(positions[row]);
    __syncthreads();  // the previous row's rotations are done with `trig`
    for (int i = tid; i < half; i += nthreads) {
      const float e = static_cast<float>(2 * i) / static_cast<float>(head_dim);
      const float p = static_cast<float>(pow(static_cast<double>(theta), static_cast<double>(e)));
      const float inv_freq = 1.0f / p;
      const float a = pos * inv_freq;
      float sn, cs;
      sincosf(a, &sn, &cs);
      trig[i] = cs;
      trig[half + i] = sn;
    }
    __syncthreads();
    T* xr = x + row * static_cast<int64_t>(heads) * head_dim;
    for (int h = threadIdx.y; h < heads; h += blockDim.y) {
      T* v = xr + static_cast<int64_t>(h) * head_dim;
      for (int i = threadIdx.x; i < half; i += blockDim.x) {
        const float c = trig[i], sn = trig[half + i];
        const float x1 = load_f32(v + i), x2 = load_f32(v + i + half);
        store_f32(v + i, x1 * c - x2 * sn);
        store_f32(v + i + half, x2 * c + x1 * sn);
      }
    }
  }
}

}  // namespace

void rope(quant::DType t, void* x, const int32_t* positions, int64_t n, int heads, int head_dim, float theta,
          cudaStream_t s) {
  if (n == 0 || heads == 0 || head_dim == 0) return;
  ZINC_CHECK(head_dim % 2 == 0, "cuda::rope: head_dim " << head_dim << " must be even (rotate-half)");
  const int half = head_dim / 2;
  const size_t smem = 2 * static_cast<size_t>(half) * sizeof(float);
  ZINC_CHECK(smem <= 48 * 1024, "cuda::rope: head_dim " << head_dim << " is too large");
  int bx = 32;
  while (bx < kThreads && bx < half) bx *= 2;
  const dim3 block(bx, kThreads / bx);
  const unsigned grid = static_cast<unsigned>(n < kMaxRowBlocks ? n : kMaxRowBlocks);
  dispatch_float_type(t, "cuda::rope", [&](auto tag) {
    using T = typename decltype(tag)::type;
    rope_kernel<T><<<grid, block, smem, s>>>(static_cast<T*>(x), positions, n, heads, head_dim, theta);
    ZINC_CUDA_LAUNCH_CHECK("rope_kernel");
  });
}

}  // namespace zinc::runtime::cuda
