#include "runtime/backend/backend.hpp"

#include "offload/pinned_pool.hpp"

namespace zinc::runtime {

void Backend::pin_host_memory(void* p, size_t bytes) { offload::mlock_pin(p, bytes); }

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    reset();
    owner_ = o.owner_;
    data_ = o.data_;
    bytes_ = o.bytes_;
    o.owner_ = nullptr;
    o.data_ = nullptr;
    o.bytes_ = 0;
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

Tensor DeviceBuffer::view(quant::DType t, std::initializer_list<int64_t> dims) const {
  Tensor v(data_, t, dims);
  ZINC_CHECK(v.bytes() <= bytes_, "tensor view of " << v.bytes() << " bytes over a buffer of "
                                                    << bytes_ << " bytes");
  return v;
}

DeviceBuffer Backend::alloc(size_t bytes, const char* purpose) {
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

}  // namespace zinc::runtime
