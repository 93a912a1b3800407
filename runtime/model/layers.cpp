#include "runtime/model/layers.hpp"

#include <cmath>
#include <cstdio>

#include "runtime/backend/cpu/attention_problem.hpp"

namespace zinc::runtime {

Linear bind_linear(const ParamTable& t, const std::string& prefix, bool bias) {
  Linear l;
  l.w = t.at(prefix + ".weight");
  if (bias) l.b = t.at(prefix + ".bias");
  return l;
}

partition::ParamSpec matrix_param(const std::string& name, int64_t rows, int64_t cols) {
  return partition::ParamSpec{name, {rows, cols}, quant::DType::F16, true};
}

partition::ParamSpec vector_param(const std::string& name, int64_t n) {
  return partition::ParamSpec{name, {n}, quant::DType::F16, false};
}

void add_linear(BlobPlan& b, const std::string& prefix, int64_t out, int64_t in, bool bias) {
  b.params.push_back(matrix_param(prefix + ".weight", out, in));
  if (bias) b.params.push_back(vector_param(prefix + ".bias", out));
}

std::string layer_name(int layer) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "layer.%04d", layer);
  return buf;
}

size_t activation_bytes(const ModelConfig& c, int batch, int tokens, quant::DType t) {
  const size_t n = static_cast<size_t>(batch) * tokens, e = quant::dtype_size(t);
  const size_t d = c.hidden_size, f = c.intermediate_size;
  const size_t q = static_cast<size_t>(c.num_heads) * c.head_dim;
  const size_t kv = static_cast<size_t>(c.num_kv_heads) * c.head_dim;
  // hidden, normed, branch and the families' extra [n, D] slots (OPT: embed, positions,
  // projections: at most 3 more); q, attn; k, v; BLOOM's fused qkv; the MLP pair.
  const size_t per_row = 6 * d + 2 * q + 2 * kv + (q + 2 * kv) + 2 * f;
  const size_t rows = n * per_row * e + 2 * n * sizeof(int32_t);
  const size_t head = static_cast<size_t>(batch) * (d + c.vocab_size) * e;  // last rows, logits
  const size_t slack = 64 * 24;  // each buffer rounded up to 64 bytes
  return rows + head + slack;
}

Tensor Scratch::get(int slot, int64_t rows, int64_t cols) {
  return get(slot, rows, cols, backend_.compute_dtype());
}

Tensor Scratch::get(int slot, int64_t rows, int64_t cols, quant::DType type) {
  if (slot >= static_cast<int>(slots_.size())) slots_.resize(slot + 1);
  const size_t need = static_cast<size_t>(rows * cols) * quant::dtype_size(type);
  if (slots_[slot].bytes() < need) {
    slots_[slot].reset();
    slots_[slot] = backend_.alloc(need, "activations");
  }
  return slots_[slot].view(type, {rows, cols});
}

void upload_step_inputs(Backend& backend, const StepInputs& in, Scratch& scratch,
                        int32_t position_offset, Tensor* ids, Tensor* positions) {
  const int64_t n = static_cast<int64_t>(in.batch) * in.tq;
  *ids = scratch.get(kSlotIds, 1, n, quant::DType::I32);
  *positions = scratch.get(kSlotPositions, 1, n, quant::DType::I32);
  backend.copy_to_device(*ids, in.ids);
  if (position_offset == 0) {
    backend.copy_to_device(*positions, in.positions);
  } else {
    std::vector<int32_t> shifted(in.positions, in.positions + n);
    for (auto& p : shifted) p += position_offset;
    backend.copy_to_device(*positions, shifted.data());
  }
}

void self_attention(Backend& backend, const AttentionWeights& w, const AttentionParams& p,
                    const Tensor& x, const Tensor& positions, const StepInputs& in,
                    KvCache& kv, int layer, Scratch& scratch, const Tensor& out) {
  const int64_t n = x.rows();
  const int64_t q_dim = static_cast<int64_t>(p.heads) * p.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(p.kv_heads) * p.head_dim;
  Tensor q = scratch.get(kSlotQ, n, q_dim);
  Tensor k = scratch.get(kSlotK, n, kv_dim);
  Tensor v = scratch.get(kSlotV, n, kv_dim);
  if (!w.qkv.w.empty()) {
    Tensor qkv = scratch.get(kSlotQkv, n, q_dim + 2 * kv_dim);
    backend.linear(x, w.qkv.w, w.qkv.b, qkv);
    backend.split_qkv(qkv, p.heads, p.head_dim, q, k, v);
  } else {
    backend.linear(x, w.q.w, w.q.b, q);
    backend.linear(x, w.k.w, w.k.b, k);
    backend.linear(x, w.v.w, w.v.b, v);
  }
  if (p.rope) {
    backend.rope(Tensor(q.data, q.dtype, {n, p.heads, p.head_dim}), positions, p.rope_theta);
    backend.rope(Tensor(k.data, k.dtype, {n, p.kv_heads, p.head_dim}), positions, p.rope_theta);
  }
  AttentionShape s;
  s.batch = in.batch;
  s.tq = in.tq;
  s.t0 = in.t0;
  s.t_max = kv.t_max();
  s.heads = p.heads;
  s.kv_heads = p.kv_heads;
  s.head_dim = p.head_dim;
  Tensor attn = scratch.get(kSlotAttn, n, q_dim);
  const float scale = 1.0f / std::sqrt(static_cast<float>(p.head_dim));
  if (kv.on_host()) {
    host_attention(backend, p, q, k, v, s, scale, kv, layer, attn);
  } else {
    backend.kv_write(k, kv.k(layer), s);
    backend.kv_write(v, kv.v(layer), s);
    backend.attention(q, kv.k(layer), kv.v(layer), kv.key_mask(), p.alibi_slopes, s, scale, attn);
  }
  backend.linear(attn, w.o.w, w.o.b, out);
}

void host_attention(Backend& backend, const AttentionParams& p, const Tensor& q, const Tensor& k,
                    const Tensor& v, const AttentionShape& s, float scale, KvCache& kv, int layer,
                    const Tensor& attn) {
  ZINC_CHECK(q.dtype == quant::DType::F32,
             "--kv-offload: the host attention path takes fp32 activations, the backend computes in "
                 << quant::dtype_name(q.dtype));
  std::vector<float>& hq = kv.staging(0);
  std::vector<float>& hk = kv.staging(1);
  std::vector<float>& hv = kv.staging(2);
  std::vector<float>& hout = kv.staging(3);
  hq.resize(static_cast<size_t>(q.numel()));
  hk.resize(static_cast<size_t>(k.numel()));
  hv.resize(static_cast<size_t>(v.numel()));
  hout.resize(static_cast<size_t>(attn.numel()));
  // The step's keys and values to the host cache (prefill writes the whole prompt here).
  backend.copy_to_host(hk.data(), k);
  backend.copy_to_host(hv.data(), v);
  backend.copy_to_host(hq.data(), q);
  const offload::KvView kview = kv.host().k(layer), vview = kv.host().v(layer);
  offload::kv_store(kview, hk.data(), s.batch, s.tq, s.t0, s.kv_heads);
  offload::kv_store(vview, hv.data(), s.batch, s.tq, s.t0, s.kv_heads);
  const offload::CpuAttentionProblem pr =
      cpu_attention_problem(s, scale, hq.data(), hout.data(), kv.host_mask(),
                            p.host_alibi_slopes.empty() ? nullptr : p.host_alibi_slopes.data());
  offload::cpu_attention(pr, kview, vview);
  backend.copy_to_device(attn, hout.data());
}

Tensor head_rows(Backend& backend, Scratch& scratch, int slot, const Tensor& h,
                 const StepInputs& in, bool all_positions) {
  if (all_positions) return h;
  Tensor rows = scratch.get(slot, in.batch, h.cols());
  backend.last_rows(h, in.batch, in.tq, rows);
  return rows;
}

void vocab_projection(Backend& backend, WeightProvider& weights, const ModelConfig& c,
                      const ParamTable& head, const std::string& embed_name, const Tensor& x,
                      const Tensor& logits) {
  if (!c.tie_word_embeddings) {
    backend.linear(x, head.at("lm_head.weight"), Tensor(), logits);
    return;
  }
  const ParamTable& e = weights.acquire(embed_blob());
  backend.linear(x, e.at(embed_name), Tensor(), logits);
  weights.release(embed_blob());
}

void gated_mlp(Backend& backend, const Linear& gate, const Linear& up, const Linear& down,
               const Tensor& x, Scratch& scratch, const Tensor& out) {
  const int64_t n = x.rows(), f = gate.w.rows();
  Tensor a = scratch.get(kSlotMlpA, n, f);
  Tensor b = scratch.get(kSlotMlpB, n, f);
  backend.linear(x, gate.w, gate.b, a);
  backend.linear(x, up.w, up.b, b);
  backend.silu_mul(a, b, a);
  backend.linear(a, down.w, down.b, out);
}

void plain_mlp(Backend& backend, const Linear& fc1, const Linear& fc2, Activation act,
               const Tensor& x, Scratch& scratch, const Tensor& out) {
  const int64_t n = x.rows(), f = fc1.w.rows();
  Tensor a = scratch.get(kSlotMlpA, n, f);
  backend.linear(x, fc1.w, fc1.b, a);
  backend.activation(a, act);
  backend.linear(a, fc2.w, fc2.b, out);
}

}  // namespace zinc::runtime
