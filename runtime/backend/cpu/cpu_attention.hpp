// Attention on the CPU over a KV cache in host memory (--kv-offload), and the CPU backend's
// attention over its own caches.
//
// When the KV cache lives in host memory, decode attention runs here, as in DeepSpeed's
// kv-offload fork and FlexGen: the step's queries come to the host, the outputs go back.
// Decode is a stream over the cache (each K and V row is used once per step), so the goal
// is the host's memory bandwidth: OpenMP over (sequence, kv head, query[, key chunk]) work
// items, inner loops chosen at run time (AVX-512, with VNNI dot products for int8 / int4
// keys, then AVX2 + FMA + F16C, then a portable scalar path), and f16 / int8 / int4 rows
// read in place, a block of rows at a time, never converted to fp32 as a whole: each slice
// of a row is widened once in registers and used by every query head of its group
// (register-blocked over rows x heads). The CPU
// backend's attention is this same kernel over f32 views of its [B, t_max, KVH, hd] caches.
//
// Semantics are exactly Backend::attention's (runtime/backend/backend.hpp): query i of
// sequence b sits at cache index t0 + i and sees keys j <= t0 + i with
// key_mask[b * mask_stride + j] = 1; scores are q.k * scale (+ alibi_slopes[h] * the number
// of real keys of b before j); a query that sees no key outputs zeros; query head h uses
// kv head h / (H / KVH). Every K and V row is read once per (query, kv head) and used for
// all H / KVH query heads that share it.
//
// Determinism: the result depends on the shapes and the data only, never on the thread
// count. Each work item is computed by one thread in a fixed order; when there are too few
// (sequence, kv head, query) items to fill the cores, the keys are split into chunks whose
// number comes from the shapes alone, and the chunks are merged (flash-decoding's
// max/sum rescaling) in chunk order. The instruction sets may differ in the last bits.
//
// Quantized K: q.k' = sum over groups g of scale_g * (q . codes_g) + min_g * sum(q_g);
// quantized V: out = sum_j (p_j * scale_jg) * codes_j + sum_j p_j * min_jg. Both equal
// the attention over the dequantized rows up to fp32 rounding, except on the avx512-vnni
// rung: int8 / int4 keys score q' . k', q' = q rounded to a fixed-point grid per query head
// (16 bits for int8 keys, 8 bits for int4; cpu_attention_avx512_vnni.cpp), and int4 values
// (avx512-bf16, where the CPU has AVX512_BF16) take the weights p_j * scale_jg rounded to
// bf16 (cpu_attention_avx512_bf16.cpp). Each adds about 1/1000 (int8 keys: far less) of
// the variance that the storage's own rounding puts into the outputs.
#pragma once

#include <cstdint>
#include <string>

#include "quant/kv_quant.hpp"

namespace zinc::runtime {

// Which inner loops run: the most capable that the CPU and the views allow, up to a cap.
// Auto = no cap. Avx512Vnni: integer dot products for int8 / int4 keys, bf16 ones for int4
// values (everything else runs the avx512 loops under it). Each rung falls back to the next
// below it when the CPU or the shape does not allow it (conditions: cpu_attention_isa).
enum class CpuAttentionIsa { Scalar, Avx2, Avx512, Avx512Vnni, Auto };

// "auto", "avx512-vnni", "avx512", "avx2", "scalar"; parse throws zinc::Error listing them.
CpuAttentionIsa parse_cpu_attention_isa(const std::string& name);
const char* cpu_attention_isa_name(CpuAttentionIsa isa);

struct CpuAttentionProblem {
  int batch = 0;                        // B
  int tq = 0;                           // new tokens (queries) per sequence; 1 in decode
  int t0 = 0;                           // cache index of the first query; keys 0..t0+tq-1 exist
  int heads = 0;                        // H query heads
  int kv_heads = 0;                     // KVH; H % KVH == 0
  int head_dim = 0;                     // hd; must equal the views' head_dim
  const void* q = nullptr;              // [B * tq, H * hd] of io_dtype
  void* out = nullptr;                  // [B * tq, H * hd] of io_dtype (must not alias q)
  // F32, F16 or BF16: q is widened exactly as an item reads its heads and out is rounded
  // (nearest even) as it is written, so F16 gives the F32 result converted, bit for bit;
  // the host KV path reads and writes the GPU's compute dtype with no conversion pass.
  quant::DType io_dtype = quant::DType::F32;
  const uint8_t* key_mask = nullptr;    // [B, mask_stride] U8, 1 = key j is a real token
  int64_t mask_stride = 0;              // >= t0 + tq (the cache's t_max)
  const float* alibi_slopes = nullptr;  // [H] fp32, or nullptr for no ALiBi
  float scale = 1.0f;                   // usually 1 / sqrt(hd)
  CpuAttentionIsa isa = CpuAttentionIsa::Auto;  // cap on the inner loops (tests, attnbench)
};

// out = softmax(q k^T * scale + alibi) v over the views k and v (same head_dim; storages
// and strides may differ). Throws zinc::Error for inconsistent shapes or views.
void cpu_attention(const CpuAttentionProblem& p, const quant::KvView& k, const quant::KvView& v);

// "avx512-vnni", "avx512-bf16", "avx512", "avx2" or "scalar": which inner loops a view of
// this storage / head_dim / group runs as the keys (keys = true) or the values, under the
// cap `isa`. avx512-vnni: keys, int8 / int4, the CPU's AVX512_VNNI, G <= 256, head_dim %
// 32 == 0 (int8) or % 64 == 0 (int4) and the avx512 conditions; avx512-bf16: int4 values
// under the avx512-vnni cap, the CPU's AVX512_BF16 and the avx512 conditions;
// avx512: the CPU's AVX-512 F, BW, VL and DQ, head_dim % 32 == 0 and, quantized,
// G % 32 == 0; avx2: the CPU's AVX2, FMA and F16C, head_dim % 16 == 0 and, quantized,
// G % 16 == 0.
const char* cpu_attention_isa(const quant::KvView& view,
                              CpuAttentionIsa isa = CpuAttentionIsa::Auto, bool keys = true);

// One query head q[hd] as the avx512-vnni loops see it for keys of storage s (int8 /
// int4): rounded to their fixed-point grid (cpu_attention_avx512_vnni.cpp). Attention with
// these keys equals, up to fp32 rounding, the attention whose K scores use this q (the
// softmax and V keep the exact inputs). For tests and error analysis.
void cpu_attention_vnni_query(quant::KvStorage s, int hd, const float* q, float* out);

}  // namespace zinc::runtime
