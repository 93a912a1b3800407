// ZINC_CUDA_CHECK(call): throws zinc::Error with the call's text, CUDA's error name and
// string, and file:line when a CUDA runtime call fails.
#pragma once

#include <cuda_runtime.h>

#include "runtime/common/error.hpp"

#define ZINC_CUDA_CHECK(call)                                                       \
  do {                                                                              \
    const cudaError_t zinc_cuda_rc_ = (call);                                       \
    if (zinc_cuda_rc_ != cudaSuccess)                                               \
      ZINC_THROW("CUDA call failed: " #call ": " << cudaGetErrorName(zinc_cuda_rc_)   \
                                                 << ": " << cudaGetErrorString(zinc_cuda_rc_)); \
  } while (0)
