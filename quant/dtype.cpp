#include "quant/dtype.hpp"

#include <cpuid.h>
#include <immintrin.h>

#include <algorithm>

#include "runtime/common/error.hpp"

namespace zinc::quant {

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: return 4;
    case DType::F16: return 2;
    case DType::BF16: return 2;
    case DType::I64: return 8;
    case DType::I32: return 4;
    case DType::I8: return 1;
    case DType::U8: return 1;
    case DType::BOOL: return 1;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::F16: return "F16";
    case DType::BF16: return "BF16";
    case DType::I64: return "I64";
    case DType::I32: return "I32";
    case DType::I8: return "I8";
    case DType::U8: return "U8";
    case DType::BOOL: return "BOOL";
  }
  return "?";
}

bool parse_dtype(const std::string& name, DType* out) {
  static const struct { const char* name; DType type; } table[] = {
      {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16}, {"I64", DType::I64},
      {"I32", DType::I32}, {"I8", DType::I8},   {"U8", DType::U8},     {"BOOL", DType::BOOL}};
  for (const auto& e : table) {
    if (name == e.name) {
      *out = e.type;
      return true;
    }
  }
  return false;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while ((mant & 0x400u) == 0) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3ffu;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t abs = bits & 0x7fffffffu;
  if (abs > 0x7f800000u) return sign | 0x7e00u;        // NaN
  if (abs >= 0x477ff000u) return sign | 0x7c00u;       // overflow (incl. rounding up) -> inf
  if (abs < 0x38800000u) {                             // subnormal or zero in fp16
    if (abs < 0x33000000u) return sign;                // below half the smallest subnormal
    const uint32_t exp = abs >> 23;
    const uint32_t mant = (abs & 0x7fffffu) | 0x800000u;
    // value = mant * 2^(exp-150) and the fp16 subnormal unit is 2^-24, so q = mant >> (126-exp)
    const uint32_t shift = 126 - exp;
    uint32_t q = mant >> shift;
    const uint32_t rem = mant & ((1u << shift) - 1);
    const uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return sign | static_cast<uint16_t>(q);
  }
  uint32_t v = abs - (112u << 23);  // rebias exponent 127 -> 15
  const uint32_t rem = v & 0x1fffu;
  v >>= 13;
  if (rem > 0x1000u || (rem == 0x1000u && (v & 1u))) ++v;
  return sign | static_cast<uint16_t>(v);
}

namespace {

// fp16 -> fp32 is exact, so the F16C instruction gives the same bits as f16_to_f32, 8
// elements at a time (checkpoint loading and quantize-at-load spend their time here).

__attribute__((target("avx,f16c"))) void f16_to_f32_f16c(const uint16_t* s, float* d, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(s + i))));
  for (; i < n; ++i) d[i] = f16_to_f32(s[i]);
}

// fp32 -> fp16 rounds to nearest even in both, and F16C's overflow threshold (65520) and
// subnormal results are f32_to_f16's; only a NaN's payload differs (F16C keeps its top
// bits, f32_to_f16 gives the canonical quiet NaN), so a NaN goes through f32_to_f16. The
// host KV path converts every step's attention outputs here (with the scalar loop this
// was 85 of the 534 ms of an OPT-30B b96 host-KV step on the H200's host: run I).
__attribute__((target("avx,f16c"))) void f32_to_f16_f16c(const float* s, uint16_t* d, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 x = _mm256_loadu_ps(s + i);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i), _mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT));
    if (_mm256_movemask_ps(_mm256_cmp_ps(x, x, _CMP_UNORD_Q)) != 0)
      for (size_t j = i; j < i + 8; ++j) d[j] = f32_to_f16(s[j]);
  }
  for (; i < n; ++i) d[i] = f32_to_f16(s[i]);
}

}  // namespace

void convert_from_f32(const float* src, DType dst_type, void* dst, size_t n) {
  switch (dst_type) {
    case DType::F32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::F16: {
      auto* d = static_cast<uint16_t*>(dst);
      if (cpu_has_f16c()) {
        f32_to_f16_f16c(src, d, n);
        return;
      }
      for (size_t i = 0; i < n; ++i) d[i] = f32_to_f16(src[i]);
      return;
    }
    case DType::BF16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = f32_to_bf16(src[i]);
      return;
    }
    default:
      ZINC_THROW("cannot convert F32 to " << dtype_name(dst_type) << ": not a float type");
  }
}

void convert_to_f32(DType src_type, const void* src, float* dst, size_t n) {
  switch (src_type) {
    case DType::F32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::F16: {
      const auto* s = static_cast<const uint16_t*>(src);
      if (cpu_has_f16c()) {
        f16_to_f32_f16c(s, dst, n);
        return;
      }
      for (size_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s[i]);
      return;
    }
    case DType::BF16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
      return;
    }
    default:
      ZINC_THROW("cannot convert " << dtype_name(src_type) << " to F32: not a float type");
  }
}

namespace {

// Elements per OpenMP task: small enough that one decode step's queries (OPT-30B, 48
// sequences: 344k elements) spread over 16 cores, large enough to amortise a task.
constexpr size_t kConvertChunk = 16 * 1024;
constexpr size_t kConvertBlock = 2048;       // elements per stack buffer

bool is_float_type(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

// n elements (at most kConvertChunk) of two different float types, through fp32 in blocks
// on the stack; src and dst may be unaligned.
void convert_block(DType src_type, const uint8_t* src, DType dst_type, uint8_t* dst, size_t n) {
  const size_t src_size = dtype_size(src_type), dst_size = dtype_size(dst_type);
  float f32[kConvertBlock];
  uint16_t h[kConvertBlock];
  for (size_t i = 0; i < n; i += kConvertBlock) {
    const size_t m = std::min(kConvertBlock, n - i);
    uint8_t* out = dst + i * dst_size;
    if (dst_type == DType::F32 && reinterpret_cast<uintptr_t>(out) % alignof(float) == 0) {
      convert_to_f32(src_type, src + i * src_size, reinterpret_cast<float*>(out), m);
      continue;
    }
    const float* from = f32;
    if (src_type == DType::F32 && reinterpret_cast<uintptr_t>(src + i * src_size) % alignof(float) == 0)
      from = reinterpret_cast<const float*>(src + i * src_size);  // no copy for an aligned fp32 source
    else
      convert_to_f32(src_type, src + i * src_size, f32, m);
    if (dst_type == DType::F32) {
      std::memcpy(out, from, m * sizeof(float));
      continue;
    }
    convert_from_f32(from, dst_type, h, m);
    std::memcpy(out, h, m * sizeof(uint16_t));
  }
}

}  // namespace

void convert(DType src_type, const void* src, DType dst_type, void* dst, size_t n) {
  ZINC_CHECK(is_float_type(src_type) && is_float_type(dst_type),
             "cannot convert " << dtype_name(src_type) << " to " << dtype_name(dst_type)
                               << ": only F32, F16 and BF16 convert");
  if (n == 0) return;
  ZINC_CHECK(src != nullptr && dst != nullptr,
             "convert " << dtype_name(src_type) << " to " << dtype_name(dst_type)
                        << ": null buffer for " << n << " elements");
  const size_t src_size = dtype_size(src_type), dst_size = dtype_size(dst_type);
  const auto* s = static_cast<const uint8_t*>(src);
  auto* d = static_cast<uint8_t*>(dst);
  const int64_t chunks = static_cast<int64_t>((n + kConvertChunk - 1) / kConvertChunk);
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) {
    const size_t begin = static_cast<size_t>(c) * kConvertChunk;
    const size_t count = std::min(kConvertChunk, n - begin);
    if (src_type == dst_type) {
      std::memcpy(d + begin * dst_size, s + begin * src_size, count * src_size);
    } else {
      convert_block(src_type, s + begin * src_size, dst_type, d + begin * dst_size, count);
    }
  }
}

// F16C from CPUID.1:ECX (clang 14's __builtin_cpu_supports has no "f16c"); AVX from the
// builtin, which also checks that the OS saves the YMM registers.
bool cpu_has_f16c() {
  static const bool yes = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C) && __builtin_cpu_supports("avx");
  }();
  return yes;
}

}  // namespace zinc::quant
