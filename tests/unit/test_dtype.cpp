// quant/dtype (fp16 / bf16 conversions, bulk conversion between the float types) and
// offload/memory_arena (budgets, byte sizes).
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "offload/memory_arena.hpp"
#include "quant/dtype.hpp"
#include "test_util.hpp"

using namespace zinc::quant;
using zinc::offload::format_bytes;
using zinc::offload::MemoryArena;
using zinc::offload::parse_bytes;

namespace {

uint32_t bits_of(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}
float float_of(uint32_t b) {
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
bool f16_is_nan(uint16_t h) { return (h & 0x7c00u) == 0x7c00u && (h & 0x3ffu) != 0; }

// Reference bf16 rounding, independent of the bit trick: the nearer of the two bf16
// neighbours (computed in double), ties to the even one.
uint16_t bf16_reference(float f) {
  const uint32_t b = bits_of(f);
  const uint16_t lo = static_cast<uint16_t>(b >> 16);
  if ((b & 0xffffu) == 0) return lo;
  const uint16_t hi = static_cast<uint16_t>(lo + 1);  // next magnitude away from zero
  const double dlo = std::fabs(static_cast<double>(f) - bf16_to_f32(lo));
  const double dhi =
      std::fabs(static_cast<double>(f) -
                static_cast<double>((hi & 0x7fffu) == 0x7f80u ? std::ldexp(f < 0 ? -1.0 : 1.0, 128)
                                                              : bf16_to_f32(hi)));
  if (dlo < dhi) return lo;
  if (dhi < dlo) return hi;
  return (lo & 1u) ? hi : lo;
}

#if defined(__FLT16_MAX__)
uint16_t f16_hw(float f) {
  volatile float v = f;  // keep the conversion at run time
  const _Float16 h = static_cast<_Float16>(v);
  uint16_t b;
  std::memcpy(&b, &h, 2);
  return b;
}
float f16_hw_to_f32(uint16_t b) {
  _Float16 h;
  std::memcpy(&h, &b, 2);
  return static_cast<float>(h);
}
#endif

}  // namespace

TEST_CASE("dtype: names, sizes and parsing", "[dtype]") {
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::I64, DType::I32, DType::I8, DType::U8,
                  DType::BOOL}) {
    DType parsed;
    REQUIRE(parse_dtype(dtype_name(t), &parsed));
    CHECK(parsed == t);
  }
  CHECK(dtype_size(DType::F32) == 4);
  CHECK(dtype_size(DType::F16) == 2);
  CHECK(dtype_size(DType::BF16) == 2);
  CHECK(dtype_size(DType::I64) == 8);
  CHECK(dtype_size(DType::BOOL) == 1);
  DType unused;
  CHECK_FALSE(parse_dtype("F64", &unused));
  CHECK_FALSE(parse_dtype("f32", &unused));
  CHECK_FALSE(parse_dtype("", &unused));
}

TEST_CASE("dtype: fp16 known values", "[dtype]") {
  CHECK(f32_to_f16(0.0f) == 0x0000);
  CHECK(f32_to_f16(-0.0f) == 0x8000);
  CHECK(f32_to_f16(1.0f) == 0x3c00);
  CHECK(f32_to_f16(-2.0f) == 0xc000);
  CHECK(f32_to_f16(65504.0f) == 0x7bff);   // largest finite
  CHECK(f32_to_f16(65519.99f) == 0x7bff);  // below the overflow midpoint
  CHECK(f32_to_f16(65520.0f) == 0x7c00);   // midpoint: rounds to inf
  CHECK(f32_to_f16(1e10f) == 0x7c00);
  CHECK(f32_to_f16(-1e10f) == 0xfc00);
  CHECK(f32_to_f16(std::numeric_limits<float>::infinity()) == 0x7c00);
  CHECK(f32_to_f16(-std::numeric_limits<float>::infinity()) == 0xfc00);
  CHECK(f16_is_nan(f32_to_f16(std::numeric_limits<float>::quiet_NaN())));
  CHECK(f16_is_nan(f32_to_f16(float_of(0x7f800001u))));       // NaN payload only in low bits
  CHECK((f32_to_f16(float_of(0xffc00000u)) & 0x8000u) != 0);  // sign of NaN kept
  // Subnormals: unit 2^-24.
  CHECK(f32_to_f16(std::ldexp(1.0f, -24)) == 0x0001);
  CHECK(f32_to_f16(std::ldexp(1.0f, -25)) == 0x0000);  // tie -> even (0)
  CHECK(f32_to_f16(std::ldexp(3.0f, -25)) == 0x0002);  // 1.5 units: tie -> even (2)
  CHECK(f32_to_f16(std::ldexp(1.5f, -25)) == 0x0001);  // 0.75 units -> 1
  CHECK(f32_to_f16(-std::ldexp(1.0f, -24)) == 0x8001);
  CHECK(f32_to_f16(std::ldexp(1.0f, -30)) == 0x0000);
  CHECK(f32_to_f16(std::ldexp(1023.0f, -24)) == 0x03ff);  // largest subnormal
  CHECK(f32_to_f16(std::ldexp(2047.0f, -25)) == 0x0400);  // tie with smallest normal
  // Normal rounding, ties to even: 1 + 2^-11 is halfway between 1 and 1 + 2^-10.
  CHECK(f32_to_f16(1.0f + std::ldexp(1.0f, -11)) == 0x3c00);
  CHECK(f32_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)) == 0x3c02);
  CHECK(f32_to_f16(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)) == 0x3c01);

  CHECK(f16_to_f32(0x0001) == std::ldexp(1.0f, -24));
  CHECK(f16_to_f32(0x03ff) == std::ldexp(1023.0f, -24));
  CHECK(f16_to_f32(0x8001) == -std::ldexp(1.0f, -24));
  CHECK(f16_to_f32(0x0400) == std::ldexp(1.0f, -14));
  CHECK(f16_to_f32(0x7bff) == 65504.0f);
  CHECK(f16_to_f32(0x3555) == 0.333251953125f);
  CHECK(std::isinf(f16_to_f32(0x7c00)));
  CHECK(std::isnan(f16_to_f32(0x7e00)));
  CHECK(std::signbit(f16_to_f32(0x8000)));
}

TEST_CASE("dtype: fp16 round trip of every half value", "[dtype]") {
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    const auto h16 = static_cast<uint16_t>(h);
    const float f = f16_to_f32(h16);
    if (f16_is_nan(h16)) {
      REQUIRE(std::isnan(f));
      REQUIRE(f16_is_nan(f32_to_f16(f)));
      continue;
    }
    INFO("half 0x" << std::hex << h);
    REQUIRE(f32_to_f16(f) == h16);
#if defined(__FLT16_MAX__)
    REQUIRE(bits_of(f) == bits_of(f16_hw_to_f32(h16)));
#endif
  }
}

#if defined(__FLT16_MAX__)
TEST_CASE("dtype: f32_to_f16 matches the compiler's _Float16 conversion", "[dtype]") {
  std::vector<uint32_t> cases;
  // Around every half value: the value itself, the midpoints to its upper neighbour, and
  // one float ulp either side of them (ties to even and just-off-tie cases).
  for (uint32_t h = 0; h < 0x7c00u; ++h) {
    const uint32_t a = bits_of(f16_to_f32(static_cast<uint16_t>(h)));
    const uint32_t b =
        bits_of(h + 1 == 0x7c00u ? 65536.0f : f16_to_f32(static_cast<uint16_t>(h + 1)));
    const uint32_t mid = bits_of((float_of(a) + float_of(b)) * 0.5f);
    for (uint32_t x : {a, a + 1, mid - 1, mid, mid + 1, b - 1}) {
      cases.push_back(x);
      cases.push_back(x | 0x80000000u);
    }
  }
  std::mt19937 rng(1234);
  for (int i = 0; i < 2000000; ++i) cases.push_back(rng());
  for (uint32_t x : {0x7f800000u, 0xff800000u, 0x7f7fffffu, 0x00000001u, 0x00800000u, 0x33000000u,
                     0x33000001u, 0x32ffffffu, 0x477ff000u, 0x477fefffu})
    cases.push_back(x);

  size_t checked = 0;
  for (uint32_t x : cases) {
    const float f = float_of(x);
    const uint16_t ours = f32_to_f16(f);
    const uint16_t ref = f16_hw(f);
    if (std::isnan(f)) {
      REQUIRE(f16_is_nan(ours));
      REQUIRE((ours & 0x8000u) == (ref & 0x8000u));
      continue;
    }
    INFO("float bits 0x" << std::hex << x << " = " << f);
    REQUIRE(ours == ref);
    ++checked;
  }
  CHECK(checked > 2000000);
}
#endif

TEST_CASE("dtype: bf16 conversions", "[dtype]") {
  CHECK(f32_to_bf16(1.0f) == 0x3f80);
  CHECK(f32_to_bf16(-2.0f) == 0xc000);
  CHECK(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)) == 0x3f80);      // tie -> even
  CHECK(f32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)) == 0x3f82);  // tie -> even (up)
  CHECK(f32_to_bf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)) == 0x3f81);
  CHECK(f32_to_bf16(std::numeric_limits<float>::infinity()) == 0x7f80);
  CHECK(f32_to_bf16(-std::numeric_limits<float>::infinity()) == 0xff80);
  CHECK(f32_to_bf16(std::numeric_limits<float>::max()) == 0x7f80);  // rounds to inf, as torch
  CHECK(f32_to_bf16(float_of(0x00000001u)) == 0x0000);              // f32 subnormal -> 0
  CHECK(f32_to_bf16(float_of(0x00010000u)) == 0x0001);              // bf16 subnormal
  CHECK(f32_to_bf16(float_of(0x00018000u)) == 0x0002);              // subnormal tie -> even
  const uint16_t nan = f32_to_bf16(float_of(0x7f800001u));          // payload in low bits only
  CHECK(std::isnan(bf16_to_f32(nan)));
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(-std::numeric_limits<float>::quiet_NaN()))));
  CHECK(std::signbit(bf16_to_f32(f32_to_bf16(-0.0f))));

  for (uint32_t h = 0; h < 0x10000u; ++h) {
    const float f = bf16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    REQUIRE(f32_to_bf16(f) == h);
  }
  std::mt19937 rng(99);
  for (int i = 0; i < 1000000; ++i) {
    const float f = float_of(rng());
    if (std::isnan(f)) continue;
    INFO("float bits 0x" << std::hex << bits_of(f));
    REQUIRE(f32_to_bf16(f) == bf16_reference(f));
  }
}

TEST_CASE("dtype: convert_to_f32", "[dtype]") {
  const uint16_t half[3] = {0x3c00, 0xc000, 0x0001};
  float out[3];
  convert_to_f32(DType::F16, half, out, 3);
  CHECK(out[0] == 1.0f);
  CHECK(out[1] == -2.0f);
  CHECK(out[2] == std::ldexp(1.0f, -24));
  const uint16_t bf[2] = {0x3f80, 0x4049};
  convert_to_f32(DType::BF16, bf, out, 2);
  CHECK(out[0] == 1.0f);
  CHECK(out[1] == 3.140625f);
  const float f[2] = {0.25f, -7.0f};
  convert_to_f32(DType::F32, f, out, 2);
  CHECK(out[1] == -7.0f);
  const int64_t ids[1] = {3};
  REQUIRE_THROWS_WITH(convert_to_f32(DType::I64, ids, out, 1),
                      ZINC_CONTAINS("cannot convert I64 to F32"));
}

namespace {

// n random elements of a float type as raw bytes: every bit pattern can occur (NaN, inf,
// subnormals, values beyond the fp16 range), plus a few chosen specials at the front.
std::vector<uint8_t> random_elements(DType t, size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> out(n * dtype_size(t));
  for (size_t i = 0; i < n; ++i) {
    uint32_t bits = rng();
    if (t == DType::F32 && i % 3 == 0) {  // mostly ordinary magnitudes, to exercise rounding
      const float mantissa = static_cast<float>(bits % 100000) - 50000.0f;
      bits = bits_of(std::ldexp(mantissa, -static_cast<int>(rng() % 40)));
    }
    if (i < 6) {
      const uint32_t f32_specials[] = {0x7f800000u, 0xff800000u, 0x7fc00001u, 0x00000001u,
                                       0x477ff000u, 0x80000000u};
      const uint32_t u16_specials[] = {0x7c00u, 0xfc00u, 0x7e01u, 0x0001u, 0x7bffu, 0x8000u};
      bits = t == DType::F32 ? f32_specials[i] : u16_specials[i];
    }
    if (t == DType::F32) {
      std::memcpy(&out[i * 4], &bits, 4);
    } else {
      const uint16_t h = static_cast<uint16_t>(bits);
      std::memcpy(&out[i * 2], &h, 2);
    }
  }
  return out;
}

float scalar_to_f32(DType t, const uint8_t* p) {
  if (t == DType::F32) {
    float f;
    std::memcpy(&f, p, 4);
    return f;
  }
  uint16_t h;
  std::memcpy(&h, p, 2);
  return t == DType::F16 ? f16_to_f32(h) : bf16_to_f32(h);
}

// The scalar conversion of one element, as raw bytes of dst_type (a copy for the same type).
std::vector<uint8_t> scalar_convert(DType src_type, const uint8_t* p, DType dst_type) {
  std::vector<uint8_t> out(dtype_size(dst_type));
  if (src_type == dst_type) {
    std::memcpy(out.data(), p, out.size());
    return out;
  }
  const float f = scalar_to_f32(src_type, p);
  if (dst_type == DType::F32) {
    std::memcpy(out.data(), &f, 4);
  } else {
    const uint16_t h = dst_type == DType::F16 ? f32_to_f16(f) : f32_to_bf16(f);
    std::memcpy(out.data(), &h, 2);
  }
  return out;
}

bool is_nan_bytes(DType t, const uint8_t* p) { return std::isnan(scalar_to_f32(t, p)); }

}  // namespace

TEST_CASE("dtype: convert between every pair of float types equals the scalar conversions",
          "[dtype]") {
  const DType types[] = {DType::F32, DType::F16, DType::BF16};
  // Odd counts: one element, a short tail, more than one stack block (2048), more than one
  // OpenMP chunk (16384) with a partial last one.
  const size_t counts[] = {1, 7, 2049, 2 * 65536 + 3};
  uint32_t seed = 17;
  for (DType from : types) {
    for (DType to : types) {
      for (size_t n : counts) {
        CAPTURE(dtype_name(from), dtype_name(to), n);
        const std::vector<uint8_t> src = random_elements(from, n, seed++);
        const size_t ds = dtype_size(to);
        // dst one byte past an aligned address too: convert writes unaligned elements.
        for (size_t misalign : {size_t{0}, size_t{1}}) {
          CAPTURE(misalign);
          std::vector<uint8_t> buf(n * ds + 1 + misalign, 0xEE);
          uint8_t* dst = buf.data() + misalign;
          convert(from, src.data(), to, dst, n);
          size_t bad = 0;
          for (size_t i = 0; i < n; ++i) {
            const std::vector<uint8_t> want = scalar_convert(from, &src[i * dtype_size(from)], to);
            if (std::memcmp(want.data(), dst + i * ds, ds) == 0) continue;
            // NaN stays NaN; the F16C path sets the quiet bit of a signalling fp16 NaN.
            if (is_nan_bytes(to, want.data()) && is_nan_bytes(to, dst + i * ds)) continue;
            ++bad;
          }
          CHECK(bad == 0);
          CHECK(buf[misalign + n * ds] == 0xEE);  // nothing written past the end
        }
      }
    }
  }
}

TEST_CASE("dtype: convert refuses non-float types and null buffers", "[dtype]") {
  const int64_t ids[2] = {1, 2};
  float out[2];
  REQUIRE_THROWS_WITH(convert(DType::I64, ids, DType::F32, out, 2),
                      ZINC_CONTAINS("cannot convert I64 to F32"));
  REQUIRE_THROWS_WITH(convert(DType::F32, out, DType::I8, out, 2),
                      ZINC_CONTAINS("cannot convert F32 to I8"));
  REQUIRE_THROWS_WITH(convert(DType::F16, nullptr, DType::F32, out, 2), ZINC_CONTAINS("null"));
  REQUIRE_NOTHROW(convert(DType::F16, nullptr, DType::F32, nullptr, 0));
}

TEST_CASE("memory arena: budget, high-water mark, thread safety", "[memory_arena]") {
  SECTION("exceeding the budget names the arena, purpose and sizes") {
    MemoryArena a("gpu0", 1024);
    CHECK(a.name() == "gpu0");
    CHECK(a.budget() == 1024);
    a.allocate(600, "weights");
    REQUIRE_THROWS_WITH(
        a.allocate(500, "kv cache"),
        ZINC_CONTAINS("gpu0 memory budget exceeded allocating 500 B for kv cache") &&
            ZINC_CONTAINS("600 B of 1.00 KiB already in use") &&
            ZINC_CONTAINS("at least 1.07 KiB"));
    CHECK(a.used() == 600);  // a refused allocation changes nothing
    a.allocate(424, "exactly the rest");
    CHECK(a.used() == 1024);
  }
  SECTION("high-water mark") {
    MemoryArena a("host");
    a.allocate(600, "a");
    a.allocate(400, "b");
    a.release(600);
    CHECK(a.used() == 400);
    CHECK(a.high_water_mark() == 1000);
    a.allocate(100, "c");
    CHECK(a.high_water_mark() == 1000);
    a.reset_high_water_mark();
    CHECK(a.high_water_mark() == 500);
    a.release(10000);  // over-release clamps at zero
    CHECK(a.used() == 0);
  }
  SECTION("unlimited budget") {
    MemoryArena a("cpu", 0);
    a.allocate(size_t(1) << 50, "huge");
    CHECK(a.used() == size_t(1) << 50);
  }
  SECTION("concurrent allocate and release") {
    MemoryArena a("shared", 1 << 20);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
      threads.emplace_back([&a] {
        for (int i = 0; i < 10000; ++i) {
          a.allocate(100, "t");
          a.release(100);
        }
      });
    for (auto& th : threads) th.join();
    CHECK(a.used() == 0);
    CHECK(a.high_water_mark() >= 100);
    CHECK(a.high_water_mark() <= 400);
  }
}

TEST_CASE("memory arena: format_bytes and parse_bytes", "[memory_arena]") {
  CHECK(format_bytes(0) == "0 B");
  CHECK(format_bytes(512) == "512 B");
  CHECK(format_bytes(1023) == "1023 B");
  CHECK(format_bytes(1024) == "1.00 KiB");
  CHECK(format_bytes(1536) == "1.50 KiB");
  CHECK(format_bytes(size_t(3) << 30) == "3.00 GiB");
  CHECK(format_bytes(size_t(1) << 40) == "1.00 TiB");

  CHECK(parse_bytes("1000000") == 1000000);
  CHECK(parse_bytes("512B") == 512);
  CHECK(parse_bytes("48GiB") == size_t(48) << 30);
  CHECK(parse_bytes("512MiB") == size_t(512) << 20);
  CHECK(parse_bytes("2GB") == 2000000000);
  CHECK(parse_bytes("1.5GiB") == size_t(3) << 29);
  CHECK(parse_bytes("64 KiB") == 65536);
  CHECK(parse_bytes("4K") == 4096);
  CHECK(parse_bytes(format_bytes(size_t(3) << 30)) == size_t(3) << 30);
  REQUIRE_THROWS_WITH(parse_bytes("junk"), ZINC_CONTAINS("'junk' is not a size"));
  REQUIRE_THROWS_WITH(parse_bytes(""), ZINC_CONTAINS("is not a size"));
  REQUIRE_THROWS_WITH(parse_bytes("12XB"), ZINC_CONTAINS("unknown unit 'XB'"));
  REQUIRE_THROWS_WITH(parse_bytes("1.2.3G"), ZINC_CONTAINS("bad number"));
}

// Signalling NaNs come back quiet from the F16C instruction (the quiet bit set): both
// paths give NaN there, and every other value is exact.
TEST_CASE("convert_to_f32 (F16C path where the CPU has it) equals f16_to_f32 bit for bit",
          "[dtype]") {
  std::vector<uint16_t> all(65536 + 5);
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<uint16_t>(i);
  std::vector<float> out(all.size());
  zinc::quant::convert_to_f32(zinc::quant::DType::F16, all.data(), out.data(), all.size());
  size_t bad = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    const float ref = zinc::quant::f16_to_f32(all[i]);
    if (std::isnan(ref)) {
      bad += !std::isnan(out[i]);
    } else {
      bad += std::memcmp(&ref, &out[i], 4) != 0;
    }
  }
  CHECK(bad == 0);
}

// The F16C narrowing path against f32_to_f16 where rounding decides: every fp16 value's
// fp32, the midpoints to its neighbours and one fp32 ulp either side of each (ties to
// even, the subnormal range, the overflow threshold 65520), in runs of 8 and a tail.
TEST_CASE("convert_from_f32 to F16 equals f32_to_f16 at every rounding boundary", "[dtype]") {
  std::vector<float> in;
  for (uint32_t h = 0; h < 0x7c00u; ++h) {
    for (uint32_t sign : {0u, 0x8000u}) {
      const float a = zinc::quant::f16_to_f32(static_cast<uint16_t>(h | sign));
      const float b = zinc::quant::f16_to_f32(static_cast<uint16_t>((h + 1) | sign));
      const float mid = sign != 0 ? -(std::fabs(a) + std::fabs(b)) / 2 : (a + b) / 2;  // exact in fp32
      for (float x : {a, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 2 * mid)}) in.push_back(x);
    }
  }
  for (float x : {INFINITY, -INFINITY, NAN, 1e-40f, -1e-45f, 1e30f}) in.push_back(x);
  in.push_back(3.0f);  // a tail past the last run of 8
  std::vector<uint16_t> out(in.size());
  zinc::quant::convert_from_f32(in.data(), zinc::quant::DType::F16, out.data(), in.size());
  size_t bad = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    if (out[i] == zinc::quant::f32_to_f16(in[i])) continue;
    ++bad;
    UNSCOPED_INFO("fp32 " << in[i] << " -> 0x" << std::hex << out[i]);
  }
  CHECK(bad == 0);
  CHECK(out[in.size() - 5] == 0x7e00u);  // NaN: the canonical quiet NaN, as f32_to_f16
  REQUIRE_THROWS_WITH(zinc::quant::convert_from_f32(in.data(), zinc::quant::DType::I8, out.data(), 1),
                      ZINC_CONTAINS("cannot convert F32 to I8"));
}
