// LLaMA family (LlamaForCausalLM): RMSNorm, rotary positions (rope_theta), SwiGLU MLP,
// grouped-query attention, optional attention/MLP biases, optional tied embeddings.
//   h = embed(ids)
//   per layer: h += o_proj(attn(rope(q_proj(rms(h))), rope(k_proj(..)), v_proj(..)))
//              h += down(silu(gate(rms(h))) * up(rms(h)))
//   logits = lm_head(rms(h))          (lm_head = embed_tokens when tied)
#include "runtime/model/layers.hpp"

namespace zinc::runtime {
namespace {

struct LlamaLayer {
  Norm input_norm, post_attention_norm;
  AttentionWeights attn;
  Linear gate, up, down;
};

enum LlamaSlot { kHidden = kFamilySlots, kNormed, kBranch, kLast };

class Llama final : public Model {
 public:
  Llama(const ModelConfig& c, const partition::Checkpoint& ckpt, Backend& backend)
      : Model(c), backend_(backend), weights_(backend, ckpt), scratch_(backend) {
    const int64_t d = c.hidden_size, f = c.intermediate_size;
    const int64_t q_dim = static_cast<int64_t>(c.num_heads) * c.head_dim;
    const int64_t kv_dim = static_cast<int64_t>(c.num_kv_heads) * c.head_dim;
    embed_ = weights_.load("model.embed_tokens.weight", {c.vocab_size, d});
    for (int l = 0; l < c.num_layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      LlamaLayer L;
      L.input_norm = weights_.norm(p + "input_layernorm", d, true, false);
      L.post_attention_norm = weights_.norm(p + "post_attention_layernorm", d, true, false);
      L.attn.q = weights_.linear(p + "self_attn.q_proj", q_dim, d, c.attention_bias);
      L.attn.k = weights_.linear(p + "self_attn.k_proj", kv_dim, d, c.attention_bias);
      L.attn.v = weights_.linear(p + "self_attn.v_proj", kv_dim, d, c.attention_bias);
      L.attn.o = weights_.linear(p + "self_attn.o_proj", d, q_dim, c.attention_bias);
      L.gate = weights_.linear(p + "mlp.gate_proj", f, d, c.mlp_bias);
      L.up = weights_.linear(p + "mlp.up_proj", f, d, c.mlp_bias);
      L.down = weights_.linear(p + "mlp.down_proj", d, f, c.mlp_bias);
      layers_.push_back(L);
    }
    final_norm_ = weights_.norm("model.norm", d, true, false);
    lm_head_.w = c.tie_word_embeddings ? embed_ : weights_.load("lm_head.weight", {c.vocab_size, d});
    params_.heads = c.num_heads;
    params_.kv_heads = c.num_kv_heads;
    params_.head_dim = c.head_dim;
    params_.rope = true;
    params_.rope_theta = c.rope_theta;
  }

  size_t weight_bytes() const override { return weights_.bytes(); }

  void forward(const StepInputs& in, KvCache& kv, const Tensor& logits, bool all_positions) override {
    const ModelConfig& c = config_;
    const int64_t n = static_cast<int64_t>(in.batch) * in.tq, d = c.hidden_size;
    Tensor ids, positions;
    upload_step_inputs(backend_, in, scratch_, 0, &ids, &positions);
    Tensor h = scratch_.get(kHidden, n, d);
    Tensor x = scratch_.get(kNormed, n, d);
    Tensor branch = scratch_.get(kBranch, n, d);
    backend_.embedding(ids, embed_, h);
    for (int l = 0; l < c.num_layers; ++l) {
      const LlamaLayer& L = layers_[l];
      backend_.rms_norm(h, L.input_norm.w, c.rms_norm_eps, x);
      self_attention(backend_, L.attn, params_, x, positions, in, kv, l, scratch_, branch);
      backend_.add(h, branch, h);
      backend_.rms_norm(h, L.post_attention_norm.w, c.rms_norm_eps, x);
      gated_mlp(backend_, L.gate, L.up, L.down, x, scratch_, branch);
      backend_.add(h, branch, h);
    }
    Tensor rows = h;
    if (!all_positions) {
      rows = scratch_.get(kLast, in.batch, d);
      backend_.last_rows(h, in.batch, in.tq, rows);
    }
    Tensor normed = x.first_rows(rows.rows());
    backend_.rms_norm(rows, final_norm_.w, c.rms_norm_eps, normed);
    backend_.linear(normed, lm_head_.w, lm_head_.b, logits);
  }

 private:
  Backend& backend_;
  Weights weights_;
  Scratch scratch_;
  Tensor embed_;
  std::vector<LlamaLayer> layers_;
  Norm final_norm_;
  Linear lm_head_;
  AttentionParams params_;
};

}  // namespace

std::unique_ptr<Model> create_llama(const ModelConfig& config,
                                    const partition::Checkpoint& checkpoint, Backend& backend) {
  return std::make_unique<Llama>(config, checkpoint, backend);
}

}  // namespace zinc::runtime
