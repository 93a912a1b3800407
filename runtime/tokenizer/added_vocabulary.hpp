// Added tokens (tokenizer.json's "added_tokens"), matched in the text before anything else, as
// Hugging Face's AddedVocabulary does:
//   1. tokens with normalized=false are found in the raw input;
//   2. the text between them is normalized, then tokens with normalized=true are found in it
//      (their patterns are normalized with the same normalizer).
// Matching is leftmost-longest (HF uses Aho-Corasick with MatchKind::LeftmostLongest); per token,
// single_word keeps only matches not inside a word, lstrip / rstrip extend the match over the
// white space on its left / right.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace zinc::runtime::tok {

class BpeModel;
class Normalizer;

struct AddedToken {
  std::string content;
  int32_t id = -1;  // set by AddedVocabulary::add
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
  bool special = false;
  // What decode() (and id_to_token) show for it: the normalized content for a normalized token
  // that the normalizer changes (tokenizers >= 0.22 decodes that form), else the content.
  std::string decoded;
};

// A part of a text: an added token (id >= 0) or text to tokenize (id == -1), [begin, end).
struct TextSplit {
  size_t begin, end;
  int32_t id;
};

class AddedVocabulary {
 public:
  // Adds tokens in file order with HF's id rule: the model's id when the content is in the
  // model vocabulary, else the next free id after the model's (and earlier added tokens').
  // Empty or repeated tokens are ignored. `normalizer` (may be null) normalizes the patterns of
  // normalized tokens. Call once, with every token.
  void add(const std::vector<AddedToken>& tokens, const BpeModel& model,
           const Normalizer* normalizer);

  // Splits `text` on the tokens of one matching set (normalized or not); text pieces that would
  // be empty are left out.
  void split(std::string_view text, bool normalized_set, std::vector<TextSplit>& out) const;

  bool empty() const { return by_id_.empty(); }
  const AddedToken* find_id(int32_t id) const;
  int32_t token_to_id(const std::string& content) const;  // -1 if not an added token
  bool is_special(const std::string& content) const { return special_.count(content) != 0; }
  int32_t max_id() const;  // -1 when empty

 private:
  // A byte trie over one set of patterns, for leftmost-longest matching.
  struct Trie {
    struct Node {
      std::vector<std::pair<uint8_t, int32_t>> next;  // sorted by byte
      int32_t token = -1;                             // added token id ending here
    };
    std::vector<Node> nodes{Node{}};
    bool first_byte[256] = {};
    void insert(const std::string& pattern, int32_t id);
    // The longest pattern starting at text[pos]: its end, id in *token; 0 if none.
    size_t longest_at(std::string_view text, size_t pos, int32_t* token) const;
  };

  std::unordered_map<int32_t, AddedToken> by_id_;
  std::unordered_map<std::string, int32_t> by_content_;
  std::unordered_set<std::string> special_;
  Trie raw_, normalized_;
};

}  // namespace zinc::runtime::tok
