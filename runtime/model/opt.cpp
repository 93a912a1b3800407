// OPT family (OPTForCausalLM): learned positions (offset 2, position ids derived from the
// attention mask), LayerNorm with biases, ReLU MLP (fc1/fc2), pre-LN or post-LN
// (do_layer_norm_before = false, as opt-350m), and project_in / project_out when
// word_embed_proj_dim != hidden_size. lm_head is tied to embed_tokens.
//   h = project_in(embed(ids)) + embed_positions(pos + 2)
//   pre-LN : h += attn(ln1(h));  h += fc2(relu(fc1(ln2(h))))
//   post-LN: h = ln1(h + attn(h)); h = ln2(h + fc2(relu(fc1(h))))
//   logits = lm_head(project_out(final_ln(h)))    (final_ln only with pre-LN)
// Blobs: "embed" = embed_tokens, embed_positions, project_in; "layer.NNNN"; "head" =
// final_layer_norm, project_out (+ lm_head when untied). Tensor names are the Hugging Face
// ones ("model.decoder.*"); checkpoints with the original "decoder.*" names are mapped.
#include "runtime/model/decoder.hpp"

namespace zinc::runtime {
namespace {

constexpr int32_t kOptPositionOffset = 2;  // OPTLearnedPositionalEmbedding.offset
const std::string kRoot = "model.decoder.";

std::string layer_prefix(int l) { return kRoot + "layers." + std::to_string(l) + "."; }

class Opt final : public Decoder {
 public:
  Opt(const ModelConfig& c, std::unique_ptr<WeightProvider> weights, Backend& backend)
      : Decoder(c, std::move(weights), backend) {}

 private:
  void embed(const ParamTable& w, StepState& st) override {
    const int64_t n = st.h.rows(), d = config_.hidden_size, e = config_.word_embed_proj_dim;
    if (e != d) {
      const Tensor emb = ws_.get(Slot::Embed, n, e);
      backend_.embedding(st.ids, w.at(kRoot + "embed_tokens.weight"), emb, stream_);
      backend_.linear(emb, w.at(kRoot + "project_in.weight"), Tensor(), st.h, stream_);
    } else {
      backend_.embedding(st.ids, w.at(kRoot + "embed_tokens.weight"), st.h, stream_);
    }
    // Learned positions: row pos + 2 of the table (OPTLearnedPositionalEmbedding.offset).
    const Tensor pos = ws_.get(Slot::Pos, n, d);
    backend_.embedding(st.positions, w.at(kRoot + "embed_positions.weight").rows_from(kOptPositionOffset), pos,
                       stream_);
    backend_.add(st.h, pos, st.h, stream_);
  }

  void norm(const ParamTable& w, const std::string& prefix, const Tensor& x, const Tensor& out) {
    const bool affine = config_.layer_norm_elementwise_affine;
    backend_.layer_norm(x, affine ? w.at(prefix + ".weight") : Tensor(), affine ? w.at(prefix + ".bias") : Tensor(),
                        config_.layer_norm_eps, out, stream_);
  }

  void layer(int l, const ParamTable& w, StepState& st) override {
    const std::string p = layer_prefix(l);
    const bool bias = config_.enable_bias;
    const AttentionWeights attn{bind_linear(w, p + "self_attn.q_proj", bias),
                                bind_linear(w, p + "self_attn.k_proj", bias),
                                bind_linear(w, p + "self_attn.v_proj", bias),
                                bind_linear(w, p + "self_attn.out_proj", bias), Linear{}};
    const Linear fc1 = bind_linear(w, p + "fc1", bias), fc2 = bind_linear(w, p + "fc2", bias);
    const Tensor &h = st.h, &x = st.x, &branch = st.branch;
    if (config_.do_layer_norm_before) {
      norm(w, p + "self_attn_layer_norm", h, x);
      self_attention(backend_, stream_, attn, attn_, x, st.positions, *st.in, *st.kv, l, ws_, branch);
      backend_.add(h, branch, h, stream_);
      norm(w, p + "final_layer_norm", h, x);
      plain_mlp(backend_, stream_, fc1, fc2, config_.activation, x, ws_, branch);
      backend_.add(h, branch, h, stream_);
    } else {
      self_attention(backend_, stream_, attn, attn_, h, st.positions, *st.in, *st.kv, l, ws_, branch);
      backend_.add(h, branch, x, stream_);
      norm(w, p + "self_attn_layer_norm", x, h);
      plain_mlp(backend_, stream_, fc1, fc2, config_.activation, h, ws_, branch);
      backend_.add(h, branch, x, stream_);
      norm(w, p + "final_layer_norm", x, h);
    }
  }

  Tensor final_rows(const ParamTable& head, const Tensor& rows, StepState& st) override {
    Tensor out = rows;
    if (config_.final_layer_norm) {
      out = st.x.first_rows(rows.rows());
      norm(head, kRoot + "final_layer_norm", rows, out);
    }
    if (config_.word_embed_proj_dim != config_.hidden_size) {
      const Tensor projected = ws_.get(Slot::ProjOut, out.rows(), config_.word_embed_proj_dim);
      backend_.linear(out, head.at(kRoot + "project_out.weight"), Tensor(), projected, stream_);
      out = projected;
    }
    return out;
  }

  std::string tied_embedding() const override { return kRoot + "embed_tokens.weight"; }
};

void add_norm(BlobPlan& b, const ModelConfig& c, const std::string& prefix) {
  if (!c.layer_norm_elementwise_affine) return;
  b.params.push_back(vector_param(prefix + ".weight", c.hidden_size));
  b.params.push_back(vector_param(prefix + ".bias", c.hidden_size));
}

}  // namespace

std::vector<BlobPlan> opt_blob_plan(const ModelConfig& c) {
  const int64_t d = c.hidden_size, f = c.intermediate_size, e = c.word_embed_proj_dim;
  const int64_t v = c.vocab_size;
  const bool bias = c.enable_bias;
  std::vector<BlobPlan> plan;
  // Learned positions stay raw: small, and read by index rather than multiplied.
  BlobPlan embed{"embed", {matrix_param(kRoot + "embed_tokens.weight", v, e)}};
  embed.params.push_back(
      partition::ParamSpec{kRoot + "embed_positions.weight",
                           {c.max_position_embeddings + kOptPositionOffset, d}, quant::DType::F16, false});
  if (e != d) embed.params.push_back(matrix_param(kRoot + "project_in.weight", d, e));
  plan.push_back(std::move(embed));
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string p = layer_prefix(l);
    BlobPlan b{layer_name(l), {}};
    add_norm(b, c, p + "self_attn_layer_norm");
    add_norm(b, c, p + "final_layer_norm");
    add_linear(b, p + "self_attn.q_proj", d, d, bias);
    add_linear(b, p + "self_attn.k_proj", d, d, bias);
    add_linear(b, p + "self_attn.v_proj", d, d, bias);
    add_linear(b, p + "self_attn.out_proj", d, d, bias);
    add_linear(b, p + "fc1", f, d, bias);
    add_linear(b, p + "fc2", d, f, bias);
    plan.push_back(std::move(b));
  }
  BlobPlan head{"head", {}};
  if (c.final_layer_norm) add_norm(head, c, kRoot + "final_layer_norm");
  if (e != d) head.params.push_back(matrix_param(kRoot + "project_out.weight", e, d));
  if (!c.tie_word_embeddings) head.params.push_back(matrix_param("lm_head.weight", v, e));
  plan.push_back(std::move(head));
  return plan;
}

std::unique_ptr<Model> create_opt(const ModelConfig& config, std::unique_ptr<WeightProvider> weights,
                                  Backend& backend) {
  return std::make_unique<Opt>(config, std::move(weights), backend);
}

}  // namespace zinc::runtime
