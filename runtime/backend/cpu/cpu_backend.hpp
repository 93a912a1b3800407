// The CPU backend: fp32 reference implementation of every Backend op.
// GEMMs go to OpenBLAS (cblas_sgemm); element loops are OpenMP-parallel over rows.
// "Device" memory is 64-byte-aligned host memory accounted in a budgeted arena, so the
// scheduling and budget logic that the CUDA backend uses is exercised here too.
// Streams and events are no-ops: every op has finished when it returns.
#pragma once

#include "runtime/backend/backend.hpp"

namespace zinc::runtime {

class CpuBackend final : public Backend {
 public:
  // budget_bytes == 0: unlimited. threads <= 0: leave OpenMP/OpenBLAS defaults.
  explicit CpuBackend(size_t budget_bytes = 0, int threads = 0);

  std::string name() const override { return "cpu"; }
  quant::DType compute_dtype() const override { return quant::DType::F32; }

  void copy_to_device(const Tensor& dst, const void* host_src, StreamId stream) override;
  void copy_to_host(void* host_dst, const Tensor& src, StreamId stream) override;
  void upload_weights(const Tensor& dst, quant::DType src_type, const void* host_src) override;

  void embedding(const Tensor& ids, const Tensor& table, const Tensor& out) override;
  void rms_norm(const Tensor& x, const Tensor& w, float eps, const Tensor& out) override;
  void layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, float eps,
                  const Tensor& out) override;
  void linear(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out) override;
  void add(const Tensor& a, const Tensor& b, const Tensor& out) override;
  void activation(const Tensor& x, Activation act) override;
  void silu_mul(const Tensor& gate, const Tensor& up, const Tensor& out) override;
  void rope(const Tensor& x, const Tensor& positions, float theta) override;
  void kv_write(const Tensor& src, const Tensor& cache, const AttentionShape& s) override;
  void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                 const Tensor& key_mask, const Tensor& alibi_slopes, const AttentionShape& s,
                 float scale, const Tensor& out) override;
  void split_qkv(const Tensor& qkv, int heads, int head_dim, const Tensor& q, const Tensor& k,
                 const Tensor& v) override;
  void last_rows(const Tensor& x, int batch, int tq, const Tensor& out) override;
  void scale(const Tensor& x, float s) override;
  void unpack_param(const partition::BlobParam& p, int group_size, const uint8_t* blob,
                    const Tensor& out) override;

 protected:
  void* raw_alloc(size_t bytes) override;
  void raw_free(void* p) noexcept override;
};

}  // namespace zinc::runtime
