// The backend op tests' harness (backend_ops_harness.hpp): the list of backends under test and their
// factories, error bounds and the worst-element reporting, host data, and the Rig's transfers.
#include "backend_ops_harness.hpp"

#include <cmath>
#include <iomanip>
#include <random>
#include <sstream>

#include "runtime/backend/cuda_probe.hpp"

namespace zinc::test::ops {

using quant::DType;
using runtime::Backend;
using runtime::Tensor;

namespace {

// ---- backends under test --------------------------------------------------------------------------------

std::unique_ptr<Backend> make_named(const char* name, DType dtype, size_t budget_bytes) {
  runtime::BackendOptions o;
  o.name = name;
  o.dtype = dtype;
  o.budget_bytes = budget_bytes;
  return runtime::make_backend(o);
}

std::unique_ptr<Backend> make_cpu(size_t budget_bytes, std::string*) {
  return make_named("cpu", DType::F32, budget_bytes);
}

// The CUDA backend in compute dtype T, where a GPU is visible and the build has the backend.
template <DType T>
std::unique_ptr<Backend> make_cuda(size_t budget_bytes, std::string* skip_reason) {
  if (runtime::cuda_device_count() == 0) {
    *skip_reason = "no CUDA GPU visible (" + runtime::describe_cuda() + ")";
    return nullptr;
  }
  if (runtime::available_backends().find("cuda") == std::string::npos) {
    *skip_reason = "this build has no CUDA backend (backends: " + runtime::available_backends() + ")";
    return nullptr;
  }
  return make_named("cuda", T, budget_bytes);
}

std::string fmt(double v) {
  std::ostringstream o;
  o << std::setprecision(9) << v;
  return o.str();
}

}  // namespace

const std::vector<BackendUnderTest>& backends() {
  static const std::vector<BackendUnderTest> list = {
      {"cpu", make_cpu},
      // The CUDA backend, in each compute dtype it offers (fp32 is the parity run); skipped where no GPU is
      // visible or the build has none. Another backend joins with one more line and its own factory.
      {"cuda-fp16", make_cuda<DType::F16>},
      {"cuda-bf16", make_cuda<DType::BF16>},
      {"cuda-fp32", make_cuda<DType::F32>},
  };
  return list;
}

// ---- error bounds ---------------------------------------------------------------------------------------

Bound bound(DType dt, Bound f32) {
  switch (dt) {
    case DType::F16:
      return {std::max(f32.rel, 8 * 0x1p-11), std::max(f32.abs, 4 * 0x1p-11)};
    case DType::BF16:
      return {std::max(f32.rel, 8 * 0x1p-8), std::max(f32.abs, 4 * 0x1p-8)};
    default:
      return f32;
  }
}

void expect_close(const std::vector<float>& got, const std::vector<double>& ref,
                  const std::vector<double>& tol) {
  REQUIRE(got.size() == ref.size());
  REQUIRE(tol.size() == ref.size());
  size_t bad = 0, worst = 0;
  double worst_ratio = -1;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - ref[i]);
    const bool ok = err <= tol[i] || static_cast<double>(got[i]) == ref[i];
    // err / tol, the worst element being the largest; NaN and 0-tolerance misses rank first.
    const double ratio =
        ok ? (tol[i] > 0 ? err / tol[i] : 0.0) : (err > 0 && tol[i] > 0 ? err / tol[i] : INFINITY);
    if (!ok) ++bad;
    if (ratio > worst_ratio) {
      worst_ratio = ratio;
      worst = i;
    }
  }
  INFO(bad << " of " << got.size() << " elements out of bounds; worst [" << worst << "]: got "
           << fmt(got[worst]) << ", ref " << fmt(ref[worst]) << ", |err| "
           << fmt(std::fabs(got[worst] - ref[worst])) << ", allowed " << fmt(tol[worst]));
  CHECK(bad == 0);
}

void expect_close(const std::vector<float>& got, const std::vector<double>& ref, Bound b,
                  const std::vector<double>& mag) {
  std::vector<double> tol(ref.size());
  for (size_t i = 0; i < ref.size(); ++i) tol[i] = b.abs + b.rel * (mag.empty() ? std::fabs(ref[i]) : mag[i]);
  INFO("bound: " << b.rel << " relative + " << b.abs << " absolute");
  expect_close(got, ref, tol);
}

void expect_bits(const std::vector<float>& got, const std::vector<float>& ref) {
  REQUIRE(got.size() == ref.size());
  size_t bad = 0, first = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (std::memcmp(&got[i], &ref[i], sizeof(float)) != 0 && bad++ == 0) first = i;
  INFO(bad << " of " << got.size() << " elements differ bitwise; first [" << first << "]: got "
           << (got.empty() ? "-" : fmt(got[first])) << ", ref " << (ref.empty() ? "-" : fmt(ref[first])));
  CHECK(bad == 0);
}

// ---- host data ------------------------------------------------------------------------------------------

std::vector<float> randn(size_t n, uint32_t seed, float scale, float offset) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = offset + scale * d(g);
  return v;
}

void round_to(DType dt, std::vector<float>& v) {
  if (dt == DType::F32 || v.empty()) return;
  std::vector<uint16_t> tmp(v.size());
  quant::convert(DType::F32, v.data(), dt, tmp.data(), v.size());
  quant::convert(dt, tmp.data(), DType::F32, v.data(), v.size());
}

// ---- moving data through the Backend's API --------------------------------------------------------------

Tensor Rig::tensor(DType t, const std::vector<int64_t>& dims) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  dev_.push_back(be_.alloc(static_cast<size_t>(n) * quant::dtype_size(t), "op test tensor"));
  return Tensor(dev_.back().data(), t, dims);
}

Tensor Rig::input(std::vector<float>& v, const std::vector<int64_t>& dims) {
  round_to(dt_, v);
  Tensor t = tensor(dt_, dims);
  REQUIRE(static_cast<size_t>(t.numel()) == v.size());
  void* host = stage(t.bytes());
  quant::convert(DType::F32, v.data(), dt_, host, v.size());
  be_.upload(t, host, s_);
  return t;
}

Tensor Rig::sentinel(const std::vector<int64_t>& dims, std::vector<float>* values) {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  std::vector<float> v(static_cast<size_t>(n));
  for (size_t i = 0; i < v.size(); ++i) v[i] = 100.0f + static_cast<float>(i % 7);
  Tensor t = input(v, dims);
  if (values) *values = v;
  return t;
}

const uint8_t* Rig::bytes(const void* src, size_t n) {
  dev_.push_back(be_.alloc(n, "op test blob"));
  void* host = stage(n);
  std::memcpy(host, src, n);
  be_.copy_to_device(dev_.back().data(), host, n, s_);
  return dev_.back().bytes_ptr();
}

std::vector<float> Rig::read(const Tensor& t) {
  offload::HostBuffer host = be_.alloc_host(t.bytes(), "op test download");
  be_.download(host.data(), t, s_);
  s_.synchronize();
  std::vector<float> v(static_cast<size_t>(t.numel()));
  quant::convert(t.dtype, host.data(), DType::F32, v.data(), v.size());
  return v;
}

void* Rig::stage(size_t n) {
  host_.push_back(be_.alloc_host(n, "op test upload"));
  return host_.back().data();
}

}  // namespace zinc::test::ops
