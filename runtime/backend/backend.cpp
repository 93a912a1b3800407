// Backend helpers and the backend factory (--backend).
#include "runtime/backend/backend.hpp"

#include "runtime/backend/cpu/cpu_backend.hpp"
#include "runtime/backend/cuda_probe.hpp"

namespace zinc::runtime {

Tensor view_of(const DeviceBuffer& b, quant::DType t, std::initializer_list<int64_t> dims) {
  Tensor v(b.data(), t, dims);
  ZINC_CHECK(v.bytes() <= b.bytes(), "tensor view of " << v.bytes() << " bytes over a buffer of " << b.bytes()
                                                       << " bytes");
  return v;
}

std::string available_backends() { return "cpu"; }

std::unique_ptr<Backend> make_backend(const BackendOptions& o) {
  if (o.name == "cpu") return std::make_unique<CpuBackend>(o.budget_bytes, o.threads);
  if (o.name == "cuda") {
    const int gpus = cuda_device_count();
    ZINC_THROW("--backend cuda: this build has no CUDA backend yet (" << describe_cuda() << "; " << gpus
                                                                      << " GPU" << (gpus == 1 ? "" : "s")
                                                                      << " visible); use --backend cpu");
  }
  ZINC_THROW("--backend '" << o.name << "' is not a backend of this build (" << available_backends() << ")");
}

}  // namespace zinc::runtime
