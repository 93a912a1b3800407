// ReadBandwidthProbe and measure_read_bandwidth: see host_bandwidth.hpp.
#include "offload/host_bandwidth.hpp"

#include <immintrin.h>
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "runtime/common/clock.hpp"
#include "runtime/common/stats.hpp"
#include "runtime/common/error.hpp"

namespace zinc::offload {
namespace {

constexpr size_t kAlign = size_t{2} << 20;  // 2 MiB: transparent huge pages, as HostKvCache
constexpr size_t kSliceAlign = 256;         // bytes: slices start on whole cache lines

__attribute__((target("avx2"))) uint64_t read_avx2(const uint8_t* p, size_t bytes) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (size_t i = 0; i < bytes; i += 128) {
    const auto* v = reinterpret_cast<const __m256i*>(p + i);
    a0 = _mm256_add_epi64(a0, _mm256_load_si256(v));
    a1 = _mm256_add_epi64(a1, _mm256_load_si256(v + 1));
    a2 = _mm256_add_epi64(a2, _mm256_load_si256(v + 2));
    a3 = _mm256_add_epi64(a3, _mm256_load_si256(v + 3));
  }
  const __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
  uint64_t out[4];
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), s);
  return out[0] + out[1] + out[2] + out[3];
}

uint64_t read_portable(const uint8_t* p, size_t bytes) {
  uint64_t a[8] = {};
  for (size_t i = 0; i < bytes; i += 64) {
    for (int k = 0; k < 8; ++k) {
      uint64_t x;
      std::memcpy(&x, p + i + 8 * k, 8);
      a[k] += x;
    }
  }
  uint64_t s = 0;
  for (uint64_t x : a) s += x;
  return s;
}

}  // namespace

ReadBandwidthProbe::ReadBandwidthProbe(size_t bytes, int threads) : threads_(threads) {
  ZINC_CHECK(threads >= 1, "read bandwidth probe: threads must be >= 1, got " << threads);
  per_thread_ = bytes / threads / kSliceAlign * kSliceAlign;
  ZINC_CHECK(per_thread_ >= kSliceAlign, "read bandwidth probe: " << bytes
                                                                  << " bytes are too few for "
                                                                  << threads << " threads");
  total_ = per_thread_ * threads;
  const size_t rounded = (total_ + kAlign - 1) / kAlign * kAlign;
  base_ = static_cast<uint8_t*>(std::aligned_alloc(kAlign, rounded));
  ZINC_CHECK(base_ != nullptr, "read bandwidth probe: cannot allocate " << total_ << " bytes");
  ::madvise(base_, rounded, MADV_HUGEPAGE);  // advisory
  sink_.assign(static_cast<size_t>(threads), 0);
  int team = 0;
  uint8_t* base = base_;
  const size_t per_thread = per_thread_;
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
#pragma omp single
    team = omp_get_num_threads();
    // first touch: each thread owns the pages it will read
    std::memset(base + t * per_thread, t + 1, per_thread);
  }
  if (team != threads) {
    std::free(base_);
    ZINC_THROW("read bandwidth probe: asked for " << threads << " threads, OpenMP gave " << team);
  }
}

ReadBandwidthProbe::~ReadBandwidthProbe() { std::free(base_); }

double ReadBandwidthProbe::pass_seconds() {
  static const bool avx2 = __builtin_cpu_supports("avx2");
  const uint8_t* base = base_;
  const size_t per_thread = per_thread_;
  uint64_t* sink = sink_.data();
  const double t0 = now_s();
#pragma omp parallel num_threads(threads_)
  {
    const int t = omp_get_thread_num();
    const uint8_t* p = base + t * per_thread;
    sink[t] += avx2 ? read_avx2(p, per_thread) : read_portable(p, per_thread);
  }
  return seconds_since(t0);
}

double measure_read_bandwidth(size_t bytes, int threads, int repeats) {
  ZINC_CHECK(repeats >= 1, "measure_read_bandwidth: repeats must be >= 1, got " << repeats);
  ReadBandwidthProbe probe(bytes, threads);
  probe.pass_seconds();  // warm-up
  std::vector<double> seconds;
  for (int r = 0; r < repeats; ++r) seconds.push_back(probe.pass_seconds());
  return static_cast<double>(probe.bytes()) / median(seconds);
}

}  // namespace zinc::offload
