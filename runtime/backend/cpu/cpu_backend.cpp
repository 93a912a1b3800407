#include "runtime/backend/cpu/cpu_backend.hpp"

#include "runtime/backend/cpu/attention_problem.hpp"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "runtime/backend/cpu/cpu_attention.hpp"

namespace zinc::runtime {
namespace {

void check_f32(const Tensor& t, const char* what) {
  ZINC_CHECK(t.dtype == quant::DType::F32,
             "cpu backend: " << what << " must be F32, got " << quant::dtype_name(t.dtype));
}

void check_same_shape(const Tensor& a, const Tensor& b, const char* op) {
  ZINC_CHECK(a.numel() == b.numel() && a.cols() == b.cols(),
             op << ": shape mismatch (" << a.rows() << "x" << a.cols() << " vs " << b.rows()
                << "x" << b.cols() << ")");
}

}  // namespace

CpuBackend::CpuBackend(size_t budget_bytes, int threads)
    : Backend(std::make_unique<offload::MemoryArena>("cpu device", budget_bytes)) {
  compute_ = create_stream();
  if (threads > 0) {
    omp_set_num_threads(threads);
    openblas_set_num_threads(threads);
  }
}

void* CpuBackend::raw_alloc(size_t bytes) {
  const size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded);
  ZINC_CHECK(p != nullptr, "cpu backend: out of host memory allocating " << bytes << " bytes");
  return p;
}

void CpuBackend::raw_free(void* p) noexcept { std::free(p); }

void CpuBackend::copy_to_device(void* dst, const void* host_src, size_t bytes, const Stream&) {
  std::memcpy(dst, host_src, bytes);
}

void CpuBackend::copy_to_host(void* host_dst, const void* src, size_t bytes, const Stream&) {
  std::memcpy(host_dst, src, bytes);
}

void CpuBackend::copy_on_device(void* dst, const void* src, size_t bytes, const Stream&) {
  // Parallel, as the op loops: a one-thread memcpy would understate the host's memory.
  const int64_t chunks = static_cast<int64_t>((bytes + (1 << 20) - 1) >> 20);
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const size_t at = static_cast<size_t>(c) << 20;
    std::memcpy(static_cast<uint8_t*>(dst) + at, static_cast<const uint8_t*>(src) + at,
                std::min<size_t>(size_t(1) << 20, bytes - at));
  }
}

void CpuBackend::upload_weights(const Tensor& dst, quant::DType src_type, const void* host_src) {
  check_f32(dst, "weights");
  quant::convert_to_f32(src_type, host_src, dst.ptr<float>(), static_cast<size_t>(dst.numel()));
}

void CpuBackend::embedding(const Tensor& ids, const Tensor& table, const Tensor& out, const Stream&) {
  check_f32(table, "embedding table");
  const int64_t n = ids.numel(), d = table.cols(), v = table.rows();
  ZINC_CHECK(out.rows() == n && out.cols() == d, "embedding: output shape mismatch");
  (void)v;  // ids were checked against the vocabulary before upload
  const int32_t* id = ids.ptr<int32_t>();
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i)
    std::memcpy(out.ptr<float>() + i * d, table.ptr<float>() + id[i] * d, d * sizeof(float));
}

void CpuBackend::rms_norm(const Tensor& x, const Tensor& w, float eps, const Tensor& out, const Stream&) {
  check_same_shape(x, out, "rms_norm");
  const int64_t n = x.rows(), d = x.cols();
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) {
    const float* xi = x.ptr<float>() + i * d;
    float* oi = out.ptr<float>() + i * d;
    float ss = 0.f;
    for (int64_t j = 0; j < d; ++j) ss += xi[j] * xi[j];
    const float r = 1.0f / std::sqrt(ss / static_cast<float>(d) + eps);
    for (int64_t j = 0; j < d; ++j) oi[j] = w.ptr<float>()[j] * (xi[j] * r);
  }
}

void CpuBackend::layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, float eps,
                            const Tensor& out, const Stream&) {
  check_same_shape(x, out, "layer_norm");
  const int64_t n = x.rows(), d = x.cols();
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) {
    const float* xi = x.ptr<float>() + i * d;
    float* oi = out.ptr<float>() + i * d;
    float mean = 0.f;
    for (int64_t j = 0; j < d; ++j) mean += xi[j];
    mean /= static_cast<float>(d);
    float var = 0.f;
    for (int64_t j = 0; j < d; ++j) var += (xi[j] - mean) * (xi[j] - mean);
    var /= static_cast<float>(d);
    const float r = 1.0f / std::sqrt(var + eps);
    for (int64_t j = 0; j < d; ++j) {
      float y = (xi[j] - mean) * r;
      if (!w.empty()) y *= w.ptr<float>()[j];
      if (!b.empty()) y += b.ptr<float>()[j];
      oi[j] = y;
    }
  }
}

void CpuBackend::linear(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out,
                        const Stream&) {
  check_f32(x, "linear input");
  check_f32(w, "linear weight");
  const int64_t n = x.rows(), in = x.cols(), o = w.rows();
  ZINC_CHECK(w.cols() == in, "linear: input has " << in << " features, weight expects " << w.cols());
  ZINC_CHECK(out.rows() == n && out.cols() == o, "linear: output shape mismatch");
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(n), static_cast<int>(o),
              static_cast<int>(in), 1.0f, x.ptr<float>(), static_cast<int>(in), w.ptr<float>(),
              static_cast<int>(in), 0.0f, out.ptr<float>(), static_cast<int>(o));
  if (!bias.empty()) {
#pragma omp parallel for
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < o; ++j) out.ptr<float>()[i * o + j] += bias.ptr<float>()[j];
  }
}

void CpuBackend::add(const Tensor& a, const Tensor& b, const Tensor& out, const Stream&) {
  check_same_shape(a, b, "add");
  check_same_shape(a, out, "add");
  const int64_t n = a.numel();
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) out.ptr<float>()[i] = a.ptr<float>()[i] + b.ptr<float>()[i];
}

void CpuBackend::activation(const Tensor& x, Activation act, const Stream&) {
  const int64_t n = x.numel();
  float* p = x.ptr<float>();
  switch (act) {
    case Activation::Relu:
#pragma omp parallel for
      for (int64_t i = 0; i < n; ++i) p[i] = p[i] > 0.f ? p[i] : 0.f;
      return;
    case Activation::Silu:
#pragma omp parallel for
      for (int64_t i = 0; i < n; ++i) p[i] = p[i] / (1.0f + std::exp(-p[i]));
      return;
    case Activation::GeluTanh:  // BLOOM's bloom_gelu_forward, term for term
#pragma omp parallel for
      for (int64_t i = 0; i < n; ++i) {
        const float x = p[i];
        p[i] = x * 0.5f * (1.0f + std::tanh(0.79788456f * x * (1.0f + 0.044715f * x * x)));
      }
      return;
    case Activation::Gelu:  // exact (erf) GELU, torch's default
#pragma omp parallel for
      for (int64_t i = 0; i < n; ++i) p[i] = 0.5f * p[i] * (1.0f + std::erf(p[i] * 0.70710678f));
      return;
  }
}

void CpuBackend::silu_mul(const Tensor& gate, const Tensor& up, const Tensor& out, const Stream&) {
  check_same_shape(gate, up, "silu_mul");
  check_same_shape(gate, out, "silu_mul");
  const int64_t n = gate.numel();
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate.ptr<float>()[i];
    out.ptr<float>()[i] = g / (1.0f + std::exp(-g)) * up.ptr<float>()[i];
  }
}

void CpuBackend::rope(const Tensor& x, const Tensor& positions, float theta, const Stream&) {
  // As transformers' LLaMA: inv_freq = 1 / theta^(2i/hd) in fp32, angle = pos * inv_freq,
  // x1' = x1 cos - x2 sin, x2' = x2 cos + x1 sin over the halves (rotate_half).
  ZINC_CHECK(x.ndim() == 3, "rope: x must be [n, heads, head_dim]");
  const int64_t n = x.dim(0), heads = x.dim(1), hd = x.dim(2), half = hd / 2;
  ZINC_CHECK(positions.numel() == n, "rope: " << positions.numel() << " positions for " << n
                                              << " rows");
  if (inv_freq_theta_ != theta || inv_freq_dim_ != hd) {
    inv_freq_.resize(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i)
      inv_freq_[i] = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(hd));
    inv_freq_theta_ = theta;
    inv_freq_dim_ = static_cast<int>(hd);
  }
  const float* inv_freq = inv_freq_.data();
#pragma omp parallel for
  for (int64_t r = 0; r < n; ++r) {
    const float pos = static_cast<float>(positions.ptr<int32_t>()[r]);
    for (int64_t i = 0; i < half; ++i) {
      const float a = pos * inv_freq[i];
      const float c = std::cos(a), s = std::sin(a);
      for (int64_t h = 0; h < heads; ++h) {
        float* v = x.ptr<float>() + (r * heads + h) * hd;
        const float x1 = v[i], x2 = v[i + half];
        v[i] = x1 * c - x2 * s;
        v[i + half] = x2 * c + x1 * s;
      }
    }
  }
}

void CpuBackend::kv_write(const Tensor& src, const Tensor& cache, const AttentionShape& s, const Stream&) {
  const int64_t row = static_cast<int64_t>(s.kv_heads) * s.head_dim;
  ZINC_CHECK(src.cols() == row && src.rows() == static_cast<int64_t>(s.batch) * s.tq,
             "kv_write: source shape mismatch");
  ZINC_CHECK(s.t0 + s.tq <= s.t_max, "kv_write: cache of " << s.t_max << " positions is full");
#pragma omp parallel for collapse(2)
  for (int b = 0; b < s.batch; ++b)
    for (int i = 0; i < s.tq; ++i)
      std::memcpy(cache.ptr<float>() + (static_cast<int64_t>(b) * s.t_max + s.t0 + i) * row,
                  src.ptr<float>() + (static_cast<int64_t>(b) * s.tq + i) * row,
                  row * sizeof(float));
}

void CpuBackend::attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                           const Tensor& key_mask, const Tensor& alibi_slopes,
                           const AttentionShape& s, float scale, const Tensor& out, const Stream&) {
  // The same kernel as attention over a host KV cache (backend/cpu/cpu_attention.hpp), over
  // f32 views of the [B, t_max, KVH, hd] caches.
  check_f32(q, "attention queries");
  check_f32(k_cache, "key cache");
  check_f32(v_cache, "value cache");
  check_f32(out, "attention output");
  quant::KvView k;
  k.storage = quant::KvStorage::F32;
  k.head_dim = s.head_dim;
  k.t_max = s.t_max;
  k.seq_stride = static_cast<int64_t>(s.t_max) * s.kv_heads;
  k.head_stride = 1;
  k.pos_stride = s.kv_heads;
  k.data = k_cache.ptr<uint8_t>();
  quant::KvView v = k;
  v.data = v_cache.ptr<uint8_t>();
  const runtime::CpuAttentionProblem p = cpu_attention_problem(
      s, scale, q.ptr<float>(), out.ptr<float>(), key_mask.ptr<uint8_t>(),
      alibi_slopes.empty() ? nullptr : alibi_slopes.ptr<float>());
  runtime::cpu_attention(p, k, v);
}

void CpuBackend::split_qkv(const Tensor& qkv, int heads, int head_dim, const Tensor& q,
                           const Tensor& k, const Tensor& v, const Stream&) {
  const int64_t n = qkv.rows(), hd = head_dim, row = static_cast<int64_t>(heads) * hd;
  ZINC_CHECK(qkv.cols() == 3 * row, "split_qkv: fused row of " << qkv.cols() << ", expected " << 3 * row);
#pragma omp parallel for
  for (int64_t r = 0; r < n; ++r)
    for (int h = 0; h < heads; ++h) {
      const float* src = qkv.ptr<float>() + r * 3 * row + static_cast<int64_t>(h) * 3 * hd;
      std::memcpy(q.ptr<float>() + r * row + h * hd, src, hd * sizeof(float));
      std::memcpy(k.ptr<float>() + r * row + h * hd, src + hd, hd * sizeof(float));
      std::memcpy(v.ptr<float>() + r * row + h * hd, src + 2 * hd, hd * sizeof(float));
    }
}

void CpuBackend::last_rows(const Tensor& x, int batch, int tq, const Tensor& out, const Stream&) {
  const int64_t d = x.cols();
  ZINC_CHECK(out.rows() == batch && out.cols() == d, "last_rows: output shape mismatch");
  for (int b = 0; b < batch; ++b)
    std::memcpy(out.ptr<float>() + b * d, x.ptr<float>() + (static_cast<int64_t>(b) * tq + tq - 1) * d,
                d * sizeof(float));
}

void CpuBackend::dequantize(const quant::QuantView& src, const Tensor& out, const Stream&) {
  check_f32(out, "dequantized weights");
  ZINC_CHECK(out.numel() == src.numel(), "dequantize: the stored tensor has " << src.numel()
                                                                             << " elements, the output " << out.numel());
  quant::dequantize(src, out.ptr<float>());
}

void CpuBackend::sample(const Tensor& logits, const SamplingOptions& opts, const Tensor& keys,
                        uint64_t counter, const Tensor& ids, const Stream&) {
  check_f32(logits, "logits");
  const int64_t rows = logits.rows();
  const int vocab = static_cast<int>(logits.cols());
  ZINC_CHECK(ids.numel() == rows && ids.dtype == quant::DType::I32, "sample: ids must be I32 [" << rows << "]");
  ZINC_CHECK(opts.greedy() || keys.numel() >= rows, "sample: " << keys.numel() << " stream keys for " << rows
                                                                 << " rows");
  if (sample_work_.size() < static_cast<size_t>(rows)) sample_work_.resize(static_cast<size_t>(rows));
#pragma omp parallel for schedule(dynamic) if (rows > 1)
  for (int64_t b = 0; b < rows; ++b) {
    const float* row = logits.ptr<float>() + b * vocab;
    const double u =
        opts.greedy() ? 0.0 : sequence_uniform(static_cast<uint64_t>(keys.ptr<int64_t>()[b]), counter);
    ids.ptr<int32_t>()[b] = logits_finite(row, vocab) ? sample_with_draw(row, vocab, opts, u, sample_work_[b])
                                                      : kNonFiniteLogits;
  }
}

}  // namespace zinc::runtime
