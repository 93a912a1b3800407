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
#include <algorithm>
#include <cmath>

#include "runtime/model/decoder.hpp"

namespace zinc::runtime {
namespace {

const std::string kRoot = "transformer.";
const std::string kEmbed = kRoot + "word_embeddings.weight";

std::string layer_prefix(int l) { return kRoot + "h." + std::to_string(l) + "."; }

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

class Bloom final : public Decoder {
 public:
  Bloom(const ModelConfig& c, std::unique_ptr<WeightProvider> weights, Backend& backend)
      : Decoder(c, std::move(weights), backend) {
    // The slopes live in pinned host memory (the --kv-offload path reads them there) and
    // on the device; the upload is waited for once, here.
    const std::vector<float> slopes = alibi_slopes(c.num_heads);
    host_slopes_ = backend.alloc_host(slopes.size() * sizeof(float), "ALiBi slopes (host)");
    std::copy(slopes.begin(), slopes.end(), host_slopes_.as<float>());
    slopes_ = backend.alloc(slopes.size() * sizeof(float), "ALiBi slopes");
    attn_.bias.slopes = view_of(slopes_, quant::DType::F32, {c.num_heads});
    attn_.bias.host_slopes = host_slopes_.as<float>();
    backend.upload(attn_.bias.slopes, host_slopes_.data(), stream_);
  }

 private:
  void embed(const ParamTable& w, StepState& st) override {
    // positions are unused: ALiBi reads key positions off the mask
    backend_.embedding(st.ids, w.at(kEmbed), st.x, stream_);
    norm(w, kRoot + "word_embeddings_layernorm", st.x, st.h);
  }

  void layer(int l, const ParamTable& w, StepState& st) override {
    const ModelConfig& c = config_;
    const std::string p = layer_prefix(l);
    AttentionWeights attn;
    attn.qkv = bind_linear(w, p + "self_attention.query_key_value", true);
    attn.o = bind_linear(w, p + "self_attention.dense", true);
    norm(w, p + "input_layernorm", st.h, st.x);
    self_attention(backend_, stream_, attn, attn_, st.x, st.positions, *st.in, *st.kv, l, ws_, st.branch);
    backend_.add(c.residual_post_layernorm ? st.x : st.h, st.branch, st.h, stream_);
    norm(w, p + "post_attention_layernorm", st.h, st.x);
    plain_mlp(backend_, stream_, bind_linear(w, p + "mlp.dense_h_to_4h", true),
              bind_linear(w, p + "mlp.dense_4h_to_h", true), c.activation, st.x, ws_, st.branch);
    backend_.add(c.residual_post_layernorm ? st.x : st.h, st.branch, st.h, stream_);
  }

  Tensor final_rows(const ParamTable& head, const Tensor& rows, StepState& st) override {
    const Tensor normed = st.x.first_rows(rows.rows());
    norm(head, kRoot + "ln_f", rows, normed);
    return normed;
  }

  std::string tied_embedding() const override { return kEmbed; }

  void norm(const ParamTable& w, const std::string& prefix, const Tensor& x, const Tensor& out) {
    backend_.layer_norm(x, w.at(prefix + ".weight"), w.at(prefix + ".bias"), config_.layer_norm_eps, out, stream_);
  }

  HostBuffer host_slopes_;
  DeviceBuffer slopes_;
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
