// CudaBackend: streams, events, memory and copies on the CUDA runtime, GEMMs on cuBLAS,
// every other op through the launchers of kernels.hpp (the contract is in
// cuda_backend.hpp). Orchestration only: no element loops here.
#include "runtime/backend/cuda/cuda_backend.hpp"

#include <vector>

#include "offload/memory_arena.hpp"
#include "runtime/backend/cuda/kernels.hpp"
#include "runtime/common/clock.hpp"
#include "runtime/common/poll_wait.hpp"

namespace zinc::runtime {
namespace {

constexpr size_t kCublasWorkspace = size_t(32) << 20;  // cuBLAS's recommended size on Hopper

cudaStream_t native(const Stream& s) { return static_cast<cudaStream_t>(s.native()); }

void check_rows(const Tensor& a, const Tensor& b, const char* op) {
  ZINC_CHECK(a.numel() == b.numel() && a.cols() == b.cols(),
             op << ": shape mismatch (" << a.rows() << "x" << a.cols() << " vs " << b.rows() << "x" << b.cols() << ")");
}

}  // namespace

CudaBackend::CudaBackend(int device, quant::DType dtype, size_t budget_bytes)
    : Backend(std::make_unique<offload::MemoryArena>("cuda device " + std::to_string(device), budget_bytes)),
      device_(device),
      dtype_(dtype) {
  ZINC_CHECK(dtype == quant::DType::F32 || dtype == quant::DType::F16 || dtype == quant::DType::BF16,
             "cuda backend: compute dtype " << quant::dtype_name(dtype) << " (F32, F16 or BF16)");
  ZINC_CUDA_CHECK(cudaSetDevice(device));
  compute_ = create_stream();
  ZINC_CUBLAS_CHECK(cublasCreate(&cublas_));
  // fp32 GEMMs stay fp32 (no TF32): --dtype fp32 is the parity mode.
  ZINC_CUBLAS_CHECK(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH));
  cublas_workspace_ = alloc(kCublasWorkspace, "cuBLAS workspace");
  ZINC_CUBLAS_CHECK(cublasSetWorkspace(cublas_, cublas_workspace_.data(), cublas_workspace_.bytes()));
  if (dtype_ != quant::DType::F32)
    lt_ = std::make_unique<cuda::LtGemm>(cublas_workspace_.data(), cublas_workspace_.bytes());
}

CudaBackend::~CudaBackend() {
  try {
    compute_.synchronize();
  } catch (const std::exception& e) {
    log_error(std::string("cuda backend teardown: ") + e.what());
  }
  lt_.reset();
  if (cublas_ && cublasDestroy(cublas_) != CUBLAS_STATUS_SUCCESS) log_error("cublasDestroy failed");
  sample_workspace_.reset();
  cublas_workspace_.reset();
  compute_ = Stream();  // while this driver still exists
}

size_t CudaBackend::driver_used_bytes() const {
  size_t free_b = 0, total_b = 0;
  ZINC_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  return total_b - free_b;
}

size_t CudaBackend::driver_free_bytes() const {
  size_t free_b = 0, total_b = 0;
  ZINC_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  return free_b;
}

// ---- StreamDriver ----------------------------------------------------------------------

void* CudaBackend::stream_create() {
  cudaStream_t s = nullptr;
  ZINC_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return s;
}

void CudaBackend::stream_destroy(void* s) noexcept {
  if (cudaStreamDestroy(static_cast<cudaStream_t>(s)) != cudaSuccess) log_error("cudaStreamDestroy failed");
}

void CudaBackend::stream_synchronize(void* s) { ZINC_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(s))); }

void* CudaBackend::event_create() {
  cudaEvent_t e = nullptr;
  // With timing (stage times come from events), and blocking sync: a long host wait sleeps
  // in the driver instead of spinning a core (event_synchronize).
  ZINC_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventBlockingSync));
  return e;
}

void CudaBackend::event_destroy(void* e) noexcept {
  if (cudaEventDestroy(static_cast<cudaEvent_t>(e)) != cudaSuccess) log_error("cudaEventDestroy failed");
}

void CudaBackend::event_record(void* e, void* s) {
  ZINC_CUDA_CHECK(cudaEventRecord(static_cast<cudaEvent_t>(e), static_cast<cudaStream_t>(s)));
}

void CudaBackend::stream_wait_event(void* s, void* e) {
  ZINC_CUDA_CHECK(cudaStreamWaitEvent(static_cast<cudaStream_t>(s), static_cast<cudaEvent_t>(e), 0));
}

// A short wait spins on cudaEventQuery, as cudaEventSynchronize did by default, so it ends
// as soon as the event does; one past PollPolicy::kSpinS (a step, a gather a peer is late
// for, a stalled peer's NCCL gather until the watchdog aborts it) sleeps in
// cudaEventSynchronize on the blocking-sync event instead of holding a core at 100%.
void CudaBackend::event_synchronize(void* e) {
  const auto event = static_cast<cudaEvent_t>(e);
  const double t0 = now_s();
  do {
    const cudaError_t rc = cudaEventQuery(event);
    if (rc == cudaSuccess) return;
    if (rc != cudaErrorNotReady)
      ZINC_THROW("CUDA call failed: cudaEventQuery(event): " << cudaGetErrorName(rc) << ": " << cudaGetErrorString(rc));
  } while (now_s() - t0 < PollPolicy::kSpinS);
  ZINC_CUDA_CHECK(cudaEventSynchronize(event));
}

double CudaBackend::event_elapsed_s(void* a, void* b) {
  float ms = 0;
  ZINC_CUDA_CHECK(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(a), static_cast<cudaEvent_t>(b)));
  return ms * 1e-3;
}

// ---- memory and copies -----------------------------------------------------------------

void* CudaBackend::raw_alloc(size_t bytes) {
  void* p = nullptr;
  ZINC_CUDA_CHECK(cudaMalloc(&p, bytes));
  return p;
}

void CudaBackend::raw_free(void* p) noexcept {
  if (cudaFree(p) != cudaSuccess) log_error("cudaFree failed");
}

void* CudaBackend::raw_alloc_host(size_t bytes) {
  void* p = nullptr;
  ZINC_CUDA_CHECK(cudaHostAlloc(&p, bytes, cudaHostAllocDefault));
  return p;
}

void CudaBackend::raw_free_host(void* p) noexcept {
  if (cudaFreeHost(p) != cudaSuccess) log_error("cudaFreeHost failed");
}

void CudaBackend::bind_thread() { ZINC_CUDA_CHECK(cudaSetDevice(device_)); }

void CudaBackend::pin_host_memory(void* p, size_t bytes) {
  const cudaError_t rc = cudaHostRegister(p, bytes, cudaHostRegisterDefault);
  if (rc != cudaSuccess) {
    cudaGetLastError();  // the error is reported, not left pending for the next launch check
    ZINC_THROW("cudaHostRegister of " << offload::format_bytes(bytes) << ": " << cudaGetErrorString(rc));
  }
}

void CudaBackend::unpin_host_memory(void* p, size_t) noexcept {
  if (cudaHostUnregister(p) != cudaSuccess) {
    cudaGetLastError();
    log_error("cudaHostUnregister failed");
  }
}

void CudaBackend::copy_to_device(void* dst, const void* host_src, size_t bytes, const Stream& s) {
  if (bytes == 0) return;
  ZINC_CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, native(s)));
}

void CudaBackend::copy_to_host(void* host_dst, const void* src, size_t bytes, const Stream& s) {
  if (bytes == 0) return;
  ZINC_CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, native(s)));
}

void CudaBackend::copy_on_device(void* dst, const void* src, size_t bytes, const Stream& s) {
  if (bytes == 0) return;
  ZINC_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, native(s)));
}

void CudaBackend::upload_weights(const Tensor& dst, quant::DType src_type, const void* host_src) {
  check_dtype(dst, "weights");
  std::vector<uint8_t> converted(dst.bytes());
  quant::convert(src_type, host_src, dst.dtype, converted.data(), static_cast<size_t>(dst.numel()));
  ZINC_CUDA_CHECK(cudaMemcpy(dst.data, converted.data(), converted.size(), cudaMemcpyHostToDevice));
}

void CudaBackend::check_dtype(const Tensor& t, const char* what) const {
  ZINC_CHECK(t.dtype == dtype_, "cuda backend: " << what << " must be " << quant::dtype_name(dtype_) << ", got "
                                                 << quant::dtype_name(t.dtype));
}

// ---- ops -------------------------------------------------------------------------------

void CudaBackend::embedding(const Tensor& ids, const Tensor& table, const Tensor& out, const Stream& s) {
  check_dtype(table, "embedding table");
  ZINC_CHECK(out.rows() == ids.numel() && out.cols() == table.cols(), "embedding: output shape mismatch");
  cuda::embedding(dtype_, ids.ptr<int32_t>(), table.data, ids.numel(), table.cols(), out.data, native(s));
}

void CudaBackend::rms_norm(const Tensor& x, const Tensor& w, float eps, const Tensor& out, const Stream& s) {
  check_rows(x, out, "rms_norm");
  cuda::rms_norm(dtype_, x.data, w.data, eps, x.rows(), x.cols(), out.data, native(s));
}

void CudaBackend::layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, float eps, const Tensor& out,
                             const Stream& s) {
  check_rows(x, out, "layer_norm");
  cuda::layer_norm(dtype_, x.data, w.empty() ? nullptr : w.data, b.empty() ? nullptr : b.data, eps, x.rows(),
                   x.cols(), out.data, native(s));
}

void CudaBackend::add(const Tensor& a, const Tensor& b, const Tensor& out, const Stream& s) {
  check_rows(a, b, "add");
  check_rows(a, out, "add");
  cuda::add(dtype_, a.data, b.data, out.data, a.numel(), native(s));
}

void CudaBackend::activation(const Tensor& x, Activation act, const Stream& s) {
  cuda::activation(dtype_, x.data, x.numel(), act, native(s));
}

void CudaBackend::silu_mul(const Tensor& gate, const Tensor& up, const Tensor& out, const Stream& s) {
  check_rows(gate, up, "silu_mul");
  check_rows(gate, out, "silu_mul");
  cuda::silu_mul(dtype_, gate.data, up.data, out.data, gate.numel(), native(s));
}

void CudaBackend::rope(const Tensor& x, const Tensor& positions, float theta, const Stream& s) {
  ZINC_CHECK(x.ndim() == 3, "rope: x must be [n, heads, head_dim]");
  ZINC_CHECK(positions.numel() == x.dim(0), "rope: " << positions.numel() << " positions for " << x.dim(0) << " rows");
  cuda::rope(dtype_, x.data, positions.ptr<int32_t>(), x.dim(0), static_cast<int>(x.dim(1)),
             static_cast<int>(x.dim(2)), theta, native(s));
}

void CudaBackend::kv_write(const Tensor& src, const Tensor& cache, const AttentionShape& sh, const Stream& s) {
  const int64_t row = static_cast<int64_t>(sh.kv_heads) * sh.head_dim;
  ZINC_CHECK(src.cols() == row && src.rows() == static_cast<int64_t>(sh.batch) * sh.tq,
             "kv_write: source shape mismatch");
  ZINC_CHECK(sh.t0 + sh.tq <= sh.t_max, "kv_write: cache of " << sh.t_max << " positions is full");
  cuda::kv_write(dtype_, src.data, cache.data, sh, native(s));
}

void CudaBackend::attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache, const Tensor& key_mask,
                            const Tensor& alibi_slopes, const AttentionShape& sh, float scale, const Tensor& out,
                            const Stream& s) {
  check_dtype(q, "attention queries");
  check_dtype(k_cache, "key cache");
  cuda::attention(dtype_, q.data, k_cache.data, v_cache.data, key_mask.ptr<uint8_t>(),
                  alibi_slopes.empty() ? nullptr : alibi_slopes.ptr<float>(), sh, scale, out.data, native(s));
}

void CudaBackend::split_qkv(const Tensor& qkv, int heads, int head_dim, const Tensor& q, const Tensor& k,
                            const Tensor& v, const Stream& s) {
  ZINC_CHECK(qkv.cols() == 3 * static_cast<int64_t>(heads) * head_dim, "split_qkv: fused row of " << qkv.cols());
  cuda::split_qkv(dtype_, qkv.data, qkv.rows(), heads, head_dim, q.data, k.data, v.data, native(s));
}

void CudaBackend::last_rows(const Tensor& x, int batch, int tq, const Tensor& out, const Stream& s) {
  ZINC_CHECK(out.rows() == batch && out.cols() == x.cols(), "last_rows: output shape mismatch");
  cuda::last_rows(dtype_, x.data, batch, tq, x.cols(), out.data, native(s));
}

void CudaBackend::dequantize(const quant::QuantView& src, const Tensor& out, const Stream& s) {
  ZINC_CHECK(out.numel() == src.numel(), "dequantize: the stored tensor has " << src.numel()
                                                                             << " elements, the output " << out.numel());
  cuda::dequantize(src, out.dtype, out.data, native(s));
}

void CudaBackend::reserve_sampling(int rows, int vocab) {
  const size_t need = cuda::sample_workspace_bytes(rows, vocab);
  if (need > sample_workspace_.bytes()) {
    sample_workspace_.reset();
    sample_workspace_ = alloc(need, "sampling scratch");
  }
}

void CudaBackend::sample(const Tensor& logits, const SamplingOptions& o, const Tensor& keys, uint64_t counter,
                         const Tensor& ids, const Stream& s) {
  check_dtype(logits, "logits");
  const int rows = static_cast<int>(logits.rows()), vocab = static_cast<int>(logits.cols());
  ZINC_CHECK(ids.numel() == rows && ids.dtype == quant::DType::I32, "sample: ids must be I32 [" << rows << "]");
  ZINC_CHECK(o.greedy() || keys.numel() >= rows, "sample: " << keys.numel() << " stream keys for " << rows << " rows");
  ZINC_CHECK(cuda::sample_workspace_bytes(rows, vocab) <= sample_workspace_.bytes(),
             "sample: " << rows << " x " << vocab << " logits need reserve_sampling() first");
  cuda::sample(dtype_, logits.data, rows, vocab, o.temperature, o.top_k, o.top_p, keys.ptr<int64_t>(), counter,
               ids.ptr<int32_t>(), sample_workspace_.data(), sample_workspace_.bytes(), native(s));
}

}  // namespace zinc::runtime
