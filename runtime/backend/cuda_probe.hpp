// What the CUDA side of this build can see, for `zinc --version` and GPU test skips.
// Implemented by backend/cuda/cuda_probe.cu when built with ZINC_CUDA=ON, otherwise by
// backend/cuda_probe_none.cpp (CMake picks the file; no #if in the code).
#pragma once

#include <string>

namespace zinc::runtime {

// Number of usable CUDA devices; 0 when built without CUDA or when no driver/GPU is there.
int cuda_device_count();
// "CUDA 13.0 build, 1 device: NVIDIA H200" / "CUDA build, no GPU visible (...)" / "built without CUDA"
std::string describe_cuda();

}  // namespace zinc::runtime
