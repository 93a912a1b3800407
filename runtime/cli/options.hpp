// Command-line options of `zinc generate`, filled by Boost.Program_options in one place.
// Parsing errors throw UsageError (exit code 2, with a hint); everything else in the CLI
// throws zinc::Error (exit code 1).
#pragma once

#include <boost/program_options.hpp>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime/common/error.hpp"

namespace zinc::cli {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct GenerateOptions {
  std::string model;                         // HF directory, FILE.zinc.h5 or dummy:SHAPE
  std::string quant = "none";                // none|int8|int8-asym|int4|int4-sym|nf4
  bool quant_given = false;
  int group_size = 64;
  bool group_size_given = false;
  bool zero = false;                         // ZeRO-3 shards even on one rank with --quant none
  std::string plan = "auto";                 // --plan auto|off: the run planner (cli/plan_setup.hpp)
  bool plan_given = false;                   // --plan on the command line
  bool placement_given = false;              // a placement flag on the command line (no default plan)
  std::string offload = "cpu";               // none (all resident) | cpu | nvme (a store read in place)
  bool offload_given = false;
  int prefetch_depth = 2;                    // gather slots of the weight pipeline
  bool prefetch_depth_given = false;         // else host-KV lanes get kHostKvLaneSlots (run_setup.hpp)
  int resident_blobs = -1;                   // cap on resident blobs; -1 = the budget decides
  std::string kv_overlap = "auto";           // --kv-overlap: host-KV decode lanes (runtime/model/model.hpp)
  int micro_batch = 0;                       // sequences per micro-batch in a forward; 0 = auto
  bool kv_offload = false;                   // KV cache in host memory, attention on the CPU
  std::string kv_quant = "none";             // none | f16 | int8 | int4 (with kv_offload); auto with --plan auto
  unsigned nvme_queue_depth = 16;
  std::string nvme_block_size = "1MiB";
  std::vector<std::vector<int32_t>> prompts; // token ids: --prompt-ids, --prompt-ids-file
  std::vector<std::string> text_prompts;     // text: --prompt, --prompts-file (after the ids)
  std::string tokenizer;                     // --tokenizer PATH; "" = the model's own
  int max_new_tokens = 32;
  int batch_size = 0;                        // per rank, per forward; 0 = all of the rank's prompts
  float temperature = 0.0f;
  int top_k = 0;
  float top_p = 1.0f;
  uint64_t seed = 0;
  std::string backend = "auto";              // --backend: auto (cuda where a GPU is visible) | cpu | cuda
  std::string dtype = "auto";                // --dtype auto|fp32|fp16|bf16 (auto: cpu fp32; cuda the checkpoint's fp16/bf16)
  int threads = 0;                           // 0 = cores / ranks on this node
  std::string memory_budget;                 // --gpu-memory-budget: "" = unlimited, else e.g. "8GiB"
  std::string cpu_memory_budget;             // --cpu-memory-budget: pinned host bytes for shards
  std::string metrics_json;                  // "" = none
  std::string trace;                         // --trace FILE: the host timeline (common/trace.hpp)
  bool quiet = false;                        // metrics only, no tokens
  double collective_timeout_s = 300;         // the watchdog's limit (collectives/watchdog.hpp); 0 = off
};

// The most tokens one length option may ask for (a prompt, or the tokens generated after
// it): positions and KV-cache rows are 32-bit, so a prompt plus its new tokens must stay
// below 2^31. Real runs are bounded far lower by memory, which the allocators report.
constexpr int kMaxSequenceTokens = 1 << 30;
// Throws UsageError "FLAG must be in [min, kMaxSequenceTokens], got VALUE" outside that range.
void check_token_count(const char* flag, int64_t value, int min);

// Parses `zinc generate ARGS...` (argv[0] is "generate"). Returns false when --help was
// asked for (the help text is then in *help).
bool parse_generate_options(int argc, char** argv, GenerateOptions* out, std::string* help);

// The options `zinc generate` and `zinc bench` share (the model, its weight format and
// placement, the KV cache, the backend): added to `desc` bound to *o; after parsing,
// finish_run_options reads the "given" flags and checks them (UsageError naming the flag).
// Not shared: prompts, --max-new-tokens, --batch-size, sampling, --seed, --quiet.
void add_run_options(boost::program_options::options_description& desc, GenerateOptions* o);
void finish_run_options(const boost::program_options::variables_map& vm, GenerateOptions* o);

struct ConvertOptions {
  std::string model;  // HF directory or dummy:SHAPE
  std::string out;    // FILE.zinc.h5
  std::string quant = "nf4";
  int group_size = 64;
  bool force = false;  // replace an existing --out (a regular file that is not an input)
};

struct InfoOptions {
  std::string store;
  bool blobs = false;   // list every blob
  bool verify = false;  // read every page and check its CRC-32C
};

// The shared driver of every subcommand's options: parses, fills *vm_out (optional),
// returns false when --help was asked for (*help holds the text), and turns Boost errors
// into UsageError with a hint naming `command`.
bool parse_command(int argc, char** argv, const boost::program_options::options_description& desc,
                   const boost::program_options::positional_options_description* positional,
                   const char* command, std::string* help,
                   boost::program_options::variables_map* vm_out);

// Parse `zinc convert ...` / `zinc info ...` (argv[0] is the command); false = --help shown.
bool parse_convert_options(int argc, char** argv, ConvertOptions* out, std::string* help);
bool parse_info_options(int argc, char** argv, InfoOptions* out, std::string* help);

// "1,2,3" or "1 2 3" -> ids; `where` names the source in errors.
std::vector<int32_t> parse_token_ids(const std::string& text, const std::string& where);
// One prompt of token ids per non-empty line; '#' starts a comment line.
std::vector<std::vector<int32_t>> read_prompt_ids_file(const std::string& path);
// One text prompt per non-empty line (a trailing '\r' is dropped).
std::vector<std::string> read_prompts_file(const std::string& path);

}  // namespace zinc::cli
