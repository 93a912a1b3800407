// runtime/model/config: Hugging Face config.json semantics for LLaMA and OPT, the
// generation_config.json override, and the error messages.
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "runtime/model/config.hpp"
#include "runtime/model/weight_provider.hpp"
#include "test_util.hpp"

using nlohmann::json;
using zinc::runtime::Activation;
using zinc::runtime::Family;
using zinc::runtime::load_config;
using zinc::runtime::ModelConfig;
using zinc::runtime::parse_config;
using zinc::test::TempDir;
using zinc::test::write_file;

namespace {

// TinyLlama-1.1B's config.json, trimmed of keys zinc ignores.
json tiny_llama() {
  return json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "bos_token_id": 1, "eos_token_id": 2,
    "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02,
    "intermediate_size": 5632, "max_position_embeddings": 2048, "model_type": "llama",
    "num_attention_heads": 32, "num_hidden_layers": 22, "num_key_value_heads": 4,
    "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_scaling": null, "rope_theta": 10000.0,
    "tie_word_embeddings": false, "torch_dtype": "bfloat16", "use_cache": true,
    "vocab_size": 32000})");
}

// facebook/opt-125m's config.json.
json opt_125m() {
  return json::parse(R"({
    "_remove_final_layer_norm": false, "activation_dropout": 0.0, "activation_function": "relu",
    "architectures": ["OPTForCausalLM"], "attention_dropout": 0.0, "bos_token_id": 2,
    "do_layer_norm_before": true, "dropout": 0.1, "eos_token_id": 2, "ffn_dim": 3072,
    "hidden_size": 768, "init_std": 0.02, "layerdrop": 0.0, "max_position_embeddings": 2048,
    "model_type": "opt", "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 1,
    "prefix": "</s>", "torch_dtype": "float16", "use_cache": true, "vocab_size": 50272,
    "word_embed_proj_dim": 768})");
}

json minimal_llama() {
  return {{"model_type", "llama"},    {"vocab_size", 100},      {"hidden_size", 64},
          {"intermediate_size", 128}, {"num_hidden_layers", 2}, {"num_attention_heads", 4}};
}

json minimal_opt() {
  return {{"model_type", "opt"}, {"vocab_size", 100},      {"hidden_size", 64},
          {"ffn_dim", 256},      {"num_hidden_layers", 2}, {"num_attention_heads", 4}};
}

}  // namespace

TEST_CASE("config: TinyLlama", "[config]") {
  const ModelConfig c = parse_config(tiny_llama(), "config.json");
  CHECK(c.family == Family::Llama);
  CHECK(c.model_type == "llama");
  CHECK(c.vocab_size == 32000);
  CHECK(c.hidden_size == 2048);
  CHECK(c.intermediate_size == 5632);
  CHECK(c.num_layers == 22);
  CHECK(c.num_heads == 32);
  CHECK(c.num_kv_heads == 4);
  CHECK(c.head_dim == 64);
  CHECK(c.max_position_embeddings == 2048);
  CHECK(c.activation == Activation::Silu);
  CHECK(c.rms_norm_eps == 1e-5f);
  CHECK(c.rope_theta == 10000.0f);
  CHECK_FALSE(c.tie_word_embeddings);
  CHECK_FALSE(c.attention_bias);
  CHECK_FALSE(c.mlp_bias);
  CHECK(c.torch_dtype == "bfloat16");
  CHECK(c.bos_token_id == 1);
  CHECK(c.eos_token_ids == std::vector<int>{2});
  CHECK(c.pad_token_id == -1);
  CHECK(c.is_eos(2));
  CHECK_FALSE(c.is_eos(1));
}

TEST_CASE("config: LLaMA defaults follow LlamaConfig", "[config]") {
  const ModelConfig c = parse_config(minimal_llama(), "config.json");
  CHECK(c.num_kv_heads == 4);
  CHECK(c.head_dim == 16);
  CHECK(c.rms_norm_eps == 1e-6f);
  CHECK(c.rope_theta == 10000.0f);
  CHECK(c.max_position_embeddings == 2048);
  CHECK(c.activation == Activation::Silu);
  CHECK_FALSE(c.tie_word_embeddings);
  CHECK(c.torch_dtype.empty());
  CHECK(c.bos_token_id == 1);  // LlamaConfig(bos_token_id=1, eos_token_id=2, pad_token_id=None)
  CHECK(c.eos_token_ids == std::vector<int>{2});
  CHECK(c.pad_token_id == -1);
}

TEST_CASE("config: LLaMA options", "[config]") {
  json j = minimal_llama();
  SECTION("explicit head_dim, GQA, biases, eos list, tied embeddings") {
    j["vocab_size"] = 128256;  // LLaMA-3's ids below
    j["head_dim"] = 32;  // heads * head_dim need not equal hidden_size
    j["num_key_value_heads"] = 2;
    j["attention_bias"] = true;
    j["mlp_bias"] = true;
    j["tie_word_embeddings"] = true;
    j["rope_theta"] = 500000.0;
    j["eos_token_id"] = {128001, 128008, 128009};
    j["bos_token_id"] = 128000;
    j["pad_token_id"] = nullptr;
    j["hidden_act"] = "swish";
    const ModelConfig c = parse_config(j, "config.json");
    CHECK(c.head_dim == 32);
    CHECK(c.num_kv_heads == 2);
    CHECK(c.attention_bias);
    CHECK(c.mlp_bias);
    CHECK(c.tie_word_embeddings);
    CHECK(c.rope_theta == 500000.0f);
    CHECK(c.bos_token_id == 128000);
    CHECK(c.pad_token_id == -1);
    CHECK(c.activation == Activation::Silu);
    CHECK(c.is_eos(128008));
    CHECK(c.is_eos(128009));
    CHECK_FALSE(c.is_eos(2));
  }
  SECTION("null optional keys take their defaults") {
    j["num_key_value_heads"] = nullptr;
    j["head_dim"] = nullptr;
    const ModelConfig c = parse_config(j, "config.json");
    CHECK(c.num_kv_heads == 4);
    CHECK(c.head_dim == 16);
  }
  SECTION("rope_scaling") {
    j["rope_scaling"] = nullptr;
    CHECK_NOTHROW(parse_config(j, "config.json"));
    j["rope_scaling"] = {{"rope_type", "default"}};
    CHECK_NOTHROW(parse_config(j, "config.json"));
    j["rope_scaling"] = {{"type", "linear"}, {"factor", 2}};
    REQUIRE_THROWS_WITH(parse_config(j, "config.json"),
                        ZINC_CONTAINS("config.json: rope_scaling {\"factor\":2,\"type\":\"linear\"}"
                                      " is not supported yet"));
    j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}};
    REQUIRE_THROWS_WITH(parse_config(j, "config.json"), ZINC_CONTAINS("is not supported yet"));
  }
  SECTION("heads not a multiple of kv heads") {
    j["num_key_value_heads"] = 3;
    REQUIRE_THROWS_WITH(parse_config(j, "config.json"),
                        ZINC_CONTAINS("config.json: num_attention_heads 4 is not a multiple of "
                                      "num_key_value_heads 3"));
  }
  SECTION("hidden not divisible by heads without head_dim") {
    j["num_attention_heads"] = 5;
    j["num_key_value_heads"] = 5;
    REQUIRE_THROWS_WITH(parse_config(j, "config.json"),
                        ZINC_CONTAINS("hidden_size 64 is not divisible by num_attention_heads 5"));
  }
}

// transformers runs the activation a config names (LlamaMLP: act_fn(gate_proj(x)) *
// up_proj(x); OPT: act(fc1(x)); BLOOM: BloomGelu whatever the config says). zinc's LLaMA
// MLP is the fused silu(gate) * up, so any other hidden_act is refused rather than run as
// silu (which gave silently wrong tokens).
TEST_CASE("config: each family runs the activation its config names or refuses it", "[config]") {
  SECTION("LLaMA: silu and its alias swish; anything else names the file and the key") {
    json j = minimal_llama();
    for (const char* act : {"silu", "swish"}) {
      j["hidden_act"] = act;
      CHECK(parse_config(j, "m/config.json").activation == Activation::Silu);
    }
    for (const char* act : {"gelu", "relu", "gelu_new", "gelu_pytorch_tanh", "quick_gelu", "tanh"}) {
      j["hidden_act"] = act;
      REQUIRE_THROWS_WITH(parse_config(j, "m/config.json"),
                          ZINC_CONTAINS(std::string("m/config.json: hidden_act '") + act +
                                        "' is not supported for llama") &&
                              ZINC_CONTAINS("supported: silu, swish"));
    }
  }
  SECTION("OPT: every name transformers' ACT2FN maps to relu, silu, exact or tanh GELU") {
    json j = minimal_opt();
    const std::pair<const char*, Activation> names[] = {
        {"relu", Activation::Relu},
        {"silu", Activation::Silu},
        {"swish", Activation::Silu},
        {"gelu", Activation::Gelu},
        {"gelu_python", Activation::Gelu},
        {"gelu_new", Activation::GeluTanh},
        {"gelu_fast", Activation::GeluTanh},
        {"gelu_pytorch_tanh", Activation::GeluTanh},
        {"gelu_python_tanh", Activation::GeluTanh},
        {"gelu_accurate", Activation::GeluTanh}};
    for (const auto& [name, act] : names) {
      j["activation_function"] = name;
      INFO(name);
      CHECK(parse_config(j, "m/config.json").activation == act);
    }
    for (const char* act : {"quick_gelu", "gelu_10", "relu6", "tanh", "mish"}) {
      j["activation_function"] = act;
      REQUIRE_THROWS_WITH(parse_config(j, "m/config.json"),
                          ZINC_CONTAINS(std::string("m/config.json: activation_function '") + act +
                                        "' is not supported"));
    }
  }
  SECTION("BLOOM: always the tanh GELU, as transformers (BloomConfig has no activation key)") {
    json j = {{"model_type", "bloom"}, {"vocab_size", 100}, {"hidden_size", 64},
              {"n_layer", 2},          {"n_head", 4},       {"hidden_act", "relu"}};
    CHECK(parse_config(j, "m/config.json").activation == Activation::GeluTanh);
  }
}

TEST_CASE("config: OPT-125m", "[config]") {
  const ModelConfig c = parse_config(opt_125m(), "config.json");
  CHECK(c.family == Family::Opt);
  CHECK(c.model_type == "opt");
  CHECK(c.vocab_size == 50272);
  CHECK(c.hidden_size == 768);
  CHECK(c.intermediate_size == 3072);
  CHECK(c.num_layers == 12);
  CHECK(c.num_heads == 12);
  CHECK(c.num_kv_heads == 12);
  CHECK(c.head_dim == 64);
  CHECK(c.max_position_embeddings == 2048);
  CHECK(c.activation == Activation::Relu);
  CHECK(c.do_layer_norm_before);
  CHECK(c.word_embed_proj_dim == 768);
  CHECK(c.enable_bias);
  CHECK(c.layer_norm_elementwise_affine);
  CHECK(c.final_layer_norm);
  CHECK(c.tie_word_embeddings);  // PretrainedConfig's default, which OPT keeps
  CHECK(c.layer_norm_eps == 1e-5f);
  CHECK(c.torch_dtype == "float16");
  CHECK(c.bos_token_id == 2);
  CHECK(c.eos_token_ids == std::vector<int>{2});
  CHECK(c.pad_token_id == 1);
}

TEST_CASE("config: OPT options and defaults", "[config]") {
  json j = minimal_opt();
  SECTION("defaults follow OPTConfig") {
    const ModelConfig c = parse_config(j, "config.json");
    CHECK(c.max_position_embeddings == 2048);
    CHECK(c.word_embed_proj_dim == 64);
    CHECK(c.do_layer_norm_before);
    CHECK(c.final_layer_norm);
    CHECK(c.enable_bias);
    CHECK(c.activation == Activation::Relu);
    CHECK(c.tie_word_embeddings);
    CHECK(c.bos_token_id == 2);
    CHECK(c.pad_token_id == 1);
  }
  SECTION("opt-350m: post-LN, projected embeddings, no final layer norm") {
    j["do_layer_norm_before"] = false;
    j["word_embed_proj_dim"] = 32;
    const ModelConfig c = parse_config(j, "config.json");
    CHECK_FALSE(c.do_layer_norm_before);
    CHECK(c.word_embed_proj_dim == 32);
    CHECK_FALSE(c.final_layer_norm);
  }
  SECTION("_remove_final_layer_norm, no bias, no affine, untied, gelu") {
    j["_remove_final_layer_norm"] = true;
    j["enable_bias"] = false;
    j["layer_norm_elementwise_affine"] = false;
    j["tie_word_embeddings"] = false;
    j["activation_function"] = "gelu";
    const ModelConfig c = parse_config(j, "config.json");
    CHECK(c.do_layer_norm_before);
    CHECK_FALSE(c.final_layer_norm);
    CHECK_FALSE(c.enable_bias);
    CHECK_FALSE(c.layer_norm_elementwise_affine);
    CHECK_FALSE(c.tie_word_embeddings);
    CHECK(c.activation == Activation::Gelu);
  }
  SECTION("hidden not divisible by heads") {
    j["num_attention_heads"] = 5;
    REQUIRE_THROWS_WITH(parse_config(j, "config.json"),
                        ZINC_CONTAINS("config.json: hidden_size 64 is not divisible by "
                                      "num_attention_heads 5"));
  }
  SECTION("ffn_dim is required") {
    j.erase("ffn_dim");
    REQUIRE_THROWS_WITH(parse_config(j, "config.json"),
                        ZINC_CONTAINS("config.json: required key \"ffn_dim\" is missing"));
  }
}

TEST_CASE("config: bad values name the file and the key", "[config]") {
  json j = minimal_llama();
  const std::string src = "/models/x/config.json";
  SECTION("unsupported and missing model_type") {
    j["model_type"] = "gpt2";
    REQUIRE_THROWS_WITH(parse_config(j, "config.json"),
                        ZINC_CONTAINS("config.json: model_type 'gpt2' is not supported "
                                      "(supported: llama, opt, bloom)"));
    j.erase("model_type");
    REQUIRE_THROWS_WITH(parse_config(j, src), ZINC_CONTAINS(src + ": \"model_type\" is missing"));
  }
  SECTION("missing required key") {
    j.erase("vocab_size");
    REQUIRE_THROWS_WITH(parse_config(j, src),
                        ZINC_CONTAINS(src + ": required key \"vocab_size\" is missing"));
  }
  SECTION("string where an integer belongs") {
    j["hidden_size"] = "abc";
    REQUIRE_THROWS_WITH(parse_config(j, src),
                        ZINC_CONTAINS(src + ": \"hidden_size\" must be a positive integer, "
                                            "got \"abc\""));
  }
  SECTION("zero, negative and fractional sizes") {
    j["num_hidden_layers"] = 0;
    REQUIRE_THROWS_WITH(parse_config(j, src),
                        ZINC_CONTAINS("\"num_hidden_layers\" must be a positive integer, got 0"));
    j["num_hidden_layers"] = -3;
    REQUIRE_THROWS_WITH(parse_config(j, src), ZINC_CONTAINS("got -3"));
    j["num_hidden_layers"] = 2.5;
    REQUIRE_THROWS_WITH(parse_config(j, src), ZINC_CONTAINS("got 2.5"));
    j["num_hidden_layers"] = 1LL << 40;
    REQUIRE_THROWS_WITH(parse_config(j, src), ZINC_CONTAINS("num_hidden_layers"));
  }
  SECTION("wrong types for booleans, floats, strings and token ids") {
    j["tie_word_embeddings"] = 1;
    REQUIRE_THROWS_WITH(parse_config(j, src),
                        ZINC_CONTAINS(src + ": \"tie_word_embeddings\" must be true or false"));
    j.erase("tie_word_embeddings");
    j["rms_norm_eps"] = "1e-5";
    REQUIRE_THROWS_WITH(parse_config(j, src),
                        ZINC_CONTAINS("\"rms_norm_eps\" must be a positive number"));
    j.erase("rms_norm_eps");
    j["hidden_act"] = 3;
    REQUIRE_THROWS_WITH(parse_config(j, src), ZINC_CONTAINS("\"hidden_act\" must be a string"));
    j.erase("hidden_act");
    j["eos_token_id"] = "</s>";
    REQUIRE_THROWS_WITH(parse_config(j, src),
                        ZINC_CONTAINS(src + ": \"eos_token_id\" must be a non-negative token id"));
  }
  SECTION("not an object") {
    REQUIRE_THROWS_WITH(parse_config(json::array(), src),
                        ZINC_CONTAINS(src + ": expected a JSON object"));
  }
}

TEST_CASE("config: load_config reads the directory", "[config]") {
  TempDir dir;
  const std::string cfg = dir.file("config.json");
  SECTION("no config.json") {
    REQUIRE_THROWS_WITH(
        load_config(dir.path()),
        ZINC_CONTAINS(cfg + ": not found (is " + dir.path() + " a Hugging Face model directory?)"));
  }
  SECTION("malformed JSON") {
    write_file(cfg, "{\"model_type\": \"llama\",");
    REQUIRE_THROWS_WITH(load_config(dir.path()),
                        ZINC_CONTAINS(cfg + ": not valid JSON") && ZINC_CONTAINS("parse error"));
  }
  SECTION("config.json alone") {
    write_file(cfg, opt_125m().dump());
    const ModelConfig c = load_config(dir.path());
    CHECK(c.family == Family::Opt);
    CHECK(c.eos_token_ids == std::vector<int>{2});
  }
  SECTION("generation_config.json overrides the ids it contains") {
    json j = tiny_llama();
    j["pad_token_id"] = 0;
    write_file(cfg, j.dump());
    write_file(dir.file("generation_config.json"),
               R"({"bos_token_id": 5, "eos_token_id": [2, 7], "max_length": 2048})");
    const ModelConfig c = load_config(dir.path() + "/");
    CHECK(c.bos_token_id == 5);
    CHECK(c.eos_token_ids == std::vector<int>{2, 7});
    CHECK(c.is_eos(7));
    CHECK(c.pad_token_id == 0);  // not in generation_config.json: kept from config.json
  }
  SECTION("generation_config.json with a null pad id") {
    json j = opt_125m();
    write_file(cfg, j.dump());
    write_file(dir.file("generation_config.json"), R"({"pad_token_id": null})");
    const ModelConfig c = load_config(dir.path());
    CHECK(c.pad_token_id == -1);
    CHECK(c.bos_token_id == 2);
  }
  SECTION("malformed generation_config.json names that file") {
    write_file(cfg, tiny_llama().dump());
    write_file(dir.file("generation_config.json"), "{oops}");
    REQUIRE_THROWS_WITH(load_config(dir.path()),
                        ZINC_CONTAINS(dir.file("generation_config.json") + ": not valid JSON"));
  }
  SECTION("bad value in generation_config.json names that file") {
    write_file(cfg, tiny_llama().dump());
    write_file(dir.file("generation_config.json"), R"({"eos_token_id": [2, "x"]})");
    REQUIRE_THROWS_WITH(load_config(dir.path()),
                        ZINC_CONTAINS(dir.file("generation_config.json") + ": \"eos_token_id\""));
  }
  SECTION("errors inside config.json carry its path") {
    json j = tiny_llama();
    j["model_type"] = "mistral";
    write_file(cfg, j.dump());
    REQUIRE_THROWS_WITH(load_config(dir.path()),
                        ZINC_CONTAINS(cfg + ": model_type 'mistral' is not supported"));
  }
}

// bos/eos/pad ids the embedding has no row for are refused when the config is read (on
// every rank, before any work), naming the file and the key: a pad_token_id outside the
// vocabulary was embedded past the table, and only at batch shapes that needed padding.
TEST_CASE("config: special token ids must be inside the vocabulary", "[config]") {
  const std::string src = "m/config.json";
  json j = minimal_llama();  // vocab_size 100
  SECTION("each key of config.json, one id or a list") {
    for (const char* key : {"bos_token_id", "eos_token_id", "pad_token_id"}) {
      json bad = j;
      bad[key] = 100;
      INFO(key);
      REQUIRE_THROWS_WITH(parse_config(bad, src),
                          ZINC_CONTAINS(src + ": \"" + key + "\" is 100, outside the vocabulary [0, 100) "
                                              "(vocab_size 100)"));
      bad[key] = 99;
      CHECK_NOTHROW(parse_config(bad, src));
    }
    j["eos_token_id"] = {2, 1000};
    REQUIRE_THROWS_WITH(parse_config(j, src), ZINC_CONTAINS(src + ": \"eos_token_id\" is 1000, outside"));
  }
  SECTION("a family default that does not fit names the key and says it is the default") {
    json bloom = {{"model_type", "bloom"}, {"vocab_size", 3}, {"hidden_size", 64}, {"n_layer", 2}, {"n_head", 4},
                  {"bos_token_id", 0},     {"eos_token_id", 1}};
    REQUIRE_THROWS_WITH(parse_config(bloom, src),
                        ZINC_CONTAINS(src + ": no \"pad_token_id\" is given, and the bloom default 3 is outside "
                                            "the vocabulary [0, 3) (vocab_size 3)"));
    bloom["pad_token_id"] = nullptr;  // explicitly none: nothing to check
    CHECK(parse_config(bloom, src).pad_token_id == -1);
  }
  SECTION("generation_config.json is checked against config.json's vocabulary, naming itself") {
    TempDir dir;
    write_file(dir.file("config.json"), j.dump());
    write_file(dir.file("generation_config.json"), R"({"pad_token_id": 250})");
    REQUIRE_THROWS_WITH(load_config(dir.path()),
                        ZINC_CONTAINS(dir.file("generation_config.json") +
                                      ": \"pad_token_id\" is 250, outside the vocabulary [0, 100)"));
  }
}

// Found with tests/fuzz/fuzz_config: sizes no real model has overflowed derived sizes (UBSan:
// BLOOM's 4 * hidden_size, OPT's max_position_embeddings + 2 positions, both int) or made the
// blob plan, one entry per layer, run for minutes and gigabytes before the checkpoint was
// opened (num_hidden_layers 2^31 - 1). They are refused when the config is read.
TEST_CASE("config: sizes beyond any real model's are refused, naming the key", "[config]") {
  const std::string src = "fuzz/config.json";
  json opt = minimal_opt();
  opt["max_position_embeddings"] = 2147483647;
  REQUIRE_THROWS_WITH(zinc::runtime::parse_config_text(opt.dump(), src),
                      ZINC_CONTAINS(src + ": \"max_position_embeddings\" is 2147483647, more than the 1073741824"));
  json llama = minimal_llama();
  llama["num_hidden_layers"] = 2147483647;
  REQUIRE_THROWS_WITH(zinc::runtime::parse_config_text(llama.dump(), src),
                      ZINC_CONTAINS(src + ": \"num_hidden_layers\" is 2147483647, more than the 4096"));
  const json bloom = {{"model_type", "bloom"}, {"vocab_size", 320}, {"hidden_size", 1073741824},
                      {"n_head", 1},           {"n_layer", 2}};
  REQUIRE_THROWS_WITH(zinc::runtime::parse_config_text(bloom.dump(), src),
                      ZINC_CONTAINS(src + ": \"hidden_size\" is 1073741824, more than the 16777216"));
  for (const char* key : {"vocab_size", "hidden_size", "intermediate_size", "num_attention_heads"}) {
    json j = minimal_llama();
    j[key] = (1 << 24) + 1;
    REQUIRE_THROWS_WITH(parse_config(j, src), ZINC_CONTAINS(std::string("\"") + key + "\" is 16777217"));
  }
  // The limits themselves are accepted, and the plan of the deepest config is quick to make.
  llama = minimal_llama();
  llama["num_hidden_layers"] = 4096;
  llama["vocab_size"] = 1 << 24;
  llama["max_position_embeddings"] = 1 << 30;
  const ModelConfig c = parse_config(llama, src);
  CHECK(zinc::runtime::blob_plan(c).size() == 4098);
  opt = minimal_opt();
  opt["max_position_embeddings"] = 1 << 30;
  CHECK(zinc::runtime::blob_plan(parse_config(opt, src)).front().params.size() == 2);
}
