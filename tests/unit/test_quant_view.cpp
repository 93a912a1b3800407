// quant/quant_view and the blob layout's padding: dequantize(QuantView) against the
// scalar reference (bit for bit), odd shapes read in place, raw views, no allocation, and
// check_view's refusals.
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
using namespace zinc::test::quant_data;

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
  for (const auto& c : kOddShapes) {
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

