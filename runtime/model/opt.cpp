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
#include "runtime/model/layers.hpp"

namespace zinc::runtime {
namespace {

constexpr int32_t kOptPositionOffset = 2;  // OPTLearnedPositionalEmbedding.offset
const std::string kRoot = "model.decoder.";

std::string layer_prefix(int l) { return kRoot + "layers." + std::to_string(l) + "."; }

enum OptSlot { kHidden = kFamilySlots, kNormed, kBranch, kLast, kEmbed, kPos, kProjOut };

class Opt final : public Model {
 public:
  Opt(const ModelConfig& c, std::unique_ptr<WeightProvider> weights, Backend& backend)
      : Model(c), backend_(backend), weights_(std::move(weights)), scratch_(backend) {
    params_.heads = c.num_heads;
    params_.kv_heads = c.num_kv_heads;
    params_.head_dim = c.head_dim;
    params_.rope = false;
  }

  size_t weight_bytes() const override { return weights_->resident_bytes(); }

  void forward(const StepInputs& in, KvCache& kv, const Tensor& logits, bool all_positions) override {
    const ModelConfig& c = config_;
    const int64_t n = static_cast<int64_t>(in.batch) * in.tq, d = c.hidden_size;
    const int64_t e = c.word_embed_proj_dim;
    Tensor ids, positions;
    upload_step_inputs(backend_, in, scratch_, kOptPositionOffset, &ids, &positions);
    Tensor h = scratch_.get(kHidden, n, d);
    Tensor x = scratch_.get(kNormed, n, d);
    Tensor branch = scratch_.get(kBranch, n, d);
    embed(ids, positions, n, h);
    for (int l = 0; l < c.num_layers; ++l) {
      const ParamTable& w = weights_->acquire(layer_blob(l));
      layer(w, layer_prefix(l), l, in, kv, positions, h, x, branch);
      weights_->release(layer_blob(l));
    }
    const Tensor rows = head_rows(backend_, scratch_, kLast, h, in, all_positions);
    const ParamTable& head = weights_->acquire(head_blob(c));
    Tensor out = rows;
    if (c.final_layer_norm) {
      out = x.first_rows(rows.rows());
      norm(head, kRoot + "final_layer_norm", rows, out);
    }
    if (e != d) {
      Tensor projected = scratch_.get(kProjOut, out.rows(), e);
      backend_.linear(out, head.at(kRoot + "project_out.weight"), Tensor(), projected);
      out = projected;
    }
    vocab_projection(backend_, *weights_, c, head, kRoot + "embed_tokens.weight", out, logits);
    weights_->release(head_blob(c));
  }

 private:
  void embed(const Tensor& ids, const Tensor& positions, int64_t n, const Tensor& h) {
    const int64_t d = config_.hidden_size, e = config_.word_embed_proj_dim;
    const ParamTable& w = weights_->acquire(embed_blob());
    if (e != d) {
      Tensor emb = scratch_.get(kEmbed, n, e);
      backend_.embedding(ids, w.at(kRoot + "embed_tokens.weight"), emb);
      backend_.linear(emb, w.at(kRoot + "project_in.weight"), Tensor(), h);
    } else {
      backend_.embedding(ids, w.at(kRoot + "embed_tokens.weight"), h);
    }
    Tensor pos = scratch_.get(kPos, n, d);
    backend_.embedding(positions, w.at(kRoot + "embed_positions.weight"), pos);
    backend_.add(h, pos, h);
    weights_->release(embed_blob());
  }

  void norm(const ParamTable& w, const std::string& prefix, const Tensor& x, const Tensor& out) {
    const bool affine = config_.layer_norm_elementwise_affine;
    backend_.layer_norm(x, affine ? w.at(prefix + ".weight") : Tensor(),
                        affine ? w.at(prefix + ".bias") : Tensor(), config_.layer_norm_eps, out);
  }

  void layer(const ParamTable& w, const std::string& p, int l, const StepInputs& in, KvCache& kv,
             const Tensor& positions, const Tensor& h, const Tensor& x, const Tensor& branch) {
    const bool bias = config_.enable_bias;
    const AttentionWeights attn{bind_linear(w, p + "self_attn.q_proj", bias),
                                bind_linear(w, p + "self_attn.k_proj", bias),
                                bind_linear(w, p + "self_attn.v_proj", bias),
                                bind_linear(w, p + "self_attn.out_proj", bias), Linear{}};
    const Linear fc1 = bind_linear(w, p + "fc1", bias), fc2 = bind_linear(w, p + "fc2", bias);
    if (config_.do_layer_norm_before) {
      norm(w, p + "self_attn_layer_norm", h, x);
      self_attention(backend_, attn, params_, x, positions, in, kv, l, scratch_, branch);
      backend_.add(h, branch, h);
      norm(w, p + "final_layer_norm", h, x);
      plain_mlp(backend_, fc1, fc2, config_.activation, x, scratch_, branch);
      backend_.add(h, branch, h);
    } else {
      self_attention(backend_, attn, params_, h, positions, in, kv, l, scratch_, branch);
      backend_.add(h, branch, x);
      norm(w, p + "self_attn_layer_norm", x, h);
      plain_mlp(backend_, fc1, fc2, config_.activation, h, scratch_, branch);
      backend_.add(h, branch, x);
      norm(w, p + "final_layer_norm", x, h);
    }
  }

  Backend& backend_;
  std::unique_ptr<WeightProvider> weights_;
  Scratch scratch_;
  AttentionParams params_;
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
