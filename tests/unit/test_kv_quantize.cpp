// quant/kv_quantize_avx512.cpp against the scalar definition (kv_quant_internal.hpp):
// codes and params bit for bit, and the same refusals, over random rows and the edge cases
// (zero minima of either sign first, constant and zero groups, fp16 subnormal ranges,
// values at +-65504, NaN and inf).
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "catch.hpp"
#include "quant/kv_quant_internal.hpp"

using namespace zinc::quant;

TEST_CASE("kv quantize: the AVX-512 rows equal the scalar definition bit for bit", "[kv-quant]") {
  if (!detail::kv_quantize_avx512_usable(64)) {
    SUCCEED("SKIP: this CPU has no AVX-512F/BW");
    return;
  }
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const float specials[] = {0.0f, -0.0f, 65504.0f, -65504.0f, 6e-8f, -6e-8f, 1e-5f, 3.0f};
  long rows = 0;
  for (KvStorage s : {KvStorage::Int8, KvStorage::Int4})
    for (int hd : {64, 128, 256})
      for (int group : {16, 32, 64, 128}) {
        if (group > hd) continue;
        for (int trial = 0; trial < 300; ++trial) {
          std::vector<float> x(static_cast<size_t>(hd));
          const float scale = std::pow(10.0f, static_cast<float>(trial % 9) - 5.0f);
          for (float& v : x) v = nd(rng) * scale;
          switch (trial % 6) {  // edge cases
            case 1: std::fill(x.begin(), x.end(), specials[trial % 8]); break;  // constant rows
            case 2: for (size_t i = 0; i < x.size(); i += 3) x[i] = (i % 2 ? -0.0f : 0.0f); break;
            case 3: for (float& v : x) v = std::fabs(v); x[static_cast<size_t>(trial) % x.size()] = -0.0f; break;
            case 4: x[static_cast<size_t>(trial * 7) % x.size()] = specials[trial % 8]; break;
            default: break;
          }
          const size_t cb = s == KvStorage::Int8 ? hd : hd / 2;
          std::vector<uint8_t> c1(cb, 0xAA), c2(cb, 0x55);
          std::vector<uint16_t> p1(2 * hd / group, 1), p2(2 * hd / group, 2);
          const bool ok1 = detail::kv_quantize_row_scalar(s, hd, group, x.data(), c1.data(), p1.data());
          const bool ok2 = detail::kv_quantize_row_avx512(s, hd, group, x.data(), c2.data(), p2.data());
          INFO(kv_storage_name(s) << " hd " << hd << " group " << group << " trial " << trial);
          REQUIRE(ok1 == ok2);
          REQUIRE(ok1);
          CHECK(c1 == c2);
          CHECK(p1 == p2);
          ++rows;
        }
        // Refusals: NaN, inf, beyond the fp16 range.
        for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(), 70000.0f}) {
          std::vector<float> x(static_cast<size_t>(hd), 1.0f);
          x[static_cast<size_t>(hd) - 1] = bad;
          std::vector<uint8_t> c(static_cast<size_t>(hd));
          std::vector<uint16_t> p(2 * hd / group);
          CHECK_FALSE(detail::kv_quantize_row_scalar(s, hd, group, x.data(), c.data(), p.data()));
          CHECK_FALSE(detail::kv_quantize_row_avx512(s, hd, group, x.data(), c.data(), p.data()));
        }
      }
  CHECK(rows == 2 * 11 * 300);  // storages x (hd, group) pairs x trials
}
