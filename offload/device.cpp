// Device: buffer handles, budgeted allocation, the default host transfer memory, and the
// host-timed stream driver (the contract is in device.hpp).
#include "offload/device.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "offload/pinned_pool.hpp"
#include "partition/shard.hpp"
#include "runtime/common/clock.hpp"
#include "runtime/common/error.hpp"

namespace zinc::offload {

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    reset();
    std::swap(owner_, o.owner_);
    std::swap(data_, o.data_);
    std::swap(bytes_, o.bytes_);
  }
  return *this;
}

void DeviceBuffer::reset() noexcept {
  if (owner_ && data_) {
    owner_->raw_free(data_);
    owner_->arena_->release(bytes_);
  }
  owner_ = nullptr;
  data_ = nullptr;
  bytes_ = 0;
}

HostBuffer& HostBuffer::operator=(HostBuffer&& o) noexcept {
  if (this != &o) {
    reset();
    std::swap(owner_, o.owner_);
    std::swap(data_, o.data_);
    std::swap(bytes_, o.bytes_);
  }
  return *this;
}

void HostBuffer::reset() noexcept {
  if (owner_ && data_) owner_->raw_free_host(data_);
  owner_ = nullptr;
  data_ = nullptr;
  bytes_ = 0;
}

DeviceBuffer Device::alloc(size_t bytes, const char* purpose) {
  if (bytes == 0) return DeviceBuffer();
  arena_->allocate(bytes, purpose);
  void* p = nullptr;
  try {
    p = raw_alloc(bytes);
  } catch (...) {
    arena_->release(bytes);
    throw;
  }
  return DeviceBuffer(this, p, bytes);
}

HostBuffer Device::alloc_host(size_t bytes, const char* purpose) {
  if (bytes == 0) return HostBuffer();
  void* p = raw_alloc_host(bytes);
  ZINC_CHECK(p != nullptr, name() << ": out of host memory allocating " << format_bytes(bytes) << " for "
                                  << purpose);
  std::memset(p, 0, bytes);
  return HostBuffer(this, p, bytes);
}

void Device::pin_host_memory(void* p, size_t bytes) { mlock_pin(p, bytes); }

void Device::unpin_host_memory(void* p, size_t bytes) noexcept { munlock_unpin(p, bytes); }

void* Device::raw_alloc_host(size_t bytes) {
  return std::aligned_alloc(partition::kPageBytes, partition::round_up(bytes, partition::kPageBytes));
}

void Device::raw_free_host(void* p) noexcept { std::free(p); }

// ---- HostStreams ----------------------------------------------------------------------

namespace {
struct HostEvent {
  std::atomic<double> t{0.0};  // host steady clock at the latest record
};
char host_stream_token;  // every host stream is this token: there is nothing to queue
}  // namespace

void* HostStreams::stream_create() { return &host_stream_token; }
void HostStreams::stream_destroy(void*) noexcept {}
void* HostStreams::event_create() { return new HostEvent; }
void HostStreams::event_destroy(void* e) noexcept { delete static_cast<HostEvent*>(e); }
void HostStreams::event_record(void* e) { static_cast<HostEvent*>(e)->t.store(now_s()); }
double HostStreams::event_elapsed_s(void* from, void* to) {
  return static_cast<HostEvent*>(to)->t.load() - static_cast<HostEvent*>(from)->t.load();
}

}  // namespace zinc::offload
