// Group-wise quantization: format names, layouts, quantize, and the two dequantize paths.
// The formats and every choice made for edge cases are written in quantize.hpp.
#include "quant/quantize.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ostream>

#include "quant/dtype.hpp"
#include "quant/quant_detail.hpp"
#include "runtime/common/error.hpp"

namespace zinc::quant {

namespace {

constexpr float kF16Max = 65504.0f;  // largest finite fp16

// Matrices smaller than this (elements) are converted on the calling thread: waking the
// OpenMP team costs more than the work (and far more when the cores are oversubscribed).
constexpr int64_t kParallelMinElements = int64_t{1} << 16;

struct FormatEntry {
  QuantFormat format;
  const char* name;
  int bits;
  bool mins;
};

constexpr FormatEntry kFormats[] = {
    {QuantFormat::None, "none", 0, false},         {QuantFormat::Int8, "int8", 8, false},
    {QuantFormat::Int8Asym, "int8-asym", 8, true}, {QuantFormat::Int4, "int4", 4, true},
    {QuantFormat::Int4Sym, "int4-sym", 4, false},  {QuantFormat::NF4, "nf4", 4, false},
};

const FormatEntry& entry(QuantFormat f) {
  for (const auto& e : kFormats) {
    if (e.format == f) return e;
  }
  ZINC_THROW("unknown quantization format value " << static_cast<int>(f));
}

// Highest code of a format: 127 (int8, q in [-127, 127]), 255 (int8-asym), 15 (int4),
// 7 (int4-sym, q in [-7, 7]).
float code_levels(QuantFormat f) {
  switch (f) {
    case QuantFormat::Int8:
      return 127.0f;
    case QuantFormat::Int8Asym:
      return 255.0f;
    case QuantFormat::Int4:
      return 15.0f;
    case QuantFormat::Int4Sym:
      return 7.0f;
    default:
      return 0.0f;
  }
}

// NF4 decision thresholds: the midpoints of adjacent code values, taken in double and
// rounded to fp32 (the constants of bitsandbytes' dQuantizeNF4 decision tree).
struct NF4Thresholds {
  float t[15];
  NF4Thresholds() {
    for (int i = 0; i < 15; ++i) {
      t[i] = static_cast<float>(
          (static_cast<double>(kNF4Codebook[i]) + static_cast<double>(kNF4Codebook[i + 1])) / 2.0);
    }
  }
};

const NF4Thresholds& nf4_thresholds() {
  static const NF4Thresholds th;
  return th;
}

// NF4 code of v = x / absmax: the index of the nearest code value, i.e. the count of the
// 15 midpoint thresholds below v; a value exactly on a midpoint takes the lower index
// (bitsandbytes compares with `v > midpoint`). Computed in encode_group.

// Round half to even, as std::nearbyint in the default rounding mode, for |v| < 2^22.
// (nearbyint is a libm call on baseline x86-64 without SSE4.1: 10x slower in the
// quantize loop.) Callers clamp v to the code range first.
inline float round_even(float v) {
  constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  return (v + kMagic) - kMagic;  // exact under IEEE rules: no -ffast-math in this project
}

// The smallest fp16 >= x, for finite 0 <= x <= 65504: a symmetric scale rounded up keeps
// |x / s| <= levels, so no code clamps (which matters where the scale is an fp16 subnormal).
uint16_t f16_round_up(float x) {
  uint16_t h = f32_to_f16(x);
  if (f16_to_f32(h) < x) ++h;
  return h;
}

// "the matrix given to FN (FORMAT)" in an error message, streamed only when a check fails
// (quantize and dequantize check on every call and must not allocate).
struct GivenTo {
  const char* fn;
  QuantFormat format;
};

std::ostream& operator<<(std::ostream& os, const GivenTo& g) {
  return os << "the matrix given to " << g.fn << " (" << entry(g.format).name << ")";
}

}  // namespace

namespace detail {

// Shape checks shared by quant_layout, quantize, dequantize and check_view.
template <class What>
void check_shape(QuantFormat f, int64_t rows, int64_t cols, int group, const What& what) {
  if (f == QuantFormat::None) {
    ZINC_THROW(what << " uses quantization format none: it has no quantized layout (its "
                       "weights stay in the checkpoint's float dtype)");
  }
  ZINC_CHECK(rows >= 0 && cols >= 0,
             what << " has a negative shape [" << rows << ", " << cols << "]");
  ZINC_CHECK(group > 0, "group size " << group << " does not divide the " << cols << " columns of "
                                      << what << ": it must be positive");
  ZINC_CHECK(cols % group == 0,
             "group size " << group << " does not divide the " << cols << " columns of " << what);
  ZINC_CHECK(entry(f).bits == 8 || group % 2 == 0,
             "group size " << group << " for " << what << " must be even: " << entry(f).name
                           << " packs two elements per byte");
}

void check_quant_shape(QuantFormat f, int64_t rows, int64_t cols, int group, const char* what) {
  check_shape(f, rows, cols, group, what);
}

}  // namespace detail

namespace {

using detail::check_shape;

void check_pointers(QuantFormat f, const void* codes, const void* scales, const void* mins,
                    int64_t rows, int64_t cols, const char* fn) {
  if (rows == 0 || cols == 0) return;
  ZINC_CHECK(codes != nullptr && scales != nullptr, fn << ": codes and scales must not be null");
  ZINC_CHECK(!quant_has_mins(f) || mins != nullptr,
             fn << ": " << entry(f).name << " stores a minimum per group, but mins is null");
}

// ---------------------------------------------------------------------------------------
// quantize

// How one group is encoded: its stored scale (and min), and the code of each element
// (before packing: int8 as its two's complement byte, int4-sym as q + 8, nf4 as the index).
constexpr int kMaxGroupChunk = 256;  // elements encoded per pass (even: 4-bit pairs stay whole)

struct GroupCoder {
  QuantFormat format = QuantFormat::None;
  bool fixed = false;  // every element gets fixed_code (zero and constant groups)
  uint8_t fixed_code = 0;
  float s = 0.0f;       // fp16-rounded stored scale
  float m = 0.0f;       // fp16-rounded stored minimum (asymmetric formats)
  float levels = 0.0f;  // 127, 255, 15 or 7
  const float* nf4_t = nullptr;
};

// Chooses the scale (and min) of the group x[0, n), stores them, and returns its coder.
// Returns false when a value is not finite or beyond the fp16 range.
bool prepare_group(QuantFormat f, const float* x, int n, uint16_t* scale, uint16_t* min_out,
                   GroupCoder* coder) {
  float lo = x[0], hi = x[0], amax = 0.0f;
  for (int j = 0; j < n; ++j) {
    const float v = x[j];
    if (!(std::fabs(v) <= kF16Max)) return false;  // NaN, inf, or no fp16 scale/min fits
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    amax = std::max(amax, std::fabs(v));
  }
  const bool constant = lo == hi;
  GroupCoder& k = *coder;
  k = GroupCoder{};
  k.format = f;
  k.levels = code_levels(f);

  switch (f) {
    case QuantFormat::Int8:
    case QuantFormat::Int4Sym: {
      const int bias = f == QuantFormat::Int4Sym ? 8 : 0;
      if (constant) {  // s = |v|, q = sign(v) (0 for v == 0): x' = fp16(v) exactly
        *scale = f32_to_f16(amax);
        k.fixed = true;
        k.fixed_code = static_cast<uint8_t>((amax == 0.0f ? 0 : (lo > 0.0f ? 1 : -1)) + bias);
        return true;
      }
      *scale = f16_round_up(amax / k.levels);  // > 0: amax > 0 in a non-constant group
      k.s = f16_to_f32(*scale);
      return true;
    }
    case QuantFormat::Int8Asym:
    case QuantFormat::Int4: {
      *min_out = f32_to_f16(lo);
      k.m = f16_to_f32(*min_out);
      if (constant) {  // s = 65504, q = 0: x' = 0 / s + fp16(v) = fp16(v)
        *scale = f32_to_f16(kF16Max);
        k.fixed = true;
        k.fixed_code = 0;
        return true;
      }
      float s = k.levels / (hi - lo);
      if (!(s <= kF16Max)) s = kF16Max;  // range below levels / 65504: clamp
      *scale = f32_to_f16(s);
      k.s = f16_to_f32(*scale);
      return true;
    }
    case QuantFormat::NF4: {
      if (constant) {  // s = |v|, code -1, 0 or +1: x' = fp16(v) exactly
        *scale = f32_to_f16(amax);
        k.fixed = true;
        k.fixed_code = amax == 0.0f ? 7 : (lo > 0.0f ? 15 : 0);
        return true;
      }
      *scale = f16_round_up(amax);  // > 0: amax > 0 in a non-constant group
      k.s = f16_to_f32(*scale);
      k.nf4_t = nf4_thresholds().t;
      return true;
    }
    case QuantFormat::None:
      break;
  }
  return false;
}

// Codes of one prepared group, one loop per format so that each vectorises (the format
// switch is outside the element loop).
void encode_group(const GroupCoder& k, const float* x, int n, uint8_t* codes) {
  const bool four_bit = quant_bits(k.format) == 4;
  if (k.fixed) {
    const uint8_t c = four_bit ? static_cast<uint8_t>((k.fixed_code << 4) | k.fixed_code) : k.fixed_code;
    std::memset(codes, c, four_bit ? n / 2 : n);
    return;
  }
  uint8_t q[kMaxGroupChunk];
  for (int j0 = 0; j0 < n; j0 += kMaxGroupChunk) {
    const int m = std::min(kMaxGroupChunk, n - j0);
    const float* v = x + j0;
    switch (k.format) {
      case QuantFormat::Int8:
        for (int j = 0; j < m; ++j)
          q[j] = static_cast<uint8_t>(static_cast<int>(round_even(std::clamp(v[j] / k.s, -k.levels, k.levels))));
        break;
      case QuantFormat::Int4Sym:
        for (int j = 0; j < m; ++j)
          q[j] = static_cast<uint8_t>(static_cast<int>(round_even(std::clamp(v[j] / k.s, -k.levels, k.levels))) + 8);
        break;
      case QuantFormat::Int8Asym:
      case QuantFormat::Int4:
        for (int j = 0; j < m; ++j)
          q[j] = static_cast<uint8_t>(round_even(std::clamp((v[j] - k.m) * k.s, 0.0f, k.levels)));
        break;
      case QuantFormat::NF4: {
        // q = the count of thresholds below v / s (see above), threshold by threshold so
        // the compares vectorise across elements instead of branching per element.
        float y[kMaxGroupChunk];
        for (int j = 0; j < m; ++j) {
          y[j] = v[j] / k.s;
          q[j] = 0;
        }
        for (int i = 0; i < 15; ++i) {
          const float t = k.nf4_t[i];
          for (int j = 0; j < m; ++j) q[j] = static_cast<uint8_t>(q[j] + (y[j] > t ? 1 : 0));
        }
        break;
      }
      case QuantFormat::None:
        break;
    }
    if (four_bit) {
      uint8_t* out = codes + j0 / 2;
      for (int j = 0; j < m / 2; ++j) out[j] = static_cast<uint8_t>((q[2 * j] << 4) | q[2 * j + 1]);
    } else {
      std::memcpy(codes + j0, q, static_cast<size_t>(m));
    }
  }
}

bool quantize_row(QuantFormat f, int group, const float* src, int64_t cols, uint8_t* codes,
                  uint16_t* scales, uint16_t* mins) {
  const int bits = entry(f).bits;
  GroupCoder k;
  for (int64_t c = 0, g = 0; c < cols; c += group, ++g) {
    uint16_t unused_min = 0;
    const float* x = src + c;
    if (!prepare_group(f, x, group, &scales[g], mins ? &mins[g] : &unused_min, &k)) return false;
    encode_group(k, x, group, codes + c * bits / 8);
  }
  return true;
}

// ---------------------------------------------------------------------------------------
// dequantize, fast path. Every output value is computed with exactly the fp32 operations of
// dequantize_reference (one product, or one quotient then one sum: nothing to contract into
// an FMA, no reciprocal), so the results match bit for bit; only the order in which elements
// are visited differs. The straight loops carry `omp simd` so they vectorise at -O2 too
// (GCC's -O2 cost model skips loops of unknown trip count); it changes no arithmetic.

// NF4 code values of both nibbles of a byte, high nibble first: one 8-byte copy per byte.
struct NF4Pairs {
  alignas(64) float v[256][2];
  NF4Pairs() {
    for (int b = 0; b < 256; ++b) {
      v[b][0] = kNF4Codebook[b >> 4];
      v[b][1] = kNF4Codebook[b & 0x0f];
    }
  }
};

const NF4Pairs& nf4_pairs() {
  static const NF4Pairs pairs;
  return pairs;
}

// NF4: per group, the code values are copied into a local array (a table lookup per byte),
// then multiplied by the scale in a straight loop that GCC vectorises.
void dequantize_row_nf4(int group, const uint8_t* codes, const uint16_t* scales, int64_t cols,
                        const NF4Pairs& pairs, float* dst) {
  constexpr int kChunk = 256;  // elements per pass; a group may be longer
  alignas(64) float values[kChunk];
  for (int64_t c = 0, g = 0; c < cols; c += group, ++g) {
    const float s = f16_to_f32(scales[g]);
    for (int j0 = 0; j0 < group; j0 += kChunk) {
      const int n = std::min(kChunk, group - j0);  // even: group is even, kChunk too
      const uint8_t* in = codes + (c + j0) / 2;
      for (int k = 0; k < n / 2; ++k) std::memcpy(&values[2 * k], pairs.v[in[k]], 8);
      float* __restrict out = dst + c + j0;
#pragma omp simd
      for (int j = 0; j < n; ++j) out[j] = values[j] * s;
    }
  }
}

// INT4 (asymmetric) and INT4-sym: unpack both nibbles of each byte and convert, divide and
// add (or multiply) in one straight loop that GCC vectorises.
void dequantize_row_int4(int group, const uint8_t* codes, const uint16_t* scales,
                         const uint16_t* mins, int64_t cols, float* dst) {
  for (int64_t c = 0, g = 0; c < cols; c += group, ++g) {
    const float s = f16_to_f32(scales[g]);
    const float m = f16_to_f32(mins[g]);
    const uint8_t* __restrict in = codes + c / 2;
    float* __restrict out = dst + c;
#pragma omp simd
    for (int k = 0; k < group / 2; ++k) {
      out[2 * k] = static_cast<float>(in[k] >> 4) / s + m;
      out[2 * k + 1] = static_cast<float>(in[k] & 0x0f) / s + m;
    }
  }
}

void dequantize_row_int4_sym(int group, const uint8_t* codes, const uint16_t* scales, int64_t cols,
                             float* dst) {
  for (int64_t c = 0, g = 0; c < cols; c += group, ++g) {
    const float s = f16_to_f32(scales[g]);
    const uint8_t* __restrict in = codes + c / 2;
    float* __restrict out = dst + c;
#pragma omp simd
    for (int k = 0; k < group / 2; ++k) {
      out[2 * k] = static_cast<float>((in[k] >> 4) - 8) * s;
      out[2 * k + 1] = static_cast<float>((in[k] & 0x0f) - 8) * s;
    }
  }
}

// 8-bit formats: one straight loop per group that GCC vectorises (convert, divide or
// multiply, add).
void dequantize_row_int8(int group, const uint8_t* codes, const uint16_t* scales, int64_t cols,
                         float* dst) {
  const auto* in = reinterpret_cast<const int8_t*>(codes);
  for (int64_t c = 0, g = 0; c < cols; c += group, ++g) {
    const float s = f16_to_f32(scales[g]);
    const int8_t* __restrict qi = in + c;
    float* __restrict out = dst + c;
#pragma omp simd
    for (int j = 0; j < group; ++j) out[j] = static_cast<float>(qi[j]) * s;
  }
}

void dequantize_row_int8_asym(int group, const uint8_t* codes, const uint16_t* scales,
                              const uint16_t* mins, int64_t cols, float* dst) {
  for (int64_t c = 0, g = 0; c < cols; c += group, ++g) {
    const float s = f16_to_f32(scales[g]);
    const float m = f16_to_f32(mins[g]);
    const uint8_t* __restrict qi = codes + c;
    float* __restrict out = dst + c;
#pragma omp simd
    for (int j = 0; j < group; ++j) out[j] = static_cast<float>(qi[j]) / s + m;
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------

QuantFormat parse_quant_format(const std::string& name) {
  for (const auto& e : kFormats) {
    if (name == e.name) return e.format;
  }
  std::string choices;
  for (const auto& e : kFormats) {
    if (!choices.empty()) choices += ", ";
    choices += e.name;
  }
  ZINC_THROW("unknown quantization format '" << name << "' (choices: " << choices << ")");
}

const char* quant_format_name(QuantFormat f) { return entry(f).name; }
int quant_bits(QuantFormat f) { return entry(f).bits; }
bool quant_has_mins(QuantFormat f) { return entry(f).mins; }

QuantLayout quant_layout(QuantFormat f, int64_t rows, int64_t cols, int group,
                         const std::string& what) {
  check_shape(f, rows, cols, group, what);
  const size_t elems = static_cast<size_t>(rows) * static_cast<size_t>(cols);
  const size_t groups = elems / static_cast<size_t>(group);
  QuantLayout l;
  l.codes_used_bytes = elems * static_cast<size_t>(quant_bits(f)) / 8;
  l.codes_bytes = (l.codes_used_bytes + kCodesAlign - 1) / kCodesAlign * kCodesAlign;
  l.scales_bytes = groups * sizeof(uint16_t);
  l.mins_bytes = quant_has_mins(f) ? groups * sizeof(uint16_t) : 0;
  return l;
}

void quantize(QuantFormat f, int group, const float* src, int64_t rows, int64_t cols,
              uint8_t* codes, uint16_t* scales, uint16_t* mins) {
  check_shape(f, rows, cols, group, GivenTo{"quantize", f});
  check_pointers(f, codes, scales, mins, rows, cols, "quantize");
  if (rows == 0 || cols == 0) return;
  ZINC_CHECK(src != nullptr, "quantize: src must not be null");
  if (!quant_has_mins(f)) mins = nullptr;

  const int64_t groups_per_row = cols / group;
  const int64_t code_bytes_per_row = cols * quant_bits(f) / 8;
  bool ok = true;
#pragma omp parallel for schedule(static) reduction(&& : ok) \
    if (rows * cols >= kParallelMinElements)
  for (int64_t r = 0; r < rows; ++r) {
    ok = quantize_row(f, group, src + r * cols, cols, codes + r * code_bytes_per_row,
                      scales + r * groups_per_row, mins ? mins + r * groups_per_row : nullptr) &&
         ok;
  }
  if (ok) return;
  // Report the first offending element (threads cannot throw out of the parallel region).
  for (int64_t i = 0; i < rows * cols; ++i) {
    if (!(std::fabs(src[i]) <= kF16Max)) {
      ZINC_THROW("cannot quantize to " << entry(f).name << ": element [" << i / cols << ", "
                                       << i % cols << "] is " << src[i]
                                       << "; quantize needs finite values within the fp16 "
                                          "range (|x| <= 65504) its scales and minimums use");
    }
  }
  ZINC_THROW("cannot quantize to " << entry(f).name << ": a group failed to quantize");
}

void dequantize(QuantFormat f, int group, const uint8_t* codes, const uint16_t* scales,
                const uint16_t* mins, int64_t rows, int64_t cols, float* dst) {
  check_shape(f, rows, cols, group, GivenTo{"dequantize", f});
  check_pointers(f, codes, scales, mins, rows, cols, "dequantize");
  if (rows == 0 || cols == 0) return;

  const int64_t gpr = cols / group;              // groups per row
  const int64_t cbr = cols * quant_bits(f) / 8;  // code bytes per row
  const NF4Pairs& pairs = nf4_pairs();
#pragma omp parallel for schedule(static) if (rows * cols >= kParallelMinElements)
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* c = codes + r * cbr;
    const uint16_t* s = scales + r * gpr;
    const uint16_t* m = mins ? mins + r * gpr : nullptr;
    float* d = dst + r * cols;
    switch (f) {
      case QuantFormat::Int8:
        dequantize_row_int8(group, c, s, cols, d);
        break;
      case QuantFormat::Int8Asym:
        dequantize_row_int8_asym(group, c, s, m, cols, d);
        break;
      case QuantFormat::Int4:
        dequantize_row_int4(group, c, s, m, cols, d);
        break;
      case QuantFormat::Int4Sym:
        dequantize_row_int4_sym(group, c, s, cols, d);
        break;
      case QuantFormat::NF4:
        dequantize_row_nf4(group, c, s, cols, pairs, d);
        break;
      case QuantFormat::None:
        break;
    }
  }
}

void dequantize_reference(QuantFormat f, int group, const uint8_t* codes, const uint16_t* scales,
                          const uint16_t* mins, int64_t rows, int64_t cols, float* dst) {
  check_shape(f, rows, cols, group, GivenTo{"dequantize_reference", f});
  check_pointers(f, codes, scales, mins, rows, cols, "dequantize_reference");

  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t col = 0; col < cols; ++col) {
      const int64_t i = r * cols + col;                    // element index, row-major
      const int64_t g = r * (cols / group) + col / group;  // group index
      const float s = f16_to_f32(scales[g]);
      // 4-bit formats: element 2k is the high nibble of byte k
      const int nibble = (i % 2 == 0) ? codes[i / 2] >> 4 : codes[i / 2] & 0x0f;
      float x = 0.0f;
      switch (f) {
        case QuantFormat::Int8:
          x = static_cast<float>(static_cast<int8_t>(codes[i])) * s;
          break;
        case QuantFormat::Int8Asym:
          x = static_cast<float>(codes[i]) / s + f16_to_f32(mins[g]);
          break;
        case QuantFormat::Int4:
          x = static_cast<float>(nibble) / s + f16_to_f32(mins[g]);
          break;
        case QuantFormat::Int4Sym:
          x = static_cast<float>(nibble - 8) * s;
          break;
        case QuantFormat::NF4:
          x = kNF4Codebook[nibble] * s;
          break;
        case QuantFormat::None:
          break;
      }
      dst[i] = x;
    }
  }
}

}  // namespace zinc::quant
