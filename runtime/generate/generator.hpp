// The generation loop: prompts -> left-padded rounds (--batch-size prompts each) -> prefill -> decode steps
// with a KV cache, per-sequence EOS stop, greedy or sampled tokens, and the timings the
// metrics table reports. Backend- and family-agnostic: it only calls Model::forward.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "collectives/communicator.hpp"
#include "runtime/backend/backend.hpp"
#include "runtime/backend/kv_cache.hpp"
#include "runtime/backend/sampling.hpp"
#include "runtime/model/model.hpp"

namespace zinc::runtime {

struct GenerationOptions {
  int max_new_tokens = 32;
  int batch_size = 0;  // sequences per round (one generation over them); 0 = all at once
  int micro_batch = 0; // sequences per micro-batch inside a forward (workspace.hpp); 0 = auto
  KvOverlap kv_overlap = KvOverlap::Auto;  // host-KV decode: micro-batches as lanes (model.hpp)
  SamplingOptions sampling;
  KvPlacement kv;      // device (default) or host memory, and the host storage
  // ZeRO-3 ranks must run the same forwards (each one all-gathers every blob). With a
  // communicator here, ranks agree on the number of rounds (a rank with fewer
  // prompts runs throwaway one-token batches) and a round stops only when every
  // rank's sequences are done. Null: this rank decides alone.
  collectives::Communicator* lockstep = nullptr;
  // Benchmarks: no sequence stops at EOS, so every one makes exactly max_new_tokens.
  bool ignore_eos = false;
  // Called by this rank after each forward of a round (step 1 is the prefill) with
  // steps = max_new_tokens (the last step may come earlier when every sequence stopped).
  std::function<void(int step, int steps)> progress;
};

struct Prompt {
  std::vector<int32_t> ids;
  uint64_t index = 0;  // position in the whole request: seeds its random stream
};

// Sums over rounds; times in seconds on the host clock, each step ending with the
// host wait for its token ids.
struct GenerationStats {
  double load_s = 0;           // filled by the caller (model load)
  double prefill_s = 0;        // first forward of each round incl. choosing token 1
  double decode_s = 0;         // the remaining steps
  int64_t sequences = 0;
  int64_t prompt_tokens = 0;   // real (unpadded) prompt tokens
  int64_t generated_tokens = 0;// tokens produced, up to and including EOS
  int64_t decode_steps = 0;    // decode forwards, summed over rounds
  int64_t padded_slots = 0;    // sum over rounds of batch * tokens-per-sequence steps
  int rounds = 0;
  size_t peak_bytes = 0;       // backend arena high-water mark
  size_t driver_bytes = 0;     // device memory in use by the driver's count once the run's
                               // buffers exist (0 on the CPU): the cross-check of peak_bytes
  size_t weight_bytes = 0;
  size_t kv_bytes = 0;         // largest KV cache allocated
  double kv_host_wait_s = 0;   // --kv-offload decode: host waits for q/k/v (KvCache::HostTimes)
  double kv_host_cpu_s = 0;    // --kv-offload decode: host conversions, store and attention
  double kv_host_store_s = 0, kv_host_attention_s = 0;  // two parts of kv_host_cpu_s
  int kv_lanes = 0;            // the most micro-batch lanes a host-KV decode step ran in (0: none)
};

struct GenerationResult {
  std::vector<std::vector<int32_t>> tokens;  // per prompt: new tokens, ending at EOS if hit
  GenerationStats stats;
};

// Checks the prompts against the model before any work (ids inside the vocabulary,
// no empty prompt, OPT's learned positions long enough) and runs them. A prompt that
// runs a RoPE model past its max_position_embeddings is no error (transformers runs it
// too), but rank 0 warns once (rope_position_warning, over every rank's prompts).
GenerationResult generate(Model& model, Backend& backend, const std::vector<Prompt>& prompts,
                          const GenerationOptions& opts);

// The warning for prompts of up to longest_prompt tokens and max_new_tokens new ones on a
// RoPE model (LLaMA) whose positions then pass max_position_embeddings; "" when they don't.
std::string rope_position_warning(const ModelConfig& config, int64_t longest_prompt, int max_new_tokens);

// The padding token generate() uses: pad_token_id, else the first EOS id, else 0.
int32_t pad_token(const ModelConfig& config);

}  // namespace zinc::runtime
