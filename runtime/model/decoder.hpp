// Decoder: the one skeleton of a forward pass that every family runs — embed, every
// layer, the head — with hooks per family. It owns the order in which blobs are acquired
// and released (forward_steps), so the weight pipeline's schedule (forward_schedule) is
// derived from the same list instead of being written beside the families.
//
//   h = embed(ids, positions)                     hook: embed         blob "embed"
//   per layer l: h = layer_l(h)                   hook: layer         blob "layer.NNNN"
//   (the embedding and each layer run once per micro-batch of sequences, the blob loaded
//    once for all of them: workspace.hpp; a host-KV decode step runs its micro-batches'
//    layers as lanes, so the CPU attends one while the GPU computes another:
//    decoder_lanes.cpp)
//   rows = h, or each sequence's last new row
//   logits = final(rows) @ lm_head^T               hook: final_rows    blob "head" (and
//            (lm_head = the tied embedding, or "lm_head.weight")        "embed" when tied)
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/model/layers.hpp"
#include "runtime/model/model.hpp"
#include "runtime/model/workspace.hpp"

namespace zinc::runtime {

struct ForwardStep {
  enum class Kind { Embed, Layer, Head } kind;
  int layer = -1;          // Kind::Layer
  std::vector<int> blobs;  // acquired in this order for the step (weight_provider.hpp's indices)
};

// The steps of one forward pass, and the blob order they acquire (the pipeline's schedule).
std::vector<ForwardStep> forward_steps(const ModelConfig& config);
std::vector<int> forward_schedule(const ModelConfig& config);

// What the hooks work on during one step.
struct StepState {
  const StepInputs* in = nullptr;
  KvCache* kv = nullptr;
  Tensor ids, positions;  // I32 [n] on the device
  Tensor h, x, branch;    // [n, D]: residual stream, normed input, branch output
};

class Decoder : public Model {
 public:
  Decoder(const ModelConfig& config, std::unique_ptr<WeightProvider> weights, Backend& backend);
  size_t weight_bytes() const override { return weights_->resident_bytes(); }
  void reserve(int max_batch, int max_tokens, const ForwardOptions& opts = {}) override;
  void forward(const StepInputs& in, KvCache& kv, const Tensor& logits, bool all_positions) final;

 protected:
  // st.ids / st.positions -> st.h, from the "embed" blob.
  virtual void embed(const ParamTable& w, StepState& st) = 0;
  // st.h = layer l (st.h), from blob "layer.NNNN".
  virtual void layer(int l, const ParamTable& w, StepState& st) = 0;
  // The head's rows [r, D] (in a slot of their own) -> the input of the vocabulary
  // projection, from the "head" blob (final norm, OPT's project_out).
  virtual Tensor final_rows(const ParamTable& head, const Tensor& rows, StepState& st) = 0;
  // The embedding blob's tensor that a tied head projects with.
  virtual std::string tied_embedding() const = 0;

  Backend& backend_;
  const Stream& stream_;  // the backend's compute stream: every op of the step
  Workspace ws_;
  AttentionParams attn_;

 private:
  // Whether a step runs its micro-batches as lanes (host-KV decode, --kv-overlap).
  bool overlap_step(const StepInputs& in, const KvCache& kv, bool all_positions) const;
  // Every layer step of steps_ for `parts`, each part a lane (decoder_lanes.cpp).
  void layers_in_lanes(std::vector<StepState>& parts, LaneTurns& turns);

  std::unique_ptr<WeightProvider> weights_;
  std::vector<ForwardStep> steps_;
  ForwardOptions opts_;  // reserve()'s: micro-batch size (0 = auto) and --kv-overlap
};

}  // namespace zinc::runtime
