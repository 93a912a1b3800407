// A model's architecture, read from a Hugging Face config.json (and generation_config.json
// where present, whose eos/bos/pad ids take precedence, as transformers' generate() does).
// Every missing key, bad value or unsupported option is an error naming the file.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/backend/activation.hpp"

namespace zinc::runtime {

enum class Family { Llama, Opt, Bloom };

struct ModelConfig {
  Family family = Family::Llama;
  std::string model_type;          // "llama", "opt", "bloom"
  int vocab_size = 0;
  int hidden_size = 0;
  int intermediate_size = 0;       // OPT: ffn_dim
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;            // == num_heads unless grouped-query attention
  int head_dim = 0;                // config "head_dim" or hidden_size / num_heads
  int max_position_embeddings = 0;
  Activation activation = Activation::Silu;
  std::string torch_dtype;         // as written ("float32", "float16", "bfloat16"); may be empty

  // LLaMA
  float rms_norm_eps = 1e-6f;
  float rope_theta = 10000.0f;
  bool attention_bias = false;
  bool mlp_bias = false;
  bool tie_word_embeddings = false;

  // OPT
  bool do_layer_norm_before = true;   // false = post-LN (opt-350m)
  int word_embed_proj_dim = 0;        // != hidden_size -> project_in / project_out
  bool enable_bias = true;
  bool layer_norm_elementwise_affine = true;
  bool final_layer_norm = true;       // do_layer_norm_before && !_remove_final_layer_norm
  float layer_norm_eps = 1e-5f;       // torch.nn.LayerNorm default, as OPT uses

  // BLOOM (ALiBi positions; layer_norm_eps from layer_norm_epsilon)
  bool residual_post_layernorm = false;  // apply_residual_connection_post_layernorm

  int bos_token_id = -1;
  std::vector<int> eos_token_ids;     // config may give one id or a list
  int pad_token_id = -1;              // -1: none given

  bool is_eos(int token) const;
};

// Reads DIR/config.json (+ DIR/generation_config.json if present).
ModelConfig load_config(const std::string& model_dir);
// Parses an already-read config.json; `source` names the file in errors.
ModelConfig parse_config(const nlohmann::json& j, const std::string& source);
// Applies generation_config.json's bos/eos/pad ids (those it contains) to *config.
void apply_generation_config(const nlohmann::json& g, const std::string& source, ModelConfig* config);
// The same from the files' texts (text that is not JSON is an error naming `source`): what
// load_config does with the files it reads, and the loader with a store's copies.
ModelConfig parse_config_text(const std::string& text, const std::string& source);
void apply_generation_config_text(const std::string& text, const std::string& source, ModelConfig* config);

}  // namespace zinc::runtime
