// CPU backend ops against direct formulas: norms, RoPE, masked causal attention, GQA.
#include <cmath>
#include <random>
#include <vector>

#include "catch.hpp"
#include "runtime/backend/cpu/cpu_backend.hpp"

using namespace zinc;
using runtime::Tensor;

namespace {

std::vector<float> randn(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::normal_distribution<float> d(0.f, 1.f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(g);
  return v;
}

Tensor view(std::vector<float>& v, std::initializer_list<int64_t> dims) {
  return Tensor(v.data(), quant::DType::F32, dims);
}

}  // namespace

TEST_CASE("rms_norm and layer_norm match their formulas", "[ops]") {
  runtime::CpuBackend be;
  const int n = 3, d = 8;
  auto x = randn(n * d, 1), w = randn(d, 2), b = randn(d, 3);
  std::vector<float> out(n * d);
  be.rms_norm(view(x, {n, d}), view(w, {d}), 1e-6f, view(out, {n, d}), be.compute_stream());
  for (int i = 0; i < n; ++i) {
    double ss = 0;
    for (int j = 0; j < d; ++j) ss += x[i * d + j] * x[i * d + j];
    const double r = 1.0 / std::sqrt(ss / d + 1e-6);
    for (int j = 0; j < d; ++j) CHECK(out[i * d + j] == Approx(w[j] * x[i * d + j] * r).epsilon(1e-5));
  }
  be.layer_norm(view(x, {n, d}), view(w, {d}), view(b, {d}), 1e-5f, view(out, {n, d}), be.compute_stream());
  for (int i = 0; i < n; ++i) {
    double mean = 0, var = 0;
    for (int j = 0; j < d; ++j) mean += x[i * d + j];
    mean /= d;
    for (int j = 0; j < d; ++j) var += (x[i * d + j] - mean) * (x[i * d + j] - mean);
    var /= d;
    for (int j = 0; j < d; ++j)
      CHECK(out[i * d + j] ==
            Approx((x[i * d + j] - mean) / std::sqrt(var + 1e-5) * w[j] + b[j]).epsilon(1e-4).margin(1e-5));
  }
  // No affine parameters: plain normalisation.
  be.layer_norm(view(x, {n, d}), Tensor(), Tensor(), 1e-5f, view(out, {n, d}), be.compute_stream());
  double mean = 0;
  for (int j = 0; j < d; ++j) mean += out[j];
  CHECK(mean / d == Approx(0.0).margin(1e-5));
}

TEST_CASE("rope rotates halves by pos * theta^(-2i/hd) and keeps the norm", "[ops]") {
  runtime::CpuBackend be;
  const int n = 2, heads = 2, hd = 8;
  auto x = randn(n * heads * hd, 4);
  auto orig = x;
  std::vector<int32_t> pos = {0, 5};
  be.rope(view(x, {n, heads, hd}), Tensor(pos.data(), quant::DType::I32, {n}), 10000.f, be.compute_stream());
  for (int j = 0; j < heads * hd; ++j) CHECK(x[j] == Approx(orig[j]).margin(1e-6));  // position 0
  for (int h = 0; h < heads; ++h) {
    const float* o = orig.data() + (1 * heads + h) * hd;
    const float* r = x.data() + (1 * heads + h) * hd;
    for (int i = 0; i < hd / 2; ++i) {
      const double a = 5.0 / std::pow(10000.0, 2.0 * i / hd);
      CHECK(r[i] == Approx(o[i] * std::cos(a) - o[i + hd / 2] * std::sin(a)).margin(1e-5));
      CHECK(r[i + hd / 2] == Approx(o[i + hd / 2] * std::cos(a) + o[i] * std::sin(a)).margin(1e-5));
      CHECK(r[i] * r[i] + r[i + hd / 2] * r[i + hd / 2] ==
            Approx(o[i] * o[i] + o[i + hd / 2] * o[i + hd / 2]).epsilon(1e-5));
    }
  }
}

TEST_CASE("attention honours the causal order, the key mask, GQA groups and ALiBi", "[ops]") {
  const bool alibi = GENERATE(false, true);
  std::vector<float> slopes = {0.5f, 0.25f, 0.125f, 0.0625f};  // [H]; keys get slope * key position
  runtime::CpuBackend be;
  runtime::AttentionShape s;
  s.batch = 2; s.tq = 3; s.t0 = 0; s.t_max = 4; s.heads = 4; s.kv_heads = 2; s.head_dim = 4;
  const int kv_row = s.kv_heads * s.head_dim, q_row = s.heads * s.head_dim;
  auto q = randn(s.batch * s.tq * q_row, 5);
  auto k = randn(s.batch * s.tq * kv_row, 6), v = randn(s.batch * s.tq * kv_row, 7);
  std::vector<float> kc(s.batch * s.t_max * kv_row, 0.f), vc(kc.size(), 0.f);
  be.kv_write(view(k, {s.batch * s.tq, kv_row}), view(kc, {s.batch, s.t_max, s.kv_heads, s.head_dim}), s, be.compute_stream());
  be.kv_write(view(v, {s.batch * s.tq, kv_row}), view(vc, {s.batch, s.t_max, s.kv_heads, s.head_dim}), s, be.compute_stream());
  // Sequence 0 is left-padded by one: key 0 is not a real token.
  std::vector<uint8_t> mask = {0, 1, 1, 0, 1, 1, 1, 0};
  std::vector<float> out(s.batch * s.tq * q_row);
  const float scale = 0.5f;
  be.attention(view(q, {s.batch * s.tq, q_row}), view(kc, {s.batch, s.t_max, s.kv_heads, s.head_dim}),
               view(vc, {s.batch, s.t_max, s.kv_heads, s.head_dim}),
               Tensor(mask.data(), quant::DType::U8, {s.batch, s.t_max}),
               alibi ? view(slopes, {s.heads}) : Tensor(), s, scale,
               view(out, {s.batch * s.tq, q_row}), be.compute_stream());
  for (int b = 0; b < s.batch; ++b)
    for (int i = 0; i < s.tq; ++i)
      for (int h = 0; h < s.heads; ++h) {
        const int kvh = h / (s.heads / s.kv_heads);
        const float* qv = q.data() + (b * s.tq + i) * q_row + h * s.head_dim;
        std::vector<double> w;
        std::vector<int> keys;
        for (int j = 0; j <= i; ++j) {
          if (!mask[b * s.t_max + j]) continue;
          double dot = 0;
          for (int d = 0; d < s.head_dim; ++d)
            dot += qv[d] * k[(b * s.tq + j) * kv_row + kvh * s.head_dim + d];
          const double bias = alibi ? slopes[h] * static_cast<double>(keys.size()) : 0.0;
          w.push_back(std::exp(dot * scale + bias));
          keys.push_back(j);
        }
        double sum = 0;
        for (double x : w) sum += x;
        for (int d = 0; d < s.head_dim; ++d) {
          double expect = 0;
          for (size_t t = 0; t < keys.size(); ++t)
            expect += w[t] / sum * v[(b * s.tq + keys[t]) * kv_row + kvh * s.head_dim + d];
          CHECK(out[(b * s.tq + i) * q_row + h * s.head_dim + d] == Approx(expect).margin(1e-5));
        }
      }
}

TEST_CASE("split_qkv de-interleaves BLOOM's per-head [q k v] rows", "[ops]") {
  runtime::CpuBackend be;
  const int heads = 2, hd = 3;
  std::vector<float> qkv(2 * heads * 3 * hd);
  for (size_t i = 0; i < qkv.size(); ++i) qkv[i] = static_cast<float>(i);
  std::vector<float> q(2 * heads * hd), k(q.size()), v(q.size());
  be.split_qkv(view(qkv, {2, heads * 3 * hd}), heads, hd, view(q, {2, heads * hd}),
               view(k, {2, heads * hd}), view(v, {2, heads * hd}), be.compute_stream());
  // row 0, head 1 starts at element 9: q = 9..11, k = 12..14, v = 15..17
  CHECK(q[3] == 9.f);
  CHECK(k[3] == 12.f);
  CHECK(v[5] == 17.f);
  CHECK(q[6] == 18.f);  // row 1, head 0
}

TEST_CASE("GELU tanh form matches BLOOM's formula", "[ops]") {
  runtime::CpuBackend be;
  std::vector<float> x = {-3.f, -0.5f, 0.f, 0.7f, 2.5f};
  auto y = x;
  be.activation(view(y, {5}), runtime::Activation::GeluTanh, be.compute_stream());
  for (size_t i = 0; i < x.size(); ++i) {
    const double t = std::tanh(0.79788456 * x[i] * (1 + 0.044715 * x[i] * x[i]));
    CHECK(y[i] == Approx(x[i] * 0.5 * (1 + t)).margin(1e-6));
  }
}

TEST_CASE("linear is x w^T + b and embedding rejects out-of-range ids", "[ops]") {
  runtime::CpuBackend be;
  std::vector<float> x = {1, 2, 3, 4, 5, 6};           // [2, 3]
  std::vector<float> w = {1, 0, 0, 0, 1, 1};           // [2, 3]
  std::vector<float> b = {0.5f, -1};
  std::vector<float> out(4);
  be.linear(view(x, {2, 3}), view(w, {2, 3}), view(b, {2}), view(out, {2, 2}), be.compute_stream());
  CHECK(out == std::vector<float>{1.5f, 4.f, 4.5f, 10.f});
}

TEST_CASE("backend memory is accounted: budget refusal and high-water mark", "[ops]") {
  runtime::CpuBackend be(1000);
  {
    auto a = be.alloc(600, "first");
    CHECK(be.arena().used() == 600);
    CHECK_THROWS_AS(be.alloc(600, "second"), zinc::Error);
  }
  CHECK(be.arena().used() == 0);
  CHECK(be.arena().high_water_mark() == 600);
}
