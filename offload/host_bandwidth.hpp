// The host's read bandwidth, measured by the binary that runs the CPU attention, so that
// "attention reaches X% of what this machine can read" compares like with like (same
// compiler, same threads, same memory). `zinc attnbench` reports against it.
//
// ReadBandwidthProbe(bytes, threads): a buffer of `bytes` (make it several times the
// last-level cache; 2 MiB aligned, transparent huge pages requested as for HostKvCache) is
// first touched by the same `threads` OpenMP threads that then read it, each its own
// contiguous slice (static split), with vector loads summed into independent accumulators
// (AVX2 when the CPU has it, else baseline SSE2 code). pass_seconds() times one full read;
// callers can interleave passes with the work they compare (attnbench does, so that a
// neighbour's load on a shared machine hits both sides alike).
// measure_read_bandwidth(bytes, threads, repeats): bytes / second, the median of `repeats`
// passes after one untimed warm-up pass. threads = 1 measures one core.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace zinc::offload {

class ReadBandwidthProbe {
 public:
  // Throws zinc::Error when threads < 1, the buffer is too small to split, the allocation
  // fails, or OpenMP gives fewer threads than asked.
  ReadBandwidthProbe(size_t bytes, int threads);
  ~ReadBandwidthProbe();
  ReadBandwidthProbe(const ReadBandwidthProbe&) = delete;
  ReadBandwidthProbe& operator=(const ReadBandwidthProbe&) = delete;

  double pass_seconds();                   // one timed read of the whole buffer
  size_t bytes() const { return total_; }  // bytes one pass reads (bytes rounded down)
  int threads() const { return threads_; }

 private:
  uint8_t* base_ = nullptr;
  size_t total_ = 0, per_thread_ = 0;
  int threads_ = 0;
  std::vector<uint64_t> sink_;  // per-thread sums, so that no read is optimised away
};

double measure_read_bandwidth(size_t bytes, int threads, int repeats);

}  // namespace zinc::offload
