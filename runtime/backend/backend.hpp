// Backend: where tensors live and how the model's ops run on them.
//
// Model code is written once against this interface (shared/DESIGN.md). The CPU backend
// (backend/cpu) is the fp32 reference: its streams and events are no-ops and every op is
// synchronous. The CUDA backend runs the same ops on streams, with events ordering the
// weight copy -> gather -> compute pipeline (ggml-backend's optional-capability idea:
// a backend that cannot overlap simply completes each call before returning).
//
// Memory: every allocation is accounted in the backend's MemoryArena, which has a hard
// budget (a refused allocation names its purpose) and a high-water mark ("peak backend
// memory" in the metrics). Ops take device Tensors; small integer inputs (token ids,
// positions, masks) are uploaded into device tensors by the caller with copy_to_device.
//
// Shapes: n = number of token rows (batch * new tokens), D = hidden size, V = vocab.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "offload/memory_arena.hpp"
#include "partition/blob.hpp"
#include "runtime/backend/tensor.hpp"
#include "runtime/model/config.hpp"

namespace zinc::runtime {

class Backend;

// Owning handle of backend memory; returns it to the backend (and its arena) when
// destroyed. Move-only.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(Backend* owner, void* data, size_t bytes) : owner_(owner), data_(data), bytes_(bytes) {}
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept { *this = std::move(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void reset() noexcept;
  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Tensor view(quant::DType t, std::initializer_list<int64_t> dims) const;

 private:
  Backend* owner_ = nullptr;
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

using StreamId = int;  // 0 = the default (compute) stream
using EventId = int;

// Geometry of one attention call over a KV cache laid out [B, Tmax, KVH, hd].
struct AttentionShape {
  int batch = 0;        // B
  int tq = 0;           // new tokens per sequence in this step
  int t0 = 0;           // cache index of the first new token; keys 0 .. t0+tq-1 exist
  int t_max = 0;        // cache capacity per sequence
  int heads = 0;        // H query heads
  int kv_heads = 0;     // KVH (H % KVH == 0: grouped-query attention)
  int head_dim = 0;     // hd
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  virtual quant::DType compute_dtype() const = 0;  // CPU: F32

  // ---- memory ----
  DeviceBuffer alloc(size_t bytes, const char* purpose);
  offload::MemoryArena& arena() { return *arena_; }
  const offload::MemoryArena& arena() const { return *arena_; }
  // Host <-> device copies (synchronous on the CPU backend; ordered on `stream` on CUDA).
  virtual void copy_to_device(const Tensor& dst, const void* host_src, StreamId stream = 0) = 0;
  virtual void copy_to_host(void* host_dst, const Tensor& src, StreamId stream = 0) = 0;
  // Uploads host data of type `src_type` (F32/F16/BF16) converted to the compute dtype.
  virtual void upload_weights(const Tensor& dst, quant::DType src_type, const void* host_src) = 0;

  // ---- streams and events (no-ops on the CPU backend) ----
  virtual StreamId create_stream() { return 0; }
  virtual EventId create_event() { return 0; }
  virtual void record_event(EventId, StreamId) {}
  virtual void wait_event(StreamId, EventId) {}
  virtual void synchronize() {}
  // Blocks the host until the work queued on `stream` so far has finished.
  virtual void synchronize_stream(StreamId) {}
  // Page-locks host memory for fast copies (offload/pinned_pool.hpp); throws zinc::Error
  // saying why it failed. CPU backend: mlock; CUDA: cudaHostRegister.
  virtual void pin_host_memory(void* p, size_t bytes);

  // ---- ops; all tensors in the compute dtype unless noted ----
  // out[i, :] = table[ids[i], :]; ids I32 [n]; table [V, D]; out [n, D]
  virtual void embedding(const Tensor& ids, const Tensor& table, const Tensor& out) = 0;
  // out = x * rsqrt(mean(x^2) + eps) * w; x, out [n, D]; w [D]
  virtual void rms_norm(const Tensor& x, const Tensor& w, float eps, const Tensor& out) = 0;
  // out = (x - mean) / sqrt(var + eps) * w + b; w and b may be empty (no affine)
  virtual void layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, float eps,
                          const Tensor& out) = 0;
  // out = x @ w^T + bias; x [n, in]; w [out, in] (PyTorch Linear layout); bias [out] or empty
  virtual void linear(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out) = 0;
  // out = a + b (same shape; out may alias a or b)
  virtual void add(const Tensor& a, const Tensor& b, const Tensor& out) = 0;
  // x = act(x), in place
  virtual void activation(const Tensor& x, Activation act) = 0;
  // out = silu(gate) * up; gate, up, out [n, F]
  virtual void silu_mul(const Tensor& gate, const Tensor& up, const Tensor& out) = 0;
  // Rotary embedding, rotate-half (GPT-NeoX / HF LLaMA) form, in place.
  // x [n, heads, hd]; positions I32 [n]; inv_freq[i] = theta^(-2i/hd)
  virtual void rope(const Tensor& x, const Tensor& positions, float theta) = 0;
  // Writes the step's keys or values into the cache.
  // src [B*tq, KVH*hd]; cache [B, t_max, KVH, hd]; rows b*tq+i go to cache[b, t0+i]
  virtual void kv_write(const Tensor& src, const Tensor& cache, const AttentionShape& s) = 0;
  // Causal attention of the step's queries over the cache,
  // softmax(q k^T * scale + alibi) v.
  // q [B*tq, H*hd]; k_cache, v_cache [B, t_max, KVH, hd]; key_mask U8 [B, t_max]
  // (1 = key j of sequence b is a real token). Query i of sequence b (cache index t0+i)
  // sees keys j <= t0+i with key_mask[b, j] = 1; a query that sees none outputs zeros.
  // alibi_slopes F32 [H] or empty: adds slope[h] * p(b, j), where p(b, j) = the number of
  // real keys of sequence b before j (BLOOM's cumsum(mask) - 1). out [B*tq, H*hd]
  virtual void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                         const Tensor& key_mask, const Tensor& alibi_slopes,
                         const AttentionShape& s, float scale, const Tensor& out) = 0;
  // Splits a fused projection laid out per head as [q(hd) k(hd) v(hd)] (BLOOM's
  // query_key_value): qkv [n, H*3*hd] -> q, k, v [n, H*hd].
  virtual void split_qkv(const Tensor& qkv, int heads, int head_dim, const Tensor& q,
                         const Tensor& k, const Tensor& v) = 0;
  // out[b, :] = x[b*tq + tq-1, :]: the last new row of every sequence; x [B*tq, D]; out [B, D]
  virtual void last_rows(const Tensor& x, int batch, int tq, const Tensor& out) = 0;
  // x *= s, in place
  virtual void scale(const Tensor& x, float s) = 0;
  // Param p of a gathered layer blob (device bytes, blob[0] = the blob's first byte) into
  // `out` (compute dtype, p's shape): dequantizes or converts from the stored dtype.
  virtual void unpack_param(const partition::BlobParam& p, int group_size, const uint8_t* blob,
                            const Tensor& out) = 0;

 protected:
  explicit Backend(std::unique_ptr<offload::MemoryArena> arena) : arena_(std::move(arena)) {}
  virtual void* raw_alloc(size_t bytes) = 0;
  virtual void raw_free(void* p) noexcept = 0;

 private:
  friend class DeviceBuffer;
  std::unique_ptr<offload::MemoryArena> arena_;
};

}  // namespace zinc::runtime
