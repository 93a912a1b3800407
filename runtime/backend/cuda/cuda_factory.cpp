#include "runtime/backend/cuda_factory.hpp"

#include "runtime/backend/cuda/cuda_backend.hpp"
#include "runtime/backend/cuda/kernels.hpp"
#include "runtime/backend/cuda_probe.hpp"

namespace zinc::runtime {

bool cuda_backend_built() { return true; }

std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& o) {
  const int gpus = cuda_device_count();
  ZINC_CHECK(gpus > 0, "--backend cuda: node-local rank " << o.local_rank << " sees no GPU (" << describe_cuda()
                                                          << "); use --backend cpu");
  return std::make_unique<CudaBackend>(o.local_rank % gpus, o.dtype, o.budget_bytes);
}

void cuda_attention_kernel(bool reference, quant::DType t, const void* q, const void* k_cache, const void* v_cache,
                           const uint8_t* key_mask, const float* alibi_slopes, const AttentionShape& sh, float scale,
                           void* out, const Stream& s) {
  const auto stream = static_cast<cudaStream_t>(s.native());
  if (reference)
    cuda::attention_prefill_reference(t, q, k_cache, v_cache, key_mask, alibi_slopes, sh, scale, out, stream);
  else
    cuda::attention(t, q, k_cache, v_cache, key_mask, alibi_slopes, sh, scale, out, stream);
}

std::string cuda_attention_kernel_name(quant::DType t, const AttentionShape& sh, const void* q, const void* k_cache,
                                       const void* v_cache, const void* out) {
  return cuda::attention_kernel_name(t, sh, q, k_cache, v_cache, out);
}

}  // namespace zinc::runtime
