// Aggregate metrics of a generation run over all ranks, with the formulas DeepSpeed's
// run_model.py and FlexGen use, so numbers compare:
//   prefill latency  = time of the first forward over the prompts, incl. choosing token 1
//   decode latency   = total - prefill
//   prefill tok/s    = prompt tokens (all ranks) / max over ranks of prefill latency
//   decode tok/s     = (generated tokens - sequences) (all ranks) / max decode latency
//                      (= batch * (gen_len - 1) / decode latency when nobody stops early)
//   total tok/s      = generated tokens / max over ranks of (prefill + decode)
//   decode ms/token  = max over ranks of decode latency / decode steps
//   peak memory      = max over ranks of the backend arena's high-water mark
// Rank 0 prints the table; --metrics-json writes the same numbers.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "collectives/communicator.hpp"
#include "runtime/generate/generator.hpp"

namespace zinc::runtime {

struct RunMetrics {
  int ranks = 1;
  int64_t sequences = 0, prompt_tokens = 0, generated_tokens = 0, decode_steps = 0;
  double load_s = 0, prefill_s = 0, decode_s = 0, total_s = 0;
  double prefill_tok_s = 0, decode_tok_s = 0, total_tok_s = 0, decode_ms_per_token = 0;
  size_t peak_bytes = 0, weight_bytes = 0, kv_bytes = 0;
};

// Collective: every rank must call it.
RunMetrics aggregate_metrics(const GenerationStats& mine, collectives::Communicator& comm);

void print_metrics_table(std::ostream& os, const RunMetrics& m);
nlohmann::json metrics_to_json(const RunMetrics& m);

}  // namespace zinc::runtime
