// Element types zinc reads and computes in, the scalar conversions between them, and the
// bulk conversions between the float types (F32, F16, BF16).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace zinc::quant {

enum class DType { F32, F16, BF16, I64, I32, I8, U8, BOOL };

size_t dtype_size(DType t);
const char* dtype_name(DType t);  // "F32", "F16", ... (safetensors spelling)
// Parses the safetensors spelling; returns false for an unknown name.
bool parse_dtype(const std::string& name, DType* out);

inline float bf16_to_f32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even, as torch does; NaN stays NaN.
inline uint16_t f32_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);  // round to nearest even, overflow -> inf
// The CPU has AVX + F16C (hardware fp16 <-> fp32, 8 at a time); checked once.
bool cpu_has_f16c();

// Converts n elements of a float type (F32, F16, BF16) to fp32. Throws for other types.
void convert_to_f32(DType src_type, const void* src, float* dst, size_t n);
// Converts n fp32 values to a float type, each as f32_to_f16 / f32_to_bf16 gives it (F16C
// where the CPU has it). Throws for other types. One thread; convert() splits large n.
void convert_from_f32(const float* src, DType dst_type, void* dst, size_t n);

// Converts n elements from src_type to dst_type, each of F32, F16, BF16 (throws naming the
// type for any other). Every element equals the scalar conversions: widening is exact,
// narrowing goes through fp32 with f32_to_f16 / f32_to_bf16 (round to nearest even), and
// the same type in and out is a plain copy. OpenMP-parallel over chunks of a large n;
// allocates nothing. src and dst must not overlap.
void convert(DType src_type, const void* src, DType dst_type, void* dst, size_t n);

}  // namespace zinc::quant
