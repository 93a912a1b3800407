// Built-in architecture shapes for `--model dummy:SHAPE`: the real configs of public
// models (OPT 1.3B..175B, LLaMA-2 7B/13B/70B, BLOOM-176B), with random weights that each rank
// generates directly into its own shard (partition::fill_dummy_slice), so a 175B shape
// never exists whole in one process. "tiny-llama", "tiny-opt" and "tiny-bloom" are small shapes for tests.
#pragma once

#include <string>
#include <vector>

#include "runtime/model/config.hpp"

namespace zinc::runtime {

// Throws listing the known shapes when `shape` is not one of them.
ModelConfig dummy_config(const std::string& shape);
// The shape as a Hugging Face config.json that parse_config reads back as dummy_config's
// (what `zinc convert --model dummy:SHAPE` stores, so the store loads like a checkpoint).
std::string dummy_config_json(const std::string& shape);
std::vector<std::string> dummy_shapes();

}  // namespace zinc::runtime
