// Backend ops against independent references, table-driven over every backend under test: embedding,
// add, activation, silu_mul, split_qkv and last_rows (gathers, products, elementwise maps and data
// movement). How the inputs, references and bounds work and how a backend joins the table:
// backend_ops_harness.hpp.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
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
