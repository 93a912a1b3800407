// Command-line options of `zinc generate`, filled by Boost.Program_options in one place.
// Parsing errors throw UsageError (exit code 2, with a hint); everything else in the CLI
// throws zinc::Error (exit code 1).
#pragma once

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
  std::string model;                         // Hugging Face model directory
  std::vector<std::vector<int32_t>> prompts; // from --prompt-ids and/or --prompts-file
  int max_new_tokens = 32;
  int batch_size = 0;                        // per rank, per forward; 0 = all of the rank's prompts
  float temperature = 0.0f;
  int top_k = 0;
  float top_p = 1.0f;
  uint64_t seed = 0;
  int threads = 0;                           // 0 = cores / ranks on this node
  std::string memory_budget;                 // "" = unlimited, else e.g. "8GiB"
  std::string metrics_json;                  // "" = none
  bool quiet = false;                        // metrics only, no tokens
};

// Parses `zinc generate ARGS...` (argv[0] is "generate"). Returns false when --help was
// asked for (the help text is then in *help).
bool parse_generate_options(int argc, char** argv, GenerateOptions* out, std::string* help);

// "1,2,3" or "1 2 3" -> ids; `where` names the source in errors.
std::vector<int32_t> parse_token_ids(const std::string& text, const std::string& where);
// One prompt per non-empty line; '#' starts a comment line.
std::vector<std::vector<int32_t>> read_prompts_file(const std::string& path);

}  // namespace zinc::cli
