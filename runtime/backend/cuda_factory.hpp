// The CUDA backend's entry points, seen by code that must not include CUDA headers.
// Implemented by backend/cuda/cuda_factory.cpp when built with ZINC_CUDA=ON, otherwise by
// backend/cuda_factory_none.cpp (CMake picks the file; no #if in the code).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "runtime/backend/backend.hpp"

namespace zinc::runtime {

bool cuda_backend_built();
// The CUDA backend on device local_rank % (visible GPUs); throws zinc::Error naming the
// rank when the build has no CUDA backend or no GPU is visible.
std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& opts);

// `zinc devbench`'s prefill attention rows, on device pointers of element type t (F16,
// BF16 or F32, whatever the backend's compute dtype), queued on s (the CUDA backend's
// stream): Backend::attention's op with the kernel it picks (reference = false) or with
// the SIMT rows kernel whatever the shape (reference = true: kernels.hpp's
// attention_prefill_reference). Throws when the build has no CUDA backend.
void cuda_attention_kernel(bool reference, quant::DType t, const void* q, const void* k_cache, const void* v_cache,
                           const uint8_t* key_mask, const float* alibi_slopes, const AttentionShape& sh, float scale,
                           void* out, const Stream& s);
// The kernel the first form runs for these arguments: "decode", "mma" or "rows".
std::string cuda_attention_kernel_name(quant::DType t, const AttentionShape& sh, const void* q, const void* k_cache,
                                       const void* v_cache, const void* out);

}  // namespace zinc::runtime
