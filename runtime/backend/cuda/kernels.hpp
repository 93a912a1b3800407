// The CUDA kernels' launchers: one function per op, called by the CUDA backend
// (cuda_backend.cpp) and nothing else. Kernels never orchestrate; these functions take
// device pointers, sizes, the element type and the stream, pick the kernel variant for
// the type, launch, and check cudaGetLastError() (ZINC_CUDA_LAUNCH_CHECK).
//
// Element types: activations, weights and logits are `t` = F32, F16 or BF16 (the compute
// dtype); accumulation, norms, softmax and every reduction run in fp32. I32 ids and
// positions, U8 key masks and F32 ALiBi slopes as named. Row-major throughout.
// The semantics of each op are Backend's (runtime/backend/backend.hpp); the CPU backend is
// the reference the op table test (tests/unit/test_ops_*.cpp over backend_ops_harness.hpp) compares against.
//
// Files, one per op family: elementwise.cu (add, bias, activations, silu_mul, embedding,
// split_qkv, last_rows, kv_write, convert), norms.cu, rope.cu, attention.cu (the launcher;
// attention_prefill.cu (the SIMT rows kernel), attention_prefill_mma.cu (the tensor-core
// prefill kernel, F16/BF16) and attention_decode.cu hold the three kernels),
// dequantize.cu, sampling.cu.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "quant/dtype.hpp"
#include "quant/quant_view.hpp"
#include "runtime/backend/activation.hpp"
#include "runtime/backend/attention_shape.hpp"
#include "runtime/backend/cuda/cuda_check.hpp"
#include "runtime/backend/sampling.hpp"

// After every launch: the launch's own error (bad configuration), named with the kernel.
#define ZINC_CUDA_LAUNCH_CHECK(what)                                                          \
  do {                                                                                        \
    const cudaError_t zinc_launch_rc_ = cudaGetLastError();                                   \
    if (zinc_launch_rc_ != cudaSuccess)                                                       \
      ZINC_THROW("CUDA launch of " #what " failed: " << cudaGetErrorName(zinc_launch_rc_) \
                                   << ": " << cudaGetErrorString(zinc_launch_rc_));             \
  } while (0)

namespace zinc::runtime::cuda {

// ---- elementwise.cu ----
// out[i] = a[i] + b[i], i < count (out may alias a or b)
void add(quant::DType t, const void* a, const void* b, void* out, int64_t count, cudaStream_t s);
// x[r, c] += bias[c]; x [rows, cols]
void add_bias(quant::DType t, void* x, const void* bias, int64_t rows, int64_t cols, cudaStream_t s);
// x[i] = act(x[i]) in place (GeluTanh: BLOOM's formula; Gelu: exact erf)
void activation(quant::DType t, void* x, int64_t count, Activation act, cudaStream_t s);
// out[i] = silu(gate[i]) * up[i] (out may alias gate or up)
void silu_mul(quant::DType t, const void* gate, const void* up, void* out, int64_t count, cudaStream_t s);
// out[i, :] = table[ids[i], :]; table [V, d]; out [n, d]
void embedding(quant::DType t, const int32_t* ids, const void* table, int64_t n, int64_t d, void* out,
               cudaStream_t s);
// qkv [n, H*3*hd] per head [q k v] -> q, k, v [n, H*hd]
void split_qkv(quant::DType t, const void* qkv, int64_t n, int heads, int head_dim, void* q, void* k, void* v,
               cudaStream_t s);
// out[b, :] = x[b*tq + tq-1, :]; x [B*tq, d]; out [B, d]
void last_rows(quant::DType t, const void* x, int batch, int tq, int64_t d, void* out, cudaStream_t s);
// src [B*tq, KVH*hd] -> cache [B, t_max, KVH, hd] at positions t0 .. t0+tq-1
void kv_write(quant::DType t, const void* src, void* cache, const AttentionShape& sh, cudaStream_t s);
// dst[i] = src[i] converted (F32/F16/BF16 each way; round to nearest even)
void convert(quant::DType src_t, const void* src, quant::DType dst_t, void* dst, int64_t count, cudaStream_t s);

// ---- norms.cu ---- (one row per block, fp32 statistics)
// out = x * rsqrt(mean(x^2) + eps) * w; x, out [n, d]; w [d]
void rms_norm(quant::DType t, const void* x, const void* w, float eps, int64_t n, int64_t d, void* out,
              cudaStream_t s);
// out = (x - mean) / sqrt(var + eps) * w + b; w, b may be null (no affine)
void layer_norm(quant::DType t, const void* x, const void* w, const void* b, float eps, int64_t n, int64_t d,
                void* out, cudaStream_t s);

// ---- rope.cu ----
// Rotate-half rotary embedding in place; x [n, heads, hd]; positions [n];
// inv_freq[i] = 1 / theta^(2i/hd) in fp32, as transformers' LLaMA.
void rope(quant::DType t, void* x, const int32_t* positions, int64_t n, int heads, int head_dim, float theta,
          cudaStream_t s);

// ---- attention.cu ----
// Backend::attention: causal, key mask, GQA/MQA, optional ALiBi (slopes F32 [H] or null),
// over caches [B, t_max, KVH, hd]; q, out [B*tq, H*hd]. Memory bounded by tiles (online
// softmax over key blocks): no [B, H, T, T] buffer; head_dim <= 256.
// The kernel is chosen by tq, type, head_dim and alignment (attention.cu).
void attention(quant::DType t, const void* q, const void* k_cache, const void* v_cache, const uint8_t* key_mask,
               const float* alibi_slopes, const AttentionShape& sh, float scale, void* out, cudaStream_t s);
// The same op on the SIMT rows kernel whatever the shape (the reference the tensor-core
// prefill kernel is measured and compared against: `zinc devbench`).
void attention_prefill_reference(quant::DType t, const void* q, const void* k_cache, const void* v_cache,
                                 const uint8_t* key_mask, const float* alibi_slopes, const AttentionShape& sh,
                                 float scale, void* out, cudaStream_t s);
// The kernel `attention` runs for these arguments: "decode", "mma" (tensor cores) or "rows".
const char* attention_kernel_name(quant::DType t, const AttentionShape& sh, const void* q, const void* k_cache,
                                  const void* v_cache, const void* out);

// ---- dequantize.cu ----
// out[numel] (out_t: F32/F16/BF16) = the view's values: one kernel per stored format
// (int8, int8-asym, int4, int4-sym, nf4; raw F32/F16/BF16 converted). The fp32 value is
// exactly quant::dequantize's (same operations), then rounded to out_t.
void dequantize(const quant::QuantView& v, quant::DType out_t, void* out, cudaStream_t s);

// ---- sampling.cu ----
// Device scratch the sample launcher needs for `rows` x `vocab` logits (bytes).
size_t sample_workspace_bytes(int rows, int vocab);
// ids[r] = the token of logits row r [rows, vocab] (type t): argmax (lowest index on ties)
// when temperature <= 0, else temperature -> top-k -> top-p -> draw with
// u = sequence_uniform(keys[r], counter) (runtime/backend/sampling.hpp's semantics).
void sample(quant::DType t, const void* logits, int rows, int vocab, float temperature, int top_k, float top_p,
            const int64_t* keys, uint64_t counter, int32_t* ids, void* workspace, size_t workspace_bytes,
            cudaStream_t s);

}  // namespace zinc::runtime::cuda
