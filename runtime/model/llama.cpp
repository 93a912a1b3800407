// LLaMA family (LlamaForCausalLM): RMSNorm, rotary positions (rope_theta), SwiGLU MLP,
// grouped-query attention, optional attention/MLP biases, optional tied embeddings.
//   h = embed(ids)
//   per layer: h += o_proj(attn(rope(q_proj(rms(h))), rope(k_proj(..)), v_proj(..)))
//              h += down(silu(gate(rms(h))) * up(rms(h)))
//   logits = lm_head(rms(h))          (lm_head = embed_tokens when tied)
// Blobs: "embed" = embed_tokens; "layer.NNNN" = one decoder layer; "head" = final norm
// (+ lm_head when untied).
#include "runtime/model/layers.hpp"

namespace zinc::runtime {
namespace {

const char* kEmbed = "model.embed_tokens.weight";

std::string layer_prefix(int l) { return "model.layers." + std::to_string(l) + "."; }

enum LlamaSlot { kHidden = kFamilySlots, kNormed, kBranch, kLast };

class Llama final : public Model {
 public:
  Llama(const ModelConfig& c, std::unique_ptr<WeightProvider> weights, Backend& backend)
      : Model(c), backend_(backend), weights_(std::move(weights)), scratch_(backend) {
    params_.heads = c.num_heads;
    params_.kv_heads = c.num_kv_heads;
    params_.head_dim = c.head_dim;
    params_.rope = true;
    params_.rope_theta = c.rope_theta;
  }

  size_t weight_bytes() const override { return weights_->resident_bytes(); }

  void forward(const StepInputs& in, KvCache& kv, const Tensor& logits, bool all_positions) override {
    const ModelConfig& c = config_;
    const int64_t n = static_cast<int64_t>(in.batch) * in.tq, d = c.hidden_size;
    Tensor ids, positions;
    upload_step_inputs(backend_, in, scratch_, 0, &ids, &positions);
    Tensor h = scratch_.get(kHidden, n, d);
    Tensor x = scratch_.get(kNormed, n, d);
    Tensor branch = scratch_.get(kBranch, n, d);
    {
      const ParamTable& w = weights_->acquire(embed_blob());
      backend_.embedding(ids, w.at(kEmbed), h);
      weights_->release(embed_blob());
    }
    for (int l = 0; l < c.num_layers; ++l) {
      const ParamTable& w = weights_->acquire(layer_blob(l));
      const std::string p = layer_prefix(l);
      AttentionWeights attn{bind_linear(w, p + "self_attn.q_proj", c.attention_bias),
                            bind_linear(w, p + "self_attn.k_proj", c.attention_bias),
                            bind_linear(w, p + "self_attn.v_proj", c.attention_bias),
                            bind_linear(w, p + "self_attn.o_proj", c.attention_bias),
                            Linear{}};
      backend_.rms_norm(h, w.at(p + "input_layernorm.weight"), c.rms_norm_eps, x);
      self_attention(backend_, attn, params_, x, positions, in, kv, l, scratch_, branch);
      backend_.add(h, branch, h);
      backend_.rms_norm(h, w.at(p + "post_attention_layernorm.weight"), c.rms_norm_eps, x);
      gated_mlp(backend_, bind_linear(w, p + "mlp.gate_proj", c.mlp_bias),
                bind_linear(w, p + "mlp.up_proj", c.mlp_bias),
                bind_linear(w, p + "mlp.down_proj", c.mlp_bias), x, scratch_, branch);
      backend_.add(h, branch, h);
      weights_->release(layer_blob(l));
    }
    const Tensor rows = head_rows(backend_, scratch_, kLast, h, in, all_positions);
    const Tensor normed = x.first_rows(rows.rows());
    const ParamTable& head = weights_->acquire(head_blob(c));
    backend_.rms_norm(rows, head.at("model.norm.weight"), c.rms_norm_eps, normed);
    vocab_projection(backend_, *weights_, c, head, kEmbed, normed, logits);
    weights_->release(head_blob(c));
  }

 private:
  Backend& backend_;
  std::unique_ptr<WeightProvider> weights_;
  Scratch scratch_;
  AttentionParams params_;
};

}  // namespace

std::vector<BlobPlan> llama_blob_plan(const ModelConfig& c) {
  const int64_t d = c.hidden_size, f = c.intermediate_size, v = c.vocab_size;
  const int64_t q_dim = static_cast<int64_t>(c.num_heads) * c.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(c.num_kv_heads) * c.head_dim;
  std::vector<BlobPlan> plan;
  plan.push_back({"embed", {matrix_param(kEmbed, v, d)}});
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string p = layer_prefix(l);
    BlobPlan b{layer_name(l), {vector_param(p + "input_layernorm.weight", d),
                               vector_param(p + "post_attention_layernorm.weight", d)}};
    add_linear(b, p + "self_attn.q_proj", q_dim, d, c.attention_bias);
    add_linear(b, p + "self_attn.k_proj", kv_dim, d, c.attention_bias);
    add_linear(b, p + "self_attn.v_proj", kv_dim, d, c.attention_bias);
    add_linear(b, p + "self_attn.o_proj", d, q_dim, c.attention_bias);
    add_linear(b, p + "mlp.gate_proj", f, d, c.mlp_bias);
    add_linear(b, p + "mlp.up_proj", f, d, c.mlp_bias);
    add_linear(b, p + "mlp.down_proj", d, f, c.mlp_bias);
    plan.push_back(std::move(b));
  }
  BlobPlan head{"head", {vector_param("model.norm.weight", d)}};
  if (!c.tie_word_embeddings) head.params.push_back(matrix_param("lm_head.weight", v, d));
  plan.push_back(std::move(head));
  return plan;
}

std::unique_ptr<Model> create_llama(const ModelConfig& config,
                                    std::unique_ptr<WeightProvider> weights, Backend& backend) {
  return std::make_unique<Llama>(config, std::move(weights), backend);
}

}  // namespace zinc::runtime
