// BLOOM family (BloomForCausalLM): ALiBi attention biases instead of positions, LayerNorm
// with biases (also right after the word embeddings), a fused query_key_value projection
// laid out per head as [q k v], GELU (tanh form) in a 4x MLP, tied lm_head.
//   h = ln_emb(embed(ids))
//   per layer: x = ln1(h); r = post_ln_residual ? x : h; h = r + dense(attn_alibi(qkv(x)))
//              x = ln2(h); r = post_ln_residual ? x : h; h = r + fc2(gelu(fc1(x)))
//   logits = lm_head(ln_f(h))
// ALiBi: score(h, i, j) = q_i.k_j / sqrt(hd) + slope_h * (real keys before j), with
// transformers' build_alibi_tensor slopes (a geometric series, interleaved extra slopes
// when the head count is not a power of two).
// Blobs: "embed" = word_embeddings + its LayerNorm; "layer.NNNN"; "head" = ln_f (+ lm_head
// when untied). Names are the Hugging Face ones ("transformer.*"); checkpoints without the
// "transformer." prefix (the original bigscience files) are mapped.
#include <cmath>

#include "runtime/model/layers.hpp"

namespace zinc::runtime {
namespace {

const std::string kRoot = "transformer.";
const std::string kEmbed = kRoot + "word_embeddings.weight";

std::string layer_prefix(int l) { return kRoot + "h." + std::to_string(l) + "."; }

enum BloomSlot { kHidden = kFamilySlots, kNormed, kBranch, kLast, kSlopes };

}  // namespace

std::vector<float> alibi_slopes(int heads) {
  const int closest = 1 << static_cast<int>(std::floor(std::log2(static_cast<double>(heads))));
  auto series = [](int n, int first, int step, int count) {
    const float base = static_cast<float>(std::pow(2.0, -std::pow(2.0, -(std::log2(n) - 3))));
    std::vector<float> out;
    for (int i = 0, p = first; i < count; ++i, p += step) out.push_back(std::pow(base, static_cast<float>(p)));
    return out;
  };
  std::vector<float> slopes = series(closest, 1, 1, closest);
  if (closest != heads) {
    const auto extra = series(2 * closest, 1, 2, std::min(closest, heads - closest));
    slopes.insert(slopes.end(), extra.begin(), extra.end());
  }
  return slopes;
}

namespace {

class Bloom final : public Model {
 public:
  Bloom(const ModelConfig& c, std::unique_ptr<WeightProvider> weights, Backend& backend)
      : Model(c), backend_(backend), weights_(std::move(weights)), scratch_(backend) {
    params_.heads = c.num_heads;
    params_.kv_heads = c.num_kv_heads;
    params_.head_dim = c.head_dim;
    const std::vector<float> slopes = alibi_slopes(c.num_heads);
    slopes_ = backend.alloc(slopes.size() * sizeof(float), "ALiBi slopes");
    params_.alibi_slopes = slopes_.view(quant::DType::F32, {c.num_heads});
    backend.copy_to_device(params_.alibi_slopes, slopes.data());
    params_.host_alibi_slopes = slopes;
  }

  size_t weight_bytes() const override { return weights_->resident_bytes(); }

  void forward(const StepInputs& in, KvCache& kv, const Tensor& logits, bool all_positions) override {
    const ModelConfig& c = config_;
    const int64_t n = static_cast<int64_t>(in.batch) * in.tq, d = c.hidden_size;
    Tensor ids, positions;  // positions unused: ALiBi reads key positions off the mask
    upload_step_inputs(backend_, in, scratch_, 0, &ids, &positions);
    Tensor h = scratch_.get(kHidden, n, d);
    Tensor x = scratch_.get(kNormed, n, d);
    Tensor branch = scratch_.get(kBranch, n, d);
    {
      const ParamTable& w = weights_->acquire(embed_blob());
      backend_.embedding(ids, w.at(kEmbed), x);
      norm(w, kRoot + "word_embeddings_layernorm", x, h);
      weights_->release(embed_blob());
    }
    for (int l = 0; l < c.num_layers; ++l) {
      const ParamTable& w = weights_->acquire(layer_blob(l));
      const std::string p = layer_prefix(l);
      AttentionWeights attn;
      attn.qkv = bind_linear(w, p + "self_attention.query_key_value", true);
      attn.o = bind_linear(w, p + "self_attention.dense", true);
      norm(w, p + "input_layernorm", h, x);
      self_attention(backend_, attn, params_, x, positions, in, kv, l, scratch_, branch);
      backend_.add(c.residual_post_layernorm ? x : h, branch, h);
      norm(w, p + "post_attention_layernorm", h, x);
      plain_mlp(backend_, bind_linear(w, p + "mlp.dense_h_to_4h", true),
                bind_linear(w, p + "mlp.dense_4h_to_h", true), c.activation, x, scratch_, branch);
      backend_.add(c.residual_post_layernorm ? x : h, branch, h);
      weights_->release(layer_blob(l));
    }
    const Tensor rows = head_rows(backend_, scratch_, kLast, h, in, all_positions);
    const Tensor normed = x.first_rows(rows.rows());
    const ParamTable& head = weights_->acquire(head_blob(c));
    norm(head, kRoot + "ln_f", rows, normed);
    vocab_projection(backend_, *weights_, c, head, kEmbed, normed, logits);
    weights_->release(head_blob(c));
  }

 private:
  void norm(const ParamTable& w, const std::string& prefix, const Tensor& x, const Tensor& out) {
    backend_.layer_norm(x, w.at(prefix + ".weight"), w.at(prefix + ".bias"), config_.layer_norm_eps, out);
  }

  Backend& backend_;
  std::unique_ptr<WeightProvider> weights_;
  Scratch scratch_;
  DeviceBuffer slopes_;
  AttentionParams params_;
};

void add_norm(BlobPlan& b, const std::string& prefix, int64_t d) {
  b.params.push_back(vector_param(prefix + ".weight", d));
  b.params.push_back(vector_param(prefix + ".bias", d));
}

}  // namespace

std::vector<BlobPlan> bloom_blob_plan(const ModelConfig& c) {
  const int64_t d = c.hidden_size, f = c.intermediate_size, v = c.vocab_size;
  std::vector<BlobPlan> plan;
  BlobPlan embed{"embed", {matrix_param(kEmbed, v, d)}};
  add_norm(embed, kRoot + "word_embeddings_layernorm", d);
  plan.push_back(std::move(embed));
  for (int l = 0; l < c.num_layers; ++l) {
    const std::string p = layer_prefix(l);
    BlobPlan b{layer_name(l), {}};
    add_norm(b, p + "input_layernorm", d);
    add_norm(b, p + "post_attention_layernorm", d);
    add_linear(b, p + "self_attention.query_key_value", 3 * d, d, true);
    add_linear(b, p + "self_attention.dense", d, d, true);
    add_linear(b, p + "mlp.dense_h_to_4h", f, d, true);
    add_linear(b, p + "mlp.dense_4h_to_h", d, f, true);
    plan.push_back(std::move(b));
  }
  BlobPlan head{"head", {}};
  add_norm(head, kRoot + "ln_f", d);
  if (!c.tie_word_embeddings) head.params.push_back(matrix_param("lm_head.weight", v, d));
  plan.push_back(std::move(head));
  return plan;
}

std::unique_ptr<Model> create_bloom(const ModelConfig& config,
                                    std::unique_ptr<WeightProvider> weights, Backend& backend) {
  return std::make_unique<Bloom>(config, std::move(weights), backend);
}

}  // namespace zinc::runtime
