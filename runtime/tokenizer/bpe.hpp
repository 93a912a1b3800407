// The BPE model of Hugging Face `tokenizers` (models::bpe): a vocabulary, ranked merges and
// the per-word merge loop, with unk / fuse_unk / byte_fallback / ignore_merges.
//
// tokenize(word) is HF's Bpe::tokenize: the word's characters are looked up one by one (a
// missing one becomes its <0xNN> byte tokens with byte_fallback, else the unk token, fused with
// a preceding unk when fuse_unk), then merged with a priority queue ordered by (rank, position)
// exactly as HF's Word::merge_all. Results for short words are cached (thread-safe) when the
// caller asks for it (for words from a splitting pre-tokenizer; whole lines rarely repeat).
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace zinc::runtime::tok {

// The largest id a vocabulary may hold. The largest real vocabularies have ~256k ids; a
// model needs an embedding row per id, so an id past 2^24 is a broken file, not a model.
constexpr int32_t kMaxTokenId = (1 << 24) - 1;

struct BpeOptions {
  std::optional<std::string> unk_token;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

// One merge "a b", with where it came from for error messages (merges.txt line, or 0).
struct BpeMerge {
  std::string left, right;
  size_t line = 0;
};

class BpeModel {
 public:
  // `where` names the file(s) for errors: a merge whose parts or result are not in the
  // vocabulary is an error naming it (and its line when known).
  BpeModel(std::unordered_map<std::string, int32_t> vocab, const std::vector<BpeMerge>& merges,
           BpeOptions options, const std::string& where);
  BpeModel(const BpeModel&) = delete;
  BpeModel& operator=(const BpeModel&) = delete;

  // Appends the ids of one pre-tokenized word. Throws zinc::Error if the unk token is needed
  // but not in the vocabulary (HF fails the same way).
  void tokenize(const std::string& word, std::vector<int32_t>& out, bool use_cache = true) const;

  int32_t token_to_id(const std::string& token) const;  // -1 if absent
  const std::string* id_to_token(int32_t id) const;     // nullptr if absent
  size_t size() const { return vocab_.size(); }         // number of entries
  int32_t max_id() const { return max_id_; }            // -1 when empty
  // Bytes of the id -> token table (the dense one or the sorted ids).
  size_t id_table_bytes() const {
    return dense_ids_.capacity() * sizeof(dense_ids_[0]) + sparse_ids_.capacity() * sizeof(sparse_ids_[0]);
  }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  // (left id, right id) -> Merge: open addressing with linear probing (the merge loop's hot
  // lookup; several times faster than std::unordered_map here).
  class PairMap {
   public:
    void reserve(size_t n);
    void insert_or_assign(int32_t a, int32_t b, Merge m);
    const Merge* find(int32_t a, int32_t b) const {
      const uint64_t k = key(a, b);
      for (size_t i = slot(k);; i = (i + 1) & mask_) {
        if (slots_[i].key == k) return &slots_[i].value;
        if (slots_[i].key == kEmpty) return nullptr;
      }
    }

   private:
    static constexpr uint64_t kEmpty = ~uint64_t{0};
    struct Slot {
      uint64_t key;
      Merge value;
    };
    static uint64_t key(int32_t a, int32_t b) {
      return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
    }
    size_t slot(uint64_t k) const {
      return static_cast<size_t>((k * 0x9E3779B97F4A7C15ull) >> shift_);
    }
    std::vector<Slot> slots_{Slot{kEmpty, Merge{}}};  // at most 1/4 full
    size_t mask_ = 0, size_ = 0;
    int shift_ = 63;
  };

  void merge_word(std::string_view word, std::vector<int32_t>& out) const;
  int32_t unk_id() const;
  int32_t char_id(uint32_t cp) const;  // id of the one-character token cp, or -1

  std::unordered_map<std::string, int32_t> vocab_;
  // id -> token, pointing at vocab_'s keys (an unordered_map never moves its elements): a
  // table indexed by id when the ids are dense (every real vocabulary), else (id, token)
  // sorted by id, so a file's one huge id costs one entry, not a table up to it.
  std::vector<const std::string*> dense_ids_;  // [max_id_ + 1]; nullptr for holes
  std::vector<std::pair<int32_t, const std::string*>> sparse_ids_;
  int32_t max_id_ = -1;
  std::vector<int32_t> bmp_char_ids_;               // one-character tokens below U+10000
  std::unordered_map<uint32_t, int32_t> char_ids_;  // one-character tokens above
  PairMap merges_;
  int32_t byte_ids_[256];  // <0xNN> ids (byte_fallback), or -1
  BpeOptions options_;
  std::string where_;

  static constexpr size_t kCacheMaxWordBytes = 64;  // longer words are not cached
  static constexpr size_t kCacheMaxEntries = 1 << 16;
  mutable std::mutex cache_mu_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace zinc::runtime::tok
