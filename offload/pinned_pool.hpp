// PinnedPool: host memory for the weight tiers, allocated once in large chunks, page-locked
// ("pinned") and handed out as aligned sub-ranges that live as long as the pool.
//
// Why: pinning is slow (about 2 GiB/s on the H200 hosts, docs/DESIGN.md, "Performance model") and
// host->device copies from pageable memory run at a tenth of the pinned speed, so the CPU
// tier's shards and the NVMe tier's staging ring are pinned once, at load, and reused for
// the whole run; the time it took is reported.
//
// Pinning is done by a PinFn (the backend's: mlock on the CPU backend, cudaHostRegister on
// CUDA). When it fails (RLIMIT_MEMLOCK, say) the pool keeps the memory unpinned and says
// why in pin_error(): the run continues correctly, only slower, and the report shows it.
// Not thread-safe: allocate during setup, on one thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace zinc::offload {

class PinnedPool {
 public:
  // Pins [p, p + bytes); throws zinc::Error saying why on failure.
  using PinFn = std::function<void(void* p, size_t bytes)>;
  // Undoes a PinFn before the memory is unmapped (a CUDA registration outlives munmap and
  // would leave the driver holding pages that a later mapping reuses); must not throw.
  using UnpinFn = std::function<void(void* p, size_t bytes)>;
  static constexpr size_t kDefaultChunk = size_t(256) << 20;

  explicit PinnedPool(PinFn pin, size_t chunk_bytes = kDefaultChunk, UnpinFn unpin = nullptr);
  ~PinnedPool();
  PinnedPool(const PinnedPool&) = delete;
  PinnedPool& operator=(const PinnedPool&) = delete;

  // `bytes` of zeroed host memory aligned to `align` (a power of two <= 4096).
  uint8_t* allocate(size_t bytes, size_t align = 4096);

  size_t reserved_bytes() const { return reserved_; }  // chunks mapped
  size_t used_bytes() const { return used_; }          // handed out (with alignment)
  size_t chunks() const { return chunks_.size(); }
  double pin_seconds() const { return pin_s_; }        // mapping + pinning, all chunks
  bool pinned() const { return pin_error_.empty(); }
  const std::string& pin_error() const { return pin_error_; }

 private:
  struct Chunk {
    uint8_t* base = nullptr;
    size_t bytes = 0, used = 0;
    bool pinned = false;
  };
  PinFn pin_;
  UnpinFn unpin_;
  size_t chunk_bytes_;
  std::vector<Chunk> chunks_;
  size_t reserved_ = 0, used_ = 0;
  double pin_s_ = 0;
  std::string pin_error_;
};

// The CPU backend's PinFn: mlock(2) (which also faults every page in); munlock undoes it.
void mlock_pin(void* p, size_t bytes);
void munlock_unpin(void* p, size_t bytes) noexcept;

}  // namespace zinc::offload
