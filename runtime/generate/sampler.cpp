#include "runtime/generate/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "runtime/common/error.hpp"

namespace zinc::runtime {

void validate(const SamplingOptions& o) {
  ZINC_CHECK(std::isfinite(o.temperature) && o.temperature >= 0.0f,
             "--temperature must be >= 0 (0 = greedy), got " << o.temperature);
  ZINC_CHECK(o.top_k >= 0, "--top-k must be >= 0 (0 = off), got " << o.top_k);
  ZINC_CHECK(o.top_p > 0.0f && o.top_p <= 1.0f, "--top-p must be in (0, 1], got " << o.top_p);
}

uint64_t SequenceRng::mix(uint64_t z) {
  z += 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

double SequenceRng::uniform() {
  const uint64_t r = mix(key_ + mix(counter_++));
  return static_cast<double>(r >> 11) * (1.0 / 9007199254740992.0);  // 53 bits
}

int32_t argmax(const float* logits, int vocab) {
  int32_t best = 0;
  for (int i = 1; i < vocab; ++i)
    if (logits[i] > logits[best]) best = i;
  return best;
}

int32_t sample_token(const float* logits, int vocab, const SamplingOptions& o, SequenceRng& rng,
                     std::vector<float>& work) {
  if (o.greedy()) return argmax(logits, vocab);
  // Scaled logits; filtered entries become -inf (transformers' filter_value).
  work.assign(logits, logits + vocab);
  for (float& v : work) v /= o.temperature;
  if (o.top_k > 0 && o.top_k < vocab) {
    std::vector<float> sorted(work);
    std::nth_element(sorted.begin(), sorted.begin() + (o.top_k - 1), sorted.end(),
                     std::greater<float>());
    const float kth = sorted[o.top_k - 1];
    for (float& v : work)
      if (v < kth) v = -INFINITY;  // ties with the k-th are kept, as TopKLogitsWarper
  }
  const float mx = *std::max_element(work.begin(), work.end());
  std::vector<double> p(static_cast<size_t>(vocab));
  double sum = 0.0;
  for (int i = 0; i < vocab; ++i) {
    p[i] = std::isinf(work[i]) ? 0.0 : std::exp(static_cast<double>(work[i] - mx));
    sum += p[i];
  }
  for (double& v : p) v /= sum;
  if (o.top_p < 1.0f) {
    // TopPLogitsWarper: sort ascending, drop tokens whose cumulative probability
    // (from the smallest up) is <= 1 - top_p; the most likely token always stays.
    std::vector<int> order(static_cast<size_t>(vocab));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] < p[b]; });
    double cum = 0.0, kept = 0.0;
    for (int r = 0; r < vocab; ++r) {
      cum += p[order[r]];
      if (cum <= 1.0 - o.top_p && r < vocab - 1) p[order[r]] = 0.0;
      kept += p[order[r]];
    }
    for (double& v : p) v /= kept;
  }
  const double u = rng.uniform();
  double acc = 0.0;
  int32_t last_nonzero = 0;
  for (int i = 0; i < vocab; ++i) {
    if (p[i] <= 0.0) continue;
    acc += p[i];
    last_nonzero = i;
    if (u < acc) return i;
  }
  return last_nonzero;  // rounding left u just above the total
}

}  // namespace zinc::runtime
