// Test data shared by the quantization tests (test_quant.cpp, test_quant_view.cpp): the
// five formats, one quantized matrix (sized by quant_layout), and the kinds of weight
// data the tests quantize (normal, outliers, zero and constant groups, a mix).
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

#include "quant/quantize.hpp"

namespace zinc::test::quant_data {

using namespace zinc::quant;

inline const QuantFormat kAllFormats[] = {QuantFormat::Int8, QuantFormat::Int8Asym, QuantFormat::Int4,
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
inline const char* data_name(Data d) {
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

inline std::vector<float> make_data(Data kind, int64_t rows, int64_t cols, int group, uint32_t seed) {
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

// Shapes whose codes are not a multiple of 16 bytes (the layout pads them; the scales sit
// after the padding, 2-byte aligned), with a group that divides each row.
struct OddShape {
  QuantFormat f;
  int64_t rows, cols;
  int group;
};
inline constexpr OddShape kOddShapes[] = {{QuantFormat::Int4, 1, 2, 2},    {QuantFormat::Int8, 3, 5, 5},
                                          {QuantFormat::Int8Asym, 3, 5, 5}, {QuantFormat::Int4Sym, 3, 10, 10},
                                          {QuantFormat::NF4, 5, 6, 6},      {QuantFormat::Int4, 7, 18, 6}};

}  // namespace zinc::test::quant_data
