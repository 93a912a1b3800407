// Backend ops against independent references, table-driven over every backend under test: dequantize (every
// stored format, and raw F32/F16/BF16 views), sample (greedy, and temperature / top-k / top-p against
// sample_with_draw); and the memory accounting of a backend's arena (budget refusal, high-water mark). How
// the inputs, references and bounds work and how a backend joins the table: backend_ops_harness.hpp.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "backend_ops_harness.hpp"
#include "catch.hpp"
#include "quant/dtype.hpp"
#include "quant/quant_view.hpp"
#include "quant/quantize.hpp"
#include "runtime/backend/backend.hpp"
#include "runtime/backend/sampling.hpp"
#include "test_util.hpp"

using namespace zinc;
using namespace zinc::test::ops;
using quant::DType;
using runtime::Backend;
using runtime::Tensor;

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
    // More of the CUDA kernels' paths: groups that are multiples of 8 take the per-pack
    // kernel (16, 24), others the general one (10); 130 rows need more than one block.
    cases.push_back({f, 16, 3, 64});
    cases.push_back({f, 24, 2, 48});
    cases.push_back({f, 64, 130, 256});  // more threads than one block
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

TEST_CASE("backend ops: a row of logits with NaN or +inf samples as kNonFiniteLogits", "[ops]") {
  const int batch = 4, vocab = 5003;
  for_each_backend("sample (non-finite rows)", [&](Backend& be) {
    Rig rig(be);
    auto logits = randn(static_cast<size_t>(batch) * vocab, 171, 2.0f);
    logits[0 * vocab + 17] = NAN;                 // row 0: one NaN
    logits[1 * vocab + vocab - 1] = INFINITY;     // row 1: +inf at the end
    logits[3 * vocab + 2] = -INFINITY;            // row 3: -inf is a filtered logit, fine
    be.reserve_sampling(batch, vocab);
    Tensor tl = rig.input(logits, {batch, vocab});
    std::vector<int64_t> keys(batch);
    for (int b = 0; b < batch; ++b) keys[b] = static_cast<int64_t>(runtime::sequence_key(9, b));
    Tensor tk = rig.raw(DType::I64, keys, {batch});
    runtime::SamplingOptions greedy, sampled;
    sampled.temperature = 0.9f;
    sampled.top_k = 40;
    sampled.top_p = 0.9f;
    for (const runtime::SamplingOptions& o : {greedy, sampled}) {
      INFO("greedy " << o.greedy());
      Tensor ids = rig.tensor(DType::I32, {batch});
      be.sample(tl, o, tk, 2, ids, rig.stream());
      const auto got = rig.read_raw<int32_t>(ids);
      CHECK(got[0] == runtime::kNonFiniteLogits);
      CHECK(got[1] == runtime::kNonFiniteLogits);
      CHECK(got[2] >= 0);
      CHECK(got[2] < vocab);
      CHECK(got[3] >= 0);
      CHECK(got[3] < vocab);
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
