#include "runtime/model/kv_cache.hpp"

#include <algorithm>

namespace zinc::runtime {

offload::KvStorage parse_kv_quant(const std::string& name, quant::DType compute) {
  if (name == "none")
    return compute == quant::DType::F16 ? offload::KvStorage::F16 : offload::KvStorage::F32;
  ZINC_CHECK(name == "f16" || name == "int8" || name == "int4",
             "--kv-quant '" << name << "' is not a KV storage (none, f16, int8, int4)");
  return offload::parse_kv_storage(name);
}

KvCache::KvCache(Backend& backend, const ModelConfig& c, int batch, int t_max, KvPlacement where)
    : backend_(backend), batch_(batch), t_max_(t_max) {
  host_mask_.assign(static_cast<size_t>(batch) * t_max, 0);
  if (where.on_host) {
    offload::HostKvShape shape;
    shape.layers = c.num_layers;
    shape.batch = batch;
    shape.kv_heads = c.num_kv_heads;
    shape.t_max = t_max;
    shape.head_dim = c.head_dim;
    shape.group = std::min(where.group, c.head_dim);
    host_ = std::make_unique<offload::HostKvCache>(shape, where.storage);
    return;
  }
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
  backend_.copy_to_device(mask_view_, host_mask_.data());
}

void KvCache::set_mask(int t0, int cols, const uint8_t* host_mask) {
  ZINC_CHECK(t0 >= 0 && t0 + cols <= t_max_, "KV cache: positions [" << t0 << ", " << t0 + cols
                                                << ") exceed its capacity " << t_max_);
  for (int b = 0; b < batch_; ++b)
    for (int i = 0; i < cols; ++i)
      host_mask_[static_cast<size_t>(b) * t_max_ + t0 + i] = host_mask[b * cols + i];
  if (!host_) backend_.copy_to_device(mask_view_, host_mask_.data());
}

size_t KvCache::device_bytes(const ModelConfig& c, int batch, int t_max, quant::DType t) {
  const size_t elems = static_cast<size_t>(batch) * t_max * c.num_kv_heads * c.head_dim;
  return 2 * c.num_layers * elems * quant::dtype_size(t) + static_cast<size_t>(batch) * t_max;
}

size_t KvCache::bytes() const {
  if (host_) return host_->bytes() + host_mask_.size();
  size_t n = mask_.bytes();
  for (size_t l = 0; l < k_.size(); ++l) n += k_[l].bytes() + v_[l].bytes();
  return n;
}

}  // namespace zinc::runtime
