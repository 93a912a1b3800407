// Geometry of one attention call over a KV cache laid out [B, t_max, KVH, hd] (a plain
// struct, shared by the backends' host code and the CUDA kernels).
#pragma once

namespace zinc::runtime {

struct AttentionShape {
  int batch = 0;        // B
  int tq = 0;           // new tokens per sequence in this step
  int t0 = 0;           // cache index of the first new token; keys 0 .. t0+tq-1 exist
  int t_max = 0;        // cache capacity per sequence
  int heads = 0;        // H query heads
  int kv_heads = 0;     // KVH (H % KVH == 0: grouped-query attention)
  int head_dim = 0;     // hd
};

}  // namespace zinc::runtime
