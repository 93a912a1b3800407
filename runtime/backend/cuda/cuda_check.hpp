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

#include <cublas_v2.h>

// ZINC_CUBLAS_CHECK(call): the same for cuBLAS (status name and string).
#define ZINC_CUBLAS_CHECK(call)                                                          \
  do {                                                                                   \
    const cublasStatus_t zinc_cublas_rc_ = (call);                                       \
    if (zinc_cublas_rc_ != CUBLAS_STATUS_SUCCESS)                                        \
      ZINC_THROW("cuBLAS call failed: " #call ": " << cublasGetStatusName(zinc_cublas_rc_) \
                                                   << ": " << cublasGetStatusString(zinc_cublas_rc_)); \
  } while (0)
