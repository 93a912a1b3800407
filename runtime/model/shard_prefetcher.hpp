// ShardPrefetcher: the NVMe tier's read-ahead. One background thread reads the shard of
// the blob expected next (blob b + 1 after b, wrapping) into one of two aligned staging
// buffers while the caller gathers and computes with the other.
//
// Contract: get() returns a buffer valid until the next get(); prefetch() is called after
// the caller is done with the buffer get() returned (it reads into the other one). At most
// one read is in flight, so the reader (an io_uring file) is never used by two threads at
// once. A failed read is re-thrown by the get() that wants its blob; a read that was not
// wanted (a misprediction) is waited for and discarded, errors included.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>

#include "offload/uring_file.hpp"
#include "runtime/model/zero_weights.hpp"

namespace zinc::runtime {

class ShardPrefetcher {
 public:
  ShardPrefetcher(SliceReader reader, size_t max_shard_bytes);
  ~ShardPrefetcher();
  ShardPrefetcher(const ShardPrefetcher&) = delete;
  ShardPrefetcher& operator=(const ShardPrefetcher&) = delete;

  // The shard [offset, offset + bytes) of `blob`: the prefetched one, or read now.
  // *waited_s gets the time this call blocked on I/O.
  const uint8_t* get(size_t blob, size_t offset, size_t bytes, double* waited_s);
  void prefetch(size_t blob, size_t offset, size_t bytes);

 private:
  struct Job {
    size_t blob = 0, offset = 0, bytes = 0;
    int buffer = 0;
    bool queued = false, running = false, done = false;
    std::exception_ptr error;
  };
  void run();

  SliceReader reader_;
  offload::AlignedBuffer buffers_[2];
  int returned_ = 1;  // the buffer the caller holds (prefetch fills the other)
  std::mutex mu_;
  std::condition_variable cv_;
  Job job_;
  bool stop_ = false;
  std::thread worker_;
};

}  // namespace zinc::runtime
