// LLaMA family (LlamaForCausalLM): RMSNorm, rotary positions (rope_theta), SwiGLU MLP,
// grouped-query attention, optional attention/MLP biases, optional tied embeddings.
//   h = embed(ids)
//   per layer: h += o_proj(attn(rope(q_proj(rms(h))), rope(k_proj(..)), v_proj(..)))
//              h += down(silu(gate(rms(h))) * up(rms(h)))
//   logits = lm_head(rms(h))          (lm_head = embed_tokens when tied)
// The forward pass is the decoder skeleton's (decoder.hpp); this file has its hooks.
// Blobs: "embed" = embed_tokens; "layer.NNNN" = one decoder layer; "head" = final norm
// (+ lm_head when untied).
#include "runtime/model/decoder.hpp"

namespace zinc::runtime {
namespace {

const char* kEmbed = "model.embed_tokens.weight";

std::string layer_prefix(int l) { return "model.layers." + std::to_string(l) + "."; }

class Llama final : public Decoder {
 public:
  Llama(const ModelConfig& c, std::unique_ptr<WeightProvider> weights, Backend& backend)
      : Decoder(c, std::move(weights), backend) {
    attn_.rope = true;
    attn_.rope_theta = c.rope_theta;
  }

 private:
  void embed(const ParamTable& w, StepState& st) override {
    backend_.embedding(st.ids, w.at(kEmbed), st.h, stream_);
  }

  void layer(int l, const ParamTable& w, StepState& st) override {
    const ModelConfig& c = config_;
    const std::string p = layer_prefix(l);
    const AttentionWeights attn{bind_linear(w, p + "self_attn.q_proj", c.attention_bias),
                                bind_linear(w, p + "self_attn.k_proj", c.attention_bias),
                                bind_linear(w, p + "self_attn.v_proj", c.attention_bias),
                                bind_linear(w, p + "self_attn.o_proj", c.attention_bias), Linear{}};
    backend_.rms_norm(st.h, w.at(p + "input_layernorm.weight"), c.rms_norm_eps, st.x, stream_);
    self_attention(backend_, stream_, attn, attn_, st.x, st.positions, *st.in, *st.kv, l, ws_, st.branch);
    backend_.add(st.h, st.branch, st.h, stream_);
    backend_.rms_norm(st.h, w.at(p + "post_attention_layernorm.weight"), c.rms_norm_eps, st.x, stream_);
    gated_mlp(backend_, stream_, bind_linear(w, p + "mlp.gate_proj", c.mlp_bias),
              bind_linear(w, p + "mlp.up_proj", c.mlp_bias), bind_linear(w, p + "mlp.down_proj", c.mlp_bias), st.x,
              ws_, st.branch);
    backend_.add(st.h, st.branch, st.h, stream_);
  }

  Tensor final_rows(const ParamTable& head, const Tensor& rows, StepState& st) override {
    const Tensor normed = st.x.first_rows(rows.rows());
    backend_.rms_norm(rows, head.at("model.norm.weight"), config_.rms_norm_eps, normed, stream_);
    return normed;
  }

  std::string tied_embedding() const override { return kEmbed; }
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
