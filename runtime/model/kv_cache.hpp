// The key/value cache of one batch, on the device or in host memory (--kv-offload):
//   device  per layer K and V of shape [B, t_max, KVH, hd] in the compute dtype, plus the
//           key mask [B, t_max] (1 where the position holds a real token: left padding
//           stays 0), all in the backend's budgeted arena;
//   host    offload/host_kv_cache.hpp: per layer K and V as [B, KVH, t_max, hd] rows in a
//           storage of choice (the compute dtype, f16, or int8/int4 group-wise along hd);
//           attention then runs on the CPU (offload/cpu_attention.hpp): the step's K/V and
//           queries come to the host, the attention output goes back (layers.cpp).
// Positions are shared by the batch: prompts are left-padded to a common length T and
// decode step s writes position T + s for every sequence, as transformers' generate()
// lays it out.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "offload/host_kv_cache.hpp"
#include "runtime/backend/backend.hpp"

namespace zinc::runtime {

struct KvPlacement {
  bool on_host = false;                               // --kv-offload
  offload::KvStorage storage = offload::KvStorage::F32;  // host storage (--kv-quant)
  int group = 64;                                     // int8/int4 group along hd (<= hd)
};

// --kv-quant: "none" (the compute dtype), "f16", "int8", "int4".
offload::KvStorage parse_kv_quant(const std::string& name, quant::DType compute);

class KvCache {
 public:
  KvCache(Backend& backend, const ModelConfig& config, int batch, int t_max, KvPlacement where = {});

  int batch() const { return batch_; }
  int t_max() const { return t_max_; }
  bool on_host() const { return host_ != nullptr; }
  // Device placement:
  const Tensor& k(int layer) const { return k_views_[layer]; }
  const Tensor& v(int layer) const { return v_views_[layer]; }
  const Tensor& key_mask() const { return mask_view_; }
  // Host placement (and the host mirror of the mask, [B, t_max], in both):
  offload::HostKvCache& host() const { return *host_; }
  const uint8_t* host_mask() const { return host_mask_.data(); }
  // Host buffers for the CPU attention path, grown on demand and reused.
  std::vector<float>& staging(int i) { return staging_[i]; }

  // Marks positions [t0, t0 + host_mask_cols) of every sequence from a host mask
  // [batch, cols] (U8) and uploads the mask.
  void set_mask(int t0, int cols, const uint8_t* host_mask);
  size_t bytes() const;
  // What the constructor allocates on the backend (the placement planner's KV share).
  static size_t device_bytes(const ModelConfig& c, int batch, int t_max, quant::DType t);

 private:
  Backend& backend_;
  int batch_, t_max_;
  std::vector<DeviceBuffer> k_, v_;
  std::vector<Tensor> k_views_, v_views_;
  DeviceBuffer mask_;
  Tensor mask_view_;
  std::vector<uint8_t> host_mask_;  // [B, t_max] mirror of the device mask
  std::unique_ptr<offload::HostKvCache> host_;
  std::vector<float> staging_[4];  // q, k, v, out
};

}  // namespace zinc::runtime
