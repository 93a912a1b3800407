#include "runtime/tokenizer/added_vocabulary.hpp"

#include <algorithm>

#include "runtime/tokenizer/bpe.hpp"
#include "runtime/tokenizer/normalizers.hpp"
#include "runtime/tokenizer/unicode.hpp"

namespace zinc::runtime::tok {
namespace {

bool same_token(const AddedToken& a, const AddedToken& b) {
  return a.content == b.content && a.single_word == b.single_word && a.lstrip == b.lstrip &&
         a.rstrip == b.rstrip && a.normalized == b.normalized && a.special == b.special;
}

// Class of the first / last character of s (0 for an empty string).
uint8_t first_class(std::string_view s) {
  if (s.empty()) return 0;
  size_t len;
  const uint32_t cp = decode_utf8(s, 0, &len);
  return cp == kInvalidCodePoint ? 0 : char_class(cp);
}

uint8_t last_class(std::string_view s) {
  if (s.empty()) return 0;
  size_t i = s.size() - 1;
  while (i > 0 && (static_cast<uint8_t>(s[i]) & 0xC0) == 0x80) --i;
  size_t len;
  const uint32_t cp = decode_utf8(s, i, &len);
  return cp == kInvalidCodePoint ? 0 : char_class(cp);
}

// Start of the white space that ends s (regex \s*$).
size_t trailing_space_start(std::string_view s) {
  size_t i = s.size();
  while (i > 0) {
    size_t b = i - 1;
    while (b > 0 && (static_cast<uint8_t>(s[b]) & 0xC0) == 0x80) --b;
    size_t len;
    const uint32_t cp = decode_utf8(s, b, &len);
    if (cp == kInvalidCodePoint || b + len != i || !(char_class(cp) & kSpace)) break;
    i = b;
  }
  return i;
}

// Length of the white space that starts s (regex ^\s*).
size_t leading_space_length(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    size_t len;
    const uint32_t cp = decode_utf8(s, i, &len);
    if (cp == kInvalidCodePoint || !(char_class(cp) & kSpace)) break;
    i += len;
  }
  return i;
}

}  // namespace

void AddedVocabulary::Trie::insert(const std::string& pattern, int32_t id) {
  if (pattern.empty()) return;
  int32_t node = 0;
  for (char ch : pattern) {
    const auto b = static_cast<uint8_t>(ch);
    auto& next = nodes[static_cast<size_t>(node)].next;
    auto it = std::lower_bound(next.begin(), next.end(), std::make_pair(b, int32_t{-1}));
    if (it != next.end() && it->first == b) {
      node = it->second;
    } else {
      const auto child = static_cast<int32_t>(nodes.size());
      next.insert(it, {b, child});
      nodes.emplace_back();
      node = child;
    }
  }
  if (nodes[static_cast<size_t>(node)].token < 0) nodes[static_cast<size_t>(node)].token = id;
  first_byte[static_cast<uint8_t>(pattern[0])] = true;
}

size_t AddedVocabulary::Trie::longest_at(std::string_view text, size_t pos, int32_t* token) const {
  size_t best = 0;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto b = static_cast<uint8_t>(text[i]);
    const auto& next = nodes[static_cast<size_t>(node)].next;
    auto it = std::lower_bound(next.begin(), next.end(), std::make_pair(b, int32_t{-1}));
    if (it == next.end() || it->first != b) break;
    node = it->second;
    if (nodes[static_cast<size_t>(node)].token >= 0) {
      best = i + 1;
      *token = nodes[static_cast<size_t>(node)].token;
    }
  }
  return best;
}

void AddedVocabulary::add(const std::vector<AddedToken>& tokens, const BpeModel& model,
                          const Normalizer* normalizer) {
  std::vector<AddedToken> specials, classics;  // HF's two lists, in order
  for (const AddedToken& t : tokens) {
    if (t.special && !t.content.empty() && !special_.count(t.content)) {
      specials.push_back(t);
      special_.insert(t.content);
    }
  }
  const auto model_size = static_cast<int32_t>(model.size());
  for (const AddedToken& t : tokens) {
    if (t.content.empty()) continue;
    bool seen = false;
    for (const auto& [id, other] : by_id_) seen |= same_token(other, t);
    if (seen) continue;
    int32_t id = token_to_id(t.content);
    if (id < 0) id = model.token_to_id(t.content);
    if (id < 0) {
      const int32_t max = max_id();
      id = max < 0 ? model_size : (max >= model_size || model_size == 0 ? max + 1 : model_size);
    }
    by_content_[t.content] = id;
    AddedToken stored = t;
    stored.id = id;
    stored.decoded = t.content;
    if (t.normalized && normalizer) normalizer->normalize(stored.decoded);
    by_id_[id] = stored;
    if (!special_.count(t.content)) classics.push_back(t);
  }
  specials.insert(specials.end(), classics.begin(), classics.end());
  for (const AddedToken& t : specials) {
    const int32_t id = token_to_id(t.content);
    if (!t.normalized) {
      raw_.insert(t.content, id);
    } else {
      std::string pattern = t.content;
      if (normalizer) normalizer->normalize(pattern);
      normalized_.insert(pattern, id);
    }
  }
}

const AddedToken* AddedVocabulary::find_id(int32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &it->second;
}

int32_t AddedVocabulary::token_to_id(const std::string& content) const {
  auto it = by_content_.find(content);
  return it == by_content_.end() ? -1 : it->second;
}

int32_t AddedVocabulary::max_id() const {
  int32_t m = -1;
  for (const auto& [id, t] : by_id_) m = std::max(m, id);
  return m;
}

// HF's AddedVocabulary::find_matches, then the empty text pieces dropped.
void AddedVocabulary::split(std::string_view text, bool normalized_set,
                            std::vector<TextSplit>& out) const {
  out.clear();
  const Trie& trie = normalized_set ? normalized_ : raw_;
  size_t start_offset = 0;
  auto push_text = [&](size_t b, size_t e) {
    if (e > b) out.push_back({b, e, -1});
  };
  if (trie.nodes.size() > 1) {
    for (size_t pos = 0; pos < text.size();) {
      int32_t id = -1;
      const size_t end =
          trie.first_byte[static_cast<uint8_t>(text[pos])] ? trie.longest_at(text, pos, &id) : 0;
      if (end == 0) {
        ++pos;
        continue;
      }
      size_t start = pos, stop = end;
      pos = end;  // the scan goes on after the match, whatever happens to it below
      const AddedToken& t = by_id_.at(id);
      if (t.single_word) {
        const bool start_ok = start == 0 || !(last_class(text.substr(0, start)) & kWord);
        const bool stop_ok = stop == text.size() || !(first_class(text.substr(stop)) & kWord);
        if (!start_ok || !stop_ok) continue;
      }
      if (t.lstrip) start = std::max(trailing_space_start(text.substr(0, start)), start_offset);
      if (t.rstrip) stop += leading_space_length(text.substr(stop));
      if (start_offset < start) push_text(start_offset, start);
      out.push_back({start, stop, id});
      start_offset = stop;
    }
  }
  if (start_offset < text.size()) push_text(start_offset, text.size());
}

}  // namespace zinc::runtime::tok
