// Loading a model for generation from any of its three sources, as `--model` names them:
//   DIR                 a Hugging Face directory; each rank quantizes only its own slice
//                       of every blob (quantize-at-load)
//   FILE.zinc.h5        a zinc store written by `zinc convert` (any world size reads it)
//   dummy:SHAPE         random weights of a built-in shape, made by each rank in its shard
// With one rank, an HF directory and --quant none, weights are simply resident
// (ResidentWeights); everything else goes through ZeRO-3 shards (ZeroWeights).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "collectives/communicator.hpp"
#include "partition/store.hpp"
#include "runtime/model/model.hpp"
#include "runtime/model/zero_weights.hpp"
#include "offload/uring_file.hpp"

namespace zinc::runtime {

struct LoadOptions {
  std::string model;
  quant::QuantFormat quant = quant::QuantFormat::None;
  bool quant_given = false;      // --quant was on the command line (a store must agree)
  int group_size = 64;
  bool group_size_given = false;
  uint64_t dummy_seed = 1234;
  bool force_zero = false;       // ZeRO path even when resident would do (tests)
  Tier offload = Tier::Cpu;      // --offload none|cpu|nvme: Device (all resident), Cpu, Nvme
                                 // (nvme: a zinc store only)
  offload::UringOptions nvme;    // --nvme-queue-depth, --nvme-block-size
  // The weight pipeline: prefetch depth, residency policy and the planner's KV/activation
  // sizes (the caller's); tier and schedule are set by the loader.
  ZeroOptions pipeline;
  // The largest step the run will take, for the planner's minimum (0 = not counted):
  // sequences per forward, padded prompt length, KV capacity, and whether the KV cache
  // is on the device.
  int step_batch = 0, step_prompt_len = 0, step_t_max = 0;
  int micro_batch = 0;  // sequences per micro-batch of a forward (workspace.hpp; 0 = auto)
  bool kv_on_device = true;
};

struct LoadedModel {
  std::unique_ptr<Model> model;
  const ZeroWeights* zero = nullptr;  // owned by model; null when weights are resident
  std::shared_ptr<offload::UringFile> nvme;  // the store opened for O_DIRECT (Tier::Nvme)
  std::string source;                 // "hf", "store", "dummy"
  quant::QuantFormat quant = quant::QuantFormat::None;
  int group_size = 0;
};

LoadedModel load_for_generation(const LoadOptions& opts, Backend& backend,
                                collectives::Communicator& comm);

// What --model names, without reading any weights (the run planner's input): its config
// and the weight format it will have (a store's own; otherwise opts.quant / group_size).
struct ModelInfo {
  ModelConfig config;
  bool store = false;
  quant::QuantFormat quant = quant::QuantFormat::None;
  int group_size = 64;
};
ModelInfo model_info(const LoadOptions& opts);

}  // namespace zinc::runtime
