#include "runtime/backend/cuda_factory.hpp"

namespace zinc::runtime {

bool cuda_backend_built() { return false; }

std::unique_ptr<Backend> make_cuda_backend(const BackendOptions&) {
  ZINC_THROW("--backend cuda: zinc was built without CUDA (configure with -DZINC_CUDA=ON where nvcc exists)");
}

void cuda_attention_kernel(bool, quant::DType, const void*, const void*, const void*, const uint8_t*, const float*,
                           const AttentionShape&, float, void*, const Stream&) {
  ZINC_THROW("CUDA attention: zinc was built without CUDA");
}

std::string cuda_attention_kernel_name(quant::DType, const AttentionShape&, const void*, const void*, const void*,
                                       const void*) {
  return "none (built without CUDA)";
}

}  // namespace zinc::runtime
