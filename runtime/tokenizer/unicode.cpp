#include "runtime/tokenizer/unicode.hpp"

#include <algorithm>
#include <vector>

namespace zinc::runtime::tok {
namespace {

// Classes of the Basic Multilingual Plane, expanded once from kCharRanges (64 KiB).
const std::vector<uint8_t>& bmp_classes() {
  static const std::vector<uint8_t> table = [] {
    std::vector<uint8_t> t(0x10000, 0);
    for (size_t i = 0; i < kNumCharRanges && kCharRanges[i].lo < 0x10000; ++i) {
      const uint32_t hi = std::min<uint32_t>(kCharRanges[i].hi, 0xFFFF);
      for (uint32_t c = kCharRanges[i].lo; c <= hi; ++c) t[c] = kCharRanges[i].cls;
    }
    return t;
  }();
  return table;
}

// Length of the well-formed sequence at s[i] (> 0, code point in *cp), or minus the length of
// its maximal invalid subpart (Unicode's "U+FFFD substitution of maximal subparts", which is
// what Rust's from_utf8_lossy does).
int utf8_sequence(std::string_view s, size_t i, uint32_t* cp) {
  const auto b0 = static_cast<uint8_t>(s[i]);
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  int need;
  uint8_t lo = 0x80, hi = 0xBF;
  uint32_t value;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
    value = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    value = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    value = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return -1;
  }
  for (int k = 1; k <= need; ++k) {
    if (i + k >= s.size()) return -k;
    const auto b = static_cast<uint8_t>(s[i + k]);
    if (b < lo || b > hi) return -k;
    lo = 0x80;
    hi = 0xBF;
    value = (value << 6) | (b & 0x3F);
  }
  *cp = value;
  return need + 1;
}

}  // namespace

uint8_t char_class(uint32_t cp) {
  if (cp < 0x10000) return bmp_classes()[cp];
  const CharRange* end = kCharRanges + kNumCharRanges;
  const CharRange* it = std::upper_bound(kCharRanges, end, cp,
                                         [](uint32_t c, const CharRange& r) { return c < r.lo; });
  if (it == kCharRanges) return 0;
  --it;
  return cp <= it->hi ? it->cls : 0;
}

uint32_t decode_utf8(std::string_view s, size_t i, size_t* len) {
  uint32_t cp = 0;
  const int n = utf8_sequence(s, i, &cp);
  if (n < 0) {
    *len = 1;
    return kInvalidCodePoint;
  }
  *len = static_cast<size_t>(n);
  return cp;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool is_valid_utf8(std::string_view bytes) {
  uint32_t cp;
  for (size_t i = 0; i < bytes.size();) {
    const int n = utf8_sequence(bytes, i, &cp);
    if (n < 0) return false;
    i += static_cast<size_t>(n);
  }
  return true;
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  uint32_t cp;
  for (size_t i = 0; i < bytes.size();) {
    const int n = utf8_sequence(bytes, i, &cp);
    if (n > 0) {
      out.append(bytes.data() + i, static_cast<size_t>(n));
      i += static_cast<size_t>(n);
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD
      i += static_cast<size_t>(-n);
    }
  }
  return out;
}

}  // namespace zinc::runtime::tok
