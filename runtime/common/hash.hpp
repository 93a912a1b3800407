// SplitMix64 (Steele, Lea, Flood 2014): the mixing function behind zinc's counter-based
// random streams (dummy weights, the sampler's per-sequence stream, benchmark data).
// Counter-based: the i-th value depends only on (key, i), so any rank, thread or batch
// layout reproduces it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

// Host and device (CUDA kernels draw the sampler's numbers with the same functions).
#ifdef __CUDACC__
#define ZINC_HOST_DEVICE __host__ __device__
#else
#define ZINC_HOST_DEVICE
#endif

namespace zinc {

constexpr uint64_t kGoldenGamma = 0x9e3779b97f4a7c15ull;  // SplitMix64's increment

// SplitMix64's output function (the finalizer) of one state value.
ZINC_HOST_DEVICE inline uint64_t splitmix64_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// One full SplitMix64 step from state z: advance by the gamma, then mix.
ZINC_HOST_DEVICE inline uint64_t splitmix64_next(uint64_t z) { return splitmix64_mix(z + kGoldenGamma); }

// The i-th output of SplitMix64 seeded with `key`.
ZINC_HOST_DEVICE inline uint64_t splitmix64_at(uint64_t key, uint64_t i) { return splitmix64_mix(key + (i + 1) * kGoldenGamma); }

// FNV-1a (64-bit) over bytes: names to stream keys (dummy weights), plans to exact
// fingerprints (the ranks' placement agreement). Chain calls by passing the previous h.
constexpr uint64_t kFnvOffset = 0xcbf29ce484222325ull;
inline uint64_t fnv1a(const void* data, size_t n, uint64_t h = kFnvOffset) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}
inline uint64_t fnv1a(const std::string& s, uint64_t h = kFnvOffset) { return fnv1a(s.data(), s.size(), h); }

}  // namespace zinc
