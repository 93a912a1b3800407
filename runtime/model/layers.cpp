#include "runtime/model/layers.hpp"

#include <cmath>
#include <cstdio>

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

void self_attention(Backend& backend, const Stream& s, const AttentionWeights& w, const AttentionParams& p,
                    const Tensor& x, const Tensor& positions, const StepInputs& in, KvCache& kv, int layer,
                    const Workspace& ws, const Tensor& out) {
  const int64_t n = x.rows();
  const int64_t q_dim = static_cast<int64_t>(p.heads) * p.head_dim;
  const int64_t kv_dim = static_cast<int64_t>(p.kv_heads) * p.head_dim;
  const Tensor q = ws.get(Slot::Q, n, q_dim);
  const Tensor k = ws.get(Slot::K, n, kv_dim);
  const Tensor v = ws.get(Slot::V, n, kv_dim);
  if (!w.qkv.w.empty()) {
    const Tensor qkv = ws.get(Slot::Qkv, n, q_dim + 2 * kv_dim);
    backend.linear(x, w.qkv.w, w.qkv.b, qkv, s);
    backend.split_qkv(qkv, p.heads, p.head_dim, q, k, v, s);
  } else {
    backend.linear(x, w.q.w, w.q.b, q, s);
    backend.linear(x, w.k.w, w.k.b, k, s);
    backend.linear(x, w.v.w, w.v.b, v, s);
  }
  if (p.rope) {
    backend.rope(q.reshaped({n, p.heads, p.head_dim}), positions, p.rope_theta, s);
    backend.rope(k.reshaped({n, p.kv_heads, p.head_dim}), positions, p.rope_theta, s);
  }
  AttentionShape sh;
  sh.batch = in.batch;
  sh.tq = in.tq;
  sh.t0 = in.t0;
  sh.t_max = kv.t_max();
  sh.heads = p.heads;
  sh.kv_heads = p.kv_heads;
  sh.head_dim = p.head_dim;
  const Tensor attn = ws.get(Slot::Attn, n, q_dim);
  const float scale = 1.0f / std::sqrt(static_cast<float>(p.head_dim));
  kv.attend(layer, in.first_seq, q, k, v, sh, p.bias, scale, attn, s, in.lane);
  backend.linear(attn, w.o.w, w.o.b, out, s);
}

void gated_mlp(Backend& backend, const Stream& s, const Linear& gate, const Linear& up, const Linear& down,
               const Tensor& x, const Workspace& ws, const Tensor& out) {
  const int64_t n = x.rows(), f = gate.w.rows();
  const Tensor a = ws.get(Slot::MlpA, n, f);
  const Tensor b = ws.get(Slot::MlpB, n, f);
  backend.linear(x, gate.w, gate.b, a, s);
  backend.linear(x, up.w, up.b, b, s);
  backend.silu_mul(a, b, a, s);
  backend.linear(a, down.w, down.b, out, s);
}

void plain_mlp(Backend& backend, const Stream& s, const Linear& fc1, const Linear& fc2, Activation act,
               const Tensor& x, const Workspace& ws, const Tensor& out) {
  const int64_t n = x.rows(), f = fc1.w.rows();
  const Tensor a = ws.get(Slot::MlpA, n, f);
  backend.linear_activation(x, fc1.w, fc1.b, act, a, s);
  backend.linear(a, fc2.w, fc2.b, out, s);
}

}  // namespace zinc::runtime
