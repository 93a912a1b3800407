#include "runtime/tokenizer/bpe.hpp"

#include <algorithm>
#include <cstdio>

#include "runtime/common/error.hpp"
#include "runtime/tokenizer/unicode.hpp"

namespace zinc::runtime::tok {
namespace {

struct Symbol {
  int32_t id;
  int32_t prev, next;  // neighbours in the word (-1: none)
  uint32_t len;        // bytes of the word this symbol covers; 0 once merged away
};

// A candidate merge of the pair (left, right) at symbol pos; order = rank << 32 | pos.
struct QueueEntry {
  uint64_t order;
  int32_t new_id, left, right;
  int32_t pos() const { return static_cast<int32_t>(order & 0xFFFFFFFFu); }
  // The heap pops the greatest: make that the lowest rank, then the leftmost position.
  bool operator<(const QueueEntry& o) const { return order > o.order; }
};

QueueEntry entry(int32_t rank, int32_t pos, int32_t new_id, int32_t left, int32_t right) {
  return {(static_cast<uint64_t>(rank) << 32) | static_cast<uint32_t>(pos), new_id, left, right};
}

// Decodes the code point at s[i] with an inline path for well-formed 1-3 byte sequences.
inline uint32_t next_code_point(std::string_view s, size_t i, size_t* len) {
  const auto b0 = static_cast<uint8_t>(s[i]);
  if (b0 < 0x80) {
    *len = 1;
    return b0;
  }
  if (b0 >= 0xC2 && b0 < 0xE0 && i + 1 < s.size() &&
      (static_cast<uint8_t>(s[i + 1]) & 0xC0) == 0x80) {
    *len = 2;
    return ((b0 & 0x1Fu) << 6) | (static_cast<uint8_t>(s[i + 1]) & 0x3Fu);
  }
  if (b0 >= 0xE1 && b0 <= 0xEF && b0 != 0xED && i + 2 < s.size() &&
      (static_cast<uint8_t>(s[i + 1]) & 0xC0) == 0x80 &&
      (static_cast<uint8_t>(s[i + 2]) & 0xC0) == 0x80) {
    *len = 3;
    return ((b0 & 0x0Fu) << 12) | ((static_cast<uint8_t>(s[i + 1]) & 0x3Fu) << 6) |
           (static_cast<uint8_t>(s[i + 2]) & 0x3Fu);
  }
  return decode_utf8(s, i, len);  // E0 / ED / 4-byte / invalid: the careful path
}

}  // namespace

void BpeModel::PairMap::reserve(size_t n) {
  size_t cap = 16;
  int bits = 4;
  while (cap < 4 * n) {
    cap *= 2;
    ++bits;
  }
  slots_.assign(cap, Slot{kEmpty, Merge{}});
  mask_ = cap - 1;
  shift_ = 64 - bits;
  size_ = 0;
}

void BpeModel::PairMap::insert_or_assign(int32_t a, int32_t b, Merge m) {
  if (4 * (size_ + 1) > slots_.size()) {  // grow (reserve() normally makes this unnecessary)
    std::vector<Slot> old = std::move(slots_);
    reserve(old.size());
    for (const Slot& s : old) {
      if (s.key != kEmpty) {
        insert_or_assign(static_cast<int32_t>(s.key >> 32), static_cast<int32_t>(s.key), s.value);
      }
    }
  }
  const uint64_t k = key(a, b);
  size_t i = slot(k);
  while (slots_[i].key != kEmpty && slots_[i].key != k) i = (i + 1) & mask_;
  if (slots_[i].key == kEmpty) ++size_;
  slots_[i] = Slot{k, m};
}

BpeModel::BpeModel(std::unordered_map<std::string, int32_t> vocab,
                   const std::vector<BpeMerge>& merges, BpeOptions options,
                   const std::string& where)
    : vocab_(std::move(vocab)), options_(std::move(options)), where_(where) {
  for (const auto& [token, id] : vocab_) {
    ZINC_CHECK(id >= 0 && id <= kMaxTokenId, where << ": token \"" << token << "\" has id " << id
                                                   << ", outside [0, " << kMaxTokenId << "]");
    max_id_ = std::max(max_id_, id);
  }
  // Dense when at most half the table would be holes (plus some slack for small files).
  if (static_cast<size_t>(max_id_) + 1 <= 2 * vocab_.size() + 1024) {
    dense_ids_.assign(static_cast<size_t>(max_id_) + 1, nullptr);
  } else {
    sparse_ids_.reserve(vocab_.size());
  }
  bmp_char_ids_.assign(0x10000, -1);
  for (const auto& [token, id] : vocab_) {
    if (!dense_ids_.empty()) {
      dense_ids_[static_cast<size_t>(id)] = &token;
    } else {
      sparse_ids_.emplace_back(id, &token);
    }
    size_t len = 0;
    if (!token.empty()) {
      const uint32_t cp = decode_utf8(token, 0, &len);
      if (cp != kInvalidCodePoint && len == token.size()) {
        if (cp < 0x10000) {
          bmp_char_ids_[cp] = id;
        } else {
          char_ids_[cp] = id;
        }
      }
    }
  }
  // Two tokens with one id: one of them answers for it (HF keeps whichever its map holds).
  std::sort(sparse_ids_.begin(), sparse_ids_.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  merges_.reserve(merges.size());
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const BpeMerge& m = merges[rank];
    auto at = [&]() {
      return m.line ? " line " + std::to_string(m.line) : " merge #" + std::to_string(rank);
    };
    const int32_t a = token_to_id(m.left), b = token_to_id(m.right);
    ZINC_CHECK(a >= 0,
               where << at() << ": merge token \"" << m.left << "\" is not in the vocabulary");
    ZINC_CHECK(b >= 0,
               where << at() << ": merge token \"" << m.right << "\" is not in the vocabulary");
    const int32_t c = token_to_id(m.left + m.right);
    ZINC_CHECK(c >= 0, where << at() << ": merged token \"" << m.left + m.right
                             << "\" is not in the vocabulary");
    merges_.insert_or_assign(
        a, b, Merge{static_cast<int32_t>(rank), c});  // later duplicate wins, as in HF
  }
  for (int i = 0; i < 256; ++i) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", i);
    byte_ids_[i] = options_.byte_fallback ? token_to_id(name) : -1;
  }
}

int32_t BpeModel::token_to_id(const std::string& token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || id > max_id_) return nullptr;
  if (!dense_ids_.empty()) return dense_ids_[static_cast<size_t>(id)];
  auto it = std::lower_bound(sparse_ids_.begin(), sparse_ids_.end(), id,
                             [](const auto& e, int32_t v) { return e.first < v; });
  return it != sparse_ids_.end() && it->first == id ? it->second : nullptr;
}

int32_t BpeModel::char_id(uint32_t cp) const {
  if (cp < 0x10000) return bmp_char_ids_[cp];
  if (cp == kInvalidCodePoint) return -1;
  auto it = char_ids_.find(cp);
  return it == char_ids_.end() ? -1 : it->second;
}

int32_t BpeModel::unk_id() const {
  const int32_t id = token_to_id(*options_.unk_token);
  ZINC_CHECK(id >= 0, where_ << ": the unk token \"" << *options_.unk_token
                             << "\" is needed but is not in the vocabulary");
  return id;
}

void BpeModel::tokenize(const std::string& word, std::vector<int32_t>& out, bool use_cache) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    const int32_t id = token_to_id(word);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  const bool cacheable = use_cache && word.size() <= kCacheMaxWordBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = out.size();
  merge_word(word, out);
  if (cacheable) {
    std::vector<int32_t> ids(out.begin() + static_cast<std::ptrdiff_t>(first), out.end());
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_.size() >= kCacheMaxEntries) cache_.clear();
    cache_.emplace(word, std::move(ids));
  }
}

// HF's Bpe::merge_word + Word::merge_all (without dropout).
void BpeModel::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  thread_local std::vector<Symbol> symbols;  // scratch, reused across calls (never shrinks)
  thread_local std::vector<QueueEntry> heap;
  if (symbols.size() < word.size()) symbols.resize(word.size());
  heap.clear();
  int32_t count = 0;  // symbols in use
  auto add = [&](int32_t id, size_t len) {
    symbols[static_cast<size_t>(count)] = Symbol{id, count - 1, -1, static_cast<uint32_t>(len)};
    if (count > 0) symbols[static_cast<size_t>(count - 1)].next = count;
    ++count;
  };
  // A pending unk: (id, bytes); flushed before the next known character or at the end.
  int32_t unk = -1;
  size_t unk_len = 0;
  for (size_t i = 0; i < word.size();) {
    size_t len;
    const uint32_t cp = next_code_point(word, i, &len);
    const int32_t known = cp < 0x10000 ? bmp_char_ids_[cp] : char_id(cp);
    if (known >= 0) {
      if (unk >= 0) {
        add(unk, unk_len);
        unk = -1;
      }
      add(known, len);
    } else {
      bool fell_back = false;
      if (options_.byte_fallback) {
        fell_back = true;
        for (size_t k = 0; k < len; ++k)
          fell_back &= byte_ids_[static_cast<uint8_t>(word[i + k])] >= 0;
        if (fell_back) {
          for (size_t k = 0; k < len; ++k) add(byte_ids_[static_cast<uint8_t>(word[i + k])], 1);
        }
      }
      if (!fell_back && options_.unk_token) {
        if (unk >= 0 && options_.fuse_unk) {
          unk_len += len;
        } else {
          if (unk >= 0) add(unk, unk_len);
          unk = unk_id();
          unk_len = len;
        }
      }
    }
    i += len;
  }
  if (unk >= 0) add(unk, unk_len);

  auto push = [&](QueueEntry e) {
    heap.push_back(e);
    std::push_heap(heap.begin(), heap.end());
  };
  for (int32_t i = 0; i + 1 < count; ++i) {
    const int32_t a = symbols[static_cast<size_t>(i)].id,
                  b = symbols[static_cast<size_t>(i) + 1].id;
    if (const Merge* m = merges_.find(a, b)) push(entry(m->rank, i, m->new_id, a, b));
  }
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const QueueEntry top = heap.back();
    heap.pop_back();
    const int32_t pos = top.pos();
    Symbol& cur = symbols[static_cast<size_t>(pos)];
    if (cur.len == 0 || cur.next < 0) continue;
    Symbol& right = symbols[static_cast<size_t>(cur.next)];
    // A stale entry: one of the two symbols has changed since it was queued. (HF re-looks the
    // pair up and compares the merge result; the pair changed iff the result did, since a
    // merge result is the concatenation of the pair and symbols only grow.)
    if (cur.id != top.left || right.id != top.right) continue;
    cur.id = top.new_id;
    cur.len += right.len;
    right.len = 0;
    cur.next = right.next;
    if (cur.next >= 0) symbols[static_cast<size_t>(cur.next)].prev = pos;
    if (cur.prev >= 0) {
      const int32_t a = symbols[static_cast<size_t>(cur.prev)].id;
      if (const Merge* p = merges_.find(a, cur.id))
        push(entry(p->rank, cur.prev, p->new_id, a, cur.id));
    }
    if (cur.next >= 0) {
      const int32_t b = symbols[static_cast<size_t>(cur.next)].id;
      if (const Merge* n = merges_.find(cur.id, b)) push(entry(n->rank, pos, n->new_id, cur.id, b));
    }
  }
  for (int32_t i = 0; i < count; ++i) {
    if (symbols[static_cast<size_t>(i)].len != 0) out.push_back(symbols[static_cast<size_t>(i)].id);
  }
}

}  // namespace zinc::runtime::tok
