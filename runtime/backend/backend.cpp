// Backend helpers and the backend factory (--backend, --dtype).
#include "runtime/backend/backend.hpp"

#include "runtime/backend/cpu/cpu_backend.hpp"
#include "runtime/backend/cuda_factory.hpp"
#include "runtime/backend/cuda_probe.hpp"

namespace zinc::runtime {

Tensor view_of(const DeviceBuffer& b, quant::DType t, std::initializer_list<int64_t> dims) {
  Tensor v(b.data(), t, dims);
  ZINC_CHECK(v.bytes() <= b.bytes(), "tensor view of " << v.bytes() << " bytes over a buffer of " << b.bytes()
                                                       << " bytes");
  return v;
}

std::string resolve_backend(const std::string& name) {
  if (name != "auto") return name;
  return cuda_backend_built() && cuda_device_count() > 0 ? "cuda" : "cpu";
}

std::string available_backends() { return cuda_backend_built() ? "cpu, cuda" : "cpu"; }

quant::DType choose_compute_dtype(const std::string& flag, const std::string& backend,
                                  const std::string& torch_dtype) {
  quant::DType t = quant::DType::F32;
  if (flag == "auto") {
    if (backend == "cuda") t = torch_dtype == "bfloat16" ? quant::DType::BF16 : quant::DType::F16;
  } else if (flag == "fp32") {
    t = quant::DType::F32;
  } else if (flag == "fp16") {
    t = quant::DType::F16;
  } else if (flag == "bf16") {
    t = quant::DType::BF16;
  } else {
    ZINC_THROW("--dtype '" << flag << "' is not a compute dtype (auto, fp32, fp16, bf16)");
  }
  ZINC_CHECK(backend != "cpu" || t == quant::DType::F32,
             "--dtype " << flag << ": the cpu backend computes in fp32 (it is the reference); use --backend cuda");
  return t;
}

std::unique_ptr<Backend> make_backend(const BackendOptions& o) {
  if (o.name == "cpu") {
    ZINC_CHECK(o.dtype == quant::DType::F32, "the cpu backend computes in fp32");
    return std::make_unique<CpuBackend>(o.budget_bytes, o.threads);
  }
  if (o.name == "cuda") return make_cuda_backend(o);
  ZINC_THROW("--backend '" << o.name << "' is not a backend of this build (" << available_backends() << ")");
}

}  // namespace zinc::runtime
