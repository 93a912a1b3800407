// Loading a golden fixture made by tests/reference/make_fixtures.py (transformers):
// the model directory plus reference.safetensors with input_ids / attention_mask [B, T]
// (I64, left-padded), logits [B, T, V] (F32) and the greedy continuation generated [B, 16].
#pragma once

#include <string>
#include <vector>

#include "partition/safetensors.hpp"

namespace zinc::test {

struct Fixture {
  std::string dir;
  int batch = 0, length = 0, vocab = 0, new_tokens = 0;
  std::vector<std::vector<int32_t>> prompts;    // unpadded
  std::vector<uint8_t> mask;                    // [B, T]
  std::vector<float> logits;                    // [B, T, V]
  std::vector<std::vector<int32_t>> generated;  // [B][16], pad after EOS
};

std::string fixture_dir(const std::string& name);
Fixture load_fixture(const std::string& name);

}  // namespace zinc::test
