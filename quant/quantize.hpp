// Group-wise weight quantization: the formats a layer blob stores, and the conversions.
//
// A matrix W [rows, cols] (PyTorch Linear layout: rows = out features, cols = in features)
// is cut into groups of `group` consecutive elements along each row (the input dimension);
// cols % group must be 0, and group must be even for the 4-bit formats. Each group has an
// fp16 scale and, for asymmetric formats, an fp16 minimum. Storage of one matrix, in this
// order, each part a plain array (QuantLayout gives the sizes and offsets):
//   codes  [rows * cols * bits / 8] bytes, row-major; 4-bit formats pack two elements per
//          byte with element 2k in the HIGH nibble of byte k (bitsandbytes' order); then
//          zero bytes up to the next multiple of kCodesAlign (the codes part, codes_bytes)
//   scales [rows * cols / group] fp16, at offset codes_bytes
//   mins   [rows * cols / group] fp16 (asymmetric formats only), right after the scales
// The padding keeps scales and mins 2-byte aligned whatever the shape, so they can be read
// in place (quant/quant_view.hpp); where rows * cols * bits / 8 is already a multiple of
// kCodesAlign (every cols that is a multiple of 32) there is no padding.
// Formats (x = weight, q = stored code):
//   int8      symmetric:  s = absmax / 127;          q = round(x / s) in [-127, 127]; x' = q * s
//   int8-asym DeepSpeed:  s = 255 / (max - min);     q = round((x - min) * s) in [0, 255];
//                         x' = q / s + min   (scale stored as DeepSpeed stores it: levels/range)
//   int4      DeepSpeed asymmetric: as int8-asym with 15 levels, q in [0, 15]
//   int4-sym  symmetric:  s = absmax / 7;            q = round(x / s) in [-7, 7] (stored + 8)
//   nf4       bitsandbytes NF4: s = absmax; q = index of the nearest of the 16 NF4 code
//             values to x / s; x' = code[q] * s
//   none      the weights stay in the checkpoint's float dtype (no scales); quant_layout,
//             quantize and dequantize throw for it
// Details the formulas leave open:
//   - s and min are rounded to fp16 first and q is computed from the rounded values, so
//     dequantization uses exactly what was quantized against. Symmetric formats and nf4
//     round s UP to the next fp16 (so |x / s| <= 127, 7 or 1 and no code clamps, which
//     matters where s is an fp16 subnormal, i.e. absmax below 127 * 2^-14 for int8);
//     asymmetric formats round s and min to nearest. round() is half to even
//     (torch.round); q is clamped to its range.
//   - Dequantization is fp32: x' = float(q) * s, x' = float(q) / s + min (a true division,
//     no reciprocal), x' = code[q] * s. The fast path and the reference do these same
//     operations, so they agree bit for bit.
//   - NF4 nearest: q = number of decision thresholds t_i with x / s > t_i, where t_i is the
//     midpoint of code[i] and code[i+1] computed in double and rounded to fp32 (the
//     constants of bitsandbytes' dQuantizeNF4); a value exactly on a midpoint takes the
//     lower index, as in bitsandbytes.
//   - A group whose values are all equal (v) gets a scale that reproduces them exactly:
//     x' == fp16(v) (the fp16 rounding of the stored scale or min is the only error).
//     Symmetric formats store s = fp16(|v|) and q = sign(v); nf4 stores s = fp16(|v|) and
//     code -1.0 or +1.0; v = 0 gives s = 0 and the zero code (q = 0; nf4 index 7).
//     Asymmetric formats store min = fp16(v), s = 65504 and q = 0.
//   - Asymmetric: where levels / (max - min) exceeds the fp16 maximum (range below
//     levels / 65504), s = 65504, the largest finite fp16.
//   - quantize needs finite values with |x| <= 65504 (the fp16 range scales and minimums
//     live in) and throws naming the first element that is not.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace zinc::quant {

enum class QuantFormat { None, Int8, Int8Asym, Int4, Int4Sym, NF4 };

// "none", "int8", "int8-asym", "int4", "int4-sym", "nf4"; throws listing the choices.
QuantFormat parse_quant_format(const std::string& name);
const char* quant_format_name(QuantFormat f);
int quant_bits(QuantFormat f);          // 8 or 4 (0 for None)
bool quant_has_mins(QuantFormat f);     // asymmetric formats store a minimum per group

// The 16 NF4 code values of bitsandbytes (create_normal_map), ascending, code[7] == 0.
// (bitsandbytes.functional.get_4bit_type("nf4"), as fp32; constexpr so the CUDA kernels'
// __constant__ copy is initialised from these same values.)
inline constexpr float kNF4Codebook[16] = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

// The codes part of a stored matrix is padded to a multiple of this many bytes.
constexpr size_t kCodesAlign = 16;

// Sizes (bytes) of one stored matrix's parts; offsets are relative to its first byte.
struct QuantLayout {
  size_t codes_used_bytes = 0;  // rows * cols * bits / 8: the codes themselves
  size_t codes_bytes = 0;       // codes_used_bytes rounded up to kCodesAlign (with the padding)
  size_t scales_bytes = 0;      // fp16 per group
  size_t mins_bytes = 0;        // fp16 per group, asymmetric only
  size_t scales_offset() const { return codes_bytes; }
  size_t mins_offset() const { return codes_bytes + scales_bytes; }
  size_t total() const { return codes_bytes + scales_bytes + mins_bytes; }
};

// Throws zinc::Error when group <= 0 or cols % group != 0 (naming `what`).
QuantLayout quant_layout(QuantFormat f, int64_t rows, int64_t cols, int group, const std::string& what);

// Quantizes src [rows, cols] fp32 into three separate arrays: codes [codes_used_bytes]
// (the padding of a stored matrix is not written), scales and mins [rows * cols / group].
// mins may be null for symmetric formats. Allocates nothing.
void quantize(QuantFormat f, int group, const float* src, int64_t rows, int64_t cols,
              uint8_t* codes, uint16_t* scales, uint16_t* mins);

// Fast path (vectorised, OpenMP over rows): codes + scales (+ mins) -> fp32 dst [rows, cols].
// scales and mins must be 2-byte aligned. Allocates nothing. (A stored matrix is usually
// dequantized through a QuantView: quant/quant_view.hpp.)
void dequantize(QuantFormat f, int group, const uint8_t* codes, const uint16_t* scales,
                const uint16_t* mins, int64_t rows, int64_t cols, float* dst);

// Scalar reference of dequantize, element by element from the definitions above; the
// fast path must equal it bit for bit.
void dequantize_reference(QuantFormat f, int group, const uint8_t* codes, const uint16_t* scales,
                          const uint16_t* mins, int64_t rows, int64_t cols, float* dst);

}  // namespace zinc::quant
