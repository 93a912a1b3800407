// The pieces of a loaded tokenizer (internal to runtime/tokenizer): what tokenizer_load.cpp
// builds and tokenizer.cpp runs.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "runtime/tokenizer/added_vocabulary.hpp"
#include "runtime/tokenizer/bpe.hpp"
#include "runtime/tokenizer/decoders.hpp"
#include "runtime/tokenizer/normalizers.hpp"
#include "runtime/tokenizer/post_processors.hpp"
#include "runtime/tokenizer/pre_tokenizers.hpp"

namespace zinc::runtime::tok {

struct TokenizerParts {
  std::string source;                           // tokenizer.json path or the directory
  std::unique_ptr<Normalizer> normalizer;       // may be null
  std::unique_ptr<PreTokenizer> pre_tokenizer;  // may be null
  std::unique_ptr<BpeModel> model;              // never null
  AddedVocabulary added;
  std::unique_ptr<PostProcessor> post_processor;  // may be null
  std::unique_ptr<Decoder> decoder;               // may be null (tokens joined with spaces)
  bool clean_up_spaces = false;                   // transformers' clean_up_tokenization
  int32_t bos = -1, eos = -1, pad = -1;
};

// Reads a tokenizer.json file, a directory with one, or a GPT-2 layout directory.
std::unique_ptr<TokenizerParts> load_tokenizer_parts(const std::string& path_or_dir);
// tokenizer.json's text alone (no side files); `source` names it in errors.
std::unique_ptr<TokenizerParts> tokenizer_parts_from_json(const std::string& text, const std::string& source);

}  // namespace zinc::runtime::tok
