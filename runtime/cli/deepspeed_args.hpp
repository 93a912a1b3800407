// DeepSpeed ZeRO-Inference's command lines for `zinc bench`: the spellings of its
// run_model.py (DeepSpeedExamples/inference/huggingface/zero_inference) and the parts of a
// DeepSpeed config that say where the weights live and how they are quantized, rewritten
// into zinc's own options before they are parsed, so a DeepSpeed user's command runs as is.
//   --cpu-offload -> --offload cpu          --disk-offload -> --offload nvme
//   --quant_bits 4|8 (+ --quant_group_size G) -> --quant int4|int8-asym --group-size G
//     (DeepSpeed's quantized_initialization is asymmetric unless "symmetric": true:
//      then int4-sym / int8)
//   --dummy (a switch) with --model HUB_NAME -> --model dummy:SHAPE (facebook/opt-*,
//     bigscience/bloom, meta-llama/Llama-2-*-hf); zinc never touches the network, so a Hub
//     name without --dummy is an error
//   --offload-dir D with --disk-offload and --dummy: the zinc store D/SHAPE.QUANT.gG.zinc.h5
//     (zinc's NVMe tier reads a store; the error for a missing one gives the convert command)
//   --pin-memory 1: zinc always pins; 0 is ignored with a warning (it streams from pinned
//     memory only)
//   --deepspeed-config F: zero_optimization.offload_param (device cpu|nvme|none, nvme_path,
//     pin_memory), weight_quantization.quantized_initialization (num_bits, group_size,
//     symmetric), aio (block_size, queue_depth); the keys zinc has no use for are named in
//     one warning; an unknown key, or one that contradicts the command line, is an error.
// --batch-size, --prompt-len, --gen-len, --loops and --kv-offload are zinc's spellings too.
#pragma once

#include <string>
#include <vector>

namespace zinc::cli {

struct DeepSpeedArgs {
  std::vector<std::string> args;      // zinc's options (no program or command name)
  std::vector<std::string> warnings;  // to print once (rank 0)
};

// Rewrites `args` (what follows "bench"); throws UsageError naming the option or key.
DeepSpeedArgs translate_deepspeed_args(const std::vector<std::string>& args);

// The built-in dummy shape of a Hugging Face Hub name ("" when there is none).
std::string hub_dummy_shape(const std::string& hub_name);

}  // namespace zinc::cli
