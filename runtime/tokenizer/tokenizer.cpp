#include "runtime/tokenizer/tokenizer.hpp"

#include <algorithm>

#include "runtime/tokenizer/tokenizer_parts.hpp"

namespace zinc::runtime {
namespace {

// transformers' PreTrainedTokenizerBase.clean_up_tokenization.
std::string clean_up_tokenization(std::string text) {
  static const char* const kRules[][2] = {
      {" .", "."},     {" ?", "?"},   {" !", "!"},   {" ,", ","},     {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& rule : kRules) tok::replace_all(text, rule[0], rule[1]);
  return text;
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<tok::TokenizerParts> parts) : parts_(std::move(parts)) {}
Tokenizer::~Tokenizer() = default;

std::unique_ptr<Tokenizer> Tokenizer::load(const std::string& path_or_dir) {
  return std::unique_ptr<Tokenizer>(new Tokenizer(tok::load_tokenizer_parts(path_or_dir)));
}

std::unique_ptr<Tokenizer> Tokenizer::from_json(const std::string& text, const std::string& source) {
  return std::unique_ptr<Tokenizer>(new Tokenizer(tok::tokenizer_parts_from_json(text, source)));
}

// HF's pipeline: added tokens (raw) -> normalizer -> added tokens (normalized) ->
// pre-tokenizer -> model, per piece; then the post-processor.
std::vector<int32_t> Tokenizer::encode(const std::string& text, bool add_special_tokens) const {
  const tok::TokenizerParts& p = *parts_;
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<tok::TextSplit> outer, inner;
  std::vector<std::string> pieces;
  std::string normalized;
  const bool words = p.pre_tokenizer && p.pre_tokenizer->splits_words();
  p.added.split(text, /*normalized_set=*/false, outer);
  for (const tok::TextSplit& piece : outer) {
    if (piece.id >= 0) {
      ids.push_back(piece.id);
      continue;
    }
    normalized.assign(text, piece.begin, piece.end - piece.begin);
    if (p.normalizer) p.normalizer->normalize(normalized);
    p.added.split(normalized, /*normalized_set=*/true, inner);
    for (const tok::TextSplit& sub : inner) {
      if (sub.id >= 0) {
        ids.push_back(sub.id);
        continue;
      }
      pieces.clear();
      pieces.emplace_back(normalized, sub.begin, sub.end - sub.begin);
      if (p.pre_tokenizer)
        p.pre_tokenizer->pre_tokenize(pieces, piece.begin == 0 && sub.begin == 0);
      for (const std::string& w : pieces) p.model->tokenize(w, ids, /*use_cache=*/words);
    }
  }
  if (add_special_tokens && p.post_processor) p.post_processor->process(ids);
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  const tok::TokenizerParts& p = *parts_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    const tok::AddedToken* added = p.added.find_id(id);
    const std::string* token = added ? &added->decoded : p.model->id_to_token(id);
    if (!token) continue;
    if (skip_special_tokens && p.added.is_special(*token)) continue;
    tokens.push_back(*token);
  }
  std::string text;
  if (p.decoder) {
    p.decoder->decode_chain(tokens);
    for (const std::string& t : tokens) text += t;
  } else {
    for (size_t i = 0; i < tokens.size(); ++i) text += (i ? " " : "") + tokens[i];
  }
  return p.clean_up_spaces ? clean_up_tokenization(std::move(text)) : text;
}

int32_t Tokenizer::bos_id() const { return parts_->bos; }
int32_t Tokenizer::eos_id() const { return parts_->eos; }
int32_t Tokenizer::pad_id() const { return parts_->pad; }

size_t Tokenizer::vocab_size() const {
  return static_cast<size_t>(std::max(parts_->model->max_id(), parts_->added.max_id()) + 1);
}

size_t Tokenizer::id_table_bytes() const { return parts_->model->id_table_bytes(); }

std::string Tokenizer::id_to_token(int32_t id) const {
  if (const tok::AddedToken* t = parts_->added.find_id(id)) return t->decoded;
  const std::string* s = parts_->model->id_to_token(id);
  return s ? *s : std::string();
}

int32_t Tokenizer::token_to_id(const std::string& token) const {
  const int32_t id = parts_->added.token_to_id(token);
  return id >= 0 ? id : parts_->model->token_to_id(token);
}

const std::string& Tokenizer::source() const { return parts_->source; }

}  // namespace zinc::runtime
