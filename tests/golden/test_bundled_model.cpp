// The bundled trained model (examples/models/austen-melville-6m) against transformers:
// text -> ids with zinc's tokenizer, the greedy 32-token continuation of a left-padded
// batch of 4 prompts, and the decoded text, as examples/train/make_reference_outputs.py
// recorded them (reference_greedy.json).
#include <fstream>

#include <nlohmann/json.hpp>

#include "catch.hpp"
#include "runtime/backend/cpu/cpu_backend.hpp"
#include "runtime/generate/generator.hpp"
#include "runtime/tokenizer/tokenizer.hpp"

using namespace zinc;

TEST_CASE("bundled model: tokens and text equal transformers' greedy generate()", "[golden][bundled]") {
  const std::string dir = std::string(ZINC_SOURCE_DIR) + "/examples/models/austen-melville-6m";
  std::ifstream f(dir + "/reference_greedy.json");
  REQUIRE(f.good());
  const nlohmann::json ref = nlohmann::json::parse(f);
  auto tok = runtime::Tokenizer::load(dir);
  runtime::CpuBackend be;
  auto model = runtime::load_model(dir, be);
  std::vector<runtime::Prompt> prompts;
  for (const auto& p : ref["prompts"]) {
    const auto ids = tok->encode(p["text"].get<std::string>(), true);
    CHECK(ids == p["ids"].get<std::vector<int32_t>>());
    prompts.push_back({ids, prompts.size()});
  }
  REQUIRE(prompts.size() >= 4);
  runtime::GenerationOptions g;
  g.max_new_tokens = ref["max_new_tokens"].get<int>();
  const auto r = runtime::generate(*model, be, prompts, g);
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto& p = ref["prompts"][i];
    INFO("prompt " << i << ": " << p["text"].get<std::string>());
    CHECK(r.tokens[i] == p["generated_ids"].get<std::vector<int32_t>>());
    CHECK(tok->decode(r.tokens[i], true) == p["generated_text"].get<std::string>());
  }
}
