// measure_read_bandwidth: see host_bandwidth.hpp.
#include "offload/host_bandwidth.hpp"

#include <immintrin.h>
#include <sys/mman.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "runtime/common/error.hpp"

namespace zinc::offload {
namespace {

constexpr size_t kAlign = size_t{2} << 20;  // 2 MiB: transparent huge pages, as HostKvCache
constexpr size_t kSliceAlign = 256;  // bytes: slices start on whole cache lines

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

struct FreeDeleter {
  void operator()(void* p) const noexcept { std::free(p); }
};

}  // namespace

double measure_read_bandwidth(size_t bytes, int threads, int repeats) {
  ZINC_CHECK(threads >= 1 && repeats >= 1,
             "measure_read_bandwidth: threads and repeats must be >= 1 (got " << threads << ", "
                                                                               << repeats << ")");
  const size_t per_thread = bytes / threads / kSliceAlign * kSliceAlign;
  ZINC_CHECK(per_thread >= kSliceAlign, "measure_read_bandwidth: " << bytes << " bytes are too few for "
                                                                   << threads << " threads");
  const size_t total = per_thread * threads;
  std::unique_ptr<uint8_t, FreeDeleter> buf(static_cast<uint8_t*>(std::aligned_alloc(kAlign, (total + kAlign - 1) / kAlign * kAlign)));
  ZINC_CHECK(buf != nullptr, "measure_read_bandwidth: cannot allocate " << total << " bytes");
  ::madvise(buf.get(), (total + kAlign - 1) / kAlign * kAlign, MADV_HUGEPAGE);  // advisory
  uint8_t* base = buf.get();
  const bool avx2 = __builtin_cpu_supports("avx2");
  std::vector<uint64_t> sink(static_cast<size_t>(threads));
  int team = 0;
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num();
#pragma omp single
    team = omp_get_num_threads();
    // first touch: each thread owns the pages it will read
    std::memset(base + t * per_thread, t + 1, per_thread);
  }
  ZINC_CHECK(team == threads, "measure_read_bandwidth: asked for " << threads
                                                                   << " threads, OpenMP gave " << team);
  std::vector<double> seconds;
  for (int r = -1; r < repeats; ++r) {  // r = -1: warm-up
    const auto t0 = std::chrono::steady_clock::now();
#pragma omp parallel num_threads(threads)
    {
      const int t = omp_get_thread_num();
      const uint8_t* p = base + t * per_thread;
      sink[t] += avx2 ? read_avx2(p, per_thread) : read_portable(p, per_thread);
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r >= 0) seconds.push_back(s);
  }
  volatile uint64_t keep = 0;
  for (uint64_t x : sink) keep = keep + x;
  (void)keep;
  std::sort(seconds.begin(), seconds.end());
  return static_cast<double>(total) / seconds[seconds.size() / 2];
}

}  // namespace zinc::offload
