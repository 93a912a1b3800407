// The harness shared by the backend op tests (tests/unit/test_ops_*.cpp): backend ops against independent
// references, table-driven over every backend under test (as llama.cpp's test-backend-ops).
//
// How it works: each op has a table of cases (odd sizes on purpose). For every backend in backends() and
// every case, inputs are made on the host in fp32, rounded to the backend's compute dtype, staged in pinned
// host buffers (alloc_host) and uploaded with the backend's own upload() on its compute stream; the op runs
// on that stream; outputs come back with download() and a stream synchronize before the host reads them.
// Device pointers are never read on the host. References are scalar double-precision implementations of the
// contracts in runtime/backend/backend.hpp, computed from the rounded inputs (never from the CPU backend,
// which is itself under test). Each case has an fp32 error bound, loosened by bound() for F16/BF16 compute;
// a failing case reports how many elements are wrong and the worst one (index, got, ref, allowed error).
//
// How a backend joins: add one line to the list in backends() (backend_ops_harness.cpp: {"name", factory}).
// The factory returns the backend, or nullptr with a skip reason when it cannot run on this machine (no GPU,
// not built); a skipped backend runs no assertions and is reported with WARN("SKIP: ...") (Catch2 2.x has
// no SKIP macro).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "catch.hpp"
#include "quant/dtype.hpp"
#include "runtime/backend/backend.hpp"

namespace zinc::test::ops {

// ---- backends under test --------------------------------------------------------------------------------

// Makes the backend with an arena budget (0 = unlimited), or returns nullptr and says why it is skipped.
using BackendFactory = std::unique_ptr<runtime::Backend> (*)(size_t budget_bytes, std::string* skip_reason);

struct BackendUnderTest {
  const char* name;
  BackendFactory make;
};

// Every backend under test, in table order (cpu, then the CUDA backend in each compute dtype).
const std::vector<BackendUnderTest>& backends();

// Runs body(backend) for every backend under test. Backends that cannot run here run no assertions and are
// reported with one warning per skip reason.
template <typename Body>
void for_each_backend(const char* what, Body&& body, size_t budget_bytes = 0) {
  std::vector<std::pair<std::string, std::string>> skipped;  // reason, backend names
  for (const BackendUnderTest& entry : backends()) {
    std::string skip_reason;
    std::unique_ptr<runtime::Backend> be = entry.make(budget_bytes, &skip_reason);
    if (!be) {
      auto same = std::find_if(skipped.begin(), skipped.end(),
                               [&](const auto& s) { return s.first == skip_reason; });
      if (same == skipped.end())
        skipped.emplace_back(skip_reason, entry.name);
      else
        same->second += std::string(", ") + entry.name;
      continue;
    }
    INFO("backend " << entry.name << " (compute " << quant::dtype_name(be->compute_dtype()) << ")");
    body(*be);
  }
  for (const auto& s : skipped) WARN("SKIP: " << what << " on " << s.second << ": " << s.first);
}

// ---- error bounds ---------------------------------------------------------------------------------------

// Allowed error of one element: abs + rel * magnitude (the magnitude is |ref| unless an op says otherwise,
// e.g. sum |x_k w_k| for a dot product).
struct Bound {
  double rel;
  double abs;
};

// The bound of a case for a compute dtype: the case's own fp32 bound for F32; for F16 and BF16 at least
// 8 units in the last place relative (2^-11 and 2^-8 per unit) and 4 units of 1.0 absolute, since inputs,
// intermediates and outputs are rounded to the compute dtype there.
Bound bound(quant::DType dt, Bound f32);

// Checks got[i] against ref[i] within tol[i]; NaN and inf count as wrong unless ref is the same inf. A
// failure reports how many elements are out of bounds and the worst one.
void expect_close(const std::vector<float>& got, const std::vector<double>& ref,
                  const std::vector<double>& tol);

// The same with tol[i] = b.abs + b.rel * mag[i] (mag empty: |ref[i]|).
void expect_close(const std::vector<float>& got, const std::vector<double>& ref, Bound b,
                  const std::vector<double>& mag = {});

// Bit-exact comparison (data movement, dequantization).
void expect_bits(const std::vector<float>& got, const std::vector<float>& ref);

// ---- host data ------------------------------------------------------------------------------------------

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f, float offset = 0.0f);

// v rounded to dt and back (the values a backend of compute dtype dt actually holds).
void round_to(quant::DType dt, std::vector<float>& v);

// ---- moving data through the Backend's API --------------------------------------------------------------

// Device tensors and their pinned staging buffers for one case. Uploads are queued on the compute stream;
// their staging buffers stay alive and unchanged until the destructor, which waits for the stream first.
class Rig {
 public:
  explicit Rig(runtime::Backend& be) : be_(be), s_(be.compute_stream()), dt_(be.compute_dtype()) {}
  ~Rig() { s_.synchronize(); }
  Rig(const Rig&) = delete;
  Rig& operator=(const Rig&) = delete;

  quant::DType dtype() const { return dt_; }
  const Stream& stream() const { return s_; }

  // An uninitialized device tensor.
  runtime::Tensor tensor(quant::DType t, const std::vector<int64_t>& dims);
  // A device tensor in the compute dtype holding v; v is first rounded to the compute dtype in place, so the
  // caller's reference sees what the backend sees.
  runtime::Tensor input(std::vector<float>& v, const std::vector<int64_t>& dims);
  // A device tensor of type t (I32 ids, U8 masks, I64 keys, F32 slopes) holding the bytes of v.
  template <typename T>
  runtime::Tensor raw(quant::DType t, const std::vector<T>& v, const std::vector<int64_t>& dims) {
    REQUIRE(quant::dtype_size(t) == sizeof(T));
    runtime::Tensor d = tensor(t, dims);
    REQUIRE(static_cast<size_t>(d.numel()) == v.size());
    void* host = stage(d.bytes());
    std::memcpy(host, v.data(), d.bytes());
    be_.upload(d, host, s_);
    return d;
  }
  // A compute-dtype tensor filled with a sentinel pattern (small integers, exact in every float dtype), to
  // show elements an op should have left alone or should have written.
  runtime::Tensor sentinel(const std::vector<int64_t>& dims, std::vector<float>* values = nullptr);
  // Raw bytes into a device buffer through copy_to_device (stored weight blobs).
  const uint8_t* bytes(const void* src, size_t n);

  // A float tensor's values in fp32: downloaded, then read after a stream synchronize.
  std::vector<float> read(const runtime::Tensor& t);
  template <typename T>
  std::vector<T> read_raw(const runtime::Tensor& t) {
    REQUIRE(quant::dtype_size(t.dtype) == sizeof(T));
    offload::HostBuffer host = be_.alloc_host(t.bytes(), "op test download");
    be_.download(host.data(), t, s_);
    s_.synchronize();
    std::vector<T> v(static_cast<size_t>(t.numel()));
    std::memcpy(v.data(), host.data(), t.bytes());
    return v;
  }

 private:
  void* stage(size_t n);
  runtime::Backend& be_;
  const Stream& s_;
  quant::DType dt_;
  std::vector<offload::DeviceBuffer> dev_;
  std::vector<offload::HostBuffer> host_;
};

}  // namespace zinc::test::ops
