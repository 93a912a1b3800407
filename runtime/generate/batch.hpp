// A left-padded batch laid out exactly as transformers' generate() lays it out:
// ids [B, T] with pads on the left, attention mask [B, T], and position ids
// pos = cumsum(mask) - 1 for real tokens (0 for pads, as transformers 5.x; no real token
// ever sees a pad, so the value cannot change a result).
#pragma once

#include <cstdint>
#include <vector>

namespace zinc::runtime {

struct PaddedBatch {
  int batch = 0;                 // B
  int length = 0;                // T = longest prompt
  std::vector<int32_t> ids;      // [B, T]
  std::vector<uint8_t> mask;     // [B, T]
  std::vector<int32_t> positions;// [B, T]
  std::vector<int32_t> next_position;  // [B]: position id of each sequence's next token
};

PaddedBatch make_padded_batch(const std::vector<const std::vector<int32_t>*>& prompts,
                              int32_t pad_id);

}  // namespace zinc::runtime
