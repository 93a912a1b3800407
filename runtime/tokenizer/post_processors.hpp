// Post-processors of tokenizer.json that zinc supports, for a single sequence:
// TemplateProcessing (its "single" template), RobertaProcessing / BertProcessing ([cls] A [sep]),
// ByteLevel (offsets only: ids unchanged), and Sequence of those. With add_special_tokens false
// none of them changes the ids (as in HF).
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace zinc::runtime::tok {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // Adds the special tokens around the ids of one sequence.
  virtual void process(std::vector<int32_t>& ids) const = 0;
};

// Builds the post-processor described by `spec` (tokenizer.json's "post_processor"); nullptr
// for null.
std::unique_ptr<PostProcessor> make_post_processor(const nlohmann::json& spec,
                                                   const std::string& where);

// Prefix-only template ("BOS $A"), for the GPT-2 layout with add_bos_token.
std::unique_ptr<PostProcessor> make_prefix_post_processor(std::vector<int32_t> prefix);

}  // namespace zinc::runtime::tok
