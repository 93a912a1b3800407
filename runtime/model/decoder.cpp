#include "runtime/model/decoder.hpp"

#include <algorithm>

namespace zinc::runtime {

std::vector<ForwardStep> forward_steps(const ModelConfig& c) {
  std::vector<ForwardStep> steps;
  steps.push_back({ForwardStep::Kind::Embed, -1, {embed_blob()}});
  for (int l = 0; l < c.num_layers; ++l) steps.push_back({ForwardStep::Kind::Layer, l, {layer_blob(l)}});
  ForwardStep head{ForwardStep::Kind::Head, -1, {head_blob(c)}};
  if (c.tie_word_embeddings) head.blobs.push_back(embed_blob());  // held with the head
  steps.push_back(head);
  return steps;
}

std::vector<int> forward_schedule(const ModelConfig& c) {
  std::vector<int> order;
  for (const ForwardStep& s : forward_steps(c)) order.insert(order.end(), s.blobs.begin(), s.blobs.end());
  return order;
}

Decoder::Decoder(const ModelConfig& c, std::unique_ptr<WeightProvider> weights, Backend& backend)
    : Model(c),
      backend_(backend),
      stream_(backend.compute_stream()),
      ws_(backend, config_),
      weights_(std::move(weights)),
      steps_(forward_steps(config_)) {
  attn_.heads = c.num_heads;
  attn_.kv_heads = c.num_kv_heads;
  attn_.head_dim = c.head_dim;
}

void Decoder::reserve(int max_batch, int max_tokens, const ForwardOptions& opts) {
  ws_.reserve(workspace_rows(max_batch, max_tokens, opts.micro_batch));
  opts_ = opts;
}

bool Decoder::overlap_step(const StepInputs& in, const KvCache& kv, bool all_positions) const {
  if (!kv.on_host() || in.t0 == 0 || all_positions || in.batch < 2) return false;
  if (opts_.kv_overlap == KvOverlap::Off) return false;
  if (opts_.kv_overlap == KvOverlap::Auto && backend_.name() == "cpu") return false;
  return weights_->max_held() >= 2;  // lane 0 takes layer l + 1 while the last lane computes l
}

void Decoder::forward(const StepInputs& in, KvCache& kv, const Tensor& logits, bool all_positions) {
  const int64_t n = static_cast<int64_t>(in.batch) * in.tq, d = config_.hidden_size;
  const bool overlap = overlap_step(in, kv, all_positions);
  int mb = all_positions ? in.batch : micro_batch_size(in.batch, in.tq, opts_.micro_batch);
  if (overlap && opts_.micro_batch == 0) mb = (in.batch + kHostKvLanes - 1) / kHostKvLanes;
  StepState all;
  all.in = &in;
  all.kv = &kv;
  all.ids = ws_.get(Slot::Ids, n, 1);
  all.positions = ws_.get(Slot::Positions, n, 1);
  backend_.upload(all.ids, in.ids, stream_);
  backend_.upload(all.positions, in.positions, stream_);
  all.h = ws_.get(Slot::Hidden, n, d);
  all.x = ws_.get(Slot::Normed, std::max<int64_t>(in.batch, static_cast<int64_t>(mb) * in.tq), d);
  all.branch = ws_.get(Slot::Branch, static_cast<int64_t>(mb) * in.tq, d);
  // The micro-batches: sequences [b0, b0 + m), rows [b0 tq, (b0 + m) tq) of the step.
  const size_t count = static_cast<size_t>((in.batch + mb - 1) / mb);
  std::vector<StepInputs> part_in(count);  // sized once: parts point into it
  std::vector<StepState> parts(count);
  const bool lanes = overlap && count >= 2;
  std::unique_ptr<LaneTurns> turns;
  if (lanes) {
    turns = std::make_unique<LaneTurns>(static_cast<int>(count));
    kv.prepare_lanes(static_cast<int>(count));
  }
  for (size_t j = 0; j < count; ++j) {
    const int b0 = static_cast<int>(j) * mb, m = std::min(mb, in.batch - b0);
    const int64_t r0 = static_cast<int64_t>(b0) * in.tq, rows = static_cast<int64_t>(m) * in.tq;
    part_in[j] = {m, in.tq, in.t0, in.ids + r0, in.positions + r0, in.first_seq + b0,
                  lanes ? LaneTurn{turns.get(), static_cast<int>(j)} : LaneTurn{}};
    StepState& p = parts[j];
    p.in = &part_in[j];
    p.kv = &kv;
    p.ids = all.ids.row_range(r0, rows);
    p.positions = all.positions.row_range(r0, rows);
    p.h = all.h.row_range(r0, rows);
    // Lanes keep their normed input apart (BLOOM's residual_post_layernorm reads it after
    // the attention, across another lane's turn); x has a row per sequence at decode.
    p.x = lanes ? all.x.row_range(r0, rows) : all.x.first_rows(rows);
    p.branch = all.branch.first_rows(rows);
  }
  bool layers_done = false;
  for (const ForwardStep& step : steps_) {
    if (lanes && step.kind == ForwardStep::Kind::Layer) {
      if (!layers_done) layers_in_lanes(parts, *turns);  // every layer step at once
      layers_done = true;
      continue;
    }
    const ParamTable& w = weights_->acquire(step.blobs[0]);
    switch (step.kind) {
      case ForwardStep::Kind::Embed:
        for (StepState& p : parts) embed(w, p);
        break;
      case ForwardStep::Kind::Layer:
        for (StepState& p : parts) layer(step.layer, w, p);
        break;
      case ForwardStep::Kind::Head: {
        Tensor rows = all.h;
        if (!all_positions) {
          rows = ws_.get(Slot::Last, in.batch, d);
          backend_.last_rows(all.h, in.batch, in.tq, rows, stream_);
        }
        const Tensor x = final_rows(w, rows, all);
        if (step.blobs.size() == 2) {  // tied: the embedding is the projection
          const ParamTable& e = weights_->acquire(step.blobs[1]);
          backend_.linear(x, e.at(tied_embedding()), Tensor(), logits, stream_);
          weights_->release(step.blobs[1]);
        } else {
          backend_.linear(x, w.at("lm_head.weight"), Tensor(), logits, stream_);
        }
        break;
      }
    }
    weights_->release(step.blobs[0]);
  }
}

}  // namespace zinc::runtime
