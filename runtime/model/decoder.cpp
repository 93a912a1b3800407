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

void Decoder::reserve(int max_batch, int max_tokens, int micro_batch) {
  ws_.reserve(workspace_rows(max_batch, max_tokens, micro_batch));
  micro_batch_ = micro_batch;
}

void Decoder::forward(const StepInputs& in, KvCache& kv, const Tensor& logits, bool all_positions) {
  const int64_t n = static_cast<int64_t>(in.batch) * in.tq, d = config_.hidden_size;
  const int mb = all_positions ? in.batch : micro_batch_size(in.batch, in.tq, micro_batch_);
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
  for (size_t j = 0; j < count; ++j) {
    const int b0 = static_cast<int>(j) * mb, m = std::min(mb, in.batch - b0);
    const int64_t r0 = static_cast<int64_t>(b0) * in.tq, rows = static_cast<int64_t>(m) * in.tq;
    part_in[j] = {m, in.tq, in.t0, in.ids + r0, in.positions + r0, in.first_seq + b0};
    StepState& p = parts[j];
    p.in = &part_in[j];
    p.kv = &kv;
    p.ids = all.ids.row_range(r0, rows);
    p.positions = all.positions.row_range(r0, rows);
    p.h = all.h.row_range(r0, rows);
    p.x = all.x.first_rows(rows);
    p.branch = all.branch.first_rows(rows);
  }
  for (const ForwardStep& step : steps_) {
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
