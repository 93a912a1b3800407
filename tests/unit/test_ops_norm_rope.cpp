// Backend ops against independent references, table-driven over every backend under test: the row
// normalizations (rms_norm, layer_norm with and without affine parameters) and rope. How the inputs,
// references and bounds work and how a backend joins the table: backend_ops_harness.hpp.
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
using runtime::Backend;
using runtime::Tensor;

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
