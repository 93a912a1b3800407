// The CPU backend: fp32 reference implementation of every Backend op.
// GEMMs go to OpenBLAS (cblas_sgemm); element loops are OpenMP-parallel over rows.
// "Device" memory is 64-byte-aligned host memory accounted in a budgeted arena, so the
// scheduling and budget logic that the CUDA backend uses is exercised here too.
// Streams and events are the host-timed no-ops of offload::HostStreams: every op and copy
// has finished when it returns, and an event's time is the host clock at its record.
#pragma once

#include <mutex>
#include <vector>

#include "runtime/backend/backend.hpp"

namespace zinc::runtime {

class CpuBackend final : public Backend {
 public:
  // budget_bytes == 0: unlimited. threads <= 0: leave OpenMP/OpenBLAS defaults.
  explicit CpuBackend(size_t budget_bytes = 0, int threads = 0);
  ~CpuBackend() override { compute_ = Stream(); }  // while this driver still exists

  std::string name() const override { return "cpu"; }
  quant::DType compute_dtype() const override { return quant::DType::F32; }

  // ---- StreamDriver: host-timed no-ops ----
  void* stream_create() override { return offload::HostStreams::stream_create(); }
  void stream_destroy(void* s) noexcept override { offload::HostStreams::stream_destroy(s); }
  void stream_synchronize(void*) override {}
  void* event_create() override { return offload::HostStreams::event_create(); }
  void event_destroy(void* e) noexcept override { offload::HostStreams::event_destroy(e); }
  void event_record(void* e, void*) override { offload::HostStreams::event_record(e); }
  void stream_wait_event(void*, void*) override {}
  void event_synchronize(void*) override {}
  double event_elapsed_s(void* a, void* b) override { return offload::HostStreams::event_elapsed_s(a, b); }

  void copy_to_device(void* dst, const void* host_src, size_t bytes, const Stream& s) override;
  void copy_to_host(void* host_dst, const void* src, size_t bytes, const Stream& s) override;
  void copy_on_device(void* dst, const void* src, size_t bytes, const Stream& s) override;
  void upload_weights(const Tensor& dst, quant::DType src_type, const void* host_src) override;

  void embedding(const Tensor& ids, const Tensor& table, const Tensor& out, const Stream& s) override;
  void rms_norm(const Tensor& x, const Tensor& w, float eps, const Tensor& out, const Stream& s) override;
  void layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, float eps, const Tensor& out,
                  const Stream& s) override;
  void linear(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out,
              const Stream& s) override;
  void add(const Tensor& a, const Tensor& b, const Tensor& out, const Stream& s) override;
  void activation(const Tensor& x, Activation act, const Stream& s) override;
  void silu_mul(const Tensor& gate, const Tensor& up, const Tensor& out, const Stream& s) override;
  void rope(const Tensor& x, const Tensor& positions, float theta, const Stream& s) override;
  void kv_write(const Tensor& src, const Tensor& cache, const AttentionShape& sh, const Stream& s) override;
  void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& key_mask,
                 const Tensor& alibi_slopes, const AttentionShape& sh, float scale, const Tensor& out,
                 const Stream& s) override;
  void split_qkv(const Tensor& qkv, int heads, int head_dim, const Tensor& q, const Tensor& k,
                 const Tensor& v, const Stream& s) override;
  void last_rows(const Tensor& x, int batch, int tq, const Tensor& out, const Stream& s) override;
  void dequantize(const quant::QuantView& src, const Tensor& out, const Stream& s) override;
  void sample(const Tensor& logits, const SamplingOptions& opts, const Tensor& keys, uint64_t counter,
              const Tensor& ids, const Stream& s) override;

 protected:
  void* raw_alloc(size_t bytes) override;
  void raw_free(void* p) noexcept override;

 private:
  std::vector<float> inv_freq_;     // rope: theta^(-2i/hd), kept between calls
  float inv_freq_theta_ = 0;
  int inv_freq_dim_ = 0;
  std::vector<SampleWork> sample_work_;  // one per row, reused across steps
};

}  // namespace zinc::runtime
