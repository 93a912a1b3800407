// attention.cu: Backend::attention on the GPU (kernels.hpp's `attention`): the argument
// checks and the choice of kernel. The kernels and their launchers are in
// attention_prefill.cu (the rows kernel) and attention_decode.cu (the decode kernel), their
// shared helpers in attention_common.cuh.
//
// Semantics (runtime/backend/backend.hpp, the CPU reference cpu_attention.cpp): query i of
// sequence b sits at cache index t0 + i and sees keys j <= t0 + i with
// key_mask[b * t_max + j] == 1; score = (q . k) * scale (+ slope[h] * p(b, j), p(b, j) =
// the number of real keys of b before j); softmax over the visible keys; a query that sees
// no key writes zeros; query head h reads kv head h / (H / KVH). Element type T (F32, F16,
// BF16) in memory, fp32 everywhere else. No [B, H, tq, T] buffer: both kernels run an
// online softmax (running max m, running sum l, fp32 accumulator) over key tiles.
//
// Two kernels, chosen by tq (both are correct for every shape; the choice is speed only):
// the rows kernel for tq >= kRowsMinTq (prefill: query blocks of 32 or 64 rows, K/V tiles
// staged in shared memory as fp32), the decode kernel below it (flash-decoding: a block per
// query row and kv head, GQA heads sharing each K/V load, keys split over a thread-block
// cluster when the blocks leave SMs idle). Each kernel's file describes it in full.
//
// Keys that are masked out (or beyond the causal end) are never loaded: their K/V rows
// are zeros in shared memory / registers, so uninitialised cache rows (even NaN bits)
// cannot leak into the output.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "runtime/backend/cuda/attention_common.cuh"
#include "runtime/backend/cuda/kernels.hpp"
#include "runtime/common/error.hpp"

namespace zinc::runtime::cuda {
namespace {

template <typename T>
void attention_typed(const void* q, const void* k_cache, const void* v_cache, const uint8_t* key_mask,
                     const float* alibi_slopes, const AttentionShape& sh, float scale, void* out,
                     cudaStream_t s) {
  const T* qt = static_cast<const T*>(q);
  const T* kt = static_cast<const T*>(k_cache);
  const T* vt = static_cast<const T*>(v_cache);
  T* ot = static_cast<T*>(out);
  const bool aligned = aligned16(q) && aligned16(k_cache) && aligned16(v_cache);
  if (sh.tq < attn::kRowsMinTq)
    attn::launch_decode<T>(qt, kt, vt, key_mask, alibi_slopes, sh, scale, ot, aligned, s);
  else
    attn::launch_prefill<T>(qt, kt, vt, key_mask, alibi_slopes, sh, scale, ot, aligned, s);
}

}  // namespace

void attention(quant::DType t, const void* q, const void* k_cache, const void* v_cache, const uint8_t* key_mask,
               const float* alibi_slopes, const AttentionShape& sh, float scale, void* out, cudaStream_t s) {
  ZINC_CHECK(sh.batch >= 0 && sh.tq >= 0 && sh.t0 >= 0 && sh.heads > 0 && sh.kv_heads > 0 && sh.head_dim > 0,
             "attention: bad shape (batch " << sh.batch << ", tq " << sh.tq << ", t0 " << sh.t0 << ", heads "
                                            << sh.heads << ", kv_heads " << sh.kv_heads << ", head_dim "
                                            << sh.head_dim << ")");
  ZINC_CHECK(sh.heads % sh.kv_heads == 0,
             "attention: " << sh.heads << " query heads are not a multiple of " << sh.kv_heads << " kv heads");
  ZINC_CHECK(sh.head_dim <= 256, "attention: head_dim " << sh.head_dim << " > 256 is not supported");
  ZINC_CHECK(sh.t0 + sh.tq <= sh.t_max,
             "attention: keys 0.." << sh.t0 + sh.tq - 1 << " exceed the cache (t_max " << sh.t_max << ")");
  ZINC_CHECK(sh.heads <= 65535 && sh.batch <= 65535, "attention: heads / batch beyond the grid limits");
  if (sh.batch == 0 || sh.tq == 0) return;
  ZINC_CHECK(q != nullptr && k_cache != nullptr && v_cache != nullptr && key_mask != nullptr && out != nullptr,
             "attention: q, caches, key_mask and out must not be null");
  switch (t) {
    case quant::DType::F32:
      attention_typed<float>(q, k_cache, v_cache, key_mask, alibi_slopes, sh, scale, out, s);
      break;
    case quant::DType::F16:
      attention_typed<__half>(q, k_cache, v_cache, key_mask, alibi_slopes, sh, scale, out, s);
      break;
    case quant::DType::BF16:
      attention_typed<__nv_bfloat16>(q, k_cache, v_cache, key_mask, alibi_slopes, sh, scale, out, s);
      break;
    default:
      ZINC_THROW("attention: element type " << quant::dtype_name(t) << " is not F32, F16 or BF16");
  }
}

}  // namespace zinc::runtime::cuda
