// OPT family (OPTForCausalLM): learned positions (offset 2, position ids derived from the
// attention mask), LayerNorm with biases, ReLU MLP (fc1/fc2), pre-LN or post-LN
// (do_layer_norm_before = false, as opt-350m), and project_in / project_out when
// word_embed_proj_dim != hidden_size. lm_head is tied to embed_tokens.
//   h = project_in(embed(ids)) + embed_positions(pos + 2)
//   pre-LN : h += attn(ln1(h));  h += fc2(relu(fc1(ln2(h))))
//   post-LN: h = ln1(h + attn(h)); h = ln2(h + fc2(relu(fc1(h))))
//   logits = lm_head(project_out(final_ln(h)))    (final_ln only with pre-LN)
#include "runtime/model/layers.hpp"

namespace zinc::runtime {
namespace {

constexpr int32_t kOptPositionOffset = 2;  // OPTLearnedPositionalEmbedding.offset

struct OptLayer {
  Norm attn_norm, mlp_norm;  // self_attn_layer_norm, final_layer_norm
  AttentionWeights attn;
  Linear fc1, fc2;
};

enum OptSlot { kHidden = kFamilySlots, kNormed, kBranch, kLast, kEmbed, kPos, kProjOut };

class Opt final : public Model {
 public:
  Opt(const ModelConfig& c, const partition::Checkpoint& ckpt, Backend& backend)
      : Model(c), backend_(backend), weights_(backend, ckpt), scratch_(backend) {
    const int64_t d = c.hidden_size, f = c.intermediate_size, e = c.word_embed_proj_dim;
    const bool affine = c.layer_norm_elementwise_affine;
    // Hugging Face checkpoints name tensors "model.decoder.*"; the original OPT releases
    // ("facebook/opt-*") use "decoder.*".
    const std::string root = weights_.has("decoder.embed_tokens.weight") &&
                                     !weights_.has("model.decoder.embed_tokens.weight")
                                 ? "decoder."
                                 : "model.decoder.";
    embed_ = weights_.load(root + "embed_tokens.weight", {c.vocab_size, e});
    positions_ = weights_.load(root + "embed_positions.weight",
                               {c.max_position_embeddings + kOptPositionOffset, d});
    if (e != d) {
      project_in_ = weights_.linear(root + "project_in", d, e, false);
      project_out_ = weights_.linear(root + "project_out", e, d, false);
    }
    for (int l = 0; l < c.num_layers; ++l) {
      const std::string p = root + "layers." + std::to_string(l) + ".";
      OptLayer L;
      L.attn_norm = weights_.norm(p + "self_attn_layer_norm", d, affine, affine);
      L.mlp_norm = weights_.norm(p + "final_layer_norm", d, affine, affine);
      L.attn.q = weights_.linear(p + "self_attn.q_proj", d, d, c.enable_bias);
      L.attn.k = weights_.linear(p + "self_attn.k_proj", d, d, c.enable_bias);
      L.attn.v = weights_.linear(p + "self_attn.v_proj", d, d, c.enable_bias);
      L.attn.o = weights_.linear(p + "self_attn.out_proj", d, d, c.enable_bias);
      L.fc1 = weights_.linear(p + "fc1", f, d, c.enable_bias);
      L.fc2 = weights_.linear(p + "fc2", d, f, c.enable_bias);
      layers_.push_back(L);
    }
    if (c.final_layer_norm) final_norm_ = weights_.norm(root + "final_layer_norm", d, affine, affine);
    // OPT ties lm_head to embed_tokens; an untied checkpoint carries lm_head.weight.
    lm_head_.w = c.tie_word_embeddings ? embed_ : weights_.load("lm_head.weight", {c.vocab_size, e});
    params_.heads = c.num_heads;
    params_.kv_heads = c.num_kv_heads;
    params_.head_dim = c.head_dim;
    params_.rope = false;
  }

  size_t weight_bytes() const override { return weights_.bytes(); }

  void forward(const StepInputs& in, KvCache& kv, const Tensor& logits, bool all_positions) override {
    const ModelConfig& c = config_;
    const int64_t n = static_cast<int64_t>(in.batch) * in.tq, d = c.hidden_size;
    const int64_t e = c.word_embed_proj_dim;
    const bool pre_ln = c.do_layer_norm_before;
    Tensor ids, positions;
    upload_step_inputs(backend_, in, scratch_, kOptPositionOffset, &ids, &positions);
    Tensor h = scratch_.get(kHidden, n, d);
    Tensor x = scratch_.get(kNormed, n, d);
    Tensor branch = scratch_.get(kBranch, n, d);
    if (e != d) {
      Tensor emb = scratch_.get(kEmbed, n, e);
      backend_.embedding(ids, embed_, emb);
      backend_.linear(emb, project_in_.w, project_in_.b, h);
    } else {
      backend_.embedding(ids, embed_, h);
    }
    Tensor pos = scratch_.get(kPos, n, d);
    backend_.embedding(positions, positions_, pos);
    backend_.add(h, pos, h);

    for (int l = 0; l < c.num_layers; ++l) {
      const OptLayer& L = layers_[l];
      const float eps = c.layer_norm_eps;
      if (pre_ln) {
        backend_.layer_norm(h, L.attn_norm.w, L.attn_norm.b, eps, x);
        self_attention(backend_, L.attn, params_, x, positions, in, kv, l, scratch_, branch);
        backend_.add(h, branch, h);
        backend_.layer_norm(h, L.mlp_norm.w, L.mlp_norm.b, eps, x);
        plain_mlp(backend_, L.fc1, L.fc2, c.activation, x, scratch_, branch);
        backend_.add(h, branch, h);
      } else {
        self_attention(backend_, L.attn, params_, h, positions, in, kv, l, scratch_, branch);
        backend_.add(h, branch, x);
        backend_.layer_norm(x, L.attn_norm.w, L.attn_norm.b, eps, h);
        plain_mlp(backend_, L.fc1, L.fc2, c.activation, h, scratch_, branch);
        backend_.add(h, branch, x);
        backend_.layer_norm(x, L.mlp_norm.w, L.mlp_norm.b, eps, h);
      }
    }
    Tensor rows = h;
    if (!all_positions) {
      rows = scratch_.get(kLast, in.batch, d);
      backend_.last_rows(h, in.batch, in.tq, rows);
    }
    Tensor out = rows;
    if (c.final_layer_norm) {
      out = x.first_rows(rows.rows());
      backend_.layer_norm(rows, final_norm_.w, final_norm_.b, c.layer_norm_eps, out);
    }
    if (e != d) {
      Tensor projected = scratch_.get(kProjOut, out.rows(), e);
      backend_.linear(out, project_out_.w, project_out_.b, projected);
      out = projected;
    }
    backend_.linear(out, lm_head_.w, lm_head_.b, logits);
  }

 private:
  Backend& backend_;
  Weights weights_;
  Scratch scratch_;
  Tensor embed_, positions_;
  Linear project_in_, project_out_;
  std::vector<OptLayer> layers_;
  Norm final_norm_;
  Linear lm_head_;
  AttentionParams params_;
};

}  // namespace

std::unique_ptr<Model> create_opt(const ModelConfig& config,
                                  const partition::Checkpoint& checkpoint, Backend& backend) {
  return std::make_unique<Opt>(config, checkpoint, backend);
}

}  // namespace zinc::runtime
