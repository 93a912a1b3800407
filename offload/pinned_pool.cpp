#include "offload/pinned_pool.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "partition/shard.hpp"
#include "runtime/common/clock.hpp"
#include "runtime/common/error.hpp"

namespace zinc::offload {

PinnedPool::PinnedPool(PinFn pin, size_t chunk_bytes, UnpinFn unpin)
    : pin_(std::move(pin)), unpin_(std::move(unpin)), chunk_bytes_(chunk_bytes) {
  ZINC_CHECK(chunk_bytes_ >= partition::kPageBytes && chunk_bytes_ % partition::kPageBytes == 0,
             "pinned pool: chunk of " << chunk_bytes_ << " bytes is not a positive multiple of 4096");
}

PinnedPool::~PinnedPool() {
  for (Chunk& c : chunks_) {
    if (c.pinned && unpin_) unpin_(c.base, c.bytes);
    munmap(c.base, c.bytes);
  }
}

uint8_t* PinnedPool::allocate(size_t bytes, size_t align) {
  ZINC_CHECK(align > 0 && align <= partition::kPageBytes && (align & (align - 1)) == 0,
             "pinned pool: alignment " << align << " is not a power of two <= 4096");
  if (bytes == 0) bytes = 1;
  for (Chunk& c : chunks_) {  // first fit: shards are allocated in order, chunks fill up
    const size_t at = (c.used + align - 1) & ~(align - 1);
    if (at + bytes <= c.bytes) {
      used_ += at + bytes - c.used;
      c.used = at + bytes;
      return c.base + at;
    }
  }
  const size_t size = std::max(chunk_bytes_, partition::round_up(bytes, partition::kPageBytes));
  const double t0 = now_s();
  void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ZINC_CHECK(p != MAP_FAILED, "pinned pool: mmap of " << size << " bytes failed: " << std::strerror(errno));
  bool pinned = false;
  if (pin_error_.empty() && pin_) {
    try {
      pin_(p, size);
      pinned = true;
    } catch (const Error& e) {
      pin_error_ = e.what();
    }
  }
  pin_s_ += seconds_since(t0);
  chunks_.push_back(Chunk{static_cast<uint8_t*>(p), size, bytes, pinned});
  reserved_ += size;
  used_ += bytes;
  return static_cast<uint8_t*>(p);
}

void munlock_unpin(void* p, size_t bytes) noexcept { munlock(p, bytes); }

void mlock_pin(void* p, size_t bytes) {
  if (mlock(p, bytes) == 0) return;
  const int err = errno;
  ZINC_THROW("mlock of " << bytes << " bytes failed: " << std::strerror(err)
                         << (err == ENOMEM || err == EPERM
                                 ? " (raise the locked-memory limit: ulimit -l unlimited)"
                                 : ""));
}

}  // namespace zinc::offload
