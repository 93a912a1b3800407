// The backend/cpu/cpu_attention problem of one Backend::attention call: the shared geometry
// (AttentionShape), the softmax scale and the host pointers. Used by the CPU backend's
// attention and by the --kv-offload path (runtime/backend/kv_cache.cpp), which run the same
// kernel over different cache layouts.
#pragma once

#include "runtime/backend/cpu/cpu_attention.hpp"
#include "runtime/backend/backend.hpp"

namespace zinc::runtime {

inline runtime::CpuAttentionProblem cpu_attention_problem(const AttentionShape& s, float scale,
                                                          const void* q, void* out,
                                                          const uint8_t* key_mask,
                                                          const float* alibi_slopes,
                                                          quant::DType io_dtype = quant::DType::F32) {
  runtime::CpuAttentionProblem p;
  p.batch = s.batch;
  p.tq = s.tq;
  p.t0 = s.t0;
  p.heads = s.heads;
  p.kv_heads = s.kv_heads;
  p.head_dim = s.head_dim;
  p.q = q;
  p.out = out;
  p.io_dtype = io_dtype;
  p.key_mask = key_mask;
  p.mask_stride = s.t_max;
  p.alibi_slopes = alibi_slopes;
  p.scale = scale;
  return p;
}

}  // namespace zinc::runtime
