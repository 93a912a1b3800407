#include "runtime/model/kv_cache.hpp"

namespace zinc::runtime {

KvCache::KvCache(Backend& backend, const ModelConfig& c, int batch, int t_max)
    : backend_(backend), batch_(batch), t_max_(t_max) {
  const quant::DType t = backend.compute_dtype();
  const int64_t elems = static_cast<int64_t>(batch) * t_max * c.num_kv_heads * c.head_dim;
  for (int l = 0; l < c.num_layers; ++l) {
    k_.push_back(backend.alloc(elems * quant::dtype_size(t), "KV cache (keys)"));
    v_.push_back(backend.alloc(elems * quant::dtype_size(t), "KV cache (values)"));
    k_views_.push_back(k_.back().view(t, {batch, t_max, c.num_kv_heads, c.head_dim}));
    v_views_.push_back(v_.back().view(t, {batch, t_max, c.num_kv_heads, c.head_dim}));
  }
  mask_ = backend.alloc(static_cast<size_t>(batch) * t_max, "KV cache (key mask)");
  mask_view_ = mask_.view(quant::DType::U8, {batch, t_max});
  host_mask_.assign(static_cast<size_t>(batch) * t_max, 0);
  backend_.copy_to_device(mask_view_, host_mask_.data());
}

void KvCache::set_mask(int t0, int cols, const uint8_t* host_mask) {
  ZINC_CHECK(t0 >= 0 && t0 + cols <= t_max_, "KV cache: positions [" << t0 << ", " << t0 + cols
                                                << ") exceed its capacity " << t_max_);
  for (int b = 0; b < batch_; ++b)
    for (int i = 0; i < cols; ++i)
      host_mask_[static_cast<size_t>(b) * t_max_ + t0 + i] = host_mask[b * cols + i];
  backend_.copy_to_device(mask_view_, host_mask_.data());
}

size_t KvCache::bytes() const {
  size_t n = mask_.bytes();
  for (size_t l = 0; l < k_.size(); ++l) n += k_[l].bytes() + v_[l].bytes();
  return n;
}

}  // namespace zinc::runtime
