// The CUDA backend's entry point, seen by code that must not include CUDA headers.
// Implemented by backend/cuda/cuda_factory.cpp when built with ZINC_CUDA=ON, otherwise by
// backend/cuda_factory_none.cpp (CMake picks the file; no #if in the code).
#pragma once

#include <memory>

#include "runtime/backend/backend.hpp"

namespace zinc::runtime {

bool cuda_backend_built();
// The CUDA backend on device local_rank % (visible GPUs); throws zinc::Error naming the
// rank when the build has no CUDA backend or no GPU is visible.
std::unique_ptr<Backend> make_cuda_backend(const BackendOptions& opts);

}  // namespace zinc::runtime
