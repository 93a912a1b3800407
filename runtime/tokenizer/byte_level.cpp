#include "runtime/tokenizer/byte_level.hpp"

#include "runtime/tokenizer/unicode.hpp"

namespace zinc::runtime::tok {

const ByteLevelMap& ByteLevelMap::get() {
  static const ByteLevelMap map;
  return map;
}

ByteLevelMap::ByteLevelMap() {
  for (auto& b : byte_of_) b = -1;
  uint32_t next_extra = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
    const uint32_t cp = printable ? static_cast<uint32_t>(b) : next_extra++;
    std::string s;
    append_utf8(s, cp);
    len_[b] = static_cast<uint8_t>(s.size());
    for (size_t k = 0; k < s.size(); ++k) utf8_[b][k] = s[k];
    byte_of_[cp] = static_cast<int16_t>(b);
  }
}

namespace {

// The class of the character at s[i] reduced to the one the pattern cares about, and its
// length.
enum Kind : uint8_t { kOther = 0, kL = 1, kN = 2, kS = 3 };

inline Kind kind_at(std::string_view s, size_t i, size_t* len) {
  const auto b = static_cast<uint8_t>(s[i]);
  if (b < 0x80) {  // ASCII without a table lookup
    *len = 1;
    if ((b | 0x20) >= 'a' && (b | 0x20) <= 'z') return kL;
    if (b >= '0' && b <= '9') return kN;
    if (b == ' ' || (b >= '\t' && b <= '\r')) return kS;
    return kOther;
  }
  const uint32_t cp = decode_utf8(s, i, len);
  if (cp == kInvalidCodePoint) return kOther;
  const uint8_t c = char_class(cp);
  if (c & kLetter) return kL;
  if (c & kNumber) return kN;
  if (c & kSpace) return kS;
  return kOther;
}

}  // namespace

void split_gpt2(std::string_view s, std::vector<std::pair<uint32_t, uint32_t>>& out) {
  const size_t n = s.size();
  size_t i = 0;
  auto emit = [&](size_t b, size_t e) {
    out.emplace_back(static_cast<uint32_t>(b), static_cast<uint32_t>(e));
    i = e;
  };
  while (i < n) {
    // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive, ASCII apostrophe only)
    if (s[i] == '\'' && i + 1 < n) {
      const char a = s[i + 1];
      if (a == 's' || a == 't' || a == 'm' || a == 'd') {
        emit(i, i + 2);
        continue;
      }
      if (i + 2 < n) {
        const char b = s[i + 2];
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
          emit(i, i + 3);
          continue;
        }
      }
    }
    // ` ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+`: an optional ASCII space, then a run of one kind.
    size_t j = s[i] == ' ' ? i + 1 : i;
    if (j < n) {
      size_t len;
      const Kind kind = kind_at(s, j, &len);
      if (kind != kS) {
        j += len;
        while (j < n && kind_at(s, j, &len) == kind) j += len;
        emit(i, j);
        continue;
      }
    }
    // `\s+(?!\S)|\s+`: the whitespace run, less its last character when a non-space follows
    // and the run has more than one character (that character then leads the next piece).
    size_t end = i, last = i, count = 0;
    size_t len;
    while (end < n && kind_at(s, end, &len) == kS) {
      last = end;
      end += len;
      ++count;
    }
    if (end == n || count == 1) {
      emit(i, end);
    } else {
      emit(i, last);
    }
  }
}

}  // namespace zinc::runtime::tok
