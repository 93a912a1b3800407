#include "runtime/backend/sampling.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "runtime/common/error.hpp"
#include "runtime/common/hash.hpp"

namespace zinc::runtime {

void validate(const SamplingOptions& o) {
  ZINC_CHECK(std::isfinite(o.temperature) && o.temperature >= 0.0f,
             "--temperature must be >= 0 (0 = greedy), got " << o.temperature);
  ZINC_CHECK(o.top_k >= 0, "--top-k must be >= 0 (0 = off), got " << o.top_k);
  ZINC_CHECK(o.top_p > 0.0f && o.top_p <= 1.0f, "--top-p must be in (0, 1], got " << o.top_p);
}

int32_t argmax(const float* logits, int vocab) {
  int32_t best = 0;
  for (int i = 1; i < vocab; ++i)
    if (logits[i] > logits[best]) best = i;
  return best;
}

bool logits_finite(const float* logits, int vocab) {
  bool ok = true;
  for (int i = 0; i < vocab; ++i) ok &= !(std::isnan(logits[i]) || logits[i] == HUGE_VALF);
  return ok;
}

int32_t sample_with_draw(const float* logits, int vocab, const SamplingOptions& o, double u,
                         SampleWork& w) {
  if (o.greedy()) return argmax(logits, vocab);
  // Scaled logits; filtered entries become -inf (transformers' filter_value).
  w.scaled.assign(logits, logits + vocab);
  for (float& v : w.scaled) v /= o.temperature;
  if (o.top_k > 0 && o.top_k < vocab) {
    w.sorted.assign(w.scaled.begin(), w.scaled.end());
    std::nth_element(w.sorted.begin(), w.sorted.begin() + (o.top_k - 1), w.sorted.end(),
                     std::greater<float>());
    const float kth = w.sorted[o.top_k - 1];
    for (float& v : w.scaled)
      if (v < kth) v = -INFINITY;  // ties with the k-th are kept, as TopKLogitsWarper
  }
  const float mx = *std::max_element(w.scaled.begin(), w.scaled.end());
  w.p.resize(static_cast<size_t>(vocab));
  double sum = 0.0;
  for (int i = 0; i < vocab; ++i) {
    w.p[i] = std::isinf(w.scaled[i]) ? 0.0 : std::exp(static_cast<double>(w.scaled[i] - mx));
    sum += w.p[i];
  }
  for (double& v : w.p) v /= sum;
  if (o.top_p < 1.0f) {
    // TopPLogitsWarper: sort ascending, drop tokens whose cumulative probability
    // (from the smallest up) is <= 1 - top_p; the most likely token always stays.
    w.order.resize(static_cast<size_t>(vocab));
    std::iota(w.order.begin(), w.order.end(), 0);
    std::stable_sort(w.order.begin(), w.order.end(), [&](int a, int b) { return w.p[a] < w.p[b]; });
    double cum = 0.0, kept = 0.0;
    for (int r = 0; r < vocab; ++r) {
      cum += w.p[w.order[r]];
      if (cum <= 1.0 - o.top_p && r < vocab - 1) w.p[w.order[r]] = 0.0;
      kept += w.p[w.order[r]];
    }
    for (double& v : w.p) v /= kept;
  }
  double acc = 0.0;
  int32_t last_nonzero = 0;
  for (int i = 0; i < vocab; ++i) {
    if (w.p[i] <= 0.0) continue;
    acc += w.p[i];
    last_nonzero = i;
    if (u < acc) return i;
  }
  return last_nonzero;  // rounding left u just above the total
}

int32_t sample_token(const float* logits, int vocab, const SamplingOptions& o, SequenceRng& rng,
                     SampleWork& work) {
  if (o.greedy()) return argmax(logits, vocab);
  return sample_with_draw(logits, vocab, o, rng.uniform(), work);
}

}  // namespace zinc::runtime
