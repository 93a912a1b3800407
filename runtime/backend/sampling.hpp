// What a sampling op computes: the next token from a row of logits, greedy or sampled
// with temperature, top-k and top-p in transformers' order (temperature -> top-k -> top-p
// -> softmax -> draw). This is the reference the backends' sample ops implement (the CPU
// backend calls it per row) and that tests check them against.
//
// Randomness: each sequence has its own counter-based stream (SplitMix64), keyed by
// sequence_key(seed, the sequence's index in the whole request); its n-th draw is
// sequence_uniform(key, n). So a sequence samples the same tokens whatever batch,
// micro-batch, MPI rank or backend it lands in, and a device needs only (key, n) per row.
#pragma once

#include <cstdint>
#include <vector>

#include "runtime/common/hash.hpp"

namespace zinc::runtime {

struct SamplingOptions {
  float temperature = 0.0f;  // 0 = greedy (transformers' do_sample=False)
  int top_k = 0;             // 0 = off
  float top_p = 1.0f;        // 1 = off
  uint64_t seed = 0;
  bool greedy() const { return temperature <= 0.0f; }
};

// Validates ranges; throws zinc::Error naming the flag.
void validate(const SamplingOptions& opts);

// The stream key of sequence `index` of a request sampled with `seed`.
ZINC_HOST_DEVICE inline uint64_t sequence_key(uint64_t seed, uint64_t index) {
  return splitmix64_next(seed ^ splitmix64_next(index + kGoldenGamma));
}
// Draw n of stream `key`, uniform in [0, 1) with 53 random bits.
ZINC_HOST_DEVICE inline double sequence_uniform(uint64_t key, uint64_t n) {
  const uint64_t r = splitmix64_next(key + splitmix64_next(n));
  return static_cast<double>(r >> 11) * (1.0 / 9007199254740992.0);
}

// A sequence's stream with its own counter (the reference; tests and the CPU backend).
class SequenceRng {
 public:
  SequenceRng(uint64_t seed, uint64_t index) : key_(sequence_key(seed, index)) {}
  double uniform() { return sequence_uniform(key_, counter_++); }

 private:
  uint64_t key_;
  uint64_t counter_ = 0;
};

// Index of the largest logit; the lowest index wins ties (as torch.argmax).
int32_t argmax(const float* logits, int vocab);

// The id Backend::sample gives a row of logits holding a NaN or +inf (a model whose
// activations overflowed the compute dtype): no token is drawn from such a row, and the
// generator stops the run with an error naming the sequence and step (generator.cpp).
constexpr int32_t kNonFiniteLogits = -1;
// Whether a row can be sampled: no NaN and no +inf (-inf, a filtered logit, is fine).
bool logits_finite(const float* logits, int vocab);

// Scratch of one row's sampling, reused across calls (sized on first use, then no
// allocation while the vocabulary stays the same).
struct SampleWork {
  std::vector<float> scaled;
  std::vector<float> sorted;
  std::vector<double> p;
  std::vector<int> order;
};

// One token from logits[vocab] with the uniform draw u (ignored when opts.greedy()).
int32_t sample_with_draw(const float* logits, int vocab, const SamplingOptions& opts, double u,
                         SampleWork& work);
// The same with the next draw of `rng` (drawn only when sampling).
int32_t sample_token(const float* logits, int vocab, const SamplingOptions& opts, SequenceRng& rng,
                     SampleWork& work);

}  // namespace zinc::runtime
