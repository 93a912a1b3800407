// HostKvCache: the KV cache of one batch in host memory, for decode attention on the CPU
// (--kv-offload: the cache no longer has to fit the GPU; the step's queries
// come to the host, cpu_attention runs here, and the outputs go back).
//
// Per layer, K and V each hold [B, KVH, t_max, hd] rows in one storage (f32, f16, int8,
// int4; quant/kv_quant.hpp), so the rows one kv head reads during decode are contiguous. Each
// array is 64-byte aligned, zero-filled by the OpenMP threads that will read it (first
// touch), and counted in `arena` when one is given (released when the cache goes away).
// Movable (not move-assignable); views stay valid as long as the cache lives.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "quant/kv_quant.hpp"
#include "offload/memory_arena.hpp"

namespace zinc::offload {

struct HostKvShape {
  int layers = 0;
  int batch = 0;     // B
  int kv_heads = 0;  // KVH
  int t_max = 0;     // positions per sequence
  int head_dim = 0;  // hd
  int group = 64;    // G for int8 / int4 (must divide hd)
};

class HostKvCache {
 public:
  HostKvCache(const HostKvShape& shape, quant::KvStorage storage, MemoryArena* arena = nullptr);
  ~HostKvCache();
  HostKvCache(HostKvCache&&) noexcept = default;
  HostKvCache& operator=(HostKvCache&&) = delete;  // would have to release the old arena share
  HostKvCache(const HostKvCache&) = delete;
  HostKvCache& operator=(const HostKvCache&) = delete;

  const HostKvShape& shape() const { return shape_; }
  quant::KvStorage storage() const { return storage_; }
  quant::KvView k(int layer) const;
  quant::KvView v(int layer) const;
  size_t bytes() const;  // every layer's K and V, codes and params

 private:
  struct FreeDeleter {
    void operator()(void* p) const noexcept;
  };
  using Block = std::unique_ptr<uint8_t, FreeDeleter>;
  quant::KvView view(const Block& codes, const Block& params) const;

  HostKvShape shape_;
  quant::KvStorage storage_;
  quant::KvBytes per_array_;                  // one layer's K (or V)
  std::vector<Block> codes_, params_;  // [2 * layer + (0: K, 1: V)]
  MemoryArena* arena_ = nullptr;
};

}  // namespace zinc::offload
