#include "runtime/backend/cuda_probe.hpp"

namespace zinc::runtime {

int cuda_device_count() { return 0; }
std::string describe_cuda() { return "built without CUDA"; }

}  // namespace zinc::runtime
