// The key/value cache of one batch: per layer K and V of shape [B, t_max, KVH, hd] in the
// compute dtype, plus the key mask [B, t_max] (1 where the position holds a real token:
// left padding stays 0). Positions are shared by the batch: prompts are left-padded to a
// common length T and decode step s writes position T + s for every sequence, as
// transformers' generate() lays it out.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/backend/backend.hpp"

namespace zinc::runtime {

class KvCache {
 public:
  KvCache(Backend& backend, const ModelConfig& config, int batch, int t_max);

  int batch() const { return batch_; }
  int t_max() const { return t_max_; }
  const Tensor& k(int layer) const { return k_views_[layer]; }
  const Tensor& v(int layer) const { return v_views_[layer]; }
  const Tensor& key_mask() const { return mask_view_; }

  // Marks positions [t0, t0 + host_mask_cols) of every sequence from a host mask
  // [batch, cols] (U8) and uploads the mask.
  void set_mask(int t0, int cols, const uint8_t* host_mask);
  size_t bytes() const;

 private:
  Backend& backend_;
  int batch_, t_max_;
  std::vector<DeviceBuffer> k_, v_;
  std::vector<Tensor> k_views_, v_views_;
  DeviceBuffer mask_;
  Tensor mask_view_;
  std::vector<uint8_t> host_mask_;  // [B, t_max] mirror of the device mask
};

}  // namespace zinc::runtime
