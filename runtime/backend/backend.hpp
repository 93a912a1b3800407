// Backend: a Device (offload/device.hpp: memory, streams, events, async copies) with the
// ops the model families need. Model code is written once against this interface
// (docs/DESIGN.md); the CPU backend (backend/cpu) is the fp32 reference, the CUDA backend
// runs the same ops as kernels and cuBLAS calls.
//
// Streams: every op and every copy names the stream it is queued on, and returns without
// waiting for it (the CPU backend happens to finish first; callers must not rely on it).
// compute_stream() is the backend's own stream for the forward pass and sampling; the
// weight pipeline adds a copy and a comm stream and orders them with events.
//
// Memory: device tensors are views of DeviceBuffers (budgeted in the arena). Host data
// reaches ops only through upload()/download() on a stream, under the Device's lifetime
// rule (pinned host memory that stays untouched until an event or host wait says the
// copy is done). Nothing is allocated inside a decode step: callers size their buffers
// once per run.
//
// Shapes: n = token rows (batch * new tokens), D = hidden size, V = vocab.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "offload/device.hpp"
#include "quant/quant_view.hpp"
#include "runtime/backend/activation.hpp"
#include "runtime/backend/attention_shape.hpp"
#include "runtime/backend/sampling.hpp"
#include "runtime/backend/tensor.hpp"

namespace zinc::runtime {

using offload::DeviceBuffer;
using offload::HostBuffer;

// A DeviceBuffer viewed as a tensor (checked to fit).
Tensor view_of(const DeviceBuffer& b, quant::DType t, std::initializer_list<int64_t> dims);


class Backend : public offload::Device {
 public:
  ~Backend() override = default;
  virtual quant::DType compute_dtype() const = 0;  // CPU: F32
  const Stream& compute_stream() const { return compute_; }
  // Device memory in use as the driver reports it (0 where there is no driver: the CPU),
  // to cross-check the arena's high-water mark.
  virtual size_t driver_used_bytes() const { return 0; }
  // Device memory the driver reports free (0 where there is no driver: the CPU), for the
  // run planner's budget when none is given.
  virtual size_t driver_free_bytes() const { return 0; }

  // ---- tensor copies (async on `s`; the lifetime rule of offload/device.hpp) ----
  void upload(const Tensor& dst, const void* host_src, const Stream& s) {
    copy_to_device(dst.data, host_src, dst.bytes(), s);
  }
  void download(void* host_dst, const Tensor& src, const Stream& s) {
    copy_to_host(host_dst, src.data, src.bytes(), s);
  }
  // Setup only (not async): host data of type `src_type` (F32/F16/BF16) converted to the
  // compute dtype into `dst`; returns when `host_src` may be reused.
  virtual void upload_weights(const Tensor& dst, quant::DType src_type, const void* host_src) = 0;

  // ---- ops; tensors in the compute dtype unless noted; each queued on `s` ----
  // out[i, :] = table[ids[i], :]; ids I32 [n] (checked against V by the caller, before
  // upload); table [V, D]; out [n, D]
  virtual void embedding(const Tensor& ids, const Tensor& table, const Tensor& out, const Stream& s) = 0;
  // out = x * rsqrt(mean(x^2) + eps) * w; x, out [n, D]; w [D]
  virtual void rms_norm(const Tensor& x, const Tensor& w, float eps, const Tensor& out, const Stream& s) = 0;
  // out = (x - mean) / sqrt(var + eps) * w + b; w and b may be empty (no affine)
  virtual void layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, float eps, const Tensor& out,
                          const Stream& s) = 0;
  // out = x @ w^T + bias; x [n, in]; w [out, in] (PyTorch Linear layout); bias [out] or empty
  virtual void linear(const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& out,
                      const Stream& s) = 0;
  // out = a + b (same shape; out may alias a or b)
  virtual void add(const Tensor& a, const Tensor& b, const Tensor& out, const Stream& s) = 0;
  // x = act(x), in place
  virtual void activation(const Tensor& x, Activation act, const Stream& s) = 0;
  // out = act(x @ w^T + bias): linear then activation; a backend may fuse them (CUDA: the
  // cuBLASLt ReLU-bias epilogue in F16 / BF16).
  virtual void linear_activation(const Tensor& x, const Tensor& w, const Tensor& bias, Activation act,
                                 const Tensor& out, const Stream& s) {
    linear(x, w, bias, out, s);
    activation(out, act, s);
  }
  // out = silu(gate) * up; gate, up, out [n, F]
  virtual void silu_mul(const Tensor& gate, const Tensor& up, const Tensor& out, const Stream& s) = 0;
  // Rotary embedding, rotate-half (GPT-NeoX / HF LLaMA) form, in place.
  // x [n, heads, hd]; positions I32 [n]; inv_freq[i] = theta^(-2i/hd)
  virtual void rope(const Tensor& x, const Tensor& positions, float theta, const Stream& s) = 0;
  // Writes the step's keys or values into the cache.
  // src [B*tq, KVH*hd]; cache [B, t_max, KVH, hd]; rows b*tq+i go to cache[b, t0+i]
  virtual void kv_write(const Tensor& src, const Tensor& cache, const AttentionShape& sh, const Stream& s) = 0;
  // Causal attention of the step's queries over the cache,
  // softmax(q k^T * scale + alibi) v.
  // q [B*tq, H*hd]; k_cache, v_cache [B, t_max, KVH, hd]; key_mask U8 [B, t_max]
  // (1 = key j of sequence b is a real token). Query i of sequence b (cache index t0+i)
  // sees keys j <= t0+i with key_mask[b, j] = 1; a query that sees none outputs zeros.
  // alibi_slopes F32 [H] or empty: adds slope[h] * p(b, j), where p(b, j) = the number of
  // real keys of sequence b before j (BLOOM's cumsum(mask) - 1). out [B*tq, H*hd]
  virtual void attention(const Tensor& q, const Tensor& k_cache, const Tensor& v_cache,
                         const Tensor& key_mask, const Tensor& alibi_slopes, const AttentionShape& sh,
                         float scale, const Tensor& out, const Stream& s) = 0;
  // Splits a fused projection laid out per head as [q(hd) k(hd) v(hd)] (BLOOM's
  // query_key_value): qkv [n, H*3*hd] -> q, k, v [n, H*hd].
  virtual void split_qkv(const Tensor& qkv, int heads, int head_dim, const Tensor& q, const Tensor& k,
                         const Tensor& v, const Stream& s) = 0;
  // out[b, :] = x[b*tq + tq-1, :]: the last new row of every sequence; x [B*tq, D]; out [B, D]
  virtual void last_rows(const Tensor& x, int batch, int tq, const Tensor& out, const Stream& s) = 0;
  // out (compute dtype, src's element count) = the stored tensor `src` (device memory,
  // e.g. a gathered layer blob) dequantized or converted; bit-exact with quant::dequantize.
  virtual void dequantize(const quant::QuantView& src, const Tensor& out, const Stream& s) = 0;
  // One token per row of logits [B, V] (compute dtype) into ids I32 [B]: argmax (lowest
  // index on ties) when opts.greedy(), else transformers' temperature -> top-k -> top-p ->
  // draw, with row b's uniform draw sequence_uniform(keys[b], counter) (sampling.hpp);
  // keys I64 [B] (the bits of each row's sequence_key). A row holding a NaN or +inf gets
  // kNonFiniteLogits (-1) instead of a token (sampling.hpp).
  virtual void sample(const Tensor& logits, const SamplingOptions& opts, const Tensor& keys,
                      uint64_t counter, const Tensor& ids, const Stream& s) = 0;
  // Takes the scratch sample() needs for up to rows x vocab logits (once per run, before
  // the first step; the CPU backend needs none).
  virtual void reserve_sampling(int /*rows*/, int /*vocab*/) {}

 protected:
  using offload::Device::Device;
  // Created by the derived constructor and released by the derived destructor: the
  // driver of its handle is the derived object.
  Stream compute_;
};

struct BackendOptions {
  std::string name = "cpu";  // --backend
  size_t budget_bytes = 0;   // --gpu-memory-budget; 0 = unlimited
  int threads = 0;           // OpenMP/OpenBLAS threads of host work (0 = their defaults)
  // The compute dtype: F32 on the CPU backend; CUDA: F16 or BF16 (F32 for parity tests).
  quant::DType dtype = quant::DType::F32;
  int local_rank = 0;        // this rank's index on its node: CUDA picks device local_rank % GPUs
};

// --dtype auto|fp32|fp16|bf16 for a backend: auto is F32 on the CPU and, on CUDA, BF16 for
// a checkpoint saved in bfloat16 (`torch_dtype`, may be empty) and F16 otherwise.
quant::DType choose_compute_dtype(const std::string& flag, const std::string& backend,
                                  const std::string& torch_dtype);

// --backend auto|cpu|cuda: auto is cuda where this build has it and a GPU is visible, else
// cpu; the other names are returned as they are.
std::string resolve_backend(const std::string& name);
// The backend a name asks for; throws zinc::Error naming the choices this build has.
std::unique_ptr<Backend> make_backend(const BackendOptions& opts);
// "cpu" (and "cuda" once the CUDA backend is built): for --help and `zinc --version`.
std::string available_backends();

}  // namespace zinc::runtime
