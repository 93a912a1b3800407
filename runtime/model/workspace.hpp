// Workspace: the activation tensors of a forward step, carved from one device
// reservation made once per run (llm.c style): every slot has a fixed width (from the
// config) and room for the run's largest step; get() hands out a view and refuses a
// step larger than the reservation instead of growing mid-run.
//
// Micro-batches: a forward runs each layer over the batch in micro-batches of sequences
// while that layer's weights are loaded once (FlexGen's block schedule), so only the
// step-wide slots (the residual stream, the ids and positions, the head's rows) hold every
// row of the step; the others hold one micro-batch's rows. That bounds a big prefill's
// activations (LLaMA-2-70B, 256 x 512 tokens in fp16: 35 GiB in one piece, 7.9 GiB in micro-batches
// of 16384 rows) and leaves the budget to resident weights.
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

// Token rows per micro-batch when --micro-batch is 0 (auto): large enough that the GEMMs
// run at full speed (n = 16384 rows), small enough to bound the activations.
constexpr int64_t kAutoMicroBatchRows = 16384;

// Sequences per micro-batch of a step of `batch` sequences x `tokens` new tokens:
// `requested` (clamped to 1..batch), or for 0 the most that keep a micro-batch within
// kAutoMicroBatchRows rows (at least 1; a decode step of up to 16384 sequences is one).
int micro_batch_size(int batch, int tokens, int requested);

// Micro-batches of a host-KV decode step whose lanes overlap (decoder_lanes.cpp) when
// --micro-batch is 0: two lanes are enough for the CPU to always have one to attend.
constexpr int kHostKvLanes = 2;
// Gather slots such a decode needs to keep the weight stream going: lane 0 holds layer
// l + 1 while the last lane still computes l, so with two slots the copy of l + 2 cannot
// start before l is done and the stream stalls behind the compute every layer. One slot
// more keeps a blob in flight (the default --prefetch-depth of host-KV runs with lanes:
// cli/run_setup.cpp, and the planner's).
constexpr int kHostKvLaneSlots = kHostKvLanes + 1;

// The rows a run's steps need: every row of the largest step (B x T) and the rows of its
// largest micro-batch (over the prefill and the decode steps, and at least B: the head's
// rows use the micro-batch slots).
struct WorkspaceRows {
  int64_t step = 0, micro = 0;
};
WorkspaceRows workspace_rows(int batch, int tokens, int micro_batch);

class Workspace {
 public:
  Workspace(Backend& backend, const ModelConfig& config) : backend_(backend), config_(config) {}
  // One reservation (replaces an earlier one).
  void reserve(WorkspaceRows rows);
  const WorkspaceRows& rows() const { return rows_; }
  // A [rows, cols] view of slot s (I32 for Ids/Positions, else the compute dtype);
  // throws when it exceeds the slot (the step is larger than reserve() allowed).
  Tensor get(Slot s, int64_t rows, int64_t cols) const;

  // Device bytes of a reservation (the placement planner's share).
  static size_t bytes(const ModelConfig& c, WorkspaceRows rows, quant::DType t);

 private:
  Backend& backend_;
  const ModelConfig& config_;
  WorkspaceRows rows_;
  DeviceBuffer buffer_;
  size_t offset_[static_cast<int>(Slot::Count)] = {};
  int64_t capacity_[static_cast<int>(Slot::Count)] = {};  // elements
};

// The device bytes one step of B sequences x T new tokens needs beyond the weights and
// the KV cache: the workspace (micro-batches of `micro_batch` sequences, 0 = auto) and
// the logits of the last rows.
size_t activation_bytes(const ModelConfig& c, int batch, int tokens, int micro_batch, quant::DType t);

}  // namespace zinc::runtime
