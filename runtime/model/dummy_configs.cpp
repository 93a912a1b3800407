#include "runtime/model/dummy_configs.hpp"

#include <nlohmann/json.hpp>

#include "runtime/common/error.hpp"

namespace zinc::runtime {
namespace {

struct Shape {
  const char* name;
  Family family;
  int hidden, layers, heads, kv_heads, ffn, vocab, max_pos;
};

// Sizes as in the public Hugging Face configs of these models.
const Shape kShapes[] = {
    {"tiny-llama", Family::Llama, 256, 4, 8, 2, 704, 1024, 512},
    {"tiny-opt", Family::Opt, 256, 4, 8, 8, 1024, 1024, 512},
    {"opt-1.3b", Family::Opt, 2048, 24, 32, 32, 8192, 50272, 2048},
    {"opt-2.7b", Family::Opt, 2560, 32, 32, 32, 10240, 50272, 2048},
    {"opt-6.7b", Family::Opt, 4096, 32, 32, 32, 16384, 50272, 2048},
    {"opt-13b", Family::Opt, 5120, 40, 40, 40, 20480, 50272, 2048},
    {"opt-30b", Family::Opt, 7168, 48, 56, 56, 28672, 50272, 2048},
    {"opt-66b", Family::Opt, 9216, 64, 72, 72, 36864, 50272, 2048},
    {"opt-175b", Family::Opt, 12288, 96, 96, 96, 49152, 50272, 2048},
    {"llama-2-7b", Family::Llama, 4096, 32, 32, 32, 11008, 32000, 4096},
    {"llama-2-13b", Family::Llama, 5120, 40, 40, 40, 13824, 32000, 4096},
    {"llama-2-70b", Family::Llama, 8192, 80, 64, 8, 28672, 32000, 4096},
    {"tiny-bloom", Family::Bloom, 256, 4, 8, 8, 1024, 1024, 0},
    {"bloom-176b", Family::Bloom, 14336, 70, 112, 112, 57344, 250880, 0},
};

}  // namespace

std::vector<std::string> dummy_shapes() {
  std::vector<std::string> names;
  for (const Shape& s : kShapes) names.push_back(s.name);
  return names;
}

ModelConfig dummy_config(const std::string& shape) {
  for (const Shape& s : kShapes) {
    if (shape != s.name) continue;
    ModelConfig c;
    c.family = s.family;
    c.model_type = s.family == Family::Llama ? "llama" : s.family == Family::Opt ? "opt" : "bloom";
    c.hidden_size = s.hidden;
    c.num_layers = s.layers;
    c.num_heads = s.heads;
    c.num_kv_heads = s.kv_heads;
    c.head_dim = s.hidden / s.heads;
    c.intermediate_size = s.ffn;
    c.vocab_size = s.vocab;
    c.max_position_embeddings = s.max_pos;
    c.torch_dtype = "float16";
    if (s.family == Family::Llama) {
      c.activation = Activation::Silu;
      c.rms_norm_eps = 1e-5f;
      c.bos_token_id = 1;
      c.eos_token_ids = {2};
    } else if (s.family == Family::Bloom) {
      c.activation = Activation::GeluTanh;
      c.tie_word_embeddings = true;
      c.bos_token_id = 1;
      c.eos_token_ids = {2};
      c.pad_token_id = 3;
    } else {
      c.activation = Activation::Relu;
      c.word_embed_proj_dim = s.hidden;
      c.tie_word_embeddings = true;
      c.bos_token_id = 2;
      c.eos_token_ids = {2};
      c.pad_token_id = 1;
    }
    return c;
  }
  std::string known;
  for (const std::string& n : dummy_shapes()) known += (known.empty() ? "" : ", ") + n;
  ZINC_THROW("dummy:" << shape << " is not a known shape (known: " << known << ")");
}

std::string dummy_config_json(const std::string& shape) {
  const ModelConfig c = dummy_config(shape);
  nlohmann::json j = {{"model_type", c.model_type},   {"vocab_size", c.vocab_size},
                      {"hidden_size", c.hidden_size}, {"torch_dtype", c.torch_dtype},
                      {"bos_token_id", c.bos_token_id}, {"eos_token_id", c.eos_token_ids.front()},
                      {"tie_word_embeddings", c.tie_word_embeddings}};
  if (c.pad_token_id >= 0) j["pad_token_id"] = c.pad_token_id;
  const bool bloom = c.family == Family::Bloom;  // BLOOM's config names its sizes n_*
  j[bloom ? "n_layer" : "num_hidden_layers"] = c.num_layers;
  j[bloom ? "n_head" : "num_attention_heads"] = c.num_heads;
  if (!bloom) j["max_position_embeddings"] = c.max_position_embeddings;
  switch (c.family) {
    case Family::Llama:
      j["architectures"] = {"LlamaForCausalLM"};
      j["intermediate_size"] = c.intermediate_size;
      j["num_key_value_heads"] = c.num_kv_heads;
      j["hidden_act"] = "silu";
      j["rms_norm_eps"] = c.rms_norm_eps;
      j["rope_theta"] = c.rope_theta;
      break;
    case Family::Opt:
      j["architectures"] = {"OPTForCausalLM"};
      j["ffn_dim"] = c.intermediate_size;
      j["activation_function"] = "relu";
      j["word_embed_proj_dim"] = c.word_embed_proj_dim;
      j["do_layer_norm_before"] = c.do_layer_norm_before;
      j["enable_bias"] = c.enable_bias;
      break;
    case Family::Bloom:
      j["architectures"] = {"BloomForCausalLM"};
      j["layer_norm_epsilon"] = c.layer_norm_eps;
      break;
  }
  return j.dump(2);
}

}  // namespace zinc::runtime
