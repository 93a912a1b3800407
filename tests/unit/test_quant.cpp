// quant/quantize and quant/quant_view: format names, layouts (with the codes' padding),
// hand-made encodings, the fast dequantize path and dequantize(QuantView) against the
// scalar reference (bit for bit), raw views, check_view's refusals, and round-trip error
// under a bound per format.
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
#include "unit/test_util.hpp"

// Counts the C++ heap allocations made while g_count_allocations is set (on any thread),
// so a test can check that dequantize(QuantView) allocates nothing: the test binary's
// global operator new/delete (plain, array and nothrow forms, so that every pair matches
// under AddressSanitizer) are malloc/free. The aligned forms stay the library's.
namespace {
std::atomic<bool> g_count_allocations{false};
std::atomic<long> g_allocations{0};

void* counted_malloc(std::size_t n) noexcept {
  if (g_count_allocations.load(std::memory_order_relaxed)) ++g_allocations;
  return std::malloc(n == 0 ? 1 : n);
}
void* counted_new(std::size_t n) {
  if (void* p = counted_malloc(n)) return p;
  throw std::bad_alloc();
}
}  // namespace

void* operator new(std::size_t n) { return counted_new(n); }
void* operator new[](std::size_t n) { return counted_new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_malloc(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_malloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

using namespace zinc::quant;

namespace {

const QuantFormat kAllFormats[] = {QuantFormat::Int8, QuantFormat::Int8Asym, QuantFormat::Int4,
                                   QuantFormat::Int4Sym, QuantFormat::NF4};

// One quantized matrix, sized by quant_layout.
struct Quantized {
  QuantFormat format;
  int group;
  int64_t rows, cols;
  std::vector<uint8_t> codes;
  std::vector<uint16_t> scales, mins;

  Quantized(QuantFormat f, int g, const std::vector<float>& w, int64_t r, int64_t c)
      : format(f), group(g), rows(r), cols(c) {
    const QuantLayout l = quant_layout(f, r, c, g, "test matrix");
    codes.assign(l.codes_used_bytes, 0xAA);  // what quantize writes (no padding)
    scales.assign(l.scales_bytes / 2, 0xAAAA);
    mins.assign(l.mins_bytes / 2, 0xAAAA);
    quantize(f, g, w.data(), r, c, codes.data(), scales.data(),
             mins.empty() ? nullptr : mins.data());
  }
  const uint16_t* mins_ptr() const { return mins.empty() ? nullptr : mins.data(); }
  std::vector<float> dequant() const {
    std::vector<float> out(static_cast<size_t>(rows * cols), -123.0f);
    dequantize(format, group, codes.data(), scales.data(), mins_ptr(), rows, cols, out.data());
    return out;
  }
  std::vector<float> dequant_reference() const {
    std::vector<float> out(static_cast<size_t>(rows * cols), -321.0f);
    dequantize_reference(format, group, codes.data(), scales.data(), mins_ptr(), rows, cols,
                         out.data());
    return out;
  }
};

enum class Data { Normal, Outliers, ZeroGroups, ConstantGroups, Mixed };
const char* data_name(Data d) {
  switch (d) {
    case Data::Normal:
      return "normal";
    case Data::Outliers:
      return "outliers";
    case Data::ZeroGroups:
      return "zero groups";
    case Data::ConstantGroups:
      return "constant groups";
    case Data::Mixed:
      return "mixed";
  }
  return "?";
}

std::vector<float> make_data(Data kind, int64_t rows, int64_t cols, int group, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (auto& v : w) v = normal(rng) * 0.02f;
  const int64_t n_groups = rows * cols / group;
  for (int64_t g = 0; g < n_groups; ++g) {
    float* x = w.data() + g * group;
    const int variant = kind == Data::Mixed ? static_cast<int>(g % 4) : -1;  // 0: plain
    if (kind == Data::Outliers || variant == 1) {
      // one or two elements 50-200x larger than the rest
      x[rng() % group] = (rng() % 2 ? 1.0f : -1.0f) * (1.0f + static_cast<float>(rng() % 4));
      if (g % 3 == 0) x[rng() % group] = 3.5f;
    } else if (kind == Data::ZeroGroups || variant == 2) {
      if (kind == Data::Mixed || g % 2 == 0) std::fill(x, x + group, 0.0f);
    } else if (kind == Data::ConstantGroups || variant == 3) {
      const float values[] = {0.3f, -0.3f, 1000.3f, -7.0f, 1e-9f, 65504.0f, -0.0f, 0.123456f};
      std::fill(x, x + group, values[g % 8]);
    }
  }
  return w;
}

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

// ---- layout padding and QuantView ---------------------------------------------------

namespace {

// One matrix stored as a blob stores it (quant/quantize.hpp): codes, zero padding up to
// codes_bytes, scales, mins, in one buffer; view() is the QuantView of it.
struct Stored {
  Quantized q;
  QuantLayout layout;
  std::vector<uint8_t> bytes;

  Stored(QuantFormat f, int g, const std::vector<float>& w, int64_t r, int64_t c)
      : q(f, g, w, r, c), layout(quant_layout(f, r, c, g, "stored matrix")) {
    bytes.assign(layout.total(), 0);
    std::memcpy(bytes.data(), q.codes.data(), q.codes.size());
    std::memcpy(bytes.data() + layout.scales_offset(), q.scales.data(), layout.scales_bytes);
    if (!q.mins.empty()) {
      std::memcpy(bytes.data() + layout.mins_offset(), q.mins.data(), layout.mins_bytes);
    }
  }
  QuantView view() const {
    QuantView v;
    v.format = q.format;
    v.group = q.group;
    v.rows = q.rows;
    v.cols = q.cols;
    v.codes = bytes.data();
    v.scales = reinterpret_cast<const uint16_t*>(bytes.data() + layout.scales_offset());
    if (layout.mins_bytes > 0) {
      v.mins = reinterpret_cast<const uint16_t*>(bytes.data() + layout.mins_offset());
    }
    return v;
  }
};

}  // namespace

TEST_CASE("quant: the codes part is padded to kCodesAlign bytes", "[quant]") {
  STATIC_REQUIRE(kCodesAlign == 16);
  // int4 [1, 2], group 2: 1 code byte + 15 zero bytes, then scale and min at 16 and 18.
  const QuantLayout a = quant_layout(QuantFormat::Int4, 1, 2, 2, "a");
  CHECK(a.codes_used_bytes == 1);
  CHECK(a.codes_bytes == 16);
  CHECK(a.scales_offset() == 16);
  CHECK(a.mins_offset() == 18);
  CHECK(a.total() == 20);
  // int8 [3, 5], group 5: 15 code bytes -> 16, then 3 scales.
  const QuantLayout b = quant_layout(QuantFormat::Int8, 3, 5, 5, "b");
  CHECK(b.codes_used_bytes == 15);
  CHECK(b.codes_bytes == 16);
  CHECK(b.scales_bytes == 6);
  CHECK(b.mins_bytes == 0);
  CHECK(b.total() == 22);
  // cols a multiple of 32 (every real model): no padding, the sizes of before.
  for (QuantFormat f : kAllFormats) {
    for (int64_t rows : {1, 3, 7}) {
      for (int64_t cols : {32, 64, 96, 4096}) {
        CAPTURE(quant_format_name(f), rows, cols);
        const QuantLayout l = quant_layout(f, rows, cols, 32, "w");
        CHECK(l.codes_used_bytes == static_cast<size_t>(rows * cols * quant_bits(f) / 8));
        CHECK(l.codes_bytes == l.codes_used_bytes);
      }
    }
  }
  // Any shape: codes_bytes is the smallest multiple of 16 holding the codes.
  for (QuantFormat f : kAllFormats) {
    for (int64_t rows : {1, 2, 3, 5}) {
      for (int64_t cols : {2, 6, 10, 34}) {
        CAPTURE(quant_format_name(f), rows, cols);
        const QuantLayout l = quant_layout(f, rows, cols, 2, "w");
        CHECK(l.codes_bytes % kCodesAlign == 0);
        CHECK(l.codes_bytes >= l.codes_used_bytes);
        CHECK(l.codes_bytes < l.codes_used_bytes + kCodesAlign);
        CHECK(l.total() == l.codes_bytes + l.scales_bytes + l.mins_bytes);
      }
    }
  }
}

TEST_CASE("quant: dequantize(QuantView) equals the reference bit for bit", "[quant][view]") {
  const int groups[] = {8, 32, 64, 128};
  const int64_t row_counts[] = {1, 3, 37};
  uint32_t seed = 101;
  int compared = 0;
  for (QuantFormat f : kAllFormats) {
    for (int group : groups) {
      for (int64_t rows : row_counts) {
        for (int k : {1, 3}) {
          const int64_t cols = static_cast<int64_t>(group) * k;
          CAPTURE(quant_format_name(f), group, rows, cols);
          const std::vector<float> w = make_data(Data::Mixed, rows, cols, group, seed++);
          const Stored s(f, group, w, rows, cols);
          std::vector<float> got(static_cast<size_t>(rows * cols), -99.0f);
          dequantize(s.view(), got.data());
          const std::vector<float> ref = s.q.dequant_reference();
          REQUIRE(std::memcmp(got.data(), ref.data(), got.size() * sizeof(float)) == 0);
          ++compared;
        }
      }
    }
  }
  CHECK(compared == 5 * 4 * 3 * 2);
  // Large enough for the OpenMP path.
  for (QuantFormat f : kAllFormats) {
    CAPTURE(quant_format_name(f));
    const std::vector<float> w = make_data(Data::Normal, 37, 4096, 128, seed++);
    const Stored s(f, 128, w, 37, 4096);
    std::vector<float> got(w.size());
    dequantize(s.view(), got.data());
    const std::vector<float> ref = s.q.dequant_reference();
    REQUIRE(std::memcmp(got.data(), ref.data(), got.size() * sizeof(float)) == 0);
  }
}

TEST_CASE("quant: a view of an odd shape reads its padded layout in place", "[quant][view]") {
  // Shapes whose codes are not a multiple of 16 bytes: the scales sit after the padding,
  // 2-byte aligned, and the view dequantizes to what was quantized.
  const struct {
    QuantFormat f;
    int64_t rows, cols;
    int group;
  } cases[] = {{QuantFormat::Int4, 1, 2, 2},    {QuantFormat::Int8, 3, 5, 5},
               {QuantFormat::Int8Asym, 3, 5, 5}, {QuantFormat::Int4Sym, 3, 10, 10},
               {QuantFormat::NF4, 5, 6, 6},      {QuantFormat::Int4, 7, 18, 6}};
  for (const auto& c : cases) {
    CAPTURE(quant_format_name(c.f), c.rows, c.cols, c.group);
    const std::vector<float> w = make_data(Data::Normal, c.rows, c.cols, c.group, 5);
    const Stored s(c.f, c.group, w, c.rows, c.cols);
    REQUIRE(s.layout.codes_bytes != s.layout.codes_used_bytes);  // really padded
    const QuantView v = s.view();
    CHECK(reinterpret_cast<uintptr_t>(v.scales) % 2 == 0);
    CHECK(reinterpret_cast<uintptr_t>(v.scales) - reinterpret_cast<uintptr_t>(v.codes) ==
          s.layout.codes_bytes);
    CHECK_NOTHROW(check_view(v, "odd"));
    std::vector<float> got(w.size());
    dequantize(v, got.data());
    CHECK(got == s.q.dequant_reference());
  }
}

TEST_CASE("quant: raw views convert F32, F16 and BF16 exactly", "[quant][view]") {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (int64_t rows : {1, 3}) {
    for (int64_t cols : {1, 7, 100}) {
      const size_t n = static_cast<size_t>(rows * cols);
      std::vector<float> f32(n);
      std::vector<uint16_t> f16(n), bf16(n);
      for (size_t i = 0; i < n; ++i) {
        f32[i] = normal(rng);
        f16[i] = f32_to_f16(f32[i]);
        bf16[i] = f32_to_bf16(f32[i]);
      }
      CAPTURE(rows, cols);
      QuantView v;
      v.rows = rows;
      v.cols = cols;
      std::vector<float> got(n);

      v.dtype = DType::F32;
      v.codes = reinterpret_cast<const uint8_t*>(f32.data());
      dequantize(v, got.data());
      CHECK(got == f32);

      v.dtype = DType::F16;
      v.codes = reinterpret_cast<const uint8_t*>(f16.data());
      dequantize(v, got.data());
      for (size_t i = 0; i < n; ++i) REQUIRE(got[i] == f16_to_f32(f16[i]));

      v.dtype = DType::BF16;
      v.codes = reinterpret_cast<const uint8_t*>(bf16.data());
      dequantize(v, got.data());
      for (size_t i = 0; i < n; ++i) REQUIRE(got[i] == bf16_to_f32(bf16[i]));
    }
  }
  // An empty view writes nothing and needs no pointers.
  QuantView empty;
  empty.rows = 0;
  empty.cols = 64;
  CHECK_NOTHROW(dequantize(empty, nullptr));
}

TEST_CASE("quant: dequantize(QuantView) allocates nothing", "[quant][view]") {
  const std::vector<float> w = make_data(Data::Normal, 64, 2048, 64, 9);  // OpenMP path too
  std::vector<float> out(w.size());
  for (QuantFormat f : kAllFormats) {
    CAPTURE(quant_format_name(f));
    const Stored s(f, 64, w, 64, 2048);
    const QuantView v = s.view();
    dequantize(v, out.data());  // first call: lazy tables, OpenMP team
    g_allocations = 0;
    g_count_allocations = true;
    dequantize(v, out.data());
    g_count_allocations = false;
    CHECK(g_allocations.load() == 0);
  }
  std::vector<uint16_t> f16(w.size(), 0x3c00);
  QuantView raw;
  raw.dtype = DType::F16;
  raw.rows = 64;
  raw.cols = 2048;
  raw.codes = reinterpret_cast<const uint8_t*>(f16.data());
  dequantize(raw, out.data());
  g_allocations = 0;
  g_count_allocations = true;
  dequantize(raw, out.data());
  g_count_allocations = false;
  CHECK(g_allocations.load() == 0);
}

TEST_CASE("quant: check_view refuses bad views with a message naming them", "[quant][view]") {
  const std::vector<float> w = make_data(Data::Normal, 4, 64, 32, 1);
  const Stored s(QuantFormat::Int4, 32, w, 4, 64);
  const QuantView good = s.view();
  REQUIRE_NOTHROW(check_view(good, "layers.3.mlp.up_proj"));
  std::vector<float> out(w.size());

  SECTION("misaligned scales or mins") {
    QuantView v = good;
    v.scales = reinterpret_cast<const uint16_t*>(reinterpret_cast<const uint8_t*>(good.scales) + 1);
    REQUIRE_THROWS_WITH(check_view(v, "layers.3.mlp.up_proj"),
                        ZINC_CONTAINS("layers.3.mlp.up_proj") && ZINC_CONTAINS("scales") &&
                            ZINC_CONTAINS("2-byte aligned"));
    REQUIRE_THROWS_WITH(dequantize(v, out.data()), ZINC_CONTAINS("2-byte aligned"));
    v = good;
    v.mins = reinterpret_cast<const uint16_t*>(reinterpret_cast<const uint8_t*>(good.mins) + 1);
    REQUIRE_THROWS_WITH(check_view(v, "wq"), ZINC_CONTAINS("wq") && ZINC_CONTAINS("mins") &&
                                                 ZINC_CONTAINS("2-byte aligned"));
  }
  SECTION("a group that does not fit the shape") {
    QuantView v = good;
    v.group = 48;
    REQUIRE_THROWS_WITH(check_view(v, "layers.3.mlp.up_proj"),
                        ZINC_CONTAINS("group size 48 does not divide the 64 columns of "
                                      "layers.3.mlp.up_proj"));
    REQUIRE_THROWS_WITH(dequantize(v, out.data()), ZINC_CONTAINS("group size 48"));
    v.group = 0;
    REQUIRE_THROWS_WITH(check_view(v, "wk"), ZINC_CONTAINS("group size 0") && ZINC_CONTAINS("wk"));
    v.group = 1;  // divides, but int4 packs two elements per byte
    REQUIRE_THROWS_WITH(check_view(v, "wk"), ZINC_CONTAINS("even") && ZINC_CONTAINS("wk"));
    v = good;
    v.cols = -64;
    REQUIRE_THROWS_WITH(check_view(v, "wk"), ZINC_CONTAINS("negative shape"));
  }
  SECTION("null pointers") {
    QuantView v = good;
    v.codes = nullptr;
    REQUIRE_THROWS_WITH(check_view(v, "wv"), ZINC_CONTAINS("wv") && ZINC_CONTAINS("null"));
    v = good;
    v.scales = nullptr;
    REQUIRE_THROWS_WITH(check_view(v, "wv"), ZINC_CONTAINS("wv") && ZINC_CONTAINS("null"));
    v = good;
    v.mins = nullptr;  // int4 is asymmetric
    REQUIRE_THROWS_WITH(check_view(v, "wv"), ZINC_CONTAINS("wv") && ZINC_CONTAINS("mins"));
    REQUIRE_THROWS_WITH(dequantize(good, nullptr), ZINC_CONTAINS("destination"));
  }
  SECTION("raw views: float types only, elements aligned") {
    std::vector<uint16_t> h(16, 0x3c00);
    QuantView v;
    v.rows = 2;
    v.cols = 4;
    v.dtype = DType::I32;
    v.codes = reinterpret_cast<const uint8_t*>(h.data());
    REQUIRE_THROWS_WITH(check_view(v, "position_ids"),
                        ZINC_CONTAINS("position_ids") && ZINC_CONTAINS("I32"));
    v.dtype = DType::F16;
    REQUIRE_NOTHROW(check_view(v, "norm"));
    v.codes += 1;
    REQUIRE_THROWS_WITH(check_view(v, "norm"), ZINC_CONTAINS("norm") && ZINC_CONTAINS("aligned"));
    v.codes = nullptr;
    REQUIRE_THROWS_WITH(check_view(v, "norm"), ZINC_CONTAINS("norm") && ZINC_CONTAINS("null"));
  }
}
