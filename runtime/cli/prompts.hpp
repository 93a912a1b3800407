// Turning the command line's prompts into token ids, and completions back into text:
// finds the model's tokenizer (--tokenizer, an HF directory's tokenizer.json or
// vocab.json + merges.txt, or the copy a zinc store carries).
#pragma once

#include <memory>
#include <string>

#include "runtime/tokenizer/tokenizer.hpp"

namespace zinc::cli {

// The tokenizer for `model` (or `explicit_path` when given). nullptr when the model has
// none (dummy shapes, directories without one) and `required` is false; otherwise an error
// saying where it looked.
std::unique_ptr<runtime::Tokenizer> find_tokenizer(const std::string& model,
                                                   const std::string& explicit_path, bool required);

}  // namespace zinc::cli
