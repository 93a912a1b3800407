#include "runtime/model/workspace.hpp"

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

}  // namespace

size_t Workspace::bytes(const ModelConfig& c, int64_t rows, quant::DType t) {
  int64_t w[static_cast<int>(Slot::Count)];
  slot_widths(c, w);
  size_t total = 0;
  for (int i = 0; i < static_cast<int>(Slot::Count); ++i)
    total += round_up(static_cast<size_t>(rows * w[i]) * elem_size(static_cast<Slot>(i), t));
  return total;
}

void Workspace::reserve(int64_t rows) {
  ZINC_CHECK(rows > 0, "activation workspace for " << rows << " rows");
  buffer_.reset();
  const quant::DType t = backend_.compute_dtype();
  buffer_ = backend_.alloc(bytes(config_, rows, t), "activations");
  slot_widths(config_, width_);
  size_t at = 0;
  for (int i = 0; i < static_cast<int>(Slot::Count); ++i) {
    offset_[i] = at;
    at += round_up(static_cast<size_t>(rows * width_[i]) * elem_size(static_cast<Slot>(i), t));
  }
  rows_ = rows;
}

Tensor Workspace::get(Slot s, int64_t rows, int64_t cols) const {
  const int i = static_cast<int>(s);
  ZINC_CHECK(rows * cols <= rows_ * width_[i],
             "activation workspace: a step of " << rows << " x " << cols << " exceeds the reserved " << rows_
                                                << " rows (Model::reserve sizes it once per run)");
  const quant::DType t = s == Slot::Ids || s == Slot::Positions ? quant::DType::I32 : backend_.compute_dtype();
  return Tensor(buffer_.bytes_ptr() + offset_[i], t, {rows, cols});
}

size_t activation_bytes(const ModelConfig& c, int batch, int tokens, quant::DType t) {
  // The logits of the last rows, and the sampled ids and stream keys (generator.cpp).
  const size_t logits = static_cast<size_t>(batch) * (c.vocab_size * quant::dtype_size(t) + 2 * kAlign);
  return Workspace::bytes(c, static_cast<int64_t>(batch) * tokens, t) + logits;
}

}  // namespace zinc::runtime
