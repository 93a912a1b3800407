#include "runtime/tokenizer/post_processors.hpp"

#include "runtime/tokenizer/json_util.hpp"

namespace zinc::runtime::tok {
namespace {

// A template: the ids to put before and after sequence A.
class AroundPostProcessor : public PostProcessor {
 public:
  AroundPostProcessor(std::vector<int32_t> before, std::vector<int32_t> after)
      : before_(std::move(before)), after_(std::move(after)) {}
  void process(std::vector<int32_t>& ids) const override {
    if (!before_.empty()) ids.insert(ids.begin(), before_.begin(), before_.end());
    ids.insert(ids.end(), after_.begin(), after_.end());
  }

 private:
  std::vector<int32_t> before_, after_;
};

class SequencePostProcessor : public PostProcessor {
 public:
  explicit SequencePostProcessor(std::vector<std::unique_ptr<PostProcessor>> parts)
      : parts_(std::move(parts)) {}
  void process(std::vector<int32_t>& ids) const override {
    for (const auto& p : parts_) p->process(ids);
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> parts_;
};

int32_t id_value(const json& v, const std::string& where) {
  ZINC_CHECK(v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() < (1LL << 31),
             where << ": a token id must be a non-negative integer, found " << v.dump());
  return static_cast<int32_t>(v.get<int64_t>());
}

// TemplateProcessing's "single": [{"SpecialToken": {"id": "<s>"}}, {"Sequence": {"id": "A"}}]
// with "special_tokens": {"<s>": {"ids": [1], ...}}.
std::unique_ptr<PostProcessor> make_template(const json& spec, const std::string& where) {
  const json& single = member(spec, "single", where);
  ZINC_CHECK(single.is_array(), where << ": 'single' must be an array");
  const json& specials = member(spec, "special_tokens", where);
  std::vector<int32_t> before, after;
  bool seen_a = false;
  for (size_t i = 0; i < single.size(); ++i) {
    const std::string at = where + ".single[" + std::to_string(i) + "]";
    if (const json* seq = optional_member(single[i], "Sequence", at)) {
      const std::string which = string_member(*seq, "id", at + ".Sequence");
      ZINC_CHECK(which == "A" && !seen_a,
                 at << ": a single-sequence template may use $A once (found $" << which << ")");
      seen_a = true;
    } else if (const json* tok = optional_member(single[i], "SpecialToken", at)) {
      const std::string name = string_member(*tok, "id", at + ".SpecialToken");
      const json* entry = optional_member(specials, name.c_str(), where + ".special_tokens");
      ZINC_CHECK(entry, where << ": special token \"" << name
                              << "\" of the template is missing from special_tokens");
      const json& ids = member(*entry, "ids", where + ".special_tokens." + name);
      ZINC_CHECK(ids.is_array(), where << ": special_tokens." << name << ".ids must be an array");
      for (const json& id : ids) (seen_a ? after : before).push_back(id_value(id, where));
    } else {
      ZINC_THROW(at << ": expected a Sequence or SpecialToken piece, found " << single[i].dump());
    }
  }
  ZINC_CHECK(seen_a, where << ": the single template has no $A");
  return std::make_unique<AroundPostProcessor>(std::move(before), std::move(after));
}

// ["</s>", 2] of RobertaProcessing / BertProcessing.
int32_t pair_id(const json& spec, const char* key, const std::string& where) {
  const json& v = member(spec, key, where);
  ZINC_CHECK(v.is_array() && v.size() == 2, where << ": '" << key << "' must be [token, id]");
  return id_value(v[1], where + "." + key);
}

}  // namespace

std::unique_ptr<PostProcessor> make_prefix_post_processor(std::vector<int32_t> prefix) {
  return std::make_unique<AroundPostProcessor>(std::move(prefix), std::vector<int32_t>{});
}

std::unique_ptr<PostProcessor> make_post_processor(const json& spec, const std::string& where) {
  if (spec.is_null()) return nullptr;
  const std::string type = type_of(spec, where);
  if (type == "ByteLevel") return nullptr;  // only trims offsets
  if (type == "TemplateProcessing") return make_template(spec, where);
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    return std::make_unique<AroundPostProcessor>(std::vector<int32_t>{pair_id(spec, "cls", where)},
                                                 std::vector<int32_t>{pair_id(spec, "sep", where)});
  }
  if (type == "Sequence") {
    const json& list = member(spec, "processors", where);
    ZINC_CHECK(list.is_array(), where << ": 'processors' must be an array");
    std::vector<std::unique_ptr<PostProcessor>> parts;
    for (size_t i = 0; i < list.size(); ++i) {
      auto p = make_post_processor(list[i], where + ".processors[" + std::to_string(i) + "]");
      if (p) parts.push_back(std::move(p));
    }
    return std::make_unique<SequencePostProcessor>(std::move(parts));
  }
  ZINC_THROW(where << ": type '" << type
                   << "' is not supported (zinc supports TemplateProcessing, ByteLevel, "
                      "RobertaProcessing, BertProcessing, and Sequence of those)");
}

}  // namespace zinc::runtime::tok
