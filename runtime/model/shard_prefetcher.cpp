#include "runtime/model/shard_prefetcher.hpp"

#include <chrono>

namespace zinc::runtime {

ShardPrefetcher::ShardPrefetcher(SliceReader reader, size_t max_shard_bytes)
    : reader_(std::move(reader)) {
  buffers_[0] = offload::AlignedBuffer(max_shard_bytes);
  buffers_[1] = offload::AlignedBuffer(max_shard_bytes);
  worker_ = std::thread([this] { run(); });
}

ShardPrefetcher::~ShardPrefetcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

void ShardPrefetcher::run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || job_.queued; });
    if (stop_) return;
    job_.queued = false;
    job_.running = true;
    const Job job = job_;
    lock.unlock();
    std::exception_ptr error;
    try {
      reader_(job.blob, job.offset, job.bytes, buffers_[job.buffer].data());
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    job_.running = false;
    job_.done = true;
    job_.error = error;
    cv_.notify_all();
  }
}

const uint8_t* ShardPrefetcher::get(size_t blob, size_t offset, size_t bytes, double* waited_s) {
  const auto t0 = std::chrono::steady_clock::now();
  std::unique_lock<std::mutex> lock(mu_);
  // Whatever is in flight finishes first: the reader is never shared between threads.
  cv_.wait(lock, [this] { return !job_.queued && !job_.running; });
  const bool hit = job_.done && job_.blob == blob && job_.offset == offset && job_.bytes == bytes;
  const Job job = job_;
  job_ = Job();
  lock.unlock();
  int buffer = job.buffer;
  if (hit) {
    if (job.error) std::rethrow_exception(job.error);
  } else {
    buffer = 1 - returned_;  // a miss: read now, on this thread, into the free buffer
    reader_(blob, offset, bytes, buffers_[buffer].data());
  }
  returned_ = buffer;
  *waited_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return buffers_[buffer].data();
}

void ShardPrefetcher::prefetch(size_t blob, size_t offset, size_t bytes) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    job_ = Job();
    job_.blob = blob;
    job_.offset = offset;
    job_.bytes = bytes;
    job_.buffer = 1 - returned_;
    job_.queued = true;
  }
  cv_.notify_all();
}

}  // namespace zinc::runtime
