// The portable inner loops of cpu_attention: each visible row is dequantized with the
// reference definition (quant::kv_dequantize_row) into a small buffer and used from there. Runs
// where the CPU lacks AVX2/FMA/F16C or head_dim (or the group) is not a multiple of 16.
#include <algorithm>
#include <cmath>

#include "runtime/backend/cpu/cpu_attention_kernels.hpp"

namespace zinc::runtime::detail {
namespace {

// Row r's values: in place for f32, else dequantized into buf.
const float* row_values(const quant::KvView& view, int64_t r, float* buf) {
  if (view.storage == quant::KvStorage::F32) return reinterpret_cast<const float*>(view.row_codes(r));
  quant::kv_dequantize_row(view, r, buf);
  return buf;
}

void k_scores_scalar(const quant::KvView& k, const int64_t* rows, int n, const float* q, const float*,
                     int group, float* scores, int stride, float* tmp) {
  const int hd = k.head_dim;
  for (int t = 0; t < n; ++t) {
    const float* x = row_values(k, rows[t], tmp);
    for (int g = 0; g < group; ++g) {
      const float* qg = q + static_cast<int64_t>(g) * hd;
      float dot = 0.0f;
      for (int d = 0; d < hd; ++d) dot += qg[d] * x[d];
      scores[static_cast<int64_t>(g) * stride + t] = dot;
    }
  }
}

void v_accumulate_scalar(const quant::KvView& v, const int64_t* rows, int n, const float* p, int stride,
                         int group, float* acc, float*, float* tmp) {
  const int hd = v.head_dim;
  for (int t = 0; t < n; ++t) {
    const float* x = row_values(v, rows[t], tmp);
    for (int g = 0; g < group; ++g) {
      const float w = p[static_cast<int64_t>(g) * stride + t];
      float* a = acc + static_cast<int64_t>(g) * hd;
      for (int d = 0; d < hd; ++d) a[d] += w * x[d];
    }
  }
}

float softmax_scalar(float* x, const float* pos, int n, float scale, float slope, float* max_out) {
  float mx = -INFINITY;
  for (int t = 0; t < n; ++t) {
    x[t] = x[t] * scale + (slope != 0.0f ? slope * pos[t] : 0.0f);
    mx = std::max(mx, x[t]);
  }
  float sum = 0.0f;
  for (int t = 0; t < n; ++t) {
    x[t] = std::exp(x[t] - mx);
    sum += x[t];
  }
  *max_out = mx;
  return sum;
}

}  // namespace

AttentionKernels scalar_attention_kernels(quant::KvStorage) {
  AttentionKernels k;
  k.k_scores = k_scores_scalar;
  k.v_accumulate = v_accumulate_scalar;
  k.softmax = softmax_scalar;
  k.nibble_block = 0;
  k.isa = "scalar";
  return k;
}

}  // namespace zinc::runtime::detail
