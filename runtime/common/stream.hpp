// Stream and Event: owning, move-only handles of a device's work queues and markers
// (CUDA streams and events; TensorRT-LLM's CudaStream / CudaEvent, ggml-backend's
// optional async entries). Every layer uses them — collectives take the stream an
// all-gather runs on, the weight pipeline orders copy -> gather -> compute with events,
// backends run every op on a named stream — so they are base vocabulary next to errors
// and clocks; each device implements StreamDriver (offload/device.hpp).
//
// Semantics (as CUDA's):
//  - work queued on one stream runs in order; streams run concurrently;
//  - record(e, s): e completes when the work queued on s so far has finished;
//  - s.wait(e): later work on s starts only after e's latest record completed (a record
//    made after the wait is not waited for: the host must order record before wait);
//  - e.synchronize(): the host blocks until e completed; s.synchronize(): until all of s;
//  - elapsed_s(a, b): seconds between two completed records, on the device's clock.
// The CPU backend's driver is the degenerate case: every op has finished when it returns,
// so waits and synchronizes return at once and an event's time is the host clock at its
// record — "ordered no-ops with real host timing". Not thread-safe per handle: one thread
// records an event at a time (another may wait on it after a host-side hand-off).
#pragma once

#include <utility>

namespace zinc {

class Stream;
class Event;

// What a device provides for its streams and events. Handles are opaque (cudaStream_t,
// cudaEvent_t, or the CPU driver's own records); every call throws zinc::Error on failure
// except the destroys, which log.
class StreamDriver {
 public:
  virtual void* stream_create() = 0;
  virtual void stream_destroy(void* stream) noexcept = 0;
  virtual void stream_synchronize(void* stream) = 0;
  virtual void* event_create() = 0;
  virtual void event_destroy(void* event) noexcept = 0;
  virtual void event_record(void* event, void* stream) = 0;
  virtual void stream_wait_event(void* stream, void* event) = 0;
  virtual void event_synchronize(void* event) = 0;
  virtual double event_elapsed_s(void* from, void* to) = 0;

 protected:
  ~StreamDriver() = default;
};

class Stream {
 public:
  Stream() = default;
  explicit Stream(StreamDriver* driver) : driver_(driver), handle_(driver->stream_create()) {}
  ~Stream() { reset(); }
  Stream(Stream&& o) noexcept { *this = std::move(o); }
  Stream& operator=(Stream&& o) noexcept {
    if (this != &o) {
      reset();
      std::swap(driver_, o.driver_);
      std::swap(handle_, o.handle_);
    }
    return *this;
  }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  bool valid() const { return driver_ != nullptr; }
  void* native() const { return handle_; }  // cudaStream_t on CUDA
  StreamDriver* driver() const { return driver_; }
  // Later work on this stream waits for e (its latest record).
  void wait(const Event& e) const;
  // The host waits for all work queued on this stream so far.
  void synchronize() const { if (driver_) driver_->stream_synchronize(handle_); }

 private:
  void reset() noexcept {
    if (driver_) driver_->stream_destroy(handle_);
    driver_ = nullptr;
    handle_ = nullptr;
  }
  StreamDriver* driver_ = nullptr;
  void* handle_ = nullptr;
};

class Event {
 public:
  Event() = default;
  explicit Event(StreamDriver* driver) : driver_(driver), handle_(driver->event_create()) {}
  ~Event() { reset(); }
  Event(Event&& o) noexcept { *this = std::move(o); }
  Event& operator=(Event&& o) noexcept {
    if (this != &o) {
      reset();
      std::swap(driver_, o.driver_);
      std::swap(handle_, o.handle_);
    }
    return *this;
  }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  bool valid() const { return driver_ != nullptr; }
  void* native() const { return handle_; }
  // Completes when the work queued on s so far has finished.
  void record(const Stream& s) { driver_->event_record(handle_, s.native()); }
  // The host waits until the latest record completed.
  void synchronize() const { driver_->event_synchronize(handle_); }
  // Seconds from `from` to `to` (both recorded and completed; same driver).
  static double elapsed_s(const Event& from, const Event& to) {
    return from.driver_->event_elapsed_s(from.handle_, to.handle_);
  }

 private:
  void reset() noexcept {
    if (driver_) driver_->event_destroy(handle_);
    driver_ = nullptr;
    handle_ = nullptr;
  }
  StreamDriver* driver_ = nullptr;
  void* handle_ = nullptr;
};

inline void Stream::wait(const Event& e) const {
  if (driver_) driver_->stream_wait_event(handle_, e.native());
}

}  // namespace zinc
