// Backend ops against independent references, table-driven over every backend under test (as llama.cpp's
// test-backend-ops): embedding, rms_norm, layer_norm, linear, add, activation, silu_mul, rope, kv_write +
// attention, split_qkv, last_rows, dequantize (every stored format), sample; and the memory accounting of a
// backend's arena (budget refusal, high-water mark).
//
// How it works: each op has a table of cases (odd sizes on purpose). For every backend in kBackends and
// every case, inputs are made on the host in fp32, rounded to the backend's compute dtype, staged in pinned
// host buffers (alloc_host) and uploaded with the backend's own upload() on its compute stream; the op runs
// on that stream; outputs come back with download() and a stream synchronize before the host reads them.
// Device pointers are never read on the host. References are scalar double-precision implementations of the
// contracts in runtime/backend/backend.hpp, computed from the rounded inputs (never from the CPU backend,
// which is itself under test). Each case has an fp32 error bound, loosened by bound() for F16/BF16 compute;
// a failing case reports how many elements are wrong and the worst one (index, got, ref, allowed error).
//
// How a backend joins: add one line to kBackends below ({"name", factory}). The factory returns the backend,
// or nullptr with a skip reason when it cannot run on this machine (no GPU, not built); a skipped backend
// runs no assertions and is reported with WARN("SKIP: ...") (Catch2 2.x has no SKIP macro).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iomanip>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "catch.hpp"
#include "quant/dtype.hpp"
#include "quant/quant_view.hpp"
#include "quant/quantize.hpp"
#include "runtime/backend/backend.hpp"
#include "runtime/backend/cuda_probe.hpp"
#include "runtime/backend/sampling.hpp"
#include "test_util.hpp"

using namespace zinc;
using quant::DType;
using runtime::Backend;
using runtime::Tensor;

namespace {

// ---- backends under test --------------------------------------------------------------------------------

// Makes the backend with an arena budget (0 = unlimited), or returns nullptr and says why it is skipped.
using BackendFactory = std::unique_ptr<Backend> (*)(size_t budget_bytes, std::string* skip_reason);

struct BackendUnderTest {
  const char* name;
  BackendFactory make;
};

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

const BackendUnderTest kBackends[] = {
    {"cpu", make_cpu},
    // The CUDA backend, in each compute dtype it offers (fp32 is the parity run); skipped where no GPU is
    // visible or the build has none. Another backend joins with one more line and its own factory.
    {"cuda-fp16", make_cuda<DType::F16>},
    {"cuda-bf16", make_cuda<DType::BF16>},
    {"cuda-fp32", make_cuda<DType::F32>},
};

// Runs body(backend) for every backend under test. Backends that cannot run here run no assertions and are
// reported with one warning per skip reason.
template <typename Body>
void for_each_backend(const char* what, Body&& body, size_t budget_bytes = 0) {
  std::vector<std::pair<std::string, std::string>> skipped;  // reason, backend names
  for (const BackendUnderTest& entry : kBackends) {
    std::string skip_reason;
    std::unique_ptr<Backend> be = entry.make(budget_bytes, &skip_reason);
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

std::string fmt(double v) {
  std::ostringstream o;
  o << std::setprecision(9) << v;
  return o.str();
}

// Checks got[i] against ref[i] within tol[i]; NaN and inf count as wrong unless ref is the same inf.
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

// The same with tol[i] = b.abs + b.rel * mag[i] (mag empty: |ref[i]|).
void expect_close(const std::vector<float>& got, const std::vector<double>& ref, Bound b,
                  const std::vector<double>& mag = {}) {
  std::vector<double> tol(ref.size());
  for (size_t i = 0; i < ref.size(); ++i) tol[i] = b.abs + b.rel * (mag.empty() ? std::fabs(ref[i]) : mag[i]);
  INFO("bound: " << b.rel << " relative + " << b.abs << " absolute");
  expect_close(got, ref, tol);
}

// Bit-exact comparison (data movement, dequantization).
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

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f, float offset = 0.0f) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = offset + scale * d(g);
  return v;
}

// v rounded to dt and back (the values a backend of compute dtype dt actually holds).
void round_to(DType dt, std::vector<float>& v) {
  if (dt == DType::F32 || v.empty()) return;
  std::vector<uint16_t> tmp(v.size());
  quant::convert(DType::F32, v.data(), dt, tmp.data(), v.size());
  quant::convert(dt, tmp.data(), DType::F32, v.data(), v.size());
}

// ---- moving data through the Backend's API --------------------------------------------------------------

// Device tensors and their pinned staging buffers for one case. Uploads are queued on the compute stream;
// their staging buffers stay alive and unchanged until the destructor, which waits for the stream first.
class Rig {
 public:
  explicit Rig(Backend& be) : be_(be), s_(be.compute_stream()), dt_(be.compute_dtype()) {}
  ~Rig() { s_.synchronize(); }
  Rig(const Rig&) = delete;
  Rig& operator=(const Rig&) = delete;

  DType dtype() const { return dt_; }
  const Stream& stream() const { return s_; }

  // An uninitialized device tensor.
  Tensor tensor(DType t, const std::vector<int64_t>& dims) {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    dev_.push_back(be_.alloc(static_cast<size_t>(n) * quant::dtype_size(t), "op test tensor"));
    return Tensor(dev_.back().data(), t, dims);
  }
  // A device tensor in the compute dtype holding v; v is first rounded to the compute dtype in place, so the
  // caller's reference sees what the backend sees.
  Tensor input(std::vector<float>& v, const std::vector<int64_t>& dims) {
    round_to(dt_, v);
    Tensor t = tensor(dt_, dims);
    REQUIRE(static_cast<size_t>(t.numel()) == v.size());
    void* host = stage(t.bytes());
    quant::convert(DType::F32, v.data(), dt_, host, v.size());
    be_.upload(t, host, s_);
    return t;
  }
  // A device tensor of type t (I32 ids, U8 masks, I64 keys, F32 slopes) holding the bytes of v.
  template <typename T>
  Tensor raw(DType t, const std::vector<T>& v, const std::vector<int64_t>& dims) {
    REQUIRE(quant::dtype_size(t) == sizeof(T));
    Tensor d = tensor(t, dims);
    REQUIRE(static_cast<size_t>(d.numel()) == v.size());
    void* host = stage(d.bytes());
    std::memcpy(host, v.data(), d.bytes());
    be_.upload(d, host, s_);
    return d;
  }
  // A compute-dtype tensor filled with a sentinel pattern (small integers, exact in every float dtype), to
  // show elements an op should have left alone or should have written.
  Tensor sentinel(const std::vector<int64_t>& dims, std::vector<float>* values = nullptr) {
    int64_t n = 1;
    for (int64_t d : dims) n *= d;
    std::vector<float> v(static_cast<size_t>(n));
    for (size_t i = 0; i < v.size(); ++i) v[i] = 100.0f + static_cast<float>(i % 7);
    Tensor t = input(v, dims);
    if (values) *values = v;
    return t;
  }
  // Raw bytes into a device buffer through copy_to_device (stored weight blobs).
  const uint8_t* bytes(const void* src, size_t n) {
    dev_.push_back(be_.alloc(n, "op test blob"));
    void* host = stage(n);
    std::memcpy(host, src, n);
    be_.copy_to_device(dev_.back().data(), host, n, s_);
    return dev_.back().bytes_ptr();
  }

  // A float tensor's values in fp32: downloaded, then read after a stream synchronize.
  std::vector<float> read(const Tensor& t) {
    offload::HostBuffer host = be_.alloc_host(t.bytes(), "op test download");
    be_.download(host.data(), t, s_);
    s_.synchronize();
    std::vector<float> v(static_cast<size_t>(t.numel()));
    quant::convert(t.dtype, host.data(), DType::F32, v.data(), v.size());
    return v;
  }
  template <typename T>
  std::vector<T> read_raw(const Tensor& t) {
    REQUIRE(quant::dtype_size(t.dtype) == sizeof(T));
    offload::HostBuffer host = be_.alloc_host(t.bytes(), "op test download");
    be_.download(host.data(), t, s_);
    s_.synchronize();
    std::vector<T> v(static_cast<size_t>(t.numel()));
    std::memcpy(v.data(), host.data(), t.bytes());
    return v;
  }

 private:
  void* stage(size_t n) {
    host_.push_back(be_.alloc_host(n, "op test upload"));
    return host_.back().data();
  }
  Backend& be_;
  const Stream& s_;
  DType dt_;
  std::vector<offload::DeviceBuffer> dev_;
  std::vector<offload::HostBuffer> host_;
};

}  // namespace

// ---- embedding ------------------------------------------------------------------------------------------

TEST_CASE("backend ops: embedding gathers table rows", "[ops]") {
  struct Case {
    int n, vocab, d;
  };
  const Case cases[] = {{1, 1, 1}, {1, 7, 5}, {5, 33, 37}, {17, 101, 64}, {3, 257, 129}};
  for_each_backend("embedding", [&](Backend& be) {
    for (const Case& c : cases) {
      INFO("embedding n=" << c.n << " V=" << c.vocab << " D=" << c.d);
      Rig rig(be);
      auto table = randn(static_cast<size_t>(c.vocab) * c.d, 11 + c.d);
      std::vector<int32_t> ids(static_cast<size_t>(c.n));
      for (int i = 0; i < c.n; ++i) ids[i] = (i * 37 + 3) % c.vocab;  // repeats
      ids[0] = c.vocab - 1;
      if (c.n > 2) ids[c.n - 1] = 0;
      Tensor t_table = rig.input(table, {c.vocab, c.d});
      Tensor t_ids = rig.raw(DType::I32, ids, {c.n});
      Tensor out = rig.sentinel({c.n, c.d});
      be.embedding(t_ids, t_table, out, rig.stream());
      std::vector<float> ref(static_cast<size_t>(c.n) * c.d);
      for (int i = 0; i < c.n; ++i)
        for (int j = 0; j < c.d; ++j)
          ref[static_cast<size_t>(i) * c.d + j] = table[static_cast<size_t>(ids[i]) * c.d + j];
      expect_bits(rig.read(out), ref);
    }
  });
}

// ---- rms_norm, layer_norm -------------------------------------------------------------------------------

namespace {

// Rows of varied magnitude: normal rows, one large, one tiny (where eps matters), one with an offset.
std::vector<float> norm_input(int n, int d, uint32_t seed) {
  auto x = randn(static_cast<size_t>(n) * d, seed);
  for (int i = 0; i < n; ++i) {
    const float scale = i % 4 == 1 ? 50.f : i % 4 == 2 ? 1e-3f : 1.f;
    const float offset = i % 4 == 3 ? 4.f : 0.f;
    for (int j = 0; j < d; ++j)
      x[static_cast<size_t>(i) * d + j] = x[static_cast<size_t>(i) * d + j] * scale + offset;
  }
  return x;
}

}  // namespace

TEST_CASE("backend ops: rms_norm is x * rsqrt(mean(x^2) + eps) * w", "[ops]") {
  struct Case {
    int n, d;
    float eps;
    Bound f32;
  };
  const Case cases[] = {{1, 1, 1e-6f, {1e-5, 1e-6}},   {3, 37, 1e-6f, {1e-5, 1e-6}},
                        {4, 37, 1e-5f, {1e-5, 1e-6}},  {7, 128, 1e-6f, {1e-5, 1e-6}},
                        {5, 128, 1e-5f, {1e-5, 1e-6}}, {2, 1001, 1e-5f, {2e-5, 1e-6}}};
  for_each_backend("rms_norm", [&](Backend& be) {
    for (const Case& c : cases) {
      INFO("rms_norm n=" << c.n << " D=" << c.d << " eps=" << c.eps);
      Rig rig(be);
      auto x = norm_input(c.n, c.d, 21 + c.d + c.n);
      auto w = randn(static_cast<size_t>(c.d), 22 + c.d, 0.5f, 1.0f);
      Tensor tx = rig.input(x, {c.n, c.d}), tw = rig.input(w, {c.d});
      Tensor out = rig.sentinel({c.n, c.d});
      be.rms_norm(tx, tw, c.eps, out, rig.stream());
      std::vector<double> ref(x.size());
      for (int i = 0; i < c.n; ++i) {
        const float* xi = x.data() + static_cast<size_t>(i) * c.d;
        double ss = 0;
        for (int j = 0; j < c.d; ++j) ss += static_cast<double>(xi[j]) * xi[j];
        const double r = 1.0 / std::sqrt(ss / c.d + static_cast<double>(c.eps));
        for (int j = 0; j < c.d; ++j) ref[static_cast<size_t>(i) * c.d + j] = xi[j] * r * w[j];
      }
      expect_close(rig.read(out), ref, bound(rig.dtype(), c.f32));
    }
  });
}

TEST_CASE("backend ops: layer_norm with and without affine parameters", "[ops]") {
  struct Case {
    int n, d;
    bool affine;
    Bound f32;
  };
  const Case cases[] = {{1, 1, true, {1e-5, 1e-5}},    {3, 37, true, {1e-5, 1e-5}},
                        {4, 37, false, {1e-5, 1e-5}},  {5, 128, true, {1e-5, 1e-5}},
                        {8, 128, false, {1e-5, 1e-5}}, {2, 1001, true, {2e-5, 2e-5}},
                        {1, 1001, false, {2e-5, 2e-5}}};
  const float eps = 1e-5f;
  for_each_backend("layer_norm", [&](Backend& be) {
    for (const Case& c : cases) {
      INFO("layer_norm n=" << c.n << " D=" << c.d << (c.affine ? " affine" : " no affine"));
      Rig rig(be);
      auto x = norm_input(c.n, c.d, 31 + c.d + c.n);
      auto w = randn(static_cast<size_t>(c.d), 32 + c.d, 0.5f, 1.0f);
      auto b = randn(static_cast<size_t>(c.d), 33 + c.d, 0.3f);
      Tensor tx = rig.input(x, {c.n, c.d});
      Tensor tw = c.affine ? rig.input(w, {c.d}) : Tensor();
      Tensor tb = c.affine ? rig.input(b, {c.d}) : Tensor();
      Tensor out = rig.sentinel({c.n, c.d});
      be.layer_norm(tx, tw, tb, eps, out, rig.stream());
      std::vector<double> ref(x.size()), mag(x.size());
      for (int i = 0; i < c.n; ++i) {
        const float* xi = x.data() + static_cast<size_t>(i) * c.d;
        double mean = 0, var = 0;
        for (int j = 0; j < c.d; ++j) mean += xi[j];
        mean /= c.d;
        for (int j = 0; j < c.d; ++j) var += (xi[j] - mean) * (xi[j] - mean);
        var /= c.d;
        const double r = 1.0 / std::sqrt(var + eps);
        for (int j = 0; j < c.d; ++j) {
          const double y = (xi[j] - mean) * r;
          const size_t k = static_cast<size_t>(i) * c.d + j;
          ref[k] = c.affine ? y * w[j] + b[j] : y;
          // Error scale: the terms before a bias that may cancel them.
          mag[k] = std::fabs(y) * (c.affine ? std::fabs(w[j]) : 1.0) + (c.affine ? std::fabs(b[j]) : 0.0);
        }
      }
      expect_close(rig.read(out), ref, bound(rig.dtype(), c.f32), mag);
    }
  });
}

// ---- linear ---------------------------------------------------------------------------------------------

TEST_CASE("backend ops: linear is x w^T + bias", "[ops]") {
  struct Case {
    int n, in, out;
    bool bias;
    Bound f32;  // relative to sum |x_k w_k| + |bias|
  };
  const Case cases[] = {{1, 33, 65, true, {1e-5, 1e-7}},  {1, 33, 65, false, {1e-5, 1e-7}},
                        {3, 33, 65, true, {1e-5, 1e-7}},  {3, 33, 65, false, {1e-5, 1e-7}},
                        {17, 33, 65, true, {1e-5, 1e-7}}, {17, 33, 65, false, {1e-5, 1e-7}},
                        {3, 1, 7, true, {1e-5, 1e-7}},    {17, 128, 96, false, {1e-5, 1e-7}},
                        {5, 257, 31, true, {2e-5, 1e-7}}, {1, 1001, 3, true, {2e-5, 1e-7}}};
  for_each_backend("linear", [&](Backend& be) {
    for (const Case& c : cases) {
      INFO("linear n=" << c.n << " in=" << c.in << " out=" << c.out << (c.bias ? " bias" : " no bias"));
      Rig rig(be);
      auto x = randn(static_cast<size_t>(c.n) * c.in, 41 + c.n + c.in);
      auto w = randn(static_cast<size_t>(c.out) * c.in, 42 + c.out, 0.2f);
      auto b = randn(static_cast<size_t>(c.out), 43 + c.out);
      Tensor tx = rig.input(x, {c.n, c.in}), tw = rig.input(w, {c.out, c.in});
      Tensor tb = c.bias ? rig.input(b, {c.out}) : Tensor();
      Tensor out = rig.sentinel({c.n, c.out});
      be.linear(tx, tw, tb, out, rig.stream());
      std::vector<double> ref(static_cast<size_t>(c.n) * c.out), mag(ref.size());
      for (int i = 0; i < c.n; ++i)
        for (int o = 0; o < c.out; ++o) {
          double acc = c.bias ? b[o] : 0.0, m = c.bias ? std::fabs(b[o]) : 0.0;
          for (int k = 0; k < c.in; ++k) {
            const double t = static_cast<double>(x[static_cast<size_t>(i) * c.in + k]) *
                             w[static_cast<size_t>(o) * c.in + k];
            acc += t;
            m += std::fabs(t);
          }
          ref[static_cast<size_t>(i) * c.out + o] = acc;
          mag[static_cast<size_t>(i) * c.out + o] = m;
        }
      expect_close(rig.read(out), ref, bound(rig.dtype(), c.f32), mag);
    }
  });
}

// ---- add ------------------------------------------------------------------------------------------------

TEST_CASE("backend ops: add, with the output aliasing an input", "[ops]") {
  enum class Alias { None, A, B };
  struct Case {
    int rows, cols;
    Alias alias;
  };
  const Case cases[] = {{1, 1, Alias::None}, {1, 1, Alias::A},      {3, 37, Alias::A},
                        {3, 37, Alias::B},   {17, 65, Alias::None}, {2, 4097, Alias::A}};
  for_each_backend("add", [&](Backend& be) {
    for (const Case& c : cases) {
      INFO("add " << c.rows << "x" << c.cols << " out "
                  << (c.alias == Alias::A   ? "aliases a"
                      : c.alias == Alias::B ? "aliases b"
                                            : "separate"));
      Rig rig(be);
      auto a = randn(static_cast<size_t>(c.rows) * c.cols, 51 + c.cols);
      auto b = randn(a.size(), 52 + c.cols, 3.0f);
      Tensor ta = rig.input(a, {c.rows, c.cols}), tb = rig.input(b, {c.rows, c.cols});
      const Tensor out = c.alias == Alias::A ? ta : c.alias == Alias::B ? tb : rig.sentinel({c.rows, c.cols});
      be.add(ta, tb, out, rig.stream());
      std::vector<double> ref(a.size());
      for (size_t i = 0; i < a.size(); ++i) ref[i] = static_cast<double>(a[i]) + b[i];
      // fp32: the sum correctly rounded is within half an ulp; one ulp is allowed.
      expect_close(rig.read(out), ref, bound(rig.dtype(), {0x1p-23, 0}));
    }
  });
}

// ---- activation, silu_mul -------------------------------------------------------------------------------

namespace {

double act_ref(runtime::Activation act, double x) {
  switch (act) {
    case runtime::Activation::Relu:
      return x > 0 ? x : 0;
    case runtime::Activation::Silu:
      return x / (1 + std::exp(-x));
    case runtime::Activation::Gelu:
      return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    case runtime::Activation::GeluTanh:  // BLOOM's bloom_gelu_forward
      return x * 0.5 * (1.0 + std::tanh(0.79788456 * x * (1 + 0.044715 * x * x)));
  }
  return 0;
}

const char* act_name(runtime::Activation act) {
  switch (act) {
    case runtime::Activation::Relu:
      return "relu";
    case runtime::Activation::Silu:
      return "silu";
    case runtime::Activation::Gelu:
      return "gelu";
    case runtime::Activation::GeluTanh:
      return "gelu-tanh";
  }
  return "?";
}

// Normal values spread over [-8, 8] plus fixed points: 0, +-tiny, the tails.
std::vector<float> act_input(size_t n, uint32_t seed) {
  auto x = randn(n, seed, 3.0f);
  const float fixed[] = {0.f, -0.f, 1e-4f, -1e-4f, 1.f, -1.f, -5.f, 5.f, -12.f, 12.f, -30.f, 30.f, 0.5f};
  for (size_t i = 0; i < n && i < sizeof(fixed) / sizeof(fixed[0]); ++i) x[i] = fixed[i];
  return x;
}

}  // namespace

TEST_CASE("backend ops: activations (relu, silu, erf gelu, BLOOM's tanh gelu) in place", "[ops]") {
  struct Case {
    runtime::Activation act;
    int rows, cols;
  };
  std::vector<Case> cases;
  for (auto act : {runtime::Activation::Relu, runtime::Activation::Silu, runtime::Activation::Gelu,
                   runtime::Activation::GeluTanh})
    for (const auto& shape : std::vector<std::pair<int, int>>{{1, 1}, {1, 37}, {3, 65}, {1, 1023}})
      cases.push_back({act, shape.first, shape.second});
  for_each_backend("activation", [&](Backend& be) {
    for (const Case& c : cases) {
      INFO("activation " << act_name(c.act) << " " << c.rows << "x" << c.cols);
      Rig rig(be);
      auto x = act_input(static_cast<size_t>(c.rows) * c.cols, 61 + c.cols + static_cast<int>(c.act));
      Tensor tx = rig.input(x, {c.rows, c.cols});
      be.activation(tx, c.act, rig.stream());
      std::vector<double> ref(x.size());
      for (size_t i = 0; i < x.size(); ++i) ref[i] = act_ref(c.act, x[i]);
      expect_close(rig.read(tx), ref, bound(rig.dtype(), {1e-5, 1e-6}));
    }
  });
}

TEST_CASE("backend ops: silu_mul is silu(gate) * up", "[ops]") {
  struct Case {
    int rows, cols;
  };
  const Case cases[] = {{1, 1}, {1, 37}, {3, 65}, {7, 1001}};
  for_each_backend("silu_mul", [&](Backend& be) {
    for (const Case& c : cases) {
      INFO("silu_mul " << c.rows << "x" << c.cols);
      Rig rig(be);
      auto g = act_input(static_cast<size_t>(c.rows) * c.cols, 71 + c.cols);
      auto u = randn(g.size(), 72 + c.cols, 2.0f);
      Tensor tg = rig.input(g, {c.rows, c.cols}), tu = rig.input(u, {c.rows, c.cols});
      Tensor out = rig.sentinel({c.rows, c.cols});
      be.silu_mul(tg, tu, out, rig.stream());
      std::vector<double> ref(g.size());
      for (size_t i = 0; i < g.size(); ++i) ref[i] = act_ref(runtime::Activation::Silu, g[i]) * u[i];
      expect_close(rig.read(out), ref, bound(rig.dtype(), {1e-5, 1e-6}));
    }
  });
}

// ---- rope -----------------------------------------------------------------------------------------------

TEST_CASE("backend ops: rope rotates halves by pos * theta^(-2i/hd)", "[ops]") {
  struct Case {
    int heads, hd;
    float theta;
    std::vector<int32_t> pos;  // one per row
  };
  const Case cases[] = {{1, 24, 10000.f, {0}},
                        {2, 24, 10000.f, {0, 1, 4000}},
                        {3, 64, 10000.f, {5, 0, 4000, 17}},
                        {1, 128, 500000.f, {4000, 3}},
                        {3, 128, 10000.f, {0, 1, 2, 4095, 4000}},
                        {2, 64, 500000.f, {0, 100, 4000}},
                        {3, 24, 500000.f, {7, 4001, 0}}};
  for_each_backend("rope", [&](Backend& be) {
    for (const Case& c : cases) {
      const int n = static_cast<int>(c.pos.size()), half = c.hd / 2;
      INFO("rope n=" << n << " heads=" << c.heads << " hd=" << c.hd << " theta=" << c.theta);
      Rig rig(be);
      auto x = randn(static_cast<size_t>(n) * c.heads * c.hd, 81 + c.hd + n);
      Tensor tx = rig.input(x, {n, c.heads, c.hd});
      Tensor tp = rig.raw(DType::I32, c.pos, {n});
      be.rope(tx, tp, c.theta, rig.stream());
      const Bound b = bound(rig.dtype(), {1e-5, 1e-6});
      std::vector<double> ref(x.size()), tol(x.size());
      for (int r = 0; r < n; ++r)
        for (int h = 0; h < c.heads; ++h) {
          const size_t base = (static_cast<size_t>(r) * c.heads + h) * c.hd;
          for (int i = 0; i < half; ++i) {
            const double e = 2.0 * i / c.hd, angle = c.pos[r] * std::pow(static_cast<double>(c.theta), -e);
            const double x1 = x[base + i], x2 = x[base + i + half], norm = std::hypot(x1, x2);
            ref[base + i] = x1 * std::cos(angle) - x2 * std::sin(angle);
            ref[base + i + half] = x2 * std::cos(angle) + x1 * std::sin(angle);
            // The angle in fp32 (as transformers computes it: inv_freq, then pos * inv_freq) is off by a few
            // half-ulps of itself, plus the rounding of the exponent e amplified by e * ln(theta); at
            // position 4000 that is up to ~1e-4 rad, so the allowed error grows with the angle.
            const double angle_err = 0x1p-24 * angle * (4 + e * std::log(static_cast<double>(c.theta)));
            const double t = b.abs + norm * (b.rel + angle_err);
            tol[base + i] = tol[base + i + half] = t;
          }
        }
      INFO("bound: " << b.rel << " relative + " << b.abs << " absolute + the fp32 angle's error");
      expect_close(rig.read(tx), ref, tol);
    }
  });
}

// ---- kv_write + attention -------------------------------------------------------------------------------

namespace {

struct AttnCase {
  int batch, heads, kv_heads, head_dim, t_max;
  int t0, tq;             // t0 > 0: the cache already holds keys 0 .. t0-1 (written first with kv_write)
  std::vector<int> pads;  // left padding of each sequence (masked keys 0 .. pad-1)
  bool alibi;
  int hole = 0;            // > 0: sequence 0 also masks every hole-th key (a mask that is not a prefix)
  bool dead_last = false;  // the last sequence has no real key at all (its queries output zeros)
  Bound f32 = {1e-5, 1e-5};
};

std::string describe(const AttnCase& c) {
  std::ostringstream o;
  o << "attention B=" << c.batch << " H=" << c.heads << " KVH=" << c.kv_heads << " hd=" << c.head_dim
    << " t_max=" << c.t_max << " t0=" << c.t0 << " tq=" << c.tq << " pads={";
  for (size_t i = 0; i < c.pads.size(); ++i) o << (i ? "," : "") << c.pads[i];
  o << "}" << (c.alibi ? " alibi" : "") << (c.hole ? " holes" : "") << (c.dead_last ? " dead-last" : "");
  return o.str();
}

}  // namespace

TEST_CASE("backend ops: kv_write and causal attention over a [B, t_max, KVH, hd] cache", "[ops]") {
  const AttnCase cases[] = {
      // prefill (t0 = 0, tq > 1)
      {1, 1, 1, 24, 8, 0, 5, {0}, false},
      {2, 4, 4, 64, 16, 0, 7, {0, 3}, true},        // MHA, left padding: seq 1's first queries see no key
      {3, 8, 2, 64, 33, 0, 13, {2, 0, 5}, false},   // GQA
      {2, 3, 1, 128, 20, 0, 9, {4, 1}, true},       // MQA
      {3, 8, 2, 128, 64, 0, 31, {0, 7, 30}, true},  // GQA, only the last query of seq 2 sees a key
      {1, 8, 1, 24, 12, 0, 12, {0}, false},         // MQA, the cache full
      {2, 4, 2, 24, 10, 0, 8, {0, 2}, true, 3},     // mask with holes
      {2, 8, 2, 64, 32, 6, 5, {0, 3}, true},        // a chunk after a prefix (t0 > 0, tq > 1)
      // decode (tq = 1, t0 > 0)
      {1, 4, 4, 24, 16, 9, 1, {0}, false},
      {3, 8, 2, 64, 40, 23, 1, {0, 5, 22}, true},
      {2, 3, 1, 128, 64, 63, 1, {10, 0}, true},             // the last cache slot
      {3, 2, 2, 128, 24, 7, 1, {0, 2, 0}, false, 0, true},  // seq 2 without any real key
      {2, 8, 2, 24, 17, 11, 1, {3, 0}, true, 4},
  };
  for_each_backend("kv_write + attention", [&](Backend& be) {
    for (const AttnCase& c : cases) {
      INFO(describe(c));
      REQUIRE(static_cast<int>(c.pads.size()) == c.batch);
      Rig rig(be);
      const int B = c.batch, H = c.heads, KVH = c.kv_heads, hd = c.head_dim, T = c.t0 + c.tq;
      const int64_t kv_row = static_cast<int64_t>(KVH) * hd, q_row = static_cast<int64_t>(H) * hd;
      const uint32_t seed = static_cast<uint32_t>(101 + B * 7 + H * 5 + hd + c.t_max + c.t0);
      // The keys and values of positions 0 .. T-1 of every sequence, [B, T, KVH*hd].
      auto k_all = randn(static_cast<size_t>(B) * T * kv_row, seed + 1);
      auto v_all = randn(k_all.size(), seed + 2);
      round_to(rig.dtype(), k_all);
      round_to(rig.dtype(), v_all);
      auto q = randn(static_cast<size_t>(B) * c.tq * q_row, seed + 3);
      std::vector<uint8_t> mask(static_cast<size_t>(B) * c.t_max, 0);
      for (int b = 0; b < B; ++b)
        for (int j = 0; j < T; ++j) {
          bool real = j >= c.pads[b];
          if (c.hole > 0 && b == 0 && j % c.hole == c.hole - 1) real = false;
          if (c.dead_last && b == B - 1) real = false;
          mask[static_cast<size_t>(b) * c.t_max + j] = real;
        }
      std::vector<float> slopes(static_cast<size_t>(H));
      for (int h = 0; h < H; ++h) slopes[h] = std::pow(2.0f, -8.0f * (h + 1) / H);  // BLOOM's slopes

      // Caches start as the sentinel; kv_write fills positions 0 .. T-1 in one or two steps.
      std::vector<float> sentinel;
      Tensor kc = rig.sentinel({B, c.t_max, KVH, hd}, &sentinel), vc = rig.sentinel({B, c.t_max, KVH, hd});
      auto write_step = [&](int t0, int tq) {
        std::vector<float> ks(static_cast<size_t>(B) * tq * kv_row), vs(ks.size());
        for (int b = 0; b < B; ++b)
          for (int i = 0; i < tq; ++i) {
            const size_t src = (static_cast<size_t>(b) * T + t0 + i) * kv_row,
                         dst = (static_cast<size_t>(b) * tq + i) * kv_row;
            std::copy_n(k_all.begin() + src, kv_row, ks.begin() + dst);
            std::copy_n(v_all.begin() + src, kv_row, vs.begin() + dst);
          }
        runtime::AttentionShape ws{B, tq, t0, c.t_max, H, KVH, hd};
        be.kv_write(rig.input(ks, {B * tq, kv_row}), kc, ws, rig.stream());
        be.kv_write(rig.input(vs, {B * tq, kv_row}), vc, ws, rig.stream());
      };
      if (c.t0 > 0) write_step(0, c.t0);
      write_step(c.t0, c.tq);

      {  // kv_write: positions 0 .. T-1 hold the keys and values, the rest is untouched
        std::vector<float> k_ref(sentinel), v_ref(sentinel);
        for (int b = 0; b < B; ++b)
          for (int t = 0; t < T; ++t) {
            const size_t src = (static_cast<size_t>(b) * T + t) * kv_row,
                         dst = (static_cast<size_t>(b) * c.t_max + t) * kv_row;
            std::copy_n(k_all.begin() + src, kv_row, k_ref.begin() + dst);
            std::copy_n(v_all.begin() + src, kv_row, v_ref.begin() + dst);
          }
        {
          INFO("kv_write: key cache");
          expect_bits(rig.read(kc), k_ref);
        }
        INFO("kv_write: value cache");
        expect_bits(rig.read(vc), v_ref);
      }

      runtime::AttentionShape sh{B, c.tq, c.t0, c.t_max, H, KVH, hd};
      const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
      Tensor t_q = rig.input(q, {B * c.tq, q_row});
      Tensor tmask = rig.raw(DType::U8, mask, {B, c.t_max});
      Tensor tslopes = c.alibi ? rig.raw(DType::F32, slopes, {H}) : Tensor();
      Tensor out = rig.sentinel({B * c.tq, q_row});
      be.attention(t_q, kc, vc, tmask, tslopes, sh, scale, out, rig.stream());

      std::vector<double> ref(static_cast<size_t>(B) * c.tq * q_row, 0.0);
      int no_key_queries = 0;
      for (int b = 0; b < B; ++b)
        for (int i = 0; i < c.tq; ++i)
          for (int h = 0; h < H; ++h) {
            const int kvh = h / (H / KVH);
            const float* qv =
                q.data() + (static_cast<size_t>(b) * c.tq + i) * q_row + static_cast<size_t>(h) * hd;
            std::vector<double> s;
            std::vector<int> keys;
            int real_before = 0;  // ALiBi position: real keys of sequence b before j
            for (int j = 0; j <= c.t0 + i; ++j) {
              if (!mask[static_cast<size_t>(b) * c.t_max + j]) continue;
              const float* kv =
                  k_all.data() + (static_cast<size_t>(b) * T + j) * kv_row + static_cast<size_t>(kvh) * hd;
              double dot = 0;
              for (int d = 0; d < hd; ++d) dot += static_cast<double>(qv[d]) * kv[d];
              s.push_back(dot * scale + (c.alibi ? static_cast<double>(slopes[h]) * real_before : 0.0));
              keys.push_back(j);
              ++real_before;
            }
            if (keys.empty()) {
              if (h == 0) ++no_key_queries;
              continue;  // outputs zeros
            }
            const double mx = *std::max_element(s.begin(), s.end());
            double sum = 0;
            for (double& x : s) sum += (x = std::exp(x - mx));
            double* o =
                ref.data() + (static_cast<size_t>(b) * c.tq + i) * q_row + static_cast<size_t>(h) * hd;
            for (size_t t = 0; t < keys.size(); ++t) {
              const float* vv = v_all.data() + (static_cast<size_t>(b) * T + keys[t]) * kv_row +
                                static_cast<size_t>(kvh) * hd;
              for (int d = 0; d < hd; ++d) o[d] += s[t] / sum * vv[d];
            }
          }
      INFO("attention output (" << no_key_queries << " queries see no key)");
      expect_close(rig.read(out), ref, bound(rig.dtype(), c.f32));
    }
  });
}

// ---- split_qkv, last_rows -------------------------------------------------------------------------------

TEST_CASE("backend ops: split_qkv de-interleaves BLOOM's per-head [q k v] rows", "[ops]") {
  struct Case {
    int n, heads, hd;
  };
  const Case cases[] = {{1, 1, 24}, {3, 2, 37}, {5, 3, 64}, {17, 8, 24}, {2, 1, 128}};
  for_each_backend("split_qkv", [&](Backend& be) {
    for (const Case& c : cases) {
      INFO("split_qkv n=" << c.n << " heads=" << c.heads << " hd=" << c.hd);
      Rig rig(be);
      const int64_t row = static_cast<int64_t>(c.heads) * c.hd;
      auto qkv = randn(static_cast<size_t>(c.n) * 3 * row, 111 + c.hd + c.n);
      Tensor t = rig.input(qkv, {c.n, 3 * row});
      Tensor q = rig.sentinel({c.n, row}), k = rig.sentinel({c.n, row}), v = rig.sentinel({c.n, row});
      be.split_qkv(t, c.heads, c.hd, q, k, v, rig.stream());
      std::vector<float> ref[3];
      for (int part = 0; part < 3; ++part) {
        ref[part].resize(static_cast<size_t>(c.n) * row);
        for (int r = 0; r < c.n; ++r)
          for (int h = 0; h < c.heads; ++h)
            for (int d = 0; d < c.hd; ++d)
              ref[part][static_cast<size_t>(r) * row + static_cast<size_t>(h) * c.hd + d] =
                  qkv[static_cast<size_t>(r) * 3 * row + (static_cast<size_t>(h) * 3 + part) * c.hd + d];
      }
      const Tensor* outs[3] = {&q, &k, &v};
      const char* names[3] = {"q", "k", "v"};
      for (int part = 0; part < 3; ++part) {
        INFO("output " << names[part]);
        expect_bits(rig.read(*outs[part]), ref[part]);
      }
    }
  });
}

TEST_CASE("backend ops: last_rows takes every sequence's last new row", "[ops]") {
  struct Case {
    int batch, tq, d;
  };
  const Case cases[] = {{1, 1, 37}, {3, 1, 65}, {2, 7, 37}, {3, 5, 128}, {1, 9, 1}};
  for_each_backend("last_rows", [&](Backend& be) {
    for (const Case& c : cases) {
      INFO("last_rows B=" << c.batch << " tq=" << c.tq << " D=" << c.d);
      Rig rig(be);
      auto x = randn(static_cast<size_t>(c.batch) * c.tq * c.d, 121 + c.d + c.tq);
      Tensor tx = rig.input(x, {c.batch * c.tq, c.d});
      Tensor out = rig.sentinel({c.batch, c.d});
      be.last_rows(tx, c.batch, c.tq, out, rig.stream());
      std::vector<float> ref(static_cast<size_t>(c.batch) * c.d);
      for (int b = 0; b < c.batch; ++b)
        std::copy_n(x.begin() + (static_cast<size_t>(b) * c.tq + c.tq - 1) * c.d, c.d,
                    ref.begin() + static_cast<size_t>(b) * c.d);
      expect_bits(rig.read(out), ref);
    }
  });
}

// ---- dequantize -----------------------------------------------------------------------------------------

namespace {

// Weights for a quantized matrix: rows of varied magnitude, plus special groups where there are enough:
// group 0 constant, group 1 all zero, group 2 with one outlier.
std::vector<float> quant_input(int64_t rows, int64_t cols, int group, uint32_t seed) {
  auto x = randn(static_cast<size_t>(rows * cols), seed);
  for (int64_t r = 0; r < rows; ++r) {
    const float scale = std::pow(10.0f, static_cast<float>(r % 5) - 3.0f);  // 1e-3 .. 10
    for (int64_t j = 0; j < cols; ++j) x[static_cast<size_t>(r * cols + j)] *= scale;
  }
  const int64_t groups = rows * cols / group;
  if (groups >= 3) {
    std::fill_n(x.begin(), group, 0.37f);
    std::fill_n(x.begin() + group, group, 0.0f);
    x[static_cast<size_t>(2 * group + 1)] = 500.0f;
  }
  return x;
}

}  // namespace

TEST_CASE("backend ops: dequantize every stored format from a device view", "[ops]") {
  using quant::QuantFormat;
  struct Case {
    QuantFormat format;
    int group;
    int64_t rows, cols;
  };
  std::vector<Case> cases;
  for (QuantFormat f : {QuantFormat::Int8, QuantFormat::Int8Asym, QuantFormat::Int4, QuantFormat::Int4Sym,
                        QuantFormat::NF4}) {
    cases.push_back({f, 32, 1, 32});
    cases.push_back({f, 32, 7, 96});
    cases.push_back({f, 64, 3, 192});
    cases.push_back({f, 64, 33, 64});
    cases.push_back({f, 128, 5, 384});
    cases.push_back({f, 10, 7, 30});  // codes not a multiple of 16 bytes: padded before the scales
  }
  for_each_backend("dequantize", [&](Backend& be) {
    for (const Case& c : cases) {
      INFO("dequantize " << quant::quant_format_name(c.format) << " group=" << c.group << " " << c.rows << "x"
                         << c.cols);
      Rig rig(be);
      const quant::QuantLayout lay = quant::quant_layout(c.format, c.rows, c.cols, c.group, "op test");
      const auto x =
          quant_input(c.rows, c.cols, c.group, static_cast<uint32_t>(131 + c.rows + c.cols + c.group));
      const size_t groups = static_cast<size_t>(c.rows * c.cols / c.group);
      std::vector<uint8_t> blob(lay.total(), 0);
      uint8_t* codes = blob.data();
      uint16_t* scales = reinterpret_cast<uint16_t*>(blob.data() + lay.scales_offset());
      uint16_t* mins = quant::quant_has_mins(c.format)
                           ? reinterpret_cast<uint16_t*>(blob.data() + lay.mins_offset())
                           : nullptr;
      REQUIRE(lay.scales_bytes == groups * 2);
      quant::quantize(c.format, c.group, x.data(), c.rows, c.cols, codes, scales, mins);
      std::vector<float> ref(x.size());
      quant::dequantize_reference(c.format, c.group, codes, scales, mins, c.rows, c.cols, ref.data());
      round_to(rig.dtype(), ref);

      const uint8_t* dev = rig.bytes(blob.data(), blob.size());
      quant::QuantView view;
      view.format = c.format;
      view.group = c.group;
      view.rows = c.rows;
      view.cols = c.cols;
      view.codes = dev;
      view.scales = reinterpret_cast<const uint16_t*>(dev + lay.scales_offset());
      view.mins = mins ? reinterpret_cast<const uint16_t*>(dev + lay.mins_offset()) : nullptr;
      Tensor out = rig.sentinel({c.rows, c.cols});
      be.dequantize(view, out, rig.stream());
      expect_bits(rig.read(out), ref);
    }
  });
}

TEST_CASE("backend ops: dequantize of raw F32, F16 and BF16 views is a conversion", "[ops]") {
  struct Case {
    DType stored;
    int64_t rows, cols;
  };
  const Case cases[] = {{DType::F32, 1, 1},   {DType::F32, 7, 37},  {DType::F16, 1, 3},
                        {DType::F16, 7, 37},  {DType::F16, 3, 129}, {DType::BF16, 1, 5},
                        {DType::BF16, 7, 37}, {DType::BF16, 33, 65}};
  for_each_backend("dequantize (raw)", [&](Backend& be) {
    for (const Case& c : cases) {
      INFO("dequantize raw " << quant::dtype_name(c.stored) << " " << c.rows << "x" << c.cols);
      Rig rig(be);
      const size_t n = static_cast<size_t>(c.rows * c.cols);
      auto x = randn(n, static_cast<uint32_t>(141 + n), 4.0f);
      x[0] = 1e-6f;  // a subnormal in fp16
      std::vector<uint8_t> stored(n * quant::dtype_size(c.stored));
      quant::convert(DType::F32, x.data(), c.stored, stored.data(), n);
      std::vector<float> ref(n);
      quant::convert(c.stored, stored.data(), DType::F32, ref.data(), n);  // exact widening
      round_to(rig.dtype(), ref);
      quant::QuantView view;
      view.format = quant::QuantFormat::None;
      view.dtype = c.stored;
      view.rows = c.rows;
      view.cols = c.cols;
      view.codes = rig.bytes(stored.data(), stored.size());
      Tensor out = rig.sentinel({c.rows, c.cols});
      be.dequantize(view, out, rig.stream());
      expect_bits(rig.read(out), ref);
    }
  });
}

// ---- sample ---------------------------------------------------------------------------------------------

TEST_CASE("backend ops: greedy sampling is argmax with the lowest index on ties", "[ops]") {
  struct Case {
    int batch, vocab;
  };
  const Case cases[] = {{1, 1}, {3, 7}, {4, 1001}, {2, 32003}};
  for_each_backend("sample (greedy)", [&](Backend& be) {
    for (const Case& c : cases) {
      INFO("greedy B=" << c.batch << " V=" << c.vocab);
      Rig rig(be);
      auto logits = randn(static_cast<size_t>(c.batch) * c.vocab, 151 + c.vocab, 2.0f);
      for (int b = 0; b < c.batch; ++b) {
        float* row = logits.data() + static_cast<size_t>(b) * c.vocab;
        switch (b % 4) {
          case 0:  // a tie of the maximum at 1/3 and 2/3 of the row
            row[c.vocab / 3] = row[2 * c.vocab / 3] = 20.0f;
            break;
          case 1:  // the maximum at the last index
            row[c.vocab - 1] = 20.0f;
            break;
          case 2:  // the whole row equal: index 0
            std::fill_n(row, c.vocab, -1.5f);
            break;
          default:  // a tie at the first and last index
            row[0] = row[c.vocab - 1] = 20.0f;
        }
      }
      be.reserve_sampling(c.batch, c.vocab);
      Tensor tl = rig.input(logits, {c.batch, c.vocab});
      Tensor ids = rig.tensor(DType::I32, {c.batch});
      std::vector<int64_t> keys(static_cast<size_t>(c.batch));
      for (int b = 0; b < c.batch; ++b) keys[b] = static_cast<int64_t>(runtime::sequence_key(5, b));
      runtime::SamplingOptions greedy;
      be.sample(tl, greedy, rig.raw(DType::I64, keys, {c.batch}), 3, ids, rig.stream());
      const auto got = rig.read_raw<int32_t>(ids);
      int bad = 0;
      for (int b = 0; b < c.batch; ++b) {
        const float* row = logits.data() + static_cast<size_t>(b) * c.vocab;
        int best = 0;
        for (int i = 1; i < c.vocab; ++i)
          if (row[i] > row[best]) best = i;
        if (got[b] != best) {
          ++bad;
          UNSCOPED_INFO("row " << b << ": got " << got[b] << ", argmax " << best);
        }
      }
      CHECK(bad == 0);
    }
  });
}

TEST_CASE("backend ops: temperature / top-k / top-p sampling draws as sample_with_draw", "[ops]") {
  struct Case {
    int batch, vocab;
    float temperature;
    int top_k;
    float top_p;
  };
  const Case cases[] = {{3, 7, 0.7f, 0, 1.0f},    {3, 1001, 1.0f, 0, 1.0f},   {2, 1001, 1.0f, 5, 1.0f},
                        {3, 1001, 0.8f, 0, 0.9f}, {2, 5003, 1.3f, 50, 0.95f}, {3, 1001, 0.5f, 1, 1.0f},
                        {1, 1, 1.0f, 0, 0.5f},    {2, 7, 2.0f, 100, 0.3f},    {4, 32003, 0.9f, 40, 0.8f}};
  const uint64_t counters[] = {0, 1, 7, 123456789};
  for_each_backend("sample", [&](Backend& be) {
    for (const Case& c : cases) {
      INFO("sample B=" << c.batch << " V=" << c.vocab << " T=" << c.temperature << " top_k=" << c.top_k
                       << " top_p=" << c.top_p);
      Rig rig(be);
      auto logits = randn(static_cast<size_t>(c.batch) * c.vocab, 161 + c.vocab + c.top_k, 3.0f);
      be.reserve_sampling(c.batch, c.vocab);
      Tensor tl = rig.input(logits, {c.batch, c.vocab});
      runtime::SamplingOptions opts;
      opts.temperature = c.temperature;
      opts.top_k = c.top_k;
      opts.top_p = c.top_p;
      opts.seed = 1234 + static_cast<uint64_t>(c.vocab);
      std::vector<int64_t> keys(static_cast<size_t>(c.batch));
      for (int b = 0; b < c.batch; ++b)
        keys[b] = static_cast<int64_t>(runtime::sequence_key(opts.seed, 10 + b));
      Tensor tk = rig.raw(DType::I64, keys, {c.batch});
      runtime::SampleWork work;
      int bad = 0, draws = 0;
      for (uint64_t counter : counters) {
        Tensor ids = rig.tensor(DType::I32, {c.batch});
        be.sample(tl, opts, tk, counter, ids, rig.stream());
        const auto got = rig.read_raw<int32_t>(ids);
        for (int b = 0; b < c.batch; ++b, ++draws) {
          const double u = runtime::sequence_uniform(static_cast<uint64_t>(keys[b]), counter);
          const int32_t want = runtime::sample_with_draw(logits.data() + static_cast<size_t>(b) * c.vocab,
                                                         c.vocab, opts, u, work);
          if (got[b] != want) {
            ++bad;
            UNSCOPED_INFO("counter " << counter << " row " << b << ": got " << got[b] << ", reference "
                                     << want);
          }
        }
      }
      INFO(bad << " of " << draws << " draws differ");
      CHECK(bad == 0);
    }
  });
}

// ---- memory accounting ----------------------------------------------------------------------------------

TEST_CASE("backend ops: memory is accounted: budget refusal and high-water mark", "[ops]") {
  for_each_backend(
      "memory accounting",
      [&](Backend& be) {
        // What the backend holds itself (nothing on the CPU; a GPU backend may keep a workspace) counts
        // against the budget too.
        const size_t budget = size_t{64} << 20, base = be.arena().used();
        REQUIRE(be.arena().budget() == budget);
        REQUIRE(base + 1000 <= budget);
        const size_t rest = budget - base - 600;
        {
          auto a = be.alloc(600, "first");
          CHECK(be.arena().used() == base + 600);
          CHECK_THROWS_WITH(be.alloc(rest + 1, "second"), ZINC_CONTAINS("second"));
          CHECK(be.arena().used() == base + 600);  // a refused allocation holds nothing
          auto b = be.alloc(rest, "the rest");     // exactly the budget fits
          CHECK(be.arena().used() == budget);
        }
        CHECK(be.arena().used() == base);
        CHECK(be.arena().high_water_mark() == budget);
      },
      /*budget_bytes=*/size_t{64} << 20);
}
