// Attention on the CPU over a KV cache in host memory (--kv-offload), and the CPU backend's
// attention over its own caches.
//
// When the KV cache lives in host memory, decode attention runs here, as in DeepSpeed's
// kv-offload fork and FlexGen: the step's queries come to the host, the outputs go back.
// Decode is a stream over the cache (each K and V row is used once per step), so the goal
// is the host's memory bandwidth: OpenMP over (sequence, kv head, query[, key chunk]) work
// items, AVX2 + FMA + F16C inner loops chosen at run time (a portable scalar path
// otherwise), and f16 / int8 / int4 rows read in place, a block of eight rows at a time,
// never converted to fp32 as a whole: each slice of a row is widened once in registers and
// used by every query head of its group (register-blocked over rows x heads). The CPU
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
// max/sum rescaling) in chunk order. The AVX2 and scalar paths may differ in the last bits.
//
// Quantized K: q.k' = sum over groups g of scale_g * (q . codes_g) + min_g * sum(q_g);
// quantized V: out = sum_j (p_j * scale_jg) * codes_j + sum_j p_j * min_jg. Both equal
// the attention over the dequantized rows up to fp32 rounding.
#pragma once

#include <cstdint>

#include "quant/kv_quant.hpp"

namespace zinc::runtime {

struct CpuAttentionProblem {
  int batch = 0;                        // B
  int tq = 0;                           // new tokens (queries) per sequence; 1 in decode
  int t0 = 0;                           // cache index of the first query; keys 0..t0+tq-1 exist
  int heads = 0;                        // H query heads
  int kv_heads = 0;                     // KVH; H % KVH == 0
  int head_dim = 0;                     // hd; must equal the views' head_dim
  const float* q = nullptr;             // [B * tq, H * hd] fp32
  float* out = nullptr;                 // [B * tq, H * hd] fp32 (must not alias q)
  const uint8_t* key_mask = nullptr;    // [B, mask_stride] U8, 1 = key j is a real token
  int64_t mask_stride = 0;              // >= t0 + tq (the cache's t_max)
  const float* alibi_slopes = nullptr;  // [H] fp32, or nullptr for no ALiBi
  float scale = 1.0f;                   // usually 1 / sqrt(hd)
};

// out = softmax(q k^T * scale + alibi) v over the views k and v (same head_dim; storages
// and strides may differ). Throws zinc::Error for inconsistent shapes or views.
void cpu_attention(const CpuAttentionProblem& p, const quant::KvView& k, const quant::KvView& v);

// "avx2" or "scalar": which inner loops a view of this storage / head_dim / group runs
// (avx2 needs the CPU's AVX2, FMA and F16C, head_dim % 16 == 0 and, quantized, G % 16 == 0).
const char* cpu_attention_isa(const quant::KvView& view);

}  // namespace zinc::runtime
