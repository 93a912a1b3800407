// Model: one decoder-only architecture (llama.cpp, opt.cpp, bloom.cpp) written once
// against Backend, on the decoder skeleton (decoder.hpp).
//
// A forward step takes B sequences with tq new tokens each, laid out as transformers'
// generate() lays out a left-padded batch: token i of sequence b is row b*tq + i and goes
// to KV-cache index t0 + i. Prefill is one step with tq = T (the padded prompt length,
// t0 = 0); each decode step has tq = 1 and t0 = T + s.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "partition/safetensors.hpp"
#include "runtime/backend/backend.hpp"
#include "runtime/backend/kv_cache.hpp"
#include "runtime/common/lane_turns.hpp"
#include "runtime/model/config.hpp"
#include "runtime/model/weight_provider.hpp"

namespace zinc::runtime {

struct StepInputs {
  int batch = 0;                      // B
  int tq = 0;                         // new tokens per sequence
  int t0 = 0;                         // KV-cache index of the first new token
  // Host [B*tq] arrays, uploaded on the compute stream by forward(): pinned memory that
  // the caller leaves unchanged until a later host wait on that stream (Device's rule).
  const int32_t* ids = nullptr;       // token ids (pads included; checked against V by the caller)
  const int32_t* positions = nullptr; // position ids: cumsum(mask) - 1 (pads: 0)
  int first_seq = 0;                  // KV-cache index of sequence 0 (a micro-batch's offset)
  // Decoder-internal: the micro-batch's lane when a host-KV decode step runs its
  // micro-batches as lanes (common/lane_turns.hpp); none otherwise.
  LaneTurn lane{};
};

// How a forward pass runs its batch (Model::reserve).
enum class KvOverlap {
  Auto,  // On, except on the CPU backend (where the "GPU work" is host work too)
  On,    // host-KV decode steps run their micro-batches as lanes (decoder_lanes.cpp)
  Off,   // micro-batches one after another
};
struct ForwardOptions {
  int micro_batch = 0;  // sequences per micro-batch (0 = auto: workspace.hpp's micro_batch_size)
  KvOverlap kv_overlap = KvOverlap::Auto;
};
KvOverlap parse_kv_overlap(const std::string& name);  // "auto", "on", "off"

class Model {
 public:
  virtual ~Model() = default;
  const ModelConfig& config() const { return config_; }
  // Bytes of weights held on the backend.
  virtual size_t weight_bytes() const = 0;
  // Sizes the activation workspace for steps of up to max_batch x max_tokens rows, each
  // layer run in micro-batches as `opts` says, once per run before the first forward; a
  // larger step is an error, not a regrowth.
  virtual void reserve(int max_batch, int max_tokens, const ForwardOptions& opts = {}) = 0;

  // Queues one step on the backend's compute stream: writes this step's K/V into `kv`
  // (whose key mask the caller has set for positions [0, t0 + tq)) and logits (compute
  // dtype) into `logits`: [B, V] for each sequence's last new token, or [B*tq, V] when
  // all_positions (one micro-batch: the head's rows are the step's).
  virtual void forward(const StepInputs& in, KvCache& kv, const Tensor& logits, bool all_positions) = 0;

 protected:
  explicit Model(ModelConfig config) : config_(std::move(config)) {}
  ModelConfig config_;
};

// The KV geometry of a model.
KvShape kv_shape(const ModelConfig& config);

// Builds the family's model over a weight provider (runtime/model/weight_provider.hpp).
std::unique_ptr<Model> create_model(const ModelConfig& config, std::unique_ptr<WeightProvider> weights,
                                    Backend& backend);

// Reads DIR/config.json and the safetensors weights and builds the model with every
// weight resident on `backend` (one rank, no quantization). Every missing or mis-shaped
// tensor is reported before any weight is read. runtime/model/loader.hpp has the general
// loader (quantization, ZeRO-3 shards, zinc stores, dummy shapes).
std::unique_ptr<Model> load_model(const std::string& dir, Backend& backend);

// Family entry points (one file each): the blob plan and the model.
std::vector<BlobPlan> llama_blob_plan(const ModelConfig& config);
std::vector<BlobPlan> opt_blob_plan(const ModelConfig& config);
std::vector<BlobPlan> bloom_blob_plan(const ModelConfig& config);
std::unique_ptr<Model> create_llama(const ModelConfig& config, std::unique_ptr<WeightProvider> weights,
                                    Backend& backend);
std::unique_ptr<Model> create_opt(const ModelConfig& config, std::unique_ptr<WeightProvider> weights,
                                  Backend& backend);
std::unique_ptr<Model> create_bloom(const ModelConfig& config, std::unique_ptr<WeightProvider> weights,
                                    Backend& backend);
// transformers' build_alibi_tensor slopes for `heads` attention heads (bloom.cpp).
std::vector<float> alibi_slopes(int heads);

}  // namespace zinc::runtime
