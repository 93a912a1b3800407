// The host's read bandwidth, measured by the binary that runs the CPU attention, so that
// "attention reaches X% of what this machine can read" compares like with like (same
// compiler, same threads, same memory). `zinc attnbench` reports against it.
//
// measure_read_bandwidth(bytes, threads, repeats): a buffer of `bytes` (make it several
// times the last-level cache) is first touched by the same `threads` OpenMP threads that
// then read it, each its own contiguous slice (static split), with vector loads summed into
// independent accumulators (AVX2 when the CPU has it, else baseline SSE2 code). Returns
// bytes / second, the median of `repeats` timed passes after one untimed warm-up pass.
// threads = 1 measures one core.
#pragma once

#include <cstddef>

namespace zinc::offload {

double measure_read_bandwidth(size_t bytes, int threads, int repeats);

}  // namespace zinc::offload
