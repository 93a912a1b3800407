// Backend ops against independent references: linear (x w^T + bias) and linear_activation
// (CUDA F16/BF16: the cuBLASLt epilogue), over every backend under test
// (backend_ops_harness.hpp).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "backend_ops_harness.hpp"
#include "catch.hpp"
#include "quant/dtype.hpp"
#include "runtime/backend/backend.hpp"

using namespace zinc;
using namespace zinc::test::ops;
using quant::DType;
using runtime::Activation;
using runtime::Backend;
using runtime::Tensor;

namespace {

// ref = x w^T (+ b) in double, and mag = sum |x_k w_k| (+ |b|): the bound's scale.
void linear_reference(const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>* b, int n,
                      int in, int out, std::vector<double>* ref, std::vector<double>* mag) {
  ref->assign(static_cast<size_t>(n) * out, 0.0);
  mag->assign(ref->size(), 0.0);
  for (int i = 0; i < n; ++i)
    for (int o = 0; o < out; ++o) {
      double acc = b ? (*b)[o] : 0.0, m = b ? std::fabs((*b)[o]) : 0.0;
      for (int k = 0; k < in; ++k) {
        const double t = static_cast<double>(x[static_cast<size_t>(i) * in + k]) * w[static_cast<size_t>(o) * in + k];
        acc += t;
        m += std::fabs(t);
      }
      (*ref)[static_cast<size_t>(i) * out + o] = acc;
      (*mag)[static_cast<size_t>(i) * out + o] = m;
    }
}

}  // namespace

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
      std::vector<double> ref, mag;
      linear_reference(x, w, c.bias ? &b : nullptr, c.n, c.in, c.out, &ref, &mag);
      expect_close(rig.read(out), ref, bound(rig.dtype(), c.f32), mag);
    }
  });
}

TEST_CASE("backend ops: linear_activation is act(x w^T + bias), fused or not", "[ops]") {
  // CUDA F16/BF16 with a bias and ReLU: the cuBLASLt epilogue (lt_gemm.hpp); otherwise
  // linear + activation. Shapes with 16-byte rows (the epilogue's) and odd ones (fallback).
  struct Case {
    int n, in, out;
    bool bias;
    Activation act;
  };
  const Case cases[] = {{17, 64, 96, true, Activation::Relu},   {130, 128, 256, true, Activation::Relu},
                        {3, 33, 65, true, Activation::Relu},    {17, 64, 96, false, Activation::Relu},
                        {17, 64, 96, true, Activation::GeluTanh}};
  for_each_backend("linear_activation", [&](Backend& be) {
    for (const Case& c : cases) {
      INFO("linear_activation n=" << c.n << " in=" << c.in << " out=" << c.out << (c.bias ? " bias" : "")
                                  << " act " << static_cast<int>(c.act));
      Rig rig(be);
      auto x = randn(static_cast<size_t>(c.n) * c.in, 51 + c.n + c.in);
      auto w = randn(static_cast<size_t>(c.out) * c.in, 52 + c.out, 0.2f);
      auto b = randn(static_cast<size_t>(c.out), 53 + c.out);
      Tensor tx = rig.input(x, {c.n, c.in}), tw = rig.input(w, {c.out, c.in});
      Tensor tb = c.bias ? rig.input(b, {c.out}) : Tensor();
      Tensor out = rig.sentinel({c.n, c.out});
      be.linear_activation(tx, tw, tb, c.act, out, rig.stream());
      std::vector<double> ref, mag;
      linear_reference(x, w, c.bias ? &b : nullptr, c.n, c.in, c.out, &ref, &mag);
      for (double& v : ref)
        v = c.act == Activation::Relu ? std::max(v, 0.0)
                                      : 0.5 * v * (1.0 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
      expect_close(rig.read(out), ref, bound(rig.dtype(), {2e-5, 1e-6}), mag);
    }
  });
}
