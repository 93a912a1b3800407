// Workspace: the activation tensors of a forward step, carved from one device
// reservation made once per run (llm.c style): every slot has a fixed width (from the
// config) and room for the run's largest step; get() hands out a view and refuses a
// step larger than the reservation instead of growing mid-run.
#pragma once

#include <cstddef>
#include <cstdint>

#include "runtime/backend/backend.hpp"
#include "runtime/model/config.hpp"

namespace zinc::runtime {

// The slots, for all families (a family that does not use one still reserves it: the
// largest is [n, F], so the waste is small).
enum class Slot {
  Q, K, V, Attn, Qkv,           // attention: [n, H*hd], [n, KVH*hd] x2, [n, H*hd], fused [n, (H+2KVH)*hd]
  MlpA, MlpB,                   // [n, F]
  Hidden, Normed, Branch, Last, // [n, D]: residual stream, normed input, branch output, head rows
  Embed, Pos, ProjOut,          // OPT: [n, E] word embeddings, [n, D] positions, [n, E] project_out
  Ids, Positions,               // I32 [n]
  Count
};

class Workspace {
 public:
  Workspace(Backend& backend, const ModelConfig& config) : backend_(backend), config_(config) {}
  // One reservation for steps of up to `rows` token rows (replaces an earlier one).
  void reserve(int64_t rows);
  int64_t rows() const { return rows_; }
  // A [rows, cols] view of slot s (I32 for Ids/Positions, else the compute dtype);
  // throws when it exceeds the slot (the step is larger than reserve() allowed).
  Tensor get(Slot s, int64_t rows, int64_t cols) const;

  // Device bytes of a reservation for `rows` rows (the placement planner's share).
  static size_t bytes(const ModelConfig& c, int64_t rows, quant::DType t);

 private:
  Backend& backend_;
  const ModelConfig& config_;
  int64_t rows_ = 0;
  DeviceBuffer buffer_;
  size_t offset_[static_cast<int>(Slot::Count)] = {};
  int64_t width_[static_cast<int>(Slot::Count)] = {};
};

// The device bytes one step of B sequences x T new tokens needs beyond the weights and
// the KV cache: the workspace and the logits of the last rows.
size_t activation_bytes(const ModelConfig& c, int batch, int tokens, quant::DType t);

}  // namespace zinc::runtime
