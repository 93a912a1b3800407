#include "runtime/backend/cuda_factory.hpp"

namespace zinc::runtime {

bool cuda_backend_built() { return false; }

std::unique_ptr<Backend> make_cuda_backend(const BackendOptions&) {
  ZINC_THROW("--backend cuda: zinc was built without CUDA (configure with -DZINC_CUDA=ON where nvcc exists)");
}

}  // namespace zinc::runtime
