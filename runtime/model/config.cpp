#include "runtime/model/config.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <climits>

#include "runtime/common/error.hpp"
#include "runtime/common/input_file.hpp"
#include "runtime/common/paths.hpp"

namespace zinc::runtime {

namespace {

using nlohmann::json;

// The largest value of a size key. Every dimension (vocab_size, hidden_size, heads,
// head_dim, intermediate_size, ...) is at most 2^24 (vocab_size: a tokenizer's ids are at
// most 2^24 - 1 as well), the depth at most 4096 layers (30 times the deepest published
// model, Llama-3.1-405B's 126) and max_position_embeddings at most 2^30, the bound of every
// length. So derived sizes (BLOOM's 4 * hidden_size, OPT's max_position_embeddings + 2
// learned positions, a matrix's elements) cannot overflow, and no config makes the blob plan
// (one entry per layer) take minutes and gigabytes before the checkpoint is looked at.
constexpr int64_t kMaxDim = int64_t{1} << 24;
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxPositions = int64_t{1} << 30;

int64_t size_limit(const char* key) {
  const std::string k = key;
  if (k == "num_hidden_layers" || k == "n_layer") return kMaxLayers;
  if (k == "max_position_embeddings") return kMaxPositions;
  if (k == "pretraining_tp") return INT_MAX;
  return kMaxDim;
}

// Typed access to one JSON object, every error naming the file and the key. As in
// transformers, an explicit null means "not given" (the default applies).
class Reader {
 public:
  Reader(const json& j, const std::string& source) : j_(j), source_(source) {}

  const json* find(const char* key) const {
    auto it = j_.find(key);
    return it == j_.end() || it->is_null() ? nullptr : &*it;
  }

  int positive_int(const char* key) const {
    const json* v = find(key);
    ZINC_CHECK(v, source_ << ": required key \"" << key << "\" is missing");
    return to_positive_int(key, *v);
  }
  int positive_int(const char* key, int def) const {
    const json* v = find(key);
    return v ? to_positive_int(key, *v) : def;
  }

  bool boolean(const char* key, bool def) const {
    const json* v = find(key);
    if (!v) return def;
    ZINC_CHECK(v->is_boolean(),
               source_ << ": \"" << key << "\" must be true or false, got " << v->dump());
    return v->get<bool>();
  }

  float positive_float(const char* key, float def) const {
    const json* v = find(key);
    if (!v) return def;
    ZINC_CHECK(v->is_number() && v->get<double>() > 0,
               source_ << ": \"" << key << "\" must be a positive number, got " << v->dump());
    return static_cast<float>(v->get<double>());
  }

  std::string string(const char* key, const std::string& def) const {
    const json* v = find(key);
    if (!v) return def;
    ZINC_CHECK(v->is_string(),
               source_ << ": \"" << key << "\" must be a string, got " << v->dump());
    return v->get<std::string>();
  }

  // A token id: a non-negative integer, or null / absent (-> false, *out untouched).
  bool token_id(const char* key, const json& v, int* out) const {
    if (v.is_null()) return false;
    ZINC_CHECK(v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() <= INT_MAX,
               source_ << ": \"" << key << "\" must be a non-negative token id, got " << v.dump());
    *out = static_cast<int>(v.get<int64_t>());
    return true;
  }

  // Reads bos/eos/pad where the object has them; keys it lacks leave `c` unchanged. Every
  // id read must be one of c->vocab_size's (the embedding has no row for another: a pad
  // outside it was embedded past the table, only at the batch shapes that need padding).
  void special_tokens(ModelConfig* c) const {
    if (j_.contains("bos_token_id")) {
      c->bos_token_id = -1;
      if (token_id("bos_token_id", j_["bos_token_id"], &c->bos_token_id))
        in_vocabulary("bos_token_id", c->bos_token_id, *c);
    }
    if (j_.contains("eos_token_id")) {
      const json& v = j_["eos_token_id"];
      c->eos_token_ids.clear();
      if (v.is_array()) {
        for (const json& e : v) {
          int id = -1;
          ZINC_CHECK(token_id("eos_token_id", e, &id),
                     source_ << ": \"eos_token_id\" list holds a null: " << v.dump());
          c->eos_token_ids.push_back(in_vocabulary("eos_token_id", id, *c));
        }
      } else {
        int id = -1;
        if (token_id("eos_token_id", v, &id)) c->eos_token_ids.push_back(in_vocabulary("eos_token_id", id, *c));
      }
    }
    if (j_.contains("pad_token_id")) {
      const json& v = j_["pad_token_id"];
      c->pad_token_id = -1;
      // Some early LLaMA conversions write -1 for "no pad token".
      if (!(v.is_number_integer() && v.get<int64_t>() < 0) && token_id("pad_token_id", v, &c->pad_token_id))
        in_vocabulary("pad_token_id", c->pad_token_id, *c);
    }
  }

  // The family's default for a special token the object does not name must fit too.
  void default_token_fits(const char* key, int id, const ModelConfig& c) const {
    if (j_.contains(key) || id < 0) return;
    ZINC_CHECK(id < c.vocab_size, source_ << ": no \"" << key << "\" is given, and the " << c.model_type
                                          << " default " << id << " is outside the vocabulary [0, " << c.vocab_size
                                          << ") (vocab_size " << c.vocab_size << "): set " << key);
  }

 private:
  int in_vocabulary(const char* key, int id, const ModelConfig& c) const {
    ZINC_CHECK(id < c.vocab_size, source_ << ": \"" << key << "\" is " << id << ", outside the vocabulary [0, "
                                          << c.vocab_size << ") (vocab_size " << c.vocab_size << ")");
    return id;
  }

  int to_positive_int(const char* key, const json& v) const {
    ZINC_CHECK(v.is_number_integer(),
               source_ << ": \"" << key << "\" must be a positive integer, got " << v.dump());
    const int64_t x = v.get<int64_t>();
    ZINC_CHECK(x > 0, source_ << ": \"" << key << "\" must be a positive integer, got " << v.dump());
    const int64_t limit = size_limit(key);
    ZINC_CHECK(x <= limit, source_ << ": \"" << key << "\" is " << v.dump() << ", more than the " << limit
                                   << " zinc accepts (not a real model's size)");
    return static_cast<int>(x);
  }

  const json& j_;
  const std::string& source_;
};

// The names of transformers' ACT2FN (transformers 5.x activations.py) that are one of the
// backends' activations: "gelu" and "gelu_python" are the exact erf GELU; gelu_new,
// gelu_fast, gelu_pytorch_tanh, gelu_python_tanh and gelu_accurate all compute the tanh
// approximation; "swish" is another name for SiLU.
Activation parse_activation(const std::string& name, const char* key, const std::string& source) {
  if (name == "silu" || name == "swish") return Activation::Silu;
  if (name == "relu") return Activation::Relu;
  if (name == "gelu" || name == "gelu_python") return Activation::Gelu;
  if (name == "gelu_new" || name == "gelu_fast" || name == "gelu_pytorch_tanh" || name == "gelu_python_tanh" ||
      name == "gelu_accurate")
    return Activation::GeluTanh;
  ZINC_THROW(source << ": " << key << " '" << name
                    << "' is not supported (supported: relu, silu, swish, gelu, gelu_python, gelu_new, gelu_fast, "
                       "gelu_pytorch_tanh, gelu_python_tanh, gelu_accurate)");
}

// LlamaMLP is down(act(gate(x)) * up(x)); zinc runs it as the fused silu(gate) * up
// (Backend::silu_mul), so another hidden_act would silently run as silu: refused instead.
Activation llama_activation(const Reader& r, const std::string& source) {
  const std::string name = r.string("hidden_act", "silu");
  ZINC_CHECK(name == "silu" || name == "swish",
             source << ": hidden_act '" << name
                    << "' is not supported for llama: zinc's LLaMA MLP is SwiGLU, silu(gate) * up "
                       "(supported: silu, swish)");
  return Activation::Silu;
}

void read_llama(const Reader& r, const std::string& source, ModelConfig* c) {
  c->family = Family::Llama;
  c->vocab_size = r.positive_int("vocab_size");
  c->hidden_size = r.positive_int("hidden_size");
  c->intermediate_size = r.positive_int("intermediate_size");
  c->num_layers = r.positive_int("num_hidden_layers");
  c->num_heads = r.positive_int("num_attention_heads");
  c->num_kv_heads = r.positive_int("num_key_value_heads", c->num_heads);
  if (r.find("head_dim")) {
    c->head_dim = r.positive_int("head_dim");
  } else {
    ZINC_CHECK(c->hidden_size % c->num_heads == 0,
               source << ": hidden_size " << c->hidden_size
                      << " is not divisible by num_attention_heads " << c->num_heads
                      << " (and no head_dim is given)");
    c->head_dim = c->hidden_size / c->num_heads;
  }
  ZINC_CHECK(c->num_heads % c->num_kv_heads == 0,
             source << ": num_attention_heads " << c->num_heads
                    << " is not a multiple of num_key_value_heads " << c->num_kv_heads);
  c->max_position_embeddings = r.positive_int("max_position_embeddings", 2048);
  c->activation = llama_activation(r, source);
  c->rms_norm_eps = r.positive_float("rms_norm_eps", 1e-6f);
  c->rope_theta = r.positive_float("rope_theta", 10000.0f);
  c->attention_bias = r.boolean("attention_bias", false);
  c->mlp_bias = r.boolean("mlp_bias", false);
  c->tie_word_embeddings = r.boolean("tie_word_embeddings", false);

  // {"rope_type": "default"} is what transformers treats as no scaling; anything else
  // (linear, dynamic, yarn, llama3, ...) changes the rotary frequencies.
  if (const json* rs = r.find("rope_scaling")) {
    auto names_default = [&](const char* key) {
      auto it = rs->find(key);
      return it != rs->end() && it->is_string() && it->get<std::string>() == "default";
    };
    const bool plain =
        rs->is_object() && rs->size() == 1 && (names_default("rope_type") || names_default("type"));
    ZINC_CHECK(plain, source << ": rope_scaling " << rs->dump() << " is not supported yet");
  }
  // transformers >= 4.56 may write rope_parameters {"rope_type": ..., "rope_theta": ...}.
  if (const json* rp = r.find("rope_parameters")) {
    ZINC_CHECK(rp->is_object(),
               source << ": rope_parameters must be an object, got " << rp->dump());
    const Reader rr(*rp, source);
    const std::string type = rr.string("rope_type", rr.string("type", "default"));
    ZINC_CHECK(type == "default",
               source << ": rope_parameters " << rp->dump() << " is not supported yet");
    c->rope_theta = rr.positive_float("rope_theta", c->rope_theta);
  }
  // LlamaConfig's defaults.
  c->bos_token_id = 1;
  c->eos_token_ids = {2};
  c->pad_token_id = -1;
}

// BloomConfig: n_layer / n_head (num_hidden_layers / num_attention_heads are aliases),
// hidden_size (n_embed), 4x MLP, GELU with the tanh approximation, ALiBi, tied lm_head.
void read_bloom(const Reader& r, const std::string& source, ModelConfig* c) {
  c->family = Family::Bloom;
  c->vocab_size = r.positive_int("vocab_size");
  c->hidden_size = r.find("hidden_size") ? r.positive_int("hidden_size") : r.positive_int("n_embed");
  c->num_layers = r.find("n_layer") ? r.positive_int("n_layer") : r.positive_int("num_hidden_layers");
  c->num_heads = r.find("n_head") ? r.positive_int("n_head") : r.positive_int("num_attention_heads");
  c->num_kv_heads = c->num_heads;
  ZINC_CHECK(c->hidden_size % c->num_heads == 0,
             source << ": hidden_size " << c->hidden_size << " is not divisible by n_head "
                    << c->num_heads);
  c->head_dim = c->hidden_size / c->num_heads;
  c->intermediate_size = 4 * c->hidden_size;
  c->max_position_embeddings = 0;  // ALiBi: no learned or rotary positions
  c->layer_norm_eps = r.positive_float("layer_norm_epsilon", 1e-5f);
  c->residual_post_layernorm = r.boolean("apply_residual_connection_post_layernorm", false);
  c->activation = Activation::GeluTanh;  // BloomGelu, fixed: BloomConfig has no activation key
  c->tie_word_embeddings = r.boolean("tie_word_embeddings", true);
  ZINC_CHECK(r.positive_int("pretraining_tp", 1) == 1 || !r.boolean("slow_but_exact", false),
             source << ": slow_but_exact tensor-parallel emulation is not supported");
  // BloomConfig's defaults.
  c->bos_token_id = 1;
  c->eos_token_ids = {2};
  c->pad_token_id = 3;
}

void read_opt(const Reader& r, const std::string& source, ModelConfig* c) {
  c->family = Family::Opt;
  c->vocab_size = r.positive_int("vocab_size");
  c->hidden_size = r.positive_int("hidden_size");
  c->intermediate_size = r.positive_int("ffn_dim");
  c->num_layers = r.positive_int("num_hidden_layers");
  c->num_heads = r.positive_int("num_attention_heads");
  c->num_kv_heads = c->num_heads;
  ZINC_CHECK(c->hidden_size % c->num_heads == 0,
             source << ": hidden_size " << c->hidden_size
                    << " is not divisible by num_attention_heads " << c->num_heads);
  c->head_dim = c->hidden_size / c->num_heads;
  c->max_position_embeddings = r.positive_int("max_position_embeddings", 2048);
  c->do_layer_norm_before = r.boolean("do_layer_norm_before", true);
  c->word_embed_proj_dim = r.positive_int("word_embed_proj_dim", c->hidden_size);
  c->enable_bias = r.boolean("enable_bias", true);
  c->layer_norm_elementwise_affine = r.boolean("layer_norm_elementwise_affine", true);
  c->final_layer_norm = c->do_layer_norm_before && !r.boolean("_remove_final_layer_norm", false);
  c->activation =
      parse_activation(r.string("activation_function", "relu"), "activation_function", source);
  c->tie_word_embeddings = r.boolean("tie_word_embeddings", true);
  // OPTConfig's defaults.
  c->bos_token_id = 2;
  c->eos_token_ids = {2};
  c->pad_token_id = 1;
}

// A FIFO, directory or device of that name is refused (read_regular_file), not taken for
// a missing file: a generation_config.json skipped as absent would drop its bos/eos/pad.
std::string read_json_file(const std::string& path) { return read_regular_file(path, "a JSON file"); }

json parse_json_text(const std::string& text, const std::string& source) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    ZINC_THROW(source << ": not valid JSON: " << e.what());
  }
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

}  // namespace

bool ModelConfig::is_eos(int token) const {
  return std::find(eos_token_ids.begin(), eos_token_ids.end(), token) != eos_token_ids.end();
}

ModelConfig parse_config(const json& j, const std::string& source) {
  ZINC_CHECK(j.is_object(), source << ": expected a JSON object, got " << j.type_name());
  const Reader r(j, source);
  ModelConfig c;
  ZINC_CHECK(r.find("model_type"), source << ": \"model_type\" is missing (supported: llama, opt, bloom)");
  c.model_type = r.string("model_type", "");
  if (c.model_type == "llama") {
    read_llama(r, source, &c);
  } else if (c.model_type == "opt") {
    read_opt(r, source, &c);
  } else if (c.model_type == "bloom") {
    read_bloom(r, source, &c);
  } else {
    ZINC_THROW(source << ": model_type '" << c.model_type
                      << "' is not supported (supported: llama, opt, bloom)");
  }
  // Newer transformers write "dtype", older "torch_dtype".
  c.torch_dtype = r.string("torch_dtype", r.string("dtype", ""));
  r.special_tokens(&c);  // explicit values replace the family defaults set above
  r.default_token_fits("bos_token_id", c.bos_token_id, c);
  for (int id : c.eos_token_ids) r.default_token_fits("eos_token_id", id, c);
  r.default_token_fits("pad_token_id", c.pad_token_id, c);
  return c;
}

ModelConfig load_config(const std::string& model_dir) {
  const std::string path = join_path(model_dir, "config.json");
  ZINC_CHECK(path_exists(path),
             path << ": not found (is " << model_dir << " a Hugging Face model directory?)");
  ModelConfig c = parse_config_text(read_json_file(path), path);

  // transformers' generate() takes bos/eos/pad from generation_config.json when present.
  const std::string gen_path = join_path(model_dir, "generation_config.json");
  if (path_exists(gen_path)) apply_generation_config_text(read_json_file(gen_path), gen_path, &c);
  return c;
}

ModelConfig parse_config_text(const std::string& text, const std::string& source) {
  return parse_config(parse_json_text(text, source), source);
}

void apply_generation_config_text(const std::string& text, const std::string& source, ModelConfig* c) {
  apply_generation_config(parse_json_text(text, source), source, c);
}

void apply_generation_config(const json& g, const std::string& source, ModelConfig* c) {
  ZINC_CHECK(g.is_object(), source << ": expected a JSON object, got " << g.type_name());
  Reader(g, source).special_tokens(c);
}

}  // namespace zinc::runtime
