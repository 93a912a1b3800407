// Normalizers of tokenizer.json that zinc supports: Prepend, Replace (String pattern) and
// Sequence of those (the LLaMA-2 pipeline). Anything else is refused when loading.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

namespace zinc::runtime::tok {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  // Rewrites one piece of text (a part of the input between added tokens) in place.
  virtual void normalize(std::string& text) const = 0;
};

// Builds the normalizer described by `spec` (tokenizer.json's "normalizer"); nullptr for null.
// `where` names the file and field for errors.
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& spec, const std::string& where);

// Replaces every non-overlapping occurrence of `from` (left to right) by `to`.
void replace_all(std::string& text, const std::string& from, const std::string& to);

}  // namespace zinc::runtime::tok
