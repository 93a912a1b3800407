// HostKvCache: allocation and views (the contract is in host_kv_cache.hpp).
#include "offload/host_kv_cache.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "runtime/common/error.hpp"

namespace zinc::offload {
namespace {

// 64-byte aligned (2 MiB for large arrays, so that they can take transparent huge pages),
// zeroed in parallel so each page lands where its readers run.
uint8_t* alloc_zeroed(size_t bytes) {
  if (bytes == 0) return nullptr;
  constexpr size_t kHuge = size_t{2} << 20;
  const size_t align = bytes >= kHuge ? kHuge : 64;
  const size_t rounded = (bytes + align - 1) / align * align;
  auto* p = static_cast<uint8_t*>(std::aligned_alloc(align, rounded));
  ZINC_CHECK(p != nullptr, "host KV cache: out of host memory allocating " << format_bytes(bytes));
  // A decode step streams the whole cache: 4 KiB pages cost a TLB miss every 4 KiB and stop
  // the hardware prefetchers at every page. Advisory ("madvise" THP mode); failure is fine.
  if (align == kHuge) ::madvise(p, rounded, MADV_HUGEPAGE);
  constexpr int64_t kChunk = int64_t{1} << 20;
  const int64_t chunks = (static_cast<int64_t>(rounded) + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kChunk;
    std::memset(p + begin, 0, static_cast<size_t>(std::min<int64_t>(kChunk, rounded - begin)));
  }
  return p;
}

}  // namespace

void HostKvCache::FreeDeleter::operator()(void* p) const noexcept { std::free(p); }

HostKvCache::HostKvCache(const HostKvShape& s, quant::KvStorage storage, MemoryArena* arena)
    : shape_(s), storage_(storage) {
  ZINC_CHECK(s.layers > 0 && s.batch > 0 && s.kv_heads > 0 && s.t_max > 0,
             "host KV cache: bad shape (layers " << s.layers << ", batch " << s.batch
                                                 << ", kv_heads " << s.kv_heads << ", t_max "
                                                 << s.t_max << ")");
  per_array_ = quant::kv_cache_bytes(storage, s.batch, s.kv_heads, s.t_max, s.head_dim, s.group);
  if (arena != nullptr) {
    arena->allocate(bytes(), "host KV cache");
    arena_ = arena;
  }
  try {
    for (int a = 0; a < 2 * s.layers; ++a) {
      codes_.emplace_back(alloc_zeroed(per_array_.codes));
      params_.emplace_back(alloc_zeroed(per_array_.params));
    }
  } catch (...) {
    if (arena_ != nullptr) arena_->release(bytes());
    throw;
  }
}

HostKvCache::~HostKvCache() {
  if (arena_ != nullptr && !codes_.empty()) arena_->release(bytes());
}

size_t HostKvCache::bytes() const {
  return 2 * static_cast<size_t>(shape_.layers) * per_array_.total();
}

quant::KvView HostKvCache::view(const Block& codes, const Block& params) const {
  quant::KvView v;
  v.storage = storage_;
  v.head_dim = shape_.head_dim;
  v.group = shape_.group;
  v.t_max = shape_.t_max;
  v.pos_stride = 1;
  v.head_stride = shape_.t_max;
  v.seq_stride = static_cast<int64_t>(shape_.kv_heads) * shape_.t_max;
  v.data = codes.get();
  v.params = reinterpret_cast<uint16_t*>(params.get());
  return v;
}

quant::KvView HostKvCache::k(int layer) const {
  ZINC_CHECK(layer >= 0 && layer < shape_.layers, "host KV cache: no layer " << layer);
  return view(codes_[2 * layer], params_[2 * layer]);
}

quant::KvView HostKvCache::v(int layer) const {
  ZINC_CHECK(layer >= 0 && layer < shape_.layers, "host KV cache: no layer " << layer);
  return view(codes_[2 * layer + 1], params_[2 * layer + 1]);
}

}  // namespace zinc::offload
