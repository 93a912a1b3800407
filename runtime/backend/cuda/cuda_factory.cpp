#include "runtime/backend/cuda_factory.hpp"

#include "runtime/backend/cuda/cuda_backend.hpp"
#include "runtime/backend/cuda_probe.hpp"

namespace zinc::runtime {

bool cuda_backend_built() { return true; }

std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& o) {
  const int gpus = cuda_device_count();
  ZINC_CHECK(gpus > 0, "--backend cuda: node-local rank " << o.local_rank << " sees no GPU (" << describe_cuda()
                                                          << "); use --backend cpu");
  return std::make_unique<CudaBackend>(o.local_rank % gpus, o.dtype, o.budget_bytes);
}

}  // namespace zinc::runtime
