#include <cuda_runtime.h>

#include <string>

#include "runtime/backend/cuda_probe.hpp"

namespace zinc::runtime {

int cuda_device_count() {
  int n = 0;
  // No driver or no GPU (cudaErrorInsufficientDriver / NoDevice): report 0, not an error.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

std::string describe_cuda() {
  int runtime_version = 0;
  cudaRuntimeGetVersion(&runtime_version);
  std::string s = "CUDA " + std::to_string(runtime_version / 1000) + "." +
                  std::to_string(runtime_version % 1000 / 10) + " build, ";
  int n = 0;
  const cudaError_t rc = cudaGetDeviceCount(&n);
  if (rc != cudaSuccess) {
    cudaGetLastError();
    return s + "no GPU visible (" + cudaGetErrorName(rc) + ")";
  }
  s += std::to_string(n) + " device" + (n == 1 ? "" : "s");
  for (int d = 0; d < n; ++d) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, d) == cudaSuccess) s += std::string(d ? ", " : ": ") + p.name;
  }
  return s;
}

}  // namespace zinc::runtime
