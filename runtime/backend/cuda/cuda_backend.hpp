// The CUDA backend: the Backend ops on one GPU, in the compute dtype (F16 or BF16; F32
// for parity tests) with fp32 accumulation. GEMMs on cuBLAS (cublasGemmEx, fp32 compute,
// its workspace from the arena); every other op is a kernel of runtime/backend/cuda/*.cu
// through the launchers of kernels.hpp. Streams and events are CUDA's (non-blocking
// streams, timing events). Device memory: cudaMalloc'd buffers accounted in the arena
// (hard --gpu-memory-budget, high-water mark), all taken at load or at the start of a
// run; pinned host memory with cudaHostAlloc / cudaHostRegister.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <memory>

#include "runtime/backend/backend.hpp"
#include "runtime/backend/cuda/lt_gemm.hpp"

namespace zinc::runtime {

class CudaBackend final : public Backend {
 public:
  // `device`: the CUDA device index (the rank's node-local rank modulo the GPU count).
  CudaBackend(int device, quant::DType dtype, size_t budget_bytes);
  ~CudaBackend() override;

  std::string name() const override { return "cuda"; }
  quant::DType compute_dtype() const override { return dtype_; }
  int device() const { return device_; }
  // Bytes the driver reports in use on this device (cudaMemGetInfo), for the metrics'
  // cross-check of the arena's high-water mark.
  size_t driver_used_bytes() const override;
  size_t driver_free_bytes() const override;

  // ---- StreamDriver ----
  void* stream_create() override;
  void stream_destroy(void* s) noexcept override;
  void stream_synchronize(void* s) override;
  void* event_create() override;
  void event_destroy(void* e) noexcept override;
  void event_record(void* e, void* s) override;
  void stream_wait_event(void* s, void* e) override;
  void event_synchronize(void* e) override;
  double event_elapsed_s(void* a, void* b) override;

  void bind_thread() override;
  void pin_host_memory(void* p, size_t bytes) override;
  void unpin_host_memory(void* p, size_t bytes) noexcept override;
  void copy_to_device(void* dst, const void* host_src, size_t bytes, const Stream& s) override;
  void copy_to_host(void* host_dst, const void* src, size_t bytes, const Stream& s) override;
  void copy_on_device(void* dst, const void* src, size_t bytes, const Stream& s) override;
  void upload_weights(const Tensor& dst, quant::DType src_type, const void* host_src) override;

  void embedding(const Tensor& ids, const Tensor& table, const Tensor& out, const Stream& s) override;
  void rms_norm(const Tensor& x, const Tensor& w, float eps, const Tensor& out, const Stream& s) override;
  void layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, float eps, const Tensor& out,
                  const Stream& s) override;
  void linear(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out, const Stream& s) override;
  void add(const Tensor& a, const Tensor& b, const Tensor& out, const Stream& s) override;
  void activation(const Tensor& x, Activation act, const Stream& s) override;
  void linear_activation(const Tensor& x, const Tensor& w, const Tensor& bias, Activation act, const Tensor& out,
                         const Stream& s) override;
  void silu_mul(const Tensor& gate, const Tensor& up, const Tensor& out, const Stream& s) override;
  void rope(const Tensor& x, const Tensor& positions, float theta, const Stream& s) override;
  void kv_write(const Tensor& src, const Tensor& cache, const AttentionShape& sh, const Stream& s) override;
  void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& key_mask,
                 const Tensor& alibi_slopes, const AttentionShape& sh, float scale, const Tensor& out,
                 const Stream& s) override;
  void split_qkv(const Tensor& qkv, int heads, int head_dim, const Tensor& q, const Tensor& k, const Tensor& v,
                 const Stream& s) override;
  void last_rows(const Tensor& x, int batch, int tq, const Tensor& out, const Stream& s) override;
  void dequantize(const quant::QuantView& src, const Tensor& out, const Stream& s) override;
  void reserve_sampling(int rows, int vocab) override;
  void sample(const Tensor& logits, const SamplingOptions& opts, const Tensor& keys, uint64_t counter,
              const Tensor& ids, const Stream& s) override;

 protected:
  void* raw_alloc(size_t bytes) override;
  void raw_free(void* p) noexcept override;
  void* raw_alloc_host(size_t bytes) override;
  void raw_free_host(void* p) noexcept override;

 private:
  void check_dtype(const Tensor& t, const char* what) const;
  int device_;
  quant::DType dtype_;
  // The F16 / BF16 GEMM with the bias (and ReLU) in its epilogue; null for fp32.
  bool fused_linear(const Tensor& x, const Tensor& w, const Tensor& bias, bool relu, const Tensor& out,
                    const Stream& s);
  cublasHandle_t cublas_ = nullptr;
  DeviceBuffer cublas_workspace_;  // shared by cublas_ and lt_ (both only on the stream of the call)
  std::unique_ptr<cuda::LtGemm> lt_;
  DeviceBuffer sample_workspace_;
};

}  // namespace zinc::runtime
