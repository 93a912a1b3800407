// Device: one memory space that compute runs next to, and the ways bytes get in and out
// of it — the budgeted device memory, pinned host memory for transfers, streams, events
// and async copies. The weight pipeline (offload/weight_stream.hpp) is written against
// it; runtime::Backend (runtime/backend/backend.hpp) is a Device that also has the model's
// ops. Where memory lives is kept apart from what it is used for (TensorRT-LLM's
// BufferManager / MemoryType, ggml's buffer types).
//
// Memory: every device allocation is accounted in the Device's MemoryArena (a hard
// budget: a refused allocation names its purpose; a high-water mark: "peak device
// memory"). Host buffers from alloc_host() are page-locked where the device can use that
// (cudaHostAlloc), are not budgeted, and are what async copies read and write.
//
// The lifetime rule of async copies: copy_to_device / copy_to_host only enqueue the copy
// on `stream`. The host side of the copy must be pinned (alloc_host, or a PinnedPool
// range) and must stay alive and unchanged (copy_to_device) or unread (copy_to_host)
// until an event recorded on that stream after the copy has completed — or until a later
// host wait on that stream (Stream::synchronize, Event::synchronize) has returned. The CPU
// backend copies before returning, but callers follow the rule anyway so that the same
// code is right on a GPU.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "offload/memory_arena.hpp"
#include "runtime/common/stream.hpp"

namespace zinc::offload {

class Device;

// Owning handle of device memory (accounted in the device's arena). Move-only.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(DeviceBuffer&& o) noexcept { *this = std::move(o); }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void reset() noexcept;
  void* data() const { return data_; }
  uint8_t* bytes_ptr() const { return static_cast<uint8_t*>(data_); }
  size_t bytes() const { return bytes_; }

 private:
  friend class Device;
  DeviceBuffer(Device* owner, void* data, size_t bytes) : owner_(owner), data_(data), bytes_(bytes) {}
  Device* owner_ = nullptr;
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

// Owning handle of host memory for transfers (pinned where the device pins). Move-only;
// zero-filled; 4 KiB aligned (whole pages: O_DIRECT reads may land in it).
class HostBuffer {
 public:
  HostBuffer() = default;
  ~HostBuffer() { reset(); }
  HostBuffer(HostBuffer&& o) noexcept { *this = std::move(o); }
  HostBuffer& operator=(HostBuffer&& o) noexcept;
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;

  void reset() noexcept;
  void* data() const { return data_; }
  template <typename T>
  T* as() const { return static_cast<T*>(data_); }
  size_t bytes() const { return bytes_; }

 private:
  friend class Device;
  HostBuffer(Device* owner, void* data, size_t bytes) : owner_(owner), data_(data), bytes_(bytes) {}
  Device* owner_ = nullptr;
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

class Device : public StreamDriver {
 public:
  virtual ~Device() = default;
  virtual std::string name() const = 0;

  // ---- memory ----
  DeviceBuffer alloc(size_t bytes, const char* purpose);
  HostBuffer alloc_host(size_t bytes, const char* purpose);
  MemoryArena& arena() { return *arena_; }
  const MemoryArena& arena() const { return *arena_; }
  // Page-locks existing host memory (PinnedPool's PinFn); throws zinc::Error saying why.
  // CPU: mlock; CUDA: cudaHostRegister.
  virtual void pin_host_memory(void* p, size_t bytes);
  // Undoes pin_host_memory before the memory is freed (CPU: munlock; CUDA:
  // cudaHostUnregister); logs instead of throwing.
  virtual void unpin_host_memory(void* p, size_t bytes) noexcept;

  // Makes the calling thread work on this device (cudaSetDevice: the current device is
  // per thread); every thread that queues work calls it first. No-op on the CPU.
  virtual void bind_thread() {}

  // ---- streams and events (runtime/common/stream.hpp) ----
  Stream create_stream() { return Stream(this); }
  Event create_event() { return Event(this); }

  // ---- async copies (the lifetime rule above) ----
  virtual void copy_to_device(void* dst, const void* host_src, size_t bytes, const Stream& s) = 0;
  virtual void copy_to_host(void* host_dst, const void* src, size_t bytes, const Stream& s) = 0;
  // Device -> device (the bandwidth reference of the device's own memory).
  virtual void copy_on_device(void* dst, const void* src, size_t bytes, const Stream& s) = 0;

 protected:
  explicit Device(std::unique_ptr<MemoryArena> arena) : arena_(std::move(arena)) {}
  virtual void* raw_alloc(size_t bytes) = 0;
  virtual void raw_free(void* p) noexcept = 0;
  // Host transfer memory, 4 KiB aligned; the default is pageable memory.
  virtual void* raw_alloc_host(size_t bytes);
  virtual void raw_free_host(void* p) noexcept;

 private:
  friend class DeviceBuffer;
  friend class HostBuffer;
  std::unique_ptr<MemoryArena> arena_;
};

// A StreamDriver for devices whose work finishes before each call returns (the CPU
// backend, and tests of the pipeline): streams are tokens, waits and synchronizes return
// at once, and an event's time is the host's steady clock at its record.
class HostStreams {
 public:
  static void* stream_create();
  static void stream_destroy(void* stream) noexcept;
  static void* event_create();
  static void event_destroy(void* event) noexcept;
  static void event_record(void* event);
  static double event_elapsed_s(void* from, void* to);
};

}  // namespace zinc::offload
