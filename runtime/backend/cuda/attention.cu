// attention.cu: Backend::attention on the GPU (kernels.hpp's `attention`): the argument
// checks and the choice of kernel; also kernels.hpp's attention_prefill_reference (the same
// op on the rows kernel, whatever the shape) and attention_kernel_name. The kernels and
// their launchers are in attention_prefill.cu (the rows kernel), attention_prefill_mma.cu
// (the tensor-core prefill kernel) and attention_decode.cu (the decode kernel), their
// shared helpers in attention_common.cuh.
//
// Semantics (runtime/backend/backend.hpp, the CPU reference cpu_attention.cpp): query i of
// sequence b sits at cache index t0 + i and sees keys j <= t0 + i with
// key_mask[b * t_max + j] == 1; score = (q . k) * scale (+ slope[h] * p(b, j), p(b, j) =
// the number of real keys of b before j); softmax over the visible keys; a query that sees
// no key writes zeros; query head h reads kv head h / (H / KVH). Element type T (F32, F16,
// BF16) in memory, fp32 everywhere else (but P, the softmax weights, which the tensor-core
// kernel rounds to T for its P V product). No [B, H, tq, T] buffer: every kernel runs an
// online softmax (running max m, running sum l, fp32 accumulator) over key tiles.
//
// Three kernels, chosen by tq, type, head_dim and alignment (all are correct for the shapes
// they take; the choice is speed only):
//   - tq < kRowsMinTq: the decode kernel (flash-decoding: a block per query row and kv
//     head, GQA heads sharing each K/V load, keys split over a thread-block cluster when
//     the blocks leave SMs idle);
//   - else, F16 / BF16 with head_dim 64 or 128 and q, k, v, out 16-byte aligned
//     (attn::prefill_mma_fits): the tensor-core kernel (FlashAttention-2 on mma.sync
//     m16n8k16: 64 query rows x 64-key tiles, K/V double-buffered by cp.async);
//   - else (F32, other head_dims, unaligned): the rows kernel (query blocks of 32 or 64
//     rows, K/V tiles staged in shared memory as fp32, SIMT fp32 arithmetic).
// Each kernel's file describes it in full.
//
// Keys that are masked out (or beyond the causal end) are never loaded: their K/V rows
// are zeros in shared memory / registers, so uninitialised cache rows (even NaN bits)
// cannot leak into the output.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "runtime/backend/cuda/attention_common.cuh"
#include "runtime/backend/cuda/kernels.hpp"
#include "runtime/common/error.hpp"

namespace zinc::runtime::cuda {
namespace {

enum class Pick { Auto, Rows };  // Rows: attention_prefill_reference
enum class Kernel { Decode, Mma, Rows };

template <typename T>
Kernel kernel_for(Pick pick, const AttentionShape& sh, bool aligned, bool out_aligned) {
  if (pick == Pick::Rows) return Kernel::Rows;
  if (sh.tq < attn::kRowsMinTq) return Kernel::Decode;
  if (!std::is_same_v<T, float> && attn::prefill_mma_fits(sh, aligned && out_aligned)) return Kernel::Mma;
  return Kernel::Rows;
}

const char* kernel_name(Kernel k) { return k == Kernel::Decode ? "decode" : k == Kernel::Mma ? "mma" : "rows"; }

template <typename T>
void attention_typed(Pick pick, const void* q, const void* k_cache, const void* v_cache, const uint8_t* key_mask,
                     const float* alibi_slopes, const AttentionShape& sh, float scale, void* out, cudaStream_t s) {
  const T* qt = static_cast<const T*>(q);
  const T* kt = static_cast<const T*>(k_cache);
  const T* vt = static_cast<const T*>(v_cache);
  T* ot = static_cast<T*>(out);
  const bool aligned = aligned16(q) && aligned16(k_cache) && aligned16(v_cache);
  const Kernel kernel = kernel_for<T>(pick, sh, aligned, aligned16(out));
  if (kernel == Kernel::Decode) {
    attn::launch_decode<T>(qt, kt, vt, key_mask, alibi_slopes, sh, scale, ot, aligned, s);
  } else if (kernel == Kernel::Mma) {
    if constexpr (!std::is_same_v<T, float>)
      attn::launch_prefill_mma<T>(qt, kt, vt, key_mask, alibi_slopes, sh, scale, ot, s);
  } else {
    attn::launch_prefill<T>(qt, kt, vt, key_mask, alibi_slopes, sh, scale, ot, aligned, s);
  }
}

void check_shape(const AttentionShape& sh) {
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
}

void attention_picked(Pick pick, quant::DType t, const void* q, const void* k_cache, const void* v_cache,
                      const uint8_t* key_mask, const float* alibi_slopes, const AttentionShape& sh, float scale,
                      void* out, cudaStream_t s) {
  check_shape(sh);
  if (sh.batch == 0 || sh.tq == 0) return;
  ZINC_CHECK(q != nullptr && k_cache != nullptr && v_cache != nullptr && key_mask != nullptr && out != nullptr,
             "attention: q, caches, key_mask and out must not be null");
  dispatch_float_type(t, "attention", [&](auto tag) {
    using T = typename decltype(tag)::type;
    attention_typed<T>(pick, q, k_cache, v_cache, key_mask, alibi_slopes, sh, scale, out, s);
  });
}

}  // namespace

void attention(quant::DType t, const void* q, const void* k_cache, const void* v_cache, const uint8_t* key_mask,
               const float* alibi_slopes, const AttentionShape& sh, float scale, void* out, cudaStream_t s) {
  attention_picked(Pick::Auto, t, q, k_cache, v_cache, key_mask, alibi_slopes, sh, scale, out, s);
}

void attention_prefill_reference(quant::DType t, const void* q, const void* k_cache, const void* v_cache,
                                 const uint8_t* key_mask, const float* alibi_slopes, const AttentionShape& sh,
                                 float scale, void* out, cudaStream_t s) {
  attention_picked(Pick::Rows, t, q, k_cache, v_cache, key_mask, alibi_slopes, sh, scale, out, s);
}

const char* attention_kernel_name(quant::DType t, const AttentionShape& sh, const void* q, const void* k_cache,
                                  const void* v_cache, const void* out) {
  const bool aligned = aligned16(q) && aligned16(k_cache) && aligned16(v_cache);
  const char* name = nullptr;
  dispatch_float_type(t, "attention", [&](auto tag) {
    using T = typename decltype(tag)::type;
    name = kernel_name(kernel_for<T>(Pick::Auto, sh, aligned, aligned16(out)));
  });
  return name;
}

}  // namespace zinc::runtime::cuda
