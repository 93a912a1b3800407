// Choosing the next token from a row of logits: greedy, or sampling with temperature,
// top-k and top-p applied in transformers' order (temperature -> top-k -> top-p ->
// softmax -> draw). Each sequence has its own random stream, seeded from (seed, the
// sequence's index in the whole request), so a sequence samples the same tokens whatever
// batch, micro-batch or MPI rank it lands in.
#pragma once

#include <cstdint>
#include <vector>

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

// A counter-based generator (SplitMix64 over (seed, stream, counter)): reproducible and
// cheap to create per sequence.
class SequenceRng {
 public:
  SequenceRng(uint64_t seed, uint64_t stream) : key_(mix(seed ^ mix(stream + 0x9e3779b97f4a7c15ull))) {}
  double uniform();  // [0, 1)

 private:
  static uint64_t mix(uint64_t z);
  uint64_t key_;
  uint64_t counter_ = 0;
};

// Index of the largest logit; the lowest index wins ties (as torch.argmax).
int32_t argmax(const float* logits, int vocab);

// Picks one token from logits[vocab] (greedy when opts.greedy()). `work` is reused scratch.
int32_t sample_token(const float* logits, int vocab, const SamplingOptions& opts,
                     SequenceRng& rng, std::vector<float>& work);

}  // namespace zinc::runtime
