// Pieces shared by the model families: blob-plan building blocks, self-attention with a
// KV cache (optionally rotary), and the two MLP forms (gated SwiGLU, plain act). The
// family files (llama.cpp, opt.cpp, bloom.cpp) compose these in the decoder skeleton's
// hooks (decoder.hpp); none of them loops over elements. Every op is queued on the
// given stream.
#pragma once

#include <string>

#include "runtime/backend/backend.hpp"
#include "runtime/backend/kv_cache.hpp"
#include "runtime/model/model.hpp"
#include "runtime/model/weight_provider.hpp"
#include "runtime/model/workspace.hpp"

namespace zinc::runtime {

struct Linear {  // y = x w^T + b
  Tensor w;      // [out, in]
  Tensor b;      // [out], or empty
};

// prefix.weight (+ prefix.bias when `bias`) from a blob's table.
Linear bind_linear(const ParamTable& t, const std::string& prefix, bool bias);

// Blob-plan building blocks for the family files.
partition::ParamSpec matrix_param(const std::string& name, int64_t rows, int64_t cols);  // quantizable
partition::ParamSpec vector_param(const std::string& name, int64_t n);                   // kept raw
void add_linear(BlobPlan& b, const std::string& prefix, int64_t out, int64_t in, bool bias);
std::string layer_name(int layer);  // "layer.0007"

struct AttentionWeights {
  Linear q, k, v, o;
  Linear qkv;  // fused, per head [q k v] (BLOOM); when set, q/k/v are unused
};

struct AttentionParams {
  int heads = 0, kv_heads = 0, head_dim = 0;
  bool rope = false;
  float rope_theta = 10000.0f;
  AttentionBias bias;  // ALiBi slopes (BLOOM), else none
};

// out = o_proj(attention(q_proj(x), cache)); x, out [n, D]; writes this step's K/V into
// the cache wherever it lives (KvCache::attend).
void self_attention(Backend& backend, const Stream& s, const AttentionWeights& w, const AttentionParams& p,
                    const Tensor& x, const Tensor& positions, const StepInputs& in, KvCache& kv, int layer,
                    const Workspace& ws, const Tensor& out);

// out = down(silu(gate(x)) * up(x))  (LLaMA's SwiGLU)
void gated_mlp(Backend& backend, const Stream& s, const Linear& gate, const Linear& up, const Linear& down,
               const Tensor& x, const Workspace& ws, const Tensor& out);

// out = fc2(act(fc1(x)))  (OPT, BLOOM)
void plain_mlp(Backend& backend, const Stream& s, const Linear& fc1, const Linear& fc2, Activation act,
               const Tensor& x, const Workspace& ws, const Tensor& out);

}  // namespace zinc::runtime
