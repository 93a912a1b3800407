#include "runtime/model/workspace.hpp"

#include <algorithm>

namespace zinc::runtime {
namespace {

constexpr size_t kAlign = 256;  // every slot starts on a 256-byte boundary

size_t round_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// The width (elements per row) of every slot.
void slot_widths(const ModelConfig& c, int64_t* w) {
  const int64_t d = c.hidden_size, f = c.intermediate_size;
  const int64_t q = static_cast<int64_t>(c.num_heads) * c.head_dim;
  const int64_t kv = static_cast<int64_t>(c.num_kv_heads) * c.head_dim;
  const int64_t e = c.word_embed_proj_dim > 0 ? c.word_embed_proj_dim : d;
  const auto at = [w](Slot s) -> int64_t& { return w[static_cast<int>(s)]; };
  at(Slot::Q) = q;
  at(Slot::K) = kv;
  at(Slot::V) = kv;
  at(Slot::Attn) = q;
  at(Slot::Qkv) = q + 2 * kv;
  at(Slot::MlpA) = f;
  at(Slot::MlpB) = f;
  for (Slot s : {Slot::Hidden, Slot::Normed, Slot::Branch, Slot::Last, Slot::Pos}) at(s) = d;
  at(Slot::Embed) = e;
  at(Slot::ProjOut) = e;
  at(Slot::Ids) = 1;
  at(Slot::Positions) = 1;
}

size_t elem_size(Slot s, quant::DType t) {
  return s == Slot::Ids || s == Slot::Positions ? sizeof(int32_t) : quant::dtype_size(t);
}

// The slots that hold every row of a step; the rest hold one micro-batch's rows.
bool step_wide(Slot s) { return s == Slot::Hidden || s == Slot::Ids || s == Slot::Positions || s == Slot::Last; }

// Elements of each slot for a reservation.
void slot_capacity(const ModelConfig& c, WorkspaceRows rows, int64_t* cap) {
  slot_widths(c, cap);
  for (int i = 0; i < static_cast<int>(Slot::Count); ++i)
    cap[i] *= step_wide(static_cast<Slot>(i)) ? rows.step : rows.micro;
}

}  // namespace

int micro_batch_size(int batch, int tokens, int requested) {
  ZINC_CHECK(batch >= 1 && tokens >= 1 && requested >= 0,
             "micro-batch of a step of " << batch << " x " << tokens << " (requested " << requested << ")");
  if (requested > 0) return std::min(requested, batch);
  const int64_t fit = kAutoMicroBatchRows / tokens;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(batch, fit)));
}

WorkspaceRows workspace_rows(int batch, int tokens, int micro_batch) {
  WorkspaceRows r;
  r.step = static_cast<int64_t>(batch) * tokens;
  const int64_t prefill = static_cast<int64_t>(micro_batch_size(batch, tokens, micro_batch)) * tokens;
  const int64_t decode = micro_batch_size(batch, 1, micro_batch);
  r.micro = std::max({prefill, decode, static_cast<int64_t>(batch)});
  return r;
}

size_t Workspace::bytes(const ModelConfig& c, WorkspaceRows rows, quant::DType t) {
  int64_t cap[static_cast<int>(Slot::Count)];
  slot_capacity(c, rows, cap);
  size_t total = 0;
  for (int i = 0; i < static_cast<int>(Slot::Count); ++i)
    total += round_up(static_cast<size_t>(cap[i]) * elem_size(static_cast<Slot>(i), t));
  return total;
}

void Workspace::reserve(WorkspaceRows rows) {
  ZINC_CHECK(rows.step > 0 && rows.micro > 0,
             "activation workspace for " << rows.step << " rows (micro-batches of " << rows.micro << ")");
  buffer_.reset();
  const quant::DType t = backend_.compute_dtype();
  buffer_ = backend_.alloc(bytes(config_, rows, t), "activations");
  slot_capacity(config_, rows, capacity_);
  size_t at = 0;
  for (int i = 0; i < static_cast<int>(Slot::Count); ++i) {
    offset_[i] = at;
    at += round_up(static_cast<size_t>(capacity_[i]) * elem_size(static_cast<Slot>(i), t));
  }
  rows_ = rows;
}

Tensor Workspace::get(Slot s, int64_t rows, int64_t cols) const {
  const int i = static_cast<int>(s);
  ZINC_CHECK(rows * cols <= capacity_[i],
             "activation workspace: a step of " << rows << " x " << cols << " exceeds the reserved "
                                                << (step_wide(s) ? rows_.step : rows_.micro)
                                                << " rows (Model::reserve sizes it once per run)");
  const quant::DType t = s == Slot::Ids || s == Slot::Positions ? quant::DType::I32 : backend_.compute_dtype();
  return Tensor(buffer_.bytes_ptr() + offset_[i], t, {rows, cols});
}

size_t activation_bytes(const ModelConfig& c, int batch, int tokens, int micro_batch, quant::DType t) {
  // The logits of the last rows, and the sampled ids and stream keys (generator.cpp).
  const size_t logits = static_cast<size_t>(batch) * (c.vocab_size * quant::dtype_size(t) + 2 * kAlign);
  return Workspace::bytes(c, workspace_rows(batch, tokens, micro_batch), t) + logits;
}

}  // namespace zinc::runtime
