// Internal to cpu_attention: the inner loops, one set per storage and instruction set
// (cpu_attention_scalar.cpp; cpu_attention_avx2.cpp with cpu_attention_avx2_blocked.cpp and
// the shared cpu_attention_avx2.hpp; cpu_attention_avx512*.cpp with cpu_attention_avx512.hpp;
// the ISA-free row bookkeeping of both in cpu_attention_rows.hpp). The driver
// (cpu_attention.cpp) owns the work split, the visible-key lists, ALiBi, the softmax
// bookkeeping and the merge; these only stream rows.
//
// "Kernel order": the order in which a kernel keeps head_dim elements in q and in the V
// accumulator. It is the natural order except for int4 with nibble_block = B (16 for AVX2,
// 32 for AVX-512), where each B-element block is [elements 0, 2, ..., B - 2, then 1, 3,
// ..., B - 1]: one B/2-byte load widened to 32-bit lanes gives the low nibbles (even
// elements) and high nibbles (odd elements) as two vectors with one AND and one shift.
#pragma once

#include <cstdint>

#include "quant/kv_quant.hpp"
#include "runtime/backend/cpu/cpu_attention.hpp"

namespace zinc::runtime::detail {

// scores[g * stride + t] = q_g . k'(rows[t]) (no scale), for g < group, t < n; a kernel may
// also write t in [n, n rounded up to 16), so stride must be at least that.
// q [group, hd] kernel order; qsum [group, hd / G]: sums of q_g over each quant group
// (quantized storages, where uses_qsum: the fp32 AVX2 / AVX-512 loops' min term). tmp:
// kernel_tmp_floats floats.
using KScoresFn = void (*)(const quant::KvView& k, const int64_t* rows, int n, const float* q,
                           const float* qsum, int group, float* scores, int stride, float* tmp);
// acc[g * hd + d] += sum_t p[g * stride + t] * (codes or values of rows[t])[d] (kernel
// order), and for quantized storages either the scales go into the weights and
// msum[g * (hd / G) + c] += sum_t p * min_tc (AVX2), or the rows are dequantized (scalar).
// The caller adds msum to every element of group c.
using VAccumulateFn = void (*)(const quant::KvView& v, const int64_t* rows, int n, const float* p,
                               int stride, int group, float* acc, float* msum, float* tmp);
// Scores to softmax weights, in place: x[t] = x[t] * scale + slope * pos[t] (pos may be
// null when slope == 0), *max_out = their maximum, then x[t] = exp(x[t] - max); returns the
// sum of the weights in a fixed order. n >= 1.
using SoftmaxFn = float (*)(float* x, const float* pos, int n, float scale, float slope,
                            float* max_out);

struct AttentionKernels {
  KScoresFn k_scores = nullptr;
  VAccumulateFn v_accumulate = nullptr;
  SoftmaxFn softmax = nullptr;
  int nibble_block = 0;  // 0: natural kernel order; 16 / 32: int4's split order (see above)
  bool uses_qsum = false;  // k_scores reads qsum (else the driver need not fill it)
  const char* isa = "";
};

// Scratch floats a kernel may use through `tmp`, for `group` query heads per kv head (the
// AVX-512 kernels align it to 64 bytes themselves: the + 16).
inline int64_t kernel_tmp_floats(int head_dim, int group) {
  return 10 * static_cast<int64_t>(head_dim) + 64 + 16 +
         16 * (head_dim / 16 + 1) * (static_cast<int64_t>(group) + 1);
}

// The most capable inner loops at or below `cap` that the CPU and the view allow, for the
// keys (keys = true) or the values (cpu_attention_isa.cpp).
AttentionKernels kernels_for(const quant::KvView& v, CpuAttentionIsa cap, bool keys);

AttentionKernels scalar_attention_kernels(quant::KvStorage s);

bool cpu_has_avx2_fma_f16c();
AttentionKernels avx2_attention_kernels(quant::KvStorage s);

// AVX-512 F/BW/VL/DQ (+ FMA, F16C): needs head_dim % 32 == 0 and, quantized, G % 32 == 0.
bool cpu_has_avx512();
AttentionKernels avx512_attention_kernels(quant::KvStorage s);
// AVX-512 VNNI dot products for K (int8 / int4; V and the rest as avx512_attention_kernels):
// needs cpu_has_avx512(), the CPU's AVX512_VNNI and avx512_vnni_fits(view).
bool cpu_has_avx512_vnni();
bool avx512_vnni_fits(const quant::KvView& k);
AttentionKernels avx512_vnni_k_kernels(quant::KvStorage s);
void vnni_query(quant::KvStorage s, int hd, const float* q, float* out);  // see cpu_attention.hpp
// AVX512_BF16 dot products for int4 values (the rest as avx512_attention_kernels): needs
// cpu_has_avx512(), the CPU's AVX512_BF16 and the avx512 conditions.
bool cpu_has_avx512_bf16();
AttentionKernels avx512_bf16_v_kernels(quant::KvStorage s);

}  // namespace zinc::runtime::detail
