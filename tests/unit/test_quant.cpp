// quant/quantize: format names, layouts (with the codes' padding), hand-made encodings,
// the fast dequantize path against the scalar reference (bit for bit), and round-trip
// error under a bound per format. The views are in test_quant_view.cpp.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "quant/dtype.hpp"
#include "quant/quant_view.hpp"
#include "quant/quantize.hpp"
#include "runtime/common/error.hpp"
#include "unit/quant_test_data.hpp"
#include "unit/test_util.hpp"

using namespace zinc::quant;
using namespace zinc::test::quant_data;

namespace {

float absmax_of(const float* x, int n) {
  float a = 0.0f;
  for (int j = 0; j < n; ++j) a = std::max(a, std::fabs(x[j]));
  return a;
}

float nf4_largest_half_gap() {
  float gap = 0.0f;
  for (int i = 0; i < 15; ++i) gap = std::max(gap, kNF4Codebook[i + 1] - kNF4Codebook[i]);
  return gap / 2.0f;
}

}  // namespace

TEST_CASE("quant: format names parse, print and describe the formats", "[quant]") {
  const struct {
    const char* name;
    QuantFormat format;
    int bits;
    bool mins;
  } table[] = {{"none", QuantFormat::None, 0, false},         {"int8", QuantFormat::Int8, 8, false},
               {"int8-asym", QuantFormat::Int8Asym, 8, true}, {"int4", QuantFormat::Int4, 4, true},
               {"int4-sym", QuantFormat::Int4Sym, 4, false},  {"nf4", QuantFormat::NF4, 4, false}};
  for (const auto& e : table) {
    CAPTURE(e.name);
    CHECK(parse_quant_format(e.name) == e.format);
    CHECK(std::string(quant_format_name(e.format)) == e.name);
    CHECK(quant_bits(e.format) == e.bits);
    CHECK(quant_has_mins(e.format) == e.mins);
  }
  REQUIRE_THROWS_AS(parse_quant_format("int3"), zinc::Error);
  REQUIRE_THROWS_WITH(parse_quant_format("int3"), ZINC_CONTAINS("int3") && ZINC_CONTAINS("none") &&
                                                      ZINC_CONTAINS("int8-asym") &&
                                                      ZINC_CONTAINS("int4-sym") &&
                                                      ZINC_CONTAINS("nf4"));
  REQUIRE_THROWS_AS(parse_quant_format("NF4"), zinc::Error);
}

TEST_CASE("quant: layout sizes", "[quant]") {
  // 3 x 128, group 64: 6 groups
  CHECK(quant_layout(QuantFormat::Int8, 3, 128, 64, "w").codes_bytes == 384);
  CHECK(quant_layout(QuantFormat::Int8, 3, 128, 64, "w").scales_bytes == 12);
  CHECK(quant_layout(QuantFormat::Int8, 3, 128, 64, "w").mins_bytes == 0);
  CHECK(quant_layout(QuantFormat::Int4, 3, 128, 64, "w").codes_bytes == 192);
  CHECK(quant_layout(QuantFormat::Int4, 3, 128, 64, "w").mins_bytes == 12);
  CHECK(quant_layout(QuantFormat::Int4, 3, 128, 64, "w").total() == 216);
  CHECK(quant_layout(QuantFormat::NF4, 3, 128, 64, "w").total() == 204);

  // 4096 x 4096, group 64, against fp16 storage
  const double fp16_bytes = 4096.0 * 4096.0 * 2.0;
  auto ratio = [&](QuantFormat f) {
    return static_cast<double>(quant_layout(f, 4096, 4096, 64, "w").total()) / fp16_bytes;
  };
  CHECK(ratio(QuantFormat::Int4) == Approx(0.281).margin(0.0005));      // 0.28125
  CHECK(ratio(QuantFormat::NF4) == Approx(0.266).margin(0.0005));       // 0.265625
  CHECK(ratio(QuantFormat::Int4Sym) == Approx(0.266).margin(0.0005));   // 0.265625
  CHECK(ratio(QuantFormat::Int8) == Approx(0.516).margin(0.0005));      // 0.515625
  CHECK(ratio(QuantFormat::Int8Asym) == Approx(0.531).margin(0.0005));  // 0.53125
}

TEST_CASE("quant: bad group sizes and formats throw, naming the tensor", "[quant]") {
  REQUIRE_THROWS_WITH(quant_layout(QuantFormat::Int4, 8, 160, 64, "layers.0.mlp.up_proj"),
                      ZINC_CONTAINS("group size 64 does not divide the 160 columns of "
                                    "layers.0.mlp.up_proj"));
  REQUIRE_THROWS_WITH(quant_layout(QuantFormat::Int8, 8, 160, 0, "wq"),
                      ZINC_CONTAINS("group size 0") && ZINC_CONTAINS("wq"));
  REQUIRE_THROWS_WITH(quant_layout(QuantFormat::NF4, 8, 160, -32, "wq"),
                      ZINC_CONTAINS("group size -32") && ZINC_CONTAINS("wq"));
  REQUIRE_THROWS_WITH(
      quant_layout(QuantFormat::NF4, 8, 165, 33, "wk"),
      ZINC_CONTAINS("group size 33") && ZINC_CONTAINS("even") && ZINC_CONTAINS("wk"));
  CHECK_NOTHROW(quant_layout(QuantFormat::Int8, 8, 165, 33, "wk"));
  REQUIRE_THROWS_WITH(quant_layout(QuantFormat::None, 8, 128, 64, "wv"),
                      ZINC_CONTAINS("wv") && ZINC_CONTAINS("none"));

  std::vector<float> w(160, 1.0f);
  std::vector<uint8_t> codes(160);
  std::vector<uint16_t> scales(8), mins(8);
  float out[160];
  REQUIRE_THROWS_WITH(
      quantize(QuantFormat::Int8, 64, w.data(), 1, 160, codes.data(), scales.data(), nullptr),
      ZINC_CONTAINS("group size 64 does not divide the 160 columns"));
  REQUIRE_THROWS_WITH(
      dequantize(QuantFormat::Int4, 64, codes.data(), scales.data(), mins.data(), 1, 160, out),
      ZINC_CONTAINS("group size 64 does not divide the 160 columns"));
  REQUIRE_THROWS_WITH(
      dequantize_reference(QuantFormat::NF4, 0, codes.data(), scales.data(), nullptr, 1, 160, out),
      ZINC_CONTAINS("group size 0"));
  // asymmetric formats need somewhere to put the minimums
  REQUIRE_THROWS_WITH(
      quantize(QuantFormat::Int4, 32, w.data(), 1, 160, codes.data(), scales.data(), nullptr),
      ZINC_CONTAINS("mins"));
  // values whose scale or minimum cannot be stored in fp16
  w[37] = std::nanf("");
  REQUIRE_THROWS_WITH(
      quantize(QuantFormat::NF4, 32, w.data(), 1, 160, codes.data(), scales.data(), nullptr),
      ZINC_CONTAINS("[0, 37]") && ZINC_CONTAINS("fp16"));
  w[37] = 1.0f;
  w[101] = 70000.0f;
  REQUIRE_THROWS_WITH(quantize(QuantFormat::Int8Asym, 16, w.data(), 2, 80, codes.data(),
                               scales.data(), mins.data()),
                      ZINC_CONTAINS("[1, 21]") && ZINC_CONTAINS("fp16"));
}

TEST_CASE("quant: NF4 code book, exact values and nibble order", "[quant]") {
  for (int i = 0; i < 15; ++i) CHECK(kNF4Codebook[i] < kNF4Codebook[i + 1]);
  CHECK(kNF4Codebook[0] == -1.0f);
  CHECK(kNF4Codebook[7] == 0.0f);
  CHECK(kNF4Codebook[15] == 1.0f);
  CHECK(kNF4Codebook[13] == 0.5626170039176941f);

  // A group holding the 16 code values (absmax 1.0, scale exactly 1): codes 0..15, exact.
  std::vector<float> w(kNF4Codebook, kNF4Codebook + 16);
  Quantized q(QuantFormat::NF4, 16, w, 1, 16);
  CHECK(f16_to_f32(q.scales[0]) == 1.0f);
  for (int k = 0; k < 8; ++k) CHECK(q.codes[k] == ((2 * k) << 4 | (2 * k + 1)));
  CHECK(q.dequant() == w);

  // Nibble order: element 0 in the high nibble of byte 0. [-1, 1, 0, 0.5626] with absmax 2
  // scaled by 2: codes 0, 15, 7, 13.
  std::vector<float> v = {-2.0f, 2.0f, 0.0f, 2.0f * 0.5626170039176941f};
  Quantized h(QuantFormat::NF4, 4, v, 1, 4);
  REQUIRE(h.codes.size() == 2);
  CHECK(h.codes[0] == 0x0F);
  CHECK(h.codes[1] == 0x7D);
  CHECK(f16_to_f32(h.scales[0]) == 2.0f);
  CHECK(h.dequant() == v);

  // Nearest code; a value exactly on a midpoint (as bitsandbytes rounds it to fp32) takes
  // the lower index.
  const float mid = static_cast<float>((0.7229568362236023 + 1.0) / 2.0);
  std::vector<float> m = {1.0f, mid, std::nextafter(mid, 2.0f), 0.7f, -0.05f, 0.04f};
  Quantized n(QuantFormat::NF4, 6, m, 1, 6);
  CHECK(n.codes[0] == 0xFE);  // 1.0 -> 15, midpoint -> 14
  CHECK(n.codes[1] == 0xFE);  // just above -> 15, 0.7 -> 14
  CHECK(n.codes[2] == 0x68);  // -0.05 -> 6 (-0.091), 0.04 -> 8 (0.0796)
}

TEST_CASE("quant: INT4 and INT8 encodings of hand-made groups", "[quant]") {
  SECTION("int4 asymmetric: 0..15 -> codes 0..15, scale 1, min 0") {
    std::vector<float> w(16);
    for (int i = 0; i < 16; ++i) w[i] = static_cast<float>(i);
    Quantized q(QuantFormat::Int4, 16, w, 1, 16);
    CHECK(f16_to_f32(q.scales[0]) == 1.0f);
    CHECK(f16_to_f32(q.mins[0]) == 0.0f);
    for (int k = 0; k < 8; ++k) CHECK(q.codes[k] == ((2 * k) << 4 | (2 * k + 1)));
    CHECK(q.dequant() == w);
  }
  SECTION("int4 asymmetric: offset range, scale 15 / (max - min)") {
    // [-1, 2] in steps of 0.2: s = 15 / 3 = 5, min -1, exact codes 0..15
    std::vector<float> w(16);
    for (int i = 0; i < 16; ++i) w[i] = -1.0f + 0.2f * static_cast<float>(i);
    Quantized q(QuantFormat::Int4, 16, w, 1, 16);
    CHECK(f16_to_f32(q.scales[0]) == 5.0f);
    CHECK(f16_to_f32(q.mins[0]) == -1.0f);
    for (int k = 0; k < 8; ++k) CHECK(q.codes[k] == ((2 * k) << 4 | (2 * k + 1)));
    const std::vector<float> d = q.dequant();
    for (int i = 0; i < 16; ++i) CHECK(d[i] == static_cast<float>(i) / 5.0f - 1.0f);
  }
  SECTION("int8 asymmetric: 0..255 -> codes 0..255") {
    std::vector<float> w(256);
    for (int i = 0; i < 256; ++i) w[i] = static_cast<float>(i);
    Quantized q(QuantFormat::Int8Asym, 256, w, 1, 256);
    for (int i = 0; i < 256; ++i) CHECK(q.codes[i] == i);
    CHECK(q.dequant() == w);
  }
  SECTION("int8 symmetric: two's complement bytes, scale absmax / 127") {
    std::vector<float> w = {127.0f, -127.0f, 1.0f, -1.0f, 0.0f, 63.4f, -63.6f, 0.5f};
    Quantized q(QuantFormat::Int8, 8, w, 1, 8);
    CHECK(f16_to_f32(q.scales[0]) == 1.0f);
    const std::vector<uint8_t> expected = {0x7F, 0x81, 0x01, 0xFF, 0x00, 63, 0xC0, 0x00};
    CHECK(q.codes == expected);  // round half to even: 0.5 -> 0
  }
  SECTION("int4 symmetric: q + 8 in a nibble, scale absmax / 7") {
    std::vector<float> w = {7.0f, -7.0f, 0.0f, 3.0f, -2.6f, 1.5f};
    Quantized q(QuantFormat::Int4Sym, 6, w, 1, 6);
    CHECK(f16_to_f32(q.scales[0]) == 1.0f);
    const std::vector<uint8_t> expected = {0xF1, 0x8B, 0x5A};  // 15,1 | 8,11 | 5,10
    CHECK(q.codes == expected);
  }
}

TEST_CASE("quant: constant and zero groups round-trip to their fp16 value", "[quant]") {
  const float values[] = {0.3f, -0.3f, 1000.3f, -7.0f, 1e-9f, 1e-7f, -1e-6f, 65504.0f, 0.0f, -0.0f};
  for (QuantFormat f : kAllFormats) {
    for (float v : values) {
      CAPTURE(quant_format_name(f), v);
      std::vector<float> w(64, v);
      Quantized q(f, 32, w, 1, 64);
      const float expected = f16_to_f32(f32_to_f16(v));
      for (float x : q.dequant()) CHECK(x == expected);
      CHECK(q.dequant() == q.dequant_reference());
      if (v == 0.0f && !quant_has_mins(f)) {
        CHECK(q.scales[0] == 0);  // zero absmax: scale 0, codes of value 0
        CHECK(q.scales[1] == 0);
      }
      for (uint16_t s : q.scales) CHECK(std::isfinite(f16_to_f32(s)));
    }
  }
}

TEST_CASE("quant: tiny groups with fp16 subnormal scales stay within half a step", "[quant]") {
  // Symmetric scales are rounded up to fp16, so no code clamps even where the scale is a
  // subnormal with few significant bits.
  const QuantFormat formats[] = {QuantFormat::Int8, QuantFormat::Int4Sym, QuantFormat::NF4};
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (QuantFormat f : formats) {
    for (float magnitude : {1e-2f, 1e-3f, 3e-5f, 1e-6f}) {
      CAPTURE(quant_format_name(f), magnitude);
      const int64_t rows = 4, cols = 256;
      const int group = 64;
      std::vector<float> w(rows * cols);
      for (auto& v : w) v = normal(rng) * magnitude;
      Quantized q(f, group, w, rows, cols);
      const std::vector<float> d = q.dequant();
      CHECK(d == q.dequant_reference());
      const double levels = f == QuantFormat::Int8 ? 127 : f == QuantFormat::Int4Sym ? 7 : 1;
      const double half_step = f == QuantFormat::NF4 ? nf4_largest_half_gap() : 0.5;
      for (int64_t g = 0; g < rows * cols / group; ++g) {
        const double s = f16_to_f32(q.scales[g]);
        REQUIRE(s * levels >= absmax_of(w.data() + g * group, group));
        for (int j = 0; j < group; ++j) {
          const int64_t i = g * group + j;
          REQUIRE(std::fabs(static_cast<double>(w[i]) - d[i]) <= half_step * s * (1 + 1e-5));
        }
      }
    }
  }
}

TEST_CASE("quant: asymmetric groups with a range too small for an fp16 scale", "[quant]") {
  for (QuantFormat f : {QuantFormat::Int4, QuantFormat::Int8Asym}) {
    for (float base : {1.0f, 0.3f, -2.7f, 1000.3f}) {
      CAPTURE(quant_format_name(f), base);
      std::vector<float> w(64);
      for (int j = 0; j < 64; ++j)
        w[j] = base + static_cast<float>(j) * 1e-6f * (base < 0 ? -1 : 1);
      Quantized q(f, 64, w, 1, 64);
      CHECK(q.scales[0] == 0x7bff);  // clamped to 65504, the largest finite fp16
      const std::vector<float> d = q.dequant();
      CHECK(d == q.dequant_reference());
      const float lo = *std::min_element(w.begin(), w.end());
      const float hi = *std::max_element(w.begin(), w.end());
      const double bound =
          std::fabs(f16_to_f32(q.mins[0]) - static_cast<double>(lo)) + (hi - lo) + 1e-6;
      for (int j = 0; j < 64; ++j) CHECK(std::fabs(static_cast<double>(w[j]) - d[j]) <= bound);
    }
  }
}

TEST_CASE("quant: fast dequantize equals the reference bit for bit", "[quant]") {
  const Data kinds[] = {Data::Normal, Data::Outliers, Data::ZeroGroups, Data::ConstantGroups,
                        Data::Mixed};
  const int groups[] = {32, 64, 128};
  const int64_t row_counts[] = {1, 2, 5, 16, 37};
  uint32_t seed = 1;
  int compared = 0;
  for (QuantFormat f : kAllFormats) {
    for (int group : groups) {
      for (int64_t rows : row_counts) {
        for (int k : {1, 3}) {
          for (Data kind : kinds) {
            const int64_t cols = static_cast<int64_t>(group) * k;
            CAPTURE(quant_format_name(f), group, rows, cols, data_name(kind));
            const std::vector<float> w = make_data(kind, rows, cols, group, seed++);
            Quantized q(f, group, w, rows, cols);
            const std::vector<float> fast = q.dequant();
            const std::vector<float> ref = q.dequant_reference();
            REQUIRE(std::memcmp(fast.data(), ref.data(), fast.size() * sizeof(float)) == 0);
            ++compared;
          }
        }
      }
    }
  }
  CHECK(compared == 5 * 3 * 5 * 2 * 5);

  // Large enough for the OpenMP path (quantize.cpp converts small matrices on one thread).
  for (QuantFormat f : kAllFormats) {
    CAPTURE(quant_format_name(f));
    const std::vector<float> w = make_data(Data::Mixed, 37, 4096, 64, seed++);
    Quantized q(f, 64, w, 37, 4096);
    const std::vector<float> fast = q.dequant();
    const std::vector<float> ref = q.dequant_reference();
    REQUIRE(std::memcmp(fast.data(), ref.data(), fast.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("quant: round-trip error under a bound per format (N(0,1), group 64)", "[quant]") {
  const int64_t rows = 64, cols = 4096;
  const int group = 64;
  std::mt19937 rng(2024);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (auto& v : w) v = normal(rng);

  const double eps16 = std::ldexp(1.0, -10);  // fp16 machine epsilon
  double mse[6] = {};
  std::printf("%-10s %14s %14s %12s\n", "format", "max_err/absmax", "bound", "mse");
  std::printf("%-10s %14s %14s %12s\n", "", "(per group)", "(per group)", "(x - x')^2");
  for (QuantFormat f : kAllFormats) {
    CAPTURE(quant_format_name(f));
    Quantized q(f, group, w, rows, cols);
    const std::vector<float> d = q.dequant();
    double worst = 0.0, worst_bound = 0.0, sq = 0.0;
    for (int64_t g = 0; g < rows * cols / group; ++g) {
      const float* x = w.data() + g * group;
      const float* y = d.data() + g * group;
      const double amax = absmax_of(x, group);
      const double range = *std::max_element(x, x + group) - *std::min_element(x, x + group);
      double bound = 0.0;  // on max |x - x'| / absmax(group)
      switch (f) {
        case QuantFormat::Int8:
          bound = 0.5 / 127 + eps16;
          break;
        case QuantFormat::Int4Sym:
          bound = 0.5 / 7 + eps16;
          break;
        case QuantFormat::Int8Asym:
          bound = 0.5 / 255 * range / amax + eps16;
          break;
        case QuantFormat::Int4:
          bound = 0.5 / 15 * range / amax + eps16;
          break;
        case QuantFormat::NF4:
          bound = nf4_largest_half_gap() + eps16;
          break;
        case QuantFormat::None:
          break;
      }
      double err = 0.0;
      for (int j = 0; j < group; ++j) {
        const double e = std::fabs(static_cast<double>(x[j]) - y[j]);
        err = std::max(err, e);
        sq += e * e;
      }
      REQUIRE(err / amax <= bound);
      if (err / amax > worst) {
        worst = err / amax;
        worst_bound = bound;
      }
    }
    mse[static_cast<int>(f)] = sq / static_cast<double>(w.size());
    std::printf("%-10s %14.6f %14.6f %12.3e\n", quant_format_name(f), worst, worst_bound,
                mse[static_cast<int>(f)]);
  }
  const double m8 = mse[static_cast<int>(QuantFormat::Int8)];
  const double m8a = mse[static_cast<int>(QuantFormat::Int8Asym)];
  const double m4 = mse[static_cast<int>(QuantFormat::Int4)];
  const double m4s = mse[static_cast<int>(QuantFormat::Int4Sym)];
  const double mnf4 = mse[static_cast<int>(QuantFormat::NF4)];
  CHECK(m8 * 50 < m4);  // 8-bit is about 16^2 = 256x better than 4-bit
  CHECK(m8a * 50 < m4);
  CHECK(m8 * 50 < mnf4);
  CHECK(mnf4 < m4 * 2);  // int4 ~ nf4
  CHECK(m4 < mnf4 * 2);
  CHECK(mnf4 < m4s);  // nf4's normal-shaped code book beats 15 uniform symmetric levels
}
