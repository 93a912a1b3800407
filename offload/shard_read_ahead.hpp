// ShardReadAhead: the disk stage of the NVMe tier. R reader threads (each with its own
// SliceReader: its own io_uring file) read this rank's shards of the streamed blobs, in
// pipeline order, into a ring of D >= R pinned staging buffers, running ahead of the copy
// stage by up to D reads; so the disk stays busy while earlier shards are copied,
// gathered, unpacked and computed. Thread i reads k = i, i + R, ...: with R = 2 the next
// shard's reads are queued while the previous one drains (a lone reader idles the disk at
// the end of every shard: 80% of raw with 4-rank shards, launch/results/nvme-cpu-*.md).
//
// The order is a cycle of reads (one forward pass's streamed blobs) repeated for as long
// as the pipeline runs; read k is the k-th item of that endless sequence.
// Contract: the consumer calls get(k) for k = 0, 1, 2, ... in order and release(k) when it
// has copied read k out of its buffer; buffer k % D is refilled (with read k + D) only after
// release(k). A failed read is re-thrown by its get(); the thread reads nothing after it.
// Each reader (an io_uring file) is only ever used by its one thread. The destructor stops
// the threads after the reads in flight.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "offload/slice_reader.hpp"

namespace zinc::offload {

class ShardReadAhead {
 public:
  struct Read {
    size_t blob = 0, offset = 0, bytes = 0;
  };
  // `readers`: R >= 1; `buffers`: D >= R staging buffers (4 KiB aligned, each large enough
  // for every read), owned by the caller and outliving this object.
  ShardReadAhead(std::vector<SliceReader> readers, std::vector<Read> cycle, std::vector<uint8_t*> buffers);
  ~ShardReadAhead();
  ShardReadAhead(const ShardReadAhead&) = delete;
  ShardReadAhead& operator=(const ShardReadAhead&) = delete;

  // Read k's bytes, blocking until they are in; *t_begin / *t_end: when the read ran
  // (steady clock seconds, for the wait attribution).
  const uint8_t* get(uint64_t k, double* t_begin, double* t_end);
  void release(uint64_t k);

 private:
  struct Done {
    uint64_t k = UINT64_MAX;
    double t_begin = 0, t_end = 0;
    std::exception_ptr error;
  };
  void run(size_t thread);

  std::vector<SliceReader> readers_;
  std::vector<Read> cycle_;
  std::vector<uint8_t*> buffers_;
  std::vector<Done> done_;       // per buffer: which read it holds
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t released_ = 0;        // reads 0 .. released_-1 have been released
  bool stop_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace zinc::offload
