#include "runtime/tokenizer/pre_tokenizers.hpp"

#include <utility>

#include "runtime/tokenizer/byte_level.hpp"
#include "runtime/tokenizer/json_util.hpp"
#include "runtime/tokenizer/normalizers.hpp"
#include "runtime/tokenizer/unicode.hpp"

namespace zinc::runtime::tok {
namespace {

// ByteLevel: per piece, optionally a leading space, the GPT-2 split, then every byte as its
// GPT-2 character.
class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex)
      : add_prefix_space_(add_prefix_space), use_regex_(use_regex) {}

  void pre_tokenize(std::vector<std::string>& pieces, bool) const override {
    const ByteLevelMap& map = ByteLevelMap::get();
    thread_local std::vector<std::string> out;  // scratch, swapped with `pieces` below
    thread_local std::vector<std::pair<uint32_t, uint32_t>> spans;
    out.clear();
    std::string spaced;
    for (const std::string& piece : pieces) {
      std::string_view text = piece;
      if (add_prefix_space_ && !piece.empty() && piece[0] != ' ') {
        spaced = " " + piece;
        text = spaced;
      }
      spans.clear();
      if (use_regex_) {
        split_gpt2(text, spans);
      } else if (!text.empty()) {
        spans.emplace_back(0, static_cast<uint32_t>(text.size()));
      }
      for (const auto& [b, e] : spans) {
        std::string& w = out.emplace_back();
        w.reserve(2 * (e - b));
        for (uint32_t k = b; k < e; ++k) map.append(w, static_cast<uint8_t>(text[k]));
      }
    }
    pieces.swap(out);
  }
  bool splits_words() const override { return use_regex_; }

 private:
  bool add_prefix_space_, use_regex_;
};

// Metaspace: spaces become the replacement character, which may also be prepended; with split,
// every replacement character starts a new piece (SplitDelimiterBehavior::MergedWithNext).
class MetaspacePreTokenizer : public PreTokenizer {
 public:
  MetaspacePreTokenizer(std::string replacement, PrependScheme scheme, bool split)
      : rep_(std::move(replacement)), scheme_(scheme), split_(split) {}

  void pre_tokenize(std::vector<std::string>& pieces, bool first_at_start) const override {
    std::vector<std::string> out;
    for (size_t i = 0; i < pieces.size(); ++i) {
      std::string text = pieces[i];
      if (text.empty()) continue;
      replace_all(text, " ", rep_);
      const bool needs_prefix = text.compare(0, rep_.size(), rep_) != 0;
      if (needs_prefix && (scheme_ == PrependScheme::kAlways ||
                           (scheme_ == PrependScheme::kFirst && i == 0 && first_at_start))) {
        text.insert(0, rep_);
      }
      if (!split_) {
        out.push_back(std::move(text));
        continue;
      }
      size_t begin = 0;
      for (size_t hit = text.find(rep_, 1); hit != std::string::npos;
           hit = text.find(rep_, hit + rep_.size())) {
        if (hit > begin) out.emplace_back(text, begin, hit - begin);
        begin = hit;
      }
      out.emplace_back(text, begin, std::string::npos);
    }
    pieces.swap(out);
  }
  bool splits_words() const override { return split_; }

 private:
  std::string rep_;
  PrependScheme scheme_;
  bool split_;
};

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts)
      : parts_(std::move(parts)) {}
  void pre_tokenize(std::vector<std::string>& pieces, bool first_at_start) const override {
    for (const auto& p : parts_) p->pre_tokenize(pieces, first_at_start);
  }
  bool splits_words() const override {
    for (const auto& p : parts_) {
      if (p->splits_words()) return true;
    }
    return false;
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

// A single character (the Metaspace replacement) as UTF-8.
std::string one_char(const json& spec, const char* key, const std::string& where) {
  std::string s = string_member(spec, key, where);
  size_t len = 0;
  ZINC_CHECK(!s.empty() && decode_utf8(s, 0, &len) != kInvalidCodePoint && len == s.size(),
             where << ": '" << key << "' must be exactly one character, found \"" << s << "\"");
  return s;
}

}  // namespace

PrependScheme read_prepend_scheme(const json& spec, const std::string& where) {
  if (const json* scheme = optional_member(spec, "prepend_scheme", where)) {
    ZINC_CHECK(scheme->is_string(), where << ": 'prepend_scheme' must be a string");
    const std::string s = scheme->get<std::string>();
    if (s == "first") return PrependScheme::kFirst;
    if (s == "always") return PrependScheme::kAlways;
    if (s == "never") return PrependScheme::kNever;
    ZINC_THROW(where << ": unknown prepend_scheme '" << s << "' (first, always or never)");
  }
  return bool_member(spec, "add_prefix_space", true, where) ? PrependScheme::kAlways
                                                            : PrependScheme::kNever;
}

std::unique_ptr<PreTokenizer> make_byte_level_pre_tokenizer(bool add_prefix_space) {
  return std::make_unique<ByteLevelPreTokenizer>(add_prefix_space, true);
}

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& spec, const std::string& where) {
  if (spec.is_null()) return nullptr;
  const std::string type = type_of(spec, where);
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPreTokenizer>(
        bool_member(spec, "add_prefix_space", true, where),
        bool_member(spec, "use_regex", true, where));
  }
  if (type == "Metaspace") {
    return std::make_unique<MetaspacePreTokenizer>(one_char(spec, "replacement", where),
                                                   read_prepend_scheme(spec, where),
                                                   bool_member(spec, "split", true, where));
  }
  if (type == "Sequence") {
    const json& list = member(spec, "pretokenizers", where);
    ZINC_CHECK(list.is_array(), where << ": 'pretokenizers' must be an array");
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (size_t i = 0; i < list.size(); ++i) {
      auto p = make_pre_tokenizer(list[i], where + ".pretokenizers[" + std::to_string(i) + "]");
      if (p) parts.push_back(std::move(p));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(parts));
  }
  ZINC_THROW(where << ": type '" << type
                   << "' is not supported (zinc supports ByteLevel, Metaspace, and Sequence of "
                      "those)");
}

}  // namespace zinc::runtime::tok
