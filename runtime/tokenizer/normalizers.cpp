#include "runtime/tokenizer/normalizers.hpp"

#include <vector>

#include "runtime/tokenizer/json_util.hpp"

namespace zinc::runtime::tok {

void replace_all(std::string& text, const std::string& from, const std::string& to) {
  if (from.empty() || text.find(from) == std::string::npos) return;
  std::string out;
  out.reserve(text.size() + text.size() / 4);
  size_t pos = 0;
  for (size_t hit; (hit = text.find(from, pos)) != std::string::npos; pos = hit + from.size()) {
    out.append(text, pos, hit - pos);
    out += to;
  }
  out.append(text, pos, std::string::npos);
  text.swap(out);
}

namespace {

// Prepend: adds a prefix to any non-empty piece.
class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(std::string& text) const override {
    if (!text.empty()) text.insert(0, prefix_);
  }

 private:
  std::string prefix_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(std::string from, std::string to)
      : from_(std::move(from)), to_(std::move(to)) {}
  void normalize(std::string& text) const override { replace_all(text, from_, to_); }

 private:
  std::string from_, to_;
};

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts)
      : parts_(std::move(parts)) {}
  void normalize(std::string& text) const override {
    for (const auto& p : parts_) p->normalize(text);
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& spec, const std::string& where) {
  if (spec.is_null()) return nullptr;
  const std::string type = type_of(spec, where);
  if (type == "Prepend")
    return std::make_unique<PrependNormalizer>(string_member(spec, "prepend", where));
  if (type == "Replace") {
    std::string from = string_pattern(spec, where);
    ZINC_CHECK(!from.empty(), where << ": Replace with an empty pattern");
    return std::make_unique<ReplaceNormalizer>(std::move(from),
                                               string_member(spec, "content", where));
  }
  if (type == "Sequence") {
    const json& list = member(spec, "normalizers", where);
    ZINC_CHECK(list.is_array(), where << ": 'normalizers' must be an array");
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (size_t i = 0; i < list.size(); ++i) {
      auto p = make_normalizer(list[i], where + ".normalizers[" + std::to_string(i) + "]");
      if (p) parts.push_back(std::move(p));
    }
    return std::make_unique<SequenceNormalizer>(std::move(parts));
  }
  ZINC_THROW(where << ": type '" << type
                   << "' is not supported (zinc supports Prepend, Replace with a String "
                      "pattern, and Sequence of those)");
}

}  // namespace zinc::runtime::tok
