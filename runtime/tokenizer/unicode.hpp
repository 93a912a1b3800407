// UTF-8 helpers and the character classes the tokenizer pipelines need.
//
// The classes come from a generated range table (unicode_table.cpp, made by
// tests/reference/make_tokenizer_fixtures.py --unicode-table): \p{L}, \p{N} and \s exactly as
// the Oniguruma engine inside Hugging Face `tokenizers` sees them (the GPT-2 pattern), plus an
// approximation of Rust regex \w used only by AddedToken.single_word.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace zinc::runtime::tok {

// Bits returned by char_class(); a code point with none of them is "other".
enum CharClass : uint8_t {
  kLetter = 1,  // \p{L}: Lu Ll Lt Lm Lo
  kNumber = 2,  // \p{N}: Nd Nl No
  kSpace = 4,   // \s: Unicode White_Space
  kWord = 8,    // ~\w: L, M, Nd, Nl, Pc, ZWNJ/ZWJ
};

struct CharRange {
  uint32_t lo, hi;  // inclusive code point range
  uint8_t cls;      // CharClass bits
};
extern const CharRange kCharRanges[];  // sorted, disjoint
extern const size_t kNumCharRanges;

// CharClass bits of a code point (0 for unassigned, symbols, punctuation, marks, ...).
uint8_t char_class(uint32_t cp);

// Marks a byte that does not start a valid UTF-8 sequence (decoded as one byte).
constexpr uint32_t kInvalidCodePoint = 0xFFFFFFFFu;

// Decodes the code point that starts at s[i] (i < s.size()) and stores its byte length in
// *len. An invalid or truncated sequence yields kInvalidCodePoint with *len = 1.
uint32_t decode_utf8(std::string_view s, size_t i, size_t* len);

// Appends the UTF-8 encoding of cp (cp <= 0x10FFFF).
void append_utf8(std::string& out, uint32_t cp);

bool is_valid_utf8(std::string_view bytes);

// Rust's String::from_utf8_lossy: every maximal invalid subsequence becomes one U+FFFD.
std::string utf8_lossy(std::string_view bytes);

}  // namespace zinc::runtime::tok
