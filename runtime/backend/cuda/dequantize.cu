// dequantize (kernels.hpp, "dequantize.cu"): a stored matrix (quant::QuantView in device
// memory) to out_t, one kernel per format (int8, int8-asym, int4, int4-sym, nf4); raw
// F32/F16/BF16 views are a convert().
//
// Every element's fp32 value is quant::dequantize_reference's, operation for operation,
// with the _rn intrinsics so nvcc cannot contract or approximate anything:
//   int8       float(int8_t(q)) * s
//   int8-asym  float(q) / s + min      (the IEEE quotient, see below)
//   int4       float(q) / s + min      (q the nibble; element 2k in the HIGH nibble of byte k)
//   int4-sym   float(q - 8) * s
//   nf4        kNF4Codebook[q] * s
// with s and min the group's fp16 scale and minimum widened exactly; then one rounding to
// out_t (nearest even). The asymmetric formats' quotient q / s is not a division per
// element (that ran at 37% of a device copy for int4): with r = 1/s correctly rounded,
// y = q r, e = fma(-y, s, q), fma(e, r, y) is the correctly rounded q / s for every code
// q in 0..255 and every finite nonzero fp16 scale (Markstein's correction; checked
// exhaustively by tests/unit/test_quant.cpp, "the reciprocal quotient ..."); a group
// whose scale is 0 or infinite divides. Groups run along the rows and cols % group == 0, so over the
// row-major elements the group of element i is simply i / group.
//
// Two kernels per (format, out_t). (A third, "wide" one, 16 code bytes and one group lookup
// per thread, measured slower on the H200 — int4 34%, nf4 48% of a device copy against 70%
// and 86% — because each thread then writes 64 contiguous bytes and a warp's stores
// scatter; launch/results/BENCH.md, run F. A faster layout keeps the warp's stores
// contiguous.)
//   fast     group % 8 == 0, codes 8-byte (8-bit) / 4-byte (4-bit) aligned, out 16-byte
//            aligned, fewer than 2^31 packs (17G elements): each thread dequantizes packs of 8 elements
//            with one code load (uint2 or uint32) and 16- or 32-byte stores; a pack lies in
//            one group, found with a multiply-shift division (no hardware divide).
//   general  anything else (groups of 10, unaligned views): each thread takes 8
//            consecutive elements with byte loads and element stores, one 64-bit division
//            for its first group and a running count across group boundaries.
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "quant/quant_view.hpp"
#include "quant/quantize.hpp"
#include "runtime/backend/cuda/cuda_types.cuh"
#include "runtime/backend/cuda/kernels.hpp"

namespace zinc::runtime::cuda {
namespace {

using quant::QuantFormat;

constexpr int kThreads = 256;

// quant::kNF4Codebook (quant/quantize.hpp), element by element from the one definition.
__constant__ float c_nf4_codebook[16] = {
    quant::kNF4Codebook[0],  quant::kNF4Codebook[1],  quant::kNF4Codebook[2],  quant::kNF4Codebook[3],
    quant::kNF4Codebook[4],  quant::kNF4Codebook[5],  quant::kNF4Codebook[6],  quant::kNF4Codebook[7],
    quant::kNF4Codebook[8],  quant::kNF4Codebook[9],  quant::kNF4Codebook[10], quant::kNF4Codebook[11],
    quant::kNF4Codebook[12], quant::kNF4Codebook[13], quant::kNF4Codebook[14], quant::kNF4Codebook[15]};

template <QuantFormat F>
constexpr bool kFourBit = F == QuantFormat::Int4 || F == QuantFormat::Int4Sym || F == QuantFormat::NF4;
template <QuantFormat F>
constexpr bool kHasMins = F == QuantFormat::Int8Asym || F == QuantFormat::Int4;

// A group's scale as decode() takes it: s, and for the asymmetric formats r = 1/s (0 when
// s is 0 or infinite: decode divides then).
struct Scale {
  float s, r;
};
template <QuantFormat F>
__device__ __forceinline__ Scale group_scale(float s) {
  if constexpr (kHasMins<F>) return {s, (s != 0.0f && isfinite(s)) ? __frcp_rn(s) : 0.0f};
  return {s, 0.0f};
}

// q / s correctly rounded: with kRecip the header's correction (the caller has checked
// r != 0), else the division.
template <bool kRecip>
__device__ __forceinline__ float quotient(float q, Scale sc) {
  if constexpr (!kRecip) {
    return __fdiv_rn(q, sc.s);
  } else {
    const float y = __fmul_rn(q, sc.r);
    return __fmaf_rn(__fmaf_rn(-y, sc.s, q), sc.r, y);
  }
}

// One element from its code q (the byte for 8-bit formats, the nibble for 4-bit ones).
// Asymmetric formats: kRecip = the caller knows the group's r is nonzero (no test here);
// otherwise each element tests r and divides where it is 0.
template <QuantFormat F, bool kRecip = false>
__device__ __forceinline__ float decode(uint32_t q, Scale sc, float m, const float* nf4) {
  const float s = sc.s;
  if constexpr (F == QuantFormat::Int8) {
    return __fmul_rn(static_cast<float>(static_cast<int8_t>(static_cast<uint8_t>(q))), s);
  } else if constexpr (F == QuantFormat::Int8Asym || F == QuantFormat::Int4) {
    if constexpr (kRecip) return __fadd_rn(quotient<true>(static_cast<float>(q), sc), m);
    return __fadd_rn(sc.r == 0.0f ? quotient<false>(static_cast<float>(q), sc) : quotient<true>(static_cast<float>(q), sc), m);
  } else if constexpr (F == QuantFormat::Int4Sym) {
    return __fmul_rn(static_cast<float>(static_cast<int>(q) - 8), s);
  } else {
    return __fmul_rn(nf4[q], s);
  }
}

// The NF4 code values in shared memory (a warp's 16 distinct indices hit 16 banks, where
// __constant__ would serialise them). Every thread of the block must call it.
template <QuantFormat F>
__device__ __forceinline__ const float* nf4_table() {
  if constexpr (F == QuantFormat::NF4) {
    __shared__ float table[16];
    if (threadIdx.x < 16) table[threadIdx.x] = c_nf4_codebook[threadIdx.x];
    __syncthreads();
    return table;
  } else {
    return nullptr;
  }
}

// Unsigned 32-bit division by a fixed divisor d >= 1: q = (mulhi(n, m) + n) >> l with
// l = ceil(log2 d), m = floor(2^32 (2^l - d) / d) + 1 (Granlund & Montgomery), exact for
// every n < 2^32.
struct FastDiv {
  uint32_t m = 0;
  uint32_t l = 0;
  explicit FastDiv(uint32_t d) {
    while ((uint64_t{1} << l) < d) ++l;
    m = static_cast<uint32_t>(((uint64_t{1} << 32) * ((uint64_t{1} << l) - d)) / d + 1);
  }
  __device__ __forceinline__ uint32_t div(uint32_t n) const {
    return static_cast<uint32_t>((static_cast<uint64_t>(__umulhi(n, m)) + n) >> l);
  }
};

template <QuantFormat F, typename TO>
__global__ void dequant_fast_kernel(const uint8_t* __restrict codes, const uint16_t* __restrict scales,
                                    const uint16_t* __restrict mins, TO* __restrict out, uint32_t packs,
                                    FastDiv packs_per_group) {
  const float* nf4 = nf4_table<F>();
  const uint32_t stride = gridDim.x * blockDim.x;  // p + stride < 2^32: packs < 2^31
  for (uint32_t p = blockIdx.x * blockDim.x + threadIdx.x; p < packs; p += stride) {
    const uint32_t g = packs_per_group.div(p);
    const Scale s = group_scale<F>(f16_bits_to_f32(__ldg(scales + g)));
    float m = 0.0f;
    if constexpr (kHasMins<F>) m = f16_bits_to_f32(__ldg(mins + g));
    float v[kPack];
    // The pack's 8 elements; for the asymmetric formats the branch on r is taken once per
    // pack, not per element (the per-element test put a divergence region and a division
    // call around every element in the SASS).
    auto decode_pack = [&](auto recip) {
      constexpr bool kRecip = decltype(recip)::value;
      if constexpr (kFourBit<F>) {
        const uint32_t w = __ldg(reinterpret_cast<const uint32_t*>(codes) + p);  // bytes 4p .. 4p+3
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          const uint32_t byte = (w >> (8 * k)) & 0xffu;
          v[2 * k] = decode<F, kRecip>(byte >> 4, s, m, nf4);
          v[2 * k + 1] = decode<F, kRecip>(byte & 0x0fu, s, m, nf4);
        }
      } else {
        const uint2 w = __ldg(reinterpret_cast<const uint2*>(codes) + p);  // bytes 8p .. 8p+7
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          v[k] = decode<F, kRecip>((w.x >> (8 * k)) & 0xffu, s, m, nf4);
          v[4 + k] = decode<F, kRecip>((w.y >> (8 * k)) & 0xffu, s, m, nf4);
        }
      }
    };
    if (!kHasMins<F> || s.r != 0.0f)
      decode_pack(std::true_type{});
    else
      decode_pack(std::false_type{});
    store8_f32(out + static_cast<int64_t>(p) * kPack, v);
  }
}

template <QuantFormat F, typename TO>
__global__ void dequant_general_kernel(const uint8_t* __restrict codes, const uint16_t* __restrict scales,
                                       const uint16_t* __restrict mins, TO* __restrict out, int64_t numel,
                                       int64_t group) {
  const float* nf4 = nf4_table<F>();
  const int64_t chunks = (numel + kPack - 1) / kPack;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < chunks; c += stride) {
    const int64_t i0 = c * kPack;
    int64_t g = i0 / group;
    int64_t r = i0 - g * group;  // position of element i in its group
    Scale s = group_scale<F>(f16_bits_to_f32(scales[g]));
    float m = kHasMins<F> ? f16_bits_to_f32(mins[g]) : 0.0f;
    const int n = numel - i0 < kPack ? static_cast<int>(numel - i0) : kPack;
    for (int j = 0; j < n; ++j, ++r) {
      const int64_t i = i0 + j;
      if (r == group) {
        r = 0;
        ++g;
        s = group_scale<F>(f16_bits_to_f32(scales[g]));
        if constexpr (kHasMins<F>) m = f16_bits_to_f32(mins[g]);
      }
      uint32_t q;
      if constexpr (kFourBit<F>) {
        const uint32_t byte = codes[i >> 1];
        q = (i & 1) ? (byte & 0x0fu) : (byte >> 4);
      } else {
        q = codes[i];
      }
      store_f32(out + i, decode<F>(q, s, m, nf4));
    }
  }
}

template <QuantFormat F, typename TO>
void launch_dequant(const quant::QuantView& v, TO* out, cudaStream_t s) {
  const int64_t numel = v.numel();
  const int64_t group = v.group;
  const uintptr_t code_align = kFourBit<F> ? 4 : 8;
  const bool fast = group % kPack == 0 && reinterpret_cast<uintptr_t>(v.codes) % code_align == 0 &&
                    aligned16(out) && numel / kPack < (int64_t{1} << 31);
  const uint16_t* mins = kHasMins<F> ? v.mins : nullptr;
  if (fast) {
    const int64_t packs = numel / kPack;  // numel % 8 == 0: cols is a multiple of group
    dequant_fast_kernel<F, TO><<<grid_for(packs, kThreads), kThreads, 0, s>>>(
        v.codes, v.scales, mins, out, static_cast<uint32_t>(packs), FastDiv(static_cast<uint32_t>(group / kPack)));
    ZINC_CUDA_LAUNCH_CHECK("dequant_fast_kernel");
  } else {
    const int64_t chunks = (numel + kPack - 1) / kPack;
    dequant_general_kernel<F, TO><<<grid_for(chunks, kThreads), kThreads, 0, s>>>(v.codes, v.scales, mins, out,
                                                                                   numel, group);
    ZINC_CUDA_LAUNCH_CHECK("dequant_general_kernel");
  }
}

}  // namespace

void dequantize(const quant::QuantView& v, quant::DType out_t, void* out, cudaStream_t s) {
  quant::check_view(v, "the view given to cuda::dequantize");
  const int64_t numel = v.numel();
  if (numel == 0) return;
  ZINC_CHECK(out != nullptr, "cuda::dequantize: no destination for " << numel << " elements");
  if (v.format == QuantFormat::None) {
    convert(v.dtype, v.codes, out_t, out, numel, s);
    return;
  }
  dispatch_float_type(out_t, "cuda::dequantize (output)", [&](auto tag) {
    using TO = typename decltype(tag)::type;
    auto* po = static_cast<TO*>(out);
    switch (v.format) {
      case QuantFormat::Int8:
        launch_dequant<QuantFormat::Int8>(v, po, s);
        return;
      case QuantFormat::Int8Asym:
        launch_dequant<QuantFormat::Int8Asym>(v, po, s);
        return;
      case QuantFormat::Int4:
        launch_dequant<QuantFormat::Int4>(v, po, s);
        return;
      case QuantFormat::Int4Sym:
        launch_dequant<QuantFormat::Int4Sym>(v, po, s);
        return;
      case QuantFormat::NF4:
        launch_dequant<QuantFormat::NF4>(v, po, s);
        return;
      case QuantFormat::None:
        break;
    }
    ZINC_THROW("cuda::dequantize: unknown quantization format " << static_cast<int>(v.format));
  });
}

}  // namespace zinc::runtime::cuda
