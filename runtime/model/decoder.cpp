#include "runtime/model/decoder.hpp"

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

void Decoder::reserve(int max_batch, int max_tokens) {
  ws_.reserve(static_cast<int64_t>(max_batch) * max_tokens);
}

void Decoder::forward(const StepInputs& in, KvCache& kv, const Tensor& logits, bool all_positions) {
  const int64_t n = static_cast<int64_t>(in.batch) * in.tq, d = config_.hidden_size;
  StepState st;
  st.in = &in;
  st.kv = &kv;
  st.ids = ws_.get(Slot::Ids, 1, n);
  st.positions = ws_.get(Slot::Positions, 1, n);
  backend_.upload(st.ids, in.ids, stream_);
  backend_.upload(st.positions, in.positions, stream_);
  st.h = ws_.get(Slot::Hidden, n, d);
  st.x = ws_.get(Slot::Normed, n, d);
  st.branch = ws_.get(Slot::Branch, n, d);
  for (const ForwardStep& step : steps_) {
    const ParamTable& w = weights_->acquire(step.blobs[0]);
    switch (step.kind) {
      case ForwardStep::Kind::Embed: embed(w, st); break;
      case ForwardStep::Kind::Layer: layer(step.layer, w, st); break;
      case ForwardStep::Kind::Head: {
        Tensor rows = st.h;
        if (!all_positions) {
          rows = ws_.get(Slot::Last, in.batch, d);
          backend_.last_rows(st.h, in.batch, in.tq, rows, stream_);
        }
        const Tensor x = final_rows(w, rows, st);
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
