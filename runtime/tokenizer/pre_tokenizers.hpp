// Pre-tokenizers of tokenizer.json that zinc supports: ByteLevel (GPT-2 pattern + byte map),
// Metaspace (SentencePiece's "▁"), and Sequence of those. Anything else is refused.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace zinc::runtime::tok {

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits every piece of `pieces` further (in order) and rewrites them; empty pieces are
  // dropped. `first_at_start`: pieces[0] begins at byte 0 of the original input (Metaspace's
  // prepend_scheme "first" needs it).
  virtual void pre_tokenize(std::vector<std::string>& pieces, bool first_at_start) const = 0;
  // True when the pieces are words (worth caching in the model), not whole segments.
  virtual bool splits_words() const = 0;
};

// Builds the pre-tokenizer described by `spec` (tokenizer.json's "pre_tokenizer"); nullptr for
// null. `where` names the file and field for errors.
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& spec,
                                                 const std::string& where);

// ByteLevel with these options (the GPT-2 layout of vocab.json + merges.txt).
std::unique_ptr<PreTokenizer> make_byte_level_pre_tokenizer(bool add_prefix_space);

// Metaspace's prepend_scheme ("first", "always", "never"; legacy add_prefix_space maps to
// always/never) and its decoder share this.
enum class PrependScheme { kAlways, kFirst, kNever };
PrependScheme read_prepend_scheme(const nlohmann::json& spec, const std::string& where);

}  // namespace zinc::runtime::tok
