// Pieces shared by the model families: a scratch arena for activations, self-attention
// with a KV cache (optionally rotary), and the two MLP forms (gated SwiGLU, plain act).
// Each family file (llama.cpp, opt.cpp) composes these; none of them loops over elements.
#pragma once

#include <vector>

#include "runtime/backend/backend.hpp"
#include "runtime/model/kv_cache.hpp"
#include "runtime/model/model.hpp"
#include "runtime/model/weight_provider.hpp"

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

// Activation buffers reused across steps, one per slot, grown on demand (so decode
// steps allocate nothing once prefill has sized them).
class Scratch {
 public:
  explicit Scratch(Backend& backend) : backend_(backend) {}
  // A [rows, cols] tensor of the compute dtype (or `type`) in slot `slot`.
  Tensor get(int slot, int64_t rows, int64_t cols);
  Tensor get(int slot, int64_t rows, int64_t cols, quant::DType type);

 private:
  Backend& backend_;
  std::vector<DeviceBuffer> slots_;
};

// An upper bound of the activation memory one step of B sequences x T new tokens takes on
// the backend (every Scratch slot at its largest, the ids and positions, the logits of
// the last rows): the placement planner's working set.
size_t activation_bytes(const ModelConfig& c, int batch, int tokens, quant::DType t);

// Scratch slots used by the shared layers; families use slots from kFamilySlots on.
enum ScratchSlot {
  kSlotQ = 0, kSlotK, kSlotV, kSlotAttn, kSlotMlpA, kSlotMlpB, kSlotIds, kSlotPositions,
  kSlotQkv, kFamilySlots
};

struct AttentionWeights {
  Linear q, k, v, o;
  Linear qkv;  // fused, per head [q k v] (BLOOM); when set, q/k/v are unused
};

struct AttentionParams {
  int heads = 0, kv_heads = 0, head_dim = 0;
  bool rope = false;
  float rope_theta = 10000.0f;
  Tensor alibi_slopes;  // F32 [heads] for ALiBi (BLOOM), else empty
  std::vector<float> host_alibi_slopes;  // the same on the host (the --kv-offload path)
};

// Uploads the step's token ids and positions (host) into I32 device tensors [B*tq].
void upload_step_inputs(Backend& backend, const StepInputs& in, Scratch& scratch,
                        int32_t position_offset, Tensor* ids, Tensor* positions);

// out = o_proj(attention(q_proj(x), cache)); x, out [n, D]; writes this step's K/V.
void self_attention(Backend& backend, const AttentionWeights& w, const AttentionParams& p,
                    const Tensor& x, const Tensor& positions, const StepInputs& in,
                    KvCache& kv, int layer, Scratch& scratch, const Tensor& out);

// The --kv-offload path of self_attention: the step's K/V rows into the host cache (in
// its storage), the queries to the host, offload/cpu_attention there, the output back.
void host_attention(Backend& backend, const AttentionParams& p, const Tensor& q, const Tensor& k,
                    const Tensor& v, const AttentionShape& s, float scale, KvCache& kv, int layer,
                    const Tensor& attn);

// out = down(silu(gate(x)) * up(x))  (LLaMA's SwiGLU)
void gated_mlp(Backend& backend, const Linear& gate, const Linear& up, const Linear& down,
               const Tensor& x, Scratch& scratch, const Tensor& out);

// The rows the head needs: all of h [B*tq, D], or each sequence's last new row [B, D]
// (into scratch slot `slot`).
Tensor head_rows(Backend& backend, Scratch& scratch, int slot, const Tensor& h,
                 const StepInputs& in, bool all_positions);

// logits = x @ lm_head^T, where lm_head is `lm_head.weight` of the head blob or, with tied
// embeddings, `embed_name` of the embedding blob (acquired and released here).
void vocab_projection(Backend& backend, WeightProvider& weights, const ModelConfig& c,
                      const ParamTable& head, const std::string& embed_name, const Tensor& x,
                      const Tensor& logits);

// out = fc2(act(fc1(x)))  (OPT, GPT-style)
void plain_mlp(Backend& backend, const Linear& fc1, const Linear& fc2, Activation act,
               const Tensor& x, Scratch& scratch, const Tensor& out);

}  // namespace zinc::runtime
