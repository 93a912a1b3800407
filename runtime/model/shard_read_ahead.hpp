// ShardReadAhead: the disk stage of the NVMe tier. One thread reads this rank's shards of
// the streamed blobs, in pipeline order, into a ring of D pinned staging buffers, running
// ahead of the copy stage by up to D reads; so the disk stays busy while earlier shards are
// copied, gathered, unpacked and computed.
//
// The order is a cycle of reads (one forward pass's streamed blobs) repeated for as long
// as the pipeline runs; read k is the k-th item of that endless sequence.
// Contract: the consumer calls get(k) for k = 0, 1, 2, ... in order and release(k) when it
// has copied read k out of its buffer; buffer k % D is refilled (with read k + D) only after
// release(k). A failed read is re-thrown by its get(); the thread reads nothing after it.
// The reader (an io_uring file) is only ever used by the one thread. The destructor stops
// the thread after the read in flight.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/model/zero_weights.hpp"

namespace zinc::runtime {

class ShardReadAhead {
 public:
  struct Read {
    size_t blob = 0, offset = 0, bytes = 0;
  };
  // `buffers`: D >= 1 staging buffers (4 KiB aligned, each large enough for every read),
  // owned by the caller and outliving this object.
  ShardReadAhead(SliceReader reader, std::vector<Read> cycle, std::vector<uint8_t*> buffers);
  ~ShardReadAhead();
  ShardReadAhead(const ShardReadAhead&) = delete;
  ShardReadAhead& operator=(const ShardReadAhead&) = delete;

  // Read k's bytes, blocking until they are in; *t_begin / *t_end: when the read ran
  // (steady clock seconds, for the wait attribution).
  const uint8_t* get(uint64_t k, double* t_begin, double* t_end);
  void release(uint64_t k);
  uint64_t bytes_read() const;

 private:
  struct Done {
    uint64_t k = UINT64_MAX;
    double t_begin = 0, t_end = 0;
    std::exception_ptr error;
  };
  void run();

  SliceReader reader_;
  std::vector<Read> cycle_;
  std::vector<uint8_t*> buffers_;
  std::vector<Done> done_;       // per buffer: which read it holds
  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t released_ = 0;        // reads 0 .. released_-1 have been released
  uint64_t bytes_ = 0;
  bool stop_ = false;
  std::thread worker_;
};

// Steady-clock seconds (the pipeline's time base).
double pipeline_now();

}  // namespace zinc::runtime
